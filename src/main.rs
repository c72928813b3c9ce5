//! berth: a low-level OCI container runtime with runc's command line.

mod bundle;
mod cgroups;
mod checkpoint;
mod cli;
mod commands;
mod console;
mod create;
mod events;
mod exec;
mod features;
mod hooks;
mod idmap;
mod init;
mod logging;
mod namespaces;
mod netdevices;
mod process;
mod process_attrs;
mod procfs;
mod ps;
mod rootfs;
mod rootless;
mod seccomp;
mod signals;
mod spec_default;
mod state;
mod sync;
mod update;

use clap::Parser;
use cli::{Cli, Command};

/// The runtime-spec version berth implements.
pub const OCI_VERSION: &str = "1.2.1";

fn main() {
    let argv = cli::normalize_args(std::env::args());
    let cli = match Cli::try_parse_from(&argv) {
        Ok(c) => c,
        Err(e) => {
            // --help and usage errors: clap formats them (exit 0 or 2).
            e.exit();
        }
    };
    if cli.version {
        print_version();
        return;
    }
    if let Err(e) = logging::init(cli.log.as_deref(), &cli.log_format, cli.debug) {
        eprintln!("berth: {e:#}");
        std::process::exit(1);
    }
    let code = match dispatch(&cli) {
        Ok(code) => code,
        Err(e) => {
            // One line: the chain of contexts joined by ": ".
            let msg = format!("{e:#}").replace('\n', " ");
            logging::error(&msg);
            1
        }
    };
    std::process::exit(code);
}

fn print_version() {
    // go-runc parses the first line only if it starts with "runc version";
    // berth states its own name, clients treat the fields as optional.
    println!("berth version {}", env!("CARGO_PKG_VERSION"));
    println!(
        "commit: {}",
        option_env!("BERTH_COMMIT").unwrap_or("unknown")
    );
    println!("spec: {OCI_VERSION}");
}

fn dispatch(cli: &Cli) -> anyhow::Result<i32> {
    let Some(command) = &cli.command else {
        anyhow::bail!("no command given: see berth --help");
    };
    let rootless = rootless::enabled(cli.rootless.as_deref())?;
    let root_dir = match &cli.root {
        Some(dir) => dir.clone(),
        None => {
            let dir = rootless::default_root();
            if !matches!(command, Command::Spec(_) | Command::Features) {
                rootless::prepare_default_root(&dir)?;
            }
            dir
        }
    };
    let root = state::Root::new(&root_dir);
    logging::debug(&format!("{} {root_dir:?}", command.name()));
    match command {
        Command::Create(a) => {
            let req = create::Request {
                root: &root,
                id: &a.id,
                opts: &a.opts,
                systemd_cgroup: cli.systemd_cgroup,
                rootless,
                foreground: false,
            };
            create::create(&req)?;
        }
        Command::Start(a) => commands::start(&root, &a.id)?,
        Command::State(a) => commands::state(&root, &a.id)?,
        Command::Kill(a) => commands::kill_cmd(&root, a)?,
        Command::Delete(a) => commands::delete(&root, a)?,
        Command::Run(a) => return commands::run(&root, a, cli.systemd_cgroup, rootless),
        Command::List(a) => commands::list(&root, a)?,
        Command::Spec(a) => {
            spec_default::write_spec(&a.bundle, cli.rootless.as_deref() == Some("true"))?
        }
        Command::Exec(a) => return exec::exec(&root, a),
        Command::Ps(a) => ps::ps(&root, a)?,
        Command::Pause(a) => commands::pause(&root, &a.id)?,
        Command::Resume(a) => commands::resume(&root, &a.id)?,
        Command::Features => features::print()?,
        Command::Events(a) => events::events(&root, a)?,
        Command::Update(a) => update::update(&root, a)?,
        Command::Checkpoint(a) => checkpoint::checkpoint(&root, cli.criu.as_deref(), a)?,
        Command::Restore(a) => {
            return checkpoint::restore(&root, cli.criu.as_deref(), a, cli.systemd_cgroup)
        }
    }
    Ok(0)
}
