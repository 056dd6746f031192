//! Arbitrary traffic on virtual time: well-formed INFORMs for a handful of MTAs mixed with
//! mutated vectors and garbage, answers (good, refused or none) to whatever the engine asks,
//! file answers of every shape, and clock jumps. Whatever happens: no panic, the internal
//! invariants hold, memory stays within the caps, and every answer to an INFORM decodes with
//! that INFORM's request-id.

use proptest::prelude::*;

use provd_snmp::{ErrorStatus, Message, PduType};

use super::*;

const MAX_FLOWS: usize = 3;
const MAX_COMPLETED: usize = 4;
const DEDUPE: usize = 5;

#[derive(Debug, Clone)]
enum Op {
    Dhcp {
        mac: u8,
        flow: u8,
        moved: bool,
    },
    Enroll {
        mac: u8,
        corr: u8,
        id: i32,
        community: u8,
        cablelabs: bool,
    },
    Status {
        mac: u8,
        corr: u8,
        state: i64,
        id: i32,
    },
    Vector {
        which: u8,
        flip: Option<(usize, u8)>,
    },
    Garbage(Vec<u8>),
    /// Answers the `pick`-th latest request the engine sent.
    Answer {
        pick: usize,
        error: u8,
    },
    FileReady {
        mac: u8,
        hash_len: u8,
    },
    FileFailed {
        mac: u8,
    },
    Fetched {
        mac: u8,
    },
    Advance(u32),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        2 => (0..6u8, 0..4u8, any::<bool>())
            .prop_map(|(mac, flow, moved)| Op::Dhcp { mac, flow, moved }),
        3 => (0..6u8, 0..3u8, 0..4i32, 0..3u8, any::<bool>()).prop_map(
            |(mac, corr, id, community, cablelabs)| Op::Enroll {
                mac,
                corr,
                id,
                community,
                cablelabs
            }
        ),
        2 => (0..6u8, 0..3u8, 0..9i64, 0..4i32)
            .prop_map(|(mac, corr, state, id)| Op::Status { mac, corr, state, id }),
        1 => (0..4u8, proptest::option::of((0..400usize, any::<u8>())))
            .prop_map(|(which, flip)| Op::Vector { which, flip }),
        1 => proptest::collection::vec(any::<u8>(), 0..64).prop_map(Op::Garbage),
        3 => (0..4usize, 0..3u8).prop_map(|(pick, error)| Op::Answer { pick, error }),
        3 => (0..6u8, prop_oneof![4 => Just(20u8), 1 => Just(16u8), 1 => 0..30u8])
            .prop_map(|(mac, hash_len)| Op::FileReady { mac, hash_len }),
        1 => (0..6u8).prop_map(|mac| Op::FileFailed { mac }),
        2 => (0..6u8).prop_map(|mac| Op::Fetched { mac }),
        3 => prop_oneof![0..2_000u32, 0..40_000u32, 0..700_000u32].prop_map(Op::Advance),
    ]
}

fn flow(n: u8) -> Flow {
    [Flow::Basic1, Flow::Basic2, Flow::Hybrid1, Flow::Hybrid2][usize::from(n % 4)]
}

/// Checks what the engine sent in answer to `input` from `src`: every datagram to the source
/// answers the INFORM it sent; everything else is a GET or SET to an agent port.
fn check_sent(src: SocketAddrV4, input: &[u8], sent: &[Sent], requests: &mut Vec<Sent>) {
    for s in sent {
        let msg = s.message();
        let pdu = msg.pdu().expect("a readable PDU");
        if s.to.port() == 161 {
            assert!(matches!(
                pdu.kind,
                PduType::GetRequest | PduType::SetRequest
            ));
            assert_eq!(s.from_port, FromPort::Requests);
            requests.push(s.clone());
            continue;
        }
        assert_eq!(s.to, src, "an answer goes back to the INFORM's source");
        let inform = Message::decode(input).expect("only a decodable INFORM is answered");
        let asked = inform.pdu().expect("an INFORM PDU");
        assert_eq!(asked.kind, PduType::InformRequest);
        assert_eq!(pdu.kind, PduType::Response);
        assert_eq!(pdu.request_id, asked.request_id);
        assert_eq!(pdu.varbinds, asked.varbinds);
    }
}

fn check_bounds(h: &Harness) {
    h.engine.check_invariants().unwrap();
    assert!(h.engine.active_flows() <= MAX_FLOWS);
    assert!(h.engine.records_len() <= MAX_FLOWS + MAX_COMPLETED);
    assert!(h.engine.dedupe_len() <= DEDUPE);
    for r in h.engine.records() {
        assert!(std::mem::size_of::<Record>() + r.heap_size() < 2048);
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn arbitrary_traffic_keeps_the_engine_sound(
        caps in any::<bool>(),
        ops in proptest::collection::vec(op(), 1..80),
    ) {
        let mut h = Harness::new(Config {
            max_flows: MAX_FLOWS,
            max_completed: MAX_COMPLETED,
            inform_dedupe_capacity: DEDUPE,
            get_capabilities: caps,
            ..Config::default()
        });
        let vectors = [ENROLLMENT, PROVSTATUS, SET_CONFIGFILE, ENROLLMENT_RESPONSE];
        let mut requests: Vec<Sent> = Vec::new();
        for op in ops {
            match op {
                Op::Dhcp { mac: n, flow: f, moved } => {
                    let mut b = binding(mac(n), flow(f));
                    if moved {
                        b.addr = Ipv4Addr::new(10, 3, 0, n);
                    }
                    let _ = h.dhcp(b);
                }
                Op::Enroll { mac: n, corr, id, community, cablelabs } => {
                    let mib = if cablelabs { Mib::CableLabs } else { Mib::Ietf };
                    let community = ["public", "private", "nope"][usize::from(community)];
                    let bytes = enrollment(mib, mac(n), u32::from(corr), id, community);
                    let sent = h.notify(mta_src(mac(n)), &bytes);
                    check_sent(mta_src(mac(n)), &bytes, &sent, &mut requests);
                    prop_assert_eq!(sent.iter().any(|s| s.to == mta_src(mac(n))), community != "nope");
                }
                Op::Status { mac: n, corr, state, id } => {
                    let bytes = status(Mib::Ietf, mac(n), u32::from(corr), state, id);
                    let sent = h.notify(mta_src(mac(n)), &bytes);
                    check_sent(mta_src(mac(n)), &bytes, &sent, &mut requests);
                    prop_assert_eq!(sent.len(), 1);
                }
                Op::Vector { which, flip } => {
                    let mut bytes = vectors[usize::from(which % 4)].to_vec();
                    if let Some((pos, x)) = flip {
                        let i = pos % bytes.len();
                        bytes[i] ^= x;
                    }
                    let src = mta_src(VECTOR_MAC);
                    let sent = h.notify(src, &bytes);
                    check_sent(src, &bytes, &sent, &mut requests);
                }
                Op::Garbage(bytes) => {
                    let src = mta_src(mac(7));
                    let sent = h.notify(src, &bytes);
                    check_sent(src, &bytes, &sent, &mut requests);
                }
                Op::Answer { pick, error } => {
                    // One of the latest requests (older ones are mostly settled): a late
                    // answer now and then, a live one mostly.
                    if let Some(i) = requests.len().checked_sub(1 + pick) {
                        let req = requests[i].clone();
                        let status = [
                            ErrorStatus::NO_ERROR,
                            ErrorStatus::INCONSISTENT_VALUE,
                            ErrorStatus::GEN_ERR,
                        ][usize::from(error)];
                        let answer = response_to_request(&req.bytes, status, None);
                        let sent = h.deliver_on(req.to, REQUEST_PORT, &answer);
                        prop_assert!(sent.is_empty(), "a Response draws no answer");
                    }
                }
                Op::FileReady { mac: n, hash_len } => {
                    let mut sent = Vec::new();
                    let _ = h.engine.file_ready(
                        h.now,
                        mac(n),
                        "tftp://10.0.0.10/f.bin".to_string(),
                        vec![7; usize::from(hash_len)],
                        &mut |o: Outgoing<'_>| sent.push(Sent {
                            to: o.to,
                            from_port: o.from_port,
                            bytes: o.to_vec(),
                        }),
                    );
                    check_sent(mta_src(mac(n)), &[], &sent, &mut requests);
                    h.take_events();
                }
                Op::FileFailed { mac: n } => {
                    let _ = h.engine.file_failed(h.now, mac(n), "x".repeat(300));
                }
                Op::Fetched { mac: n } => {
                    h.fetched(mac(n));
                }
                Op::Advance(ms) => {
                    let sent = h.advance(u64::from(ms));
                    for s in &sent {
                        prop_assert_eq!(s.to.port(), 161, "only requests are retransmitted");
                    }
                }
            }
            h.take_events();
            check_bounds(&h);
        }
        // Given time, every flow ends and no timer is left.
        h.advance(3_600_000);
        check_bounds(&h);
        prop_assert_eq!(h.engine.active_flows(), 0);
        prop_assert_eq!(h.engine.next_deadline(), None);
    }
}
