//! The OpenAPI schemas of provd-store's records, as the API reads and writes them. The store's
//! types are serialized as they are; these mirror their JSON (a test checks a stored record
//! against its schema's required fields).

#![allow(dead_code)]

use serde::Serialize;
use utoipa::ToSchema;

/// `cm`, `mta`, `erouter`, `phone`, `cpe`, `other`.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum DeviceType {
    Cm,
    Mta,
    Erouter,
    Phone,
    Cpe,
    Other,
}

/// A device as written (`PUT /devices/{mac}`; `mac` may be left out, the path names it).
#[derive(Serialize, ToSchema)]
pub struct DeviceSpec {
    #[schema(example = "00:11:22:aa:bb:cc")]
    mac: Option<String>,
    #[serde(rename = "type")]
    kind: Option<DeviceType>,
    /// Must exist.
    subscriber: Option<String>,
    /// Must exist.
    class_of_service: Option<String>,
    serial: Option<String>,
    device_id: Option<String>,
    duid: Option<String>,
    /// Names `[A-Za-z_][A-Za-z0-9_]*`; values strings, numbers or booleans.
    #[schema(value_type = Option<Object>)]
    vars: Option<serde_json::Value>,
}

/// A device as stored.
#[derive(Serialize, ToSchema)]
pub struct Device {
    mac: String,
    #[serde(rename = "type")]
    kind: DeviceType,
    subscriber: Option<String>,
    class_of_service: Option<String>,
    serial: Option<String>,
    device_id: Option<String>,
    duid: Option<String>,
    #[schema(value_type = Object)]
    vars: serde_json::Value,
    /// The `ETag`.
    version: u64,
    /// Unix ms.
    created_at: i64,
    updated_at: i64,
}

#[derive(Serialize, ToSchema)]
pub struct DevicePage {
    items: Vec<Device>,
    /// The next page's `after`; null on the last page.
    next: Option<String>,
}

/// A subscriber as written (`id` may be left out, the path names it).
#[derive(Serialize, ToSchema)]
pub struct SubscriberSpec {
    id: Option<String>,
    name: Option<String>,
    #[schema(value_type = Option<Object>)]
    vars: Option<serde_json::Value>,
}

#[derive(Serialize, ToSchema)]
pub struct Subscriber {
    id: String,
    name: Option<String>,
    #[schema(value_type = Object)]
    vars: serde_json::Value,
    version: u64,
    created_at: i64,
    updated_at: i64,
}

#[derive(Serialize, ToSchema)]
pub struct SubscriberPage {
    items: Vec<Subscriber>,
    next: Option<String>,
}

/// A class of service as written (`name` may be left out, the path names it).
#[derive(Serialize, ToSchema)]
pub struct ClassSpec {
    name: Option<String>,
    description: Option<String>,
    #[schema(value_type = Option<Object>)]
    vars: Option<serde_json::Value>,
}

#[derive(Serialize, ToSchema)]
pub struct ClassOfService {
    name: String,
    description: Option<String>,
    #[schema(value_type = Object)]
    vars: serde_json::Value,
    version: u64,
    created_at: i64,
    updated_at: i64,
}

#[derive(Serialize, ToSchema)]
pub struct ClassPage {
    items: Vec<ClassOfService>,
    next: Option<String>,
}

/// A reservation as written (`mac` may be left out, the path names it).
#[derive(Serialize, ToSchema)]
pub struct ReservationSpec {
    mac: Option<String>,
    #[schema(format = Ipv4)]
    address: String,
    dhcp_class: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct Reservation {
    mac: String,
    #[schema(format = Ipv4)]
    address: String,
    dhcp_class: Option<String>,
    version: u64,
    created_at: i64,
    updated_at: i64,
}

#[derive(Serialize, ToSchema)]
pub struct ReservationPage {
    items: Vec<Reservation>,
    next: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct LeasePage {
    items: Vec<crate::Lease>,
    next: Option<String>,
}

/// `dhcp`, `tftp`, `time`, `syslog`, `mta`, `http`, `cwmp`, `api`.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Source {
    Dhcp,
    Tftp,
    Time,
    Syslog,
    Mta,
    Http,
    Cwmp,
    Api,
}

/// One timeline event.
#[derive(Serialize, ToSchema)]
pub struct Event {
    id: i64,
    mac: String,
    /// Unix ms.
    at: i64,
    source: Source,
    kind: String,
    #[schema(value_type = Object)]
    detail: serde_json::Value,
}

/// A device's timeline, newest first.
#[derive(Serialize, ToSchema)]
pub struct Timeline {
    items: Vec<Event>,
    /// The next (older) page's `before`; null on the last page.
    next: Option<i64>,
}

#[derive(Serialize, ToSchema)]
pub struct AuditEntry {
    id: i64,
    at: i64,
    /// `token:NAME`, `cli:USER`, `system`.
    who: String,
    action: String,
    resource: String,
    key: String,
    #[schema(value_type = Object)]
    before: Option<serde_json::Value>,
    #[schema(value_type = Object)]
    after: Option<serde_json::Value>,
}

#[derive(Serialize, ToSchema)]
pub struct AuditPage {
    items: Vec<AuditEntry>,
    next: Option<i64>,
}

/// `admin`, `operator`, `read-only`.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "kebab-case")]
pub enum TokenRole {
    ReadOnly,
    Operator,
    Admin,
}

/// Limits what a token sees and changes; empty lists limit nothing.
#[derive(Serialize, ToSchema)]
pub struct Scope {
    relays: Vec<String>,
    classes: Vec<String>,
}

#[derive(Serialize, ToSchema)]
pub struct Token {
    /// Its name.
    id: String,
    role: TokenRole,
    scope: Scope,
    created_at: i64,
}

/// A token to create.
#[derive(Serialize, ToSchema)]
pub struct TokenSpec {
    name: String,
    role: TokenRole,
    scope: Option<Scope>,
}

/// A created token: the secret is shown this once and never stored.
#[derive(Serialize, ToSchema)]
pub struct TokenCreated {
    token: Token,
    secret: String,
}

#[derive(Serialize, ToSchema)]
pub struct Counts {
    devices: u64,
    subscribers: u64,
    classes: u64,
    reservations: u64,
    documents: u64,
    events: u64,
    audit: u64,
    tokens: u64,
}

#[derive(Serialize, ToSchema)]
pub struct Stats {
    /// `embedded` or `postgres`.
    backend: String,
    store: Counts,
    /// Each role's counters.
    #[schema(value_type = Object)]
    roles: serde_json::Value,
}

/// The outcome of a reset.
#[derive(Serialize, ToSchema)]
pub struct ResetDone {
    mac: String,
    /// What was done (`docsDevResetNow set`, `Reboot task 42 queued`).
    result: String,
}

/// A list of JSON records.
#[derive(Serialize, ToSchema)]
pub struct ObjectList {
    #[schema(value_type = Vec<Object>)]
    items: Vec<serde_json::Value>,
}
