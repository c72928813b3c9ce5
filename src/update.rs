//! `update ID`: new resource limits for a running container (runc's
//! `update`). `--resources FILE|-` is a LinuxResources JSON (config-linux.md
//! "Control groups"), and then the other flags are ignored, as in runc;
//! otherwise the flags build one. Only what is given is written.

use crate::cgroups;
use crate::cli::UpdateArgs;
use crate::state::{Root, Status};
use anyhow::{anyhow, bail, Context, Result};
use oci_spec::runtime::{LinuxBlockIo, LinuxCpu, LinuxMemory, LinuxPids, LinuxResources};
use std::io::Read;

pub fn update(root: &Root, args: &UpdateArgs) -> Result<()> {
    // Parse everything before touching the container: a bad value changes nothing.
    let resources = match &args.resources {
        Some(path) => read_resources(path)?,
        None => from_flags(args)?,
    };
    let container = root.open_container(&args.id)?;
    let status = container.status();
    if status == Status::Stopped {
        bail!(
            "cannot update container {:?}: container not running",
            args.id
        );
    }
    crate::commands::need_cgroup(&container.saved, "update")?;
    cgroups::update(&container.saved.cgroup_path, &args.id, &resources)
}

fn read_resources(path: &std::path::Path) -> Result<LinuxResources> {
    let mut text = Vec::new();
    if path.as_os_str() == "-" {
        std::io::stdin()
            .read_to_end(&mut text)
            .context("read resources from stdin")?;
    } else {
        text = std::fs::read(path).with_context(|| format!("read {}", path.display()))?;
    }
    let de = &mut serde_json::Deserializer::from_slice(&text);
    serde_path_to_error::deserialize(de).map_err(|e| {
        anyhow!(
            "--resources {}: invalid LinuxResources JSON: {e}",
            path.display()
        )
    })
}

fn from_flags(a: &UpdateArgs) -> Result<LinuxResources> {
    let mut r = LinuxResources::default();
    if a.memory.is_some() || a.memory_reservation.is_some() || a.memory_swap.is_some() {
        let mut m = LinuxMemory::default();
        if let Some(v) = &a.memory {
            m.set_limit(Some(parse_bytes("--memory", v)?));
        }
        if let Some(v) = &a.memory_reservation {
            m.set_reservation(Some(parse_bytes("--memory-reservation", v)?));
        }
        if let Some(v) = &a.memory_swap {
            m.set_swap(Some(parse_bytes("--memory-swap", v)?));
        }
        r.set_memory(Some(m));
    }
    let cpu_given = a.cpu_shares.is_some()
        || a.cpu_quota.is_some()
        || a.cpu_period.is_some()
        || a.cpu_rt_runtime.is_some()
        || a.cpu_rt_period.is_some()
        || a.cpuset_cpus.is_some()
        || a.cpuset_mems.is_some();
    if cpu_given {
        let mut c = LinuxCpu::default();
        c.set_shares(a.cpu_shares);
        c.set_quota(a.cpu_quota);
        c.set_period(a.cpu_period);
        c.set_realtime_runtime(a.cpu_rt_runtime);
        c.set_realtime_period(a.cpu_rt_period);
        c.set_cpus(a.cpuset_cpus.clone());
        c.set_mems(a.cpuset_mems.clone());
        r.set_cpu(Some(c));
    }
    if let Some(limit) = a.pids_limit {
        let mut p = LinuxPids::default();
        p.set_limit(limit);
        r.set_pids(Some(p));
    }
    if let Some(w) = a.blkio_weight {
        if !(10..=1000).contains(&w) {
            bail!("--blkio-weight {w}: must be between 10 and 1000");
        }
        let mut b = LinuxBlockIo::default();
        b.set_weight(Some(w));
        r.set_block_io(Some(b));
    }
    Ok(r)
}

/// Bytes as docker's RAMInBytes reads them: a number with an optional
/// binary unit (k, m, g, t, p; b and a trailing "b" allowed), or -1.
fn parse_bytes(flag: &str, v: &str) -> Result<i64> {
    if v == "-1" {
        return Ok(-1);
    }
    let lower = v.trim().to_ascii_lowercase();
    let s = lower.strip_suffix('b').unwrap_or(&lower);
    let (num, mult) = match s.chars().last() {
        Some('k') => (&s[..s.len() - 1], 1i64 << 10),
        Some('m') => (&s[..s.len() - 1], 1 << 20),
        Some('g') => (&s[..s.len() - 1], 1 << 30),
        Some('t') => (&s[..s.len() - 1], 1 << 40),
        Some('p') => (&s[..s.len() - 1], 1 << 50),
        _ => (s, 1),
    };
    let n: f64 = num
        .trim()
        .parse()
        .map_err(|_| anyhow!("{flag} {v:?}: not a size (e.g. 1048576, 512m, 1g)"))?;
    if n < 0.0 {
        bail!("{flag} {v:?}: must not be negative (except -1)");
    }
    Ok((n * mult as f64) as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(parse_bytes("x", "1048576").unwrap(), 1 << 20);
        assert_eq!(parse_bytes("x", "512m").unwrap(), 512 << 20);
        assert_eq!(parse_bytes("x", "1G").unwrap(), 1 << 30);
        assert_eq!(parse_bytes("x", "2kb").unwrap(), 2048);
        assert_eq!(parse_bytes("x", "-1").unwrap(), -1);
        assert!(parse_bytes("x", "lots").is_err());
        assert!(parse_bytes("x", "-5").is_err());
    }
}
