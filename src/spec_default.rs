//! The `spec` command: the starter config.json runc writes.
//!
//! Tools and tutorials run `runc spec` and then edit the result with jq, so
//! berth writes the same document, field for field. `--rootless` gives the
//! variant runc makes for an unprivileged user: a user namespace mapping the
//! caller to root, no network namespace (it could not be configured), /sys
//! bind-mounted (sysfs cannot be mounted without a netns owned by the user),
//! no device cgroup rule and no `gid=5` on devpts (gid 5 is unmapped).

use anyhow::{bail, Context, Result};
use serde_json::{json, Value};
use std::fs::OpenOptions;
use std::io::Write;
use std::path::Path;

/// The file `spec` writes into the bundle directory.
const CONFIG_FILE: &str = "config.json";

/// The OCI runtime-spec version written into new configs: the one berth
/// implements (runc writes its own vendored version here too).
const SPEC_VERSION: &str = crate::OCI_VERSION;

/// runc's default config.json, or its `--rootless` variant.
pub fn default_spec(rootless: bool) -> Value {
    let caps = json!(["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"]);
    let mut spec = json!({
        "ociVersion": SPEC_VERSION,
        "process": {
            "terminal": true,
            "user": { "uid": 0, "gid": 0 },
            "args": ["sh"],
            "env": [
                "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                "TERM=xterm"
            ],
            "cwd": "/",
            "capabilities": {
                "bounding": caps,
                "effective": caps,
                "permitted": caps,
                "ambient": caps
            },
            "rlimits": [{ "type": "RLIMIT_NOFILE", "hard": 1024, "soft": 1024 }],
            "noNewPrivileges": true
        },
        "root": { "path": "rootfs", "readonly": true },
        "hostname": "runc",
        "mounts": [
            { "destination": "/proc", "type": "proc", "source": "proc" },
            {
                "destination": "/dev",
                "type": "tmpfs",
                "source": "tmpfs",
                "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]
            },
            {
                "destination": "/dev/pts",
                "type": "devpts",
                "source": "devpts",
                "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]
            },
            {
                "destination": "/dev/shm",
                "type": "tmpfs",
                "source": "shm",
                "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"]
            },
            {
                "destination": "/dev/mqueue",
                "type": "mqueue",
                "source": "mqueue",
                "options": ["nosuid", "noexec", "nodev"]
            },
            {
                "destination": "/sys",
                "type": "sysfs",
                "source": "sysfs",
                "options": ["nosuid", "noexec", "nodev", "ro"]
            },
            {
                "destination": "/sys/fs/cgroup",
                "type": "cgroup",
                "source": "cgroup",
                "options": ["nosuid", "noexec", "nodev", "relatime", "ro"]
            }
        ],
        "linux": {
            "resources": { "devices": [{ "allow": false, "access": "rwm" }] },
            "namespaces": [
                { "type": "pid" },
                { "type": "network" },
                { "type": "ipc" },
                { "type": "uts" },
                { "type": "mount" }
            ],
            "maskedPaths": [
                "/proc/acpi",
                "/proc/asound",
                "/proc/kcore",
                "/proc/keys",
                "/proc/latency_stats",
                "/proc/timer_list",
                "/proc/timer_stats",
                "/proc/sched_debug",
                "/sys/firmware",
                "/proc/scsi"
            ],
            "readonlyPaths": [
                "/proc/bus",
                "/proc/fs",
                "/proc/irq",
                "/proc/sys",
                "/proc/sysrq-trigger"
            ]
        }
    });
    if rootless {
        make_rootless(&mut spec);
    }
    spec
}

/// Turn the default spec into runc's rootless one (see the module comment).
fn make_rootless(spec: &mut Value) {
    let mounts = spec["mounts"].as_array_mut().expect("mounts is an array");
    for mount in mounts.iter_mut() {
        match mount["destination"].as_str() {
            Some("/dev/pts") => {
                let options = mount["options"]
                    .as_array_mut()
                    .expect("options is an array");
                options.retain(|o| o != "gid=5");
            }
            Some("/sys") => {
                *mount = json!({
                    "destination": "/sys",
                    "type": "none",
                    "source": "/sys",
                    "options": ["rbind", "nosuid", "noexec", "nodev", "ro"]
                });
            }
            _ => {}
        }
    }
    let linux = spec["linux"].as_object_mut().expect("linux is an object");
    linux.remove("resources");
    let uid = nix::unistd::geteuid().as_raw();
    let gid = nix::unistd::getegid().as_raw();
    linux.insert(
        "uidMappings".into(),
        json!([{ "containerID": 0, "hostID": uid, "size": 1 }]),
    );
    linux.insert(
        "gidMappings".into(),
        json!([{ "containerID": 0, "hostID": gid, "size": 1 }]),
    );
    linux.insert(
        "namespaces".into(),
        json!([
            { "type": "pid" },
            { "type": "ipc" },
            { "type": "uts" },
            { "type": "mount" },
            { "type": "user" }
        ]),
    );
}

/// Write the default spec to `<bundle>/config.json`, refusing to replace one
/// that exists (with runc's wording, which names the file without the bundle).
pub fn write_spec(bundle: &Path, rootless: bool) -> Result<()> {
    let path = bundle.join(CONFIG_FILE);
    // symlink_metadata: a dangling config.json symlink still "exists" here,
    // and create_new below would refuse it anyway.
    if path.symlink_metadata().is_ok() {
        bail!("File {CONFIG_FILE} exists. Remove it first");
    }
    let spec = default_spec(rootless);
    let text = ordered_json(&spec)?;
    // create_new closes the window between the check above and the write.
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&path)
        .with_context(|| format!("creating {}", path.display()))?;
    file.write_all(text.as_bytes())
        .with_context(|| format!("writing {}", path.display()))?;
    Ok(())
}

/// Keys in the order runc writes them. serde_json's `Value` keeps keys
/// sorted, which would put `hostname` first; people read and diff this file,
/// so write it in the spec's order instead. One list serves every object
/// because the orders inside mounts (destination, type, source, options) and
/// rlimits (type, hard, soft) agree.
const KEY_ORDER: &[&str] = &[
    "ociVersion",
    "process",
    "terminal",
    "user",
    "uid",
    "gid",
    "args",
    "env",
    "cwd",
    "capabilities",
    "bounding",
    "effective",
    "permitted",
    "ambient",
    "rlimits",
    "destination",
    "type",
    "source",
    "options",
    "hard",
    "soft",
    "noNewPrivileges",
    "root",
    "path",
    "readonly",
    "hostname",
    "mounts",
    "linux",
    "uidMappings",
    "gidMappings",
    "containerID",
    "hostID",
    "size",
    "resources",
    "devices",
    "allow",
    "access",
    "namespaces",
    "maskedPaths",
    "readonlyPaths",
];

/// A `Value` that serializes its objects' keys in [`KEY_ORDER`] (unknown keys
/// last, alphabetically).
struct Ordered<'a>(&'a Value);

impl serde::Serialize for Ordered<'_> {
    fn serialize<S: serde::Serializer>(&self, ser: S) -> std::result::Result<S::Ok, S::Error> {
        use serde::ser::{SerializeMap, SerializeSeq};
        match self.0 {
            Value::Object(map) => {
                let rank = |k: &str| KEY_ORDER.iter().position(|&o| o == k).unwrap_or(usize::MAX);
                let mut entries: Vec<_> = map.iter().collect();
                entries.sort_by(|a, b| (rank(a.0), a.0).cmp(&(rank(b.0), b.0)));
                let mut out = ser.serialize_map(Some(entries.len()))?;
                for (k, v) in entries {
                    out.serialize_entry(k, &Ordered(v))?;
                }
                out.end()
            }
            Value::Array(items) => {
                let mut out = ser.serialize_seq(Some(items.len()))?;
                for item in items {
                    out.serialize_element(&Ordered(item))?;
                }
                out.end()
            }
            scalar => scalar.serialize(ser),
        }
    }
}

fn ordered_json(spec: &Value) -> Result<String> {
    serde_json::to_string_pretty(&Ordered(spec)).context("serializing default spec")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::Command;

    /// What Debian's runc writes, if runc is installed (the test is skipped
    /// otherwise, so the suite still runs on machines without it).
    fn runc_spec(rootless: bool) -> Option<Value> {
        let dir = TempDir::new("runc-spec");
        let mut cmd = Command::new("runc");
        cmd.arg("spec").arg("--bundle").arg(&dir.0);
        if rootless {
            cmd.arg("--rootless");
        }
        let status = cmd.status().ok()?;
        assert!(status.success(), "runc spec failed");
        let text = std::fs::read(dir.0.join("config.json")).unwrap();
        Some(serde_json::from_slice(&text).unwrap())
    }

    struct TempDir(std::path::PathBuf);
    impl TempDir {
        fn new(tag: &str) -> Self {
            // Tests run in parallel threads: make each directory unique.
            static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
            let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let dir =
                std::env::temp_dir().join(format!("berth-test-{tag}-{}-{n}", std::process::id()));
            std::fs::create_dir_all(&dir).unwrap();
            TempDir(dir)
        }
    }
    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    /// Compare recursively, naming the first differing key path.
    fn assert_same(ours: &Value, theirs: &Value, at: &str) {
        match (ours, theirs) {
            (Value::Object(a), Value::Object(b)) => {
                let keys_a: Vec<_> = a.keys().collect();
                let keys_b: Vec<_> = b.keys().collect();
                assert_eq!(keys_a, keys_b, "keys differ at {at}");
                for (k, v) in a {
                    if at.is_empty() && k == "ociVersion" {
                        continue;
                    }
                    assert_same(v, &b[k], &format!("{at}.{k}"));
                }
            }
            (Value::Array(a), Value::Array(b)) => {
                assert_eq!(a.len(), b.len(), "array length differs at {at}");
                for (i, (x, y)) in a.iter().zip(b).enumerate() {
                    assert_same(x, y, &format!("{at}[{i}]"));
                }
            }
            _ => assert_eq!(ours, theirs, "value differs at {at}"),
        }
    }

    #[test]
    fn matches_runc_spec() {
        for rootless in [false, true] {
            if let Some(theirs) = runc_spec(rootless) {
                assert_same(&default_spec(rootless), &theirs, "");
            }
        }
    }

    #[test]
    fn written_file_parses_back_to_the_same_document() {
        for rootless in [false, true] {
            let dir = TempDir::new(if rootless { "rootless" } else { "root" });
            write_spec(&dir.0, rootless).unwrap();
            let text = std::fs::read_to_string(dir.0.join("config.json")).unwrap();
            let order: Vec<_> = text.lines().filter(|l| l.starts_with("  \"")).collect();
            let top = [
                "ociVersion",
                "process",
                "root",
                "hostname",
                "mounts",
                "linux",
            ];
            assert_eq!(order.len(), top.len());
            for (line, key) in order.iter().zip(top) {
                assert!(
                    line.starts_with(&format!("  \"{key}\"")),
                    "order lost: {line}"
                );
            }
            let back: Value = serde_json::from_str(&text).unwrap();
            assert_same(&back, &default_spec(rootless), "");
            assert_eq!(back["ociVersion"], SPEC_VERSION);
        }
    }

    #[test]
    fn loads_as_an_oci_config() {
        for rootless in [false, true] {
            let spec: oci_spec::runtime::Spec =
                serde_json::from_value(default_spec(rootless)).unwrap();
            assert_eq!(spec.hostname().as_deref(), Some("runc"));
        }
    }

    #[test]
    fn refuses_to_overwrite() {
        let dir = TempDir::new("overwrite");
        std::fs::write(dir.0.join("config.json"), "keep me").unwrap();
        let err = write_spec(&dir.0, false).unwrap_err();
        assert_eq!(err.to_string(), "File config.json exists. Remove it first");
        let kept = std::fs::read_to_string(dir.0.join("config.json")).unwrap();
        assert_eq!(kept, "keep me");
    }
}
