//! One role's settings from its own table, without the rest of a config: what a test of the
//! ACS, the HTTP server or the TFTP server needs, without a DHCP network to make a whole
//! [`Policy`](crate::Policy) valid.
//!
//! See [`AcsSettings::from_toml`] for what every role's `from_toml` reads and returns.

use crate::acs::{self, AcsSettings};
use crate::error::{ConfigError, ConfigErrors, from_serde};
use crate::http::{self, HttpSettings};
use crate::mta::{self, MtaSettings};
use crate::server::ServerSettings;
use crate::syslog::{self, SyslogSettings};
use crate::tftp::{self, TftpSettings};
use crate::time::{self, TimeSettings};
use crate::validator::Validator;
use crate::wire;

/// The tables present in a whole-file wire config, by name.
fn tables(w: &wire::Config) -> Vec<&'static str> {
    let wire::Config {
        server,
        lease,
        class,
        shared_network,
        reservation,
        tftp,
        syslog,
        time,
        mta,
        acs,
        vars,
        subscriber,
        http,
        upgrade_rule,
        store,
        api,
    } = w;
    [
        ("server", server.is_some()),
        ("lease", lease.is_some()),
        ("class", !class.is_empty()),
        ("shared_network", !shared_network.is_empty()),
        ("reservation", !reservation.is_empty()),
        ("tftp", tftp.is_some()),
        ("syslog", syslog.is_some()),
        ("time", time.is_some()),
        ("mta", mta.is_some()),
        ("acs", acs.is_some()),
        ("vars", vars.is_some()),
        ("subscriber", !subscriber.is_empty()),
        ("http", http.is_some()),
        ("upgrade_rule", !upgrade_rule.is_empty()),
        ("store", store.is_some()),
        ("api", api.is_some()),
    ]
    .into_iter()
    .filter_map(|(name, present)| present.then_some(name))
    .collect()
}

/// Reads `src` as a config holding only the table `name`, and validates that table with
/// `validate`: the one path behind every role's `from_toml`.
fn one_table<W, T>(
    src: &str,
    name: &'static str,
    take: impl FnOnce(wire::Config) -> Option<W>,
    validate: impl FnOnce(&W, &ServerSettings, &mut Validator) -> T,
) -> Result<T, ConfigErrors> {
    let de = toml::Deserializer::new(src);
    let w: wire::Config =
        serde_path_to_error::deserialize(de).map_err(|e| ConfigErrors::from(from_serde(e, src)))?;
    let mut errors: Vec<ConfigError> = tables(&w)
        .into_iter()
        .filter(|t| *t != name)
        .map(|t| {
            ConfigError::new(
                t,
                format!("only the [{name}] table is read here, not [{t}]"),
            )
        })
        .collect();
    let table = take(w);
    if table.is_none() {
        errors.push(ConfigError::new(
            name,
            format!("the [{name}] table is missing"),
        ));
    }
    let (Some(table), true) = (table, errors.is_empty()) else {
        return Err(ConfigErrors(errors));
    };
    let mut v = Validator::default();
    let settings = validate(&table, &ServerSettings::defaults(), &mut v);
    v.finish(|| settings)
}

impl AcsSettings {
    /// `[acs]` (with its `[[acs.credential]]`, `[[acs.preset]]` and `[[acs.campaign]]`) on its
    /// own, without the rest of a config (no `[server]`, no DHCP network).
    ///
    /// The text is a TOML document holding that one table, written as in the config file
    /// (`[acs]`, `[[acs.preset]]`, ...). It is read and validated exactly as in a whole config, so
    /// errors, field paths and defaults are the same, with one difference: what a role inherits
    /// from `[server]` (`bind`, `workers`) is the default of an empty `[server]` table (`0.0.0.0`,
    /// one worker per core).
    ///
    /// ```
    /// let acs = provd_config::AcsSettings::from_toml("[acs]\nauth = \"none\"\nport = 7548").unwrap();
    /// assert_eq!(acs.port, 7548);
    /// let e = provd_config::TftpSettings::from_toml("[tftp]\nmax_blksize = 4").unwrap_err();
    /// assert_eq!(e.0[0].path, "tftp.max_blksize");
    /// ```
    pub fn from_toml(src: &str) -> Result<AcsSettings, ConfigErrors> {
        one_table(src, "acs", |w| w.acs, acs::validate)
    }
}

impl HttpSettings {
    /// `[http]` on its own (profiles and upgrade rules are other tables); see
    /// [`AcsSettings::from_toml`].
    pub fn from_toml(src: &str) -> Result<HttpSettings, ConfigErrors> {
        one_table(src, "http", |w| w.http, http::validate)
    }
}

impl TftpSettings {
    /// `[tftp]` on its own; see [`AcsSettings::from_toml`].
    pub fn from_toml(src: &str) -> Result<TftpSettings, ConfigErrors> {
        one_table(src, "tftp", |w| w.tftp, tftp::validate)
    }
}

impl SyslogSettings {
    /// `[syslog]` on its own; see [`AcsSettings::from_toml`].
    pub fn from_toml(src: &str) -> Result<SyslogSettings, ConfigErrors> {
        one_table(src, "syslog", |w| w.syslog, syslog::validate)
    }
}

impl TimeSettings {
    /// `[time]` on its own; see [`AcsSettings::from_toml`].
    pub fn from_toml(src: &str) -> Result<TimeSettings, ConfigErrors> {
        one_table(src, "time", |w| w.time, time::validate)
    }
}

impl MtaSettings {
    /// `[mta]` on its own (the checks that need `[tftp]` and an MTA class are not run); see
    /// [`AcsSettings::from_toml`].
    pub fn from_toml(src: &str) -> Result<MtaSettings, ConfigErrors> {
        one_table(src, "mta", |w| w.mta, mta::validate)
    }
}
