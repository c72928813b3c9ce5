//! Clients that drive berth as their runtime, end to end. containerd's shim
//! is checked from outside by the shared tools' containerd-smoke; podman
//! (Debian's, cgroupfs manager, no network) runs here.

use std::fs;
use std::path::Path;

use crate::harness::*;

struct ShortDir(std::path::PathBuf);

impl ShortDir {
    fn new() -> Self {
        let dir = std::path::PathBuf::from(format!("/tmp/spt-podman-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        ShortDir(dir)
    }
}

impl Drop for ShortDir {
    fn drop(&mut self) {
        let mounts = fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
        let mut points: Vec<&str> = mounts
            .lines()
            .filter_map(|l| l.split(' ').nth(4))
            .filter(|p| p.starts_with(self.0.to_str().unwrap()))
            .collect();
        points.reverse();
        for p in points {
            let _ = nix::mount::umount2(p, nix::mount::MntFlags::MNT_DETACH);
        }
        let _ = fs::remove_dir_all(&self.0);
    }
}

/// The default --root berth uses when a client (podman) passes none.
const DEFAULT_ROOT: &str = "/run/berth";

fn default_root_ids() -> Vec<String> {
    let mut ids: Vec<String> = fs::read_dir(DEFAULT_ROOT)
        .map(|d| {
            d.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    ids.sort();
    ids
}

// Contract "podman/conmon": no global flags, `create --bundle B --pid-file P
// ID`, `start`, `delete --force`; `podman --runtime <berth> run --rm` of a
// local image prints the container's output, returns its exit code, and
// leaves no container behind (in podman, or in berth's default root).
#[test]
fn podman_run_rm_with_berth() {
    if !Path::new("/usr/bin/podman").exists() {
        eprintln!(
            "SKIP podman_run_rm_with_berth: podman is not installed (apt-get install podman)"
        );
        return;
    }
    let fx = Fixture::new();
    let conf = fx.dir.join("containers.conf");
    // Root lacks CAP_SYS_RESOURCE on this project's machines: podman must not
    // try to raise nofile/nproc past the hard limits.
    fs::write(
        &conf,
        "[containers]\ndefault_ulimits = [\"nofile=1024:1024\", \"nproc=4096:4096\"]\n\
         netns = \"none\"\n[engine]\ncgroup_manager = \"cgroupfs\"\nevents_logger = \"file\"\n",
    )
    .unwrap();
    let storage = fx.dir.join("storage");
    // podman wants a runroot shorter than 50 bytes: a short dir in /tmp,
    // removed (with anything mounted under it) even if the test fails.
    let runroot = ShortDir::new();
    let runroot = &runroot.0;
    let podman = |args: &[&str]| {
        let mut argv = vec![
            "--root".to_string(),
            storage.display().to_string(),
            "--runroot".to_string(),
            runroot.display().to_string(),
            "--runtime".to_string(),
            runtime_bin().display().to_string(),
        ];
        argv.extend(args.iter().map(|s| s.to_string()));
        Cmd::new("podman", &fx.dir)
            .env("CONTAINERS_CONF", conf.to_str().unwrap())
            .args(&argv)
    };
    let before = default_root_ids();
    let tar = format!(
        "tar -C {} -c . | CONTAINERS_CONF={} podman --root {} --runroot {} import - localhost/spec-busybox",
        base_rootfs().display(),
        conf.display(),
        storage.display(),
        runroot.display()
    );
    let out = Cmd::new("sh", &fx.dir).args(&["-c", &tar]).run();
    assert!(out.status.success(), "podman import: {}", out.describe());

    let out = podman(&[
        "run",
        "--rm",
        "localhost/spec-busybox",
        "sh",
        "-c",
        "echo hello from podman; exit 3",
    ])
    .run();
    assert_eq!(out.code(), Some(3), "{}", out.describe());
    assert_eq!(out.stdout, "hello from podman\n", "{}", out.describe());

    let out = podman(&["ps", "-a", "-q"]).run().ok();
    assert_eq!(out.stdout.trim(), "", "podman still lists containers");
    assert_eq!(default_root_ids(), before, "berth's default root changed");
    let _ = podman(&["system", "reset", "-f"]).run();
    fx.assert_no_residue();
}
