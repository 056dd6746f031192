//! The receiver on loopback with port 0: datagrams of every format from two source addresses,
//! one a known device and one not, then queries of the store and the counters, and a prompt
//! shutdown.

use std::net::{Ipv4Addr, UdpSocket};
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant};

use provd_syslog::{
    ByAddress, DeviceKey, Format, MAX_DATAGRAM, ParseError, Store, StoreConfig, SyslogSettings,
    spawn,
};

const MAC: [u8; 6] = [0x00, 0x15, 0xcf, 0x12, 0x34, 0x57];

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

fn settings(workers: usize) -> SyslogSettings {
    SyslogSettings {
        bind: Ipv4Addr::LOCALHOST,
        port: 0,
        workers,
        ..SyslogSettings::default()
    }
}

#[test]
fn datagrams_are_filed_under_their_device() {
    let store = Arc::new(Store::new(StoreConfig::default()));
    // The "DHCP side": 127.0.0.1 holds a lease, 127.0.0.2 does not.
    let dhcp = |a: Ipv4Addr| (a == Ipv4Addr::LOCALHOST).then_some(MAC);
    let shutdown = Arc::new(AtomicBool::new(false));
    let h = spawn(
        settings(2),
        Arc::clone(&store),
        Arc::new(dhcp),
        Arc::clone(&shutdown),
    )
    .unwrap();
    assert_ne!(h.local_addr().port(), 0);
    let modem = UdpSocket::bind("127.0.0.1:0").unwrap();
    let stranger = UdpSocket::bind("127.0.0.2:0").unwrap();
    let to = h.local_addr();
    let mut oversize = b"<131>CABLEMODEM[DOCSIS]: ".to_vec();
    oversize.resize(MAX_DATAGRAM + 1000, b'z');
    let from_modem: [&[u8]; 6] = [
        b"<132>CABLEMODEM[DOCSIS]: <73050100> TLV-11 - unrecognized OID;CM-MAC=00:15:cf:12:34:57;",
        b"<133>1 2026-11-22T05:21:28.381Z mta01 mta - MTA24 - Provisioning Complete",
        b"<131>Nov 22 05:21:29 cm01 cm[12]: T3 time-out",
        &oversize,
        b"<999>not syslog",
        b"no pri at all",
    ];
    for d in from_modem {
        modem.send_to(d, to).unwrap();
    }
    stranger.send_to(b"<14>hello from nowhere", to).unwrap();
    assert!(
        eventually(|| h.counters().received == 7),
        "{:?}",
        h.counters()
    );
    let c = h.counters();
    assert_eq!((c.parsed, c.stored, c.truncated), (5, 5, 1));
    assert_eq!(c.by_format[Format::Rfc5424.index()], 1);
    assert_eq!(c.by_format[Format::Rfc3164.index()], 1);
    assert_eq!(c.by_format[Format::Bare.index()], 3);
    assert_eq!(
        c.malformed[ParseError::PriOutOfRange { value: 0 }.index()],
        1
    );
    assert_eq!(c.malformed[ParseError::NoPri { first: 0 }.index()], 1);
    assert_eq!(c.malformed_total(), 2);

    // One socket or two: the reuseport group may spread the modem's datagrams over both
    // workers, so the order within the device is the order of arrival, not of sending.
    let events = store.events(DeviceKey::Mac(MAC));
    assert_eq!(events.len(), 4);
    let mut texts: Vec<&str> = events.iter().map(|e| &*e.text).collect();
    texts.sort_unstable();
    assert!(texts[0].starts_with("<73050100> TLV-11"));
    assert_eq!(texts[1], "Provisioning Complete");
    assert_eq!(texts[2], "T3 time-out");
    assert_eq!(texts[3].len(), 480, "cut to the store's text limit");
    assert!(events.iter().all(|e| e.source == Ipv4Addr::LOCALHOST));
    assert!(events.iter().all(|e| e.leased), "from a leased address");
    let mta = events.iter().find(|e| e.msg_id.as_deref() == Some("MTA24"));
    assert_eq!(mta.map(|e| (e.facility, e.severity)), Some((16, 5)));
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64;
    assert!(
        events
            .iter()
            .all(|e| e.received_at.abs_diff(now_ms) < 10_000)
    );

    let stranger_events = store.events(DeviceKey::Addr(Ipv4Addr::new(127, 0, 0, 2)));
    assert_eq!(stranger_events.len(), 1);
    assert_eq!(&*stranger_events[0].text, "hello from nowhere");
    assert!(
        !stranger_events[0].leased,
        "no lease: marked, anyone may have sent it"
    );
    assert_eq!(h.counters().unleased, 1);
    assert_eq!(store.recent(100).len(), 5);
    assert_eq!(store.recent(1).len(), 1);

    let started = Instant::now();
    h.shutdown();
    h.join().unwrap();
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "workers notice the flag promptly"
    );
}

#[test]
fn a_burst_from_many_sources_is_received_whole() {
    let store = Arc::new(Store::default());
    let shutdown = Arc::new(AtomicBool::new(false));
    let h = spawn(
        settings(2),
        Arc::clone(&store),
        Arc::new(ByAddress),
        Arc::clone(&shutdown),
    )
    .unwrap();
    let senders: Vec<UdpSocket> = (1..=8u8)
        .map(|i| UdpSocket::bind((Ipv4Addr::new(127, 0, 1, i), 0)).unwrap())
        .collect();
    for round in 0..50 {
        for s in &senders {
            let d = format!(
                "<134>CABLEMODEM[DOCSIS]: <{}> event {round}",
                70_000_000 + round
            );
            s.send_to(d.as_bytes(), h.local_addr()).unwrap();
        }
    }
    assert!(
        eventually(|| h.counters().received == 400),
        "{:?}",
        h.counters()
    );
    assert_eq!(h.counters().stored, 400);
    for i in 1..=8u8 {
        let events = store.events(DeviceKey::Addr(Ipv4Addr::new(127, 0, 1, i)));
        // The default ring keeps 64 of the 50 sent: all of them.
        assert_eq!(events.len(), 50);
    }
    assert_eq!(store.devices(), 8);
    h.shutdown();
    h.join().unwrap();
}

#[test]
fn zero_workers_and_a_port_in_use_are_errors() {
    let store = Arc::new(Store::default());
    let flag = Arc::new(AtomicBool::new(false));
    assert!(
        spawn(
            settings(0),
            Arc::clone(&store),
            Arc::new(ByAddress),
            Arc::clone(&flag)
        )
        .is_err()
    );
    // A plain socket (not in a reuseport group) holds the port.
    let holder = UdpSocket::bind("127.0.0.1:0").unwrap();
    let taken = SyslogSettings {
        port: holder.local_addr().unwrap().port(),
        ..settings(1)
    };
    let e = spawn(taken, store, Arc::new(ByAddress), flag).unwrap_err();
    assert_eq!(e.kind(), std::io::ErrorKind::AddrInUse);
}

/// The review's flood: one source (forged or not) sending as fast as it can keeps at most its
/// burst and rate in the store; another source is not affected. Each drop is counted.
#[test]
fn one_source_keeps_its_burst_and_rate_and_others_are_not_affected() {
    let store = Arc::new(Store::default());
    let shutdown = Arc::new(AtomicBool::new(false));
    let h = spawn(
        SyslogSettings {
            per_source_rate: 1,
            per_source_burst: 10,
            ..settings(1)
        },
        Arc::clone(&store),
        Arc::new(ByAddress),
        Arc::clone(&shutdown),
    )
    .unwrap();
    let flood = UdpSocket::bind("127.0.3.1:0").unwrap();
    let quiet = UdpSocket::bind("127.0.3.2:0").unwrap();
    let started = Instant::now();
    for i in 0..500 {
        flood
            .send_to(format!("<134>flood {i}").as_bytes(), h.local_addr())
            .unwrap();
    }
    quiet.send_to(b"<134>hello", h.local_addr()).unwrap();
    assert!(
        eventually(|| h.counters().received == 501),
        "{:?}",
        h.counters()
    );
    let c = h.counters();
    // The burst, plus one a second for however long the sending took.
    let allowed = 10 + started.elapsed().as_secs() + 1;
    assert!(c.stored <= allowed + 1, "{c:?}");
    assert_eq!(c.stored + c.rate_limited, 501, "{c:?}");
    assert!(c.rate_limited >= 500 - allowed, "{c:?}");
    assert_eq!(
        store
            .events(DeviceKey::Addr(Ipv4Addr::new(127, 0, 3, 2)))
            .len(),
        1
    );
    h.shutdown();
    h.join().unwrap();
}
