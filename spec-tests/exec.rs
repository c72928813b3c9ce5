//! `exec`: a new process in a running container (runc CLI contract "exec";
//! runtime.md: the container's config is fixed at create).

use std::fs;
use std::os::unix::net::UnixListener;
use std::time::Duration;

use serde_json::json;

use crate::cgroups::{kill_and_delete, start_sleeper};
use crate::harness::*;
use crate::process::{read_pty, receive_console};

fn exec(fx: &Fixture, id: &str, args: &[&str]) -> Output {
    let mut argv = vec!["exec"];
    argv.push(id);
    argv.extend_from_slice(args);
    fx.rt(&argv).run()
}

fn exec_flags(fx: &Fixture, flags: &[&str], id: &str, args: &[&str]) -> Output {
    let mut argv = vec!["exec"];
    argv.extend_from_slice(flags);
    argv.push(id);
    argv.extend_from_slice(args);
    fx.rt(&argv).run()
}

// Contract "exec": the process joins every namespace of the container's init
// (compared by namespace inode, seen from inside and from the host).
#[test]
fn exec_joins_the_init_namespaces() {
    let fx = Fixture::new();
    let mut b = fx.bundle();
    b.config["hostname"] = json!("exec-host");
    let (id, pid) = start_sleeper(&fx, &mut b, "ns");
    let out = exec(
        &fx,
        &id,
        &[
            "sh",
            "-c",
            "hostname; for n in ipc mnt net pid uts cgroup; do readlink /proc/self/ns/$n; done; \
             echo pid=$$",
        ],
    )
    .ok();
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(lines[0], "exec-host", "{}", out.stdout);
    for (i, n) in ["ipc", "mnt", "net", "pid", "uts", "cgroup"]
        .iter()
        .enumerate()
    {
        let host_view = fs::read_link(format!("/proc/{pid}/ns/{n}")).unwrap();
        assert_eq!(
            lines[i + 1],
            host_view.to_str().unwrap(),
            "{n} namespace differs from the init's"
        );
    }
    // In the init's pid namespace the new process is not pid 1 but small.
    let inner: i32 = lines[7].strip_prefix("pid=").unwrap().parse().unwrap();
    assert!(inner > 1 && inner < pid, "pid in the container: {inner}");
    kill_and_delete(&fx, &id);
    fx.assert_no_residue();
}

// Contract "exec": the process is in the container's cgroup (every hierarchy);
// --detach returns at once; --pid-file holds the bare host pid.
#[test]
fn exec_detached_joins_the_cgroup_and_writes_the_pid_file() {
    let fx = Fixture::new();
    let mut b = fx.bundle();
    let (id, pid) = start_sleeper(&fx, &mut b, "cg");
    let pid_file = fx.dir.join("exec.pid");
    exec_flags(
        &fx,
        &["--detach", "--pid-file", pid_file.to_str().unwrap()],
        &id,
        &["sleep", "500"],
    )
    .ok();
    let raw = fs::read_to_string(&pid_file).expect("pid file written");
    assert!(
        !raw.is_empty() && raw.bytes().all(|c| c.is_ascii_digit()),
        "pid file must be bare digits, got {raw:?}"
    );
    let epid: i32 = raw.parse().unwrap();
    fx.note_pid(epid);
    assert_eq!(cmdline(epid), vec!["sleep", "500"]);
    let cg = |p: i32| fs::read_to_string(format!("/proc/{p}/cgroup")).unwrap();
    assert_eq!(
        cg(epid),
        cg(pid),
        "exec'd process is not in the init's cgroups"
    );
    // `ps --format json` lists both.
    let out = fx.rt(&["ps", "--format", "json", &id]).run().ok();
    let pids: Vec<i32> = serde_json::from_str(&out.stdout).unwrap();
    assert!(pids.contains(&pid) && pids.contains(&epid), "{pids:?}");
    kill_and_delete(&fx, &id);
    assert!(
        wait_until(Duration::from_secs(5), || cmdline(epid).is_empty()),
        "exec'd process survived delete"
    );
    fx.assert_no_residue();
}

// Contract "exec": a foreground exec returns the process's exit code, 128+N
// for signal N, and passes stdio through.
#[test]
fn exec_returns_the_exit_code() {
    let fx = Fixture::new();
    let mut b = fx.bundle();
    let (id, _) = start_sleeper(&fx, &mut b, "code");
    let out = exec(&fx, &id, &["sh", "-c", "echo out; echo err >&2; exit 7"]);
    assert_eq!(out.code(), Some(7), "{}", out.describe());
    assert_eq!(out.stdout, "out\n");
    assert_eq!(out.stderr, "err\n");
    let out = exec(&fx, &id, &["sh", "-c", "kill -KILL $$"]);
    assert_eq!(out.code(), Some(137), "{}", out.describe());
    kill_and_delete(&fx, &id);
    fx.assert_no_residue();
}

// Contract "exec": signals sent to a foreground exec reach the process.
#[test]
fn exec_forwards_signals() {
    let fx = Fixture::new();
    let mut b = fx.bundle();
    let (id, _) = start_sleeper(&fx, &mut b, "sig");
    let running = fx
        .rt(&[
            "exec",
            &id,
            "sh",
            "-c",
            "trap 'echo got-TERM; exit 0' TERM; echo ready; while :; do sleep 0.1; done",
        ])
        .spawn();
    let out_dir = fx.dir.clone();
    let berth = running.pid();
    let ready = wait_until(Duration::from_secs(10), || {
        fs::read_dir(&out_dir).unwrap().flatten().any(|e| {
            e.file_name().to_string_lossy().ends_with(".out")
                && fs::read_to_string(e.path()).unwrap_or_default() == "ready\n"
        })
    });
    assert!(ready, "exec'd process never got ready");
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(berth),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
    let out = running.wait();
    assert_eq!(out.code(), Some(0), "{}", out.describe());
    assert_eq!(out.stdout, "ready\ngot-TERM\n");
    kill_and_delete(&fx, &id);
    fx.assert_no_residue();
}

// Contract "exec" flags: --env adds (and overrides), --cwd, --user UID:GID,
// --additional-gids, --cap adds to the config's, --no-new-privs. The base is
// the config's process (its env is inherited).
#[test]
fn exec_flags_apply_on_top_of_the_config_process() {
    let fx = Fixture::new();
    let mut b = fx.bundle();
    b.process()["noNewPrivileges"] = json!(false);
    b.add_env("FROM_CONFIG=yes");
    let (id, _) = start_sleeper(&fx, &mut b, "flags");
    let script = "echo $FROM_CONFIG $FOO; pwd; id -u; id -g; id -G; \
                  grep -E '^(CapBnd|CapEff|NoNewPrivs):' /proc/self/status";
    let out = exec_flags(
        &fx,
        &[
            "--env",
            "FOO=bar",
            "--env",
            "FROM_CONFIG=overridden",
            "--cwd",
            "/tmp",
            "--user",
            "1000:1001",
            "--additional-gids",
            "5",
            "--cap",
            "CAP_SYS_ADMIN",
            "--no-new-privs",
        ],
        &id,
        &["sh", "-c", script],
    )
    .ok();
    let l: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(l[0], "overridden bar", "{}", out.stdout);
    assert_eq!(l[1], "/tmp");
    assert_eq!(l[2], "1000");
    assert_eq!(l[3], "1001");
    assert_eq!(l[4].split_whitespace().collect::<Vec<_>>(), ["1001", "5"]);
    let sys_admin = 1u64 << 21;
    let field = |k: &str| {
        let v = status_field(&out.stdout, k).unwrap();
        u64::from_str_radix(&v, 16).unwrap()
    };
    assert_ne!(field("CapBnd") & sys_admin, 0, "--cap not in bounding");
    assert_eq!(
        status_field(&out.stdout, "NoNewPrivs").as_deref(),
        Some("1")
    );
    // A non-root process keeps no effective capabilities across execve:
    // check --cap's effect on one running as the config's root user.
    let out = exec_flags(&fx, &["--cap", "CAP_SYS_ADMIN"], &id, &["sh", "-c", script]).ok();
    let v = status_field(&out.stdout, "CapEff").unwrap();
    assert_ne!(
        u64::from_str_radix(&v, 16).unwrap() & sys_admin,
        0,
        "--cap not effective: {}",
        out.stdout
    );

    // Without the flags: the config's user, cwd, caps.
    let out = exec(&fx, &id, &["sh", "-c", script]).ok();
    let l: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(l[0], "yes", "{}", out.stdout);
    assert_eq!(l[1], "/");
    assert_eq!(l[2], "0");
    let v = status_field(&out.stdout, "CapEff").unwrap();
    assert_eq!(u64::from_str_radix(&v, 16).unwrap() & sys_admin, 0);
    assert_eq!(
        status_field(&out.stdout, "NoNewPrivs").as_deref(),
        Some("0")
    );
    kill_and_delete(&fx, &id);
    fx.assert_no_residue();
}

// runtime.md "Create": changes to config.json after create do not affect the
// container, so neither the exec'd process.
#[test]
fn exec_uses_the_config_as_it_was_at_create() {
    berth_only!("runc 1.1 reads the bundle's config.json again at exec time");
    let fx = Fixture::new();
    let mut b = fx.bundle();
    b.add_env("WHEN=at-create");
    let (id, _) = start_sleeper(&fx, &mut b, "frozen-cfg");
    b.add_env("WHEN=edited-later");
    b.process()["cwd"] = json!("/etc");
    b.save();
    let out = exec(&fx, &id, &["sh", "-c", "echo $WHEN; pwd"]).ok();
    assert_eq!(out.stdout, "at-create\n/\n");
    kill_and_delete(&fx, &id);
    fx.assert_no_residue();
}

// Contract "exec --process": the whole process.json replaces the config's.
#[test]
fn exec_with_a_process_json() {
    let fx = Fixture::new();
    let mut b = fx.bundle();
    let (id, _) = start_sleeper(&fx, &mut b, "pjson");
    let p = fx.dir.join("process.json");
    fs::write(
        &p,
        json!({
            "args": ["sh", "-c", "echo $ONLY; pwd; id -u"],
            "env": ["PATH=/bin:/usr/bin", "ONLY=from-process-json"],
            "cwd": "/etc",
            "user": {"uid": 65534, "gid": 65534}
        })
        .to_string(),
    )
    .unwrap();
    let out = exec_flags(&fx, &["--process", p.to_str().unwrap()], &id, &[]).ok();
    assert_eq!(out.stdout, "from-process-json\n/etc\n65534\n");
    fs::write(&p, "{\"args\": 3}").unwrap();
    exec_flags(&fx, &["--process", p.to_str().unwrap()], &id, &[])
        .fails_with(berth_words(&["--process", "args"]));
    kill_and_delete(&fx, &id);
    fx.assert_no_residue();
}

// Contract "exec --tty --console-socket": the pty master goes to the socket,
// the process's stdio is the pty slave from the container's devpts.
#[test]
fn exec_with_a_terminal() {
    let fx = Fixture::new();
    let mut b = fx.bundle();
    let (id, _) = start_sleeper(&fx, &mut b, "tty");
    let sock = fx.socket_path("c.sock");
    let listener = UnixListener::bind(&sock).unwrap();
    let receiver = std::thread::spawn(move || receive_console(listener));
    exec_flags(
        &fx,
        &[
            "--tty",
            "--detach",
            "--console-socket",
            sock.to_str().unwrap(),
        ],
        &id,
        &[
            "sh",
            "-c",
            "[ -t 0 ] && [ -t 1 ] && [ -t 2 ] && echo all-ttys; tty",
        ],
    )
    .ok();
    let (master, _) = receiver.join().unwrap();
    let text = read_pty(master, Duration::from_secs(10));
    assert!(text.contains("all-ttys"), "{text:?}");
    assert!(text.contains("/dev/pts/"), "{text:?}");
    kill_and_delete(&fx, &id);
    fx.assert_no_residue();
}

// Contract "exec" errors: one line, non-zero, nothing left behind.
#[test]
fn exec_errors() {
    let fx = Fixture::new();
    exec(&fx, "no-such-ctr", &["true"]).fails_with(&["does not exist"]);

    let mut b = fx.bundle();
    let (id, pid) = start_sleeper(&fx, &mut b, "errs");
    exec(&fx, &id, &["no-such-binary"]).fails_with(&["no-such-binary"]);
    let out = fx.rt(&["ps", "--format", "json", &id]).run().ok();
    assert_eq!(
        serde_json::from_str::<Vec<i32>>(&out.stdout).unwrap(),
        vec![pid],
        "a failed exec left a process"
    );
    exec(&fx, &id, &[]).fails_with(berth_words(&["command"]));
    if is_berth() {
        // runc accepts these without LSM support on the host. (Where
        // AppArmor is enabled, apparmor.rs checks --apparmor.)
        if !std::fs::read_to_string("/sys/module/apparmor/parameters/enabled")
            .is_ok_and(|s| s.trim() == "Y")
        {
            exec_flags(&fx, &["--apparmor", "prof"], &id, &["true"]).fails_with(&[
                "--apparmor",
                "prof",
                "AppArmor is not enabled",
            ]);
        }
        // (Where SELinux is enabled, selinux.rs checks --process-label.)
        if !std::path::Path::new("/sys/fs/selinux/enforce").exists() {
            exec_flags(&fx, &["--process-label", "l"], &id, &["true"])
                .fails_with(&["--process-label", "SELinux is not enabled"]);
        }
    }
    if is_berth() {
        // runc 1.1 only warns about an unknown capability.
        exec_flags(&fx, &["--cap", "CAP_NOPE"], &id, &["true"]).fails_with(&["CAP_NOPE"]);
    }
    exec_flags(&fx, &["--user", "bob"], &id, &["true"]).fails_with(berth_words(&["--user"]));

    fx.rt(&["pause", &id]).run().ok();
    exec(&fx, &id, &["true"]).fails_with(&["paused"]);
    fx.rt(&["resume", &id]).run().ok();

    fx.kill(&id, "KILL").ok();
    fx.wait_status(&id, "stopped");
    exec(&fx, &id, &["true"]).fails_with(&["stopped"]);
    fx.delete(&id).ok();
    fx.assert_no_residue();
}

// Contract "exec": with a user namespace the process joins it first (its ids
// map like the init's) and then the others.
#[test]
fn exec_into_a_user_namespace() {
    let fx = Fixture::new();
    let mut b = fx.bundle();
    b.set_namespace("user", None);
    b.linux()["uidMappings"] = json!([{"containerID": 0, "hostID": 100000, "size": 65536}]);
    b.linux()["gidMappings"] = json!([{"containerID": 0, "hostID": 200000, "size": 65536}]);
    let (id, pid) = start_sleeper(&fx, &mut b, "userns");
    let out = exec(
        &fx,
        &id,
        &[
            "sh",
            "-c",
            "id -u; readlink /proc/self/ns/user; echo pid=$$",
        ],
    )
    .ok();
    let l: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(l[0], "0", "{}", out.stdout);
    let host_view = fs::read_link(format!("/proc/{pid}/ns/user")).unwrap();
    assert_eq!(l[1], host_view.to_str().unwrap());
    kill_and_delete(&fx, &id);
    fx.assert_no_residue();
}

// Contract "exec --preserve-fds": fds 3..3+N-1 reach the process; any other
// fd the caller leaked does not (the joiner closes them like the init does).
#[test]
fn exec_preserves_only_the_given_fds() {
    let fx = Fixture::new();
    let mut b = fx.bundle();
    let (id, _) = start_sleeper(&fx, &mut b, "fds");
    let file = fx.dir.join("passed");
    fs::write(&file, "preserved-content\n").unwrap();
    let script = format!(
        "exec 3<{f} 7<{f}; exec {rt} --root {root} exec --preserve-fds 1 {id} \
         sh -c 'cat <&3; [ -e /proc/$$/fd/7 ] && echo leaked-7 || echo no-7'",
        f = file.display(),
        rt = runtime_bin().display(),
        root = fx.root.display(),
    );
    let out = Cmd::new("sh", &fx.dir).args(&["-c", &script]).run().ok();
    assert_eq!(out.stdout, "preserved-content\nno-7\n");
    kill_and_delete(&fx, &id);
    fx.assert_no_residue();
}

// Contract "exec --ignore-paused": the exec goes ahead in a paused
// container; the process runs once the container is resumed.
#[test]
fn exec_ignore_paused() {
    let fx = Fixture::new();
    let mut b = fx.bundle();
    let (id, _) = start_sleeper(&fx, &mut b, "ignp");
    fx.rt(&["pause", &id]).run().ok();
    let mut running = fx
        .rt(&["exec", "--ignore-paused", &id, "echo", "ran-after-resume"])
        .spawn();
    std::thread::sleep(Duration::from_millis(300));
    assert!(
        running.try_wait().is_none(),
        "exec finished in a frozen container"
    );
    fx.rt(&["resume", &id]).run().ok();
    let out = running.wait().ok();
    assert_eq!(out.stdout, "ran-after-resume\n");
    kill_and_delete(&fx, &id);
    fx.assert_no_residue();
}

// Contract "exec --tty" in the foreground without --console-socket: the
// runtime proxies the pty to its own stdio and returns the exit code.
#[test]
fn exec_tty_in_the_foreground() {
    berth_only!("runc 1.1 opens /dev/tty: it needs a controlling terminal of its own");
    let fx = Fixture::new();
    let mut b = fx.bundle();
    let (id, _) = start_sleeper(&fx, &mut b, "fgtty");
    let out = exec_flags(
        &fx,
        &["--tty"],
        &id,
        &[
            "sh",
            "-c",
            "[ -t 0 ] && [ -t 1 ] && echo all-ttys; tty; exit 4",
        ],
    );
    assert_eq!(out.code(), Some(4), "{}", out.describe());
    let lines: Vec<&str> = out
        .stdout
        .lines()
        .map(|l| l.trim_end_matches('\r'))
        .collect();
    assert_eq!(lines[0], "all-ttys", "{}", out.stdout);
    assert!(lines[1].starts_with("/dev/pts/"), "{}", out.stdout);
    kill_and_delete(&fx, &id);
    fx.assert_no_residue();
}

// Contract "exec": a created (not yet started) container can be exec'd into,
// as with runc; its init still waits for `start`.
#[test]
fn exec_in_a_created_container() {
    let fx = Fixture::new();
    let mut b = fx.bundle();
    b.set_args(&["sleep", "1000"]);
    let id = fx.id("created");
    fx.create(&b, &id, &[]).ok();
    let out = exec(&fx, &id, &["echo", "in-created"]).ok();
    assert_eq!(out.stdout, "in-created\n");
    assert_eq!(fx.status(&id), "created");
    fx.start(&id).ok();
    assert_eq!(fx.status(&id), "running");
    kill_and_delete(&fx, &id);
    fx.assert_no_residue();
}

// config-linux.md "Seccomp" applies to the container's processes: an exec'd
// process is filtered by the container's profile too (as with runc), with
// and without noNewPrivileges.
#[test]
fn exec_gets_the_container_seccomp_profile() {
    let fx = Fixture::new();
    for nnp in [true, false] {
        let mut b = fx.bundle();
        b.set_readonly(false);
        b.process()["noNewPrivileges"] = json!(nnp);
        b.linux()["seccomp"] = json!({
            "defaultAction": "SCMP_ACT_ALLOW",
            "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1}]
        });
        let (id, _) = start_sleeper(&fx, &mut b, "execsc");
        let out = exec(
            &fx,
            &id,
            &["sh", "-c", "grep -E '^(Seccomp|NoNewPrivs):' /proc/self/status; mkdir /made 2>&1; touch /touched && echo touched"],
        )
        .ok();
        let want_nnp = if nnp { "1" } else { "0" };
        assert!(
            out.stdout.contains("Seccomp:\t2"),
            "nnp={nnp}: {}",
            out.stdout
        );
        assert!(
            out.stdout.contains(&format!("NoNewPrivs:\t{want_nnp}")),
            "nnp={nnp}: {}",
            out.stdout
        );
        assert!(
            out.stdout.contains("Operation not permitted"),
            "nnp={nnp}: {}",
            out.stdout
        );
        assert!(out.stdout.contains("touched"), "nnp={nnp}: {}", out.stdout);
        assert!(
            !b.rootfs().join("made").exists(),
            "nnp={nnp}: mkdir got through"
        );
        kill_and_delete(&fx, &id);
    }
    fx.assert_no_residue();
}

// config.md "execCPUAffinity": `final` is the exec'd process's affinity
// when its program starts.
#[test]
fn exec_cpu_affinity_final() {
    berth_only!("runc 1.1.5 has no execCPUAffinity");
    let fx = Fixture::new();
    let mut b = fx.bundle();
    b.process()["execCPUAffinity"] = json!({"initial": "0", "final": "0"});
    let (id, _) = start_sleeper(&fx, &mut b, "affinity");
    let out = exec(
        &fx,
        &id,
        &["grep", "Cpus_allowed_list", "/proc/self/status"],
    )
    .ok();
    assert_eq!(
        out.stdout.split_whitespace().nth(1),
        Some("0"),
        "{}",
        out.stdout
    );
    kill_and_delete(&fx, &id);
    fx.assert_no_residue();
}
