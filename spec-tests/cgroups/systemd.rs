//! The systemd cgroup driver (`--systemd-cgroup`, runc's flag): cgroupsPath
//! is `slice:prefix:name`, systemd makes a transient scope holding the init
//! (over D-Bus), the resources are applied, and delete stops the scope.
//! berth drives systemd on pure cgroup v2 hosts with systemd as init (the
//! `v2vm --systemd` guest of spec-tests/run); elsewhere the flag is refused
//! with the reason, which is what these tests check there.

use std::fs;
use std::path::Path;
use std::process::Command;

use serde_json::json;

use super::{controller_dir, read_trimmed};
use crate::harness::*;

/// Can this host run the systemd driver? None if so, else why not.
pub(super) fn why_no_systemd() -> Option<&'static str> {
    if !is_cgroup2_only() {
        return Some("the host is not pure cgroup v2");
    }
    if !Path::new("/run/systemd/system").is_dir() {
        return Some("systemd is not running as init");
    }
    None
}

fn systemctl_show(unit: &str, prop: &str) -> String {
    let out = Command::new("systemctl")
        .args(["show", "-p", prop, "--value", unit])
        .output()
        .expect("systemctl");
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

fn create_systemd(fx: &Fixture, b: &Bundle, id: &str) -> Output {
    b.save();
    let out = fx
        .rt(&[
            "--systemd-cgroup",
            "create",
            "--bundle",
            b.dir.to_str().unwrap(),
            id,
        ])
        .run();
    if out.status.success() {
        fx.note_container(id);
    }
    out
}

// runc's contract: `--systemd-cgroup` with cgroupsPath "slice:prefix:name"
// puts the container in the scope prefix-name.scope under the slice, which
// systemd reports active and which holds the init; linux.resources are
// applied (memory.max); exec, pause/resume, update, events, ps work; delete
// stops the scope and its cgroup is gone.
#[test]
fn systemd_scope_holds_the_container() {
    if let Some(why) = why_no_systemd() {
        eprintln!("SKIP systemd_scope_holds_the_container: {why}");
        return;
    }
    let fx = Fixture::new();
    let mut b = fx.bundle();
    let id = fx.id("sdscope");
    b.linux()["cgroupsPath"] = json!(format!("system.slice:spec:{id}"));
    b.linux()["resources"] = json!({"memory": {"limit": 33554432}, "pids": {"limit": 30}});
    b.set_args(&["sleep", "1000"]);
    create_systemd(&fx, &b, &id).ok();
    fx.start(&id).ok();
    let pid = fx.pid(&id);
    let unit = format!("spec-{id}.scope");
    let want = format!("/system.slice/{unit}");
    let cg = fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap();
    assert_eq!(cg.trim(), format!("0::{want}"));
    assert_eq!(systemctl_show(&unit, "ActiveState"), "active");
    assert_eq!(systemctl_show(&unit, "Delegate"), "yes");
    let dir = controller_dir(pid, "memory");
    assert_eq!(read_trimmed(&dir.join("memory.max")), "33554432");
    assert_eq!(read_trimmed(&dir.join("pids.max")), "30");
    assert!(read_trimmed(&dir.join("cgroup.procs"))
        .lines()
        .any(|p| p == pid.to_string()));

    // exec joins the scope's cgroup.
    let out = fx.rt(&["exec", &id, "cat", "/proc/self/cgroup"]).run().ok();
    assert!(
        out.stdout.contains(&unit) || out.stdout.trim() == "0::/",
        "{}",
        out.stdout
    );
    // pause / resume.
    fx.rt(&["pause", &id]).run().ok();
    assert_eq!(fx.status(&id), "paused");
    fx.rt(&["resume", &id]).run().ok();
    assert_eq!(fx.status(&id), "running");
    // update.
    fx.rt(&["update", "--pids-limit", "44", &id]).run().ok();
    assert_eq!(read_trimmed(&dir.join("pids.max")), "44");
    // events --stats and ps.
    let ev = fx.rt(&["events", "--stats", &id]).run().ok();
    assert!(ev.stdout.contains("\"type\":\"stats\""), "{}", ev.stdout);
    let ps = fx.rt(&["ps", "--format", "json", &id]).run().ok();
    assert!(ps.stdout.contains(&pid.to_string()), "{}", ps.stdout);

    fx.kill(&id, "KILL").ok();
    fx.wait_status(&id, "stopped");
    fx.delete(&id).ok();
    assert!(!dir.exists(), "{} left after delete", dir.display());
    assert!(
        wait_until(std::time::Duration::from_secs(5), || {
            systemctl_show(&unit, "ActiveState") != "active"
        }),
        "{unit} still active after delete"
    );
    fx.assert_no_residue();
}

// Without a cgroupsPath the systemd driver picks system.slice:berth:<id>
// (runc: system.slice:runc:<id>), and delete --force removes the scope.
#[test]
fn systemd_default_scope() {
    berth_only!("the prefix is the runtime's name");
    if let Some(why) = why_no_systemd() {
        eprintln!("SKIP systemd_default_scope: {why}");
        return;
    }
    let fx = Fixture::new();
    let mut b = fx.bundle();
    b.linux().as_object_mut().unwrap().remove("cgroupsPath");
    b.set_args(&["sleep", "1000"]);
    let id = fx.id("sddefault");
    create_systemd(&fx, &b, &id).ok();
    let pid = fx.pid(&id);
    let unit = format!("berth-{id}.scope");
    let cg = fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap();
    assert_eq!(cg.trim(), format!("0::/system.slice/{unit}"));
    fx.rt(&["delete", "--force", &id]).run().ok();
    assert!(!Path::new("/sys/fs/cgroup/system.slice")
        .join(&unit)
        .exists());
    fx.assert_no_residue();
}

// A cgroupsPath that isn't slice:prefix:name is refused with the format.
#[test]
fn systemd_cgroups_path_format() {
    if let Some(why) = why_no_systemd() {
        eprintln!("SKIP systemd_cgroups_path_format: {why}");
        return;
    }
    let fx = Fixture::new();
    let mut b = fx.bundle();
    b.linux()["cgroupsPath"] = json!("/not/a/unit");
    let id = fx.id("sdbadpath");
    create_systemd(&fx, &b, &id).fails_with(berth_words(&["cgroupsPath", "slice:prefix:name"]));
    fx.assert_no_residue();
}

// Where berth can't drive systemd (this hybrid host: cgroup v1 controllers,
// no systemd as init) the flag is a clear error naming the reason, and
// nothing is left behind.
#[test]
fn systemd_driver_refused_where_unavailable() {
    berth_only!("runc has its own conditions for the systemd driver");
    let Some(why) = why_no_systemd() else {
        eprintln!("SKIP systemd_driver_refused_where_unavailable: this host runs the driver");
        return;
    };
    let fx = Fixture::new();
    let b = fx.bundle();
    let id = fx.id("sdrefused");
    let needle = if why.contains("cgroup v2") {
        "cgroup v2"
    } else {
        "systemd is not running"
    };
    create_systemd(&fx, &b, &id).fails_with(&["--systemd-cgroup", needle]);
    fx.assert_no_residue();
}
