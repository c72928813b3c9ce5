//! The conformance-suite harness: a shared busybox rootfs, per-test bundles
//! and state roots, a way to drive the runtime's CLI with a timeout, and the
//! "no residue" checks every test ends with.
//!
//! The runtime under test is `$BERTH_BIN` (default: the crate's `berth`
//! binary), so the same suite can be pointed at Debian's runc to prove each
//! test is right before berth exists: `BERTH_BIN=/usr/sbin/runc cargo test
//! --test spec-tests`.

use std::collections::BTreeSet;
use std::fs;
use std::io::{Read, Write};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::{json, Value};

/// How long one runtime command may take before the test fails as hung.
pub const COMMAND_TIMEOUT: Duration = Duration::from_secs(30);

/// Every container a test creates has an ID with this prefix, so leftovers
/// from a crashed run are easy to recognise (and to clean by hand).
pub const ID_PREFIX: &str = "spec-test-";

/// The env var placed in every container's `process.env`; scanning
/// /proc/*/environ for its value finds any process a test's containers left.
pub const MARKER_VAR: &str = "SPEC_TEST_MARKER";

// ---------------------------------------------------------------------------
// Which runtime is under test
// ---------------------------------------------------------------------------

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Runtime {
    Berth,
    Runc,
    Crun,
    Other,
}

pub fn runtime_bin() -> PathBuf {
    match std::env::var_os("BERTH_BIN") {
        Some(bin) if !bin.is_empty() => PathBuf::from(bin),
        _ => PathBuf::from(env!("CARGO_BIN_EXE_berth")),
    }
}

/// berth prints `runc version ...` like runc (go-runc parses it), so the
/// binary's file name is what tells the runtimes apart.
pub fn runtime() -> Runtime {
    static KIND: OnceLock<Runtime> = OnceLock::new();
    *KIND.get_or_init(|| {
        if std::env::var_os("BERTH_BIN").is_none_or(|b| b.is_empty()) {
            return Runtime::Berth;
        }
        let bin = runtime_bin();
        let name = bin.file_name().map(|n| n.to_string_lossy().into_owned());
        match name.as_deref() {
            Some(n) if n.starts_with("berth") => Runtime::Berth,
            Some(n) if n.starts_with("runc") => Runtime::Runc,
            Some(n) if n.starts_with("crun") => Runtime::Crun,
            _ => Runtime::Other,
        }
    })
}

pub fn is_berth() -> bool {
    runtime() == Runtime::Berth
}

fn current_test_name() -> String {
    std::thread::current()
        .name()
        .unwrap_or("unknown")
        .rsplit("::")
        .next()
        .unwrap_or("unknown")
        .to_string()
}

/// For tests of behaviour the spec or the brief asks of berth that the
/// reference runtime (Debian's runc 1.1.5) does not have: returns true, after
/// printing why, when the test must be skipped.
pub fn skip_berth_only(reason: &str) -> bool {
    if is_berth() {
        return false;
    }
    eprintln!(
        "SKIP {} (berth-only: {reason}; runtime under test is {})",
        current_test_name(),
        runtime_bin().display()
    );
    true
}

/// Error-text needles that are berth's own wording: runc's messages differ
/// (its exit status is still checked), so they only apply to berth.
pub fn berth_words<'a>(needles: &'a [&'a str]) -> &'a [&'a str] {
    if is_berth() {
        needles
    } else {
        &[]
    }
}

/// `berth_only!("why runc fails this");` at the top of a test.
#[macro_export]
macro_rules! berth_only {
    ($reason:expr) => {
        if $crate::harness::skip_berth_only($reason) {
            return;
        }
    };
}

// ---------------------------------------------------------------------------
// The shared base rootfs
// ---------------------------------------------------------------------------

fn repo_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn target_dir() -> PathBuf {
    // CARGO_TARGET_TMPDIR is <target>/tmp.
    Path::new(env!("CARGO_TARGET_TMPDIR"))
        .parent()
        .expect("CARGO_TARGET_TMPDIR has a parent")
        .to_path_buf()
}

/// Where per-test directories live; overridable because unix socket paths
/// (the console socket) must stay under 108 bytes.
fn tests_tmp_dir() -> PathBuf {
    match std::env::var_os("SPEC_TESTS_TMPDIR") {
        Some(d) if !d.is_empty() => PathBuf::from(d),
        _ => Path::new(env!("CARGO_TARGET_TMPDIR")).join("spec-tests"),
    }
}

/// The busybox rootfs, built once per test run by bundles/make-rootfs. A file
/// lock serialises builders across concurrently running test binaries.
pub fn base_rootfs() -> &'static Path {
    static BASE: OnceLock<PathBuf> = OnceLock::new();
    BASE.get_or_init(|| {
        let dest = target_dir().join("spec-tests-rootfs");
        let lock_path = target_dir().join("spec-tests-rootfs.lock");
        let lock_file = fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .unwrap_or_else(|e| panic!("open {}: {e}", lock_path.display()));
        let _lock = nix::fcntl::Flock::lock(lock_file, nix::fcntl::FlockArg::LockExclusive)
            .unwrap_or_else(|(_, e)| panic!("flock {}: {e}", lock_path.display()));
        let script = repo_dir().join("bundles/make-rootfs");
        let out = Command::new(&script)
            .arg(&dest)
            .output()
            .unwrap_or_else(|e| panic!("run {}: {e}", script.display()));
        assert!(
            out.status.success(),
            "{} {} failed: {}",
            script.display(),
            dest.display(),
            String::from_utf8_lossy(&out.stderr)
        );
        dest
    })
}

/// Copy the base rootfs: directories and small files are copied, symlinks
/// recreated, and the (large, never written) busybox binary hard-linked.
fn copy_rootfs(src: &Path, dst: &Path) {
    let meta = fs::symlink_metadata(src).unwrap_or_else(|e| panic!("stat {}: {e}", src.display()));
    let ft = meta.file_type();
    if ft.is_symlink() {
        let target = fs::read_link(src).unwrap();
        std::os::unix::fs::symlink(target, dst)
            .unwrap_or_else(|e| panic!("symlink {}: {e}", dst.display()));
    } else if ft.is_dir() {
        fs::create_dir(dst).unwrap_or_else(|e| panic!("mkdir {}: {e}", dst.display()));
        for entry in fs::read_dir(src).unwrap() {
            let entry = entry.unwrap();
            copy_rootfs(&entry.path(), &dst.join(entry.file_name()));
        }
        fs::set_permissions(dst, fs::Permissions::from_mode(meta.mode() & 0o7777)).unwrap();
        std::os::unix::fs::lchown(dst, Some(meta.uid()), Some(meta.gid())).unwrap();
    } else if src.file_name().is_some_and(|n| n == "busybox") {
        fs::hard_link(src, dst).unwrap_or_else(|e| panic!("link {}: {e}", dst.display()));
    } else {
        fs::copy(src, dst).unwrap_or_else(|e| panic!("copy {}: {e}", dst.display()));
        std::os::unix::fs::lchown(dst, Some(meta.uid()), Some(meta.gid())).unwrap();
    }
}

// ---------------------------------------------------------------------------
// Running commands
// ---------------------------------------------------------------------------

/// What a finished command left: exit code or signal, and its output.
#[derive(Debug)]
pub struct Output {
    pub argv: Vec<String>,
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
    pub stdout_path: PathBuf,
}

impl Output {
    pub fn code(&self) -> Option<i32> {
        self.status.code()
    }

    pub fn describe(&self) -> String {
        format!(
            "`{}` -> {}\n--- stdout ---\n{}\n--- stderr ---\n{}",
            self.argv.join(" "),
            self.status,
            self.stdout,
            self.stderr
        )
    }

    #[track_caller]
    pub fn ok(self) -> Self {
        assert!(self.status.success(), "command failed: {}", self.describe());
        self
    }

    /// A failed runtime command: non-zero exit and exactly one line on stderr
    /// that contains each of `needles` (case-insensitive).
    #[track_caller]
    pub fn fails_with(self, needles: &[&str]) -> Self {
        assert!(
            self.code().is_some_and(|c| c != 0),
            "expected a non-zero exit: {}",
            self.describe()
        );
        let lines: Vec<&str> = self
            .stderr
            .lines()
            .filter(|l| !l.trim().is_empty())
            .collect();
        assert_eq!(
            lines.len(),
            1,
            "expected a one-line error on stderr: {}",
            self.describe()
        );
        let lower = lines[0].to_lowercase();
        for needle in needles {
            assert!(
                lower.contains(&needle.to_lowercase()),
                "stderr should mention {needle:?}: {}",
                self.describe()
            );
        }
        self
    }

    /// The output file again (a created container keeps writing to it).
    pub fn reread_stdout(&self) -> String {
        fs::read_to_string(&self.stdout_path).unwrap_or_default()
    }
}

/// A command being built: argv, stdin, cwd, env, timeout.
pub struct Cmd {
    program: PathBuf,
    args: Vec<String>,
    cwd: Option<PathBuf>,
    env: Vec<(String, String)>,
    stdin: Option<Vec<u8>>,
    timeout: Duration,
    out_dir: PathBuf,
}

static SEQ: AtomicUsize = AtomicUsize::new(0);

fn next_seq() -> usize {
    SEQ.fetch_add(1, Ordering::Relaxed)
}

impl Cmd {
    pub fn new(program: impl Into<PathBuf>, out_dir: &Path) -> Self {
        Cmd {
            program: program.into(),
            args: Vec::new(),
            cwd: None,
            env: Vec::new(),
            stdin: None,
            timeout: COMMAND_TIMEOUT,
            out_dir: out_dir.to_path_buf(),
        }
    }

    pub fn args<S: AsRef<str>>(mut self, args: &[S]) -> Self {
        self.args
            .extend(args.iter().map(|a| a.as_ref().to_string()));
        self
    }

    pub fn cwd(mut self, dir: &Path) -> Self {
        self.cwd = Some(dir.to_path_buf());
        self
    }

    pub fn env(mut self, key: &str, value: &str) -> Self {
        self.env.push((key.into(), value.into()));
        self
    }

    pub fn stdin(mut self, data: &[u8]) -> Self {
        self.stdin = Some(data.to_vec());
        self
    }

    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Start the command. stdout/stderr go to files, not pipes: a container
    /// inherits the runtime's stdio and would hold a pipe open long after
    /// `create` returned.
    pub fn spawn(self) -> Running {
        let n = next_seq();
        let stdout_path = self.out_dir.join(format!("cmd{n}.out"));
        let stderr_path = self.out_dir.join(format!("cmd{n}.err"));
        let stdout = fs::File::create(&stdout_path).expect("create stdout file");
        let stderr = fs::File::create(&stderr_path).expect("create stderr file");
        let mut cmd = Command::new(&self.program);
        cmd.args(&self.args).stdout(stdout).stderr(stderr);
        cmd.env_remove("NOTIFY_SOCKET");
        for (k, v) in &self.env {
            cmd.env(k, v);
        }
        if let Some(dir) = &self.cwd {
            cmd.current_dir(dir);
        }
        cmd.stdin(if self.stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        });
        let mut child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("spawn {}: {e}", self.program.display()));
        if let Some(data) = &self.stdin {
            let mut pipe = child.stdin.take().unwrap();
            // A runtime that never reads stdin must not block us.
            let data = data.clone();
            std::thread::spawn(move || {
                let _ = pipe.write_all(&data);
            });
        }
        let mut argv = vec![self.program.display().to_string()];
        argv.extend(self.args.iter().cloned());
        Running {
            child,
            argv,
            stdout_path,
            stderr_path,
            deadline: Instant::now() + self.timeout,
        }
    }

    pub fn run(self) -> Output {
        self.spawn().wait()
    }
}

/// A command still running (e.g. a foreground `run`).
pub struct Running {
    child: Child,
    argv: Vec<String>,
    stdout_path: PathBuf,
    stderr_path: PathBuf,
    deadline: Instant,
}

impl Running {
    pub fn try_wait(&mut self) -> Option<ExitStatus> {
        self.child.try_wait().expect("try_wait")
    }

    /// Wait for the command; past its deadline, kill it and fail the test.
    #[track_caller]
    pub fn wait(mut self) -> Output {
        loop {
            if let Some(status) = self.try_wait() {
                return Output {
                    stdout: fs::read_to_string(&self.stdout_path).unwrap_or_default(),
                    stderr: fs::read_to_string(&self.stderr_path).unwrap_or_default(),
                    argv: std::mem::take(&mut self.argv),
                    status,
                    stdout_path: std::mem::take(&mut self.stdout_path),
                };
            }
            if Instant::now() > self.deadline {
                let _ = self.child.kill();
                let _ = self.child.wait();
                panic!(
                    "command timed out (hang): `{}`\n--- stdout ---\n{}\n--- stderr ---\n{}",
                    self.argv.join(" "),
                    fs::read_to_string(&self.stdout_path).unwrap_or_default(),
                    fs::read_to_string(&self.stderr_path).unwrap_or_default()
                );
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        // Only reached un-waited when a test panicked: don't leave the child.
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Poll `cond` until it holds or `timeout` passes.
pub fn wait_until(timeout: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if cond() {
            return true;
        }
        if Instant::now() > deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

// ---------------------------------------------------------------------------
// Bundles
// ---------------------------------------------------------------------------

/// A bundle directory: `config.json` (edited as JSON) plus `rootfs/`.
pub struct Bundle {
    pub dir: PathBuf,
    pub config: Value,
}

impl Bundle {
    pub fn rootfs(&self) -> PathBuf {
        self.dir.join("rootfs")
    }

    pub fn config_path(&self) -> PathBuf {
        self.dir.join("config.json")
    }

    pub fn save(&self) {
        let text = serde_json::to_string_pretty(&self.config).unwrap();
        fs::write(self.config_path(), text).unwrap();
    }

    pub fn process(&mut self) -> &mut Value {
        &mut self.config["process"]
    }

    pub fn linux(&mut self) -> &mut Value {
        if self.config.get("linux").is_none() {
            self.config["linux"] = json!({});
        }
        &mut self.config["linux"]
    }

    pub fn set_args(&mut self, args: &[&str]) {
        self.config["process"]["args"] = json!(args);
    }

    /// Run `script` with /bin/sh -c.
    pub fn set_sh(&mut self, script: &str) {
        self.set_args(&["sh", "-c", script]);
    }

    pub fn set_readonly(&mut self, readonly: bool) {
        self.config["root"]["readonly"] = json!(readonly);
    }

    pub fn namespaces(&mut self) -> &mut Vec<Value> {
        let linux = self.linux();
        if linux.get("namespaces").is_none() {
            linux["namespaces"] = json!([]);
        }
        linux["namespaces"].as_array_mut().unwrap()
    }

    pub fn remove_namespace(&mut self, kind: &str) {
        self.namespaces().retain(|n| n["type"] != kind);
    }

    /// Add (or replace) a namespace entry.
    pub fn set_namespace(&mut self, kind: &str, path: Option<&str>) {
        self.remove_namespace(kind);
        let entry = match path {
            Some(p) => json!({"type": kind, "path": p}),
            None => json!({"type": kind}),
        };
        self.namespaces().push(entry);
    }

    pub fn add_mount(&mut self, mount: Value) {
        self.config["mounts"].as_array_mut().unwrap().push(mount);
    }

    pub fn add_env(&mut self, entry: &str) {
        self.config["process"]["env"]
            .as_array_mut()
            .unwrap()
            .push(json!(entry));
    }

    /// Write a file into the rootfs (parent dirs created).
    pub fn write_rootfs_file(&self, path: &str, contents: &str) {
        let p = self.rootfs().join(path.trim_start_matches('/'));
        fs::create_dir_all(p.parent().unwrap()).unwrap();
        fs::write(&p, contents).unwrap();
    }

    pub fn mkdir_rootfs(&self, path: &str) {
        fs::create_dir_all(self.rootfs().join(path.trim_start_matches('/'))).unwrap();
    }
}

// ---------------------------------------------------------------------------
// The per-test fixture
// ---------------------------------------------------------------------------

/// One test's world: a temp dir holding its `--root` state dir and bundles,
/// the container IDs it made, and what it must find gone at the end.
/// Dropping it (also on panic) force-deletes the containers, undoes the test's
/// own host mounts and removes the temp dir.
pub struct Fixture {
    pub dir: PathBuf,
    pub root: PathBuf,
    marker: String,
    ids: Mutex<Vec<String>>,
    host_mounts: Mutex<Vec<PathBuf>>,
    /// cgroup directories seen for the test's container processes.
    cgroup_dirs: Mutex<BTreeSet<PathBuf>>,
    bundles: AtomicUsize,
    /// A short directory for unix sockets, made on first use.
    sock_dir: PathBuf,
}

impl Default for Fixture {
    fn default() -> Self {
        Self::new()
    }
}

impl Fixture {
    pub fn new() -> Self {
        sweep_dead_runs();
        let name = current_test_name();
        let n = next_seq();
        let short: String = name
            .chars()
            .filter(|c| c.is_ascii_alphanumeric())
            .take(20)
            .collect();
        let dir = tests_tmp_dir().join(format!("{}-{n}-{short}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("mkdir {}: {e}", dir.display()));
        let root = dir.join("state");
        fs::create_dir(&root).unwrap();
        Fixture {
            marker: format!("{}-{n}-{short}", std::process::id()),
            dir,
            root,
            ids: Mutex::new(Vec::new()),
            host_mounts: Mutex::new(Vec::new()),
            cgroup_dirs: Mutex::new(BTreeSet::new()),
            bundles: AtomicUsize::new(0),
            sock_dir: std::env::temp_dir().join(format!("berth-sock-{}-{n}", std::process::id())),
        }
    }

    /// A path for a unix socket the test listens on. sun_path holds 108
    /// bytes and the test directory lives under the checkout, whose path
    /// can be any length, so sockets go in a short directory of their own.
    pub fn socket_path(&self, name: &str) -> PathBuf {
        fs::create_dir_all(&self.sock_dir)
            .unwrap_or_else(|e| panic!("mkdir {}: {e}", self.sock_dir.display()));
        self.sock_dir.join(name)
    }

    /// A new container ID for this test (unique on the host: cgroup paths
    /// derive from it), registered for cleanup.
    pub fn id(&self, what: &str) -> String {
        let id = format!("{ID_PREFIX}{}-{}-{what}", std::process::id(), next_seq());
        self.ids
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(id.clone());
        id
    }

    /// A fresh bundle: a copy of the base rootfs and the runtime's own
    /// default config (`<runtime> spec`), with terminal off and the residue
    /// marker in its env.
    pub fn bundle(&self) -> Bundle {
        let n = self.bundles.fetch_add(1, Ordering::Relaxed);
        let dir = self.dir.join(format!("bundle{n}"));
        fs::create_dir(&dir).unwrap();
        copy_rootfs(base_rootfs(), &dir.join("rootfs"));
        self.rt_plain(&["spec"]).cwd(&dir).run().ok();
        let text = fs::read_to_string(dir.join("config.json")).expect("`spec` wrote config.json");
        let mut config: Value = serde_json::from_str(&text).expect("`spec` output is JSON");
        config["process"]["terminal"] = json!(false);
        let mut bundle = Bundle { dir, config };
        bundle.add_env(&self.marker_env());
        bundle
    }

    /// The runtime with this test's `--root`.
    pub fn rt(&self, args: &[&str]) -> Cmd {
        Cmd::new(runtime_bin(), &self.dir)
            .args(&["--root", self.root.to_str().unwrap()])
            .args(args)
    }

    /// The runtime without global flags.
    pub fn rt_plain(&self, args: &[&str]) -> Cmd {
        Cmd::new(runtime_bin(), &self.dir).args(args)
    }

    /// `create --bundle B ID` (config saved first).
    pub fn create(&self, bundle: &Bundle, id: &str, extra: &[&str]) -> Output {
        bundle.save();
        let b = bundle.dir.to_str().unwrap();
        let mut args = vec!["create", "--bundle", b];
        args.extend_from_slice(extra);
        args.push(id);
        let out = self.rt(&args).run();
        if out.status.success() {
            self.note_container(id);
        }
        out
    }

    /// `run --bundle B ID` in the foreground.
    pub fn run(&self, bundle: &Bundle, id: &str, extra: &[&str]) -> Output {
        bundle.save();
        let b = bundle.dir.to_str().unwrap();
        let mut args = vec!["run", "--bundle", b];
        args.extend_from_slice(extra);
        args.push(id);
        self.rt(&args).run()
    }

    /// Run the bundle's process to completion and return its stdout, after
    /// checking it exited 0 and was deleted without residue.
    #[track_caller]
    pub fn run_ok(&self, bundle: &Bundle) -> String {
        let id = self.id("run");
        let out = self.run(bundle, &id, &[]).ok();
        self.assert_no_residue();
        out.stdout
    }

    /// Set the process to `sh -c script`, run it, return stdout.
    #[track_caller]
    pub fn run_sh(&self, bundle: &mut Bundle, script: &str) -> String {
        bundle.set_sh(script);
        self.run_ok(bundle)
    }

    pub fn start(&self, id: &str) -> Output {
        self.rt(&["start", id]).run()
    }

    pub fn kill(&self, id: &str, signal: &str) -> Output {
        self.rt(&["kill", id, signal]).run()
    }

    pub fn delete(&self, id: &str) -> Output {
        self.rt(&["delete", id]).run()
    }

    /// `state ID`, parsed (and the pid noted for the residue checks).
    #[track_caller]
    pub fn state(&self, id: &str) -> Value {
        let out = self.rt(&["state", id]).run().ok();
        let state: Value = serde_json::from_str(&out.stdout)
            .unwrap_or_else(|e| panic!("state output is not JSON ({e}): {}", out.stdout));
        if let Some(pid) = state["pid"].as_i64().filter(|p| *p > 0) {
            self.note_pid(pid as i32);
        }
        state
    }

    pub fn status(&self, id: &str) -> String {
        self.state(id)["status"].as_str().unwrap_or("").to_string()
    }

    #[track_caller]
    pub fn wait_status(&self, id: &str, want: &str) {
        let mut last = String::new();
        let reached = wait_until(Duration::from_secs(10), || {
            last = self.status(id);
            last == want
        });
        assert!(reached, "{id}: status stayed {last:?}, expected {want:?}");
    }

    /// The container init's pid, from `state`.
    #[track_caller]
    pub fn pid(&self, id: &str) -> i32 {
        let pid = self.state(id)["pid"].as_i64().unwrap_or(0) as i32;
        assert!(pid > 0, "{id}: state has no pid");
        pid
    }

    pub fn note_container(&self, id: &str) {
        let out = self.rt(&["state", id]).run();
        if let Ok(state) = serde_json::from_str::<Value>(&out.stdout) {
            if let Some(pid) = state["pid"].as_i64().filter(|p| *p > 0) {
                self.note_pid(pid as i32);
            }
        }
    }

    /// Remember the cgroup directories of a container process so the residue
    /// check can insist they are removed.
    pub fn note_pid(&self, pid: i32) {
        let dirs = cgroup_dirs_of(pid);
        self.cgroup_dirs
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .extend(dirs);
    }

    /// Mount something on the host for this test; undone on drop.
    pub fn host_mount(&self, args: &[&str], target: &Path) {
        let out = Cmd::new("mount", &self.dir)
            .args(args)
            .arg_path(target)
            .run();
        assert!(
            out.status.success(),
            "host mount failed: {}",
            out.describe()
        );
        self.host_mounts
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(target.to_path_buf());
    }

    pub fn host_umount(&self, target: &Path) {
        let mut mounts = self.host_mounts.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(i) = mounts.iter().rposition(|m| m == target) {
            mounts.remove(i);
            drop(mounts);
            // Lazy: a concurrently created container of another test may hold a
            // propagated copy of a shared mount, which makes a plain umount EBUSY.
            let out = Cmd::new("umount", &self.dir)
                .args(&["-l"])
                .arg_path(target)
                .run();
            assert!(out.status.success(), "umount failed: {}", out.describe());
        }
    }

    /// The `KEY=value` entry that marks this test's processes; hooks get it
    /// too so that a hook left running counts as residue.
    pub fn marker_env(&self) -> String {
        format!("{MARKER_VAR}={}", self.marker)
    }

    /// Processes still carrying this test's marker in their environment.
    pub fn marked_processes(&self) -> Vec<i32> {
        processes_with_env(&self.marker_env())
    }

    /// The residue checks of the brief: for every container ID of this test
    /// no state dir, no cgroup dir, no process, and no mount referencing the
    /// test's directory. Call after the test deleted its containers.
    #[track_caller]
    pub fn assert_no_residue(&self) {
        let ids = self.ids.lock().unwrap_or_else(|e| e.into_inner()).clone();
        // Processes get a moment: a killed init is reaped asynchronously.
        let mut procs = Vec::new();
        wait_until(Duration::from_secs(5), || {
            procs = self.marked_processes();
            procs.is_empty()
        });
        assert!(procs.is_empty(), "container processes left: {procs:?}");
        for id in &ids {
            let state_dir = self.root.join(id);
            assert!(
                !state_dir.exists(),
                "state dir left: {}",
                state_dir.display()
            );
        }
        let noted: Vec<PathBuf> = self
            .cgroup_dirs
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .cloned()
            .collect();
        let mut left: Vec<PathBuf> = noted.into_iter().filter(|d| d.exists()).collect();
        for id in &ids {
            left.extend(cgroup_dirs_named(id));
        }
        assert!(left.is_empty(), "cgroup dirs left: {left:?}");
        let own: BTreeSet<PathBuf> = self
            .host_mounts
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .cloned()
            .collect();
        let mounts: Vec<String> = mounts_under(&self.dir)
            .into_iter()
            .filter(|(point, _)| !own.contains(Path::new(point)))
            .map(|(_, line)| line)
            .collect();
        assert!(
            mounts.is_empty(),
            "mounts left referencing {}: {mounts:#?}",
            self.dir.display()
        );
    }

    /// Runs during unwinding too, so it must never panic (a second panic
    /// aborts the whole test binary and every other test's cleanup with it).
    fn cleanup(&self) {
        let _ = fs::remove_dir_all(&self.sock_dir);
        let ids = self.ids.lock().unwrap_or_else(|e| e.into_inner()).clone();
        for id in &ids {
            if self.root.join(id).exists() {
                run_quietly(&self.root, &["kill", id, "9"]);
                run_quietly(&self.root, &["delete", "--force", id]);
            }
        }
        for pid in self.marked_processes() {
            let _ =
                nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), nix::sys::signal::SIGKILL);
        }
        let mounts: Vec<PathBuf> = self
            .host_mounts
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .drain(..)
            .rev()
            .collect();
        for m in mounts {
            let _ = nix::mount::umount2(&m, nix::mount::MntFlags::MNT_DETACH);
        }
        // Whatever a broken runtime left mounted under our dir must not keep
        // the machine dirty either.
        let mut left = mounts_under(&self.dir);
        left.reverse();
        for (point, _) in left {
            let _ = nix::mount::umount2(Path::new(&point), nix::mount::MntFlags::MNT_DETACH);
        }
        let noted: Vec<PathBuf> = self
            .cgroup_dirs
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .cloned()
            .collect();
        for d in noted.into_iter().rev() {
            let _ = fs::remove_dir(d);
        }
        for id in &ids {
            for d in cgroup_dirs_named(id).into_iter().rev() {
                let _ = fs::remove_dir(d);
            }
        }
        let _ = fs::remove_dir_all(&self.dir);
    }
}

/// The runtime with `--root root`, no output kept, killed after 10 s; never
/// panics (for cleanup paths).
fn run_quietly(root: &Path, args: &[&str]) {
    let Ok(mut child) = Command::new(runtime_bin())
        .arg("--root")
        .arg(root)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
    else {
        return;
    };
    let deadline = Instant::now() + Duration::from_secs(10);
    while let Ok(None) = child.try_wait() {
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            return;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// What a test binary that died without unwinding (SIGKILL, an abort, a
/// timeout of the CI job) left: its per-test dirs are named `<pid>-...` and
/// its container IDs `spec-test-<pid>-...`. Everything of a pid that no
/// longer runs is deleted, unmounted and removed, once per test binary.
fn sweep_dead_runs() {
    static ONCE: OnceLock<()> = OnceLock::new();
    ONCE.get_or_init(|| {
        let dead = |name: &str| {
            name.split('-')
                .next()
                .and_then(|p| p.parse::<u32>().ok())
                .is_some_and(|pid| !Path::new(&format!("/proc/{pid}")).exists())
        };
        let Ok(entries) = fs::read_dir(tests_tmp_dir()) else {
            return;
        };
        let mut dead_pids = BTreeSet::new();
        for e in entries.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if !dead(&name) {
                continue;
            }
            dead_pids.insert(name.split('-').next().unwrap_or("").to_string());
            let dir = e.path();
            let root = dir.join("state");
            if let Ok(ids) = fs::read_dir(&root) {
                for id in ids.flatten() {
                    run_quietly(
                        &root,
                        &["delete", "--force", &id.file_name().to_string_lossy()],
                    );
                }
            }
            let mut left = mounts_under(&dir);
            left.reverse();
            for (point, _) in left {
                let _ = nix::mount::umount2(Path::new(&point), nix::mount::MntFlags::MNT_DETACH);
            }
            let _ = fs::remove_dir_all(&dir);
        }
        for pid in dead_pids {
            for d in cgroup_dirs_named(&format!("{ID_PREFIX}{pid}-"))
                .into_iter()
                .rev()
            {
                if let Ok(procs) = fs::read_to_string(d.join("cgroup.procs")) {
                    for p in procs.lines().filter_map(|l| l.parse::<i32>().ok()) {
                        let _ = nix::sys::signal::kill(
                            nix::unistd::Pid::from_raw(p),
                            nix::sys::signal::SIGKILL,
                        );
                    }
                }
                let _ = fs::remove_dir(d);
            }
        }
    });
}

impl Drop for Fixture {
    fn drop(&mut self) {
        self.cleanup();
    }
}

impl Cmd {
    pub fn arg_path(mut self, p: &Path) -> Self {
        self.args.push(p.to_str().unwrap().to_string());
        self
    }
}

impl Running {
    /// The runtime process's pid (to signal a foreground command).
    pub fn pid(&self) -> i32 {
        self.child.id() as i32
    }
}

// ---------------------------------------------------------------------------
// Host inspection
// ---------------------------------------------------------------------------

/// One line of /proc/self/mountinfo: (mount point, fstype, whole line).
pub fn mountinfo(path: &str) -> Vec<(String, String, String)> {
    let text = fs::read_to_string(path).unwrap_or_default();
    text.lines()
        .filter_map(|line| {
            let fields: Vec<&str> = line.split(' ').collect();
            let sep = fields.iter().position(|f| *f == "-")?;
            Some((
                unescape_mountinfo(fields.get(4)?),
                fields.get(sep + 1)?.to_string(),
                line.to_string(),
            ))
        })
        .collect()
}

pub fn unescape_mountinfo(s: &str) -> String {
    s.replace("\\040", " ")
        .replace("\\011", "\t")
        .replace("\\012", "\n")
        .replace("\\134", "\\")
}

/// Host mounts whose mount point or source root lies under `dir`.
fn mounts_under(dir: &Path) -> Vec<(String, String)> {
    let d = dir.to_str().unwrap();
    mountinfo("/proc/self/mountinfo")
        .into_iter()
        .filter(|(_, _, line)| line.contains(d))
        .map(|(point, _, line)| (point, line))
        .collect()
}

/// The host's cgroup hierarchies: (mount point, fstype, controllers).
pub fn cgroup_mounts() -> Vec<(PathBuf, String, Vec<String>)> {
    mountinfo("/proc/self/mountinfo")
        .into_iter()
        .filter(|(_, fstype, _)| fstype == "cgroup" || fstype == "cgroup2")
        .map(|(point, fstype, line)| {
            let super_opts = line.rsplit(' ').next().unwrap_or("");
            let ctrls = if fstype == "cgroup2" {
                Vec::new()
            } else {
                super_opts
                    .split(',')
                    .filter(|o| {
                        !matches!(
                            *o,
                            "rw" | "ro" | "relatime" | "noatime" | "nosuid" | "nodev" | "noexec"
                        ) && !o.starts_with("release_agent")
                            && *o != "clone_children"
                            && *o != "xattr"
                            && *o != "noprefix"
                            && *o != "cpuset_v2_mode"
                    })
                    .map(str::to_string)
                    .collect()
            };
            (PathBuf::from(point), fstype, ctrls)
        })
        .collect()
}

/// Pure cgroup v2: /sys/fs/cgroup itself is the unified hierarchy.
pub fn is_cgroup2_only() -> bool {
    nix::sys::statfs::statfs("/sys/fs/cgroup")
        .map(|s| s.filesystem_type() == nix::sys::statfs::CGROUP2_SUPER_MAGIC)
        .unwrap_or(false)
}

/// /proc/PID/cgroup: (hierarchy id, controllers, path).
pub fn proc_cgroups(pid: i32) -> Vec<(String, Vec<String>, String)> {
    let text = fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap_or_default();
    text.lines()
        .filter_map(|l| {
            let mut parts = l.splitn(3, ':');
            let hid = parts.next()?.to_string();
            let ctrls = parts.next()?;
            let path = parts.next()?.to_string();
            let ctrls = if ctrls.is_empty() {
                Vec::new()
            } else {
                ctrls.split(',').map(str::to_string).collect()
            };
            Some((hid, ctrls, path))
        })
        .collect()
}

/// The host directory of each hierarchy a process is in.
pub fn cgroup_dirs_of(pid: i32) -> Vec<PathBuf> {
    let mounts = cgroup_mounts();
    let mut dirs = Vec::new();
    for (hid, ctrls, path) in proc_cgroups(pid) {
        if path == "/" {
            continue; // never the container's own cgroup
        }
        let mount = if hid == "0" {
            mounts.iter().find(|(_, t, _)| t == "cgroup2")
        } else {
            mounts
                .iter()
                .find(|(_, t, c)| t == "cgroup" && ctrls.iter().all(|x| c.contains(x)))
        };
        if let Some((point, _, _)) = mount {
            dirs.push(point.join(path.trim_start_matches('/')));
        }
    }
    dirs
}

/// Any cgroup directory, in any hierarchy, whose name contains `id`.
pub fn cgroup_dirs_named(id: &str) -> Vec<PathBuf> {
    fn walk(dir: &Path, id: &str, depth: usize, found: &mut Vec<PathBuf>) {
        let Ok(entries) = fs::read_dir(dir) else {
            return;
        };
        for entry in entries.flatten() {
            if !entry.file_type().is_ok_and(|t| t.is_dir()) {
                continue;
            }
            let path = entry.path();
            if entry.file_name().to_string_lossy().contains(id) {
                found.push(path.clone());
            }
            if depth < 8 {
                walk(&path, id, depth + 1, found);
            }
        }
    }
    let mut found = Vec::new();
    for (point, _, _) in cgroup_mounts() {
        walk(&point, id, 0, &mut found);
    }
    found
}

/// Pids whose environment contains the exact `KEY=value` entry.
pub fn processes_with_env(entry: &str) -> Vec<i32> {
    let me = std::process::id() as i32;
    let mut pids = Vec::new();
    let Ok(dir) = fs::read_dir("/proc") else {
        return pids;
    };
    for e in dir.flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        if pid == me {
            continue;
        }
        let mut buf = Vec::new();
        if fs::File::open(format!("/proc/{pid}/environ"))
            .and_then(|mut f| f.read_to_end(&mut buf))
            .is_err()
        {
            continue;
        }
        if buf.split(|b| *b == 0).any(|v| v == entry.as_bytes()) {
            pids.push(pid);
        }
    }
    pids
}

/// Readlink of /proc/PID/ns/KIND, e.g. "net:[4026531840]".
pub fn ns_of(pid: &str, kind: &str) -> String {
    fs::read_link(format!("/proc/{pid}/ns/{kind}"))
        .map(|p| p.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// /proc/PID/cmdline as argv.
pub fn cmdline(pid: i32) -> Vec<String> {
    let raw = fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
    raw.split(|b| *b == 0)
        .filter(|s| !s.is_empty())
        .map(|s| String::from_utf8_lossy(s).into_owned())
        .collect()
}

// ---------------------------------------------------------------------------
// Small parsers
// ---------------------------------------------------------------------------

/// Parse an RFC 3339 timestamp to seconds since the epoch.
pub fn parse_rfc3339(s: &str) -> Option<f64> {
    let b = s.as_bytes();
    if b.len() < 20
        || b[4] != b'-'
        || b[7] != b'-'
        || !(b[10] == b'T' || b[10] == b't')
        || b[13] != b':'
        || b[16] != b':'
    {
        return None;
    }
    let num = |r: std::ops::Range<usize>| -> Option<i64> {
        let t = s.get(r)?;
        if !t.bytes().all(|c| c.is_ascii_digit()) {
            return None;
        }
        t.parse().ok()
    };
    let (y, mo, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (h, mi, sec) = (num(11..13)?, num(14..16)?, num(17..19)?);
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) || h > 23 || mi > 59 || sec > 60 {
        return None;
    }
    let mut rest = &s[19..];
    let mut frac = 0.0;
    if let Some(r) = rest.strip_prefix('.') {
        let digits: String = r.chars().take_while(|c| c.is_ascii_digit()).collect();
        if digits.is_empty() {
            return None;
        }
        frac = format!("0.{digits}").parse().ok()?;
        rest = &r[digits.len()..];
    }
    let offset = match rest {
        "Z" | "z" => 0,
        _ => {
            let sign = match rest.as_bytes().first()? {
                b'+' => 1,
                b'-' => -1,
                _ => return None,
            };
            if rest.len() != 6 || rest.as_bytes()[3] != b':' {
                return None;
            }
            sign * (rest[1..3].parse::<i64>().ok()? * 3600 + rest[4..6].parse::<i64>().ok()? * 60)
        }
    };
    // Days from civil (Howard Hinnant's algorithm).
    let y2 = if mo <= 2 { y - 1 } else { y };
    let era = y2.div_euclid(400);
    let yoe = y2 - era * 400;
    let mp = (mo + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146097 + doe - 719468;
    Some((days * 86400 + h * 3600 + mi * 60 + sec - offset) as f64 + frac)
}

pub fn now_epoch() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
}

/// Lines of `key:\tvalue` files like /proc/self/status.
pub fn status_field(status: &str, key: &str) -> Option<String> {
    status.lines().find_map(|l| {
        l.strip_prefix(&format!("{key}:"))
            .map(|v| v.trim().to_string())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_parses_what_runtimes_print() {
        assert_eq!(parse_rfc3339("1970-01-01T00:00:00Z"), Some(0.0));
        assert_eq!(parse_rfc3339("2000-03-01T00:00:00Z"), Some(951868800.0));
        let t = parse_rfc3339("2026-11-23T09:37:48.425411265Z").unwrap();
        assert!((t - 1795426668.425).abs() < 0.01, "{t}");
        assert_eq!(
            parse_rfc3339("2026-11-23T10:37:48+01:00").map(|t| t as i64),
            Some(1795426668)
        );
        assert_eq!(parse_rfc3339("2026-11-23 09:37:48Z"), None);
        assert_eq!(parse_rfc3339("yesterday"), None);
    }
}
