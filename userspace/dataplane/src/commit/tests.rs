//! The pipeline with faults injected: the real lease log underneath, a writer that can fail, a
//! sync that can fail or be held until the test lets it go, and a sink that records when each
//! ACK left. Every step goes into one ordered event list, so "no ACK before the sync that covers
//! it returned" is checked on the order itself, not on timing.

use std::io;
use std::net::{Ipv4Addr, SocketAddrV4};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use crossbeam_channel::{Receiver, Sender};
use provd_engine::{Counters, Destination, Drop};
use provd_lease::{ClientKey, Lease, LeaseLog, LeaseState, LeaseTable, LogError, LogSyncer};

use super::*;

/// Long enough for a loaded CI machine; a test waiting this long has failed.
const PATIENCE: Duration = Duration::from_secs(10);

#[derive(Debug, Clone, PartialEq, Eq)]
enum Event {
    /// A write of the batch whose last record was for client `n` returned Ok.
    Wrote(u32),
    SyncBegan,
    SyncReturned {
        ok: bool,
    },
    /// An ACK reached the sink.
    Sent(String),
    /// The log was started afresh from the table.
    Recovered,
}

type Events = Arc<Mutex<Vec<Event>>>;

fn push(events: &Events, e: Event) {
    events.lock().unwrap().push(e);
}

fn injected(op: &'static str) -> LogError {
    LogError::Io {
        op,
        path: "injected".into(),
        source: io::Error::other(format!("injected {op} failure")),
    }
}

/// The real log, with the next `fail_writes` writes failing.
struct Writer {
    log: LeaseLog,
    last: u32,
    fail_writes: usize,
    events: Events,
}

impl LeaseWriter for Writer {
    type Sync = HeldSync;
    fn append(&mut self, key: &ClientKey, lease: &Lease) {
        self.log.append(key, lease);
        self.last = u32::from_be_bytes(lease.addr.octets());
    }
    fn write(&mut self) -> Result<(), LogError> {
        if self.fail_writes > 0 {
            self.fail_writes -= 1;
            return Err(injected("write"));
        }
        self.log.write()?;
        push(&self.events, Event::Wrote(self.last));
        Ok(())
    }
    fn recover(&mut self, table: &LeaseTable) -> Result<HeldSync, LogError> {
        self.log.recover(table)?;
        push(&self.events, Event::Recovered);
        Ok(HeldSync {
            inner: self.log.syncer()?,
            hold: None,
            fail_syncs: 0,
            events: Arc::clone(&self.events),
        })
    }
}

/// The real syncer; each sync first waits for the test's permit when held, and the first
/// `fail_syncs` fail.
struct HeldSync {
    inner: LogSyncer,
    hold: Option<(Sender<()>, Receiver<()>)>,
    fail_syncs: usize,
    events: Events,
}

impl LeaseSync for HeldSync {
    fn sync(&mut self) -> Result<(), LogError> {
        push(&self.events, Event::SyncBegan);
        if let Some((entered, permit)) = &self.hold {
            entered.send(()).unwrap();
            permit
                .recv_timeout(PATIENCE)
                .expect("the test never released the sync");
        }
        let r = if self.fail_syncs > 0 {
            self.fail_syncs -= 1;
            Err(injected("sync"))
        } else {
            self.inner.sync()
        };
        push(&self.events, Event::SyncReturned { ok: r.is_ok() });
        r
    }
}

/// Records every ACK it is handed, in order.
struct Sink {
    events: Events,
}

impl AckSink for Sink {
    fn deliver(&mut self, batch: AckBatch, _: &Counters) -> Option<AckBatch> {
        for (data, _, _) in batch.replies() {
            push(
                &self.events,
                Event::Sent(String::from_utf8_lossy(data).into()),
            );
        }
        Some(batch)
    }
}

struct Harness {
    dir: tempfile::TempDir,
    committer: Committer<Writer>,
    sync_thread: JoinHandle<()>,
    events: Events,
    counters: Arc<Counters>,
    timings: Arc<CommitStats>,
    /// With a held sync: one message each time a sync begins, and the permits that let it go.
    entered: Receiver<()>,
    permit: Sender<()>,
}

fn start(hold: bool, fail_writes: usize, fail_syncs: usize) -> Harness {
    let dir = tempfile::tempdir().unwrap();
    let log = LeaseLog::open(dir.path(), 0, 1).unwrap();
    let events = Events::default();
    let counters = Arc::new(Counters::default());
    let timings = Arc::new(CommitStats::default());
    let (entered_tx, entered) = crossbeam_channel::unbounded();
    let (permit, permit_rx) = crossbeam_channel::unbounded();
    let sync = HeldSync {
        inner: log.syncer().unwrap(),
        hold: hold.then_some((entered_tx, permit_rx)),
        fail_syncs,
        events: Arc::clone(&events),
    };
    let writer = Writer {
        log,
        last: 0,
        fail_writes,
        events: Arc::clone(&events),
    };
    let sink = Sink {
        events: Arc::clone(&events),
    };
    let (committer, sync_loop) = pipeline(
        0,
        writer,
        sync,
        sink,
        BatchPool::new(),
        Arc::clone(&counters),
        Arc::clone(&timings),
    );
    Harness {
        dir,
        committer,
        sync_thread: std::thread::spawn(move || sync_loop.run()),
        events,
        counters,
        timings,
        entered,
        permit,
    }
}

fn key(n: u32) -> ClientKey {
    ClientKey::from_hw(1, &mac(n))
}

fn mac(n: u32) -> [u8; 6] {
    let b = n.to_be_bytes();
    [0x02, 0, b[0], b[1], b[2], b[3]]
}

fn lease(n: u32) -> Lease {
    Lease {
        addr: Ipv4Addr::from(n),
        expires_at: 2_000_000_000,
        state: LeaseState::Bound,
        chaddr: mac(n),
        pool: 0,
    }
}

fn ack(n: u32, i: usize) -> String {
    format!("ack {n}.{i}")
}

impl Harness {
    /// One batch: the lease record of client `n` and `acks` ACKs for it.
    fn submit(&mut self, n: u32, acks: usize) {
        let bodies: Vec<String> = (0..acks).map(|i| ack(n, i)).collect();
        let dest = Destination::Client(SocketAddrV4::new(Ipv4Addr::from(n), 68));
        let mut batch = self.committer.begin();
        batch.append(&key(n), &lease(n));
        batch.submit(bodies.iter().map(|b| (b.as_bytes(), dest, Via::Kernel)));
    }

    fn wait_for_sync(&self) {
        self.entered
            .recv_timeout(PATIENCE)
            .expect("no sync began for the queued batch");
    }

    fn release_sync(&self) {
        self.permit.send(()).unwrap();
    }

    fn sent(&self) -> Vec<String> {
        sent(&self.events.lock().unwrap())
    }

    /// Finishes the committer and joins the sync thread; returns every event.
    fn stop(self) -> (Vec<Event>, Arc<Counters>, tempfile::TempDir) {
        drop(self.committer.finish());
        self.sync_thread.join().expect("sync thread panicked");
        let events = self.events.lock().unwrap().clone();
        (events, self.counters, self.dir)
    }
}

fn sent(events: &[Event]) -> Vec<String> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::Sent(s) => Some(s.clone()),
            _ => None,
        })
        .collect()
}

/// Every ACK of client `n` left after a sync that began after `n`'s record was written and that
/// returned Ok before the ACK left.
fn assert_each_ack_after_its_sync(events: &[Event]) {
    for (at, e) in events.iter().enumerate() {
        let Event::Sent(body) = e else { continue };
        let n: u32 = body
            .strip_prefix("ack ")
            .and_then(|s| s.split('.').next())
            .and_then(|s| s.parse().ok())
            .unwrap();
        let wrote = events
            .iter()
            .position(|e| *e == Event::Wrote(n))
            .unwrap_or_else(|| panic!("{body} sent, but its record was never written"));
        let covered = events.iter().enumerate().any(|(began, e)| {
            *e == Event::SyncBegan
                && began > wrote
                && events[began..at]
                    .iter()
                    .find(|e| matches!(e, Event::SyncReturned { .. }))
                    == Some(&Event::SyncReturned { ok: true })
        });
        assert!(
            covered,
            "{body} left without a sync that began after its write and returned Ok: {events:?}"
        );
    }
}

fn persist_failed(c: &Counters) -> u64 {
    c.snapshot().drop_count(Drop::PersistFailed)
}

#[test]
fn no_ack_leaves_before_the_sync_that_covers_it_returned() {
    let mut h = start(true, 0, 0);
    h.submit(1, 2);
    h.wait_for_sync();
    // Written while the first sync runs: only a later sync covers these.
    h.submit(2, 1);
    h.submit(3, 1);
    std::thread::sleep(Duration::from_millis(50));
    assert_eq!(
        h.sent(),
        Vec::<String>::new(),
        "ACKs left while the sync was held"
    );

    h.release_sync();
    h.wait_for_sync();
    std::thread::sleep(Duration::from_millis(50));
    assert_eq!(h.sent(), [ack(1, 0), ack(1, 1)], "only batch 1 was covered");

    h.release_sync();
    let (events, counters, dir) = h.stop();
    assert_eq!(sent(&events), [ack(1, 0), ack(1, 1), ack(2, 0), ack(3, 0)]);
    assert_each_ack_after_its_sync(&events);
    let snap = counters.snapshot();
    assert_eq!((snap.commits, snap.leases_persisted), (3, 3));
    assert_eq!(persist_failed(&counters), 0);
    // Through the real log: every acknowledged lease replays.
    let replayed = provd_lease::replay(dir.path()).unwrap();
    assert_eq!(replayed.records.len(), 3);
}

#[test]
fn a_slow_sync_groups_the_batches_behind_it_into_one_sync() {
    let mut h = start(true, 0, 0);
    h.submit(1, 1);
    h.wait_for_sync();
    for n in 2..=6 {
        h.submit(n, 2);
    }
    h.release_sync();
    h.wait_for_sync();
    h.release_sync();
    let (events, counters, _dir) = h.stop();
    let syncs = events.iter().filter(|e| **e == Event::SyncBegan).count();
    assert_eq!(syncs, 2, "batches 2..=6 share one sync: {events:?}");
    let mut want = vec![ack(1, 0)];
    want.extend((2..=6).flat_map(|n| [ack(n, 0), ack(n, 1)]));
    assert_eq!(sent(&events), want);
    assert_each_ack_after_its_sync(&events);
    assert_eq!(counters.snapshot().leases_persisted, 6);
}

#[test]
fn a_failed_write_sends_no_ack_and_counts_each() {
    let mut h = start(false, 1, 0);
    h.submit(1, 3);
    h.submit(2, 1);
    let (events, counters, _dir) = h.stop();
    assert_eq!(sent(&events), [ack(2, 0)]);
    assert!(!events.contains(&Event::Wrote(1)));
    assert_eq!(persist_failed(&counters), 3);
    assert_eq!(counters.snapshot().commits, 1);
    assert_each_ack_after_its_sync(&events);
}

#[test]
fn a_failed_sync_sends_no_ack_and_counts_each() {
    let mut h = start(true, 0, 1);
    h.submit(1, 2);
    h.wait_for_sync();
    h.release_sync(); // this sync fails
    h.submit(2, 1);
    h.wait_for_sync();
    h.release_sync();
    let (events, counters, _dir) = h.stop();
    assert_eq!(sent(&events), [ack(2, 0)]);
    assert_eq!(persist_failed(&counters), 2);
    let snap = counters.snapshot();
    assert_eq!((snap.commits, snap.leases_persisted), (1, 1));
    assert_each_ack_after_its_sync(&events);
}

fn acks_sent(c: &Counters) -> u64 {
    c.snapshot().sent_count(provd_dhcp::MessageType::Ack)
}

/// A failed write loses durability (the worker then answers nothing); `recover` starts the log
/// afresh from the table, durability comes back, and later batches are ACKed again. Only the
/// ACKs that reached the sink count as sent.
#[test]
fn a_failed_write_loses_durability_until_recover_and_then_acks_flow_again() {
    let mut h = start(false, 1, 0);
    let stats = Arc::clone(&h.timings);
    assert!(!h.committer.durability_lost());
    h.submit(1, 2);
    assert!(h.committer.durability_lost(), "the failed write lost it");
    assert_eq!(stats.durability.failures(), 1);
    let (since, why) = stats.durability.lost_since().expect("lost");
    assert!(since > 0 && why.contains("injected write failure"), "{why}");

    // Leases 1 and 2 were decided (in the table); 1's write failed, 2 was never written.
    let mut table = LeaseTable::new();
    table.insert(key(1), lease(1));
    table.insert(key(2), lease(2));
    assert!(h.committer.recover(&table));
    assert!(!h.committer.durability_lost());
    assert_eq!(stats.durability.recoveries(), 1);
    assert_eq!(stats.durability.lost_since(), None);
    h.submit(3, 1);
    let (events, counters, dir) = h.stop();
    assert_eq!(sent(&events), [ack(3, 0)]);
    assert!(events.contains(&Event::Recovered));
    assert_each_ack_after_its_sync(&events);
    assert_eq!(
        acks_sent(&counters),
        1,
        "the two withheld ACKs were never sent"
    );
    assert_eq!(persist_failed(&counters), 2);
    // The recovered log holds the whole table and what came after.
    let replayed = provd_lease::replay(dir.path()).unwrap();
    let mut addrs: Vec<u32> = replayed
        .records
        .iter()
        .map(|r| u32::from(r.lease.addr))
        .collect();
    addrs.sort_unstable();
    assert_eq!(addrs, [1, 2, 3]);
}

/// A failed sync loses durability too, from the sync thread; a recovered log's syncer takes
/// over behind the batches queued before it.
#[test]
fn a_failed_sync_loses_durability_and_the_recovered_syncer_takes_over() {
    let mut h = start(true, 0, 1);
    let stats = Arc::clone(&h.timings);
    h.submit(1, 1);
    h.wait_for_sync();
    h.release_sync(); // fails
    let lost = (0..1000).any(|_| {
        std::thread::sleep(Duration::from_millis(5));
        stats.durability.is_lost()
    });
    assert!(lost, "a failed sync marks the shard's durability lost");
    let mut table = LeaseTable::new();
    table.insert(key(1), lease(1));
    assert!(h.committer.recover(&table));
    // The new syncer is not held: batch 2's ACK leaves without a permit.
    h.submit(2, 1);
    let (events, counters, _dir) = h.stop();
    assert_eq!(sent(&events), [ack(2, 0)]);
    assert_eq!(acks_sent(&counters), 1);
    assert!(!stats.durability.is_lost());
}

#[test]
fn timings_count_each_sync_and_each_ack_from_its_receipt() {
    let mut h = start(true, 0, 1);
    let timings = Arc::clone(&h.timings);
    h.submit(1, 2);
    h.wait_for_sync();
    h.release_sync(); // fails: its ACKs never leave, so they have no latency
    h.submit(2, 3);
    h.wait_for_sync();
    std::thread::sleep(Duration::from_millis(30));
    h.release_sync();
    let (events, _, _dir) = h.stop();
    assert_eq!(sent(&events).len(), 3);
    let fsync = timings.fsync.snapshot();
    assert_eq!(fsync.count, 2, "both syncs, the failed one too");
    assert!(fsync.sum >= 0.03, "the held sync took 30 ms: {fsync:?}");
    let acks = timings.ack_latency.snapshot();
    assert_eq!(acks.count, 3, "one observation per ACK sent: {acks:?}");
    assert!(
        acks.sum >= 3.0 * 0.03,
        "each waited for the held sync: {acks:?}"
    );
}

/// The XDP path's sink passes synced batches back to the worker (the only producer on its
/// rings) and wakes it through its eventfd; the worker recycles them, not the sync thread.
#[test]
fn the_xdp_sink_hands_synced_batches_back_to_the_worker() {
    use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
    // SAFETY: plain eventfd(2); checked below.
    let raw = unsafe { libc::eventfd(0, libc::EFD_NONBLOCK | libc::EFD_CLOEXEC) };
    assert!(raw >= 0, "{}", io::Error::last_os_error());
    // SAFETY: a fresh descriptor we own.
    let wake = Arc::new(unsafe { OwnedFd::from_raw_fd(raw) });
    let (to_worker, acks) = crossbeam_channel::unbounded();
    let mut sink = crate::IoAckSink::Worker {
        to_worker,
        wake: Arc::clone(&wake),
    };
    let mut batch = AckBatch::default();
    batch.data.extend_from_slice(b"ack");
    let dest = Destination::Client(SocketAddrV4::new(Ipv4Addr::LOCALHOST, 68));
    batch.replies.push((0..3, dest, Via::Kernel));
    assert!(sink.deliver(batch, &Counters::default()).is_none());
    let handed = acks.try_recv().expect("the batch went back to the worker");
    let replies: Vec<_> = handed
        .replies()
        .map(|(d, to, _)| (d.to_vec(), to))
        .collect();
    assert_eq!(replies, [(b"ack".to_vec(), dest)]);
    let mut woken = 0u64;
    // SAFETY: reading 8 bytes into a live u64 from our eventfd.
    let n = unsafe { libc::read(wake.as_raw_fd(), (&raw mut woken).cast(), 8) };
    assert_eq!((n, woken), (8, 1), "the worker was not woken");
}

impl Harness {
    /// One batch with client `n`'s record and no ACK, whose durability is reported on the
    /// returned channel (an operator's release).
    fn submit_waiting(&mut self, n: u32) -> Receiver<Result<(), String>> {
        let (tx, rx) = crossbeam_channel::bounded(1);
        let mut batch = self.committer.begin();
        batch.append(&key(n), &lease(n));
        batch.when_durable(Durable::new(move |r| {
            let _ = tx.send(r);
        }));
        batch.submit(std::iter::empty());
        rx
    }
}

#[test]
fn a_release_is_reported_durable_only_after_its_sync_and_never_if_it_failed() {
    let mut h = start(true, 0, 0);
    let rx = h.submit_waiting(7);
    h.wait_for_sync();
    assert!(
        rx.recv_timeout(Duration::from_millis(100)).is_err(),
        "reported before the sync returned"
    );
    h.release_sync();
    assert_eq!(rx.recv_timeout(PATIENCE), Ok(Ok(())));
    drop(h.stop());

    // A write that fails and a sync that fails: both say so, neither says durable.
    let mut h = start(false, 1, 0);
    let rx = h.submit_waiting(8);
    assert!(matches!(rx.recv_timeout(PATIENCE), Ok(Err(e)) if e.contains("write failed")));
    drop(h.stop());
    let mut h = start(false, 0, 1);
    let rx = h.submit_waiting(9);
    assert!(matches!(rx.recv_timeout(PATIENCE), Ok(Err(e)) if e.contains("sync failed")));
    drop(h.stop());
}
