//! Resolving container paths inside the rootfs, which is hostile: a symlink in it may point
//! anywhere ("/", "../../../etc") and must be read as if the rootfs were "/".
//!
//! The kernel does the confinement: openat2(RESOLVE_IN_ROOT) treats the rootfs handle as "/" for
//! absolute symlinks and "..", and RESOLVE_NO_MAGICLINKS refuses /proc/<pid>/fd-style jumps.
//! Every caller gets an O_PATH handle of what was really resolved and acts on that handle, so a
//! symlink swapped in after the lookup cannot redirect a mount.

use std::collections::VecDeque;
use std::ffi::{CString, OsStr, OsString};
use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};

use super::sys;

/// Symlinks followed while creating one path before giving up, like the kernel's MAXSYMLINKS.
const MAX_SYMLINKS: usize = 40;
/// openat2 answers EAGAIN when a rename raced with a ".." lookup; the lookup is simply retried.
const MAX_RETRIES: usize = 16;
const RESOLVE_FLAGS: u64 = libc::RESOLVE_IN_ROOT | libc::RESOLVE_NO_MAGICLINKS;

/// What to create when the last component of a path is missing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Leaf {
    Directory,
    File,
}

/// A directory that acts as "/" for every lookup made through it.
pub struct RootDir {
    fd: OwnedFd,
    /// The directory's real host path, when opened with [`open_rootfs`](Self::open_rootfs).
    real_path: Option<PathBuf>,
}

impl RootDir {
    pub fn open(path: &Path) -> io::Result<Self> {
        let fd = sys::open_path(&sys::cstring(path)?, libc::O_PATH | libc::O_DIRECTORY)?;
        Ok(Self {
            fd,
            real_path: None,
        })
    }

    /// Open a rootfs and learn its real host path: the prefix the kernel shows for every handle
    /// resolved in it (the path given may go through symlinks).
    pub fn open_rootfs(path: &Path) -> io::Result<Self> {
        let mut root = Self::open(path)?;
        let link = sys::fd_path(root.fd());
        root.real_path = Some(std::fs::read_link(OsStr::from_bytes(link.as_bytes()))?);
        Ok(root)
    }

    pub fn real_path(&self) -> Option<&Path> {
        self.real_path.as_deref()
    }

    pub fn fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }

    /// An O_PATH handle of `path` (absolute or relative, both mean "from the root").
    pub fn resolve(&self, path: &Path) -> io::Result<OwnedFd> {
        let bytes = path.as_os_str().as_bytes();
        let path = if bytes.is_empty() {
            Path::new(".")
        } else {
            path
        };
        let cpath = sys::cstring(path)?;
        let mut tries = 0;
        loop {
            match sys::openat2(self.fd(), &cpath, libc::O_PATH, RESOLVE_FLAGS) {
                Err(e) if e.raw_os_error() == Some(libc::EAGAIN) && tries < MAX_RETRIES => {
                    tries += 1;
                }
                other => return other,
            }
        }
    }

    /// Like [`resolve`](Self::resolve), creating what is missing: directories for the
    /// intermediate components, `leaf` for the last one. Returns the handle and whether the
    /// last component was created by this call.
    ///
    /// A dangling symlink on the way is followed (inside the root) and its target created, as a
    /// runtime that resolved the whole path in userspace would do.
    pub fn resolve_or_create(&self, path: &Path, leaf: Leaf) -> io::Result<(OwnedFd, bool)> {
        match self.resolve(path) {
            Ok(fd) => return Ok((fd, false)),
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => {}
            Err(e) => return Err(e),
        }
        let mut todo: VecDeque<OsString> = components(path).collect();
        // Usually only the last component is missing: start from its parent when that exists,
        // rather than walking down from the root.
        if let Some(last) = todo.pop_back() {
            let parent: PathBuf = todo.iter().collect();
            match self.resolve(&parent) {
                Ok(dir) => {
                    return self.create_walk(Some(dir), parent, VecDeque::from([last]), leaf)
                }
                Err(e) if e.raw_os_error() == Some(libc::ENOENT) => todo.push_back(last),
                Err(e) => return Err(e),
            }
        }
        self.create_walk(None, PathBuf::new(), todo, leaf)
    }

    /// Walk `todo` down from `reached` (whose handle is `dir`, None for the root itself),
    /// creating what is missing.
    fn create_walk(
        &self,
        mut dir: Option<OwnedFd>,
        mut reached: PathBuf,
        mut todo: VecDeque<OsString>,
        leaf: Leaf,
    ) -> io::Result<(OwnedFd, bool)> {
        let mut links = 0;
        let mut created_last = false;
        while let Some(name) = todo.pop_front() {
            let is_last = todo.is_empty();
            // `reached` is re-resolved by the kernel each time, so ".." and symlinks in it are
            // always read inside the root.
            let next = reached.join(&name);
            match self.resolve(&next) {
                Ok(fd) => {
                    dir = Some(fd);
                    reached = next;
                    created_last = false;
                    continue;
                }
                Err(e) if e.raw_os_error() == Some(libc::ENOENT) => {}
                Err(e) => return Err(e),
            }
            // `name` is missing, or is a symlink to something missing.
            let parent = dir.as_ref().map_or(self.fd(), |d| d.as_fd());
            let cname = sys::cstring(&name)?;
            let made = if is_last && leaf == Leaf::File {
                sys::openat(
                    parent,
                    &cname,
                    libc::O_CREAT | libc::O_EXCL | libc::O_NOFOLLOW | libc::O_WRONLY,
                    0o644,
                )
                .map(drop)
            } else {
                sys::mkdirat(parent, &cname, 0o755)
            };
            match made {
                Ok(()) => created_last = true,
                Err(e) if e.raw_os_error() == Some(libc::EEXIST) => {
                    match sys::readlinkat(parent, &cname) {
                        Ok(target) => {
                            links += 1;
                            if links > MAX_SYMLINKS {
                                return Err(io::Error::from_raw_os_error(libc::ELOOP));
                            }
                            let target = Path::new(OsStr::from_bytes(target.as_bytes()));
                            for (i, c) in components(target).enumerate() {
                                todo.insert(i, c);
                            }
                            if target.is_absolute() {
                                reached = PathBuf::new();
                                dir = None;
                            }
                            continue;
                        }
                        // Not a symlink: someone else created it meanwhile; use it.
                        Err(e) if e.raw_os_error() == Some(libc::EINVAL) => created_last = false,
                        Err(e) => return Err(e),
                    }
                }
                Err(e) => return Err(e),
            }
            dir = Some(self.resolve(&next)?);
            reached = next;
        }
        match dir {
            Some(fd) => Ok((fd, created_last)),
            // Nothing to walk: the path named the root itself.
            None => Ok((self.resolve(Path::new("."))?, false)),
        }
    }
}

/// The components of a path that matter for a lookup: names and "..", never "/" or ".".
fn components(path: &Path) -> impl Iterator<Item = OsString> + '_ {
    path.components().filter_map(|c| match c {
        Component::Normal(n) => Some(n.to_os_string()),
        Component::ParentDir => Some(OsString::from("..")),
        Component::RootDir | Component::CurDir | Component::Prefix(_) => None,
    })
}

/// The lexical, absolute form of a container path ("a/../b/" -> "/b"), for comparing
/// destinations such as "/dev" the way runc does.
pub fn clean(path: &Path) -> PathBuf {
    let mut out = PathBuf::from("/");
    for c in path.components() {
        match c {
            Component::Normal(n) => out.push(n),
            Component::ParentDir => {
                out.pop();
            }
            Component::RootDir | Component::CurDir | Component::Prefix(_) => {}
        }
    }
    out
}

/// The parent directory and the file name of a cleaned path (None for "/").
pub fn split_leaf(path: &Path) -> Option<(&Path, CString)> {
    let name = path.file_name()?;
    let cname = sys::cstring(name).ok()?;
    Some((path.parent()?, cname))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    struct TempRoot(PathBuf);
    impl Drop for TempRoot {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    fn temp_root() -> TempRoot {
        let dir = nix::unistd::mkdtemp("/tmp/berth-resolve-test-XXXXXX").unwrap();
        let root = dir.join("root");
        std::fs::create_dir(&root).unwrap();
        symlink("/", root.join("evil")).unwrap();
        symlink("../../../..", root.join("up")).unwrap();
        symlink("/x/y", root.join("dangle")).unwrap();
        symlink("loop", root.join("loop")).unwrap();
        TempRoot(dir)
    }

    #[test]
    fn symlinks_stay_inside_the_root() {
        let t = temp_root();
        let root_path = t.0.join("root");
        let root = RootDir::open(&root_path).unwrap();

        let (_, created) = root
            .resolve_or_create(Path::new("/up/etc/file"), Leaf::File)
            .unwrap();
        assert!(created);
        assert!(root_path.join("etc/file").is_file());
        // Already there: found, not created.
        let (_, created) = root
            .resolve_or_create(Path::new("evil/evil/etc/file"), Leaf::File)
            .unwrap();
        assert!(!created);

        let (_, created) = root
            .resolve_or_create(Path::new("/dangle/z"), Leaf::Directory)
            .unwrap();
        assert!(created);
        assert!(root_path.join("x/y/z").is_dir());
        assert!(!t.0.join("x").exists());

        let (fd, created) = root
            .resolve_or_create(Path::new("/"), Leaf::Directory)
            .unwrap();
        assert!(!created);
        let st = sys::fstat(fd.as_fd()).unwrap();
        let md = std::fs::metadata(&root_path).unwrap();
        use std::os::unix::fs::MetadataExt;
        assert_eq!(st.st_ino, md.ino());
    }

    #[test]
    fn symlink_loops_are_refused() {
        let t = temp_root();
        let root = RootDir::open(&t.0.join("root")).unwrap();
        let err = root.resolve(Path::new("/loop")).unwrap_err();
        assert_eq!(err.raw_os_error(), Some(libc::ELOOP));
        let err = root
            .resolve_or_create(Path::new("/loop/a"), Leaf::Directory)
            .unwrap_err();
        assert_eq!(err.raw_os_error(), Some(libc::ELOOP));
    }

    #[test]
    fn clean_paths() {
        assert_eq!(
            clean(Path::new("dev/../dev/./pts/")),
            PathBuf::from("/dev/pts")
        );
        assert_eq!(clean(Path::new("/../..")), PathBuf::from("/"));
    }
}
