//! `cargo xtask bench storm [--cms N] [--mtas N] [--routers N] [--phones N] [--relays N]
//! [--spread-ms MS] [--deadline-s S] [--kill-at-s S] [--smoke]`: a region's power comes back.
//!
//! provd runs in a fresh server namespace with every role a cable plant needs (DHCP, TFTP with
//! enforce, generated CM files with a CMTS MIC and MTA files, the MTA role on HYBRID.2, time,
//! syslog, the ACS with digest authentication, phone profiles with enforce), one shared network
//! per simulated CMTS (a modem subnet, an MTA subnet and a CPE subnet for the routers and
//! phones behind the modems, each relayed from its own giaddr), written by [`provd_toml`].
//! `provd-loadgen storm` runs in the load namespace: every device powers on within
//! `--spread-ms` and runs its whole boot with the real retry timing (see
//! `tests/loadgen/src/storm/`). The load namespace routes the giaddrs and the client network to
//! itself as local, so each device binds its leased address.
//!
//! Prints the generator's `RESULT storm …` line and writes `target/bench-report/storm.md` with
//! the chart of devices online over time (`storm.png`). Fails unless every device came online
//! and no address was given twice. `--kill-at-s S` SIGKILLs provd S seconds into the storm and
//! starts it again at once (the e2e suite uses it). `--smoke`: 300 devices of each type behind 4
//! CMTSs, same checks. Without `--routers`/`--phones` the full run is the issue's target, modems
//! and their eMTAs only.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail, ensure};
use plotters::prelude::*;
use provd_rig::topo::{BENCH_RELAY_IP as LOAD_IP, BENCH_SERVER_IP as SERVER_IP};
use provd_rig::{Child, Provd, Topology, cmd};

use super::{Args, check_interrupted, tools};

const CM_TEMPLATE: &str = include_str!("../../../userspace/config/examples/templates/cm.cfg.j2");
const MTA_TEMPLATE: &str = include_str!("../../../benches/peers/mta/mta.cfg.j2");
/// The phones' profile (Flying Voice key=value): it names the device and its leased address,
/// which the simulated phone checks, and provd adds its version field.
const PHONE_TEMPLATE: &str = "# storm phone profile for {{ mac }}
DBID_SIP_ENABLE=1
DBID_WEB_SIP_SERVER={{ vars.sip_server }}
DBID_DEVICE_MAC={{ mac_upper }}
DBID_DEVICE_IP={{ ip }}
";
/// The routers' ACS credentials.
pub const ACS_USER: &str = "storm-cpe";
pub const ACS_PASS: &str = "storm-acs-secret";
/// The CMTSs' giaddrs: CMTS k relays its modems from `.1 + 3k`, its MTAs from `.2 + 3k`, its
/// CPEs (routers and phones) from `.3 + 3k`.
const GIADDR_NET: Ipv4Addr = Ipv4Addr::new(198, 18, 3, 0);
/// Client addresses, when the fleet fits: inside the test network.
const CLIENT_NET: (Ipv4Addr, u8) = (Ipv4Addr::new(198, 19, 0, 0), 16);
/// When it does not (more than ~60,000 devices): the shared address space operators number
/// their modems from (RFC 6598). It is routed only between the two namespaces.
const LARGE_CLIENT_NET: (Ipv4Addr, u8) = (Ipv4Addr::new(100, 64, 0, 0), 10);
pub const SHARED_SECRET: &str = "storm-cmts-secret";
const WORKERS: u32 = 2;
const READY_TIMEOUT: Duration = Duration::from_secs(30);
const STOP_GRACE: Duration = Duration::from_secs(10);
const NOTIFY_PORT: u16 = 162;

/// What the storm is.
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    pub cms: u32,
    pub mtas: u32,
    pub routers: u32,
    pub phones: u32,
    pub relays: u32,
    /// The simulator's cap on connections open at once (`None`: its default).
    pub max_connections: Option<u32>,
    pub spread_ms: u64,
    pub deadline_s: f64,
    /// SIGKILL provd this long into the storm, then start it again.
    pub kill_at: Option<Duration>,
}

impl Plan {
    fn new(args: &Args) -> Plan {
        let smoke = args.smoke;
        Plan {
            cms: args.cms.unwrap_or(if smoke { 300 } else { 100_000 }),
            mtas: args.mtas.unwrap_or(if smoke { 300 } else { 100_000 }),
            routers: args.routers.unwrap_or(if smoke { 300 } else { 0 }),
            phones: args.phones.unwrap_or(if smoke { 300 } else { 0 }),
            relays: args.relays.unwrap_or(if smoke { 4 } else { 20 }),
            max_connections: args.concurrency,
            spread_ms: args.spread_ms.unwrap_or(1000),
            deadline_s: args.deadline_s.unwrap_or(if smoke { 60.0 } else { 180.0 }),
            kill_at: args.kill_at_s.map(Duration::from_secs_f64),
        }
    }

    pub fn devices(&self) -> u32 {
        self.cms + self.mtas + self.routers + self.phones
    }

    /// `N modems, N eMTAs, N routers, N phones`, leaving out kinds the plan has none of (but
    /// always the first two).
    pub fn fleet(&self) -> String {
        let mut parts = vec![
            format!("{} modems", self.cms),
            format!("{} eMTAs", self.mtas),
        ];
        if self.routers > 0 {
            parts.push(format!("{} eRouters", self.routers));
        }
        if self.phones > 0 {
            parts.push(format!("{} phones", self.phones));
        }
        parts.join(", ")
    }
}

/// One subnet of the plan: a CMTS's modems or its MTAs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Subnet {
    net: Ipv4Addr,
    len: u8,
}

impl Subnet {
    fn size(self) -> u32 {
        1 << (32 - self.len)
    }
    fn at(self, k: u32) -> Ipv4Addr {
        Ipv4Addr::from(u32::from(self.net) + k)
    }
}

/// One CMTS of the plan: a giaddr and a subnet for its modems, its MTAs, and (when the plan has
/// routers or phones) its CPEs.
#[derive(Debug, Clone, PartialEq)]
struct CmtsPlan {
    cm: (Ipv4Addr, Subnet),
    mta: (Ipv4Addr, Subnet),
    cpe: (Ipv4Addr, Option<Subnet>),
}

/// The address plan: giaddrs and, per CMTS, a subnet per device group carved from the client
/// network, each with room for its devices plus a quarter.
#[derive(Debug, Clone, PartialEq)]
pub struct AddressPlan {
    pub client_net: (Ipv4Addr, u8),
    cmts: Vec<CmtsPlan>,
}

/// Pool addresses left out at the start of each subnet.
const POOL_OFFSET: u32 = 10;

impl AddressPlan {
    pub fn new(plan: &Plan) -> Result<AddressPlan> {
        ensure!(
            (1..=84).contains(&plan.relays),
            "--relays must be in 1..=84 (three giaddrs each share {GIADDR_NET}/24)"
        );
        let per = |n: u32| n.div_ceil(plan.relays);
        let len_for = |devices: u32| -> u8 {
            let need = devices + devices / 4 + POOL_OFFSET + 2;
            (32 - need.next_power_of_two().trailing_zeros()).min(29) as u8
        };
        let cpes = plan.routers + plan.phones;
        // Per group (modems, MTAs, CPEs) its prefix length, or none for no devices of it.
        let lens = [
            Some(len_for(per(plan.cms))),
            Some(len_for(per(plan.mtas))),
            (cpes > 0).then(|| len_for(per(cpes))),
        ];
        let total = u64::from(plan.relays)
            * lens
                .iter()
                .flatten()
                .map(|&l| 1u64 << (32 - l))
                .sum::<u64>();
        let client_net = if total <= 1 << (32 - CLIENT_NET.1) {
            CLIENT_NET
        } else {
            LARGE_CLIENT_NET
        };
        ensure!(
            total <= 1 << (32 - client_net.1),
            "{} need {total} addresses, more than {}/{} holds",
            plan.fleet(),
            client_net.0,
            client_net.1
        );
        // Larger subnets first keeps every one aligned on its size.
        let mut order: Vec<usize> = (0..lens.len()).filter(|&g| lens[g].is_some()).collect();
        order.sort_by_key(|&g| lens[g]);
        let mut next = u32::from(client_net.0);
        let mut carved: [Vec<Subnet>; 3] = Default::default();
        for g in order {
            let len = lens[g].unwrap_or(32);
            carved[g] = (0..plan.relays)
                .map(|_| {
                    let s = Subnet {
                        net: Ipv4Addr::from(next),
                        len,
                    };
                    next += s.size();
                    s
                })
                .collect();
        }
        let g = u32::from(GIADDR_NET);
        let cmts = (0..plan.relays)
            .map(|k| {
                let at = |group: u32| Ipv4Addr::from(g + 1 + 3 * k + group);
                let k = k as usize;
                CmtsPlan {
                    cm: (at(0), carved[0][k]),
                    mta: (at(1), carved[1][k]),
                    cpe: (at(2), carved[2].get(k).copied()),
                }
            })
            .collect();
        Ok(AddressPlan { client_net, cmts })
    }

    /// The first CMTS's modem giaddr: the generator's `--relay-base`.
    pub fn relay_base(&self) -> Ipv4Addr {
        self.cmts[0].cm.0
    }
}

/// provd's config for the storm: every role a cable plant needs, one shared network per CMTS.
pub fn provd_toml(plan: &Plan, addrs: &AddressPlan, dir: &Path) -> String {
    let server = SERVER_IP;
    let mut t = format!(
        "# Written by `cargo xtask bench storm`: {fleet} behind {relays} CMTSs.
[server]
server_id = \"{server}\"
lease_dir = \"{dir}/leases\"
workers = {WORKERS}

[lease]
default_time = 86400

[tftp]
bind = \"{server}\"
workers = {WORKERS}
# A device's file goes only to the address leased to it.
enforce = true

[time]
bind = \"{server}\"

[syslog]
bind = \"{server}\"

[mta]
bind = \"{server}\"
port = {NOTIFY_PORT}
inform_communities = [\"private\"]
set_community = \"private\"
get_capabilities = false
max_flows = {max_flows}
{cpe_roles}
[vars]
default_tier = \"basic\"
down_basic = 50000000
up_basic = 5000000
noc_contact = \"noc@storm.example\"
nms = \"{server}\"
ro_community = \"storm-ro\"
sip_server = \"sip.storm.example\"

[[class]]
name = \"cm\"
match = \"docsis*\"
next_server = \"{server}\"
boot_file = \"cm/{{mac}}.cfg\"
time_servers = [\"{server}\"]
log_servers = [\"{server}\"]
time_offset = 0
primary_dhcp = \"{server}\"
  [class.config_file]
  template = \"cm.cfg.j2\"
  kind = \"docsis\"
  shared_secret = \"{SHARED_SECRET}\"

[[class]]
name = \"mta\"
match = \"pktc*\"
next_server = \"{server}\"
boot_file = \"mta/{{mac}}.bin\"
provisioning_server = \"{server}\"
flow = \"HYBRID.2\"
log_servers = [\"{server}\"]
  [class.config_file]
  template = \"mta.cfg.j2\"
  kind = \"mta\"

[[class]]
name = \"other\"
match = \"*\"
",
        fleet = plan.fleet(),
        relays = plan.relays,
        dir = dir.display(),
        max_flows = (plan.mtas + 1000).max(100_000),
        cpe_roles = if plan.routers + plan.phones > 0 {
            cpe_roles(plan)
        } else {
            String::new()
        },
    );
    for (k, c) in addrs.cmts.iter().enumerate() {
        let ((cm_g, cm), (mta_g, mta), (cpe_g, cpe)) = (c.cm, c.mta, c.cpe);
        let _ = write!(
            t,
            "
[[shared_network]]
name = \"cmts{n}\"
relays = [\"{cm_g}\", \"{mta_g}\", \"{cpe_g}\"]
  [[shared_network.subnet]]
  prefix = \"{cm_net}/{cm_len}\"
  classes = [\"cm\"]
    [[shared_network.subnet.pool]]
    start = \"{cm_start}\"
    end = \"{cm_end}\"
  [[shared_network.subnet]]
  prefix = \"{mta_net}/{mta_len}\"
  classes = [\"mta\"]
    [[shared_network.subnet.pool]]
    start = \"{mta_start}\"
    end = \"{mta_end}\"
",
            n = k + 1,
            cm_net = cm.net,
            cm_len = cm.len,
            cm_start = cm.at(POOL_OFFSET),
            cm_end = cm.at(cm.size() - 2),
            mta_net = mta.net,
            mta_len = mta.len,
            mta_start = mta.at(POOL_OFFSET),
            mta_end = mta.at(mta.size() - 2),
        );
        if let Some(cpe) = cpe {
            let _ = write!(
                t,
                "  [[shared_network.subnet]]
  prefix = \"{net}/{len}\"
  classes = [\"erouter\", \"phone\"]
    [[shared_network.subnet.pool]]
    start = \"{start}\"
    end = \"{end}\"
",
                net = cpe.net,
                len = cpe.len,
                start = cpe.at(POOL_OFFSET),
                end = cpe.at(cpe.size() - 2),
            );
        }
    }
    t
}

/// The roles the routers and phones need: the profile server and the ACS.
fn cpe_roles(plan: &Plan) -> String {
    format!(
        "
[http]
bind = \"{SERVER_IP}\"
port = 80

# The routers were known to the ACS before the power went: the new-device gate (there for a
# flood of strangers) is opened to the fleet, since every serial is new to this provd.
[acs]
bind = \"{SERVER_IP}\"
port = 7547
auth = \"digest\"
username = \"{ACS_USER}\"
password = \"{ACS_PASS}\"
new_devices_per_sec = {n}
new_devices_burst = {n}

[[class]]
name = \"phone\"
match = \"FlyingVoice*\"
  [class.profile]
  path = \"fv/{{mac}}.cfg\"
  template = \"phone.cfg.j2\"
  format = \"kvp\"
  profile_rule = \"http://{SERVER_IP}/fv/$MA.cfg\"

[[class]]
name = \"erouter\"
match = \"erouter*\"
acs_url = \"http://{SERVER_IP}:7547/\"
",
        n = plan.routers.max(1000)
    )
}

/// The storm's network: the bench link, the giaddrs and the client network local to the load
/// namespace, and routed there from the server's.
pub fn storm_topology(addrs: &AddressPlan) -> Result<Topology> {
    let link = Topology::bench()?;
    let load = link.load_ns();
    let giaddrs = format!("{GIADDR_NET}/24");
    let clients = format!("{}/{}", addrs.client_net.0, addrs.client_net.1);
    for net in [&giaddrs, &clients] {
        load.ip(&["route", "add", "local", net, "dev", "lo"])?;
        link.server
            .ip(&["route", "add", net, "via", &LOAD_IP.to_string()])?;
    }
    Ok(link)
}

/// provd under the storm, its directory and config.
pub struct StormServer {
    pub provd: Provd,
    pub config: PathBuf,
    pub dir: tempfile::TempDir,
}

/// The descriptor limit provd's Debian unit gives it (`LimitNOFILE=` in
/// `packaging/deb/provd.service`).
fn unit_nofile() -> Option<u64> {
    crate::package::UNIT
        .lines()
        .find_map(|l| l.trim().strip_prefix("LimitNOFILE="))
        .and_then(|v| v.trim().parse().ok())
}

/// Gives this process, and so the provd it starts, the descriptor limit of provd's unit. A
/// sandbox's default (20,000 on these machines) left TFTP about 19,000 transfer sockets for
/// 200,000 devices: 386,810 transfers fell back to the shared port, half a million expired
/// unproven, and every device took 95 s instead of 11-18 s. Returns the soft limit in force.
fn provd_nofile() -> Result<u64> {
    let want = unit_nofile().context("no LimitNOFILE= in provd.service")?;
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit fills the valid, exclusively borrowed `lim`.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &raw mut lim) } != 0 {
        return Err(std::io::Error::last_os_error()).context("getrlimit(RLIMIT_NOFILE)");
    }
    if lim.rlim_cur >= want {
        return Ok(lim.rlim_cur);
    }
    let raised = libc::rlimit {
        rlim_cur: want,
        rlim_max: lim.rlim_max.max(want),
    };
    // SAFETY: setrlimit reads the valid `raised`. Raising the hard limit needs root, which the
    // bench has (it makes network namespaces).
    if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &raw const raised) } != 0 {
        let e = std::io::Error::last_os_error();
        eprintln!(
            "bench: storm: could not give provd its unit's {want} descriptors ({e}); it runs with {}",
            lim.rlim_cur
        );
        return Ok(lim.rlim_cur);
    }
    Ok(want)
}

impl StormServer {
    pub fn start(link: &Topology, provd: &Path, plan: &Plan, addrs: &AddressPlan) -> Result<Self> {
        provd_nofile()?;
        let dir = tempfile::Builder::new()
            .prefix("provd-storm-")
            .tempdir()
            .context("making a temporary directory")?;
        let d = dir.path();
        std::fs::create_dir_all(d.join("leases"))?;
        std::fs::write(d.join("cm.cfg.j2"), CM_TEMPLATE)?;
        std::fs::write(d.join("mta.cfg.j2"), MTA_TEMPLATE)?;
        std::fs::write(d.join("phone.cfg.j2"), PHONE_TEMPLATE)?;
        let mut provd = Provd::new(provd, d)
            .ready_timeout(READY_TIMEOUT)
            .stop_grace(STOP_GRACE)
            .interrupt(check_interrupted)
            .env("RUST_BACKTRACE", "1")
            .write_config(&provd_toml(plan, addrs, d))?;
        provd.check_config()?;
        let config = provd.config().to_path_buf();
        provd.start(&link.server)?;
        provd.wait_udp(Some(SERVER_IP), NOTIFY_PORT, READY_TIMEOUT)?;
        Ok(StormServer { provd, config, dir })
    }

    /// The durable lease table, read with `provd leases` (provd stopped).
    pub fn durable_leases(&self) -> Result<Vec<provd_rig::leases::Lease>> {
        let out = cmd::run(
            Command::new(self.provd.bin())
                .args(["leases", "--config"])
                .arg(&self.config),
            Duration::from_secs(120),
        )?;
        provd_rig::leases::parse_provd(&out)
    }
}

/// The generator's `RESULT storm` line.
#[derive(Debug, Clone, PartialEq)]
pub struct StormResult {
    pub fields: BTreeMap<String, String>,
    pub line: String,
}

impl StormResult {
    pub fn parse(stdout: &str) -> Option<StormResult> {
        let fields = tools::fields(stdout, "RESULT storm ")?;
        let line = stdout
            .lines()
            .rev()
            .find(|l| l.starts_with("RESULT storm "))?
            .to_owned();
        Some(StormResult { fields, line })
    }
    pub fn count(&self, k: &str) -> Option<u64> {
        self.fields.get(k)?.parse().ok()
    }
}

/// What one storm run gave.
pub struct StormRun {
    pub result: StormResult,
    pub exit_ok: bool,
    pub stderr: String,
    pub timeline: Vec<(f64, [u32; 4])>,
    /// When provd was killed and when it was ready again, from the storm's start.
    pub kill: Option<(Duration, Duration)>,
}

/// Runs the generator against `srv`, killing and restarting provd on the way if the plan says.
pub fn run_storm(
    loadgen: &Path,
    link: &Topology,
    srv: &mut StormServer,
    plan: &Plan,
    addrs: &AddressPlan,
    log_dir: &Path,
) -> Result<StormRun> {
    let timeline = log_dir.join("storm-timeline.csv");
    let lost = log_dir.join("storm-lost.txt");
    let mut c = link.load_ns().command(loadgen);
    c.args(["storm", "--server", &SERVER_IP.to_string()])
        .args(["--relay-base", &addrs.relay_base().to_string()])
        .args(["--relays", &plan.relays.to_string()])
        .args(["--cms", &plan.cms.to_string()])
        .args(["--mtas", &plan.mtas.to_string()])
        .args(["--routers", &plan.routers.to_string()])
        .args(["--phones", &plan.phones.to_string()])
        .args(["--acs-user", ACS_USER, "--acs-pass", ACS_PASS])
        .args(
            plan.max_connections
                .map(|n| ["--max-connections".to_owned(), n.to_string()])
                .into_iter()
                .flatten(),
        )
        .args(["--spread-ms", &plan.spread_ms.to_string()])
        .args(["--deadline-s", &plan.deadline_s.to_string()])
        .args(["--shared-secret", SHARED_SECRET])
        .arg("--timeline")
        .arg(&timeline)
        .arg("--lost")
        .arg(&lost);
    let limit = Duration::from_secs_f64(plan.deadline_s + 60.0);
    let started = Instant::now();
    let mut child = Child::spawn("storm", c, log_dir)?;
    let mut kill = None;
    if let Some(at) = plan.kill_at {
        while started.elapsed() < at {
            check_interrupted()?;
            if child.try_wait()?.is_some() {
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        if child.try_wait()?.is_none() {
            let killed = started.elapsed();
            srv.provd.kill9()?;
            srv.provd.restart()?;
            srv.provd
                .wait_udp(Some(SERVER_IP), NOTIFY_PORT, READY_TIMEOUT)?;
            kill = Some((killed, started.elapsed()));
        }
    }
    let status = tools::wait_bounded(&mut child, limit, "provd-loadgen storm")?;
    let (stdout, stderr) = (child.stdout_text(), child.stderr_text());
    let result = StormResult::parse(&stdout).with_context(|| {
        format!("provd-loadgen storm ({status}) printed no RESULT line: {stdout}{stderr}")
    })?;
    let timeline = std::fs::read_to_string(&timeline)
        .map(|t| parse_timeline(&t))
        .unwrap_or_default();
    Ok(StormRun {
        result,
        exit_ok: status.success(),
        stderr,
        timeline,
        kill,
    })
}

/// The `drops` column of `/proc/net/udp` in namespace `ns`, summed per local port: which of
/// provd's sockets overflowed (ephemeral ports, TFTP's per-transfer sockets, summed as one).
fn port_drops(ns: &str) -> String {
    let text = cmd::run(
        Command::new("ip").args(["netns", "exec", ns, "cat", "/proc/net/udp"]),
        Duration::from_secs(10),
    )
    .unwrap_or_default();
    let by_port = parse_udp_drops(&text);
    if by_port.is_empty() {
        return "none".into();
    }
    by_port
        .iter()
        .map(|(p, d)| format!("{p}: {d}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// `/proc/net/udp` lines → drops per local port (ports from 32768 up summed as "ephemeral").
fn parse_udp_drops(text: &str) -> BTreeMap<String, u64> {
    let mut out = BTreeMap::new();
    for l in text.lines().skip(1) {
        let f: Vec<&str> = l.split_whitespace().collect();
        let (Some(local), Some(drops)) = (f.get(1), f.last()) else {
            continue;
        };
        let Some(port) = local
            .rsplit_once(':')
            .and_then(|(_, p)| u16::from_str_radix(p, 16).ok())
        else {
            continue;
        };
        let Ok(d) = drops.parse::<u64>() else {
            continue;
        };
        if d == 0 {
            continue;
        }
        let key = if port >= 32768 {
            "ephemeral".to_owned()
        } else {
            port.to_string()
        };
        *out.entry(key).or_default() += d;
    }
    out
}

/// `t_s,cm_online,mta_online,router_online,phone_online` rows (missing columns read as 0).
fn parse_timeline(csv: &str) -> Vec<(f64, [u32; 4])> {
    csv.lines()
        .skip(1)
        .filter_map(|l| {
            let mut f = l.split(',');
            let t = f.next()?.parse().ok()?;
            let mut by = [0u32; 4];
            for (k, v) in f.take(4).enumerate() {
                by[k] = v.parse().ok()?;
            }
            Some((t, by))
        })
        .collect()
}

/// What is wrong with a storm's result: lost devices, double allocations, refusals.
pub fn problems(r: &StormResult, exit_ok: bool) -> Vec<String> {
    let mut p = Vec::new();
    let n = |k: &str| r.count(k).unwrap_or(u64::MAX);
    if n("lost") != 0 {
        p.push(format!("{} devices not online at the deadline", n("lost")));
    }
    if n("double_allocations") != 0 {
        p.push(format!(
            "{} ACKs gave an address another device held",
            n("double_allocations")
        ));
    }
    if n("devices") == 0 || n("online") != n("devices") {
        p.push(format!("online {} of {}", n("online"), n("devices")));
    }
    if !exit_ok && p.is_empty() {
        p.push("the generator failed".into());
    }
    p
}

pub fn run(args: &Args) -> Result<()> {
    let plan = Plan::new(args);
    let addrs = AddressPlan::new(&plan)?;
    let bins = tools::build(true, args.provd_bin.as_deref())?;
    let provd = bins
        .provd
        .clone()
        .context("provd did not build; nothing to measure")?;
    if addrs.client_net != CLIENT_NET {
        eprintln!(
            "bench: storm: {} devices do not fit {}/{}; numbering them from {}/{} (RFC 6598), \
             routed only between the two namespaces",
            plan.devices(),
            CLIENT_NET.0,
            CLIENT_NET.1,
            addrs.client_net.0,
            addrs.client_net.1
        );
    }
    let link = storm_topology(&addrs)?;
    let mut srv = StormServer::start(&link, &provd, &plan, &addrs)?;
    eprintln!(
        "bench: storm: provd ready (pid {}, dir {}); {} behind {} CMTSs, powered on within {} ms",
        srv.provd.pid(),
        srv.dir.path().display(),
        plan.fleet(),
        plan.relays,
        plan.spread_ms
    );
    check_interrupted()?;
    let cpu0 = super::procstat::thread_cpu(srv.provd.pid());
    let namespaces = [link.server.name(), link.load_ns().name()];
    let udp0 = namespaces.map(super::procstat::udp_counters);
    let tcp0 = super::procstat::tcp_counters(link.server.name());
    let t0 = Instant::now();
    let log_dir = srv.dir.path().to_path_buf();
    let run = run_storm(&bins.loadgen, &link, &mut srv, &plan, &addrs, &log_dir);
    let wall = t0.elapsed();
    let cpu1 = super::procstat::thread_cpu(srv.provd.pid());
    let udp1 = namespaces.map(super::procstat::udp_counters);
    let tcp1 = super::procstat::tcp_counters(link.server.name());
    let run = run?;
    for ((name, a), b) in ["server", "load"].iter().zip(&udp0).zip(&udp1) {
        eprintln!(
            "bench: storm: UDP in the {name} namespace: {}",
            super::procstat::udp_delta(a, b)
        );
    }
    if plan.routers + plan.phones > 0 {
        eprintln!(
            "bench: storm: TCP in the server namespace: {}",
            super::procstat::tcp_delta(&tcp0, &tcp1)
        );
    }
    for l in run.stderr.lines().filter(|l| l.starts_with("storm ")) {
        eprintln!("bench: {l}");
    }
    if plan.kill_at.is_none() {
        eprintln!(
            "bench: storm: provd CPU by thread, seconds per second: {}",
            super::procstat::cpu_summary(&cpu0, &cpu1, wall)
        );
    }
    if let Some((k, r)) = run.kill {
        eprintln!(
            "bench: storm: provd SIGKILLed {:.1} s in, ready again {:.1} s in",
            k.as_secs_f64(),
            r.as_secs_f64()
        );
    }
    println!("{}", run.result.line);
    let report_dir = tools::workspace_root().join("target/bench-report");
    match write_report(&report_dir, &plan, &run) {
        Ok(md) => eprintln!("bench: storm: report {}", md.display()),
        Err(e) => eprintln!("bench: storm: writing the report failed: {e:#}"),
    }
    let problems = problems(&run.result, run.exit_ok);
    eprintln!(
        "bench: storm: provd's sockets that dropped datagrams (port: drops): {}",
        port_drops(link.server.name())
    );
    srv.provd.terminate()?;
    // Each role's closing counters: where the storm's retries came from, seen from provd.
    for l in srv
        .provd
        .stderr_text()
        .lines()
        .filter(|l| l.contains("final counters"))
    {
        eprintln!("bench: storm: provd {}", l.trim());
    }
    if !problems.is_empty() {
        bail!(
            "bench storm: {}; provd log tail:\n{}",
            problems.join("; "),
            srv.provd.log_tail(15)
        );
    }
    Ok(())
}

/// `storm.md` (the RESULT line, the funnel, the chart) and `storm.png`.
fn write_report(dir: &Path, plan: &Plan, run: &StormRun) -> Result<PathBuf> {
    std::fs::create_dir_all(dir)?;
    let md = dir.join("storm.md");
    let png = dir.join("storm.png");
    let mut t = format!(
        "# Boot storm: {} behind {} CMTSs, powered on within {} ms\n\n",
        plan.fleet(),
        plan.relays,
        plan.spread_ms
    );
    if let Some((k, r)) = run.kill {
        let _ = writeln!(
            t,
            "provd SIGKILLed {:.1} s into the storm and started again (ready at {:.1} s).\n",
            k.as_secs_f64(),
            r.as_secs_f64()
        );
    }
    let _ = writeln!(t, "![devices online over time](storm.png)\n\n```");
    let _ = writeln!(t, "{}", run.result.line);
    for l in run.stderr.lines().filter(|l| l.starts_with("storm ")) {
        let _ = writeln!(t, "{l}");
    }
    let _ = writeln!(t, "```");
    std::fs::write(&md, t)?;
    chart(&png, plan, &run.timeline)?;
    Ok(md)
}

fn chart(png: &Path, plan: &Plan, timeline: &[(f64, [u32; 4])]) -> Result<()> {
    super::report::register_font()?;
    let root = BitMapBackend::new(png, (1200, 640)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| anyhow!("{e}"))?;
    let t_max = timeline.last().map_or(1.0, |l| l.0).max(1.0);
    let counts = [plan.cms, plan.mtas, plan.routers, plan.phones];
    let top = f64::from(counts.iter().copied().max().unwrap_or(1)).max(1.0) * 1.05;
    let mut c = ChartBuilder::on(&root)
        .caption(
            format!(
                "Devices online after power-on ({}, {} CMTSs)",
                plan.fleet(),
                plan.relays
            ),
            ("sans-serif", 24),
        )
        .margin(20)
        .x_label_area_size(50)
        .y_label_area_size(90)
        .build_cartesian_2d(0f64..t_max, 0f64..top)
        .map_err(|e| anyhow!("{e}"))?;
    c.configure_mesh()
        .x_desc("seconds since the first power-on")
        .y_desc("devices online")
        .label_style(("sans-serif", 15))
        .draw()
        .map_err(|e| anyhow!("{e}"))?;
    for (name, colour, pick) in [
        ("cable modems", RGBColor(31, 119, 180), 0usize),
        ("eMTAs", RGBColor(214, 110, 40), 1),
        ("eRouters", RGBColor(44, 160, 44), 2),
        ("phones", RGBColor(148, 103, 189), 3),
    ] {
        if counts[pick] == 0 {
            continue;
        }
        let pts: Vec<(f64, f64)> = timeline
            .iter()
            .map(|(t, by)| (*t, f64::from(by[pick])))
            .collect();
        c.draw_series(LineSeries::new(pts, colour.stroke_width(3)))
            .map_err(|e| anyhow!("{e}"))?
            .label(name)
            .legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 20, y)], colour.stroke_width(3))
            });
    }
    c.configure_series_labels()
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .label_font(("sans-serif", 15))
        .position(SeriesLabelPosition::LowerRight)
        .draw()
        .map_err(|e| anyhow!("{e}"))?;
    root.present().map_err(|e| anyhow!("{e}"))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(cms: u32, mtas: u32, relays: u32) -> Plan {
        Plan {
            cms,
            mtas,
            routers: 0,
            phones: 0,
            relays,
            max_connections: None,
            spread_ms: 1000,
            deadline_s: 60.0,
            kill_at: None,
        }
    }

    #[test]
    fn the_address_plan_fits_each_cmts_and_overlaps_nothing() {
        // The last field: whether the fleet fits the test network (else RFC 6598's).
        for (cms, mtas, cpes, relays, small) in [
            (300, 300, 600, 4, true),
            (10_000, 10_000, 0, 20, true),
            (10_000, 10_000, 20_000, 20, false),
            (100_000, 100_000, 0, 20, false),
            (100_000, 100_000, 200_000, 84, false),
        ] {
            let mut p = plan(cms, mtas, relays);
            p.routers = cpes / 2;
            p.phones = cpes - cpes / 2;
            let a = AddressPlan::new(&p).unwrap();
            let mut ranges: Vec<(u32, u32)> = Vec::new();
            let mut giaddrs = Vec::new();
            for c in &a.cmts {
                let ((cm_g, cm), (mta_g, mta), (cpe_g, cpe)) = (c.cm, c.mta, c.cpe);
                assert!(cm.size() - POOL_OFFSET - 2 >= cms.div_ceil(relays));
                assert!(mta.size() - POOL_OFFSET - 2 >= mtas.div_ceil(relays));
                assert_eq!(cpe.is_some(), cpes > 0);
                if let Some(cpe) = cpe {
                    assert!(cpe.size() - POOL_OFFSET - 2 >= cpes.div_ceil(relays));
                }
                for s in [Some(cm), Some(mta), cpe].into_iter().flatten() {
                    assert_eq!(u32::from(s.net) % s.size(), 0, "{s:?} aligned");
                    ranges.push((u32::from(s.net), u32::from(s.net) + s.size() - 1));
                }
                for g in [cm_g, mta_g, cpe_g] {
                    assert_eq!(u32::from(g) >> 8, u32::from(GIADDR_NET) >> 8);
                    giaddrs.push(g);
                }
                assert_eq!(u32::from(mta_g), u32::from(cm_g) + 1);
                assert_eq!(u32::from(cpe_g), u32::from(cm_g) + 2);
            }
            let n = giaddrs.len();
            giaddrs.sort_unstable();
            giaddrs.dedup();
            assert_eq!(giaddrs.len(), n, "giaddrs repeat");
            ranges.sort_unstable();
            for w in ranges.windows(2) {
                assert!(w[0].1 < w[1].0, "{w:?} overlap");
            }
            let net = u32::from(a.client_net.0);
            let end = net + ((1u64 << (32 - a.client_net.1)) - 1) as u32;
            assert!(ranges.iter().all(|r| r.0 >= net && r.1 <= end));
            assert_eq!(a.client_net == CLIENT_NET, small, "{cms}+{mtas}+{cpes}");
        }
        assert!(AddressPlan::new(&plan(1, 1, 0)).is_err());
        assert!(AddressPlan::new(&plan(1, 1, 85)).is_err());
    }

    #[test]
    fn the_config_names_every_cmts_and_role() {
        let mut p = plan(1000, 1000, 3);
        let a = AddressPlan::new(&p).unwrap();
        let t = provd_toml(&p, &a, Path::new("/tmp/x"));
        assert_eq!(t.matches("[[shared_network]]").count(), 3);
        for section in ["[tftp]", "[time]", "[syslog]", "[mta]", "enforce = true"] {
            assert!(t.contains(section), "{section}");
        }
        assert!(t.contains(&format!("shared_secret = \"{SHARED_SECRET}\"")));
        assert!(t.contains("relays = [\"198.18.3.7\", \"198.18.3.8\", \"198.18.3.9\"]"));
        // No routers or phones: no CPE subnets, no ACS, no profile server.
        for absent in ["classes = [\"erouter\", \"phone\"]", "[http]", "[acs]"] {
            assert!(!t.contains(absent), "{absent}");
        }
        p.routers = 10;
        let a = AddressPlan::new(&p).unwrap();
        let t = provd_toml(&p, &a, Path::new("/tmp/x"));
        assert_eq!(t.matches("classes = [\"erouter\", \"phone\"]").count(), 3);
        for present in ["[http]", "[acs]", "auth = \"digest\""] {
            assert!(t.contains(present), "{present}");
        }
    }

    #[test]
    fn provd_gets_the_descriptors_its_unit_gives_it() {
        assert_eq!(unit_nofile(), Some(1_048_576));
    }

    #[test]
    fn a_result_with_lost_devices_or_doubles_is_a_problem() {
        let ok = StormResult::parse(
            "x\nRESULT storm devices=4 cms=2 mtas=2 online=4 lost=0 double_allocations=0\n",
        )
        .unwrap();
        assert!(problems(&ok, true).is_empty());
        assert_eq!(problems(&ok, false), ["the generator failed"]);
        let lost = StormResult::parse(
            "RESULT storm devices=4 cms=2 mtas=2 online=3 lost=1 double_allocations=1\n",
        )
        .unwrap();
        let p = problems(&lost, false);
        assert_eq!(p.len(), 3, "{p:?}");
        assert!(StormResult::parse("RESULT stormy x=1").is_none());
        let udp = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode ref pointer drops\n\
                   1: 020212C6:0043 00000000:0000 07 00000000:00000000 00:00000000 00000000     0        0 1 2 0 17\n\
                   2: 020212C6:00A2 00000000:0000 07 00000000:00000000 00:00000000 00000000     0        0 1 2 0 0\n\
                   3: 020212C6:9C40 00000000:0000 07 00000000:00000000 00:00000000 00000000     0        0 1 2 0 5\n\
                   4: 020212C6:C350 00000000:0000 07 00000000:00000000 00:00000000 00000000     0        0 1 2 0 6\n";
        let d = parse_udp_drops(udp);
        assert_eq!(d.get("67"), Some(&17));
        assert_eq!(d.get("ephemeral"), Some(&11));
        assert_eq!(d.len(), 2);
        assert_eq!(
            parse_timeline("t_s,cm_online,mta_online\n0.00,0,0\n0.25,3,1\nbad\n"),
            [(0.0, [0, 0, 0, 0]), (0.25, [3, 1, 0, 0])]
        );
        assert_eq!(
            parse_timeline("t_s,a,b,c,d\n1.00,1,2,3,4\n1.25,1,2,x,4\n"),
            [(1.0, [1, 2, 3, 4])]
        );
    }
}
