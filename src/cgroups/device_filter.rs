//! config-linux.md "Device allowlist" on cgroup v2: the unified hierarchy has
//! no devices controller; the kernel asks an eBPF program of type
//! BPF_PROG_TYPE_CGROUP_DEVICE attached to the cgroup (and to its ancestors)
//! whether a process may mknod, read or write a device node. This module
//! turns the container's device rules into such a program, loads it with
//! bpf(2) and attaches it to the container's cgroup, with no library: the
//! program is a straight line of compare-and-return blocks.
//!
//! The rules mean what they mean on v1 (the kernel's devices.allow/deny), so
//! one config behaves the same on every layout: the last rule that matches a
//! request decides; nothing matching is a deny. A rule matches when its type
//! is the request's (`a` matches every device, whatever its numbers and
//! access, as a v1 write of `a` does), each of its numbers is the request's
//! or absent/-1 (any), and the request's access (one of r, w, m) is within
//! the rule's.

use std::ffi::CString;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::Path;

use anyhow::{anyhow, bail, Result};
use oci_spec::runtime::{LinuxDeviceCgroup, LinuxDeviceType};

/// The kernel's `struct bpf_cgroup_dev_ctx` access bits and device types.
const ACC_MKNOD: u32 = 1;
const ACC_READ: u32 = 2;
const ACC_WRITE: u32 = 4;
const DEV_BLOCK: u32 = 1;
const DEV_CHAR: u32 = 2;

/// The name berth's programs carry (BPF_OBJ_NAME_LEN is 16 with the NUL), so
/// a replace detaches berth's own program and leaves systemd's alone.
const PROG_NAME: &[u8] = b"berth_devices";

/// One device rule, checked and in the kernel's numbers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rule {
    pub allow: bool,
    /// None: `a`, every device.
    pub kind: Option<u32>,
    /// None: any number.
    pub major: Option<u32>,
    pub minor: Option<u32>,
    /// ACC_* bits.
    pub access: u32,
}

/// The config's rules as the filter reads them; an error names the rule.
pub fn rules(list: &[LinuxDeviceCgroup]) -> Result<Vec<Rule>> {
    list.iter()
        .map(|r| {
            let bad = |why: String| anyhow!("linux.resources.devices: rule \"{r}\": {why}");
            let kind = match r.typ().unwrap_or_default() {
                LinuxDeviceType::A => None,
                LinuxDeviceType::B => Some(DEV_BLOCK),
                LinuxDeviceType::C => Some(DEV_CHAR),
                // The v1 devices controller refuses these too (EINVAL).
                other => {
                    return Err(bad(format!(
                        "type \"{}\" is not a device cgroup type (a, b or c)",
                        other.as_str()
                    )))
                }
            };
            let number = |n: Option<i64>, what: &str| -> Result<Option<u32>> {
                match n {
                    None | Some(-1) => Ok(None),
                    Some(n) => u32::try_from(n)
                        .map(Some)
                        .map_err(|_| bad(format!("invalid {what} number {n}"))),
                }
            };
            let mut access = 0;
            for c in r.access().as_deref().unwrap_or("").chars() {
                access |= match c {
                    'r' => ACC_READ,
                    'w' => ACC_WRITE,
                    'm' => ACC_MKNOD,
                    _ => return Err(bad(format!("invalid access {c:?} (r, w and m only)"))),
                };
            }
            Ok(Rule {
                allow: r.allow(),
                kind,
                major: number(r.major(), "major")?,
                minor: number(r.minor(), "minor")?,
                access,
            })
        })
        .collect()
}

/// A request: the `bpf_cgroup_dev_ctx` the kernel hands the program.
#[cfg(test)]
#[derive(Debug, Clone, Copy)]
struct Request {
    kind: u32,
    major: u32,
    minor: u32,
    access: u32,
}

impl Rule {
    #[cfg(test)]
    fn matches(&self, q: &Request) -> bool {
        let Some(kind) = self.kind else {
            return true;
        };
        kind == q.kind
            && q.access & !self.access == 0
            && self.major.is_none_or(|m| m == q.major)
            && self.minor.is_none_or(|m| m == q.minor)
    }
}

/// The decision the program makes, written plainly: the emitter mirrors it
/// and the tests check one against the other.
#[cfg(test)]
fn evaluate(rules: &[Rule], q: &Request) -> bool {
    rules
        .iter()
        .rev()
        .find(|r| r.matches(q))
        .is_some_and(|r| r.allow)
}

/// One `struct bpf_insn`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(C)]
pub struct Insn {
    code: u8,
    /// dst_reg in the low nibble, src_reg in the high one.
    regs: u8,
    off: i16,
    imm: i32,
}

const fn insn(code: u8, dst: u8, src: u8, off: i16, imm: i32) -> Insn {
    Insn {
        code,
        regs: dst | (src << 4),
        off,
        imm,
    }
}

// Opcodes: class | op | source.
const LDX_MEM_W: u8 = 0x61; // dst = *(u32 *)(src + off)
const ALU32_MOV_X: u8 = 0xbc; // dst = (u32)src
const ALU32_AND_K: u8 = 0x54; // dst &= imm (32 bits)
const ALU32_RSH_K: u8 = 0x74; // dst >>= imm (32 bits)
const ALU64_MOV_K: u8 = 0xb7; // dst = imm
const JMP32_JNE_K: u8 = 0x56; // if (u32)dst != imm: pc += off
const JMP_EXIT: u8 = 0x95;

// Registers: r1 holds the context; these hold its fields once loaded.
const R_TYPE: u8 = 3;
const R_ACCESS: u8 = 4;
const R_MAJOR: u8 = 5;
const R_MINOR: u8 = 6;
const R_SCRATCH: u8 = 7;

/// The program for `rules`: the fields of the request are loaded once, then
/// one block per rule from the last to the first, each a run of "not this
/// rule: skip to the next block" tests ending in "return allow"; after the
/// first rule's block, "return 0" (deny). A rule that matches everything
/// (`a`) ends the program: the verifier refuses code that can't be reached.
pub fn program(rules: &[Rule]) -> Result<Vec<Insn>> {
    let mut p = vec![
        insn(LDX_MEM_W, 2, 1, 0, 0),
        insn(ALU32_MOV_X, R_TYPE, 2, 0, 0),
        insn(ALU32_AND_K, R_TYPE, 0, 0, 0xffff),
        insn(ALU32_MOV_X, R_ACCESS, 2, 0, 0),
        insn(ALU32_RSH_K, R_ACCESS, 0, 0, 16),
        insn(LDX_MEM_W, R_MAJOR, 1, 4, 0),
        insn(LDX_MEM_W, R_MINOR, 1, 8, 0),
    ];
    for rule in rules.iter().rev() {
        let ret = [
            insn(ALU64_MOV_K, 0, 0, 0, i32::from(rule.allow)),
            insn(JMP_EXIT, 0, 0, 0, 0),
        ];
        let Some(kind) = rule.kind else {
            p.extend(ret);
            return Ok(p);
        };
        // (register, value) pairs that must be equal; `None` skips the test.
        let mut tests: Vec<Insn> = Vec::with_capacity(6);
        let jne = |reg: u8, value: u32| insn(JMP32_JNE_K, reg, 0, 0, value as i32);
        tests.push(jne(R_TYPE, kind));
        if rule.access & 7 != 7 {
            // Any requested bit outside the rule's access: no match.
            tests.push(insn(ALU32_MOV_X, R_SCRATCH, R_ACCESS, 0, 0));
            tests.push(insn(ALU32_AND_K, R_SCRATCH, 0, 0, !(rule.access as i32)));
            tests.push(jne(R_SCRATCH, 0));
        }
        if let Some(major) = rule.major {
            tests.push(jne(R_MAJOR, major));
        }
        if let Some(minor) = rule.minor {
            tests.push(jne(R_MINOR, minor));
        }
        // Each jump lands right after this block's return.
        let len = tests.len() + ret.len();
        for (i, t) in tests.iter_mut().enumerate() {
            if t.code == JMP32_JNE_K {
                t.off = i16::try_from(len - i - 1)
                    .map_err(|_| anyhow!("linux.resources.devices: program too long"))?;
            }
        }
        p.extend(tests);
        p.extend(ret);
    }
    p.extend([insn(ALU64_MOV_K, 0, 0, 0, 0), insn(JMP_EXIT, 0, 0, 0, 0)]);
    Ok(p)
}

// bpf(2) commands, program and attach types, flags (linux/bpf.h).
const BPF_PROG_LOAD: libc::c_long = 5;
const BPF_PROG_ATTACH: libc::c_long = 8;
const BPF_PROG_DETACH: libc::c_long = 9;
const BPF_PROG_GET_FD_BY_ID: libc::c_long = 13;
const BPF_OBJ_GET_INFO_BY_FD: libc::c_long = 15;
const BPF_PROG_QUERY: libc::c_long = 16;
const BPF_PROG_TYPE_CGROUP_DEVICE: u32 = 15;
const BPF_CGROUP_DEVICE: u32 = 6;
const BPF_F_ALLOW_MULTI: u32 = 2;

/// The leading fields of `union bpf_attr` for each command; the kernel
/// takes a shorter attr than its own and reads the rest as zero.
#[repr(C)]
#[derive(Default)]
struct ProgLoadAttr {
    prog_type: u32,
    insn_cnt: u32,
    insns: u64,
    license: u64,
    log_level: u32,
    log_size: u32,
    log_buf: u64,
    kern_version: u32,
    prog_flags: u32,
    prog_name: [u8; 16],
    prog_ifindex: u32,
    expected_attach_type: u32,
}

#[repr(C)]
#[derive(Default)]
struct AttachAttr {
    target_fd: u32,
    attach_bpf_fd: u32,
    attach_type: u32,
    attach_flags: u32,
}

#[repr(C)]
#[derive(Default)]
struct QueryAttr {
    target_fd: u32,
    attach_type: u32,
    query_flags: u32,
    attach_flags: u32,
    prog_ids: u64,
    prog_cnt: u32,
}

#[repr(C)]
#[derive(Default)]
struct GetFdByIdAttr {
    prog_id: u32,
    next_id: u32,
    open_flags: u32,
}

#[repr(C)]
#[derive(Default)]
struct InfoAttr {
    bpf_fd: u32,
    info_len: u32,
    info: u64,
}

/// The leading fields of `struct bpf_prog_info` up to the name.
#[repr(C)]
#[derive(Default)]
struct ProgInfo {
    prog_type: u32,
    id: u32,
    tag: [u8; 8],
    jited_prog_len: u32,
    xlated_prog_len: u32,
    jited_prog_insns: u64,
    xlated_prog_insns: u64,
    load_time: u64,
    created_by_uid: u32,
    nr_map_ids: u32,
    map_ids: u64,
    name: [u8; 16],
}

fn bpf<T>(cmd: libc::c_long, attr: &mut T) -> std::io::Result<i64> {
    // SAFETY: attr is a live, initialised #[repr(C)] prefix of union
    // bpf_attr of the size passed; pointers in it outlive the call.
    let r = unsafe {
        libc::syscall(
            libc::SYS_bpf,
            cmd,
            attr as *mut T as *mut libc::c_void,
            std::mem::size_of::<T>() as libc::c_uint,
        )
    };
    if r < 0 {
        Err(std::io::Error::last_os_error())
    } else {
        Ok(r)
    }
}

fn fd_of(r: i64) -> OwnedFd {
    // SAFETY: a successful bpf(2) that makes an object returns a new fd.
    unsafe { OwnedFd::from_raw_fd(r as i32) }
}

/// Loads the program; on failure the error has the verifier's last words.
fn load(insns: &[Insn]) -> Result<OwnedFd> {
    let license = c"GPL";
    let mut name = [0u8; 16];
    name[..PROG_NAME.len()].copy_from_slice(PROG_NAME);
    let mut attr = ProgLoadAttr {
        prog_type: BPF_PROG_TYPE_CGROUP_DEVICE,
        insn_cnt: insns.len() as u32,
        insns: insns.as_ptr() as u64,
        license: license.as_ptr() as u64,
        prog_name: name,
        ..Default::default()
    };
    let first = match bpf(BPF_PROG_LOAD, &mut attr) {
        Ok(fd) => return Ok(fd_of(fd)),
        Err(e) => e,
    };
    // Again with the verifier's log, which the first try leaves out (the
    // log costs time on every create).
    let mut log = vec![0u8; 1 << 16];
    attr.log_level = 1;
    attr.log_size = log.len() as u32;
    attr.log_buf = log.as_mut_ptr() as u64;
    let err = match bpf(BPF_PROG_LOAD, &mut attr) {
        Ok(fd) => return Ok(fd_of(fd)),
        Err(e) => e,
    };
    let text =
        String::from_utf8_lossy(&log[..log.iter().position(|&b| b == 0).unwrap_or(0)]).into_owned();
    let tail = text
        .lines()
        .rev()
        .filter(|l| !l.trim().is_empty())
        .take(2)
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
        .collect::<Vec<_>>()
        .join("; ");
    if tail.is_empty() {
        bail!("linux.resources.devices: load eBPF device filter: {first}");
    }
    bail!("linux.resources.devices: load eBPF device filter: {err}: {tail}")
}

fn prog_info(fd: &OwnedFd) -> std::io::Result<ProgInfo> {
    let mut info = ProgInfo::default();
    let mut attr = InfoAttr {
        bpf_fd: fd.as_raw_fd() as u32,
        info_len: std::mem::size_of::<ProgInfo>() as u32,
        info: &mut info as *mut ProgInfo as u64,
    };
    bpf(BPF_OBJ_GET_INFO_BY_FD, &mut attr)?;
    Ok(info)
}

/// The ids of the device programs attached to the cgroup itself (not those
/// of its ancestors).
fn attached(cgroup: &OwnedFd) -> std::io::Result<Vec<u32>> {
    let mut ids = vec![0u32; 64];
    loop {
        let mut attr = QueryAttr {
            target_fd: cgroup.as_raw_fd() as u32,
            attach_type: BPF_CGROUP_DEVICE,
            prog_ids: ids.as_mut_ptr() as u64,
            prog_cnt: ids.len() as u32,
            ..Default::default()
        };
        match bpf(BPF_PROG_QUERY, &mut attr) {
            Ok(_) => {
                ids.truncate(attr.prog_cnt as usize);
                return Ok(ids);
            }
            // ENOSPC: more than fit; prog_cnt says how many there are.
            Err(e)
                if e.raw_os_error() == Some(libc::ENOSPC) && attr.prog_cnt as usize > ids.len() =>
            {
                ids = vec![0; attr.prog_cnt as usize];
            }
            Err(e) => return Err(e),
        }
    }
}

/// Attaches the filter for `rules` (the config's, then the defaults) to the
/// cgroup directory `dir`, then detaches the filters berth attached there
/// before (`update`): the new one is in place before the old one goes, so
/// there is no moment without a filter. BPF_F_ALLOW_MULTI lets a program
/// systemd put on the scope stay; the kernel allows a request only when
/// every program on the cgroup and its ancestors does. Every fd is closed on
/// return: the attached program lives as long as the cgroup.
pub fn apply(dir: &Path, rules: &[Rule]) -> Result<()> {
    let insns = program(rules)?;
    let prog = load(&insns)?;
    let c_dir = CString::new(dir.as_os_str().as_encoded_bytes())
        .map_err(|_| anyhow!("cgroup path {} has a NUL byte", dir.display()))?;
    // SAFETY: plain open(2) of a NUL-terminated path.
    let raw = unsafe {
        libc::open(
            c_dir.as_ptr(),
            libc::O_RDONLY | libc::O_DIRECTORY | libc::O_CLOEXEC,
        )
    };
    if raw < 0 {
        bail!(
            "linux.resources.devices: open cgroup {}: {}",
            dir.display(),
            std::io::Error::last_os_error()
        );
    }
    // SAFETY: open(2) just returned this fd to us.
    let cgroup = unsafe { OwnedFd::from_raw_fd(raw) };
    let mut attr = AttachAttr {
        target_fd: cgroup.as_raw_fd() as u32,
        attach_bpf_fd: prog.as_raw_fd() as u32,
        attach_type: BPF_CGROUP_DEVICE,
        attach_flags: BPF_F_ALLOW_MULTI,
    };
    bpf(BPF_PROG_ATTACH, &mut attr).map_err(|e| {
        anyhow!(
            "linux.resources.devices: attach eBPF device filter to cgroup {}: {e}",
            dir.display()
        )
    })?;
    let detach_old = || -> std::io::Result<()> {
        let new_id = prog_info(&prog)?.id;
        for id in attached(&cgroup)? {
            if id == new_id {
                continue;
            }
            let mut by_id = GetFdByIdAttr {
                prog_id: id,
                ..Default::default()
            };
            let old = match bpf(BPF_PROG_GET_FD_BY_ID, &mut by_id) {
                Ok(fd) => fd_of(fd),
                // Detached meanwhile.
                Err(e) if e.raw_os_error() == Some(libc::ENOENT) => continue,
                Err(e) => return Err(e),
            };
            let name = prog_info(&old)?.name;
            if !name.starts_with(PROG_NAME) || name[PROG_NAME.len()] != 0 {
                continue;
            }
            let mut detach = AttachAttr {
                target_fd: cgroup.as_raw_fd() as u32,
                attach_bpf_fd: old.as_raw_fd() as u32,
                attach_type: BPF_CGROUP_DEVICE,
                attach_flags: 0,
            };
            match bpf(BPF_PROG_DETACH, &mut detach) {
                Err(e) if e.raw_os_error() != Some(libc::ENOENT) => return Err(e),
                _ => {}
            }
        }
        Ok(())
    };
    detach_old().map_err(|e| {
        anyhow!(
            "linux.resources.devices: replace the eBPF device filter of cgroup {}: {e}",
            dir.display()
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Runs an emitted program on a request, for the instructions `program`
    /// emits (anything else fails the test).
    fn interpret(p: &[Insn], q: &Request) -> u64 {
        let ctx = [q.access << 16 | q.kind, q.major, q.minor];
        let mut reg = [0u64; 11];
        let mut pc = 0usize;
        for _ in 0..100_000 {
            let i = p[pc];
            let (dst, src) = ((i.regs & 0xf) as usize, (i.regs >> 4) as usize);
            pc += 1;
            match i.code {
                LDX_MEM_W => {
                    assert_eq!(src, 1, "loads only from the context");
                    reg[dst] = u64::from(ctx[i.off as usize / 4]);
                }
                ALU32_MOV_X => reg[dst] = reg[src] & 0xffff_ffff,
                ALU32_AND_K => reg[dst] = (reg[dst] as u32 & i.imm as u32) as u64,
                ALU32_RSH_K => reg[dst] = (reg[dst] as u32 >> i.imm) as u64,
                ALU64_MOV_K => reg[dst] = i.imm as i64 as u64,
                JMP32_JNE_K => {
                    if reg[dst] as u32 != i.imm as u32 {
                        pc += i.off as usize;
                    }
                }
                JMP_EXIT => return reg[0],
                c => panic!("unexpected opcode {c:#x}"),
            }
        }
        panic!("no exit");
    }

    fn rule(
        allow: bool,
        kind: Option<u32>,
        major: Option<u32>,
        minor: Option<u32>,
        a: &str,
    ) -> Rule {
        let access = a
            .chars()
            .map(|c| match c {
                'r' => ACC_READ,
                'w' => ACC_WRITE,
                _ => ACC_MKNOD,
            })
            .fold(0, |x, y| x | y);
        Rule {
            allow,
            kind,
            major,
            minor,
            access,
        }
    }

    fn req(kind: u32, major: u32, minor: u32, access: u32) -> Request {
        Request {
            kind,
            major,
            minor,
            access,
        }
    }

    /// The whole effective list berth uses: deny all, then the defaults.
    fn defaults_after(config: &str) -> Vec<Rule> {
        let config: Vec<LinuxDeviceCgroup> = serde_json::from_str(config).unwrap();
        let list: Vec<LinuxDeviceCgroup> = super::super::device_rules(Some(&config)).collect();
        rules(&list).unwrap()
    }

    #[test]
    fn last_matching_rule_wins_and_nothing_matching_is_denied() {
        let mem_r = req(DEV_CHAR, 1, 1, ACC_READ);
        let mem_w = req(DEV_CHAR, 1, 1, ACC_WRITE);
        assert!(!evaluate(&[], &mem_r), "empty list: deny");
        let allow_all = rule(true, None, None, None, "rwm");
        let deny_mem = rule(false, Some(DEV_CHAR), Some(1), Some(1), "rwm");
        let allow_mem_r = rule(true, Some(DEV_CHAR), Some(1), Some(1), "r");
        assert!(evaluate(&[allow_all], &mem_w));
        assert!(!evaluate(&[allow_all, deny_mem], &mem_r));
        assert!(evaluate(&[deny_mem, allow_all], &mem_r));
        // Access is a subset test: "r" allows reads only.
        assert!(evaluate(&[deny_mem, allow_mem_r], &mem_r));
        assert!(!evaluate(&[deny_mem, allow_mem_r], &mem_w));
        // Type and numbers must match; `a` matches whatever the access.
        let blk = req(DEV_BLOCK, 1, 1, ACC_READ);
        assert!(!evaluate(&[allow_mem_r], &blk));
        assert!(evaluate(&[rule(true, None, Some(9), Some(9), "")], &blk));
        assert!(!evaluate(&[allow_mem_r], &req(DEV_CHAR, 1, 2, ACC_READ)));
    }

    #[test]
    fn config_rules_then_defaults() {
        // berth spec's deny-all, then the config's own rules, then the defaults.
        let r = defaults_after(
            r#"[{"allow":false,"access":"rwm"},
                {"allow":true,"type":"c","major":1,"minor":1,"access":"r"},
                {"allow":false,"type":"c","major":1,"minor":3,"access":"rwm"}]"#,
        );
        assert!(evaluate(&r, &req(DEV_CHAR, 1, 1, ACC_READ)));
        assert!(!evaluate(&r, &req(DEV_CHAR, 1, 1, ACC_WRITE)));
        assert!(!evaluate(&r, &req(DEV_BLOCK, 8, 0, ACC_READ)));
        assert!(evaluate(&r, &req(DEV_BLOCK, 8, 0, ACC_MKNOD)));
        assert!(evaluate(&r, &req(DEV_CHAR, 1, 5, ACC_WRITE)));
        assert!(evaluate(&r, &req(DEV_CHAR, 136, 4, ACC_READ)));
        // The default allow of /dev/null comes after the config's deny, as
        // it does on v1: the defaults always win.
        assert!(evaluate(&r, &req(DEV_CHAR, 1, 3, ACC_READ)));
    }

    #[test]
    fn emitted_program_decides_as_the_rules_do() {
        let lists = [
            vec![],
            defaults_after(r#"[{"allow":false,"access":"rwm"}]"#),
            defaults_after(
                r#"[{"allow":false,"access":"rwm"},
                    {"allow":true,"type":"c","major":1,"minor":1,"access":"r"},
                    {"allow":true,"type":"b","major":8,"access":"rw"},
                    {"allow":false,"type":"c","minor":5,"access":"w"}]"#,
            ),
            vec![
                rule(true, Some(DEV_CHAR), None, None, "rwm"),
                rule(false, Some(DEV_CHAR), Some(4_000_000_000), None, "m"),
                rule(true, Some(DEV_BLOCK), None, Some(0), "wm"),
            ],
            // An `a` rule after others: they are never reached.
            vec![
                rule(false, Some(DEV_CHAR), Some(1), Some(3), "rwm"),
                rule(true, None, None, None, "rwm"),
                rule(false, Some(DEV_CHAR), Some(1), Some(5), "w"),
            ],
        ];
        let mut checked = 0;
        for rules in &lists {
            let p = program(rules).unwrap();
            for kind in [DEV_BLOCK, DEV_CHAR] {
                for major in [0, 1, 5, 8, 10, 136, 4_000_000_000] {
                    for minor in [0, 1, 3, 5, 200] {
                        for access in 1..8 {
                            let q = req(kind, major, minor, access);
                            assert_eq!(
                                interpret(&p, &q) == 1,
                                evaluate(rules, &q),
                                "{q:?} with {rules:?}"
                            );
                            checked += 1;
                        }
                    }
                }
            }
        }
        assert_eq!(checked, lists.len() * 2 * 7 * 5 * 7);
    }

    #[test]
    fn an_all_rule_ends_the_program() {
        // The verifier refuses unreachable instructions: nothing after it.
        let p = program(&[
            rule(false, Some(DEV_CHAR), Some(1), Some(3), "rwm"),
            rule(true, None, None, None, "rwm"),
        ])
        .unwrap();
        assert_eq!(p.len(), 7 + 2);
        assert_eq!(p.last().unwrap().code, JMP_EXIT);
    }

    /// A cgroup2 directory to try the filter in: the unified hierarchy, at
    /// /sys/fs/cgroup on pure v2 or /sys/fs/cgroup/unified on hybrid hosts
    /// (there the kernel runs device programs too, before the v1 check).
    fn cgroup2_root() -> Option<&'static str> {
        ["/sys/fs/cgroup", "/sys/fs/cgroup/unified"]
            .into_iter()
            .find(|p| {
                nix::sys::statfs::statfs(*p)
                    .is_ok_and(|s| s.filesystem_type() == nix::sys::statfs::CGROUP2_SUPER_MAGIC)
            })
    }

    /// Runs `script` with sh in `dir`'s cgroup; its stdout.
    fn sh_in(dir: &Path, script: &str) -> String {
        use std::os::unix::process::CommandExt;
        let procs = CString::new(
            dir.join("cgroup.procs")
                .into_os_string()
                .into_encoded_bytes(),
        )
        .unwrap();
        let mut cmd = std::process::Command::new("sh");
        cmd.args(["-c", script]);
        // SAFETY: between fork and exec only open/write/close, which are
        // async-signal-safe, on data made before the fork.
        unsafe {
            cmd.pre_exec(move || {
                let fd = libc::open(procs.as_ptr(), libc::O_WRONLY | libc::O_CLOEXEC);
                if fd < 0 || libc::write(fd, b"0".as_ptr().cast(), 1) != 1 {
                    return Err(std::io::Error::last_os_error());
                }
                libc::close(fd);
                Ok(())
            });
        }
        let out = cmd.output().unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    // The kernel loads, attaches and runs the program: with a deny-all and
    // the defaults, /dev/null and /dev/zero open both ways and kmsg (c 1:11)
    // not at all; an allow "r" rule for it lets it be read, not
    // written; a replace leaves one berth program on the cgroup. (Errors
    // go to a closed stderr: redirecting to /dev/null would itself be
    // a device open under test.)
    #[test]
    fn kernel_enforces_the_filter() {
        if !nix::unistd::geteuid().is_root() {
            eprintln!("SKIP kernel_enforces_the_filter: needs root");
            return;
        }
        let root = cgroup2_root().expect("a cgroup2 mount");
        let dir = Path::new(root).join(format!("berth-devfilter-test-{}", std::process::id()));
        std::fs::create_dir(&dir).unwrap();
        // A node of our own for /dev/kmsg (c 1:11), which every kernel has
        // (kernels without /dev/mem answer ENXIO, whatever the filter says).
        let mem = std::env::temp_dir().join(format!("berth-devfilter-kmsg-{}", std::process::id()));
        nix::sys::stat::mknod(
            &mem,
            nix::sys::stat::SFlag::S_IFCHR,
            nix::sys::stat::Mode::from_bits_truncate(0o600),
            libc::makedev(1, 11),
        )
        .unwrap();
        let script = format!(
            "for d in /dev/null /dev/zero {}; do \
               (: < $d) 2>&- && echo $d r; (: > $d) 2>&- && echo $d w; \
             done; true",
            mem.display()
        );
        let check = || -> String { sh_in(&dir, &script).replace(mem.to_str().unwrap(), "kmsg") };
        let run = || {
            let before = check();
            assert!(
                before.contains("kmsg r"),
                "root reads kmsg unfiltered: {before}"
            );
            let list = |json: &str| -> Vec<Rule> {
                let config: Vec<LinuxDeviceCgroup> = serde_json::from_str(json).unwrap();
                let all: Vec<LinuxDeviceCgroup> =
                    super::super::device_rules(Some(&config)).collect();
                rules(&all).unwrap()
            };
            apply(&dir, &list(r#"[{"allow":false,"access":"rwm"}]"#)).unwrap();
            assert_eq!(
                check(),
                "/dev/null r\n/dev/null w\n/dev/zero r\n/dev/zero w\n"
            );
            apply(
                &dir,
                &list(
                    r#"[{"allow":false,"access":"rwm"},
                        {"allow":true,"type":"c","major":1,"minor":11,"access":"r"}]"#,
                ),
            )
            .unwrap();
            assert_eq!(
                check(),
                "/dev/null r\n/dev/null w\n/dev/zero r\n/dev/zero w\nkmsg r\n"
            );
            let c = CString::new(dir.as_os_str().as_encoded_bytes()).unwrap();
            // SAFETY: open(2) of a NUL-terminated path; the fd is owned at once.
            let fd = unsafe { libc::open(c.as_ptr(), libc::O_RDONLY | libc::O_DIRECTORY) };
            assert!(fd >= 0);
            let fd = unsafe { OwnedFd::from_raw_fd(fd) };
            assert_eq!(
                attached(&fd).unwrap().len(),
                1,
                "the old program is detached"
            );
        };
        let result = std::panic::catch_unwind(run);
        let _ = std::fs::remove_dir(&dir);
        let _ = std::fs::remove_file(&mem);
        if let Err(e) = result {
            std::panic::resume_unwind(e);
        }
    }

    #[test]
    fn bad_rules_are_named() {
        let bad = |json: &str| -> String {
            let list: Vec<LinuxDeviceCgroup> = serde_json::from_str(json).unwrap();
            rules(&list).unwrap_err().to_string()
        };
        let e = bad(r#"[{"allow":true,"type":"p","access":"r"}]"#);
        assert!(
            e.contains("linux.resources.devices") && e.contains("\"p\""),
            "{e}"
        );
        let e = bad(r#"[{"allow":true,"type":"c","access":"rx"}]"#);
        assert!(e.contains("'x'"), "{e}");
        let e = bad(r#"[{"allow":true,"type":"c","major":-7,"access":"r"}]"#);
        assert!(e.contains("-7"), "{e}");
    }
}
