//! Types shared by the eBPF steering program and userspace: whatever both sides must agree on
//! byte for byte. `no_std`, no dependencies, so the XDP program can use it unchanged.
#![no_std]

/// Offset of chaddr in a BOOTP message (the UDP payload).
pub const CHADDR_OFFSET: usize = 28;
/// The four chaddr bytes that choose a shard: the low bytes of a MAC vary most within an OUI.
pub const SHARD_KEY_OFFSET: usize = CHADDR_OFFSET + 2;

/// The worker shard that owns a DHCP client: chaddr bytes 2..6 as a big-endian u32, modulo the
/// shard count. Every path that steers packets (the socket layer's reuseport program, the XDP
/// program) and the lease replay that assigns leases to shards use this one function, so a
/// client's packets always meet the shard holding its lease.
#[inline]
pub fn shard_of(chaddr: &[u8; 6], shards: u32) -> u32 {
    let key = u32::from_be_bytes([chaddr[2], chaddr[3], chaddr[4], chaddr[5]]);
    key % shards.max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shard_depends_on_low_mac_bytes_only() {
        assert_eq!(shard_of(&[0, 0x15, 0, 0, 0, 5], 2), 1);
        assert_eq!(shard_of(&[9, 9, 0, 0, 0, 5], 2), 1);
        assert_eq!(shard_of(&[0, 0, 0, 0, 0, 4], 4), 0);
        assert_eq!(shard_of(&[0, 0, 0, 0, 0, 4], 0), 0);
    }
}
