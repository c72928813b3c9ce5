//! Rootless mode: berth run by a user without privileges on the host.
//!
//! runc's contract (`runc --help`: "--rootless ... ignore cgroup permission
//! errors ('true', 'false', or 'auto')"): `auto` means rootless when the
//! effective uid isn't 0, or when berth is root of a user namespace that
//! isn't the host's. As in runc, that flag decides how cgroups are handled;
//! the rest follows from the effective uid. All decided here, so the root
//! path stays as it was:
//!
//! - the default `--root` of a non-root user is `$XDG_RUNTIME_DIR/berth`
//!   (runc: `.../runc`);
//! - a non-root user's config must create or join a user namespace; the parent writes
//!   the id maps the way the kernel lets an unprivileged user: its own uid
//!   and gid, one id each, straight into uid_map/gid_map (after `setgroups`
//!   deny), or anything else through the setuid newuidmap/newgidmap helpers
//!   (which check /etc/subuid and /etc/subgid);
//! - limits the user can't raise (rlimits above berth's hard limit, an
//!   oomScoreAdj below berth's own) are refused before anything exists;
//! - without a writable (delegated) cgroup, a container that asks for no
//!   resources runs without a cgroup of its own (runc's "ignore cgroup
//!   permission errors"); one that asks for some fails, naming the field.

use anyhow::{anyhow, bail, Context, Result};
use oci_spec::runtime::{LinuxIdMapping, LinuxResources, Spec};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// root's default `--root`.
const ROOT_DEFAULT: &str = "/run/berth";

/// `--rootless true|false|auto` (absent = auto).
pub fn enabled(flag: Option<&str>) -> Result<bool> {
    match flag.unwrap_or("auto") {
        "true" => Ok(true),
        "false" => Ok(false),
        "auto" => Ok(!nix::unistd::geteuid().is_root() || !in_initial_userns()),
        other => bail!("invalid --rootless value {other:?}: want true, false or auto"),
    }
}

/// The host's user namespace maps every id to itself: "0 0 4294967295".
fn in_initial_userns() -> bool {
    match std::fs::read_to_string("/proc/self/uid_map") {
        Ok(map) => {
            let fields: Vec<&str> = map.split_whitespace().collect();
            fields == ["0", "0", "4294967295"]
        }
        // No /proc: nothing to tell, assume the ordinary case.
        Err(_) => true,
    }
}

/// The default `--root`: `/run/berth` for root on the host. For anyone else,
/// `$XDG_RUNTIME_DIR/berth` as runc does; when that is unset (a `su`
/// session), `/run/user/<uid>/berth` if the login manager made that directory
/// for the user, else `/tmp/berth-<uid>` (runc would try /run/runc and fail).
pub fn default_root() -> PathBuf {
    let euid = nix::unistd::geteuid();
    let xdg = std::env::var_os("XDG_RUNTIME_DIR").filter(|v| !v.is_empty());
    if let Some(dir) = xdg {
        // runc honours XDG_RUNTIME_DIR as root too, but only inside a user
        // namespace: on the host it belongs to whoever logged in, not root.
        if !euid.is_root() || !in_initial_userns() {
            return Path::new(&dir).join("berth");
        }
    }
    if euid.is_root() {
        return PathBuf::from(ROOT_DEFAULT);
    }
    let run_user = PathBuf::from(format!("/run/user/{euid}"));
    if std::fs::metadata(&run_user).is_ok_and(|m| m.is_dir() && m.uid() == euid.as_raw()) {
        return run_user.join("berth");
    }
    PathBuf::from(format!("/tmp/berth-{euid}"))
}

/// Makes the default root of a user: mode 0700, owned by them. In a shared
/// directory like /tmp someone else may have made it first: refuse anything
/// that isn't a directory of ours (a symlink is not followed).
pub fn prepare_default_root(root: &Path) -> Result<()> {
    if root == Path::new(ROOT_DEFAULT) {
        return Ok(());
    }
    match std::fs::DirBuilder::new().mode(0o700).create(root) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
        Err(e) => return Err(e).with_context(|| format!("create state root {}", root.display())),
    }
    let meta = std::fs::symlink_metadata(root)
        .with_context(|| format!("state root {}", root.display()))?;
    let euid = nix::unistd::geteuid().as_raw();
    if !meta.is_dir() || meta.uid() != euid {
        bail!(
            "state root {} is not a directory owned by uid {euid}: pass --root",
            root.display()
        );
    }
    if meta.permissions().mode() & 0o077 != 0 {
        std::fs::set_permissions(root, std::fs::Permissions::from_mode(0o700))
            .with_context(|| format!("chmod 0700 {}", root.display()))?;
    }
    Ok(())
}

/// Checks made before anything exists, so a refused config leaves nothing.
/// They depend on the effective uid, not on `--rootless` (which, as in runc,
/// only decides how cgroup permission errors are handled): root, even with
/// `--rootless true`, may create namespaces and raise limits.
pub fn check_config(spec: &Spec, plan: &crate::namespaces::Plan) -> Result<()> {
    if nix::unistd::geteuid().is_root() {
        return Ok(());
    }
    let joins_userns = plan
        .join_of(oci_spec::runtime::LinuxNamespaceType::User)
        .is_some();
    if !plan.new_user && !joins_userns {
        bail!(
            "rootless container requires a user namespace: add {{\"type\": \"user\"}} to \
             linux.namespaces with linux.uidMappings and linux.gidMappings (berth spec --rootless)"
        );
    }
    let Some(process) = spec.process().as_ref() else {
        return Ok(());
    };
    for rl in process.rlimits().iter().flatten() {
        let (_, hard) = nix::sys::resource::getrlimit(rlimit_of(rl.typ()))
            .map_err(|e| anyhow!("getrlimit {}: {e}", rl.typ()))?;
        if rl.hard() > hard {
            bail!(
                "process.rlimits: {} hard limit {} is above berth's own hard limit {hard}, \
                 which a rootless container cannot raise",
                rl.typ(),
                rl.hard()
            );
        }
    }
    if let Some(adj) = process.oom_score_adj() {
        let current: i32 = std::fs::read_to_string("/proc/self/oom_score_adj")
            .ok()
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or(0);
        if adj < current {
            bail!(
                "process.oomScoreAdj {adj} is below berth's own {current}: a rootless \
                 container can only raise it"
            );
        }
    }
    Ok(())
}

fn rlimit_of(t: oci_spec::runtime::PosixRlimitType) -> nix::sys::resource::Resource {
    use nix::sys::resource::Resource;
    use oci_spec::runtime::PosixRlimitType::*;
    match t {
        RlimitCpu => Resource::RLIMIT_CPU,
        RlimitFsize => Resource::RLIMIT_FSIZE,
        RlimitData => Resource::RLIMIT_DATA,
        RlimitStack => Resource::RLIMIT_STACK,
        RlimitCore => Resource::RLIMIT_CORE,
        RlimitRss => Resource::RLIMIT_RSS,
        RlimitNproc => Resource::RLIMIT_NPROC,
        RlimitNofile => Resource::RLIMIT_NOFILE,
        RlimitMemlock => Resource::RLIMIT_MEMLOCK,
        RlimitAs => Resource::RLIMIT_AS,
        RlimitLocks => Resource::RLIMIT_LOCKS,
        RlimitSigpending => Resource::RLIMIT_SIGPENDING,
        RlimitMsgqueue => Resource::RLIMIT_MSGQUEUE,
        RlimitNice => Resource::RLIMIT_NICE,
        RlimitRtprio => Resource::RLIMIT_RTPRIO,
        RlimitRttime => Resource::RLIMIT_RTTIME,
    }
}

/// Whether the parent writes the init's id maps without privileges: the
/// kernel then wants the init dumpable (its /proc files owned by the user,
/// not by root) until the maps are written; the init turns it off itself.
pub fn unprivileged_maps(plan: &crate::namespaces::Plan) -> bool {
    plan.new_user && !nix::unistd::geteuid().is_root()
}

/// Writes linux.gidMappings then linux.uidMappings of the init `pid` as an
/// unprivileged user (config-linux.md "User namespace mappings").
pub fn write_id_maps(spec: &Spec, pid: i32) -> Result<()> {
    let linux = spec.linux().as_ref().expect("maps need linux");
    let none = Vec::new();
    let gids = linux.gid_mappings().as_ref().unwrap_or(&none);
    let uids = linux.uid_mappings().as_ref().unwrap_or(&none);
    let egid = nix::unistd::getegid().as_raw();
    let euid = nix::unistd::geteuid().as_raw();
    if is_own_id(gids, egid) {
        // The kernel lets an unprivileged user map its own gid only once
        // setgroups is denied (else it could drop a group that denies it
        // access, user_namespaces(7)).
        std::fs::write(format!("/proc/{pid}/setgroups"), "deny")
            .map_err(|e| anyhow!("write setgroups deny for linux.gidMappings: {e}"))?;
        write_map(pid, "gid_map", gids, "linux.gidMappings")?;
    } else {
        helper_map("newgidmap", pid, gids, "linux.gidMappings", egid, "subgid")?;
    }
    if is_own_id(uids, euid) {
        write_map(pid, "uid_map", uids, "linux.uidMappings")?;
    } else {
        helper_map("newuidmap", pid, uids, "linux.uidMappings", euid, "subuid")?;
    }
    Ok(())
}

/// One mapping of exactly one id, the caller's own: what an unprivileged
/// process may write itself.
fn is_own_id(maps: &[LinuxIdMapping], id: u32) -> bool {
    matches!(maps, [m] if m.host_id() == id && m.size() == 1)
}

fn write_map(pid: i32, file: &str, maps: &[LinuxIdMapping], what: &str) -> Result<()> {
    let text: String = maps
        .iter()
        .map(|m| format!("{} {} {}\n", m.container_id(), m.host_id(), m.size()))
        .collect();
    std::fs::write(format!("/proc/{pid}/{file}"), text).map_err(|e| anyhow!("write {what}: {e}"))
}

/// newuidmap/newgidmap PID ID HOSTID COUNT...: setuid helpers (package
/// uidmap) that allow the ranges /etc/subuid or /etc/subgid grant the user.
fn helper_map(
    helper: &str,
    pid: i32,
    maps: &[LinuxIdMapping],
    what: &str,
    own: u32,
    file: &str,
) -> Result<()> {
    let Some(bin) = find_helper(helper) else {
        bail!(
            "{what}: a rootless container may map only its own id ({own}, one id) unless \
             {helper} (package uidmap) is installed"
        );
    };
    let mut cmd = std::process::Command::new(&bin);
    cmd.arg(pid.to_string());
    for m in maps {
        cmd.arg(m.container_id().to_string())
            .arg(m.host_id().to_string())
            .arg(m.size().to_string());
    }
    let out = cmd
        .stdin(std::process::Stdio::null())
        .output()
        .map_err(|e| anyhow!("{what}: run {}: {e}", bin.display()))?;
    if !out.status.success() {
        let err = String::from_utf8_lossy(&out.stderr);
        let err = err.trim().replace('\n', " ");
        bail!(
            "{what}: {helper} failed ({}): {err} (are the ranges granted in /etc/{file}?)",
            out.status
        );
    }
    Ok(())
}

/// The helper from PATH, or from the directories Debian installs it in (a
/// container manager may run berth with a minimal PATH).
fn find_helper(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/bin".into(), "/bin".into()])
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}

/// Whether the rootless container gets a cgroup: yes when the user may
/// write where it goes (a delegated subtree); otherwise no, unless it asks
/// for resources, which then can't be set: an error naming the first field.
/// Device rules are ignored, as runc does in rootless mode: a user namespace
/// can't create device nodes anyway, and the rootless spec has none.
pub fn use_cgroup(spec: &Spec, path: &Path) -> Result<bool> {
    let mounts = crate::rootfs::mountinfo::host_mountinfo()?;
    let dirs: Vec<PathBuf> = mounts
        .iter()
        .filter(|m| {
            m.fs_type == "cgroup2"
                // Named v1 hierarchies (name=systemd) are not the container's.
                || (m.fs_type == "cgroup" && !m.super_options.contains("name="))
        })
        .map(|m| m.mount_point.join(path.strip_prefix("/").unwrap_or(path)))
        .collect();
    if !dirs.is_empty() && dirs.iter().all(|d| writable(d)) {
        return Ok(true);
    }
    let resources = spec.linux().as_ref().and_then(|l| l.resources().as_ref());
    if let Some(field) = resources.and_then(first_resource) {
        bail!(
            "rootless container: cannot set linux.resources.{field}: cgroup {} is not \
             writable by uid {} (no delegated cgroup)",
            path.display(),
            nix::unistd::geteuid()
        );
    }
    crate::logging::debug(&format!(
        "rootless: cgroup {} is not writable, running without one",
        path.display()
    ));
    Ok(false)
}

/// The directory, or the nearest one above it that exists, is writable.
fn writable(dir: &Path) -> bool {
    let mut d = dir;
    loop {
        if d.exists() {
            return nix::unistd::access(d, nix::unistd::AccessFlags::W_OK).is_ok();
        }
        match d.parent() {
            Some(p) => d = p,
            None => return false,
        }
    }
}

/// The first field of `linux.resources` that needs a cgroup (devices aside).
fn first_resource(r: &LinuxResources) -> Option<&'static str> {
    let fields = [
        ("memory", r.memory().is_some()),
        ("cpu", r.cpu().is_some()),
        ("pids", r.pids().is_some()),
        ("blockIO", r.block_io().is_some()),
        (
            "hugepageLimits",
            r.hugepage_limits().as_ref().is_some_and(|h| !h.is_empty()),
        ),
        ("network", r.network().is_some()),
        ("rdma", r.rdma().as_ref().is_some_and(|h| !h.is_empty())),
        (
            "unified",
            r.unified().as_ref().is_some_and(|h| !h.is_empty()),
        ),
    ];
    fields.iter().find(|(_, set)| *set).map(|(name, _)| *name)
}

/// The host pids of a container without a cgroup: the init and every
/// process in its pid namespace (or, sharing the host's, its descendants).
pub fn pids_without_cgroup(init: i32, own_pid_ns: bool) -> Vec<i32> {
    let ns_of = |pid: i32| std::fs::read_link(format!("/proc/{pid}/ns/pid")).ok();
    let init_ns = if own_pid_ns { ns_of(init) } else { None };
    let mut parents: Vec<(i32, i32)> = Vec::new();
    let mut found = vec![init];
    for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Some(pid) = entry.file_name().to_str().and_then(|s| s.parse().ok()) else {
            continue;
        };
        if pid == init {
            continue;
        }
        if init_ns.is_some() && ns_of(pid) == init_ns {
            found.push(pid);
        } else if let Some(ppid) = ppid_of(pid) {
            parents.push((pid, ppid));
        }
    }
    // Descendants of what was found (the init's children, when its pid
    // namespace link couldn't be read).
    let mut i = 0;
    while i < found.len() {
        let p = found[i];
        for (pid, ppid) in &parents {
            if *ppid == p && !found.contains(pid) {
                found.push(*pid);
            }
        }
        i += 1;
    }
    found.sort_unstable();
    found
}

fn ppid_of(pid: i32) -> Option<i32> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &stat[stat.rfind(')')? + 2..];
    rest.split_ascii_whitespace().nth(1)?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(c: u32, h: u32, s: u32) -> LinuxIdMapping {
        oci_spec::runtime::LinuxIdMappingBuilder::default()
            .container_id(c)
            .host_id(h)
            .size(s)
            .build()
            .unwrap()
    }

    #[test]
    fn own_id_is_one_mapping_of_one_id() {
        assert!(is_own_id(&[map(0, 1000, 1)], 1000));
        assert!(is_own_id(&[map(5, 1000, 1)], 1000));
        assert!(!is_own_id(&[map(0, 1000, 2)], 1000));
        assert!(!is_own_id(&[map(0, 1001, 1)], 1000));
        assert!(!is_own_id(&[map(0, 1000, 1), map(1, 100000, 10)], 1000));
        assert!(!is_own_id(&[], 1000));
    }

    #[test]
    fn rootless_flag_values() {
        assert!(enabled(Some("true")).unwrap());
        assert!(!enabled(Some("false")).unwrap());
        assert!(enabled(Some("yes")).is_err());
        // auto: the unit tests run as root on the host.
        if nix::unistd::geteuid().is_root() && in_initial_userns() {
            assert!(!enabled(None).unwrap());
            assert_eq!(default_root(), PathBuf::from(ROOT_DEFAULT));
        }
    }

    #[test]
    fn first_resource_names_the_field() {
        let r: LinuxResources =
            serde_json::from_str(r#"{"devices":[{"allow":false}],"pids":{"limit":5}}"#).unwrap();
        assert_eq!(first_resource(&r), Some("pids"));
        let r: LinuxResources = serde_json::from_str(r#"{"devices":[{"allow":false}]}"#).unwrap();
        assert_eq!(first_resource(&r), None);
    }

    #[test]
    fn own_process_is_found_without_cgroup() {
        let me = std::process::id() as i32;
        let pids = pids_without_cgroup(me, false);
        assert!(pids.contains(&me));
    }
}
