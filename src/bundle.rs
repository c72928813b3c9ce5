//! Loading a bundle (bundle.md): its config.json and its rootfs.

use anyhow::{anyhow, bail, Context, Result};
use oci_spec::runtime::Spec;
use std::path::{Path, PathBuf};

pub struct Bundle {
    /// Absolute, canonical bundle directory.
    pub dir: PathBuf,
    pub spec: Spec,
    /// Absolute, canonical host path of `root.path`.
    pub rootfs: PathBuf,
}

pub fn load(dir: &Path) -> Result<Bundle> {
    let dir = dir
        .canonicalize()
        .map_err(|e| anyhow!("bundle {}: {e}", dir.display()))?;
    let config_path = dir.join("config.json");
    let data =
        std::fs::read(&config_path).map_err(|e| anyhow!("read {}: {e}", config_path.display()))?;
    let spec: Spec = serde_json::from_slice(&data).map_err(|e| {
        // Parse again, only on failure, to name the field that is wrong.
        let de = &mut serde_json::Deserializer::from_slice(&data);
        match serde_path_to_error::deserialize::<_, Spec>(de) {
            Err(pe) if pe.path().iter().next().is_some() => {
                anyhow!("invalid {}: {}: {e}", config_path.display(), pe.path())
            }
            _ => anyhow!("invalid {}: {e}", config_path.display()),
        }
    })?;

    let root = spec
        .root()
        .as_ref()
        .ok_or_else(|| anyhow!("{}: root is required", config_path.display()))?;
    let rootfs = dir.join(root.path());
    let rootfs = rootfs
        .canonicalize()
        .map_err(|e| anyhow!("rootfs {}: {e}", rootfs.display()))?;
    if !rootfs.is_dir() {
        bail!("rootfs {} is not a directory", rootfs.display());
    }
    let process = spec
        .process()
        .as_ref()
        .ok_or_else(|| anyhow!("{}: process is required", config_path.display()))?;
    if process.args().as_ref().is_none_or(|a| a.is_empty()) {
        bail!("{}: process.args must not be empty", config_path.display());
    }
    reject_unsupported(&spec).with_context(|| format!("{}", config_path.display()))?;
    validate_hooks(&spec).with_context(|| format!("{}", config_path.display()))?;
    validate_sysctl(&spec).with_context(|| format!("{}", config_path.display()))?;
    crate::process_attrs::validate(&spec).with_context(|| format!("{}", config_path.display()))?;
    Ok(Bundle { dir, spec, rootfs })
}

/// config.md "POSIX-platform Hooks": every hook's `path` is absolute and a
/// `timeout`, if set, is greater than zero. Checked at create, so that a bad
/// poststart or poststop hook is refused before anything runs.
fn validate_hooks(spec: &Spec) -> Result<()> {
    let Some(hooks) = spec.hooks() else {
        return Ok(());
    };
    let kinds = [
        ("prestart", hooks.prestart()),
        ("createRuntime", hooks.create_runtime()),
        ("createContainer", hooks.create_container()),
        ("startContainer", hooks.start_container()),
        ("poststart", hooks.poststart()),
        ("poststop", hooks.poststop()),
    ];
    for (kind, list) in kinds {
        for (i, hook) in list.iter().flatten().enumerate() {
            if !hook.path().is_absolute() {
                bail!(
                    "hooks.{kind}[{i}]: path {} must be absolute",
                    hook.path().display()
                );
            }
            if let Some(t) = hook.timeout() {
                if t <= 0 {
                    bail!("hooks.{kind}[{i}]: timeout must be greater than zero, got {t}");
                }
            }
        }
    }
    Ok(())
}

/// linux.sysctl: only keys the kernel scopes to a namespace the container
/// has of its own (or joins), as runc allows; any other key would change
/// the host. Checked at create so the error names the key before anything
/// exists.
fn validate_sysctl(spec: &Spec) -> Result<()> {
    use oci_spec::runtime::LinuxNamespaceType as Ns;
    let Some(linux) = spec.linux() else {
        return Ok(());
    };
    let Some(sysctl) = linux.sysctl() else {
        return Ok(());
    };
    let has = |kind: Ns| linux.namespaces().iter().flatten().any(|n| n.typ() == kind);
    // The ipc namespace's keys (ipc_namespaces(7), mq_overview(7)).
    const IPC_KEYS: &[&str] = &[
        "kernel.msgmax",
        "kernel.msgmnb",
        "kernel.msgmni",
        "kernel.sem",
        "kernel.shmall",
        "kernel.shmmax",
        "kernel.shmmni",
        "kernel.shm_rmid_forced",
    ];
    let mut keys: Vec<&String> = sysctl.keys().collect();
    keys.sort();
    for key in keys {
        // A key names a file under /proc/sys: no slashes, no empty parts.
        if key.is_empty() || key.contains('/') || key.split('.').any(|p| p.is_empty()) {
            bail!("linux.sysctl: invalid key {key:?}");
        }
        let (needs, name) = if IPC_KEYS.contains(&key.as_str()) || key.starts_with("fs.mqueue.") {
            (Ns::Ipc, "ipc")
        } else if key.starts_with("net.") {
            (Ns::Network, "network")
        } else if key == "kernel.hostname" || key == "kernel.domainname" {
            (Ns::Uts, "uts")
        } else {
            bail!("linux.sysctl: {key} is not in a namespace the container can have: it would change the host");
        };
        if !has(needs) {
            bail!("linux.sysctl: {key} needs a {name} namespace in linux.namespaces");
        }
    }
    Ok(())
}

/// Fields berth doesn't implement yet: refuse them by name rather than run a
/// container that is less isolated than its config asks for.
fn reject_unsupported(spec: &Spec) -> Result<()> {
    let mut missing = Vec::new();
    if let Some(linux) = spec.linux() {
        if linux.intel_rdt().is_some() {
            missing.push("linux.intelRdt");
        }
    }
    if !missing.is_empty() {
        bail!("not supported by berth yet: {}", missing.join(", "));
    }
    Ok(())
}
