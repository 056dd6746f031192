//! `cargo xtask bench api [--devices N] [--backend embedded|postgres|both] [--seconds S]
//! [--rate R] [--smoke]`: the control plane's store and REST API with N devices (default
//! 1,000,000).
//!
//! Per backend, provd runs alone in a fresh network namespace (loopback only; PostgreSQL 15,
//! started by the bench from Debian's package, listens on the same loopback). The bench:
//!
//! 1. writes N devices as JSON lines and times `provd import devices FILE --config C` (provd
//!    not yet serving): `import_per_s`;
//!    and as many live leases (a Kea memfile CSV through `provd import kea-leases`);
//! 2. starts `provd serve` on that store and lease log and times it to its `api ready` line:
//!    `ready_s`, a restart's time to ready with N devices and N leases;
//! 3. drives `GET /api/v1/devices/{mac}` for random known MACs at a fixed rate (default 5,000
//!    requests/s) for S seconds from keep-alive connections, open loop: each request has a due
//!    time and its latency counts from then, so a stalled server cannot hide its queue
//!    (coordinated omission). Transport failures and non-2xx answers are errors: `get_p99_ms`;
//! 4. imports N more devices (other MACs) through the API job (`POST /api/v1/jobs/import`,
//!    JSON lines; `GET /api/v1/jobs/{id}` until it is done): `api_import_per_s`;
//! 5. the same GETs again right after that bulk write: `after_job_get_p99_ms` (the store is
//!    still settling: checkpoints, PostgreSQL's autovacuum). `errors` counts both runs.
//!
//! Prints `RESULT api import_per_s=… api_import_per_s=… get_p99_ms=… get_p50_ms=… errors=…
//! sent=… rate=… after_job_get_p99_ms=… after_job_errors=… ready_s=… devices=N backend=…` per
//! backend (`sent` GETs in each run; `errors` over both), ending in
//! `degraded=get:P%,after_job_get:P%` naming each GET run whose errors exceed 0.1 % of its
//! requests (see `faults.rs`). Targets (issue 13): import ≤ 60 s
//! (embedded) / ≤ 120 s (PostgreSQL) for 1 M devices; p99 ≤ 2 ms / ≤ 5 ms at 5,000 req/s.
//! `--smoke`: 2,000 devices, 2 s, 1,000 req/s; fails on any error.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::os::fd::AsRawFd;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};
use provd_rig::{Netns, Postgres, Provd, cmd};
use serde_json::Value;

use super::Args;
use super::faults;

pub(super) const TOML: &str = r#"
[server]
lease_dir = "@DIR@/state"
bind = "127.0.0.1"
server_id = "127.0.0.1"
workers = 1

@STORE@

[api]
bind = "127.0.0.1"
port = 8080

[[shared_network]]
name = "lo"
interfaces = ["127.0.0.1"]
  [[shared_network.subnet]]
  prefix = "127.0.0.0/24"
    [[shared_network.subnet.pool]]
    start = "127.0.0.100"
    end = "127.0.0.110"

# Room for the restored leases (imported from a Kea memfile CSV): 2 M addresses.
[[shared_network]]
name = "cable"
relays = ["127.0.0.2"]
  [[shared_network.subnet]]
  prefix = "10.64.0.0/11"
    [[shared_network.subnet.pool]]
    start = "10.64.0.10"
    end = "10.95.255.250"
"#;

/// The i-th lease's address in the `cable` subnet.
pub(super) fn lease_addr(i: u32) -> std::net::Ipv4Addr {
    std::net::Ipv4Addr::from(u32::from(std::net::Ipv4Addr::new(10, 64, 0, 10)) + i)
}

/// N live leases (the file's devices' MACs) as a Kea memfile lease4 CSV.
pub(super) fn write_kea_leases(path: &Path, n: u32, now: u64) -> Result<()> {
    let f = std::fs::File::create(path).with_context(|| path.display().to_string())?;
    let mut w = std::io::BufWriter::with_capacity(1 << 20, f);
    writeln!(
        w,
        "address,hwaddr,client_id,valid_lifetime,expire,subnet_id,fqdn_fwd,fqdn_rev,hostname,state,user_context"
    )?;
    let expire = now + 86_400;
    for i in 0..n {
        writeln!(
            w,
            "{},{},,86400,{expire},1,0,0,,0,",
            lease_addr(i),
            mac_of(0x02, i)
        )?;
    }
    w.flush()?;
    Ok(())
}

const PG_PORT: u16 = 55433;
const API: &str = "127.0.0.1:8080";
/// Keep-alive connections of the load loop, one thread each.
const CONNECTIONS: usize = 48;
/// Issue 13's targets per backend: seconds to import 1 M devices, GET p99 in ms at 5,000/s.
const TARGETS: [(&str, f64, f64); 2] = [("embedded", 60.0, 2.0), ("postgres", 120.0, 5.0)];

/// The i-th device's MAC: a locally administered prefix per set (`02` for the file, `06` for
/// the API job), then i.
pub(super) fn mac_of(set: u8, i: u32) -> String {
    let b = i.to_be_bytes();
    format!(
        "{set:02x}:00:{:02x}:{:02x}:{:02x}:{:02x}",
        b[0], b[1], b[2], b[3]
    )
}

/// N devices as JSON lines.
pub(super) fn write_devices(path: &Path, set: u8, n: u32) -> Result<()> {
    let f = std::fs::File::create(path).with_context(|| path.display().to_string())?;
    let mut w = std::io::BufWriter::with_capacity(1 << 20, f);
    for i in 0..n {
        writeln!(
            w,
            "{{\"mac\":\"{}\",\"type\":\"cm\",\"serial\":\"SN{i:08}\",\"vars\":{{\"n\":{i}}}}}",
            mac_of(set, i)
        )?;
    }
    w.flush()?;
    Ok(())
}

pub fn run(args: &Args) -> Result<()> {
    let backends: Vec<&str> = match args.backend.as_deref().unwrap_or("both") {
        "both" => vec!["embedded", "postgres"],
        b @ ("embedded" | "postgres") => vec![b],
        other => bail!("unknown --backend {other:?} (embedded, postgres or both)"),
    };
    let (devices, seconds, rate) = if args.smoke {
        (args.devices.unwrap_or(2_000), 2.0, 1_000)
    } else {
        (
            args.devices.unwrap_or(1_000_000),
            args.seconds,
            if args.rate == 0 { 5_000 } else { args.rate },
        )
    };
    ensure!(devices > 0, "--devices must be at least 1");
    let provd_bin = super::tools::release_provd(args.provd_bin.as_deref())?;
    let mut failed = Vec::new();
    for backend in backends {
        match one(&provd_bin, backend, devices, seconds, rate, args.smoke) {
            Ok(line) => println!("{line}"),
            Err(e) => {
                eprintln!("bench: api on {backend} failed: {e:#}");
                failed.push(backend);
            }
        }
    }
    ensure!(failed.is_empty(), "bench api failed on {failed:?}");
    Ok(())
}

fn one(
    provd_bin: &Path,
    backend: &str,
    devices: u32,
    seconds: f64,
    rate: u64,
    smoke: bool,
) -> Result<String> {
    let dir = tempfile::Builder::new()
        .prefix(&format!("provd-bench-api-{backend}-"))
        .tempdir()?;
    let d = dir.path();
    // PostgreSQL's user must reach its data directory under this one.
    std::fs::set_permissions(d, std::os::unix::fs::PermissionsExt::from_mode(0o755))?;
    let ns = Netns::new("bapi")?;
    let pg = match backend {
        "postgres" => Some(Postgres::start(&ns, d, PG_PORT)?),
        _ => None,
    };
    let store = match &pg {
        Some(pg) => format!("[store]\nbackend = \"postgres\"\nurl = \"{}\"\n", pg.url()),
        None => "[store]\nbackend = \"embedded\"\n".to_string(),
    };
    let mut provd = Provd::new(provd_bin, d)
        .ready_timeout(Duration::from_secs(300))
        .write_config(
            &TOML
                .replace("@DIR@", &d.display().to_string())
                .replace("@STORE@", &store),
        )?;
    provd.check_config()?;

    // 1. The CLI import, provd not serving.
    let file = d.join("devices.jsonl");
    write_devices(&file, 0x02, devices)?;
    eprintln!("bench: api/{backend}: importing {devices} devices with `provd import devices`");
    let t = Instant::now();
    let out = cmd::output_kept(
        ns.command(provd.bin())
            .args(["import", "devices"])
            .arg(&file)
            .arg("--config")
            .arg(provd.config()),
        Duration::from_secs(1800),
        d,
        "import",
    )?;
    let import_s = t.elapsed().as_secs_f64();
    ensure!(
        out.status.success(),
        "provd import devices failed ({}): {}",
        out.status,
        provd_rig::child::tail(&cmd::text(&out), 10)
    );
    let import_per_s = f64::from(devices) / import_s;
    eprintln!(
        "bench: api/{backend}: CLI import {devices} in {import_s:.1} s ({import_per_s:.0}/s)"
    );

    // 1b. As many live leases, through `provd import kea-leases` (into the lease log).
    let leases_file = d.join("kea-leases4.csv");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .as_secs();
    write_kea_leases(&leases_file, devices, now)?;
    let out = cmd::output_kept(
        ns.command(provd.bin())
            .args(["import", "kea-leases"])
            .arg(&leases_file)
            .arg("--config")
            .arg(provd.config()),
        Duration::from_secs(1800),
        d,
        "import-leases",
    )?;
    let leases = if out.status.success() {
        devices
    } else {
        eprintln!(
            "bench: api/{backend}: `provd import kea-leases` failed ({}); ready_s is without leases: {}",
            out.status,
            provd_rig::child::tail(&cmd::text(&out), 5)
        );
        0
    };

    // 2. Serve on that store (and lease log): the time to ready is a restart's.
    let t = Instant::now();
    provd.start(&ns)?;
    let api = wait_api_line(&mut provd)?;
    let ready_s = t.elapsed().as_secs_f64();
    eprintln!(
        "bench: api/{backend}: {api} ready {ready_s:.1} s after the start, with {devices} devices"
    );
    let token = token(&ns, &provd, d, "bench", "operator")?;

    // 3. GET at a fixed rate, on the store as a restart leaves it (the target's measure).
    eprintln!("bench: api/{backend}: GET /api/v1/devices/{{mac}} at {rate}/s for {seconds} s");
    let m = load(&ns, &token, devices, rate, seconds)?;
    provd.check_alive()?;

    // 4. The API job.
    let jfile = d.join("devices-api.jsonl");
    write_devices(&jfile, 0x06, devices)?;
    let t = Instant::now();
    let out = cmd::run(
        ns.command("curl")
            .args(["-s", "-S", "--max-time", "1800", "-X", "POST"])
            .args(["-H", &format!("Authorization: Bearer {token}")])
            .args(["-H", "Content-Type: application/x-ndjson"])
            .arg("--data-binary")
            .arg(format!("@{}", jfile.display()))
            .arg(format!("http://{API}/api/v1/jobs/import")),
        Duration::from_secs(1800),
    )?;
    let id = serde_json::from_str::<Value>(&out)
        .ok()
        .and_then(|v| v["id"].as_u64())
        .with_context(|| format!("POST /api/v1/jobs/import answered {out:?}"))?;
    let job = loop {
        let out = cmd::run(
            ns.command("curl")
                .args(["-s", "-S", "--max-time", "10"])
                .args(["-H", &format!("Authorization: Bearer {token}")])
                .arg(format!("http://{API}/api/v1/jobs/{id}")),
            Duration::from_secs(15),
        )?;
        let v: Value = serde_json::from_str(&out).with_context(|| format!("job {id}: {out}"))?;
        if v["state"] != "running" {
            break v;
        }
        super::check_interrupted()?;
        ensure!(
            t.elapsed() < Duration::from_secs(1800),
            "job {id} still running after 30 min: {v}"
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    let api_import_s = t.elapsed().as_secs_f64();
    ensure!(
        job["state"] == "done" && job["error_count"].as_u64() == Some(0),
        "the API import job ended {job}"
    );
    let api_import_per_s = f64::from(devices) / api_import_s;
    eprintln!(
        "bench: api/{backend}: API job {devices} in {api_import_s:.1} s ({api_import_per_s:.0}/s)"
    );

    // 5. The same GETs right after that bulk write, while the store settles (checkpoints,
    //    PostgreSQL's autovacuum): reported beside the target's figure, not instead of it.
    eprintln!("bench: api/{backend}: GET again, right after the API job");
    let after = load(&ns, &token, devices, rate, seconds)?;
    provd.check_alive()?;
    provd.stop()?;
    drop(pg);
    let line = result_line(
        &format!("import_per_s={import_per_s:.0} api_import_per_s={api_import_per_s:.0}"),
        &m,
        &after,
        &format!("ready_s={ready_s:.2} devices={devices} leases={leases} backend={backend}"),
    );
    if let Some((_, import_target, p99_target)) = TARGETS.iter().find(|t| t.0 == backend) {
        let per_million = 1e6 / import_per_s;
        eprintln!(
            "bench: api/{backend}: target import 1 M ≤ {import_target} s: {per_million:.1} s at this \
             rate ({}); GET p99 ≤ {p99_target} ms at 5,000/s: {:.3} ms at {rate}/s ({})",
            if per_million <= *import_target {
                "met"
            } else {
                "MISSED"
            },
            m.p99_ms,
            if m.p99_ms <= *p99_target && rate >= 5_000 {
                "met"
            } else {
                "not met or not measured at 5,000/s"
            },
        );
    }
    ensure!(m.ok > 0 && after.ok > 0, "no GET succeeded: {line}");
    if smoke {
        ensure!(
            m.errors + after.errors == 0,
            "errors in the smoke run: {line}"
        );
    }
    Ok(line)
}

/// `RESULT api HEAD get_p99_ms=… get_p50_ms=… get_max_ms=… errors=… sent=… rate=…
/// after_job_get_p99_ms=… after_job_errors=… TAIL`, and ` degraded=get:P%,after_job_get:P%`
/// naming each GET run whose errors exceed 0.1 % of its requests.
fn result_line(head: &str, m: &Measured, after: &Measured, tail: &str) -> String {
    format!(
        "RESULT api {head} get_p99_ms={:.3} get_p50_ms={:.3} get_max_ms={:.3} errors={} sent={} \
         rate={:.0} after_job_get_p99_ms={:.3} after_job_errors={} {tail}{}",
        m.p99_ms,
        m.p50_ms,
        m.max_ms,
        m.errors + after.errors,
        m.sent,
        m.rate,
        after.p99_ms,
        after.errors,
        faults::degraded(&[
            ("get", faults::Faults::new(m.errors, m.sent)),
            (
                "after_job_get",
                faults::Faults::new(after.errors, after.sent)
            ),
        ])
    )
}

pub(super) fn wait_api_line(provd: &mut Provd) -> Result<String> {
    provd_rig::wait::until(
        "the `api ready` line",
        Duration::from_secs(300),
        Duration::from_millis(20),
        || {
            provd.check_alive()?;
            Ok(provd
                .stderr_text()
                .lines()
                .find_map(|l| l.strip_prefix("api ready ").map(|u| u.trim().to_string())))
        },
    )
}

/// `provd token create --name NAME --role ROLE` while serve runs: the secret.
pub(super) fn token(
    ns: &Netns,
    provd: &Provd,
    dir: &Path,
    name: &str,
    role: &str,
) -> Result<String> {
    let out = cmd::output_kept(
        ns.command(provd.bin())
            .args(["token", "create", "--config"])
            .arg(provd.config())
            .args(["--name", name, "--role", role]),
        Duration::from_secs(60),
        dir,
        "token",
    )?;
    ensure!(
        out.status.success(),
        "provd token create: {}",
        cmd::text(&out)
    );
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
}

/// What the load loop measured.
#[derive(Debug, Default)]
struct Measured {
    sent: u64,
    ok: u64,
    errors: u64,
    p50_ms: f64,
    p99_ms: f64,
    max_ms: f64,
    /// Completed requests per second over the run.
    rate: f64,
}

/// Open-loop GETs at `rate` per second for `seconds` over [`CONNECTIONS`] keep-alive
/// connections, each worker in `ns` (it enters the namespace itself, so it can reconnect).
fn load(ns: &Netns, token: &str, devices: u32, rate: u64, seconds: f64) -> Result<Measured> {
    let total = (rate as f64 * seconds) as u64;
    let next = Arc::new(AtomicU64::new(0));
    let t0 = Instant::now() + Duration::from_millis(200);
    let ns_path = format!("/run/netns/{}", ns.name());
    let mut workers = Vec::new();
    for w in 0..CONNECTIONS {
        let next = Arc::clone(&next);
        let token = token.to_string();
        let ns_path = ns_path.clone();
        workers.push(std::thread::spawn(move || -> Result<(Vec<u32>, u64)> {
            let f = std::fs::File::open(&ns_path).with_context(|| ns_path.clone())?;
            // SAFETY: setns(2) on a valid namespace fd we own; CLONE_NEWNET changes only this
            // thread's network namespace.
            if unsafe { libc::setns(f.as_raw_fd(), libc::CLONE_NEWNET) } != 0 {
                bail!("setns {ns_path}: {}", std::io::Error::last_os_error());
            }
            let mut rng = 0x9e37_79b9_7f4a_7c15u64 ^ (w as u64 + 1).wrapping_mul(0x2545_f491_4f6c_dd1d);
            let (mut lat, mut errors) = (Vec::new(), 0u64);
            let mut conn: Option<Conn> = None;
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= total {
                    break;
                }
                let due = t0 + Duration::from_nanos(i * 1_000_000_000 / rate);
                let now = Instant::now();
                if due > now {
                    std::thread::sleep(due - now);
                }
                rng ^= rng << 13;
                rng ^= rng >> 7;
                rng ^= rng << 17;
                let mac = mac_of(0x02, (rng % u64::from(devices)) as u32);
                let req = format!(
                    "GET /api/v1/devices/{mac} HTTP/1.1\r\nHost: {API}\r\nAuthorization: Bearer {token}\r\n\r\n"
                );
                let r = (|| -> Result<u16> {
                    if conn.is_none() {
                        conn = Some(Conn::open()?);
                    }
                    conn.as_mut().context("no connection")?.get(req.as_bytes())
                })();
                match r {
                    Ok(status) if (200..300).contains(&status) => {
                        lat.push(u32::try_from(due.elapsed().as_micros()).unwrap_or(u32::MAX));
                    }
                    Ok(_) => errors += 1,
                    Err(_) => {
                        errors += 1;
                        conn = None;
                    }
                }
            }
            Ok((lat, errors))
        }));
    }
    let mut lat = Vec::new();
    let mut errors = 0;
    for w in workers {
        let (l, e) = w
            .join()
            .map_err(|_| anyhow::anyhow!("a load worker panicked"))??;
        lat.extend(l);
        errors += e;
    }
    let elapsed = t0.elapsed().as_secs_f64().max(1e-9);
    lat.sort_unstable();
    let pct = |p: f64| -> f64 {
        if lat.is_empty() {
            return 0.0;
        }
        let idx = ((lat.len() as f64 * p).ceil() as usize).clamp(1, lat.len()) - 1;
        f64::from(lat[idx]) / 1000.0
    };
    Ok(Measured {
        sent: total,
        ok: lat.len() as u64,
        errors,
        p50_ms: pct(0.50),
        p99_ms: pct(0.99),
        max_ms: lat.last().map_or(0.0, |&v| f64::from(v) / 1000.0),
        rate: lat.len() as f64 / elapsed,
    })
}

/// One keep-alive HTTP/1.1 connection.
struct Conn {
    s: TcpStream,
    buf: Vec<u8>,
}

impl Conn {
    fn open() -> Result<Conn> {
        let s = TcpStream::connect(API)?;
        s.set_nodelay(true)?;
        s.set_read_timeout(Some(Duration::from_secs(5)))?;
        Ok(Conn {
            s,
            buf: Vec::with_capacity(4096),
        })
    }

    /// Sends `req`, reads one whole answer: its status.
    fn get(&mut self, req: &[u8]) -> Result<u16> {
        self.s.write_all(req)?;
        self.buf.clear();
        let mut chunk = [0u8; 8192];
        loop {
            if let Some((status, len)) = parse_answer(&self.buf)? {
                ensure!(len == self.buf.len(), "bytes after the answer");
                return Ok(status);
            }
            let n = self.s.read(&mut chunk)?;
            ensure!(n > 0, "the server closed the connection");
            self.buf.extend_from_slice(&chunk[..n]);
        }
    }
}

/// An HTTP/1.1 answer in `b`: `None` while incomplete, else (status, its length in bytes).
/// Bodies by Content-Length or chunked.
fn parse_answer(b: &[u8]) -> Result<Option<(u16, usize)>> {
    let Some(end) = b.windows(4).position(|w| w == b"\r\n\r\n") else {
        return Ok(None);
    };
    let head = std::str::from_utf8(&b[..end]).context("header is not UTF-8")?;
    let mut lines = head.split("\r\n");
    let status: u16 = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|s| s.parse().ok())
        .with_context(|| format!("bad status line in {head:?}"))?;
    let (mut len, mut chunked) = (None, false);
    for l in lines {
        let Some((k, v)) = l.split_once(':') else {
            continue;
        };
        let (k, v) = (k.trim(), v.trim());
        if k.eq_ignore_ascii_case("content-length") {
            len = Some(v.parse::<usize>().context("content-length")?);
        } else if k.eq_ignore_ascii_case("transfer-encoding") && v.eq_ignore_ascii_case("chunked") {
            chunked = true;
        }
    }
    let body = end + 4;
    if chunked {
        return Ok(b[body..]
            .windows(5)
            .position(|w| w == b"0\r\n\r\n")
            .filter(|&p| p == 0 || b[body + p - 2..body + p] == *b"\r\n")
            .map(|p| (status, body + p + 5)));
    }
    let len = len.unwrap_or(0);
    Ok((b.len() >= body + len).then_some((status, body + len)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_are_complete_only_when_their_body_is() {
        let a = b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\nhello";
        assert_eq!(parse_answer(a).unwrap(), Some((200, a.len())));
        assert_eq!(parse_answer(&a[..a.len() - 1]).unwrap(), None);
        assert_eq!(parse_answer(b"HTTP/1.1 404 Not Found\r\n").unwrap(), None);
        let c =
            b"HTTP/1.1 404 Not Found\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n";
        assert_eq!(parse_answer(c).unwrap(), Some((404, c.len())));
        assert_eq!(parse_answer(&c[..c.len() - 2]).unwrap(), None);
        assert!(parse_answer(b"garbage\r\n\r\n").is_err());
    }

    #[test]
    fn a_result_over_failed_gets_says_degraded() {
        let run = |errors| Measured {
            sent: 10_000,
            ok: 10_000 - errors,
            errors,
            p50_ms: 0.5,
            p99_ms: 1.5,
            max_ms: 9.0,
            rate: 5000.0,
        };
        assert_eq!(
            result_line("import_per_s=1", &run(0), &run(25), "backend=embedded"),
            "RESULT api import_per_s=1 get_p99_ms=1.500 get_p50_ms=0.500 get_max_ms=9.000 \
             errors=25 sent=10000 rate=5000 after_job_get_p99_ms=1.500 after_job_errors=25 \
             backend=embedded degraded=after_job_get:0.25%"
        );
        // 0.1 % of each run is still clean.
        let clean = result_line("h", &run(10), &run(10), "t");
        assert!(
            clean.ends_with(
                " errors=20 sent=10000 rate=5000 after_job_get_p99_ms=1.500 \
                                 after_job_errors=10 t"
            ),
            "{clean}"
        );
    }

    #[test]
    fn macs_are_distinct_per_set_and_index() {
        assert_eq!(mac_of(2, 0), "02:00:00:00:00:00");
        assert_eq!(mac_of(6, 0x0102_0304), "06:00:01:02:03:04");
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("d.jsonl");
        write_devices(&p, 2, 3).unwrap();
        let text = std::fs::read_to_string(&p).unwrap();
        let rows: Vec<Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(rows.len(), 3);
        assert_eq!(rows[2]["mac"], "02:00:00:00:00:02");
        assert_eq!(rows[2]["vars"]["n"], 2);
        let p = dir.path().join("l.csv");
        write_kea_leases(&p, 2, 1000).unwrap();
        let text = std::fs::read_to_string(&p).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 3);
        assert_eq!(
            lines[2],
            "10.64.0.11,02:00:00:00:00:01,,86400,87400,1,0,0,,0,"
        );
        assert_eq!(
            lease_addr(1_000_000),
            std::net::Ipv4Addr::new(10, 79, 66, 74)
        );
    }
}
