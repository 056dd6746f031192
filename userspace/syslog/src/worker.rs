//! One receiver thread: reads batches from its socket of the reuseport group, parses each
//! datagram and files it under its device. It waits at most the socket's read timeout, so it
//! notices the shutdown flag within ~100 ms.

use std::net::SocketAddrV4;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use provd_udp::{RateLimit, RecvBatch, UdpSocket, Wait};

use crate::parse::{Format, MAX_DATAGRAM, ParseError, parse};
use crate::store::{DeviceOf, Store, device_key};

/// Datagrams per recvmmsg call.
const BATCH: usize = 32;
/// One byte more than the parser reads, so that it sees (and marks) a longer datagram as cut.
const SLOT: usize = MAX_DATAGRAM + 1;
/// Sources a worker keeps a rate budget for (see [`provd_udp::SourceLimit`]).
pub(crate) const MAX_SOURCES: usize = 65_536;
/// How long a receive waits before the worker looks at the shutdown flag again.
pub(crate) const READ_TIMEOUT: Duration = Duration::from_millis(100);

/// Counters shared by every worker, updated once per batch.
#[derive(Debug, Default)]
pub(crate) struct Shared {
    pub received: AtomicU64,
    pub parsed: AtomicU64,
    pub by_format: [AtomicU64; Format::KINDS],
    pub malformed: [AtomicU64; ParseError::KINDS],
    pub truncated: AtomicU64,
    pub stored: AtomicU64,
    pub rate_limited: AtomicU64,
    pub unleased: AtomicU64,
    pub receive_errors: AtomicU64,
}

/// What one batch added, published to [`Shared`] in one go.
#[derive(Debug, Default)]
struct Tally {
    received: u64,
    parsed: u64,
    by_format: [u64; Format::KINDS],
    malformed: [u64; ParseError::KINDS],
    truncated: u64,
    stored: u64,
    rate_limited: u64,
    unleased: u64,
}

impl Tally {
    /// Adds the batch's counts. `received` goes last with Release, and [`crate::SyslogHandle`]
    /// reads it first with Acquire: whoever sees a datagram received sees all its other counts
    /// (and its event in the store).
    fn publish(&mut self, to: &Shared) {
        let add = |a: &AtomicU64, v: u64| {
            if v > 0 {
                a.fetch_add(v, Ordering::Relaxed);
            }
        };
        add(&to.parsed, self.parsed);
        for (a, &v) in to.by_format.iter().zip(&self.by_format) {
            add(a, v);
        }
        for (a, &v) in to.malformed.iter().zip(&self.malformed) {
            add(a, v);
        }
        add(&to.truncated, self.truncated);
        add(&to.stored, self.stored);
        add(&to.rate_limited, self.rate_limited);
        add(&to.unleased, self.unleased);
        to.received.fetch_add(self.received, Ordering::Release);
        *self = Tally::default();
    }
}

pub(crate) struct Worker {
    pub index: usize,
    pub socket: UdpSocket,
    pub store: Arc<Store>,
    pub device_of: Arc<dyn DeviceOf>,
    pub shared: Arc<Shared>,
    pub limit: provd_udp::SourceLimit,
}

impl Worker {
    pub(crate) fn run(self, shutdown: &AtomicBool) -> std::io::Result<()> {
        let Worker {
            index,
            socket,
            store,
            device_of,
            shared,
            mut limit,
        } = self;
        let mut rx = RecvBatch::new(BATCH, SLOT);
        let mut tally = Tally::default();
        let mut warnings = RateLimits::default();
        tracing::debug!(worker = index, "syslog worker started");
        while !shutdown.load(Ordering::Relaxed) {
            provd_role::beat();
            let n = match socket.recv_batch(&mut rx, Wait::ForOne) {
                Ok(n) => n,
                Err(e) => {
                    shared.receive_errors.fetch_add(1, Ordering::Relaxed);
                    if warnings.receive.allow().is_some() {
                        tracing::warn!(worker = index, error = %e, "syslog receive error");
                    }
                    // Never spin on a persistent error.
                    std::thread::sleep(Duration::from_millis(10));
                    continue;
                }
            };
            if n == 0 {
                continue;
            }
            let now = provd_role::clock::unix_millis();
            for i in 0..n {
                let (bytes, meta) = rx.get(i);
                let src = meta.src;
                tally.received += 1;
                if !limit.allow(*src.ip(), now) {
                    tally.rate_limited += 1;
                    continue;
                }
                match parse(bytes, now) {
                    Ok(msg) => {
                        tally.parsed += 1;
                        tally.by_format[msg.format.index()] += 1;
                        if msg.truncated {
                            tally.truncated += 1;
                        }
                        let key = device_key(&*device_of, *src.ip());
                        let seq = store.insert(key, *src.ip(), &msg);
                        tally.stored += 1;
                        if matches!(key, crate::DeviceKey::Addr(_)) {
                            tally.unleased += 1;
                        }
                        tracing::trace!(
                            worker = index, %src, device = %key, seq,
                            severity = msg.severity, text = %msg.text, "syslog event"
                        );
                    }
                    Err(e) => {
                        tally.malformed[e.index()] += 1;
                        warnings.malformed(index, src, &e);
                    }
                }
            }
            tally.publish(&shared);
        }
        tracing::debug!(worker = index, "syslog worker stopped");
        Ok(())
    }
}

#[derive(Debug)]
struct RateLimits {
    malformed: [RateLimit; ParseError::KINDS],
    receive: RateLimit,
}

impl Default for RateLimits {
    fn default() -> Self {
        RateLimits {
            malformed: std::array::from_fn(|_| RateLimit::default()),
            receive: RateLimit::default(),
        }
    }
}

impl RateLimits {
    /// Something that is not syslog reached the port: a misconfigured device or a scan.
    fn malformed(&mut self, worker: usize, src: SocketAddrV4, e: &ParseError) {
        if let Some(suppressed) = self.malformed[e.index()].allow() {
            tracing::warn!(
                worker, %src, kind = e.label(), error = %e, suppressed,
                "dropped a datagram that is not syslog"
            );
        }
    }
}
