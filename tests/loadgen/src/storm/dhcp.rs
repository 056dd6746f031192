//! One device's DHCPv4 exchange as its CMTS relays it, sans-IO: replies and the passing of time
//! go in, the datagram to send and the lease come out.
//!
//! The retry timing is the client's of RFC 2131 §4.1: an unanswered DISCOVER or REQUEST is
//! resent after 4 s, then 8, 16, 32 and 64 s (64 s from then on), each randomized by ±1 s, so a
//! server that falls behind in a storm stretches the storm. A REQUEST unanswered through
//! [`REQUEST_TRIES`] sends, or NAKed, sends the device back to DISCOVER (§4.4.1).

use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use provd_dhcp::{Header, MessageType, MessageWriter, code};

use super::Rng;

/// What the simulated relay (the CMTS) puts in what it forwards.
#[derive(Debug, Clone)]
pub struct Relay {
    /// giaddr: the CMTS's address on the device's cable bundle.
    pub giaddr: Ipv4Addr,
    /// 82.1, as the CMTS writes it (its name and the cable interface).
    pub circuit_id: Vec<u8>,
}

/// Who the device says it is.
#[derive(Debug, Clone)]
pub struct Identity {
    pub mac: [u8; 6],
    /// Option 60 ("docsis3.0:...", "pktc1.5:...").
    pub vendor_class: &'static [u8],
    /// 82.2: the cable modem's MAC (an eMTA's is its modem's).
    pub remote_id: [u8; 6],
    /// Option 55.
    pub params: &'static [u8],
}

/// What an ACK gave the device.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lease {
    pub addr: Ipv4Addr,
    pub server_id: Ipv4Addr,
    /// siaddr: the TFTP server.
    pub next_server: Ipv4Addr,
    /// The boot file (file field, or option 67 when the field is empty).
    pub file: Option<String>,
    pub time_servers: Vec<Ipv4Addr>,
    pub log_servers: Vec<Ipv4Addr>,
    /// Option 122, raw.
    pub cablelabs: Option<Vec<u8>>,
    /// Option 43, raw (a TR-069 CPE's ACS URL is its sub-option 1).
    pub vendor_specific: Option<Vec<u8>>,
    /// Option 66 (a phone's profile rule).
    pub tftp_server_name: Option<String>,
    pub lease_secs: Option<u32>,
}

/// A reply the relay socket received, read once for whichever device it names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    pub xid: u32,
    pub kind: MessageType,
    pub mac: [u8; 6],
    /// The address offered or acknowledged.
    pub yiaddr: Ipv4Addr,
    pub server_id: Option<Ipv4Addr>,
    /// What an ACK gives (`None` for any other reply).
    pub lease: Option<Lease>,
}

/// Reads a BOOTREPLY; `None` for anything else (or anything malformed).
pub fn read_reply(buf: &[u8]) -> Option<Reply> {
    let m = provd_dhcp::Message::parse(buf).ok()?;
    if m.op() != provd_dhcp::Op::Reply {
        return None;
    }
    let kind = m.message_type().ok()??;
    let mac = m.mac()?;
    let addrs = |c: u8| -> Vec<Ipv4Addr> {
        m.option(c)
            .map(|v| {
                v.chunks_exact(4)
                    .map(|a| Ipv4Addr::new(a[0], a[1], a[2], a[3]))
                    .collect()
            })
            .unwrap_or_default()
    };
    let lease = (kind == MessageType::Ack).then(|| Lease {
        addr: m.yiaddr(),
        server_id: m.server_id().unwrap_or(Ipv4Addr::UNSPECIFIED),
        next_server: m.siaddr(),
        file: m
            .file()
            .filter(|f| !f.is_empty())
            .map(|f| String::from_utf8_lossy(f).into_owned())
            .or_else(|| {
                m.option(code::BOOTFILE).map(|f| {
                    String::from_utf8_lossy(&f)
                        .trim_end_matches('\0')
                        .to_owned()
                })
            }),
        time_servers: addrs(code::TIME_SERVER),
        log_servers: addrs(code::LOG_SERVER),
        cablelabs: m
            .option(code::CABLELABS_CLIENT_CONFIG)
            .map(|v| v.into_owned()),
        vendor_specific: m.option(code::VENDOR_SPECIFIC).map(|v| v.into_owned()),
        tftp_server_name: m.option(code::TFTP_SERVER).map(|v| {
            String::from_utf8_lossy(&v)
                .trim_end_matches('\0')
                .to_owned()
        }),
        lease_secs: m.lease_time(),
    });
    Some(Reply {
        xid: m.xid(),
        kind,
        mac,
        yiaddr: m.yiaddr(),
        server_id: m.server_id(),
        lease,
    })
}

/// Sends of one REQUEST before the device starts over with a DISCOVER.
pub const REQUEST_TRIES: u32 = 4;
/// Replies are small; what a minimal client takes (RFC 2131: 576 − 28).
const MAX_LEN: usize = 548;

/// The resend interval after `sends` sends (1 = the first): 4, 8, 16, 32, then 64 s, ±1 s.
pub fn backoff(sends: u32, rng: &mut Rng) -> Duration {
    let base_ms = 4_000u64 << sends.saturating_sub(1).min(4);
    let jitter = rng.below(2_001) as i64 - 1_000;
    Duration::from_millis((base_ms as i64 + jitter) as u64)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    Selecting,
    Requesting {
        server_id: Ipv4Addr,
        offered: Ipv4Addr,
    },
    Bound,
}

/// What feeding a reply did.
#[derive(Debug, PartialEq, Eq)]
pub enum Event {
    /// Not for this exchange (another xid, a repeat): nothing changed.
    Ignored,
    /// Send the datagram now in the client's buffer (the REQUEST, or a new DISCOVER after a
    /// NAK).
    Send,
    /// The ACK: the device is bound.
    Bound(Box<Lease>),
}

#[derive(Debug)]
pub struct Client {
    /// The low 20 bits name the device; the high 12 count its exchanges.
    xid_base: u32,
    exchange: u32,
    pub state: State,
    /// Sends of the current message so far.
    sends: u32,
    pub resend_at: Instant,
    /// When this exchange began (the `secs` field counts from it).
    began: Instant,
    /// The datagram to send.
    pub out: Vec<u8>,
    /// Resends of DISCOVERs and REQUESTs, and NAKs, over the client's life.
    pub resends: u32,
    pub naks: u32,
    pub restarts: u32,
}

/// Devices one run may hold: the low 20 bits of an xid.
pub const MAX_DEVICES: u32 = 1 << 20;

impl Client {
    /// Device `index`'s client, its first DISCOVER in [`Client::out`], to be sent now.
    pub fn start(index: u32, who: &Identity, relay: &Relay, now: Instant, rng: &mut Rng) -> Client {
        debug_assert!(index < MAX_DEVICES);
        let mut c = Client {
            xid_base: index,
            exchange: 0,
            state: State::Selecting,
            sends: 0,
            resend_at: now,
            began: now,
            out: Vec::with_capacity(MAX_LEN),
            resends: 0,
            naks: 0,
            restarts: 0,
        };
        c.discover(who, relay, now, rng);
        c
    }

    /// The device a reply's xid names.
    pub fn device_of(xid: u32) -> u32 {
        xid & (MAX_DEVICES - 1)
    }

    fn xid(&self) -> u32 {
        self.xid_base | ((self.exchange & 0xfff) << 20)
    }

    fn discover(&mut self, who: &Identity, relay: &Relay, now: Instant, rng: &mut Rng) {
        self.state = State::Selecting;
        self.began = now;
        self.sends = 1;
        self.resend_at = now + backoff(1, rng);
        self.write(MessageType::Discover, who, relay, now);
    }

    fn write(&mut self, kind: MessageType, who: &Identity, relay: &Relay, now: Instant) {
        let mut chaddr = [0u8; 16];
        chaddr[..6].copy_from_slice(&who.mac);
        let h = Header {
            op: 1,
            htype: 1,
            hlen: 6,
            hops: 1,
            xid: self.xid(),
            secs: (now - self.began).as_secs().min(u64::from(u16::MAX)) as u16,
            flags: 0,
            ciaddr: Ipv4Addr::UNSPECIFIED,
            yiaddr: Ipv4Addr::UNSPECIFIED,
            siaddr: Ipv4Addr::UNSPECIFIED,
            giaddr: relay.giaddr,
            chaddr,
            sname: &[],
            file: &[],
        };
        let mut agent = Vec::with_capacity(4 + relay.circuit_id.len() + 6);
        agent.extend_from_slice(&[1, relay.circuit_id.len().min(255) as u8]);
        agent.extend_from_slice(&relay.circuit_id[..relay.circuit_id.len().min(255)]);
        agent.extend_from_slice(&[2, 6]);
        agent.extend_from_slice(&who.remote_id);
        // Every field is bounded and small: the message always fits.
        let mut w = MessageWriter::new(&mut self.out, &h, MAX_LEN).expect("fixed header fits");
        w.option(code::MESSAGE_TYPE, &[kind as u8]).expect("fits");
        if let State::Requesting { server_id, offered } = self.state {
            w.ipv4(code::SERVER_ID, server_id)
                .and_then(|w| w.ipv4(code::REQUESTED_IP, offered))
                .expect("fits");
        }
        w.option(code::VENDOR_CLASS, who.vendor_class)
            .and_then(|w| w.option(code::PARAM_REQUEST_LIST, who.params))
            .and_then(|w| w.option(code::RELAY_AGENT_INFO, &agent))
            .expect("fits");
        w.finish().expect("small message fits");
    }

    /// A reply came for this device.
    pub fn on_reply(
        &mut self,
        reply: &Reply,
        who: &Identity,
        relay: &Relay,
        now: Instant,
        rng: &mut Rng,
    ) -> Event {
        if reply.xid != self.xid() || reply.mac != who.mac {
            return Event::Ignored;
        }
        match (self.state, reply.kind) {
            (State::Selecting, MessageType::Offer) => {
                let Some(server_id) = reply.server_id else {
                    return Event::Ignored;
                };
                self.state = State::Requesting {
                    server_id,
                    offered: reply.yiaddr,
                };
                self.sends = 1;
                self.resend_at = now + backoff(1, rng);
                self.write(MessageType::Request, who, relay, now);
                Event::Send
            }
            (State::Requesting { offered, .. }, MessageType::Ack) => match &reply.lease {
                Some(l) if l.addr == offered => {
                    self.state = State::Bound;
                    Event::Bound(Box::new(l.clone()))
                }
                _ => Event::Ignored,
            },
            (State::Requesting { .. }, MessageType::Nak) => {
                self.naks += 1;
                self.restart(who, relay, now, rng);
                Event::Send
            }
            _ => Event::Ignored,
        }
    }

    /// Starts over with a new DISCOVER (new xid).
    pub fn restart(&mut self, who: &Identity, relay: &Relay, now: Instant, rng: &mut Rng) {
        self.restarts += 1;
        self.exchange = self.exchange.wrapping_add(1);
        self.discover(who, relay, now, rng);
    }

    /// Time passed: whether [`Client::out`] is to be sent again (a resend, or a DISCOVER after a
    /// REQUEST that went unanswered too often).
    pub fn on_tick(&mut self, who: &Identity, relay: &Relay, now: Instant, rng: &mut Rng) -> bool {
        if self.state == State::Bound || now < self.resend_at {
            return false;
        }
        if matches!(self.state, State::Requesting { .. }) && self.sends >= REQUEST_TRIES {
            self.restart(who, relay, now, rng);
            return true;
        }
        self.resends += 1;
        self.sends += 1;
        self.resend_at = now + backoff(self.sends, rng);
        // The same message with `secs` brought up to date.
        let kind = match self.state {
            State::Selecting => MessageType::Discover,
            _ => MessageType::Request,
        };
        self.write(kind, who, relay, now);
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use provd_dhcp::{Message, RequestKind};

    fn who() -> Identity {
        Identity {
            mac: [2, 0, 0, 0, 0, 7],
            vendor_class: b"docsis3.0:",
            remote_id: [2, 0, 0, 0, 0, 7],
            params: &[1, 3, 4, 7, 2],
        }
    }

    fn relay() -> Relay {
        Relay {
            giaddr: Ipv4Addr::new(198, 18, 3, 1),
            circuit_id: b"cmts1:cable1/0".to_vec(),
        }
    }

    fn reply(xid: u32, kind: MessageType, yiaddr: Ipv4Addr, mac: [u8; 6]) -> Vec<u8> {
        let mut chaddr = [0u8; 16];
        chaddr[..6].copy_from_slice(&mac);
        let mut h = Header::reply(xid, chaddr, 1, 6);
        h.yiaddr = yiaddr;
        h.siaddr = Ipv4Addr::new(198, 18, 2, 2);
        h.giaddr = relay().giaddr;
        let mut buf = Vec::new();
        let mut w = MessageWriter::new(&mut buf, &h, 576).unwrap();
        w.option(code::MESSAGE_TYPE, &[kind as u8])
            .unwrap()
            .ipv4(code::SERVER_ID, Ipv4Addr::new(198, 18, 2, 2))
            .unwrap()
            .option(code::BOOTFILE, b"cm/020000000007.cfg")
            .unwrap()
            .option(code::TIME_SERVER, &[198, 18, 2, 2])
            .unwrap();
        let n = w.finish().unwrap();
        buf.truncate(n);
        buf
    }

    #[test]
    fn backoff_doubles_from_four_seconds_to_sixty_four_within_a_second() {
        let mut rng = Rng::new(1);
        for (sends, base) in [(1, 4), (2, 8), (3, 16), (4, 32), (5, 64), (9, 64)] {
            for _ in 0..200 {
                let d = backoff(sends, &mut rng).as_millis() as i64;
                assert!((d - base * 1000).abs() <= 1000, "{sends}: {d}");
            }
        }
    }

    #[test]
    fn discover_offer_request_ack_binds_with_the_relay_fields() {
        let mut rng = Rng::new(2);
        let t0 = Instant::now();
        let mut c = Client::start(7, &who(), &relay(), t0, &mut rng);
        let m = Message::parse(&c.out).unwrap();
        assert_eq!(m.message_type(), Ok(Some(MessageType::Discover)));
        assert_eq!(Client::device_of(m.xid()), 7);
        assert_eq!(m.giaddr(), relay().giaddr);
        assert_eq!(m.vendor_class().unwrap().as_ref(), b"docsis3.0:");
        let rai = provd_dhcp::relay::RelayAgentInfo::parse(&m.relay_agent_info().unwrap())
            .unwrap()
            .circuit_id()
            .map(<[u8]>::to_vec);
        assert_eq!(rai.as_deref(), Some(&b"cmts1:cable1/0"[..]));
        let offered = Ipv4Addr::new(198, 19, 0, 10);
        let offer = read_reply(&reply(m.xid(), MessageType::Offer, offered, who().mac)).unwrap();
        assert_eq!(
            c.on_reply(&offer, &who(), &relay(), t0, &mut rng),
            Event::Send
        );
        let out = c.out.clone();
        let m = Message::parse(&out).unwrap();
        assert_eq!(
            m.request_kind(),
            RequestKind::Selecting {
                server_id: Ipv4Addr::new(198, 18, 2, 2),
                requested: offered
            }
        );
        // An ACK for someone else, or for another address, changes nothing.
        let stranger = read_reply(&reply(m.xid(), MessageType::Ack, offered, [2; 6])).unwrap();
        assert_eq!(
            c.on_reply(&stranger, &who(), &relay(), t0, &mut rng),
            Event::Ignored
        );
        let ack = read_reply(&reply(m.xid(), MessageType::Ack, offered, who().mac)).unwrap();
        let Event::Bound(l) = c.on_reply(&ack, &who(), &relay(), t0, &mut rng) else {
            panic!("not bound");
        };
        assert_eq!(l.addr, offered);
        assert_eq!(l.file.as_deref(), Some("cm/020000000007.cfg"));
        assert_eq!(l.time_servers, vec![Ipv4Addr::new(198, 18, 2, 2)]);
        assert_eq!(l.next_server, Ipv4Addr::new(198, 18, 2, 2));
        assert!(!c.on_tick(&who(), &relay(), t0 + Duration::from_secs(100), &mut rng));
    }

    #[test]
    fn unanswered_requests_go_back_to_discover_and_a_nak_does_at_once() {
        let mut rng = Rng::new(3);
        let t0 = Instant::now();
        let mut c = Client::start(1, &who(), &relay(), t0, &mut rng);
        let xid0 = Message::parse(&c.out).unwrap().xid();
        // Nothing before the first resend time; then a resend with the same xid.
        assert!(!c.on_tick(
            &who(),
            &relay(),
            t0 + Duration::from_millis(2_900),
            &mut rng
        ));
        assert!(c.on_tick(&who(), &relay(), t0 + Duration::from_secs(5), &mut rng));
        assert_eq!(Message::parse(&c.out).unwrap().xid(), xid0);
        assert_eq!(Message::parse(&c.out).unwrap().secs(), 5);
        let offer = read_reply(&reply(
            xid0,
            MessageType::Offer,
            Ipv4Addr::new(198, 19, 0, 9),
            who().mac,
        ))
        .unwrap();
        c.on_reply(&offer, &who(), &relay(), t0, &mut rng);
        let mut t = t0;
        let mut sends = 1;
        while matches!(c.state, State::Requesting { .. }) {
            t = c.resend_at;
            assert!(c.on_tick(&who(), &relay(), t, &mut rng));
            sends += 1;
            assert!(sends <= REQUEST_TRIES + 1);
        }
        assert_eq!(sends, REQUEST_TRIES + 1, "the fifth send is a DISCOVER");
        let out = c.out.clone();
        let m = Message::parse(&out).unwrap();
        assert_eq!(m.message_type(), Ok(Some(MessageType::Discover)));
        assert_ne!(m.xid(), xid0, "a new exchange");
        assert_eq!(Client::device_of(m.xid()), 1);
        // NAK of the next REQUEST: a DISCOVER at once.
        let offer = read_reply(&reply(
            m.xid(),
            MessageType::Offer,
            Ipv4Addr::new(198, 19, 0, 9),
            who().mac,
        ))
        .unwrap();
        c.on_reply(&offer, &who(), &relay(), t, &mut rng);
        let nak = read_reply(&reply(
            m.xid(),
            MessageType::Nak,
            Ipv4Addr::UNSPECIFIED,
            who().mac,
        ))
        .unwrap();
        assert_eq!(c.on_reply(&nak, &who(), &relay(), t, &mut rng), Event::Send);
        assert_eq!(c.naks, 1);
        assert_eq!(
            Message::parse(&c.out).unwrap().message_type(),
            Ok(Some(MessageType::Discover))
        );
    }
}
