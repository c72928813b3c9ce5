//! The container's filesystem (config.md "Root" and "Mounts", config-linux.md "Devices",
//! "Rootfs Mount Propagation", "Masked Paths", "Readonly Paths"), set up by the container's init
//! process inside its new mount namespace, in three steps:
//!
//! 1. [`prepare_rootfs`]: cut the namespace's propagation to the host, bind the rootfs onto
//!    itself, make every mount of the spec in order, fill /dev.
//! 2. (createContainer hooks run here, still seeing the host's "/".)
//! 3. [`enter_rootfs`]: pivot_root into the rootfs and detach the host's tree.
//! 4. [`finish_rootfs`]: readonly and masked paths, the read-only root, the final propagation.
//!
//! Everything under the rootfs is hostile: container paths are resolved by the kernel with the
//! rootfs as "/" (see `resolve`), and every mount is made onto the handle of what was resolved.

mod cgroup_mounts;
mod copy_up;
mod devices;
pub mod mount_options;
pub(crate) mod mountinfo;
mod resolve;
pub(crate) mod sys;
#[cfg(test)]
mod tests;

use std::borrow::Cow;
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Context, Result};
use libc::{c_ulong, MS_BIND, MS_MOVE, MS_PRIVATE, MS_RDONLY, MS_REC, MS_REMOUNT, MS_SLAVE};
use oci_spec::runtime::{Mount, Spec};

use cgroup_mounts::HostCgroups;
use mount_options::{propagation_flags, AttrChange, MountOptions};
use resolve::{clean, Leaf, RootDir};

/// What the rootfs setup needs to know about the container being created.
pub struct RootfsContext<'a> {
    pub spec: &'a Spec,
    /// Absolute bundle directory; relative bind sources are relative to it.
    pub bundle: &'a Path,
    /// Absolute, canonical host path of `root.path`.
    pub rootfs: &'a Path,
    /// Devices must be bind-mounted from the host, not mknod'ed.
    pub in_new_userns: bool,
    /// A new cgroup namespace was created for (or joined by) the container.
    pub has_cgroupns: bool,
    /// Per entry of `mounts`: its idmapped tree from [`prepare_idmapped_mounts`].
    pub idmap_userns: &'a [Option<OwnedFd>],
    /// Returns once the init is in its cgroup, cgroup namespace and network
    /// namespace: called before a mount that may depend on them (see
    /// [`needs_joined`]).
    pub wait_for_joined: &'a dyn Fn() -> Result<()>,
}

/// Idmapped bind mounts, prepared by `create` in the host's namespaces:
/// mount_setattr(MOUNT_ATTR_IDMAP) needs CAP_SYS_ADMIN over the source's
/// filesystem, which an init in a user namespace of its own doesn't have. Each
/// becomes a detached copy of its source with the idmapping applied, that the
/// init attaches like any bind mount. `userns[i]` is the namespace holding
/// mount i's mapping (src/idmap.rs); the result is aligned the same way.
pub fn prepare_idmapped_mounts(
    spec: &Spec,
    bundle: &Path,
    userns: &[Option<OwnedFd>],
) -> Result<Vec<Option<OwnedFd>>> {
    let mounts = spec.mounts().as_deref().unwrap_or_default();
    let mut trees = Vec::with_capacity(userns.len());
    for (m, ns) in mounts.iter().zip(userns) {
        let Some(ns) = ns else {
            trees.push(None);
            continue;
        };
        let opts = MountOptions::parse(m.options().as_deref().unwrap_or_default());
        let source = m.source().as_deref().ok_or_else(|| {
            anyhow!(
                "idmapped mount on {} has no source",
                m.destination().display()
            )
        })?;
        let source = if source.is_absolute() {
            source.to_path_buf()
        } else {
            bundle.join(source)
        };
        let mut flags = sys::OPEN_TREE_CLONE | sys::OPEN_TREE_CLOEXEC;
        if opts.is_recursive_bind() {
            flags |= sys::AT_RECURSIVE;
        }
        let tree = sys::open_tree(libc::AT_FDCWD, &sys::cstring(&source)?, flags)
            .with_context(|| format!("cloning the mount at {}", source.display()))?;
        // config.md `idmap` / `ridmap`: `ridmap` maps every submount too.
        let attr = sys::MountAttr {
            attr_set: sys::MOUNT_ATTR_IDMAP,
            userns_fd: ns.as_raw_fd() as u64,
            ..sys::MountAttr::default()
        };
        sys::mount_setattr_fd(tree.as_fd(), opts.idmap == Some("ridmap"), &attr).with_context(
            || {
                format!(
                    "idmapping {} for {} (mount_setattr MOUNT_ATTR_IDMAP)",
                    source.display(),
                    m.destination().display()
                )
            },
        )?;
        trees.push(Some(tree));
    }
    Ok(trees)
}

/// Before pivot_root: rootfsPropagation on "/", bind the rootfs onto itself, every entry of
/// `mounts` in order, default devices + linux.devices, /dev symlinks, /dev/ptmx.
pub fn prepare_rootfs(ctx: &RootfsContext) -> Result<()> {
    let propagation = root_propagation(ctx.spec)?;
    // Nothing mounted or unmounted from here on may reach the host: the namespace's copy of the
    // host's tree stops sending events (slave: it still receives the host's new mounts, as runc's
    // default does; private/unbindable: it is cut off entirely).
    let isolate = match propagation {
        Some(p) if p & libc::MS_SLAVE == 0 && p & libc::MS_SHARED == 0 => MS_PRIVATE | MS_REC,
        _ => MS_SLAVE | MS_REC,
    };
    sys::mount(None, c"/", None, isolate, None).with_context(|| {
        format!(
            "making / recursively {} in the container's mount namespace",
            if isolate & MS_PRIVATE != 0 {
                "private"
            } else {
                "slave"
            }
        )
    })?;

    // pivot_root needs the new root to be a mount point.
    let rootfs = sys::cstring(ctx.rootfs)?;
    sys::mount(Some(&rootfs), &rootfs, None, MS_BIND | MS_REC, None).with_context(|| {
        format!(
            "bind-mounting the rootfs {} onto itself",
            ctx.rootfs.display()
        )
    })?;
    // Opened after the bind, so lookups go through the bind mount that will become "/".
    let root = RootDir::open_rootfs(ctx.rootfs)
        .with_context(|| format!("opening the rootfs {}", ctx.rootfs.display()))?;

    let mounts = ctx.spec.mounts().as_deref().unwrap_or_default();
    let mut host = HostCgroups::default();
    for (i, m) in mounts.iter().enumerate() {
        let idmap = ctx.idmap_userns.get(i).and_then(Option::as_ref);
        mount_entry(ctx, &root, m, idmap, &mut host).with_context(|| describe(m))?;
    }
    if devices::runtime_fills_dev(mounts) {
        devices::populate_dev(ctx, &root, mounts)?;
    }
    Ok(())
}

/// pivot_root into the rootfs (pivot_root(".", ".") then detach the old root stacked on top),
/// or with `no_pivot` (runc's --no-pivot): MS_MOVE the rootfs onto / and chroot. Leaves cwd at
/// the new "/".
pub fn enter_rootfs(rootfs: &Path, no_pivot: bool) -> Result<()> {
    if no_pivot {
        return move_root(rootfs);
    }
    let old_root =
        sys::open_path(c"/", libc::O_PATH | libc::O_DIRECTORY).context("opening the old root /")?;
    let new_root = sys::open_path(&sys::cstring(rootfs)?, libc::O_PATH | libc::O_DIRECTORY)
        .with_context(|| format!("opening the rootfs {}", rootfs.display()))?;
    sys::fchdir(new_root.as_fd())
        .with_context(|| format!("changing directory to the rootfs {}", rootfs.display()))?;
    // With both arguments ".", the old root ends up mounted on top of the new one, at "/".
    sys::pivot_root_dot().with_context(|| format!("pivot_root into {}", rootfs.display()))?;
    sys::fchdir(old_root.as_fd()).context("changing directory to the old root")?;
    // The createContainer hooks ran in this namespace and may have shared mounts again: make
    // sure the detach below cannot propagate to the host.
    sys::mount(None, c".", None, MS_SLAVE | MS_REC, None)
        .context("making the old root recursively slave")?;
    sys::umount2(c".", libc::MNT_DETACH).context("detaching the old root")?;
    sys::chdir(c"/").context("changing directory to the new /")?;
    Ok(())
}

/// After the pivot: readonlyPaths, maskedPaths, the deferred read-only tmpfs mounts,
/// root.readonly, and the final rootfsPropagation. Paths are container paths now.
pub fn finish_rootfs(spec: &Spec) -> Result<()> {
    let root = RootDir::open(Path::new("/")).context("opening /")?;
    let linux = spec.linux().as_ref();

    for path in linux
        .and_then(|l| l.readonly_paths().as_deref())
        .unwrap_or_default()
    {
        make_readonly(&root, Path::new(path))
            .with_context(|| format!("linux.readonlyPaths: making {path} read-only"))?;
    }
    let mut masker = Masker {
        label: mount_label(spec).map(sys::cstring).transpose()?,
        ..Masker::default()
    };
    for path in linux
        .and_then(|l| l.masked_paths().as_deref())
        .unwrap_or_default()
    {
        masker
            .mask(&root, Path::new(path))
            .with_context(|| format!("linux.maskedPaths: masking {path}"))?;
    }

    let read_only = AttrChange {
        set: sys::MOUNT_ATTR_RDONLY,
        ..AttrChange::default()
    }
    .to_mount_attr();
    for m in spec.mounts().as_deref().unwrap_or_default() {
        if read_only_deferred(m) {
            let dest = m.destination();
            let mounted = root
                .resolve(dest)
                .with_context(|| format!("opening the mount at {}", dest.display()))?;
            sys::mount_setattr_fd(mounted.as_fd(), false, &read_only)
                .with_context(|| format!("making the mount at {} read-only", dest.display()))?;
        }
    }

    if spec.root().as_ref().and_then(|r| r.readonly()) == Some(true) {
        // Only the root mount, as runc does: /proc, /dev... keep their own flags.
        sys::mount_setattr(libc::AT_FDCWD, c"/", 0, &read_only)
            .context("root.readonly: making / read-only")?;
    }
    if let Some(p) = root_propagation(spec)? {
        sys::mount(None, c"/", None, p, None)
            .context("linux.rootfsPropagation: setting the propagation of /")?;
    }
    Ok(())
}

/// linux.rootfsPropagation as MS_* flags (None when unset).
fn root_propagation(spec: &Spec) -> Result<Option<c_ulong>> {
    match spec
        .linux()
        .as_ref()
        .and_then(|l| l.rootfs_propagation().as_deref())
    {
        None | Some("") => Ok(None),
        Some(name) => propagation_flags(name).map(Some).ok_or_else(|| {
            anyhow!(
                "linux.rootfsPropagation: unknown value {name:?} (expected shared, slave, \
                 private or unbindable)"
            )
        }),
    }
}

fn describe(m: &Mount) -> String {
    format!(
        "mounting {} (type {}) on {}",
        m.source()
            .as_deref()
            .map_or(Cow::Borrowed("nothing"), |s| s.to_string_lossy()),
        m.typ().as_deref().unwrap_or("none"),
        m.destination().display()
    )
}

fn mount_entry(
    ctx: &RootfsContext,
    root: &RootDir,
    m: &Mount,
    idmap: Option<&OwnedFd>,
    host: &mut HostCgroups,
) -> Result<()> {
    let opts = MountOptions::parse(m.options().as_deref().unwrap_or_default());
    let wants_idmap =
        opts.idmap.is_some() || m.uid_mappings().is_some() || m.gid_mappings().is_some();
    if wants_idmap && idmap.is_none() {
        // create makes the namespace for every mount that asks (src/idmap.rs).
        bail!("an idmapped mount without its user namespace");
    }
    let typ = m.typ().as_deref().unwrap_or("");
    let dest = m.destination();
    if opts.is_bind() || typ == "bind" {
        return bind_mount(ctx, root, m, &opts, idmap);
    }
    if wants_idmap {
        bail!("idmapped mounts are supported for bind mounts only");
    }
    if needs_joined(typ) {
        (ctx.wait_for_joined)()?;
    }
    match typ {
        "cgroup" => cgroup_mounts::mount_cgroup(ctx, root, dest, &opts, host),
        "cgroup2" => cgroup_mounts::mount_cgroup2(ctx, root, dest, &opts, host),
        "" => bail!("the mount has no type (and is not a bind mount)"),
        _ => fs_mount(ctx, root, m, typ, &opts),
    }
}

/// Whether a new mount of `typ` must wait until the init is in its cgroup
/// and network namespace. cgroup mounts show the cgroup; sysfs keeps the
/// network namespace of whoever mounts it (/sys/class/net), and so may a
/// network filesystem. Only the types known to depend on neither go first:
/// proc (its /proc/net follows the reader), tmpfs, devpts and mqueue (the
/// IPC namespace, made by the clone).
fn needs_joined(typ: &str) -> bool {
    !matches!(typ, "proc" | "tmpfs" | "devpts" | "mqueue")
}

fn bind_mount(
    ctx: &RootfsContext,
    root: &RootDir,
    m: &Mount,
    opts: &MountOptions,
    idmap: Option<&OwnedFd>,
) -> Result<()> {
    let dest = m.destination();
    let Some(source) = m.source() else {
        bail!("bind mount on {} has no source", dest.display());
    };
    let source = if source.is_absolute() {
        Cow::Borrowed(source.as_path())
    } else {
        Cow::Owned(ctx.bundle.join(source))
    };
    let is_dir = match std::fs::metadata(&source) {
        Ok(md) => md.is_dir(),
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            bail!("bind mount source {} does not exist", source.display())
        }
        Err(e) => return Err(e).with_context(|| format!("bind mount source {}", source.display())),
    };
    let leaf = if is_dir { Leaf::Directory } else { Leaf::File };
    let (target, _) = root
        .resolve_or_create(dest, leaf)
        .with_context(|| format!("creating mount point {}", dest.display()))?;
    check_destination(root, target.as_fd(), dest, "bind")?;
    attach_bind(
        &source,
        target.as_fd(),
        opts.is_recursive_bind(),
        opts,
        idmap,
    )
}

/// Clone `source` (a host path) as a detached mount, give it the options' attributes, attach it
/// on `target`, then apply the propagation changes.
///
/// Working on the detached copy means the attributes are right before the mount is visible, and
/// mount_setattr changes only the attributes it is told to, so flags the kernel locked on the
/// source (nosuid, nodev... from outside a user namespace) are kept without a statfs/retry dance.
fn attach_bind(
    source: &Path,
    target: BorrowedFd,
    recursive: bool,
    opts: &MountOptions,
    idmap: Option<&OwnedFd>,
) -> Result<()> {
    let mut flags = sys::OPEN_TREE_CLONE | sys::OPEN_TREE_CLOEXEC;
    if recursive {
        flags |= sys::AT_RECURSIVE;
    }
    // An idmapped mount arrives as a detached tree made by create
    // (prepare_idmapped_mounts); anything else is cloned here.
    let cloned;
    let tree = match idmap {
        Some(prepared) => prepared,
        None => {
            cloned = sys::open_tree(libc::AT_FDCWD, &sys::cstring(source)?, flags)
                .with_context(|| format!("cloning the mount at {}", source.display()))?;
            &cloned
        }
    };
    let top = opts.bind_attrs();
    if !top.is_empty() {
        sys::mount_setattr_fd(tree.as_fd(), false, &top.to_mount_attr())
            .context("setting the bind mount's attributes")?;
    }
    if !opts.recursive.is_empty() {
        sys::mount_setattr_fd(tree.as_fd(), true, &opts.recursive.to_mount_attr())
            .context("setting the bind mount's recursive attributes")?;
    }
    sys::move_mount(tree.as_fd(), target).context("attaching the bind mount")?;
    // The fd follows the mount: it now names the attached copy.
    apply_propagation(tree.as_fd(), &opts.propagation)
}

fn apply_propagation(mount: BorrowedFd, changes: &[c_ulong]) -> Result<()> {
    for &change in changes {
        // c_ulong is u64 only on 64-bit targets.
        #[allow(clippy::useless_conversion)]
        let attr = sys::MountAttr {
            propagation: u64::from(change & !MS_REC),
            ..sys::MountAttr::default()
        };
        sys::mount_setattr_fd(mount, change & MS_REC != 0, &attr)
            .with_context(|| format!("changing the mount's propagation (flags {change:#x})"))?;
    }
    Ok(())
}

/// A new filesystem (tmpfs, proc, sysfs, devpts, mqueue, overlay, a block device...).
fn fs_mount(
    ctx: &RootfsContext,
    root: &RootDir,
    m: &Mount,
    typ: &str,
    opts: &MountOptions,
) -> Result<()> {
    let dest = m.destination();
    let (target, created) = root
        .resolve_or_create(dest, Leaf::Directory)
        .with_context(|| format!("creating mount point {}", dest.display()))?;
    let real = check_destination(root, target.as_fd(), dest, typ)?;

    let mut flags = opts.fs_flags();
    if (typ == "tmpfs" || real == Path::new("/dev")) && flags & MS_REMOUNT == 0 {
        // Files are still to be made in it (devices, mount points): it is made read-only by
        // finish_rootfs.
        flags &= !MS_RDONLY;
    }
    let mut data = Cow::Borrowed(opts.data.as_str());
    if typ == "tmpfs" && !created && !data.split(',').any(|o| o.starts_with("mode=")) {
        // A tmpfs over an existing directory keeps that directory's mode (an image's /tmp is
        // 1777); an explicit mode= wins.
        let st = sys::fstat(target.as_fd())
            .with_context(|| format!("stat of mount point {}", dest.display()))?;
        let mode = format!("mode={:o}", st.st_mode & 0o7777);
        data = Cow::Owned(if data.is_empty() {
            mode
        } else {
            format!("{mode},{data}")
        });
    }
    let label = mount_label(ctx.spec);
    if let Some(label) = label.filter(|_| takes_context_option(typ)) {
        if !has_context_option(&data) {
            // Quoted: an MLS/MCS label has commas (s0:c1,c2); SELinux strips the quotes.
            data = Cow::Owned(if data.is_empty() {
                format!("context=\"{label}\"")
            } else {
                format!("{data},context=\"{label}\"")
            });
        }
    }
    let source = match m.source() {
        Some(s) => sys::cstring(s)?,
        None => sys::cstring(typ)?,
    };
    if typ == "tmpfs" && opts.tmpcopyup && !created {
        copy_up::mount_tmpfs_copied_up(target.as_fd(), flags, &data)?;
        return finish_new_mount(root, dest, opts);
    }
    let cdata = sys::cstring(data.as_ref())?;
    let mounted = sys::mount(
        Some(&source),
        &sys::fd_path(target.as_fd()),
        Some(&sys::cstring(typ)?),
        flags,
        (!data.is_empty()).then_some(cdata.as_c_str()),
    );
    match mounted {
        Ok(()) => {}
        Err(e) if e.raw_os_error() == Some(libc::EPERM) && ctx.in_new_userns => {
            // sysfs needs a network namespace owned by the container's user namespace, mqueue an
            // IPC one; without them the host's instance is bound instead, as runc does.
            let host_instance = match typ {
                "sysfs" => "/sys",
                "mqueue" => "/dev/mqueue",
                _ => return Err(e).context("mount(2)"),
            };
            return attach_bind(Path::new(host_instance), target.as_fd(), true, opts, None);
        }
        Err(e) if label.is_some() && e.raw_os_error() == Some(libc::EINVAL) => {
            return Err(e).with_context(|| {
                format!(
                    "mount(2) with linux.mountLabel {:?}",
                    label.unwrap_or_default()
                )
            })
        }
        Err(e) => return Err(e).context("mount(2)"),
    }
    if let Some(label) = label.filter(|_| typ == "mqueue") {
        label_mount_root(root, dest, label)?;
    }
    finish_new_mount(root, dest, opts)
}

/// linux.mountLabel, when set.
fn mount_label(spec: &Spec) -> Option<&str> {
    spec.linux()
        .as_ref()
        .and_then(|l| l.mount_label().as_deref())
        .filter(|l| !l.is_empty())
}

/// Whether a new mount of `typ` gets linux.mountLabel as its `context=` option (as runc does).
/// proc and sysfs cannot be labelled that way, and mqueue's superblock (one per IPC namespace)
/// exists before the mount, so SELinux refuses different settings for it: its root is labelled
/// afterwards instead. cgroup mounts and binds never come here.
fn takes_context_option(typ: &str) -> bool {
    !matches!(typ, "proc" | "sysfs" | "mqueue")
}

/// The mount's own SELinux context options win over linux.mountLabel: SELinux refuses a second.
fn has_context_option(data: &str) -> bool {
    data.split(',').any(|o| {
        ["context=", "fscontext=", "defcontext=", "rootcontext="]
            .iter()
            .any(|k| o.starts_with(k))
    })
}

/// Labels the root of the new mount at `dest` (mqueue) with linux.mountLabel: its
/// security.selinux attribute, which is what `context=` would have given it.
fn label_mount_root(root: &RootDir, dest: &Path, label: &str) -> Result<()> {
    let what = || {
        format!(
            "labelling {} with linux.mountLabel {label:?}",
            dest.display()
        )
    };
    let mounted = root.resolve(dest).with_context(what)?;
    let dir = sys::openat(
        mounted.as_fd(),
        c".",
        libc::O_RDONLY | libc::O_DIRECTORY | libc::O_CLOEXEC,
        0,
    )
    .with_context(what)?;
    // SAFETY: a valid fd, a NUL-terminated name and a buffer of the given length.
    let r = unsafe {
        libc::fsetxattr(
            dir.as_raw_fd(),
            c"security.selinux".as_ptr(),
            label.as_ptr().cast(),
            label.len(),
            0,
        )
    };
    if r != 0 {
        return Err(io::Error::last_os_error()).with_context(what);
    }
    Ok(())
}

/// The recursive attributes and propagation changes of a new (non-bind) mount at `dest`.
fn finish_new_mount(root: &RootDir, dest: &Path, opts: &MountOptions) -> Result<()> {
    if !opts.recursive.is_empty() || !opts.propagation.is_empty() {
        // The handle above is of the covered directory; the new mount is what a lookup finds now.
        let mounted = root
            .resolve(dest)
            .with_context(|| format!("opening the new mount at {}", dest.display()))?;
        if !opts.recursive.is_empty() {
            sys::mount_setattr_fd(mounted.as_fd(), true, &opts.recursive.to_mount_attr())
                .context("setting the mount's recursive attributes")?;
        }
        apply_propagation(mounted.as_fd(), &opts.propagation)?;
    }
    Ok(())
}

/// Container paths below /proc that may be mounted over: files that tools such as lxcfs emulate,
/// and CRIU's ns_last_pid. Anything else there could shadow an LSM interface (/proc/self/attr).
const PROC_MOUNTABLE: [&str; 10] = [
    "/proc/cpuinfo",
    "/proc/diskstats",
    "/proc/meminfo",
    "/proc/stat",
    "/proc/swaps",
    "/proc/uptime",
    "/proc/loadavg",
    "/proc/slabinfo",
    "/proc/net/dev",
    "/proc/sys/kernel/ns_last_pid",
];

/// Where `target` really is in the container, refusing mounts on /proc other than a procfs and
/// mounts inside /proc other than [`PROC_MOUNTABLE`].
fn check_destination(
    root: &RootDir,
    target: BorrowedFd,
    dest: &Path,
    typ: &str,
) -> Result<PathBuf> {
    let fd_path = sys::fd_path(target);
    let host_path = std::fs::read_link(fd_path.to_str().unwrap_or_default())
        .with_context(|| format!("finding where mount point {} resolved to", dest.display()))?;
    let rootfs = root
        .real_path()
        .context("the rootfs's real path is unknown")?;
    let inside = host_path.strip_prefix(rootfs).map_err(|_| {
        anyhow!(
            "mount point {} resolved to {}, outside the rootfs",
            dest.display(),
            host_path.display()
        )
    })?;
    let real = Path::new("/").join(inside);
    if real == Path::new("/proc") {
        if typ != "proc" {
            bail!(
                "{} cannot be mounted: it is /proc, which only a proc filesystem may cover",
                dest.display()
            );
        }
    } else if real.starts_with("/proc") && !PROC_MOUNTABLE.iter().any(|p| real == Path::new(p)) {
        bail!(
            "{} cannot be mounted because it is inside /proc (at {})",
            dest.display(),
            real.display()
        );
    }
    Ok(real)
}

/// Whether prepare_rootfs left this mount writable for finish_rootfs to make read-only.
fn read_only_deferred(m: &Mount) -> bool {
    let opts = MountOptions::parse(m.options().as_deref().unwrap_or_default());
    let typ = m.typ().as_deref().unwrap_or("");
    opts.read_only()
        && !opts.is_bind()
        && opts.flags & MS_REMOUNT == 0
        && !matches!(typ, "bind" | "cgroup" | "cgroup2")
        && (typ == "tmpfs" || clean(m.destination()) == Path::new("/dev"))
}

/// A lookup that found nothing: ENOENT, or ENOTDIR for a path through a file.
fn is_missing(e: &io::Error) -> bool {
    matches!(e.raw_os_error(), Some(libc::ENOENT) | Some(libc::ENOTDIR))
}

/// A recursive read-only bind of `path` onto itself (missing paths are skipped, as in runc).
fn make_readonly(root: &RootDir, path: &Path) -> Result<()> {
    let target = match root.resolve(path) {
        Ok(fd) => fd,
        Err(e) if is_missing(&e) => return Ok(()),
        Err(e) => return Err(e.into()),
    };
    let copy = sys::clone_mount(target.as_fd(), true)?;
    let read_only = AttrChange {
        set: sys::MOUNT_ATTR_RDONLY,
        ..AttrChange::default()
    };
    sys::mount_setattr_fd(copy.as_fd(), true, &read_only.to_mount_attr())?;
    sys::move_mount(copy.as_fd(), target.as_fd())?;
    Ok(())
}

/// Covers masked paths: /dev/null over a file, an empty read-only tmpfs over a directory.
#[derive(Default)]
struct Masker {
    /// The first masking tmpfs, once attached: later directories get clones of it, which costs
    /// one syscall instead of creating a new superblock each time.
    dir_mask: Option<OwnedFd>,
    /// linux.mountLabel for the masking tmpfs, as runc labels it.
    label: Option<std::ffi::CString>,
}

impl Masker {
    fn mask(&mut self, root: &RootDir, path: &Path) -> Result<()> {
        let target = match root.resolve(path) {
            Ok(fd) => fd,
            Err(e) if is_missing(&e) => return Ok(()),
            Err(e) => return Err(e.into()),
        };
        let st = sys::fstat(target.as_fd())?;
        if st.st_mode & libc::S_IFMT != libc::S_IFDIR {
            let null = sys::open_tree(
                libc::AT_FDCWD,
                c"/dev/null",
                sys::OPEN_TREE_CLONE | sys::OPEN_TREE_CLOEXEC,
            )
            .context("cloning the container's /dev/null")?;
            sys::move_mount(null.as_fd(), target.as_fd())?;
            return Ok(());
        }
        let mask = match &self.dir_mask {
            Some(first) => sys::clone_mount(first.as_fd(), false)?,
            None => {
                let fs = sys::fsopen(c"tmpfs").context("creating the masking tmpfs")?;
                if let Some(label) = &self.label {
                    sys::fsconfig_string(fs.as_fd(), c"context", label)
                        .with_context(|| format!("linux.mountLabel {label:?}"))?;
                }
                sys::fsmount(
                    fs.as_fd(),
                    sys::MOUNT_ATTR_RDONLY
                        | sys::MOUNT_ATTR_NOSUID
                        | sys::MOUNT_ATTR_NODEV
                        | sys::MOUNT_ATTR_NOEXEC,
                )
                .context("creating the masking tmpfs")?
            }
        };
        sys::move_mount(mask.as_fd(), target.as_fd())?;
        if self.dir_mask.is_none() {
            self.dir_mask = Some(mask);
        }
        Ok(())
    }
}

/// --no-pivot: move the rootfs mount onto "/" and chroot into it.
fn move_root(rootfs: &Path) -> Result<()> {
    let real = RootDir::open_rootfs(rootfs)
        .with_context(|| format!("opening the rootfs {}", rootfs.display()))?;
    hide_host_kernel_filesystems(real.real_path().unwrap_or(rootfs))?;
    let path = sys::cstring(rootfs)?;
    sys::chdir(&path).with_context(|| format!("changing directory to {}", rootfs.display()))?;
    sys::mount(Some(&path), c"/", None, MS_MOVE, None)
        .with_context(|| format!("moving the rootfs {} onto /", rootfs.display()))?;
    sys::chroot(c".").with_context(|| format!("chroot into {}", rootfs.display()))?;
    sys::chdir(c"/").context("changing directory to the new /")?;
    Ok(())
}

/// Without pivot_root the host's tree stays in the namespace under the chroot. Its procfs and
/// sysfs mounts would let the container mount new instances of those (the kernel checks that a
/// fully visible one exists) and are handy for escapes: detach them, or cover them when they are
/// locked.
fn hide_host_kernel_filesystems(rootfs: &Path) -> Result<()> {
    for mi in mountinfo::read_mountinfo()? {
        if !matches!(mi.fs_type.as_str(), "proc" | "sysfs") || mi.mount_point.starts_with(rootfs) {
            continue;
        }
        let point = sys::cstring(&mi.mount_point)?;
        match sys::umount2(&point, libc::MNT_DETACH) {
            Ok(()) => {}
            // Gone with a parent detached before it.
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => {}
            Err(e) if matches!(e.raw_os_error(), Some(libc::EINVAL) | Some(libc::EPERM)) => {
                sys::mount(Some(c"tmpfs"), &point, Some(c"tmpfs"), MS_RDONLY, None)
                    .with_context(|| format!("covering the host's {}", mi.mount_point.display()))?;
            }
            Err(e) => {
                return Err(e)
                    .with_context(|| format!("detaching the host's {}", mi.mount_point.display()))
            }
        }
    }
    Ok(())
}
