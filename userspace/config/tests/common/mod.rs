//! What every config test file needs: a minimal valid config to add a section to, and the
//! helpers that load it and look for a named error.
// Each test file uses its own subset of these.
#![allow(dead_code)]

use provd_config::{ConfigErrors, Policy};

/// A server and one relayed network with one pool: valid on its own.
pub const BASE: &str = r#"
[server]
lease_dir = "/tmp/provd-test"
bind = "198.18.0.1"
workers = 2

[[shared_network]]
name = "n1"
relays = ["10.1.0.1"]
  [[shared_network.subnet]]
  prefix = "10.1.0.0/24"
    [[shared_network.subnet.pool]]
    start = "10.1.0.10"
    end = "10.1.0.250"
"#;

/// [`BASE`] with `extra` appended, which must be accepted.
pub fn ok(extra: &str) -> Policy {
    let text = format!("{BASE}{extra}");
    Policy::from_toml_str(&text).unwrap_or_else(|e| panic!("refused:\n{e}\n{text}"))
}

/// [`BASE`] with `extra` appended, which must be refused: the errors.
pub fn errors(extra: &str) -> ConfigErrors {
    match Policy::from_toml_str(&format!("{BASE}{extra}")) {
        Ok(_) => panic!("config was accepted:\n{extra}"),
        Err(e) => e,
    }
}

/// Asserts some error has exactly `path` and a message containing `fragment`.
#[track_caller]
pub fn assert_has(e: &ConfigErrors, path: &str, fragment: &str) {
    assert!(
        e.at(path).any(|x| x.message.contains(fragment)),
        "no error at {path:?} containing {fragment:?}; got:\n{e}"
    );
}
