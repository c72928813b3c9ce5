//! config.md "User" username: resolved in the container's own /etc/passwd
//! and /etc/group (the busybox rootfs has "user", 1000:1000, member of
//! "users" (100)), never the host's.

use serde_json::json;

use crate::harness::*;

// config.md "POSIX-platform User": username names the user; berth takes its
// uid, primary gid and member groups from the container's files.
#[test]
fn username_from_the_containers_passwd() {
    berth_only!("runc ignores process.user.username on Linux");
    let fx = Fixture::new();
    let mut b = fx.bundle();
    b.process()["user"] = json!({"uid": 0, "gid": 0, "username": "user"});
    let out = fx.run_sh(&mut b, "id -u; id -g; id -G");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], "1000", "{out}");
    assert_eq!(lines[1], "1000", "{out}");
    let groups: Vec<&str> = lines[2].split_whitespace().collect();
    assert!(groups.contains(&"100"), "{out}");
    fx.assert_no_residue();
}

// A name the container's /etc/passwd lacks (present on the host or not)
// fails create, naming it, and leaves nothing behind.
#[test]
fn unknown_username_fails_create() {
    berth_only!("runc ignores process.user.username on Linux");
    let fx = Fixture::new();
    let mut b = fx.bundle();
    // "daemon" exists on Debian hosts but not in the busybox rootfs.
    b.process()["user"] = json!({"uid": 0, "gid": 0, "username": "daemon"});
    let id = fx.id("nouser");
    fx.create(&b, &id, &[])
        .fails_with(&["daemon", "/etc/passwd"]);
    fx.assert_no_residue();
}
