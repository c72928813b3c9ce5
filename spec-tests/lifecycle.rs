//! pause, resume, ps, features, update (runc CLI contract; runtime.md
//! "State" for paused; features.md; config-linux.md "Control groups").

use std::fs;
use std::time::Duration;

use serde_json::{json, Value};

use crate::cgroups::{controller_dir, kill_and_delete, limit_file, read_trimmed, start_sleeper};
use crate::harness::*;

/// The number in a file the container keeps rewriting (0 if unreadable).
fn counter_value(path: &std::path::Path) -> u64 {
    fs::read_to_string(path)
        .unwrap_or_default()
        .trim()
        .parse()
        .unwrap_or(0)
}

// Contract "pause"/"resume": the container's processes stop running while
// paused (a counter they write stops moving) and `state` says "paused";
// after resume it moves again and the status is "running".
#[test]
fn pause_and_resume() {
    let fx = Fixture::new();
    let mut b = fx.bundle();
    b.set_readonly(false);
    b.set_sh("i=0; while :; do i=$((i+1)); echo $i > /tmp/count; sleep 0.02; done");
    let id = fx.id("pause");
    fx.create(&b, &id, &[]).ok();
    fx.start(&id).ok();
    let count = b.rootfs().join("tmp/count");
    assert!(wait_until(Duration::from_secs(10), || counter_value(
        &count
    ) > 2));

    fx.rt(&["pause", &id]).run().ok();
    assert_eq!(fx.status(&id), "paused");
    let frozen_at = counter_value(&count);
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(
        counter_value(&count),
        frozen_at,
        "processes ran while paused"
    );
    // Errors: pausing twice, resuming a running container.
    fx.rt(&["pause", &id])
        .run()
        .fails_with(berth_words(&["paused"]));

    fx.rt(&["resume", &id]).run().ok();
    assert_eq!(fx.status(&id), "running");
    assert!(
        wait_until(Duration::from_secs(5), || counter_value(&count) > frozen_at),
        "processes did not run again after resume"
    );
    fx.rt(&["resume", &id])
        .run()
        .fails_with(berth_words(&["running"]));
    kill_and_delete(&fx, &id);
    fx.assert_no_residue();
}

// Contract "pause": a created or stopped container can't be paused; an
// unknown one does not exist.
#[test]
fn pause_errors() {
    let fx = Fixture::new();
    fx.rt(&["pause", "no-such-ctr"])
        .run()
        .fails_with(&["does not exist"]);
    fx.rt(&["resume", "no-such-ctr"])
        .run()
        .fails_with(&["does not exist"]);
    let mut b = fx.bundle();
    b.set_args(&["sleep", "1000"]);
    let id = fx.id("created");
    fx.create(&b, &id, &[]).ok();
    if is_berth() {
        // The brief: only a running container can be paused (runc 1.1 also
        // freezes a created one).
        fx.rt(&["pause", &id]).run().fails_with(&["created"]);
    }
    fx.kill(&id, "KILL").ok();
    fx.wait_status(&id, "stopped");
    fx.rt(&["pause", &id])
        .run()
        .fails_with(berth_words(&["stopped"]));
    fx.rt(&["resume", &id])
        .run()
        .fails_with(berth_words(&["stopped"]));
    fx.delete(&id).ok();
    fx.assert_no_residue();
}

// Contract "kill"/"delete --force": both work on a paused container.
#[test]
fn kill_and_force_delete_a_paused_container() {
    let fx = Fixture::new();
    let mut b = fx.bundle();
    let (id, _) = start_sleeper(&fx, &mut b, "pkill");
    fx.rt(&["pause", &id]).run().ok();
    fx.kill(&id, "KILL").ok();
    fx.wait_status(&id, "stopped");
    fx.delete(&id).ok();

    let (id, _) = start_sleeper(&fx, &mut b, "pdel");
    fx.rt(&["pause", &id]).run().ok();
    assert_eq!(fx.status(&id), "paused");
    fx.rt(&["delete", "--force", &id]).run().ok();
    fx.assert_no_residue();
}

// Contract "ps": table = ps -ef's header and the container's rows; extra
// arguments go to ps; json = the host pids.
#[test]
fn ps_table_and_json() {
    let fx = Fixture::new();
    let mut b = fx.bundle();
    let (id, pid) = start_sleeper(&fx, &mut b, "ps");
    let out = fx.rt(&["ps", &id]).run().ok();
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert!(
        lines[0].contains("PID") && lines[0].contains("CMD"),
        "{}",
        out.stdout
    );
    assert_eq!(lines.len(), 2, "{}", out.stdout);
    assert!(lines[1].contains(&pid.to_string()) && lines[1].contains("sleep 1000"));

    let out = fx.rt(&["ps", &id, "-o", "pid,comm"]).run().ok();
    assert_eq!(
        out.stdout.split_whitespace().collect::<Vec<_>>(),
        ["PID", "COMMAND", &pid.to_string(), "sleep"]
    );

    let out = fx.rt(&["ps", "-f", "json", &id]).run().ok();
    assert_eq!(
        serde_json::from_str::<Vec<i32>>(&out.stdout).unwrap(),
        [pid]
    );
    fx.rt(&["ps", "--format", "yaml", &id])
        .run()
        .fails_with(&["format"]);
    kill_and_delete(&fx, &id);
    fx.rt(&["ps", &id]).run().fails_with(&["does not exist"]);
    fx.assert_no_residue();
}

// features.md: the required fields and the shapes of the optional ones.
#[test]
fn features_document() {
    if skip_berth_only("berth's own feature claims") {
        return;
    }
    let fx = Fixture::new();
    let out = fx.rt(&["features"]).run().ok();
    let f: Value = serde_json::from_str(&out.stdout).expect("features is JSON");
    assert_eq!(f["ociVersionMin"], "1.0.0");
    assert!(f["ociVersionMax"].as_str().unwrap().starts_with("1."));
    let strings = |v: &Value| -> Vec<String> {
        v.as_array()
            .unwrap_or_else(|| panic!("not an array: {v}"))
            .iter()
            .map(|s| s.as_str().expect("string").to_string())
            .collect()
    };
    let hooks = strings(&f["hooks"]);
    assert_eq!(hooks.len(), 6, "{hooks:?}");
    let opts = strings(&f["mountOptions"]);
    assert!(opts.contains(&"rbind".to_string()) && opts.contains(&"rro".to_string()));
    if is_berth() {
        assert!(opts.contains(&"idmap".to_string()) && opts.contains(&"ridmap".to_string()));
    }
    let linux = &f["linux"];
    assert!(strings(&linux["namespaces"]).contains(&"time".to_string()));
    assert!(strings(&linux["capabilities"]).contains(&"CAP_CHOWN".to_string()));
    for (k, v) in linux["cgroup"].as_object().unwrap() {
        assert!(v.is_boolean(), "cgroup.{k}");
    }
    // features-linux.md: "irrelevant to the availability of AppArmor [or
    // SELinux] on the host": berth applies process.apparmorProfile,
    // process.selinuxLabel and linux.mountLabel where the host has the LSM.
    if is_berth() {
        assert_eq!(linux["apparmor"]["enabled"], true);
        assert_eq!(linux["selinux"]["enabled"], true);
    }
    if is_berth() {
        let sc = &linux["seccomp"];
        assert_eq!(sc["enabled"], true);
        assert_eq!(strings(&sc["operators"]).len(), 7, "{sc}");
        assert!(
            strings(&sc["actions"]).contains(&"SCMP_ACT_NOTIFY".to_string()),
            "{sc}"
        );
        assert!(
            strings(&sc["archs"]).contains(&"SCMP_ARCH_X32".to_string()),
            "{sc}"
        );
    }
    if is_berth() {
        assert_eq!(linux["mountExtensions"]["idmap"]["enabled"], true);
    }
    assert!(f["annotations"].is_object());
    fx.assert_no_residue();
}

// features.md: "the runtime MUST support" what it lists: a container using
// every claimed hook, mount option and namespace is accepted by create.
#[test]
fn features_claims_are_accepted_by_create() {
    if skip_berth_only("berth's own feature claims") {
        return;
    }
    let fx = Fixture::new();
    let f: Value = serde_json::from_str(&fx.rt(&["features"]).run().ok().stdout).unwrap();
    let mut b = fx.bundle();
    b.set_args(&["true"]);
    // Each option on its own tmpfs (some contradict each other).
    for (i, opt) in f["mountOptions"].as_array().unwrap().iter().enumerate() {
        let opt = opt.as_str().unwrap();
        if ["remount", "bind", "rbind", "idmap", "ridmap"].contains(&opt) {
            continue; // need an existing mount or a bind source: checked elsewhere
        }
        b.mkdir_rootfs(&format!("/m{i}"));
        b.add_mount(json!({"destination": format!("/m{i}"), "type": "tmpfs",
                           "source": "tmpfs", "options": [opt]}));
    }
    let hook = json!([{"path": "/bin/true"}]);
    let mut hooks = serde_json::Map::new();
    for h in f["hooks"].as_array().unwrap() {
        // createContainer/startContainer run in the container: its /bin/true.
        hooks.insert(h.as_str().unwrap().to_string(), hook.clone());
    }
    b.config["hooks"] = Value::Object(hooks);
    for ns in f["linux"]["namespaces"].as_array().unwrap() {
        let ns = ns.as_str().unwrap();
        if ns != "user" {
            b.set_namespace(ns, None);
        }
    }
    // A seccomp profile with every claimed architecture, flag, operator and
    // action (NOTIFY needs an agent: tested in seccomp.rs).
    let sc = &f["linux"]["seccomp"];
    let ops = sc["operators"].as_array().unwrap();
    let mut rules = Vec::new();
    for (i, action) in sc["actions"].as_array().unwrap().iter().enumerate() {
        let action = action.as_str().unwrap();
        if action == "SCMP_ACT_ALLOW" || action == "SCMP_ACT_NOTIFY" {
            continue;
        }
        let op = ops[i % ops.len()].as_str().unwrap();
        rules.push(json!({"names": ["acct"], "action": action,
                          "args": [{"index": 0, "value": 1000 + i, "valueTwo": 1000 + i, "op": op}]}));
    }
    for (i, op) in ops.iter().enumerate() {
        rules.push(json!({"names": ["swapon"], "action": "SCMP_ACT_ERRNO",
                          "args": [{"index": 1, "value": 7 + i, "valueTwo": 7 + i, "op": op}]}));
    }
    b.linux()["seccomp"] = json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "architectures": sc["archs"],
        "flags": sc["supportedFlags"],
        "syscalls": rules,
    });
    let id = fx.id("feat");
    let out = fx.create(&b, &id, &[]);
    out.ok();
    fx.delete(&id).ok();
    fx.assert_no_residue();
}

// Contract "update": --pids-limit and --memory rewrite the cgroup's limits.
#[test]
fn update_changes_the_cgroup_limits() {
    let fx = Fixture::new();
    let mut b = fx.bundle();
    b.linux()["resources"] = json!({"pids": {"limit": 100}});
    let (id, pid) = start_sleeper(&fx, &mut b, "upd");
    let pids = limit_file(&controller_dir(pid, "pids"), "pids.max", "pids.max");
    let mem_dir = controller_dir(pid, "memory");
    let mem = limit_file(&mem_dir, "memory.limit_in_bytes", "memory.max");
    assert_eq!(read_trimmed(&pids), "100");
    fx.rt(&["update", "--pids-limit", "42", "--memory", "64m", &id])
        .run()
        .ok();
    assert_eq!(read_trimmed(&pids), "42");
    assert_eq!(read_trimmed(&mem), (64u64 << 20).to_string());

    // --resources - reads a LinuxResources JSON from stdin.
    fx.rt(&["update", "--resources", "-", &id])
        .stdin(br#"{"pids": {"limit": 77}}"#)
        .run()
        .ok();
    assert_eq!(read_trimmed(&pids), "77");
    kill_and_delete(&fx, &id);
    fx.assert_no_residue();
}

// Contract "update" errors: malformed JSON or a bad flag value changes nothing.
#[test]
fn update_errors_change_nothing() {
    let fx = Fixture::new();
    let mut b = fx.bundle();
    b.linux()["resources"] = json!({"pids": {"limit": 100}});
    let (id, pid) = start_sleeper(&fx, &mut b, "upderr");
    let pids = limit_file(&controller_dir(pid, "pids"), "pids.max", "pids.max");
    fx.rt(&["update", "-r", "-", &id])
        .stdin(b"{\"pids\": {\"limit\": ")
        .run()
        .fails_with(berth_words(&["resources"]));
    fx.rt(&["update", "-r", "-", &id])
        .stdin(br#"{"pids": {"limit": "many"}}"#)
        .run()
        .fails_with(berth_words(&["pids"]));
    fx.rt(&["update", "--memory", "lots", "--pids-limit", "5", &id])
        .run()
        .fails_with(berth_words(&["--memory"]));
    assert_eq!(read_trimmed(&pids), "100");
    fx.rt(&["update", "--pids-limit", "5", "no-such-ctr"])
        .run()
        .fails_with(&["does not exist"]);
    kill_and_delete(&fx, &id);
    fx.assert_no_residue();
}

// Contract "events --stats": one JSON object of runc's shape, with the
// container's live numbers.
#[test]
fn events_stats_once() {
    let fx = Fixture::new();
    let mut b = fx.bundle();
    b.linux()["resources"] = json!({"pids": {"limit": 50}});
    let (id, _) = start_sleeper(&fx, &mut b, "stats");
    let out = fx.rt(&["events", "--stats", &id]).run().ok();
    assert_eq!(out.stdout.lines().count(), 1, "{}", out.stdout);
    let ev: Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(ev["type"], "stats");
    assert_eq!(ev["id"], id.as_str());
    let data = &ev["data"];
    assert!(data["pids"]["current"].as_u64().unwrap() >= 1, "{data}");
    assert_eq!(data["pids"]["limit"], 50);
    assert!(
        data["memory"]["usage"]["usage"].as_u64().unwrap() > 0,
        "{data}"
    );
    assert!(data["cpu"]["usage"]["total"].is_u64());
    assert!(data["blkio"].is_object() && data["hugetlb"].is_object());
    fx.rt(&["events", "--stats", "no-such-ctr"])
        .run()
        .fails_with(&["does not exist"]);
    fx.rt(&["events", "--interval", "5x", &id])
        .run()
        .fails_with(berth_words(&["duration"]));
    kill_and_delete(&fx, &id);
    fx.assert_no_residue();
}

// Contract "events": a stats event every --interval (a Go duration), an
// "oom" event when the OOM killer acts, and the stream ends with the container.
#[test]
fn events_stream_and_oom() {
    let fx = Fixture::new();
    let mut b = fx.bundle();
    let mib = 16 * 1024 * 1024;
    b.linux()["resources"] = json!({"memory": {"limit": mib, "swap": mib}});
    let (id, _) = start_sleeper(&fx, &mut b, "events");
    let running = fx.rt(&["events", "--interval", "100ms", &id]).spawn();
    let out_file = || {
        fs::read_dir(&fx.dir)
            .unwrap()
            .flatten()
            .filter(|e| e.file_name().to_string_lossy().ends_with(".out"))
            .map(|e| fs::read_to_string(e.path()).unwrap_or_default())
            .find(|t| t.contains("\"type\":\"stats\""))
            .unwrap_or_default()
    };
    assert!(
        wait_until(Duration::from_secs(10), || out_file().lines().count() >= 3),
        "no stats stream: {}",
        out_file()
    );
    // A process in the container that outgrows the limit is OOM-killed.
    let hog = fx
        .rt(&[
            "exec",
            &id,
            "sh",
            "-c",
            "x=$(head -c 100000000 /dev/zero | tr '\\0' a); echo ${#x}",
        ])
        .run();
    assert_ne!(
        hog.code(),
        Some(0),
        "the hog was not killed: {}",
        hog.describe()
    );
    assert!(
        wait_until(Duration::from_secs(10), || out_file()
            .contains("\"type\":\"oom\"")),
        "no oom event: {}",
        out_file()
    );
    kill_and_delete(&fx, &id);
    let out = running.wait();
    assert_eq!(out.code(), Some(0), "{}", out.describe());
    for line in out.stdout.lines() {
        let ev: Value = serde_json::from_str(line).expect("each line is JSON");
        assert_eq!(ev["id"], id.as_str());
    }
    fx.assert_no_residue();
}
