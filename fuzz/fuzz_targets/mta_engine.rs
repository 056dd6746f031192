//! The MTA provisioning engine under arbitrary traffic. The input is a sequence of records
//! `[ctl: u8][dt: u16 LE][len: u16 LE][payload]`; time advances by `dt` ms and the due timers
//! run before each record. `ctl` low nibble picks the action, `ctl >> 4` (0..=15) one of 8
//! MTA addresses (low 3 bits) where one is needed:
//!
//! * 0..=5: `payload` is a datagram to port 162 from that address.
//! * 6: `payload` is a datagram to the request port from that address's agent (port 161).
//! * 7: DHCP binding: `payload[0]` picks the MAC (of 6, the first the spec vectors' MTA),
//!   `payload[1]` the flow, `payload[2]` an optional 122.8 timer in minutes.
//! * 8: `file_ready` for MAC `payload[0]` with a hash of `payload[1] % 24` bytes and the rest
//!   as URL; 9: `file_failed`; 10: the file fetch.
//! * 11: the simulated MTA answers the engine's `payload[0] % 4`-th latest GET/SET with
//!   error-status `payload[1] % 14`.
//! * 12 / 13: a well-formed enrollment / status INFORM for MAC `payload[0]`, correlation id
//!   `payload[1] % 3`, request-id `payload[2]`, MIB by `payload[3]` bit 0, community by bits
//!   1-2, state `payload[4] % 9`, from the MAC's address: reaches deep states faster than raw
//!   bytes.
//! * 14: poll the events only; 15: a datagram to 162 from an address seen nowhere else.
//!
//! Checked after every step: no panic; the engine's invariants hold; flows in progress never
//! exceed `max_flows` and records never `max_flows + max_completed`; every datagram sent to a
//! datagram's source is a Response to that datagram, an InformRequest, with its request-id and
//! varbinds; every other datagram is a GET or SET to an agent's port 161. At the end, once time
//! runs on, every flow has ended and no timer is left.

#![no_main]

use std::net::{Ipv4Addr, SocketAddrV4};

use libfuzzer_sys::fuzz_target;
use provd_mta::{Binding, Config, Engine, Flow, Mac, Millis, Outgoing};
use provd_snmp::{
    ErrorStatus, Message, Oid, Pdu, PduType, SNMP_TRAP_OID_0, SYS_UPTIME_0, Value, VarBind, Version,
};

const MAX_FLOWS: usize = 4;
const MAX_COMPLETED: usize = 5;
const REQUEST_PORT: u16 = 50_000;

fn mac(n: u8) -> Mac {
    match n % 6 {
        0 => Mac([0x00, 0x15, 0xcf, 0x12, 0x34, 0x57]),
        k => Mac([0x00, 0x15, 0xcf, 0x00, 0x00, k]),
    }
}

fn peer(n: u8) -> Ipv4Addr {
    Ipv4Addr::new(10, 1, 0, 20 + (n & 7))
}

fn oid(arcs: &[u32]) -> Oid {
    Oid::from_slice(arcs).unwrap()
}

/// A well-formed enrollment or status INFORM.
fn notification(status: bool, p: &[u8]) -> Vec<u8> {
    let at = |i: usize| p.get(i).copied().unwrap_or(0);
    let cablelabs = at(3) & 1 == 1;
    let base: &[u32] = if cablelabs {
        &[1, 3, 6, 1, 4, 1, 4491, 2, 2, 1]
    } else {
        &[1, 3, 6, 1, 2, 1, 140]
    };
    let under = |tail: &[u32]| oid(&[base, tail].concat());
    let trap = if cablelabs {
        under(&[2, 0, 1 + u32::from(status)])
    } else {
        under(&[0, 1 + u32::from(status)])
    };
    let mac_oid = if cablelabs {
        under(&[1, 1, 4, 0])
    } else {
        oid(&[1, 3, 6, 1, 2, 1, 2, 2, 1, 6, 1])
    };
    let corr_oid = if cablelabs {
        under(&[1, 3, 4, 0])
    } else {
        under(&[1, 3, 3, 0])
    };
    let state_oid = if cablelabs {
        under(&[1, 1, 9, 0])
    } else {
        under(&[1, 1, 8, 0])
    };
    let mut vbs = vec![
        VarBind::new(oid(SYS_UPTIME_0), Value::TimeTicks(100)),
        VarBind::new(oid(SNMP_TRAP_OID_0), Value::ObjectId(trap)),
        VarBind::new(mac_oid, Value::OctetString(mac(at(0)).0.to_vec())),
        VarBind::new(corr_oid, Value::Gauge32(u32::from(at(1) % 3))),
    ];
    if status {
        vbs.push(VarBind::new(
            state_oid,
            Value::Integer(i64::from(at(4) % 9)),
        ));
    }
    let community = ["public", "private", "other", "public"][usize::from((at(3) >> 1) & 3)];
    let pdu = Pdu::new(PduType::InformRequest, i32::from(at(2)), vbs);
    Message::from_pdu(Version::V2c, community, pdu)
        .to_bytes()
        .unwrap()
}

/// Checks what the engine sent while handling a datagram from `src` (or nothing, `None`).
fn check_sent(
    src: Option<SocketAddrV4>,
    input: &[u8],
    sent: &[(SocketAddrV4, Vec<u8>)],
    requests: &mut Vec<(SocketAddrV4, Vec<u8>)>,
) {
    for (to, bytes) in sent {
        let msg = Message::decode(bytes).expect("the engine sent an undecodable datagram");
        let pdu = msg.pdu().expect("the engine sent no readable PDU");
        if Some(*to) == src && pdu.kind == PduType::Response {
            let asked = Message::decode(input).expect("answered something undecodable");
            let asked = asked.pdu().expect("answered a PDU-less message");
            assert_eq!(asked.kind, PduType::InformRequest, "answered a non-INFORM");
            assert_eq!(pdu.request_id, asked.request_id);
            assert_eq!(pdu.varbinds, asked.varbinds);
        } else {
            assert_eq!(
                to.port(),
                161,
                "a datagram to neither the source nor an agent"
            );
            assert!(matches!(
                pdu.kind,
                PduType::GetRequest | PduType::SetRequest
            ));
            if requests.len() >= 16 {
                requests.remove(0);
            }
            requests.push((*to, bytes.clone()));
        }
    }
}

fn check(engine: &Engine) {
    engine.check_invariants().unwrap();
    assert!(engine.active_flows() <= MAX_FLOWS);
    assert!(engine.records_len() <= MAX_FLOWS + MAX_COMPLETED);
}

fuzz_target!(|input: &[u8]| {
    let Some((&first, mut rest)) = input.split_first() else {
        return;
    };
    let mut engine = Engine::new(Config {
        max_flows: MAX_FLOWS,
        max_completed: MAX_COMPLETED,
        inform_dedupe_capacity: 6,
        get_capabilities: first & 1 == 1,
        first_request_id: if first & 2 == 2 { i32::MAX - 2 } else { 1 },
        ..Config::default()
    })
    .unwrap();
    let mut now = Millis(1_700_000_000_000);
    let mut requests: Vec<(SocketAddrV4, Vec<u8>)> = Vec::new();
    while let Some((head, tail)) = rest.split_first_chunk::<5>() {
        let [ctl, dt0, dt1, len0, len1] = *head;
        let len = usize::from(u16::from_le_bytes([len0, len1])).min(tail.len());
        let (payload, tail) = tail.split_at(len);
        rest = tail;
        let at = |i: usize| payload.get(i).copied().unwrap_or(0);
        now = now.plus(u64::from(u16::from_le_bytes([dt0, dt1])) * 37);

        let mut sent = Vec::new();
        engine.poll_timeouts(now, &mut |o: Outgoing<'_>| sent.push((o.to, o.to_vec())));
        check_sent(None, &[], &sent, &mut requests);

        let who = ctl >> 4;
        let mut sent = Vec::new();
        let mut out = |o: Outgoing<'_>| sent.push((o.to, o.to_vec()));
        let (src, datagram): (Option<SocketAddrV4>, Vec<u8>) = match ctl & 15 {
            0..=5 | 15 => {
                let ip = if ctl & 15 == 15 {
                    Ipv4Addr::new(192, 0, 2, who)
                } else {
                    peer(who)
                };
                let src = SocketAddrV4::new(ip, 1024);
                engine.on_datagram(now, src, 162, payload, &mut out);
                (Some(src), payload.to_vec())
            }
            6 => {
                let src = SocketAddrV4::new(peer(who), 161);
                engine.on_datagram(now, src, REQUEST_PORT, payload, &mut out);
                (Some(src), payload.to_vec())
            }
            7 => {
                let flow = [Flow::Basic1, Flow::Basic2, Flow::Hybrid1, Flow::Hybrid2]
                    [usize::from(at(1) % 4)];
                let m = mac(at(0));
                let _ = engine.on_dhcp(
                    now,
                    Binding {
                        mac: m,
                        addr: peer(m.0[5]),
                        giaddr: if at(1) & 4 == 0 {
                            Ipv4Addr::new(10, 1, 0, 1)
                        } else {
                            Ipv4Addr::UNSPECIFIED
                        },
                        flow,
                        file_name: (at(1) & 8 == 0).then(|| "mta.bin".to_string()),
                        provisioning_timer: (at(2) != 0)
                            .then(|| std::time::Duration::from_secs(60 * u64::from(at(2) % 31))),
                    },
                );
                (None, Vec::new())
            }
            8 => {
                let url = String::from_utf8_lossy(payload.get(2..).unwrap_or(&[])).into_owned();
                let hash = vec![0xab; usize::from(at(1) % 24)];
                let _ = engine.file_ready(now, mac(at(0)), url, hash, &mut out);
                (None, Vec::new())
            }
            9 => {
                let _ = engine.file_failed(
                    now,
                    mac(at(0)),
                    String::from_utf8_lossy(payload).into_owned(),
                );
                (None, Vec::new())
            }
            10 => {
                engine.on_file_fetched(now, mac(at(0)));
                (None, Vec::new())
            }
            11 => {
                let pick = usize::from(at(0) % 4);
                match requests
                    .len()
                    .checked_sub(1 + pick)
                    .map(|i| requests[i].clone())
                {
                    Some((agent, request)) => {
                        let msg = Message::decode(&request).unwrap();
                        let asked = msg.pdu().unwrap();
                        let mut answer =
                            Pdu::new(PduType::Response, asked.request_id, asked.varbinds.clone());
                        answer.error_status = ErrorStatus(i32::from(at(1) % 14));
                        let bytes = Message::from_pdu(Version::V2c, "private", answer)
                            .to_bytes()
                            .unwrap();
                        engine.on_datagram(now, agent, REQUEST_PORT, &bytes, &mut out);
                        (Some(agent), bytes)
                    }
                    None => (None, Vec::new()),
                }
            }
            12 | 13 => {
                let bytes = notification(ctl & 15 == 13, payload);
                let src = SocketAddrV4::new(peer(mac(at(0)).0[5]), 1024);
                engine.on_datagram(now, src, 162, &bytes, &mut out);
                (Some(src), bytes)
            }
            _ => (None, Vec::new()),
        };
        check_sent(src, &datagram, &sent, &mut requests);
        while engine.poll_event().is_some() {}
        check(&engine);
    }
    // Given time, every flow ends (retries run out, provisioning timers expire).
    for _ in 0..4 {
        now = now.plus(3_600_000);
        let mut sent = Vec::new();
        engine.poll_timeouts(now, &mut |o: Outgoing<'_>| sent.push((o.to, o.to_vec())));
        check_sent(None, &[], &sent, &mut requests);
        while engine.poll_event().is_some() {}
        check(&engine);
    }
    assert_eq!(engine.active_flows(), 0);
    assert_eq!(engine.next_deadline(), None);
});
