//! One timeline per device: what each role saw it do, persisted in the store.
//!
//! Roles report [`Happening`]s from their own threads (DHCP workers among them) through a
//! bounded queue: reporting never blocks and never allocates JSON on a worker; what does not
//! fit is counted and dropped (a storm must not grow memory or slow a worker; the counters say
//! how much was lost). One writer thread turns them into [`NewEvent`]s and appends them to the
//! store in batches, and trims the timelines to the configured age and count.

use std::net::{Ipv4Addr, SocketAddrV4};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, RecvTimeoutError, Sender, TrySendError};
use provd_lease::{Binding, Lease, LeaseObserver, LeaseState};
use provd_store::{Mac, NewEvent, Source, Store};
use serde_json::json;
use sha2::Digest;

/// Queue bound: at ~200 bytes an entry, about 13 MB at most.
const QUEUE: usize = 65_536;
/// At most this many events per store transaction.
const BATCH: usize = 2_000;
/// How long the writer waits for more events before it commits what it has.
const GATHER: Duration = Duration::from_millis(100);
/// How often the timelines are trimmed.
const TRIM_EVERY: Duration = Duration::from_secs(600);
/// The writer's nice value: in a boot storm the history of what devices did waits for the
/// threads serving them (a tenth of their weight each), and catches up after; its bounded queue
/// drops and counts what does not fit meanwhile.
const WRITER_NICE: libc::c_int = 10;

/// Something a device did, as a role reports it (cheap to make on any thread).
#[derive(Debug)]
pub enum Happening {
    /// A DHCP ACK.
    Bound { binding: Binding, at_ms: i64 },
    /// A lease ended by RELEASE or DECLINE (or expiry), as the worker logged it.
    Ended { lease: Lease, at_ms: i64 },
    /// A file served to the device (TFTP or HTTP): hashed on the writer thread.
    Served {
        source: Source,
        mac: [u8; 6],
        file: String,
        bytes: Arc<[u8]>,
        peer: SocketAddrV4,
        at_ms: i64,
    },
    /// Anything else, already shaped.
    Event(NewEvent),
    /// A role's durable record (e.g. an MTA's provisioning record) to keep in the store's
    /// documents, replacing the previous one: written by the same thread, in order.
    Document {
        collection: &'static str,
        id: String,
        /// JSON text (parsed on the writer thread).
        body: String,
    },
}

/// Where roles report; cheap to clone.
#[derive(Debug, Clone)]
pub struct Timeline {
    tx: Sender<Happening>,
    stats: Arc<TimelineStats>,
}

/// What the timeline did.
#[derive(Debug, Default)]
pub struct TimelineStats {
    pub queued: AtomicU64,
    /// Not queued: the queue was full.
    pub dropped: AtomicU64,
    pub written: AtomicU64,
    /// Lost to store errors.
    pub write_failed: AtomicU64,
    pub trimmed: AtomicU64,
}

/// How long and how much of each timeline to keep.
#[derive(Debug, Clone, Copy)]
pub struct Retention {
    pub days: u32,
    pub per_device: u32,
}

impl Timeline {
    /// A timeline writing to `store` from its own thread until `shutdown`; what was queued when
    /// it is set is still written.
    pub fn start(
        store: Arc<dyn Store>,
        retention: Retention,
        shutdown: Arc<AtomicBool>,
    ) -> std::io::Result<(Timeline, std::thread::JoinHandle<()>)> {
        let (tx, rx) = crossbeam_channel::bounded(QUEUE);
        let stats = Arc::new(TimelineStats::default());
        let writer = Writer {
            store,
            rx,
            stats: Arc::clone(&stats),
            retention,
        };
        let handle = std::thread::Builder::new()
            .name("provd-timeline".into())
            .spawn(move || writer.run(&shutdown))?;
        Ok((Timeline { tx, stats }, handle))
    }

    /// Reports `h`; never blocks.
    pub fn report(&self, h: Happening) {
        match self.tx.try_send(h) {
            Ok(()) => {
                self.stats.queued.fetch_add(1, Ordering::Relaxed);
            }
            Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) => {
                self.stats.dropped.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    /// Reports an event shaped by the caller.
    pub fn event(&self, mac: [u8; 6], source: Source, kind: &str, detail: serde_json::Value) {
        self.report(Happening::Event(NewEvent {
            mac: Mac(mac),
            at: now_ms(),
            source,
            kind: kind.to_string(),
            detail,
        }));
    }

    pub fn stats(&self) -> &Arc<TimelineStats> {
        &self.stats
    }
}

/// DHCP workers report their ACKs and ended leases here.
impl LeaseObserver for Timeline {
    fn record(&self, lease: &Lease) {
        if matches!(lease.state, LeaseState::Released | LeaseState::Expired) {
            self.report(Happening::Ended {
                lease: *lease,
                at_ms: now_ms(),
            });
        }
    }

    fn bind(&self, binding: Binding) {
        self.report(Happening::Bound {
            binding,
            at_ms: now_ms(),
        });
    }
}

struct Writer {
    store: Arc<dyn Store>,
    rx: Receiver<Happening>,
    stats: Arc<TimelineStats>,
    retention: Retention,
}

/// Gives the calling thread [`WRITER_NICE`]; best effort (the writer works the same without).
fn lower_priority() {
    // SAFETY: gettid and setpriority on the calling thread; no memory is passed.
    let r = unsafe {
        let tid = libc::gettid();
        libc::setpriority(libc::PRIO_PROCESS, tid as libc::id_t, WRITER_NICE)
    };
    if r != 0 {
        tracing::debug!(
            error = %std::io::Error::last_os_error(),
            "the timeline writer keeps its priority"
        );
    }
}

impl Writer {
    fn run(self, shutdown: &AtomicBool) {
        lower_priority();
        let mut batch = Vec::with_capacity(BATCH);
        let mut last_trim = Instant::now();
        loop {
            match self.rx.recv_timeout(Duration::from_millis(100)) {
                Ok(h) => {
                    self.take(h, &mut batch);
                    // What else comes within GATHER goes into the same transaction: a commit
                    // (WAL frames of the same index pages, an fsync) costs more than the rows.
                    let until = Instant::now() + GATHER;
                    while batch.len() < BATCH {
                        match self.rx.recv_deadline(until) {
                            Ok(h) => self.take(h, &mut batch),
                            Err(_) => break,
                        }
                    }
                    self.write(&mut batch);
                }
                Err(RecvTimeoutError::Timeout) => {
                    if shutdown.load(Ordering::Relaxed) {
                        return;
                    }
                }
                Err(RecvTimeoutError::Disconnected) => return,
            }
            if last_trim.elapsed() >= TRIM_EVERY {
                last_trim = Instant::now();
                self.trim();
            }
        }
    }

    /// Events go into the batch; documents are saved at once, after the events before them.
    fn take(&self, h: Happening, batch: &mut Vec<NewEvent>) {
        match h {
            Happening::Document {
                collection,
                id,
                body,
            } => {
                self.write(batch);
                let body = serde_json::from_str(&body).unwrap_or(serde_json::Value::String(body));
                if let Err(e) = self.store.put_document(
                    collection,
                    &id,
                    &body,
                    provd_store::Expect::Any,
                    &provd_store::Actor::System,
                ) {
                    self.stats.write_failed.fetch_add(1, Ordering::Relaxed);
                    tracing::warn!(collection, id, error = %e, "record not stored");
                }
            }
            h => batch.extend(shape(h)),
        }
    }

    fn write(&self, batch: &mut Vec<NewEvent>) {
        if batch.is_empty() {
            return;
        }
        let n = batch.len() as u64;
        match self.store.append_events(batch) {
            Ok(()) => {
                self.stats.written.fetch_add(n, Ordering::Relaxed);
            }
            Err(e) => {
                self.stats.write_failed.fetch_add(n, Ordering::Relaxed);
                tracing::warn!(error = %e, events = n, "timeline events not stored");
            }
        }
        batch.clear();
    }

    fn trim(&self) {
        let cutoff = now_ms() - i64::from(self.retention.days) * 86_400_000;
        match self.store.trim_events(cutoff, self.retention.per_device) {
            Ok(n) => {
                self.stats.trimmed.fetch_add(n, Ordering::Relaxed);
            }
            Err(e) => tracing::warn!(error = %e, "timeline trim failed"),
        }
    }
}

fn ip_or_null(a: Ipv4Addr) -> serde_json::Value {
    if a.is_unspecified() {
        serde_json::Value::Null
    } else {
        json!(a.to_string())
    }
}

/// A happening as the store keeps it (documents are not events).
fn shape(h: Happening) -> Option<NewEvent> {
    Some(match h {
        Happening::Bound { binding: b, at_ms } => NewEvent {
            mac: Mac(b.mac),
            at: at_ms,
            source: Source::Dhcp,
            // A DISCOVER's or INIT-REBOOT's ACK starts the device; the rest renew.
            kind: if b.restart { "ack" } else { "renew" }.into(),
            detail: json!({
                "address": b.addr.to_string(),
                "relay": ip_or_null(b.giaddr),
                "expires_at": b.expires_at,
                "vendor_class": b.vendor_class.as_deref().map(|v| String::from_utf8_lossy(v).into_owned()),
                "class": b.class,
            }),
        },
        Happening::Ended { lease, at_ms } => NewEvent {
            mac: Mac(lease.chaddr),
            at: at_ms,
            source: Source::Dhcp,
            kind: match lease.state {
                LeaseState::Released => "release",
                _ => "expire",
            }
            .into(),
            detail: json!({ "address": lease.addr.to_string() }),
        },
        Happening::Served {
            source,
            mac,
            file,
            bytes,
            peer,
            at_ms,
        } => NewEvent {
            mac: Mac(mac),
            at: at_ms,
            source,
            kind: "file-served".into(),
            detail: json!({
                "file": file,
                "bytes": bytes.len(),
                "sha256": hex(&sha2::Sha256::digest(&bytes[..])),
                "peer": peer.to_string(),
            }),
        },
        Happening::Event(e) => e,
        Happening::Document { .. } => return None,
    })
}

/// Lower-case hex without separators: how the timeline and the API show bytes (a file's hash,
/// option 82's sub-options).
pub fn hex(b: &[u8]) -> String {
    use std::fmt::Write;
    let mut s = String::with_capacity(b.len() * 2);
    for x in b {
        let _ = write!(s, "{x:02x}");
    }
    s
}

/// Unix milliseconds as the store keeps them.
pub fn now_ms() -> i64 {
    i64::try_from(provd_role::clock::unix_millis()).unwrap_or(i64::MAX)
}
