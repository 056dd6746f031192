//! Whole-server benchmarks, side by side in one run.
//!
//! Every RESULT line carries its run's failure counts (drops, refusals, errors, timeouts) and
//! what they are out of; a run whose failures exceed 0.1 % of its attempts is named in its
//! RATIO line with `degraded=NAME:P%`, or, with no ratio, marked in its RESULT line with
//! `degraded=P%`: its figure is not a clean one (issue 17; see `faults.rs`).
//!
//! `cargo xtask bench dhcp --vs kea,dnsmasq,isc-dhcpd --seconds N` runs provd on each I/O path
//! (xdp, io_uring, sockets), the null responder on each path, and then each peer (`kea` meaning
//! Kea memfile persist single- and multi-threaded),
//! each alone in a fresh server network namespace joined by veth to a fresh load namespace, under
//! the same load: provd-loadgen as the relay 198.18.2.1, at `--rate` (0 = as fast as `--window`
//! outstanding exchanges allow) for N seconds. It prints, per server,
//! `RESULT dhcp server=NAME path=PATH dora_per_s=N drops_pct=P p50_ms=L p99_ms=L sent=S
//! drops=D naks=K` (exchanges started, timed out, NAKed; drops_pct counts both failures), then
//! `RATIO dhcp provd/NAME=X` per peer (provd on its best path), `RATIO dhcp provd/null=X
//! path=PATH` (the null responder on that path), and `RESULT dhcp-half ... sent=S drops=D
//! naks=K`: provd on its best path at half of its peak rate, for the latency target. A ratio
//! over a run whose drops and NAKs exceed 0.1 % of its exchanges ends in `degraded=NAME:P%`
//! (see `faults.rs`); the dhcp-half line, with no ratio, ends in `degraded=P%`. With
//! `--store-devices N`: `RATIO dhcp full-store/empty-store=X ... sent=S drops=D naks=K`, the
//! same way. It writes `target/bench-report/dhcp.md` and `dhcp.png`. A server that completes
//! no exchange fails the run.
//!
//! `cargo xtask bench dhcp-check --rate R --seconds N [--server kea|provd]` runs perfdhcp and
//! provd-loadgen at the same fixed rate against fresh instances of the same server and prints
//! both measurements side by side (`CHECK` lines).
//!
//! `cargo xtask bench tftp --vs tftpd-hpa,atftpd --seconds N` serves small generated config files
//! and an 8 MiB firmware from provd and then from each peer, with `provd-loadgen tftp` as the
//! client, and prints `RESULT tftp ...` and `RATIO tftp ...` lines (see `tftp.rs`).
//!
//! `cargo xtask bench acs [--devices N] [--seconds S] [--smoke]` runs complete TR-069 Inform
//! sessions (`provd-cpe-sim load`) against provd's ACS with N known devices and prints
//! `RESULT acs sessions_per_s=N bytes_per_device=B sessions=S errors=E attempts=A` (see
//! `acs.rs`).
//!
//! `cargo xtask bench mta --seconds N [--concurrency C]` runs a fleet of simulated PacketCable
//! MTAs (`provd-loadgen mta`) through complete HYBRID.2 flows against provd and prints
//! `RESULT mta flows_per_s=N p99_ms=L started=S failed=F timeouts=T` (see `mta.rs`).
//!
//! `cargo xtask bench api [--devices N] [--backend embedded|postgres|both] [--smoke]` imports N
//! devices through `provd import devices` and the API job, then GETs devices at a fixed 5,000
//! requests/s, and prints `RESULT api import_per_s=N ... get_p99_ms=L ... errors=E sent=S ...
//! backend=B` per backend, with `degraded=get:P%` when a GET run's errors exceed 0.1 % (see
//! `api.rs`).
//!
//! `cargo xtask bench ui [--devices N] [--smoke]` fetches every page of the web UI with N
//! devices and N leases in the store and prints `PAGE ui ...` per page and `RESULT ui
//! worst_p99_ms=… over_300ms=K errors=E`, with `degraded=P%` when errors exceed 0.1 % of the
//! fetches (see `ui.rs`).
//!
//! `cargo xtask bench http --seconds N` loads provd's profile server with wrk (cached profiles
//! over keep-alive) and `openssl s_time -new` (mutual-TLS handshakes) and prints
//! `RESULT http rps=N tls_handshakes_per_s=M errors=E attempts=A tls_handshakes=H` (see
//! `http.rs`).

mod acs;
mod api;
mod faults;
mod http;
mod mta;
mod procstat;
mod report;
mod server;
pub(crate) mod storm;
mod tftp;
pub(crate) mod tools;
mod ui;

use std::sync::Arc;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::{Result, bail};

use provd_rig::Topology;
use server::{Kind, ProvdMode, Running};
use tools::{Binaries, Load, Measured};

#[derive(clap::Args, Debug, Clone)]
pub struct Args {
    /// What to benchmark: `dhcp` (provd vs peers), `dhcp-check` (perfdhcp vs provd-loadgen),
    /// `tftp` (provd vs peers), `mta` (provd under a fleet of simulated MTAs) or `http`
    /// (profiles under wrk and openssl s_time)
    pub what: String,
    /// Peers to run after provd. dhcp: kea, kea-mt, dnsmasq, isc-dhcpd [default: kea,dnsmasq,
    /// isc-dhcpd]; tftp: tftpd-hpa, atftpd [default: both]
    #[arg(long, value_delimiter = ',')]
    pub vs: Vec<String>,
    /// Seconds of load per server
    #[arg(long, default_value_t = 10.0)]
    pub seconds: f64,
    /// DORA exchanges started per second; 0 = as fast as the window allows
    #[arg(long, default_value_t = 0)]
    pub rate: u64,
    /// Distinct clients; after that many exchanges clients come back (same MAC, same lease)
    #[arg(long)]
    pub clients: Option<u32>,
    /// Most exchanges outstanding at once
    #[arg(long, default_value_t = 64)]
    pub window: u32,
    /// An exchange not completed within this is a drop
    #[arg(long, default_value_t = 1000)]
    pub timeout_ms: u64,
    /// CI mode: 2 s per server, few clients; still fails if a server completes nothing
    #[arg(long)]
    pub smoke: bool,
    /// Leave provd out (dhcp); measure the peers only
    #[arg(long)]
    pub no_provd: bool,
    /// Use this provd binary instead of building one
    #[arg(long)]
    pub provd_bin: Option<std::path::PathBuf>,
    /// Server for dhcp-check: kea or provd
    #[arg(long, default_value = "kea")]
    pub server: String,
    /// tftp: the block size every server is asked for with the small files [default: none,
    /// 512-byte blocks]
    #[arg(long)]
    pub blksize: Option<u16>,
    /// tftp: sequential firmware downloads per server (the median is reported)
    #[arg(long, default_value_t = 5)]
    pub firmware_runs: u32,
    /// mta: flows in flight [default: 512]; acs: keep-alive connections [default: 64]; storm:
    /// routers' and phones' connections open at once [default: 8192]
    #[arg(long)]
    pub concurrency: Option<u32>,
    /// acs, api: known devices [default: 1000000]
    #[arg(long)]
    pub devices: Option<u32>,
    /// api: the store backend(s): embedded, postgres or both [default: both]
    #[arg(long)]
    pub backend: Option<String>,
    /// storm: cable modems [default: 100000; smoke 300]
    #[arg(long)]
    pub cms: Option<u32>,
    /// storm: embedded MTAs, MTA k behind modem k [default: 100000; smoke 300]
    #[arg(long)]
    pub mtas: Option<u32>,
    /// storm: eRouters (DHCP, then a CWMP session with digest), router k behind modem k
    /// [default: 0; smoke 300]
    #[arg(long)]
    pub routers: Option<u32>,
    /// storm: phones/ATAs (DHCP, then their HTTP profile), phone k behind modem k [default: 0;
    /// smoke 300]
    #[arg(long)]
    pub phones: Option<u32>,
    /// storm: simulated CMTSs (relays) [default: 20; smoke 4]
    #[arg(long)]
    pub relays: Option<u32>,
    /// storm: power-on times spread over this many milliseconds [default: 1000]
    #[arg(long)]
    pub spread_ms: Option<u64>,
    /// storm: devices not online this long after the first power-on are lost [default: 180;
    /// smoke 60]
    #[arg(long)]
    pub deadline_s: Option<f64>,
    /// storm: SIGKILL provd this many seconds into the storm and start it again
    #[arg(long)]
    pub kill_at_s: Option<f64>,
    /// dhcp, tftp: also run provd with this many devices in its store and with none,
    /// alternating, and print `RATIO ... full-store/empty-store`
    #[arg(long)]
    pub store_devices: Option<u32>,
}

static STOP: OnceLock<Arc<AtomicBool>> = OnceLock::new();

/// Fails once SIGINT or SIGTERM has arrived, so waits unwind and the guards clean up.
pub fn check_interrupted() -> Result<()> {
    if STOP.get().is_some_and(|s| s.load(Ordering::Relaxed)) {
        bail!("interrupted");
    }
    Ok(())
}

fn install_signal_flag() -> Result<()> {
    let flag = STOP.get_or_init(|| Arc::new(AtomicBool::new(false)));
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(sig, Arc::clone(flag))?;
    }
    Ok(())
}

pub fn run(args: Args) -> Result<()> {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        bail!("bench needs root (it makes network namespaces and binds port 67)");
    }
    install_signal_flag()?;
    for name in provd_rig::cleanup::sweep_stale() {
        eprintln!("bench: deleted stale namespace {name} of a run that no longer exists");
    }
    match args.what.as_str() {
        "dhcp" => dhcp(&args),
        "dhcp-check" => dhcp_check(&args),
        "tftp" => tftp::run(&args),
        "mta" => mta::run(&args),
        "http" => http::run(&args),
        "acs" => acs::run(&args),
        "api" => api::run(&args),
        "ui" => ui::run(&args),
        "storm" => storm::run(&args),
        other => {
            bail!(
                "unknown bench {other:?} (known: dhcp, dhcp-check, tftp, mta, http, acs, api, \
                 ui, storm)"
            )
        }
    }
}

/// One server, fresh namespaces, one load run.
fn measure(kind: Kind, bins: &Binaries, load: &Load) -> Result<(String, Measured)> {
    measure_mode(kind, ProvdMode::default(), bins, load)
}

fn measure_mode(
    kind: Kind,
    mode: ProvdMode,
    bins: &Binaries,
    load: &Load,
) -> Result<(String, Measured)> {
    let link = Topology::bench()?;
    let mut srv = Running::start_mode(kind, &link, bins.provd.as_deref(), mode)?;
    eprintln!(
        "bench: {} ready (pid {}, dir {}); {} s of load",
        kind.name(),
        srv.pid(),
        srv.dir().display(),
        load.seconds
    );
    let cpu = || procstat::process_cpu(srv.pid());
    let (cpu0, t0) = (cpu(), std::time::Instant::now());
    let m = tools::loadgen(&bins.loadgen, &link, load);
    let (cpu1, wall) = (cpu(), t0.elapsed().as_secs_f64());
    srv.check_alive()?;
    let mut m = m?;
    if wall > 0.0 {
        m.server_cpu_pct = Some(100.0 * (cpu1 - cpu0).max(0.0) / wall);
    }
    eprintln!("bench: {}: {}\n{}", kind.name(), m.line, m.detail);
    let status = srv.stop()?;
    if let Some(s) = status.filter(|s| !s.success()) {
        eprintln!("bench: note: {} exited with {s} on SIGTERM", kind.name());
    }
    if m.naks > 0 {
        eprintln!("bench: note: {} sent {} NAKs", kind.name(), m.naks);
    }
    if m.completed == 0 {
        bail!(
            "{} completed no DORA exchange ({} started); server log:\n{}",
            kind.name(),
            m.sent,
            srv.log_tail()
        );
    }
    Ok((srv.path.clone(), m))
}

/// `--store-devices`: how many (empty store, full store) pairs are run, alternating.
const STORE_ROUNDS: usize = 2;

/// provd's I/O paths, fastest first; the bench forces each in turn.
const PATHS: [&str; 3] = ["xdp", "io_uring", "sockets"];

/// One run of the dhcp bench: which server, how provd runs, and what it measured.
struct Run {
    label: &'static str,
    kind: Kind,
    mode: ProvdMode,
    result: Result<(String, Measured)>,
}

fn dhcp(args: &Args) -> Result<()> {
    // provd on each path, the null responder on each path, then the peers. `kea` means Kea
    // memfile persist both single-threaded and multi-threaded.
    let mut plan: Vec<(&'static str, Kind, ProvdMode)> = Vec::new();
    if !args.no_provd {
        for io in PATHS {
            plan.push((
                "provd",
                Kind::Provd,
                ProvdMode {
                    io,
                    ..ProvdMode::default()
                },
            ));
        }
        for io in PATHS {
            plan.push((
                "null",
                Kind::Provd,
                ProvdMode {
                    io,
                    null: true,
                    ..ProvdMode::default()
                },
            ));
        }
        // With a store of N devices and without, alternating, on the path provd picks itself.
        if let Some(n) = args.store_devices {
            for _ in 0..STORE_ROUNDS {
                plan.push(("provd-empty-store", Kind::Provd, ProvdMode::default()));
                plan.push((
                    "provd-full-store",
                    Kind::Provd,
                    ProvdMode {
                        store_devices: n,
                        ..ProvdMode::default()
                    },
                ));
            }
        }
    }
    let default_peers = ["kea", "dnsmasq", "isc-dhcpd"].map(String::from);
    let vs = if args.vs.is_empty() {
        &default_peers[..]
    } else {
        &args.vs[..]
    };
    let mut peers = Vec::new();
    // TFTP peers named here run the TFTP bench after the DHCP one (see `tftp.rs`).
    let tftp_peers: Vec<String> = vs
        .iter()
        .map(|v| v.trim().to_string())
        .filter(|v| matches!(v.as_str(), "tftpd-hpa" | "atftpd"))
        .collect();
    for v in vs
        .iter()
        .filter(|v| !tftp_peers.contains(&v.trim().to_string()))
    {
        let k = Kind::parse(v.trim())?;
        let ks = if k == Kind::Kea {
            vec![Kind::Kea, Kind::KeaMt]
        } else {
            vec![k]
        };
        for k in ks {
            if k != Kind::Provd && !peers.contains(&k) {
                peers.push(k);
            }
        }
    }
    for k in peers {
        plan.push((k.name(), k, ProvdMode::default()));
    }
    let (seconds, default_clients) = if args.smoke {
        (2.0, 2_000)
    } else {
        // Below the pool size (65 521), so no server runs out of addresses.
        (args.seconds, 50_000)
    };
    let clients = args.clients.unwrap_or(default_clients);
    if clients > server::pool_size() {
        bail!(
            "--clients {clients} exceeds the pool ({} addresses)",
            server::pool_size()
        );
    }
    let bins = tools::build(!args.no_provd, args.provd_bin.as_deref())?;
    let mut lines: Vec<String> = Vec::new();
    let mut say = |l: String| {
        println!("{l}");
        lines.push(l);
    };
    let mut runs: Vec<Run> = Vec::new();
    for (i, &(label, kind, mut mode)) in plan.iter().enumerate() {
        check_interrupted()?;
        mode.store_salt = i as u8;
        let load = Load {
            clients,
            rate: args.rate,
            window: args.window.min(clients),
            seconds,
            timeout_ms: args.timeout_ms,
            salt: i as u8,
        };
        let result = measure_mode(kind, mode, &bins, &load);
        match &result {
            Ok((path, m)) => say(result_line(label, path, m)),
            Err(e) => eprintln!("bench: {label} ({}) FAILED: {e:#}", mode.io),
        }
        runs.push(Run {
            label,
            kind,
            mode,
            result,
        });
    }
    let ok = |r: &Run| r.result.as_ref().ok().map(|(p, m)| (p.clone(), m.clone()));
    // The best provd path, and the null responder on that same path.
    let best = runs
        .iter()
        .filter(|r| r.label == "provd")
        .filter_map(|r| ok(r).map(|(p, m)| (r.mode.io, p, m)))
        .max_by(|a, b| a.2.dora_per_s.total_cmp(&b.2.dora_per_s));
    let cheapest = runs
        .iter()
        .filter(|r| r.label == "provd")
        .filter_map(ok)
        .filter(|(_, m)| m.server_cpu_pct.is_some() && m.dora_per_s > 0.0)
        .min_by(|a, b| {
            let per = |m: &Measured| m.server_cpu_pct.unwrap_or(0.0) / m.dora_per_s;
            per(&a.1).total_cmp(&per(&b.1))
        });
    let mut notes = Vec::new();
    if let Some((best_io, best_path, best_m)) = &best {
        for r in runs.iter().filter(|r| r.kind != Kind::Provd) {
            if let Some((_, m)) = ok(r).filter(|(_, m)| m.dora_per_s > 0.0) {
                say(ratio_line(best_m, r.label, &m, ""));
                // At a fixed rate both do the same work: what it costs each is the comparison,
                // with provd on its cheapest path.
                if args.rate > 0
                    && let Some((io, c)) = &cheapest
                    && let Some(l) = cpu_ratio_line(c, r.label, &m)
                {
                    say(format!("{l} path={io}"));
                }
            }
        }
        let null = runs
            .iter()
            .find(|r| r.label == "null" && r.mode.io == *best_io)
            .and_then(ok);
        if let Some((_, n)) = null.filter(|(_, n)| n.dora_per_s > 0.0) {
            say(ratio_line(
                best_m,
                "null",
                &n,
                &format!(" path={best_path}"),
            ));
        }
        // Latency at half of provd's peak, on its best path, open loop at a fixed rate.
        let half = (best_m.dora_per_s / 2.0).round().max(1.0) as u64;
        check_interrupted()?;
        let load = Load {
            clients,
            rate: half,
            window: (half.saturating_mul(args.timeout_ms) / 1000).clamp(64, u64::from(clients))
                as u32,
            seconds,
            timeout_ms: args.timeout_ms,
            salt: 0x7e,
        };
        match measure_mode(
            Kind::Provd,
            ProvdMode {
                io: best_io,
                ..ProvdMode::default()
            },
            &bins,
            &load,
        ) {
            Ok((path, m)) => say(half_line(&path, half, &m)),
            Err(e) => eprintln!("bench: provd at half of peak FAILED: {e:#}"),
        }
        notes.push(format!(
            "best provd path: {best_path}; latency at half of its peak is the dhcp-half line"
        ));
    }
    if let Some(n) = args.store_devices {
        let of = |label: &str| -> Vec<Measured> {
            runs.iter()
                .filter(|r| r.label == label)
                .filter_map(|r| ok(r).map(|(_, m)| m))
                .collect()
        };
        match store_ratio(n, &of("provd-empty-store"), &of("provd-full-store")) {
            Some(line) => say(line),
            None => eprintln!("bench: no store ratio: a run with or without the store failed"),
        }
    }
    let rows: Vec<report::Row> = runs
        .iter()
        .filter_map(|r| {
            ok(r).map(|(path, m)| report::Row {
                server: r.label.to_string(),
                path,
                dora_per_s: m.dora_per_s,
                drops_pct: m.drops_pct,
                p50_ms: m.p50_ms,
                p99_ms: m.p99_ms,
            })
        })
        .collect();
    notes.push(format!(
        "{clients} distinct relay-style clients, window {}, {seconds} s per server, rate {} \
         (0 = as fast as the window allows); 2-core machine shared with other work",
        args.window.min(clients),
        args.rate
    ));
    notes.push(
        "provd runs 2 workers; on the bench veth (one receive queue) the XDP program redirects \
         the shard on queue 0 to AF_XDP and passes the other shard's DHCP to its reuseport socket"
            .into(),
    );
    let dir = tools::target_dir(&tools::workspace_root())?.join("bench-report");
    let (md, png) = report::write(&dir, "dhcp", "provd DHCP bench", &rows, &lines, &notes)?;
    eprintln!("bench: report {} and chart {}", md.display(), png.display());
    let failed: Vec<String> = runs
        .iter()
        .filter(|r| r.result.is_err())
        .map(|r| format!("{} ({})", r.label, r.mode.io))
        .collect();
    let tftp = if tftp_peers.is_empty() {
        Ok(())
    } else {
        let mut t = args.clone();
        t.vs = tftp_peers;
        tftp::run(&t)
    };
    if !failed.is_empty() {
        bail!("bench dhcp: no result for {}", failed.join(", "));
    }
    tftp
}

/// `RESULT dhcp server=NAME path=PATH dora_per_s=N drops_pct=P p50_ms=L p99_ms=L sent=S
/// drops=D naks=K`: one server's run, with its exchanges started, timed out and NAKed.
fn result_line(label: &str, path: &str, m: &Measured) -> String {
    let cpu = m
        .server_cpu_pct
        .map_or(String::new(), |c| format!(" server_cpu_pct={c:.1}"));
    format!(
        "RESULT dhcp server={label} path={path} dora_per_s={:.0} drops_pct={:.2} p50_ms={:.3} \
         p99_ms={:.3} {}{cpu}",
        m.dora_per_s,
        m.drops_pct,
        m.p50_ms,
        m.p99_ms,
        m.counts()
    )
}

/// `RATIO dhcp-cpu provd/NAME=X`: provd's CPU per DORA exchange over the peer's, both measured
/// at the rate the run asked for (`--rate`); below 1 provd spends less. `None` unless both
/// sides have a CPU figure and completed exchanges.
fn cpu_ratio_line(provd: &Measured, label: &str, m: &Measured) -> Option<String> {
    let per_dora = |m: &Measured| {
        m.server_cpu_pct
            .filter(|_| m.dora_per_s > 0.0)
            .map(|c| c / m.dora_per_s)
    };
    let (p, q) = (per_dora(provd)?, per_dora(m)?);
    (q > 0.0).then(|| {
        format!(
            "RATIO dhcp-cpu provd/{label}={:.2} provd_cpu_pct={:.1} {label}_cpu_pct={:.1}{}",
            p / q,
            provd.server_cpu_pct.unwrap_or(0.0),
            m.server_cpu_pct.unwrap_or(0.0),
            faults::degraded(&[("provd", provd.faults()), (label, m.faults())])
        )
    })
}

/// `RATIO dhcp provd/NAME=X` (then `tail`), with ` degraded=NAME:P%` naming each side whose
/// drops and NAKs exceed 0.1 % of the exchanges it started.
fn ratio_line(provd: &Measured, label: &str, m: &Measured, tail: &str) -> String {
    format!(
        "RATIO dhcp provd/{label}={:.2}{tail}{}",
        provd.dora_per_s / m.dora_per_s,
        faults::degraded(&[("provd", provd.faults()), (label, m.faults())])
    )
}

/// `RESULT dhcp-half server=provd path=PATH target_rate=R dora_per_s=N drops_pct=P p50_ms=L
/// p99_ms=L sent=S drops=D naks=K`, and ` degraded=P%` past 0.1 % drops and NAKs: it has no
/// ratio to say so in.
fn half_line(path: &str, half: u64, m: &Measured) -> String {
    format!(
        "RESULT dhcp-half server=provd path={path} target_rate={half} dora_per_s={:.0} \
         drops_pct={:.2} p50_ms={:.3} p99_ms={:.3} {}{}",
        m.dora_per_s,
        m.drops_pct,
        m.p50_ms,
        m.p99_ms,
        m.counts(),
        m.faults().marker()
    )
}

/// `RATIO dhcp full-store/empty-store=X devices=N empty_dora_per_s=E full_dora_per_s=F
/// max_drops_pct=P sent=S drops=D naks=K` over the runs with an empty and a full store (the
/// means of each side, the counts summed over both), ` degraded=provd-empty-store:P%,...`
/// naming a side whose drops and NAKs exceed 0.1 %. None unless each side has all its
/// [`STORE_ROUNDS`] runs and the empty store served.
fn store_ratio(n: u32, empty: &[Measured], full: &[Measured]) -> Option<String> {
    if empty.len() != STORE_ROUNDS || full.len() != STORE_ROUNDS {
        return None;
    }
    let mean = |v: &[Measured]| v.iter().map(|m| m.dora_per_s).sum::<f64>() / v.len() as f64;
    let (e, f) = (mean(empty), mean(full));
    if e <= 0.0 {
        return None;
    }
    let all = || empty.iter().chain(full);
    let max_drops = all().map(|m| m.drops_pct).fold(0.0f64, f64::max);
    let side = |v: &[Measured]| v.iter().map(Measured::faults).sum::<faults::Faults>();
    Some(format!(
        "RATIO dhcp full-store/empty-store={:.3} devices={n} empty_dora_per_s={e:.0} \
         full_dora_per_s={f:.0} max_drops_pct={max_drops:.2} sent={} drops={} naks={}{}",
        f / e,
        all().map(|m| m.sent).sum::<u64>(),
        all().map(Measured::drops).sum::<u64>(),
        all().map(|m| m.naks).sum::<u64>(),
        faults::degraded(&[
            ("provd-empty-store", side(empty)),
            ("provd-full-store", side(full))
        ])
    ))
}

fn dhcp_check(args: &Args) -> Result<()> {
    let kind = match args.server.as_str() {
        "kea" => Kind::Kea,
        "provd" => Kind::Provd,
        other => bail!("dhcp-check runs against kea or provd, not {other:?}"),
    };
    if args.rate == 0 {
        bail!("dhcp-check needs a fixed --rate (both tools run open-loop at it)");
    }
    let seconds = if args.smoke {
        2
    } else {
        args.seconds.round().max(1.0) as u32
    };
    let clients = args.clients.unwrap_or(50_000).min(server::pool_size());
    let bins = tools::build(kind == Kind::Provd, args.provd_bin.as_deref())?;

    let perf = {
        let link = Topology::bench()?;
        let mut srv = Running::start(kind, &link, bins.provd.as_deref())?;
        eprintln!(
            "bench: {} ready; perfdhcp at {}/s for {seconds} s",
            kind.name(),
            args.rate
        );
        let p = tools::perfdhcp(&link, args.rate, clients, seconds);
        srv.check_alive()?;
        let p = p?;
        eprintln!("bench: perfdhcp report:\n{}", p.raw.trim());
        p
    };
    // Open loop like perfdhcp (which caps nothing): a window that the rate never fills unless
    // the server falls behind by a whole timeout.
    let window = (args.rate.saturating_mul(args.timeout_ms) / 1000)
        .clamp(64, 65_536)
        .min(u64::from(clients)) as u32;
    let load = Load {
        clients,
        rate: args.rate,
        window,
        seconds: f64::from(seconds),
        timeout_ms: args.timeout_ms,
        salt: 0x5c,
    };
    let (_, m) = measure(kind, &bins, &load)?;
    println!(
        "CHECK dhcp server={} target_rate={} tool=perfdhcp dora_per_s={:.0} drops_pct={:.2} \
         sent={} completed={}",
        kind.name(),
        args.rate,
        perf.rate,
        perf.drops_pct,
        perf.discovers,
        perf.acks
    );
    println!(
        "CHECK dhcp server={} target_rate={} tool=loadgen dora_per_s={:.0} drops_pct={:.2} \
         sent={} completed={} p50_ms={:.3} p99_ms={:.3}",
        kind.name(),
        args.rate,
        m.dora_per_s,
        m.drops_pct,
        m.sent,
        m.completed,
        m.p50_ms,
        m.p99_ms
    );
    if perf.rate > 0.0 {
        println!(
            "CHECK dhcp loadgen/perfdhcp={:.2}",
            m.dora_per_s / perf.rate
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A run as provd-loadgen reports it: `sent` exchanges, `acked` of them ACKed, `naks`
    /// NAKed, the rest timed out.
    fn run(sent: u64, acked: u64, naks: u64, dora_per_s: f64) -> Measured {
        let drops_pct = 100.0 * (sent - acked) as f64 / sent as f64;
        tools::parse_loadgen(
            &format!(
                "LOADGEN sent={sent} completed={acked} dora_per_s={dora_per_s} \
                 drops_pct={drops_pct:.2} naks={naks} p50_ms=0.500 p99_ms=2.000 offers={acked} \
                 acks={acked}\n"
            ),
            "",
        )
        .unwrap()
    }

    #[test]
    fn the_cpu_ratio_compares_cpu_per_exchange_and_needs_both_figures() {
        let mut provd = run(10_000, 10_000, 0, 10_000.0);
        let mut kea = run(10_000, 10_000, 0, 5_000.0);
        assert_eq!(cpu_ratio_line(&provd, "kea", &kea), None);
        provd.server_cpu_pct = Some(20.0);
        kea.server_cpu_pct = Some(40.0);
        // provd: 20 % for 10,000/s; Kea: 40 % for 5,000/s. Per exchange, a quarter.
        assert_eq!(
            cpu_ratio_line(&provd, "kea", &kea).unwrap(),
            "RATIO dhcp-cpu provd/kea=0.25 provd_cpu_pct=20.0 kea_cpu_pct=40.0"
        );
        assert!(result_line("provd", "xdp", &provd).ends_with(" server_cpu_pct=20.0"));
    }

    #[test]
    fn result_lines_carry_exchanges_drops_and_naks() {
        let m = run(100_000, 99_000, 200, 10_000.0);
        assert_eq!(
            result_line("kea", "-", &m),
            "RESULT dhcp server=kea path=- dora_per_s=10000 drops_pct=1.00 p50_ms=0.500 \
             p99_ms=2.000 sent=100000 drops=800 naks=200"
        );
    }

    #[test]
    fn a_ratio_over_drops_says_degraded() {
        let clean = run(100_000, 99_900, 0, 30_000.0);
        let dropping = run(100_000, 99_000, 200, 10_000.0);
        assert_eq!(
            ratio_line(&clean, "kea", &dropping, ""),
            "RATIO dhcp provd/kea=3.00 degraded=kea:1.00%"
        );
        assert_eq!(
            ratio_line(&dropping, "null", &clean, " path=xdp"),
            "RATIO dhcp provd/null=0.33 path=xdp degraded=provd:1.00%"
        );
        // Exactly 0.1 % of the exchanges lost is still clean.
        assert_eq!(
            ratio_line(&clean, "kea", &clean, ""),
            "RATIO dhcp provd/kea=1.00"
        );
    }

    #[test]
    fn the_half_rate_line_says_degraded_itself() {
        let line = half_line("xdp", 5000, &run(50_000, 49_000, 0, 4_900.0));
        assert_eq!(
            line,
            "RESULT dhcp-half server=provd path=xdp target_rate=5000 dora_per_s=4900 \
             drops_pct=2.00 p50_ms=0.500 p99_ms=2.000 sent=50000 drops=1000 naks=0 \
             degraded=2.00%"
        );
        let clean = half_line("xdp", 5000, &run(50_000, 50_000, 0, 5_000.0));
        assert!(clean.ends_with("sent=50000 drops=0 naks=0"), "{clean}");
    }

    #[test]
    fn the_store_ratio_names_a_degraded_side() {
        let empty = [
            run(10_000, 10_000, 0, 1000.0),
            run(10_000, 10_000, 0, 1000.0),
        ];
        let full = [
            run(10_000, 9_900, 50, 900.0),
            run(10_000, 10_000, 0, 1100.0),
        ];
        assert_eq!(
            store_ratio(7, &empty, &full).unwrap(),
            "RATIO dhcp full-store/empty-store=1.000 devices=7 empty_dora_per_s=1000 \
             full_dora_per_s=1000 max_drops_pct=1.00 sent=40000 drops=50 naks=50 \
             degraded=provd-full-store:0.50%"
        );
        let clean = store_ratio(7, &empty, &empty).unwrap();
        assert!(!clean.contains("degraded"), "{clean}");
        assert!(store_ratio(7, &empty, &full[..1]).is_none());
    }
}
