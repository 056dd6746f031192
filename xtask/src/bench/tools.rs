//! The load side: building and finding the binaries, running provd-loadgen and perfdhcp in the
//! load namespace, and reading back what they measured.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

use super::faults::Faults;
use provd_rig::Topology;
use provd_rig::topo::{BENCH_RELAY_IP as RELAY_IP, BENCH_SERVER_IP as SERVER_IP};

pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask lives in the workspace root")
        .to_owned()
}

/// `--provd-bin`, or provd built in release here (`cargo build --release -p provd`).
pub fn release_provd(given: Option<&Path>) -> Result<PathBuf> {
    if let Some(p) = given {
        return Ok(p.to_owned());
    }
    let root = workspace_root();
    let ok = Command::new(cargo())
        .args(["build", "--release", "-p", "provd"])
        .current_dir(&root)
        .status()?
        .success();
    if !ok {
        bail!("cargo build --release -p provd failed");
    }
    Ok(target_dir(&root)?.join("release/provd"))
}

/// The workspace's target directory as cargo sees it (honours CARGO_TARGET_DIR and config).
pub fn target_dir(root: &Path) -> Result<PathBuf> {
    let out = Command::new(cargo())
        .args(["metadata", "--format-version", "1", "--no-deps"])
        .current_dir(root)
        .stderr(Stdio::inherit())
        .output()
        .context("running cargo metadata")?;
    if !out.status.success() {
        bail!("cargo metadata failed");
    }
    let v: serde_json::Value = serde_json::from_slice(&out.stdout)?;
    Ok(PathBuf::from(
        v["target_directory"]
            .as_str()
            .context("cargo metadata has no target_directory")?,
    ))
}

pub(super) fn cargo() -> String {
    std::env::var("CARGO").unwrap_or_else(|_| "cargo".into())
}

#[derive(Debug)]
pub struct Binaries {
    pub loadgen: PathBuf,
    /// None when provd does not build; the harness then reports provd as failed.
    pub provd: Option<PathBuf>,
}

/// `cargo build --release -p provd-loadgen -p provd`; if that fails, the load generator alone
/// (so the peers can still be measured). A given `provd_bin` is used as is.
pub fn build(with_provd: bool, provd_bin: Option<&Path>) -> Result<Binaries> {
    let root = workspace_root();
    let release = target_dir(&root)?.join("release");
    let run = |pkgs: &[&str]| -> Result<bool> {
        let mut c = Command::new(cargo());
        c.args(["build", "--release"]).current_dir(&root);
        for p in pkgs {
            c.args(["-p", p]);
        }
        eprintln!("bench: cargo build --release -p {}", pkgs.join(" -p "));
        Ok(c.status().context("running cargo build")?.success())
    };
    let provd = if let (true, Some(p)) = (with_provd, provd_bin) {
        if !run(&["provd-loadgen"])? {
            bail!("building provd-loadgen failed");
        }
        Some(
            p.canonicalize()
                .with_context(|| format!("{}", p.display()))?,
        )
    } else if with_provd && run(&["provd-loadgen", "provd"])? {
        Some(release.join("provd"))
    } else {
        if with_provd {
            eprintln!("bench: building provd failed; measuring the peers only");
        }
        if !run(&["provd-loadgen"])? {
            bail!("building provd-loadgen failed");
        }
        None
    };
    Ok(Binaries {
        loadgen: release.join("provd-loadgen"),
        provd,
    })
}

/// Runs `cmd` to completion with a time limit, killing it (by PID) past that. Returns stdout,
/// and fails with stderr if it exits non-zero.
fn run_bounded(mut cmd: Command, limit: Duration, what: &str) -> Result<(String, String)> {
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("starting {what}"))?;
    let mut out = child.stdout.take().context("stdout")?;
    let mut err = child.stderr.take().context("stderr")?;
    let out_t = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = out.read_to_string(&mut s);
        s
    });
    let err_t = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = err.read_to_string(&mut s);
        s
    });
    let t0 = Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait()? {
            break s;
        }
        let stop = if t0.elapsed() > limit {
            Some(format!("{what} still running after {limit:?}"))
        } else {
            super::check_interrupted().err().map(|e| e.to_string())
        };
        if let Some(why) = stop {
            let _ = child.kill();
            let _ = child.wait();
            bail!("{why}; killed it");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let stdout = out_t.join().unwrap_or_default();
    let stderr = err_t.join().unwrap_or_default();
    if !status.success() {
        bail!("{what} failed ({status}):\n{}{}", stdout, stderr);
    }
    Ok((stdout, stderr))
}

/// Waits for `child` to exit within `limit`; kills it (and says so) when the limit passes or
/// the bench is interrupted.
pub fn wait_bounded(
    child: &mut provd_rig::Child,
    limit: Duration,
    what: &str,
) -> Result<std::process::ExitStatus> {
    let t0 = Instant::now();
    loop {
        if let Some(st) = child.try_wait()? {
            return Ok(st);
        }
        let stop = if t0.elapsed() > limit {
            Some(format!("{what} still running after {limit:?}"))
        } else {
            super::check_interrupted().err().map(|e| e.to_string())
        };
        if let Some(why) = stop {
            child.kill(libc::SIGKILL)?;
            child.wait_timeout(Duration::from_secs(5))?;
            bail!("{why}; killed it");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// `key=value` words of the last line starting with `tag`.
pub fn fields(text: &str, tag: &str) -> Option<BTreeMap<String, String>> {
    let line = text.lines().rev().find(|l| l.starts_with(tag))?;
    Some(
        line.split_whitespace()
            .skip(1)
            .filter_map(|w| w.split_once('='))
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect(),
    )
}

/// The value of `k=` among `fields`, parsed: an error names the key when it is missing or
/// does not parse.
pub fn num<T: std::str::FromStr>(f: &BTreeMap<String, String>, k: &str) -> Result<T> {
    let v = f.get(k).with_context(|| format!("no {k}="))?;
    v.parse()
        .map_err(|_| anyhow::anyhow!("bad {k}= value {v:?}"))
}

/// What one load run measured.
#[derive(Debug, Clone)]
pub struct Measured {
    /// DORA exchanges started.
    pub sent: u64,
    /// Exchanges that ended in an ACK.
    pub completed: u64,
    pub dora_per_s: f64,
    /// Exchanges not completed (timed out or NAKed), per cent of those started.
    pub drops_pct: f64,
    pub naks: u64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    /// The server's CPU (user + system, every thread) over the load, in per cent of one core;
    /// set by the bench that knows the server's process.
    pub server_cpu_pct: Option<f64>,
    pub line: String,
    pub detail: String,
}

impl Measured {
    /// Exchanges that had no answer within the timeout (the loadgen's `drops`): started, not
    /// ACKed and not NAKed.
    pub fn drops(&self) -> u64 {
        self.sent
            .saturating_sub(self.completed)
            .saturating_sub(self.naks)
    }

    /// Exchanges that did not end in an ACK (drops and NAKs) of those started.
    pub fn faults(&self) -> Faults {
        Faults::new(self.sent.saturating_sub(self.completed), self.sent)
    }

    /// `sent=S drops=D naks=K` for RESULT lines.
    pub fn counts(&self) -> String {
        format!(
            "sent={} drops={} naks={}",
            self.sent,
            self.drops(),
            self.naks
        )
    }
}

#[derive(Debug, Clone)]
pub struct Load {
    pub clients: u32,
    pub rate: u64,
    pub window: u32,
    pub seconds: f64,
    pub timeout_ms: u64,
    pub salt: u8,
}

pub fn loadgen(bin: &Path, link: &Topology, load: &Load) -> Result<Measured> {
    let bin = bin.to_str().context("loadgen path is not UTF-8")?;
    let mut cmd = link.load_ns().command(bin);
    // Count bound: more than any server here can do (2 M DORA/s), so time is what ends the run.
    let count = ((load.seconds * 2e6) as u64).max(1);
    cmd.args(["--server", &SERVER_IP.to_string()])
        .args(["--relay", &RELAY_IP.to_string()])
        .args(["--clients", &load.clients.to_string()])
        .args(["--count", &count.to_string()])
        .args(["--rate", &load.rate.to_string()])
        .args(["--window", &load.window.to_string()])
        .args(["--seconds", &load.seconds.to_string()])
        .args(["--timeout-ms", &load.timeout_ms.to_string()])
        .args(["--salt", &load.salt.to_string()]);
    let limit = Duration::from_secs_f64(load.seconds + load.timeout_ms as f64 / 1000.0 + 20.0);
    let (out, err) = run_bounded(cmd, limit, "provd-loadgen")?;
    parse_loadgen(&out, &err).with_context(|| format!("provd-loadgen said:\n{out}{err}"))
}

/// provd-loadgen's `LOADGEN sent=N completed=N dora_per_s=X drops_pct=P naks=N p50_ms=L
/// p99_ms=L ...` line (the last one in `out`), with its stderr as the detail.
pub fn parse_loadgen(out: &str, err: &str) -> Result<Measured> {
    let f = fields(out, "LOADGEN").context("no LOADGEN line")?;
    Ok(Measured {
        sent: num(&f, "sent")?,
        completed: num(&f, "completed")?,
        dora_per_s: num(&f, "dora_per_s")?,
        drops_pct: num(&f, "drops_pct")?,
        naks: num(&f, "naks")?,
        p50_ms: num(&f, "p50_ms")?,
        p99_ms: num(&f, "p99_ms")?,
        server_cpu_pct: None,
        line: out
            .lines()
            .rev()
            .find(|l| l.starts_with("LOADGEN"))
            .unwrap_or("")
            .to_owned(),
        detail: err.trim().to_owned(),
    })
}

/// What perfdhcp reported.
#[derive(Debug, Clone)]
pub struct Perf {
    /// perfdhcp's own "Rate:" (4-way exchanges per second).
    pub rate: f64,
    pub discovers: u64,
    pub acks: u64,
    pub drops_pct: f64,
    pub raw: String,
}

pub fn perfdhcp(link: &Topology, rate: u64, clients: u32, seconds: u32) -> Result<Perf> {
    const PERFDHCP: &str = "/usr/sbin/perfdhcp";
    if !Path::new(PERFDHCP).exists() {
        bail!("{PERFDHCP} not found: apt-get install kea-admin");
    }
    let mut cmd = link.load_ns().command(PERFDHCP);
    // A unicast server address makes perfdhcp act as a relay: giaddr = -l, replies to :67.
    cmd.args(["-4", "-g", "single"])
        .args(["-r", &rate.to_string()])
        .args(["-R", &clients.to_string()])
        .args(["-p", &seconds.to_string()])
        .args(["-l", &RELAY_IP.to_string()])
        .args(["-L", "67"])
        .arg(SERVER_IP.to_string());
    let limit = Duration::from_secs(u64::from(seconds) + 20);
    // perfdhcp exits 3 when it saw drops; its report is what we want either way.
    let (out, _) = match run_bounded(cmd, limit, "perfdhcp") {
        Ok(o) => o,
        Err(e) if e.to_string().contains("exit status: 3") => (e.to_string(), String::new()),
        Err(e) => return Err(e),
    };
    parse_perfdhcp(&out)
}

/// Reads perfdhcp's final report: the "Rate:" line and the per-exchange sent/received counts.
pub fn parse_perfdhcp(out: &str) -> Result<Perf> {
    let rate = out
        .lines()
        .find_map(|l| l.trim().strip_prefix("Rate:"))
        .and_then(|r| r.split_whitespace().next())
        .and_then(|r| r.parse().ok())
        .with_context(|| format!("no Rate: line in perfdhcp output:\n{out}"))?;
    let section = |name: &str| -> Option<(u64, u64)> {
        let at = out.find(&format!("Statistics for: {name}"))?;
        let body = &out[at..];
        let get = |k: &str| -> Option<u64> {
            body.lines()
                .find_map(|l| l.trim().strip_prefix(k))
                .and_then(|v| v.trim().parse().ok())
        };
        Some((get("sent packets:")?, get("received packets:")?))
    };
    let (discovers, _) = section("DISCOVER-OFFER").context("no DISCOVER-OFFER statistics")?;
    let (_, acks) = section("REQUEST-ACK").context("no REQUEST-ACK statistics")?;
    let drops_pct = if discovers == 0 {
        0.0
    } else {
        100.0 * discovers.saturating_sub(acks) as f64 / discovers as f64
    };
    Ok(Perf {
        rate,
        discovers,
        acks,
        drops_pct,
        raw: out.to_owned(),
    })
}

/// Puts `n` devices into the store of the provd configured by `config` with `provd import
/// devices` (provd not running), so that a bench serves with a full system of record. The
/// devices' MACs are the load generator's (`02:<salt>:<index>`), so the clients the bench runs
/// are among them. Returns the import's seconds.
pub fn seed_store(provd: &Path, config: &Path, dir: &Path, n: u32, salt: u8) -> Result<f64> {
    use std::io::Write as _;
    let file = dir.join("store-seed.jsonl");
    {
        let f = std::fs::File::create(&file).with_context(|| file.display().to_string())?;
        let mut w = std::io::BufWriter::with_capacity(1 << 20, f);
        for i in 0..n {
            let b = i.to_be_bytes();
            writeln!(
                w,
                "{{\"mac\":\"02:{salt:02x}:{:02x}:{:02x}:{:02x}:{:02x}\",\"type\":\"cm\",\
                 \"serial\":\"SN{i:08}\",\"vars\":{{\"n\":{i}}}}}",
                b[0], b[1], b[2], b[3]
            )?;
        }
        w.flush()?;
    }
    let t = Instant::now();
    let out = Command::new(provd)
        .args(["import", "devices"])
        .arg(&file)
        .arg("--config")
        .arg(config)
        .stdin(Stdio::null())
        .output()
        .context("running provd import devices")?;
    let secs = t.elapsed().as_secs_f64();
    if !out.status.success() {
        bail!(
            "provd import devices ({n} devices) failed ({}): {}{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let _ = std::fs::remove_file(&file);
    // The import leaves hundreds of MB for the kernel to write back; the server's own
    // fdatasyncs must not queue behind that during the measured run.
    let synced = Command::new("sync").status().context("running sync")?;
    if !synced.success() {
        bail!("sync after seeding the store: {synced}");
    }
    eprintln!("bench: store seeded with {n} devices in {secs:.1} s");
    Ok(secs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loadgen_line() {
        let f = fields(
            "x\nLOADGEN sent=10 completed=9 dora_per_s=4.5 drops_pct=10.00 naks=0 p50_ms=0.1 \
             p99_ms=0.2 offers=9 acks=9\n",
            "LOADGEN",
        )
        .unwrap();
        assert_eq!(num::<u64>(&f, "completed").unwrap(), 9);
        assert_eq!(num::<f64>(&f, "dora_per_s").unwrap(), 4.5);
        assert!(fields("nothing", "LOADGEN").is_none());
    }

    #[test]
    fn loadgen_output_gives_drops_and_naks_as_counts() {
        let m = parse_loadgen(
            "LOADGEN sent=200 completed=100 dora_per_s=50.0 drops_pct=50.00 naks=10 \
             p50_ms=0.100 p99_ms=0.200 offers=110 acks=100\n",
            "loadgen: drops=90\n",
        )
        .unwrap();
        assert_eq!((m.sent, m.completed, m.naks, m.drops()), (200, 100, 10, 90));
        assert_eq!(m.counts(), "sent=200 drops=90 naks=10");
        assert_eq!(m.faults(), Faults::new(100, 200));
        assert_eq!(m.detail, "loadgen: drops=90");
        let e = parse_loadgen("loadgen: bind failed", "").unwrap_err();
        assert_eq!(e.to_string(), "no LOADGEN line");
        let e = parse_loadgen("LOADGEN sent=1 completed=1 dora_per_s=x", "").unwrap_err();
        assert_eq!(e.to_string(), "bad dora_per_s= value \"x\"");
        let e = parse_loadgen("LOADGEN sent=1 completed=1 dora_per_s=1", "").unwrap_err();
        assert_eq!(e.to_string(), "no drops_pct=");
    }
}
