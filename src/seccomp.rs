//! linux.seccomp (config-linux.md "Seccomp"): the profile compiled with
//! libseccomp (linked statically), loaded by the init as late as it can, and
//! for SCMP_ACT_NOTIFY the listener fd handed to the agent at `listenerPath`.
//!
//! libseccomp rather than seccompiler: an OCI profile needs one filter with
//! several architectures (x86_64, x86, x32 in Docker's profile), per-rule
//! errno values, the notify action and the seccomp(2) flags, which
//! seccompiler can't express.
//!
//! `compile` runs in `berth create` before the clone (a bad profile fails
//! before anything exists; the init gets the compiled context in its copy of
//! our memory). `load` runs in the process that is about to exec the user's
//! program, so `exec` can reuse both.

use crate::state::OciState;
use anyhow::{anyhow, bail, Context, Result};
use libseccomp::{
    ScmpAction, ScmpArch, ScmpArgCompare, ScmpCompareOp, ScmpFilterContext, ScmpSyscall,
    ScmpVersion,
};
use nix::sys::socket::{sendmsg, ControlMessage, MsgFlags};
use oci_spec::runtime::{
    Arch, LinuxSeccomp, LinuxSeccompAction, LinuxSeccompArg, LinuxSeccompFilterFlag,
    LinuxSeccompOperator,
};
use serde::Serialize;
use std::io::IoSlice;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::net::UnixStream;

/// A compiled profile, ready to load.
pub struct Filter {
    ctx: ScmpFilterContext,
    /// Some rule uses SCMP_ACT_NOTIFY: loading yields a listener fd.
    pub uses_notify: bool,
}

/// Compiles `linux.seccomp`. Unknown syscall names are skipped (runc does the
/// same: a profile lists syscalls newer than the kernel or the library); a
/// bad action, errnoRet or flag is an error naming it.
pub fn compile(profile: &LinuxSeccomp) -> Result<Filter> {
    let default_action = action(
        profile.default_action(),
        profile.default_errno_ret(),
        "defaultAction",
    )?;
    if profile.default_action() == LinuxSeccompAction::ScmpActNotify {
        // Every syscall after the load, including the one that hands the
        // listener fd to the agent, would wait for that agent.
        bail!("linux.seccomp.defaultAction: SCMP_ACT_NOTIFY can't be the default action");
    }
    if profile.listener_metadata().is_some() && profile.listener_path().is_none() {
        bail!("linux.seccomp.listenerMetadata is set without listenerPath");
    }
    let mut ctx =
        ScmpFilterContext::new(default_action).map_err(|e| anyhow!("seccomp: new filter: {e}"))?;
    // noNewPrivileges is process.noNewPrivileges' business, not the
    // library's: without it the init loads the filter holding CAP_SYS_ADMIN.
    ctx.set_ctl_nnp(false)
        .map_err(|e| anyhow!("seccomp: clear the NNP attribute: {e}"))?;

    for arch in profile.architectures().iter().flatten() {
        let a = scmp_arch(*arch);
        // The native arch is in every new filter; adding it again is EEXIST.
        if !ctx.is_arch_present(a).unwrap_or(false) {
            ctx.add_arch(a)
                .map_err(|e| anyhow!("linux.seccomp.architectures: add {arch}: {e}"))?;
        }
    }

    for flag in profile.flags().iter().flatten() {
        let r = match flag {
            LinuxSeccompFilterFlag::SeccompFilterFlagTsync => ctx.set_ctl_tsync(true).map(drop),
            LinuxSeccompFilterFlag::SeccompFilterFlagLog => ctx.set_ctl_log(true).map(drop),
            LinuxSeccompFilterFlag::SeccompFilterFlagSpecAllow => ctx.set_ctl_ssb(true).map(drop),
            LinuxSeccompFilterFlag::SeccompFilterFlagWaitKillableRecv => {
                ctx.set_ctl_waitkill(true).map(drop)
            }
        };
        r.map_err(|e| {
            let version = ScmpVersion::current()
                .map(|v| v.to_string())
                .unwrap_or_else(|_| "?".into());
            anyhow!("linux.seccomp.flags: {flag} is not supported (libseccomp {version}): {e}")
        })?;
    }

    let mut uses_notify = false;
    for (i, rule) in profile.syscalls().iter().flatten().enumerate() {
        let what = format!("linux.seccomp.syscalls[{i}]");
        if rule.names().is_empty() {
            bail!("{what}.names must contain at least one name");
        }
        let act = action(rule.action(), rule.errno_ret(), &format!("{what}.action"))?;
        if rule.action() == LinuxSeccompAction::ScmpActNotify {
            uses_notify = true;
            if rule.names().iter().any(|n| n == "sendmsg") {
                // berth sends the listener fd with sendmsg after the load.
                bail!("{what}: SCMP_ACT_NOTIFY can't apply to sendmsg");
            }
        }
        if act == default_action {
            // libseccomp refuses a rule that repeats the default (EACCES);
            // it would change nothing anyway.
            continue;
        }
        let conds = rule
            .args()
            .iter()
            .flatten()
            .enumerate()
            .map(|(j, a)| condition(a).with_context(|| format!("{what}.args[{j}]")))
            .collect::<Result<Vec<_>>>()?;
        for name in rule.names() {
            let Ok(nr) = ScmpSyscall::from_name(name) else {
                crate::logging::debug(&format!(
                    "seccomp: syscall {name:?} unknown to libseccomp, skipped"
                ));
                continue;
            };
            add_rule(&mut ctx, act, nr, &conds)
                .map_err(|e| anyhow!("{what}: add a rule for {name}: {e}"))?;
        }
    }
    if uses_notify && profile.listener_path().is_none() {
        bail!("linux.seccomp: SCMP_ACT_NOTIFY needs listenerPath");
    }
    Ok(Filter { ctx, uses_notify })
}

/// libseccomp takes one comparison per argument in a rule. The conditions of
/// a rule are ANDed; when an argument is compared twice (e.g. a range), each
/// condition becomes a rule of its own, as runc does.
fn add_rule(
    ctx: &mut ScmpFilterContext,
    act: ScmpAction,
    nr: ScmpSyscall,
    conds: &[(u32, ScmpArgCompare)],
) -> Result<()> {
    if conds.is_empty() {
        ctx.add_rule(act, nr)?;
        return Ok(());
    }
    let repeated = conds
        .iter()
        .enumerate()
        .any(|(i, (x, _))| conds[..i].iter().any(|(y, _)| x == y));
    let all: Vec<ScmpArgCompare> = conds.iter().map(|(_, c)| *c).collect();
    if repeated {
        for c in &all {
            ctx.add_rule_conditional(act, nr, std::slice::from_ref(c))?;
        }
    } else {
        ctx.add_rule_conditional(act, nr, &all)?;
    }
    Ok(())
}

/// One argument comparison, with the argument's index.
fn condition(a: &LinuxSeccompArg) -> Result<(u32, ScmpArgCompare)> {
    let index = u32::try_from(a.index())
        .ok()
        .filter(|i| *i < 6)
        .ok_or_else(|| anyhow!("index {} is not a syscall argument (0-5)", a.index()))?;
    let v = a.value();
    let op = match a.op() {
        LinuxSeccompOperator::ScmpCmpNe => ScmpCompareOp::NotEqual,
        LinuxSeccompOperator::ScmpCmpLt => ScmpCompareOp::Less,
        LinuxSeccompOperator::ScmpCmpLe => ScmpCompareOp::LessOrEqual,
        LinuxSeccompOperator::ScmpCmpEq => ScmpCompareOp::Equal,
        LinuxSeccompOperator::ScmpCmpGe => ScmpCompareOp::GreaterEqual,
        LinuxSeccompOperator::ScmpCmpGt => ScmpCompareOp::Greater,
        // (arg & value) == valueTwo: value is the mask.
        LinuxSeccompOperator::ScmpCmpMaskedEq => {
            return Ok((
                index,
                ScmpArgCompare::new(
                    index,
                    ScmpCompareOp::MaskedEqual(v),
                    a.value_two().unwrap_or(0),
                ),
            ))
        }
    };
    Ok((index, ScmpArgCompare::new(index, op, v)))
}

/// An OCI action with its errnoRet. ERRNO defaults to EPERM; TRACE takes
/// errnoRet as the value the tracer sees; any other action refuses one.
fn action(a: LinuxSeccompAction, errno_ret: Option<u32>, what: &str) -> Result<ScmpAction> {
    use LinuxSeccompAction::*;
    if errno_ret.is_some() && !matches!(a, ScmpActErrno | ScmpActTrace) {
        bail!("linux.seccomp: {what} {a} takes no errnoRet");
    }
    Ok(match a {
        // SCMP_ACT_KILL is libseccomp's old name for KILL_THREAD.
        ScmpActKill | ScmpActKillThread => ScmpAction::KillThread,
        ScmpActKillProcess => ScmpAction::KillProcess,
        ScmpActTrap => ScmpAction::Trap,
        ScmpActErrno => {
            let e = errno_ret.unwrap_or(libc::EPERM as u32);
            ScmpAction::Errno(
                i32::try_from(e)
                    .ok()
                    .filter(|e| *e <= 0xffff)
                    .ok_or_else(|| anyhow!("linux.seccomp: {what}: errnoRet {e} out of range"))?,
            )
        }
        ScmpActTrace => {
            let v = errno_ret.unwrap_or(libc::EPERM as u32);
            ScmpAction::Trace(
                u16::try_from(v)
                    .map_err(|_| anyhow!("linux.seccomp: {what}: errnoRet {v} out of range"))?,
            )
        }
        ScmpActLog => ScmpAction::Log,
        ScmpActAllow => ScmpAction::Allow,
        ScmpActNotify => ScmpAction::Notify,
    })
}

fn scmp_arch(a: Arch) -> ScmpArch {
    match a {
        Arch::ScmpArchNative => ScmpArch::Native,
        Arch::ScmpArchX86 => ScmpArch::X86,
        Arch::ScmpArchX86_64 => ScmpArch::X8664,
        Arch::ScmpArchX32 => ScmpArch::X32,
        Arch::ScmpArchArm => ScmpArch::Arm,
        Arch::ScmpArchAarch64 => ScmpArch::Aarch64,
        Arch::ScmpArchMips => ScmpArch::Mips,
        Arch::ScmpArchMips64 => ScmpArch::Mips64,
        Arch::ScmpArchMips64n32 => ScmpArch::Mips64N32,
        Arch::ScmpArchMipsel => ScmpArch::Mipsel,
        Arch::ScmpArchMipsel64 => ScmpArch::Mipsel64,
        Arch::ScmpArchMipsel64n32 => ScmpArch::Mipsel64N32,
        Arch::ScmpArchPpc => ScmpArch::Ppc,
        Arch::ScmpArchPpc64 => ScmpArch::Ppc64,
        Arch::ScmpArchPpc64le => ScmpArch::Ppc64Le,
        Arch::ScmpArchS390 => ScmpArch::S390,
        Arch::ScmpArchS390x => ScmpArch::S390X,
        Arch::ScmpArchParisc => ScmpArch::Parisc,
        Arch::ScmpArchParisc64 => ScmpArch::Parisc64,
        Arch::ScmpArchRiscv64 => ScmpArch::Riscv64,
        Arch::ScmpArchLoongarch64 => ScmpArch::Loongarch64,
        Arch::ScmpArchM68k => ScmpArch::M68k,
        Arch::ScmpArchSh => ScmpArch::Sh,
        Arch::ScmpArchSheb => ScmpArch::Sheb,
    }
}

/// Loads the filter into the calling process. Returns the notify listener
/// fd when the profile uses SCMP_ACT_NOTIFY.
pub fn load(filter: &Filter) -> Result<Option<OwnedFd>> {
    filter
        .ctx
        .load()
        .map_err(|e| anyhow!("load the seccomp filter: {e}"))?;
    if !filter.uses_notify {
        return Ok(None);
    }
    let fd = filter
        .ctx
        .get_notify_fd()
        .map_err(|e| anyhow!("seccomp notify fd: {e}"))?;
    // SAFETY: the library hands over a fresh fd that nothing else closes
    // (our copy of the context is never released in this process).
    Ok(Some(unsafe { OwnedFd::from_raw_fd(fd) }))
}

/// Connects to `listenerPath`. Done by `create` before the clone: the path is
/// the host's, and the init sends on this connection from inside the
/// container once it has loaded the filter.
pub fn connect_listener(profile: &LinuxSeccomp) -> Result<Option<OwnedFd>> {
    let Some(path) = profile.listener_path() else {
        return Ok(None);
    };
    let s = UnixStream::connect(path)
        .map_err(|e| anyhow!("connect to seccomp listenerPath {}: {e}", path.display()))?;
    Ok(Some(s.into()))
}

/// runtime.md / config-linux.md "The Container Process State".
#[derive(Serialize)]
struct ContainerProcessState<'a> {
    #[serde(rename = "ociVersion")]
    oci_version: &'a str,
    fds: [&'a str; 1],
    pid: i32,
    #[serde(skip_serializing_if = "Option::is_none")]
    metadata: Option<&'a str>,
    state: &'a OciState,
}

/// Sends the listener fd and the container process state to the agent, in
/// one message when it fits (fds only ride on the first sendmsg), then closes
/// the connection: one state per connection.
pub fn send_to_listener(
    sock: OwnedFd,
    notify_fd: &OwnedFd,
    metadata: Option<&str>,
    state: &OciState,
) -> Result<()> {
    let msg = serde_json::to_vec(&ContainerProcessState {
        oci_version: &state.oci_version,
        fds: ["seccompFd"],
        pid: state.pid,
        metadata,
        state,
    })?;
    let fds: [RawFd; 1] = [notify_fd.as_raw_fd()];
    let mut sent = 0;
    while sent < msg.len() {
        let iov = [IoSlice::new(&msg[sent..])];
        let cmsg = [ControlMessage::ScmRights(&fds)];
        let cmsgs: &[ControlMessage] = if sent == 0 { &cmsg } else { &[] };
        match sendmsg::<()>(sock.as_raw_fd(), &iov, cmsgs, MsgFlags::MSG_NOSIGNAL, None) {
            Ok(n) => sent += n,
            Err(nix::errno::Errno::EINTR) => continue,
            Err(e) => bail!("send the seccomp fd to listenerPath: {e}"),
        }
    }
    drop(sock);
    Ok(())
}
