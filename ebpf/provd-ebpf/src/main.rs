//! provd's XDP program: parses Ethernet (up to two VLAN tags: 802.1Q and QinQ), IPv4 and UDP
//! with a bounds check before every read, and
//! - redirects DHCP (the configured server port) to the AF_XDP socket of the shard that owns the
//!   client (`provd_common::shard_of` on chaddr, the same rule as the socket path's reuseport
//!   program and the lease replay), when that socket sits on the receive queue the frame came in;
//! - passes TFTP (69 and provd's transfer ports) and SNMP (161/162) to the kernel, where provd's
//!   own sockets serve them, counting each;
//! - passes everything else to the kernel, and drops only frames whose lengths contradict
//!   themselves.
//!
//! Every verdict increments its per-CPU counter (`COUNTERS[Verdict as u32]`), which userspace
//! sums (`provd xdp-stats`).
#![no_std]
#![no_main]

use aya_ebpf::bindings::xdp_action;
use aya_ebpf::macros::{map, xdp};
use aya_ebpf::maps::{Array, PerCpuArray, XskMap};
use aya_ebpf::programs::XdpContext;
use provd_common::{
    MAX_SHARDS, MIN_BOOTP_LEN, SHARD_KEY_OFFSET, SNMP_PORT, SNMP_TRAP_PORT, SteerConfig, TFTP_PORT,
    VERDICTS, Verdict,
};

/// One AF_XDP socket per shard, at the shard's index.
#[map]
static XSKS: XskMap = XskMap::with_max_entries(MAX_SHARDS, 0);

/// Entry 0: the shard count and ports, written by the loader before attaching.
#[map]
static CONFIG: Array<SteerConfig> = Array::with_max_entries(1, 0);

/// One per-CPU counter per [`Verdict`].
#[map]
static COUNTERS: PerCpuArray<u64> = PerCpuArray::with_max_entries(VERDICTS, 0);

const ETH_HLEN: usize = 14;
const VLAN_HLEN: usize = 4;
const ETH_P_IPV4: u16 = 0x0800;
const ETH_P_8021Q: u16 = 0x8100;
const ETH_P_8021AD: u16 = 0x88a8;
const IPV4_HLEN: usize = 20;
const UDP_HLEN: usize = 8;
const IPPROTO_UDP: u8 = 17;

#[xdp]
pub fn provd_steer(ctx: XdpContext) -> u32 {
    // Read the queue into a local first: reading ctx after the packet pointers were derived is
    // rejected by the verifier ("dereference of modified ctx ptr").
    // SAFETY: ctx.ctx is the xdp_md the kernel passed in, valid for the program's run.
    let queue = unsafe { (*ctx.ctx).rx_queue_index };
    let (action, verdict) = steer(ctx.data(), ctx.data_end(), queue);
    if let Some(c) = COUNTERS.get_ptr_mut(verdict as u32) {
        // SAFETY: a per-CPU slot of this CPU; nothing else runs on it while we do.
        unsafe { *c += 1 };
    }
    action
}

/// The byte at `start + off`, if the frame holds it.
#[inline(always)]
fn u8_at(start: usize, end: usize, off: usize) -> Option<u8> {
    if start + off + 1 > end {
        return None;
    }
    // SAFETY: checked just above that the byte lies within [data, data_end).
    Some(unsafe { *((start + off) as *const u8) })
}

/// The big-endian u16 at `start + off`, if the frame holds it.
#[inline(always)]
fn be16_at(start: usize, end: usize, off: usize) -> Option<u16> {
    if start + off + 2 > end {
        return None;
    }
    // SAFETY: checked just above that both bytes lie within [data, data_end).
    let b = unsafe { *((start + off) as *const [u8; 2]) };
    Some(u16::from_be_bytes(b))
}

#[inline(always)]
fn pass(v: Verdict) -> (u32, Verdict) {
    (xdp_action::XDP_PASS, v)
}

#[inline(always)]
fn steer(start: usize, end: usize, queue: u32) -> (u32, Verdict) {
    let bad = (xdp_action::XDP_DROP, Verdict::DropBadLength);
    // Ethernet, then at most two VLAN tags.
    let Some(mut proto) = be16_at(start, end, 12) else {
        return bad;
    };
    let mut l3 = ETH_HLEN;
    if proto == ETH_P_8021Q || proto == ETH_P_8021AD {
        let Some(p) = be16_at(start, end, l3 + 2) else {
            return bad;
        };
        proto = p;
        l3 += VLAN_HLEN;
        if proto == ETH_P_8021Q || proto == ETH_P_8021AD {
            let Some(p) = be16_at(start, end, l3 + 2) else {
                return bad;
            };
            proto = p;
            l3 += VLAN_HLEN;
            if proto == ETH_P_8021Q || proto == ETH_P_8021AD {
                return pass(Verdict::PassVlanTooDeep);
            }
        }
    }
    if proto != ETH_P_IPV4 {
        return pass(Verdict::PassNotIpv4);
    }
    // IPv4: version, IHL (no options here), total length within the frame, no fragments.
    let Some(vihl) = u8_at(start, end, l3) else {
        return bad;
    };
    if vihl >> 4 != 4 {
        return pass(Verdict::PassNotIpv4);
    }
    let ihl = usize::from(vihl & 0x0f) * 4;
    if ihl < IPV4_HLEN {
        return bad;
    }
    if ihl > IPV4_HLEN {
        return pass(Verdict::PassIpOptions);
    }
    // Every packet read comes before the length consistency checks below: were the checks
    // first, LLVM would drop the per-read bounds checks they imply, and the verifier (which does
    // not follow that arithmetic) would reject the program.
    let (Some(total), Some(frag), Some(ip_proto)) = (
        be16_at(start, end, l3 + 2),
        be16_at(start, end, l3 + 6),
        u8_at(start, end, l3 + 9),
    ) else {
        return bad;
    };
    if start + l3 + IPV4_HLEN > end {
        return bad;
    }
    if frag & 0x3fff != 0 {
        return pass(Verdict::PassFragment);
    }
    if ip_proto != IPPROTO_UDP {
        return pass(Verdict::PassNotUdp);
    }
    let l4 = l3 + IPV4_HLEN;
    let (Some(dport), Some(ulen)) = (be16_at(start, end, l4 + 2), be16_at(start, end, l4 + 4))
    else {
        return bad;
    };
    let Some(cfg) = CONFIG.get(0) else {
        return pass(Verdict::PassOtherPort);
    };
    let is_dhcp = dport == cfg.dhcp_port;
    // The shard key (chaddr bytes 2..6), read now for the reason above.
    let mut key = 0u32;
    if is_dhcp {
        let k = l4 + UDP_HLEN + SHARD_KEY_OFFSET;
        let (Some(hi), Some(lo)) = (be16_at(start, end, k), be16_at(start, end, k + 2)) else {
            return bad;
        };
        key = (u32::from(hi) << 16) | u32::from(lo);
    }
    // Lengths: IPv4 total within the frame, UDP length within IPv4's payload.
    let total = usize::from(total);
    if total < IPV4_HLEN + UDP_HLEN || start + l3 + total > end {
        return bad;
    }
    let ulen = usize::from(ulen);
    if ulen < UDP_HLEN || ulen > total - IPV4_HLEN {
        return bad;
    }
    if is_dhcp {
        if ulen < UDP_HLEN + MIN_BOOTP_LEN {
            return bad;
        }
        return dhcp(key, cfg.shards, queue);
    }
    if dport == TFTP_PORT
        || (cfg.tftp_port != 0 && dport == cfg.tftp_port)
        || (cfg.tftp_transfer_lo != 0
            && dport >= cfg.tftp_transfer_lo
            && dport <= cfg.tftp_transfer_hi)
    {
        return pass(Verdict::PassTftp);
    }
    if dport == SNMP_PORT || dport == SNMP_TRAP_PORT {
        return pass(Verdict::PassSnmp);
    }
    pass(Verdict::PassOtherPort)
}

/// A DHCP request whose shard key (chaddr bytes 2..6) is `key`: to the owning shard's socket when
/// it is bound to this queue, else to the kernel.
#[inline(always)]
fn dhcp(key: u32, shards: u32, queue: u32) -> (u32, Verdict) {
    if shards == 0 || shards > MAX_SHARDS {
        return pass(Verdict::PassDhcpNoSocket);
    }
    let shard = key % shards;
    // A socket bound to another queue would make the kernel drop the frame: pass it instead.
    if XSKS.get(shard) != Some(queue) {
        return pass(Verdict::PassDhcpNoSocket);
    }
    match XSKS.redirect(shard, u64::from(xdp_action::XDP_PASS)) {
        Ok(a) if a == xdp_action::XDP_REDIRECT => (a, Verdict::RedirectDhcp),
        _ => pass(Verdict::PassDhcpNoSocket),
    }
}

#[cfg(not(test))]
#[panic_handler]
fn panic(_info: &core::panic::PanicInfo<'_>) -> ! {
    loop {}
}

#[unsafe(link_section = "license")]
#[unsafe(no_mangle)]
static LICENSE: [u8; 13] = *b"Dual MIT/GPL\0";
