//! The container process's own attributes (config.md "Process"): rlimits,
//! oomScoreAdj, user and groups, capabilities, umask, cwd, noNewPrivileges,
//! and finally the execve of `args` with exactly `env`.

use anyhow::{anyhow, bail, Context, Result};
use caps::{CapSet, Capability, CapsHashSet};
use nix::unistd::{Gid, Uid};
use oci_spec::runtime::{LinuxCapabilities, PosixRlimitType, Process};
use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

pub fn set_rlimits(process: &Process) -> Result<()> {
    for rl in process.rlimits().iter().flatten() {
        let resource = rlimit_resource(rl.typ());
        let lim = libc::rlimit {
            rlim_cur: rl.soft(),
            rlim_max: rl.hard(),
        };
        // SAFETY: setrlimit reads a valid rlimit struct.
        if unsafe { libc::setrlimit(resource, &lim) } != 0 {
            let e = std::io::Error::last_os_error();
            // EPERM here means raising the hard limit, which takes
            // CAP_SYS_RESOURCE: say so rather than leave a bare errno.
            let hint = if e.raw_os_error() == Some(libc::EPERM) {
                " (raising a hard limit needs CAP_SYS_RESOURCE)"
            } else {
                ""
            };
            bail!(
                "process.rlimits: set {} to soft {} hard {}: {e}{hint}",
                rl.typ(),
                rl.soft(),
                rl.hard(),
            );
        }
    }
    Ok(())
}

fn rlimit_resource(t: PosixRlimitType) -> libc::__rlimit_resource_t {
    use PosixRlimitType::*;
    match t {
        RlimitCpu => libc::RLIMIT_CPU,
        RlimitFsize => libc::RLIMIT_FSIZE,
        RlimitData => libc::RLIMIT_DATA,
        RlimitStack => libc::RLIMIT_STACK,
        RlimitCore => libc::RLIMIT_CORE,
        RlimitRss => libc::RLIMIT_RSS,
        RlimitNproc => libc::RLIMIT_NPROC,
        RlimitNofile => libc::RLIMIT_NOFILE,
        RlimitMemlock => libc::RLIMIT_MEMLOCK,
        RlimitAs => libc::RLIMIT_AS,
        RlimitLocks => libc::RLIMIT_LOCKS,
        RlimitSigpending => libc::RLIMIT_SIGPENDING,
        RlimitMsgqueue => libc::RLIMIT_MSGQUEUE,
        RlimitNice => libc::RLIMIT_NICE,
        RlimitRtprio => libc::RLIMIT_RTPRIO,
        RlimitRttime => libc::RLIMIT_RTTIME,
    }
}

pub fn set_oom_score_adj(process: &Process) -> Result<()> {
    if let Some(adj) = process.oom_score_adj() {
        std::fs::write("/proc/self/oom_score_adj", adj.to_string())
            .map_err(|e| anyhow!("set oomScoreAdj {adj}: {e}"))?;
    }
    Ok(())
}

fn to_caps(set: &Option<oci_spec::runtime::Capabilities>) -> Result<CapsHashSet> {
    let mut out = CapsHashSet::new();
    for cap in set.iter().flatten() {
        // oci-spec and caps spell capabilities the same way ("CAP_CHOWN").
        let name = serde_json::to_value(cap)?;
        let name = name.as_str().unwrap_or_default();
        let c: Capability = name
            .parse()
            .map_err(|_| anyhow!("unknown capability {name:?}"))?;
        out.insert(c);
    }
    Ok(out)
}

/// Switches to `process.user` keeping exactly the configured capabilities
/// (config.md "User", config-linux "Capabilities"). Order matters: the bounding
/// set is cut while we still hold CAP_SETPCAP; PR_SET_KEEPCAPS keeps the
/// permitted set across setuid; effective then permitted then inheritable
/// (effective must stay a subset of permitted); ambient last, as it needs
/// both permitted and inheritable.
pub fn switch_user(process: &Process, setgroups_allowed: bool) -> Result<()> {
    let user = process.user();
    let wanted = process.capabilities().as_ref();
    let ids = resolve_user(user)?;

    if let Some(c) = wanted {
        let bounding = to_caps(c.bounding())?;
        for cap in caps::all() {
            if !bounding.contains(&cap) {
                // A kernel older than the caps crate lacks some: not an error.
                if caps::has_cap(None, CapSet::Bounding, cap).unwrap_or(false) {
                    caps::drop(None, CapSet::Bounding, cap)
                        .map_err(|e| anyhow!("drop {cap} from the bounding set: {e}"))?;
                }
            }
        }
    }

    if setgroups_allowed {
        let gids: Vec<Gid> = ids.groups.iter().map(|g| Gid::from_raw(*g)).collect();
        nix::unistd::setgroups(&gids).map_err(|e| anyhow!("setgroups {gids:?}: {e}"))?;
    }

    nix::sys::prctl::set_keepcaps(true).map_err(|e| anyhow!("PR_SET_KEEPCAPS: {e}"))?;
    let gid = Gid::from_raw(ids.gid);
    nix::unistd::setresgid(gid, gid, gid).map_err(|e| anyhow!("setgid {gid}: {e}"))?;
    let uid = Uid::from_raw(ids.uid);
    nix::unistd::setresuid(uid, uid, uid).map_err(|e| anyhow!("setuid {uid}: {e}"))?;
    nix::sys::prctl::set_keepcaps(false).map_err(|e| anyhow!("PR_SET_KEEPCAPS: {e}"))?;

    match wanted {
        Some(c) => set_capabilities(c)?,
        None => {
            // No capabilities object: the process gets none (runc does the same).
            for set in [CapSet::Effective, CapSet::Permitted, CapSet::Inheritable] {
                caps::clear(None, set).map_err(|e| anyhow!("clear capabilities: {e}"))?;
            }
        }
    }

    if let Some(mask) = user.umask() {
        nix::sys::stat::umask(nix::sys::stat::Mode::from_bits_truncate(mask));
    }
    Ok(())
}

/// The ids `switch_user` switches to.
struct Ids {
    uid: u32,
    gid: u32,
    groups: Vec<u32>,
}

/// process.user, with `username` looked up in the container's own
/// /etc/passwd and /etc/group (we are past pivot_root; never NSS): its uid
/// and primary gid, plus every group that lists it as a member, after
/// additionalGids. A uid or gid also given must agree with the name.
fn resolve_user(user: &oci_spec::runtime::User) -> Result<Ids> {
    let mut ids = Ids {
        uid: user.uid(),
        gid: user.gid(),
        groups: user.additional_gids().clone().unwrap_or_default(),
    };
    let Some(name) = user.username().as_deref().filter(|n| !n.is_empty()) else {
        return Ok(ids);
    };
    let passwd = std::fs::read_to_string("/etc/passwd")
        .map_err(|e| anyhow!("process.user.username {name:?}: read /etc/passwd: {e}"))?;
    let entry = passwd
        .lines()
        .map(|l| l.split(':').collect::<Vec<_>>())
        .find(|f| f.len() >= 4 && f[0] == name)
        .ok_or_else(|| anyhow!("process.user.username {name:?}: no such user in /etc/passwd"))?;
    let parse = |v: &str, what: &str| -> Result<u32> {
        v.parse()
            .map_err(|_| anyhow!("/etc/passwd: bad {what} {v:?} for user {name:?}"))
    };
    let (uid, gid) = (parse(entry[2], "uid")?, parse(entry[3], "gid")?);
    // uid/gid are required numbers in config.json, 0 when a client only
    // meant the name: a non-zero one that disagrees is a contradiction.
    if (ids.uid != 0 && ids.uid != uid) || (ids.gid != 0 && ids.gid != gid) {
        bail!(
            "process.user.username {name:?} is {uid}:{gid} in /etc/passwd, \
             but process.user says {}:{}",
            ids.uid,
            ids.gid
        );
    }
    ids.uid = uid;
    ids.gid = gid;
    // A missing /etc/group just means no supplementary groups.
    let group = std::fs::read_to_string("/etc/group").unwrap_or_default();
    for f in group.lines().map(|l| l.split(':').collect::<Vec<_>>()) {
        if f.len() >= 4 && f[3].split(',').any(|m| m == name) {
            if let Ok(g) = f[2].parse::<u32>() {
                if !ids.groups.contains(&g) {
                    ids.groups.push(g);
                }
            }
        }
    }
    Ok(ids)
}

fn set_capabilities(c: &LinuxCapabilities) -> Result<()> {
    let effective = to_caps(c.effective())?;
    let permitted = to_caps(c.permitted())?;
    let inheritable = to_caps(c.inheritable())?;
    let ambient = to_caps(c.ambient())?;
    caps::set(None, CapSet::Effective, &effective)
        .map_err(|e| anyhow!("set effective capabilities: {e}"))?;
    caps::set(None, CapSet::Permitted, &permitted).map_err(|e| {
        anyhow!("set permitted capabilities: {e} (effective must be a subset of permitted)")
    })?;
    caps::set(None, CapSet::Inheritable, &inheritable)
        .map_err(|e| anyhow!("set inheritable capabilities: {e}"))?;
    caps::clear(None, CapSet::Ambient).ok();
    for cap in ambient {
        // The kernel raises an ambient capability only if it is permitted and
        // inheritable. runc's own default spec lists ambient capabilities
        // without inheritable ones and runc skips them: so do we.
        if permitted.contains(&cap) && inheritable.contains(&cap) {
            caps::raise(None, CapSet::Ambient, cap)
                .map_err(|e| anyhow!("raise ambient capability {cap}: {e}"))?;
        } else {
            crate::logging::debug(&format!(
                "ambient {cap} skipped: not both permitted and inheritable"
            ));
        }
    }
    Ok(())
}

pub fn set_no_new_privileges(process: &Process) -> Result<()> {
    if process.no_new_privileges() == Some(true) {
        nix::sys::prctl::set_no_new_privs().map_err(|e| anyhow!("set noNewPrivileges: {e}"))?;
    }
    Ok(())
}

/// The program to run: `args[0]`, looked up in the container's PATH (from
/// `env`) when it has no slash, as execvp would, but checked before `start`
/// so that a missing binary fails `create`.
pub fn find_executable(process: &Process) -> Result<PathBuf> {
    let args = process.args().as_ref().filter(|a| !a.is_empty());
    let Some(arg0) = args.and_then(|a| a.first()) else {
        bail!("process.args must not be empty");
    };
    if arg0.contains('/') {
        return Ok(PathBuf::from(arg0));
    }
    let path_var = process
        .env()
        .iter()
        .flatten()
        .find_map(|e| e.strip_prefix("PATH="))
        .unwrap_or(DEFAULT_PATH);
    for dir in path_var.split(':').filter(|d| !d.is_empty()) {
        let candidate = Path::new(dir).join(arg0);
        if is_executable(&candidate) {
            return Ok(candidate);
        }
    }
    bail!("executable {arg0:?} not found in $PATH ({path_var}) of the container")
}

fn is_executable(p: &Path) -> bool {
    let Ok(c) = CString::new(p.as_os_str().as_bytes()) else {
        return false;
    };
    let Ok(meta) = std::fs::metadata(p) else {
        return false;
    };
    // SAFETY: access() reads a valid C string.
    meta.is_file() && unsafe { libc::access(c.as_ptr(), libc::X_OK) } == 0
}

pub fn chdir_cwd(process: &Process) -> Result<()> {
    let cwd = process.cwd();
    if !cwd.is_absolute() {
        bail!("process.cwd {} must be an absolute path", cwd.display());
    }
    nix::unistd::chdir(cwd).map_err(|e| anyhow!("chdir to process.cwd {}: {e}", cwd.display()))
}

/// Replaces this process with the user's program. Only returns on failure.
pub fn exec(path: &Path, process: &Process, keep_fds: i32) -> anyhow::Error {
    let to_c = |s: &str| CString::new(s).map_err(|_| anyhow!("NUL byte in {s:?}"));
    let prepare = || -> Result<(CString, Vec<CString>, Vec<CString>)> {
        let file = CString::new(path.as_os_str().as_bytes()).context("NUL in path")?;
        let argv = process
            .args()
            .iter()
            .flatten()
            .map(|a| to_c(a))
            .collect::<Result<Vec<_>>>()?;
        let envp = process
            .env()
            .iter()
            .flatten()
            .map(|a| to_c(a))
            .collect::<Result<Vec<_>>>()?;
        Ok((file, argv, envp))
    };
    let (file, argv, envp) = match prepare() {
        Ok(v) => v,
        Err(e) => return e,
    };
    // Only stdio and the preserved fds cross into the user's program.
    close_fds_on_exec(keep_fds);
    reset_signals();
    match nix::unistd::execve(&file, &argv, &envp) {
        Err(e) => anyhow!("exec {}: {e}", path.display()),
        Ok(never) => match never {},
    }
}

/// Closes every fd from `first` up except those in `keep`.
pub fn close_fds_except(first: i32, keep: &mut [i32]) {
    keep.sort_unstable();
    let mut from = first;
    for &fd in keep.iter().filter(|fd| **fd >= first) {
        if fd > from {
            close_range(from, fd - 1);
        }
        from = fd + 1;
    }
    close_range(from, i32::MAX);
}

fn close_range(first: i32, last: i32) {
    // SAFETY: closing fds this process doesn't use (the caller keeps its own).
    let r = unsafe {
        libc::syscall(
            libc::SYS_close_range,
            first as libc::c_uint,
            last as libc::c_uint,
            0 as libc::c_uint,
        )
    };
    if r != 0 {
        if let Ok(dir) = std::fs::read_dir("/proc/self/fd") {
            let fds: Vec<i32> = dir
                .flatten()
                .filter_map(|e| e.file_name().to_str()?.parse().ok())
                .filter(|fd| *fd >= first && *fd <= last)
                .collect();
            for fd in fds {
                // SAFETY: as above.
                unsafe { libc::close(fd) };
            }
        }
    }
}

/// Marks every fd from `first` up close-on-exec.
pub fn close_fds_on_exec(first: i32) {
    // SAFETY: close_range with CLOSE_RANGE_CLOEXEC only sets flags.
    let r = unsafe {
        libc::syscall(
            libc::SYS_close_range,
            first as libc::c_uint,
            libc::c_uint::MAX,
            libc::CLOSE_RANGE_CLOEXEC,
        )
    };
    if r != 0 {
        // Older kernels: walk /proc/self/fd instead.
        if let Ok(dir) = std::fs::read_dir("/proc/self/fd") {
            let fds: Vec<i32> = dir
                .flatten()
                .filter_map(|e| e.file_name().to_str()?.parse().ok())
                .filter(|fd| *fd >= first)
                .collect();
            for fd in fds {
                // SAFETY: setting FD_CLOEXEC on an fd number is harmless.
                unsafe { libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC) };
            }
        }
    }
}

/// Ignored signals stay ignored across execve, and the Rust runtime ignores
/// SIGPIPE: give the user's program default dispositions and an empty mask.
pub fn reset_signals() {
    // SAFETY: resetting dispositions to SIG_DFL and clearing the mask.
    unsafe {
        for sig in 1..libc::SIGRTMAX() {
            if sig != libc::SIGKILL && sig != libc::SIGSTOP {
                libc::signal(sig, libc::SIG_DFL);
            }
        }
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigprocmask(libc::SIG_SETMASK, &set, std::ptr::null_mut());
    }
}

/// pidfd_open(2): an fd for `pid` that polls readable when it exits and can
/// be passed on (`--pidfd-socket`).
pub fn pidfd_open(pid: i32) -> std::io::Result<std::os::fd::OwnedFd> {
    // SAFETY: pidfd_open takes a pid and flags and returns a new fd or -1.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
    if fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: the kernel just gave us this fd and nobody else owns it.
    Ok(unsafe { <std::os::fd::OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(fd as i32) })
}
