//! `checkpoint` and `restore`: the container's process tree saved to and
//! brought back from CRIU images, driven through CRIU's command line.
//!
//! Why the CLI and not `criu swrk` (RPC): the RPC needs protobuf code for
//! CRIU's messages and still reports failures only as "see the log"; the CLI
//! takes the same options, and CRIU's log (`-o` in the work directory) is
//! where the real errors are either way. berth quotes the last error lines of
//! that log in its one-line error.
//!
//! Image directory layout (besides CRIU's own `*.img`):
//! - `descriptors.json`: what the init's fds 0-2 were (`/proc/PID/fd` link
//!   targets, as runc stores them), so that restore can hand its own stdio
//!   in place of the pipes the container had (`--inherit-fd`).
//! - `berth-checkpoint.json`: the container's id and rootfs, so that restore
//!   can refuse the images of another container.

use crate::cli::{CheckpointArgs, CriuOpts, RestoreArgs};
use crate::state::{self, Root, Saved, Status};
use crate::{bundle, cgroups, commands, create, logging, namespaces};
use anyhow::{anyhow, bail, Context, Result};
use oci_spec::runtime::{Mount, Spec};
use serde::{Deserialize, Serialize};
use std::ffi::{CString, OsString};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// CRIU releases older than this lack options berth passes
/// (`--external mnt[]` keys as used here, `--restore-sibling`, cgroup v2).
const MIN_CRIU: (u32, u32) = (3, 11);

const DESCRIPTORS: &str = "descriptors.json";
const MARKER: &str = "berth-checkpoint.json";
const DUMP_LOG: &str = "dump.log";
const RESTORE_LOG: &str = "restore.log";

#[derive(Serialize, Deserialize)]
struct Marker {
    id: String,
    rootfs: PathBuf,
}

/// The criu binary (`--criu PATH`, else `criu` on PATH), checked to run and
/// to be recent enough.
fn find_criu(given: Option<&Path>) -> Result<PathBuf> {
    let name = given.unwrap_or(Path::new("criu"));
    let bin = if name.as_os_str().as_bytes().contains(&b'/') {
        name.to_path_buf()
    } else {
        std::env::var_os("PATH")
            .iter()
            .flat_map(std::env::split_paths)
            .map(|d| d.join(name))
            .find(|p| p.is_file())
            .ok_or_else(|| {
                anyhow!(
                    "criu not found: {} is not on PATH (install criu or pass --criu PATH)",
                    name.display()
                )
            })?
    };
    let out = std::process::Command::new(&bin)
        .arg("--version")
        .stdin(std::process::Stdio::null())
        .output()
        .map_err(|e| {
            anyhow!(
                "criu {}: {e} (install criu or pass --criu PATH)",
                bin.display()
            )
        })?;
    let text = String::from_utf8_lossy(&out.stdout);
    let version = text
        .lines()
        .find_map(|l| l.trim().strip_prefix("Version:"))
        .map(str::trim)
        .ok_or_else(|| {
            anyhow!(
                "criu {} --version printed no version: is it CRIU?",
                bin.display()
            )
        })?;
    let mut parts = version.split('.').map(|p| p.parse::<u32>().unwrap_or(0));
    let have = (parts.next().unwrap_or(0), parts.next().unwrap_or(0));
    if have < MIN_CRIU {
        bail!(
            "criu {} is version {version}, too old: berth needs {}.{} or newer",
            bin.display(),
            MIN_CRIU.0,
            MIN_CRIU.1
        );
    }
    Ok(bin)
}

fn absolute(p: &Path) -> Result<PathBuf> {
    Ok(if p.is_absolute() {
        p.to_path_buf()
    } else {
        std::env::current_dir()?.join(p)
    })
}

/// runc's default image directory: ./checkpoint.
fn image_dir(opts: &CriuOpts) -> Result<PathBuf> {
    absolute(
        opts.image_path
            .as_deref()
            .unwrap_or(Path::new("checkpoint")),
    )
}

fn is_bind(m: &Mount) -> bool {
    m.typ().as_deref() == Some("bind")
        || m.options()
            .iter()
            .flatten()
            .any(|o| o == "bind" || o == "rbind")
}

fn is_cgroup(m: &Mount) -> bool {
    matches!(m.typ().as_deref(), Some("cgroup" | "cgroup2"))
}

fn has_namespace(spec: &Spec, kind: oci_spec::runtime::LinuxNamespaceType) -> bool {
    spec.linux()
        .as_ref()
        .and_then(|l| l.namespaces().as_ref())
        .is_some_and(|ns| ns.iter().any(|n| n.typ() == kind))
}

/// A config path normalised the way the mount appears in the container
/// (CRIU matches `mnt[KEY]` against the mount point).
fn clean(p: &Path) -> String {
    let mut out = PathBuf::from("/");
    for c in p.components() {
        if let std::path::Component::Normal(n) = c {
            out.push(n);
        }
    }
    out.display().to_string()
}

/// Mounts whose source is outside the container's mount namespace: CRIU
/// can't dump them, so they are declared external. Returns (key, host source)
/// pairs; at dump the key is the mount point, at restore it is bound to the
/// source. The cgroup mount of a container without a cgroup namespace on a
/// unified host is a bind of its own cgroup directory: at restore it becomes
/// the new container's directory.
fn external_mounts(spec: &Spec, bundle: &Path, cgroup_path: &Path) -> Vec<(String, PathBuf)> {
    let cgroupns = has_namespace(spec, oci_spec::runtime::LinuxNamespaceType::Cgroup);
    let mut out = Vec::new();
    for m in spec.mounts().iter().flatten() {
        let dest = clean(m.destination());
        if is_bind(m) {
            let src = m.source().clone().unwrap_or_default();
            out.push((dest, bundle.join(src)));
        } else if is_cgroup(m) && !cgroupns && cgroups::is_pure_v2() {
            let rel = cgroup_path.strip_prefix("/").unwrap_or(cgroup_path);
            out.push((dest, Path::new("/sys/fs/cgroup").join(rel)));
        }
    }
    out
}

/// Options both commands pass to CRIU the same way.
fn common_args(opts: &CriuOpts, args: &mut Vec<OsString>) -> Result<()> {
    let mut flag = |on: bool, name: &str| {
        if on {
            args.push(name.into());
        }
    };
    flag(opts.tcp_established, "--tcp-established");
    flag(opts.ext_unix_sk, "--ext-unix-sk");
    flag(opts.shell_job, "--shell-job");
    flag(opts.file_locks, "--file-locks");
    flag(opts.auto_dedup, "--auto-dedup");
    flag(opts.lazy_pages, "--lazy-pages");
    let mode = opts.manage_cgroups_mode.as_deref().unwrap_or("soft");
    if !matches!(mode, "soft" | "full" | "strict" | "ignore") {
        bail!("invalid --manage-cgroups-mode {mode:?}: want soft, full, strict or ignore");
    }
    args.push(format!("--manage-cgroups={mode}").into());
    for ns in &opts.empty_ns {
        match ns.as_str() {
            "network" | "net" => args.extend(["--empty-ns".into(), "net".into()]),
            other => bail!("--empty-ns {other:?}: only the network namespace can be left empty"),
        }
    }
    Ok(())
}

/// Runs CRIU with `args`, waiting for it. With `cgroup`, CRIU is first put
/// in the container's (new) cgroup, so that what it restores is born there.
fn run_criu(bin: &Path, args: &[OsString], cgroup: Option<(&Spec, &Path, &str)>) -> Result<bool> {
    logging::debug(&format!("{} {:?}", bin.display(), args));
    let to_c = |s: &std::ffi::OsStr| CString::new(s.as_bytes()).context("NUL in a criu argument");
    let prog = to_c(bin.as_os_str())?;
    let mut argv = vec![prog.clone()];
    for a in args {
        argv.push(to_c(a)?);
    }
    let mut ptrs: Vec<*const libc::c_char> = argv.iter().map(|a| a.as_ptr()).collect();
    ptrs.push(std::ptr::null());
    let (go_rd, go_wr) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).context("pipe")?;
    // SAFETY: berth is single-threaded; the child only reads a pipe and execs
    // with argv prepared before the fork.
    let pid = unsafe { libc::fork() };
    if pid < 0 {
        bail!("fork criu: {}", std::io::Error::last_os_error());
    }
    if pid == 0 {
        use std::os::fd::AsRawFd;
        unsafe {
            let mut b = 0u8;
            if libc::read(go_rd.as_raw_fd(), (&mut b as *mut u8).cast(), 1) != 1 {
                libc::_exit(126);
            }
            libc::execv(prog.as_ptr(), ptrs.as_ptr());
            libc::_exit(127);
        }
    }
    drop(go_rd);
    let child = nix::unistd::Pid::from_raw(pid);
    if let Some((spec, path, id)) = cgroup {
        if let Err(e) = cgroups::enter(spec, path, id, pid, false) {
            let _ = nix::sys::signal::kill(child, nix::sys::signal::Signal::SIGKILL);
            let _ = nix::sys::wait::waitpid(child, None);
            return Err(e);
        }
    }
    nix::unistd::write(&go_wr, b"g").context("start criu")?;
    drop(go_wr);
    loop {
        match nix::sys::wait::waitpid(child, None) {
            Ok(nix::sys::wait::WaitStatus::Exited(_, code)) => {
                if code == 127 {
                    bail!("could not execute {}", bin.display());
                }
                return Ok(code == 0);
            }
            Ok(nix::sys::wait::WaitStatus::Signaled(..)) => return Ok(false),
            Ok(_) | Err(nix::Error::EINTR) => continue,
            Err(e) => bail!("wait for criu: {e}"),
        }
    }
}

/// The last error lines of CRIU's log, for berth's one-line error.
fn log_errors(log: &Path) -> String {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    // "(00.012345) Error (criu/mount.c:123): mnt: ..." -> "Error (...): ..."
    let strip = |l: &str| -> String {
        let l = l.trim();
        match l.strip_prefix('(').and_then(|r| r.split_once(") ")) {
            Some((_, rest)) => rest.to_string(),
            None => l.to_string(),
        }
    };
    let errors: Vec<String> = text
        .lines()
        .filter(|l| l.contains("Error"))
        // CRIU's kernel feature probe logs this as an error on hosts
        // without /dev/net/tun; it is never why a dump or restore failed.
        .filter(|l| !l.contains("Unable to create tun"))
        .map(strip)
        .collect();
    let picked: Vec<String> = if errors.is_empty() {
        let lines: Vec<String> = text
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(strip)
            .collect();
        lines[lines.len().saturating_sub(2)..].to_vec()
    } else {
        errors[errors.len().saturating_sub(3)..].to_vec()
    };
    if picked.is_empty() {
        format!("no log in {}", log.display())
    } else {
        format!("{} (log: {})", picked.join(" / "), log.display())
    }
}

/// The container's config as it is in its bundle (for its mounts).
fn load_spec(saved: &Saved) -> Result<Spec> {
    let path = saved.bundle.join("config.json");
    let data = std::fs::read(&path).map_err(|e| anyhow!("read {}: {e}", path.display()))?;
    serde_json::from_slice(&data).map_err(|e| anyhow!("invalid {}: {e}", path.display()))
}

fn refuse_unsupported(spec: &Spec, what: &str) -> Result<()> {
    if spec
        .process()
        .as_ref()
        .and_then(|p| p.terminal())
        .unwrap_or(false)
    {
        bail!("{what}: containers with a terminal (process.terminal) are not supported yet");
    }
    if let Some(ns) = spec.linux().as_ref().and_then(|l| l.namespaces().as_ref()) {
        if let Some(n) = ns.iter().find(|n| n.path().is_some()) {
            bail!(
                "{what}: the container joins an existing {} namespace, which is not supported yet",
                namespaces::name_of(n.typ())
            );
        }
    }
    Ok(())
}

/// `checkpoint ID`.
pub fn checkpoint(root: &Root, criu: Option<&Path>, a: &CheckpointArgs) -> Result<()> {
    let container = root.open_container(&a.id)?;
    let saved = &container.saved;
    let status = container.status();
    if !matches!(status, Status::Running | Status::Paused) {
        bail!(
            "cannot checkpoint container {:?}: it is {status}, not running",
            a.id
        );
    }
    let what = format!("checkpoint container {:?}", a.id);
    if saved.systemd_cgroup {
        bail!(
            "{what}: containers of the systemd cgroup driver are not supported by checkpoint yet"
        );
    }
    let spec = load_spec(saved)?;
    refuse_unsupported(&spec, &what)?;
    let bin = find_criu(criu)?;
    let image = image_dir(&a.criu)?;
    std::fs::create_dir_all(&image)
        .map_err(|e| anyhow!("create image directory {}: {e}", image.display()))?;
    let work = match &a.criu.work_path {
        Some(w) => absolute(w)?,
        None => image.clone(),
    };
    std::fs::create_dir_all(&work)
        .map_err(|e| anyhow!("create work directory {}: {e}", work.display()))?;

    let mut args: Vec<OsString> = vec![
        if a.pre_dump { "pre-dump" } else { "dump" }.into(),
        "-t".into(),
        saved.pid.to_string().into(),
        "-D".into(),
        image.clone().into(),
        "-W".into(),
        work.clone().into(),
        "-o".into(),
        DUMP_LOG.into(),
        "-v4".into(),
        "--root".into(),
        saved.rootfs.clone().into(),
        // Stop the tasks through the freezer, which also copes with a
        // container that `pause` already froze.
        "--freeze-cgroup".into(),
        cgroups::freezer_dir(&saved.cgroup_path).into(),
    ];
    if let Some(parent) = &a.criu.parent_path {
        // CRIU resolves it against the image directory, like runc documents.
        if !image.join(parent).is_dir() {
            bail!(
                "{what}: --parent-path {}: no such directory (relative to the image path {})",
                parent.display(),
                image.display()
            );
        }
        args.extend(["--prev-images-dir".into(), parent.clone().into()]);
    }
    if a.pre_dump || a.criu.parent_path.is_some() {
        args.push("--track-mem".into());
    }
    if a.leave_running && !a.pre_dump {
        args.push("--leave-running".into());
    }
    if let Some(ps) = &a.criu.page_server {
        let (addr, port) = ps
            .rsplit_once(':')
            .ok_or_else(|| anyhow!("--page-server {ps:?}: want ADDRESS:PORT"))?;
        args.extend([
            "--page-server".into(),
            "--address".into(),
            addr.into(),
            "--port".into(),
            port.into(),
        ]);
    }
    if a.criu.status_fd >= 0 {
        args.extend(["--status-fd".into(), a.criu.status_fd.to_string().into()]);
    }
    common_args(&a.criu, &mut args)?;
    for (key, _) in external_mounts(&spec, &saved.bundle, &saved.cgroup_path) {
        args.extend(["--external".into(), format!("mnt[{key}]:{key}").into()]);
    }

    // What restore needs besides CRIU's images.
    let fds: Vec<String> = (0..3)
        .map(|fd| {
            std::fs::read_link(format!("/proc/{}/fd/{fd}", saved.pid))
                .map(|t| t.display().to_string())
                .unwrap_or_default()
        })
        .collect();
    std::fs::write(image.join(DESCRIPTORS), serde_json::to_vec(&fds)?)
        .with_context(|| format!("write {}", image.join(DESCRIPTORS).display()))?;
    let marker = Marker {
        id: a.id.clone(),
        rootfs: saved.rootfs.clone(),
    };
    std::fs::write(image.join(MARKER), serde_json::to_vec(&marker)?)
        .with_context(|| format!("write {}", image.join(MARKER).display()))?;

    if !run_criu(&bin, &args, None)? {
        bail!(
            "{what}: criu {} failed: {}",
            if a.pre_dump { "pre-dump" } else { "dump" },
            log_errors(&work.join(DUMP_LOG))
        );
    }
    if !a.leave_running && !a.pre_dump {
        // CRIU killed the tree. As runc does, the container is then
        // destroyed (cgroup, state, poststop hooks): clients such as
        // containerd's shim restore it under the same ID.
        commands::wait_gone(saved, Duration::from_secs(10));
        commands::destroy(saved, &container.lock.path);
    }
    Ok(())
}

/// What a failing restore must take back.
struct Undo {
    dir: Option<state::LockedDir>,
    id: String,
    cgroup: Option<PathBuf>,
    pid: Option<i32>,
    mount: Option<PathBuf>,
}

impl Undo {
    fn unmount(&mut self) {
        if let Some(m) = self.mount.take() {
            if let Ok(c) = CString::new(m.as_os_str().as_bytes()) {
                // SAFETY: umount2 with a valid C string.
                unsafe { libc::umount2(c.as_ptr(), libc::MNT_DETACH) };
            }
            let _ = std::fs::remove_dir(&m);
        }
    }

    fn run(&mut self) {
        if let Some(pid) = self.pid.take() {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid),
                nix::sys::signal::Signal::SIGKILL,
            );
            let _ = nix::sys::wait::waitpid(nix::unistd::Pid::from_raw(pid), None);
        }
        if let Some(cg) = self.cgroup.take() {
            // Also kills whatever CRIU left in it.
            if let Err(e) = cgroups::remove(&cg, &self.id) {
                logging::warn(&format!("{e:#}"));
            }
        }
        self.unmount();
        if let Some(dir) = self.dir.take() {
            let _ = dir.remove();
        }
    }
}

/// Flags restore accepts because go-runc builds its argv from checkpoint's
/// options (contract quirk 2), but that only mean something to a dump:
/// refused, by name, rather than ignored. go-runc's restore sends none of
/// them unless its caller asked for them (containerd never does).
fn refuse_checkpoint_only(a: &RestoreArgs) -> Result<()> {
    let mut given = Vec::new();
    if a.criu.page_server.is_some() {
        given.push("--page-server");
    }
    if a.criu.status_fd >= 0 {
        given.push("--status-fd");
    }
    if a.pre_dump {
        given.push("--pre-dump");
    }
    if a.leave_running {
        given.push("--leave-running");
    }
    if given.is_empty() {
        return Ok(());
    }
    bail!(
        "{} only apply to checkpoint, not to restore",
        given.join(", ")
    )
}

/// `restore ID`: returns the exit code for a foreground restore (0 detached).
pub fn restore(
    root: &Root,
    criu: Option<&Path>,
    a: &RestoreArgs,
    systemd_cgroup: bool,
) -> Result<i32> {
    state::validate_id(&a.id)?;
    let what = format!("restore container {:?}", a.id);
    if root.container_dir(&a.id).exists() {
        bail!("{what}: container with id {:?} already exists", a.id);
    }
    if a.lsm_profile.is_some() || a.lsm_mount_context.is_some() {
        bail!("{what}: --lsm-profile and --lsm-mount-context are not supported (berth has no LSM support)");
    }
    if a.console_socket.is_some() {
        bail!("{what}: --console-socket: containers with a terminal are not supported yet");
    }
    refuse_checkpoint_only(a).map_err(|e| anyhow!("{what}: {e}"))?;
    let image = image_dir(&a.criu)?;
    if !image.is_dir() {
        bail!("{what}: image path {} is not a directory", image.display());
    }
    if !image.join("inventory.img").is_file() {
        let empty = std::fs::read_dir(&image)
            .map(|mut d| d.next().is_none())
            .unwrap_or(false);
        if empty {
            bail!(
                "{what}: image path {} is empty: no checkpoint there",
                image.display()
            );
        }
        bail!(
            "{what}: image path {} is not a CRIU checkpoint (no inventory.img)",
            image.display()
        );
    }
    let bundle = bundle::load(&a.bundle)?;
    // CRIU restores the network namespace from the image; moving host
    // devices into it is not wired up: refuse rather than drop them.
    if !crate::netdevices::devices(&bundle.spec).is_empty() {
        bail!("{what}: linux.netDevices is not supported by restore yet");
    }
    if let Ok(data) = std::fs::read(image.join(MARKER)) {
        let marker: Marker = serde_json::from_slice(&data)
            .map_err(|e| anyhow!("{what}: invalid {}: {e}", image.join(MARKER).display()))?;
        // Restoring under a new ID (same bundle) or from a new copy of the
        // rootfs (containerd's new snapshot, same ID) are both normal; only
        // both differing means another container's images.
        if marker.id != a.id && marker.rootfs != bundle.rootfs {
            bail!(
                "{what}: image path {} holds a checkpoint of container {:?} (rootfs {}), not of this bundle (rootfs {})",
                image.display(),
                marker.id,
                marker.rootfs.display(),
                bundle.rootfs.display()
            );
        }
    }
    refuse_unsupported(&bundle.spec, &what)?;
    let bin = find_criu(criu)?;
    let work = match &a.criu.work_path {
        Some(w) => absolute(w)?,
        None => image.clone(),
    };
    std::fs::create_dir_all(&work)
        .map_err(|e| anyhow!("create work directory {}: {e}", work.display()))?;
    let plan = namespaces::plan(&bundle.spec)?;
    if systemd_cgroup {
        bail!("{what}: --systemd-cgroup is not supported by restore yet");
    }
    let cgroup_path = cgroups::path_for(&bundle.spec, &a.id, false)?;
    let dir = root.create_container_dir(&a.id)?;
    let mut undo = Undo {
        dir: Some(dir),
        id: a.id.clone(),
        cgroup: None,
        pid: None,
        mount: None,
    };
    let saved = match restore_in(
        a,
        &bin,
        &image,
        &work,
        &bundle,
        &plan,
        cgroup_path,
        &mut undo,
    ) {
        Ok(s) => s,
        Err(e) => {
            undo.run();
            return Err(e.context(what));
        }
    };
    let dir = undo.dir.take().expect("dir");
    if a.detach {
        return Ok(0);
    }
    // In the foreground, like `run`: the restored init is our child
    // (--restore-sibling); wait without holding the lock.
    let dir_path = dir.path.clone();
    drop(dir);
    let code = commands::forward_signals_until_exit(saved.pid)?;
    if let Ok(now) = root.open_container(&a.id) {
        if now.saved.pid == saved.pid && now.saved.pid_start_time == saved.pid_start_time {
            commands::destroy(&now.saved, &dir_path);
        }
    }
    Ok(code)
}

#[allow(clippy::too_many_arguments)]
fn restore_in(
    a: &RestoreArgs,
    bin: &Path,
    image: &Path,
    work: &Path,
    bundle: &bundle::Bundle,
    plan: &namespaces::Plan,
    cgroup_path: PathBuf,
    undo: &mut Undo,
) -> Result<Saved> {
    let dir_path = undo.dir.as_ref().expect("dir").path.clone();
    // CRIU wants the root to be a mount point whose parent isn't overmounted:
    // a private bind of the rootfs in the state directory (as runc does).
    let criu_root = dir_path.join("criu-root");
    std::fs::create_dir(&criu_root).with_context(|| format!("mkdir {}", criu_root.display()))?;
    undo.mount = Some(criu_root.clone());
    let src = CString::new(bundle.rootfs.as_os_str().as_bytes())?;
    let dst = CString::new(criu_root.as_os_str().as_bytes())?;
    // SAFETY: mount(2) with valid C strings.
    if unsafe {
        libc::mount(
            src.as_ptr(),
            dst.as_ptr(),
            std::ptr::null(),
            libc::MS_BIND | libc::MS_REC,
            std::ptr::null(),
        )
    } != 0
    {
        bail!(
            "bind the rootfs {} for criu: {}",
            bundle.rootfs.display(),
            std::io::Error::last_os_error()
        );
    }
    // SAFETY: as above; keeps the bind (and what CRIU does under it) off the host's peers.
    unsafe {
        libc::mount(
            std::ptr::null(),
            dst.as_ptr(),
            std::ptr::null(),
            libc::MS_PRIVATE | libc::MS_REC,
            std::ptr::null(),
        )
    };

    let pidfile = dir_path.join("criu.pid");
    let mut args: Vec<OsString> = vec![
        "restore".into(),
        "-D".into(),
        image.into(),
        "-W".into(),
        work.into(),
        "-o".into(),
        RESTORE_LOG.into(),
        "-v4".into(),
        "--root".into(),
        criu_root.clone().into(),
        // Detached, with the init as our child, like create's.
        "--restore-detached".into(),
        "--restore-sibling".into(),
        "--pidfile".into(),
        pidfile.clone().into(),
        // The tasks go into the new container's cgroup, wherever the old one was.
        "--cgroup-root".into(),
        cgroup_path.clone().into(),
        "--evasive-devices".into(),
    ];
    if a.criu.parent_path.is_some() {
        // go-runc passes containerd's parent checkpoint; CRIU finds the
        // parent images itself through the `parent` link dump left.
        logging::debug("restore: --parent-path is implied by the images' parent link");
    }
    common_args(&a.criu, &mut args)?;
    for (key, source) in external_mounts(&bundle.spec, &bundle.dir, &cgroup_path) {
        args.extend([
            "--external".into(),
            format!("mnt[{key}]:{}", source.display()).into(),
        ]);
    }
    // The pipes the container had as stdio become ours (runc does the same).
    if let Ok(data) = std::fs::read(image.join(DESCRIPTORS)) {
        let fds: Vec<String> = serde_json::from_slice(&data).unwrap_or_default();
        for (i, target) in fds.iter().enumerate().take(3) {
            if target.starts_with("pipe:") {
                args.extend(["--inherit-fd".into(), format!("fd[{i}]:{target}").into()]);
            }
        }
    }

    undo.cgroup = Some(cgroup_path.clone());
    if !run_criu(bin, &args, Some((&bundle.spec, &cgroup_path, &a.id)))? {
        bail!(
            "criu restore failed: {}",
            log_errors(&work.join(RESTORE_LOG))
        );
    }
    let pid: i32 = std::fs::read_to_string(&pidfile)
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .ok_or_else(|| anyhow!("criu restore wrote no pid to {}", pidfile.display()))?;
    undo.pid = Some(pid);
    let _ = std::fs::remove_file(&pidfile);
    undo.unmount();

    let pid_start_time = state::read_proc_stat(pid)
        .map(|(_, t)| t)
        .ok_or_else(|| anyhow!("restored init {pid} exited at once"))?;
    let saved = Saved::of_bundle(
        bundle,
        &a.id,
        pid,
        pid_start_time,
        Some(cgroup_path),
        false,
        plan.has_pid_ns(),
    );
    undo.dir.as_ref().expect("dir").save(&saved)?;
    if let Some(p) = &a.pid_file {
        create::write_pid_file(p, pid)?;
    }
    undo.pid = None;
    undo.cgroup = None;
    Ok(saved)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_errors_quotes_the_last_error_lines() {
        let dir = std::env::temp_dir().join(format!("berth-criu-log-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let log = dir.join("x.log");
        std::fs::write(
            &log,
            "(00.000100) Version: 3.17\n(00.1) Error (criu/a.c:1): first\n(00.2) fine\n\
             (00.3) Error (criu/b.c:2): second\n",
        )
        .unwrap();
        let msg = log_errors(&log);
        assert!(msg.starts_with("Error (criu/a.c:1): first / Error (criu/b.c:2): second"));
        assert!(msg.contains("x.log"));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn mount_keys_are_clean_paths() {
        assert_eq!(clean(Path::new("/a//b/./c/")), "/a/b/c");
        assert_eq!(clean(Path::new("data")), "/data");
    }
}
