//! The records the store keeps, what a write says, and how lists are asked for.

use std::fmt;
use std::net::Ipv4Addr;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// Per-record variables for config-file and profile templates: names of letters, digits and
/// `_`, values strings, numbers or booleans (no arrays or tables).
pub type Vars = serde_json::Map<String, serde_json::Value>;

/// Checks `vars` (at `field`, e.g. `vars`): names `[A-Za-z_][A-Za-z0-9_]*`, at most 64
/// bytes; scalar values; string values at most 4 KiB.
pub fn check_vars(field: &str, vars: &Vars) -> Result<(), crate::StoreError> {
    for (k, v) in vars {
        let ok_name = !k.is_empty()
            && k.len() <= 64
            && k.bytes()
                .next()
                .is_some_and(|b| b.is_ascii_alphabetic() || b == b'_')
            && k.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
        if !ok_name {
            return Err(crate::StoreError::Invalid {
                field: format!("{field}.{k}"),
                why: "a variable name is letters, digits and _, not starting with a digit, at most 64 bytes".into(),
            });
        }
        match v {
            serde_json::Value::String(s) if s.len() > 4096 => {
                return Err(crate::StoreError::Invalid {
                    field: format!("{field}.{k}"),
                    why: "a string variable is at most 4096 bytes".into(),
                });
            }
            serde_json::Value::String(_)
            | serde_json::Value::Number(_)
            | serde_json::Value::Bool(_) => {}
            _ => {
                return Err(crate::StoreError::Invalid {
                    field: format!("{field}.{k}"),
                    why: "variables are strings, numbers or booleans, not arrays, tables or null"
                        .into(),
                });
            }
        }
    }
    Ok(())
}

/// A MAC address. Written `00:11:22:aa:bb:cc`; read from that, `00-11-22-AA-BB-CC`,
/// `0011.22aa.bbcc` or `001122aabbcc`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Mac(pub [u8; 6]);

impl fmt::Display for Mac {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let m = self.0;
        write!(
            f,
            "{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
            m[0], m[1], m[2], m[3], m[4], m[5]
        )
    }
}

/// Why a MAC did not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not a MAC address (want 12 hex digits, e.g. 00:11:22:aa:bb:cc)")]
pub struct BadMac;

impl FromStr for Mac {
    type Err = BadMac;
    fn from_str(s: &str) -> Result<Mac, BadMac> {
        let mut out = [0u8; 6];
        let mut n = 0usize;
        let mut hi: Option<u8> = None;
        for b in s.bytes() {
            if matches!(b, b':' | b'-' | b'.') {
                continue;
            }
            let d = (b as char).to_digit(16).ok_or(BadMac)? as u8;
            match hi.take() {
                None => hi = Some(d),
                Some(h) => {
                    *out.get_mut(n).ok_or(BadMac)? = h << 4 | d;
                    n += 1;
                }
            }
        }
        if n != 6 || hi.is_some() {
            return Err(BadMac);
        }
        Ok(Mac(out))
    }
}

impl Serialize for Mac {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Mac {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Mac, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// What a device is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum DeviceKind {
    /// DOCSIS cable modem.
    Cm,
    /// PacketCable voice adapter.
    Mta,
    /// DOCSIS eRouter.
    Erouter,
    /// VoIP phone or ATA (HTTP profiles).
    Phone,
    /// TR-069 CPE (router, set-top box).
    Cpe,
    #[default]
    Other,
}

impl DeviceKind {
    pub const ALL: [DeviceKind; 6] = [
        DeviceKind::Cm,
        DeviceKind::Mta,
        DeviceKind::Erouter,
        DeviceKind::Phone,
        DeviceKind::Cpe,
        DeviceKind::Other,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            DeviceKind::Cm => "cm",
            DeviceKind::Mta => "mta",
            DeviceKind::Erouter => "erouter",
            DeviceKind::Phone => "phone",
            DeviceKind::Cpe => "cpe",
            DeviceKind::Other => "other",
        }
    }
}

impl FromStr for DeviceKind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        DeviceKind::ALL
            .into_iter()
            .find(|k| k.as_str().eq_ignore_ascii_case(s))
            .ok_or_else(|| {
                format!("unknown device type {s:?} (one of cm, mta, erouter, phone, cpe, other)")
            })
    }
}

/// A device as a write gives it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct DeviceSpec {
    pub mac: Mac,
    #[serde(default, rename = "type")]
    pub kind: DeviceKind,
    /// The subscriber (account) it belongs to; must exist.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subscriber: Option<String>,
    /// Its class of service (tier); must exist.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub class_of_service: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub serial: Option<String>,
    /// TR-069 DeviceId (`OUI-ProductClass-Serial`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device_id: Option<String>,
    /// DHCPv6 DUID, hex.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duid: Option<String>,
    #[serde(default)]
    pub vars: Vars,
}

/// A device as stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Device {
    #[serde(flatten)]
    pub spec: DeviceSpec,
    /// Bumped by every change; the API's `ETag`.
    pub version: u64,
    /// Unix milliseconds.
    pub created_at: i64,
    pub updated_at: i64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct SubscriberSpec {
    /// The operator's account id: 1..=128 bytes, no control characters.
    pub id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default)]
    pub vars: Vars,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Subscriber {
    #[serde(flatten)]
    pub spec: SubscriberSpec,
    pub version: u64,
    pub created_at: i64,
    pub updated_at: i64,
}

/// A class of service (tier): variables every device of the class sees in its templates.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct ClassSpec {
    /// 1..=64 bytes of letters, digits, `_`, `-`, `.`.
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default)]
    pub vars: Vars,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClassOfService {
    #[serde(flatten)]
    pub spec: ClassSpec,
    pub version: u64,
    pub created_at: i64,
    pub updated_at: i64,
}

/// A fixed address for a MAC.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReservationSpec {
    pub mac: Mac,
    pub address: Ipv4Addr,
    /// A DHCP class of the config (`[[class]]` name) the device is put in, overriding option
    /// 60 matching.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dhcp_class: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reservation {
    #[serde(flatten)]
    pub spec: ReservationSpec,
    pub version: u64,
    pub created_at: i64,
    pub updated_at: i64,
}

/// A role's durable state: a JSON body in a named collection (`mta` records by MAC,
/// `http-profile` versions, `acs-preset`s ...).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Document {
    pub collection: String,
    pub id: String,
    pub body: serde_json::Value,
    pub version: u64,
    pub updated_at: i64,
}

/// What a write expects of the record it replaces.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Expect {
    /// Create or replace, whatever is there.
    #[default]
    Any,
    /// Only create: `Conflict` if it exists.
    Absent,
    /// Only replace this version: `VersionMismatch` otherwise (`NotFound` if absent).
    Version(u64),
}

/// Who made a change: recorded in the audit log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", content = "name", rename_all = "lowercase")]
pub enum Actor {
    /// An API token, by its name.
    Token(String),
    /// The command line (`provd import`, `provd token`), by the user running it.
    Cli(String),
    /// provd itself: the config file's seed at start-up, roles saving their state.
    System,
}

impl fmt::Display for Actor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Actor::Token(n) => write!(f, "token:{n}"),
            Actor::Cli(n) => write!(f, "cli:{n}"),
            Actor::System => f.write_str("system"),
        }
    }
}

/// One audited change.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditEntry {
    pub id: i64,
    /// Unix milliseconds.
    pub at: i64,
    /// `Actor`'s display form: `token:NAME`, `cli:USER`, `system`.
    pub who: String,
    /// `create`, `update`, `delete`, `import`, ...
    pub action: String,
    /// `device`, `subscriber`, `class`, `reservation`, `token`, or a document collection.
    pub resource: String,
    pub key: String,
    pub before: Option<serde_json::Value>,
    pub after: Option<serde_json::Value>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditFilter {
    pub resource: Option<String>,
    pub key: Option<String>,
    pub who: Option<String>,
}

/// Where a timeline event came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
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

impl Source {
    pub const ALL: [Source; 8] = [
        Source::Dhcp,
        Source::Tftp,
        Source::Time,
        Source::Syslog,
        Source::Mta,
        Source::Http,
        Source::Cwmp,
        Source::Api,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Source::Dhcp => "dhcp",
            Source::Tftp => "tftp",
            Source::Time => "time",
            Source::Syslog => "syslog",
            Source::Mta => "mta",
            Source::Http => "http",
            Source::Cwmp => "cwmp",
            Source::Api => "api",
        }
    }
}

impl FromStr for Source {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Source::ALL
            .into_iter()
            .find(|k| k.as_str() == s)
            .ok_or_else(|| format!("unknown event source {s:?}"))
    }
}

/// Something that happened to a device, as a role reports it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NewEvent {
    pub mac: Mac,
    /// Unix milliseconds.
    pub at: i64,
    pub source: Source,
    /// What happened, e.g. `ack`, `release`, `file-served`, `flow-step`, `inform`.
    pub kind: String,
    /// The particulars (relay, options, file name, bytes, hash ...).
    pub detail: serde_json::Value,
}

/// A stored timeline event.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    pub id: i64,
    #[serde(flatten)]
    pub event: NewEvent,
}

/// What a token may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum TokenRole {
    /// Reads only.
    ReadOnly,
    /// Reads and changes devices, subscribers, classes, reservations; resets; tasks.
    Operator,
    /// Everything, including tokens and config reload.
    Admin,
}

impl TokenRole {
    pub fn as_str(self) -> &'static str {
        match self {
            TokenRole::ReadOnly => "read-only",
            TokenRole::Operator => "operator",
            TokenRole::Admin => "admin",
        }
    }
}

impl FromStr for TokenRole {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "read-only" | "readonly" => Ok(TokenRole::ReadOnly),
            "operator" => Ok(TokenRole::Operator),
            "admin" => Ok(TokenRole::Admin),
            _ => Err(format!(
                "unknown role {s:?} (one of admin, operator, read-only)"
            )),
        }
    }
}

/// Limits what a token sees and changes: only devices behind these relays (CMTSs) or of these
/// classes of service. Empty lists limit nothing.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Scope {
    #[serde(default)]
    pub relays: Vec<Ipv4Addr>,
    #[serde(default)]
    pub classes: Vec<String>,
}

impl Scope {
    pub fn is_unlimited(&self) -> bool {
        self.relays.is_empty() && self.classes.is_empty()
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenSpec {
    /// A unique name: what the audit log says.
    pub name: String,
    pub role: TokenRole,
    #[serde(default)]
    pub scope: Scope,
    /// SHA-256 of the secret.
    #[serde(skip)]
    pub hash: [u8; 32],
}

/// A token as stored (never its secret).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Token {
    /// Its name.
    pub id: String,
    pub role: TokenRole,
    pub scope: Scope,
    pub created_at: i64,
}

/// Devices to list. Every field given must match.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DeviceFilter {
    pub kind: Option<DeviceKind>,
    pub subscriber: Option<String>,
    pub class_of_service: Option<String>,
    /// Any of these classes (a token's scope); empty: no limit.
    pub classes_any: Vec<String>,
    /// MAC prefix, lowercase colon form (`00:11:22`).
    pub mac_prefix: Option<String>,
    pub serial: Option<String>,
    pub device_id: Option<String>,
    /// Changed at or after (unix ms).
    pub updated_since: Option<i64>,
}

impl DeviceFilter {
    /// Whether `d` passes the filter, as [`Store::list_devices`](crate::Store::list_devices)
    /// decides it: for callers that walk devices from elsewhere (the live leases) and check
    /// each against the same filter.
    pub fn matches(&self, d: &Device) -> bool {
        let s = &d.spec;
        let eq = |want: &Option<String>, have: &Option<String>| {
            want.as_ref().is_none_or(|w| have.as_ref() == Some(w))
        };
        self.kind.is_none_or(|k| k == s.kind)
            && eq(&self.subscriber, &s.subscriber)
            && eq(&self.class_of_service, &s.class_of_service)
            && (self.classes_any.is_empty()
                || s.class_of_service
                    .as_ref()
                    .is_some_and(|c| self.classes_any.contains(c)))
            && self
                .mac_prefix
                .as_ref()
                .is_none_or(|p| s.mac.to_string().starts_with(&p.to_ascii_lowercase()))
            && eq(&self.serial, &s.serial)
            && eq(&self.device_id, &s.device_id)
            && self.updated_since.is_none_or(|t| d.updated_at >= t)
    }
}

/// Cursor pagination: records after `after` (the last key of the previous page), at most
/// `limit` (capped at [`PageRequest::MAX`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PageRequest {
    pub after: Option<String>,
    pub limit: u32,
}

impl PageRequest {
    pub const MAX: u32 = 1000;
    pub const DEFAULT: u32 = 100;

    pub fn first(limit: u32) -> PageRequest {
        PageRequest { after: None, limit }
    }

    /// The limit to use: the default for 0, at most [`PageRequest::MAX`].
    pub fn effective_limit(&self) -> u32 {
        match self.limit {
            0 => Self::DEFAULT,
            n => n.min(Self::MAX),
        }
    }
}

/// One page of a list: `next` is the cursor of the following page, `None` on the last.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub next: Option<String>,
}

/// What an import did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImportCounts {
    pub created: u64,
    pub updated: u64,
    pub unchanged: u64,
}

impl std::ops::AddAssign for ImportCounts {
    fn add_assign(&mut self, o: ImportCounts) {
        self.created += o.created;
        self.updated += o.updated;
        self.unchanged += o.unchanged;
    }
}

/// How big the store is.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counts {
    pub devices: u64,
    pub subscribers: u64,
    pub classes: u64,
    pub reservations: u64,
    pub documents: u64,
    pub events: u64,
    pub audit: u64,
    pub tokens: u64,
}

/// What a stored template renders: a DOCSIS cable modem file, a PacketCable MTA file, or an
/// HTTP phone profile.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TemplateKind {
    Cm,
    Mta,
    Profile,
}

impl TemplateKind {
    pub const ALL: [TemplateKind; 3] = [TemplateKind::Cm, TemplateKind::Mta, TemplateKind::Profile];

    pub fn as_str(self) -> &'static str {
        match self {
            TemplateKind::Cm => "cm",
            TemplateKind::Mta => "mta",
            TemplateKind::Profile => "profile",
        }
    }
}

impl FromStr for TemplateKind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        TemplateKind::ALL
            .into_iter()
            .find(|k| k.as_str() == s)
            .ok_or_else(|| format!("unknown template kind {s:?} (one of cm, mta, profile)"))
    }
}

/// A new version of a template, as a write gives it. The version number is the store's to
/// give: one more than the newest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TemplateVersionSpec {
    /// The template's name, as the API lists it (1..=256 bytes, no control characters).
    pub name: String,
    pub kind: TemplateKind,
    /// The template's source (at most 256 KiB, no NUL).
    pub text: String,
    /// Why it changed, for the history (at most 1024 bytes).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
}

/// A stored version of a template without its text: what a history lists.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TemplateVersionInfo {
    pub name: String,
    /// 1, 2, 3 ... per name (0 is the config's file, never stored).
    pub version: u64,
    pub kind: TemplateKind,
    /// Who saved it ([`Actor`]'s display form).
    pub actor: String,
    /// Unix milliseconds.
    pub created_at: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
}

/// A stored version of a template.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TemplateVersion {
    #[serde(flatten)]
    pub info: TemplateVersionInfo,
    pub text: String,
}

/// Which kind of record changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ChangeKind {
    Device,
    Subscriber,
    Class,
    Reservation,
    /// A template version was saved (the key is the template's name).
    Template,
}

/// One record change, in commit order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Change {
    pub seq: i64,
    pub kind: ChangeKind,
    /// The record's key (MAC in colon form, subscriber id, class name, template name).
    pub key: String,
    /// Its version after the change; 0 when deleted.
    pub version: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mac_forms() {
        let want = Mac([0, 0x11, 0x22, 0xaa, 0xbb, 0xcc]);
        for s in [
            "00:11:22:aa:bb:cc",
            "00-11-22-AA-BB-CC",
            "0011.22aa.bbcc",
            "001122aabbcc",
        ] {
            assert_eq!(s.parse::<Mac>(), Ok(want), "{s}");
        }
        for s in [
            "",
            "00:11:22:aa:bb",
            "00:11:22:aa:bb:cc:dd",
            "0011223344zz",
            "0",
        ] {
            assert_eq!(s.parse::<Mac>(), Err(BadMac), "{s}");
        }
        assert_eq!(want.to_string(), "00:11:22:aa:bb:cc");
    }

    #[test]
    fn vars_are_scalars_with_plain_names() {
        let ok: Vars = serde_json::from_str(r#"{"tier":"gold","max_cpe":4,"voice":true}"#).unwrap();
        check_vars("vars", &ok).unwrap();
        for (bad, field) in [
            (r#"{"a":[1]}"#, "vars.a"),
            (r#"{"b":null}"#, "vars.b"),
            (r#"{"1x":1}"#, "vars.1x"),
            (r#"{"a-b":1}"#, "vars.a-b"),
        ] {
            let v: Vars = serde_json::from_str(bad).unwrap();
            match check_vars("vars", &v) {
                Err(crate::StoreError::Invalid { field: f, .. }) => assert_eq!(f, field),
                other => panic!("{bad}: {other:?}"),
            }
        }
    }
}
