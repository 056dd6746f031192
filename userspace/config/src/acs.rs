//! `[acs]`: the TR-069 auto-configuration server (option 43.1 points CPEs here), its presets
//! and firmware campaigns.
//!
//! ```toml
//! [acs]
//! bind = "0.0.0.0"                # optional, default server.bind
//! port = 7547                     # CWMP listener
//! extra_ports = [7548]            # more CWMP listeners (moving devices between ACS URLs)
//! https_port = 7443              # optional: CWMP over HTTPS (provd-web's TLS) beside `port`
//! tls_cert = "/etc/provd/acs.pem" #   its certificate chain and key (PEM), with https_port
//! tls_key = "/etc/provd/acs.key"
//! auth = "digest"                 # "digest" (RFC 7616, SHA-256 and MD5) | "basic" | "none"
//! realm = "provd"
//! username = "cpe"                # default credentials for every device
//! password = "secret"
//! session_timeout_secs = 30       # an idle session is dropped after this long
//! nonce_lifetime_secs = 300
//! auto_register = true            # unknown devices are created on their first Inform
//! max_devices = 2000000           #   but no more devices than this (fault 8001 beyond)
//! new_devices_per_sec = 100       #   and new ones at this rate at most (fault 8005: retry)
//! new_devices_burst = 1000        #   after a quiet spell, this many at once
//! request_budget_ms = 2000        # time budget of one CWMP request's envelope parse
//! events_per_device = 16          # event history kept per device
//! cr_username = "acs"             # connection requests (HTTP digest and UDP HMAC-SHA1)
//! cr_password = "secret"
//! cr_per_second = 50              # connection requests sent per second at most
//! cr_min_interval_secs = 5        # and at most one per device per interval
//! stun_port = 3478                # optional: STUN binding server (TR-111)
//! admin_bind = "127.0.0.1"        # JSON task API
//! admin_port = 7557
//! dump_dir = "/tmp/acs-dump"      # optional, debug: every emitted envelope as a file
//! snapshot_secs = 30              # device index and tasks saved under lease_dir/acs/
//!
//! [[acs.credential]]              # per-device credentials (by username)
//! username = "cpe-0015CF-SN1"
//! password = "other"
//! device = "0015CF-EMTA1-SN1"     # optional: only this device (OUI-ProductClass-Serial) may
//!                                 # use them; another DeviceId in the Inform gets fault 8001
//!
//! [[acs.preset]]
//! name = "inform-5min"
//! oui = "0015CF"                  # match (all optional): OUI, product class, serial glob,
//! product_class = "EMTA1"         #   any of these events in the Inform,
//! serial = "SN*"                  #   parameter values (as last seen)
//! events = ["0 BOOTSTRAP", "1 BOOT"]
//! parameters = { "Device.DeviceInfo.HardwareVersion" = "1.0" }
//! set = { "Device.ManagementServer.PeriodicInformEnable" = true }
//! periodic_inform_interval = 300
//! firmware = { version = "2.2.0", url = "http://fw/2.2.0.img", file_size = 0 }
//!
//! [[acs.campaign]]
//! name = "fw-2.2.0"
//! oui = "0015CF"                  # same match keys as a preset
//! version = "2.2.0"               # devices already on it are skipped
//! url = "http://fw/2.2.0.img"
//! file_size = 0
//! max_concurrent = 10             # downloads in flight at most
//! ```

use std::net::Ipv4Addr;
use std::path::PathBuf;

use serde::Deserialize;

use crate::glob::Glob;
use crate::server::ServerSettings;
use crate::validator::Validator;

/// `[acs]` as written.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AcsWire {
    pub bind: Option<String>,
    pub port: Option<i64>,
    pub extra_ports: Option<Vec<i64>>,
    pub https_port: Option<i64>,
    pub tls_cert: Option<String>,
    pub tls_key: Option<String>,
    pub auth: Option<String>,
    pub realm: Option<String>,
    pub username: Option<String>,
    pub password: Option<String>,
    pub session_timeout_secs: Option<i64>,
    pub nonce_lifetime_secs: Option<i64>,
    pub auto_register: Option<bool>,
    pub max_devices: Option<i64>,
    pub new_devices_per_sec: Option<i64>,
    pub new_devices_burst: Option<i64>,
    pub request_budget_ms: Option<i64>,
    pub events_per_device: Option<i64>,
    pub cr_username: Option<String>,
    pub cr_password: Option<String>,
    pub cr_per_second: Option<i64>,
    pub cr_min_interval_secs: Option<i64>,
    pub stun_port: Option<i64>,
    pub admin_bind: Option<String>,
    pub admin_port: Option<i64>,
    pub dump_dir: Option<String>,
    pub snapshot_secs: Option<i64>,
    #[serde(default)]
    pub credential: Vec<CredentialWire>,
    #[serde(default)]
    pub preset: Vec<PresetWire>,
    #[serde(default)]
    pub campaign: Vec<CampaignWire>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CredentialWire {
    pub username: Option<String>,
    pub password: Option<String>,
    pub device: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PresetWire {
    pub name: Option<String>,
    pub oui: Option<String>,
    pub product_class: Option<String>,
    pub serial: Option<String>,
    pub events: Option<Vec<String>>,
    pub parameters: Option<toml::Table>,
    pub set: Option<toml::Table>,
    pub periodic_inform_interval: Option<i64>,
    pub firmware: Option<FirmwareWire>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FirmwareWire {
    pub version: Option<String>,
    pub url: Option<String>,
    pub file_size: Option<i64>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CampaignWire {
    pub name: Option<String>,
    pub oui: Option<String>,
    pub product_class: Option<String>,
    pub serial: Option<String>,
    pub version: Option<String>,
    pub url: Option<String>,
    pub file_size: Option<i64>,
    pub max_concurrent: Option<i64>,
}

/// How CPEs authenticate to the ACS.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AcsAuth {
    None,
    Basic,
    /// RFC 7616: SHA-256 and MD5 challenges, qop=auth.
    Digest,
}

/// Which devices a preset or campaign applies to; every set key must match.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct DeviceMatch {
    pub oui: Option<String>,
    pub product_class: Option<String>,
    pub serial: Option<Glob>,
    /// Any of these event codes in the Inform.
    pub events: Vec<String>,
    /// Parameter values as last seen (Inform or fetched).
    pub parameters: Vec<(String, String)>,
}

/// A firmware image: the version devices should run and where to fetch it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Firmware {
    pub version: String,
    pub url: String,
    pub file_size: u32,
}

/// A value to set: the text and its xsd type (`string`, `boolean`, `unsignedInt`, `int`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DesiredValue {
    pub name: String,
    pub value: String,
    pub ty: &'static str,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Preset {
    pub name: String,
    pub matches: DeviceMatch,
    pub set: Vec<DesiredValue>,
    pub periodic_inform_interval: Option<u32>,
    pub firmware: Option<Firmware>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Campaign {
    pub name: String,
    pub matches: DeviceMatch,
    pub firmware: Firmware,
    pub max_concurrent: u32,
}

/// `[acs]`, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AcsSettings {
    pub bind: Ipv4Addr,
    pub port: u16,
    pub extra_ports: Vec<u16>,
    /// HTTPS listener: port, certificate chain, key.
    pub tls: Option<(u16, PathBuf, PathBuf)>,
    pub auth: AcsAuth,
    pub realm: String,
    pub username: String,
    pub password: String,
    /// username -> password, beside the default pair.
    pub credentials: Vec<(String, String)>,
    /// username -> the only device (`OUI-ProductClass-Serial`) that may use it.
    pub credential_devices: Vec<(String, String)>,
    pub session_timeout_secs: u32,
    pub nonce_lifetime_secs: u32,
    pub auto_register: bool,
    /// Device records at most: an unknown device's Inform beyond it is refused.
    pub max_devices: usize,
    /// New devices registered per second at most, and in one burst.
    pub new_devices_per_sec: u32,
    pub new_devices_burst: u32,
    /// How long one CWMP request's envelope may take to parse (ms): past it, fault 8004.
    pub request_budget_ms: u32,
    pub events_per_device: usize,
    pub cr_username: String,
    pub cr_password: String,
    pub cr_per_second: u32,
    pub cr_min_interval_secs: u32,
    pub stun_port: Option<u16>,
    /// The task API's listener (provd-acsd: JSON tasks, devices, stats). The keys
    /// keep the name `admin_*` from before, for the config files that use them.
    pub admin_bind: Ipv4Addr,
    pub admin_port: u16,
    pub dump_dir: Option<PathBuf>,
    pub snapshot_secs: u32,
    pub presets: Vec<Preset>,
    pub campaigns: Vec<Campaign>,
}

fn device_match(
    v: &mut Validator,
    path: &str,
    oui: &Option<String>,
    pc: &Option<String>,
    serial: &Option<String>,
) -> DeviceMatch {
    if let Some(o) = oui
        && (o.len() != 6 || !o.bytes().all(|b| b.is_ascii_hexdigit()))
    {
        v.err(format!("{path}.oui"), format!("{o:?} is not 6 hex digits"));
    }
    DeviceMatch {
        oui: oui.as_ref().map(|o| o.to_ascii_uppercase()),
        product_class: pc.clone(),
        serial: serial.as_deref().map(Glob::new),
        ..DeviceMatch::default()
    }
}

fn firmware_of(
    v: &mut Validator,
    path: &str,
    version: Option<&String>,
    url: Option<&String>,
    size: Option<i64>,
) -> Option<Firmware> {
    let version = match version {
        Some(v) if !v.is_empty() => v.clone(),
        _ => {
            v.err(
                format!("{path}.version"),
                "the firmware version is required",
            );
            return None;
        }
    };
    let url = match url {
        Some(u) if u.starts_with("http://") || u.starts_with("https://") => u.clone(),
        Some(u) => {
            v.err(
                format!("{path}.url"),
                format!("{u:?} is not an http(s) URL"),
            );
            return None;
        }
        None => {
            v.err(format!("{path}.url"), "the firmware URL is required");
            return None;
        }
    };
    let file_size = v.int(
        &format!("{path}.file_size"),
        size,
        0,
        0,
        u32::MAX.into(),
        "the file size",
    ) as u32;
    Some(Firmware {
        version,
        url,
        file_size,
    })
}

fn name_ok(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
}

/// Validates `[acs]`; problems go to `errors` with their field paths.
pub(crate) fn validate(w: &AcsWire, server: &ServerSettings, v: &mut Validator) -> AcsSettings {
    let auth = match w.auth.as_deref() {
        None | Some("digest") => AcsAuth::Digest,
        Some("basic") => AcsAuth::Basic,
        Some("none") => AcsAuth::None,
        Some(o) => {
            v.err(
                "acs.auth",
                format!("unknown auth {o:?}: \"digest\", \"basic\" or \"none\""),
            );
            AcsAuth::Digest
        }
    };
    let username = w.username.clone().unwrap_or_default();
    let password = w.password.clone().unwrap_or_default();
    if auth != AcsAuth::None && username.is_empty() && w.credential.is_empty() {
        v.err(
            "acs.username",
            "authentication is on but no credentials are set: give username/password or [[acs.credential]], or auth = \"none\"",
        );
    }
    let mut credentials = Vec::new();
    let mut credential_devices = Vec::new();
    for (i, c) in w.credential.iter().enumerate() {
        if let (Some(u), Some(d)) = (&c.username, &c.device) {
            if d.split('-').count() < 3 {
                v.err(
                    format!("acs.credential[{i}].device"),
                    format!("{d:?} is not OUI-ProductClass-Serial"),
                );
            }
            credential_devices.push((u.clone(), d.clone()));
        }
        match (&c.username, &c.password) {
            (Some(u), Some(p)) if !u.is_empty() => credentials.push((u.clone(), p.clone())),
            _ => v.err(
                format!("acs.credential[{i}]"),
                "a credential needs a non-empty username and a password",
            ),
        }
    }
    let port = v.int("acs.port", w.port, 7547, 1, 65_535, "a TCP port") as u16;
    let mut extra_ports = Vec::new();
    for (i, p) in w.extra_ports.iter().flatten().enumerate() {
        let p = v.int(
            &format!("acs.extra_ports[{i}]"),
            Some(*p),
            0,
            1,
            65_535,
            "a TCP port",
        ) as u16;
        if p == port || extra_ports.contains(&p) {
            v.err(
                format!("acs.extra_ports[{i}]"),
                format!("port {p} is already used"),
            );
        }
        extra_ports.push(p);
    }
    let tls = match (w.https_port, &w.tls_cert, &w.tls_key) {
        (Some(p), Some(c), Some(k)) => {
            let p = v.int("acs.https_port", Some(p), 7443, 1, 65_535, "a TCP port") as u16;
            if p == port || extra_ports.contains(&p) {
                v.err("acs.https_port", format!("port {p} is already used"));
            }
            Some((p, PathBuf::from(c), PathBuf::from(k)))
        }
        (None, None, None) => None,
        _ => {
            v.err(
                "acs.https_port",
                "https_port, tls_cert and tls_key go together",
            );
            None
        }
    };
    let mut presets = Vec::new();
    for (i, p) in w.preset.iter().enumerate() {
        let path = format!("acs.preset[{i}]");
        let name = p.name.clone().unwrap_or_default();
        if !name_ok(&name) {
            v.err(
                format!("{path}.name"),
                "a name of 1-64 letters, digits, '-', '_', '.' is required",
            );
        }
        let mut matches = device_match(v, &path, &p.oui, &p.product_class, &p.serial);
        matches.events = p.events.clone().unwrap_or_default();
        for (k, val) in p.parameters.iter().flatten() {
            match toml_value(val) {
                Some((s, _)) => matches.parameters.push((k.clone(), s)),
                None => v.err(
                    format!("{path}.parameters.{k}"),
                    "a parameter value is a string, integer or boolean",
                ),
            }
        }
        let mut set = Vec::new();
        for (k, val) in p.set.iter().flatten() {
            if k.ends_with('.') || k.is_empty() {
                v.err(
                    format!("{path}.set.{k}"),
                    "set a parameter, not an object path",
                );
            }
            match toml_value(val) {
                Some((value, ty)) => set.push(DesiredValue {
                    name: k.clone(),
                    value,
                    ty,
                }),
                None => v.err(
                    format!("{path}.set.{k}"),
                    "a value is a string, integer or boolean",
                ),
            }
        }
        let periodic_inform_interval = p.periodic_inform_interval.map(|s| {
            v.int(
                &format!("{path}.periodic_inform_interval"),
                Some(s),
                300,
                1,
                86_400 * 7,
                "the interval in seconds",
            ) as u32
        });
        let firmware = p.firmware.as_ref().and_then(|f| {
            firmware_of(
                v,
                &format!("{path}.firmware"),
                f.version.as_ref(),
                f.url.as_ref(),
                f.file_size,
            )
        });
        if set.is_empty() && periodic_inform_interval.is_none() && firmware.is_none() {
            v.err(
                path.clone(),
                "the preset sets nothing: give set, periodic_inform_interval or firmware",
            );
        }
        presets.push(Preset {
            name,
            matches,
            set,
            periodic_inform_interval,
            firmware,
        });
    }
    let mut campaigns: Vec<Campaign> = Vec::new();
    for (i, c) in w.campaign.iter().enumerate() {
        let path = format!("acs.campaign[{i}]");
        let name = c.name.clone().unwrap_or_default();
        if !name_ok(&name) {
            v.err(
                format!("{path}.name"),
                "a name of 1-64 letters, digits, '-', '_', '.' is required",
            );
        } else if campaigns.iter().any(|o| o.name == name) {
            v.err(
                format!("{path}.name"),
                format!("campaign {name:?} is defined twice"),
            );
        }
        let matches = device_match(v, &path, &c.oui, &c.product_class, &c.serial);
        let firmware = firmware_of(v, &path, c.version.as_ref(), c.url.as_ref(), c.file_size);
        let max_concurrent = v.int(
            &format!("{path}.max_concurrent"),
            c.max_concurrent,
            10,
            1,
            1_000_000,
            "the downloads in flight",
        ) as u32;
        if let Some(firmware) = firmware {
            campaigns.push(Campaign {
                name,
                matches,
                firmware,
                max_concurrent,
            });
        }
    }
    let admin_bind = v.ipv4("acs.admin_bind", w.admin_bind.as_ref(), Ipv4Addr::LOCALHOST);
    AcsSettings {
        bind: v.ipv4("acs.bind", w.bind.as_ref(), server.bind),
        port,
        extra_ports,
        tls,
        auth,
        realm: w.realm.clone().unwrap_or_else(|| "provd".into()),
        username,
        password,
        credentials,
        credential_devices,
        session_timeout_secs: v.int(
            "acs.session_timeout_secs",
            w.session_timeout_secs,
            30,
            1,
            3600,
            "seconds",
        ) as u32,
        nonce_lifetime_secs: v.int(
            "acs.nonce_lifetime_secs",
            w.nonce_lifetime_secs,
            300,
            1,
            86_400,
            "seconds",
        ) as u32,
        auto_register: w.auto_register.unwrap_or(true),
        max_devices: v.int(
            "acs.max_devices",
            w.max_devices,
            2_000_000,
            1,
            100_000_000,
            "the device records kept",
        ) as usize,
        new_devices_per_sec: v.int(
            "acs.new_devices_per_sec",
            w.new_devices_per_sec,
            100,
            1,
            1_000_000,
            "new devices per second",
        ) as u32,
        new_devices_burst: v.int(
            "acs.new_devices_burst",
            w.new_devices_burst,
            1000,
            1,
            10_000_000,
            "new devices at once",
        ) as u32,
        request_budget_ms: v.int(
            "acs.request_budget_ms",
            w.request_budget_ms,
            2000,
            10,
            60_000,
            "milliseconds",
        ) as u32,
        events_per_device: v.int(
            "acs.events_per_device",
            w.events_per_device,
            16,
            0,
            1024,
            "the events kept per device",
        ) as usize,
        cr_username: w.cr_username.clone().unwrap_or_default(),
        cr_password: w.cr_password.clone().unwrap_or_default(),
        cr_per_second: v.int(
            "acs.cr_per_second",
            w.cr_per_second,
            50,
            1,
            100_000,
            "connection requests per second",
        ) as u32,
        cr_min_interval_secs: v.int(
            "acs.cr_min_interval_secs",
            w.cr_min_interval_secs,
            5,
            0,
            86_400,
            "seconds",
        ) as u32,
        stun_port: w
            .stun_port
            .map(|p| v.int("acs.stun_port", Some(p), 3478, 1, 65_535, "a UDP port") as u16),
        admin_bind,
        admin_port: v.int(
            "acs.admin_port",
            w.admin_port,
            7557,
            1,
            65_535,
            "a TCP port",
        ) as u16,
        dump_dir: w.dump_dir.as_ref().map(PathBuf::from),
        snapshot_secs: v.int(
            "acs.snapshot_secs",
            w.snapshot_secs,
            30,
            1,
            86_400,
            "seconds",
        ) as u32,
        presets,
        campaigns,
    }
}

/// A TOML scalar as CWMP text and xsd type.
fn toml_value(v: &toml::Value) -> Option<(String, &'static str)> {
    match v {
        toml::Value::String(s) => Some((s.clone(), "string")),
        toml::Value::Integer(i) if *i >= 0 && *i <= i64::from(u32::MAX) => {
            Some((i.to_string(), "unsignedInt"))
        }
        toml::Value::Integer(i) => Some((i.to_string(), "int")),
        toml::Value::Boolean(b) => Some((b.to_string(), "boolean")),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::AcsSettings;

    #[test]
    fn full_acs_section_loads() {
        let a = AcsSettings::from_toml(
            "[acs]\nport = 7547\nextra_ports = [7548]\nusername = \"u\"\npassword = \"p\"\n\
             [[acs.preset]]\nname = \"p1\"\noui = \"0015cf\"\nevents = [\"1 BOOT\"]\nset = { \"Device.X\" = true, \"Device.Y\" = 5 }\n\
             periodic_inform_interval = 300\n\
             [[acs.campaign]]\nname = \"c\"\nversion = \"2\"\nurl = \"http://h/f\"\nmax_concurrent = 2\n",
        )
        .unwrap();
        assert_eq!(a.extra_ports, [7548]);
        assert_eq!(a.presets[0].matches.oui.as_deref(), Some("0015CF"));
        assert_eq!(a.presets[0].set.len(), 2);
        assert_eq!(a.campaigns[0].max_concurrent, 2);
    }

    #[test]
    fn errors_name_their_fields() {
        let e = AcsSettings::from_toml(
            "[acs]\nauth = \"kerberos\"\nport = 0\nmax_devices = 0\nnew_devices_per_sec = -1\n\
             request_budget_ms = 1\n[[acs.preset]]\nname = \"\"\noui = \"xyz\"\n\
             [[acs.campaign]]\nname = \"c\"\nurl = \"ftp://x\"\n",
        )
        .unwrap_err()
        .to_string();
        for path in [
            "acs.auth",
            "acs.port",
            "acs.preset[0].name",
            "acs.preset[0].oui",
            "acs.preset[0]",
            "acs.campaign[0].version",
            "acs.max_devices",
            "acs.new_devices_per_sec",
            "acs.request_budget_ms",
        ] {
            assert!(e.contains(path), "{path} missing in {e}");
        }
    }
}
