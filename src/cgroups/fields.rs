//! Which `linux.resources` fields this host can apply, decided field by field
//! before anything is written, and the writes libcgroups 0.7 leaves out.
//!
//! libcgroups silently drops some fields (v1: `blockIO.leafWeight`,
//! `weightDevice`, `rdma`, `unified`, `memory.useHierarchy`; v2: `rdma`,
//! `network`, `swappiness`...) and names a controller rather than the field
//! when one is missing. Here every field the host can't apply is a one-line
//! error naming it, except where runc ignores a field with a warning (the
//! deprecated kernel memory limits, and the v1-only settings cgroup v2 has
//! no file for): berth warns on stderr, naming the field and the reason, and
//! goes on. The table is in docs/ARCHITECTURE.md "Cgroups".

use std::path::{Path, PathBuf};

use anyhow::{bail, Result};
use oci_spec::runtime::LinuxResources;

use super::v1_hot_path::Hierarchy;

/// The layout the fields are checked against.
pub enum Host<'a> {
    /// v1 (or hybrid) hierarchies the container joined.
    V1(&'a [Hierarchy]),
    /// Pure cgroup v2 mounted at `root`.
    V2 { root: &'a Path },
}

/// A write libcgroups doesn't make: `value` to `file`, for config field `field`.
#[derive(Debug, PartialEq, Eq)]
pub struct Write {
    pub field: String,
    pub file: PathBuf,
    pub value: String,
}

/// What to do with a config's resources on this host.
pub struct Plan {
    /// What libcgroups applies (the fields it handles right).
    pub for_libcgroups: LinuxResources,
    /// Then these, in order.
    pub writes: Vec<Write>,
    /// Fields skipped, with the reason (printed as warnings).
    pub skipped: Vec<String>,
}

/// Checks every field of `r` against the host and splits the work.
/// `path` is the container's cgroup (relative to each hierarchy's mount).
pub fn plan(r: &LinuxResources, host: &Host, path: &Path) -> Result<Plan> {
    let mut rest = r.clone();
    let mut writes = Vec::new();
    let mut skipped = Vec::new();
    let rel = path.strip_prefix("/").unwrap_or(path);
    let v1_dir = |controller: &str| -> Option<PathBuf> {
        match host {
            Host::V1(hs) => hs
                .iter()
                .find(|h| h.controllers.iter().any(|c| c == controller))
                .map(|h| h.mount.join(rel)),
            Host::V2 { .. } => None,
        }
    };
    let v2_controllers = match host {
        Host::V2 { root } => std::fs::read_to_string(root.join("cgroup.controllers"))
            .unwrap_or_default()
            .split_whitespace()
            .map(str::to_string)
            .collect::<Vec<_>>(),
        Host::V1(_) => Vec::new(),
    };
    let is_v2 = matches!(host, Host::V2 { .. });
    let v2_dir = match host {
        Host::V2 { root } => root.join(rel),
        Host::V1(_) => PathBuf::new(),
    };
    let need_v1 = |field: &str, controller: &str| -> Result<PathBuf> {
        v1_dir(controller).ok_or_else(|| {
            anyhow::anyhow!(
                "linux.resources.{field}: this host has no {controller} cgroup v1 hierarchy \
                 (the {controller} controller is not mounted as cgroup v1)"
            )
        })
    };
    let need_v2 = |field: &str, controller: &str| -> Result<()> {
        if v2_controllers.iter().any(|c| c == controller) {
            Ok(())
        } else {
            bail!(
                "linux.resources.{field}: the {controller} controller is not available in this \
                 host's cgroup v2 hierarchy (cgroup.controllers: {})",
                v2_controllers.join(" ")
            )
        }
    };

    if let Some(m) = r.memory() {
        let mut m2 = *m;
        if m.kernel().is_some() {
            // runc ignores it with a warning; kernels since 6.1 ignore writes.
            skipped.push(
                "linux.resources.memory.kernel is ignored: kernel memory limits are deprecated \
                 and no longer enforced by Linux (runc ignores them too)"
                    .to_string(),
            );
            m2.set_kernel(None);
        }
        if m.kernel_tcp().is_some() {
            let has_tcp = !is_v2
                && memory_root(host)
                    .join("memory.kmem.tcp.limit_in_bytes")
                    .exists();
            if !has_tcp {
                skipped.push(format!(
                    "linux.resources.memory.kernelTCP is ignored: {}",
                    if is_v2 {
                        "cgroup v2 has no kernel TCP memory limit"
                    } else {
                        "this kernel has no memory.kmem.tcp.limit_in_bytes"
                    }
                ));
                m2.set_kernel_tcp(None);
            }
        }
        if m.use_hierarchy() == Some(false) {
            bail!(
                "linux.resources.memory.useHierarchy false: this kernel's memory controller \
                 is always hierarchical"
            );
        }
        m2.set_use_hierarchy(None);
        if is_v2 {
            if m.swappiness().is_some() {
                skipped.push(
                    "linux.resources.memory.swappiness is ignored: cgroup v2 has no per-cgroup \
                     swappiness"
                        .to_string(),
                );
                m2.set_swappiness(None);
            }
            if m.disable_oom_killer() == Some(true) {
                skipped.push(
                    "linux.resources.memory.disableOOMKiller is ignored: cgroup v2 can't disable \
                     the OOM killer"
                        .to_string(),
                );
            }
            m2.set_disable_oom_killer(None);
        } else {
            need_v1("memory", "memory")?;
            if m.swap().is_some_and(|s| s != 0)
                && !memory_root(host)
                    .join("memory.memsw.limit_in_bytes")
                    .exists()
            {
                bail!(
                    "linux.resources.memory.swap: swap accounting is off on this host \
                     (no memory.memsw.limit_in_bytes; boot with swapaccount=1)"
                );
            }
        }
        rest.set_memory(Some(m2));
    }

    if let Some(c) = r.cpu() {
        let realtime = c.realtime_runtime().is_some_and(|v| v != 0)
            || c.realtime_period().is_some_and(|v| v != 0);
        if is_v2 {
            if realtime {
                bail!(
                    "linux.resources.cpu.realtimeRuntime/realtimePeriod: cgroup v2 has no \
                     real-time cpu bandwidth"
                );
            }
        } else {
            let cpu_fields = c.shares().is_some()
                || c.quota().is_some()
                || c.period().is_some()
                || c.burst().is_some()
                || c.idle().is_some()
                || realtime;
            if cpu_fields {
                need_v1("cpu", "cpu")?;
                let root = cpu_root(host);
                let must_have = |field: &str, file: &str, why: &str| -> Result<()> {
                    if root.join(file).exists() {
                        Ok(())
                    } else {
                        bail!("linux.resources.cpu.{field}: this kernel has no {file} ({why})")
                    }
                };
                if realtime {
                    must_have(
                        "realtimeRuntime",
                        "cpu.rt_runtime_us",
                        "needs CONFIG_RT_GROUP_SCHED",
                    )?;
                }
                if c.idle().is_some() {
                    must_have("idle", "cpu.idle", "needs Linux 5.15")?;
                }
                if c.burst().is_some() {
                    must_have("burst", "cpu.cfs_burst_us", "needs Linux 5.14")?;
                }
            }
            if c.cpus().is_some() || c.mems().is_some() {
                need_v1("cpu.cpus", "cpuset")?;
            }
        }
    }

    if let Some(b) = r.block_io() {
        let mut b2 = b.clone();
        if is_v2 {
            need_v2("blockIO", "io")?;
            if b.leaf_weight().is_some_and(|w| w != 0) {
                bail!("linux.resources.blockIO.leafWeight: cgroup v2 has no leaf weight");
            }
            if b.weight_device()
                .iter()
                .flatten()
                .any(|d| d.leaf_weight().is_some_and(|w| w != 0))
            {
                bail!(
                    "linux.resources.blockIO.weightDevice[].leafWeight: cgroup v2 has no leaf \
                     weight"
                );
            }
            // libcgroups 0.7 converts the weight in u16 and overflows
            // (a panic) for any weight above 16: written here, as runc does.
            if let Some(w) = b.weight().filter(|w| *w != 0) {
                if !(10..=1000).contains(&w) {
                    bail!("linux.resources.blockIO.weight {w}: must be between 10 and 1000");
                }
                let bfq = v2_dir.join("io.bfq.weight");
                writes.push(if bfq.exists() {
                    Write {
                        field: "blockIO.weight".into(),
                        file: bfq,
                        value: w.to_string(),
                    }
                } else {
                    Write {
                        field: "blockIO.weight".into(),
                        file: v2_dir.join("io.weight"),
                        value: (1 + (u32::from(w) - 10) * 9999 / 990).to_string(),
                    }
                });
            }
            b2.set_weight(None);
            // Written here so that a failure names the field.
            for d in b.weight_device().iter().flatten() {
                if let Some(w) = d.weight() {
                    writes.push(Write {
                        field: "blockIO.weightDevice".into(),
                        file: v2_dir.join("io.bfq.weight"),
                        value: format!("{}:{} {w}", d.major(), d.minor()),
                    });
                }
            }
            b2.set_weight_device(None);
        } else {
            let dir = need_v1("blockIO", "blkio")?;
            // libcgroups writes neither leafWeight nor weightDevice on v1.
            if let Some(w) = b.leaf_weight().filter(|w| *w != 0) {
                writes.push(Write {
                    field: "blockIO.leafWeight".into(),
                    file: dir.join("blkio.leaf_weight"),
                    value: w.to_string(),
                });
            }
            b2.set_leaf_weight(None);
            // libcgroups writes blkio.bfq.weight when there is no
            // blkio.weight, and fails with a bare ENOENT when neither is
            // there: without CFQ (gone since Linux 5.0) and without BFQ.
            if b.weight().is_some_and(|w| w != 0)
                && dir.is_dir()
                && !dir.join("blkio.weight").exists()
                && !dir.join("blkio.bfq.weight").exists()
            {
                bail!(
                    "linux.resources.blockIO.weight: this host's blkio controller has neither \
                     blkio.weight nor blkio.bfq.weight (a weight needs the BFQ I/O scheduler)"
                );
            }
            let (weight_device, leaf_device) = if dir.join("blkio.weight").exists() {
                ("blkio.weight_device", "blkio.leaf_weight_device")
            } else {
                ("blkio.bfq.weight_device", "blkio.leaf_weight_device")
            };
            for d in b.weight_device().iter().flatten() {
                if let Some(w) = d.weight() {
                    writes.push(Write {
                        field: "blockIO.weightDevice".into(),
                        file: dir.join(weight_device),
                        value: format!("{}:{} {w}", d.major(), d.minor()),
                    });
                }
                if let Some(w) = d.leaf_weight() {
                    writes.push(Write {
                        field: "blockIO.weightDevice[].leafWeight".into(),
                        file: dir.join(leaf_device),
                        value: format!("{}:{} {w}", d.major(), d.minor()),
                    });
                }
            }
            b2.set_weight_device(None);
        }
        rest.set_block_io(Some(b2));
    }

    if r.pids().is_some() {
        if is_v2 {
            need_v2("pids", "pids")?;
        } else {
            need_v1("pids", "pids")?;
        }
    }

    if let Some(h) = r.hugepage_limits().as_ref().filter(|h| !h.is_empty()) {
        if is_v2 {
            need_v2("hugepageLimits", "hugetlb")?;
        } else if v1_dir("hugetlb").is_none() {
            bail!(
                "linux.resources.hugepageLimits: this host has no hugetlb cgroup v1 hierarchy{}",
                match host {
                    Host::V1(hs) if hs.iter().any(|h| h.controllers.is_empty()) =>
                        " (on this hybrid host hugetlb is only on the cgroup2 mount, which runc \
                         and berth use for membership only)",
                    _ => "",
                }
            );
        }
        for l in h {
            let size = l.page_size();
            if !size.ends_with("B") || size.len() < 3 {
                bail!("linux.resources.hugepageLimits: invalid pageSize {size:?} (e.g. \"2MB\")");
            }
        }
    }

    if let Some(n) = r.network() {
        if is_v2 {
            // cgroup v2 has no net_cls/net_prio (runc ignores them there).
            if n.class_id().is_some() {
                skipped.push(
                    "linux.resources.network.classID is ignored: cgroup v2 has no net_cls \
                     controller"
                        .to_string(),
                );
            }
            if n.priorities().as_ref().is_some_and(|p| !p.is_empty()) {
                skipped.push(
                    "linux.resources.network.priorities is ignored: cgroup v2 has no net_prio \
                     controller"
                        .to_string(),
                );
            }
        } else {
            // libcgroups needs both controllers for either field: write them here.
            if let Some(id) = n.class_id() {
                let dir = need_v1("network.classID", "net_cls")?;
                writes.push(Write {
                    field: "network.classID".into(),
                    file: dir.join("net_cls.classid"),
                    value: id.to_string(),
                });
            }
            for p in n.priorities().iter().flatten() {
                let dir = need_v1("network.priorities", "net_prio")?;
                writes.push(Write {
                    field: "network.priorities".into(),
                    file: dir.join("net_prio.ifpriomap"),
                    value: format!("{} {}", p.name(), p.priority()),
                });
            }
        }
        rest.set_network(None);
    }

    if let Some(rdma) = r.rdma().as_ref().filter(|m| !m.is_empty()) {
        if !is_v2 {
            bail!(
                "linux.resources.rdma: not supported on cgroup v1 hosts{}",
                if std::fs::read_to_string("/proc/cgroups")
                    .unwrap_or_default()
                    .lines()
                    .any(|l| l.starts_with("rdma\t"))
                {
                    ""
                } else {
                    " (and this kernel has no rdma controller)"
                }
            );
        }
        need_v2("rdma", "rdma")?;
        let mut devices: Vec<_> = rdma.iter().collect();
        devices.sort_by(|a, b| a.0.cmp(b.0));
        for (device, limit) in devices {
            let mut value = device.clone();
            if let Some(h) = limit.hca_handles() {
                value.push_str(&format!(" hca_handle={h}"));
            }
            if let Some(o) = limit.hca_objects() {
                value.push_str(&format!(" hca_object={o}"));
            }
            writes.push(Write {
                field: format!("rdma.{device}"),
                file: v2_dir.join("rdma.max"),
                value,
            });
        }
        rest.set_rdma(None);
    }

    if r.unified().as_ref().is_some_and(|u| !u.is_empty()) && !is_v2 {
        bail!(
            "linux.resources.unified: needs a cgroup v2 host; this host's controllers are \
             cgroup v1 (as runc: cannot use unified on cgroup v1)"
        );
    }
    Ok(Plan {
        for_libcgroups: rest,
        writes,
        skipped,
    })
}

fn memory_root(host: &Host) -> PathBuf {
    root_of(host, "memory")
}

fn cpu_root(host: &Host) -> PathBuf {
    root_of(host, "cpu")
}

fn root_of(host: &Host, controller: &str) -> PathBuf {
    match host {
        Host::V1(hs) => hs
            .iter()
            .find(|h| h.controllers.iter().any(|c| c == controller))
            .map(|h| h.mount.clone())
            .unwrap_or_default(),
        Host::V2 { root } => root.to_path_buf(),
    }
}

/// Makes the writes of a plan; a failure names the config field.
pub fn write_all(writes: &[Write]) -> Result<()> {
    for w in writes {
        let name = w.file.file_name().unwrap_or_default().to_string_lossy();
        if !w.file.exists() {
            bail!(
                "linux.resources.{}: this kernel has no {name}{}",
                w.field,
                if name.contains("leaf_weight") {
                    " (CFQ's leaf weights were removed in Linux 5.0)"
                } else {
                    ""
                }
            );
        }
        std::fs::write(&w.file, &w.value).map_err(|e| {
            let hint = match e.raw_os_error() {
                Some(libc::EOPNOTSUPP) if name.contains("weight_device") => {
                    " (per-device weights need the bfq I/O scheduler on that device)"
                }
                _ => "",
            };
            anyhow::anyhow!(
                "linux.resources.{}: write {:?} to {}: {e}{hint}",
                w.field,
                w.value,
                w.file.display()
            )
        })?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn res(json: &str) -> LinuxResources {
        serde_json::from_str(json).unwrap()
    }

    fn v1() -> Vec<Hierarchy> {
        vec![Hierarchy {
            mount: PathBuf::from("/nonexistent/blkio"),
            controllers: vec!["blkio".into()],
        }]
    }

    #[test]
    fn unified_is_refused_on_v1() {
        let hs = v1();
        let e = plan(
            &res(r#"{"unified":{"a.b":"1"}}"#),
            &Host::V1(&hs),
            Path::new("/x"),
        )
        .err()
        .unwrap();
        assert!(e.to_string().contains("linux.resources.unified"), "{e}");
    }

    #[test]
    fn missing_controller_names_the_field() {
        let hs = v1();
        let e = plan(
            &res(r#"{"network":{"classID":5}}"#),
            &Host::V1(&hs),
            Path::new("/x"),
        )
        .err()
        .unwrap();
        assert!(e.to_string().contains("network.classID"), "{e}");
        assert!(e.to_string().contains("net_cls"), "{e}");
    }

    #[test]
    fn weight_device_is_written_on_v1() {
        let hs = v1();
        let p = plan(
            &res(r#"{"blockIO":{"weightDevice":[{"major":7,"minor":3,"weight":300}]}}"#),
            &Host::V1(&hs),
            Path::new("/x"),
        )
        .unwrap();
        assert_eq!(
            p.writes,
            [Write {
                field: "blockIO.weightDevice".into(),
                file: PathBuf::from("/nonexistent/blkio/x/blkio.bfq.weight_device"),
                value: "7:3 300".into()
            }]
        );
        assert!(p
            .for_libcgroups
            .block_io()
            .as_ref()
            .unwrap()
            .weight_device()
            .is_none());
    }

    #[test]
    fn kernel_memory_is_skipped_with_a_reason() {
        let hs = v1();
        let mut hs = hs;
        hs.push(Hierarchy {
            mount: PathBuf::from("/nonexistent/memory"),
            controllers: vec!["memory".into()],
        });
        let p = plan(
            &res(r#"{"memory":{"kernel":1048576}}"#),
            &Host::V1(&hs),
            Path::new("/x"),
        )
        .unwrap();
        assert!(p.skipped[0].contains("memory.kernel"), "{:?}", p.skipped);
        assert!(p
            .for_libcgroups
            .memory()
            .as_ref()
            .unwrap()
            .kernel()
            .is_none());
    }
}
