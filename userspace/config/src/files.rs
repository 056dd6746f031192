//! Generated config files and the TFTP server that serves them: `[tftp]`,
//! `[class.config_file]`, `[vars]` and `[[subscriber]]`.
//!
//! ```toml
//! [tftp]                          # presence enables the TFTP server
//! bind = "198.18.0.1"             # default: [server].bind
//! port = 69
//! root = "tftp-root"              # static files (firmware); relative to the config file
//! workers = 0                     # default: [server].workers (0 = one per core)
//! enforce = true                  # generated files only to the device's leased address
//! max_blksize = 1468              # 8..=65464
//! max_windowsize = 64             # 1..=65535
//! allow_write = false             # WRQ (uploads into root); refused when false
//! max_transfers = 10000           # per worker; beyond it an RRQ gets ERROR 3
//!
//! [[class]]
//! name = "cm"
//! boot_file = "cm/{mac}.cfg"      # must name the device ({mac}, {MAC} or {mac:})
//! [class.config_file]
//! template = "templates/cm.cfg.j2"  # minijinja over the docsis tool's text; relative to config
//! kind = "docsis"                 # "docsis" (CM MIC + CMTS MIC) | "mta" (PacketCable)
//! shared_secret = "DOCSIS"        # docsis: the CMTS MIC key (required; "" for none)
//! mta_hash = "sha1"               # mta: in-file hash for BASIC flows, "sha1" | "md5"
//!
//! [syslog]                        # presence enables the receiver (option 7's log server)
//! bind = "198.18.0.1"             # default: [server].bind
//! port = 514
//! workers = 0                     # 0 = one per core
//! events_per_device = 64          # newest kept
//! max_devices = 1000000
//!
//! [time]                          # presence enables RFC 868 time (option 4's time server)
//! bind = "198.18.0.1"             # default: [server].bind
//! port = 37
//! udp = true
//! tcp = true
//!
//! [mta]                           # PacketCable provisioning server (HYBRID/BASIC flows)
//! bind = "198.18.0.1"             # default: [server].bind
//! port = 162                      # INFORMs in
//! inform_communities = ["private"]  # accepted on INFORMs
//! set_community = "private"       # SET (file URL + hash) to the MTA's UDP 161
//! get_community = "private"       # GET of capabilities
//! get_capabilities = false
//! max_flows = 100000
//!
//! [vars]                          # template variables: vars.NAME (strings, numbers, booleans)
//! sip_domain = "voice.example.net"
//!
//! [[subscriber]]                  # per-device template variables: subscriber.NAME
//! mac = "00:15:cf:12:34:56"
//! vars = { tier = "gold", lines = 2 }
//! ```

use std::collections::{BTreeMap, HashMap};
use std::net::Ipv4Addr;
use std::path::PathBuf;

/// What kind of binary a template's text compiles to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConfigFileKind {
    /// DOCSIS cable modem file: CM MIC, CMTS MIC, end marker, padding.
    Docsis,
    /// PacketCable MTA file: TLV 254 delimiters, optional in-file hash.
    Mta,
}

/// The in-file hash of a BASIC-flow MTA file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MtaHashAlg {
    /// PacketCable (SHA-1).
    Sha1,
    /// Euro-PacketCable (MD5).
    Md5,
}

/// `[class.config_file]`: the class's `boot_file` names a file rendered per device.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigFileSpec {
    /// As written; [`crate::Policy::from_file`] makes a relative path relative to the config.
    pub template: PathBuf,
    pub kind: ConfigFileKind,
    /// CMTS MIC key (docsis only; may be empty).
    pub shared_secret: Option<String>,
    pub mta_hash: Option<MtaHashAlg>,
}

/// `[tftp]`
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TftpSettings {
    pub bind: Ipv4Addr,
    pub port: u16,
    /// Static files; `None`: only generated files are served.
    pub root: Option<PathBuf>,
    /// 0 = one per core.
    pub workers: usize,
    pub enforce: bool,
    pub max_blksize: u16,
    pub max_windowsize: u16,
    pub allow_write: bool,
    pub max_transfers: usize,
}

/// `[syslog]`: the receiver for devices' log messages (option 7 points devices here).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyslogSettings {
    pub bind: Ipv4Addr,
    pub port: u16,
    /// 0 = one per core.
    pub workers: usize,
    pub events_per_device: usize,
    pub max_devices: usize,
}

/// `[mta]`: the PacketCable provisioning server role (option 122.3 points MTAs here).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MtaSettings {
    pub bind: Ipv4Addr,
    /// Where notifications (INFORMs) arrive: 162.
    pub port: u16,
    /// Communities accepted on INFORMs; others get no answer.
    pub inform_communities: Vec<String>,
    /// For SETs (and GETs) to the MTA's agent on UDP 161.
    pub set_community: String,
    pub get_community: String,
    /// GET the MTA's capabilities (MTA-16/17) before building its file.
    pub get_capabilities: bool,
    /// Flows in progress at most; beyond, new enrollments are answered but not provisioned.
    pub max_flows: usize,
}

/// `[time]`: RFC 868 time of day (option 4 points cable modems here).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TimeSettings {
    pub bind: Ipv4Addr,
    pub port: u16,
    pub udp: bool,
    pub tcp: bool,
}

/// Template variables: names to scalar values, rendered as text.
pub type Vars = BTreeMap<String, VarValue>;

/// A template variable's value. Kept typed so templates can compare and compute with numbers.
#[derive(Debug, Clone, PartialEq)]
pub enum VarValue {
    String(String),
    Integer(i64),
    Float(f64),
    Bool(bool),
}

/// Per-device variables from `[[subscriber]]`, by MAC.
pub type Subscribers = HashMap<[u8; 6], Vars>;

pub(crate) const DEFAULT_MAX_BLKSIZE: u16 = 1468;
pub(crate) const DEFAULT_MAX_WINDOWSIZE: u16 = 64;
pub(crate) const DEFAULT_MAX_TRANSFERS: usize = 10_000;

/// Turns a TOML table into variables; arrays and tables are refused, naming the key.
pub(crate) fn vars(path: &str, t: &toml::Table, errors: &mut Vec<(String, String)>) -> Vars {
    let mut out = Vars::new();
    for (k, v) in t {
        let value = match v {
            toml::Value::String(s) => VarValue::String(s.clone()),
            toml::Value::Integer(i) => VarValue::Integer(*i),
            toml::Value::Float(f) => VarValue::Float(*f),
            toml::Value::Boolean(b) => VarValue::Bool(*b),
            toml::Value::Datetime(d) => VarValue::String(d.to_string()),
            toml::Value::Array(_) | toml::Value::Table(_) => {
                errors.push((
                    format!("{path}.{k}"),
                    "template variables are strings, numbers or booleans (not arrays or tables)"
                        .into(),
                ));
                continue;
            }
        };
        if !is_identifier(k) {
            errors.push((
                format!("{path}.{k}"),
                "a variable name is letters, digits and '_', not starting with a digit, so templates can name it".into(),
            ));
            continue;
        }
        out.insert(k.clone(), value);
    }
    out
}

fn is_identifier(s: &str) -> bool {
    let mut chars = s.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

pub(crate) fn kind(s: &str) -> Result<ConfigFileKind, String> {
    match s {
        "docsis" => Ok(ConfigFileKind::Docsis),
        "mta" => Ok(ConfigFileKind::Mta),
        other => Err(format!(
            "unknown kind {other:?}: \"docsis\" (cable modem file) or \"mta\" (PacketCable MTA file)"
        )),
    }
}

pub(crate) fn mta_hash(s: &str) -> Result<MtaHashAlg, String> {
    match s {
        "sha1" => Ok(MtaHashAlg::Sha1),
        "md5" => Ok(MtaHashAlg::Md5),
        other => Err(format!(
            "unknown mta_hash {other:?}: \"sha1\" (PacketCable) or \"md5\" (Euro-PacketCable)"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identifiers() {
        assert!(is_identifier("sip_domain"));
        assert!(is_identifier("_x1"));
        assert!(!is_identifier("1x"));
        assert!(!is_identifier("a-b"));
        assert!(!is_identifier(""));
    }
}
