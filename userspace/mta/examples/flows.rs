//! The engine's share of `bench mta`: N complete HYBRID.2 flows through one engine in memory,
//! with simulated MTAs that answer instantly, and the flows per second it sustains.
//!
//! Per flow: DHCP binding, enrollment INFORM (answered), NeedFile, file_ready (the SET), the
//! SET's Response, the file fetch, the status INFORM (answered, flow complete). Flows run in
//! waves of `BATCH` so the tables hold that many flows in progress. The MTAs' datagrams are
//! built before the clock starts: what is timed is the engine (decode, answer, encode, state).
//!
//! `cargo run --release -p provd-mta --example flows [N]`

use std::net::{Ipv4Addr, SocketAddrV4};
use std::time::Instant;

use provd_mta::{Binding, Config, Engine, Event, Flow, Mac, Millis, Outgoing, ProvState};
use provd_snmp::{Message, Oid, Pdu, PduType, SNMP_TRAP_OID_0, SYS_UPTIME_0, Value, VarBind};

const BATCH: usize = 10_000;
/// Stands for the MAC in the INFORM templates; patched per MTA.
const MARK: [u8; 6] = [0xfe, 0xed, 0xfa, 0xce, 0xbe, 0xef];

fn oid(text: &str) -> Oid {
    text.parse().expect("a valid OID")
}

fn inform(request_id: i32, trap: &str, rest: Vec<VarBind>) -> Vec<u8> {
    let mut vbs = vec![
        VarBind::new(
            Oid::from_slice(SYS_UPTIME_0).expect("sysUpTime.0"),
            Value::TimeTicks(4200),
        ),
        VarBind::new(
            Oid::from_slice(SNMP_TRAP_OID_0).expect("snmpTrapOID.0"),
            Value::ObjectId(oid(trap)),
        ),
    ];
    vbs.extend(rest);
    let pdu = Pdu::new(PduType::InformRequest, request_id, vbs);
    Message::from_pdu(provd_snmp::Version::V2c, "public", pdu)
        .to_bytes()
        .expect("encodable")
}

/// The two INFORMs of an IETF-MIB MTA, with [`MARK`] for its MAC.
fn templates() -> (Vec<u8>, Vec<u8>) {
    let s = |b: &str| Value::OctetString(b.as_bytes().to_vec());
    let mac = || {
        VarBind::new(
            oid("1.3.6.1.2.1.2.2.1.6.1"),
            Value::OctetString(MARK.to_vec()),
        )
    };
    let corr = || VarBind::new(oid("1.3.6.1.2.1.140.1.3.3.0"), Value::Gauge32(0x1234_abcd));
    let enrollment = inform(
        1001,
        "1.3.6.1.2.1.140.0.1",
        vec![
            VarBind::new(
                oid("1.3.6.1.2.1.1.1.0"),
                s("<<HW_REV: 1.0; VENDOR: ExampleCo; BOOTR: 1.0; SW_REV: 2.1.0; MODEL: EMTA1>>"),
            ),
            VarBind::new(oid("1.3.6.1.2.1.140.1.1.3.0"), s("2.1.0")),
            VarBind::new(
                oid("1.3.6.1.2.1.140.1.1.7.0"),
                s("pktc1.5:051a0101010201020301000401010901000b02060910010912020007"),
            ),
            mac(),
            corr(),
        ],
    );
    let status = inform(
        1002,
        "1.3.6.1.2.1.140.0.2",
        vec![
            mac(),
            corr(),
            VarBind::new(oid("1.3.6.1.2.1.140.1.1.8.0"), Value::Integer(1)),
        ],
    );
    (enrollment, status)
}

fn with_mac(template: &[u8], mac: Mac) -> Vec<u8> {
    let mut bytes = template.to_vec();
    let at = bytes
        .windows(6)
        .position(|w| w == MARK)
        .expect("the template holds the mark");
    bytes[at..at + 6].copy_from_slice(&mac.0);
    bytes
}

/// The agent's Response to a SET: the same message with the PDU tag 0xa2 (what an MTA that
/// accepts the SET sends back).
fn ack(set: &[u8]) -> Vec<u8> {
    let mut bytes = set.to_vec();
    // SEQUENCE header, version (3 bytes), community (2 + len): then the PDU tag.
    let header = if bytes[1] & 0x80 == 0 {
        2
    } else {
        2 + usize::from(bytes[1] & 0x7f)
    };
    let community = header + 3;
    let tag = community + 2 + usize::from(bytes[community + 1]);
    bytes[tag] = 0xa2;
    bytes
}

struct Mta {
    mac: Mac,
    addr: Ipv4Addr,
    enrollment: Vec<u8>,
    status: Vec<u8>,
}

fn main() {
    let n: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(100_000);
    let (enrollment, status) = templates();
    let mtas: Vec<Mta> = (0..n)
        .map(|i| {
            let i = u32::try_from(i).expect("fewer than 2^32 MTAs");
            let [_, b, c, d] = i.to_be_bytes();
            let mac = Mac([0x00, 0x15, 0xcf, b, c, d]);
            Mta {
                mac,
                addr: Ipv4Addr::new(10, b, c, d),
                enrollment: with_mac(&enrollment, mac),
                status: with_mac(&status, mac),
            }
        })
        .collect();
    let hash = vec![0x5a; 20];
    let mut engine = Engine::new(Config {
        max_flows: BATCH,
        max_completed: n,
        ..Config::default()
    })
    .expect("a valid config");

    let mut now = Millis(1_700_000_000_000);
    let mut set = Vec::new();
    let mut answers = 0usize;
    let mut completed = 0usize;
    let started = Instant::now();
    for wave in mtas.chunks(BATCH) {
        for m in wave {
            let binding = Binding {
                mac: m.mac,
                addr: m.addr,
                giaddr: Ipv4Addr::new(10, 0, 0, 1),
                flow: Flow::Hybrid2,
                file_name: None,
                provisioning_timer: None,
            };
            engine.on_dhcp(now, binding).expect("room for the wave");
        }
        now = now.plus(10);
        for m in wave {
            let src = SocketAddrV4::new(m.addr, 1024);
            engine.on_datagram(now, src, 162, &m.enrollment, &mut |_: Outgoing<'_>| {
                answers += 1;
            });
        }
        now = now.plus(10);
        while let Some(event) = engine.poll_event() {
            let Event::NeedFile { mac, .. } = event else {
                panic!("unexpected {event:?}");
            };
            let url = format!("tftp://10.0.0.10/mta/{mac}.bin");
            set.clear();
            let mut agent = None;
            engine
                .file_ready(now, mac, url, hash.clone(), &mut |o: Outgoing<'_>| {
                    set.extend_from_slice(o.bytes);
                    agent = Some(o.to);
                })
                .expect("the flow waits for its file");
            let agent = agent.expect("the SET went out");
            engine.on_datagram(now, agent, 50_000, &ack(&set), &mut |_: Outgoing<'_>| {});
        }
        now = now.plus(10);
        for m in wave {
            engine.on_file_fetched(now, m.mac);
            let src = SocketAddrV4::new(m.addr, 1024);
            engine.on_datagram(now, src, 162, &m.status, &mut |_: Outgoing<'_>| {
                answers += 1;
            });
        }
        while let Some(event) = engine.poll_event() {
            match event {
                Event::Completed {
                    state: Some(ProvState::PASS),
                    ..
                } => completed += 1,
                other => panic!("unexpected {other:?}"),
            }
        }
        now = now.plus(10);
        engine.poll_timeouts(now, &mut |_: Outgoing<'_>| {});
    }
    let elapsed = started.elapsed();
    assert_eq!(completed, n, "every flow completes");
    assert_eq!(answers, 2 * n, "every INFORM is answered");
    let c = engine.counters();
    assert_eq!((c.sets_acked, c.flows_completed), (n as u64, n as u64));
    println!(
        "{n} HYBRID.2 flows in {:.3} s: {:.0} flows/s on one core ({} records kept)",
        elapsed.as_secs_f64(),
        n as f64 / elapsed.as_secs_f64(),
        engine.records_len()
    );
}
