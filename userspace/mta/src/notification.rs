//! The two PacketCable notifications, read out of a decoded PDU: enrollment (MTA-15) and
//! provisioning status (MTA-25). Objects are looked up by OID, never by position (agents add
//! and reorder varbinds), first in the MIB the snmpTrapOID.0 names and then in the other one,
//! since some MTAs mix them. Missing or mistyped objects are `None`; what the flow can do
//! without them is the engine's business.

use provd_snmp::{Pdu, Value};

use crate::Mac;
use crate::flow::ProvState;
use crate::oids::{Mib, Notified, SYS_DESCR_0};
use crate::record::text;

/// A notification the flows act on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Notification {
    Enrollment(Enrollment),
    Status(Status),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Enrollment {
    pub mib: Mib,
    pub mac: Option<Mac>,
    pub correlation_id: Option<u32>,
    pub sw_version: Option<Box<str>>,
    pub type_identifier: Option<Box<str>>,
    pub sys_descr: Option<Box<str>>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Status {
    pub mac: Option<Mac>,
    pub correlation_id: Option<u32>,
    pub state: Option<ProvState>,
}

impl Notification {
    /// The notification `pdu` carries; `None` for any other (or no) snmpTrapOID.0.
    pub fn read(pdu: &Pdu) -> Option<Notification> {
        let notified = Notified::of(pdu.notification_oid()?.as_slice())?;
        Some(match notified {
            Notified::Enrollment(mib) => Notification::Enrollment(Enrollment {
                mib,
                mac: mac(pdu, mib),
                correlation_id: correlation_id(pdu, mib),
                sw_version: string(pdu, mib, |o| o.sw_current_vers),
                type_identifier: string(pdu, mib, |o| o.type_identifier),
                sys_descr: pdu.get(SYS_DESCR_0).and_then(Value::as_bytes).map(text),
            }),
            Notified::Status(mib) => Notification::Status(Status {
                mac: mac(pdu, mib),
                correlation_id: correlation_id(pdu, mib),
                state: lookup(pdu, mib, |o| o.provisioning_state)
                    .and_then(Value::as_i64)
                    .and_then(|v| i32::try_from(v).ok())
                    .map(ProvState),
            }),
        })
    }
}

/// The value of an object in `mib`, else in the other edition.
fn lookup(
    pdu: &Pdu,
    mib: Mib,
    oid: impl Fn(&'static crate::oids::MibOids) -> &'static [u32],
) -> Option<&Value> {
    pdu.get(oid(mib.oids()))
        .or_else(|| pdu.get(oid(mib.other().oids())))
}

fn mac(pdu: &Pdu, mib: Mib) -> Option<Mac> {
    lookup(pdu, mib, |o| o.mac)
        .and_then(Value::as_bytes)
        .and_then(Mac::from_bytes)
}

/// Unsigned32 in the IETF MIB, Integer32 in the CableLabs one: either type, the same 32 bits
/// (a negative Integer32 is the upper half of the Unsigned32 range).
fn correlation_id(pdu: &Pdu, mib: Mib) -> Option<u32> {
    let v = lookup(pdu, mib, |o| o.correlation_id)?.as_i64()?;
    u32::try_from(v)
        .ok()
        .or_else(|| i32::try_from(v).ok().map(|v| v as u32))
}

fn string(
    pdu: &Pdu,
    mib: Mib,
    oid: impl Fn(&'static crate::oids::MibOids) -> &'static [u32],
) -> Option<Box<str>> {
    lookup(pdu, mib, oid).and_then(Value::as_bytes).map(text)
}

#[cfg(test)]
mod tests {
    use super::*;
    use provd_snmp::Message;

    fn read(bytes: &[u8]) -> Option<Notification> {
        let msg = Message::decode(bytes).unwrap();
        Notification::read(msg.pdu().unwrap())
    }

    #[test]
    fn the_spec_enrollment_is_read_in_full() {
        let n = read(include_bytes!(
            "../../../tests/data/snmp/snmp_v2c_inform_enrollment.bin"
        ));
        let Some(Notification::Enrollment(e)) = n else {
            panic!("{n:?}")
        };
        assert_eq!(e.mib, Mib::Ietf);
        assert_eq!(e.mac, Some(Mac([0x00, 0x15, 0xcf, 0x12, 0x34, 0x57])));
        assert_eq!(e.correlation_id, Some(0x1234_abcd));
        assert_eq!(e.sw_version.as_deref(), Some("2.1.0"));
        assert_eq!(
            e.type_identifier.as_deref(),
            Some("pktc1.5:051a0101010201020301000401010901000b02060910010912020007")
        );
        assert_eq!(
            e.sys_descr.as_deref(),
            Some("<<HW_REV: 1.0; VENDOR: ExampleCo; BOOTR: 1.0; SW_REV: 2.1.0; MODEL: EMTA1>>")
        );
    }

    #[test]
    fn the_spec_status_is_pass() {
        let n = read(include_bytes!(
            "../../../tests/data/snmp/snmp_v2c_inform_provstatus.bin"
        ));
        assert_eq!(
            n,
            Some(Notification::Status(Status {
                mac: Some(Mac([0x00, 0x15, 0xcf, 0x12, 0x34, 0x57])),
                correlation_id: Some(0x1234_abcd),
                state: Some(ProvState::PASS),
            }))
        );
    }

    #[test]
    fn other_notifications_are_not_read() {
        // The SET is no notification at all.
        assert_eq!(
            read(include_bytes!(
                "../../../tests/data/snmp/snmp_v2c_set_configfile.bin"
            )),
            None
        );
    }
}
