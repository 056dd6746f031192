//! Why bytes are not an SNMP message ([`DecodeError`]) and why a message cannot be put on the
//! wire ([`EncodeError`]). Every decode error says what was being read and the byte offset
//! (from the start of the datagram) where the trouble starts, so an operator can find it in a
//! capture; [`DecodeError::name`] is a stable label for per-reason drop counters.

use thiserror::Error;

use crate::version::Version;

/// A datagram that is not an SNMP message this codec accepts. Offsets count from the first
/// byte of the datagram. `what` names the ASN.1 field being read ("request-id", "varbind",
/// "msgFlags", ...).
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum DecodeError {
    #[error("message of {len} bytes, over the {max}-byte limit")]
    TooLarge { len: usize, max: usize },
    #[error("{what} at offset {offset}: cut off")]
    Truncated { what: &'static str, offset: usize },
    #[error("{what} at offset {offset}: multi-byte tags are not used by SNMP")]
    HighTagNumber { what: &'static str, offset: usize },
    #[error("{what} at offset {offset}: expected tag 0x{expected:02x}, found 0x{found:02x}")]
    UnexpectedTag {
        what: &'static str,
        offset: usize,
        expected: u8,
        found: u8,
    },
    /// Length octet 0x80: SNMP (RFC 3417 §8) allows definite lengths only.
    #[error("{what} at offset {offset}: indefinite length")]
    IndefiniteLength { what: &'static str, offset: usize },
    /// Long-form length with more than 4 length octets (0x85..=0xfe) or the reserved 0xff.
    #[error("{what} at offset {offset}: length with {octets} length octets")]
    LengthTooLong {
        what: &'static str,
        offset: usize,
        octets: u8,
    },
    #[error("{what} at offset {offset}: {len} content bytes, only {available} left")]
    LengthPastEnd {
        what: &'static str,
        offset: usize,
        len: usize,
        available: usize,
    },
    #[error("{count} bytes after the end of {what} at offset {offset}")]
    TrailingBytes {
        what: &'static str,
        offset: usize,
        count: usize,
    },
    #[error("{what} at offset {offset}: integer with no content bytes")]
    EmptyInteger { what: &'static str, offset: usize },
    #[error("{what} at offset {offset}: {len}-byte integer, at most {max} allowed")]
    IntegerTooLong {
        what: &'static str,
        offset: usize,
        len: usize,
        max: usize,
    },
    #[error("{what} at offset {offset}: value does not fit the field")]
    IntegerOutOfRange { what: &'static str, offset: usize },
    #[error("version at offset {offset}: unsupported SNMP version {version}")]
    UnsupportedVersion { offset: usize, version: i64 },
    #[error("PDU at offset {offset}: unknown PDU tag 0x{tag:02x}")]
    UnknownPduType { offset: usize, tag: u8 },
    #[error("varbind value at offset {offset}: unknown type tag 0x{tag:02x}")]
    UnknownValueType { offset: usize, tag: u8 },
    /// NULL-like values with content, or an IpAddress that is not 4 bytes.
    #[error("{what} at offset {offset}: {len} content bytes, {expected} expected")]
    BadValueLength {
        what: &'static str,
        offset: usize,
        len: usize,
        expected: usize,
    },
    #[error("OID at offset {offset}: no content bytes")]
    OidEmpty { offset: usize },
    #[error("OID at offset {offset}: last sub-identifier is cut off")]
    OidTruncated { offset: usize },
    /// A sub-identifier starting with 0x80 (X.690 §8.19.2 wants the fewest octets).
    #[error("OID at offset {offset}: sub-identifier with a leading 0x80 byte")]
    OidNonMinimal { offset: usize },
    #[error("OID at offset {offset}: sub-identifier over 2^32-1")]
    OidArcOverflow { offset: usize },
    /// RFC 2578 §3.5: at most 128 sub-identifiers.
    #[error("OID at offset {offset}: more than {max} arcs")]
    OidTooLong { offset: usize, max: usize },
    #[error("variable-bindings at offset {offset}: more than {max} varbinds")]
    TooManyVarBinds { offset: usize, max: usize },
    /// RFC 3412: msgFlags is an OCTET STRING of exactly one byte.
    #[error("msgFlags at offset {offset}: {len} bytes, 1 expected")]
    BadMsgFlags { offset: usize, len: usize },
}

impl DecodeError {
    /// A short, stable name for the kind of error (fields ignored): a label for drop counters
    /// and log fields that does not change when offsets do.
    pub fn name(&self) -> &'static str {
        match self {
            DecodeError::TooLarge { .. } => "too_large",
            DecodeError::Truncated { .. } => "truncated",
            DecodeError::HighTagNumber { .. } => "high_tag_number",
            DecodeError::UnexpectedTag { .. } => "unexpected_tag",
            DecodeError::IndefiniteLength { .. } => "indefinite_length",
            DecodeError::LengthTooLong { .. } => "length_too_long",
            DecodeError::LengthPastEnd { .. } => "length_past_end",
            DecodeError::TrailingBytes { .. } => "trailing_bytes",
            DecodeError::EmptyInteger { .. } => "empty_integer",
            DecodeError::IntegerTooLong { .. } => "integer_too_long",
            DecodeError::IntegerOutOfRange { .. } => "integer_out_of_range",
            DecodeError::UnsupportedVersion { .. } => "unsupported_version",
            DecodeError::UnknownPduType { .. } => "unknown_pdu_type",
            DecodeError::UnknownValueType { .. } => "unknown_value_type",
            DecodeError::BadValueLength { .. } => "bad_value_length",
            DecodeError::OidEmpty { .. } => "oid_empty",
            DecodeError::OidTruncated { .. } => "oid_truncated",
            DecodeError::OidNonMinimal { .. } => "oid_non_minimal",
            DecodeError::OidArcOverflow { .. } => "oid_arc_overflow",
            DecodeError::OidTooLong { .. } => "oid_too_long",
            DecodeError::TooManyVarBinds { .. } => "too_many_varbinds",
            DecodeError::BadMsgFlags { .. } => "bad_msg_flags",
        }
    }
}

/// A [`Message`](crate::Message) that has no valid encoding. The encoder checks these before
/// writing, so whatever it writes decodes back to the same message.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum EncodeError {
    #[error("encoded message of {len} bytes, over the {max}-byte limit")]
    TooLarge { len: usize, max: usize },
    #[error("{count} varbinds, at most {max} allowed")]
    TooManyVarBinds { count: usize, max: usize },
    /// `Message::Community` carries SNMPv1 or SNMPv2c only.
    #[error("a community-based message cannot be {version}")]
    CommunityVersion { version: Version },
    /// `usm` must be present exactly when msgSecurityModel is 3 (USM), and then the raw
    /// `security_params` must be empty.
    #[error("security model {security_model} does not match the security parameters given")]
    SecurityParams { security_model: i32 },
    /// msgFlags' privFlag (0x02) must be set exactly when the scoped PDU is encrypted.
    #[error("msgFlags 0x{flags:02x} do not match a {} scoped PDU", scoped_kind(*.encrypted))]
    PrivFlag { flags: u8, encrypted: bool },
}

fn scoped_kind(encrypted: bool) -> &'static str {
    if encrypted { "encrypted" } else { "plaintext" }
}
