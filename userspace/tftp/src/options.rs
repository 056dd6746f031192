//! The four negotiable options this server knows (RFC 2348 blksize, RFC 2349 timeout and tsize,
//! RFC 7440 windowsize): their names, legal ranges and wire form. Unknown options are skipped
//! as RFC 2347 asks, so a client probing for extensions still gets its file.

use std::fmt;

use crate::packet::{PacketError, Writer};

/// Which packet an option list belongs to: `tsize` means something different in each.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Context {
    ReadRequest,
    WriteRequest,
    Oack,
}

/// A negotiable option's name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum OptionName {
    Blksize,
    Timeout,
    Tsize,
    Windowsize,
}

impl OptionName {
    /// The lowercase name on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            OptionName::Blksize => "blksize",
            OptionName::Timeout => "timeout",
            OptionName::Tsize => "tsize",
            OptionName::Windowsize => "windowsize",
        }
    }

    /// Option names are case-insensitive (RFC 2347); `None` for options this server ignores.
    fn from_wire(name: &str) -> Option<Self> {
        [
            OptionName::Blksize,
            OptionName::Timeout,
            OptionName::Tsize,
            OptionName::Windowsize,
        ]
        .into_iter()
        .find(|o| o.as_str().eq_ignore_ascii_case(name))
    }

    /// The values the RFCs allow.
    fn range(self) -> (u64, u64) {
        match self {
            OptionName::Blksize => (
                u64::from(*Options::BLKSIZE.start()),
                u64::from(*Options::BLKSIZE.end()),
            ),
            OptionName::Timeout => (
                u64::from(*Options::TIMEOUT.start()),
                u64::from(*Options::TIMEOUT.end()),
            ),
            OptionName::Tsize => (0, u64::MAX),
            OptionName::Windowsize => (
                u64::from(*Options::WINDOWSIZE.start()),
                u64::from(*Options::WINDOWSIZE.end()),
            ),
        }
    }
}

impl fmt::Display for OptionName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The known options of a request or an OACK; `None` when absent. A value that exists here is
/// inside its RFC range (the parser refuses the rest).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Options {
    /// Data bytes per DATA packet (RFC 2348).
    pub blksize: Option<u16>,
    /// Seconds before a retransmission (RFC 2349).
    pub timeout: Option<u8>,
    /// Transfer size in bytes: "0" in an RRQ asks the server for it (RFC 2349).
    pub tsize: Option<u64>,
    /// DATA packets per ACK (RFC 7440).
    pub windowsize: Option<u16>,
}

impl Options {
    pub const BLKSIZE: std::ops::RangeInclusive<u16> = 8..=65464;
    pub const TIMEOUT: std::ops::RangeInclusive<u8> = 1..=255;
    pub const WINDOWSIZE: std::ops::RangeInclusive<u16> = 1..=65535;

    /// No known option present.
    pub fn is_empty(&self) -> bool {
        *self == Options::default()
    }

    /// Reads `name\0value\0` pairs up to the end of the packet. Trailing NUL padding (some boot
    /// ROMs pad their requests) is accepted as the end of the list.
    ///
    /// Values are read generously, as RFC 2347 lets a server leave out what it does not accept:
    /// a value that is not a number or below its range drops the option, one above its range is
    /// lowered to the maximum (a server may always grant less). In a read request the `tsize`
    /// value means nothing (the server answers the size), so any value asks for it: atftp 0.8
    /// sends `tsize enable`. Malformed lists and repeated options are errors.
    pub(crate) fn parse(mut rest: &[u8], context: Context) -> Result<Self, PacketError> {
        let mut opts = Options::default();
        let mut seen = [false; 4];
        while !rest.is_empty() {
            let name = take_str(&mut rest)?;
            if name.is_empty() {
                if rest.iter().all(|&b| b == 0) {
                    break;
                }
                return Err(PacketError::EmptyOptionName);
            }
            if rest.is_empty() {
                return Err(PacketError::OptionWithoutValue);
            }
            let value = take_str(&mut rest)?;
            let Some(option) = OptionName::from_wire(name) else {
                continue;
            };
            if std::mem::replace(&mut seen[option as usize], true) {
                return Err(PacketError::DuplicateOption { option });
            }
            let v = parse_decimal(value);
            let (min, max) = option.range();
            let clamped = v.filter(|v| *v >= min).map(|v| v.min(max));
            // The range check makes every narrowing below lossless.
            match option {
                OptionName::Blksize => opts.blksize = clamped.map(|v| v as u16),
                OptionName::Timeout => {
                    opts.timeout = v.filter(|v| (min..=max).contains(v)).map(|v| v as u8)
                }
                OptionName::Tsize => {
                    opts.tsize = match context {
                        Context::ReadRequest => Some(v.unwrap_or(0)),
                        Context::WriteRequest | Context::Oack => v,
                    }
                }
                OptionName::Windowsize => opts.windowsize = clamped.map(|v| v as u16),
            }
        }
        Ok(opts)
    }

    /// The first option whose value is outside its RFC range, so that the encoder never writes
    /// what the parser would refuse.
    pub(crate) fn validate(&self) -> Result<(), PacketError> {
        let bad = |option| Err(PacketError::BadOptionValue { option });
        if self.blksize.is_some_and(|b| !Self::BLKSIZE.contains(&b)) {
            return bad(OptionName::Blksize);
        }
        if self.timeout.is_some_and(|t| !Self::TIMEOUT.contains(&t)) {
            return bad(OptionName::Timeout);
        }
        if self
            .windowsize
            .is_some_and(|w| !Self::WINDOWSIZE.contains(&w))
        {
            return bad(OptionName::Windowsize);
        }
        Ok(())
    }

    /// Writes the present options in a fixed order (blksize, tsize, timeout, windowsize: the
    /// order of the worked example in the spec and of most clients' requests).
    pub(crate) fn write(&self, w: &mut Writer<'_>) {
        let pairs = [
            (OptionName::Blksize, self.blksize.map(u64::from)),
            (OptionName::Tsize, self.tsize),
            (OptionName::Timeout, self.timeout.map(u64::from)),
            (OptionName::Windowsize, self.windowsize.map(u64::from)),
        ];
        for (name, value) in pairs {
            if let Some(v) = value {
                w.put(name.as_str().as_bytes());
                w.put(&[0]);
                w.put_decimal(v);
                w.put(&[0]);
            }
        }
    }
}

/// Splits off one NUL-terminated ASCII string (netascii strings are 7-bit).
pub(crate) fn take_str<'a>(rest: &mut &'a [u8]) -> Result<&'a str, PacketError> {
    let nul = rest
        .iter()
        .position(|&b| b == 0)
        .ok_or(PacketError::MissingNul)?;
    let (s, tail) = rest.split_at(nul);
    *rest = &tail[1..];
    if !s.is_ascii() {
        return Err(PacketError::NonAscii);
    }
    std::str::from_utf8(s).map_err(|_| PacketError::NonAscii)
}

/// A non-empty run of ASCII digits as a u64; `None` on anything else or on overflow.
fn parse_decimal(s: &str) -> Option<u64> {
    if s.is_empty() {
        return None;
    }
    s.bytes().try_fold(0u64, |acc, b| {
        let digit = b.checked_sub(b'0').filter(|d| *d <= 9)?;
        acc.checked_mul(10)?.checked_add(u64::from(digit))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decimal_parsing_is_strict_and_overflow_checked() {
        assert_eq!(parse_decimal("0"), Some(0));
        assert_eq!(parse_decimal("001428"), Some(1428));
        assert_eq!(parse_decimal("18446744073709551615"), Some(u64::MAX));
        assert_eq!(parse_decimal("18446744073709551616"), None);
        assert_eq!(parse_decimal(""), None);
        assert_eq!(parse_decimal("+5"), None);
        assert_eq!(parse_decimal("5 "), None);
        assert_eq!(parse_decimal("0x10"), None);
    }

    fn rrq(list: &[u8]) -> Result<Options, PacketError> {
        Options::parse(list, Context::ReadRequest)
    }

    #[test]
    fn names_and_values_are_case_insensitive_and_unknown_ones_skipped() {
        let o = rrq(b"BlkSize\x001428\x00multicast\x00\x00TSIZE\x000\x00").unwrap();
        assert_eq!(
            o,
            Options {
                blksize: Some(1428),
                tsize: Some(0),
                ..Options::default()
            }
        );
    }

    #[test]
    fn values_below_range_drop_the_option_and_above_are_lowered() {
        let one = |list: &[u8]| rrq(list).unwrap();
        assert_eq!(one(b"blksize\x007\x00").blksize, None);
        assert_eq!(one(b"blksize\x0065465\x00").blksize, Some(65464));
        assert_eq!(one(b"blksize\x00x\x00").blksize, None);
        assert_eq!(one(b"timeout\x000\x00").timeout, None);
        assert_eq!(
            one(b"timeout\x00256\x00").timeout,
            None,
            "a timeout is used as given"
        );
        assert_eq!(one(b"windowsize\x000\x00").windowsize, None);
        assert_eq!(one(b"windowsize\x0065536\x00").windowsize, Some(65535));
        // A read request's tsize asks for the size whatever its value (atftp sends "enable").
        assert_eq!(one(b"tsize\x00enable\x00").tsize, Some(0));
        let wrq = Options::parse(b"tsize\x00enable\x00", Context::WriteRequest).unwrap();
        assert_eq!(wrq.tsize, None);
        let oack = Options::parse(b"tsize\x00412\x00", Context::Oack).unwrap();
        assert_eq!(oack.tsize, Some(412));
    }

    #[test]
    fn malformed_lists_are_typed_errors() {
        assert_eq!(
            rrq(b"blksize\x004\x00blksize\x00512\x00"),
            Err(PacketError::DuplicateOption {
                option: OptionName::Blksize
            })
        );
        assert_eq!(rrq(b"blksize\x00"), Err(PacketError::OptionWithoutValue));
        assert_eq!(rrq(b"blksize\x00512"), Err(PacketError::MissingNul));
        assert_eq!(rrq(b"bl\xffksize\x00512\x00"), Err(PacketError::NonAscii));
        assert_eq!(
            rrq(b"\x00blksize\x00512\x00"),
            Err(PacketError::EmptyOptionName)
        );
        // NUL padding after the last option is the end of the list.
        assert_eq!(rrq(b"\x00\x00\x00"), Ok(Options::default()));
    }
}
