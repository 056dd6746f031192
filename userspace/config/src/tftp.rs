//! `[tftp]`: the TFTP server for static files and generated config files.
//!
//! ```toml
//! [tftp]                          # presence enables the TFTP server
//! bind = "198.18.0.1"             # default: [server].bind
//! port = 69
//! root = "tftp-root"              # static files (firmware); relative to the config file
//! workers = 0                     # default: [server].workers (0 = one per core)
//! enforce = true                  # generated files only to the device's leased address
//! max_blksize = 1468              # 8..=65464
//! max_windowsize = 64             # 1..=65535
//! allow_write = false             # WRQ (uploads into root); refused when false
//! max_transfers = 65536           # per worker; beyond it an RRQ gets ERROR 3
//! ```

use std::net::Ipv4Addr;
use std::path::PathBuf;

use crate::server::ServerSettings;
use crate::validator::Validator;

/// The tables as written (see [`crate::wire`]).
pub mod wire {
    use serde::Deserialize;

    /// `[tftp]` as written.
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
}

/// `[tftp]`
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TftpSettings {
    pub bind: Ipv4Addr,
    pub port: u16,
    /// Static files; `None`: only generated files are served.
    pub root: Option<PathBuf>,
    /// 0 = one per core.
    pub workers: usize,
    pub enforce: bool,
    pub max_blksize: u16,
    pub max_windowsize: u16,
    pub allow_write: bool,
    pub max_transfers: usize,
}

const DEFAULT_MAX_BLKSIZE: u16 = 1468;
const DEFAULT_MAX_WINDOWSIZE: u16 = 64;
const DEFAULT_MAX_TRANSFERS: usize = 65_536;

/// Validates `[tftp]`.
pub(crate) fn validate(w: &wire::Tftp, server: &ServerSettings, v: &mut Validator) -> TftpSettings {
    let bind = v.bind("tftp.bind", w.bind.as_ref(), server.bind);
    let port = v.int("tftp.port", w.port, 69, 1, 65_535, "a UDP port") as u16;
    let workers = v.int(
        "tftp.workers",
        w.workers,
        server.workers as i64,
        0,
        1024,
        "the worker count (0 = one per core)",
    ) as usize;
    let max_blksize = v.int(
        "tftp.max_blksize",
        w.max_blksize,
        i64::from(DEFAULT_MAX_BLKSIZE),
        8,
        65_464,
        "the block size (RFC 2348)",
    ) as u16;
    let max_windowsize = v.int(
        "tftp.max_windowsize",
        w.max_windowsize,
        i64::from(DEFAULT_MAX_WINDOWSIZE),
        1,
        65_535,
        "the window size (RFC 7440)",
    ) as u16;
    let max_transfers = v.int(
        "tftp.max_transfers",
        w.max_transfers,
        DEFAULT_MAX_TRANSFERS as i64,
        1,
        10_000_000,
        "the transfer limit per worker",
    ) as usize;
    let root = match w.root.as_deref() {
        Some("") => {
            v.err(
                "tftp.root",
                "root is empty (leave it out to serve generated files only)",
            );
            None
        }
        r => r.map(PathBuf::from),
    };
    if w.allow_write == Some(true) && root.is_none() {
        v.err(
            "tftp.allow_write",
            "uploads go into the static root: set tftp.root too",
        );
    }
    TftpSettings {
        bind,
        port,
        root,
        workers,
        enforce: w.enforce.unwrap_or(true),
        max_blksize,
        max_windowsize,
        allow_write: w.allow_write.unwrap_or(false),
        max_transfers,
    }
}
