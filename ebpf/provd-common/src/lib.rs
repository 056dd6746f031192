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

/// Largest shard count the XDP program's socket map holds.
pub const MAX_SHARDS: u32 = 64;

/// Well-known ports the XDP program looks at.
pub const DHCP_SERVER_PORT: u16 = 67;
pub const TFTP_PORT: u16 = 69;
pub const SNMP_PORT: u16 = 161;
pub const SNMP_TRAP_PORT: u16 = 162;

/// What the XDP program is told at attach time: the one entry of its `CONFIG` array map.
/// All fields host order; ports 0 mean "none".
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SteerConfig {
    /// Shard count for [`shard_of`]; 0 = no AF_XDP sockets (DHCP passes to the kernel).
    pub shards: u32,
    /// The DHCP server port provd serves (67, or another in tests).
    pub dhcp_port: u16,
    /// First and last of the TFTP transfer ports provd owns (inclusive); 0..0 = none.
    pub tftp_transfer_lo: u16,
    pub tftp_transfer_hi: u16,
    /// provd's TFTP listening port when not 69; 0 = none.
    pub tftp_port: u16,
}

#[cfg(feature = "user")]
// SAFETY: repr(C), only integers, explicit padding field: every bit pattern is valid.
unsafe impl aya::Pod for SteerConfig {}

/// The XDP program's verdicts: each has a per-CPU counter at its index in the `COUNTERS` map.
#[repr(u32)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Not IPv4 (ARP, IPv6, ...): to the kernel.
    PassNotIpv4 = 0,
    /// More than two VLAN tags: to the kernel.
    PassVlanTooDeep = 1,
    /// IPv4 with options (IHL > 5): to the kernel, whose stack parses options.
    PassIpOptions = 2,
    /// An IPv4 fragment: to the kernel, which reassembles.
    PassFragment = 3,
    /// Not UDP: to the kernel.
    PassNotUdp = 4,
    /// UDP to a port provd does not own: to the kernel.
    PassOtherPort = 5,
    /// Truncated or inconsistent Ethernet/IPv4/UDP lengths: dropped.
    DropBadLength = 6,
    /// DHCP redirected to the AF_XDP socket of the owning shard.
    RedirectDhcp = 7,
    /// DHCP whose owning shard has no AF_XDP socket on this receive queue: to the kernel,
    /// where the same shard's reuseport socket takes it.
    PassDhcpNoSocket = 8,
    /// TFTP (69 or a transfer port): to the kernel's TFTP sockets.
    PassTftp = 9,
    /// SNMP (161/162): to the kernel's SNMP sockets.
    PassSnmp = 10,
}

/// Number of verdicts (size of the counter map).
pub const VERDICTS: u32 = 11;

impl Verdict {
    pub const ALL: [Verdict; VERDICTS as usize] = [
        Verdict::PassNotIpv4,
        Verdict::PassVlanTooDeep,
        Verdict::PassIpOptions,
        Verdict::PassFragment,
        Verdict::PassNotUdp,
        Verdict::PassOtherPort,
        Verdict::DropBadLength,
        Verdict::RedirectDhcp,
        Verdict::PassDhcpNoSocket,
        Verdict::PassTftp,
        Verdict::PassSnmp,
    ];

    /// The counter's name in logs and `provd xdp-stats`.
    pub fn label(self) -> &'static str {
        match self {
            Verdict::PassNotIpv4 => "pass_not_ipv4",
            Verdict::PassVlanTooDeep => "pass_vlan_too_deep",
            Verdict::PassIpOptions => "pass_ip_options",
            Verdict::PassFragment => "pass_fragment",
            Verdict::PassNotUdp => "pass_not_udp",
            Verdict::PassOtherPort => "pass_other_port",
            Verdict::DropBadLength => "drop_bad_length",
            Verdict::RedirectDhcp => "redirect_dhcp",
            Verdict::PassDhcpNoSocket => "pass_dhcp_no_socket",
            Verdict::PassTftp => "pass_tftp",
            Verdict::PassSnmp => "pass_snmp",
        }
    }
}

/// Smallest UDP payload that can be a BOOTP message with the DHCP magic cookie.
pub const MIN_BOOTP_LEN: usize = 240;

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

    #[test]
    fn verdicts_are_indexed_by_their_value() {
        for (i, v) in Verdict::ALL.iter().enumerate() {
            assert_eq!(*v as usize, i);
        }
    }
}
