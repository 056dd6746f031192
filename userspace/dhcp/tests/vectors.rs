//! The codec against the captured/built vectors of ../shared/spec/vectors/dhcp (copied into
//! tests/data/dhcp with their provenance in tests/data/README.md).

use std::net::Ipv4Addr;

use provd_dhcp::cablelabs::{
    ClientConfiguration, DeviceInfo, ProvServer, ProvisioningFlow, RealmValue, VendorClass,
};
use provd_dhcp::relay::RelayAgentInfo;
use provd_dhcp::{Message, MessageType, OwnedMessage, code};

fn data(name: &str) -> Vec<u8> {
    let path = format!(
        "{}/../../tests/data/dhcp/{name}",
        env!("CARGO_MANIFEST_DIR")
    );
    std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

#[test]
fn relayed_mta_discover() {
    let b = data("mta_discover_relayed.bootp");
    let m = Message::parse(&b).unwrap();
    assert_eq!(m.message_type(), Ok(Some(MessageType::Discover)));
    assert_eq!(m.mac(), Some([0x00, 0x15, 0xcf, 0x12, 0x34, 0x57]));
    assert_eq!(m.giaddr(), Ipv4Addr::new(10, 1, 0, 1));
    assert_eq!(m.max_message_size(), Some(576));
    assert_eq!(
        m.vendor_class().unwrap().as_ref(),
        b"pktc1.5:051a0101010201020301000401010901000b02060910010912020007"
    );
    let vc = m.vendor_class().unwrap();
    assert_eq!(VendorClass::parse(&vc).supported_flows(), Some(7));
    let v43 = m.option(code::VENDOR_SPECIFIC).unwrap();
    let info = DeviceInfo::decode(&v43).unwrap();
    assert_eq!(info.mta_mac, Some([0x00, 0x15, 0xcf, 0x12, 0x34, 0x57]));
    assert_eq!(info.correlation_id, Some(0x1234_abcd));
    let r82 = m.relay_agent_info().unwrap();
    let relay = RelayAgentInfo::parse(&r82).unwrap();
    assert_eq!(
        relay.remote_id(),
        Some(&[0x00, 0x15, 0xcf, 0x12, 0x34, 0x56][..])
    );
    assert_eq!(
        m.param_request_list().unwrap().as_ref(),
        &[1, 2, 3, 6, 7, 12, 15, 54, 122]
    );
}

#[test]
fn basic1_offer_decodes_and_reencodes_byte_for_byte() {
    let b = data("mta_offer_basic1.bootp");
    let m = Message::parse(&b).unwrap();
    assert_eq!(m.message_type(), Ok(Some(MessageType::Offer)));
    assert_eq!(m.yiaddr(), Ipv4Addr::new(10, 1, 0, 57));
    assert_eq!(m.siaddr(), Ipv4Addr::new(10, 0, 0, 10));
    assert_eq!(m.file().unwrap(), b"mta/0015cf123457.bin");
    assert_eq!(m.lease_time(), Some(86400));
    assert_eq!(
        m.option_first(code::TIME_OFFSET),
        Some(&(-18000i32).to_be_bytes()[..])
    );
    let ccc =
        ClientConfiguration::decode(&m.option(code::CABLELABS_CLIENT_CONFIG).unwrap()).unwrap();
    assert_eq!(
        ccc.provisioning_server,
        Some(ProvServer::Fqdn("prov.example.net".into()))
    );
    assert_eq!(ccc.realm, Some(RealmValue::Flow(ProvisioningFlow::Basic1)));

    let owned = OwnedMessage::parse(&b).unwrap();
    let mut out = Vec::new();
    owned.encode(&mut out).unwrap();
    assert_eq!(out, b, "owned re-encode must reproduce the vector exactly");
}

#[test]
fn every_truncation_of_the_vectors_is_an_error_not_a_panic() {
    for name in ["mta_discover_relayed.bootp", "mta_offer_basic1.bootp"] {
        let b = data(name);
        for n in 0..b.len() {
            // Cutting inside the options must either fail or parse a prefix; never panic.
            let _ =
                Message::parse(&b[..n]).map(|m| (m.option(43), m.option(122), m.request_kind()));
        }
    }
}
