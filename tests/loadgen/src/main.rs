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
//!
//! `provd-loadgen tftp --server IP:PORT --names 'cm/{mac}.cfg' --macs N --concurrency C ...`
//! runs TFTP read transfers, C at a time, and prints `RESULT tftp-load files=N files_per_s=X
//! bytes_per_s=Y p50_ms=L p99_ms=L errors=E timeouts=T`, exiting 0 iff every transfer delivered
//! the expected content (see `tftp/mod.rs`).
//!
//! `provd-loadgen mta --server IP --bind IP --count N --concurrency C --seconds S` runs a fleet
//! of simulated PacketCable MTAs through complete HYBRID.2 flows (enrollment INFORM, SET on
//! `BIND:161`, TFTP fetch with the hash checked, status INFORM) and prints `RESULT mta-load
//! flows=N flows_per_s=X p50_ms=L p99_ms=L failed=F timeouts=T`, exiting 0 iff every flow
//! completed (see `mta/mod.rs`).

mod hist;
mod io;
mod mta;
mod packet;
mod run;
mod storm;
mod sys;
mod tftp;
mod tls;
mod verify;

use std::io::Write as _;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
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
    /// TFTP read load: many transfers in flight, content verified.
    Tftp(TftpArgs),
    /// A fleet of simulated PacketCable MTAs, each through a whole HYBRID.2 flow.
    Mta(MtaArgs),
    /// A region's power comes back: cable modems and eMTAs behind simulated CMTSs, each
    /// through its whole boot (see `storm/mod.rs`).
    Storm(StormArgs),
    /// New mutual-TLS handshakes (rustls clients, resumption off), as fast as they go.
    Tls(TlsArgs),
}

#[derive(Args, Debug)]
struct TlsArgs {
    /// The server, IP:PORT.
    #[arg(long)]
    connect: SocketAddr,
    /// Name to verify the server certificate against (a DNS name or IP in its SAN).
    #[arg(long)]
    server_name: String,
    /// CA certificates (PEM) the server chain must verify against.
    #[arg(long)]
    ca: PathBuf,
    /// Client certificate chain (PEM).
    #[arg(long)]
    cert: PathBuf,
    /// Client private key (PEM).
    #[arg(long)]
    key: PathBuf,
    /// Client threads, one blocking connection each.
    #[arg(long, default_value_t = 2)]
    threads: u32,
    /// Run this long.
    #[arg(long, default_value_t = 10.0)]
    seconds: f64,
    /// Handshakes at most.
    #[arg(long, default_value_t = 10_000_000)]
    count: u64,
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

#[derive(Args, Debug)]
#[command(group(clap::ArgGroup::new("what").required(true).args(["names", "name"])))]
struct TftpArgs {
    /// The TFTP server, IP:PORT (port 69 if left out).
    #[arg(long, value_parser = parse_server)]
    server: SocketAddrV4,
    /// File name pattern; `{mac}` becomes the 12 lower-case hex digits of device k % --macs
    /// (`02:<salt>:...`), e.g. `bench/{mac}.cfg`.
    #[arg(long)]
    names: Option<String>,
    /// Distinct devices (names) for --names.
    #[arg(long, default_value_t = 1000, requires = "names")]
    macs: u32,
    /// Second MAC byte of the devices for --names.
    #[arg(long, default_value_t = 0, requires = "names")]
    salt: u8,
    /// One fixed file name for every transfer.
    #[arg(long)]
    name: Option<String>,
    /// Transfers in flight at once (one UDP socket each).
    #[arg(long, default_value_t = 64)]
    concurrency: usize,
    /// Transfers to run in total (at most 10 000 000).
    #[arg(long, default_value_t = tftp::MAX_COUNT)]
    count: u64,
    /// No transfer starts after this many seconds (at most 3600); running ones may finish
    /// within max(5 s, timeout x (retries + 1)) more.
    #[arg(long, default_value_t = 60.0)]
    seconds: f64,
    /// Ask for this block size (RFC 2348); default: none (512-byte blocks).
    #[arg(long)]
    blksize: Option<u16>,
    /// Ask for this window (RFC 7440); default: none (lock-step).
    #[arg(long)]
    windowsize: Option<u16>,
    /// Ask for the size (RFC 2349 `tsize 0`) and check the file against the answer.
    #[arg(long)]
    tsize: bool,
    /// Transfer mode.
    #[arg(long, default_value = "octet", value_parser = ["octet", "netascii"])]
    mode: String,
    /// Source address of the transfers' sockets.
    #[arg(long, default_value_t = Ipv4Addr::UNSPECIFIED)]
    bind: Ipv4Addr,
    /// Wait for an answer before resending the last packet.
    #[arg(long, default_value_t = 1000)]
    timeout_ms: u64,
    /// Resends before a transfer counts as timed out.
    #[arg(long, default_value_t = 5)]
    retries: u32,
    /// Every file must be this many bytes.
    #[arg(long)]
    expect_size: Option<u64>,
    /// Every file must have this SHA-1 (40 hex digits).
    #[arg(long)]
    expect_sha1: Option<String>,
    /// Every file must equal DIR/NAME (read once at start).
    #[arg(long)]
    verify_dir: Option<PathBuf>,
    /// Write every file received to DIR/NAME.
    #[arg(long)]
    save_dir: Option<PathBuf>,
    /// Print the distinct names the run would ask for, one per line, and exit.
    #[arg(long)]
    list_names: bool,
}

#[derive(Args, Debug)]
struct MtaArgs {
    /// The provisioning server (its SNMP notification port takes the INFORMs).
    #[arg(long)]
    server: Ipv4Addr,
    /// The server's notification port.
    #[arg(long, default_value_t = 162)]
    server_port: u16,
    /// Source address of every MTA; the server SETs to BIND:--agent-port, so it must be local
    /// and reachable from the server.
    #[arg(long)]
    bind: Ipv4Addr,
    /// The MTAs' SNMP agent port, where the SETs arrive.
    #[arg(long, default_value_t = 161)]
    agent_port: u16,
    /// Flows to run in total (at most 10 000 000); flow k is MTA --mac-base + k.
    #[arg(long, default_value_t = 10_000)]
    count: u64,
    /// Flows in flight at once (one UDP socket each).
    #[arg(long, default_value_t = 256)]
    concurrency: usize,
    /// No flow starts after this many seconds (at most 3600); running ones get
    /// --flow-timeout-ms more.
    #[arg(long, default_value_t = 10.0)]
    seconds: f64,
    /// Community of the INFORMs.
    #[arg(long, default_value = "private")]
    community: String,
    /// Community a SET must carry to be taken (others get no answer).
    #[arg(long, default_value = "private")]
    set_community: String,
    /// MAC of flow 0; flow k is this plus k.
    #[arg(long, default_value = "02:4d:54:00:00:00", value_parser = parse_mac)]
    mac_base: [u8; 6],
    /// Wait for an answer before resending an INFORM (or a TFTP packet).
    #[arg(long, default_value_t = 1000)]
    timeout_ms: u64,
    /// Resends before a step counts as timed out.
    #[arg(long, default_value_t = 4)]
    retries: u32,
    /// The longest one flow may take, enrollment to status answered.
    #[arg(long, default_value_t = 20_000)]
    flow_timeout_ms: u64,
    /// Ask for this TFTP block size (RFC 2348); default none: 512-byte blocks, one round trip
    /// for a small file.
    #[arg(long)]
    blksize: Option<u16>,
}

#[derive(Args, Debug)]
struct StormArgs {
    /// The provisioning server: relayed DHCP goes to its port 67; TFTP, time, syslog and SNMP
    /// go where the ACKs say.
    #[arg(long)]
    server: Ipv4Addr,
    /// giaddr of the first CMTS's modems; CMTS k relays its modems from BASE + 3k, its MTAs
    /// from BASE + 3k + 1 and its CPEs (routers, phones) from BASE + 3k + 2 (all local to this
    /// host).
    #[arg(long)]
    relay_base: Ipv4Addr,
    /// Simulated CMTSs.
    #[arg(long, default_value_t = 20)]
    relays: u32,
    #[arg(long, default_value_t = 1000)]
    cms: u32,
    /// MTA k is modem k's embedded MTA.
    #[arg(long, default_value_t = 1000)]
    mtas: u32,
    /// eRouters (DHCP, then a CWMP session with the ACS of option 43.1); router k sits behind
    /// modem k.
    #[arg(long, default_value_t = 0)]
    routers: u32,
    /// Phones/ATAs (DHCP, then the profile of option 66's rule over HTTP); phone k sits behind
    /// modem k.
    #[arg(long, default_value_t = 0)]
    phones: u32,
    /// The routers' ACS username and password (digest).
    #[arg(long, default_value = "cpe")]
    acs_user: String,
    #[arg(long, default_value = "")]
    acs_pass: String,
    /// Routers' and phones' TCP connections open at once, at most (each is a descriptor).
    #[arg(long, default_value_t = 8192)]
    max_connections: u32,
    /// Power-on times spread uniformly over this many milliseconds.
    #[arg(long, default_value_t = 1000)]
    spread_ms: u64,
    /// Devices not online this many seconds after the first power-on are lost.
    #[arg(long, default_value_t = 120.0)]
    deadline_s: f64,
    /// The CMTS shared secret the modems check their file's CMTS MIC with.
    #[arg(long)]
    shared_secret: String,
    /// Community of the MTAs' INFORMs.
    #[arg(long, default_value = "private")]
    community: String,
    /// Community a SET must carry to be taken.
    #[arg(long, default_value = "private")]
    set_community: String,
    #[arg(long, default_value_t = 161)]
    agent_port: u16,
    /// Second byte of the modems' MACs (the MTAs' is one more, the routers' two, the phones'
    /// three).
    #[arg(long, default_value_t = 0x5c)]
    salt: u8,
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Write devices online over time here (CSV: t_s,cm_online,mta_online,router_online,
    /// phone_online).
    #[arg(long)]
    timeline: Option<PathBuf>,
    /// Write every device not online at the deadline here (MAC, kind, phase).
    #[arg(long)]
    lost: Option<PathBuf>,
}

fn storm_config(a: StormArgs) -> Result<storm::Config> {
    anyhow::ensure!(
        a.relays >= 1 && a.relays <= storm::MAX_RELAYS,
        "--relays must be in 1..={}",
        storm::MAX_RELAYS
    );
    let base = u32::from(a.relay_base);
    let cmtss = (0..a.relays)
        .map(|k| storm::Cmts {
            cm_giaddr: Ipv4Addr::from(base.wrapping_add(3 * k)),
            mta_giaddr: Ipv4Addr::from(base.wrapping_add(3 * k + 1)),
            cpe_giaddr: Ipv4Addr::from(base.wrapping_add(3 * k + 2)),
        })
        .collect();
    Ok(storm::Config {
        server: a.server,
        cmtss,
        cms: a.cms,
        mtas: a.mtas,
        routers: a.routers,
        phones: a.phones,
        acs_user: a.acs_user,
        acs_pass: a.acs_pass,
        max_connections: a.max_connections,
        spread: Duration::from_millis(a.spread_ms),
        deadline: seconds(a.deadline_s, "--deadline-s")?,
        shared_secret: a.shared_secret,
        community: a.community,
        set_community: a.set_community,
        agent_port: a.agent_port,
        salt: a.salt,
        seed: a.seed,
        tftp: tftp::packet::RequestOptions::default(),
        timeline: a.timeline,
        lost_file: a.lost,
    })
}

fn parse_mac(s: &str) -> Result<[u8; 6], String> {
    mta::msg::parse_mac(s).ok_or_else(|| format!("{s:?} is not a MAC address"))
}

fn mta_config(a: MtaArgs) -> Result<mta::Config> {
    Ok(mta::Config {
        server: SocketAddrV4::new(a.server, a.server_port),
        bind: a.bind,
        agent_port: a.agent_port,
        count: a.count,
        concurrency: a.concurrency,
        duration: seconds(a.seconds, "--seconds")?,
        community: a.community,
        set_community: a.set_community,
        mac_base: a.mac_base,
        timeout: Duration::from_millis(a.timeout_ms),
        retries: a.retries,
        tftp: tftp::packet::RequestOptions {
            blksize: a.blksize,
            ..Default::default()
        },
        flow_timeout: Duration::from_millis(a.flow_timeout_ms),
    })
}

fn parse_server(s: &str) -> Result<SocketAddrV4, String> {
    if let Ok(ip) = s.parse::<Ipv4Addr>() {
        return Ok(SocketAddrV4::new(ip, 69));
    }
    match s.parse::<SocketAddr>() {
        Ok(SocketAddr::V4(a)) => Ok(a),
        _ => Err(format!("{s:?} is not IPv4 IP[:PORT]")),
    }
}

fn tftp_config(a: TftpArgs) -> Result<tftp::Config> {
    let names = match (&a.names, &a.name) {
        (Some(p), None) => tftp::Names::pattern(p, a.macs, a.salt)?,
        (None, Some(n)) => tftp::Names::Fixed(n.clone()),
        _ => anyhow::bail!("give exactly one of --names and --name"),
    };
    let files = match &a.verify_dir {
        Some(d) => Some(tftp::load_reference(d, &names)?),
        None => None,
    };
    Ok(tftp::Config {
        server: a.server,
        bind: a.bind,
        concurrency: a.concurrency,
        count: a.count,
        duration: seconds(a.seconds, "--seconds")?,
        mode: if a.mode == "netascii" {
            "netascii"
        } else {
            "octet"
        },
        asked: tftp::packet::RequestOptions {
            blksize: a.blksize,
            windowsize: a.windowsize,
            tsize: a.tsize,
        },
        timeout: Duration::from_millis(a.timeout_ms),
        retries: a.retries,
        expect: tftp::Expect {
            size: a.expect_size,
            sha1: a.expect_sha1.as_deref().map(tftp::parse_sha1).transpose()?,
            files,
        },
        save_dir: a.save_dir,
        names,
    })
}

fn seconds(s: f64, what: &str) -> Result<Duration> {
    Duration::try_from_secs_f64(s).with_context(|| format!("{what}: {s} is not a duration"))
}

/// Prints a run's detail (stderr) and its RESULT line (stdout, last); exit 0 iff `ok`.
fn finish(detail: &str, line: &str, ok: bool) -> ExitCode {
    eprintln!("{detail}");
    println!("{line}");
    if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
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
        Some(Cmd::Tftp(a)) if a.list_names => {
            let cfg = tftp_config(a)?;
            let mut out = std::io::stdout().lock();
            for k in 0..cfg.names.distinct() {
                writeln!(out, "{}", cfg.names.name(k))?;
            }
            Ok(ExitCode::SUCCESS)
        }
        Some(Cmd::Tftp(a)) => {
            let r = tftp::run(tftp_config(a)?)?;
            Ok(finish(&r.detail(), &r.line(), r.all_ok()))
        }
        Some(Cmd::Mta(a)) => {
            let r = mta::run(mta_config(a)?)?;
            Ok(finish(&r.detail(), &r.line(), r.all_ok()))
        }
        Some(Cmd::Storm(a)) => {
            let cfg = storm_config(a)?;
            let r = storm::run(cfg.clone())?;
            storm::write_files(&cfg, &r)?;
            Ok(finish(&r.detail(), &r.line(), r.all_ok()))
        }
        Some(Cmd::Tls(a)) => {
            let report = tls::run(tls::Config {
                connect: a.connect,
                server_name: a.server_name,
                ca: a.ca,
                cert: a.cert,
                key: a.key,
                threads: a.threads,
                duration: seconds(a.seconds, "--seconds")?,
                count: a.count,
            })?;
            if let Some(e) = &report.first_error {
                eprintln!("provd-loadgen tls: first failure: {e}");
            }
            println!("{}", report.line());
            Ok(if report.failed == 0 && report.ok > 0 {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            })
        }
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
