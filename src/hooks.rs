//! OCI lifecycle hooks (config.md "POSIX-platform Hooks", runtime.md
//! "Lifecycle"): run a program with the container's state JSON on its stdin.
//!
//! A hook gets exactly its configured `args` and `env`, nothing inherited.
//! Its stdout and stderr go to an anonymous memory file: when the hook fails
//! their last lines become part of berth's one-line error (as runc reports
//! them), and a hook that leaves a background process holding them blocks
//! nobody. The state is fed through a non-blocking pipe from the same poll
//! loop that watches the hook's exit and timeout, so a hook that never reads
//! stdin can neither block us nor outlive its timeout. Each hook leads its
//! own process group, and a timed-out hook is killed with the whole group.

use anyhow::{anyhow, bail, Context, Result};
use nix::errno::Errno;
use nix::fcntl::{fcntl, FcntlArg, OFlag};
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use oci_spec::runtime::Hook;
use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// Run one hook. Errors name the hook as "hook <path>".
pub fn run_hook(hook: &Hook, state_json: &[u8]) -> Result<()> {
    run(hook, state_json, "hook")
}

/// Run a stage's hooks in order, stopping at the first failure. Errors read
/// "<stage> hook <path> failed: exit status 1".
pub fn run_hooks(hooks: Option<&Vec<Hook>>, state_json: &[u8], stage: &str) -> Result<()> {
    let label = format!("{stage} hook");
    for hook in hooks.into_iter().flatten() {
        run(hook, state_json, &label)?;
    }
    Ok(())
}

fn run(hook: &Hook, state_json: &[u8], label: &str) -> Result<()> {
    let what = format!("{label} {}", hook.path().display());
    // config.md: path MUST be absolute. A relative one would be looked up in
    // some PATH or cwd, which is not what the config author can rely on.
    if !hook.path().is_absolute() {
        bail!("{what}: path must be absolute");
    }
    let timeout = match hook.timeout() {
        None => None,
        Some(secs) if secs > 0 => Some(Duration::from_secs(secs as u64)),
        Some(secs) => bail!("{what}: timeout must be greater than zero, got {secs}"),
    };
    let output = memfd("berth-hook-output")?;
    let mut child = command(hook, &output)?
        .spawn()
        .map_err(|e| anyhow!("{what} could not be started: {e}"))?;
    let group = Pid::from_raw(-(child.id() as i32));
    let stdin = child.stdin.take().expect("stdin is piped");
    // Without a pidfd (seccomp in the container, an old kernel) fall back
    // to checking for the exit every few milliseconds.
    let exited = pidfd_open(child.id()).ok();
    let outcome = feed_and_wait(&mut child, stdin, state_json, timeout, exited);
    match outcome {
        Ok(Some(status)) if status.success() => Ok(()),
        Ok(Some(status)) => bail!("{what} failed: {}{}", describe(status), tail_of(output)),
        Ok(None) => {
            // SIGKILL cannot be caught, so the wait that follows is short.
            let _ = kill(group, Signal::SIGKILL);
            let _ = child.wait();
            bail!(
                "{what} timed out after {}s and was killed{}",
                timeout.unwrap_or_default().as_secs(),
                tail_of(output)
            )
        }
        Err(e) => {
            let _ = kill(group, Signal::SIGKILL);
            let _ = child.wait();
            bail!("{what}: {e}")
        }
    }
}

fn memfd(name: &str) -> Result<File> {
    let name = std::ffi::CString::new(name).expect("no NUL");
    // SAFETY: memfd_create takes a NUL-terminated name and flags.
    let fd = unsafe { libc::memfd_create(name.as_ptr(), libc::MFD_CLOEXEC) };
    if fd < 0 {
        bail!("memfd_create for hook output: {}", Errno::last());
    }
    // SAFETY: the kernel just returned this fd and nobody else owns it.
    Ok(File::from(unsafe { OwnedFd::from_raw_fd(fd) }))
}

/// The end of what a failed hook printed, on one line: `: output: ...`.
fn tail_of(mut output: File) -> String {
    const MAX: usize = 400;
    let mut text = String::new();
    let _ = output.seek(SeekFrom::Start(0));
    let _ = output.read_to_string(&mut text);
    let joined = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join("; ");
    if joined.is_empty() {
        return String::new();
    }
    let start = joined.len().saturating_sub(MAX);
    let start = (start..=joined.len())
        .find(|&i| joined.is_char_boundary(i))
        .unwrap_or(joined.len());
    let cut = if start > 0 { "..." } else { "" };
    format!(": output: {cut}{}", &joined[start..])
}

/// The hook's command: `args[0]` is argv[0] (the path when there are no
/// args), the environment is exactly `env`.
fn command(hook: &Hook, output: &File) -> Result<Command> {
    let mut cmd = Command::new(hook.path());
    if let Some((argv0, rest)) = hook.args().as_deref().and_then(<[String]>::split_first) {
        cmd.arg0(argv0).args(rest);
    }
    cmd.env_clear();
    for entry in hook.env().as_deref().unwrap_or_default() {
        // std can only express KEY=VALUE; an entry without '=' is not a
        // variable any program could read, so it is dropped.
        if let Some((key, value)) = entry.split_once('=') {
            cmd.env(key, value);
        }
    }
    let out = output
        .try_clone()
        .context("duplicating the hook output fd")?;
    let err = output
        .try_clone()
        .context("duplicating the hook output fd")?;
    cmd.stdin(Stdio::piped())
        .stdout(Stdio::from(out))
        .stderr(Stdio::from(err))
        .process_group(0);
    Ok(cmd)
}

/// Write `state` to the hook's stdin while waiting for it to exit (on its
/// pidfd `exited` if there is one). Returns its exit status, or None if
/// `timeout` passed first (the hook still runs).
fn feed_and_wait(
    child: &mut Child,
    stdin: ChildStdin,
    state: &[u8],
    timeout: Option<Duration>,
    exited: Option<OwnedFd>,
) -> Result<Option<ExitStatus>> {
    let deadline = timeout.map(|t| Instant::now() + t);
    fcntl(stdin.as_raw_fd(), FcntlArg::F_SETFL(OFlag::O_NONBLOCK))
        .map_err(|e| anyhow!("making the stdin pipe non-blocking: {e}"))?;
    let _sigpipe = SigpipeBlocked::new();
    let mut stdin = Some(stdin);
    let mut written = 0;
    if state.is_empty() {
        stdin = None;
    }
    loop {
        let mut left = match deadline {
            None => None,
            Some(d) => {
                let left = d.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    return Ok(None);
                }
                Some(left)
            }
        };
        if exited.is_none() {
            left = Some(left.map_or(EXIT_CHECK, |l| l.min(EXIT_CHECK)));
        }
        let wait = match left {
            None => PollTimeout::NONE,
            // Round up so we never wake a millisecond early and spin.
            Some(l) => {
                let ms = l.as_micros().div_ceil(1000).min(i32::MAX as u128) as i32;
                PollTimeout::try_from(ms).unwrap_or(PollTimeout::MAX)
            }
        };
        let mut fds = Vec::with_capacity(2);
        if let Some(pipe) = &stdin {
            fds.push(PollFd::new(pipe.as_fd(), PollFlags::POLLOUT));
        }
        if let Some(pidfd) = &exited {
            fds.push(PollFd::new(pidfd.as_fd(), PollFlags::POLLIN));
        }
        match poll(&mut fds, wait) {
            Err(Errno::EINTR) => continue,
            Err(e) => bail!("waiting for the hook: {e}"),
            Ok(_) => {}
        }
        let ready: Vec<bool> = fds.iter().map(|f| f.any().unwrap_or(false)).collect();
        drop(fds);
        let pipe_ready = stdin.is_some() && ready[0];
        let child_done = match &exited {
            Some(_) => *ready.last().expect("pidfd polled"),
            None => child
                .try_wait()
                .map_err(|e| anyhow!("waiting for the hook: {e}"))?
                .is_some(),
        };
        if pipe_ready {
            let pipe = stdin.as_ref().expect("polled only while open");
            match nix::unistd::write(pipe, &state[written..]) {
                Ok(n) => written += n,
                Err(Errno::EAGAIN) | Err(Errno::EINTR) => {}
                // EPIPE: the hook closed stdin or exited without reading it.
                // That is its business; its exit status decides success.
                Err(_) => written = state.len(),
            }
            if written == state.len() {
                // Closing gives the hook EOF.
                stdin = None;
            }
        }
        if child_done {
            drop(stdin);
            return child
                .wait()
                .map(Some)
                .map_err(|e| anyhow!("waiting for the hook: {e}"));
        }
    }
}

/// How often to look for the hook's exit when there is no pidfd.
const EXIT_CHECK: Duration = Duration::from_millis(10);

/// A pidfd becomes readable when the process exits, which lets one poll()
/// cover the exit, the stdin pipe and the timeout without threads or signals.
/// The child is not reaped until we wait for it, so its pid cannot be reused
/// in between.
fn pidfd_open(pid: u32) -> Result<OwnedFd> {
    crate::process::pidfd_open(pid as i32).map_err(|e| anyhow!("pidfd_open({pid}): {e}"))
}

/// Writing to a pipe whose reader is gone raises SIGPIPE, which kills berth
/// unless it is ignored. Rust ignores it by default, but berth should not
/// depend on that: block it while feeding hooks and swallow what arrived.
struct SigpipeBlocked {
    old_mask: libc::sigset_t,
    was_pending: bool,
}

impl SigpipeBlocked {
    fn new() -> Self {
        // SAFETY: plain signal-mask syscalls on local sigset_t values.
        unsafe {
            let mut pipe: libc::sigset_t = std::mem::zeroed();
            libc::sigemptyset(&mut pipe);
            libc::sigaddset(&mut pipe, libc::SIGPIPE);
            let mut old_mask: libc::sigset_t = std::mem::zeroed();
            libc::pthread_sigmask(libc::SIG_BLOCK, &pipe, &mut old_mask);
            SigpipeBlocked {
                old_mask,
                was_pending: sigpipe_pending(),
            }
        }
    }
}

fn sigpipe_pending() -> bool {
    // SAFETY: sigpending fills a local set.
    unsafe {
        let mut pending: libc::sigset_t = std::mem::zeroed();
        libc::sigpending(&mut pending);
        libc::sigismember(&pending, libc::SIGPIPE) == 1
    }
}

impl Drop for SigpipeBlocked {
    fn drop(&mut self) {
        // SAFETY: as above; a zero timeout makes sigtimedwait a non-blocking
        // "take it if it is there".
        unsafe {
            if !self.was_pending && sigpipe_pending() {
                let mut pipe: libc::sigset_t = std::mem::zeroed();
                libc::sigemptyset(&mut pipe);
                libc::sigaddset(&mut pipe, libc::SIGPIPE);
                let zero = libc::timespec {
                    tv_sec: 0,
                    tv_nsec: 0,
                };
                libc::sigtimedwait(&pipe, std::ptr::null_mut(), &zero);
            }
            libc::pthread_sigmask(libc::SIG_SETMASK, &self.old_mask, std::ptr::null_mut());
        }
    }
}

/// "exit status 1" or "killed by signal SIGSEGV".
fn describe(status: ExitStatus) -> String {
    match (status.code(), status.signal()) {
        (Some(code), _) => format!("exit status {code}"),
        (None, Some(sig)) => format!("killed by signal {}", crate::signals::signal_name(sig)),
        _ => status.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    struct TempDir(PathBuf);
    impl TempDir {
        fn new(tag: &str) -> Self {
            // Tests run in parallel threads: make each directory unique.
            static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
            let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let dir =
                std::env::temp_dir().join(format!("berth-hooks-{tag}-{}-{n}", std::process::id()));
            std::fs::create_dir_all(&dir).unwrap();
            TempDir(dir)
        }
        fn file(&self, name: &str) -> String {
            self.0.join(name).to_str().unwrap().to_string()
        }
    }
    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    fn sh(script: &str, env: &[&str], timeout: Option<i64>) -> Hook {
        let mut hook = Hook::default();
        hook.set_path("/bin/sh".into());
        hook.set_args(Some(vec!["sh".into(), "-c".into(), script.into()]));
        hook.set_env(Some(env.iter().map(|s| s.to_string()).collect()));
        hook.set_timeout(timeout);
        hook
    }

    #[test]
    fn state_reaches_stdin_and_env_is_exact() {
        let dir = TempDir::new("stdin");
        let out = dir.file("state");
        let env_out = dir.file("env");
        let hook = sh(
            &format!("cat > {out}; /usr/bin/env > {env_out}"),
            &["FOO=bar", "EMPTY=", "WITH=eq=sign"],
            None,
        );
        // Much bigger than a pipe buffer, to exercise partial writes.
        let state: Vec<u8> = (0..1_000_000u32).map(|i| b'a' + (i % 26) as u8).collect();
        run_hook(&hook, &state).unwrap();
        assert_eq!(std::fs::read(&out).unwrap(), state);
        let env = std::fs::read_to_string(&env_out).unwrap();
        assert!(env.lines().any(|l| l == "FOO=bar"), "{env}");
        assert!(env.lines().any(|l| l == "EMPTY="), "{env}");
        assert!(env.lines().any(|l| l == "WITH=eq=sign"), "{env}");
        assert!(!env.contains("CARGO"), "environment leaked: {env}");
    }

    #[test]
    fn argv0_comes_from_args_or_path() {
        let dir = TempDir::new("argv");
        let out = dir.file("cmdline");
        let mut hook = sh(&format!("cat /proc/$$/cmdline > {out}"), &[], None);
        let mut args = hook.args().clone().unwrap();
        args[0] = "my-hook".into();
        hook.set_args(Some(args));
        run_hook(&hook, b"{}").unwrap();
        assert!(std::fs::read(&out).unwrap().starts_with(b"my-hook\0-c\0"));

        // Without args argv[0] is the path itself; `true` ignores it.
        let mut bare = Hook::default();
        bare.set_path("/bin/true".into());
        run_hook(&bare, b"{}").unwrap();
    }

    #[test]
    fn hook_that_ignores_stdin_does_not_hang_or_fail() {
        let state = vec![b'x'; 4 << 20];
        run_hook(&sh("exit 0", &[], Some(5)), &state).unwrap();
        run_hook(&sh("sleep 0.2; exec 0<&-; sleep 0.1", &[], Some(5)), &state).unwrap();
        // A closed fd 0 before we write anything at all.
        run_hook(&sh("exec 0<&-; sleep 0.1", &[], None), &state).unwrap();
    }

    #[test]
    fn failures_name_the_stage_path_and_status() {
        let hooks = vec![sh(
            "echo first >&2; echo; echo last words; exit 3",
            &[],
            None,
        )];
        let err = run_hooks(Some(&hooks), b"{}", "prestart").unwrap_err();
        assert_eq!(
            err.to_string(),
            "prestart hook /bin/sh failed: exit status 3: output: first; last words"
        );

        let err = run_hook(&sh("kill -SEGV $$", &[], None), b"{}").unwrap_err();
        assert_eq!(
            err.to_string(),
            "hook /bin/sh failed: killed by signal SIGSEGV"
        );

        let mut missing = Hook::default();
        missing.set_path("/nonexistent/hook".into());
        let err = run_hooks(Some(&vec![missing]), b"{}", "poststop").unwrap_err();
        let msg = err.to_string();
        assert!(
            msg.starts_with("poststop hook /nonexistent/hook could not be started"),
            "{msg}"
        );

        let mut relative = Hook::default();
        relative.set_path("sh".into());
        let err = run_hook(&relative, b"{}").unwrap_err();
        assert_eq!(err.to_string(), "hook sh: path must be absolute");

        let err = run_hook(&sh("true", &[], Some(0)), b"{}").unwrap_err();
        assert!(err
            .to_string()
            .contains("timeout must be greater than zero"));
    }

    #[test]
    fn timeout_kills_the_hook() {
        let started = Instant::now();
        // exec so the pid we kill is sleep itself and nothing lingers.
        let hook = sh("exec sleep 30", &[], Some(1));
        let err = run_hooks(Some(&vec![hook]), &vec![b'x'; 1 << 20], "createRuntime").unwrap_err();
        assert_eq!(
            err.to_string(),
            "createRuntime hook /bin/sh timed out after 1s and was killed"
        );
        let took = started.elapsed();
        assert!(
            took >= Duration::from_secs(1) && took < Duration::from_secs(5),
            "{took:?}"
        );
    }

    #[test]
    fn works_without_a_pidfd() {
        let dir = TempDir::new("nopidfd");
        let out = dir.file("state");
        let state = vec![b'y'; 300_000];
        let feed = |script: &str, timeout| {
            let output = memfd("test").unwrap();
            let mut child = command(&sh(script, &[], None), &output)
                .unwrap()
                .spawn()
                .unwrap();
            let stdin = child.stdin.take().unwrap();
            let status = feed_and_wait(&mut child, stdin, &state, timeout, None).unwrap();
            if status.is_none() {
                child.kill().unwrap();
                child.wait().unwrap();
            }
            status
        };
        let status = feed(&format!("cat > {out}"), None).unwrap();
        assert!(status.success());
        assert_eq!(std::fs::read(&out).unwrap(), state);
        let status = feed("exit 4", None).unwrap();
        assert_eq!(status.code(), Some(4));
        let started = Instant::now();
        assert!(feed("exec sleep 30", Some(Duration::from_millis(200))).is_none());
        assert!(started.elapsed() < Duration::from_secs(3));
    }

    #[test]
    fn stops_at_the_first_failure() {
        let dir = TempDir::new("order");
        let (a, b) = (dir.file("a"), dir.file("b"));
        let hooks = vec![
            sh(&format!(": > {a}"), &[], None),
            sh("exit 1", &[], None),
            sh(&format!(": > {b}"), &[], None),
        ];
        assert!(run_hooks(Some(&hooks), b"{}", "poststart").is_err());
        assert!(std::path::Path::new(&a).exists());
        assert!(!std::path::Path::new(&b).exists());
        run_hooks(None, b"{}", "poststart").unwrap();
    }
}
