//! `provd-loadgen storm`: a region's power comes back. A fleet of cable modems, their embedded
//! MTAs, and the eRouters and phones behind them, behind simulated CMTSs, powers on within
//! `--spread-ms` and each device runs its whole boot against the server's real ports with the
//! real retry timing (see `device.rs`, `dhcp.rs` and `cpe.rs`), until every device is online or
//! the deadline passes.
//!
//! One thread drives everything through epoll: per CMTS three relay sockets (the modems'
//! giaddr, the MTAs' and the CPEs' behind the modems), bound to `GIADDR:67` where the relayed
//! replies come back; one device socket
//! on `0.0.0.0:`[`DEVICE_PORT`] that every device sends from once it has its address (the source
//! address set per datagram with IP_PKTINFO) and whose datagrams are handed to the device their
//! destination address names (the harness routes the client network to this host as local); and
//! one agent socket on `0.0.0.0:161` that answers the server's SETs from the MTA's own address
//! and hands them to the MTA the URL names. One socket for all devices keeps the run within the
//! open-files limit a sandbox may not raise, and lets 200,000 devices share one receive buffer.
//! Routers and phones speak TCP: each opens its own connection from its address while its
//! exchange lasts, at most [`Config::max_connections`] at once (a device past it waits its
//! turn, counted as `tcp_waits`).
//!
//! The last line printed is
//!
//! `RESULT storm devices=N cms=N mtas=N routers=N phones=N online=N lost=N all_online_s=S
//! cm_p50_s=… cm_p90_s=… cm_p99_s=… cm_max_s=… mta_p50_s=… … mta_max_s=… router_p50_s=… …
//! router_max_s=… phone_p50_s=… … phone_max_s=… tftp_refused=N http_refused=N
//! double_allocations=N dhcp_resends=N naks=N file_retries=N flow_retries=N http_retries=N
//! setbacks=N`
//!
//! where the times count from each device's power-on, `all_online_s` from the first power-on
//! to the last device online (`never` when some were lost), `setbacks` counts every failed step
//! a device had to retry (by reason on stderr), and `double_allocations` the ACKs that gave an
//! address another device of the run already held. Exit status 0 iff every device came online
//! and no address was given twice.

pub mod cpe;
pub mod device;
pub mod dhcp;
pub mod http;
pub mod tcp;

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap, HashMap};
use std::fmt::Write as _;
use std::io;
use std::net::{Ipv4Addr, SocketAddrV4};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use provd_udp::{RecvBatch, SendBatch, UdpSocket, Wait};

use crate::hist::Histogram;
use crate::mta::msg;
use crate::packet::client_mac;
use crate::sys::{Epoll, cpu_time, dont_fragment, ensure_open_files, socket_drops};
use crate::tftp::packet::RequestOptions;
use device::{Device, Effects, Kind, Phase, Shared};
use dhcp::Relay;
use tcp::Conn;

/// The most devices one run may hold (an xid names its device in 20 bits).
pub const MAX_DEVICES: u32 = dhcp::MAX_DEVICES;
pub const MAX_RELAYS: u32 = 1000;
const AGENT_TOKEN: u64 = u64::MAX;
const DEVICE_TOKEN: u64 = u64::MAX - 1;
/// The port every device sends from (each from its own address).
pub const DEVICE_PORT: u16 = 6868;
const RELAY_TOKEN_BASE: u64 = 1 << 40;
/// Device `i`'s TCP connection.
const TCP_TOKEN_BASE: u64 = 1 << 32;
/// Relay sockets per CMTS: modems, MTAs, CPEs (routers and phones).
pub const RELAYS_PER_CMTS: usize = 3;
/// Relay and agent sockets take every burst of the storm.
const BIG_BUFFER: usize = 32 << 20;
/// The device socket takes everything every device receives after its lease.
const DEVICE_BUFFER: usize = 128 << 20;
/// Option 60 of the modems and the MTAs.
const CM_VENDOR_CLASS: &[u8] =
    b"docsis3.0:053501010102010203010104010105010106010107010f0110011201130114011501";
const MTA_VENDOR_CLASS: &[u8] = b"pktc1.5:051a0101010201020301000401010901000b02060910010912020007";
/// What the modems ask for: mask, time offset, router, time server, log server, and 122 for the
/// MTA's sake; the MTAs: mask, router, DNS, domain, 122.
const CM_PARAMS: &[u8] = &[1, 2, 3, 4, 7, 51, 54, 122];
const MTA_PARAMS: &[u8] = &[1, 3, 6, 15, 51, 54, 122];
/// An eRouter (DOCSIS eRouter spec: option 60 `erouter1.0`) asks for 43, where its ACS URL
/// comes; a phone for 66, its profile rule.
const ROUTER_VENDOR_CLASS: &[u8] = b"erouter1.0";
const ROUTER_PARAMS: &[u8] = &[1, 3, 6, 15, 43, 51, 54];
const PHONE_VENDOR_CLASS: &[u8] = b"FlyingVoice-G802";
const PHONE_PARAMS: &[u8] = &[1, 3, 6, 15, 42, 51, 54, 66];
/// Resolution of the online-over-time series.
const TIMELINE_STEP: Duration = Duration::from_millis(250);
/// Lost devices named on stderr (all of them go to `--lost FILE`).
const LOST_SHOWN: usize = 20;

/// A small, fast, seeded generator (xorshift64*): jitter and power-on times.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed | 1)
    }
    pub fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    /// Uniform in `0..n` (n > 0), bias below 2^-32 for the sizes used here.
    pub fn below(&mut self, n: u64) -> u64 {
        ((u128::from(self.next() >> 32) * u128::from(n)) >> 32) as u64
    }
}

/// One simulated CMTS: the giaddr its modems are relayed from, its MTAs', and its CPEs'.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cmts {
    pub cm_giaddr: Ipv4Addr,
    pub mta_giaddr: Ipv4Addr,
    pub cpe_giaddr: Ipv4Addr,
}

#[derive(Debug, Clone)]
pub struct Config {
    /// The DHCP server (relayed requests go to its port 67).
    pub server: Ipv4Addr,
    pub cmtss: Vec<Cmts>,
    pub cms: u32,
    /// MTA k is the embedded MTA of modem k (same CMTS; 82.2 is the modem's MAC) while there
    /// are modems; the rest stand alone.
    pub mtas: u32,
    /// Router k and phone k sit behind modem k while there are modems (82.2 is its MAC).
    pub routers: u32,
    pub phones: u32,
    /// Power-on times are spread uniformly over this.
    pub spread: Duration,
    /// From the first power-on; devices not online by then are lost.
    pub deadline: Duration,
    pub shared_secret: String,
    pub community: String,
    pub set_community: String,
    pub agent_port: u16,
    /// The routers' ACS credentials.
    pub acs_user: String,
    pub acs_pass: String,
    /// TCP connections open at once, at most.
    pub max_connections: u32,
    /// Second byte of every MAC: modems `02:<salt>:…`, MTAs `02:<salt+1>:…`, routers
    /// `02:<salt+2>:…`, phones `02:<salt+3>:…`.
    pub salt: u8,
    pub seed: u64,
    pub tftp: RequestOptions,
    pub timeline: Option<PathBuf>,
    pub lost_file: Option<PathBuf>,
}

impl Config {
    fn check(&self) -> Result<()> {
        let n = self.devices();
        if n == 0 || n > u64::from(MAX_DEVICES) {
            bail!("--cms + --mtas + --routers + --phones must be in 1..={MAX_DEVICES}");
        }
        if self.max_connections == 0 {
            bail!("--max-connections must be at least 1");
        }
        if self.cmtss.is_empty() || self.cmtss.len() > MAX_RELAYS as usize {
            bail!("--relays must be in 1..={MAX_RELAYS}");
        }
        if self.deadline.is_zero() || self.deadline > Duration::from_secs(3600) {
            bail!("--deadline-s must be in (0, 3600]");
        }
        if self.spread > self.deadline {
            bail!("--spread-ms must not exceed the deadline");
        }
        if self.shared_secret.is_empty() || self.community.is_empty() {
            bail!("--shared-secret and --community must not be empty");
        }
        Ok(())
    }

    fn devices(&self) -> u64 {
        [self.cms, self.mtas, self.routers, self.phones]
            .iter()
            .map(|&n| u64::from(n))
            .sum()
    }
}

/// A reason some devices had to retry, with how many times and the first device's MAC.
#[derive(Debug, Clone)]
pub struct Reason {
    pub count: u64,
    pub first_mac: [u8; 6],
}

/// What one storm measured.
#[derive(Debug, Default)]
pub struct Report {
    /// Devices per kind, in [`Kind::ALL`]'s order.
    pub count: [u32; 4],
    pub online_by: [u32; 4],
    /// First power-on to the last device online.
    pub last_online: Option<Duration>,
    /// Power-on to online per kind, milliseconds.
    pub ms: [Histogram; 4],
    /// Per type, devices that reached: DHCP offer, ACK, file (MTA: SET), second step (modem:
    /// time; MTA: file), online.
    pub funnel: BTreeMap<Kind, [u32; 5]>,
    /// Per type, milliseconds spent in each stage by the devices that got through it:
    /// power-on → ACK, ACK → file (MTA: SET), → time (MTA: file), → online.
    pub stages: BTreeMap<Kind, [Histogram; 4]>,
    pub dhcp_resends: u64,
    pub naks: u64,
    pub dhcp_restarts: u64,
    pub file_retries: u64,
    pub flow_retries: u64,
    /// Routers' sessions and phones' fetches tried again.
    pub http_retries: u64,
    pub redhcp: u64,
    pub setbacks: u64,
    pub tftp_refused: u64,
    /// HTTP 503s (the ACS or the profile server out of room).
    pub http_refused: u64,
    pub double_allocations: u64,
    pub reasons: BTreeMap<String, Reason>,
    /// Devices not online at the deadline: MAC, kind, phase.
    pub lost: Vec<([u8; 6], Kind, Phase)>,
    pub sets_answered: u64,
    pub sets_unknown: u64,
    pub agent_rejected: u64,
    pub stray_replies: u64,
    pub datagrams_sent: u64,
    pub datagrams_received: u64,
    pub send_errors: u64,
    pub recv_errors: u64,
    /// Datagrams the kernel dropped at the fleet's sockets (full buffers): the relays' (OFFERs
    /// and ACKs), the devices' (everything after the lease) and the agent's (SETs).
    pub dropped_relay: u64,
    pub dropped_device: u64,
    pub dropped_agent: u64,
    /// HTTP exchanges that failed on their connection (refused, reset, closed early, an
    /// unreadable answer), and the most connections open at once.
    pub tcp_failures: u64,
    pub tcp_peak: u64,
    /// Times a router or phone waited for a connection slot of the simulator's own.
    pub tcp_waits: u64,
    pub wall: Duration,
    pub cpu: Duration,
    /// Online devices per [`TIMELINE_STEP`], cumulative: (t, per kind).
    pub timeline: Vec<(f64, [u32; 4])>,
    /// Per CMTS (in order), power-on to online of its devices, milliseconds: one headend's storm
    /// must not starve another's.
    pub per_cmts_ms: Vec<Histogram>,
}

/// Whole milliseconds, saturating.
fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

fn s(ms: u64) -> f64 {
    ms as f64 / 1000.0
}

impl Report {
    pub fn devices(&self) -> u32 {
        self.count.iter().sum()
    }
    pub fn online(&self) -> u32 {
        self.online_by.iter().sum()
    }
    pub fn all_ok(&self) -> bool {
        self.online() == self.devices() && self.double_allocations == 0
    }

    pub fn line(&self) -> String {
        let all = match self.last_online {
            Some(d) if self.online() == self.devices() => format!("{:.3}", d.as_secs_f64()),
            _ => "never".into(),
        };
        let mut times = String::new();
        for k in Kind::ALL {
            let h = &self.ms[k.at()];
            let n = k.name();
            let _ = write!(
                times,
                " {n}_p50_s={:.3} {n}_p90_s={:.3} {n}_p99_s={:.3} {n}_max_s={:.3}",
                s(h.quantile(0.5)),
                s(h.quantile(0.9)),
                s(h.quantile(0.99)),
                s(h.max())
            );
        }
        let [cms, mtas, routers, phones] = self.count;
        format!(
            "RESULT storm devices={} cms={cms} mtas={mtas} routers={routers} phones={phones} \
             online={} lost={} all_online_s={all}{times} tftp_refused={} http_refused={} \
             double_allocations={} dhcp_resends={} naks={} file_retries={} flow_retries={} \
             http_retries={} setbacks={}",
            self.devices(),
            self.online(),
            self.devices() - self.online(),
            self.tftp_refused,
            self.http_refused,
            self.double_allocations,
            self.dhcp_resends,
            self.naks,
            self.file_retries,
            self.flow_retries,
            self.http_retries,
            self.setbacks,
        )
    }

    /// The funnel, the retries by reason, the lost devices and the I/O counters, for stderr.
    pub fn detail(&self) -> String {
        let mut out = String::new();
        for (kind, f) in &self.funnel {
            let (third, fourth) = match kind {
                Kind::Cm => ("file", "time"),
                Kind::Mta => ("set", "file"),
                Kind::Router => ("informed", "session_end"),
                Kind::Phone => ("profile", "checked"),
            };
            let _ = writeln!(
                out,
                "storm funnel {}: powered={} offered={} acked={} {third}={} {fourth}={} online={}",
                kind.name(),
                self.count[kind.at()],
                f[0],
                f[1],
                f[2],
                f[3],
                f[4]
            );
        }
        for (kind, h) in &self.stages {
            let names = match kind {
                Kind::Cm => ["power->ACK", "ACK->file", "file->time", "time->online"],
                Kind::Mta => ["power->ACK", "ACK->SET", "SET->file", "file->online"],
                Kind::Router => ["power->ACK", "ACK->InformResponse", "->204", "204->online"],
                Kind::Phone => ["power->ACK", "ACK->profile", "->checked", "->online"],
            };
            let parts: Vec<String> = names
                .iter()
                .zip(h)
                .map(|(n, h)| {
                    format!(
                        "{n} {:.3}/{:.3}/{:.3}",
                        s(h.quantile(0.5)),
                        s(h.quantile(0.99)),
                        s(h.max())
                    )
                })
                .collect();
            let _ = writeln!(
                out,
                "storm stages {} p50/p99/max s: {}",
                kind.name(),
                parts.join(", ")
            );
        }
        let _ = writeln!(
            out,
            "storm retries: dhcp_resends={} naks={} dhcp_restarts={} file_retries={} \
             flow_retries={} http_retries={} back_to_dhcp={} tftp_refused={} http_refused={}",
            self.dhcp_resends,
            self.naks,
            self.dhcp_restarts,
            self.file_retries,
            self.flow_retries,
            self.http_retries,
            self.redhcp,
            self.tftp_refused,
            self.http_refused
        );
        for (why, r) in &self.reasons {
            let _ = writeln!(
                out,
                "storm setback: {} x {why} (first: {})",
                r.count,
                msg::mac_colons(r.first_mac)
            );
        }
        for (mac, kind, phase) in self.lost.iter().take(LOST_SHOWN) {
            let _ = writeln!(
                out,
                "storm lost: {} {} in {}",
                kind.name(),
                msg::mac_colons(*mac),
                phase.name()
            );
        }
        if self.lost.len() > LOST_SHOWN {
            let _ = writeln!(
                out,
                "storm lost: ... and {} more",
                self.lost.len() - LOST_SHOWN
            );
        }
        if let Some(f) = self.fairness() {
            let _ = writeln!(out, "{f}");
        }
        let _ = write!(
            out,
            "storm io: sent={} received={} send_errors={} recv_errors={} \
             sets_answered={} sets_unknown={} agent_rejected={} stray_replies={} \
             kernel_dropped_relay={} kernel_dropped_device={} kernel_dropped_agent={} \
             tcp_failures={} tcp_peak={} tcp_waits={} wall_s={:.3} cpu_s={:.3}",
            self.datagrams_sent,
            self.datagrams_received,
            self.send_errors,
            self.recv_errors,
            self.sets_answered,
            self.sets_unknown,
            self.agent_rejected,
            self.stray_replies,
            self.dropped_relay,
            self.dropped_device,
            self.dropped_agent,
            self.tcp_failures,
            self.tcp_peak,
            self.tcp_waits,
            self.wall.as_secs_f64(),
            self.cpu.as_secs_f64()
        );
        out
    }

    /// The spread of the CMTSs' p99 time to online: `storm fairness: per-CMTS p99 s min=…
    /// median=… max=… (slowest cmtsK)`, or `None` without an online device.
    pub fn fairness(&self) -> Option<String> {
        let mut p99: Vec<(u64, usize)> = self
            .per_cmts_ms
            .iter()
            .enumerate()
            .filter(|(_, h)| h.count() > 0)
            .map(|(k, h)| (h.quantile(0.99), k))
            .collect();
        if p99.is_empty() {
            return None;
        }
        p99.sort_unstable();
        let (max, slowest) = p99[p99.len() - 1];
        Some(format!(
            "storm fairness: per-CMTS p99 s min={:.3} median={:.3} max={:.3} (slowest cmts{})",
            s(p99[0].0),
            s(p99[p99.len() / 2].0),
            s(max),
            slowest + 1
        ))
    }

    /// `t_s,cm_online,mta_online,router_online,phone_online` per [`TIMELINE_STEP`].
    pub fn timeline_csv(&self) -> String {
        let mut out = String::from("t_s,cm_online,mta_online,router_online,phone_online\n");
        for (t, [c, m, r, p]) in &self.timeline {
            let _ = writeln!(out, "{t:.2},{c},{m},{r},{p}");
        }
        out
    }
}

/// Counts of what the sockets did, apart from the report so sends can borrow it alone.
#[derive(Debug, Default)]
struct Io {
    sent: u64,
    send_errors: u64,
}

/// Datagrams in one recvmmsg/sendmmsg: one system call per batch, not per datagram, which at
/// 200,000 devices was most of the fleet's CPU.
const BATCH: usize = 64;
/// Longest datagram the fleet receives (a TFTP DATA of 512 bytes, DHCP, SNMP) with room over.
const SLOT: usize = 2048;

/// A socket and the datagrams queued on it, sent with one sendmmsg when the batch fills and at
/// the end of each turn of the event loop.
struct Tx {
    sock: UdpSocket,
    batch: SendBatch,
}

impl Tx {
    fn new(sock: UdpSocket) -> Tx {
        Tx {
            sock,
            batch: SendBatch::new(BATCH, SLOT),
        }
    }

    /// Queues `bytes` to `to`, leaving from `from` (unspecified: the socket's own address).
    fn send(&mut self, from: Ipv4Addr, to: SocketAddrV4, bytes: &[u8], io: &mut Io) {
        if self.batch.is_full() {
            self.flush(io);
        }
        if self.batch.push(bytes, to, from) {
            io.sent += 1;
        } else {
            io.send_errors += 1;
        }
    }

    fn flush(&mut self, io: &mut Io) {
        let failed = self.sock.send_batch(&mut self.batch) as u64;
        io.sent -= failed;
        io.send_errors += failed;
    }
}

/// Sends from a device's own address through the shared device socket.
fn send_as(tx: &mut Tx, from: Option<Ipv4Addr>, to: SocketAddrV4, bytes: &[u8], io: &mut Io) {
    let Some(from) = from else {
        // No address yet: nothing but DHCP to send.
        io.send_errors += 1;
        return;
    };
    tx.send(from, to, bytes, io);
}

/// A socket with the buffers given (past the system limits: the fleet runs as root), the
/// destination address of each datagram (IP_PKTINFO), and DF set: a datagram with DF needs no
/// IP ID, and the kernel's shared ID generator was a hot spot at this rate.
///
/// No UDP GSO: each device's datagram is a packet of its own, as on a real network. Coalesced,
/// a CMTS's DISCOVERs reached provd's reuseport group as one packet, steered by the first one's
/// client to one shard, which dropped the others' (a quarter of the first DISCOVERs of the
/// 20,000-device storm suite).
fn fleet_socket(addr: SocketAddrV4, buffer: usize) -> Result<UdpSocket> {
    let sock = UdpSocket::bind(
        addr,
        &provd_udp::Options {
            pktinfo: true,
            recv_buffer: buffer,
            send_buffer: buffer,
            gso: false,
            ..provd_udp::Options::default()
        },
    )
    .with_context(|| format!("binding {addr}"))?;
    dont_fragment(sock.fd()).with_context(|| format!("IP_MTU_DISCOVER on {addr}"))?;
    Ok(sock)
}

struct Engine {
    cfg: Config,
    shared: Shared,
    /// Index `3 * cmts + (0 modems | 1 MTAs | 2 CPEs)`.
    relays: Vec<Relay>,
    relay_tx: Vec<Tx>,
    agent_tx: Tx,
    /// Every device's traffic after its lease.
    dev_tx: Tx,
    epoll: Epoll,
    devices: Vec<Device>,
    timers: BinaryHeap<Reverse<(Instant, u32)>>,
    armed: Vec<Option<Instant>>,
    /// MTA MAC → device, for the SETs.
    by_mac: HashMap<[u8; 6], u32>,
    /// Leased address → device holding it (the latest, should two hold one).
    holders: HashMap<Ipv4Addr, u32>,
    /// Routers' and phones' open connections, by device.
    conns: HashMap<u32, Conn>,
    /// Devices waiting for a connection slot, in order, with the request each will send (the
    /// map holds the current one; an entry of the queue without one is stale).
    waiting: std::collections::VecDeque<u32>,
    wait_requests: HashMap<u32, (SocketAddrV4, Vec<u8>)>,
    rng: Rng,
    io: Io,
    r: Report,
    t0: Instant,
}

/// The fleet's scheduling priority: the devices have CPUs of their own, so on one machine the
/// simulator must not wait behind the server's threads (a fair scheduler gives one thread among
/// a server's eight an eighth of the machine, and the fleet would drop what the server sent).
const FLEET_NICE: libc::c_int = -10;

pub fn run(cfg: Config) -> Result<Report> {
    cfg.check()?;
    // SAFETY: setpriority on this process; no memory is passed.
    if unsafe { libc::setpriority(libc::PRIO_PROCESS, 0, FLEET_NICE) } != 0 {
        eprintln!(
            "storm: note: could not raise the fleet's priority to nice {FLEET_NICE}: {}",
            io::Error::last_os_error()
        );
    }
    let n = cfg.cms + cfg.mtas + cfg.routers + cfg.phones;
    if cfg.routers + cfg.phones > 0 {
        // Each open connection is a descriptor; the sockets and a margin besides.
        ensure_open_files(u64::from(cfg.max_connections) + 4 * cfg.cmtss.len() as u64 + 64)
            .context("--max-connections")?;
    }
    let epoll = Epoll::new()?;
    let mut relays = Vec::with_capacity(cfg.cmtss.len() * RELAYS_PER_CMTS);
    let mut relay_tx = Vec::with_capacity(cfg.cmtss.len() * RELAYS_PER_CMTS);
    for (k, c) in cfg.cmtss.iter().enumerate() {
        for (giaddr, ifname) in [
            (c.cm_giaddr, "cable1/0"),
            (c.mta_giaddr, "cable1/0.voice"),
            (c.cpe_giaddr, "cable1/0.cpe"),
        ] {
            let sock = fleet_socket(SocketAddrV4::new(giaddr, 67), BIG_BUFFER)
                .context("the relay socket")?;
            epoll.add(sock.fd(), RELAY_TOKEN_BASE + relay_tx.len() as u64)?;
            relay_tx.push(Tx::new(sock));
            relays.push(Relay {
                giaddr,
                circuit_id: format!("cmts{}:{ifname}", k + 1).into_bytes(),
            });
        }
    }
    let agent_addr = SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, cfg.agent_port);
    let agent = fleet_socket(agent_addr, BIG_BUFFER).context("the MTA agent socket")?;
    epoll.add(agent.fd(), AGENT_TOKEN)?;
    let dev_addr = SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, DEVICE_PORT);
    let dev_sock = fleet_socket(dev_addr, DEVICE_BUFFER).context("the device socket")?;
    epoll.add(dev_sock.fd(), DEVICE_TOKEN)?;

    let mut rng = Rng::new(cfg.seed);
    let t0 = Instant::now() + Duration::from_millis(20);
    let spread_ms = cfg.spread.as_millis() as u64;
    let mut devices = Vec::with_capacity(n as usize);
    let ncmts = cfg.cmtss.len() as u32;
    // Modems, then their MTAs, routers and phones: device k of each kind sits behind modem k
    // (82.2 is its MAC) while there are modems, on its CMTS's giaddr for the kind (CPEs share
    // one). Each kind's MACs have their own second byte.
    let kinds = [
        (Kind::Cm, cfg.cms, 0, CM_VENDOR_CLASS, CM_PARAMS, 0),
        (Kind::Mta, cfg.mtas, 1, MTA_VENDOR_CLASS, MTA_PARAMS, 1),
        (
            Kind::Router,
            cfg.routers,
            2,
            ROUTER_VENDOR_CLASS,
            ROUTER_PARAMS,
            2,
        ),
        (
            Kind::Phone,
            cfg.phones,
            3,
            PHONE_VENDOR_CLASS,
            PHONE_PARAMS,
            2,
        ),
    ];
    for (kind, count, salt, vendor_class, params, relay) in kinds {
        for k in 0..count {
            let mac = client_mac(cfg.salt.wrapping_add(salt), k);
            let remote_id = if kind != Kind::Cm && k < cfg.cms {
                client_mac(cfg.salt, k)
            } else {
                mac
            };
            let who = dhcp::Identity {
                mac,
                vendor_class,
                remote_id,
                params,
            };
            let at = t0 + Duration::from_millis(rng.below(spread_ms + 1));
            let index = devices.len() as u32;
            devices.push(Device::new(kind, index, who, relay_of(k, ncmts, relay), at));
        }
    }
    let by_mac = devices
        .iter()
        .filter(|d| d.kind == Kind::Mta)
        .map(|d| (d.who.mac, d.index))
        .collect();
    let shared = Shared {
        shared_secret: cfg.shared_secret.as_bytes().to_vec(),
        community: cfg.community.as_bytes().to_vec(),
        tftp: cfg.tftp,
        // A modem's TFTP client: 1 s per packet, 3 resends per try (then the try failed and the
        // backoff of `device.rs` applies).
        tftp_timeout: Duration::from_secs(1),
        tftp_retries: 3,
        // PacketCable's SNMP INFORM timing: 1 s, 3 resends; a flow may take 60 s.
        inform_timeout: Duration::from_secs(1),
        inform_retries: 3,
        flow_timeout: Duration::from_secs(60),
        acs_user: cfg.acs_user.clone(),
        acs_pass: cfg.acs_pass.clone(),
        // What a CPE's HTTP client waits for a response (TR-069 leaves it to the CPE; 30 s is
        // common).
        http_timeout: Duration::from_secs(30),
    };
    let mut e = Engine {
        r: Report {
            count: [cfg.cms, cfg.mtas, cfg.routers, cfg.phones],
            ..Report::default()
        },
        shared,
        relays,
        relay_tx,
        agent_tx: Tx::new(agent),
        dev_tx: Tx::new(dev_sock),
        epoll,
        timers: BinaryHeap::with_capacity(n as usize * 2),
        armed: vec![None; n as usize],
        by_mac,
        holders: HashMap::with_capacity(n as usize),
        conns: HashMap::new(),
        waiting: std::collections::VecDeque::new(),
        wait_requests: HashMap::new(),
        devices,
        rng,
        io: Io::default(),
        t0,
        cfg,
    };
    for i in 0..n {
        e.rearm(i);
    }
    let cpu0 = cpu_time();
    let wall0 = Instant::now();
    e.run()?;
    e.r.cpu = cpu_time().saturating_sub(cpu0);
    e.r.wall = wall0.elapsed();
    e.finish();
    Ok(e.r)
}

/// The relay socket of device `k` of its kind: CMTS `k mod n`, socket `which`.
fn relay_of(k: u32, ncmts: u32, which: usize) -> usize {
    RELAYS_PER_CMTS * (k % ncmts) as usize + which
}

impl Engine {
    fn rearm(&mut self, i: u32) {
        let next = self.devices[i as usize].next_timer();
        if next != self.armed[i as usize] {
            self.armed[i as usize] = next;
            if let Some(t) = next {
                self.timers.push(Reverse((t, i)));
            }
        }
    }

    fn run(&mut self) -> Result<()> {
        let end = self.t0 + self.cfg.deadline;
        let total = self.r.devices();
        let mut rx = RecvBatch::new(BATCH, SLOT);
        let mut events = vec![libc::epoll_event { events: 0, u64: 0 }; 1024];
        loop {
            let now = Instant::now();
            while let Some(&Reverse((t, i))) = self.timers.peek() {
                if t > now {
                    break;
                }
                self.timers.pop();
                if self.armed[i as usize] != Some(t) {
                    continue;
                }
                self.armed[i as usize] = None;
                self.tick(i, now);
            }
            self.flush();
            if self.r.online() == total || now >= end {
                return Ok(());
            }
            let next = self
                .timers
                .peek()
                .map_or(end, |r| r.0.0)
                .min(end)
                .min(now + Duration::from_millis(50));
            let n = self
                .epoll
                .wait(&mut events, next.saturating_duration_since(now))?;
            for ev in &events[..n] {
                let token = ev.u64;
                match token {
                    AGENT_TOKEN => self.drain_agent(&mut rx),
                    DEVICE_TOKEN => self.drain_devices(&mut rx),
                    t if t >= RELAY_TOKEN_BASE => {
                        self.drain_relay((t - RELAY_TOKEN_BASE) as usize, &mut rx)
                    }
                    t if t >= TCP_TOKEN_BASE => {
                        self.on_conn((t - TCP_TOKEN_BASE) as u32);
                    }
                    _ => {}
                }
            }
            self.flush();
        }
    }

    /// Sends what every socket has queued.
    fn flush(&mut self) {
        let io = &mut self.io;
        for tx in self
            .relay_tx
            .iter_mut()
            .chain([&mut self.agent_tx, &mut self.dev_tx])
        {
            if !tx.batch.is_empty() {
                tx.flush(io);
            }
        }
    }

    /// The datagrams queued on one socket, a few batches at most so that the timers and the
    /// other sockets get their turn in a burst; `each` gets each datagram and where it went.
    fn drain(
        &mut self,
        which: impl Fn(&Engine) -> &UdpSocket,
        rx: &mut RecvBatch,
        mut each: impl FnMut(&mut Engine, &[u8], provd_udp::Meta),
    ) {
        for _ in 0..4 {
            let n = match which(self).recv_batch(rx, Wait::No) {
                Ok(n) => n,
                Err(_) => {
                    self.r.recv_errors += 1;
                    return;
                }
            };
            self.r.datagrams_received += n as u64;
            for i in 0..n {
                let (bytes, meta) = rx.get(i);
                each(self, bytes, meta);
            }
            if n < rx.capacity() {
                return;
            }
        }
    }

    fn tick(&mut self, i: u32, now: Instant) {
        let d = &mut self.devices[i as usize];
        let io = &mut self.io;
        let tx = &mut self.dev_tx;
        let from = d.lease.as_ref().map(|l| l.addr);
        let fx = d.on_tick(
            &self.shared,
            &self.relays,
            now,
            &mut self.rng,
            &mut |to, b| send_as(tx, from, to, b, io),
        );
        self.apply(i, fx, now);
    }

    /// Carries out what a device asked for, then re-arms its timer.
    fn apply(&mut self, i: u32, fx: Effects, now: Instant) {
        let d = &self.devices[i as usize];
        if fx.dhcp
            && let Some(c) = d.dhcp.as_ref()
        {
            self.relay_tx[d.relay].send(
                Ipv4Addr::UNSPECIFIED,
                SocketAddrV4::new(self.cfg.server, 67),
                &c.out,
                &mut self.io,
            );
        }
        for s in &fx.setbacks {
            self.r.setbacks += 1;
            if s.refused {
                match d.kind {
                    Kind::Cm | Kind::Mta => self.r.tftp_refused += 1,
                    Kind::Router | Kind::Phone => self.r.http_refused += 1,
                }
            }
            let mac = d.who.mac;
            self.r
                .reasons
                .entry(s.kind.clone())
                .or_insert(Reason {
                    count: 0,
                    first_mac: mac,
                })
                .count += 1;
        }
        if fx.online {
            let d = &self.devices[i as usize];
            let took = now.saturating_duration_since(d.boot);
            self.r.online_by[d.kind.at()] += 1;
            self.r.ms[d.kind.at()].record(millis(took));
            self.r.last_online = Some(now.saturating_duration_since(self.t0));
        }
        if fx.close {
            self.close(i);
        }
        if let Some((to, req)) = fx.http {
            self.http(i, to, req, now);
        }
        if let Some(lease) = fx.bound {
            self.bound(i, &lease, now);
        }
        self.rearm(i);
    }

    /// Sends device `i`'s request on its open connection, or opens one (or waits for a slot).
    fn http(&mut self, i: u32, to: SocketAddrV4, req: Vec<u8>, now: Instant) {
        if let Some(c) = self.conns.get_mut(&i) {
            c.send(req);
            if let Err(e) = self
                .epoll
                .watch(c.fd(), TCP_TOKEN_BASE + u64::from(i), true, false)
            {
                self.conn_failed(i, format!("epoll: {e}"), now);
            }
            return;
        }
        if self.conns.len() >= self.cfg.max_connections as usize {
            self.r.tcp_waits += 1;
            if self.wait_requests.insert(i, (to, req)).is_none() {
                self.waiting.push_back(i);
            }
            return;
        }
        let Some(from) = self.devices[i as usize].lease.as_ref().map(|l| l.addr) else {
            return;
        };
        let opened = tcp::connect_from(from, to).and_then(|mut c| {
            c.send(req);
            self.epoll
                .watch(c.fd(), TCP_TOKEN_BASE + u64::from(i), true, true)
                .map(|()| c)
        });
        match opened {
            Ok(c) => {
                self.conns.insert(i, c);
                self.r.tcp_peak = self.r.tcp_peak.max(self.conns.len() as u64);
            }
            Err(e) => self.conn_failed(i, format!("connect: {e}"), now),
        }
    }

    /// Closes device `i`'s connection, if open, and gives its slot to the next in line.
    fn close(&mut self, i: u32) {
        self.wait_requests.remove(&i);
        if self.conns.remove(&i).is_none() {
            return;
        }
        while self.conns.len() < self.cfg.max_connections as usize {
            let Some(next) = self.waiting.pop_front() else {
                break;
            };
            if let Some((to, req)) = self.wait_requests.remove(&next) {
                self.http(next, to, req, Instant::now());
            }
        }
    }

    fn conn_failed(&mut self, i: u32, why: String, now: Instant) {
        self.r.tcp_failures += 1;
        self.close(i);
        let fx = self.devices[i as usize].on_http(&self.shared, Err(why), now, &mut self.rng);
        self.apply(i, fx, now);
    }

    /// Device `i`'s connection is writable or has input.
    fn on_conn(&mut self, i: u32) {
        let now = Instant::now();
        let Some(c) = self.conns.get_mut(&i) else {
            return;
        };
        let progress = if !c.wants_out {
            // Watched for input only: whatever woke us (data, hang-up, error), read.
            c.on_readable()
        } else {
            match c.on_writable() {
                tcp::Progress::Pending if !c.wants_out => {
                    // The request is out: wait for the answer.
                    let token = TCP_TOKEN_BASE + u64::from(i);
                    match self.epoll.watch(c.fd(), token, false, false) {
                        Ok(()) => tcp::Progress::Pending,
                        Err(e) => tcp::Progress::Failed(format!("epoll: {e}")),
                    }
                }
                p => p,
            }
        };
        match progress {
            tcp::Progress::Pending => {}
            tcp::Progress::Failed(why) => self.conn_failed(i, why, now),
            tcp::Progress::Response(r) => {
                if r.close {
                    self.close(i);
                }
                let fx = self.devices[i as usize].on_http(&self.shared, Ok(&r), now, &mut self.rng);
                self.apply(i, fx, now);
            }
        }
    }

    /// The ACK came: check no one else holds the address, go on.
    fn bound(&mut self, i: u32, lease: &dhcp::Lease, now: Instant) {
        match self.holders.insert(lease.addr, i) {
            Some(other) if other != i => {
                self.r.double_allocations += 1;
                let mac = self.devices[i as usize].who.mac;
                let other_mac = self.devices[other as usize].who.mac;
                self.r
                    .reasons
                    .entry(format!(
                        "DOUBLE ALLOCATION of {} (also held by {})",
                        lease.addr,
                        msg::mac_colons(other_mac)
                    ))
                    .or_insert(Reason {
                        count: 0,
                        first_mac: mac,
                    })
                    .count += 1;
            }
            _ => {}
        }
        let io = &mut self.io;
        let tx = &mut self.dev_tx;
        let from = Some(lease.addr);
        let fx = self.devices[i as usize]
            .begin(&self.shared, now, &mut |to, b| send_as(tx, from, to, b, io));
        self.apply(i, fx, now);
    }

    fn drain_relay(&mut self, k: usize, rx: &mut RecvBatch) {
        self.drain(
            |e| &e.relay_tx[k].sock,
            rx,
            |e, bytes, _| {
                let Some(reply) = dhcp::read_reply(bytes) else {
                    e.r.stray_replies += 1;
                    return;
                };
                let i = dhcp::Client::device_of(reply.xid);
                if i >= e.r.devices() {
                    e.r.stray_replies += 1;
                    return;
                }
                let now = Instant::now();
                let d = &mut e.devices[i as usize];
                let relay = &e.relays[d.relay];
                let fx = d.on_dhcp(&reply, relay, now, &mut e.rng);
                e.apply(i, fx, now);
            },
        );
    }

    /// Datagrams to the devices' addresses, each to the device holding its destination.
    fn drain_devices(&mut self, rx: &mut RecvBatch) {
        self.drain(
            |e| &e.dev_tx.sock,
            rx,
            |e, bytes, meta| {
                let dst = meta.local;
                let Some(&i) = e.holders.get(&dst) else {
                    e.r.stray_replies += 1;
                    return;
                };
                let now = Instant::now();
                let io = &mut e.io;
                let tx = &mut e.dev_tx;
                let fx = e.devices[i as usize].on_datagram(
                    &e.shared,
                    meta.src,
                    bytes,
                    now,
                    &mut |to, b| send_as(tx, Some(dst), to, b, io),
                );
                e.apply(i, fx, now);
            },
        );
    }

    fn drain_agent(&mut self, rx: &mut RecvBatch) {
        self.drain(
            |e| &e.agent_tx.sock,
            rx,
            |e, bytes, meta| {
                let from = meta.src;
                let Ok(set) = msg::read_set(bytes, e.cfg.set_community.as_bytes()) else {
                    e.r.agent_rejected += 1;
                    return;
                };
                let device = set
                    .url
                    .as_deref()
                    .and_then(msg::mac_in_url)
                    .and_then(|mac| e.by_mac.get(&mac).copied());
                let Some(i) = device else {
                    e.r.sets_unknown += 1;
                    return;
                };
                let Some(addr) = e.devices[i as usize].lease.as_ref().map(|l| l.addr) else {
                    e.r.sets_unknown += 1;
                    return;
                };
                // The agent answers from the MTA's own address, where the SET was sent.
                e.agent_tx
                    .send(addr, from, &msg::set_response(&set), &mut e.io);
                e.r.sets_answered += 1;
                let now = Instant::now();
                let io = &mut e.io;
                let tx = &mut e.dev_tx;
                let fx = e.devices[i as usize].on_set(
                    set.url.as_deref(),
                    set.hash.as_deref(),
                    now,
                    &mut |to, b| send_as(tx, Some(addr), to, b, io),
                );
                e.apply(i, fx, now);
            },
        );
    }

    /// Tallies the funnel, the retries, the lost devices and the timeline.
    fn finish(&mut self) {
        let r = &mut self.r;
        r.datagrams_sent = self.io.sent;
        r.send_errors = self.io.send_errors;
        let drops = |tx: &Tx| u64::from(socket_drops(tx.sock.fd()).unwrap_or(0));
        r.dropped_relay = self.relay_tx.iter().map(drops).sum();
        r.dropped_device = drops(&self.dev_tx);
        r.dropped_agent = drops(&self.agent_tx);
        let mut online_at: Vec<(Duration, Kind)> = Vec::new();
        for d in &self.devices {
            let f = r.funnel.entry(d.kind).or_insert([0; 5]);
            let m = &d.marks;
            let h = r
                .stages
                .entry(d.kind)
                .or_insert_with(|| std::array::from_fn(|_| Histogram::new()));
            let mut prev = Some(d.boot);
            for (slot, mark) in [m.acked, m.file, m.second, m.online]
                .into_iter()
                .enumerate()
            {
                if let (Some(a), Some(b)) = (prev, mark) {
                    h[slot].record(millis(b.saturating_duration_since(a)));
                }
                prev = mark;
            }
            for (slot, mark) in [m.offered, m.acked, m.file, m.second, m.online]
                .into_iter()
                .enumerate()
            {
                if mark.is_some() {
                    f[slot] += 1;
                }
            }
            if let Some(c) = &d.dhcp {
                r.dhcp_resends += u64::from(c.resends);
                r.naks += u64::from(c.naks);
                r.dhcp_restarts += u64::from(c.restarts);
            }
            match d.kind {
                Kind::Cm => r.file_retries += u64::from(d.retries),
                Kind::Mta => r.flow_retries += u64::from(d.retries),
                Kind::Router | Kind::Phone => r.http_retries += u64::from(d.retries),
            }
            r.redhcp += u64::from(d.redhcp);
            if let Some(t) = m.online {
                let k = d.relay / RELAYS_PER_CMTS;
                if r.per_cmts_ms.len() <= k {
                    r.per_cmts_ms.resize_with(k + 1, Histogram::new);
                }
                r.per_cmts_ms[k].record(millis(t.saturating_duration_since(d.boot)));
            }
            match m.online {
                Some(t) => online_at.push((t.saturating_duration_since(self.t0), d.kind)),
                None => r.lost.push((d.who.mac, d.kind, d.phase)),
            }
        }
        online_at.sort_unstable();
        let horizon = online_at
            .last()
            .map_or(Duration::ZERO, |l| l.0)
            .max(self.cfg.spread);
        let (mut by, mut j) = ([0u32; 4], 0usize);
        let mut t = Duration::ZERO;
        loop {
            while j < online_at.len() && online_at[j].0 <= t {
                by[online_at[j].1.at()] += 1;
                j += 1;
            }
            r.timeline.push((t.as_secs_f64(), by));
            if t >= horizon {
                break;
            }
            t += TIMELINE_STEP;
        }
    }
}

/// Writes the report's files (timeline CSV, lost devices) where the config says.
pub fn write_files(cfg: &Config, r: &Report) -> Result<()> {
    if let Some(p) = &cfg.timeline {
        std::fs::write(p, r.timeline_csv()).with_context(|| format!("writing {}", p.display()))?;
    }
    if let Some(p) = &cfg.lost_file {
        let mut text = String::new();
        for (mac, kind, phase) in &r.lost {
            let _ = writeln!(
                text,
                "{} {} {}",
                msg::mac_colons(*mac),
                kind.name(),
                phase.name()
            );
        }
        std::fs::write(p, text).with_context(|| format!("writing {}", p.display()))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rng_below_stays_in_range_and_spreads() {
        let mut r = Rng::new(42);
        let mut seen = [0u32; 10];
        for _ in 0..10_000 {
            let v = r.below(10);
            seen[v as usize] += 1;
        }
        assert!(seen.iter().all(|&n| (800..1200).contains(&n)), "{seen:?}");
        assert_eq!(r.below(1), 0);
    }

    #[test]
    fn fairness_names_the_slowest_cmts() {
        let mut r = Report::default();
        assert_eq!(r.fairness(), None);
        for (k, ms) in [(0, 1_000), (1, 9_000), (2, 2_000)] {
            r.per_cmts_ms.resize_with(3, Histogram::new);
            r.per_cmts_ms[k].record(ms);
        }
        let f = r.fairness().unwrap();
        assert!(
            f.starts_with("storm fairness: per-CMTS p99 s min=1.000 median=2.000 max=9."),
            "{f}"
        );
        assert!(f.ends_with("(slowest cmts2)"), "{f}");
    }

    #[test]
    fn the_result_line_says_never_when_devices_are_lost() {
        let mut r = Report {
            count: [2, 1, 0, 0],
            online_by: [2, 0, 0, 0],
            last_online: Some(Duration::from_millis(1500)),
            ..Report::default()
        };
        assert!(
            r.line().contains("online=2 lost=1 all_online_s=never"),
            "{}",
            r.line()
        );
        assert!(!r.all_ok());
        r.online_by[1] = 1;
        assert!(
            r.line().contains("lost=0 all_online_s=1.500"),
            "{}",
            r.line()
        );
        assert!(r.all_ok());
        r.double_allocations = 1;
        assert!(!r.all_ok());
    }
}
