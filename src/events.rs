//! `events ID [--stats] [--interval D]`: runc's event stream, one JSON object
//! per line. `--stats` prints one `{"type":"stats","id":..,"data":{..}}` and
//! exits; otherwise a stats event every interval and an `{"type":"oom"}`
//! event when the OOM killer acts in the container's cgroup, until the
//! container stops. `data` has runc's shape (libcontainer's types.Stats).

use crate::cgroups;
use crate::cli::EventsArgs;
use crate::state::{self, Root, Status};
use anyhow::{anyhow, bail, Result};
use libcgroups::stats::{BlkioDeviceStat, MemoryData, Stats};
use serde_json::{json, Map, Value};
use std::io::Write;
use std::time::{Duration, Instant};

pub fn events(root: &Root, args: &EventsArgs) -> Result<()> {
    match stream(root, args) {
        // Whoever read the events went away (`| head`): that ends the stream.
        Err(e)
            if e.downcast_ref::<std::io::Error>()
                .is_some_and(|e| e.kind() == std::io::ErrorKind::BrokenPipe) =>
        {
            Ok(())
        }
        other => other,
    }
}

fn stream(root: &Root, args: &EventsArgs) -> Result<()> {
    let interval = parse_go_duration(&args.interval)?;
    if interval.is_zero() {
        bail!("--interval must be greater than zero");
    }
    let saved = root.peek(&args.id)?;
    crate::commands::need_cgroup(&saved, "read events of")?;
    let dir = root.container_dir(&args.id);
    let alive = || state::status_of(&dir, &saved) != Status::Stopped;
    if !alive() {
        bail!("container {:?}: container not running", args.id);
    }
    let stats_event = || -> Result<Value> {
        let stats = cgroups::stats(&saved.cgroup_path, &saved.id)?;
        Ok(json!({"type": "stats", "id": args.id, "data": runc_stats(&stats)}))
    };
    let mut out = std::io::stdout().lock();
    let mut emit = |v: Value| -> Result<()> {
        writeln!(out, "{v}")?;
        out.flush()?;
        Ok(())
    };
    if args.stats {
        return emit(stats_event()?);
    }
    // OOM is polled: a cheap read of one file, often enough to be prompt.
    let tick = interval.min(Duration::from_millis(200));
    let mut ooms = cgroups::oom_kills(&saved.cgroup_path).unwrap_or(0);
    let mut next_stats = Instant::now();
    while alive() {
        if let Some(n) = cgroups::oom_kills(&saved.cgroup_path) {
            if n > ooms {
                emit(json!({"type": "oom", "id": args.id}))?;
            }
            ooms = n;
        }
        if Instant::now() >= next_stats {
            emit(stats_event()?)?;
            next_stats += interval;
        }
        std::thread::sleep(tick);
    }
    Ok(())
}

fn mem(d: &MemoryData) -> Value {
    json!({"usage": d.usage, "max": d.max_usage, "failcnt": d.fail_count, "limit": d.limit})
}

fn blkio(entries: &[BlkioDeviceStat]) -> Value {
    Value::Array(
        entries
            .iter()
            .map(|e| {
                json!({"major": e.major, "minor": e.minor,
                       "op": e.op_type.clone().unwrap_or_default(), "value": e.value})
            })
            .collect(),
    )
}

/// libcgroups' statistics in runc's JSON field names.
fn runc_stats(s: &Stats) -> Value {
    let u = &s.cpu.usage;
    let t = &s.cpu.throttling;
    let m = &s.memory;
    let b = &s.blkio;
    let mut hugetlb = Map::new();
    for (size, h) in &s.hugetlb {
        hugetlb.insert(
            size.clone(),
            json!({"usage": h.usage, "max": h.max_usage, "failcnt": h.fail_count}),
        );
    }
    json!({
        "cpu": {
            "usage": {
                "total": u.usage_total, "user": u.usage_user, "kernel": u.usage_kernel,
                "percpu": u.per_core_usage_total, "percpu_user": u.per_core_usage_user,
                "percpu_kernel": u.per_core_usage_kernel,
            },
            "throttling": {
                "periods": t.periods, "throttledPeriods": t.throttled_periods,
                "throttledTime": t.throttled_time,
            },
        },
        "memory": {
            "cache": m.cache,
            "usage": mem(&m.memory),
            "swap": mem(&m.memswap),
            "kernel": mem(&m.kernel),
            "kernelTCP": mem(&m.kernel_tcp),
            "raw": m.stats,
        },
        "pids": {"current": s.pids.current, "limit": s.pids.limit},
        "blkio": {
            "ioServiceBytesRecursive": blkio(&b.service_bytes),
            "ioServicedRecursive": blkio(&b.serviced),
            "ioQueueRecursive": blkio(&b.queued),
            "ioServiceTimeRecursive": blkio(&b.service_time),
            "ioWaitTimeRecursive": blkio(&b.wait_time),
            "ioMergedRecursive": blkio(&b.merged),
            "ioTimeRecursive": blkio(&b.time),
            "sectorsRecursive": blkio(&b.sectors),
        },
        "hugetlb": hugetlb,
    })
}

/// A Go duration (time.ParseDuration): a sequence of decimal numbers with
/// units ns, us/µs, ms, s, m, h, e.g. "5s", "100ms", "1m30s", "1.5h".
pub fn parse_go_duration(text: &str) -> Result<Duration> {
    let bad = || anyhow!("invalid duration {text:?} (e.g. 5s, 100ms, 1m)");
    if text == "0" {
        return Ok(Duration::ZERO);
    }
    let mut rest = text;
    let mut total = 0f64;
    if rest.is_empty() {
        return Err(bad());
    }
    while !rest.is_empty() {
        let num_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .ok_or_else(bad)?;
        if num_len == 0 {
            return Err(bad());
        }
        let n: f64 = rest[..num_len].parse().map_err(|_| bad())?;
        rest = &rest[num_len..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let secs = match &rest[..unit_len] {
            "ns" => 1e-9,
            "us" | "µs" | "μs" => 1e-6,
            "ms" => 1e-3,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            _ => return Err(bad()),
        };
        total += n * secs;
        rest = &rest[unit_len..];
    }
    Ok(Duration::from_secs_f64(total))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_durations() {
        let d = |s| parse_go_duration(s).unwrap();
        assert_eq!(d("5s"), Duration::from_secs(5));
        assert_eq!(d("100ms"), Duration::from_millis(100));
        assert_eq!(d("1m"), Duration::from_secs(60));
        assert_eq!(d("1m30s"), Duration::from_secs(90));
        assert_eq!(d("1.5h"), Duration::from_secs(5400));
        assert_eq!(d("250us"), Duration::from_micros(250));
        assert_eq!(d("0"), Duration::ZERO);
        for bad in ["", "5", "s", "5x", "-1s", "1..2s"] {
            assert!(parse_go_duration(bad).is_err(), "{bad:?}");
        }
    }
}
