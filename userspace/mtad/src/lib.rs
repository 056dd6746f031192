//! provd-mtad: the PacketCable provisioning role as `provd serve` runs it. One thread owns the
//! sans-IO [`provd_mta::Engine`] and two batched UDP sockets of provd-udp (notifications in on
//! 162; GET/SET out from an ephemeral port), and glues it to the rest of the server:
//!
//! * DHCP workers report MTA boots ([`MtaObserver`]) → `Engine::on_dhcp` (MTA-1..4);
//! * an enrollment asks for the file → the class's template renders it, its bytes are pinned
//!   ([`Pinned`]) so the TFTP server serves exactly what was hashed, and the engine SETs the URL
//!   and SHA-1 (MTA-18/19);
//! * the TFTP server reports each fetch of an MTA file ([`MtaRole::file_served`]) →
//!   `Engine::on_file_fetched` (MTA-22/23);
//! * the control socket asks for a device's record ([`Command::Status`], `provd mta status`).
//!
//! ```text
//!   DHCP workers ─ MtaObserver ─┐                        ┌─ UDP 162 (INFORMs, their Responses)
//!   TFTP (Pinned, Generated) ───┼─ Command queue ─ worker ┤
//!   control socket ─────────────┘     (provd-mta Engine)  └─ UDP ephemeral (GET/SET, Responses)
//! ```
//!
//! The worker polls both sockets with the engine's next deadline as timeout (capped, so a
//! command or the shutdown flag is noticed quickly), drains each with `recvmmsg` and sends what
//! the engine emits with `sendmmsg`: a fleet enrolling at once is a burst of INFORMs.

mod worker;

use std::net::{Ipv4Addr, SocketAddrV4};
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context as _, Result};
use crossbeam_channel::{Sender, TrySendError};
use dashmap::DashMap;
use provd_config::{MtaSettings, Policy, ProvisioningFlow};
use provd_devices::DeviceView;
use provd_files::Generator;
use provd_lease::LeaseObserver;
use provd_mta::{Engine, Flow, Mac};
use provd_role::{Counters, Role, WorkerSet, clock};
use provd_tftpd::{FileContent, FileSource, OpenError, TransferRequest};
use provd_udp::{Options, UdpSocket};

use crate::worker::{Stats, Worker};

/// What the rest of the server tells the MTA thread.
#[derive(Debug)]
pub enum Command {
    /// A DHCP ACK that (re)starts an MTA's provisioning.
    Dhcp(provd_mta::Binding),
    /// The MTA fetched its config file.
    Fetched([u8; 6]),
    /// The record of a device as JSON, or `None`.
    Status([u8; 6], Sender<Option<String>>),
}

/// Bounded: a flood of boots must not grow memory; what does not fit is counted and dropped
/// (the MTA's own retries and the provisioning timer recover).
const QUEUE: usize = 65_536;

fn flow_of(f: ProvisioningFlow) -> Flow {
    match f {
        ProvisioningFlow::Basic1 => Flow::Basic1,
        ProvisioningFlow::Basic2 => Flow::Basic2,
        ProvisioningFlow::Hybrid1 => Flow::Hybrid1,
        ProvisioningFlow::Hybrid2 => Flow::Hybrid2,
    }
}

/// Forwards the boots of devices whose class hands out a provisioning flow (122.6).
#[derive(Debug)]
pub struct MtaObserver {
    policy: Arc<Policy>,
    to_mta: Sender<Command>,
}

impl LeaseObserver for MtaObserver {
    fn record(&self, _lease: &provd_lease::Lease) {}

    fn bind(&self, b: provd_lease::Binding) {
        if !b.restart {
            return;
        }
        let Some(class) = b.class.map(|c| self.policy.class(c)) else {
            return;
        };
        let Some(provd_config::Realm::Flow(flow)) = class.cablelabs.realm else {
            return;
        };
        let binding = provd_mta::Binding {
            mac: Mac(b.mac),
            addr: b.addr,
            giaddr: b.giaddr,
            flow: flow_of(flow),
            file_name: class.boot_file.as_ref().map(|f| f.render(&b.mac)),
            provisioning_timer: class
                .cablelabs
                .provisioning_timer
                .map(|m| Duration::from_secs(u64::from(m) * 60)),
        };
        if let Err(TrySendError::Full(_)) = self.to_mta.try_send(Command::Dhcp(binding)) {
            tracing::warn!(mac = %Mac(b.mac), "MTA queue full: boot not reported");
        }
    }
}

/// Files whose hash was SET on an MTA: served exactly as hashed, whatever the template does
/// meanwhile, until the flow ends. First in the TFTP chain.
#[derive(Debug)]
pub struct Pinned {
    files: DashMap<String, (FileContent, [u8; 6])>,
    /// The name pinned for each MTA, so a flow's end unpins without a scan.
    names: DashMap<[u8; 6], String>,
    to_mta: Sender<Command>,
    devices: Arc<DeviceView>,
    enforce: bool,
}

impl Pinned {
    fn pin(&self, name: String, content: FileContent, mac: [u8; 6]) {
        if let Some(old) = self.names.insert(mac, name.clone())
            && old != name
        {
            self.files.remove(&old);
        }
        self.files.insert(name, (content, mac));
    }

    fn unpin(&self, mac: [u8; 6]) {
        if let Some((_, name)) = self.names.remove(&mac) {
            self.files.remove_if(&name, |_, (_, m)| *m == mac);
        }
    }

    /// TFTP-enforce, as for every generated file: only the address leased to the MTA.
    fn enforce(&self, mac: [u8; 6], peer: Ipv4Addr) -> Result<(), provd_tftpd::Refusal> {
        if !self.enforce {
            return Ok(());
        }
        self.devices
            .enforce(&mac, peer, clock::unix_secs_u32())
            .map_err(|_| {
                provd_tftpd::Refusal::new(
                    provd_tftpd::ErrorCode::ACCESS_VIOLATION,
                    "Access violation",
                )
            })
    }
}

impl FileSource for Pinned {
    fn open(&self, req: &TransferRequest<'_>) -> Result<FileContent, OpenError> {
        let name = req.filename.strip_prefix('/').unwrap_or(req.filename);
        let Some(entry) = self.files.get(name) else {
            return Err(OpenError::NotMine);
        };
        let (content, mac) = entry.value().clone();
        drop(entry);
        if let Err(e) = self.enforce(mac, *req.peer.ip()) {
            return Err(OpenError::Refused(e));
        }
        let _ = self.to_mta.try_send(Command::Fetched(mac));
        Ok(content)
    }
}

/// What the role reads besides its settings: the policy, the file generator and the device
/// view it renders from, and where the MTAs fetch their files.
#[derive(Clone)]
pub struct Context {
    pub policy: Arc<Policy>,
    pub generator: Arc<Generator>,
    pub devices: Arc<DeviceView>,
    /// The TFTP server's address in the file URL SET on each MTA.
    pub tftp_host: Ipv4Addr,
    /// TFTP-enforce for pinned files, as `[tftp] enforce` says for generated ones.
    pub enforce: bool,
    /// The MTAs' SNMP agent port, where GETs and SETs go: 161 (tests use another).
    pub agent_port: u16,
    /// A notification read after waiting longer than this is dropped unanswered:
    /// [`MAX_NOTIFICATION_AGE`] (tests use another).
    pub max_notification_age: std::time::Duration,
    /// Told of each flow milestone (`need-file`, `completed`, `failed`, `timed-out`) with the
    /// MTA's record as JSON: the device timeline, and the store that keeps records across
    /// restarts. Called on the MTA thread: it must not block.
    pub on_record: Option<RecordHook>,
    /// Where `mta MAC` looks when the engine holds no record for the MTA: the record kept
    /// from before a restart (the store). Called on the query thread; it may block briefly.
    pub recall: Option<RecallHook>,
}

impl std::fmt::Debug for Context {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Context")
            .field("tftp_host", &self.tftp_host)
            .field("enforce", &self.enforce)
            .field("agent_port", &self.agent_port)
            .field("on_record", &self.on_record.is_some())
            .finish_non_exhaustive()
    }
}

/// See [`Context::on_record`].
pub type RecordHook = Arc<dyn Fn([u8; 6], &str, String) + Send + Sync>;

/// See [`Context::recall`]: the MTA's last stored record as JSON, if any.
pub type RecallHook = Arc<dyn Fn([u8; 6]) -> Option<String> + Send + Sync>;

/// [`RecallHook`] in the role, which is `Debug`.
#[derive(Clone)]
struct Recall(Option<RecallHook>);

impl std::fmt::Debug for Recall {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Recall({})",
            if self.0.is_some() { "set" } else { "unset" }
        )
    }
}

impl Context {
    /// A context with the MTAs' agents on UDP 161.
    pub fn new(
        policy: Arc<Policy>,
        generator: Arc<Generator>,
        devices: Arc<DeviceView>,
        tftp_host: Ipv4Addr,
        enforce: bool,
    ) -> Context {
        Context {
            policy,
            generator,
            devices,
            tftp_host,
            enforce,
            agent_port: 161,
            max_notification_age: MAX_NOTIFICATION_AGE,
            on_record: None,
            recall: None,
        }
    }
}

/// The running role: its queue, what the TFTP chain needs, and its thread.
#[derive(Debug)]
pub struct MtaRole {
    to_mta: Sender<Command>,
    pinned: Arc<Pinned>,
    notify_addr: SocketAddrV4,
    request_addr: SocketAddrV4,
    stats: Arc<Mutex<Stats>>,
    recall: Recall,
    workers: WorkerSet,
}

/// Socket buffers with room for a fleet's burst: with the default 208 KiB a few hundred MTAs
/// enrolling at once overflow them and every dropped INFORM costs its MTA a 1 s retransmission.
fn socket_options() -> Options {
    Options {
        // Replies leave from the bound address as the kernel picks it; nothing needs the
        // local address of an arrival.
        pktinfo: false,
        // Notifications that waited past MAX_NOTIFICATION_AGE are dropped unanswered.
        timestamps: true,
        // A region's MTAs enroll within seconds of their ACKs and resend every second: 16 MiB
        // (about 12,000 INFORMs) overflowed by 430,000 datagrams in the 200,000-device storm
        // bench, each a flow set back. Past MAX_NOTIFICATION_AGE they are dropped anyway.
        recv_buffer: 64 << 20,
        ..Options::default()
    }
}

/// A notification (INFORM) that waited longer than this in the notification socket's queue is
/// dropped unanswered (issue 17): its MTA has resent it (SNMP retries after about a second) or
/// moved on, and answering it would start or repeat a flow step for a copy nobody waits on,
/// while the fresh ones behind it wait longer still.
pub const MAX_NOTIFICATION_AGE: std::time::Duration = std::time::Duration::from_secs(2);

/// Binds the sockets and starts the thread; a port in use is an error here, before any
/// thread runs. Returns the role and the observer the DHCP workers report boots to.
pub fn start(
    settings: &MtaSettings,
    ctx: Context,
    shutdown: Arc<AtomicBool>,
) -> Result<(MtaRole, MtaObserver)> {
    let notify = UdpSocket::bind(
        SocketAddrV4::new(settings.bind, settings.port),
        &socket_options(),
    )
    .with_context(|| {
        format!(
            "binding SNMP notifications {}:{}",
            settings.bind, settings.port
        )
    })?;
    let requests = UdpSocket::bind(SocketAddrV4::new(settings.bind, 0), &socket_options())
        .context("binding the SNMP request socket")?;
    let notify_addr = notify.local_addr()?;
    let request_addr = requests.local_addr()?;
    let config = provd_mta::Config {
        inform_communities: settings.inform_communities.clone(),
        set_community: settings.set_community.clone(),
        get_community: settings.get_community.clone(),
        notify_port: notify_addr.port(),
        agent_port: ctx.agent_port,
        get_capabilities: settings.get_capabilities,
        max_flows: settings.max_flows,
        accept_unknown_dhcp: settings.accept_unknown_dhcp,
        ..provd_mta::Config::default()
    };
    let mut engine = Engine::new(config).map_err(|e| anyhow::anyhow!("mta: {e}"))?;
    // An enrollment acts only from the address the DHCP workers leased to its MAC: their
    // view, which survives what the engine's records do not (a restart mid-flow).
    let leases = Arc::clone(&ctx.devices);
    engine.set_lease_lookup(move |mac| leases.get(&mac.0, clock::unix_secs_u32()).map(|f| f.addr));
    let (to_mta, from_rest) = crossbeam_channel::bounded(QUEUE);
    let pinned = Arc::new(Pinned {
        files: DashMap::new(),
        names: DashMap::new(),
        to_mta: to_mta.clone(),
        devices: Arc::clone(&ctx.devices),
        enforce: ctx.enforce,
    });
    let observer = MtaObserver {
        policy: Arc::clone(&ctx.policy),
        to_mta: to_mta.clone(),
    };
    let stats = Arc::new(Mutex::new(Stats::default()));
    let recall = Recall(ctx.recall.clone());
    let worker = Worker::new(
        engine,
        notify,
        requests,
        from_rest,
        ctx,
        Arc::clone(&pinned),
        Arc::clone(&stats),
    );
    let mut workers = WorkerSet::new("MTA");
    workers
        .spawn("provd-mta".into(), move || worker.run(&shutdown))
        .context("starting the MTA thread")?;
    Ok((
        MtaRole {
            to_mta,
            pinned,
            notify_addr,
            request_addr,
            stats,
            recall,
            workers,
        },
        observer,
    ))
}

impl MtaRole {
    /// Where INFORMs arrive (the port actually bound).
    pub fn notify_addr(&self) -> SocketAddrV4 {
        self.notify_addr
    }

    /// Where the GETs and SETs leave from, and their Responses arrive.
    pub fn request_addr(&self) -> SocketAddrV4 {
        self.request_addr
    }

    /// The queue into the MTA thread (the control socket asks [`Command::Status`] here).
    pub fn commands(&self) -> Sender<Command> {
        self.to_mta.clone()
    }

    /// The pinned files: first in the TFTP server's chain.
    pub fn pinned(&self) -> Arc<Pinned> {
        Arc::clone(&self.pinned)
    }

    /// A hook for the TFTP server: tells this role that the MTA with that MAC fetched its
    /// (generated) file. Never blocks: a full queue drops the report.
    pub fn file_served(&self) -> Box<dyn Fn([u8; 6]) + Send + Sync> {
        let tx = self.to_mta.clone();
        Box::new(move |mac| {
            let _ = tx.try_send(Command::Fetched(mac));
        })
    }

    /// The record of `mac` as JSON, asked of the MTA thread; `None` if it has none or does not
    /// answer within `wait`.
    pub fn status(&self, mac: [u8; 6], wait: Duration) -> Option<String> {
        let (tx, rx) = crossbeam_channel::bounded(1);
        self.to_mta.send(Command::Status(mac, tx)).ok()?;
        rx.recv_timeout(wait).ok().flatten()
    }

    fn lock_stats(&self) -> std::sync::MutexGuard<'_, Stats> {
        self.stats.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl Role for MtaRole {
    fn name(&self) -> &'static str {
        "mta"
    }

    /// `mta MAC`: the MTA's provisioning record.
    fn query(&self, words: &[&str]) -> Option<String> {
        let ["mta", who] = words else { return None };
        Some(match provd_role::query::Who::parse(who) {
            Some(provd_role::query::Who::Mac(mac)) => self
                .status(mac, Duration::from_secs(2))
                .or_else(|| self.recall.0.as_ref().and_then(|r| r(mac)))
                .unwrap_or_else(|| {
                    provd_role::query::error_json(format!("no provisioning record for {who}"))
                }),
            _ => provd_role::query::error_json(format!("not a MAC address: {who}")),
        })
    }

    fn listening(&self) -> String {
        format!("udp={} requests={}", self.notify_addr, self.request_addr)
    }

    /// Records kept, the engine's counters (`flows_active` among them; status INFORMs by
    /// reported state and undecodable datagrams by kind where not zero), and the sockets'
    /// counts; as of the thread's last loop turn.
    fn counters(&self) -> Counters {
        self.lock_stats().counters()
    }

    fn metrics(&self, out: &mut dyn provd_role::metrics::MetricsSink) {
        self.lock_stats().metrics(out);
    }

    fn finished(&self) -> bool {
        self.workers.any_finished()
    }

    fn stop(self: Box<Self>, grace: Duration) -> anyhow::Result<()> {
        let result = self.workers.join_within(grace).context("MTA thread failed");
        let line: Vec<String> = self
            .stats
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .counters()
            .iter()
            .filter(|(_, v)| *v > 0)
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        tracing::info!(counters = %line.join(" "), "mta counters");
        result
    }
}
