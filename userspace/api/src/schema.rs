//! The OpenAPI schemas of provd-store's records, as the API reads and writes them. The store's
//! types are serialized as they are; these mirror their JSON (a test checks a stored record
//! against its schema's required fields).

#![allow(dead_code)]

use serde::Serialize;
use utoipa::ToSchema;
use utoipa::openapi::RefOr;
use utoipa::openapi::schema::{ObjectBuilder, OneOfBuilder, Schema, Type};

/// Text with no control characters.
pub(crate) const TEXT: &str = r"^[^\u0000-\u001f\u007f]*$";
/// A class of service (or token) name.
pub(crate) const NAME: &str = r"^[A-Za-z0-9_.-]{1,64}$";
/// A MAC address, with or without separators.
pub(crate) const MAC: &str = r"^([0-9A-Fa-f][:.-]?){11}[0-9A-Fa-f]$";

/// Template variables: names `[A-Za-z_][A-Za-z0-9_]*` (at most 64 bytes), values strings (at
/// most 4096 bytes), numbers or booleans.
#[derive(Serialize)]
pub struct Vars;

impl utoipa::PartialSchema for Vars {
    fn schema() -> RefOr<Schema> {
        let scalar = OneOfBuilder::new()
            .item(
                ObjectBuilder::new()
                    .schema_type(Type::String)
                    .max_length(Some(4096)),
            )
            .item(ObjectBuilder::new().schema_type(Type::Number))
            .item(ObjectBuilder::new().schema_type(Type::Boolean));
        ObjectBuilder::new()
            .schema_type(Type::Object)
            .property_names(Some(
                ObjectBuilder::new()
                    .schema_type(Type::String)
                    .pattern(Some(r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")),
            ))
            .additional_properties(Some(Schema::OneOf(scalar.build())))
            .into()
    }
}

impl ToSchema for Vars {}

/// `*`: the only `If-None-Match` a write takes (create only).
#[derive(Serialize, ToSchema)]
pub enum Star {
    #[serde(rename = "*")]
    Star,
}

/// An IPv4 address.
#[derive(Serialize, ToSchema)]
#[schema(value_type = String, format = Ipv4)]
pub struct Ipv4(String);

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

/// A device as written (`PUT /devices/{mac}`): the path names the device; a `mac` in the
/// body must be the same.
#[derive(Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DeviceSpec {
    /// Read from the path; if given, the same.
    #[schema(read_only, pattern = r"^([0-9A-Fa-f][:.-]?){11}[0-9A-Fa-f]$")]
    mac: Option<String>,
    /// `other` when absent.
    #[serde(rename = "type", default)]
    kind: DeviceType,
    /// An existing subscriber's id.
    #[schema(
        min_length = 1,
        max_length = 128,
        pattern = r"^[^\u0000-\u001f\u007f]*$"
    )]
    subscriber: Option<String>,
    /// An existing class of service.
    #[schema(pattern = r"^[A-Za-z0-9_.-]{1,64}$")]
    class_of_service: Option<String>,
    #[schema(max_length = 128, pattern = r"^[^\u0000-\u001f\u007f]*$")]
    serial: Option<String>,
    #[schema(max_length = 256, pattern = r"^[^\u0000-\u001f\u007f]*$")]
    device_id: Option<String>,
    #[schema(pattern = r"^[0-9A-Fa-f:]{1,390}$")]
    duid: Option<String>,
    #[serde(default)]
    vars: Vars,
}

/// A merge patch (RFC 7386) of a device: the fields given replace the stored ones, `null`
/// removes one.
#[derive(Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DevicePatch {
    #[serde(rename = "type")]
    kind: Option<DeviceType>,
    #[schema(
        min_length = 1,
        max_length = 128,
        pattern = r"^[^\u0000-\u001f\u007f]*$"
    )]
    subscriber: Option<String>,
    #[schema(pattern = r"^[A-Za-z0-9_.-]{1,64}$")]
    class_of_service: Option<String>,
    #[schema(max_length = 128, pattern = r"^[^\u0000-\u001f\u007f]*$")]
    serial: Option<String>,
    #[schema(max_length = 256, pattern = r"^[^\u0000-\u001f\u007f]*$")]
    device_id: Option<String>,
    #[schema(pattern = r"^[0-9A-Fa-f:]{1,390}$")]
    duid: Option<String>,
    /// Merged: a variable set to `null` is removed.
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

/// A subscriber as written: the path names it; an `id` in the body must be the same.
#[derive(Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SubscriberSpec {
    /// Read from the path; if given, the same.
    #[schema(read_only)]
    id: Option<String>,
    #[schema(max_length = 256, pattern = r"^[^\u0000-\u001f\u007f]*$")]
    name: Option<String>,
    #[serde(default)]
    vars: Vars,
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

/// A class of service as written: the path names it; a `name` in the body must be the same.
#[derive(Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ClassSpec {
    /// Read from the path; if given, the same.
    #[schema(read_only)]
    name: Option<String>,
    #[schema(max_length = 1024, pattern = r"^[^\u0000-\u001f\u007f]*$")]
    description: Option<String>,
    #[serde(default)]
    vars: Vars,
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

/// A reservation as written: the path names the MAC; a `mac` in the body must be the same.
#[derive(Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReservationSpec {
    /// Read from the path; if given, the same.
    #[schema(read_only, pattern = r"^([0-9A-Fa-f][:.-]?){11}[0-9A-Fa-f]$")]
    mac: Option<String>,
    #[schema(format = Ipv4)]
    address: String,
    /// A `[[class]]` of the config.
    #[schema(
        min_length = 1,
        max_length = 64,
        pattern = r"^[^\u0000-\u001f\u007f]*$"
    )]
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
    #[schema(value_type = Option<Object>)]
    before: Option<serde_json::Value>,
    #[schema(value_type = Option<Object>)]
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
#[serde(deny_unknown_fields)]
pub struct Scope {
    #[serde(default)]
    relays: Vec<Ipv4>,
    #[serde(default)]
    classes: Vec<ClassName>,
}

/// A class of service name.
#[derive(Serialize, ToSchema)]
#[schema(value_type = String, pattern = r"^[A-Za-z0-9_.-]{1,64}$")]
pub struct ClassName(String);

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
#[serde(deny_unknown_fields)]
pub struct TokenSpec {
    /// Unique; what the audit log names.
    #[schema(pattern = r"^[A-Za-z0-9_.-]{1,64}$")]
    name: String,
    role: TokenRole,
    /// None: unlimited.
    #[serde(default)]
    scope: Scope,
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
    /// Each role's health: `{"serving": true}`, or `{"serving": false, "problem": "..."}`.
    #[schema(value_type = Object)]
    health: serde_json::Value,
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
