//! The control plane's wiring: the store, the catalog the file servers read, the device
//! timeline, config reload, and the REST API's services over the running roles.
//!
//! Everything here is glue: the store is provd-store's, the catalog and timeline
//! provd-devices', the API provd-api's, the reload's hand-over provd-dataplane's.

use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use anyhow::{Context, Result};
use provd_api::{
    Actions, BoxFuture, Lease, LeaseIndex, LeaseQuery, ReloadReport, RoleView, ServiceError,
    SyslogQuery, TemplateCheck, TemplateKind, TemplatePreview, TemplateProblem, TemplateValidation,
    Verdict,
};
use provd_config::{Policy, StoreBackend};
use provd_dataplane::PolicySwap;
use provd_devices::DeviceView;
use provd_devices::catalog::{Catalog, Following, ReservationSink};
use provd_devices::timeline::{Happening, Retention, Timeline};
use provd_engine::Shared;
use provd_role::RoleSet;
use provd_role::clock::unix_secs_u32;
use provd_store::{Actor, DeviceKind, DeviceSpec, Expect, Mac, Source, Store, StoreError};

/// How often the catalog looks for changes made elsewhere (`provd import`, another node).
const CATCH_UP_EVERY: Duration = Duration::from_secs(1);
/// How long a reload waits for every DHCP worker to park.
const RELOAD_WAIT: Duration = Duration::from_secs(5);

/// The store, the catalog following it, and the timeline writing to it.
#[derive(Debug)]
pub struct Control {
    /// Writes catch the catalog up before they return: what the API is handed.
    pub store: Arc<dyn Store>,
    pub catalog: Arc<Catalog>,
    pub timeline: Timeline,
    threads: Vec<std::thread::JoinHandle<()>>,
}

/// Opens the store `policy` names, seeds it with the config's `[[subscriber]]` tables (devices
/// the store does not have yet), loads the catalog and starts the timeline writer and the
/// catalog's periodic catch-up.
pub fn open(policy: &Policy, shutdown: &Arc<AtomicBool>) -> Result<Control> {
    let loc = location(policy);
    let t = std::time::Instant::now();
    let raw = provd_store::open(&loc).with_context(|| format!("opening the store ({loc:?})"))?;
    seed(&*raw, policy)?;
    let catalog = Arc::new(Catalog::load(&*raw).context("loading the catalog from the store")?);
    tracing::info!(
        backend = raw.backend().as_str(),
        devices = catalog.len(),
        ms = u64::try_from(t.elapsed().as_millis()).unwrap_or(u64::MAX),
        "store open"
    );
    let (timeline, writer) = Timeline::start(
        Arc::clone(&raw),
        Retention {
            days: policy.store.timeline_days,
            per_device: policy.store.timeline_per_device,
        },
        Arc::clone(shutdown),
    )?;
    let follower = {
        let (raw, catalog, shutdown) =
            (Arc::clone(&raw), Arc::clone(&catalog), Arc::clone(shutdown));
        std::thread::Builder::new()
            .name("provd-catalog".into())
            .spawn(move || {
                while !shutdown.load(Ordering::Relaxed) {
                    std::thread::sleep(CATCH_UP_EVERY);
                    if let Err(e) = catalog.catch_up(&*raw) {
                        tracing::warn!(error = %e, "catalog catch-up failed; retrying");
                    }
                }
            })?
    };
    Ok(Control {
        store: Arc::new(Following::new(raw, Arc::clone(&catalog))),
        catalog,
        timeline,
        threads: vec![writer, follower],
    })
}

/// Where `policy`'s store is.
pub fn location(policy: &Policy) -> provd_store::Location {
    match &policy.store.backend {
        StoreBackend::Embedded { path } => provd_store::Location::Embedded(path.clone()),
        StoreBackend::Postgres { url } => provd_store::Location::Postgres {
            url: url.clone(),
            pool: policy.store.pool,
        },
    }
}

impl Control {
    /// Waits for the timeline writer (it writes what was queued) and the follower; call after
    /// the shutdown flag is set.
    pub fn join(self) {
        for t in self.threads {
            let _ = t.join();
        }
    }
}

/// `[[subscriber]]` tables become devices with their variables, unless the store has them
/// already (the store is the system of record: an API change is not undone by a restart).
fn seed(store: &dyn Store, policy: &Policy) -> Result<()> {
    let mut created = 0;
    for (mac, vars) in &policy.subscribers {
        let spec = DeviceSpec {
            mac: Mac(*mac),
            vars: provd_devices::catalog::json_vars(vars),
            ..Default::default()
        };
        match store.put_device(&spec, Expect::Absent, &Actor::System) {
            Ok(_) => created += 1,
            Err(StoreError::Conflict { .. }) => {}
            Err(e) => return Err(e).context(format!("seeding subscriber {}", Mac(*mac))),
        }
    }
    if created > 0 {
        tracing::info!(
            created,
            "config [[subscriber]] tables seeded into the store"
        );
    }
    Ok(())
}

/// The DHCP engine's run-time reservations, fed from the store.
#[derive(Debug)]
pub struct LiveSink {
    /// The policy before the DHCP role runs; then the workers' (a reload replaces it).
    initial: Arc<Shared>,
    swap: OnceLock<Arc<PolicySwap>>,
}

impl LiveSink {
    pub fn new(initial: Arc<Shared>) -> Arc<LiveSink> {
        Arc::new(LiveSink {
            initial,
            swap: OnceLock::new(),
        })
    }

    /// From now on, check and apply against the workers' current policy.
    pub fn follow(&self, swap: Arc<PolicySwap>) {
        let _ = self.swap.set(swap);
    }

    fn shared(&self) -> Arc<Shared> {
        match self.swap.get() {
            Some(s) => s.current(),
            None => Arc::clone(&self.initial),
        }
    }
}

impl ReservationSink for LiveSink {
    fn check(&self, r: &provd_store::ReservationSpec) -> Result<(), String> {
        let sh = self.shared();
        sh.check_live_reservation(r.address)?;
        if let Some(c) = &r.dhcp_class
            && sh.policy.class_id(c).is_none()
        {
            return Err(format!("dhcp_class {c:?} is not a [[class]] of the config"));
        }
        Ok(())
    }

    fn apply(&self, mac: Mac, r: Option<&provd_store::Reservation>) {
        let sh = self.shared();
        match r {
            None => sh.live.remove(&mac.0),
            Some(r) => match sh.check_live_reservation(r.spec.address) {
                Ok(()) => {
                    let class = r
                        .spec
                        .dhcp_class
                        .as_deref()
                        .and_then(|c| sh.policy.class_id(c));
                    sh.live.set(mac.0, r.spec.address, class);
                }
                Err(why) => {
                    sh.live.remove(&mac.0);
                    tracing::warn!(%mac, why, "store reservation not served");
                }
            },
        }
    }
}

/// Config reload: by SIGHUP and `POST /api/v1/config/reload`.
#[derive(Debug)]
pub struct Reloader {
    path: PathBuf,
    current: Mutex<Policy>,
    swap: Arc<PolicySwap>,
    devices: Option<Arc<DeviceView>>,
    /// One reload at a time.
    busy: tokio::sync::Mutex<()>,
}

impl Reloader {
    pub fn new(
        path: PathBuf,
        current: Policy,
        swap: Arc<PolicySwap>,
        devices: Option<Arc<DeviceView>>,
    ) -> Arc<Reloader> {
        Arc::new(Reloader {
            path,
            current: Mutex::new(current),
            swap,
            devices,
            busy: tokio::sync::Mutex::new(()),
        })
    }

    /// Reads the config again; validates, diffs, checks for orphaned leases, and (unless
    /// `dry_run`, and unless orphans without `force`) hands the DHCP workers the new policy.
    /// Blocking: call from a thread or `spawn_blocking`.
    pub fn reload(&self, force: bool, dry_run: bool) -> Result<ReloadReport, ServiceError> {
        let new = Policy::from_file(&self.path).map_err(|errors| {
            let first = errors.iter().next();
            ServiceError::Invalid {
                field: first.map(|e| e.path.clone()).unwrap_or_default(),
                message: format!(
                    "{}: the config is refused, the old one stays:\n{errors}",
                    self.path.display()
                ),
            }
        })?;
        provd_files::Generator::new(&new, Arc::new(DeviceView::new())).map_err(|e| {
            ServiceError::Invalid {
                field: "class.config_file.template".into(),
                message: format!("the config is refused, the old one stays: {e}"),
            }
        })?;
        let old = self
            .current
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        let changes = diff(&old, &new);
        let live = Arc::clone(&self.swap.current().live);
        let next = Shared::with_live(new.clone(), live).map_err(|e| ServiceError::Invalid {
            field: "shared_network".into(),
            message: format!("the config is refused, the old one stays: {e}"),
        })?;
        let orphaned = self.orphans(&next);
        let applied = !dry_run && (orphaned.is_empty() || force);
        if applied {
            self.swap
                .publish(next, RELOAD_WAIT)
                .map_err(ServiceError::Failed)?;
            *self.current.lock().unwrap_or_else(|p| p.into_inner()) = new;
        }
        Ok(ReloadReport {
            applied,
            changes,
            orphaned,
        })
    }

    /// Live leases whose address no subnet's pool and no reservation of `next` holds.
    fn orphans(&self, next: &Shared) -> Vec<Lease> {
        let Some(view) = &self.devices else {
            return Vec::new();
        };
        let mut out: Vec<Lease> = view
            .live(unix_secs_u32())
            .into_iter()
            .filter(|(mac, f)| {
                let reserved =
                    next.policy.is_reserved(f.addr) || next.live.holder(f.addr) == Some(*mac);
                next.pool_of(f.addr).is_none() && !reserved
            })
            .map(|(mac, f)| lease_of(mac, &f, None))
            .collect();
        out.sort_by_key(|l| l.mac);
        out
    }

    /// A SIGHUP's reload: the outcome goes to the log.
    pub fn on_signal(self: &Arc<Self>) {
        let me = Arc::clone(self);
        let spawned = std::thread::Builder::new()
            .name("provd-reload".into())
            .spawn(move || match me.reload(false, false) {
                Ok(r) if r.applied => {
                    tracing::info!(changes = ?r.changes, "config reloaded (SIGHUP)")
                }
                Ok(r) => tracing::warn!(
                    orphaned = r.orphaned.len(),
                    first = ?r.orphaned.iter().take(10).map(|l| format!("{} {}", l.mac, l.address)).collect::<Vec<_>>(),
                    "config reload refused: it would orphan bound leases (POST /api/v1/config/reload with force to apply anyway)"
                ),
                Err(e) => tracing::error!(error = %e, "config reload refused"),
            });
        if let Err(e) = spawned {
            tracing::error!(error = %e, "config reload not started");
        }
    }
}

/// What differs between two policies, one line each; sections a reload does not apply say so.
fn diff(old: &Policy, new: &Policy) -> Vec<String> {
    fn keyed<'a, T: std::fmt::Debug + 'a>(
        out: &mut Vec<String>,
        what: &str,
        old: impl Iterator<Item = (String, &'a T)>,
        new: impl Iterator<Item = (String, &'a T)>,
    ) {
        let old: std::collections::BTreeMap<String, String> =
            old.map(|(k, v)| (k, format!("{v:?}"))).collect();
        let new: std::collections::BTreeMap<String, String> =
            new.map(|(k, v)| (k, format!("{v:?}"))).collect();
        for (k, v) in &new {
            match old.get(k) {
                None => out.push(format!("{what} {k}: added")),
                Some(o) if o != v => out.push(format!("{what} {k}: changed")),
                Some(_) => {}
            }
        }
        for k in old.keys().filter(|k| !new.contains_key(*k)) {
            out.push(format!("{what} {k}: removed"));
        }
    }
    let mut out = Vec::new();
    keyed(
        &mut out,
        "class",
        old.classes.iter().map(|c| (c.name.clone(), c)),
        new.classes.iter().map(|c| (c.name.clone(), c)),
    );
    fn subnets(p: &Policy) -> Vec<(String, &provd_config::Subnet)> {
        p.networks
            .iter()
            .flat_map(|n| {
                n.subnets
                    .iter()
                    .map(move |s| (format!("{}/{}/{}", n.name, s.prefix, s.prefix_len), s))
            })
            .collect()
    }
    keyed(
        &mut out,
        "subnet",
        subnets(old).into_iter(),
        subnets(new).into_iter(),
    );
    keyed(
        &mut out,
        "shared network",
        old.networks.iter().map(|n| (n.name.clone(), &n.relays)),
        new.networks.iter().map(|n| (n.name.clone(), &n.relays)),
    );
    keyed(
        &mut out,
        "reservation",
        old.reservations.iter().map(|r| (format!("{:?}", r.key), r)),
        new.reservations.iter().map(|r| (format!("{:?}", r.key), r)),
    );
    if format!("{:?}", old.lease) != format!("{:?}", new.lease) {
        out.push("[lease]: changed".into());
    }
    let restart = [
        (
            "server",
            format!("{:?}", old.server) != format!("{:?}", new.server),
        ),
        (
            "tftp",
            format!("{:?}", old.tftp) != format!("{:?}", new.tftp),
        ),
        (
            "syslog",
            format!("{:?}", old.syslog) != format!("{:?}", new.syslog),
        ),
        (
            "time",
            format!("{:?}", old.time) != format!("{:?}", new.time),
        ),
        ("mta", format!("{:?}", old.mta) != format!("{:?}", new.mta)),
        ("acs", format!("{:?}", old.acs) != format!("{:?}", new.acs)),
        (
            "http",
            format!("{:?}", old.http) != format!("{:?}", new.http),
        ),
        ("api", format!("{:?}", old.api) != format!("{:?}", new.api)),
        (
            "store",
            format!("{:?}", old.store) != format!("{:?}", new.store),
        ),
        (
            "vars",
            format!("{:?}", old.vars) != format!("{:?}", new.vars),
        ),
    ];
    for (name, changed) in restart {
        if changed {
            out.push(format!(
                "[{name}]: changed; takes effect at the next restart"
            ));
        }
    }
    out
}

fn lease_of(mac: [u8; 6], f: &provd_devices::DeviceFacts, subscriber: Option<String>) -> Lease {
    Lease {
        mac: Mac(mac),
        address: f.addr,
        expires_at: u64::from(f.expires_at),
        relay: (!f.giaddr.is_unspecified()).then_some(f.giaddr),
        remote_id: None,
        circuit_id: None,
        subscriber,
        dhcp_class: None,
    }
}

/// The API's view of live leases: the device view the DHCP workers publish to.
#[derive(Debug)]
pub struct Leases {
    pub devices: Arc<DeviceView>,
    pub catalog: Arc<Catalog>,
    pub classes: Vec<String>,
}

impl LeaseIndex for Leases {
    fn search(&self, q: &LeaseQuery, limit: u32) -> Vec<Lease> {
        let mut hits: Vec<Lease> = self
            .devices
            .live(unix_secs_u32())
            .into_iter()
            .filter(|(mac, f)| {
                q.mac.is_none_or(|m| m.0 == *mac)
                    && q.address.is_none_or(|a| a == f.addr)
                    && q.relay.is_none_or(|r| r == f.giaddr)
                    && (q.relays_any.is_empty() || q.relays_any.contains(&f.giaddr))
                    && q.after.is_none_or(|a| *mac > a.0)
            })
            .filter_map(|(mac, f)| {
                let record = self.catalog.resolve(&mac);
                let subscriber = record.as_ref().and_then(|r| r.device.subscriber.clone());
                if q.subscriber.is_some() && q.subscriber != subscriber {
                    return None;
                }
                // Remote-id is not kept for live leases yet: a remote-id query finds none.
                if q.remote_id.is_some() {
                    return None;
                }
                let mut l = lease_of(mac, &f, subscriber);
                l.dhcp_class = f
                    .class
                    .and_then(|c| self.classes.get(usize::from(c)).cloned());
                Some(l)
            })
            .collect();
        hits.sort_by_key(|l| l.mac);
        hits.truncate(usize::try_from(limit).unwrap_or(usize::MAX));
        hits
    }

    fn release(&self, mac: Mac) -> Result<(), ServiceError> {
        // The shard owning the lease must write the record; an API release goes through the
        // shards' command path, which this build does not have yet.
        match self.devices.get(&mac.0, unix_secs_u32()) {
            None => Err(ServiceError::NotFound(format!("{mac} holds no live lease"))),
            Some(_) => Err(ServiceError::Unavailable(
                "releasing a lease through the API is not supported by this build; the lease ends at its expiry or the client's RELEASE".into(),
            )),
        }
    }
}

/// Resets, reloads and template previews.
#[derive(Debug)]
pub struct Ops {
    pub reset: provd_config::ResetSettings,
    pub devices: Option<Arc<DeviceView>>,
    pub catalog: Arc<Catalog>,
    pub reloader: OnceLock<Arc<Reloader>>,
    pub generator: Option<Arc<provd_files::Generator>>,
    pub policy: Arc<Policy>,
}

impl Actions for Ops {
    fn reset(&self, mac: Mac) -> BoxFuture<'_, Result<String, ServiceError>> {
        Box::pin(async move {
            let kind = self
                .catalog
                .resolve(&mac.0)
                .map_or(DeviceKind::Other, |r| r.device.kind);
            if kind == DeviceKind::Cpe {
                return Err(ServiceError::Unavailable(
                    "a CWMP CPE reboots through a Reboot task: POST /api/v1/acs/devices/{id}/tasks"
                        .into(),
                ));
            }
            let addr = self
                .devices
                .as_ref()
                .and_then(|d| d.get(&mac.0, unix_secs_u32()))
                .map(|f| f.addr)
                .ok_or_else(|| {
                    ServiceError::NotFound(format!(
                        "{mac} holds no live lease: no address to reset"
                    ))
                })?;
            snmp_reset(addr, &self.reset).await
        })
    }

    fn reload(
        &self,
        force: bool,
        dry_run: bool,
    ) -> BoxFuture<'_, Result<ReloadReport, ServiceError>> {
        Box::pin(async move {
            let r = Arc::clone(
                self.reloader
                    .get()
                    .ok_or_else(|| ServiceError::Unavailable("no DHCP role to reload".into()))?,
            );
            let _one = r.busy.lock().await;
            let r2 = Arc::clone(&r);
            tokio::task::spawn_blocking(move || r2.reload(force, dry_run))
                .await
                .map_err(|e| ServiceError::Failed(format!("reload task: {e}")))?
        })
    }

    fn templates(&self) -> serde_json::Value {
        let list: Vec<serde_json::Value> = self
            .policy
            .classes
            .iter()
            .filter_map(|c| {
                let spec = c.config_file.as_ref()?;
                Some(serde_json::json!({
                    "class": c.name,
                    "kind": match spec.kind {
                        provd_config::ConfigFileKind::Docsis => "cm",
                        provd_config::ConfigFileKind::Mta => "mta",
                    },
                    "template": spec.template.display().to_string(),
                    "boot_file": c.boot_file.as_ref().map(|b| b.template().to_string()),
                }))
            })
            .collect();
        serde_json::Value::Array(list)
    }

    fn template_preview(
        &self,
        mac: Mac,
        kind: TemplateKind,
    ) -> BoxFuture<'_, Result<TemplatePreview, ServiceError>> {
        Box::pin(async move {
            let want = match kind {
                TemplateKind::Cm => provd_config::ConfigFileKind::Docsis,
                TemplateKind::Mta => provd_config::ConfigFileKind::Mta,
                TemplateKind::Profile => {
                    return Err(ServiceError::Unavailable(
                        "profile previews: fetch the profile from the HTTP server".into(),
                    ));
                }
            };
            let generator = self.generator.as_ref().ok_or_else(|| {
                ServiceError::Unavailable(
                    "no class generates config files ([tftp] and [class.config_file])".into(),
                )
            })?;
            let facts = self
                .devices
                .as_ref()
                .and_then(|d| d.get(&mac.0, unix_secs_u32()));
            // The class the device was bound as, else the first class making this kind.
            let class = facts
                .as_ref()
                .and_then(|f| f.class)
                .and_then(|c| self.policy.classes.get(usize::from(c)))
                .filter(|c| c.config_file.as_ref().is_some_and(|s| s.kind == want))
                .or_else(|| {
                    self.policy
                        .classes
                        .iter()
                        .find(|c| c.config_file.as_ref().is_some_and(|s| s.kind == want))
                })
                .ok_or_else(|| ServiceError::NotFound(format!("no class makes {kind:?} files")))?;
            let bytes = generator
                .render_for(&class.name, &mac.0, facts.as_ref())
                .map_err(|e| ServiceError::Invalid {
                    field: "template".into(),
                    message: e.to_string(),
                })?;
            let decoded = provd_docsis::decode(&bytes)
                .map_err(|e| ServiceError::Failed(format!("decoding what was rendered: {e}")))?;
            let text = provd_docsis::text::print(&decoded.file);
            let secret = class
                .config_file
                .as_ref()
                .and_then(|s| s.shared_secret.as_deref())
                .map(str::as_bytes);
            let verdicts = match provd_docsis::verify(&bytes, secret) {
                Ok(v) => vec![Verdict {
                    check: "integrity".into(),
                    ok: v.all_ok(),
                    detail: Some(v.to_string()),
                }],
                Err(e) => vec![Verdict {
                    check: "integrity".into(),
                    ok: false,
                    detail: Some(e.to_string()),
                }],
            };
            Ok(TemplatePreview {
                kind,
                file: class.boot_file.as_ref().map(|b| {
                    let mut s = String::new();
                    b.render_into(&mac.0, &mut s);
                    s
                }),
                text,
                verdicts,
            })
        })
    }

    fn validate_template(&self, t: &TemplateCheck) -> Result<TemplateValidation, ServiceError> {
        let mut env = minijinja::Environment::new();
        let problems = match env.add_template_owned("check", t.text.clone()) {
            Ok(()) => Vec::new(),
            Err(e) => vec![TemplateProblem {
                line: e.line().and_then(|l| u32::try_from(l).ok()),
                message: e.to_string(),
            }],
        };
        Ok(TemplateValidation {
            ok: problems.is_empty(),
            problems,
        })
    }
}

/// docsDevResetNow.0 (DOCS-CABLE-DEVICE-MIB): true(1) reboots the modem.
const DOCS_DEV_RESET_NOW: [u32; 11] = [1, 3, 6, 1, 2, 1, 69, 1, 1, 3, 0];

/// Sends `SET docsDevResetNow.0 = 1` (SNMPv2c) to the modem and waits for its response.
async fn snmp_reset(
    addr: Ipv4Addr,
    s: &provd_config::ResetSettings,
) -> Result<String, ServiceError> {
    use provd_snmp::{Message, Oid, Value, VarBind, Version};
    let oid = Oid::from_slice(&DOCS_DEV_RESET_NOW)
        .map_err(|e| ServiceError::Failed(format!("docsDevResetNow: {e}")))?;
    let id = i32::try_from(provd_role::clock::unix_millis() % 0x7fff_ffff).unwrap_or(1);
    let msg = Message::set(
        Version::V2c,
        s.community.as_bytes(),
        id,
        [VarBind::new(oid, Value::Integer(1))],
    );
    let bytes = msg
        .to_bytes()
        .map_err(|e| ServiceError::Failed(format!("encoding the SET: {e}")))?;
    let sock = tokio::net::UdpSocket::bind((Ipv4Addr::UNSPECIFIED, 0))
        .await
        .map_err(|e| ServiceError::Failed(format!("SNMP socket: {e}")))?;
    let to = SocketAddr::V4(SocketAddrV4::new(addr, s.port));
    let timeout = Duration::from_millis(u64::from(s.timeout_ms));
    let mut buf = vec![0u8; 65_535];
    for _attempt in 0..2 {
        sock.send_to(&bytes, to)
            .await
            .map_err(|e| ServiceError::Failed(format!("sending the SET to {to}: {e}")))?;
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let got = tokio::time::timeout_at(deadline, sock.recv_from(&mut buf)).await;
            let Ok(Ok((n, from))) = got else { break };
            if from != to {
                continue;
            }
            let Ok(reply) = Message::decode(&buf[..n]) else {
                continue;
            };
            if reply.request_id() != Some(id) {
                continue;
            }
            let status = reply.pdu().map(|p| p.error_status);
            return match status {
                Some(e) if e.is_error() => Err(ServiceError::Failed(format!(
                    "{addr} refused docsDevResetNow: {}",
                    e.name().unwrap_or("error")
                ))),
                _ => Ok(format!(
                    "SNMP SET docsDevResetNow.0 = 1 to {addr}: accepted"
                )),
            };
        }
    }
    Err(ServiceError::Failed(format!(
        "{addr}:{} did not answer the SNMP SET within {} ms (twice)",
        s.port, s.timeout_ms
    )))
}

/// The roles' records and counters, once the roles run.
#[derive(Debug)]
pub struct Roles {
    /// Weak: `serve` takes the role set back to stop it while the API may still hold this.
    pub roles: OnceLock<std::sync::Weak<RoleSet>>,
    pub metrics: provd_metrics::Metrics,
    pub store: Arc<dyn Store>,
    pub timeline: Timeline,
}

impl Roles {
    fn roles(&self) -> Option<Arc<RoleSet>> {
        self.roles.get()?.upgrade()
    }
}

impl RoleView for Roles {
    fn mta_record(&self, mac: Mac) -> Option<serde_json::Value> {
        let answer = self.roles()?.answer(&format!("mta {mac}"));
        let v: serde_json::Value = serde_json::from_str(&answer).ok()?;
        v.get("error").is_none().then_some(v)
    }

    fn syslog_events(&self, q: &SyslogQuery, limit: u32) -> Vec<serde_json::Value> {
        let who = match (q.mac, q.ip) {
            (Some(m), _) => m.to_string(),
            (None, Some(ip)) => ip.to_string(),
            (None, None) => return Vec::new(),
        };
        let Some(answer) = self.roles().map(|r| r.answer(&format!("syslog {who}"))) else {
            return Vec::new();
        };
        let mut v: Vec<serde_json::Value> = answer
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .filter(|v: &serde_json::Value| v.get("error").is_none())
            .collect();
        v.reverse();
        v.truncate(usize::try_from(limit).unwrap_or(usize::MAX));
        v
    }

    fn stats(&self) -> serde_json::Value {
        let mut out = serde_json::Map::new();
        if let Some(roles) = self.roles() {
            for role in roles.iter() {
                let m: serde_json::Map<String, serde_json::Value> = role
                    .counters()
                    .into_iter()
                    .map(|(k, v)| (k, v.into()))
                    .collect();
                out.insert(role.name().to_string(), m.into());
            }
        }
        let t = self.timeline.stats();
        out.insert(
            "timeline".into(),
            serde_json::json!({
                "queued": t.queued.load(Ordering::Relaxed),
                "dropped": t.dropped.load(Ordering::Relaxed),
                "written": t.written.load(Ordering::Relaxed),
                "write_failed": t.write_failed.load(Ordering::Relaxed),
            }),
        );
        out.into()
    }

    fn metrics(&self) -> String {
        let counts = self.store.counts().ok();
        let extra = provd_metrics::Extra {
            store: counts.as_ref(),
            build: provd_metrics::BuildInfo::current(),
        };
        match self.roles() {
            Some(r) => self.metrics.render(&r, &extra),
            None => self.metrics.render(&RoleSet::default(), &extra),
        }
    }
}

/// Reports every generated file served over TFTP to the device's timeline.
pub fn tftp_hook(timeline: Timeline) -> provd_tftpd::role::FileServed {
    Box::new(move |req, mac, bytes| {
        timeline.report(Happening::Served {
            source: Source::Tftp,
            mac,
            file: req.filename.to_string(),
            bytes: Arc::clone(bytes),
            peer: req.peer,
            at_ms: provd_devices::timeline::now_ms(),
        });
    })
}
