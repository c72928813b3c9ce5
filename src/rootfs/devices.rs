//! /dev: the default devices (config-linux.md "Default Devices"), `linux.devices`, the /dev
//! symlinks (runtime-linux.md "Dev symbolic links") and /dev/ptmx.
//!
//! Nodes are made with mknod, except in a user namespace where mknod of a device is refused: there
//! the host's node is bind-mounted onto an empty file, which gives the same device.

use std::ffi::CStr;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::{Component, Path, PathBuf};

use anyhow::{bail, Context, Result};
use oci_spec::runtime::{LinuxDevice, LinuxDeviceType, Mount};

use super::mount_options::MountOptions;
use super::resolve::{clean, Leaf, RootDir};
use super::{sys, RootfsContext};

/// A device node to create, from the spec or the defaults.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Node {
    /// Container path, absolute, without `..`.
    path: PathBuf,
    kind: libc::mode_t,
    major: u32,
    minor: u32,
    mode: libc::mode_t,
    uid: u32,
    gid: u32,
}

impl Node {
    fn rdev(&self) -> libc::dev_t {
        libc::makedev(self.major, self.minor)
    }
}

/// config-linux.md "Default Devices", all 0666 root:root like runc makes them.
const DEFAULT_DEVICES: [(&str, u32, u32); 6] = [
    ("/dev/null", 1, 3),
    ("/dev/zero", 1, 5),
    ("/dev/full", 1, 7),
    ("/dev/random", 1, 8),
    ("/dev/urandom", 1, 9),
    ("/dev/tty", 5, 0),
];

const DEV_SYMLINKS: [(&CStr, &CStr); 4] = [
    (c"/proc/self/fd", c"fd"),
    (c"/proc/self/fd/0", c"stdin"),
    (c"/proc/self/fd/1", c"stdout"),
    (c"/proc/self/fd/2", c"stderr"),
];

/// Whether the runtime fills /dev: not when the spec bind-mounts a /dev of its own (runc's rule).
pub fn runtime_fills_dev(mounts: &[Mount]) -> bool {
    !mounts.iter().any(|m| {
        let binds = m.typ().as_deref() == Some("bind")
            || MountOptions::parse(m.options().as_deref().unwrap_or_default()).is_bind();
        binds && clean(m.destination()) == Path::new("/dev")
    })
}

/// Create every device, the symlinks and /dev/ptmx in the container's /dev (the spec's /dev mount
/// if it has one, else the rootfs's own directory).
pub fn populate_dev(ctx: &RootfsContext, root: &RootDir, mounts: &[Mount]) -> Result<()> {
    let nodes = device_list(
        ctx.spec
            .linux()
            .as_ref()
            .and_then(|l| l.devices().as_deref()),
    )?;
    // mknod and mkdir modes are meant exactly, not filtered through the runtime's umask.
    let previous_umask = sys::umask(0);
    let result = make_dev(ctx, root, mounts, &nodes);
    sys::umask(previous_umask);
    result
}

fn make_dev(ctx: &RootfsContext, root: &RootDir, mounts: &[Mount], nodes: &[Node]) -> Result<()> {
    let (dev, _) = root
        .resolve_or_create(Path::new("/dev"), Leaf::Directory)
        .context("creating /dev in the rootfs")?;
    for node in nodes {
        let (parent_path, name) = super::resolve::split_leaf(&node.path)
            .with_context(|| format!("device path {}", node.path.display()))?;
        let parent: OwnedFd;
        let dir = if parent_path == Path::new("/dev") {
            dev.as_fd()
        } else {
            parent = root
                .resolve_or_create(parent_path, Leaf::Directory)
                .with_context(|| format!("creating {}", parent_path.display()))?
                .0;
            parent.as_fd()
        };
        make_node(ctx, dir, &name, node)
            .with_context(|| format!("creating device {}", node.path.display()))?;
    }

    for (target, name) in DEV_SYMLINKS {
        symlink_unless_present(dev.as_fd(), target, name)?;
    }
    // CONFIG_PROC_KCORE may be off; a dangling /dev/core would only confuse.
    if Path::new("/proc/kcore").exists() {
        symlink_unless_present(dev.as_fd(), c"/proc/kcore", c"core")?;
    }

    let has_devpts = mounts.iter().any(|m| {
        m.typ().as_deref() == Some("devpts") && clean(m.destination()) == Path::new("/dev/pts")
    });
    if has_devpts {
        // The devpts instance's own ptmx, so new ptys are made in the container's instance.
        match sys::unlinkat(dev.as_fd(), c"ptmx", 0) {
            Err(e) if e.raw_os_error() != Some(libc::ENOENT) => {
                return Err(e).context("removing /dev/ptmx")
            }
            _ => {}
        }
        sys::symlinkat(c"pts/ptmx", dev.as_fd(), c"ptmx")
            .context("linking /dev/ptmx to pts/ptmx")?;
    }
    Ok(())
}

fn symlink_unless_present(dev: BorrowedFd, target: &CStr, name: &CStr) -> Result<()> {
    match sys::symlinkat(target, dev, name) {
        Err(e) if e.raw_os_error() != Some(libc::EEXIST) => Err(e).with_context(|| {
            format!(
                "linking /dev/{} to {}",
                name.to_string_lossy(),
                target.to_string_lossy()
            )
        }),
        _ => Ok(()),
    }
}

/// The spec's devices, then every default device the spec does not already name.
fn device_list(spec_devices: Option<&[LinuxDevice]>) -> Result<Vec<Node>> {
    let mut nodes = Vec::with_capacity(DEFAULT_DEVICES.len() + spec_devices.map_or(0, <[_]>::len));
    for d in spec_devices.unwrap_or_default() {
        nodes.push(node_from_spec(d)?);
    }
    for (path, major, minor) in DEFAULT_DEVICES {
        if nodes.iter().any(|n| n.path == Path::new(path)) {
            continue;
        }
        nodes.push(Node {
            path: PathBuf::from(path),
            kind: libc::S_IFCHR,
            major,
            minor,
            mode: 0o666,
            uid: 0,
            gid: 0,
        });
    }
    Ok(nodes)
}

fn node_from_spec(d: &LinuxDevice) -> Result<Node> {
    let path = d.path();
    // config-linux.md "Devices": the path "MAY be anywhere in the container filesystem, notably
    // outside of /dev". It must name a file below the container's root, never the root itself,
    // and `..` is refused outright rather than resolved (resolution stays inside the rootfs
    // anyway, but such a path is a config error worth naming).
    let acceptable = path.is_absolute()
        && !path.components().any(|c| c == Component::ParentDir)
        && clean(path) != Path::new("/");
    if !acceptable {
        bail!(
            "linux.devices: device path {:?} must be absolute, without \"..\", and not \"/\"",
            path.display().to_string()
        );
    }
    let kind = match d.typ() {
        LinuxDeviceType::C | LinuxDeviceType::U => libc::S_IFCHR,
        LinuxDeviceType::B => libc::S_IFBLK,
        LinuxDeviceType::P => libc::S_IFIFO,
        LinuxDeviceType::A => bail!(
            "linux.devices: device {} has type \"a\", which is not a node type (c, b, u or p)",
            path.display()
        ),
    };
    let number = |n: i64, what: &str| -> Result<u32> {
        u32::try_from(n).with_context(|| {
            format!(
                "linux.devices: device {} has an invalid {what} number {n}",
                path.display()
            )
        })
    };
    Ok(Node {
        path: clean(path),
        kind,
        major: number(d.major(), "major")?,
        minor: number(d.minor(), "minor")?,
        // The spec gives permission bits; a type in them is ignored like runc does.
        mode: d.file_mode().unwrap_or(0o666) & 0o7777,
        uid: d.uid().unwrap_or(0),
        gid: d.gid().unwrap_or(0),
    })
}

fn make_node(ctx: &RootfsContext, dir: BorrowedFd, name: &CStr, node: &Node) -> Result<()> {
    // A FIFO needs no privilege, so it is made even in a user namespace.
    if ctx.in_new_userns && node.kind != libc::S_IFIFO {
        return bind_host_node(dir, name, node);
    }
    let mut replaced = false;
    loop {
        match sys::mknodat(dir, name, node.kind | node.mode, node.rdev()) {
            Ok(()) => break,
            Err(e) if e.raw_os_error() == Some(libc::EEXIST) => {
                let st = sys::lstatat(dir, name)?;
                if is_same_node(&st, node) {
                    return Ok(());
                }
                // An empty file is what a container started in a user namespace leaves in a
                // rootfs /dev; anything else is a conflict the spec wants reported.
                if !replaced && st.st_mode & libc::S_IFMT == libc::S_IFREG && st.st_size == 0 {
                    sys::unlinkat(dir, name, 0)?;
                    replaced = true;
                    continue;
                }
                bail!("a different file already exists at {}", node.path.display());
            }
            // Not allowed to mknod (e.g. no CAP_MKNOD): the host's node will do.
            Err(e) if e.raw_os_error() == Some(libc::EPERM) && node.kind != libc::S_IFIFO => {
                return bind_host_node(dir, name, node)
            }
            Err(e) => return Err(e.into()),
        }
    }
    // A new inode is already root's (we run as root); chown only when asked for another owner.
    if node.uid != 0 || node.gid != 0 {
        sys::lchownat(dir, name, node.uid, node.gid)
            .with_context(|| format!("chown {}:{}", node.uid, node.gid))?;
    }
    Ok(())
}

fn is_same_node(st: &libc::stat, node: &Node) -> bool {
    st.st_mode & libc::S_IFMT == node.kind
        && (node.kind == libc::S_IFIFO || st.st_rdev == node.rdev())
}

/// Bind the host's node at the same path onto an empty file in the container's /dev.
fn bind_host_node(dir: BorrowedFd, name: &CStr, node: &Node) -> Result<()> {
    let host = sys::cstring(&node.path)?;
    let target = match sys::openat(
        dir,
        name,
        libc::O_CREAT | libc::O_EXCL | libc::O_NOFOLLOW | libc::O_WRONLY,
        0o644,
    ) {
        Ok(fd) => fd,
        Err(e) if e.raw_os_error() == Some(libc::EEXIST) => {
            let fd = sys::openat(dir, name, libc::O_PATH | libc::O_NOFOLLOW, 0)?;
            let st = sys::fstat(fd.as_fd())?;
            let fmt = st.st_mode & libc::S_IFMT;
            if fmt != libc::S_IFREG && !is_same_node(&st, node) {
                bail!("a different file already exists at {}", node.path.display());
            }
            fd
        }
        Err(e) => return Err(e.into()),
    };
    sys::mount(
        Some(&host),
        &sys::fd_path(target.as_fd()),
        None,
        libc::MS_BIND,
        None,
    )
    .with_context(|| format!("bind-mounting the host's {}", node.path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use oci_spec::runtime::LinuxDeviceBuilder;

    #[test]
    fn defaults_fill_in_around_spec_devices() {
        let fuse = LinuxDeviceBuilder::default()
            .path("/dev/fuse")
            .typ(LinuxDeviceType::C)
            .major(10)
            .minor(229)
            .file_mode(0o100640u32)
            .uid(1000u32)
            .build()
            .unwrap();
        let null = LinuxDeviceBuilder::default()
            .path("/dev/null")
            .typ(LinuxDeviceType::C)
            .major(1)
            .minor(3)
            .build()
            .unwrap();
        let nodes = device_list(Some(&[fuse, null])).unwrap();
        assert_eq!(nodes.len(), 7);
        assert_eq!(nodes[0].mode, 0o640);
        assert_eq!(nodes[0].uid, 1000);
        assert_eq!(
            nodes
                .iter()
                .filter(|n| n.path == Path::new("/dev/null"))
                .count(),
            1
        );
        assert!(nodes
            .iter()
            .any(|n| n.path == Path::new("/dev/tty") && n.major == 5));
    }

    #[test]
    fn device_paths_must_be_absolute_and_plain() {
        let device = |path: &str| {
            LinuxDeviceBuilder::default()
                .path(path)
                .typ(LinuxDeviceType::C)
                .major(1)
                .minor(3)
                .build()
                .unwrap()
        };
        for path in ["/dev/../etc/x", "/", "dev/rel", "/opt/../../x"] {
            let err = device_list(Some(&[device(path)])).unwrap_err().to_string();
            assert!(err.contains(path), "{path}: {err}");
        }
        // config-linux.md: "MAY be anywhere in the container filesystem".
        for path in ["/etc/dev-here", "/devious", "/dev/sub/node"] {
            assert!(device_list(Some(&[device(path)])).is_ok(), "{path}");
        }
    }
}
