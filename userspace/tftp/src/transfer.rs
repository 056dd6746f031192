//! One transfer's sending or receiving state, after the file source has answered: a [`Reader`]
//! streams a shared file out in windows (RFC 7440; a window of 1 is RFC 1350 lock-step), a
//! [`Writer`] collects an upload. Both keep a handful of integers; the file itself is a shared
//! reference and DATA payloads are slices of it (netascii aside, which is encoded into the
//! server's scratch buffer on the fly).
//!
//! Retransmission follows RFC 1123 §4.2.3.1 (the Sorcerer's Apprentice fix): only a timeout makes
//! a sender repeat itself. A duplicate or stale ACK is ignored; an ACK inside the window moves it.

use std::net::{Ipv4Addr, SocketAddrV4};

use crate::clock::Millis;
use crate::content::{FileContent, Refusal};
use crate::counters::Counters;
use crate::netascii::{self, Cursor, Decoder};
use crate::options::Options;
use crate::packet::{self, DEFAULT_BLKSIZE, ErrorCode, Mode, Packet};
use crate::rto::{Rto, RtoBounds};

/// One datagram to send from the transfer port. DATA is split into its 4-byte header and the
/// payload, a slice of the shared file, so nothing is copied until the socket layer wants to.
#[derive(Debug, Clone, Copy)]
pub struct Transmit<'a> {
    pub to: SocketAddrV4,
    /// The local port to send from: the transfer's own port (its TID, see
    /// [`Server::set_port`](crate::Server::set_port)), or 0 for the worker's shared socket.
    pub port: u16,
    /// Source address for the datagram (unspecified: let the kernel choose).
    pub from: Ipv4Addr,
    pub header: &'a [u8],
    pub payload: &'a [u8],
}

impl Transmit<'_> {
    pub fn len(&self) -> usize {
        self.header.len() + self.payload.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Writes the datagram into `buf` and returns its length, or `None` if it does not fit.
    pub fn copy_to(&self, buf: &mut [u8]) -> Option<usize> {
        let (h, p) = (self.header.len(), self.payload.len());
        let dst = buf.get_mut(..h + p)?;
        dst[..h].copy_from_slice(self.header);
        dst[h..].copy_from_slice(self.payload);
        Some(h + p)
    }

    pub fn to_vec(&self) -> Vec<u8> {
        [self.header, self.payload].concat()
    }
}

/// Limits from the server config, in the units the state machines use.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Limits {
    pub max_blksize: u16,
    pub max_window: u16,
    pub rto: RtoBounds,
    pub max_retries: u8,
    pub max_write: usize,
}

/// The anti-amplification budget of one transfer (QUIC's rule, RFC 9000 §8): until the peer
/// proves it receives what we send (a packet from it on the transfer's own, unpredictable
/// port), we send it at most `factor` times the bytes it sent us. A request without options
/// has no smaller first answer than its first DATA, so such a read may get a one-time `credit`
/// for its first datagram (granted per source, see the server); retransmissions never get one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Budget {
    pub proven: bool,
    /// The first datagram may go regardless of the budget (once).
    pub credit: bool,
    pub factor: u8,
    /// UDP payload bytes received from the peer on this transfer (its request(s) included).
    pub received: u32,
    /// UDP payload bytes sent to it while unproven.
    pub sent: u32,
    /// Something was held back: it goes when the peer proves itself.
    pub held: bool,
}

impl Budget {
    pub(crate) fn unproven(factor: u8, received: usize, credit: bool) -> Self {
        Budget {
            proven: false,
            credit,
            factor,
            received: u32::try_from(received).unwrap_or(u32::MAX),
            sent: 0,
            held: false,
        }
    }

    pub(crate) fn proven() -> Self {
        Budget {
            proven: true,
            credit: false,
            factor: 0,
            received: 0,
            sent: 0,
            held: false,
        }
    }

    pub(crate) fn on_received(&mut self, len: usize) {
        self.received = self
            .received
            .saturating_add(u32::try_from(len).unwrap_or(u32::MAX));
    }

    /// May `len` more bytes go? Takes them from the budget if so.
    pub(crate) fn take(&mut self, len: usize) -> bool {
        if self.proven {
            return true;
        }
        let len = u32::try_from(len).unwrap_or(u32::MAX);
        if self.credit {
            self.credit = false;
        } else if u64::from(self.sent) + u64::from(len)
            > u64::from(self.received) * u64::from(self.factor)
        {
            self.held = true;
            return false;
        }
        self.sent = self.sent.saturating_add(len);
        true
    }
}

/// Where one transfer's packets go and what they may use: the server lends these for the
/// duration of one call.
pub(crate) struct Io<'s> {
    pub to: SocketAddrV4,
    pub from: Ipv4Addr,
    /// The local port to send from (0: the shared socket).
    pub port: u16,
    pub scratch: &'s mut [u8],
    pub counters: &'s mut Counters,
    pub out: &'s mut dyn FnMut(Transmit<'_>),
    /// The transfer's budget; `None` for the server's own replies (ERRORs to requests).
    pub budget: Option<&'s mut Budget>,
}

/// Longest ERROR message sent; the file source's messages may be longer.
const MAX_ERROR_MESSAGE: usize = 200;

impl Io<'_> {
    /// Whether `len` bytes may go to this peer now; counts a refusal.
    pub(crate) fn allow(&mut self, len: usize) -> bool {
        let allowed = self.budget.as_deref_mut().is_none_or(|b| b.take(len));
        if !allowed {
            self.counters.amplification_limited += 1;
        }
        allowed
    }

    /// Sends one datagram unless the budget forbids it; true if it went.
    pub(crate) fn send(&mut self, header: &[u8], payload: &[u8]) -> bool {
        if !self.allow(header.len() + payload.len()) {
            return false;
        }
        (self.out)(Transmit {
            to: self.to,
            port: self.port,
            from: self.from,
            header,
            payload,
        });
        true
    }

    /// Sends the first `len` bytes of the scratch buffer as one packet.
    fn send_scratch(&mut self, len: usize) -> bool {
        if !self.allow(len) {
            return false;
        }
        (self.out)(Transmit {
            to: self.to,
            port: self.port,
            from: self.from,
            header: &self.scratch[..len],
            payload: &[],
        });
        true
    }

    pub(crate) fn send_error(&mut self, code: ErrorCode, message: &str) {
        let room = (MAX_ERROR_MESSAGE + 5).min(self.scratch.len());
        let n = packet::write_error(&mut self.scratch[..room], code, message);
        if self.send_scratch(n) {
            self.counters.error_sent(code);
        }
    }

    fn send_oack(&mut self, options: &Options) {
        // Options in range always encode; the scratch buffer (>= 516 bytes) always fits the
        // four of them (under 60 bytes).
        if let Ok(n) = Packet::Oack(*options).encode(self.scratch)
            && self.send_scratch(n)
        {
            self.counters.oack_sent += 1;
        }
    }

    fn send_ack(&mut self, block: u16) {
        if self.send(&packet::ack(block), &[]) {
            self.counters.acks_sent += 1;
        }
    }
}

/// The wire number of the block with 0-based index `i`: blocks count from 1 and roll over from
/// 65535 to 0, so files of more than 65535 blocks go through.
fn wire_block(i: u32) -> u16 {
    // Truncation is the rollover.
    i.wrapping_add(1) as u16
}

/// The largest block a path MTU carries: IP (20) + UDP (8) + TFTP (4) headers come off. Never
/// below the RFC 1350 default, which every IPv4 path carries (576-byte minimum MTU).
fn mtu_cap(mtu: Option<u32>) -> u16 {
    match mtu {
        Some(m) => {
            let cap = m
                .saturating_sub(32)
                .clamp(u32::from(DEFAULT_BLKSIZE), 65464);
            u16::try_from(cap).unwrap_or(u16::MAX)
        }
        None => u16::MAX,
    }
}

/// Block size and window granted for a request: the client's values lowered to what the config
/// and the path allow (RFC 2348 and 7440 let the server answer less).
fn grant(requested: &Options, mtu: Option<u32>, limits: &Limits) -> (Option<u16>, Option<u16>) {
    let cap = limits.max_blksize.min(mtu_cap(mtu));
    let blksize = requested.blksize.map(|b| b.min(cap));
    let window = requested.windowsize.map(|w| w.min(limits.max_window));
    (blksize, window)
}

fn rto_for(requested: &Options, limits: &Limits) -> Rto {
    match requested.timeout {
        Some(secs) => Rto::fixed(secs),
        None => Rto::adaptive(&limits.rto),
    }
}

/// Which options a read's OACK carries (values come from the [`Reader`] itself).
#[derive(Debug, Clone, Copy)]
struct OackFields {
    blksize: bool,
    tsize: bool,
    windowsize: bool,
    timeout: Option<u8>,
}

/// What an ACK did to a read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum AckOutcome {
    /// Acknowledged nothing new: ignored (never answered, see the module doc).
    Ignored,
    /// The window moved and the next one is out.
    Progress,
    /// The final block is acknowledged.
    Complete,
}

/// A read in progress: a shared file going out in windows of blocks.
#[derive(Debug)]
pub(crate) struct Reader {
    content: FileContent,
    /// Bytes on the wire (netascii: after conversion), fixed at the start.
    len: u64,
    /// When the current window (or the OACK) was sent.
    sent_at: Millis,
    /// netascii only: the encoder's position at block `base`.
    netascii: Option<Cursor>,
    rto: Rto,
    /// Index of the final DATA, the one shorter than a block (possibly empty).
    last: u32,
    /// First block not yet acknowledged.
    base: u32,
    /// One past the last block of the window in flight.
    next: u32,
    blksize: u16,
    window: u16,
    /// Timeouts since the last progress.
    retries: u8,
    /// The window in flight was sent once only, so its ACK is a valid RTT sample (Karn).
    clean: bool,
    /// Set until the client's ACK 0 answers our OACK.
    oack: Option<OackFields>,
}

impl Reader {
    /// Sets up a read of `content`; refuses a file with more blocks than block indices.
    pub(crate) fn new(
        content: FileContent,
        mode: Mode,
        requested: &Options,
        mtu: Option<u32>,
        limits: &Limits,
    ) -> Result<Self, Refusal> {
        let len = match mode {
            Mode::Octet => content.len() as u64,
            Mode::Netascii => netascii::encoded_len(&content),
        };
        let (blksize, window) = grant(requested, mtu, limits);
        let block = blksize.unwrap_or(DEFAULT_BLKSIZE);
        let last = u32::try_from(len / u64::from(block))
            .ok()
            .filter(|&l| l < u32::MAX)
            .ok_or_else(|| {
                Refusal::new(ErrorCode::DISK_FULL, "file too large for the block size")
            })?;
        let oack = (!requested.is_empty()).then_some(OackFields {
            blksize: blksize.is_some(),
            tsize: requested.tsize.is_some(),
            windowsize: window.is_some(),
            timeout: requested.timeout,
        });
        Ok(Reader {
            content,
            len,
            sent_at: Millis(0),
            netascii: (mode == Mode::Netascii).then(Cursor::default),
            rto: rto_for(requested, limits),
            last,
            base: 0,
            next: 0,
            blksize: block,
            window: window.unwrap_or(1),
            retries: 0,
            clean: true,
            oack,
        })
    }

    pub(crate) fn rto_ms(&self) -> u64 {
        u64::from(self.rto.current_ms())
    }

    /// Nothing has been acknowledged yet: a repeated request means our first answer was lost.
    pub(crate) fn at_start(&self) -> bool {
        self.oack.is_some() || self.base == 0
    }

    /// Sends the OACK, or without options the first window.
    pub(crate) fn start(&mut self, now: Millis, io: &mut Io<'_>) {
        self.send_first(now, io, true);
    }

    /// The client repeated its request: the first answer again, as a retransmission.
    pub(crate) fn resend_first(&mut self, now: Millis, io: &mut Io<'_>) {
        self.send_first(now, io, false);
    }

    /// The peer just proved its address: what the budget held back goes now (the OACK or the
    /// window in flight, again from its base).
    pub(crate) fn on_proven(&mut self, now: Millis, io: &mut Io<'_>) {
        if self.oack.is_some() {
            self.send_oack(now, io, false);
        } else {
            let previously_sent = self.next;
            self.send_window(now, io, previously_sent);
        }
    }

    fn send_first(&mut self, now: Millis, io: &mut Io<'_>, fresh: bool) {
        if self.oack.is_some() {
            self.send_oack(now, io, fresh);
        } else {
            let previously_sent = if fresh { self.base } else { self.next };
            self.send_window(now, io, previously_sent);
        }
    }

    fn send_oack(&mut self, now: Millis, io: &mut Io<'_>, fresh: bool) {
        let Some(f) = self.oack else { return };
        let options = Options {
            blksize: f.blksize.then_some(self.blksize),
            tsize: f.tsize.then_some(self.len),
            timeout: f.timeout,
            windowsize: f.windowsize.then_some(self.window),
        };
        io.send_oack(&options);
        if !fresh {
            io.counters.retransmits += 1;
        }
        self.sent_at = now;
        self.clean = fresh;
    }

    /// Sends the window starting at `base`; blocks below `previously_sent` went out before and
    /// count as retransmissions (and spoil the RTT sample).
    fn send_window(&mut self, now: Millis, io: &mut Io<'_>, previously_sent: u32) {
        let end = (u64::from(self.base) + u64::from(self.window)).min(u64::from(self.last) + 1);
        // `end` <= last + 1 <= u32::MAX, checked in `new`.
        let end = end as u32;
        let block = u64::from(self.blksize);
        let mut cursor = self.netascii;
        // Past what an unproven peer's budget allows, the window stops short: the rest goes
        // when the peer has proven its address (or never).
        let mut sent_to = self.base;
        for i in self.base..end {
            let header = packet::data_header(wire_block(i));
            let sent = match &mut cursor {
                None => {
                    let start = u64::from(i) * block;
                    let stop = (start + block).min(self.len);
                    // start <= stop <= len == content.len() in octet mode.
                    let payload = &self.content[start as usize..stop as usize];
                    if !io.send(&header, payload) {
                        break;
                    }
                    payload.len()
                }
                Some(at) => {
                    let (n, after) =
                        netascii::encode(&self.content, *at, &mut io.scratch[..block as usize]);
                    if !io.allow(header.len() + n) {
                        break;
                    }
                    *at = after;
                    (io.out)(Transmit {
                        to: io.to,
                        port: io.port,
                        from: io.from,
                        header: &header,
                        payload: &io.scratch[..n],
                    });
                    n
                }
            };
            sent_to = i + 1;
            io.counters.data_sent += 1;
            io.counters.data_bytes_sent += sent as u64;
        }
        let end = sent_to;
        let resent = previously_sent
            .saturating_sub(self.base)
            .min(end - self.base);
        io.counters.retransmits += u64::from(resent);
        // Blocks the budget held back this time went out before: the peer may still
        // acknowledge them, so they stay in flight. (Cutting `next` back to `end` made a late
        // ACK of DATA 1 look stale, and the transfer stalled until it gave up.) An ACK may then
        // answer the earlier send, so the round trip is no sample.
        self.next = end.max(previously_sent);
        self.sent_at = now;
        self.clean = resent == 0 && end >= previously_sent;
    }

    pub(crate) fn on_ack(
        &mut self,
        block: u16,
        now: Millis,
        io: &mut Io<'_>,
        limits: &Limits,
    ) -> AckOutcome {
        if self.oack.is_some() {
            if block != 0 {
                return AckOutcome::Ignored;
            }
            self.progress(now, limits);
            self.oack = None;
            self.send_window(now, io, 0);
            return AckOutcome::Progress;
        }
        // Which block of the window in flight this ACK names, if any; anything else is a
        // duplicate or a stale ACK of an earlier window.
        let offset = u32::from(block.wrapping_sub(wire_block(self.base)));
        if offset >= self.next - self.base {
            return AckOutcome::Ignored;
        }
        let acked = self.base + offset;
        self.progress(now, limits);
        if acked == self.last {
            return AckOutcome::Complete;
        }
        let moved = acked + 1 - self.base;
        if let Some(at) = &mut self.netascii {
            *at = netascii::skip(
                &self.content,
                *at,
                u64::from(moved) * u64::from(self.blksize),
            );
        }
        let previously_sent = self.next;
        self.base = acked + 1;
        // A full window acknowledged sends the next one; an ACK inside it means the client
        // missed the block after, and RFC 7440 restarts from there.
        self.send_window(now, io, previously_sent);
        AckOutcome::Progress
    }

    fn progress(&mut self, now: Millis, limits: &Limits) {
        if self.clean {
            self.rto.on_sample(now.since(self.sent_at), &limits.rto);
        }
        self.retries = 0;
    }

    /// The retransmission timer fired: back off and send the window (or OACK) again, or give up
    /// after `max_retries` (returns false).
    pub(crate) fn on_timeout(&mut self, now: Millis, io: &mut Io<'_>, limits: &Limits) -> bool {
        io.counters.timeouts += 1;
        self.retries = self.retries.saturating_add(1);
        if self.retries > limits.max_retries {
            io.counters.gave_up += 1;
            return false;
        }
        self.rto.back_off(&limits.rto);
        if self.oack.is_some() {
            self.send_oack(now, io, false);
        } else {
            let previously_sent = self.next;
            self.send_window(now, io, previously_sent);
        }
        true
    }
}

/// What a DATA packet did to a write.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum DataOutcome {
    Ignored,
    Progress,
    /// The final (short) block arrived; here is the whole file.
    Complete(Vec<u8>),
    /// The upload outgrew `max_write_size`.
    TooLarge,
    /// DATA longer than the negotiated block size.
    Oversized,
}

/// A write in progress: DATA collected into a buffer bounded by `max_write_size`.
#[derive(Debug)]
pub(crate) struct Writer {
    data: Vec<u8>,
    decoder: Option<Decoder>,
    /// Set until the first DATA arrives: on timeout the OACK goes again instead of ACK 0.
    oack: Option<Options>,
    rto: Rto,
    /// Index of the next block expected (= blocks received so far).
    expected: u32,
    blksize: u16,
    window: u16,
    /// Blocks received since the last ACK.
    in_window: u16,
    retries: u8,
    /// An ACK for the last in-order block already answered a gap in this window.
    gap_acked: bool,
}

impl Writer {
    pub(crate) fn new(mode: Mode, requested: &Options, mtu: Option<u32>, limits: &Limits) -> Self {
        let (blksize, window) = grant(requested, mtu, limits);
        let oack = (!requested.is_empty()).then_some(Options {
            blksize,
            windowsize: window,
            ..*requested
        });
        Writer {
            data: Vec::new(),
            decoder: (mode == Mode::Netascii).then(Decoder::default),
            oack,
            rto: rto_for(requested, limits),
            expected: 0,
            blksize: blksize.unwrap_or(DEFAULT_BLKSIZE),
            window: window.unwrap_or(1),
            in_window: 0,
            retries: 0,
            gap_acked: false,
        }
    }

    pub(crate) fn rto_ms(&self) -> u64 {
        u64::from(self.rto.current_ms())
    }

    pub(crate) fn at_start(&self) -> bool {
        self.expected == 0
    }

    /// Accepts the write: OACK, or ACK 0 without options.
    pub(crate) fn start(&mut self, io: &mut Io<'_>) {
        self.ack_last(io);
    }

    /// Acknowledges the last block received in order (the OACK stands for ACK 0 when options
    /// were negotiated).
    fn ack_last(&mut self, io: &mut Io<'_>) {
        match &self.oack {
            Some(o) => io.send_oack(o),
            None => io.send_ack(wire_block(self.expected.wrapping_sub(1))),
        }
    }

    pub(crate) fn on_data(
        &mut self,
        block: u16,
        data: &[u8],
        io: &mut Io<'_>,
        limits: &Limits,
    ) -> DataOutcome {
        let expect = wire_block(self.expected);
        if block != expect {
            // Behind: our ACK was lost and the sender repeats itself; re-ACK (the sender ignores
            // duplicate ACKs, RFC 1123). Ahead: a gap inside the window; ACK the last in-order
            // block once so the sender restarts from there (RFC 7440).
            let behind = expect.wrapping_sub(block);
            let ahead = block.wrapping_sub(expect);
            if (1..=self.window).contains(&behind) {
                self.ack_last(io);
            } else if ahead < self.window && !self.gap_acked {
                self.gap_acked = true;
                self.in_window = 0;
                self.ack_last(io);
            }
            return DataOutcome::Ignored;
        }
        if data.len() > usize::from(self.blksize) {
            return DataOutcome::Oversized;
        }
        if self.data.len().saturating_add(data.len()) > limits.max_write
            || self.expected == u32::MAX - 1
        {
            return DataOutcome::TooLarge;
        }
        io.counters.data_received += 1;
        match &mut self.decoder {
            Some(d) => d.decode(data, &mut self.data),
            None => self.data.extend_from_slice(data),
        }
        self.expected += 1;
        self.oack = None;
        self.retries = 0;
        self.gap_acked = false;
        self.in_window += 1;
        if data.len() < usize::from(self.blksize) {
            if let Some(d) = &mut self.decoder {
                d.finish(&mut self.data);
            }
            io.send_ack(block);
            return DataOutcome::Complete(std::mem::take(&mut self.data));
        }
        if self.in_window >= self.window {
            self.in_window = 0;
            io.send_ack(block);
        }
        DataOutcome::Progress
    }

    /// Nothing arrived for a while: re-send the last ACK (or OACK), or give up.
    pub(crate) fn on_timeout(&mut self, io: &mut Io<'_>, limits: &Limits) -> bool {
        io.counters.timeouts += 1;
        self.retries = self.retries.saturating_add(1);
        if self.retries > limits.max_retries {
            io.counters.gave_up += 1;
            return false;
        }
        self.rto.back_off(&limits.rto);
        self.in_window = 0;
        io.counters.retransmits += 1;
        self.ack_last(io);
        true
    }
}
