//! `[syslog]`: the receiver for devices' log messages (option 7 points devices here).
//!
//! ```toml
//! [syslog]                        # presence enables the receiver (option 7's log server)
//! bind = "198.18.0.1"             # default: [server].bind
//! port = 514
//! workers = 0                     # 0 = one per core
//! events_per_device = 64          # newest kept
//! max_devices = 1000000
//! per_source_rate = 20            # events a second kept per source address (beyond: dropped)
//! per_source_burst = 200          #   and at once
//! ```

use std::net::Ipv4Addr;

use crate::server::ServerSettings;
use crate::validator::Validator;

/// The tables as written (see [`crate::wire`]).
pub mod wire {
    use serde::Deserialize;

    /// `[syslog]` as written.
    #[derive(Debug, Clone, Default, Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct Syslog {
        pub bind: Option<String>,
        pub port: Option<i64>,
        pub workers: Option<i64>,
        pub events_per_device: Option<i64>,
        pub max_devices: Option<i64>,
        pub per_source_rate: Option<i64>,
        pub per_source_burst: Option<i64>,
    }
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
    /// Events a second, and at once, kept per source address: a forged flood cannot fill the
    /// store, and a chatty device cannot crowd out the rest.
    pub per_source_rate: u32,
    pub per_source_burst: u32,
}

/// Validates `[syslog]`.
pub(crate) fn validate(
    w: &wire::Syslog,
    server: &ServerSettings,
    v: &mut Validator,
) -> SyslogSettings {
    SyslogSettings {
        bind: v.bind("syslog.bind", w.bind.as_ref(), server.bind),
        port: v.int("syslog.port", w.port, 514, 1, 65_535, "a UDP port") as u16,
        workers: v.int(
            "syslog.workers",
            w.workers,
            0,
            0,
            1024,
            "the worker count (0 = one per core)",
        ) as usize,
        events_per_device: v.int(
            "syslog.events_per_device",
            w.events_per_device,
            64,
            1,
            100_000,
            "the events kept per device",
        ) as usize,
        max_devices: v.int(
            "syslog.max_devices",
            w.max_devices,
            1_000_000,
            1,
            100_000_000,
            "the devices kept",
        ) as usize,
        per_source_rate: v.int(
            "syslog.per_source_rate",
            w.per_source_rate,
            20,
            1,
            1_000_000,
            "events a second per source",
        ) as u32,
        per_source_burst: v.int(
            "syslog.per_source_burst",
            w.per_source_burst,
            200,
            1,
            1_000_000,
            "events at once per source",
        ) as u32,
    }
}
