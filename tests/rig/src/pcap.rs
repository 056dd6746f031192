//! Reading DHCP traffic back from pcap files: Ethernet, Linux cooked (v1 and v2) and raw IPv4
//! link types; IPv4/UDP decoded here, the BOOTP payload by `provd_dhcp`.

use std::fs::File;
use std::io::BufReader;
use std::net::{Ipv4Addr, SocketAddrV4};
use std::path::Path;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use pcap_file::DataLink;
use pcap_file::pcap::PcapReader;
use provd_dhcp::{Message, MessageType, Op, code};

/// One UDP datagram seen on the wire.
#[derive(Debug, Clone)]
pub struct UdpDatagram {
    /// Capture timestamp (since the Unix epoch).
    pub ts: Duration,
    pub src: SocketAddrV4,
    pub dst: SocketAddrV4,
    pub payload: Vec<u8>,
}

impl UdpDatagram {
    /// The payload parsed as DHCP, if it is a DHCP/BOOTP message.
    pub fn dhcp(&self) -> Option<DhcpPacket> {
        DhcpPacket::from_datagram(self)
    }
}

/// The fields of a captured DHCP message the suites reason about, owned.
#[derive(Debug, Clone)]
pub struct DhcpPacket {
    pub ts: Duration,
    pub src: SocketAddrV4,
    pub dst: SocketAddrV4,
    pub op: Op,
    /// None for BOOTP, `Err(v)` flattened to None too (counted as not DHCP by callers).
    pub msg_type: Option<MessageType>,
    pub xid: u32,
    pub mac: Option<[u8; 6]>,
    pub ciaddr: Ipv4Addr,
    pub yiaddr: Ipv4Addr,
    pub giaddr: Ipv4Addr,
    pub requested_ip: Option<Ipv4Addr>,
    pub server_id: Option<Ipv4Addr>,
    pub client_id: Option<Vec<u8>>,
    /// Option 82's value, verbatim.
    pub relay_agent_info: Option<Vec<u8>>,
    pub lease_time: Option<u32>,
    pub payload: Vec<u8>,
}

impl DhcpPacket {
    pub fn from_datagram(d: &UdpDatagram) -> Option<Self> {
        if ![67, 68].contains(&d.dst.port()) && ![67, 68].contains(&d.src.port()) {
            return None;
        }
        let m = Message::parse(&d.payload).ok()?;
        Some(DhcpPacket {
            ts: d.ts,
            src: d.src,
            dst: d.dst,
            op: m.op(),
            msg_type: m.message_type().ok().flatten(),
            xid: m.xid(),
            mac: m.mac(),
            ciaddr: m.ciaddr(),
            yiaddr: m.yiaddr(),
            giaddr: m.giaddr(),
            requested_ip: m.requested_ip(),
            server_id: m.server_id(),
            client_id: m.client_id().map(|c| c.into_owned()),
            relay_agent_info: m.relay_agent_info().map(|c| c.into_owned()),
            lease_time: m.lease_time(),
            payload: d.payload.clone(),
        })
    }

    pub fn is(&self, t: MessageType) -> bool {
        self.msg_type == Some(t)
    }

    /// Re-parses the payload for anything not copied out.
    pub fn message(&self) -> Message<'_> {
        Message::parse(&self.payload).expect("parsed once already")
    }

    /// A one-line summary for reports: `REQUEST xid=.. mac=.. ciaddr=.. yiaddr=.. 10.0.0.1:68->..`.
    pub fn summary(&self) -> String {
        let t = self.msg_type.map_or("BOOTP", |t| t.name());
        let mut s = format!(
            "{} xid={:#010x} mac={} {}->{} ciaddr={} yiaddr={} giaddr={}",
            t.to_uppercase(),
            self.xid,
            self.mac.map_or("?".into(), |m| crate::fmt_mac(&m)),
            self.src,
            self.dst,
            self.ciaddr,
            self.yiaddr,
            self.giaddr
        );
        if let Some(r) = self.requested_ip {
            s += &format!(" opt50={r}");
        }
        if let Some(r) = self.server_id {
            s += &format!(" opt54={r}");
        }
        if let Some(r) = &self.relay_agent_info {
            s += &format!(" opt82={}", crate::hex(r));
        }
        s
    }
}

/// What a read found beyond the datagrams.
#[derive(Debug, Clone, Default)]
pub struct ReadStats {
    /// Frames that were not IPv4/UDP (ARP, IPv6, fragments...).
    pub skipped: usize,
    /// The file ended inside a record (a capture still being written).
    pub truncated: bool,
}

/// Reads every IPv4/UDP datagram from a pcap file. With `allow_truncated`, a record cut short at
/// the end (the writer is still running) ends the read instead of failing it.
pub fn read_udp(path: &Path, allow_truncated: bool) -> Result<(Vec<UdpDatagram>, ReadStats)> {
    let f = File::open(path).with_context(|| format!("opening {}", path.display()))?;
    let mut stats = ReadStats::default();
    let mut reader = match PcapReader::new(BufReader::new(f)) {
        Ok(r) => r,
        Err(e) if allow_truncated => {
            // Header not flushed yet.
            let _ = e;
            stats.truncated = true;
            return Ok((Vec::new(), stats));
        }
        Err(e) => bail!("{}: not a pcap file: {e}", path.display()),
    };
    let link = reader.header().datalink;
    let mut out = Vec::new();
    while let Some(pkt) = reader.next_packet() {
        let pkt = match pkt {
            Ok(p) => p,
            Err(e) if allow_truncated => {
                let _ = e;
                stats.truncated = true;
                break;
            }
            Err(e) => bail!(
                "{}: corrupt record after {} packets: {e}",
                path.display(),
                out.len()
            ),
        };
        match decode_frame(link, &pkt.data) {
            Some((src, dst, payload)) => out.push(UdpDatagram {
                ts: pkt.timestamp,
                src,
                dst,
                payload: payload.to_vec(),
            }),
            None => stats.skipped += 1,
        }
    }
    Ok((out, stats))
}

/// Reads the DHCP messages from a pcap file (UDP 67/68 datagrams that parse).
pub fn read_dhcp(path: &Path, allow_truncated: bool) -> Result<(Vec<DhcpPacket>, ReadStats)> {
    let (dgrams, mut stats) = read_udp(path, allow_truncated)?;
    let mut out = Vec::with_capacity(dgrams.len());
    for d in &dgrams {
        match d.dhcp() {
            Some(p) => out.push(p),
            None => stats.skipped += 1,
        }
    }
    Ok((out, stats))
}

/// Strips the link layer and IPv4/UDP headers. None for anything that is not an unfragmented
/// IPv4 UDP datagram.
pub fn decode_frame(link: DataLink, frame: &[u8]) -> Option<(SocketAddrV4, SocketAddrV4, &[u8])> {
    let ip = match link {
        DataLink::ETHERNET => {
            let mut off = 12;
            let mut ethertype = u16::from_be_bytes([*frame.get(off)?, *frame.get(off + 1)?]);
            // 802.1Q / QinQ tags.
            while ethertype == 0x8100 || ethertype == 0x88a8 {
                off += 4;
                ethertype = u16::from_be_bytes([*frame.get(off)?, *frame.get(off + 1)?]);
            }
            if ethertype != 0x0800 {
                return None;
            }
            frame.get(off + 2..)?
        }
        DataLink::LINUX_SLL => {
            if u16::from_be_bytes([*frame.get(14)?, *frame.get(15)?]) != 0x0800 {
                return None;
            }
            frame.get(16..)?
        }
        DataLink::LINUX_SLL2 => {
            if u16::from_be_bytes([*frame.first()?, *frame.get(1)?]) != 0x0800 {
                return None;
            }
            frame.get(20..)?
        }
        DataLink::RAW | DataLink::IPV4 => frame,
        _ => return None,
    };
    decode_ipv4_udp(ip)
}

fn decode_ipv4_udp(ip: &[u8]) -> Option<(SocketAddrV4, SocketAddrV4, &[u8])> {
    let vihl = *ip.first()?;
    if vihl >> 4 != 4 {
        return None;
    }
    let ihl = usize::from(vihl & 0x0f) * 4;
    let total = usize::from(u16::from_be_bytes([*ip.get(2)?, *ip.get(3)?]));
    let frag = u16::from_be_bytes([*ip.get(6)?, *ip.get(7)?]);
    // More-fragments set or a non-zero offset: not a whole datagram.
    if frag & 0x3fff != 0 || *ip.get(9)? != 17 || ihl < 20 || total < ihl + 8 {
        return None;
    }
    let ip = ip.get(..total)?;
    let src = Ipv4Addr::new(ip[12], ip[13], ip[14], ip[15]);
    let dst = Ipv4Addr::new(ip[16], ip[17], ip[18], ip[19]);
    let udp = &ip[ihl..];
    let sport = u16::from_be_bytes([udp[0], udp[1]]);
    let dport = u16::from_be_bytes([udp[2], udp[3]]);
    let ulen = usize::from(u16::from_be_bytes([udp[4], udp[5]]));
    if ulen < 8 || ulen > udp.len() {
        return None;
    }
    Some((
        SocketAddrV4::new(src, sport),
        SocketAddrV4::new(dst, dport),
        &udp[8..ulen],
    ))
}

/// Option 82 as the server sent it back, compared byte for byte with what the request carried.
pub fn same_relay_info(request: &DhcpPacket, reply: &DhcpPacket) -> bool {
    request.relay_agent_info.is_some() && request.relay_agent_info == reply.relay_agent_info
}

/// The option code list of a message in wire order, for diagnostics.
pub fn option_codes(p: &DhcpPacket) -> Vec<u8> {
    p.message()
        .fragments()
        .map(|(c, _)| c)
        .filter(|&c| c != code::PAD)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn data(name: &str) -> std::path::PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../data/dhcp")
            .join(name)
    }

    #[test]
    fn reads_the_relayed_discover_offer_vector() {
        let (pkts, stats) = read_dhcp(&data("mta_discover_offer_relayed.pcap"), false).unwrap();
        assert_eq!(stats.skipped, 0);
        assert!(!stats.truncated);
        assert_eq!(pkts.len(), 2);
        let (d, o) = (&pkts[0], &pkts[1]);
        assert!(d.is(MessageType::Discover) && d.op == Op::Request);
        assert!(o.is(MessageType::Offer) && o.op == Op::Reply);
        assert_eq!(d.xid, o.xid);
        assert_eq!(d.mac, o.mac);
        assert!(!d.giaddr.is_unspecified());
        assert!(d.relay_agent_info.is_some());
        // The payload is exactly the standalone BOOTP vector.
        let raw = std::fs::read(data("mta_discover_relayed.bootp")).unwrap();
        assert_eq!(d.payload, raw);
        assert!(option_codes(d).contains(&code::RELAY_AGENT_INFO));
        assert!(d.summary().starts_with("DISCOVER xid="));
    }

    #[test]
    fn truncated_capture_is_tolerated_only_when_asked() {
        let src = std::fs::read(data("mta_discover_offer_relayed.pcap")).unwrap();
        let dir = std::env::temp_dir().join(format!("rig-pcap-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let cut = dir.join("cut.pcap");
        std::fs::write(&cut, &src[..src.len() - 10]).unwrap();
        let (pkts, stats) = read_dhcp(&cut, true).unwrap();
        assert_eq!(pkts.len(), 1);
        assert!(stats.truncated);
        assert!(read_dhcp(&cut, false).is_err());
        let empty = dir.join("empty.pcap");
        std::fs::write(&empty, b"").unwrap();
        assert!(read_dhcp(&empty, true).unwrap().0.is_empty());
        assert!(read_dhcp(&empty, false).is_err());
    }

    #[test]
    fn decodes_cooked_and_rejects_fragments() {
        // A minimal IPv4/UDP datagram 10.0.0.1:68 -> 10.0.0.2:67, payload "hi".
        let mut ip = vec![
            0x45, 0, 0, 30, 0, 0, 0, 0, 64, 17, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2,
        ];
        ip.extend_from_slice(&[0, 68, 0, 67, 0, 10, 0, 0, b'h', b'i']);
        let (s, d, p) = decode_frame(DataLink::RAW, &ip).unwrap();
        assert_eq!(s, "10.0.0.1:68".parse().unwrap());
        assert_eq!(d, "10.0.0.2:67".parse().unwrap());
        assert_eq!(p, b"hi");
        let mut sll = vec![0u8; 16];
        sll[14..16].copy_from_slice(&0x0800u16.to_be_bytes());
        sll.extend_from_slice(&ip);
        assert!(decode_frame(DataLink::LINUX_SLL, &sll).is_some());
        let mut frag = ip.clone();
        frag[6] = 0x20; // more fragments
        assert!(decode_frame(DataLink::RAW, &frag).is_none());
        let mut eth = vec![0u8; 12];
        eth.extend_from_slice(&0x86ddu16.to_be_bytes());
        eth.extend_from_slice(&ip);
        assert!(decode_frame(DataLink::ETHERNET, &eth).is_none());
    }
}
