//! The role as `provd serve` starts it from `[time]`: a burst of UDP requests on the running
//! server gets one answer each, counters by name, and a stop bounded by its grace.

use std::net::{Ipv4Addr, SocketAddr, UdpSocket};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use provd_role::Role;
use provd_tod::start;

fn config() -> provd_config::TimeSettings {
    provd_config::TimeSettings {
        bind: Ipv4Addr::LOCALHOST,
        port: 0,
        udp: true,
        tcp: true,
    }
}

fn counter(role: &dyn Role, name: &str) -> u64 {
    role.counters()
        .into_iter()
        .find(|(k, _)| k == name)
        .unwrap_or_else(|| panic!("no counter {name}"))
        .1
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

#[test]
fn a_burst_of_requests_gets_one_answer_each() {
    let shutdown = Arc::new(AtomicBool::new(false));
    let role = start(&config(), Arc::clone(&shutdown)).unwrap();
    assert_eq!(role.name(), "time");
    let (udp, tcp) = (role.udp_addr().unwrap(), role.tcp_addr().unwrap());
    assert_eq!(role.listening(), format!("udp={udp} tcp={tcp}"));

    // Eight clients send 25 requests each without waiting, then read: each gets its burst of
    // 10 (5/s more after that; the burst takes milliseconds), the rest are rate-limited.
    let clients: Vec<UdpSocket> = (1..=8u8)
        .map(|i| {
            let c = UdpSocket::bind((Ipv4Addr::new(127, 0, 2, i), 0)).unwrap();
            c.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
            c
        })
        .collect();
    for _ in 0..25 {
        for c in &clients {
            c.send_to(b"", udp).unwrap();
        }
    }
    let mut buf = [0u8; 16];
    let mut answers = 0u64;
    for (i, c) in clients.iter().enumerate() {
        for k in 0..10 {
            let (n, from) = c
                .recv_from(&mut buf)
                .unwrap_or_else(|e| panic!("client {i}, answer {k}: {e}"));
            assert_eq!((n, from), (4, SocketAddr::V4(udp)));
        }
        answers += 10;
        c.set_read_timeout(Some(Duration::from_millis(100)))
            .unwrap();
        while c.recv_from(&mut buf).is_ok() {
            answers += 1;
        }
    }
    assert!(
        answers <= 8 * 12,
        "{answers} answers: the per-source limit did not hold"
    );
    assert!(eventually(|| counter(&role, "udp_requests") == 200));
    assert!(eventually(|| counter(&role, "udp_replies") == answers));
    assert_eq!(counter(&role, "udp_rate_limited"), 200 - answers);
    assert_eq!(counter(&role, "udp_ignored"), 0);
    let mut e = provd_role::metrics::Exposition::new();
    role.metrics(&mut e);
    assert!(e.refused().is_empty(), "{:?}", e.refused());
    let text = e.finish();
    let replies = format!("provd_time_udp_replies_total {answers}");
    let limited = format!("provd_time_udp_rate_limited_total {}", 200 - answers);
    for line in [
        "# TYPE provd_time_udp_replies_total counter",
        replies.as_str(),
        limited.as_str(),
    ] {
        assert!(text.lines().any(|l| l == line), "no {line} in\n{text}");
    }
    assert!(!role.finished());

    let started = Instant::now();
    shutdown.store(true, Ordering::Relaxed);
    Box::new(role).stop(Duration::from_secs(2)).unwrap();
    assert!(started.elapsed() < Duration::from_secs(1));
}

#[test]
fn stop_gives_up_after_its_grace_when_the_flag_is_not_set() {
    let shutdown = Arc::new(AtomicBool::new(false));
    let role = start(
        &provd_config::TimeSettings {
            tcp: false,
            ..config()
        },
        Arc::clone(&shutdown),
    )
    .unwrap();
    assert_eq!(
        role.listening(),
        format!("udp={}", role.udp_addr().unwrap())
    );
    let started = Instant::now();
    let e = Box::new(role).stop(Duration::from_millis(50)).unwrap_err();
    assert!(started.elapsed() < Duration::from_secs(1));
    assert!(format!("{e:#}").contains("did not stop"), "{e:#}");
    shutdown.store(true, Ordering::Relaxed);
}

#[test]
fn a_port_in_use_is_an_error_that_names_it() {
    let holder = UdpSocket::bind("127.0.0.1:0").unwrap();
    let port = holder.local_addr().unwrap().port();
    let e = start(
        &provd_config::TimeSettings { port, ..config() },
        Arc::new(AtomicBool::new(false)),
    )
    .unwrap_err();
    assert!(
        format!("{e:#}").contains(&format!("127.0.0.1:{port}")),
        "{e:#}"
    );
}
