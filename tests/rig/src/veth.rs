//! veth pairs between two of this run's namespaces. Both ends are created directly inside their
//! namespaces, so interface names never meet in the root namespace and cannot collide with
//! another run's.

use std::net::Ipv4Addr;

use anyhow::{Context, Result};

use crate::cmd;
use crate::netns::Netns;

/// One end of a pair: its namespace and interface name.
#[derive(Debug, Clone)]
pub struct End {
    pub netns: String,
    pub ifname: String,
}

impl End {
    fn ip(&self, args: &[&str]) -> Result<String> {
        let mut full = vec!["-n", self.netns.as_str()];
        full.extend_from_slice(args);
        cmd::ip(&full)
    }

    /// Adds `addr/prefix` to this end.
    pub fn add_addr(&self, addr: Ipv4Addr, prefix: u8) -> Result<()> {
        self.ip(&[
            "addr",
            "add",
            &format!("{addr}/{prefix}"),
            "dev",
            &self.ifname,
        ])
        .map(drop)
    }

    /// Whether this end has carrier (LOWER_UP).
    pub fn running(&self) -> Result<bool> {
        Ok(self
            .ip(&["-o", "link", "show", "dev", &self.ifname])?
            .contains("LOWER_UP"))
    }

    /// The MAC address of this end.
    pub fn mac(&self) -> Result<[u8; 6]> {
        let out = self.ip(&["-o", "link", "show", "dev", &self.ifname])?;
        let mac = out
            .split_whitespace()
            .skip_while(|w| *w != "link/ether")
            .nth(1)
            .with_context(|| format!("no link/ether in {out:?}"))?;
        crate::parse_mac(mac)
    }
}

/// A veth pair `a` (in one namespace) ↔ `b` (in another), both up. Dropping it deletes the pair
/// (deleting either end removes both); if the namespace went first, the pair went with it.
#[derive(Debug)]
pub struct VethPair {
    pub a: End,
    pub b: End,
}

impl VethPair {
    /// Creates `a_if` in `a_ns` paired with `b_if` in `b_ns`, and brings both up. Names are at
    /// most 15 bytes (IFNAMSIZ).
    pub fn new(a_ns: &Netns, a_if: &str, b_ns: &Netns, b_if: &str) -> Result<Self> {
        anyhow::ensure!(
            a_if.len() < 16 && b_if.len() < 16,
            "interface names must be at most 15 bytes: {a_if:?}, {b_if:?}"
        );
        a_ns.ip(&[
            "link",
            "add",
            a_if,
            "type",
            "veth",
            "peer",
            "name",
            b_if,
            "netns",
            b_ns.name(),
        ])
        .with_context(|| {
            format!(
                "creating veth {}:{a_if} <-> {}:{b_if}",
                a_ns.name(),
                b_ns.name()
            )
        })?;
        let pair = VethPair {
            a: End {
                netns: a_ns.name().to_string(),
                ifname: a_if.to_string(),
            },
            b: End {
                netns: b_ns.name().to_string(),
                ifname: b_if.to_string(),
            },
        };
        pair.a.ip(&["link", "set", a_if, "up"])?;
        pair.b.ip(&["link", "set", b_if, "up"])?;
        Ok(pair)
    }
}

impl VethPair {
    /// Waits until both ends have carrier (LOWER_UP): it comes up asynchronously after `up`, and
    /// some servers (Kea) skip an interface that is not yet running.
    pub fn wait_running(&self, timeout: std::time::Duration) -> Result<()> {
        let what = format!(
            "veth {}:{} <-> {}:{} to come up",
            self.a.netns, self.a.ifname, self.b.netns, self.b.ifname
        );
        crate::wait::until(&what, timeout, std::time::Duration::from_millis(10), || {
            Ok((self.a.running()? && self.b.running()?).then_some(()))
        })
    }
}

impl Drop for VethPair {
    fn drop(&mut self) {
        // Fails harmlessly when the namespace (and with it the pair) is already gone.
        let _ = std::process::Command::new("ip")
            .args(["-n", &self.a.netns, "link", "del", &self.a.ifname])
            .output();
    }
}
