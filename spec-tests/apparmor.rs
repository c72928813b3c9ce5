//! config.md "apparmorProfile" and the contract's `exec --apparmor`: the
//! process runs confined by the named AppArmor profile.
//!
//! These need a kernel with AppArmor enabled and `apparmor_parser` (Debian's
//! `apparmor` package, which spec-tests/run installs); where AppArmor is not
//! enabled (the project's host) they print `SKIP apparmor: ...` and return.
//! spec-tests/run runs them in the v2 guest, whose kernel has it. The host's
//! refusal ("not enabled on this host") is checked in process_fields.rs and
//! exec.rs.

use crate::harness::*;
use serde_json::json;
use std::path::Path;
use std::process::Command;

const SECURITYFS: &str = "/sys/kernel/security";

/// Whether these tests can run; the reason they cannot otherwise. Mounts
/// securityfs when nothing did (a guest without systemd): the profiles are
/// loaded and removed through it.
fn apparmor_ready() -> Result<(), String> {
    let enabled = std::fs::read_to_string("/sys/module/apparmor/parameters/enabled")
        .is_ok_and(|s| s.trim() == "Y");
    if !enabled {
        return Err("AppArmor is not enabled in this kernel".into());
    }
    let aa = Path::new(SECURITYFS).join("apparmor");
    if !aa.exists() {
        let st = Command::new("mount")
            .args(["-t", "securityfs", "securityfs", SECURITYFS])
            .status()
            .expect("run mount");
        assert!(st.success(), "mount securityfs on {SECURITYFS}");
    }
    assert!(
        aa.exists(),
        "{} missing with AppArmor enabled",
        aa.display()
    );
    Ok(())
}

macro_rules! need_apparmor {
    () => {
        berth_only!("runc's AppArmor support is not what this suite validates");
        if let Err(why) = apparmor_ready() {
            eprintln!("SKIP apparmor: {why}");
            return;
        }
    };
}

/// A profile loaded for one test and removed when it ends, even on failure.
struct Profile {
    name: String,
}

impl Profile {
    /// Enforcing, allows everything berth and the tests do except reading
    /// any file named /aa-secret (a path as the container sees it).
    fn load(what: &str) -> Self {
        let name = format!("berth-test-{}-{what}", std::process::id());
        let text = format!(
            "abi <abi/3.0>,\n\
             profile {name} flags=(attach_disconnected,mediate_deleted) {{\n\
               file,\n  capability,\n  network,\n  signal,\n  ptrace,\n  unix,\n\
               mount,\n  umount,\n  pivot_root,\n  dbus,\n\
               deny /aa-secret r,\n\
             }}\n"
        );
        // -r: load or replace; -K: never write the cache (/ may be read-only).
        let out = Cmd::new("apparmor_parser", &std::env::temp_dir())
            .args(&["-r", "-K"])
            .stdin(text.as_bytes())
            .run();
        assert!(
            out.status.success(),
            "apparmor_parser (install Debian's apparmor package): {}",
            out.describe()
        );
        Profile { name }
    }
}

impl Drop for Profile {
    fn drop(&mut self) {
        let remove = Path::new(SECURITYFS).join("apparmor/.remove");
        if let Err(e) = std::fs::write(&remove, &self.name) {
            eprintln!("remove AppArmor profile {}: {e}", self.name);
        }
    }
}

/// The label of the calling process, as a shell in the container prints it.
const SHOW_LABEL: &str =
    "cat /proc/self/attr/apparmor/current 2>/dev/null || cat /proc/self/attr/current";

fn host_label(pid: i32) -> String {
    std::fs::read_to_string(format!("/proc/{pid}/attr/apparmor/current"))
        .or_else(|_| std::fs::read_to_string(format!("/proc/{pid}/attr/current")))
        .unwrap_or_else(|e| panic!("read the AppArmor label of {pid}: {e}"))
        .trim_end_matches(['\n', '\0'])
        .to_string()
}

// config.md "apparmorProfile": the container's process runs under the
// profile (its label inside and seen from the host) and the profile is
// enforced: the one denied read fails, others work. noNewPrivileges is on
// (berth spec's default), which AppArmor lets this transition through.
#[test]
fn profile_confines_the_container() {
    need_apparmor!();
    let fx = Fixture::new();
    let profile = Profile::load("run");
    let mut b = fx.bundle();
    assert_eq!(b.process()["noNewPrivileges"], json!(true));
    b.process()["apparmorProfile"] = json!(profile.name);
    b.write_rootfs_file("aa-secret", "secret\n");
    b.write_rootfs_file("aa-open", "open\n");
    let out = fx.run_sh(
        &mut b,
        &format!(
            "{SHOW_LABEL}; echo; cat /aa-open; cat /aa-secret 2>&1 && echo READ-THE-SECRET; true"
        ),
    );
    let mut lines = out.lines();
    assert_eq!(
        lines.next(),
        Some(format!("{} (enforce)", profile.name).as_str()),
        "{out}"
    );
    assert!(out.contains("\nopen\n"), "{out}");
    assert!(out.contains("Permission denied"), "{out}");
    assert!(!out.contains("READ-THE-SECRET"), "{out}");

    // Without noNewPrivileges and as a non-root user (the write happens
    // before switch_user drops root): the same profile.
    let mut b2 = fx.bundle();
    b2.process()["apparmorProfile"] = json!(profile.name);
    b2.process()["noNewPrivileges"] = json!(false);
    b2.process()["user"] = json!({"uid": 1000, "gid": 1000});
    let out = fx.run_sh(&mut b2, &format!("{SHOW_LABEL}; echo; id -u"));
    assert_eq!(
        out.lines().filter(|l| !l.is_empty()).collect::<Vec<_>>(),
        [format!("{} (enforce)", profile.name).as_str(), "1000"],
        "{out}"
    );

    // Seen from the host: the init, once started, carries the profile.
    let id = fx.id("aa");
    b.set_args(&["sleep", "1000"]);
    fx.create(&b, &id, &[]).ok();
    let pid = fx.pid(&id);
    // Before start the init is still berth's, unconfined: the profile
    // applies at its execve.
    assert_eq!(host_label(pid), "unconfined");
    fx.start(&id).ok();
    assert!(
        wait_until(std::time::Duration::from_secs(5), || host_label(pid)
            .starts_with(&profile.name)),
        "host sees {:?}",
        host_label(pid)
    );
    fx.kill(&id, "KILL").ok();
    fx.wait_status(&id, "stopped");
    fx.delete(&id).ok();
    fx.assert_no_residue();
}

// Contract "exec" `--apparmor`: the exec'd process runs under the given
// profile, replacing the container's; without it the process has the
// container's (here none: unconfined); `--process` with apparmorProfile too.
#[test]
fn exec_apparmor_runs_the_process_under_the_profile() {
    need_apparmor!();
    let fx = Fixture::new();
    let profile = Profile::load("exec");
    let mut b = fx.bundle();
    b.write_rootfs_file("aa-secret", "secret\n");
    b.set_args(&["sleep", "1000"]);
    let id = fx.id("aaexec");
    fx.create(&b, &id, &[]).ok();
    fx.start(&id).ok();
    assert_eq!(host_label(fx.pid(&id)), "unconfined");

    let exec = |flags: &[&str], script: &str| {
        let mut argv = vec!["exec"];
        argv.extend_from_slice(flags);
        argv.extend_from_slice(&[&id, "sh", "-c", script]);
        fx.rt(&argv).run().ok().stdout
    };
    let plain = exec(&[], SHOW_LABEL);
    assert_eq!(plain.trim_end_matches(['\n', '\0']), "unconfined");
    let confined = exec(
        &["--apparmor", &profile.name],
        &format!("{SHOW_LABEL}; echo; cat /aa-secret 2>&1; true"),
    );
    assert!(
        confined.starts_with(&format!("{} (enforce)", profile.name)),
        "{confined}"
    );
    assert!(confined.contains("Permission denied"), "{confined}");

    let mut p = b.process().clone();
    p["args"] = json!(["sh", "-c", SHOW_LABEL]);
    p["apparmorProfile"] = json!(profile.name);
    let file = fx.dir.join("aa-process.json");
    std::fs::write(&file, serde_json::to_vec(&p).unwrap()).unwrap();
    let out = fx
        .rt(&["exec", "--process", file.to_str().unwrap(), &id])
        .run()
        .ok()
        .stdout;
    assert!(out.starts_with(&profile.name), "{out}");

    // A profile that is not loaded: exec fails naming it, the container
    // keeps running with nothing left behind.
    let missing = format!("{}-missing", profile.name);
    fx.rt(&["exec", "--apparmor", &missing, &id, "true"])
        .run()
        .fails_with(&["process.apparmorProfile", &missing]);
    assert_eq!(fx.status(&id), "running");
    fx.kill(&id, "KILL").ok();
    fx.wait_status(&id, "stopped");
    fx.delete(&id).ok();
    fx.assert_no_residue();
}

// A profile the kernel does not have: create fails naming the field and
// the profile, leaving nothing behind (the process must not start
// unconfined).
#[test]
fn unknown_profile_fails_create() {
    need_apparmor!();
    let fx = Fixture::new();
    let name = format!("berth-test-{}-not-loaded", std::process::id());
    let mut b = fx.bundle();
    b.process()["apparmorProfile"] = json!(name);
    fx.create(&b, &fx.id("aamiss"), &[])
        .fails_with(&["process.apparmorProfile", &name]);
    fx.assert_no_residue();
}
