//! config-linux.md "Device allowlist" enforced by the kernel on every layout:
//! on v1 and hybrid through the devices controller (devices.allow/deny), on
//! pure cgroup v2 through the eBPF device program berth attaches to the
//! container's cgroup. The rules are the config's followed by runc's
//! defaults; the last rule that matches a request decides, and a request no
//! rule matches is denied.
//!
//! The container gets CAP_MKNOD so it can make nodes the allowlist doesn't
//! name (mknod of any node is one of the defaults, as in runc), and
//! CAP_SYSLOG so opening /dev/kmsg (c 1:11) for reading depends on the
//! device rules alone (the kernel's dmesg_restrict asks for CAP_SYSLOG;
//! opening it write-only asks for nothing). Opening `b 8:0` with no such
//! disk fails with ENXIO when the rules allow it: "Operation not permitted"
//! is the allowlist's answer only.

use std::path::{Path, PathBuf};

use serde_json::{json, Value};

use super::{controller_dir, kill_and_delete};
use crate::harness::*;

const EPERM: &str = "Operation not permitted";

/// A bundle whose process may mknod and read the kernel log, with `rules`
/// after the default config's deny-all.
fn bundle_with(fx: &Fixture, rules: &[Value]) -> Bundle {
    let mut b = fx.bundle();
    // The nodes are made in the container's /tmp.
    b.set_readonly(false);
    let caps = b.process()["capabilities"].clone();
    for set in ["bounding", "effective", "permitted"] {
        let mut list: Vec<Value> = caps[set].as_array().cloned().unwrap_or_default();
        for cap in ["CAP_MKNOD", "CAP_SYSLOG"] {
            if !list.iter().any(|c| c == cap) {
                list.push(json!(cap));
            }
        }
        b.process()["capabilities"][set] = json!(list);
    }
    let devices = b.linux()["resources"]["devices"]
        .as_array_mut()
        .expect("the default config has a device list");
    devices.extend(rules.iter().cloned());
    b
}

/// Shell lines printing "<what> ok", "<what> EPERM" or the error for
/// opening `path` for reading (`<`) or writing (`>`). A node without a
/// driver behind it (ENXIO, ENODEV) passed the allowlist: "ok" too.
fn probe(what: &str, redirect: &str, path: &str) -> String {
    format!(
        "if err=$( (: {redirect} {path}) 2>&1 ); then echo '{what} ok'; \
         else case \"$err\" in *'{EPERM}'*) echo '{what} EPERM';; \
         *'No such device'*) echo '{what} ok';; *) echo \"{what} $err\";; esac; fi\n"
    )
}

/// The script making the test nodes, then probing them and the defaults.
fn script() -> String {
    let mut s = String::from("mknod /tmp/sdx b 8 0 && mknod /tmp/kmsg c 1 11 || exit 1\n");
    for (what, redirect, path) in [
        ("null-r", "<", "/dev/null"),
        ("null-w", ">", "/dev/null"),
        ("zero-r", "<", "/dev/zero"),
        ("zero-w", ">", "/dev/zero"),
        ("sdx-r", "<", "/tmp/sdx"),
        ("kmsg-r", "<", "/tmp/kmsg"),
        ("kmsg-w", ">", "/tmp/kmsg"),
    ] {
        s.push_str(&probe(what, redirect, path));
    }
    s
}

fn lines(out: &str) -> Vec<&str> {
    out.lines().collect()
}

/// The host's view of the container's device rules: on v2 how many device
/// programs are attached to its cgroup (BPF_PROG_QUERY), on v1 the
/// devices.list of its devices cgroup.
enum HostView {
    V2 { programs: u32 },
    V1 { list: String },
}

fn host_view(pid: i32) -> HostView {
    if is_cgroup2_only() {
        let (_, _, path) = proc_cgroups(pid)
            .into_iter()
            .find(|(hid, _, _)| hid == "0")
            .expect("a unified cgroup");
        let dir = PathBuf::from("/sys/fs/cgroup").join(path.trim_start_matches('/'));
        HostView::V2 {
            programs: attached_device_programs(&dir),
        }
    } else {
        let dir = controller_dir(pid, "devices");
        HostView::V1 {
            list: super::read_trimmed(&dir.join("devices.list")),
        }
    }
}

/// BPF_PROG_QUERY of BPF_CGROUP_DEVICE on the cgroup directory itself.
fn attached_device_programs(dir: &Path) -> u32 {
    use std::os::fd::AsRawFd;
    let cgroup = std::fs::File::open(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
    #[repr(C)]
    struct QueryAttr {
        target_fd: u32,
        attach_type: u32,
        query_flags: u32,
        attach_flags: u32,
        prog_ids: u64,
        prog_cnt: u32,
    }
    let mut attr = QueryAttr {
        target_fd: cgroup.as_raw_fd() as u32,
        attach_type: 6, // BPF_CGROUP_DEVICE
        query_flags: 0,
        attach_flags: 0,
        prog_ids: 0,
        prog_cnt: 0,
    };
    // SAFETY: BPF_PROG_QUERY (16) with a zeroed prefix of union bpf_attr;
    // with no id buffer the kernel only writes the count.
    let r = unsafe {
        libc::syscall(
            libc::SYS_bpf,
            16,
            &mut attr as *mut QueryAttr,
            std::mem::size_of::<QueryAttr>(),
        )
    };
    assert_eq!(
        r,
        0,
        "BPF_PROG_QUERY {}: {}",
        dir.display(),
        std::io::Error::last_os_error()
    );
    attr.prog_cnt
}

// config-linux.md "Device allowlist": with the default config (deny all,
// then runc's defaults) a node the list doesn't name can be made (mknod is
// allowed) but not opened, even by root with the capabilities, while the
// default devices open both ways. From the host: on v2 one device program
// is attached to the container's cgroup; on v1 its devices.list no longer
// allows everything.
#[test]
fn unlisted_devices_cannot_be_opened() {
    let fx = Fixture::new();
    let mut b = bundle_with(&fx, &[]);
    b.set_sh(&format!("{}sleep 1000", script()));
    let id = fx.id("devdeny");
    fx.create(&b, &id, &[]).ok();
    let pid = fx.pid(&id);
    match host_view(pid) {
        HostView::V2 { programs } => {
            assert_eq!(programs, 1, "device programs on the container's cgroup")
        }
        HostView::V1 { list } => {
            assert!(!list.contains("a *:* rwm"), "{list}");
            assert!(list.lines().any(|l| l == "c 1:3 rwm"), "{list}");
        }
    }
    fx.delete(&id).ok();
    let out = fx.run_sh(&mut b, &script());
    assert_eq!(
        lines(&out),
        [
            "null-r ok",
            "null-w ok",
            "zero-r ok",
            "zero-w ok",
            "sdx-r EPERM",
            "kmsg-r EPERM",
            "kmsg-w EPERM"
        ],
        "{out}"
    );
    fx.assert_no_residue();
}

// config-linux.md "Device allowlist" `access`: a rule allowing "r" lets the
// node be opened for reading and not for writing (the request's access must
// be within the rule's).
#[test]
fn read_only_rule_allows_reads_only() {
    let fx = Fixture::new();
    let mut b = bundle_with(
        &fx,
        &[json!({"allow": true, "type": "c", "major": 1, "minor": 11, "access": "r"})],
    );
    let out = fx.run_sh(&mut b, &script());
    assert_eq!(
        &lines(&out)[4..],
        ["sdx-r EPERM", "kmsg-r ok", "kmsg-w EPERM"],
        "{out}"
    );
    fx.assert_no_residue();
}

// config-linux.md "Device allowlist": "The runtime MUST apply entries in
// the listed order": allow rwm then deny w of the same node leaves reads;
// a rule without a minor matches every minor (b 8:* r lets /tmp/sdx past
// the list, to its driver). runc's default rules come after the config's,
// so a config deny of /dev/null (one of them) is overridden, on every
// layout, as with runc.
#[test]
fn rules_apply_in_order() {
    let fx = Fixture::new();
    let mut b = bundle_with(
        &fx,
        &[
            json!({"allow": true, "type": "b", "major": 8, "access": "r"}),
            json!({"allow": true, "type": "c", "major": 1, "minor": 11, "access": "rwm"}),
            json!({"allow": false, "type": "c", "major": 1, "minor": 11, "access": "w"}),
            json!({"allow": false, "type": "c", "major": 1, "minor": 3, "access": "rwm"}),
        ],
    );
    let out = fx.run_sh(&mut b, &script());
    assert_eq!(
        lines(&out),
        [
            "null-r ok",
            "null-w ok",
            "zero-r ok",
            "zero-w ok",
            "sdx-r ok",
            "kmsg-r ok",
            "kmsg-w EPERM"
        ],
        "{out}"
    );
    fx.assert_no_residue();
}

// runc's `update --resources` with `devices`: the new rules replace the old
// ones on v2 (a new program goes on, the old one off: still one attached);
// on v1 they are written after the ones in force. Either way a node the
// update allows opens afterwards in a process of the container.
#[test]
fn update_replaces_the_device_rules() {
    let fx = Fixture::new();
    let mut b = bundle_with(&fx, &[]);
    b.set_sh("mknod /tmp/kmsg c 1 11 && exec sleep 1000");
    let id = fx.id("devupdate");
    fx.create(&b, &id, &[]).ok();
    fx.start(&id).ok();
    let pid = fx.pid(&id);
    let kmsg_w = probe("kmsg-w", ">", "/tmp/kmsg");
    let exec_probe = || {
        let mut last = String::new();
        // The init makes the node after start: wait for it.
        wait_until(std::time::Duration::from_secs(5), || {
            last = fx
                .rt(&[
                    "exec",
                    &id,
                    "sh",
                    "-c",
                    &format!("test -c /tmp/kmsg && {kmsg_w}"),
                ])
                .run()
                .stdout;
            !last.is_empty()
        });
        last.trim().to_string()
    };
    assert_eq!(exec_probe(), "kmsg-w EPERM");
    let resources = fx_file(
        &b,
        json!({"devices": [{"allow": true, "type": "c", "major": 1, "minor": 11, "access": "w"}]}),
    );
    fx.rt(&["update", "--resources", resources.to_str().unwrap(), &id])
        .run()
        .ok();
    assert_eq!(exec_probe(), "kmsg-w ok");
    if let HostView::V2 { programs } = host_view(pid) {
        assert_eq!(programs, 1, "the old program is detached");
    }
    kill_and_delete(&fx, &id);
    fx.assert_no_residue();
}

fn fx_file(b: &Bundle, value: Value) -> PathBuf {
    let path = b.dir.join("resources.json");
    std::fs::write(&path, value.to_string()).unwrap();
    path
}

// config-linux.md "Device allowlist" `type` is a, c or b: a rule of type "p"
// (a fifo: not a device the allowlist governs) fails create with one line
// naming the field, on v1 (the kernel's EINVAL) and v2 (the filter's own
// check) alike, and leaves nothing behind (cgroup, program, state).
#[test]
fn rule_of_a_non_device_type_is_refused() {
    let fx = Fixture::new();
    let b = bundle_with(
        &fx,
        &[json!({"allow": true, "type": "p", "major": 1, "minor": 11, "access": "r"})],
    );
    let id = fx.id("devtypep");
    fx.create(&b, &id, &[])
        .fails_with(&["linux.resources.devices", "p 1:11 r"]);
    fx.assert_no_residue();
}

// The systemd driver (a transient scope with Delegate=yes): the filter is
// on the scope's own cgroup, one program there, and the container sees the
// same allowlist as with cgroupfs (the config's allow of kmsg "w" opens it
// for writing; the unlisted disk and kmsg reads are refused).
#[test]
fn systemd_scope_gets_the_device_filter() {
    if let Some(why) = super::systemd::why_no_systemd() {
        eprintln!("SKIP systemd_scope_gets_the_device_filter: {why}");
        return;
    }
    let fx = Fixture::new();
    let mut b = bundle_with(
        &fx,
        &[json!({"allow": true, "type": "c", "major": 1, "minor": 11, "access": "w"})],
    );
    let id = fx.id("devsd");
    b.linux()["cgroupsPath"] = json!(format!("system.slice:spec:{id}"));
    b.set_sh(&format!("{}echo done; exec sleep 1000", script()));
    b.save();
    let out = fx
        .rt(&[
            "--systemd-cgroup",
            "create",
            "--bundle",
            b.dir.to_str().unwrap(),
            &id,
        ])
        .run();
    if out.status.success() {
        fx.note_container(&id);
    }
    let out = out.ok();
    let pid = fx.pid(&id);
    let cg = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap();
    assert_eq!(cg.trim(), format!("0::/system.slice/spec-{id}.scope"));
    match host_view(pid) {
        HostView::V2 { programs } => assert_eq!(programs, 1, "programs on the scope"),
        HostView::V1 { .. } => unreachable!("the systemd driver runs on pure v2 only"),
    }
    fx.start(&id).ok();
    let mut text = String::new();
    wait_until(std::time::Duration::from_secs(10), || {
        text = out.reread_stdout();
        text.contains("done")
    });
    assert_eq!(
        lines(&text),
        [
            "null-r ok",
            "null-w ok",
            "zero-r ok",
            "zero-w ok",
            "sdx-r EPERM",
            "kmsg-r EPERM",
            "kmsg-w ok",
            "done"
        ],
        "{text}"
    );
    kill_and_delete(&fx, &id);
    fx.assert_no_residue();
}
