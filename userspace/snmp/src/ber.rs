//! The BER subset SNMP uses (RFC 3417 §8): single-byte tags, definite lengths, primitive
//! strings. A [`Reader`] walks elements with absolute offsets for error messages; the `put_*`
//! writers produce minimal encodings.
//!
//! What the reader accepts, and why:
//! * Lengths in short form or long form with 1 to 4 length octets, minimal or not: BER allows
//!   non-minimal lengths and some agents write fixed-width `82 00 xx` lengths. Indefinite
//!   length (0x80) is refused, as RFC 3417 §8 requires; more than 4 length octets cannot describe
//!   anything within a UDP datagram and is refused.
//! * INTEGER content of 1 to 8 bytes, minimal or not (some stacks write request-ids as fixed
//!   4-byte fields).
//! * Unsigned types (Counter32, Gauge32, TimeTicks, Counter64) as an unsigned magnitude: the
//!   sign bit is not honoured, because agents that write a u32 in 4 bytes without the leading
//!   0x00 exist, and dropping their informs would fail provisioning for half of all random
//!   correlation ids. At most 5 bytes (9 for Counter64), and the value must fit.
//!
//! Re-encoding always writes the minimal form, so a message that used any of the lenient forms
//! comes back shorter (or, for a high-bit unsigned, one byte longer) but equal as a value.

use crate::error::DecodeError;

/// Tags of the SNMP grammar (universal, application and context classes).
pub(crate) mod tag {
    pub const INTEGER: u8 = 0x02;
    pub const OCTET_STRING: u8 = 0x04;
    pub const NULL: u8 = 0x05;
    pub const OID: u8 = 0x06;
    pub const SEQUENCE: u8 = 0x30;
    pub const IP_ADDRESS: u8 = 0x40;
    pub const COUNTER32: u8 = 0x41;
    pub const GAUGE32: u8 = 0x42;
    pub const TIMETICKS: u8 = 0x43;
    pub const OPAQUE: u8 = 0x44;
    pub const COUNTER64: u8 = 0x46;
    pub const NO_SUCH_OBJECT: u8 = 0x80;
    pub const NO_SUCH_INSTANCE: u8 = 0x81;
    pub const END_OF_MIB_VIEW: u8 = 0x82;
    pub const TRAP_V1: u8 = 0xa4;
}

/// Widest INTEGER content accepted (i64).
const MAX_SIGNED_LEN: usize = 8;

/// A cursor over the elements between `pos` and `end` of one datagram. Sub-readers share the
/// datagram, so every offset they report is from its first byte.
#[derive(Debug, Clone)]
pub(crate) struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
    end: usize,
}

/// One element: its tag, where it starts, and where its content lies in the datagram.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Element<'a> {
    pub tag: u8,
    /// Offset of the tag byte.
    pub offset: usize,
    buf: &'a [u8],
    start: usize,
    end: usize,
}

impl<'a> Reader<'a> {
    pub fn new(buf: &'a [u8]) -> Self {
        Reader {
            buf,
            pos: 0,
            end: buf.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.pos >= self.end
    }

    pub fn offset(&self) -> usize {
        self.pos
    }

    /// The next byte of the element that starts at `at` (the offset an error reports).
    fn byte(&mut self, what: &'static str, at: usize) -> Result<u8, DecodeError> {
        let b = self
            .buf
            .get(self.pos)
            .filter(|_| self.pos < self.end)
            .copied()
            .ok_or(DecodeError::Truncated { what, offset: at })?;
        self.pos += 1;
        Ok(b)
    }

    /// The next element, whatever its tag.
    pub fn element(&mut self, what: &'static str) -> Result<Element<'a>, DecodeError> {
        let offset = self.pos;
        let tag = self.byte(what, offset)?;
        if tag & 0x1f == 0x1f {
            return Err(DecodeError::HighTagNumber { what, offset });
        }
        let first = self.byte(what, offset)?;
        let len = match first {
            0x00..=0x7f => usize::from(first),
            0x80 => return Err(DecodeError::IndefiniteLength { what, offset }),
            0x81..=0x84 => {
                let mut len = 0usize;
                for _ in 0..(first & 0x7f) {
                    len = len << 8 | usize::from(self.byte(what, offset)?);
                }
                len
            }
            _ => {
                return Err(DecodeError::LengthTooLong {
                    what,
                    offset,
                    octets: first & 0x7f,
                });
            }
        };
        let start = self.pos;
        let available = self.end - start;
        if len > available {
            return Err(DecodeError::LengthPastEnd {
                what,
                offset,
                len,
                available,
            });
        }
        self.pos = start + len;
        Ok(Element {
            tag,
            offset,
            buf: self.buf,
            start,
            end: self.pos,
        })
    }

    /// The next element, which must carry `expected`. The tag is checked before the length,
    /// so a datagram that is not SNMP at all says so rather than "length past end".
    pub fn expect(&mut self, expected: u8, what: &'static str) -> Result<Element<'a>, DecodeError> {
        if let Some(&found) = self.buf.get(self.pos).filter(|_| self.pos < self.end)
            && found != expected
        {
            return Err(DecodeError::UnexpectedTag {
                what,
                offset: self.pos,
                expected,
                found,
            });
        }
        self.element(what)
    }

    /// An INTEGER element that must fit an `i32` (request-id, error-status, msgID, ...).
    pub fn i32(&mut self, what: &'static str) -> Result<i32, DecodeError> {
        let el = self.expect(tag::INTEGER, what)?;
        let v = el.signed(what)?;
        i32::try_from(v).map_err(|_| DecodeError::IntegerOutOfRange {
            what,
            offset: el.offset,
        })
    }

    /// An OCTET STRING element's content, copied.
    pub fn octets(&mut self, what: &'static str) -> Result<Vec<u8>, DecodeError> {
        Ok(self.expect(tag::OCTET_STRING, what)?.content().to_vec())
    }

    /// Refuses anything left between the cursor and the end of the enclosing element.
    pub fn finish(&self, what: &'static str) -> Result<(), DecodeError> {
        if self.pos < self.end {
            return Err(DecodeError::TrailingBytes {
                what,
                offset: self.pos,
                count: self.end - self.pos,
            });
        }
        Ok(())
    }
}

impl<'a> Element<'a> {
    pub fn content(&self) -> &'a [u8] {
        self.buf.get(self.start..self.end).unwrap_or_default()
    }

    /// Offset of the first content byte.
    pub fn content_offset(&self) -> usize {
        self.start
    }

    /// A reader over the content, for constructed elements.
    pub fn reader(&self) -> Reader<'a> {
        Reader {
            buf: self.buf,
            pos: self.start,
            end: self.end,
        }
    }

    /// INTEGER content as two's complement, 1 to 8 bytes.
    pub fn signed(&self, what: &'static str) -> Result<i64, DecodeError> {
        let content = self.content();
        self.check_len(what, MAX_SIGNED_LEN)?;
        let fill = if content.first().is_some_and(|b| b & 0x80 != 0) {
            -1i64
        } else {
            0
        };
        Ok(content.iter().fold(fill, |acc, &b| acc << 8 | i64::from(b)))
    }

    /// Unsigned content as a magnitude of at most `max_len` bytes whose value fits `u64`.
    pub fn unsigned(&self, what: &'static str, max_len: usize) -> Result<u64, DecodeError> {
        let content = self.content();
        self.check_len(what, max_len)?;
        let skip = content.iter().take_while(|&&b| b == 0).count();
        let digits = content.get(skip..).unwrap_or_default();
        if digits.len() > 8 {
            return Err(DecodeError::IntegerOutOfRange {
                what,
                offset: self.offset,
            });
        }
        Ok(digits.iter().fold(0u64, |acc, &b| acc << 8 | u64::from(b)))
    }

    /// A 32-bit unsigned type (Counter32, Gauge32, TimeTicks): at most 5 bytes, value fits.
    pub fn unsigned32(&self, what: &'static str) -> Result<u32, DecodeError> {
        let v = self.unsigned(what, 5)?;
        u32::try_from(v).map_err(|_| DecodeError::IntegerOutOfRange {
            what,
            offset: self.offset,
        })
    }

    fn check_len(&self, what: &'static str, max: usize) -> Result<(), DecodeError> {
        let len = self.end - self.start;
        if len == 0 {
            return Err(DecodeError::EmptyInteger {
                what,
                offset: self.offset,
            });
        }
        if len > max {
            return Err(DecodeError::IntegerTooLong {
                what,
                offset: self.offset,
                len,
                max,
            });
        }
        Ok(())
    }
}

/// Writes `tag`, a length, and whatever `content` appends; the length is fixed up afterwards
/// (one byte reserved, shifted when the content turns out to be 128 bytes or more), so one
/// pass writes nested elements without knowing their sizes first.
pub(crate) fn put_nested(out: &mut Vec<u8>, tag: u8, content: impl FnOnce(&mut Vec<u8>)) {
    out.push(tag);
    let len_at = out.len();
    out.push(0);
    content(out);
    let len = out.len() - len_at - 1;
    match u8::try_from(len) {
        Ok(short) if short < 0x80 => out[len_at] = short,
        _ => {
            let be = len.to_be_bytes();
            let skip = be.iter().take_while(|&&b| b == 0).count();
            // At most size_of::<usize>() length octets: always a valid long-form count.
            out[len_at] = 0x80 | (be.len() - skip) as u8;
            out.splice(len_at + 1..len_at + 1, be[skip..].iter().copied());
        }
    }
}

/// A primitive element with the given content.
pub(crate) fn put_element(out: &mut Vec<u8>, tag: u8, content: &[u8]) {
    put_nested(out, tag, |o| o.extend_from_slice(content));
}

/// A minimal two's complement integer element.
pub(crate) fn put_signed(out: &mut Vec<u8>, tag: u8, v: i64) {
    let be = v.to_be_bytes();
    let mut start = 0;
    // Drop a leading byte while it only repeats the sign of the next one.
    while start < 7 {
        let (first, next) = (be[start], be[start + 1]);
        let redundant = (first == 0x00 && next & 0x80 == 0) || (first == 0xff && next & 0x80 != 0);
        if !redundant {
            break;
        }
        start += 1;
    }
    put_element(out, tag, &be[start..]);
}

/// A minimal non-negative integer element (a 0x00 in front when the top bit is set).
pub(crate) fn put_unsigned(out: &mut Vec<u8>, tag: u8, v: u64) {
    let be = v.to_be_bytes();
    let skip = be.iter().take_while(|&&b| b == 0).count().min(7);
    put_nested(out, tag, |o| {
        if be[skip] & 0x80 != 0 {
            o.push(0);
        }
        o.extend_from_slice(&be[skip..]);
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    fn element(bytes: &[u8]) -> Result<Element<'_>, DecodeError> {
        Reader::new(bytes).element("test")
    }

    #[test]
    fn length_forms() {
        assert_eq!(element(&[0x04, 0x01, 0xaa]).unwrap().content(), [0xaa]);
        // Non-minimal long forms are accepted: 81 01 and 82 00 01 are both length 1.
        assert_eq!(
            element(&[0x04, 0x81, 0x01, 0xaa]).unwrap().content(),
            [0xaa]
        );
        assert_eq!(
            element(&[0x04, 0x82, 0x00, 0x01, 0xaa]).unwrap().content(),
            [0xaa]
        );
        assert_eq!(
            element(&[0x30, 0x80, 0x00, 0x00]).unwrap_err(),
            DecodeError::IndefiniteLength {
                what: "test",
                offset: 0
            }
        );
        assert!(matches!(
            element(&[0x30, 0x85, 0, 0, 0, 0, 1, 0]),
            Err(DecodeError::LengthTooLong { octets: 5, .. })
        ));
        assert!(matches!(
            element(&[0x30, 0xff]),
            Err(DecodeError::LengthTooLong { octets: 0x7f, .. })
        ));
        assert!(matches!(
            element(&[0x30, 0x84, 0xff, 0xff, 0xff, 0xff]),
            Err(DecodeError::LengthPastEnd {
                len: 0xffff_ffff,
                available: 0,
                ..
            })
        ));
        assert!(matches!(
            element(&[0x30, 0x82, 0x01]),
            Err(DecodeError::Truncated { .. })
        ));
        assert!(matches!(
            element(&[0x1f, 0x01, 0x00]),
            Err(DecodeError::HighTagNumber { .. })
        ));
        assert!(matches!(element(&[]), Err(DecodeError::Truncated { .. })));
    }

    #[test]
    fn a_sub_reader_stops_at_its_element() {
        // SEQUENCE { OCTET STRING "a" } then a stray byte outside it.
        let bytes = [0x30, 0x03, 0x04, 0x01, b'a', 0x05];
        let mut outer = Reader::new(&bytes);
        let seq = outer.expect(tag::SEQUENCE, "seq").unwrap();
        let mut inner = seq.reader();
        assert_eq!(inner.octets("s").unwrap(), b"a");
        assert!(inner.is_empty());
        assert!(matches!(
            inner.element("more"),
            Err(DecodeError::Truncated { offset: 5, .. })
        ));
        assert_eq!(
            outer.finish("seq"),
            Err(DecodeError::TrailingBytes {
                what: "seq",
                offset: 5,
                count: 1
            })
        );
    }

    #[test]
    fn signed_integers_round_trip_minimally() {
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
            1001,
            i64::from(i32::MAX),
            i64::from(i32::MIN),
            i64::MIN,
            i64::MAX,
        ] {
            let mut out = Vec::new();
            put_signed(&mut out, tag::INTEGER, v);
            assert_eq!(element(&out).unwrap().signed("v").unwrap(), v, "{v}");
        }
        let mut out = Vec::new();
        put_signed(&mut out, tag::INTEGER, 1001);
        assert_eq!(out, [0x02, 0x02, 0x03, 0xe9]);
        out.clear();
        put_signed(&mut out, tag::INTEGER, 128);
        assert_eq!(out, [0x02, 0x02, 0x00, 0x80]);
        out.clear();
        put_signed(&mut out, tag::INTEGER, -129);
        assert_eq!(out, [0x02, 0x02, 0xff, 0x7f]);
    }

    #[test]
    fn integer_bounds() {
        // Non-minimal but short enough: accepted.
        assert_eq!(
            element(&[0x02, 0x04, 0, 0, 0x03, 0xe9])
                .unwrap()
                .signed("v")
                .unwrap(),
            1001
        );
        assert!(matches!(
            element(&[0x02, 0x00]).unwrap().signed("v"),
            Err(DecodeError::EmptyInteger { .. })
        ));
        assert!(matches!(
            element(&[0x02, 0x09, 0, 0, 0, 0, 0, 0, 0, 0, 1])
                .unwrap()
                .signed("v"),
            Err(DecodeError::IntegerTooLong { len: 9, max: 8, .. })
        ));
        let mut r = Reader::new(&[0x02, 0x05, 0x00, 0x80, 0, 0, 0]);
        assert!(matches!(
            r.i32("request-id"),
            Err(DecodeError::IntegerOutOfRange {
                what: "request-id",
                ..
            })
        ));
    }

    #[test]
    fn unsigned_magnitudes() {
        let u32_of = |b: &[u8]| element(b).unwrap().unsigned32("v");
        assert_eq!(
            u32_of(&[0x42, 0x04, 0x12, 0x34, 0xab, 0xcd]),
            Ok(0x1234_abcd)
        );
        assert_eq!(
            u32_of(&[0x42, 0x05, 0, 0xff, 0xff, 0xff, 0xff]),
            Ok(u32::MAX)
        );
        // The high bit without the 0x00 sign octet: read as unsigned, on purpose.
        assert_eq!(
            u32_of(&[0x42, 0x04, 0x92, 0x34, 0xab, 0xcd]),
            Ok(0x9234_abcd)
        );
        assert!(matches!(
            u32_of(&[0x42, 0x05, 0x01, 0, 0, 0, 0]),
            Err(DecodeError::IntegerOutOfRange { .. })
        ));
        assert!(matches!(
            u32_of(&[0x42, 0x06, 0, 0, 0, 0, 0, 1]),
            Err(DecodeError::IntegerTooLong { len: 6, max: 5, .. })
        ));
        let c64 = [
            0x46, 0x09, 0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
        ];
        assert_eq!(element(&c64).unwrap().unsigned("v", 9), Ok(u64::MAX));
        let c64 = [0x46, 0x09, 1, 0, 0, 0, 0, 0, 0, 0, 0];
        assert!(matches!(
            element(&c64).unwrap().unsigned("v", 9),
            Err(DecodeError::IntegerOutOfRange { .. })
        ));
        for v in [
            0u64,
            0x7f,
            0x80,
            0xff,
            0x1234_abcd,
            u64::from(u32::MAX),
            u64::MAX,
        ] {
            let mut out = Vec::new();
            put_unsigned(&mut out, tag::COUNTER64, v);
            assert_eq!(element(&out).unwrap().unsigned("v", 9), Ok(v));
        }
        let mut out = Vec::new();
        put_unsigned(&mut out, tag::GAUGE32, 0x9234_abcd);
        assert_eq!(out, [0x42, 0x05, 0x00, 0x92, 0x34, 0xab, 0xcd]);
    }

    #[test]
    fn nested_lengths_are_minimal() {
        for len in [0usize, 1, 127, 128, 255, 256, 65535, 65536] {
            let mut out = vec![0xee];
            put_nested(&mut out, tag::SEQUENCE, |o| o.resize(o.len() + len, 0x55));
            let mut r = Reader::new(&out[1..]);
            let el = r.element("seq").unwrap();
            assert_eq!(el.content().len(), len);
            assert!(r.is_empty());
            let header = out.len() - 1 - len;
            let expected = match len {
                0..=127 => 2,
                128..=255 => 3,
                256..=65535 => 4,
                _ => 5,
            };
            assert_eq!(header, expected, "{len}");
        }
    }
}
