//! The lifecycle commands of runtime.md "Operations" with runc's flags and
//! output: start, state, kill, delete, run, list.

use crate::cli::{DeleteArgs, KillArgs, ListArgs, RunArgs};
use crate::create::{self, Request};
use crate::state::{self, Container, Root, Saved, Status};
use crate::{cgroups, console, hooks, logging, signals};
use anyhow::{anyhow, bail, Context, Result};
use nix::sys::signal::{kill, Signal};
use nix::sys::wait::{waitpid, WaitStatus};
use nix::unistd::Pid;
use std::io::{Read, Write};
use std::time::{Duration, Instant};

/// `start ID`: releases the init of a created container to exec the user's
/// program, then runs the poststart hooks.
pub fn start(root: &Root, id: &str) -> Result<()> {
    let container = root.open_container(id)?;
    start_container(&container)
}

fn start_container(container: &Container) -> Result<()> {
    let status = container.status();
    if status != Status::Created {
        bail!(
            "cannot start container {:?}: it is {status}, not created",
            container.saved.id
        );
    }
    let dir = &container.lock.path;
    let mut conn = create::connect_start_socket(dir).map_err(|e| {
        anyhow!(
            "cannot start container {:?}: its init is not waiting ({e})",
            container.saved.id
        )
    })?;
    // From here the container is no longer "created", whatever happens next.
    let _ = std::fs::remove_file(dir.join(state::START_SOCKET));
    conn.write_all(b"S")
        .context("signal the container init to start")?;
    let mut reply = String::new();
    let _ = conn.read_to_string(&mut reply);
    if !reply.is_empty() {
        // runtime.md "Lifecycle" 7: a failing startContainer hook (or exec)
        // stops the container, which is then destroyed (steps 12 and 13).
        let exit = ExitWatch::open(&container.saved);
        let _ = kill(Pid::from_raw(container.saved.pid), Signal::SIGKILL);
        exit.wait(&container.saved, Duration::from_secs(5));
        destroy(&container.saved, dir);
        bail!(
            "container {:?} failed to start: {reply}",
            container.saved.id
        );
    }
    let json = serde_json::to_vec(&state::oci_state(dir, &container.saved))?;
    if let Err(e) = hooks::run_hooks(Some(&container.saved.poststart), &json, "poststart") {
        // runtime.md "Lifecycle" 9: stop the container and destroy it.
        let exit = ExitWatch::open(&container.saved);
        let _ = kill(Pid::from_raw(container.saved.pid), Signal::SIGKILL);
        exit.wait(&container.saved, Duration::from_secs(5));
        destroy(&container.saved, dir);
        return Err(e);
    }
    Ok(())
}

/// `state ID`: the OCI state JSON.
pub fn state(root: &Root, id: &str) -> Result<()> {
    let saved = root.peek(id)?;
    let st = state::oci_state(&root.container_dir(id), &saved);
    println!("{}", serde_json::to_string_pretty(&st)?);
    Ok(())
}

/// `pause ID`: freezes every process of a running container.
pub fn pause(root: &Root, id: &str) -> Result<()> {
    let container = root.open_container(id)?;
    let status = container.status();
    if status != Status::Running {
        bail!("cannot pause container {id:?}: it is {status}, not running");
    }
    need_cgroup(&container.saved, "pause")?;
    cgroups::set_frozen(&container.saved.cgroup_path, id, true)
}

/// `resume ID`: thaws a paused container.
pub fn resume(root: &Root, id: &str) -> Result<()> {
    let container = root.open_container(id)?;
    let status = container.status();
    if status != Status::Paused {
        bail!("cannot resume container {id:?}: it is {status}, not paused");
    }
    need_cgroup(&container.saved, "resume")?;
    cgroups::set_frozen(&container.saved.cgroup_path, id, false)
}

/// A rootless container may run without a cgroup of its own (rootless.rs):
/// what needs one fails with a clear error, as runc's does.
pub fn need_cgroup(saved: &Saved, what: &str) -> Result<()> {
    if saved.no_cgroup {
        bail!(
            "cannot {what} container {:?}: it has no cgroup (rootless, without a writable \
             cgroup)",
            saved.id
        );
    }
    Ok(())
}

/// Host pids of the container: its cgroup's, or for a rootless container
/// without one, the init's pid namespace or descendants.
pub fn container_pids(saved: &Saved) -> Result<Vec<i32>> {
    if saved.no_cgroup {
        return Ok(crate::rootless::pids_without_cgroup(
            saved.pid,
            saved.own_pid_ns,
        ));
    }
    cgroups::pids(&saved.cgroup_path, &saved.id)
}

/// `kill ID [SIGNAL] [--all]`.
pub fn kill_cmd(root: &Root, args: &KillArgs) -> Result<()> {
    let sig = signals::parse_signal(args.signal.as_deref().unwrap_or("SIGTERM"))?;
    let container = root.open_container(&args.id)?;
    let status = container.status();
    if status == Status::Stopped {
        bail!("container {:?}: container not running", args.id);
    }
    let saved = &container.saved;
    if args.all {
        for pid in container_pids(saved)? {
            let _ = send_signal(pid, sig);
        }
        Ok::<(), anyhow::Error>(())
    } else {
        send_signal(saved.pid, sig).map_err(|e| anyhow!("kill container {:?}: {e}", args.id))?;
        Ok(())
    }?;
    // A frozen process acts on SIGKILL only once thawed (cgroup v1): a
    // paused container must still be killable, so let it go.
    if status == Status::Paused && sig == libc::SIGKILL && !saved.no_cgroup {
        cgroups::thaw(&saved.cgroup_path, &saved.id);
    }
    Ok(())
}

fn send_signal(pid: i32, sig: i32) -> std::result::Result<(), nix::Error> {
    // SAFETY: kill(2) with a signal number parsed from the command line.
    if unsafe { libc::kill(pid, sig) } != 0 {
        return Err(nix::Error::last());
    }
    Ok(())
}

/// `delete ID [--force]`.
pub fn delete(root: &Root, args: &DeleteArgs) -> Result<()> {
    let container = match root.open_container(&args.id) {
        Ok(c) => c,
        // containerd calls `delete --force` on an ID it has just deleted.
        Err(_)
            if args.force
                && !root
                    .container_dir(&args.id)
                    .join(state::STATE_FILE)
                    .exists() =>
        {
            state::validate_id(&args.id)?;
            let dir = root.container_dir(&args.id);
            if dir.exists() {
                // A create that died half-way left its directory: take it away.
                let _ = std::fs::remove_dir_all(dir);
            }
            return Ok(());
        }
        Err(e) => return Err(e),
    };
    let saved = &container.saved;
    match container.status() {
        Status::Stopped => {}
        // A created container never ran the user's program: deleting it is
        // how it is stopped (runc does the same).
        Status::Created | Status::Creating => kill_and_wait(saved)?,
        status if args.force => {
            if status == Status::Paused {
                // Frozen processes act on SIGKILL only once thawed.
                let _ = kill(Pid::from_raw(saved.pid), Signal::SIGKILL);
                cgroups::thaw(&saved.cgroup_path, &saved.id);
            }
            kill_and_wait(saved)?;
        }
        status => bail!(
            "cannot delete container {:?} that is {status}: stop it first or use --force",
            args.id
        ),
    }
    destroy(saved, &container.lock.path);
    drop(container);
    Ok(())
}

fn kill_and_wait(saved: &Saved) -> Result<()> {
    // Opened before the kill, so the wait below needs no polling.
    let exit = ExitWatch::open(saved);
    let _ = kill(Pid::from_raw(saved.pid), Signal::SIGKILL);
    if !saved.own_pid_ns {
        for pid in container_pids(saved).unwrap_or_default() {
            let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
        }
    }
    if !exit.wait(saved, Duration::from_secs(10)) {
        bail!("container {:?}: init {} did not die", saved.id, saved.pid);
    }
    Ok(())
}

/// The init's exit, watched through a pidfd: it polls readable once the
/// init is a zombie or reaped, so a waiter wakes right then instead of at
/// the next tick of a sleep loop.
pub(crate) struct ExitWatch(Option<std::os::fd::OwnedFd>);

impl ExitWatch {
    /// A pidfd for the container's init, if that pid is still the init
    /// (same start time, checked after opening: a pid reused before the
    /// open fails the check). None when it is already gone.
    pub(crate) fn open(saved: &Saved) -> ExitWatch {
        let fd = crate::process::pidfd_open(saved.pid).ok();
        match fd {
            Some(fd) if state::process_is(saved.pid, saved.pid_start_time) => ExitWatch(Some(fd)),
            _ => ExitWatch(None),
        }
    }

    /// Waits until the init has exited, at most `timeout`; false if it
    /// is still alive then.
    pub(crate) fn wait(&self, saved: &Saved, timeout: Duration) -> bool {
        let Some(fd) = &self.0 else {
            // No pidfd (gone already, or a kernel before 5.3): poll.
            return wait_gone(saved, timeout);
        };
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let mut pfd = libc::pollfd {
                fd: std::os::fd::AsRawFd::as_raw_fd(fd),
                events: libc::POLLIN,
                revents: 0,
            };
            // SAFETY: one valid pollfd for the duration of the call.
            let n =
                unsafe { libc::poll(&mut pfd, 1, left.as_millis().min(i32::MAX as u128) as i32) };
            if n > 0 {
                return true;
            }
            if n == 0 || left.is_zero() {
                return !state::process_is(saved.pid, saved.pid_start_time);
            }
            // EINTR: poll again for what is left.
        }
    }
}

/// Waits until the init is gone (or a zombie, which its parent will reap).
pub(crate) fn wait_gone(saved: &Saved, timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    let mut pause = Duration::from_micros(200);
    while state::process_is(saved.pid, saved.pid_start_time) {
        if Instant::now() > deadline {
            return false;
        }
        std::thread::sleep(pause);
        pause = (pause * 2).min(Duration::from_millis(20));
    }
    true
}

/// runtime.md "Lifecycle" 12-13: undo create (cgroup, state), then poststop
/// hooks, whose failure is only a warning.
pub(crate) fn destroy(saved: &Saved, dir: &std::path::Path) {
    if saved.no_cgroup {
        // Nothing to remove.
    } else if let Err(e) = cgroups::remove(&saved.cgroup_path, &saved.id) {
        logging::warn(&format!("{e:#}"));
    }
    let st = state::oci_state(dir, saved);
    if let Ok(json) = serde_json::to_vec(&st) {
        for hook in &saved.poststop {
            if let Err(e) = hooks::run_hook(hook, &json) {
                logging::warn(&format!("poststop hook: {e:#}"));
            }
        }
    }
    let _ = std::fs::remove_file(dir.join(state::STATE_FILE));
    let _ = std::fs::remove_dir_all(dir);
}

/// `run ID`: create + start, then (unless --detach) wait for the container
/// and return its exit status as berth's (128+N when killed by signal N).
pub fn run(root: &Root, args: &RunArgs, systemd_cgroup: bool, rootless: bool) -> Result<i32> {
    let req = Request {
        root,
        id: &args.id,
        opts: &args.opts,
        systemd_cgroup,
        rootless,
        foreground: !args.detach,
    };
    let created = create::create(&req)?;
    let container = Container {
        lock: created.dir,
        saved: created.saved,
    };
    if let Err(e) = start_container(&container) {
        if container.lock.path.exists() {
            let _ = kill_and_wait(&container.saved);
            destroy(&container.saved, &container.lock.path);
        }
        return Err(e);
    }
    if args.detach {
        return Ok(0);
    }
    // Waiting must not hold the container's lock: `kill`, `delete --force`
    // and friends from other berth processes have to get through meanwhile.
    let Container { lock, saved } = container;
    let dir = lock.path.clone();
    drop(lock);
    let pid = saved.pid;
    let code = match created.pty_master {
        Some(master) => {
            let mut forwarded = nix::sys::signal::SigSet::empty();
            for sig in FORWARDED_WITH_TERMINAL {
                forwarded.add(sig);
            }
            let r = console::proxy_terminal_with_signals(master, forwarded, &mut |sig| {
                let _ = kill(Pid::from_raw(pid), sig);
                Ok(())
            });
            let code = wait_exit(pid)?;
            r?;
            code
        }
        None => forward_signals_until_exit(pid)?,
    };
    if !args.keep {
        // Someone may have deleted it (or even made a new one with this ID)
        // while we waited: destroy only what is still ours.
        if let Ok(now) = root.open_container(&args.id) {
            if now.saved.pid == saved.pid && now.saved.pid_start_time == saved.pid_start_time {
                destroy(&now.saved, &dir);
            }
        }
    }
    Ok(code)
}

/// With a terminal, keys like ^C reach the container through its pty; these
/// are the signals someone sends to berth itself and means for the container.
pub(crate) const FORWARDED_WITH_TERMINAL: [Signal; 6] = [
    Signal::SIGTERM,
    Signal::SIGINT,
    Signal::SIGHUP,
    Signal::SIGQUIT,
    Signal::SIGUSR1,
    Signal::SIGUSR2,
];

fn exit_code(ws: WaitStatus) -> Option<i32> {
    match ws {
        WaitStatus::Exited(_, code) => Some(code),
        WaitStatus::Signaled(_, sig, _) => Some(128 + sig as i32),
        _ => None,
    }
}

pub(crate) fn wait_exit(pid: i32) -> Result<i32> {
    loop {
        match waitpid(Pid::from_raw(pid), None) {
            Ok(ws) => {
                if let Some(c) = exit_code(ws) {
                    return Ok(c);
                }
            }
            Err(nix::Error::EINTR) => continue,
            Err(e) => bail!("wait for container process {pid}: {e}"),
        }
    }
}

/// In the foreground, signals sent to berth are meant for the container:
/// pass them on until the init exits.
pub(crate) fn forward_signals_until_exit(pid: i32) -> Result<i32> {
    use nix::sys::signal::{SigSet, SigmaskHow};
    let mut set = SigSet::all();
    set.remove(Signal::SIGKILL);
    set.remove(Signal::SIGSTOP);
    for s in [
        Signal::SIGSEGV,
        Signal::SIGBUS,
        Signal::SIGILL,
        Signal::SIGFPE,
    ] {
        set.remove(s);
    }
    nix::sys::signal::sigprocmask(SigmaskHow::SIG_BLOCK, Some(&set), None)
        .context("block signals")?;
    // The init may have exited before the mask was in place.
    loop {
        match waitpid(
            Pid::from_raw(pid),
            Some(nix::sys::wait::WaitPidFlag::WNOHANG),
        ) {
            Ok(WaitStatus::StillAlive) => {}
            Ok(ws) => {
                if let Some(c) = exit_code(ws) {
                    return Ok(c);
                }
            }
            Err(nix::Error::EINTR) => continue,
            Err(e) => bail!("wait for container process {pid}: {e}"),
        }
        let sig = set.wait().context("wait for signals")?;
        if sig != Signal::SIGCHLD {
            let _ = kill(Pid::from_raw(pid), sig);
        }
    }
}

/// The user owning a container's state dir, as runc's `list` shows it: the
/// name from the host's /etc/passwd (read directly, never through NSS), else
/// `#UID`.
fn owner_of(dir: &std::path::Path) -> String {
    use std::os::unix::fs::MetadataExt;
    let Ok(uid) = std::fs::metadata(dir).map(|m| m.uid()) else {
        return String::new();
    };
    let passwd = std::fs::read_to_string("/etc/passwd").unwrap_or_default();
    passwd
        .lines()
        .find_map(|l| {
            let mut f = l.split(':');
            let name = f.next()?;
            (f.nth(1)?.parse::<u32>().ok()? == uid).then(|| name.to_string())
        })
        .unwrap_or_else(|| format!("#{uid}"))
}

/// `list`: runc's table, or a JSON array of state objects.
pub fn list(root: &Root, args: &ListArgs) -> Result<()> {
    let mut states = Vec::new();
    for id in root.ids()? {
        if let Ok(saved) = root.peek(&id) {
            let dir = root.container_dir(&id);
            let mut st = state::oci_state(&dir, &saved);
            st.owner = owner_of(&dir);
            states.push(st);
        }
    }
    let mut out = std::io::stdout().lock();
    if args.quiet {
        for s in &states {
            writeln!(out, "{}", s.id)?;
        }
        return Ok(());
    }
    match args.format.as_str() {
        "json" => {
            // runc prints null for none; go-runc decodes both.
            if states.is_empty() {
                writeln!(out, "null")?;
            } else {
                writeln!(out, "{}", serde_json::to_string(&states)?)?;
            }
        }
        "table" => {
            let rows: Vec<[String; 6]> = states
                .iter()
                .map(|s| {
                    [
                        s.id.clone(),
                        s.pid.to_string(),
                        s.status.to_string(),
                        s.bundle.display().to_string(),
                        s.created.clone(),
                        if s.owner.is_empty() {
                            "root".to_string()
                        } else {
                            s.owner.clone()
                        },
                    ]
                })
                .collect();
            let header = ["ID", "PID", "STATUS", "BUNDLE", "CREATED", "OWNER"].map(String::from);
            let mut widths = [0usize; 6];
            for row in std::iter::once(&header).chain(rows.iter()) {
                for (w, cell) in widths.iter_mut().zip(row) {
                    *w = (*w).max(cell.len());
                }
            }
            for row in std::iter::once(&header).chain(rows.iter()) {
                let line: Vec<String> = row
                    .iter()
                    .zip(widths)
                    .enumerate()
                    .map(|(i, (c, w))| {
                        if i == 5 {
                            c.clone()
                        } else {
                            format!("{c:<width$}", width = w + 3)
                        }
                    })
                    .collect();
                writeln!(out, "{}", line.concat())?;
            }
        }
        other => bail!("invalid --format {other:?}: want table or json"),
    }
    Ok(())
}
