//! `provd-loadgen mta`: a fleet of simulated PacketCable MTAs, each running a complete HYBRID.2
//! provisioning flow against one provisioning server (see `flow.rs` for the steps): enrollment
//! INFORM, the server's SET of the config file URL and hash, the TFTP fetch with the hash
//! checked, the status INFORM (pass).
//!
//! One thread drives everything through epoll: one UDP socket per flow in flight (its own
//! source port: the INFORMs and the TFTP transfer), and one agent socket on `BIND:161` that
//! receives every SET, answers it (Response, same request-id, varbinds echoed, noError) and
//! hands it to the flow whose MAC the URL names (`mta/<mac12>.bin`). Flow k is MTA
//! `--mac-base + k`, so every flow is a distinct device. The last line printed is
//!
//! `RESULT mta-load flows=N flows_per_s=X p50_ms=L p99_ms=L failed=F timeouts=T`
//!
//! `flows` counts flows whose status INFORM was answered after a file with the SET's hash;
//! `flows_per_s` is the steady rate: the flows completed while the fleet was still starting
//! new ones (up to `--seconds`, or to the last completion when `--count` ran out first) over
//! that time, so that a few stragglers finishing seconds after the end (an INFORM lost and
//! resent) do not stretch the measured time;
//! the percentiles are enrollment sent → status answered, `failed` counts flows that ended in
//! an error (wrong hash, bad SET, TFTP error, error-status) and `timeouts` flows that ran out
//! of time or retries (or were still running at the hard end).

pub mod flow;
pub mod msg;

use std::collections::{BTreeMap, HashMap};
use std::io;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4, UdpSocket};
use std::os::fd::AsRawFd;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

use crate::hist::Histogram;
use crate::sys::{Epoll, cpu_time, ensure_open_files, set_buffers};
use crate::tftp::packet::RequestOptions;
use flow::{Failure, Flow, FlowSetup, Progress};
use msg::Identity;

/// The most flows one run may start.
pub const MAX_COUNT: u64 = 10_000_000;
/// The longest a run may start flows for.
pub const MAX_SECONDS: f64 = 3600.0;
/// The most flows in flight (one socket each).
pub const MAX_CONCURRENCY: usize = 16_384;
/// How often the flows' timers are looked at; every timeout is far longer.
const TICK: Duration = Duration::from_millis(5);
/// Failure kinds kept with an example MAC.
const EXAMPLES: usize = 12;
const AGENT_TOKEN: u64 = u64::MAX;
/// Receive and send buffer of the agent socket.
const AGENT_BUFFER: libc::c_int = 4 << 20;

#[derive(Debug, Clone)]
pub struct Config {
    /// The provisioning server's notification address (UDP 162).
    pub server: SocketAddrV4,
    /// Source address of every flow and of the agent socket; the server SETs to `bind:agent_port`.
    pub bind: Ipv4Addr,
    pub agent_port: u16,
    pub count: u64,
    pub concurrency: usize,
    /// No flow starts after this; the running ones get `flow_timeout` more.
    pub duration: Duration,
    /// Community of the INFORMs.
    pub community: String,
    /// Community a SET must carry to be taken.
    pub set_community: String,
    /// MTA k is `mac_base + k`.
    pub mac_base: [u8; 6],
    /// INFORM (and TFTP) resend interval.
    pub timeout: Duration,
    pub retries: u32,
    pub tftp: RequestOptions,
    pub flow_timeout: Duration,
}

impl Config {
    fn check(&self) -> Result<()> {
        if self.concurrency == 0 || self.concurrency > MAX_CONCURRENCY {
            bail!("--concurrency must be in 1..={MAX_CONCURRENCY}");
        }
        if self.count == 0 || self.count > MAX_COUNT {
            bail!("--count must be in 1..={MAX_COUNT}");
        }
        if self.duration.is_zero() || self.duration.as_secs_f64() > MAX_SECONDS {
            bail!("--seconds must be in (0, {MAX_SECONDS}]");
        }
        if self.timeout.is_zero() || self.flow_timeout.is_zero() {
            bail!("--timeout-ms and --flow-timeout-ms must be positive");
        }
        if self.flow_timeout.as_secs_f64() > MAX_SECONDS {
            bail!("--flow-timeout-ms must be at most {MAX_SECONDS} s");
        }
        if let Some(b) = self.tftp.blksize
            && !(8..=65464).contains(&b)
        {
            bail!("--blksize must be in 8..=65464 (RFC 2348)");
        }
        if self.community.is_empty() || self.set_community.is_empty() {
            bail!("communities must not be empty");
        }
        Ok(())
    }
}

/// Failures of one kind: how many, and the MAC of the first.
#[derive(Debug, Clone)]
pub struct FailureKind {
    pub count: u64,
    pub first_mac: [u8; 6],
}

/// What one run measured.
#[derive(Debug, Default)]
pub struct Report {
    pub started: u64,
    /// Completed: status answered after a file with the SET's hash.
    pub flows: u64,
    pub failed: u64,
    pub timeouts: u64,
    /// Of the timeouts: still running at the hard end.
    pub cut_off: u64,
    pub inform_resends: u64,
    /// Enrollment answers that came after the SET (both are sent at once; either may be
    /// read first).
    pub late_answers: u64,
    /// SETs answered (all with our community, whatever they named).
    pub sets_answered: u64,
    /// SETs for a flow past its SET step (the server resent it).
    pub sets_repeated: u64,
    /// SETs naming an MTA with no flow in flight, or no MTA at all.
    pub sets_unknown: u64,
    /// Datagrams on the agent port that were not a SET we take, by why.
    pub agent_rejected: BTreeMap<&'static str, u64>,
    /// Datagrams on flow sockets that changed nothing (late repeats, strangers).
    pub stray: u64,
    pub datagrams_sent: u64,
    pub datagrams_received: u64,
    pub send_errors: u64,
    pub recv_errors: u64,
    /// The measured window: `--seconds` when time ended the starts, else first enrollment to
    /// last completion.
    pub measured: Duration,
    /// Flows completed within `measured`.
    pub measured_flows: u64,
    /// First enrollment to last completion.
    pub to_last: Duration,
    pub wall: Duration,
    /// CPU time (user + system) of this process over the run.
    pub cpu: Duration,
    /// Enrollment sent → status answered, microseconds, completed flows.
    pub latency_us: Histogram,
    /// Enrollment sent → SET received (the server's INFORM handling, file render, SET).
    pub to_set_us: Histogram,
    /// SET received → file in (TFTP).
    pub fetch_us: Histogram,
    /// File in → status answered.
    pub status_us: Histogram,
    pub first_completed: Option<[u8; 6]>,
    pub last_completed: Option<[u8; 6]>,
    pub failures: BTreeMap<String, FailureKind>,
}

impl Report {
    /// Flows per second over the measured window.
    pub fn flows_per_s(&self) -> f64 {
        let s = self.measured.as_secs_f64();
        if self.measured_flows == 0 || s <= 0.0 {
            0.0
        } else {
            self.measured_flows as f64 / s
        }
    }

    /// Every flow started completed with a matching hash.
    pub fn all_ok(&self) -> bool {
        self.flows == self.started && self.failed == 0 && self.timeouts == 0 && self.started > 0
    }

    /// The one line the harness reads.
    pub fn line(&self) -> String {
        format!(
            "RESULT mta-load flows={} flows_per_s={:.1} p50_ms={:.3} p99_ms={:.3} failed={} \
             timeouts={}",
            self.flows,
            self.flows_per_s(),
            ms(self.latency_us.quantile(0.50)),
            ms(self.latency_us.quantile(0.99)),
            self.failed,
            self.timeouts,
        )
    }

    /// Everything else, for stderr: counters, the phases, failures by kind.
    pub fn detail(&self) -> String {
        let mac = |m: Option<[u8; 6]>| m.map_or("-".into(), msg::mac_colons);
        let mut s = format!(
            "loadgen mta: started={} flows={} failed={} timeouts={} cut_off={} measured_s={:.3} \
             measured_flows={} to_last_completion_s={:.3} wall_s={:.3} cpu_s={:.3} p999_ms={:.3} max_ms={:.3}\n\
             loadgen mta: phases p50/p99 ms: enrollment->SET {:.3}/{:.3} SET->file {:.3}/{:.3} \
             file->status answered {:.3}/{:.3}\n\
             loadgen mta: inform_resends={} late_answers={} sets_answered={} sets_repeated={} sets_unknown={} \
             stray={} datagrams_sent={} datagrams_received={} send_errors={} recv_errors={}\n\
             loadgen mta: first_completed={} last_completed={}",
            self.started,
            self.flows,
            self.failed,
            self.timeouts,
            self.cut_off,
            self.measured.as_secs_f64(),
            self.measured_flows,
            self.to_last.as_secs_f64(),
            self.wall.as_secs_f64(),
            self.cpu.as_secs_f64(),
            ms(self.latency_us.quantile(0.999)),
            ms(self.latency_us.max()),
            ms(self.to_set_us.quantile(0.5)),
            ms(self.to_set_us.quantile(0.99)),
            ms(self.fetch_us.quantile(0.5)),
            ms(self.fetch_us.quantile(0.99)),
            ms(self.status_us.quantile(0.5)),
            ms(self.status_us.quantile(0.99)),
            self.inform_resends,
            self.late_answers,
            self.sets_answered,
            self.sets_repeated,
            self.sets_unknown,
            self.stray,
            self.datagrams_sent,
            self.datagrams_received,
            self.send_errors,
            self.recv_errors,
            mac(self.first_completed),
            mac(self.last_completed),
        );
        for (why, n) in &self.agent_rejected {
            s += &format!("\nloadgen mta: {n} datagrams on the agent port refused: {why}");
        }
        for (kind, f) in &self.failures {
            s += &format!(
                "\nloadgen mta: {} failed: {kind} (first: {})",
                f.count,
                msg::mac_colons(f.first_mac)
            );
        }
        s
    }
}

fn ms(us: u64) -> f64 {
    us as f64 / 1000.0
}

fn us(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX)
}

/// A flow in flight and its socket.
#[derive(Debug)]
struct Active {
    sock: UdpSocket,
    flow: Flow,
}

#[derive(Debug)]
struct Engine {
    cfg: Config,
    setup: FlowSetup,
    epoll: Epoll,
    agent: UdpSocket,
    slots: Vec<Option<Active>>,
    free: Vec<usize>,
    /// MAC -> slot, for routing SETs.
    by_mac: HashMap<[u8; 6], usize>,
    t0: Instant,
    last_done: Option<Instant>,
    /// When starts stop (the run's time bound).
    stop_starting: Instant,
    /// Completions before `stop_starting`.
    in_window: u64,
    r: Report,
}

/// Runs the fleet and returns what it measured.
pub fn run(cfg: Config) -> Result<Report> {
    cfg.check()?;
    ensure_open_files(cfg.concurrency as u64 + 64)?;
    let agent_addr = SocketAddrV4::new(cfg.bind, cfg.agent_port);
    let agent = UdpSocket::bind(agent_addr)
        .with_context(|| format!("binding the MTA agent socket {agent_addr}"))?;
    agent.set_nonblocking(true)?;
    // Every SET of the run arrives here, in bursts when many flows enroll at once.
    set_buffers(&agent, AGENT_BUFFER);
    let epoll = Epoll::new()?;
    epoll.add(agent.as_raw_fd(), AGENT_TOKEN)?;
    let setup = FlowSetup {
        server: cfg.server,
        community: cfg.community.as_bytes().to_vec(),
        identity: Identity::default(),
        timeout: cfg.timeout,
        retries: cfg.retries,
        tftp: cfg.tftp,
        tftp_timeout: cfg.timeout,
        tftp_retries: cfg.retries,
        flow_timeout: cfg.flow_timeout,
    };
    let t0 = Instant::now();
    let mut e = Engine {
        slots: (0..cfg.concurrency).map(|_| None).collect(),
        free: (0..cfg.concurrency).rev().collect(),
        by_mac: HashMap::with_capacity(cfg.concurrency * 2),
        t0,
        last_done: None,
        stop_starting: t0 + cfg.duration,
        in_window: 0,
        r: Report::default(),
        setup,
        epoll,
        agent,
        cfg,
    };
    let cpu0 = cpu_time();
    e.run()?;
    e.r.cpu = cpu_time().saturating_sub(cpu0);
    e.r.wall = e.t0.elapsed();
    e.r.to_last = e.last_done.map_or(Duration::ZERO, |t| t - e.t0);
    if e.r.started < e.cfg.count {
        // Time ended the starts: the flows completed up to then, over that time.
        e.r.measured = e.cfg.duration;
        e.r.measured_flows = e.in_window;
    } else {
        // The count ran out first: every completion, up to the last.
        e.r.measured = e.r.to_last;
        e.r.measured_flows = e.r.flows;
    }
    Ok(e.r)
}

fn is_would_block(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted
    )
}

/// Sends one datagram, counting it; a full buffer or an error is left to the resend timers.
fn send_counted(sock: &UdpSocket, to: SocketAddrV4, bytes: &[u8], r: &mut Report) {
    match sock.send_to(bytes, to) {
        Ok(_) => r.datagrams_sent += 1,
        Err(e) if is_would_block(&e) => r.send_errors += 1,
        Err(_) => r.send_errors += 1,
    }
}

impl Engine {
    fn active(&self) -> usize {
        self.slots.len() - self.free.len()
    }

    fn run(&mut self) -> Result<()> {
        let stop_starting = self.stop_starting;
        let hard_end = stop_starting + self.cfg.flow_timeout + self.cfg.timeout;
        let mut buf = vec![0u8; 65_536];
        let mut events = vec![libc::epoll_event { events: 0, u64: 0 }; 1024];
        let mut next_scan = self.t0 + TICK;
        loop {
            let now = Instant::now();
            let starting = now < stop_starting && self.r.started < self.cfg.count;
            if starting {
                while !self.free.is_empty() && self.r.started < self.cfg.count {
                    self.start(now)?;
                }
            }
            if self.active() == 0 && !starting {
                break;
            }
            if now >= hard_end {
                self.cut_off();
                break;
            }
            let wait = next_scan
                .min(hard_end)
                .saturating_duration_since(now)
                .min(TICK);
            let n = self.epoll.wait(&mut events, wait)?;
            for ev in &events[..n] {
                let token = ev.u64;
                if token == AGENT_TOKEN {
                    self.drain_agent(&mut buf);
                } else {
                    self.read_flow(token as usize, &mut buf);
                }
            }
            let now = Instant::now();
            if now >= next_scan {
                next_scan = now + TICK;
                self.tick(now);
            }
        }
        Ok(())
    }

    /// Opens a socket for the next flow and sends its enrollment.
    fn start(&mut self, now: Instant) -> Result<()> {
        let i = self.free.pop().expect("caller checked for a free slot");
        let k = self.r.started;
        self.r.started += 1;
        let sock = UdpSocket::bind(SocketAddrV4::new(self.cfg.bind, 0))
            .with_context(|| format!("binding a flow socket on {}", self.cfg.bind))?;
        sock.set_nonblocking(true)?;
        self.epoll.add(sock.as_raw_fd(), i as u64)?;
        let mac = msg::nth_mac(self.cfg.mac_base, k);
        let r = &mut self.r;
        let flow = Flow::start(&self.setup, k, mac, now, &mut |to, b| {
            send_counted(&sock, to, b, r);
        });
        if let Some(old) = self.by_mac.insert(mac, i) {
            // Only after 2^48 flows; keep the newer.
            debug_assert_ne!(old, i);
        }
        self.slots[i] = Some(Active { sock, flow });
        Ok(())
    }

    /// Reads one datagram waiting on slot `i`'s socket and feeds it to its flow. epoll is
    /// level-triggered, so a second one waiting is reported again; a flow socket rarely holds
    /// two, and reading until it is empty would cost a failing syscall per datagram.
    fn read_flow(&mut self, i: usize, buf: &mut [u8]) {
        let Some(a) = self.slots.get_mut(i).and_then(Option::as_mut) else {
            return;
        };
        let (n, from) = match a.sock.recv_from(buf) {
            Ok((n, SocketAddr::V4(from))) => (n, from),
            Ok(_) => {
                self.r.stray += 1;
                return;
            }
            Err(e) if is_would_block(&e) => return,
            Err(_) => {
                // ICMP errors (port unreachable) surface here; the timers cover them.
                self.r.recv_errors += 1;
                return;
            }
        };
        self.r.datagrams_received += 1;
        let now = Instant::now();
        let Active { sock, flow } = a;
        let r = &mut self.r;
        let p = flow.on_datagram(&self.setup, from, &buf[..n], now, &mut |to, b| {
            send_counted(sock, to, b, r);
        });
        if p == Progress::Ignored {
            self.r.stray += 1;
        }
        self.after(i, p, now);
    }

    /// Reads every datagram on the agent port: SETs are answered and routed to their flow.
    fn drain_agent(&mut self, buf: &mut [u8]) {
        loop {
            let (n, from) = match self.agent.recv_from(buf) {
                Ok((n, SocketAddr::V4(from))) => (n, from),
                Ok(_) => continue,
                Err(e) if is_would_block(&e) => return,
                Err(_) => {
                    self.r.recv_errors += 1;
                    continue;
                }
            };
            self.r.datagrams_received += 1;
            let set = match msg::read_set(&buf[..n], self.cfg.set_community.as_bytes()) {
                Ok(s) => s,
                Err(why) => {
                    *self.r.agent_rejected.entry(why).or_default() += 1;
                    continue;
                }
            };
            send_counted(&self.agent, from, &msg::set_response(&set), &mut self.r);
            self.r.sets_answered += 1;
            let slot = set
                .url
                .as_deref()
                .and_then(msg::mac_in_url)
                .and_then(|mac| self.by_mac.get(&mac).copied());
            let Some(i) = slot else {
                self.r.sets_unknown += 1;
                continue;
            };
            let Some(Active { sock, flow }) = self.slots[i].as_mut() else {
                self.r.sets_unknown += 1;
                continue;
            };
            let now = Instant::now();
            let r = &mut self.r;
            let p = flow.on_set(
                &self.setup,
                set.url.as_deref(),
                set.hash.as_deref(),
                now,
                &mut |to, b| send_counted(sock, to, b, r),
            );
            if p == Progress::Ignored {
                self.r.sets_repeated += 1;
            }
            self.after(i, p, now);
        }
    }

    /// Runs the timers of every flow that has one due.
    fn tick(&mut self, now: Instant) {
        for i in 0..self.slots.len() {
            let Some(Active { sock, flow }) = self.slots[i].as_mut() else {
                continue;
            };
            if flow.next_timer() > now {
                continue;
            }
            let r = &mut self.r;
            let p = flow.on_tick(&self.setup, now, &mut |to, b| send_counted(sock, to, b, r));
            self.after(i, p, now);
        }
    }

    fn after(&mut self, i: usize, p: Progress, now: Instant) {
        match p {
            Progress::Running | Progress::Ignored => {}
            Progress::Completed(took) => {
                self.last_done = Some(now);
                if now <= self.stop_starting {
                    self.in_window += 1;
                }
                self.finish(i, Ok(took));
            }
            Progress::Failed(f) => self.finish(i, Err(f)),
        }
    }

    /// Closes slot `i` and accounts for how its flow ended.
    fn finish(&mut self, i: usize, outcome: Result<Duration, Failure>) {
        let Some(a) = self.slots[i].take() else {
            return;
        };
        self.free.push(i);
        let f = &a.flow;
        if self.by_mac.get(&f.mac) == Some(&i) {
            self.by_mac.remove(&f.mac);
        }
        self.r.inform_resends += u64::from(f.resends);
        self.r.late_answers += u64::from(f.late_answers);
        match outcome {
            Ok(took) => {
                self.r.flows += 1;
                self.r.latency_us.record(us(took));
                if let (Some(s), Some(d)) = (f.set_at, f.fetched_at) {
                    self.r.to_set_us.record(us(s - f.started));
                    self.r.fetch_us.record(us(d - s));
                    self.r.status_us.record(us(f.started + took - d));
                }
                self.r.first_completed.get_or_insert(f.mac);
                self.r.last_completed = Some(f.mac);
            }
            Err(e) => {
                if e.is_timeout() {
                    self.r.timeouts += 1;
                } else {
                    self.r.failed += 1;
                }
                self.note_failure(e.kind(), f.mac);
            }
        }
        // `a.sock` closes here, which also takes it out of the epoll set.
    }

    fn note_failure(&mut self, kind: String, mac: [u8; 6]) {
        let known = self.r.failures.len();
        if let Some(f) = self.r.failures.get_mut(&kind) {
            f.count += 1;
        } else if known < EXAMPLES {
            self.r.failures.insert(
                kind,
                FailureKind {
                    count: 1,
                    first_mac: mac,
                },
            );
        } else {
            self.r
                .failures
                .entry("(other kinds)".into())
                .or_insert(FailureKind {
                    count: 0,
                    first_mac: mac,
                })
                .count += 1;
        }
    }

    /// The hard end: whatever still runs counts as a timeout.
    fn cut_off(&mut self) {
        for i in 0..self.slots.len() {
            if let Some(a) = self.slots[i].as_ref() {
                let f = a.flow.cut_off();
                self.r.cut_off += 1;
                self.finish(i, Err(f));
            }
        }
    }
}

#[cfg(test)]
mod stand_in;

#[cfg(test)]
mod tests;
