//! Builds the XDP program (`gateway-ebpf`, bpfel-unknown-none, pinned nightly, bpf-linker)
//! with aya-build and leaves it in `OUT_DIR` for `include_bytes_aligned!`.
//!
//! The eBPF toolchain is optional for a gateway build: when the pinned nightly, its
//! `rust-src` or `bpf-linker` is missing, this prints a `cargo:warning`, sets
//! `cfg(edgefn_no_ebpf)` and the reason in `EDGEFN_EBPF_MISSING`, and the binary reports
//! "XDP program not built into this binary" and falls back to the user-space limiter.
//! `EDGEFN_REQUIRE_EBPF=1` (CI) turns a missing toolchain into a build error instead;
//! `EDGEFN_NO_EBPF=1` skips the eBPF build on purpose (faster builds, fallback checks).

use std::path::{Path, PathBuf};
use std::process::Command;

fn main() {
    println!("cargo::rustc-check-cfg=cfg(edgefn_no_ebpf)");
    println!("cargo::rerun-if-env-changed=EDGEFN_REQUIRE_EBPF");
    println!("cargo::rerun-if-env-changed=EDGEFN_NO_EBPF");
    println!("cargo::rerun-if-env-changed=PATH");
    let manifest = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets it"));
    let root = manifest
        .parent()
        .expect("gateway/ has a parent")
        .to_path_buf();
    let ebpf_dir = root.join("gateway-ebpf");
    println!(
        "cargo::rerun-if-changed={}",
        root.join("gateway-common").display()
    );
    println!("cargo::rerun-if-changed={}", ebpf_dir.display());

    let result = if std::env::var("EDGEFN_NO_EBPF").is_ok_and(|v| v == "1") {
        Err("EDGEFN_NO_EBPF=1 at build time".to_string())
    } else {
        toolchain(&ebpf_dir).and_then(|tc| build(&ebpf_dir, &tc))
    };
    if let Err(why) = result {
        if std::env::var("EDGEFN_REQUIRE_EBPF").is_ok_and(|v| v == "1") {
            panic!("EDGEFN_REQUIRE_EBPF=1 but the XDP program cannot be built: {why}");
        }
        let why = why.replace('\n', " ");
        println!(
            "cargo::warning=XDP program not built ({why}); run scripts/install-ebpf-toolchain.sh"
        );
        println!("cargo::rustc-cfg=edgefn_no_ebpf");
        println!("cargo::rustc-env=EDGEFN_EBPF_MISSING={why}");
    }
}

/// The pinned toolchain name, after checking it, its rust-src and bpf-linker are installed.
fn toolchain(ebpf_dir: &Path) -> Result<String, String> {
    let pin = std::fs::read_to_string(ebpf_dir.join("rust-toolchain.toml"))
        .map_err(|e| format!("cannot read gateway-ebpf/rust-toolchain.toml: {e}"))?;
    let channel = pin
        .lines()
        .find_map(|l| l.trim().strip_prefix("channel"))
        .and_then(|rest| rest.split('"').nth(1))
        .ok_or("gateway-ebpf/rust-toolchain.toml has no channel")?
        .to_string();
    let sysroot = Command::new("rustup")
        .args(["run", &channel, "rustc", "--print", "sysroot"])
        .output()
        .map_err(|e| format!("rustup not found: {e}"))?;
    if !sysroot.status.success() {
        return Err(format!("toolchain {channel} is not installed"));
    }
    let sysroot = String::from_utf8_lossy(&sysroot.stdout).trim().to_string();
    if !Path::new(&sysroot)
        .join("lib/rustlib/src/rust/library/core")
        .is_dir()
    {
        return Err(format!("rust-src is not installed for {channel}"));
    }
    let linker = Command::new("bpf-linker").arg("--version").output();
    if !linker.is_ok_and(|o| o.status.success()) {
        return Err("bpf-linker is not on PATH".into());
    }
    Ok(channel)
}

fn build(ebpf_dir: &Path, channel: &str) -> Result<(), String> {
    // gateway-ebpf lives outside this workspace (own toolchain, own target): aya-build runs
    // `cargo build --package gateway-ebpf` in the current directory, so run it from there.
    std::env::set_current_dir(ebpf_dir).map_err(|e| format!("cannot enter gateway-ebpf: {e}"))?;
    let pkg = aya_build::Package {
        name: "gateway-ebpf",
        root_dir: ebpf_dir.to_str().ok_or("non-UTF-8 path")?,
        ..Default::default()
    };
    aya_build::build_ebpf([pkg], aya_build::Toolchain::Custom(channel))
        .map_err(|e| format!("aya-build failed: {e:#}"))
}
