//! Real clients against the server on loopback: tftp-hpa's `tftp`, `atftp` and `curl`. Each test
//! prints a note and passes when its client is not installed
//! (`apt-get install tftp-hpa atftp curl`).

mod common;

use std::path::Path;
use std::process::{Command, Output, Stdio};

use common::{Running, bytes, eventually, serve};

fn installed(binary: &str) -> bool {
    let found = std::env::var_os("PATH")
        .is_some_and(|paths| std::env::split_paths(&paths).any(|p| p.join(binary).is_file()));
    if !found {
        eprintln!(
            "note: {binary} is not installed; skipping (apt-get install tftp-hpa atftp curl)"
        );
    }
    found
}

/// A client command, killed after 60 s if it hangs (`timeout` from coreutils, so that
/// `output()` keeps draining the pipes: atftp --trace writes a line per packet).
fn client(binary: &str) -> Command {
    let mut cmd = Command::new("timeout");
    cmd.args(["60", binary]).stdin(Stdio::null());
    cmd
}

fn run(cmd: &mut Command) -> Output {
    cmd.output().expect("client starts")
}

fn text(out: &Output) -> String {
    format!(
        "status {:?}\nstdout: {}\nstderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

struct Fixture {
    firmware: Vec<u8>,
    small: Vec<u8>,
    exact: Vec<u8>,
    text: Vec<u8>,
    server: Running,
}

fn fixture() -> Fixture {
    let firmware = bytes(2 << 20, 11);
    let small = bytes(1300, 12);
    let exact = bytes(2048, 13);
    let text = b"# config\nline two\r\nend\n".repeat(100);
    let server = serve(
        &[
            ("fw/image.bin", &firmware),
            ("cm/0015cf123457.cfg", &small),
            ("exact.bin", &exact),
            ("notes.txt", &text),
        ],
        2,
    );
    Fixture {
        firmware,
        small,
        exact,
        text,
        server,
    }
}

fn read(path: &Path) -> Vec<u8> {
    std::fs::read(path).unwrap_or_default()
}

#[test]
fn tftp_hpa_gets_binary_and_ascii_files_and_sees_errors() {
    if !installed("tftp") {
        return;
    }
    let f = fixture();
    let dir = tempfile::tempdir().unwrap();
    let port = f.server.addr().port().to_string();
    let get = |mode: &str, name: &str, local: &Path| {
        run(client("tftp")
            .args(["-v", "-m", mode, "127.0.0.1", &port, "-c", "get", name])
            .arg(local))
    };
    for (name, want) in [
        ("cm/0015cf123457.cfg", &f.small),
        ("exact.bin", &f.exact),
        ("fw/image.bin", &f.firmware),
    ] {
        let local = dir.path().join("got");
        let out = get("binary", name, &local);
        assert!(read(&local) == *want, "tftp-hpa get {name}: {}", text(&out));
    }
    // netascii: CR LF on the wire, the client turns it back into the file.
    let local = dir.path().join("notes");
    let out = get("netascii", "notes.txt", &local);
    assert!(read(&local) == f.text, "tftp-hpa ascii get: {}", text(&out));
    let out = get("binary", "no/such.bin", &dir.path().join("none"));
    let log = text(&out);
    assert!(log.contains("Error code 1: File not found"), "{log}");
    let out = get("binary", "../../etc/passwd", &dir.path().join("passwd"));
    let log = text(&out);
    assert!(log.contains("Error code 2"), "{log}");
    // A put is refused and nothing lands in the root.
    let upload = dir.path().join("upload.bin");
    std::fs::write(&upload, b"data").unwrap();
    let out = run(client("tftp")
        .args(["-v", "-m", "binary", "127.0.0.1", &port, "-c", "put"])
        .arg(&upload)
        .arg("uploaded.bin"));
    let log = text(&out);
    assert!(log.contains("Error code 2"), "{log}");
    assert!(!f.server.root.path().join("uploaded.bin").exists());
    assert!(eventually(|| f.server.handle.counters().completed == 4));
}

#[test]
fn atftp_gets_with_blksize_windowsize_and_tsize() {
    if !installed("atftp") {
        return;
    }
    let f = fixture();
    let dir = tempfile::tempdir().unwrap();
    let port = f.server.addr().port().to_string();
    let get = |name: &str, local: &Path, options: &[&str]| {
        let mut cmd = client("atftp");
        cmd.args(["--verbose", "--trace"]);
        for o in options {
            cmd.args(["--option", o]);
        }
        cmd.args(["-g", "-r", name, "-l"])
            .arg(local)
            .args(["127.0.0.1", &port]);
        run(&mut cmd)
    };
    let opts = ["blksize 1428", "windowsize 16", "tsize enable"];
    let local = dir.path().join("fw");
    let out = get("fw/image.bin", &local, &opts);
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        read(&local) == f.firmware,
        "atftp windowed get: {}",
        text(&out)
    );
    let log = text(&out);
    for granted in ["blksize", "windowsize", "tsize"] {
        assert!(
            log.contains(granted),
            "OACK as atftp traced it lacks {granted}: {log}"
        );
    }
    let local = dir.path().join("small");
    let out = get("cm/0015cf123457.cfg", &local, &[]);
    assert!(read(&local) == f.small, "atftp plain get: {}", text(&out));
    let local = dir.path().join("exact");
    let out = get("exact.bin", &local, &["blksize 512"]);
    assert!(
        read(&local) == f.exact,
        "atftp exact-multiple get: {}",
        text(&out)
    );
    let out = get("missing", &dir.path().join("m"), &[]);
    assert!(!out.status.success());
    assert!(text(&out).contains("File not found"), "{}", text(&out));
}

#[test]
fn curl_gets_plain_and_with_blksize() {
    if !installed("curl") {
        return;
    }
    let f = fixture();
    let dir = tempfile::tempdir().unwrap();
    let url = |name: &str| format!("tftp://127.0.0.1:{}/{name}", f.server.addr().port());
    let get = |name: &str, local: &Path, args: &[&str]| {
        run(client("curl")
            .args(["-sS", "--max-time", "50"])
            .args(args)
            .arg("-o")
            .arg(local)
            .arg(url(name)))
    };
    for (name, want, args) in [
        ("cm/0015cf123457.cfg", &f.small, &[][..]),
        ("exact.bin", &f.exact, &[][..]),
        ("fw/image.bin", &f.firmware, &["--tftp-blksize", "1428"][..]),
        ("fw/image.bin", &f.firmware, &["--tftp-no-options"][..]),
    ] {
        let local = dir.path().join("got");
        let out = get(name, &local, args);
        assert!(out.status.success(), "curl {name} {args:?}: {}", text(&out));
        assert!(read(&local) == *want, "curl {name} {args:?}: wrong bytes");
    }
    // curl's exit code 68: "TFTP: File Not Found".
    let out = get("missing", &dir.path().join("m"), &[]);
    assert_eq!(out.status.code(), Some(68), "{}", text(&out));
}
