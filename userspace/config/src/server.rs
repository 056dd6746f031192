//! `[server]`: the DHCP server's listener, lease log and I/O path, and the defaults every other
//! role's listener inherits (`bind`, `workers`).

use std::net::Ipv4Addr;
use std::path::PathBuf;

use crate::parse::show;
use crate::validator::Validator;

/// The tables as written (see [`crate::wire`]).
pub mod wire {
    use serde::Deserialize;

    /// `[server]`
    #[derive(Debug, Clone, Default, Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct Server {
        pub server_id: Option<String>,
        pub bind: Option<String>,
        pub port: Option<i64>,
        pub workers: Option<i64>,
        pub lease_dir: Option<String>,
        pub offer_hold_secs: Option<i64>,
        pub offer_reuse_after_secs: Option<i64>,
        pub agent_new_clients_burst: Option<i64>,
        pub agent_new_clients_per_sec: Option<i64>,
        pub relay_new_clients_burst: Option<i64>,
        pub relay_new_clients_per_sec: Option<i64>,
        pub decline_quarantine_secs: Option<i64>,
        pub forget_after_secs: Option<i64>,
        pub compact_after_records: Option<i64>,
        pub log_format: Option<String>,
        pub io: Option<String>,
        pub xdp_interface: Option<String>,
        pub xdp_mode: Option<String>,
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}

impl LogFormat {
    pub fn as_str(self) -> &'static str {
        match self {
            LogFormat::Text => "text",
            LogFormat::Json => "json",
        }
    }
}

/// `[server]`
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerSettings {
    /// Option 54. `None`: the address of the interface the request arrived on.
    pub server_id: Option<Ipv4Addr>,
    pub bind: Ipv4Addr,
    pub port: u16,
    /// 0 = one per core.
    pub workers: usize,
    pub lease_dir: PathBuf,
    pub offer_hold_secs: u32,
    /// When a pool has no free address, an offer nobody took up within this long goes to the
    /// next client instead (an OFFER is no promise): DISCOVERs alone cannot pin a pool.
    pub offer_reuse_after_secs: u32,
    /// New clients (no lease yet) per relay agent's subscriber: by option 82 remote-id, else
    /// circuit-id. `burst` 0 turns the limit off.
    pub agent_limit: SourceLimit,
    /// New clients per relay (giaddr); off by default: a CMTS's whole plant reboots at once.
    pub relay_limit: SourceLimit,
    pub decline_quarantine_secs: u32,
    pub forget_after_secs: u32,
    pub compact_after_records: u64,
    pub log_format: LogFormat,
    /// Which I/O path serves DHCP (`auto`: XDP, then io_uring, then sockets).
    pub io: IoPath,
    /// The interface the XDP program attaches to; `None`: the one holding `bind`.
    pub xdp_interface: Option<String>,
    pub xdp_mode: XdpMode,
}

/// A token bucket: up to `burst` at once, refilled at `per_sec`; `burst` 0 is no limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SourceLimit {
    pub burst: u32,
    pub per_sec: u32,
}

impl SourceLimit {
    pub const OFF: SourceLimit = SourceLimit {
        burst: 0,
        per_sec: 0,
    };

    pub fn is_off(self) -> bool {
        self.burst == 0
    }
}

/// `server.io`: the DHCP I/O path; `Auto` tries each in order and logs why it settled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IoPath {
    Auto,
    Xdp,
    IoUring,
    Sockets,
}

impl IoPath {
    pub fn as_str(self) -> &'static str {
        match self {
            IoPath::Auto => "auto",
            IoPath::Xdp => "xdp",
            IoPath::IoUring => "io_uring",
            IoPath::Sockets => "sockets",
        }
    }
}

/// `server.xdp_mode`: how the XDP program attaches (`Auto`: driver mode, else generic).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum XdpMode {
    Auto,
    Native,
    Generic,
}

impl XdpMode {
    pub fn as_str(self) -> &'static str {
        match self {
            XdpMode::Auto => "auto",
            XdpMode::Native => "native",
            XdpMode::Generic => "generic",
        }
    }
}

/// Validates `[server]` (absent: an error, lease_dir is required).
pub(crate) fn validate(s: Option<wire::Server>, v: &mut Validator) -> ServerSettings {
    let s = s.unwrap_or_else(|| {
        v.err(
            "server",
            "the [server] table is missing (it must at least set lease_dir)",
        );
        wire::Server {
            lease_dir: Some("-".into()),
            ..Default::default()
        }
    });
    let server_id = v.opt_unicast("server.server_id", s.server_id.as_ref());
    let bind = v.bind("server.bind", s.bind.as_ref(), Ipv4Addr::UNSPECIFIED);
    let port = match s.port {
        None => 67,
        Some(0) => {
            v.err("server.port", "port 0 is not allowed");
            67
        }
        Some(p) => u16::try_from(p).unwrap_or_else(|_| {
            v.err("server.port", format!("{p} is not a UDP port (1..=65535)"));
            67
        }),
    };
    let workers = v.int(
        "server.workers",
        s.workers,
        0,
        0,
        4096,
        "workers (0 = one per core)",
    );
    let lease_dir = match &s.lease_dir {
        None => {
            v.err(
                "server.lease_dir",
                "is required: the directory of the durable lease log",
            );
            PathBuf::new()
        }
        Some(d) if d.trim().is_empty() => {
            v.err("server.lease_dir", "is empty");
            PathBuf::new()
        }
        Some(d) => PathBuf::from(d),
    };
    let offer_hold_secs = v.u32_secs("server.offer_hold_secs", s.offer_hold_secs, 30, 1);
    let offer_reuse_after_secs = v.u32_secs(
        "server.offer_reuse_after_secs",
        s.offer_reuse_after_secs,
        2,
        0,
    );
    let mut limit = |name: &str, burst: Option<i64>, per_sec: Option<i64>, default: SourceLimit| {
        let burst = v.int(
            &format!("server.{name}_new_clients_burst"),
            burst,
            default.burst.into(),
            0,
            1_000_000,
            "clients (0 = no limit)",
        );
        let per_sec = v.int(
            &format!("server.{name}_new_clients_per_sec"),
            per_sec,
            default.per_sec.into(),
            0,
            1_000_000,
            "clients per second",
        );
        SourceLimit {
            burst: u32::try_from(burst).unwrap_or(0),
            per_sec: u32::try_from(per_sec).unwrap_or(0),
        }
    };
    // A cable modem and the CPEs behind it share the remote-id (the modem's MAC): 32 at once
    // and one a second more is far above any MaxCPE and far below a pool.
    let agent_limit = limit(
        "agent",
        s.agent_new_clients_burst,
        s.agent_new_clients_per_sec,
        SourceLimit {
            burst: 32,
            per_sec: 1,
        },
    );
    let relay_limit = limit(
        "relay",
        s.relay_new_clients_burst,
        s.relay_new_clients_per_sec,
        SourceLimit::OFF,
    );
    let decline_quarantine_secs = v.u32_secs(
        "server.decline_quarantine_secs",
        s.decline_quarantine_secs,
        600,
        0,
    );
    let forget_after_secs = v.u32_secs("server.forget_after_secs", s.forget_after_secs, 86_400, 0);
    let compact_after_records = v.int(
        "server.compact_after_records",
        s.compact_after_records,
        200_000,
        1,
        i64::MAX,
        "records",
    );
    let log_format = match s.log_format.as_deref() {
        None | Some("text") => LogFormat::Text,
        Some("json") => LogFormat::Json,
        Some(other) => {
            v.err(
                "server.log_format",
                format!(
                    "{} is not a log format (expected \"text\" or \"json\")",
                    show(other)
                ),
            );
            LogFormat::Text
        }
    };
    let io = match s.io.as_deref() {
        None | Some("auto") => IoPath::Auto,
        Some("xdp") => IoPath::Xdp,
        Some("io_uring") => IoPath::IoUring,
        Some("sockets") => IoPath::Sockets,
        Some(other) => {
            v.err(
                "server.io",
                format!(
                    "{} is not an I/O path (expected \"auto\", \"xdp\", \"io_uring\" or \"sockets\")",
                    show(other)
                ),
            );
            IoPath::Auto
        }
    };
    let xdp_mode = match s.xdp_mode.as_deref() {
        None | Some("auto") => XdpMode::Auto,
        Some("native") => XdpMode::Native,
        Some("generic") => XdpMode::Generic,
        Some(other) => {
            v.err(
                "server.xdp_mode",
                format!(
                    "{} is not an XDP mode (expected \"auto\", \"native\" or \"generic\")",
                    show(other)
                ),
            );
            XdpMode::Auto
        }
    };
    let xdp_interface = match s.xdp_interface {
        Some(n) if n.is_empty() || n.len() > 15 || n.contains(['/', ' ']) => {
            v.err(
                "server.xdp_interface",
                format!(
                    "{} is not an interface name (1 to 15 characters, no '/' or space)",
                    show(&n)
                ),
            );
            None
        }
        n => n,
    };
    ServerSettings {
        server_id,
        bind,
        port,
        workers: usize::try_from(workers).unwrap_or(0),
        lease_dir,
        offer_hold_secs,
        offer_reuse_after_secs,
        agent_limit,
        relay_limit,
        decline_quarantine_secs,
        forget_after_secs,
        compact_after_records: u64::try_from(compact_after_records).unwrap_or(200_000),
        log_format,
        io,
        xdp_interface,
        xdp_mode,
    }
}

impl ServerSettings {
    /// What a role validated on its own (`AcsSettings::from_toml`, ...) inherits: the values
    /// of an empty `[server]` table, without a lease directory.
    pub(crate) fn defaults() -> ServerSettings {
        let mut v = Validator::default();
        validate(
            Some(wire::Server {
                lease_dir: Some(String::new()),
                ..wire::Server::default()
            }),
            &mut v,
        )
    }
}
