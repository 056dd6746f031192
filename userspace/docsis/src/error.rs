//! Errors of the binary codec. Text-form errors live in `text::TextError`.

use thiserror::Error;

/// Why a binary config file could not be decoded. Every variant names the byte offset where
/// the problem was found, so an operator can look at the file with a hex dump.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum DecodeError {
    #[error("empty file")]
    Empty,
    #[error("offset {offset}: TLV {typ} header is cut off by the end of the file")]
    Truncated { offset: usize, typ: u8 },
    #[error("offset {offset}: TLV {typ} claims {len} bytes but only {available} remain")]
    LengthPastEnd {
        offset: usize,
        typ: u8,
        len: usize,
        available: usize,
    },
    #[error("offset {offset}: pad byte 0x00 before the end-of-data marker")]
    PadBeforeEnd { offset: usize },
    #[error("offset {offset}: data after the end-of-data marker (only 0x00 padding may follow)")]
    DataAfterEnd { offset: usize },
    #[error("no end-of-data marker (0xff) in a CM config file")]
    MissingEndMarker,
    #[error(
        "offset {offset}: byte 0x{byte:02x} is a CM file marker, not allowed in a PacketCable MTA file"
    )]
    MarkerInMtaFile { offset: usize, byte: u8 },
}

/// Why a tree could not be turned into bytes: the tree holds something the wire format cannot
/// carry. Trees made by `decode` or `text::parse` never fail this way.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum EncodeError {
    #[error("TLV {typ}: value of {len} bytes does not fit its length field (max {max})")]
    ValueTooLong { typ: u8, len: usize, max: usize },
    #[error(
        "TLV {typ} cannot appear at the top level: 0 is padding and 255 the end-of-data marker"
    )]
    ReservedType { typ: u8 },
    #[error("the settings make a {actual:?} file (an MTA file starts with MtaConfigDelimiter 1)")]
    WrongKind { actual: crate::FileKind },
    #[error("an in-file MTA hash needs the file to end with MtaConfigDelimiter 255")]
    MissingMtaEndDelimiter,
    #[error("the MTA hash OID cannot be BER-encoded: {0}")]
    Ber(#[from] crate::ber::BerError),
}
