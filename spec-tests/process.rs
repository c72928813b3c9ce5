//! config.md "Process" (args, env, cwd, user, terminal/consoleSize, rlimits,
//! oomScoreAdj, noNewPrivileges, capabilities) and the console socket of the
//! runc CLI contract.

use std::io::{IoSliceMut, Read};
use std::os::fd::{FromRawFd, OwnedFd, RawFd};
use std::os::unix::net::UnixListener;
use std::time::{Duration, Instant};

use serde_json::json;

use crate::harness::*;

// config.md "Process" args: passed verbatim, no shell splitting.
#[test]
fn args_are_passed_verbatim() {
    let fx = Fixture::new();
    let mut b = fx.bundle();
    b.set_args(&[
        "sh",
        "-c",
        "printf '[%s]' \"$0\" \"$@\"",
        "zero",
        "a b",
        "",
        "$HOME",
        "'q'",
    ]);
    let out = fx.run_ok(&b);
    assert_eq!(out, "[zero][a b][][$HOME]['q']");
    fx.assert_no_residue();
}

// Without a terminal the container's stdio is the runtime's (runc's
// "pass-through" mode): a foreground `run` feeds its stdin to the process and
// the process's stdout and stderr reach the caller directly.
#[test]
fn stdio_passes_through_without_a_terminal() {
    let fx = Fixture::new();
    let mut b = fx.bundle();
    b.set_sh("tr a-z A-Z; echo to-stderr >&2");
    b.save();
    let id = fx.id("stdio");
    let out = fx
        .rt(&["run", "--bundle", b.dir.to_str().unwrap(), &id])
        .stdin(b"piped in\n")
        .run()
        .ok();
    assert_eq!(out.stdout, "PIPED IN\n");
    assert_eq!(out.stderr, "to-stderr\n");
    fx.assert_no_residue();
}

// config.md "Process" env: exactly the configured variables; nothing leaks
// from the runtime's own environment.
#[test]
fn env_is_the_configured_env() {
    let fx = Fixture::new();
    let mut b = fx.bundle();
    b.add_env("SPEC_FOO=bar");
    b.add_env("SPEC_EQ=a=b=c");
    b.add_env("SPEC_EMPTY=");
    b.add_env("SPEC_SPACE=x y");
    b.set_sh("env");
    b.save();
    let id = fx.id("env");
    let out = fx
        .rt(&["run", "--bundle", b.dir.to_str().unwrap(), &id])
        .env("SPEC_LEAK", "from-the-runtime")
        .run()
        .ok();
    let env: Vec<&str> = out.stdout.lines().collect();
    for want in b.config["process"]["env"].as_array().unwrap() {
        let want = want.as_str().unwrap();
        assert!(env.contains(&want), "{want:?} missing from {env:?}");
    }
    assert!(
        !env.iter().any(|e| e.starts_with("SPEC_LEAK=")),
        "runtime env leaked: {env:?}"
    );
    fx.assert_no_residue();
}

// config.md "Process" cwd.
#[test]
fn cwd_is_the_configured_cwd() {
    let fx = Fixture::new();
    let mut b = fx.bundle();
    b.process()["cwd"] = json!("/home/user");
    assert_eq!(fx.run_sh(&mut b, "pwd"), "/home/user\n");
    fx.assert_no_residue();
}

// config.md "POSIX process" user: uid, gid, additionalGids, umask.
#[test]
fn user_uid_gid_additional_gids_umask() {
    let fx = Fixture::new();
    let mut b = fx.bundle();
    b.set_readonly(false);
    b.process()["user"] =
        json!({"uid": 1000, "gid": 1000, "additionalGids": [2000, 100], "umask": 23});
    let out = fx.run_sh(
        &mut b,
        "grep -E '^(Uid|Gid|Groups):' /proc/self/status; umask; \
         touch /tmp/f && stat -c '%u %g %a' /tmp/f",
    );
    let status: Vec<&str> = out.lines().collect();
    assert_eq!(
        status_field(&out, "Uid").as_deref(),
        Some("1000\t1000\t1000\t1000"),
        "{out}"
    );
    assert_eq!(
        status_field(&out, "Gid").as_deref(),
        Some("1000\t1000\t1000\t1000"),
        "{out}"
    );
    let mut groups: Vec<u32> = status_field(&out, "Groups")
        .unwrap_or_default()
        .split_whitespace()
        .map(|g| g.parse().unwrap())
        .collect();
    groups.sort();
    assert_eq!(
        groups,
        [100, 2000],
        "supplementary groups are exactly additionalGids: {out}"
    );
    assert_eq!(status[3], "0027", "umask: {out}");
    assert_eq!(
        status[4], "1000 1000 640",
        "file created with uid/gid/umask: {out}"
    );
    fx.assert_no_residue();
}

// config.md "POSIX process" user: without additionalGids the process keeps
// no supplementary groups of the runtime.
#[test]
fn user_without_additional_gids_has_no_groups() {
    let fx = Fixture::new();
    let mut b = fx.bundle();
    b.process()["user"] = json!({"uid": 1000, "gid": 1000});
    let out = fx.run_sh(&mut b, "grep -E '^Groups:' /proc/self/status; id -u; id -g");
    assert_eq!(status_field(&out, "Groups").as_deref(), Some(""), "{out}");
    assert_eq!(out.lines().skip(1).collect::<Vec<_>>(), ["1000", "1000"]);
    fx.assert_no_residue();
}

// config.md "Process" oomScoreAdj.
#[test]
fn oom_score_adj() {
    let fx = Fixture::new();
    let mut b = fx.bundle();
    b.process()["oomScoreAdj"] = json!(567);
    assert_eq!(fx.run_sh(&mut b, "cat /proc/self/oom_score_adj"), "567\n");
    fx.assert_no_residue();
}

// config.md "Linux process" noNewPrivileges.
#[test]
fn no_new_privileges() {
    let fx = Fixture::new();
    for (nnp, want) in [(true, "1"), (false, "0")] {
        let mut b = fx.bundle();
        b.process()["noNewPrivileges"] = json!(nnp);
        let out = fx.run_sh(&mut b, "cat /proc/self/status");
        assert_eq!(
            status_field(&out, "NoNewPrivs").as_deref(),
            Some(want),
            "noNewPrivileges={nnp}"
        );
    }
    fx.assert_no_residue();
}

// config.md "POSIX process" rlimits.
#[test]
fn rlimits() {
    let fx = Fixture::new();
    let mut b = fx.bundle();
    b.process()["rlimits"] = json!([
        {"type": "RLIMIT_NOFILE", "soft": 321, "hard": 654},
        {"type": "RLIMIT_NPROC", "soft": 1111, "hard": 2222}
    ]);
    let out = fx.run_sh(
        &mut b,
        "ulimit -Sn; ulimit -Hn; grep -E '^Max (open files|processes)' /proc/self/limits",
    );
    let lines: Vec<Vec<&str>> = out
        .lines()
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert_eq!(lines[0], ["321"], "{out}");
    assert_eq!(lines[1], ["654"], "{out}");
    let procs = lines
        .iter()
        .find(|l| l.get(1) == Some(&"processes"))
        .expect("Max processes");
    assert_eq!(&procs[2..4], ["1111", "2222"], "{out}");
    fx.assert_no_residue();
}

// config.md "Linux process" capabilities: the sets are exactly as configured.
#[test]
fn capabilities() {
    let fx = Fixture::new();
    let mut b = fx.bundle();
    let caps = json!(["CAP_KILL", "CAP_NET_BIND_SERVICE", "CAP_CHOWN"]);
    b.process()["capabilities"] = json!({
        "bounding": caps, "effective": caps, "permitted": caps, "inheritable": [], "ambient": []
    });
    let out = fx.run_sh(&mut b, "grep ^Cap /proc/self/status");
    // CAP_CHOWN=0, CAP_KILL=5, CAP_NET_BIND_SERVICE=10.
    let want = format!("{:016x}", (1u64 << 0) | (1 << 5) | (1 << 10));
    assert_eq!(status_field(&out, "CapBnd"), Some(want.clone()), "{out}");
    assert_eq!(status_field(&out, "CapEff"), Some(want.clone()), "{out}");
    assert_eq!(status_field(&out, "CapPrm"), Some(want), "{out}");
    assert_eq!(
        status_field(&out, "CapInh").as_deref(),
        Some("0000000000000000"),
        "{out}"
    );
    assert_eq!(
        status_field(&out, "CapAmb").as_deref(),
        Some("0000000000000000"),
        "{out}"
    );
    fx.assert_no_residue();
}

/// Accept one connection on the console socket and receive the pty master:
/// exactly one fd by SCM_RIGHTS, payload shorter than 4096 bytes (go-runc
/// `recvFd` rules).
pub(crate) fn receive_console(listener: UnixListener) -> (OwnedFd, Vec<u8>) {
    use nix::sys::socket::{recvmsg, ControlMessageOwned, MsgFlags};
    use std::os::fd::AsRawFd;
    let (conn, _) = listener
        .accept()
        .expect("runtime never connected to the console socket");
    let mut payload = vec![0u8; 4096];
    let mut iov = [IoSliceMut::new(&mut payload)];
    let mut cmsg = nix::cmsg_space!([RawFd; 4]);
    let msg = recvmsg::<()>(
        conn.as_raw_fd(),
        &mut iov,
        Some(&mut cmsg),
        MsgFlags::empty(),
    )
    .expect("recvmsg");
    let bytes = msg.bytes;
    let mut fds: Vec<RawFd> = Vec::new();
    for c in msg.cmsgs().expect("control messages") {
        if let ControlMessageOwned::ScmRights(rights) = c {
            fds.extend(rights);
        }
    }
    assert_eq!(
        fds.len(),
        1,
        "console socket must carry exactly one fd, got {fds:?}"
    );
    assert!(bytes < 4096, "payload too long ({bytes})");
    let name = payload[..bytes].to_vec();
    // SAFETY: the fd was just received and is owned by nobody else.
    (unsafe { OwnedFd::from_raw_fd(fds[0]) }, name)
}

/// Read the pty master until the slave side is gone (EIO) or the deadline.
pub(crate) fn read_pty(master: OwnedFd, timeout: Duration) -> String {
    let mut file = std::fs::File::from(master);
    let deadline = Instant::now() + timeout;
    let mut text = Vec::new();
    let fd = std::os::fd::AsRawFd::as_raw_fd(&file);
    loop {
        let mut pfd = [nix::poll::PollFd::new(
            unsafe { std::os::fd::BorrowedFd::borrow_raw(fd) },
            nix::poll::PollFlags::POLLIN,
        )];
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            break;
        }
        let ms = left.as_millis().min(1000) as u16;
        match nix::poll::poll(&mut pfd, nix::poll::PollTimeout::from(ms)) {
            Ok(0) => continue,
            Ok(_) => {}
            Err(_) => break,
        }
        let mut buf = [0u8; 4096];
        match file.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => text.extend_from_slice(&buf[..n]),
        }
    }
    String::from_utf8_lossy(&text).into_owned()
}

// config.md "Process" terminal + consoleSize; contract "Console socket": the
// runtime connects to --console-socket and sends the pty master; the
// container's stdio is the pty slave, also bind-mounted at /dev/console.
#[test]
fn terminal_with_console_socket() {
    let fx = Fixture::new();
    let mut b = fx.bundle();
    b.process()["terminal"] = json!(true);
    b.process()["consoleSize"] = json!({"height": 37, "width": 101});
    b.set_sh(
        "stty size; [ -t 0 ] && [ -t 1 ] && [ -t 2 ] && echo all-ttys; tty; \
         stat -c %F /dev/console; read line; echo \"read:$line\"",
    );
    let sock = fx.socket_path("console.sock");
    let listener = UnixListener::bind(&sock).expect("bind console socket");
    let receiver = std::thread::spawn(move || receive_console(listener));
    let id = fx.id("tty");
    fx.create(&b, &id, &["--console-socket", sock.to_str().unwrap()])
        .ok();
    let (master, _name) = receiver.join().expect("console receiver");
    fx.start(&id).ok();
    // The container reads from the terminal too.
    nix::unistd::write(&master, b"typed\n").expect("write to pty master");
    let text = read_pty(master, Duration::from_secs(10));
    let lines: Vec<&str> = text.lines().map(|l| l.trim_end_matches('\r')).collect();
    assert!(
        lines.contains(&"37 101"),
        "consoleSize not applied: {text:?}"
    );
    assert!(
        lines.contains(&"all-ttys"),
        "stdio is not the terminal: {text:?}"
    );
    assert!(
        lines.iter().any(|l| l.starts_with("/dev/pts/")),
        "tty: {text:?}"
    );
    assert!(
        lines.contains(&"character special file"),
        "/dev/console: {text:?}"
    );
    assert!(
        lines.contains(&"read:typed"),
        "input did not reach the container: {text:?}"
    );
    fx.wait_status(&id, "stopped");
    fx.delete(&id).ok();
    fx.assert_no_residue();
}

// Contract "Console socket": terminal=true without --console-socket is an
// error for create (nowhere to send the pty).
#[test]
fn terminal_without_console_socket_fails() {
    let fx = Fixture::new();
    let mut b = fx.bundle();
    b.process()["terminal"] = json!(true);
    let id = fx.id("notty");
    fx.create(&b, &id, &[]).fails_with(&["console"]);
    fx.assert_no_residue();
}
