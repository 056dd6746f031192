//! `wire::Config` → `Policy`. Checks everything it can, collecting every error with the path of
//! the field it is about, and only builds a `Policy` if there were none.

use std::collections::HashMap as StdMap;
use std::net::Ipv4Addr;
use std::path::PathBuf;

use crate::error::{ConfigError, ConfigErrors};
use crate::files::{
    self, ConfigFileKind, ConfigFileSpec, MtaSettings, Subscribers, SyslogSettings, TftpSettings,
    TimeSettings, Vars,
};
use crate::parse::{self, show};
use crate::policy::{
    CableLabsOptions, Class, ClassId, Index, IoPath, LeaseDefaults, LogFormat, Policy, Pool,
    ProvisioningFlow, ProvisioningServer, Realm, Reservation, ReservationKey, ServerSettings,
    SharedNetwork, Subnet, XdpMode,
};
use crate::{BootFile, Glob, wire};

/// Shortest lease accepted anywhere.
pub const MIN_LEASE_SECS: u32 = 60;
/// Largest |time_offset| (option 2).
pub const MAX_TIME_OFFSET: i64 = 86_400;
/// Most addresses in one address-list option (n × 4 bytes ≤ 255).
const MAX_ADDR_LIST: usize = 63;
/// TR-069 DeviceInfo.ProvisioningCode is string(64).
const MAX_PROVISIONING_CODE: usize = 64;

impl TryFrom<wire::Config> for Policy {
    type Error = ConfigErrors;

    fn try_from(w: wire::Config) -> Result<Policy, ConfigErrors> {
        Validator::default().run(w)
    }
}

#[derive(Default)]
struct Validator {
    errors: Vec<ConfigError>,
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

impl Validator {
    fn err(&mut self, path: impl Into<String>, msg: impl Into<String>) {
        self.errors.push(ConfigError::new(path, msg));
    }

    fn check<T>(&mut self, path: &str, r: Result<T, String>) -> Option<T> {
        r.map_err(|m| self.err(path, m)).ok()
    }

    fn unicast(&mut self, path: &str, s: &str) -> Option<Ipv4Addr> {
        self.check(path, parse::unicast(s))
    }

    fn opt_unicast(&mut self, path: &str, s: Option<&String>) -> Option<Ipv4Addr> {
        s.and_then(|s| self.unicast(path, s))
    }

    fn addr_list(&mut self, path: &str, v: &[String]) -> Vec<Ipv4Addr> {
        if v.len() > MAX_ADDR_LIST {
            self.err(
                path,
                format!(
                    "{} addresses; one option holds at most {MAX_ADDR_LIST}",
                    v.len()
                ),
            );
        }
        let mut out: Vec<Ipv4Addr> = Vec::with_capacity(v.len());
        for (i, s) in v.iter().enumerate() {
            let p = format!("{path}[{i}]");
            if let Some(a) = self.unicast(&p, s) {
                if out.contains(&a) {
                    self.err(p, format!("{a} is listed twice"));
                } else {
                    out.push(a);
                }
            }
        }
        out
    }

    /// An integer in `lo..=hi`; `what` describes the unit for the message.
    fn int(
        &mut self,
        path: &str,
        v: Option<i64>,
        default: i64,
        lo: i64,
        hi: i64,
        what: &str,
    ) -> i64 {
        match v {
            None => default,
            Some(v) if (lo..=hi).contains(&v) => v,
            Some(v) => {
                self.err(
                    path,
                    format!("{v} is out of range: {what} must be {lo}..={hi}"),
                );
                default
            }
        }
    }

    fn u32_secs(&mut self, path: &str, v: Option<i64>, default: u32, min: u32) -> u32 {
        let v = self.int(
            path,
            v,
            default.into(),
            min.into(),
            u32::MAX.into(),
            "seconds",
        );
        u32::try_from(v).unwrap_or(default)
    }

    fn lease_time(&mut self, path: &str, v: Option<i64>) -> Option<u32> {
        let v = v?;
        if v < i64::from(MIN_LEASE_SECS) {
            self.err(
                path,
                format!("lease time {v} s is too short: at least {MIN_LEASE_SECS} s"),
            );
            return None;
        }
        match u32::try_from(v) {
            Ok(t) => Some(t),
            Err(_) => {
                self.err(
                    path,
                    format!(
                        "lease time {v} s is too long: at most {} s (4294967295 = infinite)",
                        u32::MAX
                    ),
                );
                None
            }
        }
    }

    fn boot_file(&mut self, path: &str, s: Option<&String>) -> Option<BootFile> {
        s.and_then(|s| self.check(path, BootFile::parse(s)))
    }

    fn run(mut self, w: wire::Config) -> Result<Policy, ConfigErrors> {
        let server = self.server(w.server);
        let lease = self.lease(w.lease);
        let classes = self.classes(&w.class);
        let networks = self.networks(&w.shared_network);
        let reservations = self.reservations(&w.reservation);
        let tftp = w.tftp.as_ref().map(|t| self.tftp(t, &server));
        let syslog = w.syslog.as_ref().map(|t| self.syslog(t, &server));
        let time = w.time.as_ref().map(|t| self.time(t, &server));
        let mta = w.mta.as_ref().map(|t| self.mta(t, &server));
        let acs = w
            .acs
            .as_ref()
            .map(|a| crate::acs::validate(a, server.bind, &mut self.errors));
        let vars = w
            .vars
            .as_ref()
            .map(|t| self.vars("vars", t))
            .unwrap_or_default();
        let subscribers = self.subscribers(&w.subscriber);
        self.files_checks(&w.class, &classes, tftp.as_ref());
        let http = w
            .http
            .as_ref()
            .map(|h| crate::http::http(h, &server, &mut self.errors));
        let upgrade_rules = crate::http::upgrade_rules(&w.upgrade_rule, &mut self.errors);
        crate::http::cross_checks(&classes, http.as_ref(), &upgrade_rules, &mut self.errors);
        if mta.is_some() {
            if tftp.is_none() {
                self.err(
                    "mta",
                    "MTA config files are served over TFTP: add the [tftp] table",
                );
            }
            if !classes.iter().any(|c| {
                c.config_file
                    .as_ref()
                    .is_some_and(|f| f.kind == ConfigFileKind::Mta)
            }) {
                self.err(
                    "mta",
                    "no class generates MTA files: give the MTA class a config_file with kind = \"mta\"",
                );
            }
        }
        self.cross_checks();
        if !self.errors.is_empty() {
            return Err(ConfigErrors(self.errors));
        }
        let index = build_index(&classes, &networks, &reservations);
        Ok(Policy {
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
            index,
        })
    }

    fn server(&mut self, s: Option<wire::Server>) -> ServerSettings {
        let s = s.unwrap_or_else(|| {
            self.err(
                "server",
                "the [server] table is missing (it must at least set lease_dir)",
            );
            wire::Server {
                lease_dir: Some("-".into()),
                ..Default::default()
            }
        });
        let server_id = self.opt_unicast("server.server_id", s.server_id.as_ref());
        if let Some(a) = server_id {
            self.infra.push((a, "server.server_id".into(), "server id"));
        }
        let bind = match &s.bind {
            None => Ipv4Addr::UNSPECIFIED,
            Some(b) => match parse::ipv4(b) {
                Ok(a) if a.is_unspecified() => a,
                Ok(_) => self
                    .unicast("server.bind", b)
                    .unwrap_or(Ipv4Addr::UNSPECIFIED),
                Err(m) => {
                    self.err("server.bind", m);
                    Ipv4Addr::UNSPECIFIED
                }
            },
        };
        let port = match s.port {
            None => 67,
            Some(0) => {
                self.err("server.port", "port 0 is not allowed");
                67
            }
            Some(p) => u16::try_from(p).unwrap_or_else(|_| {
                self.err("server.port", format!("{p} is not a UDP port (1..=65535)"));
                67
            }),
        };
        let workers = self.int(
            "server.workers",
            s.workers,
            0,
            0,
            4096,
            "workers (0 = one per core)",
        );
        let lease_dir = match &s.lease_dir {
            None => {
                self.err(
                    "server.lease_dir",
                    "is required: the directory of the durable lease log",
                );
                PathBuf::new()
            }
            Some(d) if d.trim().is_empty() => {
                self.err("server.lease_dir", "is empty");
                PathBuf::new()
            }
            Some(d) => PathBuf::from(d),
        };
        let offer_hold_secs = self.u32_secs("server.offer_hold_secs", s.offer_hold_secs, 30, 1);
        let decline_quarantine_secs = self.u32_secs(
            "server.decline_quarantine_secs",
            s.decline_quarantine_secs,
            600,
            0,
        );
        let forget_after_secs =
            self.u32_secs("server.forget_after_secs", s.forget_after_secs, 86_400, 0);
        let compact_after_records = self.int(
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
                self.err(
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
                self.err(
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
                self.err(
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
                self.err(
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
            decline_quarantine_secs,
            forget_after_secs,
            compact_after_records: u64::try_from(compact_after_records).unwrap_or(200_000),
            log_format,
            io,
            xdp_interface,
            xdp_mode,
        }
    }

    fn lease(&mut self, l: Option<wire::Lease>) -> LeaseDefaults {
        let l = l.unwrap_or_default();
        let default_time = match l.default_time {
            None => 86_400,
            v => self.lease_time("lease.default_time", v).unwrap_or(86_400),
        };
        let t1 = l.t1_ratio.unwrap_or(0.5);
        let t2 = l.t2_ratio.unwrap_or(0.875);
        let ok = |r: f64| r > 0.0 && r < 1.0;
        if !ok(t1) {
            self.err(
                "lease.t1_ratio",
                format!("{t1} must be between 0 and 1 (exclusive)"),
            );
        }
        if !ok(t2) {
            self.err(
                "lease.t2_ratio",
                format!("{t2} must be between 0 and 1 (exclusive)"),
            );
        }
        if ok(t1) && ok(t2) && t1 >= t2 {
            self.err(
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

    fn classes(&mut self, ws: &[wire::Class]) -> Vec<Class> {
        if ws.len() > usize::from(ClassId::MAX) + 1 {
            self.err(
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
                    self.err(format!("{path}.name"), "is required");
                    String::new()
                }
                Some(n) if n.trim().is_empty() => {
                    self.err(format!("{path}.name"), "class name is empty");
                    String::new()
                }
                Some(n) => {
                    if let Some(first) = first_path.get(n) {
                        self.err(
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
            out.push(self.class(&path, name, w));
        }
        out
    }

    fn class(&mut self, path: &str, name: String, w: &wire::Class) -> Class {
        let p = |f: &str| format!("{path}.{f}");
        let matcher = match w.matcher.as_deref() {
            None => Glob::never(),
            Some("") => {
                self.err(
                    p("match"),
                    "match pattern is empty (use \"*\" to match everything, or leave match out for a reservation-only class)",
                );
                Glob::never()
            }
            Some(m) => Glob::new(m),
        };
        let lease_time = self.lease_time(&p("lease_time"), w.lease_time);
        let next_server = self.opt_unicast(&p("next_server"), w.next_server.as_ref());
        let boot_file = self.boot_file(&p("boot_file"), w.boot_file.as_ref());
        let config_file = w
            .config_file
            .as_ref()
            .and_then(|c| self.config_file(&p("config_file"), c));
        let profile = w
            .profile
            .as_ref()
            .and_then(|c| crate::http::profile(&p("profile"), c, &mut self.errors));
        let tftp_server = w.tftp_server.as_ref().and_then(|t| {
            let r = parse::host(t).map(|()| t.clone());
            self.check(&p("tftp_server"), r)
        });
        let time_servers = self.addr_list(&p("time_servers"), &w.time_servers);
        let log_servers = self.addr_list(&p("log_servers"), &w.log_servers);
        let time_offset = w.time_offset.and_then(|t| {
            if (-MAX_TIME_OFFSET..=MAX_TIME_OFFSET).contains(&t) {
                i32::try_from(t).ok()
            } else {
                self.err(
                    p("time_offset"),
                    format!("time_offset {t} is out of range: at most ±{MAX_TIME_OFFSET} seconds"),
                );
                None
            }
        });
        let dns_servers = self.addr_list(&p("dns_servers"), &w.dns_servers);
        let domain_name = w.domain_name.as_ref().and_then(|d| {
            let r = parse::domain(d).map(|()| d.clone());
            self.check(&p("domain_name"), r)
        });
        let cablelabs = self.cablelabs(path, w);
        let acs_url = w.acs_url.as_ref().and_then(|u| {
            let r = parse::http_url(u).map(|()| u.clone());
            self.check(&p("acs_url"), r)
        });
        let provisioning_code = w.provisioning_code.as_ref().and_then(|c| {
            if c.is_empty() {
                self.err(p("provisioning_code"), "provisioning_code is empty");
                None
            } else if c.len() > MAX_PROVISIONING_CODE {
                self.err(
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
            self.err(
                path,
                "acs_url and provisioning_code together do not fit in option 43 (255 bytes)",
            );
        } else if let Some(u) = &acs_url
            && u.len() + 2 > 255
        {
            self.err(
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

    fn config_file(&mut self, path: &str, w: &wire::ConfigFile) -> Option<ConfigFileSpec> {
        let p = |f: &str| format!("{path}.{f}");
        let template = match w.template.as_deref() {
            None | Some("") => {
                self.err(
                    p("template"),
                    "template is required: the file the device's config is rendered from",
                );
                None
            }
            Some(t) => Some(PathBuf::from(t)),
        };
        let kind = match w.kind.as_deref() {
            None => {
                self.err(p("kind"), "kind is required: \"docsis\" or \"mta\"");
                None
            }
            Some(k) => self.check(&p("kind"), files::kind(k)),
        };
        let mta_hash = w
            .mta_hash
            .as_deref()
            .and_then(|h| self.check(&p("mta_hash"), files::mta_hash(h)));
        match kind {
            Some(ConfigFileKind::Docsis) => {
                if w.shared_secret.is_none() {
                    self.err(
                        p("shared_secret"),
                        "shared_secret is required for docsis files: the CMTS MIC key (\"\" if your CMTSs check none)",
                    );
                }
                if w.mta_hash.is_some() {
                    self.err(p("mta_hash"), "mta_hash applies to kind = \"mta\" only");
                }
            }
            Some(ConfigFileKind::Mta) if w.shared_secret.is_some() => {
                self.err(
                    p("shared_secret"),
                    "shared_secret applies to kind = \"docsis\" only (MTA files carry no MIC)",
                );
            }
            Some(ConfigFileKind::Mta) | None => {}
        }
        Some(ConfigFileSpec {
            template: template?,
            kind: kind?,
            shared_secret: w.shared_secret.clone(),
            mta_hash,
        })
    }

    /// A listener's bind address: the wildcard, a unicast address, or `[server].bind`.
    fn bind(&mut self, path: &str, b: Option<&String>, server: &ServerSettings) -> Ipv4Addr {
        match b {
            None => server.bind,
            Some(b) => match parse::ipv4(b) {
                Ok(a) if a.is_unspecified() => a,
                Ok(_) => self.unicast(path, b).unwrap_or(server.bind),
                Err(m) => {
                    self.err(path, m);
                    server.bind
                }
            },
        }
    }

    fn syslog(&mut self, w: &wire::Syslog, server: &ServerSettings) -> SyslogSettings {
        SyslogSettings {
            bind: self.bind("syslog.bind", w.bind.as_ref(), server),
            port: self.int("syslog.port", w.port, 514, 1, 65_535, "a UDP port") as u16,
            workers: self.int(
                "syslog.workers",
                w.workers,
                0,
                0,
                1024,
                "the worker count (0 = one per core)",
            ) as usize,
            events_per_device: self.int(
                "syslog.events_per_device",
                w.events_per_device,
                64,
                1,
                100_000,
                "the events kept per device",
            ) as usize,
            max_devices: self.int(
                "syslog.max_devices",
                w.max_devices,
                1_000_000,
                1,
                100_000_000,
                "the devices kept",
            ) as usize,
        }
    }

    fn mta(&mut self, w: &wire::Mta, server: &ServerSettings) -> MtaSettings {
        let community = |v: &mut Self, path: &str, c: &str| {
            if c.is_empty() || c.len() > 255 {
                v.err(path, "a community is 1 to 255 bytes");
            }
        };
        let inform_communities = w
            .inform_communities
            .clone()
            .unwrap_or_else(|| vec!["private".into()]);
        if inform_communities.is_empty() {
            self.err(
                "mta.inform_communities",
                "no community accepted: every INFORM would go unanswered",
            );
        }
        for (i, c) in inform_communities.iter().enumerate() {
            community(self, &format!("mta.inform_communities[{i}]"), c);
        }
        let set_community = w.set_community.clone().unwrap_or_else(|| "private".into());
        community(self, "mta.set_community", &set_community);
        let get_community = w
            .get_community
            .clone()
            .unwrap_or_else(|| set_community.clone());
        community(self, "mta.get_community", &get_community);
        MtaSettings {
            bind: self.bind("mta.bind", w.bind.as_ref(), server),
            port: self.int("mta.port", w.port, 162, 1, 65_535, "a UDP port") as u16,
            inform_communities,
            set_community,
            get_community,
            get_capabilities: w.get_capabilities.unwrap_or(false),
            max_flows: self.int(
                "mta.max_flows",
                w.max_flows,
                100_000,
                1,
                10_000_000,
                "the flows in progress",
            ) as usize,
        }
    }

    fn time(&mut self, w: &wire::Time, server: &ServerSettings) -> TimeSettings {
        let t = TimeSettings {
            bind: self.bind("time.bind", w.bind.as_ref(), server),
            port: self.int("time.port", w.port, 37, 1, 65_535, "a port") as u16,
            udp: w.udp.unwrap_or(true),
            tcp: w.tcp.unwrap_or(true),
        };
        if !t.udp && !t.tcp {
            self.err(
                "time",
                "udp and tcp are both off: leave [time] out to serve no time",
            );
        }
        t
    }

    fn tftp(&mut self, w: &wire::Tftp, server: &ServerSettings) -> TftpSettings {
        let bind = self.bind("tftp.bind", w.bind.as_ref(), server);
        let port = self.int("tftp.port", w.port, 69, 1, 65_535, "a UDP port") as u16;
        let workers = self.int(
            "tftp.workers",
            w.workers,
            server.workers as i64,
            0,
            1024,
            "the worker count (0 = one per core)",
        ) as usize;
        let max_blksize = self.int(
            "tftp.max_blksize",
            w.max_blksize,
            i64::from(files::DEFAULT_MAX_BLKSIZE),
            8,
            65_464,
            "the block size (RFC 2348)",
        ) as u16;
        let max_windowsize = self.int(
            "tftp.max_windowsize",
            w.max_windowsize,
            i64::from(files::DEFAULT_MAX_WINDOWSIZE),
            1,
            65_535,
            "the window size (RFC 7440)",
        ) as u16;
        let max_transfers = self.int(
            "tftp.max_transfers",
            w.max_transfers,
            files::DEFAULT_MAX_TRANSFERS as i64,
            1,
            10_000_000,
            "the transfer limit per worker",
        ) as usize;
        let root = match w.root.as_deref() {
            Some("") => {
                self.err(
                    "tftp.root",
                    "root is empty (leave it out to serve generated files only)",
                );
                None
            }
            r => r.map(PathBuf::from),
        };
        if w.allow_write == Some(true) && root.is_none() {
            self.err(
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

    fn vars(&mut self, path: &str, t: &toml::Table) -> Vars {
        let mut errs = Vec::new();
        let v = files::vars(path, t, &mut errs);
        for (p, m) in errs {
            self.err(p, m);
        }
        v
    }

    fn subscribers(&mut self, ws: &[wire::Subscriber]) -> Subscribers {
        let mut out = Subscribers::new();
        for (i, w) in ws.iter().enumerate() {
            let path = format!("subscriber[{i}]");
            let mac = match w.mac.as_deref() {
                None => {
                    self.err(format!("{path}.mac"), "mac is required");
                    None
                }
                Some(m) => self.check(&format!("{path}.mac"), parse::mac(m)),
            };
            let vars = w
                .vars
                .as_ref()
                .map(|t| self.vars(&format!("{path}.vars"), t))
                .unwrap_or_default();
            if let Some(mac) = mac
                && out.insert(mac, vars).is_some()
            {
                self.err(format!("{path}.mac"), "another subscriber has this mac");
            }
        }
        out
    }

    /// A generated file must be reachable: served by a TFTP server, named per device, and its
    /// name must not be claimed by two classes.
    /// Looks at the wire classes for `config_file`, so that the checks run even when the
    /// table itself had errors.
    fn files_checks(&mut self, ws: &[wire::Class], classes: &[Class], tftp: Option<&TftpSettings>) {
        let mut seen: StdMap<String, usize> = StdMap::new();
        for (i, (w, c)) in ws.iter().zip(classes).enumerate() {
            if w.config_file.is_none() {
                continue;
            }
            let path = format!("class[{i}].config_file");
            if tftp.is_none() {
                self.err(
                    &path,
                    "a generated config file needs the [tftp] table (the server that serves it)",
                );
            }
            match &c.boot_file {
                None => self.err(
                    &path,
                    "a generated config file needs boot_file, the name the device is told to fetch (e.g. \"cm/{mac}.cfg\")",
                ),
                Some(b) if b.is_static() => self.err(
                    format!("class[{i}].boot_file"),
                    "with config_file, boot_file must name the device with {mac}, {MAC} or {mac:}, so a request says whose file it is",
                ),
                Some(b) => {
                    if let Some(other) = seen.insert(b.template().to_owned(), i) {
                        self.err(
                            format!("class[{i}].boot_file"),
                            format!("class[{other}] generates files under the same name; a request could not tell which class renders it"),
                        );
                    }
                }
            }
        }
    }

    fn cablelabs(&mut self, path: &str, w: &wire::Class) -> CableLabsOptions {
        let p = |f: &str| format!("{path}.{f}");
        let primary_dhcp = self.opt_unicast(&p("primary_dhcp"), w.primary_dhcp.as_ref());
        let secondary_dhcp = self.opt_unicast(&p("secondary_dhcp"), w.secondary_dhcp.as_ref());
        let provisioning_server = w.provisioning_server.as_ref().and_then(|s| {
            let looks_numeric = !s.is_empty() && s.bytes().all(|c| c.is_ascii_digit() || c == b'.');
            if looks_numeric {
                self.unicast(&p("provisioning_server"), s)
                    .map(ProvisioningServer::Ipv4)
            } else {
                let r = parse::domain(s).map(|()| ProvisioningServer::Fqdn(s.clone()));
                self.check(&p("provisioning_server"), r)
            }
        });
        let realm = match (&w.flow, &w.realm) {
            (Some(_), Some(_)) => {
                self.err(
                    path,
                    "flow and realm are both set: flow selects a BASIC/HYBRID flow, realm selects the SECURE (Kerberos) flow; set only one",
                );
                None
            }
            (Some(f), None) => match ProvisioningFlow::from_name(f) {
                Some(f) => Some(Realm::Flow(f)),
                None => {
                    self.err(
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
                self.check(&p("realm"), r2)
            }
            (None, None) => None,
        };
        let provisioning_timer = w.provisioning_timer.and_then(|t| match u8::try_from(t) {
            Ok(t) => Some(t),
            Err(_) => {
                self.err(
                    p("provisioning_timer"),
                    format!("{t} is out of range: provisioning_timer is 0..=255 minutes"),
                );
                None
            }
        });
        let kdc_servers = self.addr_list(&p("kdc_servers"), &w.kdc_servers);
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
            self.err(
                path,
                format!(
                    "the PacketCable options (option 122) would take {len} bytes; at most 255 fit"
                ),
            );
        }
        c
    }

    fn networks(&mut self, ws: &[wire::SharedNetwork]) -> Vec<SharedNetwork> {
        if ws.is_empty() {
            self.err(
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
                    self.err(format!("{path}.name"), "is required");
                    String::new()
                }
                Some(n) if n.trim().is_empty() => {
                    self.err(format!("{path}.name"), "shared network name is empty");
                    String::new()
                }
                Some(n) => {
                    if let Some(first) = names.get(n) {
                        self.err(
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
                let Some(a) = self.unicast(&p, s) else {
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
                    self.err(&p, msg);
                } else {
                    relays.insert(a, (ni, format!("{path}.relays")));
                    self.infra.push((a, p, "relay"));
                    net_relays.push(a);
                }
            }
            let mut net_ifaces = Vec::with_capacity(w.interfaces.len());
            for (i, s) in w.interfaces.iter().enumerate() {
                let p = format!("{path}.interfaces[{i}]");
                let Some(a) = self.unicast(&p, s) else {
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
                    self.err(&p, msg);
                } else {
                    interfaces.insert(a, (ni, format!("{path}.interfaces")));
                    self.infra.push((a, p, "interface address"));
                    net_ifaces.push(a);
                }
            }
            if w.subnet.is_empty() {
                self.err(
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
                    self.subnet(ni, &format!("{path}.subnet[{si}]"), s, &mut next_pool_id)
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
            self.err(
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
        net: usize,
        path: &str,
        w: &wire::Subnet,
        next_pool_id: &mut usize,
    ) -> Subnet {
        let p = |f: &str| format!("{path}.{f}");
        let prefix = match &w.prefix {
            None => {
                self.err(p("prefix"), "is required (e.g. prefix = \"10.1.0.0/24\")");
                None
            }
            Some(s) => self.check(&p("prefix"), parse::prefix(s)),
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

        let routers = self.addr_list(&p("routers"), &w.routers);
        for (i, r) in routers.iter().enumerate() {
            let rp = format!("{}[{i}]", p("routers"));
            let a = u32::from(*r);
            if prefix.is_some() {
                if !(first..=last).contains(&a) {
                    self.err(&rp, format!("router {r} is outside subnet {prefix_str}"));
                } else if a == first || a == last {
                    self.err(
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
                None => self.err(cp, format!("class {c:?} is not defined")),
                Some(id) if classes.contains(id) => {
                    self.err(cp, format!("class {c:?} is listed twice"))
                }
                Some(&id) => classes.push(id),
            }
        }
        let lease_time = self.lease_time(&p("lease_time"), w.lease_time);

        let mut pools = Vec::with_capacity(w.pool.len());
        for (i, wp) in w.pool.iter().enumerate() {
            let pp = format!("{path}.pool[{i}]");
            let id = u16::try_from(*next_pool_id).unwrap_or(u16::MAX);
            *next_pool_id += 1;
            let start = self.pool_end(&pp, "start", wp.start.as_ref());
            let end = self.pool_end(&pp, "end", wp.end.as_ref());
            let (Some(start), Some(end)) = (start, end) else {
                continue;
            };
            let (s, e) = (u32::from(start), u32::from(end));
            if s > e {
                self.err(&pp, format!("pool {start}-{end}: start is after end"));
                continue;
            }
            if prefix.is_some() {
                let s_in = (first..=last).contains(&s);
                let e_in = (first..=last).contains(&e);
                let range = format!("pool {start}-{end}");
                match (s_in, e_in) {
                    (false, false) if !(s < first && e > last) => {
                        self.err(&pp, format!("{range} is outside subnet {prefix_str}"));
                    }
                    (false, _) => self.err(
                        format!("{pp}.start"),
                        format!(
                            "{range} is not inside subnet {prefix_str} ({start} is outside it)"
                        ),
                    ),
                    (true, false) => self.err(
                        format!("{pp}.end"),
                        format!("{range} is not inside subnet {prefix_str} ({end} is outside it)"),
                    ),
                    (true, true) => {
                        if s == first {
                            self.err(
                                format!("{pp}.start"),
                                format!("{range} includes {start}, the network address of subnet {prefix_str}"),
                            );
                        }
                        if e == last {
                            self.err(
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

    fn pool_end(&mut self, pp: &str, field: &str, v: Option<&String>) -> Option<Ipv4Addr> {
        let path = format!("{pp}.{field}");
        match v {
            None => {
                self.err(path, "is required");
                None
            }
            Some(s) => self.unicast(&path, s),
        }
    }

    /// Reservations, each with its path.
    fn reservations(&mut self, ws: &[wire::Reservation]) -> Vec<(Reservation, String)> {
        let mut by_key: StdMap<ReservationKey, String> = StdMap::new();
        let mut by_addr: StdMap<Ipv4Addr, String> = StdMap::new();
        let mut out = Vec::with_capacity(ws.len());
        for (i, w) in ws.iter().enumerate() {
            let path = format!("reservation[{i}]");
            let key = match (&w.mac, &w.remote_id) {
                (Some(_), Some(_)) => {
                    self.err(&path, "set exactly one of mac or remote_id, not both");
                    None
                }
                (None, None) => {
                    self.err(&path, "needs mac or remote_id to identify the client");
                    None
                }
                (Some(m), None) => self
                    .check(&format!("{path}.mac"), parse::mac(m))
                    .map(|m| (ReservationKey::Mac(m), format!("{path}.mac"))),
                (None, Some(r)) => self
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
                    self.err(kp, msg);
                    None
                } else {
                    by_key.insert(k.clone(), path.clone());
                    Some(k)
                }
            });
            let ap = format!("{path}.address");
            let address = match &w.address {
                None => {
                    self.err(&ap, "is required");
                    None
                }
                Some(s) => self.unicast(&ap, s),
            };
            let address = address.and_then(|a| {
                if let Some(first) = by_addr.get(&a) {
                    let msg = format!("address {a} is already reserved by {first}");
                    self.err(&ap, msg);
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
                    self.err(
                        format!("{path}.class"),
                        format!("class {c:?} is not defined"),
                    );
                    None
                }
            });
            let boot_file = self.boot_file(&format!("{path}.boot_file"), w.boot_file.as_ref());
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
    fn cross_checks(&mut self) {
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
                self.errors.push(ConfigError::new(
                    format!("{path}.prefix"),
                    format!(
                        "subnet {} overlaps subnet {} ({p2})",
                        range_prefix(first, last),
                        range_prefix(f2, l2)
                    ),
                ));
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
                self.errors.push(ConfigError::new(
                    path.clone(),
                    format!(
                        "pool {}-{} overlaps pool {}-{} ({p2})",
                        Ipv4Addr::from(s),
                        Ipv4Addr::from(e),
                        Ipv4Addr::from(s2),
                        Ipv4Addr::from(e2)
                    ),
                ));
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
                self.errors.push(ConfigError::new(
                    path.clone(),
                    format!(
                        "{what} {a} is inside pool {}-{} ({pp}); it would be leased to a client",
                        Ipv4Addr::from(*s),
                        Ipv4Addr::from(*e)
                    ),
                ));
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
                None => self.errors.push(ConfigError::new(
                    ap,
                    format!("address {address} is not inside any subnet's prefix"),
                )),
                Some(&(f, l, _, ref sp)) if a == f || a == l => self.errors.push(ConfigError::new(
                    ap,
                    format!(
                        "address {address} is the network or broadcast address of subnet {} ({sp})",
                        range_prefix(f, l)
                    ),
                )),
                Some(_) => {
                    if let Some(ip) = infra_at.get(&address) {
                        self.errors.push(ConfigError::new(
                            ap,
                            format!("address {address} is already used by {ip}"),
                        ));
                    }
                }
            }
        }
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

fn build_index(
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
