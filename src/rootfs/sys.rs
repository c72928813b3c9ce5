//! Safe wrappers over the filesystem and mount syscalls the rootfs setup uses.
//!
//! nix 0.29 lacks openat2 and the new mount API (open_tree, move_mount, mount_setattr, fsopen,
//! fsmount) and its `MsFlags` cannot carry every flag the runtime-spec names (MS_NOSYMFOLLOW), so
//! this module talks to libc directly. Every wrapper returns `io::Result`; the callers add the
//! context that names the path or field.

use std::ffi::{CStr, CString, OsStr};
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;

use libc::c_ulong;

// The new mount API's constants (linux/mount.h); libc keeps its copies crate-private.
pub const OPEN_TREE_CLONE: u32 = 0x1;
pub const OPEN_TREE_CLOEXEC: u32 = libc::O_CLOEXEC as u32;
pub const AT_RECURSIVE: u32 = 0x8000;
const MOVE_MOUNT_F_EMPTY_PATH: u32 = 0x4;
const MOVE_MOUNT_T_EMPTY_PATH: u32 = 0x40;
const FSOPEN_CLOEXEC: u32 = 0x1;
const FSMOUNT_CLOEXEC: u32 = 0x1;
const FSCONFIG_SET_FLAG: u32 = 0;
const FSCONFIG_SET_STRING: u32 = 1;
const FSCONFIG_CMD_CREATE: u32 = 6;

pub const MOUNT_ATTR_RDONLY: u64 = 0x1;
pub const MOUNT_ATTR_NOSUID: u64 = 0x2;
pub const MOUNT_ATTR_NODEV: u64 = 0x4;
pub const MOUNT_ATTR_NOEXEC: u64 = 0x8;
/// Mask of the three atime modes: one of them must be cleared as a whole to set another.
pub const MOUNT_ATTR_ATIME_MASK: u64 = 0x70;
pub const MOUNT_ATTR_RELATIME: u64 = 0x0;
pub const MOUNT_ATTR_NOATIME: u64 = 0x10;
pub const MOUNT_ATTR_STRICTATIME: u64 = 0x20;
pub const MOUNT_ATTR_NODIRATIME: u64 = 0x80;
pub const MOUNT_ATTR_NOSYMFOLLOW: u64 = 0x0020_0000;
pub const MOUNT_ATTR_IDMAP: u64 = 0x0010_0000;

/// `struct mount_attr` (MOUNT_ATTR_SIZE_VER0).
#[repr(C)]
#[derive(Debug, Default, Clone, Copy)]
pub struct MountAttr {
    pub attr_set: u64,
    pub attr_clr: u64,
    pub propagation: u64,
    pub userns_fd: u64,
}

/// `struct open_how` for openat2.
#[repr(C)]
struct OpenHow {
    flags: u64,
    mode: u64,
    resolve: u64,
}

pub fn cstring(s: impl AsRef<OsStr>) -> io::Result<CString> {
    CString::new(s.as_ref().as_bytes())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "path contains a NUL byte"))
}

fn check(ret: libc::c_int) -> io::Result<()> {
    if ret < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

fn check_fd(ret: libc::c_long) -> io::Result<OwnedFd> {
    if ret < 0 {
        Err(io::Error::last_os_error())
    } else {
        // SAFETY: the kernel just returned this descriptor to us; nobody else owns it.
        Ok(unsafe { OwnedFd::from_raw_fd(ret as RawFd) })
    }
}

fn check_long(ret: libc::c_long) -> io::Result<()> {
    if ret < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

/// "/proc/self/fd/N": the path mount(2) takes to act on exactly the inode an O_PATH handle holds.
pub fn fd_path(fd: BorrowedFd) -> CString {
    // A decimal number never contains a NUL byte.
    CString::new(format!("/proc/self/fd/{}", fd.as_raw_fd())).expect("fd path")
}

pub fn openat2(dirfd: BorrowedFd, path: &CStr, flags: i32, resolve: u64) -> io::Result<OwnedFd> {
    let how = OpenHow {
        flags: (flags | libc::O_CLOEXEC) as u64,
        mode: 0,
        resolve,
    };
    // SAFETY: valid C string and a properly sized open_how that outlives the call.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_openat2,
            dirfd.as_raw_fd(),
            path.as_ptr(),
            &how as *const OpenHow,
            std::mem::size_of::<OpenHow>(),
        )
    };
    check_fd(ret)
}

pub fn openat(
    dirfd: BorrowedFd,
    path: &CStr,
    flags: i32,
    mode: libc::mode_t,
) -> io::Result<OwnedFd> {
    // SAFETY: valid C string.
    let ret = unsafe {
        libc::openat(
            dirfd.as_raw_fd(),
            path.as_ptr(),
            flags | libc::O_CLOEXEC,
            mode as libc::c_uint,
        )
    };
    check_fd(ret as libc::c_long)
}

pub fn open_path(path: &CStr, flags: i32) -> io::Result<OwnedFd> {
    // SAFETY: valid C string.
    let ret = unsafe { libc::open(path.as_ptr(), flags | libc::O_CLOEXEC) };
    check_fd(ret as libc::c_long)
}

pub fn mkdirat(dirfd: BorrowedFd, name: &CStr, mode: libc::mode_t) -> io::Result<()> {
    // SAFETY: valid C string.
    check(unsafe { libc::mkdirat(dirfd.as_raw_fd(), name.as_ptr(), mode) })
}

pub fn mknodat(
    dirfd: BorrowedFd,
    name: &CStr,
    mode: libc::mode_t,
    dev: libc::dev_t,
) -> io::Result<()> {
    // SAFETY: valid C string.
    check(unsafe { libc::mknodat(dirfd.as_raw_fd(), name.as_ptr(), mode, dev) })
}

pub fn symlinkat(target: &CStr, dirfd: BorrowedFd, name: &CStr) -> io::Result<()> {
    // SAFETY: valid C strings.
    check(unsafe { libc::symlinkat(target.as_ptr(), dirfd.as_raw_fd(), name.as_ptr()) })
}

pub fn readlinkat(dirfd: BorrowedFd, name: &CStr) -> io::Result<CString> {
    let mut buf = vec![0u8; libc::PATH_MAX as usize];
    // SAFETY: the buffer is writable for its whole length.
    let n = unsafe {
        libc::readlinkat(
            dirfd.as_raw_fd(),
            name.as_ptr(),
            buf.as_mut_ptr().cast(),
            buf.len(),
        )
    };
    if n < 0 {
        return Err(io::Error::last_os_error());
    }
    buf.truncate(n as usize);
    cstring(OsStr::from_bytes(&buf))
}

pub fn unlinkat(dirfd: BorrowedFd, name: &CStr, flags: i32) -> io::Result<()> {
    // SAFETY: valid C string.
    check(unsafe { libc::unlinkat(dirfd.as_raw_fd(), name.as_ptr(), flags) })
}

/// fchownat with AT_SYMLINK_NOFOLLOW: never changes the owner of what a symlink points at.
pub fn lchownat(dirfd: BorrowedFd, name: &CStr, uid: u32, gid: u32) -> io::Result<()> {
    // SAFETY: valid C string.
    check(unsafe {
        libc::fchownat(
            dirfd.as_raw_fd(),
            name.as_ptr(),
            uid,
            gid,
            libc::AT_SYMLINK_NOFOLLOW,
        )
    })
}

/// fstatat without following a trailing symlink; an empty name stats `dirfd` itself.
pub fn lstatat(dirfd: BorrowedFd, name: &CStr) -> io::Result<libc::stat> {
    let mut st = std::mem::MaybeUninit::<libc::stat>::uninit();
    // SAFETY: valid C string and a writable stat buffer.
    check(unsafe {
        libc::fstatat(
            dirfd.as_raw_fd(),
            name.as_ptr(),
            st.as_mut_ptr(),
            libc::AT_SYMLINK_NOFOLLOW | libc::AT_EMPTY_PATH,
        )
    })?;
    // SAFETY: fstatat filled it in.
    Ok(unsafe { st.assume_init() })
}

pub fn fstat(fd: BorrowedFd) -> io::Result<libc::stat> {
    lstatat(fd, c"")
}

pub fn umask(mask: libc::mode_t) -> libc::mode_t {
    // SAFETY: umask cannot fail.
    unsafe { libc::umask(mask) }
}

pub fn mount(
    source: Option<&CStr>,
    target: &CStr,
    fstype: Option<&CStr>,
    flags: c_ulong,
    data: Option<&CStr>,
) -> io::Result<()> {
    let opt = |s: Option<&CStr>| s.map_or(std::ptr::null(), CStr::as_ptr);
    // SAFETY: every pointer is either NULL or a valid C string that outlives the call.
    check(unsafe {
        libc::mount(
            opt(source),
            target.as_ptr(),
            opt(fstype),
            flags,
            opt(data).cast(),
        )
    })
}

pub fn umount2(target: &CStr, flags: i32) -> io::Result<()> {
    // SAFETY: valid C string.
    check(unsafe { libc::umount2(target.as_ptr(), flags) })
}

/// open_tree(2): with OPEN_TREE_CLONE, a detached copy of the mount (tree) at `path`.
pub fn open_tree(dirfd: RawFd, path: &CStr, flags: u32) -> io::Result<OwnedFd> {
    // SAFETY: valid C string.
    let ret = unsafe { libc::syscall(libc::SYS_open_tree, dirfd, path.as_ptr(), flags) };
    check_fd(ret)
}

/// Clone the mount an fd refers to (e.g. a masking tmpfs already attached once).
pub fn clone_mount(fd: BorrowedFd, recursive: bool) -> io::Result<OwnedFd> {
    let mut flags = OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | libc::AT_EMPTY_PATH as u32;
    if recursive {
        flags |= AT_RECURSIVE;
    }
    open_tree(fd.as_raw_fd(), c"", flags)
}

/// move_mount(2) of the mount `from` refers to onto the inode `onto` refers to.
pub fn move_mount(from: BorrowedFd, onto: BorrowedFd) -> io::Result<()> {
    // SAFETY: valid (empty) C strings.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_move_mount,
            from.as_raw_fd(),
            c"".as_ptr(),
            onto.as_raw_fd(),
            c"".as_ptr(),
            MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH,
        )
    };
    check_long(ret)
}

/// mount_setattr(2) on `dirfd` + `path` (an empty path with AT_EMPTY_PATH acts on `dirfd`).
pub fn mount_setattr(dirfd: RawFd, path: &CStr, flags: u32, attr: &MountAttr) -> io::Result<()> {
    // SAFETY: valid C string and a mount_attr that outlives the call.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_mount_setattr,
            dirfd,
            path.as_ptr(),
            flags,
            attr as *const MountAttr,
            std::mem::size_of::<MountAttr>(),
        )
    };
    check_long(ret)
}

/// mount_setattr on the mount an fd refers to, and on every mount below it if `recursive`.
pub fn mount_setattr_fd(fd: BorrowedFd, recursive: bool, attr: &MountAttr) -> io::Result<()> {
    let mut flags = libc::AT_EMPTY_PATH as u32;
    if recursive {
        flags |= AT_RECURSIVE;
    }
    mount_setattr(fd.as_raw_fd(), c"", flags, attr)
}

/// fsopen(2): a filesystem context to configure with [`fsconfig_string`] / [`fsconfig_flag`].
pub fn fsopen(fstype: &CStr) -> io::Result<OwnedFd> {
    // SAFETY: valid C string.
    check_fd(unsafe { libc::syscall(libc::SYS_fsopen, fstype.as_ptr(), FSOPEN_CLOEXEC) })
}

fn fsconfig(fs: BorrowedFd, cmd: u32, key: Option<&CStr>, value: Option<&CStr>) -> io::Result<()> {
    let ptr = |s: Option<&CStr>| s.map_or(std::ptr::null(), CStr::as_ptr);
    // SAFETY: NULL or valid C strings, as each command expects.
    check_long(unsafe {
        libc::syscall(
            libc::SYS_fsconfig,
            fs.as_raw_fd(),
            cmd,
            ptr(key),
            ptr(value),
            0,
        )
    })
}

pub fn fsconfig_string(fs: BorrowedFd, key: &CStr, value: &CStr) -> io::Result<()> {
    fsconfig(fs, FSCONFIG_SET_STRING, Some(key), Some(value))
}

pub fn fsconfig_flag(fs: BorrowedFd, key: &CStr) -> io::Result<()> {
    fsconfig(fs, FSCONFIG_SET_FLAG, Some(key), None)
}

/// Create the superblock and return a detached mount of it with `attr_flags` (MOUNT_ATTR_*).
pub fn fsmount(fs: BorrowedFd, attr_flags: u64) -> io::Result<OwnedFd> {
    fsconfig(fs, FSCONFIG_CMD_CREATE, None, None)?;
    // SAFETY: plain integer arguments.
    check_fd(unsafe {
        libc::syscall(
            libc::SYS_fsmount,
            fs.as_raw_fd(),
            FSMOUNT_CLOEXEC,
            attr_flags,
        )
    })
}

/// fchownat(AT_EMPTY_PATH): the owner of what `fd` refers to (O_PATH handles included).
pub fn fchown_fd(fd: BorrowedFd, uid: u32, gid: u32) -> io::Result<()> {
    // SAFETY: valid (empty) C string.
    check(unsafe {
        libc::fchownat(
            fd.as_raw_fd(),
            c"".as_ptr(),
            uid,
            gid,
            libc::AT_EMPTY_PATH | libc::AT_SYMLINK_NOFOLLOW,
        )
    })
}

pub fn pivot_root_dot() -> io::Result<()> {
    // SAFETY: valid C strings.
    check_long(unsafe { libc::syscall(libc::SYS_pivot_root, c".".as_ptr(), c".".as_ptr()) })
}

pub fn fchdir(fd: BorrowedFd) -> io::Result<()> {
    // SAFETY: plain fd argument.
    check(unsafe { libc::fchdir(fd.as_raw_fd()) })
}

pub fn chdir(path: &CStr) -> io::Result<()> {
    // SAFETY: valid C string.
    check(unsafe { libc::chdir(path.as_ptr()) })
}

pub fn chroot(path: &CStr) -> io::Result<()> {
    // SAFETY: valid C string.
    check(unsafe { libc::chroot(path.as_ptr()) })
}
