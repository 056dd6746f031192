//! The TFTP server state machine under arbitrary traffic. The input is a sequence of records
//! `[ctl: u8][dt: u16 LE][len: u16 LE][datagram]`: `ctl` bits 0-2 pick one of 8 peers, bit 3 the
//! port (listen or transfer), bits 4-5 how a read is answered (one of three files or a
//! refusal), bit 6 whether a path MTU is reported; time advances by `dt` ms before the datagram,
//! then the due timers run. The first input byte's low bit allows writes.
//!
//! Checked after every step: no panic; every datagram received parses, re-encodes and parses
//! back equal; the table never exceeds `max_transfers` and the timers agree with it; every
//! datagram sent parses, leaves from the address the peer asked, and every DATA payload is
//! exactly the bytes of the served file at that block (netascii-converted where asked); an
//! upload never exceeds `max_write_size`; and once time runs on, every transfer is forgotten.

#![no_main]

use std::collections::HashMap;
use std::net::{Ipv4Addr, SocketAddrV4};

use libfuzzer_sys::fuzz_target;
use provd_tftp::{
    Event, FileContent, Incoming, Millis, Mode, Packet, Port, Refusal, Server, ServerConfig,
    Transmit,
};

const LOCAL: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 1);
const MAX_TRANSFERS: usize = 4;
const MAX_WRITE: usize = 3000;

fn files() -> [Vec<u8>; 3] {
    [
        Vec::new(),
        (0..3000u32).map(|i| (i * 31 + i / 7) as u8).collect(),
        b"line\nbare\rcr\r\n".repeat(40),
    ]
}

fn netascii(src: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(src.len() * 2);
    for &b in src {
        match b {
            b'\n' => out.extend_from_slice(b"\r\n"),
            b'\r' => out.extend_from_slice(b"\r\0"),
            _ => out.push(b),
        }
    }
    out
}

/// What a peer is being sent: the file as it goes on the wire and the block size in force.
struct Expect {
    wire: Vec<u8>,
    blksize: usize,
}

fn check_sent(t: &Transmit<'_>, expect: &mut HashMap<SocketAddrV4, Expect>) {
    let bytes = t.to_vec();
    assert!(bytes.len() <= 1468 + 4, "datagram over max_blksize: {}", bytes.len());
    assert_eq!(t.from, LOCAL, "replies leave from the address asked");
    let packet = Packet::parse(&bytes).expect("the server sent an unparseable datagram");
    match packet {
        Packet::Oack(o) => {
            if let (Some(e), Some(b)) = (expect.get_mut(&t.to), o.blksize) {
                e.blksize = usize::from(b);
            }
        }
        Packet::Data { block, data } => {
            let e = expect.get(&t.to).expect("DATA to a peer that was never served a file");
            assert!(data.len() <= e.blksize, "DATA over the block size");
            // The files are far below 65535 blocks: no rollover ambiguity here.
            let start = usize::from(block.wrapping_sub(1)) * e.blksize;
            let end = (start + e.blksize).min(e.wire.len());
            assert!(start <= e.wire.len(), "DATA past the end of the file");
            assert_eq!(data, &e.wire[start..end], "DATA {block} is not the file's bytes");
        }
        Packet::Ack { .. } | Packet::Error { .. } => {}
        Packet::Rrq(_) | Packet::Wrq(_) => panic!("the server sent a request"),
    }
}

fuzz_target!(|input: &[u8]| {
    let Some((&first, mut rest)) = input.split_first() else { return };
    let config = ServerConfig {
        max_transfers: MAX_TRANSFERS,
        allow_write: first & 1 == 1,
        max_write_size: MAX_WRITE,
        ..ServerConfig::default()
    };
    let mut server = Server::new(config).unwrap();
    let files = files().map(FileContent::from);
    let mut expect: HashMap<SocketAddrV4, Expect> = HashMap::new();
    let mut now = Millis(0);
    while let Some((head, tail)) = rest.split_first_chunk::<5>() {
        let [ctl, dt0, dt1, len0, len1] = *head;
        let len = usize::from(u16::from_le_bytes([len0, len1])).min(tail.len());
        let (datagram, tail) = tail.split_at(len);
        rest = tail;

        // Round trip: what parses encodes, and what encodes parses back equal.
        if let Ok(p) = Packet::parse(datagram) {
            let mut buf = vec![0u8; datagram.len() + 16];
            let n = p.encode(&mut buf).expect("a parsed packet encodes");
            assert_eq!(Packet::parse(&buf[..n]), Ok(p));
        }

        let peer = SocketAddrV4::new(Ipv4Addr::new(198, 51, 100, 1 + (ctl & 7)), 40000);
        let port = if ctl & 8 == 0 { Port::Listen } else { Port::Transfer };
        now = now.plus(u64::from(u16::from_le_bytes([dt0, dt1])));
        let mut out = |t: Transmit<'_>| check_sent(&t, &mut expect);
        server.poll_timeouts(now, &mut out);
        let incoming = Incoming {
            port,
            local: LOCAL,
            peer,
            path_mtu: (ctl & 64 != 0).then_some(700),
            bytes: datagram,
        };
        let mut pending = None;
        let mut out = |t: Transmit<'_>| check_sent(&t, &mut expect);
        match server.handle(now, incoming, &mut out) {
            Some(Event::Read(req)) => pending = Some((req.id, req.mode)),
            Some(Event::Write(req)) => {
                assert!(server.respond_write(req.id, Ok(()), now, &mut out));
            }
            Some(Event::WriteComplete { data, .. }) => assert!(data.len() <= MAX_WRITE),
            Some(Event::Dropped { .. }) | None => {}
            Some(_) => {}
        }
        if let Some((id, mode)) = pending {
            let pick = usize::from((ctl >> 4) & 3);
            let answer = match files.get(pick) {
                Some(f) => {
                    let wire = match mode {
                        Mode::Octet => f.to_vec(),
                        Mode::Netascii => netascii(f),
                    };
                    // 512 unless the OACK that follows grants another block size.
                    expect.insert(id.peer, Expect { wire, blksize: 512 });
                    Ok(f.clone())
                }
                None => Err(Refusal::not_found()),
            };
            let mut out = |t: Transmit<'_>| check_sent(&t, &mut expect);
            assert!(server.respond(id, answer, now, &mut out));
        }
        assert!(server.transfers() <= MAX_TRANSFERS);
    }
    // Given time, every transfer ends (retries run out, dallies expire).
    for _ in 0..12 {
        now = now.plus(60_000);
        server.poll_timeouts(now, &mut |t: Transmit<'_>| check_sent(&t, &mut expect));
    }
    assert_eq!(server.transfers(), 0);
    assert_eq!(server.next_deadline(), None);
});
