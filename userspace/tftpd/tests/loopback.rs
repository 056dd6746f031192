//! The server on loopback against the test client of `common`: plain and negotiated reads,
//! windows, refusals (path tricks, unknown names, writes, strangers on the transfer port), many
//! transfers at once, and a prompt shutdown.

mod common;

use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::os::unix::fs::symlink;
use std::time::{Duration, Instant};

use common::{Failure, bytes, eventually, exchange, fetch, serve, serve_on, serve_with};
use provd_tftp::{Mode, Options, Packet, ServerConfig};

fn plain() -> Options {
    Options::default()
}

#[test]
fn plain_reads_return_the_exact_bytes() {
    let odd = bytes(5000, 1);
    let exact = bytes(1024, 2);
    let s = serve(
        &[("cm/odd.cfg", &odd), ("exact.bin", &exact), ("empty", b"")],
        1,
    );
    assert_eq!(
        fetch(s.addr(), "cm/odd.cfg", Mode::Octet, plain())
            .unwrap()
            .data,
        odd
    );
    assert_eq!(
        fetch(s.addr(), "/cm/odd.cfg", Mode::Octet, plain())
            .unwrap()
            .data,
        odd
    );
    assert_eq!(
        fetch(s.addr(), "exact.bin", Mode::Octet, plain())
            .unwrap()
            .data,
        exact
    );
    assert_eq!(
        fetch(s.addr(), "empty", Mode::Octet, plain()).unwrap().data,
        b""
    );
    assert!(eventually(|| s.handle.counters().completed == 4));
    assert_eq!(s.handle.counters().rrq, 4);
    // 10 + 10 + 3 + 1 DATA, each ACKed.
    assert_eq!(s.handle.io_counters().datagrams_sent, 24);
    assert_eq!(s.handle.io_counters().datagrams_received, 4 + 24);
}

#[test]
fn replies_come_from_a_transfer_port_and_the_address_asked() {
    let file = bytes(700, 3);
    let s = serve_on(
        &[("f", &file)],
        1,
        Ipv4Addr::UNSPECIFIED,
        ServerConfig::default(),
    );
    let asked = SocketAddrV4::new(Ipv4Addr::new(127, 0, 0, 2), s.addr().port());
    let mut ports = std::collections::HashSet::new();
    for _ in 0..8 {
        let got = fetch(asked, "f", Mode::Octet, plain()).unwrap();
        assert_eq!(got.data, file);
        let from = got.server.unwrap();
        assert_eq!(from.ip(), Ipv4Addr::new(127, 0, 0, 2));
        // Each transfer has its own port (RFC 1350's TID), neither 69's nor the shared one.
        assert_ne!(from.port(), s.handle.transfer_ports()[0]);
        assert_ne!(from.port(), s.addr().port());
        ports.insert(from.port());
    }
    // The kernel picks them at random from the ephemeral range: 8 transfers, (almost surely)
    // 8 ports, not a sequence.
    assert!(ports.len() >= 7, "ports {ports:?}");
}

#[test]
fn options_are_negotiated_and_windows_deliver_exact_bytes() {
    let firmware = bytes(3 << 20, 4);
    let s = serve(&[("fw/image.bin", &firmware)], 2);
    let ask = Options {
        blksize: Some(1428),
        tsize: Some(0),
        timeout: Some(2),
        windowsize: Some(16),
    };
    let got = fetch(s.addr(), "fw/image.bin", Mode::Octet, ask).unwrap();
    assert_eq!(
        got.oack,
        Some(Options {
            tsize: Some(firmware.len() as u64),
            ..ask
        })
    );
    assert!(got.data == firmware, "firmware differs");
    // Asking for more than the server grants: lowered, as RFC 2348/7440 allow.
    let greedy = Options {
        blksize: Some(65464),
        windowsize: Some(65535),
        ..Options::default()
    };
    let got = fetch(s.addr(), "fw/image.bin", Mode::Octet, greedy).unwrap();
    assert_eq!(got.oack.unwrap().blksize, Some(1468));
    assert_eq!(got.oack.unwrap().windowsize, Some(64));
    assert!(got.data == firmware, "firmware differs");
}

#[test]
fn netascii_converts_line_ends_on_the_wire() {
    let s = serve(&[("t.txt", b"a\nb\rc")], 1);
    let ask = Options {
        tsize: Some(0),
        ..Options::default()
    };
    let got = fetch(s.addr(), "t.txt", Mode::Netascii, ask).unwrap();
    assert_eq!(got.data, b"a\r\nb\r\0c");
    assert_eq!(got.oack.unwrap().tsize, Some(7));
}

#[test]
fn path_tricks_are_refused_and_nothing_outside_the_root_is_served() {
    let outside = tempfile::tempdir().unwrap();
    std::fs::write(outside.path().join("secret"), b"s3cret").unwrap();
    let s = serve(&[("sub/inside", b"ok")], 1);
    symlink(outside.path().join("secret"), s.root.path().join("escape")).unwrap();
    symlink(outside.path(), s.root.path().join("outdir")).unwrap();
    let refused = |name: &str| match fetch(s.addr(), name, Mode::Octet, plain()) {
        Err(Failure::Error(code, msg)) => (code, msg),
        other => panic!("{name:?}: {other:?}"),
    };
    for name in [
        "../etc/passwd",
        "/../etc/passwd",
        "../../../../../../etc/passwd",
        "sub/../../etc/passwd",
        "..\\..\\etc\\passwd",
        "escape",
        "outdir/secret",
    ] {
        let (code, msg) = refused(name);
        assert!(code == 1 || code == 2, "{name:?}: ERROR {code} {msg}");
    }
    // `%2e%2e` is just a file name, and there is none such.
    assert_eq!(refused("%2e%2e/etc/passwd").0, 1);
    assert_eq!(
        refused("/etc/passwd").0,
        1,
        "absolute names are relative to the root"
    );
    assert_eq!(
        fetch(s.addr(), "sub/./inside", Mode::Octet, plain())
            .unwrap()
            .data,
        b"ok"
    );
}

#[test]
fn an_unknown_file_is_error_1_file_not_found() {
    let s = serve(&[], 1);
    assert_eq!(
        fetch(s.addr(), "no/such/file.bin", Mode::Octet, plain()).unwrap_err(),
        Failure::Error(1, "File not found".into())
    );
}

#[test]
fn a_write_request_is_refused_with_error_2() {
    let s = serve(&[], 1);
    let (reply, _) = exchange(SocketAddr::V4(s.addr()), b"\x00\x02up.bin\x00octet\x00").unwrap();
    assert!(matches!(
        Packet::parse(&reply),
        Ok(Packet::Error { code, .. }) if code.0 == 2
    ));
    assert!(!s.root.path().join("up.bin").exists());
}

#[test]
fn a_stranger_on_the_transfer_port_gets_error_5() {
    let s = serve(&[], 1);
    let transfer = SocketAddr::from((Ipv4Addr::LOCALHOST, s.handle.transfer_ports()[0]));
    let (reply, from) = exchange(transfer, &provd_tftp::ack(1)).unwrap();
    assert_eq!(from, transfer);
    assert!(matches!(
        Packet::parse(&reply),
        Ok(Packet::Error { code, .. }) if code.0 == 5
    ));
    // Garbage on port 69 is dropped silently (and logged, rate-limited).
    assert_eq!(
        exchange(SocketAddr::V4(s.addr()), b"\x00\x04\x00\x01"),
        None
    );
}

#[test]
fn two_hundred_concurrent_transfers_all_complete_exactly() {
    let files: Vec<(String, Vec<u8>)> = (0..10)
        .map(|i| (format!("f{i}"), bytes(1000 + i * 37_000, i as u64)))
        .collect();
    let named: Vec<(&str, &[u8])> = files
        .iter()
        .map(|(n, c)| (n.as_str(), c.as_slice()))
        .collect();
    let s = serve(&named, 4);
    let addr = s.addr();
    let threads: Vec<_> = (0..200)
        .map(|i| {
            let (name, want) = files[i % files.len()].clone();
            std::thread::spawn(move || {
                let options = match i % 3 {
                    0 => Options::default(),
                    1 => Options {
                        blksize: Some(1428),
                        tsize: Some(0),
                        ..Options::default()
                    },
                    _ => Options {
                        blksize: Some(1024),
                        windowsize: Some(8),
                        ..Options::default()
                    },
                };
                let got = fetch(addr, &name, Mode::Octet, options).expect("fetch");
                assert!(got.data == want, "transfer {i} of {name}: wrong bytes");
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    // Every client has its file; the server counts a transfer complete at its final ACK.
    let done = eventually(|| s.handle.counters().completed == 200);
    let c = s.handle.counters();
    assert!(done, "not every transfer counted complete: {c:?}");
    assert_eq!(c.rrq, 200);
    assert_eq!(c.completed, 200);
    assert_eq!(c.gave_up, 0);
}

#[test]
fn workers_stop_promptly_on_shutdown() {
    use provd_tftpd::{StaticRoot, TftpSettings};
    use std::sync::{Arc, atomic::AtomicBool, atomic::Ordering};
    let dir = tempfile::tempdir().unwrap();
    let flag = Arc::new(AtomicBool::new(false));
    let settings = TftpSettings {
        bind: Ipv4Addr::LOCALHOST,
        port: 0,
        workers: 3,
        ..TftpSettings::default()
    };
    let source = Arc::new(StaticRoot::new(dir.path()).unwrap());
    let handle = provd_tftpd::spawn(settings, source, flag.clone()).unwrap();
    std::thread::sleep(Duration::from_millis(100));
    let started = Instant::now();
    flag.store(true, Ordering::Relaxed);
    handle.join().unwrap();
    let took = started.elapsed();
    assert!(took < Duration::from_millis(150), "shutdown took {took:?}");
}

#[test]
fn bad_settings_are_refused_before_any_thread_starts() {
    use provd_tftpd::{StaticRoot, TftpSettings};
    use std::sync::{Arc, atomic::AtomicBool};
    let dir = tempfile::tempdir().unwrap();
    let source = Arc::new(StaticRoot::new(dir.path()).unwrap());
    let flag = Arc::new(AtomicBool::new(false));
    let base = TftpSettings {
        bind: Ipv4Addr::LOCALHOST,
        port: 0,
        ..TftpSettings::default()
    };
    let try_spawn = |settings: TftpSettings| {
        provd_tftpd::spawn(settings, source.clone(), flag.clone())
            .map(|_| ())
            .unwrap_err()
            .kind()
    };
    let zero_workers = TftpSettings {
        workers: 0,
        ..base.clone()
    };
    assert_eq!(try_spawn(zero_workers), std::io::ErrorKind::InvalidInput);
    let writes = TftpSettings {
        server: ServerConfig {
            allow_write: true,
            ..ServerConfig::default()
        },
        ..base.clone()
    };
    assert_eq!(
        try_spawn(writes),
        std::io::ErrorKind::InvalidInput,
        "allow_write without an upload sink"
    );
    // A port already taken (without SO_REUSEPORT) fails in spawn, not in a thread.
    let taken = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let busy = TftpSettings {
        port: taken.local_addr().unwrap().port(),
        ..base
    };
    assert_eq!(try_spawn(busy), std::io::ErrorKind::AddrInUse);
}

#[test]
fn uploads_when_configured_land_as_new_files_under_the_root_only() {
    use provd_tftpd::{StaticRoot, TftpSettings};
    use std::net::UdpSocket;
    use std::sync::{Arc, atomic::AtomicBool};
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("logs")).unwrap();
    std::fs::write(dir.path().join("taken.bin"), b"old").unwrap();
    let root = Arc::new(StaticRoot::new(dir.path()).unwrap());
    let flag = Arc::new(AtomicBool::new(false));
    let settings = TftpSettings {
        bind: Ipv4Addr::LOCALHOST,
        port: 0,
        workers: 1,
        server: ServerConfig {
            allow_write: true,
            ..ServerConfig::default()
        },
        ..TftpSettings::default()
    };
    let h =
        provd_tftpd::spawn_with_uploads(settings, root.clone(), Some(root.clone()), flag.clone())
            .unwrap();
    let server = SocketAddr::V4(h.local_addr());
    let error_code = |reply: &[u8]| match Packet::parse(reply) {
        Ok(Packet::Error { code, .. }) => Some(code.0),
        _ => None,
    };
    // Refusals come back on the WRQ, before any data.
    let (reply, _) = exchange(server, b"\x00\x02taken.bin\x00octet\x00").unwrap();
    assert_eq!(
        error_code(&reply),
        Some(6),
        "an existing file is never overwritten"
    );
    let (reply, _) = exchange(server, b"\x00\x02../out.bin\x00octet\x00").unwrap();
    assert_eq!(error_code(&reply), Some(2));
    let (reply, _) = exchange(server, b"\x00\x02nodir/x.bin\x00octet\x00").unwrap();
    assert!(
        error_code(&reply).is_some(),
        "missing directories are not created"
    );

    // An accepted upload: ACK 0 from the transfer port, one short DATA block, ACK 1.
    let client = UdpSocket::bind("127.0.0.1:0").unwrap();
    client
        .set_read_timeout(Some(Duration::from_secs(2)))
        .unwrap();
    client
        .send_to(b"\x00\x02logs/cm.log\x00octet\x00", server)
        .unwrap();
    let mut buf = [0u8; 600];
    let (n, from) = client.recv_from(&mut buf).unwrap();
    assert_eq!(&buf[..n], b"\x00\x04\x00\x00", "ACK 0");
    let mut data = b"\x00\x03\x00\x01".to_vec();
    data.extend_from_slice(b"modem log line\n");
    client.send_to(&data, from).unwrap();
    let (n, _) = client.recv_from(&mut buf).unwrap();
    assert_eq!(&buf[..n], b"\x00\x04\x00\x01", "ACK 1");
    let stored = dir.path().join("logs/cm.log");
    assert!(eventually(
        || std::fs::read(&stored).is_ok_and(|b| b == b"modem log line\n")
    ));
    assert_eq!(std::fs::read(dir.path().join("taken.bin")).unwrap(), b"old");
    flag.store(true, std::sync::atomic::Ordering::Relaxed);
    h.join().unwrap();
}

/// A one-worker server with a single socket for transfers' own ports, serving `small.cfg` and
/// `large.bin`.
fn one_transfer_socket(small: &[u8], large: &[u8]) -> common::Running {
    serve_with(
        &[("small.cfg", small), ("large.bin", large)],
        provd_tftpd::TftpSettings {
            bind: Ipv4Addr::LOCALHOST,
            port: 0,
            workers: 1,
            max_transfer_sockets: Some(1),
            ..provd_tftpd::TftpSettings::default()
        },
    )
}

/// A client that asks for `large.bin`, reads DATA 1 and does not acknowledge it, so its
/// transfer holds the server's one socket. It has an address of its own (a source holding
/// several unproven transfers gives one up). Returns it and its transfer's port.
fn hold_the_socket(server: SocketAddrV4) -> (std::net::UdpSocket, SocketAddr) {
    let holder = std::net::UdpSocket::bind((Ipv4Addr::new(127, 0, 0, 2), 0)).unwrap();
    holder
        .set_read_timeout(Some(Duration::from_secs(2)))
        .unwrap();
    holder
        .send_to(b"\x00\x01large.bin\x00octet\x00", server)
        .unwrap();
    let mut buf = [0u8; 600];
    let (_, transfer_port) = holder.recv_from(&mut buf).unwrap();
    assert_eq!(&buf[..4], &[0, 3, 0, 1], "DATA 1 to the holder");
    (holder, transfer_port)
}

/// A worker out of sockets for transfers' own ports (a boot storm past the descriptor limit):
/// a file that fits in one DATA is still served, from the shared transfer port, and counted; a
/// longer one is refused with ERROR 3 and counted, so its client retries.
#[test]
fn out_of_transfer_sockets_one_block_files_are_still_served() {
    let small = bytes(300, 1);
    let large = bytes(5_000, 2);
    let s = one_transfer_socket(&small, &large);
    let server = s.addr();
    let _holder = hold_the_socket(server);
    let got = fetch(server, "small.cfg", Mode::Octet, Options::default()).unwrap();
    assert_eq!(got.data, small);
    // The counters are published at the end of the worker's turn.
    assert!(eventually(
        || s.handle.io_counters().shared_port_fallbacks == 1
    ));
    let refused = fetch(server, "large.bin", Mode::Octet, Options::default());
    assert!(matches!(&refused, Err(Failure::Error(3, _))), "{refused:?}");
    assert!(eventually(|| s
        .handle
        .io_counters()
        .transfer_socket_failures
        == 1));
    assert_eq!(s.handle.io_counters().shared_port_fallbacks, 1);
}

/// Out of transfer sockets, a one-block file goes out from the shared port without taking a
/// socket from anyone: an unproven transfer past its grace (a device whose ACK is still on its
/// way, in a storm) keeps its socket and finishes.
#[test]
fn one_block_files_never_evict_a_transfer_for_its_socket() {
    let small = bytes(300, 1);
    let large = bytes(1_000, 2);
    let s = one_transfer_socket(&small, &large);
    let server = s.addr();
    let (holder, transfer_port) = hold_the_socket(server);
    let mut buf = [0u8; 600];
    // Past the grace an unproven transfer has before a newcomer may take its place (a third
    // of the default 3 s unproven_timeout).
    std::thread::sleep(Duration::from_millis(1_200));
    let got = fetch(server, "small.cfg", Mode::Octet, Options::default()).unwrap();
    assert_eq!(got.data, small);
    holder.send_to(b"\x00\x04\x00\x01", transfer_port).unwrap();
    // Retransmissions of DATA 1 sent while the holder slept come first.
    let (n, from) = loop {
        let (n, from) = holder.recv_from(&mut buf).unwrap();
        if buf[..4] != [0, 3, 0, 1] {
            break (n, from);
        }
    };
    assert_eq!(from, transfer_port);
    assert_eq!(
        &buf[..4],
        &[0, 3, 0, 2],
        "DATA 2, not ERROR 5: the holder's transfer lives"
    );
    assert_eq!(&buf[4..n], &large[512..]);
    assert!(eventually(
        || s.handle.io_counters().shared_port_fallbacks == 1
    ));
    assert_eq!(s.handle.counters().evicted_unproven, 0);
}

/// A request read after it waited longer than `max_request_age` is dropped unanswered and
/// counted: its client has sent it again or given up. (An age of zero makes every request
/// stale; at the default, the same request is served.)
#[test]
fn requests_that_waited_too_long_are_dropped_and_counted() {
    use provd_tftpd::TftpSettings;
    let file = bytes(100, 3);
    let settings = TftpSettings {
        bind: Ipv4Addr::LOCALHOST,
        port: 0,
        workers: 1,
        ..TftpSettings::default()
    };
    let stale = serve_with(
        &[("f.cfg", &file)],
        TftpSettings {
            max_request_age: Duration::ZERO,
            ..settings.clone()
        },
    );
    let sock = std::net::UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
    sock.set_read_timeout(Some(Duration::from_millis(500)))
        .unwrap();
    sock.send_to(b"\x00\x01f.cfg\x00octet\x00", stale.addr())
        .unwrap();
    let mut buf = [0u8; 600];
    assert!(sock.recv_from(&mut buf).is_err(), "no answer");
    assert!(eventually(|| stale.handle.io_counters().stale_requests == 1));
    assert_eq!(stale.handle.counters().rrq, 0, "never reached the server");
    let fresh = serve_with(&[("f.cfg", &file)], settings);
    let got = fetch(fresh.addr(), "f.cfg", Mode::Octet, Options::default()).unwrap();
    assert_eq!(got.data, file);
    assert_eq!(fresh.handle.io_counters().stale_requests, 0);
}
