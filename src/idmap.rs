//! Idmapped mounts (config.md "Mounts": the `idmap` / `ridmap` options and a
//! mount's `uidMappings` / `gidMappings`), done with
//! mount_setattr(MOUNT_ATTR_IDMAP), which needs a user namespace that holds
//! the mapping. `create` makes one per such mount, in the host namespaces
//! before the init is cloned (only there is /proc the host's, to write the
//! maps), and hands the fds to the init, which applies them to the detached
//! bind mount before attaching it (src/rootfs.rs).

use std::fs;
use std::io::Read;
use std::os::fd::{AsRawFd, OwnedFd};

use anyhow::{anyhow, bail, Context, Result};
use oci_spec::runtime::{LinuxIdMapping, LinuxNamespaceType, Mount, Spec};

/// For each entry of `mounts`, the user namespace its idmapping uses (None for
/// a plain mount). No mount asks for one: an empty list, nothing done.
pub fn userns_for_mounts(spec: &Spec) -> Result<Vec<Option<OwnedFd>>> {
    let mounts = spec.mounts().as_deref().unwrap_or_default();
    if !mounts.iter().any(wants_idmap) {
        return Ok(Vec::new());
    }
    let linux = spec.linux().as_ref();
    let container_has_userns = linux
        .and_then(|l| l.namespaces().as_ref())
        .is_some_and(|ns| ns.iter().any(|n| n.typ() == LinuxNamespaceType::User));
    let mut fds = Vec::with_capacity(mounts.len());
    for (i, m) in mounts.iter().enumerate() {
        if !wants_idmap(m) {
            fds.push(None);
            continue;
        }
        let what = format!("mounts[{i}] ({})", m.destination().display());
        let options = m.options().as_deref().unwrap_or_default();
        let is_bind = m.typ().as_deref() == Some("bind")
            || options.iter().any(|o| o == "bind" || o == "rbind");
        if !is_bind {
            bail!("{what}: berth supports idmapped mounts for bind mounts only");
        }
        let (uids, gids) = match (m.uid_mappings(), m.gid_mappings()) {
            (Some(u), Some(g)) => (u.clone(), g.clone()),
            (None, None) => {
                // config.md: the runtime MAY use the container's user namespace
                // mapping, and MUST fail without one.
                if !container_has_userns {
                    bail!(
                        "{what}: an idmapped mount needs uidMappings and gidMappings, or a \
                         user namespace for the container"
                    );
                }
                let l = linux.expect("the container has namespaces");
                match (l.uid_mappings(), l.gid_mappings()) {
                    (Some(u), Some(g)) => (u.clone(), g.clone()),
                    _ => bail!("{what}: the container's user namespace has no mappings"),
                }
            }
            _ => bail!("{what}: uidMappings and gidMappings must be given together"),
        };
        if uids.is_empty() || gids.is_empty() {
            bail!("{what}: empty uidMappings or gidMappings");
        }
        fds.push(Some(
            new_userns(&uids, &gids).with_context(|| what.clone())?,
        ));
    }
    Ok(fds)
}

fn wants_idmap(m: &Mount) -> bool {
    m.uid_mappings().is_some()
        || m.gid_mappings().is_some()
        || m.options()
            .as_deref()
            .unwrap_or_default()
            .iter()
            .any(|o| o == "idmap" || o == "ridmap")
}

fn map_text(maps: &[LinuxIdMapping]) -> String {
    maps.iter()
        .map(|m| format!("{} {} {}\n", m.container_id(), m.host_id(), m.size()))
        .collect()
}

/// A user namespace with these maps: a child born in a new one waits on a
/// pipe while we write its maps and open its namespace, then goes away.
fn new_userns(uids: &[LinuxIdMapping], gids: &[LinuxIdMapping]) -> Result<OwnedFd> {
    let (rd, wr) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)
        .map_err(|e| anyhow!("pipe for the idmap namespace: {e}"))?;
    let pid = crate::create::clone_with(libc::CLONE_NEWUSER as u64)?;
    if pid == 0 {
        // The child: wait until the parent closes its end, then leave.
        drop(wr);
        let mut f = fs::File::from(rd);
        let _ = f.read(&mut [0u8; 1]);
        // SAFETY: leave without running the parent's destructors.
        unsafe { libc::_exit(0) };
    }
    drop(rd);
    let result = (|| -> Result<OwnedFd> {
        fs::write(format!("/proc/{pid}/uid_map"), map_text(uids))
            .map_err(|e| anyhow!("write uid_map of the idmap namespace: {e}"))?;
        fs::write(format!("/proc/{pid}/gid_map"), map_text(gids))
            .map_err(|e| anyhow!("write gid_map of the idmap namespace: {e}"))?;
        let ns = fs::File::open(format!("/proc/{pid}/ns/user"))
            .map_err(|e| anyhow!("open the idmap user namespace: {e}"))?;
        Ok(ns.into())
    })();
    drop(wr);
    let _ = nix::sys::wait::waitpid(nix::unistd::Pid::from_raw(pid), None);
    let fd = result?;
    debug_assert!(fd.as_raw_fd() >= 0);
    Ok(fd)
}
