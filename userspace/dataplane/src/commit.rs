//! The commit pipeline: the per-batch step between the engine's decisions and the ACKs that
//! acknowledge them, apart from the I/O loop so that a test can break it.
//!
//! A worker appends its batch's lease records and writes them ([`LeaseWriter`]), queues the
//! batch's ACKs for the shard's sync thread ([`Committer`]) and goes back to receiving. The sync
//! thread ([`SyncLoop`]) takes every batch queued so far, makes them durable with one sync
//! ([`LeaseSync`]: group commit, its cost shared by more batches the slower it is) and only then
//! hands their ACKs to an [`AckSink`]. A failed write or sync sends none of the ACKs that
//! depended on it and counts each as [`Drop::PersistFailed`]: nothing acknowledged is lost.
//!
//! A failure also marks the shard's [`Durability`] lost, and the worker stops deciding (no
//! OFFER it could not ACK) until [`Committer::recover`] has started the log afresh from the
//! shard's table: the worker tries that once a second, so a disk that filled and was freed
//! heals without a restart. The new log's syncer reaches the sync thread through the same
//! queue as the batches, behind every batch written to the old one.
//!
//! The worker runs it on the real log ([`LeaseLog`], [`LogSyncer`]) and its I/O path's sink
//! ([`crate::IoAckSink`]). Everything is generic and monomorphised: no dynamic dispatch and no
//! allocation per batch beyond the recycled [`AckBatch`]es the loop always had. The unit tests
//! below inject a failed write, a failed sync and a slow sync.

use std::fmt;
use std::ops::Range;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use crossbeam_channel::{Receiver, Sender};
use provd_dhcp::MessageType;
use provd_engine::{Counters, Destination, Drop};
use provd_lease::{ClientKey, Lease, LeaseLog, LeaseTable, LogError, LogSyncer};
use provd_role::clock::unix_secs_u32;
use provd_role::metrics::AtomicHistogram;
use provd_udp::RateLimit;

use crate::Via;

/// The writing half of a shard's lease log, used by the worker thread.
pub trait LeaseWriter {
    /// The syncing half that goes with a (recovered) log.
    type Sync: LeaseSync;
    /// Buffers one record; nothing reaches the file before [`LeaseWriter::write`].
    fn append(&mut self, key: &ClientKey, lease: &Lease);
    /// Writes everything appended since the last write, without making it durable. On Err
    /// nothing appended since the last Ok may be acknowledged.
    fn write(&mut self) -> Result<(), LogError>;
    /// After a failed write or sync: starts the log afresh with `table` (every lease the shard
    /// decided) durable in it, and returns the syncer of the new log. On Err nothing changed.
    fn recover(&mut self, table: &LeaseTable) -> Result<Self::Sync, LogError>;
}

/// The syncing half of a shard's lease log, moved to the shard's sync thread.
pub trait LeaseSync: Send {
    /// Makes durable every byte [`LeaseWriter::write`] wrote before this call began. Nothing
    /// written may be acknowledged before a sync that began after the write returned Ok.
    fn sync(&mut self) -> Result<(), LogError>;
}

/// Where the sync thread sends ACKs once their records are durable.
pub trait AckSink: Send {
    /// Sends (or forwards) every reply of `batch`; returns the batch when the caller should put
    /// it back in the [`BatchPool`], `None` when the sink passed it on.
    fn deliver(&mut self, batch: AckBatch, counters: &Counters) -> Option<AckBatch>;
}

impl LeaseWriter for LeaseLog {
    type Sync = LogSyncer;
    #[inline]
    fn append(&mut self, key: &ClientKey, lease: &Lease) {
        LeaseLog::append(self, key, lease);
    }
    #[inline]
    fn write(&mut self) -> Result<(), LogError> {
        LeaseLog::write(self)
    }
    fn recover(&mut self, table: &LeaseTable) -> Result<LogSyncer, LogError> {
        LeaseLog::recover(self, table)?;
        self.syncer()
    }
}

impl LeaseSync for LogSyncer {
    #[inline]
    fn sync(&mut self) -> Result<(), LogError> {
        LogSyncer::sync(self)
    }
}

/// One batch's ACKs waiting for the sync that covers their lease records: the reply bytes in one
/// buffer, and where each reply goes.
#[derive(Debug, Default)]
pub struct AckBatch {
    pub(crate) data: Vec<u8>,
    pub(crate) replies: Vec<(Range<usize>, Destination, Via)>,
    pub(crate) records: u64,
    /// When the worker received the datagrams the batch answers.
    pub(crate) received: Option<Instant>,
    /// Told once the batch's records are durable (`Ok`) or will never be (`Err`): an
    /// operator's release waits on this before its 2xx.
    pub(crate) durable: Vec<Durable>,
}

/// Called once [`Batch::when_durable`]'s batch is durable (`Ok`) or will never be (`Err`).
pub struct Durable(Box<dyn FnOnce(Result<(), String>) + Send>);

impl Durable {
    pub fn new(f: impl FnOnce(Result<(), String>) + Send + 'static) -> Durable {
        Durable(Box::new(f))
    }

    fn fire(self, r: Result<(), String>) {
        (self.0)(r);
    }
}

impl fmt::Debug for Durable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Durable")
    }
}

impl AckBatch {
    /// The ACKs of the batch, in the order the worker decided them.
    pub fn replies(&self) -> impl ExactSizeIterator<Item = (&[u8], Destination, Via)> + '_ {
        self.replies
            .iter()
            .map(|(r, d, v)| (self.data.get(r.clone()).unwrap_or_default(), *d, *v))
    }

    /// Lease records written with the batch.
    pub fn records(&self) -> u64 {
        self.records
    }

    /// Empties the batch, keeping its buffers, for reuse.
    pub(crate) fn clear(&mut self) {
        self.data.clear();
        self.replies.clear();
        self.records = 0;
        self.received = None;
        self.durable.clear();
    }
}

/// Emptied [`AckBatch`]es on their way back to the worker, so that batches are reused, not
/// allocated. Sinks that pass batches on (the XDP path's hand-back) return them through
/// [`BatchPool::returns`].
#[derive(Debug)]
pub struct BatchPool {
    give: Sender<AckBatch>,
    take: Receiver<AckBatch>,
}

impl BatchPool {
    /// An empty pool; batches are allocated as needed until they start coming back.
    pub fn new() -> Self {
        let (give, take) = crossbeam_channel::unbounded();
        BatchPool { give, take }
    }

    /// Where emptied batches go back to the pool.
    pub fn returns(&self) -> &Sender<AckBatch> {
        &self.give
    }
}

impl Default for BatchPool {
    fn default() -> Self {
        Self::new()
    }
}

/// One shard's commit latencies and the state of its log: written by its worker and sync
/// thread once per group commit or failure (never per packet), read at scrape time and by the
/// role's health. Plain atomics, not the metrics facade: see [`AtomicHistogram`].
#[derive(Debug, Default)]
pub struct CommitStats {
    /// From the receipt of a batch to its ACKs handed to the I/O path, the lease log's write
    /// and sync included; one observation per ACK.
    pub ack_latency: AtomicHistogram,
    /// Each sync of the lease log (fdatasync), failed ones included.
    pub fsync: AtomicHistogram,
    pub durability: Durability,
}

/// Whether a shard's lease log can make leases durable now: lost on a failed write or sync,
/// regained when [`Committer::recover`] succeeds. While lost the worker answers nothing.
#[derive(Debug, Default)]
pub struct Durability {
    lost: AtomicBool,
    /// Unix seconds when it was lost (0 while durable).
    lost_at: AtomicU64,
    failures: AtomicU64,
    recoveries: AtomicU64,
    last_error: Mutex<String>,
}

impl Durability {
    pub fn is_lost(&self) -> bool {
        self.lost.load(Ordering::Acquire)
    }

    /// Since when (unix seconds) and why, while lost.
    pub fn lost_since(&self) -> Option<(u32, String)> {
        if !self.is_lost() {
            return None;
        }
        let why = self
            .last_error
            .lock()
            .map(|e| e.clone())
            .unwrap_or_default();
        Some((self.lost_at.load(Ordering::Relaxed) as u32, why))
    }

    /// Failed writes and syncs so far.
    pub fn failures(&self) -> u64 {
        self.failures.load(Ordering::Relaxed)
    }

    /// Recoveries so far.
    pub fn recoveries(&self) -> u64 {
        self.recoveries.load(Ordering::Relaxed)
    }

    fn lose(&self, e: &LogError) {
        self.failures.fetch_add(1, Ordering::Relaxed);
        if let Ok(mut last) = self.last_error.lock() {
            // The whole chain: "write failed" alone does not say the disk is full.
            let mut why = e.to_string();
            let mut source = std::error::Error::source(e);
            while let Some(s) = source {
                why.push_str(": ");
                why.push_str(&s.to_string());
                source = s.source();
            }
            *last = why;
        }
        if !self.lost.swap(true, Ordering::AcqRel) {
            self.lost_at
                .store(u64::from(unix_secs_u32()), Ordering::Relaxed);
        }
    }

    fn regain(&self) {
        self.recoveries.fetch_add(1, Ordering::Relaxed);
        self.lost_at.store(0, Ordering::Relaxed);
        self.lost.store(false, Ordering::Release);
    }
}

/// What the worker queues for its sync thread: a written batch, or the syncer of a log
/// [`Committer::recover`] started afresh (every batch queued after it was written to that log).
enum ToSync<S> {
    Batch(AckBatch),
    Syncer(S),
}

/// Batches written to the log but not yet synced; bounded so a stalled disk stops the worker
/// (and the kernel's socket buffer takes the backlog) instead of growing memory.
pub const MAX_UNSYNCED_BATCHES: usize = 256;

/// Builds one shard's pipeline: the [`Committer`] stays with the worker, the [`SyncLoop`] goes to
/// a thread of its own (`std::thread::spawn(move || sync.run())`). `index` names the shard in
/// log lines; `counters` get the commits and the withheld ACKs, `timings` the sync and ACK
/// latencies.
pub fn pipeline<W: LeaseWriter<Sync = S>, S: LeaseSync, K: AckSink>(
    index: u32,
    writer: W,
    syncer: S,
    sink: K,
    pool: BatchPool,
    counters: Arc<Counters>,
    timings: Arc<CommitStats>,
) -> (Committer<W>, SyncLoop<S, K>) {
    let (to_sync, unsynced) = crossbeam_channel::bounded(MAX_UNSYNCED_BATCHES);
    let committer = Committer {
        index,
        writer,
        to_sync,
        recycled: pool.take,
        counters: Arc::clone(&counters),
        stats: Arc::clone(&timings),
        errors: RateLimit::per_sec(5),
    };
    let sync = SyncLoop {
        index,
        syncer,
        sink,
        unsynced,
        recycle: pool.give,
        counters,
        timings,
    };
    (committer, sync)
}

/// The worker's half of the pipeline: owns the log writer, starts a [`Batch`] per received batch.
pub struct Committer<W: LeaseWriter> {
    index: u32,
    writer: W,
    to_sync: Sender<ToSync<W::Sync>>,
    recycled: Receiver<AckBatch>,
    counters: Arc<Counters>,
    stats: Arc<CommitStats>,
    errors: RateLimit,
}

impl<W: LeaseWriter> Committer<W> {
    /// Starts a batch, in a recycled [`AckBatch`] when one is back, for datagrams received
    /// now.
    #[inline]
    pub fn begin(&mut self) -> Batch<'_, W> {
        self.begin_at(Instant::now())
    }

    /// Starts a batch answering datagrams received at `received`: its ACKs' latency is
    /// measured from there.
    #[inline]
    pub fn begin_at(&mut self, received: Instant) -> Batch<'_, W> {
        let mut acks = self.recycled.try_recv().unwrap_or_default();
        acks.received = Some(received);
        Batch { c: self, acks }
    }

    /// The log writer, for what the pipeline does not do (compaction, its record count).
    pub fn writer_mut(&mut self) -> &mut W {
        &mut self.writer
    }

    /// Whether the log lost durability (a failed write or sync) and has not recovered: decide
    /// nothing that would need it.
    pub fn durability_lost(&self) -> bool {
        self.stats.durability.is_lost()
    }

    /// Starts the log afresh from `table` after a failure (see [`LeaseWriter::recover`]) and
    /// hands its syncer to the sync thread, behind every batch written to the old log. Returns
    /// whether the log is durable again; on failure (the disk still full) it stays lost.
    pub fn recover(&mut self, table: &LeaseTable) -> bool {
        match self.writer.recover(table) {
            Ok(syncer) => {
                // Fails only once the sync thread is gone, which it is not before `finish`.
                let _ = self.to_sync.send(ToSync::Syncer(syncer));
                self.stats.durability.regain();
                tracing::warn!(
                    shard = self.index,
                    leases = table.len(),
                    "lease log recovered: every lease durable again; answering DHCP"
                );
                true
            }
            Err(e) => {
                if let Some(held) = self.errors.allow() {
                    tracing::error!(shard = self.index, error = %e, suppressed = held, "lease log still not writable; DHCP not answered");
                }
                false
            }
        }
    }

    /// Queues nothing more and returns the writer. The sync thread ends once it has synced and
    /// delivered every batch queued before; join it before relying on that.
    pub fn finish(self) -> W {
        self.writer
    }
}

impl<W: LeaseWriter> fmt::Debug for Committer<W> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Committer")
            .field("shard", &self.index)
            .field("unsynced", &self.to_sync.len())
            .finish_non_exhaustive()
    }
}

/// One batch's records on their way to the log; [`Batch::submit`] writes them and hands the
/// batch's ACKs to the sync thread.
pub struct Batch<'c, W: LeaseWriter> {
    c: &'c mut Committer<W>,
    acks: AckBatch,
}

impl<W: LeaseWriter> Batch<'_, W> {
    /// Appends one lease record to the log.
    #[inline]
    pub fn append(&mut self, key: &ClientKey, lease: &Lease) {
        self.c.writer.append(key, lease);
        self.acks.records += 1;
    }

    /// Tells `tx` when the batch's records are durable, or that they will not be.
    pub fn when_durable(&mut self, tx: Durable) {
        self.acks.durable.push(tx);
    }

    /// Writes the batch's records, then queues `acks` (copied) for the sync thread, which sends
    /// them once a sync covering the write has returned. If the write fails, no ACK leaves:
    /// each counts as [`Drop::PersistFailed`]. Blocks while [`MAX_UNSYNCED_BATCHES`] batches
    /// wait for the disk.
    pub fn submit<'a>(self, acks: impl ExactSizeIterator<Item = (&'a [u8], Destination, Via)>) {
        let Batch { c, acks: mut batch } = self;
        match c.writer.write() {
            Ok(()) => {
                for (data, dest, via) in acks {
                    let start = batch.data.len();
                    batch.data.extend_from_slice(data);
                    batch.replies.push((start..batch.data.len(), dest, via));
                }
                // Fails only once the sync thread is gone, which it is not before `finish`.
                let _ = c.to_sync.send(ToSync::Batch(batch));
            }
            Err(e) => {
                // Nothing acknowledged may be lost: without a durable record, no ACK.
                c.stats.durability.lose(&e);
                let withheld = acks.len();
                if let Some(held) = c.errors.allow() {
                    tracing::error!(shard = c.index, error = %e, withheld, suppressed = held, "lease log write failed; ACKs withheld");
                }
                (0..withheld).for_each(|_| c.counters.dropped(Drop::PersistFailed));
                for tx in batch.durable.drain(..) {
                    tx.fire(Err(format!("lease log write failed: {e}")));
                }
            }
        }
    }
}

impl<W: LeaseWriter> fmt::Debug for Batch<'_, W> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Batch")
            .field("records", &self.acks.records)
            .finish_non_exhaustive()
    }
}

/// The sync thread's half of the pipeline.
pub struct SyncLoop<S, K> {
    index: u32,
    syncer: S,
    sink: K,
    unsynced: Receiver<ToSync<S>>,
    recycle: Sender<AckBatch>,
    counters: Arc<Counters>,
    timings: Arc<CommitStats>,
}

impl<S: LeaseSync, K: AckSink> SyncLoop<S, K> {
    /// Takes every batch written so far, one sync for all of them, then their ACKs; again until
    /// the [`Committer`] is finished (or dropped) and the queue is empty. A recovered log's
    /// syncer takes over once the batches queued before it are done with.
    pub fn run(mut self) {
        let mut group: Vec<AckBatch> = Vec::with_capacity(MAX_UNSYNCED_BATCHES);
        let mut errors = RateLimit::per_sec(5);
        while let Ok(first) = self.unsynced.recv() {
            let mut next_syncer = None;
            match first {
                ToSync::Batch(b) => group.push(b),
                ToSync::Syncer(s) => {
                    self.syncer = s;
                    continue;
                }
            }
            for m in self.unsynced.try_iter() {
                match m {
                    ToSync::Batch(b) => group.push(b),
                    ToSync::Syncer(s) => {
                        next_syncer = Some(s);
                        break;
                    }
                }
            }
            // Every batch in `group` was written before it was queued, so before this sync began.
            let began = Instant::now();
            let synced = self.syncer.sync();
            self.timings.fsync.observe(began.elapsed());
            match synced {
                Ok(()) => {
                    for mut b in group.drain(..) {
                        for tx in b.durable.drain(..) {
                            tx.fire(Ok(()));
                        }
                        self.counters.committed(b.records);
                        // Durable replies are ACKs, counted as sent here, where they are handed
                        // to the I/O path, not where the engine decided them.
                        self.counters
                            .sent_n(MessageType::Ack, b.replies.len() as u64);
                        if let Some(at) = b.received {
                            let acks = b.replies.len() as u64;
                            self.timings.ack_latency.observe_n(at.elapsed(), acks);
                        }
                        if let Some(b) = self.sink.deliver(b, &self.counters) {
                            recycle(b, &self.recycle);
                        }
                    }
                }
                Err(e) => {
                    self.timings.durability.lose(&e);
                    let withheld: usize = group.iter().map(|b| b.replies.len()).sum();
                    if let Some(held) = errors.allow() {
                        tracing::error!(shard = self.index, error = %e, withheld, suppressed = held, "lease log sync failed; ACKs withheld");
                    }
                    (0..withheld).for_each(|_| self.counters.dropped(Drop::PersistFailed));
                    for b in &mut group {
                        for tx in b.durable.drain(..) {
                            tx.fire(Err(format!("lease log sync failed: {e}")));
                        }
                    }
                }
            }
            for b in group.drain(..) {
                recycle(b, &self.recycle);
            }
            if let Some(s) = next_syncer {
                self.syncer = s;
            }
        }
    }
}

impl<S, K> fmt::Debug for SyncLoop<S, K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SyncLoop")
            .field("shard", &self.index)
            .field("unsynced", &self.unsynced.len())
            .finish_non_exhaustive()
    }
}

fn recycle(mut b: AckBatch, to: &Sender<AckBatch>) {
    b.clear();
    let _ = to.send(b);
}

#[cfg(test)]
mod tests;
