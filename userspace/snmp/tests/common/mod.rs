//! Helpers shared by the integration tests: the vectors of tests/data/snmp and hex literals.

#![allow(dead_code)] // each test crate uses its own subset

use std::path::Path;

/// The four SNMPv2c vectors of the spec (tests/data/snmp/README.md).
pub const VECTORS: [&str; 4] = [
    "snmp_v2c_inform_enrollment.bin",
    "snmp_v2c_inform_response.bin",
    "snmp_v2c_set_configfile.bin",
    "snmp_v2c_inform_provstatus.bin",
];

pub fn data(name: &str) -> Vec<u8> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/data/snmp")
        .join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Bytes from hex with any whitespace between pairs; `#` starts a comment to the end of the line.
pub fn hex(s: &str) -> Vec<u8> {
    let digits: Vec<u8> = s
        .lines()
        .flat_map(|line| line.split('#').next().unwrap_or_default().bytes())
        .filter(|b| !b.is_ascii_whitespace())
        .collect();
    assert!(digits.len().is_multiple_of(2), "odd number of hex digits");
    digits
        .chunks(2)
        .map(|pair| {
            let text = std::str::from_utf8(pair).unwrap();
            u8::from_str_radix(text, 16).unwrap_or_else(|_| panic!("bad hex {text:?}"))
        })
        .collect()
}
