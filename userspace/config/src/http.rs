//! HTTP/HTTPS provisioning of VoIP ATAs and IP phones: `[http]`, `[class.profile]` and
//! `[[upgrade_rule]]`.
//!
//! ```toml
//! [http]                          # presence enables the profile/firmware server
//! bind = "198.18.0.1"             # default: [server].bind
//! port = 80                       # plain HTTP; `plain = false` switches it off
//! plain = true
//! https_port = 443                # needs cert and key
//! cert = "tls/server.pem"         # PEM chain, leaf first; relative to the config
//! key = "tls/server.key"          # PEM private key (PKCS#8, SEC1 or PKCS#1)
//! client_ca = "tls/ca.pem"        # CAs that sign device certificates
//! client_auth = "optional"        # "off" | "optional" | "required" (handshake refuses
//!                                 # clients without a certificate); default: "optional" with
//!                                 # client_ca, "off" without
//! firmware_dir = "firmware"       # served under /firmware/ (HEAD, Range, ETag)
//! max_connections = 10000
//! header_timeout_secs = 10
//! idle_timeout_secs = 60
//! max_header_bytes = 8192         # larger request heads get 431 (8192..=1048576)
//! access_log = true               # one line per request on target provd::access
//!
//! [[class]]
//! name = "ata"
//! match = "FlyingVoice*"
//! [class.profile]
//! path = "p/{mac}.cfg"            # URL path (after the leading '/') naming the device
//! template = "templates/fv.conf.j2"  # minijinja, strict undefined; relative to the config
//! format = "kvp"                  # "kvp" (DBID_NAME=value) | "xml" (<flat-profile>)
//! version_field = "DBID_DBASE_VERSION"  # default: DBID_DBASE_VERSION (kvp), Profile_Version (xml)
//! first_version = 1               # a device's first version (start above a hand-kept counter)
//! key = "SecretPhrase1234"        # serve AES-256-CBC encrypted (openssl enc -md md5 format)
//! allow_plain = true              # false: only over HTTPS
//! client_cert = false             # true: HTTPS with a certificate naming the device's MAC
//! enforce = true                  # only to the device's leased address, or its certificate
//! profile_rule = "http://198.18.0.1/p/$MA.cfg"  # handed out by DHCP (devices expand macros)
//! rule_option = 66                # which DHCP option carries profile_rule: 66 or 160
//! option_150 = ["198.18.0.1"]     # Cisco TFTP server list (option 150)
//!
//! [[upgrade_rule]]                # first match wins; not offered to a device at `version`
//! model = "IP542N*"               # glob on the model (PN)
//! from_version = "1.*"            # glob on the running version (SWVER)
//! firmware = "IP542N-2.0.bin"     # a file in firmware_dir
//! version = "2.0"
//! ```
//!
//! Option 66 is where SPA-style and Flying Voice devices look for a provisioning server, and
//! they accept a full URL there; option 160 is the provisioning URL option of Polycom/Yealink
//! phones. `profile_rule` goes into one of them, never both, and not together with the class's
//! `tftp_server` when that is option 66.

use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

use crate::bootfile::BootFile;
use crate::glob::Glob;
use crate::parse;
use crate::server::ServerSettings;
use crate::validator::Validator;

/// `[http]` as written.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WireHttp {
    pub bind: Option<String>,
    pub port: Option<i64>,
    pub plain: Option<bool>,
    pub https_port: Option<i64>,
    pub cert: Option<String>,
    pub key: Option<String>,
    pub client_ca: Option<String>,
    pub client_auth: Option<String>,
    pub firmware_dir: Option<String>,
    pub max_connections: Option<i64>,
    pub header_timeout_secs: Option<i64>,
    pub idle_timeout_secs: Option<i64>,
    pub max_header_bytes: Option<i64>,
    pub access_log: Option<bool>,
}

/// `[class.profile]` as written.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WireProfile {
    pub path: Option<String>,
    pub template: Option<String>,
    pub format: Option<String>,
    pub version_field: Option<String>,
    pub first_version: Option<i64>,
    pub key: Option<String>,
    pub allow_plain: Option<bool>,
    pub client_cert: Option<bool>,
    pub enforce: Option<bool>,
    pub profile_rule: Option<String>,
    pub rule_option: Option<i64>,
    #[serde(default)]
    pub option_150: Vec<String>,
}

/// `[[upgrade_rule]]` as written.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WireUpgradeRule {
    pub model: Option<String>,
    pub from_version: Option<String>,
    pub firmware: Option<String>,
    pub version: Option<String>,
}

/// Who must show a client certificate on the HTTPS listener.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientAuthMode {
    /// No certificate asked for.
    Off,
    /// Asked for, not required by the handshake; classes with `client_cert = true` refuse
    /// requests without one (403).
    Optional,
    /// The handshake fails without a certificate from `client_ca`.
    Required,
}

/// `[http]`, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpSettings {
    pub bind: Ipv4Addr,
    /// Plain HTTP port; `None`: plain HTTP off.
    pub port: Option<u16>,
    pub https: Option<HttpsSettings>,
    pub firmware_dir: Option<PathBuf>,
    pub max_connections: usize,
    pub header_timeout: Duration,
    pub idle_timeout: Duration,
    pub max_header_bytes: usize,
    pub access_log: bool,
}

/// The HTTPS listener.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpsSettings {
    pub port: u16,
    pub cert: PathBuf,
    pub key: PathBuf,
    pub client_ca: Option<PathBuf>,
    pub client_auth: ClientAuthMode,
}

/// A profile's format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProfileFormat {
    /// `DBID_NAME=value` lines (Flying Voice).
    Kvp,
    /// `<flat-profile>` XML (Cisco SPA).
    Xml,
}

/// Which DHCP option carries `profile_rule`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RuleOption {
    /// Option 66 (TFTP server name; SPA-style devices take a URL there).
    Opt66,
    /// Option 160 (provisioning URL of Polycom/Yealink phones).
    Opt160,
}

/// `[class.profile]`, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProfileSpec {
    /// URL path after the leading `/`; names the device.
    pub path: BootFile,
    /// [`crate::Policy::from_file`] makes a relative path relative to the config.
    pub template: PathBuf,
    pub format: ProfileFormat,
    pub version_field: String,
    pub first_version: u64,
    /// Encrypt with this pass-phrase.
    pub key: Option<String>,
    pub allow_plain: bool,
    pub client_cert: bool,
    /// Serve a device's profile only to the address holding its DHCP lease, or over HTTPS to
    /// a client certificate naming it (TFTP's enforce rule); refused as unknown (404).
    pub enforce: bool,
    pub profile_rule: Option<String>,
    pub rule_option: RuleOption,
    pub option_150: Vec<Ipv4Addr>,
}

/// `[[upgrade_rule]]`, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpgradeRule {
    pub model: Glob,
    pub from_version: Glob,
    /// A file name in `firmware_dir` (no directories).
    pub firmware: String,
    pub version: String,
}

pub(crate) const DEFAULT_MAX_HEADER_BYTES: usize = 8192;

/// Validates `[http]`.
pub(crate) fn validate(w: &WireHttp, server: &ServerSettings, v: &mut Validator) -> HttpSettings {
    let bind = v.ipv4("http.bind", w.bind.as_ref(), server.bind);
    let port = v.int("http.port", w.port, 80, 1, 65_535, "a TCP port") as u16;
    let plain = w.plain.unwrap_or(true);
    if !plain && w.port.is_some() {
        v.err(
            "http.port",
            "plain = false switches plain HTTP off: leave port out",
        );
    }
    let cert = v.file("http.cert", w.cert.as_ref());
    let key = v.file("http.key", w.key.as_ref());
    let client_ca = v.file("http.client_ca", w.client_ca.as_ref());
    let client_auth = match w.client_auth.as_deref() {
        None if client_ca.is_some() => ClientAuthMode::Optional,
        None => ClientAuthMode::Off,
        Some("off") => ClientAuthMode::Off,
        Some("optional") => ClientAuthMode::Optional,
        Some("required") => ClientAuthMode::Required,
        Some(other) => {
            v.err(
                "http.client_auth",
                format!("unknown client_auth {other:?}: \"off\", \"optional\" or \"required\""),
            );
            ClientAuthMode::Off
        }
    };
    if client_auth != ClientAuthMode::Off && client_ca.is_none() {
        v.err(
            "http.client_ca",
            "client_auth asks for client certificates: client_ca must name the CAs that sign them",
        );
    }
    let wants_https = w.https_port.is_some() || cert.is_some() || key.is_some();
    let https = if wants_https {
        if cert.is_none() {
            v.err("http.cert", "HTTPS needs cert (and key)");
        }
        if key.is_none() {
            v.err("http.key", "HTTPS needs key (and cert)");
        }
        let https_port = v.int(
            "http.https_port",
            w.https_port,
            443,
            1,
            65_535,
            "a TCP port",
        ) as u16;
        if plain && https_port == port {
            v.err(
                "http.https_port",
                format!("https_port {https_port} is the plain HTTP port too"),
            );
        }
        match (cert, key) {
            (Some(cert), Some(key)) => Some(HttpsSettings {
                port: https_port,
                cert,
                key,
                client_ca,
                client_auth,
            }),
            _ => None,
        }
    } else {
        if client_ca.is_some() {
            v.err(
                "http.client_ca",
                "client certificates need HTTPS: set cert and key",
            );
        }
        None
    };
    if !plain && !wants_https {
        v.err(
            "http.plain",
            "plain = false and no HTTPS (cert, key): the server would listen nowhere",
        );
    }
    HttpSettings {
        bind,
        port: plain.then_some(port),
        https,
        firmware_dir: v.file("http.firmware_dir", w.firmware_dir.as_ref()),
        max_connections: v.int(
            "http.max_connections",
            w.max_connections,
            10_000,
            1,
            1_000_000,
            "max_connections",
        ) as usize,
        header_timeout: Duration::from_secs(v.int(
            "http.header_timeout_secs",
            w.header_timeout_secs,
            10,
            1,
            3600,
            "header_timeout_secs",
        ) as u64),
        idle_timeout: Duration::from_secs(v.int(
            "http.idle_timeout_secs",
            w.idle_timeout_secs,
            60,
            1,
            86_400,
            "idle_timeout_secs",
        ) as u64),
        max_header_bytes: v.int(
            "http.max_header_bytes",
            w.max_header_bytes,
            DEFAULT_MAX_HEADER_BYTES as i64,
            8192, // hyper's floor
            1 << 20,
            "max_header_bytes",
        ) as usize,
        access_log: w.access_log.unwrap_or(true),
    }
}

/// A MAC used to check that a class's profile rule asks for a path its `path` serves.
const PROBE_MAC: [u8; 6] = [0x00, 0x15, 0xcf, 0x12, 0x34, 0x56];

/// Validates `[class.profile]` (`path` is e.g. `class[2].profile`).
pub(crate) fn profile(path: &str, w: &WireProfile, v: &mut Validator) -> Option<ProfileSpec> {
    let p = |f: &str| format!("{path}.{f}");
    let url_path = match w.path.as_deref() {
        None => {
            v.err(
                p("path"),
                "path is required: the URL path naming the device, e.g. \"p/{mac}.cfg\"",
            );
            None
        }
        Some(s) => match BootFile::parse(s.trim_start_matches('/')) {
            Ok(b) if b.is_static() => {
                v.err(
                    p("path"),
                    "path must name the device: use {mac}, {MAC} or {mac:}",
                );
                None
            }
            Ok(b) => Some(b),
            Err(m) => {
                v.err(p("path"), m.replace("boot_file", "path"));
                None
            }
        },
    };
    let template = match w.template.as_deref() {
        None | Some("") => {
            v.err(
                p("template"),
                "template is required: the file the device's profile is rendered from",
            );
            None
        }
        Some(t) => Some(PathBuf::from(t)),
    };
    let format = match w.format.as_deref() {
        None => {
            v.err(
                p("format"),
                "format is required: \"kvp\" (DBID_NAME=value lines) or \"xml\" (<flat-profile>)",
            );
            None
        }
        Some("kvp") => Some(ProfileFormat::Kvp),
        Some("xml") => Some(ProfileFormat::Xml),
        Some(other) => {
            v.err(
                p("format"),
                format!("unknown format {other:?}: \"kvp\" or \"xml\""),
            );
            None
        }
    };
    let version_field = match (w.version_field.as_deref(), format) {
        (Some(f), _)
            if f.is_empty() || !f.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') =>
        {
            v.err(
                p("version_field"),
                format!("version_field {f:?} must be letters, digits and '_'"),
            );
            String::new()
        }
        (Some(f), _) => f.to_string(),
        (None, Some(ProfileFormat::Xml)) => "Profile_Version".into(),
        (None, _) => "DBID_DBASE_VERSION".into(),
    };
    let first_version = v.int(
        &p("first_version"),
        w.first_version,
        1,
        1,
        i64::MAX,
        "first_version",
    ) as u64;
    if w.key.as_deref() == Some("") {
        v.err(p("key"), "key is empty (leave it out for plain profiles)");
    }
    let rule_option = match w.rule_option {
        None | Some(66) => RuleOption::Opt66,
        Some(160) => RuleOption::Opt160,
        Some(o) => {
            v.err(p("rule_option"), format!("rule_option {o}: 66 or 160"));
            RuleOption::Opt66
        }
    };
    if let Some(rule) = &w.profile_rule {
        check_rule(&p("profile_rule"), rule, url_path.as_ref(), v);
    }
    let mut option_150 = Vec::new();
    for (i, a) in w.option_150.iter().enumerate() {
        match parse::unicast(a) {
            Ok(a) => option_150.push(a),
            Err(m) => v.err(format!("{}[{i}]", p("option_150")), m),
        }
    }
    if option_150.len() > 63 {
        v.err(p("option_150"), "at most 63 addresses fit in option 150");
    }
    Some(ProfileSpec {
        path: url_path?,
        template: template?,
        format: format?,
        version_field,
        first_version,
        key: w.key.clone().filter(|k| !k.is_empty()),
        allow_plain: w.allow_plain.unwrap_or(true),
        client_cert: w.client_cert.unwrap_or(false),
        enforce: w.enforce.unwrap_or(true),
        profile_rule: w.profile_rule.clone(),
        rule_option,
        option_150,
    })
}

/// A profile rule must parse, fit in a DHCP option, and, when its URL names provd's own path,
/// expand (for a sample MAC) to a path this class serves.
fn check_rule(path: &str, rule: &str, url_path: Option<&BootFile>, v: &mut Validator) {
    if rule.len() > 255 {
        v.err(
            path,
            format!(
                "profile_rule is {} bytes; a DHCP option holds 255",
                rule.len()
            ),
        );
    }
    let parsed = match provd_profile_rule::ProfileRule::parse(rule) {
        Ok(r) => r,
        Err(e) => {
            v.err(path, format!("profile_rule: {e}"));
            return;
        }
    };
    let (Some(url_path), Some(term)) = (url_path, parsed.default_term()) else {
        return;
    };
    let vars = provd_profile_rule::Variables::new(PROBE_MAC);
    let expanded = provd_profile_rule::expand(&term.url.path, &vars);
    let requested = expanded
        .split('?')
        .next()
        .unwrap_or("")
        .trim_start_matches('/');
    if !requested.contains('$') && url_path.match_name(requested) != Some(PROBE_MAC) {
        v.err(
            path,
            format!(
                "a device with MAC 00:15:cf:12:34:56 would ask for /{requested}, which path {:?} does not serve",
                url_path.template()
            ),
        );
    }
}

/// Validates `[[upgrade_rule]]`.
pub(crate) fn upgrade_rules(ws: &[WireUpgradeRule], v: &mut Validator) -> Vec<UpgradeRule> {
    let mut out = Vec::new();
    for (i, w) in ws.iter().enumerate() {
        let p = |f: &str| format!("upgrade_rule[{i}].{f}");
        let mut req = |f: &str, value: &Option<String>| match value.as_deref() {
            None | Some("") => {
                v.err(p(f), format!("{f} is required"));
                None
            }
            Some(s) => Some(s.to_string()),
        };
        let model = req("model", &w.model);
        let from = w.from_version.clone().unwrap_or_else(|| "*".into());
        let firmware = req("firmware", &w.firmware);
        let version = req("version", &w.version);
        if let Some(f) = &firmware
            && (f.contains('/') || f.contains('\\') || f == ".." || f == ".")
        {
            v.err(
                p("firmware"),
                "firmware is a file name in http.firmware_dir, without directories",
            );
            continue;
        }
        if let (Some(model), Some(firmware), Some(version)) = (model, firmware, version) {
            out.push(UpgradeRule {
                model: Glob::new(&model),
                from_version: Glob::new(&from),
                firmware,
                version,
            });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rule_must_hit_the_path() {
        let mut v = Validator::default();
        let w = WireProfile {
            path: Some("p/{mac}.cfg".into()),
            template: Some("t".into()),
            format: Some("kvp".into()),
            profile_rule: Some("http://198.18.0.1/p/$MA.cfg".into()),
            ..Default::default()
        };
        let spec = profile("class[0].profile", &w, &mut v).unwrap();
        assert_eq!(v.finish(|| ()), Ok(()));
        assert_eq!(spec.version_field, "DBID_DBASE_VERSION");
        let w = WireProfile {
            profile_rule: Some("http://198.18.0.1/q/$MAU.cfg".into()),
            ..w
        };
        let mut v = Validator::default();
        profile("class[0].profile", &w, &mut v);
        let e = v.finish(|| ()).unwrap_err();
        assert_eq!(e.len(), 1);
        assert_eq!(e.0[0].path, "class[0].profile.profile_rule");
    }
}
