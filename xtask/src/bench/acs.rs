//! `cargo xtask bench acs [--devices N] [--seconds S] [--connections C] [--smoke]`: provd's
//! TR-069 ACS with N known devices (default 1,000,000) under complete Inform sessions.
//!
//! provd runs alone in a fresh network namespace (loopback only) with `[acs]` (auth off: the
//! bench measures sessions, not digest round trips; snapshots off during the run). Its RSS is
//! read before and after the devices are registered through the bulk seed command
//! (`POST /api/seed`, which files each device through the same code as an Inform: a boot
//! Inform's parameters, cached), giving bytes per idle device. Then `provd-cpe-sim load` runs
//! complete sessions — Inform, InformResponse, empty POST, 204 — over C keep-alive
//! connections for S seconds, cycling through the known devices.
//!
//! Prints `RESULT acs sessions_per_s=N bytes_per_device=B sessions=S errors=E attempts=A`
//! (targets: >= 20,000 sessions/s, <= 2,048 bytes per device; errors are the generator's
//! failed sessions and connects, attempts the sessions completed plus those), ending in
//! `degraded=P%` when errors exceed 0.1 % of the attempts (see `faults.rs`), then the
//! generator's `RESULT acs-load ...` line, and CPU use.
//! `--smoke`: 20,000 devices, 2 s. Fails if no session completed or any failed.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};
use provd_rig::{Netns, Provd};

use super::Args;
use super::faults::Faults;
use super::procstat;
use super::tools;

const TOML: &str = r#"
[server]
lease_dir = "@DIR@/state"
bind = "127.0.0.1"
server_id = "127.0.0.1"
workers = 1

[[shared_network]]
name = "lo"
interfaces = ["127.0.0.1"]
  [[shared_network.subnet]]
  prefix = "127.0.0.0/24"
    [[shared_network.subnet.pool]]
    start = "127.0.0.100"
    end = "127.0.0.110"

[acs]
bind = "127.0.0.1"
port = 7547
admin_port = 7557
auth = "none"
snapshot_secs = 86400
session_timeout_secs = 30
"#;

pub const TARGET_SESSIONS: f64 = 20_000.0;
pub const TARGET_BYTES: f64 = 2048.0;

fn rss_bytes(pid: u32) -> Result<u64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let kb: u64 = s
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .context("VmRSS")?;
    Ok(kb * 1024)
}

pub fn run(args: &Args) -> Result<()> {
    let (devices, seconds, connections) = if args.smoke {
        (20_000u32, 2.0, 32u32)
    } else {
        (
            args.devices.unwrap_or(1_000_000),
            args.seconds,
            args.concurrency.unwrap_or(64),
        )
    };
    let root = super::tools::workspace_root();
    let release = super::tools::target_dir(&root)?.join("release");
    let provd_bin = match &args.provd_bin {
        Some(p) => p.clone(),
        None => {
            let ok = Command::new(super::tools::cargo())
                .args(["build", "--release", "-p", "provd", "-p", "provd-cpe-sim"])
                .current_dir(&root)
                .status()?
                .success();
            ensure!(ok, "cargo build failed");
            release.join("provd")
        }
    };
    if args.provd_bin.is_some() {
        let ok = Command::new(super::tools::cargo())
            .args(["build", "--release", "-p", "provd-cpe-sim"])
            .current_dir(&root)
            .status()?
            .success();
        ensure!(ok, "building provd-cpe-sim failed");
    }
    let sim = release.join("provd-cpe-sim");
    let dir = tempfile::Builder::new()
        .prefix("provd-bench-acs-")
        .tempdir()?;
    let d = dir.path();
    let ns = Netns::new("bacs")?;
    let mut provd = Provd::new(&provd_bin, d)
        .ready_timeout(Duration::from_secs(20))
        .write_config(&TOML.replace("@DIR@", &d.display().to_string()))?;
    let acs = provd
        .start(&ns)?
        .acs
        .clone()
        .context("provd started without its ACS")?;
    let (api, cwmp) = (acs.api, acs.cwmp[0]);
    let pid = provd.pid();
    // The task API takes the `/api/v1` bearer tokens.
    let token = crate::e2e::api::create_token(&ns, &provd, d, "bench-acs", "operator")?;
    let bearer = format!("Authorization: Bearer {token}");
    std::thread::sleep(Duration::from_millis(300));
    let rss0 = rss_bytes(pid)?;
    let t = Instant::now();
    let out = provd_rig::cmd::run(
        ns.command("curl").args([
            "-s",
            "--max-time",
            "600",
            "-X",
            "POST",
            "-H",
            &bearer,
            &format!("http://{api}/api/seed"),
            "-d",
            &format!("{{\"count\": {devices}}}"),
        ]),
        Duration::from_secs(620),
    )?;
    let v: serde_json::Value =
        serde_json::from_str(&out).with_context(|| format!("seed: {out}"))?;
    ensure!(
        v["devices"].as_u64() == Some(u64::from(devices)),
        "seed: {v}"
    );
    let seed_s = t.elapsed().as_secs_f64();
    std::thread::sleep(Duration::from_millis(300));
    let rss1 = rss_bytes(pid)?;
    let per_device = (rss1.saturating_sub(rss0)) as f64 / f64::from(devices);
    eprintln!(
        "bench: acs: {devices} devices seeded in {seed_s:.1} s; RSS {:.1} MiB -> {:.1} MiB ({per_device:.0} B/device)",
        rss0 as f64 / 1048576.0,
        rss1 as f64 / 1048576.0
    );
    let cpu0 = procstat::process_cpu(pid);
    let t = Instant::now();
    let mut c = ns.command(&sim);
    c.args([
        "load",
        "--acs",
        &format!("http://{cwmp}/"),
        "--connections",
        &connections.to_string(),
    ])
    .args([
        "--seconds",
        &seconds.to_string(),
        "--devices",
        &devices.to_string(),
    ]);
    let load = provd_rig::cmd::output_timeout(&mut c, Duration::from_secs_f64(seconds + 60.0))?;
    let wall = t.elapsed().as_secs_f64();
    let cpu = procstat::process_cpu(pid) - cpu0;
    if let Some(st) = provd.exit_status()? {
        bail!(
            "provd died during the run ({st}): {}",
            provd.stderr_tail(20)
        );
    }
    let stdout = String::from_utf8_lossy(&load.stdout);
    let gen_run = parse_load(&stdout).with_context(|| {
        format!(
            "provd-cpe-sim load ({}) said: {stdout}{}",
            load.status,
            String::from_utf8_lossy(&load.stderr)
        )
    })?;
    let rss2 = rss_bytes(pid)?;
    eprintln!(
        "bench: acs: provd used {:.2} CPU-seconds per second over the run ({wall:.1} s); RSS after the load {:.1} MiB",
        cpu / wall,
        rss2 as f64 / 1048576.0
    );
    let stats = provd_rig::cmd::run(
        ns.command("curl")
            .args(["-s", "-H", &bearer, &format!("http://{api}/api/stats")]),
        Duration::from_secs(10),
    )
    .unwrap_or_default();
    eprintln!("bench: acs: provd counters: {}", stats.trim());
    let _ = provd.terminate();
    let rate = gen_run.sessions_per_s;
    println!("{}", gen_run.result_line(per_device));
    println!("{}", gen_run.line);
    println!(
        "TARGET acs sessions_per_s>={TARGET_SESSIONS:.0} ({}) bytes_per_device<={TARGET_BYTES:.0} ({})",
        if rate >= TARGET_SESSIONS {
            "met"
        } else {
            "missed"
        },
        if per_device <= TARGET_BYTES {
            "met"
        } else {
            "missed"
        }
    );
    ensure!(gen_run.sessions > 0, "no session completed");
    ensure!(gen_run.errors == 0, "{} sessions failed", gen_run.errors);
    let _ = Path::new(d);
    Ok(())
}

/// The generator's `RESULT acs-load sessions=N sessions_per_s=R errors=E ...` line.
#[derive(Debug, Clone)]
struct LoadRun {
    sessions: u64,
    sessions_per_s: f64,
    /// Sessions that failed, and connects that did (each is retried).
    errors: u64,
    line: String,
}

fn parse_load(stdout: &str) -> Result<LoadRun> {
    let f = tools::fields(stdout, "RESULT acs-load").context("no RESULT acs-load line")?;
    Ok(LoadRun {
        sessions: tools::num(&f, "sessions")?,
        sessions_per_s: tools::num(&f, "sessions_per_s")?,
        errors: tools::num(&f, "errors")?,
        line: stdout
            .lines()
            .rev()
            .find(|l| l.starts_with("RESULT acs-load"))
            .unwrap_or_default()
            .to_owned(),
    })
}

impl LoadRun {
    /// Errors of the sessions and connects attempted.
    fn faults(&self) -> Faults {
        Faults::new(self.errors, self.sessions + self.errors)
    }

    /// `RESULT acs sessions_per_s=N bytes_per_device=B sessions=S errors=E attempts=A`, and
    /// ` degraded=P%` when errors exceed 0.1 % of the attempts.
    fn result_line(&self, bytes_per_device: f64) -> String {
        let f = self.faults();
        format!(
            "RESULT acs sessions_per_s={:.0} bytes_per_device={bytes_per_device:.0} sessions={} \
             errors={} attempts={}{}",
            self.sessions_per_s,
            self.sessions,
            self.errors,
            f.attempts,
            f.marker()
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_result_over_failed_sessions_says_degraded() {
        let out = "RESULT acs-load sessions=99000 sessions_per_s=9900 errors=1000 p50_ms=2.500 \
                   p99_ms=6.900 seconds=10.00\n";
        let r = parse_load(out).unwrap();
        assert_eq!(r.line, out.trim_end());
        assert_eq!(
            r.result_line(1234.4),
            "RESULT acs sessions_per_s=9900 bytes_per_device=1234 sessions=99000 errors=1000 \
             attempts=100000 degraded=1.00%"
        );
        let clean = parse_load(
            "RESULT acs-load sessions=100000 sessions_per_s=10000 errors=0 p50_ms=2.500 \
             p99_ms=6.900 seconds=10.00\n",
        )
        .unwrap();
        assert_eq!(
            clean.result_line(1234.0),
            "RESULT acs sessions_per_s=10000 bytes_per_device=1234 sessions=100000 errors=0 \
             attempts=100000"
        );
    }

    #[test]
    fn generator_output_without_its_counts_is_an_error() {
        let e = parse_load("thread panicked").unwrap_err();
        assert_eq!(e.to_string(), "no RESULT acs-load line");
        let e = parse_load("RESULT acs-load sessions=5 sessions_per_s=1 p50_ms=1").unwrap_err();
        assert_eq!(e.to_string(), "no errors=");
    }
}
