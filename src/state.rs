//! Container state on disk: one directory per container under `--root`.
//!
//! ```text
//! <root>/<id>/            created with mkdir, so a duplicate ID fails atomically
//! <root>/<id>/state.json  written to a temp file and renamed (readers never see half a file)
//! <root>/<id>/start.sock  the init's listening socket; it exists while the container is "created"
//! ```
//! Commands that change a container hold an exclusive flock on its directory,
//! so concurrent commands on one ID serialize. `state` and `list` only read
//! state.json and /proc, which is cheap and needs no lock.
//!
//! The status is not stored: it is derived from the init process (still the
//! same process? its pid start time is kept to detect pid reuse), from the start
//! socket and from the freezer, so it stays right when the container died on its
//! own or berth was killed half-way.

use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::fs::{self, File};
use std::io::Write;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};

pub const STATE_FILE: &str = "state.json";
pub const START_SOCKET: &str = "start.sock";

/// What `berth state` prints: the OCI state (runtime.md "State") plus the
/// fields runc adds and go-runc reads (`rootfs`, `created`, `owner`).
#[derive(Serialize, Deserialize, Debug, Clone)]
pub struct OciState {
    #[serde(rename = "ociVersion")]
    pub oci_version: String,
    pub id: String,
    pub pid: i32,
    pub status: Status,
    pub bundle: PathBuf,
    pub rootfs: PathBuf,
    pub created: String,
    #[serde(default)]
    pub annotations: HashMap<String, String>,
    pub owner: String,
}

#[derive(Serialize, Deserialize, Debug, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Creating,
    Created,
    Running,
    Paused,
    Stopped,
}

impl std::fmt::Display for Status {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let s = match self {
            Status::Creating => "creating",
            Status::Created => "created",
            Status::Running => "running",
            Status::Paused => "paused",
            Status::Stopped => "stopped",
        };
        f.write_str(s)
    }
}

/// What berth keeps about a container between commands.
#[derive(Serialize, Deserialize, Debug, Clone)]
pub struct Saved {
    pub id: String,
    pub pid: i32,
    /// /proc/<pid>/stat starttime of the init, to tell it from a reused pid.
    pub pid_start_time: u64,
    pub bundle: PathBuf,
    pub rootfs: PathBuf,
    pub created: String,
    #[serde(default)]
    pub annotations: HashMap<String, String>,
    /// The cgroup as given to libcgroups (cgroupsPath or the default).
    pub cgroup_path: PathBuf,
    /// A rootless container without a writable cgroup has none of its own
    /// (rootless.rs): nothing to join, freeze or remove.
    #[serde(default)]
    pub no_cgroup: bool,
    #[serde(default)]
    pub systemd_cgroup: bool,
    /// Whether the container has a pid namespace of its own: if not, killing
    /// the init does not kill the rest, and delete must kill the cgroup.
    pub own_pid_ns: bool,
    /// poststart hooks, kept because config.json may change after create.
    #[serde(default)]
    pub poststart: Vec<oci_spec::runtime::Hook>,
    /// poststop hooks, kept because the bundle may be gone by delete time.
    #[serde(default)]
    pub poststop: Vec<oci_spec::runtime::Hook>,
    /// The config's `process` as it was at create: the base of `exec`.
    #[serde(default)]
    pub process: Option<oci_spec::runtime::Process>,
    /// linux.seccomp as it was at create: every exec'd process gets it too.
    #[serde(default)]
    pub seccomp: Option<oci_spec::runtime::LinuxSeccomp>,
}

impl Saved {
    /// What `create` (and `restore`) keep of the bundle for the commands
    /// that follow: its paths, annotations, hooks, process and seccomp, as
    /// they are now (the bundle may change or go away after create).
    /// `cgroup` is None for a rootless container without a cgroup.
    pub fn of_bundle(
        bundle: &crate::bundle::Bundle,
        id: &str,
        pid: i32,
        pid_start_time: u64,
        cgroup: Option<PathBuf>,
        systemd_cgroup: bool,
        own_pid_ns: bool,
    ) -> Saved {
        let spec = &bundle.spec;
        let hooks = spec.hooks().as_ref();
        Saved {
            id: id.to_string(),
            pid,
            pid_start_time,
            bundle: bundle.dir.clone(),
            rootfs: bundle.rootfs.clone(),
            created: crate::logging::rfc3339_now(),
            annotations: spec.annotations().clone().unwrap_or_default(),
            no_cgroup: cgroup.is_none(),
            cgroup_path: cgroup.unwrap_or_default(),
            systemd_cgroup,
            own_pid_ns,
            poststart: hooks
                .and_then(|h| h.poststart().clone())
                .unwrap_or_default(),
            poststop: hooks.and_then(|h| h.poststop().clone()).unwrap_or_default(),
            process: spec.process().clone(),
            seccomp: spec.linux().as_ref().and_then(|l| l.seccomp().clone()),
        }
    }
}

/// Container IDs become directory names: only a safe alphabet, as runc allows.
pub fn validate_id(id: &str) -> Result<()> {
    let ok = !id.is_empty()
        && id != "."
        && id != ".."
        && id.len() <= 1024
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_+-.".contains(&b));
    if !ok {
        bail!("invalid container id {id:?}: use letters, digits and _ + - . only");
    }
    Ok(())
}

pub struct Root {
    pub dir: PathBuf,
}

impl Root {
    pub fn new(dir: &Path) -> Self {
        Root {
            dir: dir.to_path_buf(),
        }
    }

    pub fn container_dir(&self, id: &str) -> PathBuf {
        self.dir.join(id)
    }

    /// Makes the directory of a new container, locked. Fails if the ID exists.
    pub fn create_container_dir(&self, id: &str) -> Result<LockedDir> {
        validate_id(id)?;
        fs::create_dir_all(&self.dir)
            .with_context(|| format!("create state root {}", self.dir.display()))?;
        let dir = self.container_dir(id);
        match fs::create_dir(&dir) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                bail!("container with id {id:?} already exists")
            }
            Err(e) => return Err(e).with_context(|| format!("create {}", dir.display())),
        }
        LockedDir::lock(dir)
    }

    /// Opens and locks the directory of an existing container.
    pub fn open_container(&self, id: &str) -> Result<Container> {
        validate_id(id)?;
        let dir = self.container_dir(id);
        let lock = match LockedDir::lock(dir.clone()) {
            Ok(l) => l,
            Err(_) if !dir.exists() => bail!("container {id:?} does not exist"),
            Err(e) => return Err(e),
        };
        let saved = load_saved(&dir)
            .with_context(|| format!("container {id:?} does not exist"))
            .map_err(|e| {
                // A directory without state.json is a create that never finished.
                if dir.join(STATE_FILE).exists() {
                    e
                } else {
                    anyhow::anyhow!("container {id:?} does not exist")
                }
            })?;
        Ok(Container { lock, saved })
    }

    /// Reads a container without locking, for `state` and `list`.
    pub fn peek(&self, id: &str) -> Result<Saved> {
        validate_id(id)?;
        let dir = self.container_dir(id);
        load_saved(&dir).map_err(|_| anyhow::anyhow!("container {id:?} does not exist"))
    }

    /// The IDs under the root, sorted.
    pub fn ids(&self) -> Result<Vec<String>> {
        let mut ids = Vec::new();
        let entries = match fs::read_dir(&self.dir) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(ids),
            Err(e) => return Err(e).with_context(|| format!("read {}", self.dir.display())),
        };
        for entry in entries.flatten() {
            if let Some(name) = entry.file_name().to_str() {
                if entry.path().join(STATE_FILE).exists() {
                    ids.push(name.to_string());
                }
            }
        }
        ids.sort();
        Ok(ids)
    }
}

fn load_saved(dir: &Path) -> Result<Saved> {
    let data = fs::read(dir.join(STATE_FILE))?;
    Ok(serde_json::from_slice(&data)?)
}

/// A container directory held under an exclusive flock. The lock goes with
/// the fd when the process exits, so a killed berth never leaves it held.
pub struct LockedDir {
    pub path: PathBuf,
    _fd: File,
}

impl LockedDir {
    fn lock(path: PathBuf) -> Result<Self> {
        let fd = File::open(&path).with_context(|| format!("open {}", path.display()))?;
        // SAFETY: flock on an fd we own.
        if unsafe { libc::flock(fd.as_raw_fd(), libc::LOCK_EX) } != 0 {
            bail!(
                "lock {}: {}",
                path.display(),
                std::io::Error::last_os_error()
            );
        }
        Ok(LockedDir { path, _fd: fd })
    }

    /// Writes state.json atomically: a reader sees the old or the new file.
    /// No fsync: /run is a tmpfs and the state doesn't outlive a reboot.
    pub fn save(&self, saved: &Saved) -> Result<()> {
        let tmp = self.path.join(".state.json.tmp");
        let mut f = File::create(&tmp).with_context(|| format!("write {}", tmp.display()))?;
        f.write_all(&serde_json::to_vec(saved)?)?;
        drop(f);
        fs::rename(&tmp, self.path.join(STATE_FILE))
            .with_context(|| format!("write state in {}", self.path.display()))
    }

    /// Removes the container's directory and everything in it.
    pub fn remove(self) -> Result<()> {
        // state.json first: from here on the container "does not exist".
        let _ = fs::remove_file(self.path.join(STATE_FILE));
        fs::remove_dir_all(&self.path).with_context(|| format!("remove {}", self.path.display()))
    }
}

pub struct Container {
    pub lock: LockedDir,
    pub saved: Saved,
}

impl Container {
    pub fn status(&self) -> Status {
        status_of(&self.lock.path, &self.saved)
    }
}

/// Derives the status from what is alive now (runtime.md "State": status).
pub fn status_of(dir: &Path, saved: &Saved) -> Status {
    if !process_is(saved.pid, saved.pid_start_time) {
        return Status::Stopped;
    }
    if dir.join(START_SOCKET).exists() {
        return Status::Created;
    }
    if !saved.no_cgroup && crate::cgroups::is_frozen(&saved.cgroup_path) {
        return Status::Paused;
    }
    Status::Running
}

pub fn oci_state(dir: &Path, saved: &Saved) -> OciState {
    let status = status_of(dir, saved);
    OciState {
        oci_version: crate::OCI_VERSION.to_string(),
        id: saved.id.clone(),
        pid: if status == Status::Stopped {
            0
        } else {
            saved.pid
        },
        status,
        bundle: saved.bundle.clone(),
        rootfs: saved.rootfs.clone(),
        created: saved.created.clone(),
        annotations: saved.annotations.clone(),
        owner: String::new(),
    }
}

/// Is `pid` alive and still the process that started at `start_time`?
pub fn process_is(pid: i32, start_time: u64) -> bool {
    if pid <= 0 {
        return false;
    }
    match read_proc_stat(pid) {
        Some((state, start)) => start == start_time && state != 'Z' && state != 'X',
        None => false,
    }
}

/// The process state letter and starttime (field 22) from /proc/<pid>/stat.
pub fn read_proc_stat(pid: i32) -> Option<(char, u64)> {
    let stat = crate::procfs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // comm may hold spaces and parentheses: fields resume after the last ')'.
    let rest = &stat[stat.rfind(')')? + 2..];
    let mut fields = rest.split_ascii_whitespace();
    let state = fields.next()?.chars().next()?;
    // rest starts at field 3 (state); starttime is field 22.
    let start = fields.nth(18)?.parse().ok()?;
    Some((state, start))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_checked() {
        for good in ["a", "abc-1_2.3+x", &"x".repeat(64)] {
            assert!(validate_id(good).is_ok(), "{good}");
        }
        for bad in ["", ".", "..", "../x", "a/b", "a b", "a\n", "é"] {
            assert!(validate_id(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn reads_own_start_time() {
        let me = std::process::id() as i32;
        let (state, start) = read_proc_stat(me).expect("own stat");
        assert!(state == 'R' || state == 'S');
        assert!(process_is(me, start));
        assert!(!process_is(me, start + 1));
    }
}
