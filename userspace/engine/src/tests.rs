//! The engine on virtual time: RFC 2131 exchanges, cable options as they appear on the wire,
//! bad input, restore from records, and a property test over random client behaviour.

use std::collections::HashMap;
use std::net::{Ipv4Addr, SocketAddrV4};

use proptest::prelude::*;
use provd_dhcp::cablelabs::{ClientConfiguration, ProvServer, ProvisioningFlow, RealmValue};
use provd_dhcp::suboption::SubOptions;
use provd_dhcp::{Header, Message, MessageType, MessageWriter, code};

use super::*;

const SERVER: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 1);
const RELAY: Ipv4Addr = Ipv4Addr::new(198, 18, 1, 1);
const T0: u32 = 1_800_000_000;

fn policy(extra: &str) -> Policy {
    let toml = format!(
        r#"
[server]
server_id = "198.18.0.1"
lease_dir = "/nonexistent"
offer_hold_secs = 30
decline_quarantine_secs = 600
forget_after_secs = 3600

[[class]]
name = "cm"
match = "docsis*"
lease_time = 3600
next_server = "198.18.0.10"
boot_file = "cm/{{mac}}.cfg"
time_servers = ["198.18.0.5"]
log_servers = ["198.18.0.6"]
time_offset = -18000

[[class]]
name = "mta"
match = "pktc*"
provisioning_server = "prov.example.net"
flow = "HYBRID.2"

[[class]]
name = "cpe"
match = "*"
acs_url = "http://acs.example.net:7547/"
tftp_server = "tftp.example.net"

[[shared_network]]
name = "direct"
interfaces = ["198.18.0.1"]
  [[shared_network.subnet]]
  prefix = "198.18.0.0/24"
  routers = ["198.18.0.1"]
    [[shared_network.subnet.pool]]
    start = "198.18.0.100"
    end = "198.18.0.109"

[[shared_network]]
name = "cmts"
relays = ["198.18.1.1"]
  [[shared_network.subnet]]
  prefix = "198.19.0.0/24"
  routers = ["198.19.0.1"]
  classes = ["cm"]
    [[shared_network.subnet.pool]]
    start = "198.19.0.10"
    end = "198.19.0.11"
  [[shared_network.subnet]]
  prefix = "198.19.1.0/24"
  routers = ["198.19.1.1"]
  classes = ["mta", "cpe"]
    [[shared_network.subnet.pool]]
    start = "198.19.1.10"
    end = "198.19.1.200"
{extra}
"#
    );
    Policy::from_toml_str(&toml).unwrap_or_else(|e| panic!("{e}"))
}

fn shard(extra: &str) -> Shard {
    Shard::new(Shared::new(policy(extra)).unwrap(), LeaseTable::new(), 0, 1)
}

fn mac(n: u8) -> [u8; 6] {
    [0x00, 0x15, 0xcf, 0, 0, n]
}

/// A request as a client (or a relay in front of it) would send it.
#[derive(Clone)]
struct Req {
    kind: MessageType,
    mac: [u8; 6],
    giaddr: Ipv4Addr,
    ciaddr: Ipv4Addr,
    requested: Option<Ipv4Addr>,
    server_id: Option<Ipv4Addr>,
    vendor_class: Option<&'static [u8]>,
    relay_info: Option<Vec<u8>>,
    xid: u32,
}

impl Req {
    fn new(kind: MessageType, mac: [u8; 6]) -> Self {
        Req {
            kind,
            mac,
            giaddr: RELAY,
            ciaddr: Ipv4Addr::UNSPECIFIED,
            requested: None,
            server_id: None,
            vendor_class: Some(b"docsis3.0:053b0101"),
            relay_info: Some(vec![
                1, 4, 0, 0, 0, 7, 2, 6, 0, 0x15, 0xcf, 0xaa, 0xbb, 0xcc,
            ]),
            xid: 0x1234,
        }
    }
    fn direct(mut self) -> Self {
        self.giaddr = Ipv4Addr::UNSPECIFIED;
        self.relay_info = None;
        self
    }
    fn class(mut self, vc: Option<&'static [u8]>) -> Self {
        self.vendor_class = vc;
        self
    }
    fn bytes(&self) -> Vec<u8> {
        let mut chaddr = [0u8; 16];
        chaddr[..6].copy_from_slice(&self.mac);
        let mut h = Header::reply(self.xid, chaddr, 1, 6);
        h.op = 1;
        h.giaddr = self.giaddr;
        h.ciaddr = self.ciaddr;
        let mut buf = Vec::new();
        let mut w = MessageWriter::new(&mut buf, &h, 1500).unwrap();
        w.option(code::MESSAGE_TYPE, &[self.kind as u8]).unwrap();
        if let Some(a) = self.requested {
            w.ipv4(code::REQUESTED_IP, a).unwrap();
        }
        if let Some(a) = self.server_id {
            w.ipv4(code::SERVER_ID, a).unwrap();
        }
        if let Some(vc) = self.vendor_class {
            w.option(code::VENDOR_CLASS, vc).unwrap();
        }
        if let Some(r) = &self.relay_info {
            w.option(code::RELAY_AGENT_INFO, r).unwrap();
        }
        w.finish().unwrap();
        buf
    }
}

fn send(s: &mut Shard, now: u32, req: &Req) -> (Outcome, Vec<u8>) {
    let bytes = req.bytes();
    let src = if req.giaddr.is_unspecified() {
        SocketAddrV4::new(req.ciaddr, 68)
    } else {
        SocketAddrV4::new(req.giaddr, 67)
    };
    let ingress = Ingress {
        payload: &bytes,
        src,
        local: SERVER,
        ifindex: 7,
    };
    let mut out = Vec::new();
    let o = s.handle(now, &ingress, &mut out);
    (o, out)
}

fn reply_of(o: Outcome, out: &[u8]) -> (Reply, Message<'_>) {
    match o {
        Outcome::Reply(r) => (
            r,
            Message::parse(out).expect("engine wrote a parseable reply"),
        ),
        other => panic!("expected a reply, got {other:?}"),
    }
}

/// DISCOVER then REQUEST(selecting); returns the ACKed address.
fn dora(s: &mut Shard, now: u32, base: &Req) -> Ipv4Addr {
    let (o, out) = send(
        s,
        now,
        &Req {
            kind: MessageType::Discover,
            ..base.clone()
        },
    );
    let (_, offer) = reply_of(o, &out);
    let addr = offer.yiaddr();
    let req = Req {
        kind: MessageType::Request,
        requested: Some(addr),
        server_id: Some(SERVER),
        ..base.clone()
    };
    let (o, out) = send(s, now, &req);
    let (r, ack) = reply_of(o, &out);
    assert_eq!(ack.message_type(), Ok(Some(MessageType::Ack)));
    assert!(r.durable);
    addr
}

#[test]
fn bindings_are_collected_only_when_asked_and_say_who_was_bound() {
    let mut s = shard("");
    dora(&mut s, T0, &Req::new(MessageType::Discover, mac(1)));
    assert_eq!(
        s.take_bindings().count(),
        0,
        "off by default: no allocation per ACK"
    );
    s.collect_bindings();
    let addr = dora(&mut s, T0, &Req::new(MessageType::Discover, mac(2)));
    let direct = Req::new(MessageType::Discover, mac(3)).direct().class(None);
    let _ = dora(&mut s, T0, &direct);
    let got: Vec<Binding> = s.take_bindings().collect();
    assert_eq!(got.len(), 2, "{got:?}");
    let b = &got[0];
    assert_eq!((b.mac, b.addr, b.giaddr), (mac(2), addr, RELAY));
    assert_eq!(b.vendor_class.as_deref(), Some(&b"docsis3.0:053b0101"[..]));
    assert!(b.expires_at > T0);
    assert_eq!(b.class, Some(0), "the cm class");
    assert!(b.restart, "an ACK in SELECTING state is a (re)start");
    assert_eq!(
        b.circuit_id.as_deref(),
        Some(&[0, 0, 0, 7][..]),
        "option 82.1"
    );
    assert_eq!(
        b.remote_id.as_deref(),
        Some(&[0, 0x15, 0xcf, 0xaa, 0xbb, 0xcc][..]),
        "option 82.2"
    );
    assert_eq!(got[1].giaddr, Ipv4Addr::UNSPECIFIED);
    assert_eq!(
        (got[1].remote_id.as_deref(), got[1].circuit_id.as_deref()),
        (None, None)
    );
    assert_eq!(
        got[1].class,
        Some(2),
        "no option 60: the catch-all cpe class"
    );
    assert_eq!(got[1].vendor_class, None);
    assert_eq!(s.take_bindings().count(), 0, "taken once");
    let renew = Req {
        ciaddr: addr,
        ..Req::new(MessageType::Request, mac(2))
    };
    let (o, out) = send(&mut s, T0 + 10, &renew);
    let (_, ack) = reply_of(o, &out);
    assert_eq!(ack.message_type(), Ok(Some(MessageType::Ack)));
    let got: Vec<Binding> = s.take_bindings().collect();
    assert_eq!(got.len(), 1);
    assert!(!got[0].restart, "a renewal does not restart provisioning");
}

#[test]
fn relayed_cable_modem_dora_carries_docsis_options_and_echoes_82() {
    let mut s = shard("");
    let req = Req::new(MessageType::Discover, mac(1));
    let (o, out) = send(&mut s, T0, &req);
    let (r, offer) = reply_of(o, &out);
    assert_eq!(r.kind, MessageType::Offer);
    assert_eq!(r.dest, Destination::Relay(SocketAddrV4::new(RELAY, 67)));
    assert!(!r.durable, "an OFFER does not wait for the log");
    assert_eq!(offer.op(), provd_dhcp::Op::Reply);
    assert_eq!(offer.xid(), 0x1234);
    assert_eq!(offer.giaddr(), RELAY);
    assert!(
        offer.yiaddr() == Ipv4Addr::new(198, 19, 0, 10)
            || offer.yiaddr() == Ipv4Addr::new(198, 19, 0, 11)
    );
    assert_eq!(offer.siaddr(), Ipv4Addr::new(198, 18, 0, 10));
    assert_eq!(offer.file().unwrap(), b"cm/0015cf000001.cfg");
    assert_eq!(offer.server_id(), Some(SERVER));
    assert_eq!(offer.lease_time(), Some(3600));
    assert_eq!(
        offer.option_first(code::RENEWAL_TIME),
        Some(&1800u32.to_be_bytes()[..])
    );
    assert_eq!(
        offer.option_first(code::REBINDING_TIME),
        Some(&3150u32.to_be_bytes()[..])
    );
    assert_eq!(
        offer.option_first(code::SUBNET_MASK),
        Some(&[255, 255, 255, 0][..])
    );
    assert_eq!(offer.option_first(code::ROUTER), Some(&[198, 19, 0, 1][..]));
    assert_eq!(
        offer.option_first(code::TIME_OFFSET),
        Some(&(-18000i32).to_be_bytes()[..])
    );
    assert_eq!(
        offer.option_first(code::TIME_SERVER),
        Some(&[198, 18, 0, 5][..])
    );
    assert_eq!(
        offer.option_first(code::LOG_SERVER),
        Some(&[198, 18, 0, 6][..])
    );
    assert_eq!(
        offer.relay_agent_info().unwrap().as_ref(),
        req.relay_info.as_deref().unwrap()
    );
    assert_eq!(
        offer.fragments().last().map(|(c, _)| c),
        Some(code::RELAY_AGENT_INFO),
        "82 goes last"
    );
    assert!(out.len() >= provd_dhcp::BOOTP_MIN_LEN && out.len() <= 548);
    assert!(!s.has_pending(), "offers are not persisted");

    let addr = offer.yiaddr();
    let (o, out) = send(
        &mut s,
        T0,
        &Req {
            kind: MessageType::Request,
            requested: Some(addr),
            server_id: Some(SERVER),
            ..req
        },
    );
    let (r, ack) = reply_of(o, &out);
    assert_eq!((r.kind, r.durable), (MessageType::Ack, true));
    assert_eq!(ack.yiaddr(), addr);
    let pending: Vec<_> = s.take_pending().collect();
    assert_eq!(pending.len(), 1);
    assert_eq!(pending[0].1.addr, addr);
    assert_eq!(pending[0].1.state, LeaseState::Bound);
    assert_eq!(pending[0].1.expires_at, T0 + 3600);
}

#[test]
fn mta_gets_option_122_with_its_flow_and_cpe_gets_acs_url() {
    let mut s = shard("");
    let req = Req::new(MessageType::Discover, mac(2)).class(Some(b"pktc1.5:051a0101"));
    let (o, out) = send(&mut s, T0, &req);
    let (_, offer) = reply_of(o, &out);
    assert!(
        offer.yiaddr().octets()[..3] == [198, 19, 1],
        "MTA numbered from the MTA/CPE subnet"
    );
    let ccc =
        ClientConfiguration::decode(&offer.option(code::CABLELABS_CLIENT_CONFIG).unwrap()).unwrap();
    assert_eq!(ccc.realm, Some(RealmValue::Flow(ProvisioningFlow::Hybrid2)));
    assert_eq!(
        ccc.provisioning_server,
        Some(ProvServer::Fqdn("prov.example.net".into()))
    );

    let req = Req::new(MessageType::Discover, mac(3)).class(None);
    let (o, out) = send(&mut s, T0, &req);
    let (_, offer) = reply_of(o, &out);
    let v43 = offer.option(code::VENDOR_SPECIFIC).unwrap();
    assert_eq!(
        SubOptions::find(&v43, 1),
        Some(&b"http://acs.example.net:7547/"[..])
    );
    assert_eq!(
        offer.option_first(code::TFTP_SERVER),
        Some(&b"tftp.example.net"[..])
    );
    assert!(offer.option(code::CABLELABS_CLIENT_CONFIG).is_none());
}

/// `[class.profile]`: the profile rule in option 66 or 160, as written (the device expands
/// `$MA`), and option 150's TFTP server list.
#[test]
fn voip_classes_get_their_profile_rule_and_option_150() {
    let toml = r#"
[server]
server_id = "198.18.0.1"
lease_dir = "/nonexistent"
[http]
[[class]]
name = "ata"
match = "FlyingVoice*"
[class.profile]
path = "p/{mac}.cfg"
template = "t.j2"
format = "kvp"
profile_rule = "[--key $SA] http://198.18.0.1/p/$MA.cfg"
option_150 = ["198.18.0.1", "198.18.0.2"]
[[class]]
name = "phone"
match = "Polycom*"
tftp_server = "tftp.example.net"
[class.profile]
path = "x/{MAC}.xml"
template = "t.j2"
format = "xml"
profile_rule = "https://prov.example.net/x/$MAU.xml"
rule_option = 160
[[shared_network]]
name = "direct"
interfaces = ["198.18.0.1"]
  [[shared_network.subnet]]
  prefix = "198.18.0.0/24"
    [[shared_network.subnet.pool]]
    start = "198.18.0.100"
    end = "198.18.0.109"
"#;
    let policy = Policy::from_toml_str(toml).unwrap_or_else(|e| panic!("{e}"));
    let mut s = Shard::new(Shared::new(policy).unwrap(), LeaseTable::new(), 0, 1);
    let req = Req::new(MessageType::Discover, mac(7))
        .direct()
        .class(Some(b"FlyingVoice-G802"));
    let (o, out) = send(&mut s, T0, &req);
    let (_, offer) = reply_of(o, &out);
    assert_eq!(
        offer.option_first(code::TFTP_SERVER),
        Some(&b"[--key $SA] http://198.18.0.1/p/$MA.cfg"[..])
    );
    assert_eq!(
        offer.option_first(code::TFTP_SERVER_ADDRS),
        Some(&[198, 18, 0, 1, 198, 18, 0, 2][..])
    );
    assert!(offer.option(code::PROVISIONING_URL).is_none());

    let req = Req::new(MessageType::Discover, mac(8))
        .direct()
        .class(Some(b"Polycom-VVX"));
    let (o, out) = send(&mut s, T0, &req);
    let (_, offer) = reply_of(o, &out);
    assert_eq!(
        offer.option_first(code::PROVISIONING_URL),
        Some(&b"https://prov.example.net/x/$MAU.xml"[..])
    );
    assert_eq!(
        offer.option_first(code::TFTP_SERVER),
        Some(&b"tftp.example.net"[..])
    );
    assert!(offer.option(code::TFTP_SERVER_ADDRS).is_none());
}

#[test]
fn offered_addresses_are_held_and_never_offered_twice() {
    let mut s = shard("");
    let (o1, b1) = send(&mut s, T0, &Req::new(MessageType::Discover, mac(1)));
    let (o2, b2) = send(&mut s, T0, &Req::new(MessageType::Discover, mac(2)));
    let a1 = reply_of(o1, &b1).1.yiaddr();
    let a2 = reply_of(o2, &b2).1.yiaddr();
    assert_ne!(a1, a2);
    // The CM pool has two addresses: a third modem finds it exhausted while both are held.
    let (o3, _) = send(&mut s, T0 + 1, &Req::new(MessageType::Discover, mac(3)));
    assert_eq!(o3, Outcome::Dropped(Drop::PoolExhausted));
    assert_eq!(s.counters().snapshot().drop_count(Drop::PoolExhausted), 1);
    // A client repeating its DISCOVER gets the same address again.
    let (o, b) = send(&mut s, T0 + 2, &Req::new(MessageType::Discover, mac(1)));
    assert_eq!(reply_of(o, &b).1.yiaddr(), a1);
    // Once the hold ends the sweep returns the addresses.
    s.tick(T0 + 31);
    let (o3, b3) = send(&mut s, T0 + 31, &Req::new(MessageType::Discover, mac(3)));
    assert!([a1, a2].contains(&reply_of(o3, &b3).1.yiaddr()));
}

#[test]
fn selecting_another_server_frees_the_offer() {
    let mut s = shard("");
    let (o, b) = send(&mut s, T0, &Req::new(MessageType::Discover, mac(1)));
    let a = reply_of(o, &b).1.yiaddr();
    let other = Req {
        kind: MessageType::Request,
        requested: Some(a),
        server_id: Some(Ipv4Addr::new(198, 18, 0, 99)),
        ..Req::new(MessageType::Request, mac(1))
    };
    assert_eq!(
        send(&mut s, T0, &other).0,
        Outcome::Dropped(Drop::OtherServerChosen)
    );
    let p = s.shared.pool_of(a).unwrap();
    assert!(!s.shared.pool(p).unwrap().is_claimed(a), "offer released");
    // A REQUEST for an address never offered and outside every pool is NAK'd, relayed with the
    // broadcast bit.
    let bogus = Req {
        kind: MessageType::Request,
        requested: Some(Ipv4Addr::new(198, 19, 0, 50)),
        server_id: Some(SERVER),
        ..Req::new(MessageType::Request, mac(9))
    };
    let (o, b) = send(&mut s, T0, &bogus);
    let (r, nak) = reply_of(o, &b);
    assert_eq!(r.kind, MessageType::Nak);
    assert!(nak.broadcast());
    assert_eq!(nak.yiaddr(), Ipv4Addr::UNSPECIFIED);
    assert!(nak.relay_agent_info().is_some());
    assert_eq!(s.counters().snapshot().nak_count(Nak::NotOffered), 1);
}

#[test]
fn init_reboot_acks_known_naks_wrong_network_and_ignores_strangers() {
    let mut s = shard("");
    let base = Req::new(MessageType::Request, mac(1));
    let addr = dora(&mut s, T0, &base);
    let reboot = Req {
        requested: Some(addr),
        ..base.clone()
    };
    let (o, b) = send(&mut s, T0 + 100, &reboot);
    assert_eq!(reply_of(o, &b).1.yiaddr(), addr);
    let wrong = Req {
        requested: Some(Ipv4Addr::new(198, 18, 5, 5)),
        ..base.clone()
    };
    let (o, b) = send(&mut s, T0 + 100, &wrong);
    assert_eq!(reply_of(o, &b).0.kind, MessageType::Nak);
    let stranger = Req {
        requested: Some(Ipv4Addr::new(198, 19, 0, 11)),
        ..Req::new(MessageType::Request, mac(7))
    };
    assert_eq!(
        send(&mut s, T0 + 100, &stranger).0,
        Outcome::Dropped(Drop::UnknownClient)
    );
    // The client's remembered address after expiry comes back if nobody took it.
    s.tick(T0 + 3601 + 100);
    let (o, b) = send(&mut s, T0 + 3601 + 100, &reboot);
    assert_eq!(reply_of(o, &b).1.yiaddr(), addr);
}

#[test]
fn renewing_direct_client_is_acked_unicast_and_inform_has_no_lease_time() {
    let mut s = shard("");
    let base = Req::new(MessageType::Request, mac(4)).direct().class(None);
    let addr = dora(&mut s, T0, &base);
    assert_eq!(addr.octets()[..3], [198, 18, 0]);
    let renew = Req {
        ciaddr: addr,
        ..base.clone()
    };
    let (o, b) = send(&mut s, T0 + 1800, &renew);
    let (r, ack) = reply_of(o, &b);
    assert_eq!(r.dest, Destination::Client(SocketAddrV4::new(addr, 68)));
    assert_eq!(ack.ciaddr(), addr);
    assert_eq!(ack.yiaddr(), addr);
    let renewed: Vec<_> = s.take_pending().map(|(_, l)| l).collect();
    assert_eq!(renewed.last().unwrap().expires_at, T0 + 1800 + 86400);
    // A unicast RENEW names its network by ciaddr: outside every network there is nobody to
    // answer; inside one but not bound to this client, another server may own it: silence.
    let renew_from = |ciaddr| Req {
        ciaddr,
        ..base.clone()
    };
    let outside = renew_from(Ipv4Addr::new(203, 0, 113, 9));
    assert_eq!(
        send(&mut s, T0, &outside).0,
        Outcome::Dropped(Drop::NoNetwork)
    );
    let unbound = renew_from(Ipv4Addr::new(198, 19, 1, 77));
    assert_eq!(
        send(&mut s, T0, &unbound).0,
        Outcome::Dropped(Drop::NotOurBinding)
    );

    let inform = Req {
        kind: MessageType::Inform,
        ciaddr: addr,
        ..base.clone()
    };
    let (o, b) = send(&mut s, T0, &inform);
    let (r, ack) = reply_of(o, &b);
    assert_eq!(r.kind, MessageType::Ack);
    assert!(!r.durable);
    assert_eq!(ack.yiaddr(), Ipv4Addr::UNSPECIFIED);
    assert!(ack.lease_time().is_none() && !ack.has_option(code::RENEWAL_TIME));
    assert_eq!(
        ack.option_first(code::SUBNET_MASK),
        Some(&[255, 255, 255, 0][..])
    );
}

/// Found by the e2e suite (dhclient behind dhcrelay): at T1 a relayed client unicasts its RENEW
/// straight to the server (giaddr 0, ciaddr set), arriving on an interface of another network.
#[test]
fn unicast_renew_from_a_relayed_network_is_acked_to_ciaddr() {
    let mut s = shard("");
    let base = Req::new(MessageType::Request, mac(6)).class(None);
    let addr = dora(&mut s, T0, &base);
    assert_eq!(
        addr.octets()[..3],
        [198, 19, 1],
        "numbered in the relayed network"
    );
    let renew = Req {
        ciaddr: addr,
        ..base.clone()
    }
    .direct();
    let (o, b) = send(&mut s, T0 + 1800, &renew);
    let (r, ack) = reply_of(o, &b);
    assert_eq!(r.kind, MessageType::Ack);
    assert_eq!(r.dest, Destination::Client(SocketAddrV4::new(addr, 68)));
    assert_eq!(ack.yiaddr(), addr);
    assert_eq!(ack.option_first(code::ROUTER), Some(&[198, 19, 1, 1][..]));
}

#[test]
fn direct_discover_is_answered_by_broadcast_on_the_arrival_interface() {
    let mut s = shard("");
    let (o, b) = send(
        &mut s,
        T0,
        &Req::new(MessageType::Discover, mac(5)).direct().class(None),
    );
    let (r, offer) = reply_of(o, &b);
    assert_eq!(r.dest, Destination::Broadcast { ifindex: 7 });
    assert_eq!(offer.server_id(), Some(SERVER));
}

#[test]
fn decline_quarantines_the_address_durably_and_release_frees_it() {
    let mut s = shard("");
    let base = Req::new(MessageType::Request, mac(1));
    let a = dora(&mut s, T0, &base);
    s.take_pending().for_each(drop);
    let decline = Req {
        kind: MessageType::Decline,
        requested: Some(a),
        server_id: Some(SERVER),
        ..base.clone()
    };
    assert_eq!(send(&mut s, T0 + 1, &decline).0, Outcome::NoReply);
    let persisted: Vec<_> = s.take_pending().collect();
    assert_eq!(
        persisted.len(),
        2,
        "quarantine holder and the client's dropped binding"
    );
    // The declined address is not offered to anyone during the quarantine...
    let other = dora(&mut s, T0 + 2, &Req::new(MessageType::Request, mac(2)));
    assert_ne!(other, a);
    let (o, _) = send(&mut s, T0 + 3, &Req::new(MessageType::Discover, mac(3)));
    assert_eq!(o, Outcome::Dropped(Drop::PoolExhausted));
    // ...and returns to the pool when it ends.
    s.tick(T0 + 1 + 600 + 1);
    let third = dora(&mut s, T0 + 700, &Req::new(MessageType::Request, mac(3)));
    assert_eq!(third, a);

    // RELEASE frees the address; the same client gets it back.
    let release = Req {
        kind: MessageType::Release,
        ciaddr: third,
        server_id: Some(SERVER),
        ..Req::new(MessageType::Release, mac(3))
    };
    assert_eq!(send(&mut s, T0 + 800, &release).0, Outcome::NoReply);
    let p = s.shared.pool_of(third).unwrap();
    assert!(!s.shared.pool(p).unwrap().is_claimed(third));
    assert_eq!(
        dora(&mut s, T0 + 801, &Req::new(MessageType::Request, mac(3))),
        third
    );
    assert_eq!(
        send(
            &mut s,
            T0,
            &Req {
                ciaddr: Ipv4Addr::new(198, 19, 0, 99),
                ..release
            }
        )
        .0,
        Outcome::Dropped(Drop::ReleaseUnknown)
    );
}

#[test]
fn reservations_by_mac_and_remote_id() {
    let extra = r#"
[[reservation]]
mac = "00:15:cf:00:00:01"
address = "198.19.0.200"
boot_file = "vip.cfg"
[[reservation]]
remote_id = "00:15:cf:aa:bb:cc"
address = "198.19.1.10"
class = "cpe"
"#;
    let mut s = shard(extra);
    let (o, b) = send(&mut s, T0, &Req::new(MessageType::Discover, mac(1)));
    let (_, offer) = reply_of(o, &b);
    assert_eq!(offer.yiaddr(), Ipv4Addr::new(198, 19, 0, 200));
    assert_eq!(offer.file().unwrap(), b"vip.cfg");
    // Remote id 00:15:cf:aa:bb:cc (the relay info every Req carries) reserves 198.19.1.10 for a CPE.
    let (o, b) = send(
        &mut s,
        T0,
        &Req::new(MessageType::Discover, mac(2)).class(None),
    );
    assert_eq!(reply_of(o, &b).1.yiaddr(), Ipv4Addr::new(198, 19, 1, 10));
    // The reserved in-pool address is never handed to anyone else.
    for n in 10..200 {
        let req = Req {
            relay_info: None,
            ..Req::new(MessageType::Discover, mac(n)).class(None)
        };
        let (o, b) = send(&mut s, T0, &req);
        if let Outcome::Reply(_) = o {
            assert_ne!(
                Message::parse(&b).unwrap().yiaddr(),
                Ipv4Addr::new(198, 19, 1, 10)
            );
        }
    }
}

#[test]
fn bad_input_is_dropped_with_a_reason() {
    let mut s = shard("");
    let mut cases: Vec<(Vec<u8>, Drop)> = vec![
        (vec![1, 1, 6], Drop::Truncated),
        (vec![0; 20_000], Drop::TooLong),
    ];
    let mut reply = Req::new(MessageType::Discover, mac(1)).bytes();
    reply[0] = 2;
    cases.push((reply, Drop::NotRequest));
    let mut bad_hw = Req::new(MessageType::Discover, mac(1)).bytes();
    bad_hw[1] = 6;
    cases.push((bad_hw, Drop::UnsupportedHardware));
    let mut overrun = Req::new(MessageType::Discover, mac(1)).bytes();
    overrun.truncate(243);
    overrun[241] = 200;
    cases.push((overrun, Drop::OptionOverrun));
    let mut unknown_type = Req::new(MessageType::Discover, mac(1)).bytes();
    unknown_type[242] = 77;
    cases.push((unknown_type, Drop::UnknownMessageType));
    cases.push((
        Req::new(MessageType::Offer, mac(1)).bytes(),
        Drop::ServerMessageType,
    ));
    cases.push((
        Req {
            giaddr: Ipv4Addr::new(198, 18, 9, 9),
            ..Req::new(MessageType::Discover, mac(1))
        }
        .bytes(),
        Drop::NoNetwork,
    ));
    cases.push((
        Req {
            relay_info: Some(vec![1, 9, 0]),
            ..Req::new(MessageType::Discover, mac(1))
        }
        .bytes(),
        Drop::BadRelayInfo,
    ));
    cases.push((
        Req {
            requested: None,
            server_id: Some(SERVER),
            ..Req::new(MessageType::Request, mac(1))
        }
        .bytes(),
        Drop::MalformedRequest,
    ));
    for (bytes, want) in &cases {
        let ingress = Ingress {
            payload: bytes,
            src: SocketAddrV4::new(RELAY, 67),
            local: SERVER,
            ifindex: 1,
        };
        assert_eq!(
            s.handle(T0, &ingress, &mut Vec::new()),
            Outcome::Dropped(*want)
        );
    }
    let snap = s.counters().snapshot();
    for (_, want) in &cases {
        assert!(snap.drop_count(*want) >= 1, "{want:?} counted");
    }
}

#[test]
fn restore_claims_live_leases_and_remembers_ended_ones() {
    let shared = Shared::new(policy("")).unwrap();
    let rec = |seq, n: u8, addr: [u8; 4], state, expires_at| LeaseRecord {
        seq,
        key: ClientKey::from_hw(1, &mac(n)),
        lease: Lease {
            addr: addr.into(),
            expires_at,
            state,
            chaddr: mac(n),
            pool: 0,
        },
    };
    let records = vec![
        rec(1, 1, [198, 19, 0, 10], LeaseState::Bound, T0 + 100),
        rec(2, 2, [198, 19, 0, 11], LeaseState::Bound, T0 - 10),
        rec(3, 3, [198, 19, 1, 50], LeaseState::Released, T0 - 10),
        rec(4, 4, [198, 19, 1, 51], LeaseState::Bound, T0 - 100_000),
        // A second live lease on 198.19.0.10, older: the conflict keeps the newer one.
        rec(0, 5, [198, 19, 0, 10], LeaseState::Bound, T0 + 100),
    ];
    let (tables, stats) = shared.restore(records, T0, 2);
    assert_eq!(
        stats,
        RestoreStats {
            bound: 1,
            remembered: 2,
            forgotten: 1,
            conflicts: 1
        }
    );
    assert_eq!(tables.iter().map(LeaseTable::len).sum::<usize>(), 4);
    let p = shared.pool_of(Ipv4Addr::new(198, 19, 0, 10)).unwrap();
    assert!(
        shared
            .pool(p)
            .unwrap()
            .is_claimed(Ipv4Addr::new(198, 19, 0, 10))
    );
    assert!(
        !shared
            .pool(p)
            .unwrap()
            .is_claimed(Ipv4Addr::new(198, 19, 0, 11))
    );
    for (i, t) in tables.iter().enumerate() {
        for (_, l) in t.iter() {
            assert_eq!(provd_common::shard_of(&l.chaddr, 2) as usize, i);
        }
    }
}

#[derive(Debug, Clone)]
enum Step {
    Dora(u8),
    Discover(u8),
    Reboot(u8),
    Renew(u8),
    Release(u8),
    Decline(u8),
    Wait(u16),
}

fn step() -> impl Strategy<Value = Step> {
    let c = 0u8..12;
    prop_oneof![
        4 => c.clone().prop_map(Step::Dora),
        2 => c.clone().prop_map(Step::Discover),
        2 => c.clone().prop_map(Step::Reboot),
        2 => c.clone().prop_map(Step::Renew),
        1 => c.clone().prop_map(Step::Release),
        1 => c.prop_map(Step::Decline),
        2 => (1u16..4000).prop_map(Step::Wait),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]
    /// Twelve modems competing for a two-address pool over two shards, doing anything in any
    /// order: no address is ever ACKed to two clients at once, every ACK repeats the address the
    /// client asked for, and live bindings are exactly the claimed pool bits.
    #[test]
    fn no_address_is_ever_bound_twice(steps in proptest::collection::vec(step(), 1..80)) {
        let shared = Shared::new(policy("")).unwrap();
        let mut shards: Vec<Shard> = (0..2).map(|i| Shard::new(Arc::clone(&shared), LeaseTable::new(), i, 2)).collect();
        let mut now = T0;
        // What each client believes it holds, from ACKs seen on the wire: mac → (addr, until).
        let mut held: HashMap<u8, (Ipv4Addr, u32)> = HashMap::new();
        for st in steps {
            let who = |n: u8| provd_common::shard_of(&mac(n), 2) as usize;
            let mut exchange = |n: u8, req: Req| {
                let s = &mut shards[who(n)];
                s.tick(now);
                let (o, b) = send(s, now, &req);
                match o {
                    Outcome::Reply(r) => Some((r, Message::parse(&b).unwrap().yiaddr(), Message::parse(&b).unwrap().message_type().unwrap().unwrap())),
                    _ => None,
                }
            };
            match st {
                Step::Dora(n) | Step::Discover(n) => {
                    let base = Req::new(MessageType::Discover, mac(n));
                    if let Some((_, offered, _)) = exchange(n, base.clone())
                        && matches!(st, Step::Dora(_))
                    {
                        let req = Req { kind: MessageType::Request, requested: Some(offered), server_id: Some(SERVER), ..base };
                        if let Some((r, a, t)) = exchange(n, req)
                            && t == MessageType::Ack
                        {
                            prop_assert_eq!(a, offered);
                            prop_assert!(r.durable);
                            held.insert(n, (a, now + 3600));
                        }
                    }
                }
                Step::Reboot(n) | Step::Renew(n) => {
                    if let Some(&(a, _)) = held.get(&n) {
                        let mut req = Req::new(MessageType::Request, mac(n));
                        if matches!(st, Step::Reboot(_)) { req.requested = Some(a) } else { req.ciaddr = a }
                        match exchange(n, req) {
                            Some((_, got, MessageType::Ack)) => {
                                prop_assert_eq!(got, a);
                                held.insert(n, (a, now + 3600));
                            }
                            Some((_, _, MessageType::Nak)) => { held.remove(&n); }
                            _ => {}
                        }
                    }
                }
                Step::Release(n) => {
                    if let Some((a, _)) = held.remove(&n) {
                        exchange(n, Req { kind: MessageType::Release, ciaddr: a, ..Req::new(MessageType::Release, mac(n)) });
                    }
                }
                Step::Decline(n) => {
                    if let Some((a, _)) = held.remove(&n) {
                        exchange(n, Req { kind: MessageType::Decline, requested: Some(a), ..Req::new(MessageType::Decline, mac(n)) });
                    }
                }
                Step::Wait(secs) => now += u32::from(secs),
            }
            held.retain(|_, (_, until)| *until > now);
            let mut seen = HashMap::new();
            for (n, (a, _)) in &held {
                if let Some(other) = seen.insert(*a, *n) {
                    prop_assert!(false, "{a} held by clients {other} and {n} at once");
                }
            }
            for (n, (a, _)) in &held {
                let p = shared.pool_of(*a).unwrap();
                prop_assert!(shared.pool(p).unwrap().is_claimed(*a), "client {n}'s {a} is not claimed");
            }
        }
    }
}

/// TR-069 CPEs (option 60 `dslforum.org`, TR-111) are told the ACS URL and provisioning code
/// in option 43 sub-options 1 and 2; another class on the same network gets no option 43.
#[test]
fn cwmp_cpe_class_gets_the_acs_url_in_option_43() {
    let toml = r#"
[server]
server_id = "198.18.0.1"
lease_dir = "/nonexistent"

[[class]]
name = "tr069"
match = "dslforum.org*"
acs_url = "http://acs.example.net:7547/cwmp"
provisioning_code = "RES.GOLD"

[[class]]
name = "other"
match = "*"

[[shared_network]]
name = "cpe"
relays = ["198.18.1.1"]
  [[shared_network.subnet]]
  prefix = "198.19.2.0/24"
  routers = ["198.19.2.1"]
    [[shared_network.subnet.pool]]
    start = "198.19.2.10"
    end = "198.19.2.200"
"#;
    let policy = Policy::from_toml_str(toml).unwrap_or_else(|e| panic!("{e}"));
    let mut s = Shard::new(Shared::new(policy).unwrap(), LeaseTable::new(), 0, 1);
    let req = Req::new(MessageType::Discover, mac(40)).class(Some(b"dslforum.org"));
    let (o, out) = send(&mut s, T0, &req);
    let (_, offer) = reply_of(o, &out);
    let v43 = offer.option(code::VENDOR_SPECIFIC).expect("option 43");
    assert_eq!(
        SubOptions::find(&v43, 1),
        Some(&b"http://acs.example.net:7547/cwmp"[..])
    );
    assert_eq!(SubOptions::find(&v43, 2), Some(&b"RES.GOLD"[..]));
    let req = Req::new(MessageType::Discover, mac(41)).class(Some(b"MSFT 5.0"));
    let (o, out) = send(&mut s, T0, &req);
    let (_, offer) = reply_of(o, &out);
    assert!(offer.option(code::VENDOR_SPECIFIC).is_none());
}

#[test]
fn a_run_time_reservation_is_the_next_discover_and_its_removal_too() {
    let shared = Shared::new(policy("")).unwrap();
    let mut s = Shard::new(Arc::clone(&shared), LeaseTable::new(), 0, 1);
    let fixed = Ipv4Addr::new(198, 19, 0, 77);
    assert_eq!(shared.check_live_reservation(fixed), Ok(()));
    let (o, b) = send(&mut s, T0, &Req::new(MessageType::Discover, mac(3)));
    assert_ne!(reply_of(o, &b).1.yiaddr(), fixed, "dynamic before");
    shared.live.set(mac(3), fixed, None);
    let (o, b) = send(&mut s, T0 + 1, &Req::new(MessageType::Discover, mac(3)));
    assert_eq!(reply_of(o, &b).1.yiaddr(), fixed, "reserved now");
    let (o, b) = send(&mut s, T0 + 1, &Req::new(MessageType::Discover, mac(4)));
    assert_ne!(reply_of(o, &b).1.yiaddr(), fixed, "only for its MAC");
    shared.live.remove(&mac(3));
    assert!(shared.live.is_empty());
    let (o, b) = send(&mut s, T0 + 2, &Req::new(MessageType::Discover, mac(3)));
    assert_ne!(reply_of(o, &b).1.yiaddr(), fixed, "removed");
    // Pool addresses, addresses outside every subnet and the config's reserved ones are refused.
    for (addr, why) in [
        ([198, 19, 0, 10], "inside a pool"),
        ([203, 0, 113, 5], "in no configured subnet"),
    ] {
        let e = shared
            .check_live_reservation(Ipv4Addr::from(addr))
            .unwrap_err();
        assert!(e.contains(why), "{e}");
    }
}

/// A vendor class (option 60) the glob matches: each wildcard stands for one `x`.
fn sample_of(glob: &str) -> Vec<u8> {
    glob.bytes()
        .map(|c| if c == b'*' || c == b'?' { b'x' } else { c })
        .collect()
}

/// What a subnet's client says in option 60 to land in a class the subnet serves: no option 60
/// when that does, else a string one of its classes matches first. `None`: no client can
/// (e.g. a subnet for reservation-only classes).
fn client_for(p: &Policy, subnet: &provd_config::Subnet) -> Option<Option<Vec<u8>>> {
    if p.classify(None).is_some_and(|c| subnet.allows(c))
        || (p.classes.is_empty() && subnet.allows_unclassified())
    {
        return Some(None);
    }
    p.classes
        .iter()
        .filter(|c| !c.matcher.is_never())
        .map(|c| sample_of(c.matcher.as_str()))
        .find(|vc| p.classify(Some(vc)).is_some_and(|c| subnet.allows(c)))
        .map(Some)
}

/// Every shipped example config serves: a client of each subnet with a pool that some client
/// can reach (by its network's relay, its interface, or an address inside it when it names
/// neither) is OFFERed and ACKed an address from a pool of that network its class may use.
/// Loading the file is not enough: minimal.toml once loaded and then dropped every client.
#[test]
fn every_example_config_serves_a_client() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../config/examples");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "toml"))
        .collect();
    files.sort();
    assert!(files.len() >= 4, "{files:?}");
    for file in &files {
        let name = file.file_name().unwrap().to_string_lossy().into_owned();
        let p = Policy::from_file(file).unwrap_or_else(|e| panic!("{name}: {e}"));
        let mut s = Shard::new(Shared::new(p.clone()).unwrap(), LeaseTable::new(), 0, 1);
        let mut served = 0u8;
        for (ni, net) in p.networks.iter().enumerate() {
            for subnet in net.subnets.iter().filter(|s| !s.pools.is_empty()) {
                let Some(vc) = client_for(&p, subnet) else {
                    continue;
                };
                served += 1;
                let client = mac(served);
                let (giaddr, local) = match (net.relays.first(), net.interfaces.first()) {
                    (Some(&r), _) => (r, SERVER),
                    (None, Some(&i)) => (Ipv4Addr::UNSPECIFIED, i),
                    // Neither: the network of the subnet holding the arrival address.
                    (None, None) => (
                        Ipv4Addr::UNSPECIFIED,
                        Ipv4Addr::from(u32::from(subnet.prefix) + 1),
                    ),
                };
                let vendor_class: Option<&'static [u8]> =
                    vc.map(|v| &*Box::leak(v.into_boxed_slice()));
                let mut req = Req::new(MessageType::Discover, client).class(vendor_class);
                req.giaddr = giaddr;
                if giaddr.is_unspecified() {
                    req.relay_info = None;
                }
                let what = format!("{name}: network {} ({:?})", net.name, req.vendor_class);
                let exchange = |s: &mut Shard, req: &Req| {
                    let bytes = req.bytes();
                    let ingress = Ingress {
                        payload: &bytes,
                        src: SocketAddrV4::new(
                            giaddr,
                            if giaddr.is_unspecified() { 68 } else { 67 },
                        ),
                        local,
                        ifindex: 3,
                    };
                    let mut out = Vec::new();
                    let o = s.handle(T0, &ingress, &mut out);
                    (o, out)
                };
                let (o, out) = exchange(&mut s, &req);
                assert!(matches!(o, Outcome::Reply(_)), "{what}: DISCOVER got {o:?}");
                let offer = Message::parse(&out).unwrap();
                assert_eq!(offer.message_type(), Ok(Some(MessageType::Offer)), "{what}");
                let addr = offer.yiaddr();
                let class = p.classify(req.vendor_class).expect("classified");
                assert!(
                    p.pools().any(|pool| pool.contains(addr)
                        && p.network_of_pool(pool.id) == ni
                        && p.subnet_of_pool(pool.id).1.allows(class)),
                    "{what}: offered {addr}, in no pool of the network its class may use"
                );
                let server_id = p.server.server_id.unwrap_or(local);
                let request = Req {
                    kind: MessageType::Request,
                    requested: Some(addr),
                    server_id: Some(server_id),
                    ..req
                };
                let (o, out) = exchange(&mut s, &request);
                assert!(matches!(o, Outcome::Reply(_)), "{what}: REQUEST got {o:?}");
                let ack = Message::parse(&out).unwrap();
                assert_eq!(ack.message_type(), Ok(Some(MessageType::Ack)), "{what}");
                assert_eq!(ack.yiaddr(), addr, "{what}");
            }
        }
        assert!(served > 0, "{name}: no subnet could serve a client");
    }
}

#[test]
fn an_operator_release_ends_the_bound_lease_and_frees_its_address() {
    let mut s = shard("");
    let (o, b) = send(&mut s, T0, &Req::new(MessageType::Discover, mac(5)));
    let offered = reply_of(o, &b).1.yiaddr();
    assert_eq!(
        s.release_mac(mac(5), T0),
        None,
        "only an offer: nothing bound to release"
    );
    let req = Req {
        requested: Some(offered),
        server_id: Some(SERVER),
        ..Req::new(MessageType::Request, mac(5))
    };
    let (o, b) = send(&mut s, T0, &req);
    assert_eq!(reply_of(o, &b).1.message_type(), Ok(Some(MessageType::Ack)));
    s.take_pending().for_each(drop);
    assert_eq!(s.release_mac(mac(5), T0 + 1), Some(offered));
    let pending: Vec<_> = s.take_pending().collect();
    assert_eq!(pending.len(), 1, "one record for the log");
    assert_eq!(pending[0].1.state, LeaseState::Released);
    assert_eq!(s.release_mac(mac(5), T0 + 2), None, "released already");
    let pool = s.shared().pool_of(offered).unwrap();
    assert!(
        !s.shared().pool(pool).unwrap().is_claimed(offered),
        "back in its pool"
    );
}

/// Option 82 with this remote-id (and a fixed circuit-id).
fn agent(remote: u8) -> Option<Vec<u8>> {
    Some(vec![
        1, 4, 0, 0, 0, 7, 2, 6, 0, 0x15, 0xcf, 0xaa, 0xbb, remote,
    ])
}

fn discover_from(s: &mut Shard, now: u32, mac: [u8; 6], relay_info: Option<Vec<u8>>) -> Outcome {
    let req = Req {
        relay_info,
        vendor_class: Some(b"pktc1.0"),
        ..Req::new(MessageType::Discover, mac)
    };
    send(s, now, &req).0
}

/// A SELECTING REQUEST naming this server and `addr`, as a client whose OFFER came from it.
fn select(mac: [u8; 6], addr: Ipv4Addr) -> Req {
    Req {
        requested: Some(addr),
        server_id: Some(SERVER),
        ..Req::new(MessageType::Request, mac)
    }
}

/// A restart loses the offers (they are not durable): the clients that took one REQUEST it from
/// the new process. While the address is free it is theirs, without a NAK and a new DISCOVER
/// after their backoff; an address someone holds, one outside the pools or one reserved for
/// another client is still NAK'd.
#[test]
fn a_request_for_a_lost_offer_is_acked_while_the_address_is_free() {
    let extra = r#"
[[reservation]]
mac = "00:15:cf:00:00:30"
address = "198.19.0.10"
class = "cm"
"#;
    let mut s = shard(extra);
    let (o, b) = send(&mut s, T0, &select(mac(5), Ipv4Addr::new(198, 19, 0, 11)));
    let (r, ack) = reply_of(o, &b);
    assert_eq!(r.kind, MessageType::Ack);
    assert_eq!(ack.yiaddr(), Ipv4Addr::new(198, 19, 0, 11));
    assert!(matches!(o, Outcome::Reply(Reply { durable: true, .. })));
    assert_eq!(s.counters().snapshot().lost_offers_honoured, 1);
    // The address is claimed: another client asking for it, as if offered it too, is NAK'd,
    // and the pool's other address is reserved, so a DISCOVER finds the pool exhausted.
    let (o, b) = send(&mut s, T0, &select(mac(6), Ipv4Addr::new(198, 19, 0, 11)));
    assert_eq!(reply_of(o, &b).0.kind, MessageType::Nak);
    let (o, b) = send(&mut s, T0, &select(mac(7), Ipv4Addr::new(198, 19, 0, 10)));
    assert_eq!(
        reply_of(o, &b).0.kind,
        MessageType::Nak,
        "reserved for another"
    );
    let (o, _) = send(&mut s, T0, &Req::new(MessageType::Discover, mac(8)));
    assert_eq!(o, Outcome::Dropped(Drop::PoolExhausted));
    let snap = s.counters().snapshot();
    assert_eq!(snap.nak_count(Nak::NotOffered), 2);
    assert_eq!(snap.lost_offers_honoured, 1);
    // The client holding it renews as usual.
    let (o, b) = send(
        &mut s,
        T0 + 5,
        &select(mac(5), Ipv4Addr::new(198, 19, 0, 11)),
    );
    assert_eq!(reply_of(o, &b).0.kind, MessageType::Ack);
    assert_eq!(s.counters().snapshot().lost_offers_honoured, 1);
}

/// A client new to the table skipping DISCOVER is admitted as its DISCOVER would have been: a
/// subscriber over its burst cannot take addresses with forged SELECTING REQUESTs.
#[test]
fn lost_offer_requests_pass_the_same_admission_as_discovers() {
    let mut s = shard("");
    let mut acked = 0;
    for n in 0..100u32 {
        let addr = Ipv4Addr::from(u32::from(Ipv4Addr::new(198, 19, 1, 10)) + n);
        let req = Req {
            relay_info: agent(1),
            vendor_class: Some(b"pktc1.0"),
            ..select(many_mac(n), addr)
        };
        match send(&mut s, T0, &req).0 {
            Outcome::Reply(_) => acked += 1,
            Outcome::Dropped(Drop::AgentLimit) => {}
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(acked, 32, "the default burst");
    assert_eq!(s.counters().snapshot().lost_offers_honoured, 32);
}

fn many_mac(n: u32) -> [u8; 6] {
    let b = n.to_be_bytes();
    [0x02, 0xee, b[0], b[1], b[2], b[3]]
}

/// The review's flood: thousands of random MACs behind one relay agent's subscriber. The
/// subscriber gets its burst (32 by default) and one a second; another subscriber and a client
/// the table already knows are served all along; each refusal is counted.
#[test]
fn one_subscriber_flooding_new_macs_gets_its_burst_and_others_are_still_served() {
    let mut s = shard("");
    let mut offered = 0;
    for n in 0..2000 {
        match discover_from(&mut s, T0, many_mac(n), agent(1)) {
            Outcome::Reply(_) => offered += 1,
            Outcome::Dropped(Drop::AgentLimit) => {}
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(offered, 32, "the default burst");
    assert_eq!(
        s.counters().snapshot().drop_count(Drop::AgentLimit),
        2000 - 32
    );
    // Another subscriber behind the same relay, and one without option 82, are served.
    assert!(matches!(
        discover_from(&mut s, T0, mac(1), agent(2)),
        Outcome::Reply(_)
    ));
    assert!(matches!(
        discover_from(&mut s, T0, mac(2), None),
        Outcome::Reply(_)
    ));
    // A client the table knows is never limited (a reboot storm is made of those).
    assert!(matches!(
        discover_from(&mut s, T0, many_mac(0), agent(1)),
        Outcome::Reply(_)
    ));
    // One more new client a second.
    assert!(matches!(
        discover_from(&mut s, T0 + 1, many_mac(5000), agent(1)),
        Outcome::Reply(_)
    ));
    assert!(matches!(
        discover_from(&mut s, T0 + 1, many_mac(5001), agent(1)),
        Outcome::Dropped(Drop::AgentLimit)
    ));
}

#[test]
fn a_relay_limit_is_off_by_default_and_counts_per_giaddr_when_set() {
    let mut s = shard("");
    for n in 0..150 {
        assert!(
            matches!(
                discover_from(&mut s, T0, many_mac(n), agent(n as u8)),
                Outcome::Reply(_)
            ),
            "{n}"
        );
    }
    let mut p = policy("");
    p.server.relay_limit = provd_config::SourceLimit {
        burst: 10,
        per_sec: 5,
    };
    let mut s = Shard::new(Shared::new(p).unwrap(), LeaseTable::new(), 0, 1);
    let served = (0..50)
        .filter(|n| {
            matches!(
                discover_from(&mut s, T0, many_mac(*n), agent(*n as u8)),
                Outcome::Reply(_)
            )
        })
        .count();
    assert_eq!(served, 10);
    assert_eq!(s.counters().snapshot().drop_count(Drop::RelayLimit), 40);
    // Unrelayed clients have no relay to limit.
    let direct = Req::new(MessageType::Discover, mac(9)).direct();
    assert!(matches!(send(&mut s, T0, &direct).0, Outcome::Reply(_)));
}

/// DISCOVERs alone cannot pin a pool: once it is out of addresses, an offer nobody took up
/// for `offer_reuse_after_secs` goes to the next client; the first client's REQUEST for it is
/// NAKed, and a bound lease is never taken.
#[test]
fn a_pool_out_of_addresses_reuses_old_offers_never_bindings() {
    let mut s = shard("");
    // The cm subnet's pool has 2 addresses: one bound, one offered.
    let base = |m| Req {
        relay_info: agent(m),
        ..Req::new(MessageType::Discover, mac(m))
    };
    let bound = dora(&mut s, T0, &base(1));
    let (o, out) = send(&mut s, T0, &base(2));
    let (_, offer) = reply_of(o, &out);
    let offered = offer.yiaddr();
    assert_ne!(bound, offered);
    // Too young to reuse (default 2 s): the pool is exhausted.
    assert!(matches!(
        send(&mut s, T0 + 1, &base(3)).0,
        Outcome::Dropped(Drop::PoolExhausted)
    ));
    // Old enough: client 3 gets client 2's offer, never client 1's binding.
    let (o, out) = send(&mut s, T0 + 2, &base(3));
    let (_, offer3) = reply_of(o, &out);
    assert_eq!(offer3.yiaddr(), offered);
    assert_eq!(s.counters().snapshot().offers_reused, 1);
    let taken = Req {
        kind: MessageType::Request,
        requested: Some(offered),
        server_id: Some(SERVER),
        ..base(2)
    };
    let (o, out) = send(&mut s, T0 + 3, &taken);
    let (_, nak) = reply_of(o, &out);
    assert_eq!(nak.message_type(), Ok(Some(MessageType::Nak)));
    // Client 3 completes; client 4 finds nothing to take.
    let req3 = Req {
        kind: MessageType::Request,
        requested: Some(offered),
        server_id: Some(SERVER),
        ..base(3)
    };
    let (o, out) = send(&mut s, T0 + 3, &req3);
    assert_eq!(
        reply_of(o, &out).1.message_type(),
        Ok(Some(MessageType::Ack))
    );
    assert!(matches!(
        send(&mut s, T0 + 10, &base(4)).0,
        Outcome::Dropped(Drop::PoolExhausted)
    ));
}
