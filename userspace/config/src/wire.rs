//! The wire form of the config: exactly what the TOML file says, before validation.
//!
//! Every struct denies unknown keys. Values that need checking beyond their TOML type
//! (addresses, prefixes, MACs, names, ranges) are kept as `String`/`i64` here and checked in
//! [`Policy::try_from`](crate::Policy), so that one load reports *all* such mistakes at once;
//! only TOML type mismatches (a string where a number belongs, …) stop deserialisation early.
//! Required keys are `Option`s for the same reason: their absence is a validation error.

use serde::Deserialize;

/// The whole file.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    pub server: Option<Server>,
    pub lease: Option<Lease>,
    #[serde(default)]
    pub class: Vec<Class>,
    #[serde(default)]
    pub shared_network: Vec<SharedNetwork>,
    #[serde(default)]
    pub reservation: Vec<Reservation>,
    pub tftp: Option<Tftp>,
    pub syslog: Option<Syslog>,
    pub time: Option<Time>,
    pub mta: Option<Mta>,
    /// `[acs]`: see the `acs` module.
    pub acs: Option<crate::acs::AcsWire>,
    /// Operator variables for config-file templates (`vars.NAME`).
    pub vars: Option<toml::Table>,
    #[serde(default)]
    pub subscriber: Vec<Subscriber>,
    /// `[http]`: see [`crate::http`].
    pub http: Option<crate::http::WireHttp>,
    #[serde(default)]
    pub upgrade_rule: Vec<crate::http::WireUpgradeRule>,
}

/// `[tftp]`
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Tftp {
    pub bind: Option<String>,
    pub port: Option<i64>,
    pub root: Option<String>,
    pub workers: Option<i64>,
    pub enforce: Option<bool>,
    pub max_blksize: Option<i64>,
    pub max_windowsize: Option<i64>,
    pub allow_write: Option<bool>,
    pub max_transfers: Option<i64>,
}

/// `[syslog]`
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Syslog {
    pub bind: Option<String>,
    pub port: Option<i64>,
    pub workers: Option<i64>,
    pub events_per_device: Option<i64>,
    pub max_devices: Option<i64>,
}

/// `[mta]`
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Mta {
    pub bind: Option<String>,
    pub port: Option<i64>,
    pub inform_communities: Option<Vec<String>>,
    pub set_community: Option<String>,
    pub get_community: Option<String>,
    pub get_capabilities: Option<bool>,
    pub max_flows: Option<i64>,
}

/// `[time]`
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Time {
    pub bind: Option<String>,
    pub port: Option<i64>,
    pub udp: Option<bool>,
    pub tcp: Option<bool>,
}

/// `[class.config_file]`
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConfigFile {
    pub template: Option<String>,
    pub kind: Option<String>,
    pub shared_secret: Option<String>,
    pub mta_hash: Option<String>,
}

/// `[[subscriber]]`
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Subscriber {
    pub mac: Option<String>,
    pub vars: Option<toml::Table>,
}

/// `[server]`
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Server {
    pub server_id: Option<String>,
    pub bind: Option<String>,
    pub port: Option<i64>,
    pub workers: Option<i64>,
    pub lease_dir: Option<String>,
    pub offer_hold_secs: Option<i64>,
    pub decline_quarantine_secs: Option<i64>,
    pub forget_after_secs: Option<i64>,
    pub compact_after_records: Option<i64>,
    pub log_format: Option<String>,
    pub io: Option<String>,
    pub xdp_interface: Option<String>,
    pub xdp_mode: Option<String>,
}

/// `[lease]`
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Lease {
    pub default_time: Option<i64>,
    pub t1_ratio: Option<f64>,
    pub t2_ratio: Option<f64>,
}

/// `[[class]]`
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Class {
    pub name: Option<String>,
    #[serde(rename = "match")]
    pub matcher: Option<String>,
    pub lease_time: Option<i64>,
    pub next_server: Option<String>,
    pub boot_file: Option<String>,
    pub tftp_server: Option<String>,
    #[serde(default)]
    pub time_servers: Vec<String>,
    #[serde(default)]
    pub log_servers: Vec<String>,
    pub time_offset: Option<i64>,
    #[serde(default)]
    pub dns_servers: Vec<String>,
    pub domain_name: Option<String>,
    pub provisioning_server: Option<String>,
    pub flow: Option<String>,
    pub realm: Option<String>,
    pub primary_dhcp: Option<String>,
    pub secondary_dhcp: Option<String>,
    pub provisioning_timer: Option<i64>,
    #[serde(default)]
    pub kdc_servers: Vec<String>,
    pub acs_url: Option<String>,
    pub provisioning_code: Option<String>,
    pub config_file: Option<ConfigFile>,
    /// `[class.profile]`: see [`crate::http`].
    pub profile: Option<crate::http::WireProfile>,
}

/// `[[shared_network]]`
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SharedNetwork {
    pub name: Option<String>,
    #[serde(default)]
    pub relays: Vec<String>,
    #[serde(default)]
    pub interfaces: Vec<String>,
    #[serde(default)]
    pub subnet: Vec<Subnet>,
}

/// `[[shared_network.subnet]]`
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Subnet {
    pub prefix: Option<String>,
    #[serde(default)]
    pub routers: Vec<String>,
    #[serde(default)]
    pub classes: Vec<String>,
    pub lease_time: Option<i64>,
    #[serde(default)]
    pub pool: Vec<Pool>,
}

/// `[[shared_network.subnet.pool]]`
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Pool {
    pub start: Option<String>,
    pub end: Option<String>,
}

/// `[[reservation]]`
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Reservation {
    pub mac: Option<String>,
    pub remote_id: Option<String>,
    pub address: Option<String>,
    pub class: Option<String>,
    pub boot_file: Option<String>,
}
