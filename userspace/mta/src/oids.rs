//! The object instances the flows read and write, in both editions of the MTA MIB.
//!
//! Hard-coded rather than looked up in `provd-mib` at run time: the engine touches them on
//! every INFORM, and a constant slice compares without a hash lookup. The test at the end checks
//! every one against the `provd-mib` table, so the two cannot drift apart.

use std::fmt;

/// Which edition of the MTA MIB a device speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Mib {
    /// PKTC-IETF-MTA-MIB (RFC 4682, `1.3.6.1.2.1.140`): PacketCable 1.5 / 2.0 MTAs.
    Ietf,
    /// PKTC-MTA-MIB (CableLabs, `1.3.6.1.4.1.4491.2.2.1`): PacketCable 1.0 MTAs.
    CableLabs,
}

impl Mib {
    /// The objects of this edition.
    pub(crate) fn oids(self) -> &'static MibOids {
        match self {
            Mib::Ietf => &IETF,
            Mib::CableLabs => &CABLELABS,
        }
    }

    /// The other edition, for the lookups that fall back to it (an MTA mixing both).
    pub(crate) fn other(self) -> Mib {
        match self {
            Mib::Ietf => Mib::CableLabs,
            Mib::CableLabs => Mib::Ietf,
        }
    }

    /// Hash lengths pktcMtaDevProvConfigHash takes: SHA-1 only in the IETF MIB, also MD5 in
    /// the CableLabs one (`OCTET STRING (SIZE(16|20))`).
    pub fn hash_lengths(self) -> &'static [usize] {
        match self {
            Mib::Ietf => &[20],
            Mib::CableLabs => &[16, 20],
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Mib::Ietf => "ietf",
            Mib::CableLabs => "cablelabs",
        }
    }
}

impl fmt::Display for Mib {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Mib::Ietf => "PKTC-IETF-MTA-MIB",
            Mib::CableLabs => "PKTC-MTA-MIB",
        })
    }
}

/// The instances (scalars with `.0`, the MAC with its `ifIndex`) one edition defines.
#[derive(Debug)]
pub(crate) struct MibOids {
    /// snmpTrapOID.0 value of pktcMtaDevProvisioningEnrollment.
    pub enrollment: &'static [u32],
    /// snmpTrapOID.0 value of pktcMtaDevProvisioningStatus.
    pub status: &'static [u32],
    /// The MTA's MAC: pktcMtaDevMacAddress.0 (CableLabs) or ifPhysAddress.1 (IETF, which has
    /// no MAC object of its own).
    pub mac: &'static [u32],
    pub correlation_id: &'static [u32],
    pub sw_current_vers: &'static [u32],
    pub type_identifier: &'static [u32],
    pub end_pnt_count: &'static [u32],
    pub provisioning_state: &'static [u32],
    pub config_file: &'static [u32],
    pub prov_config_hash: &'static [u32],
}

/// sysDescr.0, in every enrollment INFORM.
pub(crate) const SYS_DESCR_0: &[u32] = &[1, 3, 6, 1, 2, 1, 1, 1, 0];

pub(crate) const IETF: MibOids = MibOids {
    enrollment: &[1, 3, 6, 1, 2, 1, 140, 0, 1],
    status: &[1, 3, 6, 1, 2, 1, 140, 0, 2],
    mac: &[1, 3, 6, 1, 2, 1, 2, 2, 1, 6, 1],
    correlation_id: &[1, 3, 6, 1, 2, 1, 140, 1, 3, 3, 0],
    sw_current_vers: &[1, 3, 6, 1, 2, 1, 140, 1, 1, 3, 0],
    type_identifier: &[1, 3, 6, 1, 2, 1, 140, 1, 1, 7, 0],
    end_pnt_count: &[1, 3, 6, 1, 2, 1, 140, 1, 1, 5, 0],
    provisioning_state: &[1, 3, 6, 1, 2, 1, 140, 1, 1, 8, 0],
    config_file: &[1, 3, 6, 1, 2, 1, 140, 1, 2, 9, 0],
    prov_config_hash: &[1, 3, 6, 1, 2, 1, 140, 1, 2, 11, 0],
};

pub(crate) const CABLELABS: MibOids = MibOids {
    enrollment: &[1, 3, 6, 1, 4, 1, 4491, 2, 2, 1, 2, 0, 1],
    status: &[1, 3, 6, 1, 4, 1, 4491, 2, 2, 1, 2, 0, 2],
    mac: &[1, 3, 6, 1, 4, 1, 4491, 2, 2, 1, 1, 1, 4, 0],
    correlation_id: &[1, 3, 6, 1, 4, 1, 4491, 2, 2, 1, 1, 3, 4, 0],
    sw_current_vers: &[1, 3, 6, 1, 4, 1, 4491, 2, 2, 1, 1, 1, 14, 0],
    type_identifier: &[1, 3, 6, 1, 4, 1, 4491, 2, 2, 1, 1, 1, 8, 0],
    end_pnt_count: &[1, 3, 6, 1, 4, 1, 4491, 2, 2, 1, 1, 1, 6, 0],
    provisioning_state: &[1, 3, 6, 1, 4, 1, 4491, 2, 2, 1, 1, 1, 9, 0],
    config_file: &[1, 3, 6, 1, 4, 1, 4491, 2, 2, 1, 1, 2, 5, 0],
    prov_config_hash: &[1, 3, 6, 1, 4, 1, 4491, 2, 2, 1, 1, 2, 7, 0],
};

/// Which notification a snmpTrapOID.0 value names, and in which MIB.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Notified {
    Enrollment(Mib),
    Status(Mib),
}

impl Notified {
    pub fn of(trap_oid: &[u32]) -> Option<Notified> {
        [Mib::Ietf, Mib::CableLabs].into_iter().find_map(|mib| {
            let o = mib.oids();
            if trap_oid == o.enrollment {
                Some(Notified::Enrollment(mib))
            } else if trap_oid == o.status {
                Some(Notified::Status(mib))
            } else {
                None
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use provd_mib::{IF_MIB, PKTC_IETF_MTA_MIB, PKTC_MTA_MIB, SNMPV2_MIB, by_name_in};
    use provd_snmp::Oid;

    /// `module::name` plus `suffix`, from the provd-mib table.
    fn mib(module: &str, name: &str, suffix: &[u32]) -> Vec<u32> {
        let o = by_name_in(module, name).unwrap_or_else(|| panic!("{module}::{name} missing"));
        [o.oid, suffix].concat()
    }

    #[test]
    fn constants_agree_with_the_mib_table() {
        for (module, o) in [(PKTC_IETF_MTA_MIB, &IETF), (PKTC_MTA_MIB, &CABLELABS)] {
            let scalar = |name| mib(module, name, &[0]);
            let node = |name| mib(module, name, &[]);
            assert_eq!(o.enrollment, node("pktcMtaDevProvisioningEnrollment"));
            assert_eq!(o.status, node("pktcMtaDevProvisioningStatus"));
            assert_eq!(o.correlation_id, scalar("pktcMtaDevCorrelationId"));
            assert_eq!(o.sw_current_vers, scalar("pktcMtaDevSwCurrentVers"));
            assert_eq!(o.type_identifier, scalar("pktcMtaDevTypeIdentifier"));
            assert_eq!(o.end_pnt_count, scalar("pktcMtaDevEndPntCount"));
            assert_eq!(o.provisioning_state, scalar("pktcMtaDevProvisioningState"));
            assert_eq!(o.config_file, scalar("pktcMtaDevConfigFile"));
            assert_eq!(o.prov_config_hash, scalar("pktcMtaDevProvConfigHash"));
            for oid in [o.enrollment, o.mac, o.config_file, o.prov_config_hash] {
                assert!(Oid::from_slice(oid).is_ok());
            }
        }
        assert_eq!(IETF.mac, mib(IF_MIB, "ifPhysAddress", &[1]));
        assert_eq!(
            CABLELABS.mac,
            mib(PKTC_MTA_MIB, "pktcMtaDevMacAddress", &[0])
        );
        assert_eq!(SYS_DESCR_0, mib(SNMPV2_MIB, "sysDescr", &[0]));
    }

    #[test]
    fn notifications_are_recognised_in_both_mibs() {
        assert_eq!(
            Notified::of(&[1, 3, 6, 1, 2, 1, 140, 0, 1]),
            Some(Notified::Enrollment(Mib::Ietf))
        );
        assert_eq!(
            Notified::of(CABLELABS.status),
            Some(Notified::Status(Mib::CableLabs))
        );
        assert_eq!(Notified::of(&[1, 3, 6, 1, 6, 3, 1, 1, 5, 1]), None);
    }
}
