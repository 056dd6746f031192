//! The DORA load loop: open-loop starts at a target rate under a cap on outstanding exchanges,
//! one thread, batched non-blocking I/O, no retransmission. Per exchange it measures the time from
//! sending the DISCOVER to receiving the ACK.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::net::{Ipv4Addr, SocketAddrV4};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use provd_dhcp::MessageType;

use crate::hist::Histogram;
use crate::io::{BATCH, RecvBatch, SendQueue, Socket};
use crate::packet;

/// How often outstanding exchanges are checked for timeout.
const SCAN_EVERY_NS: u64 = 2_000_000;
/// Receive batches drained per loop turn before starting new exchanges again.
const RECV_ROUNDS: usize = 8;
/// Largest window: slot numbers live in the low bits of the xid.
pub const MAX_WINDOW: u32 = 1 << 20;

#[derive(Debug, Clone)]
pub struct Config {
    pub server: SocketAddrV4,
    pub relay: SocketAddrV4,
    /// Distinct clients (MAC addresses); exchange k uses client k mod clients.
    pub clients: u32,
    /// Exchanges to start in total.
    pub count: u64,
    /// Exchanges started per second; 0 = as fast as the window allows.
    pub rate: u64,
    /// Most exchanges outstanding at once.
    pub window: u32,
    /// No exchange starts after this; the run ends at most `timeout` later.
    pub duration: Duration,
    pub timeout: Duration,
    pub salt: u8,
    pub dump_acks: Option<PathBuf>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Free,
    Discovering,
    Requesting,
}

#[derive(Debug, Clone, Copy)]
struct Slot {
    xid: u32,
    client: u32,
    start_ns: u64,
    state: State,
}

/// What one run measured.
#[derive(Debug)]
pub struct Report {
    /// Exchanges started (DISCOVERs sent).
    pub sent: u64,
    /// Exchanges that ended in an ACK within the timeout.
    pub completed: u64,
    pub offers: u64,
    pub acks: u64,
    pub naks: u64,
    /// Exchanges not completed within the timeout (NAKed ones are counted in `naks`).
    pub drops: u64,
    /// Replies matching no outstanding exchange (late, duplicate, or foreign).
    pub stray: u64,
    pub datagrams_sent: u64,
    /// First DISCOVER sent to last ACK received.
    pub measured: Duration,
    pub wall: Duration,
    /// DISCOVER-sent to ACK-received, in microseconds.
    pub latency_us: Histogram,
}

impl Report {
    pub fn dora_per_s(&self) -> f64 {
        let s = self.measured.as_secs_f64();
        if self.completed == 0 || s <= 0.0 {
            0.0
        } else {
            self.completed as f64 / s
        }
    }

    /// Exchanges that did not end in an ACK within the timeout (timed out or NAKed), as a
    /// percentage of those started.
    pub fn drops_pct(&self) -> f64 {
        if self.sent == 0 {
            0.0
        } else {
            100.0 * self.sent.saturating_sub(self.completed) as f64 / self.sent as f64
        }
    }

    /// The one line the harness (and people) read.
    pub fn line(&self) -> String {
        format!(
            "LOADGEN sent={} completed={} dora_per_s={:.1} drops_pct={:.2} naks={} p50_ms={:.3} \
             p99_ms={:.3} offers={} acks={}",
            self.sent,
            self.completed,
            self.dora_per_s(),
            self.drops_pct(),
            self.naks,
            self.latency_us.quantile(0.50) as f64 / 1000.0,
            self.latency_us.quantile(0.99) as f64 / 1000.0,
            self.offers,
            self.acks,
        )
    }

    /// Details that do not belong in the summary line.
    pub fn detail(&self) -> String {
        format!(
            "loadgen: measured_s={:.3} wall_s={:.3} drops={} stray={} datagrams_sent={} \
             samples={} p999_ms={:.3} max_ms={:.3}",
            self.measured.as_secs_f64(),
            self.wall.as_secs_f64(),
            self.drops,
            self.stray,
            self.datagrams_sent,
            self.latency_us.count(),
            self.latency_us.quantile(0.999) as f64 / 1000.0,
            self.latency_us.max() as f64 / 1000.0,
        )
    }
}

struct Engine {
    cfg: Config,
    sock: Socket,
    q: SendQueue,
    slots: Vec<Slot>,
    free: Vec<u32>,
    slot_bits: u32,
    t0: Instant,
    acks_out: Option<BufWriter<File>>,
    started: u64,
    completed: u64,
    offers: u64,
    acks: u64,
    naks: u64,
    drops: u64,
    stray: u64,
    last_ack_ns: u64,
    hist: Histogram,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field("started", &self.started)
            .finish()
    }
}

fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

/// Runs the load and returns what it measured.
pub fn run(cfg: Config) -> Result<Report> {
    if cfg.window == 0 || cfg.window > MAX_WINDOW {
        bail!("--window must be in 1..={MAX_WINDOW}");
    }
    if cfg.clients == 0 {
        bail!("--clients must be at least 1");
    }
    if u64::from(cfg.window) > u64::from(cfg.clients) {
        bail!("--window must not exceed --clients (a client runs one exchange at a time)");
    }
    let sock = Socket::bind(cfg.relay)
        .with_context(|| format!("binding the relay socket to {}", cfg.relay))?;
    let acks_out = match &cfg.dump_acks {
        Some(p) => Some(BufWriter::with_capacity(
            1 << 16,
            File::create(p).with_context(|| format!("creating {}", p.display()))?,
        )),
        None => None,
    };
    let slot_bits = 32 - (cfg.window - 1).leading_zeros();
    let t0 = Instant::now();
    let gen_seed = (nanos(std::time::UNIX_EPOCH.elapsed().unwrap_or_default()) as u32)
        .rotate_left(13)
        ^ std::process::id();
    let mut e = Engine {
        q: SendQueue::new(cfg.server),
        // Generations start at a per-run value: replies meant for another run don't match.
        slots: (0..cfg.window)
            .map(|i| Slot {
                xid: shift_gen(
                    gen_seed.wrapping_add(i.wrapping_mul(0x9e37_79b9)),
                    slot_bits,
                ) | i,
                client: 0,
                start_ns: 0,
                state: State::Free,
            })
            .collect(),
        free: (0..cfg.window).rev().collect(),
        slot_bits,
        t0,
        acks_out,
        started: 0,
        completed: 0,
        offers: 0,
        acks: 0,
        naks: 0,
        drops: 0,
        stray: 0,
        last_ack_ns: 0,
        hist: Histogram::new(),
        sock,
        cfg,
    };
    e.run()?;
    if let Some(w) = e.acks_out.as_mut() {
        w.flush().context("writing the ACK dump")?;
    }
    Ok(Report {
        sent: e.started,
        completed: e.completed,
        offers: e.offers,
        acks: e.acks,
        naks: e.naks,
        drops: e.drops,
        stray: e.stray,
        datagrams_sent: e.q.sent,
        measured: Duration::from_nanos(e.last_ack_ns),
        wall: e.t0.elapsed(),
        latency_us: e.hist,
    })
}

impl Engine {
    fn now_ns(&self) -> u64 {
        nanos(self.t0.elapsed())
    }

    fn outstanding(&self) -> usize {
        self.slots.len() - self.free.len()
    }

    fn run(&mut self) -> Result<()> {
        let stop_start = nanos(self.cfg.duration);
        let timeout = nanos(self.cfg.timeout);
        let end = stop_start.saturating_add(timeout);
        let mut rb = RecvBatch::new();
        let mut last_scan = 0u64;
        loop {
            let now = self.now_ns();
            let starting = now < stop_start && self.started < self.cfg.count;
            if (!starting && self.outstanding() == 0) || now >= end {
                break;
            }
            let mut progress = false;
            for _ in 0..RECV_ROUNDS {
                let n = rb.recv(&self.sock).context("recvmmsg")?;
                if n == 0 {
                    break;
                }
                progress = true;
                let now = self.now_ns();
                for i in 0..n {
                    self.handle(rb.get(i), now, end)?;
                }
                if n < BATCH {
                    break;
                }
            }
            if starting {
                let due = if self.cfg.rate == 0 {
                    u64::MAX
                } else {
                    // Exchange k is due at k/rate seconds.
                    (u128::from(now) * u128::from(self.cfg.rate) / 1_000_000_000) as u64 + 1
                };
                let budget = due
                    .min(self.cfg.count)
                    .saturating_sub(self.started)
                    .min(self.free.len() as u64);
                for _ in 0..budget {
                    self.start(now, end)?;
                }
                progress |= budget > 0;
            }
            self.flush_all(end)?;
            if now.saturating_sub(last_scan) >= SCAN_EVERY_NS {
                self.expire(now, timeout);
                last_scan = now;
            }
            if !progress {
                // Nothing to do until a reply comes, the next start is due, or a scan is due.
                let mut wake = (last_scan + SCAN_EVERY_NS).min(end);
                if starting {
                    wake = wake.min(stop_start);
                    if self.cfg.rate > 0 && !self.free.is_empty() {
                        let next = (u128::from(self.started) * 1_000_000_000
                            / u128::from(self.cfg.rate)) as u64;
                        wake = wake.min(next);
                    }
                }
                let now = self.now_ns();
                if wake > now {
                    self.sock
                        .wait(false, Duration::from_nanos(wake - now))
                        .context("ppoll")?;
                }
            }
        }
        // Whatever is still outstanding had its full timeout (or was cut by the hard end).
        let left = self.outstanding() as u64;
        self.drops += left;
        Ok(())
    }

    /// The next xid for `slot`: the slot number in the low bits, a generation bumped on every
    /// use above them, so replies to an earlier exchange in the same slot don't match.
    fn xid_for(&self, slot: u32) -> u32 {
        let generation = (self.slots[slot as usize].xid >> self.slot_bits).wrapping_add(1);
        shift_gen(generation, self.slot_bits) | slot
    }

    fn start(&mut self, now: u64, end: u64) -> Result<()> {
        let slot = self.free.pop().expect("budget bounded by free slots");
        let client = (self.started % u64::from(self.cfg.clients)) as u32;
        let xid = self.xid_for(slot);
        self.slots[slot as usize] = Slot {
            xid,
            client,
            start_ns: now,
            state: State::Discovering,
        };
        self.started += 1;
        let mac = packet::client_mac(self.cfg.salt, client);
        let relay = *self.cfg.relay.ip();
        if self.q.is_full() {
            self.flush_all(end)?;
        }
        self.q.push(|b| packet::discover(b, xid, mac, relay));
        Ok(())
    }

    fn handle(&mut self, dgram: &[u8], now: u64, end: u64) -> Result<()> {
        let Some(r) = packet::parse_reply(dgram) else {
            self.stray += 1;
            return Ok(());
        };
        let mask = if self.slot_bits >= 32 {
            u32::MAX
        } else {
            (1u32 << self.slot_bits) - 1
        };
        let idx = (r.xid & mask) as usize;
        let Some(slot) = self.slots.get(idx).copied() else {
            self.stray += 1;
            return Ok(());
        };
        if slot.state == State::Free
            || slot.xid != r.xid
            || r.mac != packet::client_mac(self.cfg.salt, slot.client)
        {
            self.stray += 1;
            return Ok(());
        }
        match (slot.state, r.kind) {
            (State::Discovering, MessageType::Offer) => {
                self.offers += 1;
                let server_id = r.server_id.unwrap_or(*self.cfg.server.ip());
                let relay = *self.cfg.relay.ip();
                let mac = r.mac;
                let offered = r.yiaddr;
                self.slots[idx].state = State::Requesting;
                if self.q.is_full() {
                    self.flush_all(end)?;
                }
                self.q.push(|b| {
                    packet::request_selecting(b, slot.xid, mac, relay, server_id, offered)
                });
            }
            (State::Requesting, MessageType::Ack) => {
                self.acks += 1;
                self.completed += 1;
                self.hist.record(now.saturating_sub(slot.start_ns) / 1000);
                self.last_ack_ns = self.last_ack_ns.max(now);
                if let Some(w) = self.acks_out.as_mut() {
                    write_pair(w, r.mac, r.yiaddr).context("writing the ACK dump")?;
                }
                self.release(idx);
            }
            (_, MessageType::Nak) => {
                self.naks += 1;
                self.release(idx);
            }
            _ => self.stray += 1,
        }
        Ok(())
    }

    fn release(&mut self, idx: usize) {
        self.slots[idx].state = State::Free;
        self.free.push(idx as u32);
    }

    fn expire(&mut self, now: u64, timeout: u64) {
        for i in 0..self.slots.len() {
            let s = self.slots[i];
            if s.state != State::Free && now.saturating_sub(s.start_ns) >= timeout {
                self.drops += 1;
                self.release(i);
            }
        }
    }

    /// Sends everything queued, waiting for socket space if the kernel pushes back.
    fn flush_all(&mut self, end: u64) -> Result<()> {
        while !self.q.flush(&self.sock).context("sendmmsg")? {
            if self.now_ns() >= end {
                bail!("the socket would not take datagrams until the end of the run");
            }
            self.sock
                .wait(true, Duration::from_millis(1))
                .context("ppoll")?;
        }
        Ok(())
    }
}

fn shift_gen(generation: u32, slot_bits: u32) -> u32 {
    generation.checked_shl(slot_bits).unwrap_or(0)
}

/// Writes one `mac addr` line.
pub fn write_pair(w: &mut impl Write, mac: [u8; 6], addr: Ipv4Addr) -> std::io::Result<()> {
    writeln!(
        w,
        "{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x} {addr}",
        mac[0], mac[1], mac[2], mac[3], mac[4], mac[5]
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pair_lines_parse_back() {
        let mut out = Vec::new();
        write_pair(
            &mut out,
            [2, 0, 0, 1, 0xab, 0xcd],
            Ipv4Addr::new(198, 19, 0, 10),
        )
        .unwrap();
        assert_eq!(out, b"02:00:00:01:ab:cd 198.19.0.10\n");
        let pairs = crate::verify::parse_pairs(std::str::from_utf8(&out).unwrap()).unwrap();
        assert_eq!(
            pairs,
            vec![crate::verify::Pair {
                mac: [2, 0, 0, 1, 0xab, 0xcd],
                addr: Ipv4Addr::new(198, 19, 0, 10),
                client_id: None,
            }]
        );
    }

    /// A stand-in server on loopback: answers the sender, ignores DISCOVERs from clients whose
    /// last MAC byte is 0 mod 10 and NAKs REQUESTs from those at 1 mod 10.
    fn fake_server(
        sock: std::net::UdpSocket,
        stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    ) -> u64 {
        use provd_dhcp::{Header, Message, MessageWriter, code};
        sock.set_read_timeout(Some(Duration::from_millis(20)))
            .unwrap();
        let mut buf = [0u8; 1500];
        let mut out = Vec::new();
        let mut answered = 0;
        while !stop.load(std::sync::atomic::Ordering::Relaxed) {
            let Ok((n, from)) = sock.recv_from(&mut buf) else {
                continue;
            };
            let m = Message::parse(&buf[..n]).unwrap();
            let mac = m.mac().unwrap();
            let kind = match (m.message_type().unwrap().unwrap(), mac[5] % 10) {
                (MessageType::Discover, 0) => continue,
                (MessageType::Discover, _) => MessageType::Offer,
                (MessageType::Request, 1) => MessageType::Nak,
                (MessageType::Request, _) => MessageType::Ack,
                _ => continue,
            };
            let mut h = Header::reply(m.xid(), *m.chaddr_field(), 1, 6);
            h.giaddr = m.giaddr();
            if kind != MessageType::Nak {
                h.yiaddr = Ipv4Addr::new(10, 0, mac[4], mac[5]);
            }
            let mut w = MessageWriter::new(&mut out, &h, 548).unwrap();
            w.option(code::MESSAGE_TYPE, &[kind as u8])
                .unwrap()
                .ipv4(code::SERVER_ID, Ipv4Addr::LOCALHOST)
                .unwrap();
            let len = w.finish().unwrap();
            sock.send_to(&out[..len], from).unwrap();
            answered += 1;
        }
        answered
    }

    #[test]
    fn dora_against_a_lossy_server() {
        use std::sync::Arc;
        use std::sync::atomic::{AtomicBool, Ordering};
        let server = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let server_addr = match server.local_addr().unwrap() {
            std::net::SocketAddr::V4(a) => a,
            _ => unreachable!(),
        };
        let stop = Arc::new(AtomicBool::new(false));
        let t = std::thread::spawn({
            let stop = Arc::clone(&stop);
            move || fake_server(server, stop)
        });
        let dump = std::env::temp_dir().join(format!("loadgen-test-{}.acks", std::process::id()));
        let r = run(Config {
            server: server_addr,
            relay: SocketAddrV4::new(Ipv4Addr::LOCALHOST, 0),
            clients: 1000,
            count: 2000,
            rate: 0,
            window: 32,
            duration: Duration::from_secs(20),
            timeout: Duration::from_millis(100),
            salt: 9,
            dump_acks: Some(dump.clone()),
        })
        .unwrap();
        stop.store(true, Ordering::Relaxed);
        t.join().unwrap();
        // Every exchange ends exactly one way.
        assert_eq!(r.sent, 2000);
        assert_eq!(r.completed + r.naks + r.drops, r.sent, "{r:?}");
        assert_eq!(r.acks, r.completed);
        // Client k mod 1000 is the same client both rounds: count what the rule predicts.
        let by_rule = |rem: u8| {
            (0..1000u32)
                .filter(|&i| packet::client_mac(9, i)[5] % 10 == rem)
                .count() as u64
                * 2
        };
        assert_eq!(r.drops, by_rule(0));
        assert_eq!(r.naks, by_rule(1));
        assert_eq!(r.offers, r.sent - r.drops);
        assert_eq!(r.latency_us.count(), r.completed);
        assert!(r.dora_per_s() > 0.0);
        let pct = 100.0 * (r.sent - r.completed) as f64 / r.sent as f64;
        assert!((r.drops_pct() - pct).abs() < 1e-9);
        let text = std::fs::read_to_string(&dump).unwrap();
        std::fs::remove_file(&dump).unwrap();
        let pairs = crate::verify::parse_pairs(&text).unwrap();
        assert_eq!(pairs.len() as u64, r.completed);
        for p in pairs {
            assert_eq!(p.addr, Ipv4Addr::new(10, 0, p.mac[4], p.mac[5]));
            assert_eq!(p.client_id, None);
        }
    }

    #[test]
    fn report_arithmetic() {
        let mut latency_us = Histogram::new();
        latency_us.record(1500);
        let r = Report {
            sent: 200,
            completed: 100,
            offers: 150,
            acks: 100,
            naks: 10,
            drops: 90,
            stray: 0,
            datagrams_sent: 350,
            measured: Duration::from_secs(2),
            wall: Duration::from_secs(3),
            latency_us,
        };
        assert_eq!(
            r.line(),
            "LOADGEN sent=200 completed=100 dora_per_s=50.0 drops_pct=50.00 naks=10 \
             p50_ms=1.500 p99_ms=1.500 offers=150 acks=100"
        );
    }
}
