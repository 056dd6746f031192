//! Typed errors of the codec. Each names what was wrong and where, so a drop counter and a log
//! line can say why a packet was refused.

/// Why a datagram is not a DHCPv4 message provd can read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ParseError {
    #[error("truncated: {len} bytes, a DHCP message needs at least {need}")]
    Truncated { len: usize, need: usize },
    #[error("too long: {len} bytes, the limit is {max}")]
    TooLong { len: usize, max: usize },
    #[error("op {op} is neither BOOTREQUEST (1) nor BOOTREPLY (2)")]
    BadOp { op: u8 },
    #[error("hlen {hlen} exceeds the 16-byte chaddr field")]
    BadHlen { hlen: u8 },
    #[error("magic cookie {found:02x?} is not 63 82 53 63")]
    BadMagic { found: [u8; 4] },
    #[error("option {code} at offset {offset} has no length byte")]
    TruncatedOption { code: u8, offset: usize },
    #[error("option {code} at offset {offset} claims {len} bytes, past the end of its field")]
    OptionOverrun { code: u8, offset: usize, len: u8 },
    #[error("option 52 (overload) must be one byte of 1, 2 or 3")]
    BadOverload,
    #[error("more than {max} option fragments")]
    TooManyOptions { max: usize },
}

/// Why a message could not be written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EncodeError {
    #[error("message of {len} bytes exceeds the client's limit of {max}")]
    TooLarge { len: usize, max: usize },
    #[error("field {field} holds {len} bytes, at most {max} fit")]
    FieldTooLong {
        field: &'static str,
        len: usize,
        max: usize,
    },
    #[error("option code {code} is reserved (pad/end) and carries no value")]
    ReservedCode { code: u8 },
}
