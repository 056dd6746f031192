//! The `api` suite: the control plane end to end, once per store backend (embedded, then
//! PostgreSQL 15 started by the suite in the server namespace from Debian's package).
//!
//! One provd runs for the whole scenario list of a backend, in the rig's relayed topology
//! (`[srv] provd ── [rly] dhcrelay -a ── [cli] the modem, the MTA, more clients`), and the
//! scenarios build on each other, in order: a class of service, a subscriber and a cable modem
//! created over `/api/v1` (curl, in the server namespace, where the API listens on 127.0.0.1);
//! the modem (dhclient, option 60 `docsis3.0`, its MAC set by the suite) boots and fetches its
//! file with tftp-hpa; the file's TLVs are walked by the suite's own reader (not provd's) and by
//! `provd cfg decode`; its tier changes and the next fetch shows the new values; a reset reaches
//! Net-SNMP's snmpd on the modem's address (a `pass` script records the SET); the timeline, the
//! audit log, 401 and 403; SIGHUP reloads (a new pool, a bad config); an MTA's flow record, an
//! ACS task and the timeline across kill -9 and a restart. Once per run (embedded):
//! `openapi-spec-validator` and `schemathesis` (PyPI, in the venv install-deps.sh makes) against
//! the live API, and `promtool check metrics` on `/metrics`.
//!
//! A scenario that fails leaves the rest of its backend's list to fail fast ("the stack is
//! down") rather than run against a half-built state.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};
use provd_rig::dhclient::Dhclient;
use provd_rig::topo::{CLIENT_IF, SERVER_IP};
use provd_rig::{Child, Netns, Postgres, Provd, Topology, cmd, wait};
use serde_json::{Value, json};

use super::{Args, Scenarios};

const PROVD_TEMPLATE: &str = include_str!("../../../tests/e2e/api/provd.toml.in");
const CM_TEMPLATE: &str = include_str!("../../../tests/e2e/api/templates/cm.cfg.j2");
const MTA_TEMPLATE: &str = include_str!("../../../tests/e2e/api/templates/mta.cfg.j2");
const RESET_AGENT: &str = include_str!("../../../tests/e2e/api/reset-agent.sh");

/// The PostgreSQL server's port (on the server namespace's loopback).
const PG_PORT: u16 = 55432;
/// The ACS task API (`[acs] admin_port`).
const ACS_API: &str = "http://127.0.0.1:7557";
/// docsDevResetNow.0.
const OID_RESET_NOW: &str = ".1.3.6.1.2.1.69.1.1.3.0";
/// The relayed subnet's pool at start, and the one the reload adds.
const POOL: (Ipv4Addr, Ipv4Addr) = (
    Ipv4Addr::new(198, 18, 2, 100),
    Ipv4Addr::new(198, 18, 2, 200),
);
const NEW_POOL: (Ipv4Addr, Ipv4Addr) = (
    Ipv4Addr::new(198, 18, 2, 210),
    Ipv4Addr::new(198, 18, 2, 230),
);
/// The modem, the MTA and the clients of the reload scenarios (macvlans on the client link).
const CM_MAC: [u8; 6] = [0x00, 0x10, 0x95, 0xe2, 0xa0, 0x01];
const MTA_MAC: [u8; 6] = [0x00, 0x15, 0xcf, 0xe2, 0xa0, 0x02];
const NEW_CLIENT_MAC: [u8; 6] = [0x02, 0x00, 0x5e, 0xe2, 0xa0, 0x03];
const KEPT_CLIENT_MAC: [u8; 6] = [0x02, 0x00, 0x5e, 0xe2, 0xa0, 0x04];
/// What a PacketCable 1.5 MTA sends as option 60 (as in the MTA suite).
const MTA_TYPE_ID: &str = "pktc1.5:051a0101010201020301000401010901000b02060910010912020007";

const READY_TIMEOUT: Duration = Duration::from_secs(60);
const BIND_TIMEOUT: Duration = Duration::from_secs(45);
const CLIENT_TIMEOUT: Duration = Duration::from_secs(30);
/// How long something the API started (a reset, an event) may take to show.
const SETTLE: Duration = Duration::from_secs(15);

/// The classes of service and what the modem's file must show under each: (name, vars).
const GOLD_DOWN: u32 = 50_000_000;
const SILVER_DOWN: u32 = 100_000_000;
const SILVER_DOWN_2: u32 = 200_000_000;
/// The subscriber's `max_cpe` (wins over the class's), then the device's own (wins over both).
const SUB_MAX_CPE: u8 = 5;
const DEVICE_MAX_CPE: u8 = 7;

/// Which store provd runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Embedded,
    Postgres,
}

impl Backend {
    pub fn name(self) -> &'static str {
        match self {
            Backend::Embedded => "embedded",
            Backend::Postgres => "postgres",
        }
    }

    /// `embedded`, `postgres` or `both`.
    pub fn parse_list(s: Option<&str>) -> Result<Vec<Backend>> {
        Ok(match s.unwrap_or("both") {
            "both" => vec![Backend::Embedded, Backend::Postgres],
            "embedded" => vec![Backend::Embedded],
            "postgres" => vec![Backend::Postgres],
            other => bail!("unknown --backend {other:?} (embedded, postgres or both)"),
        })
    }
}

#[derive(Debug)]
pub struct Ctx {
    backend: Backend,
    provd: PathBuf,
    /// The Python venv with openapi-spec-validator and schemathesis.
    venv: PathBuf,
    /// Run the outside checks (OpenAPI validator, schemathesis, promtool) with this backend.
    outside_checks: bool,
    stack: RefCell<Option<Stack>>,
}

pub fn scenarios() -> Scenarios<Ctx> {
    vec![
        ("start", start as fn(&Ctx, &Path) -> Result<()>),
        ("provision", provision),
        ("cm-boot", cm_boot),
        ("tier-change", tier_change),
        ("reset", reset),
        ("timeline", timeline),
        ("auth", auth),
        ("audit", audit),
        ("reload-pool", reload_pool),
        ("reload-bad-config", reload_bad_config),
        ("mta-record", mta_record),
        ("acs-task", acs_task),
        ("kill9-restart", kill9_restart),
        // Last: schemathesis writes, releases and deletes whatever the API lets it find,
        // the modem's lease among them.
        ("openapi-validator", openapi_validator),
        ("schemathesis", schemathesis),
        ("promtool-metrics", promtool_metrics),
        ("stop", stop),
    ]
}

pub fn run(args: &Args) -> Result<()> {
    let backends = Backend::parse_list(args.backend.as_deref())?;
    let scenarios = scenarios();
    let tools = [
        "ip", "dhclient", "dhcrelay", "tftp", "curl", "snmpd", "snmpget", "promtool", "setpriv",
        "rdate",
    ];
    let bins = super::prepare(args, &scenarios, &tools, &["provd"])?;
    let venv = bins.root.join("target/e2e-venv");
    let run_dir = std::env::temp_dir().join(format!("provd-e2e-{}", std::process::id()));
    let (mut passed, mut failed) = (0, 0);
    for (i, &backend) in backends.iter().enumerate() {
        let ctx = Ctx {
            backend,
            provd: bins.provd.clone(),
            venv: venv.clone(),
            outside_checks: i == 0,
            stack: RefCell::new(None),
        };
        let about = format!("backend {}", backend.name());
        let (p, f) = super::run_group(
            "api",
            &about,
            backend.name(),
            &ctx,
            &scenarios,
            args,
            &run_dir.join(backend.name()),
        )?;
        // Whatever is left (a failed run) is torn down before the next backend.
        drop(ctx.stack.borrow_mut().take());
        passed += p;
        failed += f;
    }
    super::finish(&run_dir, passed, failed, args)
}

/// `provd token create --name NAME --role ROLE` in `ns` while serve runs: the secret it prints
/// (the api and ui suites).
pub(crate) fn create_token(
    ns: &Netns,
    provd: &Provd,
    dir: &Path,
    name: &str,
    role: &str,
) -> Result<String> {
    let mut c = ns.command(provd.bin());
    c.args(["token", "create", "--config"])
        .arg(provd.config())
        .args(["--name", name, "--role", role]);
    let out = cmd::output_kept(&mut c, CLIENT_TIMEOUT, dir, &format!("token-{name}"))?;
    ensure!(
        out.status.success(),
        "`provd token create --name {name} --role {role}` failed ({}): {}",
        out.status,
        cmd::text(&out).trim()
    );
    let secret = String::from_utf8_lossy(&out.stdout).trim().to_string();
    ensure!(
        !secret.is_empty() && !secret.contains(char::is_whitespace),
        "`provd token create` printed {secret:?}, expected one secret on one line"
    );
    Ok(secret)
}

fn note(msg: impl AsRef<str>) {
    eprintln!("  {}", msg.as_ref());
}

/// Runs `f` on the stack `start` built; fails when it is not there.
fn with<T>(ctx: &Ctx, f: impl FnOnce(&mut Stack) -> Result<T>) -> Result<T> {
    let mut st = ctx.stack.borrow_mut();
    let s = st
        .as_mut()
        .context("the stack is down (an earlier scenario failed)")?;
    f(s)
}

// ---------------------------------------------------------------------------------------------
// The stack: topology, PostgreSQL, provd, dhcrelay, and the clients as they come.

/// Field order is drop order: clients, then provd, then PostgreSQL, then the namespaces.
#[derive(Debug)]
struct Stack {
    snmpd: Option<Child>,
    clients: Vec<Child>,
    relay: Child,
    provd: Provd,
    pg: Option<Postgres>,
    topo: Topology,
    dir: PathBuf,
    lease_dir: PathBuf,
    store_toml: String,
    /// `http://127.0.0.1:8080`, from the `api ready` line.
    api: String,
    tokens: Tokens,
    cm_addr: Ipv4Addr,
    /// The modem's files as fetched, in order.
    cm_files: Vec<Vec<u8>>,
    /// The device record's ETag after the last write.
    cm_etag: String,
    /// Macvlans made on the client link so far (cli1, cli2, ...).
    links: u32,
    /// What kill9-restart compares: the MTA's record, the ACS task, the timeline's ids.
    mta_record: Option<Value>,
    acs_task: Option<(u64, Value)>,
}

#[derive(Debug, Default)]
struct Tokens {
    admin: String,
    operator: String,
    read_only: String,
}

fn pools_toml(pools: &[(String, String)]) -> String {
    let mut s = String::new();
    for (a, b) in pools {
        let _ = write!(
            s,
            "    [[shared_network.subnet.pool]]\n    start = \"{a}\"\n    end = \"{b}\"\n"
        );
    }
    s
}

fn render_config(lease_dir: &Path, store: &str, pools: &[(String, String)]) -> String {
    PROVD_TEMPLATE
        .replace("@LEASE_DIR@", &lease_dir.to_string_lossy())
        .replace("@STORE@", store)
        .replace("@POOLS@", &pools_toml(pools))
}

fn pool(p: (Ipv4Addr, Ipv4Addr)) -> (String, String) {
    (p.0.to_string(), p.1.to_string())
}

/// `api ready http://ADDR:PORT` as serve prints it.
fn parse_api_ready(stderr: &str) -> Option<String> {
    stderr.lines().find_map(|l| {
        let url = l.strip_prefix("api ready ")?.split_whitespace().next()?;
        url.starts_with("http")
            .then(|| url.trim_end_matches('/').to_string())
    })
}

impl Stack {
    fn build(ctx: &Ctx, dir: &Path) -> Result<Stack> {
        let topo = Topology::relayed()?;
        topo.client()
            .ip(&[
                "link",
                "set",
                "dev",
                CLIENT_IF,
                "address",
                &provd_rig::fmt_mac(&CM_MAC),
            ])
            .context("setting the modem's MAC")?;
        let pg = match ctx.backend {
            Backend::Embedded => None,
            Backend::Postgres => Some(Postgres::start(&topo.server, dir, PG_PORT)?),
        };
        let store_toml = match &pg {
            None => format!(
                "[store]\nbackend = \"embedded\"\npath = \"{}\"\n",
                dir.join("leases/store.db").display()
            ),
            Some(pg) => format!("[store]\nbackend = \"postgres\"\nurl = \"{}\"\n", pg.url()),
        };
        for (name, text) in [("cm.cfg.j2", CM_TEMPLATE), ("mta.cfg.j2", MTA_TEMPLATE)] {
            std::fs::create_dir_all(dir.join("templates"))?;
            std::fs::write(dir.join("templates").join(name), text)?;
        }
        std::fs::create_dir_all(dir.join("tftp-root"))?;
        let p = Provd::new(&ctx.provd, dir)
            .numbered_label("provd-", 0)
            .ready_timeout(READY_TIMEOUT)
            .env("RUST_BACKTRACE", "1");
        let lease_dir = p.lease_dir()?;
        let mut provd = p.write_config(&render_config(&lease_dir, &store_toml, &[pool(POOL)]))?;
        provd.check_config()?;
        provd.start(&topo.server)?;
        let api = wait_api_ready(&mut provd)?;
        let relay = super::start_dhcrelay(&topo, dir)?;
        let mut s = Stack {
            snmpd: None,
            clients: Vec::new(),
            relay,
            provd,
            pg,
            topo,
            dir: dir.to_path_buf(),
            lease_dir,
            store_toml,
            api,
            tokens: Tokens::default(),
            cm_addr: Ipv4Addr::UNSPECIFIED,
            cm_files: Vec::new(),
            cm_etag: String::new(),
            links: 0,
            mta_record: None,
            acs_task: None,
        };
        s.tokens = Tokens {
            admin: s.token("e2e-admin", "admin")?,
            operator: s.token("e2e-operator", "operator")?,
            read_only: s.token("e2e-reader", "read-only")?,
        };
        Ok(s)
    }

    /// `provd token create`, in the server namespace (PostgreSQL listens there), while serve
    /// runs: the secret it prints.
    fn token(&self, name: &str, role: &str) -> Result<String> {
        create_token(&self.topo.server, &self.provd, &self.dir, name, role)
    }

    fn call(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<&Value>,
    ) -> Result<Resp> {
        self.call_with(method, path, token, body, &[])
    }

    /// One request to the API with curl in the server namespace.
    fn call_with(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<&Value>,
        headers: &[(&str, &str)],
    ) -> Result<Resp> {
        let url = if path.starts_with("http") {
            path.to_string()
        } else {
            format!("{}{path}", self.api)
        };
        http(&self.topo.server, method, &url, token, body, headers)
    }

    /// A request that must answer 2xx: its JSON.
    fn ok(&self, method: &str, path: &str, body: Option<&Value>) -> Result<Resp> {
        let r = self.call(method, path, Some(&self.tokens.admin), body)?;
        ensure!(
            (200..300).contains(&r.status),
            "{method} {path}: {} {}",
            r.status,
            r.body.trim()
        );
        Ok(r)
    }

    fn check_alive(&mut self) -> Result<()> {
        self.provd.check_alive()
    }

    /// A macvlan on the client link with its own MAC, for one more client.
    fn new_link(&mut self, mac: [u8; 6]) -> Result<String> {
        self.links += 1;
        let name = format!("cli{}", self.links);
        let ns = self.topo.client();
        ns.ip(&[
            "link", "add", "link", CLIENT_IF, "name", &name, "type", "macvlan", "mode", "bridge",
        ])?;
        ns.ip(&[
            "link",
            "set",
            "dev",
            &name,
            "address",
            &provd_rig::fmt_mac(&mac),
        ])?;
        ns.ip(&["link", "set", "dev", &name, "up"])?;
        Ok(name)
    }

    /// dhclient on `iface` with `extra` config lines; the address it bound. The client keeps
    /// running (renewals) until the stack goes.
    fn dhcp(&mut self, iface: &str, label: &str, extra: &str) -> Result<Ipv4Addr> {
        let dh = Dhclient::new(&self.dir.join(label), iface, None)?;
        let mut conf = std::fs::read_to_string(dh.conf())?;
        conf.push_str(extra);
        std::fs::write(dh.conf(), conf)?;
        let mut client = dh.start(self.topo.client(), label, &self.dir)?;
        let bound = dh
            .wait_event(&mut client, &["BOUND", "REBOOT"], 0, BIND_TIMEOUT)
            .with_context(|| {
                format!(
                    "dhcrelay stderr:\n{}\nprovd stderr:\n{}",
                    self.relay.stderr_tail(10),
                    self.provd.stderr_tail(10)
                )
            })?;
        self.clients.push(client);
        bound.addr.context("dhclient bound without an address")
    }

    /// The modem's file over TFTP (tftp-hpa, binary) from the modem's address.
    fn fetch_cm_file(&mut self, label: &str) -> Result<Vec<u8>> {
        let name = format!("cm/{}.cfg", mac12(&CM_MAC));
        let local = self.dir.join(format!("{label}.cfg"));
        let _ = std::fs::remove_file(&local);
        let mut c = self.topo.client().command("tftp");
        c.args(["-m", "binary", &SERVER_IP.to_string(), "-c", "get", &name])
            .arg(&local);
        let out = cmd::output_kept(&mut c, CLIENT_TIMEOUT, &self.dir, label)?;
        let text = cmd::text(&out);
        let bytes = std::fs::read(&local).unwrap_or_default();
        ensure!(
            out.status.success() && !bytes.is_empty() && !text.contains("Error code"),
            "tftp get {name} failed ({}): {}",
            out.status,
            text.trim()
        );
        self.cm_files.push(bytes.clone());
        Ok(bytes)
    }

    /// `provd cfg decode FILE --shared-secret DOCSIS`: its text.
    fn decode(&self, bytes: &[u8], label: &str) -> Result<String> {
        let p = self.dir.join(format!("{label}.bin"));
        std::fs::write(&p, bytes)?;
        let out = cmd::output_kept(
            Command::new(self.provd.bin())
                .args(["cfg", "decode"])
                .arg(&p)
                .args(["--shared-secret", "DOCSIS"]),
            CLIENT_TIMEOUT,
            &self.dir,
            label,
        )?;
        ensure!(
            out.status.success(),
            "provd cfg decode failed ({}): {}",
            out.status,
            cmd::text(&out).trim()
        );
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// The device's timeline, newest first.
    fn timeline(&self, mac: [u8; 6]) -> Result<Vec<Value>> {
        let r = self.ok(
            "GET",
            &format!("/api/v1/devices/{}/timeline", provd_rig::fmt_mac(&mac)),
            None,
        )?;
        items(&r.json()?)
    }

    /// The modem's file judged: both decoders agree on MaxCPE and the downstream rate, and
    /// `provd cfg decode` shows sysName `<class of service>-cm` and good MICs.
    fn check_cm_file(
        &self,
        bytes: &[u8],
        label: &str,
        max_cpe: u8,
        down: u32,
        cos: &str,
    ) -> Result<()> {
        let tlvs = Tlvs::walk(bytes).with_context(|| format!("{label}: walking the TLVs"))?;
        ensure!(
            tlvs.max_cpe() == Some(max_cpe),
            "{label}: TLV 18 (MaxCPE) is {:?}, expected {max_cpe}",
            tlvs.max_cpe()
        );
        ensure!(
            tlvs.max_rate_down() == Some(down),
            "{label}: TLV 4.2 (max downstream rate) is {:?}, expected {down}",
            tlvs.max_rate_down()
        );
        let text = self.decode(bytes, &format!("{label}-decode"))?;
        for want in [
            format!("MaxCPE {max_cpe}"),
            format!("MaxRateDown {down}"),
            format!("\"{cos}-cm\""),
        ] {
            ensure!(
                text.contains(&want),
                "{label}: `provd cfg decode` does not show {want:?}:\n{text}"
            );
        }
        ensure!(
            !text.to_ascii_lowercase().contains("mismatch"),
            "{label}: a MIC does not verify:\n{text}"
        );
        Ok(())
    }
}

/// Waits (bounded) for the `api ready` line.
pub(super) fn wait_api_ready(provd: &mut Provd) -> Result<String> {
    wait::until(
        "the `api ready` line",
        Duration::from_secs(15),
        Duration::from_millis(50),
        || {
            provd.check_alive()?;
            Ok(parse_api_ready(&provd.stderr_text()))
        },
    )
    .with_context(|| format!("provd stderr:\n{}", provd.stderr_tail(15)))
}

/// A list answer: a JSON array, or `{items: [...]}`.
pub(super) fn items(v: &Value) -> Result<Vec<Value>> {
    match v {
        Value::Array(a) => Ok(a.clone()),
        Value::Object(o) => match o.get("items") {
            Some(Value::Array(a)) => Ok(a.clone()),
            _ => bail!("expected a list or {{items: [...]}}, got {v}"),
        },
        _ => bail!("expected a list or {{items: [...]}}, got {v}"),
    }
}

fn mac12(mac: &[u8; 6]) -> String {
    provd_rig::hex(mac)
}

// ---------------------------------------------------------------------------------------------
// HTTP through curl.

/// An answer: status, headers (names lower-cased), body.
#[derive(Debug, Clone)]
pub(super) struct Resp {
    pub(super) status: u16,
    headers: BTreeMap<String, String>,
    pub(super) body: String,
}

impl Resp {
    pub(super) fn json(&self) -> Result<Value> {
        serde_json::from_str(&self.body).with_context(|| {
            format!(
                "the answer ({}) is not JSON: {}",
                self.status,
                self.body.trim()
            )
        })
    }

    pub(super) fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).map(String::as_str)
    }

    /// The error shape every refusal has: `{code, message}` (and `field` where one is at fault).
    fn check_error(&self, what: &str) -> Result<Value> {
        let v = self
            .json()
            .with_context(|| format!("{what}: the error body"))?;
        ensure!(
            v.get("code")
                .is_some_and(|c| c.is_string() || c.is_number())
                && v.get("message").is_some_and(Value::is_string),
            "{what}: the error body has no code and message: {v}"
        );
        Ok(v)
    }
}

/// Parses `curl -i` output: the last header block (a `100 Continue` may precede it), then the
/// body.
fn parse_curl_i(out: &str) -> Result<Resp> {
    let mut rest = out;
    loop {
        let (head, body) = rest
            .split_once("\r\n\r\n")
            .with_context(|| format!("no header block in curl's output: {out:?}"))?;
        let mut lines = head.lines();
        let status_line = lines.next().unwrap_or_default();
        let status: u16 = status_line
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .with_context(|| format!("no status in {status_line:?}"))?;
        if status == 100 {
            rest = body;
            continue;
        }
        let headers = lines
            .filter_map(|l| {
                let (k, v) = l.split_once(':')?;
                Some((k.trim().to_ascii_lowercase(), v.trim().to_string()))
            })
            .collect();
        return Ok(Resp {
            status,
            headers,
            body: body.to_string(),
        });
    }
}

pub(super) fn http(
    ns: &Netns,
    method: &str,
    url: &str,
    token: Option<&str>,
    body: Option<&Value>,
    headers: &[(&str, &str)],
) -> Result<Resp> {
    let mut c = ns.command("curl");
    c.args(["-s", "-S", "-i", "--max-time", "20", "-X", method]);
    if let Some(t) = token {
        c.args(["-H", &format!("Authorization: Bearer {t}")]);
    }
    for (k, v) in headers {
        c.args(["-H", &format!("{k}: {v}")]);
    }
    if let Some(b) = body {
        c.args([
            "-H",
            "Content-Type: application/json",
            "--data-binary",
            &b.to_string(),
        ]);
    }
    c.arg(url);
    let out = cmd::output_timeout(&mut c, Duration::from_secs(25))?;
    ensure!(
        out.status.success(),
        "curl -X {method} {url} failed ({}): {}",
        out.status,
        String::from_utf8_lossy(&out.stderr).trim()
    );
    parse_curl_i(&String::from_utf8_lossy(&out.stdout))
}

// ---------------------------------------------------------------------------------------------
// An independent reader of DOCSIS config file TLVs (not provd-docsis): top-level type/length/
// value up to the end marker, and the sub-TLVs of the class of service.

#[derive(Debug)]
pub(super) struct Tlvs(Vec<(u8, Vec<u8>)>);

impl Tlvs {
    pub(super) fn walk(b: &[u8]) -> Result<Tlvs> {
        let mut out = Vec::new();
        let mut i = 0;
        while i < b.len() {
            let t = b[i];
            if t == 255 {
                return Ok(Tlvs(out));
            }
            if t == 0 {
                i += 1; // pad
                continue;
            }
            ensure!(i + 1 < b.len(), "TLV {t} at {i} has no length");
            let len = usize::from(b[i + 1]);
            ensure!(
                i + 2 + len <= b.len(),
                "TLV {t} at {i} runs past the end ({len} bytes)"
            );
            out.push((t, b[i + 2..i + 2 + len].to_vec()));
            i += 2 + len;
        }
        bail!("no end-of-data marker (255)")
    }

    fn get(&self, t: u8) -> Option<&[u8]> {
        self.0
            .iter()
            .find(|(k, _)| *k == t)
            .map(|(_, v)| v.as_slice())
    }

    /// TLV 18, Maximum Number of CPEs.
    pub(super) fn max_cpe(&self) -> Option<u8> {
        self.get(18).filter(|v| v.len() == 1).map(|v| v[0])
    }

    /// TLV 4.2, the DOCSIS 1.0 class of service's maximum downstream rate.
    pub(super) fn max_rate_down(&self) -> Option<u32> {
        let cos = self.get(4)?;
        let sub = Tlvs::walk_sub(cos).ok()?;
        let v = sub.iter().find(|(k, _)| *k == 2)?.1.as_slice();
        Some(u32::from_be_bytes(v.try_into().ok()?))
    }

    fn walk_sub(b: &[u8]) -> Result<Vec<(u8, Vec<u8>)>> {
        let mut out = Vec::new();
        let mut i = 0;
        while i < b.len() {
            ensure!(i + 1 < b.len(), "sub-TLV at {i} has no length");
            let len = usize::from(b[i + 1]);
            ensure!(i + 2 + len <= b.len(), "sub-TLV at {i} runs past the end");
            out.push((b[i], b[i + 2..i + 2 + len].to_vec()));
            i += 2 + len;
        }
        Ok(out)
    }
}

// ---------------------------------------------------------------------------------------------
// The scenarios.

fn start(ctx: &Ctx, dir: &Path) -> Result<()> {
    let s = Stack::build(ctx, dir)?;
    note(format!(
        "provd on the {} store, API {}, tokens made",
        ctx.backend.name(),
        s.api
    ));
    *ctx.stack.borrow_mut() = Some(s);
    Ok(())
}

fn device_body(cos: &str, vars: Value) -> Value {
    json!({
        "mac": provd_rig::fmt_mac(&CM_MAC),
        "type": "cm",
        "subscriber": "sub-e2e-1",
        "class_of_service": cos,
        "vars": vars,
    })
}

/// A class of service, a subscriber and the modem over the API: 200/201 with an ETag, read
/// back the same; a stale If-Match is 412.
fn provision(ctx: &Ctx, _dir: &Path) -> Result<()> {
    with(ctx, |s| {
        s.ok(
            "PUT",
            "/api/v1/classes/gold",
            Some(&json!({"name": "gold", "vars": {"max_cpe": 4, "down": GOLD_DOWN}})),
        )?;
        s.ok(
            "PUT",
            "/api/v1/classes/silver",
            Some(&json!({"name": "silver", "vars": {"max_cpe": 2, "down": SILVER_DOWN}})),
        )?;
        s.ok(
            "PUT",
            "/api/v1/subscribers/sub-e2e-1",
            Some(&json!({"id": "sub-e2e-1", "name": "E2E Subscriber", "vars": {"max_cpe": SUB_MAX_CPE}})),
        )?;
        let mac = provd_rig::fmt_mac(&CM_MAC);
        let path = format!("/api/v1/devices/{mac}");
        let r = s.ok("PUT", &path, Some(&device_body("gold", json!({}))))?;
        ensure!(
            matches!(r.status, 200 | 201),
            "PUT {path}: {} (expected 200 or 201)",
            r.status
        );
        let etag = r.header("etag").context("PUT device: no ETag")?.to_string();
        ensure!(
            etag.starts_with('"') && etag.ends_with('"'),
            "ETag {etag:?} is not quoted"
        );
        let got = s.ok("GET", &path, None)?;
        let v = got.json()?;
        ensure!(
            v["class_of_service"] == "gold" && v["subscriber"] == "sub-e2e-1" && v["type"] == "cm",
            "GET {path} reads back {v}"
        );
        ensure!(
            got.header("etag") == Some(etag.as_str()),
            "GET's ETag {:?} is not the PUT's {etag}",
            got.header("etag")
        );
        // A write against a version that is not the current one.
        let stale = format!(
            "\"{}\"",
            etag.trim_matches('"').parse::<u64>().unwrap_or(0) + 100
        );
        let r = s.call_with(
            "PUT",
            &path,
            Some(&s.tokens.admin),
            Some(&device_body("silver", json!({}))),
            &[("If-Match", &stale)],
        )?;
        ensure!(
            r.status == 412,
            "PUT with a stale If-Match {stale}: {} (expected 412): {}",
            r.status,
            r.body.trim()
        );
        r.check_error("412")?;
        let v = s.ok("GET", &path, None)?.json()?;
        ensure!(
            v["class_of_service"] == "gold",
            "the refused write changed the device: {v}"
        );
        s.cm_etag = etag;
        note(format!(
            "classes gold, silver; subscriber sub-e2e-1; device {mac} ETag {}",
            s.cm_etag
        ));
        Ok(())
    })
}

/// The modem boots through the relay and fetches its file: MaxCPE from the subscriber, the
/// rate from class gold.
fn cm_boot(ctx: &Ctx, _dir: &Path) -> Result<()> {
    with(ctx, |s| {
        let addr = s.dhcp(
            CLIENT_IF,
            "dhclient-cm",
            "send vendor-class-identifier \"docsis3.0\";\n",
        )?;
        ensure!(
            provd_rig::topo::in_pool(addr, POOL),
            "the modem got {addr}, outside the pool {POOL:?}"
        );
        s.cm_addr = addr;
        let f = s.fetch_cm_file("tftp-gold")?;
        s.check_cm_file(&f, "gold file", SUB_MAX_CPE, GOLD_DOWN, "gold")?;
        note(format!(
            "modem bound {addr}, fetched {} bytes (gold)",
            f.len()
        ));
        s.check_alive()
    })
}

/// The tier changes (device → silver, with If-Match), then the class itself changes, then the
/// device's own variable: each next fetch shows it.
fn tier_change(ctx: &Ctx, _dir: &Path) -> Result<()> {
    with(ctx, |s| {
        let path = format!("/api/v1/devices/{}", provd_rig::fmt_mac(&CM_MAC));
        let etag = s.cm_etag.clone();
        let r = s.call_with(
            "PUT",
            &path,
            Some(&s.tokens.operator),
            Some(&device_body("silver", json!({}))),
            &[("If-Match", &etag)],
        )?;
        ensure!(
            r.status == 200,
            "PUT device (silver, If-Match {etag}): {} {}",
            r.status,
            r.body.trim()
        );
        let new_etag = r.header("etag").context("no ETag")?.to_string();
        ensure!(new_etag != etag, "the ETag did not change ({etag})");
        s.cm_etag = new_etag;
        let before = s.cm_files.last().cloned().unwrap_or_default();
        let f = s.fetch_cm_file("tftp-silver")?;
        ensure!(
            f != before,
            "the file after the tier change is byte for byte the gold one"
        );
        s.check_cm_file(&f, "silver file", SUB_MAX_CPE, SILVER_DOWN, "silver")?;

        s.ok(
            "PUT",
            "/api/v1/classes/silver",
            Some(&json!({"name": "silver", "vars": {"max_cpe": 2, "down": SILVER_DOWN_2}})),
        )?;
        let f = s.fetch_cm_file("tftp-silver-2")?;
        s.check_cm_file(
            &f,
            "silver file after the class changed",
            SUB_MAX_CPE,
            SILVER_DOWN_2,
            "silver",
        )?;

        let r = s.ok(
            "PUT",
            &path,
            Some(&device_body("silver", json!({"max_cpe": DEVICE_MAX_CPE}))),
        )?;
        s.cm_etag = r.header("etag").context("no ETag")?.to_string();
        let f = s.fetch_cm_file("tftp-device-var")?;
        s.check_cm_file(
            &f,
            "file after the device's own max_cpe",
            DEVICE_MAX_CPE,
            SILVER_DOWN_2,
            "silver",
        )?;
        note("gold → silver → silver's rate changed → device max_cpe: each next fetch showed it");
        Ok(())
    })
}

/// snmpd on the modem's address with a `pass` script for docsDevResetNow; POST reset; the SET
/// (INTEGER 1, community private) arrives and the timeline says so.
fn reset(ctx: &Ctx, _dir: &Path) -> Result<()> {
    with(ctx, |s| {
        let script = s.dir.join("reset-agent.sh");
        std::fs::write(&script, RESET_AGENT)?;
        let log = s.dir.join("reset-sets.log");
        std::fs::write(&log, "")?;
        let conf = s.dir.join("snmpd.conf");
        std::fs::write(
            &conf,
            format!(
                "# the modem's agent (cargo xtask e2e api)\n\
                 agentAddress udp:{addr}:161\n\
                 rwcommunity private default\n\
                 pass .1.3.6.1.2.1.69.1.1.3 /bin/sh {script} {log}\n",
                addr = s.cm_addr,
                script = script.display(),
                log = log.display()
            ),
        )?;
        let snmp_conf = s.dir.join("snmp-conf");
        std::fs::create_dir_all(&snmp_conf)?;
        let mut c = s.topo.client().command("snmpd");
        c.args(["-f", "-Lo", "-C", "-c"])
            .arg(&conf)
            .arg("-p")
            .arg(s.dir.join("snmpd.pid"))
            .env("MIBS", "")
            .env("SNMPCONFPATH", &snmp_conf)
            .env("SNMP_PERSISTENT_DIR", s.dir.join("snmpd-persist"));
        let agent = Child::spawn("snmpd", c, &s.dir)?;
        wait::udp_port(
            s.topo.client(),
            Some(s.cm_addr),
            161,
            Duration::from_secs(10),
        )
        .with_context(|| format!("snmpd did not bind: {}", agent.stdout_text()))?;
        s.snmpd = Some(agent);
        // The agent answers before anyone relies on it.
        let mut g = s.topo.client().command("snmpget");
        g.args(["-v", "2c", "-c", "private", "-t", "1", "-r", "1", "-On"])
            .arg(s.cm_addr.to_string())
            .arg(OID_RESET_NOW)
            .env("MIBS", "")
            .env("SNMPCONFPATH", &snmp_conf);
        let out = cmd::output_kept(&mut g, CLIENT_TIMEOUT, &s.dir, "snmpget-reset")?;
        ensure!(
            cmd::text(&out).contains("INTEGER: 2"),
            "the modem's agent does not serve docsDevResetNow: {}",
            cmd::text(&out).trim()
        );

        let mac = provd_rig::fmt_mac(&CM_MAC);
        let r = s.call(
            "POST",
            &format!("/api/v1/devices/{mac}/reset"),
            Some(&s.tokens.operator),
            None,
        )?;
        ensure!(
            (200..300).contains(&r.status),
            "POST reset: {} {}",
            r.status,
            r.body.trim()
        );
        let set = wait::until(
            "the reset SET at the modem",
            SETTLE,
            Duration::from_millis(100),
            || {
                Ok(std::fs::read_to_string(&log)
                    .unwrap_or_default()
                    .lines()
                    .find(|l| l.starts_with(OID_RESET_NOW))
                    .map(str::to_owned))
            },
        )?;
        ensure!(
            set == format!("{OID_RESET_NOW} integer 1"),
            "the modem got SET {set:?}, expected INTEGER 1"
        );
        let ev = wait::until(
            "the reset in the timeline",
            SETTLE,
            Duration::from_millis(200),
            || {
                Ok(s.timeline(CM_MAC)?
                    .into_iter()
                    .find(|e| e["source"] == "api" && e["kind"] == "reset"))
            },
        )?;
        note(format!("SET {set} arrived; timeline: {ev}"));
        Ok(())
    })
}

/// The timeline: dhcp, tftp and time (rdate from the modem) events, newest first, each with
/// id/at/source/kind.
fn timeline(ctx: &Ctx, dir: &Path) -> Result<()> {
    with(ctx, |s| {
        // The modem asks the time (rdate, UDP, from its leased address): a `time` event.
        let mut c = s.topo.client().command("rdate");
        c.args(["-p", "-u", &SERVER_IP.to_string()])
            .env("TZ", "UTC");
        let out = cmd::output_kept(&mut c, CLIENT_TIMEOUT, dir, "rdate")?;
        ensure!(
            out.status.success(),
            "rdate -u from the modem failed ({}): {}",
            out.status,
            cmd::text(&out).trim()
        );
        wait::until(
            "the time answer in the modem's timeline",
            SETTLE,
            Duration::from_millis(200),
            || {
                Ok(s.timeline(CM_MAC)?
                    .into_iter()
                    .find(|e| e["source"] == "time" && e["kind"] == "time-served"))
            },
        )?;
        let events = s.timeline(CM_MAC)?;
        for e in &events {
            for k in ["id", "mac", "at", "source", "kind"] {
                ensure!(e.get(k).is_some(), "event without {k}: {e}");
            }
        }
        let count = |src: &str| events.iter().filter(|e| e["source"] == src).count();
        ensure!(
            count("dhcp") >= 1,
            "no dhcp event in the modem's timeline: {events:?}"
        );
        ensure!(
            count("tftp") >= s.cm_files.len(),
            "{} tftp events for {} fetches: {events:?}",
            count("tftp"),
            s.cm_files.len()
        );
        let ats: Vec<i64> = events.iter().filter_map(|e| e["at"].as_i64()).collect();
        ensure!(
            ats.windows(2).all(|w| w[0] >= w[1]),
            "the timeline is not newest first: {ats:?}"
        );
        note(format!(
            "{} events: {} dhcp, {} tftp, {} time, {} api",
            events.len(),
            count("dhcp"),
            count("tftp"),
            count("time"),
            count("api")
        ));
        Ok(())
    })
}

/// A read-only token reads and is refused a write (403); an unknown token and none are 401.
fn auth(ctx: &Ctx, _dir: &Path) -> Result<()> {
    with(ctx, |s| {
        let path = format!("/api/v1/devices/{}", provd_rig::fmt_mac(&CM_MAC));
        let r = s.call("GET", &path, Some(&s.tokens.read_only), None)?;
        ensure!(
            r.status == 200,
            "read-only GET: {} {}",
            r.status,
            r.body.trim()
        );
        let r = s.call(
            "PUT",
            &path,
            Some(&s.tokens.read_only),
            Some(&device_body("gold", json!({}))),
        )?;
        ensure!(
            r.status == 403,
            "read-only PUT: {} (expected 403) {}",
            r.status,
            r.body.trim()
        );
        r.check_error("403")?;
        let r = s.call(
            "PUT",
            "/api/v1/classes/gold",
            Some(&s.tokens.read_only),
            Some(&json!({"name": "gold", "vars": {}})),
        )?;
        ensure!(
            r.status == 403,
            "read-only PUT class: {} (expected 403)",
            r.status
        );
        let r = s.call(
            "POST",
            &format!("{path}/reset"),
            Some(&s.tokens.read_only),
            None,
        )?;
        ensure!(
            r.status == 403,
            "read-only reset: {} (expected 403)",
            r.status
        );
        for (what, token) in [
            ("an unknown token", Some("not-a-token-e2e")),
            ("no token", None),
        ] {
            let r = s.call("GET", &path, token, None)?;
            ensure!(
                r.status == 401,
                "GET with {what}: {} (expected 401) {}",
                r.status,
                r.body.trim()
            );
            r.check_error("401")?;
        }
        let v = s.ok("GET", &path, None)?.json()?;
        ensure!(
            v["class_of_service"] == "silver",
            "a refused write changed the device: {v}"
        );
        note("read-only: GET 200, PUT/reset 403; unknown token and none: 401");
        Ok(())
    })
}

/// Every change so far is in the audit log, by the token that made it.
fn audit(ctx: &Ctx, _dir: &Path) -> Result<()> {
    with(ctx, |s| {
        let entries = items(&s.ok("GET", "/api/v1/audit?limit=500", None)?.json()?)?;
        let mac = provd_rig::fmt_mac(&CM_MAC);
        let find = |resource: &str, key: &str, who: &str| {
            entries
                .iter()
                .filter(|e| {
                    e["resource"] == resource
                        && e["key"]
                            .as_str()
                            .is_some_and(|k| k.eq_ignore_ascii_case(key))
                        && e["who"] == who
                })
                .count()
        };
        let admin = "token:e2e-admin";
        let op = "token:e2e-operator";
        for (resource, key, who, at_least) in [
            ("class", "gold", admin, 1),
            ("class", "silver", admin, 2),
            ("subscriber", "sub-e2e-1", admin, 1),
            ("device", mac.as_str(), admin, 2),
            ("device", mac.as_str(), op, 1),
        ] {
            let n = find(resource, key, who);
            ensure!(
                n >= at_least,
                "{n} audit entries for {resource} {key} by {who}, expected at least {at_least}: {entries:?}"
            );
        }
        // The tier change's entry carries both sides.
        let tier = entries
            .iter()
            .find(|e| e["resource"] == "device" && e["who"] == op)
            .context("no entry for the operator's tier change")?;
        ensure!(
            tier["before"]["class_of_service"] == "gold"
                && tier["after"]["class_of_service"] == "silver",
            "the tier change's audit entry does not show gold → silver: {tier}"
        );
        // Refused writes are not changes.
        ensure!(
            !entries.iter().any(|e| e["who"] == "token:e2e-reader"),
            "the read-only token's refused writes were audited as changes"
        );
        note(format!(
            "{} audit entries; each change found with its author",
            entries.len()
        ));
        Ok(())
    })
}

/// The OpenAPI document as served passes openapi-spec-validator.
fn openapi_validator(ctx: &Ctx, dir: &Path) -> Result<()> {
    if !ctx.outside_checks {
        return Err(
            super::Skip("the outside checks run once, with the first backend".into()).into(),
        );
    }
    with(ctx, |s| {
        let r = s.call("GET", "/api/v1/openapi.json", None, None)?;
        ensure!(r.status == 200, "GET /api/v1/openapi.json: {}", r.status);
        let doc = r.json()?;
        ensure!(
            doc["openapi"]
                .as_str()
                .is_some_and(|v| v.starts_with("3.1")),
            "the document is not OpenAPI 3.1: openapi = {}",
            doc["openapi"]
        );
        let p = dir.join("openapi.json");
        std::fs::write(&p, &r.body)?;
        let out = cmd::output_kept(
            Command::new(ctx.venv.join("bin/openapi-spec-validator")).arg(&p),
            Duration::from_secs(120),
            dir,
            "openapi-spec-validator",
        )?;
        ensure!(
            out.status.success(),
            "openapi-spec-validator refused the document ({}): {}",
            out.status,
            cmd::text(&out).trim()
        );
        let paths = doc["paths"].as_object().map_or(0, |p| p.len());
        ensure!(paths >= 5, "the document describes only {paths} paths");
        note(format!("openapi-spec-validator: OK ({paths} paths)"));
        Ok(())
    })
}

/// schemathesis against the live API with an admin token: no 5xx, no response outside the
/// schema. Bounded in examples and time.
fn schemathesis(ctx: &Ctx, dir: &Path) -> Result<()> {
    if !ctx.outside_checks {
        return Err(
            super::Skip("the outside checks run once, with the first backend".into()).into(),
        );
    }
    with(ctx, |s| {
        // Not the admin token: schemathesis must not be able to delete the other tokens or
        // reload the config under the suite; the operator can still write every resource.
        let token = s.tokens.operator.clone();
        // One 5xx is by design: a reset of a device that does not answer is 504 (provd is the
        // gateway to the device), as the schema says. Only for that operation, only 504.
        let config = dir.join("schemathesis.toml");
        std::fs::write(
            &config,
            "[[operations]]\n\
             include-name = \"POST /api/v1/devices/{mac}/reset\"\n\
             checks.not_a_server_error.expected-statuses = [\"2xx\", \"3xx\", \"4xx\", \"504\"]\n",
        )?;
        let mut c = s.topo.server.command(ctx.venv.join("bin/schemathesis"));
        c.arg("--config-file")
            .arg(&config)
            .arg("run")
            .arg(format!("{}/api/v1/openapi.json", s.api))
            .args(["--checks", "not_a_server_error,response_schema_conformance"])
            .args([
                "--max-examples",
                "8",
                "--max-time",
                "90",
                "--workers",
                "1",
                "--seed",
                "13",
            ])
            .args([
                "--request-timeout",
                "10",
                "--no-color",
                "--suppress-health-check",
                "all",
            ])
            .args(["--generation-database", "none"])
            .args(["-H", &format!("Authorization: Bearer {token}")])
            .env("HOME", dir)
            // It keeps a `.schemathesis/` cache in its working directory.
            .current_dir(dir);
        let out = cmd::output_kept(&mut c, Duration::from_secs(300), dir, "schemathesis")?;
        let text = cmd::text(&out);
        ensure!(
            out.status.success(),
            "schemathesis found failures ({}); see {}/schemathesis.out:\n{}",
            out.status,
            dir.display(),
            provd_rig::child::tail(&text, 40)
        );
        s.check_alive()?;
        let summary = text
            .lines()
            .rev()
            .find(|l| l.contains("passed") || l.contains("tested"))
            .unwrap_or("")
            .trim()
            .to_string();
        note(format!("schemathesis: {summary}"));
        Ok(())
    })
}

/// `promtool check metrics` accepts /metrics; without a token it is 401 (metrics_open = false).
fn promtool_metrics(ctx: &Ctx, dir: &Path) -> Result<()> {
    if !ctx.outside_checks {
        return Err(
            super::Skip("the outside checks run once, with the first backend".into()).into(),
        );
    }
    with(ctx, |s| {
        let base = s.api.clone();
        let r = s.call("GET", &format!("{base}/metrics"), None, None)?;
        ensure!(
            r.status == 401,
            "GET /metrics without a token: {} (expected 401: metrics_open = false)",
            r.status
        );
        let r = s.call(
            "GET",
            &format!("{base}/metrics"),
            Some(&s.tokens.read_only),
            None,
        )?;
        ensure!(
            r.status == 200,
            "GET /metrics: {} {}",
            r.status,
            r.body.trim()
        );
        let p = dir.join("metrics.txt");
        std::fs::write(&p, &r.body)?;
        let file = std::fs::File::open(&p)?;
        let mut c = Command::new("promtool");
        c.args(["check", "metrics"]).stdin(file);
        let out = cmd_stdin_output(&mut c, Duration::from_secs(60))?;
        std::fs::write(dir.join("promtool.out"), cmd::text(&out))?;
        ensure!(
            out.status.success(),
            "promtool check metrics refused /metrics ({}): {}",
            out.status,
            cmd::text(&out).trim()
        );
        let families = r.body.lines().filter(|l| l.starts_with("# TYPE ")).count();
        ensure!(families > 0, "/metrics has no metric family");
        for want in ["dhcp", "tftp"] {
            ensure!(
                r.body
                    .lines()
                    .any(|l| !l.starts_with('#') && l.contains(want)),
                "/metrics has no {want} series after the modem's boot"
            );
        }
        note(format!("promtool: OK, {families} metric families"));
        Ok(())
    })
}

/// `cmd` with its own stdin (output_timeout closes stdin).
fn cmd_stdin_output(c: &mut Command, timeout: Duration) -> Result<std::process::Output> {
    use std::process::Stdio;
    let mut child = c
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| cmd::describe(c))?;
    let t = Instant::now();
    loop {
        if child.try_wait()?.is_some() {
            return Ok(child.wait_with_output()?);
        }
        if t.elapsed() > timeout {
            let _ = child.kill();
            let _ = child.wait();
            bail!("{} did not finish within {timeout:?}", cmd::describe(c));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Sends SIGHUP and waits (bounded) for a log line about the reload after `mark` bytes of
/// stderr: the new lines.
fn sighup(s: &mut Stack) -> Result<String> {
    let mark = s.provd.stderr_text().len();
    // SAFETY: kill(2) with provd's PID, a child this process spawned and has not reaped.
    let rc = unsafe { libc::kill(s.provd.pid() as i32, libc::SIGHUP) };
    ensure!(
        rc == 0,
        "kill -HUP {}: {}",
        s.provd.pid(),
        std::io::Error::last_os_error()
    );
    let new = wait::until(
        "a log line about the reload",
        SETTLE,
        Duration::from_millis(100),
        || {
            s.provd.check_alive()?;
            let text = s.provd.stderr_text();
            let new = text.get(mark..).unwrap_or_default().to_string();
            Ok(new.to_ascii_lowercase().contains("reload").then_some(new))
        },
    )
    .with_context(|| format!("provd stderr:\n{}", s.provd.stderr_tail(15)))?;
    // The reload is applied when it says so; give a line written in parts a moment.
    std::thread::sleep(Duration::from_millis(300));
    Ok(s.provd
        .stderr_text()
        .get(mark..)
        .unwrap_or(&new)
        .to_string())
}

/// SIGHUP with the pool changed: the modem's address stays in a pool of its own (no bound lease
/// is orphaned), the new range is the only free one: a new client gets an address from it.
fn reload_pool(ctx: &Ctx, _dir: &Path) -> Result<()> {
    with(ctx, |s| {
        let cm = s.cm_addr.to_string();
        let text = render_config(
            &s.lease_dir,
            &s.store_toml,
            &[(cm.clone(), cm), pool(NEW_POOL)],
        );
        std::fs::write(s.provd.config(), &text)?;
        let log = sighup(s)?;
        std::fs::write(s.dir.join("reload-pool.log"), &log)?;
        let iface = s.new_link(NEW_CLIENT_MAC)?;
        let addr = s.dhcp(&iface, "dhclient-new", "")?;
        ensure!(
            provd_rig::topo::in_pool(addr, NEW_POOL),
            "after the reload a new client got {addr}, not from the new pool {NEW_POOL:?}; reload log:\n{log}"
        );
        note(format!(
            "SIGHUP with pool {NEW_POOL:?}: the new client got {addr}"
        ));
        s.check_alive()
    })
}

/// SIGHUP with a broken config: refused, the log says why (the field), the old config stays in
/// force (a client is still served from the reloaded pool, the API answers); the API's reload
/// refuses it too, with the field in its error; read-only may not reload.
fn reload_bad_config(ctx: &Ctx, _dir: &Path) -> Result<()> {
    with(ctx, |s| {
        let good = std::fs::read_to_string(s.provd.config())?;
        let bad = good.replacen(
            &format!("end = \"{}\"", NEW_POOL.1),
            "end = \"not-an-address\"",
            1,
        );
        ensure!(bad != good, "could not break the config");
        std::fs::write(s.provd.config(), &bad)?;
        let log = sighup(s)?;
        std::fs::write(s.dir.join("reload-bad.log"), &log)?;
        let l = log.to_ascii_lowercase();
        ensure!(
            l.contains("not-an-address") || l.contains(".end"),
            "the refused reload's log does not say why (the bad value or the field):\n{log}"
        );
        s.check_alive()?;
        let r = s.call("POST", "/api/v1/config/reload", Some(&s.tokens.admin), None)?;
        ensure!(
            (400..500).contains(&r.status),
            "POST /config/reload with a bad config: {} (expected 4xx) {}",
            r.status,
            r.body.trim()
        );
        let e = r.check_error("reload refused")?;
        ensure!(
            e.to_string().contains("end") || e.to_string().contains("not-an-address"),
            "the reload's error does not name the field: {e}"
        );
        let r = s.call(
            "POST",
            "/api/v1/config/reload",
            Some(&s.tokens.read_only),
            None,
        )?;
        ensure!(
            r.status == 403,
            "read-only POST /config/reload: {} (expected 403)",
            r.status
        );
        // Still serving, with the config that was in force.
        let iface = s.new_link(KEPT_CLIENT_MAC)?;
        let addr = s.dhcp(&iface, "dhclient-kept", "")?;
        ensure!(
            provd_rig::topo::in_pool(addr, NEW_POOL),
            "after the refused reload a client got {addr}, not from the pool in force {NEW_POOL:?}"
        );
        std::fs::write(s.provd.config(), &good)?;
        let r = s.call("POST", "/api/v1/config/reload", Some(&s.tokens.admin), None)?;
        ensure!(
            (200..300).contains(&r.status),
            "POST /config/reload with the good config: {} {}",
            r.status,
            r.body.trim()
        );
        note(format!(
            "bad config refused, still serving ({addr}); API reload of the good config: {}",
            r.status
        ));
        s.check_alive()
    })
}

/// An MTA boots (option 60 pktc, BASIC.1) and fetches its file from its address: its flow
/// record, read with `provd mta status`.
fn mta_record(ctx: &Ctx, _dir: &Path) -> Result<()> {
    with(ctx, |s| {
        let iface = s.new_link(MTA_MAC)?;
        let addr = s.dhcp(
            &iface,
            "dhclient-mta",
            // Option 43 as an MTA sends it: 43.31 its MAC, 43.32 a correlation id.
            &format!(
                "send vendor-class-identifier \"{MTA_TYPE_ID}\";\n\
                 send vendor-encapsulated-options 1f:06:{}:20:04:00:00:a0:02;\n",
                provd_rig::fmt_mac(&MTA_MAC)
            ),
        )?;
        let name = format!("mta/{}.bin", mac12(&MTA_MAC));
        let local = s.dir.join("mta-file.bin");
        let mut c = s.topo.client().command("curl");
        c.args([
            "-s",
            "-S",
            "--max-time",
            "20",
            "--interface",
            &addr.to_string(),
        ])
        .arg(format!("tftp://{SERVER_IP}/{name}"))
        .arg("-o")
        .arg(&local);
        let out = cmd::output_kept(&mut c, CLIENT_TIMEOUT, &s.dir, "mta-tftp")?;
        ensure!(
            out.status.success() && std::fs::metadata(&local).is_ok_and(|m| m.len() > 0),
            "the MTA's TFTP of {name} from {addr} failed ({}): {}",
            out.status,
            cmd::text(&out).trim()
        );
        let rec = wait::until(
            "the MTA's flow record",
            SETTLE,
            Duration::from_millis(200),
            || mta_status(s, MTA_MAC),
        )?;
        ensure!(
            rec.get("steps").is_some_and(|v| !v.is_null()),
            "the MTA's record has no steps: {rec}"
        );
        note(format!("MTA {addr}: {rec}"));
        s.mta_record = Some(rec);
        Ok(())
    })
}

/// `provd mta status` for `mac`: None while there is no record.
fn mta_status(s: &Stack, mac: [u8; 6]) -> Result<Option<Value>> {
    let mut c = s.topo.server.command(s.provd.bin());
    c.args(["mta", "status", "--config"])
        .arg(s.provd.config())
        .arg(provd_rig::fmt_mac(&mac));
    let out = cmd::output_kept(&mut c, CLIENT_TIMEOUT, &s.dir, "mta-status")?;
    let text = cmd::text(&out);
    if !out.status.success() {
        if text.contains("no provisioning record") {
            return Ok(None);
        }
        bail!(
            "`provd mta status` failed ({}): {}",
            out.status,
            text.trim()
        );
    }
    let v: Value = serde_json::from_str(String::from_utf8_lossy(&out.stdout).trim())
        .with_context(|| format!("`provd mta status` printed no JSON: {text}"))?;
    Ok(Some(v))
}

/// A CWMP device known to the ACS (the task API's seed) and a task queued for it.
fn acs_task(ctx: &Ctx, _dir: &Path) -> Result<()> {
    with(ctx, |s| {
        let r = s.call(
            "POST",
            &format!("{ACS_API}/api/seed"),
            Some(&s.tokens.operator),
            Some(&json!({"count": 1})),
        )?;
        ensure!(
            r.status == 200,
            "POST /api/seed: {} {}",
            r.status,
            r.body.trim()
        );
        let devs = s
            .call(
                "GET",
                &format!("{ACS_API}/api/devices"),
                Some(&s.tokens.operator),
                None,
            )?
            .json()?;
        let id = devs
            .as_array()
            .and_then(|a| a.first())
            .and_then(Value::as_str)
            .with_context(|| format!("the ACS lists no device after the seed: {devs}"))?
            .to_string();
        let task =
            json!({"method": "GetParameterValues", "names": ["Device.DeviceInfo.SoftwareVersion"]});
        let r = s.call(
            "POST",
            &format!("{ACS_API}/api/devices/{id}/tasks"),
            Some(&s.tokens.operator),
            Some(&task),
        )?;
        ensure!(
            r.status == 200,
            "queue a task for {id}: {} {}",
            r.status,
            r.body.trim()
        );
        let n = r.json()?["task"].as_u64().context("the task's number")?;
        let t = s.call(
            "GET",
            &format!("{ACS_API}/api/tasks/{n}"),
            Some(&s.tokens.operator),
            None,
        )?;
        ensure!(t.status == 200, "GET task {n}: {}", t.status);
        note(format!("task {n} for {id}: {}", t.body.trim()));
        s.acs_task = Some((n, t.json()?));
        Ok(())
    })
}

/// kill -9 and a restart: the devices, the MTA's record, the ACS task and the timeline are
/// all there as they were.
fn kill9_restart(ctx: &Ctx, _dir: &Path) -> Result<()> {
    with(ctx, |s| {
        let tl_before: Vec<i64> = s
            .timeline(CM_MAC)?
            .iter()
            .filter_map(|e| e["id"].as_i64())
            .collect();
        let dev_before = s.ok(
            "GET",
            &format!("/api/v1/devices/{}", provd_rig::fmt_mac(&CM_MAC)),
            None,
        )?;
        s.provd.kill9()?;
        s.provd.restart()?;
        s.api = wait_api_ready(&mut s.provd)?;
        let dev = s.ok(
            "GET",
            &format!("/api/v1/devices/{}", provd_rig::fmt_mac(&CM_MAC)),
            None,
        )?;
        ensure!(
            dev.header("etag") == dev_before.header("etag") && dev.json()? == dev_before.json()?,
            "the device changed across the restart: {} → {}",
            dev_before.body.trim(),
            dev.body.trim()
        );
        let tl_after: Vec<i64> = s
            .timeline(CM_MAC)?
            .iter()
            .filter_map(|e| e["id"].as_i64())
            .collect();
        let lost: Vec<&i64> = tl_before
            .iter()
            .filter(|id| !tl_after.contains(id))
            .collect();
        ensure!(
            lost.is_empty() && !tl_before.is_empty(),
            "timeline events lost across kill -9: {lost:?} (before {tl_before:?}, after {tl_after:?})"
        );
        let mta_before = s
            .mta_record
            .clone()
            .context("no MTA record was read before")?;
        let mta_after =
            mta_status(s, MTA_MAC)?.context("the MTA's record is gone after kill -9")?;
        ensure!(
            mta_after.get("steps") == mta_before.get("steps"),
            "the MTA's record changed across kill -9: {mta_before} → {mta_after}"
        );
        let (n, task_before) = s
            .acs_task
            .clone()
            .context("no ACS task was queued before")?;
        let t = s.call(
            "GET",
            &format!("{ACS_API}/api/tasks/{n}"),
            Some(&s.tokens.operator),
            None,
        )?;
        ensure!(
            t.status == 200,
            "ACS task {n} after kill -9: {} {}",
            t.status,
            t.body.trim()
        );
        let task_after = t.json()?;
        ensure!(
            task_after.get("rpc") == task_before.get("rpc")
                || task_after.get("method") == task_before.get("method"),
            "ACS task {n} changed: {task_before} → {task_after}"
        );
        note(format!(
            "after kill -9: device ETag {:?}, {} timeline events kept, MTA record and task {n} kept",
            dev.header("etag"),
            tl_before.len()
        ));
        Ok(())
    })
}

/// SIGTERM: exit 0 in time; PostgreSQL stops cleanly.
fn stop(ctx: &Ctx, _dir: &Path) -> Result<()> {
    let mut st = ctx.stack.borrow_mut().take().context("the stack is down")?;
    st.snmpd = None;
    st.clients.clear();
    st.provd.stop()?;
    if let Some(pg) = st.pg.as_mut() {
        pg.stop()?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_api_ready_line_is_found() {
        let err =
            "2026 INFO provd: api listening\napi ready http://127.0.0.1:8080\nprovd ready path=x\n";
        assert_eq!(
            parse_api_ready(err).as_deref(),
            Some("http://127.0.0.1:8080")
        );
        assert_eq!(parse_api_ready("provd ready path=x\n"), None);
        assert_eq!(parse_api_ready("api ready nothing\n"), None);
    }

    #[test]
    fn curl_i_output_parses_past_100_continue() {
        let out = "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 201 Created\r\nETag: \"3\"\r\n\
                   content-type: application/json\r\n\r\n{\"a\":1}";
        let r = parse_curl_i(out).unwrap();
        assert_eq!(r.status, 201);
        assert_eq!(r.header("etag"), Some("\"3\""));
        assert_eq!(r.json().unwrap()["a"], 1);
        assert!(parse_curl_i("garbage").is_err());
        let e = Resp {
            status: 403,
            headers: BTreeMap::new(),
            body: "{\"code\":\"forbidden\"}".into(),
        };
        assert!(
            e.check_error("x").is_err(),
            "an error without a message must not pass"
        );
    }

    #[test]
    fn the_tlv_walk_finds_max_cpe_and_the_rate_and_refuses_truncation() {
        // NetworkAccess 1, MaxCPE 5, CoS {ClassID 1, MaxRateDown 50000000}, pad, end.
        let mut f = vec![3, 1, 1, 18, 1, 5, 4, 9, 1, 1, 1, 2, 4];
        f.extend_from_slice(&50_000_000u32.to_be_bytes());
        f.extend_from_slice(&[0, 255]);
        let t = Tlvs::walk(&f).unwrap();
        assert_eq!(t.max_cpe(), Some(5));
        assert_eq!(t.max_rate_down(), Some(50_000_000));
        assert!(Tlvs::walk(&f[..f.len() - 1]).is_err(), "no end marker");
        assert!(Tlvs::walk(&f[..8]).is_err(), "a TLV running past the end");
    }

    #[test]
    fn lists_come_bare_or_in_items() {
        assert_eq!(items(&json!([1, 2])).unwrap().len(), 2);
        assert_eq!(
            items(&json!({"items": [1], "next": null})).unwrap().len(),
            1
        );
        assert!(items(&json!({"x": 1})).is_err());
    }

    #[test]
    fn the_config_renders_store_and_pools() {
        let t = render_config(
            Path::new("/l"),
            "[store]\nbackend = \"embedded\"\n",
            &[pool(POOL), pool(NEW_POOL)],
        );
        for word in ["@LEASE_DIR@", "@STORE@", "@POOLS@"] {
            assert!(!t.contains(word), "{word} left in:\n{t}");
        }
        assert!(t.contains("backend = \"embedded\""));
        assert_eq!(t.matches("[[shared_network.subnet.pool]]").count(), 2);
        assert!(Backend::parse_list(Some("mysql")).is_err());
        assert_eq!(Backend::parse_list(None).unwrap().len(), 2);
    }
}
