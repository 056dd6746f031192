//! Option 82, relay agent information (RFC 3046), as a CMTS fills it. The server echoes the
//! option verbatim; these accessors are for policy (reservations by remote id) and logs.

use crate::suboption::{SubOptionError, SubOptions};

pub const CIRCUIT_ID: u8 = 1;
pub const REMOTE_ID: u8 = 2;
pub const DOCSIS_DEVICE_CLASS: u8 = 4;
pub const LINK_SELECTION: u8 = 5;
pub const VENDOR_SPECIFIC: u8 = 9;
pub const SERVER_ID_OVERRIDE: u8 = 11;

/// A borrowed view of option 82's value.
#[derive(Debug, Clone, Copy)]
pub struct RelayAgentInfo<'a>(&'a [u8]);

impl<'a> RelayAgentInfo<'a> {
    /// Checks every sub-option is well formed.
    pub fn parse(value: &'a [u8]) -> Result<Self, SubOptionError> {
        SubOptions::validate(value).map(|()| RelayAgentInfo(value))
    }
    pub fn get(&self, code: u8) -> Option<&'a [u8]> {
        SubOptions::find(self.0, code)
    }
    pub fn circuit_id(&self) -> Option<&'a [u8]> {
        self.get(CIRCUIT_ID)
    }
    /// For an MTA or CPE: the MAC of the cable modem it sits behind.
    pub fn remote_id(&self) -> Option<&'a [u8]> {
        self.get(REMOTE_ID)
    }
    /// RFC 3527: the subnet the client is on, when the relay's giaddr is not in it.
    pub fn link_selection(&self) -> Option<std::net::Ipv4Addr> {
        match self.get(LINK_SELECTION)? {
            &[a, b, c, d] => Some(std::net::Ipv4Addr::new(a, b, c, d)),
            _ => None,
        }
    }
    pub fn as_bytes(&self) -> &'a [u8] {
        self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_cmts_suboptions() {
        // From ../shared/spec/dhcp.md §10: 82.1 circuit id, 82.2 = the CM's MAC.
        let v = [
            1, 6, 0, 4, 0, 0, 0, 3, 2, 6, 0, 0x15, 0xcf, 0x12, 0x34, 0x56,
        ];
        let r = RelayAgentInfo::parse(&v).unwrap();
        assert_eq!(r.circuit_id(), Some(&[0, 4, 0, 0, 0, 3][..]));
        assert_eq!(r.remote_id(), Some(&[0, 0x15, 0xcf, 0x12, 0x34, 0x56][..]));
        assert!(RelayAgentInfo::parse(&v[..10]).is_err());
    }
}
