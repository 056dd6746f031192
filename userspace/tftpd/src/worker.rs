//! One worker thread: a listen socket in the reuseport group on port 69, its own transfer
//! socket, and the [`Server`] holding all its transfers. The loop polls both sockets with the
//! next timer as timeout (capped, so shutdown is noticed quickly), drains them in batches,
//! answers read requests from the file source inline, sends in batches, and runs the timers.

use std::collections::HashMap;
use std::net::SocketAddrV4;
use std::os::fd::RawFd;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use provd_tftp::{
    DropReason, ErrorCode, Event, Incoming, Millis, Port, Refusal, Server, TransferId, Transmit,
};

use provd_udp::{
    InterfaceMtus, Meta, RateLimit, RecvBatch, SendBatch, UdpSocket, Wait, poll_readable,
};

/// Datagrams per recvmmsg/sendmmsg call.
const BATCH: usize = 32;
/// Receive slot: requests are at most 512 bytes and ACKs 4; a longer datagram arrives cut and
/// fails to parse, as it should.
const RECV_SLOT: usize = 2048;
use crate::source::{FileSource, OpenError, TransferRequest, UploadSink};
use crate::{IoCounters, Stats};

/// Longest sleep in poll: bounds how long a shutdown request waits.
const POLL_CAP: Duration = Duration::from_millis(50);
/// Batches drained from one socket before the other socket and the timers get their turn.
const BATCHES_PER_TURN: usize = 8;

pub(crate) struct Worker {
    pub index: usize,
    pub listen: UdpSocket,
    pub transfer: UdpSocket,
    pub listen_port: u16,
    pub server: Server,
    pub source: Arc<dyn FileSource>,
    /// `None`: every WRQ is refused.
    pub uploads: Option<Arc<dyn UploadSink>>,
    pub stats: Arc<Mutex<Stats>>,
    /// Send slot size: the largest datagram the server can emit.
    pub max_datagram: usize,
}

/// The sending half: datagrams queue here and leave in one sendmmsg per [`BATCH`].
struct Outbox<'a> {
    socket: &'a UdpSocket,
    batch: SendBatch,
    io: IoCounters,
}

impl Outbox<'_> {
    fn push(&mut self, t: Transmit<'_>) {
        if self.batch.is_full() {
            self.flush();
        }
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
        let failed = self.socket.send_batch(&mut self.batch) as u64;
        self.io.send_failures += failed;
        self.io.datagrams_sent -= failed;
    }
}

impl Worker {
    pub(crate) fn run(self, shutdown: &AtomicBool) -> std::io::Result<()> {
        let Worker {
            index,
            listen,
            transfer,
            listen_port,
            server,
            source,
            uploads,
            stats,
            max_datagram,
        } = self;
        let epoch = Instant::now();
        let clock = || Millis(u64::try_from(epoch.elapsed().as_millis()).unwrap_or(u64::MAX));
        let mut rx = RecvBatch::new(BATCH, RECV_SLOT);
        let mut turn = Turn {
            index,
            listen_port,
            listen_fd: listen.fd(),
            server,
            source,
            uploads,
            pending_uploads: HashMap::new(),
            out: Outbox {
                socket: &transfer,
                batch: SendBatch::new(BATCH, max_datagram),
                io: IoCounters::default(),
            },
            mtus: InterfaceMtus::default(),
            warnings: RateLimits::default(),
        };
        tracing::debug!(worker = index, "TFTP worker started");
        while !shutdown.load(Ordering::Relaxed) {
            provd_role::beat();
            let now = clock();
            let wait = turn.server.next_deadline().map_or(POLL_CAP, |d| {
                Duration::from_millis(d.since(now)).min(POLL_CAP)
            });
            let [listen_ready, transfer_ready] = poll_readable([listen.fd(), transfer.fd()], wait)?;
            let now = clock();
            if listen_ready {
                turn.drain(&listen, Port::Listen, &mut rx, now);
            }
            if transfer_ready {
                turn.drain(&transfer, Port::Transfer, &mut rx, now);
            }
            turn.server
                .poll_timeouts(clock(), &mut |t| turn.out.push(t));
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

/// What one worker's loop works with between polls.
struct Turn<'a> {
    index: usize,
    listen_port: u16,
    listen_fd: RawFd,
    server: Server,
    source: Arc<dyn FileSource>,
    uploads: Option<Arc<dyn UploadSink>>,
    /// Accepted uploads in flight, by peer (a peer has one transfer at a time): the name to
    /// store under when the last block arrives. Entries of uploads that died are replaced by
    /// the peer's next request or swept when the table outgrows the server's transfer count.
    pending_uploads: HashMap<SocketAddrV4, (TransferId, String, SocketAddrV4)>,
    out: Outbox<'a>,
    mtus: InterfaceMtus,
    warnings: RateLimits,
}

impl Turn<'_> {
    /// Handles what is queued on `socket`, a few batches at most so that the other socket and
    /// the timers get their turn under load.
    fn drain(&mut self, socket: &UdpSocket, port: Port, rx: &mut RecvBatch, now: Millis) {
        for _ in 0..BATCHES_PER_TURN {
            let n = match socket.recv_batch(rx, Wait::No) {
                Ok(n) => n,
                Err(e) => {
                    self.out.io.receive_errors += 1;
                    tracing::trace!(worker = self.index, error = %e, "receive error");
                    return;
                }
            };
            self.out.io.datagrams_received += n as u64;
            for i in 0..n {
                let (bytes, meta) = rx.get(i);
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
                Port::Transfer => None,
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
                let answer = open(&*self.source, &request, self.index, &mut self.warnings);
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
                };
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
}

impl Default for RateLimits {
    fn default() -> Self {
        RateLimits {
            dropped: std::array::from_fn(|_| RateLimit::default()),
            refused: RateLimit::default(),
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

    fn refused(&mut self, worker: usize, req: &TransferRequest<'_>, r: &Refusal) {
        if let Some(suppressed) = self.refused.allow() {
            tracing::warn!(
                worker, peer = %req.peer, file = req.filename, refusal = %r, suppressed,
                "TFTP read refused"
            );
        }
    }
}
