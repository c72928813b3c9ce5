//! The channel between `berth create` and the container's init while the
//! container is being set up: a SOCK_SEQPACKET socketpair, so every message
//! arrives whole, and EOF tells either side the other one died.

use anyhow::{anyhow, bail, Result};
use nix::sys::socket::{socketpair, AddressFamily, SockFlag, SockType};
use std::io::Write;
use std::os::fd::AsRawFd;
use std::os::fd::OwnedFd;
use std::os::unix::net::UnixStream;

#[derive(Debug, PartialEq, Eq)]
pub enum Message {
    /// parent → init: the uid/gid maps are written (the init may become
    /// root of its user namespace and set up its mounts); carries the state
    /// JSON that the init's hooks get on stdin.
    Go(String),
    /// parent → init: the init is in its cgroup (sent after Go, while the
    /// init works on its rootfs).
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
        }
    }

    pub fn send(&mut self, msg: &Message) -> Result<()> {
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
        self.sock
            .write_all(&buf)
            .map_err(|e| anyhow!("send to container init: {e}"))
    }

    /// Receives one message; `None` when the other side is gone.
    pub fn recv(&mut self) -> Result<Option<Message>> {
        // Room for the largest message, but only what the kernel writes is
        // ever touched: a zeroed 64 KiB buffer was a quarter of the heap
        // `berth run` pages in.
        let mut buf: Vec<u8> = Vec::with_capacity(65_536);
        let n = loop {
            // SAFETY: recv writes at most capacity() bytes into the buffer.
            let r = unsafe {
                libc::recv(
                    self.sock.as_raw_fd(),
                    buf.as_mut_ptr().cast(),
                    buf.capacity(),
                    0,
                )
            };
            if r >= 0 {
                break r as usize;
            }
            let e = std::io::Error::last_os_error();
            if e.kind() != std::io::ErrorKind::Interrupted {
                bail!("receive from container init: {e}");
            }
        };
        // SAFETY: the kernel initialised the first n bytes.
        unsafe { buf.set_len(n) };
        if n == 0 {
            return Ok(None);
        }
        Ok(Some(match buf[0] {
            b'G' => Message::Go(String::from_utf8_lossy(&buf[1..n]).into_owned()),
            b'C' => Message::Joined,
            b'H' => Message::RunHooks,
            b'D' => Message::HooksDone,
            b'R' => Message::Ready,
            b'E' => Message::Error(String::from_utf8_lossy(&buf[1..n]).into_owned()),
            other => bail!("unexpected sync message {other:#x}"),
        }))
    }

    /// Waits for `want`; an error message, EOF or anything else is an error.
    pub fn expect(&mut self, want: Message) -> Result<()> {
        match self.recv()? {
            Some(m) if m == want => Ok(()),
            Some(Message::Error(e)) => Err(anyhow!(e)),
            Some(m) => bail!("expected {want:?}, got {m:?}"),
            None => bail!("container init exited during setup"),
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
}
