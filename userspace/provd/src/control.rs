//! The control plane's wiring: the store, the catalog the file servers read, the device
//! timeline, config reload, and the REST API's services over the running roles.
//!
//! Everything here is glue: the store is provd-store's, the catalog and timeline
//! provd-devices', the API provd-api's, the reload's hand-over provd-dataplane's.

use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use provd_api::{
    Actions, BoxFuture, Lease, LeaseIndex, LeaseQuery, PreviewRequest, ProblemStage, ReloadReport,
    RoleView, ServiceError, SyslogQuery, TemplateCheck, TemplateFile, TemplateKind,
    TemplatePreview, TemplateProblem, TemplateValidation, Verdict,
};
use provd_config::{Policy, StoreBackend};
use provd_dataplane::PolicySwap;
use provd_devices::DeviceView;
use provd_devices::catalog::{Catalog, Following, ReservationSink};
use provd_devices::timeline::{Happening, Retention, Timeline, hex};
use provd_engine::Shared;
use provd_files::{Trial, TrialError};
use provd_role::clock::unix_secs_u32;
use provd_role::{Health, RoleSet};
use provd_store::{Actor, DeviceKind, DeviceSpec, Expect, Mac, Source, Store, StoreError};

/// How often the catalog looks for changes made elsewhere (`provd import`, another node).
const CATCH_UP_EVERY: Duration = Duration::from_secs(1);
/// How often the change feed is trimmed, and how many changes behind the catalog it keeps (a
/// follower further behind than that, e.g. another node down that long, reloads at start).
const TRIM_CHANGES_EVERY: Duration = Duration::from_secs(600);
const KEEP_CHANGES: i64 = 1_000_000;
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
                let mut trimmed = Instant::now();
                while !shutdown.load(Ordering::Relaxed) {
                    std::thread::sleep(CATCH_UP_EVERY);
                    if let Err(e) = catalog.catch_up(&*raw) {
                        tracing::warn!(error = %e, "catalog catch-up failed; retrying");
                    }
                    // The change feed grows with every write: keep a window of it behind
                    // what this catalog has read (room for another node lagging behind).
                    if trimmed.elapsed() >= TRIM_CHANGES_EVERY {
                        trimmed = Instant::now();
                        let through = catalog.seq() - KEEP_CHANGES;
                        if through > 0 {
                            match raw.trim_changes(through) {
                                Ok(n) if n > 0 => {
                                    tracing::info!(trimmed = n, "change feed trimmed")
                                }
                                Ok(_) => {}
                                Err(e) => {
                                    tracing::warn!(error = %e, "trimming the change feed failed")
                                }
                            }
                        }
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
        remote_id: f.remote_id.as_deref().map(hex),
        circuit_id: f.circuit_id.as_deref().map(hex),
        subscriber,
        dhcp_class: None,
    }
}

/// A remote-id as a query gives it: hex, any case, with or without `:`, `-` or `.` between
/// bytes, as bytes; `None` when it is not hex.
fn remote_id_query(q: &str) -> Option<Vec<u8>> {
    let digits: Vec<u8> = q
        .bytes()
        .filter(|c| !matches!(c, b':' | b'-' | b'.'))
        .collect();
    if digits.is_empty()
        || !digits.len().is_multiple_of(2)
        || !digits.iter().all(u8::is_ascii_hexdigit)
    {
        return None;
    }
    digits
        .chunks(2)
        .map(|d| u8::from_str_radix(std::str::from_utf8(d).ok()?, 16).ok())
        .collect()
}

/// The API's view of live leases: the device view the DHCP workers publish to.
#[derive(Debug)]
pub struct Leases {
    pub devices: Arc<DeviceView>,
    /// The DHCP shards, which own the leases and write a release's record.
    pub shards: provd_dataplane::ShardCommands,
    pub catalog: Arc<Catalog>,
    pub classes: Vec<String>,
}

impl LeaseIndex for Leases {
    fn search(&self, q: &LeaseQuery, limit: u32) -> Vec<Lease> {
        // A remote-id that is not hex matches nothing.
        let remote_id = match q.remote_id.as_deref().map(remote_id_query) {
            Some(None) => return Vec::new(),
            Some(Some(r)) => Some(r),
            None => None,
        };
        let now = unix_secs_u32();
        let n = usize::try_from(limit).unwrap_or(usize::MAX);
        let subscriber_of = |mac: &[u8; 6]| {
            self.catalog
                .resolve(mac)
                .and_then(|r| r.device.subscriber.clone())
        };
        let keep = |mac: &[u8; 6], f: &provd_devices::DeviceFacts| {
            q.mac.is_none_or(|m| m.0 == *mac)
                && q.address.is_none_or(|a| a == f.addr)
                && q.relay.is_none_or(|r| r == f.giaddr)
                && (q.relays_any.is_empty() || q.relays_any.contains(&f.giaddr))
                && q.after.is_none_or(|a| *mac > a.0)
                && remote_id
                    .as_deref()
                    .is_none_or(|r| f.remote_id.as_deref() == Some(r))
                && (q.subscriber.is_none() || q.subscriber == subscriber_of(mac))
        };
        // By MAC or by address: one lookup. Otherwise one pass over the live leases keeping
        // the first `limit` by MAC (no sort or copy of them all).
        let matched: Vec<([u8; 6], provd_devices::DeviceFacts)> = match (q.mac, q.address) {
            (Some(m), _) => self
                .devices
                .get(&m.0, now)
                .map(|f| (m.0, f))
                .into_iter()
                .filter(|(mac, f)| keep(mac, f))
                .collect(),
            (None, Some(a)) => self
                .devices
                .device_at(a, now)
                .and_then(|m| self.devices.get(&m, now).map(|f| (m, f)))
                .into_iter()
                .filter(|(mac, f)| keep(mac, f))
                .collect(),
            (None, None) => self.devices.live_first(now, q.after.map(|a| a.0), n, keep),
        };
        matched
            .into_iter()
            .take(n)
            .map(|(mac, f)| {
                let mut l = lease_of(mac, &f, subscriber_of(&mac));
                l.dhcp_class = f
                    .class
                    .and_then(|c| self.classes.get(usize::from(c)).cloned());
                l
            })
            .collect()
    }

    /// Through the shard that owns the lease, as a DHCPRELEASE; returns once the record is
    /// durable.
    fn release(&self, mac: Mac) -> Result<(), ServiceError> {
        match self.shards.release(mac.0, Duration::from_secs(5)) {
            Ok(Some(_)) => Ok(()),
            Ok(None) => Err(ServiceError::NotFound(format!(
                "{mac} holds no bound lease"
            ))),
            Err(e) => Err(ServiceError::Failed(e)),
        }
    }
}

/// Resets, reloads and template previews.
#[derive(Debug)]
pub struct Ops {
    pub reset: provd_config::ResetSettings,
    /// The store (a CPE's DeviceId) and the ACS's task API (its Reboot task), for CPE resets.
    pub store: Arc<dyn Store>,
    pub acs: Option<axum::Router>,
    pub devices: Option<Arc<DeviceView>>,
    pub catalog: Arc<Catalog>,
    pub reloader: OnceLock<Arc<Reloader>>,
    pub generator: Option<Arc<provd_files::Generator>>,
    pub policy: Arc<Policy>,
}

impl Ops {
    /// A CWMP CPE: a Reboot task queued for its DeviceId, with a connection request so that it
    /// comes for it now (the task stays queued for its next Inform if the request fails).
    async fn cwmp_reboot(&self, mac: Mac) -> Result<String, ServiceError> {
        use tower::ServiceExt;
        let acs = self.acs.clone().ok_or_else(|| {
            ServiceError::Unavailable(
                "a CPE reboots through the ACS, and [acs] is not configured".into(),
            )
        })?;
        let store = Arc::clone(&self.store);
        let device = tokio::task::spawn_blocking(move || store.get_device(mac))
            .await
            .map_err(|e| ServiceError::Failed(e.to_string()))?
            .map_err(|e| ServiceError::Failed(e.to_string()))?
            .ok_or_else(|| ServiceError::NotFound(format!("no device {mac}")))?;
        let id = device.spec.device_id.ok_or_else(|| ServiceError::Invalid {
            field: "device_id".into(),
            message: format!("{mac} is a CPE without a device_id (OUI-ProductClass-Serial): the ACS knows CPEs by it"),
        })?;
        let req =
            axum::http::Request::post(format!("/api/devices/{id}/tasks?connection_request=http"))
                .header("content-type", "application/json")
                .body(axum::body::Body::from(
                    r#"{"method":"Reboot","command_key":"provd-api-reset"}"#,
                ))
                .map_err(|e| ServiceError::Failed(e.to_string()))?;
        let resp = acs
            .oneshot(req)
            .await
            .map_err(|e| ServiceError::Failed(e.to_string()))?;
        let status = resp.status();
        let body = axum::body::to_bytes(resp.into_body(), 64 << 10)
            .await
            .map_err(|e| ServiceError::Failed(e.to_string()))?;
        let text = String::from_utf8_lossy(&body).into_owned();
        match status.as_u16() {
            200..=299 => Ok(format!("CWMP Reboot queued for {id}: {text}")),
            404 => Err(ServiceError::NotFound(format!(
                "the ACS has no device {id}"
            ))),
            _ => Err(ServiceError::Failed(format!(
                "the ACS refused the Reboot task ({status}): {text}"
            ))),
        }
    }
}

impl Actions for Ops {
    fn reset(&self, mac: Mac) -> BoxFuture<'_, Result<String, ServiceError>> {
        Box::pin(async move {
            let kind = self
                .catalog
                .resolve(&mac.0)
                .map_or(DeviceKind::Other, |r| r.device.kind);
            if kind == DeviceKind::Cpe {
                return self.cwmp_reboot(mac).await;
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
        let names = provd_files::template_names(&self.policy);
        let list: Vec<serde_json::Value> = self
            .policy
            .classes
            .iter()
            .filter_map(|c| {
                let spec = c.config_file.as_ref()?;
                Some(serde_json::json!({
                    "name": names.get(&spec.template),
                    "class": c.name,
                    "kind": kind_of(spec.kind),
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
        self.template_preview_with(PreviewRequest {
            mac,
            kind: Some(kind),
            ..PreviewRequest::default()
        })
    }

    fn template_preview_with(
        &self,
        req: PreviewRequest,
    ) -> BoxFuture<'_, Result<TemplatePreview, ServiceError>> {
        Box::pin(async move {
            let mac = req.mac;
            let kind = req.kind.unwrap_or(TemplateKind::Cm);
            let want = config_kind(kind)?;
            let generator = self.generator()?;
            let facts = self
                .devices
                .as_ref()
                .and_then(|d| d.get(&mac.0, unix_secs_u32()));
            let class = match &req.name {
                Some(name) => self.class_of_template(&generator, name, kind)?,
                // The class the device was bound as, else the first class making this kind.
                None => facts
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
                    .ok_or_else(|| {
                        ServiceError::NotFound(format!("no class makes {kind:?} files"))
                    })?,
            };
            let trial = Trial {
                text: req.text.as_deref(),
                class_of_service: req.class_of_service.as_deref(),
            };
            let bytes = generator
                .render_trial(&class.name, &mac.0, facts.as_ref(), &trial)
                .map_err(trial_error)?;
            let decoded = provd_docsis::decode(&bytes)
                .map_err(|e| ServiceError::Failed(format!("decoding what was rendered: {e}")))?;
            let text = provd_docsis::text::print(&decoded.file);
            let secret = class
                .config_file
                .as_ref()
                .and_then(|s| s.shared_secret.as_deref())
                .map(str::as_bytes);
            let verdicts = verdicts_of(&bytes, secret);
            let sha256 = Some(hex(&<sha2::Sha256 as sha2::Digest>::digest(&bytes)));
            Ok(TemplatePreview {
                kind,
                sha256,
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

    /// The same pipeline as a served file: the generator's environment (strict undefined),
    /// a render for a probe device, and the compile to the class's kind of file.
    fn validate_template(&self, t: &TemplateCheck) -> Result<TemplateValidation, ServiceError> {
        let problems = match config_kind(t.kind) {
            Ok(want) => {
                let generator = self.generator()?;
                let class = match &t.name {
                    Some(name) => self.class_of_template(&generator, name, t.kind)?,
                    None => self
                        .policy
                        .classes
                        .iter()
                        .find(|c| c.config_file.as_ref().is_some_and(|s| s.kind == want))
                        .ok_or_else(|| {
                            ServiceError::NotFound(format!("no class makes {:?} files", t.kind))
                        })?,
                };
                let (mac, facts) = self.probe(t.mac, want)?;
                let trial = Trial {
                    text: Some(&t.text),
                    class_of_service: None,
                };
                match generator.render_trial(&class.name, &mac.0, Some(&facts), &trial) {
                    Ok(_) => Vec::new(),
                    Err(TrialError::Template(p)) => p
                        .into_iter()
                        .map(|p| {
                            let mut p = api_problem(p);
                            if p.stage == Some(ProblemStage::Render) {
                                p.message.push_str(&format!(" (rendered for {mac})"));
                            }
                            p
                        })
                        .collect(),
                    Err(e) => return Err(trial_error(e)),
                }
            }
            // Phone profiles render in the HTTP role: syntax here.
            Err(_) => {
                let mut env = provd_files::template::environment(|_| {});
                match env.add_template_owned("check", t.text.clone()) {
                    Ok(()) => Vec::new(),
                    Err(e) => {
                        let (line, column) = provd_files::template::position(&e, &t.text);
                        vec![TemplateProblem {
                            line,
                            column,
                            message: provd_files::template::error_message(&e),
                            stage: Some(ProblemStage::Syntax),
                        }]
                    }
                }
            }
        };
        Ok(TemplateValidation {
            ok: problems.is_empty(),
            problems,
        })
    }

    fn template_file(&self, name: &str) -> Result<TemplateFile, ServiceError> {
        let names = provd_files::template_names(&self.policy);
        let (path, kind) = self
            .policy
            .classes
            .iter()
            .filter_map(|c| c.config_file.as_ref())
            .find(|s| names.get(&s.template).is_some_and(|n| n == name))
            .map(|s| (s.template.clone(), s.kind))
            .ok_or_else(|| ServiceError::NotFound(format!("no template {name:?}")))?;
        let text = std::fs::read_to_string(&path).map_err(|e| {
            ServiceError::Failed(format!("reading template {}: {e}", path.display()))
        })?;
        Ok(TemplateFile {
            name: name.to_owned(),
            kind: match kind {
                provd_config::ConfigFileKind::Docsis => TemplateKind::Cm,
                provd_config::ConfigFileKind::Mta => TemplateKind::Mta,
            },
            path: path.display().to_string(),
            text,
        })
    }
}

fn kind_of(k: provd_config::ConfigFileKind) -> &'static str {
    match k {
        provd_config::ConfigFileKind::Docsis => "cm",
        provd_config::ConfigFileKind::Mta => "mta",
    }
}

/// The config-file kind a template kind renders to; phone profiles are not config files.
fn config_kind(kind: TemplateKind) -> Result<provd_config::ConfigFileKind, ServiceError> {
    match kind {
        TemplateKind::Cm => Ok(provd_config::ConfigFileKind::Docsis),
        TemplateKind::Mta => Ok(provd_config::ConfigFileKind::Mta),
        TemplateKind::Profile => Err(ServiceError::Invalid {
            field: "kind".into(),
            message: "a phone profile is previewed by fetching it from the HTTP server \
                      ([http]); previews here: cm, mta"
                .into(),
        }),
    }
}

fn api_problem(p: provd_files::Problem) -> TemplateProblem {
    TemplateProblem {
        line: p.line,
        column: p.column,
        message: p.message,
        stage: Some(match p.stage {
            provd_files::Stage::Syntax => ProblemStage::Syntax,
            provd_files::Stage::Render => ProblemStage::Render,
            provd_files::Stage::Compile => ProblemStage::Compile,
        }),
    }
}

fn trial_error(e: TrialError) -> ServiceError {
    match e {
        TrialError::Template(p) => {
            ServiceError::TemplateInvalid(p.into_iter().map(api_problem).collect())
        }
        TrialError::NoClass(m) => ServiceError::NotFound(m),
        TrialError::NoClassOfService(c) => ServiceError::Invalid {
            field: "class_of_service".into(),
            message: format!("no class of service {c:?}"),
        },
    }
}

/// The probe a check renders for when it names no device: an address from the
/// documentation range, behind a documentation relay, with the kind's usual option 60.
const PROBE_MAC: Mac = Mac([0x02, 0, 0, 0, 0, 0x01]);

impl Ops {
    /// The generator the roles serve from; without a TFTP role, one made for the call (the
    /// same templates, the same catalog).
    fn generator(&self) -> Result<Arc<provd_files::Generator>, ServiceError> {
        if let Some(g) = &self.generator {
            return Ok(Arc::clone(g));
        }
        provd_files::Generator::new(&self.policy, Arc::new(DeviceView::new()))
            .map(|g| Arc::new(g.with_catalog(Arc::clone(&self.catalog))))
            .map_err(|e| ServiceError::Failed(e.to_string()))
    }

    /// The class rendering template `name`, which must be of `kind`.
    fn class_of_template(
        &self,
        generator: &provd_files::Generator,
        name: &str,
        kind: TemplateKind,
    ) -> Result<&provd_config::Class, ServiceError> {
        let (class, k) = generator
            .class_of_template(name)
            .ok_or_else(|| ServiceError::NotFound(format!("no template {name:?}")))?;
        if config_kind(kind)? != k {
            return Err(ServiceError::Invalid {
                field: "kind".into(),
                message: format!("template {name:?} is a {} template", kind_of(k)),
            });
        }
        self.policy
            .classes
            .iter()
            .find(|c| c.name == class)
            .ok_or_else(|| ServiceError::NotFound(format!("no class {class:?}")))
    }

    /// The device a check renders for, with its lease facts (made up when it holds no
    /// lease): `mac` if given (it must be in the store), else the store's first device of the
    /// kind, else a device the store does not know.
    fn probe(
        &self,
        mac: Option<Mac>,
        kind: provd_config::ConfigFileKind,
    ) -> Result<(Mac, provd_devices::DeviceFacts), ServiceError> {
        let failed = |e: StoreError| ServiceError::Failed(e.to_string());
        let mac = match mac {
            Some(m) => {
                if self.store.get_device(m).map_err(failed)?.is_none() {
                    return Err(ServiceError::Invalid {
                        field: "mac".into(),
                        message: format!("no device {m} in the store"),
                    });
                }
                m
            }
            None => {
                let filter = provd_store::DeviceFilter {
                    kind: Some(match kind {
                        provd_config::ConfigFileKind::Docsis => DeviceKind::Cm,
                        provd_config::ConfigFileKind::Mta => DeviceKind::Mta,
                    }),
                    ..Default::default()
                };
                self.store
                    .list_devices(&filter, &provd_store::PageRequest::first(1))
                    .map_err(failed)?
                    .items
                    .first()
                    .map_or(PROBE_MAC, |d| d.spec.mac)
            }
        };
        let now = unix_secs_u32();
        let facts = self
            .devices
            .as_ref()
            .and_then(|d| d.get(&mac.0, now))
            .unwrap_or_else(|| provd_devices::DeviceFacts {
                addr: Ipv4Addr::new(192, 0, 2, 10),
                expires_at: now.saturating_add(3600),
                class: None,
                giaddr: Ipv4Addr::new(192, 0, 2, 1),
                vendor_class: Some(
                    match kind {
                        provd_config::ConfigFileKind::Docsis => &b"docsis3.0"[..],
                        provd_config::ConfigFileKind::Mta => &b"pktc1.5"[..],
                    }
                    .into(),
                ),
                remote_id: None,
                circuit_id: None,
            });
        Ok((mac, facts))
    }
}

/// One verdict per integrity value a rendered file carries (`cm_mic`, `cmts_mic`, `mta_hash`),
/// as the device would check it: a CM file without a CM MIC fails; a CMTS MIC provd cannot
/// check for want of the shared secret is `ok` with `not checked` in its detail.
fn verdicts_of(bytes: &[u8], secret: Option<&[u8]>) -> Vec<Verdict> {
    use provd_docsis::Check;
    let v = match provd_docsis::verify(bytes, secret) {
        Ok(v) => v,
        Err(e) => {
            return vec![Verdict {
                check: "decode".into(),
                ok: false,
                detail: Some(e.to_string()),
            }];
        }
    };
    let hex = provd_devices::timeline::hex;
    let cm = v.kind == provd_docsis::FileKind::Cm;
    [
        ("cm_mic", &v.cm_mic, cm),
        ("cmts_mic", &v.cmts_mic, false),
        ("mta_hash", &v.mta_hash, false),
    ]
    .into_iter()
    .filter_map(|(check, c, required)| {
        let (ok, detail) = match c {
            Check::Verified { found } => (true, format!("verified {}", hex(found))),
            Check::NotChecked { found } => (
                true,
                format!("{} not checked: no shared secret", hex(found)),
            ),
            Check::Mismatch { found, computed } => (
                false,
                format!("file has {}, computed {}", hex(found), hex(computed)),
            ),
            Check::Absent if required => (false, "absent".to_owned()),
            Check::Absent => return None,
        };
        Some(Verdict {
            check: check.into(),
            ok,
            detail: Some(detail),
        })
    })
    .collect()
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
    Err(ServiceError::Unreachable(format!(
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
    /// The MTA role's live record, else the last one it stored (a flow of before a restart).
    fn mta_record(&self, mac: Mac) -> Option<serde_json::Value> {
        let live = self.roles().and_then(|r| {
            let v: serde_json::Value =
                serde_json::from_str(&r.answer(&format!("mta {mac}"))).ok()?;
            v.get("error").is_none().then_some(v)
        });
        live.or_else(|| {
            self.store
                .get_document(MTA_RECORDS, &mac.to_string())
                .ok()
                .flatten()
                .map(|d| d.body)
        })
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

    fn health(&self) -> serde_json::Value {
        let mut out = serde_json::Map::new();
        for role in self.roles().iter().flat_map(|r| r.iter()) {
            let h = match role.health() {
                Health::Serving => serde_json::json!({ "serving": true }),
                Health::Degraded(why) => serde_json::json!({ "serving": false, "problem": why }),
            };
            out.insert(role.name().to_string(), h);
        }
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

/// The store's collection of MTA provisioning records, by MAC.
pub const MTA_RECORDS: &str = "mta";

/// Each MTA flow milestone into the device's timeline, and its record into the store.
pub fn mta_hook(timeline: Timeline) -> provd_mtad::RecordHook {
    Arc::new(move |mac, what, record| {
        let detail = serde_json::from_str(&record).unwrap_or(serde_json::Value::Null);
        timeline.event(mac, Source::Mta, what, detail);
        timeline.report(Happening::Document {
            collection: MTA_RECORDS,
            id: Mac(mac).to_string(),
            body: record,
        });
    })
}

/// An MTA's record as [`mta_hook`] stored it, for `mta MAC` after a restart.
pub fn mta_recall(store: Arc<dyn Store>) -> provd_mtad::RecallHook {
    Arc::new(move |mac| {
        store
            .get_document(MTA_RECORDS, &Mac(mac).to_string())
            .ok()
            .flatten()
            .map(|d| d.body.to_string())
    })
}

/// Each syslog line from a device known by MAC into its timeline.
pub fn syslog_hook(timeline: Timeline) -> provd_syslog::Tap {
    Box::new(move |mac, msg| {
        timeline.event(
            mac,
            Source::Syslog,
            "log",
            serde_json::json!({
                "severity": msg.severity,
                "facility": msg.facility,
                "app": msg.app_name,
                "text": msg.text,
            }),
        );
    })
}

/// Each time answer into the timeline of the device leased the client's address.
pub fn tod_hook(timeline: Timeline, devices: Arc<DeviceView>) -> provd_tod::Tap {
    Box::new(move |ip, proto| {
        if let Some(mac) = devices.device_at(ip, unix_secs_u32()) {
            timeline.event(
                mac,
                Source::Time,
                "time-served",
                serde_json::json!({ "proto": proto }),
            );
        }
    })
}

/// Each HTTP profile served into the device's timeline, with its version.
pub fn http_hook(timeline: Timeline) -> provd_httpd::ProfileServed {
    Box::new(move |mac, version, remote, tls| {
        timeline.event(
            mac,
            Source::Http,
            "profile-served",
            serde_json::json!({ "version": version, "remote": remote.to_string(), "tls": tls }),
        );
    })
}

/// Each CWMP session that ended into the timeline of the device leased the CPE's address (a
/// CPE provd did not lease an address to has no MAC here, and no timeline).
pub fn cwmp_hook(timeline: Timeline, devices: Arc<DeviceView>) -> provd_acsd::SessionHook {
    Box::new(move |remote, device_id, outcome| {
        let std::net::IpAddr::V4(ip) = remote.ip() else {
            return;
        };
        if let Some(mac) = devices.device_at(ip, unix_secs_u32()) {
            timeline.event(
                mac,
                Source::Cwmp,
                "session",
                serde_json::json!({ "device_id": device_id, "remote": remote.to_string(), "outcome": outcome }),
            );
        }
    })
}

#[cfg(test)]
mod tests {
    use super::{hex, remote_id_query, verdicts_of};

    #[test]
    fn a_rendered_file_gets_one_verdict_per_integrity_value() {
        let text = "Main { NetworkAccess 1; MaxCPE 3; }";
        let file = provd_docsis::text::parse(text).unwrap();
        let bytes = provd_docsis::encode_cm(&file, b"DOCSIS").unwrap();
        let seen = |v: Vec<super::Verdict>| -> Vec<(String, bool)> {
            v.into_iter().map(|v| (v.check, v.ok)).collect()
        };
        let ok = |c: &str, ok: bool| (c.to_owned(), ok);
        assert_eq!(
            seen(verdicts_of(&bytes, Some(b"DOCSIS"))),
            [ok("cm_mic", true), ok("cmts_mic", true)]
        );
        // Without the secret the CMTS MIC is not checked (not failed); with a wrong one it fails.
        assert_eq!(
            seen(verdicts_of(&bytes, None)),
            [ok("cm_mic", true), ok("cmts_mic", true)]
        );
        assert_eq!(
            seen(verdicts_of(&bytes, Some(b"wrong"))),
            [ok("cm_mic", true), ok("cmts_mic", false)]
        );
        // A changed byte before the MICs breaks both.
        let mut bad = bytes.clone();
        bad[2] ^= 1;
        assert_eq!(
            seen(verdicts_of(&bad, Some(b"DOCSIS"))),
            [ok("cm_mic", false), ok("cmts_mic", false)]
        );
    }

    #[test]
    fn remote_id_queries_read_as_the_api_shows_them() {
        let id = [0x00, 0x15, 0xcf, 0x12, 0x34, 0xAB];
        let shown = hex(&id);
        assert_eq!(shown, "0015cf1234ab");
        assert_eq!(remote_id_query(&shown).as_deref(), Some(&id[..]));
        for q in [
            "0015cf1234ab",
            "00:15:CF:12:34:AB",
            "00-15-cf-12-34-ab",
            "0015.cf12.34ab",
        ] {
            assert_eq!(remote_id_query(q).as_deref(), Some(&id[..]), "{q}");
        }
        for q in ["", "0", "zz", "00:15:cf:12:34:a", "00 15", "+1", "é"] {
            assert_eq!(remote_id_query(q), None, "{q}");
        }
    }
}

/// The template routes over the real pipeline: the API router with [`Ops`], a SQLite store
/// behind [`Following`], the catalog, and the generator the TFTP role serves from.
#[cfg(test)]
mod template_tests {
    use std::sync::Arc;

    use axum::body::Body;
    use axum::http::{Request, StatusCode};
    use provd_api::{ApiSettings, Services};
    use provd_devices::DeviceView;
    use provd_devices::catalog::{Catalog, Following};
    use provd_store::{Actor, ClassSpec, DeviceKind, DeviceSpec, Expect, Mac, Store, TokenRole};
    use serde_json::{Value, json};
    use tower::ServiceExt;

    use super::Ops;

    const MAC: Mac = Mac([0x00, 0x11, 0x22, 0xaa, 0xbb, 0x01]);
    const FILE: &str = "Main {\n\tNetworkAccess 1;\n\tMaxCPE {{ cos.max_cpe if cos else 1 }};\n}\n";

    #[derive(Debug)]
    struct NoLeases;
    impl provd_api::LeaseIndex for NoLeases {
        fn search(&self, _: &provd_api::LeaseQuery, _: u32) -> Vec<provd_api::Lease> {
            Vec::new()
        }
        fn release(&self, mac: Mac) -> Result<(), provd_api::ServiceError> {
            Err(provd_api::ServiceError::NotFound(format!("{mac}")))
        }
    }

    #[derive(Debug)]
    struct NoRoles;
    impl provd_api::RoleView for NoRoles {
        fn mta_record(&self, _: Mac) -> Option<Value> {
            None
        }
        fn syslog_events(&self, _: &provd_api::SyslogQuery, _: u32) -> Vec<Value> {
            Vec::new()
        }
        fn stats(&self) -> Value {
            json!({})
        }
        fn metrics(&self) -> String {
            String::new()
        }
    }

    struct Rig {
        _dir: tempfile::TempDir,
        router: axum::Router,
        store: Arc<dyn Store>,
        generator: Arc<provd_files::Generator>,
    }

    fn rig() -> Rig {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("cm.j2"), FILE).unwrap();
        let mut policy = provd_config::testing::policy(
            r#"
[tftp]
enforce = false
[[class]]
name = "cm"
match = "docsis*"
boot_file = "cm/{mac}.cfg"
[class.config_file]
template = "cm.j2"
kind = "docsis"
shared_secret = ""
"#,
        );
        policy.resolve_paths(dir.path());
        let raw = provd_store::open(&provd_store::Location::Embedded(
            dir.path().join("store.db"),
        ))
        .unwrap();
        let catalog = Arc::new(Catalog::load(&*raw).unwrap());
        let store: Arc<dyn Store> = Arc::new(Following::new(raw, Arc::clone(&catalog)));
        let view = Arc::new(DeviceView::new());
        let generator = Arc::new(
            provd_files::Generator::new(&policy, Arc::clone(&view))
                .unwrap()
                .with_catalog(Arc::clone(&catalog)),
        );
        store
            .put_token(
                &provd_store::TokenSpec {
                    name: "op".into(),
                    role: TokenRole::Operator,
                    scope: Default::default(),
                    hash: provd_api::token_hash("secret-op"),
                },
                &Actor::System,
            )
            .unwrap();
        let ops = Ops {
            reset: provd_config::ResetSettings {
                community: "private".into(),
                port: 161,
                timeout_ms: 100,
            },
            store: Arc::clone(&store),
            acs: None,
            devices: Some(view),
            catalog,
            reloader: std::sync::OnceLock::new(),
            generator: Some(Arc::clone(&generator)),
            policy: Arc::new(policy),
        };
        let router = provd_api::router(
            Services {
                store: Arc::clone(&store),
                leases: Arc::new(NoLeases),
                actions: Arc::new(ops),
                roles: Arc::new(NoRoles),
                acs: None,
            },
            ApiSettings::default(),
        );
        Rig {
            _dir: dir,
            router,
            store,
            generator,
        }
    }

    impl Rig {
        async fn call(&self, method: &str, path: &str, body: Option<Value>) -> (StatusCode, Value) {
            let req = Request::builder()
                .method(method)
                .uri(path)
                .header("authorization", "Bearer secret-op")
                .header("content-type", "application/json")
                .body(body.map_or_else(Body::empty, |b| Body::from(b.to_string())))
                .unwrap();
            let resp = self.router.clone().oneshot(req).await.unwrap();
            let status = resp.status();
            let bytes = axum::body::to_bytes(resp.into_body(), 1 << 20)
                .await
                .unwrap();
            let v = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
            (status, v)
        }

        /// The file the TFTP role would serve the device now: its MaxCPE.
        fn served_max_cpe(&self) -> u32 {
            let bytes = self
                .generator
                .file(
                    "cm/001122aabb01.cfg",
                    std::net::Ipv4Addr::new(10, 1, 0, 20),
                    1,
                )
                .unwrap()
                .unwrap();
            max_cpe(&provd_docsis::text::print(
                &provd_docsis::decode(&bytes).unwrap().file,
            ))
        }
    }

    fn max_cpe(text: &str) -> u32 {
        text.lines()
            .find_map(|l| {
                l.trim()
                    .strip_prefix("MaxCPE ")?
                    .strip_suffix(';')?
                    .parse()
                    .ok()
            })
            .unwrap_or_else(|| panic!("no MaxCPE in {text}"))
    }

    fn problem(v: &Value) -> (Value, Value, Value) {
        assert_eq!(v["code"], "template_invalid", "{v}");
        let p = &v["detail"]["problems"][0];
        (p["stage"].clone(), p["line"].clone(), p["column"].clone())
    }

    #[tokio::test]
    async fn a_checked_save_reaches_the_tftp_path_and_invalid_ones_are_refused_where_wrong() {
        let r = rig();
        let versions = "/api/v1/templates/cm.j2/versions";
        let (s, list) = r.call("GET", "/api/v1/templates", None).await;
        assert_eq!(s, StatusCode::OK);
        assert_eq!(
            (
                &list["items"][0]["name"],
                &list["items"][0]["version"],
                &list["items"][0]["source"]
            ),
            (&json!("cm.j2"), &json!(0), &json!("file")),
            "{list}"
        );
        let (_, cur) = r.call("GET", "/api/v1/templates/cm.j2", None).await;
        assert_eq!(cur["text"], FILE);
        assert_eq!(r.served_max_cpe(), 1, "the file, and now in the cache");

        // Refused where they are wrong, and nothing saved.
        for (text, want) in [
            (
                "Main {\n\tNetworkAccess 1;\n\tMaxCPE {{ 1 + }};\n}\n",
                (json!("syntax"), json!(3), json!(16)),
            ),
            (
                "Main {\n\tNetworkAccess 1;\n\tMaxCPE {{ vars.max_cpe }};\n}\n",
                (json!("render"), json!(3), json!(12)),
            ),
            (
                "Main {\n\tNetworkAccess 1;\n\tNoSuchThing 1;\n}\n",
                (json!("compile"), Value::Null, Value::Null),
            ),
        ] {
            let (s, e) = r
                .call("POST", versions, Some(json!({ "text": text })))
                .await;
            assert_eq!(s, StatusCode::BAD_REQUEST, "{e}");
            assert_eq!(problem(&e), want, "{e}");
        }
        assert_eq!(r.store.latest_template_version("cm.j2").unwrap(), None);
        assert_eq!(r.served_max_cpe(), 1);

        // A valid save: the next fetch renders it, not the cached file.
        let (s, v) = r
            .call(
                "POST",
                versions,
                Some(json!({ "text": FILE.replace("cos.max_cpe if cos else 1", "9") })),
            )
            .await;
        assert_eq!((s, &v["version"]), (StatusCode::CREATED, &json!(1)), "{v}");
        assert_eq!(r.served_max_cpe(), 9, "live, without a restart");
        let (_, list) = r.call("GET", "/api/v1/templates", None).await;
        assert_eq!(
            (&list["items"][0]["version"], &list["items"][0]["source"]),
            (&json!(1), &json!("store"))
        );

        // Previews: as another tier, from a stored version, from unsaved text.
        for (name, max) in [("gold", 16), ("silver", 2)] {
            let mut vars = provd_store::Vars::new();
            vars.insert("max_cpe".into(), json!(max));
            r.store
                .put_class(
                    &ClassSpec {
                        name: name.into(),
                        description: None,
                        vars,
                    },
                    Expect::Any,
                    &Actor::System,
                )
                .unwrap();
        }
        r.store
            .put_device(
                &DeviceSpec {
                    mac: MAC,
                    kind: DeviceKind::Cm,
                    class_of_service: Some("silver".into()),
                    ..Default::default()
                },
                Expect::Any,
                &Actor::System,
            )
            .unwrap();
        let preview = |q: String| {
            let r = &r;
            async move {
                let (s, v) = r
                    .call("GET", &format!("/api/v1/templates/preview?{q}"), None)
                    .await;
                assert_eq!(s, StatusCode::OK, "{v}");
                max_cpe(v["text"].as_str().unwrap())
            }
        };
        assert_eq!(preview(format!("mac={MAC}&kind=cm")).await, 9, "as served");
        assert_eq!(
            preview(format!("mac={MAC}&kind=cm&name=cm.j2&version=0")).await,
            2,
            "the file, for a silver device"
        );
        assert_eq!(
            preview(format!(
                "mac={MAC}&kind=cm&name=cm.j2&version=0&class_of_service=gold"
            ))
            .await,
            16,
            "the file, as gold"
        );
        let (s, v) = r
            .call(
                "POST",
                "/api/v1/templates/preview",
                Some(json!({"mac": MAC, "kind": "cm", "text": FILE, "class_of_service": "gold"})),
            )
            .await;
        assert_eq!(
            (s, max_cpe(v["text"].as_str().unwrap_or(""))),
            (StatusCode::OK, 16)
        );
        let (s, e) = r
            .call(
                "POST",
                "/api/v1/templates/preview",
                Some(json!({"mac": MAC, "kind": "cm", "text": "Main {\n\tMaxCPE {{ cos.nope }};\n}\n"})),
            )
            .await;
        assert_eq!(s, StatusCode::BAD_REQUEST);
        assert_eq!(problem(&e).0, json!("render"), "{e}");
        let (s, e) = r
            .call(
                "GET",
                &format!("/api/v1/templates/preview?mac={MAC}&kind=cm&class_of_service=bronze"),
                None,
            )
            .await;
        assert_eq!(
            (s, &e["field"]),
            (StatusCode::BAD_REQUEST, &json!("class_of_service"))
        );

        // Rollback to the file: the device gets the file's render again (its tier now).
        let (s, v) = r
            .call(
                "POST",
                "/api/v1/templates/cm.j2/rollback",
                Some(json!({"version": 0})),
            )
            .await;
        assert_eq!((s, &v["version"]), (StatusCode::CREATED, &json!(2)), "{v}");
        assert_eq!(r.served_max_cpe(), 2);
    }
}
