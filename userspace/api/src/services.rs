//! What the API needs from the rest of provd, each behind a small trait the binary implements
//! over the real roles (the lease view, the SNMP/CWMP reset, the config reload, the template
//! renderer, the MTA and syslog roles' records, the metrics exporter).

use std::future::Future;
use std::net::Ipv4Addr;
use std::pin::Pin;
use std::sync::Arc;

use provd_store::{Mac, Store};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

/// A boxed future, for the traits' async methods (they are used as trait objects).
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Why a service call failed; each maps to one HTTP status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ServiceError {
    /// 404.
    NotFound(String),
    /// 400, naming the field.
    Invalid { field: String, message: String },
    /// 409.
    Conflict(String),
    /// 503: the role that would answer is not running.
    Unavailable(String),
    /// 500: the role failed.
    Failed(String),
    /// 504: the device the request acts on did not answer (provd is the gateway to it).
    Unreachable(String),
    /// 400 `template_invalid`: the template does not parse, render or compile; each problem
    /// with its line and column.
    TemplateInvalid(Vec<TemplateProblem>),
}

impl std::fmt::Display for ServiceError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ServiceError::NotFound(m)
            | ServiceError::Conflict(m)
            | ServiceError::Unavailable(m)
            | ServiceError::Failed(m)
            | ServiceError::Unreachable(m) => f.write_str(m),
            ServiceError::Invalid { field, message } => write!(f, "{field}: {message}"),
            ServiceError::TemplateInvalid(p) => match p.first() {
                Some(first) => write!(f, "the template has {} problem(s): {}", p.len(), first),
                None => f.write_str("the template is invalid"),
            },
        }
    }
}

impl std::error::Error for ServiceError {}

/// A live DHCP lease, as the lease view knows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Lease {
    /// The client's MAC (`00:11:22:aa:bb:cc`).
    #[schema(value_type = String, example = "00:11:22:aa:bb:cc")]
    pub mac: Mac,
    #[schema(value_type = String, format = Ipv4)]
    pub address: Ipv4Addr,
    /// Unix seconds.
    pub expires_at: u64,
    /// The relay (giaddr, the CMTS) it came through; absent when direct.
    #[schema(value_type = Option<String>, format = Ipv4)]
    pub relay: Option<Ipv4Addr>,
    /// Option 82 remote-id, hex.
    pub remote_id: Option<String>,
    /// Option 82 circuit-id, hex.
    pub circuit_id: Option<String>,
    /// The subscriber of the device record, when there is one.
    pub subscriber: Option<String>,
    /// The DHCP class (`[[class]]` name) it was served as.
    pub dhcp_class: Option<String>,
}

/// Which leases to find. Every field given must match.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct LeaseQuery {
    /// This MAC.
    #[param(value_type = Option<String>, pattern = r"^([0-9A-Fa-f][:.-]?){11}[0-9A-Fa-f]$")]
    pub mac: Option<Mac>,
    /// This address.
    #[param(value_type = Option<String>, format = Ipv4)]
    pub address: Option<Ipv4Addr>,
    /// Through this relay (giaddr).
    #[param(value_type = Option<String>, format = Ipv4)]
    pub relay: Option<Ipv4Addr>,
    /// With this option 82 remote-id (hex).
    pub remote_id: Option<String>,
    /// Of this subscriber.
    pub subscriber: Option<String>,
    /// Leases after this MAC (the previous page's `next`).
    #[param(value_type = Option<String>, pattern = r"^([0-9A-Fa-f][:.-]?){11}[0-9A-Fa-f]$")]
    pub after: Option<Mac>,
    /// At most this many (default 100, at most 1000).
    #[param(minimum = 0, maximum = 1000)]
    pub limit: Option<u32>,
    /// The caller's scope: only through any of these relays (empty: any). Set by the API,
    /// never from the query string.
    #[serde(skip)]
    #[param(ignore)]
    pub relays_any: Vec<Ipv4Addr>,
}

/// The live leases (the binary: over provd-devices' `DeviceView` and the lease log). Called
/// from the async API: lookups must be in memory; `release` is called in `spawn_blocking`.
pub trait LeaseIndex: Send + Sync + std::fmt::Debug {
    /// Leases matching `q`, ordered by MAC, at most `limit`.
    fn search(&self, q: &LeaseQuery, limit: u32) -> Vec<Lease>;
    /// Releases the MAC's lease (durably, like a DHCPRELEASE). `NotFound` when it has none.
    fn release(&self, mac: Mac) -> Result<(), ServiceError>;
}

/// Which template a preview renders.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum TemplateKind {
    /// The DOCSIS CM config file.
    Cm,
    /// The PacketCable MTA config file.
    Mta,
    /// The HTTP phone/ATA profile.
    Profile,
}

impl From<TemplateKind> for provd_store::TemplateKind {
    fn from(k: TemplateKind) -> Self {
        match k {
            TemplateKind::Cm => provd_store::TemplateKind::Cm,
            TemplateKind::Mta => provd_store::TemplateKind::Mta,
            TemplateKind::Profile => provd_store::TemplateKind::Profile,
        }
    }
}

impl From<provd_store::TemplateKind> for TemplateKind {
    fn from(k: provd_store::TemplateKind) -> Self {
        match k {
            provd_store::TemplateKind::Cm => TemplateKind::Cm,
            provd_store::TemplateKind::Mta => TemplateKind::Mta,
            provd_store::TemplateKind::Profile => TemplateKind::Profile,
        }
    }
}

/// One integrity check on a rendered file (CM MIC, CMTS MIC, MTA hash).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Verdict {
    /// `cm_mic`, `cmts_mic`, `mta_hash` ...
    pub check: String,
    pub ok: bool,
    pub detail: Option<String>,
}

/// A device's file as it would be served now, decoded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct TemplatePreview {
    pub kind: TemplateKind,
    /// The file name it would be served as.
    pub file: Option<String>,
    /// The decoded text (docsis tool syntax; the profile itself for `profile`).
    pub text: String,
    pub verdicts: Vec<Verdict>,
    /// SHA-256 of the rendered file, hex: what a device's timeline shows for the file it was
    /// served (`file-served`'s `sha256`), so the two can be compared.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
}

/// A template to check: parsed, rendered for a probe device (strict undefined variables, as
/// served) and, for `cm` and `mta`, compiled to a config file as the TFTP server would.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TemplateCheck {
    pub kind: TemplateKind,
    /// The template's source.
    pub text: String,
    /// Check it as this template (its class's file kind, secret and hash); default: the
    /// first class making `kind` files.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// The device to render it for; default: the store's first device of the kind (lowest
    /// MAC), else a device the store does not know.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>, example = "00:11:22:aa:bb:cc")]
    pub mac: Option<Mac>,
}

/// Where a template problem was found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum ProblemStage {
    /// The template does not parse.
    Syntax,
    /// It does not render (an undefined variable, a failed filter).
    Render,
    /// Its rendered text is not a config file of the kind (line and column are then unknown:
    /// the message gives the rendered text's).
    Compile,
}

/// One problem in a template.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct TemplateProblem {
    /// 1-based line of the template, when known.
    pub line: Option<u32>,
    /// 1-based column (in characters) of the template, when known.
    #[serde(default)]
    pub column: Option<u32>,
    pub message: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stage: Option<ProblemStage>,
}

impl std::fmt::Display for TemplateProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match (self.line, self.column) {
            (Some(l), Some(c)) => write!(f, "line {l}, column {c}: {}", self.message),
            (Some(l), None) => write!(f, "line {l}: {}", self.message),
            _ => f.write_str(&self.message),
        }
    }
}

/// A config-file template's file, as the config names it: its version 0.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct TemplateFile {
    /// The template's name (its file name; its path where two files share a file name).
    pub name: String,
    pub kind: TemplateKind,
    /// The file's path.
    pub path: String,
    /// The file's text.
    pub text: String,
}

/// A preview with changes: rendered as another class of service, from other text (a stored
/// version, or unsaved text).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PreviewRequest {
    pub mac: Mac,
    pub kind: Option<TemplateKind>,
    /// Render as if the device's class of service were this one.
    pub class_of_service: Option<String>,
    /// The template (its class); default: the class the device was bound as, else the first
    /// making `kind` files.
    pub name: Option<String>,
    /// Render this text instead of the template's current version.
    pub text: Option<String>,
}

/// What a template check found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct TemplateValidation {
    pub ok: bool,
    pub problems: Vec<TemplateProblem>,
}

/// A config reload's outcome.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ReloadReport {
    /// Whether the new config is in effect (false for a dry run and a refusal).
    pub applied: bool,
    /// What changes, one line each (`class gold: option 43 changed`, `pool ... added`).
    pub changes: Vec<String>,
    /// Bound leases the new config would orphan (no subnet or pool holds them any more).
    pub orphaned: Vec<Lease>,
}

/// What only the binary can do.
pub trait Actions: Send + Sync + std::fmt::Debug {
    /// Reboots a device: SNMP `docsDevResetNow` for a CM, a CWMP Reboot task with a
    /// connection request for a CPE. Returns what was done, for the timeline and the caller.
    fn reset(&self, mac: Mac) -> BoxFuture<'_, Result<String, ServiceError>>;
    /// Re-reads the config: validates, diffs, and applies unless `dry_run`; refuses (returns
    /// the report with `applied: false` and the orphans) when bound leases would be orphaned
    /// and not `force`.
    fn reload(
        &self,
        force: bool,
        dry_run: bool,
    ) -> BoxFuture<'_, Result<ReloadReport, ServiceError>>;
    /// The templates the config names: a JSON array of `{kind, ...}` objects (served as
    /// `{"items": [...]}`; a non-array is served as the one item).
    fn templates(&self) -> serde_json::Value;
    /// Renders `kind` for `mac` as it would be served now.
    fn template_preview(
        &self,
        mac: Mac,
        kind: TemplateKind,
    ) -> BoxFuture<'_, Result<TemplatePreview, ServiceError>>;
    /// Checks a template without saving it.
    fn validate_template(&self, t: &TemplateCheck) -> Result<TemplateValidation, ServiceError>;
    /// The config-file template called `name` (see `templates`): its kind and its file's
    /// text. `NotFound` when the config names no such template. Blocking (reads the file).
    fn template_file(&self, name: &str) -> Result<TemplateFile, ServiceError> {
        Err(ServiceError::NotFound(format!("no template {name:?}")))
    }
    /// [`template_preview`](Self::template_preview) with changes. A template that does not
    /// render or compile is `TemplateInvalid`.
    fn template_preview_with(
        &self,
        req: PreviewRequest,
    ) -> BoxFuture<'_, Result<TemplatePreview, ServiceError>> {
        match req {
            PreviewRequest {
                mac,
                kind: Some(kind),
                class_of_service: None,
                name: None,
                text: None,
            } => self.template_preview(mac, kind),
            _ => Box::pin(async {
                Err(ServiceError::Unavailable(
                    "previews with changes are not available here".into(),
                ))
            }),
        }
    }
}

/// Which syslog events.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct SyslogQuery {
    /// From this device.
    #[param(value_type = Option<String>, pattern = r"^([0-9A-Fa-f][:.-]?){11}[0-9A-Fa-f]$")]
    pub mac: Option<Mac>,
    /// From this address.
    #[param(value_type = Option<String>, format = Ipv4)]
    pub ip: Option<Ipv4Addr>,
    /// At most this many, newest first (default 100, at most 1000).
    #[param(minimum = 0, maximum = 1000)]
    pub limit: Option<u32>,
}

/// The roles' in-memory records and counters.
pub trait RoleView: Send + Sync + std::fmt::Debug {
    /// The MTA role's provisioning record for `mac` (`None`: no such MTA, or no MTA role).
    fn mta_record(&self, mac: Mac) -> Option<serde_json::Value>;
    /// Syslog events matching `q`, newest first, at most `limit`.
    fn syslog_events(&self, q: &SyslogQuery, limit: u32) -> Vec<serde_json::Value>;
    /// Every role's counters, as a JSON object keyed by role.
    fn stats(&self) -> serde_json::Value;
    /// `/metrics` in the Prometheus text format.
    fn metrics(&self) -> String;
    /// Each role's health, keyed by role: `{"serving": true}`, or `{"serving": false,
    /// "problem": "..."}` while it is degraded (a lease log that lost durability).
    fn health(&self) -> serde_json::Value {
        serde_json::Value::Object(serde_json::Map::new())
    }
}

/// Everything the API serves from.
#[derive(Clone)]
pub struct Services {
    /// The system of record (sync: called in `spawn_blocking`).
    pub store: Arc<dyn Store>,
    pub leases: Arc<dyn LeaseIndex>,
    pub actions: Arc<dyn Actions>,
    pub roles: Arc<dyn RoleView>,
    /// The ACS's task API (`provd_acsd::Acsd::task_api_router`), served under
    /// `/api/v1/acs/...`; `None` without `[acs]`.
    pub acs: Option<axum::Router>,
}

impl std::fmt::Debug for Services {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Services")
            .field("store", &self.store)
            .field("leases", &self.leases)
            .field("actions", &self.actions)
            .field("roles", &self.roles)
            .field("acs", &self.acs.is_some())
            .finish()
    }
}
