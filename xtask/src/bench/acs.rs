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
//! Prints `RESULT acs sessions_per_s=N bytes_per_device=B` (targets: >= 20,000 sessions/s,
//! <= 2,048 bytes per device), the generator's `RESULT acs-load ...` line, and CPU use.
//! `--smoke`: 20,000 devices, 2 s. Fails if no session completed or any failed.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};
use provd_rig::{Netns, Provd};

use super::Args;

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

/// CPU seconds (user + system) of a process so far.
fn cpu_secs(pid: u32) -> f64 {
    let Ok(s) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return 0.0;
    };
    let Some(rest) = s.rsplit_once(')').map(|(_, r)| r) else {
        return 0.0;
    };
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks: f64 = f.get(11).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0)
        + f.get(12).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
    ticks / hz.max(1.0)
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
    let cpu0 = cpu_secs(pid);
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
    let cpu = cpu_secs(pid) - cpu0;
    if let Some(st) = provd.exit_status()? {
        bail!(
            "provd died during the run ({st}): {}",
            provd.stderr_tail(20)
        );
    }
    let stdout = String::from_utf8_lossy(&load.stdout);
    let line = stdout
        .lines()
        .find(|l| l.starts_with("RESULT acs-load"))
        .with_context(|| {
            format!(
                "no RESULT from the generator: {stdout}{}",
                String::from_utf8_lossy(&load.stderr)
            )
        })?
        .to_owned();
    let field = |k: &str| -> f64 {
        line.split_whitespace()
            .find_map(|f| f.strip_prefix(&format!("{k}=")))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0.0)
    };
    let (sessions, rate, errors) = (field("sessions"), field("sessions_per_s"), field("errors"));
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
    println!("RESULT acs sessions_per_s={rate:.0} bytes_per_device={per_device:.0}");
    println!("{line}");
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
    ensure!(sessions > 0.0, "no session completed");
    ensure!(errors == 0.0, "{errors} sessions failed");
    let _ = Path::new(d);
    Ok(())
}
