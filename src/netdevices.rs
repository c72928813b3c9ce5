//! linux.netDevices (config-linux.md "Network Devices"): host network
//! devices moved into the container's network namespace at create (a new
//! one, or one joined by path that is not the host's, as runc allows),
//! optionally renamed, with their permanent global addresses and "up".
//!
//! Raw rtnetlink on a NETLINK_ROUTE socket, no library: a link dump, an
//! address dump, RTM_NEWLINK (move + rename, then IFF_UP) and RTM_NEWADDR
//! are all berth needs.
//!
//! Who does what: `berth create` stays in the host's network namespace and
//! moves each device with RTM_NEWLINK + IFLA_NET_NS_FD (an fd of the init's
//! new netns from /proc/PID/ns/net, or of the joined one as opened from
//! its path). The kernel drops a device's addresses when
//! it changes namespace, so they are read before the move and re-added
//! afterwards *inside* the container's netns, together with IFF_UP. For that
//! berth opens a second NETLINK_ROUTE socket inside the container's netns: a
//! netlink socket belongs to the netns it was created in, so the calling
//! thread setns()es into the init's netns, creates the socket and setns()es
//! straight back. No fork, no help from the init, and no fd of the host ever
//! exists in the container: both sockets live in `berth create` and are
//! closed before it returns.
//!
//! Lifecycle (config-linux.md "Namespace Lifecycle and Container
//! Termination"): berth never moves a device back out. When the netns dies
//! with the container (or with a create that failed after a move), the kernel
//! moves physical devices back to the initial netns (keeping the name given
//! in the container) and DESTROYS virtual ones: a moved veth and its host
//! peer are gone afterwards. That is the kernel's behaviour, which the spec
//! asks runtimes to leave alone. A joined netns outlives the container: the
//! devices stay there, its owner's to manage.

use anyhow::{anyhow, bail, Context, Result};
use oci_spec::runtime::{LinuxNamespaceType, Spec};
use std::collections::{BTreeMap, HashSet};
use std::fs::File;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::path::Path;

// linux/rtnetlink.h, linux/if_link.h, linux/if_addr.h, linux/netlink.h.
const NLMSG_ERROR: u16 = 2;
const NLMSG_DONE: u16 = 3;
const NLM_F_REQUEST: u16 = 0x1;
const NLM_F_ACK: u16 = 0x4;
const NLM_F_EXCL: u16 = 0x200;
const NLM_F_CREATE: u16 = 0x400;
const NLM_F_DUMP: u16 = 0x300;
const RTM_NEWLINK: u16 = 16;
const RTM_GETLINK: u16 = 18;
const RTM_NEWADDR: u16 = 20;
const RTM_GETADDR: u16 = 22;
const IFLA_IFNAME: u16 = 3;
const IFLA_NET_NS_FD: u16 = 28;
const IFA_ADDRESS: u16 = 1;
const IFA_LOCAL: u16 = 2;
const IFA_BROADCAST: u16 = 4;
const IFA_FLAGS: u16 = 8;
const IFA_F_PERMANENT: u32 = 0x80;
/// The address flags a user sets (ip-address(8)) and that describe the
/// address rather than its state: kept when the address is re-added.
const IFA_F_SETTABLE: u32 = 0x02 /* NODAD */
    | 0x10 /* HOMEADDRESS */
    | 0x100 /* MANAGETEMPADDR */
    | 0x200 /* NOPREFIXROUTE */
    | 0x400 /* MCAUTOJOIN */;
const RT_SCOPE_UNIVERSE: u8 = 0;
const IFNAMSIZ: usize = 16;
const NLMSG_HDRLEN: usize = 16;
const IFINFOMSG_LEN: usize = 16;
const IFADDRMSG_LEN: usize = 8;

/// One entry of linux.netDevices: the host device and its name inside.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NetDevice {
    pub host: String,
    /// `name`, or the host name when it is not given.
    pub inside: String,
}

impl NetDevice {
    /// A `%d` template: the kernel picks a free name in the container.
    fn is_template(&self) -> bool {
        self.inside.contains("%d")
    }

    /// Whether the kernel could have given the device `name` inside.
    fn matches(&self, name: &str) -> bool {
        match self.inside.split_once("%d") {
            None => name == self.inside,
            Some((pre, post)) => name
                .strip_prefix(pre)
                .and_then(|r| r.strip_suffix(post))
                .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit())),
        }
    }
}

/// The entries of linux.netDevices, sorted by host name (the map has no
/// order; a stable one makes errors and kernel-picked names repeatable).
pub fn devices(spec: &Spec) -> Vec<NetDevice> {
    let mut out: Vec<NetDevice> = spec
        .linux()
        .as_ref()
        .and_then(|l| l.net_devices().as_ref())
        .into_iter()
        .flatten()
        .map(|(host, d)| NetDevice {
            host: host.clone(),
            inside: d
                .name()
                .clone()
                .filter(|n| !n.is_empty())
                .unwrap_or_else(|| host.clone()),
        })
        .collect();
    out.sort_by(|a, b| a.host.cmp(&b.host));
    out
}

/// What can be checked before anything exists: a private network namespace,
/// valid names, no two entries with one name inside, and every host device
/// present in berth's (the host's) network namespace.
pub fn validate(spec: &Spec, rootless: bool) -> Result<()> {
    let devs = devices(spec);
    if devs.is_empty() {
        return Ok(());
    }
    if rootless {
        // Moving a host device takes CAP_NET_ADMIN in the host's netns.
        bail!("linux.netDevices is not supported in rootless mode: moving a host device needs CAP_NET_ADMIN on the host");
    }
    validate_static(spec, &devs)?;
    if let Some(path) = netns_entry(spec).and_then(|n| n.path().clone()) {
        if !path.as_os_str().is_empty() && same_file(&path, Path::new("/proc/self/ns/net"))? {
            bail!(
                "linux.netDevices needs a private network namespace: {} (linux.namespaces) is the host's",
                path.display()
            );
        }
    }
    let mut host = Netlink::open().context("linux.netDevices: netlink socket")?;
    let links = host.links()?;
    for d in &devs {
        if !links.values().any(|n| *n == d.host) {
            bail!(
                "linux.netDevices: there is no network device {:?} on the host",
                d.host
            );
        }
    }
    Ok(())
}

fn netns_entry(spec: &Spec) -> Option<oci_spec::runtime::LinuxNamespace> {
    spec.linux()
        .as_ref()
        .and_then(|l| l.namespaces().as_ref())
        .and_then(|ns| {
            ns.iter()
                .find(|n| n.typ() == LinuxNamespaceType::Network)
                .cloned()
        })
}

fn same_file(a: &Path, b: &Path) -> Result<bool> {
    use std::os::unix::fs::MetadataExt;
    let meta = |p: &Path| {
        std::fs::metadata(p).map_err(|e| anyhow!("linux.netDevices: {}: {e}", p.display()))
    };
    let (a, b) = (meta(a)?, meta(b)?);
    Ok(a.dev() == b.dev() && a.ino() == b.ino())
}

fn validate_static(spec: &Spec, devs: &[NetDevice]) -> Result<()> {
    // The devices go into a network namespace that is not the host's: a
    // new one, or one the config joins by path (an orchestrator's pod
    // netns, which runc accepts too). Without one they would stay where
    // they are, on the host.
    if netns_entry(spec).is_none() {
        bail!("linux.netDevices needs a private network namespace: linux.namespaces has no network entry");
    }
    let mut seen = HashSet::new();
    for d in devs {
        check_name(&d.host)
            .with_context(|| format!("linux.netDevices: host device {:?}", d.host))?;
        check_name(&d.inside)
            .with_context(|| format!("linux.netDevices[{:?}].name {:?}", d.host, d.inside))?;
        if d.is_template() {
            continue;
        }
        if !seen.insert(d.inside.as_str()) {
            bail!(
                "linux.netDevices: two devices would be named {:?} in the container",
                d.inside
            );
        }
    }
    Ok(())
}

/// The kernel's rule for interface names (dev_valid_name): 1..15 bytes, not
/// "." or "..", no '/', ':' or whitespace. A template has one `%d`.
fn check_name(name: &str) -> Result<()> {
    if name.is_empty() || name.len() >= IFNAMSIZ {
        bail!("an interface name must be 1 to 15 bytes long");
    }
    if name == "." || name == ".." {
        bail!("{name:?} is not an interface name");
    }
    if let Some(c) = name
        .chars()
        .find(|c| *c == '/' || *c == ':' || c.is_whitespace() || *c == '\0')
    {
        bail!("an interface name must not contain {c:?}");
    }
    if name.matches('%').count() > 1 || (name.contains('%') && !name.contains("%d")) {
        bail!("only one %d template is allowed in an interface name");
    }
    Ok(())
}

/// An address as the kernel reported it, ready to be sent back.
#[derive(Debug)]
struct Address {
    family: u8,
    prefixlen: u8,
    flags: u32,
    /// IFA_ADDRESS, IFA_LOCAL, IFA_BROADCAST as found.
    attrs: Vec<(u16, Vec<u8>)>,
}

/// Moves every device of linux.netDevices into the container's network
/// namespace: `joined` (the fd linux.namespaces' path was opened as) or
/// else the new one the init `pid` was cloned into. Checks all of them
/// first, then for each one reads its permanent global addresses, moves and
/// renames it, re-adds the addresses inside and sets it up.
pub fn move_into(spec: &Spec, joined: Option<BorrowedFd>, pid: i32) -> Result<()> {
    let devs = devices(spec);
    if devs.is_empty() {
        return Ok(());
    }
    // A joined netns by the fd opened at plan time: the init may not have
    // entered it yet.
    let netns: File = match joined {
        Some(fd) => fd.try_clone_to_owned().map(File::from),
        None => File::open(format!("/proc/{pid}/ns/net")),
    }
    .map_err(|e| anyhow!("linux.netDevices: open the container's network namespace: {e}"))?;
    let mut host = Netlink::open().context("linux.netDevices: netlink socket")?;
    let mut inner = Netlink::open_in(&netns)?;

    // "The runtime MUST check if moving the network interface to the
    // container namespace is possible": every device, before any moves.
    let host_links = host.links()?;
    let inner_links = inner.links()?;
    let mut moves = Vec::new();
    for d in &devs {
        let index = host_links
            .iter()
            .find(|(_, n)| **n == d.host)
            .map(|(i, _)| *i)
            .ok_or_else(|| {
                anyhow!(
                    "linux.netDevices: there is no network device {:?} on the host",
                    d.host
                )
            })?;
        // "If a network device with the specified name already exists in
        // the container namespace, the runtime MUST generate an error,
        // unless the user has provided a template by appending %d".
        if !d.is_template() && inner_links.values().any(|n| *n == d.inside) {
            bail!(
                "linux.netDevices: {:?}: a device named {:?} already exists in the container's network namespace",
                d.host,
                d.inside
            );
        }
        moves.push((d, index));
    }

    for (d, index) in moves {
        // Read before the move: the kernel drops addresses on the way.
        let addrs = host.permanent_global_addresses(index)?;
        let before = inner.links()?;
        let mut msg = Message::new(RTM_NEWLINK, NLM_F_REQUEST | NLM_F_ACK);
        msg.ifinfomsg(index, 0, 0);
        msg.attr(IFLA_NET_NS_FD, &(netns.as_raw_fd() as u32).to_ne_bytes());
        // Renamed in the same request, in the container's netns (a `%d`
        // template lets the kernel pick a free name there).
        msg.attr(IFLA_IFNAME, &nul_terminated(&d.inside));
        host.request(&mut msg).map_err(|e| {
            anyhow!(
                "linux.netDevices: move {:?} into the container as {:?}: {e}",
                d.host,
                d.inside
            )
        })?;
        // The device's index inside: the new link with the name asked for
        // (or one the template expands to). A joined netns may see other
        // links come and go meanwhile; the name tells ours apart.
        let after = inner.links()?;
        let new: Vec<(i32, String)> = after
            .into_iter()
            .filter(|(i, n)| !before.contains_key(i) && d.matches(n))
            .collect();
        let [(inner_index, inner_name)] = new.as_slice() else {
            bail!(
                "linux.netDevices: {:?} was moved but is not found in the container's network namespace",
                d.host
            );
        };
        for a in &addrs {
            inner.add_address(*inner_index, a).map_err(|e| {
                anyhow!(
                    "linux.netDevices: {:?}: re-add address {} in the container: {e}",
                    d.host,
                    a.describe()
                )
            })?;
        }
        // "The runtime MUST set the network device state to "up" after
        // moving it to the network namespace".
        let mut up = Message::new(RTM_NEWLINK, NLM_F_REQUEST | NLM_F_ACK);
        up.ifinfomsg(*inner_index, libc::IFF_UP as u32, libc::IFF_UP as u32);
        inner.request(&mut up).map_err(|e| {
            anyhow!("linux.netDevices: set {inner_name:?} up in the container: {e}")
        })?;
    }
    Ok(())
}

fn nul_terminated(s: &str) -> Vec<u8> {
    let mut v = s.as_bytes().to_vec();
    v.push(0);
    v
}

impl Address {
    fn describe(&self) -> String {
        let bytes = self
            .attrs
            .iter()
            .find(|(t, _)| *t == IFA_LOCAL)
            .or_else(|| self.attrs.iter().find(|(t, _)| *t == IFA_ADDRESS))
            .map(|(_, v)| v.as_slice())
            .unwrap_or(&[]);
        let ip = match bytes.len() {
            4 => std::net::IpAddr::from(<[u8; 4]>::try_from(bytes).expect("4")).to_string(),
            16 => std::net::IpAddr::from(<[u8; 16]>::try_from(bytes).expect("16")).to_string(),
            _ => "?".to_string(),
        };
        format!("{ip}/{}", self.prefixlen)
    }
}

/// A netlink request being built: header, fixed part, attributes.
struct Message {
    buf: Vec<u8>,
}

impl Message {
    fn new(kind: u16, flags: u16) -> Self {
        let mut buf = vec![0u8; NLMSG_HDRLEN];
        buf[4..6].copy_from_slice(&kind.to_ne_bytes());
        buf[6..8].copy_from_slice(&flags.to_ne_bytes());
        Message { buf }
    }

    /// struct ifinfomsg: family, pad, type, index, flags, change.
    fn ifinfomsg(&mut self, index: i32, flags: u32, change: u32) {
        let mut m = [0u8; IFINFOMSG_LEN];
        m[4..8].copy_from_slice(&index.to_ne_bytes());
        m[8..12].copy_from_slice(&flags.to_ne_bytes());
        m[12..16].copy_from_slice(&change.to_ne_bytes());
        self.buf.extend_from_slice(&m);
    }

    /// struct ifaddrmsg: family, prefixlen, flags, scope, index.
    fn ifaddrmsg(&mut self, family: u8, prefixlen: u8, flags: u8, scope: u8, index: i32) {
        self.buf
            .extend_from_slice(&[family, prefixlen, flags, scope]);
        self.buf.extend_from_slice(&(index as u32).to_ne_bytes());
    }

    fn attr(&mut self, kind: u16, data: &[u8]) {
        let len = 4 + data.len();
        self.buf.extend_from_slice(&(len as u16).to_ne_bytes());
        self.buf.extend_from_slice(&kind.to_ne_bytes());
        self.buf.extend_from_slice(data);
        self.buf.resize(align4(self.buf.len()), 0);
    }

    fn finish(&mut self, seq: u32) -> &[u8] {
        let len = self.buf.len() as u32;
        self.buf[0..4].copy_from_slice(&len.to_ne_bytes());
        self.buf[8..12].copy_from_slice(&seq.to_ne_bytes());
        &self.buf
    }
}

fn align4(n: usize) -> usize {
    (n + 3) & !3
}

/// The attributes following a fixed part of `skip` bytes.
fn attrs(payload: &[u8], skip: usize) -> Vec<(u16, &[u8])> {
    let mut out = Vec::new();
    let mut rest = payload.get(skip..).unwrap_or(&[]);
    while rest.len() >= 4 {
        let len = u16::from_ne_bytes([rest[0], rest[1]]) as usize;
        let kind = u16::from_ne_bytes([rest[2], rest[3]]) & 0x3fff;
        if len < 4 || len > rest.len() {
            break;
        }
        out.push((kind, &rest[4..len]));
        rest = rest.get(align4(len)..).unwrap_or(&[]);
    }
    out
}

struct Netlink {
    fd: OwnedFd,
    seq: u32,
}

impl Netlink {
    /// A NETLINK_ROUTE socket in the calling thread's network namespace.
    fn open() -> Result<Self> {
        // SAFETY: plain socket(2); the fd is owned below.
        let fd = unsafe {
            libc::socket(
                libc::AF_NETLINK,
                libc::SOCK_RAW | libc::SOCK_CLOEXEC,
                libc::NETLINK_ROUTE,
            )
        };
        if fd < 0 {
            bail!("socket(NETLINK_ROUTE): {}", std::io::Error::last_os_error());
        }
        // SAFETY: a new fd nobody else owns.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        Ok(Netlink { fd, seq: 0 })
    }

    /// A NETLINK_ROUTE socket in the network namespace `netns`: this thread
    /// enters it just for the socket(2) call and returns to its own.
    fn open_in(netns: &File) -> Result<Self> {
        let ours = File::open("/proc/thread-self/ns/net")
            .map_err(|e| anyhow!("linux.netDevices: open our network namespace: {e}"))?;
        nix::sched::setns(netns.as_fd(), nix::sched::CloneFlags::CLONE_NEWNET).map_err(|e| {
            anyhow!("linux.netDevices: enter the container's network namespace: {e}")
        })?;
        let sock = Netlink::open();
        // Back before anything else: hooks and the rest of create run in
        // the host's namespaces. Not getting back is fatal for this create.
        nix::sched::setns(ours.as_fd(), nix::sched::CloneFlags::CLONE_NEWNET).map_err(|e| {
            anyhow!("linux.netDevices: return to the host's network namespace: {e}")
        })?;
        sock.context("linux.netDevices: netlink socket in the container")
    }

    fn send(&mut self, msg: &mut Message) -> Result<u32> {
        self.seq += 1;
        let seq = self.seq;
        let data = msg.finish(seq);
        // SAFETY: sends data.len() bytes from a valid buffer; a zeroed
        // sockaddr_nl addresses the kernel.
        let r = unsafe {
            let mut to: libc::sockaddr_nl = std::mem::zeroed();
            to.nl_family = libc::AF_NETLINK as u16;
            libc::sendto(
                self.fd.as_raw_fd(),
                data.as_ptr().cast(),
                data.len(),
                0,
                (&to as *const libc::sockaddr_nl).cast(),
                std::mem::size_of::<libc::sockaddr_nl>() as u32,
            )
        };
        if r < 0 {
            bail!("netlink send: {}", std::io::Error::last_os_error());
        }
        Ok(seq)
    }

    /// Reads replies to `seq`, handing each message (type, payload) to `f`
    /// until the ack (NLMSG_ERROR 0) or NLMSG_DONE.
    fn receive(&mut self, seq: u32, mut f: impl FnMut(u16, &[u8])) -> Result<()> {
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            // SAFETY: recv writes at most buf.len() bytes into buf.
            let n =
                unsafe { libc::recv(self.fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len(), 0) };
            if n < 0 {
                let e = std::io::Error::last_os_error();
                if e.kind() == std::io::ErrorKind::Interrupted {
                    continue;
                }
                bail!("netlink receive: {e}");
            }
            let mut rest = &buf[..n as usize];
            while rest.len() >= NLMSG_HDRLEN {
                let len = u32::from_ne_bytes(rest[0..4].try_into().expect("4")) as usize;
                let kind = u16::from_ne_bytes([rest[4], rest[5]]);
                let mseq = u32::from_ne_bytes(rest[8..12].try_into().expect("4"));
                if len < NLMSG_HDRLEN || len > rest.len() {
                    bail!("netlink: truncated message");
                }
                let payload = &rest[NLMSG_HDRLEN..len];
                rest = rest.get(align4(len)..).unwrap_or(&[]);
                if mseq != seq {
                    continue;
                }
                match kind {
                    NLMSG_DONE => return Ok(()),
                    NLMSG_ERROR => {
                        let err = i32::from_ne_bytes(
                            payload
                                .get(0..4)
                                .ok_or_else(|| anyhow!("netlink: short error message"))?
                                .try_into()
                                .expect("4"),
                        );
                        if err == 0 {
                            return Ok(());
                        }
                        return Err(std::io::Error::from_raw_os_error(-err).into());
                    }
                    _ => f(kind, payload),
                }
            }
        }
    }

    /// Sends a request and waits for its ack.
    fn request(&mut self, msg: &mut Message) -> Result<()> {
        let seq = self.send(msg)?;
        self.receive(seq, |_, _| {})
    }

    /// Every link of this socket's netns: index → name.
    fn links(&mut self) -> Result<BTreeMap<i32, String>> {
        let mut msg = Message::new(RTM_GETLINK, NLM_F_REQUEST | NLM_F_DUMP);
        msg.ifinfomsg(0, 0, 0);
        let seq = self
            .send(&mut msg)
            .context("linux.netDevices: list links")?;
        let mut out = BTreeMap::new();
        self.receive(seq, |kind, payload| {
            if kind != RTM_NEWLINK || payload.len() < IFINFOMSG_LEN {
                return;
            }
            let index = i32::from_ne_bytes(payload[4..8].try_into().expect("4"));
            if let Some((_, name)) = attrs(payload, IFINFOMSG_LEN)
                .into_iter()
                .find(|(t, _)| *t == IFLA_IFNAME)
            {
                let name = name.split(|b| *b == 0).next().unwrap_or(&[]);
                out.insert(index, String::from_utf8_lossy(name).into_owned());
            }
        })
        .context("linux.netDevices: list links")?;
        Ok(out)
    }

    /// The addresses of link `index` that the spec says to keep: IPv4 and
    /// IPv6, IFA_F_PERMANENT, scope RT_SCOPE_UNIVERSE.
    fn permanent_global_addresses(&mut self, index: i32) -> Result<Vec<Address>> {
        let mut msg = Message::new(RTM_GETADDR, NLM_F_REQUEST | NLM_F_DUMP);
        msg.ifaddrmsg(libc::AF_UNSPEC as u8, 0, 0, 0, 0);
        let seq = self
            .send(&mut msg)
            .context("linux.netDevices: list addresses")?;
        let mut out = Vec::new();
        self.receive(seq, |kind, payload| {
            if kind != RTM_NEWADDR || payload.len() < IFADDRMSG_LEN {
                return;
            }
            let (family, prefixlen, flags8, scope) =
                (payload[0], payload[1], payload[2], payload[3]);
            let ifindex = u32::from_ne_bytes(payload[4..8].try_into().expect("4")) as i32;
            if ifindex != index || scope != RT_SCOPE_UNIVERSE {
                return;
            }
            let all = attrs(payload, IFADDRMSG_LEN);
            // IFA_FLAGS holds all 32 bits when present; ifa_flags the low 8.
            let flags = all
                .iter()
                .find(|(t, v)| *t == IFA_FLAGS && v.len() == 4)
                .map(|(_, v)| u32::from_ne_bytes((*v).try_into().expect("4")))
                .unwrap_or(flags8 as u32);
            if flags & IFA_F_PERMANENT == 0 {
                return;
            }
            let attrs = all
                .into_iter()
                .filter(|(t, _)| matches!(*t, IFA_ADDRESS | IFA_LOCAL | IFA_BROADCAST))
                .map(|(t, v)| (t, v.to_vec()))
                .collect();
            out.push(Address {
                family,
                prefixlen,
                flags: flags & IFA_F_SETTABLE,
                attrs,
            });
        })
        .context("linux.netDevices: list addresses")?;
        Ok(out)
    }

    fn add_address(&mut self, index: i32, a: &Address) -> Result<()> {
        let mut msg = Message::new(
            RTM_NEWADDR,
            NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL,
        );
        msg.ifaddrmsg(
            a.family,
            a.prefixlen,
            a.flags as u8,
            RT_SCOPE_UNIVERSE,
            index,
        );
        for (t, v) in &a.attrs {
            msg.attr(*t, v);
        }
        msg.attr(IFA_FLAGS, &a.flags.to_ne_bytes());
        self.request(&mut msg)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interface_names() {
        for ok in ["eth0", "a", "eth%d", "123456789012345", "veth-x.1"] {
            assert!(check_name(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "1234567890123456",
            "a/b",
            "a b",
            "a\tb",
            "a:b",
            ".",
            "..",
            "e%d%d",
            "e%s",
        ] {
            assert!(check_name(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn template_matches() {
        let d = |inside: &str| NetDevice {
            host: "h".into(),
            inside: inside.into(),
        };
        assert!(d("eth%d").matches("eth0") && d("eth%d").matches("eth12"));
        assert!(!d("eth%d").matches("eth") && !d("eth%d").matches("ethx"));
        assert!(d("a%db").matches("a3b") && !d("a%db").matches("a3"));
        assert!(d("ctr0").matches("ctr0") && !d("ctr0").matches("ctr1"));
    }

    #[test]
    fn attributes_round_trip() {
        let mut m = Message::new(RTM_NEWLINK, NLM_F_REQUEST);
        m.ifinfomsg(7, 1, 1);
        m.attr(IFLA_IFNAME, &nul_terminated("eth0"));
        m.attr(IFLA_NET_NS_FD, &5u32.to_ne_bytes());
        let data = m.finish(1).to_vec();
        assert_eq!(data.len() % 4, 0);
        assert_eq!(
            u32::from_ne_bytes(data[0..4].try_into().unwrap()) as usize,
            data.len()
        );
        let got = attrs(&data[NLMSG_HDRLEN..], IFINFOMSG_LEN);
        assert_eq!(got.len(), 2);
        assert_eq!(got[0], (IFLA_IFNAME, &b"eth0\0"[..]));
        assert_eq!(got[1], (IFLA_NET_NS_FD, &5u32.to_ne_bytes()[..]));
    }

    #[test]
    fn host_links_include_loopback() {
        let mut nl = Netlink::open().unwrap();
        let links = nl.links().unwrap();
        assert_eq!(links.get(&1).map(String::as_str), Some("lo"));
    }
}
