//! Properties over generated messages and hostile bytes: every message this crate can hold
//! encodes and decodes back to itself, byte-identically on re-encoding; decoding never panics,
//! on random bytes or on mutated vectors, and whatever it accepts round-trips.

mod common;

use common::{VECTORS, data};
use proptest::collection::vec;
use proptest::prelude::*;
use provd_snmp::*;

fn arb_arc() -> impl Strategy<Value = u32> {
    prop_oneof![4 => 0u32..300, 1 => any::<u32>()]
}

fn arb_oid() -> impl Strategy<Value = Oid> {
    (0u32..=2, arb_arc(), vec(arb_arc(), 0..12)).prop_map(|(first, second, rest)| {
        let second = match first {
            0 | 1 => second % 40,
            _ => second.min(u32::MAX - 80),
        };
        let mut arcs = vec![first, second];
        arcs.extend(rest);
        Oid::new(arcs).expect("generated within the rules")
    })
}

fn arb_value() -> impl Strategy<Value = Value> {
    prop_oneof![
        any::<i64>().prop_map(Value::Integer),
        vec(any::<u8>(), 0..40).prop_map(Value::OctetString),
        Just(Value::Null),
        arb_oid().prop_map(Value::ObjectId),
        any::<[u8; 4]>().prop_map(Value::IpAddress),
        any::<u32>().prop_map(Value::Counter32),
        any::<u32>().prop_map(Value::Gauge32),
        any::<u32>().prop_map(Value::TimeTicks),
        vec(any::<u8>(), 0..20).prop_map(Value::Opaque),
        any::<u64>().prop_map(Value::Counter64),
        Just(Value::NoSuchObject),
        Just(Value::NoSuchInstance),
        Just(Value::EndOfMibView),
    ]
}

fn arb_varbinds() -> impl Strategy<Value = Vec<VarBind>> {
    vec(
        (arb_oid(), arb_value()).prop_map(|(oid, value)| VarBind { oid, value }),
        0..8,
    )
}

fn arb_kind() -> impl Strategy<Value = PduType> {
    prop_oneof![
        Just(PduType::GetRequest),
        Just(PduType::GetNextRequest),
        Just(PduType::Response),
        Just(PduType::SetRequest),
        Just(PduType::GetBulkRequest),
        Just(PduType::InformRequest),
        Just(PduType::SnmpV2Trap),
        Just(PduType::Report),
    ]
}

fn arb_pdu() -> impl Strategy<Value = Pdu> {
    (
        arb_kind(),
        any::<i32>(),
        any::<i32>(),
        any::<i32>(),
        arb_varbinds(),
    )
        .prop_map(|(kind, request_id, status, error_index, varbinds)| Pdu {
            kind,
            request_id,
            error_status: ErrorStatus(status),
            error_index,
            varbinds,
        })
}

fn arb_trap() -> impl Strategy<Value = TrapV1> {
    (
        arb_oid(),
        any::<[u8; 4]>(),
        any::<i32>(),
        any::<i32>(),
        any::<u32>(),
        arb_varbinds(),
    )
        .prop_map(
            |(enterprise, agent_addr, generic_trap, specific_trap, time_stamp, varbinds)| TrapV1 {
                enterprise,
                agent_addr,
                generic_trap,
                specific_trap,
                time_stamp,
                varbinds,
            },
        )
}

fn arb_community() -> impl Strategy<Value = Message> {
    (
        prop_oneof![Just(Version::V1), Just(Version::V2c)],
        vec(any::<u8>(), 0..16),
        prop_oneof![
            3 => arb_pdu().prop_map(Pdus::Pdu),
            1 => arb_trap().prop_map(Pdus::TrapV1),
        ],
    )
        .prop_map(|(version, community, pdu)| Message::Community {
            version,
            community,
            pdu,
        })
}

fn arb_usm() -> impl Strategy<Value = UsmParams> {
    (
        vec(any::<u8>(), 0..32),
        any::<i32>(),
        any::<i32>(),
        vec(any::<u8>(), 0..32),
        vec(any::<u8>(), 0..24),
        vec(any::<u8>(), 0..16),
    )
        .prop_map(
            |(engine_id, engine_boots, engine_time, user_name, auth_params, priv_params)| {
                UsmParams {
                    engine_id,
                    engine_boots,
                    engine_time,
                    user_name,
                    auth_params,
                    priv_params,
                }
            },
        )
}

fn arb_scoped() -> impl Strategy<Value = ScopedPdu> {
    prop_oneof![
        (vec(any::<u8>(), 0..16), vec(any::<u8>(), 0..8), arb_pdu()).prop_map(
            |(context_engine_id, context_name, pdu)| ScopedPdu::Plain {
                context_engine_id,
                context_name,
                pdu,
            }
        ),
        vec(any::<u8>(), 0..300).prop_map(ScopedPdu::Encrypted),
    ]
}

/// A v3 message whose flags and security fields agree, as the encoder requires.
fn arb_v3() -> impl Strategy<Value = Message> {
    (
        any::<i32>(),
        any::<i32>(),
        any::<u8>(),
        prop_oneof![3 => Just(SECURITY_MODEL_USM), 1 => any::<i32>()],
        arb_usm(),
        vec(any::<u8>(), 0..40),
        arb_scoped(),
    )
        .prop_map(
            |(msg_id, max_size, flags, security_model, usm, raw, scoped_pdu)| {
                let flags = if scoped_pdu.is_encrypted() {
                    flags | FLAG_PRIV
                } else {
                    flags & !FLAG_PRIV
                };
                let with_usm = security_model == SECURITY_MODEL_USM;
                Message::V3 {
                    msg_id,
                    max_size,
                    flags,
                    security_model,
                    usm: with_usm.then_some(usm),
                    security_params: if with_usm { Vec::new() } else { raw },
                    scoped_pdu,
                }
            },
        )
}

fn arb_message() -> impl Strategy<Value = Message> {
    prop_oneof![3 => arb_community(), 1 => arb_v3()]
}

/// Whatever decodes re-encodes (unless normalising grew it past the limit) to bytes that
/// decode to the same message and re-encode identically.
fn assert_round_trips(msg: &Message) -> Result<(), TestCaseError> {
    let bytes = match msg.to_bytes() {
        Ok(bytes) => bytes,
        Err(EncodeError::TooLarge { .. }) => return Ok(()),
        Err(e) => return Err(TestCaseError::fail(format!("{e}: {msg:?}"))),
    };
    let back = Message::decode(&bytes).map_err(|e| TestCaseError::fail(format!("{e}")))?;
    prop_assert_eq!(&back, msg);
    prop_assert_eq!(back.to_bytes().ok(), Some(bytes));
    Ok(())
}

#[derive(Debug, Clone)]
enum Mutation {
    Set(usize, u8),
    Flip(usize, u8),
    Insert(usize, u8),
    Remove(usize),
    Truncate(usize),
}

fn arb_mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        (any::<usize>(), any::<u8>()).prop_map(|(i, b)| Mutation::Set(i, b)),
        (any::<usize>(), 0u8..8).prop_map(|(i, bit)| Mutation::Flip(i, bit)),
        (any::<usize>(), any::<u8>()).prop_map(|(i, b)| Mutation::Insert(i, b)),
        any::<usize>().prop_map(Mutation::Remove),
        any::<usize>().prop_map(Mutation::Truncate),
    ]
}

fn mutate(bytes: &mut Vec<u8>, m: &Mutation) {
    let len = bytes.len().max(1);
    match *m {
        Mutation::Set(i, b) => {
            if let Some(x) = bytes.get_mut(i % len) {
                *x = b;
            }
        }
        Mutation::Flip(i, bit) => {
            if let Some(x) = bytes.get_mut(i % len) {
                *x ^= 1 << bit;
            }
        }
        Mutation::Insert(i, b) => bytes.insert(i % (bytes.len() + 1), b),
        Mutation::Remove(i) => {
            if !bytes.is_empty() {
                bytes.remove(i % len);
            }
        }
        Mutation::Truncate(i) => bytes.truncate(i % len),
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn generated_messages_round_trip(msg in arb_message()) {
        let bytes = msg.to_bytes().map_err(|e| TestCaseError::fail(format!("{e}")))?;
        prop_assert_eq!(Message::decode(&bytes).ok(), Some(msg.clone()));
        assert_round_trips(&msg)?;
    }

    #[test]
    fn an_inform_response_differs_only_in_the_pdu_tag(
        community in vec(any::<u8>(), 0..16),
        request_id in any::<i32>(),
        varbinds in arb_varbinds(),
    ) {
        let community_len = community.len();
        let inform = Message::from_pdu(
            Version::V2c,
            community,
            Pdu::new(PduType::InformRequest, request_id, varbinds),
        );
        let mut expected = inform.to_bytes().unwrap();
        let response = response_to(&inform).unwrap().to_bytes().unwrap();
        // The PDU tag follows the message header, the version (3 bytes) and the community
        // (a 2-byte header here).
        let header = 2 + usize::from(expected[1] & 0x80 != 0) * usize::from(expected[1] & 0x7f);
        let at = header + 3 + 2 + community_len;
        prop_assert_eq!(expected[at], 0xa6);
        expected[at] = 0xa2;
        prop_assert_eq!(response, expected);
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in vec(any::<u8>(), 0..600)) {
        if let Ok(msg) = Message::decode(&bytes) {
            assert_round_trips(&msg)?;
        }
    }

    #[test]
    fn sequence_shaped_bytes_never_panic(body in vec(any::<u8>(), 0..300), v3 in any::<bool>()) {
        // Past the first two checks (outer SEQUENCE, known version) more often than random.
        let mut content = if v3 { vec![0x02, 0x01, 0x03] } else { vec![0x02, 0x01, 0x01] };
        content.extend_from_slice(&body);
        let mut bytes = vec![0x30, 0x82, (content.len() >> 8) as u8, content.len() as u8];
        bytes.extend_from_slice(&content);
        if let Ok(msg) = Message::decode(&bytes) {
            assert_round_trips(&msg)?;
        }
    }

    #[test]
    fn mutated_vectors_never_panic(
        which in 0..VECTORS.len(),
        mutations in vec(arb_mutation(), 1..6),
    ) {
        let mut bytes = data(VECTORS[which]);
        for m in &mutations {
            mutate(&mut bytes, m);
        }
        match Message::decode(&bytes) {
            Ok(msg) => assert_round_trips(&msg)?,
            Err(e) => prop_assert!(!e.name().is_empty() && !e.to_string().is_empty()),
        }
    }

    #[test]
    fn oid_text_round_trips(oid in arb_oid()) {
        prop_assert_eq!(oid.to_string().parse::<Oid>().ok(), Some(oid.clone()));
        prop_assert!(oid.starts_with(&oid.as_slice()[..2]));
    }
}
