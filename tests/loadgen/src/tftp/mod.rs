//! `provd-loadgen tftp`: many TFTP read transfers at once against one server, each on its own
//! UDP socket (its own source port, so the server sees distinct transfers), driven by one thread
//! polling all of them. Per-transfer timeouts with retransmission; content checked against a
//! size, a SHA-1 or a directory of reference files. The last line printed is
//!
//! `RESULT tftp-load files=N files_per_s=X bytes_per_s=Y p50_ms=L p99_ms=L errors=E timeouts=T`
//!
//! `files` counts transfers that completed with the expected content, the rates divide by the time
//! from the first request to the last completion, the percentiles are request-sent to
//! last-block-received over completed transfers, `errors` counts transfers that failed otherwise
//! (server ERROR, protocol violation, wrong content) and `timeouts` those that went unanswered
//! through every retry (or were still running at the hard end).

pub mod packet;
pub mod transfer;

use std::collections::{BTreeMap, HashMap};
use std::io;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4, UdpSocket};
use std::os::fd::AsRawFd;
use std::path::{Component, Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

use crate::hist::Histogram;
use crate::packet::client_mac;
use packet::RequestOptions;
use transfer::{Failure, Setup, Step, Transfer};

/// The most transfers one run may start.
pub const MAX_COUNT: u64 = 10_000_000;
/// The longest a run may start transfers for.
pub const MAX_SECONDS: f64 = 3600.0;
/// The most transfers in flight (one socket each).
pub const MAX_CONCURRENCY: usize = 4096;
/// Longest single wait in the loop, so time limits are noticed promptly.
const MAX_WAIT: Duration = Duration::from_millis(50);
/// Distinct failure examples kept for the report.
const EXAMPLES: usize = 8;

/// Which file each transfer asks for.
#[derive(Debug, Clone)]
pub enum Names {
    /// Always this name.
    Fixed(String),
    /// `{mac}` replaced by the 12 lower-case hex digits of the MAC of device `k % macs`
    /// (`02:<salt>:...`, as the DHCP modes number their clients).
    Pattern {
        pattern: String,
        macs: u32,
        salt: u8,
    },
}

impl Names {
    pub fn pattern(pattern: &str, macs: u32, salt: u8) -> Result<Names> {
        if !pattern.contains("{mac}") {
            bail!("--names {pattern:?} has no {{mac}} (use --name for one fixed name)");
        }
        if macs == 0 {
            bail!("--macs must be at least 1");
        }
        Ok(Names::Pattern {
            pattern: pattern.to_owned(),
            macs,
            salt,
        })
    }

    /// The name transfer `k` asks for.
    pub fn name(&self, k: u64) -> String {
        match self {
            Names::Fixed(n) => n.clone(),
            Names::Pattern {
                pattern,
                macs,
                salt,
            } => {
                let mac = client_mac(*salt, (k % u64::from(*macs)) as u32);
                let hex: String = mac.iter().map(|b| format!("{b:02x}")).collect();
                pattern.replace("{mac}", &hex)
            }
        }
    }

    /// How many distinct names there are.
    pub fn distinct(&self) -> u64 {
        match self {
            Names::Fixed(_) => 1,
            Names::Pattern { macs, .. } => u64::from(*macs),
        }
    }
}

/// What every delivered file must be.
#[derive(Debug, Clone, Default)]
pub struct Expect {
    pub size: Option<u64>,
    pub sha1: Option<[u8; 20]>,
    /// Reference content per name (`--verify-dir`).
    pub files: Option<HashMap<String, Vec<u8>>>,
}

#[derive(Debug, Clone)]
pub struct Config {
    pub server: SocketAddrV4,
    /// Source address of every transfer's socket (ports are picked by the kernel).
    pub bind: Ipv4Addr,
    pub names: Names,
    pub concurrency: usize,
    /// Transfers to start in total.
    pub count: u64,
    /// No transfer starts after this; the ones running then get a grace period to finish.
    pub duration: Duration,
    /// "octet" or "netascii".
    pub mode: &'static str,
    pub asked: RequestOptions,
    pub timeout: Duration,
    pub retries: u32,
    pub expect: Expect,
    /// Write every delivered file to DIR/NAME.
    pub save_dir: Option<PathBuf>,
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
        if let Some(b) = self.asked.blksize
            && !(8..=65464).contains(&b)
        {
            bail!("--blksize must be in 8..=65464 (RFC 2348)");
        }
        if self.asked.windowsize == Some(0) {
            bail!("--windowsize must be at least 1 (RFC 7440)");
        }
        if self.timeout.is_zero() {
            bail!("--timeout-ms must be positive");
        }
        Ok(())
    }

    /// How long transfers running when starts stop may still take.
    fn grace(&self) -> Duration {
        (self.timeout * (self.retries + 1)).max(Duration::from_secs(5))
    }
}

/// Failures of one kind: how many, and the name of the first.
#[derive(Debug, Clone)]
pub struct FailureKind {
    pub count: u64,
    pub first_name: String,
}

/// What one run measured.
#[derive(Debug)]
pub struct Report {
    pub started: u64,
    /// Completed with the expected content.
    pub files: u64,
    /// Bytes of the completed files.
    pub bytes: u64,
    pub errors: u64,
    pub timeouts: u64,
    /// Of the timeouts: still running at the hard end.
    pub cut_off: u64,
    /// Datagrams from addresses that are not the server.
    pub stray: u64,
    pub datagrams_sent: u64,
    pub datagrams_received: u64,
    /// First request to last completion.
    pub measured: Duration,
    pub wall: Duration,
    /// Request sent to last block received, microseconds, completed transfers.
    pub latency_us: Histogram,
    /// (blksize, windowsize) the completed transfers ran with.
    pub negotiated: BTreeMap<(u16, u16), u64>,
    pub failures: BTreeMap<String, FailureKind>,
}

impl Report {
    fn rate(&self, n: u64) -> f64 {
        let s = self.measured.as_secs_f64();
        if n == 0 || s <= 0.0 {
            0.0
        } else {
            n as f64 / s
        }
    }

    pub fn files_per_s(&self) -> f64 {
        self.rate(self.files)
    }

    /// Whether every transfer started delivered what was expected.
    pub fn all_ok(&self) -> bool {
        self.files == self.started && self.errors == 0 && self.timeouts == 0
    }

    /// The one line the harness reads.
    pub fn line(&self) -> String {
        format!(
            "RESULT tftp-load files={} files_per_s={:.1} bytes_per_s={:.0} p50_ms={:.3} \
             p99_ms={:.3} errors={} timeouts={}",
            self.files,
            self.files_per_s(),
            self.rate(self.bytes),
            self.latency_us.quantile(0.50) as f64 / 1000.0,
            self.latency_us.quantile(0.99) as f64 / 1000.0,
            self.errors,
            self.timeouts,
        )
    }

    /// Everything else, for stderr: counters, the negotiated sizes, failures by kind.
    pub fn detail(&self) -> String {
        let mut s = format!(
            "loadgen tftp: started={} files={} bytes={} measured_s={:.3} wall_s={:.3} \
             cut_off={} stray={} datagrams_sent={} datagrams_received={} p999_ms={:.3} \
             max_ms={:.3}",
            self.started,
            self.files,
            self.bytes,
            self.measured.as_secs_f64(),
            self.wall.as_secs_f64(),
            self.cut_off,
            self.stray,
            self.datagrams_sent,
            self.datagrams_received,
            self.latency_us.quantile(0.999) as f64 / 1000.0,
            self.latency_us.max() as f64 / 1000.0,
        );
        for ((b, w), n) in &self.negotiated {
            s += &format!("\nloadgen tftp: {n} transfers ran with blksize {b} windowsize {w}");
        }
        for (kind, f) in &self.failures {
            s += &format!(
                "\nloadgen tftp: {} failed: {kind} (first: {})",
                f.count, f.first_name
            );
        }
        s
    }
}

/// A transfer in flight: its socket, state and what it asked for.
#[derive(Debug)]
struct Active {
    sock: UdpSocket,
    t: Transfer,
    name: String,
    started: Instant,
}

#[derive(Debug)]
struct Engine {
    cfg: Config,
    setup: Setup,
    slots: Vec<Option<Active>>,
    free: Vec<usize>,
    t0: Instant,
    last_done: Option<Instant>,
    r: Report,
}

/// Runs the load and returns what it measured.
pub fn run(cfg: Config) -> Result<Report> {
    cfg.check()?;
    // One descriptor per transfer in flight, and some to spare.
    crate::sys::ensure_open_files(cfg.concurrency as u64 + 64)?;
    if let Some(d) = &cfg.save_dir {
        std::fs::create_dir_all(d).with_context(|| format!("creating {}", d.display()))?;
    }
    let setup = Setup {
        server: cfg.server,
        mode: cfg.mode,
        asked: cfg.asked,
        keep_content: cfg.expect.files.is_some() || cfg.save_dir.is_some(),
        sha1: cfg.expect.sha1.is_some(),
        timeout: cfg.timeout,
        retries: cfg.retries,
    };
    let mut e = Engine {
        slots: (0..cfg.concurrency).map(|_| None).collect(),
        free: (0..cfg.concurrency).rev().collect(),
        t0: Instant::now(),
        last_done: None,
        r: Report {
            started: 0,
            files: 0,
            bytes: 0,
            errors: 0,
            timeouts: 0,
            cut_off: 0,
            stray: 0,
            datagrams_sent: 0,
            datagrams_received: 0,
            measured: Duration::ZERO,
            wall: Duration::ZERO,
            latency_us: Histogram::new(),
            negotiated: BTreeMap::new(),
            failures: BTreeMap::new(),
        },
        setup,
        cfg,
    };
    e.run()?;
    e.r.wall = e.t0.elapsed();
    e.r.measured = e.last_done.map_or(Duration::ZERO, |t| t - e.t0);
    Ok(e.r)
}

fn is_would_block(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted
    )
}

impl Engine {
    fn active(&self) -> usize {
        self.slots.len() - self.free.len()
    }

    fn run(&mut self) -> Result<()> {
        let stop_starting = self.t0 + self.cfg.duration;
        let hard_end = stop_starting + self.cfg.grace();
        let mut buf = vec![0u8; 65536];
        let mut fds: Vec<libc::pollfd> = Vec::with_capacity(self.slots.len());
        let mut fd_slot: Vec<usize> = Vec::with_capacity(self.slots.len());
        loop {
            let now = Instant::now();
            let starting = now < stop_starting && self.r.started < self.cfg.count;
            if starting {
                while !self.free.is_empty() && self.r.started < self.cfg.count {
                    self.start(now)?;
                }
            }
            if self.active() == 0 && !(starting && self.r.started < self.cfg.count) {
                break;
            }
            if now >= hard_end {
                self.cut_off();
                break;
            }

            fds.clear();
            fd_slot.clear();
            let mut wake = hard_end;
            for (i, a) in self.slots.iter().enumerate() {
                if let Some(a) = a {
                    fds.push(libc::pollfd {
                        fd: a.sock.as_raw_fd(),
                        events: libc::POLLIN,
                        revents: 0,
                    });
                    fd_slot.push(i);
                    wake = wake.min(a.t.deadline());
                }
            }
            let wait = wake.saturating_duration_since(now).min(MAX_WAIT);
            poll(&mut fds, wait)?;

            for (pfd, &i) in fds.iter().zip(&fd_slot) {
                if pfd.revents != 0 {
                    self.drain(i, &mut buf);
                }
            }
            let now = Instant::now();
            for i in 0..self.slots.len() {
                if let Some(a) = self.slots[i].as_mut() {
                    let step = a.t.on_tick(now);
                    self.after(i, step, now);
                }
            }
        }
        Ok(())
    }

    /// Opens a socket for the next transfer and sends its request.
    fn start(&mut self, now: Instant) -> Result<()> {
        let i = self.free.pop().expect("caller checked for a free slot");
        let k = self.r.started;
        self.r.started += 1;
        let name = self.cfg.names.name(k);
        let sock = UdpSocket::bind(SocketAddrV4::new(self.cfg.bind, 0))
            .with_context(|| format!("binding a transfer socket on {}", self.cfg.bind))?;
        sock.set_nonblocking(true)?;
        let t = Transfer::start(&self.setup, &name, now);
        self.slots[i] = Some(Active {
            sock,
            t,
            name,
            started: now,
        });
        self.after(i, Step::Send, now);
        Ok(())
    }

    /// Reads everything waiting on slot `i`'s socket and feeds it to its transfer.
    fn drain(&mut self, i: usize, buf: &mut [u8]) {
        loop {
            let Some(a) = self.slots[i].as_mut() else {
                return;
            };
            let (n, from) = match a.sock.recv_from(buf) {
                Ok(r) => r,
                Err(e) if is_would_block(&e) => return,
                Err(e) => {
                    // ICMP port unreachable and the like surface here.
                    let f = Failure::Protocol(format!("receive: {e}"));
                    self.finish(i, Err(f));
                    return;
                }
            };
            self.r.datagrams_received += 1;
            let SocketAddr::V4(from) = from else {
                self.r.stray += 1;
                continue;
            };
            if from.ip() != self.cfg.server.ip() {
                self.r.stray += 1;
                continue;
            }
            let now = Instant::now();
            let step = a.t.on_datagram(from, &buf[..n], now);
            self.after(i, step, now);
        }
    }

    /// Acts on what slot `i`'s transfer asked for.
    fn after(&mut self, i: usize, step: Step, now: Instant) {
        let Some(a) = self.slots[i].as_mut() else {
            return;
        };
        let send = matches!(
            step,
            Step::Send | Step::Finished | Step::Failed { send: true }
        );
        if send {
            match a.sock.send_to(a.t.outgoing(), a.t.peer()) {
                Ok(_) => self.r.datagrams_sent += 1,
                // A full socket buffer: the retransmission timer covers it.
                Err(e) if is_would_block(&e) => {}
                Err(e) if matches!(step, Step::Send) => {
                    let f = Failure::Protocol(format!("send to {}: {e}", a.t.peer()));
                    self.finish(i, Err(f));
                    return;
                }
                Err(_) => {}
            }
        }
        match step {
            Step::Idle | Step::Send => {}
            Step::Finished => {
                let result = match a.t.delivered() {
                    Some(d) => Ok((d, now - a.started)),
                    None => Err(a
                        .t
                        .failure()
                        .cloned()
                        .unwrap_or(Failure::Protocol("finished without a result".into()))),
                };
                self.last_done = Some(now);
                self.finish(i, result);
            }
            Step::Failed { .. } => {
                let f = a.t.failure().cloned().expect("a failed transfer says why");
                self.finish(i, Err(f));
            }
        }
    }

    /// Closes slot `i` and accounts for how its transfer ended.
    fn finish(&mut self, i: usize, result: Result<(transfer::Delivered, Duration), Failure>) {
        let a = self.slots[i].take().expect("finishing an active slot");
        self.free.push(i);
        let outcome = result.and_then(|(d, took)| {
            check_content(&self.cfg.expect, &a.name, &d)?;
            if let (Some(dir), Some(c)) = (&self.cfg.save_dir, &d.content) {
                save(dir, &a.name, c).map_err(|e| Failure::Protocol(format!("saving: {e:#}")))?;
            }
            Ok((d, took))
        });
        match outcome {
            Ok((d, took)) => {
                self.r.files += 1;
                self.r.bytes += d.bytes;
                self.r
                    .latency_us
                    .record(u64::try_from(took.as_micros()).unwrap_or(u64::MAX));
                *self
                    .r
                    .negotiated
                    .entry((d.blksize, d.windowsize))
                    .or_default() += 1;
            }
            Err(f) => {
                if f.is_timeout() {
                    self.r.timeouts += 1;
                } else {
                    self.r.errors += 1;
                }
                self.note_failure(f.kind(), &a.name);
            }
        }
    }

    fn note_failure(&mut self, kind: String, name: &str) {
        let known = self.r.failures.len();
        if let Some(f) = self.r.failures.get_mut(&kind) {
            f.count += 1;
        } else if known < EXAMPLES {
            self.r.failures.insert(
                kind,
                FailureKind {
                    count: 1,
                    first_name: name.to_owned(),
                },
            );
        } else {
            let other = self
                .r
                .failures
                .entry("(other kinds)".into())
                .or_insert(FailureKind {
                    count: 0,
                    first_name: name.to_owned(),
                });
            other.count += 1;
        }
    }

    /// The hard end: whatever still runs counts as a timeout.
    fn cut_off(&mut self) {
        for i in 0..self.slots.len() {
            if let Some(a) = self.slots[i].as_ref() {
                let f = Failure::CutOff {
                    blocks: a.t.blocks(),
                };
                self.r.cut_off += 1;
                self.finish(i, Err(f));
            }
        }
    }
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// Parses 40 hex digits.
pub fn parse_sha1(s: &str) -> Result<[u8; 20]> {
    let s = s.trim();
    if s.len() != 40 {
        bail!("a SHA-1 is 40 hex digits, not {:?}", s);
    }
    let mut out = [0u8; 20];
    for (i, o) in out.iter_mut().enumerate() {
        *o = u8::from_str_radix(&s[2 * i..2 * i + 2], 16)
            .with_context(|| format!("not hex: {s:?}"))?;
    }
    Ok(out)
}

fn check_content(expect: &Expect, name: &str, d: &transfer::Delivered) -> Result<(), Failure> {
    if let Some(size) = expect.size
        && d.bytes != size
    {
        return Err(Failure::Protocol(format!(
            "content: {} bytes, expected {size}",
            d.bytes
        )));
    }
    if let (Some(want), Some(got)) = (expect.sha1, d.sha1)
        && want != got
    {
        return Err(Failure::Protocol(format!(
            "content: sha1 {}, expected {}",
            hex(&got),
            hex(&want)
        )));
    }
    if let Some(files) = &expect.files {
        let got = d.content.as_deref().unwrap_or_default();
        match files.get(name) {
            None => {
                return Err(Failure::Protocol(
                    "content: no reference file for this name".into(),
                ));
            }
            Some(want) if want != got => {
                let at = want.iter().zip(got).position(|(a, b)| a != b);
                return Err(Failure::Protocol(format!(
                    "content: differs from the reference ({} bytes vs {}, first difference at {})",
                    got.len(),
                    want.len(),
                    at.map_or("the end".into(), |a| format!("byte {a}"))
                )));
            }
            Some(_) => {}
        }
    }
    Ok(())
}

/// A name as a relative path with no way out of the directory it is joined to.
fn safe_relative(name: &str) -> Option<&Path> {
    let p = Path::new(name);
    p.components()
        .all(|c| matches!(c, Component::Normal(_)))
        .then_some(p)
}

fn save(dir: &Path, name: &str, content: &[u8]) -> Result<()> {
    let rel = safe_relative(name).with_context(|| format!("refusing to save {name:?}"))?;
    let path = dir.join(rel);
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)?;
    }
    std::fs::write(&path, content).with_context(|| path.display().to_string())
}

/// Reads DIR/NAME for every name of the run: the reference files for `--verify-dir`.
pub fn load_reference(dir: &Path, names: &Names) -> Result<HashMap<String, Vec<u8>>> {
    let mut files = HashMap::new();
    for k in 0..names.distinct() {
        let name = names.name(k);
        let rel = safe_relative(&name).with_context(|| format!("unsafe name {name:?}"))?;
        let path = dir.join(rel);
        let content = std::fs::read(&path)
            .with_context(|| format!("reading the reference {}", path.display()))?;
        files.insert(name, content);
    }
    Ok(files)
}

/// Waits until one of `fds` is readable or `timeout` passes.
fn poll(fds: &mut [libc::pollfd], timeout: Duration) -> Result<()> {
    let ts = libc::timespec {
        tv_sec: timeout.as_secs() as libc::time_t,
        tv_nsec: libc::c_long::from(timeout.subsec_nanos() as i32),
    };
    // SAFETY: `fds` is a valid, exclusively borrowed array of pollfd of the length given; `ts`
    // is a valid timespec; no signal mask.
    let r = unsafe {
        libc::ppoll(
            fds.as_mut_ptr(),
            fds.len() as libc::nfds_t,
            &raw const ts,
            std::ptr::null(),
        )
    };
    if r < 0 {
        let e = io::Error::last_os_error();
        if e.kind() != io::ErrorKind::Interrupted {
            return Err(e).context("ppoll");
        }
    }
    Ok(())
}

#[cfg(test)]
mod test_server;

#[cfg(test)]
mod tests {
    use super::*;
    use sha1::{Digest, Sha1};
    use test_server::{Behaviour, TestServer};

    fn cfg(server: SocketAddrV4, names: Names) -> Config {
        Config {
            server,
            bind: Ipv4Addr::LOCALHOST,
            names,
            concurrency: 8,
            count: 40,
            duration: Duration::from_secs(20),
            mode: "octet",
            asked: RequestOptions::default(),
            timeout: Duration::from_millis(200),
            retries: 5,
            expect: Expect::default(),
            save_dir: None,
        }
    }

    /// Distinct, deterministic content per name, of a size that is not a block multiple.
    fn content_for(name: &str, len: usize) -> Vec<u8> {
        let seed = Sha1::digest(name.as_bytes());
        (0..len).map(|i| seed[i % 20] ^ (i as u8)).collect()
    }

    #[test]
    fn names_follow_the_pattern() {
        let n = Names::pattern("cm/{mac}.cfg", 3, 7).unwrap();
        assert_eq!(n.name(0), n.name(3));
        assert_ne!(n.name(0), n.name(1));
        let name = n.name(1);
        let hex = name
            .strip_prefix("cm/")
            .unwrap()
            .strip_suffix(".cfg")
            .unwrap();
        assert_eq!(hex.len(), 12);
        assert!(hex.starts_with("0207"));
        assert!(
            hex.chars()
                .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase())
        );
        assert!(Names::pattern("cm/fixed.cfg", 3, 0).is_err());
        assert!(Names::pattern("{mac}", 0, 0).is_err());
        assert_eq!(Names::Fixed("a".into()).name(99), "a");
    }

    #[test]
    fn sha1_parses() {
        let h = parse_sha1("da39a3ee5e6b4b0d3255bfef95601890afd80709").unwrap();
        assert_eq!(h[..3], [0xda, 0x39, 0xa3]);
        assert!(parse_sha1("da39").is_err());
        assert!(parse_sha1(&"zz".repeat(20)).is_err());
    }

    #[test]
    fn names_cannot_leave_the_save_directory() {
        assert!(safe_relative("bench/0200.cfg").is_some());
        for bad in ["/etc/passwd", "../x", "a/../../x", ""] {
            assert!(
                safe_relative(bad).is_none_or(|p| p.as_os_str().is_empty()),
                "{bad}"
            );
        }
    }

    #[test]
    fn many_small_files_are_verified_against_a_directory_and_saved() {
        let names = Names::pattern("bench/{mac}.cfg", 5, 1).unwrap();
        let files: HashMap<String, Vec<u8>> = (0..5)
            .map(|k| {
                let n = names.name(k);
                let c = content_for(&n, 1500 + k as usize * 300);
                (n, c)
            })
            .collect();
        let server = TestServer::start(files.clone(), Behaviour::default());
        let save = std::env::temp_dir().join(format!("loadgen-tftp-save-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&save);
        let mut c = cfg(server.addr(), names.clone());
        c.expect.files = Some(files.clone());
        c.save_dir = Some(save.clone());
        let r = run(c).unwrap();
        assert_eq!(
            (r.files, r.errors, r.timeouts),
            (40, 0, 0),
            "{}",
            r.detail()
        );
        assert!(r.all_ok());
        assert_eq!(r.negotiated.get(&(512, 1)), Some(&40));
        assert!(r.files_per_s() > 0.0);
        assert!(r.line().starts_with("RESULT tftp-load files=40 "));
        let loaded = load_reference(&save, &names).unwrap();
        assert_eq!(loaded, files);
        std::fs::remove_dir_all(&save).unwrap();
    }

    #[test]
    fn windowed_transfers_survive_lost_blocks() {
        let big = content_for("fw", 300_000);
        let sha = <[u8; 20]>::from(Sha1::digest(&big));
        let files = HashMap::from([("fw.bin".to_string(), big.clone())]);
        let server = TestServer::start(files, Behaviour { drop_every: 7 });
        let mut c = cfg(server.addr(), Names::Fixed("fw.bin".into()));
        c.count = 6;
        c.concurrency = 3;
        c.asked = RequestOptions {
            blksize: Some(1428),
            windowsize: Some(16),
            tsize: true,
        };
        c.timeout = Duration::from_millis(50);
        c.retries = 20;
        c.expect.sha1 = Some(sha);
        c.expect.size = Some(big.len() as u64);
        let r = run(c).unwrap();
        assert_eq!((r.files, r.errors, r.timeouts), (6, 0, 0), "{}", r.detail());
        assert_eq!(r.bytes, 6 * big.len() as u64);
        assert_eq!(r.negotiated.get(&(1428, 16)), Some(&6));
    }

    #[test]
    fn wrong_content_and_server_errors_are_errors() {
        let files = HashMap::from([("a".to_string(), b"hello".to_vec())]);
        let server = TestServer::start(files, Behaviour::default());
        let mut c = cfg(server.addr(), Names::Fixed("a".into()));
        c.count = 4;
        c.expect.size = Some(6);
        let r = run(c).unwrap();
        assert_eq!((r.files, r.errors, r.timeouts), (0, 4, 0));
        assert!(!r.all_ok());
        assert!(
            r.detail().contains("content: 5 bytes, expected 6"),
            "{}",
            r.detail()
        );

        let mut c = cfg(server.addr(), Names::Fixed("missing".into()));
        c.count = 3;
        let r = run(c).unwrap();
        assert_eq!((r.files, r.errors), (0, 3));
        assert!(
            r.detail().contains("error 1 \"File not found\""),
            "{}",
            r.detail()
        );
    }

    #[test]
    fn a_silent_server_times_out_within_bounds() {
        let silent = UdpSocket::bind("127.0.0.1:0").unwrap();
        let SocketAddr::V4(addr) = silent.local_addr().unwrap() else {
            unreachable!()
        };
        let mut c = cfg(addr, Names::Fixed("x".into()));
        c.count = 5;
        c.concurrency = 5;
        c.timeout = Duration::from_millis(20);
        c.retries = 2;
        let t = Instant::now();
        let r = run(c).unwrap();
        assert_eq!((r.files, r.errors, r.timeouts), (0, 0, 5), "{}", r.detail());
        assert!(t.elapsed() < Duration::from_secs(2));
        // The request was sent three times per transfer.
        let mut buf = [0u8; 512];
        silent.set_nonblocking(true).unwrap();
        let mut got = 0;
        while silent.recv_from(&mut buf).is_ok() {
            got += 1;
        }
        assert_eq!(got, 15);
    }

    #[test]
    fn time_bounds_the_run() {
        let files = HashMap::from([("a".to_string(), b"x".repeat(100))]);
        let server = TestServer::start(files, Behaviour::default());
        let mut c = cfg(server.addr(), Names::Fixed("a".into()));
        c.count = MAX_COUNT;
        c.duration = Duration::from_millis(300);
        let t = Instant::now();
        let r = run(c).unwrap();
        assert!(t.elapsed() < Duration::from_secs(3));
        assert!(r.files > 0 && r.all_ok(), "{}", r.detail());
    }

    #[test]
    fn bad_configs_are_refused() {
        let s = SocketAddrV4::new(Ipv4Addr::LOCALHOST, 69);
        let mut c = cfg(s, Names::Fixed("a".into()));
        c.concurrency = 0;
        assert!(run(c).is_err());
        let mut c = cfg(s, Names::Fixed("a".into()));
        c.asked.blksize = Some(4);
        assert!(run(c).is_err());
        let mut c = cfg(s, Names::Fixed("a".into()));
        c.count = MAX_COUNT + 1;
        assert!(run(c).is_err());
    }
}
