//! berth's own log: `--log FILE --log-format text|json`, `--debug`.
//!
//! containerd's shim reads the *last* line of the log whose `level` is exactly
//! `error` and shows its `msg` to the user, so every error berth reports goes
//! both to stderr and, as one JSON object per line, to the log file. The file is
//! opened with O_APPEND because the shim reuses one log for many commands.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::Path;
use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};

struct Logger {
    file: Option<File>,
    json: bool,
    debug: bool,
}

static LOGGER: Mutex<Logger> = Mutex::new(Logger {
    file: None,
    json: false,
    debug: false,
});

/// Sets up the log from the global flags. A log file that can't be opened is
/// reported on stderr but doesn't stop the command (runc behaves the same).
pub fn init(path: Option<&Path>, format: &str, debug: bool) -> anyhow::Result<()> {
    let json = match format {
        "json" => true,
        "text" => false,
        other => anyhow::bail!("invalid --log-format {other:?}: want text or json"),
    };
    let file = match path {
        Some(p) => Some(
            OpenOptions::new()
                .create(true)
                .append(true)
                .open(p)
                .map_err(|e| anyhow::anyhow!("open log file {}: {e}", p.display()))?,
        ),
        None => None,
    };
    let mut logger = LOGGER.lock().unwrap_or_else(|e| e.into_inner());
    logger.file = file;
    logger.json = json;
    logger.debug = debug;
    Ok(())
}

fn write_line(level: &str, msg: &str) {
    let mut logger = LOGGER.lock().unwrap_or_else(|e| e.into_inner());
    let line = if logger.json {
        format!(
            "{}\n",
            serde_json::json!({"level": level, "msg": msg, "time": rfc3339_now()})
        )
    } else {
        format!("time=\"{}\" level={level} msg={msg:?}\n", rfc3339_now())
    };
    if let Some(f) = logger.file.as_mut() {
        let _ = f.write_all(line.as_bytes());
    }
}

fn has_file() -> bool {
    LOGGER.lock().map(|l| l.file.is_some()).unwrap_or_default()
}

/// Reports a fatal error: the log file (if any) and stderr.
pub fn error(msg: &str) {
    if has_file() {
        write_line("error", msg);
    }
    eprintln!("berth: {msg}");
}

/// A warning that doesn't fail the command (e.g. a poststop hook that failed).
pub fn warn(msg: &str) {
    if has_file() {
        write_line("warning", msg);
    }
    eprintln!("berth: warning: {msg}");
}

/// Debug messages go to the log only with --debug.
pub fn debug(msg: &str) {
    let (enabled, has_file) = LOGGER
        .lock()
        .map(|l| (l.debug, l.file.is_some()))
        .unwrap_or_default();
    if enabled {
        if has_file {
            write_line("debug", msg);
        } else {
            eprintln!("berth: debug: {msg}");
        }
    }
}

pub fn rfc3339_now() -> String {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    rfc3339(now.as_secs() as i64, now.subsec_nanos())
}

/// Formats a Unix time as RFC 3339 in UTC with nanoseconds, the shape Go's
/// time.RFC3339Nano produces and go-runc parses.
pub fn rfc3339(secs: i64, nanos: u32) -> String {
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{nanos:09}Z",
        rem / 3600,
        (rem / 60) % 60,
        rem % 60
    )
}

/// Days since 1970-01-01 to a proleptic Gregorian date (Howard Hinnant's
/// well-known algorithm).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_rfc3339() {
        assert_eq!(rfc3339(0, 0), "1970-01-01T00:00:00.000000000Z");
        assert_eq!(rfc3339(951_782_400, 5), "2000-02-29T00:00:00.000000005Z");
        assert_eq!(
            rfc3339(1_795_425_512, 123),
            "2026-11-23T09:18:32.000000123Z"
        );
    }
}
