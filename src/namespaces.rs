//! linux.namespaces (config-linux.md "Namespaces"): which to create, which to
//! join by `path`, and who does it.
//!
//! Namespaces are created by the clone that makes the init, except two that
//! must be entered *after* the init exists: cgroup (so its root is the
//! container's cgroup, which the init joins first) and time (its offsets must
//! be written before any process is in it, so the parent unshares it and the
//! init is born inside). Joining pid and time namespaces changes only the
//! caller's children, so the parent joins those before the clone; joining a
//! user namespace happens in a short-lived intermediate process (see create.rs).

use anyhow::{anyhow, bail, Context, Result};
use nix::sched::CloneFlags;
use oci_spec::runtime::{LinuxNamespaceType, Spec};
use std::fs::File;
use std::os::fd::{AsFd, OwnedFd};

pub struct Join {
    pub kind: LinuxNamespaceType,
    pub fd: OwnedFd,
}

pub struct Plan {
    /// Namespaces to create with the clone.
    pub clone_flags: CloneFlags,
    pub new_user: bool,
    pub new_pid: bool,
    pub new_mount: bool,
    pub new_uts: bool,
    pub new_cgroup: bool,
    pub new_time: bool,
    /// Namespaces to join, opened before any of berth's own namespaces change.
    pub joins: Vec<Join>,
}

impl Plan {
    pub fn join_of(&self, kind: LinuxNamespaceType) -> Option<&Join> {
        self.joins.iter().find(|j| j.kind == kind)
    }
    pub fn has_pid_ns(&self) -> bool {
        self.new_pid || self.join_of(LinuxNamespaceType::Pid).is_some()
    }
}

pub fn flag_of(kind: LinuxNamespaceType) -> CloneFlags {
    match kind {
        LinuxNamespaceType::Mount => CloneFlags::CLONE_NEWNS,
        LinuxNamespaceType::Cgroup => CloneFlags::CLONE_NEWCGROUP,
        LinuxNamespaceType::Uts => CloneFlags::CLONE_NEWUTS,
        LinuxNamespaceType::Ipc => CloneFlags::CLONE_NEWIPC,
        LinuxNamespaceType::User => CloneFlags::CLONE_NEWUSER,
        LinuxNamespaceType::Pid => CloneFlags::CLONE_NEWPID,
        LinuxNamespaceType::Network => CloneFlags::CLONE_NEWNET,
        LinuxNamespaceType::Time => CloneFlags::from_bits_retain(libc::CLONE_NEWTIME),
    }
}

pub fn name_of(kind: LinuxNamespaceType) -> &'static str {
    match kind {
        LinuxNamespaceType::Mount => "mount",
        LinuxNamespaceType::Cgroup => "cgroup",
        LinuxNamespaceType::Uts => "uts",
        LinuxNamespaceType::Ipc => "ipc",
        LinuxNamespaceType::User => "user",
        LinuxNamespaceType::Pid => "pid",
        LinuxNamespaceType::Network => "network",
        LinuxNamespaceType::Time => "time",
    }
}

pub fn plan(spec: &Spec) -> Result<Plan> {
    let mut plan = Plan {
        clone_flags: CloneFlags::empty(),
        new_user: false,
        new_pid: false,
        new_mount: false,
        new_uts: false,
        new_cgroup: false,
        new_time: false,
        joins: Vec::new(),
    };
    let mut seen: Vec<LinuxNamespaceType> = Vec::new();
    let namespaces = spec
        .linux()
        .as_ref()
        .and_then(|l| l.namespaces().clone())
        .unwrap_or_default();
    for ns in &namespaces {
        let kind = ns.typ();
        if seen.contains(&kind) {
            bail!(
                "linux.namespaces: the {} namespace is listed twice",
                name_of(kind)
            );
        }
        seen.push(kind);
        match ns.path() {
            Some(path) if !path.as_os_str().is_empty() => {
                let f = File::open(path).with_context(|| {
                    format!("open {} namespace path {}", name_of(kind), path.display())
                })?;
                plan.joins.push(Join { kind, fd: f.into() });
            }
            _ => match kind {
                LinuxNamespaceType::Cgroup => plan.new_cgroup = true,
                LinuxNamespaceType::Time => plan.new_time = true,
                other => {
                    plan.clone_flags |= flag_of(other);
                    match other {
                        LinuxNamespaceType::User => plan.new_user = true,
                        LinuxNamespaceType::Pid => plan.new_pid = true,
                        LinuxNamespaceType::Mount => plan.new_mount = true,
                        LinuxNamespaceType::Uts => plan.new_uts = true,
                        _ => {}
                    }
                }
            },
        }
    }
    let linux = spec.linux().as_ref();
    let has_maps = linux
        .map(|l| l.uid_mappings().is_some() || l.gid_mappings().is_some())
        .unwrap_or(false);
    if has_maps && !plan.new_user {
        bail!("linux.uidMappings/gidMappings need a new user namespace in linux.namespaces");
    }
    if plan.new_user && !has_maps {
        bail!("a new user namespace needs linux.uidMappings and linux.gidMappings");
    }
    if linux.and_then(|l| l.time_offsets().as_ref()).is_some() && !plan.new_time {
        bail!("linux.timeOffsets needs a new time namespace in linux.namespaces");
    }
    if !plan.new_mount && plan.join_of(LinuxNamespaceType::Mount).is_none() {
        bail!(
            "linux.namespaces: berth needs a mount namespace (new or joined) to set up the rootfs"
        );
    }
    Ok(plan)
}

/// setns(2) into a namespace opened by [`plan`].
pub fn enter(join: &Join) -> Result<()> {
    nix::sched::setns(join.fd.as_fd(), flag_of(join.kind)).map_err(|e| {
        anyhow!(
            "join the {} namespace given by path: {e}",
            name_of(join.kind)
        )
    })
}

/// Writes linux.timeOffsets into the (just unshared, still empty) time namespace.
pub fn write_time_offsets(spec: &Spec) -> Result<()> {
    let Some(offsets) = spec
        .linux()
        .as_ref()
        .and_then(|l| l.time_offsets().as_ref())
    else {
        return Ok(());
    };
    let mut text = String::new();
    for (clock, off) in offsets {
        if clock != "monotonic" && clock != "boottime" {
            bail!("linux.timeOffsets: unknown clock {clock:?} (monotonic or boottime)");
        }
        text.push_str(&format!(
            "{clock} {} {}\n",
            off.secs().unwrap_or(0),
            off.nanosecs().unwrap_or(0)
        ));
    }
    std::fs::write("/proc/self/timens_offsets", text)
        .map_err(|e| anyhow!("write linux.timeOffsets: {e}"))
}
