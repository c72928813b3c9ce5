//! The `tmpcopyup` mount option (config.md, MAY): a tmpfs that starts with a copy of what the
//! directory it covers held in the image (podman asks for it on its tmpfs mounts).
//!
//! The tmpfs is made detached with the new mount API, filled through its handle, and only then
//! attached, so the container never sees it half copied and no temporary mount point is needed.

use std::ffi::CStr;
use std::fs::File;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::path::Path;

use anyhow::{Context, Result};
use libc::{
    c_ulong, MS_DIRSYNC, MS_LAZYTIME, MS_NOATIME, MS_NODEV, MS_NODIRATIME, MS_NOEXEC, MS_NOSUID,
    MS_NOSYMFOLLOW, MS_STRICTATIME, MS_SYNCHRONOUS,
};

use super::sys;

/// Mount a tmpfs with `flags` and `data` on `target` (an O_PATH handle of a directory), holding
/// a copy of the directory's contents, owner and (through `data`'s mode=) mode.
/// mount(2) data split at the commas outside double quotes, empty options dropped.
fn split_options(data: &str) -> Vec<&str> {
    let mut options = Vec::new();
    let (mut start, mut quoted) = (0, false);
    for (i, c) in data.char_indices() {
        match c {
            '"' => quoted = !quoted,
            ',' if !quoted => {
                options.push(&data[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    options.push(&data[start..]);
    options.retain(|o| !o.is_empty());
    options
}

pub fn mount_tmpfs_copied_up(target: BorrowedFd, flags: c_ulong, data: &str) -> Result<()> {
    let fs = sys::fsopen(c"tmpfs").context("fsopen(tmpfs)")?;
    for option in split_options(data) {
        let set = match option.split_once('=') {
            Some((key, value)) => {
                // A quoted value (context="...:s0:c1,c2") goes to fsconfig without its quotes:
                // only the mount(2) data parser strips them.
                let value = value
                    .strip_prefix('"')
                    .and_then(|v| v.strip_suffix('"'))
                    .unwrap_or(value);
                sys::fsconfig_string(fs.as_fd(), &sys::cstring(key)?, &sys::cstring(value)?)
            }
            None => sys::fsconfig_flag(fs.as_fd(), &sys::cstring(option)?),
        };
        set.with_context(|| format!("tmpfs option {option:?}"))?;
    }
    // Superblock flags are options of the filesystem context in this API.
    for (ms, name) in [
        (MS_SYNCHRONOUS, c"sync"),
        (MS_DIRSYNC, c"dirsync"),
        (MS_LAZYTIME, c"lazytime"),
    ] {
        if flags & ms != 0 {
            sys::fsconfig_flag(fs.as_fd(), name)
                .with_context(|| format!("tmpfs option {name:?}"))?;
        }
    }
    let mount = sys::fsmount(fs.as_fd(), mount_attrs(flags)).context("creating the tmpfs")?;

    let source = sys::openat(target, c".", libc::O_RDONLY | libc::O_DIRECTORY, 0)
        .context("opening the directory to copy up")?;
    let st = sys::fstat(source.as_fd())?;
    sys::fchown_fd(mount.as_fd(), st.st_uid, st.st_gid).context("chown of the tmpfs root")?;
    // Modes are copied exactly, not through the runtime's umask.
    let previous_umask = sys::umask(0);
    let copied = copy_dir_contents(&source, mount.as_fd());
    sys::umask(previous_umask);
    copied.context("copying the directory's contents into the tmpfs")?;

    sys::move_mount(mount.as_fd(), target).context("attaching the tmpfs")?;
    Ok(())
}

/// The per-mount attributes among mount(2) flags, for fsmount.
fn mount_attrs(flags: c_ulong) -> u64 {
    let mut attrs = 0;
    for (ms, attr) in [
        (MS_NOSUID, sys::MOUNT_ATTR_NOSUID),
        (MS_NODEV, sys::MOUNT_ATTR_NODEV),
        (MS_NOEXEC, sys::MOUNT_ATTR_NOEXEC),
        (MS_NODIRATIME, sys::MOUNT_ATTR_NODIRATIME),
        (MS_NOSYMFOLLOW, sys::MOUNT_ATTR_NOSYMFOLLOW),
        (MS_NOATIME, sys::MOUNT_ATTR_NOATIME),
        (MS_STRICTATIME, sys::MOUNT_ATTR_STRICTATIME),
    ] {
        if flags & ms != 0 {
            attrs |= attr;
        }
    }
    attrs
}

/// Copy every entry of `from` (an open directory) into `to`, recursively, without following
/// symlinks: files, directories, symlinks, device nodes and FIFOs keep their mode and owner.
fn copy_dir_contents(from: &OwnedFd, to: BorrowedFd) -> Result<()> {
    let listing = format!("/proc/self/fd/{}", from.as_raw_fd());
    for entry in std::fs::read_dir(&listing).context("listing the directory")? {
        let entry = entry?;
        let name = sys::cstring(entry.file_name())?;
        copy_entry(from.as_fd(), to, &name).with_context(|| {
            format!(
                "copying {}",
                Path::new(entry.file_name().as_os_str()).display()
            )
        })?;
    }
    Ok(())
}

fn copy_entry(from: BorrowedFd, to: BorrowedFd, name: &CStr) -> Result<()> {
    let st = sys::lstatat(from, name)?;
    let perm = st.st_mode & 0o7777;
    match st.st_mode & libc::S_IFMT {
        libc::S_IFDIR => {
            sys::mkdirat(to, name, perm)?;
            let sub_from = sys::openat(
                from,
                name,
                libc::O_RDONLY | libc::O_DIRECTORY | libc::O_NOFOLLOW,
                0,
            )?;
            let sub_to = sys::openat(
                to,
                name,
                libc::O_PATH | libc::O_DIRECTORY | libc::O_NOFOLLOW,
                0,
            )?;
            copy_dir_contents(&sub_from, sub_to.as_fd())?;
        }
        libc::S_IFREG => {
            let mut src = File::from(sys::openat(
                from,
                name,
                libc::O_RDONLY | libc::O_NOFOLLOW,
                0,
            )?);
            let mut dst = File::from(sys::openat(
                to,
                name,
                libc::O_WRONLY | libc::O_CREAT | libc::O_EXCL | libc::O_NOFOLLOW,
                perm,
            )?);
            std::io::copy(&mut src, &mut dst)?;
        }
        libc::S_IFLNK => {
            let target = sys::readlinkat(from, name)?;
            sys::symlinkat(&target, to, name)?;
        }
        libc::S_IFCHR | libc::S_IFBLK | libc::S_IFIFO => {
            sys::mknodat(to, name, st.st_mode, st.st_rdev)?;
        }
        // Sockets are bound to a live process; a copy would be meaningless.
        _ => return Ok(()),
    }
    sys::lchownat(to, name, st.st_uid, st.st_gid)?;
    Ok(())
}

#[cfg(test)]
mod split_tests {
    #[test]
    fn quoted_commas_stay_in_their_option() {
        assert_eq!(
            super::split_options("mode=755,context=\"u:r:t:s0:c1,c2\",,size=1m"),
            ["mode=755", "context=\"u:r:t:s0:c1,c2\"", "size=1m"]
        );
        assert!(super::split_options("").is_empty());
    }
}
