//! Whole-server benchmarks, side by side in one run.
//!
//! `cargo xtask bench dhcp --vs kea,dnsmasq,isc-dhcpd --seconds N` runs provd and then each peer,
//! each alone in a fresh server network namespace joined by veth to a fresh load namespace, under
//! the same load: provd-loadgen as the relay 198.18.2.1, at `--rate` (0 = as fast as `--window`
//! outstanding exchanges allow) for N seconds. It prints, per server,
//! `RESULT dhcp server=NAME path=PATH dora_per_s=N drops_pct=P p50_ms=L p99_ms=L`, then
//! `RATIO dhcp provd/NAME=X` per peer. A server that completes no exchange fails the run.
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
//! `RESULT acs sessions_per_s=N bytes_per_device=B` (see `acs.rs`).
//!
//! `cargo xtask bench mta --seconds N [--concurrency C]` runs a fleet of simulated PacketCable
//! MTAs (`provd-loadgen mta`) through complete HYBRID.2 flows against provd and prints
//! `RESULT mta flows_per_s=N p99_ms=L` (see `mta.rs`).

mod acs;
mod mta;
mod netns;
mod server;
mod tftp;
mod tools;

use std::sync::Arc;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::{Result, bail};

use netns::Link;
use server::{Kind, Running};
use tools::{Binaries, Load, Measured};

#[derive(clap::Args, Debug)]
pub struct Args {
    /// What to benchmark: `dhcp` (provd vs peers), `dhcp-check` (perfdhcp vs provd-loadgen),
    /// `tftp` (provd vs peers) or `mta` (provd under a fleet of simulated MTAs)
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
    /// mta: flows in flight [default: 512]; acs: keep-alive connections [default: 64]
    #[arg(long)]
    pub concurrency: Option<u32>,
    /// acs: known devices [default: 1000000]
    #[arg(long)]
    pub devices: Option<u32>,
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
    netns::sweep_stale();
    match args.what.as_str() {
        "dhcp" => dhcp(&args),
        "dhcp-check" => dhcp_check(&args),
        "tftp" => tftp::run(&args),
        "mta" => mta::run(&args),
        "acs" => acs::run(&args),
        other => bail!("unknown bench {other:?} (known: dhcp, dhcp-check, tftp, mta, acs)"),
    }
}

/// One server, fresh namespaces, one load run.
fn measure(kind: Kind, bins: &Binaries, load: &Load) -> Result<(String, Measured)> {
    let link = Link::new()?;
    let mut srv = Running::start(kind, &link, bins.provd.as_deref())?;
    eprintln!(
        "bench: {} ready (pid {}, dir {}); {} s of load",
        kind.name(),
        srv.pid(),
        srv.dir().display(),
        load.seconds
    );
    let m = tools::loadgen(&bins.loadgen, &link, load);
    srv.check_alive()?;
    let m = m?;
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

fn dhcp(args: &Args) -> Result<()> {
    let mut kinds = Vec::new();
    if !args.no_provd {
        kinds.push(Kind::Provd);
    }
    let default_peers = ["kea", "dnsmasq", "isc-dhcpd"].map(String::from);
    let vs = if args.vs.is_empty() {
        &default_peers[..]
    } else {
        &args.vs[..]
    };
    for v in vs {
        let k = Kind::parse(v.trim())?;
        if !kinds.contains(&k) {
            kinds.push(k);
        }
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
    let mut results: Vec<(Kind, Result<(String, Measured)>)> = Vec::new();
    for (i, &kind) in kinds.iter().enumerate() {
        check_interrupted()?;
        let load = Load {
            clients,
            rate: args.rate,
            window: args.window.min(clients),
            seconds,
            timeout_ms: args.timeout_ms,
            salt: i as u8,
        };
        let r = measure(kind, &bins, &load);
        match &r {
            Ok((path, m)) => println!(
                "RESULT dhcp server={} path={path} dora_per_s={:.0} drops_pct={:.2} p50_ms={:.3} \
                 p99_ms={:.3}",
                kind.name(),
                m.dora_per_s,
                m.drops_pct,
                m.p50_ms,
                m.p99_ms
            ),
            Err(e) => eprintln!("bench: {} FAILED: {e:#}", kind.name()),
        }
        results.push((kind, r));
    }
    let provd = results
        .iter()
        .find(|(k, _)| *k == Kind::Provd)
        .and_then(|(_, r)| r.as_ref().ok())
        .map(|(_, m)| m.dora_per_s);
    if let Some(p) = provd {
        for (kind, r) in &results {
            if let (true, Ok((_, m))) = (*kind != Kind::Provd, r)
                && m.dora_per_s > 0.0
            {
                println!("RATIO dhcp provd/{}={:.2}", kind.name(), p / m.dora_per_s);
            }
        }
    }
    let failed: Vec<&str> = results
        .iter()
        .filter(|(_, r)| r.is_err())
        .map(|(k, _)| k.name())
        .collect();
    if !failed.is_empty() {
        bail!("bench dhcp: no result for {}", failed.join(", "));
    }
    Ok(())
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
        let link = Link::new()?;
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
