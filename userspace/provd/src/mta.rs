//! The PacketCable provisioning server role as `provd serve` runs it: one thread owning the
//! sans-IO [`provd_mta::Engine`], two UDP sockets (notifications in on 162; GET/SET out from an
//! ephemeral port), and the glue to the rest of the server:
//!
//! * DHCP workers report MTA boots ([`MtaObserver`]) → `Engine::on_dhcp` (MTA-1..4);
//! * an enrollment asks for the file → the class's template renders it, its bytes are pinned
//!   ([`Pinned`]) so the TFTP server serves exactly what was hashed, and the engine SETs the URL
//!   and SHA-1 (MTA-18/19);
//! * the TFTP server reports each fetch of an MTA file → `Engine::on_file_fetched` (MTA-22/23);
//! * the control socket asks for a device's record (`provd mta status`).

use std::net::{Ipv4Addr, SocketAddrV4, UdpSocket};
use std::os::fd::AsRawFd;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result};
use crossbeam_channel::{Receiver, Sender, TrySendError};
use dashmap::DashMap;
use provd_config::{ClassId, ConfigFileKind, MtaSettings, Policy, ProvisioningFlow};
use provd_dataplane::unix_now;
use provd_devices::DeviceView;
use provd_files::Generator;
use provd_lease::{Binding, Lease, LeaseObserver};
use provd_mta::{Engine, Event, Flow, FromPort, Mac, Millis, Outgoing};
use provd_tftpd::{FileContent, FileSource, OpenError, ReadRequest};
use provd_udp::RateLimit;

/// What the rest of the server tells the MTA thread.
#[derive(Debug)]
pub enum Command {
    Dhcp(provd_mta::Binding),
    Fetched([u8; 6]),
    /// The record of a device as JSON, or `None`.
    Status([u8; 6], Sender<Option<String>>),
}

/// Bounded: a flood of boots must not grow memory; what does not fit is counted and dropped
/// (the MTA's own retries and the provisioning timer recover).
const QUEUE: usize = 65_536;

fn now_ms() -> Millis {
    Millis(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64),
    )
}

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
    fn record(&self, _lease: &Lease) {}

    fn bind(&self, b: Binding) {
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

/// Tells every observer.
#[derive(Debug)]
pub struct Fanout(pub Vec<Arc<dyn LeaseObserver>>);

impl LeaseObserver for Fanout {
    fn record(&self, lease: &Lease) {
        self.0.iter().for_each(|o| o.record(lease));
    }

    fn bind(&self, b: Binding) {
        if let Some((last, rest)) = self.0.split_last() {
            rest.iter().for_each(|o| o.bind(b.clone()));
            last.bind(b);
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
}

impl FileSource for Pinned {
    fn open(&self, req: &ReadRequest<'_>) -> Result<FileContent, OpenError> {
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

impl Pinned {
    /// TFTP-enforce, as for every generated file: only the address leased to the MTA.
    fn enforce(&self, mac: [u8; 6], peer: Ipv4Addr) -> Result<(), provd_tftpd::Refusal> {
        if !self.enforce {
            return Ok(());
        }
        self.devices.enforce(&mac, peer, unix_now()).map_err(|_| {
            provd_tftpd::Refusal::new(provd_tftpd::ErrorCode::ACCESS_VIOLATION, "Access violation")
        })
    }
}

/// The running role: its queue and what the TFTP chain needs.
#[derive(Debug)]
pub struct MtaService {
    pub to_mta: Sender<Command>,
    pub pinned: Arc<Pinned>,
    pub thread: std::thread::JoinHandle<()>,
    pub notify_addr: SocketAddrV4,
}

/// Binds the sockets and starts the thread.
pub fn start(
    settings: &MtaSettings,
    policy: Arc<Policy>,
    generator: Arc<Generator>,
    devices: Arc<DeviceView>,
    tftp_host: Ipv4Addr,
    enforce: bool,
    shutdown: Arc<AtomicBool>,
) -> Result<(MtaService, MtaObserver)> {
    let notify = bind_udp(SocketAddrV4::new(settings.bind, settings.port)).with_context(|| {
        format!(
            "binding SNMP notifications {}:{}",
            settings.bind, settings.port
        )
    })?;
    let requests =
        bind_udp(SocketAddrV4::new(settings.bind, 0)).context("binding the SNMP request socket")?;
    notify.set_nonblocking(true)?;
    requests.set_nonblocking(true)?;
    let notify_addr = match notify.local_addr()? {
        std::net::SocketAddr::V4(a) => a,
        std::net::SocketAddr::V6(_) => unreachable_v6()?,
    };
    let config = provd_mta::Config {
        inform_communities: settings.inform_communities.clone(),
        set_community: settings.set_community.clone(),
        get_community: settings.get_community.clone(),
        notify_port: notify_addr.port(),
        get_capabilities: settings.get_capabilities,
        max_flows: settings.max_flows,
        ..provd_mta::Config::default()
    };
    let engine = Engine::new(config).map_err(|e| anyhow::anyhow!("mta: {e}"))?;
    let (to_mta, from_rest) = crossbeam_channel::bounded(QUEUE);
    let pinned = Arc::new(Pinned {
        files: DashMap::new(),
        names: DashMap::new(),
        to_mta: to_mta.clone(),
        devices: Arc::clone(&devices),
        enforce,
    });
    let observer = MtaObserver {
        policy: Arc::clone(&policy),
        to_mta: to_mta.clone(),
    };
    let mut worker = Worker {
        engine,
        notify,
        requests,
        from_rest,
        policy,
        generator,
        devices,
        pinned: Arc::clone(&pinned),
        tftp_host,
        log_limit: RateLimit::per_sec(5),
    };
    let thread = std::thread::Builder::new()
        .name("provd-mta".into())
        .spawn(move || worker.run(&shutdown))?;
    Ok((
        MtaService {
            to_mta,
            pinned,
            thread,
            notify_addr,
        },
        observer,
    ))
}

/// A UDP socket with room for a fleet's burst: with the default 208 KiB a few hundred MTAs
/// enrolling at once overflow it and every dropped INFORM costs its MTA a 1 s retransmission.
fn bind_udp(addr: SocketAddrV4) -> std::io::Result<UdpSocket> {
    let sock = socket2::Socket::new(
        socket2::Domain::IPV4,
        socket2::Type::DGRAM,
        Some(socket2::Protocol::UDP),
    )?;
    let _ = sock.set_recv_buffer_size(4 << 20);
    let _ = sock.set_send_buffer_size(4 << 20);
    sock.bind(&addr.into())?;
    Ok(sock.into())
}

fn unreachable_v6() -> Result<SocketAddrV4> {
    anyhow::bail!("an IPv4 bind gave an IPv6 address")
}

struct Worker {
    engine: Engine,
    notify: UdpSocket,
    requests: UdpSocket,
    from_rest: Receiver<Command>,
    policy: Arc<Policy>,
    generator: Arc<Generator>,
    devices: Arc<DeviceView>,
    pinned: Arc<Pinned>,
    tftp_host: Ipv4Addr,
    log_limit: RateLimit,
}

/// Longest sleep: bounds how late a queued command or a shutdown is noticed.
const POLL_CAP_MS: i32 = 20;

impl Worker {
    fn run(&mut self, shutdown: &AtomicBool) {
        let notify_port = self.notify.local_addr().map_or(0, |a| a.port());
        let request_port = self.requests.local_addr().map_or(0, |a| a.port());
        let mut buf = vec![0u8; 65_536];
        let mut last_stats = std::time::Instant::now();
        while !shutdown.load(Ordering::Relaxed) {
            if last_stats.elapsed() >= Duration::from_secs(60) {
                last_stats = std::time::Instant::now();
                self.log_counters();
            }
            let now = now_ms();
            let wait = self
                .engine
                .next_deadline()
                .map_or(POLL_CAP_MS, |d| d.since(now).min(POLL_CAP_MS as u64) as i32);
            poll2(&self.notify, &self.requests, wait);
            // Responses to our SETs first, then what the TFTP side saw (a fetch), then new
            // INFORMs: that is the order an MTA does them in, and a flow must see its SET
            // acknowledged before the fetch and the status that follow it.
            for (port, from_notify) in [(request_port, false), (notify_port, true)] {
                if from_notify {
                    self.commands();
                }
                loop {
                    let sock = if from_notify {
                        &self.notify
                    } else {
                        &self.requests
                    };
                    let (n, src) = match sock.recv_from(&mut buf) {
                        Ok((n, std::net::SocketAddr::V4(src))) => (n, src),
                        Ok(_) => continue,
                        Err(_) => break,
                    };
                    let (notify, requests) = (&self.notify, &self.requests);
                    self.engine
                        .on_datagram(now_ms(), src, port, &buf[..n], &mut |o| {
                            send(notify, requests, o)
                        });
                }
            }
            let (notify, requests) = (&self.notify, &self.requests);
            self.engine
                .poll_timeouts(now_ms(), &mut |o| send(notify, requests, o));
            while let Some(ev) = self.engine.poll_event() {
                self.event(ev);
            }
        }
        self.log_counters();
    }

    fn log_counters(&self) {
        let named: Vec<String> = self
            .engine
            .counters()
            .named()
            .into_iter()
            .filter(|(_, v)| *v > 0)
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        tracing::info!(
            active = self.engine.active_flows(),
            records = self.engine.records_len(),
            counters = %named.join(" "),
            "mta counters"
        );
    }

    /// What the rest of the server reported: boots, fetches, questions.
    fn commands(&mut self) {
        while let Ok(cmd) = self.from_rest.try_recv() {
            match cmd {
                Command::Dhcp(b) => {
                    let mac = b.mac;
                    if let Err(e) = self.engine.on_dhcp(now_ms(), b)
                        && let Some(held) = self.log_limit.allow()
                    {
                        tracing::warn!(%mac, error = %e, suppressed = held, "MTA boot not provisioned");
                    }
                }
                Command::Fetched(mac) => {
                    self.engine.on_file_fetched(now_ms(), Mac(mac));
                }
                Command::Status(mac, reply) => {
                    let _ = reply.send(self.engine.record(Mac(mac)).map(|r| r.to_json()));
                }
            }
        }
    }

    fn event(&mut self, ev: Event) {
        match ev {
            Event::NeedFile { mac, .. } => {
                let (notify, requests) = (&self.notify, &self.requests);
                match self.make_file(mac) {
                    Ok((url, hash)) => {
                        if let Err(e) = self.engine.file_ready(now_ms(), mac, url, hash, &mut |o| {
                            send(notify, requests, o)
                        }) {
                            tracing::warn!(%mac, error = %e, "file ready too late");
                        }
                    }
                    Err(reason) => {
                        tracing::error!(%mac, %reason, "MTA config file not generated");
                        let _ = self.engine.file_failed(now_ms(), mac, reason);
                    }
                }
            }
            // One line per provisioned MTA would be tens of thousands a second in a region's
            // reboot: successes go to debug (the record has them), failures are rate-limited.
            Event::Completed { mac, state } => {
                tracing::debug!(%mac, state = ?state, "MTA provisioned");
                self.pinned.unpin(mac.0);
            }
            Event::Failed { mac, step, reason } => {
                if let Some(held) = self.log_limit.allow() {
                    tracing::warn!(%mac, step = step.label(), %reason, suppressed = held, "MTA provisioning failed");
                }
                self.pinned.unpin(mac.0);
            }
            Event::TimedOut { mac, step } => {
                if let Some(held) = self.log_limit.allow() {
                    tracing::warn!(%mac, step = step.label(), suppressed = held, "MTA provisioning timed out");
                }
                self.pinned.unpin(mac.0);
            }
            Event::Rejected { src, reason } => {
                if let Some(held) = self.log_limit.allow() {
                    tracing::warn!(%src, reason = reason.name(), suppressed = held, "SNMP datagram rejected");
                }
            }
            _ => {}
        }
    }

    /// Renders the MTA's file with its class's template, pins the bytes, and gives the URL and
    /// SHA-1 the engine SETs (MTA-18).
    fn make_file(&self, mac: Mac) -> Result<(String, Vec<u8>), String> {
        let facts = self.devices.get(&mac.0, unix_now());
        let class_id: Option<ClassId> = facts.as_ref().and_then(|f| f.class);
        let class = class_id
            .map(|c| self.policy.class(c))
            .filter(|c| is_mta_class(c))
            .or_else(|| self.policy.classes.iter().find(|c| is_mta_class(c)))
            .ok_or("no class generates MTA files (config_file kind = \"mta\")")?;
        let name = class
            .boot_file
            .as_ref()
            .map(|b| b.render(&mac.0))
            .ok_or("the MTA class has no boot_file")?;
        let bytes = self
            .generator
            .render_for(&class.name, &mac.0, facts.as_ref())
            .map_err(|e| e.to_string())?;
        let hash = provd_docsis::mta_file_hash(&bytes, provd_docsis::HashAlg::Sha1);
        self.pinned
            .pin(name.clone(), FileContent::from(bytes), mac.0);
        Ok((format!("tftp://{}/{name}", self.tftp_host), hash))
    }
}

fn is_mta_class(c: &provd_config::Class) -> bool {
    c.config_file
        .as_ref()
        .is_some_and(|f| f.kind == ConfigFileKind::Mta)
}

fn send(notify: &UdpSocket, requests: &UdpSocket, o: Outgoing<'_>) {
    let sock = match o.from_port {
        FromPort::Notify => notify,
        FromPort::Requests => requests,
    };
    if let Err(e) = sock.send_to(o.bytes, o.to) {
        tracing::debug!(to = %o.to, error = %e, "SNMP send failed");
    }
}

/// Waits until either socket is readable or `ms` pass.
fn poll2(a: &UdpSocket, b: &UdpSocket, ms: i32) {
    let mut fds = [
        libc::pollfd {
            fd: a.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        },
        libc::pollfd {
            fd: b.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        },
    ];
    // SAFETY: `fds` is a valid array of two pollfd for the duration of the call; the fds are
    // owned by sockets that outlive it.
    unsafe {
        libc::poll(fds.as_mut_ptr(), 2, ms.max(0));
    }
}
