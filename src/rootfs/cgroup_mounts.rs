//! The `cgroup` (and `cgroup2`) mount types: the container sees its own cgroup as the root of
//! each hierarchy and never the directories of other cgroups.
//!
//! - Unified host (cgroup v2 only): a fresh cgroup2 mount when the container has a cgroup
//!   namespace (its root is then the container's cgroup), else a bind of the container's own
//!   cgroup directory.
//! - v1 or hybrid host: a tmpfs at the destination holding one directory per hierarchy the host
//!   has mounted, each a fresh mount of that hierarchy (with a cgroup namespace) or a bind of the
//!   container's own directory in it, plus the co-mount symlinks ("cpu" -> "cpu,cpuacct").

use std::ffi::OsStr;
use std::io;
use std::os::fd::AsFd;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Context, Result};
use libc::{MS_NODEV, MS_NOEXEC, MS_NOSUID, MS_REMOUNT};

use super::mount_options::{AttrChange, MountOptions};
use super::mountinfo::{host_mountinfo, read_own_cgroups, CgroupMembership, MountInfo};
use super::resolve::{Leaf, RootDir};
use super::{attach_bind, sys, RootfsContext};

/// The host tables a cgroup mount needs, read at most once per container start: the mount
/// table (usually `create`'s copy, see [`host_mountinfo`]) and the init's own cgroups.
#[derive(Default)]
pub struct HostCgroups {
    own: Option<Vec<CgroupMembership>>,
}

impl HostCgroups {
    fn load(&mut self) -> Result<(&'static [MountInfo], &[CgroupMembership])> {
        let mounts = host_mountinfo()?;
        if self.own.is_none() {
            self.own = Some(read_own_cgroups()?);
        }
        Ok((mounts, self.own.as_deref().unwrap_or_default()))
    }
}

/// One cgroup hierarchy mounted on the host, and this process's place in it.
pub(super) struct Hierarchy<'a> {
    pub mount: &'a MountInfo,
    pub membership: &'a CgroupMembership,
}

impl Hierarchy<'_> {
    fn is_v2(&self) -> bool {
        self.mount.fs_type == "cgroup2"
    }

    /// The host path of the container's own cgroup directory in this hierarchy.
    pub fn own_dir(&self) -> Result<PathBuf> {
        let rel = self
            .membership
            .path
            .strip_prefix(&self.mount.root)
            .map_err(|_| {
                anyhow!(
                    "own cgroup {} is not below the root {} of the cgroup mount at {}",
                    self.membership.path.display(),
                    self.mount.root.display(),
                    self.mount.mount_point.display()
                )
            })?;
        Ok(self.mount.mount_point.join(rel))
    }

    /// The data a fresh mount of this hierarchy needs to name it ("cpu,cpuacct",
    /// "name=systemd"; nothing for cgroup2), plus the mount entry's own filesystem options.
    fn mount_data(&self, opts: &MountOptions) -> String {
        let mut data = if self.is_v2() {
            String::new()
        } else {
            self.membership.controllers.clone()
        };
        if !opts.data.is_empty() {
            if !data.is_empty() {
                data.push(',');
            }
            data.push_str(&opts.data);
        }
        data
    }
}

/// The hierarchies the host has mounted, each once, that this process is a member of.
pub(super) fn hierarchies<'a>(
    mounts: &'a [MountInfo],
    own: &'a [CgroupMembership],
) -> Vec<Hierarchy<'a>> {
    let mut found: Vec<Hierarchy> = Vec::new();
    for mount in mounts {
        let membership = match mount.fs_type.as_str() {
            "cgroup2" => own
                .iter()
                .find(|c| c.hierarchy == 0 && c.controllers.is_empty()),
            "cgroup" => own.iter().find(|c| {
                c.hierarchy != 0
                    && c.controllers
                        .split(',')
                        .any(|ctl| mount.super_options.split(',').any(|o| o == ctl))
            }),
            _ => continue,
        };
        let Some(membership) = membership else {
            continue;
        };
        // A hierarchy may be mounted more than once on the host; it appears once in the container.
        if found
            .iter()
            .any(|h| h.membership.hierarchy == membership.hierarchy)
        {
            continue;
        }
        found.push(Hierarchy { mount, membership });
    }
    found
}

/// A mount of type "cgroup".
pub fn mount_cgroup(
    ctx: &RootfsContext,
    root: &RootDir,
    dest: &Path,
    opts: &MountOptions,
    host: &mut HostCgroups,
) -> Result<()> {
    let (mounts, _) = host.load()?;
    if !mounts.iter().any(|m| m.fs_type == "cgroup") {
        // A unified host: no v1 hierarchy to show.
        return mount_cgroup2(ctx, root, dest, opts, host);
    }
    let (mounts, own) = host.load()?;

    let (target, _) = root
        .resolve_or_create(dest, Leaf::Directory)
        .with_context(|| format!("creating mount point {}", dest.display()))?;
    sys::mount(
        Some(c"tmpfs"),
        &sys::fd_path(target.as_fd()),
        Some(c"tmpfs"),
        MS_NOSUID | MS_NODEV | MS_NOEXEC,
        Some(c"mode=755"),
    )
    .with_context(|| format!("mounting the cgroup tmpfs on {}", dest.display()))?;
    // The handle of the tmpfs itself, not of the directory it now covers.
    let top = root
        .resolve(dest)
        .with_context(|| format!("opening the cgroup tmpfs at {}", dest.display()))?;

    for h in hierarchies(mounts, own) {
        let Some(name) = h.mount.mount_point.file_name() else {
            continue;
        };
        let cname = sys::cstring(name)?;
        match sys::mkdirat(top.as_fd(), &cname, 0o755) {
            Err(e) if e.raw_os_error() == Some(libc::EEXIST) => continue,
            other => other.with_context(|| {
                format!("creating {}/{}", dest.display(), name.to_string_lossy())
            })?,
        }
        let sub = sys::openat(
            top.as_fd(),
            &cname,
            libc::O_PATH | libc::O_DIRECTORY | libc::O_NOFOLLOW,
            0,
        )?;
        mount_hierarchy(ctx, &h, sub.as_fd(), opts).with_context(|| {
            format!(
                "mounting cgroup hierarchy {} on {}/{}",
                h.mount.mount_point.display(),
                dest.display(),
                name.to_string_lossy()
            )
        })?;
        // "cpu,cpuacct" is also reachable as "cpu" and "cpuacct", as on the host.
        if name.as_bytes().contains(&b',') {
            for part in name.as_bytes().split(|b| *b == b',') {
                let link = sys::cstring(OsStr::from_bytes(part))?;
                match sys::symlinkat(&cname, top.as_fd(), &link) {
                    Err(e) if e.raw_os_error() != Some(libc::EEXIST) => {
                        return Err(e).with_context(|| {
                            format!("linking {}/{}", dest.display(), link.to_string_lossy())
                        })
                    }
                    _ => {}
                }
            }
        }
    }

    if opts.read_only() {
        let ro = AttrChange {
            set: sys::MOUNT_ATTR_RDONLY,
            ..AttrChange::default()
        };
        sys::mount_setattr_fd(top.as_fd(), false, &ro.to_mount_attr())
            .with_context(|| format!("making the cgroup tmpfs at {} read-only", dest.display()))?;
    }
    Ok(())
}

/// A mount of type "cgroup2" (and "cgroup" on a host without v1 hierarchies).
pub fn mount_cgroup2(
    ctx: &RootfsContext,
    root: &RootDir,
    dest: &Path,
    opts: &MountOptions,
    host: &mut HostCgroups,
) -> Result<()> {
    let (target, _) = root
        .resolve_or_create(dest, Leaf::Directory)
        .with_context(|| format!("creating mount point {}", dest.display()))?;
    if ctx.has_cgroupns {
        // With a cgroup namespace a fresh mount shows the container's cgroup as its root; the
        // host tables are not even read.
        let data = sys::cstring(&opts.data)?;
        match sys::mount(
            Some(c"cgroup2"),
            &sys::fd_path(target.as_fd()),
            Some(c"cgroup2"),
            opts.fs_flags() & !MS_REMOUNT,
            (!opts.data.is_empty()).then_some(data.as_c_str()),
        ) {
            Ok(()) => return Ok(()),
            Err(e) if refused(&e) => {}
            Err(e) => {
                return Err(e).with_context(|| format!("mounting cgroup2 on {}", dest.display()))
            }
        }
    }
    let (mounts, own) = host.load()?;
    let all = hierarchies(mounts, own);
    let Some(h) = all.iter().find(|h| h.is_v2()) else {
        bail!(
            "cannot mount cgroup2 on {} without a cgroup namespace: the host has no cgroup2 mount \
             to bind the container's own cgroup from",
            dest.display()
        );
    };
    let source = h.own_dir()?;
    attach_bind(&source, target.as_fd(), true, opts, None)
        .with_context(|| format!("binding {} on {}", source.display(), dest.display()))
}

/// Fresh cgroup mounts can be refused where a bind still works (a hierarchy the container's
/// user namespace may not mount, a v1 hierarchy whose options differ).
fn refused(e: &io::Error) -> bool {
    matches!(e.raw_os_error(), Some(libc::EPERM) | Some(libc::EBUSY))
}

fn mount_hierarchy(
    ctx: &RootfsContext,
    h: &Hierarchy,
    target: std::os::fd::BorrowedFd,
    opts: &MountOptions,
) -> Result<()> {
    if ctx.has_cgroupns {
        let fstype = sys::cstring(&h.mount.fs_type)?;
        let data = h.mount_data(opts);
        let cdata = sys::cstring(&data)?;
        match sys::mount(
            Some(&fstype),
            &sys::fd_path(target),
            Some(&fstype),
            opts.fs_flags() & !MS_REMOUNT,
            (!data.is_empty()).then_some(cdata.as_c_str()),
        ) {
            Ok(()) => return Ok(()),
            Err(e) if refused(&e) => {}
            Err(e) => return Err(e.into()),
        }
    }
    let source = h.own_dir()?;
    attach_bind(&source, target, true, opts, None)
        .with_context(|| format!("binding {}", source.display()))
}

#[cfg(test)]
mod tests {
    use super::super::mountinfo::{parse_cgroups, parse_mountinfo};
    use super::*;

    #[test]
    fn hierarchies_match_memberships() {
        let mounts = parse_mountinfo(
            "31 23 0:28 / /sys/fs/cgroup rw - tmpfs tmpfs rw,mode=755\n\
             32 31 0:29 / /sys/fs/cgroup/cpu,cpuacct rw - cgroup cgroup rw,cpu,cpuacct\n\
             40 31 0:37 / /sys/fs/cgroup/systemd rw - cgroup cgroup rw,xattr,name=systemd\n\
             41 31 0:38 / /sys/fs/cgroup/unified rw - cgroup2 cgroup2 rw\n\
             42 1 0:29 /x /mnt/again rw - cgroup cgroup rw,cpu,cpuacct\n",
        );
        let own = parse_cgroups("4:cpu,cpuacct:/c1\n1:name=systemd:/c1\n0::/c1\n");
        let hs = hierarchies(&mounts, &own);
        let points: Vec<_> = hs.iter().map(|h| h.mount.mount_point.clone()).collect();
        assert_eq!(
            points,
            vec![
                PathBuf::from("/sys/fs/cgroup/cpu,cpuacct"),
                PathBuf::from("/sys/fs/cgroup/systemd"),
                PathBuf::from("/sys/fs/cgroup/unified"),
            ]
        );
        assert_eq!(
            hs[0].own_dir().unwrap(),
            PathBuf::from("/sys/fs/cgroup/cpu,cpuacct/c1")
        );
        let opts = MountOptions::parse(&["ro".to_string()]);
        assert_eq!(hs[0].mount_data(&opts), "cpu,cpuacct");
        assert_eq!(hs[1].mount_data(&opts), "name=systemd");
        assert_eq!(hs[2].mount_data(&opts), "");
    }

    #[test]
    fn own_dir_outside_the_mount_root_is_an_error() {
        let mounts = parse_mountinfo("41 31 0:38 /a /sys/fs/cgroup rw - cgroup2 cgroup2 rw\n");
        let own = parse_cgroups("0::/b/c\n");
        let hs = hierarchies(&mounts, &own);
        assert!(hs[0].own_dir().is_err());
        let own = parse_cgroups("0::/a/c\n");
        let hs = hierarchies(&mounts, &own);
        assert_eq!(hs[0].own_dir().unwrap(), PathBuf::from("/sys/fs/cgroup/c"));
    }
}
