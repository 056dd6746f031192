//! The validated, immutable policy the DHCP engine reads.

use std::fmt::Write as _;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};

use foldhash::HashMap;

use crate::error::{ConfigError, ConfigErrors};
use crate::files::{
    ConfigFileKind, ConfigFileSpec, MtaSettings, Subscribers, SyslogSettings, TftpSettings,
    TimeSettings, Vars,
};
use crate::{BootFile, Glob};

/// Index of a [`Class`] in [`Policy::classes`].
pub type ClassId = u16;

/// The whole validated policy. Built only by [`Policy::from_toml_str`], [`Policy::from_file`]
/// or `Policy::try_from(wire::Config)`, so every invariant listed in the crate docs holds.
/// The fields are public for reading; the lookup indexes are private and built from them at
/// validation, so treat a `Policy` as immutable (share it behind an `Arc`, swap on reload).
#[derive(Debug, Clone)]
pub struct Policy {
    pub server: ServerSettings,
    pub lease: LeaseDefaults,
    /// In config order: classification is first match.
    pub classes: Vec<Class>,
    pub networks: Vec<SharedNetwork>,
    pub reservations: Vec<Reservation>,
    /// `[tftp]`; `None`: no TFTP server.
    pub tftp: Option<TftpSettings>,
    /// `[syslog]`; `None`: no syslog receiver.
    pub syslog: Option<SyslogSettings>,
    /// `[time]`; `None`: no RFC 868 time server.
    pub time: Option<TimeSettings>,
    /// `[mta]`; `None`: no PacketCable provisioning server role.
    pub mta: Option<MtaSettings>,
    /// `[acs]`; `None`: no TR-069 ACS.
    pub acs: Option<crate::acs::AcsSettings>,
    /// `[vars]`: operator variables for config-file templates.
    pub vars: Vars,
    /// `[[subscriber]]`: per-device template variables.
    pub subscribers: Subscribers,
    /// `[http]`; `None`: no profile/firmware server.
    pub http: Option<crate::HttpSettings>,
    /// `[[upgrade_rule]]`, in config order.
    pub upgrade_rules: Vec<crate::UpgradeRule>,
    pub(crate) index: Index,
}

/// Lookup tables built at validation.
#[derive(Debug, Clone, Default)]
pub(crate) struct Index {
    pub relays: HashMap<Ipv4Addr, usize>,
    pub interfaces: HashMap<Ipv4Addr, usize>,
    /// Subnet ranges (first, last, network index), sorted by `first`; subnets never overlap.
    pub prefixes: Vec<(u32, u32, usize)>,
    /// `(network, subnet, pool)` indexes, by pool id.
    pub pools: Vec<(usize, usize, usize)>,
    pub by_mac: HashMap<[u8; 6], usize>,
    pub by_remote_id: HashMap<Box<[u8]>, usize>,
    pub by_address: HashMap<Ipv4Addr, usize>,
    /// First class whose match is `*`: the class of a client without option 60.
    pub catch_all: Option<ClassId>,
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

/// `[lease]`: `0 < t1_ratio < t2_ratio < 1`, `default_time >= 60`.
#[derive(Debug, Clone, PartialEq)]
pub struct LeaseDefaults {
    pub default_time: u32,
    pub t1_ratio: f64,
    pub t2_ratio: f64,
}

impl LeaseDefaults {
    /// T1 (option 58) for a lease of `lease` seconds.
    pub fn t1(&self, lease: u32) -> u32 {
        scale(lease, self.t1_ratio)
    }

    /// T2 (option 59) for a lease of `lease` seconds.
    pub fn t2(&self, lease: u32) -> u32 {
        scale(lease, self.t2_ratio)
    }
}

fn scale(lease: u32, ratio: f64) -> u32 {
    if lease == u32::MAX {
        // RFC 2131: 0xffffffff is an infinite lease, and so are its timers.
        return u32::MAX;
    }
    // The ratio is in (0, 1), so the product fits; `as` saturates anyway.
    (f64::from(lease) * ratio) as u32
}

/// `[[class]]`: what a device class gets. Option values are typed; the engine encodes them.
#[derive(Debug, Clone, PartialEq)]
pub struct Class {
    pub name: String,
    /// Option 60 glob. [`Glob::never`] if the class has no `match` (reservation-only class).
    pub matcher: Glob,
    pub lease_time: Option<u32>,
    /// `siaddr`.
    pub next_server: Option<Ipv4Addr>,
    /// The `file` field.
    pub boot_file: Option<BootFile>,
    /// Option 66.
    pub tftp_server: Option<String>,
    /// Option 4.
    pub time_servers: Vec<Ipv4Addr>,
    /// Option 7.
    pub log_servers: Vec<Ipv4Addr>,
    /// Option 2, within ±86400.
    pub time_offset: Option<i32>,
    /// Option 6.
    pub dns_servers: Vec<Ipv4Addr>,
    /// Option 15.
    pub domain_name: Option<String>,
    /// Option 122.
    pub cablelabs: CableLabsOptions,
    /// Option 43 sub-option 1 (TR-069 ACS URL).
    pub acs_url: Option<String>,
    /// Option 43 sub-option 2 (TR-069 provisioning code).
    pub provisioning_code: Option<String>,
    /// The class's `boot_file` is generated per device from this.
    pub config_file: Option<ConfigFileSpec>,
    /// `[class.profile]`: VoIP profiles over HTTP(S), and the DHCP options pointing there.
    pub profile: Option<crate::ProfileSpec>,
}

/// Option 122 (CableLabs Client Configuration) values of a class.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CableLabsOptions {
    /// 122.1 (sent to CMs).
    pub primary_dhcp: Option<Ipv4Addr>,
    /// 122.2 (sent to CMs).
    pub secondary_dhcp: Option<Ipv4Addr>,
    /// 122.3.
    pub provisioning_server: Option<ProvisioningServer>,
    /// 122.6: a provisioning flow name or a Kerberos realm (SECURE flow).
    pub realm: Option<Realm>,
    /// 122.8, minutes.
    pub provisioning_timer: Option<u8>,
    /// 122.10.
    pub kdc_servers: Vec<Ipv4Addr>,
}

impl CableLabsOptions {
    pub fn is_empty(&self) -> bool {
        *self == CableLabsOptions::default()
    }
}

/// 122.3 value: type 0 (FQDN, validated LDH labels) or type 1 (IPv4).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProvisioningServer {
    Fqdn(String),
    Ipv4(Ipv4Addr),
}

/// 122.6 value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Realm {
    /// A reserved name selecting a non-Kerberos flow.
    Flow(ProvisioningFlow),
    /// A Kerberos realm: SECURE flow. Labels are 1..=63 bytes of printable ASCII.
    Kerberos(String),
}

impl Realm {
    /// The realm string to encode as DNS labels in 122.6.
    pub fn as_str(&self) -> &str {
        match self {
            Realm::Flow(f) => f.as_str(),
            Realm::Kerberos(r) => r,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProvisioningFlow {
    Basic1,
    Basic2,
    Hybrid1,
    Hybrid2,
}

impl ProvisioningFlow {
    pub const ALL: [ProvisioningFlow; 4] = [
        ProvisioningFlow::Basic1,
        ProvisioningFlow::Basic2,
        ProvisioningFlow::Hybrid1,
        ProvisioningFlow::Hybrid2,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ProvisioningFlow::Basic1 => "BASIC.1",
            ProvisioningFlow::Basic2 => "BASIC.2",
            ProvisioningFlow::Hybrid1 => "HYBRID.1",
            ProvisioningFlow::Hybrid2 => "HYBRID.2",
        }
    }

    /// Parses the exact (upper-case) config spelling.
    pub fn from_name(s: &str) -> Option<ProvisioningFlow> {
        Self::ALL.into_iter().find(|f| f.as_str() == s)
    }
}

/// `[[shared_network]]`: a CMTS bundle, selected by relay (giaddr) or local interface.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SharedNetwork {
    pub name: String,
    pub relays: Vec<Ipv4Addr>,
    pub interfaces: Vec<Ipv4Addr>,
    /// At least one.
    pub subnets: Vec<Subnet>,
}

/// `[[shared_network.subnet]]`. Prefixes are /8../30 network addresses and never overlap.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subnet {
    pub prefix: Ipv4Addr,
    pub prefix_len: u8,
    /// Option 3; inside the prefix, outside every pool.
    pub routers: Vec<Ipv4Addr>,
    /// Classes allowed to get addresses here; empty = all classes (and unclassified clients).
    pub classes: Vec<ClassId>,
    pub lease_time: Option<u32>,
    pub pools: Vec<Pool>,
}

impl Subnet {
    pub fn mask(&self) -> Ipv4Addr {
        Ipv4Addr::from(crate::parse::mask_bits(self.prefix_len))
    }

    pub fn contains(&self, a: Ipv4Addr) -> bool {
        u32::from(a) & crate::parse::mask_bits(self.prefix_len) == u32::from(self.prefix)
    }

    pub fn broadcast(&self) -> Ipv4Addr {
        Ipv4Addr::from(u32::from(self.prefix) | !crate::parse::mask_bits(self.prefix_len))
    }

    /// May a client of `class` get an address here?
    pub fn allows(&self, class: ClassId) -> bool {
        self.classes.is_empty() || self.classes.contains(&class)
    }

    /// May a client that matched no class get an address here? Only if the subnet has no
    /// class restriction.
    pub fn allows_unclassified(&self) -> bool {
        self.classes.is_empty()
    }

    /// [`Subnet::allows`] or [`Subnet::allows_unclassified`].
    pub fn allows_opt(&self, class: Option<ClassId>) -> bool {
        match class {
            Some(c) => self.allows(c),
            None => self.allows_unclassified(),
        }
    }
}

impl std::fmt::Display for Subnet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.prefix, self.prefix_len)
    }
}

/// `[[shared_network.subnet.pool]]`: inclusive range inside its subnet, excluding the network
/// and broadcast addresses, overlapping no other pool.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pool {
    /// Global, `0..` in config order; also the index in [`Policy::pools`].
    pub id: u16,
    pub start: Ipv4Addr,
    pub end: Ipv4Addr,
}

impl Pool {
    pub fn contains(&self, a: Ipv4Addr) -> bool {
        (self.start..=self.end).contains(&a)
    }

    /// Number of addresses (reserved ones included).
    pub fn size(&self) -> u32 {
        (u32::from(self.end) - u32::from(self.start)).saturating_add(1)
    }
}

/// What a reservation is keyed on.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum ReservationKey {
    /// Client hardware address (chaddr).
    Mac([u8; 6]),
    /// Option 82.2 Agent Remote ID bytes.
    RemoteId(Box<[u8]>),
}

/// `[[reservation]]`: a fixed address. The address is inside some subnet's prefix and unique;
/// it may be inside a pool, in which case the engine must not give it to anyone else
/// ([`Policy::is_reserved`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reservation {
    pub key: ReservationKey,
    pub address: Ipv4Addr,
    /// Forced class, overriding option 60 classification.
    pub class: Option<ClassId>,
    /// Overrides the class boot file.
    pub boot_file: Option<BootFile>,
}

impl Policy {
    /// Parses and validates a TOML document.
    pub fn from_toml_str(s: &str) -> Result<Policy, ConfigErrors> {
        let de = toml::Deserializer::new(s);
        let wire: crate::wire::Config = serde_path_to_error::deserialize(de)
            .map_err(|e| ConfigErrors::from(crate::error::from_serde(e, s)))?;
        Policy::try_from(wire)
    }

    /// Reads, parses and validates a TOML file. A read failure is a single error whose path is
    /// the file name.
    pub fn from_file(path: &Path) -> Result<Policy, ConfigErrors> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            ConfigError::new(
                path.display().to_string(),
                format!("cannot read config file: {e}"),
            )
        })?;
        let mut policy = Policy::from_toml_str(&text)?;
        if let Some(dir) = path.parent() {
            policy.resolve_paths(dir);
        }
        Ok(policy)
    }

    /// Makes relative file paths (TFTP root, templates) relative to `dir`, the config file's
    /// directory, so that a config means the same thing from any working directory.
    pub fn resolve_paths(&mut self, dir: &Path) {
        let fix = |p: &mut PathBuf| {
            if p.is_relative() {
                *p = dir.join(&*p);
            }
        };
        if let Some(root) = self.tftp.as_mut().and_then(|t| t.root.as_mut()) {
            fix(root);
        }
        for c in &mut self.classes {
            if let Some(cf) = &mut c.config_file {
                fix(&mut cf.template);
            }
            if let Some(pf) = &mut c.profile {
                fix(&mut pf.template);
            }
        }
        if let Some(h) = &mut self.http {
            if let Some(d) = &mut h.firmware_dir {
                fix(d);
            }
            if let Some(s) = &mut h.https {
                fix(&mut s.cert);
                fix(&mut s.key);
                if let Some(ca) = &mut s.client_ca {
                    fix(ca);
                }
            }
        }
    }

    /// The first class whose `match` glob matches option 60. A client that sent no option 60
    /// gets the first class whose match is `*`, if any. `None`: unclassified.
    #[inline]
    pub fn classify(&self, vendor_class: Option<&[u8]>) -> Option<ClassId> {
        match vendor_class {
            None => self.index.catch_all,
            Some(v) => self
                .classes
                .iter()
                .position(|c| c.matcher.matches(v))
                .and_then(|i| ClassId::try_from(i).ok()),
        }
    }

    /// # Panics
    /// If `id` did not come from this policy.
    pub fn class(&self, id: ClassId) -> &Class {
        &self.classes[usize::from(id)]
    }

    /// Looks a class up by name.
    pub fn class_id(&self, name: &str) -> Option<ClassId> {
        self.classes
            .iter()
            .position(|c| c.name == name)
            .and_then(|i| ClassId::try_from(i).ok())
    }

    /// The shared network a relay (giaddr) belongs to. O(1).
    #[inline]
    pub fn network_for_relay(&self, giaddr: Ipv4Addr) -> Option<usize> {
        self.index.relays.get(&giaddr).copied()
    }

    /// The shared network for a direct (non-relayed) client that arrived on local address
    /// `local`: a network listing it in `interfaces`, else the network with a subnet whose
    /// prefix contains it.
    pub fn network_for_interface(&self, local: Ipv4Addr) -> Option<usize> {
        match self.index.interfaces.get(&local) {
            Some(&n) => Some(n),
            None => self.network_containing(local),
        }
    }

    /// The shared network with a subnet whose prefix contains `addr` (prefixes never overlap).
    /// This is how a unicast RENEW or INFORM (no relay, ciaddr set) finds its network.
    pub fn network_containing(&self, addr: Ipv4Addr) -> Option<usize> {
        let a = u32::from(addr);
        let p = &self.index.prefixes;
        let i = p.partition_point(|&(first, _, _)| first <= a);
        let &(_, last, net) = p.get(i.checked_sub(1)?)?;
        (a <= last).then_some(net)
    }

    /// # Panics
    /// If `idx` did not come from this policy.
    pub fn network(&self, idx: usize) -> &SharedNetwork {
        &self.networks[idx]
    }

    /// All pools, in id order.
    pub fn pools(&self) -> impl ExactSizeIterator<Item = &Pool> + '_ {
        self.index
            .pools
            .iter()
            .map(|&(n, s, p)| &self.networks[n].subnets[s].pools[p])
    }

    /// The pool with this id.
    pub fn pool(&self, pool_id: u16) -> Option<&Pool> {
        let &(n, s, p) = self.index.pools.get(usize::from(pool_id))?;
        Some(&self.networks[n].subnets[s].pools[p])
    }

    /// Number of pools (ids are `0..pool_count()`).
    pub fn pool_count(&self) -> usize {
        self.index.pools.len()
    }

    /// # Panics
    /// If `pool_id` did not come from this policy.
    pub fn subnet_of_pool(&self, pool_id: u16) -> (&SharedNetwork, &Subnet) {
        let (n, s, _) = self.index.pools[usize::from(pool_id)];
        let net = &self.networks[n];
        (net, &net.subnets[s])
    }

    /// Network index of the pool's shared network.
    ///
    /// # Panics
    /// If `pool_id` did not come from this policy.
    pub fn network_of_pool(&self, pool_id: u16) -> usize {
        self.index.pools[usize::from(pool_id)].0
    }

    /// The subnet of network `net` whose prefix contains `addr`.
    pub fn subnet_containing(&self, net: usize, addr: Ipv4Addr) -> Option<&Subnet> {
        self.networks
            .get(net)?
            .subnets
            .iter()
            .find(|s| s.contains(addr))
    }

    #[inline]
    pub fn reservation_by_mac(&self, mac: &[u8; 6]) -> Option<&Reservation> {
        self.index.by_mac.get(mac).map(|&i| &self.reservations[i])
    }

    #[inline]
    pub fn reservation_by_remote_id(&self, remote_id: &[u8]) -> Option<&Reservation> {
        self.index
            .by_remote_id
            .get(remote_id)
            .map(|&i| &self.reservations[i])
    }

    /// The reservation holding `addr`, if any.
    #[inline]
    pub fn reservation_for_address(&self, addr: Ipv4Addr) -> Option<&Reservation> {
        self.index
            .by_address
            .get(&addr)
            .map(|&i| &self.reservations[i])
    }

    /// True if `addr` is reserved for some client (pool allocation must skip it).
    #[inline]
    pub fn is_reserved(&self, addr: Ipv4Addr) -> bool {
        self.index.by_address.contains_key(&addr)
    }

    /// Lease time: subnet override, else class override, else `[lease] default_time`.
    pub fn lease_time_for(&self, class: ClassId, subnet: &Subnet) -> u32 {
        self.lease_time(Some(class), subnet)
    }

    /// [`Policy::lease_time_for`] for a possibly unclassified client.
    pub fn lease_time(&self, class: Option<ClassId>, subnet: &Subnet) -> u32 {
        subnet
            .lease_time
            .or_else(|| class.and_then(|c| self.classes.get(usize::from(c))?.lease_time))
            .unwrap_or(self.lease.default_time)
    }

    /// Human summary for `provd check-config`.
    pub fn describe(&self) -> String {
        let mut o = String::new();
        // Writing to a String cannot fail.
        let _ = self.describe_into(&mut o);
        o
    }

    fn describe_into(&self, o: &mut String) -> std::fmt::Result {
        let s = &self.server;
        writeln!(o, "server:")?;
        writeln!(o, "  listen {}:{}", s.bind, s.port)?;
        match s.server_id {
            Some(id) => writeln!(o, "  server id {id}")?,
            None => writeln!(o, "  server id: address of the receiving interface")?,
        }
        if s.workers == 0 {
            writeln!(o, "  workers: one per core")?;
        } else {
            writeln!(o, "  workers: {}", s.workers)?;
        }
        writeln!(
            o,
            "  lease log {} (compact after {} records)",
            s.lease_dir.display(),
            s.compact_after_records
        )?;
        writeln!(
            o,
            "  offer hold {} s, decline quarantine {} s, forget after {} s, log format {}",
            s.offer_hold_secs,
            s.decline_quarantine_secs,
            s.forget_after_secs,
            s.log_format.as_str()
        )?;
        writeln!(
            o,
            "  io path {}, xdp interface {}, xdp mode {}",
            s.io.as_str(),
            s.xdp_interface
                .as_deref()
                .unwrap_or("(the one holding bind)"),
            s.xdp_mode.as_str()
        )?;
        writeln!(
            o,
            "lease: default {}, T1 {} x, T2 {} x",
            secs(self.lease.default_time),
            self.lease.t1_ratio,
            self.lease.t2_ratio
        )?;

        match &self.tftp {
            None => writeln!(o, "tftp: off")?,
            Some(t) => {
                writeln!(o, "tftp:")?;
                writeln!(o, "  listen {}:{}", t.bind, t.port)?;
                match &t.root {
                    Some(r) => writeln!(o, "  static files from {}", r.display())?,
                    None => writeln!(o, "  no static files (generated files only)")?,
                }
                writeln!(
                    o,
                    "  generated files {}",
                    if t.enforce {
                        "only to the device's leased address (enforce)"
                    } else {
                        "to any address (enforce off)"
                    }
                )?;
                writeln!(
                    o,
                    "  blksize <= {}, windowsize <= {}, <= {} transfers per worker, uploads {}",
                    t.max_blksize,
                    t.max_windowsize,
                    t.max_transfers,
                    if t.allow_write { "allowed" } else { "refused" }
                )?;
            }
        }
        match &self.syslog {
            None => writeln!(o, "syslog: off")?,
            Some(s) => writeln!(
                o,
                "syslog: listen {}:{} (UDP), last {} events per device, at most {} devices",
                s.bind, s.port, s.events_per_device, s.max_devices
            )?,
        }
        match &self.time {
            None => writeln!(o, "time (RFC 868): off")?,
            Some(t) => writeln!(
                o,
                "time (RFC 868): listen {}:{}{}{}",
                t.bind,
                t.port,
                if t.udp { " UDP" } else { "" },
                if t.tcp { " TCP" } else { "" }
            )?,
        }
        match &self.acs {
            None => writeln!(o, "acs (TR-069): off")?,
            Some(a) => writeln!(
                o,
                "acs (TR-069): CWMP on {}:{}{:?}{}, auth {:?}, {} preset(s), {} campaign(s), task API on {}:{}",
                a.bind,
                a.port,
                a.extra_ports,
                a.tls
                    .as_ref()
                    .map(|(p, _, _)| format!(", HTTPS on {p}"))
                    .unwrap_or_default(),
                a.auth,
                a.presets.len(),
                a.campaigns.len(),
                a.admin_bind,
                a.admin_port
            )?,
        }
        match &self.mta {
            None => writeln!(o, "mta provisioning (SNMP): off")?,
            Some(m) => writeln!(
                o,
                "mta provisioning (SNMP): INFORMs on {}:{} (communities {}), SET community {:?}{}",
                m.bind,
                m.port,
                m.inform_communities.join(", "),
                m.set_community,
                if m.get_capabilities {
                    ", capabilities read first"
                } else {
                    ""
                }
            )?,
        }
        if !self.vars.is_empty() || !self.subscribers.is_empty() {
            writeln!(
                o,
                "template variables: {} in [vars], {} subscribers",
                self.vars.len(),
                self.subscribers.len()
            )?;
        }

        writeln!(
            o,
            "classes ({}, first match on option 60 wins):",
            self.classes.len()
        )?;
        if self.classes.is_empty() {
            writeln!(o, "  (none: every client is unclassified)")?;
        }
        for (i, c) in self.classes.iter().enumerate() {
            if c.matcher.is_never() {
                writeln!(o, "  [{i}] {} (no match: reservations only)", c.name)?;
            } else {
                writeln!(o, "  [{i}] {} match {:?}", c.name, c.matcher.as_str())?;
            }
            for line in class_lines(c) {
                writeln!(o, "      {line}")?;
            }
        }
        match self.index.catch_all {
            Some(id) => writeln!(
                o,
                "  clients without option 60 get class {}",
                self.class(id).name
            )?,
            None => writeln!(o, "  clients without option 60 are unclassified")?,
        }

        let (mut nsub, mut total) = (0usize, 0u64);
        let mut reserved_addrs: Vec<Ipv4Addr> =
            self.reservations.iter().map(|r| r.address).collect();
        reserved_addrs.sort_unstable();
        writeln!(o, "shared networks ({}):", self.networks.len())?;
        for (ni, n) in self.networks.iter().enumerate() {
            writeln!(o, "  [{ni}] {}", n.name)?;
            writeln!(o, "      relays: {}", addrs(&n.relays, "none"))?;
            if !n.interfaces.is_empty() {
                writeln!(o, "      interfaces: {}", addrs(&n.interfaces, "none"))?;
            }
            for sn in &n.subnets {
                nsub += 1;
                write!(o, "      subnet {sn} mask {}", sn.mask())?;
                if !sn.routers.is_empty() {
                    write!(o, " routers {}", addrs(&sn.routers, ""))?;
                }
                writeln!(o)?;
                let classes = if sn.classes.is_empty() {
                    "all".to_owned()
                } else {
                    let names: Vec<&str> = sn
                        .classes
                        .iter()
                        .map(|&c| self.class(c).name.as_str())
                        .collect();
                    names.join(", ")
                };
                write!(o, "        classes: {classes}")?;
                if let Some(t) = sn.lease_time {
                    write!(o, "; lease {}", secs(t))?;
                }
                writeln!(o)?;
                if sn.pools.is_empty() {
                    writeln!(o, "        no pools (reservations only)")?;
                }
                for p in &sn.pools {
                    let reserved = reserved_addrs.partition_point(|a| *a <= p.end)
                        - reserved_addrs.partition_point(|a| *a < p.start);
                    total += u64::from(p.size());
                    write!(
                        o,
                        "        pool #{} {}-{}: {} addresses",
                        p.id,
                        p.start,
                        p.end,
                        p.size()
                    )?;
                    if reserved > 0 {
                        write!(o, " ({reserved} reserved)")?;
                    }
                    writeln!(o)?;
                }
            }
        }
        let by_mac = self
            .reservations
            .iter()
            .filter(|r| matches!(r.key, ReservationKey::Mac(_)))
            .count();
        writeln!(
            o,
            "reservations: {} ({} by MAC, {} by remote id)",
            self.reservations.len(),
            by_mac,
            self.reservations.len() - by_mac
        )?;
        writeln!(
            o,
            "total: {} shared networks, {} subnets, {} pools, {} pool addresses",
            self.networks.len(),
            nsub,
            self.pool_count(),
            total
        )
    }
}

fn secs(t: u32) -> String {
    if t == u32::MAX {
        "infinite".into()
    } else if t.is_multiple_of(86400) {
        format!("{t} s ({} d)", t / 86400)
    } else if t.is_multiple_of(3600) {
        format!("{t} s ({} h)", t / 3600)
    } else {
        format!("{t} s")
    }
}

fn addrs(v: &[Ipv4Addr], empty: &str) -> String {
    if v.is_empty() {
        return empty.to_owned();
    }
    v.iter()
        .map(Ipv4Addr::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

/// What a class hands out, one item per line.
fn class_lines(c: &Class) -> Vec<String> {
    let mut l = Vec::new();
    if let Some(t) = c.lease_time {
        l.push(format!("lease {}", secs(t)));
    }
    if let Some(a) = c.next_server {
        l.push(format!("next-server (siaddr) {a}"));
    }
    if let Some(b) = &c.boot_file {
        l.push(format!("file {b}"));
    }
    if let Some(f) = &c.config_file {
        let how = match (f.kind, f.mta_hash) {
            (ConfigFileKind::Docsis, _) => "DOCSIS, CM MIC + CMTS MIC".to_owned(),
            (ConfigFileKind::Mta, None) => "PacketCable MTA, no in-file hash".to_owned(),
            (ConfigFileKind::Mta, Some(h)) => format!("PacketCable MTA, in-file {h:?} hash"),
        };
        l.push(format!(
            "file generated per device from {} ({how})",
            f.template.display()
        ));
    }
    if let Some(t) = &c.tftp_server {
        l.push(format!("option 66 TFTP server {t}"));
    }
    if let Some(p) = &c.profile {
        l.push(format!(
            "profile /{} from {} ({:?}{}{}{})",
            p.path.template(),
            p.template.display(),
            p.format,
            if p.key.is_some() { ", encrypted" } else { "" },
            if p.allow_plain { "" } else { ", HTTPS only" },
            if p.client_cert {
                ", client certificate"
            } else {
                ""
            },
        ));
        if let Some(r) = &p.profile_rule {
            let opt = match p.rule_option {
                crate::RuleOption::Opt66 => 66,
                crate::RuleOption::Opt160 => 160,
            };
            l.push(format!("option {opt} profile rule {r}"));
        }
        if !p.option_150.is_empty() {
            l.push(format!("option 150 TFTP servers {:?}", p.option_150));
        }
    }
    if let Some(t) = c.time_offset {
        l.push(format!("option 2 time offset {t} s"));
    }
    for (code, name, v) in [
        (4, "time servers", &c.time_servers),
        (6, "DNS servers", &c.dns_servers),
        (7, "log servers", &c.log_servers),
    ] {
        if !v.is_empty() {
            l.push(format!("option {code} {name} {}", addrs(v, "")));
        }
    }
    if let Some(d) = &c.domain_name {
        l.push(format!("option 15 domain {d}"));
    }
    let cl = &c.cablelabs;
    if let Some(a) = cl.primary_dhcp {
        l.push(format!("option 122.1 primary DHCP {a}"));
    }
    if let Some(a) = cl.secondary_dhcp {
        l.push(format!("option 122.2 secondary DHCP {a}"));
    }
    match &cl.provisioning_server {
        Some(ProvisioningServer::Fqdn(n)) => {
            l.push(format!("option 122.3 provisioning server {n}"))
        }
        Some(ProvisioningServer::Ipv4(a)) => {
            l.push(format!("option 122.3 provisioning server {a}"))
        }
        None => {}
    }
    match &cl.realm {
        Some(Realm::Flow(f)) => l.push(format!("option 122.6 flow {}", f.as_str())),
        Some(Realm::Kerberos(r)) => l.push(format!("option 122.6 realm {r} (SECURE flow)")),
        None => {}
    }
    if let Some(t) = cl.provisioning_timer {
        l.push(format!("option 122.8 provisioning timer {t} min"));
    }
    if !cl.kdc_servers.is_empty() {
        l.push(format!("option 122.10 KDCs {}", addrs(&cl.kdc_servers, "")));
    }
    if let Some(u) = &c.acs_url {
        l.push(format!("option 43.1 ACS URL {u}"));
    }
    if let Some(p) = &c.provisioning_code {
        l.push(format!("option 43.2 provisioning code {p}"));
    }
    if l.is_empty() {
        l.push("no options beyond address, mask and routers".into());
    }
    l
}
