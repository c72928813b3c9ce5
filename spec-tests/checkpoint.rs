//! `checkpoint` and `restore` (runc-cli-contract.md "Checkpoint", "Restore";
//! issue 5). The tests that need CRIU to work run in the pure cgroup v2 guest
//! (spec-tests/run); where `criu check` fails (this project's host kernel)
//! they print `SKIP checkpoint: ...` with CRIU's first error and return. The
//! error-path tests are decided before CRIU runs, so they run everywhere.
//!
//! Stdio of the checkpointed containers are pipes, as under containerd's
//! shim: CRIU cannot dump a host file outside the container's mounts, and a
//! pipe is what `restore` reconnects to its own stdio (`--inherit-fd`).

use std::fs;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use serde_json::json;

use crate::harness::*;

/// CRIU is slow in the emulated guest: a dump or restore may take a while.
const CRIU_TIMEOUT: Duration = Duration::from_secs(240);

/// Why CRIU can't be used here, if it can't (`criu check`, run once).
fn criu_unusable() -> Option<String> {
    static WHY: OnceLock<Option<String>> = OnceLock::new();
    WHY.get_or_init(|| {
        let out = match Command::new("criu").arg("check").output() {
            Ok(o) => o,
            Err(e) => return Some(format!("criu is not installed ({e})")),
        };
        if out.status.success() {
            return None;
        }
        let text = String::from_utf8_lossy(&out.stderr).to_string()
            + &String::from_utf8_lossy(&out.stdout);
        let first = text
            .lines()
            .find(|l| l.contains("Error"))
            .or_else(|| text.lines().next())
            .unwrap_or("no output")
            .trim()
            .to_string();
        Some(format!("criu check fails on this kernel: {first}"))
    })
    .clone()
}

/// Prints the reason and returns true when the test can't run here.
fn skip_without_criu() -> bool {
    if !is_berth() {
        eprintln!("SKIP checkpoint: berth-only test (image checks and wording)");
        return true;
    }
    match criu_unusable() {
        Some(why) => {
            eprintln!("SKIP checkpoint: {why}");
            true
        }
        None => false,
    }
}

/// A counter that prints each value and keeps the last in a tmpfs.
fn counter_bundle(fx: &Fixture) -> Bundle {
    let mut b = fx.bundle();
    b.set_sh("i=0; while true; do i=$((i+1)); echo $i; echo $i > /data/count; sleep 0.2; done");
    b.mkdir_rootfs("data");
    b.add_mount(json!({
        "destination": "/data", "type": "tmpfs", "source": "tmpfs",
        "options": ["nosuid", "nodev", "size=1m"]
    }));
    b.save();
    b
}

/// A runtime command whose stdio are pipes; what the container prints on
/// stdout is collected as numbers.
struct Piped {
    child: Child,
    _stdin: ChildStdin,
    values: Arc<Mutex<Vec<u64>>>,
    stderr: Arc<Mutex<String>>,
}

impl Piped {
    fn spawn(fx: &Fixture, args: &[&str]) -> Piped {
        let mut child = Command::new(runtime_bin())
            .args(["--root", fx.root.to_str().unwrap()])
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn the runtime");
        let stdin = child.stdin.take().unwrap();
        let stdout = child.stdout.take().unwrap();
        let errpipe = child.stderr.take().unwrap();
        let stderr = Arc::new(Mutex::new(String::new()));
        let errsink = stderr.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(errpipe).lines().map_while(Result::ok) {
                errsink.lock().unwrap().push_str(&(line + "\n"));
            }
        });
        let values = Arc::new(Mutex::new(Vec::new()));
        let sink = values.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Ok(n) = line.trim().parse::<u64>() {
                    sink.lock().unwrap().push(n);
                }
            }
        });
        Piped {
            child,
            _stdin: stdin,
            values,
            stderr,
        }
    }

    /// Waits for the runtime command itself (the container goes on).
    #[track_caller]
    fn wait_ok(&mut self) {
        let mut status = None;
        wait_until(CRIU_TIMEOUT, || {
            status = self.child.try_wait().unwrap();
            status.is_some()
        });
        let status = status.unwrap_or_else(|| {
            let _ = self.child.kill();
            panic!("runtime command hung")
        });
        assert!(
            status.success(),
            "runtime command failed: {}",
            self.stderr.lock().unwrap()
        );
    }

    fn values(&self) -> Vec<u64> {
        self.values.lock().unwrap().clone()
    }

    fn last(&self) -> u64 {
        self.values().last().copied().unwrap_or(0)
    }

    #[track_caller]
    fn wait_for_count(&self, n: usize) {
        assert!(
            wait_until(Duration::from_secs(60), || self.values().len() >= n),
            "the container printed only {:?}",
            self.values()
        );
    }
}

fn run_counter(fx: &Fixture, b: &Bundle, id: &str) -> Piped {
    let mut run = Piped::spawn(fx, &["run", "-d", "--bundle", b.dir.to_str().unwrap(), id]);
    run.wait_ok();
    fx.state(id);
    run.wait_for_count(3);
    run
}

fn restore_counter(fx: &Fixture, b: &Bundle, id: &str, image: &Path) -> Piped {
    let mut restore = Piped::spawn(
        fx,
        &[
            "restore",
            "-d",
            "--image-path",
            image.to_str().unwrap(),
            "--bundle",
            b.dir.to_str().unwrap(),
            id,
        ],
    );
    restore.wait_ok();
    assert_eq!(fx.status(id), "running");
    restore.wait_for_count(2);
    restore
}

fn checkpoint(fx: &Fixture, id: &str, extra: &[&str]) {
    let mut args = vec!["checkpoint"];
    args.extend_from_slice(extra);
    args.push(id);
    fx.rt(&args).timeout(CRIU_TIMEOUT).run().ok();
}

/// The counter in the tmpfs, read through `exec` (which must work on a
/// restored container).
fn exec_count(fx: &Fixture, id: &str) -> u64 {
    let out = fx.rt(&["exec", id, "cat", "/data/count"]).run().ok();
    out.stdout.trim().parse().expect("a number in /data/count")
}

fn kill_and_delete(fx: &Fixture, id: &str) {
    fx.kill(id, "KILL").ok();
    fx.wait_status(id, "stopped");
    fx.delete(id).ok();
}

// Contract "Checkpoint"/"Restore": checkpoint stops and removes the container, restore
// brings it back where it was: the counter goes on from its last value (not
// from 1), on the restorer's stdout, and in the tmpfs; exec, kill and delete
// work on the restored container and leave nothing behind.
#[test]
fn checkpoint_and_restore_continue_the_counter() {
    if skip_without_criu() {
        return;
    }
    let fx = Fixture::new();
    let b = counter_bundle(&fx);
    let id = fx.id("ckpt");
    let run = run_counter(&fx, &b, &id);
    let image = fx.dir.join("image");
    checkpoint(&fx, &id, &["--image-path", image.to_str().unwrap()]);
    assert!(image.join("inventory.img").exists());
    assert!(
        image.join("dump.log").exists(),
        "CRIU's log is kept in the image dir"
    );
    // As runc: a checkpoint without --leave-running destroys the container.
    fx.rt(&["state", &id]).run().fails_with(&["does not exist"]);
    // Let the reader drain what the original printed before it died.
    std::thread::sleep(Duration::from_millis(500));
    let before = run.last();

    let restored = restore_counter(&fx, &b, &id, &image);
    let first = restored.values()[0];
    assert!(
        first > 1 && first + 2 >= before && first <= before + 2,
        "restored counter starts at {first}, the original stopped at {before}"
    );
    let in_tmpfs = exec_count(&fx, &id);
    assert!(
        in_tmpfs >= before,
        "/data/count is {in_tmpfs}, was {before}"
    );
    kill_and_delete(&fx, &id);
    fx.assert_no_residue();
}

// Contract "Checkpoint": --leave-running keeps the original going; a restore
// after it was deleted starts from the checkpoint, not from where the
// original got to later.
#[test]
fn leave_running_then_restore() {
    if skip_without_criu() {
        return;
    }
    let fx = Fixture::new();
    let b = counter_bundle(&fx);
    let id = fx.id("leave");
    let run = run_counter(&fx, &b, &id);
    let image = fx.dir.join("image");
    let at_checkpoint = run.last();
    checkpoint(
        &fx,
        &id,
        &["--leave-running", "--image-path", image.to_str().unwrap()],
    );
    let after_checkpoint = run.last();
    assert_eq!(fx.status(&id), "running");
    let n = run.values().len();
    run.wait_for_count(n + 3);
    let later = run.last();
    kill_and_delete(&fx, &id);

    let restored = restore_counter(&fx, &b, &id, &image);
    let first = restored.values()[0];
    assert!(
        first + 2 >= at_checkpoint && first <= after_checkpoint + 2 && first < later,
        "restored counter starts at {first}: checkpoint was between {at_checkpoint} and \
         {after_checkpoint}, the original got to {later}"
    );
    kill_and_delete(&fx, &id);
    fx.assert_no_residue();
}

// Contract "Checkpoint": --pre-dump leaves the container running; a dump
// with --parent-path (relative to the image path) builds on it.
#[test]
fn pre_dump_chain_then_restore() {
    if skip_without_criu() {
        return;
    }
    let fx = Fixture::new();
    let b = counter_bundle(&fx);
    let id = fx.id("predump");
    let run = run_counter(&fx, &b, &id);
    let pre = fx.dir.join("pre");
    let image = fx.dir.join("image");
    checkpoint(
        &fx,
        &id,
        &["--pre-dump", "--image-path", pre.to_str().unwrap()],
    );
    assert_eq!(fx.status(&id), "running", "pre-dump leaves it running");
    assert!(pre.join("inventory.img").exists());
    checkpoint(
        &fx,
        &id,
        &[
            "--parent-path",
            "../pre",
            "--image-path",
            image.to_str().unwrap(),
        ],
    );
    // CRIU links the dump to its parent images.
    assert!(
        fs::read_link(image.join("parent")).is_ok(),
        "no parent link in the dump"
    );
    // As runc: a checkpoint without --leave-running destroys the container.
    fx.rt(&["state", &id]).run().fails_with(&["does not exist"]);
    std::thread::sleep(Duration::from_millis(500));
    let before = run.last();
    let restored = restore_counter(&fx, &b, &id, &image);
    let first = restored.values()[0];
    assert!(
        first > 1 && first + 2 >= before && first <= before + 2,
        "restored counter starts at {first}, the original stopped at {before}"
    );
    assert!(exec_count(&fx, &id) >= before);
    kill_and_delete(&fx, &id);
    fx.assert_no_residue();
}

/// A fake criu that reports `version`.
fn fake_criu(fx: &Fixture, version: &str) -> PathBuf {
    let path = fx.dir.join("fake-criu");
    fs::write(&path, format!("#!/bin/sh\necho 'Version: {version}'\n")).unwrap();
    fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    path
}

// Issue 5 "Clear errors": checkpoint of a container that isn't running, CRIU
// missing or too old. Each fails with one line, and the container is as it was.
#[test]
fn checkpoint_errors() {
    berth_only!("berth's wording; runc's checks differ");
    let fx = Fixture::new();
    let mut b = fx.bundle();
    b.set_args(&["sleep", "300"]);
    let id = fx.id("notrunning");
    fx.create(&b, &id, &[]).ok();
    let image = fx.dir.join("image");
    let img = image.to_str().unwrap();
    fx.rt(&["checkpoint", "--image-path", img, &id])
        .run()
        .fails_with(&["checkpoint", "created", "not running"]);
    fx.start(&id).ok();
    fx.rt(&[
        "--criu",
        "/nonexistent/criu",
        "checkpoint",
        "--image-path",
        img,
        &id,
    ])
    .run()
    .fails_with(&["criu", "/nonexistent/criu"]);
    let old = fake_criu(&fx, "2.9");
    fx.rt(&[
        "--criu",
        old.to_str().unwrap(),
        "checkpoint",
        "--image-path",
        img,
        &id,
    ])
    .run()
    .fails_with(&["2.9", "too old"]);
    fx.rt(&[
        "checkpoint",
        "--manage-cgroups-mode",
        "bogus",
        "--image-path",
        img,
        &id,
    ])
    .run()
    .fails_with(&["manage-cgroups-mode"]);
    assert_eq!(fx.status(&id), "running");
    fx.kill(&id, "KILL").ok();
    fx.wait_status(&id, "stopped");
    fx.rt(&["checkpoint", "--image-path", img, &id])
        .run()
        .fails_with(&["stopped", "not running"]);
    fx.delete(&id).ok();
    fx.assert_no_residue();
}

// Issue 5 "Clear errors": restore with an ID that exists, an image dir that
// is missing, empty, not a CRIU checkpoint or another container's, or with
// a flag that only means something to checkpoint. No
// half-restored container is left in `list`.
#[test]
fn restore_errors() {
    berth_only!("berth's image checks and wording");
    let fx = Fixture::new();
    let mut b = fx.bundle();
    b.set_args(&["sleep", "300"]);
    b.save();
    let bdir = b.dir.to_str().unwrap().to_string();
    let existing = fx.id("exists");
    fx.create(&b, &existing, &[]).ok();
    let restore = |id: &str, image: &Path| {
        fx.rt(&[
            "restore",
            "-d",
            "--image-path",
            image.to_str().unwrap(),
            "--bundle",
            &bdir,
            id,
        ])
        .run()
    };
    let empty = fx.dir.join("empty");
    fs::create_dir(&empty).unwrap();
    restore(&existing, &empty).fails_with(&["already exists"]);

    let id = fx.id("restored");
    restore(&id, &fx.dir.join("missing")).fails_with(&["image path", "not a directory"]);
    restore(&id, &empty).fails_with(&["empty"]);
    let junk = fx.dir.join("junk");
    fs::create_dir(&junk).unwrap();
    fs::write(junk.join("notes.txt"), "hello").unwrap();
    restore(&id, &junk).fails_with(&["not a CRIU checkpoint"]);
    // Images of another container (berth's marker names it and its rootfs).
    let other = fx.dir.join("other");
    fs::create_dir(&other).unwrap();
    fs::write(other.join("inventory.img"), "").unwrap();
    fs::write(
        other.join("berth-checkpoint.json"),
        json!({"id": "someone-else", "rootfs": "/somewhere/else/rootfs"}).to_string(),
    )
    .unwrap();
    restore(&id, &other).fails_with(&["someone-else", "checkpoint of container"]);
    // Checkpoint-only flags, which go-runc can put on restore's argv (contract
    // quirk 2), are refused by name rather than ignored.
    let checkpoint_only: [&[&str]; 4] = [
        &["--page-server", "127.0.0.1:27000"],
        &["--status-fd", "3"],
        &["--pre-dump"],
        &["--leave-running"],
    ];
    for flag in checkpoint_only {
        let mut args = vec!["restore", "-d", "--image-path", other.to_str().unwrap()];
        args.extend_from_slice(flag);
        args.extend(["--bundle", &bdir, &id]);
        fx.rt(&args)
            .run()
            .fails_with(&[flag[0], "only apply to checkpoint"]);
    }

    let list = fx.rt(&["list", "-q"]).run().ok();
    assert_eq!(
        list.stdout.trim(),
        existing,
        "only the created container is listed"
    );
    assert!(!fx.root.join(&id).exists());
    fx.delete(&existing).ok();
    fx.assert_no_residue();
}
