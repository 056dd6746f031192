//! provd-config: operator policy.
//!
//! A TOML file is deserialised into the [`wire`] structs (exactly what the file says; unknown
//! keys are errors) and then validated into a [`Policy`] (`Policy::try_from(wire::Config)`),
//! the immutable structure the DHCP engine reads on the hot path. Validation collects **all**
//! errors, each naming the field path (`shared_network[0].subnet[1].pool[0].end`) and what is
//! wrong, so a refused config or reload can be fixed in one pass. Deserialisation errors (bad
//! TOML, wrong value types, unknown keys) name the path too, via `serde_path_to_error`, and
//! carry the line and column.
//!
//! Option values are typed here (`Ipv4Addr`, strings, enums); encoding them into DHCP options
//! is the engine's job. This crate depends on no other provd crate but `provd-profile-rule` (a leaf:
//! profile rules are parsed and checked against the profile path at load).
//!
//! # Schema
//!
//! ```toml
//! [server]
//! server_id = "198.18.0.1"        # optional; option 54 (default: receiving interface address)
//! bind = "0.0.0.0"                # optional
//! port = 67                       # optional, 1..=65535
//! workers = 0                     # optional, 0 = one per core
//! lease_dir = "/var/lib/provd"    # required
//! offer_hold_secs = 30            # optional, >= 1
//! offer_reuse_after_secs = 2      # optional; a pool out of addresses re-offers offers older
//! agent_new_clients_burst = 32    # optional; new clients per option 82 remote-id (else
//! agent_new_clients_per_sec = 1   #   circuit-id): a token bucket, burst 0 = no limit
//! relay_new_clients_burst = 0     # optional; the same per relay (giaddr), off by default
//! relay_new_clients_per_sec = 0
//! decline_quarantine_secs = 600   # optional
//! forget_after_secs = 86400       # optional
//! compact_after_records = 200000  # optional, >= 1
//! log_format = "text"             # optional, "text" | "json"
//! io = "auto"                     # optional, "auto" | "xdp" | "io_uring" | "sockets"
//! xdp_interface = "eth0"          # optional; default: the interface holding `bind`
//! xdp_mode = "auto"               # optional, "auto" | "native" | "generic"
//!
//! [lease]                         # optional
//! default_time = 86400            # >= 60
//! t1_ratio = 0.5                  # 0 < t1 < t2 < 1
//! t2_ratio = 0.875
//!
//! [[class]]                       # ordered: first match on option 60 wins; with no [[class]]
//!                                 # at all, one class "default" matches every client
//! name = "cm"
//! match = "docsis*"               # '*' any run, '?' one byte; "*" also matches no option 60.
//!                                 # Without match the class is only reachable by reservation.
//! lease_time = 604800
//! next_server = "10.0.0.10"       # siaddr
//! boot_file = "cm/{mac}.cfg"      # {mac} {MAC} {mac:}
//! tftp_server = "tftp.example.net"  # option 66: IPv4 literal or host name
//! time_servers = ["10.0.0.5"]     # option 4
//! log_servers = ["10.0.0.6"]      # option 7
//! time_offset = -18000            # option 2, within ±86400
//! dns_servers = ["10.0.0.3"]      # option 6
//! domain_name = "example.net"     # option 15
//! provisioning_server = "prov.example.net"  # 122.3: IPv4 literal or FQDN
//! flow = "BASIC.1"                # 122.6: BASIC.1 BASIC.2 HYBRID.1 HYBRID.2 ...
//! # realm = "REALM.COM"           # ... or a Kerberos realm (SECURE); not both
//! primary_dhcp = "10.0.0.2"       # 122.1
//! secondary_dhcp = "10.0.0.3"     # 122.2
//! provisioning_timer = 10         # 122.8, minutes 0..=255
//! kdc_servers = ["10.0.0.7"]      # 122.10
//! acs_url = "http://acs.example.net:7547/"  # 43.1
//! provisioning_code = "ABC"       # 43.2
//!
//! [[shared_network]]
//! name = "cmts1-bundle1"
//! relays = ["10.1.0.1"]           # giaddr values, each in one network only
//! interfaces = []                 # local addresses for direct clients
//!   [[shared_network.subnet]]
//!   prefix = "10.1.0.0/24"        # /8../30, a network address; subnets never overlap
//!   routers = ["10.1.0.1"]        # inside the prefix, outside every pool
//!   classes = ["cm"]              # empty/absent = all classes
//!   lease_time = 3600             # subnet beats class beats [lease]
//!     [[shared_network.subnet.pool]]
//!     start = "10.1.0.10"         # inclusive; inside the prefix, not network/broadcast,
//!     end = "10.1.0.250"          # no overlap with any other pool
//!
//! [[reservation]]                 # exactly one of mac / remote_id
//! mac = "00:15:cf:12:34:56"       # aa:bb:.., aa-bb-.., aabbccddeeff, aabb.ccdd.eeff
//! # remote_id = "00:15:cf:12:34:56" or "text:ascii-id"   (option 82.2)
//! address = "10.1.0.5"            # inside some subnet, unique
//! class = "cm"                    # optional
//! boot_file = "special.cfg"       # optional
//! ```
//!
//! Each role's tables are validated in its own module, with one validator style: `server`,
//! `dhcp` (the tables above but `[server]`), `tftp` ([`TftpSettings`]), `files`
//! (`[class.config_file]`, `[vars]`, `[[subscriber]]`: [`ConfigFileSpec`]), `syslog`, `time`,
//! `mta`, `http` (`[http]`, `[class.profile]`, `[[upgrade_rule]]`: [`ProfileSpec`]) and
//! [`acs`]. One role's settings can be read on their own, without a DHCP network, e.g.
//! [`AcsSettings::from_toml`].
//!
//! Routers, relays interface addresses and the server id must not lie inside any pool (they
//! would be leased to clients), and a reservation may not take one of them.

// Modules in three layers; uses point down only (no cycles: `module_graph` checks).
// Shared pieces, used by every role.
mod bootfile;
mod control;
mod error;
mod glob;
mod parse;
mod validator;
// One module per role: its wire form, its validation and its settings. A role uses `server`
// for the defaults it inherits; `dhcp`'s classes use `files` and `http` for their tables.
pub mod acs;
mod dhcp;
mod files;
mod http;
mod mta;
mod server;
mod syslog;
mod tftp;
mod time;
// The whole file, the assembled policy and the checks across roles, and views of it.
mod describe;
mod policy;
mod sections;
#[cfg(feature = "testing")]
pub mod testing;
pub mod wire;

#[cfg(test)]
mod module_graph;

pub use acs::{AcsAuth, AcsSettings, Campaign, DesiredValue, DeviceMatch, Firmware, Preset};
pub use bootfile::{BootFile, MAX_BOOT_FILE_LEN};
pub use control::{ApiSettings, ResetSettings, StoreBackend, StoreSettings};
pub use dhcp::{
    CableLabsOptions, Class, ClassId, DEFAULT_CLASS, LeaseDefaults, MAX_TIME_OFFSET,
    MIN_LEASE_SECS, Pool, ProvisioningFlow, ProvisioningServer, Realm, Reservation, ReservationKey,
    SharedNetwork, Subnet,
};
pub use error::{ConfigError, ConfigErrors};
pub use files::{ConfigFileKind, ConfigFileSpec, MtaHashAlg, Subscribers, VarValue, Vars};
pub use glob::Glob;
pub use http::{
    ClientAuthMode, HttpSettings, HttpsSettings, ProfileFormat, ProfileSpec, RuleOption,
    UpgradeRule, WireHttp, WireProfile, WireUpgradeRule,
};
pub use mta::MtaSettings;
pub use policy::Policy;
pub use server::{IoPath, LogFormat, ServerSettings, SourceLimit, XdpMode};
pub use syslog::SyslogSettings;
pub use tftp::TftpSettings;
pub use time::TimeSettings;
