//! The per-process kernel attributes of config.md "POSIX process" and
//! config-linux.md: personality, ioPriority, scheduler, execCPUAffinity,
//! sysctl, rlimits, memoryPolicy and the LSM labels. Each is checked from
//! inside the container (/proc/1/...) or from the host on the init's pid.

use serde_json::json;

use crate::harness::*;

/// Fields 3.. of /proc/<pid>/stat (after "pid (comm)"), so that field N of
/// proc(5) is `fields[N - 3]`.
fn stat_fields(stat: &str) -> Vec<String> {
    let rest = &stat[stat.rfind(')').expect("stat has (comm)") + 1..];
    rest.split_whitespace().map(String::from).collect()
}

/// A container whose init sleeps: create it and return (id, host pid).
fn create_sleeper(fx: &Fixture, b: &mut Bundle, what: &str) -> (String, i32) {
    b.set_args(&["sleep", "1000"]);
    let id = fx.id(what);
    fx.create(b, &id, &[]).ok();
    let pid = fx.pid(&id);
    (id, pid)
}

fn remove(fx: &Fixture, id: &str) {
    fx.rt(&["delete", "--force", id]).run().ok();
    fx.assert_no_residue();
}

// ---- linux.personality ----------------------------------------------------

// config-linux.md "Personality": "LINUX32 will set the uname system call to
// show a 32 bit CPU type, such as i686".
#[test]
fn personality_linux32_shows_i686() {
    berth_only!("runc 1.1.5 predates linux.personality");
    let fx = Fixture::new();
    let mut b = fx.bundle();
    b.linux()["personality"] = json!({"domain": "LINUX32"});
    let out = fx.run_sh(&mut b, "uname -m");
    assert_eq!(out.trim(), "i686", "{out}");
}

// The LINUX domain is the native one: uname reports the host's machine.
#[test]
fn personality_linux_is_native() {
    let fx = Fixture::new();
    let mut b = fx.bundle();
    b.linux()["personality"] = json!({"domain": "LINUX"});
    let out = fx.run_sh(&mut b, "uname -m");
    assert_eq!(out.trim(), std::env::consts::ARCH, "{out}");
}

// "flags: Currently no flag values are supported": refused at create.
#[test]
fn personality_flags_are_refused() {
    berth_only!("runc ignores personality flags");
    let fx = Fixture::new();
    let mut b = fx.bundle();
    b.linux()["personality"] = json!({"domain": "LINUX", "flags": ["ADDR_NO_RANDOMIZE"]});
    fx.create(&b, &fx.id("pflags"), &[])
        .fails_with(&["linux.personality.flags", "ADDR_NO_RANDOMIZE"]);
    fx.assert_no_residue();
}

// ---- process.ioPriority ---------------------------------------------------

fn ioprio_of(pid: i32) -> i64 {
    // SAFETY: ioprio_get(IOPRIO_WHO_PROCESS, pid) takes two integers.
    let r = unsafe { libc::syscall(libc::SYS_ioprio_get, 1, pid) };
    assert!(
        r >= 0,
        "ioprio_get {pid}: {}",
        std::io::Error::last_os_error()
    );
    r
}

// config.md "ioPriority": class and priority, read back from the host with
// ioprio_get(2) on the container's process.
#[test]
fn io_priority_is_set_on_the_process() {
    berth_only!("runc 1.1.5 predates process.ioPriority");
    let fx = Fixture::new();
    for (class, n, prio) in [("IOPRIO_CLASS_BE", 2, 6), ("IOPRIO_CLASS_IDLE", 3, 0)] {
        let mut b = fx.bundle();
        b.process()["ioPriority"] = json!({"class": class, "priority": prio});
        let (id, pid) = create_sleeper(&fx, &mut b, "ioprio");
        assert_eq!(ioprio_of(pid), (n << 13) | prio, "{class} {prio}");
        remove(&fx, &id);
    }
}

// "priority ... ranging from 0 (highest) to 7 (lowest)".
#[test]
fn io_priority_out_of_range_fails_create() {
    berth_only!("runc passes the value to the kernel");
    let fx = Fixture::new();
    let mut b = fx.bundle();
    b.process()["ioPriority"] = json!({"class": "IOPRIO_CLASS_BE", "priority": 9});
    fx.create(&b, &fx.id("ioprio9"), &[])
        .fails_with(&["ioPriority", "0 to 7", "9"]);
    fx.assert_no_residue();
}

// ---- process.scheduler ----------------------------------------------------

// config.md "scheduler": policy and nice, seen inside in /proc/1/stat
// (proc(5): field 19 nice, 41 policy; SCHED_BATCH is 3, SCHED_IDLE 5).
#[test]
fn scheduler_policy_and_nice() {
    berth_only!("runc 1.1.5 predates process.scheduler");
    let fx = Fixture::new();
    for (policy, n, nice) in [
        ("SCHED_BATCH", 3, 7),
        ("SCHED_IDLE", 5, 0),
        ("SCHED_OTHER", 0, -5),
    ] {
        let mut b = fx.bundle();
        b.process()["scheduler"] = json!({"policy": policy, "nice": nice});
        let out = fx.run_sh(&mut b, "cat /proc/1/stat");
        let f = stat_fields(&out);
        assert_eq!(f[19 - 3], nice.to_string(), "{policy}: {out}");
        assert_eq!(f[41 - 3], n.to_string(), "{policy}: {out}");
    }
}

// A real-time policy needs a priority of 1 to 99 (sched(7)); SCHED_ISO is
// reserved and not implemented by Linux.
#[test]
fn scheduler_bad_values_fail_create() {
    berth_only!("runc leaves these to the kernel");
    let fx = Fixture::new();
    for (sched, needles) in [
        (json!({"policy": "SCHED_FIFO"}), vec!["priority", "1 to 99"]),
        (json!({"policy": "SCHED_ISO"}), vec!["SCHED_ISO"]),
        (
            json!({"policy": "SCHED_OTHER", "nice": 40}),
            vec!["nice", "40"],
        ),
    ] {
        let mut b = fx.bundle();
        b.process()["scheduler"] = sched;
        fx.create(&b, &fx.id("sched"), &[]).fails_with(&needles);
        fx.assert_no_residue();
    }
}

// ---- process.execCPUAffinity ----------------------------------------------

// config.md "execCPUAffinity": "This setting is not applicable to the
// container's init process": accepted, and the init keeps the affinity it
// inherited (here, the test's own).
#[test]
fn exec_cpu_affinity_leaves_the_init_alone() {
    let fx = Fixture::new();
    let mine = std::fs::read_to_string("/proc/self/status").unwrap();
    let mine = mine
        .lines()
        .find(|l| l.starts_with("Cpus_allowed_list:"))
        .unwrap()
        .to_string();
    let mut b = fx.bundle();
    b.process()["execCPUAffinity"] = json!({"initial": "0", "final": "0"});
    let out = fx.run_sh(&mut b, "grep Cpus_allowed_list: /proc/1/status");
    assert_eq!(out.trim(), mine.trim(), "{out}");
}

// A malformed cpu list fails create, naming the field.
#[test]
fn exec_cpu_affinity_bad_list_fails_create() {
    berth_only!("runc 1.1.5 predates process.execCPUAffinity");
    let fx = Fixture::new();
    let mut b = fx.bundle();
    b.process()["execCPUAffinity"] = json!({"final": "3-1"});
    fx.create(&b, &fx.id("aff"), &[]).fails_with(&["3-1"]);
    fx.assert_no_residue();
}

// ---- linux.sysctl ---------------------------------------------------------

// config-linux.md "Sysctl": namespaced keys are set in the container's
// namespaces (read back inside) and not on the host.
#[test]
fn sysctl_in_the_containers_namespaces() {
    let fx = Fixture::new();
    let host_fwd = std::fs::read_to_string("/proc/sys/net/ipv4/ip_forward").unwrap();
    let host_shm = std::fs::read_to_string("/proc/sys/kernel/shmmni").unwrap();
    let mut b = fx.bundle();
    b.set_namespace("network", None);
    b.set_namespace("ipc", None);
    let fwd = if host_fwd.trim() == "1" { "0" } else { "1" };
    b.linux()["sysctl"] = json!({"net.ipv4.ip_forward": fwd, "kernel.shmmni": "1234"});
    let out = fx.run_sh(
        &mut b,
        "cat /proc/sys/net/ipv4/ip_forward /proc/sys/kernel/shmmni",
    );
    assert_eq!(
        out.split_whitespace().collect::<Vec<_>>(),
        [fwd, "1234"],
        "{out}"
    );
    assert_eq!(
        std::fs::read_to_string("/proc/sys/net/ipv4/ip_forward").unwrap(),
        host_fwd
    );
    assert_eq!(
        std::fs::read_to_string("/proc/sys/kernel/shmmni").unwrap(),
        host_shm
    );
}

// A key whose namespace the container doesn't have, or that no namespace
// scopes, would change the host: create fails naming it, leaving nothing.
#[test]
fn sysctl_outside_the_containers_namespaces_fails_create() {
    let fx = Fixture::new();
    let cases = [
        ("net.ipv4.ip_forward", "network"),
        ("kernel.msgmax", "ipc"),
        ("fs.mqueue.msg_max", "ipc"),
        ("kernel.domainname", "uts"),
        ("vm.swappiness", ""),
        ("kernel.pid_max", ""),
    ];
    for (key, ns) in cases {
        let mut b = fx.bundle();
        if !ns.is_empty() {
            b.remove_namespace(ns);
        }
        if ns == "uts" {
            // `hostname` needs the uts namespace too: only the sysctl is wrong.
            b.config.as_object_mut().unwrap().remove("hostname");
        }
        b.linux()["sysctl"] = json!({ key: "1" });
        fx.create(&b, &fx.id("sysctl"), &[]).fails_with(&[key]);
        fx.assert_no_residue();
    }
}

// ---- process.rlimits ------------------------------------------------------

// config.md "rlimits": every RLIMIT_* name is accepted; each limit is set to
// the caller's own values (root here lacks CAP_SYS_RESOURCE, so nothing
// above the current hard limit), and RLIMIT_NOFILE is lowered and read back.
#[test]
fn rlimits_every_name() {
    let fx = Fixture::new();
    let names = [
        ("RLIMIT_CPU", libc::RLIMIT_CPU),
        ("RLIMIT_FSIZE", libc::RLIMIT_FSIZE),
        ("RLIMIT_DATA", libc::RLIMIT_DATA),
        ("RLIMIT_STACK", libc::RLIMIT_STACK),
        ("RLIMIT_CORE", libc::RLIMIT_CORE),
        ("RLIMIT_RSS", libc::RLIMIT_RSS),
        ("RLIMIT_NPROC", libc::RLIMIT_NPROC),
        ("RLIMIT_MEMLOCK", libc::RLIMIT_MEMLOCK),
        ("RLIMIT_AS", libc::RLIMIT_AS),
        ("RLIMIT_LOCKS", libc::RLIMIT_LOCKS),
        ("RLIMIT_SIGPENDING", libc::RLIMIT_SIGPENDING),
        ("RLIMIT_MSGQUEUE", libc::RLIMIT_MSGQUEUE),
        ("RLIMIT_NICE", libc::RLIMIT_NICE),
        ("RLIMIT_RTPRIO", libc::RLIMIT_RTPRIO),
        ("RLIMIT_RTTIME", libc::RLIMIT_RTTIME),
    ];
    let mut rlimits = Vec::new();
    for (name, res) in names {
        let mut lim = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        // SAFETY: getrlimit fills a valid rlimit.
        assert_eq!(unsafe { libc::getrlimit(res, &mut lim) }, 0);
        rlimits.push(json!({"type": name, "soft": lim.rlim_cur, "hard": lim.rlim_max}));
    }
    rlimits.push(json!({"type": "RLIMIT_NOFILE", "soft": 100, "hard": 200}));
    let mut b = fx.bundle();
    b.process()["rlimits"] = json!(rlimits);
    let out = fx.run_sh(&mut b, "ulimit -Sn; ulimit -Hn");
    assert_eq!(
        out.split_whitespace().collect::<Vec<_>>(),
        ["100", "200"],
        "{out}"
    );
}

// Raising a hard limit takes CAP_SYS_RESOURCE (setrlimit(2)), which root
// lacks on this host: create fails naming the limit, leaving nothing.
#[test]
fn rlimit_above_the_hard_limit_fails_create() {
    const CAP_SYS_RESOURCE: u32 = 24; // capability.h
    berth_only!("the message is berth's");
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let cap_eff = status
        .lines()
        .find_map(|l| l.strip_prefix("CapEff:"))
        .map(|v| u64::from_str_radix(v.trim(), 16).unwrap())
        .unwrap();
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit fills a valid rlimit.
    assert_eq!(unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) }, 0);
    if cap_eff & (1 << CAP_SYS_RESOURCE) != 0 || lim.rlim_max == libc::RLIM_INFINITY {
        eprintln!("SKIP: this process may raise RLIMIT_NOFILE's hard limit");
        return;
    }
    let fx = Fixture::new();
    let mut b = fx.bundle();
    let hard = lim.rlim_max + 1;
    b.process()["rlimits"] = json!([{"type": "RLIMIT_NOFILE", "soft": 1024, "hard": hard}]);
    fx.create(&b, &fx.id("rlimhard"), &[]).fails_with(&[
        "RLIMIT_NOFILE",
        &hard.to_string(),
        "CAP_SYS_RESOURCE",
    ]);
    fx.assert_no_residue();
}

// An unknown rlimit type fails create, naming it.
#[test]
fn unknown_rlimit_fails_create() {
    let fx = Fixture::new();
    let mut b = fx.bundle();
    b.process()["rlimits"] = json!([{"type": "RLIMIT_BOGUS", "soft": 1, "hard": 1}]);
    fx.create(&b, &fx.id("rlim"), &[])
        .fails_with(&["RLIMIT_BOGUS"]);
    fx.assert_no_residue();
}

// ---- LSM labels -----------------------------------------------------------

fn apparmor_enabled() -> bool {
    std::fs::read_to_string("/sys/module/apparmor/parameters/enabled")
        .is_ok_and(|s| s.trim() == "Y")
}

fn selinux_enabled() -> bool {
    std::path::Path::new("/sys/fs/selinux/enforce").exists()
}

// config.md "apparmorProfile" / "selinuxLabel", config-linux.md
// "mountLabel": asked for on a host without that LSM, create fails naming
// the field and the missing LSM rather than run unconfined.
#[test]
fn lsm_labels_without_the_lsm_fail_create() {
    berth_only!("runc ignores labels for LSMs the host lacks");
    let fx = Fixture::new();
    let mut cases = Vec::new();
    if !apparmor_enabled() {
        cases.push(("process", "apparmorProfile", "AppArmor", "berth-test"));
    }
    if !selinux_enabled() {
        cases.push((
            "process",
            "selinuxLabel",
            "SELinux",
            "system_u:system_r:container_t:s0",
        ));
        cases.push((
            "linux",
            "mountLabel",
            "SELinux",
            "system_u:object_r:container_file_t:s0",
        ));
    }
    if cases.is_empty() {
        eprintln!("SKIP: both AppArmor and SELinux are enabled on this host");
        return;
    }
    for (parent, field, lsm, value) in cases {
        let mut b = fx.bundle();
        if parent == "process" {
            b.process()[field] = json!(value);
        } else {
            b.linux()[field] = json!(value);
        }
        let path = format!("{parent}.{field}");
        fx.create(&b, &fx.id("lsm"), &[])
            .fails_with(&[&path, lsm, "not enabled"]);
        fx.assert_no_residue();
    }
}

// An empty label means unset: the container runs.
#[test]
fn empty_lsm_labels_are_unset() {
    let fx = Fixture::new();
    let mut b = fx.bundle();
    b.process()["apparmorProfile"] = json!("");
    b.process()["selinuxLabel"] = json!("");
    b.linux()["mountLabel"] = json!("");
    assert_eq!(fx.run_sh(&mut b, "echo ok").trim(), "ok");
}

// ---- linux.memoryPolicy ---------------------------------------------------

// config-linux.md "Memory policy": set_mempolicy(2) for the container's
// process; numa_maps(5) shows the task policy on mappings without their own.
#[test]
fn memory_policy_bind() {
    berth_only!("runc 1.1.5 predates linux.memoryPolicy");
    let fx = Fixture::new();
    let mut b = fx.bundle();
    b.linux()["memoryPolicy"] = json!({"mode": "MPOL_BIND", "nodes": "0"});
    let out = fx.run_sh(&mut b, "cat /proc/1/numa_maps");
    assert!(out.lines().any(|l| l.contains(" bind:0 ")), "{out}");
    assert!(!out.lines().any(|l| l.contains(" default ")), "{out}");
}

// A mode that needs nodes, without them, fails create naming the field.
#[test]
fn memory_policy_without_nodes_fails_create() {
    berth_only!("runc 1.1.5 predates linux.memoryPolicy");
    let fx = Fixture::new();
    let mut b = fx.bundle();
    b.linux()["memoryPolicy"] = json!({"mode": "MPOL_INTERLEAVE"});
    fx.create(&b, &fx.id("mpol"), &[])
        .fails_with(&["linux.memoryPolicy", "MPOL_INTERLEAVE"]);
    fx.assert_no_residue();
}
