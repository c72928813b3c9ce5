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

/// Fields berth doesn't implement yet: refuse them by name rather than run a
/// container that is less isolated than its config asks for.
fn reject_unsupported(spec: &Spec) -> Result<()> {
    let mut missing = Vec::new();
    if let Some(linux) = spec.linux() {
        if linux.intel_rdt().is_some() {
            missing.push("linux.intelRdt");
        }
        if linux.personality().is_some() {
            missing.push("linux.personality");
        }
        if linux.memory_policy().is_some() {
            missing.push("linux.memoryPolicy");
        }
        if linux.net_devices().as_ref().is_some_and(|d| !d.is_empty()) {
            missing.push("linux.netDevices");
        }
        if linux.mount_label().as_ref().is_some_and(|l| !l.is_empty()) {
            missing.push("linux.mountLabel");
        }
    }
    if let Some(p) = spec.process() {
        if p.apparmor_profile().as_ref().is_some_and(|l| !l.is_empty()) {
            missing.push("process.apparmorProfile");
        }
        if p.selinux_label().as_ref().is_some_and(|l| !l.is_empty()) {
            missing.push("process.selinuxLabel");
        }
        if p.io_priority().is_some() {
            missing.push("process.ioPriority");
        }
        if p.scheduler().is_some() {
            missing.push("process.scheduler");
        }
        if p.exec_cpu_affinity().is_some() {
            missing.push("process.execCPUAffinity");
        }
    }
    if !missing.is_empty() {
        bail!("not supported by berth yet: {}", missing.join(", "));
    }
    Ok(())
}
