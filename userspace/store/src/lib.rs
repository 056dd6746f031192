//! provd-store: the system of record.
//!
//! Everything an operator changes at run time lives here: devices (by MAC, with their type,
//! subscriber, class of service and per-device variables), subscribers, classes of service,
//! reservations, every role's durable state that is not the DHCP lease log (MTA flow records,
//! HTTP profile versions, ACS documents: as [`Document`]s), each device's timeline, the audit
//! log and the API tokens.
//!
//! One interface, [`Store`], two backends: embedded (SQLite in WAL mode, the default: nothing to
//! start) and PostgreSQL (several provd nodes behind one store). The same test suite
//! (`suite`, behind the `testing` feature) runs against both. The interface is synchronous: the hot path never calls it
//! (roles read the in-memory catalog the control plane keeps current), and
//! the async API calls it from `spawn_blocking`.
//!
//! Every write takes the [`Actor`] making it and records an [`AuditEntry`] (who, what, before,
//! after, when) in the same transaction: a change that is visible is audited, and an audited
//! change happened. A write returns once it is durable (SQLite `synchronous=FULL`, PostgreSQL's
//! commit).
//!
//! Optimistic concurrency: every record carries a `version` that each write bumps; a write may
//! name the version it expects (`If-Match`) and fails with [`StoreError::VersionMismatch`] if
//! another write came first.

pub mod import;
pub mod model;
mod ops;
pub mod postgres;
mod sql;
pub mod sqlite;
#[cfg(feature = "testing")]
pub mod suite;
#[cfg(feature = "testing")]
pub mod testing;

use std::path::PathBuf;
use std::sync::Arc;

pub use model::*;

/// The schema version this build's migrations bring a store to.
pub const SCHEMA_VERSION: u32 = 3;

/// Where the store is: what the config's `[store]` section names. Its `Debug` hides a
/// password in the URL.
#[derive(Clone, PartialEq, Eq)]
pub enum Location {
    /// A SQLite file (created with its directory if absent).
    Embedded(PathBuf),
    /// A PostgreSQL database (`postgresql://user@host:port/db` or `key=value` form), with
    /// `pool` connections (at least one).
    Postgres { url: String, pool: usize },
}

impl std::fmt::Debug for Location {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Location::Embedded(p) => f.debug_tuple("Embedded").field(p).finish(),
            Location::Postgres { url, pool } => f
                .debug_struct("Postgres")
                .field("url", &redact_url(url))
                .field("pool", pool)
                .finish(),
        }
    }
}

/// `url` with any password replaced by `***` (URL `user:password@` and `password=` forms).
pub fn redact_url(url: &str) -> String {
    if let Some((scheme, rest)) = url.split_once("://") {
        let (auth, host) = match rest.rsplit_once('@') {
            Some((a, h)) => (Some(a), h),
            None => (None, rest),
        };
        let rest = match auth.and_then(|a| a.split_once(':')) {
            Some((user, _)) => format!("{user}:***@{host}"),
            None => rest.to_owned(),
        };
        let rest = redact_kv(&rest, '&');
        return format!("{scheme}://{rest}");
    }
    redact_kv(url, ' ')
}

fn redact_kv(s: &str, sep: char) -> String {
    s.split(sep)
        .map(|part| {
            let tail = part.rsplit(['?', ' ']).next().unwrap_or(part);
            match tail.split_once('=') {
                Some((k, _)) if k.eq_ignore_ascii_case("password") => {
                    format!("{}{k}=***", &part[..part.len() - tail.len()])
                }
                _ => part.to_owned(),
            }
        })
        .collect::<Vec<_>>()
        .join(&sep.to_string())
}

/// Opens the store at `loc`, applying the migrations it lacks. PostgreSQL: call it where
/// blocking is allowed (not on a tokio worker; `spawn_blocking` is fine).
pub fn open(loc: &Location) -> Result<Arc<dyn Store>> {
    Ok(match loc {
        Location::Embedded(path) => Arc::new(sqlite::SqliteStore::open(path)?),
        Location::Postgres { url, pool } => Arc::new(postgres::PgStore::connect(url, *pool)?),
    })
}

/// Why a store call failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The record named does not exist.
    #[error("no such {kind} {key}")]
    NotFound { kind: &'static str, key: String },
    /// `If-Match`: the record changed since the caller read it.
    #[error("{kind} {key} is at version {actual}, not {expected}")]
    VersionMismatch {
        kind: &'static str,
        key: String,
        expected: u64,
        actual: u64,
    },
    /// A create of a record that exists (`create_only`), or a delete of one still referenced.
    #[error("{kind} {key}: {why}")]
    Conflict {
        kind: &'static str,
        key: String,
        why: String,
    },
    /// A field's value is not acceptable; names the field.
    #[error("{field}: {why}")]
    Invalid { field: String, why: String },
    /// The backend failed (I/O, connection, SQL). Not the caller's fault.
    #[error("store backend: {0}")]
    Backend(String),
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// Which backend a store is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Backend {
    Embedded,
    Postgres,
}

impl Backend {
    pub fn as_str(self) -> &'static str {
        match self {
            Backend::Embedded => "embedded",
            Backend::Postgres => "postgres",
        }
    }
}

/// The system of record. Every method is a short transaction; none is called on a DHCP or TFTP
/// worker's path.
pub trait Store: Send + Sync + std::fmt::Debug {
    fn backend(&self) -> Backend;

    /// The schema version the store is at (migrations are applied when it is opened).
    fn schema_version(&self) -> Result<u32>;

    // ---- devices ----
    fn get_device(&self, mac: Mac) -> Result<Option<Device>>;
    /// Creates or replaces a device. `expect`: see [`Expect`]. Returns the record as stored
    /// (new version, timestamps). Audited.
    fn put_device(&self, d: &DeviceSpec, expect: Expect, who: &Actor) -> Result<Device>;
    /// Audited. `NotFound` if absent.
    fn delete_device(&self, mac: Mac, expect: Expect, who: &Actor) -> Result<()>;
    /// Devices matching `filter`, ordered by MAC, after `page.after`.
    fn list_devices(&self, filter: &DeviceFilter, page: &PageRequest) -> Result<Page<Device>>;
    /// Upserts many devices in one transaction per call (the caller chunks); a row equal to what
    /// is stored is left alone (no version bump, no audit entry), so an import run twice changes
    /// nothing the second time. One audit entry summarises the batch (action `import`, after =
    /// the counts); each created or updated device gets a change row. All or nothing: one bad
    /// row (`Invalid`, its field named, the MAC in `why`) and nothing of the call lands. A MAC
    /// given twice in one call: the last one wins, counted once.
    fn import_devices(&self, devices: &[DeviceSpec], who: &Actor) -> Result<ImportCounts>;

    // ---- subscribers ----
    fn get_subscriber(&self, id: &str) -> Result<Option<Subscriber>>;
    fn put_subscriber(&self, s: &SubscriberSpec, expect: Expect, who: &Actor)
    -> Result<Subscriber>;
    /// `Conflict` while devices still name it.
    fn delete_subscriber(&self, id: &str, expect: Expect, who: &Actor) -> Result<()>;
    fn list_subscribers(&self, page: &PageRequest) -> Result<Page<Subscriber>>;

    // ---- classes of service ----
    fn get_class(&self, name: &str) -> Result<Option<ClassOfService>>;
    fn put_class(&self, c: &ClassSpec, expect: Expect, who: &Actor) -> Result<ClassOfService>;
    /// `Conflict` while devices still name it.
    fn delete_class(&self, name: &str, expect: Expect, who: &Actor) -> Result<()>;
    fn list_classes(&self, page: &PageRequest) -> Result<Page<ClassOfService>>;

    // ---- reservations ----
    fn get_reservation(&self, mac: Mac) -> Result<Option<Reservation>>;
    /// `Conflict` if another MAC holds the address.
    fn put_reservation(
        &self,
        r: &ReservationSpec,
        expect: Expect,
        who: &Actor,
    ) -> Result<Reservation>;
    fn delete_reservation(&self, mac: Mac, expect: Expect, who: &Actor) -> Result<()>;
    fn list_reservations(&self, page: &PageRequest) -> Result<Page<Reservation>>;

    // ---- documents: every role's other durable state ----
    fn get_document(&self, collection: &str, id: &str) -> Result<Option<Document>>;
    /// Audited when `who` is not [`Actor::System`] (roles saving their own state are not
    /// operator changes).
    fn put_document(
        &self,
        collection: &str,
        id: &str,
        body: &serde_json::Value,
        expect: Expect,
        who: &Actor,
    ) -> Result<Document>;
    fn delete_document(
        &self,
        collection: &str,
        id: &str,
        expect: Expect,
        who: &Actor,
    ) -> Result<()>;
    fn list_documents(&self, collection: &str, page: &PageRequest) -> Result<Page<Document>>;

    // ---- timeline ----
    /// Appends events (one transaction). Not audited: events are what devices did.
    fn append_events(&self, events: &[NewEvent]) -> Result<()>;
    /// A device's events, newest first, older than `before` (an event id) when given.
    fn timeline(&self, mac: Mac, before: Option<i64>, limit: u32) -> Result<Vec<Event>>;
    /// Deletes events older than `older_than_ms` (unix ms) and, per device, all but the newest
    /// `keep_per_device`. Returns how many were deleted.
    fn trim_events(&self, older_than_ms: i64, keep_per_device: u32) -> Result<u64>;

    // ---- audit ----
    /// Newest first, older than `before` (an entry id) when given.
    fn audit_log(
        &self,
        filter: &AuditFilter,
        before: Option<i64>,
        limit: u32,
    ) -> Result<Vec<AuditEntry>>;

    /// Records an action that changes no record here (a task queued on the ACS's own task
    /// API, say): one audit entry, `detail` as its `after`.
    fn audit_action(
        &self,
        action: &str,
        resource: &str,
        key: &str,
        detail: Option<serde_json::Value>,
        who: &Actor,
    ) -> Result<()>;

    // ---- tokens ----
    /// Stores a token by the SHA-256 of its secret (the secret itself is never stored).
    /// Audited.
    fn put_token(&self, t: &TokenSpec, who: &Actor) -> Result<Token>;
    fn token_by_hash(&self, hash: &[u8; 32]) -> Result<Option<Token>>;
    fn list_tokens(&self) -> Result<Vec<Token>>;
    fn delete_token(&self, id: &str, who: &Actor) -> Result<()>;

    // ---- template versions ----
    /// A template's stored versions without their text, newest first, older than `before`
    /// (a version number) when given, at most `limit`.
    fn template_versions(
        &self,
        name: &str,
        before: Option<u64>,
        limit: u32,
    ) -> Result<Vec<TemplateVersionInfo>>;
    fn get_template_version(&self, name: &str, version: u64) -> Result<Option<TemplateVersion>>;
    /// The newest stored version of `name` (`None`: only the config's file).
    fn latest_template_version(&self, name: &str) -> Result<Option<TemplateVersion>>;
    /// The newest stored version of every template, by name: what the catalog starts from.
    fn latest_template_versions(&self) -> Result<Vec<TemplateVersion>>;
    /// Appends a version numbered one more than the newest, in one transaction with its
    /// audit entry and change row. `expect`: [`Expect::Version`] names the newest version
    /// the caller saw (`VersionMismatch` if another save came first), [`Expect::Absent`]
    /// only saves the first one. Audited (before: the newest version without its text; after:
    /// the new one with it).
    fn put_template_version(
        &self,
        t: &TemplateVersionSpec,
        expect: Expect,
        who: &Actor,
    ) -> Result<TemplateVersion>;

    // ---- sizes ----
    fn counts(&self) -> Result<Counts>;

    /// Every record change with a sequence number above `after`, oldest first, at most `limit`:
    /// what the catalog (and, later, other nodes) follow. Devices, subscribers, classes,
    /// reservations and template versions only.
    fn changes(&self, after: i64, limit: u32) -> Result<Vec<Change>>;
    /// Deletes the changes with a sequence number at or below `through`, which every follower
    /// has read. Returns how many.
    fn trim_changes(&self, through: i64) -> Result<u64>;
    /// The newest change's sequence number (0 when there is none): where a follower that has
    /// just read everything starts.
    fn last_change(&self) -> Result<i64>;
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Names a migration creates (tables and indexes), in order.
    fn created(sql: &str) -> Vec<String> {
        let words: Vec<&str> = sql.split_whitespace().collect();
        words
            .windows(3)
            .filter(|w| w[0] == "CREATE" && (w[1] == "TABLE" || w[1] == "INDEX"))
            .map(|w| format!("{} {}", w[1], w[2]))
            .collect()
    }

    /// The two backends' migrations stay parallel: same numbers, same tables and indexes,
    /// and SCHEMA_VERSION is the last.
    #[test]
    fn migrations_are_parallel() {
        let (s, p) = (sqlite::MIGRATIONS, postgres::MIGRATIONS);
        assert_eq!(s.len(), p.len());
        for ((sv, ssql), (pv, psql)) in s.iter().zip(p) {
            assert_eq!(sv, pv);
            assert_eq!(created(ssql), created(psql), "migration {sv}");
        }
        assert!(s.windows(2).all(|w| w[1].0 == w[0].0 + 1) && s[0].0 == 1);
        assert_eq!(s.last().map(|m| m.0), Some(SCHEMA_VERSION));
        assert!(created(s[0].1).len() > 10);
    }

    #[test]
    fn debug_hides_passwords() {
        for (url, shown) in [
            (
                "postgresql://provd:s3cret@db:5432/provd",
                "postgresql://provd:***@db:5432/provd",
            ),
            (
                "postgresql://provd@db/provd?password=s3cret&sslmode=disable",
                "postgresql://provd@db/provd?password=***&sslmode=disable",
            ),
            (
                "host=db user=provd password=s3cret dbname=provd",
                "host=db user=provd password=*** dbname=provd",
            ),
            ("postgresql://db/provd", "postgresql://db/provd"),
        ] {
            assert_eq!(redact_url(url), shown);
            let dbg = format!(
                "{:?}",
                Location::Postgres {
                    url: url.into(),
                    pool: 2
                }
            );
            assert!(!dbg.contains("s3cret"), "{dbg}");
        }
    }
}
