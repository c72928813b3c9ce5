//! The container's cgroup, through libcgroups (config-linux.md "Control groups").
//!
//! libcgroups picks the driver from the host layout: cgroup v1 and the hybrid
//! layout (v1 controllers plus a cgroup2 mount at /sys/fs/cgroup/unified, as on
//! this project's build machine) get the v1 manager; a pure cgroup2 host the v2
//! one. The shim reads metrics and OOM events straight from the cgroup, so it
//! must be exactly where `cgroupsPath` says.
//!
//! On v1 and hybrid hosts the start and delete of a container (joining the
//! hierarchies, device rules, removal) are written directly by
//! `v1_hot_path`, which reads the mount table once; libcgroups applies the
//! other resources when the config has any.

mod device_filter;
mod fields;
mod v1_hot_path;

use anyhow::{anyhow, bail, Context, Result};
use libcgroups::common::{
    create_cgroup_manager, AnyCgroupManager, CgroupConfig, CgroupManager, ControllerOpt,
};
use nix::unistd::Pid;
use oci_spec::runtime::{LinuxDeviceCgroup, LinuxDeviceType, Spec};
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};

const CGROUP_ROOT: &str = "/sys/fs/cgroup";

/// The cgroup path of a container: `linux.cgroupsPath`, or `/<id>` like runc.
/// With `--systemd-cgroup`, the cgroupfs path of the scope systemd makes for
/// it (see `systemd_unit_path`).
pub fn path_for(spec: &Spec, id: &str, systemd: bool) -> Result<PathBuf> {
    if systemd {
        let unit = systemd_unit_path(spec, id)?;
        return Ok(systemd_fs_path(&unit));
    }
    let given = spec.linux().as_ref().and_then(|l| l.cgroups_path().clone());
    let path = match given {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => PathBuf::from(format!("/{id}")),
    };
    // The path is joined under every hierarchy's mount: ".." would climb out.
    if path
        .components()
        .any(|c| matches!(c, std::path::Component::ParentDir))
    {
        bail!(
            "invalid linux.cgroupsPath {}: \"..\" is not allowed",
            path.display()
        );
    }
    Ok(path)
}

/// The systemd driver's `slice:prefix:name` (config-linux.md "Cgroups Path"
/// leaves the format to the runtime; this is runc's). An empty cgroupsPath
/// is `system.slice:berth:<id>`, as runc's is `system.slice:runc:<id>`.
/// Refused where the driver can't work: berth drives systemd only on a pure
/// cgroup v2 host with systemd as init.
fn systemd_unit_path(spec: &Spec, id: &str) -> Result<String> {
    if !matches!(layout(), Layout::PureV2) {
        bail!(
            "--systemd-cgroup: berth's systemd driver needs a pure cgroup v2 host; this \
             host mounts cgroup v1 controllers (use the cgroupfs driver)"
        );
    }
    if !Path::new("/run/systemd/system").is_dir() {
        bail!("--systemd-cgroup: systemd is not running as init here (no /run/systemd/system)");
    }
    let given = spec
        .linux()
        .as_ref()
        .and_then(|l| l.cgroups_path().clone())
        .unwrap_or_default();
    let given = given.to_string_lossy();
    if given.is_empty() {
        return Ok(format!("system.slice:berth:{id}"));
    }
    let parts: Vec<&str> = given.split(':').collect();
    let valid_name = |s: &str| !s.is_empty() && !s.contains('/') && s != "." && s != "..";
    match parts.as_slice() {
        [slice, prefix, name]
            if (slice.is_empty() || (slice.ends_with(".slice") && valid_name(slice)))
                && !prefix.contains('/')
                && valid_name(name) =>
        {
            let slice = if slice.is_empty() {
                "system.slice"
            } else {
                slice
            };
            Ok(format!("{slice}:{prefix}:{name}"))
        }
        _ => bail!(
            "invalid linux.cgroupsPath {given:?}: with --systemd-cgroup it must be \
             \"slice:prefix:name\" (e.g. system.slice:berth:{id})"
        ),
    }
}

/// Where systemd puts the scope of `slice:prefix:name`: the slice expanded
/// ("a-b.slice" is /a.slice/a-b.slice), then "prefix-name.scope".
fn systemd_fs_path(unit_path: &str) -> PathBuf {
    let mut parts = unit_path.splitn(3, ':');
    let (slice, prefix, name) = (
        parts.next().unwrap_or(""),
        parts.next().unwrap_or(""),
        parts.next().unwrap_or(""),
    );
    let mut path = PathBuf::from("/");
    if slice != "-.slice" {
        let stem = slice.trim_end_matches(".slice");
        let mut acc = String::new();
        for piece in stem.split('-') {
            if !acc.is_empty() {
                acc.push('-');
            }
            acc.push_str(piece);
            path.push(format!("{acc}.slice"));
        }
    }
    if name.ends_with(".slice") {
        path.push(name);
    } else if prefix.is_empty() {
        path.push(format!("{name}.scope"));
    } else {
        path.push(format!("{prefix}-{name}.scope"));
    }
    path
}

/// A systemd scope's unit path again from its cgroupfs path (for delete,
/// which has only the saved path): ".../x.slice/prefix-name.scope".
fn systemd_unit_of(path: &Path) -> Option<String> {
    let unit = path.file_name()?.to_str()?;
    let stem = unit.strip_suffix(".scope")?;
    let slice = path
        .parent()
        .and_then(|p| p.file_name())
        .and_then(|s| s.to_str())
        .filter(|s| s.ends_with(".slice"))
        .unwrap_or("-.slice");
    let (prefix, name) = stem.split_once('-').unwrap_or(("", stem));
    Some(format!("{slice}:{prefix}:{name}"))
}

fn systemd_manager(unit_path: &str, id: &str) -> Result<AnyCgroupManager> {
    create_cgroup_manager(CgroupConfig {
        cgroup_path: PathBuf::from(unit_path),
        systemd_cgroup: true,
        container_name: id.to_string(),
    })
    .map_err(|e| anyhow!("--systemd-cgroup {unit_path}: {e}"))
}

/// The systemd driver's create: a transient scope (Delegate=yes) holding the
/// init, made by systemd over D-Bus, with the resources systemd knows as
/// unit properties; then every field written to the cgroup as with cgroupfs,
/// so the values are exact and fields systemd has no property for apply too.
fn enter_systemd(spec: &Spec, path: &Path, id: &str, pid: i32) -> Result<()> {
    let unit_path = systemd_unit_path(spec, id)?;
    let mgr = systemd_manager(&unit_path, id)?;
    mgr.add_task(Pid::from_raw(pid))
        .map_err(|e| anyhow!("--systemd-cgroup: start scope {unit_path} for {pid}: {e}"))?;
    let actual = std::fs::read_to_string(format!("/proc/{pid}/cgroup"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("0::").map(str::to_string))
        .unwrap_or_default();
    if Path::new(&actual) != path {
        bail!(
            "--systemd-cgroup: systemd put the container in {actual}, not {} (is systemd's \
             cgroup root /?)",
            path.display()
        );
    }
    if let Some(resources) = spec.linux().as_ref().and_then(|l| l.resources().as_ref()) {
        let host = fields::Host::V2 {
            root: Path::new(CGROUP_ROOT),
        };
        let plan = fields::plan(resources, &host, path)?;
        for reason in &plan.skipped {
            crate::logging::warn(reason);
        }
        apply_with_libcgroups(
            &mgr,
            &plan.for_libcgroups,
            "--systemd-cgroup: set unit properties for",
            path,
        )?;
        apply_with_libcgroups(
            &manager(path, id)?,
            &plan.for_libcgroups,
            "apply linux.resources to cgroup",
            path,
        )?;
        fields::write_all(&plan.writes)?;
    }
    apply_device_filter(path, devices_of(spec))
}

fn devices_of(spec: &Spec) -> Option<&[LinuxDeviceCgroup]> {
    spec.linux()
        .as_ref()
        .and_then(|l| l.resources().as_ref())
        .and_then(|r| r.devices().as_deref())
}

/// config-linux.md "Device allowlist": the container's effective device
/// rules, the config's in order and then the devices every container needs
/// (the default nodes, mknod of any node, the console, ptys, ptmx and tun),
/// in the order libcgroups writes them. The same list is written to
/// devices.allow/deny on v1 (`v1_hot_path`) and compiled into the eBPF
/// filter on v2 (`device_filter`), so a config means the same on both.
fn device_rules(
    config: Option<&[LinuxDeviceCgroup]>,
) -> impl Iterator<Item = LinuxDeviceCgroup> + '_ {
    config.into_iter().flatten().cloned().chain(default_rules())
}

fn default_rules() -> Vec<LinuxDeviceCgroup> {
    let rule = |typ, major: Option<i64>, minor: Option<i64>, access: &str| {
        let mut r = LinuxDeviceCgroup::default();
        r.set_allow(true);
        r.set_typ(Some(typ));
        r.set_major(major);
        r.set_minor(minor);
        r.set_access(Some(access.to_string()));
        r
    };
    use LinuxDeviceType::{B, C};
    vec![
        // The default device nodes: null, zero, full, tty, urandom, random.
        rule(C, Some(1), Some(3), "rwm"),
        rule(C, Some(1), Some(5), "rwm"),
        rule(C, Some(1), Some(7), "rwm"),
        rule(C, Some(5), Some(0), "rwm"),
        rule(C, Some(1), Some(9), "rwm"),
        rule(C, Some(1), Some(8), "rwm"),
        // mknod of any node; /dev/console, /dev/pts/*, /dev/ptmx, /dev/net/tun.
        rule(C, None, None, "m"),
        rule(B, None, None, "m"),
        rule(C, Some(5), Some(1), "rwm"),
        rule(C, Some(136), None, "rwm"),
        rule(C, Some(5), Some(2), "rwm"),
        rule(C, Some(10), Some(200), "rwm"),
    ]
}

/// The device allowlist on cgroup v2: an eBPF filter attached to the
/// cgroup at `path`, replacing the one berth attached before. `devices` is
/// the config's list (None: only the defaults, after the deny of nothing
/// matching).
fn apply_device_filter(path: &Path, devices: Option<&[LinuxDeviceCgroup]>) -> Result<()> {
    let list: Vec<LinuxDeviceCgroup> = device_rules(devices).collect();
    let rules = device_filter::rules(&list)?;
    let dir = Path::new(CGROUP_ROOT).join(path.strip_prefix("/").unwrap_or(path));
    match device_filter::apply(&dir, &rules) {
        // Loading a device program needs CAP_SYS_ADMIN in the initial user
        // namespace: a rootless container in a delegated cgroup can't have
        // one (as with runc). Its user namespace keeps it from mknod anyway.
        Err(e)
            if !nix::unistd::geteuid().is_root() && format!("{e:#}").contains("(os error 1)") =>
        {
            crate::logging::warn(&format!(
                "linux.resources.devices not enforced (rootless, no eBPF): {e:#}"
            ));
            Ok(())
        }
        r => r,
    }
}

fn manager(path: &Path, id: &str) -> Result<AnyCgroupManager> {
    create_cgroup_manager(CgroupConfig {
        cgroup_path: path.to_path_buf(),
        systemd_cgroup: false,
        container_name: id.to_string(),
    })
    .map_err(|e| anyhow!("cgroup {}: {e}", path.display()))
}

/// How this host mounts cgroups, found once per berth process.
enum Layout {
    /// /sys/fs/cgroup is the unified hierarchy: libcgroups' v2 manager.
    PureV2,
    /// v1 hierarchies, plus on the hybrid layout a cgroup2 mount beside them.
    V1 { hybrid_unified: Option<PathBuf> },
}

fn layout() -> &'static Layout {
    static LAYOUT: std::sync::OnceLock<Layout> = std::sync::OnceLock::new();
    LAYOUT.get_or_init(|| {
        let is_cgroup2 = |p: &str| {
            nix::sys::statfs::statfs(p)
                .map(|s| s.filesystem_type() == nix::sys::statfs::CGROUP2_SUPER_MAGIC)
                .unwrap_or(false)
        };
        if is_cgroup2(CGROUP_ROOT) {
            Layout::PureV2
        } else {
            let unified = "/sys/fs/cgroup/unified";
            Layout::V1 {
                hybrid_unified: is_cgroup2(unified).then(|| PathBuf::from(unified)),
            }
        }
    })
}

/// The hierarchies of a v1 or hybrid host (None on pure v2).
fn v1_hierarchies() -> Result<Option<Vec<v1_hot_path::Hierarchy>>> {
    match layout() {
        Layout::PureV2 => Ok(None),
        Layout::V1 { hybrid_unified } => {
            v1_hot_path::hierarchies(hybrid_unified.as_deref()).map(Some)
        }
    }
}

/// Applies `resources`: each field checked against the host first
/// (`fields::plan`), then libcgroups, then the writes it leaves out.
/// `what` starts the error message of a libcgroups failure.
fn apply_resources(
    mgr: &AnyCgroupManager,
    resources: &oci_spec::runtime::LinuxResources,
    what: &str,
    path: &Path,
    hierarchies: Option<&[v1_hot_path::Hierarchy]>,
) -> Result<()> {
    let host = match hierarchies {
        Some(hs) => fields::Host::V1(hs),
        None => fields::Host::V2 {
            root: Path::new(CGROUP_ROOT),
        },
    };
    let plan = fields::plan(resources, &host, path)?;
    for reason in &plan.skipped {
        crate::logging::warn(reason);
    }
    apply_with_libcgroups(mgr, &plan.for_libcgroups, what, path)?;
    fields::write_all(&plan.writes)
}

fn apply_with_libcgroups(
    mgr: &AnyCgroupManager,
    resources: &oci_spec::runtime::LinuxResources,
    what: &str,
    path: &Path,
) -> Result<()> {
    let opt = ControllerOpt {
        resources,
        disable_oom_killer: resources
            .memory()
            .as_ref()
            .and_then(|m| m.disable_oom_killer())
            .unwrap_or(false),
        oom_score_adj: None,
        freezer_state: None,
    };
    mgr.apply(&opt)
        .map_err(|e| anyhow!("{what} {}: {e}", path.display()))
}

/// Creates the cgroup, puts `pid` in it and applies `linux.resources`.
pub fn enter(spec: &Spec, path: &Path, id: &str, pid: i32, systemd: bool) -> Result<()> {
    if systemd {
        return enter_systemd(spec, path, id, pid);
    }
    let Some(hierarchies) = v1_hierarchies()? else {
        let mgr = manager(path, id)?;
        mgr.add_task(Pid::from_raw(pid))
            .map_err(|e| anyhow!("add process {pid} to cgroup {}: {e}", path.display()))?;
        return apply_v2_resources(spec, path, id);
    };
    v1_hot_path::enter(&hierarchies, path, pid)?;
    apply_v1_resources(&hierarchies, spec, path, id)
}

/// linux.resources on a pure v2 host, the cgroup made: through libcgroups'
/// manager, and the device filter.
fn apply_v2_resources(spec: &Spec, path: &Path, id: &str) -> Result<()> {
    if let Some(resources) = spec.linux().as_ref().and_then(|l| l.resources().as_ref()) {
        apply_resources(
            &manager(path, id)?,
            resources,
            "apply linux.resources to cgroup",
            path,
            None,
        )?;
    }
    apply_device_filter(path, devices_of(spec))
}

/// The controllers libcgroups' v2 manager enables for a container's cgroup
/// (the ones it can set limits in).
const V2_CONTROLLERS: [&str; 6] = ["cpu", "cpuset", "hugetlb", "io", "memory", "pids"];

/// Makes the container's cgroup on a pure v2 host as libcgroups' manager
/// does when it adds a task, without the task: each controller it knows
/// enabled in the root's and every ancestor's cgroup.subtree_control (a
/// controller the host lacks or refuses is left out, and a limit that needs
/// it fails when applied), the directories made. An existing cgroup is used
/// as it is. Returns the cgroup's directory, for CLONE_INTO_CGROUP, and
/// whether it was made here.
fn make_v2_cgroup(path: &Path) -> Result<(OwnedFd, bool)> {
    let root = Path::new(CGROUP_ROOT);
    let full = root.join(path.strip_prefix("/").unwrap_or(path));
    let made = !full.exists();
    if made {
        let available = crate::procfs::read_to_string(root.join("cgroup.controllers"))
            .with_context(|| format!("read {}/cgroup.controllers", root.display()))?;
        let enable: Vec<String> = available
            .split_whitespace()
            .filter(|c| V2_CONTROLLERS.contains(c))
            .map(|c| format!("+{c}"))
            .collect();
        let enable_in = |dir: &Path| {
            for c in &enable {
                let _ = std::fs::write(dir.join("cgroup.subtree_control"), c);
            }
        };
        enable_in(root);
        let mut dir = root.to_path_buf();
        let mut components = path
            .components()
            .filter(|c| *c != std::path::Component::RootDir)
            .peekable();
        while let Some(c) = components.next() {
            dir.push(c);
            match std::fs::create_dir(&dir) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
                Err(e) => bail!("create cgroup {}: {e}", dir.display()),
            }
            // Not in the leaf: a cgroup with controllers enabled for its
            // children can't hold processes itself.
            if components.peek().is_some() {
                enable_in(&dir);
            }
        }
    }
    Ok((open_dir_path(&full)?, made))
}

/// An O_PATH descriptor of a cgroup directory (for CLONE_INTO_CGROUP).
fn open_dir_path(dir: &Path) -> Result<OwnedFd> {
    let fd = nix::fcntl::open(
        dir,
        nix::fcntl::OFlag::O_PATH | nix::fcntl::OFlag::O_DIRECTORY | nix::fcntl::OFlag::O_CLOEXEC,
        nix::sys::stat::Mode::empty(),
    )
    .map_err(|e| anyhow!("open cgroup {}: {e}", dir.display()))?;
    // SAFETY: nix just returned this descriptor to us.
    Ok(unsafe { <OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(fd) })
}

/// linux.resources on a v1 or hybrid host, the cgroup made: device rules
/// directly, everything else through libcgroups when the config has it.
fn apply_v1_resources(
    hierarchies: &[v1_hot_path::Hierarchy],
    spec: &Spec,
    path: &Path,
    id: &str,
) -> Result<()> {
    let resources = spec.linux().as_ref().and_then(|l| l.resources().as_ref());
    v1_hot_path::apply_devices(hierarchies, path, resources)?;
    if let Some(resources) = resources.filter(|r| v1_hot_path::needs_more_than_devices(r)) {
        let mgr = manager(path, id)?;
        apply_resources(
            &mgr,
            resources,
            "apply linux.resources to cgroup",
            path,
            Some(hierarchies),
        )?;
    }
    Ok(())
}

/// The fast way into the container's cgroup, used by `create` when the init
/// can do it itself (cgroupfs driver, root, no new user namespace: see
/// create.rs), on every layout: pure v2, hybrid, v1.
///
/// Writing another process's pid to cgroup.procs (or any write to a v2
/// cgroup.procs) takes the kernel's global cgroup_threadgroup_rwsem for
/// writing, and the first writer after a quiet spell waits for an RCU grace
/// period: 5-15 ms on this project's machine, longer than the rest of a
/// `berth run`, and meanwhile every fork on the host waits too. Two ways in
/// skip that lock: a thread writing "0" (itself) to a v1 `tasks` file
/// (cgroup_procs_write_start takes the lock only for another pid or a whole
/// thread group; the init is single-threaded, so the thread is the
/// process), and clone3's CLONE_INTO_CGROUP for the cgroup2 hierarchy (the
/// only one on a pure v2 host, where the init then has nothing to join).
pub struct SelfJoin {
    hierarchies: Vec<v1_hot_path::Hierarchy>,
    /// `tasks` of the container's cgroup in each v1 hierarchy, for the init.
    pub tasks: Vec<PathBuf>,
    /// The container's cgroup in the cgroup2 hierarchy (pure v2, or the
    /// hybrid layout's), made before the clone: the init is born in it.
    pub unified: Option<OwnedFd>,
    /// Whether berth made the container's cgroup (false: it existed
    /// already, on pure v2), so that a failed create removes only its own.
    pub made: bool,
}

impl SelfJoin {
    /// On a pure v2 host only the cgroup2 directory (no v1 hierarchies).
    pub fn prepare(path: &Path) -> Result<SelfJoin> {
        let Some(hierarchies) = v1_hierarchies()? else {
            let (dir, made) = make_v2_cgroup(path)?;
            return Ok(SelfJoin {
                hierarchies: Vec::new(),
                tasks: Vec::new(),
                unified: Some(dir),
                made,
            });
        };
        let mut tasks = Vec::new();
        let mut unified = None;
        for h in &hierarchies {
            let dir = v1_hot_path::dir_in(h, path);
            if h.controllers.is_empty() {
                std::fs::create_dir_all(&dir)
                    .with_context(|| format!("create cgroup {}", dir.display()))?;
                unified = Some(open_dir_path(&dir)?);
            } else {
                tasks.push(dir.join("tasks"));
            }
        }
        Ok(SelfJoin {
            hierarchies,
            tasks,
            unified,
            made: true,
        })
    }

    /// `create`'s side: the v1 directories, device rules and resources, all
    /// before the init goes on (it waits for `Joined`). On pure v2 the init
    /// is in its cgroup already: the limits and the device filter.
    pub fn make_cgroup(&self, spec: &Spec, path: &Path, id: &str) -> Result<()> {
        if self.hierarchies.is_empty() {
            return apply_v2_resources(spec, path, id);
        }
        for h in self
            .hierarchies
            .iter()
            .filter(|h| !h.controllers.is_empty())
        {
            v1_hot_path::make_dir(h, path)?;
        }
        apply_v1_resources(&self.hierarchies, spec, path, id)
    }
}

/// The init's side of SelfJoin: this thread moves itself into each v1
/// hierarchy's cgroup.
pub fn join_self(tasks: &[PathBuf]) -> Result<()> {
    for t in tasks {
        std::fs::write(t, "0").with_context(|| format!("join cgroup {}", t.display()))?;
    }
    Ok(())
}

/// Moves `pid` into the cgroup2 directory `dir` (clone without clone3).
pub fn write_procs_at(dir: std::os::fd::BorrowedFd, pid: i32) -> Result<()> {
    use std::os::fd::AsRawFd;
    // SAFETY: a valid dir fd and C string; the fd is owned by File below.
    let fd = unsafe {
        libc::openat(
            dir.as_raw_fd(),
            c"cgroup.procs".as_ptr(),
            libc::O_WRONLY | libc::O_CLOEXEC,
        )
    };
    if fd < 0 {
        bail!("open cgroup.procs: {}", std::io::Error::last_os_error());
    }
    // SAFETY: just opened, ours.
    let mut f = unsafe { <std::fs::File as std::os::fd::FromRawFd>::from_raw_fd(fd) };
    std::io::Write::write_all(&mut f, pid.to_string().as_bytes())
        .map_err(|e| anyhow!("add process {pid} to its cgroup: {e}"))
}

/// Puts `pid` into the container's existing cgroup, in every hierarchy
/// (for `exec`: the new process lives under the container's limits).
pub fn join(path: &Path, id: &str, pid: i32) -> Result<()> {
    match v1_hierarchies()? {
        Some(hierarchies) => v1_hot_path::enter(&hierarchies, path, pid),
        None => manager(path, id)?
            .add_task(Pid::from_raw(pid))
            .map_err(|e| anyhow!("add process {pid} to cgroup {}: {e}", path.display())),
    }
}

/// Applies new `linux.resources` to the container's cgroup (`update`).
pub fn update(path: &Path, id: &str, resources: &oci_spec::runtime::LinuxResources) -> Result<()> {
    let hierarchies = v1_hierarchies()?;
    if let Some(m) = resources.memory() {
        if let (Some(true), Some(limit)) = (m.check_before_update(), m.limit()) {
            check_usage_below(path, hierarchies.as_deref(), limit)?;
        }
    }
    apply_resources(
        &manager(path, id)?,
        resources,
        "update cgroup",
        path,
        hierarchies.as_deref(),
    )?;
    // New device rules replace the filter; without any it stays (runc's
    // `update` leaves devices alone too).
    match (&hierarchies, resources.devices()) {
        (None, Some(devices)) => apply_device_filter(path, Some(devices)),
        _ => Ok(()),
    }
}

/// config-linux.md "Memory" `checkBeforeUpdate`: a new limit below what the
/// container uses now is refused rather than left to the OOM killer.
fn check_usage_below(
    path: &Path,
    hierarchies: Option<&[v1_hot_path::Hierarchy]>,
    limit: i64,
) -> Result<()> {
    if limit < 0 {
        return Ok(());
    }
    let rel = path.strip_prefix("/").unwrap_or(path);
    let file = match hierarchies {
        Some(hs) => hs
            .iter()
            .find(|h| h.controllers.iter().any(|c| c == "memory"))
            .map(|h| h.mount.join(rel).join("memory.usage_in_bytes"))
            .ok_or_else(|| anyhow!("linux.resources.memory: no memory cgroup hierarchy"))?,
        None => Path::new(CGROUP_ROOT).join(rel).join("memory.current"),
    };
    let usage: i64 = std::fs::read_to_string(&file)
        .with_context(|| format!("checkBeforeUpdate: read {}", file.display()))?
        .trim()
        .parse()
        .with_context(|| format!("checkBeforeUpdate: parse {}", file.display()))?;
    if limit < usage {
        bail!(
            "linux.resources.memory.limit {limit} is below the container's current memory \
             usage {usage} (checkBeforeUpdate)"
        );
    }
    Ok(())
}

/// Freezes (`pause`) or thaws (`resume`) every process of the container;
/// returns once the kernel reports the new state.
pub fn set_frozen(path: &Path, id: &str, frozen: bool) -> Result<()> {
    use libcgroups::common::FreezerState;
    let mgr = manager(path, id)?;
    let state = if frozen {
        FreezerState::Frozen
    } else {
        FreezerState::Thawed
    };
    mgr.freeze(state).map_err(|e| {
        anyhow!(
            "{} cgroup {}: {e}",
            if frozen { "freeze" } else { "thaw" },
            path.display()
        )
    })?;
    // libcgroups waits for FROZEN in v1; check it, whatever the driver.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while is_frozen(path) != frozen {
        if std::time::Instant::now() > deadline {
            bail!(
                "cgroup {} did not become {}",
                path.display(),
                if frozen { "frozen" } else { "thawed" }
            );
        }
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    Ok(())
}

/// The cgroup's statistics (cpu, memory, pids, blkio, hugetlb).
pub fn stats(path: &Path, id: &str) -> Result<libcgroups::stats::Stats> {
    if let Some(stats) = v2_stats_without_hugetlb(path) {
        return Ok(stats);
    }
    let mgr = manager(path, id)?;
    mgr.stats()
        .map_err(|e| anyhow!("statistics of cgroup {}: {e}", path.display()))
}

/// libcgroups' v2 stats read every controller's files and fail when one is
/// not enabled in the cgroup: a systemd scope never has hugetlb (systemd
/// doesn't delegate it). For such a cgroup the stats are read here, from the
/// controllers it has (cpu, memory, pids); None lets libcgroups do the rest.
fn v2_stats_without_hugetlb(path: &Path) -> Option<libcgroups::stats::Stats> {
    if !matches!(layout(), Layout::PureV2) {
        return None;
    }
    let dir = Path::new(CGROUP_ROOT).join(path.strip_prefix("/").unwrap_or(path));
    let controllers = std::fs::read_to_string(dir.join("cgroup.controllers")).ok()?;
    if controllers.split_whitespace().any(|c| c == "hugetlb") {
        return None;
    }
    let keyed = |file: &str| -> std::collections::HashMap<String, u64> {
        std::fs::read_to_string(dir.join(file))
            .unwrap_or_default()
            .lines()
            .filter_map(|l| {
                let (k, v) = l.split_once(' ')?;
                Some((k.to_string(), v.trim().parse().ok()?))
            })
            .collect()
    };
    let single = |file: &str| -> u64 {
        std::fs::read_to_string(dir.join(file))
            .ok()
            .and_then(|v| match v.trim() {
                "max" => Some(u64::MAX),
                v => v.parse().ok(),
            })
            .unwrap_or(0)
    };
    let mut stats = libcgroups::stats::Stats::default();
    let cpu = keyed("cpu.stat");
    let get = |m: &std::collections::HashMap<String, u64>, k: &str| m.get(k).copied().unwrap_or(0);
    // cpu.stat is in microseconds; the stats are in nanoseconds.
    stats.cpu.usage.usage_total = get(&cpu, "usage_usec") * 1000;
    stats.cpu.usage.usage_user = get(&cpu, "user_usec") * 1000;
    stats.cpu.usage.usage_kernel = get(&cpu, "system_usec") * 1000;
    stats.cpu.throttling.periods = get(&cpu, "nr_periods");
    stats.cpu.throttling.throttled_periods = get(&cpu, "nr_throttled");
    stats.cpu.throttling.throttled_time = get(&cpu, "throttled_usec") * 1000;
    stats.memory.memory.usage = single("memory.current");
    stats.memory.memory.max_usage = single("memory.peak");
    stats.memory.memory.limit = single("memory.max");
    stats.memory.memswap.usage = single("memory.swap.current");
    stats.memory.memswap.limit = single("memory.swap.max");
    stats.memory.hierarchy = true;
    stats.memory.stats = keyed("memory.stat");
    stats.memory.cache = get(&stats.memory.stats, "file");
    stats.pids.current = single("pids.current");
    // runc (and libcgroups) report an unlimited pids.max as 0.
    stats.pids.limit = match single("pids.max") {
        u64::MAX => 0,
        n => n,
    };
    Some(stats)
}

/// How many times the OOM killer acted in the cgroup (v1 memory.oom_control
/// `oom_kill`, v2 memory.events `oom_kill`), if the kernel says.
pub fn oom_kills(path: &Path) -> Option<u64> {
    let rel = path.strip_prefix("/").unwrap_or(path);
    let root = Path::new(CGROUP_ROOT);
    let files = [
        root.join("memory").join(rel).join("memory.oom_control"),
        root.join(rel).join("memory.events"),
    ];
    files.iter().find_map(|f| {
        let text = std::fs::read_to_string(f).ok()?;
        text.lines()
            .find_map(|l| l.strip_prefix("oom_kill "))
            .and_then(|v| v.trim().parse().ok())
    })
}

/// Kills what is left in the cgroup and removes it. Gone already is fine.
pub fn remove(path: &Path, id: &str) -> Result<()> {
    if let Some(hierarchies) = v1_hierarchies()? {
        return v1_hot_path::remove(&hierarchies, path);
    }
    // A scope of the systemd driver: stop the unit (systemd kills what is
    // left and forgets it), then make sure the cgroup is gone.
    if let Some(unit_path) =
        systemd_unit_of(path).filter(|_| Path::new("/run/systemd/system").is_dir())
    {
        if let Ok(mgr) = systemd_manager(&unit_path, id) {
            mgr.remove()
                .map_err(|e| anyhow!("--systemd-cgroup: stop scope {unit_path}: {e}"))?;
        }
        return v1_hot_path::remove_tree(
            &Path::new(CGROUP_ROOT).join(path.strip_prefix("/").unwrap_or(path)),
        );
    }
    manager(path, id)?
        .remove()
        .map_err(|e| anyhow!("remove cgroup {}: {e}", path.display()))
        .context("delete")
}

/// Host pids in the container's cgroup.
pub fn pids(path: &Path, id: &str) -> Result<Vec<i32>> {
    let mgr = manager(path, id)?;
    let pids = mgr
        .get_all_pids()
        .map_err(|e| anyhow!("list processes of cgroup {}: {e}", path.display()))?;
    Ok(pids.into_iter().map(|p| p.as_raw()).collect())
}

/// Is the container's cgroup frozen? Reads one file, so `state` stays cheap.
pub fn is_frozen(path: &Path) -> bool {
    let rel = path.strip_prefix("/").unwrap_or(path);
    let v1 = Path::new(CGROUP_ROOT)
        .join("freezer")
        .join(rel)
        .join("freezer.state");
    if let Ok(s) = std::fs::read_to_string(v1) {
        return s.trim() == "FROZEN";
    }
    let v2 = Path::new(CGROUP_ROOT).join(rel).join("cgroup.freeze");
    std::fs::read_to_string(v2)
        .map(|s| s.trim() == "1")
        .unwrap_or(false)
}

/// Thaws a frozen cgroup (after a forced delete of a paused container, so the
/// SIGKILL can be acted on).
pub fn thaw(path: &Path, id: &str) {
    if let Ok(mgr) = manager(path, id) {
        let _ = mgr.freeze(libcgroups::common::FreezerState::Thawed);
    }
}

/// Moving a process between cgroups takes the kernel's global
/// cgroup_threadgroup_rwsem for writing, and the first writer after a quiet
/// spell waits for an RCU grace period (5-10 ms on this project's machine;
/// the moves right after it take 0.1 ms). That wait would sit on the hot path
/// of every create. So `create` starts a throwaway child at once that moves
/// itself into the cgroup it is already in: it pays the grace period while
/// create parses the config and clones the init, and the init's own moves
/// come in the fast window after it. Best effort: any failure only loses
/// the head start.
pub struct AttachWarmup {
    child: Option<Pid>,
}

impl AttachWarmup {
    pub fn start() -> AttachWarmup {
        let Some(procs) = own_cgroup_procs_file() else {
            return AttachWarmup { child: None };
        };
        // SAFETY: berth is single-threaded here; the child only makes raw
        // syscalls on data prepared before the fork, then _exits.
        match unsafe { libc::fork() } {
            0 => unsafe {
                let fd = libc::open(procs.as_ptr(), libc::O_WRONLY | libc::O_CLOEXEC);
                if fd >= 0 {
                    libc::write(fd, b"0".as_ptr().cast(), 1);
                }
                libc::_exit(0)
            },
            pid if pid > 0 => AttachWarmup {
                child: Some(Pid::from_raw(pid)),
            },
            _ => AttachWarmup { child: None },
        }
    }

    /// Reaps the child (it is done by the time the init is in its cgroup).
    pub fn finish(mut self) {
        self.reap();
    }

    fn reap(&mut self) {
        if let Some(pid) = self.child.take() {
            let _ = nix::sys::wait::waitpid(pid, None);
        }
    }
}

impl Drop for AttachWarmup {
    fn drop(&mut self) {
        self.reap();
    }
}

/// cgroup.procs of berth's own cgroup in one hierarchy: the unified one if
/// there is one, else the first v1 hierarchy.
fn own_cgroup_procs_file() -> Option<std::ffi::CString> {
    let text = crate::procfs::read_to_string("/proc/self/cgroup").ok()?;
    let mut v1 = None;
    for line in text.lines() {
        let mut parts = line.splitn(3, ':');
        let (hid, ctrls, path) = (parts.next()?, parts.next()?, parts.next()?);
        let rel = path.trim_start_matches('/');
        if hid == "0" && ctrls.is_empty() {
            let base = match layout() {
                Layout::PureV2 => PathBuf::from(CGROUP_ROOT),
                Layout::V1 { hybrid_unified } => hybrid_unified.clone()?,
            };
            return std::ffi::CString::new(
                base.join(rel)
                    .join("cgroup.procs")
                    .into_os_string()
                    .into_encoded_bytes(),
            )
            .ok();
        }
        if v1.is_none() && !ctrls.is_empty() && !ctrls.starts_with("name=") {
            let first = ctrls.split(',').next()?;
            v1 = Some(
                Path::new(CGROUP_ROOT)
                    .join(first)
                    .join(rel)
                    .join("cgroup.procs"),
            );
        }
    }
    std::ffi::CString::new(v1?.into_os_string().into_encoded_bytes()).ok()
}

/// The directory whose freezer CRIU uses to stop the container's tasks
/// (`criu dump --freeze-cgroup`): the v1 freezer hierarchy's, else the
/// unified one's.
pub fn freezer_dir(path: &Path) -> PathBuf {
    let rel = path.strip_prefix("/").unwrap_or(path);
    let v1 = Path::new(CGROUP_ROOT).join("freezer").join(rel);
    if v1.join("freezer.state").exists() {
        return v1;
    }
    Path::new(CGROUP_ROOT).join(rel)
}

/// Is /sys/fs/cgroup the unified hierarchy (no v1 controllers)?
pub fn is_pure_v2() -> bool {
    matches!(layout(), Layout::PureV2)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn systemd_paths() {
        assert_eq!(
            systemd_fs_path("system.slice:berth:abc"),
            Path::new("/system.slice/berth-abc.scope")
        );
        assert_eq!(
            systemd_fs_path("a-b.slice:p:n"),
            Path::new("/a.slice/a-b.slice/p-n.scope")
        );
        assert_eq!(
            systemd_unit_of(Path::new("/system.slice/berth-a-b.scope")).as_deref(),
            Some("system.slice:berth:a-b")
        );
        assert_eq!(systemd_unit_of(Path::new("/abc")), None);
    }

    #[test]
    fn device_rules_are_written_as_libcgroups_writes_them() {
        let strings: Vec<String> = default_rules().iter().map(|r| r.to_string()).collect();
        assert_eq!(strings[0], "c 1:3 rwm");
        assert_eq!(strings[6], "c *:* m");
        assert_eq!(strings[9], "c 136:* rwm");
    }
}
