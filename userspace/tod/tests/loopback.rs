//! The server on loopback with port 0: UDP and TCP answers within a second of the clock,
//! reflection-prone sources ignored, many connections, and a prompt shutdown.

use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddrV4, TcpStream, UdpSocket};
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use provd_tod::{TodHandle, TodSettings, spawn, unix_from_time_value};

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

fn serve() -> TodHandle {
    spawn(
        TodSettings {
            bind: Ipv4Addr::LOCALHOST,
            port: 0,
            ..TodSettings::default()
        },
        Arc::new(AtomicBool::new(false)),
    )
    .unwrap()
}

fn eventually(mut f: impl FnMut() -> bool) -> bool {
    let until = Instant::now() + Duration::from_secs(5);
    while Instant::now() < until {
        if f() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    f()
}

fn assert_now(answer: [u8; 4]) {
    let t = unix_from_time_value(answer, now());
    assert!(t.abs_diff(now()) <= 1, "answer {t} vs clock {}", now());
}

fn udp_ask(client: &UdpSocket, to: SocketAddrV4, request: &[u8]) -> [u8; 4] {
    client.send_to(request, to).unwrap();
    let mut buf = [0u8; 16];
    let (n, from) = client.recv_from(&mut buf).unwrap();
    assert_eq!(from, to.into());
    assert_eq!(n, 4, "the answer is exactly 4 bytes");
    [buf[0], buf[1], buf[2], buf[3]]
}

fn tcp_ask(to: SocketAddrV4) -> Vec<u8> {
    let mut s = TcpStream::connect(to).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut got = Vec::new();
    s.read_to_end(&mut got).unwrap();
    got
}

#[test]
fn udp_answers_any_datagram_with_the_time() {
    let h = serve();
    let to = h.udp_addr().unwrap();
    let client = UdpSocket::bind("127.0.0.1:0").unwrap();
    client
        .set_read_timeout(Some(Duration::from_secs(2)))
        .unwrap();
    // RFC 868 clients send an empty datagram; others send junk; both get the time.
    assert_now(udp_ask(&client, to, b""));
    assert_now(udp_ask(&client, to, &[0xaa; 48]));
    assert_now(udp_ask(&client, to, &[0x55; 1400]));
    // Counted just after the send: the client may read its answer first.
    assert!(eventually(|| h.counters().udp_replies == 3));
    let c = h.counters();
    assert_eq!((c.udp_requests, c.udp_ignored), (3, 0));
    h.shutdown();
    h.join().unwrap();
}

#[test]
fn tcp_writes_four_bytes_and_closes() {
    let h = serve();
    let to = h.tcp_addr().unwrap();
    assert_eq!(
        to.port(),
        h.udp_addr().unwrap().port(),
        "one port number for both"
    );
    let got = tcp_ask(to);
    assert_eq!(got.len(), 4);
    assert_now([got[0], got[1], got[2], got[3]]);
    // A client that talks first still gets its answer (no reset before it reads).
    let mut s = TcpStream::connect(to).unwrap();
    s.write_all(b"hello, time?").unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut got = Vec::new();
    s.read_to_end(&mut got).unwrap();
    assert_eq!(got.len(), 4);
    assert!(eventually(|| h.counters().tcp_replies == 2));
    h.shutdown();
    h.join().unwrap();
}

#[test]
fn many_connections_at_once_are_all_answered() {
    let h = serve();
    let to = h.tcp_addr().unwrap();
    let threads: Vec<_> = (0..8)
        .map(|_| {
            std::thread::spawn(move || {
                for _ in 0..50 {
                    assert_eq!(tcp_ask(to).len(), 4);
                }
            })
        })
        .collect();
    // Connections opened together before any is read: the backlog holds them.
    let held: Vec<TcpStream> = (0..100).map(|_| TcpStream::connect(to).unwrap()).collect();
    for t in threads {
        t.join().unwrap();
    }
    for mut s in held {
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let mut got = Vec::new();
        s.read_to_end(&mut got).unwrap();
        assert_eq!(got.len(), 4);
    }
    assert!(eventually(|| h.counters().tcp_replies == 500));
    assert_eq!(h.counters().tcp_write_errors, 0);
    let started = Instant::now();
    h.shutdown();
    h.join().unwrap();
    assert!(started.elapsed() < Duration::from_secs(1));
}

#[test]
fn sources_that_could_loop_are_not_answered() {
    let h = serve();
    let to = h.udp_addr().unwrap();
    // Port 7 (echo) needs root to bind; skip that part otherwise.
    match UdpSocket::bind("127.0.0.1:7") {
        Ok(echo) => {
            echo.set_read_timeout(Some(Duration::from_millis(300)))
                .unwrap();
            echo.send_to(b"", to).unwrap();
            let mut buf = [0u8; 8];
            assert!(
                echo.recv_from(&mut buf).is_err(),
                "no answer to the echo port"
            );
            assert!(eventually(|| h.counters().udp_ignored == 1));
            assert_eq!(h.counters().udp_replies, 0);
        }
        Err(e) => eprintln!("note: cannot bind UDP port 7 ({e}); skipping the echo-port check"),
    }
    h.shutdown();
    h.join().unwrap();
}

#[test]
fn udp_only_and_tcp_only_and_neither() {
    let flag = Arc::new(AtomicBool::new(false));
    let settings = TodSettings {
        bind: Ipv4Addr::LOCALHOST,
        port: 0,
        ..TodSettings::default()
    };
    let h = spawn(
        TodSettings {
            tcp: false,
            ..settings.clone()
        },
        Arc::clone(&flag),
    )
    .unwrap();
    assert!(h.udp_addr().is_some() && h.tcp_addr().is_none());
    h.shutdown();
    h.join().unwrap();
    let h = spawn(
        TodSettings {
            udp: false,
            ..settings.clone()
        },
        Arc::new(AtomicBool::new(false)),
    )
    .unwrap();
    assert_eq!(tcp_ask(h.tcp_addr().unwrap()).len(), 4);
    h.shutdown();
    h.join().unwrap();
    let neither = TodSettings {
        udp: false,
        tcp: false,
        ..settings
    };
    assert!(spawn(neither, flag).is_err());
}

#[test]
fn the_tap_hears_of_each_answer_and_who_got_it() {
    let h = serve();
    let heard = Arc::new(std::sync::Mutex::new(Vec::new()));
    let sink = Arc::clone(&heard);
    h.set_tap(Box::new(move |ip, proto| {
        sink.lock().unwrap().push((ip, proto));
    }));
    let client = UdpSocket::bind("127.0.0.1:0").unwrap();
    client
        .set_read_timeout(Some(Duration::from_secs(2)))
        .unwrap();
    assert_now(udp_ask(&client, h.udp_addr().unwrap(), b""));
    assert_eq!(tcp_ask(h.tcp_addr().unwrap()).len(), 4);
    assert!(
        eventually(|| heard.lock().unwrap().len() == 2),
        "{:?}",
        heard.lock().unwrap()
    );
    let mut got = heard.lock().unwrap().clone();
    got.sort();
    assert_eq!(
        got,
        [(Ipv4Addr::LOCALHOST, "tcp"), (Ipv4Addr::LOCALHOST, "udp")]
    );
}
