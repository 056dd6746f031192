//! The SNMPv2c messages a simulated PacketCable MTA exchanges with its provisioning server
//! (PKTC-IETF-MTA-MIB, `1.3.6.1.2.1.140`): the enrollment and status INFORMs it sends, the
//! Responses it expects to them, the config-file SET it receives and the Response it answers
//! with. Built and read with `provd-snmp`; layouts as in `tests/data/snmp/`.

use std::net::{Ipv4Addr, SocketAddrV4};

use provd_snmp::{ErrorStatus, Message, Oid, Pdu, PduType, Pdus, Value, VarBind, Version};

pub const SYS_UPTIME_0: &[u32] = &[1, 3, 6, 1, 2, 1, 1, 3, 0];
pub const SNMP_TRAP_OID_0: &[u32] = &[1, 3, 6, 1, 6, 3, 1, 1, 4, 1, 0];
pub const SYS_DESCR_0: &[u32] = &[1, 3, 6, 1, 2, 1, 1, 1, 0];
/// pktcMtaDevProvisioningEnrollment.
pub const ENROLLMENT_TRAP: &[u32] = &[1, 3, 6, 1, 2, 1, 140, 0, 1];
/// pktcMtaDevProvisioningStatus.
pub const STATUS_TRAP: &[u32] = &[1, 3, 6, 1, 2, 1, 140, 0, 2];
pub const SW_CURRENT_VERS_0: &[u32] = &[1, 3, 6, 1, 2, 1, 140, 1, 1, 3, 0];
pub const TYPE_IDENTIFIER_0: &[u32] = &[1, 3, 6, 1, 2, 1, 140, 1, 1, 7, 0];
pub const PROVISIONING_STATE_0: &[u32] = &[1, 3, 6, 1, 2, 1, 140, 1, 1, 8, 0];
/// ifPhysAddress.1: the MTA's MAC in the IETF MIB.
pub const IF_PHYS_ADDRESS_1: &[u32] = &[1, 3, 6, 1, 2, 1, 2, 2, 1, 6, 1];
pub const CORRELATION_ID_0: &[u32] = &[1, 3, 6, 1, 2, 1, 140, 1, 3, 3, 0];
pub const CONFIG_FILE_0: &[u32] = &[1, 3, 6, 1, 2, 1, 140, 1, 2, 9, 0];
pub const PROV_CONFIG_HASH_0: &[u32] = &[1, 3, 6, 1, 2, 1, 140, 1, 2, 11, 0];

/// pktcMtaDevProvisioningState pass(1).
pub const STATE_PASS: i64 = 1;

/// What the MTA says about itself in its enrollment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    pub sys_descr: String,
    pub sw_version: String,
    /// The option 60 string.
    pub type_identifier: String,
}

impl Default for Identity {
    fn default() -> Self {
        Identity {
            sys_descr: "<<HW_REV: 1.0; VENDOR: provd-loadgen; BOOTR: 1.0; SW_REV: 2.1.0; \
                        MODEL: SIM-EMTA>>"
                .into(),
            sw_version: "2.1.0".into(),
            type_identifier: "pktc1.5:051a0101010201020301000401010901000b02060910010912020007"
                .into(),
        }
    }
}

fn oid(arcs: &[u32]) -> Oid {
    Oid::from_slice(arcs).expect("the constants above are valid OIDs")
}

fn notification(trap: &[u32], uptime: u32, rest: Vec<VarBind>) -> Vec<VarBind> {
    let mut v = Vec::with_capacity(2 + rest.len());
    v.push(VarBind::new(oid(SYS_UPTIME_0), Value::TimeTicks(uptime)));
    v.push(VarBind::new(
        oid(SNMP_TRAP_OID_0),
        Value::ObjectId(oid(trap)),
    ));
    v.extend(rest);
    v
}

fn inform(community: &[u8], request_id: i32, varbinds: Vec<VarBind>) -> Vec<u8> {
    let msg = Message::from_pdu(
        Version::V2c,
        community.to_vec(),
        Pdu::new(PduType::InformRequest, request_id, varbinds),
    );
    msg.to_bytes()
        .expect("an INFORM of a handful of short varbinds encodes")
}

/// pktcMtaDevProvisioningEnrollment (MTA-15) as an SNMPv2c INFORM.
pub fn enrollment(
    community: &[u8],
    request_id: i32,
    uptime: u32,
    id: &Identity,
    mac: [u8; 6],
    correlation_id: u32,
) -> Vec<u8> {
    let rest = vec![
        VarBind::new(
            oid(SYS_DESCR_0),
            Value::OctetString(id.sys_descr.as_bytes().to_vec()),
        ),
        VarBind::new(
            oid(SW_CURRENT_VERS_0),
            Value::OctetString(id.sw_version.as_bytes().to_vec()),
        ),
        VarBind::new(
            oid(TYPE_IDENTIFIER_0),
            Value::OctetString(id.type_identifier.as_bytes().to_vec()),
        ),
        VarBind::new(oid(IF_PHYS_ADDRESS_1), Value::OctetString(mac.to_vec())),
        VarBind::new(oid(CORRELATION_ID_0), Value::Gauge32(correlation_id)),
    ];
    inform(
        community,
        request_id,
        notification(ENROLLMENT_TRAP, uptime, rest),
    )
}

/// pktcMtaDevProvisioningStatus (MTA-25) as an SNMPv2c INFORM.
pub fn status(
    community: &[u8],
    request_id: i32,
    uptime: u32,
    mac: [u8; 6],
    correlation_id: u32,
    state: i64,
) -> Vec<u8> {
    let rest = vec![
        VarBind::new(oid(IF_PHYS_ADDRESS_1), Value::OctetString(mac.to_vec())),
        VarBind::new(oid(CORRELATION_ID_0), Value::Gauge32(correlation_id)),
        VarBind::new(oid(PROVISIONING_STATE_0), Value::Integer(state)),
    ];
    inform(
        community,
        request_id,
        notification(STATUS_TRAP, uptime, rest),
    )
}

/// What a Response says, as far as an INFORM's sender cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Answer {
    pub request_id: i32,
    pub error_status: ErrorStatus,
}

/// Reads a Response-PDU (to one of our INFORMs).
pub fn read_response(bytes: &[u8]) -> Result<Answer, String> {
    let msg = Message::decode(bytes).map_err(|e| format!("undecodable answer: {e}"))?;
    let pdu = msg.pdu().ok_or("answer without a readable PDU")?;
    if pdu.kind != PduType::Response {
        return Err(format!("answer is a {:?}, not a Response", pdu.kind));
    }
    Ok(Answer {
        request_id: pdu.request_id,
        error_status: pdu.error_status,
    })
}

/// A SetRequest for the MTA's agent, with what the provisioning flow needs from it.
#[derive(Debug, Clone)]
pub struct SetRequest {
    pub msg: Message,
    /// pktcMtaDevConfigFile.0, when present as an OCTET STRING.
    pub url: Option<Vec<u8>>,
    /// pktcMtaDevProvConfigHash.0, when present as an OCTET STRING.
    pub hash: Option<Vec<u8>>,
}

/// Reads a datagram that arrived on the agent port: an SNMPv2c SetRequest with `community`.
pub fn read_set(bytes: &[u8], community: &[u8]) -> Result<SetRequest, &'static str> {
    let msg = Message::decode(bytes).map_err(|_| "undecodable")?;
    let (version, comm, pdu) = match &msg {
        Message::Community {
            version,
            community,
            pdu: Pdus::Pdu(pdu),
        } => (*version, community, pdu),
        _ => return Err("not an SNMPv1/v2c PDU"),
    };
    if version != Version::V2c {
        return Err("not SNMPv2c");
    }
    if pdu.kind != PduType::SetRequest {
        return Err("not a SetRequest");
    }
    if comm.as_slice() != community {
        return Err("wrong community");
    }
    let bytes_of = |arcs: &[u32]| pdu.get(arcs).and_then(Value::as_bytes).map(<[u8]>::to_vec);
    let (url, hash) = (bytes_of(CONFIG_FILE_0), bytes_of(PROV_CONFIG_HASH_0));
    Ok(SetRequest { msg, url, hash })
}

/// The agent's answer to a SET it took: Response, same request-id, the varbinds echoed,
/// noError.
pub fn set_response(set: &SetRequest) -> Vec<u8> {
    let Message::Community {
        version,
        community,
        pdu: Pdus::Pdu(pdu),
    } = &set.msg
    else {
        unreachable!("read_set only accepts community PDUs");
    };
    Message::from_pdu(*version, community.clone(), pdu.response())
        .to_bytes()
        .expect("a decoded SET re-encodes")
}

/// The MAC a config file URL names: the file name's stem as 12 hex digits (`mta/<mac12>.bin`,
/// any directory, any extension).
pub fn mac_in_url(url: &[u8]) -> Option<[u8; 6]> {
    let name = url.rsplit(|&b| b == b'/').next()?;
    let stem = name.split(|&b| b == b'.').next()?;
    if stem.len() != 12 {
        return None;
    }
    let mut mac = [0u8; 6];
    for (o, pair) in mac.iter_mut().zip(stem.chunks_exact(2)) {
        let s = std::str::from_utf8(pair).ok()?;
        *o = u8::from_str_radix(s, 16).ok()?;
    }
    Some(mac)
}

/// `tftp://HOST[:PORT]/PATH` (RFC 3617) with an IPv4 HOST: the server's address (port 69 by
/// default) and the file name to ask for (PATH, without the leading slash).
pub fn tftp_url(url: &[u8]) -> Option<(SocketAddrV4, String)> {
    let s = std::str::from_utf8(url).ok()?;
    let rest = s.strip_prefix("tftp://")?;
    let (authority, path) = rest.split_once('/')?;
    let (host, port) = match authority.split_once(':') {
        Some((h, p)) => (h, p.parse().ok()?),
        None => (authority, 69),
    };
    let ip: Ipv4Addr = host.parse().ok()?;
    if path.is_empty() {
        return None;
    }
    Some((SocketAddrV4::new(ip, port), path.to_owned()))
}

/// The 12 lower-case hex digits of a MAC.
pub fn mac12(mac: [u8; 6]) -> String {
    mac.iter().map(|b| format!("{b:02x}")).collect()
}

/// `aa:bb:cc:dd:ee:ff`.
pub fn mac_colons(mac: [u8; 6]) -> String {
    let [a, b, c, d, e, f] = mac;
    format!("{a:02x}:{b:02x}:{c:02x}:{d:02x}:{e:02x}:{f:02x}")
}

/// Parses `aa:bb:cc:dd:ee:ff`, `aa-bb-...` or 12 hex digits.
pub fn parse_mac(s: &str) -> Option<[u8; 6]> {
    let digits: String = s.chars().filter(|c| !matches!(c, ':' | '-')).collect();
    if digits.len() != 12 || (s.len() != 12 && s.len() != 17) {
        return None;
    }
    mac_in_url(digits.as_bytes())
}

/// MAC number `k` from `base`: `base + k` as a 48-bit number.
pub fn nth_mac(base: [u8; 6], k: u64) -> [u8; 6] {
    let mut b = [0u8; 8];
    b[2..].copy_from_slice(&base);
    let v = u64::from_be_bytes(b).wrapping_add(k) & 0xffff_ffff_ffff;
    let mut out = [0u8; 6];
    out.copy_from_slice(&v.to_be_bytes()[2..]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const VECTOR_MAC: [u8; 6] = [0x00, 0x15, 0xcf, 0x12, 0x34, 0x57];

    fn vector_identity() -> Identity {
        Identity {
            sys_descr: "<<HW_REV: 1.0; VENDOR: ExampleCo; BOOTR: 1.0; SW_REV: 2.1.0; \
                        MODEL: EMTA1>>"
                .into(),
            sw_version: "2.1.0".into(),
            type_identifier: "pktc1.5:051a0101010201020301000401010901000b02060910010912020007"
                .into(),
        }
    }

    #[test]
    fn informs_match_the_captured_vectors_byte_for_byte() {
        let want = include_bytes!("../../../../tests/data/snmp/snmp_v2c_inform_enrollment.bin");
        let got = enrollment(
            b"public",
            1001,
            4200,
            &vector_identity(),
            VECTOR_MAC,
            0x1234_abcd,
        );
        assert_eq!(got, want);
        let want = include_bytes!("../../../../tests/data/snmp/snmp_v2c_inform_provstatus.bin");
        let got = status(b"public", 1002, 9100, VECTOR_MAC, 0x1234_abcd, STATE_PASS);
        assert_eq!(got, want);
    }

    #[test]
    fn the_captured_set_is_read_and_answered() {
        let set = include_bytes!("../../../../tests/data/snmp/snmp_v2c_set_configfile.bin");
        assert_eq!(read_set(set, b"public").unwrap_err(), "wrong community");
        let s = read_set(set, b"private").unwrap();
        assert_eq!(s.msg.request_id(), Some(2002));
        let url = s.url.clone().unwrap();
        assert_eq!(url, b"tftp://10.0.0.10/mta/0015cf123457.bin");
        assert_eq!(s.hash.as_ref().unwrap().len(), 20);
        assert_eq!(mac_in_url(&url), Some(VECTOR_MAC));
        let (server, name) = tftp_url(&url).unwrap();
        assert_eq!(server, "10.0.0.10:69".parse().unwrap());
        assert_eq!(name, "mta/0015cf123457.bin");

        // The answer: the SET's bytes with the PDU tag a3 -> a2.
        let resp = set_response(&s);
        let mut want = set.to_vec();
        let at = want.iter().position(|&b| b == 0xa3).unwrap();
        want[at] = 0xa2;
        assert_eq!(resp, want);
        let a = read_response(&resp).unwrap();
        assert_eq!(a.request_id, 2002);
        assert!(!a.error_status.is_error());
        // An INFORM is not an answer, nor a SET.
        let inform = include_bytes!("../../../../tests/data/snmp/snmp_v2c_inform_enrollment.bin");
        assert!(read_response(inform).is_err());
        assert_eq!(read_set(inform, b"public").unwrap_err(), "not a SetRequest");
        assert_eq!(read_set(b"junk", b"public").unwrap_err(), "undecodable");
    }

    #[test]
    fn urls_and_macs() {
        assert_eq!(
            mac_in_url(b"tftp://1.2.3.4/x/y/0015CF123457.cfg"),
            Some(VECTOR_MAC)
        );
        assert_eq!(mac_in_url(b"tftp://1.2.3.4/mta/0015cf12345.bin"), None);
        assert_eq!(mac_in_url(b"tftp://1.2.3.4/mta/0015cf12345z.bin"), None);
        assert_eq!(
            tftp_url(b"tftp://127.0.0.1:6969/a.bin"),
            Some(("127.0.0.1:6969".parse().unwrap(), "a.bin".into()))
        );
        assert_eq!(tftp_url(b"http://1.2.3.4/a.bin"), None);
        assert_eq!(tftp_url(b"tftp://host.example/a.bin"), None);
        assert_eq!(tftp_url(b"tftp://1.2.3.4/"), None);
        assert_eq!(parse_mac("00:15:cf:12:34:57"), Some(VECTOR_MAC));
        assert_eq!(parse_mac("00-15-CF-12-34-57"), Some(VECTOR_MAC));
        assert_eq!(parse_mac("0015cf123457"), Some(VECTOR_MAC));
        assert_eq!(parse_mac("0015cf12345"), None);
        assert_eq!(mac12(VECTOR_MAC), "0015cf123457");
        assert_eq!(mac_colons(VECTOR_MAC), "00:15:cf:12:34:57");
        let base = [0x02, 0x4d, 0, 0, 0xff, 0xff];
        assert_eq!(nth_mac(base, 0), base);
        assert_eq!(nth_mac(base, 1), [0x02, 0x4d, 0, 1, 0, 0]);
        assert_eq!(nth_mac([0xff; 6], 1), [0; 6]);
    }
}
