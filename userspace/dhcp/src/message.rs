//! The borrowed view of a DHCPv4 message: one pass over the options records where each fragment
//! lies; accessors then read the packet in place. RFC 3396 split options (one code appearing
//! several times, across the options field and, with overload, the `file` and `sname` fields) are
//! concatenated on request, borrowing when there is only one fragment.

use std::borrow::Cow;
use std::net::Ipv4Addr;

use crate::code;
use crate::error::ParseError;

/// The DHCP magic cookie (RFC 2131 §3).
pub const MAGIC: [u8; 4] = [99, 130, 83, 99];
/// Fixed BOOTP header plus the magic cookie.
pub const MIN_LEN: usize = 240;
/// Larger datagrams are refused outright: no DHCP client sends more than a jumbo frame.
pub const MAX_LEN: usize = 9000;
/// The flags bit asking for a broadcast reply.
pub const BROADCAST_FLAG: u16 = 0x8000;
/// Option fragments recorded per message; a legitimate client sends a few dozen.
const MAX_SPANS: usize = 128;

const SNAME: std::ops::Range<usize> = 44..108;
const FILE: std::ops::Range<usize> = 108..236;

/// BOOTP op code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Request = 1,
    Reply = 2,
}

/// DHCP message type (option 53).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MessageType {
    Discover = 1,
    Offer = 2,
    Request = 3,
    Decline = 4,
    Ack = 5,
    Nak = 6,
    Release = 7,
    Inform = 8,
}

impl MessageType {
    pub const ALL: [MessageType; 8] = [
        Self::Discover,
        Self::Offer,
        Self::Request,
        Self::Decline,
        Self::Ack,
        Self::Nak,
        Self::Release,
        Self::Inform,
    ];

    pub fn from_u8(v: u8) -> Option<Self> {
        Self::ALL.get(usize::from(v).wrapping_sub(1)).copied()
    }

    pub fn name(self) -> &'static str {
        match self {
            Self::Discover => "discover",
            Self::Offer => "offer",
            Self::Request => "request",
            Self::Decline => "decline",
            Self::Ack => "ack",
            Self::Nak => "nak",
            Self::Release => "release",
            Self::Inform => "inform",
        }
    }
}

/// The client state a REQUEST reveals (RFC 2131 §4.3.2), derived from its fields alone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RequestKind {
    /// Answering an OFFER: server id and requested address present, ciaddr zero.
    Selecting {
        server_id: Ipv4Addr,
        requested: Ipv4Addr,
    },
    /// Rebooted with a remembered address: requested address, no server id, ciaddr zero.
    InitReboot { requested: Ipv4Addr },
    /// T1 (unicast) or T2 (broadcast) expired: ciaddr set, neither option. Which of the two it
    /// is depends on how the packet arrived, which only the I/O layer knows.
    RenewingOrRebinding { ciaddr: Ipv4Addr },
    /// A combination RFC 2131 does not define (e.g. server id without requested address).
    Malformed,
}

#[derive(Debug, Clone, Copy)]
struct Span {
    code: u8,
    len: u8,
    start: u16,
}

/// A parsed DHCPv4 message borrowing its datagram.
#[derive(Clone)]
pub struct Message<'a> {
    buf: &'a [u8],
    spans: [Span; MAX_SPANS],
    n_spans: u8,
    overload: u8,
}

impl std::fmt::Debug for Message<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Message")
            .field("op", &self.op())
            .field("xid", &format_args!("{:#010x}", self.xid()))
            .field("chaddr", &format_args!("{:02x?}", self.chaddr()))
            .field("type", &self.message_type())
            .field("options", &self.n_spans)
            .finish()
    }
}

impl<'a> Message<'a> {
    /// Parses `buf` (a UDP payload). Accepts both requests and replies; the caller decides which
    /// it serves. A missing END option is tolerated (many clients omit it); any option whose
    /// length runs past its field is an error.
    pub fn parse(buf: &'a [u8]) -> Result<Self, ParseError> {
        if buf.len() < MIN_LEN {
            return Err(ParseError::Truncated {
                len: buf.len(),
                need: MIN_LEN,
            });
        }
        if buf.len() > MAX_LEN {
            return Err(ParseError::TooLong {
                len: buf.len(),
                max: MAX_LEN,
            });
        }
        if !(1..=2).contains(&buf[0]) {
            return Err(ParseError::BadOp { op: buf[0] });
        }
        if buf[2] > 16 {
            return Err(ParseError::BadHlen { hlen: buf[2] });
        }
        let found = [buf[236], buf[237], buf[238], buf[239]];
        if found != MAGIC {
            return Err(ParseError::BadMagic { found });
        }
        let mut msg = Message {
            buf,
            spans: [Span {
                code: 0,
                len: 0,
                start: 0,
            }; MAX_SPANS],
            n_spans: 0,
            overload: 0,
        };
        msg.scan(MIN_LEN..buf.len(), true)?;
        // RFC 2131 §4.1: options field first, then `file`, then `sname`.
        if msg.overload & 1 != 0 {
            msg.scan(FILE, false)?;
        }
        if msg.overload & 2 != 0 {
            msg.scan(SNAME, false)?;
        }
        Ok(msg)
    }

    fn scan(&mut self, range: std::ops::Range<usize>, main: bool) -> Result<(), ParseError> {
        let field = &self.buf[..range.end];
        let mut i = range.start;
        while i < range.end {
            let code = field[i];
            match code {
                code::PAD => i += 1,
                code::END => return Ok(()),
                _ => {
                    let Some(&len) = field.get(i + 1) else {
                        return Err(ParseError::TruncatedOption { code, offset: i });
                    };
                    let start = i + 2;
                    let end = start + usize::from(len);
                    if end > range.end {
                        return Err(ParseError::OptionOverrun {
                            code,
                            offset: i,
                            len,
                        });
                    }
                    if code == code::OVERLOAD {
                        // Only the options field may say where else options live.
                        if main {
                            match field[start..end] {
                                [v @ 1..=3] => self.overload = v,
                                _ => return Err(ParseError::BadOverload),
                            }
                        }
                    } else {
                        if usize::from(self.n_spans) == MAX_SPANS {
                            return Err(ParseError::TooManyOptions { max: MAX_SPANS });
                        }
                        // `start` < MAX_LEN (9000) fits u16: MAX_LEN is checked in parse().
                        self.spans[usize::from(self.n_spans)] = Span {
                            code,
                            len,
                            start: start as u16,
                        };
                        self.n_spans += 1;
                    }
                    i = end;
                }
            }
        }
        Ok(())
    }

    /// The raw datagram.
    pub fn as_bytes(&self) -> &'a [u8] {
        self.buf
    }

    pub fn op(&self) -> Op {
        if self.buf[0] == 1 {
            Op::Request
        } else {
            Op::Reply
        }
    }
    pub fn htype(&self) -> u8 {
        self.buf[1]
    }
    pub fn hlen(&self) -> u8 {
        self.buf[2]
    }
    pub fn hops(&self) -> u8 {
        self.buf[3]
    }
    pub fn xid(&self) -> u32 {
        u32::from_be_bytes([self.buf[4], self.buf[5], self.buf[6], self.buf[7]])
    }
    pub fn secs(&self) -> u16 {
        u16::from_be_bytes([self.buf[8], self.buf[9]])
    }
    pub fn flags(&self) -> u16 {
        u16::from_be_bytes([self.buf[10], self.buf[11]])
    }
    pub fn broadcast(&self) -> bool {
        self.flags() & BROADCAST_FLAG != 0
    }
    pub fn ciaddr(&self) -> Ipv4Addr {
        self.addr_at(12)
    }
    pub fn yiaddr(&self) -> Ipv4Addr {
        self.addr_at(16)
    }
    pub fn siaddr(&self) -> Ipv4Addr {
        self.addr_at(20)
    }
    pub fn giaddr(&self) -> Ipv4Addr {
        self.addr_at(24)
    }
    /// The hardware address: the first `hlen` bytes of chaddr.
    pub fn chaddr(&self) -> &'a [u8] {
        &self.buf[28..28 + usize::from(self.hlen())]
    }
    /// The whole 16-byte chaddr field (echoed verbatim in replies).
    pub fn chaddr_field(&self) -> &'a [u8; 16] {
        self.buf[28..44].try_into().expect("slice of 16")
    }
    /// The MAC of an Ethernet client (htype 1, hlen 6).
    pub fn mac(&self) -> Option<[u8; 6]> {
        (self.htype() == 1 && self.hlen() == 6).then(|| {
            let mut m = [0; 6];
            m.copy_from_slice(&self.buf[28..34]);
            m
        })
    }
    /// The `sname` field up to its first NUL, unless it carries overloaded options.
    pub fn sname(&self) -> Option<&'a [u8]> {
        (self.overload & 2 == 0).then(|| until_nul(&self.buf[SNAME]))
    }
    /// The `file` field up to its first NUL, unless it carries overloaded options.
    pub fn file(&self) -> Option<&'a [u8]> {
        (self.overload & 1 == 0).then(|| until_nul(&self.buf[FILE]))
    }
    /// Option 52's value, 0 when absent.
    pub fn overload(&self) -> u8 {
        self.overload
    }

    fn addr_at(&self, at: usize) -> Ipv4Addr {
        Ipv4Addr::new(
            self.buf[at],
            self.buf[at + 1],
            self.buf[at + 2],
            self.buf[at + 3],
        )
    }

    /// Every option fragment in wire order (the same code may appear more than once).
    pub fn fragments(&self) -> impl Iterator<Item = (u8, &'a [u8])> + '_ {
        let buf = self.buf;
        self.spans[..usize::from(self.n_spans)]
            .iter()
            .map(move |s| {
                let start = usize::from(s.start);
                (s.code, &buf[start..start + usize::from(s.len)])
            })
    }

    /// The first fragment of an option: for fixed-size options, which are never split.
    pub fn option_first(&self, code: u8) -> Option<&'a [u8]> {
        self.fragments().find(|(c, _)| *c == code).map(|(_, v)| v)
    }

    /// An option's value with RFC 3396 concatenation: borrowed when it is one fragment.
    pub fn option(&self, code: u8) -> Option<Cow<'a, [u8]>> {
        let mut parts = self.fragments().filter(|(c, _)| *c == code).map(|(_, v)| v);
        let first = parts.next()?;
        match parts.next() {
            None => Some(Cow::Borrowed(first)),
            Some(second) => {
                let mut all = Vec::with_capacity(first.len() + second.len() + 255);
                all.extend_from_slice(first);
                all.extend_from_slice(second);
                parts.for_each(|p| all.extend_from_slice(p));
                Some(Cow::Owned(all))
            }
        }
    }

    pub fn has_option(&self, code: u8) -> bool {
        self.fragments().any(|(c, _)| c == code)
    }

    /// Option 53, `Err(value)` for a value outside 1..=8, `Ok(None)` when absent (BOOTP).
    pub fn message_type(&self) -> Result<Option<MessageType>, u8> {
        match self.option_first(code::MESSAGE_TYPE) {
            None => Ok(None),
            Some([v]) => MessageType::from_u8(*v).map(Some).ok_or(*v),
            Some(_) => Err(0),
        }
    }

    pub fn requested_ip(&self) -> Option<Ipv4Addr> {
        self.ipv4_option(code::REQUESTED_IP)
    }
    pub fn server_id(&self) -> Option<Ipv4Addr> {
        self.ipv4_option(code::SERVER_ID)
    }
    /// Option 61; an empty one counts as absent.
    pub fn client_id(&self) -> Option<Cow<'a, [u8]>> {
        self.option(code::CLIENT_ID).filter(|v| !v.is_empty())
    }
    pub fn vendor_class(&self) -> Option<Cow<'a, [u8]>> {
        self.option(code::VENDOR_CLASS)
    }
    /// Option 57, ignored below the RFC 2132 minimum of 576.
    pub fn max_message_size(&self) -> Option<u16> {
        match self.option_first(code::MAX_MESSAGE_SIZE) {
            Some(&[a, b]) => Some(u16::from_be_bytes([a, b])).filter(|&v| v >= 576),
            _ => None,
        }
    }
    pub fn param_request_list(&self) -> Option<Cow<'a, [u8]>> {
        self.option(code::PARAM_REQUEST_LIST)
    }
    pub fn relay_agent_info(&self) -> Option<Cow<'a, [u8]>> {
        self.option(code::RELAY_AGENT_INFO)
    }
    pub fn lease_time(&self) -> Option<u32> {
        match self.option_first(code::LEASE_TIME) {
            Some(&[a, b, c, d]) => Some(u32::from_be_bytes([a, b, c, d])),
            _ => None,
        }
    }

    fn ipv4_option(&self, code: u8) -> Option<Ipv4Addr> {
        match self.option_first(code) {
            Some(&[a, b, c, d]) => Some(Ipv4Addr::new(a, b, c, d)),
            _ => None,
        }
    }

    /// RFC 2131 §4.3.2: which state a REQUEST comes from.
    pub fn request_kind(&self) -> RequestKind {
        let ciaddr = self.ciaddr();
        match (
            self.server_id(),
            self.requested_ip(),
            ciaddr.is_unspecified(),
        ) {
            (Some(server_id), Some(requested), true) => RequestKind::Selecting {
                server_id,
                requested,
            },
            (None, Some(requested), true) => RequestKind::InitReboot { requested },
            // Some clients (notably older dhclient) also repeat option 50 when renewing; ciaddr
            // set is what RFC 2131 keys RENEWING/REBINDING on.
            (None, _, false) => RequestKind::RenewingOrRebinding { ciaddr },
            _ => RequestKind::Malformed,
        }
    }
}

fn until_nul(field: &[u8]) -> &[u8] {
    let end = field.iter().position(|&b| b == 0).unwrap_or(field.len());
    &field[..end]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn base() -> Vec<u8> {
        let mut b = vec![0u8; 240];
        b[0] = 1;
        b[1] = 1;
        b[2] = 6;
        b[4..8].copy_from_slice(&0xdead_beefu32.to_be_bytes());
        b[28..34].copy_from_slice(&[0, 0x15, 0xcf, 1, 2, 3]);
        b[236..240].copy_from_slice(&MAGIC);
        b
    }

    #[test]
    fn header_fields_and_simple_options() {
        let mut b = base();
        b.extend_from_slice(&[53, 1, 1, 50, 4, 10, 1, 0, 57, 61, 0, 255]);
        let m = Message::parse(&b).unwrap();
        assert_eq!(m.op(), Op::Request);
        assert_eq!(m.xid(), 0xdead_beef);
        assert_eq!(m.mac(), Some([0, 0x15, 0xcf, 1, 2, 3]));
        assert_eq!(m.message_type(), Ok(Some(MessageType::Discover)));
        assert_eq!(m.requested_ip(), Some(Ipv4Addr::new(10, 1, 0, 57)));
        // Empty option 61 counts as absent.
        assert!(m.client_id().is_none());
        assert_eq!(
            m.request_kind(),
            RequestKind::InitReboot {
                requested: Ipv4Addr::new(10, 1, 0, 57)
            }
        );
    }

    #[test]
    fn split_option_is_concatenated_across_fields_with_overload() {
        let mut b = base();
        // option 43 split: first part in options, second in `file` (overload = 1).
        b[108..113].copy_from_slice(&[43, 2, 0xcc, 0xdd, 255]);
        b.extend_from_slice(&[52, 1, 1, 43, 2, 0xaa, 0xbb, 255]);
        let m = Message::parse(&b).unwrap();
        assert_eq!(m.option(43).unwrap().as_ref(), &[0xaa, 0xbb, 0xcc, 0xdd]);
        assert!(m.file().is_none());
        assert!(m.sname().is_some());
    }

    #[test]
    fn malformed_inputs_are_typed_errors() {
        assert_eq!(
            Message::parse(&[1; 10]).unwrap_err(),
            ParseError::Truncated { len: 10, need: 240 }
        );
        let mut b = base();
        b[0] = 3;
        assert_eq!(Message::parse(&b).unwrap_err(), ParseError::BadOp { op: 3 });
        let mut b = base();
        b[2] = 17;
        assert_eq!(
            Message::parse(&b).unwrap_err(),
            ParseError::BadHlen { hlen: 17 }
        );
        let mut b = base();
        b[239] = 0;
        assert!(matches!(
            Message::parse(&b).unwrap_err(),
            ParseError::BadMagic { .. }
        ));
        let mut b = base();
        b.extend_from_slice(&[12, 9, b'a']);
        assert_eq!(
            Message::parse(&b).unwrap_err(),
            ParseError::OptionOverrun {
                code: 12,
                offset: 240,
                len: 9
            }
        );
        let mut b = base();
        b.push(12);
        assert_eq!(
            Message::parse(&b).unwrap_err(),
            ParseError::TruncatedOption {
                code: 12,
                offset: 240
            }
        );
        let mut b = base();
        b.extend_from_slice(&[52, 1, 4]);
        assert_eq!(Message::parse(&b).unwrap_err(), ParseError::BadOverload);
        let b = vec![1u8; MAX_LEN + 1];
        assert!(matches!(
            Message::parse(&b).unwrap_err(),
            ParseError::TooLong { .. }
        ));
    }

    #[test]
    fn overloaded_file_option_may_not_run_into_sname() {
        let mut b = base();
        b[230..233].copy_from_slice(&[12, 20, b'x']);
        b.extend_from_slice(&[52, 1, 1, 255]);
        assert!(matches!(
            Message::parse(&b).unwrap_err(),
            ParseError::OptionOverrun { code: 12, .. }
        ));
    }

    #[test]
    fn unknown_message_type_is_reported_by_value() {
        let mut b = base();
        b.extend_from_slice(&[53, 1, 42, 255]);
        assert_eq!(Message::parse(&b).unwrap().message_type(), Err(42));
    }

    #[test]
    fn request_kinds_follow_rfc2131_table() {
        let mut b = base();
        b.extend_from_slice(&[53, 1, 3, 54, 4, 10, 0, 0, 2, 50, 4, 10, 1, 0, 9, 255]);
        assert!(matches!(
            Message::parse(&b).unwrap().request_kind(),
            RequestKind::Selecting { .. }
        ));
        let mut b = base();
        b[12..16].copy_from_slice(&[10, 1, 0, 9]);
        b.extend_from_slice(&[53, 1, 3, 255]);
        assert!(matches!(
            Message::parse(&b).unwrap().request_kind(),
            RequestKind::RenewingOrRebinding { .. }
        ));
        let mut b = base();
        b.extend_from_slice(&[53, 1, 3, 54, 4, 10, 0, 0, 2, 255]);
        assert_eq!(
            Message::parse(&b).unwrap().request_kind(),
            RequestKind::Malformed
        );
    }
}
