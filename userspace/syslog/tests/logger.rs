//! util-linux `logger` (Debian bsdutils) against the receiver on loopback, in both the formats
//! it speaks. Prints a note and passes when `logger` is not installed.

use std::net::Ipv4Addr;
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant};

use provd_syslog::{ByAddress, DeviceKey, Store, SyslogSettings, spawn};

fn installed(binary: &str) -> bool {
    let found = std::env::var_os("PATH")
        .is_some_and(|paths| std::env::split_paths(&paths).any(|p| p.join(binary).is_file()));
    if !found {
        eprintln!("note: {binary} is not installed; skipping (apt-get install bsdutils)");
    }
    found
}

#[test]
fn logger_rfc5424_and_rfc3164_are_stored() {
    if !installed("logger") {
        return;
    }
    let store = Arc::new(Store::default());
    let h = spawn(
        SyslogSettings {
            bind: Ipv4Addr::LOCALHOST,
            port: 0,
            workers: 1,
            ..SyslogSettings::default()
        },
        Arc::clone(&store),
        Arc::new(ByAddress),
        Arc::new(AtomicBool::new(false)),
    )
    .unwrap();
    let port = h.local_addr().port().to_string();
    let send = |args: &[&str]| {
        let out = Command::new("logger")
            .args(["-n", "127.0.0.1", "-P", &port, "-d"])
            .args(args)
            .output()
            .expect("logger runs");
        assert!(out.status.success(), "logger {args:?}: {out:?}");
    };
    send(&[
        "--rfc5424",
        "-t",
        "mta",
        "-p",
        "local0.notice",
        "--msgid",
        "MTA24",
        "--sd-id",
        "docsis@4491",
        "--sd-param",
        r#"mac="00:15:cf:12:34:57""#,
        "Provisioning Complete",
    ]);
    let until = Instant::now() + Duration::from_secs(5);
    while h.counters().received < 1 && Instant::now() < until {
        std::thread::sleep(Duration::from_millis(10));
    }
    send(&[
        "--rfc3164",
        "-t",
        "cm",
        "-i",
        "-p",
        "local0.err",
        "T3 time-out",
    ]);
    send(&["--rfc5424=notq,notime,nohost", "caf\u{e9}"]);
    while h.counters().received < 3 && Instant::now() < until {
        std::thread::sleep(Duration::from_millis(10));
    }
    let c = h.counters();
    assert_eq!(
        (c.received, c.stored, c.malformed_total()),
        (3, 3, 0),
        "{c:?}"
    );
    let events = store.events(DeviceKey::Addr(Ipv4Addr::LOCALHOST));
    assert_eq!(events.len(), 3);
    let e = &events[0];
    assert_eq!((e.facility, e.severity), (16, 5));
    assert_eq!(
        (e.app_name.as_deref(), e.msg_id.as_deref()),
        (Some("mta"), Some("MTA24"))
    );
    assert_eq!(&*e.text, "Provisioning Complete");
    let sent = e.sent_at.expect("logger --rfc5424 sends a timestamp");
    assert!(
        (sent.unix_ms - e.received_at as i64).abs() < 5_000,
        "{sent} vs received {}",
        e.received_at
    );
    let e = &events[1];
    assert_eq!((e.facility, e.severity), (16, 3));
    assert_eq!(e.app_name.as_deref(), Some("cm"));
    assert!(
        e.proc_id
            .as_deref()
            .is_some_and(|p| p.parse::<u32>().is_ok())
    );
    assert_eq!(&*e.text, "T3 time-out");
    // A BSD timestamp is local time without a zone, read as UTC: it matches when the test
    // runs in UTC (as CI and the lab do); elsewhere only check it is there.
    assert!(e.sent_at.is_some());
    assert_eq!(&*events[2].text, "café");
    assert_eq!(events[2].sent_at, None);
    h.shutdown();
    h.join().unwrap();
}
