//! The BER subset SNMP uses (RFC 3417 §8, X.690): single-byte tags, definite lengths, primitive
//! strings. A [`Reader`] walks elements with absolute offsets for error messages; the `put_*`
//! writers produce minimal encodings.
//!
//! This is provd's one BER codec for SNMP values. The message codec of this crate builds on it,
//! and so does `provd-docsis` for the VarBinds of config files (TLV 11), which decodes with the
//! same [`Reader`] and content functions but keeps its own policy: where this crate reads the
//! lenient forms below as values, docsis keeps any content that is not minimal as raw bytes so
//! that a file re-encodes byte for byte ([`is_minimal_integer`] is there for that).
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
pub mod tag {
    /// INTEGER (universal 2).
    pub const INTEGER: u8 = 0x02;
    /// OCTET STRING (universal 4).
    pub const OCTET_STRING: u8 = 0x04;
    /// NULL (universal 5).
    pub const NULL: u8 = 0x05;
    /// OBJECT IDENTIFIER (universal 6).
    pub const OID: u8 = 0x06;
    /// SEQUENCE, constructed (universal 16).
    pub const SEQUENCE: u8 = 0x30;
    /// IpAddress (application 0).
    pub const IP_ADDRESS: u8 = 0x40;
    /// Counter32 (application 1).
    pub const COUNTER32: u8 = 0x41;
    /// Gauge32 / Unsigned32 (application 2).
    pub const GAUGE32: u8 = 0x42;
    /// TimeTicks (application 3).
    pub const TIMETICKS: u8 = 0x43;
    /// Opaque (application 4).
    pub const OPAQUE: u8 = 0x44;
    /// Counter64 (application 6).
    pub const COUNTER64: u8 = 0x46;
    /// The noSuchObject exception of a Response (context 0).
    pub const NO_SUCH_OBJECT: u8 = 0x80;
    /// The noSuchInstance exception of a Response (context 1).
    pub const NO_SUCH_INSTANCE: u8 = 0x81;
    /// The endOfMibView exception of a Response (context 2).
    pub const END_OF_MIB_VIEW: u8 = 0x82;
    /// The SNMPv1 Trap-PDU (context 4, constructed).
    pub const TRAP_V1: u8 = 0xa4;
}

/// Widest INTEGER content accepted (i64).
const MAX_SIGNED_LEN: usize = 8;

/// A cursor over the elements between `pos` and `end` of one datagram. Sub-readers share the
/// datagram, so every offset they report is from its first byte.
#[derive(Debug, Clone)]
pub struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
    end: usize,
}

/// One element: its tag, where it starts, and where its content lies in the datagram.
#[derive(Debug, Clone, Copy)]
pub struct Element<'a> {
    /// The tag byte.
    pub tag: u8,
    /// Offset of the tag byte.
    pub offset: usize,
    buf: &'a [u8],
    start: usize,
    end: usize,
}

impl<'a> Reader<'a> {
    /// A reader over all of `buf`; offsets count from its first byte.
    pub fn new(buf: &'a [u8]) -> Self {
        Reader {
            buf,
            pos: 0,
            end: buf.len(),
        }
    }

    /// Whether every element has been read.
    pub fn is_empty(&self) -> bool {
        self.pos >= self.end
    }

    /// Where the next element starts.
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

    /// The next element, whatever its tag. `what` names it in errors. The errors it gives:
    /// `Truncated` (the tag or length is cut off), `HighTagNumber`, `IndefiniteLength`,
    /// `LengthTooLong` and `LengthPastEnd`, each at the offset of the element's tag.
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
    /// The content bytes.
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
        self.check_len(what, MAX_SIGNED_LEN)?;
        Ok(fold_signed(self.content()))
    }

    /// Unsigned content as a magnitude of at most `max_len` bytes whose value fits `u64`.
    pub fn unsigned(&self, what: &'static str, max_len: usize) -> Result<u64, DecodeError> {
        self.check_len(what, max_len)?;
        magnitude(self.content()).ok_or(DecodeError::IntegerOutOfRange {
            what,
            offset: self.offset,
        })
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

/// INTEGER content (two's complement, big-endian) as `i64`: 1 to 8 bytes, minimal or not.
#[inline]
pub fn decode_signed(content: &[u8]) -> Option<i64> {
    (1..=MAX_SIGNED_LEN)
        .contains(&content.len())
        .then(|| fold_signed(content))
}

/// Unsigned content (Counter32, Gauge32, TimeTicks, Counter64) as a magnitude: 1 to `max_len`
/// bytes, the sign bit not honoured, leading zeros ignored, the value fitting `u64`.
#[inline]
pub fn decode_unsigned(content: &[u8], max_len: usize) -> Option<u64> {
    if content.is_empty() || content.len() > max_len {
        return None;
    }
    magnitude(content)
}

/// Whether INTEGER content is in the one form DER and the encoders here write (X.690 §8.3.2):
/// at least one byte, and no first byte that only repeats the sign of the next. Unsigned types
/// are INTEGERs too: their minimal form has a 0x00 before a high first bit, and no other.
#[inline]
pub fn is_minimal_integer(content: &[u8]) -> bool {
    match content {
        [] => false,
        [first, next, ..] => !is_redundant(*first, *next),
        [_] => true,
    }
}

fn fold_signed(content: &[u8]) -> i64 {
    let fill = if content.first().is_some_and(|b| b & 0x80 != 0) {
        -1i64
    } else {
        0
    };
    content.iter().fold(fill, |acc, &b| acc << 8 | i64::from(b))
}

/// The unsigned value of `content`, if it has at most 8 significant bytes.
fn magnitude(content: &[u8]) -> Option<u64> {
    let skip = content.iter().take_while(|&&b| b == 0).count();
    let digits = content.get(skip..).unwrap_or_default();
    if digits.len() > 8 {
        return None;
    }
    Some(digits.iter().fold(0u64, |acc, &b| acc << 8 | u64::from(b)))
}

/// A leading byte that only repeats the sign of the next one.
#[inline]
fn is_redundant(first: u8, next: u8) -> bool {
    (first == 0x00 && next & 0x80 == 0) || (first == 0xff && next & 0x80 != 0)
}

/// The content of an INTEGER-style value, minimal, on the stack: at most 9 bytes (a 0x00 and
/// eight for the largest unsigned). Made by [`signed_content`] and [`unsigned_content`].
#[derive(Debug, Clone, Copy)]
pub struct IntContent {
    buf: [u8; 9],
    start: usize,
}

impl IntContent {
    /// The content bytes.
    #[inline]
    pub fn as_slice(&self) -> &[u8] {
        &self.buf[self.start..]
    }

    /// `be` in `buf[1..]`, after a zero byte.
    #[inline]
    fn new(be: [u8; 8], start: usize) -> IntContent {
        let mut buf = [0; 9];
        buf[1..].copy_from_slice(&be);
        IntContent { buf, start }
    }
}

/// Minimal two's complement content of `v` (INTEGER).
#[inline]
pub fn signed_content(v: i64) -> IntContent {
    let be = v.to_be_bytes();
    let mut start = 0;
    // Drop a leading byte while it only repeats the sign of the next one.
    while start < 7 && is_redundant(be[start], be[start + 1]) {
        start += 1;
    }
    IntContent::new(be, 1 + start)
}

/// Minimal content of the non-negative `v` (Counter32, Gauge32, TimeTicks, Counter64): a 0x00
/// in front when the top bit is set.
#[inline]
pub fn unsigned_content(v: u64) -> IntContent {
    let be = v.to_be_bytes();
    let skip = be.iter().take_while(|&&b| b == 0).count().min(7);
    // buf[1 + skip] is be[skip]; buf[skip] is a zero (be[skip - 1], or the leading pad byte).
    let start = if be[skip] & 0x80 != 0 { skip } else { 1 + skip };
    IntContent::new(be, start)
}

/// The long form of a definite length (128 or more): 0x80 | count, then the length in `count`
/// big-endian bytes, as few as hold it.
struct LongLength {
    buf: [u8; 1 + size_of::<usize>()],
    len: usize,
}

impl LongLength {
    fn new(len: usize) -> LongLength {
        let be = len.to_be_bytes();
        let skip = be.iter().take_while(|&&b| b == 0).count();
        let count = be.len() - skip;
        let mut buf = [0; 1 + size_of::<usize>()];
        // At most size_of::<usize>() length octets: always a valid long-form count.
        buf[0] = 0x80 | count as u8;
        buf[1..=count].copy_from_slice(&be[skip..]);
        LongLength {
            buf,
            len: 1 + count,
        }
    }

    fn as_slice(&self) -> &[u8] {
        &self.buf[..self.len]
    }
}

/// Appends `tag` and the minimal form of the length `len`: the header of an element whose
/// content size is known before it is written.
#[inline]
pub fn put_header(out: &mut Vec<u8>, tag: u8, len: usize) {
    out.push(tag);
    if len < 0x80 {
        out.push(len as u8); // < 0x80, fits
    } else {
        out.extend_from_slice(LongLength::new(len).as_slice());
    }
}

/// Bytes of an element with `len` content bytes: tag, minimal length, content.
#[inline]
pub fn element_len(len: usize) -> usize {
    let len_bytes = if len < 0x80 {
        0
    } else {
        (usize::BITS - len.leading_zeros()).div_ceil(8) as usize
    };
    2 + len_bytes + len
}

/// Writes `tag`, a length, and whatever `content` appends; the length is fixed up afterwards
/// (one byte reserved, shifted when the content turns out to be 128 bytes or more), so one
/// pass writes nested elements without knowing their sizes first.
pub fn put_nested(out: &mut Vec<u8>, tag: u8, content: impl FnOnce(&mut Vec<u8>)) {
    out.push(tag);
    let len_at = out.len();
    out.push(0);
    content(out);
    let len = out.len() - len_at - 1;
    match u8::try_from(len) {
        Ok(short) if short < 0x80 => out[len_at] = short,
        _ => {
            let long = LongLength::new(len);
            out.splice(len_at..len_at + 1, long.as_slice().iter().copied());
        }
    }
}

/// A primitive element with the given content.
#[inline]
pub fn put_element(out: &mut Vec<u8>, tag: u8, content: &[u8]) {
    put_header(out, tag, content.len());
    out.extend_from_slice(content);
}

/// A minimal two's complement integer element.
#[inline]
pub fn put_signed(out: &mut Vec<u8>, tag: u8, v: i64) {
    put_element(out, tag, signed_content(v).as_slice());
}

/// A minimal non-negative integer element (a 0x00 in front when the top bit is set).
#[inline]
pub fn put_unsigned(out: &mut Vec<u8>, tag: u8, v: u64) {
    put_element(out, tag, unsigned_content(v).as_slice());
}

/// The first sub-identifier of an OBJECT IDENTIFIER (X.690 §8.19.4: `40 * first + second`),
/// if BER can encode the arcs: at least two, the first 0, 1 or 2, and under 0 or 1 a second
/// below 40. Then `&arcs[2..]` are the other sub-identifiers.
#[inline]
pub fn oid_first_subidentifier(arcs: &[u32]) -> Option<u64> {
    match arcs {
        [a, b, ..] if *a <= 2 && (*a == 2 || *b < 40) => Some(u64::from(*a) * 40 + u64::from(*b)),
        _ => None,
    }
}

/// The first two arcs a first sub-identifier stands for: 0 and 1 take a second arc below 40,
/// 2 any above.
#[inline]
pub fn split_first_subidentifier(first: u64) -> (u32, u64) {
    match first {
        0..=39 => (0, first),
        40..=79 => (1, first - 40),
        _ => (2, first - 80),
    }
}

/// Bytes of OID content: the first sub-identifier and the arcs after the first two.
pub fn oid_content_len(first: u64, rest: &[u32]) -> usize {
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

/// Appends OID content: the first sub-identifier and the arcs after the first two.
#[inline]
pub fn put_oid_content(out: &mut Vec<u8>, first: u64, rest: &[u32]) {
    put_base128(out, first);
    for &arc in rest {
        put_base128(out, u64::from(arc));
    }
}

/// A buffer for the content bytes of one OBJECT IDENTIFIER, for a writer that needs their
/// length before it writes the header: in place for OIDs of up to [`OidBuf::INLINE_ARCS`] arcs
/// (every real one), on the heap beyond. The caller keeps it on its stack.
#[derive(Debug, Clone)]
pub struct OidBuf {
    inline: [u8; OidBuf::INLINE_BYTES],
    heap: Vec<u8>,
}

impl Default for OidBuf {
    fn default() -> Self {
        OidBuf::new()
    }
}

impl OidBuf {
    /// OIDs of up to this many arcs are encoded without allocating.
    pub const INLINE_ARCS: usize = 24;
    /// The first sub-identifier (two arcs, at most 2 * 40 + u32::MAX) takes at most 5 bytes, as
    /// does every arc after it.
    const INLINE_BYTES: usize = 5 * (OidBuf::INLINE_ARCS - 1);

    /// An empty buffer.
    #[inline]
    pub fn new() -> OidBuf {
        OidBuf {
            inline: [0; OidBuf::INLINE_BYTES],
            heap: Vec::new(),
        }
    }

    /// Encodes `arcs` into the buffer and returns their content bytes, or `None` if BER cannot
    /// encode them (see [`oid_first_subidentifier`]).
    #[inline]
    pub fn encode(&mut self, arcs: &[u32]) -> Option<&[u8]> {
        let first = oid_first_subidentifier(arcs)?;
        let rest = &arcs[2..];
        if arcs.len() <= OidBuf::INLINE_ARCS {
            let buf = &mut self.inline;
            let mut at = write_base128(buf, 0, first);
            for &arc in rest {
                at = write_base128(buf, at, u64::from(arc));
            }
            Some(&self.inline[..at])
        } else {
            self.heap.clear();
            self.heap.reserve_exact(oid_content_len(first, rest));
            put_oid_content(&mut self.heap, first, rest);
            Some(&self.heap)
        }
    }
}

/// `v` in base 128 at `buf[at..]`; returns the end.
#[inline]
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

/// Why OID content bytes do not hold a sub-identifier; `at` indexes the content.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SubIdError {
    /// The sub-identifier starts with 0x80 (X.690 §8.19.2 wants the fewest octets).
    NonMinimal {
        /// The 0x80 byte.
        at: usize,
    },
    /// The value passed the caller's maximum.
    Overflow {
        /// The byte that took it past.
        at: usize,
    },
    /// The content ends inside the sub-identifier.
    Truncated {
        /// The last byte of the content.
        at: usize,
    },
}

/// Reads the sub-identifier (base 128, high bit set on every byte but the last) that starts at
/// `content[at]`, refusing a value over `max` (at most 2^57 - 1, so that no bit is shifted
/// out); returns it and the index after it.
#[inline]
pub fn read_subidentifier(content: &[u8], at: usize, max: u64) -> Result<(u64, usize), SubIdError> {
    let max = max.min(u64::MAX >> 7);
    let mut acc: u64 = 0;
    for (i, &b) in content.iter().enumerate().skip(at) {
        if i == at && b == 0x80 {
            return Err(SubIdError::NonMinimal { at: i });
        }
        acc = acc << 7 | u64::from(b & 0x7f);
        if acc > max {
            return Err(SubIdError::Overflow { at: i });
        }
        if b & 0x80 == 0 {
            return Ok((acc, i + 1));
        }
    }
    Err(SubIdError::Truncated {
        at: content.len().max(at + 1) - 1,
    })
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

    #[test]
    fn headers_of_known_length_match_nested_ones() {
        for len in [0usize, 1, 127, 128, 255, 256, 65535, 65536] {
            let content = vec![0x55; len];
            let mut nested = Vec::new();
            put_nested(&mut nested, tag::OCTET_STRING, |o| {
                o.extend_from_slice(&content)
            });
            let mut header = Vec::new();
            put_header(&mut header, tag::OCTET_STRING, len);
            header.extend_from_slice(&content);
            assert_eq!(header, nested, "{len}");
            assert_eq!(element_len(len), nested.len(), "{len}");
        }
    }

    #[test]
    fn integer_content_functions() {
        for (content, signed, minimal) in [
            (&[][..], None, false),
            (&[0x00], Some(0), true),
            (&[0x80], Some(-128), true),
            (&[0x00, 0x80], Some(128), true),
            (&[0x00, 0x7f], Some(127), false),
            (&[0xff, 0x80], Some(-128), false),
            (&[0xff, 0x7f], Some(-129), true),
            (&[0, 0, 0, 0, 0, 0, 0, 0, 1], None, false),
        ] {
            assert_eq!(decode_signed(content), signed, "{content:02x?}");
            assert_eq!(is_minimal_integer(content), minimal, "{content:02x?}");
        }
        assert_eq!(decode_unsigned(&[0x92, 0x34], 5), Some(0x9234));
        assert_eq!(decode_unsigned(&[0, 0, 1], 2), None, "longer than max_len");
        assert_eq!(decode_unsigned(&[], 5), None);
        assert_eq!(decode_unsigned(&[1, 0, 0, 0, 0, 0, 0, 0, 0], 9), None);
        for v in [0i64, 1, -1, 127, 128, -128, -129, i64::MIN, i64::MAX] {
            let content = signed_content(v);
            assert!(is_minimal_integer(content.as_slice()), "{v}");
            assert_eq!(decode_signed(content.as_slice()), Some(v));
        }
        for v in [0u64, 0x7f, 0x80, 0x8000_0000, u64::MAX] {
            let content = unsigned_content(v);
            assert!(is_minimal_integer(content.as_slice()), "{v}");
            assert_eq!(content.as_slice()[0] & 0x80, 0, "{v}");
            assert_eq!(decode_unsigned(content.as_slice(), 9), Some(v));
        }
        assert_eq!(unsigned_content(0x8000_0000).as_slice(), [0, 0x80, 0, 0, 0]);
    }

    #[test]
    fn oid_content_in_place_and_on_the_heap() {
        for arcs in [
            OidBuf::INLINE_ARCS - 1,
            OidBuf::INLINE_ARCS,
            OidBuf::INLINE_ARCS + 1,
        ] {
            // The longest content of that many arcs: 2.(2^32-1) and every arc 2^32-1.
            let oid = [&[2][..], &vec![u32::MAX; arcs - 1]].concat();
            let first = oid_first_subidentifier(&oid).unwrap();
            assert_eq!(first, u64::from(u32::MAX) + 80);
            let mut expected = Vec::new();
            put_oid_content(&mut expected, first, &oid[2..]);
            assert_eq!(expected.len(), 5 * (arcs - 1));
            assert_eq!(oid_content_len(first, &oid[2..]), expected.len());
            let mut buf = OidBuf::new();
            assert_eq!(buf.encode(&oid).unwrap(), expected, "{arcs} arcs");
            // Reused, for a shorter OID.
            assert_eq!(buf.encode(&[1, 3]).unwrap(), [0x2b]);
        }
        assert_eq!(
            OidBuf::new().encode(&[2, 999, 3]).unwrap(),
            [0x88, 0x37, 0x03]
        );
        for bad in [&[][..], &[1], &[1, 40], &[3, 0]] {
            assert!(OidBuf::new().encode(bad).is_none(), "{bad:?}");
        }
    }

    #[test]
    fn subidentifiers() {
        let max = u64::from(u32::MAX);
        assert_eq!(
            read_subidentifier(&[0x2b, 0x81, 0x0c], 1, max),
            Ok((140, 3))
        );
        assert_eq!(
            read_subidentifier(&[0x2b, 0x80, 0x01], 1, max),
            Err(SubIdError::NonMinimal { at: 1 })
        );
        assert_eq!(
            read_subidentifier(&[0x2b, 0x86, 0x86], 1, max),
            Err(SubIdError::Truncated { at: 2 })
        );
        assert_eq!(
            read_subidentifier(&[], 0, max),
            Err(SubIdError::Truncated { at: 0 })
        );
        // 2^32 needs five groups: 0x90 0x80 0x80 0x80 0x00; the fifth takes it past.
        let big = [0x90, 0x80, 0x80, 0x80, 0x00];
        assert_eq!(
            read_subidentifier(&big, 0, max),
            Err(SubIdError::Overflow { at: 4 })
        );
        assert_eq!(read_subidentifier(&big, 0, max + 80), Ok((max + 1, 5)));
        assert_eq!(split_first_subidentifier(max + 1), (2, max - 79));
        assert_eq!(split_first_subidentifier(43), (1, 3));
    }
}
