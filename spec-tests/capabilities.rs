//! config.md "Process" capabilities (config-linux.md's five sets): what the
//! container's process holds after execve, read from /proc/self/status, for
//! root and for a non-root user (who keeps only ambient capabilities across
//! execve), and what it can do with them.

use serde_json::{json, Value};

use crate::harness::*;

/// Bit numbers (linux/capability.h) of the capabilities the tests use.
fn bit(name: &str) -> u64 {
    let n = match name {
        "CAP_CHOWN" => 0,
        "CAP_DAC_OVERRIDE" => 1,
        "CAP_FOWNER" => 3,
        "CAP_KILL" => 5,
        "CAP_SETUID" => 7,
        "CAP_NET_BIND_SERVICE" => 10,
        "CAP_NET_RAW" => 13,
        "CAP_SYS_ADMIN" => 21,
        other => panic!("no bit for {other}"),
    };
    1 << n
}

fn mask(names: &[&str]) -> String {
    format!(
        "{:016x}",
        names.iter().map(|n| bit(n)).fold(0, |a, b| a | b)
    )
}

fn sets(
    bounding: &[&str],
    effective: &[&str],
    permitted: &[&str],
    inheritable: &[&str],
    ambient: &[&str],
) -> Value {
    json!({
        "bounding": bounding, "effective": effective, "permitted": permitted,
        "inheritable": inheritable, "ambient": ambient
    })
}

// config.md "Process" capabilities, uid 0: bounding, inheritable and ambient
// are as configured. execve by root (no file capabilities, no SECBIT_NOROOT)
// then computes, per capabilities(7), permitted = bounding | inheritable
// (| ambient) and effective = permitted; with noNewPrivileges the kernel
// also caps permitted at what the process held before execve, i.e. the
// configured permitted set.
#[test]
fn five_sets_for_root() {
    let fx = Fixture::new();
    let bnd = [
        "CAP_CHOWN",
        "CAP_KILL",
        "CAP_NET_BIND_SERVICE",
        "CAP_SETUID",
    ];
    // The kernel refuses an inheritable capability outside the bounding set.
    let inh = ["CAP_NET_BIND_SERVICE", "CAP_CHOWN"];
    let prm = ["CAP_KILL", "CAP_NET_BIND_SERVICE", "CAP_CHOWN"];
    for nnp in [true, false] {
        let mut b = fx.bundle();
        b.process()["noNewPrivileges"] = json!(nnp);
        b.process()["capabilities"] =
            sets(&bnd, &["CAP_KILL"], &prm, &inh, &["CAP_NET_BIND_SERVICE"]);
        let out = fx.run_sh(&mut b, "grep ^Cap /proc/self/status");
        let ctx = format!("nnp={nnp}: {out}");
        let field = |k| status_field(&out, k).unwrap_or_default();
        assert_eq!(field("CapBnd"), mask(&bnd), "{ctx}");
        assert_eq!(field("CapInh"), mask(&inh), "{ctx}");
        assert_eq!(field("CapAmb"), mask(&["CAP_NET_BIND_SERVICE"]), "{ctx}");
        // bounding | inheritable is all of bnd; NNP cuts CAP_SETUID again.
        let want = if nnp { mask(&prm) } else { mask(&bnd) };
        assert_eq!(field("CapPrm"), want, "{ctx}");
        assert_eq!(field("CapEff"), want, "{ctx}");
    }
    fx.assert_no_residue();
}

// config.md "Process" capabilities with user.uid 1000: across execve a
// non-root process keeps exactly its ambient set in permitted and effective
// (capabilities(7)); inheritable and bounding are as configured. The
// capability is real: CAP_CHOWN lets uid 1000 give a file to root, and
// without it the same chown fails.
#[test]
fn ambient_capabilities_for_non_root() {
    let fx = Fixture::new();
    for with_chown in [true, false] {
        let mut b = fx.bundle();
        b.set_readonly(false);
        b.process()["user"] = json!({"uid": 1000, "gid": 1000});
        let mut amb = vec!["CAP_KILL"];
        if with_chown {
            amb.push("CAP_CHOWN");
        }
        let all = ["CAP_CHOWN", "CAP_KILL", "CAP_NET_BIND_SERVICE"];
        b.process()["capabilities"] = sets(&all, &all, &all, &all, &amb);
        let out = fx.run_sh(
            &mut b,
            "grep ^Cap /proc/self/status; touch /tmp/f; \
             chown 0:0 /tmp/f 2>&1 && echo chowned; stat -c 'owner=%u' /tmp/f",
        );
        let ctx = format!("ambient={amb:?}: {out}");
        let field = |k| status_field(&out, k).unwrap_or_default();
        assert_eq!(field("CapBnd"), mask(&all), "{ctx}");
        assert_eq!(field("CapInh"), mask(&all), "{ctx}");
        assert_eq!(field("CapAmb"), mask(&amb), "{ctx}");
        assert_eq!(field("CapPrm"), mask(&amb), "{ctx}");
        assert_eq!(field("CapEff"), mask(&amb), "{ctx}");
        if with_chown {
            assert!(out.contains("chowned\nowner=0"), "{ctx}");
        } else {
            assert!(
                out.contains("Operation not permitted") && out.contains("owner=1000"),
                "{ctx}"
            );
        }
    }
    fx.assert_no_residue();
}

// config.md "Process" capabilities, uid 1000 without ambient: nothing is
// left after execve, whatever the other sets say.
#[test]
fn non_root_without_ambient_has_no_capabilities() {
    let fx = Fixture::new();
    let mut b = fx.bundle();
    b.process()["user"] = json!({"uid": 1000, "gid": 1000});
    let all = ["CAP_CHOWN", "CAP_SYS_ADMIN"];
    b.process()["capabilities"] = sets(&all, &all, &all, &[], &[]);
    let out = fx.run_sh(&mut b, "grep ^Cap /proc/self/status");
    let field = |k| status_field(&out, k).unwrap_or_default();
    assert_eq!(field("CapBnd"), mask(&all), "{out}");
    for k in ["CapInh", "CapPrm", "CapEff", "CapAmb"] {
        assert_eq!(field(k), "0000000000000000", "{k}: {out}");
    }
    fx.assert_no_residue();
}

// config.md "Process" capabilities: names are from capabilities(7); one the
// runtime doesn't know fails create, naming it, with nothing left behind.
// (runc 1.1 only warns and drops it.)
#[test]
fn unknown_capability_fails_create() {
    berth_only!("runc 1.1 ignores unknown capabilities with a warning");
    let fx = Fixture::new();
    for set in [
        "bounding",
        "effective",
        "permitted",
        "inheritable",
        "ambient",
    ] {
        let mut b = fx.bundle();
        b.process()["capabilities"] = sets(&["CAP_KILL"], &[], &[], &[], &[]);
        b.process()["capabilities"][set] = json!(["CAP_KILL", "CAP_BOGUS_POWER"]);
        let id = fx.id("badcap");
        fx.create(&b, &id, &[])
            .fails_with(&["CAP_BOGUS_POWER", &format!("capabilities.{set}")]);
        fx.assert_no_residue();
    }
}
