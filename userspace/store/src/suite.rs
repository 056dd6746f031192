//! The one test suite both backends run: each public function checks one behaviour of the
//! [`Store`] contract on a fresh, empty store. `tests/sqlite.rs` and `tests/postgres.rs` run
//! every one through [`store_suite!`](crate::store_suite).

use std::collections::BTreeSet;
use std::net::Ipv4Addr;

use serde_json::json;

use crate::*;

/// Generates one `#[test]` per suite function, each on a store `$open()` returns (anything
/// that derefs to a `dyn Store`, or a `Store`).
#[macro_export]
macro_rules! store_suite {
    ($open:expr) => {
        $crate::store_suite!(@each $open;
            schema_version_is_latest,
            crud_and_versions,
            if_match,
            import_idempotent,
            filters_and_pagination,
            referential_checks,
            reservation_conflicts,
            audit_entries,
            timeline_order_and_trim,
            tokens_by_hash,
            documents,
            changes_feed,
            counts,
            invalid_field_names,
            concurrent_if_match,
            template_versions,
            concurrent_template_saves,
        );
    };
    (@each $open:expr; $($name:ident),* $(,)?) => {
        $(
            #[test]
            fn $name() {
                let store = ($open)();
                $crate::suite::$name(&*store);
            }
        )*
    };
}

fn who() -> Actor {
    Actor::Token("alice".into())
}

/// The n-th test MAC: `02:00:00:xx:xx:xx`.
pub fn mac(n: u32) -> Mac {
    let b = n.to_be_bytes();
    Mac([2, 0, 0, b[1], b[2], b[3]])
}

fn vars(v: serde_json::Value) -> Vars {
    match v {
        serde_json::Value::Object(m) => m,
        _ => Vars::new(),
    }
}

fn dev(n: u32) -> DeviceSpec {
    DeviceSpec {
        mac: mac(n),
        kind: DeviceKind::Cm,
        serial: Some(format!("SN{n:06}")),
        ..DeviceSpec::default()
    }
}

fn sub(id: &str) -> SubscriberSpec {
    SubscriberSpec {
        id: id.into(),
        name: Some(format!("Account {id}")),
        vars: vars(json!({"region": "north"})),
    }
}

fn class(name: &str) -> ClassSpec {
    ClassSpec {
        name: name.into(),
        description: Some(format!("tier {name}")),
        vars: vars(json!({"down_mbps": 100, "voice": true})),
    }
}

fn res(n: u32, addr: [u8; 4]) -> ReservationSpec {
    ReservationSpec {
        mac: mac(n),
        address: Ipv4Addr::from(addr),
        dhcp_class: None,
    }
}

#[track_caller]
fn expect_invalid<T: std::fmt::Debug>(r: Result<T>, want_field: &str) {
    match r {
        Err(StoreError::Invalid { field, .. }) if field == want_field => {}
        other => panic!("want Invalid {{ field: {want_field:?} }}, got {other:?}"),
    }
}

#[track_caller]
fn expect_conflict<T: std::fmt::Debug>(r: Result<T>, why_has: &str) {
    match r {
        Err(StoreError::Conflict { why, key, .. })
            if why.contains(why_has) || key.contains(why_has) => {}
        other => panic!("want Conflict mentioning {why_has:?}, got {other:?}"),
    }
}

#[track_caller]
fn expect_mismatch<T: std::fmt::Debug>(r: Result<T>, want_expected: u64, want_actual: u64) {
    match r {
        Err(StoreError::VersionMismatch {
            expected, actual, ..
        }) if expected == want_expected && actual == want_actual => {}
        other => panic!(
            "want VersionMismatch {{ expected: {want_expected}, actual: {want_actual} }}, got {other:?}"
        ),
    }
}

#[track_caller]
fn expect_not_found<T: std::fmt::Debug>(r: Result<T>) {
    match r {
        Err(StoreError::NotFound { .. }) => {}
        other => panic!("want NotFound, got {other:?}"),
    }
}

/// A fresh store is at the newest schema this build knows.
pub fn schema_version_is_latest(s: &dyn Store) {
    assert_eq!(s.schema_version().unwrap(), crate::SCHEMA_VERSION);
}

/// Create, read, replace, delete, for each record kind; versions start at 1 and bump by 1;
/// every field comes back as written.
pub fn crud_and_versions(s: &dyn Store) {
    assert_eq!(s.get_device(mac(1)).unwrap(), None);
    s.put_subscriber(&sub("acct-1"), Expect::Any, &who())
        .unwrap();
    s.put_class(&class("gold"), Expect::Any, &who()).unwrap();
    let spec = DeviceSpec {
        mac: mac(1),
        kind: DeviceKind::Mta,
        subscriber: Some("acct-1".into()),
        class_of_service: Some("gold".into()),
        serial: Some("SN1".into()),
        device_id: Some("00D09E-EMTA-SN1".into()),
        duid: Some("000100011c3b".into()),
        vars: vars(json!({"line1": "+15550001", "lines": 2, "fax": false})),
    };
    let d1 = s.put_device(&spec, Expect::Any, &who()).unwrap();
    assert_eq!(d1.version, 1);
    assert_eq!(d1.spec, spec);
    assert!(d1.created_at > 0 && d1.created_at == d1.updated_at);
    assert_eq!(s.get_device(mac(1)).unwrap(), Some(d1.clone()));

    let mut spec2 = spec.clone();
    spec2.class_of_service = None;
    spec2.vars.insert("lines".into(), json!(1));
    let d2 = s.put_device(&spec2, Expect::Any, &who()).unwrap();
    assert_eq!(d2.version, 2);
    assert_eq!(d2.created_at, d1.created_at);
    assert!(d2.updated_at >= d1.updated_at);
    assert_eq!(s.get_device(mac(1)).unwrap(), Some(d2.clone()));
    let d3 = s.put_device(&spec2, Expect::Version(2), &who()).unwrap();
    assert_eq!(d3.version, 3);

    let sb = s.get_subscriber("acct-1").unwrap().unwrap();
    assert_eq!((sb.spec.clone(), sb.version), (sub("acct-1"), 1));
    let mut sb2 = sub("acct-1");
    sb2.name = None;
    assert_eq!(
        s.put_subscriber(&sb2, Expect::Any, &who()).unwrap().version,
        2
    );
    assert_eq!(s.get_subscriber("acct-1").unwrap().unwrap().spec, sb2);

    let cl = s.get_class("gold").unwrap().unwrap();
    assert_eq!((cl.spec.clone(), cl.version), (class("gold"), 1));
    assert_eq!(
        s.put_class(&class("gold"), Expect::Any, &who())
            .unwrap()
            .version,
        2
    );

    let mut r = res(1, [10, 0, 0, 5]);
    r.dhcp_class = Some("cm".into());
    let r1 = s.put_reservation(&r, Expect::Any, &who()).unwrap();
    assert_eq!(r1.version, 1);
    assert_eq!(s.get_reservation(mac(1)).unwrap(), Some(r1));
    assert_eq!(
        s.put_reservation(&r, Expect::Any, &who()).unwrap().version,
        2
    );

    s.delete_device(mac(1), Expect::Any, &who()).unwrap();
    assert_eq!(s.get_device(mac(1)).unwrap(), None);
    expect_not_found(s.delete_device(mac(1), Expect::Any, &who()));
    s.delete_reservation(mac(1), Expect::Any, &who()).unwrap();
    assert_eq!(s.get_reservation(mac(1)).unwrap(), None);
    s.delete_subscriber("acct-1", Expect::Any, &who()).unwrap();
    assert_eq!(s.get_subscriber("acct-1").unwrap(), None);
    s.delete_class("gold", Expect::Any, &who()).unwrap();
    assert_eq!(s.get_class("gold").unwrap(), None);
    expect_not_found(s.delete_class("gold", Expect::Any, &who()));
}

/// `Expect::Absent` → `Conflict` if present; `Expect::Version` → `NotFound` if absent,
/// `VersionMismatch` if another write came first; a failed write changes nothing.
pub fn if_match(s: &dyn Store) {
    expect_not_found(s.put_device(&dev(1), Expect::Version(1), &who()));
    assert_eq!(s.get_device(mac(1)).unwrap(), None);
    assert_eq!(
        s.put_device(&dev(1), Expect::Absent, &who())
            .unwrap()
            .version,
        1
    );
    expect_conflict(s.put_device(&dev(1), Expect::Absent, &who()), "exists");
    let mut changed = dev(1);
    changed.serial = Some("other".into());
    expect_mismatch(s.put_device(&changed, Expect::Version(7), &who()), 7, 1);
    assert_eq!(s.get_device(mac(1)).unwrap().unwrap().spec, dev(1));
    assert_eq!(
        s.put_device(&changed, Expect::Version(1), &who())
            .unwrap()
            .version,
        2
    );
    expect_mismatch(s.put_device(&dev(1), Expect::Version(1), &who()), 1, 2);
    expect_mismatch(s.delete_device(mac(1), Expect::Version(1), &who()), 1, 2);
    assert!(s.get_device(mac(1)).unwrap().is_some());
    expect_invalid(s.delete_device(mac(1), Expect::Absent, &who()), "expect");
    expect_not_found(s.delete_device(mac(9), Expect::Version(1), &who()));
    s.delete_device(mac(1), Expect::Version(2), &who()).unwrap();

    // The other record kinds, the same rules.
    s.put_subscriber(&sub("a"), Expect::Absent, &who()).unwrap();
    expect_conflict(
        s.put_subscriber(&sub("a"), Expect::Absent, &who()),
        "exists",
    );
    expect_mismatch(
        s.put_subscriber(&sub("a"), Expect::Version(5), &who()),
        5,
        1,
    );
    expect_not_found(s.put_subscriber(&sub("b"), Expect::Version(1), &who()));
    expect_mismatch(s.delete_subscriber("a", Expect::Version(2), &who()), 2, 1);
    s.delete_subscriber("a", Expect::Version(1), &who())
        .unwrap();

    s.put_class(&class("c"), Expect::Absent, &who()).unwrap();
    expect_conflict(s.put_class(&class("c"), Expect::Absent, &who()), "exists");
    expect_mismatch(s.put_class(&class("c"), Expect::Version(3), &who()), 3, 1);
    expect_mismatch(s.delete_class("c", Expect::Version(3), &who()), 3, 1);

    s.put_reservation(&res(1, [10, 0, 0, 1]), Expect::Absent, &who())
        .unwrap();
    expect_conflict(
        s.put_reservation(&res(1, [10, 0, 0, 1]), Expect::Absent, &who()),
        "exists",
    );
    expect_mismatch(
        s.put_reservation(&res(1, [10, 0, 0, 2]), Expect::Version(4), &who()),
        4,
        1,
    );
    assert_eq!(
        s.get_reservation(mac(1)).unwrap().unwrap().spec.address,
        Ipv4Addr::new(10, 0, 0, 1)
    );
    expect_mismatch(
        s.delete_reservation(mac(1), Expect::Version(4), &who()),
        4,
        1,
    );

    s.put_document("mta", "x", &json!({"a": 1}), Expect::Absent, &who())
        .unwrap();
    expect_conflict(
        s.put_document("mta", "x", &json!({}), Expect::Absent, &who()),
        "exists",
    );
    expect_mismatch(
        s.put_document("mta", "x", &json!({}), Expect::Version(2), &who()),
        2,
        1,
    );
    expect_mismatch(
        s.delete_document("mta", "x", Expect::Version(2), &who()),
        2,
        1,
    );
    expect_not_found(s.delete_document("mta", "y", Expect::Any, &who()));
}

fn devices_n(range: std::ops::Range<u32>, f: impl Fn(u32) -> DeviceSpec) -> Vec<DeviceSpec> {
    range.map(f).collect()
}

fn all_devices(s: &dyn Store, filter: &DeviceFilter) -> Vec<Device> {
    let mut out = Vec::new();
    let mut page = PageRequest::first(PageRequest::MAX);
    loop {
        let p = s.list_devices(filter, &page).unwrap();
        out.extend(p.items);
        match p.next {
            Some(n) => page.after = Some(n),
            None => return out,
        }
    }
}

/// An import run twice changes nothing the second time (no version bump, no change row, one
/// summary audit entry per call); changed rows are updated; a MAC given twice in one call:
/// the last wins; a bad row fails the whole call and nothing of it lands.
pub fn import_idempotent(s: &dyn Store) {
    s.put_subscriber(&sub("s1"), Expect::Any, &who()).unwrap();
    s.put_class(&class("gold"), Expect::Any, &who()).unwrap();
    let batch = devices_n(0..250, |n| {
        let mut d = dev(n);
        d.subscriber = Some("s1".into());
        d.class_of_service = (n % 2 == 0).then(|| "gold".into());
        d.vars = vars(json!({"n": n}));
        d
    });
    let audit0 = s.counts().unwrap().audit;
    let c = s.import_devices(&batch, &Actor::Cli("ops".into())).unwrap();
    assert_eq!(
        c,
        ImportCounts {
            created: 250,
            updated: 0,
            unchanged: 0
        }
    );
    let changes0 = s.changes(0, 1000).unwrap().len();
    assert_eq!(
        s.counts().unwrap().audit,
        audit0 + 1,
        "one summary audit entry per call"
    );
    let entry = &s.audit_log(&AuditFilter::default(), None, 1).unwrap()[0];
    assert_eq!(
        (entry.action.as_str(), entry.who.as_str()),
        ("import", "cli:ops")
    );
    assert_eq!(entry.after, Some(serde_json::to_value(c).unwrap()));

    let again = s.import_devices(&batch, &who()).unwrap();
    assert_eq!(
        again,
        ImportCounts {
            created: 0,
            updated: 0,
            unchanged: 250
        }
    );
    assert_eq!(
        s.changes(0, 1000).unwrap().len(),
        changes0,
        "no change rows for identical rows"
    );
    assert_eq!(s.counts().unwrap().audit, audit0 + 2);
    let stored = all_devices(s, &DeviceFilter::default());
    assert_eq!(stored.len(), 250);
    assert!(
        stored.iter().all(|d| d.version == 1),
        "identical rows keep version 1"
    );
    assert_eq!(
        stored.iter().map(|d| d.spec.clone()).collect::<Vec<_>>(),
        batch,
        "stored as given, in MAC order"
    );

    let mut changed = batch.clone();
    for d in changed.iter_mut().take(10) {
        d.kind = DeviceKind::Erouter;
    }
    changed.push(dev(1000));
    let c = s.import_devices(&changed, &who()).unwrap();
    assert_eq!(
        c,
        ImportCounts {
            created: 1,
            updated: 10,
            unchanged: 240
        }
    );
    assert_eq!(s.get_device(mac(3)).unwrap().unwrap().version, 2);
    assert_eq!(
        s.get_device(mac(3)).unwrap().unwrap().spec.kind,
        DeviceKind::Erouter
    );
    assert_eq!(s.get_device(mac(30)).unwrap().unwrap().version, 1);
    assert_eq!(s.changes(0, 1000).unwrap().len(), changes0 + 11);

    // The same MAC twice in one call: the last wins.
    let mut a = dev(2000);
    a.serial = Some("first".into());
    let mut b = dev(2000);
    b.serial = Some("last".into());
    let c = s.import_devices(&[a, b], &who()).unwrap();
    assert_eq!(
        c,
        ImportCounts {
            created: 1,
            updated: 0,
            unchanged: 0
        }
    );
    assert_eq!(
        s.get_device(mac(2000))
            .unwrap()
            .unwrap()
            .spec
            .serial
            .as_deref(),
        Some("last")
    );

    // A bad row: nothing of the call lands.
    let before = s.counts().unwrap();
    let mut bad = devices_n(3000..3010, dev);
    bad[5].subscriber = Some("nobody".into());
    match s.import_devices(&bad, &who()) {
        Err(StoreError::Invalid { field, why }) => {
            assert_eq!(field, "subscriber");
            assert!(
                why.contains(&mac(3005).to_string()),
                "names the device: {why}"
            );
        }
        other => panic!("want Invalid subscriber, got {other:?}"),
    }
    let mut bad = devices_n(3000..3010, dev);
    bad[7].vars = vars(json!({"x": [1]}));
    expect_invalid(s.import_devices(&bad, &who()), "vars.x");
    assert_eq!(s.counts().unwrap(), before);
    assert_eq!(s.get_device(mac(3000)).unwrap(), None);
    assert_eq!(
        s.import_devices(&[], &who()).unwrap(),
        ImportCounts::default()
    );
}

/// Every filter, alone and together, and cursor pagination over several pages: each device
/// once, in MAC order.
pub fn filters_and_pagination(s: &dyn Store) {
    for id in ["s1", "s2"] {
        s.put_subscriber(&sub(id), Expect::Any, &who()).unwrap();
    }
    for c in ["gold", "silver", "bronze"] {
        s.put_class(&class(c), Expect::Any, &who()).unwrap();
    }
    let batch = devices_n(0..250, |n| {
        let mut d = dev(n);
        d.kind = if n % 5 == 0 {
            DeviceKind::Mta
        } else {
            DeviceKind::Cm
        };
        d.subscriber = Some(if n < 100 { "s1" } else { "s2" }.into());
        d.class_of_service = Some(["gold", "silver", "bronze"][(n % 3) as usize].into());
        d.device_id = Some(format!("OUI-X-{n}"));
        d
    });
    // Reverse order in: the list must still come out by MAC.
    let mut rev = batch.clone();
    rev.reverse();
    s.import_devices(&rev, &who()).unwrap();

    let mut seen = Vec::new();
    let mut page = PageRequest::first(100);
    let mut pages = 0;
    loop {
        let p = s.list_devices(&DeviceFilter::default(), &page).unwrap();
        pages += 1;
        assert!(p.items.len() <= 100);
        seen.extend(p.items.into_iter().map(|d| d.spec.mac));
        match p.next {
            Some(n) => page.after = Some(n),
            None => break,
        }
    }
    assert_eq!(pages, 3);
    let want: Vec<Mac> = (0..250).map(mac).collect();
    assert_eq!(seen, want, "every device once, by MAC");
    // limit 0 is the default (100); limits are capped at MAX.
    let p = s
        .list_devices(&DeviceFilter::default(), &PageRequest::first(0))
        .unwrap();
    assert_eq!(p.items.len(), 100);
    assert_eq!(p.next, Some(mac(99).to_string()));
    let p = s
        .list_devices(&DeviceFilter::default(), &PageRequest::first(50_000))
        .unwrap();
    assert_eq!((p.items.len(), p.next), (250, None));
    // The cursor may be in any MAC form.
    let p = s
        .list_devices(
            &DeviceFilter::default(),
            &PageRequest {
                after: Some("02-00-00-00-00-F8".into()),
                limit: 10,
            },
        )
        .unwrap();
    assert_eq!(
        p.items.iter().map(|d| d.spec.mac).collect::<Vec<_>>(),
        vec![mac(249)]
    );

    // The in-memory form of each filter agrees with the store's query.
    let everything = all_devices(s, &DeviceFilter::default());
    let count = |f: DeviceFilter| {
        let got = all_devices(s, &f);
        let by_matches: Vec<&Device> = everything.iter().filter(|d| f.matches(d)).collect();
        assert_eq!(
            got.iter().collect::<Vec<_>>(),
            by_matches,
            "DeviceFilter::matches disagrees with list_devices for {f:?}"
        );
        got.len()
    };
    let expect = |pred: &dyn Fn(&DeviceSpec) -> bool| batch.iter().filter(|d| pred(d)).count();
    assert_eq!(
        count(DeviceFilter {
            kind: Some(DeviceKind::Mta),
            ..Default::default()
        }),
        expect(&|d| d.kind == DeviceKind::Mta)
    );
    assert_eq!(
        count(DeviceFilter {
            subscriber: Some("s1".into()),
            ..Default::default()
        }),
        100
    );
    assert_eq!(
        count(DeviceFilter {
            class_of_service: Some("gold".into()),
            ..Default::default()
        }),
        expect(&|d| d.class_of_service.as_deref() == Some("gold"))
    );
    assert_eq!(
        count(DeviceFilter {
            classes_any: vec!["gold".into(), "bronze".into()],
            ..Default::default()
        }),
        expect(&|d| d.class_of_service.as_deref() != Some("silver"))
    );
    assert_eq!(
        count(DeviceFilter {
            kind: Some(DeviceKind::Cm),
            subscriber: Some("s2".into()),
            class_of_service: Some("silver".into()),
            ..Default::default()
        }),
        expect(&|d| d.kind == DeviceKind::Cm
            && d.subscriber.as_deref() == Some("s2")
            && d.class_of_service.as_deref() == Some("silver"))
    );
    // 02:00:00:00:00:1x: 16 devices (0x10..=0x1f).
    let pre = all_devices(
        s,
        &DeviceFilter {
            mac_prefix: Some("02:00:00:00:00:1".into()),
            ..Default::default()
        },
    );
    assert_eq!(
        pre.iter().map(|d| d.spec.mac).collect::<Vec<_>>(),
        (16..32).map(mac).collect::<Vec<_>>()
    );
    assert_eq!(
        count(DeviceFilter {
            mac_prefix: Some("02:00:00:00:00:F".into()),
            ..Default::default()
        }),
        10,
        "upper case prefix"
    );
    assert_eq!(
        count(DeviceFilter {
            serial: Some("SN000042".into()),
            ..Default::default()
        }),
        1
    );
    assert_eq!(
        count(DeviceFilter {
            device_id: Some("OUI-X-7".into()),
            ..Default::default()
        }),
        1
    );
    assert_eq!(
        count(DeviceFilter {
            serial: Some("nope".into()),
            ..Default::default()
        }),
        0
    );
    let newest = all_devices(s, &DeviceFilter::default())
        .iter()
        .map(|d| d.updated_at)
        .max()
        .unwrap();
    assert_eq!(
        count(DeviceFilter {
            updated_since: Some(newest + 1),
            ..Default::default()
        }),
        0
    );
    assert_eq!(
        count(DeviceFilter {
            updated_since: Some(newest),
            ..Default::default()
        }),
        250
    );
    // Paging a filtered list: pages of 7 of one subscriber's silver devices.
    let f = DeviceFilter {
        subscriber: Some("s2".into()),
        class_of_service: Some("silver".into()),
        ..Default::default()
    };
    let mut page = PageRequest::first(7);
    let mut got = Vec::new();
    loop {
        let p = s.list_devices(&f, &page).unwrap();
        got.extend(p.items.iter().map(|d| d.spec.mac));
        match p.next {
            Some(n) => page.after = Some(n),
            None => break,
        }
    }
    let want: Vec<Mac> = batch
        .iter()
        .filter(|d| {
            d.subscriber.as_deref() == Some("s2") && d.class_of_service.as_deref() == Some("silver")
        })
        .map(|d| d.mac)
        .collect();
    assert_eq!(got, want);

    // Subscribers and classes page too.
    for i in 0..5 {
        s.put_subscriber(&sub(&format!("z{i}")), Expect::Any, &who())
            .unwrap();
    }
    let mut ids = Vec::new();
    let mut page = PageRequest::first(2);
    loop {
        let p = s.list_subscribers(&page).unwrap();
        ids.extend(p.items.into_iter().map(|s| s.spec.id));
        match p.next {
            Some(n) => page.after = Some(n),
            None => break,
        }
    }
    assert_eq!(ids, ["s1", "s2", "z0", "z1", "z2", "z3", "z4"]);
    let p = s.list_classes(&PageRequest::first(2)).unwrap();
    assert_eq!(
        p.items
            .iter()
            .map(|c| c.spec.name.as_str())
            .collect::<Vec<_>>(),
        ["bronze", "gold"]
    );
    let p = s
        .list_classes(&PageRequest {
            after: p.next,
            limit: 2,
        })
        .unwrap();
    assert_eq!((p.items.len(), p.next), (1, None));
    expect_invalid(
        s.list_devices(
            &DeviceFilter::default(),
            &PageRequest {
                after: Some("nope".into()),
                limit: 1,
            },
        ),
        "after",
    );
}

/// A device naming a subscriber or class that does not exist is refused (naming the field);
/// deleting a subscriber or class devices still name is a conflict saying how many.
pub fn referential_checks(s: &dyn Store) {
    let mut d = dev(1);
    d.subscriber = Some("ghost".into());
    expect_invalid(s.put_device(&d, Expect::Any, &who()), "subscriber");
    let mut d = dev(1);
    d.class_of_service = Some("ghost".into());
    expect_invalid(s.put_device(&d, Expect::Any, &who()), "class_of_service");
    assert_eq!(s.get_device(mac(1)).unwrap(), None);

    s.put_subscriber(&sub("s1"), Expect::Any, &who()).unwrap();
    s.put_class(&class("gold"), Expect::Any, &who()).unwrap();
    for n in [1, 2] {
        let mut d = dev(n);
        d.subscriber = Some("s1".into());
        d.class_of_service = Some("gold".into());
        s.put_device(&d, Expect::Any, &who()).unwrap();
    }
    expect_conflict(s.delete_subscriber("s1", Expect::Any, &who()), "2 devices");
    expect_conflict(s.delete_class("gold", Expect::Any, &who()), "2 devices");
    assert!(s.get_subscriber("s1").unwrap().is_some());
    s.delete_device(mac(1), Expect::Any, &who()).unwrap();
    expect_conflict(s.delete_subscriber("s1", Expect::Any, &who()), "1 device");
    // Moving the device off them frees them.
    s.put_device(&dev(2), Expect::Any, &who()).unwrap();
    s.delete_subscriber("s1", Expect::Any, &who()).unwrap();
    s.delete_class("gold", Expect::Any, &who()).unwrap();
}

/// An address is reserved for one MAC at a time.
pub fn reservation_conflicts(s: &dyn Store) {
    s.put_reservation(&res(1, [10, 0, 0, 5]), Expect::Any, &who())
        .unwrap();
    expect_conflict(
        s.put_reservation(&res(2, [10, 0, 0, 5]), Expect::Any, &who()),
        &mac(1).to_string(),
    );
    assert_eq!(s.get_reservation(mac(2)).unwrap(), None);
    // The holder may keep or move its own address.
    assert_eq!(
        s.put_reservation(&res(1, [10, 0, 0, 5]), Expect::Any, &who())
            .unwrap()
            .version,
        2
    );
    s.put_reservation(&res(1, [10, 0, 0, 6]), Expect::Any, &who())
        .unwrap();
    s.put_reservation(&res(2, [10, 0, 0, 5]), Expect::Any, &who())
        .unwrap();
    expect_conflict(
        s.put_reservation(&res(3, [10, 0, 0, 6]), Expect::Any, &who()),
        &mac(1).to_string(),
    );
    s.delete_reservation(mac(1), Expect::Any, &who()).unwrap();
    s.put_reservation(&res(3, [10, 0, 0, 6]), Expect::Any, &who())
        .unwrap();
    let p = s.list_reservations(&PageRequest::first(1)).unwrap();
    assert_eq!(p.items[0].spec.mac, mac(2));
    let p = s
        .list_reservations(&PageRequest {
            after: p.next,
            limit: 10,
        })
        .unwrap();
    assert_eq!(
        (p.items.len(), p.items[0].spec.mac, p.next),
        (1, mac(3), None)
    );
}

/// Every change is audited (who, action, resource, key, before and after as the record's
/// JSON); failed writes and the roles' own document saves are not.
pub fn audit_entries(s: &dyn Store) {
    let alice = who();
    let bob = Actor::Cli("bob".into());
    let newest = |s: &dyn Store| {
        s.audit_log(&AuditFilter::default(), None, 1)
            .unwrap()
            .remove(0)
    };
    let j = |v: &dyn erased::Ser| Some(v.json());

    let sb = s.put_subscriber(&sub("s1"), Expect::Any, &alice).unwrap();
    let e = newest(s);
    assert_eq!(
        (
            e.who.as_str(),
            e.action.as_str(),
            e.resource.as_str(),
            e.key.as_str()
        ),
        ("token:alice", "create", "subscriber", "s1")
    );
    assert_eq!((e.before.clone(), e.after.clone()), (None, j(&sb)));
    assert!(e.at >= sb.updated_at - 1000 && e.at > 0);

    let cl = s.put_class(&class("gold"), Expect::Any, &bob).unwrap();
    let e = newest(s);
    assert_eq!(
        (e.who.as_str(), e.action.as_str(), e.after.clone()),
        ("cli:bob", "create", j(&cl))
    );

    let d1 = s.put_device(&dev(1), Expect::Any, &alice).unwrap();
    let e = newest(s);
    assert_eq!(
        (e.action.as_str(), e.resource.as_str(), e.key.clone()),
        ("create", "device", mac(1).to_string())
    );
    assert_eq!((e.before.clone(), e.after.clone()), (None, j(&d1)));
    let mut spec = dev(1);
    spec.class_of_service = Some("gold".into());
    let d2 = s.put_device(&spec, Expect::Any, &Actor::System).unwrap();
    let e = newest(s);
    assert_eq!((e.who.as_str(), e.action.as_str()), ("system", "update"));
    assert_eq!((e.before.clone(), e.after.clone()), (j(&d1), j(&d2)));

    let r = s
        .put_reservation(&res(1, [10, 1, 1, 1]), Expect::Any, &alice)
        .unwrap();
    let e = newest(s);
    assert_eq!(
        (e.resource.as_str(), e.after.clone()),
        ("reservation", j(&r))
    );

    // A failed write leaves no entry.
    let n = s.counts().unwrap().audit;
    let _ = s
        .put_device(&dev(1), Expect::Version(1), &alice)
        .unwrap_err();
    let _ = s.put_device(&dev(1), Expect::Absent, &alice).unwrap_err();
    assert_eq!(s.counts().unwrap().audit, n);

    s.delete_device(mac(1), Expect::Any, &bob).unwrap();
    let e = newest(s);
    assert_eq!(
        (e.action.as_str(), e.before.clone(), e.after.clone()),
        ("delete", j(&d2), None)
    );
    s.delete_reservation(mac(1), Expect::Any, &bob).unwrap();
    assert_eq!(newest(s).before, j(&r));
    let sb2 = s.put_subscriber(&sub("s1"), Expect::Any, &alice).unwrap();
    s.delete_subscriber("s1", Expect::Any, &alice).unwrap();
    let e = newest(s);
    assert_eq!((e.action.as_str(), e.before.clone()), ("delete", j(&sb2)));
    s.delete_class("gold", Expect::Any, &alice).unwrap();
    assert_eq!(newest(s).before, j(&cl));

    // Documents: audited unless provd itself saves them.
    let n = s.counts().unwrap().audit;
    s.put_document(
        "mta",
        "m1",
        &json!({"step": 1}),
        Expect::Any,
        &Actor::System,
    )
    .unwrap();
    s.delete_document("mta", "m1", Expect::Any, &Actor::System)
        .unwrap();
    assert_eq!(
        s.counts().unwrap().audit,
        n,
        "a role's own saves are not operator changes"
    );
    let doc = s
        .put_document("acs-preset", "p1", &json!({"w": 1}), Expect::Any, &alice)
        .unwrap();
    let e = newest(s);
    assert_eq!(
        (e.resource.as_str(), e.key.as_str(), e.after.clone()),
        ("acs-preset", "p1", j(&doc))
    );

    // Filters and paging, newest first.
    let all = s.audit_log(&AuditFilter::default(), None, 1000).unwrap();
    assert_eq!(all.len() as u64, s.counts().unwrap().audit);
    assert!(all.windows(2).all(|w| w[0].id > w[1].id), "newest first");
    let older = s
        .audit_log(&AuditFilter::default(), Some(all[2].id), 2)
        .unwrap();
    assert_eq!(
        older.iter().map(|e| e.id).collect::<Vec<_>>(),
        vec![all[3].id, all[4].id]
    );
    let bobs = s
        .audit_log(
            &AuditFilter {
                who: Some("cli:bob".into()),
                ..Default::default()
            },
            None,
            100,
        )
        .unwrap();
    assert_eq!(bobs.len(), 3);
    let dev1 = s
        .audit_log(
            &AuditFilter {
                resource: Some("device".into()),
                key: Some(mac(1).to_string()),
                who: None,
            },
            None,
            100,
        )
        .unwrap();
    assert_eq!(
        dev1.iter().map(|e| e.action.as_str()).collect::<Vec<_>>(),
        ["delete", "update", "create"]
    );
}

/// Serialising anything to the JSON the audit log holds.
mod erased {
    pub trait Ser {
        fn json(&self) -> serde_json::Value;
    }
    impl<T: serde::Serialize> Ser for T {
        fn json(&self) -> serde_json::Value {
            serde_json::to_value(self).unwrap()
        }
    }
}

/// Events come back newest first, per device, paged by id; trimming drops the old and all
/// but the newest N per device.
pub fn timeline_order_and_trim(s: &dyn Store) {
    let t0 = 1_700_000_000_000i64;
    let ev = |n: u32, at: i64, kind: &str| NewEvent {
        mac: mac(n),
        at,
        source: Source::Dhcp,
        kind: kind.into(),
        detail: json!({"relay": "10.0.0.1", "i": at - t0}),
    };
    let mut batch = Vec::new();
    for i in 0..5 {
        batch.push(ev(1, t0 + i, &format!("a{i}")));
        if i < 3 {
            batch.push(ev(2, t0 + i, &format!("b{i}")));
        }
    }
    batch[1].source = Source::Tftp;
    s.append_events(&batch).unwrap();
    let tl = s.timeline(mac(1), None, 100).unwrap();
    assert_eq!(
        tl.iter().map(|e| e.event.kind.as_str()).collect::<Vec<_>>(),
        ["a4", "a3", "a2", "a1", "a0"]
    );
    assert!(tl.windows(2).all(|w| w[0].id > w[1].id));
    assert_eq!(tl[4].event, batch[0]);
    let b = s.timeline(mac(2), None, 100).unwrap();
    assert_eq!(b.len(), 3);
    assert_eq!(b[2].event.source, Source::Tftp);
    assert_eq!(b[2].event.detail, json!({"relay": "10.0.0.1", "i": 0}));
    let older = s.timeline(mac(1), Some(tl[1].id), 2).unwrap();
    assert_eq!(
        older
            .iter()
            .map(|e| e.event.kind.as_str())
            .collect::<Vec<_>>(),
        ["a2", "a1"]
    );
    assert!(s.timeline(mac(3), None, 10).unwrap().is_empty());
    // Stored out of time order (a batch from the roles' writer after an API event): read back
    // newest first by time, and paged through in that order.
    s.append_events(&[ev(4, t0 + 5, "api")]).unwrap();
    s.append_events(&[ev(4, t0 + 3, "dhcp"), ev(4, t0 + 4, "tftp")])
        .unwrap();
    let kinds = |tl: Vec<Event>| tl.into_iter().map(|e| e.event.kind).collect::<Vec<_>>();
    let d = s.timeline(mac(4), None, 100).unwrap();
    assert_eq!(kinds(d.clone()), ["api", "tftp", "dhcp"]);
    assert_eq!(
        kinds(s.timeline(mac(4), Some(d[0].id), 1).unwrap()),
        ["tftp"]
    );
    assert_eq!(
        kinds(s.timeline(mac(4), Some(d[1].id), 5).unwrap()),
        ["dhcp"]
    );
    // Batches larger than one statement.
    let many: Vec<NewEvent> = (0..700).map(|i| ev(3, t0 + 10 + i, "bulk")).collect();
    s.append_events(&many).unwrap();
    assert_eq!(s.counts().unwrap().events, 711);
    assert_eq!(s.timeline(mac(3), None, 1).unwrap()[0].event.at, t0 + 709);

    // Older than t0+1: a0 and b0 go.
    assert_eq!(s.trim_events(t0 + 1, 1000).unwrap(), 2);
    assert_eq!(s.timeline(mac(1), None, 100).unwrap().len(), 4);
    // Keep 2 per device: a1, a2 go; b1 stays with b2; device 3 keeps 2 of 700.
    // Device 4 keeps its two newest by time (the API's event, stored first, among them).
    assert_eq!(s.trim_events(0, 2).unwrap(), 2 + 698 + 1);
    assert_eq!(
        kinds(s.timeline(mac(4), None, 100).unwrap()),
        ["api", "tftp"]
    );
    assert_eq!(
        s.timeline(mac(1), None, 100)
            .unwrap()
            .iter()
            .map(|e| e.event.kind.as_str())
            .collect::<Vec<_>>(),
        ["a4", "a3"]
    );
    assert_eq!(s.timeline(mac(2), None, 100).unwrap().len(), 2);
    assert_eq!(s.counts().unwrap().events, 8);
    assert_eq!(s.trim_events(0, 2).unwrap(), 0);
    expect_invalid(s.append_events(&[ev(1, t0, "")]), "events[0].kind");
    assert_eq!(s.counts().unwrap().events, 8);
}

/// Tokens are found by the hash of their secret; names and hashes are unique; the hash never
/// reaches the audit log.
pub fn tokens_by_hash(s: &dyn Store) {
    let h1 = [0xa1u8; 32];
    let mut h2 = [0xb2u8; 32];
    h2[31] = 0;
    let spec = TokenSpec {
        name: "ci".into(),
        role: TokenRole::Operator,
        scope: Scope {
            relays: vec![Ipv4Addr::new(10, 9, 0, 1)],
            classes: vec!["gold".into()],
        },
        hash: h1,
    };
    let t = s.put_token(&spec, &Actor::Cli("root".into())).unwrap();
    assert_eq!(
        (t.id.as_str(), t.role, &t.scope),
        ("ci", TokenRole::Operator, &spec.scope)
    );
    assert_eq!(s.token_by_hash(&h1).unwrap(), Some(t.clone()));
    assert_eq!(s.token_by_hash(&h2).unwrap(), None);
    expect_conflict(
        s.put_token(
            &TokenSpec {
                hash: h2,
                ..spec.clone()
            },
            &who(),
        ),
        "ci",
    );
    expect_conflict(
        s.put_token(
            &TokenSpec {
                name: "other".into(),
                ..spec.clone()
            },
            &who(),
        ),
        "same secret",
    );
    let ro = s
        .put_token(
            &TokenSpec {
                name: "a-reader".into(),
                role: TokenRole::ReadOnly,
                scope: Scope::default(),
                hash: h2,
            },
            &who(),
        )
        .unwrap();
    assert_eq!(s.list_tokens().unwrap(), vec![ro.clone(), t.clone()]);
    let e = &s
        .audit_log(
            &AuditFilter {
                resource: Some("token".into()),
                ..Default::default()
            },
            None,
            10,
        )
        .unwrap();
    assert_eq!(e.len(), 2);
    assert_eq!(e[1].after, Some(serde_json::to_value(&t).unwrap()));
    let text = serde_json::to_string(&e).unwrap();
    assert!(
        !text.contains("hash") && !text.contains("a1a1") && !text.contains("161,161"),
        "{text}"
    );
    s.delete_token("ci", &who()).unwrap();
    assert_eq!(s.token_by_hash(&h1).unwrap(), None);
    expect_not_found(s.delete_token("ci", &who()));
    assert_eq!(s.list_tokens().unwrap(), vec![ro]);
}

/// Documents: per collection, versioned, paged.
pub fn documents(s: &dyn Store) {
    assert_eq!(s.get_document("mta", "a").unwrap(), None);
    let body = json!({"flow": [1, 2, {"x": null}], "ok": true});
    let d = s
        .put_document("mta", "a", &body, Expect::Any, &Actor::System)
        .unwrap();
    assert_eq!((d.version, &d.body), (1, &body));
    assert_eq!(s.get_document("mta", "a").unwrap(), Some(d.clone()));
    let d2 = s
        .put_document(
            "mta",
            "a",
            &json!("scalar"),
            Expect::Version(1),
            &Actor::System,
        )
        .unwrap();
    assert_eq!(d2.version, 2);
    assert_eq!(
        s.get_document("mta", "a").unwrap().unwrap().body,
        json!("scalar")
    );
    for id in ["b", "c", "d"] {
        s.put_document("mta", id, &json!({}), Expect::Any, &Actor::System)
            .unwrap();
    }
    s.put_document("http-profile", "a", &json!(1), Expect::Any, &Actor::System)
        .unwrap();
    assert_eq!(
        s.get_document("http-profile", "a").unwrap().unwrap().body,
        json!(1)
    );
    let p = s.list_documents("mta", &PageRequest::first(3)).unwrap();
    assert_eq!(
        p.items.iter().map(|d| d.id.as_str()).collect::<Vec<_>>(),
        ["a", "b", "c"]
    );
    assert_eq!(p.next.as_deref(), Some("c"));
    let p = s
        .list_documents(
            "mta",
            &PageRequest {
                after: p.next,
                limit: 3,
            },
        )
        .unwrap();
    assert_eq!((p.items.len(), p.next), (1, None));
    s.delete_document("mta", "a", Expect::Version(2), &Actor::System)
        .unwrap();
    assert_eq!(s.get_document("mta", "a").unwrap(), None);
    assert_eq!(
        s.get_document("http-profile", "a")
            .unwrap()
            .unwrap()
            .version,
        1
    );
    assert_eq!(s.counts().unwrap().documents, 4);
    expect_invalid(
        s.put_document("a/b", "x", &json!(1), Expect::Any, &Actor::System),
        "collection",
    );
    expect_invalid(
        s.put_document("mta", "", &json!(1), Expect::Any, &Actor::System),
        "id",
    );
    let big = json!("x".repeat(1 << 20));
    expect_invalid(
        s.put_document("mta", "big", &big, Expect::Any, &Actor::System),
        "body",
    );
}

/// Each device, subscriber, class and reservation write adds one change row (version 0 for a
/// delete) in commit order; documents, tokens and events add none.
pub fn changes_feed(s: &dyn Store) {
    assert!(s.changes(0, 100).unwrap().is_empty());
    assert_eq!(s.last_change().unwrap(), 0);
    s.put_subscriber(&sub("s1"), Expect::Any, &who()).unwrap();
    s.put_class(&class("gold"), Expect::Any, &who()).unwrap();
    s.put_device(&dev(1), Expect::Any, &who()).unwrap();
    s.put_device(&dev(1), Expect::Any, &who()).unwrap();
    s.put_reservation(&res(1, [10, 0, 0, 1]), Expect::Any, &who())
        .unwrap();
    s.put_document("mta", "x", &json!(1), Expect::Any, &who())
        .unwrap();
    s.put_token(
        &TokenSpec {
            name: "t".into(),
            role: TokenRole::Admin,
            scope: Scope::default(),
            hash: [7; 32],
        },
        &who(),
    )
    .unwrap();
    s.append_events(&[NewEvent {
        mac: mac(1),
        at: 1,
        source: Source::Api,
        kind: "k".into(),
        detail: json!({}),
    }])
    .unwrap();
    let _ = s.put_device(&dev(1), Expect::Absent, &who()).unwrap_err();
    s.delete_device(mac(1), Expect::Any, &who()).unwrap();
    s.delete_class("gold", Expect::Any, &who()).unwrap();
    let ch = s.changes(0, 100).unwrap();
    let got: Vec<(ChangeKind, String, u64)> = ch
        .iter()
        .map(|c| (c.kind, c.key.clone(), c.version))
        .collect();
    let m = mac(1).to_string();
    assert_eq!(
        got,
        vec![
            (ChangeKind::Subscriber, "s1".into(), 1),
            (ChangeKind::Class, "gold".into(), 1),
            (ChangeKind::Device, m.clone(), 1),
            (ChangeKind::Device, m.clone(), 2),
            (ChangeKind::Reservation, m.clone(), 1),
            (ChangeKind::Device, m.clone(), 0),
            (ChangeKind::Class, "gold".into(), 0),
        ]
    );
    assert!(ch.windows(2).all(|w| w[0].seq < w[1].seq));
    let rest = s.changes(ch[4].seq, 1).unwrap();
    assert_eq!(rest, vec![ch[5].clone()]);
    assert!(s.changes(ch[6].seq, 100).unwrap().is_empty());
    // An import: one change row per created or updated device, none for unchanged ones.
    s.import_devices(&[dev(1), dev(2)], &who()).unwrap();
    let mut d2 = dev(2);
    d2.serial = None;
    s.import_devices(&[dev(1), d2], &who()).unwrap();
    let tail: BTreeSet<(String, u64)> = s
        .changes(ch[6].seq, 100)
        .unwrap()
        .into_iter()
        .map(|c| (c.key, c.version))
        .collect();
    assert_eq!(
        tail,
        BTreeSet::from([(m, 1), (mac(2).to_string(), 1), (mac(2).to_string(), 2)])
    );
    // Trimmed through a sequence number: what is above it stays, in order.
    let all = s.changes(0, 1000).unwrap();
    assert_eq!(s.last_change().unwrap(), all.last().unwrap().seq);
    assert_eq!(s.trim_changes(ch[4].seq).unwrap(), 5);
    assert_eq!(s.changes(0, 1000).unwrap(), all[5..].to_vec());
    assert_eq!(
        s.trim_changes(ch[4].seq).unwrap(),
        0,
        "nothing left to trim"
    );
}

/// `counts` counts every table.
pub fn counts(s: &dyn Store) {
    assert_eq!(s.counts().unwrap(), Counts::default());
    s.put_subscriber(&sub("s1"), Expect::Any, &who()).unwrap();
    s.put_class(&class("a"), Expect::Any, &who()).unwrap();
    s.put_class(&class("b"), Expect::Any, &who()).unwrap();
    s.import_devices(&devices_n(0..3, dev), &who()).unwrap();
    s.put_reservation(&res(1, [10, 0, 0, 1]), Expect::Any, &who())
        .unwrap();
    s.put_document("c", "1", &json!(1), Expect::Any, &Actor::System)
        .unwrap();
    s.append_events(&[NewEvent {
        mac: mac(1),
        at: 1,
        source: Source::Api,
        kind: "k".into(),
        detail: json!({}),
    }])
    .unwrap();
    s.put_token(
        &TokenSpec {
            name: "t".into(),
            role: TokenRole::Admin,
            scope: Scope::default(),
            hash: [7; 32],
        },
        &who(),
    )
    .unwrap();
    assert_eq!(
        s.counts().unwrap(),
        Counts {
            devices: 3,
            subscribers: 1,
            classes: 2,
            reservations: 1,
            documents: 1,
            events: 1,
            // 1 subscriber + 2 classes + 1 import + 1 reservation + 1 token.
            audit: 6,
            tokens: 1,
        }
    );
}

/// Bad values are refused with the field at fault, and nothing is written.
pub fn invalid_field_names(s: &dyn Store) {
    let bad_sub = |id: &str| SubscriberSpec {
        id: id.into(),
        ..SubscriberSpec::default()
    };
    expect_invalid(s.put_subscriber(&bad_sub(""), Expect::Any, &who()), "id");
    expect_invalid(
        s.put_subscriber(&bad_sub(&"x".repeat(129)), Expect::Any, &who()),
        "id",
    );
    expect_invalid(
        s.put_subscriber(&bad_sub("a\nb"), Expect::Any, &who()),
        "id",
    );
    s.put_subscriber(&bad_sub(&"x".repeat(128)), Expect::Any, &who())
        .unwrap();
    s.put_subscriber(&bad_sub("Ünïcode acct #1"), Expect::Any, &who())
        .unwrap();
    let mut sb = sub("ok");
    sb.vars = vars(json!({"a b": 1}));
    expect_invalid(s.put_subscriber(&sb, Expect::Any, &who()), "vars.a b");

    let bad_class = |n: &str| ClassSpec {
        name: n.into(),
        ..ClassSpec::default()
    };
    expect_invalid(s.put_class(&bad_class(""), Expect::Any, &who()), "name");
    expect_invalid(
        s.put_class(&bad_class("has space"), Expect::Any, &who()),
        "name",
    );
    expect_invalid(
        s.put_class(&bad_class(&"c".repeat(65)), Expect::Any, &who()),
        "name",
    );
    s.put_class(&bad_class("Gold_1.5-x"), Expect::Any, &who())
        .unwrap();

    let with = |f: &dyn Fn(&mut DeviceSpec)| {
        let mut d = dev(1);
        f(&mut d);
        d
    };
    expect_invalid(
        s.put_device(
            &with(&|d| d.vars = vars(json!({"1x": 1}))),
            Expect::Any,
            &who(),
        ),
        "vars.1x",
    );
    expect_invalid(
        s.put_device(
            &with(&|d| d.vars = vars(json!({"a": {"b": 1}}))),
            Expect::Any,
            &who(),
        ),
        "vars.a",
    );
    expect_invalid(
        s.put_device(
            &with(&|d| d.subscriber = Some(String::new())),
            Expect::Any,
            &who(),
        ),
        "subscriber",
    );
    expect_invalid(
        s.put_device(
            &with(&|d| d.class_of_service = Some("x y".into())),
            Expect::Any,
            &who(),
        ),
        "class_of_service",
    );
    expect_invalid(
        s.put_device(
            &with(&|d| d.serial = Some("a\u{0}b".into())),
            Expect::Any,
            &who(),
        ),
        "serial",
    );
    expect_invalid(
        s.put_device(
            &with(&|d| d.device_id = Some("x".repeat(300))),
            Expect::Any,
            &who(),
        ),
        "device_id",
    );
    expect_invalid(
        s.put_device(&with(&|d| d.duid = Some("zz".into())), Expect::Any, &who()),
        "duid",
    );
    expect_invalid(
        s.import_devices(&[with(&|d| d.duid = Some("zz".into()))], &who()),
        "duid",
    );
    expect_invalid(
        s.put_reservation(
            &ReservationSpec {
                dhcp_class: Some(String::new()),
                ..res(1, [10, 0, 0, 1])
            },
            Expect::Any,
            &who(),
        ),
        "dhcp_class",
    );
    expect_invalid(
        s.put_token(
            &TokenSpec {
                name: "no spaces".into(),
                role: TokenRole::Admin,
                scope: Scope::default(),
                hash: [1; 32],
            },
            &who(),
        ),
        "name",
    );
    expect_invalid(
        s.list_devices(
            &DeviceFilter {
                mac_prefix: Some("zz".into()),
                ..Default::default()
            },
            &PageRequest::first(1),
        ),
        "mac_prefix",
    );
    let c = s.counts().unwrap();
    assert_eq!(
        (
            c.devices,
            c.subscribers,
            c.classes,
            c.reservations,
            c.tokens
        ),
        (0, 2, 1, 0, 0)
    );
}

/// Writers racing with `If-Match` never lose an update: each success bumps the version by
/// exactly one, and a loser sees `VersionMismatch` and retries.
pub fn concurrent_if_match(s: &dyn Store) {
    s.put_subscriber(&sub("hot"), Expect::Any, &who()).unwrap();
    let threads = 4;
    let per = 15u64;
    std::thread::scope(|sc| {
        for t in 0..threads {
            sc.spawn(move || {
                let me = Actor::Token(format!("w{t}"));
                let mut done = 0;
                while done < per {
                    let cur = s.get_subscriber("hot").unwrap().unwrap();
                    let mut next = cur.spec.clone();
                    let n = next.vars.get("n").and_then(|v| v.as_u64()).unwrap_or(0);
                    next.vars.insert("n".into(), json!(n + 1));
                    match s.put_subscriber(&next, Expect::Version(cur.version), &me) {
                        Ok(_) => done += 1,
                        Err(StoreError::VersionMismatch { .. }) => {}
                        Err(e) => panic!("{e}"),
                    }
                }
            });
        }
    });
    let total = threads * per;
    let got = s.get_subscriber("hot").unwrap().unwrap();
    assert_eq!(got.version, 1 + total);
    assert_eq!(got.spec.vars.get("n"), Some(&json!(total)));
    let subs_changes = s.changes(0, 1000).unwrap().len() as u64;
    assert_eq!(subs_changes, 1 + total);
}

fn tpl(name: &str, text: &str) -> TemplateVersionSpec {
    TemplateVersionSpec {
        name: name.into(),
        kind: TemplateKind::Cm,
        text: text.into(),
        comment: None,
    }
}

/// Template versions: appended 1, 2, 3 per name, listed newest first, read one by one and
/// the newest per name; `Expect` guards a save made on a stale view; every save is audited
/// and in the change feed; bad names, texts and comments are refused naming the field, and
/// nothing of a refused save lands.
pub fn template_versions(s: &dyn Store) {
    assert_eq!(s.latest_template_version("cm.cfg.j2").unwrap(), None);
    assert!(s.latest_template_versions().unwrap().is_empty());
    let mut first = tpl("cm.cfg.j2", "Main {\n\tNetworkAccess 1;\n}\n");
    first.comment = Some("seed".into());
    let v1 = s
        .put_template_version(&first, Expect::Absent, &who())
        .unwrap();
    assert_eq!(
        (v1.info.version, v1.info.kind, v1.info.actor.as_str()),
        (1, TemplateKind::Cm, "token:alice")
    );
    assert_eq!(v1.info.comment.as_deref(), Some("seed"));
    expect_conflict(
        s.put_template_version(&tpl("cm.cfg.j2", "x"), Expect::Absent, &who()),
        "already exists",
    );
    let v2 = s
        .put_template_version(&tpl("cm.cfg.j2", "two"), Expect::Version(1), &who())
        .unwrap();
    assert_eq!(v2.info.version, 2);
    // A save based on version 1, after version 2 was saved: refused, and nothing lands.
    expect_mismatch(
        s.put_template_version(&tpl("cm.cfg.j2", "stale"), Expect::Version(1), &who()),
        1,
        2,
    );
    expect_not_found(s.put_template_version(&tpl("new.j2", "x"), Expect::Version(3), &who()));
    let v3 = s
        .put_template_version(&tpl("cm.cfg.j2", "three"), Expect::Any, &who())
        .unwrap();
    assert_eq!(v3.info.version, 3);
    let mut mta = tpl("mta.cfg.j2", "m");
    mta.kind = TemplateKind::Mta;
    s.put_template_version(&mta, Expect::Any, &who()).unwrap();

    let list = s.template_versions("cm.cfg.j2", None, 100).unwrap();
    let versions: Vec<u64> = list.iter().map(|v| v.version).collect();
    assert_eq!(versions, vec![3, 2, 1], "newest first");
    assert_eq!(list[2], v1.info);
    let older: Vec<u64> = s
        .template_versions("cm.cfg.j2", Some(3), 1)
        .unwrap()
        .iter()
        .map(|v| v.version)
        .collect();
    assert_eq!(older, vec![2], "before and limit page through");
    assert!(s.template_versions("nope", None, 10).unwrap().is_empty());
    assert_eq!(
        s.get_template_version("cm.cfg.j2", 1).unwrap(),
        Some(v1.clone())
    );
    assert_eq!(
        s.get_template_version("cm.cfg.j2", 2)
            .unwrap()
            .unwrap()
            .text,
        "two"
    );
    assert_eq!(s.get_template_version("cm.cfg.j2", 4).unwrap(), None);
    assert_eq!(
        s.latest_template_version("cm.cfg.j2").unwrap(),
        Some(v3.clone())
    );
    let latest: Vec<(String, u64)> = s
        .latest_template_versions()
        .unwrap()
        .into_iter()
        .map(|v| (v.info.name, v.info.version))
        .collect();
    assert_eq!(
        latest,
        vec![("cm.cfg.j2".into(), 3), ("mta.cfg.j2".into(), 1)]
    );

    // Audited: one entry per save, the text in `after`, the previous version (no text) in
    // `before`.
    let a = s
        .audit_log(
            &AuditFilter {
                resource: Some("template".into()),
                key: Some("cm.cfg.j2".into()),
                who: None,
            },
            None,
            100,
        )
        .unwrap();
    let actions: Vec<&str> = a.iter().map(|e| e.action.as_str()).collect();
    assert_eq!(actions, vec!["update", "update", "create"]);
    assert_eq!(a[0].after.as_ref().unwrap()["text"], "three");
    assert_eq!(a[0].after.as_ref().unwrap()["version"], 3);
    assert_eq!(a[0].before.as_ref().unwrap()["version"], 2);
    assert!(a[0].before.as_ref().unwrap().get("text").is_none());
    assert_eq!(a[2].before, None);

    // In the change feed, as the catalog follows it.
    let ch: Vec<(ChangeKind, String, u64)> = s
        .changes(0, 100)
        .unwrap()
        .into_iter()
        .map(|c| (c.kind, c.key, c.version))
        .collect();
    assert_eq!(
        ch,
        vec![
            (ChangeKind::Template, "cm.cfg.j2".into(), 1),
            (ChangeKind::Template, "cm.cfg.j2".into(), 2),
            (ChangeKind::Template, "cm.cfg.j2".into(), 3),
            (ChangeKind::Template, "mta.cfg.j2".into(), 1),
        ]
    );

    // Refused, naming the field; nothing lands.
    expect_invalid(
        s.put_template_version(&tpl("", "x"), Expect::Any, &who()),
        "name",
    );
    expect_invalid(
        s.put_template_version(&tpl("a\nb", "x"), Expect::Any, &who()),
        "name",
    );
    expect_invalid(
        s.put_template_version(&tpl("cm.cfg.j2", "a\0b"), Expect::Any, &who()),
        "text",
    );
    expect_invalid(
        s.put_template_version(
            &tpl("cm.cfg.j2", &"x".repeat(256 * 1024 + 1)),
            Expect::Any,
            &who(),
        ),
        "text",
    );
    let mut long = tpl("cm.cfg.j2", "x");
    long.comment = Some("c".repeat(1025));
    expect_invalid(
        s.put_template_version(&long, Expect::Any, &who()),
        "comment",
    );
    assert_eq!(s.latest_template_version("cm.cfg.j2").unwrap(), Some(v3));
    assert_eq!(s.changes(0, 100).unwrap().len(), 4);
    // Unicode and tabs survive as written.
    let odd = "Main {\n\tSnmpMibObject sysLocation.0 String \"Zürich – 東京\";\n}\n";
    let v = s
        .put_template_version(&tpl("odd.j2", odd), Expect::Any, &who())
        .unwrap();
    assert_eq!(
        s.get_template_version("odd.j2", 1).unwrap().unwrap().text,
        odd
    );
    assert_eq!(v.text, odd);
}

/// Saves of one template from several threads at once: every one lands with its own
/// number, 1..=n with no gap or repeat (max + 1 is atomic on both backends).
pub fn concurrent_template_saves(s: &dyn Store) {
    let threads = 4u64;
    let per = 10u64;
    std::thread::scope(|sc| {
        for t in 0..threads {
            sc.spawn(move || {
                let me = Actor::Token(format!("w{t}"));
                for i in 0..per {
                    s.put_template_version(&tpl("hot.j2", &format!("{t}/{i}")), Expect::Any, &me)
                        .unwrap();
                }
            });
        }
    });
    let total = threads * per;
    let got: Vec<u64> = s
        .template_versions("hot.j2", None, 1000)
        .unwrap()
        .iter()
        .map(|v| v.version)
        .collect();
    assert_eq!(got, (1..=total).rev().collect::<Vec<_>>());
    let texts: BTreeSet<String> = (1..=total)
        .map(|v| s.get_template_version("hot.j2", v).unwrap().unwrap().text)
        .collect();
    assert_eq!(texts.len() as u64, total, "each save's own text");
    assert_eq!(s.changes(0, 1000).unwrap().len() as u64, total);
}
