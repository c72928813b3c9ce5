//! The two kernel tables the rootfs setup reads about the host: /proc/self/mountinfo (which
//! filesystems are mounted where) and /proc/self/cgroup (which cgroup this process is in).

use std::ffi::OsString;
use std::os::unix::ffi::OsStringExt;
use std::path::PathBuf;

use anyhow::{Context, Result};

/// One line of /proc/self/mountinfo (proc(5)), the fields berth uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MountInfo {
    /// The directory of the filesystem that is the root of this mount.
    pub root: PathBuf,
    pub mount_point: PathBuf,
    pub fs_type: String,
    pub super_options: String,
}

/// The host's mount table as this process first read it, read at most once:
/// the cgroup hierarchies for `create`, for the init's cgroup mounts and for
/// `delete`. The init inherits `create`'s copy with the rest of its memory,
/// which is the table its new mount namespace was copied from (what the
/// init mounts itself is under the rootfs and no business of these
/// callers). Anything that needs the namespace as it is now reads it afresh
/// with [`read_mountinfo`].
pub fn host_mountinfo() -> Result<&'static [MountInfo]> {
    static HOST: std::sync::OnceLock<Vec<MountInfo>> = std::sync::OnceLock::new();
    if let Some(table) = HOST.get() {
        return Ok(table);
    }
    let table = read_mountinfo()?;
    Ok(HOST.get_or_init(|| table))
}

pub fn read_mountinfo() -> Result<Vec<MountInfo>> {
    let text = crate::procfs::read_to_string("/proc/self/mountinfo")
        .context("reading /proc/self/mountinfo")?;
    Ok(parse_mountinfo(&text))
}

pub fn parse_mountinfo(text: &str) -> Vec<MountInfo> {
    text.lines().filter_map(parse_mountinfo_line).collect()
}

fn parse_mountinfo_line(line: &str) -> Option<MountInfo> {
    // "36 35 98:0 /mnt1 /mnt2 rw,noatime master:1 - ext3 /dev/root rw,errors=continue"
    let (before, after) = line.split_once(" - ")?;
    let mut fields = before.split(' ');
    let root = fields.nth(3)?;
    let mount_point = fields.next()?;
    let mut after = after.split(' ');
    let fs_type = after.next()?;
    let _source = after.next()?;
    let super_options = after.next().unwrap_or("");
    Some(MountInfo {
        root: unescape(root),
        mount_point: unescape(mount_point),
        fs_type: fs_type.to_string(),
        super_options: super_options.to_string(),
    })
}

/// mountinfo writes space, tab, newline and backslash as \ooo octal escapes.
fn unescape(field: &str) -> PathBuf {
    let bytes = field.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'\\' {
            let octal = bytes
                .get(i + 1..i + 4)
                .filter(|d| d.iter().all(|b| matches!(b, b'0'..=b'7')));
            if let Some(digits) = octal {
                out.push(
                    digits
                        .iter()
                        .fold(0u8, |v, d| v.wrapping_mul(8) + (d - b'0')),
                );
                i += 4;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    PathBuf::from(OsString::from_vec(out))
}

/// One line of /proc/self/cgroup: "hierarchy-ID:controller-list:cgroup-path".
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CgroupMembership {
    pub hierarchy: u32,
    /// "cpu,cpuacct", "name=systemd", or "" for the cgroup2 hierarchy.
    pub controllers: String,
    pub path: PathBuf,
}

pub fn read_own_cgroups() -> Result<Vec<CgroupMembership>> {
    let text =
        crate::procfs::read_to_string("/proc/self/cgroup").context("reading /proc/self/cgroup")?;
    Ok(parse_cgroups(&text))
}

pub fn parse_cgroups(text: &str) -> Vec<CgroupMembership> {
    text.lines()
        .filter_map(|line| {
            let mut parts = line.splitn(3, ':');
            let hierarchy = parts.next()?.parse().ok()?;
            let controllers = parts.next()?.to_string();
            let path = PathBuf::from(parts.next()?);
            Some(CgroupMembership {
                hierarchy,
                controllers,
                path,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mountinfo_lines() {
        let text = "27 1 254:0 / / rw,relatime - ext4 /dev/vda rw,discard\n\
                    32 31 0:29 / /sys/fs/cgroup/cpu,cpuacct rw,relatime shared:7 - cgroup cgroup rw,cpu,cpuacct\n\
                    99 27 0:50 /sub /mnt/with\\040space rw master:3 propagate_from:2 - tmpfs none rw\n";
        let m = parse_mountinfo(text);
        assert_eq!(m.len(), 3);
        assert_eq!(m[0].mount_point, PathBuf::from("/"));
        assert_eq!(m[0].fs_type, "ext4");
        assert_eq!(
            m[1].mount_point,
            PathBuf::from("/sys/fs/cgroup/cpu,cpuacct")
        );
        assert_eq!(m[1].super_options, "rw,cpu,cpuacct");
        assert_eq!(m[2].root, PathBuf::from("/sub"));
        assert_eq!(m[2].mount_point, PathBuf::from("/mnt/with space"));
        assert_eq!(m[2].fs_type, "tmpfs");
    }

    #[test]
    fn cgroup_lines() {
        let c = parse_cgroups("4:cpu,cpuacct:/user.slice\n1:name=systemd:/a:b\n0::/\n");
        assert_eq!(c.len(), 3);
        assert_eq!(c[0].controllers, "cpu,cpuacct");
        assert_eq!(c[1].path, PathBuf::from("/a:b"));
        assert_eq!(c[2].hierarchy, 0);
        assert_eq!(c[2].controllers, "");
    }
}
