//! Property tests: arbitrary traffic never breaks the server, and RFC-following clients over a
//! network that loses, duplicates and reorders always end with the exact file or a clean give-up.

use std::net::SocketAddrV4;

use proptest::prelude::*;

use super::{Harness, SERVER_IP, peer, rrq_bytes};
use crate::*;

/// splitmix64: the network's coin flips, seeded by proptest so failures replay.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn chance(&mut self, percent: u8) -> bool {
        self.next() % 100 < u64::from(percent)
    }

    fn below(&mut self, n: u64) -> u64 {
        if n == 0 { 0 } else { self.next() % n }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    Running,
    Done,
    Failed,
}

const CLIENT_TIMEOUT_MS: u64 = 700;
const CLIENT_RETRIES: u32 = 8;

/// An RFC 1350 / 2347 / 7440 receiver: ACKs each window's last block, ACKs the last in-order
/// block on a gap or on its own timeout, re-ACKs duplicates.
struct SimClient {
    addr: SocketAddrV4,
    rrq: Vec<u8>,
    asked_options: bool,
    /// The file as it must arrive (netascii already applied).
    want: Vec<u8>,
    blksize: usize,
    window: u16,
    started: bool,
    expected: u32,
    in_window: u16,
    got: Vec<u8>,
    final_block: Option<u16>,
    deadline: Millis,
    timeouts: u32,
    outcome: Outcome,
}

/// A datagram in flight.
struct Flight {
    at: Millis,
    seq: u64,
    to_server: bool,
    port: Port,
    src: SocketAddrV4,
    dst: SocketAddrV4,
    bytes: Vec<u8>,
}

struct Net {
    rng: Rng,
    loss: u8,
    dup: u8,
    max_delay: u64,
    seq: u64,
    flights: Vec<Flight>,
}

impl Net {
    #[allow(clippy::too_many_arguments)]
    fn send(
        &mut self,
        now: Millis,
        to_server: bool,
        port: Port,
        src: SocketAddrV4,
        dst: SocketAddrV4,
        bytes: &[u8],
    ) {
        if self.rng.chance(self.loss) {
            return;
        }
        let copies = if self.rng.chance(self.dup) { 2 } else { 1 };
        for _ in 0..copies {
            let delay = 1 + self.rng.below(self.max_delay + 1);
            self.seq += 1;
            self.flights.push(Flight {
                at: now.plus(delay),
                seq: self.seq,
                to_server,
                port,
                src,
                dst,
                bytes: bytes.to_vec(),
            });
        }
    }

    fn next_at(&self) -> Option<Millis> {
        self.flights.iter().map(|f| f.at).min()
    }

    fn take_due(&mut self, now: Millis) -> Option<Flight> {
        let i = self
            .flights
            .iter()
            .enumerate()
            .filter(|(_, f)| f.at <= now)
            .min_by_key(|(_, f)| (f.at, f.seq))?
            .0;
        Some(self.flights.swap_remove(i))
    }
}

fn wire_block(i: u32) -> u16 {
    i.wrapping_add(1) as u16
}

impl SimClient {
    fn new(addr: SocketAddrV4, name: &str, file: &[u8], mode: Mode, options: Options) -> Self {
        let want = match mode {
            Mode::Octet => file.to_vec(),
            Mode::Netascii => file
                .iter()
                .flat_map(|&b| match b {
                    b'\n' => vec![b'\r', b'\n'],
                    b'\r' => vec![b'\r', 0],
                    b => vec![b],
                })
                .collect(),
        };
        SimClient {
            addr,
            rrq: rrq_bytes(name, mode, options),
            asked_options: !options.is_empty(),
            want,
            blksize: 512,
            window: 1,
            started: false,
            expected: 0,
            in_window: 0,
            got: Vec::new(),
            final_block: None,
            deadline: Millis(0),
            timeouts: 0,
            outcome: Outcome::Running,
        }
    }

    fn send(&mut self, net: &mut Net, now: Millis, port: Port, bytes: &[u8]) {
        net.send(
            now,
            true,
            port,
            self.addr,
            SocketAddrV4::new(SERVER_IP, 69),
            bytes,
        );
        self.deadline = now.plus(CLIENT_TIMEOUT_MS);
    }

    fn start(&mut self, net: &mut Net, now: Millis) {
        let rrq = self.rrq.clone();
        self.send(net, now, Port::Listen, &rrq);
    }

    /// ACK of the last block received in order (0 before any: answers an OACK).
    fn ack_last(&mut self, net: &mut Net, now: Millis) {
        let block = wire_block(self.expected.wrapping_sub(1));
        self.in_window = 0;
        self.send(net, now, Port::Transfer, &ack(block));
    }

    fn receive(&mut self, net: &mut Net, now: Millis, bytes: &[u8]) {
        let packet = Packet::parse(bytes).expect("the server sends only valid packets");
        if self.outcome == Outcome::Failed {
            return;
        }
        match packet {
            Packet::Error { .. } => {
                if self.outcome == Outcome::Running {
                    self.outcome = Outcome::Failed;
                }
            }
            Packet::Oack(o) => {
                assert!(self.asked_options, "OACK without options asked");
                if !self.started {
                    self.started = true;
                    self.blksize = usize::from(o.blksize.unwrap_or(512));
                    self.window = o.windowsize.unwrap_or(1);
                }
                if self.expected == 0 {
                    self.ack_last(net, now);
                }
            }
            Packet::Data { block, data } => {
                if !self.started {
                    self.started = true;
                }
                if let Some(f) = self.final_block {
                    if block == f {
                        self.send(net, now, Port::Transfer, &ack(f));
                    }
                    return;
                }
                assert!(data.len() <= self.blksize, "DATA over the block size");
                if block == wire_block(self.expected) {
                    self.got.extend_from_slice(data);
                    assert!(
                        self.want.starts_with(&self.got),
                        "received bytes differ from the file"
                    );
                    self.expected += 1;
                    self.in_window += 1;
                    self.timeouts = 0;
                    if data.len() < self.blksize {
                        self.final_block = Some(block);
                        self.outcome = Outcome::Done;
                        self.send(net, now, Port::Transfer, &ack(block));
                    } else if self.in_window >= self.window {
                        self.ack_last(net, now);
                    }
                } else if self.expected > 0 || self.asked_options {
                    self.ack_last(net, now);
                }
            }
            other => panic!("server sent {other:?} to a reader"),
        }
    }

    fn on_timeout(&mut self, net: &mut Net, now: Millis) {
        if self.outcome != Outcome::Running {
            self.deadline = Millis(u64::MAX);
            return;
        }
        self.timeouts += 1;
        if self.timeouts > CLIENT_RETRIES {
            self.outcome = Outcome::Failed;
            self.deadline = Millis(u64::MAX);
            return;
        }
        if self.started {
            self.ack_last(net, now);
        } else {
            self.start(net, now);
        }
    }
}

/// Runs clients against one server until every client is done or failed and the server has
/// forgotten every transfer.
fn simulate(h: &mut Harness, clients: &mut [SimClient], net: &mut Net) {
    let begin = h.now;
    for c in clients.iter_mut() {
        c.start(net, h.now);
    }
    for _ in 0..2_000_000 {
        let next = [
            net.next_at(),
            h.server.next_deadline(),
            clients
                .iter()
                .filter(|c| c.outcome == Outcome::Running)
                .map(|c| c.deadline)
                .min(),
        ]
        .into_iter()
        .flatten()
        .min();
        let Some(next) = next else { break };
        assert!(next.since(begin) < 3_600_000, "an hour of virtual time");
        h.now = h.now.max(next);
        let now = h.now;
        while let Some(f) = net.take_due(now) {
            if f.to_server {
                for s in h.deliver(f.port, f.src, &f.bytes) {
                    net.send(
                        now,
                        false,
                        Port::Transfer,
                        SocketAddrV4::new(s.from, 69),
                        s.to,
                        &s.bytes,
                    );
                }
            } else if let Some(c) = clients.iter_mut().find(|c| c.addr == f.dst) {
                c.receive(net, now, &f.bytes);
            }
        }
        for s in h.advance(0) {
            net.send(
                now,
                false,
                Port::Transfer,
                SocketAddrV4::new(s.from, 69),
                s.to,
                &s.bytes,
            );
        }
        for c in clients.iter_mut() {
            if c.outcome == Outcome::Running && c.deadline <= now {
                c.on_timeout(net, now);
            }
        }
    }
    assert!(clients.iter().all(|c| c.outcome != Outcome::Running));
    assert_eq!(h.server.transfers(), 0, "every transfer ends");
}

fn options_strategy() -> impl Strategy<Value = Options> {
    (
        prop::option::of(8u16..1600),
        prop::option::of(1u8..3),
        prop::option::of(Just(0u64)),
        prop::option::of(1u16..9),
    )
        .prop_map(|(blksize, timeout, tsize, windowsize)| Options {
            blksize,
            timeout,
            tsize,
            windowsize,
        })
}

fn file_strategy() -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(
        prop_oneof![8 => any::<u8>(), 1 => Just(b'\n'), 1 => Just(b'\r')],
        0..4000,
    )
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, ..ProptestConfig::default() })]

    #[test]
    fn lossy_networks_deliver_the_exact_file_or_give_up_cleanly(
        seed: u64,
        loss in 0u8..30,
        dup in 0u8..20,
        max_delay in 0u64..80,
        files in prop::collection::vec((file_strategy(), any::<bool>(), options_strategy()), 1..4),
    ) {
        let mut h = Harness::new(ServerConfig { max_windowsize: 8, ..ServerConfig::default() });
        let mut clients = Vec::new();
        for (i, (file, netascii, options)) in files.iter().enumerate() {
            let name = format!("f{i}");
            h.files.insert(name.clone(), file.clone().into());
            let mode = if *netascii { Mode::Netascii } else { Mode::Octet };
            clients.push(SimClient::new(peer(i as u16), &name, file, mode, *options));
        }
        let mut net = Net { rng: Rng(seed), loss, dup, max_delay, seq: 0, flights: Vec::new() };
        simulate(&mut h, &mut clients, &mut net);
        for c in &clients {
            if c.outcome == Outcome::Done {
                prop_assert_eq!(&c.got, &c.want);
            }
        }
        if loss == 0 {
            prop_assert!(clients.iter().all(|c| c.outcome == Outcome::Done));
        }
    }
}

#[test]
fn a_clean_network_with_reordering_completes_every_transfer() {
    for seed in 0..40 {
        let mut h = Harness::new(ServerConfig::default());
        let mut clients = Vec::new();
        for i in 0..5u16 {
            let file: Vec<u8> = (0..(1000 + 997 * u32::from(i))).map(|x| x as u8).collect();
            let name = format!("f{i}");
            h.files.insert(name.clone(), file.clone().into());
            let options = Options {
                blksize: Some(100 + i * 50),
                windowsize: Some(1 + i),
                ..Options::default()
            };
            clients.push(SimClient::new(peer(i), &name, &file, Mode::Octet, options));
        }
        let mut net = Net {
            rng: Rng(seed),
            loss: 0,
            dup: 10,
            max_delay: 30,
            seq: 0,
            flights: Vec::new(),
        };
        simulate(&mut h, &mut clients, &mut net);
        assert!(
            clients
                .iter()
                .all(|c| c.outcome == Outcome::Done && c.got == c.want)
        );
    }
}

/// One step of arbitrary traffic.
#[derive(Debug, Clone)]
enum Step {
    Raw(Vec<u8>),
    Rrq(u8, Options, bool),
    Wrq(Options),
    Ack(u16),
    Data(u16, usize),
    Error(u16),
}

fn step_strategy() -> impl Strategy<Value = Step> {
    prop_oneof![
        2 => prop::collection::vec(any::<u8>(), 0..600).prop_map(Step::Raw),
        3 => (0u8..4, options_strategy(), any::<bool>()).prop_map(|(f, o, n)| Step::Rrq(f, o, n)),
        1 => options_strategy().prop_map(Step::Wrq),
        5 => any::<u16>().prop_map(|b| Step::Ack(b % 40)),
        2 => (0u16..40, 0usize..700).prop_map(|(b, n)| Step::Data(b, n)),
        1 => any::<u16>().prop_map(Step::Error),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_traffic_never_panics_and_the_table_stays_bounded(
        allow_write: bool,
        steps in prop::collection::vec((0u16..6, any::<bool>(), 0u64..3000, step_strategy()), 0..200),
    ) {
        let config = ServerConfig {
            max_transfers: 3,
            allow_write,
            max_write_size: 2000,
            ..ServerConfig::default()
        };
        let mut h = Harness::new(config)
            .with_file("f0", vec![])
            .with_file("f1", (0..3000u32).map(|x| x as u8).collect())
            .with_file("f2", b"text\nwith\rline ends\n".to_vec());
        for (who, listen, advance, step) in steps {
            let bytes = match step {
                Step::Raw(b) => b,
                Step::Rrq(f, o, netascii) => {
                    let mode = if netascii { Mode::Netascii } else { Mode::Octet };
                    rrq_bytes(&format!("f{f}"), mode, o)
                }
                Step::Wrq(o) => {
                    let mut b = rrq_bytes("up", Mode::Octet, o);
                    b[1] = 2;
                    b
                }
                Step::Ack(b) => ack(b).to_vec(),
                Step::Data(b, n) => [&data_header(b)[..], &vec![7u8; n]].concat(),
                Step::Error(c) => [&[0u8, 5][..], &c.to_be_bytes(), b"x\0"].concat(),
            };
            let port = if listen { Port::Listen } else { Port::Transfer };
            let mut sent = h.deliver(port, peer(who), &bytes);
            h.events.clear();
            sent.extend(h.advance(advance));
            prop_assert!(h.server.transfers() <= 3);
            for s in &sent {
                let p = Packet::parse(&s.bytes);
                prop_assert!(p.is_ok(), "server sent an unparseable packet {:?}", s.bytes);
                if let Ok(Packet::Data { data, .. }) = p {
                    prop_assert!(data.len() <= 1468);
                }
                prop_assert_eq!(s.from, SERVER_IP);
            }
        }
        // Given time, everything is forgotten.
        for _ in 0..10 {
            h.advance(60_000);
        }
        prop_assert_eq!(h.server.transfers(), 0);
        prop_assert_eq!(h.server.next_deadline(), None);
    }
}
