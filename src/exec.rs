//! `exec`: run another process in an existing container (runc's `exec`).
//!
//! ```text
//! berth exec ──clone──▶ joiner: enters the container's cgroup, then setns()
//!    ▲                   into each of the init's namespaces (user first)
//!    │                   └─clone(CLONE_PARENT)──▶ process: born inside the pid
//!    │                        and time namespaces, applies the process spec, execve
//!    └── reads the report socket to EOF: "pid N", then nothing (execve closed it,
//!        CLOEXEC) or the error text
//! ```
//! The second clone is needed because joining a pid or time namespace only
//! affects children; CLONE_PARENT keeps the process berth's own child, so a
//! foreground exec waits for it and returns its exit status.
//!
//! The base process is the config's `process` as saved at create time
//! (runtime.md: later edits to config.json do not affect the container).

use crate::cli::ExecArgs;
use crate::state::{Root, Status};
use crate::{cgroups, commands, console, create, process, process_attrs, seccomp, state};
use anyhow::{anyhow, bail, Context, Result};
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use oci_spec::runtime::{Capability, LinuxCapabilities, Process};
use std::collections::HashSet;
use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::{AsFd, AsRawFd, OwnedFd, RawFd};
use std::os::unix::fs::MetadataExt;
use std::os::unix::net::UnixStream;
use std::path::Path;

/// The namespaces joined, in order: user first (it gives the capabilities
/// for the rest), mount last (it moves our root into the container), pid and
/// time before the clone they apply to.
const NAMESPACES: [(&str, libc::c_int); 8] = [
    ("user", libc::CLONE_NEWUSER),
    ("ipc", libc::CLONE_NEWIPC),
    ("uts", libc::CLONE_NEWUTS),
    ("net", libc::CLONE_NEWNET),
    ("pid", libc::CLONE_NEWPID),
    ("time", libc::CLONE_NEWTIME),
    ("cgroup", libc::CLONE_NEWCGROUP),
    ("mnt", libc::CLONE_NEWNS),
];

pub fn exec(root: &Root, args: &ExecArgs) -> Result<i32> {
    if let Some(label) = args.process_label.as_deref().filter(|v| !v.is_empty()) {
        if !process_attrs::selinux_enabled() {
            bail!("--process-label {label:?}: SELinux is not enabled on this host");
        }
    }
    if let Some(profile) = args.apparmor.as_deref().filter(|v| !v.is_empty()) {
        if !process_attrs::apparmor_enabled() {
            bail!("--apparmor {profile:?}: AppArmor is not enabled on this host");
        }
    }
    let container = root.open_container(&args.id)?;
    match container.status() {
        Status::Stopped => bail!(
            "cannot exec in a stopped container {:?}: container not running",
            args.id
        ),
        Status::Paused if !args.ignore_paused => bail!(
            "cannot exec in a paused container {:?} (use --ignore-paused to override)",
            args.id
        ),
        _ => {}
    }
    let process = build_process(args, container.saved.process.as_ref())?;
    let terminal = process.terminal() == Some(true);
    let foreground_tty = terminal && args.console_socket.is_none();
    if args.console_socket.is_some() && !terminal {
        bail!("--console-socket was given but the process has no terminal (use --tty)");
    }
    if foreground_tty && args.detach {
        bail!("--tty with --detach needs --console-socket");
    }

    // Where the pty master goes: the caller's socket or our end of a pair.
    let (console_fd, our_end): (Option<OwnedFd>, Option<OwnedFd>) = if !terminal {
        (None, None)
    } else if let Some(sock) = &args.console_socket {
        (Some(console::connect_console_socket(sock)?), None)
    } else {
        let (a, b) = UnixStream::pair().context("socketpair for the terminal")?;
        (Some(b.into()), Some(a.into()))
    };

    let saved = &container.saved;
    process_attrs::validate_process(&process)?;
    // runc gives every exec'd process the container's seccomp profile;
    // compiled here, loaded by the process at the same point as the init's.
    let filter = saved.seccomp.as_ref().map(seccomp::compile).transpose()?;
    let listener = match &saved.seccomp {
        Some(profile) => seccomp::connect_listener(profile)?,
        None => None,
    };
    let oci_state = state::oci_state(&container.lock.path, saved);
    let (pid_rd, pid_wr) = UnixStream::pair().context("socketpair")?;
    let ns = open_namespaces(saved.pid)?;
    // The joiner reports the pid on one socket; the process reports a
    // failure on the other, which its execve closes (CLOEXEC) on success.
    let (mut report_rd, report_wr) = UnixStream::pair().context("socketpair")?;
    let (mut error_rd, error_wr) = UnixStream::pair().context("socketpair")?;
    let setup = Setup {
        init_pid: saved.pid,
        cgroup: (!saved.no_cgroup).then_some(saved.cgroup_path.as_path()),
        id: &saved.id,
        ns: &ns,
        process: &process,
        console: console_fd.as_ref().map(|f| f.as_raw_fd()),
        report: report_wr.as_raw_fd(),
        error: error_wr.as_raw_fd(),
        preserve_fds: 3 + args.preserve_fds as i32,
        seccomp: filter.as_ref(),
        seccomp_listener: listener.as_ref().map(|f| f.as_raw_fd()),
        seccomp_metadata: saved
            .seccomp
            .as_ref()
            .and_then(|s| s.listener_metadata().clone()),
        state: &oci_state,
        pid_rd: pid_rd.as_raw_fd(),
        pid_wr: pid_wr.as_raw_fd(),
    };
    // Not dumpable from here to the execve: nothing in the container can
    // ptrace the half-set-up process or open its /proc files.
    nix::sys::prctl::set_dumpable(false).map_err(|e| anyhow!("PR_SET_DUMPABLE: {e}"))?;
    let joiner = create::clone_with(0)?;
    if joiner == 0 {
        let code = match join_and_spawn(&setup) {
            Ok(pid) => {
                let _ = (&report_wr).write_all(format!("pid {pid}\n").as_bytes());
                0
            }
            Err(e) => {
                let _ = (&report_wr).write_all(format!("error {e:#}").as_bytes());
                1
            }
        };
        // SAFETY: leave without running the parent's destructors.
        unsafe { libc::_exit(code) };
    }
    // The lock is not held while waiting: with --ignore-paused the joiner
    // stays frozen in the cgroup until someone's `resume` (which locks).
    drop(container);
    drop(listener);
    drop(pid_rd);
    drop(pid_wr);
    drop(report_wr);
    drop(error_wr);
    drop(console_fd);
    drop(ns);
    let mut report = String::new();
    let _ = report_rd.read_to_string(&mut report);
    let _ = nix::sys::wait::waitpid(Pid::from_raw(joiner), None);
    let pid = match report
        .strip_prefix("pid ")
        .and_then(|r| r.strip_suffix('\n'))
    {
        Some(pid) => pid.parse::<i32>().context("bad pid from exec")?,
        None => bail!(
            "exec in container {:?}: {}",
            args.id,
            report
                .strip_prefix("error ")
                .unwrap_or("the joining process died")
        ),
    };
    let mut failure = String::new();
    let _ = error_rd.read_to_string(&mut failure);
    if !failure.is_empty() {
        // The process failed before execve: it has exited; reap it.
        let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
        let _ = nix::sys::wait::waitpid(Pid::from_raw(pid), None);
        bail!("exec in container {:?}: {failure}", args.id);
    }
    let pty_master = match our_end {
        Some(sock) => Some(console::recv_fd(sock.as_raw_fd())?),
        None => None,
    };
    if let Some(pid_file) = &args.pid_file {
        create::write_pid_file(pid_file, pid)?;
    }
    if args.detach {
        return Ok(0);
    }
    match pty_master {
        Some(master) => {
            let mut forwarded = nix::sys::signal::SigSet::empty();
            for sig in commands::FORWARDED_WITH_TERMINAL {
                forwarded.add(sig);
            }
            let r = console::proxy_terminal_with_signals(master, forwarded, &mut |sig| {
                let _ = kill(Pid::from_raw(pid), sig);
                Ok(())
            });
            let code = commands::wait_exit(pid)?;
            r?;
            Ok(code)
        }
        None => commands::forward_signals_until_exit(pid),
    }
}

/// The process to run: `--process FILE` whole (as runc), else the saved
/// config process with ARGS and the flags applied.
fn build_process(args: &ExecArgs, base: Option<&Process>) -> Result<Process> {
    if let Some(path) = &args.process {
        let text =
            std::fs::read(path).with_context(|| format!("read --process {}", path.display()))?;
        let p: Process = serde_json::from_slice(&text).map_err(|e| {
            // Parse again, only on failure, to name the field that is wrong
            // (the path-tracking deserializer is more code to page in).
            let de = &mut serde_json::Deserializer::from_slice(&text);
            match serde_path_to_error::deserialize::<_, Process>(de) {
                Err(pe) => anyhow!("--process {}: {pe}", path.display()),
                Ok(_) => anyhow!("--process {}: {e}", path.display()),
            }
        })?;
        if p.args().as_ref().is_none_or(|a| a.is_empty()) {
            bail!("--process {}: args must not be empty", path.display());
        }
        return Ok(with_label_flags(p, args));
    }
    if args.args.is_empty() {
        bail!("exec needs a command: berth exec ID COMMAND [ARGS...] (or --process)");
    }
    let mut p = base.cloned().ok_or_else(|| {
        anyhow!(
            "container {:?} has no saved process to base exec on",
            args.id
        )
    })?;
    p.set_args(Some(args.args.clone()));
    // runc: the exec'd process has a terminal only with --tty.
    p.set_terminal(Some(args.tty));
    p.set_console_size(None);
    if let Some(cwd) = &args.cwd {
        p.set_cwd(cwd.clone());
    }
    let mut env = p.env().clone().unwrap_or_default();
    for kv in &args.env {
        let key = kv.split('=').next().unwrap_or(kv);
        // Replace rather than append: a duplicate would leave the old value
        // first, which is what getenv() finds.
        env.retain(|e| e.split('=').next() != Some(key));
        env.push(kv.clone());
    }
    p.set_env(Some(env));
    if let Some(user) = &args.user {
        let (uid, gid) = match user.split_once(':') {
            Some((u, g)) => (u, Some(g)),
            None => (user.as_str(), None),
        };
        let parse = |s: &str| {
            s.parse::<u32>()
                .map_err(|_| anyhow!("--user {user:?}: want numeric UID[:GID]"))
        };
        let mut u = p.user().clone();
        u.set_uid(parse(uid)?);
        u.set_gid(match gid {
            Some(g) => parse(g)?,
            None => 0,
        });
        p.set_user(u);
    }
    if !args.additional_gids.is_empty() {
        let mut u = p.user().clone();
        u.set_additional_gids(Some(args.additional_gids.clone()));
        p.set_user(u);
    }
    if args.no_new_privs {
        p.set_no_new_privileges(Some(true));
    }
    if !args.cap.is_empty() {
        let mut caps = p.capabilities().clone().unwrap_or_default();
        add_caps(&mut caps, &args.cap)?;
        p.set_capabilities(Some(caps));
    }
    Ok(with_label_flags(p, args))
}

/// `--apparmor NAME` and `--process-label LABEL` replace the profile and
/// label the process would run under (the container's, or the --process
/// file's); an empty value leaves them.
fn with_label_flags(mut p: Process, args: &ExecArgs) -> Process {
    if let Some(profile) = args.apparmor.as_deref().filter(|v| !v.is_empty()) {
        p.set_apparmor_profile(Some(profile.to_string()));
    }
    if let Some(label) = args.process_label.as_deref().filter(|v| !v.is_empty()) {
        p.set_selinux_label(Some(label.to_string()));
    }
    p
}

/// `--cap X`: added to bounding, effective and permitted; to inheritable and
/// ambient too when the process already has inheritable ones (as runc).
fn add_caps(caps: &mut LinuxCapabilities, names: &[String]) -> Result<()> {
    let with_inheritable = caps.inheritable().as_ref().is_some_and(|s| !s.is_empty());
    for name in names {
        let upper = name.to_ascii_uppercase();
        let full = if upper.starts_with("CAP_") {
            upper
        } else {
            format!("CAP_{upper}")
        };
        let cap: Capability = serde_json::from_value(serde_json::Value::String(full))
            .map_err(|_| anyhow!("--cap {name:?}: unknown capability"))?;
        let add = |set: &Option<HashSet<Capability>>| {
            let mut s = set.clone().unwrap_or_default();
            s.insert(cap);
            Some(s)
        };
        caps.set_bounding(add(caps.bounding()));
        caps.set_effective(add(caps.effective()));
        caps.set_permitted(add(caps.permitted()));
        if with_inheritable {
            caps.set_inheritable(add(caps.inheritable()));
            caps.set_ambient(add(caps.ambient()));
        }
    }
    Ok(())
}

/// The init's namespaces that differ from ours, opened while /proc is the
/// host's. A namespace berth shares is not entered (setns into one's own user
/// namespace is even an error).
fn open_namespaces(init_pid: i32) -> Result<Vec<(File, libc::c_int)>> {
    let mut out = Vec::new();
    for (name, flag) in NAMESPACES {
        let theirs = format!("/proc/{init_pid}/ns/{name}");
        let their_meta = match std::fs::metadata(&theirs) {
            Ok(m) => m,
            // A kernel without this namespace type.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            // Rootless: until it execs the user's program, the init is not
            // dumpable and its memory still belongs to the host's user
            // namespace, so only the host's root may open its namespaces.
            Err(e) if !nix::unistd::geteuid().is_root() => bail!(
                "open {theirs}: {e}: a rootless container's init can be entered only once \
                 it is started"
            ),
            Err(e) => bail!("open {theirs}: {e}"),
        };
        if let Ok(ours) = std::fs::metadata(format!("/proc/self/ns/{name}")) {
            if ours.ino() == their_meta.ino() && ours.dev() == their_meta.dev() {
                continue;
            }
        }
        let f = File::open(&theirs).with_context(|| format!("open {theirs}"))?;
        out.push((f, flag));
    }
    Ok(out)
}

struct Setup<'a> {
    init_pid: i32,
    /// None for a rootless container without a cgroup of its own.
    cgroup: Option<&'a Path>,
    id: &'a str,
    ns: &'a [(File, libc::c_int)],
    process: &'a Process,
    console: Option<RawFd>,
    report: RawFd,
    error: RawFd,
    preserve_fds: i32,
    seccomp: Option<&'a seccomp::Filter>,
    seccomp_listener: Option<RawFd>,
    seccomp_metadata: Option<String>,
    /// The container's state, for the seccomp listener.
    state: &'a state::OciState,
    /// The joiner tells the process its host pid here (for the listener).
    pid_rd: RawFd,
    pid_wr: RawFd,
}

/// In the joiner: cgroup, namespaces, then the clone of the process.
fn join_and_spawn(s: &Setup) -> Result<i32> {
    // Only stdio, the preserved fds and our own channels go on: not the
    // state dir's lock, nor anything berth's caller leaked.
    let mut keep = vec![s.report, s.error, s.pid_rd, s.pid_wr];
    keep.extend(s.console);
    keep.extend(s.seccomp_listener);
    keep.extend(s.ns.iter().map(|(f, _)| f.as_raw_fd()));
    process::close_fds_except(s.preserve_fds, &mut keep);
    let me = std::process::id() as i32;
    if let Some(cgroup) = s.cgroup {
        cgroups::join(cgroup, s.id, me)?;
    }
    for (fd, flag) in s.ns {
        nix::sched::setns(fd.as_fd(), nix::sched::CloneFlags::from_bits_retain(*flag)).map_err(
            |e| {
                anyhow!(
                    "join namespace {flag:#x} of container init {}: {e}",
                    s.init_pid
                )
            },
        )?;
    }
    let pid = create::clone_with(libc::CLONE_PARENT as u64)?;
    if pid == 0 {
        let err = match become_process(s) {
            Ok(never) => match never {},
            Err(e) => e,
        };
        // SAFETY: our copy of the error socket.
        let mut w = unsafe { <UnixStream as std::os::fd::FromRawFd>::from_raw_fd(s.error) };
        let _ = w.write_all(format!("{err:#}").as_bytes());
        // SAFETY: leave without running destructors of the parent's copy.
        unsafe { libc::_exit(127) };
    }
    // SAFETY: our copy of the pid socket; the process reads its host pid.
    let mut tx = unsafe { <UnixStream as std::os::fd::FromRawFd>::from_raw_fd(s.pid_wr) };
    let _ = tx.write_all(&pid.to_ne_bytes());
    Ok(pid)
}

/// Loads the container's seccomp filter into this process and, for
/// SCMP_ACT_NOTIFY, hands the listener fd and the process state to the agent.
fn load_seccomp(s: &Setup) -> Result<()> {
    let Some(filter) = s.seccomp else {
        return Ok(());
    };
    let notify_fd = seccomp::load(filter)?;
    if let (Some(fd), Some(sock)) = (notify_fd, s.seccomp_listener) {
        // The pid "as seen by the runtime": the joiner sent our host pid.
        // SAFETY: our copy of the pid socket.
        let mut rx = unsafe { <UnixStream as std::os::fd::FromRawFd>::from_raw_fd(s.pid_rd) };
        let mut buf = [0u8; 4];
        rx.read_exact(&mut buf)
            .context("reading the exec'd process's pid")?;
        let mut state = s.state.clone();
        state.pid = i32::from_ne_bytes(buf);
        // SAFETY: the listener connection was made by exec for us alone.
        let sock = unsafe { <OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(sock) };
        seccomp::send_to_listener(sock, &fd, s.seccomp_metadata.as_deref(), &state)?;
    }
    Ok(())
}

/// In the new process, inside every namespace: the process spec, then execve.
fn become_process(s: &Setup) -> Result<std::convert::Infallible> {
    let process = s.process;
    if process.terminal() == Some(true) {
        let sock = s
            .console
            .ok_or_else(|| anyhow!("a terminal needs a console socket"))?;
        // /dev/ptmx of the container's mount namespace: the container's devpts.
        let (master, slave_path) = console::open_pty()?;
        let slave = console::open_pty_peer(master.as_fd())?;
        console::send_fd(sock, &master, &slave_path.to_string_lossy())?;
        drop(master);
        console::make_controlling_terminal(slave)?;
    }
    // SAFETY: the pid socket is the joiner's business, not ours.
    unsafe { libc::close(s.report) };
    if let Some(fd) = s.console {
        // SAFETY: our copy of the console socket, not used any more.
        unsafe { libc::close(fd) };
    }
    process_attrs::apply_initial_cpu_affinity(process)?;
    process::set_oom_score_adj(process)?;
    process::set_rlimits(process)?;
    // As in the init: while still privileged in the container's namespaces.
    process_attrs::apply_io_priority(process)?;
    process_attrs::apply_scheduler(process)?;
    process_attrs::apply_apparmor(process)?;
    process_attrs::apply_selinux(process)?;
    let setgroups_allowed = !crate::procfs::read_to_string("/proc/self/setgroups")
        .map(|s| s.trim() == "deny")
        .unwrap_or(false);
    let nnp = process.no_new_privileges() == Some(true);
    if !nnp {
        // Without noNewPrivileges loading a filter takes CAP_SYS_ADMIN,
        // which switch_user may drop.
        load_seccomp(s)?;
    }
    process::switch_user(process, setgroups_allowed)?;
    process::chdir_cwd(process)?;
    let path = process::find_executable(process)?;
    process::set_no_new_privileges(process)?;
    process_attrs::apply_final_cpu_affinity(process)?;
    if nnp {
        // As late as possible: berth's own setup is not filtered.
        load_seccomp(s)?;
    }
    Err(process::exec(&path, process, s.preserve_fds))
}
