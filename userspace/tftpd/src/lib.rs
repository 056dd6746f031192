//! The TFTP server's I/O: worker threads and sockets around the sans-IO
//! [`provd_tftp::Server`], and the sources files come from.
//!
//! ```text
//!            port 69 (SO_REUSEPORT group: the kernel spreads requests by 4-tuple hash)
//!   RRQ ──►  [listen 0] [listen 1] … [listen N-1]
//!                │          │              │
//!            worker 0   worker 1   …   worker N-1      each: one provd_tftp::Server,
//!                │          │              │            FileSource::open inline
//!   DATA ◄── [own port] [own port] …               one socket per transfer, bound to a
//!   ACK  ──►  (random)   (random)                  random ephemeral port: its TID
//!   ERROR ◄── [shared p0] … [shared pN-1]           refusals and unknown TIDs
//! ```
//!
//! A transfer's ID is the client's address and port with the transfer's own port, which the
//! kernel picks at random (RFC 1350): a spoofer who never saw our first packet cannot answer
//! it, so [`provd_tftp::Server`]'s anti-amplification budget holds until the peer does. Each
//! worker waits on all its sockets with epoll; no state is shared between workers.
//! [`spawn`] starts the workers; [`TftpHandle`] reports counters and joins them after the
//! shutdown flag is set (they notice within ~50 ms). [`role::start`] is the TFTP role of
//! `provd serve` on top: pinned, generated and static files, driven as a [`provd_role::Role`].

pub mod role;
mod source;
mod worker;

use std::io;
use std::net::{Ipv4Addr, SocketAddrV4};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use provd_role::WorkerSet;
use provd_tftp::{Counters, Server, ServerConfig};
use provd_udp::{Options, UdpSocket};

pub use provd_tftp::{ErrorCode, FileContent, Refusal};
pub use role::{Generated, GeneratedCounters, MtaServed, TftpRole};
pub use source::{Chain, FileSource, OpenError, StaticRoot, TransferRequest, UploadSink};

/// Where and how the TFTP server runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TftpSettings {
    pub bind: Ipv4Addr,
    /// 69, or 0 for any free port (tests; [`TftpHandle::local_addr`] says which).
    pub port: u16,
    /// Worker threads, each with its own listen and transfer socket.
    pub workers: usize,
    pub server: ServerConfig,
    /// Transfer ports `base`, `base + 1`, … per worker (for firewalls); `None`: ephemeral.
    pub transfer_port_base: Option<u16>,
    /// Sockets for transfers' own ports per worker, at most; `None`: what the descriptor limit
    /// leaves (a lower cap is for tests of running out).
    pub max_transfer_sockets: Option<usize>,
    /// A request that waited longer in the listen queue is dropped unanswered
    /// ([`MAX_REQUEST_AGE`] unless a test says otherwise).
    pub max_request_age: std::time::Duration,
}

impl Default for TftpSettings {
    fn default() -> Self {
        TftpSettings {
            bind: Ipv4Addr::UNSPECIFIED,
            port: 69,
            workers: 2,
            server: ServerConfig::default(),
            transfer_port_base: None,
            max_transfer_sockets: None,
            max_request_age: MAX_REQUEST_AGE,
        }
    }
}

/// Socket-level counts of one worker, or their sum.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct IoCounters {
    pub datagrams_received: u64,
    pub datagrams_sent: u64,
    /// Datagrams the kernel would not take (no route, interface gone).
    pub send_failures: u64,
    /// Errors reading a socket (typically ICMP unreachable from a client that left).
    pub receive_errors: u64,
    /// Transfers refused because no socket could be bound for their own port.
    pub transfer_socket_failures: u64,
    /// Transfers of a one-block file served from the worker's shared transfer port because no
    /// socket could be bound for their own (a boot storm past the descriptor limit).
    pub shared_port_fallbacks: u64,
    /// Requests dropped unanswered because they waited in the listen socket's queue longer
    /// than [`TftpSettings::max_request_age`].
    pub stale_requests: u64,
}

/// A request that waited longer than this in the listen socket's queue is dropped unanswered
/// (issue 17): its client has sent it again or given up (a modem resends after 1 to 4 s), and
/// answering it would start a transfer nobody waits for, holding a slot until it times out,
/// while the fresh requests behind it wait longer still.
pub const MAX_REQUEST_AGE: std::time::Duration = std::time::Duration::from_secs(2);

impl IoCounters {
    fn merge(&mut self, o: &IoCounters) {
        self.datagrams_received += o.datagrams_received;
        self.datagrams_sent += o.datagrams_sent;
        self.send_failures += o.send_failures;
        self.receive_errors += o.receive_errors;
        self.transfer_socket_failures += o.transfer_socket_failures;
        self.shared_port_fallbacks += o.shared_port_fallbacks;
        self.stale_requests += o.stale_requests;
    }
}

/// What a worker publishes once per loop turn.
#[derive(Debug, Default)]
struct Stats {
    protocol: Counters,
    io: IoCounters,
    transfers: usize,
}

/// The running server: its address, counters, and the threads to join.
#[derive(Debug)]
pub struct TftpHandle {
    local: SocketAddrV4,
    transfer_ports: Vec<u16>,
    stats: Vec<Arc<Mutex<Stats>>>,
    workers: WorkerSet,
    shutdown: Arc<AtomicBool>,
}

impl TftpHandle {
    /// The listen address, with the port actually bound.
    pub fn local_addr(&self) -> SocketAddrV4 {
        self.local
    }

    /// Each worker's transfer port.
    pub fn transfer_ports(&self) -> &[u16] {
        &self.transfer_ports
    }

    /// Protocol counters summed over workers (as of each worker's last loop turn).
    pub fn counters(&self) -> Counters {
        let mut sum = Counters::default();
        for s in &self.stats {
            sum.merge(&lock(s).protocol);
        }
        sum
    }

    pub fn io_counters(&self) -> IoCounters {
        let mut sum = IoCounters::default();
        for s in &self.stats {
            sum.merge(&lock(s).io);
        }
        sum
    }

    /// Transfers in progress (or dallying) over all workers.
    pub fn transfers(&self) -> usize {
        self.stats.iter().map(|s| lock(s).transfers).sum()
    }

    /// Sets the shutdown flag the server was spawned with.
    pub fn shutdown(&self) {
        self.shutdown.store(true, Ordering::Relaxed);
    }

    /// Whether a worker has ended (before shutdown that means it failed).
    pub fn any_finished(&self) -> bool {
        self.workers.any_finished()
    }

    /// Waits for every worker to stop (after the shutdown flag is set); the first error wins.
    pub fn join(self) -> io::Result<()> {
        self.workers.join()
    }

    /// [`join`](Self::join), giving up after `grace`.
    pub fn join_within(self, grace: Duration) -> io::Result<()> {
        self.workers.join_within(grace)
    }
}

fn lock(s: &Mutex<Stats>) -> std::sync::MutexGuard<'_, Stats> {
    s.lock().unwrap_or_else(|e| e.into_inner())
}

fn invalid(msg: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, msg)
}

/// Binds every socket, then starts the workers. Errors (a port in use, a bad config) come back
/// here, before any thread runs. `source` is called on the worker threads: it must be fast or
/// cached (see [`FileSource`]). Serves reads only; see [`spawn_with_uploads`].
pub fn spawn(
    settings: TftpSettings,
    source: Arc<dyn FileSource>,
    shutdown: Arc<AtomicBool>,
) -> io::Result<TftpHandle> {
    spawn_with_uploads(settings, source, None, shutdown)
}

/// [`spawn`], with uploads (WRQ) going to `uploads` when `settings.server.allow_write` is on.
/// Both or neither: a sink without `allow_write`, or `allow_write` without a sink, is an error.
pub fn spawn_with_uploads(
    settings: TftpSettings,
    source: Arc<dyn FileSource>,
    uploads: Option<Arc<dyn UploadSink>>,
    shutdown: Arc<AtomicBool>,
) -> io::Result<TftpHandle> {
    if settings.workers == 0 {
        return Err(invalid("TFTP needs at least one worker".into()));
    }
    if settings.server.allow_write != uploads.is_some() {
        return Err(invalid(
            "uploads need both allow_write and an upload sink".into(),
        ));
    }
    settings
        .server
        .validate()
        .map_err(|e| invalid(format!("TFTP server config: {e}")))?;
    // Sockets for transfers' own ports, per worker: what the descriptor limit leaves after the
    // reserve.
    let limit = raise_fd_limit(settings.workers * settings.server.max_transfers + FD_RESERVE);
    let max_sockets = (limit.saturating_sub(FD_RESERVE) / settings.workers).max(16);
    let max_sockets = settings
        .max_transfer_sockets
        .map_or(max_sockets, |cap| cap.min(max_sockets));
    let max_datagram = usize::from(settings.server.max_blksize).max(512) + 4;
    let mut port = settings.port;
    let mut workers = Vec::with_capacity(settings.workers);
    for index in 0..settings.workers {
        let listen = UdpSocket::bind(
            SocketAddrV4::new(settings.bind, port),
            &Options {
                reuse_port: true,
                // Requests that waited past MAX_REQUEST_AGE are dropped unanswered.
                timestamps: true,
                ..Options::default()
            },
        )?;
        if port == 0 {
            // The first socket picked the port; the others join its reuseport group.
            port = listen.local_addr()?.port();
        }
        let transfer_port = match settings.transfer_port_base {
            None => 0,
            Some(base) => u16::try_from(index)
                .ok()
                .and_then(|i| base.checked_add(i))
                .filter(|p| *p != 0)
                .ok_or_else(|| {
                    invalid(format!("transfer port {base} + {index} is out of range"))
                })?,
        };
        let transfer = UdpSocket::bind(
            SocketAddrV4::new(settings.bind, transfer_port),
            &Options::default(),
        )?;
        let server = Server::new(settings.server.clone())
            .map_err(|e| invalid(format!("TFTP server config: {e}")))?;
        workers.push(worker::Worker {
            max_request_age: settings.max_request_age,
            index,
            listen,
            transfer,
            listen_port: port,
            bind: settings.bind,
            max_sockets,
            server,
            source: Arc::clone(&source),
            uploads: uploads.clone(),
            stats: Arc::default(),
            max_datagram,
        });
    }
    let local = SocketAddrV4::new(settings.bind, port);
    let mut transfer_ports = Vec::with_capacity(workers.len());
    for w in &workers {
        transfer_ports.push(w.transfer.local_addr()?.port());
    }
    let stats = workers.iter().map(|w| Arc::clone(&w.stats)).collect();
    let mut threads = WorkerSet::new("TFTP");
    for w in workers {
        let flag = Arc::clone(&shutdown);
        if let Err(e) = threads.spawn(format!("provd-tftp-{}", w.index), move || w.run(&flag)) {
            // Stop the workers already running before reporting.
            shutdown.store(true, Ordering::Relaxed);
            let _ = threads.join();
            return Err(e);
        }
    }
    tracing::info!(
        addr = %local,
        workers = settings.workers,
        transfer_ports = ?transfer_ports,
        max_blksize = settings.server.max_blksize,
        max_windowsize = settings.server.max_windowsize,
        "TFTP server listening"
    );
    Ok(TftpHandle {
        local,
        transfer_ports,
        stats,
        workers: threads,
        shutdown,
    })
}

/// Descriptors kept back from transfer sockets: files being read, the other roles, the store.
const FD_RESERVE: usize = 1024;

/// Every transfer holds a socket: the soft descriptor limit goes up to what a full table needs
/// (at most the hard limit). Returns the soft limit in force; the workers share what it leaves
/// after [`FD_RESERVE`], evict unproven transfers at their share and refuse the rest, counted
/// as `transfer_socket_failures`.
fn raise_fd_limit(want: usize) -> usize {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: `lim` is a live rlimit the kernel fills.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) } != 0 {
        return want;
    }
    let as_usize = |v: libc::rlim_t| usize::try_from(v).unwrap_or(usize::MAX);
    let want = libc::rlim_t::try_from(want).unwrap_or(libc::rlim_t::MAX);
    if lim.rlim_cur >= want {
        return as_usize(lim.rlim_cur);
    }
    let raised = libc::rlimit {
        rlim_cur: want.min(lim.rlim_max),
        rlim_max: lim.rlim_max,
    };
    // SAFETY: `raised` is a live rlimit the kernel only reads.
    if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &raised) } != 0 {
        tracing::warn!(
            want,
            soft = lim.rlim_cur,
            "could not raise the descriptor limit for TFTP transfers"
        );
        return as_usize(lim.rlim_cur);
    }
    if raised.rlim_cur < want {
        tracing::warn!(
            want,
            limit = raised.rlim_cur,
            "TFTP: fewer descriptors than transfers; past them one-block files go out from the shared transfer port, and unproven transfers give way to longer files"
        );
    }
    as_usize(raised.rlim_cur)
}
