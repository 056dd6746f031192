//! The validated, immutable policy the DHCP engine reads: every role's settings, assembled.
//!
//! Each role's module validates its own tables ([`crate::server`], [`crate::dhcp`],
//! [`crate::tftp`], ...); this module runs them in document order and then the checks that
//! span roles (a generated file needs `[tftp]`, a profile needs `[http]`, ...).

use std::collections::HashMap as StdMap;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};

use crate::acs::{self, AcsSettings};
use crate::control::{self, ApiSettings, StoreSettings};
use crate::dhcp::{
    self, Class, ClassId, DhcpCheck, Index, LeaseDefaults, Pool, Reservation, SharedNetwork, Subnet,
};
use crate::error::{ConfigError, ConfigErrors};
use crate::files::{self, ConfigFileKind, Subscribers, Vars};
use crate::http::{self, ClientAuthMode, HttpSettings, RuleOption, UpgradeRule};
use crate::mta::{self, MtaSettings};
use crate::server::{self, ServerSettings};
use crate::syslog::{self, SyslogSettings};
use crate::tftp::{self, TftpSettings};
use crate::time::{self, TimeSettings};
use crate::validator::Validator;
use crate::wire;

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
    pub acs: Option<AcsSettings>,
    /// `[vars]`: operator variables for config-file templates.
    pub vars: Vars,
    /// `[[subscriber]]`: per-device template variables.
    pub subscribers: Subscribers,
    /// `[http]`; `None`: no profile/firmware server.
    pub http: Option<HttpSettings>,
    /// `[[upgrade_rule]]`, in config order.
    pub upgrade_rules: Vec<UpgradeRule>,
    /// `[store]` (defaults when absent: embedded, in the lease directory).
    pub store: StoreSettings,
    /// `[api]`; `None`: no REST API or metrics listener.
    pub api: Option<ApiSettings>,
    pub(crate) index: Index,
}

impl Policy {
    /// Parses and validates a TOML document.
    pub fn from_toml_str(s: &str) -> Result<Policy, ConfigErrors> {
        let de = toml::Deserializer::new(s);
        let wire: wire::Config = serde_path_to_error::deserialize(de)
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
    /// gets the first class whose match is `*`, if any. `None`: unclassified. A config without
    /// `[[class]]` has one, [`DEFAULT_CLASS`](crate::DEFAULT_CLASS), so there it is never `None`.
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
}

impl TryFrom<wire::Config> for Policy {
    type Error = ConfigErrors;

    /// Validates every role's tables, then the checks across roles; errors come in document
    /// order as far as possible.
    fn try_from(w: wire::Config) -> Result<Policy, ConfigErrors> {
        let mut v = Validator::default();
        let server = server::validate(w.server, &mut v);
        let mut dhcp = DhcpCheck::new(&server);
        let lease = dhcp::lease(&mut v, w.lease);
        let classes = dhcp.classes(&mut v, &w.class);
        let networks = dhcp.networks(&mut v, &w.shared_network);
        let reservations = dhcp.reservations(&mut v, &w.reservation);
        let tftp = w.tftp.as_ref().map(|t| tftp::validate(t, &server, &mut v));
        let syslog = w
            .syslog
            .as_ref()
            .map(|t| syslog::validate(t, &server, &mut v));
        let time = w.time.as_ref().map(|t| time::validate(t, &server, &mut v));
        let mta = w.mta.as_ref().map(|t| mta::validate(t, &server, &mut v));
        let acs = w.acs.as_ref().map(|a| acs::validate(a, &server, &mut v));
        let vars = w
            .vars
            .as_ref()
            .map(|t| files::vars("vars", t, &mut v))
            .unwrap_or_default();
        let subscribers = files::subscribers(&w.subscriber, &mut v);
        files_checks(&mut v, &w.class, &classes, tftp.as_ref());
        let http = w.http.as_ref().map(|h| http::validate(h, &server, &mut v));
        let upgrade_rules = http::upgrade_rules(&w.upgrade_rule, &mut v);
        http_checks(&mut v, &classes, http.as_ref(), &upgrade_rules);
        if mta.is_some() {
            mta_checks(&mut v, &classes, tftp.as_ref());
        }
        let store = control::store(w.store.as_ref(), &server, &mut v);
        let api = w.api.as_ref().map(|a| control::api(a, &mut v));
        dhcp.cross_checks(&mut v);
        v.finish(|| {
            let index = dhcp::build_index(&classes, &networks, &reservations);
            Policy {
                server,
                lease,
                classes,
                networks,
                reservations: reservations.into_iter().map(|(r, _)| r).collect(),
                tftp,
                syslog,
                time,
                mta,
                acs,
                vars,
                subscribers,
                http,
                upgrade_rules,
                store,
                api,
                index,
            }
        })
    }
}

/// The MTA role provisions with generated files served over TFTP.
fn mta_checks(v: &mut Validator, classes: &[Class], tftp: Option<&TftpSettings>) {
    if tftp.is_none() {
        v.err(
            "mta",
            "MTA config files are served over TFTP: add the [tftp] table",
        );
    }
    if !classes.iter().any(|c| {
        c.config_file
            .as_ref()
            .is_some_and(|f| f.kind == ConfigFileKind::Mta)
    }) {
        v.err(
            "mta",
            "no class generates MTA files: give the MTA class a config_file with kind = \"mta\"",
        );
    }
}

/// A generated file must be reachable: served by a TFTP server, named per device, and its
/// name must not be claimed by two classes.
/// Looks at the wire classes for `config_file`, so that the checks run even when the
/// table itself had errors.
fn files_checks(
    v: &mut Validator,
    ws: &[wire::Class],
    classes: &[Class],
    tftp: Option<&TftpSettings>,
) {
    let mut seen: StdMap<String, usize> = StdMap::new();
    for (i, (w, c)) in ws.iter().zip(classes).enumerate() {
        if w.config_file.is_none() {
            continue;
        }
        let path = format!("class[{i}].config_file");
        if tftp.is_none() {
            v.err(
                &path,
                "a generated config file needs the [tftp] table (the server that serves it)",
            );
        }
        match &c.boot_file {
            None => v.err(
                &path,
                "a generated config file needs boot_file, the name the device is told to fetch (e.g. \"cm/{mac}.cfg\")",
            ),
            Some(b) if b.is_static() => v.err(
                format!("class[{i}].boot_file"),
                "with config_file, boot_file must name the device with {mac}, {MAC} or {mac:}, so a request says whose file it is",
            ),
            Some(b) => {
                if let Some(other) = seen.insert(b.template().to_owned(), i) {
                    v.err(
                        format!("class[{i}].boot_file"),
                        format!("class[{other}] generates files under the same name; a request could not tell which class renders it"),
                    );
                }
            }
        }
    }
}

/// Checks across `[http]` and the classes' `[class.profile]` tables.
fn http_checks(
    v: &mut Validator,
    classes: &[Class],
    http: Option<&HttpSettings>,
    upgrade_rules: &[UpgradeRule],
) {
    for (i, c) in classes.iter().enumerate() {
        let Some(pf) = &c.profile else { continue };
        let p = |f: &str| format!("class[{i}].profile.{f}");
        let Some(h) = http else {
            v.err(
                format!("class[{i}].profile"),
                "profiles are served over HTTP: add the [http] table",
            );
            continue;
        };
        if pf.client_cert
            && h.https
                .as_ref()
                .is_none_or(|s| s.client_auth == ClientAuthMode::Off)
        {
            v.err(
                p("client_cert"),
                "client_cert = true needs HTTPS with client_ca and client_auth \"optional\" or \"required\"",
            );
        }
        if !pf.allow_plain && h.https.is_none() {
            v.err(
                p("allow_plain"),
                "allow_plain = false and no HTTPS listener: the profile could never be fetched",
            );
        }
        if pf.profile_rule.is_some()
            && pf.rule_option == RuleOption::Opt66
            && c.tftp_server.is_some()
        {
            v.err(
                p("profile_rule"),
                "option 66 carries the class's tftp_server already: drop one, or set rule_option = 160",
            );
        }
        for (j, o) in classes.iter().enumerate().take(i) {
            if let Some(op) = &o.profile
                && op.path.template() == pf.path.template()
            {
                v.err(
                    p("path"),
                    format!("class[{j}] serves the same path {:?}", pf.path.template()),
                );
            }
        }
    }
    if !upgrade_rules.is_empty() && http.is_some_and(|h| h.firmware_dir.is_none()) {
        v.err(
            "upgrade_rule",
            "upgrade rules name files in http.firmware_dir: set it",
        );
    }
}
