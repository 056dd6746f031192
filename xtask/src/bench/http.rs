//! `cargo xtask bench http [--seconds N] [--smoke]`: provd's profile server under real load
//! tools.
//!
//! provd runs in a fresh server namespace (198.18.2.2) with a kvp profile class, `--macs`
//! subscribers (default 1000), plain HTTP on 80 and HTTPS on 443 with client certificates
//! (ECDSA P-256, made by openssl for the run), and the access log off (one log line per
//! request would measure the log sink, not the server). From the load namespace:
//!
//! * **rps**: `wrk` over keep-alive, a Lua script rotating through every MAC's profile URL, after
//!   a warm-up pass that renders (and versions) every profile once, so the measured run serves
//!   cached profiles; any non-2xx/3xx response fails the run.
//! * **tls_handshakes_per_s**: `openssl s_time -new -tls1_2` with a client certificate, in
//!   parallel processes: every connection is a full TLS handshake with mutual authentication
//!   (TLS 1.2 so that every handshake s_time counts is one the server finished; provd's log
//!   must show no failed handshake).
//!
//! * the same handshakes from `provd-loadgen tls` (rustls clients, the chain verified and a
//!   refusal counted as a failure), printed apart as `RESULT http-rustls-client ...`: OpenSSL
//!   3.0's s_time spends more CPU per handshake than the server, and client and server share
//!   the machine's two cores.
//!
//! Prints `RESULT http rps=N tls_handshakes_per_s=M errors=E attempts=A tls_handshakes=H`
//! (wrk, s_time): errors are wrk's non-2xx/3xx responses and socket errors (connect, read,
//! write, timeout), attempts its requests plus its connect, read and write errors; the line
//! ends in `degraded=P%` when errors exceed 0.1 % of the attempts (see `faults.rs`). s_time
//! counts no failures (it stops at the first failed connection, which fails the run, as a
//! failed handshake in provd's log does), so its figure is clean or absent. Then
//! `RESULT http-rustls-client tls_handshakes_per_s=N provd_us_per_handshake=U handshakes=H
//! failed=F` (with `degraded=P%` the same way), the targets, the CPU each provd thread used,
//! and provd's own CPU per request and per handshake. `--smoke`: 2 s each, 100 MACs, same
//! checks.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};
use provd_rig::{Provd, cmd};

use super::faults::Faults;
use super::procstat::{cpu_summary, machine_cpu, thread_cpu};
use super::{Args, check_interrupted};
use provd_rig::Topology;
use provd_rig::topo::BENCH_SERVER_IP as SERVER_IP;

const TEMPLATE: &str = "DBID_WEB_SIP_SERVER={{ vars.sip }}\nDBID_DEVICE_MAC={{ mac_upper }}\nDBID_SIP_PHONE_NUM={{ subscriber.line1 }}\nDBID_SIP_ENABLE=1\t0\t0\t0\nDBID_PRV_OPTION66_ENABLED=0\n";
const RPS_TARGET: f64 = 50_000.0;
const TLS_TARGET: f64 = 5_000.0;
const READY_TIMEOUT: Duration = Duration::from_secs(20);
/// MAC k is this prefix plus k as 4 bytes.
const MAC_PREFIX: &str = "02aa";

struct Plan {
    seconds: f64,
    macs: u32,
    connections: u32,
    wrk_threads: u32,
    s_time_procs: u32,
}

pub fn run(args: &Args) -> Result<()> {
    let plan = if args.smoke {
        Plan {
            seconds: 2.0,
            macs: 100,
            connections: 16,
            wrk_threads: 1,
            s_time_procs: 1,
        }
    } else {
        Plan {
            seconds: args.seconds,
            macs: 1000,
            connections: 64,
            wrk_threads: 2,
            s_time_procs: 2,
        }
    };
    ensure!(plan.seconds >= 1.0, "--seconds must be at least 1");
    for tool in ["wrk", "openssl"] {
        ensure!(
            which(tool),
            "{tool} is missing: run xtask/scripts/install-deps.sh"
        );
    }
    let (provd, loadgen) = build(args.provd_bin.as_deref())?;
    let link = Topology::bench()?;
    let dir = tempfile::Builder::new()
        .prefix("provd-bench-http-")
        .tempdir()
        .context("making a temporary directory")?;
    let d = dir.path();
    let pki = crate::e2e::http::make_pki(d)?;
    write_config(d, plan.macs)?;
    let mut srv = Provd::new(&provd, d)
        .ready_timeout(READY_TIMEOUT)
        .env("PROVD_LOG", "warn");
    srv.start(&link.server)
        .context("provd did not become ready")?;
    eprintln!(
        "bench: http: provd ready (pid {}, dir {}); {} MACs, {} s per measurement",
        srv.pid(),
        d.display(),
        plan.macs,
        plan.seconds
    );
    let script = d.join("rotate.lua");
    std::fs::write(&script, lua_script(plan.macs))?;

    // Warm-up: every profile rendered and versioned once (a version bump syncs the log).
    let warm = wrk(
        &link,
        &script,
        1,
        8,
        2.0f64.max(f64::from(plan.macs) / 500.0),
    )?;
    ensure!(warm.bad == 0, "warm-up: {} non-2xx/3xx responses", warm.bad);
    check_interrupted()?;

    let cpu0 = thread_cpu(srv.pid());
    let m0 = machine_cpu();
    let t0 = Instant::now();
    let load = wrk(
        &link,
        &script,
        plan.wrk_threads,
        plan.connections,
        plan.seconds,
    )?;
    let wall_rps = t0.elapsed();
    let cpu1 = thread_cpu(srv.pid());
    let machine = machine_busy(m0, machine_cpu(), wall_rps);
    srv.check_alive()?;
    ensure!(
        load.bad == 0,
        "{} non-2xx/3xx responses of {}",
        load.bad,
        load.requests
    );
    ensure!(load.requests > 0, "wrk completed no request");
    eprintln!(
        "bench: http: wrk {} threads, {} connections: {} requests, {:.0}/s, p99 {}; provd CPU/s by thread: {}",
        plan.wrk_threads,
        plan.connections,
        load.requests,
        load.rps,
        load.p99,
        cpu_summary(&cpu0, &cpu1, wall_rps)
    );
    if load.socket_errors() > 0 {
        eprintln!(
            "bench: http: wrk socket errors: connect {}, read {}, write {}, timeout {}",
            load.socket[0], load.socket[1], load.socket[2], load.socket[3]
        );
    }
    let rps_cost = per_unit_us(&cpu0, &cpu1, load.requests);
    check_interrupted()?;

    let cpu0 = thread_cpu(srv.pid());
    let t0 = Instant::now();
    let hs = s_time(&link, &pki, plan.s_time_procs, plan.seconds)?;
    let wall_tls = t0.elapsed();
    let cpu1 = thread_cpu(srv.pid());
    srv.check_alive()?;
    ensure!(hs.connections > 0, "openssl s_time completed no handshake");
    let hs_per_s = hs.connections as f64 / hs.seconds.max(1e-3);
    eprintln!(
        "bench: http: openssl s_time -new x{}: {} handshakes in {:.1} s; provd CPU/s by thread: {}",
        plan.s_time_procs,
        hs.connections,
        hs.seconds,
        cpu_summary(&cpu0, &cpu1, wall_tls)
    );
    let hs_cost = per_unit_us(&cpu0, &cpu1, hs.connections);
    // s_time counts a connection once its side of the handshake is done; the server checks
    // the client certificate after that (TLS 1.3). Any refusal would show in provd's log.
    ensure!(
        !srv.stderr_text().contains("TLS handshake failed"),
        "provd refused some of s_time's handshakes:\n{}",
        srv.stderr_tail(5)
    );
    check_interrupted()?;

    // The same with rustls clients (provd-loadgen tls): each handshake verified end to end.
    let cpu0 = thread_cpu(srv.pid());
    let t0 = Instant::now();
    let rustls_run = loadgen_tls(&loadgen, &link, &pki, plan.s_time_procs, plan.seconds)?;
    let wall_rustls = t0.elapsed();
    let cpu1 = thread_cpu(srv.pid());
    srv.check_alive()?;
    eprintln!(
        "bench: http: provd-loadgen tls x{}: {}; provd CPU/s by thread: {}",
        plan.s_time_procs,
        rustls_run.line,
        cpu_summary(&cpu0, &cpu1, wall_rustls)
    );
    let rustls_cost = per_unit_us(&cpu0, &cpu1, rustls_run.ok);
    srv.stop()?;
    println!("{}", result_line(&load, hs_per_s, hs.connections));
    println!("{}", rustls_run.result_line(rustls_cost));
    println!(
        "TARGET http rps>={RPS_TARGET:.0} ({}) tls_handshakes_per_s>={TLS_TARGET:.0} ({})",
        if load.rps >= RPS_TARGET {
            "met"
        } else {
            "missed"
        },
        if hs_per_s >= TLS_TARGET {
            "met"
        } else {
            "missed"
        },
    );
    // What the server itself spent, for reading the figures on a shared 2-core machine where
    // the load tools (and other work) take most of the CPU.
    println!(
        "COST http provd_us_per_request={rps_cost:.1} provd_us_per_handshake={hs_cost:.1} \
         machine_busy_during_rps={machine:.2}_of_{}_cores",
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    Ok(())
}

/// provd's CPU microseconds per unit of work between two thread samples.
fn per_unit_us(
    a: &std::collections::BTreeMap<String, f64>,
    b: &std::collections::BTreeMap<String, f64>,
    units: u64,
) -> f64 {
    let used: f64 = b.values().sum::<f64>() - a.values().sum::<f64>();
    used * 1e6 / units.max(1) as f64
}

/// Busy cores (all processes) between two [`machine_cpu`] samples `wall` apart.
fn machine_busy(a: Option<(f64, f64, f64)>, b: Option<(f64, f64, f64)>, wall: Duration) -> f64 {
    match (a, b) {
        (Some((b0, _, _)), Some((b1, _, _))) if !wall.is_zero() => {
            (b1 - b0).max(0.0) / wall.as_secs_f64()
        }
        _ => 0.0,
    }
}

fn which(program: &str) -> bool {
    std::env::var("PATH")
        .unwrap_or_default()
        .split(':')
        .any(|d| Path::new(d).join(program).is_file())
}

/// provd (unless given) and provd-loadgen, release builds.
fn build(provd_bin: Option<&Path>) -> Result<(PathBuf, PathBuf)> {
    let root = crate::e2e::repo_root();
    let mut pkgs = vec!["provd-loadgen"];
    if provd_bin.is_none() {
        pkgs.push("provd");
    }
    eprintln!("bench: cargo build --release -p {}", pkgs.join(" -p "));
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut c = Command::new(cargo);
    c.current_dir(&root).args(["build", "--release"]);
    for p in &pkgs {
        c.args(["-p", p]);
    }
    ensure!(
        c.status().context("running cargo build")?.success(),
        "cargo build failed"
    );
    let provd = match provd_bin {
        Some(p) => p.canonicalize().context("--provd-bin")?,
        None => root.join("target/release/provd"),
    };
    Ok((provd, root.join("target/release/provd-loadgen")))
}

fn mac(k: u32) -> String {
    format!("{MAC_PREFIX}{k:08x}")
}

fn write_config(d: &Path, macs: u32) -> Result<()> {
    std::fs::create_dir_all(d.join("leases"))?;
    std::fs::write(d.join("profile.j2"), TEMPLATE)?;
    let mut t = format!(
        r#"[server]
server_id = "{SERVER_IP}"
lease_dir = "{leases}"
workers = 1

[http]
bind = "{SERVER_IP}"
port = 80
https_port = 443
cert = "pki/server-chain.pem"
key = "pki/server.key"
client_ca = "pki/ca.pem"
client_auth = "optional"
access_log = false
max_connections = 20000

[vars]
sip = "sip.example.net"

[[class]]
name = "ata"
match = "FlyingVoice*"
[class.profile]
path = "p/{{mac}}.cfg"
template = "profile.j2"
format = "kvp"
# wrk asks for many phones from one address: the bench measures serving, not enforce.
enforce = false

[[shared_network]]
name = "bench"
interfaces = ["{SERVER_IP}"]
  [[shared_network.subnet]]
  prefix = "198.18.2.0/24"
    [[shared_network.subnet.pool]]
    start = "198.18.2.100"
    end = "198.18.2.200"
"#,
        leases = d.join("leases").display()
    );
    for k in 0..macs {
        let m = mac(k);
        let _ = writeln!(
            t,
            "[[subscriber]]\nmac = \"{m}\"\nvars = {{ line1 = \"{}\" }}",
            1000 + k
        );
    }
    std::fs::write(d.join("provd.toml"), t)?;
    Ok(())
}

/// Each wrk connection walks the MACs from its own offset.
fn lua_script(macs: u32) -> String {
    format!(
        r#"local n = 0
local macs = {macs}
init = function(args)
  n = math.random(0, macs - 1)
end
request = function()
  n = (n + 1) % macs
  return wrk.format("GET", string.format("/p/{MAC_PREFIX}%08x.cfg", n))
end
"#
    )
}

#[derive(Debug)]
struct WrkRun {
    /// Responses wrk read, whatever their status.
    requests: u64,
    rps: f64,
    /// wrk's "Non-2xx or 3xx responses" (statuses over 399).
    bad: u64,
    /// wrk's "Socket errors: connect C, read R, write W, timeout T" (none when it prints no
    /// such line).
    socket: [u64; 4],
    p99: String,
}

impl WrkRun {
    fn socket_errors(&self) -> u64 {
        self.socket.iter().sum()
    }

    /// Bad responses and socket errors, of the requests answered plus the connects, reads and
    /// writes that failed (a timed-out request may still be answered and counted, so timeouts
    /// are not added to the attempts).
    fn faults(&self) -> Faults {
        let [connect, read, write, _timeout] = self.socket;
        Faults::new(
            self.bad + self.socket_errors(),
            self.requests + connect + read + write,
        )
    }
}

/// `RESULT http rps=N tls_handshakes_per_s=M errors=E attempts=A tls_handshakes=H`, and
/// ` degraded=P%` when wrk's errors exceed 0.1 % of its attempts.
fn result_line(load: &WrkRun, hs_per_s: f64, handshakes: u64) -> String {
    let f = load.faults();
    format!(
        "RESULT http rps={:.0} tls_handshakes_per_s={hs_per_s:.0} errors={} attempts={} \
         tls_handshakes={handshakes}{}",
        load.rps,
        f.failed,
        f.attempts,
        f.marker()
    )
}

fn wrk(link: &Topology, script: &Path, threads: u32, conns: u32, seconds: f64) -> Result<WrkRun> {
    let mut c = link.load_ns().command("wrk");
    c.args([
        "--latency",
        "-t",
        &threads.to_string(),
        "-c",
        &conns.to_string(),
    ])
    .args(["-d", &format!("{}s", seconds.ceil() as u64)])
    .arg("-s")
    .arg(script)
    .arg(format!("http://{SERVER_IP}/"));
    let out = cmd::output_timeout(&mut c, Duration::from_secs_f64(seconds + 30.0))?;
    let t = String::from_utf8_lossy(&out.stdout).into_owned();
    ensure!(
        out.status.success(),
        "wrk failed: {t}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    parse_wrk(&t).with_context(|| format!("wrk said:\n{t}"))
}

fn parse_wrk(t: &str) -> Result<WrkRun> {
    let requests = t
        .lines()
        .find(|l| l.contains("requests in"))
        .and_then(|l| l.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .context("no 'requests in' line")?;
    let rps = t
        .lines()
        .find_map(|l| l.trim().strip_prefix("Requests/sec:"))
        .and_then(|v| v.trim().parse().ok())
        .context("no Requests/sec line")?;
    // wrk prints these two lines only when their counts are not zero.
    let bad = match t
        .lines()
        .find_map(|l| l.trim().strip_prefix("Non-2xx or 3xx responses:"))
    {
        Some(v) => v
            .trim()
            .parse()
            .with_context(|| format!("bad 'Non-2xx or 3xx responses:' count {v:?}"))?,
        None => 0,
    };
    let mut socket = [0u64; 4];
    if let Some(v) = t
        .lines()
        .find_map(|l| l.trim().strip_prefix("Socket errors:"))
    {
        for (n, key) in socket
            .iter_mut()
            .zip(["connect", "read", "write", "timeout"])
        {
            *n = v
                .split(',')
                .find_map(|w| w.trim().strip_prefix(key))
                .and_then(|c| c.trim().parse().ok())
                .with_context(|| format!("no '{key} N' in 'Socket errors:{v}'"))?;
        }
    }
    let p99 = t
        .lines()
        .find_map(|l| l.trim().strip_prefix("99%"))
        .map(|v| v.trim().to_string())
        .unwrap_or_default();
    Ok(WrkRun {
        requests,
        rps,
        bad,
        socket,
        p99,
    })
}

struct Handshakes {
    connections: u64,
    seconds: f64,
}

/// `procs` parallel `openssl s_time -new` with the client certificate for `seconds`.
fn s_time(link: &Topology, pki: &Path, procs: u32, seconds: f64) -> Result<Handshakes> {
    let secs = (seconds.ceil() as u64).max(1);
    let mut children = Vec::new();
    let t0 = Instant::now();
    for _ in 0..procs {
        let mut c = link.load_ns().command("openssl");
        // TLS 1.2: the server's Finished is the handshake's last message, so a connection
        // s_time counts is one the server completed. With TLS 1.3 s_time closes (and resets)
        // the connection as soon as its own Finished is out, before the server has read it:
        // the server counts a failed handshake for every one s_time counts.
        c.args([
            "s_time",
            "-connect",
            &format!("{SERVER_IP}:443"),
            "-new",
            "-tls1_2",
        ])
        .args(["-time", &secs.to_string()])
        .arg("-cert")
        .arg(pki.join("spa.pem"))
        .arg("-key")
        .arg(pki.join("spa.key"))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
        children.push(c.spawn().context("spawning openssl s_time")?);
    }
    let mut total = 0;
    for ch in children {
        let out: Output = ch.wait_with_output()?;
        let t = String::from_utf8_lossy(&out.stdout).into_owned();
        if !out.status.success() {
            bail!(
                "openssl s_time failed: {t}{}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        total += parse_s_time(&t).with_context(|| format!("s_time said:\n{t}"))?;
    }
    Ok(Handshakes {
        connections: total,
        seconds: t0
            .elapsed()
            .as_secs_f64()
            .min(secs as f64 + 1.0)
            .max(secs as f64),
    })
}

#[derive(Debug)]
struct LoadgenTls {
    ok: u64,
    failed: u64,
    per_s: f64,
    line: String,
}

impl LoadgenTls {
    /// `RESULT http-rustls-client tls_handshakes_per_s=N provd_us_per_handshake=U
    /// handshakes=H failed=F`, and ` degraded=P%` when failures exceed 0.1 % of the attempts.
    fn result_line(&self, provd_us_per_handshake: f64) -> String {
        format!(
            "RESULT http-rustls-client tls_handshakes_per_s={:.0} \
             provd_us_per_handshake={provd_us_per_handshake:.1} handshakes={} failed={}{}",
            self.per_s,
            self.ok,
            self.failed,
            Faults::new(self.failed, self.ok + self.failed).marker()
        )
    }
}

/// `provd-loadgen tls` from the load namespace: `threads` rustls clients, every handshake
/// with the client certificate, the server chain verified, refusals counted as failures.
fn loadgen_tls(
    loadgen: &Path,
    link: &Topology,
    pki: &Path,
    threads: u32,
    seconds: f64,
) -> Result<LoadgenTls> {
    let mut c = link.load_ns().command(loadgen);
    c.args(["tls", "--connect", &format!("{SERVER_IP}:443")])
        .args(["--server-name", "prov.e2e.test", "--ca"])
        .arg(pki.join("ca.pem"))
        .arg("--cert")
        .arg(pki.join("spa.pem"))
        .arg("--key")
        .arg(pki.join("spa.key"))
        .args(["--threads", &threads.to_string()])
        .args(["--seconds", &seconds.to_string()]);
    let out = cmd::output_timeout(&mut c, Duration::from_secs_f64(seconds + 30.0))?;
    let t = String::from_utf8_lossy(&out.stdout).into_owned();
    ensure!(
        out.status.success(),
        "provd-loadgen tls failed: {t}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    parse_loadgen_tls(&t).with_context(|| format!("provd-loadgen tls said: {t}"))
}

fn parse_loadgen_tls(t: &str) -> Result<LoadgenTls> {
    let f = super::tools::fields(t, "RESULT tls-load").context("no RESULT tls-load line")?;
    Ok(LoadgenTls {
        ok: super::tools::num(&f, "handshakes")?,
        failed: super::tools::num(&f, "failed")?,
        per_s: super::tools::num(&f, "handshakes_per_s")?,
        line: t
            .lines()
            .rev()
            .find(|l| l.starts_with("RESULT tls-load"))
            .unwrap_or_default()
            .to_string(),
    })
}

/// `N connections in T real seconds, …` of the `-new` pass.
fn parse_s_time(t: &str) -> Result<u64> {
    t.lines()
        .find(|l| l.contains("connections in") && l.contains("real seconds"))
        .and_then(|l| l.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .context("no 'connections in … real seconds' line")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wrk_output_parses() {
        let t = "Running 2s test @ http://198.18.2.2/\n  1 threads and 16 connections\n  Thread Stats   Avg      Stdev     Max   +/- Stdev\n    Latency   200.00us  100.00us   2.00ms   90.00%\n  Latency Distribution\n     50%  180.00us\n     75%  220.00us\n     90%  300.00us\n     99%  800.00us\n  120000 requests in 2.00s, 50.00MB read\n  Non-2xx or 3xx responses: 3\nRequests/sec:  60000.12\nTransfer/sec:     25.00MB\n";
        let r = parse_wrk(t).unwrap();
        assert_eq!((r.requests, r.bad, r.socket), (120_000, 3, [0; 4]));
        assert!((r.rps - 60000.12).abs() < 1e-6);
        assert_eq!(r.p99, "800.00us");
    }

    /// wrk's summary after a run with failures.
    const WRK_ERRORS: &str = "Running 10s test @ http://198.18.2.2/\n  2 threads and 64 connections\n  Latency Distribution\n     99%  900.00us\n  500000 requests in 10.00s, 200.00MB read\n  Socket errors: connect 0, read 250, write 0, timeout 40\n  Non-2xx or 3xx responses: 310\nRequests/sec:  50000.00\nTransfer/sec:     20.00MB\n";

    #[test]
    fn a_result_over_wrk_errors_says_degraded() {
        let r = parse_wrk(WRK_ERRORS).unwrap();
        assert_eq!(
            (r.requests, r.bad, r.socket),
            (500_000, 310, [0, 250, 0, 40])
        );
        assert_eq!(
            result_line(&r, 917.4, 9174),
            "RESULT http rps=50000 tls_handshakes_per_s=917 errors=600 attempts=500250 \
             tls_handshakes=9174 degraded=0.12%"
        );
        let clean = WRK_ERRORS
            .replace(
                "read 250, write 0, timeout 40",
                "read 0, write 0, timeout 1",
            )
            .replace("310", "9");
        assert_eq!(
            result_line(&parse_wrk(&clean).unwrap(), 917.4, 9174),
            "RESULT http rps=50000 tls_handshakes_per_s=917 errors=10 attempts=500000 \
             tls_handshakes=9174"
        );
    }

    #[test]
    fn odd_wrk_output_is_an_error_naming_what_is_missing() {
        let e = parse_wrk(&WRK_ERRORS.replace(", timeout 40", "")).unwrap_err();
        assert_eq!(
            e.to_string(),
            "no 'timeout N' in 'Socket errors: connect 0, read 250, write 0'"
        );
        let e = parse_wrk(&WRK_ERRORS.replace("responses: 310", "responses: many")).unwrap_err();
        assert_eq!(
            e.to_string(),
            "bad 'Non-2xx or 3xx responses:' count \" many\""
        );
        assert!(parse_wrk("unable to connect to 198.18.2.2:80").is_err());
    }

    #[test]
    fn the_rustls_client_line_carries_its_failures() {
        let r = parse_loadgen_tls(
            "RESULT tls-load handshakes=9989 failed=11 seconds=2.00 handshakes_per_s=4995\n",
        )
        .unwrap();
        assert_eq!(
            r.result_line(210.04),
            "RESULT http-rustls-client tls_handshakes_per_s=4995 provd_us_per_handshake=210.0 \
             handshakes=9989 failed=11 degraded=0.11%"
        );
        let e = parse_loadgen_tls("RESULT tls-load handshakes=1 seconds=1").unwrap_err();
        assert_eq!(e.to_string(), "no failed=");
    }

    #[test]
    fn s_time_output_parses() {
        let t = "Collecting connection statistics for 2 seconds\n*****\n\n1234 connections in 1.50s; 822.67 connections/user sec, bytes read 0\n1234 connections in 3 real seconds, 0 bytes read per connection\n";
        assert_eq!(parse_s_time(t).unwrap(), 1234);
    }
}
