//! The wire form of the config: exactly what the TOML file says, before validation.
//!
//! Each role's module holds its own wire structs beside their validation; this module
//! assembles them into the whole file ([`Config`]) and re-exports them under their table
//! names. Every struct denies unknown keys. Values that need checking beyond their TOML type
//! (addresses, prefixes, MACs, names, ranges) are kept as `String`/`i64` here and checked in
//! [`Policy::try_from`](crate::Policy), so that one load reports *all* such mistakes at once;
//! only TOML type mismatches (a string where a number belongs, …) stop deserialisation early.
//! Required keys are `Option`s for the same reason: their absence is a validation error.

use serde::Deserialize;

pub use crate::acs::AcsWire;
pub use crate::control::wire::{Api, Reset as ApiReset, Store};
pub use crate::dhcp::wire::{Class, Lease, Pool, Reservation, SharedNetwork, Subnet};
pub use crate::files::wire::{ConfigFile, Subscriber};
pub use crate::http::{WireHttp, WireProfile, WireUpgradeRule};
pub use crate::mta::wire::Mta;
pub use crate::server::wire::Server;
pub use crate::syslog::wire::Syslog;
pub use crate::tftp::wire::Tftp;
pub use crate::time::wire::Time;

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
    pub acs: Option<AcsWire>,
    /// Operator variables for config-file templates (`vars.NAME`).
    pub vars: Option<toml::Table>,
    #[serde(default)]
    pub subscriber: Vec<Subscriber>,
    /// `[http]`: see [`HttpSettings`](crate::HttpSettings).
    pub http: Option<WireHttp>,
    #[serde(default)]
    pub upgrade_rule: Vec<WireUpgradeRule>,
    /// `[store]`: see [`StoreSettings`](crate::StoreSettings).
    pub store: Option<Store>,
    /// `[api]`: see [`ApiSettings`](crate::ApiSettings).
    pub api: Option<Api>,
}
