//! The DHCP role's policy: `[lease]`, `[[class]]` (with the options a class hands out, the
//! CableLabs option 122 among them), `[[shared_network]]` with its subnets and pools, and
//! `[[reservation]]`. The schema is in the crate docs.
//!
//! A class may also generate config files (`[class.config_file]`, [`crate::files`]) and serve
//! VoIP profiles (`[class.profile]`, [`crate::http`]); those tables are validated by their own
//! role's module.

use std::collections::HashMap as StdMap;
use std::net::Ipv4Addr;

use foldhash::HashMap;

use crate::bootfile::BootFile;
use crate::files::{self, ConfigFileSpec};
use crate::glob::Glob;
use crate::http::{self, ProfileSpec};
use crate::parse::{self, show};
use crate::server::ServerSettings;
use crate::validator::Validator;

/// The tables as written (see [`crate::wire`]).
pub mod wire {
    use serde::Deserialize;

    /// `[lease]` as written.
    #[derive(Debug, Clone, Default, Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct Lease {
        pub default_time: Option<i64>,
        pub t1_ratio: Option<f64>,
        pub t2_ratio: Option<f64>,
    }

    /// `[[class]]` as written.
    #[derive(Debug, Clone, Default, Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct Class {
        pub name: Option<String>,
        #[serde(rename = "match")]
        pub matcher: Option<String>,
        pub lease_time: Option<i64>,
        pub next_server: Option<String>,
        pub boot_file: Option<String>,
        pub tftp_server: Option<String>,
        #[serde(default)]
        pub time_servers: Vec<String>,
        #[serde(default)]
        pub log_servers: Vec<String>,
        pub time_offset: Option<i64>,
        #[serde(default)]
        pub dns_servers: Vec<String>,
        pub domain_name: Option<String>,
        pub provisioning_server: Option<String>,
        pub flow: Option<String>,
        pub realm: Option<String>,
        pub primary_dhcp: Option<String>,
        pub secondary_dhcp: Option<String>,
        pub provisioning_timer: Option<i64>,
        #[serde(default)]
        pub kdc_servers: Vec<String>,
        pub acs_url: Option<String>,
        pub provisioning_code: Option<String>,
        pub config_file: Option<crate::files::wire::ConfigFile>,
        /// `[class.profile]`: see [`ProfileSpec`](crate::ProfileSpec).
        pub profile: Option<crate::http::WireProfile>,
    }

    /// `[[shared_network]]` as written.
    #[derive(Debug, Clone, Default, Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct SharedNetwork {
        pub name: Option<String>,
        #[serde(default)]
        pub relays: Vec<String>,
        #[serde(default)]
        pub interfaces: Vec<String>,
        #[serde(default)]
        pub subnet: Vec<Subnet>,
    }

    /// `[[shared_network.subnet]]` as written.
    #[derive(Debug, Clone, Default, Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct Subnet {
        pub prefix: Option<String>,
        #[serde(default)]
        pub routers: Vec<String>,
        #[serde(default)]
        pub classes: Vec<String>,
        pub lease_time: Option<i64>,
        #[serde(default)]
        pub pool: Vec<Pool>,
    }

    /// `[[shared_network.subnet.pool]]` as written.
    #[derive(Debug, Clone, Default, Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct Pool {
        pub start: Option<String>,
        pub end: Option<String>,
    }

    /// `[[reservation]]` as written.
    #[derive(Debug, Clone, Default, Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct Reservation {
        pub mac: Option<String>,
        pub remote_id: Option<String>,
        pub address: Option<String>,
        pub class: Option<String>,
        pub boot_file: Option<String>,
    }
}

/// Index of a [`Class`] in [`Policy::classes`](crate::Policy::classes).
pub type ClassId = u16;

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
    pub profile: Option<ProfileSpec>,
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
    /// Global, `0..` in config order; also the index in [`Policy::pools`](crate::Policy::pools).
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
/// ([`Policy::is_reserved`](crate::Policy::is_reserved)).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reservation {
    pub key: ReservationKey,
    pub address: Ipv4Addr,
    /// Forced class, overriding option 60 classification.
    pub class: Option<ClassId>,
    /// Overrides the class boot file.
    pub boot_file: Option<BootFile>,
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

/// The name of the class a config without `[[class]]` gets: it matches every client.
pub const DEFAULT_CLASS: &str = "default";

/// Shortest lease accepted anywhere.
pub const MIN_LEASE_SECS: u32 = 60;
/// Largest |time_offset| (option 2).
pub const MAX_TIME_OFFSET: i64 = 86_400;
/// TR-069 DeviceInfo.ProvisioningCode is string(64).
const MAX_PROVISIONING_CODE: usize = 64;

/// What DHCP validation remembers between its steps, for the checks across them.
#[derive(Debug, Default)]
pub(crate) struct DhcpCheck {
    /// Class name → id, for names that are valid and unique.
    class_ids: StdMap<String, ClassId>,
    /// Addresses that must never be leased (routers, relays, interfaces, server id), with the
    /// path that names them.
    infra: Vec<(Ipv4Addr, String, &'static str)>,
    /// Valid pools: (start, end, path).
    pool_ranges: Vec<(u32, u32, String)>,
    /// Valid subnets: (first, last, network index, path).
    subnet_ranges: Vec<(u32, u32, usize, String)>,
    /// Valid, unique reservation addresses with the reservation's path (also for reservations
    /// that are otherwise invalid, so every address problem is reported in one go).
    reserved: Vec<(Ipv4Addr, String)>,
}

impl DhcpCheck {
    /// The server id, when set, must stay out of every pool like routers and relays.
    pub(crate) fn new(server: &ServerSettings) -> DhcpCheck {
        let mut c = DhcpCheck::default();
        if let Some(a) = server.server_id {
            c.infra.push((a, "server.server_id".into(), "server id"));
        }
        c
    }

    /// Validates `[[class]]`, recording the valid names for subnets and reservations.
    ///
    /// A config with no `[[class]]` at all gets one, [`DEFAULT_CLASS`], matching every client
    /// (with or without option 60) and handing out nothing beyond the lease: the engine and
    /// every role then see a class for each client, and "every client gets an address" holds
    /// without a class to write. A config that does name classes gets exactly those.
    pub(crate) fn classes(&mut self, v: &mut Validator, ws: &[wire::Class]) -> Vec<Class> {
        if ws.is_empty() {
            self.class_ids.insert(DEFAULT_CLASS.to_owned(), 0);
            let w = wire::Class {
                name: Some(DEFAULT_CLASS.to_owned()),
                matcher: Some("*".to_owned()),
                ..wire::Class::default()
            };
            return vec![class(v, "class", DEFAULT_CLASS.to_owned(), &w)];
        }
        if ws.len() > usize::from(ClassId::MAX) + 1 {
            v.err(
                "class",
                format!(
                    "{} classes; at most {}",
                    ws.len(),
                    usize::from(ClassId::MAX) + 1
                ),
            );
        }
        let mut first_path: StdMap<String, String> = StdMap::new();
        let mut out = Vec::with_capacity(ws.len());
        for (i, w) in ws.iter().enumerate() {
            let path = format!("class[{i}]");
            let name = match &w.name {
                None => {
                    v.err(format!("{path}.name"), "is required");
                    String::new()
                }
                Some(n) if n.trim().is_empty() => {
                    v.err(format!("{path}.name"), "class name is empty");
                    String::new()
                }
                Some(n) => {
                    if let Some(first) = first_path.get(n) {
                        v.err(
                            format!("{path}.name"),
                            format!("class name {n:?} is already used by {first}"),
                        );
                    } else {
                        first_path.insert(n.clone(), path.clone());
                        if let Ok(id) = ClassId::try_from(i) {
                            self.class_ids.insert(n.clone(), id);
                        }
                    }
                    n.clone()
                }
            };
            out.push(class(v, &path, name, w));
        }
        out
    }

    /// Validates `[[shared_network]]` and what they hold.
    pub(crate) fn networks(
        &mut self,
        v: &mut Validator,
        ws: &[wire::SharedNetwork],
    ) -> Vec<SharedNetwork> {
        if ws.is_empty() {
            v.err(
                "shared_network",
                "no [[shared_network]]: at least one is needed to hand out addresses",
            );
        }
        let mut names: StdMap<String, String> = StdMap::new();
        let mut relays: StdMap<Ipv4Addr, (usize, String)> = StdMap::new();
        let mut interfaces: StdMap<Ipv4Addr, (usize, String)> = StdMap::new();
        let mut next_pool_id = 0usize;
        let mut out = Vec::with_capacity(ws.len());
        for (ni, w) in ws.iter().enumerate() {
            let path = format!("shared_network[{ni}]");
            let name = match &w.name {
                None => {
                    v.err(format!("{path}.name"), "is required");
                    String::new()
                }
                Some(n) if n.trim().is_empty() => {
                    v.err(format!("{path}.name"), "shared network name is empty");
                    String::new()
                }
                Some(n) => {
                    if let Some(first) = names.get(n) {
                        v.err(
                            format!("{path}.name"),
                            format!("shared network name {n:?} is already used by {first}"),
                        );
                    } else {
                        names.insert(n.clone(), path.clone());
                    }
                    n.clone()
                }
            };
            let mut net_relays = Vec::with_capacity(w.relays.len());
            for (i, s) in w.relays.iter().enumerate() {
                let p = format!("{path}.relays[{i}]");
                let Some(a) = v.unicast(&p, s) else {
                    continue;
                };
                if let Some((n, first)) = relays.get(&a) {
                    let msg = if *n == ni {
                        format!("relay {a} is listed twice")
                    } else {
                        format!(
                            "relay {a} is already used by {first}; a relay belongs to one shared network only"
                        )
                    };
                    v.err(&p, msg);
                } else {
                    relays.insert(a, (ni, format!("{path}.relays")));
                    self.infra.push((a, p, "relay"));
                    net_relays.push(a);
                }
            }
            let mut net_ifaces = Vec::with_capacity(w.interfaces.len());
            for (i, s) in w.interfaces.iter().enumerate() {
                let p = format!("{path}.interfaces[{i}]");
                let Some(a) = v.unicast(&p, s) else {
                    continue;
                };
                if let Some((n, first)) = interfaces.get(&a) {
                    let msg = if *n == ni {
                        format!("interface {a} is listed twice")
                    } else {
                        format!(
                            "interface {a} is already used by {first}; an interface belongs to one shared network only"
                        )
                    };
                    v.err(&p, msg);
                } else {
                    interfaces.insert(a, (ni, format!("{path}.interfaces")));
                    self.infra.push((a, p, "interface address"));
                    net_ifaces.push(a);
                }
            }
            if w.subnet.is_empty() {
                v.err(
                    &path,
                    format!(
                        "shared network {} has no [[shared_network.subnet]]",
                        show(&name)
                    ),
                );
            }
            let subnets = w
                .subnet
                .iter()
                .enumerate()
                .map(|(si, s)| {
                    self.subnet(v, ni, &format!("{path}.subnet[{si}]"), s, &mut next_pool_id)
                })
                .collect();
            out.push(SharedNetwork {
                name,
                relays: net_relays,
                interfaces: net_ifaces,
                subnets,
            });
        }
        if next_pool_id > usize::from(u16::MAX) + 1 {
            v.err(
                "shared_network",
                format!(
                    "{next_pool_id} pools; at most {} are supported",
                    usize::from(u16::MAX) + 1
                ),
            );
        }
        out
    }

    fn subnet(
        &mut self,
        v: &mut Validator,
        net: usize,
        path: &str,
        w: &wire::Subnet,
        next_pool_id: &mut usize,
    ) -> Subnet {
        let p = |f: &str| format!("{path}.{f}");
        let prefix = match &w.prefix {
            None => {
                v.err(p("prefix"), "is required (e.g. prefix = \"10.1.0.0/24\")");
                None
            }
            Some(s) => v.check(&p("prefix"), parse::prefix(s)),
        };
        let (first, last) = match prefix {
            Some((a, len)) => {
                let first = u32::from(a);
                let last = first | !parse::mask_bits(len);
                self.subnet_ranges.push((first, last, net, path.to_owned()));
                (first, last)
            }
            None => (0, 0),
        };
        let prefix_str = prefix.map(|(a, l)| format!("{a}/{l}")).unwrap_or_default();

        let routers = v.addr_list(&p("routers"), &w.routers);
        for (i, r) in routers.iter().enumerate() {
            let rp = format!("{}[{i}]", p("routers"));
            let a = u32::from(*r);
            if prefix.is_some() {
                if !(first..=last).contains(&a) {
                    v.err(&rp, format!("router {r} is outside subnet {prefix_str}"));
                } else if a == first || a == last {
                    v.err(
                        &rp,
                        format!(
                            "router {r} is the network or broadcast address of subnet {prefix_str}"
                        ),
                    );
                }
            }
            self.infra.push((*r, rp, "router"));
        }

        let mut classes: Vec<ClassId> = Vec::with_capacity(w.classes.len());
        for (i, c) in w.classes.iter().enumerate() {
            let cp = format!("{}[{i}]", p("classes"));
            match self.class_ids.get(c) {
                None => v.err(cp, format!("class {c:?} is not defined")),
                Some(id) if classes.contains(id) => {
                    v.err(cp, format!("class {c:?} is listed twice"))
                }
                Some(&id) => classes.push(id),
            }
        }
        let lease_time = lease_time(v, &p("lease_time"), w.lease_time);

        let mut pools = Vec::with_capacity(w.pool.len());
        for (i, wp) in w.pool.iter().enumerate() {
            let pp = format!("{path}.pool[{i}]");
            let id = u16::try_from(*next_pool_id).unwrap_or(u16::MAX);
            *next_pool_id += 1;
            let start = pool_end(v, &pp, "start", wp.start.as_ref());
            let end = pool_end(v, &pp, "end", wp.end.as_ref());
            let (Some(start), Some(end)) = (start, end) else {
                continue;
            };
            let (s, e) = (u32::from(start), u32::from(end));
            if s > e {
                v.err(&pp, format!("pool {start}-{end}: start is after end"));
                continue;
            }
            if prefix.is_some() {
                let s_in = (first..=last).contains(&s);
                let e_in = (first..=last).contains(&e);
                let range = format!("pool {start}-{end}");
                match (s_in, e_in) {
                    (false, false) if !(s < first && e > last) => {
                        v.err(&pp, format!("{range} is outside subnet {prefix_str}"));
                    }
                    (false, _) => v.err(
                        format!("{pp}.start"),
                        format!(
                            "{range} is not inside subnet {prefix_str} ({start} is outside it)"
                        ),
                    ),
                    (true, false) => v.err(
                        format!("{pp}.end"),
                        format!("{range} is not inside subnet {prefix_str} ({end} is outside it)"),
                    ),
                    (true, true) => {
                        if s == first {
                            v.err(
                                format!("{pp}.start"),
                                format!("{range} includes {start}, the network address of subnet {prefix_str}"),
                            );
                        }
                        if e == last {
                            v.err(
                                format!("{pp}.end"),
                                format!("{range} includes {end}, the broadcast address of subnet {prefix_str}"),
                            );
                        }
                    }
                }
            }
            self.pool_ranges.push((s, e, pp));
            pools.push(Pool { id, start, end });
        }
        Subnet {
            prefix: prefix.map_or(Ipv4Addr::UNSPECIFIED, |(a, _)| a),
            prefix_len: prefix.map_or(0, |(_, l)| l),
            routers,
            classes,
            lease_time,
            pools,
        }
    }

    /// Reservations, each with its path.
    pub(crate) fn reservations(
        &mut self,
        v: &mut Validator,
        ws: &[wire::Reservation],
    ) -> Vec<(Reservation, String)> {
        let mut by_key: StdMap<ReservationKey, String> = StdMap::new();
        let mut by_addr: StdMap<Ipv4Addr, String> = StdMap::new();
        let mut out = Vec::with_capacity(ws.len());
        for (i, w) in ws.iter().enumerate() {
            let path = format!("reservation[{i}]");
            let key = match (&w.mac, &w.remote_id) {
                (Some(_), Some(_)) => {
                    v.err(&path, "set exactly one of mac or remote_id, not both");
                    None
                }
                (None, None) => {
                    v.err(&path, "needs mac or remote_id to identify the client");
                    None
                }
                (Some(m), None) => v
                    .check(&format!("{path}.mac"), parse::mac(m))
                    .map(|m| (ReservationKey::Mac(m), format!("{path}.mac"))),
                (None, Some(r)) => v
                    .check(&format!("{path}.remote_id"), parse::remote_id(r))
                    .map(|r| {
                        (
                            ReservationKey::RemoteId(r.into()),
                            format!("{path}.remote_id"),
                        )
                    }),
            };
            let key = key.and_then(|(k, kp)| {
                if let Some(first) = by_key.get(&k) {
                    let msg = format!("the same client is already reserved by {first}");
                    v.err(kp, msg);
                    None
                } else {
                    by_key.insert(k.clone(), path.clone());
                    Some(k)
                }
            });
            let ap = format!("{path}.address");
            let address = match &w.address {
                None => {
                    v.err(&ap, "is required");
                    None
                }
                Some(s) => v.unicast(&ap, s),
            };
            let address = address.and_then(|a| {
                if let Some(first) = by_addr.get(&a) {
                    let msg = format!("address {a} is already reserved by {first}");
                    v.err(&ap, msg);
                    None
                } else {
                    by_addr.insert(a, path.clone());
                    self.reserved.push((a, path.clone()));
                    Some(a)
                }
            });
            let class = w.class.as_ref().and_then(|c| match self.class_ids.get(c) {
                Some(&id) => Some(id),
                None => {
                    v.err(
                        format!("{path}.class"),
                        format!("class {c:?} is not defined"),
                    );
                    None
                }
            });
            let boot_file = v.boot_file(&format!("{path}.boot_file"), w.boot_file.as_ref());
            if let (Some(key), Some(address)) = (key, address) {
                out.push((
                    Reservation {
                        key,
                        address,
                        class,
                        boot_file,
                    },
                    path,
                ));
            }
        }
        out
    }

    /// Checks that need the whole config: overlaps, addresses that must stay out of pools,
    /// reservations inside subnets.
    pub(crate) fn cross_checks(mut self, v: &mut Validator) {
        // Subnets never overlap (anywhere in the config).
        let mut subnets = std::mem::take(&mut self.subnet_ranges);
        subnets.sort_by_key(|&(first, last, _, _)| (first, std::cmp::Reverse(last)));
        let mut widest: Option<(u32, usize)> = None; // (last, index into subnets)
        for i in 0..subnets.len() {
            let (first, last, _, ref path) = subnets[i];
            if let Some((wl, wi)) = widest
                && first <= wl
            {
                let (f2, l2, _, ref p2) = subnets[wi];
                v.err(
                    format!("{path}.prefix"),
                    format!(
                        "subnet {} overlaps subnet {} ({p2})",
                        range_prefix(first, last),
                        range_prefix(f2, l2)
                    ),
                );
            }
            if widest.is_none_or(|(wl, _)| last > wl) {
                widest = Some((last, i));
            }
        }

        // Pools never overlap (anywhere in the config).
        let mut pools = std::mem::take(&mut self.pool_ranges);
        pools.sort_by_key(|&(s, e, _)| (s, e));
        let mut widest: Option<(u32, usize)> = None;
        for i in 0..pools.len() {
            let (s, e, ref path) = pools[i];
            if let Some((we, wi)) = widest
                && s <= we
            {
                let (s2, e2, ref p2) = pools[wi];
                v.err(
                    path.clone(),
                    format!(
                        "pool {}-{} overlaps pool {}-{} ({p2})",
                        Ipv4Addr::from(s),
                        Ipv4Addr::from(e),
                        Ipv4Addr::from(s2),
                        Ipv4Addr::from(e2)
                    ),
                );
            }
            if widest.is_none_or(|(we, _)| e > we) {
                widest = Some((e, i));
            }
        }

        // Routers, relays, interface addresses and the server id are never leased.
        let pool_of = |a: Ipv4Addr| -> Option<&(u32, u32, String)> {
            let a = u32::from(a);
            let i = pools.partition_point(|&(s, _, _)| s <= a);
            pools[..i]
                .iter()
                .rev()
                .find(|&&(s, e, _)| (s..=e).contains(&a))
        };
        let infra = std::mem::take(&mut self.infra);
        let mut infra_at: StdMap<Ipv4Addr, &str> = StdMap::new();
        for (a, path, what) in &infra {
            infra_at.entry(*a).or_insert(path);
            if let Some((s, e, pp)) = pool_of(*a) {
                v.err(
                    path.clone(),
                    format!(
                        "{what} {a} is inside pool {}-{} ({pp}); it would be leased to a client",
                        Ipv4Addr::from(*s),
                        Ipv4Addr::from(*e)
                    ),
                );
            }
        }

        // Reservations: inside a subnet, not its network/broadcast address, not infrastructure.
        for (address, path) in std::mem::take(&mut self.reserved) {
            let a = u32::from(address);
            let i = subnets.partition_point(|&(first, _, _, _)| first <= a);
            let sub = subnets[..i]
                .iter()
                .rev()
                .find(|&&(f, l, _, _)| (f..=l).contains(&a));
            let ap = format!("{path}.address");
            match sub {
                None => v.err(
                    ap,
                    format!("address {address} is not inside any subnet's prefix"),
                ),
                Some(&(f, l, _, ref sp)) if a == f || a == l => v.err(
                    ap,
                    format!(
                        "address {address} is the network or broadcast address of subnet {} ({sp})",
                        range_prefix(f, l)
                    ),
                ),
                Some(_) => {
                    if let Some(ip) = infra_at.get(&address) {
                        v.err(ap, format!("address {address} is already used by {ip}"));
                    }
                }
            }
        }
    }
}

/// A lease time: at least [`MIN_LEASE_SECS`], at most `u32::MAX` (infinite).
pub(crate) fn lease_time(v: &mut Validator, path: &str, secs: Option<i64>) -> Option<u32> {
    let secs = secs?;
    if secs < i64::from(MIN_LEASE_SECS) {
        v.err(
            path,
            format!("lease time {secs} s is too short: at least {MIN_LEASE_SECS} s"),
        );
        return None;
    }
    match u32::try_from(secs) {
        Ok(t) => Some(t),
        Err(_) => {
            v.err(
                path,
                format!(
                    "lease time {secs} s is too long: at most {} s (4294967295 = infinite)",
                    u32::MAX
                ),
            );
            None
        }
    }
}

/// Validates `[lease]` (absent: the defaults).
pub(crate) fn lease(v: &mut Validator, l: Option<wire::Lease>) -> LeaseDefaults {
    let l = l.unwrap_or_default();
    let default_time = match l.default_time {
        None => 86_400,
        secs => lease_time(v, "lease.default_time", secs).unwrap_or(86_400),
    };
    let t1 = l.t1_ratio.unwrap_or(0.5);
    let t2 = l.t2_ratio.unwrap_or(0.875);
    let ok = |r: f64| r > 0.0 && r < 1.0;
    if !ok(t1) {
        v.err(
            "lease.t1_ratio",
            format!("{t1} must be between 0 and 1 (exclusive)"),
        );
    }
    if !ok(t2) {
        v.err(
            "lease.t2_ratio",
            format!("{t2} must be between 0 and 1 (exclusive)"),
        );
    }
    if ok(t1) && ok(t2) && t1 >= t2 {
        v.err(
            "lease.t2_ratio",
            format!("t2_ratio {t2} must be greater than t1_ratio {t1} (0 < t1 < t2 < 1)"),
        );
    }
    LeaseDefaults {
        default_time,
        t1_ratio: t1,
        t2_ratio: t2,
    }
}

fn class(v: &mut Validator, path: &str, name: String, w: &wire::Class) -> Class {
    let p = |f: &str| format!("{path}.{f}");
    let matcher = match w.matcher.as_deref() {
        None => Glob::never(),
        Some("") => {
            v.err(
                p("match"),
                "match pattern is empty (use \"*\" to match everything, or leave match out for a reservation-only class)",
            );
            Glob::never()
        }
        Some(m) => Glob::new(m),
    };
    let lease_time = lease_time(v, &p("lease_time"), w.lease_time);
    let next_server = v.opt_unicast(&p("next_server"), w.next_server.as_ref());
    let boot_file = v.boot_file(&p("boot_file"), w.boot_file.as_ref());
    let config_file = w
        .config_file
        .as_ref()
        .and_then(|c| files::config_file(&p("config_file"), c, v));
    let profile = w
        .profile
        .as_ref()
        .and_then(|c| http::profile(&p("profile"), c, v));
    let tftp_server = w.tftp_server.as_ref().and_then(|t| {
        let r = parse::host(t).map(|()| t.clone());
        v.check(&p("tftp_server"), r)
    });
    let time_servers = v.addr_list(&p("time_servers"), &w.time_servers);
    let log_servers = v.addr_list(&p("log_servers"), &w.log_servers);
    let time_offset = w.time_offset.and_then(|t| {
        if (-MAX_TIME_OFFSET..=MAX_TIME_OFFSET).contains(&t) {
            i32::try_from(t).ok()
        } else {
            v.err(
                p("time_offset"),
                format!("time_offset {t} is out of range: at most ±{MAX_TIME_OFFSET} seconds"),
            );
            None
        }
    });
    let dns_servers = v.addr_list(&p("dns_servers"), &w.dns_servers);
    let domain_name = w.domain_name.as_ref().and_then(|d| {
        let r = parse::domain(d).map(|()| d.clone());
        v.check(&p("domain_name"), r)
    });
    let cablelabs = cablelabs(v, path, w);
    let acs_url = w.acs_url.as_ref().and_then(|u| {
        let r = parse::http_url(u).map(|()| u.clone());
        v.check(&p("acs_url"), r)
    });
    let provisioning_code = w.provisioning_code.as_ref().and_then(|c| {
        if c.is_empty() {
            v.err(p("provisioning_code"), "provisioning_code is empty");
            None
        } else if c.len() > MAX_PROVISIONING_CODE {
            v.err(
                p("provisioning_code"),
                format!(
                    "provisioning_code is {} bytes; TR-069 allows at most {MAX_PROVISIONING_CODE}",
                    c.len()
                ),
            );
            None
        } else {
            Some(c.clone())
        }
    });
    if let (Some(u), Some(c)) = (&acs_url, &provisioning_code)
        && u.len() + c.len() + 4 > 255
    {
        v.err(
            path,
            "acs_url and provisioning_code together do not fit in option 43 (255 bytes)",
        );
    } else if let Some(u) = &acs_url
        && u.len() + 2 > 255
    {
        v.err(
            p("acs_url"),
            "acs_url does not fit in option 43 (at most 253 bytes)",
        );
    }
    Class {
        name,
        matcher,
        lease_time,
        next_server,
        boot_file,
        tftp_server,
        time_servers,
        log_servers,
        time_offset,
        dns_servers,
        domain_name,
        cablelabs,
        acs_url,
        provisioning_code,
        config_file,
        profile,
    }
}

fn cablelabs(v: &mut Validator, path: &str, w: &wire::Class) -> CableLabsOptions {
    let p = |f: &str| format!("{path}.{f}");
    let primary_dhcp = v.opt_unicast(&p("primary_dhcp"), w.primary_dhcp.as_ref());
    let secondary_dhcp = v.opt_unicast(&p("secondary_dhcp"), w.secondary_dhcp.as_ref());
    let provisioning_server = w.provisioning_server.as_ref().and_then(|s| {
        let looks_numeric = !s.is_empty() && s.bytes().all(|c| c.is_ascii_digit() || c == b'.');
        if looks_numeric {
            v.unicast(&p("provisioning_server"), s)
                .map(ProvisioningServer::Ipv4)
        } else {
            let r = parse::domain(s).map(|()| ProvisioningServer::Fqdn(s.clone()));
            v.check(&p("provisioning_server"), r)
        }
    });
    let realm = match (&w.flow, &w.realm) {
        (Some(_), Some(_)) => {
            v.err(
                path,
                "flow and realm are both set: flow selects a BASIC/HYBRID flow, realm selects the SECURE (Kerberos) flow; set only one",
            );
            None
        }
        (Some(f), None) => match ProvisioningFlow::from_name(f) {
            Some(f) => Some(Realm::Flow(f)),
            None => {
                v.err(
                    p("flow"),
                    format!(
                        "{} is not a provisioning flow (expected BASIC.1, BASIC.2, HYBRID.1 or HYBRID.2; for SECURE set realm instead)",
                        show(f)
                    ),
                );
                None
            }
        },
        (None, Some(r)) => {
            let r2 = parse::realm(r).map(|()| Realm::Kerberos(r.clone()));
            v.check(&p("realm"), r2)
        }
        (None, None) => None,
    };
    let provisioning_timer = w.provisioning_timer.and_then(|t| match u8::try_from(t) {
        Ok(t) => Some(t),
        Err(_) => {
            v.err(
                p("provisioning_timer"),
                format!("{t} is out of range: provisioning_timer is 0..=255 minutes"),
            );
            None
        }
    });
    let kdc_servers = v.addr_list(&p("kdc_servers"), &w.kdc_servers);
    let c = CableLabsOptions {
        primary_dhcp,
        secondary_dhcp,
        provisioning_server,
        realm,
        provisioning_timer,
        kdc_servers,
    };
    let len = option122_len(&c);
    if len > 255 {
        v.err(
            path,
            format!("the PacketCable options (option 122) would take {len} bytes; at most 255 fit"),
        );
    }
    c
}

fn pool_end(v: &mut Validator, pp: &str, field: &str, value: Option<&String>) -> Option<Ipv4Addr> {
    let path = format!("{pp}.{field}");
    match value {
        None => {
            v.err(path, "is required");
            None
        }
        Some(s) => v.unicast(&path, s),
    }
}

fn range_prefix(first: u32, last: u32) -> String {
    let len = (last - first).saturating_add(1).leading_zeros() + 1;
    format!("{}/{}", Ipv4Addr::from(first), len.min(32))
}

/// Encoded size of option 122's value.
fn option122_len(c: &CableLabsOptions) -> usize {
    let mut n = 0;
    n += c.primary_dhcp.map_or(0, |_| 6);
    n += c.secondary_dhcp.map_or(0, |_| 6);
    n += match &c.provisioning_server {
        Some(ProvisioningServer::Ipv4(_)) => 2 + 5,
        Some(ProvisioningServer::Fqdn(f)) => 2 + 1 + parse::dns_wire_len(f),
        None => 0,
    };
    n += c
        .realm
        .as_ref()
        .map_or(0, |r| 2 + parse::dns_wire_len(r.as_str()));
    n += c.provisioning_timer.map_or(0, |_| 3);
    if !c.kdc_servers.is_empty() {
        n += 2 + 4 * c.kdc_servers.len();
    }
    n
}

pub(crate) fn build_index(
    classes: &[Class],
    networks: &[SharedNetwork],
    reservations: &[(Reservation, String)],
) -> Index {
    let mut ix = Index::default();
    for (ni, n) in networks.iter().enumerate() {
        for r in &n.relays {
            ix.relays.insert(*r, ni);
        }
        for a in &n.interfaces {
            ix.interfaces.insert(*a, ni);
        }
        for (si, s) in n.subnets.iter().enumerate() {
            let first = u32::from(s.prefix);
            let last = u32::from(s.broadcast());
            ix.prefixes.push((first, last, ni));
            for (pi, p) in s.pools.iter().enumerate() {
                debug_assert_eq!(usize::from(p.id), ix.pools.len());
                ix.pools.push((ni, si, pi));
            }
        }
    }
    ix.prefixes.sort_unstable();
    for (i, (r, _)) in reservations.iter().enumerate() {
        match &r.key {
            ReservationKey::Mac(m) => {
                ix.by_mac.insert(*m, i);
            }
            ReservationKey::RemoteId(id) => {
                ix.by_remote_id.insert(id.clone(), i);
            }
        }
        ix.by_address.insert(r.address, i);
    }
    ix.catch_all = classes
        .iter()
        .position(|c| c.matcher.matches_everything())
        .and_then(|i| ClassId::try_from(i).ok());
    ix
}
