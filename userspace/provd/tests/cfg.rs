//! `provd cfg decode|encode` against the golden vectors: exit status, MIC verdicts, bytes.

use std::path::PathBuf;
use std::process::Command;

fn data(rel: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/data/docsis")
        .join(rel)
}

fn provd(args: &[&str]) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_provd"))
        .args(args)
        .output()
        .expect("run provd");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn decode_prints_text_and_verdicts_and_fails_on_a_mismatch() {
    let file = data("built/docsis1.0_basic.cm");
    let file = file.to_str().unwrap();
    let (ok, out, _) = provd(&["cfg", "decode", file, "--shared-secret", "DOCSIS"]);
    assert!(ok, "{out}");
    assert!(out.contains("\tMaxCPE 3;"), "{out}");
    assert!(
        out.contains("/* CmMic 817865a1f6e47e81a7364ff607a24648 verified */"),
        "{out}"
    );
    assert!(
        out.contains("/* CmtsMic f90e368f5d979a2d5093bbaba37f1497 verified */"),
        "{out}"
    );
    // The docsis tool's key file ends in a newline it strips; a raw "DOCSIS\n" key must fail.
    let (ok, out, _) = provd(&["cfg", "decode", file, "--shared-secret", "DOCSIS\n"]);
    assert!(!ok, "a wrong key is a failed check: {out}");
    assert!(
        out.contains(
            "CmtsMic f90e368f5d979a2d5093bbaba37f1497 MISMATCH (computed 359d3ae5d642125f54089460a0f76ee2)"
        ),
        "{out}"
    );
    let key = data("rlaager/keyfile");
    let (ok, out, _) = provd(&["cfg", "decode", file, "--key-file", key.to_str().unwrap()]);
    assert!(ok, "key file with trailing newline: {out}");
    let (ok, out, _) = provd(&["cfg", "decode", file]);
    assert!(ok, "{out}");
    assert!(out.contains("not checked"), "{out}");
}

#[test]
fn encode_compiles_tool_sources_to_the_golden_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("basic.cm");
    let out_s = out.to_str().unwrap();
    let src = data("rlaager/docsis1.0_basic.cfg");
    let src_s = src.to_str().unwrap();
    let (ok, _, err) = provd(&[
        "cfg",
        "encode",
        src_s,
        "-o",
        out_s,
        "--shared-secret",
        "DOCSIS",
    ]);
    assert!(ok, "{err}");
    assert_eq!(
        std::fs::read(&out).unwrap(),
        std::fs::read(data("built/docsis1.0_basic.cm")).unwrap()
    );
    let (ok, _, err) = provd(&["cfg", "encode", src_s, "-o", out_s]);
    assert!(
        !ok && err.contains("--shared-secret"),
        "a CM file needs its key: {err}"
    );

    // An MTA source with its in-file hash verifies when decoded.
    let mta = dir.path().join("mta.bin");
    let mta_s = mta.to_str().unwrap();
    let src = data("rlaager/packetcable_mta.cfg");
    let (ok, _, err) = provd(&[
        "cfg",
        "encode",
        src.to_str().unwrap(),
        "-o",
        mta_s,
        "--mta",
        "sha1",
    ]);
    assert!(ok, "{err}");
    let (ok, out, _) = provd(&["cfg", "decode", mta_s]);
    assert!(
        ok && out.contains("/* MtaHash sha1 ") && out.contains(" verified */"),
        "{out}"
    );
}

#[test]
fn bad_input_is_an_error_not_a_panic() {
    let dir = tempfile::tempdir().unwrap();
    let junk = dir.path().join("junk.cm");
    std::fs::write(&junk, [0x03, 0x05, 0x01]).unwrap();
    let (ok, _, err) = provd(&["cfg", "decode", junk.to_str().unwrap()]);
    assert!(
        !ok && err.contains("junk.cm") && !err.contains("panicked"),
        "{err}"
    );
    let txt = dir.path().join("bad.txt");
    std::fs::write(&txt, "Main {\n  MaxCPE 300;\n}\n").unwrap();
    let (ok, _, err) = provd(&[
        "cfg",
        "encode",
        txt.to_str().unwrap(),
        "-o",
        "/dev/null",
        "--shared-secret",
        "",
    ]);
    assert!(!ok && err.contains("line 2"), "{err}");
}
