//! The socket path: the only crate that touches sockets on the hot path. One worker thread per
//! shard, each with its own SO_REUSEPORT socket on the DHCP port; a classic-BPF reuseport program
//! steers every datagram to the socket of the shard that owns its client (chaddr bytes 2..6, the
//! same rule as [`provd_common::shard_of`]), so no lock or queue sits between workers.
//!
//! A worker receives a batch with `recvmmsg`, lets the engine decide each datagram, sends the
//! replies that need no durability (OFFERs, NAKs, INFORM ACKs) with `sendmmsg`, commits the
//! batch's lease records with one write + fdatasync (group commit), and only then sends the ACKs.
//! The kernel queues packets while a commit runs, so the next batch is bigger: the commit cost is
//! shared by more leases exactly when load is high.

mod socket;

use std::net::{Ipv4Addr, SocketAddrV4};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use provd_engine::{Counters, Destination, Drop, Ingress, Outcome, Shard};
use provd_lease::LeaseLog;

pub use socket::{BATCH, DhcpSocket, Received};

/// Which I/O path serves packets; the binary reports it at start-up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Path {
    Sockets,
}

impl Path {
    pub fn as_str(self) -> &'static str {
        match self {
            Path::Sockets => "sockets",
        }
    }
}

/// Settings the workers need beyond the engine's policy.
#[derive(Debug, Clone)]
pub struct WorkerSettings {
    pub bind: Ipv4Addr,
    pub port: u16,
    /// Compact a shard's log once it holds this many records and at least twice the live count.
    pub compact_after_records: u64,
}

/// Opens one socket per shard, bound to the same address in one reuseport group, with the
/// steering program attached. Fails if the port cannot be bound.
pub fn open_sockets(settings: &WorkerSettings, shards: u32) -> std::io::Result<Vec<DhcpSocket>> {
    let socks = (0..shards)
        .map(|_| DhcpSocket::bind(SocketAddrV4::new(settings.bind, settings.port)))
        .collect::<std::io::Result<Vec<_>>>()?;
    if shards > 1 {
        socks[0].attach_shard_steering(shards)?;
    }
    Ok(socks)
}

/// Unix seconds now; provd's lease times are absolute unix seconds.
pub fn unix_now() -> u32 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as u32)
}

/// Allows a few log lines per second and counts what it held back.
#[derive(Debug)]
struct RateLimit {
    window: Instant,
    used: u32,
    suppressed: u64,
}

impl RateLimit {
    const PER_SEC: u32 = 5;

    fn new() -> Self {
        RateLimit {
            window: Instant::now(),
            used: 0,
            suppressed: 0,
        }
    }

    /// Whether a line may be logged now; when a new window opens, returns how many were held.
    fn allow(&mut self) -> (bool, u64) {
        if self.window.elapsed() >= Duration::from_secs(1) {
            self.window = Instant::now();
            self.used = 0;
            let held = std::mem::take(&mut self.suppressed);
            self.used += 1;
            return (true, held);
        }
        if self.used < Self::PER_SEC {
            self.used += 1;
            (true, 0)
        } else {
            self.suppressed += 1;
            (false, 0)
        }
    }
}

/// Drops that say something about the network or the config, worth a (rate-limited) warning;
/// the rest are normal protocol outcomes counted quietly.
fn worth_a_warning(d: Drop) -> bool {
    !matches!(
        d,
        Drop::OtherServerChosen
            | Drop::UnknownClient
            | Drop::NotOurBinding
            | Drop::ReleaseUnknown
            | Drop::DeclineUnknown
    )
}

/// One shard's worker: runs until `shutdown` is set, then commits what is pending and returns.
#[derive(Debug)]
pub struct Worker {
    pub index: u32,
    pub shards: u32,
    pub shard: Shard,
    pub log: LeaseLog,
    pub socket: DhcpSocket,
    pub settings: WorkerSettings,
}

impl Worker {
    pub fn run(mut self, shutdown: &AtomicBool) -> std::io::Result<()> {
        let counters: Arc<Counters> = self.shard.counters();
        let mut rx = Received::new();
        let mut out: Vec<Vec<u8>> = (0..BATCH).map(|_| Vec::with_capacity(600)).collect();
        let mut quick: Vec<(usize, Destination)> = Vec::with_capacity(BATCH);
        let mut durable: Vec<(usize, Destination)> = Vec::with_capacity(BATCH);
        let mut limit = RateLimit::new();
        let mut commit_errors = RateLimit::new();
        let mut records = 0u64;
        while !shutdown.load(Ordering::Relaxed) {
            let n = self.socket.recv_batch(&mut rx)?;
            let now = unix_now();
            quick.clear();
            durable.clear();
            for (i, reply) in out.iter_mut().enumerate().take(n) {
                let (payload, meta) = rx.get(i);
                // Broadcasts reach every socket of the group, not just the steered one: only the
                // shard owning the client answers. (Unicast is steered, so this is a no-op there.)
                if self.shards > 1 && owner(payload, self.shards) != self.index {
                    continue;
                }
                let ingress = Ingress {
                    payload,
                    src: meta.src,
                    local: meta.local,
                    ifindex: meta.ifindex,
                };
                match self.shard.handle(now, &ingress, reply) {
                    Outcome::Reply(r) if r.durable => durable.push((i, r.dest)),
                    Outcome::Reply(r) => quick.push((i, r.dest)),
                    Outcome::Done => {}
                    Outcome::Dropped(d) => {
                        if worth_a_warning(d) {
                            let (ok, held) = limit.allow();
                            if ok {
                                tracing::warn!(
                                    shard = self.index,
                                    reason = d.label(),
                                    src = %meta.src,
                                    len = payload.len(),
                                    suppressed = held,
                                    "dropped DHCP packet"
                                );
                            }
                        }
                    }
                }
            }
            self.send(&quick, &out, &counters);
            if self.shard.has_pending() {
                let mut batch = 0;
                for (key, lease) in self.shard.take_pending() {
                    self.log.append(&key, &lease);
                    batch += 1;
                }
                match self.log.commit() {
                    Ok(()) => {
                        counters.committed(batch);
                        records += batch;
                        self.send(&durable, &out, &counters);
                    }
                    Err(e) => {
                        // Nothing acknowledged may be lost: without a durable record, no ACK.
                        let (ok, held) = commit_errors.allow();
                        if ok {
                            tracing::error!(shard = self.index, error = %e, withheld = durable.len(), suppressed = held, "lease log commit failed; ACKs withheld");
                        }
                        for _ in &durable {
                            counters.dropped(Drop::PersistFailed);
                        }
                    }
                }
            } else {
                self.send(&durable, &out, &counters);
            }
            self.shard.tick(now);
            let live = self.shard.table().len() as u64;
            if self.log.log_records() >= self.settings.compact_after_records
                && self.log.log_records() >= 2 * live
            {
                let t = Instant::now();
                match self.log.compact(self.shard.table()) {
                    Ok(()) => tracing::info!(
                        shard = self.index,
                        leases = live,
                        ms = t.elapsed().as_millis() as u64,
                        "lease log compacted"
                    ),
                    Err(e) => {
                        tracing::error!(shard = self.index, error = %e, "lease log compaction failed")
                    }
                }
            }
        }
        if self.shard.has_pending() {
            for (key, lease) in self.shard.take_pending() {
                self.log.append(&key, &lease);
            }
            if let Err(e) = self.log.commit() {
                tracing::error!(shard = self.index, error = %e, "final lease log commit failed");
            }
        }
        tracing::debug!(shard = self.index, records, "worker stopped");
        Ok(())
    }

    fn send(&mut self, which: &[(usize, Destination)], out: &[Vec<u8>], counters: &Counters) {
        if which.is_empty() {
            return;
        }
        let failed = self
            .socket
            .send_batch(which.iter().map(|(i, d)| (out[*i].as_slice(), *d)));
        for _ in 0..failed {
            counters.dropped(Drop::SendFailed);
        }
    }
}

/// The shard owning the client of a raw BOOTP payload; short packets go to shard 0, as the
/// reuseport program sends them (its load fails and it returns 0).
fn owner(payload: &[u8], shards: u32) -> u32 {
    match payload.get(28..34) {
        Some(ch) => provd_common::shard_of(ch.try_into().expect("six bytes"), shards),
        None => 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn owner_matches_the_common_rule_and_short_packets_go_to_zero() {
        let mut p = vec![0u8; 240];
        p[28..34].copy_from_slice(&[0, 0x15, 0, 0, 0, 7]);
        assert_eq!(
            owner(&p, 2),
            provd_common::shard_of(&[0, 0x15, 0, 0, 0, 7], 2)
        );
        assert_eq!(owner(&p[..20], 2), 0);
    }

    #[test]
    fn rate_limit_holds_back_and_reports() {
        let mut r = RateLimit::new();
        let allowed = (0..20).filter(|_| r.allow().0).count();
        assert_eq!(allowed, RateLimit::PER_SEC as usize);
        assert_eq!(r.suppressed, 15);
    }
}
