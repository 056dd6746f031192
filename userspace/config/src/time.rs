//! `[time]`: RFC 868 time of day (option 4 points cable modems here).
//!
//! ```toml
//! [time]                          # presence enables RFC 868 time (option 4's time server)
//! bind = "198.18.0.1"             # default: [server].bind
//! port = 37
//! udp = true
//! tcp = true
//! ```

use std::net::Ipv4Addr;

use crate::server::ServerSettings;
use crate::validator::Validator;

/// The tables as written (see [`crate::wire`]).
pub mod wire {
    use serde::Deserialize;

    /// `[time]` as written.
    #[derive(Debug, Clone, Default, Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct Time {
        pub bind: Option<String>,
        pub port: Option<i64>,
        pub udp: Option<bool>,
        pub tcp: Option<bool>,
    }
}

/// `[time]`: RFC 868 time of day (option 4 points cable modems here).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TimeSettings {
    pub bind: Ipv4Addr,
    pub port: u16,
    pub udp: bool,
    pub tcp: bool,
}

/// Validates `[time]`.
pub(crate) fn validate(w: &wire::Time, server: &ServerSettings, v: &mut Validator) -> TimeSettings {
    let t = TimeSettings {
        bind: v.bind("time.bind", w.bind.as_ref(), server.bind),
        port: v.int("time.port", w.port, 37, 1, 65_535, "a port") as u16,
        udp: w.udp.unwrap_or(true),
        tcp: w.tcp.unwrap_or(true),
    };
    if !t.udp && !t.tcp {
        v.err(
            "time",
            "udp and tcp are both off: leave [time] out to serve no time",
        );
    }
    t
}
