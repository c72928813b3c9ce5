//! End-to-end tests of the rootfs setup. They need root (they are skipped otherwise): each one
//! builds a busybox bundle in a temp dir and runs prepare/enter/finish in a forked process tree:
//!
//! - "host" process: a new mount namespace whose mounts are all made shared, so that a mount
//!   leaking out of the container would show up in it (it compares its mount table before and
//!   after);
//! - "runtime" process: optionally a user namespace (identity-mapped), then new mount, pid, ipc,
//!   net (and cgroup) namespaces;
//! - "container" process: pid 1 of those, runs the test body.
//!
//! Errors come back through a pipe. Nothing is left behind: the namespaces die with the processes,
//! the temp dir and the test cgroups are removed by Drop.

use std::ffi::CString;
use std::fs;
use std::io::{Read, Write};
use std::os::fd::OwnedFd;
use std::os::unix::fs::{symlink, FileTypeExt, MetadataExt, PermissionsExt};
use std::panic::AssertUnwindSafe;
use std::path::{Path, PathBuf};

use anyhow::{bail, ensure, Context, Result};
use nix::sched::{unshare, CloneFlags};
use nix::sys::wait::{waitpid, WaitStatus};
use nix::unistd::{fork, ForkResult};
use oci_spec::runtime::Spec;
use serde_json::json;

use super::cgroup_mounts::hierarchies;
use super::mountinfo::{read_mountinfo, read_own_cgroups};
use super::{enter_rootfs, finish_rootfs, prepare_rootfs, RootfsContext};

const TMPFS_MAGIC: i64 = 0x0102_1994;
const PROC_MAGIC: i64 = 0x9fa0;
const SYSFS_MAGIC: i64 = 0x6265_6572;
const DEVPTS_MAGIC: i64 = 0x1cd1;
const MQUEUE_MAGIC: i64 = 0x1980_0202;
const CGROUP_MAGIC: i64 = 0x0027_e0eb;
const CGROUP2_MAGIC: i64 = 0x6367_7270;

fn is_root() -> bool {
    nix::unistd::geteuid().is_root()
}

macro_rules! require_root {
    () => {
        if !is_root() {
            eprintln!("skipped: needs root");
            return;
        }
    };
}

/// A bundle directory with a busybox rootfs full of traps.
struct Bundle {
    dir: PathBuf,
    rootfs: PathBuf,
}

impl Bundle {
    fn new() -> Bundle {
        let dir = nix::unistd::mkdtemp("/tmp/berth-rootfs-test-XXXXXX").expect("mkdtemp");
        let rootfs = dir.join("rootfs");
        for d in ["bin", "proc", "sys", "dev", "etc", "tmp"] {
            fs::create_dir_all(rootfs.join(d)).unwrap();
        }
        fs::set_permissions(rootfs.join("tmp"), fs::Permissions::from_mode(0o1777)).unwrap();
        fs::copy("/bin/busybox", rootfs.join("bin/busybox")).expect("copy /bin/busybox");
        symlink("busybox", rootfs.join("bin/sh")).unwrap();
        // Hostile symlinks: each must be read as if the rootfs were "/".
        symlink("/", rootfs.join("evil")).unwrap();
        symlink("../../../etc", rootfs.join("evil2")).unwrap();
        symlink("/made/by/link", rootfs.join("dangling")).unwrap();
        // Image content a tmpcopyup tmpfs must carry over.
        let app = rootfs.join("opt/app");
        fs::create_dir_all(app.join("sub/dir")).unwrap();
        fs::write(app.join("file"), "image content\n").unwrap();
        fs::set_permissions(app.join("file"), fs::Permissions::from_mode(0o640)).unwrap();
        fs::set_permissions(&app, fs::Permissions::from_mode(0o750)).unwrap();
        symlink("file", app.join("link")).unwrap();
        fs::write(dir.join("hostfile"), "from the host\n").unwrap();
        fs::create_dir(dir.join("hostdir")).unwrap();
        fs::write(dir.join("hostdir/inside"), "inside\n").unwrap();
        let rootfs = rootfs.canonicalize().unwrap();
        Bundle { dir, rootfs }
    }
}

impl Drop for Bundle {
    fn drop(&mut self) {
        // Never recurse into something that is still mounted.
        let table = fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
        if table.contains(self.dir.to_str().unwrap()) {
            eprintln!(
                "leaving {} behind: something is mounted in it",
                self.dir.display()
            );
            return;
        }
        let _ = fs::remove_dir_all(&self.dir);
    }
}

/// A child cgroup of ours in every hierarchy, for the container to live in.
struct TestCgroup {
    dirs: Vec<PathBuf>,
}

impl TestCgroup {
    fn new(name: &str) -> Result<TestCgroup> {
        let mounts = read_mountinfo()?;
        let own = read_own_cgroups()?;
        let mut dirs = Vec::new();
        for h in hierarchies(&mounts, &own) {
            let parent = h.own_dir()?;
            let dir = parent.join(name);
            fs::create_dir(&dir).with_context(|| format!("mkdir {}", dir.display()))?;
            // A new v1 cpuset has no cpus nor mems: nothing could join it.
            for file in ["cpuset.cpus", "cpuset.mems"] {
                if let Ok(v) = fs::read_to_string(parent.join(file)) {
                    fs::write(dir.join(file), v.trim())?;
                }
            }
            dirs.push(dir);
        }
        Ok(TestCgroup { dirs })
    }

    fn join(&self) -> Result<()> {
        for dir in &self.dirs {
            fs::write(dir.join("cgroup.procs"), "0")
                .with_context(|| format!("joining {}", dir.display()))?;
        }
        Ok(())
    }
}

impl Drop for TestCgroup {
    fn drop(&mut self) {
        for dir in &self.dirs {
            if let Err(e) = fs::remove_dir(dir) {
                eprintln!("cannot remove test cgroup {}: {e}", dir.display());
            }
        }
    }
}

struct Run<'a> {
    bundle: &'a Bundle,
    /// The rootfs path the runtime passes (the bundle's, unless a test wants another spelling).
    rootfs: Option<PathBuf>,
    spec: Spec,
    userns: bool,
    cgroupns: bool,
    cgroup: Option<&'a TestCgroup>,
}

type Body<'a> = &'a dyn Fn(&RootfsContext) -> Result<()>;

/// Run `body` as the container process (see the module doc); Err carries its failure.
fn run_in_container(run: &Run, body: Body) -> Result<(), String> {
    let (rd, wr) = nix::unistd::pipe().unwrap();
    // SAFETY: the child only runs the test body and leaves with _exit.
    match unsafe { fork() }.unwrap() {
        ForkResult::Child => {
            drop(rd);
            let outcome = std::panic::catch_unwind(AssertUnwindSafe(|| host_side(run, body, &wr)));
            finish_child(&wr, outcome)
        }
        ForkResult::Parent { child } => {
            drop(wr);
            let mut report = String::new();
            let _ = fs::File::from(rd).read_to_string(&mut report);
            let status = waitpid(child, None).unwrap();
            if status == WaitStatus::Exited(child, 0) && report.is_empty() {
                Ok(())
            } else {
                Err(format!("{status:?}: {report}"))
            }
        }
    }
}

fn finish_child(report: &OwnedFd, outcome: std::thread::Result<Result<()>>) -> ! {
    let failure = match outcome {
        Ok(Ok(())) => None,
        Ok(Err(e)) => Some(format!("{e:#}\n")),
        Err(p) => Some(format!(
            "panic: {}\n",
            p.downcast_ref::<String>()
                .cloned()
                .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_default()
        )),
    };
    let code = match failure {
        None => 0,
        Some(msg) => {
            let _ = fs::File::from(report.try_clone().unwrap()).write_all(msg.as_bytes());
            1
        }
    };
    // SAFETY: leaving the forked child without running the test harness's destructors.
    unsafe { libc::_exit(code) }
}

fn mount_table() -> Result<Vec<String>> {
    let mut points: Vec<String> = fs::read_to_string("/proc/self/mountinfo")?
        .lines()
        .map(|l| l.split(' ').nth(4).unwrap_or("").to_string())
        .collect();
    points.sort();
    Ok(points)
}

fn host_side(run: &Run, body: Body, report: &OwnedFd) -> Result<()> {
    // A wedged test fails instead of hanging.
    // SAFETY: alarm cannot fail.
    unsafe { libc::alarm(60) };
    unshare(CloneFlags::CLONE_NEWNS)?;
    // Shared, so that any mount event the container lets out reaches this namespace.
    nix::mount::mount(
        None::<&str>,
        "/",
        None::<&str>,
        nix::mount::MsFlags::MS_REC | nix::mount::MsFlags::MS_SHARED,
        None::<&str>,
    )?;
    let before = mount_table()?;
    if let Some(cg) = run.cgroup {
        cg.join()?;
    }
    let (ready_rd, ready_wr) = nix::unistd::pipe()?;
    let (go_rd, go_wr) = nix::unistd::pipe()?;
    // SAFETY: as above.
    let runtime = match unsafe { fork() }? {
        ForkResult::Child => {
            drop(ready_rd);
            drop(go_wr);
            let outcome = std::panic::catch_unwind(AssertUnwindSafe(|| {
                runtime_side(run, body, report, ready_wr, go_rd)
            }));
            finish_child(report, outcome)
        }
        ForkResult::Parent { child } => child,
    };
    drop(ready_wr);
    drop(go_rd);
    if run.userns {
        let mut byte = [0u8; 1];
        fs::File::from(ready_rd).read_exact(&mut byte)?;
        for map in ["uid_map", "gid_map"] {
            fs::write(format!("/proc/{runtime}/{map}"), "0 0 4294967295")
                .with_context(|| format!("writing {map}"))?;
        }
        fs::File::from(go_wr).write_all(b"g")?;
    }
    let status = waitpid(runtime, None)?;
    if status != WaitStatus::Exited(runtime, 0) {
        // The container side has reported its error already.
        return Ok(());
    }
    let after = mount_table()?;
    ensure!(
        before == after,
        "mounts leaked out of the container: before {before:?}, after {after:?}"
    );
    Ok(())
}

fn runtime_side(
    run: &Run,
    body: Body,
    report: &OwnedFd,
    ready: OwnedFd,
    go: OwnedFd,
) -> Result<()> {
    if run.userns {
        unshare(CloneFlags::CLONE_NEWUSER)?;
        fs::File::from(ready).write_all(b"r")?;
        let mut byte = [0u8; 1];
        fs::File::from(go).read_exact(&mut byte)?;
    }
    let mut flags = CloneFlags::CLONE_NEWNS
        | CloneFlags::CLONE_NEWPID
        | CloneFlags::CLONE_NEWIPC
        | CloneFlags::CLONE_NEWNET
        | CloneFlags::CLONE_NEWUTS;
    if run.cgroupns {
        flags |= CloneFlags::CLONE_NEWCGROUP;
    }
    unshare(flags)?;
    // SAFETY: as above.
    match unsafe { fork() }? {
        ForkResult::Child => {
            let outcome = std::panic::catch_unwind(AssertUnwindSafe(|| {
                let ctx = RootfsContext {
                    spec: &run.spec,
                    bundle: &run.bundle.dir,
                    rootfs: run.rootfs.as_deref().unwrap_or(&run.bundle.rootfs),
                    in_new_userns: run.userns,
                    has_cgroupns: run.cgroupns,
                    idmap_userns: &[],
                    wait_for_joined: &|| Ok(()),
                };
                body(&ctx)
            }));
            finish_child(report, outcome)
        }
        ForkResult::Parent { child } => {
            let status = waitpid(child, None)?;
            ensure!(
                status == WaitStatus::Exited(child, 0),
                "container process ended with {status:?}"
            );
            Ok(())
        }
    }
}

// ---- what the container checks -------------------------------------------------------------

fn fs_magic(path: &str) -> Result<i64> {
    let c = CString::new(path)?;
    let mut st = std::mem::MaybeUninit::<libc::statfs>::uninit();
    // SAFETY: valid C string and buffer.
    if unsafe { libc::statfs(c.as_ptr(), st.as_mut_ptr()) } != 0 {
        bail!("statfs {path}: {}", std::io::Error::last_os_error());
    }
    // SAFETY: statfs filled it in.
    let st = unsafe { st.assume_init() };
    // f_type's integer type differs between architectures.
    #[allow(clippy::unnecessary_cast)]
    Ok(st.f_type as i64)
}

fn expect_fs(path: &str, magic: i64) -> Result<()> {
    let found = fs_magic(path)?;
    ensure!(
        found == magic,
        "{path}: filesystem {found:#x}, expected {magic:#x}"
    );
    Ok(())
}

/// The per-mount options of the topmost mount at `point` in /proc/self/mountinfo.
fn mount_options_of(point: &str) -> Result<String> {
    let table = fs::read_to_string("/proc/self/mountinfo")?;
    table
        .lines()
        .rev()
        .find(|l| l.split(' ').nth(4) == Some(point))
        .and_then(|l| l.split(' ').nth(5))
        .map(str::to_string)
        .with_context(|| format!("no mount at {point}"))
}

fn expect_option(point: &str, option: &str) -> Result<()> {
    let opts = mount_options_of(point)?;
    ensure!(
        opts.split(',').any(|o| o == option),
        "mount {point}: options {opts}, expected {option}"
    );
    Ok(())
}

fn expect_not_writable(path: &str) -> Result<()> {
    match fs::write(path, "x") {
        Err(e) if e.raw_os_error() == Some(libc::EROFS) => Ok(()),
        other => bail!("writing {path}: expected EROFS, got {other:?}"),
    }
}

fn expect_char_device(path: &str, major: u32, minor: u32) -> Result<fs::Metadata> {
    let md = fs::symlink_metadata(path).with_context(|| format!("stat {path}"))?;
    ensure!(
        md.file_type().is_char_device(),
        "{path} is not a char device"
    );
    let rdev = md.rdev();
    ensure!(
        libc::major(rdev) == major && libc::minor(rdev) == minor,
        "{path} is {}:{}, expected {major}:{minor}",
        libc::major(rdev),
        libc::minor(rdev)
    );
    Ok(md)
}

fn expect_link(path: &str, target: &str) -> Result<()> {
    let found = fs::read_link(path).with_context(|| format!("readlink {path}"))?;
    ensure!(
        found == Path::new(target),
        "{path} -> {}, expected {target}",
        found.display()
    );
    Ok(())
}

/// Each cgroup hierarchy shows the container's cgroup as its root: no child directories (the
/// test cgroup has none), and the container itself (pid 1) among its processes.
fn expect_own_cgroups_only(cgroup_root: &str) -> Result<()> {
    let mut hierarchies = 0;
    for entry in fs::read_dir(cgroup_root)? {
        let entry = entry?;
        if entry.file_type()?.is_symlink() {
            continue;
        }
        hierarchies += 1;
        let dir = entry.path();
        let magic = fs_magic(dir.to_str().unwrap())?;
        ensure!(
            magic == CGROUP_MAGIC || magic == CGROUP2_MAGIC,
            "{} is not a cgroup filesystem ({magic:#x})",
            dir.display()
        );
        for inner in fs::read_dir(&dir)? {
            let inner = inner?;
            ensure!(
                !inner.file_type()?.is_dir(),
                "{} shows another cgroup's directory {}",
                dir.display(),
                inner.path().display()
            );
        }
        let procs = fs::read_to_string(dir.join("cgroup.procs"))?;
        ensure!(
            procs.lines().any(|l| l == "1"),
            "{}/cgroup.procs does not list the container: {procs:?}",
            dir.display()
        );
    }
    ensure!(hierarchies > 0, "{cgroup_root} is empty");
    Ok(())
}

fn masked_ok(path: &str) -> Result<()> {
    let Ok(md) = fs::metadata(path) else {
        return Ok(());
    };
    if md.is_dir() {
        expect_fs(path, TMPFS_MAGIC)?;
        ensure!(
            fs::read_dir(path)?.next().is_none(),
            "masked {path} is not empty"
        );
        expect_option(path, "ro")?;
    } else {
        expect_char_device(path, 1, 3)?;
    }
    Ok(())
}

// ---- specs ------------------------------------------------------------------------------------

/// `runc spec`'s mounts, masked and readonly paths.
fn runc_default_spec() -> serde_json::Value {
    json!({
        "ociVersion": "1.2.0",
        "root": {"path": "rootfs", "readonly": true},
        "mounts": [
            {"destination": "/proc", "type": "proc", "source": "proc"},
            {"destination": "/dev", "type": "tmpfs", "source": "tmpfs",
             "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]},
            {"destination": "/dev/pts", "type": "devpts", "source": "devpts",
             "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]},
            {"destination": "/dev/shm", "type": "tmpfs", "source": "shm",
             "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"]},
            {"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue",
             "options": ["nosuid", "noexec", "nodev"]},
            {"destination": "/sys", "type": "sysfs", "source": "sysfs",
             "options": ["nosuid", "noexec", "nodev", "ro"]},
            {"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup",
             "options": ["nosuid", "noexec", "nodev", "relatime", "ro"]}
        ],
        "linux": {
            "maskedPaths": ["/proc/acpi", "/proc/asound", "/proc/kcore", "/proc/keys",
                "/proc/latency_stats", "/proc/timer_list", "/proc/timer_stats",
                "/proc/sched_debug", "/sys/firmware", "/proc/scsi", "/proc/does-not-exist"],
            "readonlyPaths": ["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys",
                "/proc/sysrq-trigger"]
        }
    })
}

fn spec_with(mut base: serde_json::Value, extra_mounts: serde_json::Value) -> Spec {
    if let (Some(mounts), Some(extra)) = (base["mounts"].as_array_mut(), extra_mounts.as_array()) {
        mounts.extend(extra.iter().cloned());
    }
    serde_json::from_value(base).expect("test spec")
}

fn extra_mounts(bundle: &Bundle) -> serde_json::Value {
    json!([
        // "../../../etc" inside the rootfs is the rootfs's /etc.
        {"destination": "/evil2", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid"]},
        // "/evil" -> "/" is the rootfs's root; the tmpfs inherits the image's /tmp mode (1777).
        {"destination": "/evil/tmp", "type": "tmpfs", "source": "tmpfs"},
        // A file bind, relative to the bundle, into the tmpfs above, read-only.
        {"destination": "/etc/hostname", "type": "bind", "source": "hostfile",
         "options": ["rbind", "ro"]},
        {"destination": "/data", "type": "none", "source": bundle.dir.join("hostdir"),
         "options": ["rbind", "rro", "nosuid", "rprivate"]},
        // A dangling symlink is followed inside the rootfs.
        {"destination": "/dangling/sub", "type": "tmpfs", "source": "tmpfs"},
        // Relative destinations mean "from /"; a read-only tmpfs is made read-only at the end.
        {"destination": "relative/dir", "type": "tmpfs", "source": "tmpfs",
         "options": ["ro", "mode=700"]},
        {"destination": "/opt/app", "type": "tmpfs", "source": "tmpfs",
         "options": ["tmpcopyup", "nosuid", "size=1m"]}
    ])
}

// ---- the tests --------------------------------------------------------------------------------

fn full_container_checks(ctx: &RootfsContext, userns: bool) -> Result<()> {
    prepare_rootfs(ctx)?;
    // Before the pivot the host's tree is still visible: the traps must have hit the rootfs only.
    let rootfs = ctx.rootfs.to_str().unwrap();
    ensure!(
        fs_magic("/etc")? != TMPFS_MAGIC,
        "the host's /etc was mounted over"
    );
    expect_fs(&format!("{rootfs}/etc"), TMPFS_MAGIC)?;
    expect_fs(&format!("{rootfs}/made/by/link/sub"), TMPFS_MAGIC)?;

    enter_rootfs(ctx.rootfs, false)?;
    finish_rootfs(ctx.spec)?;

    ensure!(std::env::current_dir()? == Path::new("/"), "cwd is not /");
    ensure!(
        Path::new("/bin/busybox").exists(),
        "no /bin/busybox: not in the rootfs"
    );
    ensure!(!Path::new("/work").exists(), "the host's /work is visible");

    // root.readonly
    expect_option("/", "ro")?;
    expect_not_writable("/newfile")?;

    // Default filesystems.
    expect_fs("/proc", PROC_MAGIC)?;
    expect_fs("/sys", SYSFS_MAGIC)?;
    expect_option("/sys", "ro")?;
    expect_fs("/dev", TMPFS_MAGIC)?;
    expect_fs("/dev/pts", DEVPTS_MAGIC)?;
    expect_fs("/dev/shm", TMPFS_MAGIC)?;
    expect_fs("/dev/mqueue", MQUEUE_MAGIC)?;

    // Devices, links, ptmx.
    for (name, major, minor) in [
        ("null", 1, 3),
        ("zero", 1, 5),
        ("full", 1, 7),
        ("random", 1, 8),
        ("urandom", 1, 9),
        ("tty", 5, 0),
    ] {
        let md = expect_char_device(&format!("/dev/{name}"), major, minor)?;
        if !userns {
            ensure!(
                md.mode() & 0o7777 == 0o666,
                "/dev/{name} mode {:o}",
                md.mode()
            );
        }
    }
    fs::write("/dev/null", "discarded").context("writing /dev/null")?;
    expect_link("/dev/ptmx", "pts/ptmx")?;
    expect_link("/dev/fd", "/proc/self/fd")?;
    expect_link("/dev/stdin", "/proc/self/fd/0")?;
    expect_link("/dev/stderr", "/proc/self/fd/2")?;
    if !userns {
        let fifo = fs::symlink_metadata("/dev/sub/dir/fifo")?;
        ensure!(
            fifo.file_type().is_fifo(),
            "/dev/sub/dir/fifo is not a fifo"
        );
        ensure!(fifo.mode() & 0o7777 == 0o644, "fifo mode {:o}", fifo.mode());
        expect_char_device("/dev/fuse", 10, 229)?;
        ensure!(fs::metadata("/dev/fuse")?.uid() == 1000, "/dev/fuse owner");
    }

    // The hostile destinations.
    expect_fs("/etc", TMPFS_MAGIC)?;
    expect_fs("/tmp", TMPFS_MAGIC)?;
    let tmp_mode = fs::metadata("/tmp")?.mode() & 0o7777;
    ensure!(tmp_mode == 0o1777, "/tmp mode {tmp_mode:o}");
    expect_fs("/made/by/link/sub", TMPFS_MAGIC)?;

    // Binds.
    ensure!(
        fs::read_to_string("/etc/hostname")? == "from the host\n",
        "/etc/hostname"
    );
    expect_not_writable("/etc/hostname")?;
    ensure!(
        fs::read_to_string("/data/inside")? == "inside\n",
        "/data/inside"
    );
    expect_option("/data", "ro")?;
    expect_option("/data", "nosuid")?;
    expect_not_writable("/data/new")?;

    // A read-only tmpfs, made so only at the end, with its data options.
    expect_fs("/relative/dir", TMPFS_MAGIC)?;
    expect_option("/relative/dir", "ro")?;
    let mode = fs::metadata("/relative/dir")?.mode() & 0o7777;
    ensure!(mode == 0o700, "/relative/dir mode {mode:o}");

    // tmpcopyup: the image's content, modes and links, in a writable tmpfs.
    expect_fs("/opt/app", TMPFS_MAGIC)?;
    expect_option("/opt/app", "nosuid")?;
    ensure!(
        fs::read_to_string("/opt/app/link")? == "image content\n",
        "/opt/app/link"
    );
    ensure!(
        fs::metadata("/opt/app/file")?.mode() & 0o7777 == 0o640,
        "/opt/app/file mode"
    );
    ensure!(
        fs::metadata("/opt/app")?.mode() & 0o7777 == 0o750,
        "/opt/app mode"
    );
    ensure!(Path::new("/opt/app/sub/dir").is_dir(), "/opt/app/sub/dir");
    fs::write("/opt/app/new", "container only").context("writing into the tmpcopyup tmpfs")?;

    // Masked and readonly paths.
    for path in [
        "/proc/kcore",
        "/proc/keys",
        "/proc/timer_list",
        "/sys/firmware",
        "/proc/acpi",
    ] {
        masked_ok(path)?;
    }
    expect_option("/proc/sys", "ro")?;
    expect_not_writable("/proc/sys/kernel/hostname")?;
    if Path::new("/proc/sysrq-trigger").exists() {
        expect_option("/proc/sysrq-trigger", "ro")?;
    }

    // cgroups: read-only, only our own.
    expect_option("/sys/fs/cgroup", "ro")?;
    expect_own_cgroups_only("/sys/fs/cgroup")?;
    Ok(())
}

fn full_spec(bundle: &Bundle) -> Spec {
    let mut spec = runc_default_spec();
    spec["linux"]["devices"] = json!([
        {"path": "/dev/fuse", "type": "c", "major": 10, "minor": 229, "fileMode": 438,
         "uid": 1000, "gid": 0},
        {"path": "/dev/sub/dir/fifo", "type": "p", "fileMode": 420}
    ]);
    spec_with(spec, extra_mounts(bundle))
}

#[test]
fn full_container_with_cgroup_namespace() {
    require_root!();
    let bundle = Bundle::new();
    let cgroup = TestCgroup::new(&format!("berth-test-{}-cgns", std::process::id())).unwrap();
    let run = Run {
        bundle: &bundle,
        rootfs: None,
        spec: full_spec(&bundle),
        userns: false,
        cgroupns: true,
        cgroup: Some(&cgroup),
    };
    run_in_container(&run, &|ctx| full_container_checks(ctx, false)).unwrap();
    // The copy-up never wrote to the image.
    assert!(!bundle.rootfs.join("opt/app/new").exists());
}

#[test]
fn full_container_without_cgroup_namespace() {
    require_root!();
    let bundle = Bundle::new();
    let cgroup = TestCgroup::new(&format!("berth-test-{}-nocgns", std::process::id())).unwrap();
    let run = Run {
        bundle: &bundle,
        rootfs: None,
        spec: full_spec(&bundle),
        userns: false,
        cgroupns: false,
        cgroup: Some(&cgroup),
    };
    run_in_container(&run, &|ctx| full_container_checks(ctx, false)).unwrap();
}

#[test]
fn full_container_in_user_namespace() {
    require_root!();
    let bundle = Bundle::new();
    let cgroup = TestCgroup::new(&format!("berth-test-{}-userns", std::process::id())).unwrap();
    let run = Run {
        bundle: &bundle,
        rootfs: None,
        spec: spec_with(runc_default_spec(), extra_mounts(&bundle)),
        userns: true,
        cgroupns: true,
        cgroup: Some(&cgroup),
    };
    run_in_container(&run, &|ctx| {
        full_container_checks(ctx, true)?;
        // The devices are the host's nodes bound onto files.
        expect_option("/dev/null", "rw")?;
        Ok(())
    })
    .unwrap();
}

#[test]
fn no_dev_mount_no_pivot_and_a_symlinked_dev() {
    require_root!();
    let bundle = Bundle::new();
    // The rootfs's /dev is a symlink out of the rootfs: devices must land in its /dev2.
    fs::remove_dir(bundle.rootfs.join("dev")).unwrap();
    symlink("../../../../../dev2", bundle.rootfs.join("dev")).unwrap();
    let spec: Spec = serde_json::from_value(json!({
        "ociVersion": "1.2.0",
        "root": {"path": "rootfs"},
        "mounts": [{"destination": "/proc", "type": "proc", "source": "proc"}],
        "linux": {"rootfsPropagation": "private", "maskedPaths": ["/proc/kcore"]}
    }))
    .unwrap();
    // The rootfs reached through a symlink: mounts must still be found inside it.
    symlink(&bundle.rootfs, bundle.dir.join("rootfs-link")).unwrap();
    let run = Run {
        bundle: &bundle,
        rootfs: Some(bundle.dir.join("rootfs-link")),
        spec,
        userns: false,
        cgroupns: false,
        cgroup: None,
    };
    run_in_container(&run, &|ctx| {
        prepare_rootfs(ctx)?;
        enter_rootfs(ctx.rootfs, true)?;
        finish_rootfs(ctx.spec)?;
        ensure!(Path::new("/bin/busybox").exists(), "not in the rootfs");
        expect_fs("/proc", PROC_MAGIC)?;
        expect_char_device("/dev2/null", 1, 3)?;
        expect_char_device("/dev/tty", 5, 0)?;
        expect_link("/dev/fd", "/proc/self/fd")?;
        ensure!(
            fs::symlink_metadata("/dev2/ptmx").is_err(),
            "ptmx without a devpts mount"
        );
        fs::write("/writable", "yes").context("root.readonly is unset")?;
        Ok(())
    })
    .unwrap();
    // The nodes persist in the rootfs; the host's /dev2 was never touched.
    assert!(!Path::new("/dev2").exists());
    let md = fs::symlink_metadata(bundle.rootfs.join("dev2/null")).unwrap();
    assert!(md.file_type().is_char_device());
}

/// prepare_rootfs must fail with a message naming the problem.
fn expect_prepare_error(
    bundle: &Bundle,
    mounts: serde_json::Value,
    linux: serde_json::Value,
    needle: &str,
) {
    let spec: Spec = serde_json::from_value(json!({
        "ociVersion": "1.2.0",
        "root": {"path": "rootfs"},
        "mounts": mounts,
        "linux": linux
    }))
    .unwrap();
    let run = Run {
        bundle,
        rootfs: None,
        spec,
        userns: false,
        cgroupns: false,
        cgroup: None,
    };
    let needle = needle.to_string();
    run_in_container(&run, &move |ctx| match prepare_rootfs(ctx) {
        Ok(()) => bail!("prepare_rootfs succeeded, expected an error naming {needle:?}"),
        Err(e) => {
            let msg = format!("{e:#}");
            ensure!(
                msg.contains(&needle),
                "error {msg:?} does not name {needle:?}"
            );
            Ok(())
        }
    })
    .unwrap();
}

#[test]
fn errors_name_the_problem() {
    require_root!();
    let bundle = Bundle::new();
    let proc_mount = json!({"destination": "/proc", "type": "proc", "source": "proc"});
    expect_prepare_error(
        &bundle,
        json!([{"destination": "/x", "type": "bind", "source": "/no/such/source", "options": ["rbind"]}]),
        json!({}),
        "/no/such/source",
    );
    expect_prepare_error(
        &bundle,
        json!([proc_mount, {"destination": "/proc/self/attr", "type": "tmpfs", "source": "tmpfs"}]),
        json!({}),
        "inside /proc",
    );
    expect_prepare_error(
        &bundle,
        json!([{"destination": "/proc", "type": "tmpfs", "source": "tmpfs"}]),
        json!({}),
        "only a proc filesystem",
    );
    expect_prepare_error(
        &bundle,
        json!([{"destination": "/x", "type": "bind", "source": "/tmp", "options": ["rbind", "idmap"]}]),
        json!({}),
        "idmap",
    );
    expect_prepare_error(
        &bundle,
        json!([]),
        json!({"devices": [{"path": "/dev/../etc/evil", "type": "c", "major": 1, "minor": 3}]}),
        "/dev/../etc/evil",
    );
    expect_prepare_error(
        &bundle,
        json!([]),
        json!({"rootfsPropagation": "sideways"}),
        "sideways",
    );
}
