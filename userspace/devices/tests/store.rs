//! The catalog and the timeline against a real store (SQLite in a temp dir).

use std::net::{Ipv4Addr, SocketAddrV4};
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use provd_devices::catalog::{Catalog, Following, ReservationSink};
use provd_devices::timeline::{Happening, Retention, Timeline};
use provd_lease::Binding;
use provd_store::{
    Actor, ClassSpec, DeviceKind, DeviceSpec, Expect, Mac, Reservation, ReservationSpec, Source,
    Store, StoreError,
};

const MAC: Mac = Mac([0, 0x15, 0xcf, 1, 2, 3]);

fn store() -> (tempfile::TempDir, Arc<dyn Store>) {
    let dir = tempfile::tempdir().unwrap();
    let s = provd_store::open(&provd_store::Location::Embedded(
        dir.path().join("store.db"),
    ))
    .unwrap();
    (dir, s)
}

fn class(name: &str, tier: &str) -> ClassSpec {
    ClassSpec {
        name: name.into(),
        description: None,
        vars: serde_json::json!({ "tier": tier })
            .as_object()
            .unwrap()
            .clone(),
    }
}

#[derive(Debug, Default)]
struct Seen(Mutex<Vec<(Mac, Option<Ipv4Addr>)>>);

impl ReservationSink for Seen {
    fn check(&self, r: &ReservationSpec) -> Result<(), String> {
        if r.address.octets()[3] == 0 {
            return Err(format!("{} is a network address", r.address));
        }
        Ok(())
    }
    fn apply(&self, mac: Mac, r: Option<&Reservation>) {
        self.0
            .lock()
            .unwrap()
            .push((mac, r.map(|r| r.spec.address)));
    }
}

#[test]
fn writes_through_following_are_in_the_catalog_when_they_return_others_at_catch_up() {
    let (_dir, raw) = store();
    let who = Actor::Cli("test".into());
    raw.put_class(&class("gold", "g"), Expect::Any, &who)
        .unwrap();
    let catalog = Arc::new(Catalog::load(&*raw).unwrap());
    let sink = Arc::new(Seen::default());
    catalog
        .follow_reservations(&*raw, Arc::clone(&sink) as _)
        .unwrap();
    let api = Following::new(Arc::clone(&raw), Arc::clone(&catalog));
    assert!(catalog.resolve(&MAC.0).is_none());
    let d = DeviceSpec {
        mac: MAC,
        kind: DeviceKind::Cm,
        class_of_service: Some("gold".into()),
        ..Default::default()
    };
    api.put_device(&d, Expect::Any, &who).unwrap();
    let r = catalog
        .resolve(&MAC.0)
        .expect("in the catalog when the write returns");
    assert_eq!(r.merged_vars()["tier"], "g");
    // A write that bypasses Following (another process, another node): seen at catch-up.
    raw.put_class(&class("gold", "g2"), Expect::Any, &who)
        .unwrap();
    assert_eq!(catalog.resolve(&MAC.0).unwrap().merged_vars()["tier"], "g");
    assert!(catalog.catch_up(&*raw).unwrap() >= 1);
    assert_eq!(catalog.resolve(&MAC.0).unwrap().merged_vars()["tier"], "g2");
    // Reservations: checked before the store write, applied after it.
    let bad = ReservationSpec {
        mac: MAC,
        address: Ipv4Addr::new(198, 18, 0, 0),
        dhcp_class: None,
    };
    match api.put_reservation(&bad, Expect::Any, &who) {
        Err(StoreError::Invalid { field, why }) => {
            assert_eq!(field, "address");
            assert!(why.contains("network address"), "{why}");
        }
        other => panic!("{other:?}"),
    }
    assert!(
        raw.get_reservation(MAC).unwrap().is_none(),
        "refused before the store"
    );
    let good = ReservationSpec {
        address: Ipv4Addr::new(198, 18, 0, 9),
        ..bad
    };
    api.put_reservation(&good, Expect::Any, &who).unwrap();
    api.delete_reservation(MAC, Expect::Any, &who).unwrap();
    assert_eq!(
        *sink.0.lock().unwrap(),
        vec![(MAC, Some(Ipv4Addr::new(198, 18, 0, 9))), (MAC, None)]
    );
    api.delete_device(MAC, Expect::Any, &who).unwrap();
    assert!(catalog.resolve(&MAC.0).is_none(), "deleted");
}

#[test]
fn the_timeline_lands_in_the_store_newest_first_with_documents_beside() {
    let (_dir, raw) = store();
    let shutdown = Arc::new(AtomicBool::new(false));
    let (t, writer) = Timeline::start(
        Arc::clone(&raw),
        Retention {
            days: 30,
            per_device: 100,
        },
        Arc::clone(&shutdown),
    )
    .unwrap();
    use provd_lease::LeaseObserver;
    t.bind(Binding {
        mac: MAC.0,
        addr: Ipv4Addr::new(198, 18, 0, 20),
        expires_at: 2_000_000_000,
        class: Some(0),
        giaddr: Ipv4Addr::new(198, 18, 1, 1),
        vendor_class: Some(b"docsis3.0"[..].into()),
        remote_id: None,
        circuit_id: None,
        restart: true,
    });
    let bytes: Arc<[u8]> = Arc::from(&b"abc"[..]);
    t.report(Happening::Served {
        source: Source::Tftp,
        mac: MAC.0,
        file: "cm/0015cf010203.cfg".into(),
        bytes,
        peer: SocketAddrV4::new(Ipv4Addr::new(198, 18, 0, 20), 1024),
        at_ms: provd_devices::timeline::now_ms() + 1,
    });
    t.report(Happening::Document {
        collection: "mta",
        id: MAC.to_string(),
        body: r#"{"state":"complete"}"#.into(),
    });
    let deadline = Instant::now() + Duration::from_secs(10);
    let events = loop {
        let e = raw.timeline(MAC, None, 10).unwrap();
        if e.len() >= 2 || Instant::now() > deadline {
            break e;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(events.len(), 2, "{events:?}");
    assert_eq!(events[0].event.source, Source::Tftp, "newest first");
    assert_eq!(
        events[0].event.detail["sha256"],
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad",
        "the SHA-256 of what was served"
    );
    assert_eq!(events[1].event.kind, "ack");
    assert_eq!(events[1].event.detail["relay"], "198.18.1.1");
    shutdown.store(true, std::sync::atomic::Ordering::Relaxed);
    writer.join().unwrap();
    let doc = raw.get_document("mta", &MAC.to_string()).unwrap().unwrap();
    assert_eq!(doc.body["state"], "complete");
    assert_eq!(
        t.stats().dropped.load(std::sync::atomic::Ordering::Relaxed),
        0
    );
}

/// Template versions: loaded with the catalog, in it when a save through `Following`
/// returns, and a save made elsewhere seen at catch-up.
#[test]
fn saved_template_versions_are_in_the_catalog() {
    use provd_store::{TemplateKind, TemplateVersionSpec};
    let (_dir, raw) = store();
    let who = Actor::Cli("test".into());
    let spec = |text: &str| TemplateVersionSpec {
        name: "cm.cfg.j2".into(),
        kind: TemplateKind::Cm,
        text: text.into(),
        comment: None,
    };
    raw.put_template_version(&spec("one"), Expect::Any, &who)
        .unwrap();
    let catalog = Arc::new(Catalog::load(&*raw).unwrap());
    let t1 = catalog.template("cm.cfg.j2").expect("loaded");
    assert_eq!((t1.version, &*t1.text), (1, "one"));
    assert!(catalog.template("mta.cfg.j2").is_none());
    let api = Following::new(Arc::clone(&raw), Arc::clone(&catalog));
    api.put_template_version(&spec("two"), Expect::Version(1), &who)
        .unwrap();
    let t2 = catalog.template("cm.cfg.j2").unwrap();
    assert_eq!((t2.version, &*t2.text), (2, "two"));
    assert_ne!(t1.fingerprint, t2.fingerprint);
    raw.put_template_version(&spec("three"), Expect::Any, &who)
        .unwrap();
    assert_eq!(catalog.template("cm.cfg.j2").unwrap().version, 2);
    catalog.catch_up(&*raw).unwrap();
    assert_eq!(&*catalog.template("cm.cfg.j2").unwrap().text, "three");
}
