//! The socket path: the only crate that touches sockets on the hot path. One worker thread per
//! shard, each with its own SO_REUSEPORT socket on the DHCP port; a classic-BPF reuseport program
//! steers every datagram to the socket of the shard that owns its client (chaddr bytes 2..6, the
//! same rule as [`provd_common::shard_of`]), so no lock or queue sits between workers.
//!
//! A worker receives a batch with `recvmmsg`, lets the engine decide each datagram, sends the
//! replies that need no durability (OFFERs, NAKs, INFORM ACKs) with `sendmmsg`, writes the
//! batch's lease records to its log and hands the batch's ACKs to the shard's sync thread, then
//! goes straight back to receiving. The sync thread takes every batch queued so far, makes them
//! durable with one fdatasync (group commit, pipelined: the worker answers DISCOVERs while the
//! disk flushes), and only then sends their ACKs. Under load more batches queue behind each
//! fdatasync, so its cost is shared by more leases exactly when it matters. That per-batch step
//! is the [`commit`] pipeline, apart from the I/O loop so that its tests can break it.

mod choose;
pub mod commit;
pub mod frame;
mod io;
pub mod metrics;
pub mod null;
mod reload;
mod role;
mod socket;
mod uring;
mod xsk;

use std::net::{Ipv4Addr, SocketAddrV4};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use provd_engine::{Counters, Destination, Drop, Ingress, Outcome, Shard};
use provd_lease::{LeaseLog, LeaseObserver};
use provd_role::clock::unix_secs_u32;

pub use commit::{AckBatch, AckSink, BatchPool, CommitStats};
pub use io::{IoAckSink, SocketIo, Via, WorkerIo, XdpIface, XdpIo};
pub use reload::PolicySwap;
pub use role::{DhcpRole, DhcpState, ShardCommands};
pub use socket::{BATCH, DhcpSocket, Meta, receive_buffers};
pub use uring::UringIo;

use provd_udp::RateLimit;
pub use xsk::{BindMode, FRAME, Xsk};

/// The I/O path the workers run on: the config's `server.io` names the one wanted (or `Auto`),
/// [`DhcpRole::path`] the one taken (never `Auto`).
pub use provd_config::IoPath;

/// How often a worker whose lease log lost durability tries to start it afresh.
const RECOVER_EVERY: std::time::Duration = std::time::Duration::from_secs(1);

/// Settings the workers need beyond the engine's policy.
#[derive(Debug, Clone)]
pub struct WorkerSettings {
    pub bind: Ipv4Addr,
    pub port: u16,
    /// Compact a shard's log once it holds this many records and at least twice the live count.
    pub compact_after_records: u64,
    /// Answer with canned replies (see [`null`]) instead of the engine: a benchmark ceiling.
    pub null_responder: bool,
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

/// Opens one io_uring worker I/O per shard on the same reuseport sockets as the socket path.
pub fn open_uring(settings: &WorkerSettings, shards: u32) -> std::io::Result<Vec<WorkerIo>> {
    open_sockets(settings, shards)?
        .into_iter()
        .map(|s| Ok(WorkerIo::Uring(Box::new(uring::UringIo::new(s)?))))
        .collect()
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

/// What an operator asks of one shard's worker.
#[derive(Debug)]
pub enum ShardCommand {
    /// End `mac`'s bound lease as a DHCPRELEASE would; the reply comes once its record is
    /// durable: the address released, or `None` if the shard holds no bound lease of `mac`.
    Release {
        mac: [u8; 6],
        reply: crossbeam_channel::Sender<Result<Option<Ipv4Addr>, String>>,
    },
}

/// One shard's worker: runs until `shutdown` is set, then makes what it wrote durable and
/// returns.
#[derive(Debug)]
pub struct Worker {
    pub index: u32,
    pub shards: u32,
    pub shard: Shard,
    pub log: LeaseLog,
    pub io: WorkerIo,
    pub settings: WorkerSettings,
    /// Told of lease records and bindings as they are written (see [`LeaseObserver`]).
    pub observer: Option<Arc<dyn LeaseObserver>>,
    /// Config reloads: looked at once per batch.
    pub swap: Arc<PolicySwap>,
    /// Operators' requests to this shard (a lease release), drained once per batch.
    pub commands: crossbeam_channel::Receiver<ShardCommand>,
    /// The shard's commit latencies, read by [`DhcpRole`]'s metrics.
    pub timings: Arc<CommitStats>,
}

impl Worker {
    pub fn run(self, shutdown: &AtomicBool) -> std::io::Result<()> {
        let Worker {
            index,
            shards,
            mut shard,
            log,
            mut io,
            settings,
            observer,
            swap,
            timings,
            commands,
        } = self;
        let mut epoch = 0;
        if observer.is_some() {
            shard.collect_bindings();
        }
        let counters: Arc<Counters> = shard.counters();
        let syncer = log.syncer().map_err(std::io::Error::other)?;
        let pool = BatchPool::new();
        let sink = io.ack_sink(pool.returns())?;
        let (mut committer, sync) = commit::pipeline(
            index,
            log,
            syncer,
            sink,
            pool,
            Arc::clone(&counters),
            timings,
        );
        std::thread::scope(|scope| {
            let sync_thread = std::thread::Builder::new()
                .name(format!("provd-sync-{index}"))
                .spawn_scoped(scope, move || sync.run())?;
            let mut out: Vec<Vec<u8>> = (0..BATCH).map(|_| Vec::with_capacity(600)).collect();
            let mut quick: Vec<(usize, Destination, Via)> = Vec::with_capacity(2 * BATCH);
            let mut durable: Vec<(usize, Destination, Via)> = Vec::with_capacity(2 * BATCH);
            if out.len() < 2 * BATCH {
                // The XDP path takes a batch from its AF_XDP socket and one from its socket.
                out.resize_with(2 * BATCH, || Vec::with_capacity(600));
            }
            let mut limit = RateLimit::per_sec(5);
            let mut last_recovery: Option<Instant> = None;
            while !shutdown.load(Ordering::Relaxed) {
                provd_role::beat();
                let n = io.recv(&counters)?;
                let received = Instant::now();
                let now = unix_secs_u32();
                quick.clear();
                durable.clear();
                // Without a durable log no ACK can leave, so nothing is decided: an OFFER now
                // would hold an address for a REQUEST that cannot be ACKed. Once a second the
                // log is started afresh from the table, which heals a disk that was freed.
                if committer.durability_lost()
                    && last_recovery.is_none_or(|t| received.duration_since(t) >= RECOVER_EVERY)
                {
                    last_recovery = Some(received);
                    // Decided records not yet written are in the table the recovery writes.
                    shard.take_pending().for_each(drop);
                    committer.recover(shard.table());
                }
                let lost = committer.durability_lost();
                for (i, reply) in out.iter_mut().enumerate().take(n) {
                    let (payload, meta, via) = io.get(i);
                    // Broadcasts reach every socket of the group, not just the steered one: only
                    // the shard owning the client answers. Unicast is steered, except a packet
                    // that arrived coalesced with others (UDP GSO from a sender on this host,
                    // or GRO): the reuseport program steers it as one, by its first client.
                    // Those clients go unanswered here, so they are counted.
                    if shards > 1 && owner(payload, shards) != index {
                        if !meta.local.is_broadcast() {
                            counters.dropped(Drop::OtherShard);
                        }
                        continue;
                    }
                    if lost {
                        counters.dropped(Drop::DurabilityLost);
                        continue;
                    }
                    if settings.null_responder {
                        if let Some(dest) = null::reply(payload, meta.local, meta.ifindex, reply) {
                            quick.push((i, dest, via));
                        }
                        continue;
                    }
                    let ingress = Ingress {
                        payload,
                        src: meta.src,
                        local: meta.local,
                        ifindex: meta.ifindex,
                    };
                    match shard.handle(now, &ingress, reply) {
                        Outcome::Reply(r) if r.durable => durable.push((i, r.dest, via)),
                        Outcome::Reply(r) => quick.push((i, r.dest, via)),
                        Outcome::NoReply => {}
                        Outcome::Dropped(d) => {
                            if worth_a_warning(d)
                                && let Some(held) = limit.allow()
                            {
                                tracing::warn!(
                                    shard = index,
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
                io.send(
                    quick.iter().map(|(i, d, v)| (out[*i].as_slice(), *d, *v)),
                    &counters,
                );
                let mut released = Vec::new();
                for cmd in commands.try_iter() {
                    match cmd {
                        ShardCommand::Release { reply, .. } if lost => {
                            let _ = reply.send(Err(
                                "the lease log is not durable (see the DHCP role's health)".into(),
                            ));
                        }
                        ShardCommand::Release { mac, reply } => match shard.release_mac(mac, now) {
                            Some(addr) => released.push(commit::Durable::new(move |r| {
                                let _ = reply.send(r.map(|()| Some(addr)));
                            })),
                            None => {
                                let _ = reply.send(Ok(None));
                            }
                        },
                    }
                }
                // ACKs always come with lease records; either one starts a batch for the syncer.
                if shard.has_pending() || !durable.is_empty() {
                    let mut batch = committer.begin_at(received);
                    released.into_iter().for_each(|d| batch.when_durable(d));
                    for (key, lease) in shard.take_pending() {
                        batch.append(&key, &lease);
                        if let Some(o) = &observer {
                            o.record(&lease);
                        }
                    }
                    if let Some(o) = &observer {
                        shard.take_bindings().for_each(|b| o.bind(b));
                    }
                    batch.submit(durable.iter().map(|(i, d, v)| (out[*i].as_slice(), *d, *v)));
                }
                shard.tick(now);
                swap.check(&mut shard, &mut epoch);
                let live = shard.table().len() as u64;
                let log = committer.writer_mut();
                if !lost
                    && !log.is_poisoned()
                    && log.log_records() >= settings.compact_after_records
                    && log.log_records() >= 2 * live
                {
                    // Safe while the sync thread works: the snapshot holds every lease whose ACK
                    // it still has queued, and is durable before the log is truncated.
                    let t = Instant::now();
                    match log.compact(shard.table()) {
                        Ok(()) => tracing::info!(
                            shard = index,
                            leases = live,
                            ms = t.elapsed().as_millis() as u64,
                            "lease log compacted"
                        ),
                        Err(e) => {
                            tracing::error!(shard = index, error = %e, "lease log compaction failed")
                        }
                    }
                }
            }
            let mut log = committer.finish();
            sync_thread
                .join()
                .map_err(|_| std::io::Error::other("sync thread panicked"))?;
            // ACKs the sync thread handed back in its last round (XDP path).
            io.flush(&counters);
            // Records of the last batches (RELEASE, DECLINE) are written; make them durable too.
            for (key, lease) in shard.take_pending() {
                log.append(&key, &lease);
            }
            if let Err(e) = log.commit() {
                tracing::error!(shard = index, error = %e, "final lease log commit failed");
            }
            tracing::debug!(shard = index, "worker stopped");
            Ok(())
        })
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
}
