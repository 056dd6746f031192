//! The PostgreSQL backend: the store several provd nodes share.
//!
//! Built on the synchronous `postgres` client (tokio-postgres underneath, each client with its
//! own small runtime): call it from plain threads or tokio's `spawn_blocking`, never directly
//! on an async worker. A [`PgStore`] may be dropped anywhere, async context included.
//!
//! A small pool of clients; a client whose connection broke is replaced on its next checkout.
//! Statements are prepared once per client and cached. Record writes (devices, subscribers,
//! classes, reservations) take one transaction-scoped advisory lock, so they commit in the
//! order of their change sequence numbers: a follower reading `changes(after)` never skips a
//! change that commits late.

use std::collections::HashMap;
use std::error::Error as StdError;
use std::str::FromStr;
use std::sync::{Condvar, Mutex, MutexGuard};
use std::time::Duration;

use ::postgres::binary_copy::BinaryCopyInWriter;
use ::postgres::error::SqlState;
use ::postgres::types::{IsNull, ToSql, Type, to_sql_checked};
use ::postgres::{Client, GenericClient, NoTls, Statement};

use crate::sql::{Conn, Row, V};
use crate::*;

/// Numbered migrations, applied in order at connect. Keep them parallel to
/// `sqlite::MIGRATIONS`: same tables, columns, keys and indexes. Keys are `COLLATE "C"` so
/// lists order (and cursors compare) bytewise, as on SQLite, whatever the database's locale.
pub(crate) const MIGRATIONS: &[(u32, &str)] = &[
    (
        1,
        r#"
CREATE TABLE subscribers (
    id TEXT COLLATE "C" PRIMARY KEY,
    name TEXT,
    vars JSONB NOT NULL,
    version BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE TABLE classes (
    name TEXT COLLATE "C" PRIMARY KEY,
    description TEXT,
    vars JSONB NOT NULL,
    version BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE TABLE devices (
    mac TEXT COLLATE "C" PRIMARY KEY,
    kind TEXT NOT NULL,
    subscriber TEXT COLLATE "C",
    class_of_service TEXT COLLATE "C",
    serial TEXT,
    device_id TEXT,
    duid TEXT,
    vars JSONB NOT NULL,
    version BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE INDEX devices_subscriber ON devices (subscriber);
CREATE INDEX devices_class ON devices (class_of_service);
CREATE INDEX devices_serial ON devices (serial);
CREATE INDEX devices_device_id ON devices (device_id);
CREATE INDEX devices_updated_at ON devices (updated_at);
CREATE TABLE reservations (
    mac TEXT COLLATE "C" PRIMARY KEY,
    address TEXT NOT NULL UNIQUE,
    dhcp_class TEXT,
    version BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE TABLE documents (
    collection TEXT COLLATE "C" NOT NULL,
    id TEXT COLLATE "C" NOT NULL,
    body JSONB NOT NULL,
    version BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (collection, id)
);
CREATE TABLE events (
    id BIGSERIAL PRIMARY KEY,
    mac TEXT COLLATE "C" NOT NULL,
    at BIGINT NOT NULL,
    source TEXT NOT NULL,
    kind TEXT NOT NULL,
    detail JSONB NOT NULL
);
CREATE INDEX events_mac_id ON events (mac, id);
CREATE INDEX events_at ON events (at);
CREATE TABLE audit (
    id BIGSERIAL PRIMARY KEY,
    at BIGINT NOT NULL,
    who TEXT NOT NULL,
    action TEXT NOT NULL,
    resource TEXT NOT NULL,
    key TEXT NOT NULL,
    before JSONB,
    after JSONB
);
CREATE INDEX audit_resource_key ON audit (resource, key, id);
CREATE INDEX audit_who ON audit (who, id);
CREATE TABLE tokens (
    name TEXT COLLATE "C" PRIMARY KEY,
    hash BYTEA NOT NULL UNIQUE,
    role TEXT NOT NULL,
    scope JSONB NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE TABLE changes (
    seq BIGSERIAL PRIMARY KEY,
    kind TEXT NOT NULL,
    key TEXT NOT NULL,
    version BIGINT NOT NULL
);
"#,
    ),
    // 2: template versions. Append-only: a version is never changed or deleted, so history
    // is linear (a rollback saves the old text as a new version).
    (
        2,
        r#"
CREATE TABLE template_versions (
    name TEXT COLLATE "C" NOT NULL,
    version BIGINT NOT NULL,
    kind TEXT NOT NULL,
    actor TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    comment TEXT,
    text TEXT NOT NULL,
    PRIMARY KEY (name, version)
);
"#,
    ),
    // 3: a device-type listing (`type=mta`) in MAC order reads only that type's rows.
    (3, "CREATE INDEX devices_kind_mac ON devices (kind, mac);"),
];

/// `pg_advisory_xact_lock` keys: "provd" and what they guard.
const MIGRATION_LOCK: i64 = 0x7072_6f76_6400_0001;
const RECORD_WRITE_LOCK: i64 = 0x7072_6f76_6400_0002;

fn pg_err(e: ::postgres::Error) -> StoreError {
    if let Some(db) = e.as_db_error() {
        if *db.code() == SqlState::UNIQUE_VIOLATION {
            return StoreError::Conflict {
                kind: "record",
                key: db.detail().unwrap_or_default().to_owned(),
                why: db.message().to_owned(),
            };
        }
        return StoreError::Backend(format!(
            "postgres: {} ({}){}",
            db.message(),
            db.code().code(),
            db.detail().map(|d| format!(": {d}")).unwrap_or_default()
        ));
    }
    StoreError::Backend(format!("postgres: {e}"))
}

impl ToSql for V {
    fn to_sql(
        &self,
        ty: &Type,
        out: &mut ::postgres::types::private::BytesMut,
    ) -> Result<IsNull, Box<dyn StdError + Sync + Send>> {
        match self {
            V::Null => Ok(IsNull::Yes),
            V::I64(n) if *ty == Type::INT4 => i32::try_from(*n)?.to_sql(ty, out),
            V::I64(n) => n.to_sql(ty, out),
            V::Text(s) | V::Json(s) if *ty == Type::JSONB => {
                // jsonb's binary form: a version byte, then the JSON text.
                out.extend_from_slice(&[1]);
                out.extend_from_slice(s.as_bytes());
                Ok(IsNull::No)
            }
            V::Text(s) | V::Json(s) => s.as_str().to_sql(ty, out),
            V::JsonVal(v) => v.to_sql(ty, out),
            V::Blob(b) => b.as_slice().to_sql(ty, out),
        }
    }

    fn accepts(_: &Type) -> bool {
        true
    }

    to_sql_checked!();
}

/// A client and the statements prepared on it.
struct PgClient {
    client: Client,
    stmts: HashMap<String, Statement>,
}

/// The store's logic on a client or a transaction.
struct Pg<'a, C: GenericClient> {
    c: &'a mut C,
    stmts: &'a mut HashMap<String, Statement>,
    /// Set when an error said the connection is gone (see [`conn_lost`]).
    lost: bool,
}

/// Whether `e` means the connection is gone (closed, a connection exception, or the server
/// terminating the backend: `57P01`...), even before the client has noticed the close.
fn conn_lost(e: &::postgres::Error) -> bool {
    e.is_closed()
        || e.code().is_some_and(|c| {
            let c = c.code();
            c.starts_with("08") || c.starts_with("57P0")
        })
}

impl<'a, C: GenericClient> Pg<'a, C> {
    fn new(c: &'a mut C, stmts: &'a mut HashMap<String, Statement>) -> Pg<'a, C> {
        Pg {
            c,
            stmts,
            lost: false,
        }
    }

    /// [`pg_err`], noting a lost connection.
    fn err(&mut self, e: ::postgres::Error) -> StoreError {
        self.lost |= conn_lost(&e);
        pg_err(e)
    }

    fn stmt(&mut self, sql: &str) -> Result<Statement> {
        if let Some(s) = self.stmts.get(sql) {
            return Ok(s.clone());
        }
        let s = match self.c.prepare(sql) {
            Ok(s) => s,
            Err(e) => return Err(self.err(e)),
        };
        // Statement texts are few (the filters' combinations at most); bound the cache anyway.
        if self.stmts.len() >= 512 {
            self.stmts.clear();
        }
        self.stmts.insert(sql.to_owned(), s.clone());
        Ok(s)
    }
}

fn params(p: &[V]) -> Vec<&(dyn ToSql + Sync)> {
    p.iter().map(|v| v as &(dyn ToSql + Sync)).collect()
}

fn column(r: &::postgres::Row, i: usize, ty: &Type) -> Result<V> {
    let g = |e: ::postgres::Error| StoreError::Backend(format!("postgres: column {i}: {e}"));
    Ok(match *ty {
        Type::INT8 => r
            .try_get::<_, Option<i64>>(i)
            .map_err(g)?
            .map_or(V::Null, V::I64),
        Type::INT4 => r
            .try_get::<_, Option<i32>>(i)
            .map_err(g)?
            .map_or(V::Null, |n| V::I64(i64::from(n))),
        Type::TEXT | Type::VARCHAR | Type::NAME | Type::BPCHAR => r
            .try_get::<_, Option<String>>(i)
            .map_err(g)?
            .map_or(V::Null, V::Text),
        Type::JSONB | Type::JSON => r
            .try_get::<_, Option<serde_json::Value>>(i)
            .map_err(g)?
            .map_or(V::Null, V::JsonVal),
        Type::BYTEA => r
            .try_get::<_, Option<Vec<u8>>>(i)
            .map_err(g)?
            .map_or(V::Null, V::Blob),
        ref t => {
            return Err(StoreError::Backend(format!(
                "postgres: column {i}: type {t}"
            )));
        }
    })
}

impl<C: GenericClient> Conn for Pg<'_, C> {
    fn exec(&mut self, sql: &str, p: &[V]) -> Result<u64> {
        let st = self.stmt(sql)?;
        match self.c.execute(&st, &params(p)) {
            Ok(n) => Ok(n),
            Err(e) => Err(self.err(e)),
        }
    }

    fn query(&mut self, sql: &str, p: &[V]) -> Result<Vec<Row>> {
        let st = self.stmt(sql)?;
        let rows = match self.c.query(&st, &params(p)) {
            Ok(r) => r,
            Err(e) => return Err(self.err(e)),
        };
        let types: Vec<Type> = st.columns().iter().map(|c| c.type_().clone()).collect();
        rows.iter()
            .map(|r| {
                types
                    .iter()
                    .enumerate()
                    .map(|(i, t)| column(r, i, t))
                    .collect::<Result<Vec<_>>>()
                    .map(Row)
            })
            .collect()
    }

    fn lock_clause(&self, share: bool) -> &'static str {
        if share { " FOR SHARE" } else { " FOR UPDATE" }
    }
}

/// The PostgreSQL store.
pub struct PgStore {
    config: ::postgres::Config,
    /// `None`: a slot whose client is to be (re)connected on checkout.
    pool: Mutex<Vec<Option<PgClient>>>,
    free: Condvar,
    size: usize,
}

impl std::fmt::Debug for PgStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Not the config: it may hold a password.
        f.debug_struct("PgStore")
            .field("hosts", &self.config.get_hosts())
            .field("dbname", &self.config.get_dbname())
            .field("pool", &self.size)
            .finish_non_exhaustive()
    }
}

/// A client checked out of the pool; back in on drop (as an empty slot if it broke).
struct Checkout<'a> {
    store: &'a PgStore,
    client: Option<PgClient>,
}

impl Drop for Checkout<'_> {
    fn drop(&mut self) {
        let c = self.client.take().filter(|c| !c.client.is_closed());
        self.store.lock_pool().push(c);
        self.store.free.notify_one();
    }
}

impl PgStore {
    /// A pool of up to `pool` clients (at least one; the first connected now, the others on
    /// first use) on the database at `url` (a `postgresql://` URL or `key=value` string).
    /// Applies the migrations the database lacks, in one transaction under an advisory lock,
    /// so several nodes starting at once apply each once. Blocking: call it where blocking
    /// is allowed (`spawn_blocking`, a plain thread).
    pub fn connect(url: &str, pool: usize) -> Result<PgStore> {
        let mut config = ::postgres::Config::from_str(url).map_err(|e| StoreError::Invalid {
            field: "url".into(),
            why: format!("not a PostgreSQL connection string: {e}"),
        })?;
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(Duration::from_secs(10));
        }
        config.keepalives_idle(Duration::from_secs(30));
        config.application_name("provd");
        let size = pool.max(1);
        let store = PgStore {
            config,
            pool: Mutex::new(Vec::with_capacity(size)),
            free: Condvar::new(),
            size,
        };
        let mut first = store.connect_one()?;
        migrate(&mut first)?;
        {
            let mut p = store.lock_pool();
            p.push(Some(first));
            p.extend((1..size).map(|_| None));
        }
        Ok(store)
    }

    fn connect_one(&self) -> Result<PgClient> {
        let client = self
            .config
            .connect(NoTls)
            .map_err(|e| StoreError::Backend(format!("connecting to PostgreSQL: {e}")))?;
        Ok(PgClient {
            client,
            stmts: HashMap::new(),
        })
    }

    fn lock_pool(&self) -> MutexGuard<'_, Vec<Option<PgClient>>> {
        self.pool.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn checkout(&self) -> Result<Checkout<'_>> {
        let slot = {
            let mut p = self.lock_pool();
            loop {
                if let Some(s) = p.pop() {
                    break s;
                }
                p = self.free.wait(p).unwrap_or_else(|p| p.into_inner());
            }
        };
        let mut out = Checkout {
            store: self,
            client: None,
        };
        match slot {
            Some(c) if !c.client.is_closed() => out.client = Some(c),
            // A broken or empty slot: connect afresh (on failure the slot goes back empty).
            _ => out.client = Some(self.connect_one()?),
        }
        Ok(out)
    }

    /// Runs `f` on a client (autocommit). A read that fails because the connection broke is
    /// retried once on a fresh one.
    fn read<T>(&self, f: impl Fn(&mut dyn Conn) -> Result<T>) -> Result<T> {
        let mut retried = false;
        loop {
            let mut co = self.checkout()?;
            let PgClient { client, stmts } = co.client.as_mut().ok_or_else(no_client)?;
            let mut pg = Pg::new(client, stmts);
            let r = f(&mut pg);
            let lost = pg.lost || client.is_closed();
            if r.is_err() && lost {
                // Not back into the pool: the next checkout of the slot connects afresh.
                co.client = None;
                if !retried {
                    retried = true;
                    continue;
                }
            }
            return r;
        }
    }

    /// Runs `f` in one transaction, committed when it returns `Ok`. `records`: it writes
    /// change rows (take the record-write lock first).
    fn write<T>(&self, records: bool, f: impl FnOnce(&mut dyn Conn) -> Result<T>) -> Result<T> {
        self.write_tx(records, |tx, stmts| f(&mut Pg::new(tx, stmts)))
    }

    /// Runs `f` in one transaction. If the connection turns out broken at `BEGIN` (nothing
    /// sent yet), it is retried once on a fresh one; later failures are returned.
    fn write_tx<T>(
        &self,
        records: bool,
        f: impl FnOnce(&mut ::postgres::Transaction<'_>, &mut HashMap<String, Statement>) -> Result<T>,
    ) -> Result<T> {
        let mut f = Some(f);
        let mut retried = false;
        loop {
            let mut co = self.checkout()?;
            let PgClient { client, stmts } = co.client.as_mut().ok_or_else(no_client)?;
            let e = match client.transaction() {
                Ok(mut tx) => {
                    if records {
                        tx.execute("SELECT pg_advisory_xact_lock($1)", &[&RECORD_WRITE_LOCK])
                            .map_err(pg_err)?;
                    }
                    let Some(f) = f.take() else {
                        return Err(no_client());
                    };
                    let out = f(&mut tx, stmts)?;
                    tx.commit().map_err(pg_err)?;
                    return Ok(out);
                }
                Err(e) => {
                    let lost = conn_lost(&e);
                    (pg_err(e), lost)
                }
            };
            let closed = e.1 || co.client.as_ref().is_none_or(|c| c.client.is_closed());
            if closed {
                co.client = None;
                if !retried {
                    retried = true;
                    continue;
                }
            }
            return Err(e.0);
        }
    }
}

fn no_client() -> StoreError {
    StoreError::Backend("postgres: no client".into())
}

impl Drop for PgStore {
    fn drop(&mut self) {
        // A sync client's drop runs its own runtime, which panics on a tokio worker: close
        // them on a plain thread when dropped there.
        let clients = std::mem::take(&mut *self.lock_pool());
        if tokio::runtime::Handle::try_current().is_ok() {
            let _ = std::thread::Builder::new()
                .name("pg-close".into())
                .spawn(move || drop(clients));
        } else {
            drop(clients);
        }
    }
}

fn migrate(c: &mut PgClient) -> Result<()> {
    let known = MIGRATIONS.last().map_or(0, |m| m.0);
    let mut tx = c.client.transaction().map_err(pg_err)?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])
        .map_err(pg_err)?;
    tx.batch_execute(
        "CREATE TABLE IF NOT EXISTS schema_migrations (version BIGINT PRIMARY KEY, applied_at BIGINT NOT NULL)",
    )
    .map_err(pg_err)?;
    let at = ops::schema_version(&mut Pg::new(&mut tx, &mut HashMap::new()))?;
    if at > known {
        return Err(ops::too_new(at, known));
    }
    for (v, sql) in MIGRATIONS.iter().filter(|m| m.0 > at) {
        tx.batch_execute(sql)
            .map_err(|e| StoreError::Backend(format!("migration {v}: {}", pg_err(e))))?;
        tx.execute(
            "INSERT INTO schema_migrations (version, applied_at) VALUES ($1, $2)",
            &[&i64::from(*v), &ops::now_ms()],
        )
        .map_err(pg_err)?;
        tracing::info!(version = v, "store: applied migration");
    }
    tx.commit().map_err(pg_err)
}

/// Import: COPY the batch into a temporary table, then one upsert that touches only the rows
/// that differ and writes their change rows.
fn import(
    tx: &mut ::postgres::Transaction<'_>,
    stmts: &mut HashMap<String, Statement>,
    devices: &[DeviceSpec],
    who: &Actor,
) -> Result<ImportCounts> {
    let batch = ops::import_batch(devices)?;
    for (field, table, col, names) in [
        (
            "subscriber",
            "subscribers",
            "id",
            batch
                .iter()
                .filter_map(|d| d.subscriber.as_deref())
                .collect::<Vec<_>>(),
        ),
        (
            "class_of_service",
            "classes",
            "name",
            batch
                .iter()
                .filter_map(|d| d.class_of_service.as_deref())
                .collect::<Vec<_>>(),
        ),
    ] {
        let mut names = names;
        names.sort_unstable();
        names.dedup();
        if names.is_empty() {
            continue;
        }
        let found: Vec<String> = tx
            .query(
                &format!("SELECT {col} FROM {table} WHERE {col} = ANY($1) FOR SHARE"),
                &[&names],
            )
            .map_err(pg_err)?
            .iter()
            .map(|r| r.get(0))
            .collect();
        if let Some(missing) = names.iter().find(|n| !found.iter().any(|f| f == *n)) {
            let mac = batch
                .iter()
                .find(|d| {
                    let v = if field == "subscriber" {
                        &d.subscriber
                    } else {
                        &d.class_of_service
                    };
                    v.as_deref() == Some(*missing)
                })
                .map(|d| d.mac.to_string())
                .unwrap_or_default();
            let what = if field == "subscriber" {
                "subscriber"
            } else {
                "class of service"
            };
            return Err(StoreError::Invalid {
                field: field.into(),
                why: format!("device {mac}: no {what} {missing:?}"),
            });
        }
    }
    tx.batch_execute(
        r#"CREATE TEMP TABLE import_devices (mac TEXT COLLATE "C", kind TEXT, subscriber TEXT COLLATE "C",
           class_of_service TEXT COLLATE "C", serial TEXT, device_id TEXT, duid TEXT, vars JSONB)
           ON COMMIT DROP"#,
    )
    .map_err(pg_err)?;
    {
        let w = tx
            .copy_in("COPY import_devices FROM STDIN (FORMAT binary)")
            .map_err(pg_err)?;
        let mut w = BinaryCopyInWriter::new(
            w,
            &[
                Type::TEXT,
                Type::TEXT,
                Type::TEXT,
                Type::TEXT,
                Type::TEXT,
                Type::TEXT,
                Type::TEXT,
                Type::JSONB,
            ],
        );
        for d in &batch {
            let row = [
                V::Text(d.mac.to_string()),
                V::Text(d.kind.as_str().into()),
                V::opt_text(d.subscriber.as_deref()),
                V::opt_text(d.class_of_service.as_deref()),
                V::opt_text(d.serial.as_deref()),
                V::opt_text(d.device_id.as_deref()),
                V::opt_text(d.duid.as_deref()),
                V::json(&d.vars)?,
            ];
            w.write(&params(&row)).map_err(pg_err)?;
        }
        w.finish().map_err(pg_err)?;
    }
    let now = ops::now_ms();
    let row = tx
        .query_one(
            "WITH up AS (
               INSERT INTO devices (mac, kind, subscriber, class_of_service, serial, device_id, duid,
                                    vars, version, created_at, updated_at)
               SELECT mac, kind, subscriber, class_of_service, serial, device_id, duid, vars, 1, $1, $1
               FROM import_devices ORDER BY mac
               ON CONFLICT (mac) DO UPDATE SET kind = excluded.kind, subscriber = excluded.subscriber,
                 class_of_service = excluded.class_of_service, serial = excluded.serial,
                 device_id = excluded.device_id, duid = excluded.duid, vars = excluded.vars,
                 version = devices.version + 1, updated_at = excluded.updated_at
               WHERE (devices.kind, devices.subscriber, devices.class_of_service, devices.serial,
                      devices.device_id, devices.duid, devices.vars)
                 IS DISTINCT FROM (excluded.kind, excluded.subscriber, excluded.class_of_service,
                      excluded.serial, excluded.device_id, excluded.duid, excluded.vars)
               RETURNING mac, version
             ), ch AS (
               INSERT INTO changes (kind, key, version) SELECT 'device', mac, version FROM up ORDER BY mac
             )
             SELECT count(*) FILTER (WHERE version = 1), count(*) FILTER (WHERE version > 1) FROM up",
            &[&now],
        )
        .map_err(pg_err)?;
    let created = u64::try_from(row.get::<_, i64>(0)).unwrap_or(0);
    let updated = u64::try_from(row.get::<_, i64>(1)).unwrap_or(0);
    let counts = ImportCounts {
        created,
        updated,
        unchanged: (batch.len() as u64).saturating_sub(created + updated),
    };
    ops::import_audit(&mut Pg::new(tx, stmts), who, counts, now)?;
    Ok(counts)
}

impl Store for PgStore {
    fn backend(&self) -> Backend {
        Backend::Postgres
    }

    fn schema_version(&self) -> Result<u32> {
        self.read(|c| ops::schema_version(c))
    }

    fn get_device(&self, mac: Mac) -> Result<Option<Device>> {
        self.read(|c| ops::get_device(c, mac))
    }

    fn put_device(&self, d: &DeviceSpec, expect: Expect, who: &Actor) -> Result<Device> {
        self.write(true, |c| ops::put_device(c, d, expect, who))
    }

    fn delete_device(&self, mac: Mac, expect: Expect, who: &Actor) -> Result<()> {
        self.write(true, |c| ops::delete_device(c, mac, expect, who))
    }

    fn list_devices(&self, filter: &DeviceFilter, page: &PageRequest) -> Result<Page<Device>> {
        self.read(|c| ops::list_devices(c, filter, page))
    }

    fn import_devices(&self, devices: &[DeviceSpec], who: &Actor) -> Result<ImportCounts> {
        self.write_tx(true, |tx, stmts| import(tx, stmts, devices, who))
    }

    fn get_subscriber(&self, id: &str) -> Result<Option<Subscriber>> {
        self.read(|c| ops::get_subscriber(c, id))
    }

    fn put_subscriber(
        &self,
        s: &SubscriberSpec,
        expect: Expect,
        who: &Actor,
    ) -> Result<Subscriber> {
        self.write(true, |c| ops::put_subscriber(c, s, expect, who))
    }

    fn delete_subscriber(&self, id: &str, expect: Expect, who: &Actor) -> Result<()> {
        self.write(true, |c| ops::delete_subscriber(c, id, expect, who))
    }

    fn list_subscribers(&self, page: &PageRequest) -> Result<Page<Subscriber>> {
        self.read(|c| ops::list_subscribers(c, page))
    }

    fn get_class(&self, name: &str) -> Result<Option<ClassOfService>> {
        self.read(|c| ops::get_class(c, name))
    }

    fn put_class(&self, s: &ClassSpec, expect: Expect, who: &Actor) -> Result<ClassOfService> {
        self.write(true, |c| ops::put_class(c, s, expect, who))
    }

    fn delete_class(&self, name: &str, expect: Expect, who: &Actor) -> Result<()> {
        self.write(true, |c| ops::delete_class(c, name, expect, who))
    }

    fn list_classes(&self, page: &PageRequest) -> Result<Page<ClassOfService>> {
        self.read(|c| ops::list_classes(c, page))
    }

    fn get_reservation(&self, mac: Mac) -> Result<Option<Reservation>> {
        self.read(|c| ops::get_reservation(c, mac))
    }

    fn put_reservation(
        &self,
        r: &ReservationSpec,
        expect: Expect,
        who: &Actor,
    ) -> Result<Reservation> {
        self.write(true, |c| ops::put_reservation(c, r, expect, who))
    }

    fn delete_reservation(&self, mac: Mac, expect: Expect, who: &Actor) -> Result<()> {
        self.write(true, |c| ops::delete_reservation(c, mac, expect, who))
    }

    fn list_reservations(&self, page: &PageRequest) -> Result<Page<Reservation>> {
        self.read(|c| ops::list_reservations(c, page))
    }

    fn get_document(&self, collection: &str, id: &str) -> Result<Option<Document>> {
        self.read(|c| ops::get_document(c, collection, id))
    }

    fn put_document(
        &self,
        collection: &str,
        id: &str,
        body: &serde_json::Value,
        expect: Expect,
        who: &Actor,
    ) -> Result<Document> {
        self.write(false, |c| {
            ops::put_document(c, collection, id, body, expect, who)
        })
    }

    fn delete_document(
        &self,
        collection: &str,
        id: &str,
        expect: Expect,
        who: &Actor,
    ) -> Result<()> {
        self.write(false, |c| {
            ops::delete_document(c, collection, id, expect, who)
        })
    }

    fn list_documents(&self, collection: &str, page: &PageRequest) -> Result<Page<Document>> {
        self.read(|c| ops::list_documents(c, collection, page))
    }

    fn append_events(&self, events: &[NewEvent]) -> Result<()> {
        self.write(false, |c| ops::append_events(c, events))
    }

    fn timeline(&self, mac: Mac, before: Option<i64>, limit: u32) -> Result<Vec<Event>> {
        self.read(|c| ops::timeline(c, mac, before, limit))
    }

    fn trim_events(&self, older_than_ms: i64, keep_per_device: u32) -> Result<u64> {
        self.write(false, |c| {
            ops::trim_events(c, older_than_ms, keep_per_device)
        })
    }

    fn audit_log(
        &self,
        filter: &AuditFilter,
        before: Option<i64>,
        limit: u32,
    ) -> Result<Vec<AuditEntry>> {
        self.read(|c| ops::audit_log(c, filter, before, limit))
    }

    fn put_token(&self, t: &TokenSpec, who: &Actor) -> Result<Token> {
        self.write(false, |c| ops::put_token(c, t, who))
    }

    fn token_by_hash(&self, hash: &[u8; 32]) -> Result<Option<Token>> {
        self.read(|c| ops::token_by_hash(c, hash))
    }

    fn list_tokens(&self) -> Result<Vec<Token>> {
        self.read(|c| ops::list_tokens(c))
    }

    fn audit_action(
        &self,
        action: &str,
        resource: &str,
        key: &str,
        detail: Option<serde_json::Value>,
        who: &Actor,
    ) -> Result<()> {
        self.write(false, |c| {
            ops::audit_action(c, action, resource, key, detail.clone(), who)
        })
    }

    fn delete_token(&self, id: &str, who: &Actor) -> Result<()> {
        self.write(false, |c| ops::delete_token(c, id, who))
    }

    fn template_versions(
        &self,
        name: &str,
        before: Option<u64>,
        limit: u32,
    ) -> Result<Vec<TemplateVersionInfo>> {
        self.read(|c| ops::template_versions(c, name, before, limit))
    }

    fn get_template_version(&self, name: &str, version: u64) -> Result<Option<TemplateVersion>> {
        self.read(|c| ops::get_template_version(c, name, version))
    }

    fn latest_template_version(&self, name: &str) -> Result<Option<TemplateVersion>> {
        self.read(|c| ops::latest_template_version(c, name))
    }

    fn latest_template_versions(&self) -> Result<Vec<TemplateVersion>> {
        self.read(|c| ops::latest_template_versions(c))
    }

    fn put_template_version(
        &self,
        t: &TemplateVersionSpec,
        expect: Expect,
        who: &Actor,
    ) -> Result<TemplateVersion> {
        self.write(true, |c| ops::put_template_version(c, t, expect, who))
    }

    fn counts(&self) -> Result<Counts> {
        self.read(|c| ops::counts(c))
    }

    fn changes(&self, after: i64, limit: u32) -> Result<Vec<Change>> {
        self.read(|c| ops::changes(c, after, limit))
    }

    fn trim_changes(&self, through: i64) -> Result<u64> {
        self.write(false, |c| ops::trim_changes(c, through))
    }

    fn last_change(&self) -> Result<i64> {
        self.read(|c| ops::last_change(c))
    }
}
