//! Generated config files: `[class.config_file]`, `[vars]` and `[[subscriber]]`. The TFTP
//! server that serves them is [`crate::tftp`]'s `[tftp]`.
//!
//! ```toml
//! [[class]]
//! name = "cm"
//! boot_file = "cm/{mac}.cfg"      # must name the device ({mac}, {MAC} or {mac:})
//! [class.config_file]
//! template = "templates/cm.cfg.j2"  # minijinja over the docsis tool's text; relative to config
//! kind = "docsis"                 # "docsis" (CM MIC + CMTS MIC) | "mta" (PacketCable)
//! shared_secret = "DOCSIS"        # docsis: the CMTS MIC key (required; "" for none)
//! mta_hash = "sha1"               # mta: in-file hash for BASIC flows, "sha1" | "md5"
//!
//! [vars]                          # template variables: vars.NAME (strings, numbers, booleans)
//! sip_domain = "voice.example.net"
//!
//! [[subscriber]]                  # per-device template variables: subscriber.NAME
//! mac = "00:15:cf:12:34:56"
//! vars = { tier = "gold", lines = 2 }
//! ```

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;

use crate::parse;
use crate::validator::{Validator, field};

/// The tables as written (see [`crate::wire`]).
pub mod wire {
    use serde::Deserialize;

    /// `[class.config_file]` as written.
    #[derive(Debug, Clone, Default, Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct ConfigFile {
        pub template: Option<String>,
        pub kind: Option<String>,
        pub shared_secret: Option<String>,
        pub mta_hash: Option<String>,
    }

    /// `[[subscriber]]` as written.
    #[derive(Debug, Clone, Default, Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct Subscriber {
        pub mac: Option<String>,
        pub vars: Option<toml::Table>,
    }
}

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

/// Turns a TOML table into variables; arrays and tables are refused, naming the key.
pub(crate) fn vars(path: &str, t: &toml::Table, v: &mut Validator) -> Vars {
    let mut out = Vars::new();
    for (k, value) in t {
        let value = match value {
            toml::Value::String(s) => VarValue::String(s.clone()),
            toml::Value::Integer(i) => VarValue::Integer(*i),
            toml::Value::Float(f) => VarValue::Float(*f),
            toml::Value::Boolean(b) => VarValue::Bool(*b),
            toml::Value::Datetime(d) => VarValue::String(d.to_string()),
            toml::Value::Array(_) | toml::Value::Table(_) => {
                v.err(
                    field(path, k),
                    "template variables are strings, numbers or booleans (not arrays or tables)",
                );
                continue;
            }
        };
        if !is_identifier(k) {
            v.err(
                field(path, k),
                "a variable name is letters, digits and '_', not starting with a digit, so templates can name it",
            );
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

fn kind(s: &str) -> Result<ConfigFileKind, String> {
    match s {
        "docsis" => Ok(ConfigFileKind::Docsis),
        "mta" => Ok(ConfigFileKind::Mta),
        other => Err(format!(
            "unknown kind {other:?}: \"docsis\" (cable modem file) or \"mta\" (PacketCable MTA file)"
        )),
    }
}

fn mta_hash(s: &str) -> Result<MtaHashAlg, String> {
    match s {
        "sha1" => Ok(MtaHashAlg::Sha1),
        "md5" => Ok(MtaHashAlg::Md5),
        other => Err(format!(
            "unknown mta_hash {other:?}: \"sha1\" (PacketCable) or \"md5\" (Euro-PacketCable)"
        )),
    }
}

/// Validates `[class.config_file]` (`path` is e.g. `class[0].config_file`).
pub(crate) fn config_file(
    path: &str,
    w: &wire::ConfigFile,
    v: &mut Validator,
) -> Option<ConfigFileSpec> {
    let p = |f: &str| format!("{path}.{f}");
    let template = match w.template.as_deref() {
        None | Some("") => {
            v.err(
                p("template"),
                "template is required: the file the device's config is rendered from",
            );
            None
        }
        Some(t) => Some(PathBuf::from(t)),
    };
    let kind = match w.kind.as_deref() {
        None => {
            v.err(p("kind"), "kind is required: \"docsis\" or \"mta\"");
            None
        }
        Some(k) => v.check(&p("kind"), kind(k)),
    };
    let mta_hash = w
        .mta_hash
        .as_deref()
        .and_then(|h| v.check(&p("mta_hash"), mta_hash(h)));
    match kind {
        Some(ConfigFileKind::Docsis) => {
            if w.shared_secret.is_none() {
                v.err(
                    p("shared_secret"),
                    "shared_secret is required for docsis files: the CMTS MIC key (\"\" if your CMTSs check none)",
                );
            }
            if w.mta_hash.is_some() {
                v.err(p("mta_hash"), "mta_hash applies to kind = \"mta\" only");
            }
        }
        Some(ConfigFileKind::Mta) if w.shared_secret.is_some() => {
            v.err(
                p("shared_secret"),
                "shared_secret applies to kind = \"docsis\" only (MTA files carry no MIC)",
            );
        }
        Some(ConfigFileKind::Mta) | None => {}
    }
    Some(ConfigFileSpec {
        template: template?,
        kind: kind?,
        shared_secret: w.shared_secret.clone(),
        mta_hash,
    })
}

/// Validates `[[subscriber]]`.
pub(crate) fn subscribers(ws: &[wire::Subscriber], v: &mut Validator) -> Subscribers {
    let mut out = Subscribers::new();
    for (i, w) in ws.iter().enumerate() {
        let path = format!("subscriber[{i}]");
        let mac = match w.mac.as_deref() {
            None => {
                v.err(format!("{path}.mac"), "mac is required");
                None
            }
            Some(m) => v.check(&format!("{path}.mac"), parse::mac(m)),
        };
        let vars = w
            .vars
            .as_ref()
            .map(|t| vars(&field(&path, "vars"), t, v))
            .unwrap_or_default();
        if let Some(mac) = mac
            && out.insert(mac, vars).is_some()
        {
            v.err(format!("{path}.mac"), "another subscriber has this mac");
        }
    }
    out
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
