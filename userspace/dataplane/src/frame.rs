//! Ethernet/IPv4/UDP frames as AF_XDP hands them over and takes them back: a total parser that
//! trusts no length field (every one is checked against the bytes actually there) and a builder
//! that writes a whole reply frame (Ethernet addresses and VLAN tags from the request, IPv4
//! header checksum, UDP checksum) into a UMEM frame without allocating.
//!
//! Hand-written rather than taken from a packet crate: it runs once per packet on the AF_XDP
//! hot path, writes straight into the UMEM, and needs only this one layout.

use std::net::{Ipv4Addr, SocketAddrV4};
use std::ops::Range;

const ETH_HLEN: usize = 14;
const VLAN_HLEN: usize = 4;
const IPV4_HLEN: usize = 20;
const UDP_HLEN: usize = 8;
const ETH_P_IPV4: u16 = 0x0800;
const ETH_P_8021Q: u16 = 0x8100;
const ETH_P_8021AD: u16 = 0x88a8;
/// Largest number of VLAN tags accepted (QinQ).
pub const MAX_VLANS: usize = 2;
/// Bytes of headers in front of the UDP payload at most (Ethernet, two tags, IPv4, UDP).
pub const MAX_HEADERS: usize = ETH_HLEN + MAX_VLANS * VLAN_HLEN + IPV4_HLEN + UDP_HLEN;

/// Why a frame is not a UDP-over-IPv4 datagram this parser takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FrameError {
    #[error("frame shorter than its headers")]
    Short,
    #[error("not IPv4")]
    NotIpv4,
    #[error("more than two VLAN tags")]
    VlanTooDeep,
    #[error("IPv4 header with options")]
    IpOptions,
    #[error("IPv4 fragment")]
    Fragment,
    #[error("not UDP")]
    NotUdp,
    #[error("IPv4 or UDP length contradicts the frame")]
    BadLength,
}

impl FrameError {
    pub fn label(self) -> &'static str {
        match self {
            FrameError::Short => "frame_short",
            FrameError::NotIpv4 => "frame_not_ipv4",
            FrameError::VlanTooDeep => "frame_vlan_too_deep",
            FrameError::IpOptions => "frame_ip_options",
            FrameError::Fragment => "frame_fragment",
            FrameError::NotUdp => "frame_not_udp",
            FrameError::BadLength => "frame_bad_length",
        }
    }
}

/// The addressing of a received frame: what a reply needs to go back the same way.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameInfo {
    pub src_mac: [u8; 6],
    pub dst_mac: [u8; 6],
    /// VLAN tags as on the wire (TPID, TCI), outermost first; `vlans` of them are used.
    pub tags: [[u8; 4]; MAX_VLANS],
    pub vlans: u8,
    pub src: SocketAddrV4,
    pub dst: SocketAddrV4,
}

fn be16(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_be_bytes(b.get(at..at + 2)?.try_into().ok()?))
}

/// Parses a frame; on success returns its addressing and where the UDP payload lies. The
/// payload is bounded by the UDP length, which must fit the IPv4 length, which must fit the
/// frame (trailing Ethernet padding is ignored).
pub fn parse(frame: &[u8]) -> Result<(FrameInfo, Range<usize>), FrameError> {
    let mut proto = be16(frame, 12).ok_or(FrameError::Short)?;
    let mut l3 = ETH_HLEN;
    let mut tags = [[0u8; 4]; MAX_VLANS];
    let mut vlans = 0usize;
    while proto == ETH_P_8021Q || proto == ETH_P_8021AD {
        if vlans == MAX_VLANS {
            return Err(FrameError::VlanTooDeep);
        }
        let tag = frame.get(l3 - 2..l3 + 2).ok_or(FrameError::Short)?;
        tags[vlans].copy_from_slice(tag);
        vlans += 1;
        proto = be16(frame, l3 + 2).ok_or(FrameError::Short)?;
        l3 += VLAN_HLEN;
    }
    if proto != ETH_P_IPV4 {
        return Err(FrameError::NotIpv4);
    }
    let ip = frame.get(l3..l3 + IPV4_HLEN).ok_or(FrameError::Short)?;
    if ip[0] >> 4 != 4 {
        return Err(FrameError::NotIpv4);
    }
    let ihl = usize::from(ip[0] & 0x0f) * 4;
    if ihl < IPV4_HLEN {
        return Err(FrameError::BadLength);
    }
    if ihl > IPV4_HLEN {
        return Err(FrameError::IpOptions);
    }
    let total = usize::from(u16::from_be_bytes([ip[2], ip[3]]));
    if total < IPV4_HLEN + UDP_HLEN || l3 + total > frame.len() {
        return Err(FrameError::BadLength);
    }
    if u16::from_be_bytes([ip[6], ip[7]]) & 0x3fff != 0 {
        return Err(FrameError::Fragment);
    }
    if ip[9] != 17 {
        return Err(FrameError::NotUdp);
    }
    let src_ip = Ipv4Addr::new(ip[12], ip[13], ip[14], ip[15]);
    let dst_ip = Ipv4Addr::new(ip[16], ip[17], ip[18], ip[19]);
    let l4 = l3 + IPV4_HLEN;
    let udp = &frame[l4..l4 + UDP_HLEN];
    let sport = u16::from_be_bytes([udp[0], udp[1]]);
    let dport = u16::from_be_bytes([udp[2], udp[3]]);
    let ulen = usize::from(u16::from_be_bytes([udp[4], udp[5]]));
    if ulen < UDP_HLEN || ulen > total - IPV4_HLEN {
        return Err(FrameError::BadLength);
    }
    let mut dst_mac = [0u8; 6];
    let mut src_mac = [0u8; 6];
    dst_mac.copy_from_slice(&frame[0..6]);
    src_mac.copy_from_slice(&frame[6..12]);
    let info = FrameInfo {
        src_mac,
        dst_mac,
        tags,
        vlans: vlans as u8,
        src: SocketAddrV4::new(src_ip, sport),
        dst: SocketAddrV4::new(dst_ip, dport),
    };
    Ok((info, l4 + UDP_HLEN..l4 + ulen))
}

/// Where a reply frame goes at each layer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReplyAddr {
    pub src_mac: [u8; 6],
    pub dst_mac: [u8; 6],
    pub src: SocketAddrV4,
    pub dst: SocketAddrV4,
}

/// One's-complement sum of `data` as big-endian 16-bit words, added to `acc`.
fn sum16(mut acc: u32, data: &[u8]) -> u32 {
    let mut chunks = data.chunks_exact(2);
    for c in &mut chunks {
        acc += u32::from(u16::from_be_bytes([c[0], c[1]]));
    }
    if let [last] = chunks.remainder() {
        acc += u32::from(*last) << 8;
    }
    acc
}

fn fold(mut acc: u32) -> u16 {
    while acc > 0xffff {
        acc = (acc & 0xffff) + (acc >> 16);
    }
    !(acc as u16)
}

/// Writes a whole frame carrying `payload` from `addr.src` to `addr.dst` with the request's
/// VLAN tags into `out`; returns its length, or `None` if `out` is too small or the payload too
/// long for one IPv4 datagram.
pub fn build(req: &FrameInfo, addr: &ReplyAddr, payload: &[u8], out: &mut [u8]) -> Option<usize> {
    let vlans = usize::from(req.vlans).min(MAX_VLANS);
    let l3 = ETH_HLEN + vlans * VLAN_HLEN;
    let ulen = UDP_HLEN + payload.len();
    let total = IPV4_HLEN + ulen;
    let len = l3 + total;
    if len > out.len() || total > usize::from(u16::MAX) {
        return None;
    }
    let out = &mut out[..len];
    out[0..6].copy_from_slice(&addr.dst_mac);
    out[6..12].copy_from_slice(&addr.src_mac);
    for (i, tag) in req.tags.iter().take(vlans).enumerate() {
        out[12 + i * VLAN_HLEN..12 + (i + 1) * VLAN_HLEN].copy_from_slice(tag);
    }
    out[l3 - 2..l3].copy_from_slice(&ETH_P_IPV4.to_be_bytes());
    let (src_ip, dst_ip) = (addr.src.ip().octets(), addr.dst.ip().octets());
    {
        let ip = &mut out[l3..l3 + IPV4_HLEN];
        ip[0] = 0x45;
        ip[1] = 0;
        ip[2..4].copy_from_slice(&(total as u16).to_be_bytes());
        ip[4..6].copy_from_slice(&[0, 0]);
        ip[6..8].copy_from_slice(&0x4000u16.to_be_bytes()); // DF
        ip[8] = 64;
        ip[9] = 17;
        ip[10..12].copy_from_slice(&[0, 0]);
        ip[12..16].copy_from_slice(&src_ip);
        ip[16..20].copy_from_slice(&dst_ip);
        let csum = fold(sum16(0, ip));
        ip[10..12].copy_from_slice(&csum.to_be_bytes());
    }
    let l4 = l3 + IPV4_HLEN;
    {
        let udp = &mut out[l4..l4 + UDP_HLEN];
        udp[0..2].copy_from_slice(&addr.src.port().to_be_bytes());
        udp[2..4].copy_from_slice(&addr.dst.port().to_be_bytes());
        udp[4..6].copy_from_slice(&(ulen as u16).to_be_bytes());
        udp[6..8].copy_from_slice(&[0, 0]);
    }
    out[l4 + UDP_HLEN..].copy_from_slice(payload);
    // Pseudo-header, then the UDP header and payload; a computed 0 is sent as 0xffff.
    let mut acc = sum16(0, &src_ip);
    acc = sum16(acc, &dst_ip);
    acc += 17 + ulen as u32;
    acc = sum16(acc, &out[l4..]);
    let csum = match fold(acc) {
        0 => 0xffff,
        c => c,
    };
    out[l4 + 6..l4 + 8].copy_from_slice(&csum.to_be_bytes());
    Some(len)
}

/// Whether the IPv4 header checksum and (non-zero) UDP checksum of a frame verify; for tests and
/// the fuzz target's round trip.
pub fn checksums_ok(frame: &[u8]) -> bool {
    let Ok((info, payload)) = parse(frame) else {
        return false;
    };
    let l3 = ETH_HLEN + usize::from(info.vlans) * VLAN_HLEN;
    let ip_ok = fold(sum16(0, &frame[l3..l3 + IPV4_HLEN])) == 0;
    let l4 = l3 + IPV4_HLEN;
    let udp = &frame[l4..payload.end];
    if udp[6..8] == [0, 0] {
        return ip_ok;
    }
    let mut acc = sum16(0, &info.src.ip().octets());
    acc = sum16(acc, &info.dst.ip().octets());
    acc += 17 + udp.len() as u32;
    acc = sum16(acc, udp);
    ip_ok && fold(acc) == 0
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn info(vlans: u8) -> FrameInfo {
        FrameInfo {
            src_mac: [2, 0, 0, 0, 0, 1],
            dst_mac: [2, 0, 0, 0, 0, 2],
            tags: [[0x88, 0xa8, 0, 100], [0x81, 0, 0, 7]],
            vlans,
            src: "198.18.0.2:67".parse().unwrap(),
            dst: "198.18.0.1:67".parse().unwrap(),
        }
    }

    fn addr() -> ReplyAddr {
        ReplyAddr {
            src_mac: [2, 0, 0, 0, 0, 2],
            dst_mac: [2, 0, 0, 0, 0, 1],
            src: "198.18.0.1:67".parse().unwrap(),
            dst: "198.18.0.2:67".parse().unwrap(),
        }
    }

    #[test]
    fn reply_round_trips_with_checksums_and_tags() {
        for vlans in 0..=2 {
            let mut out = [0u8; 2048];
            let payload = [0x5au8; 300];
            let n = build(&info(vlans), &addr(), &payload, &mut out).unwrap();
            let (got, range) = parse(&out[..n]).unwrap();
            assert_eq!(&out[range], &payload[..]);
            assert_eq!(got.vlans, vlans);
            assert_eq!(got.src, addr().src);
            assert_eq!(got.dst, addr().dst);
            assert_eq!(got.dst_mac, addr().dst_mac);
            assert_eq!(
                got.tags[..vlans as usize],
                info(vlans).tags[..vlans as usize]
            );
            assert!(checksums_ok(&out[..n]));
            out[n - 1] ^= 1;
            assert!(
                !checksums_ok(&out[..n]),
                "a flipped payload bit must fail the UDP sum"
            );
        }
    }

    #[test]
    fn bad_frames_are_typed_errors() {
        let mut f = [0u8; 2048];
        let n = build(&info(0), &addr(), &[1u8; 250], &mut f).unwrap();
        let good = f[..n].to_vec();
        assert!(parse(&good).is_ok());
        assert_eq!(parse(&good[..10]), Err(FrameError::Short));
        assert_eq!(parse(&good[..30]), Err(FrameError::Short));
        let mut g = good.clone();
        g[12..14].copy_from_slice(&0x86ddu16.to_be_bytes());
        assert_eq!(parse(&g), Err(FrameError::NotIpv4));
        let mut g = good.clone();
        g[14] = 0x46;
        assert_eq!(parse(&g), Err(FrameError::IpOptions));
        let mut g = good.clone();
        g[14] = 0x44;
        assert_eq!(parse(&g), Err(FrameError::BadLength));
        let mut g = good.clone();
        g[20] = 0x20; // MF
        assert_eq!(parse(&g), Err(FrameError::Fragment));
        let mut g = good.clone();
        g[23] = 6;
        assert_eq!(parse(&g), Err(FrameError::NotUdp));
        let mut g = good.clone();
        g[16..18].copy_from_slice(&4000u16.to_be_bytes()); // IPv4 length past the frame
        assert_eq!(parse(&g), Err(FrameError::BadLength));
        let mut g = good.clone();
        g[38..40].copy_from_slice(&2000u16.to_be_bytes()); // UDP length past IPv4's
        assert_eq!(parse(&g), Err(FrameError::BadLength));
        let mut g = good.clone();
        g[38..40].copy_from_slice(&4u16.to_be_bytes());
        assert_eq!(parse(&g), Err(FrameError::BadLength));
        // Three tags.
        let mut three = good[..12].to_vec();
        for _ in 0..3 {
            three.extend_from_slice(&[0x81, 0, 0, 1]);
        }
        three.extend_from_slice(&good[12..]);
        assert_eq!(parse(&three), Err(FrameError::VlanTooDeep));
    }

    #[test]
    fn padding_after_the_datagram_is_ignored() {
        let mut f = [0u8; 2048];
        let n = build(&info(1), &addr(), &[9u8; 20], &mut f).unwrap();
        let (_, range) = parse(&f[..n + 30]).unwrap();
        assert_eq!(range.len(), 20);
    }

    proptest! {
        #[test]
        fn parse_is_total(bytes in proptest::collection::vec(any::<u8>(), 0..400)) {
            if let Ok((_, r)) = parse(&bytes) {
                prop_assert!(r.end <= bytes.len());
            }
        }

        #[test]
        fn build_then_parse_gives_back_the_payload(
            payload in proptest::collection::vec(any::<u8>(), 0..1400),
            vlans in 0u8..=2,
            sport in any::<u16>(),
            dport in any::<u16>(),
        ) {
            let mut a = addr();
            a.src.set_port(sport);
            a.dst.set_port(dport);
            let mut out = [0u8; 2048];
            let n = build(&info(vlans), &a, &payload, &mut out).unwrap();
            let (got, r) = parse(&out[..n]).unwrap();
            prop_assert_eq!(&out[r], &payload[..]);
            prop_assert_eq!(got.dst, a.dst);
            prop_assert!(checksums_ok(&out[..n]));
        }
    }
}
