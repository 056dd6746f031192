//! The syslog parser on arbitrary datagrams, then the store on what it returns.
//!
//! Checked: no panic; only a bad PRI is an error, and the error says which (empty, no `<`, not
//! 1 to 3 digits, no `>`, over 191); facility <= 23 and severity <= 7 and they give the PRI
//! back; the text and every header field are pieces of the datagram's (lossy) text, so nothing
//! is invented; a datagram is marked cut exactly when it is longer than MAX_DATAGRAM; an RFC 3164
//! date lands within a year of the arrival; parsing is deterministic, also at absurd arrival
//! times; and the stored event keeps a prefix of the text within the store's limits.

#![no_main]

use std::net::Ipv4Addr;

use libfuzzer_sys::fuzz_target;
use provd_syslog::{
    DeviceKey, Format, MAX_DATAGRAM, MAX_FIELD, ParseError, Store, StoreConfig, parse,
};

/// 2026-11-22T05:21:30Z.
const NOW: u64 = 1_795_324_890_000;
const YEAR_MS: i64 = 366 * 86_400_000;

fuzz_target!(|data: &[u8]| {
    let seen = &data[..data.len().min(MAX_DATAGRAM)];
    let whole = String::from_utf8_lossy(seen);
    let msg = match parse(data, NOW) {
        Ok(m) => m,
        Err(e) => {
            match e {
                ParseError::Empty => assert!(data.is_empty()),
                ParseError::NoPri { first } => assert!(first != b'<' && data[0] == first),
                ParseError::BadPri | ParseError::UnterminatedPri => assert_eq!(data[0], b'<'),
                ParseError::PriOutOfRange { value } => {
                    assert!(value > 191 && data.starts_with(format!("<{value}>").as_bytes()));
                }
                _ => {}
            }
            assert!(e.index() < ParseError::KINDS);
            assert_eq!(parse(data, u64::MAX), Err(e));
            return;
        }
    };
    assert!(msg.facility <= 23 && msg.severity <= 7);
    let pri = u16::from(msg.facility) * 8 + u16::from(msg.severity);
    let digits = data.iter().skip(1).take_while(|b| b.is_ascii_digit()).count();
    let written: u16 = std::str::from_utf8(&data[1..1 + digits]).unwrap().parse().unwrap();
    assert_eq!(written, pri);
    assert_eq!(msg.truncated, data.len() > MAX_DATAGRAM);
    assert_eq!(msg.received_at, NOW);
    assert!(whole.contains(&msg.text), "text {:?} is not from the datagram", msg.text);
    for f in [&msg.hostname, &msg.app_name, &msg.proc_id, &msg.msg_id].into_iter().flatten() {
        assert!(!f.is_empty() && whole.contains(f.as_str()), "field {f:?}");
        assert!(f.bytes().all(|b| (33..=126).contains(&b)), "field {f:?} is printable ASCII");
    }
    if msg.format != Format::Rfc5424 {
        assert!(msg.structured_data.is_empty() && msg.msg_id.is_none());
    }
    if let Some(t) = msg.timestamp {
        let _ = t.to_string();
        if t.utc_offset_min.is_none() {
            assert!((t.unix_ms - NOW as i64).abs() <= YEAR_MS, "{t} is not near the arrival");
        }
    }
    assert_eq!(parse(data, NOW).as_ref(), Ok(&msg), "deterministic");
    let _ = parse(data, u64::MAX).map(|m| m.timestamp.map(|t| t.to_string()));
    let _ = parse(data, 0);

    let store = Store::new(StoreConfig {
        events_per_device: 2,
        max_text: 16,
        shards: 1,
        ..StoreConfig::default()
    });
    let key = DeviceKey::Addr(Ipv4Addr::new(192, 0, 2, 1));
    for _ in 0..3 {
        store.insert(key, Ipv4Addr::new(192, 0, 2, 1), &msg);
    }
    let events = store.events(key);
    assert_eq!(events.len(), 2);
    let e = &events[1];
    assert!(e.text.len() <= 16 && msg.text.starts_with(&*e.text));
    assert_eq!(e.truncated, msg.truncated || e.text.len() < msg.text.len());
    for f in [&e.app_name, &e.proc_id, &e.msg_id].into_iter().flatten() {
        assert!(f.len() <= MAX_FIELD);
    }
});
