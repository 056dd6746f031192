//! The role as `provd serve` starts it from `[syslog]`: events filed under the device whose live
//! lease (in a real `DeviceView`) holds the source, the store sized by the settings, counters
//! by name, and a stop bounded by its grace.

use std::net::{Ipv4Addr, UdpSocket};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use provd_devices::DeviceView;
use provd_lease::Binding;
use provd_role::{Role, clock};
use provd_syslog::{DeviceKey, start};

const MODEM: [u8; 6] = [0x00, 0x15, 0xcf, 0x12, 0x34, 0x57];
const GONE: [u8; 6] = [0x00, 0x15, 0xcf, 0x12, 0x34, 0x58];

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

fn config() -> provd_config::SyslogSettings {
    provd_config::SyslogSettings {
        bind: Ipv4Addr::LOCALHOST,
        port: 0,
        // One per core: the binary's rule, not an error.
        workers: 0,
        events_per_device: 2,
        max_devices: 100,
        per_source_rate: 20,
        per_source_burst: 200,
    }
}

fn bind(view: &DeviceView, mac: [u8; 6], addr: Ipv4Addr, expires_at: u32) {
    view.bind(Binding {
        mac,
        addr,
        expires_at,
        class: None,
        giaddr: Ipv4Addr::UNSPECIFIED,
        vendor_class: None,
        remote_id: None,
        circuit_id: None,
        restart: true,
    });
}

fn counter(role: &dyn Role, name: &str) -> u64 {
    role.counters()
        .into_iter()
        .find(|(k, _)| k == name)
        .unwrap_or_else(|| panic!("no counter {name}"))
        .1
}

#[test]
fn events_are_filed_by_the_lease_that_is_live_now() {
    let view = Arc::new(DeviceView::new());
    let now = clock::unix_secs_u32();
    // 127.0.0.1 is the modem's for another hour; 127.0.0.3's lease ended a minute ago.
    bind(&view, MODEM, Ipv4Addr::LOCALHOST, now + 3600);
    bind(&view, GONE, Ipv4Addr::new(127, 0, 0, 3), now - 60);
    let shutdown = Arc::new(AtomicBool::new(false));
    let role = start(&config(), view, Arc::clone(&shutdown)).unwrap();
    assert_eq!(role.name(), "syslog");
    let to = role.local_addr();
    assert_ne!(to.port(), 0);
    assert_eq!(role.listening(), format!("udp={to}"));

    let modem = UdpSocket::bind("127.0.0.1:0").unwrap();
    let former = UdpSocket::bind("127.0.0.3:0").unwrap();
    for i in 0..3 {
        let d = format!("<132>CABLEMODEM[DOCSIS]: <73050100> event {i}");
        modem.send_to(d.as_bytes(), to).unwrap();
    }
    former.send_to(b"<14>after my lease", to).unwrap();
    former.send_to(b"not syslog", to).unwrap();
    assert!(
        eventually(|| counter(&role, "received") == 5),
        "{:?}",
        Role::counters(&role)
    );
    let store = Arc::clone(role.store());
    assert_eq!(
        store.events(DeviceKey::Mac(MODEM)).len(),
        2,
        "three sent, events_per_device = 2 kept"
    );
    assert!(store.events(DeviceKey::Mac(GONE)).is_empty());
    assert_eq!(
        store
            .events(DeviceKey::Addr(Ipv4Addr::new(127, 0, 0, 3)))
            .len(),
        1,
        "an expired lease names no device: filed under the address"
    );
    for (name, want) in [
        ("parsed", 4),
        ("parsed_bare", 4),
        ("parsed_rfc5424", 0),
        ("malformed", 1),
        ("malformed_no_pri", 1),
        ("stored", 4),
        ("store_devices", 1),
        ("store_unknown_devices", 1),
    ] {
        assert_eq!(counter(&role, name), want, "{name}");
    }
    let mut e = provd_role::metrics::Exposition::new();
    role.metrics(&mut e);
    assert!(e.refused().is_empty(), "{:?}", e.refused());
    let text = e.finish();
    for line in [
        r#"provd_syslog_parsed_total{format="bare"} 4"#,
        r#"provd_syslog_malformed_total{reason="no_pri"} 1"#,
        "provd_syslog_stored_total 4",
        "# TYPE provd_syslog_store_devices gauge",
        "provd_syslog_store_devices 1",
    ] {
        assert!(text.lines().any(|l| l == line), "no {line} in\n{text}");
    }
    assert!(!role.finished());

    let started = Instant::now();
    shutdown.store(true, Ordering::Relaxed);
    Box::new(role).stop(Duration::from_secs(2)).unwrap();
    assert!(started.elapsed() < Duration::from_secs(1));
    assert_eq!(
        store.events(DeviceKey::Mac(MODEM)).len(),
        2,
        "kept after stop"
    );
}

#[test]
fn stop_gives_up_after_its_grace_when_the_flag_is_not_set() {
    let shutdown = Arc::new(AtomicBool::new(false));
    let role = start(
        &config(),
        Arc::new(DeviceView::new()),
        Arc::clone(&shutdown),
    )
    .unwrap();
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
        &provd_config::SyslogSettings { port, ..config() },
        Arc::new(DeviceView::new()),
        Arc::new(AtomicBool::new(false)),
    )
    .unwrap_err();
    assert!(
        format!("{e:#}").contains(&format!("127.0.0.1:{port}")),
        "{e:#}"
    );
}
