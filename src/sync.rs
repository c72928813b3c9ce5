//! The channel between `berth create` and the container's init while the
//! container is being set up: a SOCK_SEQPACKET socketpair, so every message
//! arrives whole, and EOF tells either side the other one died.

use anyhow::{anyhow, bail, Result};
use nix::sys::socket::{
    recvmsg, sendmsg, socketpair, AddressFamily, ControlMessage, ControlMessageOwned, MsgFlags,
    SockFlag, SockType,
};
use std::io::{IoSlice, IoSliceMut};
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::net::UnixStream;

#[derive(Debug, PartialEq, Eq)]
pub enum Message {
    /// parent → init: the uid/gid maps are written (the init may become
    /// root of its user namespace and set up its mounts); carries the state
    /// JSON that the init's hooks get on stdin.
    Go(String),
    /// parent → init: the init is in its cgroup (sent after Go, while the
    /// init works on its rootfs); carries the container's network namespace
    /// when `create` made it beside the init (namespaces::NetworkBeside).
    Joined,
    /// init → parent: the rootfs is prepared; run prestart and createRuntime hooks.
    RunHooks,
    /// parent → init: those hooks succeeded.
    HooksDone,
    /// init → parent: everything is set up; the init now waits for `start`.
    Ready,
    /// either way: setup failed, with the reason.
    Error(String),
}

pub struct Channel {
    sock: UnixStream,
    /// The receive buffer, made on the first recv and kept: a fresh 64 KiB
    /// each time came from the top of the heap and faulted in new pages
    /// (the chunk's header and the next one's) for every message.
    buf: Vec<u8>,
}

pub fn pair() -> Result<(Channel, Channel)> {
    let (a, b) = socketpair(
        AddressFamily::Unix,
        SockType::SeqPacket,
        None,
        SockFlag::SOCK_CLOEXEC,
    )
    .map_err(|e| anyhow!("socketpair: {e}"))?;
    Ok((Channel::from_fd(a), Channel::from_fd(b)))
}

impl std::os::fd::AsRawFd for Channel {
    fn as_raw_fd(&self) -> std::os::fd::RawFd {
        self.sock.as_raw_fd()
    }
}

impl Channel {
    fn from_fd(fd: OwnedFd) -> Self {
        Channel {
            sock: UnixStream::from(fd),
            buf: Vec::new(),
        }
    }

    pub fn send(&mut self, msg: &Message) -> Result<()> {
        self.send_with_fds(msg, &[])
    }

    /// Sends `msg` with `fds` attached (SCM_RIGHTS): the receiver gets its
    /// own copies, close-on-exec.
    pub fn send_with_fds(&mut self, msg: &Message, fds: &[BorrowedFd]) -> Result<()> {
        let mut buf = Vec::with_capacity(16);
        match msg {
            Message::Go(state) => {
                buf.push(b'G');
                buf.extend_from_slice(state.as_bytes());
            }
            Message::Joined => buf.push(b'C'),
            Message::RunHooks => buf.push(b'H'),
            Message::HooksDone => buf.push(b'D'),
            Message::Ready => buf.push(b'R'),
            Message::Error(text) => {
                buf.push(b'E');
                // Keep within one packet; an error message is one line anyway.
                buf.extend_from_slice(&text.as_bytes()[..text.len().min(60_000)]);
            }
        }
        let raw: Vec<RawFd> = fds.iter().map(|f| f.as_raw_fd()).collect();
        let cmsg = [ControlMessage::ScmRights(&raw)];
        let cmsgs: &[ControlMessage] = if raw.is_empty() { &[] } else { &cmsg };
        let iov = [IoSlice::new(&buf)];
        loop {
            // MSG_NOSIGNAL: an init that died is an error here, not a SIGPIPE.
            match sendmsg::<()>(
                self.sock.as_raw_fd(),
                &iov,
                cmsgs,
                MsgFlags::MSG_NOSIGNAL,
                None,
            ) {
                Ok(_) => return Ok(()),
                Err(nix::errno::Errno::EINTR) => continue,
                Err(e) => bail!("send to container init: {e}"),
            }
        }
    }

    /// Receives one message; `None` when the other side is gone. A message
    /// that carries descriptors is an error here (see [`Self::recv_with_fds`]).
    pub fn recv(&mut self) -> Result<Option<Message>> {
        let (msg, fds) = self.recv_with_fds()?;
        if !fds.is_empty() {
            bail!("unexpected descriptors with sync message {msg:?}");
        }
        Ok(msg)
    }

    /// Receives one message and the descriptors sent with it.
    pub fn recv_with_fds(&mut self) -> Result<(Option<Message>, Vec<OwnedFd>)> {
        // Room for the largest message, but only what the kernel writes is
        // ever touched: a zeroed 64 KiB buffer was a quarter of the heap
        // `berth run` pages in.
        let buf = &mut self.buf;
        buf.clear();
        buf.reserve(65_536);
        let mut cmsg_buf = nix::cmsg_space!([RawFd; 8]);
        let (n, fds) = loop {
            // SAFETY: the slice covers the buffer's capacity, which recvmsg
            // writes at most; only the first n bytes are read afterwards.
            let spare = unsafe { std::slice::from_raw_parts_mut(buf.as_mut_ptr(), buf.capacity()) };
            let mut iov = [IoSliceMut::new(spare)];
            match recvmsg::<()>(
                self.sock.as_raw_fd(),
                &mut iov,
                Some(&mut cmsg_buf),
                MsgFlags::MSG_CMSG_CLOEXEC,
            ) {
                Ok(msg) => {
                    let mut fds = Vec::new();
                    for cmsg in msg.cmsgs().map_err(|e| anyhow!("sync message: {e}"))? {
                        if let ControlMessageOwned::ScmRights(raw) = cmsg {
                            // SAFETY: SCM_RIGHTS installed these fds for us.
                            fds.extend(
                                raw.into_iter()
                                    .map(|fd| unsafe { OwnedFd::from_raw_fd(fd) }),
                            );
                        }
                    }
                    if msg.flags.contains(MsgFlags::MSG_CTRUNC) {
                        bail!("sync message: too many descriptors");
                    }
                    break (msg.bytes, fds);
                }
                Err(nix::errno::Errno::EINTR) => continue,
                Err(e) => bail!("receive from container init: {e}"),
            }
        };
        // SAFETY: the kernel initialised the first n bytes.
        unsafe { buf.set_len(n) };
        if n == 0 {
            return Ok((None, fds));
        }
        let msg = match buf[0] {
            b'G' => Message::Go(String::from_utf8_lossy(&buf[1..n]).into_owned()),
            b'C' => Message::Joined,
            b'H' => Message::RunHooks,
            b'D' => Message::HooksDone,
            b'R' => Message::Ready,
            b'E' => Message::Error(String::from_utf8_lossy(&buf[1..n]).into_owned()),
            other => bail!("unexpected sync message {other:#x}"),
        };
        Ok((Some(msg), fds))
    }

    /// Waits for `want`; an error message, EOF or anything else is an error.
    pub fn expect(&mut self, want: Message) -> Result<()> {
        let fds = self.expect_with_fds(want)?;
        if !fds.is_empty() {
            bail!("unexpected descriptors with a sync message");
        }
        Ok(())
    }

    /// [`Self::expect`] for a message that may carry descriptors: returns them.
    pub fn expect_with_fds(&mut self, want: Message) -> Result<Vec<OwnedFd>> {
        match self.recv_with_fds()? {
            (Some(m), fds) if m == want => Ok(fds),
            (Some(Message::Error(e)), _) => Err(anyhow!(e)),
            (Some(m), _) => bail!("expected {want:?}, got {m:?}"),
            (None, _) => bail!("container init exited during setup"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_round_trip() {
        let (mut a, mut b) = pair().unwrap();
        for m in [
            Message::Go("{}".into()),
            Message::Joined,
            Message::RunHooks,
            Message::HooksDone,
            Message::Ready,
            Message::Error("mount /proc: EPERM".into()),
        ] {
            a.send(&m).unwrap();
            assert_eq!(b.recv().unwrap(), Some(m));
        }
        drop(a);
        assert_eq!(b.recv().unwrap(), None);
        assert!(b.expect(Message::Ready).is_err());
    }

    #[test]
    fn descriptors_travel_with_a_message() {
        use std::os::fd::AsFd;
        let (mut a, mut b) = pair().unwrap();
        let file = std::fs::File::open("/proc/self/ns/net").unwrap();
        a.send_with_fds(&Message::Joined, &[file.as_fd()]).unwrap();
        let (msg, fds) = b.recv_with_fds().unwrap();
        assert_eq!(msg, Some(Message::Joined));
        assert_eq!(fds.len(), 1);
        let same = |f: &dyn AsRawFd| {
            let mut st: libc::stat = unsafe { std::mem::zeroed() };
            assert_eq!(unsafe { libc::fstat(f.as_raw_fd(), &mut st) }, 0);
            (st.st_dev, st.st_ino)
        };
        assert_eq!(same(&fds[0]), same(&file));
        // A descriptor where none is expected is refused, not leaked.
        a.send_with_fds(&Message::Ready, &[file.as_fd()]).unwrap();
        assert!(b.recv().is_err());
    }
}
