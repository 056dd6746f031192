//! Builds the XDP program (ebpf/provd-ebpf) with the machine's nightly and bpf-linker, and
//! embeds it. When either is missing, or the build fails, provd still builds: no object is
//! embedded (`provd_no_ebpf`), a cargo warning says why, and `provd serve` falls back to io_uring
//! or sockets at run time and logs the same reason.
//!
//! The eBPF crate is built here by invoking cargo directly rather than with aya-build: aya-build
//! 0.2.0 fails the whole build when the toolchain is missing, and provd must build without it.

use std::path::PathBuf;
use std::process::Command;

fn main() {
    println!("cargo::rustc-check-cfg=cfg(provd_no_ebpf)");
    println!("cargo::rerun-if-env-changed=PROVD_NO_EBPF");
    let manifest = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").expect("set by cargo"));
    let ebpf = manifest.join("../../ebpf/provd-ebpf");
    let common = manifest.join("../../ebpf/provd-common");
    for p in [
        ebpf.join("src"),
        ebpf.join("Cargo.toml"),
        common.join("src"),
    ] {
        println!("cargo::rerun-if-changed={}", p.display());
    }
    let out = PathBuf::from(std::env::var_os("OUT_DIR").expect("set by cargo"));
    let object = out.join("provd-ebpf.o");
    let skip = |why: &str| {
        println!(
            "cargo::warning=XDP program not embedded: {why}; provd will serve on io_uring or sockets"
        );
        println!("cargo::rustc-cfg=provd_no_ebpf");
        println!("cargo::rustc-env=PROVD_EBPF_MISSING={why}");
    };
    if std::env::var_os("PROVD_NO_EBPF").is_some_and(|v| v == "1") {
        return skip("PROVD_NO_EBPF=1");
    }
    if Command::new("bpf-linker")
        .arg("--version")
        .output()
        .is_err()
    {
        return skip("bpf-linker is not installed (xtask/scripts/install-deps.sh installs it)");
    }
    let target_dir = out.join("ebpf-target");
    let mut cmd = Command::new("rustup");
    cmd.args([
        "run",
        "nightly",
        "cargo",
        "build",
        "--release",
        "--locked",
        "--quiet",
    ])
    .current_dir(&ebpf)
    .arg("--target-dir")
    .arg(&target_dir);
    // The outer build's settings are for the host: none of them may leak into the BPF build.
    for (k, _) in std::env::vars_os() {
        let k = k.to_string_lossy();
        if k.starts_with("CARGO_")
            || k.starts_with("RUSTC")
            || k == "RUSTFLAGS"
            || k == "RUSTUP_TOOLCHAIN"
            || k == "RUSTDOC"
        {
            cmd.env_remove(k.as_ref());
        }
    }
    match cmd.status() {
        Ok(s) if s.success() => {}
        Ok(s) => {
            return skip(&format!(
                "the eBPF build failed ({s}); is rust-src installed for nightly?"
            ));
        }
        Err(e) => return skip(&format!("cannot run rustup nightly cargo: {e}")),
    }
    let built = target_dir.join("bpfel-unknown-none/release/provd-ebpf");
    if let Err(e) = std::fs::copy(&built, &object) {
        skip(&format!("cannot copy {}: {e}", built.display()));
    }
}
