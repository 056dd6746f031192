//! The `tftp` suite: real TFTP clients (tftp-hpa, atftp, curl), dhclient for the per-device
//! files, and `provd-loadgen tftp` for concurrency, against the server in the rig's namespaces.
//! Every scenario is judged by what the clients received: exact bytes, hashes, the error codes
//! and messages they report, and `provd cfg decode` of generated files.
//!
//! The server is provd, or a peer (`--peer tftpd-hpa|atftpd`) serving the same static files,
//! which proves the static scenarios and the rig; scenarios about generated files skip there.

use std::fmt::Write as _;
use std::net::Ipv4Addr;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use anyhow::{Context, Result, bail, ensure};
use provd_rig::dhclient::Dhclient;
use provd_rig::topo::{CLIENT_IF, SERVER_IP};
use provd_rig::{Child, Netns, Provd, Topology, cmd, wait};

use super::{Args, Scenarios, Skip};

const PROVD_TEMPLATE: &str = include_str!("../../../tests/e2e/tftp/provd.toml.in");
const CM_TEMPLATE: &str = include_str!("../../../tests/e2e/tftp/templates/cm.cfg.j2");
/// The CMTS MIC key of both classes in `provd.toml.in`.
const SHARED_SECRET: &str = "DOCSIS";
/// `[vars] max_cpe` in `provd.toml.in`, rendered into every generated file.
const MAX_CPE: u32 = 3;
/// The client's address in the static-file scenarios (outside the DHCP pools).
const STATIC_CLIENT_IP: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 50);
/// A second address in the client namespace that holds no lease.
const OTHER_CLIENT_IP: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 60);
const TFTP_PORT: u16 = 69;

/// Static files, relative to the TFTP root.
const BLOB: &str = "static/blob.bin";
const BLOB_LEN: usize = 70_001;
/// A multiple of 512: the transfer ends with an empty DATA block.
const EXACT: &str = "static/exact-1024.bin";
const FIRMWARE: &str = "fw/firmware.bin";
const FIRMWARE_LEN: usize = 8 << 20;
const TEXT: &str = "text/readme.txt";

const READY_TIMEOUT: Duration = Duration::from_secs(30);
/// Any one client command (the 8 MiB download included).
const CLIENT_TIMEOUT: Duration = Duration::from_secs(120);
const BIND_TIMEOUT: Duration = Duration::from_secs(45);
/// `provd-loadgen tftp` in the concurrency scenario: transfers, in flight, and its bounds.
const LOAD_COUNT: u32 = 500;
const LOAD_CONCURRENCY: u32 = 100;
const LOAD_SECONDS: u32 = 60;

/// Which server answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Server {
    Provd,
    TftpdHpa,
    Atftpd,
}

impl Server {
    fn parse(peer: Option<&str>) -> Result<Server> {
        Ok(match peer {
            None | Some("provd") => Server::Provd,
            Some("tftpd-hpa") => Server::TftpdHpa,
            Some("atftpd") => Server::Atftpd,
            Some(other) => bail!("unknown --peer {other:?} (known: tftpd-hpa, atftpd)"),
        })
    }

    fn name(self) -> &'static str {
        match self {
            Server::Provd => "provd",
            Server::TftpdHpa => "tftpd-hpa",
            Server::Atftpd => "atftpd",
        }
    }
}

#[derive(Debug)]
pub struct Ctx {
    server: Server,
    provd: PathBuf,
    loadgen: PathBuf,
}

pub fn scenarios() -> Scenarios<Ctx> {
    vec![
        (
            "tftp-hpa-get",
            tftp_hpa_get as fn(&Ctx, &Path) -> Result<()>,
        ),
        ("atftp-options", atftp_options),
        ("curl-get", curl_get),
        ("traversal", traversal),
        ("wrq-refused", wrq_refused),
        ("netascii", netascii),
        ("generated-enforce", generated_enforce),
        ("cm-boot", cm_boot),
        ("loadgen-concurrency", loadgen_concurrency),
    ]
}

pub fn run(args: &Args) -> Result<()> {
    let server = Server::parse(args.peer.as_deref())?;
    let scenarios = scenarios();
    let mut tools = vec![
        "ip", "tftp", "atftp", "curl", "dhclient", "dhcrelay", "sysctl",
    ];
    let mut build = vec!["provd-loadgen"];
    match server {
        Server::Provd => build.push("provd"),
        Server::TftpdHpa => tools.push("in.tftpd"),
        Server::Atftpd => tools.push("atftpd"),
    }
    let bins = super::prepare(args, &scenarios, &tools, &build)?;
    let ctx = Ctx {
        server,
        provd: bins.provd,
        loadgen: bins.loadgen,
    };
    let about = format!("server {}", server.name());
    super::run_scenarios("tftp", &about, &ctx, &scenarios, args)
}

fn note(msg: impl AsRef<str>) {
    eprintln!("  {}", msg.as_ref());
}

// ---------------------------------------------------------------------------------------------
// Fixtures: the TFTP root and what lies outside it.

/// Deterministic bytes (xorshift64*), so a failure can be reproduced byte for byte.
pub(crate) fn pseudo_random(len: usize, seed: u64) -> Vec<u8> {
    let mut s = seed | 1;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        s ^= s >> 12;
        s ^= s << 25;
        s ^= s >> 27;
        out.extend_from_slice(&s.wrapping_mul(0x2545_f491_4f6c_dd1d).to_le_bytes());
    }
    out.truncate(len);
    out
}

/// A text file with LF line ends, a CR LF, bare CRs, and a CR LF straddling the first 512-byte
/// boundary of its netascii form.
fn text_fixture() -> Vec<u8> {
    let mut t = String::new();
    for i in 0..14 {
        let _ = writeln!(t, "line {i:02}: provisioning text with unix line ends");
    }
    t.push_str("a dos line\r\nbare\rcarriage\rreturns\n");
    while t.len() < 1400 {
        t.push_str("filler words to cross block boundaries\n");
    }
    t.push_str("no newline at the end");
    t.into_bytes()
}

/// RFC 1350 netascii as it goes on the wire: LF as CR LF, CR as CR NUL.
fn to_netascii(src: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(src.len() * 2);
    for &b in src {
        match b {
            b'\n' => out.extend_from_slice(b"\r\n"),
            b'\r' => out.extend_from_slice(b"\r\0"),
            _ => out.push(b),
        }
    }
    out
}

/// A file's SHA-1 as coreutils' `sha1sum` computes it: 40 hex digits.
fn sha1sum(path: &Path) -> Result<String> {
    let out = cmd::run(Command::new("sha1sum").arg(path), Duration::from_secs(30))?;
    let hex = out.split_whitespace().next().unwrap_or_default();
    ensure!(
        hex.len() == 40 && hex.bytes().all(|b| b.is_ascii_hexdigit()),
        "sha1sum printed {out:?}"
    );
    Ok(hex.to_owned())
}

/// The scenario directory laid out for the server: `tftp-root/` with the static files, canaries
/// outside it, and a symlink in it that points at one of them.
#[derive(Debug)]
struct Fixture {
    dir: PathBuf,
    root: PathBuf,
    /// Outside the root; reached by `sub/../../x`.
    canary_x: Vec<u8>,
    /// Outside the root; `escape.txt` in the root links to it.
    secret: Vec<u8>,
}

impl Fixture {
    fn create(dir: &Path, with_firmware: bool) -> Result<Fixture> {
        let root = dir.join("tftp-root");
        for d in ["static", "fw", "text", "sub"] {
            std::fs::create_dir_all(root.join(d))?;
        }
        let write = |rel: &str, bytes: &[u8]| -> Result<()> {
            let p = root.join(rel);
            std::fs::write(&p, bytes).with_context(|| p.display().to_string())
        };
        write(BLOB, &pseudo_random(BLOB_LEN, 1))?;
        write(EXACT, &pseudo_random(1024, 2))?;
        write(TEXT, &text_fixture())?;
        if with_firmware {
            write(FIRMWARE, &pseudo_random(FIRMWARE_LEN, 3))?;
        }
        let canary_x = b"CANARY x outside the TFTP root\n".to_vec();
        let secret = b"CANARY secret outside the TFTP root\n".to_vec();
        std::fs::write(dir.join("x"), &canary_x)?;
        std::fs::write(dir.join("secret.txt"), &secret)?;
        std::os::unix::fs::symlink(dir.join("secret.txt"), root.join("escape.txt"))?;
        // Peers drop to `nobody`: everything on the way must be world-readable.
        let mut p = Some(root.as_path());
        while let Some(d) = p {
            std::fs::set_permissions(d, std::fs::Permissions::from_mode(0o755))?;
            if d == dir.parent().unwrap_or(dir) {
                break;
            }
            p = d.parent();
        }
        for sub in ["static", "fw", "text", "sub"] {
            std::fs::set_permissions(root.join(sub), std::fs::Permissions::from_mode(0o755))?;
        }
        Ok(Fixture {
            dir: dir.to_path_buf(),
            root,
            canary_x,
            secret,
        })
    }

    fn file(&self, rel: &str) -> Result<Vec<u8>> {
        let p = self.root.join(rel);
        std::fs::read(&p).with_context(|| p.display().to_string())
    }
}

// ---------------------------------------------------------------------------------------------
// The server.

/// The server under test, running in the server namespace; killed by PID when dropped.
#[derive(Debug)]
enum TftpServer {
    Provd(Box<Provd>),
    /// A peer server: its own launcher, no ready line.
    Peer(Option<Child>),
}

impl TftpServer {
    /// Writes the config next to the fixture (provd), starts the server and waits until it says
    /// it is ready (provd) and UDP 69 is bound.
    fn start(ctx: &Ctx, ns: &Netns, fix: &Fixture) -> Result<TftpServer> {
        let dir = &fix.dir;
        let root = fix.root.to_str().context("root path is not UTF-8")?;
        let mut command = match ctx.server {
            Server::Provd => {
                std::fs::create_dir_all(dir.join("templates"))?;
                std::fs::write(dir.join("templates/cm.cfg.j2"), CM_TEMPLATE)?;
                let p = Provd::new(&ctx.provd, dir)
                    .label("server")
                    .ready_timeout(READY_TIMEOUT)
                    .env("RUST_BACKTRACE", "1");
                let lease_dir = p.lease_dir()?;
                let mut p = p.write_config(
                    &PROVD_TEMPLATE.replace("@LEASE_DIR@", &lease_dir.to_string_lossy()),
                )?;
                p.check_config()?;
                p.start(ns)?;
                // provd prints its ready line once its TFTP socket is bound too.
                p.wait_udp(Some(SERVER_IP), TFTP_PORT, Duration::from_secs(5))?;
                return Ok(TftpServer::Provd(Box::new(p)));
            }
            Server::TftpdHpa => {
                let mut c = ns.command("in.tftpd");
                // Foreground, chroot to the root, this address only.
                c.args(["-L", "-s", "-a", &format!("{SERVER_IP}:{TFTP_PORT}"), root]);
                c
            }
            Server::Atftpd => {
                let mut c = ns.command(super::which("atftpd").context("atftpd not found")?);
                c.args(["--daemon", "--no-fork", "--logfile", "-"])
                    .args(["--bind-address", &SERVER_IP.to_string()])
                    .args(["--port", &TFTP_PORT.to_string(), root]);
                c
            }
        };
        command.env("RUST_BACKTRACE", "1");
        let child = Child::spawn("server", command, dir)?;
        // The peers have no ready signal: the bound port is the only one.
        wait::udp_port(ns, Some(SERVER_IP), TFTP_PORT, READY_TIMEOUT).with_context(|| {
            format!(
                "nothing bound UDP {SERVER_IP}:{TFTP_PORT}; server stderr:\n{}",
                child.stderr_tail(10)
            )
        })?;
        Ok(TftpServer::Peer(Some(child)))
    }

    /// Fails if the server has exited, quoting its stderr.
    fn check_alive(&mut self) -> Result<()> {
        match self {
            TftpServer::Provd(p) => p.check_alive(),
            TftpServer::Peer(child) => {
                let child = child.as_mut().context("server is not running")?;
                if let Some(st) = child.try_wait()? {
                    bail!(
                        "the server exited unexpectedly ({st}); stderr tail:\n{}",
                        child.stderr_tail(20)
                    );
                }
                Ok(())
            }
        }
    }

    /// SIGTERM; provd must exit 0 within 10 s (its contract), peers just go.
    fn stop(&mut self) -> Result<()> {
        self.check_alive()?;
        match self {
            TftpServer::Provd(p) => p.stop(),
            TftpServer::Peer(child) => {
                if let Some(mut child) = child.take() {
                    child.stop(libc::SIGTERM, Duration::from_secs(10))?;
                }
                Ok(())
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The clients, each run once in a namespace with a deadline, its output kept in the scenario
// directory.

/// Runs `command` (already pointed into a namespace) within [`CLIENT_TIMEOUT`], keeping its
/// output as `<dir>/<label>.out/.err`.
fn run_client(mut command: Command, dir: &Path, label: &str) -> Result<Output> {
    cmd::output_kept(&mut command, CLIENT_TIMEOUT, dir, label)
}

/// What a client reported, and what it left in its output file.
#[derive(Debug)]
struct Fetched {
    /// The server's ERROR as the client showed it: (code if shown, message).
    error: Option<(Option<u16>, String)>,
    /// The client's exit code.
    code: Option<i32>,
    /// The local file (None: not created).
    content: Option<Vec<u8>>,
    log: String,
}

impl Fetched {
    fn received(&self) -> &[u8] {
        self.content.as_deref().unwrap_or_default()
    }

    /// The transfer worked: no error, exit 0, a file.
    fn ok(&self, what: &str) -> Result<&[u8]> {
        ensure!(
            self.error.is_none() && self.code == Some(0) && self.content.is_some(),
            "{what}: the client failed (exit {:?}, error {:?}): {}",
            self.code,
            self.error,
            self.log.trim()
        );
        Ok(self.received())
    }

    /// The server refused: an ERROR reached the client and no byte of content did.
    fn refused(&self, what: &str) -> Result<(Option<u16>, String)> {
        ensure!(
            self.received().is_empty(),
            "{what}: expected a refusal, but the client received {} bytes: {}",
            self.received().len(),
            self.log.trim()
        );
        self.error.clone().with_context(|| {
            format!(
                "{what}: expected an ERROR from the server, the client reported none (exit {:?}): {}",
                self.code,
                self.log.trim()
            )
        })
    }
}

/// `Error code N: MESSAGE` as tftp-hpa prints a server's ERROR.
fn parse_hpa_error(log: &str) -> Option<(Option<u16>, String)> {
    log.lines().find_map(|l| {
        let rest = l.trim().strip_prefix("Error code ")?;
        let (code, msg) = rest.split_once(": ")?;
        Some((code.parse().ok(), msg.trim().to_owned()))
    })
}

/// `error received from server <MESSAGE>` as atftp prints a server's ERROR.
fn parse_atftp_error(log: &str) -> Option<(Option<u16>, String)> {
    log.lines().find_map(|l| {
        let at = l.find("error received from server <")?;
        let rest = &l[at + "error received from server <".len()..];
        Some((None, rest.strip_suffix('>').unwrap_or(rest).to_owned()))
    })
}

/// curl's exit codes for the TFTP errors (curl(1), EXIT CODES): the server's ERROR code.
fn curl_error(exit: Option<i32>) -> Option<(Option<u16>, String)> {
    let (code, what) = match exit? {
        68 => (1, "file not found"),
        69 => (2, "permission problem"),
        70 => (3, "out of disk space"),
        71 => (4, "illegal operation"),
        72 => (5, "unknown transfer id"),
        73 => (6, "file already exists"),
        74 => (7, "no such user"),
        _ => return None,
    };
    Some((Some(code), format!("curl: TFTP {what}")))
}

fn read_if_exists(p: &Path) -> Result<Option<Vec<u8>>> {
    match std::fs::read(p) {
        Ok(b) => Ok(Some(b)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e).with_context(|| p.display().to_string()),
    }
}

/// A fresh local path for a download.
fn local(dir: &Path, label: &str) -> Result<PathBuf> {
    let p = dir.join(format!("{label}.got"));
    if p.exists() {
        std::fs::remove_file(&p)?;
    }
    Ok(p)
}

/// tftp-hpa: `tftp -v -m MODE SERVER -c get NAME LOCAL`. (It has no blksize option, and exits 0
/// whatever happened: the verdict is in what it prints.)
fn hpa_get(ns: &Netns, dir: &Path, label: &str, mode: &str, name: &str) -> Result<Fetched> {
    let out_path = local(dir, label)?;
    let mut c = ns.command("tftp");
    c.args(["-v", "-m", mode, &SERVER_IP.to_string(), "-c", "get", name])
        .arg(&out_path);
    let out = run_client(c, dir, label)?;
    let log = cmd::text(&out);
    Ok(Fetched {
        error: parse_hpa_error(&log),
        code: out.status.code(),
        content: read_if_exists(&out_path)?,
        log,
    })
}

/// atftp: `atftp [--option "K V"]... [--trace] --get -r NAME -l LOCAL SERVER 69`.
fn atftp_get(
    ns: &Netns,
    dir: &Path,
    label: &str,
    name: &str,
    options: &[&str],
    trace: bool,
) -> Result<Fetched> {
    let out_path = local(dir, label)?;
    let mut c = ns.command("atftp");
    for o in options {
        c.args(["--option", o]);
    }
    if trace {
        c.arg("--trace");
    }
    c.args(["--verbose", "--get", "-r", name, "-l"])
        .arg(&out_path)
        .args([&SERVER_IP.to_string(), &TFTP_PORT.to_string()]);
    let out = run_client(c, dir, label)?;
    let log = cmd::text(&out);
    Ok(Fetched {
        error: parse_atftp_error(&log),
        code: out.status.code(),
        content: read_if_exists(&out_path)?,
        log,
    })
}

/// curl: `curl -sS [ARGS] tftp://SERVER/NAME -o LOCAL`.
fn curl_fetch(ns: &Netns, dir: &Path, label: &str, name: &str, args: &[&str]) -> Result<Fetched> {
    let out_path = local(dir, label)?;
    let mut c = ns.command("curl");
    c.args(["-sS", "--max-time", "60"])
        .args(args)
        .arg(format!("tftp://{SERVER_IP}/{name}"))
        .arg("-o")
        .arg(&out_path);
    let out = run_client(c, dir, label)?;
    Ok(Fetched {
        error: curl_error(out.status.code()),
        code: out.status.code(),
        content: read_if_exists(&out_path)?,
        log: cmd::text(&out),
    })
}

/// Exact bytes, or where they first differ.
fn same_bytes(what: &str, got: &[u8], want: &[u8]) -> Result<()> {
    if got == want {
        return Ok(());
    }
    let at = got.iter().zip(want).position(|(a, b)| a != b);
    bail!(
        "{what}: received {} bytes, expected {}; first difference at {}",
        got.len(),
        want.len(),
        at.map_or("the end of the shorter".into(), |a| format!("byte {a}"))
    )
}

/// A topology for the static-file scenarios: the direct link, the client at a fixed address.
fn static_topology() -> Result<Topology> {
    let topo = Topology::direct()?;
    topo.links[0].b.add_addr(STATIC_CLIENT_IP, 24)?;
    Ok(topo)
}

/// Starts everything a static-file scenario needs.
fn static_setup(ctx: &Ctx, dir: &Path, firmware: bool) -> Result<(Topology, Fixture, TftpServer)> {
    let topo = static_topology()?;
    let fix = Fixture::create(dir, firmware)?;
    let server = TftpServer::start(ctx, &topo.server, &fix)?;
    Ok((topo, fix, server))
}

// ---------------------------------------------------------------------------------------------
// Static files.

/// tftp-hpa, binary mode: a file of 137 blocks and one that is exactly two blocks (so the
/// transfer ends with an empty DATA), byte for byte.
fn tftp_hpa_get(ctx: &Ctx, dir: &Path) -> Result<()> {
    let (topo, fix, mut server) = static_setup(ctx, dir, false)?;
    for (i, name) in [BLOB, EXACT].into_iter().enumerate() {
        let got = hpa_get(topo.client(), dir, &format!("hpa-{i}"), "binary", name)?;
        same_bytes(name, got.ok(name)?, &fix.file(name)?)?;
        note(format!(
            "tftp-hpa got {name}: {} bytes, exact",
            got.received().len()
        ));
    }
    server.stop()
}

/// atftp with blksize 1428, windowsize 16 and tsize: the 8 MiB firmware arrives whole, and the
/// options were really negotiated (atftp prints what the OACK granted); a plain get too.
fn atftp_options(ctx: &Ctx, dir: &Path) -> Result<()> {
    let (topo, fix, mut server) = static_setup(ctx, dir, true)?;
    let opts = ["blksize 1428", "windowsize 16", "tsize 0"];
    let got = atftp_get(topo.client(), dir, "atftp-fw", FIRMWARE, &opts, false)?;
    got.ok("atftp firmware")?;
    let (got_sha, want_sha) = (
        sha1sum(&dir.join("atftp-fw.got"))?,
        sha1sum(&fix.root.join(FIRMWARE))?,
    );
    ensure!(
        got_sha == want_sha,
        "firmware sha1 {got_sha} ({} bytes), expected {want_sha} ({FIRMWARE_LEN} bytes)",
        got.received().len()
    );
    same_bytes(FIRMWARE, got.received(), &fix.file(FIRMWARE)?)?;
    note(format!(
        "atftp got {FIRMWARE}: {} bytes, sha1 {got_sha}",
        got.received().len()
    ));
    // What the OACK grants, as `atftp --trace` shows it (a smaller file: the trace has a line
    // per packet).
    let traced = atftp_get(topo.client(), dir, "atftp-trace", BLOB, &opts, true)?;
    same_bytes(BLOB, traced.ok("atftp traced get")?, &fix.file(BLOB)?)?;
    let granted = oack_options(&traced.log);
    note(format!("OACK as atftp saw it: {granted:?}"));
    let mut want_granted = vec![
        ("blksize", "1428".to_owned()),
        ("tsize", BLOB_LEN.to_string()),
    ];
    // tftpd-hpa does not implement windowsize (RFC 7440); provd and atftpd do.
    if ctx.server != Server::TftpdHpa {
        want_granted.push(("windowsize", "16".to_owned()));
    }
    for (k, v) in &want_granted {
        ensure!(
            granted.iter().any(|(gk, gv)| gk == k && gv == v),
            "the server did not grant {k} {v}: atftp saw OACK options {granted:?}"
        );
    }
    let plain = atftp_get(topo.client(), dir, "atftp-plain", BLOB, &[], false)?;
    same_bytes(BLOB, plain.ok("atftp plain get")?, &fix.file(BLOB)?)?;
    server.stop()
}

/// The options of the OACK atftp received, from its `--verbose`/`--trace` lines such as
/// `received OACK <tsize: 5000, blksize: 1428, >` or `OACK: blksize = 1428`.
fn oack_options(log: &str) -> Vec<(&'static str, String)> {
    let mut out = Vec::new();
    for line in log.lines() {
        let Some(at) = line.find("OACK") else {
            continue;
        };
        let rest = &line[at + 4..];
        for key in ["blksize", "windowsize", "tsize", "timeout"] {
            for sep in [": ", " = ", "=", " "] {
                if let Some(i) = rest.find(&format!("{key}{sep}")) {
                    let v: String = rest[i + key.len() + sep.len()..]
                        .chars()
                        .take_while(char::is_ascii_digit)
                        .collect();
                    if !v.is_empty() && !out.iter().any(|(k, _)| *k == key) {
                        out.push((key, v));
                    }
                }
            }
        }
    }
    out
}

/// curl, plain and with `--tftp-blksize 1428`: exact bytes, also for the two-block file.
fn curl_get(ctx: &Ctx, dir: &Path) -> Result<()> {
    let (topo, fix, mut server) = static_setup(ctx, dir, false)?;
    let cases: [(&str, &str, &[&str]); 3] = [
        ("curl-plain", BLOB, &[]),
        ("curl-blksize", BLOB, &["--tftp-blksize", "1428"]),
        ("curl-exact", EXACT, &[]),
    ];
    for (label, name, args) in cases {
        let got = curl_fetch(topo.client(), dir, label, name, args)?;
        same_bytes(&format!("{label} {name}"), got.ok(label)?, &fix.file(name)?)?;
        note(format!(
            "{label}: {name} exact ({} bytes)",
            got.received().len()
        ));
    }
    server.stop()
}

/// Ways out of the root: every one refused with an ERROR and not a byte of the files they aim
/// at; an unknown name is "File not found" (code 1).
fn traversal(ctx: &Ctx, dir: &Path) -> Result<()> {
    let (topo, fix, mut server) = static_setup(ctx, dir, false)?;
    let passwd = std::fs::read("/etc/passwd").unwrap_or_default();
    let attempts: [(&str, &[u8]); 4] = [
        ("../../etc/passwd", &passwd),
        ("/etc/passwd", &passwd),
        ("sub/../../x", &fix.canary_x),
        ("escape.txt", &fix.secret),
    ];
    let mut problems = Vec::new();
    for (i, (name, target)) in attempts.iter().enumerate() {
        let got = hpa_get(
            topo.client(),
            dir,
            &format!("traversal-{i}"),
            "binary",
            name,
        )?;
        match got.refused(&format!("get {name:?}")) {
            Ok((code, msg)) => {
                note(format!("get {name:?}: refused with code {code:?} {msg:?}"));
                let allowed: &[u16] = match ctx.server {
                    // tftpd-hpa answers `sub/../../x` with 0 "Permission denied".
                    Server::TftpdHpa => &[0, 1, 2],
                    _ => &[1, 2],
                };
                if !code.is_some_and(|c| allowed.contains(&c)) {
                    problems.push(format!(
                        "get {name:?}: refused with code {code:?} {msg:?}, expected one of {allowed:?} (not found, access violation)"
                    ));
                }
            }
            Err(e) => problems.push(format!("{e:#}")),
        }
        if !target.is_empty() && got.received() == *target {
            problems.push(format!("get {name:?} delivered the file outside the root"));
        }
    }
    let got = hpa_get(topo.client(), dir, "unknown", "binary", "no/such/file.bin")?;
    match got.refused("get an unknown name") {
        Ok((Some(1), msg)) if msg.eq_ignore_ascii_case("File not found") => {
            note("unknown name: Error code 1: File not found");
        }
        Ok(other) => problems.push(format!(
            "unknown name: refused with {other:?}, expected code 1 \"File not found\""
        )),
        Err(e) => problems.push(format!("{e:#}")),
    }
    server.check_alive()?;
    if !problems.is_empty() {
        bail!(problems.join("; "));
    }
    server.stop()
}

/// A write request (tftp-hpa `put`) is refused with ERROR 2 (access violation), and nothing
/// appears in the root.
fn wrq_refused(ctx: &Ctx, dir: &Path) -> Result<()> {
    let (topo, fix, mut server) = static_setup(ctx, dir, false)?;
    let upload = dir.join("upload.bin");
    std::fs::write(&upload, pseudo_random(3000, 9))?;
    let mut c = topo.client().command("tftp");
    c.args(["-v", "-m", "binary", &SERVER_IP.to_string(), "-c", "put"])
        .arg(&upload)
        .arg("uploaded.bin");
    let out = run_client(c, dir, "hpa-put")?;
    let log = cmd::text(&out);
    let error = parse_hpa_error(&log);
    note(format!("tftp put: {error:?}"));
    let arrived = fix.root.join("uploaded.bin").exists();
    ensure!(
        !arrived,
        "the WRQ created uploaded.bin in the root: {}",
        log.trim()
    );
    match (ctx.server, &error) {
        (_, Some((Some(2), _))) => {}
        // tftpd-hpa without -c only overwrites existing files: "File not found".
        (Server::TftpdHpa, Some((Some(1), _))) => {}
        _ => bail!(
            "expected the WRQ refused with Error code 2 (access violation), tftp printed: {}",
            log.trim()
        ),
    }
    server.stop()
}

/// netascii: on the wire LF is CR LF and CR is CR NUL (checked on the bytes provd-loadgen saved,
/// which it does not convert back), and tftp-hpa `-m ascii` turns that back into the file.
fn netascii(ctx: &Ctx, dir: &Path) -> Result<()> {
    let (topo, fix, mut server) = static_setup(ctx, dir, false)?;
    let original = fix.file(TEXT)?;
    let wire_dir = dir.join("wire");
    let mut c = loadgen_command(ctx, topo.client(), TEXT, 1, 1);
    c.args(["--mode", "netascii", "--save-dir"])
        .arg(&wire_dir)
        .args(["--expect-size", &to_netascii(&original).len().to_string()]);
    let out = run_client(c, dir, "loadgen-netascii")?;
    let result = load_result(&out)?;
    ensure!(
        out.status.success() && result.files == 1,
        "provd-loadgen netascii get failed: {}",
        cmd::text(&out).trim()
    );
    let wire = std::fs::read(wire_dir.join(TEXT))?;
    same_bytes("netascii on the wire", &wire, &to_netascii(&original))?;
    note(format!(
        "wire form: {} bytes for a {}-byte file (CR LF / CR NUL as RFC 1350)",
        wire.len(),
        original.len()
    ));
    let got = hpa_get(topo.client(), dir, "hpa-ascii", "ascii", TEXT)?;
    same_bytes("tftp-hpa -m ascii", got.ok("tftp-hpa -m ascii")?, &original)?;
    server.stop()
}

// ---------------------------------------------------------------------------------------------
// Generated files.

/// `filename` (or option 67) of the last lease in dhclient's lease file.
fn lease_filename(lease_file: &str) -> Option<String> {
    lease_file.lines().rev().find_map(|l| {
        let l = l.trim().trim_end_matches(';');
        let v = l
            .strip_prefix("filename ")
            .or_else(|| l.strip_prefix("option bootfile-name "))?;
        Some(v.trim_matches('"').to_owned())
    })
}

fn mac12(mac: &[u8; 6]) -> String {
    provd_rig::hex(mac)
}

/// Runs `provd cfg decode FILE --shared-secret KEY`; returns (exit code, stdout).
fn decode(ctx: &Ctx, dir: &Path, file: &Path, key: &str, label: &str) -> Result<(i32, String)> {
    let mut c = Command::new(&ctx.provd);
    c.args(["cfg", "decode"])
        .arg(file)
        .args(["--shared-secret", key]);
    let out = run_client(c, dir, label)?;
    let code = out.status.code().context("provd cfg decode was killed")?;
    Ok((code, String::from_utf8_lossy(&out.stdout).into_owned()))
}

/// The `/* NAME <hex> STATUS */` comment `provd cfg decode` ends with for `name`.
fn mic_status(decoded: &str, name: &str) -> Option<String> {
    decoded.lines().find_map(|l| {
        let inner = l.trim().strip_prefix("/*")?.strip_suffix("*/")?.trim();
        let rest = inner.strip_prefix(name)?.strip_prefix(' ')?;
        Some(rest.to_owned())
    })
}

/// A generated file must carry MICs that verify with the shared secret (and fail with another
/// key, so the check itself can fail), and the device's facts as the template put them.
fn check_generated(ctx: &Ctx, dir: &Path, file: &Path, facts: &[(&str, String)]) -> Result<String> {
    let (code, decoded) = decode(ctx, dir, file, SHARED_SECRET, "decode")?;
    let cm = mic_status(&decoded, "CmMic");
    let cmts = mic_status(&decoded, "CmtsMic");
    ensure!(
        code == 0
            && cm.as_deref().is_some_and(|s| s.ends_with(" verified"))
            && cmts.as_deref().is_some_and(|s| s.ends_with(" verified")),
        "`provd cfg decode --shared-secret {SHARED_SECRET}` exited {code} with CmMic {cm:?}, \
         CmtsMic {cmts:?} (want both verified):\n{decoded}"
    );
    let (bad_code, bad) = decode(ctx, dir, file, "not-the-secret", "decode-wrong-key")?;
    let bad_cmts = mic_status(&bad, "CmtsMic");
    ensure!(
        bad_code == 1 && bad_cmts.as_deref().is_some_and(|s| s.contains("MISMATCH")),
        "decoding with a wrong shared secret exited {bad_code} with CmtsMic {bad_cmts:?} \
         (want 1 and MISMATCH): the MIC check proves nothing"
    );
    for (what, want) in facts {
        ensure!(
            decoded.contains(want.as_str()),
            "the decoded file does not show {what} ({want:?}):\n{decoded}"
        );
    }
    Ok(format!(
        "CmMic {}, CmtsMic {}",
        cm.unwrap_or_default(),
        cmts.unwrap_or_default()
    ))
}

fn skip_for_peers(ctx: &Ctx) -> Result<()> {
    if ctx.server != Server::Provd {
        return Err(Skip(format!(
            "{} serves static files only; generated per-device files are provd's",
            ctx.server.name()
        ))
        .into());
    }
    Ok(())
}

/// dhclient on the server's link gets a lease whose `filename` names its generated file; the
/// leased address fetches it (MICs verify, the device's facts are in it); a second address of
/// the same client, holding no lease, is refused with ERROR 2, and so is the file of a device
/// without a lease.
fn generated_enforce(ctx: &Ctx, dir: &Path) -> Result<()> {
    skip_for_peers(ctx)?;
    let topo = Topology::direct()?;
    let fix = Fixture::create(dir, false)?;
    let mut server = TftpServer::start(ctx, &topo.server, &fix)?;
    let mac = topo.links[0].b.mac()?;
    let dh = Dhclient::new(&dir.join("dhclient"), CLIENT_IF, None)?;
    let mut client = dh.start(topo.client(), "dhclient", dir)?;
    let bound = dh.wait_event(&mut client, &["BOUND", "REBOOT"], 0, BIND_TIMEOUT)?;
    let addr = bound.addr.context("dhclient bound without an address")?;
    let leases = std::fs::read_to_string(dh.lease_file())?;
    let name =
        lease_filename(&leases).with_context(|| format!("the lease has no filename:\n{leases}"))?;
    let want_name = format!("dev/{}.cfg", mac12(&mac));
    ensure!(
        name == want_name,
        "the lease names boot file {name:?}, expected {want_name:?} (class any, boot_file dev/{{mac}}.cfg)"
    );
    note(format!("bound {addr}, boot file {name}"));

    let got = hpa_get(topo.client(), dir, "hpa-own", "binary", &name)?;
    let file = dir.join("hpa-own.got");
    got.ok("fetching the device's own file from its leased address")?;
    let mics = check_generated(
        ctx,
        dir,
        &file,
        &[
            (
                "the MAC (sysContact)",
                format!("\"{}\"", provd_rig::fmt_mac(&mac)),
            ),
            (
                "the class and MAC (sysName)",
                format!("\"any-{}\"", mac12(&mac)),
            ),
            ("the leased address (sysLocation)", format!("ip={addr} ")),
            ("vars.max_cpe", format!("MaxCPE {MAX_CPE}")),
        ],
    )?;
    note(format!("{name}: {} bytes, {mics}", got.received().len()));

    // The same name from an address of the same host that holds no lease.
    topo.links[0].b.add_addr(OTHER_CLIENT_IP, 24)?;
    let other = curl_fetch(
        topo.client(),
        dir,
        "curl-other-address",
        &name,
        &["--interface", &OTHER_CLIENT_IP.to_string()],
    )?;
    match other.refused(&format!("{name} from {OTHER_CLIENT_IP}"))? {
        (Some(2), _) => note(format!("{name} from {OTHER_CLIENT_IP}: access violation")),
        other => bail!(
            "{name} from {OTHER_CLIENT_IP} (no lease): refused with {other:?}, expected ERROR 2 (access violation)"
        ),
    }
    // A device that has no lease at all, asked from the leased address.
    let stranger = format!("dev/{}.cfg", mac12(&[0x02, 0xde, 0xad, 0xbe, 0xef, 0x01]));
    let got = hpa_get(topo.client(), dir, "hpa-stranger", "binary", &stranger)?;
    let (code, msg) = got.refused(&format!("{stranger} (a device without a lease)"))?;
    note(format!("{stranger}: refused with {code:?} {msg:?}"));
    drop(client);
    server.stop()
}

/// A cable modem's boot: DORA through dhcrelay with option 60 "docsis3.0", then TFTP of the file
/// named in the ACK from the leased address; both MICs verify and the file is this modem's
/// (its MAC, class cm, its address, the relay's giaddr).
fn cm_boot(ctx: &Ctx, dir: &Path) -> Result<()> {
    skip_for_peers(ctx)?;
    let topo = Topology::relayed()?;
    let fix = Fixture::create(dir, false)?;
    let mut server = TftpServer::start(ctx, &topo.server, &fix)?;
    let mut relay = super::start_dhcrelay(&topo, dir)?;
    let mac = topo.links[1].b.mac()?;
    let dh = Dhclient::new(&dir.join("dhclient"), CLIENT_IF, None)?;
    // What a DOCSIS 3.0 modem sends as option 60.
    let mut conf = std::fs::read_to_string(dh.conf())?;
    conf.push_str("send vendor-class-identifier \"docsis3.0\";\n");
    std::fs::write(dh.conf(), conf)?;
    let mut client = dh.start(topo.client(), "dhclient", dir)?;
    let bound = dh
        .wait_event(&mut client, &["BOUND", "REBOOT"], 0, BIND_TIMEOUT)
        .with_context(|| format!("dhcrelay stderr:\n{}", relay.stderr_tail(10)))?;
    let addr = bound.addr.context("dhclient bound without an address")?;
    let leases = std::fs::read_to_string(dh.lease_file())?;
    let name = lease_filename(&leases)
        .with_context(|| format!("the ACK carried no boot file name:\n{leases}"))?;
    let want_name = format!("cm/{}.cfg", mac12(&mac));
    ensure!(
        name == want_name,
        "the modem was given boot file {name:?}, expected {want_name:?} (class cm by option 60)"
    );
    note(format!(
        "modem {} bound {addr} via the relay, boot file {name}",
        provd_rig::fmt_mac(&mac)
    ));

    let got = hpa_get(topo.client(), dir, "hpa-cm", "binary", &name)?;
    got.ok("the modem's TFTP of its config file")?;
    let mics = check_generated(
        ctx,
        dir,
        &dir.join("hpa-cm.got"),
        &[
            (
                "the MAC (sysContact)",
                format!("\"{}\"", provd_rig::fmt_mac(&mac)),
            ),
            (
                "class cm and the MAC (sysName)",
                format!("\"cm-{}\"", mac12(&mac)),
            ),
            (
                "the leased address and the relay (sysLocation)",
                format!("\"ip={addr} giaddr=198.18.2.1\""),
            ),
            ("vars.max_cpe", format!("MaxCPE {MAX_CPE}")),
        ],
    )?;
    note(format!("{name}: {} bytes, {mics}", got.received().len()));
    ensure!(
        relay.try_wait()?.is_none(),
        "dhcrelay exited: {}",
        relay.stderr_tail(10)
    );
    drop(client);
    server.stop()
}

// ---------------------------------------------------------------------------------------------
// Concurrency.

/// `provd-loadgen tftp` from the client namespace at the static client address.
fn loadgen_command(ctx: &Ctx, ns: &Netns, name: &str, count: u32, concurrency: u32) -> Command {
    let mut c = ns.command(&ctx.loadgen);
    c.args(["tftp", "--server", &format!("{SERVER_IP}:{TFTP_PORT}")])
        .args(["--bind", &STATIC_CLIENT_IP.to_string()])
        .args(["--name", name])
        .args(["--count", &count.to_string()])
        .args(["--concurrency", &concurrency.to_string()])
        .args(["--seconds", &LOAD_SECONDS.to_string()]);
    c
}

/// The numbers of a `RESULT tftp-load` line.
#[derive(Debug, Clone, PartialEq)]
struct LoadResult {
    files: u64,
    files_per_s: f64,
    errors: u64,
    timeouts: u64,
}

fn parse_load_line(stdout: &str) -> Option<LoadResult> {
    let line = stdout
        .lines()
        .rev()
        .find_map(|l| l.strip_prefix("RESULT tftp-load "))?;
    let field = |k: &str| -> Option<&str> {
        line.split_whitespace()
            .find_map(|w| w.strip_prefix(k)?.strip_prefix('='))
    };
    Some(LoadResult {
        files: field("files")?.parse().ok()?,
        files_per_s: field("files_per_s")?.parse().ok()?,
        errors: field("errors")?.parse().ok()?,
        timeouts: field("timeouts")?.parse().ok()?,
    })
}

fn load_result(out: &Output) -> Result<LoadResult> {
    parse_load_line(&String::from_utf8_lossy(&out.stdout)).with_context(|| {
        format!(
            "provd-loadgen printed no RESULT tftp-load line ({}): {}",
            out.status,
            cmd::text(out).trim()
        )
    })
}

/// 500 downloads, 100 in flight, from one client: every one complete and byte-exact (tsize and
/// SHA-1 checked per transfer), no error, no timeout.
fn loadgen_concurrency(ctx: &Ctx, dir: &Path) -> Result<()> {
    let (topo, fix, mut server) = static_setup(ctx, dir, false)?;
    let sha = sha1sum(&fix.root.join(BLOB))?;
    let mut c = loadgen_command(ctx, topo.client(), BLOB, LOAD_COUNT, LOAD_CONCURRENCY);
    c.args(["--tsize", "--expect-sha1", &sha])
        .args(["--expect-size", &BLOB_LEN.to_string()]);
    let out = run_client(c, dir, "loadgen")?;
    let r = load_result(&out)?;
    note(format!(
        "provd-loadgen: {} files, {:.0} files/s, {} errors, {} timeouts",
        r.files, r.files_per_s, r.errors, r.timeouts
    ));
    server.check_alive()?;
    ensure!(
        out.status.success()
            && r.files == u64::from(LOAD_COUNT)
            && r.errors == 0
            && r.timeouts == 0,
        "expected {LOAD_COUNT} verified files and no failure, provd-loadgen ({}) reported {r:?}: {}",
        out.status,
        String::from_utf8_lossy(&out.stderr).trim()
    );
    server.stop()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_error_lines_parse() {
        assert_eq!(
            parse_hpa_error("getting from x\nError code 1: File not found\n"),
            Some((Some(1), "File not found".into()))
        );
        assert_eq!(parse_hpa_error("Received 5000 bytes in 0.0 seconds"), None);
        assert_eq!(
            parse_atftp_error(
                "tftp: error received from server <Access violation>\ntftp: aborting"
            ),
            Some((None, "Access violation".into()))
        );
        assert_eq!(curl_error(Some(69)).unwrap().0, Some(2));
        assert_eq!(curl_error(Some(0)), None);
    }

    #[test]
    fn oack_lines_parse_in_both_atftp_styles() {
        let trace = "sent RRQ <file: f, mode: octet <tsize: 0, blksize: 1428>>\n\
                     received OACK <tsize: 8388608, blksize: 1428, windowsize: 16, >\n";
        assert_eq!(
            oack_options(trace),
            vec![
                ("blksize", "1428".to_owned()),
                ("windowsize", "16".to_owned()),
                ("tsize", "8388608".to_owned())
            ]
        );
        assert!(oack_options("Option blksize = 1428\n").is_empty());
    }

    #[test]
    fn netascii_encodes_per_rfc_1350() {
        assert_eq!(to_netascii(b"a\nb\r\nc\rd"), b"a\r\nb\r\0\r\nc\r\0d");
        let t = text_fixture();
        assert!(t.len() > 1400 && t.contains(&b'\r'));
    }

    #[test]
    fn lease_file_gives_the_last_boot_file() {
        let leases = "lease {\n  interface \"cli0\";\n  fixed-address 198.18.0.100;\n  \
                      filename \"dev/old.cfg\";\n}\nlease {\n  interface \"cli0\";\n  \
                      filename \"dev/0a1b2c3d4e5f.cfg\";\n  option routers 198.18.0.1;\n}\n";
        assert_eq!(
            lease_filename(leases).as_deref(),
            Some("dev/0a1b2c3d4e5f.cfg")
        );
        assert_eq!(lease_filename("lease {\n}\n"), None);
    }

    #[test]
    fn mic_comments_parse() {
        let d = "Main {\n}\n/* CmMic 0a0b verified */\n/* CmtsMic 0c0d MISMATCH */\n";
        assert_eq!(mic_status(d, "CmMic").as_deref(), Some("0a0b verified"));
        assert_eq!(mic_status(d, "CmtsMic").as_deref(), Some("0c0d MISMATCH"));
        assert_eq!(mic_status(d, "MtaHash"), None);
    }

    #[test]
    fn load_line_parses() {
        let r = parse_load_line(
            "RESULT tftp-load files=500 files_per_s=812.5 bytes_per_s=1 p50_ms=1 p99_ms=2 errors=0 timeouts=1\n",
        )
        .unwrap();
        assert_eq!((r.files, r.errors, r.timeouts), (500, 0, 1));
        assert!(parse_load_line("RESULT tftp-load files=x").is_none());
    }

    #[test]
    fn fixtures_are_deterministic() {
        assert_eq!(pseudo_random(100, 7), pseudo_random(100, 7));
        assert_ne!(pseudo_random(100, 7), pseudo_random(100, 8));
        assert_eq!(pseudo_random(BLOB_LEN, 1).len(), BLOB_LEN);
    }

    #[test]
    fn scenario_names_are_the_documented_ones() {
        let names: Vec<&str> = scenarios().iter().map(|(n, _)| *n).collect();
        assert_eq!(
            names,
            [
                "tftp-hpa-get",
                "atftp-options",
                "curl-get",
                "traversal",
                "wrq-refused",
                "netascii",
                "generated-enforce",
                "cm-boot",
                "loadgen-concurrency"
            ]
        );
    }
}
