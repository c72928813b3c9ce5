//! config-linux.md "Namespaces", "User namespace mappings", "Offset for Time
//! Namespace"; config.md "Hostname", "Domainname".

use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::json;

use crate::harness::*;

const NS_KINDS: [&str; 6] = ["net", "ipc", "uts", "cgroup", "mnt", "pid"];

/// Inside the container: `<kind> <readlink /proc/self/ns/kind>` per line.
fn ns_script() -> String {
    format!(
        "for n in {}; do echo \"$n $(readlink /proc/self/ns/$n)\"; done",
        NS_KINDS.join(" ")
    )
}

fn parse_ns(out: &str) -> BTreeMap<String, String> {
    out.lines()
        .filter_map(|l| l.split_once(' '))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

// config-linux.md "Namespaces": a listed type without `path` MUST get a new
// namespace; an unlisted type MUST be inherited from the runtime.
#[test]
fn listed_namespaces_are_new_unlisted_inherited() {
    let fx = Fixture::new();
    let me = std::process::id().to_string();

    let mut b = fx.bundle();
    b.set_namespace("cgroup", None);
    let inside = parse_ns(&fx.run_sh(&mut b, &ns_script()));
    for kind in NS_KINDS {
        let host = ns_of(&me, kind);
        assert!(!host.is_empty());
        assert_eq!(
            inside.get(kind).map(|s| !s.is_empty()),
            Some(true),
            "{inside:?}"
        );
        assert_ne!(inside[kind], host, "{kind}: listed but not new");
    }

    let mut b = fx.bundle();
    for kind in ["network", "ipc", "uts", "cgroup"] {
        b.remove_namespace(kind);
    }
    // A hostname needs its own uts namespace.
    b.config.as_object_mut().unwrap().remove("hostname");
    let inside = parse_ns(&fx.run_sh(&mut b, &ns_script()));
    for kind in ["net", "ipc", "uts", "cgroup"] {
        assert_eq!(
            inside.get(kind),
            Some(&ns_of(&me, kind)),
            "{kind}: unlisted but not inherited"
        );
    }
    for kind in ["mnt", "pid"] {
        assert_ne!(
            inside.get(kind),
            Some(&ns_of(&me, kind)),
            "{kind}: listed but not new"
        );
    }
    fx.assert_no_residue();
}

// config-linux.md "Namespaces" pid: the container process is pid 1 and sees
// only its own processes.
#[test]
fn pid_namespace_makes_process_pid_1() {
    let fx = Fixture::new();
    let mut b = fx.bundle();
    let out = fx.run_sh(&mut b, "echo $$; ls /proc | grep -c '^[0-9]'");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.first(), Some(&"1"), "process is not pid 1: {out}");
    let n: usize = lines.get(1).and_then(|n| n.parse().ok()).unwrap_or(999);
    assert!(
        n <= 4,
        "the container sees {n} processes, not just its own: {out}"
    );
    fx.assert_no_residue();
}

// config.md "Hostname" and "Domainname" in a new uts namespace.
#[test]
fn uts_hostname_and_domainname() {
    let fx = Fixture::new();
    let mut b = fx.bundle();
    b.config["hostname"] = json!("spec-host");
    b.config["domainname"] = json!("spec.example");
    let out = fx.run_sh(&mut b, "hostname; cat /proc/sys/kernel/domainname");
    assert_eq!(out, "spec-host\nspec.example\n");
    let host = nix::unistd::gethostname().unwrap();
    assert_ne!(
        host.to_str(),
        Some("spec-host"),
        "hostname leaked to the host"
    );
    fx.assert_no_residue();
}

// config-linux.md "Namespaces" network: its own stack, only a loopback.
#[test]
fn network_namespace_has_only_lo() {
    let fx = Fixture::new();
    let mut b = fx.bundle();
    let out = fx.run_sh(&mut b, "tail -n +3 /proc/net/dev | cut -d: -f1 | tr -d ' '");
    assert_eq!(out.lines().collect::<Vec<_>>(), ["lo"], "interfaces: {out}");
    fx.assert_no_residue();
}

// config-linux.md "Namespaces" network, and "Mounts": sysfs shows the
// network namespace of whoever mounts it. berth makes a new network
// namespace beside the clone and the init enters it before mounting sysfs:
// /sys/class/net must list the container's devices (lo), not the host's,
// and the namespace must not be berth's.
#[test]
fn sysfs_shows_the_container_network_namespace() {
    let fx = Fixture::new();
    let mut b = fx.bundle();
    let out = fx.run_sh(&mut b, "ls /sys/class/net; readlink /proc/self/ns/net");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 2, "output: {out}");
    assert_eq!(lines[0], "lo", "/sys/class/net in the container: {out}");
    let host = std::fs::read_link("/proc/self/ns/net").unwrap();
    assert_ne!(
        lines[1],
        host.to_string_lossy(),
        "the container has the host's netns"
    );
    fx.assert_no_residue();
}

// config-linux.md "Namespaces" ipc: System V IPC objects are per namespace.
#[test]
fn ipc_namespace_isolates_sysv_ipc() {
    let fx = Fixture::new();
    let mut b = fx.bundle();
    // A fresh ipc namespace has no shared memory segments at all, whatever
    // the host has.
    let out = fx.run_sh(&mut b, "tail -n +2 /proc/sysvipc/shm | wc -l");
    assert_eq!(out.trim(), "0", "sysv shm segments visible: {out}");
    let me = std::process::id().to_string();
    let mut b = fx.bundle();
    let inside = fx.run_sh(&mut b, "readlink /proc/self/ns/ipc");
    assert_ne!(inside.trim(), ns_of(&me, "ipc"));
    fx.assert_no_residue();
}

// config-linux.md "Namespaces" cgroup: the container's cgroup is its root.
#[test]
fn cgroup_namespace_hides_host_paths() {
    let fx = Fixture::new();
    let mut b = fx.bundle();
    b.set_namespace("cgroup", None);
    let out = fx.run_sh(&mut b, "cat /proc/self/cgroup");
    assert!(!out.is_empty());
    for line in out.lines() {
        assert!(line.ends_with(":/"), "cgroup path not namespaced: {line}");
    }
    fx.assert_no_residue();
}

// config-linux.md "User namespace mappings": ids map as configured; the
// process is root inside and the mapped id outside.
#[test]
fn user_namespace_with_mappings() {
    let fx = Fixture::new();
    let mut b = fx.bundle();
    b.set_namespace("user", None);
    b.linux()["uidMappings"] = json!([{"containerID": 0, "hostID": 100000, "size": 65536}]);
    b.linux()["gidMappings"] = json!([{"containerID": 0, "hostID": 200000, "size": 65536}]);
    // The rootfs belongs to host root, unmapped inside; the container only
    // needs to read and execute it.
    b.set_sh("cat /proc/self/uid_map /proc/self/gid_map; id -u; id -g; echo done; exec sleep 1000");
    let id = fx.id("userns");
    let out = fx.create(&b, &id, &[]).ok();
    fx.start(&id).ok();
    assert!(
        wait_until(Duration::from_secs(10), || out
            .reread_stdout()
            .contains("done")),
        "container output: {}",
        out.reread_stdout()
    );
    let text = out.reread_stdout();
    let lines: Vec<Vec<&str>> = text
        .lines()
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert_eq!(lines[0], ["0", "100000", "65536"], "uid_map: {text}");
    assert_eq!(lines[1], ["0", "200000", "65536"], "gid_map: {text}");
    assert_eq!(lines[2], ["0"], "uid inside: {text}");
    assert_eq!(lines[3], ["0"], "gid inside: {text}");
    let pid = fx.pid(&id);
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    assert_eq!(
        status_field(&status, "Uid")
            .unwrap()
            .split_whitespace()
            .next(),
        Some("100000")
    );
    assert_eq!(
        status_field(&status, "Gid")
            .unwrap()
            .split_whitespace()
            .next(),
        Some("200000")
    );
    assert_ne!(ns_of(&pid.to_string(), "user"), ns_of("self", "user"));
    fx.kill(&id, "KILL").ok();
    fx.wait_status(&id, "stopped");
    fx.delete(&id).ok();
    fx.assert_no_residue();
}

// config-linux.md "Offset for Time Namespace": clocks are offset inside.
#[test]
fn time_namespace_offsets() {
    berth_only!("runc 1.1.5 does not support the time namespace");
    let fx = Fixture::new();
    let mut b = fx.bundle();
    b.set_namespace("time", None);
    let offset: u64 = 10 * 86400;
    b.linux()["timeOffsets"] = json!({
        "boottime": {"secs": offset, "nanosecs": 0},
        "monotonic": {"secs": offset, "nanosecs": 0}
    });
    let host_before = uptime();
    let out = fx.run_sh(&mut b, "cut -d' ' -f1 /proc/uptime");
    let host_after = uptime();
    let inside: f64 = out
        .trim()
        .parse()
        .unwrap_or_else(|_| panic!("uptime: {out}"));
    assert!(
        inside >= host_before + offset as f64 - 1.0 && inside <= host_after + offset as f64 + 1.0,
        "uptime inside {inside}, host {host_before}..{host_after}, offset {offset}"
    );
    fx.assert_no_residue();
}

fn uptime() -> f64 {
    let text = std::fs::read_to_string("/proc/uptime").unwrap();
    text.split_whitespace().next().unwrap().parse().unwrap()
}

// config-linux.md "Namespaces" `path`: the container joins an existing
// namespace, here the network namespace of another container.
#[test]
fn join_network_namespace_by_path() {
    let fx = Fixture::new();
    let mut a = fx.bundle();
    a.set_args(&["sleep", "1000"]);
    let first = fx.id("nsa");
    fx.create(&a, &first, &[]).ok();
    let pid = fx.pid(&first);
    let netns = ns_of(&pid.to_string(), "net");
    assert_ne!(netns, ns_of("self", "net"));

    let mut b = fx.bundle();
    b.set_namespace("network", Some(&format!("/proc/{pid}/ns/net")));
    b.set_sh("readlink /proc/self/ns/net; readlink /proc/self/ns/uts");
    // Not run_sh: its residue check would count the first container, still alive.
    let out = fx.run(&b, &fx.id("joiner"), &[]).ok().stdout;
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.first(), Some(&netns.as_str()), "did not join {netns}");
    assert_ne!(
        lines.get(1).copied(),
        Some(ns_of(&pid.to_string(), "uts").as_str()),
        "joined more than net"
    );

    fx.rt(&["delete", "--force", &first]).run().ok();
    fx.assert_no_residue();
}
