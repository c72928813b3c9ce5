//! config.md "selinuxLabel", config-linux.md "mountLabel" and the
//! contract's `exec --process-label`: the process runs in the SELinux
//! context it names, the container's mounts carry the mount label.
//!
//! These need a kernel with SELinux enabled and a policy (Debian's
//! `selinux-policy-default`, `policycoreutils` for load_policy, which
//! spec-tests/run installs); where SELinux is not enabled (the project's
//! host) they print `SKIP selinux: ...` and return. spec-tests/run runs them
//! in the v2 guest booted with SELinux among its LSMs. The policy is loaded
//! here and the guest stays permissive (its virtio-fs root has no labels):
//! permissive still performs every context transition and mount labelling,
//! which is what these tests look at. The host's refusal ("not enabled on
//! this host") is checked in process_fields.rs and exec.rs.

use crate::harness::*;
use serde_json::json;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

/// Domains and types of Debian's reference policy (the virt module's
/// sandboxed guests); the MCS categories make the labels contain a comma,
/// which mount options must quote.
const PROCESS_LABEL: &str = "system_u:system_r:svirt_t:s0:c1,c2";
const EXEC_LABEL: &str = "system_u:system_r:svirt_t:s0:c3,c4";
const MOUNT_LABEL: &str = "system_u:object_r:svirt_image_t:s0:c1,c2";
const BAD_LABEL: &str = "nosuch_u:nosuch_r:nosuch_t:s0";

/// Whether these tests can run; the reason they cannot otherwise. Mounts
/// selinuxfs when nothing did (a guest without systemd) and loads the
/// policy when none is (an unlabelled process reads "kernel" then).
fn selinux_ready() -> Result<(), String> {
    let fs = Path::new("/sys/fs/selinux");
    // The kernel makes the mount point only when SELinux is on.
    if !fs.is_dir() {
        return Err("SELinux is not enabled in this kernel".into());
    }
    if !fs.join("enforce").exists() {
        let st = Command::new("mount")
            .args(["-t", "selinuxfs", "selinuxfs", "/sys/fs/selinux"])
            .status()
            .expect("run mount");
        assert!(st.success(), "mount selinuxfs on /sys/fs/selinux");
    }
    static LOAD: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _one_at_a_time = LOAD.lock().unwrap_or_else(|e| e.into_inner());
    if !own_label().contains(':') {
        let out = Command::new("load_policy").output();
        let ok = out.as_ref().is_ok_and(|o| o.status.success());
        assert!(
            ok,
            "load_policy (install selinux-policy-default and policycoreutils): {out:?}"
        );
    }
    assert!(own_label().contains(':'), "no SELinux policy is loaded");
    Ok(())
}

macro_rules! need_selinux {
    () => {
        berth_only!("runc's SELinux support is not what this suite validates");
        if let Err(why) = selinux_ready() {
            eprintln!("SKIP selinux: {why}");
            return;
        }
    };
}

fn clean(s: &str) -> String {
    s.trim_end_matches(['\n', '\0']).to_string()
}

/// The test's own context: berth's, which the container's init keeps
/// until its execve.
fn own_label() -> String {
    clean(&std::fs::read_to_string("/proc/self/attr/current").unwrap_or_default())
}

fn host_label(pid: i32) -> String {
    clean(
        &std::fs::read_to_string(format!("/proc/{pid}/attr/current"))
            .unwrap_or_else(|e| panic!("read the SELinux context of {pid}: {e}")),
    )
}

/// security.selinux of a file, read from the host.
fn file_label(path: &Path) -> String {
    let c = std::ffi::CString::new(path.as_os_str().as_encoded_bytes()).unwrap();
    let mut buf = [0u8; 256];
    // SAFETY: valid C strings and a buffer of the given length.
    let n = unsafe {
        libc::getxattr(
            c.as_ptr(),
            c"security.selinux".as_ptr(),
            buf.as_mut_ptr().cast(),
            buf.len(),
        )
    };
    assert!(
        n >= 0,
        "getxattr security.selinux of {}: {}",
        path.display(),
        std::io::Error::last_os_error()
    );
    clean(&String::from_utf8_lossy(&buf[..n as usize]))
}

/// The SELinux label of a key (KEYCTL_GET_SECURITY), by its serial.
fn key_label(serial: i32) -> String {
    let mut buf = [0u8; 256];
    // SAFETY: keyctl writes at most buf.len() bytes into buf.
    let n = unsafe {
        libc::syscall(
            libc::SYS_keyctl,
            libc::KEYCTL_GET_SECURITY,
            serial,
            buf.as_mut_ptr(),
            buf.len(),
        )
    };
    assert!(
        n >= 0,
        "KEYCTL_GET_SECURITY {serial:x}: {}",
        std::io::Error::last_os_error()
    );
    clean(&String::from_utf8_lossy(
        &buf[..(n as usize).min(buf.len())],
    ))
}

// config.md "selinuxLabel": the container's process runs in the label, seen
// from inside and from the host; before start the init is still berth's
// (the label applies at its execve). The session keyring berth makes is
// created with the label too (as runc's).
#[test]
fn process_label_is_the_containers_context() {
    need_selinux!();
    let fx = Fixture::new();
    let mut b = fx.bundle();
    b.process()["selinuxLabel"] = json!(PROCESS_LABEL);
    let out = fx.run_sh(&mut b, "cat /proc/self/attr/current");
    assert_eq!(clean(&out), PROCESS_LABEL);

    // As a non-root user without noNewPrivileges: the write happens before
    // switch_user drops root.
    let mut b2 = fx.bundle();
    b2.process()["selinuxLabel"] = json!(PROCESS_LABEL);
    b2.process()["noNewPrivileges"] = json!(false);
    b2.process()["user"] = json!({"uid": 1000, "gid": 1000});
    let out = fx.run_sh(&mut b2, "cat /proc/self/attr/current; echo; id -u");
    assert_eq!(
        out.lines().map(clean).collect::<Vec<_>>(),
        [PROCESS_LABEL, "1000"],
        "{out}"
    );

    let id = fx.id("se");
    b.set_args(&["sleep", "1000"]);
    fx.create(&b, &id, &[]).ok();
    let pid = fx.pid(&id);
    assert_eq!(host_label(pid), own_label());
    // The keyring is root's (no user namespace), so the host sees it too.
    let keys = std::fs::read_to_string("/proc/keys").unwrap();
    let serial = keys
        .lines()
        .find(|l| l.contains(&format!("_ses.{id}")))
        .and_then(|l| l.split_whitespace().next())
        .and_then(|s| i32::from_str_radix(s, 16).ok())
        .unwrap_or_else(|| panic!("no session keyring for {id} in /proc/keys: {keys}"));
    assert_eq!(key_label(serial), PROCESS_LABEL);
    fx.start(&id).ok();
    assert!(
        wait_until(Duration::from_secs(5), || host_label(pid) == PROCESS_LABEL),
        "host sees {:?}",
        host_label(pid)
    );
    fx.kill(&id, "KILL").ok();
    fx.wait_status(&id, "stopped");
    fx.delete(&id).ok();
    fx.assert_no_residue();
}

// config-linux.md "mountLabel": the container's tmpfs and devpts mounts are
// mounted with context=LABEL (quoted: the label has a comma), the masking
// tmpfs too, mqueue's root carries the label; proc and sysfs cannot be
// labelled that way and are not.
#[test]
fn mount_label_labels_the_containers_mounts() {
    need_selinux!();
    let fx = Fixture::new();
    let mut b = fx.bundle();
    b.linux()["mountLabel"] = json!(MOUNT_LABEL);
    let out = fx.run_sh(&mut b, "cat /proc/self/mountinfo");
    let mount = |point: &str| {
        out.lines()
            .find(|l| l.split(' ').nth(4) == Some(point))
            .unwrap_or_else(|| panic!("no {point} in mountinfo: {out}"))
            .to_string()
    };
    let context = format!("context=\"{MOUNT_LABEL}\"");
    for point in ["/dev", "/dev/shm", "/dev/pts", "/sys/firmware"] {
        assert!(mount(point).contains(&context), "{}", mount(point));
    }
    for point in ["/proc", "/sys"] {
        assert!(!mount(point).contains("context="), "{}", mount(point));
    }

    // From the host, in the created container's mount namespace.
    let id = fx.id("semnt");
    b.set_args(&["sleep", "1000"]);
    fx.create(&b, &id, &[]).ok();
    let root = format!("/proc/{}/root", fx.pid(&id));
    for path in ["dev", "dev/shm", "dev/mqueue"] {
        assert_eq!(
            file_label(&Path::new(&root).join(path)),
            MOUNT_LABEL,
            "{path}"
        );
    }
    fx.kill(&id, "KILL").ok();
    fx.wait_status(&id, "stopped");
    fx.delete(&id).ok();
    fx.assert_no_residue();
}

// Contract "exec" `--process-label`: the exec'd process runs in the given
// label, replacing the container's; without it the process has the
// container's (here berth's, as none was set); `--process` with
// selinuxLabel too; a label the policy rejects fails exec naming it and
// leaves the container running.
#[test]
fn exec_process_label_runs_the_process_in_the_label() {
    need_selinux!();
    let fx = Fixture::new();
    let mut b = fx.bundle();
    b.set_args(&["sleep", "1000"]);
    let id = fx.id("seexec");
    fx.create(&b, &id, &[]).ok();
    fx.start(&id).ok();
    let exec = |flags: &[&str]| {
        let mut argv = vec!["exec"];
        argv.extend_from_slice(flags);
        argv.extend_from_slice(&[&id, "cat", "/proc/self/attr/current"]);
        clean(&fx.rt(&argv).run().ok().stdout)
    };
    assert_eq!(exec(&[]), own_label());
    assert_eq!(exec(&["--process-label", EXEC_LABEL]), EXEC_LABEL);

    let mut p = b.process().clone();
    p["args"] = json!(["cat", "/proc/self/attr/current"]);
    p["selinuxLabel"] = json!(PROCESS_LABEL);
    let file = fx.dir.join("se-process.json");
    std::fs::write(&file, serde_json::to_vec(&p).unwrap()).unwrap();
    let out = fx
        .rt(&["exec", "--process", file.to_str().unwrap(), &id])
        .run()
        .ok()
        .stdout;
    assert_eq!(clean(&out), PROCESS_LABEL);
    // The flag wins over the file's label.
    assert_eq!(
        clean(
            &fx.rt(&[
                "exec",
                "--process",
                file.to_str().unwrap(),
                "--process-label",
                EXEC_LABEL,
                &id
            ])
            .run()
            .ok()
            .stdout
        ),
        EXEC_LABEL
    );

    fx.rt(&["exec", "--process-label", BAD_LABEL, &id, "true"])
        .run()
        .fails_with(&["process.selinuxLabel", BAD_LABEL]);
    assert_eq!(fx.status(&id), "running");
    fx.kill(&id, "KILL").ok();
    fx.wait_status(&id, "stopped");
    fx.delete(&id).ok();
    fx.assert_no_residue();
}

// A label the loaded policy does not know: create fails naming the field and
// the label, leaving nothing behind (the process must not start in berth's
// context, the mounts must not go unlabelled).
#[test]
fn invalid_labels_fail_create() {
    need_selinux!();
    let fx = Fixture::new();
    let mut b = fx.bundle();
    b.process()["selinuxLabel"] = json!(BAD_LABEL);
    fx.create(&b, &fx.id("sebad"), &[])
        .fails_with(&["process.selinuxLabel", BAD_LABEL]);
    fx.assert_no_residue();

    let mut b = fx.bundle();
    b.linux()["mountLabel"] = json!(BAD_LABEL);
    fx.create(&b, &fx.id("sebadm"), &[])
        .fails_with(&["linux.mountLabel", BAD_LABEL]);
    fx.assert_no_residue();
}
