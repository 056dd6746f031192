//! The provd binary: command line, config loading, start-up (lease replay, shard wiring) and
//! shutdown. Protocol decisions live in provd-engine, I/O in provd-dataplane.

mod acs;
mod cfg;
mod control;
mod http;
mod services;

use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use clap::{Parser, Subcommand};
use provd_config::{LogFormat, Policy};
use provd_dataplane::{DhcpRole, DhcpState, WorkerSettings};
use provd_engine::{Shared, Snapshot};
use provd_lease::LeaseState;
use provd_role::Role;
use provd_role::clock::unix_secs_u32;

/// How long each role may take to stop once asked.
const STOP_GRACE: Duration = Duration::from_secs(5);

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(
    name = "provd",
    version,
    about = "Provisioning server for cable modems, MTAs and CPEs"
)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Serve DHCP with the policy in FILE.
    Serve {
        #[arg(long, short)]
        config: PathBuf,
        /// Log counters every N seconds (0: only at shutdown).
        #[arg(long, default_value_t = 60)]
        stats_every: u64,
        /// Benchmark ceiling: answer DISCOVER/REQUEST with canned OFFER/ACK through the same
        /// I/O path, without the engine or the lease log. Never for service.
        #[arg(long)]
        null_responder: bool,
    },
    /// Validate FILE and print what it means; every error names its field.
    CheckConfig { file: PathBuf },
    /// Print the durable lease table of FILE's lease_dir as JSON lines (works while stopped).
    Leases {
        #[arg(long, short)]
        config: PathBuf,
    },
    /// DOCSIS / PacketCable config files: decode, encode (docsis tool syntax).
    #[command(subcommand)]
    Cfg(cfg::Cfg),
    /// What devices logged to a running server's syslog receiver.
    #[command(subcommand)]
    Syslog(SyslogCmd),
    /// PacketCable MTA provisioning records of a running server.
    #[command(subcommand)]
    Mta(MtaCmd),
    /// The XDP program's per-verdict counters of a running server (JSON).
    XdpStats {
        #[arg(long, short)]
        config: PathBuf,
    },
    /// The HTTP profile server of a running server.
    #[command(subcommand)]
    Http(HttpCmd),
    /// `--key` profiles: AES-256-CBC in OpenSSL's salted format, as
    /// `openssl enc -aes-256-cbc -md md5 -k KEY` reads and writes it.
    #[command(subcommand)]
    Profile(ProfileCmd),
}

#[derive(Subcommand)]
enum HttpCmd {
    /// One device's profile record (last seen, last version served, current version) as JSON.
    Status {
        #[arg(long, short)]
        config: PathBuf,
        /// The device's MAC (any common notation).
        mac: String,
    },
}

#[derive(Subcommand)]
enum ProfileCmd {
    /// Encrypt FILE (like `openssl enc -e -aes-256-cbc -md md5 -k KEY`, random salt).
    Encrypt {
        #[arg(long, short)]
        key: String,
        input: PathBuf,
        output: PathBuf,
    },
    /// Decrypt FILE (like `openssl enc -d -aes-256-cbc -md md5 -k KEY`).
    Decrypt {
        #[arg(long, short)]
        key: String,
        input: PathBuf,
        output: PathBuf,
    },
}

#[derive(Subcommand)]
enum MtaCmd {
    /// One MTA's provisioning record (flow, state, a timestamp per MTA-n step) as JSON.
    Status {
        #[arg(long, short)]
        config: PathBuf,
        /// The MTA's MAC (any common notation).
        mac: String,
    },
}

#[derive(Subcommand)]
enum SyslogCmd {
    /// The events kept for a device (MAC) or source address, oldest first, as JSON lines.
    Events {
        #[arg(long, short)]
        config: PathBuf,
        /// A MAC (any common notation) or an IPv4 source address.
        device: String,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    if !matches!(cli.cmd, Cmd::Serve { .. }) {
        // Commands that print end quietly when their reader goes away (`provd leases | head`)
        // instead of panicking on EPIPE. The server keeps Rust's SIGPIPE = ignore.
        // SAFETY: single-threaded at this point; SIG_DFL is a valid disposition for SIGPIPE.
        unsafe {
            libc::signal(libc::SIGPIPE, libc::SIG_DFL);
        }
    }
    let r = match cli.cmd {
        Cmd::CheckConfig { file } => check_config(&file),
        Cmd::Leases { config } => leases(&config),
        Cmd::Cfg(c) => cfg::run(c),
        Cmd::Syslog(SyslogCmd::Events { config, device }) => {
            ask(&config, &format!("syslog {device}"))
        }
        Cmd::Mta(MtaCmd::Status { config, mac }) => ask(&config, &format!("mta {mac}")),
        Cmd::XdpStats { config } => ask(&config, "xdp"),
        Cmd::Http(HttpCmd::Status { config, mac }) => ask(&config, &format!("http {mac}")),
        Cmd::Profile(c) => profile_crypt(c),
        Cmd::Serve {
            config,
            stats_every,
            null_responder,
        } => serve(&config, stats_every, null_responder),
    };
    match r {
        Ok(code) => code,
        Err(e) => {
            eprintln!("provd: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn profile_crypt(c: ProfileCmd) -> Result<ExitCode> {
    let (encrypt, key, input, output) = match c {
        ProfileCmd::Encrypt { key, input, output } => (true, key, input, output),
        ProfileCmd::Decrypt { key, input, output } => (false, key, input, output),
    };
    let data = std::fs::read(&input).with_context(|| format!("reading {}", input.display()))?;
    let out = if encrypt {
        let mut salt = [0u8; 8];
        getrandom::getrandom(&mut salt).map_err(|e| anyhow::anyhow!("no random salt: {e}"))?;
        provd_profiles::crypto::encrypt(&data, key.as_bytes(), salt)
    } else {
        provd_profiles::crypto::decrypt(&data, key.as_bytes())
            .with_context(|| format!("decrypting {}", input.display()))?
    };
    std::fs::write(&output, out).with_context(|| format!("writing {}", output.display()))?;
    Ok(ExitCode::SUCCESS)
}

fn load(path: &Path) -> Result<Policy> {
    Policy::from_file(path).map_err(|errors| anyhow::anyhow!("{}:\n{errors}", path.display()))
}

fn check_config(path: &Path) -> Result<ExitCode> {
    match Policy::from_file(path) {
        Ok(p) => {
            // Templates are part of the config: a syntax error refuses the start, so say it now.
            if let Err(e) =
                provd_files::Generator::new(&p, Arc::new(provd_files::DeviceView::new()))
            {
                println!("{e}");
                eprintln!("{}: template error", path.display());
                return Ok(ExitCode::FAILURE);
            }
            if let Err(e) = provd_httpd::check_templates(&p) {
                println!("{e}");
                eprintln!("{}: profile template error", path.display());
                return Ok(ExitCode::FAILURE);
            }
            println!("{}: ok\n{}", path.display(), p.describe());
            Ok(ExitCode::SUCCESS)
        }
        Err(errors) => {
            for e in &errors.0 {
                println!("{e}");
            }
            eprintln!("{}: {} error(s)", path.display(), errors.0.len());
            Ok(ExitCode::FAILURE)
        }
    }
}

fn leases(path: &Path) -> Result<ExitCode> {
    let policy = load(path)?;
    let replay = provd_lease::replay(&policy.server.lease_dir)
        .with_context(|| format!("reading {}", policy.server.lease_dir.display()))?;
    let now = unix_secs_u32();
    let mut out = std::io::stdout().lock();
    for r in &replay.records {
        use std::io::Write;
        let l = &r.lease;
        let state = match l.state {
            LeaseState::Bound if l.expires_at > now => "bound",
            LeaseState::Bound | LeaseState::Expired | LeaseState::Offered => "expired",
            LeaseState::Released => "released",
        };
        let mac = l.chaddr.map(|b| format!("{b:02x}")).join(":");
        let client: String = r
            .key
            .as_bytes()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        writeln!(
            out,
            r#"{{"mac":"{mac}","client":"{client}","addr":"{}","state":"{state}","expires":{}}}"#,
            l.addr, l.expires_at
        )?;
    }
    let rep = &replay.report;
    eprintln!(
        "provd: {} records from {} files ({} torn tails, {} corrupt)",
        replay.records.len(),
        rep.files,
        rep.torn_tails,
        rep.corrupt_records
    );
    Ok(ExitCode::SUCCESS)
}

/// Asks the server running with `config` over its control socket and prints the answer.
fn ask(config: &Path, request: &str) -> Result<ExitCode> {
    let policy = load(config)?;
    print!("{}", services::query(&policy.server.lease_dir, request)?);
    Ok(ExitCode::SUCCESS)
}

fn init_logging(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("PROVD_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Json => builder.json().init(),
        LogFormat::Text => builder.init(),
    }
}

fn serve(path: &Path, stats_every: u64, null_responder: bool) -> Result<ExitCode> {
    let policy = load(path)?;
    init_logging(policy.server.log_format);
    let shards = match policy.server.workers {
        0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
        n => n,
    } as u32;
    let settings = WorkerSettings {
        bind: policy.server.bind,
        port: policy.server.port,
        compact_after_records: policy.server.compact_after_records,
        null_responder,
    };
    if null_responder {
        tracing::warn!("null responder: canned replies, no leases kept (benchmark ceiling)");
    }
    let dir = policy.server.lease_dir.clone();
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;

    // Replay, give each shard its table, then reopen the logs under this shard count (see
    // provd_lease::reopen for why the order keeps every lease).
    let t = Instant::now();
    let replay =
        provd_lease::replay(&dir).with_context(|| format!("replaying {}", dir.display()))?;
    let replay_ms = t.elapsed().as_millis();
    let report = replay.report.clone();
    let shared = Arc::new(Shared::new(policy).context("setting up pools and options")?);
    let now = unix_secs_u32();
    let (tables, restored) = shared.restore(replay.records, now, shards);
    let logs = provd_lease::reopen(&dir, &tables, replay.max_seq + 1)
        .with_context(|| format!("reopening the lease logs in {}", dir.display()))?
        .logs;
    tracing::info!(
        files = report.files,
        records = report.records_read,
        torn_tails = report.torn_tails,
        corrupt = report.corrupt_records,
        bound = restored.bound,
        remembered = restored.remembered,
        forgotten = restored.forgotten,
        conflicts = restored.conflicts,
        replay_ms = replay_ms as u64,
        startup_ms = t.elapsed().as_millis() as u64,
        "leases restored"
    );

    // What the file servers know of bound devices: every restored live lease now, and each new
    // record as a worker writes it.
    let wants_devices = shared.policy.tftp.is_some()
        || shared.policy.syslog.is_some()
        || shared.policy.http.is_some();
    let devices = wants_devices.then(|| {
        let view = Arc::new(provd_files::DeviceView::new());
        for table in &tables {
            for (_, lease) in table.iter() {
                if lease.state == LeaseState::Bound && lease.expires_at > now {
                    view.record(lease);
                }
            }
        }
        view
    });
    let generated = match (&devices, &shared.policy.tftp) {
        (Some(view), Some(_)) => Some(Arc::new(provd_tftpd::Generated::new(Arc::new(
            provd_files::Generator::new(&shared.policy, Arc::clone(view))
                .context("loading config-file templates")?,
        )))),
        _ => None,
    };

    let shutdown = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGTERM, signal_hook::consts::SIGINT] {
        signal_hook::flag::register(sig, Arc::clone(&shutdown))?;
    }

    // The PacketCable role: DHCP workers report MTA boots to it, it pins the files it hashed.
    let mut observers: Vec<Arc<dyn provd_engine::LeaseObserver>> = Vec::new();
    if let Some(view) = &devices {
        observers.push(Arc::clone(view) as Arc<dyn provd_engine::LeaseObserver>);
    }
    let mta = match (
        &shared.policy.mta,
        &generated,
        &devices,
        &shared.policy.tftp,
    ) {
        (Some(m), Some(g), Some(view), Some(t)) => {
            let host = [t.bind, shared.policy.server.server_id.unwrap_or(Ipv4Addr::UNSPECIFIED), m.bind]
                .into_iter()
                .find(|a| !a.is_unspecified())
                .context("[mta]: the file URL SET on MTAs needs an address: set tftp.bind or server.server_id")?;
            let ctx = provd_mtad::Context::new(
                Arc::new(shared.policy.clone()),
                Arc::clone(g.generator()),
                Arc::clone(view),
                host,
                t.enforce,
            );
            let (role, observer) = provd_mtad::start(m, ctx, Arc::clone(&shutdown))?;
            g.notify_mta(role.file_served());
            observers.push(Arc::new(observer));
            tracing::info!(listen = %role.notify_addr(), tftp = %host, "MTA provisioning ready");
            Some(role)
        }
        _ => None,
    };
    let observer: Option<Arc<dyn provd_engine::LeaseObserver>> = match observers.len() {
        0 => None,
        1 => observers.pop(),
        _ => Some(Arc::new(Fanout(observers))),
    };
    let dhcp = DhcpRole::start(
        DhcpState {
            shared: Arc::clone(&shared),
            tables,
            logs,
        },
        settings.clone(),
        observer,
        &shutdown,
    )?;
    // The MTA and TFTP roles, stopped together after the control plane (TFTP first).
    let mut roles = provd_role::RoleSet::default();
    let mta_commands = mta.as_ref().map(|m| m.commands());
    let pinned = mta
        .as_ref()
        .map(|m| m.pinned() as Arc<dyn provd_tftpd::FileSource>);
    if let Some(m) = mta {
        roles.push(Box::new(m));
    }
    let tftp = match (&shared.policy.tftp, &generated) {
        (Some(t), Some(g)) => Some(provd_tftpd::role::start(
            t,
            pinned,
            Arc::clone(g),
            Arc::clone(&shutdown),
        )?),
        _ => None,
    };
    if let Some(h) = &tftp {
        dhcp.steer_tftp(
            shared.policy.tftp.as_ref().map_or(0, |t| t.port),
            h.transfer_ports(),
        );
    }
    let tftp_addr = tftp.as_ref().map(|h| h.local_addr());
    if let Some(h) = tftp {
        tracing::info!(listen = %h.local_addr(), transfer_ports = ?h.transfer_ports(), root = ?h.root(), "TFTP ready");
        roles.push(Box::new(h));
    }
    let syslog = match (&shared.policy.syslog, &devices) {
        (Some(s), Some(view)) => {
            let (store, handle) =
                services::start_syslog(s, Arc::clone(view), Arc::clone(&shutdown))?;
            tracing::info!(listen = %handle.local_addr(), "syslog ready");
            Some((store, handle))
        }
        _ => None,
    };
    let time = match &shared.policy.time {
        Some(t) => {
            let h = services::start_time(t, Arc::clone(&shutdown))?;
            tracing::info!(udp = ?h.udp_addr(), tcp = ?h.tcp_addr(), "time server ready");
            Some(h)
        }
        None => None,
    };
    // The control plane's services (HTTP profiles, the ACS) bind here, before the ready line.
    let control_threads = std::thread::available_parallelism().map_or(2, |n| n.get());
    let mut control_plane = control::ControlPlane::start(control_threads)?;
    let http_role = match &shared.policy.http {
        Some(h) => {
            let role = http::start(h, &shared.policy, devices.clone(), &mut control_plane)?;
            tracing::info!(plain = ?role.plain, https = ?role.https, "HTTP profile server ready");
            Some(role)
        }
        None => None,
    };
    let acs = match &shared.policy.acs {
        Some(a) => {
            let h = acs::start(&mut control_plane, a, &dir)?;
            tracing::info!(cwmp = ?h.cwmp_addrs, api = %h.admin_addr, stun = ?h.stun_addr, "ACS ready");
            eprintln!(
                "acs ready cwmp={} api={}{}",
                h.cwmp_addrs
                    .iter()
                    .map(|a| a.to_string())
                    .collect::<Vec<_>>()
                    .join(","),
                h.admin_addr,
                h.stun_addr
                    .map(|s| format!(" stun={s}"))
                    .unwrap_or_default()
            );
            Some(h)
        }
        None => None,
    };
    let control = services::start_control(
        services::control_path(&dir),
        syslog.as_ref().map(|(store, _)| Arc::clone(store)),
        mta_commands,
        dhcp.steering().cloned(),
        http_role.as_ref().map(|r| Arc::clone(&r.httpd)),
        Arc::clone(&shutdown),
    )?;
    tracing::info!(
        path = dhcp.path().as_str(),
        workers = shards,
        bind = %settings.bind,
        port = settings.port,
        why = %dhcp.why(),
        "provd ready"
    );
    // A plain line too, independent of the log format, for scripts waiting on readiness: every
    // listener is bound by now.
    match tftp_addr {
        Some(addr) => eprintln!(
            "provd ready path={} workers={shards}{} tftp={addr}",
            dhcp.path().as_str(),
            if null_responder { " null" } else { "" },
        ),
        None => eprintln!(
            "provd ready path={} workers={shards}{}",
            dhcp.path().as_str(),
            if null_responder { " null" } else { "" }
        ),
    }

    let mut last = Instant::now();
    while !shutdown.load(Ordering::Relaxed) {
        std::thread::sleep(Duration::from_millis(100));
        if dhcp.finished() || control_plane.any_finished() {
            break;
        }
        if stats_every > 0 && last.elapsed() >= Duration::from_secs(stats_every) {
            last = Instant::now();
            log_counters(&dhcp.snapshot());
            roles.log_counters();
        }
    }
    shutdown.store(true, Ordering::Relaxed);
    let mut failed = false;
    let dhcp_counters = dhcp.snapshot();
    if let Err(e) = Box::new(dhcp).stop(STOP_GRACE) {
        tracing::error!(error = format!("{e:#}"), "DHCP role failed");
        failed = true;
    }
    if let Some((store, h)) = syslog {
        tracing::info!(counters = ?h.counters(), store = ?store.stats(), "syslog counters");
        if let Err(e) = h.join() {
            tracing::error!(error = %e, "syslog worker failed");
            failed = true;
        }
    }
    if let Some(h) = time {
        tracing::info!(counters = ?h.counters(), "time server counters");
        if let Err(e) = h.join() {
            tracing::error!(error = %e, "time server failed");
            failed = true;
        }
    }
    let _ = control.join();
    if !control_plane.stop() {
        failed = true;
    }
    if let Some(r) = &http_role {
        let web: Vec<String> = r.web.iter().map(|c| format!("{c:?}")).collect();
        tracing::info!(counters = %r.httpd.counters.snapshot(), listeners = ?web, "http counters");
    }
    if let Some(a) = &acs {
        tracing::info!(counters = %a.server.acs.counters_json(), "acs counters");
        a.save();
    }
    // Each logs its final counters as it stops.
    if !roles.stop(ROLE_GRACE) {
        failed = true;
    }
    log_counters(&dhcp_counters);
    if failed {
        bail!("a worker failed; see the log above");
    }
    tracing::info!("provd stopped");
    Ok(ExitCode::SUCCESS)
}

/// How long the MTA and TFTP roles get to stop once the shutdown flag is set (their threads
/// notice it within 50 ms).
const ROLE_GRACE: Duration = Duration::from_secs(5);

/// Tells every observer.
#[derive(Debug)]
pub struct Fanout(pub Vec<Arc<dyn provd_engine::LeaseObserver>>);

impl provd_engine::LeaseObserver for Fanout {
    fn record(&self, lease: &provd_lease::Lease) {
        self.0.iter().for_each(|o| o.record(lease));
    }

    fn bind(&self, b: provd_engine::Binding) {
        if let Some((last, rest)) = self.0.split_last() {
            rest.iter().for_each(|o| o.bind(b.clone()));
            last.bind(b);
        }
    }
}

fn log_counters(s: &Snapshot) {
    let fields: Vec<String> = s
        .entries()
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    tracing::info!(counters = %fields.join(" "), "counters");
}
