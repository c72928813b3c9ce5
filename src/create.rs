//! `create`: the parent side of making a container.
//!
//! The process model (docs/ARCHITECTURE.md): `berth create` clones the
//! container's init directly, with the new namespaces as clone flags, and
//! talks to it over a socketpair (sync.rs) while it sets itself up. No re-exec
//! of the binary, no intermediate process in the common case. When the config
//! joins a user, pid or time namespace, or creates a time namespace, a
//! short-lived intermediate process enters those first (they only affect the
//! caller's children, and berth itself must stay in the host's namespaces to run
//! hooks) and clones the init with CLONE_PARENT, so the init is still our child.
//!
//! `create` returns once the init is fully set up and blocked in accept() on
//! `<state dir>/start.sock`; `start` is whoever connects to that socket.

use crate::bundle::{self, Bundle};
use crate::cli::CreateOpts;
use crate::state::{LockedDir, OciState, Root, Saved, Status, START_SOCKET};
use crate::sync::{self, Channel, Message};
use crate::{
    cgroups, console, hooks, init, logging, namespaces, netdevices, rootfs, rootless, seccomp,
};
use anyhow::{anyhow, bail, Context, Result};
use nix::sys::signal::{kill, Signal};
use nix::sys::wait::waitpid;
use nix::unistd::Pid;
use oci_spec::runtime::LinuxNamespaceType;
use std::io::Read;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};

/// How the container's terminal (process.terminal) reaches its user.
pub enum Console {
    /// No terminal: the init inherits berth's stdio.
    None,
    /// `--console-socket`: the pty master goes to whoever listens there.
    Socket(PathBuf),
    /// `berth run` in the foreground: berth gets the master and proxies it.
    Foreground,
}

pub struct Request<'a> {
    pub root: &'a Root,
    pub id: &'a str,
    pub opts: &'a CreateOpts,
    pub systemd_cgroup: bool,
    /// `--rootless` (resolved): see rootless.rs.
    pub rootless: bool,
    pub foreground: bool,
}

/// A container that `create` made: its state dir (still locked) and, for a
/// foreground run, the pty master.
pub struct Created {
    pub dir: LockedDir,
    pub saved: Saved,
    pub pty_master: Option<OwnedFd>,
}

pub fn create(req: &Request) -> Result<Created> {
    crate::state::validate_id(req.id)?;
    let bundle = bundle::load(&req.opts.bundle)?;
    let plan = namespaces::plan(&bundle.spec)?;
    let self_join = init_can_join_cgroup(req, &plan);
    let warmup = (!self_join).then(cgroups::AttachWarmup::start);
    rootless::check_config(&bundle.spec, &plan)?;
    // Before anything exists: the devices are on the host, the names are
    // valid and the container gets a network namespace of its own.
    netdevices::validate(&bundle.spec, req.rootless)?;
    // The config is good: the network namespace gets made from now on,
    // beside the rest of create (namespaces::NetworkBeside).
    let network = network_beside(req, &plan)
        .then(namespaces::NetworkBeside::start)
        .transpose()?;
    // Compiled before anything exists, so a bad profile leaves nothing
    // behind; the init loads this context from its copy of our memory.
    let seccomp_profile = bundle
        .spec
        .linux()
        .as_ref()
        .and_then(|l| l.seccomp().as_ref());
    let filter = seccomp_profile.map(seccomp::compile).transpose()?;
    let console = console_for(&bundle, req)?;
    let cgroup_path = cgroups::path_for(&bundle.spec, req.id, req.systemd_cgroup)?;
    // None: a rootless container without a writable cgroup runs in ours.
    let cgroup_path = match req.rootless {
        true if !rootless::use_cgroup(&bundle.spec, &cgroup_path)? => None,
        _ => Some(cgroup_path),
    };
    let dir = req.root.create_container_dir(req.id)?;

    let mut setup = Setup {
        dir: Some(dir),
        pid: None,
        cgroup: None,
        id: req.id.to_string(),
        poststop: None,
        network,
    };
    let result = create_in(
        req,
        &bundle,
        &plan,
        filter.as_ref(),
        console,
        cgroup_path,
        &mut setup,
    );
    if let Some(w) = warmup {
        w.finish();
    }
    match result {
        Ok(created) => Ok(created),
        Err(e) => {
            setup.undo();
            Err(e)
        }
    }
}

/// The init is cloned through an intermediate process when it must be born
/// in namespaces the intermediate joins first.
fn needs_intermediate(plan: &namespaces::Plan) -> bool {
    plan.new_time
        || plan.join_of(LinuxNamespaceType::User).is_some()
        || plan.join_of(LinuxNamespaceType::Pid).is_some()
        || plan.join_of(LinuxNamespaceType::Time).is_some()
}

/// Whether the init can be born in its cgroup and join the rest by itself
/// (cgroups::SelfJoin): with the cgroupfs driver, as root, cloned directly
/// by us, with the host's cgroup mounts still in its (new) mount namespace
/// when it joins v1 hierarchies, and without a new user namespace, whose
/// root could not write the host's cgroup files. Otherwise `create` moves
/// it in.
fn init_can_join_cgroup(req: &Request, plan: &namespaces::Plan) -> bool {
    !req.systemd_cgroup
        && !req.rootless
        && !plan.new_user
        && plan.new_mount
        && plan.join_of(LinuxNamespaceType::Mount).is_none()
        && !needs_intermediate(plan)
}

/// Whether the container's new network namespace is made beside the
/// clone (namespaces::NetworkBeside): when it belongs to berth's own user
/// namespace, and the init is cloned directly (the intermediate path joins
/// namespaces first and stays as it is).
fn network_beside(req: &Request, plan: &namespaces::Plan) -> bool {
    plan.new_net
        && !req.rootless
        && !plan.new_user
        && plan.join_of(LinuxNamespaceType::User).is_none()
        && !needs_intermediate(plan)
}

/// What a failing create must take back.
struct Setup {
    dir: Option<LockedDir>,
    pid: Option<i32>,
    cgroup: Option<PathBuf>,
    id: String,
    /// Once the init exists: the poststop hooks and the state they get.
    poststop: Option<(Vec<oci_spec::runtime::Hook>, OciState)>,
    /// The network namespace being made beside (dropping it waits for its
    /// thread and closes the namespace).
    network: Option<namespaces::NetworkBeside>,
}

impl Setup {
    fn undo(&mut self) {
        if let Some(pid) = self.pid.take() {
            let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
            let _ = waitpid(Pid::from_raw(pid), None);
        }
        if let Some(cg) = self.cgroup.take() {
            if let Err(e) = cgroups::remove(&cg, &self.id) {
                logging::warn(&format!("{e:#}"));
            }
        }
        // runtime.md "Lifecycle" 3-5: a failing create continues at step 12
        // (destroy) and 13 (poststop hooks, whose failure is only a warning).
        if let Some((hooks, mut state)) = self.poststop.take() {
            state.status = Status::Stopped;
            if let Ok(json) = serde_json::to_vec(&state) {
                for hook in &hooks {
                    if let Err(e) = hooks::run_hook(hook, &json) {
                        logging::warn(&format!("poststop hook: {e:#}"));
                    }
                }
            }
        }
        if let Some(dir) = self.dir.take() {
            let _ = dir.remove();
        }
    }
}

fn console_for(bundle: &Bundle, req: &Request) -> Result<Console> {
    let terminal = bundle
        .spec
        .process()
        .as_ref()
        .and_then(|p| p.terminal())
        .unwrap_or(false);
    match (&req.opts.console_socket, terminal, req.foreground) {
        (Some(_), false, _) => bail!("--console-socket was given but process.terminal is false"),
        (Some(p), true, _) => Ok(Console::Socket(p.clone())),
        (None, true, true) => Ok(Console::Foreground),
        (None, true, false) => {
            bail!("process.terminal is true: a detached container needs --console-socket")
        }
        (None, false, _) => Ok(Console::None),
    }
}

fn create_in(
    req: &Request,
    bundle: &Bundle,
    plan: &namespaces::Plan,
    filter: Option<&seccomp::Filter>,
    console: Console,
    cgroup_path: Option<PathBuf>,
    setup: &mut Setup,
) -> Result<Created> {
    let network = setup.network.take();
    let dir_path = setup.dir.as_ref().expect("dir").path.clone();
    let listener = bind_start_socket(&dir_path)?;
    // The seccomp agent's socket is a host path: connect now, the init
    // sends the listener fd on this connection from inside the container.
    let seccomp_listener = match (filter, bundle.spec.linux().as_ref()) {
        (Some(f), Some(linux)) if f.uses_notify => {
            seccomp::connect_listener(linux.seccomp().as_ref().expect("compiled from it"))?
        }
        _ => None,
    };

    // The console: a connection to the given socket, or our end of a pair.
    let (console_fd, our_console_end): (Option<OwnedFd>, Option<OwnedFd>) = match &console {
        Console::None => (None, None),
        Console::Socket(path) => (Some(console::connect_console_socket(path)?), None),
        Console::Foreground => {
            let (a, b) = UnixStream::pair().context("socketpair for the terminal")?;
            (Some(b.into()), Some(a.into()))
        }
    };

    let mut state = OciState {
        oci_version: crate::OCI_VERSION.to_string(),
        id: req.id.to_string(),
        pid: 0,
        status: Status::Creating,
        bundle: bundle.dir.clone(),
        rootfs: bundle.rootfs.clone(),
        created: logging::rfc3339_now(),
        annotations: bundle.spec.annotations().clone().unwrap_or_default(),
        owner: String::new(),
    };

    let self_join = match &cgroup_path {
        Some(path) if init_can_join_cgroup(req, plan) => {
            setup.cgroup = Some(path.clone());
            let join = cgroups::SelfJoin::prepare(path)?;
            if !join.made {
                // Not ours: a failed create leaves it where it was.
                setup.cgroup = None;
            }
            Some(join)
        }
        _ => None,
    };
    let beside = network.is_some();
    let (parent_end, child_end) = sync::pair()?;
    let preserve_fds = req.opts.preserve_fds as i32 + listen_fds();
    let idmap_userns = rootfs::prepare_idmapped_mounts(
        &bundle.spec,
        &bundle.dir,
        &crate::idmap::userns_for_mounts(&bundle.spec)?,
    )?;
    let ctx = init::Context {
        idmap_userns: &idmap_userns,
        spec: &bundle.spec,
        bundle: &bundle.dir,
        rootfs: &bundle.rootfs,
        plan,
        listener: listener.as_raw_fd(),
        console: console_fd.as_ref().map(|f| f.as_raw_fd()),
        no_pivot: req.opts.no_pivot,
        no_new_keyring: req.opts.no_new_keyring,
        preserve_fds,
        seccomp: filter,
        seccomp_listener: seccomp_listener.as_ref().map(|f| f.as_raw_fd()),
        cgroup_tasks: self_join.as_ref().map_or(&[], |j| j.tasks.as_slice()),
        network_from_parent: beside,
    };
    let born_in = self_join
        .as_ref()
        .and_then(|j| j.unified.as_ref())
        .map(|f| f.as_fd());
    let pid = spawn_init(plan, ctx, child_end, &bundle.spec, born_in, beside)?;
    setup.pid = Some(pid);
    drop(console_fd);
    drop(seccomp_listener);
    drop(idmap_userns);
    let mut chan = parent_end;

    if rootless::unprivileged_maps(plan) {
        rootless::write_id_maps(&bundle.spec, pid)?;
    } else if plan.new_user {
        write_id_maps(&bundle.spec, pid)?;
    }
    state.pid = pid;
    let state_json = serde_json::to_string(&state)?;
    // The init sets up its mounts while we put it in its cgroup, on the
    // other core; it waits for `Joined` before anything that depends on its
    // cgroup (the cgroup namespace, cgroup mounts, the hooks).
    chan.send(&Message::Go(state_json.clone()))?;
    if let Some(cgroup_path) = &cgroup_path {
        if self_join.as_ref().is_none_or(|j| j.made) {
            setup.cgroup = Some(cgroup_path.clone());
        }
        match &self_join {
            // The init joins by itself once it gets `Joined`.
            Some(j) => j.make_cgroup(&bundle.spec, cgroup_path, req.id)?,
            None => cgroups::enter(&bundle.spec, cgroup_path, req.id, pid, req.systemd_cgroup)?,
        }
    }
    let network = network.map(namespaces::NetworkBeside::finish).transpose()?;
    let network_fd = network.as_ref().map(|f| f.as_fd());
    if let Err(e) = chan.send_with_fds(&Message::Joined, network_fd.as_slice()) {
        // The init gave up on its mounts meanwhile: its reason is queued.
        return Err(match chan.recv() {
            Ok(Some(Message::Error(reason))) => anyhow!(reason),
            _ => e,
        });
    }
    // linux.netDevices, from here in the host's netns while the init works
    // on its rootfs; done before the prestart hooks (which may configure
    // them) and before the init writes linux.sysctl (which may name them).
    // The namespace by the fd we hold: the init may not have entered it yet.
    netdevices::move_into(
        &bundle.spec,
        plan.join_of(LinuxNamespaceType::Network)
            .map(|j| j.fd.as_fd())
            .or(network_fd),
        pid,
    )?;
    drop(network);

    if let Some(poststop) = bundle
        .spec
        .hooks()
        .as_ref()
        .and_then(|h| h.poststop().clone())
    {
        setup.poststop = Some((poststop, state.clone()));
    }

    chan.expect(Message::RunHooks)?;
    if let Some(h) = bundle.spec.hooks() {
        // runtime.md "Lifecycle" steps 3 and 4, in the runtime namespace.
        hooks::run_hooks(h.prestart().as_ref(), state_json.as_bytes(), "prestart")?;
        hooks::run_hooks(
            h.create_runtime().as_ref(),
            state_json.as_bytes(),
            "createRuntime",
        )?;
    }
    chan.send(&Message::HooksDone)?;
    chan.expect(Message::Ready)?;

    let pty_master = match our_console_end {
        Some(sock) => Some(console::recv_fd(sock.as_raw_fd())?),
        None => None,
    };
    drop(listener);

    let pid_start_time = crate::state::read_proc_stat(pid)
        .map(|(_, t)| t)
        .ok_or_else(|| anyhow!("container init {pid} exited during create"))?;
    let mut saved = Saved::of_bundle(
        bundle,
        req.id,
        pid,
        pid_start_time,
        cgroup_path,
        req.systemd_cgroup,
        plan.has_pid_ns(),
    );
    // The time the hooks were told.
    saved.created = state.created.clone();
    let dir = setup.dir.as_ref().expect("dir");
    dir.save(&saved)?;
    if let Some(sock) = &req.opts.pidfd_socket {
        send_pidfd(sock, pid)?;
    }
    if let Some(pid_file) = &req.opts.pid_file {
        write_pid_file(pid_file, pid)?;
    }
    // Success: nothing to undo any more.
    setup.pid = None;
    setup.cgroup = None;
    setup.poststop = None;
    Ok(Created {
        dir: setup.dir.take().expect("dir"),
        saved,
        pty_master,
    })
}

/// LISTEN_FDS from systemd socket activation pass through like --preserve-fds.
fn listen_fds() -> i32 {
    std::env::var("LISTEN_FDS")
        .ok()
        .and_then(|v| v.parse::<i32>().ok())
        .filter(|n| *n > 0)
        .unwrap_or(0)
}

/// Binds the start socket; sun_path holds 107 bytes, so a long state path is
/// reached through /proc/self/fd of the directory.
fn bind_start_socket(dir: &Path) -> Result<UnixListener> {
    let path = dir.join(START_SOCKET);
    let bind = |p: &Path| UnixListener::bind(p);
    let listener = if path.as_os_str().len() < 100 {
        bind(&path)
    } else {
        let d = std::fs::File::open(dir)?;
        bind(&PathBuf::from(format!(
            "/proc/self/fd/{}/{START_SOCKET}",
            d.as_raw_fd()
        )))
    };
    listener.with_context(|| format!("bind {}", path.display()))
}

pub fn connect_start_socket(dir: &Path) -> std::io::Result<UnixStream> {
    let path = dir.join(START_SOCKET);
    if path.as_os_str().len() < 100 {
        UnixStream::connect(&path)
    } else {
        let d = std::fs::File::open(dir)?;
        UnixStream::connect(format!("/proc/self/fd/{}/{START_SOCKET}", d.as_raw_fd()))
    }
}

#[repr(C)]
#[derive(Default)]
struct CloneArgs {
    flags: u64,
    pidfd: u64,
    child_tid: u64,
    parent_tid: u64,
    exit_signal: u64,
    stack: u64,
    stack_size: u64,
    tls: u64,
    set_tid: u64,
    set_tid_size: u64,
    cgroup: u64,
}

/// clone3 without a new stack: the child continues here on a copy of our
/// memory, like fork, but born in the new namespaces. Returns 0 in the child.
pub(crate) fn clone_with(flags: u64) -> Result<i32> {
    clone_into(flags, None)
}

/// clone_with, the child born in the cgroup2 directory `cgroup` when given
/// (CLONE_INTO_CGROUP: no cgroup.procs write, see cgroups::SelfJoin).
fn clone_into(flags: u64, cgroup: Option<BorrowedFd>) -> Result<i32> {
    let args = CloneArgs {
        flags: flags | cgroup.map_or(0, |_| CLONE_INTO_CGROUP),
        cgroup: cgroup.map_or(0, |fd| fd.as_raw_fd() as u64),
        // clone3 refuses an exit signal with CLONE_PARENT: the child then
        // inherits ours (the intermediate was cloned with SIGCHLD).
        exit_signal: if flags & libc::CLONE_PARENT as u64 != 0 {
            0
        } else {
            libc::SIGCHLD as u64
        },
        ..Default::default()
    };
    // SAFETY: berth is single-threaded here, so the child may run Rust code
    // (no lock can be held by another thread); args outlives the call.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_clone3,
            &args as *const CloneArgs,
            std::mem::size_of::<CloneArgs>(),
        )
    };
    if ret >= 0 {
        return Ok(ret as i32);
    }
    let err = std::io::Error::last_os_error();
    match (err.raw_os_error(), cgroup) {
        (Some(libc::ENOSYS), _) => {}
        // cgroup v2's "no internal processes": controllers are enabled for
        // its children.
        (Some(libc::EBUSY), Some(_)) => bail!(
            "clone the container init into its cgroup: {err} (a cgroup v2 with controllers enabled in its cgroup.subtree_control can't hold processes)"
        ),
        (_, Some(_)) => bail!("clone the container init into its cgroup: {err}"),
        _ => bail!("clone the container init: {err}"),
    }
    // No clone3: a seccomp profile that predates it (Docker's made it
    // ENOSYS so that glibc falls back), or valgrind. The old clone takes
    // the same flags with the exit signal in the low byte, except for
    // CLONE_NEWTIME, whose bit is part of that byte there.
    if flags & libc::CLONE_NEWTIME as u64 != 0 {
        bail!("clone the container init: clone3 is not available ({err}), and a new time namespace needs it");
    }
    // SAFETY: as above; a null stack gives fork semantics.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_clone,
            (flags | args.exit_signal) as libc::c_ulong,
            0usize,
            0usize,
            0usize,
            0usize,
        )
    };
    if ret < 0 {
        bail!(
            "clone the container init: {}",
            std::io::Error::last_os_error()
        );
    }
    if let (Some(dir), true) = (cgroup, ret > 0) {
        // Without clone3 there is no CLONE_INTO_CGROUP: move the child.
        cgroups::write_procs_at(dir, ret as i32)?;
    }
    Ok(ret as i32)
}

/// linux/sched.h: clone3's flag for `CloneArgs::cgroup`.
const CLONE_INTO_CGROUP: u64 = 0x2_0000_0000;

fn spawn_init(
    plan: &namespaces::Plan,
    ctx: init::Context,
    child_end: Channel,
    spec: &oci_spec::runtime::Spec,
    born_in: Option<BorrowedFd>,
    network_beside: bool,
) -> Result<i32> {
    // Not dumpable from before the clone until the user's program is exec'd:
    // no one in the container can ptrace the init or open its /proc files.
    // Rootless, the init turns it off itself once its id maps are written
    // (an unprivileged parent can't write the maps of a non-dumpable child).
    if !rootless::unprivileged_maps(plan) {
        nix::sys::prctl::set_dumpable(false).map_err(|e| anyhow!("PR_SET_DUMPABLE: {e}"))?;
    }
    let mut flags = plan.clone_flags;
    if network_beside {
        flags.remove(nix::sched::CloneFlags::CLONE_NEWNET);
    }
    let flags = flags.bits() as u64;
    if !needs_intermediate(plan) {
        let pid = clone_into(flags, born_in)?;
        if pid == 0 {
            init::run(ctx, child_end);
        }
        return Ok(pid);
    }

    let (mut rd, wr) = UnixStream::pair().context("socketpair")?;
    let mid = clone_with(0)?;
    if mid == 0 {
        drop(rd);
        let code = match intermediate(plan, ctx, child_end, spec, flags) {
            Ok(pid) => {
                let _ = (&wr).write_all_pid(pid);
                0
            }
            Err(e) => {
                let _ = (&wr).write_all_err(&format!("{e:#}"));
                1
            }
        };
        // SAFETY: leave without running any of the parent's destructors.
        unsafe { libc::_exit(code) };
    }
    drop(wr);
    let mut buf = String::new();
    let _ = rd.read_to_string(&mut buf);
    let _ = waitpid(Pid::from_raw(mid), None);
    match buf.strip_prefix("pid ") {
        Some(p) => p.parse().context("intermediate process sent a bad pid"),
        None => bail!(
            "{}",
            buf.strip_prefix("error ")
                .unwrap_or("intermediate process died")
        ),
    }
}

/// The intermediate process: enter the namespaces that only affect children,
/// then clone the init as our parent's child.
fn intermediate(
    plan: &namespaces::Plan,
    ctx: init::Context,
    child_end: Channel,
    spec: &oci_spec::runtime::Spec,
    flags: u64,
) -> Result<i32> {
    for kind in [
        LinuxNamespaceType::User,
        LinuxNamespaceType::Pid,
        LinuxNamespaceType::Time,
    ] {
        if let Some(j) = plan.join_of(kind) {
            namespaces::enter(j)?;
        }
    }
    if plan.new_time {
        nix::sched::unshare(namespaces::flag_of(LinuxNamespaceType::Time))
            .map_err(|e| anyhow!("create the time namespace: {e}"))?;
        namespaces::write_time_offsets(spec)?;
    }
    let pid = clone_with(flags | libc::CLONE_PARENT as u64)?;
    if pid == 0 {
        init::run(ctx, child_end);
    }
    Ok(pid)
}

trait WriteMsg {
    fn write_all_pid(self, pid: i32) -> std::io::Result<()>;
    fn write_all_err(self, e: &str) -> std::io::Result<()>;
}

impl WriteMsg for &UnixStream {
    fn write_all_pid(mut self, pid: i32) -> std::io::Result<()> {
        std::io::Write::write_all(&mut self, format!("pid {pid}").as_bytes())
    }
    fn write_all_err(mut self, e: &str) -> std::io::Result<()> {
        std::io::Write::write_all(&mut self, format!("error {e}").as_bytes())
    }
}

/// linux.uidMappings / gidMappings (config-linux.md "User namespace mappings"),
/// written by the parent, which holds the capabilities in the host namespace.
fn write_id_maps(spec: &oci_spec::runtime::Spec, pid: i32) -> Result<()> {
    let linux = spec.linux().as_ref().expect("maps need linux");
    let fmt = |maps: &Option<Vec<oci_spec::runtime::LinuxIdMapping>>| {
        maps.iter()
            .flatten()
            .map(|m| format!("{} {} {}\n", m.container_id(), m.host_id(), m.size()))
            .collect::<String>()
    };
    let gid = fmt(linux.gid_mappings());
    let uid = fmt(linux.uid_mappings());
    std::fs::write(format!("/proc/{pid}/gid_map"), &gid)
        .map_err(|e| anyhow!("write linux.gidMappings: {e}"))?;
    std::fs::write(format!("/proc/{pid}/uid_map"), &uid)
        .map_err(|e| anyhow!("write linux.uidMappings: {e}"))?;
    Ok(())
}

/// `--pidfd-socket` (runc 1.2): a pidfd of the init, sent like the console fd.
fn send_pidfd(sock: &Path, pid: i32) -> Result<()> {
    let pidfd = crate::process::pidfd_open(pid).map_err(|e| anyhow!("pidfd_open {pid}: {e}"))?;
    let conn = console::connect_console_socket(sock)
        .with_context(|| format!("--pidfd-socket {}", sock.display()))?;
    console::send_fd(conn.as_raw_fd(), &pidfd, "pidfd")
}

/// The pid file holds the bare number, no newline (go-runc parses it with
/// Atoi), written to a temp file and renamed so a reader never sees it empty.
pub fn write_pid_file(path: &Path, pid: i32) -> Result<()> {
    let path = if path.is_absolute() {
        path.to_path_buf()
    } else {
        std::env::current_dir()?.join(path)
    };
    let name = path
        .file_name()
        .ok_or_else(|| anyhow!("--pid-file {} has no file name", path.display()))?;
    let tmp = path.with_file_name(format!(".{}", name.to_string_lossy()));
    std::fs::write(&tmp, pid.to_string())
        .map_err(|e| anyhow!("write pid file {}: {e}", path.display()))?;
    std::fs::rename(&tmp, &path).map_err(|e| anyhow!("write pid file {}: {e}", path.display()))
}
