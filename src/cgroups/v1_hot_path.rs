//! The cgroup v1 (and hybrid) work on container start and delete, written
//! directly. libcgroups' v1 manager finds each of its twelve controllers by
//! reading /proc/self/mountinfo and /proc/self/cgroup through a fresh safe
//! procfs handle, every time a manager is made: about half of the syscalls
//! of a whole `berth run`. Here the mount table is read once, the container
//! joins every hierarchy with plain mkdir + write, device rules are written
//! as libcgroups writes them, and delete is kill + rmdir. libcgroups is still
//! used for every other resource (memory, cpu, pids, blkio, hugetlb...), only
//! when the config asks for one.

use std::fs;
use std::io::{ErrorKind, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{anyhow, Context, Result};

use crate::rootfs::mountinfo::MountInfo;
use oci_spec::runtime::LinuxResources;

/// Controllers libcgroups' v1 manager handles: the hierarchies a container joins.
const CONTROLLERS: [&str; 12] = [
    "cpu",
    "cpuacct",
    "cpuset",
    "devices",
    "hugetlb",
    "memory",
    "pids",
    "perf_event",
    "blkio",
    "net_prio",
    "net_cls",
    "freezer",
];

/// One mounted v1 hierarchy (co-mounted controllers share one).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hierarchy {
    pub mount: PathBuf,
    pub controllers: Vec<String>,
}

/// The hierarchies a container joins on a v1 or hybrid host, from one read of
/// /proc/self/mountinfo: every v1 hierarchy with a known controller, and on
/// the hybrid layout the unified one too (empty `controllers`), where the
/// container also gets its cgroup, as with runc.
pub fn hierarchies(hybrid_unified: Option<&Path>) -> Result<Vec<Hierarchy>> {
    let mut found = v1_hierarchies(crate::rootfs::mountinfo::host_mountinfo()?);
    if let Some(unified) = hybrid_unified {
        found.push(Hierarchy {
            mount: unified.to_path_buf(),
            controllers: Vec::new(),
        });
    }
    Ok(found)
}

fn v1_hierarchies(mounts: &[MountInfo]) -> Vec<Hierarchy> {
    let mut found: Vec<Hierarchy> = Vec::new();
    for m in mounts.iter().filter(|m| m.fs_type == "cgroup") {
        let controllers: Vec<String> = m
            .super_options
            .split(',')
            .filter(|o| CONTROLLERS.contains(o))
            .map(str::to_string)
            .collect();
        if controllers.is_empty() || found.iter().any(|h| h.controllers == controllers) {
            continue;
        }
        found.push(Hierarchy {
            mount: m.mount_point.clone(),
            controllers,
        });
    }
    found
}

pub fn dir_in(h: &Hierarchy, path: &Path) -> PathBuf {
    h.mount.join(path.strip_prefix("/").unwrap_or(path))
}

/// Creates the container's cgroup in every hierarchy and moves `pid` in.
pub fn enter(hierarchies: &[Hierarchy], path: &Path, pid: i32) -> Result<()> {
    for h in hierarchies {
        let dir = make_dir(h, path)?;
        fs::write(dir.join("cgroup.procs"), pid.to_string())
            .with_context(|| format!("add process {pid} to cgroup {}", dir.display()))?;
    }
    Ok(())
}

/// Creates the container's cgroup in one hierarchy (a cpuset one ready to
/// take a process) and returns its directory.
pub fn make_dir(h: &Hierarchy, path: &Path) -> Result<PathBuf> {
    let dir = dir_in(h, path);
    if h.controllers.iter().any(|c| c == "cpuset") {
        make_cpuset_dirs(&h.mount, path)?;
    } else {
        fs::create_dir_all(&dir).with_context(|| format!("create cgroup {}", dir.display()))?;
    }
    Ok(dir)
}

/// A new cpuset cgroup starts with no cpus and no mems, and a process can't
/// join it until they are set: each new level inherits its parent's.
fn make_cpuset_dirs(mount: &Path, path: &Path) -> Result<()> {
    let mut dir = mount.to_path_buf();
    for part in path
        .components()
        .filter(|c| matches!(c, std::path::Component::Normal(_)))
    {
        let parent = dir.clone();
        dir.push(part);
        match fs::create_dir(&dir) {
            Ok(()) => {}
            Err(e) if e.kind() == ErrorKind::AlreadyExists => {}
            Err(e) => return Err(e).with_context(|| format!("create cgroup {}", dir.display())),
        }
        for file in ["cpuset.cpus", "cpuset.mems"] {
            let current = crate::procfs::read_to_string(dir.join(file)).unwrap_or_default();
            if current.trim().is_empty() {
                let inherited = crate::procfs::read_to_string(parent.join(file))
                    .with_context(|| format!("read {}", parent.join(file).display()))?;
                fs::write(dir.join(file), inherited.trim())
                    .with_context(|| format!("write {}", dir.join(file).display()))?;
            }
        }
    }
    Ok(())
}

/// config-linux.md "Device allowlist" on v1: the config's rules in order,
/// then the devices every container needs (the default nodes, mknod of any
/// node, the console, ptys, ptmx and tun), in the order libcgroups writes
/// them, so behaviour is the same whichever path applies them.
pub fn apply_devices(
    hierarchies: &[Hierarchy],
    path: &Path,
    resources: Option<&LinuxResources>,
) -> Result<()> {
    let Some(h) = hierarchies
        .iter()
        .find(|h| h.controllers.iter().any(|c| c == "devices"))
    else {
        return Ok(());
    };
    let dir = dir_in(h, path);
    let rules = super::device_rules(resources.and_then(|r| r.devices().as_deref()));
    // The kernel takes one rule per write(2): each file is opened once and
    // written once per rule, in the config's order.
    let (mut allow, mut deny) = (None, None);
    for rule in rules {
        let (slot, name) = if rule.allow() {
            (&mut allow, "devices.allow")
        } else {
            (&mut deny, "devices.deny")
        };
        let write_rule = |slot: &mut Option<fs::File>| -> std::io::Result<()> {
            if slot.is_none() {
                *slot = Some(fs::OpenOptions::new().write(true).open(dir.join(name))?);
            }
            let file = slot.as_mut().expect("opened above");
            file.write_all(rule.to_string().as_bytes())
        };
        write_rule(slot).map_err(|e| {
            anyhow!(
                "linux.resources.devices: write {rule} to {}: {e}",
                dir.join(name).display()
            )
        })?;
    }
    Ok(())
}

/// Does `linux.resources` ask for anything beyond device rules? Then
/// libcgroups applies it.
pub fn needs_more_than_devices(r: &LinuxResources) -> bool {
    r.memory().is_some()
        || r.cpu().is_some()
        || r.pids().is_some()
        || r.block_io().is_some()
        || r.hugepage_limits().as_ref().is_some_and(|h| !h.is_empty())
        || r.network().is_some()
        || r.rdma().as_ref().is_some_and(|m| !m.is_empty())
        || r.unified().as_ref().is_some_and(|m| !m.is_empty())
}

/// Kills what is left in the container's cgroup of every hierarchy and
/// removes it (children first). Gone already is fine.
pub fn remove(hierarchies: &[Hierarchy], path: &Path) -> Result<()> {
    for h in hierarchies {
        remove_tree(&dir_in(h, path))?;
    }
    Ok(())
}

pub fn remove_tree(dir: &Path) -> Result<()> {
    // The common case: the container's processes are gone and it made no
    // child cgroups, so one rmdir does it. Otherwise (EBUSY) empty it first.
    match fs::remove_dir(dir) {
        Ok(()) => return Ok(()),
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(()),
        Err(_) => {}
    }
    let entries = match fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e).with_context(|| format!("read cgroup {}", dir.display())),
    };
    for entry in entries.flatten() {
        if entry.file_type().is_ok_and(|t| t.is_dir()) {
            remove_tree(&entry.path())?;
        }
    }
    // A dying process keeps the cgroup busy for a moment after SIGKILL.
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut pause = Duration::from_micros(500);
    loop {
        if let Ok(procs) = fs::read_to_string(dir.join("cgroup.procs")) {
            for pid in procs.lines().filter_map(|l| l.trim().parse::<i32>().ok()) {
                let _ = nix::sys::signal::kill(
                    nix::unistd::Pid::from_raw(pid),
                    nix::sys::signal::SIGKILL,
                );
            }
        }
        match fs::remove_dir(dir) {
            Ok(()) => return Ok(()),
            Err(e) if e.kind() == ErrorKind::NotFound => return Ok(()),
            Err(e) if e.raw_os_error() == Some(libc::EBUSY) && Instant::now() < deadline => {
                std::thread::sleep(pause);
                pause = (pause * 2).min(Duration::from_millis(50));
            }
            Err(e) => return Err(anyhow!("remove cgroup {}: {e}", dir.display())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hierarchies_from_mountinfo() {
        let text = "\
33 25 0:29 / /sys/fs/cgroup/cpu rw,nosuid shared:10 - cgroup cgroup rw,cpu
34 25 0:30 / /sys/fs/cgroup/cpuacct rw shared:11 - cgroup cgroup rw,cpuacct
35 25 0:31 / /sys/fs/cgroup/net_cls,net_prio rw - cgroup cgroup rw,net_cls,net_prio
36 25 0:37 / /sys/fs/cgroup/systemd rw - cgroup cgroup rw,xattr,name=systemd
37 25 0:38 / /sys/fs/cgroup/unified rw - cgroup2 cgroup2 rw,nsdelegate
38 25 0:39 / /sys/fs/cgroup/with\\040space rw - cgroup cgroup rw,pids
39 25 0:40 / /elsewhere/pids rw - cgroup cgroup rw,pids
";
        let h = v1_hierarchies(&crate::rootfs::mountinfo::parse_mountinfo(text));
        let mounts: Vec<_> = h
            .iter()
            .map(|h| h.mount.to_str().unwrap().to_string())
            .collect();
        assert_eq!(
            mounts,
            [
                "/sys/fs/cgroup/cpu",
                "/sys/fs/cgroup/cpuacct",
                "/sys/fs/cgroup/net_cls,net_prio",
                "/sys/fs/cgroup/with space"
            ]
        );
        assert_eq!(h[2].controllers, ["net_cls", "net_prio"]);
    }
}
