//! BER for TLV 11 (SNMP MIB object): one `VarBind ::= SEQUENCE { name OID, value }`.
//!
//! Decoding is lenient where BER is (long-form lengths of any width), and lossless where a
//! value does not fit its typed form: an INTEGER that is not minimally encoded, an IpAddress
//! that is not 4 bytes, or an unknown tag all become [`SnmpValue::Other`] with the raw content.
//! Encoding always writes the minimal form. Callers that must reproduce input bytes (the text
//! printer) therefore check `encode(decode(x)) == x` and fall back to hex when it is not.

use thiserror::Error;

pub const TAG_INTEGER: u8 = 0x02;
pub const TAG_OCTET_STRING: u8 = 0x04;
pub const TAG_NULL: u8 = 0x05;
pub const TAG_OID: u8 = 0x06;
pub const TAG_SEQUENCE: u8 = 0x30;
pub const TAG_IP_ADDRESS: u8 = 0x40;
pub const TAG_COUNTER32: u8 = 0x41;
pub const TAG_GAUGE32: u8 = 0x42;
pub const TAG_TIMETICKS: u8 = 0x43;
pub const TAG_OPAQUE: u8 = 0x44;
pub const TAG_COUNTER64: u8 = 0x46;

/// Why bytes are not a VarBind (or an OID cannot be encoded).
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum BerError {
    #[error("BER element cut off at offset {offset}")]
    Truncated { offset: usize },
    #[error("unsupported BER length form 0x{byte:02x} at offset {offset}")]
    BadLength { offset: usize, byte: u8 },
    #[error("expected tag 0x{expected:02x}, found 0x{found:02x}")]
    UnexpectedTag { expected: u8, found: u8 },
    #[error("multi-byte BER tags are not supported (0x{tag:02x})")]
    HighTagNumber { tag: u8 },
    #[error("{count} bytes after the end of the VarBind")]
    TrailingBytes { count: usize },
    #[error("malformed OBJECT IDENTIFIER encoding")]
    BadOid,
    #[error("OBJECT IDENTIFIER {oid} cannot be encoded: needs at least two arcs, the first 0..=2")]
    UnencodableOid { oid: String },
}

/// One SNMP variable binding: object name and value.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct VarBind {
    pub oid: Vec<u32>,
    pub value: SnmpValue,
}

/// SNMP ObjectSyntax values, typed where the encoding is canonical.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum SnmpValue {
    /// INTEGER (Integer32 and wider, up to 8 content bytes), minimally encoded.
    Integer(i64),
    OctetString(Vec<u8>),
    Null,
    ObjectId(Vec<u32>),
    IpAddress([u8; 4]),
    Counter32(u32),
    /// Gauge32, also known as Unsigned32 (same tag).
    Gauge32(u32),
    TimeTicks(u32),
    Opaque(Vec<u8>),
    Counter64(u64),
    /// Anything else, kept as tag and content bytes so it re-encodes as it was.
    Other {
        tag: u8,
        content: Vec<u8>,
    },
}

impl VarBind {
    /// Decode one VarBind filling all of `bytes`.
    pub fn decode(bytes: &[u8]) -> Result<VarBind, BerError> {
        let mut outer = Reader { bytes, pos: 0 };
        let seq = outer.expect(TAG_SEQUENCE)?;
        if outer.pos != bytes.len() {
            return Err(BerError::TrailingBytes {
                count: bytes.len() - outer.pos,
            });
        }
        let mut inner = Reader { bytes: seq, pos: 0 };
        let oid = decode_oid(inner.expect(TAG_OID)?).ok_or(BerError::BadOid)?;
        let (tag, content) = inner.element()?;
        if inner.pos != seq.len() {
            return Err(BerError::TrailingBytes {
                count: seq.len() - inner.pos,
            });
        }
        Ok(VarBind {
            oid,
            value: SnmpValue::from_tag(tag, content),
        })
    }

    /// Minimal BER encoding of the VarBind.
    pub fn encode(&self) -> Result<Vec<u8>, BerError> {
        encode_varbind(&self.oid, &self.value)
    }
}

impl SnmpValue {
    fn from_tag(tag: u8, content: &[u8]) -> SnmpValue {
        let typed = match tag {
            TAG_INTEGER => decode_signed(content).map(SnmpValue::Integer),
            TAG_OCTET_STRING => Some(SnmpValue::OctetString(content.to_vec())),
            TAG_NULL => content.is_empty().then_some(SnmpValue::Null),
            TAG_OID => decode_oid(content).map(SnmpValue::ObjectId),
            TAG_IP_ADDRESS => <[u8; 4]>::try_from(content).ok().map(SnmpValue::IpAddress),
            TAG_COUNTER32 => decode_unsigned32(content).map(SnmpValue::Counter32),
            TAG_GAUGE32 => decode_unsigned32(content).map(SnmpValue::Gauge32),
            TAG_TIMETICKS => decode_unsigned32(content).map(SnmpValue::TimeTicks),
            TAG_OPAQUE => Some(SnmpValue::Opaque(content.to_vec())),
            TAG_COUNTER64 => decode_unsigned(content, 8).map(SnmpValue::Counter64),
            _ => None,
        };
        typed.unwrap_or_else(|| SnmpValue::Other {
            tag,
            content: content.to_vec(),
        })
    }

    /// Tag and content bytes, borrowed where the value holds them.
    fn content(&self) -> Result<(u8, Content<'_>), BerError> {
        Ok(match self {
            SnmpValue::Integer(v) => (TAG_INTEGER, Content::Int(signed_bytes(*v))),
            SnmpValue::OctetString(b) => (TAG_OCTET_STRING, Content::Bytes(b)),
            SnmpValue::Null => (TAG_NULL, Content::Bytes(&[])),
            SnmpValue::ObjectId(oid) => (TAG_OID, Content::Owned(encode_oid(oid)?)),
            SnmpValue::IpAddress(a) => (TAG_IP_ADDRESS, Content::Bytes(a)),
            SnmpValue::Counter32(v) => (TAG_COUNTER32, Content::Int(unsigned_bytes(u64::from(*v)))),
            SnmpValue::Gauge32(v) => (TAG_GAUGE32, Content::Int(unsigned_bytes(u64::from(*v)))),
            SnmpValue::TimeTicks(v) => (TAG_TIMETICKS, Content::Int(unsigned_bytes(u64::from(*v)))),
            SnmpValue::Opaque(b) => (TAG_OPAQUE, Content::Bytes(b)),
            SnmpValue::Counter64(v) => (TAG_COUNTER64, Content::Int(unsigned_bytes(*v))),
            SnmpValue::Other { tag, content } => (*tag, Content::Bytes(content)),
        })
    }
}

/// [`VarBind::encode`] of a VarBind in parts, for callers that hold the OID in a buffer.
pub(crate) fn encode_varbind(oid: &[u32], value: &SnmpValue) -> Result<Vec<u8>, BerError> {
    let first = first_subid(oid)?;
    // The OID content first (on the stack when short, as OIDs are), so that all lengths are
    // known and the bytes go into one buffer of the final size.
    let mut stack = [0u8; SHORT_OID_BYTES];
    let long;
    let oid_bytes = if oid.len() <= SHORT_OID_ARCS {
        let len = write_oid(&mut stack, first, &oid[2..]);
        &stack[..len]
    } else {
        long = encode_oid(oid)?;
        &long[..]
    };
    let (tag, content) = value.content()?;
    let content = content.as_slice();
    let body_len = element_len(oid_bytes.len()) + element_len(content.len());
    let mut out = Vec::with_capacity(element_len(body_len));
    put_header(&mut out, TAG_SEQUENCE, body_len);
    put_header(&mut out, TAG_OID, oid_bytes.len());
    out.extend_from_slice(oid_bytes);
    put_header(&mut out, tag, content.len());
    out.extend_from_slice(content);
    Ok(out)
}

/// OIDs of up to this many arcs are encoded in a stack buffer of [`SHORT_OID_BYTES`]: the
/// first subidentifier (two arcs) takes at most 5 bytes, as does every arc after it.
const SHORT_OID_ARCS: usize = 24;
const SHORT_OID_BYTES: usize = 5 * (SHORT_OID_ARCS - 1);

/// OID content into `buf` (at least 5 bytes per subidentifier); returns its length.
fn write_oid(buf: &mut [u8], first: u64, rest: &[u32]) -> usize {
    let mut at = write_base128(buf, 0, first);
    for &arc in rest {
        at = write_base128(buf, at, u64::from(arc));
    }
    at
}

/// `v` in base 128 at `buf[at..]`; returns the end.
fn write_base128(buf: &mut [u8], at: usize, v: u64) -> usize {
    if v < 0x80 {
        buf[at] = v as u8; // < 0x80, fits
        return at + 1;
    }
    let groups = base128_len(v);
    for i in 0..groups {
        let bits = ((v >> (7 * (groups - 1 - i))) & 0x7f) as u8; // masked to 7 bits
        buf[at + i] = if i + 1 == groups { bits } else { bits | 0x80 };
    }
    at + groups
}

/// Content bytes of a value being encoded.
enum Content<'a> {
    Bytes(&'a [u8]),
    Int(IntBytes),
    Owned(Vec<u8>),
}

impl Content<'_> {
    fn as_slice(&self) -> &[u8] {
        match self {
            Content::Bytes(b) => b,
            Content::Int(i) => i.as_slice(),
            Content::Owned(v) => v,
        }
    }
}

/// The content of an INTEGER-style value: `buf[start..]`, at most 9 bytes.
struct IntBytes {
    buf: [u8; 9],
    start: usize,
}

impl IntBytes {
    fn as_slice(&self) -> &[u8] {
        &self.buf[self.start..]
    }

    /// `be` in `buf[1..]`, after a zero byte.
    fn new(be: [u8; 8]) -> IntBytes {
        let mut buf = [0; 9];
        buf[1..].copy_from_slice(&be);
        IntBytes { buf, start: 1 }
    }
}

/// A cursor over BER elements.
struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn byte(&mut self) -> Result<u8, BerError> {
        let b = *self
            .bytes
            .get(self.pos)
            .ok_or(BerError::Truncated { offset: self.pos })?;
        self.pos += 1;
        Ok(b)
    }

    /// Next element as (tag, content).
    fn element(&mut self) -> Result<(u8, &'a [u8]), BerError> {
        let tag = self.byte()?;
        if tag & 0x1f == 0x1f {
            return Err(BerError::HighTagNumber { tag });
        }
        let at = self.pos;
        let first = self.byte()?;
        let len = match first {
            0..=0x7f => usize::from(first),
            0x81..=0x84 => {
                let mut len = 0usize;
                for _ in 0..(first & 0x7f) {
                    len = len << 8 | usize::from(self.byte()?);
                }
                len
            }
            _ => {
                return Err(BerError::BadLength {
                    offset: at,
                    byte: first,
                });
            }
        };
        let end = self.pos.checked_add(len).filter(|&e| e <= self.bytes.len());
        let end = end.ok_or(BerError::Truncated { offset: self.pos })?;
        let content = &self.bytes[self.pos..end];
        self.pos = end;
        Ok((tag, content))
    }

    fn expect(&mut self, expected: u8) -> Result<&'a [u8], BerError> {
        let (found, content) = self.element()?;
        if found != expected {
            return Err(BerError::UnexpectedTag { expected, found });
        }
        Ok(content)
    }
}

/// Append tag and minimal length.
#[inline]
fn put_header(out: &mut Vec<u8>, tag: u8, len: usize) {
    out.push(tag);
    if len < 0x80 {
        out.push(len as u8); // < 0x80, fits
    } else {
        let be = len.to_be_bytes();
        let skip = be.iter().take_while(|&&b| b == 0).count();
        out.push(0x80 | (be.len() - skip) as u8); // at most 8 length bytes
        out.extend_from_slice(&be[skip..]);
    }
}

/// Bytes of an element (tag, minimal length, content) with `len` content bytes.
fn element_len(len: usize) -> usize {
    let len_bytes = if len < 0x80 {
        0
    } else {
        (usize::BITS - len.leading_zeros()).div_ceil(8) as usize
    };
    2 + len_bytes + len
}

/// OID content bytes to arcs; `None` unless minimally encoded and every arc fits in u32.
pub fn decode_oid(content: &[u8]) -> Option<Vec<u32>> {
    let mut subids = Vec::new();
    let mut acc: u64 = 0;
    let mut fresh = true;
    for &b in content {
        if fresh && b == 0x80 {
            return None; // leading zero group: not minimal
        }
        acc = acc << 7 | u64::from(b & 0x7f);
        if acc > u64::from(u32::MAX) + 80 {
            return None;
        }
        fresh = b & 0x80 == 0;
        if fresh {
            subids.push(acc);
            acc = 0;
        }
    }
    if !fresh || subids.is_empty() {
        return None;
    }
    let first = subids[0];
    let (a, b) = match first {
        0..=39 => (0, first),
        40..=79 => (1, first - 40),
        _ => (2, first - 80),
    };
    let mut arcs = vec![a, u32::try_from(b).ok()?];
    for &s in &subids[1..] {
        arcs.push(u32::try_from(s).ok()?);
    }
    Some(arcs)
}

/// Arcs to OID content bytes.
pub fn encode_oid(arcs: &[u32]) -> Result<Vec<u8>, BerError> {
    let first = first_subid(arcs)?;
    let mut out = Vec::with_capacity(oid_content_len(first, &arcs[2..]));
    put_oid(&mut out, first, &arcs[2..]);
    Ok(out)
}

/// A complete BER OID element (tag 0x06, length, content), as in TLV 10 and TLV 38.6.
pub fn encode_oid_element(arcs: &[u32]) -> Result<Vec<u8>, BerError> {
    let first = first_subid(arcs)?;
    let len = oid_content_len(first, &arcs[2..]);
    let mut out = Vec::with_capacity(element_len(len));
    put_header(&mut out, TAG_OID, len);
    put_oid(&mut out, first, &arcs[2..]);
    Ok(out)
}

/// The first two arcs as one subidentifier, if the OID can be encoded (then it has two or more
/// arcs, so `&arcs[2..]` holds).
fn first_subid(arcs: &[u32]) -> Result<u64, BerError> {
    match arcs {
        [a, b, ..] if *a <= 2 && (*a == 2 || *b < 40) => Ok(u64::from(*a) * 40 + u64::from(*b)),
        _ => Err(BerError::UnencodableOid {
            oid: arcs
                .iter()
                .map(u32::to_string)
                .collect::<Vec<_>>()
                .join("."),
        }),
    }
}

/// Length of OID content: the first subidentifier and the arcs after the first two.
fn oid_content_len(first: u64, rest: &[u32]) -> usize {
    // Branch-free per arc (one byte per started 7 bits), so the loop vectorizes.
    let extra: usize = rest
        .iter()
        .map(|&a| {
            usize::from(a >= 1 << 7)
                + usize::from(a >= 1 << 14)
                + usize::from(a >= 1 << 21)
                + usize::from(a >= 1 << 28)
        })
        .sum();
    base128_len(first) + rest.len() + extra
}

/// Append OID content: the first subidentifier and the arcs after the first two.
#[inline]
fn put_oid(out: &mut Vec<u8>, first: u64, rest: &[u32]) {
    put_base128(out, first);
    for &arc in rest {
        put_base128(out, u64::from(arc));
    }
}

/// Parse a complete BER OID element at the start of `bytes`; returns arcs and bytes used.
pub fn decode_oid_element(bytes: &[u8]) -> Option<(Vec<u32>, usize)> {
    let mut r = Reader { bytes, pos: 0 };
    let content = r.expect(TAG_OID).ok()?;
    Some((decode_oid(content)?, r.pos))
}

#[inline]
fn base128_len(v: u64) -> usize {
    (64 - v.leading_zeros()).div_ceil(7).max(1) as usize
}

#[inline]
fn put_base128(out: &mut Vec<u8>, v: u64) {
    if v < 0x80 {
        out.push(v as u8); // < 0x80, fits
        return;
    }
    let groups = base128_len(v);
    for i in (0..groups).rev() {
        let bits = ((v >> (7 * i)) & 0x7f) as u8; // masked to 7 bits
        out.push(if i == 0 { bits } else { bits | 0x80 });
    }
}

/// Two's complement content, minimal, at most 8 bytes.
fn decode_signed(content: &[u8]) -> Option<i64> {
    if content.is_empty() || content.len() > 8 || !is_minimal(content) {
        return None;
    }
    let fill = if content[0] & 0x80 != 0 { 0xff } else { 0 };
    let mut be = [fill; 8];
    be[8 - content.len()..].copy_from_slice(content);
    Some(i64::from_be_bytes(be))
}

/// Non-negative INTEGER-style content (Counter, Gauge, TimeTicks), minimal, fitting `max_bytes`.
fn decode_unsigned(content: &[u8], max_bytes: usize) -> Option<u64> {
    if content.is_empty() || !is_minimal(content) || content[0] & 0x80 != 0 {
        return None;
    }
    let digits = if content[0] == 0 && content.len() > 1 {
        &content[1..]
    } else {
        content
    };
    if digits.len() > max_bytes {
        return None;
    }
    Some(digits.iter().fold(0u64, |acc, &b| acc << 8 | u64::from(b)))
}

fn decode_unsigned32(content: &[u8]) -> Option<u32> {
    decode_unsigned(content, 4).and_then(|v| u32::try_from(v).ok())
}

/// BER forbids a first byte that only repeats the sign of the next.
fn is_minimal(content: &[u8]) -> bool {
    match content {
        [0x00, next, ..] => next & 0x80 != 0,
        [0xff, next, ..] => next & 0x80 == 0,
        _ => true,
    }
}

/// Minimal two's complement content of `v`.
fn signed_bytes(v: i64) -> IntBytes {
    let be = v.to_be_bytes();
    let mut start = 0;
    while start < 7 && is_redundant(be[start], be[start + 1]) {
        start += 1;
    }
    let mut out = IntBytes::new(be);
    out.start = 1 + start;
    out
}

#[cfg(test)]
fn encode_signed(v: i64) -> Vec<u8> {
    signed_bytes(v).as_slice().to_vec()
}

fn is_redundant(first: u8, next: u8) -> bool {
    (first == 0x00 && next & 0x80 == 0) || (first == 0xff && next & 0x80 != 0)
}

/// Minimal non-negative INTEGER-style content of `v`: a zero byte before a high first bit.
fn unsigned_bytes(v: u64) -> IntBytes {
    let be = v.to_be_bytes();
    let skip = be.iter().take_while(|&&b| b == 0).count().min(7);
    let mut out = IntBytes::new(be);
    // buf[1 + skip] is be[skip]; buf[skip] is a zero (be[skip - 1], or the leading pad byte).
    out.start = if be[skip] & 0x80 != 0 { skip } else { 1 + skip };
    out
}

#[cfg(test)]
fn encode_unsigned(v: u64) -> Vec<u8> {
    unsigned_bytes(v).as_slice().to_vec()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn roundtrip(hex_bytes: &str) -> VarBind {
        let bytes = crate::hex::decode(hex_bytes).unwrap();
        let vb = VarBind::decode(&bytes).unwrap();
        assert_eq!(vb.encode().unwrap(), bytes, "{vb:?}");
        vb
    }

    #[test]
    fn spec_examples() {
        // docsDevFilterIpDefault.0 = INTEGER 1 and pktcMtaDevEnabled.0 = 1 (140 is 81 0c).
        let vb = roundtrip("300f060a2b060102014501060300020101");
        assert_eq!(vb.oid, [1, 3, 6, 1, 2, 1, 69, 1, 6, 3, 0]);
        assert_eq!(vb.value, SnmpValue::Integer(1));
        let vb = roundtrip("3010060b2b06010201810c01010600020101");
        assert_eq!(vb.oid, [1, 3, 6, 1, 2, 1, 140, 1, 1, 6, 0]);
    }

    #[test]
    fn integers_minimal_and_signed() {
        for v in [
            0i64,
            1,
            -1,
            127,
            128,
            -128,
            -129,
            255,
            256,
            i64::from(i32::MAX),
            i64::MIN,
            i64::MAX,
        ] {
            let enc = encode_signed(v);
            assert_eq!(decode_signed(&enc), Some(v), "{v}");
        }
        assert_eq!(encode_signed(128), [0x00, 0x80]);
        assert_eq!(decode_signed(&[0x00, 0x05]), None, "non-minimal stays raw");
    }

    #[test]
    fn unsigned_high_bit_gets_a_zero_byte() {
        assert_eq!(encode_unsigned(0x8000_0000), [0, 0x80, 0, 0, 0]);
        assert_eq!(decode_unsigned32(&[0, 0x80, 0, 0, 0]), Some(0x8000_0000));
        assert_eq!(decode_unsigned32(&[0x80]), None);
    }

    #[test]
    fn non_minimal_integer_is_kept_raw() {
        let bytes = crate::hex::decode("300706012b0202000a").unwrap();
        let vb = VarBind::decode(&bytes).unwrap();
        assert_eq!(
            vb.value,
            SnmpValue::Other {
                tag: 2,
                content: vec![0, 10]
            }
        );
        assert_eq!(vb.encode().unwrap(), bytes);
    }

    #[test]
    fn long_form_lengths() {
        let vb = VarBind {
            oid: vec![1, 3, 6],
            value: SnmpValue::OctetString(vec![b'a'; 300]),
        };
        let enc = vb.encode().unwrap();
        assert_eq!(&enc[..4], &[0x30, 0x82, 0x01, 0x34]);
        assert_eq!(VarBind::decode(&enc).unwrap(), vb);
    }

    #[test]
    fn oid_edges() {
        assert_eq!(encode_oid(&[2, 999, 3]).unwrap(), [0x88, 0x37, 0x03]);
        assert_eq!(decode_oid(&[0x88, 0x37, 0x03]).unwrap(), [2, 999, 3]);
        assert!(encode_oid(&[1]).is_err());
        assert!(encode_oid(&[1, 40]).is_err());
        assert_eq!(decode_oid(&[0x80, 0x01]), None);
        assert_eq!(decode_oid(&[0x2b, 0x86]), None);
    }

    // The encoder as it was before it wrote into one buffer: element by element, each a Vec.

    fn reference_element(out: &mut Vec<u8>, tag: u8, content: &[u8]) {
        out.push(tag);
        let len = content.len();
        if len < 0x80 {
            out.push(len as u8);
        } else {
            let be = len.to_be_bytes();
            let skip = be.iter().take_while(|&&b| b == 0).count();
            out.push(0x80 | (be.len() - skip) as u8);
            out.extend_from_slice(&be[skip..]);
        }
        out.extend_from_slice(content);
    }

    fn reference_oid(arcs: &[u32]) -> Result<Vec<u8>, BerError> {
        let (a, b) = match arcs {
            [a, b, ..] if *a <= 2 && (*a == 2 || *b < 40) => (*a, *b),
            _ => {
                return Err(BerError::UnencodableOid {
                    oid: arcs
                        .iter()
                        .map(u32::to_string)
                        .collect::<Vec<_>>()
                        .join("."),
                });
            }
        };
        let mut out = Vec::new();
        for v in std::iter::once(u64::from(a) * 40 + u64::from(b))
            .chain(arcs[2..].iter().map(|&x| u64::from(x)))
        {
            let groups = (64 - v.leading_zeros()).div_ceil(7).max(1);
            for i in (0..groups).rev() {
                let bits = ((v >> (7 * i)) & 0x7f) as u8;
                out.push(if i == 0 { bits } else { bits | 0x80 });
            }
        }
        Ok(out)
    }

    fn reference_unsigned(v: u64) -> Vec<u8> {
        let be = v.to_be_bytes();
        let skip = be.iter().take_while(|&&b| b == 0).count().min(7);
        let mut out = Vec::new();
        if be[skip] & 0x80 != 0 {
            out.push(0);
        }
        out.extend_from_slice(&be[skip..]);
        out
    }

    fn reference_encode(vb: &VarBind) -> Result<Vec<u8>, BerError> {
        let mut body = Vec::new();
        reference_element(&mut body, TAG_OID, &reference_oid(&vb.oid)?);
        let (tag, content) = match &vb.value {
            SnmpValue::Integer(v) => {
                let be = v.to_be_bytes();
                let mut start = 0;
                while start < 7 && is_redundant(be[start], be[start + 1]) {
                    start += 1;
                }
                (TAG_INTEGER, be[start..].to_vec())
            }
            SnmpValue::OctetString(b) => (TAG_OCTET_STRING, b.clone()),
            SnmpValue::Null => (TAG_NULL, Vec::new()),
            SnmpValue::ObjectId(o) => (TAG_OID, reference_oid(o)?),
            SnmpValue::IpAddress(a) => (TAG_IP_ADDRESS, a.to_vec()),
            SnmpValue::Counter32(v) => (TAG_COUNTER32, reference_unsigned(u64::from(*v))),
            SnmpValue::Gauge32(v) => (TAG_GAUGE32, reference_unsigned(u64::from(*v))),
            SnmpValue::TimeTicks(v) => (TAG_TIMETICKS, reference_unsigned(u64::from(*v))),
            SnmpValue::Opaque(b) => (TAG_OPAQUE, b.clone()),
            SnmpValue::Counter64(v) => (TAG_COUNTER64, reference_unsigned(*v)),
            SnmpValue::Other { tag, content } => (*tag, content.clone()),
        };
        reference_element(&mut body, tag, &content);
        let mut out = Vec::new();
        reference_element(&mut out, TAG_SEQUENCE, &body);
        Ok(out)
    }

    /// The largest OIDs encoded on the stack, and the smallest that are not.
    #[test]
    fn short_oid_buffer_bounds() {
        for arcs in [SHORT_OID_ARCS - 1, SHORT_OID_ARCS, SHORT_OID_ARCS + 1] {
            let mut oid = vec![u32::MAX; arcs];
            oid[0] = 2;
            for value in [SnmpValue::Null, SnmpValue::ObjectId(oid.clone())] {
                let vb = VarBind {
                    oid: oid.clone(),
                    value,
                };
                assert_eq!(vb.encode(), reference_encode(&vb), "{arcs} arcs");
            }
        }
    }

    fn any_oid() -> impl Strategy<Value = Vec<u32>> {
        prop_oneof![
            prop::collection::vec(any::<u32>(), 0..6),
            (
                0u32..3,
                0u32..80,
                prop::collection::vec(any::<u32>(), 0..20)
            )
                .prop_map(|(a, b, rest)| [vec![a, b], rest].concat()),
            prop::collection::vec(0u32..200, 2..140).prop_map(|mut v| {
                v[0] = 1;
                v[1] = 3;
                v
            }),
        ]
    }

    fn any_value() -> impl Strategy<Value = SnmpValue> {
        prop_oneof![
            any::<i64>().prop_map(SnmpValue::Integer),
            prop::collection::vec(any::<u8>(), 0..300).prop_map(SnmpValue::OctetString),
            Just(SnmpValue::Null),
            any_oid().prop_map(SnmpValue::ObjectId),
            any::<[u8; 4]>().prop_map(SnmpValue::IpAddress),
            any::<u32>().prop_map(SnmpValue::Counter32),
            any::<u32>().prop_map(SnmpValue::Gauge32),
            any::<u32>().prop_map(SnmpValue::TimeTicks),
            prop::collection::vec(any::<u8>(), 0..200).prop_map(SnmpValue::Opaque),
            any::<u64>().prop_map(SnmpValue::Counter64),
            (any::<u8>(), prop::collection::vec(any::<u8>(), 0..70000))
                .prop_map(|(tag, content)| SnmpValue::Other { tag, content }),
        ]
    }

    use proptest::prelude::*;

    proptest! {
        #[test]
        fn encode_matches_the_reference(oid in any_oid(), value in any_value()) {
            let vb = VarBind { oid, value };
            prop_assert_eq!(vb.encode(), reference_encode(&vb));
            prop_assert_eq!(encode_oid(&vb.oid), reference_oid(&vb.oid));
            let element = reference_oid(&vb.oid).map(|content| {
                let mut out = Vec::new();
                reference_element(&mut out, TAG_OID, &content);
                out
            });
            prop_assert_eq!(encode_oid_element(&vb.oid), element);
        }
    }
}
