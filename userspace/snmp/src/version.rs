//! The SNMP version a message carries (msgVersion). A leaf below `error` and `message`, which
//! both name it.

use std::fmt;

/// The msgVersion field.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Version {
    V1,
    V2c,
    V3,
}

impl Version {
    /// The number on the wire: 0, 1 and 3.
    pub fn number(self) -> i64 {
        match self {
            Version::V1 => 0,
            Version::V2c => 1,
            Version::V3 => 3,
        }
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Version::V1 => "SNMPv1",
            Version::V2c => "SNMPv2c",
            Version::V3 => "SNMPv3",
        })
    }
}
