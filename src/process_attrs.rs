//! Per-process kernel attributes the config asks for: linux.personality,
//! process.ioPriority, process.scheduler, process.execCPUAffinity,
//! linux.memoryPolicy, process.apparmorProfile, process.selinuxLabel and
//! the checks of linux.mountLabel (applied by src/rootfs.rs).
//!
//! Each field has a `validate_*` run by `bundle::load` at create, so a bad
//! value fails before anything exists on the host, and an `apply_*` that
//! works on the calling process, for the init (src/init.rs) and for
//! `berth exec`. The apply functions take the oci `Process` / `Spec` and
//! touch nothing but the calling process.

use anyhow::{anyhow, bail, Result};
use oci_spec::runtime::{
    IOPriorityClass, LinuxMemoryPolicy, LinuxPersonality, LinuxPersonalityDomain,
    LinuxSchedulerFlag, LinuxSchedulerPolicy, MemoryPolicyFlagType, MemoryPolicyModeType, Process,
    Scheduler, Spec,
};

/// Everything checkable without running anything, for `bundle::load`.
pub fn validate(spec: &Spec) -> Result<()> {
    if let Some(linux) = spec.linux() {
        if let Some(p) = linux.personality() {
            validate_personality(p)?;
        }
        if let Some(mp) = linux.memory_policy() {
            validate_memory_policy(mp)?;
        }
        if let Some(label) = linux.mount_label().as_deref().filter(|l| !l.is_empty()) {
            check_selinux_label("linux.mountLabel", label)?;
        }
    }
    if let Some(p) = spec.process() {
        validate_process(p)?;
    }
    Ok(())
}

/// The process-level checks; `berth exec --process` reuses them.
pub fn validate_process(p: &Process) -> Result<()> {
    if let Some(io) = p.io_priority() {
        if !(0..=7).contains(&io.priority()) {
            bail!(
                "process.ioPriority.priority must be 0 to 7, got {}",
                io.priority()
            );
        }
    }
    if let Some(s) = p.scheduler() {
        validate_scheduler(s)?;
    }
    if let Some(a) = p.exec_cpu_affinity() {
        if let Some(list) = a.initial().as_deref().filter(|l| !l.is_empty()) {
            parse_cpu_list(list)
                .map_err(|e| anyhow!("process.execCPUAffinity.initial {list:?}: {e}"))?;
        }
        if let Some(list) = a.cpu_affinity_final().as_deref().filter(|l| !l.is_empty()) {
            parse_cpu_list(list)
                .map_err(|e| anyhow!("process.execCPUAffinity.final {list:?}: {e}"))?;
        }
    }
    if p.apparmor_profile().as_ref().is_some_and(|l| !l.is_empty()) && !apparmor_enabled() {
        // A profile asked for and not applied would run the container less
        // confined than its config says: refuse rather than ignore.
        bail!("process.apparmorProfile: AppArmor is not enabled on this host");
    }
    if let Some(label) = p.selinux_label().as_deref().filter(|l| !l.is_empty()) {
        check_selinux_label("process.selinuxLabel", label)?;
    }
    Ok(())
}

// ---- LSM labels ----------------------------------------------------------

/// AppArmor is on when the module says so; without the module (not built
/// in, or disabled at boot) there is nothing to confine with.
pub fn apparmor_enabled() -> bool {
    std::fs::read_to_string("/sys/module/apparmor/parameters/enabled")
        .is_ok_and(|s| s.trim() == "Y")
}

/// selinuxfs is only registered, and mounted by init, when SELinux is on.
pub fn selinux_enabled() -> bool {
    std::path::Path::new("/sys/fs/selinux/enforce").exists()
}

/// A label asked for and not applied would run the container less confined
/// than its config says: without SELinux, refuse. With it, ask the loaded
/// policy whether the context is valid (selinuxfs "context", which
/// libselinux's security_check_context uses), so a bad label fails create
/// or exec before anything exists. Only a definite "invalid" (EINVAL)
/// fails here; if the check itself cannot be made, the write at apply time
/// still decides.
fn check_selinux_label(field: &str, label: &str) -> Result<()> {
    if !selinux_enabled() {
        bail!("{field}: SELinux is not enabled on this host");
    }
    use std::io::Write;
    let checked = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/sys/fs/selinux/context")
        .and_then(|mut f| f.write(label.as_bytes()));
    if let Err(e) = checked {
        if e.raw_os_error() == Some(libc::EINVAL) {
            bail!("{field} {label:?}: not a valid SELinux context in the loaded policy");
        }
    }
    Ok(())
}

/// process.selinuxLabel: sets this thread's SELinux exec attribute
/// (/proc/thread-self/attr/exec: SELinux keeps its attributes at the top
/// level of attr/), so berth's own setup keeps berth's context and the
/// user's program starts in the label at execve. Called where
/// apply_apparmor is, before seccomp and switch_user, as runc does.
pub fn apply_selinux(process: &Process) -> Result<()> {
    let Some(label) = process.selinux_label().as_deref().filter(|l| !l.is_empty()) else {
        return Ok(());
    };
    write_proc_attr(&[c"thread-self/attr/exec"], label)
        .map_err(|e| anyhow!("set process.selinuxLabel {label:?}: {e}"))
}

/// The SELinux label for keys this thread creates (attr/keycreate), so the
/// container's session keyring carries the process label as runc's does;
/// `set == false` resets it to the default (the creator's own context).
pub fn set_selinux_keycreate(process: &Process, set: bool) -> Result<()> {
    let Some(label) = process.selinux_label().as_deref().filter(|l| !l.is_empty()) else {
        return Ok(());
    };
    // A lone newline clears the attribute (an empty write may never reach
    // the LSM).
    let text = if set { label } else { "\n" };
    write_proc_attr(&[c"thread-self/attr/keycreate"], text).map_err(|e| {
        anyhow!("set the session keyring's label to process.selinuxLabel {label:?}: {e}")
    })
}

/// process.apparmorProfile: asks AppArmor to move the calling thread into
/// the profile at its next execve (the "exec" attribute, as runc does), so
/// berth's own setup runs unconfined and the user's program starts
/// confined. Called before switch_user and seccomp, while still root in the
/// container: the write then cannot be refused for want of a capability or
/// by the container's filter. An unconfined task may pick any profile, and
/// AppArmor lets an unconfined task's exec transition happen under
/// no_new_privs, so process.noNewPrivileges does not get in the way.
pub fn apply_apparmor(process: &Process) -> Result<()> {
    let Some(profile) = process
        .apparmor_profile()
        .as_deref()
        .filter(|p| !p.is_empty())
    else {
        return Ok(());
    };
    // attr/apparmor/ since Linux 5.8 (LSM stacking); attr/exec before it.
    write_proc_attr(
        &[c"thread-self/attr/apparmor/exec", c"thread-self/attr/exec"],
        &format!("exec {profile}"),
    )
    .map_err(|e| match e.raw_os_error() {
        Some(libc::ENOENT) => {
            anyhow!("set process.apparmorProfile {profile:?}: no profile of that name is loaded")
        }
        _ => anyhow!("set process.apparmorProfile {profile:?}: {e}"),
    })
}

const PROC_ROOT_INO: u64 = 1;

/// Writes `text` to the first of `paths` (under /proc, the container's once
/// pivoted) that exists: an attribute of this thread. /proc must be the
/// root of a procfs, and the lookup from it may neither cross a mount point
/// nor follow a magic link: something mounted over attr/ (a bind of another
/// proc file, a tmpfs) cannot take the write.
fn write_proc_attr(paths: &[&std::ffi::CStr], text: &str) -> std::io::Result<()> {
    use crate::rootfs::sys;
    use std::io::{Error, ErrorKind, Write};
    let proc = nix::fcntl::open(
        "/proc",
        nix::fcntl::OFlag::O_PATH | nix::fcntl::OFlag::O_DIRECTORY | nix::fcntl::OFlag::O_CLOEXEC,
        nix::sys::stat::Mode::empty(),
    )
    .map_err(|e| Error::other(format!("open /proc: {e}")))?;
    // SAFETY: nix just returned this descriptor to us.
    let proc = unsafe { <std::os::fd::OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(proc) };
    let fs = nix::sys::statfs::fstatfs(&proc)?;
    let st = nix::sys::stat::fstat(std::os::fd::AsRawFd::as_raw_fd(&proc))?;
    if fs.filesystem_type() != nix::sys::statfs::PROC_SUPER_MAGIC || st.st_ino != PROC_ROOT_INO {
        return Err(Error::other("/proc is not the root of a procfs"));
    }
    let resolve = libc::RESOLVE_NO_XDEV | libc::RESOLVE_NO_MAGICLINKS;
    let mut opened = Err(Error::from(ErrorKind::NotFound));
    for path in paths {
        opened = sys::openat2(
            std::os::fd::AsFd::as_fd(&proc),
            path,
            libc::O_WRONLY,
            resolve,
        );
        if !matches!(&opened, Err(e) if e.kind() == ErrorKind::NotFound) {
            break;
        }
    }
    // One write: the kernel takes the attribute whole or not at all.
    let n = std::fs::File::from(opened?).write(text.as_bytes())?;
    if n != text.len() {
        return Err(Error::other(format!("short write ({n} of {})", text.len())));
    }
    Ok(())
}

// ---- linux.personality ---------------------------------------------------

const PER_LINUX: libc::c_ulong = 0x0000;
const PER_LINUX32: libc::c_ulong = 0x0008;

fn validate_personality(p: &LinuxPersonality) -> Result<()> {
    // config-linux.md "Personality": "Currently no flag values are supported."
    if let Some(flags) = p.flags().as_ref().filter(|f| !f.is_empty()) {
        bail!(
            "linux.personality.flags: no flags are supported, got {}",
            flags.join(", ")
        );
    }
    Ok(())
}

/// personality(2): survives execve, so setting it in the init is enough for
/// `uname -m` in the user's program to report i686 under LINUX32.
pub fn apply_personality(spec: &Spec) -> Result<()> {
    let Some(p) = spec.linux().as_ref().and_then(|l| l.personality().as_ref()) else {
        return Ok(());
    };
    let persona = match p.domain() {
        LinuxPersonalityDomain::PerLinux => PER_LINUX,
        LinuxPersonalityDomain::PerLinux32 => PER_LINUX32,
    };
    // SAFETY: personality takes a plain integer.
    if unsafe { libc::personality(persona) } == -1 {
        bail!(
            "set linux.personality {}: {}",
            p.domain(),
            std::io::Error::last_os_error()
        );
    }
    Ok(())
}

// ---- process.ioPriority --------------------------------------------------

const IOPRIO_WHO_PROCESS: libc::c_int = 1;
const IOPRIO_CLASS_SHIFT: u32 = 13;

/// ioprio_set(2) on the calling process; its children inherit it.
pub fn apply_io_priority(process: &Process) -> Result<()> {
    let Some(io) = process.io_priority() else {
        return Ok(());
    };
    let class: libc::c_int = match io.class() {
        IOPriorityClass::IoprioClassRt => 1,
        IOPriorityClass::IoprioClassBe => 2,
        IOPriorityClass::IoprioClassIdle => 3,
    };
    let value = (class << IOPRIO_CLASS_SHIFT) | io.priority() as libc::c_int;
    // SAFETY: ioprio_set takes three integers.
    let r = unsafe { libc::syscall(libc::SYS_ioprio_set, IOPRIO_WHO_PROCESS, 0, value) };
    if r != 0 {
        bail!(
            "set process.ioPriority {:?} {}: {}",
            io.class(),
            io.priority(),
            std::io::Error::last_os_error()
        );
    }
    Ok(())
}

// ---- process.scheduler ---------------------------------------------------

/// The kernel's struct sched_attr (SCHED_ATTR_SIZE_VER1).
#[repr(C)]
#[derive(Default)]
struct SchedAttr {
    size: u32,
    sched_policy: u32,
    sched_flags: u64,
    sched_nice: i32,
    sched_priority: u32,
    sched_runtime: u64,
    sched_deadline: u64,
    sched_period: u64,
    sched_util_min: u32,
    sched_util_max: u32,
}

fn policy_number(p: LinuxSchedulerPolicy) -> Result<u32> {
    use LinuxSchedulerPolicy::*;
    Ok(match p {
        SchedOther => 0,
        SchedFifo => 1,
        SchedRr => 2,
        SchedBatch => 3,
        // Reserved by Linux, never implemented: the kernel returns EINVAL.
        SchedIso => bail!("process.scheduler.policy SCHED_ISO is not implemented by Linux"),
        SchedIdle => 5,
        SchedDeadline => 6,
    })
}

fn flag_bits(flags: &[LinuxSchedulerFlag]) -> u64 {
    use LinuxSchedulerFlag::*;
    flags
        .iter()
        .map(|f| match f {
            SchedResetOnFork => 0x01,
            SchedFlagReclaim => 0x02,
            SchedFlagDLOverrun => 0x04,
            SchedFlagKeepPolicy => 0x08,
            SchedFlagKeepParams => 0x10,
            SchedFlagUtilClampMin => 0x20,
            SchedFlagUtilClampMax => 0x40,
        })
        .fold(0, |a, b| a | b)
}

fn validate_scheduler(s: &Scheduler) -> Result<()> {
    use LinuxSchedulerPolicy::*;
    policy_number(*s.policy())?;
    let nice = s.nice().unwrap_or(0);
    if !(-20..=19).contains(&nice) {
        bail!("process.scheduler.nice must be -20 to 19, got {nice}");
    }
    let prio = s.priority().unwrap_or(0);
    match s.policy() {
        SchedFifo | SchedRr if !(1..=99).contains(&prio) => {
            bail!(
                "process.scheduler.priority must be 1 to 99 for {:?}, got {prio}",
                s.policy()
            )
        }
        SchedFifo | SchedRr => {}
        _ if prio != 0 => bail!(
            "process.scheduler.priority must be 0 for {:?}, got {prio}",
            s.policy()
        ),
        _ => {}
    }
    if *s.policy() == SchedDeadline {
        let runtime = s.runtime().unwrap_or(0);
        let deadline = s.deadline().unwrap_or(0);
        let period = s.period().unwrap_or(0);
        // sched(7): runtime <= deadline <= period (a 0 period means the deadline).
        if runtime == 0 || runtime > deadline || (period != 0 && deadline > period) {
            bail!(
                "process.scheduler for SCHED_DEADLINE needs 0 < runtime <= deadline <= period, got {runtime}, {deadline}, {period}"
            );
        }
    }
    Ok(())
}

/// sched_setattr(2) on the calling thread (the init is single-threaded);
/// inherited across fork and exec unless SCHED_FLAG_RESET_ON_FORK.
pub fn apply_scheduler(process: &Process) -> Result<()> {
    let Some(s) = process.scheduler() else {
        return Ok(());
    };
    let attr = SchedAttr {
        size: std::mem::size_of::<SchedAttr>() as u32,
        sched_policy: policy_number(*s.policy())?,
        sched_flags: flag_bits(s.flags().as_deref().unwrap_or_default()),
        sched_nice: s.nice().unwrap_or(0),
        sched_priority: s.priority().unwrap_or(0) as u32,
        sched_runtime: s.runtime().unwrap_or(0),
        sched_deadline: s.deadline().unwrap_or(0),
        sched_period: s.period().unwrap_or(0),
        ..Default::default()
    };
    // SAFETY: sched_setattr reads attr.size bytes of a valid sched_attr.
    let r = unsafe { libc::syscall(libc::SYS_sched_setattr, 0, &attr as *const SchedAttr, 0) };
    if r != 0 {
        bail!(
            "set process.scheduler {:?}: {}",
            s.policy(),
            std::io::Error::last_os_error()
        );
    }
    Ok(())
}

// ---- process.execCPUAffinity ---------------------------------------------

/// "0-3,7" -> [0, 1, 2, 3, 7]: the cpu list format of cpuset(7).
pub fn parse_cpu_list(list: &str) -> Result<Vec<usize>> {
    let max = libc::CPU_SETSIZE as usize;
    let mut cpus = Vec::new();
    for part in list.split(',') {
        let part = part.trim();
        let (lo, hi) = match part.split_once('-') {
            Some((a, b)) => (a, b),
            None => (part, part),
        };
        let parse = |s: &str| {
            s.trim()
                .parse::<usize>()
                .map_err(|_| anyhow!("{part:?} is not a cpu number or range"))
        };
        let (lo, hi) = (parse(lo)?, parse(hi)?);
        if lo > hi {
            bail!("range {part:?} ends before it starts");
        }
        if hi >= max {
            bail!("cpu {hi} is beyond the {max} the kernel interface allows");
        }
        cpus.extend(lo..=hi);
    }
    Ok(cpus)
}

// The three affinity functions serve `berth exec` (src/exec.rs): the spec
// says execCPUAffinity "is not applicable to the container's init process".

/// sched_setaffinity(2) of the calling thread to `list`.
pub fn set_cpu_affinity(list: &str, field: &str) -> Result<()> {
    let cpus = parse_cpu_list(list).map_err(|e| anyhow!("{field} {list:?}: {e}"))?;
    // SAFETY: an all-zero cpu_set_t is a valid empty set.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    for cpu in cpus {
        // SAFETY: cpu < CPU_SETSIZE, checked by parse_cpu_list.
        unsafe { libc::CPU_SET(cpu, &mut set) };
    }
    // SAFETY: sched_setaffinity reads a valid cpu_set_t of the given size.
    if unsafe { libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set) } != 0 {
        bail!("set {field} {list:?}: {}", std::io::Error::last_os_error());
    }
    Ok(())
}

/// execCPUAffinity.initial: for the runtime's process that will join the
/// container, before it moves into the container's cgroup.
pub fn apply_initial_cpu_affinity(process: &Process) -> Result<()> {
    match process
        .exec_cpu_affinity()
        .as_ref()
        .and_then(|a| a.initial().as_deref())
        .filter(|l| !l.is_empty())
    {
        Some(list) => set_cpu_affinity(list, "process.execCPUAffinity.initial"),
        None => Ok(()),
    }
}

/// execCPUAffinity.final: after the move into the container's cgroup, just
/// before exec. Empty or absent leaves the affinity to the kernel.
pub fn apply_final_cpu_affinity(process: &Process) -> Result<()> {
    match process
        .exec_cpu_affinity()
        .as_ref()
        .and_then(|a| a.cpu_affinity_final().as_deref())
        .filter(|l| !l.is_empty())
    {
        Some(list) => set_cpu_affinity(list, "process.execCPUAffinity.final"),
        None => Ok(()),
    }
}

// ---- linux.memoryPolicy --------------------------------------------------

fn mode_number(m: MemoryPolicyModeType) -> libc::c_int {
    use MemoryPolicyModeType::*;
    match m {
        MpolDefault => 0,
        MpolPreferred => 1,
        MpolBind => 2,
        MpolInterleave => 3,
        MpolLocal => 4,
        MpolPreferredMany => 5,
        MpolWeightedInterleave => 6,
    }
}

fn flag_number(f: MemoryPolicyFlagType) -> libc::c_int {
    use MemoryPolicyFlagType::*;
    match f {
        MpolFNumaBalancing => 1 << 13,
        MpolFRelativeNodes => 1 << 14,
        MpolFStaticNodes => 1 << 15,
    }
}

fn validate_memory_policy(mp: &LinuxMemoryPolicy) -> Result<()> {
    use MemoryPolicyModeType::*;
    let nodes = mp.nodes().as_deref().filter(|n| !n.is_empty());
    match (mp.mode(), nodes) {
        (MpolDefault | MpolLocal, Some(n)) => bail!(
            "linux.memoryPolicy: mode {} takes no nodes, got {n:?}",
            mp.mode()
        ),
        (MpolBind | MpolInterleave | MpolPreferredMany | MpolWeightedInterleave, None) => {
            bail!("linux.memoryPolicy: mode {} needs nodes", mp.mode())
        }
        (_, Some(n)) => {
            parse_cpu_list(n).map_err(|e| anyhow!("linux.memoryPolicy.nodes {n:?}: {e}"))?;
        }
        _ => {}
    }
    Ok(())
}

/// set_mempolicy(2) for the calling process; inherited across fork and exec.
pub fn apply_memory_policy(spec: &Spec) -> Result<()> {
    let Some(mp) = spec
        .linux()
        .as_ref()
        .and_then(|l| l.memory_policy().as_ref())
    else {
        return Ok(());
    };
    let mut mode = mode_number(mp.mode());
    for f in mp.flags().iter().flatten() {
        mode |= flag_number(*f);
    }
    let nodes = match mp.nodes().as_deref().filter(|n| !n.is_empty()) {
        Some(n) => parse_cpu_list(n)?,
        None => Vec::new(),
    };
    let words = libc::CPU_SETSIZE as usize / 64;
    let mut mask = vec![0u64; words];
    for n in &nodes {
        mask[n / 64] |= 1 << (n % 64);
    }
    let (ptr, maxnode) = if nodes.is_empty() {
        (std::ptr::null(), 0)
    } else {
        (mask.as_ptr(), (words * 64) as libc::c_ulong)
    };
    // SAFETY: the mask holds maxnode bits.
    let r = unsafe { libc::syscall(libc::SYS_set_mempolicy, mode, ptr, maxnode) };
    if r != 0 {
        bail!(
            "set linux.memoryPolicy {} {:?}: {}",
            mp.mode(),
            mp.nodes().as_deref().unwrap_or(""),
            std::io::Error::last_os_error()
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_lists() {
        assert_eq!(parse_cpu_list("0-3,7").unwrap(), vec![0, 1, 2, 3, 7]);
        assert_eq!(parse_cpu_list("1").unwrap(), vec![1]);
        assert!(parse_cpu_list("3-1").is_err());
        assert!(parse_cpu_list("a").is_err());
        assert!(parse_cpu_list("0,").is_err());
        assert!(parse_cpu_list("99999").is_err());
    }
}
