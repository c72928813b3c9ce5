//! Rootless mode: the runtime run by a user without privileges (runc's
//! `--rootless auto`, config-linux.md "User namespace mappings", runtime.md
//! "Lifecycle"). The suite runs as root, so each command here is run as uid
//! 1000 through setpriv (numeric ids: no account is needed), with its own
//! XDG_RUNTIME_DIR, on a bundle whose config the user's own `spec --rootless`
//! wrote.

use crate::harness::*;
use serde_json::{json, Value};
use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

const USER: u32 = 1000;

/// The runtime as uid/gid 1000, no supplementary groups, no capabilities
/// (setpriv's uid change from 0 drops them), state under `xdg`.
fn as_user(fx: &Fixture, xdg: &Path, args: &[&str]) -> Cmd {
    Cmd::new("setpriv", &fx.dir)
        .args(&[
            &format!("--reuid={USER}"),
            &format!("--regid={USER}"),
            "--clear-groups",
            "--",
        ])
        .arg_path(&runtime_bin())
        .args(args)
        .env("XDG_RUNTIME_DIR", xdg.to_str().unwrap())
}

/// A bundle the user can read (the per-test dir and the rootfs copy are
/// 0755) with the config of the user's own `spec --rootless`, plus the
/// user's XDG_RUNTIME_DIR (0700, theirs).
fn rootless_bundle(fx: &Fixture) -> (Bundle, PathBuf) {
    let mut ancestor = Some(fx.dir.as_path());
    while let Some(d) = ancestor {
        let mode = fs::metadata(d).unwrap().permissions().mode();
        assert!(
            mode & 0o001 != 0,
            "{} is not traversable by uid {USER}: set SPEC_TESTS_TMPDIR to a directory that is",
            d.display()
        );
        ancestor = d.parent();
    }
    let mut bundle = fx.bundle();
    let xdg = fx.dir.join("xdg");
    fs::create_dir(&xdg).unwrap();
    fs::set_permissions(&xdg, fs::Permissions::from_mode(0o700)).unwrap();
    std::os::unix::fs::chown(&xdg, Some(USER), Some(USER)).unwrap();
    // The user writes config.json itself.
    fs::remove_file(bundle.config_path()).unwrap();
    std::os::unix::fs::chown(&bundle.dir, Some(USER), Some(USER)).unwrap();
    as_user(fx, &xdg, &["spec", "--rootless"])
        .cwd(&bundle.dir)
        .run()
        .ok();
    let text = fs::read_to_string(bundle.config_path()).unwrap();
    bundle.config = serde_json::from_str(&text).unwrap();
    bundle.config["process"]["terminal"] = json!(false);
    bundle.add_env(&fx.marker_env());
    (bundle, xdg)
}

/// `run` of `sh -c script` as the user, foreground, default --root.
fn run_as_user(fx: &Fixture, bundle: &mut Bundle, xdg: &Path, script: &str) -> Output {
    bundle.set_sh(script);
    bundle.save();
    let id = fx.id("rl");
    as_user(
        fx,
        xdg,
        &["run", "--bundle", bundle.dir.to_str().unwrap(), &id],
    )
    .run()
}

// runc's --rootless auto: a non-root user gets a user namespace in which it
// is root (config-linux.md "User namespace mappings": container 0 -> host
// 1000, one id), and a container that runs to completion and is deleted.
#[test]
fn rootless_run_maps_the_user_to_root() {
    let fx = Fixture::new();
    let (mut bundle, xdg) = rootless_bundle(&fx);
    let out = run_as_user(
        &fx,
        &mut bundle,
        &xdg,
        "id -u; id -g; cat /proc/self/uid_map /proc/self/gid_map; touch /proc/x 2>/dev/null || echo ro-ok",
    )
    .ok();
    let lines: Vec<Vec<&str>> = out
        .stdout
        .lines()
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert_eq!(lines[0], ["0"], "uid inside: {}", out.stdout);
    assert_eq!(lines[1], ["0"], "gid inside: {}", out.stdout);
    assert_eq!(lines[2], ["0", "1000", "1"], "uid_map: {}", out.stdout);
    assert_eq!(lines[3], ["0", "1000", "1"], "gid_map: {}", out.stdout);
    fx.assert_no_residue();
}

// runtime.md "Lifecycle" and the runc CLI contract, as the user: create,
// state (state dir under $XDG_RUNTIME_DIR/berth, owned by the user), start,
// exec, ps, list, kill, delete, all on the user's own container.
#[test]
fn rootless_lifecycle_as_the_user() {
    let fx = Fixture::new();
    let (mut bundle, xdg) = rootless_bundle(&fx);
    bundle.set_args(&["sleep", "60"]);
    bundle.save();
    let id = fx.id("rl");
    let b = bundle.dir.to_str().unwrap().to_string();
    let rt = |args: &[&str]| as_user(&fx, &xdg, args).run();
    rt(&["create", "--bundle", &b, &id]).ok();

    // runc: the default root of a non-root user is $XDG_RUNTIME_DIR/runc.
    let root = xdg.join(if is_berth() { "berth" } else { "runc" });
    let state_dir = root.join(&id);
    let md = fs::metadata(&state_dir).expect("state dir under $XDG_RUNTIME_DIR");
    assert_eq!(md.uid(), USER, "state dir owned by the user");
    assert_eq!(
        fs::metadata(&root).unwrap().permissions().mode() & 0o077,
        0,
        "{} is private to the user",
        root.display()
    );
    let state: Value = serde_json::from_str(&rt(&["state", &id]).ok().stdout).unwrap();
    assert_eq!(state["status"], "created", "{state}");
    let pid = state["pid"].as_i64().unwrap() as i32;
    // No delegated cgroup here and no resources asked: the container stays
    // in the cgroups berth was started in (ours), none is made for it.
    assert_eq!(
        proc_cgroups(pid),
        proc_cgroups(std::process::id() as i32),
        "a rootless container without resources gets no cgroup of its own"
    );

    if is_berth() {
        // berth-only (runc re-execs its init, whose /proc the user owns):
        // berth's waiting init can only be entered by the host's root.
        rt(&["exec", &id, "true"]).fails_with(&["rootless", "started"]);
    }
    rt(&["start", &id]).ok();
    let state: Value = serde_json::from_str(&rt(&["state", &id]).ok().stdout).unwrap();
    assert_eq!(state["status"], "running", "{state}");
    // From the host: the container's root is the user.
    let status = fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let uids = status_field(&status, "Uid").unwrap();
    assert!(
        uids.split_whitespace().all(|u| u == "1000"),
        "host uids of the container process: {uids}"
    );

    let out = rt(&["exec", &id, "sh", "-c", "id -u; cat /proc/self/uid_map"]).ok();
    let words: Vec<&str> = out.stdout.split_whitespace().collect();
    assert_eq!(words, ["0", "0", "1000", "1"], "exec: {}", out.stdout);

    // berth-only: runc 1.1's ps reads the container's cgroup, which a
    // rootless container without delegation doesn't have; berth lists the
    // processes of its pid namespace.
    if is_berth() {
        let out = rt(&["ps", "--format", "json", &id]).ok();
        let pids: Vec<i32> = serde_json::from_str(&out.stdout).unwrap();
        assert!(pids.contains(&pid), "ps {pids:?} lacks the init {pid}");
        let exec = as_user(&fx, &xdg, &["exec", &id, "sleep", "30"]).spawn();
        let mut more: Vec<i32> = Vec::new();
        wait_until(std::time::Duration::from_secs(5), || {
            let out = rt(&["ps", "--format", "json", &id]).ok();
            more = serde_json::from_str(&out.stdout).unwrap();
            more.len() == 2
        });
        assert_eq!(more.len(), 2, "ps after exec: {more:?}");
        drop(exec);
    }

    let out = rt(&["list", "--quiet"]).ok();
    assert_eq!(out.stdout.trim(), id, "list: {}", out.stdout);

    rt(&["kill", &id, "KILL"]).ok();
    assert!(
        wait_until(std::time::Duration::from_secs(10), || {
            let st: Value =
                serde_json::from_str(&rt(&["state", &id]).ok().stdout).unwrap_or(Value::Null);
            st["status"] == "stopped"
        }),
        "the container did not stop"
    );
    rt(&["delete", &id]).ok();
    assert!(!state_dir.exists(), "state dir left after delete");
    rt(&["state", &id]).fails_with(berth_words(&["does not exist"]));
    fx.assert_no_residue();
}

// runtime.md "delete" and runc's `kill --all`: without a cgroup of its own
// the container's processes are still all found (its pid namespace), so
// `kill --all` reaches an exec'd process and `delete --force` leaves nothing.
#[test]
fn rootless_kill_all_and_force_delete() {
    berth_only!("runc 1.1's kill --all reads the cgroup a rootless container lacks");
    let fx = Fixture::new();
    let (mut bundle, xdg) = rootless_bundle(&fx);
    bundle.set_args(&["sleep", "60"]);
    bundle.save();
    let id = fx.id("rl");
    let b = bundle.dir.to_str().unwrap().to_string();
    let rt = |args: &[&str]| as_user(&fx, &xdg, args).run();
    rt(&["run", "--detach", "--bundle", &b, &id]).ok();
    rt(&["exec", "--detach", &id, "sleep", "61"]).ok();
    assert!(
        wait_until(std::time::Duration::from_secs(5), || fx
            .marked_processes()
            .len()
            == 2),
        "init and exec'd process: {:?}",
        fx.marked_processes()
    );
    rt(&["kill", "--all", &id, "KILL"]).ok();
    assert!(
        wait_until(std::time::Duration::from_secs(5), || fx
            .marked_processes()
            .is_empty()),
        "kill --all left {:?}",
        fx.marked_processes()
    );
    rt(&["delete", "--force", &id]).ok();
    assert_no_state_in(&xdg, &id);
    fx.assert_no_residue();

    // delete --force of a running one, with an exec'd process in it.
    let id = fx.id("rl");
    rt(&["run", "--detach", "--bundle", &b, &id]).ok();
    rt(&["exec", "--detach", &id, "sleep", "61"]).ok();
    rt(&["delete", "--force", &id]).ok();
    assert_no_state_in(&xdg, &id);
    fx.assert_no_residue();
}

fn assert_no_state_in(xdg: &Path, id: &str) {
    for name in ["berth", "runc"] {
        let dir = xdg.join(name).join(id);
        assert!(!dir.exists(), "state dir left: {}", dir.display());
    }
}

// runc's rootless check ("rootless container requires user namespaces"): an
// unprivileged user can't create the other namespaces without one; the error
// says so before anything exists.
#[test]
fn rootless_without_user_namespace_fails() {
    let fx = Fixture::new();
    let (mut bundle, xdg) = rootless_bundle(&fx);
    bundle.remove_namespace("user");
    let linux = bundle.linux().as_object_mut().unwrap();
    linux.remove("uidMappings");
    linux.remove("gidMappings");
    let out = run_as_user(&fx, &mut bundle, &xdg, "true");
    out.fails_with(berth_words(&["rootless", "user namespace"]));
    assert_no_state(&xdg);
    fx.assert_no_residue();
}

// config-linux.md "Network Devices": moving a host device takes
// CAP_NET_ADMIN on the host, which a rootless user lacks: create fails
// naming the field and leaves nothing behind (runc 1.1.5 ignores the field).
#[test]
fn rootless_net_devices_fail() {
    berth_only!("runc 1.1.5 ignores linux.netDevices");
    let fx = Fixture::new();
    let (mut bundle, xdg) = rootless_bundle(&fx);
    bundle.set_namespace("network", None);
    bundle.linux()["netDevices"] = json!({ "eth0": {} });
    let out = run_as_user(&fx, &mut bundle, &xdg, "true");
    out.fails_with(&["linux.netDevices", "rootless"]);
    assert_no_state(&xdg);
    fx.assert_no_residue();
}

// runc --rootless: cgroup permission errors are ignored only while no
// resource is asked for; a memory limit without a writable (delegated)
// cgroup is an error naming the field, and nothing is left behind.
#[test]
fn rootless_memory_limit_without_writable_cgroup_fails() {
    berth_only!("runc 1.1 words it \"cannot set memory limit\" after making the state dir");
    let fx = Fixture::new();
    let (mut bundle, xdg) = rootless_bundle(&fx);
    bundle.linux()["resources"] = json!({"memory": {"limit": 67108864}});
    let out = run_as_user(&fx, &mut bundle, &xdg, "true");
    out.fails_with(&["linux.resources.memory", "not writable"]);
    assert_no_state(&xdg);
    fx.assert_no_residue();
}

// config-linux.md "User namespace mappings": a user may write only its own
// id itself; any other range goes through newuidmap, which refuses a range
// /etc/subuid doesn't grant: a clear error naming the field, no residue.
#[test]
fn rootless_ungranted_uid_range_fails() {
    berth_only!("runc's message comes from its nsexec helper");
    let fx = Fixture::new();
    let (mut bundle, xdg) = rootless_bundle(&fx);
    bundle.linux()["uidMappings"] = json!([
        {"containerID": 0, "hostID": USER, "size": 1},
        {"containerID": 1, "hostID": 4000000000u32, "size": 1}
    ]);
    let out = run_as_user(&fx, &mut bundle, &xdg, "true");
    out.fails_with(&["linux.uidMappings", "newuidmap"]);
    assert_no_state(&xdg);
    fx.assert_no_residue();
}

// config.md "POSIX process" rlimits / oomScoreAdj: a user can't raise a hard
// limit or lower its oom_score_adj; berth refuses both at create, by name.
#[test]
fn rootless_limits_the_user_cannot_set_fail() {
    berth_only!("runc fails these later, in its init, with other words");
    let fx = Fixture::new();
    let (mut bundle, xdg) = rootless_bundle(&fx);
    let (_, hard) =
        nix::sys::resource::getrlimit(nix::sys::resource::Resource::RLIMIT_NOFILE).unwrap();
    if hard < u64::MAX {
        bundle.process()["rlimits"] =
            json!([{"type": "RLIMIT_NOFILE", "soft": 1024, "hard": hard + 1}]);
        let out = run_as_user(&fx, &mut bundle, &xdg, "true");
        out.fails_with(&["process.rlimits", "RLIMIT_NOFILE"]);
        assert_no_state(&xdg);
        bundle.process().as_object_mut().unwrap().remove("rlimits");
    }
    let own: i32 = fs::read_to_string("/proc/self/oom_score_adj")
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    if own > -1000 {
        bundle.process()["oomScoreAdj"] = json!(own - 1);
        let out = run_as_user(&fx, &mut bundle, &xdg, "true");
        out.fails_with(&["oomScoreAdj"]);
        assert_no_state(&xdg);
    }
    fx.assert_no_residue();
}

/// Nothing under the user's state root (a failed command leaves nothing).
fn assert_no_state(xdg: &Path) {
    let root = xdg.join("berth");
    let left: Vec<_> = fs::read_dir(&root)
        .map(|d| d.flatten().map(|e| e.path()).collect())
        .unwrap_or_default();
    assert!(left.is_empty(), "left under {}: {left:?}", root.display());
}
