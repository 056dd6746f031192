//! One read transfer from the client's side, sans-IO: feed it the datagrams that arrive on its
//! socket and the passing of time; it says what to send and when it is done. Windowed per
//! RFC 7440 (ACK after every `windowsize` blocks, or at once for the last block; on a gap, one
//! ACK of the last in-order block so the server resends from there), lock-step without options.

use std::net::SocketAddrV4;
use std::time::{Duration, Instant};

use sha1::{Digest, Sha1};

use super::packet::{self, DEFAULT_BLKSIZE, Packet, RequestOptions};

/// What a finished transfer delivered.
#[derive(Debug, Clone)]
pub struct Delivered {
    pub bytes: u64,
    /// The whole content, when the transfer was asked to keep it.
    pub content: Option<Vec<u8>>,
    pub sha1: Option<[u8; 20]>,
    /// Negotiated block size and window.
    pub blksize: u16,
    pub windowsize: u16,
}

/// Why a transfer failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failure {
    /// The server sent ERROR.
    Server { code: u16, msg: String },
    /// No answer after every retransmission.
    Timeout { retries: u32, blocks: u64 },
    /// The server broke the protocol (or our options), or the content was not as expected.
    Protocol(String),
    /// Still running when the run's time was up.
    CutOff { blocks: u64 },
}

impl Failure {
    /// A stable key for grouping failures in reports.
    pub fn kind(&self) -> String {
        match self {
            Failure::Server { code, msg } => format!("error {code} \"{msg}\""),
            Failure::Timeout { .. } => "timeout".into(),
            Failure::Protocol(m) => m.clone(),
            Failure::CutOff { .. } => "cut off at the hard end".into(),
        }
    }

    /// Whether the server went silent (or too slow), as opposed to answering wrongly.
    pub fn is_timeout(&self) -> bool {
        matches!(self, Failure::Timeout { .. } | Failure::CutOff { .. })
    }
}

/// The result of feeding one event.
#[derive(Debug, PartialEq, Eq)]
pub enum Step {
    /// Nothing to send.
    Idle,
    /// Send the transfer's [`Transfer::outgoing`] packet to [`Transfer::peer`].
    Send,
    /// The last block came: send the final ACK in [`Transfer::outgoing`], then close.
    /// [`Transfer::delivered`] has the result, or [`Transfer::failure`] says what was wrong
    /// with it (a size that contradicts the OACK's tsize).
    Finished,
    /// Failed; if `send` is set, [`Transfer::outgoing`] holds an ERROR for the server.
    Failed { send: bool },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// RRQ sent, nothing heard yet.
    Requested,
    /// Options acknowledged (ACK 0 sent) or DATA flowing.
    Receiving,
    Done,
}

#[derive(Debug)]
pub struct Transfer {
    server: SocketAddrV4,
    /// The server's transfer port, fixed by its first answer.
    peer_port: Option<u16>,
    asked: RequestOptions,
    phase: Phase,
    blksize: u16,
    windowsize: u16,
    tsize: Option<u64>,
    /// The next block expected.
    next: u16,
    blocks: u64,
    /// In-order blocks since the last ACK we sent.
    unacked: u16,
    /// A gap was already answered with an ACK for this block; no more until progress.
    gap_acked: Option<u16>,
    bytes: u64,
    content: Option<Vec<u8>>,
    hasher: Option<Sha1>,
    out: Vec<u8>,
    timeout: Duration,
    retries_left: u32,
    retries: u32,
    deadline: Instant,
    failure: Option<Failure>,
}

/// What every transfer of a run shares.
#[derive(Debug, Clone)]
pub struct Setup {
    /// The server's listening address (port 69 or whatever it listens on).
    pub server: SocketAddrV4,
    /// "octet" or "netascii".
    pub mode: &'static str,
    pub asked: RequestOptions,
    /// Keep the whole content (for comparing or saving it).
    pub keep_content: bool,
    /// Hash the content as it arrives.
    pub sha1: bool,
    /// Wait for an answer before resending the last packet.
    pub timeout: Duration,
    /// Resends before giving up.
    pub retries: u32,
}

impl Transfer {
    /// Starts a read of `name`: the RRQ is in [`outgoing`](Self::outgoing), to be sent now to
    /// [`peer`](Self::peer).
    pub fn start(setup: &Setup, name: &str, now: Instant) -> Transfer {
        let mut out = Vec::with_capacity(64 + name.len());
        packet::rrq(&mut out, name, setup.mode, &setup.asked);
        Transfer {
            server: setup.server,
            peer_port: None,
            asked: setup.asked,
            phase: Phase::Requested,
            blksize: DEFAULT_BLKSIZE,
            windowsize: 1,
            tsize: None,
            next: 1,
            blocks: 0,
            unacked: 0,
            gap_acked: None,
            bytes: 0,
            content: setup.keep_content.then(Vec::new),
            hasher: setup.sha1.then(Sha1::new),
            out,
            timeout: setup.timeout,
            retries_left: setup.retries,
            retries: setup.retries,
            deadline: now + setup.timeout,
            failure: None,
        }
    }

    /// The packet to send (RRQ, ACK or ERROR), valid after a step that says so.
    pub fn outgoing(&self) -> &[u8] {
        &self.out
    }

    /// Where to send: the request goes to the server's listening port, everything after to the
    /// port its answers come from.
    pub fn peer(&self) -> SocketAddrV4 {
        SocketAddrV4::new(
            *self.server.ip(),
            self.peer_port.unwrap_or(self.server.port()),
        )
    }

    pub fn deadline(&self) -> Instant {
        self.deadline
    }

    pub fn failure(&self) -> Option<&Failure> {
        self.failure.as_ref()
    }

    /// Blocks received so far.
    pub fn blocks(&self) -> u64 {
        self.blocks
    }

    /// Takes what the finished transfer delivered.
    pub fn delivered(&mut self) -> Option<Delivered> {
        if self.phase != Phase::Done || self.failure.is_some() {
            return None;
        }
        Some(Delivered {
            bytes: self.bytes,
            content: self.content.take(),
            sha1: self.hasher.take().map(|h| h.finalize().into()),
            blksize: self.blksize,
            windowsize: self.windowsize,
        })
    }

    fn fail(&mut self, f: Failure, send_error: Option<(u16, &str)>) -> Step {
        self.phase = Phase::Done;
        self.failure = Some(f);
        match send_error {
            Some((code, msg)) => {
                packet::error(&mut self.out, code, msg);
                Step::Failed { send: true }
            }
            None => Step::Failed { send: false },
        }
    }

    fn send_ack(&mut self, block: u16, now: Instant) -> Step {
        packet::ack(&mut self.out, block);
        self.unacked = 0;
        self.retries_left = self.retries;
        self.deadline = now + self.timeout;
        Step::Send
    }

    /// A datagram from `from` arrived on the transfer's socket.
    pub fn on_datagram(&mut self, from: SocketAddrV4, buf: &[u8], now: Instant) -> Step {
        if self.phase == Phase::Done || *from.ip() != *self.server.ip() {
            return Step::Idle;
        }
        match self.peer_port {
            // RFC 1350: the first answer fixes the server's TID; others are not ours.
            None => self.peer_port = Some(from.port()),
            Some(p) if p != from.port() => return Step::Idle,
            Some(_) => {}
        }
        let pkt = match packet::parse(buf) {
            Ok(p) => p,
            Err(e) => {
                return self.fail(
                    Failure::Protocol(format!("malformed packet: {e}")),
                    Some((packet::ERR_NOT_DEFINED, "malformed packet")),
                );
            }
        };
        match pkt {
            Packet::Error { code, msg } => self.fail(
                Failure::Server {
                    code,
                    msg: msg.to_owned(),
                },
                None,
            ),
            Packet::Oack { options } => self.on_oack(&options, now),
            Packet::Data { block, payload } => self.on_data(block, payload, now),
            Packet::Ack { .. } | Packet::Request { .. } => self.fail(
                Failure::Protocol(format!("unexpected packet {pkt:?}")),
                Some((packet::ERR_NOT_DEFINED, "unexpected packet")),
            ),
        }
    }

    fn on_oack(&mut self, options: &[(&str, &str)], now: Instant) -> Step {
        if self.phase == Phase::Receiving && self.blocks == 0 {
            // Our ACK 0 was lost and the server repeats its OACK.
            return self.send_ack(0, now);
        }
        if self.phase != Phase::Requested {
            return Step::Idle;
        }
        if !self.asked.any() {
            return self.fail(
                Failure::Protocol("OACK to a request without options".into()),
                Some((packet::ERR_OPTION, "no options were requested")),
            );
        }
        for &(k, v) in options {
            let k = k.to_ascii_lowercase();
            let bad = |what: &str| Failure::Protocol(format!("OACK {k}={v:?}: {what}"));
            match k.as_str() {
                "blksize" => match (v.parse::<u16>(), self.asked.blksize) {
                    (Ok(b), Some(asked)) if (8..=asked).contains(&b) => self.blksize = b,
                    (_, None) => {
                        return self
                            .fail(bad("not requested"), Some((packet::ERR_OPTION, "blksize")));
                    }
                    _ => {
                        return self
                            .fail(bad("out of range"), Some((packet::ERR_OPTION, "blksize")));
                    }
                },
                "windowsize" => match (v.parse::<u16>(), self.asked.windowsize) {
                    (Ok(w), Some(asked)) if (1..=asked).contains(&w) => self.windowsize = w,
                    (_, None) => {
                        return self.fail(
                            bad("not requested"),
                            Some((packet::ERR_OPTION, "windowsize")),
                        );
                    }
                    _ => {
                        return self.fail(
                            bad("out of range"),
                            Some((packet::ERR_OPTION, "windowsize")),
                        );
                    }
                },
                "tsize" => match v.parse::<u64>() {
                    Ok(t) if self.asked.tsize => self.tsize = Some(t),
                    Ok(_) => {
                        return self
                            .fail(bad("not requested"), Some((packet::ERR_OPTION, "tsize")));
                    }
                    Err(_) => {
                        return self.fail(bad("not a number"), Some((packet::ERR_OPTION, "tsize")));
                    }
                },
                _ => {
                    return self.fail(
                        bad("unknown option"),
                        Some((packet::ERR_OPTION, "unknown option")),
                    );
                }
            }
        }
        self.phase = Phase::Receiving;
        self.send_ack(0, now)
    }

    fn on_data(&mut self, block: u16, payload: &[u8], now: Instant) -> Step {
        if self.phase == Phase::Requested {
            // DATA 1 without an OACK: the server ignored our options (RFC 2347 allows that).
            self.phase = Phase::Receiving;
        }
        if payload.len() > usize::from(self.blksize) {
            return self.fail(
                Failure::Protocol(format!(
                    "DATA {block} carries {} bytes, more than the block size {}",
                    payload.len(),
                    self.blksize
                )),
                Some((packet::ERR_NOT_DEFINED, "block too large")),
            );
        }
        if block != self.next {
            // Ahead of us (a block of the window was lost): ask once for a resend from the
            // last in-order block. Behind us (duplicates): ignore, the server hears our ACKs.
            let ahead = block.wrapping_sub(self.next) < 0x8000;
            if ahead && self.gap_acked != Some(self.next) {
                self.gap_acked = Some(self.next);
                return self.send_ack(self.next.wrapping_sub(1), now);
            }
            return Step::Idle;
        }
        self.gap_acked = None;
        self.blocks += 1;
        self.bytes += payload.len() as u64;
        if let Some(c) = self.content.as_mut() {
            c.extend_from_slice(payload);
        }
        if let Some(h) = self.hasher.as_mut() {
            h.update(payload);
        }
        self.next = self.next.wrapping_add(1);
        self.unacked += 1;
        if payload.len() < usize::from(self.blksize) {
            self.phase = Phase::Done;
            if let Some(t) = self.tsize
                && t != self.bytes
            {
                self.failure = Some(Failure::Protocol(format!(
                    "received {} bytes but the OACK announced tsize {t}",
                    self.bytes
                )));
            }
            packet::ack(&mut self.out, block);
            return Step::Finished;
        }
        if self.unacked >= self.windowsize {
            return self.send_ack(block, now);
        }
        // Mid-window: the server keeps sending; a timeout re-ACKs the last in-order block.
        self.deadline = now + self.timeout;
        self.retries_left = self.retries;
        Step::Idle
    }

    /// Time passed: past the deadline, resend the last packet (RRQ or the ACK of the last
    /// in-order block), or give up when the retries are spent.
    pub fn on_tick(&mut self, now: Instant) -> Step {
        if self.phase == Phase::Done || now < self.deadline {
            return Step::Idle;
        }
        if self.retries_left == 0 {
            return self.fail(
                Failure::Timeout {
                    retries: self.retries,
                    blocks: self.blocks,
                },
                None,
            );
        }
        self.retries_left -= 1;
        self.deadline = now + self.timeout;
        if self.phase == Phase::Receiving {
            packet::ack(&mut self.out, self.next.wrapping_sub(1));
            self.unacked = 0;
        }
        Step::Send
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    const SERVER: SocketAddrV4 = SocketAddrV4::new(Ipv4Addr::new(198, 18, 0, 1), 69);
    const TID: SocketAddrV4 = SocketAddrV4::new(Ipv4Addr::new(198, 18, 0, 1), 40000);

    fn start(asked: RequestOptions) -> (Transfer, Instant) {
        let now = Instant::now();
        let setup = Setup {
            server: SERVER,
            mode: "octet",
            asked,
            keep_content: true,
            sha1: true,
            timeout: Duration::from_millis(100),
            retries: 2,
        };
        (Transfer::start(&setup, "f", now), now)
    }

    fn data(block: u16, payload: &[u8]) -> Vec<u8> {
        let mut b = Vec::new();
        packet::data(&mut b, block, payload);
        b
    }

    fn acked(t: &Transfer) -> u16 {
        match packet::parse(t.outgoing()).unwrap() {
            Packet::Ack { block } => block,
            p => panic!("expected an ACK, have {p:?}"),
        }
    }

    #[test]
    fn lock_step_without_options() {
        let (mut t, now) = start(RequestOptions::default());
        assert_eq!(t.peer(), SERVER);
        assert_eq!(t.outgoing(), b"\x00\x01f\0octet\0");
        let full = vec![7u8; 512];
        assert_eq!(t.on_datagram(TID, &data(1, &full), now), Step::Send);
        assert_eq!(acked(&t), 1);
        assert_eq!(t.peer(), TID);
        // A duplicate is ignored; a packet from another port is not ours.
        assert_eq!(t.on_datagram(TID, &data(1, &full), now), Step::Idle);
        let other = SocketAddrV4::new(*TID.ip(), 40001);
        assert_eq!(t.on_datagram(other, &data(2, b"x"), now), Step::Idle);
        assert_eq!(t.on_datagram(TID, &data(2, b"end"), now), Step::Finished);
        assert_eq!(acked(&t), 2);
        let d = t.delivered().unwrap();
        assert_eq!(d.bytes, 515);
        let mut want = full.clone();
        want.extend_from_slice(b"end");
        assert_eq!(d.content.unwrap(), want);
        assert_eq!(d.sha1.unwrap(), <[u8; 20]>::from(Sha1::digest(&want)));
        assert_eq!((d.blksize, d.windowsize), (512, 1));
    }

    #[test]
    fn windowed_with_a_gap_and_a_lost_ack() {
        let opts = RequestOptions {
            blksize: Some(16),
            windowsize: Some(4),
            tsize: true,
        };
        let (mut t, now) = start(opts);
        let mut o = Vec::new();
        packet::oack(
            &mut o,
            &[
                ("BLKSIZE", "8".into()),
                ("windowsize", "2".into()),
                ("tsize", "18".into()),
            ],
        );
        assert_eq!(t.on_datagram(TID, &o, now), Step::Send);
        assert_eq!(acked(&t), 0);
        // The server repeats the OACK (our ACK 0 was lost): ACK 0 again.
        assert_eq!(t.on_datagram(TID, &o, now), Step::Send);
        assert_eq!(acked(&t), 0);
        assert_eq!(t.on_datagram(TID, &data(1, b"abcdefgh"), now), Step::Idle);
        // Block 2 lost, 3 arrives: one ACK 1, then silence for further out-of-order blocks.
        assert_eq!(t.on_datagram(TID, &data(3, b"qr"), now), Step::Send);
        assert_eq!(acked(&t), 1);
        assert_eq!(t.on_datagram(TID, &data(3, b"qr"), now), Step::Idle);
        // The resent window: 2 is the first block since that ACK, 3 the last of the file.
        assert_eq!(t.on_datagram(TID, &data(2, b"ijklmnop"), now), Step::Idle);
        assert_eq!(t.on_datagram(TID, &data(3, b"qr"), now), Step::Finished);
        assert_eq!(acked(&t), 3);
        assert_eq!(t.tsize, Some(18));
        let d = t.delivered().unwrap();
        assert_eq!(d.content.unwrap(), b"abcdefghijklmnopqr");
        assert_eq!((d.blksize, d.windowsize), (8, 2));
    }

    #[test]
    fn retransmits_then_times_out() {
        let (mut t, now) = start(RequestOptions::default());
        let rrq = t.outgoing().to_vec();
        assert_eq!(t.on_tick(now), Step::Idle);
        let later = now + Duration::from_millis(100);
        assert_eq!(t.on_tick(later), Step::Send);
        assert_eq!(t.outgoing(), rrq);
        assert_eq!(t.on_tick(later + Duration::from_millis(100)), Step::Send);
        assert_eq!(
            t.on_tick(later + Duration::from_millis(200)),
            Step::Failed { send: false }
        );
        assert_eq!(
            t.failure(),
            Some(&Failure::Timeout {
                retries: 2,
                blocks: 0
            })
        );
        assert!(t.delivered().is_none());
    }

    #[test]
    fn timeout_mid_transfer_re_acks_the_last_block() {
        let (mut t, now) = start(RequestOptions::default());
        t.on_datagram(TID, &data(1, &[0; 512]), now);
        assert_eq!(t.on_tick(now + Duration::from_millis(150)), Step::Send);
        assert_eq!(acked(&t), 1);
        assert_eq!(t.peer(), TID);
    }

    #[test]
    fn server_errors_and_bad_oacks_fail() {
        let (mut t, now) = start(RequestOptions::default());
        let mut e = Vec::new();
        packet::error(&mut e, 1, "File not found");
        assert_eq!(t.on_datagram(TID, &e, now), Step::Failed { send: false });
        assert_eq!(t.failure().unwrap().kind(), "error 1 \"File not found\"");

        // blksize larger than asked.
        let (mut t, now) = start(RequestOptions {
            blksize: Some(512),
            ..Default::default()
        });
        let mut o = Vec::new();
        packet::oack(&mut o, &[("blksize", "1024".into())]);
        assert_eq!(t.on_datagram(TID, &o, now), Step::Failed { send: true });
        assert!(matches!(
            packet::parse(t.outgoing()).unwrap(),
            Packet::Error { code: 8, .. }
        ));

        // An option we did not ask for.
        let (mut t, now) = start(RequestOptions {
            tsize: true,
            ..Default::default()
        });
        packet::oack(&mut o, &[("windowsize", "4".into())]);
        assert_eq!(t.on_datagram(TID, &o, now), Step::Failed { send: true });

        // A block larger than negotiated.
        let (mut t, now) = start(RequestOptions::default());
        assert_eq!(
            t.on_datagram(TID, &data(1, &[0; 513]), now),
            Step::Failed { send: true }
        );

        // tsize that does not match what came.
        let (mut t, now) = start(RequestOptions {
            tsize: true,
            ..Default::default()
        });
        packet::oack(&mut o, &[("tsize", "5".into())]);
        t.on_datagram(TID, &o, now);
        assert_eq!(t.on_datagram(TID, &data(1, b"abc"), now), Step::Finished);
        assert!(matches!(t.failure(), Some(Failure::Protocol(_))));
        assert!(t.delivered().is_none());
    }

    #[test]
    fn foreign_addresses_are_ignored() {
        let (mut t, now) = start(RequestOptions::default());
        let stranger = SocketAddrV4::new(Ipv4Addr::new(198, 18, 0, 9), 69);
        assert_eq!(t.on_datagram(stranger, &data(1, b"x"), now), Step::Idle);
        assert_eq!(t.peer(), SERVER);
    }

    #[test]
    fn block_numbers_roll_over() {
        let (mut t, now) = start(RequestOptions::default());
        t.next = 0xffff;
        assert_eq!(
            t.on_datagram(TID, &data(0xffff, &[1; 512]), now),
            Step::Send
        );
        assert_eq!(t.on_datagram(TID, &data(0, b"z"), now), Step::Finished);
        assert_eq!(acked(&t), 0);
    }
}
