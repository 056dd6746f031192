//! The `dhcp` suite. Each scenario builds its own topology and server, and judges the server by
//! what real peers and tcpdump saw, not by the server's own account.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt::Write as _;
use std::net::{Ipv4Addr, SocketAddrV4};
use std::path::Path;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result, bail, ensure};
use provd_dhcp::{MessageType, Op};
use provd_rig::dhclient::{Dhclient, iface_addrs};
use provd_rig::pcap::{DhcpPacket, read_dhcp};
use provd_rig::perfdhcp::{self, Load};
use provd_rig::topo::{
    CLIENT_IF, DIRECT_POOL, LOAD_GIADDR, LOAD_IF, LOAD_POOL, RELAY_GIADDR, RELAYED_POOL, SERVER_IF,
    SERVER_IP, in_pool,
};
use provd_rig::{Capture, Netns, Topology, cmd, fmt_mac, hex, leases};

use super::Ctx;
use super::subject::Server;

#[path = "powercut.rs"]
mod powercut;

/// perfdhcp exchanges per second against provd. On the 2-core machines (perfdhcp, tcpdump and
/// the server sharing them) provd answered every packet up to 5000/s, where perfdhcp itself
/// starts missing replies that are on the wire; 4000/s keeps that margin.
pub const PROVD_RATE: u32 = 4000;
/// Against Kea (single-threaded, memfile): it saturates near 2200/s here; 2000/s runs with 0
/// drops.
pub const KEA_RATE: u32 = 2000;
/// Seconds of load in the `perfdhcp` scenario: at either default rate, enough exchanges for
/// every one of the [`LOAD_CLIENTS`] to get a lease.
pub const DEFAULT_LOAD_SECS: u32 = 26;
/// Distinct simulated clients (perfdhcp `-R`).
const LOAD_CLIENTS: u32 = 50_000;
/// The crash test kills the server this long after the load starts.
const KILL_AFTER: Duration = Duration::from_secs(5);
/// At most this many ACKed clients are re-asked on the wire after the restart (all of them when
/// there are fewer, a uniform random sample otherwise).
const MAX_VERIFY: usize = 2000;
/// `provd-loadgen verify` for the crash test: 64 requests outstanding, 1 s per attempt (3 each),
/// 120 s for the whole sample; the process itself gets [`VERIFY_TIMEOUT`].
const VERIFY_ARGS: [&str; 6] = ["--window", "64", "--timeout-ms", "1000", "--seconds", "120"];
const VERIFY_TIMEOUT: Duration = Duration::from_secs(180);
/// The direct dhclient renews this many seconds after binding (`supersede dhcp-renewal-time`).
const RENEW_AFTER: u32 = 4;
const BIND_TIMEOUT: Duration = Duration::from_secs(45);
const DHCP_FILTER: &str = "udp port 67 or udp port 68";

type Scenario = fn(&Ctx, &Path) -> Result<()>;

pub fn scenarios() -> Vec<(&'static str, Scenario)> {
    vec![
        ("dhclient-direct", dhclient_direct as Scenario),
        ("dhclient-relayed", dhclient_relayed),
        ("perfdhcp", perfdhcp_load),
        ("crash-kill9", crash_kill9),
        ("power-cut", powercut::power_cut),
    ]
}

/// What dhclient's BOUND/REBOOT event must mean: an address from `pool`, really configured on
/// the client's interface, and the server's ACK for it on the wire. Returns the address and ACK.
fn check_bound(
    bound: &provd_rig::dhclient::Event,
    client_ns: &Netns,
    cap: &Capture,
    mac: [u8; 6],
    pool: (Ipv4Addr, Ipv4Addr),
    pool_name: &str,
) -> Result<(Ipv4Addr, DhcpPacket)> {
    let addr = bound.addr.context("dhclient bound without an address")?;
    ensure!(
        in_pool(addr, pool),
        "dhclient bound {addr}, outside the {pool_name} pool {}-{}",
        pool.0,
        pool.1
    );
    let configured = iface_addrs(client_ns, CLIENT_IF)?;
    ensure!(
        configured.contains(&(addr, 24)),
        "dhclient reported {addr} but `ip -4 addr` on {CLIENT_IF} shows {configured:?}"
    );
    let ack = cap.wait_for(
        "ACK for the client's address",
        Duration::from_secs(5),
        |p| {
            p.iter()
                .find(|q| is_reply(q, MessageType::Ack) && q.mac == Some(mac) && q.yiaddr == addr)
                .cloned()
        },
    )?;
    Ok((addr, ack))
}

fn note(msg: impl AsRef<str>) {
    eprintln!("  {}", msg.as_ref());
}

fn is_reply(p: &DhcpPacket, t: MessageType) -> bool {
    p.op == Op::Reply && p.is(t)
}

fn is_request(p: &DhcpPacket, t: MessageType) -> bool {
    p.op == Op::Request && p.is(t)
}

/// Every captured packet for `mac`, one per line, for failure messages.
fn conversation(pkts: &[DhcpPacket], mac: [u8; 6]) -> String {
    let lines: Vec<String> = pkts
        .iter()
        .filter(|p| p.mac == Some(mac))
        .map(DhcpPacket::summary)
        .collect();
    if lines.is_empty() {
        "(nothing captured for this client)".into()
    } else {
        lines.join("\n")
    }
}

// ---------------------------------------------------------------------------------------------

/// dhclient on the server's own link: lease from the pool (broadcast DISCOVER, no relay), a
/// unicast RENEW with ciaddr set and its ACK, a RELEASE that reaches the server, and the same
/// address again on the next request.
fn dhclient_direct(ctx: &Ctx, dir: &Path) -> Result<()> {
    let topo = Topology::direct()?;
    let mut server = Server::start(ctx, &topo.server, dir)?;
    let cap = Capture::start(&topo.server, SERVER_IF, DHCP_FILTER, "server-side", dir)?;
    let mac = topo.links[0].b.mac()?;
    let dh = Dhclient::new(&dir.join("dhclient"), CLIENT_IF, Some(RENEW_AFTER))?;
    let mut client = dh.start(topo.client(), "dhclient-0", dir)?;

    // 1. A lease from the direct pool, configured on the interface.
    let bound = dh.wait_event(&mut client, &["BOUND", "REBOOT"], 0, BIND_TIMEOUT)?;
    let (addr, ack) = check_bound(&bound, topo.client(), &cap, mac, DIRECT_POOL, "direct")?;
    note(format!(
        "bound {addr}/24 on {CLIENT_IF} (mac {})",
        fmt_mac(&mac)
    ));
    let pkts = cap.dhcp_so_far()?;
    let discover = pkts
        .iter()
        .find(|q| is_request(q, MessageType::Discover) && q.mac == Some(mac))
        .with_context(|| format!("no DISCOVER captured:\n{}", conversation(&pkts, mac)))?;
    ensure!(
        discover.giaddr.is_unspecified() && discover.dst.ip().is_broadcast(),
        "expected a broadcast, unrelayed DISCOVER: {}",
        discover.summary()
    );
    ensure!(
        ack.server_id == Some(SERVER_IP),
        "ACK's server identifier is {:?}, expected {SERVER_IP}: {}",
        ack.server_id,
        ack.summary()
    );

    // 2. RENEW: unicast REQUEST with ciaddr = the lease, answered by an ACK for the same address.
    let (renew, renew_ack) = cap.wait_for(
        "RENEW REQUEST (ciaddr set) with its reply",
        Duration::from_secs(u64::from(RENEW_AFTER) + 20),
        |p| {
            p.iter()
                .filter(|q| {
                    is_request(q, MessageType::Request)
                        && q.mac == Some(mac)
                        && q.ciaddr == addr
                        && q.ts >= ack.ts
                })
                .find_map(|req| {
                    p.iter()
                        .find(|r| r.op == Op::Reply && r.xid == req.xid && r.ts >= req.ts)
                        .map(|r| (req.clone(), r.clone()))
                })
        },
    )?;
    ensure!(
        is_reply(&renew_ack, MessageType::Ack) && renew_ack.yiaddr == addr,
        "RENEW {} was answered by {}",
        renew.summary(),
        renew_ack.summary()
    );
    ensure!(
        *renew.dst.ip() == SERVER_IP,
        "expected the RENEW to be unicast to {SERVER_IP}: {}",
        renew.summary()
    );
    if *renew_ack.dst.ip() != addr {
        note(format!(
            "observation: RENEW ACK went to {} (RFC 2131 §4.1 says unicast to ciaddr {addr})",
            renew_ack.dst
        ));
    }
    let renew_events = dh.events().len();
    dh.wait_event(&mut client, &["RENEW"], 0, Duration::from_secs(10))?;
    note(format!(
        "renewed: {} -> {}",
        renew.summary(),
        renew_ack.summary()
    ));

    // 3. RELEASE reaches the server.
    dh.release(topo.client())?;
    let release = cap.wait_for("RELEASE from the client", Duration::from_secs(10), |p| {
        p.iter()
            .find(|q| is_request(q, MessageType::Release) && q.mac == Some(mac) && q.ciaddr == addr)
            .cloned()
    })?;
    ensure!(
        *release.dst.ip() == SERVER_IP,
        "RELEASE was not addressed to the server: {}",
        release.summary()
    );
    if client.wait_timeout(Duration::from_secs(10)).is_err() {
        note("dhclient -r did not stop the running dhclient; killing it");
        client.kill(libc::SIGKILL)?;
        client.wait_timeout(Duration::from_secs(5))?;
    }
    server.check_alive()?;

    // 4. The same address again on the next request.
    let skip = dh.events().len().max(renew_events);
    let mut again = dh.start(topo.client(), "dhclient-1", dir)?;
    let rebound = dh.wait_event(&mut again, &["BOUND", "REBOOT"], skip, BIND_TIMEOUT)?;
    ensure!(
        rebound.addr == Some(addr),
        "after RELEASE the client was given {:?}, not its previous {addr}; wire:\n{}",
        rebound.addr,
        conversation(&cap.dhcp_so_far()?, mac)
    );
    cap.wait_for("ACK after the RELEASE", Duration::from_secs(5), |p| {
        p.iter()
            .find(|q| {
                is_reply(q, MessageType::Ack)
                    && q.mac == Some(mac)
                    && q.yiaddr == addr
                    && q.ts > release.ts
            })
            .cloned()
    })?;
    note(format!("released and got {addr} again"));
    drop(again);
    cap.stop()?;
    server.stop()
}

// ---------------------------------------------------------------------------------------------

/// dhclient behind dhcrelay (`-a`: option 82): a lease from the relayed pool, and every reply the
/// server sent carries the request's option 82 byte for byte, addressed to giaddr:67.
fn dhclient_relayed(ctx: &Ctx, dir: &Path) -> Result<()> {
    let topo = Topology::relayed()?;
    let mut server = Server::start(ctx, &topo.server, dir)?;
    let cap = Capture::start(&topo.server, SERVER_IF, DHCP_FILTER, "server-side", dir)?;
    let mut relay = super::start_dhcrelay(&topo, dir)?;
    let mac = topo.links[1].b.mac()?;
    let dh = Dhclient::new(&dir.join("dhclient"), CLIENT_IF, Some(RENEW_AFTER))?;
    let mut client = dh.start(topo.client(), "dhclient", dir)?;

    let bound = dh
        .wait_event(&mut client, &["BOUND", "REBOOT"], 0, BIND_TIMEOUT)
        .with_context(|| format!("dhcrelay stderr:\n{}", relay.stderr_tail(10)))?;
    let (addr, ack) = check_bound(&bound, topo.client(), &cap, mac, RELAYED_POOL, "relayed")?;
    note(format!(
        "bound {addr}/24 via the relay (mac {})",
        fmt_mac(&mac)
    ));
    // The client renews by unicast straight to the server, routed by the relay namespace: no
    // giaddr, no option 82, ciaddr on the relayed network. RFC 2131 §4.1: the answer goes to
    // ciaddr, and only a unicast can cross the router to the client. (dhcrelay's packet socket
    // may also pick the renewal up and relay a copy; that copy is judged with the relayed
    // replies below.)
    let (renew, renew_ack) = cap.wait_for(
        "unicast RENEW REQUEST (ciaddr set, no giaddr) from the relayed client, with its reply",
        Duration::from_secs(u64::from(RENEW_AFTER) + 20),
        |p| {
            p.iter()
                .filter(|q| {
                    is_request(q, MessageType::Request)
                        && q.mac == Some(mac)
                        && q.ciaddr == addr
                        && q.giaddr.is_unspecified()
                        && q.ts >= ack.ts
                })
                .find_map(|req| {
                    p.iter()
                        .find(|r| {
                            r.op == Op::Reply
                                && r.xid == req.xid
                                && r.giaddr.is_unspecified()
                                && r.ts >= req.ts
                        })
                        .map(|r| (req.clone(), r.clone()))
                })
        },
    )?;
    ensure!(
        is_reply(&renew_ack, MessageType::Ack)
            && renew_ack.yiaddr == addr
            && renew_ack.dst == SocketAddrV4::new(addr, 68),
        "unicast RENEW {} from the relayed network was answered by {} (expected ACK yiaddr {addr} to {addr}:68)",
        renew.summary(),
        renew_ack.summary()
    );
    dh.wait_event(&mut client, &["RENEW"], 0, Duration::from_secs(10))?;
    note(format!(
        "renewed: {} -> {}",
        renew.summary(),
        renew_ack.summary()
    ));
    ensure!(
        relay.try_wait()?.is_none(),
        "dhcrelay exited: {}",
        relay.stderr_tail(10)
    );
    let (path, _) = cap.stop()?;
    let (pkts, _) = read_dhcp(&path, false)?;

    let requests: Vec<&DhcpPacket> = pkts
        .iter()
        .filter(|p| p.op == Op::Request && p.mac == Some(mac))
        .collect();
    let replies: Vec<&DhcpPacket> = pkts
        .iter()
        .filter(|p| p.op == Op::Reply && p.mac == Some(mac))
        .collect();
    // Everything before the lease (DISCOVER, REQUEST) comes through dhcrelay: giaddr and 82.
    ensure!(
        requests
            .iter()
            .filter(|r| r.ciaddr.is_unspecified())
            .all(|r| r.giaddr == RELAY_GIADDR && r.relay_agent_info.is_some()),
        "expected every request before the lease relayed with giaddr {RELAY_GIADDR} and option 82:\n{}",
        conversation(&pkts, mac)
    );
    ensure!(
        replies.iter().any(|r| r.is(MessageType::Offer))
            && replies.iter().any(|r| r.is(MessageType::Ack)),
        "expected an OFFER and an ACK on the server side:\n{}",
        conversation(&pkts, mac)
    );
    let mut relayed_replies = 0;
    for reply in &replies {
        if reply.giaddr.is_unspecified() {
            // The answer to the unicast renewal, checked above.
            continue;
        }
        let request = requests
            .iter()
            .rfind(|r| r.xid == reply.xid && r.giaddr == reply.giaddr && r.ts <= reply.ts)
            .with_context(|| format!("reply without a request: {}", reply.summary()))?;
        relayed_replies += 1;
        ensure!(
            reply.relay_agent_info == request.relay_agent_info,
            "option 82 not echoed byte-identical: request {} carried {}, reply {} carried {}",
            request.summary(),
            request
                .relay_agent_info
                .as_deref()
                .map_or("none".into(), provd_rig::hex),
            reply.summary(),
            reply
                .relay_agent_info
                .as_deref()
                .map_or("none".into(), provd_rig::hex)
        );
        ensure!(
            reply.dst == SocketAddrV4::new(RELAY_GIADDR, 67) && reply.giaddr == RELAY_GIADDR,
            "relayed reply not sent to giaddr {RELAY_GIADDR}:67 with giaddr kept: {}",
            reply.summary()
        );
    }
    note(format!(
        "{relayed_replies} relayed replies echoed option 82 {} to {RELAY_GIADDR}:67",
        requests[0]
            .relay_agent_info
            .as_deref()
            .map_or(String::new(), provd_rig::hex)
    ));
    drop(client);
    drop(relay);
    server.stop()
}

// ---------------------------------------------------------------------------------------------

/// What a load capture shows about the server's replies.
#[derive(Debug, Default)]
pub(crate) struct WireTally {
    pub(crate) offers: usize,
    pub(crate) acks: usize,
    pub(crate) naks: usize,
    /// Last ACKed address per client.
    pub(crate) acked: BTreeMap<[u8; 6], Ipv4Addr>,
    /// Clients ACKed more than one address.
    pub(crate) moved: usize,
    /// Addresses ACKed to more than one client.
    pub(crate) shared: BTreeMap<Ipv4Addr, BTreeSet<[u8; 6]>>,
    /// Option 61 per client, as its requests carried it.
    client_ids: HashMap<[u8; 6], Vec<u8>>,
    first_nak: Option<String>,
}

pub(crate) fn tally(pkts: &[DhcpPacket]) -> WireTally {
    let mut t = WireTally::default();
    let mut owners: HashMap<Ipv4Addr, BTreeSet<[u8; 6]>> = HashMap::new();
    for p in pkts {
        let Some(mac) = p.mac else { continue };
        if p.op == Op::Request {
            if let Some(cid) = &p.client_id {
                t.client_ids.entry(mac).or_insert_with(|| cid.clone());
            }
            continue;
        }
        match p.msg_type {
            Some(MessageType::Offer) => t.offers += 1,
            Some(MessageType::Nak) => {
                t.naks += 1;
                if t.first_nak.is_none() {
                    let req = pkts
                        .iter()
                        .rfind(|q| q.op == Op::Request && q.xid == p.xid && q.ts <= p.ts)
                        .map_or("(request not captured)".into(), DhcpPacket::summary);
                    t.first_nak = Some(format!("{req} -> {}", p.summary()));
                }
            }
            Some(MessageType::Ack) => {
                t.acks += 1;
                if let Some(prev) = t.acked.insert(mac, p.yiaddr)
                    && prev != p.yiaddr
                {
                    t.moved += 1;
                }
                owners.entry(p.yiaddr).or_default().insert(mac);
            }
            _ => {}
        }
    }
    t.shared = owners.into_iter().filter(|(_, m)| m.len() > 1).collect();
    t
}

pub(crate) fn describe_shared(shared: &BTreeMap<Ipv4Addr, BTreeSet<[u8; 6]>>) -> String {
    shared
        .iter()
        .take(5)
        .map(|(a, macs)| {
            format!(
                "{a} -> [{}]",
                macs.iter()
                    .map(|m| fmt_mac(m))
                    .collect::<Vec<_>>()
                    .join(" ")
            )
        })
        .collect::<Vec<_>>()
        .join(", ")
}

fn load_args(ctx: &Ctx, period_secs: u32) -> Load {
    Load {
        local: LOAD_GIADDR,
        server: SERVER_IP,
        rate: ctx.rate,
        clients: LOAD_CLIENTS,
        period_secs,
        exit_wait_us: 2_000_000,
        drop_time_secs: 2.0,
        seed: std::process::id(),
    }
}

/// perfdhcp as a relay: DORA at `ctx.rate` for `ctx.load_secs` over 50 000 clients. perfdhcp's
/// report must show < 1 % drops per exchange; the wire must show 0 NAKs and no address ACKed to
/// two clients.
fn perfdhcp_load(ctx: &Ctx, dir: &Path) -> Result<()> {
    let topo = Topology::load()?;
    let mut server = Server::start(ctx, &topo.server, dir)?;
    let cap = Capture::start(topo.load_ns(), LOAD_IF, "udp port 67", "load-side", dir)?;
    let load = load_args(ctx, ctx.load_secs);
    let args = load.args();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    note(format!("perfdhcp {}", args.join(" ")));
    let mut pd = topo.load_ns().spawn("perfdhcp", "perfdhcp", &args, dir)?;
    let st = pd.wait_timeout(Duration::from_secs(u64::from(ctx.load_secs) + 60))?;
    server.check_alive()?;
    let (path, cstats) = cap.stop()?;
    let report = perfdhcp::parse_report(&pd.stdout_text()).with_context(|| {
        format!(
            "perfdhcp exited {st}; stdout:\n{}\nstderr:\n{}",
            pd.stdout_text(),
            pd.stderr_tail(10)
        )
    })?;
    ensure!(
        matches!(st.code(), Some(0) | Some(3)),
        "perfdhcp exited {st}: {}",
        pd.stderr_tail(10)
    );
    let (pkts, _) = read_dhcp(&path, false)?;
    let t = tally(&pkts);
    let (d, r) = (report.discover_offer, report.request_ack);
    note(format!(
        "perfdhcp: reported rate {:.0}/s (asked {}), DO sent {} recv {} drops {} ({:.3} %), RA sent {} recv {} drops {} ({:.3} %), orphans {}+{}, rejected {}+{}",
        report.rate,
        ctx.rate,
        d.sent,
        d.received,
        d.drops,
        d.drop_ratio() * 100.0,
        r.sent,
        r.received,
        r.drops,
        r.drop_ratio() * 100.0,
        d.orphans,
        r.orphans,
        d.rejected_leases,
        r.rejected_leases
    ));
    note(format!(
        "wire: {} OFFERs, {} ACKs, {} NAKs, {} distinct clients ACKed, {} moved; tcpdump: {} captured, {} dropped by kernel",
        t.offers,
        t.acks,
        t.naks,
        t.acked.len(),
        t.moved,
        cstats.captured,
        cstats.dropped_by_kernel
    ));

    let mut problems = Vec::new();
    // perfdhcp's own "Rate" divides by the period plus the exit wait; what was offered is the
    // DISCOVERs it sent over the period.
    let offered = d.sent as f64 / f64::from(ctx.load_secs);
    if offered < 0.95 * f64::from(ctx.rate) {
        problems.push(format!(
            "perfdhcp only sent {offered:.0} DISCOVERs/s of the {} asked: the load is not what the test claims (lower --rate)",
            ctx.rate
        ));
    }
    if d.drop_ratio() >= 0.01 || r.drop_ratio() >= 0.01 {
        problems.push(format!(
            "drops over 1 %: DISCOVER-OFFER {}/{} ({:.2} %), REQUEST-ACK {}/{} ({:.2} %)",
            d.drops,
            d.sent,
            d.drop_ratio() * 100.0,
            r.drops,
            r.sent,
            r.drop_ratio() * 100.0
        ));
    }
    if report.malformed > 0 {
        problems.push(format!(
            "perfdhcp saw {} malformed packets",
            report.malformed
        ));
    }
    if d.rejected_leases + r.rejected_leases + d.non_unique + r.non_unique > 0 {
        problems.push(format!(
            "perfdhcp rejected {} leases and saw {} non-unique addresses",
            d.rejected_leases + r.rejected_leases,
            d.non_unique + r.non_unique
        ));
    }
    if t.naks > 0 {
        problems.push(format!(
            "{} NAKs on the wire, first: {}",
            t.naks,
            t.first_nak.clone().unwrap_or_default()
        ));
    }
    if !t.shared.is_empty() {
        problems.push(format!(
            "{} addresses ACKed to more than one client: {}",
            t.shared.len(),
            describe_shared(&t.shared)
        ));
    }
    if let Some((mac, a)) = t.acked.iter().find(|(_, a)| !in_pool(**a, LOAD_POOL)) {
        problems.push(format!(
            "{} was ACKed {a}, outside the load pool",
            fmt_mac(mac)
        ));
    }
    // perfdhcp walks its client range, so rate × period exchanges reach that many distinct
    // clients (up to -R). Fewer on the wire means the test did not exercise what it claims.
    let reach = u64::from(LOAD_CLIENTS).min(u64::from(ctx.rate) * u64::from(ctx.load_secs));
    if (t.acked.len() as u64) < reach * 99 / 100 {
        problems.push(format!(
            "only {} distinct clients were ACKed on the wire, expected at least 99 % of {reach}",
            t.acked.len()
        ));
    }
    if r.received == 0 {
        problems.push("no exchange completed".into());
    }
    if !problems.is_empty() {
        bail!(problems.join("; "));
    }
    server.stop()
}

// ---------------------------------------------------------------------------------------------

/// SIGKILL under load, restart, and hold the server to every ACK it put on the wire: each ACKed
/// (client → address) must be in the durable table and ACKed again on INIT-REBOOT, and no
/// address may belong to two clients.
fn crash_kill9(ctx: &Ctx, dir: &Path) -> Result<()> {
    ensure!(
        ctx.loadgen.is_file(),
        "{} does not exist (build it with `cargo build --release -p provd-loadgen`)",
        ctx.loadgen.display()
    );
    let topo = Topology::load()?;
    let mut server = Server::start(ctx, &topo.server, dir)?;
    let t = load_then_kill(ctx, dir, &topo, &mut server, "kill", || {
        Ok("SIGKILLed the server".into())
    })?;
    let problems = hold_to_acks(ctx, dir, &topo, &mut server, &t, "")?;
    let stopped = server.stop();
    if !problems.is_empty() {
        bail!(problems.join("; "));
    }
    stopped
}

/// Puts perfdhcp's load on `server` for [`KILL_AFTER`] with tcpdump on the load side, then calls
/// `outage` (which says what it did) and SIGKILLs the server. Returns what the wire showed before
/// the kill, with the ACKed pairs written to `acked-pairs.txt`; fails if a reply left after the
/// kill or nothing was ACKed to hold the server to. `event` names the outage in the notes.
fn load_then_kill(
    ctx: &Ctx,
    dir: &Path,
    topo: &Topology,
    server: &mut Server,
    event: &str,
    outage: impl FnOnce() -> Result<String>,
) -> Result<WireTally> {
    let cap = Capture::start(topo.load_ns(), LOAD_IF, "udp port 67", "load-side", dir)?;
    // The period bounds perfdhcp if everything below fails; it is stopped right after the kill.
    let load = load_args(ctx, KILL_AFTER.as_secs() as u32 + 30);
    let args = load.args();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    note(format!("perfdhcp {}", args.join(" ")));
    let mut pd = topo.load_ns().spawn("perfdhcp", "perfdhcp", &args, dir)?;
    let started = Instant::now();
    while started.elapsed() < KILL_AFTER {
        server.check_alive()?;
        if let Some(st) = pd.try_wait()? {
            bail!(
                "perfdhcp exited ({st}) before the {event}: {}",
                pd.stderr_tail(10)
            );
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    server.check_alive()?;
    let what = outage()?;
    server.kill9()?;
    let killed_at = SystemTime::now().duration_since(UNIX_EPOCH)?;
    note(format!(
        "{what} {:.1}s into the load",
        started.elapsed().as_secs_f64()
    ));
    std::thread::sleep(Duration::from_secs(1));
    pd.stop(libc::SIGINT, Duration::from_secs(10))?;
    let (path, cstats) = cap.stop()?;
    let (pkts, _) = read_dhcp(&path, false)?;
    let t = tally(&pkts);
    let late = pkts
        .iter()
        .filter(|p| p.op == Op::Reply && p.ts > killed_at + Duration::from_millis(500))
        .count();
    note(format!(
        "wire before the {event}: {} OFFERs, {} ACKs to {} clients, {} NAKs, {} moved; tcpdump dropped {}",
        t.offers,
        t.acks,
        t.acked.len(),
        t.naks,
        t.moved,
        cstats.dropped_by_kernel
    ));
    ensure!(
        late == 0,
        "{late} replies captured after the server was killed"
    );
    ensure!(
        !t.acked.is_empty(),
        "no ACK on the wire in the {KILL_AFTER:?} before the {event}: nothing to hold the server to"
    );
    let mut text = String::new();
    for (mac, a) in &t.acked {
        let _ = writeln!(text, "{} {a}", fmt_mac(mac));
    }
    std::fs::write(dir.join("acked-pairs.txt"), text)?;
    Ok(t)
}

/// Holds a killed server to what the wire showed it ACKed: no address ACKed to two clients, every
/// ACKed pair in the durable table (read while no server runs), and, after a restart, a sample of
/// the clients ACKed again on INIT-REBOOT by `provd-loadgen verify`, each with its own option 61
/// as captured (perfdhcp's clients send one, and a server may key leases on it: provd does).
/// Returns what failed; the server is left running. `after` names the outage in the notes.
fn hold_to_acks(
    ctx: &Ctx,
    dir: &Path,
    topo: &Topology,
    server: &mut Server,
    t: &WireTally,
    after: &str,
) -> Result<Vec<String>> {
    let mut problems = Vec::new();
    if !t.shared.is_empty() {
        problems.push(format!(
            "on the wire, {} addresses were ACKed to more than one client: {}",
            t.shared.len(),
            describe_shared(&t.shared)
        ));
    }
    match server.durable_leases() {
        Ok(table) => {
            let check = leases::check_table(&t.acked, &table);
            note(format!(
                "durable table{after}: {} leases, {} of {} ACKed pairs present",
                table.len(),
                check.matched,
                t.acked.len()
            ));
            if !check.ok() {
                problems.push(format!("durable lease table{after}: {}", check.describe()));
            }
        }
        Err(e) => problems.push(format!("reading the durable lease table: {e:#}")),
    }
    server.restart(&topo.server)?;
    let all: Vec<([u8; 6], Ipv4Addr)> = t.acked.iter().map(|(mac, a)| (*mac, *a)).collect();
    let seed = u64::from(SystemTime::now().duration_since(UNIX_EPOCH)?.subsec_nanos()) | 1;
    let targets = provd_rig::sample(&all, MAX_VERIFY, seed);
    let sample_file = dir.join("verify-pairs.txt");
    let mut text = String::new();
    let mut with_cid = 0;
    for (mac, a) in &targets {
        let cid = t.client_ids.get(mac).map(Vec::as_slice);
        with_cid += usize::from(cid.is_some());
        text.push_str(&pair_line(*mac, *a, cid));
    }
    std::fs::write(&sample_file, text)?;
    note(format!(
        "re-asking {} of {} ACKed clients ({with_cid} with their option 61) with INIT-REBOOT REQUESTs (sample seed {seed}, {})",
        targets.len(),
        all.len(),
        sample_file.display()
    ));
    match loadgen_verify(ctx, topo.load_ns(), &sample_file, targets.len()) {
        Ok(summary) => note(format!("after restart, provd-loadgen verify: {summary}")),
        Err(e) => problems.push(format!("after restart{after}: {e:#}")),
    }
    Ok(problems)
}

/// One line of `provd-loadgen verify --pairs`: `mac addr [client-id-hex]`.
fn pair_line(mac: [u8; 6], addr: Ipv4Addr, client_id: Option<&[u8]>) -> String {
    match client_id {
        Some(cid) => format!("{} {addr} {}\n", fmt_mac(&mac), hex(cid)),
        None => format!("{} {addr}\n", fmt_mac(&mac)),
    }
}

/// `VERIFY ok=N mismatched=N unanswered=N` as (ok, mismatched, unanswered).
fn parse_verify_line(line: &str) -> Option<(usize, usize, usize)> {
    let rest = line.trim().strip_prefix("VERIFY ")?;
    let mut it = rest.split(' ');
    let mut field = |name: &str| -> Option<usize> {
        it.next()?
            .strip_prefix(name)?
            .strip_prefix('=')?
            .parse()
            .ok()
    };
    let counts = (field("ok")?, field("mismatched")?, field("unanswered")?);
    it.next().is_none().then_some(counts)
}

/// Runs `provd-loadgen verify` from the load namespace (relay socket on giaddr:67) over the
/// `expected` lines of `pairs_file`. Fails unless it exits 0 and reports every one of them ACKed
/// with its address; returns what it printed.
fn loadgen_verify(ctx: &Ctx, ns: &Netns, pairs_file: &Path, expected: usize) -> Result<String> {
    let out = cmd::output_timeout(
        ns.command(&ctx.loadgen)
            .args(["verify", "--server", &SERVER_IP.to_string()])
            .args(["--relay", &LOAD_GIADDR.to_string()])
            .args(VERIFY_ARGS)
            .arg("--pairs")
            .arg(pairs_file),
        VERIFY_TIMEOUT,
    )?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let summary = [stdout.trim(), stderr.trim()]
        .into_iter()
        .filter(|s| !s.is_empty())
        .collect::<Vec<_>>()
        .join("; ");
    let counts = stdout.lines().rev().find_map(parse_verify_line);
    ensure!(
        out.status.success() && counts == Some((expected, 0, 0)),
        "provd-loadgen verify exited {} over {expected} clients ({}): {summary}",
        out.status,
        pairs_file.display()
    );
    Ok(summary)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pair_lines_carry_the_client_id_as_hex() {
        let mac = [0, 0x0c, 1, 2, 3, 0xff];
        let a = Ipv4Addr::new(198, 19, 0, 10);
        assert_eq!(
            pair_line(mac, a, Some(&[1, 0, 0x0c, 1, 2, 3, 0xff])),
            "00:0c:01:02:03:ff 198.19.0.10 01000c010203ff\n"
        );
        assert_eq!(pair_line(mac, a, None), "00:0c:01:02:03:ff 198.19.0.10\n");
    }

    #[test]
    fn verify_line_parses() {
        assert_eq!(
            parse_verify_line("VERIFY ok=1998 mismatched=1 unanswered=1\n"),
            Some((1998, 1, 1))
        );
        assert_eq!(parse_verify_line("VERIFY ok=3 mismatched=0"), None);
        assert_eq!(
            parse_verify_line("VERIFY ok=3 mismatched=0 unanswered=0 x=1"),
            None
        );
        assert_eq!(parse_verify_line("verify: NAK for 02:00:00:00:00:01"), None);
    }

    fn pkt(op: Op, t: MessageType, xid: u32, mac: u8, yiaddr: [u8; 4]) -> DhcpPacket {
        use provd_dhcp::{Header, MessageWriter, code};
        let mut chaddr = [0u8; 16];
        chaddr[5] = mac;
        let mut h = Header::reply(xid, chaddr, 1, 6);
        h.op = op as u8;
        h.yiaddr = Ipv4Addr::from(yiaddr);
        let mut buf = Vec::new();
        let mut w = MessageWriter::new(&mut buf, &h, 1500).unwrap();
        w.option(code::MESSAGE_TYPE, &[t as u8]).unwrap();
        if op == Op::Request {
            w.option(code::CLIENT_ID, &[1, 0, 0, 0, 0, 0, mac]).unwrap();
        }
        w.finish().unwrap();
        provd_rig::UdpDatagram {
            ts: Duration::from_secs(u64::from(xid)),
            src: "198.18.0.1:67".parse().unwrap(),
            dst: "198.18.4.2:67".parse().unwrap(),
            payload: buf,
        }
        .dhcp()
        .unwrap()
    }

    #[test]
    fn tally_counts_and_finds_shared_addresses() {
        let pkts = vec![
            pkt(Op::Request, MessageType::Request, 1, 1, [0; 4]),
            pkt(Op::Reply, MessageType::Ack, 1, 1, [198, 19, 0, 10]),
            pkt(Op::Reply, MessageType::Ack, 2, 2, [198, 19, 0, 10]),
            pkt(Op::Request, MessageType::Request, 3, 3, [0; 4]),
            pkt(Op::Reply, MessageType::Nak, 3, 3, [0; 4]),
            pkt(Op::Reply, MessageType::Ack, 4, 1, [198, 19, 0, 11]),
        ];
        let t = tally(&pkts);
        assert_eq!((t.acks, t.naks, t.moved), (3, 1, 1));
        assert_eq!(t.acked.len(), 2);
        assert_eq!(t.acked[&[0, 0, 0, 0, 0, 1]], Ipv4Addr::new(198, 19, 0, 11));
        assert_eq!(t.shared.len(), 1);
        assert!(
            describe_shared(&t.shared)
                .starts_with("198.19.0.10 -> [00:00:00:00:00:01 00:00:00:00:00:02]")
        );
        assert!(t.first_nak.unwrap().starts_with("REQUEST xid=0x00000003"));
        assert_eq!(t.client_ids[&[0, 0, 0, 0, 0, 3]], vec![1, 0, 0, 0, 0, 0, 3]);
    }

    #[test]
    fn scenario_names_are_the_documented_ones() {
        let names: Vec<&str> = scenarios().iter().map(|(n, _)| *n).collect();
        assert_eq!(
            names,
            [
                "dhclient-direct",
                "dhclient-relayed",
                "perfdhcp",
                "crash-kill9",
                "power-cut"
            ]
        );
    }
}
