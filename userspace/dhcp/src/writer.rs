//! Writes DHCP messages into a caller-owned, reused buffer: the hot path allocates nothing once
//! the buffer has grown. Options longer than 255 bytes are split per RFC 3396.

use std::net::Ipv4Addr;

use crate::code;
use crate::error::EncodeError;
use crate::message::{MAGIC, MIN_LEN};

/// Replies are padded to this many bytes: some BOOTP-era clients and relays drop shorter ones.
pub const BOOTP_MIN_LEN: usize = 300;

/// The fixed BOOTP header of a message to write.
#[derive(Debug, Clone)]
pub struct Header<'a> {
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
    pub sname: &'a [u8],
    pub file: &'a [u8],
}

impl Header<'_> {
    /// A BOOTREPLY header with every field zero except those given.
    pub fn reply(xid: u32, chaddr: [u8; 16], htype: u8, hlen: u8) -> Header<'static> {
        Header {
            op: 2,
            htype,
            hlen,
            hops: 0,
            xid,
            secs: 0,
            flags: 0,
            ciaddr: Ipv4Addr::UNSPECIFIED,
            yiaddr: Ipv4Addr::UNSPECIFIED,
            siaddr: Ipv4Addr::UNSPECIFIED,
            giaddr: Ipv4Addr::UNSPECIFIED,
            chaddr,
            sname: &[],
            file: &[],
        }
    }
}

/// Builds one message. `finish` adds END and padding and checks the size limit.
#[derive(Debug)]
pub struct MessageWriter<'b> {
    buf: &'b mut Vec<u8>,
    max_len: usize,
}

impl<'b> MessageWriter<'b> {
    /// Clears `buf` and writes the header and magic cookie. `max_len` is the largest message the
    /// receiver accepts (576 − 28 unless the client sent option 57).
    pub fn new(
        buf: &'b mut Vec<u8>,
        header: &Header<'_>,
        max_len: usize,
    ) -> Result<Self, EncodeError> {
        if header.sname.len() > 64 {
            return Err(EncodeError::FieldTooLong {
                field: "sname",
                len: header.sname.len(),
                max: 64,
            });
        }
        if header.file.len() > 128 {
            return Err(EncodeError::FieldTooLong {
                field: "file",
                len: header.file.len(),
                max: 128,
            });
        }
        buf.clear();
        buf.resize(MIN_LEN, 0);
        buf[0] = header.op;
        buf[1] = header.htype;
        buf[2] = header.hlen;
        buf[3] = header.hops;
        buf[4..8].copy_from_slice(&header.xid.to_be_bytes());
        buf[8..10].copy_from_slice(&header.secs.to_be_bytes());
        buf[10..12].copy_from_slice(&header.flags.to_be_bytes());
        buf[12..16].copy_from_slice(&header.ciaddr.octets());
        buf[16..20].copy_from_slice(&header.yiaddr.octets());
        buf[20..24].copy_from_slice(&header.siaddr.octets());
        buf[24..28].copy_from_slice(&header.giaddr.octets());
        buf[28..44].copy_from_slice(&header.chaddr);
        buf[44..44 + header.sname.len()].copy_from_slice(header.sname);
        buf[108..108 + header.file.len()].copy_from_slice(header.file);
        buf[236..240].copy_from_slice(&MAGIC);
        Ok(MessageWriter { buf, max_len })
    }

    /// Appends an option, split into 255-byte fragments when longer (RFC 3396). An empty value
    /// is written as a zero-length option.
    pub fn option(&mut self, code: u8, value: &[u8]) -> Result<&mut Self, EncodeError> {
        if code == code::PAD || code == code::END {
            return Err(EncodeError::ReservedCode { code });
        }
        if value.is_empty() {
            self.buf.extend_from_slice(&[code, 0]);
        }
        for chunk in value.chunks(255) {
            // chunks(255) guarantees the length fits a u8.
            self.buf.extend_from_slice(&[code, chunk.len() as u8]);
            self.buf.extend_from_slice(chunk);
        }
        Ok(self)
    }

    /// Appends an option whose value `fill` writes in place (no temporary buffer). Split per
    /// RFC 3396 afterwards if it came out longer than 255 bytes.
    pub fn option_with(
        &mut self,
        code: u8,
        fill: impl FnOnce(&mut Vec<u8>),
    ) -> Result<&mut Self, EncodeError> {
        if code == code::PAD || code == code::END {
            return Err(EncodeError::ReservedCode { code });
        }
        let at = self.buf.len();
        self.buf.extend_from_slice(&[code, 0]);
        fill(self.buf);
        let len = self.buf.len() - at - 2;
        if len <= 255 {
            self.buf[at + 1] = len as u8;
        } else {
            let value = self.buf.split_off(at + 2);
            self.buf.truncate(at);
            self.option(code, &value)?;
        }
        Ok(self)
    }

    pub fn ipv4(&mut self, code: u8, addr: Ipv4Addr) -> Result<&mut Self, EncodeError> {
        self.option(code, &addr.octets())
    }

    pub fn ipv4_list(&mut self, code: u8, addrs: &[Ipv4Addr]) -> Result<&mut Self, EncodeError> {
        if addrs.is_empty() {
            return Ok(self);
        }
        self.option_with(code, |b| {
            addrs.iter().for_each(|a| b.extend_from_slice(&a.octets()))
        })
    }

    pub fn u32(&mut self, code: u8, v: u32) -> Result<&mut Self, EncodeError> {
        self.option(code, &v.to_be_bytes())
    }

    /// Appends options already encoded as `code len value` runs (e.g. precomputed per policy).
    /// The caller vouches for their form; the size limit is still checked by `finish`.
    pub fn raw(&mut self, options: &[u8]) -> &mut Self {
        self.buf.extend_from_slice(options);
        self
    }

    /// Bytes written so far, without END or padding.
    pub fn len(&self) -> usize {
        self.buf.len()
    }

    pub fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }

    /// Writes END, pads to [`BOOTP_MIN_LEN`], and returns the length.
    pub fn finish(self) -> Result<usize, EncodeError> {
        self.buf.push(code::END);
        if self.buf.len() < BOOTP_MIN_LEN {
            self.buf.resize(BOOTP_MIN_LEN, 0);
        }
        if self.buf.len() > self.max_len {
            return Err(EncodeError::TooLarge {
                len: self.buf.len(),
                max: self.max_len,
            });
        }
        Ok(self.buf.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Message;

    #[test]
    fn writes_a_parseable_padded_reply() {
        let mut buf = Vec::new();
        let mut h = Header::reply(7, [0; 16], 1, 6);
        h.yiaddr = Ipv4Addr::new(10, 1, 0, 9);
        h.file = b"cm/001122334455.cfg";
        let mut w = MessageWriter::new(&mut buf, &h, 548).unwrap();
        w.option(53, &[2])
            .unwrap()
            .ipv4(54, Ipv4Addr::new(10, 0, 0, 2))
            .unwrap();
        assert_eq!(w.finish().unwrap(), BOOTP_MIN_LEN);
        let m = Message::parse(&buf).unwrap();
        assert_eq!(m.yiaddr(), Ipv4Addr::new(10, 1, 0, 9));
        assert_eq!(m.file().unwrap(), b"cm/001122334455.cfg");
        assert_eq!(m.server_id(), Some(Ipv4Addr::new(10, 0, 0, 2)));
    }

    #[test]
    fn long_options_are_split_and_rejoined() {
        let mut buf = Vec::new();
        let h = Header::reply(7, [0; 16], 1, 6);
        let mut w = MessageWriter::new(&mut buf, &h, 4000).unwrap();
        let long: Vec<u8> = (0..600u16).map(|i| i as u8).collect();
        w.option_with(43, |b| b.extend_from_slice(&long)).unwrap();
        w.finish().unwrap();
        let m = Message::parse(&buf).unwrap();
        assert_eq!(m.fragments().filter(|(c, _)| *c == 43).count(), 3);
        assert_eq!(m.option(43).unwrap().as_ref(), long.as_slice());
    }

    #[test]
    fn size_limit_is_enforced() {
        let mut buf = Vec::new();
        let h = Header::reply(7, [0; 16], 1, 6);
        let mut w = MessageWriter::new(&mut buf, &h, 548).unwrap();
        w.option(43, &[0; 255])
            .unwrap()
            .option(43, &[0; 100])
            .unwrap();
        assert!(matches!(w.finish(), Err(EncodeError::TooLarge { .. })));
        let mut h = Header::reply(7, [0; 16], 1, 6);
        h.file = &[b'a'; 129];
        assert!(MessageWriter::new(&mut buf, &h, 548).is_err());
    }
}
