//! Test helpers for every crate that needs a [`Policy`] (feature `testing`): the one minimal
//! `[server]` and DHCP network that make a config valid, so that a test writes only the tables
//! it is about. For one role's settings alone, use the role's `from_toml`
//! ([`AcsSettings::from_toml`](crate::AcsSettings::from_toml), ...).
//!
//! ```
//! let p = provd_config::testing::policy("[tftp]\nenforce = false\n");
//! assert!(!p.tftp.unwrap().enforce);
//! let e = provd_config::testing::errors("[tftp]\nport = 0\n");
//! provd_config::testing::assert_has(&e, "tftp.port", "out of range");
//! ```

use crate::error::ConfigErrors;
use crate::policy::Policy;

/// The `[server]` added when the tables have none.
pub const SERVER: &str = r#"
[server]
lease_dir = "/tmp/provd-test"
bind = "198.18.0.1"
workers = 2
"#;

/// The DHCP network added when the tables have none: one relayed network with one pool.
pub const NETWORK: &str = r#"
[[shared_network]]
name = "n1"
relays = ["10.1.0.1"]
  [[shared_network.subnet]]
  prefix = "10.1.0.0/24"
    [[shared_network.subnet.pool]]
    start = "10.1.0.10"
    end = "10.1.0.250"
"#;

/// `tables` with [`SERVER`] and [`NETWORK`] appended where it has no `[server]` or no
/// `[[shared_network]]` of its own: a whole config.
pub fn config(tables: &str) -> String {
    let has = |key: &str| {
        tables
            .parse::<toml::Table>()
            .is_ok_and(|t| t.contains_key(key))
    };
    let mut text = tables.to_owned();
    if !has("server") {
        text.push_str(SERVER);
    }
    if !has("shared_network") {
        text.push_str(NETWORK);
    }
    text
}

/// The policy of [`config`]`(tables)`, which must be valid.
///
/// # Panics
/// With every error, if the config is refused.
#[track_caller]
pub fn policy(tables: &str) -> Policy {
    let text = config(tables);
    Policy::from_toml_str(&text).unwrap_or_else(|e| panic!("refused:\n{e}\n{text}"))
}

/// The errors of [`config`]`(tables)`, which must be refused.
///
/// # Panics
/// If the config is accepted.
#[track_caller]
pub fn errors(tables: &str) -> ConfigErrors {
    match Policy::from_toml_str(&config(tables)) {
        Ok(_) => panic!("config was accepted:\n{tables}"),
        Err(e) => e,
    }
}

/// Asserts some error has exactly `path` and a message containing `fragment`.
///
/// # Panics
/// If none has.
#[track_caller]
pub fn assert_has(e: &ConfigErrors, path: &str, fragment: &str) {
    assert!(
        e.at(path).any(|x| x.message.contains(fragment)),
        "no error at {path:?} containing {fragment:?}; got:\n{e}"
    );
}
