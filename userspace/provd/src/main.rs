//! The provd binary: command line, config loading, start-up (lease replay, shard wiring) and
//! shutdown. Protocol decisions live in provd-engine, I/O in provd-dataplane.

mod acs;
mod cfg;
mod control;
mod fastpath;
mod http;
mod mta;
mod services;
mod tftp;

use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use clap::{Parser, Subcommand};
use provd_config::{LogFormat, Policy};
use provd_dataplane::{Worker, WorkerSettings, unix_now};
use provd_engine::{Shard, Shared, Snapshot};
use provd_lease::{LeaseLog, LeaseState};

/// How long each role of the [`provd_role::RoleSet`] gets to stop.
const ROLE_GRACE: Duration = Duration::from_secs(5);

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
                provd_files::Generator::new(&p, Arc::new(provd_devices::DeviceView::new()))
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
    let now = unix_now();
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

    // Replay, then rewrite every live record into the log of the shard that now owns it before
    // any compaction: with a changed shard count a client's records may sit in another shard's
    // old log, and truncating that log first would lose them.
    let t = Instant::now();
    let replay =
        provd_lease::replay(&dir).with_context(|| format!("replaying {}", dir.display()))?;
    let replay_ms = t.elapsed().as_millis();
    let report = replay.report.clone();
    let shared = Shared::new(policy).context("setting up pools and options")?;
    let now = unix_now();
    let (tables, restored) = shared.restore(replay.records, now, shards);
    let mut logs = Vec::new();
    for (i, table) in tables.iter().enumerate() {
        let mut log = LeaseLog::open(&dir, i as u32, replay.max_seq + 1)
            .with_context(|| format!("opening lease log {i} in {}", dir.display()))?;
        for (key, lease) in table.iter() {
            log.append(key, lease);
        }
        log.commit().context("rewriting restored leases")?;
        logs.push(log);
    }
    provd_lease::remove_stale_shards(&dir, shards).context("removing old shard files")?;
    for (log, table) in logs.iter_mut().zip(&tables) {
        log.compact(table).context("compacting restored leases")?;
    }
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
        let view = Arc::new(provd_devices::DeviceView::new());
        view.restore(tables.iter().flat_map(|t| t.iter().map(|(_, l)| l)), now);
        view
    });
    let generated = match (&devices, &shared.policy.tftp) {
        (Some(view), Some(_)) => Some(Arc::new(tftp::Generated::new(Arc::new(
            provd_files::Generator::new(&shared.policy, Arc::clone(view))
                .context("loading config-file templates")?,
        )))),
        _ => None,
    };

    let chosen = fastpath::choose(&shared.policy, &settings, shards)?;
    let path_taken = chosen.path;
    let steering = chosen.steering.clone();
    let shutdown = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGTERM, signal_hook::consts::SIGINT] {
        signal_hook::flag::register(sig, Arc::clone(&shutdown))?;
    }

    // The PacketCable role: DHCP workers report MTA boots to it, it pins the files it hashed.
    let mut observers: Vec<Arc<dyn provd_lease::LeaseObserver>> = Vec::new();
    if let Some(view) = &devices {
        observers.push(Arc::clone(view) as Arc<dyn provd_lease::LeaseObserver>);
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
            let (service, observer) = mta::start(
                m,
                Arc::new(shared.policy.clone()),
                Arc::clone(g.generator()),
                Arc::clone(view),
                host,
                t.enforce,
                Arc::clone(&shutdown),
            )?;
            g.notify_mta(service.to_mta.clone());
            observers.push(Arc::new(observer));
            tracing::info!(listen = %service.notify_addr, tftp = %host, "MTA provisioning ready");
            Some(service)
        }
        _ => None,
    };
    let observer: Option<Arc<dyn provd_lease::LeaseObserver>> = match observers.len() {
        0 => None,
        1 => observers.pop(),
        _ => Some(Arc::new(mta::Fanout(observers))),
    };
    let mut counters = Vec::new();
    let mut handles = Vec::new();
    for (i, ((table, log), io)) in tables.into_iter().zip(logs).zip(chosen.ios).enumerate() {
        let shard = Shard::new(Arc::clone(&shared), table, i as u32, shards);
        counters.push(shard.counters());
        let worker = Worker {
            index: i as u32,
            shards,
            shard,
            log,
            io,
            settings: settings.clone(),
            observer: observer.clone(),
        };
        let stop = Arc::clone(&shutdown);
        handles.push(
            std::thread::Builder::new()
                .name(format!("provd-shard-{i}"))
                .spawn(move || worker.run(&stop))?,
        );
    }
    let tftp_handle = match (&shared.policy.tftp, &generated) {
        (Some(t), Some(g)) => Some(tftp::start(
            t,
            mta.as_ref().map(|m| Arc::clone(&m.pinned)),
            Arc::clone(g),
            Arc::clone(&shutdown),
        )?),
        _ => None,
    };
    if let (Some(h), Some(s)) = (&tftp_handle, &steering) {
        let base = provd_common::SteerConfig {
            shards,
            dhcp_port: settings.port,
            tftp_port: shared.policy.tftp.as_ref().map_or(0, |t| t.port),
            ..Default::default()
        };
        fastpath::set_tftp_ports(s, base, h.transfer_ports());
    }
    if let Some(h) = &tftp_handle {
        let t = shared.policy.tftp.as_ref().map(|t| t.root.clone());
        tracing::info!(listen = %h.local_addr(), transfer_ports = ?h.transfer_ports(), root = ?t.flatten(), "TFTP ready");
    }
    // The roles in the one shape (provd_role::Role), stopped together after the DHCP workers.
    let mut roles = provd_role::RoleSet::default();
    let syslog_store = match (&shared.policy.syslog, &devices) {
        (Some(s), Some(view)) => {
            let role = provd_syslog::start(s, Arc::clone(view), Arc::clone(&shutdown))?;
            let store = Arc::clone(role.store());
            roles.push(Box::new(role));
            Some(store)
        }
        _ => None,
    };
    if let Some(t) = &shared.policy.time {
        roles.push(Box::new(provd_tod::start(t, Arc::clone(&shutdown))?));
    }
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
        syslog_store,
        mta.as_ref().map(|m| m.to_mta.clone()),
        steering.clone(),
        http_role.as_ref().map(|r| Arc::clone(&r.httpd)),
        Arc::clone(&shutdown),
    )?;
    tracing::info!(
        path = path_taken.as_str(),
        workers = shards,
        bind = %settings.bind,
        port = settings.port,
        why = %chosen.why,
        "provd ready"
    );
    // A plain line too, independent of the log format, for scripts waiting on readiness: every
    // listener is bound by now.
    match &tftp_handle {
        Some(h) => eprintln!(
            "provd ready path={} workers={shards}{} tftp={}",
            path_taken.as_str(),
            if null_responder { " null" } else { "" },
            h.local_addr()
        ),
        None => eprintln!(
            "provd ready path={} workers={shards}{}",
            path_taken.as_str(),
            if null_responder { " null" } else { "" }
        ),
    }

    let total = |counters: &[Arc<provd_engine::Counters>]| {
        let mut s = Snapshot::default();
        counters.iter().for_each(|c| s.add(&c.snapshot()));
        s
    };
    let mut last = Instant::now();
    while !shutdown.load(Ordering::Relaxed) {
        std::thread::sleep(Duration::from_millis(100));
        if handles.iter().any(|h| h.is_finished()) || control_plane.any_finished() {
            break;
        }
        if stats_every > 0 && last.elapsed() >= Duration::from_secs(stats_every) {
            last = Instant::now();
            log_counters(&total(&counters));
            log_tftp(tftp_handle.as_ref(), generated.as_deref());
            log_xdp(steering.as_deref());
        }
    }
    shutdown.store(true, Ordering::Relaxed);
    let mut failed = false;
    for (i, h) in handles.into_iter().enumerate() {
        match h.join() {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                tracing::error!(shard = i, error = %e, "worker failed");
                failed = true;
            }
            Err(_) => {
                tracing::error!(shard = i, "worker panicked");
                failed = true;
            }
        }
    }
    roles.log_counters();
    if !roles.stop(ROLE_GRACE) {
        failed = true;
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
    if let Some(m) = mta
        && m.thread.join().is_err()
    {
        tracing::error!("MTA thread panicked");
        failed = true;
    }
    if let Some(h) = tftp_handle {
        log_tftp(Some(&h), generated.as_deref());
        if let Err(e) = h.join() {
            tracing::error!(error = %e, "TFTP worker failed");
            failed = true;
        }
    }
    log_counters(&total(&counters));
    log_xdp(steering.as_deref());
    if failed {
        bail!("a worker failed; see the log above");
    }
    tracing::info!("provd stopped");
    Ok(ExitCode::SUCCESS)
}

fn log_tftp(h: Option<&provd_tftpd::TftpHandle>, g: Option<&tftp::Generated>) {
    let (Some(h), Some(g)) = (h, g) else { return };
    let c = &g.counters;
    tracing::info!(
        transfers = h.transfers(),
        counters = ?h.counters(),
        io = ?h.io_counters(),
        generated = c.served.load(Ordering::Relaxed),
        enforce_refused = c.refused.load(Ordering::Relaxed),
        generate_failed = c.failed.load(Ordering::Relaxed),
        "tftp counters"
    );
}

fn log_xdp(s: Option<&std::sync::Mutex<provd_xdp::Steering>>) {
    if let Some(Ok(s)) = s.map(|s| s.lock()) {
        tracing::info!(iface = s.iface(), mode = s.mode().as_str(), counters = %s.counters_text(), "xdp counters");
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
