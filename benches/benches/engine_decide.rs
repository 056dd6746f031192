//! The decision path: one shard answering a relayed DISCOVER (allocation from the pool bitmap,
//! OFFER written with the class's precomputed options) and a REQUEST in SELECTING state (lease
//! bound, ACK written, record queued), as a worker runs them, without I/O. Each iteration uses a
//! fresh client, so the numbers include table inserts and pool claims, not a cached answer.

use std::hint::black_box;
use std::net::{Ipv4Addr, SocketAddrV4};
use std::sync::Arc;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use provd_config::Policy;
use provd_dhcp::{Header, MessageType, MessageWriter, code};
use provd_engine::{Ingress, Outcome, Shard, Shared};
use provd_lease::LeaseTable;

const POLICY: &str = r#"
[server]
server_id = "198.18.2.2"
lease_dir = "/nonexistent"
[[class]]
name = "cm"
match = "docsis*"
lease_time = 604800
next_server = "198.18.0.10"
boot_file = "cm/{mac}.cfg"
time_servers = ["198.18.0.5"]
log_servers = ["198.18.0.6"]
time_offset = -18000
[[shared_network]]
name = "bench"
relays = ["198.18.2.1"]
  [[shared_network.subnet]]
  prefix = "10.0.0.0/8"
  routers = ["10.0.0.1"]
    [[shared_network.subnet.pool]]
    start = "10.0.0.10"
    end = "10.255.255.250"
"#;
const RELAY: Ipv4Addr = Ipv4Addr::new(198, 18, 2, 1);
const SERVER: Ipv4Addr = Ipv4Addr::new(198, 18, 2, 2);

fn request(buf: &mut Vec<u8>, n: u32, kind: MessageType, yiaddr: Option<Ipv4Addr>) {
    let mut chaddr = [0u8; 16];
    chaddr[..6].copy_from_slice(&[
        0x02,
        0x00,
        (n >> 24) as u8,
        (n >> 16) as u8,
        (n >> 8) as u8,
        n as u8,
    ]);
    let mut h = Header::reply(n, chaddr, 1, 6);
    h.op = 1;
    h.hops = 1;
    h.giaddr = RELAY;
    let mut w = MessageWriter::new(buf, &h, 1500).expect("header fits");
    w.option(code::MESSAGE_TYPE, &[kind as u8]).expect("fits");
    if let Some(a) = yiaddr {
        w.ipv4(code::SERVER_ID, SERVER).expect("fits");
        w.ipv4(code::REQUESTED_IP, a).expect("fits");
    }
    w.option(code::VENDOR_CLASS, b"docsis3.0:05360101010201")
        .expect("fits");
    w.option(
        code::RELAY_AGENT_INFO,
        &[1, 4, 0, 0, 0, 3, 2, 6, 0, 0x15, 0xcf, 0x12, 0x34, 0x56],
    )
    .expect("fits");
    w.finish().expect("fits");
}

fn bench(c: &mut Criterion) {
    let policy = Policy::from_toml_str(POLICY).expect("bench policy is valid");
    let shared = Shared::new(policy).expect("engine accepts the policy");
    let mut shard = Shard::new(
        Arc::clone(&shared),
        LeaseTable::with_capacity(1 << 20),
        0,
        1,
    );
    let mut g = c.benchmark_group("engine");
    g.throughput(Throughput::Elements(1));
    let mut n = 0u32;
    let (mut req, mut out) = (Vec::new(), Vec::new());
    g.bench_function("dora_relayed_cm", |b| {
        b.iter(|| {
            n = n.wrapping_add(1);
            request(&mut req, n, MessageType::Discover, None);
            let ingress = Ingress {
                payload: &req,
                src: SocketAddrV4::new(RELAY, 67),
                local: SERVER,
                ifindex: 2,
            };
            let Outcome::Reply(_) = shard.handle(1_800_000_000, &ingress, &mut out) else {
                panic!("no OFFER");
            };
            let offered = provd_dhcp::Message::parse(&out)
                .expect("offer parses")
                .yiaddr();
            request(&mut req, n, MessageType::Request, Some(offered));
            let ingress = Ingress {
                payload: &req,
                src: SocketAddrV4::new(RELAY, 67),
                local: SERVER,
                ifindex: 2,
            };
            let o = shard.handle(1_800_000_000, &ingress, &mut out);
            assert!(matches!(o, Outcome::Reply(r) if r.durable), "no ACK: {o:?}");
            shard.take_pending().for_each(drop);
            black_box(&out);
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
