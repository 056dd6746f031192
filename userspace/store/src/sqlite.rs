//! The embedded backend: one SQLite file in WAL mode with `synchronous=FULL` (every commit is
//! on disk before the call returns). SQLite because it is the best-kept embedded database
//! there is, it speaks SQL (so the schema mirrors PostgreSQL's and the store's logic is written
//! once), and it is one file with no server.
//!
//! Concurrency: one writer connection behind a mutex (SQLite has one writer at a time anyway)
//! and a small pool of reader connections, so reads never queue behind a write (WAL readers
//! see the last commit while a write is under way).

use std::path::{Path, PathBuf};
use std::sync::{Condvar, Mutex, MutexGuard};
use std::time::Duration;

use rusqlite::types::{ToSqlOutput, Value, ValueRef};
use rusqlite::{Connection, OpenFlags, TransactionBehavior};

use crate::sql::{Conn, Row, V};
use crate::*;

/// Numbered migrations, applied in order at open. Keep them parallel to
/// `postgres::MIGRATIONS`: same tables, columns, keys and indexes.
pub(crate) const MIGRATIONS: &[(u32, &str)] = &[
    (
        1,
        r#"
CREATE TABLE subscribers (
    id TEXT PRIMARY KEY NOT NULL,
    name TEXT,
    vars TEXT NOT NULL,
    version INTEGER NOT NULL,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
);
CREATE TABLE classes (
    name TEXT PRIMARY KEY NOT NULL,
    description TEXT,
    vars TEXT NOT NULL,
    version INTEGER NOT NULL,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
);
CREATE TABLE devices (
    mac TEXT PRIMARY KEY NOT NULL,
    kind TEXT NOT NULL,
    subscriber TEXT,
    class_of_service TEXT,
    serial TEXT,
    device_id TEXT,
    duid TEXT,
    vars TEXT NOT NULL,
    version INTEGER NOT NULL,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
);
CREATE INDEX devices_subscriber ON devices (subscriber);
CREATE INDEX devices_class ON devices (class_of_service);
CREATE INDEX devices_serial ON devices (serial);
CREATE INDEX devices_device_id ON devices (device_id);
CREATE INDEX devices_updated_at ON devices (updated_at);
CREATE TABLE reservations (
    mac TEXT PRIMARY KEY NOT NULL,
    address TEXT NOT NULL UNIQUE,
    dhcp_class TEXT,
    version INTEGER NOT NULL,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
);
CREATE TABLE documents (
    collection TEXT NOT NULL,
    id TEXT NOT NULL,
    body TEXT NOT NULL,
    version INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    PRIMARY KEY (collection, id)
);
CREATE TABLE events (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    mac TEXT NOT NULL,
    at INTEGER NOT NULL,
    source TEXT NOT NULL,
    kind TEXT NOT NULL,
    detail TEXT NOT NULL
);
CREATE INDEX events_mac_id ON events (mac, id);
CREATE INDEX events_at ON events (at);
CREATE TABLE audit (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    at INTEGER NOT NULL,
    who TEXT NOT NULL,
    action TEXT NOT NULL,
    resource TEXT NOT NULL,
    key TEXT NOT NULL,
    before TEXT,
    after TEXT
);
CREATE INDEX audit_resource_key ON audit (resource, key, id);
CREATE INDEX audit_who ON audit (who, id);
CREATE TABLE tokens (
    name TEXT PRIMARY KEY NOT NULL,
    hash BLOB NOT NULL UNIQUE,
    role TEXT NOT NULL,
    scope TEXT NOT NULL,
    created_at INTEGER NOT NULL
);
CREATE TABLE changes (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    kind TEXT NOT NULL,
    key TEXT NOT NULL,
    version INTEGER NOT NULL
);
"#,
    ),
    // 2: template versions. Append-only: a version is never changed or deleted, so history
    // is linear (a rollback saves the old text as a new version).
    (
        2,
        r#"
CREATE TABLE template_versions (
    name TEXT NOT NULL,
    version INTEGER NOT NULL,
    kind TEXT NOT NULL,
    actor TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    comment TEXT,
    text TEXT NOT NULL,
    PRIMARY KEY (name, version)
);
"#,
    ),
    // 3: a device-type listing (`type=mta`) in MAC order reads only that type's rows.
    (3, "CREATE INDEX devices_kind_mac ON devices (kind, mac);"),
];

/// How many reader connections a store keeps.
const READERS: usize = 4;
/// How long a statement waits for a lock another process holds before failing.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// The embedded store: a SQLite file.
#[derive(Debug)]
pub struct SqliteStore {
    path: PathBuf,
    writer: Mutex<Connection>,
    readers: Mutex<Vec<Connection>>,
    reader_free: Condvar,
}

fn backend(e: impl std::fmt::Display) -> StoreError {
    StoreError::Backend(e.to_string())
}

fn sql_err(e: rusqlite::Error) -> StoreError {
    if let rusqlite::Error::SqliteFailure(f, msg) = &e
        && f.code == rusqlite::ErrorCode::ConstraintViolation
    {
        return StoreError::Conflict {
            kind: "record",
            key: String::new(),
            why: msg.clone().unwrap_or_else(|| f.to_string()),
        };
    }
    backend(e)
}

impl rusqlite::ToSql for V {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(match self {
            V::Null => ToSqlOutput::Owned(Value::Null),
            V::I64(n) => ToSqlOutput::Owned(Value::Integer(*n)),
            V::Text(s) | V::Json(s) => ToSqlOutput::Borrowed(ValueRef::Text(s.as_bytes())),
            V::JsonVal(v) => ToSqlOutput::Owned(Value::Text(v.to_string())),
            V::Blob(b) => ToSqlOutput::Borrowed(ValueRef::Blob(b)),
        })
    }
}

fn translate(sql: &str) -> String {
    sql.replace('$', "?")
}

/// A connection (or transaction, which derefs to one) running the store's logic.
struct Sqlite<'a>(&'a Connection);

impl Conn for Sqlite<'_> {
    fn exec(&mut self, sql: &str, params: &[V]) -> Result<u64> {
        let mut st = self.0.prepare_cached(&translate(sql)).map_err(sql_err)?;
        let n = st
            .execute(rusqlite::params_from_iter(params))
            .map_err(sql_err)?;
        Ok(n as u64)
    }

    fn query(&mut self, sql: &str, params: &[V]) -> Result<Vec<Row>> {
        let mut st = self.0.prepare_cached(&translate(sql)).map_err(sql_err)?;
        let n = st.column_count();
        let mut rows = st
            .query(rusqlite::params_from_iter(params))
            .map_err(sql_err)?;
        let mut out = Vec::new();
        while let Some(r) = rows.next().map_err(sql_err)? {
            let mut row = Vec::with_capacity(n);
            for i in 0..n {
                row.push(match r.get_ref(i).map_err(sql_err)? {
                    ValueRef::Null => V::Null,
                    ValueRef::Integer(n) => V::I64(n),
                    ValueRef::Text(t) => V::Text(String::from_utf8_lossy(t).into_owned()),
                    ValueRef::Blob(b) => V::Blob(b.to_vec()),
                    ValueRef::Real(f) => {
                        return Err(StoreError::Backend(format!(
                            "column {i}: unexpected real {f}"
                        )));
                    }
                });
            }
            out.push(Row(row));
        }
        Ok(out)
    }

    fn lock_clause(&self, _share: bool) -> &'static str {
        // A write transaction is BEGIN IMMEDIATE: the whole database is the writer's.
        ""
    }
}

fn configure(c: &Connection) -> rusqlite::Result<()> {
    c.busy_timeout(BUSY_TIMEOUT)?;
    c.pragma_update(None, "journal_mode", "WAL")?;
    c.pragma_update(None, "synchronous", "FULL")?;
    c.pragma_update(None, "foreign_keys", "OFF")?;
    c.set_prepared_statement_cache_capacity(128);
    Ok(())
}

impl SqliteStore {
    /// Opens (creating it and its directory if need be) the store at `path` and applies the
    /// migrations it lacks. An error if the file's schema is newer than this binary knows.
    pub fn open(path: impl AsRef<Path>) -> Result<SqliteStore> {
        let path = path.as_ref().to_path_buf();
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)
                .map_err(|e| backend(format!("creating {}: {e}", dir.display())))?;
        }
        let open_err = |e: rusqlite::Error| backend(format!("opening {}: {e}", path.display()));
        let mut writer = Connection::open(&path).map_err(open_err)?;
        configure(&writer).map_err(open_err)?;
        migrate(&mut writer).map_err(|e| match e {
            StoreError::Backend(m) => backend(format!("{}: {m}", path.display())),
            e => e,
        })?;
        let mut readers = Vec::with_capacity(READERS);
        for _ in 0..READERS {
            let r = Connection::open_with_flags(
                &path,
                OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
            )
            .map_err(open_err)?;
            r.busy_timeout(BUSY_TIMEOUT).map_err(open_err)?;
            r.set_prepared_statement_cache_capacity(128);
            readers.push(r);
        }
        Ok(SqliteStore {
            path,
            writer: Mutex::new(writer),
            readers: Mutex::new(readers),
            reader_free: Condvar::new(),
        })
    }

    /// The file the store is in.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn lock_writer(&self) -> MutexGuard<'_, Connection> {
        // A panic while holding the writer cannot leave a transaction open (the Transaction's
        // drop rolls it back), so a poisoned lock is still a usable connection.
        self.writer.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Runs `f` in one write transaction (`BEGIN IMMEDIATE`), committed when it returns `Ok`.
    fn write<T>(&self, f: impl FnOnce(&mut dyn Conn) -> Result<T>) -> Result<T> {
        let mut w = self.lock_writer();
        let tx = w
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(sql_err)?;
        let out = f(&mut Sqlite(&tx))?;
        tx.commit().map_err(sql_err)?;
        Ok(out)
    }

    /// Runs `f` on a reader connection (one statement sees one snapshot).
    fn read<T>(&self, f: impl FnOnce(&mut dyn Conn) -> Result<T>) -> Result<T> {
        let conn = {
            let mut pool = self.readers.lock().unwrap_or_else(|p| p.into_inner());
            loop {
                if let Some(c) = pool.pop() {
                    break c;
                }
                pool = self
                    .reader_free
                    .wait(pool)
                    .unwrap_or_else(|p| p.into_inner());
            }
        };
        let out = f(&mut Sqlite(&conn));
        self.readers
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(conn);
        self.reader_free.notify_one();
        out
    }
}

fn migrate(c: &mut Connection) -> Result<()> {
    let known = MIGRATIONS.last().map_or(0, |m| m.0);
    let tx = c
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(sql_err)?;
    tx.execute_batch(
        "CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY NOT NULL, applied_at INTEGER NOT NULL)",
    )
    .map_err(sql_err)?;
    let at = ops::schema_version(&mut Sqlite(&tx))?;
    if at > known {
        return Err(ops::too_new(at, known));
    }
    for (v, sql) in MIGRATIONS.iter().filter(|m| m.0 > at) {
        tx.execute_batch(sql)
            .map_err(|e| backend(format!("migration {v}: {e}")))?;
        tx.execute(
            "INSERT INTO schema_migrations (version, applied_at) VALUES (?1, ?2)",
            (v, ops::now_ms()),
        )
        .map_err(sql_err)?;
        tracing::info!(version = v, "store: applied migration");
    }
    tx.commit().map_err(sql_err)
}

impl Store for SqliteStore {
    fn backend(&self) -> Backend {
        Backend::Embedded
    }

    fn schema_version(&self) -> Result<u32> {
        self.read(|c| ops::schema_version(c))
    }

    fn get_device(&self, mac: Mac) -> Result<Option<Device>> {
        self.read(|c| ops::get_device(c, mac))
    }

    fn put_device(&self, d: &DeviceSpec, expect: Expect, who: &Actor) -> Result<Device> {
        self.write(|c| ops::put_device(c, d, expect, who))
    }

    fn delete_device(&self, mac: Mac, expect: Expect, who: &Actor) -> Result<()> {
        self.write(|c| ops::delete_device(c, mac, expect, who))
    }

    fn list_devices(&self, filter: &DeviceFilter, page: &PageRequest) -> Result<Page<Device>> {
        self.read(|c| ops::list_devices(c, filter, page))
    }

    fn import_devices(&self, devices: &[DeviceSpec], who: &Actor) -> Result<ImportCounts> {
        self.write(|c| ops::import_devices(c, devices, who))
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
        self.write(|c| ops::put_subscriber(c, s, expect, who))
    }

    fn delete_subscriber(&self, id: &str, expect: Expect, who: &Actor) -> Result<()> {
        self.write(|c| ops::delete_subscriber(c, id, expect, who))
    }

    fn list_subscribers(&self, page: &PageRequest) -> Result<Page<Subscriber>> {
        self.read(|c| ops::list_subscribers(c, page))
    }

    fn get_class(&self, name: &str) -> Result<Option<ClassOfService>> {
        self.read(|c| ops::get_class(c, name))
    }

    fn put_class(&self, s: &ClassSpec, expect: Expect, who: &Actor) -> Result<ClassOfService> {
        self.write(|c| ops::put_class(c, s, expect, who))
    }

    fn delete_class(&self, name: &str, expect: Expect, who: &Actor) -> Result<()> {
        self.write(|c| ops::delete_class(c, name, expect, who))
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
        self.write(|c| ops::put_reservation(c, r, expect, who))
    }

    fn delete_reservation(&self, mac: Mac, expect: Expect, who: &Actor) -> Result<()> {
        self.write(|c| ops::delete_reservation(c, mac, expect, who))
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
        self.write(|c| ops::put_document(c, collection, id, body, expect, who))
    }

    fn delete_document(
        &self,
        collection: &str,
        id: &str,
        expect: Expect,
        who: &Actor,
    ) -> Result<()> {
        self.write(|c| ops::delete_document(c, collection, id, expect, who))
    }

    fn list_documents(&self, collection: &str, page: &PageRequest) -> Result<Page<Document>> {
        self.read(|c| ops::list_documents(c, collection, page))
    }

    fn append_events(&self, events: &[NewEvent]) -> Result<()> {
        self.write(|c| ops::append_events(c, events))
    }

    fn timeline(&self, mac: Mac, before: Option<i64>, limit: u32) -> Result<Vec<Event>> {
        self.read(|c| ops::timeline(c, mac, before, limit))
    }

    fn trim_events(&self, older_than_ms: i64, keep_per_device: u32) -> Result<u64> {
        self.write(|c| ops::trim_events(c, older_than_ms, keep_per_device))
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
        self.write(|c| ops::put_token(c, t, who))
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
        self.write(|c| ops::audit_action(c, action, resource, key, detail.clone(), who))
    }

    fn delete_token(&self, id: &str, who: &Actor) -> Result<()> {
        self.write(|c| ops::delete_token(c, id, who))
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
        self.write(|c| ops::put_template_version(c, t, expect, who))
    }

    fn counts(&self) -> Result<Counts> {
        self.read(|c| ops::counts(c))
    }

    fn changes(&self, after: i64, limit: u32) -> Result<Vec<Change>> {
        self.read(|c| ops::changes(c, after, limit))
    }

    fn trim_changes(&self, through: i64) -> Result<u64> {
        self.write(|c| ops::trim_changes(c, through))
    }

    fn last_change(&self) -> Result<i64> {
        self.read(|c| ops::last_change(c))
    }
}
