//! The sizes the codec stops at, a leaf every layer (message, PDU) reads.

/// The largest datagram decoded or encoded: the IPv4 UDP payload limit (65535 - 20 - 8).
pub const MAX_MESSAGE_SIZE: usize = 65_507;

/// The most varbinds decoded or encoded in one PDU. Provisioning PDUs carry a handful; a
/// GETBULK answer a few hundred. The bound keeps a hostile datagram of tiny varbinds from
/// turning into tens of thousands of allocations.
pub const MAX_VARBINDS: usize = 1024;
