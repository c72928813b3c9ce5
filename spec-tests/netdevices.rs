//! config-linux.md "Network Devices" (linux.netDevices): host devices moved
//! into the container's network namespace, renamed, with their permanent
//! global addresses, and up.
//!
//! The devices are veth pairs made on the host for each test (this host's
//! kernel has veth but no dummy module): the test moves one end and keeps the
//! peer on the host, which also shows the kernel's cleanup when the
//! container's netns dies. Debian's runc 1.1.5 predates netDevices, so these
//! tests are berth-only.

use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use serde_json::{json, Value};

use crate::harness::*;

/// A veth pair on the host: `name` is the end a test moves, `peer` stays.
/// Dropping it deletes whatever of the pair is still on the host, also when
/// the test failed.
struct Veth {
    name: String,
    peer: String,
}

impl Veth {
    fn new() -> Self {
        static SEQ: AtomicUsize = AtomicUsize::new(0);
        let seq = SEQ.fetch_add(1, Ordering::Relaxed);
        // Unique per test process and per pair, under 16 bytes ("bt" + 5
        // digits + "x" + seq + "p").
        let name = format!("bt{}x{seq}", std::process::id() % 100_000);
        let peer = format!("{name}p");
        ip(&["link", "add", &name, "type", "veth", "peer", "name", &peer]);
        Veth { name, peer }
    }
}

impl Drop for Veth {
    fn drop(&mut self) {
        for n in [&self.peer, &self.name] {
            if host_has(n) {
                let _ = Command::new("ip").args(["link", "del", n]).output();
            }
        }
    }
}

#[track_caller]
fn ip(args: &[&str]) {
    let out = Command::new("ip").args(args).output().expect("run ip");
    assert!(
        out.status.success(),
        "ip {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Whether the host's (this test's) network namespace has a device `name`.
fn host_has(name: &str) -> bool {
    Command::new("ip")
        .args(["link", "show", "dev", name])
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false)
}

fn set_net_devices(b: &mut Bundle, devices: Value) {
    b.linux()["netDevices"] = devices;
}

/// Inside the container: every interface with its flags, one per line.
const LINKS: &str = "for d in /sys/class/net/*; do echo \"$(basename $d) $(cat $d/flags)\"; done";

/// name -> flags from [`LINKS`] output (other lines are skipped).
fn parse_links(out: &str) -> Vec<(String, u32)> {
    out.lines()
        .filter_map(|l| l.split_once(' '))
        .filter(|(_, f)| f.starts_with("0x"))
        .map(|(n, f)| {
            let f = u32::from_str_radix(f.trim().trim_start_matches("0x"), 16)
                .unwrap_or_else(|e| panic!("flags of {n}: {f:?}: {e}"));
            (n.to_string(), f)
        })
        .collect()
}

const IFF_UP: u32 = 0x1;

// "netDevices ... MUST be made available in the container"; "name - the name
// of the network device inside the container namespace"; "The runtime MUST
// set the network device state to "up" after moving it". And "Namespace
// Lifecycle": the runtime MUST NOT move the device out; when the netns dies
// the kernel destroys virtual devices, so the veth (and its host peer) is
// gone after delete.
#[test]
fn moved_renamed_up_and_gone_from_host() {
    berth_only!("runc 1.1.5 has no linux.netDevices");
    let fx = Fixture::new();
    let veth = Veth::new();
    let mut b = fx.bundle();
    set_net_devices(&mut b, json!({ veth.name.clone(): { "name": "ctr0" } }));
    b.set_args(&["sleep", "1000"]);
    let id = fx.id("moved");
    fx.create(&b, &id, &[]).ok();
    // Moved at create, before start.
    assert!(!host_has(&veth.name), "{} still on the host", veth.name);
    assert!(host_has(&veth.peer), "the host peer went away");
    fx.start(&id).ok();
    let out = fx.rt(&["exec", &id, "sh", "-c", LINKS]).run().ok();
    let links = parse_links(&out.stdout);
    let ctr0 = links
        .iter()
        .find(|(n, _)| n == "ctr0")
        .unwrap_or_else(|| panic!("no ctr0 inside: {links:?}"));
    assert_ne!(ctr0.1 & IFF_UP, 0, "ctr0 is not up: {links:?}");
    assert!(
        !links.iter().any(|(n, _)| *n == veth.name),
        "the host name is still used inside: {links:?}"
    );
    fx.rt(&["delete", "--force", &id]).run().ok();
    // The kernel destroys the veth with the netns (asynchronously).
    assert!(
        wait_until(Duration::from_secs(20), || !host_has(&veth.peer)),
        "the veth peer outlived the container's network namespace"
    );
    assert!(!host_has(&veth.name));
    fx.assert_no_residue();
}

// "name (string, OPTIONAL) ... If not specified, the host name is used."
#[test]
fn no_name_keeps_the_host_name() {
    berth_only!("runc 1.1.5 has no linux.netDevices");
    let fx = Fixture::new();
    let veth = Veth::new();
    let mut b = fx.bundle();
    set_net_devices(&mut b, json!({ veth.name.clone(): {} }));
    let links = parse_links(&fx.run_sh(&mut b, LINKS));
    let dev = links
        .iter()
        .find(|(n, _)| *n == veth.name)
        .unwrap_or_else(|| panic!("no {} inside: {links:?}", veth.name));
    assert_ne!(dev.1 & IFF_UP, 0, "not up: {links:?}");
}

// "The runtime MUST preserve existing network interface attributes,
// including all permanent IP addresses (IFA_F_PERMANENT flag) of any family
// with global scope (RT_SCOPE_UNIVERSE value) ... only addresses intended for
// persistent, external communication are transferred."
#[test]
fn permanent_global_addresses_are_preserved() {
    berth_only!("runc 1.1.5 has no linux.netDevices");
    let fx = Fixture::new();
    let veth = Veth::new();
    let n = std::process::id() % 250 + 1;
    let v4 = format!("10.213.{n}.1/24");
    let v6 = format!("fd00:b:{n:x}::1/64");
    let link_scope = format!("10.214.{n}.9/32");
    ip(&["addr", "add", &v4, "dev", &veth.name]);
    ip(&["addr", "add", &v6, "dev", &veth.name, "nodad"]);
    ip(&[
        "addr",
        "add",
        &link_scope,
        "dev",
        &veth.name,
        "scope",
        "link",
    ]);
    ip(&["link", "set", &veth.name, "mtu", "1420"]);
    let mut b = fx.bundle();
    set_net_devices(&mut b, json!({ veth.name.clone(): { "name": "eth7" } }));
    let out = fx.run_sh(
        &mut b,
        "ip -o addr show dev eth7; echo mtu $(cat /sys/class/net/eth7/mtu)",
    );
    assert!(
        out.contains(&format!("inet {v4}")),
        "{v4} not inside: {out}"
    );
    assert!(
        out.contains(&format!("inet6 {v6}")),
        "{v6} not inside: {out}"
    );
    assert!(
        !out.contains(link_scope.trim_end_matches("/32")),
        "a link-scope address was carried over: {out}"
    );
    // Another attribute the move keeps.
    assert!(out.contains("mtu 1420"), "mtu not kept: {out}");
}

// "The runtime MUST check if moving the network interface to the container
// namespace is possible": a host device that doesn't exist fails create,
// naming it, with nothing left behind.
#[test]
fn missing_host_device_fails() {
    berth_only!("runc 1.1.5 has no linux.netDevices");
    let fx = Fixture::new();
    let mut b = fx.bundle();
    let missing = format!("bnone{}", std::process::id() % 100_000);
    set_net_devices(&mut b, json!({ missing.clone(): {} }));
    let id = fx.id("missing");
    fx.create(&b, &id, &[])
        .fails_with(&["linux.netDevices", &missing]);
    fx.assert_no_residue();
}

// "If a network device with the specified name already exists in the
// container namespace, the runtime MUST generate an error": `lo` is in every
// new netns. The device is checked before it is moved, so it stays on the host.
#[test]
fn existing_name_in_the_container_fails() {
    berth_only!("runc 1.1.5 has no linux.netDevices");
    let fx = Fixture::new();
    let veth = Veth::new();
    let mut b = fx.bundle();
    set_net_devices(&mut b, json!({ veth.name.clone(): { "name": "lo" } }));
    let id = fx.id("exists");
    fx.create(&b, &id, &[])
        .fails_with(&["linux.netDevices", "\"lo\"", "already exists"]);
    assert!(host_has(&veth.name), "the device left the host");
    assert!(host_has(&veth.peer));
    fx.assert_no_residue();
}

// "... unless the user has provided a template by appending %d to the new
// name. In that case, the runtime MUST allow the move, and the kernel will
// generate a unique name": two devices with one template get two names.
#[test]
fn template_lets_the_kernel_pick_names() {
    berth_only!("runc 1.1.5 has no linux.netDevices");
    let fx = Fixture::new();
    let (a, c) = (Veth::new(), Veth::new());
    let mut b = fx.bundle();
    set_net_devices(
        &mut b,
        json!({ a.name.clone(): { "name": "net%d" }, c.name.clone(): { "name": "net%d" } }),
    );
    let links = parse_links(&fx.run_sh(&mut b, LINKS));
    let mut names: Vec<&str> = links
        .iter()
        .filter(|(n, f)| n.starts_with("net") && f & IFF_UP != 0)
        .map(|(n, _)| n.as_str())
        .collect();
    names.sort();
    assert_eq!(names, ["net0", "net1"], "{links:?}");
}

// The devices go into a network namespace that is not the host's (runc
// says "a private NET namespace"): no network namespace at all, or a path to
// the host's own, is refused naming the field, before anything exists; the
// device stays on the host.
#[test]
fn needs_a_private_network_namespace() {
    berth_only!("runc 1.1.5 has no linux.netDevices");
    let fx = Fixture::new();
    let veth = Veth::new();
    for joined in [true, false] {
        let mut b = fx.bundle();
        set_net_devices(&mut b, json!({ veth.name.clone(): {} }));
        if joined {
            b.set_namespace("network", Some("/proc/self/ns/net"));
        } else {
            b.remove_namespace("network");
        }
        let id = fx.id("netns");
        fx.create(&b, &id, &[])
            .fails_with(&["linux.netDevices", "private network namespace"]);
        assert!(host_has(&veth.name), "the device left the host");
    }
    fx.assert_no_residue();
}

/// A named network namespace (`ip netns add`), deleted on drop.
struct Netns {
    name: String,
}

impl Netns {
    fn new() -> Self {
        let name = format!("btns{}", std::process::id());
        ip(&["netns", "add", &name]);
        Netns { name }
    }
    fn path(&self) -> String {
        format!("/run/netns/{}", self.name)
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .output();
    }
}

// A netns joined by path (an orchestrator's, e.g. a pod's) gets the device
// too. "Namespace Lifecycle": "The runtime MUST NOT actively manage the
// interface's lifecycle ... within the container's network namespace" and
// MUST NOT move it out: after the container is deleted the device is still
// in that namespace, with its address, up.
#[test]
fn joined_netns_keeps_the_device_after_delete() {
    berth_only!("runc 1.1.5 has no linux.netDevices");
    let fx = Fixture::new();
    let veth = Veth::new();
    let ns = Netns::new();
    let v4 = format!("10.215.{}.1/24", std::process::id() % 250 + 1);
    ip(&["addr", "add", &v4, "dev", &veth.name]);
    let mut b = fx.bundle();
    b.set_namespace("network", Some(&ns.path()));
    set_net_devices(&mut b, json!({ veth.name.clone(): { "name": "ctr0" } }));
    let out = fx.run_sh(&mut b, &format!("{LINKS}; ip -o addr show dev ctr0"));
    let links = parse_links(&out);
    assert!(
        links.iter().any(|(n, f)| n == "ctr0" && f & IFF_UP != 0),
        "no ctr0 up inside: {out}"
    );
    assert!(
        out.contains(&format!("inet {v4}")),
        "{v4} not inside: {out}"
    );
    assert!(!host_has(&veth.name));
    let in_ns = |args: &[&str]| {
        let out = Command::new("ip")
            .args(["-n", &ns.name, "-o"])
            .args(args)
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let addrs = in_ns(&["addr", "show", "dev", "ctr0"]);
    assert!(
        addrs.contains(&format!("inet {v4}")),
        "the device or its address left the joined netns after delete: {addrs:?}"
    );
    let link = in_ns(&["link", "show", "dev", "ctr0"]);
    let flags = link.split(['<', '>']).nth(1).unwrap_or("");
    assert!(
        flags.split(',').any(|f| f == "UP"),
        "ctr0 is no longer up after delete: {link:?}"
    );
}

// Names the kernel would refuse, and two entries with one name inside, fail
// create before anything exists (runtime.md "Errors").
#[test]
fn bad_names_fail() {
    berth_only!("runc 1.1.5 has no linux.netDevices");
    let fx = Fixture::new();
    let (a, c) = (Veth::new(), Veth::new());
    let cases = [
        (json!({ a.name.clone(): { "name": "a/b" } }), "'/'"),
        (json!({ a.name.clone(): { "name": "with space" } }), "' '"),
        (
            json!({ a.name.clone(): { "name": "sixteen-bytes-xx" } }),
            "15 bytes",
        ),
        (
            json!({ a.name.clone(): { "name": "ctr0" }, c.name.clone(): { "name": "ctr0" } }),
            "two devices",
        ),
        // The host name of one is the name given to the other.
        (
            json!({ a.name.clone(): {}, c.name.clone(): { "name": a.name.clone() } }),
            "two devices",
        ),
    ];
    for (devices, needle) in cases {
        let mut b = fx.bundle();
        set_net_devices(&mut b, devices);
        let id = fx.id("badname");
        fx.create(&b, &id, &[])
            .fails_with(&["linux.netDevices", needle]);
        assert!(host_has(&a.name) && host_has(&c.name));
    }
    fx.assert_no_residue();
}

// runtime.md "Errors": a create that fails after the device moved (here a
// createRuntime hook, which runs after the move) leaves nothing behind. The
// device is not moved back (config-linux.md "Namespace Lifecycle"): the
// netns dies with the init and the kernel destroys the veth, host peer too.
#[test]
fn failure_after_the_move_leaves_nothing() {
    berth_only!("runc 1.1.5 has no linux.netDevices");
    let fx = Fixture::new();
    let veth = Veth::new();
    let mut b = fx.bundle();
    set_net_devices(&mut b, json!({ veth.name.clone(): { "name": "ctr0" } }));
    b.config["hooks"] = json!({ "createRuntime": [{ "path": "/bin/false" }] });
    let id = fx.id("hookfail");
    fx.create(&b, &id, &[]).fails_with(&["createRuntime"]);
    assert!(
        !host_has(&veth.name),
        "the device was not moved before the hook"
    );
    assert!(
        wait_until(Duration::from_secs(20), || !host_has(&veth.peer)),
        "the veth outlived the failed create's network namespace"
    );
    fx.assert_no_residue();
}

// The same in a container with its own user namespace, which then owns the
// new network namespace: berth, root on the host, still moves the device
// in, re-adds its address and sets it up.
#[test]
fn moved_into_a_user_namespaced_container() {
    berth_only!("runc 1.1.5 has no linux.netDevices");
    let fx = Fixture::new();
    let veth = Veth::new();
    let v4 = format!("10.216.{}.1/24", std::process::id() % 250 + 1);
    ip(&["addr", "add", &v4, "dev", &veth.name]);
    let mut b = fx.bundle();
    b.set_namespace("user", None);
    b.linux()["uidMappings"] = json!([{"containerID": 0, "hostID": 100000, "size": 65536}]);
    b.linux()["gidMappings"] = json!([{"containerID": 0, "hostID": 200000, "size": 65536}]);
    set_net_devices(&mut b, json!({ veth.name.clone(): { "name": "ctr0" } }));
    let out = fx.run_sh(&mut b, &format!("{LINKS}; ip -o addr show dev ctr0"));
    let links = parse_links(&out);
    assert!(
        links.iter().any(|(n, f)| n == "ctr0" && f & IFF_UP != 0),
        "no ctr0 up inside: {out}"
    );
    assert!(
        out.contains(&format!("inet {v4}")),
        "{v4} not inside: {out}"
    );
}
