//! The null responder: canned replies through the same I/O path, with no engine, no lease table
//! and no lease log. It measures what the load generator, the kernel and the I/O path can carry
//! on this machine, the ceiling provd's real numbers are compared with in `cargo xtask bench`.
//!
//! A DISCOVER gets an OFFER and a REQUEST an ACK of an address made from the client's MAC, to
//! the relay (giaddr) or broadcast; anything else gets nothing.

use std::net::{Ipv4Addr, SocketAddrV4};

use provd_dhcp::{Message, MessageType, Op};
use provd_engine::Destination;

/// Length of the fixed BOOTP header (through `file`).
const BOOTP_FIXED: usize = 236;

/// Writes the canned reply to `payload` into `out`; returns where it goes.
pub fn reply(
    payload: &[u8],
    local: Ipv4Addr,
    ifindex: u32,
    out: &mut Vec<u8>,
) -> Option<Destination> {
    let m = Message::parse(payload).ok()?;
    if m.op() != Op::Request {
        return None;
    }
    let kind = match m.message_type().ok()?? {
        MessageType::Discover => 2u8, // OFFER
        MessageType::Request => 5u8,  // ACK
        _ => return None,
    };
    let fixed = payload.get(..BOOTP_FIXED)?;
    out.clear();
    out.extend_from_slice(fixed);
    out[0] = 2; // BOOTREPLY
    out[8..10].fill(0); // secs; flags (broadcast bit) kept
    // yiaddr: 198.19.x.y from the MAC's low bytes (inside the bench pool's /16).
    let ch = &fixed[28..34];
    out[16..20].copy_from_slice(&[198, 19, ch[4], ch[5].max(10)]);
    out.extend_from_slice(&[99, 130, 83, 99]);
    out.extend_from_slice(&[53, 1, kind]);
    out.extend_from_slice(&[54, 4]);
    out.extend_from_slice(&local.octets());
    out.extend_from_slice(&[51, 4, 0, 0, 0x0e, 0x10]); // 3600 s
    out.extend_from_slice(&[1, 4, 255, 255, 0, 0]);
    out.push(255);
    let giaddr = m.giaddr();
    Some(if giaddr.is_unspecified() {
        Destination::Broadcast { ifindex }
    } else {
        Destination::Relay(SocketAddrV4::new(giaddr, 67))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn discover_gets_an_offer_to_the_relay_and_junk_gets_nothing() {
        let mut req = vec![0u8; 240];
        req[0] = 1;
        req[1] = 1;
        req[2] = 6;
        req[4..8].copy_from_slice(&0x1234_5678u32.to_be_bytes());
        req[24..28].copy_from_slice(&[198, 18, 2, 1]);
        req[28..34].copy_from_slice(&[2, 0, 0, 0, 1, 2]);
        req[236..240].copy_from_slice(&[99, 130, 83, 99]);
        req.extend_from_slice(&[53, 1, 1, 255]);
        let mut out = Vec::new();
        let local = Ipv4Addr::new(198, 18, 2, 2);
        let dest = reply(&req, local, 3, &mut out).unwrap();
        assert_eq!(dest, Destination::Relay("198.18.2.1:67".parse().unwrap()));
        let m = Message::parse(&out).unwrap();
        assert_eq!(m.op(), Op::Reply);
        assert_eq!(m.xid(), 0x1234_5678);
        assert_eq!(m.message_type(), Ok(Some(MessageType::Offer)));
        assert_eq!(m.server_id(), Some(local));
        assert_eq!(m.yiaddr(), Ipv4Addr::new(198, 19, 1, 10));
        assert!(reply(&req[..100], local, 3, &mut out).is_none());
        assert!(
            reply(&out.clone(), local, 3, &mut out).is_none(),
            "a reply is not answered"
        );
    }
}
