//! Control groups (config-linux.md "Control groups", "Cgroup Ownership"):
//! the container's cgroup is where `cgroupsPath` says, holds the limits of
//! `linux.resources`, and is gone after delete. Written for any layout: the
//! file for a controller is found through /proc/PID/cgroup and the host's
//! cgroup mounts, so the same tests run on this hybrid host and on pure v2.

use std::fs;
use std::path::{Path, PathBuf};

use serde_json::json;

use crate::harness::*;

mod devices;
mod fields;
mod systemd;

/// The host directory of `pid`'s cgroup that holds `controller`'s files
/// (a v1 hierarchy with that controller, else the unified hierarchy).
pub(crate) fn controller_dir(pid: i32, controller: &str) -> PathBuf {
    let mounts = cgroup_mounts();
    let cgroups = proc_cgroups(pid);
    for (hid, ctrls, path) in &cgroups {
        if hid != "0" && ctrls.iter().any(|c| c == controller) {
            let (point, _, _) = mounts
                .iter()
                .find(|(_, t, c)| t == "cgroup" && c.iter().any(|x| x == controller))
                .unwrap_or_else(|| panic!("no v1 mount for {controller}"));
            return point.join(path.trim_start_matches('/'));
        }
    }
    let (_, _, path) = cgroups
        .iter()
        .find(|(hid, _, _)| hid == "0")
        .unwrap_or_else(|| panic!("{pid} is in no {controller} hierarchy: {cgroups:?}"));
    let (point, _, _) = mounts
        .iter()
        .find(|(_, t, _)| t == "cgroup2")
        .expect("a cgroup2 mount");
    let dir = point.join(path.trim_start_matches('/'));
    let enabled = fs::read_to_string(dir.join("cgroup.controllers")).unwrap_or_default();
    assert!(
        enabled.split_whitespace().any(|c| c == controller),
        "{controller} is neither a v1 hierarchy nor enabled in {} ({enabled:?})",
        dir.display()
    );
    dir
}

/// The file holding a limit, by the layout of the hierarchy the dir is in.
pub(crate) fn limit_file(dir: &Path, v1: &str, v2: &str) -> PathBuf {
    if dir.join(v1).exists() {
        dir.join(v1)
    } else {
        dir.join(v2)
    }
}

pub(crate) fn read_trimmed(path: &Path) -> String {
    fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
        .trim()
        .to_string()
}

/// Create and start a long-running container of `b`; returns (id, pid).
pub(crate) fn start_sleeper(fx: &Fixture, b: &mut Bundle, what: &str) -> (String, i32) {
    b.set_args(&["sleep", "1000"]);
    let id = fx.id(what);
    fx.create(b, &id, &[]).ok();
    fx.start(&id).ok();
    let pid = fx.pid(&id);
    (id, pid)
}

pub(crate) fn kill_and_delete(fx: &Fixture, id: &str) {
    fx.kill(id, "KILL").ok();
    fx.wait_status(id, "stopped");
    fx.delete(id).ok();
}

// The brief's acceptance: `run` with a 10 MiB memory limit puts the container
// in a cgroup with that limit (config-linux.md "Memory" `limit`), and the
// cgroup is gone after delete.
#[test]
fn memory_limit_of_10_mib() {
    let fx = Fixture::new();
    let mut b = fx.bundle();
    b.linux()["resources"]["memory"] = json!({"limit": 10 * 1024 * 1024});
    b.set_args(&["sleep", "1000"]);
    let id = fx.id("mem");
    b.save();
    fx.rt(&["run", "--detach", "--bundle", b.dir.to_str().unwrap(), &id])
        .run()
        .ok();
    let pid = fx.pid(&id);
    let dir = controller_dir(pid, "memory");
    assert!(
        dir.to_string_lossy().contains(&id),
        "cgroup {} not named after the container",
        dir.display()
    );
    let limit = limit_file(&dir, "memory.limit_in_bytes", "memory.max");
    assert_eq!(read_trimmed(&limit), "10485760", "{}", limit.display());
    let procs = read_trimmed(&dir.join("cgroup.procs"));
    assert!(
        procs.lines().any(|p| p == pid.to_string()),
        "{pid} not in {}: {procs}",
        dir.display()
    );
    kill_and_delete(&fx, &id);
    assert!(!dir.exists(), "cgroup {} left after delete", dir.display());
    fx.assert_no_residue();
}

// config-linux.md "Memory" `limit` enforced, not just written: a process that
// allocates past it is OOM-killed (runtime.md: exit by signal, 128+9).
#[test]
fn memory_limit_is_enforced() {
    if fs::read_to_string("/proc/swaps")
        .unwrap_or_default()
        .lines()
        .count()
        > 1
    {
        eprintln!("SKIP memory_limit_is_enforced: the host has swap, so the limit may swap instead of OOM");
        return;
    }
    let fx = Fixture::new();
    let mut b = fx.bundle();
    b.linux()["resources"]["memory"] = json!({"limit": 10 * 1024 * 1024});
    // The shell keeps the whole 50 MB substitution in memory.
    b.set_sh("x=$(head -c 50000000 /dev/zero | tr '\\0' a); echo survived ${#x}");
    let id = fx.id("oom");
    let out = fx.run(&b, &id, &[]);
    assert!(
        !out.stdout.contains("survived") || out.code() != Some(0),
        "{}",
        out.describe()
    );
    assert_ne!(out.code(), Some(0), "{}", out.describe());
    fx.assert_no_residue();
}

// config-linux.md "PIDs" `limit`.
#[test]
fn pids_limit() {
    let fx = Fixture::new();
    let mut b = fx.bundle();
    b.linux()["resources"]["pids"] = json!({"limit": 17});
    let (id, pid) = start_sleeper(&fx, &mut b, "pids");
    let dir = controller_dir(pid, "pids");
    assert_eq!(read_trimmed(&dir.join("pids.max")), "17");
    kill_and_delete(&fx, &id);
    assert!(!dir.exists(), "cgroup {} left after delete", dir.display());
    fx.assert_no_residue();
}

// config-linux.md "Cgroups Path": an absolute cgroupsPath is relative to the
// cgroup mount point(s); every hierarchy the container joins uses it.
#[test]
fn cgroups_path_is_where_the_container_is() {
    let fx = Fixture::new();
    let mut b = fx.bundle();
    let id_for_path = fx.id("cgpath");
    let parent = format!("/{id_for_path}-parent");
    let wanted = format!("{parent}/{id_for_path}");
    b.linux()["cgroupsPath"] = json!(wanted);
    b.set_args(&["sleep", "1000"]);
    fx.create(&b, &id_for_path, &[]).ok();
    let pid = fx.pid(&id_for_path);
    let cgroups = proc_cgroups(pid);
    for (hid, ctrls, path) in &cgroups {
        // name=systemd is systemd's own hierarchy, which runtimes leave alone on v1.
        if ctrls.iter().any(|c| c == "name=systemd") || ctrls.iter().any(|c| c.starts_with("name="))
        {
            continue;
        }
        assert_eq!(path, &wanted, "hierarchy {hid} {ctrls:?}: {cgroups:?}");
    }
    let dirs = cgroup_dirs_of(pid);
    fx.delete(&id_for_path).ok();
    for d in &dirs {
        assert!(!d.exists(), "cgroup {} left after delete", d.display());
    }
    // The parent was made for the container; removing it is the test's job
    // (runc leaves parents too: another container may share them).
    for (point, _, _) in cgroup_mounts() {
        let _ = fs::remove_dir(point.join(parent.trim_start_matches('/')));
    }
    fx.assert_no_residue();
}

// Without cgroupsPath the runtime picks a cgroup of its own for the
// container (runc: /<id>), which is removed on delete.
#[test]
fn default_cgroup_is_per_container() {
    let fx = Fixture::new();
    let mut b = fx.bundle();
    b.linux().as_object_mut().unwrap().remove("cgroupsPath");
    let (id, pid) = start_sleeper(&fx, &mut b, "cgdefault");
    let cgroups = proc_cgroups(pid);
    let mine: Vec<_> = cgroups
        .iter()
        .filter(|(_, _, path)| path.contains(&id))
        .collect();
    assert!(!mine.is_empty(), "no cgroup named after {id}: {cgroups:?}");
    let dirs = cgroup_dirs_of(pid);
    kill_and_delete(&fx, &id);
    for d in dirs.iter().filter(|d| d.to_string_lossy().contains(&id)) {
        assert!(!d.exists(), "cgroup {} left after delete", d.display());
    }
    fx.assert_no_residue();
}

// config-linux.md "Namespaces" cgroup: inside a new cgroup namespace the
// container's own cgroup is the root of every hierarchy.
#[test]
fn cgroup_namespace_roots_the_container() {
    let fx = Fixture::new();
    let mut b = fx.bundle();
    b.set_namespace("cgroup", None);
    let out = fx.run_sh(&mut b, "cat /proc/self/cgroup");
    for line in out.lines() {
        let path = line.splitn(3, ':').nth(2).unwrap_or("");
        if line.contains("name=systemd") {
            continue;
        }
        assert_eq!(path, "/", "{line} in\n{out}");
    }
}

// A hostile cgroupsPath must not reach outside the cgroup mounts.
#[test]
fn cgroups_path_with_dotdot_is_refused() {
    berth_only!("runc 1.1.5 cleans the path lexically and accepts it");
    let fx = Fixture::new();
    let mut b = fx.bundle();
    b.linux()["cgroupsPath"] = json!("/../../../tmp/evil");
    let id = fx.id("cgdotdot");
    fx.create(&b, &id, &[]).fails_with(&["cgroupsPath"]);
    fx.assert_no_residue();
}

// Deleting a running container with --force removes its cgroup too.
#[test]
fn delete_force_removes_the_cgroup() {
    let fx = Fixture::new();
    let mut b = fx.bundle();
    let (id, pid) = start_sleeper(&fx, &mut b, "cgforce");
    fx.note_pid(pid);
    let dirs: Vec<PathBuf> = cgroup_dirs_of(pid)
        .into_iter()
        .filter(|d| d.to_string_lossy().contains(&id))
        .collect();
    assert!(!dirs.is_empty());
    fx.rt(&["delete", "--force", &id]).run().ok();
    for d in &dirs {
        assert!(
            !d.exists(),
            "cgroup {} left after delete --force",
            d.display()
        );
    }
    fx.assert_no_residue();
}

// config-linux.md "Device allowlist": with runc's default rules (deny all,
// then the defaults), a device node the allowlist doesn't name can't be
// opened even by root, while an allowed one can.
#[test]
fn device_allowlist_denies_unlisted_devices() {
    let fx = Fixture::new();
    let mut b = fx.bundle();
    b.linux()["devices"] = json!([
        {"path": "/dev/spec-zero", "type": "c", "major": 1, "minor": 5, "fileMode": 438},
        {"path": "/dev/spec-mem", "type": "c", "major": 1, "minor": 1, "fileMode": 384}
    ]);
    let out = fx.run_sh(
        &mut b,
        "head -c 3 /dev/spec-zero | wc -c; head -c 1 /dev/spec-mem 2>&1 >/dev/null | grep -o 'Operation not permitted'",
    );
    assert_eq!(out, "3\nOperation not permitted\n");
}

// config-linux.md "Control groups": cgroupsPath names the container's cgroup.
// On cgroup v2 a cgroup with controllers enabled for its children cannot
// hold processes (the "no internal processes" rule), so a container can't
// go there: create fails naming its cgroup, and leaves nothing behind, not
// even a change to the cgroups it did not make.
#[test]
fn cgroup_v2_with_controllers_for_children_is_refused_cleanly() {
    if !Path::new("/sys/fs/cgroup/cgroup.controllers").exists() {
        return; // pure cgroup v2 only (v1 hierarchies have no such rule)
    }
    struct RemoveDirs(Vec<PathBuf>);
    impl Drop for RemoveDirs {
        fn drop(&mut self) {
            for d in self.0.iter().rev() {
                let _ = fs::remove_dir(d);
            }
        }
    }
    let fx = Fixture::new();
    let id = fx.id("cgbusy");
    let busy = PathBuf::from(format!("/sys/fs/cgroup/{id}-busy"));
    let child = busy.join("child");
    let _cleanup = RemoveDirs(vec![busy.clone(), child.clone()]);
    fs::create_dir(&busy).unwrap();
    fs::create_dir(&child).unwrap();
    // memory is a domain controller: pids or cpuset (threaded ones) would
    // not keep processes out.
    let _ = fs::write("/sys/fs/cgroup/cgroup.subtree_control", "+memory");
    fs::write(busy.join("cgroup.subtree_control"), "+memory").unwrap();

    let mut b = fx.bundle();
    b.linux()["cgroupsPath"] = json!(format!("/{id}-busy"));
    b.set_args(&["true"]);
    fx.create(&b, &id, &[]).fails_with(&["cgroup"]);
    assert!(
        busy.exists() && child.exists(),
        "create removed cgroups it did not make"
    );
    assert_eq!(
        fs::read_to_string(busy.join("cgroup.procs")).unwrap(),
        "",
        "a process was left in {}",
        busy.display()
    );
    drop(_cleanup);
    fx.assert_no_residue();
}
