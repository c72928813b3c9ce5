//! config-linux.md "Seccomp": the filter is in force in the container's
//! process (seen from inside: /proc/self/status, the errno a denied syscall
//! returns), with noNewPrivileges true and false; the notify listener gets
//! the fd and the container process state; a bad profile fails create.

use std::io::IoSliceMut;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::net::UnixListener;
use std::path::Path;
use std::process::Command;

use serde_json::{json, Value};

use crate::harness::*;

/// A writable bundle with `profile` as linux.seccomp.
fn bundle_with(fx: &Fixture, profile: Value, nnp: bool) -> Bundle {
    let mut b = fx.bundle();
    b.set_readonly(false);
    b.process()["noNewPrivileges"] = json!(nnp);
    b.linux()["seccomp"] = profile;
    b
}

fn deny_mkdir(errno_ret: Option<u32>) -> Value {
    let mut rule = json!({"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO"});
    if let Some(e) = errno_ret {
        rule["errnoRet"] = json!(e);
    }
    json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [rule]})
}

// config-linux.md "Seccomp": syscalls[].action SCMP_ACT_ERRNO with errnoRet,
// and errnoRet's default (EPERM); the process runs in filter mode (2). With
// noNewPrivileges false the filter still loads for a process without
// CAP_SYS_ADMIN (uid 1000, no capabilities): the runtime loads it first.
#[test]
fn errno_rule_denies_only_the_listed_syscalls() {
    let fx = Fixture::new();
    for nnp in [true, false] {
        for (errno_ret, text) in [
            (Some(13), "Permission denied"),
            (None, "Operation not permitted"),
        ] {
            let mut b = bundle_with(&fx, deny_mkdir(errno_ret), nnp);
            if !nnp {
                b.process()["user"] = json!({"uid": 1000, "gid": 1000});
                b.process()["capabilities"] = json!({});
            }
            let out = fx.run_sh(
                &mut b,
                "grep -E '^(Seccomp|NoNewPrivs):' /proc/self/status; \
                 mkdir /tmp/x 2>&1; touch /tmp/y && echo touched; id -u",
            );
            let ctx = format!("nnp={nnp} errnoRet={errno_ret:?}: {out}");
            assert_eq!(status_field(&out, "Seccomp").as_deref(), Some("2"), "{ctx}");
            let want_nnp = if nnp { "1" } else { "0" };
            assert_eq!(
                status_field(&out, "NoNewPrivs").as_deref(),
                Some(want_nnp),
                "{ctx}"
            );
            assert!(
                out.contains(&format!("can't create directory '/tmp/x': {text}")),
                "{ctx}"
            );
            assert!(out.contains("touched"), "{ctx}");
            assert!(!b.rootfs().join("tmp/x").exists(), "{ctx}");
            let uid = if nnp { "0" } else { "1000" };
            assert!(out.trim_end().ends_with(uid), "{ctx}");
        }
    }
    fx.assert_no_residue();
}

// config-linux.md "Seccomp": defaultErrnoRet is what the default action
// SCMP_ACT_ERRNO returns for every syscall not allowed. The profile is shaped
// like Docker's default: a long allow-list over x86_64, x86 and x32, with
// names libseccomp doesn't know (they are skipped). busybox sh runs normally.
#[test]
fn docker_shaped_profile_runs_busybox() {
    let fx = Fixture::new();
    for nnp in [true, false] {
        let mut allowed: Vec<&str> = DOCKERISH_ALLOW.to_vec();
        allowed.retain(|s| *s != "mkdir" && *s != "mkdirat");
        allowed.extend(["berth_no_such_syscall", "another_future_syscall"]);
        let profile = json!({
            "defaultAction": "SCMP_ACT_ERRNO",
            "defaultErrnoRet": 38,
            "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"],
            "syscalls": [
                {"names": allowed, "action": "SCMP_ACT_ALLOW"},
                {"names": ["personality"], "action": "SCMP_ACT_ALLOW",
                 "args": [{"index": 0, "value": 0, "op": "SCMP_CMP_EQ"}]},
            ]
        });
        let mut b = bundle_with(&fx, profile, nnp);
        let out = fx.run_sh(
            &mut b,
            "echo hello; ls / | grep -c bin; cat /proc/self/status | grep ^Seccomp:; \
             mkdir /tmp/x 2>&1; unshare -U true 2>&1; echo done",
        );
        let ctx = format!("nnp={nnp}: {out}");
        assert!(out.starts_with("hello\n"), "{ctx}");
        assert_eq!(status_field(&out, "Seccomp").as_deref(), Some("2"), "{ctx}");
        // ENOSYS from defaultErrnoRet for what the list leaves out.
        assert!(
            out.contains("can't create directory '/tmp/x': Function not implemented"),
            "{ctx}"
        );
        assert!(
            out.contains("Function not implemented\n") && out.ends_with("done\n"),
            "{ctx}"
        );
    }
    fx.assert_no_residue();
}

/// Runs `kill -N $$` for harmless signals N and returns the ones denied.
fn denied_signals(fx: &Fixture, arg: Value) -> Vec<u32> {
    let profile = json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [{"names": ["kill"], "action": "SCMP_ACT_ERRNO", "args": [arg]}]
    });
    let mut b = bundle_with(fx, profile, true);
    let out = fx.run_sh(
        &mut b,
        "for s in 0 17 18 23 28; do kill -$s $$ 2>/dev/null || echo $s; done",
    );
    out.lines()
        .map(|l| l.parse().expect("a signal number"))
        .collect()
}

// config-linux.md "Seccomp" syscalls[].args: every operator, on kill(2)'s
// signal argument (index 1). MASKED_EQ: (arg & value) == valueTwo.
#[test]
fn argument_operators() {
    let fx = Fixture::new();
    let cases: [(&str, u64, Option<u64>, &[u32]); 7] = [
        ("SCMP_CMP_NE", 18, None, &[0, 17, 23, 28]),
        ("SCMP_CMP_LT", 18, None, &[0, 17]),
        ("SCMP_CMP_LE", 18, None, &[0, 17, 18]),
        ("SCMP_CMP_EQ", 18, None, &[18]),
        ("SCMP_CMP_GE", 18, None, &[18, 23, 28]),
        ("SCMP_CMP_GT", 18, None, &[23, 28]),
        ("SCMP_CMP_MASKED_EQ", 3, Some(3), &[23]),
    ];
    for (op, value, two, want) in cases {
        let mut arg = json!({"index": 1, "value": value, "op": op});
        if let Some(v) = two {
            arg["valueTwo"] = json!(v);
        }
        assert_eq!(denied_signals(&fx, arg), want, "{op}");
    }
    fx.assert_no_residue();
}

/// Receives one message with fds on `conn`: (payload, fds).
fn recv_with_fds(conn: RawFd) -> (Vec<u8>, Vec<OwnedFd>) {
    use nix::sys::socket::{recvmsg, ControlMessageOwned, MsgFlags};
    let mut payload = vec![0u8; 65536];
    let mut iov = [IoSliceMut::new(&mut payload)];
    let mut cmsg = nix::cmsg_space!([RawFd; 4]);
    let msg = recvmsg::<()>(conn, &mut iov, Some(&mut cmsg), MsgFlags::empty()).expect("recvmsg");
    let bytes = msg.bytes;
    let mut fds = Vec::new();
    for c in msg.cmsgs().expect("cmsgs") {
        if let ControlMessageOwned::ScmRights(r) = c {
            // SAFETY: just received, owned by nobody else.
            fds.extend(r.into_iter().map(|fd| unsafe { OwnedFd::from_raw_fd(fd) }));
        }
    }
    payload.truncate(bytes);
    (payload, fds)
}

/// A seccomp agent: answers every notification with EROFS until the
/// filter's last user is gone (or 20 s pass).
fn serve_notifications(fd: &OwnedFd) -> usize {
    let mut served = 0;
    loop {
        let mut pfd = [nix::poll::PollFd::new(
            std::os::fd::AsFd::as_fd(fd),
            nix::poll::PollFlags::POLLIN,
        )];
        match nix::poll::poll(&mut pfd, nix::poll::PollTimeout::from(20_000u16)) {
            Ok(n) if n > 0 => {}
            _ => return served,
        }
        let revents = pfd[0].revents().unwrap_or(nix::poll::PollFlags::empty());
        if !revents.contains(nix::poll::PollFlags::POLLIN) {
            return served; // POLLHUP: no task uses the filter any more.
        }
        // SAFETY: zeroed plain-old-data structs passed to the seccomp ioctls.
        unsafe {
            let mut req: libc::seccomp_notif = std::mem::zeroed();
            if libc::ioctl(fd.as_raw_fd(), libc::SECCOMP_IOCTL_NOTIF_RECV, &mut req) != 0 {
                return served;
            }
            let mut resp: libc::seccomp_notif_resp = std::mem::zeroed();
            resp.id = req.id;
            resp.error = -libc::EROFS;
            libc::ioctl(fd.as_raw_fd(), libc::SECCOMP_IOCTL_NOTIF_SEND, &mut resp);
        }
        served += 1;
    }
}

// config-linux.md "Seccomp" listenerPath/listenerMetadata and "The Container
// Process State": with SCMP_ACT_NOTIFY the runtime connects to listenerPath
// and sends the seccomp fd by SCM_RIGHTS with ociVersion, fds ["seccompFd"],
// pid (as seen by the runtime), metadata and state. The fd works: the agent's
// answer is what the container's syscall returns.
#[test]
fn notify_sends_the_listener_fd_and_state() {
    let fx = Fixture::new();
    for nnp in [true, false] {
        let sock_path = fx.socket_path(if nnp { "a1.sock" } else { "a0.sock" });
        let listener = UnixListener::bind(&sock_path).unwrap();
        let profile = json!({
            "defaultAction": "SCMP_ACT_ALLOW",
            "listenerPath": sock_path,
            "listenerMetadata": "hello-agent",
            "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_NOTIFY"}]
        });
        let mut b = bundle_with(&fx, profile, nnp);
        b.set_sh("mkdir /tmp/x 2>/tmp/result; echo rc=$? >>/tmp/result");
        let agent = std::thread::spawn(move || {
            let (conn, _) = listener.accept().expect("accept");
            let (payload, fds) = recv_with_fds(conn.as_raw_fd());
            // One state per connection, then closed by the runtime.
            let mut rest = Vec::new();
            let _ = std::io::Read::read_to_end(&mut &conn, &mut rest);
            let mut payload = payload;
            payload.extend(rest);
            let link = fds.first().and_then(|fd| {
                std::fs::read_link(format!("/proc/self/fd/{}", fd.as_raw_fd())).ok()
            });
            let served = fds.first().map(serve_notifications).unwrap_or(0);
            (payload, fds.len(), link, served)
        });
        let id = fx.id("notify");
        fx.create(&b, &id, &[]).ok();
        let pid = fx.pid(&id);
        fx.start(&id).ok();
        fx.wait_status(&id, "stopped");
        let (payload, nfds, link, served) = agent.join().expect("agent thread");
        fx.delete(&id).ok();

        let ctx = format!("nnp={nnp}: {}", String::from_utf8_lossy(&payload));
        assert_eq!(nfds, 1, "{ctx}");
        let link = link.map(|l| l.display().to_string()).unwrap_or_default();
        assert!(link.contains("seccomp"), "{link}: {ctx}");
        let state: Value = serde_json::from_slice(&payload).expect("container process state JSON");
        assert!(
            state["ociVersion"].as_str().is_some_and(|v| !v.is_empty()),
            "{ctx}"
        );
        assert_eq!(state["fds"], json!(["seccompFd"]), "{ctx}");
        assert_eq!(state["pid"], json!(pid), "{ctx}");
        assert_eq!(state["metadata"], json!("hello-agent"), "{ctx}");
        assert_eq!(state["state"]["id"], json!(id), "{ctx}");
        assert_eq!(state["state"]["pid"], json!(pid), "{ctx}");
        assert!(
            ["creating", "created"].contains(&state["state"]["status"].as_str().unwrap_or("")),
            "{ctx}"
        );
        let result = std::fs::read_to_string(b.rootfs().join("tmp/result")).unwrap_or_default();
        assert!(
            result.contains("Read-only file system") && result.contains("rc=1"),
            "{result}"
        );
        assert!(served >= 1, "{ctx}");
    }
    fx.assert_no_residue();
}

/// A static 32-bit x86 program that tries mkdir and prints the errno.
fn build_x86_program(dir: &Path) -> Option<std::path::PathBuf> {
    let src = dir.join("mkdir32.c");
    std::fs::write(
        &src,
        "#include <stdio.h>\n#include <errno.h>\n#include <sys/stat.h>\n\
         int main(void){ int r = mkdir(\"/tmp/m32\", 0755);\n\
         printf(\"mkdir=%d errno=%d\\n\", r, r ? errno : 0); return 0; }\n",
    )
    .ok()?;
    let out = dir.join("mkdir32");
    let ok = Command::new("gcc")
        .args(["-m32", "-static", "-O1", "-o"])
        .arg(&out)
        .arg(&src)
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    ok.then_some(out)
}

// config-linux.md "Seccomp" architectures: SCMP_ARCH_X86 puts the rules on
// 32-bit syscalls too; without it a 32-bit syscall is a bad-arch kill.
#[test]
fn x86_architecture_is_filtered() {
    let fx = Fixture::new();
    let Some(prog) = build_x86_program(&fx.dir) else {
        eprintln!("SKIP x86_architecture_is_filtered: gcc -m32 -static unavailable (gcc-multilib)");
        return;
    };
    for (archs, expect) in [
        (
            json!(["SCMP_ARCH_X86_64", "SCMP_ARCH_X86"]),
            Some("mkdir=-1 errno=1\n"),
        ),
        (json!(["SCMP_ARCH_X86_64"]), None),
    ] {
        let mut profile = deny_mkdir(None);
        profile["architectures"] = archs.clone();
        let mut b = bundle_with(&fx, profile, true);
        std::fs::copy(&prog, b.rootfs().join("bin/mkdir32")).unwrap();
        b.set_args(&["/bin/mkdir32"]);
        let id = fx.id("x86");
        let out = fx.run(&b, &id, &[]);
        match expect {
            Some(want) => assert_eq!(out.ok().stdout, want, "{archs}"),
            // Killed by SIGSYS: 128 + 31.
            None => assert_eq!(
                out.code(),
                Some(128 + libc::SIGSYS),
                "{archs}: {}",
                out.describe()
            ),
        }
        assert!(!b.rootfs().join("tmp/m32").exists(), "{archs}");
        let _ = fx.rt(&["delete", "-f", &id]).run();
    }
    fx.assert_no_residue();
}

// runtime.md "Errors" with config-linux.md "Seccomp": a profile the runtime
// can't apply fails create, names the problem and leaves nothing behind.
#[test]
fn invalid_profiles_fail_create() {
    let fx = Fixture::new();
    let base = || deny_mkdir(None);
    let mut cases: Vec<(Value, Vec<&str>)> = Vec::new();
    let mut p = base();
    p["defaultAction"] = json!("SCMP_ACT_BOGUS");
    cases.push((p, vec!["SCMP_ACT_BOGUS"]));
    let mut p = base();
    p["syscalls"][0]["action"] = json!("SCMP_ACT_NOPE");
    cases.push((p, vec!["SCMP_ACT_NOPE"]));
    let mut p = base();
    p["syscalls"][0]["args"] = json!([{"index": 0, "value": 1, "op": "SCMP_CMP_SOMETIMES"}]);
    cases.push((p, vec!["SCMP_CMP_SOMETIMES"]));
    let mut p = base();
    p["architectures"] = json!(["SCMP_ARCH_PDP11"]);
    cases.push((p, vec!["SCMP_ARCH_PDP11"]));
    let mut p = base();
    p["flags"] = json!(["SECCOMP_FILTER_FLAG_BOGUS"]);
    cases.push((p, vec!["SECCOMP_FILTER_FLAG_BOGUS"]));
    // "When the action doesn't support an errno, the runtime MUST ... fail."
    let mut p = base();
    p["syscalls"][0]["action"] = json!("SCMP_ACT_ALLOW");
    p["syscalls"][0]["errnoRet"] = json!(5);
    p["defaultAction"] = json!("SCMP_ACT_ERRNO");
    cases.push((p, vec!["errnoRet"]));
    // SCMP_ACT_NOTIFY with nowhere to send the listener fd.
    let mut p = base();
    p["syscalls"][0]["action"] = json!("SCMP_ACT_NOTIFY");
    cases.push((p, vec!["listenerPath"]));
    for (profile, needles) in cases {
        let b = bundle_with(&fx, profile, true);
        let id = fx.id("bad");
        let needles: &[&str] = if is_berth() { &needles } else { &[] };
        fx.create(&b, &id, &[]).fails_with(needles);
        fx.assert_no_residue();
    }
}

/// A Docker-default-shaped allow-list, written for these tests: most of
/// what a normal program uses, none of the administrative syscalls (mount,
/// unshare, setns, reboot, module loading, bpf, ...).
const DOCKERISH_ALLOW: &[&str] = &[
    "accept",
    "accept4",
    "access",
    "adjtimex",
    "alarm",
    "bind",
    "brk",
    "capget",
    "capset",
    "chdir",
    "chmod",
    "chown",
    "chown32",
    "clock_adjtime",
    "clock_getres",
    "clock_gettime",
    "clock_nanosleep",
    "close",
    "close_range",
    "connect",
    "copy_file_range",
    "creat",
    "dup",
    "dup2",
    "dup3",
    "epoll_create",
    "epoll_create1",
    "epoll_ctl",
    "epoll_pwait",
    "epoll_pwait2",
    "epoll_wait",
    "eventfd",
    "eventfd2",
    "execve",
    "execveat",
    "exit",
    "exit_group",
    "faccessat",
    "faccessat2",
    "fadvise64",
    "fallocate",
    "fchdir",
    "fchmod",
    "fchmodat",
    "fchmodat2",
    "fchown",
    "fchownat",
    "fcntl",
    "fcntl64",
    "fdatasync",
    "fgetxattr",
    "flistxattr",
    "flock",
    "fork",
    "fstat",
    "fstat64",
    "fstatat64",
    "fstatfs",
    "fsync",
    "ftruncate",
    "futex",
    "futex_waitv",
    "getcpu",
    "getcwd",
    "getdents",
    "getdents64",
    "getegid",
    "geteuid",
    "getgid",
    "getgroups",
    "getitimer",
    "getpeername",
    "getpgid",
    "getpgrp",
    "getpid",
    "getppid",
    "getpriority",
    "getrandom",
    "getresgid",
    "getresuid",
    "getrlimit",
    "get_robust_list",
    "getrusage",
    "getsid",
    "getsockname",
    "getsockopt",
    "gettid",
    "gettimeofday",
    "getuid",
    "getxattr",
    "inotify_add_watch",
    "inotify_init",
    "inotify_init1",
    "inotify_rm_watch",
    "ioctl",
    "kill",
    "lchown",
    "lgetxattr",
    "link",
    "linkat",
    "listen",
    "listxattr",
    "llistxattr",
    "lseek",
    "lstat",
    "madvise",
    "membarrier",
    "memfd_create",
    "mincore",
    "mknod",
    "mknodat",
    "mlock",
    "mmap",
    "mprotect",
    "mremap",
    "msync",
    "munlock",
    "munmap",
    "nanosleep",
    "newfstatat",
    "open",
    "openat",
    "openat2",
    "pause",
    "pipe",
    "pipe2",
    "poll",
    "ppoll",
    "prctl",
    "pread64",
    "preadv",
    "preadv2",
    "prlimit64",
    "pselect6",
    "pwrite64",
    "pwritev",
    "pwritev2",
    "read",
    "readahead",
    "readlink",
    "readlinkat",
    "readv",
    "recvfrom",
    "recvmmsg",
    "recvmsg",
    "rename",
    "renameat",
    "renameat2",
    "restart_syscall",
    "rmdir",
    "rseq",
    "rt_sigaction",
    "rt_sigpending",
    "rt_sigprocmask",
    "rt_sigqueueinfo",
    "rt_sigreturn",
    "rt_sigsuspend",
    "rt_sigtimedwait",
    "rt_tgsigqueueinfo",
    "sched_getaffinity",
    "sched_getparam",
    "sched_get_priority_max",
    "sched_get_priority_min",
    "sched_getscheduler",
    "sched_yield",
    "select",
    "sendfile",
    "sendmmsg",
    "sendmsg",
    "sendto",
    "setfsgid",
    "setfsuid",
    "setgid",
    "setgroups",
    "setitimer",
    "setpgid",
    "setpriority",
    "setregid",
    "setresgid",
    "setresuid",
    "setreuid",
    "setrlimit",
    "set_robust_list",
    "setsid",
    "setsockopt",
    "set_tid_address",
    "setuid",
    "setxattr",
    "shutdown",
    "sigaltstack",
    "signalfd",
    "signalfd4",
    "socket",
    "socketcall",
    "socketpair",
    "splice",
    "stat",
    "stat64",
    "statfs",
    "statx",
    "symlink",
    "symlinkat",
    "sync",
    "sync_file_range",
    "syncfs",
    "sysinfo",
    "tee",
    "tgkill",
    "time",
    "timer_create",
    "timer_delete",
    "timer_getoverrun",
    "timer_gettime",
    "timer_settime",
    "timerfd_create",
    "timerfd_gettime",
    "timerfd_settime",
    "times",
    "tkill",
    "truncate",
    "ugetrlimit",
    "umask",
    "uname",
    "unlink",
    "unlinkat",
    "utime",
    "utimensat",
    "utimes",
    "vfork",
    "wait4",
    "waitid",
    "write",
    "writev",
    "arch_prctl",
    "mkdir",
    "mkdirat",
    "clone",
    "clone3",
];
