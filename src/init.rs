//! The container's init: the child that `create` clones. It sets up the
//! container from the inside, in the order the spec requires, then waits for
//! `start` and becomes the user's program.
//!
//! Runs single-threaded in a copy of berth's memory. Errors before `Ready` go
//! to the parent over the sync channel; errors after it (startContainer hooks,
//! execve) go to the `start` command over its connection.

use crate::namespaces::Plan;
use crate::state::{OciState, Status};
use crate::sync::{Channel, Message};
use crate::{console, hooks, namespaces, process, process_attrs, rootfs, seccomp};
use anyhow::{anyhow, bail, Result};
use oci_spec::runtime::{LinuxNamespaceType, Spec};
use std::io::{Read, Write};
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::Path;

pub struct Context<'a> {
    /// Per entry of `mounts`: the user namespace of its idmapping, if any.
    pub idmap_userns: &'a [Option<OwnedFd>],
    pub spec: &'a Spec,
    pub bundle: &'a Path,
    pub rootfs: &'a Path,
    pub plan: &'a Plan,
    /// The start socket, bound by the parent in the state dir.
    pub listener: RawFd,
    /// Where the pty master goes when process.terminal is set.
    pub console: Option<RawFd>,
    pub no_pivot: bool,
    pub no_new_keyring: bool,
    /// fds 3 .. 3+preserve_fds stay open for the user's program.
    pub preserve_fds: i32,
    /// linux.seccomp, compiled by `create`.
    pub seccomp: Option<&'a seccomp::Filter>,
    /// Our connection to linux.seccomp.listenerPath (SCMP_ACT_NOTIFY).
    pub seccomp_listener: Option<RawFd>,
    /// The v1 `tasks` files the init writes itself into on `Joined`
    /// (cgroups::SelfJoin); empty when `create` moves it.
    pub cgroup_tasks: &'a [std::path::PathBuf],
    /// The init was cloned without its new network namespace: `create`
    /// makes it beside (namespaces::NetworkBeside) and sends it with `Joined`.
    pub network_from_parent: bool,
}

/// Never returns: the init either becomes the user's program or exits.
pub fn run(ctx: Context, mut chan: Channel) -> ! {
    // Keep only stdio, the preserved fds and our own channels: the state
    // dir's lock, and anything berth's caller leaked, must not live on in
    // the container.
    let mut keep = vec![chan.as_raw_fd(), ctx.listener];
    keep.extend(ctx.console);
    keep.extend(ctx.seccomp_listener);
    // The namespaces to join by path are entered below; their fds are
    // O_CLOEXEC, so none of them reaches the user's program.
    keep.extend(ctx.plan.joins.iter().map(|j| j.fd.as_raw_fd()));
    keep.extend(ctx.idmap_userns.iter().flatten().map(|f| f.as_raw_fd()));
    process::close_fds_except(3 + ctx.preserve_fds, &mut keep);
    // A session of its own, always (runc's init does the same): the container
    // must not share berth's caller's session or process group, and CRIU
    // refuses to dump a tree whose session leader is outside its pid namespace.
    let _ = nix::unistd::setsid();
    let code = match set_up(&ctx, &mut chan) {
        Ok((state, path)) => {
            drop(chan);
            wait_for_start_and_exec(&ctx, state, &path)
        }
        Err(e) => {
            let _ = chan.send(&Message::Error(format!("{e:#}")));
            1
        }
    };
    // SAFETY: leave without unwinding into the parent's copy of the stack.
    unsafe { libc::_exit(code) }
}

fn set_up(ctx: &Context, chan: &mut Channel) -> Result<(OciState, std::path::PathBuf)> {
    let spec = ctx.spec;
    let process = spec.process().as_ref().expect("checked by bundle::load");

    let state_json = match chan.recv()? {
        Some(Message::Go(s)) => s,
        Some(Message::Error(e)) => bail!(e),
        Some(m) => bail!("expected Go, got {m:?}"),
        None => bail!("berth create exited"),
    };
    let state: OciState = serde_json::from_str(&state_json)?;
    // A rootless create left us dumpable so that it could write our id maps
    // (done now): from here on, as in the root case, no one may ptrace us.
    nix::sys::prctl::set_dumpable(false).map_err(|e| anyhow!("PR_SET_DUMPABLE: {e}"))?;

    if ctx.plan.new_user {
        // Become root of the new user namespace (the maps are written now).
        let root_gid = nix::unistd::Gid::from_raw(0);
        let root_uid = nix::unistd::Uid::from_raw(0);
        nix::unistd::setresgid(root_gid, root_gid, root_gid)
            .map_err(|e| anyhow!("setgid 0 in the user namespace: {e} (is gid 0 mapped?)"))?;
        nix::unistd::setresuid(root_uid, root_uid, root_uid)
            .map_err(|e| anyhow!("setuid 0 in the user namespace: {e} (is uid 0 mapped?)"))?;
    }
    for join in &ctx.plan.joins {
        match join.kind {
            // Entered before the clone (they apply to children only).
            LinuxNamespaceType::User | LinuxNamespaceType::Pid | LinuxNamespaceType::Time => {}
            _ => namespaces::enter(join)?,
        }
    }
    let joined = JoinedGate {
        chan: std::cell::RefCell::new(chan),
        joined: std::cell::Cell::new(false),
        new_cgroupns: ctx.plan.new_cgroup,
        network_from_parent: ctx.network_from_parent,
        tasks: ctx.cgroup_tasks,
    };
    let wait_for_joined = || joined.wait();

    let rootfs_ctx = rootfs::RootfsContext {
        spec,
        bundle: ctx.bundle,
        rootfs: ctx.rootfs,
        in_new_userns: ctx.plan.new_user || ctx.plan.join_of(LinuxNamespaceType::User).is_some(),
        has_cgroupns: ctx.plan.new_cgroup || ctx.plan.join_of(LinuxNamespaceType::Cgroup).is_some(),
        idmap_userns: ctx.idmap_userns,
        wait_for_joined: &wait_for_joined,
    };
    if ctx.plan.new_mount {
        rootfs::prepare_rootfs(&rootfs_ctx)?;
    }
    joined.wait()?;
    let chan = joined.chan.into_inner();

    // runtime.md "Lifecycle" 3-4: the parent runs prestart and createRuntime.
    chan.send(&Message::RunHooks)?;
    chan.expect(Message::HooksDone)?;
    // Step 5: createContainer hooks, in the container's namespaces, before pivot_root.
    if let Some(h) = spec.hooks() {
        hooks::run_hooks(
            h.create_container().as_ref(),
            &state_as_seen_inside(&state)?,
            "createContainer",
        )?;
    }

    if ctx.plan.new_mount {
        rootfs::enter_rootfs(ctx.rootfs, ctx.no_pivot)?;
    }
    // Through the container's own /proc, before finish_rootfs makes
    // /proc/sys read-only (it is in the default linux.readonlyPaths).
    set_sysctls(spec)?;
    if ctx.plan.new_mount {
        rootfs::finish_rootfs(spec)?;
    }

    set_hostname(ctx)?;

    if process.terminal() == Some(true) {
        let sock = ctx
            .console
            .ok_or_else(|| anyhow!("process.terminal needs a console socket"))?;
        let (master, slave_path) = console::open_pty()?;
        if let Some(size) = process.console_size() {
            console::set_console_size(&master, size.height(), size.width())?;
        }
        // The peer through the master (TIOCGPTPEER), not by path: nothing in
        // the container's /dev can redirect it.
        let slave = console::open_pty_peer(master.as_fd())?;
        console::send_fd(sock, &master, &slave_path.to_string_lossy())?;
        drop(master);
        if ctx.plan.new_mount {
            console::mount_console(slave.as_fd())?;
        }
        console::make_controlling_terminal(slave)?;
    }
    if let Some(fd) = ctx.console {
        // SAFETY: the console fd is ours (inherited across the clone).
        drop(unsafe { OwnedFd::from_raw_fd(fd) });
    }

    if !ctx.no_new_keyring {
        // The keyring is created with the process label, then keys the
        // init itself might make get its own context again.
        process_attrs::set_selinux_keycreate(process, true)?;
        join_session_keyring(&state.id)?;
        process_attrs::set_selinux_keycreate(process, false)?;
    }
    process::set_oom_score_adj(process)?;
    process::set_rlimits(process)?;
    // While still root in our namespaces: a lower nice, a real-time policy
    // or the RT io class need CAP_SYS_NICE / CAP_SYS_ADMIN, which
    // switch_user may drop. All of these survive execve.
    process_attrs::apply_personality(spec)?;
    process_attrs::apply_io_priority(process)?;
    process_attrs::apply_scheduler(process)?;
    process_attrs::apply_memory_policy(spec)?;
    // Takes effect at the execve; written before seccomp and switch_user,
    // as runc does.
    process_attrs::apply_apparmor(process)?;
    process_attrs::apply_selinux(process)?;
    let setgroups_allowed = !crate::procfs::read_to_string("/proc/self/setgroups")
        .map(|s| s.trim() == "deny")
        .unwrap_or(false);
    if !no_new_privileges(ctx) {
        // Without noNewPrivileges, loading a filter takes CAP_SYS_ADMIN,
        // which switch_user may drop: load it now (runc does the same).
        load_seccomp(ctx, &state)?;
    }
    process::switch_user(process, setgroups_allowed)?;
    process::chdir_cwd(process)?;
    let path = process::find_executable(process)?;
    process::set_no_new_privileges(process)?;

    chan.send(&Message::Ready)?;
    Ok((state, path))
}

/// The init sets up its mounts while `create` puts it in its cgroup (and
/// makes its network namespace, see namespaces::NetworkBeside); what
/// depends on them waits here for `Joined` first: the network namespace,
/// entered at once; the cgroup namespace, whose root is the cgroup the init
/// is in when it is made; cgroup mounts, which show that namespace or the
/// container's cgroup directories; sysfs, which shows the network namespace
/// of whoever mounts it; and everything after the rootfs.
struct JoinedGate<'a> {
    chan: std::cell::RefCell<&'a mut Channel>,
    joined: std::cell::Cell<bool>,
    new_cgroupns: bool,
    network_from_parent: bool,
    tasks: &'a [std::path::PathBuf],
}

impl JoinedGate<'_> {
    fn wait(&self) -> Result<()> {
        if self.joined.get() {
            return Ok(());
        }
        let mut fds = self.chan.borrow_mut().expect_with_fds(Message::Joined)?;
        match (self.network_from_parent, fds.pop(), fds.is_empty()) {
            (true, Some(net), true) => {
                nix::sched::setns(&net, nix::sched::CloneFlags::CLONE_NEWNET)
                    .map_err(|e| anyhow!("enter the container's network namespace: {e}"))?;
            }
            (false, None, _) => {}
            _ => bail!("Joined came with the wrong descriptors"),
        }
        self.joined.set(true);
        crate::cgroups::join_self(self.tasks)?;
        if self.new_cgroupns {
            nix::sched::unshare(namespaces::flag_of(LinuxNamespaceType::Cgroup))
                .map_err(|e| anyhow!("create the cgroup namespace: {e}"))?;
        }
        Ok(())
    }
}

/// A session keyring of its own, so the container can't see or use the
/// keys of whoever ran berth (runc does the same unless --no-new-keyring).
/// A new session keyring, so the container cannot read or add keys of the
/// session berth was started from. Named `_ses.<id>` (as runc does) so the
/// host can tell which container a keyring belongs to.
fn join_session_keyring(id: &str) -> Result<()> {
    let name = std::ffi::CString::new(format!("_ses.{id}"))
        .map_err(|_| anyhow!("container id {id:?} contains a NUL"))?;
    // SAFETY: KEYCTL_JOIN_SESSION_KEYRING takes a NUL-terminated name.
    let r = unsafe {
        libc::syscall(
            libc::SYS_keyctl,
            libc::KEYCTL_JOIN_SESSION_KEYRING,
            name.as_ptr(),
        )
    };
    if r < 0 {
        let e = std::io::Error::last_os_error();
        // No keyring support (ENOSYS) or disallowed (a seccomp'd or nested
        // host): there is nothing to isolate from, carry on.
        if !matches!(
            e.raw_os_error(),
            Some(libc::ENOSYS) | Some(libc::EACCES) | Some(libc::EPERM)
        ) {
            bail!("join a new session keyring: {e}");
        }
    }
    Ok(())
}

fn set_hostname(ctx: &Context) -> Result<()> {
    let spec = ctx.spec;
    let uts_ns = ctx.plan.new_uts || ctx.plan.join_of(LinuxNamespaceType::Uts).is_some();
    if let Some(name) = spec.hostname().as_ref().filter(|h| !h.is_empty()) {
        if !uts_ns {
            bail!("hostname {name:?} needs a uts namespace in linux.namespaces");
        }
        nix::unistd::sethostname(name).map_err(|e| anyhow!("set hostname {name:?}: {e}"))?;
    }
    if let Some(name) = spec.domainname().as_ref().filter(|h| !h.is_empty()) {
        if !uts_ns {
            bail!("domainname {name:?} needs a uts namespace in linux.namespaces");
        }
        // SAFETY: setdomainname reads len bytes from a valid buffer.
        let r = unsafe { libc::setdomainname(name.as_ptr().cast(), name.len()) };
        if r != 0 {
            bail!(
                "set domainname {name:?}: {}",
                std::io::Error::last_os_error()
            );
        }
    }
    Ok(())
}

/// linux.sysctl: written after the pivot, through the container's own /proc.
fn set_sysctls(spec: &Spec) -> Result<()> {
    let Some(sysctl) = spec.linux().as_ref().and_then(|l| l.sysctl().as_ref()) else {
        return Ok(());
    };
    for (key, value) in sysctl {
        // Keys were checked by bundle::load (namespaced, well-formed).
        let path = format!("/proc/sys/{}", key.replace('.', "/"));
        std::fs::write(&path, value).map_err(|e| anyhow!("set sysctl {key}={value}: {e}"))?;
    }
    Ok(())
}

/// The state for hooks run in the container's namespaces: runtime.md "State"
/// gives them the pid "as seen by the container", which is ours (1 in a new
/// pid namespace).
fn state_as_seen_inside(state: &OciState) -> Result<Vec<u8>> {
    let mut inside = state.clone();
    inside.pid = std::process::id() as i32;
    Ok(serde_json::to_vec(&inside)?)
}

fn no_new_privileges(ctx: &Context) -> bool {
    ctx.spec
        .process()
        .as_ref()
        .and_then(|p| p.no_new_privileges())
        == Some(true)
}

/// Loads linux.seccomp into the init and, for SCMP_ACT_NOTIFY, hands the
/// listener fd to the agent with the container process state (the pid in
/// `state` is the host's, "as seen by the runtime").
fn load_seccomp(ctx: &Context, state: &OciState) -> Result<()> {
    let Some(filter) = ctx.seccomp else {
        return Ok(());
    };
    let notify_fd = seccomp::load(filter)?;
    if let (Some(fd), Some(sock)) = (notify_fd, ctx.seccomp_listener) {
        // SAFETY: the connection was made by create for us alone.
        let sock = unsafe { OwnedFd::from_raw_fd(sock) };
        let metadata = ctx
            .spec
            .linux()
            .as_ref()
            .and_then(|l| l.seccomp().as_ref())
            .and_then(|s| s.listener_metadata().clone());
        seccomp::send_to_listener(sock, &fd, metadata.as_deref(), state)?;
    }
    Ok(())
}

/// Blocks until `start` connects, runs the startContainer hooks and execs.
/// A failure is written back to `start`, which reports it.
fn wait_for_start_and_exec(ctx: &Context, mut state: OciState, path: &Path) -> i32 {
    // SAFETY: the listener fd was inherited from the parent and is ours now.
    let listener = unsafe { UnixListener::from_raw_fd(ctx.listener) };
    let mut conn: UnixStream = loop {
        match listener.accept() {
            Ok((c, _)) => break c,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(_) => return 1,
        }
    };
    drop(listener);
    let mut go = [0u8; 1];
    if conn.read_exact(&mut go).is_err() {
        return 1;
    }
    let process = ctx.spec.process().as_ref().expect("checked");
    let result = (|| -> Result<()> {
        if let Some(h) = ctx.spec.hooks() {
            state.status = Status::Created;
            let json = state_as_seen_inside(&state)?;
            hooks::run_hooks(h.start_container().as_ref(), &json, "startContainer")?;
        }
        if no_new_privileges(ctx) {
            // As late as possible: berth's own setup and the hooks are not
            // the container's program, and the profile needn't allow them.
            state.status = Status::Created;
            load_seccomp(ctx, &state)?;
        }
        // Only returns on failure; on success the connection closes with
        // CLOEXEC and `start` reads EOF.
        Err(process::exec(path, process, 3 + ctx.preserve_fds))
    })();
    let msg = match result {
        Err(e) => format!("{e:#}"),
        Ok(()) => "exec returned".to_string(),
    };
    let _ = conn.write_all(msg.as_bytes());
    1
}
