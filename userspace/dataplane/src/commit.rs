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
//! The worker runs it on the real log ([`LeaseLog`], [`LogSyncer`]) and its I/O path's sink
//! ([`crate::IoAckSink`]). Everything is generic and monomorphised: no dynamic dispatch and no
//! allocation per batch beyond the recycled [`AckBatch`]es the loop always had. The unit tests
//! below inject a failed write, a failed sync and a slow sync.

use std::fmt;
use std::ops::Range;
use std::sync::Arc;
use std::time::Instant;

use crossbeam_channel::{Receiver, Sender};
use provd_engine::{Counters, Destination, Drop};
use provd_lease::{ClientKey, Lease, LeaseLog, LogError, LogSyncer};
use provd_role::metrics::AtomicHistogram;
use provd_udp::RateLimit;

use crate::Via;

/// The writing half of a shard's lease log, used by the worker thread.
pub trait LeaseWriter {
    /// Buffers one record; nothing reaches the file before [`LeaseWriter::write`].
    fn append(&mut self, key: &ClientKey, lease: &Lease);
    /// Writes everything appended since the last write, without making it durable. On Err
    /// nothing appended since the last Ok may be acknowledged.
    fn write(&mut self) -> Result<(), LogError>;
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
    #[inline]
    fn append(&mut self, key: &ClientKey, lease: &Lease) {
        LeaseLog::append(self, key, lease);
    }
    #[inline]
    fn write(&mut self) -> Result<(), LogError> {
        LeaseLog::write(self)
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

/// One shard's commit latencies: written by its sync thread once per group commit (never per
/// packet), read at scrape time. Plain atomics, not the metrics facade: see
/// [`AtomicHistogram`].
#[derive(Debug, Default)]
pub struct CommitTimings {
    /// From the receipt of a batch to its ACKs handed to the I/O path, the lease log's write
    /// and sync included; one observation per ACK.
    pub ack_latency: AtomicHistogram,
    /// Each sync of the lease log (fdatasync), failed ones included.
    pub fsync: AtomicHistogram,
}

/// Batches written to the log but not yet synced; bounded so a stalled disk stops the worker
/// (and the kernel's socket buffer takes the backlog) instead of growing memory.
pub const MAX_UNSYNCED_BATCHES: usize = 256;

/// Builds one shard's pipeline: the [`Committer`] stays with the worker, the [`SyncLoop`] goes to
/// a thread of its own (`std::thread::spawn(move || sync.run())`). `index` names the shard in
/// log lines; `counters` get the commits and the withheld ACKs, `timings` the sync and ACK
/// latencies.
pub fn pipeline<W: LeaseWriter, S: LeaseSync, K: AckSink>(
    index: u32,
    writer: W,
    syncer: S,
    sink: K,
    pool: BatchPool,
    counters: Arc<Counters>,
    timings: Arc<CommitTimings>,
) -> (Committer<W>, SyncLoop<S, K>) {
    let (to_sync, unsynced) = crossbeam_channel::bounded(MAX_UNSYNCED_BATCHES);
    let committer = Committer {
        index,
        writer,
        to_sync,
        recycled: pool.take,
        counters: Arc::clone(&counters),
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
pub struct Committer<W> {
    index: u32,
    writer: W,
    to_sync: Sender<AckBatch>,
    recycled: Receiver<AckBatch>,
    counters: Arc<Counters>,
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

    /// Queues nothing more and returns the writer. The sync thread ends once it has synced and
    /// delivered every batch queued before; join it before relying on that.
    pub fn finish(self) -> W {
        self.writer
    }
}

impl<W> fmt::Debug for Committer<W> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Committer")
            .field("shard", &self.index)
            .field("unsynced", &self.to_sync.len())
            .finish_non_exhaustive()
    }
}

/// One batch's records on their way to the log; [`Batch::submit`] writes them and hands the
/// batch's ACKs to the sync thread.
pub struct Batch<'c, W> {
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
                let _ = c.to_sync.send(batch);
            }
            Err(e) => {
                // Nothing acknowledged may be lost: without a durable record, no ACK.
                let withheld = acks.len();
                if let Some(held) = c.errors.allow() {
                    tracing::error!(shard = c.index, error = %e, withheld, suppressed = held, "lease log write failed; ACKs withheld");
                }
                (0..withheld).for_each(|_| c.counters.dropped(Drop::PersistFailed));
            }
        }
    }
}

impl<W> fmt::Debug for Batch<'_, W> {
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
    unsynced: Receiver<AckBatch>,
    recycle: Sender<AckBatch>,
    counters: Arc<Counters>,
    timings: Arc<CommitTimings>,
}

impl<S: LeaseSync, K: AckSink> SyncLoop<S, K> {
    /// Takes every batch written so far, one sync for all of them, then their ACKs; again until
    /// the [`Committer`] is finished (or dropped) and the queue is empty.
    pub fn run(mut self) {
        let mut group: Vec<AckBatch> = Vec::with_capacity(MAX_UNSYNCED_BATCHES);
        let mut errors = RateLimit::per_sec(5);
        while let Ok(first) = self.unsynced.recv() {
            group.push(first);
            group.extend(self.unsynced.try_iter());
            // Every batch in `group` was written before it was queued, so before this sync began.
            let began = Instant::now();
            let synced = self.syncer.sync();
            self.timings.fsync.observe(began.elapsed());
            match synced {
                Ok(()) => {
                    for b in group.drain(..) {
                        self.counters.committed(b.records);
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
                    let withheld: usize = group.iter().map(|b| b.replies.len()).sum();
                    if let Some(held) = errors.allow() {
                        tracing::error!(shard = self.index, error = %e, withheld, suppressed = held, "lease log sync failed; ACKs withheld");
                    }
                    (0..withheld).for_each(|_| self.counters.dropped(Drop::PersistFailed));
                }
            }
            for b in group.drain(..) {
                recycle(b, &self.recycle);
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
