//! linux.namespaces (config-linux.md "Namespaces"): which to create, which to
//! join by `path`, and who does it.
//!
//! Namespaces are created by the clone that makes the init, except two that
//! must be entered *after* the init exists: cgroup (so its root is the
//! container's cgroup, which the init joins first) and time (its offsets must
//! be written before any process is in it, so the parent unshares it and the
//! init is born inside). Joining pid and time namespaces changes only the
//! caller's children, so the parent joins those before the clone; joining a
//! user namespace happens in a short-lived intermediate process (see create.rs).
//!
//! A new network namespace costs more to make than the rest of the clone
//! (every pernet subsystem sets itself up: loopback, ipv4/ipv6 with their
//! sysctl tables, netfilter...). Where it belongs to berth's own user
//! namespace, `create` makes it on a thread of its own while it makes the
//! cgroups and the init mounts, instead of in the clone ([`NetworkBeside`]).

use anyhow::{anyhow, bail, Context, Result};
use nix::sched::CloneFlags;
use oci_spec::runtime::{LinuxNamespaceType, Spec};
use std::fs::File;
use std::os::fd::{AsFd, OwnedFd};

pub struct Join {
    pub kind: LinuxNamespaceType,
    pub fd: OwnedFd,
}

pub struct Plan {
    /// Namespaces to create with the clone.
    pub clone_flags: CloneFlags,
    pub new_user: bool,
    pub new_net: bool,
    pub new_pid: bool,
    pub new_mount: bool,
    pub new_uts: bool,
    pub new_cgroup: bool,
    pub new_time: bool,
    /// Namespaces to join, opened before any of berth's own namespaces change.
    pub joins: Vec<Join>,
}

impl Plan {
    pub fn join_of(&self, kind: LinuxNamespaceType) -> Option<&Join> {
        self.joins.iter().find(|j| j.kind == kind)
    }
    pub fn has_pid_ns(&self) -> bool {
        self.new_pid || self.join_of(LinuxNamespaceType::Pid).is_some()
    }
}

pub fn flag_of(kind: LinuxNamespaceType) -> CloneFlags {
    match kind {
        LinuxNamespaceType::Mount => CloneFlags::CLONE_NEWNS,
        LinuxNamespaceType::Cgroup => CloneFlags::CLONE_NEWCGROUP,
        LinuxNamespaceType::Uts => CloneFlags::CLONE_NEWUTS,
        LinuxNamespaceType::Ipc => CloneFlags::CLONE_NEWIPC,
        LinuxNamespaceType::User => CloneFlags::CLONE_NEWUSER,
        LinuxNamespaceType::Pid => CloneFlags::CLONE_NEWPID,
        LinuxNamespaceType::Network => CloneFlags::CLONE_NEWNET,
        LinuxNamespaceType::Time => CloneFlags::from_bits_retain(libc::CLONE_NEWTIME),
    }
}

pub fn name_of(kind: LinuxNamespaceType) -> &'static str {
    match kind {
        LinuxNamespaceType::Mount => "mount",
        LinuxNamespaceType::Cgroup => "cgroup",
        LinuxNamespaceType::Uts => "uts",
        LinuxNamespaceType::Ipc => "ipc",
        LinuxNamespaceType::User => "user",
        LinuxNamespaceType::Pid => "pid",
        LinuxNamespaceType::Network => "network",
        LinuxNamespaceType::Time => "time",
    }
}

pub fn plan(spec: &Spec) -> Result<Plan> {
    let mut plan = Plan {
        clone_flags: CloneFlags::empty(),
        new_user: false,
        new_net: false,
        new_pid: false,
        new_mount: false,
        new_uts: false,
        new_cgroup: false,
        new_time: false,
        joins: Vec::new(),
    };
    let mut seen: Vec<LinuxNamespaceType> = Vec::new();
    let namespaces = spec
        .linux()
        .as_ref()
        .and_then(|l| l.namespaces().clone())
        .unwrap_or_default();
    for ns in &namespaces {
        let kind = ns.typ();
        if seen.contains(&kind) {
            bail!(
                "linux.namespaces: the {} namespace is listed twice",
                name_of(kind)
            );
        }
        seen.push(kind);
        match ns.path() {
            Some(path) if !path.as_os_str().is_empty() => {
                let f = File::open(path).with_context(|| {
                    format!("open {} namespace path {}", name_of(kind), path.display())
                })?;
                plan.joins.push(Join { kind, fd: f.into() });
            }
            _ => match kind {
                LinuxNamespaceType::Cgroup => plan.new_cgroup = true,
                LinuxNamespaceType::Time => plan.new_time = true,
                other => {
                    plan.clone_flags |= flag_of(other);
                    match other {
                        LinuxNamespaceType::User => plan.new_user = true,
                        LinuxNamespaceType::Network => plan.new_net = true,
                        LinuxNamespaceType::Pid => plan.new_pid = true,
                        LinuxNamespaceType::Mount => plan.new_mount = true,
                        LinuxNamespaceType::Uts => plan.new_uts = true,
                        _ => {}
                    }
                }
            },
        }
    }
    let linux = spec.linux().as_ref();
    let has_maps = linux
        .map(|l| l.uid_mappings().is_some() || l.gid_mappings().is_some())
        .unwrap_or(false);
    if has_maps && !plan.new_user {
        bail!("linux.uidMappings/gidMappings need a new user namespace in linux.namespaces");
    }
    if plan.new_user && !has_maps {
        bail!("a new user namespace needs linux.uidMappings and linux.gidMappings");
    }
    if linux.and_then(|l| l.time_offsets().as_ref()).is_some() && !plan.new_time {
        bail!("linux.timeOffsets needs a new time namespace in linux.namespaces");
    }
    if !plan.new_mount && plan.join_of(LinuxNamespaceType::Mount).is_none() {
        bail!(
            "linux.namespaces: berth needs a mount namespace (new or joined) to set up the rootfs"
        );
    }
    Ok(plan)
}

/// The container's new network namespace, made on a thread of `create`
/// that runs from just after the config is checked until `Joined`: beside
/// the seccomp compile, the state directory, the init's clone (without
/// CLONE_NEWNET) and the cgroups, while the init mounts. The init enters it
/// on `Joined`, before any mount that would capture its network namespace
/// (sysfs) and before the hooks. Only for a namespace owned by berth's own
/// user namespace: one the container's new user namespace must own is made
/// by the clone.
///
/// The thread is not a Rust thread: the init's clone copies berth's memory
/// while it runs, and a copy taken while another thread holds a lock (the
/// allocator's, say) would leave that lock held forever in the init. So the
/// thread is a bare clone(2) that shares berth's memory, fd table and TLS
/// and only ever executes raw system calls: it takes no lock, never
/// allocates and never touches errno.
pub struct NetworkBeside {
    shared: Box<BesideShared>,
    /// The thread's stack (mmap'd), unmapped once the thread is gone.
    stack: *mut libc::c_void,
}

#[repr(C)]
struct BesideShared {
    /// The thread's tid while it runs: the kernel sets it at the clone
    /// (CLONE_PARENT_SETTID) and clears it, with a futex wake, when the
    /// thread exits (CLONE_CHILD_CLEARTID), as for pthread_join.
    tid: std::sync::atomic::AtomicI32,
    /// The namespace's fd, or -errno of the call that failed.
    result: std::sync::atomic::AtomicIsize,
    /// The CPU `create` ran on when it started the thread (-1: unknown).
    creator_cpu: i32,
}

const BESIDE_STACK: usize = 64 * 1024;

impl NetworkBeside {
    pub fn start() -> Result<NetworkBeside> {
        use std::sync::atomic::{AtomicI32, AtomicIsize};
        let shared = Box::new(BesideShared {
            tid: AtomicI32::new(0),
            result: AtomicIsize::new(-(libc::ECHILD as isize)),
            // SAFETY: no arguments; -1 on failure.
            creator_cpu: unsafe { libc::sched_getcpu() },
        });
        // SAFETY: a fresh anonymous mapping, checked below.
        let stack = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                BESIDE_STACK,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_STACK,
                -1,
                0,
            )
        };
        if stack == libc::MAP_FAILED {
            bail!(
                "a stack for the network namespace thread: {}",
                std::io::Error::last_os_error()
            );
        }
        let flags = libc::CLONE_VM
            | libc::CLONE_FS
            | libc::CLONE_FILES
            | libc::CLONE_SIGHAND
            | libc::CLONE_THREAD
            | libc::CLONE_SYSVSEM
            | libc::CLONE_PARENT_SETTID
            | libc::CLONE_CHILD_CLEARTID;
        let tid_ptr = shared.tid.as_ptr();
        // Every signal blocked in the thread (it inherits the mask): a
        // handler of berth's must never run on it.
        let mut old = std::mem::MaybeUninit::<libc::sigset_t>::uninit();
        // SAFETY: sigfillset/pthread_sigmask on valid sigsets; clone gets a
        // stack top inside the mapping (16-byte aligned), a function that
        // only makes raw system calls, and pointers into `shared`, which
        // lives in the heap until `finish` or `drop` has seen the thread
        // exit.
        let tid = unsafe {
            let mut all = std::mem::MaybeUninit::<libc::sigset_t>::uninit();
            libc::sigfillset(all.as_mut_ptr());
            libc::pthread_sigmask(libc::SIG_SETMASK, all.as_ptr(), old.as_mut_ptr());
            let tid = libc::clone(
                make_network_namespace,
                stack.cast::<u8>().add(BESIDE_STACK).cast(),
                flags,
                (&*shared as *const BesideShared).cast_mut().cast(),
                tid_ptr,
                std::ptr::null_mut::<libc::c_void>(),
                tid_ptr,
            );
            libc::pthread_sigmask(libc::SIG_SETMASK, old.as_ptr(), std::ptr::null_mut());
            tid
        };
        if tid < 0 {
            let e = std::io::Error::last_os_error();
            // SAFETY: no thread uses the mapping.
            unsafe { libc::munmap(stack, BESIDE_STACK) };
            bail!("start a thread to create the network namespace: {e}");
        }
        Ok(NetworkBeside { shared, stack })
    }

    /// Waits for the namespace; the fd is all that keeps it alive until the
    /// init has entered it.
    pub fn finish(self) -> Result<OwnedFd> {
        let r = self.take_result();
        if r < 0 {
            bail!(
                "create the network namespace: {}",
                std::io::Error::from_raw_os_error(-r as i32)
            );
        }
        // SAFETY: the thread opened this fd in our shared table, for us.
        Ok(unsafe { <OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(r as i32) })
    }

    /// The thread's result once it has exited, taken: a second call (the
    /// drop after `finish`) finds nothing to close.
    fn take_result(&self) -> isize {
        self.wait_for_exit();
        self.shared.result.swap(
            -(libc::ECHILD as isize),
            std::sync::atomic::Ordering::Acquire,
        )
    }

    fn wait_for_exit(&self) {
        use std::sync::atomic::Ordering;
        loop {
            let tid = self.shared.tid.load(Ordering::Acquire);
            if tid == 0 {
                return;
            }
            // SAFETY: FUTEX_WAIT on a word of ours; it returns at once if
            // the word is no longer `tid` (EAGAIN), or when the kernel
            // clears it at the thread's exit.
            unsafe {
                libc::syscall(
                    libc::SYS_futex,
                    self.shared.tid.as_ptr(),
                    libc::FUTEX_WAIT,
                    tid,
                    std::ptr::null::<libc::timespec>(),
                );
            }
        }
    }
}

impl Drop for NetworkBeside {
    fn drop(&mut self) {
        // A create that failed before `finish`: the thread must be gone
        // before its stack is, and its namespace is not wanted.
        let r = self.take_result();
        // SAFETY: the fd (if any) is ours and used by no one; the mapping
        // is no thread's stack any more.
        unsafe {
            if r >= 0 {
                libc::close(r as i32);
            }
            libc::munmap(self.stack, BESIDE_STACK);
        }
    }
}

/// The thread of [`NetworkBeside`]. It runs on berth's memory with berth's
/// TLS pointer, so it does nothing but raw system calls and one atomic
/// store: no libc (errno is thread-local), no allocation, no panic.
extern "C" fn make_network_namespace(arg: *mut libc::c_void) -> libc::c_int {
    // SAFETY: `arg` is the BesideShared that outlives this thread.
    let shared = unsafe { &*(arg as *const BesideShared) };
    // A new thread starts on its creator's CPU, and on a small machine the
    // idle CPU may not pull either of them for a while: `create` and the
    // init would wait behind this thread's few hundred microseconds in the
    // kernel. So it moves off that CPU first, if it may run elsewhere.
    let mut cpus = [0u64; 16];
    // SAFETY: the buffer is ours and as large as we say.
    let n = unsafe {
        raw_syscall4(
            libc::SYS_sched_getaffinity,
            0,
            std::mem::size_of_val(&cpus),
            cpus.as_mut_ptr() as usize,
            0,
        )
    };
    let creator = shared.creator_cpu;
    if n > 0 && (0..1024).contains(&creator) {
        let (word, bit) = (creator as usize / 64, 1u64 << (creator % 64));
        cpus[word] &= !bit;
        if cpus.iter().any(|w| *w != 0) {
            // SAFETY: as above; failing leaves the thread where it is.
            unsafe {
                raw_syscall4(
                    libc::SYS_sched_setaffinity,
                    0,
                    n as usize,
                    cpus.as_ptr() as usize,
                    0,
                );
            }
        }
    }
    // SAFETY: unshare and openat with a static NUL-terminated path.
    let mut r = unsafe { raw_syscall4(libc::SYS_unshare, libc::CLONE_NEWNET as usize, 0, 0, 0) };
    if r >= 0 {
        // thread-self: the namespace is this thread's, not berth's.
        let path = c"/proc/thread-self/ns/net";
        r = unsafe {
            raw_syscall4(
                libc::SYS_openat,
                libc::AT_FDCWD as usize,
                path.as_ptr() as usize,
                (libc::O_RDONLY | libc::O_CLOEXEC) as usize,
                0,
            )
        };
    }
    shared.result.store(r, std::sync::atomic::Ordering::Release);
    0
}

/// A system call without libc: the result, or -errno.
///
/// # Safety
/// The arguments must be valid for system call `nr`.
#[inline(always)]
unsafe fn raw_syscall4(nr: libc::c_long, a1: usize, a2: usize, a3: usize, a4: usize) -> isize {
    let ret: isize;
    // SAFETY: the x86_64 system call convention; rcx and r11 are clobbered.
    unsafe {
        std::arch::asm!(
            "syscall",
            inlateout("rax") nr as isize => ret,
            in("rdi") a1,
            in("rsi") a2,
            in("rdx") a3,
            in("r10") a4,
            lateout("rcx") _,
            lateout("r11") _,
            options(nostack),
        );
    }
    ret
}

/// setns(2) into a namespace opened by [`plan`].
pub fn enter(join: &Join) -> Result<()> {
    nix::sched::setns(join.fd.as_fd(), flag_of(join.kind)).map_err(|e| {
        anyhow!(
            "join the {} namespace given by path: {e}",
            name_of(join.kind)
        )
    })
}

/// Writes linux.timeOffsets into the (just unshared, still empty) time namespace.
pub fn write_time_offsets(spec: &Spec) -> Result<()> {
    let Some(offsets) = spec
        .linux()
        .as_ref()
        .and_then(|l| l.time_offsets().as_ref())
    else {
        return Ok(());
    };
    let mut text = String::new();
    for (clock, off) in offsets {
        if clock != "monotonic" && clock != "boottime" {
            bail!("linux.timeOffsets: unknown clock {clock:?} (monotonic or boottime)");
        }
        text.push_str(&format!(
            "{clock} {} {}\n",
            off.secs().unwrap_or(0),
            off.nanosecs().unwrap_or(0)
        ));
    }
    std::fs::write("/proc/self/timens_offsets", text)
        .map_err(|e| anyhow!("write linux.timeOffsets: {e}"))
}
