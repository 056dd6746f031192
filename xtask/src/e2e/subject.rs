//! The server under test: provd, or Kea with an equivalent config. Both run in the server
//! namespace with their lease state in the scenario's directory, so a restart after SIGKILL sees
//! exactly what the killed process left on disk.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use anyhow::{Context, Result, bail, ensure};
use provd_rig::leases::{self, Lease};
use provd_rig::{Child, Netns, cmd, wait};

const PROVD_TEMPLATE: &str = include_str!("../../../tests/e2e/provd.toml.in");
const KEA_TEMPLATE: &str = include_str!("../../../tests/e2e/kea-dhcp4.json.in");

/// How long a server may take to become ready (a restart replays its lease log).
const READY_TIMEOUT: Duration = Duration::from_secs(60);

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Subject {
    Provd,
    Kea,
}

/// Fails with a pointer to the install script when a peer tool is missing.
pub fn check_tools(subject: Subject) -> Result<()> {
    let mut need = vec![
        "ip", "tcpdump", "dhclient", "dhcrelay", "perfdhcp", "sysctl",
    ];
    if subject == Subject::Kea {
        need.push("kea-dhcp4");
    }
    let path = std::env::var("PATH").unwrap_or_default();
    let dirs: Vec<&str> = path.split(':').chain(["/usr/sbin", "/sbin"]).collect();
    let missing: Vec<&str> = need
        .into_iter()
        .filter(|t| !dirs.iter().any(|d| Path::new(d).join(t).is_file()))
        .collect();
    ensure!(
        missing.is_empty(),
        "missing tools {missing:?}: run xtask/scripts/install-deps.sh"
    );
    Ok(())
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
    subject: Subject,
    provd: PathBuf,
    netns: String,
    dir: PathBuf,
    config: PathBuf,
    lease_dir: PathBuf,
    child: Option<Child>,
    starts: u32,
}

impl Server {
    /// Renders the config into `dir`, validates it (provd: `provd check-config`), starts the
    /// server in `ns` and waits until it is ready and UDP 67 is bound.
    pub fn start(ctx: &super::Ctx, ns: &Netns, dir: &Path) -> Result<Server> {
        let lease_dir = dir.join("leases");
        std::fs::create_dir_all(&lease_dir)?;
        let config = match ctx.subject {
            Subject::Provd => {
                let p = dir.join("provd.toml");
                std::fs::write(
                    &p,
                    PROVD_TEMPLATE.replace("@LEASE_DIR@", &lease_dir.to_string_lossy()),
                )?;
                p
            }
            Subject::Kea => {
                let p = dir.join("kea-dhcp4.json");
                std::fs::write(
                    &p,
                    KEA_TEMPLATE.replace(
                        "@LEASE_FILE@",
                        &lease_dir.join("kea-leases4.csv").to_string_lossy(),
                    ),
                )?;
                p
            }
        };
        let mut s = Server {
            subject: ctx.subject,
            provd: ctx.provd.clone(),
            netns: ns.name().to_string(),
            dir: dir.to_path_buf(),
            config,
            lease_dir,
            child: None,
            starts: 0,
        };
        if s.subject == Subject::Provd {
            ensure!(
                s.provd.is_file(),
                "provd binary {} does not exist (build it with `cargo build --release -p provd`)",
                s.provd.display()
            );
            let out = cmd::output_timeout(
                Command::new(&s.provd).arg("check-config").arg(&s.config),
                Duration::from_secs(30),
            )?;
            ensure!(
                out.status.success(),
                "`provd check-config {}` rejected the suite's config ({}): {}{}",
                s.config.display(),
                out.status,
                String::from_utf8_lossy(&out.stdout).trim(),
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
        s.launch(ns)?;
        Ok(s)
    }

    fn launch(&mut self, ns: &Netns) -> Result<()> {
        ensure!(
            ns.name() == self.netns,
            "server restarted in another namespace"
        );
        let label = format!("server-{}", self.starts);
        self.starts += 1;
        let (mut command, ready) = match self.subject {
            Subject::Provd => {
                let mut c = ns.command(&self.provd);
                c.arg("serve").arg("--config").arg(&self.config);
                (c, "provd ready")
            }
            Subject::Kea => {
                let mut c = ns.command("kea-dhcp4");
                c.arg("-c")
                    .arg(&self.config)
                    .env("KEA_PIDFILE_DIR", &self.dir)
                    .env("KEA_LOCKFILE_DIR", &self.dir);
                (c, "DHCP4_STARTED")
            }
        };
        command.env("RUST_BACKTRACE", "1");
        let mut child = Child::spawn(&label, command, &self.dir)?;
        child
            .wait_for_output(ready, READY_TIMEOUT)
            .with_context(|| format!("{:?} did not become ready", self.subject))?;
        wait::udp_port(ns, None, 67, Duration::from_secs(10)).with_context(|| {
            format!(
                "{:?} said it was ready but nothing is bound to UDP 67; stderr:\n{}",
                self.subject,
                child.stderr_tail(10)
            )
        })?;
        self.child = Some(child);
        Ok(())
    }

    /// Fails if the server has exited, quoting its stderr.
    pub fn check_alive(&mut self) -> Result<()> {
        let child = self.child.as_mut().context("server is not running")?;
        if let Some(st) = child.try_wait()? {
            bail!(
                "the server exited unexpectedly ({st}); stderr tail:\n{}",
                child.stderr_tail(20)
            );
        }
        Ok(())
    }

    /// SIGKILL, no chance to flush anything.
    pub fn kill9(&mut self) -> Result<()> {
        let child = self.child.as_mut().context("server is not running")?;
        child.kill(libc::SIGKILL)?;
        child.wait_timeout(Duration::from_secs(10))?;
        Ok(())
    }

    /// Starts the server again with the same config and lease state.
    pub fn restart(&mut self, ns: &Netns) -> Result<()> {
        if let Some(mut c) = self.child.take() {
            ensure!(
                c.try_wait()?.is_some(),
                "restart asked while the server still runs"
            );
        }
        self.launch(ns)
    }

    /// SIGTERM and expect a clean exit 0 within 10 s (provd's contract; Kea behaves the same).
    pub fn stop(&mut self) -> Result<()> {
        let Some(mut child) = self.child.take() else {
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

    /// The durable lease table as the server left it on disk: provd via `provd leases --config`,
    /// Kea by replaying its memfile CSV. Meant to be read while the server is down.
    pub fn durable_leases(&self) -> Result<Vec<Lease>> {
        match self.subject {
            Subject::Provd => {
                let out = cmd::output_timeout(
                    Command::new(&self.provd)
                        .arg("leases")
                        .arg("--config")
                        .arg(&self.config),
                    Duration::from_secs(120),
                )?;
                std::fs::write(self.dir.join("provd-leases.jsonl"), &out.stdout)?;
                ensure!(
                    out.status.success(),
                    "`provd leases --config {}` failed ({}): {}",
                    self.config.display(),
                    out.status,
                    String::from_utf8_lossy(&out.stderr).trim()
                );
                leases::parse_provd(&String::from_utf8_lossy(&out.stdout))
            }
            Subject::Kea => {
                let p = self.lease_dir.join("kea-leases4.csv");
                let text = std::fs::read_to_string(&p)
                    .with_context(|| format!("reading Kea's lease file {}", p.display()))?;
                leases::parse_kea_csv(&text)
            }
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        // The Child guard kills it; nothing else to undo.
        self.child.take();
    }
}
