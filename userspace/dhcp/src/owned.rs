//! An owned DHCP message: for tests, tools and the fuzz round-trip, not the hot path. Options are
//! kept as one logical value per code (RFC 3396 concatenated), in order of first appearance, so
//! `parse(encode(m)) == m` holds for every message whose option codes are distinct.

use std::net::Ipv4Addr;

use crate::code;
use crate::error::{EncodeError, ParseError};
use crate::message::Message;
use crate::writer::{Header, MessageWriter};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OwnedMessage {
    pub op: u8,
    pub htype: u8,
    pub hlen: u8,
    pub hops: u8,
    pub xid: u32,
    pub secs: u16,
    pub flags: u16,
    pub ciaddr: Ipv4Addr,
    pub yiaddr: Ipv4Addr,
    pub siaddr: Ipv4Addr,
    pub giaddr: Ipv4Addr,
    pub chaddr: [u8; 16],
    /// Up to the first NUL; empty when overloaded.
    pub sname: Vec<u8>,
    /// Up to the first NUL; empty when overloaded.
    pub file: Vec<u8>,
    /// One entry per option code, value concatenated across fragments; never 0, 52 or 255.
    pub options: Vec<(u8, Vec<u8>)>,
}

impl OwnedMessage {
    pub fn parse(buf: &[u8]) -> Result<Self, ParseError> {
        Message::parse(buf).map(|m| Self::from_view(&m))
    }

    pub fn from_view(m: &Message<'_>) -> Self {
        let mut options: Vec<(u8, Vec<u8>)> = Vec::new();
        for (c, v) in m.fragments() {
            match options.iter_mut().find(|(oc, _)| *oc == c) {
                Some((_, val)) => val.extend_from_slice(v),
                None => options.push((c, v.to_vec())),
            }
        }
        OwnedMessage {
            op: m.as_bytes()[0],
            htype: m.htype(),
            hlen: m.hlen(),
            hops: m.hops(),
            xid: m.xid(),
            secs: m.secs(),
            flags: m.flags(),
            ciaddr: m.ciaddr(),
            yiaddr: m.yiaddr(),
            siaddr: m.siaddr(),
            giaddr: m.giaddr(),
            chaddr: *m.chaddr_field(),
            sname: m.sname().unwrap_or_default().to_vec(),
            file: m.file().unwrap_or_default().to_vec(),
            options,
        }
    }

    pub fn option(&self, code: u8) -> Option<&[u8]> {
        self.options
            .iter()
            .find(|(c, _)| *c == code)
            .map(|(_, v)| v.as_slice())
    }

    /// Encodes without overload (everything in the options field) and with no size limit
    /// beyond the parser's own.
    pub fn encode(&self, out: &mut Vec<u8>) -> Result<usize, EncodeError> {
        let header = Header {
            op: self.op,
            htype: self.htype,
            hlen: self.hlen,
            hops: self.hops,
            xid: self.xid,
            secs: self.secs,
            flags: self.flags,
            ciaddr: self.ciaddr,
            yiaddr: self.yiaddr,
            siaddr: self.siaddr,
            giaddr: self.giaddr,
            chaddr: self.chaddr,
            sname: &self.sname,
            file: &self.file,
        };
        let mut w = MessageWriter::new(out, &header, crate::message::MAX_LEN)?;
        for (c, v) in &self.options {
            if *c == code::OVERLOAD {
                return Err(EncodeError::ReservedCode { code: *c });
            }
            w.option(*c, v)?;
        }
        w.finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn arb_message() -> impl Strategy<Value = OwnedMessage> {
        let header = (
            1u8..=2,
            any::<u8>(),
            0u8..=16,
            any::<u8>(),
            any::<u32>(),
            any::<u16>(),
            any::<u16>(),
            any::<[u8; 4]>(),
            any::<[u8; 4]>(),
            any::<[u8; 16]>(),
        );
        let text = |max| proptest::collection::vec(1u8..=255, 0..max);
        let options = proptest::collection::btree_map(
            (1u8..=254).prop_filter("overload is structural", |c| *c != 52),
            proptest::collection::vec(any::<u8>(), 0..400),
            0..12,
        );
        (header, text(63), text(127), options).prop_map(|(h, sname, file, options)| OwnedMessage {
            op: h.0,
            htype: h.1,
            hlen: h.2,
            hops: h.3,
            xid: h.4,
            secs: h.5,
            flags: h.6,
            ciaddr: h.7.into(),
            yiaddr: h.8.into(),
            siaddr: Ipv4Addr::new(10, 0, 0, 10),
            giaddr: Ipv4Addr::new(10, 1, 0, 1),
            chaddr: h.9,
            sname,
            file,
            options: options.into_iter().collect(),
        })
    }

    proptest! {
        #[test]
        fn encode_then_parse_is_identity(m in arb_message()) {
            let mut buf = Vec::new();
            prop_assume!(m.encode(&mut buf).is_ok());
            prop_assert_eq!(OwnedMessage::parse(&buf).unwrap(), m);
        }

        #[test]
        fn parse_never_panics_and_reencodes_stably(bytes in proptest::collection::vec(any::<u8>(), 0..700)) {
            if let Ok(m) = OwnedMessage::parse(&bytes) {
                let mut buf = Vec::new();
                if m.encode(&mut buf).is_ok() {
                    prop_assert_eq!(OwnedMessage::parse(&buf).unwrap(), m);
                }
            }
        }
    }
}
