//! The provd binary: the command line and the wiring. `provd serve` ([`serve`]) builds the
//! roles the config names from their own crates; the other commands read files or ask a
//! running server through its query socket.

mod api;
mod bulk;
mod control;
mod docsis_files;
mod serve;
mod systemd;
mod tokens;

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};
use provd_config::{LogFormat, Policy};
use provd_lease::LeaseState;
use provd_role::clock::unix_secs_u32;

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
    Cfg(docsis_files::DocsisFiles),
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
    /// REST API tokens, in the store FILE's config names (works while serve runs).
    #[command(subcommand)]
    Token(tokens::TokenCmd),
    /// Bulk loads: devices into the store, a Kea lease file into the lease log.
    #[command(subcommand)]
    Import(bulk::ImportCmd),
    /// Bulk dumps of the store, in the formats `import` reads.
    #[command(subcommand)]
    Export(bulk::ExportCmd),
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
        Cmd::Token(c) => tokens::run(c),
        Cmd::Cfg(c) => docsis_files::run(c),
        Cmd::Syslog(SyslogCmd::Events { config, device }) => {
            ask(&config, &format!("syslog {device}"))
        }
        Cmd::Mta(MtaCmd::Status { config, mac }) => ask(&config, &format!("mta {mac}")),
        Cmd::XdpStats { config } => ask(&config, "xdp"),
        Cmd::Http(HttpCmd::Status { config, mac }) => ask(&config, &format!("http {mac}")),
        Cmd::Profile(c) => profile_crypt(c),
        Cmd::Import(c) => bulk::import(c),
        Cmd::Export(c) => bulk::export(c),
        Cmd::Serve {
            config,
            stats_every,
            null_responder,
        } => serve::serve(&serve::Options {
            config,
            stats_every,
            null_responder,
        }),
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
            match provd_files::Generator::new(&p, Arc::new(provd_devices::DeviceView::new())) {
                Err(e) => {
                    println!("{e}");
                    eprintln!("{}: template error", path.display());
                    return Ok(ExitCode::FAILURE);
                }
                // A template that parses but cannot render would fail every fetch of its file.
                Ok(g) => {
                    let problems = g.check();
                    if !problems.is_empty() {
                        for p in &problems {
                            println!("{p}");
                        }
                        eprintln!("{}: {} template error(s)", path.display(), problems.len());
                        return Ok(ExitCode::FAILURE);
                    }
                }
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
    print!(
        "{}",
        provd_role::query::ask(&policy.server.lease_dir, request)?
    );
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
