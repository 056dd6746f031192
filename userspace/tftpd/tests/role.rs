//! The TFTP role as `provd serve` runs it, on loopback: pinned files first, then generated
//! files (an MTA's fetch reported to the hook), then the static root; counters by name.

mod common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{Failure, eventually, fetch};
use provd_config::Policy;
use provd_devices::DeviceView;
use provd_files::Generator;
use provd_role::Role;
use provd_tftp::{Mode, Options};
use provd_tftpd::{FileSource, Generated, StaticRoot};

const MTA_TEMPLATE: &str = "Main {\n\tMtaConfigDelimiter 1;\n\tSnmpMibObject pktcMtaDevEnabled.0 Integer 1;\n\tMtaConfigDelimiter 255;\n}\n";
const CM_TEMPLATE: &str = "Main {\n\tNetworkAccess 1;\n}\n";

fn policy(dir: &std::path::Path) -> Policy {
    std::fs::write(dir.join("mta.j2"), MTA_TEMPLATE).unwrap();
    std::fs::write(dir.join("cm.j2"), CM_TEMPLATE).unwrap();
    std::fs::create_dir_all(dir.join("root")).unwrap();
    std::fs::write(dir.join("root/firmware.bin"), b"FIRMWARE").unwrap();
    let toml = r#"
[server]
lease_dir = "/tmp/unused"
[tftp]
bind = "127.0.0.1"
root = "root"
enforce = false
workers = 2
[[class]]
name = "cm"
match = "docsis*"
boot_file = "cm/{mac}.cfg"
[class.config_file]
template = "cm.j2"
kind = "docsis"
shared_secret = "DOCSIS"
[[class]]
name = "mta"
match = "pktc*"
boot_file = "mta/{mac}.bin"
[class.config_file]
template = "mta.j2"
kind = "mta"
mta_hash = "sha1"
"#;
    let file = dir.join("provd.toml");
    // The one minimal DHCP network every test shares (provd_config::testing::NETWORK).
    std::fs::write(&file, provd_config::testing::config(toml)).unwrap();
    Policy::from_file(&file).unwrap()
}

fn get(addr: std::net::SocketAddrV4, name: &str) -> Result<Vec<u8>, Failure> {
    fetch(addr, name, Mode::Octet, Options::default()).map(|f| f.data)
}

#[test]
fn pinned_then_generated_then_static_and_mta_fetches_reported() {
    let dir = tempfile::tempdir().unwrap();
    let policy = policy(dir.path());
    let mut settings = policy.tftp.clone().unwrap();
    settings.port = 0;
    let generator = Generator::new(&policy, Arc::new(DeviceView::new())).unwrap();
    let generated = Arc::new(Generated::new(Arc::new(generator)));
    let served = Arc::new(Mutex::new(Vec::new()));
    let s = Arc::clone(&served);
    generated.notify_mta(Box::new(move |mac| s.lock().unwrap().push(mac)));
    // Another role's pinned file shadows the generated one of the same name.
    std::fs::create_dir_all(dir.path().join("pinned/mta")).unwrap();
    std::fs::write(dir.path().join("pinned/mta/0015cf000001.bin"), b"PINNED").unwrap();
    let pinned: Arc<dyn FileSource> = Arc::new(StaticRoot::new(dir.path().join("pinned")).unwrap());
    let shutdown = Arc::new(AtomicBool::new(false));
    let role = provd_tftpd::role::start(
        &settings,
        Some(pinned),
        Arc::clone(&generated),
        Arc::clone(&shutdown),
    )
    .unwrap();
    let addr = role.local_addr();
    assert_eq!(role.name(), "tftp");
    assert!(role.listening().contains(&format!("udp={addr}")));
    assert_eq!(role.transfer_ports().len(), 2);

    assert_eq!(get(addr, "mta/0015cf000001.bin").unwrap(), b"PINNED");
    let mta = get(addr, "mta/0015cf000002.bin").unwrap();
    assert_eq!(&mta[..3], &[0xfe, 0x01, 0x01], "a generated MTA file");
    let cm = get(addr, "cm/0015cf000003.cfg").unwrap();
    assert!(provd_docsis::verify(&cm, Some(b"DOCSIS")).unwrap().all_ok());
    assert_eq!(get(addr, "firmware.bin").unwrap(), b"FIRMWARE");
    assert!(matches!(
        get(addr, "nothing.bin"),
        Err(Failure::Error(1, _))
    ));

    // Only the generated MTA file is reported: not the pinned one (its role knows), not the CM's.
    assert_eq!(
        *served.lock().unwrap(),
        [[0x00, 0x15, 0xcf, 0x00, 0x00, 0x02]]
    );
    let counter = |name: &str| {
        role.counters()
            .into_iter()
            .find(|(k, _)| k == name)
            .unwrap_or_else(|| panic!("no counter {name}"))
            .1
    };
    assert_eq!(counter("generated"), 2);
    assert!(
        eventually(|| counter("rrq") == 5),
        "rrq = {}",
        counter("rrq")
    );
    assert!(eventually(|| counter("errors_sent_1") == 1));
    // The same counts as typed Prometheus families.
    let mut e = provd_role::metrics::Exposition::new();
    role.metrics(&mut e);
    assert!(e.refused().is_empty(), "{:?}", e.refused());
    let text = e.finish();
    for line in [
        "# TYPE provd_tftp_requests_total counter",
        r#"provd_tftp_requests_total{op="read"} 5"#,
        r#"provd_tftp_errors_sent_total{code="1"} 1"#,
        r#"provd_tftp_drops_total{reason="unknown_transfer"} 0"#,
        "provd_tftp_generated_files_total 2",
        "provd_tftp_completed_total 4",
        "# TYPE provd_tftp_transfers_active gauge",
    ] {
        assert!(text.lines().any(|l| l == line), "no {line} in\n{text}");
    }
    assert!(!role.finished());
    shutdown.store(true, Ordering::Relaxed);
    Box::new(role).stop(Duration::from_secs(5)).unwrap();
}
