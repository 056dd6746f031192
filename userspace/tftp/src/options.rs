//! The four negotiable options this server knows (RFC 2348 blksize, RFC 2349 timeout and tsize,
//! RFC 7440 windowsize): their names and legal ranges; their wire form is in `packet`. Unknown options are skipped
//! as RFC 2347 asks, so a client probing for extensions still gets its file.

use std::fmt;

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
    pub(crate) fn from_wire(name: &str) -> Option<Self> {
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
    pub(crate) fn range(self) -> (u64, u64) {
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
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::packet::PacketError;

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
