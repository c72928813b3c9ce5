//! Error paths. runtime.md "Errors": generating an error MUST leave the
//! environment as if the operation were never attempted. Each test checks the
//! non-zero exit, a one-line stderr naming the problem, and no residue.
//! The matched texts are the ones clients depend on (contract "Error
//! reporting contract": containerd matches "does not exist" and "container
//! not running").

use std::fs;
use std::time::Duration;

use crate::harness::*;

// runtime.md "Create": the runtime cannot apply config.json.
#[test]
fn malformed_config_json() {
    let fx = Fixture::new();
    let b = fx.bundle();
    let id = fx.id("badjson");
    fs::write(b.config_path(), "{\"ociVersion\": \"1.0.2\", \"process\": ").unwrap();
    let b_dir = b.dir.to_str().unwrap();
    let out = fx.rt(&["create", "--bundle", b_dir, &id]).run();
    // runc only says "unexpected EOF"; berth must name the file.
    let needles: &[&str] = if is_berth() { &["config.json"] } else { &[] };
    out.fails_with(needles);
    fx.assert_no_residue();
}

// runtime.md "Create": a config that is JSON but not a valid spec.
#[test]
fn config_with_wrong_types() {
    let fx = Fixture::new();
    let mut b = fx.bundle();
    b.config["process"]["args"] = serde_json::json!("sh -c true");
    let id = fx.id("badtype");
    let out = fx.create(&b, &id, &[]);
    let needles: &[&str] = if is_berth() {
        &["config.json", "args"]
    } else {
        &[]
    };
    out.fails_with(needles);
    fx.assert_no_residue();
}

// bundle.md: `root.path` must exist.
#[test]
fn missing_rootfs() {
    let fx = Fixture::new();
    let b = fx.bundle();
    fs::remove_dir_all(b.rootfs()).unwrap();
    let id = fx.id("norootfs");
    let rootfs = b.rootfs();
    fx.create(&b, &id, &[])
        .fails_with(&[rootfs.to_str().unwrap()]);
    fx.assert_no_residue();
}

// runc `create` without a bundle directory.
#[test]
fn missing_bundle() {
    let fx = Fixture::new();
    let id = fx.id("nobundle");
    let missing = fx.dir.join("no-such-bundle");
    fx.rt(&["create", "--bundle", missing.to_str().unwrap(), &id])
        .run()
        .fails_with(&["no-such-bundle"]);
    fx.assert_no_residue();
}

// runtime.md "Create": an ID that "is not valid in any other way" MUST
// generate an error; an ID with a path separator would escape --root.
#[test]
fn bad_container_ids() {
    let fx = Fixture::new();
    let b = fx.bundle();
    b.save();
    let b_dir = b.dir.to_str().unwrap();
    for bad in ["../x", "a/b", "", "..", "x\ny"] {
        let out = fx.rt(&["create", "--bundle", b_dir, bad]).run();
        let lower = out.stderr.to_lowercase();
        let out = out.fails_with(&["id"]);
        assert!(
            lower.contains("invalid") || lower.contains("empty"),
            "id {bad:?}: error should say the ID is invalid: {}",
            out.describe()
        );
        assert!(
            !fx.dir.join("x").exists() && !fx.root.join("a").exists(),
            "{bad:?} escaped --root"
        );
    }
    let entries: Vec<_> = fs::read_dir(&fx.root).unwrap().collect();
    assert!(entries.is_empty(), "bad IDs left state: {entries:?}");
    fx.assert_no_residue();
}

// runtime.md "State"/"Create": the ID MUST be unique.
#[test]
fn duplicate_id() {
    let fx = Fixture::new();
    let mut b = fx.bundle();
    b.set_args(&["sleep", "1000"]);
    let id = fx.id("dup");
    fx.create(&b, &id, &[]).ok();
    let pid = fx.pid(&id);
    fx.create(&b, &id, &[]).fails_with(&["already exists"]);
    // The first container is untouched.
    assert_eq!(fx.status(&id), "created");
    assert_eq!(fx.pid(&id), pid);
    fx.rt(&["delete", "--force", &id]).run().ok();
    fx.assert_no_residue();
}

// runtime.md "Start": starting a container that is not `created` MUST have
// no effect and MUST generate an error.
#[test]
fn start_twice() {
    let fx = Fixture::new();
    let mut b = fx.bundle();
    b.set_args(&["sleep", "1000"]);
    let id = fx.id("st2");
    fx.create(&b, &id, &[]).ok();
    fx.start(&id).ok();
    let pid = fx.pid(&id);
    fx.start(&id).fails_with(&["running"]);
    assert_eq!(fx.status(&id), "running");
    assert_eq!(fx.pid(&id), pid);
    fx.kill(&id, "KILL").ok();
    fx.wait_status(&id, "stopped");
    fx.start(&id).fails_with(&["stopped"]);
    assert_eq!(fx.status(&id), "stopped");
    fx.delete(&id).ok();
    fx.assert_no_residue();
}

// runtime.md "Start": unknown container.
#[test]
fn start_unknown_id() {
    let fx = Fixture::new();
    let id = fx.id("unknown");
    fx.start(&id).fails_with(&["does not exist"]);
    fx.assert_no_residue();
}

// runtime.md "Delete": deleting a container that is not `stopped` MUST have
// no effect and MUST generate an error.
#[test]
fn delete_running_without_force() {
    let fx = Fixture::new();
    let mut b = fx.bundle();
    b.set_args(&["sleep", "1000"]);
    let id = fx.id("delrun");
    fx.create(&b, &id, &[]).ok();
    fx.start(&id).ok();
    let pid = fx.pid(&id);
    fx.delete(&id).fails_with(&["running"]);
    assert_eq!(fx.status(&id), "running");
    assert_eq!(fx.pid(&id), pid);
    assert_eq!(cmdline(pid), vec!["sleep", "1000"]);
    fx.rt(&["delete", "--force", &id]).run().ok();
    fx.assert_no_residue();
}

// `delete` of a `created` container without --force. runtime.md "Delete"
// asks for an error on a container that is not stopped, but runc deletes a
// created one (its init never ran the user's program) and containerd's shim
// relies on it: a task that was created and never started is removed with a
// plain `delete`. berth follows runc here.
#[test]
fn delete_created_without_force() {
    let fx = Fixture::new();
    let mut b = fx.bundle();
    b.set_args(&["sleep", "1000"]);
    let id = fx.id("delcr");
    fx.create(&b, &id, &[]).ok();
    let pid = fx.pid(&id);
    fx.note_pid(pid);
    fx.delete(&id).ok();
    fx.rt(&["state", &id]).run().fails_with(&["does not exist"]);
    assert!(
        wait_until(Duration::from_secs(5), || !std::path::Path::new(&format!(
            "/proc/{pid}"
        ))
        .exists()),
        "init {pid} of the deleted container still exists"
    );
    fx.assert_no_residue();
}

// runc `delete` of an unknown ID: containerd ignores "does not exist".
#[test]
fn delete_unknown_id() {
    let fx = Fixture::new();
    let id = fx.id("delunk");
    fx.delete(&id).fails_with(&["does not exist"]);
    fx.assert_no_residue();
}

// runtime.md "Kill": an unknown signal is an error and changes nothing.
#[test]
fn unknown_signal() {
    let fx = Fixture::new();
    let mut b = fx.bundle();
    b.set_args(&["sleep", "1000"]);
    let id = fx.id("badsig");
    fx.create(&b, &id, &[]).ok();
    fx.start(&id).ok();
    fx.kill(&id, "FOO").fails_with(&["FOO"]);
    fx.kill(&id, "SIGNOPE").fails_with(&["SIGNOPE"]);
    fx.kill(&id, "99999").fails_with(&["99999"]);
    assert_eq!(fx.status(&id), "running");
    fx.rt(&["delete", "--force", &id]).run().ok();
    fx.assert_no_residue();
}

// runtime.md "Kill": signalling a container that is neither created nor
// running MUST generate an error; containerd matches "container not running".
#[test]
fn kill_stopped_container() {
    let fx = Fixture::new();
    let mut b = fx.bundle();
    b.set_args(&["true"]);
    let id = fx.id("killstop");
    fx.create(&b, &id, &[]).ok();
    fx.start(&id).ok();
    fx.wait_status(&id, "stopped");
    fx.kill(&id, "KILL").fails_with(&["container not running"]);
    fx.kill(&id, "15").fails_with(&["container not running"]);
    assert_eq!(fx.status(&id), "stopped");
    fx.delete(&id).ok();
    fx.assert_no_residue();
}

// runtime.md "Kill" of an unknown container.
#[test]
fn kill_unknown_id() {
    let fx = Fixture::new();
    let id = fx.id("killunk");
    fx.kill(&id, "KILL").fails_with(&["does not exist"]);
    fx.assert_no_residue();
}

// runtime.md "Query State": a container that does not exist MUST generate an
// error; containerd maps "does not exist" to "no such container".
#[test]
fn state_unknown_id() {
    let fx = Fixture::new();
    let id = fx.id("stunk");
    fx.rt(&["state", &id]).run().fails_with(&["does not exist"]);
    fx.assert_no_residue();
}

// config-linux.md "Namespaces": duplicated namespace types MUST error.
#[test]
fn duplicate_namespace() {
    let fx = Fixture::new();
    let mut b = fx.bundle();
    b.namespaces().push(serde_json::json!({"type": "uts"}));
    let id = fx.id("dupns");
    let out = fx.create(&b, &id, &[]);
    let needles: &[&str] = if is_berth() { &["uts"] } else { &[] };
    out.fails_with(needles);
    fx.assert_no_residue();
}

// config-linux.md "Namespaces": a `path` of the wrong namespace type MUST
// generate an error.
#[test]
fn namespace_path_of_wrong_type() {
    let fx = Fixture::new();
    let mut b = fx.bundle();
    b.set_namespace("network", Some("/proc/self/ns/uts"));
    let id = fx.id("nstype");
    fx.create(&b, &id, &[]).fails_with(&[]);
    fx.assert_no_residue();
}
