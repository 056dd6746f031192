//! provd-profiles: the profiles provd hands to VoIP ATAs and IP phones, without I/O.
//!
//! * [`kvp`]: Flying Voice style `DBID_NAME=value` lines.
//! * [`xml`]: Cisco SPA style `<flat-profile><Name>value</Name>…</flat-profile>`.
//! * [`version`]: the version rule. A device ignores a profile whose version
//!   (`DBID_DBASE_VERSION`) did not rise, so provd keeps a per-device counter, bumps it whenever
//!   the device's rendered profile changes, never lowers it, and writes it into the profile.
//! * [`crypto`]: `--key` profiles, AES-256-CBC in OpenSSL's `Salted__` format with
//!   `EVP_BytesToKey(MD5, 1 iteration)`: what `openssl enc -aes-256-cbc -md md5 -k KEY` writes.
//! * [`upgrade`]: which firmware a model at a version should move to.
//! * [`etag`]: entity tags for served bodies.

pub mod crypto;
pub mod etag;
pub mod kvp;
pub mod upgrade;
pub mod version;
pub mod xml;

/// The two profile formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// `DBID_NAME=value` lines.
    Kvp,
    /// `<flat-profile>` XML.
    Xml,
}

/// Why a profile was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ProfileError {
    #[error("line {line}: expected NAME=value (NAME of letters, digits, '_')")]
    BadLine { line: usize },
    #[error("the profile is not UTF-8")]
    NotUtf8,
    #[error("XML: {message}")]
    Xml { message: String },
    #[error("XML: the root element is <{found}>, not <flat-profile>")]
    NotFlatProfile { found: String },
    #[error("XML: no <flat-profile> element")]
    NoRoot,
}

/// Writes `version` into a rendered profile (replacing any value the template wrote) under
/// `field`. Returns the bytes to serve.
pub fn set_version(
    format: Format,
    body: &[u8],
    field: &str,
    version: u64,
) -> Result<Vec<u8>, ProfileError> {
    match format {
        Format::Kvp => kvp::set_version(body, field, version),
        Format::Xml => xml::set_version(body, field, version),
    }
}

/// Checks that `body` parses in `format` (for a template's output and for fuzzing).
pub fn validate(format: Format, body: &[u8]) -> Result<usize, ProfileError> {
    match format {
        Format::Kvp => kvp::parse(body).map(|p| p.len()),
        Format::Xml => xml::parse(body).map(|p| p.len()),
    }
}
