//! The lifecycle commands of runtime.md "Operations" with the argv shapes of
//! the runc CLI contract (docs/runc-cli-contract.md).

use std::fs;
use std::time::Duration;

use serde_json::{json, Value};

use crate::harness::*;

/// A script that reports each signal it receives on stdout and exits on TERM.
/// pid 1 of a pid namespace only gets signals it has handlers for, so the
/// traps are what make delivery observable.
const SIGNAL_REPORTER: &str = "trap 'echo got-USR1' USR1; trap 'echo got-HUP' HUP; \
     trap 'echo got-USR2' USR2; trap 'echo got-TERM; exit 0' TERM; \
     echo ready; while :; do sleep 0.1; done";

// runtime.md "Create", "Start"; contract "Pid file", "Process topology".
#[test]
fn create_then_start() {
    let fx = Fixture::new();
    let mut b = fx.bundle();
    b.set_sh("echo user-program-ran; exec sleep 1000");
    let id = fx.id("c");
    let pid_file = fx.dir.join("init.pid");
    let out = fx
        .create(&b, &id, &["--pid-file", pid_file.to_str().unwrap()])
        .ok();

    // The pid file is a bare decimal number: go-runc does Atoi without trimming.
    let raw = fs::read_to_string(&pid_file).expect("create wrote the pid file");
    assert!(
        !raw.is_empty() && raw.bytes().all(|c| c.is_ascii_digit()),
        "pid file must be bare digits, got {raw:?}"
    );
    let pid: i32 = raw.parse().unwrap();

    let state = fx.state(&id);
    assert_eq!(state["status"], "created");
    assert_eq!(
        state["pid"].as_i64(),
        Some(pid as i64),
        "state pid = pid file"
    );
    // The init exists but has not executed the user's program yet.
    let argv = cmdline(pid);
    assert!(
        !argv.is_empty(),
        "container init {pid} does not exist after create"
    );
    assert_ne!(
        argv,
        vec!["sh", "-c", b.config["process"]["args"][2].as_str().unwrap()],
        "process.args ran before start"
    );
    std::thread::sleep(Duration::from_millis(300));
    assert!(
        !out.reread_stdout().contains("user-program-ran"),
        "the user program ran before start"
    );

    fx.start(&id).ok();
    assert!(
        wait_until(Duration::from_secs(10), || out
            .reread_stdout()
            .contains("user-program-ran")),
        "the user program did not run after start"
    );
    assert_eq!(fx.status(&id), "running");
    assert_eq!(
        cmdline(pid),
        vec!["sleep", "1000"],
        "start exec'd process.args in the init"
    );

    fx.kill(&id, "KILL").ok();
    fx.wait_status(&id, "stopped");
    fx.delete(&id).ok();
    fx.assert_no_residue();
}

// runtime.md "State" and state-schema.json; contract "state JSON".
#[test]
fn state_has_every_field() {
    let fx = Fixture::new();
    let mut b = fx.bundle();
    b.set_args(&["sleep", "1000"]);
    b.config["annotations"] = json!({"org.example.key": "value", "other": "x y"});
    let id = fx.id("s");
    let before = now_epoch();
    fx.create(&b, &id, &[]).ok();
    let state = fx.state(&id);

    let version = state["ociVersion"]
        .as_str()
        .expect("ociVersion is a string");
    assert!(version.starts_with("1."), "ociVersion {version:?}");
    assert_eq!(state["id"], id.as_str());
    assert_eq!(state["status"], "created");
    assert!(state["pid"].as_i64().is_some_and(|p| p > 0), "pid: {state}");
    let bundle = fs::canonicalize(&b.dir).unwrap();
    assert_eq!(
        state["bundle"].as_str(),
        bundle.to_str(),
        "bundle is the absolute bundle path"
    );
    assert_eq!(
        state["rootfs"].as_str(),
        bundle.join("rootfs").to_str(),
        "rootfs is the absolute rootfs path"
    );
    let created = state["created"].as_str().expect("created is a string");
    let t = parse_rfc3339(created).unwrap_or_else(|| panic!("created {created:?} is not RFC 3339"));
    assert!(
        t >= before - 2.0 && t <= now_epoch() + 2.0,
        "created {created} is not the creation time"
    );
    assert!(
        state["owner"].is_string(),
        "owner is a string (runc: \"\"): {state}"
    );
    assert_eq!(state["annotations"], b.config["annotations"]);

    fx.start(&id).ok();
    assert_eq!(fx.status(&id), "running");
    fx.kill(&id, "KILL").ok();
    fx.wait_status(&id, "stopped");
    let stopped = fx.state(&id);
    // runc reports pid 0 once the init is gone.
    assert!(
        stopped["pid"].is_null() || stopped["pid"] == 0,
        "a stopped container has no pid: {stopped}"
    );
    assert_eq!(
        stopped["created"], state["created"],
        "created does not change"
    );
    fx.delete(&id).ok();
    fx.assert_no_residue();
}

// runtime.md "State": a container whose process exited is `stopped`.
#[test]
fn state_after_exit_is_stopped() {
    let fx = Fixture::new();
    let mut b = fx.bundle();
    b.set_args(&["true"]);
    let id = fx.id("x");
    fx.create(&b, &id, &[]).ok();
    fx.start(&id).ok();
    fx.wait_status(&id, "stopped");
    fx.delete(&id).ok();
    fx.rt(&["state", &id]).run().fails_with(&["does not exist"]);
    fx.assert_no_residue();
}

/// Create and start a container running SIGNAL_REPORTER; returns the create
/// output (whose stdout file the container writes to).
fn start_signal_reporter(fx: &Fixture, id: &str) -> Output {
    let mut b = fx.bundle();
    b.set_sh(SIGNAL_REPORTER);
    let out = fx.create(&b, id, &[]).ok();
    fx.start(id).ok();
    assert!(
        wait_until(Duration::from_secs(10), || out
            .reread_stdout()
            .contains("ready")),
        "signal reporter did not start"
    );
    out
}

#[track_caller]
fn expect_line(out: &Output, line: &str) {
    assert!(
        wait_until(Duration::from_secs(10), || out
            .reread_stdout()
            .lines()
            .any(|l| l == line)),
        "container did not print {line:?}; stdout: {}",
        out.reread_stdout()
    );
}

// runtime.md "Kill"; contract quirk 6: numeric from containerd, names from
// humans, SIGTERM by default.
#[test]
fn kill_delivers_numeric_named_and_default_signals() {
    let fx = Fixture::new();
    let id = fx.id("k");
    let out = start_signal_reporter(&fx, &id);
    fx.kill(&id, &(libc::SIGUSR1).to_string()).ok();
    expect_line(&out, "got-USR1");
    fx.kill(&id, "HUP").ok();
    expect_line(&out, "got-HUP");
    fx.kill(&id, "SIGUSR2").ok();
    expect_line(&out, "got-USR2");
    assert_eq!(fx.status(&id), "running");
    fx.rt(&["kill", &id]).run().ok();
    expect_line(&out, "got-TERM");
    fx.wait_status(&id, "stopped");
    fx.delete(&id).ok();
    fx.assert_no_residue();
}

// runtime.md "Kill": KILL by name, with and without the SIG prefix.
#[test]
fn kill_by_kill_and_sigkill() {
    let fx = Fixture::new();
    let mut b = fx.bundle();
    b.set_args(&["sleep", "1000"]);
    for signal in ["KILL", "SIGKILL", "9"] {
        let id = fx.id("kk");
        fx.create(&b, &id, &[]).ok();
        fx.start(&id).ok();
        fx.kill(&id, signal).ok();
        fx.wait_status(&id, "stopped");
        fx.delete(&id).ok();
    }
    fx.assert_no_residue();
}

// runc `kill --all`: the signal reaches every process of the container, not
// only the init. Without a pid namespace killing the init would orphan the
// others, so only --all can stop them all.
#[test]
fn kill_all_reaches_every_process() {
    let fx = Fixture::new();
    let mut b = fx.bundle();
    b.remove_namespace("pid");
    b.set_sh("sleep 1000 & sleep 1000 & wait");
    let id = fx.id("ka");
    fx.create(&b, &id, &[]).ok();
    fx.start(&id).ok();
    assert!(
        wait_until(Duration::from_secs(10), || fx.marked_processes().len() >= 3),
        "expected sh and two sleeps, found {:?}",
        fx.marked_processes()
    );
    fx.rt(&["kill", "--all", &id, "KILL"]).run().ok();
    fx.wait_status(&id, "stopped");
    assert!(
        wait_until(Duration::from_secs(5), || fx.marked_processes().is_empty()),
        "kill --all left {:?}",
        fx.marked_processes()
    );
    fx.delete(&id).ok();
    fx.assert_no_residue();
}

// runtime.md "Delete"; contract: shim `Stop` uses `delete --force`.
#[test]
fn delete_force_removes_running_container() {
    let fx = Fixture::new();
    let mut b = fx.bundle();
    b.set_args(&["sleep", "1000"]);
    let id = fx.id("df");
    fx.create(&b, &id, &[]).ok();
    fx.start(&id).ok();
    let pid = fx.pid(&id);
    fx.rt(&["delete", "--force", &id]).run().ok();
    // delete returns once the init has exited: it is gone, or a zombie
    // its parent has yet to reap, and in no other state.
    // (/proc/PID/stat: "PID (COMM) STATE ...")
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let still_running =
        stat.contains("(sleep) ") && !stat.contains(") Z ") && !stat.contains(") X ");
    assert!(
        !still_running,
        "delete --force returned while its init was still running: {stat}"
    );
    fx.rt(&["state", &id]).run().fails_with(&["does not exist"]);
    fx.assert_no_residue();
}

// runtime.md "Delete" of a `created` container with --force.
#[test]
fn delete_force_removes_created_container() {
    let fx = Fixture::new();
    let b = fx.bundle();
    let id = fx.id("dc");
    fx.create(&b, &id, &[]).ok();
    fx.rt(&["delete", "--force", &id]).run().ok();
    fx.rt(&["state", &id]).run().fails_with(&["does not exist"]);
    fx.assert_no_residue();
}

// runc `run`: create+start+wait+delete; its exit code is the process's.
#[test]
fn run_returns_exit_code_and_deletes() {
    let fx = Fixture::new();
    let mut b = fx.bundle();
    b.set_sh("echo out; echo err >&2; exit 7");
    let id = fx.id("r");
    let out = fx.run(&b, &id, &[]);
    assert_eq!(out.code(), Some(7), "{}", out.describe());
    assert_eq!(
        out.stdout, "out\n",
        "container stdout is the runtime's stdout"
    );
    assert_eq!(
        out.stderr, "err\n",
        "container stderr is the runtime's stderr"
    );
    fx.rt(&["state", &id]).run().fails_with(&["does not exist"]);
    fx.assert_no_residue();
}

// runc `run`: a process killed by signal N makes `run` exit 128+N.
#[test]
fn run_killed_by_signal_exits_128_plus_signal() {
    let fx = Fixture::new();
    let mut b = fx.bundle();
    b.set_args(&["sleep", "1000"]);
    b.save();
    let id = fx.id("rk");
    let running = fx
        .rt(&["run", "--bundle", b.dir.to_str().unwrap(), &id])
        .spawn();
    assert!(
        wait_until(Duration::from_secs(10), || {
            let out = fx.rt(&["state", &id]).run();
            out.status.success() && out.stdout.contains("\"running\"")
        }),
        "container never reached running"
    );
    fx.note_pid(fx.pid(&id));
    fx.kill(&id, "KILL").ok();
    let out = running.wait();
    assert_eq!(out.code(), Some(128 + libc::SIGKILL), "{}", out.describe());
    fx.assert_no_residue();
}

// runc `run --detach`: returns once the process runs; the container stays.
#[test]
fn run_detach_leaves_container_running() {
    let fx = Fixture::new();
    let mut b = fx.bundle();
    b.set_args(&["sleep", "1000"]);
    let id = fx.id("rd");
    fx.run(&b, &id, &["--detach"]).ok();
    assert_eq!(fx.status(&id), "running");
    fx.kill(&id, "KILL").ok();
    fx.wait_status(&id, "stopped");
    fx.delete(&id).ok();
    fx.assert_no_residue();
}

// runc `run --keep`: the stopped container is kept for inspection.
#[test]
fn run_keep_keeps_stopped_container() {
    let fx = Fixture::new();
    let mut b = fx.bundle();
    b.set_sh("exit 3");
    let id = fx.id("rkp");
    let out = fx.run(&b, &id, &["--keep"]);
    assert_eq!(out.code(), Some(3), "{}", out.describe());
    assert_eq!(fx.status(&id), "stopped");
    fx.delete(&id).ok();
    fx.assert_no_residue();
}

// runc `list`: table (header, one row per container), JSON (go-runc `List`
// uses `--format=json`), --quiet.
#[test]
fn list_table_json_and_quiet() {
    let fx = Fixture::new();
    let empty = fx.rt(&["list", "--format", "json"]).run().ok();
    let v: Value = serde_json::from_str(&empty.stdout).expect("empty list is JSON");
    assert!(v.is_null() || v == json!([]), "empty list: {v}");
    assert_eq!(fx.rt(&["list", "-q"]).run().ok().stdout, "");

    let mut b = fx.bundle();
    b.set_args(&["sleep", "1000"]);
    let (a, c) = (fx.id("la"), fx.id("lb"));
    fx.create(&b, &a, &[]).ok();
    fx.create(&b, &c, &[]).ok();
    fx.start(&c).ok();
    let bundle = fs::canonicalize(&b.dir).unwrap();
    let bundle = bundle.to_str().unwrap();

    let table = fx.rt(&["list"]).run().ok().stdout;
    let mut lines = table.lines();
    let header: Vec<&str> = lines.next().unwrap_or("").split_whitespace().collect();
    assert_eq!(
        header,
        ["ID", "PID", "STATUS", "BUNDLE", "CREATED", "OWNER"],
        "{table}"
    );
    let rows: Vec<Vec<&str>> = lines.map(|l| l.split_whitespace().collect()).collect();
    for (id, status) in [(&a, "created"), (&c, "running")] {
        let row = rows
            .iter()
            .find(|r| r.first() == Some(&id.as_str()))
            .unwrap_or_else(|| panic!("no row for {id}: {table}"));
        assert_eq!(
            row.get(1).map(|p| p.parse::<i32>().is_ok()),
            Some(true),
            "{table}"
        );
        assert_eq!(row.get(2), Some(&status), "{table}");
        assert_eq!(row.get(3), Some(&bundle), "{table}");
        assert!(
            row.get(4).is_some_and(|t| parse_rfc3339(t).is_some()),
            "{table}"
        );
    }
    assert_eq!(rows.len(), 2, "{table}");

    for args in [
        &["list", "--format=json"][..],
        &["list", "--format", "json"][..],
    ] {
        let out = fx.rt(args).run().ok();
        let list: Vec<Value> = serde_json::from_str(&out.stdout)
            .unwrap_or_else(|e| panic!("{args:?}: not a JSON array ({e}): {}", out.stdout));
        assert_eq!(list.len(), 2, "{}", out.stdout);
        for (id, status) in [(&a, "created"), (&c, "running")] {
            let s = list
                .iter()
                .find(|s| s["id"] == id.as_str())
                .unwrap_or_else(|| panic!("{id} missing: {}", out.stdout));
            assert_eq!(s["status"], status);
            assert_eq!(s["bundle"], bundle);
            assert!(s["pid"].as_i64().is_some_and(|p| p > 0));
            assert!(s["created"].as_str().and_then(parse_rfc3339).is_some());
        }
    }

    let quiet = fx.rt(&["list", "--quiet"]).run().ok().stdout;
    let mut ids: Vec<&str> = quiet.lines().collect();
    ids.sort();
    let mut want = vec![a.as_str(), c.as_str()];
    want.sort();
    assert_eq!(ids, want, "list --quiet prints only the ids");

    for id in [&a, &c] {
        fx.rt(&["delete", "--force", id]).run().ok();
    }
    assert_eq!(fx.rt(&["list", "-q"]).run().ok().stdout, "");
    fx.assert_no_residue();
}

// runc `spec`: a valid starter config.json for a busybox-like rootfs.
#[test]
fn spec_writes_default_config() {
    let fx = Fixture::new();
    let dir = fx.dir.join("spec");
    fs::create_dir(&dir).unwrap();
    fx.rt_plain(&["spec"]).cwd(&dir).run().ok();
    let text = fs::read_to_string(dir.join("config.json")).expect("spec wrote config.json");
    let c: Value = serde_json::from_str(&text).expect("config.json is JSON");
    assert!(
        c["ociVersion"]
            .as_str()
            .is_some_and(|v| v.starts_with("1.")),
        "{c}"
    );
    assert_eq!(c["root"]["path"], "rootfs");
    assert_eq!(c["process"]["args"], json!(["sh"]));
    assert_eq!(c["process"]["cwd"], "/");
    assert_eq!(c["process"]["user"]["uid"], 0);
    let ns: Vec<&str> = c["linux"]["namespaces"]
        .as_array()
        .expect("linux.namespaces")
        .iter()
        .filter_map(|n| n["type"].as_str())
        .collect();
    for kind in ["pid", "network", "ipc", "uts", "mount"] {
        assert!(ns.contains(&kind), "default namespaces {ns:?} lack {kind}");
    }
    let dests: Vec<&str> = c["mounts"]
        .as_array()
        .expect("mounts")
        .iter()
        .filter_map(|m| m["destination"].as_str())
        .collect();
    for d in ["/proc", "/dev", "/dev/pts", "/dev/shm", "/sys"] {
        assert!(dests.contains(&d), "default mounts {dests:?} lack {d}");
    }

    // An existing config.json is never overwritten.
    fs::write(dir.join("config.json"), "keep me").unwrap();
    let out = fx.rt_plain(&["spec"]).cwd(&dir).run();
    assert_ne!(
        out.code(),
        Some(0),
        "spec overwrote config.json: {}",
        out.describe()
    );
    assert_eq!(
        fs::read_to_string(dir.join("config.json")).unwrap(),
        "keep me"
    );

    // --bundle writes into that directory.
    let other = fx.dir.join("spec2");
    fs::create_dir(&other).unwrap();
    fx.rt_plain(&["spec", "--bundle", other.to_str().unwrap()])
        .run()
        .ok();
    let c2: Value =
        serde_json::from_str(&fs::read_to_string(other.join("config.json")).unwrap()).unwrap();
    assert_eq!(c2, c);
    fx.assert_no_residue();
}

// runc `spec --rootless`: a user namespace mapping the caller's own ids.
#[test]
fn spec_rootless() {
    let fx = Fixture::new();
    let dir = fx.dir.join("spec");
    fs::create_dir(&dir).unwrap();
    fx.rt_plain(&["spec", "--rootless"]).cwd(&dir).run().ok();
    let c: Value =
        serde_json::from_str(&fs::read_to_string(dir.join("config.json")).unwrap()).unwrap();
    let ns: Vec<&str> = c["linux"]["namespaces"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|n| n["type"].as_str())
        .collect();
    assert!(
        ns.contains(&"user"),
        "rootless spec needs a user namespace: {ns:?}"
    );
    assert!(
        !ns.contains(&"network"),
        "rootless cannot configure a netns: {ns:?}"
    );
    let uid = nix::unistd::geteuid().as_raw();
    let gid = nix::unistd::getegid().as_raw();
    assert_eq!(
        c["linux"]["uidMappings"][0]["hostID"], uid,
        "{}",
        c["linux"]
    );
    assert_eq!(c["linux"]["uidMappings"][0]["containerID"], 0);
    assert_eq!(
        c["linux"]["gidMappings"][0]["hostID"], gid,
        "{}",
        c["linux"]
    );
    fx.assert_no_residue();
}

// Contract "Version": `<name> version X`, `commit: C`, `spec: Y` (go-runc's
// parseVersion fills its fields only for `runc version`; they are optional).
#[test]
fn version_output() {
    let fx = Fixture::new();
    let out = fx.rt_plain(&["--version"]).run().ok();
    let first = out.stdout.lines().next().unwrap_or("");
    let name = if is_berth() {
        "berth version "
    } else {
        "runc version "
    };
    assert!(first.starts_with(name), "first line: {first:?}");
    assert!(first.len() > name.len(), "no version number: {first:?}");
    assert!(
        out.stdout
            .lines()
            .any(|l| l.starts_with("commit: ") && l != "commit: unknown"),
        "no `commit:` line: {}",
        out.stdout
    );
    assert!(
        out.stdout.lines().any(|l| l.starts_with("spec: 1.")),
        "no `spec: 1.x` line: {}",
        out.stdout
    );
}

// Contract "Invocation shape" quirk 5 and urfave/cli argument reordering:
// flags may follow the ID, and `--flag=value` equals `--flag value`.
#[test]
fn flags_after_id_and_equals_forms() {
    let fx = Fixture::new();
    let mut b = fx.bundle();
    b.set_args(&["sleep", "1000"]);
    b.save();
    let id = fx.id("fa");
    let pid_file = fx.dir.join("fa.pid");
    fx.rt(&[
        "create",
        &id,
        "--bundle",
        b.dir.to_str().unwrap(),
        "--pid-file",
        pid_file.to_str().unwrap(),
    ])
    .run()
    .ok();
    assert!(pid_file.exists(), "--pid-file after the ID was ignored");
    assert_eq!(fx.status(&id), "created");
    fx.rt(&["delete", &id, "--force"]).run().ok();
    fx.rt(&["state", &id]).run().fails_with(&["does not exist"]);

    let id2 = fx.id("fb");
    let bundle_eq = format!("--bundle={}", b.dir.display());
    fx.rt(&["create", &bundle_eq, &id2]).run().ok();
    assert_eq!(fx.status(&id2), "created");
    fx.rt(&["kill", &id2, "KILL", "--all"]).run().ok();
    fx.wait_status(&id2, "stopped");
    fx.rt(&["delete", &id2]).run().ok();
    fx.assert_no_residue();
}

// Contract "Error reporting": with `--log F --log-format json`, the last
// line with level "error" carries the message in `msg`; the file is appended.
#[test]
fn log_json_records_errors() {
    let fx = Fixture::new();
    let log = fx.dir.join("log.json");
    fs::write(&log, "{\"level\":\"info\",\"msg\":\"earlier line\"}\n").unwrap();
    let id = fx.id("nolog");
    let out = fx
        .rt(&[
            "--log",
            log.to_str().unwrap(),
            "--log-format",
            "json",
            "state",
            &id,
        ])
        .run();
    assert_ne!(out.code(), Some(0));
    let text = fs::read_to_string(&log).unwrap();
    assert!(
        text.starts_with("{\"level\":\"info\",\"msg\":\"earlier line\"}\n"),
        "log not appended: {text}"
    );
    let last_error = text
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .rfind(|v| v["level"] == "error")
        .unwrap_or_else(|| panic!("no error line in {text}"));
    let msg = last_error["msg"].as_str().expect("msg is a string");
    assert!(msg.contains("does not exist"), "msg: {msg}");

    // The same for a failing create, which the shim reports to the user.
    let b = fx.bundle();
    b.save();
    fs::remove_dir_all(b.rootfs()).unwrap();
    let id2 = fx.id("nolog2");
    let out = fx
        .rt(&[
            "--log",
            log.to_str().unwrap(),
            "--log-format",
            "json",
            "create",
            "--bundle",
            b.dir.to_str().unwrap(),
            &id2,
        ])
        .run();
    assert_ne!(out.code(), Some(0));
    let text = fs::read_to_string(&log).unwrap();
    let last_error = text
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .rfind(|v| v["level"] == "error")
        .unwrap();
    assert!(
        last_error["msg"].as_str().unwrap().contains("rootfs"),
        "{last_error}"
    );
    fx.assert_no_residue();
}

// runc's global `--log-format text` (logrus text: time=... level=... msg=...)
// and `--debug`, which adds debug records; without it there are none.
#[test]
fn log_text_format_and_debug() {
    let fx = Fixture::new();
    let log = fx.dir.join("log.txt");
    let l = log.to_str().unwrap();
    let id = fx.id("textlog");
    fx.rt(&["--log", l, "--log-format", "text", "state", &id])
        .run()
        .fails_with(&["does not exist"]);
    let text = fs::read_to_string(&log).unwrap();
    let line = text.lines().last().unwrap_or("");
    assert!(line.starts_with("time=\""), "{text}");
    assert!(line.contains(" level=error "), "{text}");
    assert!(
        line.contains("msg=") && line.contains("does not exist"),
        "{text}"
    );
    assert!(
        !text.contains("level=debug"),
        "debug records without --debug: {text}"
    );
    if is_berth() {
        fx.rt(&["--debug", "--log", l, "--log-format", "text", "list"])
            .run()
            .ok();
        let text = fs::read_to_string(&log).unwrap();
        assert!(
            text.contains("level=debug"),
            "--debug wrote no debug record: {text}"
        );
    }
    fx.assert_no_residue();
}

// A foreground `run` must not keep other commands out: `delete --force`
// from another process kills the container, and `run` then returns 128+9
// (runc's behaviour; the contract's shim relies on kill and delete working
// on any container).
#[test]
fn delete_force_while_run_waits_in_the_foreground() {
    let fx = Fixture::new();
    let mut b = fx.bundle();
    b.set_args(&["sleep", "1000"]);
    b.save();
    let id = fx.id("fgdel");
    let running = fx
        .rt(&["run", "--bundle", b.dir.to_str().unwrap(), &id])
        .spawn();
    assert!(
        wait_until(Duration::from_secs(10), || fx
            .rt(&["state", &id])
            .run()
            .stdout
            .contains("\"running\"")),
        "the container never ran"
    );
    fx.note_pid(fx.pid(&id));
    fx.rt(&["delete", "--force", &id])
        .timeout(Duration::from_secs(10))
        .run()
        .ok();
    let out = running.wait();
    assert_eq!(out.code(), Some(137), "{}", out.describe());
    fx.assert_no_residue();
}
