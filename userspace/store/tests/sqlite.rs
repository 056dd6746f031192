//! The shared suite, and what is particular to the embedded backend, on a real SQLite file.

use std::ops::Deref;

use provd_store::sqlite::SqliteStore;
use provd_store::*;

/// A store in a file in its own temp dir (removed on drop, after the store closes).
struct Temp {
    store: SqliteStore,
    _dir: tempfile::TempDir,
}

impl Deref for Temp {
    type Target = SqliteStore;
    fn deref(&self) -> &SqliteStore {
        &self.store
    }
}

fn open() -> Temp {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path().join("state/store.db")).unwrap();
    Temp { store, _dir: dir }
}

provd_store::store_suite!(open);

fn who() -> Actor {
    Actor::Cli("test".into())
}

#[test]
fn reopen_keeps_everything_and_migrates_once() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("a/b/store.db");
    let d = {
        let s = SqliteStore::open(&path).unwrap();
        s.put_subscriber(
            &SubscriberSpec {
                id: "s".into(),
                ..Default::default()
            },
            Expect::Any,
            &who(),
        )
        .unwrap();
        s.put_device(
            &DeviceSpec {
                mac: provd_store::suite::mac(1),
                subscriber: Some("s".into()),
                ..Default::default()
            },
            Expect::Any,
            &who(),
        )
        .unwrap()
    };
    let s = SqliteStore::open(&path).unwrap();
    assert_eq!(s.get_device(d.spec.mac).unwrap(), Some(d));
    assert_eq!(s.schema_version().unwrap(), SCHEMA_VERSION);
    let raw = rusqlite::Connection::open(&path).unwrap();
    let n: i64 = raw
        .query_row("SELECT count(*) FROM schema_migrations", [], |r| r.get(0))
        .unwrap();
    assert_eq!(n, i64::from(SCHEMA_VERSION), "each migration applied once");
    let mode: String = raw
        .query_row("PRAGMA journal_mode", [], |r| r.get(0))
        .unwrap();
    assert_eq!(mode, "wal");
}

#[test]
fn a_newer_schema_is_refused_by_name() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store.db");
    drop(SqliteStore::open(&path).unwrap());
    let raw = rusqlite::Connection::open(&path).unwrap();
    raw.execute(
        "INSERT INTO schema_migrations (version, applied_at) VALUES (?1, 0)",
        [SCHEMA_VERSION + 1],
    )
    .unwrap();
    drop(raw);
    let e = SqliteStore::open(&path).unwrap_err().to_string();
    assert!(
        e.contains("newer than this provd knows")
            && e.contains(&format!("version {}", SCHEMA_VERSION + 1)),
        "{e}"
    );
}

#[test]
fn not_a_database_is_an_error_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("junk.db");
    std::fs::write(&path, vec![0x55u8; 8192]).unwrap();
    let e = SqliteStore::open(&path).unwrap_err().to_string();
    assert!(e.contains("junk.db"), "{e}");
}

/// Reads run on their own connections: a long write (a big import holding the writer) does
/// not hold them up.
#[test]
fn reads_do_not_wait_for_the_writer() {
    use std::sync::atomic::{AtomicBool, Ordering};
    let t = open();
    let m = provd_store::suite::mac;
    t.put_device(
        &DeviceSpec {
            mac: m(0),
            ..Default::default()
        },
        Expect::Any,
        &who(),
    )
    .unwrap();
    let batch: Vec<DeviceSpec> = (1..50_001)
        .map(|n| DeviceSpec {
            mac: m(n),
            ..Default::default()
        })
        .collect();
    let done = AtomicBool::new(false);
    let reads_during = std::thread::scope(|sc| {
        let importer = sc.spawn(|| {
            t.import_devices(&batch, &who()).unwrap();
            done.store(true, Ordering::SeqCst);
        });
        std::thread::sleep(std::time::Duration::from_millis(50));
        let mut n = 0u32;
        while !done.load(Ordering::SeqCst) {
            assert!(t.get_device(m(0)).unwrap().is_some());
            n += 1;
        }
        importer.join().unwrap();
        n
    });
    assert!(
        reads_during >= 10,
        "only {reads_during} reads while the import ran"
    );
    assert!(t.get_device(m(50_000)).unwrap().is_some());
}

#[test]
fn open_by_location() {
    let dir = tempfile::tempdir().unwrap();
    let s = provd_store::open(&Location::Embedded(dir.path().join("x.db"))).unwrap();
    assert_eq!(s.backend(), Backend::Embedded);
    provd_store::suite::schema_version_is_latest(&*s);
}

/// `cargo test -p provd-store --release --test sqlite -- --ignored --nocapture bench`
#[test]
#[ignore = "a benchmark: 1 M devices"]
fn bench_import_and_get() {
    let t = open();
    bench::run(&*t);
}

#[path = "common/bench.rs"]
mod bench;

/// A store made by a build that knew only migration 1 (no template versions) opens with
/// migration 2 applied and its records kept.
#[test]
fn a_version_1_store_gains_template_versions() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store.db");
    let d = SqliteStore::open(&path)
        .unwrap()
        .put_device(
            &DeviceSpec {
                mac: provd_store::suite::mac(1),
                ..Default::default()
            },
            Expect::Any,
            &who(),
        )
        .unwrap();
    let raw = rusqlite::Connection::open(&path).unwrap();
    raw.execute_batch(
        "DROP TABLE template_versions; DROP INDEX devices_kind_mac; \
         DELETE FROM schema_migrations WHERE version >= 2;",
    )
    .unwrap();
    drop(raw);
    let s = SqliteStore::open(&path).unwrap();
    assert_eq!(s.schema_version().unwrap(), provd_store::SCHEMA_VERSION);
    assert_eq!(s.get_device(d.spec.mac).unwrap(), Some(d));
    let v = s
        .put_template_version(
            &TemplateVersionSpec {
                name: "cm.cfg.j2".into(),
                kind: TemplateKind::Cm,
                text: "Main {\n}\n".into(),
                comment: None,
            },
            Expect::Absent,
            &who(),
        )
        .unwrap();
    assert_eq!(v.info.version, 1);
}
