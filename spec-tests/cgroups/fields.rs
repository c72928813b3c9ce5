//! config-linux.md "Control groups": one test per field of `linux.resources`,
//! on whatever layout the suite runs on (this host's hybrid v1, the pure v2
//! guest of spec-tests/run). Each test sets the field and reads the exact
//! value back from the host's cgroup file (v1 name on v1, v2 name on v2);
//! where the host can't apply a field the test asserts berth's documented
//! answer (docs/ARCHITECTURE.md "Cgroups"): a one-line error naming the
//! field and no residue, or a warning naming it and a `SKIP` line here.

use std::fs;
use std::path::{Path, PathBuf};

use serde_json::{json, Value};

use super::{controller_dir, kill_and_delete, read_trimmed, start_sleeper};
use crate::harness::*;

/// Starts a sleeper with `resources` as linux.resources; returns (id, pid, create's stderr).
fn sleeper_with(fx: &Fixture, resources: Value, what: &str) -> (String, i32, String) {
    let mut b = fx.bundle();
    b.linux()["resources"] = resources;
    b.set_args(&["sleep", "1000"]);
    let id = fx.id(what);
    let out = fx.create(&b, &id, &[]).ok();
    fx.start(&id).ok();
    let pid = fx.pid(&id);
    (id, pid, out.stderr)
}

/// The container with `resources` must not be created: one line naming
/// each needle (berth's words), and nothing left behind.
fn refused(resources: Value, what: &str, needles: &[&str]) {
    let fx = Fixture::new();
    let mut b = fx.bundle();
    b.linux()["resources"] = resources;
    let id = fx.id(what);
    fx.create(&b, &id, &[]).fails_with(berth_words(needles));
    assert!(
        cgroup_dirs_named(&id).is_empty(),
        "cgroup left: {:?}",
        cgroup_dirs_named(&id)
    );
    fx.assert_no_residue();
}

/// Runs with `resources`, expects a warning naming `field` on stderr, and
/// prints the SKIP line of a field this host can't apply.
fn skipped_with_warning(resources: Value, what: &str, field: &str, reason: &str) {
    let fx = Fixture::new();
    let (id, _pid, stderr) = sleeper_with(&fx, resources, what);
    if is_berth() {
        assert!(
            stderr.contains("warning") && stderr.contains(field) && stderr.contains("ignored"),
            "expected a warning naming {field}: {stderr}"
        );
    }
    eprintln!(
        "SKIP {what}: {field} is not applied on this host ({reason}); berth warned: {stderr}"
    );
    kill_and_delete(&fx, &id);
    fx.assert_no_residue();
}

fn v2() -> bool {
    is_cgroup2_only()
}

/// The value of the v1 or v2 file, whichever the container's cgroup has.
fn value(pid: i32, controller: &str, v1: &str, v2: &str) -> String {
    let dir = controller_dir(pid, controller);
    read_trimmed(&super::limit_file(&dir, v1, v2))
}

fn check_value(resources: Value, what: &str, controller: &str, v1: (&str, &str), v2: (&str, &str)) {
    let fx = Fixture::new();
    let (id, pid, _) = sleeper_with(&fx, resources, what);
    let dir = controller_dir(pid, controller);
    let (file, want) = if dir.join(v1.0).exists() { v1 } else { v2 };
    assert_eq!(
        read_trimmed(&dir.join(file)),
        want,
        "{}",
        dir.join(file).display()
    );
    kill_and_delete(&fx, &id);
    fx.assert_no_residue();
}

/// The cgroup root of `controller` (v1 hierarchy mount or the v2 root).
fn controller_root(controller: &str) -> PathBuf {
    for (point, fstype, ctrls) in cgroup_mounts() {
        if fstype == "cgroup" && ctrls.iter().any(|c| c == controller) {
            return point;
        }
    }
    PathBuf::from("/sys/fs/cgroup")
}

fn v1_has(controller: &str, file: &str) -> bool {
    !v2() && controller_root(controller).join(file).exists()
}

/// major:minor of a real disk of this machine (not loop, ram or zram), or
/// None (the v2 guest's root is virtio-fs: no disk).
fn disk() -> Option<(u64, u64)> {
    let mut found = Vec::new();
    for e in fs::read_dir("/sys/block").unwrap().flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if ["loop", "ram", "zram", "nbd", "dm-"]
            .iter()
            .any(|p| name.starts_with(p))
        {
            continue;
        }
        let dev = read_trimmed(&e.path().join("dev"));
        let (ma, mi) = dev.split_once(':').unwrap();
        found.push((name, ma.parse().unwrap(), mi.parse().unwrap()));
    }
    found.sort();
    found.first().map(|(_, ma, mi)| (*ma, *mi))
}

// ---------------------------------------------------------------- memory

// config-linux.md "Memory" `reservation`: v1 memory.soft_limit_in_bytes, v2 memory.low.
#[test]
fn memory_reservation() {
    check_value(
        json!({"memory": {"limit": 67108864, "reservation": 33554432}}),
        "memres",
        "memory",
        ("memory.soft_limit_in_bytes", "33554432"),
        ("memory.low", "33554432"),
    );
}

// config-linux.md "Memory" `swap` (memory+swap): v1 memory.memsw.limit_in_bytes;
// v2 memory.swap.max holds swap minus limit (runc's conversion).
#[test]
fn memory_swap() {
    let res = json!({"memory": {"limit": 33554432, "swap": 67108864}});
    if !v2() && !v1_has("memory", "memory.memsw.limit_in_bytes") {
        return refused(res, "memswap", &["memory.swap", "swap accounting"]);
    }
    check_value(
        res,
        "memswap",
        "memory",
        ("memory.memsw.limit_in_bytes", "67108864"),
        ("memory.swap.max", "33554432"),
    );
}

// config-linux.md "Memory" `kernel`: deprecated; Linux no longer enforces it.
// runc ignores it with a warning, so does berth (naming the field).
#[test]
fn memory_kernel_is_ignored_with_a_warning() {
    skipped_with_warning(
        json!({"memory": {"kernel": 10485760}}),
        "memkernel",
        "memory.kernel",
        "kernel memory limits are deprecated and no longer enforced",
    );
}

// config-linux.md "Memory" `kernelTCP`: v1 memory.kmem.tcp.limit_in_bytes
// where the kernel has it; cgroup v2 has no such limit (warning, as runc).
#[test]
fn memory_kernel_tcp() {
    let res = json!({"memory": {"kernelTCP": 20971520}});
    if v1_has("memory", "memory.kmem.tcp.limit_in_bytes") {
        berth_only!("runc 1.1.5 ignores kernelTCP with a warning");
        let fx = Fixture::new();
        let (id, pid, _) = sleeper_with(&fx, res, "memtcp");
        let dir = controller_dir(pid, "memory");
        assert_eq!(
            read_trimmed(&dir.join("memory.kmem.tcp.limit_in_bytes")),
            "20971520"
        );
        kill_and_delete(&fx, &id);
        fx.assert_no_residue();
    } else {
        skipped_with_warning(
            res,
            "memtcp",
            "memory.kernelTCP",
            "no kernel TCP memory limit",
        );
    }
}

// config-linux.md "Memory" `swappiness`: v1 memory.swappiness; cgroup v2 has none.
#[test]
fn memory_swappiness() {
    let res = json!({"memory": {"swappiness": 30}});
    if v2() {
        return skipped_with_warning(res, "memswappy", "memory.swappiness", "cgroup v2");
    }
    check_value(
        res,
        "memswappy",
        "memory",
        ("memory.swappiness", "30"),
        ("", ""),
    );
}

// config-linux.md "Memory" `disableOOMKiller`: v1 memory.oom_control
// `oom_kill_disable 1`; cgroup v2 can't disable the OOM killer.
#[test]
fn memory_disable_oom_killer() {
    let res = json!({"memory": {"limit": 33554432, "disableOOMKiller": true}});
    if v2() {
        return skipped_with_warning(res, "memoomoff", "memory.disableOOMKiller", "cgroup v2");
    }
    let fx = Fixture::new();
    let (id, pid, _) = sleeper_with(&fx, res, "memoomoff");
    let dir = controller_dir(pid, "memory");
    let control = read_trimmed(&dir.join("memory.oom_control"));
    assert!(
        control.lines().any(|l| l == "oom_kill_disable 1"),
        "{control}"
    );
    kill_and_delete(&fx, &id);
    fx.assert_no_residue();
}

// config-linux.md "Memory" `useHierarchy`: true is what every current kernel
// does (v1 memory.use_hierarchy reads 1; v2 is hierarchical by design).
#[test]
fn memory_use_hierarchy_true() {
    let fx = Fixture::new();
    let (id, pid, _) = sleeper_with(&fx, json!({"memory": {"useHierarchy": true}}), "memhier");
    if !v2() {
        let dir = controller_dir(pid, "memory");
        assert_eq!(read_trimmed(&dir.join("memory.use_hierarchy")), "1");
    }
    kill_and_delete(&fx, &id);
    fx.assert_no_residue();
}

// `useHierarchy: false` is a resource the host can't set (Linux refuses
// memory.use_hierarchy 0 since 5.16, v2 has no flat mode): a clear error
// naming the field, non-zero, no residue.
#[test]
fn memory_use_hierarchy_false_is_refused() {
    berth_only!("runc 1.1.5 ignores useHierarchy");
    refused(
        json!({"memory": {"useHierarchy": false}}),
        "memflat",
        &["memory.useHierarchy", "hierarchical"],
    );
}

// config-linux.md "Memory" `checkBeforeUpdate`: `update` refuses a limit
// below the container's current usage (and leaves the old limit); a limit
// above it is applied.
#[test]
fn memory_check_before_update() {
    berth_only!("runc 1.1.5 has no checkBeforeUpdate");
    let fx = Fixture::new();
    let mut b = fx.bundle();
    b.linux()["resources"] = json!({"memory": {"limit": 67108864}});
    // Hold about 4 MB so the usage is well above the refused limit.
    b.set_sh("x=$(head -c 4000000 /dev/zero | tr '\\0' a); sleep 1000; echo ${#x}");
    let id = fx.id("memcheck");
    fx.create(&b, &id, &[]).ok();
    fx.start(&id).ok();
    let pid = fx.pid(&id);
    let dir = controller_dir(pid, "memory");
    let file = super::limit_file(&dir, "memory.limit_in_bytes", "memory.max");
    let usage_file = super::limit_file(&dir, "memory.usage_in_bytes", "memory.current");
    assert!(wait_until(std::time::Duration::from_secs(10), || {
        read_trimmed(&usage_file).parse::<u64>().unwrap() > 3_000_000
    }));
    let res = fx.dir.clone().join("res.json");
    fs::write(
        &res,
        json!({"memory": {"limit": 1048576, "checkBeforeUpdate": true}}).to_string(),
    )
    .unwrap();
    fx.rt(&["update", "--resources", res.to_str().unwrap(), &id])
        .run()
        .fails_with(&["checkBeforeUpdate", "usage"]);
    assert_eq!(read_trimmed(&file), "67108864");
    fs::write(
        &res,
        json!({"memory": {"limit": 50331648, "checkBeforeUpdate": true}}).to_string(),
    )
    .unwrap();
    fx.rt(&["update", "--resources", res.to_str().unwrap(), &id])
        .run()
        .ok();
    assert_eq!(read_trimmed(&file), "50331648");
    kill_and_delete(&fx, &id);
    fx.assert_no_residue();
}

// ------------------------------------------------------------------- cpu

// config-linux.md "CPU" `shares`: v1 cpu.shares; v2 cpu.weight converted as
// libcgroups and runc 1.3 do (the curve that maps the default 1024 to the
// default weight 100; 512 is 59). runc 1.1.5's linear formula gave 20.
#[test]
fn cpu_shares() {
    check_value(
        json!({"cpu": {"shares": 512}}),
        "cpushares",
        "cpu",
        ("cpu.shares", "512"),
        ("cpu.weight", if is_berth() { "59" } else { "20" }),
    );
}

// config-linux.md "CPU" `quota` and `period`: v1 cfs files; v2 cpu.max.
#[test]
fn cpu_quota_and_period() {
    let fx = Fixture::new();
    let (id, pid, _) = sleeper_with(
        &fx,
        json!({"cpu": {"quota": 50000, "period": 200000}}),
        "cpuquota",
    );
    let dir = controller_dir(pid, "cpu");
    if dir.join("cpu.cfs_quota_us").exists() {
        assert_eq!(read_trimmed(&dir.join("cpu.cfs_quota_us")), "50000");
        assert_eq!(read_trimmed(&dir.join("cpu.cfs_period_us")), "200000");
    } else {
        assert_eq!(read_trimmed(&dir.join("cpu.max")), "50000 200000");
    }
    kill_and_delete(&fx, &id);
    fx.assert_no_residue();
}

// config-linux.md "CPU" `burst`: v1 cpu.cfs_burst_us; v2 cpu.max.burst.
#[test]
fn cpu_burst() {
    berth_only!("runc 1.1.5 predates cpu burst");
    check_value(
        json!({"cpu": {"quota": 50000, "period": 100000, "burst": 10000}}),
        "cpuburst",
        "cpu",
        ("cpu.cfs_burst_us", "10000"),
        ("cpu.max.burst", "10000"),
    );
}

// config-linux.md "CPU" `realtimeRuntime`/`realtimePeriod`: v1
// cpu.rt_runtime_us/cpu.rt_period_us (needs CONFIG_RT_GROUP_SCHED); cgroup
// v2 has no real-time bandwidth: a clear error naming the field.
#[test]
fn cpu_realtime() {
    let res = json!({"cpu": {"realtimeRuntime": 1000, "realtimePeriod": 500000}});
    if v2() {
        return refused(res, "cpurt", &["realtimeRuntime", "cgroup v2"]);
    }
    if !v1_has("cpu", "cpu.rt_runtime_us") {
        return refused(res, "cpurt", &["realtimeRuntime", "CONFIG_RT_GROUP_SCHED"]);
    }
    let fx = Fixture::new();
    let (id, pid, _) = sleeper_with(&fx, res, "cpurt");
    let dir = controller_dir(pid, "cpu");
    assert_eq!(read_trimmed(&dir.join("cpu.rt_runtime_us")), "1000");
    assert_eq!(read_trimmed(&dir.join("cpu.rt_period_us")), "500000");
    kill_and_delete(&fx, &id);
    fx.assert_no_residue();
}

// config-linux.md "CPU" `idle`: cpu.idle (v2, and v1 on kernels that have it).
#[test]
fn cpu_idle() {
    berth_only!("runc 1.1.5 predates cpu.idle");
    let res = json!({"cpu": {"idle": 1}});
    if !v2() && !v1_has("cpu", "cpu.idle") {
        return refused(res, "cpuidle", &["cpu.idle"]);
    }
    check_value(res, "cpuidle", "cpu", ("cpu.idle", "1"), ("cpu.idle", "1"));
}

// config-linux.md "CPU" `cpus` and `mems`: cpuset files, and the process
// inside may only run on those cpus.
#[test]
fn cpu_cpus_and_mems() {
    let fx = Fixture::new();
    let mut b = fx.bundle();
    b.linux()["resources"] = json!({"cpu": {"cpus": "0", "mems": "0"}});
    b.set_sh("grep Cpus_allowed_list /proc/self/status; sleep 1000");
    let id = fx.id("cpuset");
    let out = fx.create(&b, &id, &[]).ok();
    fx.start(&id).ok();
    let pid = fx.pid(&id);
    let dir = controller_dir(pid, "cpuset");
    assert_eq!(read_trimmed(&dir.join("cpuset.cpus")), "0");
    assert_eq!(read_trimmed(&dir.join("cpuset.mems")), "0");
    assert!(
        wait_until(std::time::Duration::from_secs(5), || {
            out.reread_stdout().contains("Cpus_allowed_list:\t0\n")
        }),
        "inside: {:?}",
        out.reread_stdout()
    );
    kill_and_delete(&fx, &id);
    fx.assert_no_residue();
}

// ----------------------------------------------------------------- blockIO

// config-linux.md "Block IO" `weight`: v1 blkio.weight or blkio.bfq.weight;
// v2 io.bfq.weight, or io.weight converted to 1..10000 as runc does.
#[test]
fn blkio_weight() {
    if !v2() && !v1_blkio_has_a_weight_file() {
        // Neither CFQ (gone since Linux 5.0) nor BFQ: the field can't apply.
        refused(
            json!({"blockIO": {"weight": 500}}),
            "blkweight",
            &["linux.resources.blockIO.weight", "BFQ"],
        );
        println!(
            "SKIP blkio_weight: no blkio.weight or blkio.bfq.weight on this host (refusal checked)"
        );
        return;
    }
    let fx = Fixture::new();
    let (id, pid, _) = sleeper_with(&fx, json!({"blockIO": {"weight": 500}}), "blkweight");
    let dir = controller_dir(pid, if v2() { "io" } else { "blkio" });
    let got = [
        "blkio.weight",
        "blkio.bfq.weight",
        "io.bfq.weight",
        "io.weight",
    ]
    .iter()
    .find(|f| dir.join(f).exists())
    .map(|f| (f.to_string(), read_trimmed(&dir.join(f))))
    .expect("a weight file");
    let want = if got.0 == "io.weight" {
        "default 4950"
    } else {
        "500"
    };
    assert!(
        got.1 == want || got.1 == format!("default {want}"),
        "{} = {:?}, want {want}",
        got.0,
        got.1
    );
    kill_and_delete(&fx, &id);
    fx.assert_no_residue();
}

/// Whether a v1 blkio cgroup here has a weight file: a probe cgroup made
/// and removed by the test itself (BFQ's files are not on the root).
fn v1_blkio_has_a_weight_file() -> bool {
    let probe =
        Path::new("/sys/fs/cgroup/blkio").join(format!("spec-test-probe-{}", std::process::id()));
    if fs::create_dir(&probe).is_err() {
        return true;
    }
    let has = probe.join("blkio.weight").exists() || probe.join("blkio.bfq.weight").exists();
    let _ = fs::remove_dir(&probe);
    has
}

// config-linux.md "Block IO" `leafWeight`: CFQ's leaf weight is gone from
// Linux (5.0) and cgroup v2 never had one: a clear error naming the field.
#[test]
fn blkio_leaf_weight_is_refused() {
    refused(
        json!({"blockIO": {"leafWeight": 500}}),
        "blkleaf",
        &["blockIO.leafWeight"],
    );
}

/// A loop device on a sparse file, detached on drop.
struct Loop {
    dev: String,
}

impl Loop {
    fn new(dir: &Path) -> Option<Loop> {
        let file = dir.join("loop.img");
        fs::write(&file, vec![0u8; 1 << 20]).ok()?;
        let out = std::process::Command::new("losetup")
            .args(["-f", "--show"])
            .arg(&file)
            .output()
            .ok()?;
        if !out.status.success() {
            return None;
        }
        Some(Loop {
            dev: String::from_utf8_lossy(&out.stdout).trim().to_string(),
        })
    }

    fn sys(&self) -> PathBuf {
        Path::new("/sys/block").join(self.dev.trim_start_matches("/dev/"))
    }
}

impl Drop for Loop {
    fn drop(&mut self) {
        let _ = std::process::Command::new("losetup")
            .args(["-d", &self.dev])
            .status();
    }
}

// config-linux.md "Block IO" `weightDevice`: per-device weights need the
// bfq scheduler on the device: v1 blkio.bfq.weight_device, v2 io.bfq.weight.
// The test makes its own loop device and gives it bfq; where bfq isn't
// available it checks the error instead.
#[test]
fn blkio_weight_device() {
    let fx = Fixture::new();
    let Some(lo) = Loop::new(&fx.dir) else {
        eprintln!("SKIP blkio_weight_device: losetup could not make a loop device");
        return;
    };
    let devno = read_trimmed(&lo.sys().join("dev"));
    let (ma, mi) = devno.split_once(':').unwrap();
    let (ma, mi): (i64, i64) = (ma.parse().unwrap(), mi.parse().unwrap());
    let res = json!({"blockIO": {"weightDevice": [{"major": ma, "minor": mi, "weight": 300}]}});
    if fs::write(lo.sys().join("queue/scheduler"), "bfq").is_err() {
        eprintln!("SKIP blkio_weight_device (positive half): no bfq scheduler here");
        return refused(res, "blkwdev", &["blockIO.weightDevice"]);
    }
    let (id, pid, _) = sleeper_with(&fx, res, "blkwdev");
    let dir = controller_dir(pid, if v2() { "io" } else { "blkio" });
    let file = super::limit_file(&dir, "blkio.bfq.weight_device", "io.bfq.weight");
    let text = read_trimmed(&file);
    assert!(
        text.lines().any(|l| l == format!("{devno} 300")),
        "{}: {text}",
        file.display()
    );
    kill_and_delete(&fx, &id);
    fx.assert_no_residue();
}

// The same field on a device whose scheduler is not bfq: the kernel refuses
// it (EOPNOTSUPP), so create fails naming the field.
#[test]
fn blkio_weight_device_without_bfq_is_refused() {
    let fx = Fixture::new();
    let Some(lo) = Loop::new(&fx.dir) else {
        eprintln!(
            "SKIP blkio_weight_device_without_bfq_is_refused: losetup could not make a loop device"
        );
        return;
    };
    if fs::write(lo.sys().join("queue/scheduler"), "none").is_err() {
        eprintln!("SKIP blkio_weight_device_without_bfq_is_refused: can't set scheduler none");
        return;
    }
    let devno = read_trimmed(&lo.sys().join("dev"));
    let (ma, mi) = devno.split_once(':').unwrap();
    let (ma, mi): (i64, i64) = (ma.parse().unwrap(), mi.parse().unwrap());
    drop(fx);
    refused(
        json!({"blockIO": {"weightDevice": [{"major": ma, "minor": mi, "weight": 300}]}}),
        "blkwdevnobfq",
        &["blockIO.weightDevice"],
    );
}

/// Throttle test: `field` with rate 1048576 on the machine's disk; v1 `v1file`
/// holds "maj:min rate", v2 io.max has `key=rate` on the device's line.
fn throttle(field: &str, what: &str, v1file: &str, key: &str) {
    let fx = Fixture::new();
    let lo;
    let (ma, mi) = match disk() {
        Some(d) => d,
        None => {
            let Some(l) = Loop::new(&fx.dir) else {
                eprintln!(
                    "SKIP {what}: this machine has no block device (no disk in /sys/block, \
                     losetup fails), so there is nothing to throttle"
                );
                return;
            };
            lo = l;
            let devno = read_trimmed(&lo.sys().join("dev"));
            let (ma, mi) = devno.split_once(':').unwrap();
            (ma.parse().unwrap(), mi.parse().unwrap())
        }
    };
    let (id, pid, _) = sleeper_with(
        &fx,
        json!({"blockIO": {field: [{"major": ma, "minor": mi, "rate": 1048576}]}}),
        what,
    );
    if v2() {
        let text = value(pid, "io", "io.max", "io.max");
        let line = text
            .lines()
            .find(|l| l.starts_with(&format!("{ma}:{mi} ")))
            .unwrap_or_else(|| panic!("no {ma}:{mi} in io.max: {text}"));
        assert!(
            line.split(' ').any(|kv| kv == format!("{key}=1048576")),
            "{line}"
        );
    } else {
        let text = value(pid, "blkio", v1file, v1file);
        assert_eq!(text, format!("{ma}:{mi} 1048576"));
    }
    kill_and_delete(&fx, &id);
    fx.assert_no_residue();
}

// config-linux.md "Block IO" `throttleReadBpsDevice`.
#[test]
fn blkio_throttle_read_bps() {
    throttle(
        "throttleReadBpsDevice",
        "blkrbps",
        "blkio.throttle.read_bps_device",
        "rbps",
    );
}

// config-linux.md "Block IO" `throttleWriteBpsDevice`.
#[test]
fn blkio_throttle_write_bps() {
    throttle(
        "throttleWriteBpsDevice",
        "blkwbps",
        "blkio.throttle.write_bps_device",
        "wbps",
    );
}

// config-linux.md "Block IO" `throttleReadIOPSDevice`.
#[test]
fn blkio_throttle_read_iops() {
    throttle(
        "throttleReadIOPSDevice",
        "blkriops",
        "blkio.throttle.read_iops_device",
        "riops",
    );
}

// config-linux.md "Block IO" `throttleWriteIOPSDevice`.
#[test]
fn blkio_throttle_write_iops() {
    throttle(
        "throttleWriteIOPSDevice",
        "blkwiops",
        "blkio.throttle.write_iops_device",
        "wiops",
    );
}

// ----------------------------------------------------- hugetlb, net, rdma

// config-linux.md "Huge page limits": v1 hugetlb.2MB.limit_in_bytes, v2
// hugetlb.2MB.max. On this hybrid host hugetlb is only a cgroup2
// controller, which runc doesn't use for limits either: an error naming it.
#[test]
fn hugepage_limits() {
    if !Path::new("/sys/kernel/mm/hugepages/hugepages-2048kB").exists() {
        eprintln!("SKIP hugepage_limits: the kernel has no 2MB huge pages");
        return;
    }
    let res = json!({"hugepageLimits": [{"pageSize": "2MB", "limit": 4194304}]});
    let v1_hugetlb = cgroup_mounts()
        .iter()
        .any(|(_, t, c)| t == "cgroup" && c.iter().any(|x| x == "hugetlb"));
    let v2_hugetlb = v2()
        && fs::read_to_string("/sys/fs/cgroup/cgroup.controllers")
            .unwrap_or_default()
            .split_whitespace()
            .any(|c| c == "hugetlb");
    if !v1_hugetlb && !v2_hugetlb {
        return refused(res, "huge", &["hugepageLimits", "hugetlb"]);
    }
    check_value(
        res,
        "huge",
        "hugetlb",
        ("hugetlb.2MB.limit_in_bytes", "4194304"),
        ("hugetlb.2MB.max", "4194304"),
    );
}

fn v1_mounted(controller: &str) -> bool {
    cgroup_mounts()
        .iter()
        .any(|(_, t, c)| t == "cgroup" && c.iter().any(|x| x == controller))
}

// config-linux.md "Network" `classID`: v1 net_cls.classid; cgroup v2 has no
// net_cls (warning, as runc ignores it there); on a v1 host without a net_cls
// hierarchy an error naming the field, as runc.
#[test]
fn network_class_id() {
    let res = json!({"network": {"classID": 1048577}});
    if v2() {
        return skipped_with_warning(res, "netcls", "network.classID", "cgroup v2 has no net_cls");
    }
    if !v1_mounted("net_cls") {
        return refused(res, "netcls", &["network.classID", "net_cls"]);
    }
    check_value(
        res,
        "netcls",
        "net_cls",
        ("net_cls.classid", "1048577"),
        ("", ""),
    );
}

// config-linux.md "Network" `priorities`: v1 net_prio.ifpriomap.
#[test]
fn network_priorities() {
    let res = json!({"network": {"priorities": [{"name": "lo", "priority": 5}]}});
    if v2() {
        return skipped_with_warning(
            res,
            "netprio",
            "network.priorities",
            "cgroup v2 has no net_prio",
        );
    }
    if !v1_mounted("net_prio") {
        return refused(res, "netprio", &["network.priorities", "net_prio"]);
    }
    let fx = Fixture::new();
    let (id, pid, _) = sleeper_with(&fx, res, "netprio");
    let text = read_trimmed(&controller_dir(pid, "net_prio").join("net_prio.ifpriomap"));
    assert!(text.lines().any(|l| l == "lo 5"), "{text}");
    kill_and_delete(&fx, &id);
    fx.assert_no_residue();
}

// config-linux.md "RDMA": v2 rdma.max. There is no RDMA device on the test
// machines, so the kernel refuses any limit and create must fail naming the
// field; on v1 hosts berth refuses rdma outright.
#[test]
fn rdma_limits() {
    let res = json!({"rdma": {"mlx5_1": {"hcaHandles": 3, "hcaObjects": 10000}}});
    refused(res, "rdma", &["rdma"]);
}

// config-linux.md "Unified": key/values written to the v2 files as given; on
// a v1 or hybrid host an error (runc: "cannot use unified on cgroup v1").
#[test]
fn unified_key_values() {
    let res = json!({"unified": {"memory.high": "33554432", "pids.max": "23"}});
    if !v2() {
        return refused(res, "unified", &["unified"]);
    }
    let fx = Fixture::new();
    let (id, pid, _) = sleeper_with(&fx, res, "unified");
    assert_eq!(
        value(pid, "memory", "memory.high", "memory.high"),
        "33554432"
    );
    assert_eq!(value(pid, "pids", "pids.max", "pids.max"), "23");
    kill_and_delete(&fx, &id);
    fx.assert_no_residue();
}

// `update` goes through the same field checks: a field the host can't set
// changes nothing and names the field.
#[test]
fn update_with_an_unsettable_field_is_refused() {
    berth_only!("runc's messages differ");
    let fx = Fixture::new();
    let mut b = fx.bundle();
    b.linux()["resources"] = json!({"pids": {"limit": 40}});
    let (id, pid) = start_sleeper(&fx, &mut b, "updbad");
    let res = fx.dir.clone().join("res.json");
    let bad = if v2() {
        json!({"pids": {"limit": 50}, "cpu": {"realtimeRuntime": 1000}})
    } else {
        json!({"pids": {"limit": 50}, "unified": {"pids.max": "50"}})
    };
    fs::write(&res, bad.to_string()).unwrap();
    fx.rt(&["update", "--resources", res.to_str().unwrap(), &id])
        .run()
        .fails_with(&["linux.resources."]);
    assert_eq!(
        read_trimmed(&controller_dir(pid, "pids").join("pids.max")),
        "40"
    );
    kill_and_delete(&fx, &id);
    fx.assert_no_residue();
}
