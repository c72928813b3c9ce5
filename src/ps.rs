//! `ps ID [--format table|json] [PS ARGS...]`: the container's processes.
//!
//! Like runc: json is the array of host pids in the container's cgroup; table
//! runs the host's ps(1) (default `-ef`) and keeps the header and the rows of
//! those pids. Without a ps binary, a minimal table is built from /proc.

use crate::cli::PsArgs;
use crate::state::Root;
use anyhow::{bail, Context, Result};
use std::io::Write;

pub fn ps(root: &Root, args: &PsArgs) -> Result<()> {
    let saved = root.peek(&args.id)?;
    let pids = crate::commands::container_pids(&saved)?;
    let mut out = std::io::stdout().lock();
    match args.format.as_str() {
        "json" => writeln!(out, "{}", serde_json::to_string(&pids)?)?,
        "table" => {
            let ps_args: Vec<String> = if args.ps_args.is_empty() {
                vec!["-ef".to_string()]
            } else {
                args.ps_args.clone()
            };
            let table = match std::process::Command::new("ps").args(&ps_args).output() {
                Ok(o) if o.status.success() => {
                    filter_ps(&String::from_utf8_lossy(&o.stdout), &pids)?
                }
                Ok(o) => bail!(
                    "ps {}: {}",
                    ps_args.join(" "),
                    String::from_utf8_lossy(&o.stderr).trim()
                ),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => from_proc(&pids),
                Err(e) => return Err(e).context("run ps"),
            };
            out.write_all(table.as_bytes())?;
        }
        other => bail!("invalid --format {other:?}: want table or json"),
    }
    Ok(())
}

/// Keeps ps's header and the rows whose PID column is one of `pids`.
fn filter_ps(text: &str, pids: &[i32]) -> Result<String> {
    let mut lines = text.lines();
    let header = lines.next().unwrap_or("");
    let Some(col) = header.split_whitespace().position(|h| h == "PID") else {
        bail!("ps output has no PID column (give ps options that print it)");
    };
    let mut out = format!("{header}\n");
    for line in lines {
        let pid = line
            .split_whitespace()
            .nth(col)
            .and_then(|p| p.parse::<i32>().ok());
        if pid.is_some_and(|p| pids.contains(&p)) {
            out.push_str(line);
            out.push('\n');
        }
    }
    Ok(out)
}

/// A ps-less host: PID, PPID and the command line from /proc.
fn from_proc(pids: &[i32]) -> String {
    let mut out = String::from("PID PPID CMD\n");
    for pid in pids {
        let stat = crate::procfs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        let ppid = stat
            .rfind(')')
            .and_then(|i| stat[i + 2..].split_whitespace().nth(1))
            .unwrap_or("?");
        let cmd = std::fs::read(format!("/proc/{pid}/cmdline"))
            .map(|c| {
                c.split(|b| *b == 0)
                    .filter(|a| !a.is_empty())
                    .map(|a| String::from_utf8_lossy(a).into_owned())
                    .collect::<Vec<_>>()
                    .join(" ")
            })
            .unwrap_or_default();
        out.push_str(&format!("{pid} {ppid} {cmd}\n"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_header_and_own_rows() {
        let text = "UID PID PPID CMD\nroot 1 0 init\nroot 42 1 sh\nroot 420 1 other\n";
        assert_eq!(
            filter_ps(text, &[42]).unwrap(),
            "UID PID PPID CMD\nroot 42 1 sh\n"
        );
        assert!(filter_ps("USER CMD\nroot x\n", &[1]).is_err());
    }
}
