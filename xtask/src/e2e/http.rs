//! The `http` suite: VoIP profile provisioning over HTTP and HTTPS, judged by real peers:
//! curl (plain, `--cert`/`--key`, ranges, `-z`, If-None-Match), `openssl s_client` (the
//! server chain), `openssl enc` (reading what provd encrypted, writing what provd decrypts),
//! xmllint (the XML profiles) and dhclient (option 66/150 carrying the profile rule).
//!
//! Every scenario starts provd in the rig's server namespace with `tests/e2e/http/provd.toml.in`
//! and a PKI made by `openssl` in the scenario directory: a CA, the server certificate (leaf +
//! CA as its chain), client certificates with the MAC in the CN and in a SAN, an expired one
//! (`openssl ca -startdate/-enddate`), and one from another CA. Clients run in the client
//! namespace at 198.18.0.50.

use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use anyhow::{Context, Result, ensure};
use provd_rig::dhclient::Dhclient;
use provd_rig::topo::{CLIENT_IF, SERVER_IP};
use provd_rig::{Netns, Provd, Topology, cmd};

use super::{Args, Scenarios};

const PROVD_TEMPLATE: &str = include_str!("../../../tests/e2e/http/provd.toml.in");
const FV_TEMPLATE: &str = include_str!("../../../tests/e2e/http/templates/fv.cfg.j2");
const SPA_TEMPLATE: &str = include_str!("../../../tests/e2e/http/templates/spa.xml.j2");

const CLIENT_IP: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 50);
const SIP: &str = "sip1.example.net";
const KEY: &str = "SecretPhrase1234";
const FV_MAC: &str = "0015cf123456";
const ENC_MAC: &str = "0015cf123458";
const SPA_MAC: &str = "0015CF12345A";
const SPA_SAN_MAC: &str = "0015CF12345B";
const FIRMWARE: &str = "IP542N-2.0.bin";
const FIRMWARE_LEN: usize = 300_001;

const READY_TIMEOUT: Duration = Duration::from_secs(30);
const CLIENT_TIMEOUT: Duration = Duration::from_secs(30);
const BIND_TIMEOUT: Duration = Duration::from_secs(45);

#[derive(Debug)]
pub struct Ctx {
    provd: PathBuf,
}

pub fn scenarios() -> Scenarios<Ctx> {
    vec![
        (
            "plain-profile",
            plain_profile as fn(&Ctx, &Path) -> Result<()>,
        ),
        ("version-bump", version_bump),
        ("conditional", conditional),
        ("firmware-head-range", firmware_head_range),
        ("upgrade-rule", upgrade_rule),
        ("mtls-ok", mtls_ok),
        ("mtls-refused", mtls_refused),
        ("plain-refused", plain_refused),
        ("encrypted-openssl", encrypted_openssl),
        ("bad-requests", bad_requests),
        ("s-client-chain", s_client_chain),
        ("dhcp-profile-rule", dhcp_profile_rule),
    ]
}

pub fn run(args: &Args) -> Result<()> {
    let scenarios = scenarios();
    let tools = ["ip", "curl", "openssl", "xmllint", "dhclient", "sysctl"];
    let bins = super::prepare(args, &scenarios, &tools, &["provd"])?;
    let ctx = Ctx { provd: bins.provd };
    super::run_scenarios("http", "server provd", &ctx, &scenarios, args)
}

fn note(msg: impl AsRef<str>) {
    eprintln!("  {}", msg.as_ref());
}

// ---------------------------------------------------------------------------------------------
// PKI: made by openssl in the scenario directory. ECDSA P-256 throughout.

fn openssl(dir: &Path, args: &[&str]) -> Result<String> {
    let mut c = Command::new("openssl");
    c.current_dir(dir).args(args);
    let what = cmd::describe(&c);
    let out = cmd::output_timeout(&mut c, CLIENT_TIMEOUT)?;
    ensure!(
        out.status.success(),
        "`{what}` failed: {}",
        String::from_utf8_lossy(&out.stderr).trim()
    );
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// `openssl enc MODE` (`-e` or `-d`) with the profile key, as an operator's device tooling runs
/// it: AES-256-CBC, the MD5 key derivation of `Salted__` files.
fn openssl_enc(dir: &Path, mode: &str, input: &Path, output: &Path) -> Result<()> {
    openssl(
        dir,
        &[
            "enc",
            mode,
            "-aes-256-cbc",
            "-md",
            "md5",
            "-k",
            KEY,
            "-in",
            &input.display().to_string(),
            "-out",
            &output.display().to_string(),
        ],
    )
    .map(drop)
}

/// `provd profile VERB --key KEY INPUT OUTPUT` (`encrypt` or `decrypt`).
fn provd_profile(ctx: &Ctx, verb: &str, input: &Path, output: &Path) -> Result<()> {
    let out = cmd::output_timeout(
        Command::new(&ctx.provd)
            .args(["profile", verb, "--key", KEY])
            .arg(input)
            .arg(output),
        CLIENT_TIMEOUT,
    )?;
    ensure!(out.status.success(), "provd profile {verb}: {}", text(&out));
    Ok(())
}

/// A key and a CSR for `subj`, with `san` (an `subjectAltName` value) if any.
fn key_and_csr(dir: &Path, name: &str, subj: &str) -> Result<()> {
    openssl(
        dir,
        &[
            "req",
            "-new",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-keyout",
            &format!("{name}.key"),
            "-out",
            &format!("{name}.csr"),
            "-subj",
            subj,
        ],
    )?;
    Ok(())
}

fn self_signed_ca(dir: &Path, name: &str, cn: &str) -> Result<()> {
    openssl(
        dir,
        &[
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-keyout",
            &format!("{name}.key"),
            "-out",
            &format!("{name}.pem"),
            "-subj",
            &format!("/CN={cn}"),
            "-days",
            "30",
            "-addext",
            "basicConstraints=critical,CA:TRUE",
            "-addext",
            "keyUsage=critical,keyCertSign,cRLSign",
        ],
    )?;
    Ok(())
}

/// Signs `name.csr` with CA `ca` for 30 days, with the extensions in `ext`.
fn sign(dir: &Path, name: &str, ca: &str, ext: &str) -> Result<()> {
    let ext_file = format!("{name}.ext");
    std::fs::write(dir.join(&ext_file), ext)?;
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            &format!("{name}.csr"),
            "-CA",
            &format!("{ca}.pem"),
            "-CAkey",
            &format!("{ca}.key"),
            "-CAcreateserial",
            "-days",
            "30",
            "-extfile",
            &ext_file,
            "-out",
            &format!("{name}.pem"),
        ],
    )?;
    Ok(())
}

const CLIENT_EXT: &str =
    "basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=clientAuth\n";

/// The whole PKI of a scenario, in `dir/pki` (the bench uses it too).
pub(crate) fn make_pki(dir: &Path) -> Result<PathBuf> {
    let pki = dir.join("pki");
    std::fs::create_dir_all(&pki)?;
    self_signed_ca(&pki, "ca", "provd e2e CA")?;
    self_signed_ca(&pki, "other-ca", "someone else's CA")?;
    key_and_csr(&pki, "server", "/CN=198.18.0.1")?;
    sign(
        &pki,
        "server",
        "ca",
        "basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\nsubjectAltName=IP:198.18.0.1,DNS:prov.e2e.test\n",
    )?;
    let chain = [
        std::fs::read_to_string(pki.join("server.pem"))?,
        std::fs::read_to_string(pki.join("ca.pem"))?,
    ]
    .concat();
    std::fs::write(pki.join("server-chain.pem"), chain)?;
    // MAC in the CN.
    key_and_csr(&pki, "spa", &format!("/CN={SPA_MAC}"))?;
    sign(&pki, "spa", "ca", CLIENT_EXT)?;
    // MAC in a SAN, a CN without one.
    key_and_csr(&pki, "spa-san", "/CN=SPA504G phone")?;
    sign(
        &pki,
        "spa-san",
        "ca",
        &format!("{CLIENT_EXT}subjectAltName=DNS:00-15-cf-12-34-5b.phones.e2e.test\n"),
    )?;
    // Right MAC, wrong CA.
    key_and_csr(&pki, "foreign", &format!("/CN={SPA_MAC}"))?;
    sign(&pki, "foreign", "other-ca", CLIENT_EXT)?;
    // Right MAC, right CA, expired in 2020: `openssl ca` sets the dates (OpenSSL 3.0's x509
    // has no -not_before/-not_after).
    key_and_csr(&pki, "expired", &format!("/CN={SPA_MAC}"))?;
    std::fs::write(pki.join("index.txt"), "")?;
    std::fs::write(pki.join("serial"), "1000\n")?;
    std::fs::write(
        pki.join("ca.cnf"),
        format!(
            "[ca]\ndefault_ca = e2e\n[e2e]\ndir = {d}\ndatabase = {d}/index.txt\nserial = {d}/serial\nnew_certs_dir = {d}\ncertificate = {d}/ca.pem\nprivate_key = {d}/ca.key\ndefault_md = sha256\npolicy = any\nunique_subject = no\nx509_extensions = client\n[any]\ncommonName = supplied\n[client]\nbasicConstraints = CA:FALSE\nextendedKeyUsage = clientAuth\n",
            d = pki.display()
        ),
    )?;
    openssl(
        &pki,
        &[
            "ca",
            "-batch",
            "-config",
            "ca.cnf",
            "-in",
            "expired.csr",
            "-out",
            "expired.pem",
            "-startdate",
            "20200101000000Z",
            "-enddate",
            "20200201000000Z",
            "-notext",
        ],
    )?;
    Ok(pki)
}

// ---------------------------------------------------------------------------------------------
// The server.

struct Server {
    provd: Provd,
}

impl Server {
    /// Writes config, templates and firmware into `dir`, makes the PKI, checks the config and
    /// starts provd in `ns`.
    fn start(ctx: &Ctx, ns: &Netns, dir: &Path) -> Result<Server> {
        make_pki(dir)?;
        std::fs::create_dir_all(dir.join("templates"))?;
        std::fs::create_dir_all(dir.join("firmware"))?;
        std::fs::create_dir_all(dir.join("leases"))?;
        std::fs::write(dir.join("templates/fv.cfg.j2"), FV_TEMPLATE)?;
        std::fs::write(dir.join("templates/spa.xml.j2"), SPA_TEMPLATE)?;
        std::fs::write(dir.join("firmware").join(FIRMWARE), firmware_bytes())?;
        write_config(dir, SIP)?;
        let mut provd = Provd::new(&ctx.provd, dir)
            .numbered_label("provd-", 1)
            .ready_timeout(READY_TIMEOUT)
            .env("RUST_BACKTRACE", "1");
        provd.check_config()?;
        provd.start(ns).context("provd did not become ready")?;
        Ok(Server { provd })
    }

    fn check_alive(&mut self) -> Result<()> {
        self.provd.check_alive()
    }

    /// SIGTERM; provd must exit 0 within 10 s.
    fn stop(&mut self) -> Result<()> {
        self.provd.check_alive()?;
        self.provd.stop()
    }

    /// Stops provd and starts it again on the same config and lease directory.
    fn restart(&mut self, ns: &Netns) -> Result<()> {
        self.stop()?;
        self.provd.start(ns).context("provd did not become ready")?;
        Ok(())
    }

    fn stderr(&self) -> String {
        self.provd.stderr_text()
    }

    /// `provd http status --config .. MAC` over the control socket.
    fn status(&self, mac: &str) -> Result<serde_json::Value> {
        let out = cmd::output_timeout(
            Command::new(self.provd.bin())
                .args(["http", "status", "--config"])
                .arg(self.provd.config())
                .arg(mac),
            Duration::from_secs(10),
        )?;
        ensure!(
            out.status.success(),
            "provd http status failed: {}",
            text(&out)
        );
        serde_json::from_slice(&out.stdout)
            .with_context(|| format!("provd http status said: {}", text(&out)))
    }
}

fn write_config(dir: &Path, sip: &str) -> Result<()> {
    let lease_dir = dir.join("leases");
    std::fs::write(
        dir.join("provd.toml"),
        PROVD_TEMPLATE
            .replace("@LEASE_DIR@", &lease_dir.to_string_lossy())
            .replace("@SIP@", sip),
    )?;
    Ok(())
}

/// Deterministic bytes (xorshift64*).
fn firmware_bytes() -> Vec<u8> {
    let mut s: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut out = Vec::with_capacity(FIRMWARE_LEN + 8);
    while out.len() < FIRMWARE_LEN {
        s ^= s >> 12;
        s ^= s << 25;
        s ^= s >> 27;
        out.extend_from_slice(&s.wrapping_mul(0x2545_f491_4f6c_dd1d).to_le_bytes());
    }
    out.truncate(FIRMWARE_LEN);
    out
}

fn setup(ctx: &Ctx, dir: &Path) -> Result<(Topology, Server)> {
    let topo = Topology::direct()?;
    topo.links[0].b.add_addr(CLIENT_IP, 24)?;
    let server = Server::start(ctx, &topo.server, dir)?;
    Ok((topo, server))
}

// ---------------------------------------------------------------------------------------------
// curl and friends, run in the client namespace, output kept in the scenario directory.

fn text(out: &Output) -> String {
    cmd::text(out).trim().to_string()
}

/// What curl got.
#[derive(Debug)]
struct Got {
    /// curl's exit code.
    exit: i32,
    /// The HTTP status, if a response arrived.
    status: Option<u16>,
    headers: String,
    body: Vec<u8>,
    stderr: String,
}

impl Got {
    fn header(&self, name: &str) -> Option<String> {
        // With -D of a single response the last block is the final response.
        self.headers.lines().rev().find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.trim()
                .eq_ignore_ascii_case(name)
                .then(|| v.trim().to_string())
        })
    }

    fn expect(&self, status: u16, what: &str) -> Result<&Self> {
        ensure!(
            self.status == Some(status),
            "{what}: expected HTTP {status}, got {:?} (curl exit {}): {}",
            self.status,
            self.exit,
            self.stderr.trim()
        );
        Ok(self)
    }

    fn body_text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

fn curl(ns: &Netns, dir: &Path, label: &str, args: &[&str]) -> Result<Got> {
    let body = dir.join(format!("{label}.body"));
    let headers = dir.join(format!("{label}.headers"));
    let _ = std::fs::remove_file(&body);
    let _ = std::fs::remove_file(&headers);
    let mut c = ns.command("curl");
    c.args(["-sS", "--max-time", "15", "-o"])
        .arg(&body)
        .arg("-D")
        .arg(&headers)
        .args(["-w", "%{http_code}"])
        .args(args);
    let what = cmd::describe(&c);
    let out = cmd::output_timeout(&mut c, CLIENT_TIMEOUT)?;
    std::fs::write(
        dir.join(format!("{label}.err")),
        format!("$ {what}\n{}", String::from_utf8_lossy(&out.stderr)),
    )?;
    let code: u16 = String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .unwrap_or(0);
    Ok(Got {
        exit: out.status.code().unwrap_or(-1),
        status: (code != 0).then_some(code),
        headers: std::fs::read_to_string(&headers).unwrap_or_default(),
        body: std::fs::read(&body).unwrap_or_default(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    })
}

fn url(path: &str) -> String {
    format!("http://{SERVER_IP}{path}")
}

fn surl(path: &str) -> String {
    format!("https://{SERVER_IP}{path}")
}

/// curl arguments for HTTPS with the suite's CA and, optionally, a client certificate.
fn tls_args(pki: &Path, cert: Option<&str>) -> Vec<String> {
    let mut v = vec![
        "--cacert".to_string(),
        pki.join("ca.pem").display().to_string(),
    ];
    if let Some(c) = cert {
        v.push("--cert".into());
        v.push(pki.join(format!("{c}.pem")).display().to_string());
        v.push("--key".into());
        v.push(pki.join(format!("{c}.key")).display().to_string());
    }
    v
}

fn with<'a>(owned: &'a [String], extra: &[&'a str]) -> Vec<&'a str> {
    owned
        .iter()
        .map(String::as_str)
        .chain(extra.iter().copied())
        .collect()
}

/// The `DBID_DBASE_VERSION` a kvp profile carries.
fn kvp_version(body: &str) -> Option<u64> {
    body.lines()
        .find_map(|l| l.strip_prefix("DBID_DBASE_VERSION="))
        .and_then(|v| v.trim().parse().ok())
}

fn has_line(body: &str, line: &str) -> Result<()> {
    ensure!(
        body.lines().any(|l| l == line),
        "the profile has no line {line:?}:\n{body}"
    );
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Scenarios.

/// A Flying Voice profile over plain HTTP: template values, the subscriber's line, macros
/// expanded, the version line first; `provd http status` records the fetch.
fn plain_profile(ctx: &Ctx, dir: &Path) -> Result<()> {
    let (topo, mut server) = setup(ctx, dir)?;
    let got = curl(
        topo.client(),
        dir,
        "fv",
        &[&url(&format!("/fv/{FV_MAC}.cfg"))],
    )?;
    got.expect(200, "the fv profile")?;
    let body = got.body_text();
    ensure!(
        body.starts_with("DBID_DBASE_VERSION=1\n"),
        "the version line is not first:\n{body}"
    );
    has_line(&body, &format!("DBID_WEB_SIP_SERVER={SIP}"))?;
    has_line(&body, "DBID_SIP_PHONE_NUM=1001")?;
    has_line(&body, "DBID_DEVICE_MAC=0015CF123456")?;
    has_line(&body, &format!("DBID_DEVICE_IP={CLIENT_IP}"))?;
    has_line(
        &body,
        "DBID_PROFILE_RULE=http://198.18.0.1/fv/0015cf123456.cfg",
    )?;
    has_line(&body, "DBID_SIP_ENABLE=1\t0\t0\t0")?;
    ensure!(
        !body.contains("UPGRADE"),
        "no model given, yet an upgrade rule:\n{body}"
    );
    let ct = got.header("content-type").unwrap_or_default();
    ensure!(ct.starts_with("text/plain"), "content-type {ct:?}");
    ensure!(got.header("etag").is_some(), "no ETag");
    let st = server.status("00:15:cf:12:34:56")?;
    ensure!(
        st["last_version_served"] == 1 && st["last_status"] == 200 && st["requests"] == 1,
        "provd http status: {st}"
    );
    ensure!(
        st["last_seen_ms"].as_u64().unwrap_or(0) > 0,
        "no last_seen: {st}"
    );
    note(format!("{} bytes, version 1; status {st}", body.len()));
    server.stop()
}

/// The version rises when the rendered profile changes (template edit; a config change across
/// a restart) and only then (repeat fetches, a plain restart).
fn version_bump(ctx: &Ctx, dir: &Path) -> Result<()> {
    let (topo, mut server) = setup(ctx, dir)?;
    let u = url(&format!("/fv/{FV_MAC}.cfg"));
    let fetch = |label: &str| -> Result<(u64, String)> {
        let got = curl(topo.client(), dir, label, &[&u])?;
        got.expect(200, label)?;
        let v = kvp_version(&got.body_text()).context("no DBID_DBASE_VERSION")?;
        Ok((v, got.header("etag").unwrap_or_default()))
    };
    let (v1, e1) = fetch("first")?;
    let (v1b, e1b) = fetch("again")?;
    ensure!(
        (v1, v1b) == (1, 1) && e1 == e1b,
        "unchanged profile: {v1}/{v1b}, {e1}/{e1b}"
    );
    // Edit the template: the server notices within a second.
    let tpl = dir.join("templates/fv.cfg.j2");
    let mut t = std::fs::read_to_string(&tpl)?;
    t.push_str("DBID_NEW_SETTING=7\n");
    std::thread::sleep(Duration::from_millis(1100));
    std::fs::write(&tpl, t)?;
    let mut v2 = 0;
    for i in 0..30 {
        std::thread::sleep(Duration::from_millis(200));
        let (v, _) = fetch(&format!("edit-{i}"))?;
        if v != 1 {
            v2 = v;
            break;
        }
    }
    ensure!(v2 == 2, "after the template edit: version {v2}, expected 2");
    let (v2b, _) = fetch("after-edit")?;
    ensure!(v2b == 2, "no change since the edit, yet version {v2b}");
    server.restart(&topo.server)?;
    let (v2c, _) = fetch("restart-same")?;
    ensure!(
        v2c == 2,
        "restart without a change: version {v2c}, expected 2 (kept on disk)"
    );
    write_config(dir, "sip2.example.net")?;
    server.restart(&topo.server)?;
    let got = curl(topo.client(), dir, "restart-changed", &[&u])?;
    got.expect(200, "after the config change")?;
    let body = got.body_text();
    ensure!(
        kvp_version(&body) == Some(3),
        "config changed across a restart: expected version 3:\n{body}"
    );
    has_line(&body, "DBID_WEB_SIP_SERVER=sip2.example.net")?;
    note("versions 1, 1, 2 (template edit), 2, 2 (restart), 3 (config change + restart)");
    server.stop()
}

/// ETag / If-None-Match and If-Modified-Since (`curl -z`) give 304 for an unchanged profile.
fn conditional(ctx: &Ctx, dir: &Path) -> Result<()> {
    let (topo, mut server) = setup(ctx, dir)?;
    let u = url(&format!("/fv/{FV_MAC}.cfg"));
    let first = curl(topo.client(), dir, "first", &[&u])?;
    first.expect(200, "first fetch")?;
    let etag = first.header("etag").context("no ETag")?;
    let lm = first.header("last-modified").context("no Last-Modified")?;
    let inm = format!("If-None-Match: {etag}");
    curl(topo.client(), dir, "inm", &[&u, "-H", &inm])?.expect(304, "If-None-Match")?;
    curl(
        topo.client(),
        dir,
        "inm-other",
        &[&u, "-H", "If-None-Match: \"v1-0000\""],
    )?
    .expect(200, "If-None-Match with another tag")?;
    curl(topo.client(), dir, "z-lm", &[&u, "-z", &lm])?.expect(304, "curl -z <Last-Modified>")?;
    curl(
        topo.client(),
        dir,
        "z-old",
        &[&u, "-z", "Sat, 01 Jan 2000 00:00:00 GMT"],
    )?
    .expect(200, "curl -z <a date in 2000>")?;
    // curl -z FILE: the local copy's time.
    let local = dir.join("local.cfg");
    std::fs::write(&local, &first.body)?;
    let z_file = curl(
        topo.client(),
        dir,
        "z-file",
        &[&u, "-z", &local.display().to_string()],
    )?;
    z_file.expect(304, "curl -z <local file written after the fetch>")?;
    note(format!(
        "ETag {etag}, Last-Modified {lm}: 304 on match, 200 otherwise"
    ));
    server.stop()
}

/// Firmware: HEAD with the length, byte ranges compared with the file, 416, If-None-Match.
fn firmware_head_range(ctx: &Ctx, dir: &Path) -> Result<()> {
    let (topo, mut server) = setup(ctx, dir)?;
    let fw = firmware_bytes();
    let u = url(&format!("/firmware/{FIRMWARE}"));
    let head = curl(topo.client(), dir, "head", &["-I", &u])?;
    head.expect(200, "HEAD")?;
    ensure!(
        head.header("content-length") == Some(FIRMWARE_LEN.to_string()),
        "HEAD Content-Length {:?}",
        head.header("content-length")
    );
    ensure!(
        head.header("accept-ranges").as_deref() == Some("bytes"),
        "no Accept-Ranges"
    );
    // curl -I writes the response head to its output: nothing of the image may follow it.
    ensure!(
        head.body.len() < 1024 && head.body.starts_with(b"HTTP/1.1 200"),
        "HEAD answered {} bytes beyond the head",
        head.body.len()
    );
    let whole = curl(topo.client(), dir, "whole", &[&u])?;
    whole.expect(200, "GET")?;
    ensure!(
        whole.body == fw,
        "the image differs ({} bytes)",
        whole.body.len()
    );
    for (label, range, a, b) in [
        ("r-mid", "1000-1999", 1000usize, 1999usize),
        ("r-open", "299000-", 299_000, FIRMWARE_LEN - 1),
        ("r-suffix", "-500", FIRMWARE_LEN - 500, FIRMWARE_LEN - 1),
        ("r-clip", "300000-999999", 300_000, FIRMWARE_LEN - 1),
    ] {
        let got = curl(topo.client(), dir, label, &["-r", range, &u])?;
        got.expect(206, &format!("range {range}"))?;
        ensure!(
            got.body == fw[a..=b],
            "range {range}: {} bytes differ from the file's {a}..={b}",
            got.body.len()
        );
        let want_cr = format!("bytes {a}-{b}/{FIRMWARE_LEN}");
        ensure!(
            got.header("content-range").as_deref() == Some(want_cr.as_str()),
            "range {range}: Content-Range {:?}, expected {want_cr}",
            got.header("content-range")
        );
    }
    curl(topo.client(), dir, "r-416", &["-r", "400000-", &u])?.expect(416, "range past the end")?;
    let etag = whole.header("etag").context("no ETag")?;
    curl(
        topo.client(),
        dir,
        "fw-inm",
        &[&u, "-H", &format!("If-None-Match: {etag}")],
    )?
    .expect(304, "firmware If-None-Match")?;
    curl(
        topo.client(),
        dir,
        "fw-missing",
        &[&url("/firmware/nope.bin")],
    )?
    .expect(404, "missing firmware")?;
    note("HEAD, 4 ranges byte-exact, 416, 304, 404");
    server.stop()
}

/// The upgrade rule reaches a device of the model at an old version (query or User-Agent), not
/// one already at the target, and its URL downloads the image.
fn upgrade_rule(ctx: &Ctx, dir: &Path) -> Result<()> {
    let (topo, mut server) = setup(ctx, dir)?;
    let base = url(&format!("/fv/{FV_MAC}.cfg"));
    let want = format!("DBID_UPGRADE_RULE=http://198.18.0.1/firmware/{FIRMWARE}");
    let q = format!("{base}?pn=IP542N&swver=1.5");
    let got = curl(topo.client(), dir, "query-old", &[&q])?;
    got.expect(200, "profile with pn/swver")?;
    has_line(&got.body_text(), &want)?;
    let v_old = kvp_version(&got.body_text());
    let ua = curl(
        topo.client(),
        dir,
        "ua-old",
        &["-A", "FlyingVoice/IP542N-1.9 (SN1)", &base],
    )?;
    ua.expect(200, "profile with a User-Agent")?;
    has_line(&ua.body_text(), &want)?;
    let new = curl(
        topo.client(),
        dir,
        "ua-new",
        &["-A", "FlyingVoice/IP542N-2.0", &base],
    )?;
    new.expect(200, "at the target version")?;
    ensure!(
        !new.body_text().contains("DBID_UPGRADE_RULE"),
        "a device at 2.0 was told to upgrade:\n{}",
        new.body_text()
    );
    ensure!(
        kvp_version(&new.body_text()) > v_old,
        "dropping the upgrade rule changed the profile, so the version must rise"
    );
    let other = curl(
        topo.client(),
        dir,
        "other",
        &[&format!("{base}?pn=G802&swver=1.0")],
    )?;
    ensure!(
        !other.body_text().contains("UPGRADE"),
        "another model got the rule"
    );
    let fw = curl(
        topo.client(),
        dir,
        "download",
        &[&format!("http://198.18.0.1/firmware/{FIRMWARE}")],
    )?;
    fw.expect(200, "the upgrade URL")?;
    ensure!(fw.body == firmware_bytes(), "the upgrade image differs");
    note("rule for IP542N 1.5 and 1.9, none at 2.0 or for G802; image downloaded");
    server.stop()
}

/// HTTPS with client certificates naming the device (CN, SAN): the XML profile, valid XML.
fn mtls_ok(ctx: &Ctx, dir: &Path) -> Result<()> {
    let (topo, mut server) = setup(ctx, dir)?;
    let pki = dir.join("pki");
    for (label, cert, mac) in [("cn", "spa", SPA_MAC), ("san", "spa-san", SPA_SAN_MAC)] {
        let args = tls_args(&pki, Some(cert));
        let u = surl(&format!("/spa/{mac}.xml"));
        let got = curl(topo.client(), dir, label, &with(&args, &[&u]))?;
        got.expect(200, &format!("certificate with the MAC in its {label}"))?;
        let file = dir.join(format!("{label}.body"));
        let lint = cmd::output_timeout(
            Command::new("xmllint").arg("--noout").arg(&file),
            CLIENT_TIMEOUT,
        )?;
        ensure!(lint.status.success(), "xmllint: {}", text(&lint));
        let body = got.body_text();
        ensure!(
            body.contains("<Profile_Version>1</Profile_Version>")
                && body.contains(&format!("<Station_Name ua=\"na\">{mac}</Station_Name>"))
                && body.contains("https://198.18.0.1/spa/$MAU.xml"),
            "the SPA profile:\n{body}"
        );
    }
    note("CN and SAN certificates accepted; XML valid (xmllint), Profile_Version 1");
    server.stop()
}

/// Refusals: another device's certificate (403), none (403), expired and foreign-CA ones (the
/// handshake fails), all counted while the server keeps serving.
fn mtls_refused(ctx: &Ctx, dir: &Path) -> Result<()> {
    let (topo, mut server) = setup(ctx, dir)?;
    let pki = dir.join("pki");
    let u = surl(&format!("/spa/{SPA_SAN_MAC}.xml"));
    let wrong = curl(
        topo.client(),
        dir,
        "wrong-mac",
        &with(&tls_args(&pki, Some("spa")), &[&u]),
    )?;
    wrong.expect(403, "a certificate naming another MAC")?;
    let none = curl(
        topo.client(),
        dir,
        "no-cert",
        &with(&tls_args(&pki, None), &[&u]),
    )?;
    none.expect(403, "no client certificate")?;
    let own = surl(&format!("/spa/{SPA_MAC}.xml"));
    for (label, cert) in [("expired", "expired"), ("foreign-ca", "foreign")] {
        let got = curl(
            topo.client(),
            dir,
            label,
            &with(&tls_args(&pki, Some(cert)), &[&own]),
        )?;
        ensure!(
            got.status.is_none() && got.exit != 0,
            "{label} certificate: expected a failed handshake, got HTTP {:?} (curl exit {})",
            got.status,
            got.exit
        );
        note(format!(
            "{label}: curl exit {} ({})",
            got.exit,
            got.stderr.trim()
        ));
    }
    curl(
        topo.client(),
        dir,
        "after",
        &with(&tls_args(&pki, Some("spa")), &[&own]),
    )?
    .expect(200, "the right certificate after the refusals")?;
    server.check_alive()?;
    let log = server.stderr();
    ensure!(
        log.contains("request refused") && log.contains("TLS handshake failed"),
        "refusals were not logged"
    );
    note("403 wrong MAC, 403 no certificate, handshake refused for expired and foreign CA");
    server.stop()
}

/// A class that forbids plain HTTP: 403 on port 80, 200 over HTTPS.
fn plain_refused(ctx: &Ctx, dir: &Path) -> Result<()> {
    let (topo, mut server) = setup(ctx, dir)?;
    curl(
        topo.client(),
        dir,
        "plain",
        &[&url(&format!("/spa/{SPA_MAC}.xml"))],
    )?
    .expect(403, "the spa profile over plain HTTP")?;
    let pki = dir.join("pki");
    curl(
        topo.client(),
        dir,
        "https",
        &with(
            &tls_args(&pki, Some("spa")),
            &[&surl(&format!("/spa/{SPA_MAC}.xml"))],
        ),
    )?
    .expect(200, "the same over HTTPS")?;
    // A plain-HTTP class stays reachable over HTTPS too, certificate or not.
    curl(
        topo.client(),
        dir,
        "fv-https",
        &with(
            &tls_args(&pki, None),
            &[&surl(&format!("/fv/{FV_MAC}.cfg"))],
        ),
    )?
    .expect(200, "the fv profile over HTTPS")?;
    server.stop()
}

/// `openssl enc -d -aes-256-cbc -md md5` reads the encrypted profile; `provd profile decrypt`
/// reads what `openssl enc -e` wrote, and openssl reads `provd profile encrypt`.
fn encrypted_openssl(ctx: &Ctx, dir: &Path) -> Result<()> {
    let (topo, mut server) = setup(ctx, dir)?;
    let got = curl(
        topo.client(),
        dir,
        "enc",
        &[&url(&format!("/enc/{ENC_MAC}.cfg"))],
    )?;
    got.expect(200, "the encrypted profile")?;
    ensure!(
        got.body.starts_with(b"Salted__"),
        "not an OpenSSL salted file"
    );
    let enc = dir.join("enc.body");
    let dec = dir.join("enc.dec");
    openssl_enc(dir, "-d", &enc, &dec)?;
    let plain = std::fs::read_to_string(&dec)?;
    ensure!(
        plain.starts_with("DBID_DBASE_VERSION=1\n") && plain.contains("DBID_SIP_PHONE_NUM=1003"),
        "openssl decrypted:\n{plain}"
    );
    // Wrong digest (modern openssl default SHA-256): must not decrypt.
    let bad = cmd::output_timeout(
        Command::new("openssl")
            .args([
                "enc",
                "-d",
                "-aes-256-cbc",
                "-md",
                "sha256",
                "-k",
                KEY,
                "-in",
            ])
            .arg(&enc)
            .args(["-out", "/dev/null"]),
        CLIENT_TIMEOUT,
    )?;
    ensure!(
        !bad.status.success(),
        "the profile decrypted with a SHA-256 KDF too"
    );
    // The reverse: openssl writes, provd reads.
    let src = dir.join("mine.cfg");
    std::fs::write(&src, "DBID_DBASE_VERSION=9\nDBID_X=operator file\n")?;
    let by_openssl = dir.join("mine.enc");
    openssl_enc(dir, "-e", &src, &by_openssl)?;
    let back = dir.join("mine.back");
    provd_profile(ctx, "decrypt", &by_openssl, &back)?;
    ensure!(
        std::fs::read(&back)? == std::fs::read(&src)?,
        "provd decrypted other bytes"
    );
    // provd encrypts, openssl decrypts.
    let by_provd = dir.join("mine.provd.enc");
    provd_profile(ctx, "encrypt", &src, &by_provd)?;
    let round = dir.join("mine.round");
    openssl_enc(dir, "-d", &by_provd, &round)?;
    ensure!(
        std::fs::read(&round)? == std::fs::read(&src)?,
        "openssl decrypted other bytes"
    );
    note("served profile read by openssl; openssl -> provd and provd -> openssl both exact");
    server.stop()
}

/// Bad requests get their status and never stop the server: traversal and encoding tricks
/// (400), unknown MAC and path (404), oversized headers (431), POST (405).
fn bad_requests(ctx: &Ctx, dir: &Path) -> Result<()> {
    let (topo, mut server) = setup(ctx, dir)?;
    let cases: [(&str, &str, u16); 9] = [
        ("dotdot", "/fv/../leases/http-versions.log", 400),
        ("enc-dotdot", "/firmware/%2e%2e/provd.toml", 400),
        ("enc-dotdot-upper", "/firmware/%2E%2E%2Fprovd.toml", 400),
        ("nul", "/fv/0015cf123456.cfg%00.txt", 400),
        ("double", "/firmware/%252e%252e/provd.toml", 400),
        ("backslash", "/firmware/..%5cprovd.toml", 400),
        ("unknown-mac", "/fv/0015cf999999.cfg", 404),
        ("unknown-path", "/provd.toml", 404),
        ("firmware-dir", "/firmware/", 404),
    ];
    for (label, path, want) in cases {
        let got = curl(topo.client(), dir, label, &["--path-as-is", &url(path)])?;
        got.expect(want, &format!("{label} ({path})"))?;
        ensure!(
            !got.body_text().contains("sip_server") && !got.body_text().contains("DBID_"),
            "{label}: the refusal leaked file contents"
        );
    }
    let big = format!("X-Big: {}", "a".repeat(20_000));
    curl(
        topo.client(),
        dir,
        "big-header",
        &["-H", &big, &url(&format!("/fv/{FV_MAC}.cfg"))],
    )?
    .expect(431, "a 20 kB header")?;
    curl(
        topo.client(),
        dir,
        "post",
        &["-X", "POST", "-d", "x", &url(&format!("/fv/{FV_MAC}.cfg"))],
    )?
    .expect(405, "POST")?;
    curl(
        topo.client(),
        dir,
        "still",
        &[&url(&format!("/fv/{FV_MAC}.cfg"))],
    )?
    .expect(200, "a good request afterwards")?;
    server.check_alive()?;
    note("400 x6, 404 x3, 431, 405, then 200");
    server.stop()
}

/// `openssl s_client` sees the chain (leaf + CA), verifies it, and is asked for a client
/// certificate from the suite's CA.
fn s_client_chain(ctx: &Ctx, dir: &Path) -> Result<()> {
    let (topo, mut server) = setup(ctx, dir)?;
    let pki = dir.join("pki");
    let mut c = topo.client().command("openssl");
    c.args([
        "s_client",
        "-connect",
        "198.18.0.1:443",
        "-showcerts",
        "-verify_return_error",
    ])
    .arg("-CAfile")
    .arg(pki.join("ca.pem"))
    .args(["-servername", "prov.e2e.test"])
    .stdin(std::process::Stdio::null());
    let out = cmd::output_timeout(&mut c, CLIENT_TIMEOUT)?;
    let t = text(&out);
    std::fs::write(dir.join("s_client.out"), &t)?;
    let certs = t.matches("-----BEGIN CERTIFICATE-----").count();
    ensure!(
        certs == 2,
        "s_client saw {certs} certificates, expected leaf + CA:\n{t}"
    );
    ensure!(
        t.contains("Verify return code: 0 (ok)"),
        "chain not verified:\n{t}"
    );
    ensure!(
        t.contains("Acceptable client certificate CA names") && t.contains("provd e2e CA"),
        "the server did not ask for client certificates from its CA:\n{t}"
    );
    ensure!(
        t.contains("CN = 198.18.0.1") || t.contains("CN=198.18.0.1"),
        "leaf subject:\n{t}"
    );
    note("2 certificates, verified, client CA advertised");
    server.stop()
}

/// dhclient with option 60 `FlyingVoice-G802` gets the profile rule in option 66 and option
/// 150; then the device (known by its lease, no subscriber record) fetches its profile from
/// the leased address, which the profile names.
fn dhcp_profile_rule(ctx: &Ctx, dir: &Path) -> Result<()> {
    let topo = Topology::direct()?;
    let mut server = Server::start(ctx, &topo.server, dir)?;
    let mac = topo.links[0].b.mac()?;
    let dh = Dhclient::new(&dir.join("dhclient"), CLIENT_IF, None)?;
    let mut conf = std::fs::read_to_string(dh.conf())?;
    conf.insert_str(0, "option voip-tftp code 150 = array of ip-address;\n");
    conf.push_str("send vendor-class-identifier \"FlyingVoice-G802\";\nalso request tftp-server-name, voip-tftp;\n");
    std::fs::write(dh.conf(), conf)?;
    let mut client = dh.start(topo.client(), "dhclient", dir)?;
    let bound = dh.wait_event(&mut client, &["BOUND", "REBOOT"], 0, BIND_TIMEOUT)?;
    let addr = bound.addr.context("dhclient bound without an address")?;
    // dhclient escapes `$` and `&` in the lease file with backslashes.
    let leases = std::fs::read_to_string(dh.lease_file())?.replace('\\', "");
    let rule = "http://198.18.0.1/fv/$MA.cfg?pn=$PN&swver=$SWVER";
    ensure!(
        leases.contains(&format!("option tftp-server-name \"{rule}\"")),
        "option 66 does not carry the profile rule:\n{leases}"
    );
    ensure!(
        leases.contains("option voip-tftp 198.18.0.1;"),
        "option 150 missing:\n{leases}"
    );
    // What the device does next: expand $MA and fetch.
    let ma: String = mac.iter().map(|b| format!("{b:02x}")).collect();
    let path = format!("/fv/{ma}.cfg?pn=G802&swver=1.0");
    let got = curl(topo.client(), dir, "device", &[&url(&path)])?;
    got.expect(200, "the leased device's profile")?;
    has_line(&got.body_text(), &format!("DBID_DEVICE_IP={addr}"))?;
    has_line(&got.body_text(), "DBID_SIP_PHONE_NUM=")?;
    note(format!(
        "{} bound {addr}; option 66 = {rule}; option 150 = 198.18.0.1; profile fetched",
        provd_rig::fmt_mac(&mac)
    ));
    drop(client);
    server.stop()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_parse() {
        assert_eq!(kvp_version("A=1\nDBID_DBASE_VERSION=12\n"), Some(12));
        assert_eq!(kvp_version("A=1\n"), None);
    }

    #[test]
    fn config_template_has_its_placeholders() {
        assert!(PROVD_TEMPLATE.contains("@LEASE_DIR@") && PROVD_TEMPLATE.contains("@SIP@"));
    }
}
