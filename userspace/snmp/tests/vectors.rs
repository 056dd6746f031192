//! The codec against the spec's byte vectors (../shared/spec/snmp-mta.md §5, copied into
//! tests/data/snmp), plus hand-built v1 Trap-PDU and v3 messages whose bytes are worked out in
//! the comments.

mod common;

use common::{VECTORS, data, hex};
use provd_snmp::*;

fn oid(s: &str) -> Oid {
    s.parse().unwrap()
}

fn encode(msg: &Message) -> Vec<u8> {
    let mut out = Vec::new();
    msg.encode(&mut out).unwrap();
    out
}

#[test]
fn every_vector_round_trips_byte_for_byte() {
    for name in VECTORS {
        let bytes = data(name);
        let msg = Message::decode(&bytes).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(encode(&msg), bytes, "{name}");
    }
}

#[test]
fn enrollment_inform() {
    let msg = Message::decode(&data("snmp_v2c_inform_enrollment.bin")).unwrap();
    assert_eq!(msg.version(), Version::V2c);
    assert_eq!(msg.community(), Some(&b"public"[..]));
    let pdu = msg.pdu().unwrap();
    assert_eq!(pdu.kind, PduType::InformRequest);
    assert_eq!(pdu.request_id, 1001);
    assert_eq!(msg.request_id(), Some(1001));
    assert_eq!(pdu.error_status, ErrorStatus::NO_ERROR);
    assert_eq!(pdu.varbinds.len(), 7);
    assert_eq!(pdu.uptime(), Some(4200));
    assert_eq!(pdu.notification_oid(), Some(&oid("1.3.6.1.2.1.140.0.1")));
    assert_eq!(
        pdu.get(oid("1.3.6.1.2.1.1.1.0")).and_then(Value::as_bytes),
        Some(&b"<<HW_REV: 1.0; VENDOR: ExampleCo; BOOTR: 1.0; SW_REV: 2.1.0; MODEL: EMTA1>>"[..])
    );
    assert_eq!(
        pdu.get(oid("1.3.6.1.2.1.140.1.1.3.0")),
        Some(&Value::OctetString(b"2.1.0".to_vec()))
    );
    assert_eq!(
        pdu.get(oid("1.3.6.1.2.1.140.1.1.7.0"))
            .and_then(Value::as_bytes),
        Some(&b"pktc1.5:051a0101010201020301000401010901000b02060910010912020007"[..])
    );
    assert_eq!(
        pdu.get(oid("1.3.6.1.2.1.2.2.1.6.1")),
        Some(&Value::OctetString(vec![
            0x00, 0x15, 0xcf, 0x12, 0x34, 0x57
        ]))
    );
    // pktcMtaDevCorrelationId is Unsigned32: the Gauge32 tag.
    assert_eq!(
        pdu.get(oid("1.3.6.1.2.1.140.1.3.3.0")),
        Some(&Value::Gauge32(0x1234_abcd))
    );
}

#[test]
fn the_response_to_the_enrollment_inform_is_the_spec_vector() {
    let inform = Message::decode(&data("snmp_v2c_inform_enrollment.bin")).unwrap();
    let response = response_to(&inform).unwrap();
    assert_eq!(encode(&response), data("snmp_v2c_inform_response.bin"));
    let pdu = response.pdu().unwrap();
    assert_eq!(pdu.kind, PduType::Response);
    assert_eq!(pdu.request_id, 1001);
    assert_eq!(pdu.varbinds, inform.pdu().unwrap().varbinds);
    // A response is not an inform: nothing to answer.
    assert_eq!(response_to(&response), None);
}

#[test]
fn the_config_file_set_is_built_exactly() {
    // §5.2: pktcMtaDevConfigFile.0 (IETF 140.1.2.9) and pktcMtaDevProvConfigHash.0 (140.1.2.11).
    let hash = hex("732b97aa83d51334007682 55be2c98bb6a97b6c5");
    let set = Message::set(
        Version::V2c,
        "private",
        2002,
        [
            VarBind::new(
                oid("1.3.6.1.2.1.140.1.2.9.0"),
                Value::OctetString(b"tftp://10.0.0.10/mta/0015cf123457.bin".to_vec()),
            ),
            VarBind::new(oid("1.3.6.1.2.1.140.1.2.11.0"), Value::OctetString(hash)),
        ],
    );
    let bytes = data("snmp_v2c_set_configfile.bin");
    assert_eq!(encode(&set), bytes);
    assert_eq!(Message::decode(&bytes).unwrap(), set);
    assert_eq!(set.pdu_type(), Some(PduType::SetRequest));
}

#[test]
fn status_inform() {
    let msg = Message::decode(&data("snmp_v2c_inform_provstatus.bin")).unwrap();
    let pdu = msg.pdu().unwrap();
    assert_eq!(pdu.request_id, 1002);
    assert_eq!(pdu.uptime(), Some(9100));
    assert_eq!(pdu.notification_oid(), Some(&oid("1.3.6.1.2.1.140.0.2")));
    // pktcMtaDevProvisioningState = pass(1).
    assert_eq!(
        pdu.get(oid("1.3.6.1.2.1.140.1.1.8.0")),
        Some(&Value::Integer(1))
    );
    let ack = encode(&response_to(&msg).unwrap());
    let mut expected = data("snmp_v2c_inform_provstatus.bin");
    // Same bytes but the PDU tag: a6 (InformRequest) becomes a2 (Response).
    let at = expected.iter().position(|&b| b == 0xa6).unwrap();
    expected[at] = 0xa2;
    assert_eq!(ack, expected);
}

#[test]
fn get_and_bulk_builders() {
    // GET sysUpTime.0, v2c "public", request-id 7:
    // 30 26 | 02 01 01 | 04 06 "public" | a0 19 | 02 01 07 | 02 01 00 | 02 01 00 |
    // 30 0e 30 0c 06 08 2b 06 01 02 01 01 03 00 05 00
    let get = Message::get(Version::V2c, "public", 7, [oid("1.3.6.1.2.1.1.3.0")]);
    let expected = hex("3026 020101 0406 7075626c6963 a019 020107 020100 020100
         300e 300c 0608 2b06010201010300 0500");
    assert_eq!(encode(&get), expected);
    // GETBULK: non-repeaters and max-repetitions sit where error-status and -index do.
    let bulk = Message::get_bulk(
        Version::V2c,
        "public",
        8,
        0,
        10,
        [oid("1.3.6.1.2.1.2.2.1.6")],
    );
    let bytes = encode(&bulk);
    assert_eq!(bytes[13], 0xa5);
    assert_eq!(&bytes[15..24], hex("020108 020100 02010a"));
    let back = Message::decode(&bytes).unwrap();
    assert_eq!(back.pdu().unwrap().max_repetitions(), 10);
    let next = Message::get_next(Version::V1, "public", 9, [oid("1.3.6.1.2.1.1")]);
    let bytes = encode(&next);
    assert_eq!(&bytes[..3], hex("302402"));
    assert_eq!(bytes[4], 0x00, "SNMPv1 is version 0");
    assert_eq!(Message::decode(&bytes).unwrap(), next);
}

/// snmptrap -v 1 -c public <host> 1.3.6.1.4.1.4491.2.2.1 10.1.0.7 6 2 100 sysName.0 s mta
const TRAP_V1: &str = "
    303b 020100 0406 7075626c6963
    a42e
      060a 2b06010401a30b020201    # enterprise 1.3.6.1.4.1.4491.2.2.1 (4491 = a3 0b)
      4004 0a010007                # agent-addr 10.1.0.7
      020106                       # generic-trap enterpriseSpecific(6)
      020102                       # specific-trap 2
      430164                       # time-stamp 100
      3011 300f 0608 2b06010201010500 0403 6d7461
";

#[test]
fn v1_trap() {
    let bytes = hex(TRAP_V1);
    let msg = Message::decode(&bytes).unwrap();
    let Message::Community {
        version: Version::V1,
        pdu: Pdus::TrapV1(trap),
        ..
    } = &msg
    else {
        panic!("not a v1 trap: {msg:?}");
    };
    assert_eq!(trap.enterprise, oid("1.3.6.1.4.1.4491.2.2.1"));
    assert_eq!(trap.agent_addr, [10, 1, 0, 7]);
    assert_eq!(trap.generic_trap, TrapV1::ENTERPRISE_SPECIFIC);
    assert_eq!(trap.specific_trap, 2);
    assert_eq!(trap.time_stamp, 100);
    assert_eq!(
        trap.get(oid("1.3.6.1.2.1.1.5.0")),
        Some(&Value::OctetString(b"mta".to_vec()))
    );
    assert_eq!(
        trap.notification_oid(),
        Some(oid("1.3.6.1.4.1.4491.2.2.1.0.2"))
    );
    assert_eq!(msg.pdu(), None);
    assert_eq!(response_to(&msg), None);
    assert_eq!(encode(&msg), bytes);
}

/// An SNMPv3 engine-ID discovery GET as net-snmp sends it: USM with empty engine and user,
/// reportable, noAuthNoPriv, an empty GetRequest.
const V3_DISCOVERY: &str = "
    303a 020103
    300f 02024a69 020300ffe3 040104 020103  # msgID, msgMaxSize 65507, flags reportable, USM
    0410 300e 0400 020100 020100 0400 0400 0400
    3012 0400 0400 a00c 020237f0 020100 020100 3000
";

#[test]
fn v3_discovery_request() {
    let bytes = hex(V3_DISCOVERY);
    let msg = Message::decode(&bytes).unwrap();
    let Message::V3 {
        msg_id,
        max_size,
        flags,
        security_model,
        usm: Some(usm),
        scoped_pdu,
        ..
    } = &msg
    else {
        panic!("not v3 with USM: {msg:?}");
    };
    assert_eq!(
        (*msg_id, *max_size, *flags, *security_model),
        (0x4a69, 65507, FLAG_REPORTABLE, 3)
    );
    assert_eq!(usm, &UsmParams::default());
    let ScopedPdu::Plain {
        context_engine_id,
        context_name,
        pdu,
    } = scoped_pdu
    else {
        panic!("encrypted?");
    };
    assert!(context_engine_id.is_empty() && context_name.is_empty());
    assert_eq!(pdu.kind, PduType::GetRequest);
    assert_eq!(pdu.request_id, 0x37f0);
    assert!(pdu.varbinds.is_empty());
    assert_eq!(msg.version(), Version::V3);
    assert_eq!(msg.community(), None);
    assert_eq!(encode(&msg), bytes);
}

#[test]
fn v3_encrypted_inform_is_kept_as_bytes() {
    let msg = Message::V3 {
        msg_id: 91,
        max_size: 1472,
        flags: FLAG_AUTH | FLAG_PRIV | FLAG_REPORTABLE,
        security_model: SECURITY_MODEL_USM,
        usm: Some(UsmParams {
            engine_id: hex("80001f8880e9bd0c1e5b9b6a5d00000000"),
            engine_boots: 3,
            engine_time: 1234,
            user_name: b"MTA-Prov-0015cf123457".to_vec(),
            auth_params: vec![0xaa; 12],
            priv_params: hex("0000000100000002"),
        }),
        security_params: Vec::new(),
        scoped_pdu: ScopedPdu::Encrypted(vec![0x5a; 200]),
    };
    let bytes = encode(&msg);
    assert_eq!(Message::decode(&bytes).unwrap(), msg);
    assert_eq!(msg.pdu(), None);
    // The encrypted scoped PDU is the last element: 04 81 c8 and the 200 bytes.
    assert_eq!(&bytes[bytes.len() - 203..bytes.len() - 200], hex("0481c8"));
}

#[test]
fn v3_with_another_security_model_keeps_its_parameters() {
    let msg = Message::V3 {
        msg_id: 1,
        max_size: 65507,
        flags: 0,
        security_model: 4, // TSM (RFC 5591)
        usm: None,
        security_params: b"anything at all".to_vec(),
        scoped_pdu: ScopedPdu::Plain {
            context_engine_id: vec![1, 2, 3],
            context_name: b"ctx".to_vec(),
            pdu: Pdu::new(PduType::SnmpV2Trap, 5, Vec::new()),
        },
    };
    let bytes = encode(&msg);
    assert_eq!(Message::decode(&bytes).unwrap(), msg);
}
