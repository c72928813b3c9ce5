//! POSIX-platform hooks (config.md "POSIX-platform Hooks", runtime.md
//! "Lifecycle" steps 3-13): the six kinds, their order, the namespace each
//! runs in, the state on stdin, args/env, timeouts, and what a failing hook
//! does to the container.

use std::fs;
use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::harness::*;

/// A hook that appends `<name> <mount ns> <state JSON from stdin>` to `log`.
/// `sh -c SCRIPT NAME`: the name is the script's $0.
fn logging_hook(fx: &Fixture, name: &str, log: &str) -> Value {
    json!({
        "path": "/bin/sh",
        "args": ["sh", "-c", format!("echo \"$0 $(readlink /proc/self/ns/mnt) $(cat)\" >> {log}"), name],
        "env": [fx.marker_env()],
    })
}

/// A hook running `script` with the test's marker in its env (so a hook
/// process left behind counts as residue).
fn script_hook(fx: &Fixture, script: &str) -> Value {
    json!({
        "path": "/bin/sh",
        "args": ["sh", "-c", script],
        "env": [fx.marker_env()],
    })
}

struct Entry {
    name: String,
    mnt_ns: String,
    state: Value,
}

fn read_log(path: &Path) -> Vec<Entry> {
    let text = fs::read_to_string(path).unwrap_or_default();
    text.lines()
        .map(|line| {
            let mut parts = line.splitn(3, ' ');
            let name = parts.next().unwrap().to_string();
            let mnt_ns = parts.next().unwrap_or("").to_string();
            let json = parts.next().unwrap_or("");
            let state = serde_json::from_str(json).unwrap_or_else(|e| {
                panic!("hook {name} got no state JSON on stdin ({e}): {line:?}")
            });
            Entry {
                name,
                mnt_ns,
                state,
            }
        })
        .collect()
}

fn names(entries: &[Entry]) -> Vec<&str> {
    entries.iter().map(|e| e.name.as_str()).collect()
}

// config.md "POSIX-platform Hooks" and runtime.md "Lifecycle": every hook
// kind runs once, in lifecycle order, in its namespace (runtime namespace for
// prestart/createRuntime/poststart/poststop, the container's for
// createContainer/startContainer), with the container's state on stdin
// (runtime.md "State"; the pid as seen from the namespace the hook runs in).
#[test]
fn six_hooks_in_order_with_state_on_stdin() {
    let fx = Fixture::new();
    let mut b = fx.bundle();
    b.set_readonly(false);
    b.set_args(&["sleep", "1000"]);
    let host_log = fx.dir.join("hooks.log");
    let host = host_log.to_str().unwrap();
    // startContainer's path resolves in the container: it logs inside the rootfs.
    b.config["hooks"] = json!({
        "prestart": [logging_hook(&fx, "prestart", host)],
        "createRuntime": [logging_hook(&fx, "createRuntime", host)],
        "createContainer": [logging_hook(&fx, "createContainer", host)],
        "startContainer": [logging_hook(&fx, "startContainer", "/hooks.log")],
        "poststart": [logging_hook(&fx, "poststart", host)],
        "poststop": [logging_hook(&fx, "poststop", host)],
    });
    let id = fx.id("hooks");
    fx.create(&b, &id, &[]).ok();
    let pid = fx.pid(&id);
    let host_mnt = ns_of("self", "mnt");
    let container_mnt = ns_of(&pid.to_string(), "mnt");
    assert_ne!(host_mnt, container_mnt);

    let entries = read_log(&host_log);
    assert_eq!(
        names(&entries),
        ["prestart", "createRuntime", "createContainer"]
    );
    let in_container = b.rootfs().join("hooks.log");
    assert!(!in_container.exists(), "startContainer ran before start");
    for e in &entries {
        assert_eq!(e.state["id"], json!(id), "{}: {}", e.name, e.state);
        assert_eq!(
            e.state["status"],
            json!("creating"),
            "{}: {}",
            e.name,
            e.state
        );
        assert_eq!(
            Path::new(e.state["bundle"].as_str().unwrap()),
            b.dir,
            "{}",
            e.name
        );
        assert!(e.state["ociVersion"].is_string(), "{}: {}", e.name, e.state);
    }
    assert_eq!(
        entries[0].mnt_ns, host_mnt,
        "prestart runs in the runtime namespace"
    );
    assert_eq!(
        entries[1].mnt_ns, host_mnt,
        "createRuntime runs in the runtime namespace"
    );
    assert_eq!(
        entries[2].mnt_ns, container_mnt,
        "createContainer runs in the container namespace"
    );
    assert_eq!(entries[0].state["pid"], json!(pid), "runtime-namespace pid");
    assert_eq!(entries[1].state["pid"], json!(pid), "runtime-namespace pid");
    if is_berth() {
        // runtime.md "State" pid: "as seen by the container" for hooks run there;
        // the container has its own pid namespace, where its init is 1.
        assert_eq!(entries[2].state["pid"], json!(1), "createContainer pid");
    }

    fx.start(&id).ok();
    let entries = read_log(&host_log);
    assert_eq!(
        names(&entries),
        ["prestart", "createRuntime", "createContainer", "poststart"]
    );
    assert_eq!(
        entries[3].mnt_ns, host_mnt,
        "poststart runs in the runtime namespace"
    );
    assert_eq!(entries[3].state["pid"], json!(pid));
    assert_eq!(
        entries[3].state["status"],
        json!("running"),
        "{}",
        entries[3].state
    );
    let started = read_log(&in_container);
    assert_eq!(names(&started), ["startContainer"]);
    assert_eq!(
        started[0].mnt_ns, container_mnt,
        "startContainer runs in the container namespace"
    );
    assert_eq!(started[0].state["id"], json!(id));

    fx.kill(&id, "KILL").ok();
    fx.wait_status(&id, "stopped");
    fx.delete(&id).ok();
    let entries = read_log(&host_log);
    assert_eq!(
        names(&entries),
        [
            "prestart",
            "createRuntime",
            "createContainer",
            "poststart",
            "poststop"
        ]
    );
    assert_eq!(
        entries[4].mnt_ns, host_mnt,
        "poststop runs in the runtime namespace"
    );
    assert_eq!(entries[4].state["id"], json!(id));
    assert_eq!(
        entries[4].state["status"],
        json!("stopped"),
        "{}",
        entries[4].state
    );
    fx.assert_no_residue();
}

// config.md hooks: `args` "same semantics as IEEE Std 1003.1-2008 execv's argv"
// and `env` "same semantics as ... environ": the hook gets exactly these.
#[test]
fn hook_args_and_env() {
    let fx = Fixture::new();
    let mut b = fx.bundle();
    let log = fx.dir.join("hook.out");
    b.config["hooks"] = json!({
        "createRuntime": [{
            "path": "/bin/sh",
            "args": ["sh", "-c", format!("echo \"$0|$1|$HOOK_VAR|${{HOME:-no-home}}\" > {}", log.display()), "zero", "one"],
            "env": ["HOOK_VAR=from-config", fx.marker_env()],
        }]
    });
    fx.run_ok(&b);
    assert_eq!(
        fs::read_to_string(&log).unwrap(),
        "zero|one|from-config|no-home\n"
    );
}

/// create with one failing hook of `kind`: the error names the hook kind,
/// nothing is left behind, and a poststop hook still runs (runtime.md
/// "Lifecycle": "continue the lifecycle at step 12").
fn failing_create_hook(kind: &str) {
    let fx = Fixture::new();
    let mut b = fx.bundle();
    let poststop_log = fx.dir.join("poststop.log");
    b.config["hooks"] = json!({
        kind: [script_hook(&fx, "echo hook-says-no >&2; exit 3")],
        "poststop": [logging_hook(&fx, "poststop", poststop_log.to_str().unwrap())],
    });
    let id = fx.id("hookfail");
    let out = fx.create(&b, &id, &[]);
    let needles: &[&str] = if is_berth() { &[kind] } else { &[] };
    out.fails_with(needles);
    fx.rt(&["state", &id]).run().fails_with(&["does not exist"]);
    if is_berth() {
        assert_eq!(
            names(&read_log(&poststop_log)),
            ["poststop"],
            "poststop after a failed {kind}"
        );
    }
    fx.assert_no_residue();
}

// runtime.md "Lifecycle" 3: a failing prestart hook.
#[test]
fn failing_prestart_hook() {
    failing_create_hook("prestart");
}

// runtime.md "Lifecycle" 4: a failing createRuntime hook.
#[test]
fn failing_create_runtime_hook() {
    failing_create_hook("createRuntime");
}

// runtime.md "Lifecycle" 5: a failing createContainer hook.
#[test]
fn failing_create_container_hook() {
    failing_create_hook("createContainer");
}

/// A hook of `kind` (startContainer or poststart) fails during `start`: start
/// errors, the user's program is stopped, the container destroyed and the
/// poststop hooks run (runtime.md "Lifecycle" 7 and 9, then 12 and 13).
fn failing_start_hook(kind: &str) {
    berth_only!("runc 1.1.5 leaves the container in place after a failing start hook");
    let fx = Fixture::new();
    let mut b = fx.bundle();
    b.set_args(&["sleep", "1000"]);
    let poststop_log = fx.dir.join("poststop.log");
    b.config["hooks"] = json!({
        kind: [script_hook(&fx, "exit 4")],
        "poststop": [logging_hook(&fx, "poststop", poststop_log.to_str().unwrap())],
    });
    let id = fx.id("starthook");
    fx.create(&b, &id, &[]).ok();
    let pid = fx.pid(&id);
    fx.start(&id).fails_with(&[kind]);
    assert!(
        wait_until(Duration::from_secs(5), || !Path::new(&format!(
            "/proc/{pid}"
        ))
        .exists()),
        "the container process {pid} survived a failing {kind} hook"
    );
    fx.rt(&["state", &id]).run().fails_with(&["does not exist"]);
    assert_eq!(names(&read_log(&poststop_log)), ["poststop"]);
    fx.assert_no_residue();
}

#[test]
fn failing_start_container_hook() {
    failing_start_hook("startContainer");
}

#[test]
fn failing_poststart_hook() {
    failing_start_hook("poststart");
}

// runtime.md "Lifecycle" 13: a failing poststop hook is only a warning; the
// remaining poststop hooks still run and delete succeeds.
#[test]
fn failing_poststop_hook_is_a_warning() {
    let fx = Fixture::new();
    let mut b = fx.bundle();
    let log = fx.dir.join("poststop.log");
    b.config["hooks"] = json!({
        "poststop": [
            script_hook(&fx, "exit 5"),
            logging_hook(&fx, "second", log.to_str().unwrap()),
        ],
    });
    let id = fx.id("poststop");
    fx.create(&b, &id, &[]).ok();
    fx.start(&id).ok();
    fx.wait_status(&id, "stopped");
    fx.delete(&id).ok();
    assert_eq!(names(&read_log(&log)), ["second"]);
    fx.assert_no_residue();
}

// config.md hooks `timeout`: "the number of seconds before aborting the hook".
// The aborted hook is killed (its marker must be gone) and create fails.
#[test]
fn hook_timeout_aborts_the_hook() {
    let fx = Fixture::new();
    let mut b = fx.bundle();
    let mut hook = script_hook(&fx, "sleep 60");
    hook["timeout"] = json!(1);
    b.config["hooks"] = json!({ "createRuntime": [hook] });
    let id = fx.id("timeout");
    let began = Instant::now();
    let out = fx.create(&b, &id, &[]);
    let needles: &[&str] = if is_berth() {
        &["createRuntime", "timed out"]
    } else {
        &[]
    };
    out.fails_with(needles);
    assert!(
        began.elapsed() < Duration::from_secs(20),
        "create waited {:?} for a 1 s hook timeout",
        began.elapsed()
    );
    fx.assert_no_residue();
}

// config.md hooks `timeout`: "If set, timeout MUST be greater than zero."
#[test]
fn hook_timeout_zero_is_invalid() {
    berth_only!("runc 1.1.5 accepts a zero timeout");
    let fx = Fixture::new();
    let mut b = fx.bundle();
    let mut hook = script_hook(&fx, "true");
    hook["timeout"] = json!(0);
    b.config["hooks"] = json!({ "poststart": [hook] });
    let id = fx.id("timeout0");
    fx.create(&b, &id, &[]).fails_with(&["timeout"]);
    fx.assert_no_residue();
}

// config.md hooks `path`: "MUST be an absolute path".
#[test]
fn hook_path_must_be_absolute() {
    berth_only!("runc 1.1.5 reports this only when the hook runs");
    let fx = Fixture::new();
    let mut b = fx.bundle();
    b.config["hooks"] = json!({ "createRuntime": [{"path": "bin/true"}] });
    let id = fx.id("relhook");
    fx.create(&b, &id, &[]).fails_with(&["bin/true"]);
    fx.assert_no_residue();
}
