//! provd-web: the HTTP(S) server machinery every web role shares (not a role itself: the
//! phone profile role is `provd-httpd`, the TR-069 ACS role `provd-acsd`).
//!
//! The protocol work (routing, profiles, CWMP) is the caller's `axum::Router`; this crate owns
//! what every listener needs and nobody should write twice:
//!
//! - **TLS** ([`server_config`]): certificate chain and key from PEM files, an optional client
//!   CA with client certificates off, optional or required ([`ClientAuth`]); rustls with the
//!   ring provider, TLS 1.2 and 1.3, ALPN `http/1.1`. Errors name the file and what is wrong.
//! - **Who is asking** ([`Peer`]): every request carries the remote and local address, whether
//!   it came over TLS, and the verified client certificate's identity ([`ClientCert`]), as an
//!   `Extension<Peer>`. [`ClientCert::macs`] finds the MAC addresses spelled in its CN and SAN,
//!   which is how a phone's certificate is matched to the profile it asks for.
//! - **Limits** ([`Limits`]): a cap on open connections (refused beyond it, not queued), a
//!   deadline for the TLS handshake and for each request head, a keep-alive idle deadline, and
//!   a cap on the request head's size (431 beyond it).
//! - **Access log and counters**: one line per request on the tracing target `provd::access`,
//!   and [`WebCounters`] for connections, handshakes and responses by status class. Handshake
//!   failures are counted and logged at most a few times a second.
//!
//! HTTP/1.1 only: provisioning clients (phones, ATAs, CPEs) speak nothing else, and one
//! protocol keeps the hot loop small.

mod cert;
mod serve;
mod tls;

pub use cert::ClientCert;
pub use serve::{
    LISTEN_BACKLOG, Limits, LogGate, Peer, ServeOptions, WebCounters, bind, serve, serve_with,
};
pub use tls::{ClientAuth, TlsFiles, server_config};

use std::path::PathBuf;

/// Why a listener could not be set up. Every variant names the file concerned.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum WebError {
    #[error("{path}: cannot read: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: {what}")]
    Pem { path: PathBuf, what: String },
    #[error("{path}: no certificate in the file")]
    NoCertificate { path: PathBuf },
    #[error("{path}: no private key in the file")]
    NoKey { path: PathBuf },
    #[error("{path}: certificate or key refused: {reason}")]
    Refused { path: PathBuf, reason: String },
    #[error("client_auth is {mode} but no client CA file is set")]
    NoClientCa { mode: &'static str },
}
