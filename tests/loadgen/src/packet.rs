//! The requests a relay agent forwards for its clients, written with the project's codec into
//! reused buffers, and the client identities (MAC addresses) they carry.

use std::net::Ipv4Addr;

use provd_dhcp::{Header, MessageType, MessageWriter, code};

/// Hops a one-level relay puts in the requests it forwards.
const RELAY_HOPS: u8 = 1;
/// Requests are small; this is what a minimal client may receive back (RFC 2131: 576 − 28).
const MAX_LEN: usize = 548;
/// What clients ask for: mask, router, DNS, lease time, server id, T1, T2.
const PARAM_REQUEST_LIST: [u8; 7] = [
    code::SUBNET_MASK,
    code::ROUTER,
    code::DNS_SERVER,
    code::LEASE_TIME,
    code::SERVER_ID,
    code::RENEWAL_TIME,
    code::REBINDING_TIME,
];

/// The MAC address of client `index` in the run salted `salt`: `02:<salt>:<mix(index), 4 bytes>`.
/// Locally administered, unicast; distinct for every (salt, index) pair (`mix` is a bijection on
/// u32), so two runs with different salts never share a client. The index is scrambled because
/// consecutive MACs are a pathological case for servers that pick addresses by hashing the MAC
/// (dnsmasq then offers many concurrent clients the same address and NAKs all but one).
pub fn client_mac(salt: u8, index: u32) -> [u8; 6] {
    let i = mix(index).to_be_bytes();
    [0x02, salt, i[0], i[1], i[2], i[3]]
}

/// A bijective 32-bit mixer (xorshift and odd multiplications, each invertible).
fn mix(mut x: u32) -> u32 {
    x ^= x >> 16;
    x = x.wrapping_mul(0x7feb_352d);
    x ^= x >> 15;
    x = x.wrapping_mul(0x846c_a68b);
    x ^= x >> 16;
    x
}

pub fn chaddr(mac: [u8; 6]) -> [u8; 16] {
    let mut c = [0u8; 16];
    c[..6].copy_from_slice(&mac);
    c
}

fn relayed_header(xid: u32, mac: [u8; 6], relay: Ipv4Addr) -> Header<'static> {
    Header {
        op: 1,
        htype: 1,
        hlen: 6,
        hops: RELAY_HOPS,
        xid,
        secs: 0,
        flags: 0,
        ciaddr: Ipv4Addr::UNSPECIFIED,
        yiaddr: Ipv4Addr::UNSPECIFIED,
        siaddr: Ipv4Addr::UNSPECIFIED,
        giaddr: relay,
        chaddr: chaddr(mac),
        sname: &[],
        file: &[],
    }
}

/// A relayed DHCPDISCOVER from `mac`. Returns the datagram length.
pub fn discover(buf: &mut Vec<u8>, xid: u32, mac: [u8; 6], relay: Ipv4Addr) -> usize {
    let h = relayed_header(xid, mac, relay);
    // The message is fixed and small: writing it cannot fail.
    let mut w = MessageWriter::new(buf, &h, MAX_LEN).expect("fixed header fits");
    w.option(code::MESSAGE_TYPE, &[MessageType::Discover as u8])
        .and_then(|w| w.option(code::PARAM_REQUEST_LIST, &PARAM_REQUEST_LIST))
        .expect("small options fit");
    w.finish().expect("small message fits")
}

/// A relayed DHCPREQUEST in SELECTING state, answering an OFFER of `offered` from `server_id`.
pub fn request_selecting(
    buf: &mut Vec<u8>,
    xid: u32,
    mac: [u8; 6],
    relay: Ipv4Addr,
    server_id: Ipv4Addr,
    offered: Ipv4Addr,
) -> usize {
    let h = relayed_header(xid, mac, relay);
    let mut w = MessageWriter::new(buf, &h, MAX_LEN).expect("fixed header fits");
    w.option(code::MESSAGE_TYPE, &[MessageType::Request as u8])
        .and_then(|w| w.ipv4(code::SERVER_ID, server_id))
        .and_then(|w| w.ipv4(code::REQUESTED_IP, offered))
        .and_then(|w| w.option(code::PARAM_REQUEST_LIST, &PARAM_REQUEST_LIST))
        .expect("small options fit");
    w.finish().expect("small message fits")
}

/// A relayed DHCPREQUEST in INIT-REBOOT state: ciaddr 0, option 50 = `addr`, no option 54, and
/// option 61 = `client_id` when given (at most 255 bytes: one option, and the message still fits).
pub fn request_init_reboot(
    buf: &mut Vec<u8>,
    xid: u32,
    mac: [u8; 6],
    relay: Ipv4Addr,
    addr: Ipv4Addr,
    client_id: Option<&[u8]>,
) -> usize {
    assert!(
        client_id.is_none_or(|c| c.len() <= 255),
        "client id over 255 bytes"
    );
    let h = relayed_header(xid, mac, relay);
    let mut w = MessageWriter::new(buf, &h, MAX_LEN).expect("fixed header fits");
    w.option(code::MESSAGE_TYPE, &[MessageType::Request as u8])
        .and_then(|w| w.ipv4(code::REQUESTED_IP, addr))
        .expect("small options fit");
    if let Some(cid) = client_id {
        w.option(code::CLIENT_ID, cid).expect("one option fits");
    }
    w.option(code::PARAM_REQUEST_LIST, &PARAM_REQUEST_LIST)
        .expect("small options fit");
    w.finish().expect("small message fits")
}

/// What the generator needs from a server's reply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reply {
    pub xid: u32,
    pub kind: MessageType,
    pub mac: [u8; 6],
    pub yiaddr: Ipv4Addr,
    pub server_id: Option<Ipv4Addr>,
}

/// Parses a datagram received on the relay socket; `None` for anything that is not a BOOTREPLY
/// with a valid message type and a 6-byte Ethernet chaddr.
pub fn parse_reply(buf: &[u8]) -> Option<Reply> {
    let m = provd_dhcp::Message::parse(buf).ok()?;
    if m.op() != provd_dhcp::Op::Reply {
        return None;
    }
    let kind = m.message_type().ok()??;
    Some(Reply {
        xid: m.xid(),
        kind,
        mac: m.mac()?,
        yiaddr: m.yiaddr(),
        server_id: m.server_id(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use provd_dhcp::{Message, Op, RequestKind};

    const RELAY: Ipv4Addr = Ipv4Addr::new(198, 18, 2, 1);
    const SERVER: Ipv4Addr = Ipv4Addr::new(198, 18, 2, 2);

    #[test]
    fn discover_round_trips() {
        let mut buf = Vec::with_capacity(MAX_LEN);
        let mac = client_mac(7, 0x0102_0304);
        assert_eq!(&mac[..2], &[0x02, 7]);
        let n = discover(&mut buf, 0xabcd_0001, mac, RELAY);
        assert_eq!(n, buf.len());
        let m = Message::parse(&buf[..n]).unwrap();
        assert_eq!(m.op(), Op::Request);
        assert_eq!(m.xid(), 0xabcd_0001);
        assert_eq!(m.message_type(), Ok(Some(MessageType::Discover)));
        assert_eq!(m.mac(), Some(mac));
        assert_eq!(m.giaddr(), RELAY);
        assert_eq!(m.hops(), 1);
        assert_eq!(m.ciaddr(), Ipv4Addr::UNSPECIFIED);
        assert!(m.requested_ip().is_none());
        assert!(m.server_id().is_none());
        assert_eq!(
            m.param_request_list().unwrap().as_ref(),
            &PARAM_REQUEST_LIST
        );
    }

    #[test]
    fn selecting_request_round_trips() {
        let mut buf = Vec::new();
        let offered = Ipv4Addr::new(198, 19, 0, 10);
        let n = request_selecting(&mut buf, 9, client_mac(0, 1), RELAY, SERVER, offered);
        let m = Message::parse(&buf[..n]).unwrap();
        assert_eq!(m.message_type(), Ok(Some(MessageType::Request)));
        assert_eq!(m.xid(), 9);
        assert_eq!(m.giaddr(), RELAY);
        assert_eq!(
            m.request_kind(),
            RequestKind::Selecting {
                server_id: SERVER,
                requested: offered
            }
        );
    }

    #[test]
    fn init_reboot_request_round_trips() {
        let mut buf = Vec::new();
        let addr = Ipv4Addr::new(198, 19, 3, 4);
        let n = request_init_reboot(&mut buf, 5, client_mac(0, 2), RELAY, addr, None);
        let m = Message::parse(&buf[..n]).unwrap();
        assert_eq!(m.message_type(), Ok(Some(MessageType::Request)));
        assert_eq!(m.xid(), 5);
        assert_eq!(m.mac(), Some(client_mac(0, 2)));
        assert_eq!(m.giaddr(), RELAY);
        assert!(m.ciaddr().is_unspecified());
        assert!(m.server_id().is_none());
        assert!(m.client_id().is_none());
        assert_eq!(
            m.request_kind(),
            RequestKind::InitReboot { requested: addr }
        );
    }

    #[test]
    fn init_reboot_request_carries_the_client_id() {
        let mut buf = Vec::new();
        let addr = Ipv4Addr::new(198, 19, 3, 4);
        let cid = [1, 0, 0x0c, 1, 2, 3, 4];
        let n = request_init_reboot(&mut buf, 6, client_mac(0, 2), RELAY, addr, Some(&cid));
        let m = Message::parse(&buf[..n]).unwrap();
        assert_eq!(m.client_id().unwrap().as_ref(), &cid);
        assert_eq!(
            m.request_kind(),
            RequestKind::InitReboot { requested: addr }
        );
        assert!(m.server_id().is_none());
        // The longest client id one option holds still fits the message.
        let long = [0xab; 255];
        let n = request_init_reboot(&mut buf, 7, client_mac(0, 2), RELAY, addr, Some(&long));
        assert!(n <= MAX_LEN);
        let m = Message::parse(&buf[..n]).unwrap();
        assert_eq!(m.client_id().unwrap().as_ref(), &long);
    }

    #[test]
    fn reused_buffer_does_not_reallocate() {
        let mut buf = Vec::with_capacity(MAX_LEN);
        let p = buf.as_ptr();
        for i in 0..100 {
            discover(&mut buf, i, client_mac(0, i), RELAY);
            request_selecting(&mut buf, i, client_mac(0, i), RELAY, SERVER, SERVER);
        }
        assert_eq!(buf.as_ptr(), p);
    }

    #[test]
    fn replies_parse_and_requests_do_not() {
        let mut buf = Vec::new();
        let mut h = Header::reply(42, chaddr(client_mac(3, 3)), 1, 6);
        h.yiaddr = Ipv4Addr::new(198, 19, 0, 11);
        h.giaddr = RELAY;
        let mut w = MessageWriter::new(&mut buf, &h, MAX_LEN).unwrap();
        w.option(code::MESSAGE_TYPE, &[MessageType::Offer as u8])
            .unwrap()
            .ipv4(code::SERVER_ID, SERVER)
            .unwrap();
        let n = w.finish().unwrap();
        let r = parse_reply(&buf[..n]).unwrap();
        assert_eq!(
            r,
            Reply {
                xid: 42,
                kind: MessageType::Offer,
                mac: client_mac(3, 3),
                yiaddr: Ipv4Addr::new(198, 19, 0, 11),
                server_id: Some(SERVER),
            }
        );
        let n = discover(&mut buf, 1, client_mac(0, 0), RELAY);
        assert!(parse_reply(&buf[..n]).is_none());
        assert!(parse_reply(&[0u8; 10]).is_none());
    }

    #[test]
    fn macs_are_distinct_up_to_ten_million() {
        const N: u32 = 10_000_000;
        let key = |m: [u8; 6]| u64::from_be_bytes([0, 0, m[0], m[1], m[2], m[3], m[4], m[5]]);
        let mut macs: Vec<u64> = (0..N)
            .map(|i| {
                let m = client_mac(0, i);
                assert_eq!(m[0] & 0x03, 0x02, "locally administered unicast");
                key(m)
            })
            .collect();
        macs.sort_unstable();
        macs.dedup();
        assert_eq!(macs.len(), N as usize);
        // Other salts never reuse a MAC of salt 0 (the second byte differs).
        for i in [0, 1, N - 1] {
            assert_ne!(client_mac(0, i), client_mac(1, i));
            assert_eq!(client_mac(1, i)[1], 1);
        }
    }
}
