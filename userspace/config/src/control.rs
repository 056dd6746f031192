//! `[store]` and `[api]`: the system of record and the control plane's REST API.
//!
//! ```toml
//! [store]
//! backend = "embedded"            # default; or "postgres"
//! path = "/var/lib/provd/store.db" # embedded; default <server.lease_dir>/store.db
//! url = "postgresql://provd@127.0.0.1:5432/provd"   # postgres (required with it)
//! pool = 8                        # connections (postgres) / readers (embedded)
//! timeline_days = 30              # device timeline events older than this are trimmed
//! timeline_per_device = 1000      # and at most this many kept per device
//!
//! [api]                           # presence serves /api/v1, /metrics
//! bind = "127.0.0.1"              # default loopback
//! port = 8080
//! tls_cert = "/etc/provd/api.pem" # HTTPS: certificate chain and key (PEM), together
//! tls_key = "/etc/provd/api.key"
//! client_ca = "/etc/provd/ops-ca.pem" # mutual TLS: clients must present a cert from this CA
//! allow_insecure_remote = false   # a non-loopback bind without TLS refuses to start unless true
//! metrics_open = false            # /metrics without a token (for a scraper on loopback)
//! ui = true                       # the operators' web UI at /ui/ (same tokens and roles)
//!   [api.reset]                   # POST /devices/{mac}/reset of a cable modem: SNMP SET
//!   community = "private"         #   docsDevResetNow.0 = true to the modem's leased address
//!   port = 161
//!   timeout_ms = 2000
//! ```

use std::net::Ipv4Addr;
use std::path::PathBuf;

use crate::server::ServerSettings;
use crate::validator::Validator;

/// The tables as written (see [`crate::wire`]).
pub mod wire {
    use serde::Deserialize;

    /// `[store]` as written.
    #[derive(Debug, Clone, Default, Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct Store {
        pub backend: Option<String>,
        pub path: Option<String>,
        pub url: Option<String>,
        pub pool: Option<i64>,
        pub timeline_days: Option<i64>,
        pub timeline_per_device: Option<i64>,
    }

    /// `[api]` as written.
    #[derive(Debug, Clone, Default, Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct Api {
        pub bind: Option<String>,
        pub port: Option<i64>,
        pub tls_cert: Option<String>,
        pub tls_key: Option<String>,
        pub client_ca: Option<String>,
        pub allow_insecure_remote: Option<bool>,
        pub metrics_open: Option<bool>,
        pub ui: Option<bool>,
        pub reset: Option<Reset>,
    }

    /// `[api.reset]` as written.
    #[derive(Debug, Clone, Default, Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct Reset {
        pub community: Option<String>,
        pub port: Option<i64>,
        pub timeout_ms: Option<i64>,
    }
}

/// Where the system of record lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreBackend {
    /// SQLite in this file (created if absent).
    Embedded { path: PathBuf },
    /// A PostgreSQL server (libpq-style URL or key=value string).
    Postgres { url: String },
}

/// `[store]`; present with defaults when the table is absent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreSettings {
    pub backend: StoreBackend,
    pub pool: usize,
    pub timeline_days: u32,
    pub timeline_per_device: u32,
}

/// `[api]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiSettings {
    pub bind: Ipv4Addr,
    pub port: u16,
    /// Certificate chain and key (PEM).
    pub tls: Option<(PathBuf, PathBuf)>,
    /// Clients must present a certificate from this CA (needs `tls`).
    pub client_ca: Option<PathBuf>,
    pub metrics_open: bool,
    /// Serve the web UI at `/ui/`.
    pub ui: bool,
    pub reset: ResetSettings,
}

/// `[api.reset]`: how `POST /devices/{mac}/reset` reaches a cable modem.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResetSettings {
    pub community: String,
    pub port: u16,
    pub timeout_ms: u32,
}

/// Validates `[store]` (absent: the defaults).
pub(crate) fn store(
    w: Option<&wire::Store>,
    server: &ServerSettings,
    v: &mut Validator,
) -> StoreSettings {
    let d = wire::Store::default();
    let w = w.unwrap_or(&d);
    let backend = match w.backend.as_deref().unwrap_or("embedded") {
        "embedded" => {
            if w.url.is_some() {
                v.err(
                    "store.url",
                    "is for backend = \"postgres\"; the embedded store takes path",
                );
            }
            let path = v
                .file("store.path", w.path.as_ref())
                .unwrap_or_else(|| server.lease_dir.join("store.db"));
            StoreBackend::Embedded { path }
        }
        "postgres" => {
            if w.path.is_some() {
                v.err(
                    "store.path",
                    "is for backend = \"embedded\"; postgres takes url",
                );
            }
            match w.url.as_deref() {
                Some(u) if !u.trim().is_empty() => StoreBackend::Postgres { url: u.to_string() },
                _ => {
                    v.err(
                        "store.url",
                        "backend = \"postgres\" needs url (e.g. postgresql://provd@127.0.0.1/provd)",
                    );
                    StoreBackend::Postgres { url: String::new() }
                }
            }
        }
        other => {
            v.err(
                "store.backend",
                format!("{other:?} is not a backend: \"embedded\" or \"postgres\""),
            );
            StoreBackend::Embedded {
                path: server.lease_dir.join("store.db"),
            }
        }
    };
    StoreSettings {
        backend,
        pool: v.int("store.pool", w.pool, 8, 1, 256, "a connection count") as usize,
        timeline_days: v.int("store.timeline_days", w.timeline_days, 30, 1, 3650, "days") as u32,
        timeline_per_device: v.int(
            "store.timeline_per_device",
            w.timeline_per_device,
            1000,
            10,
            1_000_000,
            "an event count",
        ) as u32,
    }
}

/// Validates `[api]`.
pub(crate) fn api(w: &wire::Api, v: &mut Validator) -> ApiSettings {
    let bind = v.ipv4("api.bind", w.bind.as_ref(), Ipv4Addr::LOCALHOST);
    let tls = match (&w.tls_cert, &w.tls_key) {
        (Some(c), Some(k)) => Some((PathBuf::from(c), PathBuf::from(k))),
        (None, None) => None,
        _ => {
            v.err("api.tls_cert", "tls_cert and tls_key go together");
            None
        }
    };
    let client_ca = v.file("api.client_ca", w.client_ca.as_ref());
    if client_ca.is_some() && tls.is_none() {
        v.err(
            "api.client_ca",
            "mutual TLS needs TLS: set tls_cert and tls_key too",
        );
    }
    if !bind.is_loopback() && tls.is_none() && !w.allow_insecure_remote.unwrap_or(false) {
        v.err(
            "api.bind",
            format!(
                "{bind} is not loopback and the API has no TLS: tokens would cross the network \
                 in clear; set tls_cert and tls_key, or allow_insecure_remote = true"
            ),
        );
    }
    let r = w.reset.clone().unwrap_or_default();
    let community = r.community.unwrap_or_else(|| "private".into());
    if community.is_empty() || community.len() > 64 {
        v.err("api.reset.community", "1 to 64 bytes");
    }
    ApiSettings {
        bind,
        port: v.int("api.port", w.port, 8080, 1, 65_535, "a TCP port") as u16,
        tls,
        client_ca,
        metrics_open: w.metrics_open.unwrap_or(false),
        ui: w.ui.unwrap_or(true),
        reset: ResetSettings {
            community,
            port: v.int("api.reset.port", r.port, 161, 1, 65_535, "a UDP port") as u16,
            timeout_ms: v.int(
                "api.reset.timeout_ms",
                r.timeout_ms,
                2000,
                100,
                60_000,
                "milliseconds",
            ) as u32,
        },
    }
}

#[cfg(test)]
mod tests {
    use crate::testing::{assert_has, config, errors};
    use crate::{Policy, StoreBackend};

    #[test]
    fn store_defaults_to_an_embedded_file_in_the_lease_dir() {
        let p = Policy::from_toml_str(&config("")).unwrap();
        match &p.store.backend {
            StoreBackend::Embedded { path } => {
                assert_eq!(path, &p.server.lease_dir.join("store.db"))
            }
            other => panic!("{other:?}"),
        }
        assert!(p.api.is_none(), "no [api] table, no API");
    }

    #[test]
    fn api_is_loopback_unless_tls_or_explicitly_allowed() {
        let p = Policy::from_toml_str(&config("[api]\n")).unwrap();
        let a = p.api.expect("api");
        assert!(a.bind.is_loopback());
        assert_eq!(a.port, 8080);
        let e = errors(&config("[api]\nbind = \"198.18.0.1\"\n"));
        assert_has(&e, "api.bind", "not loopback");
        let p = Policy::from_toml_str(&config(
            "[api]\nbind = \"198.18.0.1\"\nallow_insecure_remote = true\n",
        ))
        .unwrap();
        assert_eq!(p.api.unwrap().bind.to_string(), "198.18.0.1");
    }

    #[test]
    fn store_errors_name_the_field() {
        assert_has(
            &errors(&config("[store]\nbackend = \"postgres\"\n")),
            "store.url",
            "needs url",
        );
        assert_has(
            &errors(&config("[store]\nbackend = \"mysql\"\n")),
            "store.backend",
            "not a backend",
        );
        assert_has(
            &errors(&config("[api]\nclient_ca = \"ca.pem\"\n")),
            "api.client_ca",
            "needs TLS",
        );
    }
}
