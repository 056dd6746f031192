//! provd-cpe-sim: simulated TR-069 CPEs speaking real CWMP over HTTP/1.1 to an ACS.
//!
//! * `run`: N devices from a genieacs-sim data-model CSV, each with its own serial number,
//!   connection-request ports and session loop (see `device.rs`); JSON lines on stdout.
//! * `load`: the ACS benchmark's generator: many keep-alive connections, each running complete
//!   Inform sessions (Inform, InformResponse, empty POST, 204) for devices in turn, bounded in
//!   count and time; prints one `sessions=` line.

mod device;
mod http;
mod load;
mod model;

use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "provd-cpe-sim", about = "Simulated TR-069 CPEs")]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Simulate devices until --seconds have passed.
    Run {
        /// The ACS URL devices start with (ManagementServer.URL).
        #[arg(long)]
        acs: String,
        /// genieacs-sim CSV data model.
        #[arg(long)]
        model: std::path::PathBuf,
        #[arg(long, default_value_t = 1)]
        count: u32,
        /// Serial numbers are PREFIX0000, PREFIX0001, ...
        #[arg(long, default_value = "SIM")]
        serial_prefix: String,
        #[arg(long, default_value = "cpe")]
        acs_user: String,
        #[arg(long, default_value = "")]
        acs_pass: String,
        #[arg(long, default_value = "acs")]
        cr_user: String,
        #[arg(long, default_value = "")]
        cr_pass: String,
        /// Address the ACS reaches the connection-request listeners at.
        #[arg(long, default_value = "127.0.0.1")]
        cr_host: String,
        /// Device i listens for HTTP connection requests on CR_PORT + i.
        #[arg(long)]
        cr_port: u16,
        /// Device i listens for UDP connection requests on UDP_PORT + i and sends STUN from it.
        #[arg(long)]
        udp_port: Option<u16>,
        /// The ACS's STUN server (host:port).
        #[arg(long)]
        stun: Option<std::net::SocketAddr>,
        /// CWMP namespace minor version: 0, 1 or 2 (urn:dslforum-org:cwmp-1-N).
        #[arg(long, default_value_t = 2)]
        cwmp: u8,
        /// Initial PeriodicInformInterval (seconds).
        #[arg(long)]
        periodic: Option<u32>,
        /// A local change NAME=VALUE made --change-after seconds after start (active
        /// notification on NAME makes it a "4 VALUE CHANGE" session at once).
        #[arg(long)]
        change: Option<String>,
        #[arg(long, default_value_t = 5)]
        change_after: u64,
        #[arg(long, default_value_t = 60)]
        seconds: u64,
    },
    /// Load generator: complete Inform sessions as fast as the ACS takes them.
    Load(load::Args),
}

fn main() -> Result<()> {
    let cli = Cli::parse();
    match cli.cmd {
        Cmd::Load(a) => load::run(a),
        Cmd::Run {
            acs,
            model,
            count,
            serial_prefix,
            acs_user,
            acs_pass,
            cr_user,
            cr_pass,
            cr_host,
            cr_port,
            udp_port,
            stun,
            cwmp,
            periodic,
            change,
            change_after,
            seconds,
        } => {
            let change = match change {
                Some(c) => {
                    let (n, v) = c.split_once('=').context("--change NAME=VALUE")?;
                    Some((n.to_owned(), v.to_owned(), change_after))
                }
                None => None,
            };
            let csv =
                std::fs::read_to_string(&model).with_context(|| model.display().to_string())?;
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()?;
            rt.block_on(async move {
                let deadline = tokio::time::Instant::now() + Duration::from_secs(seconds);
                let mut tasks = Vec::new();
                for i in 0..count {
                    let serial = format!("{serial_prefix}{i:04}");
                    let mut m = model::Model::load(&csv, &serial)?;
                    m.set_local("ManagementServer.URL", &acs);
                    let d = Arc::new(device::Device {
                        model: tokio::sync::Mutex::new(m),
                        opts: device::Options {
                            acs_user: acs_user.clone(),
                            acs_pass: acs_pass.clone(),
                            cr_user: cr_user.clone(),
                            cr_pass: cr_pass.clone(),
                            cr_host: cr_host.clone(),
                            cr_port: cr_port + i as u16,
                            udp_port: udp_port.map(|p| p + i as u16),
                            stun,
                            version: provd_cwmp::Version(cwmp.min(4)),
                            periodic,
                            change: change.clone(),
                        },
                        wake: tokio::sync::Notify::new(),
                        woken_by: std::sync::Mutex::new(None),
                    });
                    tasks.push(tokio::spawn(d.run(deadline)));
                }
                for t in tasks {
                    t.await??;
                }
                anyhow::Ok(())
            })
        }
    }
}
