//! The `mta` suite: PacketCable MTA provisioning (BASIC.1/2, HYBRID.1/2) against provd, with
//! the MTA made of real peers in the client namespace, behind dhcrelay like the TFTP suite's
//! cable modem:
//!
//! * DHCP: ISC dhclient on a fixed MAC, sending option 60 `pktc1.5:<capabilities>` and option 43
//!   (43.31 MAC, 43.32 correlation id), asking for options 4, 7 and 122;
//! * its SNMP agent: Net-SNMP `snmpd` on the leased address, UDP 161, community `private`, whose
//!   PKTC-IETF-MTA-MIB objects come from `tests/e2e/mta/mta-agent.py` (`pass_persist`), which
//!   records every SET it is given;
//! * its notifications: `snmpinform` (SNMPv2c INFORM; exits 0 only once the Response came);
//! * its file download: tftp-hpa from the leased address, of the URL that was SET (HYBRID) or
//!   of siaddr + file from the ACK (BASIC);
//! * syslog (`logger`) and time of day (`rdate`) toward the servers of options 7 and 4;
//! * `forged-inform`: another host on the MTA's link forging its enrollment and others' (issue
//!   18 item 5; also run by `cargo xtask e2e hardening`).
//!
//! Verdicts come from what those peers report and record, from the packets on the MTA's link
//! (tcpdump, SNMP decoded here with a small BER reader independent of provd's), from the file
//! itself (SHA-1, `provd cfg decode`) and from `provd mta status`, read generically.

use std::fmt::Write as _;
use std::net::{Ipv4Addr, SocketAddrV4};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result, bail, ensure};
use provd_rig::dhclient::Dhclient;
use provd_rig::pcap::{self, UdpDatagram};
use provd_rig::topo::{CLIENT_IF, RELAY_GIADDR, SERVER_IP};
use provd_rig::{Capture, Child, Provd, Topology, cmd, wait};
use serde_json::Value;

use super::{Args, Scenarios};

const PROVD_TEMPLATE: &str = include_str!("../../../tests/e2e/mta/provd.toml.in");
const MTA_TEMPLATE: &str = include_str!("../../../tests/e2e/mta/templates/mta.cfg.j2");
const AGENT: &str = include_str!("../../../tests/e2e/mta/mta-agent.py");

const TFTP_PORT: u16 = 69;
const AGENT_PORT: u16 = 161;
const NOTIFY_PORT: u16 = 162;
const SYSLOG_PORT: u16 = 514;
const TIME_PORT: u16 = 37;

/// What the MTA sends as option 60 and reports as pktcMtaDevTypeIdentifier (dhcp.md §6:
/// PacketCable 1.5, 2 lines, PCMU + PCMA, ifIndex 9, flows SECURE|HYBRID|BASIC).
const TYPE_ID: &str = "pktc1.5:051a0101010201020301000401010901000b02060910010912020007";
const SYS_DESCR: &str =
    "<<HW_REV: 1.0; VENDOR: provd-e2e; BOOTR: 1.0; SW_REV: 2.1.0; MODEL: netsnmp-mta>>";
const SW_VERSION: &str = "2.1.0";
/// `[vars] call_agent` in `provd.toml.in`, rendered into every file.
const CALL_AGENT: &str = "[198.18.0.8]";

// OIDs (snmp-mta.md §2, IETF MIB).
const OID_SYS_DESCR: &str = "1.3.6.1.2.1.1.1.0";
const OID_IF_PHYS_ADDRESS: &str = "1.3.6.1.2.1.2.2.1.6.1";
const OID_SW_VERS: &str = "1.3.6.1.2.1.140.1.1.3.0";
const OID_END_PNT_COUNT: &str = "1.3.6.1.2.1.140.1.1.5.0";
const OID_TYPE_ID: &str = "1.3.6.1.2.1.140.1.1.7.0";
const OID_PROVISIONING_STATE: &str = "1.3.6.1.2.1.140.1.1.8.0";
const OID_CONFIG_FILE: &str = "1.3.6.1.2.1.140.1.2.9.0";
const OID_SNMP_ENTITY: &str = "1.3.6.1.2.1.140.1.2.10.0";
const OID_CONFIG_HASH: &str = "1.3.6.1.2.1.140.1.2.11.0";
const OID_REALM: &str = "1.3.6.1.2.1.140.1.2.18.0";
const OID_PROV_STATE: &str = "1.3.6.1.2.1.140.1.2.19.0";
const OID_CORRELATION_ID: &str = "1.3.6.1.2.1.140.1.3.3.0";
const TRAP_ENROLLMENT: &str = "1.3.6.1.2.1.140.0.1";
const TRAP_STATUS: &str = "1.3.6.1.2.1.140.0.2";

/// pktcMtaDevProvisioningState values the MTA reports.
const STATE_PASS: i32 = 1;
const STATE_IN_PROGRESS: i32 = 2;
const STATE_FAIL_CONFIG_FILE: i32 = 3;

const READY_TIMEOUT: Duration = Duration::from_secs(30);
const BIND_TIMEOUT: Duration = Duration::from_secs(45);
/// Any one client command.
const CLIENT_TIMEOUT: Duration = Duration::from_secs(30);
/// From the answered enrollment to the SET recorded by the agent.
const SET_TIMEOUT: Duration = Duration::from_secs(10);
/// For `provd mta status` to show what the scenario expects.
const STATUS_TIMEOUT: Duration = Duration::from_secs(5);
/// How long "nothing happens" is watched for (no SET, no answer).
const QUIET: Duration = Duration::from_secs(2);

/// The provisioning flow a scenario's class hands out in option 122.6.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Flow {
    Basic1,
    Basic2,
    Hybrid1,
    Hybrid2,
}

impl Flow {
    fn name(self) -> &'static str {
        match self {
            Flow::Basic1 => "BASIC.1",
            Flow::Basic2 => "BASIC.2",
            Flow::Hybrid1 => "HYBRID.1",
            Flow::Hybrid2 => "HYBRID.2",
        }
    }

    fn is_hybrid(self) -> bool {
        matches!(self, Flow::Hybrid1 | Flow::Hybrid2)
    }

    /// The `[class.config_file]` line for the flow: BASIC files carry their own hash.
    fn mta_hash_line(self) -> &'static str {
        if self.is_hybrid() {
            "# no mta_hash: HYBRID carries the hash in the SNMP SET"
        } else {
            "mta_hash = \"sha1\""
        }
    }
}

#[derive(Debug)]
pub struct Ctx {
    provd: PathBuf,
    python: PathBuf,
}

pub fn scenarios() -> Scenarios<Ctx> {
    vec![
        ("basic1", basic1 as fn(&Ctx, &Path) -> Result<()>),
        ("basic2", basic2),
        ("hybrid1", hybrid1),
        ("hybrid2", hybrid2),
        ("hybrid2-fail", hybrid2_fail),
        ("wrong-community", wrong_community),
        ("repeated-inform", repeated_inform),
        ("syslog", syslog),
        ("time", time_of_day),
        ("forged-inform", forged_inform),
    ]
}

impl Ctx {
    /// For another suite running one of this suite's scenarios.
    pub(crate) fn new(provd: PathBuf) -> Result<Ctx> {
        Ok(Ctx {
            provd,
            python: which("python3").context("python3 not found")?,
        })
    }
}

pub fn run(args: &Args) -> Result<()> {
    let scenarios = scenarios();
    let tools = [
        "ip",
        "tcpdump",
        "dhclient",
        "dhcrelay",
        "snmpd",
        "snmpinform",
        "snmpget",
        "tftp",
        "logger",
        "rdate",
        "sha1sum",
        "python3",
        "sysctl",
    ];
    let bins = super::prepare(args, &scenarios, &tools, &["provd"])?;
    let ctx = Ctx {
        provd: bins.provd,
        python: which("python3").context("python3 not found")?,
    };
    let about = format!(
        "provd {}, MTA = dhclient + snmpd + snmpinform",
        ctx.provd.display()
    );
    super::run_scenarios("mta", &about, &ctx, &scenarios, args)
}

/// The program's path: the system's own first (snmpd runs the agent with it), then PATH.
fn which(program: &str) -> Option<PathBuf> {
    let path = std::env::var("PATH").unwrap_or_default();
    ["/usr/bin", "/usr/sbin", "/bin", "/sbin", "/usr/local/sbin"]
        .into_iter()
        .chain(path.split(':'))
        .map(|d| Path::new(d).join(program))
        .find(|p| p.is_file())
}

fn note(msg: impl AsRef<str>) {
    eprintln!("  {}", msg.as_ref());
}

fn unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

fn mac12(mac: &[u8; 6]) -> String {
    provd_rig::hex(mac)
}

/// Each scenario's MTA has its own MAC (00:15:cf is the OUI of the spec's examples).
fn scenario_mac(n: u8) -> [u8; 6] {
    [0x00, 0x15, 0xcf, 0xe2, 0xe0, n]
}

/// Runs `command` within [`CLIENT_TIMEOUT`], keeping its output as `<dir>/<label>.out/.err`.
fn run_client(mut command: Command, dir: &Path, label: &str) -> Result<Output> {
    cmd::output_kept(&mut command, CLIENT_TIMEOUT, dir, label)
}

// ---------------------------------------------------------------------------------------------
// What dhclient's lease says.

/// The parts of dhclient's last lease the MTA acts on.
#[derive(Debug, Default, Clone, PartialEq)]
struct LeaseFacts {
    filename: Option<String>,
    /// Option 122's value.
    ccc: Option<Vec<u8>>,
    time_servers: Vec<Ipv4Addr>,
    log_servers: Vec<Ipv4Addr>,
}

/// Reads the last `lease { ... }` block of a dhclient lease file.
fn parse_lease(text: &str) -> LeaseFacts {
    let block = text.rsplit("lease {").next().unwrap_or_default();
    let mut f = LeaseFacts::default();
    for line in block.lines() {
        let l = line.trim().trim_end_matches(';');
        if let Some(v) = l.strip_prefix("filename ") {
            f.filename = Some(v.trim_matches('"').to_owned());
        } else if let Some(v) = l.strip_prefix("option pktc-ccc ") {
            f.ccc = parse_dhclient_string(v);
        } else if let Some(v) = l.strip_prefix("option time-servers ") {
            f.time_servers = addr_list(v);
        } else if let Some(v) = l.strip_prefix("option log-servers ") {
            f.log_servers = addr_list(v);
        }
    }
    f
}

fn addr_list(v: &str) -> Vec<Ipv4Addr> {
    v.split(',').filter_map(|a| a.trim().parse().ok()).collect()
}

/// dhclient writes a `string` option as colon-separated hex (`3:5:1:c6:12:0:1`) when it has
/// unprintable bytes, else as a quoted string with octal escapes.
fn parse_dhclient_string(v: &str) -> Option<Vec<u8>> {
    let v = v.trim();
    if let Some(q) = v.strip_prefix('"') {
        let q = q.strip_suffix('"')?;
        let mut out = Vec::new();
        let b = q.as_bytes();
        let mut i = 0;
        while i < b.len() {
            if b[i] == b'\\' && i + 4 <= b.len() && b[i + 1..i + 4].iter().all(u8::is_ascii_digit) {
                out.push(u8::from_str_radix(&q[i + 1..i + 4], 8).ok()?);
                i += 4;
            } else if b[i] == b'\\' && i + 1 < b.len() {
                out.push(b[i + 1]);
                i += 2;
            } else {
                out.push(b[i]);
                i += 1;
            }
        }
        return Some(out);
    }
    v.split(':')
        .map(|h| u8::from_str_radix(h, 16).ok())
        .collect()
}

/// Option 122's sub-options (`code len data`...), in order.
fn ccc_suboptions(v: &[u8]) -> Result<Vec<(u8, Vec<u8>)>> {
    let mut out = Vec::new();
    let mut rest = v;
    while !rest.is_empty() {
        ensure!(
            rest.len() >= 2,
            "option 122 ends inside a sub-option header: {v:02x?}"
        );
        let (code, len) = (rest[0], usize::from(rest[1]));
        ensure!(
            rest.len() >= 2 + len,
            "option 122 sub-option {code} claims {len} bytes, {} left: {v:02x?}",
            rest.len() - 2
        );
        out.push((code, rest[2..2 + len].to_vec()));
        rest = &rest[2 + len..];
    }
    Ok(out)
}

/// DNS wire-format labels (122.6 realm / flow name) as a dotted name.
fn dns_labels(v: &[u8]) -> Option<String> {
    let mut labels = Vec::new();
    let mut rest = v;
    loop {
        let (&len, tail) = rest.split_first()?;
        if len == 0 {
            return tail.is_empty().then(|| labels.join("."));
        }
        let len = usize::from(len);
        if tail.len() < len || len > 63 {
            return None;
        }
        labels.push(String::from_utf8(tail[..len].to_vec()).ok()?);
        rest = &tail[len..];
    }
}

/// What option 122 tells the MTA: its SNMP entity (122.3) and flow (122.6).
fn provisioning_of(ccc: &[u8]) -> Result<(Ipv4Addr, String)> {
    let subs = ccc_suboptions(ccc)?;
    let get = |code: u8| {
        subs.iter()
            .find(|(c, _)| *c == code)
            .map(|(_, v)| v.as_slice())
    };
    let server = match get(3) {
        Some([1, a, b, c, d]) => Ipv4Addr::new(*a, *b, *c, *d),
        Some(other) => bail!(
            "122.3 (provisioning server) is {other:02x?}, expected type 1 + the IPv4 address of \
             `provisioning_server = \"198.18.0.1\"`"
        ),
        None => bail!("option 122 has no sub-option 3 (provisioning server): {subs:02x?}"),
    };
    let flow = get(6).and_then(dns_labels).with_context(|| {
        format!("option 122 has no valid sub-option 6 (realm/flow): {subs:02x?}")
    })?;
    Ok((server, flow))
}

// ---------------------------------------------------------------------------------------------
// SNMP as it crosses the wire: a small BER reader, independent of provd's codec.

mod ber {
    /// One SNMP v1/v2c message.
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct Msg {
        pub version: i64,
        pub community: Vec<u8>,
        /// The PDU's tag: 0xa0 Get .. 0xa2 Response, 0xa3 Set, 0xa6 Inform, 0xa7 Trap.
        pub pdu: u8,
        pub request_id: i64,
        pub error_status: i64,
        pub error_index: i64,
        pub varbinds: Vec<VarBind>,
    }

    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct VarBind {
        pub oid: String,
        /// The value's tag: 0x02 INTEGER, 0x04 OCTET STRING, 0x06 OID, 0x42 Unsigned32...
        pub tag: u8,
        pub value: Vec<u8>,
    }

    pub const RESPONSE: u8 = 0xa2;
    pub const SET: u8 = 0xa3;
    pub const INFORM: u8 = 0xa6;
    pub const OCTET_STRING: u8 = 0x04;

    /// (tag, content, rest) of the TLV at the start of `b`.
    fn tlv(b: &[u8]) -> Option<(u8, &[u8], &[u8])> {
        let (&tag, b) = b.split_first()?;
        let (&first, mut b) = b.split_first()?;
        let len = if first < 0x80 {
            usize::from(first)
        } else {
            let n = usize::from(first & 0x7f);
            if n == 0 || n > 4 || b.len() < n {
                return None;
            }
            let len = b[..n]
                .iter()
                .fold(0usize, |a, &x| (a << 8) | usize::from(x));
            b = &b[n..];
            len
        };
        (b.len() >= len).then(|| (tag, &b[..len], &b[len..]))
    }

    fn expect(b: &[u8], want: u8) -> Option<(&[u8], &[u8])> {
        let (tag, content, rest) = tlv(b)?;
        (tag == want).then_some((content, rest))
    }

    pub fn int(v: &[u8]) -> Option<i64> {
        if v.is_empty() || v.len() > 8 {
            return None;
        }
        let mut n: i64 = if v[0] & 0x80 != 0 { -1 } else { 0 };
        for &b in v {
            n = (n << 8) | i64::from(b);
        }
        Some(n)
    }

    pub fn oid(v: &[u8]) -> Option<String> {
        let (&first, rest) = v.split_first()?;
        let mut parts = vec![u64::from(first / 40).min(2), 0];
        parts[1] = u64::from(first) - parts[0] * 40;
        let mut acc: u64 = 0;
        for &b in rest {
            acc = (acc << 7) | u64::from(b & 0x7f);
            if b & 0x80 == 0 {
                parts.push(acc);
                acc = 0;
            }
        }
        Some(
            parts
                .iter()
                .map(u64::to_string)
                .collect::<Vec<_>>()
                .join("."),
        )
    }

    /// Parses a whole SNMPv1/v2c message; None for anything else (v3, garbage).
    pub fn parse(b: &[u8]) -> Option<Msg> {
        let (msg, _) = expect(b, 0x30)?;
        let (version, rest) = expect(msg, 0x02)?;
        let (community, rest) = expect(rest, 0x04)?;
        let (pdu, pdu_body, _) = tlv(rest)?;
        if !(0xa0..=0xa8).contains(&pdu) || pdu == 0xa4 {
            return None;
        }
        let (rid, rest) = expect(pdu_body, 0x02)?;
        let (es, rest) = expect(rest, 0x02)?;
        let (ei, rest) = expect(rest, 0x02)?;
        let (mut list, _) = expect(rest, 0x30)?;
        let mut varbinds = Vec::new();
        while !list.is_empty() {
            let (vb, rest) = expect(list, 0x30)?;
            let (name, vrest) = expect(vb, 0x06)?;
            let (tag, value, _) = tlv(vrest)?;
            varbinds.push(VarBind {
                oid: oid(name)?,
                tag,
                value: value.to_vec(),
            });
            list = rest;
        }
        Some(Msg {
            version: int(version)?,
            community: community.to_vec(),
            pdu,
            request_id: int(rid)?,
            error_status: int(es)?,
            error_index: int(ei)?,
            varbinds,
        })
    }

    impl Msg {
        pub fn get(&self, oid: &str) -> Option<&VarBind> {
            self.varbinds.iter().find(|v| v.oid == oid)
        }

        pub fn summary(&self) -> String {
            let kind = match self.pdu {
                0xa0 => "Get",
                0xa1 => "GetNext",
                RESPONSE => "Response",
                SET => "Set",
                0xa5 => "GetBulk",
                INFORM => "Inform",
                0xa7 => "Trap",
                _ => "Report",
            };
            let vbs: Vec<&str> = self.varbinds.iter().map(|v| v.oid.as_str()).collect();
            format!(
                "{kind} id {} community {:?} err {} [{}]",
                self.request_id,
                String::from_utf8_lossy(&self.community),
                self.error_status,
                vbs.join(", ")
            )
        }
    }
}

/// An SNMP message seen on the MTA's link.
#[derive(Debug, Clone)]
struct Seen {
    src: SocketAddrV4,
    dst: SocketAddrV4,
    msg: ber::Msg,
}

fn snmp_seen(dgrams: &[UdpDatagram]) -> Vec<Seen> {
    dgrams
        .iter()
        .filter(|d| {
            [AGENT_PORT, NOTIFY_PORT].contains(&d.src.port())
                || [AGENT_PORT, NOTIFY_PORT].contains(&d.dst.port())
        })
        .filter_map(|d| {
            Some(Seen {
                src: d.src,
                dst: d.dst,
                msg: ber::parse(&d.payload)?,
            })
        })
        .collect()
}

// ---------------------------------------------------------------------------------------------
// The provisioning record `provd mta status` prints, read generically: field spellings
// differ between versions of the contract, so each fact is looked up under every known name.

/// Step names, in flow order: (what, names it may have as a key of `steps`).
const STEP_DHCP: (&str, &[&str]) = ("MTA-1..4 (DHCP)", &["MTA-4", "MTA-1..4", "MTA-1", "dhcp"]);
const STEP_ENROLL: (&str, &[&str]) = ("MTA-15 (enrollment)", &["MTA-15", "enrollment"]);
const STEP_SET: (&str, &[&str]) = ("MTA-19 (SET)", &["MTA-19", "set_acked", "set_sent", "set"]);
const STEP_FETCH: (&str, &[&str]) = (
    "MTA-22/23 (file fetched)",
    &["MTA-23", "MTA-22", "MTA-22/23", "file_fetched", "tftp"],
);
const STEP_STATUS: (&str, &[&str]) = ("MTA-25 (status)", &["MTA-25", "status"]);

fn step_at(rec: &Value, step: (&str, &[&str])) -> Option<u64> {
    let steps = rec.get("steps")?;
    step.1
        .iter()
        .find_map(|k| steps.get(*k).and_then(Value::as_u64))
}

/// The flow's state name: `"state": "complete"` or `"state": {"name": "complete", ...}`.
fn state_name(rec: &Value) -> Option<String> {
    match rec.get("state")? {
        Value::String(s) => Some(s.clone()),
        Value::Object(o) => o.get("name").and_then(Value::as_str).map(str::to_owned),
        _ => None,
    }
}

/// What the MTA reported in its status INFORM: `final_status`, or `state.prov_state`.
fn final_status(rec: &Value) -> Option<String> {
    let v = rec
        .get("final_status")
        .filter(|v| !v.is_null())
        .or_else(|| rec.get("state").and_then(|s| s.get("prov_state")))
        .or_else(|| rec.get("state").and_then(|s| s.get("final_status")))?;
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

fn is_terminal(state: &str) -> bool {
    matches!(
        state,
        "complete" | "completed" | "complete_no_status" | "failed" | "timed_out"
    )
}

fn is_pass(status: Option<&str>) -> bool {
    matches!(status, Some("pass" | "1"))
}

/// The steps of `want` must all be present and in that order (non-decreasing times).
fn check_steps(rec: &Value, want: &[(&str, &[&str])]) -> Result<()> {
    let mut last: Option<(&str, u64)> = None;
    for step in want {
        let at = step_at(rec, *step)
            .with_context(|| format!("the record has no step {} (keys {:?})", step.0, step.1))?;
        if let Some((prev, t)) = last {
            ensure!(at >= t, "step {} ({at}) comes before {prev} ({t})", step.0);
        }
        last = Some((step.0, at));
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// The rig of one scenario: provd, the relay, the MTA's peers, a capture of the MTA's link.

/// Everything one scenario runs. Field order is drop order: processes go before the
/// namespaces they run in.
struct Rig {
    agent: Option<Child>,
    dhclient: Option<Child>,
    capture: Option<Capture>,
    relay: Child,
    provd: Provd,
    topo: Topology,
    dir: PathBuf,
    config: PathBuf,
    provd_bin: PathBuf,
    python: PathBuf,
    flow: Flow,
    mac: [u8; 6],
    correlation_id: u32,
    booted: Instant,
    /// Set by [`Rig::dhcp`].
    addr: Ipv4Addr,
    lease: LeaseFacts,
    siaddr: Ipv4Addr,
    /// 122.3: where the INFORMs go.
    snmp_entity: Ipv4Addr,
}

impl Rig {
    /// Topology, provd with the flow's config, dhcrelay, and a capture of the MTA's link.
    fn start(ctx: &Ctx, dir: &Path, flow: Flow, mac: [u8; 6]) -> Result<Rig> {
        let topo = Topology::relayed()?;
        topo.client()
            .ip(&[
                "link",
                "set",
                "dev",
                CLIENT_IF,
                "address",
                &provd_rig::fmt_mac(&mac),
            ])
            .context("setting the MTA's MAC")?;
        let mut provd = write_config(ctx, dir, flow)?;
        let config = provd.config().to_path_buf();
        provd
            .start(&topo.server)
            .context("provd did not become ready")?;
        for (port, what) in [
            (67, "DHCP"),
            (TFTP_PORT, "TFTP"),
            (NOTIFY_PORT, "SNMP notifications ([mta])"),
            (SYSLOG_PORT, "syslog"),
            (TIME_PORT, "time"),
        ] {
            let addr = (port != 67).then_some(SERVER_IP);
            provd
                .wait_udp(addr, port, Duration::from_secs(5))
                .with_context(|| format!("{what} is not listening"))?;
        }
        let capture = Capture::start(topo.client(), CLIENT_IF, "udp", "mta-link", dir)?;
        let relay = super::start_dhcrelay(&topo, dir)?;
        let seed = unix_ms() ^ (u64::from(std::process::id()) << 20) ^ u64::from(mac[5]);
        Ok(Rig {
            agent: None,
            dhclient: None,
            capture: Some(capture),
            relay,
            provd,
            topo,
            dir: dir.to_path_buf(),
            config,
            provd_bin: ctx.provd.clone(),
            python: ctx.python.clone(),
            flow,
            mac,
            correlation_id: (seed as u32) | 1,
            booted: Instant::now(),
            addr: Ipv4Addr::UNSPECIFIED,
            lease: LeaseFacts::default(),
            siaddr: Ipv4Addr::UNSPECIFIED,
            snmp_entity: Ipv4Addr::UNSPECIFIED,
        })
    }

    /// The MTA's whole bring-up up to where the flows differ: DHCP (MTA-1..4) with its checks
    /// of options 122, 4 and 7, then its SNMP agent on the leased address.
    fn boot(ctx: &Ctx, dir: &Path, flow: Flow, mac: [u8; 6]) -> Result<Rig> {
        let mut rig = Rig::start(ctx, dir, flow, mac)?;
        rig.dhcp()?;
        rig.start_agent()?;
        Ok(rig)
    }

    /// dhclient as the MTA: option 60, option 43 (MAC, correlation id), asking for 122.
    fn dhcp(&mut self) -> Result<()> {
        let dh = Dhclient::new(&self.dir.join("dhclient"), CLIENT_IF, None)?;
        let mut conf = std::fs::read_to_string(dh.conf())?;
        let _ = write!(
            conf,
            "option pktc-ccc code 122 = string;\n\
             send vendor-class-identifier \"{TYPE_ID}\";\n\
             send vendor-encapsulated-options 1f:06:{}:20:04:{};\n\
             also request pktc-ccc, time-servers, log-servers, time-offset;\n",
            colon_hex(&self.mac),
            colon_hex(&self.correlation_id.to_be_bytes())
        );
        std::fs::write(dh.conf(), conf)?;
        let mut client = dh.start(self.topo.client(), "dhclient", &self.dir)?;
        let bound = dh
            .wait_event(&mut client, &["BOUND", "REBOOT"], 0, BIND_TIMEOUT)
            .with_context(|| format!("dhcrelay stderr:\n{}", self.relay.stderr_tail(10)))?;
        self.dhclient = Some(client);
        self.addr = bound.addr.context("dhclient bound without an address")?;
        // dhclient runs its script (BOUND) before it writes the lease file.
        let fixed = format!("fixed-address {};", self.addr);
        let leases = wait::until(
            "dhclient to write the lease to its lease file",
            Duration::from_secs(5),
            Duration::from_millis(50),
            || {
                let text = std::fs::read_to_string(dh.lease_file()).unwrap_or_default();
                let last = text.rsplit("lease {").next().unwrap_or_default();
                Ok((last.contains(&fixed) && last.contains('}')).then_some(text))
            },
        )?;
        self.lease = parse_lease(&leases);
        let ccc = self
            .lease
            .ccc
            .clone()
            .with_context(|| format!("the ACK carried no option 122:\n{leases}"))?;
        let (entity, flow) = provisioning_of(&ccc)?;
        ensure!(
            entity == SERVER_IP,
            "122.3 names provisioning server {entity}, expected provd at {SERVER_IP}"
        );
        ensure!(
            flow == self.flow.name(),
            "122.6 names flow {flow:?}, expected {:?} (the class's `flow`)",
            self.flow.name()
        );
        self.snmp_entity = entity;
        self.siaddr = self.ack_siaddr()?;
        note(format!(
            "MTA {} bound {} via the relay: 122.3 {entity}, 122.6 {flow}, file {:?}, siaddr {}",
            provd_rig::fmt_mac(&self.mac),
            self.addr,
            self.lease.filename,
            self.siaddr
        ));
        Ok(())
    }

    /// siaddr of the ACK to this MTA, from the capture (dhclient does not keep it).
    fn ack_siaddr(&self) -> Result<Ipv4Addr> {
        let capture = self.capture.as_ref().context("no capture")?;
        let mac = self.mac;
        capture.wait_for("the DHCPACK to the MTA", Duration::from_secs(5), |pkts| {
            pkts.iter()
                .rev()
                .find(|p| p.is(provd_dhcp::MessageType::Ack) && p.mac == Some(mac))
                .and_then(|p| {
                    provd_dhcp::Message::parse(&p.payload)
                        .ok()
                        .map(|m| m.siaddr())
                })
        })
    }

    /// The MTA's objects as its agent starts with them.
    fn initial_objects(&self) -> Value {
        let mut o = serde_json::Map::new();
        let mut put = |oid: &str, typ: &str, v: Value| {
            o.insert(oid.to_owned(), Value::Array(vec![typ.into(), v]));
        };
        put(OID_SW_VERS, "string", SW_VERSION.into());
        put(OID_END_PNT_COUNT, "integer", 2.into());
        put(OID_TYPE_ID, "string", TYPE_ID.into());
        put(OID_PROVISIONING_STATE, "integer", STATE_IN_PROGRESS.into());
        // BASIC: the file named by siaddr + file; HYBRID: empty until the SET.
        let file = match (&self.lease.filename, self.flow.is_hybrid()) {
            (Some(f), false) => format!("tftp://{}/{f}", self.siaddr),
            _ => String::new(),
        };
        put(OID_CONFIG_FILE, "string", file.into());
        put(
            OID_SNMP_ENTITY,
            "string",
            self.snmp_entity.to_string().into(),
        );
        put(OID_CONFIG_HASH, "octet", "".into());
        put(OID_REALM, "string", self.flow.name().into());
        // pktcMtaDevProvState: 2 waitingForSnmpSetInfo (HYBRID), 4 waitingForConfigFile.
        let wait = if self.flow.is_hybrid() { 2 } else { 4 };
        put(OID_PROV_STATE, "integer", wait.into());
        put(OID_CORRELATION_ID, "gauge", self.correlation_id.into());
        Value::Object(o)
    }

    fn agent_state(&self) -> PathBuf {
        self.dir.join("agent-state.json")
    }

    fn set_log(&self) -> PathBuf {
        self.dir.join("agent-sets.jsonl")
    }

    fn write_agent_state(&self, objects: &Value) -> Result<()> {
        let state = serde_json::json!({"flow": self.flow.name(), "objects": objects});
        let tmp = self.dir.join("agent-state.json.tmp");
        std::fs::write(&tmp, serde_json::to_vec_pretty(&state)?)?;
        std::fs::rename(&tmp, self.agent_state())?;
        Ok(())
    }

    /// Moves the MTA's pktcMtaDevProvisioningState (and ProvState: operational).
    fn set_provisioning_state(&self, state: i32) -> Result<()> {
        let mut objects = self.initial_objects();
        if let Value::Object(o) = &mut objects {
            o.insert(
                OID_PROVISIONING_STATE.into(),
                serde_json::json!(["integer", state]),
            );
            o.insert(OID_PROV_STATE.into(), serde_json::json!(["integer", 1]));
        }
        self.write_agent_state(&objects)
    }

    /// snmpd on the MTA's address, UDP 161, community `private` read-write, the PacketCable
    /// objects served (and SETs recorded) by the agent script.
    fn start_agent(&mut self) -> Result<()> {
        let script = self.dir.join("mta-agent.py");
        std::fs::write(&script, AGENT)?;
        self.write_agent_state(&self.initial_objects())?;
        std::fs::write(self.set_log(), "")?;
        let persist = self.dir.join("snmpd-persist");
        std::fs::create_dir_all(&persist)?;
        let conf = self.dir.join("snmpd.conf");
        std::fs::write(
            &conf,
            format!(
                "# the simulated MTA's agent (cargo xtask e2e mta)\n\
                 agentAddress udp:{addr}:{AGENT_PORT}\n\
                 rwcommunity private default\n\
                 pass_persist .1.3.6.1.2.1.140 {python} {script} {state} {log}\n",
                addr = self.addr,
                python = self.python.display(),
                script = script.display(),
                state = self.agent_state().display(),
                log = self.set_log().display(),
            ),
        )?;
        let mut c = self.topo.client().command("snmpd");
        c.args(["-f", "-Lo", "-C", "-c"])
            .arg(&conf)
            .arg("-p")
            .arg(self.dir.join("snmpd.pid"));
        self.snmp_env(&mut c);
        c.env("SNMP_PERSISTENT_DIR", &persist);
        let mut agent = Child::spawn("snmpd", c, &self.dir)?;
        wait::udp_port(
            self.topo.client(),
            Some(self.addr),
            AGENT_PORT,
            Duration::from_secs(10),
        )
        .with_context(|| {
            format!(
                "snmpd did not bind {}:{AGENT_PORT}: {}{}",
                self.addr,
                agent.stdout_text(),
                agent.stderr_tail(10)
            )
        })?;
        ensure!(
            agent.try_wait()?.is_none(),
            "snmpd exited: {}",
            agent.stdout_text()
        );
        self.agent = Some(agent);
        // The agent answers before anyone relies on it: read one object back locally.
        let got = self.snmpget_local(OID_TYPE_ID)?;
        ensure!(
            got.contains(TYPE_ID),
            "the MTA's agent does not serve pktcMtaDevTypeIdentifier: {got}"
        );
        Ok(())
    }

    /// Net-SNMP tools: no MIBs, no config or state from the host.
    fn snmp_env(&self, c: &mut Command) {
        let conf_dir = self.dir.join("snmp-conf");
        let _ = std::fs::create_dir_all(&conf_dir);
        c.env("MIBS", "")
            .env("SNMPCONFPATH", &conf_dir)
            .env("SNMP_PERSISTENT_DIR", self.dir.join("snmp-persist"));
    }

    fn snmpget_local(&self, oid: &str) -> Result<String> {
        let mut c = self.topo.client().command("snmpget");
        c.args(["-v", "2c", "-c", "private", "-t", "1", "-r", "1", "-On"])
            .arg(self.addr.to_string())
            .arg(oid);
        self.snmp_env(&mut c);
        let out = run_client(c, &self.dir, "snmpget-local")?;
        ensure!(
            out.status.success(),
            "snmpget of the MTA's agent failed: {}",
            cmd::text(&out)
        );
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// sysUpTime of the MTA in hundredths of a second.
    fn uptime(&self) -> String {
        (self.booted.elapsed().as_millis() / 10 + 100).to_string()
    }

    /// `snmpinform` from the MTA to the SNMP entity of 122.3; Ok(true) if answered.
    fn inform(
        &self,
        label: &str,
        community: &str,
        trap: &str,
        varbinds: &[(&str, &str, String)],
        timeout_s: u32,
        retries: u32,
    ) -> Result<bool> {
        let mut c = self.topo.client().command("snmpinform");
        c.args(["-v", "2c", "-c", community])
            .args(["-t", &timeout_s.to_string(), "-r", &retries.to_string()])
            .arg(format!("{}:{NOTIFY_PORT}", self.snmp_entity))
            .arg(self.uptime())
            .arg(trap);
        for (oid, typ, value) in varbinds {
            c.args([oid, typ, value.as_str()]);
        }
        self.snmp_env(&mut c);
        let out = run_client(c, &self.dir, label)?;
        let log = cmd::text(&out);
        if out.status.success() {
            return Ok(true);
        }
        ensure!(
            log.contains("Timeout"),
            "snmpinform failed other than by a timeout ({}): {}",
            out.status,
            log.trim()
        );
        Ok(false)
    }

    /// An enrollment claiming `mac` with `correlation_id`, sent from `from` (an address of the
    /// MTA's namespace that is not its lease): answered or not.
    fn forged_enrollment(
        &self,
        label: &str,
        from: Ipv4Addr,
        mac: [u8; 6],
        correlation_id: u32,
    ) -> Result<bool> {
        let mut c = self.topo.client().command("snmpinform");
        c.arg(format!("--clientaddr={from}"))
            .args(["-v", "2c", "-c", "private", "-t", "1", "-r", "0"])
            .arg(format!("{}:{NOTIFY_PORT}", self.snmp_entity))
            .arg(self.uptime())
            .arg(TRAP_ENROLLMENT);
        for (oid, typ, value) in [
            (OID_SYS_DESCR, "s", SYS_DESCR.to_owned()),
            (OID_SW_VERS, "s", SW_VERSION.to_owned()),
            (OID_TYPE_ID, "s", TYPE_ID.to_owned()),
            (OID_IF_PHYS_ADDRESS, "x", mac12(&mac)),
            (OID_CORRELATION_ID, "u", correlation_id.to_string()),
        ] {
            c.args([oid, typ, value.as_str()]);
        }
        self.snmp_env(&mut c);
        let out = run_client(c, &self.dir, label)?;
        Ok(out.status.success())
    }

    /// pktcMtaDevProvisioningEnrollment (MTA-15), snmp-mta.md §3.
    fn enrollment(
        &self,
        label: &str,
        community: &str,
        timeout_s: u32,
        retries: u32,
    ) -> Result<bool> {
        let vbs = [
            (OID_SYS_DESCR, "s", SYS_DESCR.to_owned()),
            (OID_SW_VERS, "s", SW_VERSION.to_owned()),
            (OID_TYPE_ID, "s", TYPE_ID.to_owned()),
            (OID_IF_PHYS_ADDRESS, "x", mac12(&self.mac)),
            (OID_CORRELATION_ID, "u", self.correlation_id.to_string()),
        ];
        self.inform(label, community, TRAP_ENROLLMENT, &vbs, timeout_s, retries)
    }

    /// pktcMtaDevProvisioningStatus (MTA-25) with `state`.
    fn status_inform(&self, label: &str, state: i32) -> Result<bool> {
        let vbs = [
            (OID_IF_PHYS_ADDRESS, "x", mac12(&self.mac)),
            (OID_CORRELATION_ID, "u", self.correlation_id.to_string()),
            (OID_PROVISIONING_STATE, "i", state.to_string()),
        ];
        self.inform(label, "private", TRAP_STATUS, &vbs, 2, 2)
    }

    /// Every SET the agent was given (one entry per varbind).
    fn sets(&self) -> Result<Vec<Value>> {
        let text = std::fs::read_to_string(self.set_log())?;
        text.lines()
            .filter(|l| !l.trim().is_empty())
            .map(|l| serde_json::from_str(l).with_context(|| format!("agent set log line {l:?}")))
            .collect()
    }

    /// Waits for the agent to have accepted a SET of both the URL and the hash.
    fn wait_set(&self) -> Result<(String, Vec<u8>)> {
        let found = wait::until(
            "the MTA's agent to record the SET of pktcMtaDevConfigFile.0 and \
             pktcMtaDevProvConfigHash.0",
            SET_TIMEOUT,
            Duration::from_millis(100),
            || {
                let sets = self.sets()?;
                if let Some(bad) = sets.iter().find(|s| s["result"] != "DONE") {
                    bail!("the MTA's agent refused a SET: {bad}");
                }
                let last = |oid: &str| {
                    sets.iter()
                        .rev()
                        .find(|s| s["oid"].as_str() == Some(&format!(".{oid}")))
                        .cloned()
                };
                Ok(last(OID_CONFIG_FILE).zip(last(OID_CONFIG_HASH)))
            },
        )
        .map_err(|e| {
            let wire: Vec<String> = self
                .sets_on_wire()
                .unwrap_or_default()
                .iter()
                .map(|s| format!("{} from {}", s.msg.summary(), s.src))
                .collect();
            anyhow::anyhow!(
                "{e:#}; SETs on the wire to the MTA: {wire:?}; {}",
                self.provd_tail()
            )
        })?;
        let (file, hash) = found;
        let url = file["text"]
            .as_str()
            .with_context(|| {
                format!("pktcMtaDevConfigFile.0 was set to unprintable bytes: {file}")
            })?
            .to_owned();
        let hash = hex_bytes(hash["hex"].as_str().unwrap_or_default())?;
        Ok((url, hash))
    }

    /// The SNMP messages on the MTA's link so far.
    fn snmp_on_wire(&self) -> Result<Vec<Seen>> {
        let capture = self.capture.as_ref().context("no capture")?;
        let (dgrams, _) = pcap::read_udp(capture.path(), true)?;
        Ok(snmp_seen(&dgrams))
    }

    /// Waits until the capture holds what `pred` looks for (the capture lags the peers a bit).
    fn wait_wire<T>(
        &self,
        what: &str,
        timeout: Duration,
        mut pred: impl FnMut(&[Seen]) -> Option<T>,
    ) -> Result<T> {
        let mut last = Vec::new();
        wait::until(what, timeout, Duration::from_millis(100), || {
            last = self.snmp_on_wire()?;
            Ok(pred(&last))
        })
        .with_context(|| {
            let seen: Vec<String> = last
                .iter()
                .map(|s| format!("{} -> {}: {}", s.src, s.dst, s.msg.summary()))
                .collect();
            format!("SNMP on the MTA's link: [{}]", seen.join("; "))
        })
    }

    /// Every INFORM the MTA sent that provd answered must have been answered as RFC 3416
    /// says: a Response from UDP 162 with the same request-id and varbinds, error-status 0.
    fn check_inform_answers(&self, want_answered: usize) -> Result<()> {
        let entity = SocketAddrV4::new(self.snmp_entity, NOTIFY_PORT);
        let addr = self.addr;
        let (informs, answers) = self.wait_wire(
            &format!("{want_answered} answered INFORM(s) on the wire"),
            Duration::from_secs(3),
            |seen| {
                let informs: Vec<&Seen> = seen
                    .iter()
                    .filter(|s| s.msg.pdu == ber::INFORM && *s.src.ip() == addr && s.dst == entity)
                    .collect();
                let answers: Vec<&Seen> = seen
                    .iter()
                    .filter(|s| {
                        s.msg.pdu == ber::RESPONSE && s.src == entity && *s.dst.ip() == addr
                    })
                    .collect();
                let answered = informs
                    .iter()
                    .filter(|i| answers.iter().any(|a| a.msg.request_id == i.msg.request_id))
                    .count();
                (answered >= want_answered).then(|| {
                    (
                        informs.into_iter().cloned().collect::<Vec<_>>(),
                        answers.into_iter().cloned().collect::<Vec<_>>(),
                    )
                })
            },
        )?;
        for a in &answers {
            let inform = informs
                .iter()
                .find(|i| i.msg.request_id == a.msg.request_id && i.src == a.dst)
                .with_context(|| {
                    format!(
                        "provd sent a Response {} to {} that answers no INFORM of the MTA",
                        a.msg.summary(),
                        a.dst
                    )
                })?;
            ensure!(
                a.msg.error_status == 0
                    && a.msg.varbinds == inform.msg.varbinds
                    && a.msg.community == inform.msg.community
                    && a.msg.version == 1,
                "the Response to INFORM {} must be v2c, same community, error-status 0 and the \
                 INFORM's varbinds (RFC 3416 §4.2.7); it was {}",
                inform.msg.summary(),
                a.msg.summary()
            );
        }
        Ok(())
    }

    /// The SET PDUs provd sent to the MTA's agent (retransmissions share a request-id).
    fn sets_on_wire(&self) -> Result<Vec<Seen>> {
        let agent = SocketAddrV4::new(self.addr, AGENT_PORT);
        Ok(self
            .snmp_on_wire()?
            .into_iter()
            .filter(|s| s.msg.pdu == ber::SET && s.dst == agent)
            .collect())
    }

    /// One SET on the wire with both varbinds: from provd's address, community `private`,
    /// the URL and a 20-byte hash equal to what the agent recorded; the agent's Response
    /// says noError. Returns the distinct request-ids.
    fn check_set_on_wire(&self, url: &str, hash: &[u8]) -> Result<Vec<i64>> {
        let agent = SocketAddrV4::new(self.addr, AGENT_PORT);
        let sets = self.wait_wire(
            "provd's SET and the agent's Response on the wire",
            Duration::from_secs(3),
            |seen| {
                let sets: Vec<Seen> = seen
                    .iter()
                    .filter(|s| s.msg.pdu == ber::SET && s.dst == agent)
                    .cloned()
                    .collect();
                let answered = sets.iter().any(|s| {
                    seen.iter().any(|r| {
                        r.msg.pdu == ber::RESPONSE
                            && r.src == agent
                            && r.msg.request_id == s.msg.request_id
                    })
                });
                answered.then_some(sets)
            },
        )?;
        let mut ids: Vec<i64> = sets.iter().map(|s| s.msg.request_id).collect();
        ids.dedup();
        for s in &sets {
            let m = &s.msg;
            let file = m.get(OID_CONFIG_FILE);
            let h = m.get(OID_CONFIG_HASH);
            ensure!(
                *s.src.ip() == SERVER_IP
                    && m.version == 1
                    && m.community == b"private"
                    && m.varbinds.len() == 2
                    && file
                        .is_some_and(|v| v.tag == ber::OCTET_STRING && v.value == url.as_bytes())
                    && h.is_some_and(|v| v.tag == ber::OCTET_STRING && v.value == hash),
                "the SET on the wire must come from {SERVER_IP}, be v2c with community \
                 \"private\" and carry exactly pktcMtaDevConfigFile.0 = {url:?} and \
                 pktcMtaDevProvConfigHash.0 = {} (OCTET STRINGs) in one PDU; it was {} from {}",
                provd_rig::hex(hash),
                m.summary(),
                s.src
            );
        }
        let seen = self.snmp_on_wire()?;
        for id in &ids {
            let resp = seen
                .iter()
                .find(|r| r.msg.pdu == ber::RESPONSE && r.src == agent && r.msg.request_id == *id)
                .with_context(|| format!("no Response from the agent to SET {id}"))?;
            ensure!(
                resp.msg.error_status == 0,
                "the MTA's agent answered SET {id} with {}",
                resp.msg.summary()
            );
        }
        Ok(ids)
    }

    /// tftp-hpa from the MTA's address; the bytes received.
    fn tftp_get(&self, server: Ipv4Addr, name: &str, label: &str) -> Result<Vec<u8>> {
        let local = self.dir.join(format!("{label}.got"));
        let _ = std::fs::remove_file(&local);
        let mut c = self.topo.client().command("tftp");
        c.args(["-v", "-m", "binary", &server.to_string(), "-c", "get", name])
            .arg(&local);
        let out = run_client(c, &self.dir, label)?;
        let log = cmd::text(&out);
        let error = log.lines().find(|l| l.trim().starts_with("Error code "));
        ensure!(
            error.is_none() && out.status.success(),
            "TFTP get {name} from {server} at the MTA's address {}: {}",
            self.addr,
            log.trim()
        );
        std::fs::read(&local).with_context(|| format!("tftp saved nothing: {}", log.trim()))
    }

    /// `provd cfg decode` of a file the MTA received; (exit code, text).
    fn decode(&self, file: &Path, label: &str) -> Result<(i32, String)> {
        let mut c = Command::new(&self.provd_bin);
        c.args(["cfg", "decode"]).arg(file);
        let out = run_client(c, &self.dir, label)?;
        let code = out.status.code().context("provd cfg decode was killed")?;
        Ok((code, String::from_utf8_lossy(&out.stdout).into_owned()))
    }

    /// The file is this MTA's (its MAC, class, address and relay, the operator's call agent)
    /// and decodes; returns its `MtaHash` comment.
    fn check_file(&self, bytes: &[u8], label: &str) -> Result<String> {
        let path = self.dir.join(format!("{label}.bin"));
        std::fs::write(&path, bytes)?;
        let (code, decoded) = self.decode(&path, &format!("{label}-decode"))?;
        ensure!(
            code == 0,
            "`provd cfg decode` of the MTA's file exited {code}:\n{decoded}"
        );
        let facts = [
            (
                "the MAC (sysContact)",
                format!("\"{}\"", provd_rig::fmt_mac(&self.mac)),
            ),
            (
                "class mta and the MAC (sysName)",
                format!("\"mta-{}\"", mac12(&self.mac)),
            ),
            (
                "the leased address and the relay (sysLocation)",
                format!("\"ip={} giaddr={RELAY_GIADDR}\"", self.addr),
            ),
            ("vars.call_agent", format!("\"{CALL_AGENT}\"")),
            ("the MTA delimiters", "MtaConfigDelimiter 255;".to_owned()),
        ];
        for (what, want) in facts {
            ensure!(
                decoded.contains(&want),
                "the decoded file does not show {what} ({want:?}):\n{decoded}"
            );
        }
        let hash = comment(&decoded, "MtaHash")
            .with_context(|| format!("decode printed no MtaHash verdict:\n{decoded}"))?;
        Ok(hash)
    }

    /// `provd mta status --config F MAC`: the record, or None when provd has none.
    fn status(&self) -> Result<Option<Value>> {
        let mut c = Command::new(&self.provd_bin);
        c.args(["mta", "status", "--config"])
            .arg(&self.config)
            .arg(provd_rig::fmt_mac(&self.mac));
        let out = run_client(c, &self.dir, "mta-status")?;
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        if !out.status.success() {
            if stderr.contains("no provisioning record")
                || stdout.contains("no provisioning record")
            {
                return Ok(None);
            }
            bail!(
                "`provd mta status` failed ({}): {}{}",
                out.status,
                stdout.trim(),
                stderr.trim()
            );
        }
        let v: Value = serde_json::from_str(stdout.trim())
            .with_context(|| format!("`provd mta status` printed no JSON object: {stdout}"))?;
        ensure!(
            v.is_object(),
            "`provd mta status` printed {v}, not an object"
        );
        Ok(Some(v))
    }

    /// Polls the record until `pred` holds; fails with the whole record.
    fn wait_status(&self, what: &str, pred: impl Fn(&Value) -> bool) -> Result<Value> {
        let mut last = None;
        let r = wait::until(what, STATUS_TIMEOUT, Duration::from_millis(150), || {
            last = self.status()?;
            Ok(last.clone().filter(|v| pred(v)))
        });
        r.with_context(|| {
            format!(
                "provd's record of {}: {}",
                provd_rig::fmt_mac(&self.mac),
                last.map_or("none".into(), |v| v.to_string())
            )
        })
    }

    fn provd_tail(&self) -> String {
        format!("provd stderr tail:\n{}", self.provd.stderr_tail(15))
    }

    /// The end of a scenario: every peer still alive, provd exits 0 on SIGTERM.
    fn finish(mut self) -> Result<()> {
        ensure!(
            self.relay.try_wait()?.is_none(),
            "dhcrelay exited: {}",
            self.relay.stderr_tail(10)
        );
        if let Some(agent) = self.agent.as_mut() {
            ensure!(
                agent.try_wait()?.is_none(),
                "snmpd exited: {}",
                agent.stdout_text()
            );
        }
        if let Some(c) = self.capture.take() {
            c.stop()?;
        }
        self.provd.stop()
    }
}

fn colon_hex(b: &[u8]) -> String {
    b.iter()
        .map(|x| format!("{x:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

fn hex_bytes(h: &str) -> Result<Vec<u8>> {
    ensure!(h.len().is_multiple_of(2), "odd hex {h:?}");
    (0..h.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&h[i..i + 2], 16).with_context(|| format!("hex {h:?}")))
        .collect()
}

/// The `/* NAME rest */` comment `provd cfg decode` ends with.
fn comment(decoded: &str, name: &str) -> Option<String> {
    decoded.lines().find_map(|l| {
        let inner = l.trim().strip_prefix("/*")?.strip_suffix("*/")?.trim();
        Some(inner.strip_prefix(name)?.trim().to_owned())
    })
}

/// A file's SHA-1 as coreutils computes it.
fn sha1(dir: &Path, bytes: &[u8]) -> Result<Vec<u8>> {
    let p = dir.join("sha1-input.bin");
    std::fs::write(&p, bytes)?;
    let out = cmd::run(Command::new("sha1sum").arg(&p), Duration::from_secs(10))?;
    hex_bytes(out.split_whitespace().next().unwrap_or_default())
}

/// `tftp://HOST/PATH` (RFC 3617) → (host, path).
fn parse_tftp_url(url: &str) -> Result<(Ipv4Addr, String)> {
    let rest = url
        .strip_prefix("tftp://")
        .with_context(|| format!("{url:?} is not a tftp:// URL"))?;
    let (host, path) = rest
        .split_once('/')
        .with_context(|| format!("{url:?} has no path"))?;
    let host = host.strip_suffix(":69").unwrap_or(host);
    let host: Ipv4Addr = host
        .parse()
        .with_context(|| format!("{url:?}: host {host:?} is not an IPv4 address"))?;
    ensure!(!path.is_empty(), "{url:?} has an empty path");
    Ok((host, path.to_owned()))
}

/// Renders the suite's config for `flow` into `dir`, with its template and an empty root.
/// The flow's provd: config, template and TFTP root in `dir`, the config checked.
fn write_config(ctx: &Ctx, dir: &Path, flow: Flow) -> Result<Provd> {
    std::fs::create_dir_all(dir.join("templates"))?;
    std::fs::create_dir_all(dir.join("tftp-root"))?;
    std::fs::write(dir.join("templates/mta.cfg.j2"), MTA_TEMPLATE)?;
    let provd = Provd::new(&ctx.provd, dir)
        .ready_timeout(READY_TIMEOUT)
        .env("RUST_BACKTRACE", "1");
    let lease_dir = provd.lease_dir()?;
    let provd = provd.write_config(
        &PROVD_TEMPLATE
            .replace("@LEASE_DIR@", &lease_dir.to_string_lossy())
            .replace("@FLOW@", flow.name())
            .replace("@MTA_HASH@", flow.mta_hash_line()),
    )?;
    provd.check_config()?;
    Ok(provd)
}

// ---------------------------------------------------------------------------------------------
// Shared pieces of the scenarios.

/// BASIC: the file named in the ACK (siaddr + file), fetched from the MTA's address, carries
/// an SHA-1 MTA hash that verifies (and a changed byte makes it fail); no SET ever reaches the
/// MTA. Returns the file's bytes.
fn basic_fetch(rig: &Rig) -> Result<Vec<u8>> {
    let want = format!("mta/{}.bin", mac12(&rig.mac));
    let name = rig
        .lease
        .filename
        .clone()
        .context("the BASIC ACK carried no file name")?;
    ensure!(
        name == want,
        "the MTA was given boot file {name:?}, expected {want:?} (the class's boot_file)"
    );
    ensure!(
        rig.siaddr == SERVER_IP,
        "the ACK's siaddr is {}, expected the class's next_server {SERVER_IP}",
        rig.siaddr
    );
    let bytes = rig.tftp_get(rig.siaddr, &name, "tftp-basic")?;
    let hash = rig.check_file(&bytes, "basic-file")?;
    ensure!(
        hash.starts_with("sha1 ") && hash.ends_with(" verified"),
        "a BASIC file must carry its SHA-1 MTA hash, verified; decode says MtaHash {hash:?}"
    );
    // The verdict can fail: the same file with one byte of its body changed.
    let mut bad = bytes.clone();
    let at = bad.len() / 3;
    bad[at] ^= 0x01;
    let p = rig.dir.join("basic-file-corrupt.bin");
    std::fs::write(&p, &bad)?;
    let (code, decoded) = rig.decode(&p, "basic-file-corrupt-decode")?;
    let bad_hash = comment(&decoded, "MtaHash").unwrap_or_default();
    ensure!(
        code == 1 && bad_hash.contains("MISMATCH"),
        "decoding the file with byte {at} changed exited {code} with MtaHash {bad_hash:?} \
         (want 1 and MISMATCH): the hash check proves nothing"
    );
    note(format!(
        "{name}: {} bytes from {}, MtaHash {hash}",
        bytes.len(),
        rig.siaddr
    ));
    rig.set_provisioning_state(STATE_PASS)?;
    Ok(bytes)
}

/// No SET reached a BASIC MTA: neither its agent's log nor the wire shows one.
fn check_no_sets(rig: &Rig) -> Result<()> {
    std::thread::sleep(QUIET);
    let sets = rig.sets()?;
    ensure!(sets.is_empty(), "a BASIC MTA was sent SETs: {sets:?}");
    let wire = rig.sets_on_wire()?;
    ensure!(
        wire.is_empty(),
        "SETs to a BASIC MTA on the wire: {:?}",
        wire.iter().map(|s| s.msg.summary()).collect::<Vec<_>>()
    );
    Ok(())
}

/// HYBRID, MTA-15 to MTA-23: the enrollment is answered; provd SETs the URL and the hash in
/// one PDU; the MTA fetches the URL from its address and the SHA-1 of what it got is the hash.
fn hybrid_provision(rig: &Rig) -> Result<(String, Vec<u8>)> {
    ensure!(
        rig.enrollment("inform-enrollment", "private", 2, 2)?,
        "provd did not answer the enrollment INFORM (snmpinform timed out); {}",
        rig.provd_tail()
    );
    let (url, hash) = rig.wait_set()?;
    note(format!(
        "SET recorded: ConfigFile {url:?}, hash {}",
        provd_rig::hex(&hash)
    ));
    ensure!(
        hash.len() == 20,
        "pktcMtaDevProvConfigHash.0 was set to {} bytes, SHA-1 is 20",
        hash.len()
    );
    let want_url = format!("tftp://{SERVER_IP}/mta/{}.bin", mac12(&rig.mac));
    ensure!(
        url == want_url,
        "pktcMtaDevConfigFile.0 = {url:?}, expected {want_url:?} (the TFTP address and the \
         class's boot_file)"
    );
    rig.check_inform_answers(1)?;
    let ids = rig.check_set_on_wire(&url, &hash)?;
    ensure!(
        ids.len() == 1,
        "provd sent {} different SETs: {ids:?}",
        ids.len()
    );
    let (host, path) = parse_tftp_url(&url)?;
    let bytes = rig.tftp_get(host, &path, "tftp-hybrid")?;
    let got = sha1(&rig.dir, &bytes)?;
    ensure!(
        got == hash,
        "SHA-1 of the {} bytes fetched from {url} is {}, the SET said {}",
        bytes.len(),
        provd_rig::hex(&got),
        provd_rig::hex(&hash)
    );
    let file_hash = rig.check_file(&bytes, "hybrid-file")?;
    ensure!(
        file_hash == "absent",
        "a HYBRID file needs no in-file hash (it came by SNMP); decode says MtaHash {file_hash:?}"
    );
    note(format!(
        "{path}: {} bytes, SHA-1 matches the SET",
        bytes.len()
    ));
    Ok((url, hash))
}

// ---------------------------------------------------------------------------------------------
// Scenarios.

/// BASIC.1: DHCP names the file; the MTA fetches it and checks its in-file hash; no SNMP.
fn basic1(ctx: &Ctx, dir: &Path) -> Result<()> {
    let rig = Rig::boot(ctx, dir, Flow::Basic1, scenario_mac(1))?;
    basic_fetch(&rig)?;
    check_no_sets(&rig)?;
    let rec = rig.wait_status("the BASIC.1 flow to complete at the file fetch", |r| {
        step_at(r, STEP_FETCH).is_some() && state_name(r).is_some_and(|s| is_terminal(&s))
    })?;
    check_steps(&rec, &[STEP_DHCP, STEP_FETCH])?;
    let state = state_name(&rec).unwrap_or_default();
    ensure!(
        matches!(
            state.as_str(),
            "complete" | "completed" | "complete_no_status"
        ) && rec["flow"] == "BASIC.1",
        "BASIC.1 needs no status INFORM: the fetch completes it; record {rec}"
    );
    note(format!("record: {rec}"));
    rig.finish()
}

/// BASIC.2: BASIC.1 plus the final status INFORM (pass).
fn basic2(ctx: &Ctx, dir: &Path) -> Result<()> {
    let rig = Rig::boot(ctx, dir, Flow::Basic2, scenario_mac(2))?;
    basic_fetch(&rig)?;
    check_no_sets(&rig)?;
    ensure!(
        rig.status_inform("inform-status", STATE_PASS)?,
        "provd did not answer the status INFORM; {}",
        rig.provd_tail()
    );
    rig.check_inform_answers(1)?;
    let rec = rig.wait_status("the BASIC.2 flow to complete with pass", |r| {
        step_at(r, STEP_STATUS).is_some() && is_pass(final_status(r).as_deref())
    })?;
    check_steps(&rec, &[STEP_DHCP, STEP_FETCH, STEP_STATUS])?;
    ensure!(
        state_name(&rec).as_deref() == Some("complete") && rec["flow"] == "BASIC.2",
        "expected state complete for flow BASIC.2; record {rec}"
    );
    note(format!("record: {rec}"));
    rig.finish()
}

/// HYBRID.1: enrollment, SET, fetch; the status INFORM is optional (sent only if provd still
/// waits for it after the fetch).
fn hybrid1(ctx: &Ctx, dir: &Path) -> Result<()> {
    let rig = Rig::boot(ctx, dir, Flow::Hybrid1, scenario_mac(3))?;
    hybrid_provision(&rig)?;
    rig.set_provisioning_state(STATE_PASS)?;
    let early = rig.wait_status("the HYBRID.1 flow to finish at the fetch", |r| {
        step_at(r, STEP_FETCH).is_some() && state_name(r).is_some_and(|s| is_terminal(&s))
    });
    let rec = match early {
        Ok(rec) => {
            note("HYBRID.1 completed at the file fetch, without a status INFORM");
            rec
        }
        Err(e) => {
            note(format!(
                "not complete after the fetch ({e:#}); sending the status INFORM"
            ));
            ensure!(
                rig.status_inform("inform-status", STATE_PASS)?,
                "provd did not answer the status INFORM"
            );
            rig.wait_status("the HYBRID.1 flow to complete with pass", |r| {
                is_pass(final_status(r).as_deref())
            })?
        }
    };
    check_steps(&rec, &[STEP_DHCP, STEP_ENROLL, STEP_SET, STEP_FETCH])?;
    let state = state_name(&rec).unwrap_or_default();
    ensure!(
        matches!(
            state.as_str(),
            "complete" | "completed" | "complete_no_status"
        ) && rec["flow"] == "HYBRID.1",
        "expected HYBRID.1 complete; record {rec}"
    );
    note(format!("record: {rec}"));
    rig.finish()
}

/// HYBRID.2: the whole flow; the status INFORM (pass) completes it, and not before.
fn hybrid2(ctx: &Ctx, dir: &Path) -> Result<()> {
    hybrid2_with(ctx, dir, scenario_mac(4), STATE_PASS)
}

/// HYBRID.2 whose MTA reports failConfigFileError: recorded as a failure.
fn hybrid2_fail(ctx: &Ctx, dir: &Path) -> Result<()> {
    hybrid2_with(ctx, dir, scenario_mac(5), STATE_FAIL_CONFIG_FILE)
}

fn hybrid2_with(ctx: &Ctx, dir: &Path, mac: [u8; 6], final_state: i32) -> Result<()> {
    let rig = Rig::boot(ctx, dir, Flow::Hybrid2, mac)?;
    hybrid_provision(&rig)?;
    // The fetch is seen, and HYBRID.2 still waits for MTA-25.
    let before = rig.wait_status("the file fetch in the record", |r| {
        step_at(r, STEP_FETCH).is_some()
    })?;
    let state = state_name(&before).unwrap_or_default();
    ensure!(
        !is_terminal(&state) && final_status(&before).is_none(),
        "HYBRID.2 requires the status INFORM, but before it the record is final: {before}"
    );
    rig.set_provisioning_state(final_state)?;
    ensure!(
        rig.status_inform("inform-status", final_state)?,
        "provd did not answer the status INFORM; {}",
        rig.provd_tail()
    );
    rig.check_inform_answers(2)?;
    let rec = rig.wait_status("the status INFORM in the record", |r| {
        step_at(r, STEP_STATUS).is_some() && final_status(r).is_some()
    })?;
    check_steps(
        &rec,
        &[STEP_DHCP, STEP_ENROLL, STEP_SET, STEP_FETCH, STEP_STATUS],
    )?;
    let (state, fin) = (state_name(&rec).unwrap_or_default(), final_status(&rec));
    if final_state == STATE_PASS {
        ensure!(
            state == "complete" && is_pass(fin.as_deref()) && rec["flow"] == "HYBRID.2",
            "expected HYBRID.2 complete with pass; record {rec}"
        );
    } else {
        ensure!(
            matches!(fin.as_deref(), Some("failConfigFileError" | "3"))
                && is_terminal(&state)
                && rec["flow"] == "HYBRID.2",
            "expected the flow to end recording failConfigFileError; record {rec}"
        );
    }
    note(format!("record: {rec}"));
    rig.finish()
}

/// An enrollment with a community provd does not accept gets no answer and starts nothing;
/// the same INFORM with `private` is answered and provisioned.
fn wrong_community(ctx: &Ctx, dir: &Path) -> Result<()> {
    let rig = Rig::boot(ctx, dir, Flow::Hybrid2, scenario_mac(6))?;
    let t = Instant::now();
    let answered = rig.enrollment("inform-wrong", "wrong", 1, 0)?;
    ensure!(
        !answered,
        "provd answered an INFORM with community \"wrong\" (accepted: private, public)"
    );
    note(format!(
        "community \"wrong\": no answer (snmpinform gave up after {:.1}s)",
        t.elapsed().as_secs_f64()
    ));
    std::thread::sleep(QUIET);
    let entity = SocketAddrV4::new(rig.snmp_entity, NOTIFY_PORT);
    let seen = rig.snmp_on_wire()?;
    ensure!(
        seen.iter()
            .any(|s| s.msg.pdu == ber::INFORM && s.msg.community == b"wrong"),
        "the wrong-community INFORM is not on the wire: the scenario proves nothing"
    );
    let from_provd: Vec<String> = seen
        .iter()
        .filter(|s| s.src == entity || *s.src.ip() == SERVER_IP)
        .map(|s| s.msg.summary())
        .collect();
    ensure!(
        from_provd.is_empty(),
        "provd sent SNMP to the MTA after a wrong-community INFORM: {from_provd:?}"
    );
    ensure!(
        rig.sets()?.is_empty(),
        "the MTA's agent was SET: {:?}",
        rig.sets()?
    );
    if let Some(rec) = rig.status()? {
        ensure!(
            step_at(&rec, STEP_ENROLL).is_none(),
            "a wrong-community enrollment was recorded: {rec}"
        );
    }
    // The rig works: the same enrollment with the right community is answered and SET.
    ensure!(
        rig.enrollment("inform-private", "private", 2, 2)?,
        "provd did not answer the enrollment with community \"private\"; {}",
        rig.provd_tail()
    );
    rig.wait_set()?;
    rig.check_inform_answers(1)?;
    let rec = rig.wait_status("the enrollment in the record", |r| {
        step_at(r, STEP_ENROLL).is_some()
    })?;
    note(format!("record after the right community: {rec}"));
    rig.finish()
}

/// The same enrollment twice (same correlation id: one boot): both answered, one SET (or the
/// same SET again), the flow not restarted; it then completes.
fn repeated_inform(ctx: &Ctx, dir: &Path) -> Result<()> {
    let rig = Rig::boot(ctx, dir, Flow::Hybrid2, scenario_mac(7))?;
    ensure!(
        rig.enrollment("inform-first", "private", 2, 2)?,
        "provd did not answer the first enrollment; {}",
        rig.provd_tail()
    );
    let (url, hash) = rig.wait_set()?;
    let first = rig.wait_status("the first enrollment in the record", |r| {
        step_at(r, STEP_SET).is_some()
    })?;
    ensure!(
        rig.enrollment("inform-second", "private", 2, 2)?,
        "provd did not answer the repeated enrollment"
    );
    std::thread::sleep(QUIET);
    rig.check_inform_answers(2)?;
    let ids = rig.check_set_on_wire(&url, &hash)?;
    let sets = rig.sets()?;
    ensure!(
        sets.iter().all(|s| {
            let oid = s["oid"].as_str().unwrap_or_default();
            (oid == format!(".{OID_CONFIG_FILE}") && s["text"] == url.as_str())
                || (oid == format!(".{OID_CONFIG_HASH}") && s["hex"] == provd_rig::hex(&hash))
        }),
        "a SET after the repeated enrollment differs from the first: {sets:?}"
    );
    note(format!(
        "two enrollments answered; {} SET PDU(s) on the wire, {} varbinds recorded",
        ids.len(),
        sets.len()
    ));
    let second = rig.status()?.context("the record vanished")?;
    let e1 = step_at(&first, STEP_ENROLL);
    let e2 = step_at(&second, STEP_ENROLL);
    ensure!(
        e1.is_some() && e1 == e2 && first.get("attempts") == second.get("attempts"),
        "the repeated enrollment restarted the flow: before {first}, after {second}"
    );
    let state = state_name(&second).unwrap_or_default();
    ensure!(
        !matches!(
            state.as_str(),
            "waiting" | "enrolled" | "failed" | "timed_out"
        ),
        "the repeated enrollment set the flow back: {second}"
    );
    // The flow goes on from where it was.
    let (host, path) = parse_tftp_url(&url)?;
    let bytes = rig.tftp_get(host, &path, "tftp-hybrid")?;
    ensure!(
        sha1(&rig.dir, &bytes)? == hash,
        "the file's SHA-1 is not the SET hash"
    );
    rig.set_provisioning_state(STATE_PASS)?;
    ensure!(
        rig.status_inform("inform-status", STATE_PASS)?,
        "provd did not answer the status INFORM"
    );
    let rec = rig.wait_status("the flow to complete with pass", |r| {
        is_pass(final_status(r).as_deref())
    })?;
    check_steps(&rec, &[STEP_ENROLL, STEP_SET, STEP_FETCH, STEP_STATUS])?;
    ensure!(
        step_at(&rec, STEP_ENROLL) == e1,
        "the enrollment time changed by the end: {rec}"
    );
    note(format!("record: {rec}"));
    rig.finish()
}

/// logger from the MTA's address to the log server of option 7: provd files the messages
/// (RFC 5424 and RFC 3164) under the MTA's MAC.
fn syslog(ctx: &Ctx, dir: &Path) -> Result<()> {
    let rig = Rig::boot(ctx, dir, Flow::Basic1, scenario_mac(8))?;
    let server = *rig
        .lease
        .log_servers
        .first()
        .context("the ACK carried no option 7 (log servers)")?;
    ensure!(
        server == SERVER_IP,
        "option 7 names {server}, expected {SERVER_IP}"
    );
    let nonce = format!("{:08x}", rig.correlation_id);
    let messages = [
        (
            "--rfc5424",
            format!("MTA-24 provisioning complete e2e-{nonce}-5424"),
        ),
        (
            "--rfc3164",
            format!("MTA-24 provisioning complete e2e-{nonce}-3164"),
        ),
    ];
    for (i, (format, msg)) in messages.iter().enumerate() {
        let mut c = rig.topo.client().command("logger");
        c.args([
            "-n",
            &server.to_string(),
            "-P",
            &SYSLOG_PORT.to_string(),
            "-d",
        ])
        .args([
            *format,
            "-t",
            "mta-e2e",
            "-p",
            "local0.notice",
            msg.as_str(),
        ]);
        let out = run_client(c, dir, &format!("logger-{i}"))?;
        ensure!(out.status.success(), "logger failed: {}", cmd::text(&out));
    }
    let mac = provd_rig::fmt_mac(&rig.mac);
    let mut last = String::new();
    let events = wait::until(
        "both messages under the MTA's MAC in `provd syslog events`",
        STATUS_TIMEOUT,
        Duration::from_millis(150),
        || {
            let mut c = Command::new(&rig.provd_bin);
            c.args(["syslog", "events", "--config"])
                .arg(&rig.config)
                .arg(&mac);
            let out = run_client(c, dir, "syslog-events")?;
            ensure!(
                out.status.success(),
                "provd syslog events failed: {}",
                cmd::text(&out)
            );
            last = String::from_utf8_lossy(&out.stdout).into_owned();
            let events: Vec<Value> = last
                .lines()
                .filter(|l| !l.trim().is_empty())
                .map(serde_json::from_str)
                .collect::<Result<_, _>>()
                .with_context(|| format!("syslog events are not JSON lines: {last}"))?;
            let ours: Vec<Value> = events
                .into_iter()
                .filter(|e| e.to_string().contains(&format!("e2e-{nonce}")))
                .collect();
            Ok((ours.len() >= messages.len()).then_some(ours))
        },
    )
    .with_context(|| format!("events for {mac}: {last}"))?;
    for e in &events {
        ensure!(
            e["source"]
                .as_str()
                .is_some_and(|s| s.starts_with(&rig.addr.to_string())),
            "the event's source is not the MTA's address {}: {e}",
            rig.addr
        );
        ensure!(
            e["text"]
                .as_str()
                .is_some_and(|t| t.contains("MTA-24 provisioning complete"))
                && e["app"] == "mta-e2e",
            "the event does not carry the message and tag logger sent: {e}"
        );
    }
    note(format!("{} events under {mac}: {:?}", events.len(), events));
    // The lookup can fail: another MAC has none of them.
    let mut c = Command::new(&rig.provd_bin);
    c.args(["syslog", "events", "--config"])
        .arg(&rig.config)
        .arg("02:00:00:00:00:99");
    let out = run_client(c, dir, "syslog-events-other")?;
    ensure!(
        !String::from_utf8_lossy(&out.stdout).contains(&format!("e2e-{nonce}")),
        "another MAC's events show the MTA's messages: {}",
        cmd::text(&out)
    );
    rig.finish()
}

/// rdate (RFC 868) toward the time server of option 4, over UDP and TCP: within 2 s of now.
fn time_of_day(ctx: &Ctx, dir: &Path) -> Result<()> {
    let rig = Rig::boot(ctx, dir, Flow::Basic1, scenario_mac(9))?;
    let server = *rig
        .lease
        .time_servers
        .first()
        .context("the ACK carried no option 4 (time servers)")?;
    ensure!(
        server == SERVER_IP,
        "option 4 names {server}, expected {SERVER_IP}"
    );
    for (label, args) in [("rdate-udp", &["-p", "-u"][..]), ("rdate-tcp", &["-p"][..])] {
        let mut c = rig.topo.client().command("rdate");
        c.args(args).arg(server.to_string()).env("TZ", "UTC");
        let before = SystemTime::now();
        let out = run_client(c, dir, label)?;
        let after = SystemTime::now();
        let log = cmd::text(&out);
        ensure!(
            out.status.success(),
            "{label} failed ({}): {}",
            out.status,
            log.trim()
        );
        let got = parse_rdate(&log).with_context(|| format!("{label} printed no time: {log}"))?;
        let lo = before.duration_since(UNIX_EPOCH)?.as_secs() as i64 - 2;
        let hi = after.duration_since(UNIX_EPOCH)?.as_secs() as i64 + 2;
        ensure!(
            (lo..=hi).contains(&got),
            "{label}: provd's time {got} is not within 2 s of the clock ({lo}..={hi}): {}",
            log.trim()
        );
        note(format!("{label}: {} (unix {got})", log.trim()));
    }
    rig.finish()
}

/// The time `rdate -p` prints in ctime form, in UTC (`Sun Nov 22 06:00:48 UTC 2026`, or
/// `rdate: [host]\tSat Nov 22 05:49:08 2025`), as Unix seconds.
fn parse_rdate(out: &str) -> Option<i64> {
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    out.lines().find_map(|l| {
        let w: Vec<&str> = l.split_whitespace().collect();
        let at = w.iter().position(|t| MONTHS.contains(t))?;
        let month = MONTHS.iter().position(|m| *m == w[at])? as i64 + 1;
        let day: i64 = w.get(at + 1)?.parse().ok()?;
        let hms: Vec<i64> = w
            .get(at + 2)?
            .split(':')
            .map(|p| p.parse().ok())
            .collect::<Option<_>>()?;
        let year_at = match *w.get(at + 3)? {
            "UTC" | "GMT" => at + 4,
            _ => at + 3,
        };
        let year: i64 = w.get(year_at)?.parse().ok()?;
        if hms.len() != 3 || w.len() != year_at + 1 {
            return None;
        }
        Some(days_from_civil(year, month, day) * 86_400 + hms[0] * 3600 + hms[1] * 60 + hms[2])
    })
}

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Issue 18 item 5, the review's forgeries from a host beside a leased MTA: an enrollment
/// claiming the MTA's MAC from another address (the review's baseline: it got the MTA's SET,
/// file URL and hash, and moved its record), then enrollments for made-up MACs (the baseline:
/// each opened a flow and drew a SET and four retransmissions toward its claimed source). All
/// are answered; none opens a flow or draws a SET; the MTA itself is then provisioned as usual.
pub(crate) fn forged_inform(ctx: &Ctx, dir: &Path) -> Result<()> {
    const FORGED: u32 = 40;
    let rig = Rig::boot(ctx, dir, Flow::Hybrid2, scenario_mac(10))?;
    // The attacker: another address on the MTA's link, in the relayed subnet, outside the pool.
    let attacker = Ipv4Addr::new(198, 18, 2, 66);
    rig.topo
        .client()
        .ip(&["addr", "add", &format!("{attacker}/24"), "dev", CLIENT_IF])?;
    let hijack = rig.forged_enrollment("inform-hijack", attacker, rig.mac, 0x0bad_cafe)?;
    note(format!(
        "enrollment claiming {} from {attacker}: answered {hijack}",
        provd_rig::fmt_mac(&rig.mac)
    ));
    let mut answered = 0;
    for i in 0..FORGED {
        let mac = [0x00, 0x15, 0xcf, 0xf0, (i >> 8) as u8, i as u8];
        answered += u32::from(rig.forged_enrollment(
            &format!("inform-forged-{i}"),
            attacker,
            mac,
            i + 1,
        )?);
    }
    note(format!(
        "{FORGED} enrollments for made-up MACs from {attacker}: {answered} answered"
    ));
    std::thread::sleep(QUIET);
    let mut problems = Vec::new();
    let to_attacker: Vec<String> = rig
        .snmp_on_wire()?
        .iter()
        .filter(|s| *s.dst.ip() == attacker && s.msg.pdu == ber::SET)
        .map(|s| s.msg.summary())
        .collect();
    if !to_attacker.is_empty() {
        problems.push(format!(
            "provd sent {} SETs to the forging address {attacker}: {:?}",
            to_attacker.len(),
            to_attacker.iter().take(3).collect::<Vec<_>>()
        ));
    }
    if !hijack || answered < FORGED {
        problems.push(format!(
            "forged INFORMs must still be answered (or they are retransmitted): hijack {hijack}, {answered}/{FORGED}"
        ));
    }
    if let Some(rec) = rig.status()? {
        let addr = rec.get("addr").and_then(Value::as_str).unwrap_or_default();
        if addr != rig.addr.to_string() || step_at(&rec, STEP_ENROLL).is_some() {
            problems.push(format!(
                "the hijacking enrollment moved or enrolled the MTA's record: {rec}"
            ));
        }
    }
    if !rig.sets()?.is_empty() {
        problems.push(format!("the MTA's agent was SET: {:?}", rig.sets()?));
    }
    // The rig works: the MTA from its lease's address is enrolled and SET.
    ensure!(
        rig.enrollment("inform-mta", "private", 2, 2)?,
        "provd did not answer the MTA's own enrollment; {}",
        rig.provd_tail()
    );
    rig.wait_set()?;
    note("the MTA's own enrollment from its lease address: answered and SET");
    if !problems.is_empty() {
        bail!(problems.join("; "));
    }
    rig.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    const OID_SYS_UPTIME: &str = "1.3.6.1.2.1.1.3.0";
    const OID_SNMP_TRAP_OID: &str = "1.3.6.1.6.3.1.1.4.1.0";

    fn unhex(s: &str) -> Vec<u8> {
        let s: String = s.split_whitespace().collect();
        hex_bytes(&s).unwrap()
    }

    #[test]
    fn ber_reads_the_spec_set_vector() {
        // snmp-mta.md §5.2: SET of the file URL and hash, community "private", request-id 2002.
        let b = unhex(
            "30 75 02 01 01 04 07 70 72 69 76 61 74 65 a3 67 02 02 07 d2 02 01 00 02 01 00 30 5b
             30 34 06 0b 2b 06 01 02 01 81 0c 01 02 09 00 04 25 74 66 74 70 3a 2f 2f 31 30 2e 30
             2e 30 2e 31 30 2f 6d 74 61 2f 30 30 31 35 63 66 31 32 33 34 35 37 2e 62 69 6e
             30 23 06 0b 2b 06 01 02 01 81 0c 01 02 0b 00 04 14 73 2b 97 aa 83 d5 13 34 00 76 82
             55 be 2c 98 bb 6a 97 b6 c5",
        );
        let m = ber::parse(&b).unwrap();
        assert_eq!((m.version, m.pdu, m.request_id), (1, ber::SET, 2002));
        assert_eq!(m.community, b"private");
        assert_eq!(m.varbinds.len(), 2);
        let f = m.get(OID_CONFIG_FILE).unwrap();
        assert_eq!(f.value, b"tftp://10.0.0.10/mta/0015cf123457.bin");
        assert_eq!(m.get(OID_CONFIG_HASH).unwrap().value.len(), 20);
        assert!(ber::parse(&b[..b.len() - 1]).is_none());
    }

    #[test]
    fn ber_reads_the_spec_status_inform() {
        let b = unhex(
            "30 7f 02 01 01 04 06 70 75 62 6c 69 63 a6 72 02 02 03 ea 02 01 00 02 01 00 30 66
             30 0e 06 08 2b 06 01 02 01 01 03 00 43 02 23 8c
             30 17 06 0a 2b 06 01 06 03 01 01 04 01 00 06 09 2b 06 01 02 01 81 0c 00 02
             30 14 06 0a 2b 06 01 02 01 02 02 01 06 01 04 06 00 15 cf 12 34 57
             30 13 06 0b 2b 06 01 02 01 81 0c 01 03 03 00 42 04 12 34 ab cd
             30 10 06 0b 2b 06 01 02 01 81 0c 01 01 08 00 02 01 01",
        );
        let m = ber::parse(&b).unwrap();
        assert_eq!(
            (m.pdu, m.request_id, m.varbinds.len()),
            (ber::INFORM, 1002, 5)
        );
        assert_eq!(m.varbinds[0].oid, OID_SYS_UPTIME);
        let trap = m.get(OID_SNMP_TRAP_OID).unwrap();
        assert_eq!(ber::oid(&trap.value).unwrap(), TRAP_STATUS);
        assert_eq!(m.get(OID_PROVISIONING_STATE).unwrap().value, [1]);
        assert_eq!(ber::int(&[0xff]), Some(-1));
        assert_eq!(ber::int(&[0x00, 0x80]), Some(128));
    }

    #[test]
    fn lease_and_option_122_parse() {
        let leases = "lease {\n  interface \"cli0\";\n  filename \"old\";\n}\n\
                      lease {\n  interface \"cli0\";\n  fixed-address 198.18.2.100;\n  \
                      filename \"mta/0015cfe2e001.bin\";\n  \
                      option time-servers 198.18.0.1;\n  option log-servers 198.18.0.1, 198.18.0.9;\n  \
                      option pktc-ccc 3:5:1:c6:12:0:1:6:9:5:42:41:53:49:43:1:31:0:8:1:2;\n}\n";
        let f = parse_lease(leases);
        assert_eq!(f.filename.as_deref(), Some("mta/0015cfe2e001.bin"));
        assert_eq!(f.time_servers, [SERVER_IP]);
        assert_eq!(f.log_servers.len(), 2);
        let (server, flow) = provisioning_of(f.ccc.as_deref().unwrap()).unwrap();
        assert_eq!((server, flow.as_str()), (SERVER_IP, "BASIC.1"));
        assert!(provisioning_of(&[3, 5, 0, 1, 2]).is_err());
        assert_eq!(
            parse_dhclient_string("\"ab\\001c\""),
            Some(vec![b'a', b'b', 1, b'c'])
        );
        assert_eq!(
            dns_labels(&[6, b'H', b'Y', b'B', b'R', b'I', b'D', 1, b'2', 0]).as_deref(),
            Some("HYBRID.2")
        );
        assert_eq!(dns_labels(&[3, b'a', b'b']), None);
    }

    #[test]
    fn records_read_in_either_spelling() {
        let provd: Value = serde_json::from_str(
            r#"{"mac":"00:15:cf:12:34:57","flow":"HYBRID.2","steps":{"dhcp":1,"enrollment":2,
                "set_sent":3,"set_acked":4,"file_fetched":5,"status":6},
                "state":{"name":"complete","prov_state":"pass"},"last_error":null}"#,
        )
        .unwrap();
        assert_eq!(state_name(&provd).as_deref(), Some("complete"));
        assert!(is_pass(final_status(&provd).as_deref()));
        check_steps(
            &provd,
            &[STEP_DHCP, STEP_ENROLL, STEP_SET, STEP_FETCH, STEP_STATUS],
        )
        .unwrap();
        let contract: Value = serde_json::from_str(
            r#"{"state":"failed","final_status":"failConfigFileError",
                "steps":{"MTA-15":5,"MTA-19":4}}"#,
        )
        .unwrap();
        assert_eq!(state_name(&contract).as_deref(), Some("failed"));
        assert_eq!(
            final_status(&contract).as_deref(),
            Some("failConfigFileError")
        );
        assert!(check_steps(&contract, &[STEP_ENROLL, STEP_SET]).is_err());
        assert!(check_steps(&contract, &[STEP_STATUS]).is_err());
    }

    #[test]
    fn urls_and_rdate_parse() {
        assert_eq!(
            parse_tftp_url("tftp://198.18.0.1/mta/x.bin").unwrap(),
            (SERVER_IP, "mta/x.bin".to_owned())
        );
        assert!(parse_tftp_url("http://198.18.0.1/x").is_err());
        assert!(parse_tftp_url("tftp://prov.example/x").is_err());
        assert_eq!(
            parse_rdate("rdate: [198.18.0.1]\tSat Nov 22 05:49:08 2025\n"),
            Some(1_763_790_548)
        );
        assert_eq!(
            parse_rdate("Sun Nov 22 06:00:48 UTC 2026\n"),
            Some(1_763_790_548 + 365 * 86_400 + 11 * 60 + 40)
        );
        assert_eq!(parse_rdate("Sun Nov 22 06:00:48 CET 2026"), None);
        assert_eq!(parse_rdate("rdate: could not connect"), None);
        assert_eq!(days_from_civil(1970, 1, 1), 0);
        assert_eq!(days_from_civil(2000, 3, 1), 11_017);
    }

    #[test]
    fn config_renders_each_flow() {
        for flow in [Flow::Basic1, Flow::Basic2, Flow::Hybrid1, Flow::Hybrid2] {
            let t = PROVD_TEMPLATE
                .replace("@FLOW@", flow.name())
                .replace("@MTA_HASH@", flow.mta_hash_line());
            assert!(t.contains(&format!("flow = \"{}\"", flow.name())));
            assert_eq!(t.contains("mta_hash = \"sha1\""), !flow.is_hybrid());
            assert!(t.contains("[mta]"));
        }
    }

    #[test]
    fn scenario_names_are_the_documented_ones() {
        let names: Vec<&str> = scenarios().iter().map(|(n, _)| *n).collect();
        assert_eq!(
            names,
            [
                "basic1",
                "basic2",
                "hybrid1",
                "hybrid2",
                "hybrid2-fail",
                "wrong-community",
                "repeated-inform",
                "syslog",
                "time",
                "forged-inform"
            ]
        );
    }
}
