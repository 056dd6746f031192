//! The server's decision function under arbitrary traffic. The input is a sequence of records
//! `[dt: u8][src: u8][len: u16 LE][payload]`: time advances by `dt` seconds (so offers and leases
//! end mid-run), `src` picks a relay/interface (known or unknown), the payload is one datagram.
//! Every datagram is handled by one shard on a small policy (a two-address pool makes clients
//! compete). Checked after every datagram: no panic; a reply parses as a BOOTREPLY for the same
//! xid and chaddr; a durable reply is an ACK with a lease record pending; and no address is held
//! (bound, not ended) by two clients at once.

#![no_main]

use std::collections::HashMap;
use std::net::{Ipv4Addr, SocketAddrV4};
use std::sync::{Arc, OnceLock};

use libfuzzer_sys::fuzz_target;
use provd_config::Policy;
use provd_dhcp::{Message, MessageType, Op};
use provd_engine::{Ingress, Outcome, Shard, Shared};
use provd_lease::{LeaseState, LeaseTable};

const POLICY: &str = r#"
[server]
server_id = "198.18.0.1"
lease_dir = "/nonexistent"
offer_hold_secs = 30
decline_quarantine_secs = 120
forget_after_secs = 600
[[class]]
name = "cm"
match = "docsis*"
lease_time = 300
boot_file = "cm/{mac}.cfg"
provisioning_server = "prov.example.net"
flow = "HYBRID.1"
[[class]]
name = "cpe"
match = "*"
lease_time = 200
acs_url = "http://acs.example.net/"
[[shared_network]]
name = "direct"
interfaces = ["198.18.0.1"]
  [[shared_network.subnet]]
  prefix = "198.18.0.0/24"
    [[shared_network.subnet.pool]]
    start = "198.18.0.100"
    end = "198.18.0.101"
[[shared_network]]
name = "relayed"
relays = ["198.18.1.1"]
  [[shared_network.subnet]]
  prefix = "198.19.0.0/24"
  classes = ["cm"]
    [[shared_network.subnet.pool]]
    start = "198.19.0.10"
    end = "198.19.0.11"
  [[shared_network.subnet]]
  prefix = "198.19.1.0/24"
    [[shared_network.subnet.pool]]
    start = "198.19.1.10"
    end = "198.19.1.12"
[[reservation]]
mac = "00:15:cf:00:00:01"
address = "198.19.0.200"
"#;

fn policy() -> &'static Policy {
    static P: OnceLock<Policy> = OnceLock::new();
    P.get_or_init(|| Policy::from_toml_str(POLICY).expect("fuzz policy is valid"))
}

fuzz_target!(|data: &[u8]| {
    let shared = Shared::new(policy().clone()).expect("engine accepts the policy");
    let mut shard = Shard::new(Arc::clone(&shared), LeaseTable::new(), 0, 1);
    let mut now = 1_800_000_000u32;
    let mut out = Vec::new();
    let mut rest = data;
    while rest.len() >= 4 {
        let (dt, src, len) = (rest[0], rest[1], usize::from(u16::from_le_bytes([rest[2], rest[3]])));
        let payload = &rest[4..(4 + len).min(rest.len())];
        rest = &rest[(4 + len).min(rest.len())..];
        now += u32::from(dt);
        let (from, local) = match src % 3 {
            0 => (SocketAddrV4::new(Ipv4Addr::new(198, 18, 1, 1), 67), Ipv4Addr::new(198, 18, 0, 1)),
            1 => (SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 68), Ipv4Addr::new(198, 18, 0, 1)),
            _ => (SocketAddrV4::new(Ipv4Addr::new(203, 0, 113, 9), 67), Ipv4Addr::new(192, 0, 2, 1)),
        };
        shard.tick(now);
        let ingress = Ingress { payload, src: from, local, ifindex: 3 };
        match shard.handle(now, &ingress, &mut out) {
            Outcome::Reply(r) => {
                let req = Message::parse(payload).expect("a datagram that got a reply parses");
                let reply = Message::parse(&out).expect("replies parse");
                assert_eq!(reply.op(), Op::Reply);
                assert_eq!(reply.xid(), req.xid());
                assert_eq!(reply.chaddr_field(), req.chaddr_field());
                assert_eq!(reply.message_type(), Ok(Some(r.kind)));
                if r.durable {
                    assert_eq!(r.kind, MessageType::Ack);
                    assert!(shard.has_pending(), "a durable ACK has its lease record pending");
                }
            }
            Outcome::NoReply | Outcome::Dropped(_) => {}
        }
        shard.take_pending().for_each(drop);
        let mut held: HashMap<Ipv4Addr, usize> = HashMap::new();
        for (_, l) in shard.table().iter() {
            if l.state == LeaseState::Bound && l.expires_at > now {
                let n = held.entry(l.addr).or_default();
                *n += 1;
                assert_eq!(*n, 1, "{} bound to two clients", l.addr);
            }
        }
    }
});
