//! provd-loadgen: a DHCPv4 load generator that acts as a relay agent for many simulated clients.
//!
//! It binds `RELAY:67` (replies to relayed requests come back there), sends to `SERVER:67`, and
//! runs one DORA per exchange (DISCOVER, OFFER, REQUEST in SELECTING state, ACK) for clients
//! `02:<salt>:<index>`. Starts are open-loop at `--rate` per second (0 = as fast as the window
//! allows) with at most `--window` exchanges outstanding; no retransmissions: an exchange not
//! finished within `--timeout-ms` is a drop. The last line printed is
//!
//! `LOADGEN sent=N completed=N dora_per_s=X drops_pct=P naks=N p50_ms=L p99_ms=L offers=N acks=N`
//!
//! `sent` counts exchanges started (DISCOVERs), `completed` those that got their ACK in time,
//! `dora_per_s` is completed / (first DISCOVER to last ACK), `drops_pct` is the share of started
//! exchanges that did not complete (timed out, or NAKed: `naks` says how many of those), and the
//! percentiles are DISCOVER-sent to ACK-received over completed exchanges.
//!
//! `provd-loadgen verify --server IP --relay IP --pairs FILE` re-asks (INIT-REBOOT) for each
//! `mac addr [client-id-hex]` line, with option 61 when the line gives a client id, and prints
//! `VERIFY ok=N mismatched=N unanswered=N`, exiting 0 iff all are ok.

mod hist;
mod io;
mod packet;
mod run;
mod verify;

use std::net::{Ipv4Addr, SocketAddrV4};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, Result};
use clap::{Args, Parser, Subcommand};

#[derive(Parser, Debug)]
#[command(
    name = "provd-loadgen",
    about = "DHCPv4 DORA load generator (relay agent)"
)]
#[command(args_conflicts_with_subcommands = true, subcommand_negates_reqs = true)]
struct Cli {
    #[command(subcommand)]
    cmd: Option<Cmd>,
    #[command(flatten)]
    load: LoadArgs,
}

#[derive(Subcommand, Debug)]
enum Cmd {
    /// Check that the server still ACKs every `mac addr [client-id-hex]` line (INIT-REBOOT
    /// requests).
    Verify(VerifyArgs),
}

#[derive(Args, Debug)]
struct Endpoints {
    /// The DHCP server's address.
    #[arg(long, required = true)]
    server: Option<Ipv4Addr>,
    /// The relay (giaddr) address to bind; must be local, and the server must route to it.
    #[arg(long, required = true)]
    relay: Option<Ipv4Addr>,
    /// Server UDP port.
    #[arg(long, default_value_t = 67)]
    server_port: u16,
    /// Local UDP port (servers answer relays on 67).
    #[arg(long, default_value_t = 67)]
    relay_port: u16,
}

impl Endpoints {
    fn addrs(&self) -> Result<(SocketAddrV4, SocketAddrV4)> {
        let server = self.server.context("--server is required")?;
        let relay = self.relay.context("--relay is required")?;
        Ok((
            SocketAddrV4::new(server, self.server_port),
            SocketAddrV4::new(relay, self.relay_port),
        ))
    }
}

#[derive(Args, Debug)]
struct LoadArgs {
    #[command(flatten)]
    ends: Endpoints,
    /// Distinct clients (MACs). Exchange k uses client k mod N.
    #[arg(long, default_value_t = 10_000)]
    clients: u32,
    /// Exchanges to run in total (default: one per client).
    #[arg(long)]
    count: Option<u64>,
    /// Exchanges started per second; 0 = as fast as the window allows.
    #[arg(long, default_value_t = 0)]
    rate: u64,
    /// Most exchanges outstanding at once.
    #[arg(long, default_value_t = 256)]
    window: u32,
    /// Hard stop: no exchange starts later; the run ends at most --timeout-ms after.
    #[arg(long, default_value_t = 10.0)]
    seconds: f64,
    /// An exchange not completed this long after its DISCOVER is a drop.
    #[arg(long, default_value_t = 1000)]
    timeout_ms: u64,
    /// Second MAC byte: runs with different salts use disjoint clients.
    #[arg(long, default_value_t = 0)]
    salt: u8,
    /// Write `mac addr` for every ACK to this file.
    #[arg(long)]
    dump_acks: Option<PathBuf>,
}

#[derive(Args, Debug)]
struct VerifyArgs {
    #[command(flatten)]
    ends: Endpoints,
    /// File of `mac addr [client-id-hex]` lines: `mac addr` as written by --dump-acks; the
    /// optional third column is the client's option 61 as hex, sent with its request.
    #[arg(long)]
    pairs: PathBuf,
    /// Wait per attempt (3 attempts per pair).
    #[arg(long, default_value_t = 1000)]
    timeout_ms: u64,
    /// Requests outstanding at once.
    #[arg(long, default_value_t = 256)]
    window: usize,
    /// Hard stop for the whole verification.
    #[arg(long, default_value_t = 300.0)]
    seconds: f64,
}

fn seconds(s: f64, what: &str) -> Result<Duration> {
    Duration::try_from_secs_f64(s).with_context(|| format!("{what}: {s} is not a duration"))
}

fn main() -> ExitCode {
    match real_main() {
        Ok(code) => code,
        Err(e) => {
            eprintln!("provd-loadgen: error: {e:#}");
            ExitCode::from(2)
        }
    }
}

fn real_main() -> Result<ExitCode> {
    let cli = Cli::parse();
    match cli.cmd {
        Some(Cmd::Verify(a)) => {
            let (server, relay) = a.ends.addrs()?;
            let text = std::fs::read_to_string(&a.pairs)
                .with_context(|| format!("reading {}", a.pairs.display()))?;
            let cfg = verify::Config {
                server,
                relay,
                pairs: verify::parse_pairs(&text)?,
                timeout: Duration::from_millis(a.timeout_ms),
                window: a.window.max(1),
                limit: seconds(a.seconds, "--seconds")?,
            };
            let out = verify::run(&cfg)?;
            println!("{}", out.line());
            Ok(if out.ok == cfg.pairs.len() as u64 {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            })
        }
        None => {
            let a = cli.load;
            let (server, relay) = a.ends.addrs()?;
            let cfg = run::Config {
                server,
                relay,
                clients: a.clients,
                count: a.count.unwrap_or(u64::from(a.clients)),
                rate: a.rate,
                window: a.window,
                duration: seconds(a.seconds, "--seconds")?,
                timeout: Duration::from_millis(a.timeout_ms),
                salt: a.salt,
                dump_acks: a.dump_acks,
            };
            let report = run::run(cfg)?;
            eprintln!("{}", report.detail());
            println!("{}", report.line());
            Ok(ExitCode::SUCCESS)
        }
    }
}
