//! The transfer table of one worker and the dispatch of every datagram to it.
//!
//! A worker owns a listen port (69) where requests arrive, a shared port for ERRORs, and gives
//! each accepted transfer a port of its own ([`Server::set_port`]; the caller binds a socket to
//! a random ephemeral port), its TID as RFC 1350 intends. Transfers are keyed by the peer's
//! address and port; a packet counts for a transfer only on the transfer's port. A packet from
//! a peer without a transfer gets ERROR 5 and changes nothing else.
//!
//! Spoofed requests (issue 18): until a packet arrives on the transfer's own port, which only a
//! receiver of our packets can know, the peer is unproven and gets at most
//! `amplification_factor` times the bytes it sent ([`crate::transfer::Budget`]); one read
//! without options per unproven source may send its first DATA regardless (there is no smaller
//! first answer), never a retransmission. Unproven transfers are freed after
//! `unproven_timeout`; when the table is full, one that had a third of that to prove itself
//! is evicted for a new request, and otherwise the new request is refused (issue 17: in a boot
//! storm every transfer starts unproven, and evicting the youngest would kill transfers whose
//! acknowledgement is on its way, for requests that would be evicted in turn). A source address
//! holds at most `max_transfers_per_source`. An address that proved itself starts proven for
//! `validated_ttl`.
//!
//! Finding the file is not decided here: a request becomes an [`Event::Read`] and the transfer
//! waits until the caller calls [`Server::respond`] (now or later, from whatever thread renders
//! files). Timers live in one ordered set holding exactly one deadline per transfer, so
//! [`Server::next_deadline`] is a lookup and [`Server::poll_timeouts`] touches only what is due.

use std::collections::{BTreeSet, HashMap, VecDeque};
use std::net::{Ipv4Addr, SocketAddrV4};

use crate::clock::Millis;
use crate::config::ServerConfig;
use crate::content::{FileContent, Refusal};
use crate::counters::{Counters, DropReason};
use crate::options::Options;
use crate::packet::{ErrorCode, Mode, Opcode, Packet, Request};
use crate::transfer::{AckOutcome, Budget, DataOutcome, Io, Limits, Reader, Transmit, Writer};

/// Unproven transfers looked at, oldest first, for one from a crowded source when the table is
/// full and none is past its grace.
const EVICT_SCAN: usize = 64;

/// Which of a worker's two sockets a datagram arrived on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Port {
    /// The well-known port (69): requests only.
    Listen,
    /// The worker's shared transfer port: ERRORs, and transfers without a port of their own.
    Transfer,
    /// A transfer's own port (see [`Server::set_port`]): its TID, random, known only to a peer
    /// that received our packets.
    Own(u16),
}

impl Port {
    /// The local port number a transfer datagram arrived on, 0 for the shared socket.
    fn tid(self) -> u16 {
        match self {
            Port::Own(p) => p,
            Port::Listen | Port::Transfer => 0,
        }
    }
}

/// One received datagram and where it came from.
#[derive(Debug, Clone, Copy)]
pub struct Incoming<'a> {
    pub port: Port,
    /// The address the datagram was sent to (IP_PKTINFO); replies leave from it, so a client
    /// that asked one of the host's addresses hears back from that address.
    pub local: Ipv4Addr,
    pub peer: SocketAddrV4,
    /// MTU toward the peer when known (e.g. the arrival interface's): caps the block size.
    pub path_mtu: Option<u32>,
    pub bytes: &'a [u8],
}

/// Names a transfer across the decision round trip. The serial tells a new transfer of the same
/// peer from the one the decision was asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct TransferId {
    pub peer: SocketAddrV4,
    serial: u32,
}

/// A request the caller must decide on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FileRequest<'a> {
    pub id: TransferId,
    pub peer: SocketAddrV4,
    /// The address the request was sent to.
    pub local: Ipv4Addr,
    pub filename: &'a str,
    pub mode: Mode,
    pub options: Options,
}

/// What a datagram asks of the caller, or tells it.
#[derive(Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Event<'a> {
    /// Answer with [`Server::respond`]: the file's bytes or an ERROR.
    Read(FileRequest<'a>),
    /// Answer with [`Server::respond_write`] (only when writes are allowed).
    Write(FileRequest<'a>),
    /// An upload finished; the file's bytes (decoded, for netascii).
    WriteComplete { id: TransferId, data: Vec<u8> },
    /// A datagram was dropped (and counted); for rate-limited logging.
    Dropped {
        peer: SocketAddrV4,
        port: Port,
        reason: DropReason,
    },
}

/// A transfer that ended after it started moving data (a refused request is not one), for
/// the shell's duration histogram; see [`Server::take_ended`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ended {
    /// True when the last block was acknowledged (read) or received (write).
    pub ok: bool,
    pub write: bool,
    /// From the request to the end.
    pub elapsed_ms: u32,
}

/// At most this many [`Ended`] wait for [`Server::take_ended`]; past it, more are not kept, so
/// a caller that never takes them costs a bounded few kilobytes.
const MAX_ENDED: usize = 1024;

/// All transfers of one worker.
#[derive(Debug)]
pub struct Server {
    limits: Limits,
    max_transfers: usize,
    allow_write: bool,
    dally_ms: u64,
    decision_ms: u64,
    transfers: HashMap<SocketAddrV4, Transfer>,
    /// Exactly one `(deadline, peer)` per transfer, in deadline order.
    timers: BTreeSet<(Millis, SocketAddrV4)>,
    /// Per source address: transfers held and first-datagram credits out, and ports to close.
    sources: Sources,
    /// Addresses that proved themselves, until when they are trusted.
    validated: HashMap<Ipv4Addr, Millis>,
    /// Unproven transfers in the order they came, oldest first (entries of transfers since
    /// proven or gone are skipped when met): the first to go when the table is full.
    unproven: VecDeque<(SocketAddrV4, u32)>,
    /// Finished transfers kept for their dally, oldest first (peer and serial, checked against
    /// the table when used): a full table frees these first, as they are done.
    dallying: VecDeque<(SocketAddrV4, u32)>,
    amplification_factor: u8,
    unproven_ms: u64,
    max_per_source: u32,
    validated_ms: u64,
    max_validated: usize,
    next_serial: u32,
    /// Outgoing OACK/ERROR packets and netascii DATA are built here.
    scratch: Box<[u8]>,
    counters: Counters,
    ended: Vec<Ended>,
}

/// A copy of a transfer's request that arrives within this long of the peer's last packet is a
/// stray network duplicate, not a new request. Clients wait at least a second (RFC 2349's
/// smallest timeout) before giving up and asking again, and a late duplicate trails its
/// original by about a round trip.
const STRAY_REQUEST_MS: u64 = 1000;

/// What the server keeps per source address, and the transfer ports released for the caller.
#[derive(Debug, Default)]
struct Sources {
    by_ip: HashMap<Ipv4Addr, PerSource>,
    closed_ports: Vec<u16>,
}

#[derive(Debug, Default, Clone, Copy)]
struct PerSource {
    transfers: u32,
    /// Unproven transfers holding the source's one first-datagram credit (0 or 1).
    credited: u32,
}

impl Sources {
    fn get(&self, ip: Ipv4Addr) -> PerSource {
        self.by_ip.get(&ip).copied().unwrap_or_default()
    }

    fn add(&mut self, ip: Ipv4Addr, credited: bool) {
        let s = self.by_ip.entry(ip).or_default();
        s.transfers += 1;
        s.credited += u32::from(credited);
    }

    fn uncredit(&mut self, ip: Ipv4Addr) {
        if let Some(s) = self.by_ip.get_mut(&ip) {
            s.credited = s.credited.saturating_sub(1);
        }
    }

    /// A transfer finished (it now only dallies): it no longer counts against its source.
    fn finished(&mut self, peer: SocketAddrV4, t: &mut Transfer) {
        if std::mem::take(&mut t.counted) {
            self.uncount(*peer.ip(), t.credited);
            t.credited = false;
        }
    }

    /// A transfer left the table: its source's counts, its port to close.
    fn release(&mut self, peer: SocketAddrV4, t: &Transfer) {
        if t.port != 0 {
            self.closed_ports.push(t.port);
        }
        if t.counted {
            self.uncount(*peer.ip(), t.credited);
        }
    }

    fn uncount(&mut self, ip: Ipv4Addr, credited: bool) {
        if let Some(s) = self.by_ip.get_mut(&ip) {
            s.transfers = s.transfers.saturating_sub(1);
            if credited {
                s.credited = s.credited.saturating_sub(1);
            }
            if s.transfers == 0 {
                self.by_ip.remove(&ip);
            }
        }
    }
}

/// The state of one peer's transfer: a few integers and a shared file reference.
#[derive(Debug)]
pub(crate) struct Transfer {
    serial: u32,
    local: Ipv4Addr,
    /// Its own local port (its TID), 0 while it has none (the shared socket).
    port: u16,
    budget: Budget,
    /// Holds its source's first-datagram credit until proven or gone.
    credited: bool,
    /// Counts against its source's `max_transfers_per_source` (until it finishes).
    counted: bool,
    /// Unproven, it is freed at this time.
    unproven_until: Millis,
    /// Fingerprint of the request that started it, to recognise a retransmitted request.
    request_hash: u32,
    /// When the peer was last heard from on this transfer (its request, ACKs, DATA): the low
    /// 32 bits of the clock, compared with wrapping arithmetic (a transfer never idles for the
    /// 49 days it takes to wrap), so the entry stays as small as before.
    heard_at: u32,
    /// When the request arrived, low 32 bits of the clock like `heard_at`.
    started_at: u32,
    deadline: Millis,
    state: State,
}

#[derive(Debug)]
enum State {
    /// Waiting for the caller's answer to the request.
    Deciding(Pending),
    Reading(Reader),
    Writing(Writer),
    /// Done; kept for the dally time so a repeated final ACK (or final DATA, re-ACKed) is
    /// absorbed quietly instead of drawing an ERROR 5.
    Dallying {
        final_ack: Option<u16>,
    },
}

#[derive(Debug, Clone, Copy)]
struct Pending {
    write: bool,
    mode: Mode,
    options: Options,
    mtu: Option<u32>,
}

impl Server {
    pub fn new(config: ServerConfig) -> Result<Self, crate::ConfigError> {
        config.validate()?;
        let ms = |d: std::time::Duration| u64::try_from(d.as_millis()).unwrap_or(u64::MAX);
        let ms32 = |d| u32::try_from(ms(d)).unwrap_or(u32::MAX);
        let scratch_len = usize::from(config.max_blksize).max(512) + 4;
        Ok(Server {
            limits: Limits {
                max_blksize: config.max_blksize,
                max_window: config.max_windowsize,
                rto: crate::rto::RtoBounds {
                    initial: ms32(config.initial_rto),
                    min: ms32(config.min_rto),
                    max: ms32(config.max_rto),
                },
                max_retries: config.max_retries,
                max_write: config.max_write_size,
            },
            max_transfers: config.max_transfers,
            allow_write: config.allow_write,
            dally_ms: ms(config.dally),
            decision_ms: ms(config.decision_timeout),
            transfers: HashMap::new(),
            timers: BTreeSet::new(),
            sources: Sources::default(),
            validated: HashMap::new(),
            unproven: VecDeque::new(),
            dallying: VecDeque::new(),
            amplification_factor: config.amplification_factor,
            unproven_ms: ms(config.unproven_timeout),
            max_per_source: u32::try_from(config.max_transfers_per_source).unwrap_or(u32::MAX),
            validated_ms: ms(config.validated_ttl),
            max_validated: config.max_validated,
            next_serial: 0,
            scratch: vec![0; scratch_len].into_boxed_slice(),
            counters: Counters::default(),
            ended: Vec::new(),
        })
    }

    pub fn counters(&self) -> &Counters {
        &self.counters
    }

    /// Transfers that ended since the last call (at most [`MAX_ENDED`] are kept between calls),
    /// for the caller to record their durations off the protocol core.
    pub fn take_ended(&mut self) -> std::vec::Drain<'_, Ended> {
        self.ended.drain(..)
    }

    /// Transfers in the table (deciding, in progress, or dallying).
    pub fn transfers(&self) -> usize {
        self.transfers.len()
    }

    /// Gives a transfer still waiting for [`Server::respond`] its own local port (a socket the
    /// caller bound to a random port): every packet of the transfer then leaves from it
    /// ([`Transmit::port`]) and only packets arriving on it ([`Port::Own`]) belong to it. A
    /// spoofer never sees the port, so a packet there proves the peer receives what we send.
    /// False (and nothing changes) if the transfer no longer waits; the caller closes the port.
    pub fn set_port(&mut self, id: TransferId, port: u16) -> bool {
        match self.transfers.get_mut(&id.peer) {
            Some(t)
                if t.serial == id.serial
                    && t.port == 0
                    && matches!(t.state, State::Deciding(_)) =>
            {
                t.port = port;
                true
            }
            _ => false,
        }
    }

    /// Ports of transfers that left the table since the last call: the caller closes them.
    pub fn take_closed_ports(&mut self) -> std::vec::Drain<'_, u16> {
        self.sources.closed_ports.drain(..)
    }

    fn is_validated(&self, ip: Ipv4Addr, now: Millis) -> bool {
        self.validated.get(&ip).is_some_and(|&until| until > now)
    }

    /// When [`Server::poll_timeouts`] next has work.
    pub fn next_deadline(&self) -> Option<Millis> {
        self.timers.first().map(|(d, _)| *d)
    }

    /// Handles one datagram; replies go to `out`, a decision to make or a drop to log comes back.
    pub fn handle<'a>(
        &mut self,
        now: Millis,
        incoming: Incoming<'a>,
        out: &mut impl FnMut(Transmit<'_>),
    ) -> Option<Event<'a>> {
        match incoming.port {
            Port::Listen => self.on_listen(now, incoming, out),
            Port::Transfer | Port::Own(_) => self.on_transfer(now, incoming, out),
        }
    }

    fn on_listen<'a>(
        &mut self,
        now: Millis,
        inc: Incoming<'a>,
        out: &mut dyn FnMut(Transmit<'_>),
    ) -> Option<Event<'a>> {
        let dropped = |reason| Event::Dropped {
            peer: inc.peer,
            port: Port::Listen,
            reason,
        };
        match Packet::parse(inc.bytes) {
            Ok(Packet::Rrq(req)) => self.on_request(now, inc, req, false, out),
            Ok(Packet::Wrq(req)) => self.on_request(now, inc, req, true, out),
            Ok(_) => {
                // Only requests belong here; answering anything else would only help a
                // reflection attack.
                self.counters.count_drop(DropReason::Unexpected);
                Some(dropped(DropReason::Unexpected))
            }
            Err(e) => {
                let reason = DropReason::Malformed(e);
                self.counters.count_drop(reason);
                if matches!(Opcode::of(inc.bytes), Some(Opcode::Rrq | Opcode::Wrq)) {
                    // A client whose request we cannot read deserves to know why.
                    let code = e.reply_code();
                    self.io(inc.peer, inc.local, out)
                        .send_error(code, code.default_message());
                }
                Some(dropped(reason))
            }
        }
    }

    fn on_request<'a>(
        &mut self,
        now: Millis,
        inc: Incoming<'a>,
        req: Request<'a>,
        write: bool,
        out: &mut dyn FnMut(Transmit<'_>),
    ) -> Option<Event<'a>> {
        if write {
            self.counters.wrq += 1;
        } else {
            self.counters.rrq += 1;
        }
        let hash = fingerprint(inc.bytes);
        if self.repeat_first_answer(now, inc, hash, out) {
            self.counters.duplicate_requests += 1;
            return None;
        }
        if self.forget(inc.peer) {
            self.counters.replaced += 1;
        }
        let mut refuse = |s: &mut Self, code: ErrorCode, message: &str| {
            s.io(inc.peer, inc.local, out).send_error(code, message);
            None
        };
        if write && !self.allow_write {
            self.counters.writes_refused += 1;
            return refuse(self, ErrorCode::ACCESS_VIOLATION, "Writes are not accepted");
        }
        let ip = *inc.peer.ip();
        let validated = self.is_validated(ip, now);
        let source = self.sources.get(ip);
        if source.transfers >= self.max_per_source {
            self.counters.too_many_from_source += 1;
            if !validated {
                // Maybe spoofed: an ERROR would only feed a reflection.
                return None;
            }
            return refuse(self, ErrorCode::DISK_FULL, "Too many transfers");
        }
        if self.transfers.len() >= self.max_transfers
            && !self.evict_dallying()
            && !self.evict_unproven(now)
        {
            self.counters.too_many_transfers += 1;
            return refuse(self, ErrorCode::DISK_FULL, "Too many transfers");
        }
        let too_big = req
            .options
            .tsize
            .is_some_and(|t| t > self.limits.max_write as u64);
        if write && too_big {
            return refuse(self, ErrorCode::DISK_FULL, "File too large");
        }
        let serial = self.next_serial;
        self.next_serial = self.next_serial.wrapping_add(1);
        let unproven_until = now.plus(self.unproven_ms);
        let (budget, credited) = if validated || self.amplification_factor == 0 {
            (Budget::proven(), false)
        } else {
            // A read without options can only be answered with its first DATA: one per
            // source at a time may go beyond the budget.
            let credit = !write && req.options.is_empty() && source.credited == 0;
            self.unproven.push_back((inc.peer, serial));
            (
                Budget::unproven(self.amplification_factor, inc.bytes.len(), credit),
                credit,
            )
        };
        self.sources.add(ip, credited);
        let mut deadline = now.plus(self.decision_ms);
        if !budget.proven {
            deadline = deadline.min(unproven_until);
        }
        self.transfers.insert(
            inc.peer,
            Transfer {
                serial,
                local: inc.local,
                port: 0,
                budget,
                credited,
                counted: true,
                unproven_until,
                request_hash: hash,
                heard_at: low_ms(now),
                started_at: low_ms(now),
                deadline,
                state: State::Deciding(Pending {
                    write,
                    mode: req.mode,
                    options: req.options,
                    mtu: inc.path_mtu,
                }),
            },
        );
        self.timers.insert((deadline, inc.peer));
        self.trim_unproven();
        let request = FileRequest {
            id: TransferId {
                peer: inc.peer,
                serial,
            },
            peer: inc.peer,
            local: inc.local,
            filename: req.filename,
            mode: req.mode,
            options: req.options,
        };
        Some(if write {
            Event::Write(request)
        } else {
            Event::Read(request)
        })
    }

    /// A repeated request while our first answer is unacknowledged means that answer was lost:
    /// send it again (or, still deciding, wait for the decision). True if handled so.
    fn repeat_first_answer(
        &mut self,
        now: Millis,
        inc: Incoming<'_>,
        hash: u32,
        out: &mut dyn FnMut(Transmit<'_>),
    ) -> bool {
        let Server {
            transfers,
            timers,
            scratch,
            counters,
            ..
        } = self;
        let Some(t) = transfers.get_mut(&inc.peer) else {
            return false;
        };
        if t.request_hash != hash {
            return false;
        }
        // A repeated request adds to what the peer sent; a credited read may send its first
        // datagram once more (one DATA per request, never more).
        t.budget.on_received(inc.bytes.len());
        if t.credited {
            t.budget.credit = true;
        }
        let mut io = Io {
            to: inc.peer,
            from: t.local,
            port: t.port,
            scratch,
            counters,
            out,
            budget: Some(&mut t.budget),
        };
        let rto = match &mut t.state {
            State::Deciding(_) => return true,
            State::Reading(r) if r.at_start() => {
                r.resend_first(now, &mut io);
                r.rto_ms()
            }
            State::Writing(w) if w.at_start() => {
                w.start(&mut io);
                io.counters.retransmits += 1;
                w.rto_ms()
            }
            // Past the start, a copy of the request while the peer is still answering is a
            // stray duplicate the network delivered late (answering it would restart a live
            // transfer the client is not restarting: it would then ACK blocks the new one
            // never sent, and both sides wait for ever). The same request from a peer gone
            // quiet is a client that gave up and asks again from the same port: a fresh start.
            _ if u64::from(low_ms(now).wrapping_sub(t.heard_at)) < STRAY_REQUEST_MS => return true,
            _ => return false,
        };
        rearm(timers, inc.peer, t, now.plus(rto));
        true
    }

    fn on_transfer<'a>(
        &mut self,
        now: Millis,
        inc: Incoming<'a>,
        out: &mut dyn FnMut(Transmit<'_>),
    ) -> Option<Event<'a>> {
        let mut proven = false;
        let event = self.on_transfer_packet(now, inc, out, &mut proven);
        if proven {
            self.on_proven(*inc.peer.ip(), now, out);
        }
        event
    }

    /// A peer proved its address: remember it, and let its other unproven transfers send what
    /// their budget held back.
    fn on_proven(&mut self, ip: Ipv4Addr, now: Millis, out: &mut dyn FnMut(Transmit<'_>)) {
        if self.validated.len() >= self.max_validated {
            self.validated.retain(|_, until| *until > now);
            if self.validated.len() >= self.max_validated {
                self.validated.clear();
            }
        }
        self.validated.insert(ip, now.plus(self.validated_ms));
        if self.sources.get(ip).transfers <= 1 {
            return;
        }
        let waiting: Vec<SocketAddrV4> = self
            .transfers
            .iter()
            .filter(|(p, t)| *p.ip() == ip && !t.budget.proven)
            .map(|(p, _)| *p)
            .collect();
        let Server {
            transfers,
            timers,
            scratch,
            counters,
            sources,
            ..
        } = self;
        for peer in waiting {
            let Some(t) = transfers.get_mut(&peer) else {
                continue;
            };
            let held = t.budget.held;
            t.budget = Budget::proven();
            if std::mem::take(&mut t.credited) {
                sources.uncredit(ip);
            }
            counters.proven += 1;
            if let (true, State::Reading(r)) = (held, &mut t.state) {
                let mut io = Io {
                    to: peer,
                    from: t.local,
                    port: t.port,
                    scratch,
                    counters,
                    out,
                    budget: None,
                };
                r.on_proven(now, &mut io);
                let d = now.plus(r.rto_ms());
                rearm(timers, peer, t, d);
            }
        }
    }

    fn on_transfer_packet<'a>(
        &mut self,
        now: Millis,
        inc: Incoming<'a>,
        out: &mut dyn FnMut(Transmit<'_>),
        proven: &mut bool,
    ) -> Option<Event<'a>> {
        let dropped = |reason| {
            Some(Event::Dropped {
                peer: inc.peer,
                port: inc.port,
                reason,
            })
        };
        let Server {
            limits,
            transfers,
            timers,
            scratch,
            counters,
            dally_ms,
            ended,
            sources,
            dallying,
            ..
        } = self;
        let Some(t) = transfers
            .get_mut(&inc.peer)
            .filter(|t| t.port == inc.port.tid())
        else {
            counters.unknown_tid += 1;
            counters.count_drop(DropReason::UnknownTransfer);
            // Never answer an ERROR (RFC 1350): two confused hosts would bounce them forever.
            // Nor what is not TFTP at all: an ERROR per stray datagram only feeds reflection.
            if Opcode::of(inc.bytes).is_some_and(|op| op != Opcode::Error) {
                let code = ErrorCode::UNKNOWN_TRANSFER_ID;
                let mut io = Io {
                    to: inc.peer,
                    from: inc.local,
                    port: inc.port.tid(),
                    scratch,
                    counters,
                    out,
                    budget: None,
                };
                io.send_error(code, code.default_message());
            }
            return dropped(DropReason::UnknownTransfer);
        };
        let packet = match Packet::parse(inc.bytes) {
            Ok(p) => {
                t.heard_at = low_ms(now);
                t.budget.on_received(inc.bytes.len());
                // Only a receiver of our packets knows the transfer's own port: the peer's
                // address is real. (A transfer without one, the caller's choice, has only the
                // shared port's secrecy, i.e. none.)
                if !t.budget.proven && !matches!(p, Packet::Error { .. }) {
                    t.budget = Budget::proven();
                    if std::mem::take(&mut t.credited) {
                        sources.uncredit(*inc.peer.ip());
                    }
                    counters.proven += 1;
                    *proven = true;
                }
                p
            }
            Err(e) => {
                // Garbage from the peer does not end its transfer; the timers recover.
                counters.count_drop(DropReason::Malformed(e));
                return dropped(DropReason::Malformed(e));
            }
        };
        let id = TransferId {
            peer: inc.peer,
            serial: t.serial,
        };
        let mut io = Io {
            to: inc.peer,
            from: t.local,
            port: t.port,
            scratch,
            counters,
            out,
            budget: Some(&mut t.budget),
        };
        match (packet, &mut t.state) {
            (Packet::Error { .. }, _) => {
                io.counters.peer_errors += 1;
                end(ended, t, now, false);
                forget(transfers, timers, sources, inc.peer);
                None
            }
            (Packet::Ack { block }, State::Reading(r)) => {
                match r.on_ack(block, now, &mut io, limits) {
                    AckOutcome::Ignored => io.counters.duplicate_acks += 1,
                    AckOutcome::Progress => {
                        let d = now.plus(r.rto_ms());
                        rearm(timers, inc.peer, t, d);
                    }
                    AckOutcome::Complete => {
                        io.counters.completed += 1;
                        end(ended, t, now, true);
                        sources.finished(inc.peer, t);
                        t.state = State::Dallying { final_ack: None };
                        dallying.push_back((inc.peer, t.serial));
                        rearm(timers, inc.peer, t, now.plus(*dally_ms));
                    }
                }
                None
            }
            (Packet::Ack { .. }, State::Dallying { .. }) => {
                io.counters.duplicate_acks += 1;
                None
            }
            (Packet::Data { block, data }, State::Writing(w)) => {
                match w.on_data(block, data, &mut io, limits) {
                    DataOutcome::Ignored => None,
                    DataOutcome::Progress => {
                        let d = now.plus(w.rto_ms());
                        rearm(timers, inc.peer, t, d);
                        None
                    }
                    DataOutcome::Complete(data) => {
                        io.counters.writes_completed += 1;
                        end(ended, t, now, true);
                        sources.finished(inc.peer, t);
                        t.state = State::Dallying {
                            final_ack: Some(block),
                        };
                        dallying.push_back((inc.peer, t.serial));
                        rearm(timers, inc.peer, t, now.plus(*dally_ms));
                        Some(Event::WriteComplete { id, data })
                    }
                    DataOutcome::TooLarge => {
                        io.send_error(ErrorCode::DISK_FULL, "File too large");
                        end(ended, t, now, false);
                        forget(transfers, timers, sources, inc.peer);
                        None
                    }
                    DataOutcome::Oversized => {
                        io.send_error(ErrorCode::ILLEGAL_OPERATION, "DATA exceeds the block size");
                        io.counters.count_drop(DropReason::OversizedData);
                        end(ended, t, now, false);
                        forget(transfers, timers, sources, inc.peer);
                        dropped(DropReason::OversizedData)
                    }
                }
            }
            (Packet::Data { block, .. }, State::Dallying { final_ack: Some(f) }) if block == *f => {
                // Our final ACK was lost: the sender repeats its last block.
                io.counters.acks_sent += 1;
                io.send(&crate::packet::ack(block), &[]);
                None
            }
            _ => {
                io.counters.count_drop(DropReason::Unexpected);
                dropped(DropReason::Unexpected)
            }
        }
    }

    /// Answers a [`Event::Read`]: the file to send, or the ERROR to refuse with. Returns false
    /// (and does nothing) if the transfer no longer waits for this answer.
    pub fn respond(
        &mut self,
        id: TransferId,
        answer: Result<FileContent, Refusal>,
        now: Millis,
        out: &mut impl FnMut(Transmit<'_>),
    ) -> bool {
        self.decide(id, false, now, out, |p, limits| {
            let content = answer?;
            Reader::new(content, p.mode, &p.options, p.mtu, limits).map(State::Reading)
        })
    }

    /// Answers a [`Event::Write`]: accept (the upload starts) or the ERROR to refuse with.
    pub fn respond_write(
        &mut self,
        id: TransferId,
        answer: Result<(), Refusal>,
        now: Millis,
        out: &mut impl FnMut(Transmit<'_>),
    ) -> bool {
        self.decide(id, true, now, out, |p, limits| {
            answer?;
            Ok(State::Writing(Writer::new(
                p.mode, &p.options, p.mtu, limits,
            )))
        })
    }

    fn decide(
        &mut self,
        id: TransferId,
        write: bool,
        now: Millis,
        out: &mut dyn FnMut(Transmit<'_>),
        start: impl FnOnce(&Pending, &Limits) -> Result<State, Refusal>,
    ) -> bool {
        let Server {
            limits,
            transfers,
            timers,
            scratch,
            counters,
            sources,
            ..
        } = self;
        let pending = match transfers.get(&id.peer).map(|t| (t.serial, &t.state)) {
            Some((serial, State::Deciding(p))) if serial == id.serial && p.write == write => *p,
            _ => {
                counters.stale_responses += 1;
                return false;
            }
        };
        let Some(t) = transfers.get_mut(&id.peer) else {
            return false;
        };
        let mut io = Io {
            to: id.peer,
            from: t.local,
            port: t.port,
            scratch,
            counters,
            out,
            budget: Some(&mut t.budget),
        };
        match start(&pending, limits) {
            Ok(mut state) => {
                let rto = match &mut state {
                    State::Reading(r) => {
                        r.start(now, &mut io);
                        r.rto_ms()
                    }
                    State::Writing(w) => {
                        w.start(&mut io);
                        w.rto_ms()
                    }
                    State::Deciding(_) | State::Dallying { .. } => 0,
                };
                t.state = state;
                rearm(timers, id.peer, t, now.plus(rto));
            }
            Err(refusal) => {
                io.counters.refused += 1;
                // A refusal leaves from the shared port, outside the budget: an ERROR is no
                // larger than the request that drew it.
                io.budget = None;
                io.port = 0;
                io.send_error(refusal.code, &refusal.message);
                forget(transfers, timers, sources, id.peer);
            }
        }
        true
    }

    /// Runs every timer due at `now`: retransmissions, give-ups, end of dally, decisions never
    /// made.
    pub fn poll_timeouts(&mut self, now: Millis, out: &mut impl FnMut(Transmit<'_>)) {
        let Server {
            limits,
            transfers,
            timers,
            scratch,
            counters,
            ended,
            sources,
            ..
        } = self;
        while let Some(&(deadline, peer)) = timers.first() {
            if deadline > now {
                break;
            }
            timers.pop_first();
            let Some(t) = transfers.get_mut(&peer) else {
                debug_assert!(false, "timer without a transfer");
                continue;
            };
            if !t.budget.proven && now >= t.unproven_until && !matches!(t.state, State::Deciding(_))
            {
                // Never proven: maybe spoofed, certainly not worth a slot any longer.
                counters.unproven_expired += 1;
                end(ended, t, now, false);
                if let Some(t) = transfers.remove(&peer) {
                    sources.release(peer, &t);
                }
                continue;
            }
            let mut io = Io {
                to: peer,
                from: t.local,
                port: t.port,
                scratch,
                counters,
                out,
                budget: Some(&mut t.budget),
            };
            let rto = match &mut t.state {
                State::Deciding(_) => {
                    io.counters.decision_timeouts += 1;
                    None
                }
                State::Reading(r) => r.on_timeout(now, &mut io, limits).then(|| r.rto_ms()),
                State::Writing(w) => w.on_timeout(&mut io, limits).then(|| w.rto_ms()),
                State::Dallying { .. } => None,
            };
            match rto {
                Some(rto) => {
                    t.deadline = clamp(t, now.plus(rto));
                    timers.insert((t.deadline, peer));
                }
                None => {
                    end(ended, t, now, false);
                    if let Some(t) = transfers.remove(&peer) {
                        sources.release(peer, &t);
                    }
                }
            }
        }
    }

    fn io<'s>(
        &'s mut self,
        to: SocketAddrV4,
        from: Ipv4Addr,
        out: &'s mut dyn FnMut(Transmit<'_>),
    ) -> Io<'s> {
        Io {
            to,
            from,
            port: 0,
            scratch: &mut self.scratch,
            counters: &mut self.counters,
            out,
            budget: None,
        }
    }

    /// Drops a peer's transfer, if any; true if there was one.
    fn forget(&mut self, peer: SocketAddrV4) -> bool {
        forget(
            &mut self.transfers,
            &mut self.timers,
            &mut self.sources,
            peer,
        )
    }

    /// Frees the oldest transfer still unproven, if it had its chance to prove itself (its
    /// port comes out of [`Server::take_closed_ports`]): for a caller short of sockets for a
    /// new transfer.
    pub fn evict_oldest_unproven(&mut self, now: Millis) -> bool {
        self.evict_unproven(now)
    }

    /// The table is full: frees the oldest transfer still unproven if it is older than a third
    /// of `unproven_timeout` (a real client's transfer gets a round trip's worth of time to
    /// prove itself before a newer request can take its place); failing that, among the oldest
    /// [`EVICT_SCAN`] unproven ones, the first whose source address holds other transfers too.
    /// Spoofed requests never prove themselves and come many to an address (22,000 from 250 in
    /// the review's flood), so they cannot keep a real client out; a storm's devices hold one
    /// transfer each, so theirs are not cut for newcomers.
    fn evict_unproven(&mut self, now: Millis) -> bool {
        let grace = self.unproven_ms / 3;
        let live = |s: &Server, peer: &SocketAddrV4, serial: u32| {
            s.transfers
                .get(peer)
                .filter(|t| t.serial == serial && !t.budget.proven)
                .map(|t| t.started_at)
        };
        while let Some(&(peer, serial)) = self.unproven.front() {
            let Some(started_at) = live(self, &peer, serial) else {
                // Gone or proven since: not a candidate.
                self.unproven.pop_front();
                continue;
            };
            // `started_at` holds the low 32 bits of the clock (see `Transfer::heard_at`).
            if u64::from(low_ms(now).wrapping_sub(started_at)) >= grace {
                self.unproven.pop_front();
                self.forget(peer);
                self.counters.evicted_unproven += 1;
                return true;
            }
            break;
        }
        let crowded = self
            .unproven
            .iter()
            .take(EVICT_SCAN)
            .position(|&(peer, serial)| {
                live(self, &peer, serial).is_some() && self.sources.get(*peer.ip()).transfers >= 2
            });
        match crowded {
            Some(i) => {
                let (peer, _) = self.unproven.remove(i).expect("position is in the queue");
                self.forget(peer);
                self.counters.evicted_unproven += 1;
                true
            }
            None => false,
        }
    }

    /// Frees the oldest finished transfer still dallying, if there is one: a full table makes
    /// room with what is done before it turns anyone away (issue 17: at 10,000 files a second
    /// a second's dally alone filled the table, and a boot storm's requests were refused).
    /// A repeated final packet for it then gets ERROR 5, which changes nothing for its peer.
    fn evict_dallying(&mut self) -> bool {
        while let Some((peer, serial)) = self.dallying.pop_front() {
            let done = self
                .transfers
                .get(&peer)
                .is_some_and(|t| t.serial == serial && matches!(t.state, State::Dallying { .. }));
            if done {
                self.forget(peer);
                self.counters.evicted_dallying += 1;
                return true;
            }
        }
        false
    }

    /// Keeps the unproven queue no longer than the table it points into.
    fn trim_unproven(&mut self) {
        if self.dallying.len() > 2 * self.max_transfers + 64 {
            let transfers = &self.transfers;
            self.dallying.retain(|(peer, serial)| {
                transfers.get(peer).is_some_and(|t| {
                    t.serial == *serial && matches!(t.state, State::Dallying { .. })
                })
            });
        }
        if self.unproven.len() > 2 * self.max_transfers + 64 {
            let transfers = &self.transfers;
            self.unproven.retain(|(peer, serial)| {
                transfers
                    .get(peer)
                    .is_some_and(|t| t.serial == *serial && !t.budget.proven)
            });
        }
    }
}

fn forget(
    transfers: &mut HashMap<SocketAddrV4, Transfer>,
    timers: &mut BTreeSet<(Millis, SocketAddrV4)>,
    sources: &mut Sources,
    peer: SocketAddrV4,
) -> bool {
    match transfers.remove(&peer) {
        Some(t) => {
            timers.remove(&(t.deadline, peer));
            sources.release(peer, &t);
            true
        }
        None => false,
    }
}

/// An unproven transfer's timers never reach past the moment it is freed.
fn clamp(t: &Transfer, deadline: Millis) -> Millis {
    if t.budget.proven {
        deadline
    } else {
        deadline.min(t.unproven_until)
    }
}

/// Moves a transfer's one timer entry to `deadline`.
fn rearm(
    timers: &mut BTreeSet<(Millis, SocketAddrV4)>,
    peer: SocketAddrV4,
    t: &mut Transfer,
    deadline: Millis,
) {
    let deadline = clamp(t, deadline);
    if t.deadline != deadline {
        timers.remove(&(t.deadline, peer));
        t.deadline = deadline;
        timers.insert((deadline, peer));
    }
}

/// FNV-1a over the request bytes, folded to 32 bits: a retransmitted request is
/// byte-identical, and a collision between two requests of the same peer only costs a repeated
/// first packet.
fn fingerprint(bytes: &[u8]) -> u32 {
    let h = bytes.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    });
    (h ^ (h >> 32)) as u32
}

/// The low 32 bits of the millisecond clock.
/// Notes how `t` ended, if it had started moving data (reading or writing); a transfer still
/// deciding, or dallying after its end, is not noted again.
fn end(ended: &mut Vec<Ended>, t: &Transfer, now: Millis, ok: bool) {
    let write = match t.state {
        State::Reading(_) => false,
        State::Writing(_) => true,
        State::Deciding(_) | State::Dallying { .. } => return,
    };
    if ended.len() < MAX_ENDED {
        ended.push(Ended {
            ok,
            write,
            elapsed_ms: low_ms(now).wrapping_sub(t.started_at),
        });
    }
}

fn low_ms(now: Millis) -> u32 {
    now.0 as u32
}

#[cfg(test)]
impl Server {
    /// Checks the table/timer invariant: one timer entry per transfer, at its deadline.
    pub(crate) fn check_invariants(&self) {
        assert_eq!(self.timers.len(), self.transfers.len());
        for (peer, t) in &self.transfers {
            assert!(self.timers.contains(&(t.deadline, *peer)));
        }
        assert!(self.transfers.len() <= self.max_transfers);
    }
}
