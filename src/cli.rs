//! The command line: runc's global flags, subcommands and their flags.
//!
//! Clients (containerd's shim through go-runc, podman/conmon, test suites) pass
//! flags before or after the container ID, with `--flag value` or `--flag=value`,
//! and sometimes Go-style single-dash long flags (`-no-subreaper`). clap takes
//! the first three natively; [`normalize_args`] rewrites the last.

use clap::{ArgMatches, Args, FromArgMatches, Parser, Subcommand};
use std::ops::Deref;
use std::path::PathBuf;

/// A subcommand's flags, built only when that subcommand is the one being
/// parsed. clap's derive would build the flags of every subcommand on every
/// call: 160 KiB of code and most of the heap `berth start` ever uses, for the
/// one subcommand that runs.
#[derive(Debug, Clone)]
pub struct Lazy<T>(pub T);

impl<T> Deref for Lazy<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.0
    }
}

impl<T: Args> Args for Lazy<T> {
    fn augment_args(cmd: clap::Command) -> clap::Command {
        cmd.defer(|cmd| keeping_about(cmd, T::augment_args))
    }
    fn augment_args_for_update(cmd: clap::Command) -> clap::Command {
        cmd.defer(|cmd| keeping_about(cmd, T::augment_args_for_update))
    }
}

/// The subcommand's own description stays: deferred, the flags' doc comments
/// (a flattened struct's) would otherwise replace it.
fn keeping_about(cmd: clap::Command, augment: fn(clap::Command) -> clap::Command) -> clap::Command {
    let about = cmd.get_about().cloned();
    let long_about = cmd.get_long_about().cloned();
    let mut cmd = augment(cmd);
    if let Some(about) = about {
        cmd = cmd.about(about);
    }
    if let Some(long_about) = long_about {
        cmd = cmd.long_about(long_about);
    }
    cmd
}

impl<T: FromArgMatches> FromArgMatches for Lazy<T> {
    fn from_arg_matches(matches: &ArgMatches) -> Result<Self, clap::Error> {
        T::from_arg_matches(matches).map(Lazy)
    }
    fn from_arg_matches_mut(matches: &mut ArgMatches) -> Result<Self, clap::Error> {
        T::from_arg_matches_mut(matches).map(Lazy)
    }
    fn update_from_arg_matches(&mut self, matches: &ArgMatches) -> Result<(), clap::Error> {
        self.0.update_from_arg_matches(matches)
    }
    fn update_from_arg_matches_mut(&mut self, matches: &mut ArgMatches) -> Result<(), clap::Error> {
        self.0.update_from_arg_matches_mut(matches)
    }
}

#[derive(Parser, Debug)]
#[command(
    name = "berth",
    about = "berth: a low-level OCI container runtime (runc-compatible command line)",
    disable_version_flag = true
)]
pub struct Cli {
    /// Root directory for storage of container state (default: /run/berth, or
    /// $XDG_RUNTIME_DIR/berth for a non-root user)
    #[arg(long, global = true)]
    pub root: Option<PathBuf>,
    /// Log file for berth's own messages (errors are also written to stderr)
    #[arg(long, global = true)]
    pub log: Option<PathBuf>,
    /// Log format: text or json
    #[arg(long = "log-format", global = true, default_value = "text")]
    pub log_format: String,
    /// Enable debug logging
    #[arg(long, global = true)]
    pub debug: bool,
    /// Use systemd to manage cgroups (cgroupsPath is slice:prefix:name)
    #[arg(long = "systemd-cgroup", global = true)]
    pub systemd_cgroup: bool,
    /// Rootless mode: true, false or auto (default auto: rootless when not root)
    #[arg(long, global = true, num_args = 0..=1, default_missing_value = "true")]
    pub rootless: Option<String>,
    /// Path to the criu binary (for checkpoint and restore)
    #[arg(long, global = true)]
    pub criu: Option<PathBuf>,
    /// Print the version
    #[arg(short = 'v', long)]
    pub version: bool,

    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Create a container; its process waits for `start`
    Create(Lazy<CreateArgs>),
    /// Start the user process of a created container
    Start(Lazy<IdArg>),
    /// Print the state of a container as JSON
    State(Lazy<IdArg>),
    /// Send a signal to the container's init process (default SIGTERM)
    Kill(Lazy<KillArgs>),
    /// Delete a container and everything it holds
    Delete(Lazy<DeleteArgs>),
    /// Create and start a container (in the foreground unless --detach)
    Run(Lazy<RunArgs>),
    /// List the containers under --root
    List(Lazy<ListArgs>),
    /// Write a default config.json (runc's) into the bundle
    Spec(Lazy<SpecArgs>),
    /// Run a new process in a running container
    Exec(Lazy<ExecArgs>),
    /// List the processes of a container
    Ps(Lazy<PsArgs>),
    /// Freeze every process of a container
    Pause(Lazy<IdArg>),
    /// Thaw a paused container
    Resume(Lazy<IdArg>),
    /// Container statistics and OOM events, as JSON lines
    Events(Lazy<EventsArgs>),
    /// Update a container's resource limits
    Update(Lazy<UpdateArgs>),
    /// Print what this runtime supports (features.json)
    Features,
    /// Checkpoint a running container with CRIU
    Checkpoint(Lazy<CheckpointArgs>),
    /// Restore a container from a CRIU checkpoint
    Restore(Lazy<RestoreArgs>),
}

impl Command {
    pub fn name(&self) -> &'static str {
        match self {
            Command::Create(_) => "create",
            Command::Start(_) => "start",
            Command::State(_) => "state",
            Command::Kill(_) => "kill",
            Command::Delete(_) => "delete",
            Command::Run(_) => "run",
            Command::List(_) => "list",
            Command::Spec(_) => "spec",
            Command::Exec(_) => "exec",
            Command::Ps(_) => "ps",
            Command::Pause(_) => "pause",
            Command::Resume(_) => "resume",
            Command::Events(_) => "events",
            Command::Update(_) => "update",
            Command::Features => "features",
            Command::Checkpoint(_) => "checkpoint",
            Command::Restore(_) => "restore",
        }
    }
}

/// Flags shared by `create` and `run`.
#[derive(Args, Debug, Clone)]
pub struct CreateOpts {
    /// Path to the bundle (default: the current directory)
    #[arg(short = 'b', long, default_value = ".")]
    pub bundle: PathBuf,
    /// AF_UNIX socket that receives the pty master of a terminal container
    #[arg(long = "console-socket")]
    pub console_socket: Option<PathBuf>,
    /// AF_UNIX socket that receives a pidfd of the container process
    #[arg(long = "pidfd-socket")]
    pub pidfd_socket: Option<PathBuf>,
    /// File to write the container process's pid to
    #[arg(long = "pid-file")]
    pub pid_file: Option<PathBuf>,
    /// Do not use pivot_root (move the rootfs onto / and chroot)
    #[arg(long = "no-pivot")]
    pub no_pivot: bool,
    /// Do not create a new session keyring
    #[arg(long = "no-new-keyring")]
    pub no_new_keyring: bool,
    /// Pass N extra file descriptors (3 .. 3+N-1) to the container
    #[arg(long = "preserve-fds", default_value_t = 0)]
    pub preserve_fds: u32,
}

#[derive(Args, Debug)]
pub struct CreateArgs {
    pub id: String,
    #[command(flatten)]
    pub opts: CreateOpts,
    /// Accepted for go-runc compatibility; create always detaches
    #[arg(short = 'd', long, hide = true)]
    pub detach: bool,
}

#[derive(Args, Debug)]
pub struct RunArgs {
    pub id: String,
    #[command(flatten)]
    pub opts: CreateOpts,
    /// Detach from the container's process
    #[arg(short = 'd', long)]
    pub detach: bool,
    /// Keep the container's state after it exits
    #[arg(long)]
    pub keep: bool,
}

#[derive(Args, Debug)]
pub struct IdArg {
    pub id: String,
}

#[derive(Args, Debug)]
pub struct KillArgs {
    pub id: String,
    /// Signal, by name (KILL, SIGKILL) or number; default SIGTERM
    pub signal: Option<String>,
    /// Send the signal to every process of the container
    #[arg(short = 'a', long)]
    pub all: bool,
}

#[derive(Args, Debug)]
pub struct DeleteArgs {
    pub id: String,
    /// Kill the container first if it is running, and succeed if it doesn't exist
    #[arg(short = 'f', long)]
    pub force: bool,
}

#[derive(Args, Debug)]
pub struct ListArgs {
    /// Output format: table or json
    #[arg(short = 'f', long, default_value = "table")]
    pub format: String,
    /// Print only the container IDs
    #[arg(short = 'q', long)]
    pub quiet: bool,
}

#[derive(Args, Debug)]
pub struct SpecArgs {
    /// Bundle directory to write config.json into
    #[arg(short = 'b', long, default_value = ".")]
    pub bundle: PathBuf,
    // `spec --rootless` is the global --rootless flag (clap can't have both).
}

/// `exec`: runc's flags (`runc exec --help`).
#[derive(Args, Debug)]
pub struct ExecArgs {
    pub id: String,
    /// The program and its arguments (unless --process)
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub args: Vec<String>,
    /// A process.json (config.md "Process") to run instead of ARGS and flags
    #[arg(short = 'p', long)]
    pub process: Option<PathBuf>,
    /// Allocate a pseudo-TTY
    #[arg(short = 't', long)]
    pub tty: bool,
    /// AF_UNIX socket that receives the pty master
    #[arg(long = "console-socket")]
    pub console_socket: Option<PathBuf>,
    /// Working directory in the container
    #[arg(long)]
    pub cwd: Option<PathBuf>,
    /// Add an environment variable (KEY=value)
    #[arg(short = 'e', long)]
    pub env: Vec<String>,
    /// UID[:GID] to run as
    #[arg(short = 'u', long)]
    pub user: Option<String>,
    /// Additional group ids
    #[arg(short = 'g', long = "additional-gids")]
    pub additional_gids: Vec<u32>,
    /// Add a capability to the bounding, effective and permitted sets
    #[arg(short = 'c', long)]
    pub cap: Vec<String>,
    /// Set no_new_privs for the process
    #[arg(long = "no-new-privs")]
    pub no_new_privs: bool,
    /// Return at once, leaving the process running
    #[arg(short = 'd', long)]
    pub detach: bool,
    /// File to write the process's pid to
    #[arg(long = "pid-file")]
    pub pid_file: Option<PathBuf>,
    /// Pass N extra file descriptors (3 .. 3+N-1) to the process
    #[arg(long = "preserve-fds", default_value_t = 0)]
    pub preserve_fds: u32,
    /// Exec even if the container is paused
    #[arg(long = "ignore-paused")]
    pub ignore_paused: bool,
    /// SELinux label for the process (replaces the container's)
    #[arg(long = "process-label")]
    pub process_label: Option<String>,
    /// AppArmor profile for the process (replaces the container's)
    #[arg(long)]
    pub apparmor: Option<String>,
}

#[derive(Args, Debug)]
pub struct EventsArgs {
    pub id: String,
    /// Print the container's statistics once and exit
    #[arg(long)]
    pub stats: bool,
    /// Time between statistics events (a Go duration: 5s, 100ms, 1m)
    #[arg(long, default_value = "5s")]
    pub interval: String,
}

#[derive(Args, Debug)]
pub struct PsArgs {
    pub id: String,
    /// Output format: table or json
    #[arg(short = 'f', long, default_value = "table")]
    pub format: String,
    /// Arguments for ps(1) (default -ef)
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub ps_args: Vec<String>,
}

/// `update`: runc's flags; `--resources` is a LinuxResources JSON.
#[derive(Args, Debug)]
pub struct UpdateArgs {
    pub id: String,
    /// LinuxResources JSON file, or - for stdin
    #[arg(short = 'r', long)]
    pub resources: Option<PathBuf>,
    /// Memory limit (bytes, or with k/m/g suffix)
    #[arg(long)]
    pub memory: Option<String>,
    /// Memory soft limit
    #[arg(long = "memory-reservation")]
    pub memory_reservation: Option<String>,
    /// Memory plus swap limit (-1: unlimited)
    #[arg(long = "memory-swap", allow_hyphen_values = true)]
    pub memory_swap: Option<String>,
    /// CPU shares (relative weight)
    #[arg(long = "cpu-share", alias = "cpu-shares")]
    pub cpu_shares: Option<u64>,
    /// CFS quota in microseconds per period (-1: unlimited)
    #[arg(long = "cpu-quota", allow_hyphen_values = true)]
    pub cpu_quota: Option<i64>,
    /// CFS period in microseconds
    #[arg(long = "cpu-period")]
    pub cpu_period: Option<u64>,
    /// Realtime runtime in microseconds
    #[arg(long = "cpu-rt-runtime", allow_hyphen_values = true)]
    pub cpu_rt_runtime: Option<i64>,
    /// Realtime period in microseconds
    #[arg(long = "cpu-rt-period")]
    pub cpu_rt_period: Option<u64>,
    /// CPUs allowed (0-3, 0,1)
    #[arg(long = "cpuset-cpus")]
    pub cpuset_cpus: Option<String>,
    /// Memory nodes allowed (0-3, 0,1)
    #[arg(long = "cpuset-mems")]
    pub cpuset_mems: Option<String>,
    /// Maximum number of pids (-1 or 0: unlimited)
    #[arg(long = "pids-limit", allow_hyphen_values = true)]
    pub pids_limit: Option<i64>,
    /// Block IO weight (10-1000)
    #[arg(long = "blkio-weight")]
    pub blkio_weight: Option<u16>,
}

/// The CRIU options `checkpoint` and `restore` share. go-runc builds restore's
/// argv from the same options as checkpoint's (runc-cli-contract.md quirk 2),
/// so restore accepts all of them too.
#[derive(Args, Debug, Clone)]
pub struct CriuOpts {
    /// Directory of the CRIU image files (default: ./checkpoint)
    #[arg(long = "image-path")]
    pub image_path: Option<PathBuf>,
    /// Directory for CRIU's work files and log (default: the image directory)
    #[arg(long = "work-path")]
    pub work_path: Option<PathBuf>,
    /// Previous (pre-dump) images, relative to the image directory
    #[arg(long = "parent-path")]
    pub parent_path: Option<PathBuf>,
    /// Allow open TCP connections
    #[arg(long = "tcp-established")]
    pub tcp_established: bool,
    /// Allow external unix sockets
    #[arg(long = "ext-unix-sk")]
    pub ext_unix_sk: bool,
    /// Allow shell jobs
    #[arg(long = "shell-job")]
    pub shell_job: bool,
    /// Use userfaultfd to restore memory pages lazily
    #[arg(long = "lazy-pages")]
    pub lazy_pages: bool,
    /// Handle file locks
    #[arg(long = "file-locks")]
    pub file_locks: bool,
    /// cgroups mode: soft (default), full, strict or ignore
    #[arg(long = "manage-cgroups-mode")]
    pub manage_cgroups_mode: Option<String>,
    /// Create a namespace but don't restore its properties (network)
    #[arg(long = "empty-ns")]
    pub empty_ns: Vec<String>,
    /// Deduplicate memory images automatically
    #[arg(long = "auto-dedup")]
    pub auto_dedup: bool,
    /// ADDRESS:PORT of a CRIU page server
    #[arg(long = "page-server")]
    pub page_server: Option<String>,
    /// CRIU writes \0 to this fd once lazy pages are ready
    #[arg(long = "status-fd", default_value_t = -1, allow_hyphen_values = true)]
    pub status_fd: i32,
}

/// `checkpoint`: runc's flags (`runc checkpoint --help`).
#[derive(Args, Debug)]
pub struct CheckpointArgs {
    pub id: String,
    #[command(flatten)]
    pub criu: CriuOpts,
    /// Leave the container running after the checkpoint
    #[arg(long = "leave-running")]
    pub leave_running: bool,
    /// Dump the memory only (for a later --parent-path), leaving it running
    #[arg(long = "pre-dump")]
    pub pre_dump: bool,
}

/// `restore`: runc's flags (`runc restore --help`).
#[derive(Args, Debug)]
pub struct RestoreArgs {
    pub id: String,
    #[command(flatten)]
    pub criu: CriuOpts,
    /// Path to the bundle (default: the current directory)
    #[arg(short = 'b', long, default_value = ".")]
    pub bundle: PathBuf,
    /// Return once the container is restored
    #[arg(short = 'd', long)]
    pub detach: bool,
    /// File to write the restored init's pid to
    #[arg(long = "pid-file")]
    pub pid_file: Option<PathBuf>,
    /// AF_UNIX socket for the pty master (terminal containers: refused)
    #[arg(long = "console-socket")]
    pub console_socket: Option<PathBuf>,
    /// Accepted and ignored, like runc's (containerd always passes it)
    #[arg(long = "no-subreaper")]
    pub no_subreaper: bool,
    /// Do not use pivot_root (CRIU restores the mount namespace itself)
    #[arg(long = "no-pivot")]
    pub no_pivot: bool,
    /// LSM profile TYPE:NAME (berth has no LSM support: refused)
    #[arg(long = "lsm-profile")]
    pub lsm_profile: Option<String>,
    /// LSM mount context (berth has no LSM support: refused)
    #[arg(long = "lsm-mount-context")]
    pub lsm_mount_context: Option<String>,
    /// Parsed like checkpoint's (quirk 2) to be refused by name
    #[arg(long = "leave-running", hide = true)]
    pub leave_running: bool,
    /// Parsed like checkpoint's (quirk 2) to be refused by name
    #[arg(long = "pre-dump", hide = true)]
    pub pre_dump: bool,
}

/// Long flags that Go clients may spell with one dash (urfave/cli accepts
/// both); clap only knows the two-dash form.
const LONG_FLAGS: &[&str] = &[
    "root",
    "log",
    "log-format",
    "debug",
    "systemd-cgroup",
    "rootless",
    "criu",
    "bundle",
    "console-socket",
    "pidfd-socket",
    "pid-file",
    "no-pivot",
    "no-new-keyring",
    "preserve-fds",
    "detach",
    "keep",
    "all",
    "force",
    "format",
    "quiet",
    "no-subreaper",
    "process",
    "tty",
    "cwd",
    "env",
    "user",
    "additional-gids",
    "cap",
    "no-new-privs",
    "ignore-paused",
    "process-label",
    "apparmor",
    "resources",
    "memory",
    "memory-reservation",
    "memory-swap",
    "cpu-share",
    "cpu-shares",
    "cpu-quota",
    "cpu-period",
    "cpu-rt-runtime",
    "cpu-rt-period",
    "cpuset-cpus",
    "cpuset-mems",
    "pids-limit",
    "blkio-weight",
    "stats",
    "interval",
    "image-path",
    "work-path",
    "parent-path",
    "leave-running",
    "tcp-established",
    "ext-unix-sk",
    "shell-job",
    "lazy-pages",
    "status-fd",
    "page-server",
    "file-locks",
    "pre-dump",
    "manage-cgroups-mode",
    "empty-ns",
    "auto-dedup",
    "lsm-profile",
    "lsm-mount-context",
];

/// Rewrites `-flag`/`-flag=v` to `--flag`/`--flag=v` for known long flags,
/// and a bare `--rootless` (the `spec --rootless` switch) to `--rootless=true`
/// so that clap doesn't take the next word as its value.
pub fn normalize_args(args: impl Iterator<Item = String>) -> Vec<String> {
    let mut args: Vec<String> = args.collect();
    // The command `exec` runs is the user's argv: `find / -user 0` keeps its
    // `-user`. Only what comes before it is berth's to rewrite.
    let verbatim = match exec_command_start(&args) {
        Some(i) => args.split_off(i),
        None => Vec::new(),
    };
    let args: Vec<String> = args
        .into_iter()
        .map(|arg| {
            if arg.starts_with('-') && !arg.starts_with("--") && arg.len() > 2 {
                let name = arg[1..].split('=').next().unwrap_or("");
                if LONG_FLAGS.contains(&name) {
                    return format!("-{arg}");
                }
            }
            arg
        })
        .collect();
    let mut out = Vec::with_capacity(args.len());
    let mut iter = args.into_iter().peekable();
    while let Some(arg) = iter.next() {
        if arg == "--rootless" {
            match iter.peek().map(String::as_str) {
                Some("true" | "false" | "auto") => {}
                _ => {
                    out.push("--rootless=true".to_string());
                    continue;
                }
            }
        }
        out.push(arg);
    }
    out.extend(verbatim);
    out
}

/// Flags (of exec and the globals) whose value is the next argument.
const VALUE_FLAGS: &[&str] = &[
    "root",
    "log",
    "log-format",
    "criu",
    "process",
    "p",
    "console-socket",
    "cwd",
    "env",
    "e",
    "user",
    "u",
    "additional-gids",
    "g",
    "cap",
    "c",
    "pid-file",
    "preserve-fds",
    "process-label",
    "apparmor",
];

/// Where the command of `berth ... exec [flags] ID COMMAND...` starts.
fn exec_command_start(args: &[String]) -> Option<usize> {
    let mut positionals = 0;
    let mut in_exec = false;
    let mut i = 1;
    while i < args.len() {
        let arg = &args[i];
        if let Some(flag) = arg.strip_prefix('-').filter(|f| !f.is_empty()) {
            let name = flag.trim_start_matches('-');
            if name.is_empty() {
                // "--": clap takes what follows as positional; keep it verbatim.
                return in_exec.then_some(i);
            }
            if !name.contains('=') {
                let takes_value = VALUE_FLAGS.contains(&name)
                    || (name == "rootless"
                        && matches!(
                            args.get(i + 1).map(String::as_str),
                            Some("true" | "false" | "auto")
                        ));
                if takes_value {
                    i += 1;
                }
            }
        } else if !in_exec {
            if arg != "exec" {
                return None; // another subcommand
            }
            in_exec = true;
        } else {
            positionals += 1;
            if positionals == 2 {
                return Some(i);
            }
        }
        i += 1;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Cli {
        let argv = normalize_args(args.iter().map(|s| s.to_string()));
        Cli::try_parse_from(argv).expect("parses")
    }

    #[test]
    fn flags_before_and_after_the_id() {
        for argv in [
            &[
                "berth",
                "create",
                "--bundle",
                "/b",
                "--pid-file",
                "/p",
                "c1",
            ][..],
            &["berth", "create", "c1", "--bundle=/b", "--pid-file", "/p"][..],
            &["berth", "create", "-bundle", "/b", "c1", "-pid-file=/p"][..],
        ] {
            let cli = parse(argv);
            let Some(Command::Create(c)) = cli.command else {
                panic!("not create")
            };
            assert_eq!(c.id, "c1");
            assert_eq!(c.opts.bundle, PathBuf::from("/b"));
            assert_eq!(c.opts.pid_file, Some(PathBuf::from("/p")));
        }
    }

    #[test]
    fn global_flags_anywhere() {
        let cli = parse(&["berth", "--root", "/r", "kill", "--all", "c1", "9"]);
        assert_eq!(cli.root, Some(PathBuf::from("/r")));
        let Some(Command::Kill(k)) = cli.command else {
            panic!("not kill")
        };
        assert!(k.all);
        assert_eq!(k.signal.as_deref(), Some("9"));
        let cli = parse(&["berth", "state", "c1", "--root=/x"]);
        assert_eq!(cli.root, Some(PathBuf::from("/x")));
    }

    #[test]
    fn exec_args_keep_their_own_flags() {
        let cli = parse(&[
            "berth", "exec", "-t", "--env", "A=1", "-e", "B=2", "--cap", "CAP_KILL", "c1", "ls",
            "-la", "--cwd", "/x",
        ]);
        let Some(Command::Exec(e)) = cli.command else {
            panic!("not exec")
        };
        assert!(e.tty);
        assert_eq!(e.id, "c1");
        assert_eq!(e.env, ["A=1", "B=2"]);
        assert_eq!(e.cap, ["CAP_KILL"]);
        // Everything after the command belongs to it, flags included.
        assert_eq!(e.args, ["ls", "-la", "--cwd", "/x"]);
        assert_eq!(e.cwd, None);
        let cli = parse(&["berth", "exec", "-process", "/p.json", "c1"]);
        let Some(Command::Exec(e)) = cli.command else {
            panic!("not exec")
        };
        assert_eq!(e.process, Some(PathBuf::from("/p.json")));
        assert!(e.args.is_empty());
        // Go-style flags are berth's only before the command.
        let cli = parse(&[
            "berth", "-root", "/r", "exec", "-cwd", "/w", "c1", "find", "/", "-user", "0",
        ]);
        let Some(Command::Exec(e)) = cli.command else {
            panic!("not exec")
        };
        assert_eq!(cli.root, Some(PathBuf::from("/r")));
        assert_eq!(e.cwd, Some(PathBuf::from("/w")));
        assert_eq!(e.args, ["find", "/", "-user", "0"]);
    }

    #[test]
    fn go_style_single_dash_long_flags() {
        let argv = normalize_args(
            ["berth", "-no-subreaper", "-p", "-root=/r"]
                .iter()
                .map(|s| s.to_string()),
        );
        assert_eq!(argv, vec!["berth", "--no-subreaper", "-p", "--root=/r"]);
    }

    #[test]
    fn containerd_restore_and_checkpoint_argv() {
        // go-runc's RestoreOpts (runc-cli-contract.md quirks 1 and 2).
        let cli = parse(&[
            "berth",
            "restore",
            "--image-path",
            "/i",
            "--work-path",
            "/w",
            "--parent-path",
            "../p",
            "--detach",
            "--pid-file",
            "/pid",
            "-no-subreaper",
            "--no-pivot",
            "--bundle",
            "/b",
            "c1",
        ]);
        let Some(Command::Restore(r)) = cli.command else {
            panic!("not restore")
        };
        assert_eq!(r.id, "c1");
        assert!(r.detach && r.no_subreaper && r.no_pivot);
        assert_eq!(r.criu.image_path, Some(PathBuf::from("/i")));
        assert_eq!(r.criu.parent_path, Some(PathBuf::from("../p")));
        assert_eq!(r.bundle, PathBuf::from("/b"));
        let cli = parse(&[
            "berth",
            "checkpoint",
            "--image-path",
            "/i",
            "--empty-ns",
            "network",
            "--status-fd",
            "3",
            "--leave-running",
            "--manage-cgroups-mode",
            "soft",
            "c1",
        ]);
        let Some(Command::Checkpoint(c)) = cli.command else {
            panic!("not checkpoint")
        };
        assert!(c.leave_running && !c.pre_dump);
        assert_eq!(c.criu.empty_ns, ["network"]);
        assert_eq!(c.criu.status_fd, 3);
        assert_eq!(c.criu.manage_cgroups_mode.as_deref(), Some("soft"));
    }

    #[test]
    fn rootless_takes_a_value_only_when_one_follows() {
        let cli = parse(&["berth", "--rootless", "spec"]);
        assert_eq!(cli.rootless.as_deref(), Some("true"));
        assert!(matches!(cli.command, Some(Command::Spec(_))));
        let cli = parse(&["berth", "--rootless", "false", "list"]);
        assert_eq!(cli.rootless.as_deref(), Some("false"));
        let cli = parse(&["berth", "spec", "--rootless"]);
        assert_eq!(cli.rootless.as_deref(), Some("true"));
    }
}
