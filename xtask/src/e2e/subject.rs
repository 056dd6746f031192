//! The server under test: provd, or Kea with an equivalent config. Both run in the server
//! namespace with their lease state in the scenario's directory, so a restart after SIGKILL sees
//! exactly what the killed process left on disk.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use anyhow::{Context, Result, bail, ensure};
use provd_rig::leases::{self, Lease};
use provd_rig::{Child, Netns, Provd, cmd, wait};

const PROVD_TEMPLATE: &str = include_str!("../../../tests/e2e/provd.toml.in");
const KEA_TEMPLATE: &str = include_str!("../../../tests/e2e/kea-dhcp4.json.in");

/// How long a server may take to become ready (a restart replays its lease log).
const READY_TIMEOUT: Duration = Duration::from_secs(60);

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Subject {
    Provd,
    Kea,
}

/// `cargo build --release -p <package>` into the repository's default target dir.
pub fn build_release(root: &Path, package: &str) -> Result<()> {
    eprintln!("e2e: building {package} (cargo build --release -p {package})");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let out = cmd::output_timeout(
        Command::new(cargo)
            .current_dir(root)
            .env_remove("CARGO_TARGET_DIR")
            .args(["build", "--release", "-p", package, "--target-dir"])
            .arg(root.join("target")),
        Duration::from_secs(1800),
    )?;
    if !out.status.success() {
        bail!(
            "building {package} failed:\n{}",
            provd_rig::child::tail(&String::from_utf8_lossy(&out.stderr), 30)
        );
    }
    Ok(())
}

/// A running (or killed) server with its config and durable state.
#[derive(Debug)]
pub struct Server {
    netns: String,
    lease_dir: PathBuf,
    run: Run,
}

/// provd runs under the rig's launcher; Kea keeps its own.
#[derive(Debug)]
enum Run {
    Provd(Box<Provd>),
    Kea(Kea),
}

#[derive(Debug)]
struct Kea {
    dir: PathBuf,
    config: PathBuf,
    child: Option<Child>,
    starts: u32,
}

impl Server {
    /// Renders the config into `dir`, validates it (provd: `provd check-config`), starts the
    /// server in `ns` and waits until it is ready and UDP 67 is bound.
    pub fn start(ctx: &super::Ctx, ns: &Netns, dir: &Path) -> Result<Server> {
        let lease_dir = dir.join("leases");
        std::fs::create_dir_all(&lease_dir)?;
        Server::start_on(ctx, ns, dir, lease_dir)
    }

    /// [`Server::start`] with the lease state in `lease_dir`, which the server creates itself
    /// if it does not exist yet (provd does; the power-cut scenario relies on it).
    pub fn start_on(
        ctx: &super::Ctx,
        ns: &Netns,
        dir: &Path,
        lease_dir: PathBuf,
    ) -> Result<Server> {
        let run = match ctx.subject {
            Subject::Provd => {
                let provd = Provd::new(&ctx.provd, dir)
                    .numbered_label("server-", 0)
                    .ready_timeout(READY_TIMEOUT)
                    .env("RUST_BACKTRACE", "1")
                    .write_config(
                        &PROVD_TEMPLATE
                            .replace("@LEASE_DIR@", &lease_dir.to_string_lossy())
                            .replace("@STORE_DB@", &dir.join("store.db").to_string_lossy()),
                    )?;
                provd.check_config()?;
                Run::Provd(Box::new(provd))
            }
            Subject::Kea => {
                let config = dir.join("kea-dhcp4.json");
                std::fs::write(
                    &config,
                    KEA_TEMPLATE.replace(
                        "@LEASE_FILE@",
                        &lease_dir.join("kea-leases4.csv").to_string_lossy(),
                    ),
                )?;
                Run::Kea(Kea {
                    dir: dir.to_path_buf(),
                    config,
                    child: None,
                    starts: 0,
                })
            }
        };
        let mut s = Server {
            netns: ns.name().to_string(),
            lease_dir,
            run,
        };
        s.launch(ns)?;
        Ok(s)
    }

    fn launch(&mut self, ns: &Netns) -> Result<()> {
        ensure!(
            ns.name() == self.netns,
            "server restarted in another namespace"
        );
        match &mut self.run {
            Run::Provd(p) => {
                p.start(ns)?;
                p.wait_udp(None, 67, Duration::from_secs(10))
            }
            Run::Kea(k) => {
                let label = format!("server-{}", k.starts);
                k.starts += 1;
                let mut c = ns.command("kea-dhcp4");
                c.arg("-c")
                    .arg(&k.config)
                    .env("KEA_PIDFILE_DIR", &k.dir)
                    .env("KEA_LOCKFILE_DIR", &k.dir)
                    .env("RUST_BACKTRACE", "1");
                let mut child = Child::spawn(&label, c, &k.dir)?;
                child
                    .wait_for_output("DHCP4_STARTED", READY_TIMEOUT)
                    .context("Kea did not become ready")?;
                wait::udp_port(ns, None, 67, Duration::from_secs(10)).with_context(|| {
                    format!(
                        "Kea said it was ready but nothing is bound to UDP 67; stderr:\n{}",
                        child.stderr_tail(10)
                    )
                })?;
                k.child = Some(child);
                Ok(())
            }
        }
    }

    /// Fails if the server has exited, quoting its stderr.
    pub fn check_alive(&mut self) -> Result<()> {
        match &mut self.run {
            Run::Provd(p) => p.check_alive(),
            Run::Kea(k) => {
                let child = k.child.as_mut().context("server is not running")?;
                if let Some(st) = child.try_wait()? {
                    bail!(
                        "the server exited unexpectedly ({st}); stderr tail:\n{}",
                        child.stderr_tail(20)
                    );
                }
                Ok(())
            }
        }
    }

    /// SIGKILL, no chance to flush anything.
    pub fn kill9(&mut self) -> Result<()> {
        match &mut self.run {
            Run::Provd(p) => p.kill9(),
            Run::Kea(k) => {
                let child = k.child.as_mut().context("server is not running")?;
                child.kill(libc::SIGKILL)?;
                child.wait_timeout(Duration::from_secs(10))?;
                Ok(())
            }
        }
    }

    /// Starts the server again with the same config and lease state.
    pub fn restart(&mut self, ns: &Netns) -> Result<()> {
        if let Run::Kea(k) = &mut self.run
            && let Some(mut c) = k.child.take()
        {
            ensure!(
                c.try_wait()?.is_some(),
                "restart asked while the server still runs"
            );
        }
        self.launch(ns)
    }

    /// SIGTERM and expect a clean exit 0 within 10 s (provd's contract; Kea behaves the same).
    /// A server that is already down (killed, or exited) is left as it is.
    pub fn stop(&mut self) -> Result<()> {
        match &mut self.run {
            Run::Provd(p) => {
                if !p.is_running()? {
                    return Ok(());
                }
                p.stop()
            }
            Run::Kea(k) => {
                let Some(mut child) = k.child.take() else {
                    return Ok(());
                };
                if child.try_wait()?.is_some() {
                    return Ok(());
                }
                let (st, clean) = child.stop(libc::SIGTERM, Duration::from_secs(10))?;
                ensure!(
                    clean,
                    "the server ignored SIGTERM for 10 s and was killed; stderr tail:\n{}",
                    child.stderr_tail(10)
                );
                ensure!(
                    st.success(),
                    "the server exited with {st} on SIGTERM (expected 0); stderr tail:\n{}",
                    child.stderr_tail(10)
                );
                Ok(())
            }
        }
    }

    /// The durable lease table as the server left it on disk: provd via `provd leases --config`,
    /// Kea by replaying its memfile CSV. Meant to be read while the server is down.
    pub fn durable_leases(&self) -> Result<Vec<Lease>> {
        match &self.run {
            Run::Provd(p) => p.durable_leases(),
            Run::Kea(_) => {
                let p = self.lease_dir.join("kea-leases4.csv");
                let text = std::fs::read_to_string(&p)
                    .with_context(|| format!("reading Kea's lease file {}", p.display()))?;
                leases::parse_kea_csv(&text)
            }
        }
    }
}
