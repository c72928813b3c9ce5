//! The process model the brief asks of `create`: the container's init waits
//! for `start` without reaching host resources through berth: not dumpable
//! until exec, no stray host fds (only stdio, `--preserve-fds` and its own
//! start socket), no host cwd; and its own session keyring unless
//! `--no-new-keyring`.

use std::fs;
use std::path::Path;

use serde_json::json;

use crate::harness::*;

/// The fds of `pid` with what they point at.
fn fds_of(pid: i32) -> Vec<(i32, String)> {
    let mut fds: Vec<(i32, String)> = fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .flatten()
        .filter_map(|e| {
            let n: i32 = e.file_name().to_str()?.parse().ok()?;
            let target = fs::read_link(e.path()).ok()?;
            Some((n, target.to_string_lossy().into_owned()))
        })
        .collect();
    fds.sort();
    fds
}

/// `bash -c` with fds 3 and 4 open on a host file (not close-on-exec), then
/// exec of the runtime with `args`: a caller that leaks fds to berth.
fn with_leaked_fds(fx: &Fixture, leaked: &Path, args: &[&str]) -> Output {
    let mut script = format!(
        "exec 3<{l} 4<{l}; exec {rt} --root {root}",
        l = leaked.display(),
        rt = runtime_bin().display(),
        root = fx.root.display()
    );
    for a in args {
        script.push_str(&format!(" '{a}'"));
    }
    Cmd::new("bash", &fx.dir).args(&["-c", &script]).run()
}

// A created container's init holds only stdio, the preserved fds and its
// start socket, and its cwd and root are the container's rootfs.
#[test]
fn created_init_holds_no_host_fds_or_cwd() {
    let fx = Fixture::new();
    let mut b = fx.bundle();
    b.set_args(&["sleep", "1000"]);
    b.save();
    let leaked = fx.dir.join("host-secret");
    fs::write(&leaked, "host only\n").unwrap();
    let id = fx.id("hygiene");
    with_leaked_fds(
        &fx,
        &leaked,
        &["create", "--bundle", b.dir.to_str().unwrap(), &id],
    )
    .ok();
    let pid = fx.pid(&id);
    let fds = fds_of(pid);
    for (n, target) in &fds {
        if *n <= 2 {
            continue;
        }
        assert!(
            target.starts_with("socket:") || target.starts_with("anon_inode:"),
            "init of a created container holds fd {n} -> {target}: {fds:?}"
        );
        assert!(!target.contains("host-secret"), "leaked fd {n} -> {target}");
    }
    // The links read "/" from here (another mount namespace), so compare
    // what they lead to: process.cwd is "/", so cwd and root are the rootfs.
    use std::os::unix::fs::MetadataExt;
    let id_of = |p: &str| {
        let m = fs::metadata(p).unwrap_or_else(|e| panic!("stat {p}: {e}"));
        (m.dev(), m.ino())
    };
    let rootfs = id_of(b.rootfs().to_str().unwrap());
    assert_eq!(
        id_of(&format!("/proc/{pid}/cwd")),
        rootfs,
        "init cwd is not the container's /"
    );
    assert_eq!(
        id_of(&format!("/proc/{pid}/root")),
        rootfs,
        "init root is not the rootfs"
    );
    fx.delete(&id).ok();
    fx.assert_no_residue();
}

// runc's --preserve-fds N: fds 3 .. 3+N of the caller reach the container's
// process, and no other fd does. Seen from the host, on the running process
// (a shell listing its own fds would see its pipeline's pipes).
#[test]
fn preserve_fds_passes_exactly_n() {
    let fx = Fixture::new();
    let mut b = fx.bundle();
    b.set_args(&["sleep", "1000"]);
    b.save();
    let preserved = fx.dir.join("preserved");
    fs::write(&preserved, "through fd 3\n").unwrap();
    let id = fx.id("preserve");
    let bundle = b.dir.to_str().unwrap();
    with_leaked_fds(
        &fx,
        &preserved,
        &["run", "-d", "--preserve-fds", "1", "--bundle", bundle, &id],
    )
    .ok();
    let pid = fx.pid(&id);
    let fds = fds_of(pid);
    let numbers: Vec<i32> = fds.iter().map(|(n, _)| *n).collect();
    assert_eq!(numbers, [0, 1, 2, 3], "{fds:?}");
    assert!(fds[3].1.ends_with("/preserved"), "{fds:?}");
    fx.rt(&["delete", "--force", &id]).run().ok();
    fx.assert_no_residue();
}

// Without --preserve-fds, an fd the caller leaked does not reach the container.
#[test]
fn leaked_fds_do_not_reach_the_container() {
    let fx = Fixture::new();
    let mut b = fx.bundle();
    b.set_args(&["sleep", "1000"]);
    b.save();
    let leaked = fx.dir.join("leaked");
    fs::write(&leaked, "x").unwrap();
    let id = fx.id("noleak");
    with_leaked_fds(
        &fx,
        &leaked,
        &["run", "-d", "--bundle", b.dir.to_str().unwrap(), &id],
    )
    .ok();
    let pid = fx.pid(&id);
    let fds = fds_of(pid);
    let numbers: Vec<i32> = fds.iter().map(|(n, _)| *n).collect();
    assert_eq!(numbers, [0, 1, 2], "{fds:?}");
    fx.rt(&["delete", "--force", &id]).run().ok();
    fx.assert_no_residue();
}

// Not dumpable until exec: /proc/PID files of a non-dumpable process belong
// to (host) root, so with a user namespace that maps root to 100000 their
// owner tells. While created: root; once the user's program runs: 100000.
#[test]
fn init_is_not_dumpable_until_exec() {
    let fx = Fixture::new();
    let mut b = fx.bundle();
    b.set_namespace("user", None);
    b.linux()["uidMappings"] = json!([{"containerID": 0, "hostID": 100000, "size": 65536}]);
    b.linux()["gidMappings"] = json!([{"containerID": 0, "hostID": 100000, "size": 65536}]);
    b.set_args(&["sleep", "1000"]);
    // The rootfs must be usable by the mapped root.
    let out = Cmd::new("chown", &fx.dir)
        .args(&["-R", "100000:100000"])
        .arg_path(&b.rootfs())
        .run();
    assert!(out.status.success(), "{}", out.describe());
    let id = fx.id("dumpable");
    fx.create(&b, &id, &[]).ok();
    let pid = fx.pid(&id);
    let owner = |pid: i32| {
        use std::os::unix::fs::MetadataExt;
        fs::metadata(format!("/proc/{pid}/environ")).unwrap().uid()
    };
    assert_eq!(owner(pid), 0, "the waiting init is dumpable");
    fx.start(&id).ok();
    assert!(
        wait_until(std::time::Duration::from_secs(5), || owner(pid) == 100000),
        "after exec the process should be dumpable again (owner {})",
        owner(pid)
    );
    fx.kill(&id, "KILL").ok();
    fx.wait_status(&id, "stopped");
    fx.delete(&id).ok();
    fx.assert_no_residue();
}

fn host_keyrings_named(name: &str) -> usize {
    fs::read_to_string("/proc/keys")
        .unwrap_or_default()
        .lines()
        .filter(|l| l.contains(" keyring ") && l.contains(name))
        .count()
}

// runc's create/run: a new session keyring for the container (named after
// it), or none with --no-new-keyring.
#[test]
fn session_keyring_and_no_new_keyring() {
    berth_only!(
        "the keyring name is berth's (runc names it after the container too, differently in 1.1)"
    );
    if !Path::new("/proc/keys").exists() {
        eprintln!("SKIP session_keyring_and_no_new_keyring: no /proc/keys on this kernel");
        return;
    }
    let fx = Fixture::new();
    for (flag, want) in [(None, 1), (Some("--no-new-keyring"), 0)] {
        let mut b = fx.bundle();
        b.set_args(&["sleep", "1000"]);
        let id = fx.id("keyring");
        let extra: Vec<&str> = flag.into_iter().collect();
        fx.create(&b, &id, &extra).ok();
        assert_eq!(host_keyrings_named(&format!("_ses.{id}")), want, "{flag:?}");
        fx.delete(&id).ok();
    }
    fx.assert_no_residue();
}
