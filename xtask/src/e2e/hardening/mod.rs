//! The `hardening` suite: one scenario per finding of the security and reliability review
//! (issue 18), each a reproduction of the attack as the review ran it, judged on what crosses
//! the wire and what provd counts. The review's numbers are the failing baseline each scenario
//! names; every scenario holds now.
//!
//! The scenarios are grouped by role, one module each, so that every role's attacks and
//! defences sit side by side:
//! - `dhcp`: a failed lease-log write, and one relay trying to take a whole pool (items 1, 2);
//! - `tftp`: reflection and slot exhaustion by spoofed requests (item 3);
//! - `web`: the ACS's namespace bombs and brute force, phone-profile enforce and the task API
//!   (items 4, 6, 7);
//! - `mta`: forged and hijacking enrollment INFORMs (item 5);
//! - `config`: check-config on an unrenderable template (item 8a);
//! - `misc`: time and syslog floods (item 8b, 8c).

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Result;
use provd_rig::{Netns, Provd};

use super::{Args, Scenarios};

mod config;
mod dhcp;
mod mta;
mod profile;
mod tftp;
mod web;

/// Everything a hardening scenario needs to know about the run.
#[derive(Debug)]
pub struct Ctx {
    pub provd: PathBuf,
}

impl Ctx {
    /// provd with `config` (checked by `provd check-config` first) in `ns`, serving DHCP.
    pub fn start_dhcp_server(&self, dir: &Path, config: &str, ns: &Netns) -> Result<Provd> {
        let mut provd = Provd::new(&self.provd, dir)
            .label("provd")
            .write_config(config)?;
        provd.check_config()?;
        provd.start(ns)?;
        provd.wait_udp(None, 67, Duration::from_secs(10))?;
        Ok(provd)
    }
}

/// Every module's scenarios, in the order of the items.
pub fn scenarios() -> Scenarios<Ctx> {
    // Each role's module adds its scenarios here, one `extend` line per module.
    let mut all = Vec::new();
    all.extend(dhcp::scenarios());
    all.extend(tftp::scenarios());
    all.extend(web::scenarios());
    all.extend(profile::scenarios());
    all.extend(mta::scenarios());
    all.extend(config::scenarios());
    all
}

pub fn run(args: &Args) -> Result<()> {
    let scenarios = scenarios();
    let tools = [
        "ip",
        "tcpdump",
        "dhclient",
        "dhcrelay",
        "perfdhcp",
        "curl",
        "sysctl",
        "snmpd",
        "snmpinform",
        "python3",
        "tftp",
        "atftp",
    ];
    let bins = super::prepare(args, &scenarios, &tools, &["provd"])?;
    let ctx = Ctx { provd: bins.provd };
    super::run_scenarios("hardening", "server provd", &ctx, &scenarios, args)
}
