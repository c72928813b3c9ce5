//! Terminals for containers with `process.terminal: true` (config.md
//! "Console", runtime-linux.md, the runc contract's "Console socket").
//!
//! The pty is allocated inside the container (after its /dev/pts is mounted
//! and the root pivoted) so that the slave belongs to the container's devpts.
//! The slave becomes the container process's controlling terminal and stdio;
//! the master goes either to the client over `--console-socket` (one fd via
//! SCM_RIGHTS, the shim's framing) or, for a foreground `berth run`, back to
//! berth, which copies bytes between it and the user's terminal.

use anyhow::{bail, Context, Result};
use nix::errno::Errno;
use nix::fcntl::{fcntl, open, FcntlArg, FdFlag, OFlag};
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::signal::{SigSet, SigmaskHow, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use nix::sys::socket::{
    connect, recvmsg, sendmsg, socket, AddressFamily, ControlMessage, ControlMessageOwned,
    MsgFlags, SockFlag, SockType, UnixAddr,
};
use nix::sys::stat::Mode;
use nix::sys::termios::{cfmakeraw, tcgetattr, tcsetattr, SetArg, Termios};
use std::io::{IoSlice, IoSliceMut};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, IntoRawFd, OwnedFd, RawFd};
use std::path::{Path, PathBuf};

/// go-runc reads the name into a 4096-byte buffer and rejects a full one.
const MAX_NAME: usize = 4095;

/// Longest path that fits in `sockaddr_un.sun_path` with its NUL.
const MAX_SOCKET_PATH: usize = 107;

/// Open a new pty master from /dev/ptmx and unlock its slave; returns the
/// master (close-on-exec) and the slave's path (/dev/pts/N).
///
/// grantpt() is not needed: devpts already creates the slave with the owner
/// and mode given by the mount's gid=/mode= options.
pub fn open_pty() -> Result<(OwnedFd, PathBuf)> {
    let fd = open(
        "/dev/ptmx",
        OFlag::O_RDWR | OFlag::O_NOCTTY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .context("opening /dev/ptmx")?;
    // SAFETY: open just returned this fd and nothing else owns it.
    let master = unsafe { OwnedFd::from_raw_fd(fd) };
    let unlock: libc::c_int = 0;
    // SAFETY: TIOCSPTLCK reads an int through the pointer.
    if unsafe { libc::ioctl(master.as_raw_fd(), libc::TIOCSPTLCK, &unlock) } < 0 {
        bail!("unlocking the pty slave (TIOCSPTLCK): {}", Errno::last());
    }
    let mut number: libc::c_uint = 0;
    // SAFETY: TIOCGPTN writes an unsigned int through the pointer. Unlike
    // libc's ptsname() it has no static buffer.
    if unsafe { libc::ioctl(master.as_raw_fd(), libc::TIOCGPTN, &mut number) } < 0 {
        bail!("reading the pty number (TIOCGPTN): {}", Errno::last());
    }
    Ok((master, PathBuf::from(format!("/dev/pts/{number}"))))
}

/// Open the slave of `master` without a path lookup (TIOCGPTPEER, Linux
/// 4.13+). Prefer this to opening the path from [`open_pty`]: nothing in the
/// container's /dev can redirect it to another file.
pub fn open_pty_peer(master: BorrowedFd<'_>) -> Result<OwnedFd> {
    let flags = libc::O_RDWR | libc::O_NOCTTY | libc::O_CLOEXEC;
    // SAFETY: TIOCGPTPEER takes open flags by value and returns a new fd.
    let fd = unsafe { libc::ioctl(master.as_raw_fd(), libc::TIOCGPTPEER, flags) };
    if fd < 0 {
        bail!("opening the pty slave (TIOCGPTPEER): {}", Errno::last());
    }
    // SAFETY: the kernel just returned this fd.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Bind the pty slave onto /dev/console (config-linux.md "Default Devices": /dev/console is set
/// up when terminal is enabled, as a bind mount of the pty slave). Runs in the container's mount
/// namespace after pivot_root; /dev is the tmpfs berth made, but is still not trusted: the
/// target is never followed if it is a symlink.
pub fn mount_console(slave: BorrowedFd<'_>) -> Result<()> {
    let path = c"/dev/console";
    // SAFETY: plain syscalls on a NUL-terminated path and a stat buffer we own.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    let found = unsafe {
        libc::fstatat(
            libc::AT_FDCWD,
            path.as_ptr(),
            &mut st,
            libc::AT_SYMLINK_NOFOLLOW,
        )
    } == 0;
    if found && st.st_mode & libc::S_IFMT == libc::S_IFLNK {
        // SAFETY: as above.
        if unsafe { libc::unlinkat(libc::AT_FDCWD, path.as_ptr(), 0) } != 0 {
            bail!("removing the symlink /dev/console: {}", Errno::last());
        }
    }
    if !found || st.st_mode & libc::S_IFMT == libc::S_IFLNK {
        // SAFETY: as above.
        let r = unsafe { libc::mknodat(libc::AT_FDCWD, path.as_ptr(), libc::S_IFREG | 0o600, 0) };
        if r != 0 && Errno::last() != Errno::EEXIST {
            bail!("creating /dev/console: {}", Errno::last());
        }
    }
    let target = open(
        "/dev/console",
        OFlag::O_PATH | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .context("opening /dev/console")?;
    // SAFETY: open just returned this fd.
    let target = unsafe { OwnedFd::from_raw_fd(target) };
    let source = std::ffi::CString::new(format!("/proc/self/fd/{}", slave.as_raw_fd())).unwrap();
    let onto = std::ffi::CString::new(format!("/proc/self/fd/{}", target.as_raw_fd())).unwrap();
    // SAFETY: NUL-terminated strings that outlive the call.
    let r = unsafe {
        libc::mount(
            source.as_ptr(),
            onto.as_ptr(),
            std::ptr::null(),
            libc::MS_BIND,
            std::ptr::null(),
        )
    };
    if r != 0 {
        bail!("bind-mounting the pty onto /dev/console: {}", Errno::last());
    }
    Ok(())
}

/// Set a terminal's size (process.consoleSize: height = rows, width = columns).
/// Takes any unsigned width so callers can pass the spec's u64 unconverted.
pub fn set_console_size(
    fd: impl AsFd,
    height: impl Into<u64>,
    width: impl Into<u64>,
) -> Result<()> {
    let (height, width) = (height.into(), width.into());
    let (Ok(rows), Ok(cols)) = (u16::try_from(height), u16::try_from(width)) else {
        bail!("console size {height}x{width} does not fit a terminal (max 65535x65535)");
    };
    let size = libc::winsize {
        ws_row: rows,
        ws_col: cols,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    set_window_size(fd.as_fd(), &size)
        .with_context(|| format!("setting console size {height}x{width}"))
}

fn set_window_size(fd: BorrowedFd<'_>, size: &libc::winsize) -> Result<()> {
    // SAFETY: TIOCSWINSZ reads a winsize through the pointer.
    if unsafe { libc::ioctl(fd.as_raw_fd(), libc::TIOCSWINSZ, size) } < 0 {
        bail!("TIOCSWINSZ: {}", Errno::last());
    }
    Ok(())
}

fn window_size(fd: BorrowedFd<'_>) -> Option<libc::winsize> {
    let mut size = libc::winsize {
        ws_row: 0,
        ws_col: 0,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCGWINSZ writes a winsize through the pointer.
    (unsafe { libc::ioctl(fd.as_raw_fd(), libc::TIOCGWINSZ, &mut size) } == 0).then_some(size)
}

/// Make `slave` this process's controlling terminal and its stdin, stdout
/// and stderr. Starts a new session first: only a session leader without a
/// terminal may acquire one.
pub fn make_controlling_terminal(slave: OwnedFd) -> Result<()> {
    if let Err(e) = nix::unistd::setsid() {
        // EPERM: already a process group leader. Fine if we lead our own
        // session already (TIOCSCTTY will tell if it has a terminal).
        let leader = nix::unistd::getsid(None).ok() == Some(nix::unistd::getpid());
        if e != Errno::EPERM || !leader {
            bail!("starting a new session for the terminal (setsid): {e}");
        }
    }
    // SAFETY: TIOCSCTTY takes an int by value (0: do not steal it).
    if unsafe { libc::ioctl(slave.as_raw_fd(), libc::TIOCSCTTY, 0) } < 0 {
        bail!(
            "making the pty the controlling terminal (TIOCSCTTY): {}",
            Errno::last()
        );
    }
    let fd = slave.into_raw_fd();
    for target in 0..=2 {
        if fd == target {
            // dup2 onto itself would keep FD_CLOEXEC, and exec would close it.
            fcntl(fd, FcntlArg::F_SETFD(FdFlag::empty()))
                .with_context(|| format!("clearing close-on-exec on fd {fd}"))?;
        } else {
            nix::unistd::dup2(fd, target)
                .with_context(|| format!("duplicating the pty onto fd {target}"))?;
        }
    }
    if fd > 2 {
        // SAFETY: we own fd (from into_raw_fd); 0-2 are copies that stay open.
        drop(unsafe { OwnedFd::from_raw_fd(fd) });
    }
    Ok(())
}

/// Connect to the client's console socket (AF_UNIX stream, close-on-exec).
/// A path too long for sockaddr_un is reached through /proc/self/fd/N/<name>
/// with N an O_PATH descriptor of its directory, so /proc must be the host's
/// (call this before entering the container's mount namespace).
pub fn connect_console_socket(path: &Path) -> Result<OwnedFd> {
    let sock = socket(
        AddressFamily::Unix,
        SockType::Stream,
        SockFlag::SOCK_CLOEXEC,
        None,
    )
    .context("creating a socket for the console socket")?;
    let result = if path.as_os_str().len() <= MAX_SOCKET_PATH {
        connect_unix(sock.as_raw_fd(), path)
    } else {
        let (Some(dir), Some(name)) = (path.parent(), path.file_name()) else {
            bail!("console socket path {} has no file name", path.display());
        };
        let dir = open(
            dir,
            OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
        .with_context(|| format!("opening the directory of console socket {}", path.display()))?;
        // SAFETY: open just returned this fd.
        let dir = unsafe { OwnedFd::from_raw_fd(dir) };
        let mut short = PathBuf::from(format!("/proc/self/fd/{}", dir.as_raw_fd()));
        short.push(name);
        connect_unix(sock.as_raw_fd(), &short)
    };
    result.with_context(|| format!("connecting to console socket {}", path.display()))?;
    Ok(sock)
}

fn connect_unix(sock: RawFd, path: &Path) -> Result<()> {
    let addr = UnixAddr::new(path).context("socket address")?;
    loop {
        match connect(sock, &addr) {
            Err(Errno::EINTR) => continue,
            other => return Ok(other?),
        }
    }
}

/// Send exactly one descriptor with `name` as the payload, the framing
/// go-runc's console socket expects (control data of CMSG_SPACE(4), payload
/// under 4096 bytes). runc names a pty master "/dev/ptmx".
pub fn send_fd(sock: impl AsRawFd, fd: impl AsFd, name: &str) -> Result<()> {
    // A stream socket carries control data only along with at least one byte.
    if name.is_empty() || name.len() > MAX_NAME {
        bail!(
            "descriptor name must be 1 to {MAX_NAME} bytes, got {}",
            name.len()
        );
    }
    let fds = [fd.as_fd().as_raw_fd()];
    let cmsg = [ControlMessage::ScmRights(&fds)];
    let iov = [IoSlice::new(name.as_bytes())];
    // MSG_NOSIGNAL: a client that went away is an error, not a SIGPIPE.
    let sent = loop {
        match sendmsg::<()>(sock.as_raw_fd(), &iov, &cmsg, MsgFlags::MSG_NOSIGNAL, None) {
            Err(Errno::EINTR) => continue,
            other => break other.context("sending the terminal over the console socket")?,
        }
    };
    if sent != name.len() {
        bail!("console socket took {sent} of {} bytes", name.len());
    }
    Ok(())
}

/// Receive one descriptor sent by [`send_fd`] (close-on-exec). Any extra
/// descriptors are closed and reported as an error.
pub fn recv_fd(sock: impl AsRawFd) -> Result<OwnedFd> {
    let mut name = [0u8; MAX_NAME + 1];
    let mut cmsg_buf = nix::cmsg_space!([RawFd; 4]);
    let mut received: Vec<OwnedFd> = Vec::new();
    let (bytes, truncated) = loop {
        let mut iov = [IoSliceMut::new(&mut name)];
        match recvmsg::<()>(
            sock.as_raw_fd(),
            &mut iov,
            Some(&mut cmsg_buf),
            MsgFlags::MSG_CMSG_CLOEXEC,
        ) {
            Err(Errno::EINTR) => continue,
            Err(e) => return Err(e).context("receiving a descriptor"),
            Ok(msg) => {
                for cmsg in msg.cmsgs().context("reading control messages")? {
                    if let ControlMessageOwned::ScmRights(fds) = cmsg {
                        // SAFETY: SCM_RIGHTS installed these fds for us.
                        received.extend(
                            fds.into_iter()
                                .map(|fd| unsafe { OwnedFd::from_raw_fd(fd) }),
                        );
                    }
                }
                break (msg.bytes, msg.flags.contains(MsgFlags::MSG_CTRUNC));
            }
        }
    };
    if truncated {
        bail!("received control data was truncated (too many descriptors)");
    }
    match received.len() {
        1 => Ok(received.pop().expect("one fd")),
        0 if bytes == 0 => bail!("socket closed before a descriptor was sent"),
        0 => bail!("message without a descriptor"),
        n => bail!("expected one descriptor, received {n}"),
    }
}

/// Copy between the user's terminal (our stdin/stdout) and a container's pty
/// master until the container side closes (every slave fd is gone: read
/// returns EIO). Used by a foreground `berth run` with terminal=true.
///
/// A tty stdin is put in raw mode so keys (^C, ^Z...) reach the container's
/// own line discipline; it is restored on return, error or not. Window size
/// follows the user's terminal, at start and on SIGWINCH. EOF on stdin stops
/// input only.
///
/// Also hands `signals` (which are blocked meanwhile
/// and taken through the same poll loop) to `on_signal`, for a caller that
/// forwards signals to the container while the terminal is proxied. SIGWINCH
/// is always handled here and never handed on. An error from `on_signal`
/// ends the proxy with that error.
pub fn proxy_terminal_with_signals(
    master: OwnedFd,
    signals: SigSet,
    on_signal: &mut dyn FnMut(Signal) -> Result<()>,
) -> Result<()> {
    let stdin = std::io::stdin();
    let stdout = std::io::stdout();
    let user = Endpoints {
        input: stdin.as_fd(),
        output: stdout.as_fd(),
    };
    let _raw = RawMode::enter(user.input)?;
    proxy(master, user, signals, on_signal)
}

/// The user's side of the proxy; separate from stdio for the tests.
#[derive(Clone, Copy)]
struct Endpoints<'a> {
    input: BorrowedFd<'a>,
    output: BorrowedFd<'a>,
}

impl Endpoints<'_> {
    /// The terminal whose size the container should have, if any.
    fn size(&self) -> Option<libc::winsize> {
        window_size(self.input).or_else(|| window_size(self.output))
    }
}

fn proxy(
    master: OwnedFd,
    user: Endpoints<'_>,
    mut signals: SigSet,
    on_signal: &mut dyn FnMut(Signal) -> Result<()>,
) -> Result<()> {
    signals.add(Signal::SIGWINCH);
    let watched = SignalWatch::new(&signals)?;
    if let Some(size) = user.size() {
        // Best effort: a size we cannot set is cosmetic.
        let _ = set_window_size(master.as_fd(), &size);
    }
    // Non-blocking so that a container not reading its input cannot make
    // us stop copying its output.
    let flags = fcntl(master.as_raw_fd(), FcntlArg::F_GETFL).context("reading pty master flags")?;
    let flags = OFlag::from_bits_truncate(flags) | OFlag::O_NONBLOCK;
    fcntl(master.as_raw_fd(), FcntlArg::F_SETFL(flags))
        .context("making the pty master non-blocking")?;

    let mut input_open = true;
    let mut output_ok = true;
    let mut pending: Vec<u8> = Vec::new();
    let mut buf = vec![0u8; 32 * 1024];
    loop {
        let mut master_events = PollFlags::POLLIN;
        if !pending.is_empty() {
            master_events |= PollFlags::POLLOUT;
        }
        let mut fds = vec![
            PollFd::new(master.as_fd(), master_events),
            PollFd::new(watched.fd.as_fd(), PollFlags::POLLIN),
        ];
        // Read input only when the last chunk is delivered (backpressure).
        let poll_input = input_open && pending.is_empty();
        if poll_input {
            fds.push(PollFd::new(user.input, PollFlags::POLLIN));
        }
        match poll(&mut fds, PollTimeout::NONE) {
            Err(Errno::EINTR) => continue,
            Err(e) => bail!("waiting on the terminal: {e}"),
            Ok(_) => {}
        }
        let ready = |i: usize| {
            fds.get(i)
                .and_then(|f| f.revents())
                .unwrap_or(PollFlags::empty())
        };
        let (master_ready, signal_ready, input_ready) = (ready(0), ready(1), ready(2));
        drop(fds);

        if signal_ready.contains(PollFlags::POLLIN) {
            while let Some(info) = watched.fd.read_signal().context("reading signals")? {
                let Ok(sig) = Signal::try_from(info.ssi_signo as i32) else {
                    continue;
                };
                if sig == Signal::SIGWINCH {
                    if let Some(size) = user.size() {
                        let _ = set_window_size(master.as_fd(), &size);
                    }
                }
                if watched.forward.contains(sig) {
                    on_signal(sig)?;
                }
            }
        }

        if master_ready.intersects(PollFlags::POLLIN | PollFlags::POLLHUP | PollFlags::POLLERR) {
            match nix::unistd::read(master.as_raw_fd(), &mut buf) {
                // EIO: the last slave fd closed, the container is done.
                Ok(0) | Err(Errno::EIO) => return Ok(()),
                Ok(n) => {
                    if output_ok && write_all(user.output, &buf[..n]).is_err() {
                        // Nobody is reading our output any more; keep
                        // draining so the container does not block on it.
                        output_ok = false;
                    }
                }
                // HUP without data and without EIO would spin: treat as done.
                Err(Errno::EAGAIN) if master_ready.contains(PollFlags::POLLHUP) => return Ok(()),
                Err(Errno::EAGAIN) | Err(Errno::EINTR) => {}
                Err(e) => bail!("reading from the container's terminal: {e}"),
            }
        }

        if master_ready.contains(PollFlags::POLLOUT) && !pending.is_empty() {
            match nix::unistd::write(&master, &pending) {
                Ok(n) => {
                    pending.drain(..n);
                }
                Err(Errno::EAGAIN) | Err(Errno::EINTR) => {}
                // The container side is closing; the read side will see EIO.
                Err(_) => pending.clear(),
            }
        }

        if !input_ready.is_empty() {
            match nix::unistd::read(user.input.as_raw_fd(), &mut buf) {
                Ok(0) => input_open = false,
                Ok(n) => pending.extend_from_slice(&buf[..n]),
                Err(Errno::EAGAIN) | Err(Errno::EINTR) => {}
                // EIO (a hung-up or background terminal) and the like end input.
                Err(_) => input_open = false,
            }
        }
    }
}

/// Write all of `data` to a possibly non-blocking fd.
fn write_all(fd: BorrowedFd<'_>, mut data: &[u8]) -> nix::Result<()> {
    while !data.is_empty() {
        match nix::unistd::write(fd, data) {
            Ok(n) => data = &data[n..],
            Err(Errno::EINTR) => {}
            Err(Errno::EAGAIN) => {
                let mut fds = [PollFd::new(fd, PollFlags::POLLOUT)];
                match poll(&mut fds, PollTimeout::NONE) {
                    Ok(_) | Err(Errno::EINTR) => {}
                    Err(e) => return Err(e),
                }
            }
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Raw mode on the user's terminal for as long as this lives.
struct RawMode<'a> {
    fd: BorrowedFd<'a>,
    saved: Termios,
}

impl<'a> RawMode<'a> {
    /// None when `fd` is not a terminal (input from a pipe or file).
    fn enter(fd: BorrowedFd<'a>) -> Result<Option<Self>> {
        let Ok(saved) = tcgetattr(fd) else {
            return Ok(None);
        };
        let mut raw = saved.clone();
        cfmakeraw(&mut raw);
        tcsetattr(fd, SetArg::TCSANOW, &raw).context("putting the terminal in raw mode")?;
        Ok(Some(RawMode { fd, saved }))
    }
}

impl Drop for RawMode<'_> {
    fn drop(&mut self) {
        // TCSADRAIN: let our last output reach the screen in raw mode first.
        let _ = tcsetattr(self.fd, SetArg::TCSADRAIN, &self.saved);
    }
}

/// Signals taken through a signalfd (blocked meanwhile); the old mask is
/// restored when this is dropped.
struct SignalWatch {
    fd: SignalFd,
    forward: SigSet,
    old_mask: SigSet,
}

impl SignalWatch {
    fn new(signals: &SigSet) -> Result<Self> {
        let mut old_mask = SigSet::empty();
        nix::sys::signal::pthread_sigmask(
            SigmaskHow::SIG_BLOCK,
            Some(signals),
            Some(&mut old_mask),
        )
        .context("blocking signals for the terminal proxy")?;
        let fd = SignalFd::with_flags(signals, SfdFlags::SFD_CLOEXEC | SfdFlags::SFD_NONBLOCK);
        let fd = match fd {
            Ok(fd) => fd,
            Err(e) => {
                let _ = nix::sys::signal::pthread_sigmask(
                    SigmaskHow::SIG_SETMASK,
                    Some(&old_mask),
                    None,
                );
                bail!("creating a signalfd for the terminal proxy: {e}");
            }
        };
        // SIGWINCH is handled by the proxy itself, never forwarded.
        let mut forward = *signals;
        forward.remove(Signal::SIGWINCH);
        Ok(SignalWatch {
            fd,
            forward,
            old_mask,
        })
    }
}

impl Drop for SignalWatch {
    fn drop(&mut self) {
        let _ =
            nix::sys::signal::pthread_sigmask(SigmaskHow::SIG_SETMASK, Some(&self.old_mask), None);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};
    use std::os::unix::net::{UnixListener, UnixStream};
    use std::os::unix::process::CommandExt;
    use std::process::{Command, Stdio};

    fn pipe() -> (OwnedFd, OwnedFd) {
        nix::unistd::pipe2(OFlag::O_CLOEXEC).unwrap()
    }

    /// Run `script` in sh on a fresh pty's slave as its controlling
    /// terminal, like a container init; returns the master and the child.
    fn container(script: &str) -> (OwnedFd, std::process::Child) {
        let (master, _) = open_pty().unwrap();
        let slave = open_pty_peer(master.as_fd()).unwrap();
        let mut cmd = Command::new("/bin/sh");
        cmd.arg("-c")
            .arg(script)
            .stdin(Stdio::null())
            .stdout(Stdio::null());
        let raw = slave.as_raw_fd();
        // SAFETY: between fork and exec this only makes syscalls (it
        // allocates only to report an error, and glibc malloc is fork-safe).
        unsafe {
            cmd.pre_exec(move || {
                let dup = libc::fcntl(raw, libc::F_DUPFD_CLOEXEC, 3);
                make_controlling_terminal(OwnedFd::from_raw_fd(dup))
                    .map_err(|e| std::io::Error::other(e.to_string()))
            });
        }
        let child = cmd.spawn().unwrap();
        // Only the child holds the slave now, so its exit means EIO on master.
        drop(slave);
        (master, child)
    }

    fn no_signals() -> SigSet {
        SigSet::empty()
    }

    #[test]
    fn pty_name_and_peer_match() {
        let (master, path) = open_pty().unwrap();
        let peer = open_pty_peer(master.as_fd()).unwrap();
        let by_path = std::fs::metadata(&path).unwrap();
        let link = std::fs::read_link(format!("/proc/self/fd/{}", peer.as_raw_fd())).unwrap();
        assert_eq!(link, path);
        assert!(path.starts_with("/dev/pts"));
        use std::os::unix::fs::FileTypeExt;
        assert!(by_path.file_type().is_char_device());
        let flags = fcntl(master.as_raw_fd(), FcntlArg::F_GETFD).unwrap();
        assert!(FdFlag::from_bits_truncate(flags).contains(FdFlag::FD_CLOEXEC));
    }

    #[test]
    fn console_size_is_set() {
        let (master, _) = open_pty().unwrap();
        let slave = open_pty_peer(master.as_fd()).unwrap();
        set_console_size(&master, 40u16, 132u16).unwrap();
        let size = window_size(slave.as_fd()).unwrap();
        assert_eq!((size.ws_row, size.ws_col), (40, 132));
        assert!(set_console_size(&master, 70_000u64, 80u64).is_err());
    }

    #[test]
    fn fd_passing_uses_go_runc_framing() {
        let (a, b) = UnixStream::pair().unwrap();
        let (master, _) = open_pty().unwrap();
        send_fd(a.as_raw_fd(), &master, "/dev/ptmx").unwrap();
        // What go-runc's recvFd checks: control data is exactly
        // CMSG_SPACE(sizeof(int)) and the name is the whole payload.
        let mut name = [0u8; 4096];
        let mut oob = [0u8; 128];
        let mut iov = libc::iovec {
            iov_base: name.as_mut_ptr().cast(),
            iov_len: name.len(),
        };
        // SAFETY: msghdr points at the local buffers above.
        let (n, oobn) = unsafe {
            let mut msg: libc::msghdr = std::mem::zeroed();
            msg.msg_iov = &mut iov;
            msg.msg_iovlen = 1;
            msg.msg_control = oob.as_mut_ptr().cast();
            msg.msg_controllen = oob.len();
            let n = libc::recvmsg(b.as_raw_fd(), &mut msg, libc::MSG_CMSG_CLOEXEC);
            assert!(n > 0);
            let cmsg = libc::CMSG_FIRSTHDR(&msg);
            let fd = *(libc::CMSG_DATA(cmsg) as *const RawFd);
            drop(OwnedFd::from_raw_fd(fd));
            (n as usize, msg.msg_controllen)
        };
        assert_eq!(&name[..n], b"/dev/ptmx");
        // SAFETY: CMSG_SPACE is a pure size computation.
        assert_eq!(oobn, unsafe { libc::CMSG_SPACE(4) } as usize);

        // And our own receiver gets a working pty master back.
        send_fd(a.as_raw_fd(), &master, "/dev/pts/0").unwrap();
        let got = recv_fd(b.as_raw_fd()).unwrap();
        assert!(open_pty_peer(got.as_fd()).is_ok());

        assert!(send_fd(a.as_raw_fd(), &master, "").is_err());
        assert!(send_fd(a.as_raw_fd(), &master, &"x".repeat(4096)).is_err());
        drop(a);
        let err = recv_fd(b.as_raw_fd()).unwrap_err().to_string();
        assert!(err.contains("closed"), "{err}");
    }

    #[test]
    fn connects_to_long_socket_paths() {
        let base = std::env::temp_dir().join(format!("berth-console-{}", std::process::id()));
        let deep = base.join("d".repeat(60)).join("e".repeat(60));
        std::fs::create_dir_all(&deep).unwrap();
        let path = deep.join("console.sock");
        assert!(path.as_os_str().len() > MAX_SOCKET_PATH);
        // Bind through the same /proc/self/fd trick; bind cannot take it either.
        let dir = std::fs::File::open(&deep).unwrap();
        let short = format!("/proc/self/fd/{}/console.sock", dir.as_raw_fd());
        let listener = UnixListener::bind(&short).unwrap();

        let sock = connect_console_socket(&path).unwrap();
        let (accepted, _) = listener.accept().unwrap();
        let (master, _) = open_pty().unwrap();
        send_fd(sock.as_raw_fd(), &master, "/dev/ptmx").unwrap();
        recv_fd(accepted.as_raw_fd()).unwrap();

        let short_path = base.join("s.sock");
        let listener2 = UnixListener::bind(&short_path).unwrap();
        connect_console_socket(&short_path).unwrap();
        drop(listener2.accept().unwrap());
        assert!(connect_console_socket(&base.join("missing.sock")).is_err());
        std::fs::remove_dir_all(&base).unwrap();
    }

    #[test]
    fn proxy_copies_both_ways_until_the_container_exits() {
        let (master, mut child) = container("read line; echo \"got $line\"");
        let (in_r, in_w) = pipe();
        let (out_r, out_w) = pipe();
        std::fs::File::from(in_w).write_all(b"hello\n").unwrap(); // then EOF
        let user = Endpoints {
            input: in_r.as_fd(),
            output: out_w.as_fd(),
        };
        proxy(master, user, no_signals(), &mut |_| Ok(())).unwrap();
        child.wait().unwrap();
        drop(out_w);
        let mut out = String::new();
        std::fs::File::from(out_r).read_to_string(&mut out).unwrap();
        // The container's tty echoes the input, then the reply (with CRLF).
        assert!(out.contains("got hello\r\n"), "{out:?}");
    }

    #[test]
    fn input_eof_does_not_stop_output() {
        let (master, mut child) = container("sleep 0.3; echo late");
        let (in_r, in_w) = pipe();
        drop(in_w);
        let (out_r, out_w) = pipe();
        let user = Endpoints {
            input: in_r.as_fd(),
            output: out_w.as_fd(),
        };
        proxy(master, user, no_signals(), &mut |_| Ok(())).unwrap();
        child.wait().unwrap();
        drop(out_w);
        let mut out = String::new();
        std::fs::File::from(out_r).read_to_string(&mut out).unwrap();
        assert_eq!(out, "late\r\n");
    }

    #[test]
    fn proxy_takes_the_user_terminal_size() {
        // The "user terminal" is another pty; the container prints its size.
        let (user_master, _) = open_pty().unwrap();
        let user_tty = open_pty_peer(user_master.as_fd()).unwrap();
        set_console_size(&user_master, 33u16, 99u16).unwrap();
        let (master, mut child) = container("stty size");
        let (out_r, out_w) = pipe();
        let user = Endpoints {
            input: user_tty.as_fd(),
            output: out_w.as_fd(),
        };
        proxy(master, user, no_signals(), &mut |_| Ok(())).unwrap();
        child.wait().unwrap();
        drop(out_w);
        let mut out = String::new();
        std::fs::File::from(out_r).read_to_string(&mut out).unwrap();
        assert_eq!(out, "33 99\r\n");
    }

    #[test]
    fn signals_are_forwarded_and_sigwinch_resizes() {
        let (user_master, _) = open_pty().unwrap();
        let user_tty = open_pty_peer(user_master.as_fd()).unwrap();
        set_console_size(&user_master, 10u16, 20u16).unwrap();
        let (master, mut child) = container("stty size; read go; stty size");
        let (out_r, out_w) = pipe();
        let user = Endpoints {
            input: user_tty.as_fd(),
            output: out_w.as_fd(),
        };
        // Thread-directed, so no other test thread can take them.
        // SAFETY: pthread_self has no preconditions.
        let me = unsafe { libc::pthread_self() } as usize;
        let resize = std::thread::spawn(move || {
            std::thread::sleep(std::time::Duration::from_millis(250));
            set_console_size(&user_master, 50u16, 160u16).unwrap();
            for sig in [libc::SIGWINCH, libc::SIGUSR2] {
                // SAFETY: `me` is alive: the container (and so the proxy)
                // waits for the line written below.
                unsafe { libc::pthread_kill(me as libc::pthread_t, sig) };
            }
            // Typed on the user's terminal after the signals are queued, so
            // the proxy has seen them by the time the container reads it.
            nix::unistd::write(&user_master, b"go\n").unwrap();
            user_master
        });
        let mut forwarded = Vec::new();
        let wanted = SigSet::from(Signal::SIGUSR2);
        proxy(master, user, wanted, &mut |sig| {
            forwarded.push(sig);
            Ok(())
        })
        .unwrap();
        child.wait().unwrap();
        drop(resize.join().unwrap());
        drop(out_w);
        let mut out = String::new();
        std::fs::File::from(out_r).read_to_string(&mut out).unwrap();
        assert_eq!(out, "10 20\r\ngo\r\n50 160\r\n");
        assert_eq!(forwarded, vec![Signal::SIGUSR2]);
    }

    #[test]
    fn raw_mode_is_restored() {
        let (master, _) = open_pty().unwrap();
        let tty = open_pty_peer(master.as_fd()).unwrap();
        let before = tcgetattr(&tty).unwrap();
        assert!(before
            .local_flags
            .contains(nix::sys::termios::LocalFlags::ICANON));
        {
            let _raw = RawMode::enter(tty.as_fd()).unwrap().expect("a tty");
            let now = tcgetattr(&tty).unwrap();
            assert!(!now
                .local_flags
                .contains(nix::sys::termios::LocalFlags::ICANON));
            assert!(!now
                .local_flags
                .contains(nix::sys::termios::LocalFlags::ECHO));
        }
        let after = tcgetattr(&tty).unwrap();
        assert_eq!(format!("{before:?}"), format!("{after:?}"));
        let (r, _w) = pipe();
        assert!(RawMode::enter(r.as_fd()).unwrap().is_none());
    }
}
