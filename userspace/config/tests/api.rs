//! The lookups the engine uses.

use std::net::Ipv4Addr;

use provd_config::{
    LogFormat, Policy, ProvisioningFlow, ProvisioningServer, Realm, ReservationKey,
};

fn ip(s: &str) -> Ipv4Addr {
    s.parse().unwrap()
}

const CONFIG: &str = r#"
[server]
lease_dir = "leases"
port = 6767
workers = 2
log_format = "json"

[lease]
default_time = 7200
t1_ratio = 0.25
t2_ratio = 0.75

[[class]]
name = "cm"
match = "docsis*"
lease_time = 600
boot_file = "cm/{mac}.cfg"
primary_dhcp = "10.0.0.2"

[[class]]
name = "mta"
match = "pktc1.?:*"
provisioning_server = "10.0.0.20"
realm = "REALM.COM"
provisioning_timer = 0

[[class]]
name = "biz"
boot_file = "biz/{MAC}.cfg"

[[shared_network]]
name = "direct"
interfaces = ["127.0.0.1"]
  [[shared_network.subnet]]
  prefix = "192.0.2.0/24"
    [[shared_network.subnet.pool]]
    start = "192.0.2.10"
    end = "192.0.2.20"

[[shared_network]]
name = "cmts"
relays = ["10.1.0.1", "10.2.0.1"]
  [[shared_network.subnet]]
  prefix = "10.1.0.0/24"
  routers = ["10.1.0.1"]
  classes = ["cm"]
  lease_time = 300
    [[shared_network.subnet.pool]]
    start = "10.1.0.10"
    end = "10.1.0.100"
    [[shared_network.subnet.pool]]
    start = "10.1.0.150"
    end = "10.1.0.200"
  [[shared_network.subnet]]
  prefix = "10.2.0.0/16"
  routers = ["10.2.0.1"]
  classes = ["mta", "biz"]
    [[shared_network.subnet.pool]]
    start = "10.2.1.0"
    end = "10.2.1.255"

[[reservation]]
mac = "00:15:cf:12:34:56"
address = "10.1.0.50"
class = "biz"

[[reservation]]
remote_id = "00-15-cf-aa-bb-cc"
address = "10.2.200.1"
boot_file = "special.cfg"

[[reservation]]
remote_id = "text:circuit-7"
address = "10.2.200.2"
"#;

fn policy() -> Policy {
    Policy::from_toml_str(CONFIG).unwrap_or_else(|e| panic!("{e}"))
}

#[test]
fn server_and_defaults() {
    let p = policy();
    assert_eq!(p.server.port, 6767);
    assert_eq!(p.server.workers, 2);
    assert_eq!(p.server.bind, Ipv4Addr::UNSPECIFIED);
    assert_eq!(p.server.server_id, None);
    assert_eq!(p.server.lease_dir, std::path::PathBuf::from("leases"));
    assert_eq!(p.server.offer_hold_secs, 30);
    assert_eq!(p.server.decline_quarantine_secs, 600);
    assert_eq!(p.server.forget_after_secs, 86_400);
    assert_eq!(p.server.compact_after_records, 200_000);
    assert_eq!(p.server.log_format, LogFormat::Json);
    assert_eq!(p.lease.t1(7200), 1800);
    assert_eq!(p.lease.t2(7200), 5400);
    assert_eq!(p.lease.t1(u32::MAX), u32::MAX);

    let m = Policy::from_toml_str(
        "[server]\nlease_dir='/x'\n[[shared_network]]\nname='n'\n[[shared_network.subnet]]\nprefix='10.0.0.0/8'\n",
    )
    .unwrap();
    assert_eq!(m.server.port, 67);
    assert_eq!(m.server.log_format, LogFormat::Text);
    assert_eq!(m.lease.default_time, 86_400);
    assert_eq!((m.lease.t1_ratio, m.lease.t2_ratio), (0.5, 0.875));
    assert_eq!(m.pools().count(), 0);
    // No [[class]]: one class, "default", takes every client, with option 60 or without.
    let default = m.class_id(provd_config::DEFAULT_CLASS).unwrap();
    assert_eq!(m.classes.len(), 1);
    assert_eq!(m.classify(None), Some(default));
    assert_eq!(m.classify(Some(b"docsis3.0")), Some(default));
    let c = m.class(default);
    assert!(c.boot_file.is_none() && c.lease_time.is_none() && c.cablelabs.is_empty());
}

#[test]
fn classification() {
    let p = policy();
    let cm = p.class_id("cm").unwrap();
    let mta = p.class_id("mta").unwrap();
    assert_eq!(p.classify(Some(b"docsis3.0:0542")), Some(cm));
    assert_eq!(p.classify(Some(b"pktc1.5:051a")), Some(mta));
    assert_eq!(p.classify(Some(b"pktc2.0:051a")), None);
    // No class matches "*": a client without option 60 is unclassified.
    assert_eq!(p.classify(None), None);
    // "biz" has no match: only reachable by reservation.
    assert_eq!(p.classify(Some(b"")), None);
    let c = p.class(mta);
    assert_eq!(
        c.cablelabs.provisioning_server,
        Some(ProvisioningServer::Ipv4(ip("10.0.0.20")))
    );
    assert_eq!(c.cablelabs.realm, Some(Realm::Kerberos("REALM.COM".into())));
    assert_eq!(c.cablelabs.provisioning_timer, Some(0));
    assert_eq!(p.class(cm).cablelabs.primary_dhcp, Some(ip("10.0.0.2")));
    assert_eq!(ProvisioningFlow::Hybrid2.as_str(), "HYBRID.2");
    assert_eq!(
        ProvisioningFlow::from_name("BASIC.2"),
        Some(ProvisioningFlow::Basic2)
    );
}

#[test]
fn networks_subnets_pools() {
    let p = policy();
    assert_eq!(p.network_for_relay(ip("10.2.0.1")), Some(1));
    assert_eq!(p.network_for_relay(ip("10.1.0.1")), Some(1));
    assert_eq!(p.network_for_relay(ip("10.3.0.1")), None);
    assert_eq!(p.network_for_interface(ip("127.0.0.1")), Some(0));
    // No explicit interface: found by subnet prefix.
    assert_eq!(p.network_for_interface(ip("10.2.99.1")), Some(1));
    assert_eq!(p.network_for_interface(ip("192.0.2.255")), Some(0));
    assert_eq!(p.network_for_interface(ip("10.3.0.1")), None);
    assert_eq!(p.network_for_interface(ip("1.1.1.1")), None);

    let ids: Vec<u16> = p.pools().map(|x| x.id).collect();
    assert_eq!(ids, [0, 1, 2, 3]);
    assert_eq!(p.pool_count(), 4);
    let (net, sub) = p.subnet_of_pool(2);
    assert_eq!(net.name, "cmts");
    assert_eq!(sub.to_string(), "10.1.0.0/24");
    assert_eq!(sub.mask(), ip("255.255.255.0"));
    assert_eq!(sub.broadcast(), ip("10.1.0.255"));
    assert_eq!(p.network_of_pool(3), 1);
    assert_eq!(p.pool(3).unwrap().size(), 256);
    assert!(p.pool(4).is_none());

    let s = p.subnet_containing(1, ip("10.2.1.7")).unwrap();
    assert_eq!(s.prefix_len, 16);
    assert!(s.contains(ip("10.2.255.255")));
    assert!(!s.contains(ip("10.3.0.0")));
    assert!(p.subnet_containing(0, ip("10.2.1.7")).is_none());
    assert!(p.subnet_containing(9, ip("10.2.1.7")).is_none());

    let cm = p.class_id("cm").unwrap();
    let mta = p.class_id("mta").unwrap();
    let cm_sub = &p.network(1).subnets[0];
    assert!(cm_sub.allows(cm) && !cm_sub.allows(mta) && !cm_sub.allows_unclassified());
    assert!(p.network(0).subnets[0].allows(mta));
    assert!(p.network(0).subnets[0].allows_opt(None));

    // subnet beats class beats [lease]
    assert_eq!(p.lease_time_for(cm, cm_sub), 300);
    assert_eq!(p.lease_time_for(cm, &p.network(0).subnets[0]), 600);
    assert_eq!(p.lease_time_for(mta, &p.network(0).subnets[0]), 7200);
    assert_eq!(p.lease_time(None, &p.network(0).subnets[0]), 7200);
}

#[test]
fn reservations() {
    let p = policy();
    let mac = [0x00, 0x15, 0xcf, 0x12, 0x34, 0x56];
    let r = p.reservation_by_mac(&mac).unwrap();
    assert_eq!(r.address, ip("10.1.0.50"));
    assert_eq!(r.class, p.class_id("biz"));
    assert_eq!(r.key, ReservationKey::Mac(mac));
    // Inside a pool: the engine must skip it for others.
    assert!(p.is_reserved(ip("10.1.0.50")));
    assert!(!p.is_reserved(ip("10.1.0.51")));
    let r = p
        .reservation_by_remote_id(&[0x00, 0x15, 0xcf, 0xaa, 0xbb, 0xcc])
        .unwrap();
    assert_eq!(r.address, ip("10.2.200.1"));
    assert_eq!(r.boot_file.as_ref().unwrap().render(&mac), "special.cfg");
    assert_eq!(
        p.reservation_by_remote_id(b"circuit-7").unwrap().address,
        ip("10.2.200.2")
    );
    assert!(p.reservation_by_remote_id(b"circuit-8").is_none());
    assert!(p.reservation_by_mac(&[0; 6]).is_none());
    assert_eq!(
        p.reservation_for_address(ip("10.2.200.2")).unwrap().key,
        ReservationKey::RemoteId(b"circuit-7".to_vec().into())
    );
    let biz = p.class(p.class_id("biz").unwrap());
    assert_eq!(
        biz.boot_file.as_ref().unwrap().render(&mac),
        "biz/0015CF123456.cfg"
    );
}

#[test]
fn policy_is_shareable() {
    fn assert_send_sync<T: Send + Sync + 'static>() {}
    assert_send_sync::<Policy>();
    assert_send_sync::<provd_config::ConfigErrors>();
}
