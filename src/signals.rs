//! Signal names as `kill` accepts them and as error messages print them.
//!
//! containerd sends numbers (`kill <id> 15`); humans type names (`KILL`,
//! `sigterm`). runc upper-cases the name, adds a missing `SIG` prefix and looks
//! it up; anything else is `unknown signal "<as typed>"`. We accept the same
//! plus the real-time names `RTMIN`, `RTMIN+n`, `RTMAX-n`, `RTMAX` that
//! `kill(1)` understands. Numbers come from libc, not literals, because they
//! differ between architectures (mips, sparc).

use anyhow::Result;

/// The classic signals by their kernel names, in number order on x86/arm.
const NAMED: &[(&str, libc::c_int)] = &[
    ("SIGHUP", libc::SIGHUP),
    ("SIGINT", libc::SIGINT),
    ("SIGQUIT", libc::SIGQUIT),
    ("SIGILL", libc::SIGILL),
    ("SIGTRAP", libc::SIGTRAP),
    ("SIGABRT", libc::SIGABRT),
    ("SIGBUS", libc::SIGBUS),
    ("SIGFPE", libc::SIGFPE),
    ("SIGKILL", libc::SIGKILL),
    ("SIGUSR1", libc::SIGUSR1),
    ("SIGSEGV", libc::SIGSEGV),
    ("SIGUSR2", libc::SIGUSR2),
    ("SIGPIPE", libc::SIGPIPE),
    ("SIGALRM", libc::SIGALRM),
    ("SIGTERM", libc::SIGTERM),
    ("SIGSTKFLT", libc::SIGSTKFLT),
    ("SIGCHLD", libc::SIGCHLD),
    ("SIGCONT", libc::SIGCONT),
    ("SIGSTOP", libc::SIGSTOP),
    ("SIGTSTP", libc::SIGTSTP),
    ("SIGTTIN", libc::SIGTTIN),
    ("SIGTTOU", libc::SIGTTOU),
    ("SIGURG", libc::SIGURG),
    ("SIGXCPU", libc::SIGXCPU),
    ("SIGXFSZ", libc::SIGXFSZ),
    ("SIGVTALRM", libc::SIGVTALRM),
    ("SIGPROF", libc::SIGPROF),
    ("SIGWINCH", libc::SIGWINCH),
    ("SIGIO", libc::SIGIO),
    ("SIGPWR", libc::SIGPWR),
    ("SIGSYS", libc::SIGSYS),
];

/// First real-time signal available to applications. glibc reserves the first
/// two kernel RT signals for itself, so this is 34, like `kill -l` shows.
fn rt_min() -> i32 {
    libc::SIGRTMIN()
}

fn rt_max() -> i32 {
    libc::SIGRTMAX()
}

/// Parse a signal as given to `kill`: a number, or a name with or without
/// `SIG`, in any case. Returns the signal number (an `i32` because real-time
/// signals have no `nix::sys::signal::Signal` variant). `0` is allowed: it is
/// the "does the process exist" probe. The empty string is unknown like any
/// other: `kill` without a signal argument means SIGTERM, decided by the caller.
pub fn parse_signal(raw: &str) -> Result<i32> {
    let unknown = || anyhow::anyhow!("unknown signal {raw:?}");
    if let Ok(n) = raw.parse::<i32>() {
        // runc hands any integer to kill(2) and lets it fail; refusing here
        // gives the user a clearer message than EINVAL from the kernel.
        return if (0..=rt_max()).contains(&n) {
            Ok(n)
        } else {
            Err(unknown())
        };
    }
    let upper = raw.to_ascii_uppercase();
    let name = upper.strip_prefix("SIG").unwrap_or(&upper);
    if let Some(&(_, n)) = NAMED.iter().find(|(full, _)| &full[3..] == name) {
        return Ok(n);
    }
    match real_time_signal(name) {
        Some(n) => Ok(n),
        None => Err(unknown()),
    }
}

/// `RTMIN`, `RTMIN+n`, `RTMAX-n`, `RTMAX` (without the `SIG` prefix).
fn real_time_signal(name: &str) -> Option<i32> {
    let (base, rest, sign) = if let Some(rest) = name.strip_prefix("RTMIN") {
        (rt_min(), rest, 1)
    } else if let Some(rest) = name.strip_prefix("RTMAX") {
        (rt_max(), rest, -1)
    } else {
        return None;
    };
    let offset = match rest {
        "" => 0,
        _ => {
            let digits = rest.strip_prefix(if sign > 0 { '+' } else { '-' })?;
            // Only plain digits: "RTMIN++1" or "RTMIN+-1" are typos, not signals.
            if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            digits.parse::<i32>().ok()?
        }
    };
    let n = base.checked_add(sign * offset)?;
    (rt_min()..=rt_max()).contains(&n).then_some(n)
}

/// The conventional name of a signal number (`SIGTERM`, `SIGRTMIN+2`), or
/// `signal N` for numbers that are not signals, for messages like
/// "killed by SIGKILL".
pub fn signal_name(n: i32) -> String {
    if let Some(&(name, _)) = NAMED.iter().find(|&&(_, num)| num == n) {
        return name.to_string();
    }
    let (min, max) = (rt_min(), rt_max());
    if n == min {
        "SIGRTMIN".to_string()
    } else if n == max {
        "SIGRTMAX".to_string()
    } else if n > min && n < max {
        // Name the nearer end, as kill -l does.
        if n - min <= max - n {
            format!("SIGRTMIN+{}", n - min)
        } else {
            format!("SIGRTMAX-{}", max - n)
        }
    } else {
        format!("signal {n}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers() {
        assert_eq!(parse_signal("9").unwrap(), libc::SIGKILL);
        assert_eq!(parse_signal("+15").unwrap(), libc::SIGTERM);
        assert_eq!(parse_signal("0").unwrap(), 0);
        assert_eq!(parse_signal("64").unwrap(), libc::SIGRTMAX());
        assert!(parse_signal("65").is_err());
        assert!(parse_signal("-1").is_err());
        assert!(parse_signal(" 9").is_err());
        assert!(parse_signal("0x9").is_err());
    }

    #[test]
    fn names_any_case_with_or_without_sig() {
        for s in ["KILL", "kill", "Kill", "SIGKILL", "sigkill", "SigKill"] {
            assert_eq!(parse_signal(s).unwrap(), libc::SIGKILL, "{s}");
        }
        assert_eq!(parse_signal("term").unwrap(), libc::SIGTERM);
        assert_eq!(parse_signal("STKFLT").unwrap(), libc::SIGSTKFLT);
        assert_eq!(parse_signal("pwr").unwrap(), libc::SIGPWR);
        assert_eq!(parse_signal("winch").unwrap(), libc::SIGWINCH);
    }

    #[test]
    fn real_time() {
        let (min, max) = (libc::SIGRTMIN(), libc::SIGRTMAX());
        assert_eq!(parse_signal("RTMIN").unwrap(), min);
        assert_eq!(parse_signal("rtmin+1").unwrap(), min + 1);
        assert_eq!(parse_signal("SIGRTMIN+3").unwrap(), min + 3);
        assert_eq!(parse_signal("sigrtmax").unwrap(), max);
        assert_eq!(parse_signal("RTMAX-2").unwrap(), max - 2);
        assert_eq!(parse_signal(&format!("RTMIN+{}", max - min)).unwrap(), max);
        for bad in [
            "RTMIN-1", "RTMAX+1", "RTMIN+", "RTMIN++1", "RTMIN+x", "RTMIN+99",
        ] {
            assert!(parse_signal(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn unknown_names_quote_the_input() {
        let err = parse_signal("FOO").unwrap_err().to_string();
        assert_eq!(err, r#"unknown signal "FOO""#);
        assert_eq!(
            parse_signal("sigfoo").unwrap_err().to_string(),
            r#"unknown signal "sigfoo""#
        );
        assert_eq!(
            parse_signal("").unwrap_err().to_string(),
            r#"unknown signal """#
        );
        assert!(parse_signal("SIGKILL0").is_err());
        assert!(parse_signal("SIG").is_err());
    }

    #[test]
    fn names_round_trip() {
        for n in 1..=libc::SIGRTMAX() {
            let name = signal_name(n);
            if name.starts_with("signal ") {
                // 32 and 33 belong to glibc, not to applications.
                assert!(n == 32 || n == 33, "{n} has no name");
                continue;
            }
            assert_eq!(parse_signal(&name).unwrap(), n, "{name}");
        }
        assert_eq!(signal_name(libc::SIGKILL), "SIGKILL");
        assert_eq!(signal_name(libc::SIGRTMIN() + 2), "SIGRTMIN+2");
        assert_eq!(signal_name(libc::SIGRTMAX() - 1), "SIGRTMAX-1");
        assert_eq!(signal_name(99), "signal 99");
    }
}
