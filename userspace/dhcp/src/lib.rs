//! DHCPv4 wire format for a cable provisioning server: a borrowed zero-copy view for the hot path
//! ([`Message`]), a writer that builds replies into a reused buffer ([`MessageWriter`]), an owned
//! form for tests and tools ([`OwnedMessage`]), and typed views of the option payloads that cable
//! devices carry: 43 (vendor sub-options), 60 (vendor class), 82 (relay agent), 122 (CableLabs
//! client configuration) and 124/125 (vendor-identifying).
//!
//! Everything here is total: any byte string either parses or yields a typed error. No sockets,
//! no clock, no allocation on the parse path.

pub mod cablelabs;
mod error;
mod message;
mod owned;
pub mod relay;
pub mod suboption;
mod writer;

pub use error::{EncodeError, ParseError};
pub use message::{BROADCAST_FLAG, MAGIC, MIN_LEN, Message, MessageType, Op, RequestKind};
pub use owned::OwnedMessage;
pub use writer::{BOOTP_MIN_LEN, Header, MessageWriter};

/// Option codes provd reads or writes (RFC 2132 and the cable registries).
pub mod code {
    pub const PAD: u8 = 0;
    pub const SUBNET_MASK: u8 = 1;
    pub const TIME_OFFSET: u8 = 2;
    pub const ROUTER: u8 = 3;
    pub const TIME_SERVER: u8 = 4;
    pub const DNS_SERVER: u8 = 6;
    pub const LOG_SERVER: u8 = 7;
    pub const HOST_NAME: u8 = 12;
    pub const DOMAIN_NAME: u8 = 15;
    pub const VENDOR_SPECIFIC: u8 = 43;
    pub const REQUESTED_IP: u8 = 50;
    pub const LEASE_TIME: u8 = 51;
    pub const OVERLOAD: u8 = 52;
    pub const MESSAGE_TYPE: u8 = 53;
    pub const SERVER_ID: u8 = 54;
    pub const PARAM_REQUEST_LIST: u8 = 55;
    pub const MESSAGE: u8 = 56;
    pub const MAX_MESSAGE_SIZE: u8 = 57;
    pub const RENEWAL_TIME: u8 = 58;
    pub const REBINDING_TIME: u8 = 59;
    pub const VENDOR_CLASS: u8 = 60;
    pub const CLIENT_ID: u8 = 61;
    pub const TFTP_SERVER: u8 = 66;
    pub const BOOTFILE: u8 = 67;
    /// Cisco: TFTP server addresses.
    pub const TFTP_SERVER_ADDRS: u8 = 150;
    /// Polycom/Yealink: provisioning server URL.
    pub const PROVISIONING_URL: u8 = 160;
    pub const RELAY_AGENT_INFO: u8 = 82;
    pub const CABLELABS_CLIENT_CONFIG: u8 = 122;
    pub const VI_VENDOR_CLASS: u8 = 124;
    pub const VI_VENDOR_INFO: u8 = 125;
    pub const END: u8 = 255;
}
