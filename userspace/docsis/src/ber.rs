//! BER for TLV 11 (SNMP MIB object): one `VarBind ::= SEQUENCE { name OID, value }`.
//!
//! The encoding is provd-snmp's ([`provd_snmp::ber`]: element reader, headers, INTEGER and OID
//! content); the policy is this module's. Decoding is lenient where BER is (long-form lengths
//! of any width), and lossless where a value does not fit its typed form: an INTEGER that is
//! not minimally encoded, an IpAddress that is not 4 bytes, or an unknown tag all become
//! [`SnmpValue::Other`] with the raw content (the SNMP message codec reads a non-minimal
//! INTEGER as its value and refuses the rest: it need not give back the bytes it read).
//! Encoding always writes the minimal form. Callers that must reproduce input bytes (the text
//! printer) therefore check `encode(decode(x)) == x` and fall back to hex when it is not.

use provd_snmp::DecodeError as SnmpDecodeError;
use provd_snmp::ber::{
    Element, IntContent, OidBuf, Reader, decode_signed as signed_value,
    decode_unsigned as unsigned_value, element_len, is_minimal_integer, put_header,
    read_subidentifier, signed_content, split_first_subidentifier, tag, unsigned_content,
};
use thiserror::Error;

pub const TAG_INTEGER: u8 = tag::INTEGER;
pub const TAG_OCTET_STRING: u8 = tag::OCTET_STRING;
pub const TAG_NULL: u8 = tag::NULL;
pub const TAG_OID: u8 = tag::OID;
pub const TAG_SEQUENCE: u8 = tag::SEQUENCE;
pub const TAG_IP_ADDRESS: u8 = tag::IP_ADDRESS;
pub const TAG_COUNTER32: u8 = tag::COUNTER32;
pub const TAG_GAUGE32: u8 = tag::GAUGE32;
pub const TAG_TIMETICKS: u8 = tag::TIMETICKS;
pub const TAG_OPAQUE: u8 = tag::OPAQUE;
pub const TAG_COUNTER64: u8 = tag::COUNTER64;

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
        let mut outer = Reader::new(bytes);
        let seq = expect(&mut outer, bytes, TAG_SEQUENCE)?;
        if !outer.is_empty() {
            return Err(BerError::TrailingBytes {
                count: bytes.len() - outer.offset(),
            });
        }
        // Offsets in errors count from the start of the sequence's content, as they always have.
        let body = seq;
        let mut inner = Reader::new(body);
        let oid = decode_oid(expect(&mut inner, body, TAG_OID)?).ok_or(BerError::BadOid)?;
        let value = element(&mut inner, body)?;
        if !inner.is_empty() {
            return Err(BerError::TrailingBytes {
                count: body.len() - inner.offset(),
            });
        }
        Ok(VarBind {
            oid,
            value: SnmpValue::from_tag(value.tag, value.content()),
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
            SnmpValue::Integer(v) => (TAG_INTEGER, Content::Int(signed_content(*v))),
            SnmpValue::OctetString(b) => (TAG_OCTET_STRING, Content::Bytes(b)),
            SnmpValue::Null => (TAG_NULL, Content::Bytes(&[])),
            SnmpValue::ObjectId(oid) => (TAG_OID, Content::Owned(encode_oid(oid)?)),
            SnmpValue::IpAddress(a) => (TAG_IP_ADDRESS, Content::Bytes(a)),
            SnmpValue::Counter32(v) => (TAG_COUNTER32, unsigned(u64::from(*v))),
            SnmpValue::Gauge32(v) => (TAG_GAUGE32, unsigned(u64::from(*v))),
            SnmpValue::TimeTicks(v) => (TAG_TIMETICKS, unsigned(u64::from(*v))),
            SnmpValue::Opaque(b) => (TAG_OPAQUE, Content::Bytes(b)),
            SnmpValue::Counter64(v) => (TAG_COUNTER64, unsigned(*v)),
            SnmpValue::Other { tag, content } => (*tag, Content::Bytes(content)),
        })
    }
}

fn unsigned(v: u64) -> Content<'static> {
    Content::Int(unsigned_content(v))
}

/// [`VarBind::encode`] of a VarBind in parts, for callers that hold the OID in a buffer.
pub(crate) fn encode_varbind(oid: &[u32], value: &SnmpValue) -> Result<Vec<u8>, BerError> {
    // The OID content first (on the stack when short, as OIDs are), so that all lengths are
    // known and the bytes go into one buffer of the final size.
    let mut oid_buf = OidBuf::new();
    let oid_bytes = oid_content(&mut oid_buf, oid)?;
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

/// Content bytes of a value being encoded.
enum Content<'a> {
    Bytes(&'a [u8]),
    Int(IntContent),
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

/// The next element of `r`, a reader over all of `bytes`, with errors in this module's terms.
fn element<'a>(r: &mut Reader<'a>, bytes: &'a [u8]) -> Result<Element<'a>, BerError> {
    r.element("VarBind").map_err(|e| match e {
        SnmpDecodeError::HighTagNumber { offset, .. } => BerError::HighTagNumber {
            tag: bytes.get(offset).copied().unwrap_or(0x1f),
        },
        // The length octet follows the tag.
        SnmpDecodeError::IndefiniteLength { offset, .. } => BerError::BadLength {
            offset: offset + 1,
            byte: 0x80,
        },
        SnmpDecodeError::LengthTooLong { offset, octets, .. } => BerError::BadLength {
            offset: offset + 1,
            byte: 0x80 | octets,
        },
        // The content would start where `available` bytes are left.
        SnmpDecodeError::LengthPastEnd { available, .. } => BerError::Truncated {
            offset: bytes.len() - available,
        },
        // `Truncated`, the one error left: the tag or length ran into the end.
        _ => BerError::Truncated {
            offset: bytes.len(),
        },
    })
}

/// The next element, which must carry `expected` (checked once it is read whole).
fn expect<'a>(r: &mut Reader<'a>, bytes: &'a [u8], expected: u8) -> Result<&'a [u8], BerError> {
    let el = element(r, bytes)?;
    if el.tag != expected {
        return Err(BerError::UnexpectedTag {
            expected,
            found: el.tag,
        });
    }
    Ok(el.content())
}

/// OID content bytes to arcs; `None` unless minimally encoded and every arc fits in u32.
pub fn decode_oid(content: &[u8]) -> Option<Vec<u32>> {
    // The first sub-identifier holds two arcs: up to 2 * 40 + u32::MAX.
    let (first, mut at) = read_subidentifier(content, 0, u64::from(u32::MAX) + 80).ok()?;
    let (a, b) = split_first_subidentifier(first);
    let mut arcs = vec![a, u32::try_from(b).ok()?];
    while at < content.len() {
        let (arc, next) = read_subidentifier(content, at, u64::from(u32::MAX)).ok()?;
        arcs.push(u32::try_from(arc).ok()?);
        at = next;
    }
    Some(arcs)
}

/// Arcs to OID content bytes.
pub fn encode_oid(arcs: &[u32]) -> Result<Vec<u8>, BerError> {
    Ok(oid_content(&mut OidBuf::new(), arcs)?.to_vec())
}

/// A complete BER OID element (tag 0x06, length, content), as in TLV 10 and TLV 38.6.
pub fn encode_oid_element(arcs: &[u32]) -> Result<Vec<u8>, BerError> {
    let mut buf = OidBuf::new();
    let content = oid_content(&mut buf, arcs)?;
    let mut out = Vec::with_capacity(element_len(content.len()));
    put_header(&mut out, TAG_OID, content.len());
    out.extend_from_slice(content);
    Ok(out)
}

/// Parse a complete BER OID element at the start of `bytes`; returns arcs and bytes used.
pub fn decode_oid_element(bytes: &[u8]) -> Option<(Vec<u32>, usize)> {
    let mut r = Reader::new(bytes);
    let content = expect(&mut r, bytes, TAG_OID).ok()?;
    Some((decode_oid(content)?, r.offset()))
}

/// The content of `arcs` (encoded in `buf`), if BER can encode them.
fn oid_content<'b>(buf: &'b mut OidBuf, arcs: &[u32]) -> Result<&'b [u8], BerError> {
    buf.encode(arcs).ok_or_else(|| BerError::UnencodableOid {
        oid: arcs
            .iter()
            .map(u32::to_string)
            .collect::<Vec<_>>()
            .join("."),
    })
}

/// Two's complement content, minimal, at most 8 bytes.
fn decode_signed(content: &[u8]) -> Option<i64> {
    if !is_minimal_integer(content) {
        return None; // kept raw, so that it re-encodes as it was
    }
    signed_value(content)
}

/// Non-negative INTEGER-style content (Counter, Gauge, TimeTicks), minimal, fitting `max_bytes`.
fn decode_unsigned(content: &[u8], max_bytes: usize) -> Option<u64> {
    if content.first().is_none_or(|b| b & 0x80 != 0) || !is_minimal_integer(content) {
        return None;
    }
    // The 0x00 before a high first bit is not a value byte.
    let value_bytes = content.len() - usize::from(content.len() > 1 && content[0] == 0);
    if value_bytes > max_bytes {
        return None;
    }
    unsigned_value(content, max_bytes + 1)
}

fn decode_unsigned32(content: &[u8]) -> Option<u32> {
    decode_unsigned(content, 4).and_then(|v| u32::try_from(v).ok())
}

#[cfg(test)]
fn encode_signed(v: i64) -> Vec<u8> {
    signed_content(v).as_slice().to_vec()
}

#[cfg(test)]
fn encode_unsigned(v: u64) -> Vec<u8> {
    unsigned_content(v).as_slice().to_vec()
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
        // Where the minimal form gains a byte, and the ends.
        for v in [127i64, 128, -128, -129, i64::MIN, i64::MAX] {
            assert_eq!(decode_signed(&encode_signed(v)), Some(v), "{v}");
        }
        assert_eq!(encode_signed(128), [0x00, 0x80]);
        assert_eq!(decode_signed(&[0x00, 0x05]), None, "non-minimal stays raw");
        assert_eq!(decode_signed(&[0xff, 0x85]), None, "non-minimal stays raw");
    }

    proptest! {
        /// The encoder writes the minimal form, so what it writes decodes typed, never raw.
        #[test]
        fn encoded_integers_decode_typed(v in any::<i64>(), u in any::<u64>(), w in any::<u32>()) {
            prop_assert_eq!(decode_signed(&encode_signed(v)), Some(v));
            prop_assert_eq!(decode_unsigned(&encode_unsigned(u), 8), Some(u));
            prop_assert_eq!(decode_unsigned32(&encode_unsigned(u64::from(w))), Some(w));
        }
    }

    #[test]
    fn unsigned_high_bit_gets_a_zero_byte() {
        assert_eq!(encode_unsigned(0x8000_0000), [0, 0x80, 0, 0, 0]);
        assert_eq!(decode_unsigned32(&[0, 0x80, 0, 0, 0]), Some(0x8000_0000));
        assert_eq!(decode_unsigned32(&[0x80]), None);
    }

    #[test]
    fn unsigned_outside_the_canonical_form_stays_raw() {
        assert_eq!(decode_unsigned32(&[0x00, 0x05]), None, "non-minimal");
        assert_eq!(decode_unsigned32(&[0xff, 0xff]), None, "negative");
        assert_eq!(
            decode_unsigned32(&[0x01, 0, 0, 0, 0]),
            None,
            "over 2^32 - 1"
        );
        assert_eq!(
            decode_unsigned(&[0x00, 0x80, 0, 0, 0, 0, 0, 0, 0], 8),
            Some(1 << 63)
        );
        assert_eq!(decode_unsigned(&[0x01, 0, 0, 0, 0, 0, 0, 0, 0], 8), None);
        assert_eq!(decode_unsigned(&[], 8), None);
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
                while start < 7
                    && ((be[start] == 0 && be[start + 1] & 0x80 == 0)
                        || (be[start] == 0xff && be[start + 1] & 0x80 != 0))
                {
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
        for arcs in [
            OidBuf::INLINE_ARCS - 1,
            OidBuf::INLINE_ARCS,
            OidBuf::INLINE_ARCS + 1,
        ] {
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
