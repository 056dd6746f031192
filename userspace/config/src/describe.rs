//! `provd check-config`'s human summary of a [`Policy`].

use std::fmt::Write as _;
use std::net::Ipv4Addr;

use crate::dhcp::{Class, ProvisioningServer, Realm, ReservationKey};
use crate::files::ConfigFileKind;
use crate::http::RuleOption;
use crate::policy::Policy;

impl Policy {
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
                RuleOption::Opt66 => 66,
                RuleOption::Opt160 => 160,
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
