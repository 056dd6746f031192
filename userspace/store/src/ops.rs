//! The store's semantics, written once against [`Conn`]: validation, `Expect`, the audit
//! entry and the change row of every write. Each backend runs these inside its own
//! transaction (`write`) or on a reader connection (`read`).

use std::net::Ipv4Addr;

use crate::sql::{Conn, Row, V};
use crate::*;

pub(crate) fn now_ms() -> i64 {
    i64::try_from(provd_role::clock::unix_millis()).unwrap_or(i64::MAX)
}

fn invalid(field: impl Into<String>, why: impl Into<String>) -> StoreError {
    StoreError::Invalid {
        field: field.into(),
        why: why.into(),
    }
}

// ---- validation ----

/// A subscriber id: 1..=128 bytes, no control characters.
pub(crate) fn check_subscriber_id(field: &str, s: &str) -> Result<()> {
    if s.is_empty() || s.len() > 128 || s.chars().any(char::is_control) {
        return Err(invalid(
            field,
            "a subscriber id is 1 to 128 bytes with no control characters",
        ));
    }
    Ok(())
}

/// A class of service name: 1..=64 bytes of `[A-Za-z0-9_.-]`.
pub(crate) fn check_class_name(field: &str, s: &str) -> Result<()> {
    if s.is_empty()
        || s.len() > 64
        || !s
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
    {
        return Err(invalid(
            field,
            "a name is 1 to 64 letters, digits, '_', '.' or '-'",
        ));
    }
    Ok(())
}

fn check_text(field: &str, s: &str, max: usize) -> Result<()> {
    if s.len() > max || s.chars().any(char::is_control) {
        return Err(invalid(
            field,
            format!("at most {max} bytes with no control characters"),
        ));
    }
    Ok(())
}

pub(crate) fn check_device(d: &DeviceSpec) -> Result<()> {
    if let Some(s) = &d.subscriber {
        check_subscriber_id("subscriber", s)?;
    }
    if let Some(c) = &d.class_of_service {
        check_class_name("class_of_service", c)?;
    }
    if let Some(s) = &d.serial {
        check_text("serial", s, 128)?;
    }
    if let Some(s) = &d.device_id {
        check_text("device_id", s, 256)?;
    }
    if let Some(s) = &d.duid
        && (s.is_empty() || s.len() > 390 || !s.bytes().all(|b| b.is_ascii_hexdigit() || b == b':'))
    {
        return Err(invalid(
            "duid",
            "a DUID is 1 to 130 bytes in hex digits (':' between bytes allowed)",
        ));
    }
    check_vars("vars", &d.vars)
}

fn check_expect_delete(expect: Expect) -> Result<()> {
    if expect == Expect::Absent {
        return Err(invalid(
            "expect",
            "a delete cannot expect the record to be absent",
        ));
    }
    Ok(())
}

/// The version a write of a record at `cur` leaves it at, or why it may not happen.
fn next_version(kind: &'static str, key: &str, cur: Option<u64>, expect: Expect) -> Result<u64> {
    match (expect, cur) {
        (Expect::Any | Expect::Absent, None) => Ok(1),
        (Expect::Any, Some(v)) => Ok(v + 1),
        (Expect::Absent, Some(_)) => Err(StoreError::Conflict {
            kind,
            key: key.to_owned(),
            why: "already exists".into(),
        }),
        (Expect::Version(_), None) => Err(StoreError::NotFound {
            kind,
            key: key.to_owned(),
        }),
        (Expect::Version(e), Some(v)) if e == v => Ok(v + 1),
        (Expect::Version(e), Some(v)) => Err(StoreError::VersionMismatch {
            kind,
            key: key.to_owned(),
            expected: e,
            actual: v,
        }),
    }
}

/// Checks a delete of a record at `cur` may happen.
fn check_delete(kind: &'static str, key: &str, cur: Option<u64>, expect: Expect) -> Result<()> {
    check_expect_delete(expect)?;
    match (cur, expect) {
        (None, _) => Err(StoreError::NotFound {
            kind,
            key: key.to_owned(),
        }),
        (Some(v), Expect::Version(e)) if v != e => Err(StoreError::VersionMismatch {
            kind,
            key: key.to_owned(),
            expected: e,
            actual: v,
        }),
        _ => Ok(()),
    }
}

fn to_json(v: &impl serde::Serialize) -> Result<serde_json::Value> {
    serde_json::to_value(v).map_err(|e| StoreError::Backend(format!("encoding JSON: {e}")))
}

// ---- audit and changes ----

#[allow(clippy::too_many_arguments)]
fn audit<C: Conn + ?Sized>(
    c: &mut C,
    who: &Actor,
    action: &str,
    resource: &str,
    key: &str,
    before: Option<serde_json::Value>,
    after: Option<serde_json::Value>,
    at: i64,
) -> Result<()> {
    let j = |v: Option<serde_json::Value>| v.map_or(Ok(V::Null), |v| V::json(&v));
    c.exec(
        "INSERT INTO audit (at, who, action, resource, key, before, after) \
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
        &[
            V::I64(at),
            V::Text(who.to_string()),
            V::Text(action.into()),
            V::Text(resource.into()),
            V::Text(key.into()),
            j(before)?,
            j(after)?,
        ],
    )?;
    Ok(())
}

/// One audit entry for an action outside the store's records.
pub(crate) fn audit_action<C: Conn + ?Sized>(
    c: &mut C,
    action: &str,
    resource: &str,
    key: &str,
    detail: Option<serde_json::Value>,
    who: &Actor,
) -> Result<()> {
    audit(c, who, action, resource, key, None, detail, now_ms())
}

fn change<C: Conn + ?Sized>(c: &mut C, kind: &str, key: &str, version: u64) -> Result<()> {
    c.exec(
        "INSERT INTO changes (kind, key, version) VALUES ($1, $2, $3)",
        &[V::Text(kind.into()), V::Text(key.into()), V::u64(version)],
    )?;
    Ok(())
}

fn action(before: bool) -> &'static str {
    if before { "update" } else { "create" }
}

// ---- devices ----

pub(crate) const DEVICE_COLS: &str = "mac, kind, subscriber, class_of_service, serial, device_id, duid, vars, version, created_at, updated_at";

pub(crate) fn device_from(mut r: Row) -> Result<Device> {
    let mac = r.text(0)?;
    let kind = r.text(1)?;
    Ok(Device {
        spec: DeviceSpec {
            mac: mac
                .parse()
                .map_err(|_| StoreError::Backend(format!("stored MAC {mac:?}")))?,
            kind: kind.parse().map_err(StoreError::Backend)?,
            subscriber: r.opt_text(2)?,
            class_of_service: r.opt_text(3)?,
            serial: r.opt_text(4)?,
            device_id: r.opt_text(5)?,
            duid: r.opt_text(6)?,
            vars: r.json_as(7)?,
        },
        version: r.u64(8)?,
        created_at: r.i64(9)?,
        updated_at: r.i64(10)?,
    })
}

fn get_device_with<C: Conn + ?Sized>(c: &mut C, mac: Mac, lock: bool) -> Result<Option<Device>> {
    let l = if lock { c.lock_clause(false) } else { "" };
    c.one(
        &format!("SELECT {DEVICE_COLS} FROM devices WHERE mac = $1{l}"),
        &[V::Text(mac.to_string())],
    )?
    .map(device_from)
    .transpose()
}

pub(crate) fn get_device<C: Conn + ?Sized>(c: &mut C, mac: Mac) -> Result<Option<Device>> {
    get_device_with(c, mac, false)
}

/// `Invalid` unless the subscriber and class a device names exist (and, on PostgreSQL, keeps
/// them from being deleted until the transaction ends).
fn check_refs<C: Conn + ?Sized>(c: &mut C, d: &DeviceSpec) -> Result<()> {
    let l = c.lock_clause(true);
    if let Some(s) = &d.subscriber {
        let sql = format!("SELECT 1 FROM subscribers WHERE id = $1{l}");
        if c.one(&sql, &[V::Text(s.clone())])?.is_none() {
            return Err(invalid("subscriber", format!("no subscriber {s:?}")));
        }
    }
    if let Some(s) = &d.class_of_service {
        let sql = format!("SELECT 1 FROM classes WHERE name = $1{l}");
        if c.one(&sql, &[V::Text(s.clone())])?.is_none() {
            return Err(invalid(
                "class_of_service",
                format!("no class of service {s:?}"),
            ));
        }
    }
    Ok(())
}

fn device_params(d: &DeviceSpec) -> Result<Vec<V>> {
    Ok(vec![
        V::Text(d.mac.to_string()),
        V::Text(d.kind.as_str().into()),
        V::opt_text(d.subscriber.as_deref()),
        V::opt_text(d.class_of_service.as_deref()),
        V::opt_text(d.serial.as_deref()),
        V::opt_text(d.device_id.as_deref()),
        V::opt_text(d.duid.as_deref()),
        V::json(&d.vars)?,
    ])
}

/// Writes `d` at `version` (inserting when `created`), with its change row.
fn write_device<C: Conn + ?Sized>(
    c: &mut C,
    d: &DeviceSpec,
    version: u64,
    created_at: i64,
    now: i64,
) -> Result<Device> {
    let mut p = device_params(d)?;
    p.extend([V::u64(version), V::I64(created_at), V::I64(now)]);
    c.exec(
        &format!(
            "INSERT INTO devices ({DEVICE_COLS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) \
             ON CONFLICT (mac) DO UPDATE SET kind = excluded.kind, subscriber = excluded.subscriber, \
             class_of_service = excluded.class_of_service, serial = excluded.serial, \
             device_id = excluded.device_id, duid = excluded.duid, vars = excluded.vars, \
             version = excluded.version, updated_at = excluded.updated_at"
        ),
        &p,
    )?;
    change(c, "device", &d.mac.to_string(), version)?;
    Ok(Device {
        spec: d.clone(),
        version,
        created_at,
        updated_at: now,
    })
}

pub(crate) fn put_device<C: Conn + ?Sized>(
    c: &mut C,
    d: &DeviceSpec,
    expect: Expect,
    who: &Actor,
) -> Result<Device> {
    check_device(d)?;
    check_refs(c, d)?;
    let key = d.mac.to_string();
    let cur = get_device_with(c, d.mac, true)?;
    let version = next_version("device", &key, cur.as_ref().map(|d| d.version), expect)?;
    let now = now_ms();
    let created_at = cur.as_ref().map_or(now, |d| d.created_at);
    let dev = write_device(c, d, version, created_at, now)?;
    let before = cur.as_ref().map(to_json).transpose()?;
    audit(
        c,
        who,
        action(cur.is_some()),
        "device",
        &key,
        before,
        Some(to_json(&dev)?),
        now,
    )?;
    Ok(dev)
}

pub(crate) fn delete_device<C: Conn + ?Sized>(
    c: &mut C,
    mac: Mac,
    expect: Expect,
    who: &Actor,
) -> Result<()> {
    let key = mac.to_string();
    let cur = get_device_with(c, mac, true)?;
    check_delete("device", &key, cur.as_ref().map(|d| d.version), expect)?;
    c.exec(
        "DELETE FROM devices WHERE mac = $1",
        &[V::Text(key.clone())],
    )?;
    change(c, "device", &key, 0)?;
    audit(
        c,
        who,
        "delete",
        "device",
        &key,
        cur.as_ref().map(to_json).transpose()?,
        None,
        now_ms(),
    )
}

/// `LIMIT` for a page: one more than asked, to know whether there is a next page.
fn page_of<T>(mut items: Vec<T>, limit: u32, key: impl Fn(&T) -> String) -> Page<T> {
    let limit = limit as usize;
    let next = if items.len() > limit {
        items.truncate(limit);
        items.last().map(key)
    } else {
        None
    };
    Page { items, next }
}

pub(crate) fn list_devices<C: Conn + ?Sized>(
    c: &mut C,
    f: &DeviceFilter,
    page: &PageRequest,
) -> Result<Page<Device>> {
    let limit = page.effective_limit();
    let mut wh: Vec<String> = Vec::new();
    let mut p: Vec<V> = Vec::new();
    let mut arg = |wh: &mut Vec<String>, cond: &str, v: V| {
        p.push(v);
        wh.push(cond.replace('?', &format!("${}", p.len())));
    };
    if let Some(a) = &page.after {
        let mac: Mac = a
            .parse()
            .map_err(|_| invalid("after", "a device cursor is a MAC address"))?;
        arg(&mut wh, "mac > ?", V::Text(mac.to_string()));
    }
    if let Some(k) = f.kind {
        arg(&mut wh, "kind = ?", V::Text(k.as_str().into()));
    }
    if let Some(s) = &f.subscriber {
        arg(&mut wh, "subscriber = ?", V::Text(s.clone()));
    }
    if let Some(s) = &f.class_of_service {
        arg(&mut wh, "class_of_service = ?", V::Text(s.clone()));
    }
    if let Some(s) = &f.mac_prefix {
        let s = s.to_ascii_lowercase();
        if s.len() > 17 || !s.bytes().all(|b| b.is_ascii_hexdigit() || b == b':') {
            return Err(invalid(
                "mac_prefix",
                "a MAC prefix is lowercase hex and ':', e.g. 00:11:22",
            ));
        }
        if !s.is_empty() {
            // A range, not LIKE: both backends use the primary key for it.
            let mut hi = s.clone().into_bytes();
            if let Some(last) = hi.last_mut() {
                *last += 1;
            }
            arg(&mut wh, "mac >= ?", V::Text(s));
            arg(
                &mut wh,
                "mac < ?",
                V::Text(String::from_utf8_lossy(&hi).into_owned()),
            );
        }
    }
    if let Some(s) = &f.serial {
        arg(&mut wh, "serial = ?", V::Text(s.clone()));
    }
    if let Some(s) = &f.device_id {
        arg(&mut wh, "device_id = ?", V::Text(s.clone()));
    }
    if let Some(t) = f.updated_since {
        arg(&mut wh, "updated_at >= ?", V::I64(t));
    }
    if !f.classes_any.is_empty() {
        let mut marks = Vec::new();
        for cl in &f.classes_any {
            p.push(V::Text(cl.clone()));
            marks.push(format!("${}", p.len()));
        }
        wh.push(format!("class_of_service IN ({})", marks.join(", ")));
    }
    p.push(V::I64(i64::from(limit) + 1));
    let sql = format!(
        "SELECT {DEVICE_COLS} FROM devices{}{} ORDER BY mac LIMIT ${}",
        if wh.is_empty() { "" } else { " WHERE " },
        wh.join(" AND "),
        p.len()
    );
    let items = c
        .query(&sql, &p)?
        .into_iter()
        .map(device_from)
        .collect::<Result<Vec<_>>>()?;
    Ok(page_of(items, limit, |d| d.spec.mac.to_string()))
}

/// Validates a batch and keeps the last of each MAC given more than once.
pub(crate) fn import_batch(devices: &[DeviceSpec]) -> Result<Vec<&DeviceSpec>> {
    let mut seen = std::collections::HashMap::with_capacity(devices.len());
    for (i, d) in devices.iter().enumerate() {
        check_device(d).map_err(|e| match e {
            StoreError::Invalid { field, why } => {
                invalid(field, format!("device {}: {why}", d.mac))
            }
            e => e,
        })?;
        seen.insert(d.mac, i);
    }
    let mut keep: Vec<usize> = seen.into_values().collect();
    keep.sort_unstable();
    Ok(keep.into_iter().filter_map(|i| devices.get(i)).collect())
}

/// Row-at-a-time import (SQLite: each statement is a function call, not a round trip).
pub(crate) fn import_devices<C: Conn + ?Sized>(
    c: &mut C,
    devices: &[DeviceSpec],
    who: &Actor,
) -> Result<ImportCounts> {
    let batch = import_batch(devices)?;
    let mut subs = std::collections::HashSet::new();
    let mut classes = std::collections::HashSet::new();
    let mut counts = ImportCounts::default();
    let now = now_ms();
    for d in batch {
        // Check each name once per batch, not once per device.
        let fresh_sub = d.subscriber.as_ref().is_some_and(|s| !subs.contains(s));
        let fresh_class = d
            .class_of_service
            .as_ref()
            .is_some_and(|s| !classes.contains(s));
        if fresh_sub || fresh_class {
            check_refs(c, d).map_err(|e| match e {
                StoreError::Invalid { field, why } => {
                    invalid(field, format!("device {}: {why}", d.mac))
                }
                e => e,
            })?;
            subs.extend(d.subscriber.clone());
            classes.extend(d.class_of_service.clone());
        }
        match get_device_with(c, d.mac, true)? {
            Some(cur) if cur.spec == *d => counts.unchanged += 1,
            Some(cur) => {
                write_device(c, d, cur.version + 1, cur.created_at, now)?;
                counts.updated += 1;
            }
            None => {
                write_device(c, d, 1, now, now)?;
                counts.created += 1;
            }
        }
    }
    import_audit(c, who, counts, now)?;
    Ok(counts)
}

pub(crate) fn import_audit<C: Conn + ?Sized>(
    c: &mut C,
    who: &Actor,
    counts: ImportCounts,
    now: i64,
) -> Result<()> {
    audit(
        c,
        who,
        "import",
        "device",
        "",
        None,
        Some(to_json(&counts)?),
        now,
    )
}

// ---- subscribers ----

const SUB_COLS: &str = "id, name, vars, version, created_at, updated_at";

fn subscriber_from(mut r: Row) -> Result<Subscriber> {
    Ok(Subscriber {
        spec: SubscriberSpec {
            id: r.text(0)?,
            name: r.opt_text(1)?,
            vars: r.json_as(2)?,
        },
        version: r.u64(3)?,
        created_at: r.i64(4)?,
        updated_at: r.i64(5)?,
    })
}

fn get_subscriber_with<C: Conn + ?Sized>(
    c: &mut C,
    id: &str,
    lock: bool,
) -> Result<Option<Subscriber>> {
    let l = if lock { c.lock_clause(false) } else { "" };
    c.one(
        &format!("SELECT {SUB_COLS} FROM subscribers WHERE id = $1{l}"),
        &[V::Text(id.into())],
    )?
    .map(subscriber_from)
    .transpose()
}

pub(crate) fn get_subscriber<C: Conn + ?Sized>(c: &mut C, id: &str) -> Result<Option<Subscriber>> {
    get_subscriber_with(c, id, false)
}

pub(crate) fn put_subscriber<C: Conn + ?Sized>(
    c: &mut C,
    s: &SubscriberSpec,
    expect: Expect,
    who: &Actor,
) -> Result<Subscriber> {
    check_subscriber_id("id", &s.id)?;
    if let Some(n) = &s.name {
        check_text("name", n, 256)?;
    }
    check_vars("vars", &s.vars)?;
    let cur = get_subscriber_with(c, &s.id, true)?;
    let version = next_version("subscriber", &s.id, cur.as_ref().map(|s| s.version), expect)?;
    let now = now_ms();
    let created_at = cur.as_ref().map_or(now, |s| s.created_at);
    c.exec(
        &format!(
            "INSERT INTO subscribers ({SUB_COLS}) VALUES ($1, $2, $3, $4, $5, $6) \
             ON CONFLICT (id) DO UPDATE SET name = excluded.name, vars = excluded.vars, \
             version = excluded.version, updated_at = excluded.updated_at"
        ),
        &[
            V::Text(s.id.clone()),
            V::opt_text(s.name.as_deref()),
            V::json(&s.vars)?,
            V::u64(version),
            V::I64(created_at),
            V::I64(now),
        ],
    )?;
    change(c, "subscriber", &s.id, version)?;
    let out = Subscriber {
        spec: s.clone(),
        version,
        created_at,
        updated_at: now,
    };
    let before = cur.as_ref().map(to_json).transpose()?;
    audit(
        c,
        who,
        action(cur.is_some()),
        "subscriber",
        &s.id,
        before,
        Some(to_json(&out)?),
        now,
    )?;
    Ok(out)
}

fn still_named<C: Conn + ?Sized>(
    c: &mut C,
    kind: &'static str,
    key: &str,
    column: &str,
) -> Result<()> {
    let n = c
        .one(
            &format!("SELECT count(*) FROM devices WHERE {column} = $1"),
            &[V::Text(key.into())],
        )?
        .map(|mut r| r.u64(0))
        .transpose()?
        .unwrap_or(0);
    if n > 0 {
        return Err(StoreError::Conflict {
            kind,
            key: key.into(),
            why: format!("still named by {n} device{}", if n == 1 { "" } else { "s" }),
        });
    }
    Ok(())
}

pub(crate) fn delete_subscriber<C: Conn + ?Sized>(
    c: &mut C,
    id: &str,
    expect: Expect,
    who: &Actor,
) -> Result<()> {
    let cur = get_subscriber_with(c, id, true)?;
    check_delete("subscriber", id, cur.as_ref().map(|s| s.version), expect)?;
    still_named(c, "subscriber", id, "subscriber")?;
    c.exec(
        "DELETE FROM subscribers WHERE id = $1",
        &[V::Text(id.into())],
    )?;
    change(c, "subscriber", id, 0)?;
    audit(
        c,
        who,
        "delete",
        "subscriber",
        id,
        cur.as_ref().map(to_json).transpose()?,
        None,
        now_ms(),
    )
}

pub(crate) fn list_subscribers<C: Conn + ?Sized>(
    c: &mut C,
    page: &PageRequest,
) -> Result<Page<Subscriber>> {
    let limit = page.effective_limit();
    let rows = c.query(
        &format!("SELECT {SUB_COLS} FROM subscribers WHERE id > $1 ORDER BY id LIMIT $2"),
        &[
            V::Text(page.after.clone().unwrap_or_default()),
            V::I64(i64::from(limit) + 1),
        ],
    )?;
    let items = rows
        .into_iter()
        .map(subscriber_from)
        .collect::<Result<Vec<_>>>()?;
    Ok(page_of(items, limit, |s| s.spec.id.clone()))
}

// ---- classes ----

const CLASS_COLS: &str = "name, description, vars, version, created_at, updated_at";

fn class_from(mut r: Row) -> Result<ClassOfService> {
    Ok(ClassOfService {
        spec: ClassSpec {
            name: r.text(0)?,
            description: r.opt_text(1)?,
            vars: r.json_as(2)?,
        },
        version: r.u64(3)?,
        created_at: r.i64(4)?,
        updated_at: r.i64(5)?,
    })
}

fn get_class_with<C: Conn + ?Sized>(
    c: &mut C,
    name: &str,
    lock: bool,
) -> Result<Option<ClassOfService>> {
    let l = if lock { c.lock_clause(false) } else { "" };
    c.one(
        &format!("SELECT {CLASS_COLS} FROM classes WHERE name = $1{l}"),
        &[V::Text(name.into())],
    )?
    .map(class_from)
    .transpose()
}

pub(crate) fn get_class<C: Conn + ?Sized>(c: &mut C, name: &str) -> Result<Option<ClassOfService>> {
    get_class_with(c, name, false)
}

pub(crate) fn put_class<C: Conn + ?Sized>(
    c: &mut C,
    s: &ClassSpec,
    expect: Expect,
    who: &Actor,
) -> Result<ClassOfService> {
    check_class_name("name", &s.name)?;
    if let Some(n) = &s.description {
        check_text("description", n, 1024)?;
    }
    check_vars("vars", &s.vars)?;
    let cur = get_class_with(c, &s.name, true)?;
    let version = next_version("class", &s.name, cur.as_ref().map(|s| s.version), expect)?;
    let now = now_ms();
    let created_at = cur.as_ref().map_or(now, |s| s.created_at);
    c.exec(
        &format!(
            "INSERT INTO classes ({CLASS_COLS}) VALUES ($1, $2, $3, $4, $5, $6) \
             ON CONFLICT (name) DO UPDATE SET description = excluded.description, vars = excluded.vars, \
             version = excluded.version, updated_at = excluded.updated_at"
        ),
        &[
            V::Text(s.name.clone()),
            V::opt_text(s.description.as_deref()),
            V::json(&s.vars)?,
            V::u64(version),
            V::I64(created_at),
            V::I64(now),
        ],
    )?;
    change(c, "class", &s.name, version)?;
    let out = ClassOfService {
        spec: s.clone(),
        version,
        created_at,
        updated_at: now,
    };
    let before = cur.as_ref().map(to_json).transpose()?;
    audit(
        c,
        who,
        action(cur.is_some()),
        "class",
        &s.name,
        before,
        Some(to_json(&out)?),
        now,
    )?;
    Ok(out)
}

pub(crate) fn delete_class<C: Conn + ?Sized>(
    c: &mut C,
    name: &str,
    expect: Expect,
    who: &Actor,
) -> Result<()> {
    let cur = get_class_with(c, name, true)?;
    check_delete("class", name, cur.as_ref().map(|s| s.version), expect)?;
    still_named(c, "class", name, "class_of_service")?;
    c.exec(
        "DELETE FROM classes WHERE name = $1",
        &[V::Text(name.into())],
    )?;
    change(c, "class", name, 0)?;
    audit(
        c,
        who,
        "delete",
        "class",
        name,
        cur.as_ref().map(to_json).transpose()?,
        None,
        now_ms(),
    )
}

pub(crate) fn list_classes<C: Conn + ?Sized>(
    c: &mut C,
    page: &PageRequest,
) -> Result<Page<ClassOfService>> {
    let limit = page.effective_limit();
    let rows = c.query(
        &format!("SELECT {CLASS_COLS} FROM classes WHERE name > $1 ORDER BY name LIMIT $2"),
        &[
            V::Text(page.after.clone().unwrap_or_default()),
            V::I64(i64::from(limit) + 1),
        ],
    )?;
    let items = rows
        .into_iter()
        .map(class_from)
        .collect::<Result<Vec<_>>>()?;
    Ok(page_of(items, limit, |s| s.spec.name.clone()))
}

// ---- reservations ----

const RES_COLS: &str = "mac, address, dhcp_class, version, created_at, updated_at";

fn reservation_from(mut r: Row) -> Result<Reservation> {
    let mac = r.text(0)?;
    let addr = r.text(1)?;
    Ok(Reservation {
        spec: ReservationSpec {
            mac: mac
                .parse()
                .map_err(|_| StoreError::Backend(format!("stored MAC {mac:?}")))?,
            address: addr
                .parse::<Ipv4Addr>()
                .map_err(|_| StoreError::Backend(format!("stored address {addr:?}")))?,
            dhcp_class: r.opt_text(2)?,
        },
        version: r.u64(3)?,
        created_at: r.i64(4)?,
        updated_at: r.i64(5)?,
    })
}

fn get_reservation_with<C: Conn + ?Sized>(
    c: &mut C,
    mac: Mac,
    lock: bool,
) -> Result<Option<Reservation>> {
    let l = if lock { c.lock_clause(false) } else { "" };
    c.one(
        &format!("SELECT {RES_COLS} FROM reservations WHERE mac = $1{l}"),
        &[V::Text(mac.to_string())],
    )?
    .map(reservation_from)
    .transpose()
}

pub(crate) fn get_reservation<C: Conn + ?Sized>(
    c: &mut C,
    mac: Mac,
) -> Result<Option<Reservation>> {
    get_reservation_with(c, mac, false)
}

pub(crate) fn put_reservation<C: Conn + ?Sized>(
    c: &mut C,
    r: &ReservationSpec,
    expect: Expect,
    who: &Actor,
) -> Result<Reservation> {
    if let Some(cl) = &r.dhcp_class {
        if cl.is_empty() {
            return Err(invalid("dhcp_class", "a DHCP class name is not empty"));
        }
        check_text("dhcp_class", cl, 64)?;
    }
    let key = r.mac.to_string();
    let addr = r.address.to_string();
    if let Some(mut holder) = c.one(
        "SELECT mac FROM reservations WHERE address = $1 AND mac <> $2",
        &[V::Text(addr.clone()), V::Text(key.clone())],
    )? {
        return Err(StoreError::Conflict {
            kind: "reservation",
            key: addr,
            why: format!("reserved for {}", holder.text(0)?),
        });
    }
    let cur = get_reservation_with(c, r.mac, true)?;
    let version = next_version("reservation", &key, cur.as_ref().map(|s| s.version), expect)?;
    let now = now_ms();
    let created_at = cur.as_ref().map_or(now, |s| s.created_at);
    c.exec(
        &format!(
            "INSERT INTO reservations ({RES_COLS}) VALUES ($1, $2, $3, $4, $5, $6) \
             ON CONFLICT (mac) DO UPDATE SET address = excluded.address, dhcp_class = excluded.dhcp_class, \
             version = excluded.version, updated_at = excluded.updated_at"
        ),
        &[
            V::Text(key.clone()),
            V::Text(addr),
            V::opt_text(r.dhcp_class.as_deref()),
            V::u64(version),
            V::I64(created_at),
            V::I64(now),
        ],
    )?;
    change(c, "reservation", &key, version)?;
    let out = Reservation {
        spec: r.clone(),
        version,
        created_at,
        updated_at: now,
    };
    let before = cur.as_ref().map(to_json).transpose()?;
    audit(
        c,
        who,
        action(cur.is_some()),
        "reservation",
        &key,
        before,
        Some(to_json(&out)?),
        now,
    )?;
    Ok(out)
}

pub(crate) fn delete_reservation<C: Conn + ?Sized>(
    c: &mut C,
    mac: Mac,
    expect: Expect,
    who: &Actor,
) -> Result<()> {
    let key = mac.to_string();
    let cur = get_reservation_with(c, mac, true)?;
    check_delete("reservation", &key, cur.as_ref().map(|s| s.version), expect)?;
    c.exec(
        "DELETE FROM reservations WHERE mac = $1",
        &[V::Text(key.clone())],
    )?;
    change(c, "reservation", &key, 0)?;
    audit(
        c,
        who,
        "delete",
        "reservation",
        &key,
        cur.as_ref().map(to_json).transpose()?,
        None,
        now_ms(),
    )
}

pub(crate) fn list_reservations<C: Conn + ?Sized>(
    c: &mut C,
    page: &PageRequest,
) -> Result<Page<Reservation>> {
    let limit = page.effective_limit();
    let after = match &page.after {
        Some(a) => a
            .parse::<Mac>()
            .map_err(|_| invalid("after", "a reservation cursor is a MAC address"))?
            .to_string(),
        None => String::new(),
    };
    let rows = c.query(
        &format!("SELECT {RES_COLS} FROM reservations WHERE mac > $1 ORDER BY mac LIMIT $2"),
        &[V::Text(after), V::I64(i64::from(limit) + 1)],
    )?;
    let items = rows
        .into_iter()
        .map(reservation_from)
        .collect::<Result<Vec<_>>>()?;
    Ok(page_of(items, limit, |s| s.spec.mac.to_string()))
}

// ---- documents ----

fn check_collection(s: &str) -> Result<()> {
    check_class_name("collection", s)
}

fn check_doc_id(s: &str) -> Result<()> {
    if s.is_empty() {
        return Err(invalid("id", "a document id is not empty"));
    }
    check_text("id", s, 256)
}

const DOC_COLS: &str = "collection, id, body, version, updated_at";

fn document_from(mut r: Row) -> Result<Document> {
    Ok(Document {
        collection: r.text(0)?,
        id: r.text(1)?,
        body: r.json(2)?,
        version: r.u64(3)?,
        updated_at: r.i64(4)?,
    })
}

fn get_document_with<C: Conn + ?Sized>(
    c: &mut C,
    collection: &str,
    id: &str,
    lock: bool,
) -> Result<Option<Document>> {
    let l = if lock { c.lock_clause(false) } else { "" };
    c.one(
        &format!("SELECT {DOC_COLS} FROM documents WHERE collection = $1 AND id = $2{l}"),
        &[V::Text(collection.into()), V::Text(id.into())],
    )?
    .map(document_from)
    .transpose()
}

pub(crate) fn get_document<C: Conn + ?Sized>(
    c: &mut C,
    collection: &str,
    id: &str,
) -> Result<Option<Document>> {
    get_document_with(c, collection, id, false)
}

/// A document body is at most this many bytes of JSON.
const MAX_DOCUMENT: usize = 1 << 20;

pub(crate) fn put_document<C: Conn + ?Sized>(
    c: &mut C,
    collection: &str,
    id: &str,
    body: &serde_json::Value,
    expect: Expect,
    who: &Actor,
) -> Result<Document> {
    check_collection(collection)?;
    check_doc_id(id)?;
    let text = serde_json::to_string(body).map_err(|e| invalid("body", e.to_string()))?;
    if text.len() > MAX_DOCUMENT {
        return Err(invalid(
            "body",
            format!("at most {MAX_DOCUMENT} bytes of JSON"),
        ));
    }
    let cur = get_document_with(c, collection, id, true)?;
    let version = next_version("document", id, cur.as_ref().map(|s| s.version), expect)?;
    let now = now_ms();
    c.exec(
        &format!(
            "INSERT INTO documents ({DOC_COLS}) VALUES ($1, $2, $3, $4, $5) \
             ON CONFLICT (collection, id) DO UPDATE SET body = excluded.body, \
             version = excluded.version, updated_at = excluded.updated_at"
        ),
        &[
            V::Text(collection.into()),
            V::Text(id.into()),
            V::Json(text),
            V::u64(version),
            V::I64(now),
        ],
    )?;
    let out = Document {
        collection: collection.into(),
        id: id.into(),
        body: body.clone(),
        version,
        updated_at: now,
    };
    if *who != Actor::System {
        let before = cur.as_ref().map(to_json).transpose()?;
        audit(
            c,
            who,
            action(cur.is_some()),
            collection,
            id,
            before,
            Some(to_json(&out)?),
            now,
        )?;
    }
    Ok(out)
}

pub(crate) fn delete_document<C: Conn + ?Sized>(
    c: &mut C,
    collection: &str,
    id: &str,
    expect: Expect,
    who: &Actor,
) -> Result<()> {
    let cur = get_document_with(c, collection, id, true)?;
    check_delete("document", id, cur.as_ref().map(|s| s.version), expect)?;
    c.exec(
        "DELETE FROM documents WHERE collection = $1 AND id = $2",
        &[V::Text(collection.into()), V::Text(id.into())],
    )?;
    if *who != Actor::System {
        let before = cur.as_ref().map(to_json).transpose()?;
        audit(c, who, "delete", collection, id, before, None, now_ms())?;
    }
    Ok(())
}

pub(crate) fn list_documents<C: Conn + ?Sized>(
    c: &mut C,
    collection: &str,
    page: &PageRequest,
) -> Result<Page<Document>> {
    let limit = page.effective_limit();
    let rows = c.query(
        &format!(
            "SELECT {DOC_COLS} FROM documents WHERE collection = $1 AND id > $2 ORDER BY id LIMIT $3"
        ),
        &[
            V::Text(collection.into()),
            V::Text(page.after.clone().unwrap_or_default()),
            V::I64(i64::from(limit) + 1),
        ],
    )?;
    let items = rows
        .into_iter()
        .map(document_from)
        .collect::<Result<Vec<_>>>()?;
    Ok(page_of(items, limit, |d| d.id.clone()))
}

// ---- timeline ----

pub(crate) fn append_events<C: Conn + ?Sized>(c: &mut C, events: &[NewEvent]) -> Result<()> {
    for (i, e) in events.iter().enumerate() {
        if e.kind.is_empty() {
            return Err(invalid(format!("events[{i}].kind"), "not empty"));
        }
        check_text(&format!("events[{i}].kind"), &e.kind, 64)?;
    }
    // Multi-row INSERTs in power-of-two sizes: few distinct statements to prepare and cache,
    // few round trips.
    let mut rest = events;
    while !rest.is_empty() {
        let n = if rest.len() >= 256 {
            256
        } else {
            1usize << (usize::BITS - 1 - rest.len().leading_zeros())
        };
        let (chunk, tail) = rest.split_at(n);
        rest = tail;
        let mut p = Vec::with_capacity(n * 5);
        let mut values = Vec::with_capacity(n);
        for e in chunk {
            let b = p.len();
            values.push(format!(
                "(${}, ${}, ${}, ${}, ${})",
                b + 1,
                b + 2,
                b + 3,
                b + 4,
                b + 5
            ));
            p.extend([
                V::Text(e.mac.to_string()),
                V::I64(e.at),
                V::Text(e.source.as_str().into()),
                V::Text(e.kind.clone()),
                V::json(&e.detail)?,
            ]);
        }
        c.exec(
            &format!(
                "INSERT INTO events (mac, at, source, kind, detail) VALUES {}",
                values.join(", ")
            ),
            &p,
        )?;
    }
    Ok(())
}

fn event_from(mut r: Row) -> Result<Event> {
    let mac = r.text(1)?;
    let source = r.text(3)?;
    Ok(Event {
        id: r.i64(0)?,
        event: NewEvent {
            mac: mac
                .parse()
                .map_err(|_| StoreError::Backend(format!("stored MAC {mac:?}")))?,
            at: r.i64(2)?,
            source: source.parse().map_err(StoreError::Backend)?,
            kind: r.text(4)?,
            detail: r.json(5)?,
        },
    })
}

fn list_limit(limit: u32) -> i64 {
    i64::from(PageRequest::first(limit).effective_limit())
}

pub(crate) fn timeline<C: Conn + ?Sized>(
    c: &mut C,
    mac: Mac,
    before: Option<i64>,
    limit: u32,
) -> Result<Vec<Event>> {
    // Newest first by when it happened: events reach the store in batches from the roles'
    // writer and one at a time from the API, so their ids are not in time order. The cursor
    // is an event: what comes after it in that order (by id alone if it was trimmed since).
    let cursor = match before {
        None => None,
        Some(id) => Some(
            c.query("SELECT at FROM events WHERE id = $1", &[V::I64(id)])?
                .into_iter()
                .next()
                .map(|mut r| r.i64(0))
                .transpose()?
                .map_or((i64::MAX, id), |at| (at, id)),
        ),
    };
    let (at, id) = cursor.unwrap_or((i64::MAX, i64::MAX));
    c.query(
        "SELECT id, mac, at, source, kind, detail FROM events WHERE mac = $1 \
         AND (at < $2 OR (at = $2 AND id < $3)) ORDER BY at DESC, id DESC LIMIT $4",
        &[
            V::Text(mac.to_string()),
            V::I64(at),
            V::I64(id),
            V::I64(list_limit(limit)),
        ],
    )?
    .into_iter()
    .map(event_from)
    .collect()
}

pub(crate) fn trim_events<C: Conn + ?Sized>(
    c: &mut C,
    older_than_ms: i64,
    keep: u32,
) -> Result<u64> {
    let old = c.exec("DELETE FROM events WHERE at < $1", &[V::I64(older_than_ms)])?;
    let over = c.exec(
        "DELETE FROM events WHERE id IN (SELECT id FROM (SELECT id, row_number() OVER \
         (PARTITION BY mac ORDER BY at DESC, id DESC) AS rn FROM events) AS ranked WHERE rn > $1)",
        &[V::I64(i64::from(keep))],
    )?;
    Ok(old + over)
}

// ---- audit ----

pub(crate) fn audit_log<C: Conn + ?Sized>(
    c: &mut C,
    f: &AuditFilter,
    before: Option<i64>,
    limit: u32,
) -> Result<Vec<AuditEntry>> {
    let mut p = vec![V::I64(before.unwrap_or(i64::MAX))];
    let mut wh = vec!["id < $1".to_owned()];
    for (col, v) in [("resource", &f.resource), ("key", &f.key), ("who", &f.who)] {
        if let Some(v) = v {
            p.push(V::Text(v.clone()));
            wh.push(format!("{col} = ${}", p.len()));
        }
    }
    p.push(V::I64(list_limit(limit)));
    let sql = format!(
        "SELECT id, at, who, action, resource, key, before, after FROM audit WHERE {} \
         ORDER BY id DESC LIMIT ${}",
        wh.join(" AND "),
        p.len()
    );
    c.query(&sql, &p)?
        .into_iter()
        .map(|mut r| {
            Ok(AuditEntry {
                id: r.i64(0)?,
                at: r.i64(1)?,
                who: r.text(2)?,
                action: r.text(3)?,
                resource: r.text(4)?,
                key: r.text(5)?,
                before: r.opt_json(6)?,
                after: r.opt_json(7)?,
            })
        })
        .collect()
}

// ---- tokens ----

fn token_from(mut r: Row) -> Result<Token> {
    let role = r.text(1)?;
    Ok(Token {
        id: r.text(0)?,
        role: role.parse().map_err(StoreError::Backend)?,
        scope: r.json_as(2)?,
        created_at: r.i64(3)?,
    })
}

pub(crate) fn put_token<C: Conn + ?Sized>(c: &mut C, t: &TokenSpec, who: &Actor) -> Result<Token> {
    check_class_name("name", &t.name)?;
    for (i, cl) in t.scope.classes.iter().enumerate() {
        check_class_name(&format!("scope.classes[{i}]"), cl)?;
    }
    let l = c.lock_clause(false);
    if c.one(
        &format!("SELECT 1 FROM tokens WHERE name = $1{l}"),
        &[V::Text(t.name.clone())],
    )?
    .is_some()
    {
        return Err(StoreError::Conflict {
            kind: "token",
            key: t.name.clone(),
            why: "a token of that name exists".into(),
        });
    }
    if c.one(
        "SELECT 1 FROM tokens WHERE hash = $1",
        &[V::Blob(t.hash.to_vec())],
    )?
    .is_some()
    {
        return Err(StoreError::Conflict {
            kind: "token",
            key: t.name.clone(),
            why: "another token has the same secret".into(),
        });
    }
    let now = now_ms();
    c.exec(
        "INSERT INTO tokens (name, hash, role, scope, created_at) VALUES ($1, $2, $3, $4, $5)",
        &[
            V::Text(t.name.clone()),
            V::Blob(t.hash.to_vec()),
            V::Text(t.role.as_str().into()),
            V::json(&t.scope)?,
            V::I64(now),
        ],
    )?;
    let out = Token {
        id: t.name.clone(),
        role: t.role,
        scope: t.scope.clone(),
        created_at: now,
    };
    audit(
        c,
        who,
        "create",
        "token",
        &t.name,
        None,
        Some(to_json(&out)?),
        now,
    )?;
    Ok(out)
}

const TOKEN_COLS: &str = "name, role, scope, created_at";

pub(crate) fn token_by_hash<C: Conn + ?Sized>(c: &mut C, hash: &[u8; 32]) -> Result<Option<Token>> {
    c.one(
        &format!("SELECT {TOKEN_COLS} FROM tokens WHERE hash = $1"),
        &[V::Blob(hash.to_vec())],
    )?
    .map(token_from)
    .transpose()
}

pub(crate) fn list_tokens<C: Conn + ?Sized>(c: &mut C) -> Result<Vec<Token>> {
    c.query(
        &format!("SELECT {TOKEN_COLS} FROM tokens ORDER BY name"),
        &[],
    )?
    .into_iter()
    .map(token_from)
    .collect()
}

pub(crate) fn delete_token<C: Conn + ?Sized>(c: &mut C, id: &str, who: &Actor) -> Result<()> {
    let l = c.lock_clause(false);
    let cur = c
        .one(
            &format!("SELECT {TOKEN_COLS} FROM tokens WHERE name = $1{l}"),
            &[V::Text(id.into())],
        )?
        .map(token_from)
        .transpose()?
        .ok_or_else(|| StoreError::NotFound {
            kind: "token",
            key: id.into(),
        })?;
    c.exec("DELETE FROM tokens WHERE name = $1", &[V::Text(id.into())])?;
    audit(
        c,
        who,
        "delete",
        "token",
        id,
        Some(to_json(&cur)?),
        None,
        now_ms(),
    )
}

// ---- template versions ----

/// A template's text is at most this many bytes.
pub(crate) const MAX_TEMPLATE: usize = 256 << 10;

fn check_template(t: &TemplateVersionSpec) -> Result<()> {
    if t.name.is_empty() {
        return Err(invalid("name", "a template name is not empty"));
    }
    check_text("name", &t.name, 256)?;
    // Tabs and newlines are a template's own; NUL is refused (PostgreSQL text cannot hold it).
    if t.text.len() > MAX_TEMPLATE || t.text.contains('\0') {
        return Err(invalid(
            "text",
            format!("a template is at most {MAX_TEMPLATE} bytes with no NUL"),
        ));
    }
    if let Some(c) = &t.comment {
        check_text("comment", c, 1024)?;
    }
    Ok(())
}

const TEMPLATE_INFO_COLS: &str = "name, version, kind, actor, created_at, comment";

fn template_info_from(r: &mut Row) -> Result<TemplateVersionInfo> {
    Ok(TemplateVersionInfo {
        name: r.text(0)?,
        version: r.u64(1)?,
        kind: r.text(2)?.parse().map_err(StoreError::Backend)?,
        actor: r.text(3)?,
        created_at: r.i64(4)?,
        comment: r.opt_text(5)?,
    })
}

fn template_from(mut r: Row) -> Result<TemplateVersion> {
    let info = template_info_from(&mut r)?;
    Ok(TemplateVersion {
        info,
        text: r.text(6)?,
    })
}

pub(crate) fn template_versions<C: Conn + ?Sized>(
    c: &mut C,
    name: &str,
    before: Option<u64>,
    limit: u32,
) -> Result<Vec<TemplateVersionInfo>> {
    c.query(
        &format!(
            "SELECT {TEMPLATE_INFO_COLS} FROM template_versions WHERE name = $1 AND version < $2 \
             ORDER BY version DESC LIMIT $3"
        ),
        &[
            V::Text(name.into()),
            before.map_or(V::I64(i64::MAX), V::u64),
            V::I64(list_limit(limit)),
        ],
    )?
    .into_iter()
    .map(|mut r| template_info_from(&mut r))
    .collect()
}

pub(crate) fn get_template_version<C: Conn + ?Sized>(
    c: &mut C,
    name: &str,
    version: u64,
) -> Result<Option<TemplateVersion>> {
    c.one(
        &format!(
            "SELECT {TEMPLATE_INFO_COLS}, text FROM template_versions WHERE name = $1 AND version = $2"
        ),
        &[V::Text(name.into()), V::u64(version)],
    )?
    .map(template_from)
    .transpose()
}

pub(crate) fn latest_template_version<C: Conn + ?Sized>(
    c: &mut C,
    name: &str,
) -> Result<Option<TemplateVersion>> {
    c.one(
        &format!(
            "SELECT {TEMPLATE_INFO_COLS}, text FROM template_versions WHERE name = $1 \
             ORDER BY version DESC LIMIT 1"
        ),
        &[V::Text(name.into())],
    )?
    .map(template_from)
    .transpose()
}

pub(crate) fn latest_template_versions<C: Conn + ?Sized>(
    c: &mut C,
) -> Result<Vec<TemplateVersion>> {
    c.query(
        &format!(
            "SELECT {TEMPLATE_INFO_COLS}, text FROM template_versions AS t WHERE version = \
             (SELECT max(version) FROM template_versions WHERE name = t.name) ORDER BY name"
        ),
        &[],
    )?
    .into_iter()
    .map(template_from)
    .collect()
}

pub(crate) fn put_template_version<C: Conn + ?Sized>(
    c: &mut C,
    t: &TemplateVersionSpec,
    expect: Expect,
    who: &Actor,
) -> Result<TemplateVersion> {
    check_template(t)?;
    // Both backends serialise this write (SQLite: one writer; PostgreSQL: the record-write
    // lock), so max + 1 is this save's alone; the primary key would refuse a second anyway.
    let cur = template_versions(c, &t.name, None, 1)?.into_iter().next();
    let version = next_version("template", &t.name, cur.as_ref().map(|v| v.version), expect)?;
    let now = now_ms();
    let out = TemplateVersion {
        info: TemplateVersionInfo {
            name: t.name.clone(),
            version,
            kind: t.kind,
            actor: who.to_string(),
            created_at: now,
            comment: t.comment.clone(),
        },
        text: t.text.clone(),
    };
    c.exec(
        &format!(
            "INSERT INTO template_versions ({TEMPLATE_INFO_COLS}, text) \
             VALUES ($1, $2, $3, $4, $5, $6, $7)"
        ),
        &[
            V::Text(t.name.clone()),
            V::u64(version),
            V::Text(t.kind.as_str().into()),
            V::Text(out.info.actor.clone()),
            V::I64(now),
            V::opt_text(t.comment.as_deref()),
            V::Text(t.text.clone()),
        ],
    )?;
    change(c, "template", &t.name, version)?;
    audit(
        c,
        who,
        action(cur.is_some()),
        "template",
        &t.name,
        cur.as_ref().map(to_json).transpose()?,
        Some(to_json(&out)?),
        now,
    )?;
    Ok(out)
}

// ---- sizes and changes ----

pub(crate) fn counts<C: Conn + ?Sized>(c: &mut C) -> Result<Counts> {
    let mut r = c
        .one(
            "SELECT (SELECT count(*) FROM devices), (SELECT count(*) FROM subscribers), \
             (SELECT count(*) FROM classes), (SELECT count(*) FROM reservations), \
             (SELECT count(*) FROM documents), (SELECT count(*) FROM events), \
             (SELECT count(*) FROM audit), (SELECT count(*) FROM tokens)",
            &[],
        )?
        .ok_or_else(|| StoreError::Backend("counts: no row".into()))?;
    Ok(Counts {
        devices: r.u64(0)?,
        subscribers: r.u64(1)?,
        classes: r.u64(2)?,
        reservations: r.u64(3)?,
        documents: r.u64(4)?,
        events: r.u64(5)?,
        audit: r.u64(6)?,
        tokens: r.u64(7)?,
    })
}

pub(crate) fn last_change<C: Conn + ?Sized>(c: &mut C) -> Result<i64> {
    c.one("SELECT COALESCE(MAX(seq), 0) FROM changes", &[])?
        .map_or(Ok(0), |mut r| r.i64(0))
}

pub(crate) fn trim_changes<C: Conn + ?Sized>(c: &mut C, through: i64) -> Result<u64> {
    c.exec("DELETE FROM changes WHERE seq <= $1", &[V::I64(through)])
}

pub(crate) fn changes<C: Conn + ?Sized>(c: &mut C, after: i64, limit: u32) -> Result<Vec<Change>> {
    c.query(
        "SELECT seq, kind, key, version FROM changes WHERE seq > $1 ORDER BY seq LIMIT $2",
        &[V::I64(after), V::I64(list_limit(limit))],
    )?
    .into_iter()
    .map(|mut r| {
        let kind = match r.text(1)?.as_str() {
            "device" => ChangeKind::Device,
            "subscriber" => ChangeKind::Subscriber,
            "class" => ChangeKind::Class,
            "reservation" => ChangeKind::Reservation,
            "template" => ChangeKind::Template,
            k => return Err(StoreError::Backend(format!("stored change kind {k:?}"))),
        };
        Ok(Change {
            seq: r.i64(0)?,
            kind,
            key: r.text(2)?,
            version: r.u64(3)?,
        })
    })
    .collect()
}

pub(crate) fn schema_version<C: Conn + ?Sized>(c: &mut C) -> Result<u32> {
    let v = c
        .one("SELECT max(version) FROM schema_migrations", &[])?
        .map(|mut r| match r.0.first() {
            Some(V::Null) | None => Ok(0),
            _ => r.i64(0),
        })
        .transpose()?
        .unwrap_or(0);
    u32::try_from(v).map_err(|_| StoreError::Backend(format!("schema version {v}")))
}

/// The error for a store whose schema is newer than this binary's migrations.
pub(crate) fn too_new(found: u32, known: u32) -> StoreError {
    StoreError::Backend(format!(
        "the store's schema is at version {found}, newer than this provd knows (up to {known}): \
         run a newer provd, or restore a backup"
    ))
}
