//! DHCP findings (issue 18 items 1 and 2), judged on what tcpdump saw and what provd exported.
//!
//! `lease-disk-full`: the lease directory sits on a 1 MiB tmpfs. Under perfdhcp load a filler
//! file takes every free byte, later it is deleted. The review's baseline: after the space came
//! back, 0 of 832 exchanges were ACKed over 20 s while OFFERs kept going out, and `sent_ack`
//! read 2,870 for 1,398 ACKs on the wire.
//!
//! `relay-flood`: one relay agent's subscriber sends DISCOVERs for 600 random MACs in 3 s into
//! a shared network of 240 addresses, then subscribers on another circuit and behind another
//! relay ask for leases; then the flood again with a new remote-id per packet (no per-source
//! limit can tell those apart), and more clients ask. The review's baseline: the flood took
//! all 240 addresses and nobody new was served for 28 s.

use std::collections::BTreeMap;
use std::io::Write as _;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result, bail, ensure};
use provd_dhcp::{MessageType, Op};
use provd_rig::pcap::{DhcpPacket, read_dhcp};
use provd_rig::perfdhcp::Load;
use provd_rig::topo::{LOAD_GIADDR, LOAD_IF, SERVER_IP};
use provd_rig::{Capture, Netns, Provd, Topology, cmd, leases};

use super::{Ctx, Scenarios};

const PROVD_TEMPLATE: &str = include_str!("../../../../tests/e2e/provd.toml.in");
/// The API (for `/metrics`) inside the server's namespace.
const API_PORT: u16 = 9180;
/// Exchanges per second: light enough that 1 MiB holds every lease of the run twice over
/// (about 41 bytes a record, and a recovery writes the whole table again).
const RATE: u32 = 500;
/// The phases, from the start of the load.
const FILL_AT: Duration = Duration::from_secs(3);
const FREE_AFTER_LOST: Duration = Duration::from_secs(4);
const LOAD_SECS: u32 = 18;
/// How long provd may take to notice (a write must fail) and to recover (it retries once a
/// second) before the scenario calls it wedged.
const NOTICE_WITHIN: Duration = Duration::from_secs(5);
/// After the disk is freed, ACKs must flow again from this long on.
const RESUME_WITHIN: Duration = Duration::from_secs(3);

pub fn scenarios() -> Scenarios<Ctx> {
    vec![
        (
            "lease-disk-full",
            lease_disk_full as fn(&Ctx, &Path) -> Result<()>,
        ),
        ("relay-flood", relay_flood),
    ]
}

fn note(msg: impl AsRef<str>) {
    eprintln!("  {}", msg.as_ref());
}

/// A size-limited tmpfs, unmounted (lazily, so a stray holder cannot keep it) when dropped.
struct Tmpfs {
    path: PathBuf,
}

impl Tmpfs {
    fn mount(path: &Path, size: &str) -> Result<Tmpfs> {
        std::fs::create_dir_all(path)?;
        let out = cmd::output_timeout(
            Command::new("mount")
                .args(["-t", "tmpfs", "-o", &format!("size={size},mode=0755")])
                .arg("provd-e2e-leasefs")
                .arg(path),
            Duration::from_secs(10),
        )?;
        ensure!(
            out.status.success(),
            "mounting a {size} tmpfs at {}: {}",
            path.display(),
            String::from_utf8_lossy(&out.stderr).trim()
        );
        Ok(Tmpfs {
            path: path.to_path_buf(),
        })
    }

    /// Writes `path` until the filesystem refuses a byte more; returns the bytes written.
    fn fill(&self, name: &str) -> Result<u64> {
        let mut f = std::fs::File::create(self.path.join(name))?;
        let chunk = vec![0x5a_u8; 4096];
        let mut written = 0u64;
        loop {
            match f.write(&chunk) {
                Ok(0) => break,
                Ok(n) => written += n as u64,
                Err(e) if e.raw_os_error() == Some(libc::ENOSPC) => break,
                Err(e) => return Err(e).context("filling the lease filesystem"),
            }
        }
        // Single bytes too: the filesystem must have nothing left at all.
        while let Ok(1) = f.write(&[0]) {
            written += 1;
        }
        Ok(written)
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.path).status();
    }
}

/// The sum of every sample of `family` whose labels contain each of `labels`.
fn metric(text: &str, family: &str, labels: &[&str]) -> Option<f64> {
    let mut found = None;
    for line in text.lines() {
        let Some(rest) = line.strip_prefix(family) else {
            continue;
        };
        let (lbl, value) = match rest.strip_prefix('{') {
            Some(r) => match r.split_once("} ") {
                Some((l, v)) => (l, v),
                None => continue,
            },
            None => match rest.strip_prefix(' ') {
                Some(v) => ("", v),
                None => continue,
            },
        };
        if labels.iter().all(|l| lbl.split(',').any(|x| x == *l)) {
            let v: f64 = value.trim().parse().ok()?;
            *found.get_or_insert(0.0) += v;
        }
    }
    found
}

fn scrape(ns: &Netns) -> Result<String> {
    let out = cmd::output_timeout(
        ns.command("curl").args([
            "-sS",
            "--max-time",
            "5",
            &format!("http://127.0.0.1:{API_PORT}/metrics"),
        ]),
        Duration::from_secs(10),
    )?;
    ensure!(
        out.status.success(),
        "GET /metrics: {}",
        String::from_utf8_lossy(&out.stderr).trim()
    );
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Polls `/metrics` until `ok` holds on it or `within` passes; the last scrape and when it held.
fn wait_metrics(
    ns: &Netns,
    within: Duration,
    ok: impl Fn(&str) -> bool,
) -> Result<(String, Option<SystemTime>)> {
    let until = Instant::now() + within;
    loop {
        let text = scrape(ns)?;
        if ok(&text) {
            return Ok((text, Some(SystemTime::now())));
        }
        if Instant::now() >= until {
            return Ok((text, None));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn since_epoch(t: SystemTime) -> Duration {
    t.duration_since(UNIX_EPOCH).unwrap_or_default()
}

fn count(pkts: &[DhcpPacket], op: Op, t: MessageType, from: Duration, to: Duration) -> usize {
    pkts.iter()
        .filter(|p| p.op == op && p.msg_type == Some(t) && p.ts >= from && p.ts < to)
        .count()
}

/// Item 1: a full lease disk must not wedge DHCP. While durability is lost provd offers nothing
/// (an OFFER it could not ACK) and says so in its metrics; once the space is back it recovers
/// by itself and ACKs again; `sent` counts exactly the ACKs that left; every ACK on the wire is
/// in the durable table.
fn lease_disk_full(ctx: &Ctx, dir: &Path) -> Result<()> {
    // Declared before the server, so it is unmounted after provd is gone on every path.
    let fs = Tmpfs::mount(&dir.join("leasefs"), "1m")?;
    let topo = Topology::load()?;
    let config = format!(
        "{}\n[api]\nbind = \"127.0.0.1\"\nport = {API_PORT}\nmetrics_open = true\n",
        PROVD_TEMPLATE
            .replace("@LEASE_DIR@", &fs.path.join("db").to_string_lossy())
            .replace("@STORE_DB@", &dir.join("store.db").to_string_lossy())
    );
    let mut provd = ctx.start_dhcp_server(dir, &config, &topo.server)?;
    let r = disk_full_run(&topo, dir, &fs, &mut provd);
    let stopped = provd.stop();
    let problems = match r {
        Ok(run) => {
            let mut problems = run.problems;
            match provd.durable_leases() {
                Ok(table) => {
                    let check = leases::check_table(&run.acked, &table);
                    note(format!(
                        "durable table: {} leases, {} of {} ACKed pairs present",
                        table.len(),
                        check.matched,
                        run.acked.len()
                    ));
                    if !check.ok() {
                        problems.push(format!("durable lease table: {}", check.describe()));
                    }
                }
                Err(e) => problems.push(format!("reading the durable lease table: {e:#}")),
            }
            problems
        }
        Err(e) => vec![format!("{e:#}\nprovd log tail:\n{}", provd.log_tail(20))],
    };
    if !problems.is_empty() {
        bail!(problems.join("; "));
    }
    stopped
}

struct DiskFullRun {
    problems: Vec<String>,
    /// Last address ACKed per client on the wire.
    acked: BTreeMap<[u8; 6], Ipv4Addr>,
}

fn disk_full_run(
    topo: &Topology,
    dir: &Path,
    fs: &Tmpfs,
    provd: &mut Provd,
) -> Result<DiskFullRun> {
    let shards = 2.0; // `workers = 2` in the template
    let cap = Capture::start(topo.load_ns(), LOAD_IF, "udp port 67", "load-side", dir)?;
    let load = Load {
        local: LOAD_GIADDR,
        server: SERVER_IP,
        rate: RATE,
        clients: 50_000,
        period_secs: LOAD_SECS,
        exit_wait_us: 2_000_000,
        drop_time_secs: 2.0,
        seed: std::process::id(),
    };
    let args = load.args();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    note(format!("perfdhcp {}", args.join(" ")));
    let mut pd = topo.load_ns().spawn("perfdhcp", "perfdhcp", &args, dir)?;
    let started = Instant::now();
    std::thread::sleep(FILL_AT);
    provd.check_alive()?;
    let filled_at = SystemTime::now();
    let filler = fs.fill("filler")?;
    note(format!(
        "filled the 1 MiB lease filesystem ({filler} bytes of filler) {:.1}s into the load",
        started.elapsed().as_secs_f64()
    ));

    let mut problems = Vec::new();
    // Lost: every shard's log has failed a write, and the role says so.
    let lost = |m: &str| {
        metric(m, "provd_dhcp_lease_log_durable", &[]) == Some(0.0)
            && metric(m, "provd_role_serving", &["role=\"dhcp\""]) == Some(0.0)
    };
    let (m, lost_at) = wait_metrics(&topo.server, NOTICE_WITHIN, lost)?;
    let lost_at = match lost_at {
        Some(t) => t,
        None => {
            problems.push(format!(
                "{NOTICE_WITHIN:?} after the disk filled, provd_dhcp_lease_log_durable = {:?} (of {shards} shards) and provd_role_serving{{role=\"dhcp\"}} = {:?}: the loss of durability is not visible",
                metric(&m, "provd_dhcp_lease_log_durable", &[]),
                metric(&m, "provd_role_serving", &["role=\"dhcp\""])
            ));
            SystemTime::now()
        }
    };
    note(format!(
        "lost: lease_log_durable {:?}, role_serving(dhcp) {:?}, lease_log_failures {:?}",
        metric(&m, "provd_dhcp_lease_log_durable", &[]),
        metric(&m, "provd_role_serving", &["role=\"dhcp\""]),
        metric(&m, "provd_dhcp_lease_log_failures_total", &[])
    ));
    std::thread::sleep(FREE_AFTER_LOST);
    provd.check_alive()?;
    std::fs::remove_file(fs.path.join("filler")).context("freeing the lease filesystem")?;
    let freed_at = SystemTime::now();
    note(format!(
        "freed the disk {:.1}s into the load",
        started.elapsed().as_secs_f64()
    ));
    let durable = |m: &str| {
        metric(m, "provd_dhcp_lease_log_durable", &[]) == Some(shards)
            && metric(m, "provd_role_serving", &["role=\"dhcp\""]) == Some(1.0)
    };
    let (m, back_at) = wait_metrics(&topo.server, NOTICE_WITHIN, durable)?;
    match back_at {
        Some(t) => note(format!(
            "recovered {:.1}s after the disk was freed: lease_log_recoveries {:?}",
            t.duration_since(freed_at).unwrap_or_default().as_secs_f64(),
            metric(&m, "provd_dhcp_lease_log_recoveries_total", &[])
        )),
        None => problems.push(format!(
            "{NOTICE_WITHIN:?} after the disk was freed, provd_dhcp_lease_log_durable = {:?} of {shards}: no recovery",
            metric(&m, "provd_dhcp_lease_log_durable", &[])
        )),
    }

    let st = pd.wait_timeout(Duration::from_secs(u64::from(LOAD_SECS) + 30))?;
    ensure!(
        matches!(st.code(), Some(0) | Some(3)),
        "perfdhcp exited {st}: {}",
        pd.stderr_tail(10)
    );
    std::thread::sleep(Duration::from_secs(1));
    provd.check_alive()?;
    let m = scrape(&topo.server)?;
    let (path, cstats) = cap.stop()?;
    let (pkts, _) = read_dhcp(&path, false)?;

    let end = since_epoch(SystemTime::now());
    let (filled, lost, freed) = (
        since_epoch(filled_at),
        since_epoch(lost_at),
        since_epoch(freed_at),
    );
    let window =
        |t: MessageType, op: Op, from: Duration, to: Duration| count(&pkts, op, t, from, to);
    let before = (
        window(MessageType::Request, Op::Request, Duration::ZERO, filled),
        window(MessageType::Ack, Op::Reply, Duration::ZERO, filled),
    );
    // From half a second after every shard said it lost durability (replies decided before
    // may still be leaving) to the moment the disk was freed.
    let quiet_from = lost + Duration::from_millis(500);
    let outage = (
        window(MessageType::Discover, Op::Request, quiet_from, freed),
        window(MessageType::Offer, Op::Reply, quiet_from, freed),
        window(MessageType::Ack, Op::Reply, quiet_from, freed),
    );
    let resumed_from = freed + RESUME_WITHIN;
    let after = (
        window(MessageType::Request, Op::Request, resumed_from, end),
        window(MessageType::Ack, Op::Reply, resumed_from, end),
    );
    note(format!(
        "wire before the fill: {} REQUESTs, {} ACKs; while lost: {} DISCOVERs, {} OFFERs, {} ACKs; from {RESUME_WITHIN:?} after the free: {} REQUESTs, {} ACKs",
        before.0, before.1, outage.0, outage.1, outage.2, after.0, after.1
    ));
    ensure!(
        before.1 > 0,
        "no ACK before the disk filled: the load never ran"
    );
    if outage.0 == 0 {
        problems
            .push("no DISCOVER reached provd while its log was lost: the test did not test".into());
    }
    if outage.1 + outage.2 > 0 {
        problems.push(format!(
            "{} OFFERs and {} ACKs left while the lease log could make nothing durable",
            outage.1, outage.2
        ));
    }
    if after.0 == 0 || (after.1 as f64) < 0.95 * after.0 as f64 {
        problems.push(format!(
            "after the disk was freed, {} of {} exchanges were ACKed: DHCP did not resume by itself",
            after.1, after.0
        ));
    }

    let mut acked = BTreeMap::new();
    let mut acks_on_wire = 0u64;
    for p in &pkts {
        if p.op == Op::Reply && p.msg_type == Some(MessageType::Ack) {
            acks_on_wire += 1;
            if let Some(mac) = p.mac {
                acked.insert(mac, p.yiaddr);
            }
        }
    }
    let counted =
        metric(&m, "provd_dhcp_messages_sent_total", &["type=\"ack\""]).unwrap_or(0.0) as u64;
    let dropped = metric(
        &m,
        "provd_dhcp_drops_total",
        &["reason=\"durability_lost\""],
    )
    .unwrap_or(0.0);
    note(format!(
        "provd counted {counted} ACKs sent, tcpdump saw {acks_on_wire} (kernel dropped {}); {dropped} packets dropped as durability_lost; {} distinct clients ACKed",
        cstats.dropped_by_kernel,
        acked.len()
    ));
    if counted.abs_diff(acks_on_wire) > cstats.dropped_by_kernel {
        problems.push(format!(
            "provd counted {counted} ACKs sent, the wire carried {acks_on_wire}: the counter is not what left"
        ));
    }
    Ok(DiskFullRun { problems, acked })
}

// ---------------------------------------------------------------------------------------------

/// The second relay of the flooded shared network, beside [`LOAD_GIADDR`], on the load link.
const OTHER_RELAY: Ipv4Addr = Ipv4Addr::new(198, 18, 4, 3);
/// The flooded network: 240 addresses, as in the review.
const FLOOD_POOL: (Ipv4Addr, Ipv4Addr) = (
    Ipv4Addr::new(198, 19, 0, 10),
    Ipv4Addr::new(198, 19, 0, 249),
);
const FLOOD_PACKETS: u32 = 600;
const FLOOD_SECS: u64 = 3;
/// Legitimate clients per group.
const CLIENTS: u32 = 20;

fn flood_config(dir: &Path) -> String {
    format!(
        r#"[server]
server_id = "198.18.0.1"
lease_dir = "{d}/leases"
workers = 2
[store]
path = "{d}/store.db"
[api]
bind = "127.0.0.1"
port = {API_PORT}
metrics_open = true
[[class]]
name = "any"
match = "*"
lease_time = 3600
[[shared_network]]
name = "plant"
relays = ["{LOAD_GIADDR}", "{OTHER_RELAY}"]
  [[shared_network.subnet]]
  prefix = "198.19.0.0/24"
  routers = ["198.19.0.1"]
    [[shared_network.subnet.pool]]
    start = "{}"
    end = "{}"
"#,
        FLOOD_POOL.0,
        FLOOD_POOL.1,
        d = dir.display()
    )
}

/// Option 82: circuit-id and remote-id.
fn agent_info(circuit: &[u8], remote: &[u8]) -> Vec<u8> {
    let mut v = vec![1, circuit.len() as u8];
    v.extend_from_slice(circuit);
    v.extend_from_slice(&[2, remote.len() as u8]);
    v.extend_from_slice(remote);
    v
}

/// A relayed DISCOVER, or a REQUEST (selecting) for `requested`.
fn relayed(
    kind: MessageType,
    mac: [u8; 6],
    xid: u32,
    giaddr: Ipv4Addr,
    agent: &[u8],
    requested: Option<Ipv4Addr>,
) -> Result<Vec<u8>> {
    use provd_dhcp::{Header, MessageWriter, code};
    let mut chaddr = [0u8; 16];
    chaddr[..6].copy_from_slice(&mac);
    let mut h = Header::reply(xid, chaddr, 1, 6);
    h.op = 1;
    h.giaddr = giaddr;
    let mut buf = Vec::new();
    let mut w = MessageWriter::new(&mut buf, &h, 1500)?;
    w.option(code::MESSAGE_TYPE, &[kind as u8])?;
    if let Some(a) = requested {
        w.ipv4(code::REQUESTED_IP, a)?;
        w.ipv4(code::SERVER_ID, SERVER_IP)?;
    }
    w.option(code::RELAY_AGENT_INFO, agent)?;
    w.finish()?;
    Ok(buf)
}

/// A relay's socket (its address, port 67) in the load namespace.
fn relay_socket(giaddr: Ipv4Addr) -> Result<std::net::UdpSocket> {
    let s = std::net::UdpSocket::bind((giaddr, 67))
        .with_context(|| format!("binding the relay socket {giaddr}:67"))?;
    s.set_read_timeout(Some(Duration::from_millis(200)))?;
    Ok(s)
}

/// The reply to `xid` of type `want` within `within`, skipping everything else.
fn await_reply(
    s: &std::net::UdpSocket,
    xid: u32,
    want: MessageType,
    within: Duration,
) -> Option<Ipv4Addr> {
    let until = Instant::now() + within;
    let mut buf = [0u8; 1500];
    while Instant::now() < until {
        let Ok(n) = s.recv(&mut buf) else { continue };
        let Ok(m) = provd_dhcp::Message::parse(&buf[..n]) else {
            continue;
        };
        if m.xid() == xid {
            match m.message_type() {
                Ok(Some(t)) if t == want => return Some(m.yiaddr()),
                Ok(Some(MessageType::Nak)) => return None,
                _ => {}
            }
        }
    }
    None
}

/// `n` clients behind `giaddr`, each its own subscriber (remote-id `tag`-i), DORA one after the
/// other, three tries each: how many were ACKed an address of the pool.
fn subscribers_dora(giaddr: Ipv4Addr, tag: u8, n: u32) -> Result<u32> {
    let s = relay_socket(giaddr)?;
    let mut acked = 0;
    for i in 0..n {
        let mac = [0x02, 0x5c, tag, 0, (i >> 8) as u8, i as u8];
        let agent = agent_info(b"cmts0/0/2", &[b'c', b'm', tag, i as u8]);
        for attempt in 0..3u32 {
            let xid = u32::from_be_bytes([tag, 0, i as u8, attempt as u8]);
            s.send_to(
                &relayed(MessageType::Discover, mac, xid, giaddr, &agent, None)?,
                (SERVER_IP, 67),
            )?;
            let Some(offered) = await_reply(&s, xid, MessageType::Offer, Duration::from_secs(1))
            else {
                continue;
            };
            s.send_to(
                &relayed(
                    MessageType::Request,
                    mac,
                    xid,
                    giaddr,
                    &agent,
                    Some(offered),
                )?,
                (SERVER_IP, 67),
            )?;
            if let Some(a) = await_reply(&s, xid, MessageType::Ack, Duration::from_secs(1))
                && (FLOOD_POOL.0..=FLOOD_POOL.1).contains(&a)
            {
                acked += 1;
                break;
            }
        }
    }
    Ok(acked)
}

/// The flood: [`FLOOD_PACKETS`] DISCOVERs for random MACs over [`FLOOD_SECS`] from
/// [`LOAD_GIADDR`], all from one subscriber or each from its own; how many were OFFERed.
fn flood(one_subscriber: bool, seed: u32) -> Result<u32> {
    let s = relay_socket(LOAD_GIADDR)?;
    s.set_nonblocking(true)?;
    let gap = Duration::from_secs(FLOOD_SECS) / FLOOD_PACKETS;
    let mut offers = 0;
    let mut buf = [0u8; 1500];
    let mut drain = |offers: &mut u32| {
        while let Ok(n) = s.recv(&mut buf) {
            if let Ok(m) = provd_dhcp::Message::parse(&buf[..n])
                && m.message_type() == Ok(Some(MessageType::Offer))
                && m.xid() >> 24 == 0xf1
            {
                *offers += 1;
            }
        }
    };
    let start = Instant::now();
    for i in 0..FLOOD_PACKETS {
        let r = seed
            .wrapping_mul(2_654_435_761)
            .wrapping_add(i.wrapping_mul(40_503));
        let b = r.to_be_bytes();
        let mac = [0x02, 0xa7, b[0], b[1], b[2], b[3]];
        let remote: Vec<u8> = if one_subscriber {
            b"attacker-cm".to_vec()
        } else {
            format!("forged-{r:08x}").into_bytes()
        };
        let xid = 0xf100_0000 | i;
        let pkt = relayed(
            MessageType::Discover,
            mac,
            xid,
            LOAD_GIADDR,
            &agent_info(b"cmts0/0/1", &remote),
            None,
        )?;
        let _ = s.send_to(&pkt, (SERVER_IP, 67));
        drain(&mut offers);
        let next = start + gap * (i + 1);
        if let Some(wait) = next.checked_duration_since(Instant::now()) {
            std::thread::sleep(wait);
        }
    }
    let until = Instant::now() + Duration::from_millis(500);
    while Instant::now() < until {
        drain(&mut offers);
        std::thread::sleep(Duration::from_millis(10));
    }
    Ok(offers)
}

/// Item 2: one subscriber's flood is held to its burst, leaving addresses for other circuits
/// and the other relay; a flood that forges a new subscriber per packet takes the free
/// addresses with OFFERs, but offers nobody takes up go to the next clients, so they are
/// served too. Refusals and reused offers are counted.
fn relay_flood(ctx: &Ctx, dir: &Path) -> Result<()> {
    let topo = Topology::load()?;
    topo.load_ns()
        .ip(&["addr", "add", &format!("{OTHER_RELAY}/32"), "dev", LOAD_IF])?;
    let mut provd = ctx.start_dhcp_server(dir, &flood_config(dir), &topo.server)?;
    let r = relay_flood_run(&topo);
    let m = scrape(&topo.server).unwrap_or_default();
    let stopped = provd.stop();
    let problems = match r {
        Ok(p) => p,
        Err(e) => vec![format!("{e:#}\nprovd log tail:\n{}", provd.log_tail(20))],
    };
    note(format!(
        "provd: drops agent_limit {:?}, relay_limit {:?}, pool_exhausted {:?}; offers reused {:?}",
        metric(&m, "provd_dhcp_drops_total", &["reason=\"agent_limit\""]),
        metric(&m, "provd_dhcp_drops_total", &["reason=\"relay_limit\""]),
        metric(&m, "provd_dhcp_drops_total", &["reason=\"pool_exhausted\""]),
        metric(&m, "provd_dhcp_offers_reused_total", &[]),
    ));
    if !problems.is_empty() {
        bail!(problems.join("; "));
    }
    stopped
}

fn relay_flood_run(topo: &Topology) -> Result<Vec<String>> {
    let seed = std::process::id();
    let mut problems = Vec::new();
    let offers = topo.load_ns().run_in(move || flood(true, seed))?;
    note(format!(
        "one subscriber, {FLOOD_PACKETS} random MACs in {FLOOD_SECS}s: {offers} OFFERed (of 240 addresses)"
    ));
    // Its burst (32) and a few refills; far from the pool.
    if offers > 40 {
        problems.push(format!(
            "one subscriber's flood was OFFERed {offers} addresses: its new clients are not limited"
        ));
    }
    let same_relay = topo
        .load_ns()
        .run_in(|| subscribers_dora(LOAD_GIADDR, 1, CLIENTS))?;
    let other_relay = topo
        .load_ns()
        .run_in(|| subscribers_dora(OTHER_RELAY, 2, CLIENTS))?;
    note(format!(
        "after it: {same_relay}/{CLIENTS} subscribers on another circuit of the same relay and {other_relay}/{CLIENTS} behind the other relay ACKed"
    ));
    if same_relay < CLIENTS || other_relay < CLIENTS {
        problems.push(format!(
            "after one subscriber's flood only {same_relay}/{CLIENTS} (same relay) and {other_relay}/{CLIENTS} (other relay) were served"
        ));
    }
    let offers = topo.load_ns().run_in(move || flood(false, seed ^ 0x5a5a))?;
    note(format!(
        "a new forged subscriber per packet, {FLOOD_PACKETS} in {FLOOD_SECS}s: {offers} OFFERed"
    ));
    // Offers older than offer_reuse_after_secs (2 s) change hands.
    std::thread::sleep(Duration::from_millis(2500));
    let after = topo
        .load_ns()
        .run_in(|| subscribers_dora(OTHER_RELAY, 3, CLIENTS))?;
    note(format!("after it: {after}/{CLIENTS} new subscribers ACKed"));
    if after < CLIENTS {
        problems.push(format!(
            "after a flood of forged subscribers only {after}/{CLIENTS} new subscribers were served: offers pin the pool"
        ));
    }
    Ok(problems)
}
