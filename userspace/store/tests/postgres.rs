//! The shared suite, and what is particular to PostgreSQL, on a real PostgreSQL 15 server
//! this test binary starts (one server, shared; a fresh database per test; the server stops
//! when the last test holding it ends).

use std::ops::Deref;
use std::sync::{Arc, Mutex, Weak};

use provd_store::postgres::PgStore;
use provd_store::testing::TempPostgres;
use provd_store::*;

static SERVER: Mutex<Weak<TempPostgres>> = Mutex::new(Weak::new());

fn server() -> Arc<TempPostgres> {
    let mut g = SERVER.lock().unwrap_or_else(|p| p.into_inner());
    if let Some(s) = g.upgrade() {
        return s;
    }
    let s = Arc::new(TempPostgres::start().expect("start PostgreSQL 15"));
    *g = Arc::downgrade(&s);
    s
}

/// A store on its own database. Field order: the store closes before the server may stop.
struct Temp {
    store: PgStore,
    server: Arc<TempPostgres>,
    url: String,
}

impl Deref for Temp {
    type Target = PgStore;
    fn deref(&self) -> &PgStore {
        &self.store
    }
}

fn open() -> Temp {
    let server = server();
    let url = server.fresh_database().unwrap();
    let store = PgStore::connect(&url, 4).unwrap();
    Temp { store, server, url }
}

provd_store::store_suite!(open);

fn who() -> Actor {
    Actor::Cli("test".into())
}

fn raw(url: &str) -> ::postgres::Client {
    ::postgres::Client::connect(url, ::postgres::NoTls).unwrap()
}

/// The sync client runs its own runtime: it must work from `spawn_blocking` on a
/// multi-thread tokio runtime, and the store may be dropped on an async worker.
#[test]
fn works_from_spawn_blocking_and_drops_in_async_context() {
    let t = open();
    let url = t.url.clone();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async move {
        let store =
            tokio::task::spawn_blocking(move || Arc::new(PgStore::connect(&url, 2).unwrap()))
                .await
                .unwrap();
        let mut tasks = Vec::new();
        for n in 0..8u32 {
            let s = store.clone();
            tasks.push(tokio::task::spawn_blocking(move || {
                let d = DeviceSpec {
                    mac: suite::mac(n),
                    ..Default::default()
                };
                s.put_device(&d, Expect::Absent, &who()).unwrap();
                s.get_device(d.mac).unwrap().unwrap().version
            }));
        }
        for t in tasks {
            assert_eq!(t.await.unwrap(), 1);
        }
        // Dropped here, on a runtime worker.
        drop(store);
    });
    assert_eq!(t.counts().unwrap().devices, 8);
}

/// Several nodes starting at once on an empty database: the migration runs once, all
/// connect.
#[test]
fn concurrent_connects_migrate_once() {
    let server = server();
    let url = server.fresh_database().unwrap();
    std::thread::scope(|sc| {
        let hs: Vec<_> = (0..4)
            .map(|_| sc.spawn(|| PgStore::connect(&url, 1).map(|s| s.schema_version())))
            .collect();
        for h in hs {
            assert_eq!(h.join().unwrap().unwrap().unwrap(), SCHEMA_VERSION);
        }
    });
    let n: i64 = raw(&url)
        .query_one("SELECT count(*) FROM schema_migrations", &[])
        .unwrap()
        .get(0);
    assert_eq!(n, i64::from(SCHEMA_VERSION));
}

#[test]
fn a_newer_schema_is_refused_by_name() {
    let t = open();
    raw(&t.url)
        .execute(
            "INSERT INTO schema_migrations (version, applied_at) VALUES ($1, 0)",
            &[&i64::from(SCHEMA_VERSION + 1)],
        )
        .unwrap();
    let e = PgStore::connect(&t.url, 1).unwrap_err().to_string();
    assert!(
        e.contains("newer than this provd knows")
            && e.contains(&format!("version {}", SCHEMA_VERSION + 1)),
        "{e}"
    );
}

/// Connections the server drops are replaced: reads retry once, writes whose `BEGIN` found
/// the connection dead retry once.
#[test]
fn broken_connections_are_replaced() {
    let t = open();
    t.put_device(
        &DeviceSpec {
            mac: suite::mac(1),
            ..Default::default()
        },
        Expect::Any,
        &who(),
    )
    .unwrap();
    // Use every pooled client once so all four are connected.
    std::thread::scope(|sc| {
        for _ in 0..4 {
            sc.spawn(|| {
                for _ in 0..20 {
                    t.get_device(suite::mac(1)).unwrap();
                }
            });
        }
    });
    let killed: i64 = raw(&t.url)
        .query_one(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity \
             WHERE datname = current_database() AND pid <> pg_backend_pid()",
            &[],
        )
        .unwrap()
        .get(0);
    assert!(killed >= 1, "terminated {killed}");
    for i in 0..10u32 {
        assert!(t.get_device(suite::mac(1)).unwrap().is_some(), "read {i}");
    }
    killed_again(&t);
    for n in 2..10u32 {
        t.put_device(
            &DeviceSpec {
                mac: suite::mac(n),
                ..Default::default()
            },
            Expect::Any,
            &who(),
        )
        .unwrap();
    }
    assert_eq!(t.counts().unwrap().devices, 9);
}

fn killed_again(t: &Temp) {
    raw(&t.url)
        .execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
             WHERE datname = current_database() AND pid <> pg_backend_pid()",
            &[],
        )
        .unwrap();
}

#[test]
fn a_bad_url_names_the_field() {
    match PgStore::connect("postgresql://[nope", 1) {
        Err(StoreError::Invalid { field, .. }) => assert_eq!(field, "url"),
        other => panic!("{other:?}"),
    }
    // Nobody listening: an error, not a hang or a panic.
    let e =
        PgStore::connect("postgresql://postgres@127.0.0.1:1/x?connect_timeout=2", 1).unwrap_err();
    assert!(matches!(e, StoreError::Backend(_)), "{e:?}");
}

#[test]
fn open_by_location() {
    let t = open();
    let s = provd_store::open(&Location::Postgres {
        url: t.url.clone(),
        pool: 2,
    })
    .unwrap();
    assert_eq!(s.backend(), Backend::Postgres);
    provd_store::suite::schema_version_is_latest(&*s);
    let _ = &t.server;
}

/// `cargo test -p provd-store --release --test postgres -- --ignored --nocapture bench`
#[test]
#[ignore = "a benchmark: 1 M devices"]
fn bench_import_and_get() {
    let t = open();
    bench::run(&*t);
}

#[path = "common/bench.rs"]
mod bench;
