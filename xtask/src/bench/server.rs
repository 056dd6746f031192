//! The servers under test: config rendered from `benches/peers/` into a temporary directory,
//! started inside the server namespace, waited for, and stopped by PID (SIGTERM, then SIGKILL)
//! when the guard drops.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::ExitStatus;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

use provd_rig::child::tail;
use provd_rig::topo::{
    BENCH_PREFIX_LEN as LINK_PREFIX_LEN, BENCH_RELAY_IP as RELAY_IP, BENCH_SERVER_IP as SERVER_IP,
};
use provd_rig::{Child, Provd, Topology};

const PROVD_TOML: &str = include_str!("../../../benches/peers/provd.toml");
const KEA_JSON: &str = include_str!("../../../benches/peers/kea-dhcp4.json");
const DNSMASQ_CONF: &str = include_str!("../../../benches/peers/dnsmasq.conf");
const DHCPD_CONF: &str = include_str!("../../../benches/peers/dhcpd.conf");

/// The address pool every server hands out (relay-selected).
pub const POOL_NET: Ipv4Addr = Ipv4Addr::new(198, 19, 0, 0);
pub const POOL_PREFIX_LEN: u8 = 16;
pub const POOL_START: Ipv4Addr = Ipv4Addr::new(198, 19, 0, 10);
pub const POOL_END: Ipv4Addr = Ipv4Addr::new(198, 19, 255, 250);
pub const LEASE_TIME: u32 = 3600;
/// Worker threads for the servers that have them (provd, Kea with multi-threading).
const WORKERS: u32 = 2;
const READY_TIMEOUT: Duration = Duration::from_secs(15);
const STOP_GRACE: Duration = Duration::from_secs(5);

pub fn pool_size() -> u32 {
    u32::from(POOL_END) - u32::from(POOL_START) + 1
}

fn mask(len: u8) -> Ipv4Addr {
    Ipv4Addr::from(u32::MAX.checked_shl(32 - u32::from(len)).unwrap_or(0))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Provd,
    Kea,
    KeaMt,
    Dnsmasq,
    IscDhcpd,
}

impl Kind {
    pub fn parse(s: &str) -> Result<Kind> {
        Ok(match s {
            "provd" => Kind::Provd,
            "kea" => Kind::Kea,
            "kea-mt" => Kind::KeaMt,
            "dnsmasq" => Kind::Dnsmasq,
            "isc-dhcpd" | "dhcpd" => Kind::IscDhcpd,
            _ => bail!("unknown server {s:?} (known: provd, kea, kea-mt, dnsmasq, isc-dhcpd)"),
        })
    }

    pub fn name(self) -> &'static str {
        match self {
            Kind::Provd => "provd",
            Kind::Kea => "kea",
            Kind::KeaMt => "kea-mt",
            Kind::Dnsmasq => "dnsmasq",
            Kind::IscDhcpd => "isc-dhcpd",
        }
    }

    fn program(self) -> (&'static str, &'static str) {
        match self {
            Kind::Provd => ("provd", "cargo build --release -p provd"),
            Kind::Kea | Kind::KeaMt => ("/usr/sbin/kea-dhcp4", "apt-get install kea-dhcp4-server"),
            Kind::Dnsmasq => ("/usr/sbin/dnsmasq", "apt-get install dnsmasq-base"),
            Kind::IscDhcpd => ("/usr/sbin/dhcpd", "apt-get install isc-dhcp-server"),
        }
    }
}

/// Fills `{{NAME}}` placeholders; any left over is an error.
pub fn render(template: &str, vars: &BTreeMap<&str, String>) -> Result<String> {
    let mut out = template.to_owned();
    for (k, v) in vars {
        out = out.replace(&format!("{{{{{k}}}}}"), v);
    }
    if let Some(at) = out.find("{{") {
        let rest = &out[at..];
        let end = rest.find("}}").map_or(rest.len(), |e| e + 2);
        bail!("template placeholder {} has no value", &rest[..end]);
    }
    Ok(out)
}

/// How provd runs under the bench: which I/O path it is forced onto, and whether it is the null
/// responder (canned replies, the ceiling of what the generator and the path carry).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProvdMode {
    pub io: &'static str,
    pub null: bool,
    /// Devices put into provd's store before it starts (`provd import devices`); 0: empty.
    pub store_devices: u32,
    /// The load generator's salt for the seeded MACs, so its clients are among the devices.
    pub store_salt: u8,
}

impl Default for ProvdMode {
    fn default() -> Self {
        ProvdMode {
            io: "auto",
            null: false,
            store_devices: 0,
            store_salt: 0,
        }
    }
}

/// A running server. Dropping it stops the process (by PID) and removes its directory.
#[derive(Debug)]
pub struct Running {
    pub kind: Kind,
    /// What the server says it runs on (provd's `path=`), `-` for peers.
    pub path: String,
    process: Process,
    stopped: bool,
    // Declared last: removed after the process is gone.
    dir: tempfile::TempDir,
}

/// provd under the rig's launcher; the peers under their own.
#[derive(Debug)]
enum Process {
    Provd(Box<Provd>),
    Peer(Child),
}

impl Running {
    pub fn start(kind: Kind, link: &Topology, provd_bin: Option<&Path>) -> Result<Running> {
        Self::start_mode(kind, link, provd_bin, ProvdMode::default())
    }

    pub fn start_mode(
        kind: Kind,
        link: &Topology,
        provd_bin: Option<&Path>,
        mode: ProvdMode,
    ) -> Result<Running> {
        let dir = tempfile::Builder::new()
            .prefix(&format!("provd-bench-{}-", kind.name()))
            .tempdir()
            .context("making a temporary directory")?;
        let d = dir
            .path()
            .to_str()
            .context("temporary path is not UTF-8")?
            .to_owned();
        let vars: BTreeMap<&str, String> = [
            ("DIR", d.clone()),
            ("IFACE", link.server_if().to_owned()),
            ("SERVER_IP", SERVER_IP.to_string()),
            ("RELAY_IP", RELAY_IP.to_string()),
            (
                "LINK_NET",
                Ipv4Addr::from(u32::from(SERVER_IP) & u32::from(mask(LINK_PREFIX_LEN))).to_string(),
            ),
            ("LINK_MASK", mask(LINK_PREFIX_LEN).to_string()),
            ("POOL_NET", POOL_NET.to_string()),
            ("POOL_PREFIX_LEN", POOL_PREFIX_LEN.to_string()),
            ("POOL_MASK", mask(POOL_PREFIX_LEN).to_string()),
            ("POOL_START", POOL_START.to_string()),
            ("POOL_END", POOL_END.to_string()),
            ("LEASE_TIME", LEASE_TIME.to_string()),
            ("LEASE_MAX", (pool_size() + 1000).to_string()),
            ("WORKERS", WORKERS.to_string()),
            ("KEA_MT", (kind == Kind::KeaMt).to_string()),
            ("IO", mode.io.to_string()),
        ]
        .into_iter()
        .collect();
        let (program, install) = kind.program();
        let program: PathBuf = match (kind, provd_bin) {
            (Kind::Provd, Some(p)) => p.to_owned(),
            (Kind::Provd, None) => bail!("no provd binary (build failed?)"),
            _ => PathBuf::from(program),
        };
        if !program.exists() {
            bail!("{} not found: {install}", program.display());
        }
        if kind == Kind::Provd {
            let mut provd = Provd::new(&program, dir.path())
                .label("server")
                .ready_timeout(READY_TIMEOUT)
                .stop_grace(STOP_GRACE)
                .interrupt(super::check_interrupted);
            provd.lease_dir()?;
            provd = provd.write_config(&render(PROVD_TOML, &vars)?)?;
            if mode.null {
                provd = provd.arg("--null-responder");
            }
            if mode.store_devices > 0 {
                super::tools::seed_store(
                    provd.bin(),
                    provd.config(),
                    dir.path(),
                    mode.store_devices,
                    mode.store_salt,
                )?;
            }
            let path = provd
                .start(&link.server)
                .with_context(|| format!("starting {}", kind.name()))?
                .path
                .clone();
            return Ok(Running {
                kind,
                path,
                process: Process::Provd(Box::new(provd)),
                stopped: false,
                dir,
            });
        }
        let write = |name: &str, text: &str| -> Result<String> {
            let p = format!("{d}/{name}");
            std::fs::write(&p, text).with_context(|| format!("writing {p}"))?;
            Ok(p)
        };
        let mut cmd = link.server.command(&program);
        match kind {
            Kind::Provd => unreachable!("provd started above"),
            Kind::Kea | Kind::KeaMt => {
                let cfg = write("kea-dhcp4.json", &render(KEA_JSON, &vars)?)?;
                cmd.args(["-c", &cfg])
                    .env("KEA_PIDFILE_DIR", &d)
                    .env("KEA_LOCKFILE_DIR", &d);
            }
            Kind::Dnsmasq => {
                let cfg = write("dnsmasq.conf", &render(DNSMASQ_CONF, &vars)?)?;
                cmd.arg(format!("--conf-file={cfg}"))
                    .arg(format!("--pid-file={d}/dnsmasq.pid"));
            }
            Kind::IscDhcpd => {
                let cfg = write("dhcpd.conf", &render(DHCPD_CONF, &vars)?)?;
                let leases = write("dhcpd.leases", "")?;
                cmd.args(["-4", "-f", "-q", "-cf", &cfg, "-lf", &leases])
                    .args(["-pf", &format!("{d}/dhcpd.pid"), link.server_if()]);
            }
        }
        let child = Child::spawn("server", cmd, dir.path())
            .with_context(|| format!("starting {}", kind.name()))?;
        let mut running = Running {
            kind,
            path: "-".into(),
            process: Process::Peer(child),
            stopped: false,
            dir,
        };
        running.wait_peer_ready()?;
        Ok(running)
    }

    pub fn pid(&self) -> u32 {
        match &self.process {
            Process::Provd(p) => p.pid(),
            Process::Peer(c) => c.pid(),
        }
    }

    /// A peer has no ready line: UDP 67 bound in its namespace is the signal.
    fn wait_peer_ready(&mut self) -> Result<()> {
        let t0 = Instant::now();
        loop {
            super::check_interrupted()?;
            if let Process::Peer(child) = &mut self.process
                && let Some(status) = child.try_wait()?
            {
                self.stopped = true;
                bail!(
                    "{} exited before it was ready ({status}); log:\n{}",
                    self.kind.name(),
                    self.log_tail()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
            if provd_rig::procnet::udp_bound_by(self.pid(), None, 67) {
                return Ok(());
            }
            if t0.elapsed() > READY_TIMEOUT {
                bail!(
                    "{} not ready after {:?}; log:\n{}",
                    self.kind.name(),
                    READY_TIMEOUT,
                    self.log_tail()
                );
            }
        }
    }

    /// Fails if the server has exited.
    pub fn check_alive(&mut self) -> Result<()> {
        let status = match &mut self.process {
            Process::Provd(p) => p.exit_status()?,
            Process::Peer(c) => c.try_wait()?,
        };
        if let Some(status) = status {
            self.stopped = true;
            bail!(
                "{} died during the run ({status}); log:\n{}",
                self.kind.name(),
                self.log_tail()
            );
        }
        Ok(())
    }

    /// The last lines of the server's output, for error messages.
    pub fn log_tail(&self) -> String {
        match &self.process {
            Process::Provd(p) => p.log_tail(15),
            Process::Peer(c) => tail(&format!("{}{}", c.stdout_text(), c.stderr_text()), 15),
        }
    }

    /// SIGTERM, then SIGKILL after a grace period; returns how it ended.
    pub fn stop(&mut self) -> Result<Option<ExitStatus>> {
        if self.stopped {
            return Ok(None);
        }
        self.stopped = true;
        let (status, clean) = match &mut self.process {
            Process::Provd(p) => match p.terminate()? {
                Some(r) => r,
                None => return Ok(None),
            },
            Process::Peer(c) => match c.try_wait()? {
                Some(s) => (s, true),
                None => c.stop(libc::SIGTERM, STOP_GRACE)?,
            },
        };
        if !clean {
            eprintln!(
                "bench: {} ignored SIGTERM for {STOP_GRACE:?}; killed it",
                self.kind.name()
            );
        }
        Ok(Some(status))
    }

    pub fn dir(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Err(e) = self.stop() {
            eprintln!("bench: stopping {}: {e:#}", self.kind.name());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn templates_render_completely() {
        let vars: BTreeMap<&str, String> = [
            "DIR",
            "IFACE",
            "SERVER_IP",
            "RELAY_IP",
            "LINK_NET",
            "LINK_MASK",
            "POOL_NET",
            "POOL_PREFIX_LEN",
            "POOL_MASK",
            "POOL_START",
            "POOL_END",
            "LEASE_TIME",
            "LEASE_MAX",
            "WORKERS",
            "KEA_MT",
            "IO",
        ]
        .into_iter()
        .map(|k| (k, "1".to_owned()))
        .collect();
        for t in [PROVD_TOML, KEA_JSON, DNSMASQ_CONF, DHCPD_CONF] {
            render(t, &vars).unwrap();
        }
        assert!(render("a {{NOPE}} b", &vars).is_err());
        assert_eq!(mask(16), Ipv4Addr::new(255, 255, 0, 0));
        assert_eq!(mask(24), Ipv4Addr::new(255, 255, 255, 0));
        assert_eq!(pool_size(), 65_521);
    }
}
