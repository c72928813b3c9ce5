//! config-linux.md "Devices", "Default Devices"; runtime-linux.md "Dev
//! symbolic links".

use serde_json::json;

use crate::harness::*;

/// `stat` of device paths: "<path> <type> <major> <minor> <mode> <uid> <gid>"
/// with decimal major/minor.
fn stat_script(paths: &[&str]) -> String {
    paths
        .iter()
        .map(|p| {
            format!(
                "if [ -e {p} ]; then set -- $(stat -c '%F|%t|%T|%a|%u|%g' {p} | tr ' |' '_ '); \
                 echo {p} $1 $((0x$2)) $((0x$3)) $4 $5 $6; else echo {p} missing; fi"
            )
        })
        .collect::<Vec<_>>()
        .join("; ")
}

// config-linux.md "Default Devices": null zero full random urandom tty as
// char devices with their well-known numbers, plus /dev/ptmx.
#[test]
fn default_devices() {
    let fx = Fixture::new();
    let mut b = fx.bundle();
    let devices = [
        "/dev/null",
        "/dev/zero",
        "/dev/full",
        "/dev/random",
        "/dev/urandom",
        "/dev/tty",
    ];
    let out = fx.run_sh(
        &mut b,
        &format!(
            "{}; [ -e /dev/ptmx ] && echo ptmx-ok; [ -e /dev/console ] || echo no-console; \
             head -c 4 /dev/zero | wc -c; echo x > /dev/null && echo null-ok",
            stat_script(&devices)
        ),
    );
    let want = [
        "/dev/null character_special_file 1 3",
        "/dev/zero character_special_file 1 5",
        "/dev/full character_special_file 1 7",
        "/dev/random character_special_file 1 8",
        "/dev/urandom character_special_file 1 9",
        "/dev/tty character_special_file 5 0",
    ];
    let lines: Vec<&str> = out.lines().collect();
    for (line, want) in lines.iter().zip(want) {
        assert!(line.starts_with(want), "got {line:?}, want {want:?}\n{out}");
        // The defaults are usable by anyone: mode 666.
        assert_eq!(line.split(' ').nth(4), Some("666"), "{line}");
    }
    // /dev/console only exists with a terminal (config-linux.md).
    assert_eq!(
        &lines[6..],
        ["ptmx-ok", "no-console", "4", "null-ok"],
        "{out}"
    );
    fx.assert_no_residue();
}

// config-linux.md "Devices": type, major/minor, fileMode (decimal), uid, gid.
#[test]
fn configured_devices() {
    let fx = Fixture::new();
    let mut b = fx.bundle();
    b.linux()["devices"] = json!([
        {"path": "/dev/fuse", "type": "c", "major": 10, "minor": 229, "fileMode": 438, "uid": 0, "gid": 0},
        {"path": "/dev/spec-null", "type": "c", "major": 1, "minor": 3, "fileMode": 422, "uid": 1000, "gid": 2000},
        {"path": "/dev/spec-loop", "type": "b", "major": 7, "minor": 200, "fileMode": 384, "uid": 0, "gid": 0},
        {"path": "/dev/spec-fifo", "type": "p", "fileMode": 420},
        {"path": "/opt/outside-dev", "type": "c", "major": 1, "minor": 5, "fileMode": 438}
    ]);
    // The device cgroup must allow the char device for the read test.
    b.linux()["resources"]["devices"]
        .as_array_mut()
        .unwrap()
        .push(json!({"allow": true, "type": "c", "major": 1, "minor": 3, "access": "rwm"}));
    let out = fx.run_sh(
        &mut b,
        &format!(
            "{}; stat -c %F /dev/spec-fifo; echo x > /dev/spec-null && echo spec-null-writable",
            stat_script(&[
                "/dev/fuse",
                "/dev/spec-null",
                "/dev/spec-loop",
                "/opt/outside-dev"
            ])
        ),
    );
    let want = [
        "/dev/fuse character_special_file 10 229 666 0 0",
        "/dev/spec-null character_special_file 1 3 646 1000 2000",
        "/dev/spec-loop block_special_file 7 200 600 0 0",
        "/opt/outside-dev character_special_file 1 5 666 0 0",
        "fifo",
        "spec-null-writable",
    ];
    assert_eq!(out.lines().collect::<Vec<_>>(), want, "{out}");
    fx.assert_no_residue();
}

// config-linux.md "Devices": "If a file already exists at path that does not
// match the requested device, the runtime MUST generate an error."
#[test]
fn device_path_conflicting_with_a_file() {
    let fx = Fixture::new();
    let mut b = fx.bundle();
    b.write_rootfs_file("/opt/notadevice", "plain file\n");
    b.linux()["devices"] = json!([
        {"path": "/opt/notadevice", "type": "c", "major": 1, "minor": 3, "fileMode": 438}
    ]);
    berth_only!("runc 1.1.5 silently replaces the file");
    let id = fx.id("devconflict");
    fx.create(&b, &id, &[]).fails_with(&["/opt/notadevice"]);
    fx.assert_no_residue();
}

// config-linux.md "Devices" `path`: "full path to device inside container".
// A relative path or one climbing with ".." is a config error: create fails
// with one line naming the path and leaves nothing behind. (A path outside
// /dev is allowed: the spec says it "MAY be anywhere in the container
// filesystem", see configured_devices.)
#[test]
fn device_path_that_is_not_a_clean_absolute_path_is_refused() {
    let fx = Fixture::new();
    for path in ["/dev/../etc/x", "dev/null"] {
        let mut b = fx.bundle();
        b.linux()["devices"] =
            json!([{"path": path, "type": "c", "major": 1, "minor": 3, "fileMode": 438}]);
        let id = fx.id("devpath");
        fx.create(&b, &id, &[]).fails_with(&["linux.devices", path]);
    }
    fx.assert_no_residue();
}

// config-linux.md "Devices" `path`: "full path to device inside container".
// The rootfs is the container's to shape: a symlink in it that points at a
// host directory is resolved inside the rootfs, so the node is made there
// (or create fails), never in the host directory the link names.
#[test]
fn device_path_through_a_symlink_stays_in_the_rootfs() {
    let fx = Fixture::new();
    let mut b = fx.bundle();
    let host_dir = b.dir.join("host-side");
    std::fs::create_dir(&host_dir).unwrap();
    b.mkdir_rootfs("/opt");
    std::os::unix::fs::symlink(&host_dir, b.rootfs().join("opt/escape")).unwrap();
    b.linux()["devices"] = json!([
        {"path": "/opt/escape/null2", "type": "c", "major": 1, "minor": 3, "fileMode": 438}
    ]);
    b.set_args(&["true"]);
    let id = fx.id("devlink");
    let out = fx.run(&b, &id, &[]);
    let in_host_dir: Vec<_> = std::fs::read_dir(&host_dir).unwrap().collect();
    assert!(
        in_host_dir.is_empty(),
        "a device node was made in the host directory {}: {}",
        host_dir.display(),
        out.describe()
    );
    if out.code() == Some(0) {
        // Made where the link points when read inside the rootfs.
        let inside = b
            .rootfs()
            .join(host_dir.strip_prefix("/").unwrap())
            .join("null2");
        assert!(
            inside.exists(),
            "{} missing: {}",
            inside.display(),
            out.describe()
        );
    }
    fx.assert_no_residue();
}

// runtime-linux.md "Dev symbolic links".
#[test]
fn dev_symlinks() {
    let fx = Fixture::new();
    let mut b = fx.bundle();
    let out = fx.run_sh(
        &mut b,
        "for l in fd stdin stdout stderr; do echo $l $(readlink /dev/$l); done; \
         readlink /dev/ptmx || echo ptmx-not-a-symlink",
    );
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(
        &lines[..4],
        [
            "fd /proc/self/fd",
            "stdin /proc/self/fd/0",
            "stdout /proc/self/fd/1",
            "stderr /proc/self/fd/2"
        ],
        "{out}"
    );
    // config-linux.md "Default Devices": /dev/ptmx is a bind mount or a
    // symlink of the container's /dev/pts/ptmx.
    assert!(
        lines[4] == "pts/ptmx" || lines[4] == "/dev/pts/ptmx" || lines[4] == "ptmx-not-a-symlink",
        "{out}"
    );
    fx.assert_no_residue();
}
