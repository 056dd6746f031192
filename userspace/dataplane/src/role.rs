//! The DHCP role: one worker per shard on the I/O path [`choose`](crate::choose) settled on,
//! driven by `serve` through [`provd_role::Role`] like every other role.

use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context, Result};
use provd_common::SteerConfig;
use provd_engine::{Counters, Shard, Shared, Snapshot};
use provd_lease::{LeaseLog, LeaseObserver, LeaseTable};
use provd_role::{Health, Role, WorkerSet};
use provd_xdp::Steering;

use crate::choose::{self, Chosen};
use crate::{CommitStats, IoPath, PolicySwap, ShardCommand, Worker, WorkerSettings};
use provd_role::metrics::MetricsSink;

/// The running DHCP workers.
#[derive(Debug)]
pub struct DhcpRole {
    path: IoPath,
    why: String,
    shards: u32,
    settings: WorkerSettings,
    counters: Vec<Arc<Counters>>,
    /// Per shard, beside `counters`: for the metrics.
    timings: Vec<(Arc<Counters>, Arc<CommitStats>)>,
    steering: Option<Arc<Mutex<Steering>>>,
    workers: WorkerSet,
    swap: Arc<PolicySwap>,
    /// Per shard: where an operator's commands go.
    commands: ShardCommands,
}

/// Where an operator's requests to the DHCP shards go (cheap to clone; outlives nothing: once
/// the workers stop, requests fail).
#[derive(Debug, Clone)]
pub struct ShardCommands {
    to: Vec<crossbeam_channel::Sender<ShardCommand>>,
    shards: u32,
}

/// What the DHCP role starts from: the engine's shared state and, per shard, the table replay
/// restored and the log [`provd_lease::reopen`] opened.
#[derive(Debug)]
pub struct DhcpState {
    pub shared: Arc<Shared>,
    pub tables: Vec<LeaseTable>,
    pub logs: Vec<LeaseLog>,
}

impl DhcpRole {
    /// Opens the I/O path (`server.io`), then starts one worker per shard. `observer` is told of
    /// lease records and bindings as they are written.
    pub fn start(
        state: DhcpState,
        settings: WorkerSettings,
        observer: Option<Arc<dyn LeaseObserver>>,
        shutdown: &Arc<AtomicBool>,
    ) -> Result<DhcpRole> {
        let DhcpState {
            shared,
            tables,
            logs,
        } = state;
        let shards = u32::try_from(tables.len()).context("shard count")?;
        let Chosen {
            path,
            why,
            ios,
            steering,
        } = choose::choose(&shared.policy, &settings, shards)?;
        let mut counters = Vec::new();
        let mut timings = Vec::new();
        let mut workers = WorkerSet::new("DHCP");
        let swap = Arc::new(PolicySwap::new(Arc::clone(&shared), shards));
        let mut commands = Vec::new();
        for (i, ((table, log), io)) in tables.into_iter().zip(logs).zip(ios).enumerate() {
            let index = u32::try_from(i).context("shard index")?;
            let shard = Shard::new(Arc::clone(&shared), table, index, shards);
            counters.push(shard.counters());
            let shard_timings = Arc::new(CommitStats::default());
            timings.push((shard.counters(), Arc::clone(&shard_timings)));
            let worker = Worker {
                timings: shard_timings,
                index,
                shards,
                shard,
                log,
                io,
                settings: settings.clone(),
                observer: observer.clone(),
                swap: Arc::clone(&swap),
                commands: {
                    // A few: operators' requests are rare; a full queue says "busy".
                    let (tx, rx) = crossbeam_channel::bounded(64);
                    commands.push(tx);
                    rx
                },
            };
            let stop = Arc::clone(shutdown);
            workers.spawn(format!("provd-shard-{i}"), move || worker.run(&stop))?;
        }
        Ok(DhcpRole {
            path,
            why,
            shards,
            settings,
            counters,
            timings,
            steering,
            workers,
            swap,
            commands: ShardCommands {
                to: commands,
                shards,
            },
        })
    }

    /// Where an operator's requests to the shards go.
    pub fn commands(&self) -> ShardCommands {
        self.commands.clone()
    }

    /// Where a config reload hands the workers their new policy.
    pub fn swap(&self) -> &Arc<PolicySwap> {
        &self.swap
    }

    /// The I/O path the workers run on.
    pub fn path(&self) -> IoPath {
        self.path
    }

    /// Why that path, and why not the faster ones.
    pub fn why(&self) -> &str {
        &self.why
    }

    pub fn shards(&self) -> u32 {
        self.shards
    }

    /// The attached XDP program, when the path is XDP.
    pub fn steering(&self) -> Option<&Arc<Mutex<Steering>>> {
        self.steering.as_ref()
    }

    /// Every shard's counters added up.
    pub fn snapshot(&self) -> Snapshot {
        let mut s = Snapshot::default();
        self.counters.iter().for_each(|c| s.add(&c.snapshot()));
        s
    }

    /// Tells the XDP program (if the path is XDP) which UDP ports are TFTP's, so that their
    /// datagrams go to the kernel rather than being taken for DHCP.
    pub fn steer_tftp(&self, tftp_port: u16, transfer_ports: &[u16]) {
        let Some(steering) = &self.steering else {
            return;
        };
        let base = SteerConfig {
            shards: self.shards,
            dhcp_port: self.settings.port,
            tftp_port,
            ..Default::default()
        };
        choose::set_tftp_ports(steering, base, transfer_ports);
    }

    fn xdp_json(&self) -> String {
        let Some(steering) = &self.steering else {
            return provd_role::query::error_json("this server is not on the XDP path");
        };
        let Ok(s) = steering.lock() else {
            return provd_role::query::error_json("XDP state poisoned");
        };
        match s.counters() {
            Ok(c) => {
                let counters: serde_json::Map<String, serde_json::Value> =
                    provd_common::Verdict::ALL
                        .iter()
                        .zip(c)
                        .map(|(v, n)| (v.label().to_string(), n.into()))
                        .collect();
                serde_json::json!({
                    "iface": s.iface(),
                    "mode": s.mode().as_str(),
                    "counters": counters,
                })
                .to_string()
            }
            Err(e) => provd_role::query::error_json(e),
        }
    }
}

impl Role for DhcpRole {
    fn name(&self) -> &'static str {
        "dhcp"
    }

    fn listening(&self) -> String {
        format!(
            "udp={}:{} path={} workers={}",
            self.settings.bind,
            self.settings.port,
            self.path.as_str(),
            self.shards
        )
    }

    fn counters(&self) -> provd_role::Counters {
        self.snapshot().entries()
    }

    /// The families of [`crate::metrics`], the I/O path as `provd_dhcp_io_path_info`, and the
    /// XDP program's per-verdict counters when the path is XDP (read from its BPF map under
    /// the steering lock, which no packet path takes).
    fn metrics(&self, out: &mut dyn MetricsSink) {
        // The policy the workers decide with now (a reload changes the pools).
        crate::metrics::write(&self.swap.current(), &self.timings, out);
        out.gauge(
            "provd_dhcp_io_path_info",
            "The I/O path the DHCP workers run on (value 1), and how many shards.",
            &[
                ("path", self.path.as_str()),
                ("shards", &self.shards.to_string()),
            ],
            1.0,
        );
        let Some(Ok(s)) = self.steering.as_ref().map(|s| s.lock()) else {
            return;
        };
        if let Ok(c) = s.counters() {
            for (v, n) in provd_common::Verdict::ALL.iter().zip(c) {
                out.counter(
                    "provd_xdp_packets_total",
                    "Packets the XDP program saw, by verdict.",
                    &[("verdict", v.label())],
                    n,
                );
            }
        }
    }

    /// Degraded while any shard's lease log has lost durability (a full or failing disk): that
    /// shard answers no DHCP until its worker recovers the log.
    fn health(&self) -> Health {
        let lost: Vec<String> = self
            .timings
            .iter()
            .enumerate()
            .filter_map(|(i, (_, s))| {
                s.durability
                    .lost_since()
                    .map(|(at, why)| format!("shard {i} lease log not durable since {at}: {why}"))
            })
            .collect();
        if lost.is_empty() {
            Health::Serving
        } else {
            Health::Degraded(lost.join("; "))
        }
    }

    fn finished(&self) -> bool {
        self.workers.any_finished()
    }

    fn query(&self, words: &[&str]) -> Option<String> {
        (words == ["xdp"]).then(|| self.xdp_json())
    }

    fn stop(self: Box<Self>, grace: Duration) -> Result<()> {
        // Each worker makes what it wrote durable before it returns.
        let DhcpRole {
            workers, steering, ..
        } = *self;
        let r = workers.join_within(grace).context("DHCP workers");
        if let Some(Ok(s)) = steering.as_ref().map(|s| s.lock()) {
            tracing::info!(iface = s.iface(), mode = s.mode().as_str(), counters = %s.counters_text(), "xdp counters");
        }
        r
    }
}

impl ShardCommands {
    /// Ends `mac`'s bound lease as a DHCPRELEASE would, on the shard that owns it; returns once
    /// the release record is durable: the address, or `None` if `mac` holds no bound lease.
    pub fn release(
        &self,
        mac: [u8; 6],
        wait: Duration,
    ) -> Result<Option<std::net::Ipv4Addr>, String> {
        let shard = provd_common::shard_of(&mac, self.shards);
        let to = self
            .to
            .get(shard as usize)
            .ok_or_else(|| format!("no shard {shard}"))?;
        let (tx, rx) = crossbeam_channel::bounded(1);
        to.try_send(ShardCommand::Release { mac, reply: tx })
            .map_err(|_| format!("shard {shard} is busy; try again"))?;
        rx.recv_timeout(wait).map_err(|_| {
            format!(
                "shard {shard} did not answer within {} ms",
                wait.as_millis()
            )
        })?
    }
}
