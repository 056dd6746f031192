//! One worker thread: a listen socket in the reuseport group on port 69, a shared socket for
//! ERRORs, one socket per transfer bound to a random port (its transfer ID, RFC 1350: a spoofer
//! never sees it, so a packet there proves the peer's address), and the [`Server`] holding all
//! its transfers. The loop waits on every socket at once (epoll) with the next timer as timeout
//! (capped, so shutdown is noticed quickly), drains what is ready in batches, answers read
//! requests from the file source inline, sends in batches (one sendmmsg per run of datagrams
//! from one socket: a window goes out in one call), runs the timers, and closes the sockets of
//! transfers that ended.

use std::collections::HashMap;
use std::io;
use std::net::{Ipv4Addr, SocketAddrV4};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use provd_tftp::{
    DropReason, ErrorCode, Event, Incoming, Millis, Port, Refusal, Server, TransferId, Transmit,
};

use provd_udp::{InterfaceMtus, Meta, Options, RateLimit, RecvBatch, SendBatch, UdpSocket, Wait};

/// Datagrams per recvmmsg/sendmmsg call.
const BATCH: usize = 32;
/// Receive slot: requests are at most 512 bytes and ACKs 4; a longer datagram arrives cut and
/// fails to parse, as it should.
const RECV_SLOT: usize = 2048;
use crate::source::{FileSource, OpenError, TransferRequest, UploadSink};
use crate::{IoCounters, Stats};

/// Longest sleep in a wait: bounds how long a shutdown request waits.
const POLL_CAP: Duration = Duration::from_millis(50);
/// Batches drained from one socket before the other sockets and the timers get their turn.
const BATCHES_PER_TURN: usize = 8;
/// Readiness events taken per wait.
const EVENTS: usize = 256;
/// Epoll tokens of the two fixed sockets; a transfer's socket has its port as token.
const LISTEN_TOKEN: u64 = u64::MAX;
const SHARED_TOKEN: u64 = u64::MAX - 1;

pub(crate) struct Worker {
    pub index: usize,
    pub listen: UdpSocket,
    pub transfer: UdpSocket,
    pub listen_port: u16,
    /// The address each transfer's own socket binds (port 0: the kernel picks a random one).
    pub bind: Ipv4Addr,
    /// Transfer sockets this worker may hold (its share of the descriptor limit).
    pub max_sockets: usize,
    pub server: Server,
    pub source: Arc<dyn FileSource>,
    /// `None`: every WRQ is refused.
    pub uploads: Option<Arc<dyn UploadSink>>,
    pub stats: Arc<Mutex<Stats>>,
    /// Send slot size: the largest datagram the server can emit.
    pub max_datagram: usize,
    /// Requests older than this when read are dropped unanswered.
    pub max_request_age: std::time::Duration,
}

/// An epoll instance: which of the worker's sockets are readable.
struct Epoll {
    fd: OwnedFd,
    events: Vec<libc::epoll_event>,
}

impl Epoll {
    fn new() -> io::Result<Self> {
        // SAFETY: plain syscall; the result is checked before use.
        let fd = unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(Epoll {
            // SAFETY: `fd` was just returned by epoll_create1 and is owned by nothing else.
            fd: unsafe { OwnedFd::from_raw_fd(fd) },
            events: vec![libc::epoll_event { events: 0, u64: 0 }; EVENTS],
        })
    }

    /// Watches `fd` for readability; closing `fd` stops the watch.
    fn add(&self, fd: RawFd, token: u64) -> io::Result<()> {
        let mut ev = libc::epoll_event {
            events: libc::EPOLLIN as u32,
            u64: token,
        };
        // SAFETY: both descriptors are open; `ev` is a live epoll_event the kernel only reads.
        let r = unsafe { libc::epoll_ctl(self.fd.as_raw_fd(), libc::EPOLL_CTL_ADD, fd, &mut ev) };
        if r == 0 {
            Ok(())
        } else {
            Err(io::Error::last_os_error())
        }
    }

    /// Waits up to `timeout` and returns the tokens of the readable sockets.
    fn wait(&mut self, timeout: Duration) -> io::Result<impl Iterator<Item = u64> + '_> {
        let ms = i32::try_from(timeout.as_millis()).unwrap_or(i32::MAX);
        let max = i32::try_from(self.events.len()).unwrap_or(i32::MAX);
        // SAFETY: `events` has room for `max` entries, which the kernel fills.
        let n = unsafe { libc::epoll_wait(self.fd.as_raw_fd(), self.events.as_mut_ptr(), max, ms) };
        let n = if n < 0 {
            let e = io::Error::last_os_error();
            if e.kind() != io::ErrorKind::Interrupted {
                return Err(e);
            }
            0
        } else {
            n as usize
        };
        Ok(self.events[..n].iter().map(|e| e.u64))
    }
}

/// The sending half: datagrams queue here and leave in one sendmmsg per [`BATCH`], or sooner
/// when the next datagram leaves from another socket.
struct Outbox {
    /// The shared socket (port 0 in [`Transmit::port`]).
    shared: UdpSocket,
    /// Each transfer's own socket, by its port.
    own: HashMap<u16, UdpSocket>,
    batch: SendBatch,
    /// The port the queued datagrams leave from.
    batch_port: u16,
    io: IoCounters,
}

impl Outbox {
    fn push(&mut self, t: Transmit<'_>) {
        if self.batch.is_full() || (t.port != self.batch_port && !self.batch.is_empty()) {
            self.flush();
        }
        self.batch_port = t.port;
        if self
            .batch
            .push_with(t.to, t.from, 0, |slot| t.copy_to(slot))
        {
            self.io.datagrams_sent += 1;
        } else {
            self.io.send_failures += 1;
        }
    }

    fn flush(&mut self) {
        if self.batch.is_empty() {
            return;
        }
        // Sockets close only after a flush, so a transfer's socket is here while it has
        // datagrams queued.
        let socket = match self.batch_port {
            0 => &self.shared,
            p => self.own.get(&p).unwrap_or(&self.shared),
        };
        let failed = socket.send_batch(&mut self.batch) as u64;
        self.io.send_failures += failed;
        self.io.datagrams_sent -= failed;
    }

    fn socket(&self, port: Port) -> Option<&UdpSocket> {
        match port {
            Port::Transfer => Some(&self.shared),
            Port::Own(p) => self.own.get(&p),
            Port::Listen => None,
        }
    }
}

impl Worker {
    pub(crate) fn run(self, shutdown: &AtomicBool) -> std::io::Result<()> {
        let Worker {
            index,
            listen,
            transfer,
            listen_port,
            bind,
            max_sockets,
            server,
            source,
            uploads,
            stats,
            max_datagram,
            max_request_age,
        } = self;
        let epoch = Instant::now();
        let clock = || Millis(u64::try_from(epoch.elapsed().as_millis()).unwrap_or(u64::MAX));
        let mut rx = RecvBatch::new(BATCH, RECV_SLOT);
        let mut epoll = Epoll::new()?;
        epoll.add(listen.fd(), LISTEN_TOKEN)?;
        epoll.add(transfer.fd(), SHARED_TOKEN)?;
        let mut turn = Turn {
            index,
            listen_port,
            listen_fd: listen.fd(),
            listen,
            bind,
            max_sockets,
            max_request_age,
            epoll_fd: epoll.fd.as_raw_fd(),
            server,
            source,
            uploads,
            pending_uploads: HashMap::new(),
            out: Outbox {
                shared: transfer,
                own: HashMap::new(),
                batch: SendBatch::new(BATCH, max_datagram),
                batch_port: 0,
                io: IoCounters::default(),
            },
            mtus: InterfaceMtus::default(),
            warnings: RateLimits::default(),
        };
        let mut ready: Vec<u64> = Vec::with_capacity(EVENTS);
        tracing::debug!(worker = index, "TFTP worker started");
        while !shutdown.load(Ordering::Relaxed) {
            provd_role::beat();
            let now = clock();
            let wait = turn.server.next_deadline().map_or(POLL_CAP, |d| {
                Duration::from_millis(d.since(now)).min(POLL_CAP)
            });
            ready.clear();
            ready.extend(epoll.wait(wait)?);
            let now = clock();
            for &token in &ready {
                let port = match token {
                    LISTEN_TOKEN => Port::Listen,
                    SHARED_TOKEN => Port::Transfer,
                    p => Port::Own(u16::try_from(p).unwrap_or(0)),
                };
                turn.drain(port, &mut rx, now);
            }
            turn.server
                .poll_timeouts(clock(), &mut |t| turn.out.push(t));
            turn.close_ended();
            turn.out.flush();
            record_ended(&mut turn.server);
            if let Ok(mut s) = stats.lock() {
                s.protocol.clone_from(turn.server.counters());
                s.io.clone_from(&turn.out.io);
                s.transfers = turn.server.transfers();
            }
        }
        tracing::debug!(worker = index, "TFTP worker stopped");
        Ok(())
    }
}

/// Each transfer that ended this turn into the duration histogram: once per transfer through
/// the metrics facade (not per packet), outside the protocol core.
fn record_ended(server: &mut Server) {
    use provd_role::metrics::{facade, names};
    for e in server.take_ended() {
        let outcome = if e.ok { "ok" } else { "failed" };
        let direction = if e.write { "write" } else { "read" };
        facade::histogram!(
            names::TFTP_TRANSFER_DURATION_SECONDS,
            "outcome" => outcome,
            "direction" => direction
        )
        .record(f64::from(e.elapsed_ms) / 1000.0);
    }
}

/// What one worker's loop works with between waits.
struct Turn {
    index: usize,
    listen_port: u16,
    listen_fd: RawFd,
    listen: UdpSocket,
    bind: Ipv4Addr,
    max_sockets: usize,
    max_request_age: std::time::Duration,
    epoll_fd: RawFd,
    server: Server,
    source: Arc<dyn FileSource>,
    uploads: Option<Arc<dyn UploadSink>>,
    /// Accepted uploads in flight, by peer (a peer has one transfer at a time): the name to
    /// store under when the last block arrives. Entries of uploads that died are replaced by
    /// the peer's next request or swept when the table outgrows the server's transfer count.
    pending_uploads: HashMap<SocketAddrV4, (TransferId, String, SocketAddrV4)>,
    out: Outbox,
    mtus: InterfaceMtus,
    warnings: RateLimits,
}

impl Turn {
    /// Handles what is queued on the socket of `port`, a few batches at most so that the other
    /// sockets and the timers get their turn under load.
    fn drain(&mut self, port: Port, rx: &mut RecvBatch, now: Millis) {
        for _ in 0..BATCHES_PER_TURN {
            let socket = match port {
                Port::Listen => Some(&self.listen),
                p => self.out.socket(p),
            };
            // A transfer that ended earlier in this turn closed its socket already.
            let Some(socket) = socket else { return };
            let n = match socket.recv_batch(rx, Wait::No) {
                Ok(n) => n,
                Err(e) => {
                    self.out.io.receive_errors += 1;
                    tracing::trace!(worker = self.index, error = %e, "receive error");
                    return;
                }
            };
            self.out.io.datagrams_received += n as u64;
            let wall = std::time::SystemTime::now();
            for i in 0..n {
                let (bytes, meta) = rx.get(i);
                if port == Port::Listen
                    && meta.waited(wall).is_some_and(|w| w > self.max_request_age)
                {
                    self.out.io.stale_requests += 1;
                    continue;
                }
                self.datagram(port, bytes, meta, now);
            }
            if n < BATCH {
                return;
            }
        }
    }

    fn datagram(&mut self, port: Port, bytes: &[u8], meta: Meta, now: Millis) {
        let incoming = Incoming {
            port,
            local: meta.local,
            peer: meta.src,
            // Only requests negotiate a block size.
            path_mtu: match port {
                Port::Listen => self.mtus.get(self.listen_fd, meta.ifindex),
                Port::Transfer | Port::Own(_) => None,
            },
            bytes,
        };
        match self.server.handle(now, incoming, &mut |t| self.out.push(t)) {
            Some(Event::Read(req)) => {
                let request = TransferRequest {
                    filename: req.filename,
                    peer: req.peer,
                    local: SocketAddrV4::new(req.local, self.listen_port),
                };
                let answer = open(&*self.source, &request, self.index, &mut self.warnings)
                    .and_then(|content| {
                        // A file that fits in the first DATA can do without a port of its own.
                        let one_block = content.len() < usize::from(provd_tftp::DEFAULT_BLKSIZE);
                        self.own_port(req.id, now, one_block).map(|()| content)
                    });
                self.server
                    .respond(req.id, answer, now, &mut |t| self.out.push(t));
            }
            Some(Event::Write(req)) => {
                let request = TransferRequest {
                    filename: req.filename,
                    peer: req.peer,
                    local: SocketAddrV4::new(req.local, self.listen_port),
                };
                let answer = match &self.uploads {
                    None => Err(Refusal::access_violation("Writes are not accepted")),
                    Some(sink) => sink.accept(&request),
                }
                .and_then(|()| self.own_port(req.id, now, false));
                if answer.is_ok() {
                    if self.pending_uploads.len() > self.server.transfers() + 1024 {
                        // Uploads that timed out never complete: forget the oldest entries.
                        self.pending_uploads.clear();
                    }
                    self.pending_uploads
                        .insert(req.peer, (req.id, req.filename.to_owned(), request.local));
                }
                self.server
                    .respond_write(req.id, answer, now, &mut |t| self.out.push(t));
            }
            Some(Event::WriteComplete { id, data }) => {
                let Some((pending, name, local)) = self.pending_uploads.remove(&id.peer) else {
                    return;
                };
                if pending != id {
                    return;
                }
                if let Some(sink) = &self.uploads {
                    let request = TransferRequest {
                        filename: &name,
                        peer: id.peer,
                        local,
                    };
                    match sink.store(&request, &data) {
                        Ok(()) => {
                            tracing::info!(worker = self.index, peer = %id.peer, file = %name, bytes = data.len(), "TFTP upload stored")
                        }
                        Err(e) => {
                            tracing::error!(worker = self.index, peer = %id.peer, file = %name, error = %e, "TFTP upload not stored")
                        }
                    }
                }
            }
            Some(Event::Dropped { peer, port, reason }) => {
                self.warnings.dropped(self.index, peer, port, reason);
            }
            Some(_) | None => {}
        }
    }

    /// Sends what is queued, then closes the sockets of transfers that left the table.
    fn close_ended(&mut self) {
        let out = &mut self.out;
        for port in self.server.take_closed_ports() {
            // What the batch holds for this socket goes first (the batch holds one port's
            // datagrams); other batches keep filling, one send for many datagrams.
            if out.batch_port == port {
                out.flush();
            }
            // Dropping the socket closes it, which also takes it out of the epoll set.
            out.own.remove(&port);
        }
    }

    /// Gives an accepted transfer its own socket on a random port (the kernel's pick from the
    /// ephemeral range): its transfer ID. Without one the transfer is refused (a predictable
    /// port is what made spoofed acknowledgements possible), unless `one_block`: a file that
    /// fits in its first DATA is served from the worker's shared transfer port instead. In a
    /// boot storm past the descriptor limit that is every modem's and MTA's config file, and a
    /// refusal would cost the device a retry seconds later; such a transfer is still held to
    /// its budget until the peer answers (the first DATA is the one send an unproven source
    /// may have).
    fn own_port(&mut self, id: TransferId, now: Millis, one_block: bool) -> Result<(), Refusal> {
        let opts = Options {
            // The system's buffer sizes: a window of 64 blocks of 1468 bytes fits.
            recv_buffer: 0,
            send_buffer: 0,
            ..Options::default()
        };
        let addr = SocketAddrV4::new(self.bind, 0);
        let bind = |epoll_fd: RawFd| {
            UdpSocket::bind(addr, &opts).and_then(|s| {
                let port = s.local_addr()?.port();
                let mut ev = libc::epoll_event {
                    events: libc::EPOLLIN as u32,
                    u64: u64::from(port),
                };
                // SAFETY: both descriptors are open; `ev` is a live epoll_event the kernel
                // only reads.
                let r = unsafe { libc::epoll_ctl(epoll_fd, libc::EPOLL_CTL_ADD, s.fd(), &mut ev) };
                if r != 0 {
                    return Err(io::Error::last_os_error());
                }
                Ok((port, s))
            })
        };
        // Sockets of transfers that ended close now (what they queued goes first), so their
        // descriptors are free for this one.
        self.close_ended();
        if self.out.own.len() >= self.max_sockets && one_block {
            // A one-block file needs no socket of its own. Evicting an unproven transfer to
            // make room would cut a device whose acknowledgement may be on its way: in a
            // storm, with the descriptors in use, that was 170,342 cut transfers out of
            // 437,513 requests, each a modem's retry.
            self.out.io.shared_port_fallbacks += 1;
            return Ok(());
        }
        // At its share of descriptors, an unproven transfer (maybe spoofed) that had its chance
        // to prove itself gives way first: descriptors must remain for the files themselves.
        if self.out.own.len() >= self.max_sockets && self.server.evict_oldest_unproven(now) {
            self.close_ended();
        }
        let mut bound = if self.out.own.len() >= self.max_sockets {
            Err(io::Error::other(
                "the worker's share of descriptors is in use",
            ))
        } else {
            bind(self.epoll_fd)
        };
        if bound.is_err() && self.server.evict_oldest_unproven(now) {
            // Out of descriptors (or ports): an unproven transfer, maybe spoofed, gives way.
            self.close_ended();
            bound = bind(self.epoll_fd);
        }
        match bound {
            Ok((port, socket)) => {
                if self.server.set_port(id, port) {
                    self.out.own.insert(port, socket);
                }
                Ok(())
            }
            Err(_) if one_block => {
                self.out.io.shared_port_fallbacks += 1;
                Ok(())
            }
            Err(e) => {
                self.out.io.transfer_socket_failures += 1;
                self.warnings.no_port(self.index, &e);
                Err(Refusal::new(ErrorCode::DISK_FULL, "No transfer port"))
            }
        }
    }
}

/// Asks the source; "not mine" from every source is the RFC's "File not found".
fn open(
    source: &dyn FileSource,
    req: &TransferRequest<'_>,
    worker: usize,
    warnings: &mut RateLimits,
) -> Result<provd_tftp::FileContent, Refusal> {
    match source.open(req) {
        Ok(content) => {
            tracing::debug!(worker, peer = %req.peer, file = req.filename, bytes = content.len(), "TFTP read");
            Ok(content)
        }
        Err(OpenError::NotMine) => {
            tracing::debug!(worker, peer = %req.peer, file = req.filename, "TFTP read: file not found");
            Err(Refusal::not_found())
        }
        Err(OpenError::Refused(r)) => {
            // An access violation is a device asking for what is not its own, or a path trick.
            if r.code == ErrorCode::ACCESS_VIOLATION {
                warnings.refused(worker, req, &r);
            } else {
                tracing::debug!(worker, peer = %req.peer, file = req.filename, refusal = %r, "TFTP read refused");
            }
            Err(r)
        }
    }
}

#[derive(Debug)]
struct RateLimits {
    dropped: [RateLimit; DropReason::KINDS],
    refused: RateLimit,
    no_port: RateLimit,
}

impl Default for RateLimits {
    fn default() -> Self {
        RateLimits {
            dropped: std::array::from_fn(|_| RateLimit::default()),
            refused: RateLimit::default(),
            no_port: RateLimit::default(),
        }
    }
}

impl RateLimits {
    fn dropped(&mut self, worker: usize, peer: SocketAddrV4, port: Port, reason: DropReason) {
        let Some(suppressed) = self.dropped[reason.index()].allow() else {
            return;
        };
        let port = match port {
            Port::Listen => "listen",
            Port::Transfer => "transfer",
            Port::Own(_) => "own",
        };
        match reason {
            // Bad packets say something about a client or the network.
            DropReason::Malformed(e) => tracing::warn!(
                worker, %peer, port, reason = reason.label(), error = %e, suppressed,
                "dropped a malformed TFTP packet"
            ),
            DropReason::OversizedData => tracing::warn!(
                worker, %peer, port, reason = reason.label(), suppressed,
                "dropped an oversized TFTP DATA"
            ),
            // Late packets of finished or abandoned transfers are routine.
            _ => tracing::debug!(
                worker, %peer, port, reason = reason.label(), suppressed,
                "dropped a TFTP packet"
            ),
        }
    }

    fn no_port(&mut self, worker: usize, e: &io::Error) {
        if let Some(suppressed) = self.no_port.allow() {
            tracing::warn!(worker, error = %e, suppressed, "TFTP transfer refused: no socket for its port");
        }
    }

    fn refused(&mut self, worker: usize, req: &TransferRequest<'_>, r: &Refusal) {
        if let Some(suppressed) = self.refused.allow() {
            tracing::warn!(
                worker, peer = %req.peer, file = req.filename, refusal = %r, suppressed,
                "TFTP read refused"
            );
        }
    }
}
