//! `features`: the Features structure of features.md / features-linux.md,
//! listing exactly what berth implements (not what the OCI spec knows).

use crate::rootfs::mount_options;
use anyhow::Result;
use serde_json::{json, Value};

/// Candidate mount option names; only those mount_options.rs implements are
/// printed.
const MOUNT_OPTIONS: &[&str] = &[
    "async",
    "atime",
    "bind",
    "defaults",
    "dev",
    "diratime",
    "dirsync",
    "exec",
    "idmap",
    "iversion",
    "lazytime",
    "loud",
    "mand",
    "noatime",
    "nodev",
    "nodiratime",
    "noexec",
    "noiversion",
    "nolazytime",
    "nomand",
    "norelatime",
    "nostrictatime",
    "nosuid",
    "nosymfollow",
    "private",
    "ratime",
    "rbind",
    "rdev",
    "rdiratime",
    "relatime",
    "remount",
    "rexec",
    "ridmap",
    "rnoatime",
    "rnodev",
    "rnodiratime",
    "rnoexec",
    "rnorelatime",
    "rnostrictatime",
    "rnosuid",
    "rnosymfollow",
    "ro",
    "rprivate",
    "rrelatime",
    "rro",
    "rrw",
    "rshared",
    "rslave",
    "rstrictatime",
    "rsuid",
    "rsymfollow",
    "runbindable",
    "rw",
    "shared",
    "silent",
    "slave",
    "strictatime",
    "suid",
    "symfollow",
    "sync",
    "tmpcopyup",
    "unbindable",
];

pub fn features() -> Value {
    let mut mount_options: Vec<&str> = MOUNT_OPTIONS
        .iter()
        .copied()
        .filter(|o| mount_options::supported(o))
        .collect();
    mount_options.sort_unstable();
    let mut capabilities: Vec<String> = caps::all().iter().map(|c| c.to_string()).collect();
    capabilities.sort();
    json!({
        "ociVersionMin": "1.0.0",
        "ociVersionMax": crate::OCI_VERSION,
        "hooks": ["prestart", "createRuntime", "createContainer", "startContainer",
                  "poststart", "poststop"],
        "mountOptions": mount_options,
        "linux": {
            "namespaces": ["cgroup", "ipc", "mount", "network", "pid", "time", "user", "uts"],
            "capabilities": capabilities,
            // cgroupfs on v1, hybrid and v2; the systemd driver on pure v2 hosts
            // with systemd as init (system bus only); rdma.max on v2.
            "cgroup": { "v1": true, "v2": true, "systemd": true, "systemdUser": false,
                        "rdma": true },
            // What src/seccomp.rs maps and libseccomp 2.5 (static) can put in one
            // filter on this host: one byte order, so little-endian ABIs only.
            "seccomp": {
                "enabled": true,
                "actions": ["SCMP_ACT_ALLOW", "SCMP_ACT_ERRNO", "SCMP_ACT_KILL",
                            "SCMP_ACT_KILL_PROCESS", "SCMP_ACT_KILL_THREAD", "SCMP_ACT_LOG",
                            "SCMP_ACT_NOTIFY", "SCMP_ACT_TRACE", "SCMP_ACT_TRAP"],
                "operators": ["SCMP_CMP_EQ", "SCMP_CMP_GE", "SCMP_CMP_GT", "SCMP_CMP_LE",
                              "SCMP_CMP_LT", "SCMP_CMP_MASKED_EQ", "SCMP_CMP_NE"],
                "archs": ["SCMP_ARCH_AARCH64", "SCMP_ARCH_ARM", "SCMP_ARCH_MIPSEL",
                          "SCMP_ARCH_MIPSEL64", "SCMP_ARCH_MIPSEL64N32", "SCMP_ARCH_PPC64LE",
                          "SCMP_ARCH_RISCV64", "SCMP_ARCH_X32", "SCMP_ARCH_X86",
                          "SCMP_ARCH_X86_64"],
                "knownFlags": ["SECCOMP_FILTER_FLAG_TSYNC", "SECCOMP_FILTER_FLAG_LOG",
                               "SECCOMP_FILTER_FLAG_SPEC_ALLOW",
                               "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV"],
                "supportedFlags": ["SECCOMP_FILTER_FLAG_TSYNC", "SECCOMP_FILTER_FLAG_LOG",
                                   "SECCOMP_FILTER_FLAG_SPEC_ALLOW"]
            },
            // process.apparmorProfile, process.selinuxLabel and
            // linux.mountLabel are applied where the host has the LSM
            // ("irrelevant to the availability ... on the host").
            "apparmor": { "enabled": true },
            "selinux": { "enabled": true },
            "intelRdt": { "enabled": false },
            // containerd 2.x sends idmapped mounts only when this is true.
            "mountExtensions": { "idmap": { "enabled": true } },
            "netDevices": { "enabled": true }
        },
        "annotations": {
            "io.github.berth.version": env!("CARGO_PKG_VERSION"),
            "io.github.berth.commit": option_env!("BERTH_COMMIT").unwrap_or("unknown")
        }
    })
}

pub fn print() -> Result<()> {
    println!("{}", serde_json::to_string_pretty(&features())?);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn claims_only_what_is_implemented() {
        let f = features();
        let opts = f["mountOptions"].as_array().unwrap();
        assert!(opts.iter().any(|o| o == "rro"), "rro is implemented");
        assert!(opts.iter().any(|o| o == "idmap"), "idmap is implemented");
        assert!(opts.iter().any(|o| o == "ridmap"), "ridmap is implemented");
        assert!(
            !opts.iter().any(|o| o == "acl"),
            "acl is not an option of ours"
        );
        assert!(f["linux"]["capabilities"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c == "CAP_SYS_ADMIN"));
    }
}
