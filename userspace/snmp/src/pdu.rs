//! PDUs: the SNMPv2 PDU shape shared by every operation (RFC 3416 §3), the SNMPv1 Trap-PDU
//! (RFC 1157 §4.1.6), and the lookups a notification receiver needs (sysUpTime.0,
//! snmpTrapOID.0, any varbind by name).

use std::fmt;

use crate::ber::{Element, Reader, put_element, put_nested, put_signed, put_unsigned, tag};
use crate::error::DecodeError;
use crate::limits::MAX_VARBINDS;
use crate::oid::Oid;
use crate::value::{Value, VarBind, decode_varbinds, encode_varbinds};

/// sysUpTime.0: the first varbind of every SNMPv2 notification (RFC 3416 §4.2.6).
pub const SYS_UPTIME_0: &[u32] = &[1, 3, 6, 1, 2, 1, 1, 3, 0];
/// snmpTrapOID.0: the second varbind of every SNMPv2 notification; its value names it.
pub const SNMP_TRAP_OID_0: &[u32] = &[1, 3, 6, 1, 6, 3, 1, 1, 4, 1, 0];
/// snmpTraps: the prefix of the six generic notifications (coldStart is `.1`), RFC 3418.
pub const SNMP_TRAPS: &[u32] = &[1, 3, 6, 1, 6, 3, 1, 1, 5];

/// The PDU types that share the RFC 3416 `PDU` / `BulkPDU` layout.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PduType {
    GetRequest,
    GetNextRequest,
    Response,
    SetRequest,
    GetBulkRequest,
    InformRequest,
    SnmpV2Trap,
    Report,
}

impl PduType {
    /// The context-class tag (`[0] IMPLICIT` … `[8] IMPLICIT`).
    pub fn tag(self) -> u8 {
        match self {
            PduType::GetRequest => 0xa0,
            PduType::GetNextRequest => 0xa1,
            PduType::Response => 0xa2,
            PduType::SetRequest => 0xa3,
            PduType::GetBulkRequest => 0xa5,
            PduType::InformRequest => 0xa6,
            PduType::SnmpV2Trap => 0xa7,
            PduType::Report => 0xa8,
        }
    }

    /// The type for a tag; `None` for 0xa4 (the v1 Trap-PDU has its own layout) and others.
    pub fn from_tag(tag: u8) -> Option<PduType> {
        Some(match tag {
            0xa0 => PduType::GetRequest,
            0xa1 => PduType::GetNextRequest,
            0xa2 => PduType::Response,
            0xa3 => PduType::SetRequest,
            0xa5 => PduType::GetBulkRequest,
            0xa6 => PduType::InformRequest,
            0xa7 => PduType::SnmpV2Trap,
            0xa8 => PduType::Report,
            _ => return None,
        })
    }

    /// Whether the sender expects a Response (the "Confirmed Class" of RFC 3411 §2.8).
    pub fn is_confirmed(self) -> bool {
        !matches!(
            self,
            PduType::Response | PduType::SnmpV2Trap | PduType::Report
        )
    }
}

/// error-status of a Response (RFC 3416 §3). Kept as the number on the wire, so a status
/// from a newer or buggy agent still decodes; the named values are associated constants.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct ErrorStatus(pub i32);

impl ErrorStatus {
    pub const NO_ERROR: ErrorStatus = ErrorStatus(0);
    pub const TOO_BIG: ErrorStatus = ErrorStatus(1);
    pub const NO_SUCH_NAME: ErrorStatus = ErrorStatus(2);
    pub const BAD_VALUE: ErrorStatus = ErrorStatus(3);
    pub const READ_ONLY: ErrorStatus = ErrorStatus(4);
    pub const GEN_ERR: ErrorStatus = ErrorStatus(5);
    pub const NO_ACCESS: ErrorStatus = ErrorStatus(6);
    pub const WRONG_TYPE: ErrorStatus = ErrorStatus(7);
    pub const WRONG_LENGTH: ErrorStatus = ErrorStatus(8);
    pub const WRONG_ENCODING: ErrorStatus = ErrorStatus(9);
    pub const WRONG_VALUE: ErrorStatus = ErrorStatus(10);
    pub const NO_CREATION: ErrorStatus = ErrorStatus(11);
    /// What an MTA answers to the config-file SET when it is not waiting for one.
    pub const INCONSISTENT_VALUE: ErrorStatus = ErrorStatus(12);
    pub const RESOURCE_UNAVAILABLE: ErrorStatus = ErrorStatus(13);
    pub const COMMIT_FAILED: ErrorStatus = ErrorStatus(14);
    pub const UNDO_FAILED: ErrorStatus = ErrorStatus(15);
    pub const AUTHORIZATION_ERROR: ErrorStatus = ErrorStatus(16);
    pub const NOT_WRITABLE: ErrorStatus = ErrorStatus(17);
    pub const INCONSISTENT_NAME: ErrorStatus = ErrorStatus(18);

    /// The RFC 3416 name (`noError`, `inconsistentValue`, …), `None` outside 0..=18.
    pub fn name(self) -> Option<&'static str> {
        const NAMES: [&str; 19] = [
            "noError",
            "tooBig",
            "noSuchName",
            "badValue",
            "readOnly",
            "genErr",
            "noAccess",
            "wrongType",
            "wrongLength",
            "wrongEncoding",
            "wrongValue",
            "noCreation",
            "inconsistentValue",
            "resourceUnavailable",
            "commitFailed",
            "undoFailed",
            "authorizationError",
            "notWritable",
            "inconsistentName",
        ];
        usize::try_from(self.0)
            .ok()
            .and_then(|i| NAMES.get(i))
            .copied()
    }

    pub fn is_error(self) -> bool {
        self != ErrorStatus::NO_ERROR
    }
}

impl fmt::Display for ErrorStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.name() {
            Some(name) => f.write_str(name),
            None => write!(f, "error-status {}", self.0),
        }
    }
}

impl fmt::Debug for ErrorStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ErrorStatus({self})")
    }
}

/// One SNMPv2 PDU. For GetBulkRequest the two middle fields are non-repeaters and
/// max-repetitions ([`Pdu::non_repeaters`], [`Pdu::max_repetitions`]): same wire layout.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Pdu {
    pub kind: PduType,
    pub request_id: i32,
    pub error_status: ErrorStatus,
    pub error_index: i32,
    pub varbinds: Vec<VarBind>,
}

impl Pdu {
    /// A PDU of `kind` with no error.
    pub fn new(kind: PduType, request_id: i32, varbinds: Vec<VarBind>) -> Pdu {
        Pdu {
            kind,
            request_id,
            error_status: ErrorStatus::NO_ERROR,
            error_index: 0,
            varbinds,
        }
    }

    /// A GetRequest for `oids` (NULL values).
    pub fn get_request(request_id: i32, oids: impl IntoIterator<Item = Oid>) -> Pdu {
        Pdu::new(PduType::GetRequest, request_id, nulls(oids))
    }

    /// A GetNextRequest for `oids` (NULL values).
    pub fn get_next_request(request_id: i32, oids: impl IntoIterator<Item = Oid>) -> Pdu {
        Pdu::new(PduType::GetNextRequest, request_id, nulls(oids))
    }

    /// A GetBulkRequest: the first `non_repeaters` OIDs are fetched once, the rest up to
    /// `max_repetitions` times each.
    pub fn get_bulk_request(
        request_id: i32,
        non_repeaters: i32,
        max_repetitions: i32,
        oids: impl IntoIterator<Item = Oid>,
    ) -> Pdu {
        Pdu {
            kind: PduType::GetBulkRequest,
            request_id,
            error_status: ErrorStatus(non_repeaters),
            error_index: max_repetitions,
            varbinds: nulls(oids),
        }
    }

    /// A SetRequest writing `varbinds`, in order (an MTA applies them as one transaction).
    pub fn set_request(request_id: i32, varbinds: impl IntoIterator<Item = VarBind>) -> Pdu {
        Pdu::new(
            PduType::SetRequest,
            request_id,
            varbinds.into_iter().collect(),
        )
    }

    /// The Response that acknowledges this PDU as received: same request-id, same varbinds,
    /// noError. This is what an INFORM needs (RFC 3416 §4.2.7); an agent answering a GET
    /// builds its own.
    pub fn response(&self) -> Pdu {
        Pdu::new(PduType::Response, self.request_id, self.varbinds.clone())
    }

    /// GetBulkRequest's non-repeaters (the error-status field on the wire).
    pub fn non_repeaters(&self) -> i32 {
        self.error_status.0
    }

    /// GetBulkRequest's max-repetitions (the error-index field on the wire).
    pub fn max_repetitions(&self) -> i32 {
        self.error_index
    }

    /// The value bound to `oid`, the first if it occurs more than once. Notifications are
    /// looked up by name, not position: agents add and reorder objects.
    pub fn get(&self, oid: impl AsRef<[u32]>) -> Option<&Value> {
        find(&self.varbinds, oid.as_ref())
    }

    /// sysUpTime.0 of a notification, when present as TimeTicks.
    pub fn uptime(&self) -> Option<u32> {
        match self.get(SYS_UPTIME_0)? {
            Value::TimeTicks(t) => Some(*t),
            _ => None,
        }
    }

    /// snmpTrapOID.0 of a notification: which notification this is (e.g. the PacketCable
    /// enrollment `1.3.6.1.2.1.140.0.1`).
    pub fn notification_oid(&self) -> Option<&Oid> {
        self.get(SNMP_TRAP_OID_0)?.as_oid()
    }

    /// The varbind the error-index points at (1-based), for error reports.
    pub fn error_varbind(&self) -> Option<&VarBind> {
        let i = usize::try_from(self.error_index).ok()?.checked_sub(1)?;
        self.varbinds.get(i)
    }

    pub(crate) fn decode(el: &Element<'_>) -> Result<Pdu, DecodeError> {
        let kind = PduType::from_tag(el.tag).ok_or(DecodeError::UnknownPduType {
            offset: el.offset,
            tag: el.tag,
        })?;
        let bulk = kind == PduType::GetBulkRequest;
        let mut r = el.reader();
        let request_id = r.i32("request-id")?;
        let error_status = r.i32(if bulk {
            "non-repeaters"
        } else {
            "error-status"
        })?;
        let error_index = r.i32(if bulk {
            "max-repetitions"
        } else {
            "error-index"
        })?;
        let varbinds =
            decode_varbinds(&r.expect(tag::SEQUENCE, "variable-bindings")?, MAX_VARBINDS)?;
        r.finish("PDU")?;
        Ok(Pdu {
            kind,
            request_id,
            error_status: ErrorStatus(error_status),
            error_index,
            varbinds,
        })
    }

    pub(crate) fn encode(&self, out: &mut Vec<u8>) {
        put_nested(out, self.kind.tag(), |o| {
            put_signed(o, tag::INTEGER, self.request_id.into());
            put_signed(o, tag::INTEGER, self.error_status.0.into());
            put_signed(o, tag::INTEGER, self.error_index.into());
            encode_varbinds(o, &self.varbinds);
        });
    }
}

fn nulls(oids: impl IntoIterator<Item = Oid>) -> Vec<VarBind> {
    oids.into_iter().map(VarBind::null).collect()
}

fn find<'a>(varbinds: &'a [VarBind], oid: &[u32]) -> Option<&'a Value> {
    varbinds
        .iter()
        .find(|vb| vb.oid.as_slice() == oid)
        .map(|vb| &vb.value)
}

/// An SNMPv1 Trap-PDU (tag 0xa4). Its layout differs from every other PDU: no request-id
/// (nothing answers a v1 trap), the sender's address and the trap identity in fixed fields.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct TrapV1 {
    /// sysObjectID of the sender, or the enterprise of an enterprise-specific trap.
    pub enterprise: Oid,
    pub agent_addr: [u8; 4],
    /// 0..=6, see the associated constants.
    pub generic_trap: i32,
    pub specific_trap: i32,
    /// sysUpTime of the sender, in hundredths of a second.
    pub time_stamp: u32,
    pub varbinds: Vec<VarBind>,
}

impl TrapV1 {
    pub const COLD_START: i32 = 0;
    pub const WARM_START: i32 = 1;
    pub const LINK_DOWN: i32 = 2;
    pub const LINK_UP: i32 = 3;
    pub const AUTHENTICATION_FAILURE: i32 = 4;
    pub const EGP_NEIGHBOR_LOSS: i32 = 5;
    pub const ENTERPRISE_SPECIFIC: i32 = 6;

    /// The value bound to `oid`, the first if it occurs more than once.
    pub fn get(&self, oid: impl AsRef<[u32]>) -> Option<&Value> {
        find(&self.varbinds, oid.as_ref())
    }

    /// The SNMPv2 notification OID this trap maps to (RFC 3584 §3.1): `snmpTraps.(g+1)` for
    /// the generic traps, `enterprise.0.specific` for enterprise-specific ones; so v1 and v2c
    /// notifications can be counted under one name.
    pub fn notification_oid(&self) -> Option<Oid> {
        match self.generic_trap {
            g @ 0..=5 => {
                let arc = u32::try_from(g + 1).ok()?;
                Oid::from_slice(SNMP_TRAPS).ok()?.join(&[arc]).ok()
            }
            TrapV1::ENTERPRISE_SPECIFIC => {
                let specific = u32::try_from(self.specific_trap).ok()?;
                self.enterprise.join(&[0, specific]).ok()
            }
            _ => None,
        }
    }

    pub(crate) fn decode(el: &Element<'_>) -> Result<TrapV1, DecodeError> {
        let mut r: Reader<'_> = el.reader();
        let enterprise = r.expect(tag::OID, "enterprise")?;
        let enterprise = Oid::decode(enterprise.content(), enterprise.content_offset())?;
        let addr = r.expect(tag::IP_ADDRESS, "agent-addr")?;
        let agent_addr =
            <[u8; 4]>::try_from(addr.content()).map_err(|_| DecodeError::BadValueLength {
                what: "agent-addr",
                offset: addr.offset,
                len: addr.content().len(),
                expected: 4,
            })?;
        let generic_trap = r.i32("generic-trap")?;
        let specific_trap = r.i32("specific-trap")?;
        let time_stamp = r
            .expect(tag::TIMETICKS, "time-stamp")?
            .unsigned32("time-stamp")?;
        let varbinds =
            decode_varbinds(&r.expect(tag::SEQUENCE, "variable-bindings")?, MAX_VARBINDS)?;
        r.finish("Trap-PDU")?;
        Ok(TrapV1 {
            enterprise,
            agent_addr,
            generic_trap,
            specific_trap,
            time_stamp,
            varbinds,
        })
    }

    pub(crate) fn encode(&self, out: &mut Vec<u8>) {
        put_nested(out, tag::TRAP_V1, |o| {
            self.enterprise.encode(o);
            put_element(o, tag::IP_ADDRESS, &self.agent_addr);
            put_signed(o, tag::INTEGER, self.generic_trap.into());
            put_signed(o, tag::INTEGER, self.specific_trap.into());
            put_unsigned(o, tag::TIMETICKS, self.time_stamp.into());
            encode_varbinds(o, &self.varbinds);
        });
    }
}

/// What a community-based message carries: an SNMPv2-shaped PDU or a v1 Trap-PDU.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Pdus {
    Pdu(Pdu),
    TrapV1(TrapV1),
}

impl Pdus {
    pub fn varbinds(&self) -> &[VarBind] {
        match self {
            Pdus::Pdu(p) => &p.varbinds,
            Pdus::TrapV1(t) => &t.varbinds,
        }
    }

    pub(crate) fn decode(el: &Element<'_>) -> Result<Pdus, DecodeError> {
        if el.tag == tag::TRAP_V1 {
            TrapV1::decode(el).map(Pdus::TrapV1)
        } else {
            Pdu::decode(el).map(Pdus::Pdu)
        }
    }

    pub(crate) fn encode(&self, out: &mut Vec<u8>) {
        match self {
            Pdus::Pdu(p) => p.encode(out),
            Pdus::TrapV1(t) => t.encode(out),
        }
    }
}

impl From<Pdu> for Pdus {
    fn from(pdu: Pdu) -> Pdus {
        Pdus::Pdu(pdu)
    }
}

impl From<TrapV1> for Pdus {
    fn from(trap: TrapV1) -> Pdus {
        Pdus::TrapV1(trap)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn oid(arcs: &[u32]) -> Oid {
        Oid::from_slice(arcs).unwrap()
    }

    #[test]
    fn tags_map_both_ways() {
        for t in 0xa0..=0xa8u8 {
            match PduType::from_tag(t) {
                Some(kind) => assert_eq!(kind.tag(), t),
                None => assert_eq!(t, tag::TRAP_V1),
            }
        }
        assert_eq!(PduType::from_tag(0xa9), None);
        assert!(PduType::InformRequest.is_confirmed());
        assert!(!PduType::SnmpV2Trap.is_confirmed());
    }

    #[test]
    fn error_status_names() {
        assert_eq!(ErrorStatus::NO_ERROR.to_string(), "noError");
        assert_eq!(
            ErrorStatus::INCONSISTENT_VALUE.to_string(),
            "inconsistentValue"
        );
        assert_eq!(ErrorStatus(18).name(), Some("inconsistentName"));
        assert_eq!(ErrorStatus(19).to_string(), "error-status 19");
        assert_eq!(ErrorStatus(-1).name(), None);
        assert_eq!(format!("{:?}", ErrorStatus(4)), "ErrorStatus(readOnly)");
    }

    #[test]
    fn lookups_by_name() {
        let pdu = Pdu::new(
            PduType::SnmpV2Trap,
            7,
            vec![
                VarBind::new(oid(SYS_UPTIME_0), Value::TimeTicks(4200)),
                VarBind::new(
                    oid(SNMP_TRAP_OID_0),
                    Value::ObjectId(oid(&[1, 3, 6, 1, 6, 3, 1, 1, 5, 1])),
                ),
            ],
        );
        assert_eq!(pdu.uptime(), Some(4200));
        assert_eq!(
            pdu.notification_oid().unwrap().to_string(),
            "1.3.6.1.6.3.1.1.5.1"
        );
        assert_eq!(pdu.get([1, 3, 6, 1]), None);
        assert_eq!(pdu.get(oid(SYS_UPTIME_0)), Some(&Value::TimeTicks(4200)));
        let mut wrong_type = pdu.clone();
        wrong_type.varbinds[0].value = Value::Integer(4200);
        assert_eq!(wrong_type.uptime(), None);
    }

    #[test]
    fn bulk_fields_and_error_index() {
        let pdu = Pdu::get_bulk_request(9, 1, 25, [oid(&[1, 3, 6, 1, 2, 1, 2, 2])]);
        assert_eq!((pdu.non_repeaters(), pdu.max_repetitions()), (1, 25));
        let mut resp = Pdu::set_request(3, [VarBind::null(oid(&[1, 3, 6, 1]))]).response();
        assert_eq!(resp.error_varbind(), None);
        resp.error_status = ErrorStatus::WRONG_TYPE;
        resp.error_index = 1;
        assert_eq!(resp.error_varbind().unwrap().oid, oid(&[1, 3, 6, 1]));
        resp.error_index = 2;
        assert_eq!(resp.error_varbind(), None);
    }

    #[test]
    fn v1_traps_map_to_v2_names() {
        let mut trap = TrapV1 {
            enterprise: oid(&[1, 3, 6, 1, 4, 1, 4491, 2, 2, 1]),
            agent_addr: [10, 1, 0, 7],
            generic_trap: TrapV1::LINK_UP,
            specific_trap: 0,
            time_stamp: 100,
            varbinds: Vec::new(),
        };
        assert_eq!(
            trap.notification_oid().unwrap().to_string(),
            "1.3.6.1.6.3.1.1.5.4"
        );
        trap.generic_trap = TrapV1::ENTERPRISE_SPECIFIC;
        trap.specific_trap = 2;
        assert_eq!(
            trap.notification_oid().unwrap().to_string(),
            "1.3.6.1.4.1.4491.2.2.1.0.2"
        );
        trap.specific_trap = -1;
        assert_eq!(trap.notification_oid(), None);
        trap.generic_trap = 7;
        assert_eq!(trap.notification_oid(), None);
    }
}
