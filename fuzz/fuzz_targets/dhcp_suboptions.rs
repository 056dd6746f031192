//! Fuzzing of the option payload decoders, each fed the whole input as an option value.
//!
//! Checks:
//! - `ClientConfiguration::decode` (option 122) is total; when it succeeds and `encode` succeeds,
//!   decoding the encoding gives the same value and re-encoding gives the same bytes; a failed
//!   `encode` leaves the output buffer as it was;
//! - `DeviceInfo::decode` (43), `VendorClass::parse` (60) and `supported_flows` are total;
//! - `RelayAgentInfo::parse` (82) accepts exactly what the sub-option iterator accepts, and its
//!   lookups agree with `SubOptions::find`; well-formed sub-option lists re-encode byte for byte;
//! - `vendor_blocks` (124/125) either covers the input exactly or ends with one error, and the
//!   blocks re-encode byte for byte;
//! - `decode_dns_name` is total; a decoded name without escapes encodes back to the input's
//!   leading wire name.

#![no_main]

use libfuzzer_sys::fuzz_target;
use provd_dhcp::cablelabs::{
    ClientConfiguration, DeviceInfo, VendorClass, decode_dns_name,
    encode_dns_name, encode_vendor_block, vendor_blocks,
};
use provd_dhcp::relay::RelayAgentInfo;
use provd_dhcp::suboption::{self, SubOptions};

fuzz_target!(|data: &[u8]| {
    client_configuration(data);
    let _ = DeviceInfo::decode(data);
    vendor_class(data);
    relay_agent_info(data);
    vendor_block_list(data);
    dns_name(data);
});

fn client_configuration(data: &[u8]) {
    let Ok(c) = ClientConfiguration::decode(data) else {
        return;
    };
    // A marker byte in front: encode must append, and must leave the buffer alone on error.
    let mut out = vec![0xa5];
    match c.encode(&mut out) {
        Ok(()) => {
            let again = ClientConfiguration::decode(&out[1..]).unwrap_or_else(|e| {
                panic!("encoded option 122 does not decode: {e}\n{c:?}\n{out:02x?}")
            });
            assert_eq!(again, c, "decode(encode(c)) != c");
            let mut out2 = Vec::new();
            again
                .encode(&mut out2)
                .expect("a value that encoded once encodes again");
            assert_eq!(out2, out[1..], "encoding is not canonical");
        }
        Err(_) => assert_eq!(out, [0xa5], "failed encode left bytes behind"),
    }
}



fn vendor_class(data: &[u8]) {
    let v = VendorClass::parse(data);
    assert!(data.starts_with(v.version));
    if let Some(caps) = &v.capabilities {
        // version ':' hex
        assert_eq!(v.version.len() + 1 + 2 * caps.len(), data.len());
    }
    let _ = v.supported_flows();
}

fn relay_agent_info(data: &[u8]) {
    let items: Vec<_> = SubOptions::new(data).collect();
    // After an error the iterator yields nothing more.
    if let Some(i) = items.iter().position(Result::is_err) {
        assert_eq!(i, items.len() - 1);
    }
    match RelayAgentInfo::parse(data) {
        Ok(r) => {
            assert!(items.iter().all(Result::is_ok));
            assert_eq!(r.as_bytes(), data);
            // Every code present, and one that is not (a full miss).
            let mut present = [false; 256];
            for (c, v) in items.iter().flatten() {
                if !present[usize::from(*c)] {
                    present[usize::from(*c)] = true;
                    assert_eq!(r.get(*c), Some(*v), "first sub-option {c}");
                }
            }
            if let Some(absent) = (0..=255u8).find(|c| !present[usize::from(*c)]) {
                assert_eq!(r.get(absent), None);
            }
            let _ = (r.circuit_id(), r.remote_id(), r.link_selection());
            let mut out = Vec::with_capacity(data.len());
            for (c, v) in items.iter().flatten() {
                assert!(suboption::put(&mut out, *c, v));
            }
            assert_eq!(out, data);
        }
        Err(_) => assert!(items.last().is_some_and(Result::is_err)),
    }
    // Option 43 style (pad/end) iteration is total too.
    SubOptions::with_pad_end(data).for_each(drop);
}

fn vendor_block_list(data: &[u8]) {
    let blocks: Vec<_> = vendor_blocks(data).collect();
    let mut out = Vec::with_capacity(data.len());
    for (i, b) in blocks.iter().enumerate() {
        match b {
            Ok(b) => assert!(encode_vendor_block(b.enterprise, b.data, &mut out)),
            Err(_) => assert_eq!(i, blocks.len() - 1, "vendor_blocks went on after an error"),
        }
    }
    if blocks.iter().all(Result::is_ok) {
        assert_eq!(out, data);
    } else {
        assert!(data.starts_with(&out));
    }
}

fn dns_name(data: &[u8]) {
    let Ok(name) = decode_dns_name(data) else {
        return;
    };
    assert!(name.is_ascii());
    // Every name decode accepts (escapes included, within 255 wire bytes, not the root) encodes
    // back to exactly the wire name it came from.
    let mut wire = vec![0x5a];
    encode_dns_name(&name, &mut wire)
        .unwrap_or_else(|e| panic!("decoded name {name:?} does not encode: {e}"));
    assert_eq!(data.get(..wire.len() - 1), Some(&wire[1..]), "{name:?}");
    assert_eq!(decode_dns_name(&wire[1..]).as_deref(), Ok(name.as_str()));
}
