//! config.md "Root", "Mounts"; config-linux.md "Default Filesystems",
//! "Rootfs Mount Propagation", "Masked Paths", "Readonly Paths"; runc's
//! `--no-pivot`.

use std::collections::BTreeMap;
use std::fs;
use std::time::Duration;

use serde_json::json;

use crate::harness::*;

/// A mount as the container sees it in /proc/self/mountinfo.
#[derive(Debug, Clone)]
struct Mount {
    point: String,
    root: String,
    fstype: String,
    options: Vec<String>,
    optional: Vec<String>,
    super_options: Vec<String>,
}

fn parse_mountinfo(text: &str) -> Vec<Mount> {
    text.lines()
        .filter_map(|line| {
            let f: Vec<&str> = line.split(' ').collect();
            let sep = f.iter().position(|x| *x == "-")?;
            Some(Mount {
                root: unescape_mountinfo(f.get(3)?),
                point: unescape_mountinfo(f.get(4)?),
                options: f.get(5)?.split(',').map(str::to_string).collect(),
                optional: f[6..sep].iter().map(|s| s.to_string()).collect(),
                fstype: f.get(sep + 1)?.to_string(),
                super_options: f.get(sep + 3)?.split(',').map(str::to_string).collect(),
            })
        })
        .collect()
}

/// The topmost mount at each mount point.
fn by_point(mounts: &[Mount]) -> BTreeMap<String, Mount> {
    mounts
        .iter()
        .map(|m| (m.point.clone(), m.clone()))
        .collect()
}

const MOUNTINFO_MARK: &str = "--- mountinfo ---";

/// Run `script`, then dump mountinfo; returns (script output, mounts).
fn run_and_mounts(fx: &Fixture, b: &mut Bundle, script: &str) -> (String, BTreeMap<String, Mount>) {
    let out = fx.run_sh(
        b,
        &format!("{script}; echo '{MOUNTINFO_MARK}'; cat /proc/self/mountinfo"),
    );
    let (head, info) = out.split_once(MOUNTINFO_MARK).expect("mountinfo marker");
    (
        head.to_string(),
        by_point(&parse_mountinfo(info.trim_start())),
    )
}

// config.md "Mounts" (bind, ro bind, tmpfs with options) and config-linux.md
// "Default Filesystems" (proc, sysfs, devpts, tmpfs /dev/shm, mqueue, cgroup
// from runc's default spec).
#[test]
fn mounts_of_each_type() {
    let fx = Fixture::new();
    let src = fx.dir.join("src");
    fs::create_dir(&src).unwrap();
    fs::write(src.join("hello"), "hello from the host\n").unwrap();
    let mut b = fx.bundle();
    let s = src.to_str().unwrap();
    b.add_mount(json!({"destination": "/bind", "type": "bind", "source": s, "options": ["rbind"]}));
    b.add_mount(
        json!({"destination": "/robind", "type": "bind", "source": s, "options": ["bind", "ro"]}),
    );
    b.add_mount(
        json!({"destination": "/scratch", "type": "tmpfs", "source": "tmpfs",
        "options": ["nosuid", "nodev", "size=1m", "mode=700"]}),
    );
    let (out, mounts) = run_and_mounts(
        &fx,
        &mut b,
        "cat /bind/hello; touch /robind/x 2>/dev/null && echo robind-rw || echo robind-ro; \
         touch /scratch/x && echo scratch-rw; stat -c %a /scratch",
    );
    assert_eq!(out, "hello from the host\nrobind-ro\nscratch-rw\n700\n");
    assert!(!src.join("x").exists(), "the ro bind mount was writable");

    let get = |p: &str| {
        mounts
            .get(p)
            .unwrap_or_else(|| panic!("no mount at {p}: {mounts:#?}"))
    };
    assert!(
        get("/robind").options.contains(&"ro".into()),
        "{:?}",
        get("/robind")
    );
    let scratch = get("/scratch");
    assert_eq!(scratch.fstype, "tmpfs");
    assert!(
        scratch.options.contains(&"nosuid".into()) && scratch.options.contains(&"nodev".into()),
        "{scratch:?}"
    );
    assert!(
        scratch.super_options.contains(&"size=1024k".into()),
        "{scratch:?}"
    );
    assert!(
        scratch.super_options.contains(&"mode=700".into()),
        "{scratch:?}"
    );

    assert_eq!(get("/proc").fstype, "proc");
    let sys = get("/sys");
    assert_eq!(sys.fstype, "sysfs");
    assert!(
        sys.options.contains(&"ro".into()),
        "default spec mounts /sys ro: {sys:?}"
    );
    let pts = get("/dev/pts");
    assert_eq!(pts.fstype, "devpts");
    for opt in ["ptmxmode=666", "mode=620", "gid=5"] {
        assert!(
            pts.super_options.contains(&opt.to_string()),
            "devpts lacks {opt}: {pts:?}"
        );
    }
    assert_eq!(get("/dev/shm").fstype, "tmpfs");
    assert_eq!(get("/dev/mqueue").fstype, "mqueue");
    assert_eq!(get("/dev").fstype, "tmpfs");
    if is_cgroup2_only() {
        assert_eq!(get("/sys/fs/cgroup").fstype, "cgroup2");
    } else {
        assert!(
            mounts
                .values()
                .any(|m| m.fstype == "cgroup" && m.point.starts_with("/sys/fs/cgroup/")),
            "no cgroup v1 hierarchy under /sys/fs/cgroup: {mounts:#?}"
        );
    }
    fx.assert_no_residue();
}

// config.md "Mounts": `rbind` takes submounts along, `bind` does not.
#[test]
fn bind_versus_rbind_submounts() {
    let fx = Fixture::new();
    let src = fx.dir.join("src");
    fs::create_dir_all(src.join("sub")).unwrap();
    fx.host_mount(&["-t", "tmpfs", "spec-test-sub"], &src.join("sub"));
    fs::write(src.join("sub/file"), "in submount\n").unwrap();
    let mut b = fx.bundle();
    let s = src.to_str().unwrap();
    b.add_mount(
        json!({"destination": "/nonrec", "type": "bind", "source": s, "options": ["bind"]}),
    );
    b.add_mount(json!({"destination": "/rec", "type": "bind", "source": s, "options": ["rbind"]}));
    let out = fx.run_sh(
        &mut b,
        "cat /rec/sub/file; [ -e /nonrec/sub/file ] && echo nonrec-has-submount || echo nonrec-plain",
    );
    assert_eq!(out, "in submount\nnonrec-plain\n");
    fx.host_umount(&src.join("sub"));
    fx.assert_no_residue();
}

// config.md "Root": `readonly` makes the root filesystem read-only.
#[test]
fn root_readonly() {
    let fx = Fixture::new();
    for readonly in [true, false] {
        let mut b = fx.bundle();
        b.set_readonly(readonly);
        let (out, mounts) = run_and_mounts(
            &fx,
            &mut b,
            "touch /newfile 2>/dev/null && echo rw || echo ro",
        );
        let root = &mounts["/"];
        if readonly {
            assert_eq!(out, "ro\n");
            assert!(root.options.contains(&"ro".into()), "{root:?}");
            assert!(!b.rootfs().join("newfile").exists());
        } else {
            assert_eq!(out, "rw\n");
            assert!(root.options.contains(&"rw".into()), "{root:?}");
            assert!(
                b.rootfs().join("newfile").exists(),
                "write did not reach the bundle rootfs"
            );
        }
    }
    fx.assert_no_residue();
}

// runc `create --no-pivot`: the rootfs is entered without pivot_root (for
// ramdisk roots); the container must still see only its rootfs.
#[test]
fn no_pivot_root() {
    let fx = Fixture::new();
    let mut b = fx.bundle();
    b.write_rootfs_file("/marker", "this is the bundle rootfs\n");
    b.set_sh(
        "cat /marker; [ -e /work ] || [ -e /usr/lib/os-release ] && echo host-visible; echo end",
    );
    b.save();
    let id = fx.id("nopivot");
    let out = fx.run(&b, &id, &["--no-pivot"]).ok();
    assert_eq!(out.stdout, "this is the bundle rootfs\nend\n");
    fx.assert_no_residue();
}

// config-linux.md "Masked Paths": masked files read as empty, masked
// directories as empty, nonexistent paths are skipped.
#[test]
fn masked_paths() {
    let fx = Fixture::new();
    let mut b = fx.bundle();
    b.write_rootfs_file("/etc/secret", "s3cret\n");
    b.write_rootfs_file("/secretdir/file", "hidden\n");
    b.linux()["maskedPaths"] = json!([
        "/etc/secret",
        "/secretdir",
        "/no/such/path",
        "/proc/timer_list"
    ]);
    let out = fx.run_sh(
        &mut b,
        "echo \"[$(cat /etc/secret)]\"; echo \"[$(ls -A /secretdir)]\"; \
         echo \"[$(head -c 20 /proc/timer_list 2>/dev/null)]\"; \
         echo hi > /etc/secret 2>/dev/null; echo \"[$(cat /etc/secret)]\"",
    );
    // A write to a masked file goes nowhere (runc masks files with /dev/null too).
    assert_eq!(out, "[]\n[]\n[]\n[]\n");
    assert_eq!(
        fs::read_to_string(b.rootfs().join("etc/secret")).unwrap(),
        "s3cret\n"
    );
    fx.assert_no_residue();
}

// config-linux.md "Readonly Paths".
#[test]
fn readonly_paths() {
    let fx = Fixture::new();
    let mut b = fx.bundle();
    b.set_readonly(false);
    b.mkdir_rootfs("/rodir");
    b.mkdir_rootfs("/rwdir");
    b.linux()["readonlyPaths"] = json!(["/rodir", "/proc/sys", "/no/such/path"]);
    let out = fx.run_sh(
        &mut b,
        "touch /rodir/x 2>/dev/null && echo rodir-rw || echo rodir-ro; \
         touch /rwdir/x && echo rwdir-rw; \
         echo x > /proc/sys/kernel/hostname 2>/dev/null && echo procsys-rw || echo procsys-ro",
    );
    assert_eq!(out, "rodir-ro\nrwdir-rw\nprocsys-ro\n");
    fx.assert_no_residue();
}

/// Make the test dir a shared mount on the host, start a container with
/// `propagation`, mount a tmpfs under its rootfs on the host, and report
/// whether the container saw it.
fn host_mount_reaches_container(propagation: &str) -> bool {
    let fx = Fixture::new();
    let mut b = fx.bundle();
    b.mkdir_rootfs("/mnt/probe");
    b.linux()["rootfsPropagation"] = json!(propagation);
    b.set_sh(
        "echo ready; i=0; while [ $i -lt 30 ]; do \
         grep -q ' /mnt/probe ' /proc/self/mountinfo && { echo seen; exit 0; }; \
         sleep 0.1; i=$((i+1)); done; echo not-seen",
    );
    fx.host_mount(&["--bind", fx.dir.to_str().unwrap()], &fx.dir);
    let out = Cmd::new("mount", &fx.dir)
        .args(&["--make-shared"])
        .arg_path(&fx.dir)
        .run();
    assert!(out.status.success(), "{}", out.describe());
    let id = fx.id("prop");
    let created = fx.create(&b, &id, &[]).ok();
    fx.start(&id).ok();
    assert!(wait_until(Duration::from_secs(10), || created
        .reread_stdout()
        .contains("ready")));
    let probe = b.rootfs().join("mnt/probe");
    fx.host_mount(&["-t", "tmpfs", "spec-test-probe"], &probe);
    fx.wait_status(&id, "stopped");
    let seen = created.reread_stdout().contains("\nseen");
    fx.delete(&id).ok();
    fx.host_umount(&probe);
    fx.host_umount(&fx.dir);
    fx.assert_no_residue();
    seen
}

// config-linux.md "Rootfs Mount Propagation" private: host events stay out.
#[test]
fn rootfs_propagation_private() {
    assert!(!host_mount_reaches_container("private"));
}

// config-linux.md "Rootfs Mount Propagation" slave: "receives propagation
// events from the host".
#[test]
fn rootfs_propagation_slave() {
    berth_only!("runc 1.1.5 makes the rootfs mount private whatever rootfsPropagation says");
    assert!(host_mount_reaches_container("slave"));
}

// config-linux.md "Rootfs Mount Propagation" shared and unbindable, as the
// container's own mountinfo shows them.
#[test]
fn rootfs_propagation_shared_and_unbindable() {
    berth_only!("runc 1.1.5 leaves the root private for `shared` and fails on `unbindable`");
    let fx = Fixture::new();
    for (propagation, tag) in [("shared", "shared:"), ("unbindable", "unbindable")] {
        let mut b = fx.bundle();
        b.linux()["rootfsPropagation"] = json!(propagation);
        let (_, mounts) = run_and_mounts(&fx, &mut b, "true");
        let root = &mounts["/"];
        assert!(
            root.optional.iter().any(|o| o.starts_with(tag)),
            "{propagation}: root mount {root:?} lacks {tag}"
        );
        assert!(root.root.ends_with("rootfs"), "{root:?}");
    }
    fx.assert_no_residue();
}

/// A host directory for idmapped-mount tests: `root-file` owned by 0:0 and
/// `five-file` by 5:5.
fn idmap_source(fx: &Fixture) -> std::path::PathBuf {
    let src = fx.dir.join("idmap-src");
    fs::create_dir(&src).unwrap();
    fs::write(src.join("root-file"), "r").unwrap();
    fs::write(src.join("five-file"), "5").unwrap();
    std::os::unix::fs::chown(src.join("five-file"), Some(5), Some(5)).unwrap();
    src
}

// config.md "Mounts" `idmap` with the mount's own uidMappings/gidMappings:
// an id on disk that the mapping's containerID side names shows as its
// hostID; an unmapped one as the overflow id. The host's files are untouched.
#[test]
fn idmapped_bind_mount_with_its_own_mappings() {
    berth_only!("runc 1.1.5 has no idmapped mounts");
    let fx = Fixture::new();
    let mut b = fx.bundle();
    let src = idmap_source(&fx);
    b.mkdir_rootfs("/idm");
    b.add_mount(json!({
        "destination": "/idm", "type": "bind", "source": src, "options": ["rbind", "idmap"],
        "uidMappings": [{"containerID": 0, "hostID": 1000, "size": 1}],
        "gidMappings": [{"containerID": 0, "hostID": 2000, "size": 1}]
    }));
    let out = fx.run_sh(&mut b, "stat -c '%n %u:%g' /idm/root-file /idm/five-file");
    assert_eq!(
        out,
        "/idm/root-file 1000:2000\n/idm/five-file 65534:65534\n"
    );
    use std::os::unix::fs::MetadataExt;
    let md = fs::metadata(src.join("root-file")).unwrap();
    assert_eq!((md.uid(), md.gid()), (0, 0), "the host file changed owner");
    fx.assert_no_residue();
}

// config.md "Mounts" `idmap` without mappings: the runtime MAY use the
// container's user namespace mapping. With 0 -> 100000, the host's root-owned
// file is root's inside the container (it would be nobody without idmap).
#[test]
fn idmap_uses_the_container_user_namespace_mapping() {
    berth_only!("runc 1.1.5 has no idmapped mounts");
    let fx = Fixture::new();
    let mut b = fx.bundle();
    b.set_namespace("user", None);
    b.linux()["uidMappings"] = json!([{"containerID": 0, "hostID": 100000, "size": 65536}]);
    b.linux()["gidMappings"] = json!([{"containerID": 0, "hostID": 100000, "size": 65536}]);
    let out = Cmd::new("chown", &fx.dir)
        .args(&["-R", "100000:100000"])
        .arg_path(&b.rootfs())
        .run();
    assert!(out.status.success(), "{}", out.describe());
    let src = idmap_source(&fx);
    b.mkdir_rootfs("/idm");
    b.mkdir_rootfs("/plain");
    b.add_mount(json!({"destination": "/idm", "type": "bind", "source": src, "options": ["rbind", "idmap"]}));
    b.add_mount(
        json!({"destination": "/plain", "type": "bind", "source": src, "options": ["rbind"]}),
    );
    let out = fx.run_sh(
        &mut b,
        "stat -c '%n %u:%g' /idm/root-file /idm/five-file /plain/root-file",
    );
    assert_eq!(
        out,
        "/idm/root-file 0:0\n/idm/five-file 5:5\n/plain/root-file 65534:65534\n"
    );
    fx.assert_no_residue();
}

// config.md "Mounts" `idmap`: without mappings and without a user namespace
// "an error MUST be returned"; mappings come in pairs; berth maps bind mounts only.
#[test]
fn idmap_errors() {
    berth_only!("runc 1.1.5 has no idmapped mounts");
    let fx = Fixture::new();
    let cases = [
        (
            json!({"destination": "/idm", "type": "bind", "source": "/tmp", "options": ["rbind", "idmap"]}),
            "user namespace",
        ),
        (
            json!({"destination": "/idm", "type": "bind", "source": "/tmp", "options": ["rbind", "idmap"],
                "uidMappings": [{"containerID": 0, "hostID": 1000, "size": 1}]}),
            "together",
        ),
        (
            json!({"destination": "/idm", "type": "tmpfs", "source": "tmpfs", "options": ["idmap"],
                "uidMappings": [{"containerID": 0, "hostID": 1000, "size": 1}],
                "gidMappings": [{"containerID": 0, "hostID": 1000, "size": 1}]}),
            "bind mounts only",
        ),
    ];
    for (mount, needle) in cases {
        let mut b = fx.bundle();
        b.add_mount(mount);
        let id = fx.id("idmaperr");
        fx.create(&b, &id, &[]).fails_with(&[needle]);
    }
    fx.assert_no_residue();
}
