//! provd under test: one handle for every suite and bench that runs the server.
//!
//! A [`Provd`] owns a directory (its config, by default `<dir>/provd.toml`, and its logs), knows
//! the binary, the extra `serve` arguments and environment, and runs `provd serve` in a network
//! namespace as a [`Child`] in its own process group. [`Provd::start`] returns once provd has
//! printed its plain ready line, parsed into [`Ready`]:
//!
//! ```text
//! acs ready cwmp=127.0.0.1:7547,127.0.0.1:7548 api=127.0.0.1:7557 stun=127.0.0.1:3478   (with [acs])
//! provd ready path=io_uring workers=2 null tftp=198.18.0.1:69
//! ```
//!
//! It stops with SIGTERM and a bounded wait ([`Provd::stop`] holds provd to its contract, exit 0
//! within the grace; [`Provd::terminate`] only reports how it ended), dies with
//! [`Provd::kill9`], and [`Provd::restart`]s in the same namespace on the same config and lease
//! directory. Dropping the handle kills the process group.

use std::collections::BTreeMap;
use std::ffi::{OsStr, OsString};
use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};

use crate::child::{Child, tail};
use crate::leases::{self, Lease};
use crate::netns::{self, Netns};
use crate::{cmd, procnet};

/// What provd's plain ready line (and the `acs ready` line before it) says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ready {
    /// The DHCP I/O path it serves on: `xdp`, `io_uring` or `sockets`.
    pub path: String,
    /// DHCP worker threads (`workers=`).
    pub workers: Option<u32>,
    /// Whether it runs as the null responder (`null`).
    pub null: bool,
    /// The TFTP listener (`tftp=`), when TFTP is configured.
    pub tftp: Option<SocketAddr>,
    /// The ACS listeners, when `[acs]` is configured.
    pub acs: Option<AcsReady>,
    /// The ready line as printed.
    pub line: String,
}

/// The `acs ready cwmp=A[,B] api=C [stun=D]` line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AcsReady {
    pub cwmp: Vec<SocketAddr>,
    pub api: SocketAddr,
    pub stun: Option<SocketAddr>,
}

/// Whether `line` is provd's plain ready line (not a log line that mentions it: those start with
/// a timestamp or `{`).
fn is_ready_line(line: &str) -> bool {
    line.strip_prefix("provd ready")
        .is_some_and(|rest| rest.is_empty() || rest.starts_with(' '))
}

/// The `key=value` words of `rest`; bare words map to "".
fn fields(rest: &str) -> Vec<(&str, &str)> {
    rest.split_whitespace()
        .map(|w| w.split_once('=').unwrap_or((w, "")))
        .collect()
}

fn addr(key: &str, v: &str, line: &str) -> Result<SocketAddr> {
    v.parse()
        .with_context(|| format!("{key}={v:?} is not an address in {line:?}"))
}

/// Parses the ready line out of provd's output: `None` while it has not been printed, an error
/// if it (or the `acs ready` line) is there but malformed. Words it does not know are ignored.
pub fn parse_ready(output: &str) -> Option<Result<Ready>> {
    let line = output.lines().find(|l| is_ready_line(l))?;
    Some(parse_ready_line(line, output))
}

fn parse_ready_line(line: &str, output: &str) -> Result<Ready> {
    let mut ready = Ready {
        path: String::new(),
        workers: None,
        null: false,
        tftp: None,
        acs: None,
        line: line.to_string(),
    };
    for (k, v) in fields(&line["provd ready".len()..]) {
        match k {
            "path" => ready.path = v.to_string(),
            "workers" => {
                ready.workers = Some(
                    v.parse()
                        .with_context(|| format!("workers={v:?} is not a number in {line:?}"))?,
                );
            }
            "null" => ready.null = true,
            "tftp" => ready.tftp = Some(addr(k, v, line)?),
            _ => {}
        }
    }
    ensure!(
        !ready.path.is_empty(),
        "the ready line names no path=: {line:?}"
    );
    if let Some(acs) = output.lines().find_map(|l| l.strip_prefix("acs ready ")) {
        let acs_line = format!("acs ready {acs}");
        let (mut cwmp, mut api, mut stun) = (Vec::new(), None, None);
        for (k, v) in fields(acs) {
            match k {
                "cwmp" => {
                    for a in v.split(',').filter(|a| !a.is_empty()) {
                        cwmp.push(addr(k, a, &acs_line)?);
                    }
                }
                "api" => api = Some(addr(k, v, &acs_line)?),
                "stun" => stun = Some(addr(k, v, &acs_line)?),
                _ => {}
            }
        }
        ensure!(
            !cwmp.is_empty(),
            "the ACS line names no cwmp=: {acs_line:?}"
        );
        ready.acs = Some(AcsReady {
            cwmp,
            api: api.with_context(|| format!("the ACS line names no api=: {acs_line:?}"))?,
            stun,
        });
    }
    Ok(ready)
}

/// The last DHCP `counters` line provd logged (every `--stats-every` seconds and at stop), as
/// name → value. Text log format: `... INFO provd: counters counters=rx=10 tx=9 ...`.
pub fn parse_counters(output: &str) -> Option<BTreeMap<String, u64>> {
    const KEY: &str = " counters counters=";
    let line = output.lines().rev().find(|l| l.contains(KEY))?;
    let rest = &line[line.find(KEY)? + KEY.len()..];
    Some(
        rest.split_whitespace()
            .map_while(|w| {
                let (k, v) = w.split_once('=')?;
                Some((k.to_string(), v.parse().ok()?))
            })
            .collect(),
    )
}

/// How log files are named: `<label>.out` / `<label>.err`, or numbered per start.
#[derive(Debug, Clone)]
struct Label {
    prefix: String,
    first: Option<u32>,
}

/// provd under test. See the module documentation.
#[derive(Debug)]
pub struct Provd {
    bin: PathBuf,
    dir: PathBuf,
    log_dir: PathBuf,
    config: PathBuf,
    args: Vec<OsString>,
    env: Vec<(OsString, OsString)>,
    label: Label,
    ready_timeout: Duration,
    stop_grace: Duration,
    interrupt: Option<fn() -> Result<()>>,
    netns: Option<String>,
    starts: u32,
    child: Option<Child>,
    /// Set once this handle stopped or killed the current process on purpose.
    ended: bool,
    ready: Option<Ready>,
}

impl Provd {
    /// A handle for binary `bin` keeping config and logs in `dir` (config `<dir>/provd.toml`,
    /// logs `provd.out` / `provd.err`), 30 s to become ready, 10 s to stop. Nothing runs yet.
    pub fn new(bin: impl Into<PathBuf>, dir: impl Into<PathBuf>) -> Provd {
        let dir = dir.into();
        Provd {
            bin: bin.into(),
            log_dir: dir.clone(),
            config: dir.join("provd.toml"),
            dir,
            args: Vec::new(),
            env: Vec::new(),
            label: Label {
                prefix: "provd".into(),
                first: None,
            },
            ready_timeout: Duration::from_secs(30),
            stop_grace: Duration::from_secs(10),
            interrupt: None,
            netns: None,
            starts: 0,
            child: None,
            ended: false,
            ready: None,
        }
    }

    /// Writes `text` as the config file.
    pub fn write_config(self, text: &str) -> Result<Provd> {
        std::fs::write(&self.config, text)
            .with_context(|| format!("writing {}", self.config.display()))?;
        Ok(self)
    }

    /// Uses an existing config file instead of `<dir>/provd.toml`.
    pub fn config_file(mut self, path: impl Into<PathBuf>) -> Provd {
        self.config = path.into();
        self
    }

    /// `<dir>/leases`, created: where the suites' configs put the lease log.
    pub fn lease_dir(&self) -> Result<PathBuf> {
        let p = self.dir.join("leases");
        std::fs::create_dir_all(&p).with_context(|| p.display().to_string())?;
        Ok(p)
    }

    /// An extra argument after `serve --config FILE` (e.g. `--null-responder`).
    pub fn arg(mut self, a: impl AsRef<OsStr>) -> Provd {
        self.args.push(a.as_ref().to_owned());
        self
    }

    /// Extra arguments after `serve --config FILE`.
    pub fn args<I: IntoIterator<Item = S>, S: AsRef<OsStr>>(mut self, args: I) -> Provd {
        self.args
            .extend(args.into_iter().map(|a| a.as_ref().to_owned()));
        self
    }

    /// An environment variable for provd (e.g. `PROVD_LOG`, `RUST_BACKTRACE`).
    pub fn env(mut self, key: impl AsRef<OsStr>, value: impl AsRef<OsStr>) -> Provd {
        self.env
            .push((key.as_ref().to_owned(), value.as_ref().to_owned()));
        self
    }

    /// Log files `<label>.out` / `.err` (default `provd`).
    pub fn label(mut self, label: &str) -> Provd {
        self.label = Label {
            prefix: label.into(),
            first: None,
        };
        self
    }

    /// Log files numbered per start: `<prefix><first>`, `<prefix><first + 1>`, ...
    pub fn numbered_label(mut self, prefix: &str, first: u32) -> Provd {
        self.label = Label {
            prefix: prefix.into(),
            first: Some(first),
        };
        self
    }

    /// How long a start may take to print the ready line (a restart replays the lease log).
    pub fn ready_timeout(mut self, t: Duration) -> Provd {
        self.ready_timeout = t;
        self
    }

    /// How long [`Provd::stop`] and [`Provd::terminate`] wait after SIGTERM.
    pub fn stop_grace(mut self, t: Duration) -> Provd {
        self.stop_grace = t;
        self
    }

    /// A check run while waiting (e.g. "has Ctrl-C arrived?"); its error ends the wait.
    pub fn interrupt(mut self, check: fn() -> Result<()>) -> Provd {
        self.interrupt = Some(check);
        self
    }

    /// Logs of the next start go to `dir` (the config stays where it is).
    pub fn set_log_dir(&mut self, dir: impl Into<PathBuf>) {
        self.log_dir = dir.into();
    }

    pub fn bin(&self) -> &Path {
        &self.bin
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn config(&self) -> &Path {
        &self.config
    }

    /// What the last start's ready line said.
    pub fn ready(&self) -> Option<&Ready> {
        self.ready.as_ref()
    }

    /// The current (or last) process.
    pub fn child(&self) -> Option<&Child> {
        self.child.as_ref()
    }

    /// The PID of the current (or last) process; 0 before the first start.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().map_or(0, Child::pid)
    }

    /// `provd check-config FILE`: fails with what provd said when it rejects the config.
    pub fn check_config(&self) -> Result<()> {
        self.check_bin()?;
        let out = cmd::output_timeout(
            Command::new(&self.bin)
                .arg("check-config")
                .arg(&self.config),
            Duration::from_secs(30),
        )?;
        ensure!(
            out.status.success(),
            "`provd check-config {}` rejected the config ({}): {}{}",
            self.config.display(),
            out.status,
            String::from_utf8_lossy(&out.stdout).trim(),
            String::from_utf8_lossy(&out.stderr).trim()
        );
        Ok(())
    }

    /// The `serve` command line, run inside namespace `ns`: `provd serve --config FILE ARGS...`
    /// with the handle's environment.
    pub fn serve_command(&self, ns: &str) -> Command {
        let mut c = netns::command_in(ns, &self.bin);
        c.arg("serve")
            .arg("--config")
            .arg(&self.config)
            .args(&self.args);
        for (k, v) in &self.env {
            c.env(k, v);
        }
        c
    }

    fn next_label(&self) -> String {
        match self.label.first {
            Some(first) => format!("{}{}", self.label.prefix, first + self.starts),
            None => self.label.prefix.clone(),
        }
    }

    /// Starts provd in `ns` and waits for its ready line. Starting again (after it ended) is a
    /// restart and must be in the same namespace.
    pub fn start(&mut self, ns: &Netns) -> Result<&Ready> {
        ensure!(
            self.netns.as_deref().is_none_or(|n| n == ns.name()),
            "provd restarted in namespace {} after running in {}",
            ns.name(),
            self.netns.as_deref().unwrap_or_default()
        );
        ensure!(!self.is_running()?, "provd started while it still runs");
        self.netns = Some(ns.name().to_string());
        self.launch()
    }

    /// Starts provd again, in the same namespace with the same config and lease directory. The
    /// previous process must have ended ([`Provd::stop`], [`Provd::kill9`], or on its own).
    pub fn restart(&mut self) -> Result<&Ready> {
        ensure!(!self.is_running()?, "restart asked while provd still runs");
        self.launch()
    }

    fn check_bin(&self) -> Result<()> {
        ensure!(
            self.bin.is_file(),
            "provd binary {} does not exist (build it with `cargo build --release -p provd`)",
            self.bin.display()
        );
        Ok(())
    }

    fn launch(&mut self) -> Result<&Ready> {
        let ns = self.netns.clone().context("provd was never started")?;
        self.check_bin()?;
        let label = self.next_label();
        self.starts += 1;
        self.ready = None;
        self.ended = false;
        let c = self.serve_command(&ns);
        self.child = Some(Child::spawn(&label, c, &self.log_dir)?);
        let ready = self.wait_ready()?;
        Ok(self.ready.insert(ready))
    }

    fn wait_ready(&mut self) -> Result<Ready> {
        let deadline = Instant::now() + self.ready_timeout;
        let child = self.child.as_mut().context("provd is not running")?;
        loop {
            if let Some(check) = self.interrupt {
                check()?;
            }
            let out = format!("{}\n{}", child.stderr_text(), child.stdout_text());
            if let Some(ready) = parse_ready(&out) {
                return ready;
            }
            if let Some(st) = child.try_wait()? {
                bail!(
                    "provd exited ({st}) before it was ready; stderr tail:\n{}",
                    child.stderr_tail(15)
                );
            }
            if Instant::now() >= deadline {
                bail!(
                    "provd did not print its ready line within {:?}; stderr tail:\n{}",
                    self.ready_timeout,
                    child.stderr_tail(15)
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Waits until UDP `port` is bound in provd's namespace on `addr` or the wildcard (any
    /// address if `addr` is None): for listeners the ready line does not vouch for.
    pub fn wait_udp(&self, addr: Option<Ipv4Addr>, port: u16, timeout: Duration) -> Result<()> {
        let deadline = Instant::now() + timeout;
        let pid = self.pid();
        loop {
            if let Some(check) = self.interrupt {
                check()?;
            }
            if procnet::udp_bound_by(pid, addr, port) {
                return Ok(());
            }
            if Instant::now() >= deadline {
                bail!(
                    "provd is ready but nothing bound UDP {}:{port} within {timeout:?}; stderr \
                     tail:\n{}",
                    addr.map_or("*".into(), |a| a.to_string()),
                    self.stderr_tail(10)
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Whether the current process is still running.
    pub fn is_running(&mut self) -> Result<bool> {
        match self.child.as_mut() {
            Some(c) => Ok(c.try_wait()?.is_none()),
            None => Ok(false),
        }
    }

    /// How the current (or last) process ended; `None` while it runs or before the first start.
    pub fn exit_status(&mut self) -> Result<Option<ExitStatus>> {
        match self.child.as_mut() {
            Some(c) => c.try_wait(),
            None => Ok(None),
        }
    }

    /// Fails if provd is not running: never started, stopped, or exited on its own (quoting the
    /// end of its stderr).
    pub fn check_alive(&mut self) -> Result<()> {
        let ended = self.ended;
        let child = self.child.as_mut().context("provd is not running")?;
        if let Some(st) = child.try_wait()? {
            ensure!(!ended, "provd is not running (stopped, {st})");
            bail!(
                "provd exited unexpectedly ({st}); stderr tail:\n{}",
                child.stderr_tail(20)
            );
        }
        Ok(())
    }

    /// provd's contract: SIGTERM, exit 0 within the stop grace. Fails if it had already exited
    /// on its own, ignored SIGTERM (then it is killed) or exited non-zero. A no-op if this handle
    /// already stopped or killed it.
    pub fn stop(&mut self) -> Result<()> {
        if self.ended || self.child.is_none() {
            return Ok(());
        }
        self.check_alive()?;
        let grace = self.stop_grace;
        let (st, clean) = self.terminate()?.context("provd is not running")?;
        let tail = self.stderr_tail(10);
        ensure!(
            clean,
            "provd ignored SIGTERM for {grace:?} and was killed; stderr tail:\n{tail}"
        );
        ensure!(
            st.success(),
            "provd exited with {st} on SIGTERM (expected 0); stderr tail:\n{tail}"
        );
        Ok(())
    }

    /// SIGTERM, the stop grace, then SIGKILL: how it ended and whether within the grace (a
    /// process that had already ended counts as within). `None` if it never started.
    pub fn terminate(&mut self) -> Result<Option<(ExitStatus, bool)>> {
        let grace = self.stop_grace;
        let Some(child) = self.child.as_mut() else {
            return Ok(None);
        };
        if let Some(st) = child.try_wait()? {
            self.ended = true;
            return Ok(Some((st, true)));
        }
        let r = child.stop(libc::SIGTERM, grace)?;
        self.ended = true;
        Ok(Some(r))
    }

    /// SIGKILL, no chance to flush anything; waits until it is gone.
    pub fn kill9(&mut self) -> Result<()> {
        let child = self.child.as_mut().context("provd is not running")?;
        child.kill(libc::SIGKILL)?;
        child.wait_timeout(Duration::from_secs(10))?;
        self.ended = true;
        Ok(())
    }

    /// The current (or last) process's stderr so far: provd's log and its plain lines.
    pub fn stderr_text(&self) -> String {
        self.child
            .as_ref()
            .map(Child::stderr_text)
            .unwrap_or_default()
    }

    /// Its stdout so far.
    pub fn stdout_text(&self) -> String {
        self.child
            .as_ref()
            .map(Child::stdout_text)
            .unwrap_or_default()
    }

    /// The last `n` lines of stderr.
    pub fn stderr_tail(&self, n: usize) -> String {
        tail(&self.stderr_text(), n)
    }

    /// The last `n` lines of stdout and stderr together.
    pub fn log_tail(&self, n: usize) -> String {
        tail(&format!("{}{}", self.stdout_text(), self.stderr_text()), n)
    }

    /// The last DHCP counters line logged so far (see [`parse_counters`]).
    pub fn counters(&self) -> Option<BTreeMap<String, u64>> {
        parse_counters(&self.stderr_text())
    }

    /// The durable lease table as provd left it (`provd leases --config`, kept as
    /// `<dir>/provd-leases.jsonl`). Meant to be read while provd is down.
    pub fn durable_leases(&self) -> Result<Vec<Lease>> {
        let out = cmd::output_timeout(
            Command::new(&self.bin)
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

    /// `provd <args> --config <its config>` in provd's namespace (a query of the running
    /// server through its control socket): what it printed.
    pub fn query(&self, args: &[&str]) -> Result<String> {
        let ns = self.netns.as_deref().context("provd was never started")?;
        cmd::run(
            netns::command_in(ns, &self.bin)
                .args(args)
                .arg("--config")
                .arg(&self.config),
            Duration::from_secs(10),
        )
    }

    /// `provd xdp-stats` in provd's namespace: the attach mode and the program's counters.
    pub fn xdp_stats(&self) -> Result<(String, BTreeMap<String, u64>)> {
        let ns = self.netns.as_deref().context("provd was never started")?;
        let out = cmd::run(
            netns::command_in(ns, &self.bin)
                .args(["xdp-stats", "--config"])
                .arg(&self.config),
            Duration::from_secs(10),
        )?;
        let v: serde_json::Value =
            serde_json::from_str(out.trim()).with_context(|| format!("xdp-stats: {out}"))?;
        let mode = v["mode"].as_str().unwrap_or_default().to_string();
        let counters = v["counters"]
            .as_object()
            .context("no counters")?
            .iter()
            .map(|(k, v)| (k.clone(), v.as_u64().unwrap_or(0)))
            .collect();
        Ok((mode, counters))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_plain_ready_line_parses_in_each_shape() {
        let r = parse_ready("provd ready path=sockets workers=2\n")
            .unwrap()
            .unwrap();
        assert_eq!(r.path, "sockets");
        assert_eq!(r.workers, Some(2));
        assert!(!r.null && r.tftp.is_none() && r.acs.is_none());
        let r = parse_ready("provd ready path=xdp workers=4 null tftp=198.18.0.1:69")
            .unwrap()
            .unwrap();
        assert_eq!((r.path.as_str(), r.workers, r.null), ("xdp", Some(4), true));
        assert_eq!(r.tftp, Some("198.18.0.1:69".parse().unwrap()));
        // Unknown words are tolerated: the line may grow.
        let r = parse_ready("provd ready path=io_uring workers=1 mta=on")
            .unwrap()
            .unwrap();
        assert_eq!(r.path, "io_uring");
    }

    #[test]
    fn log_lines_that_mention_ready_are_not_the_ready_line() {
        let log = "2026-12-06T20:00:00Z  INFO provd: provd ready path=\"sockets\" workers=2 \
                   why=\"forced\"\n{\"fields\":{\"message\":\"provd ready\"}}\nprovd readyish\n";
        assert!(parse_ready(log).is_none());
        let r = parse_ready(&format!("{log}provd ready path=sockets workers=2\n"))
            .unwrap()
            .unwrap();
        assert_eq!(r.line, "provd ready path=sockets workers=2");
    }

    #[test]
    fn a_malformed_ready_line_is_an_error_naming_it() {
        let e = parse_ready("provd ready workers=2").unwrap().unwrap_err();
        assert!(e.to_string().contains("no path="), "{e}");
        let e = parse_ready("provd ready path=sockets workers=two")
            .unwrap()
            .unwrap_err();
        assert!(e.to_string().contains("workers=\"two\""), "{e}");
        let e = parse_ready("provd ready path=sockets tftp=nowhere")
            .unwrap()
            .unwrap_err();
        assert!(e.to_string().contains("tftp="), "{e}");
    }

    #[test]
    fn the_acs_line_is_read_with_the_ready_line() {
        let out = "acs ready cwmp=127.0.0.1:7547,127.0.0.1:7548 api=127.0.0.1:7557 \
                   stun=127.0.0.1:3478\nprovd ready path=sockets workers=1\n";
        let acs = parse_ready(out).unwrap().unwrap().acs.unwrap();
        assert_eq!(acs.cwmp.len(), 2);
        assert_eq!(acs.cwmp[1], "127.0.0.1:7548".parse().unwrap());
        assert_eq!(acs.api, "127.0.0.1:7557".parse().unwrap());
        assert_eq!(acs.stun, Some("127.0.0.1:3478".parse().unwrap()));
        let out = "acs ready cwmp=127.0.0.1:7547 api=127.0.0.1:7557\nprovd ready path=x\n";
        let acs = parse_ready(out).unwrap().unwrap().acs.unwrap();
        assert_eq!(acs.stun, None);
        let e = parse_ready("acs ready cwmp=127.0.0.1:7547\nprovd ready path=x\n")
            .unwrap()
            .unwrap_err();
        assert!(e.to_string().contains("no api="), "{e}");
        // The ACS line alone is not readiness: provd binds the rest after it.
        assert!(parse_ready("acs ready cwmp=127.0.0.1:7547 api=127.0.0.1:7557\n").is_none());
    }

    #[test]
    fn the_last_counters_line_is_read() {
        let log = "2026 INFO provd: counters counters=discover=1 offer=1\n\
                   2026 INFO provd: tftp counters transfers=3\n\
                   2026 INFO provd: counters counters=discover=5 offer=4 ack=4\n";
        let c = parse_counters(log).unwrap();
        assert_eq!(c.get("discover"), Some(&5));
        assert_eq!(c.get("ack"), Some(&4));
        assert_eq!(c.len(), 3);
        assert!(parse_counters("2026 INFO provd: provd stopped\n").is_none());
    }

    fn tmp(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("rig-provd-{name}-{}", std::process::id()));
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    #[test]
    fn the_serve_command_carries_config_args_and_env() {
        let dir = tmp("cmd");
        let p = Provd::new("/opt/provd", &dir)
            .write_config("[server]\n")
            .unwrap()
            .arg("--null-responder")
            .env("PROVD_LOG", "warn");
        assert_eq!(
            std::fs::read_to_string(dir.join("provd.toml")).unwrap(),
            "[server]\n"
        );
        let c = p.serve_command("ns0");
        assert_eq!(
            cmd::describe(&c),
            format!(
                "ip netns exec ns0 /opt/provd serve --config {} --null-responder",
                dir.join("provd.toml").display()
            )
        );
        let env: Vec<_> = c.get_envs().collect();
        assert_eq!(env, [(OsStr::new("PROVD_LOG"), Some(OsStr::new("warn")))]);
        assert!(p.lease_dir().unwrap().is_dir());
        let p = p.config_file("/etc/other.toml");
        assert_eq!(p.config(), Path::new("/etc/other.toml"));
    }

    #[test]
    fn log_labels_are_fixed_or_numbered_per_start() {
        let mut p = Provd::new("/x", "/tmp").numbered_label("server-", 0);
        assert_eq!(p.next_label(), "server-0");
        p.starts = 2;
        assert_eq!(p.next_label(), "server-2");
        let p = Provd::new("/x", "/tmp");
        assert_eq!(p.next_label(), "provd");
    }

    #[test]
    fn without_a_start_it_is_not_running_and_says_so() {
        let mut p = Provd::new("/x", "/tmp");
        assert!(!p.is_running().unwrap());
        assert!(p.check_alive().is_err());
        assert!(p.stop().is_ok());
        assert!(p.terminate().unwrap().is_none());
        assert!(p.kill9().is_err());
        let e = p.restart().unwrap_err();
        assert!(e.to_string().contains("never started"), "{e}");
        assert_eq!(p.pid(), 0);
    }

    /// The wait and the stop contract against a stand-in that prints what provd prints (a
    /// shell script; no namespace needed: `launch` runs it through `ip netns exec`, so this test
    /// drives the pieces underneath instead).
    #[test]
    fn wait_ready_and_stop_against_a_stand_in() {
        let dir = tmp("standin");
        let mut p = Provd::new("/bin/sh", &dir).ready_timeout(Duration::from_secs(5));
        let mut c = Command::new("sh");
        c.args([
            "-c",
            "trap 'exit 0' TERM; echo 'provd ready path=sockets workers=3' >&2; \
             while :; do sleep 0.05; done",
        ]);
        p.child = Some(Child::spawn("standin", c, &dir).unwrap());
        let r = p.wait_ready().unwrap();
        assert_eq!((r.path.as_str(), r.workers), ("sockets", Some(3)));
        p.check_alive().unwrap();
        p.stop().unwrap();
        assert!(!p.is_running().unwrap());
        // A second stop is a no-op; check_alive says it was stopped, not that it crashed.
        p.stop().unwrap();
        let (st, clean) = p.terminate().unwrap().unwrap();
        assert!(st.success() && clean);
        assert!(p.exit_status().unwrap().unwrap().success());
        let e = p.check_alive().unwrap_err().to_string();
        assert!(e.contains("stopped"), "{e}");

        // One that ignores SIGTERM breaks the contract and is killed.
        let mut p = Provd::new("/bin/sh", &dir).stop_grace(Duration::from_millis(200));
        let mut c = Command::new("sh");
        c.args([
            "-c",
            "trap '' TERM; echo armed >&2; while :; do sleep 0.05; done",
        ]);
        let mut child = Child::spawn("stubborn", c, &dir).unwrap();
        child
            .wait_for_output("armed", Duration::from_secs(5))
            .unwrap();
        p.child = Some(child);
        let e = p.stop().unwrap_err().to_string();
        assert!(e.contains("ignored SIGTERM"), "{e}");
        assert!(!p.is_running().unwrap());

        // One that exits non-zero on SIGTERM breaks it too.
        let mut p = Provd::new("/bin/sh", &dir);
        let mut c = Command::new("sh");
        c.args([
            "-c",
            "trap 'exit 3' TERM; echo armed >&2; while :; do sleep 0.05; done",
        ]);
        let mut child = Child::spawn("nonzero", c, &dir).unwrap();
        child
            .wait_for_output("armed", Duration::from_secs(5))
            .unwrap();
        p.child = Some(child);
        let e = p.stop().unwrap_err().to_string();
        assert!(e.contains("expected 0"), "{e}");

        // One that dies before its ready line: the wait says so, with its stderr.
        let mut p = Provd::new("/bin/sh", &dir);
        let mut c = Command::new("sh");
        c.args(["-c", "echo 'bad config: no [server]' >&2; exit 1"]);
        p.child = Some(Child::spawn("early", c, &dir).unwrap());
        let e = p.wait_ready().unwrap_err().to_string();
        assert!(
            e.contains("before it was ready") && e.contains("no [server]"),
            "{e}"
        );
        let e = p.check_alive().unwrap_err().to_string();
        assert!(e.contains("exited unexpectedly"), "{e}");

        // One that never says it is ready: bounded by the timeout.
        let mut p = Provd::new("/bin/sh", &dir).ready_timeout(Duration::from_millis(200));
        let mut c = Command::new("sh");
        c.args(["-c", "echo 'starting' >&2; exec sleep 30"]);
        p.child = Some(Child::spawn("mute", c, &dir).unwrap());
        let e = p.wait_ready().unwrap_err().to_string();
        assert!(e.contains("within") && e.contains("starting"), "{e}");
        p.kill9().unwrap();
        assert!(!p.is_running().unwrap());
    }

    #[test]
    fn an_interrupt_ends_the_wait() {
        let dir = tmp("interrupt");
        let mut p = Provd::new("/bin/sh", &dir).interrupt(|| bail!("interrupted"));
        let mut c = Command::new("sh");
        c.args(["-c", "exec sleep 30"]);
        p.child = Some(Child::spawn("interrupted", c, &dir).unwrap());
        let e = p.wait_ready().unwrap_err().to_string();
        assert_eq!(e, "interrupted");
        let e = p
            .wait_udp(None, 67, Duration::from_secs(5))
            .unwrap_err()
            .to_string();
        assert_eq!(e, "interrupted");
    }
}
