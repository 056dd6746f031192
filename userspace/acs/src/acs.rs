//! The ACS: what a session does to the device store, the task queues, presets and campaigns.
//!
//! [`Acs::driver`] gives the [`provd_cwmp::Driver`] of one session. On the Inform it files the
//! device (creating it when `auto_register`), records its events, caches the parameters the
//! Inform carries, then queues what presets and campaigns want (idempotently: a preset whose
//! values the cache already shows, or whose task is already queued, queues nothing). Requests
//! leave the device's queue one at a time; the answer is filed into the parameter cache and
//! the task's record; a request the session could not finish goes back to the queue front
//! (three attempts).
//!
//! Value-change ("4 VALUE CHANGE") and alarm events (vendor events naming an alarm, or
//! `FaultMgmt` parameters in the Inform) are counted and kept in the device's history.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};

use dashmap::DashMap;
use provd_config::{AcsSettings, DeviceMatch, Firmware};
use provd_cwmp::{Driver, Envelope, Fault, Inform, ParameterValue, Rpc, default_answer};
use serde::{Deserialize, Serialize};

use crate::intern::Sym;
use crate::journal::Journal;
use crate::store::{CampaignMark, Device, DeviceKey, EventRecord, Origin, Param, Store, Task};

/// Counters of the whole ACS.
#[derive(Debug, Default)]
pub struct Counters {
    pub informs: AtomicU64,
    pub informs_refused: AtomicU64,
    pub new_devices: AtomicU64,
    /// Informs of unknown devices refused by `max_devices` or the new-device rate.
    pub new_devices_refused: AtomicU64,
    pub requests_sent: AtomicU64,
    pub answers: AtomicU64,
    pub cpe_faults: AtomicU64,
    pub abandoned: AtomicU64,
    pub transfer_completes: AtomicU64,
    pub value_changes: AtomicU64,
    pub alarms: AtomicU64,
    pub bad_envelopes: AtomicU64,
    pub out_of_order: AtomicU64,
    pub auth_failures: AtomicU64,
    /// Authentication attempts refused unchecked: their source or username is locked out
    /// after failed guesses ([`crate::throttle`]).
    pub auth_throttled: AtomicU64,
    /// Envelopes refused for the work they would cost (size, elements, attributes, namespace
    /// declarations, the time budget): fault 8004.
    pub envelopes_over_limit: AtomicU64,
    pub sessions: AtomicU64,
    /// Task journal appends that failed (see [`crate::journal`]).
    pub journal_errors: AtomicU64,
}

/// A firmware campaign's tallies.
#[derive(Debug, Default)]
pub struct CampaignCounts {
    pub in_progress: AtomicU32,
    pub succeeded: AtomicU32,
    pub failed: AtomicU32,
    /// The most that were in progress at once.
    pub peak: AtomicU32,
}

#[derive(Debug, Clone, Serialize)]
pub struct TaskInfo {
    pub id: u64,
    pub device: String,
    pub method: &'static str,
    pub state: TaskState,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fault: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub result: Option<serde_json::Value>,
    pub attempts: u8,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum TaskState {
    Queued,
    Sent,
    Done,
    Fault,
    Failed,
}

/// Most task records kept; the oldest finished ones go first.
const MAX_TASK_RECORDS: usize = 200_000;
const MAX_ATTEMPTS: u8 = 3;

/// The ACS state.
#[derive(Debug)]
pub struct Acs {
    pub store: Store,
    pub settings: AcsSettings,
    pub counters: Counters,
    pub campaigns: Vec<CampaignCounts>,
    tasks: DashMap<u64, TaskInfo, foldhash::fast::RandomState>,
    finished: std::sync::Mutex<std::collections::VecDeque<u64>>,
    next_task: AtomicU64,
    syms: Syms,
    /// Where API tasks are made durable before they are acknowledged (none: in memory only).
    journal: std::sync::OnceLock<Journal>,
    /// One snapshot at a time.
    pub(crate) snapshot_lock: std::sync::Mutex<()>,
    /// Held (shared) from an API task's journal line until it is in the device's queue, and
    /// (exclusive) by a snapshot while it rotates the journal: so a task journaled before the
    /// rotation is in memory, hence in the snapshot, before the old journal is dropped.
    pub(crate) queue_gate: std::sync::RwLock<()>,
    /// The new-device rate (`new_devices_per_sec`, `new_devices_burst`).
    new_device_gate: std::sync::Mutex<TokenBucket>,
}

/// Tokens refilled `rate` a second up to `burst`, at one-second resolution.
#[derive(Debug)]
struct TokenBucket {
    tokens: u64,
    last: u32,
}

impl TokenBucket {
    fn take(&mut self, now: u32, rate: u32, burst: u32) -> bool {
        let elapsed = u64::from(now.saturating_sub(self.last));
        self.tokens = (self.tokens + elapsed * u64::from(rate)).min(u64::from(burst));
        self.last = self.last.max(now);
        match self.tokens.checked_sub(1) {
            Some(t) => {
                self.tokens = t;
                true
            }
            None => false,
        }
    }
}

/// Why a task was not queued.
#[derive(Debug, thiserror::Error)]
pub enum QueueError {
    #[error("no such device")]
    NoDevice,
    #[error("the task could not be made durable: {0}")]
    Journal(#[from] std::io::Error),
}

/// Symbols looked up on every Inform.
#[derive(Debug)]
struct Syms {
    empty: Sym,
    string: Sym,
}

impl Acs {
    pub fn new(settings: AcsSettings) -> Self {
        let burst = settings.new_devices_burst;
        let store = Store::default();
        let syms = Syms {
            empty: store.names.intern(""),
            string: store.names.intern("string"),
        };
        Acs {
            campaigns: settings
                .campaigns
                .iter()
                .map(|_| CampaignCounts::default())
                .collect(),
            store,
            settings,
            counters: Counters::default(),
            tasks: DashMap::default(),
            finished: Default::default(),
            next_task: AtomicU64::new(1),
            syms,
            journal: std::sync::OnceLock::new(),
            snapshot_lock: std::sync::Mutex::new(()),
            queue_gate: std::sync::RwLock::new(()),
            new_device_gate: std::sync::Mutex::new(TokenBucket {
                tokens: u64::from(burst),
                last: 0,
            }),
        }
    }

    /// From now on, API tasks are journaled (synced) before they are queued; see
    /// [`crate::journal`]. Set once, after loading the snapshot.
    pub fn set_journal(&self, journal: Journal) {
        let _ = self.journal.set(journal);
    }

    pub(crate) fn journal(&self) -> Option<&Journal> {
        self.journal.get()
    }

    /// Notes in the journal that task `seq` left the queue.
    fn journal_done(&self, seq: u64) {
        if seq != 0
            && let Some(j) = self.journal.get()
            && j.done(seq).is_err()
        {
            // At worst the task runs again after a crash; counted for the operator.
            self.counters.journal_errors.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// The driver for one session; `state` is kept by the caller between requests.
    pub fn driver<'a>(
        &'a self,
        state: &'a mut SessionDevice,
        port: u16,
        path: &'a str,
    ) -> AcsDriver<'a> {
        AcsDriver {
            acs: self,
            state,
            port,
            path,
        }
    }

    // -----------------------------------------------------------------------------------------
    // Informs

    /// May an unknown device be registered at `now`? Refused over `max_devices` (fault 8001,
    /// the operator must raise the cap) or over the new-device rate (fault 8005: the CPE
    /// retries with its own backoff). Holders of the shared CPE credentials could otherwise
    /// fill the store with made-up devices (2,000 in 0.8 s in the review).
    fn admit_new_device(&self, now: u32, rated: bool) -> Result<(), Fault> {
        let s = &self.settings;
        let verdict = if self.store.len() >= s.max_devices {
            Err(Fault::new(provd_cwmp::fault::REQUEST_DENIED))
        } else if rated
            && !self
                .new_device_gate
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .take(now, s.new_devices_per_sec, s.new_devices_burst)
        {
            Err(Fault::new(provd_cwmp::fault::RETRY_REQUEST))
        } else {
            Ok(())
        };
        if verdict.is_err() {
            self.counters
                .new_devices_refused
                .fetch_add(1, Ordering::Relaxed);
            self.counters
                .informs_refused
                .fetch_add(1, Ordering::Relaxed);
        }
        verdict
    }

    /// Files an Inform: the device record, its events and parameters, and what presets and
    /// campaigns want queued. `Err` refuses the session.
    pub fn on_inform(
        &self,
        now: u32,
        env: &Envelope,
        inform: &Inform,
        port: u16,
        path: &str,
    ) -> Result<DeviceKey, Fault> {
        self.file_inform(now, env, inform, port, path, true)
    }

    /// [`on_inform`](Self::on_inform); `rated`: a new device counts against the new-device
    /// rate (a CPE's Inform), or only against `max_devices` (the operator's seed).
    fn file_inform(
        &self,
        now: u32,
        env: &Envelope,
        inform: &Inform,
        port: u16,
        path: &str,
        rated: bool,
    ) -> Result<DeviceKey, Fault> {
        let id = &inform.device_id;
        if id.oui.is_empty()
            || id.serial_number.is_empty()
            || id.oui.len() > 64
            || id.serial_number.len() > 64
            || id.product_class.len() > 64
        {
            self.counters
                .informs_refused
                .fetch_add(1, Ordering::Relaxed);
            return Err(Fault::new(8003));
        }
        let key = self
            .store
            .key(&id.oui, &id.product_class, &id.serial_number);
        let names = &self.store.names;
        let mut dev = match self.store.devices.get_mut(&key) {
            Some(d) => d,
            None if self.settings.auto_register => {
                self.admit_new_device(now, rated)?;
                self.counters.new_devices.fetch_add(1, Ordering::Relaxed);
                self.store
                    .devices
                    .entry(key.clone())
                    .or_insert_with(|| Device {
                        first_seen: now,
                        ..Device::default()
                    })
            }
            None => {
                self.counters
                    .informs_refused
                    .fetch_add(1, Ordering::Relaxed);
                return Err(Fault::new(8001));
            }
        };
        self.counters.informs.fetch_add(1, Ordering::Relaxed);
        let d = &mut *dev;
        if d.first_seen == 0 {
            d.first_seen = now;
        }
        d.last_inform = now;
        d.informs = d.informs.saturating_add(1);
        d.cwmp_version = env.version.0;
        d.last_port = port;
        d.last_path = names.intern(path);
        if d.manufacturer == self.syms.empty
            || names.resolve(d.manufacturer).as_ref() != id.manufacturer
        {
            d.manufacturer = names.intern(&id.manufacturer);
        }
        if let Some(p) = inform.parameters.first() {
            d.root = if p.name.starts_with("InternetGatewayDevice.") {
                2
            } else {
                1
            };
        }
        let bootstrap = inform.has_event("0 BOOTSTRAP");
        let max_events = self.settings.events_per_device;
        let more = d.more.get_or_insert_with(Box::default);
        if bootstrap {
            // A new device as far as CWMP goes (factory reset, new ACS URL): what we cached
            // about it no longer holds.
            more.params.clear();
            more.awaiting_transfer.clear();
        }
        for e in &inform.events {
            more.push_event(
                max_events,
                EventRecord {
                    at: now,
                    code: names.intern(&e.code),
                    detail: e.command_key.as_str().into(),
                },
            );
            if e.code == "4 VALUE CHANGE" {
                self.counters.value_changes.fetch_add(1, Ordering::Relaxed);
            }
            if e.code.starts_with("X ") && e.code.to_ascii_uppercase().contains("ALARM") {
                self.counters.alarms.fetch_add(1, Ordering::Relaxed);
            }
        }
        let mut software = None;
        let mut cr_url = None;
        let mut udp_cr = None;
        for p in &inform.parameters {
            if p.name.len() > 256 {
                continue;
            }
            if p.name.contains(".FaultMgmt.") {
                self.counters.alarms.fetch_add(1, Ordering::Relaxed);
                more.push_event(
                    max_events,
                    EventRecord {
                        at: now,
                        code: names.intern("ALARM"),
                        detail: format!("{}={}", p.name, p.value).into(),
                    },
                );
            }
            if p.name.ends_with(".DeviceInfo.SoftwareVersion") {
                software = Some(p.value.as_str());
            } else if p.name.ends_with(".ManagementServer.ConnectionRequestURL") {
                cr_url = Some(p.value.as_str());
            } else if p
                .name
                .ends_with(".ManagementServer.UDPConnectionRequestAddress")
            {
                udp_cr = Some(p.value.as_str());
            }
            let ty = if p.ty == "string" {
                self.syms.string
            } else {
                names.intern(&p.ty)
            };
            let param = more.param_mut(names.intern(&p.name));
            if &*param.value != p.value.as_str() {
                param.value = p.value.as_str().into();
            }
            param.ty = ty;
            param.updated = now;
            param.flags |= Param::VALUE_KNOWN;
        }
        if let Some(s) = udp_cr
            && more.udp_cr.as_deref() != Some(s)
        {
            more.udp_cr = (!s.is_empty()).then(|| s.into());
        }
        if let Some(s) = software {
            d.software_version = names.intern(s);
        }
        if let Some(u) = cr_url
            && d.cr_url.as_deref() != Some(u)
        {
            d.cr_url = (!u.is_empty()).then(|| u.into());
        }
        self.apply_presets(&key, d, inform);
        self.apply_campaigns(now, &key, d);
        Ok(key)
    }

    fn matches(
        &self,
        key: &DeviceKey,
        d: &Device,
        m: &DeviceMatch,
        inform: Option<&Inform>,
    ) -> bool {
        let names = &self.store.names;
        if let Some(o) = &m.oui
            && names.get(o) != Some(key.oui)
        {
            return false;
        }
        if let Some(pc) = &m.product_class
            && names.get(pc) != Some(key.product_class)
        {
            return false;
        }
        if let Some(g) = &m.serial
            && !g.matches(key.serial.as_bytes())
        {
            return false;
        }
        if !m.events.is_empty() {
            let Some(i) = inform else { return false };
            if !m.events.iter().any(|e| i.has_event(e)) {
                return false;
            }
        }
        for (name, want) in &m.parameters {
            let have = names
                .get(name)
                .and_then(|n| d.more.as_ref()?.param(n))
                .filter(|p| p.flags & Param::VALUE_KNOWN != 0);
            if have.is_none_or(|p| &*p.value != want.as_str()) {
                return false;
            }
        }
        true
    }

    fn apply_presets(&self, key: &DeviceKey, d: &mut Device, inform: &Inform) {
        let names = &self.store.names;
        for (i, p) in self.settings.presets.iter().enumerate() {
            if !self.matches(key, d, &p.matches, Some(inform)) {
                continue;
            }
            let origin = Origin::Preset(i as u16);
            if d.more().has_task(origin) {
                continue;
            }
            let root = d.root_prefix();
            let mut want: Vec<ParameterValue> = p
                .set
                .iter()
                .map(|v| ParameterValue::new(v.name.clone(), v.value.clone(), v.ty))
                .collect();
            if let Some(s) = p.periodic_inform_interval {
                want.push(ParameterValue::new(
                    format!("{root}ManagementServer.PeriodicInformEnable"),
                    "true",
                    "boolean",
                ));
                want.push(ParameterValue::new(
                    format!("{root}ManagementServer.PeriodicInformInterval"),
                    s.to_string(),
                    "unsignedInt",
                ));
            }
            let more = d.more();
            want.retain(|v| {
                let have = names.get(&v.name).and_then(|n| more.param(n));
                !have.is_some_and(|h| {
                    h.flags & Param::VALUE_KNOWN != 0 && same_value(&h.value, &v.value)
                })
            });
            if !want.is_empty() {
                let rpc = Rpc::SetParameterValues {
                    parameters: want,
                    parameter_key: format!("preset:{}", p.name),
                };
                self.queue(key, d, rpc, origin, 0);
            }
            if let Some(fw) = &p.firmware {
                let ck = format!("preset:{}", p.name);
                if names.resolve(d.software_version).as_ref() != fw.version
                    && !d.more().awaiting_transfer.iter().any(|k| **k == *ck)
                {
                    let rpc = download(fw, ck);
                    self.queue(key, d, rpc, origin, 0);
                }
            }
        }
    }

    fn apply_campaigns(&self, now: u32, key: &DeviceKey, d: &mut Device) {
        for (i, c) in self.settings.campaigns.iter().enumerate() {
            let idx = i as u16;
            let counts = &self.campaigns[i];
            let mark = d.more.as_ref().and_then(|m| m.campaign(idx));
            if mark.is_some() || !self.matches(key, d, &c.matches, None) {
                continue;
            }
            if self.store.names.resolve(d.software_version).as_ref() == c.firmware.version {
                continue;
            }
            // Take a slot if one is free.
            let taken = counts
                .in_progress
                .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                    (n < c.max_concurrent).then_some(n + 1)
                })
                .is_ok();
            if !taken {
                continue;
            }
            let now_in = counts.in_progress.load(Ordering::Acquire);
            counts.peak.fetch_max(now_in, Ordering::AcqRel);
            d.more()
                .set_campaign(idx, CampaignMark::InProgress { since: now });
            let rpc = download(&c.firmware, format!("campaign:{}", c.name));
            self.queue(key, d, rpc, Origin::Campaign(idx), 0);
        }
    }

    fn campaign_done(&self, d: &mut Device, idx: u16, fault: u32) {
        let Some(CampaignMark::InProgress { .. }) = d.more().campaign(idx) else {
            return;
        };
        let counts = &self.campaigns[idx as usize];
        counts.in_progress.fetch_sub(1, Ordering::AcqRel);
        if fault == 0 {
            counts.succeeded.fetch_add(1, Ordering::Relaxed);
            d.more().set_campaign(idx, CampaignMark::Succeeded);
        } else {
            counts.failed.fetch_add(1, Ordering::Relaxed);
            d.more()
                .set_campaign(idx, CampaignMark::Failed { code: fault });
        }
    }

    fn campaign_of_key(&self, command_key: &str) -> Option<u16> {
        let name = command_key.strip_prefix("campaign:")?;
        self.settings
            .campaigns
            .iter()
            .position(|c| c.name == name)
            .map(|i| i as u16)
    }

    // -----------------------------------------------------------------------------------------
    // Tasks

    fn queue(&self, key: &DeviceKey, d: &mut Device, rpc: Rpc, origin: Origin, seq: u64) -> u64 {
        let id = self.next_task.fetch_add(1, Ordering::Relaxed);
        self.tasks.insert(
            id,
            TaskInfo {
                id,
                device: self.store.display(key),
                method: rpc.method(),
                state: TaskState::Queued,
                fault: None,
                result: None,
                attempts: 0,
            },
        );
        if let Rpc::Download(dl) = &rpc {
            d.more()
                .awaiting_transfer
                .push(dl.command_key.as_str().into());
        }
        d.more().queue.push_back(Task {
            id,
            rpc,
            origin,
            attempts: 0,
            seq,
        });
        id
    }

    /// Journals `rpc` for `keys` (when there is a journal); returns the first sequence number.
    fn journal_queued(&self, keys: &[DeviceKey], rpc: &Rpc) -> Result<u64, QueueError> {
        let Some(j) = self.journal.get() else {
            return Ok(0);
        };
        let devs: Vec<_> = keys.iter().map(|k| self.store.id_parts(k)).collect();
        let env = Envelope::new(provd_cwmp::Version::V1_2, None, rpc.clone()).to_xml();
        Ok(j.queued(&devs, &env)?)
    }

    /// Queues `rpc` for one device (task API), durable (journaled) before this returns.
    pub fn queue_for(&self, now: u32, key: &DeviceKey, rpc: Rpc) -> Result<u64, QueueError> {
        let _ = now;
        let _gate = self.queue_gate.read().unwrap_or_else(|p| p.into_inner());
        if !self.store.devices.contains_key(key) {
            return Err(QueueError::NoDevice);
        }
        let seq = self.journal_queued(std::slice::from_ref(key), &rpc)?;
        let mut d = self
            .store
            .devices
            .get_mut(key)
            .ok_or(QueueError::NoDevice)?;
        Ok(self.queue(key, &mut d, rpc, Origin::Api, seq))
    }

    /// Queues `rpc` for every device `filter` matches (at most `limit`), durable before this
    /// returns; returns the task ids.
    pub fn queue_filtered(
        &self,
        now: u32,
        filter: &Filter,
        rpc: &Rpc,
        limit: usize,
    ) -> Result<Vec<u64>, QueueError> {
        let _ = now;
        let _gate = self.queue_gate.read().unwrap_or_else(|p| p.into_inner());
        let m = filter.to_match();
        let mut keys = Vec::new();
        for e in self.store.devices.iter() {
            if keys.len() >= limit {
                break;
            }
            if !self.matches(e.key(), e.value(), &m, None) {
                continue;
            }
            if let Some(v) = &filter.software_version
                && self
                    .store
                    .names
                    .resolve(e.value().software_version)
                    .as_ref()
                    != v
            {
                continue;
            }
            keys.push(e.key().clone());
        }
        let first = self.journal_queued(&keys, rpc)?;
        let mut ids = Vec::with_capacity(keys.len());
        for (i, key) in keys.iter().enumerate() {
            // Devices are never removed, so each is still there.
            if let Some(mut d) = self.store.devices.get_mut(key) {
                let seq = if first == 0 { 0 } else { first + i as u64 };
                ids.push(self.queue(key, &mut d, rpc.clone(), Origin::Api, seq));
            }
        }
        Ok(ids)
    }

    pub fn task(&self, id: u64) -> Option<TaskInfo> {
        self.tasks.get(&id).map(|t| t.clone())
    }

    fn task_update(&self, id: u64, f: impl FnOnce(&mut TaskInfo)) {
        let mut done = false;
        if let Some(mut t) = self.tasks.get_mut(&id) {
            f(&mut t);
            done = matches!(
                t.state,
                TaskState::Done | TaskState::Fault | TaskState::Failed
            );
        }
        if done {
            let mut fin = self.finished.lock().unwrap_or_else(|p| p.into_inner());
            fin.push_back(id);
            while fin.len() > MAX_TASK_RECORDS {
                if let Some(old) = fin.pop_front() {
                    self.tasks.remove(&old);
                }
            }
        }
    }

    /// Registers a device without an Inform (bulk seeding for benchmarks, or pre-provisioning
    /// through the task API): through the same path an Inform takes.
    pub fn seed(&self, now: u32, inform: &Inform) -> Result<DeviceKey, Fault> {
        let env = Envelope::new(provd_cwmp::Version::V1_2, None, Rpc::GetRpcMethods);
        // An operator's bulk registration: held to `max_devices`, not to the CPEs' rate.
        self.file_inform(now, &env, inform, 0, "/", false)
    }

    /// The device's record as JSON (task API).
    pub fn device_json(&self, key: &DeviceKey) -> Option<serde_json::Value> {
        let d = self.store.devices.get(key)?;
        let names = &self.store.names;
        let more = d.more.as_deref();
        let mut params = serde_json::Map::new();
        for (n, p) in more.map(|m| m.params.as_slice()).unwrap_or_default() {
            let mut o = serde_json::Map::new();
            if p.flags & Param::VALUE_KNOWN != 0 {
                o.insert("value".into(), p.value.as_ref().into());
                o.insert("type".into(), names.resolve(p.ty).as_ref().into());
            }
            if p.flags & Param::WRITABILITY_KNOWN != 0 {
                o.insert("writable".into(), (p.flags & Param::WRITABLE != 0).into());
            }
            if p.notification != 255 {
                o.insert("notification".into(), p.notification.into());
            }
            o.insert("updated".into(), p.updated.into());
            params.insert(names.resolve(*n).to_string(), o.into());
        }
        let events: Vec<_> = more
            .map(|m| m.events.iter().collect::<Vec<_>>())
            .unwrap_or_default()
            .into_iter()
            .map(|e| serde_json::json!({"at": e.at, "code": &*names.resolve(e.code), "detail": &*e.detail}))
            .collect();
        let queued: Vec<_> = more
            .map(|m| {
                m.inflight
                    .iter()
                    .chain(&m.queue)
                    .map(|t| serde_json::json!({"id": t.id, "method": t.rpc.method()}))
                    .collect()
            })
            .unwrap_or_default();
        let campaigns: Vec<_> = more
            .map(|m| {
                m.campaigns
                    .iter()
                    .map(|(i, mark)| serde_json::json!({"campaign": self.settings.campaigns[*i as usize].name, "state": format!("{mark:?}")}))
                    .collect()
            })
            .unwrap_or_default();
        Some(serde_json::json!({
            "id": self.store.display(key),
            "manufacturer": &*names.resolve(d.manufacturer),
            "software_version": &*names.resolve(d.software_version),
            "first_seen": d.first_seen,
            "last_inform": d.last_inform,
            "informs": d.informs,
            "cwmp": format!("1.{}", d.cwmp_version),
            "last_port": d.last_port,
            "last_path": &*names.resolve(d.last_path),
            "connection_request_url": d.cr_url.as_deref(),
            "udp_connection_request_address": more.and_then(|m| m.udp_cr.as_deref()),
            "parameters": params,
            "events": events,
            "queued": queued,
            "campaigns": campaigns,
        }))
    }

    pub fn campaigns_json(&self) -> serde_json::Value {
        self.settings
            .campaigns
            .iter()
            .zip(&self.campaigns)
            .map(|(c, n)| {
                serde_json::json!({
                    "name": c.name,
                    "version": c.firmware.version,
                    "max_concurrent": c.max_concurrent,
                    "in_progress": n.in_progress.load(Ordering::Relaxed),
                    "peak": n.peak.load(Ordering::Relaxed),
                    "succeeded": n.succeeded.load(Ordering::Relaxed),
                    "failed": n.failed.load(Ordering::Relaxed),
                })
            })
            .collect()
    }

    /// The declarative presets as configured (`[[acs.preset]]`), in the order they apply.
    pub fn presets_json(&self) -> serde_json::Value {
        self.settings
            .presets
            .iter()
            .map(|p| {
                let m = &p.matches;
                serde_json::json!({
                    "name": p.name,
                    "match": {
                        "oui": m.oui,
                        "product_class": m.product_class,
                        "serial": m.serial.as_ref().map(|g| g.as_str()),
                        "events": m.events,
                        "parameters": m.parameters.iter().map(|(n, v)| serde_json::json!({"name": n, "value": v})).collect::<Vec<_>>(),
                    },
                    "set": p.set.iter().map(|v| serde_json::json!({"name": v.name, "value": v.value, "type": v.ty})).collect::<Vec<_>>(),
                    "periodic_inform_interval": p.periodic_inform_interval,
                    "firmware": p.firmware.as_ref().map(|f| serde_json::json!({"version": f.version, "url": f.url, "file_size": f.file_size})),
                })
            })
            .collect()
    }

    /// Every counter, name and value, in a fixed order: what the ACS role reports.
    pub fn counter_entries(&self) -> Vec<(&'static str, u64)> {
        let c = &self.counters;
        let l = |a: &AtomicU64| a.load(Ordering::Relaxed);
        vec![
            ("devices", self.store.len() as u64),
            ("sessions", l(&c.sessions)),
            ("informs", l(&c.informs)),
            ("informs_refused", l(&c.informs_refused)),
            ("new_devices", l(&c.new_devices)),
            ("new_devices_refused", l(&c.new_devices_refused)),
            ("requests_sent", l(&c.requests_sent)),
            ("answers", l(&c.answers)),
            ("cpe_faults", l(&c.cpe_faults)),
            ("abandoned", l(&c.abandoned)),
            ("transfer_completes", l(&c.transfer_completes)),
            ("value_changes", l(&c.value_changes)),
            ("alarms", l(&c.alarms)),
            ("bad_envelopes", l(&c.bad_envelopes)),
            ("out_of_order", l(&c.out_of_order)),
            ("auth_failures", l(&c.auth_failures)),
            ("auth_throttled", l(&c.auth_throttled)),
            ("envelopes_over_limit", l(&c.envelopes_over_limit)),
            ("journal_errors", l(&c.journal_errors)),
            ("interned", self.store.names.len() as u64),
        ]
    }

    /// [`counter_entries`](Self::counter_entries) as one JSON object (`/api/stats`).
    pub fn counters_json(&self) -> serde_json::Value {
        self.counter_entries()
            .into_iter()
            .map(|(k, v)| (k.to_owned(), serde_json::Value::from(v)))
            .collect::<serde_json::Map<_, _>>()
            .into()
    }

    /// Re-creates a restored campaign tally from the device marks.
    pub(crate) fn restore_campaign_mark(&self, idx: u16, mark: CampaignMark) {
        let Some(c) = self.campaigns.get(idx as usize) else {
            return;
        };
        match mark {
            CampaignMark::InProgress { .. } => {
                let n = c.in_progress.fetch_add(1, Ordering::Relaxed) + 1;
                // The peak of the run before is not kept; what is in flight now is a floor.
                c.peak.fetch_max(n, Ordering::Relaxed)
            }
            CampaignMark::Succeeded => c.succeeded.fetch_add(1, Ordering::Relaxed),
            CampaignMark::Failed { .. } => c.failed.fetch_add(1, Ordering::Relaxed),
        };
    }

    pub(crate) fn restore_task(
        &self,
        key: &DeviceKey,
        d: &mut Device,
        rpc: Rpc,
        origin: Origin,
        seq: u64,
    ) {
        let id = self.next_task.fetch_add(1, Ordering::Relaxed);
        self.tasks.insert(
            id,
            TaskInfo {
                id,
                device: self.store.display(key),
                method: rpc.method(),
                state: TaskState::Queued,
                fault: None,
                result: None,
                attempts: 0,
            },
        );
        d.more().queue.push_back(Task {
            id,
            rpc,
            origin,
            attempts: 0,
            seq,
        });
    }
}

/// Values compare as CWMP does: booleans by meaning (`1` = `true`).
fn same_value(a: &str, b: &str) -> bool {
    fn norm(s: &str) -> &str {
        match s {
            "1" | "true" => "true",
            "0" | "false" => "false",
            s => s,
        }
    }
    a == b || norm(a) == norm(b)
}

fn download(fw: &Firmware, command_key: String) -> Rpc {
    Rpc::Download(Box::new(provd_cwmp::Download {
        command_key,
        file_type: "1 Firmware Upgrade Image".into(),
        url: fw.url.clone(),
        file_size: fw.file_size,
        ..provd_cwmp::Download::default()
    }))
}

/// A filter for bulk tasks (task API).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Filter {
    pub oui: Option<String>,
    pub product_class: Option<String>,
    /// Glob: `*` any run, `?` one character.
    pub serial: Option<String>,
    pub software_version: Option<String>,
    /// Parameter values as cached: all must match.
    #[serde(default)]
    pub parameters: std::collections::BTreeMap<String, String>,
}

impl Filter {
    fn to_match(&self) -> DeviceMatch {
        DeviceMatch {
            oui: self.oui.as_ref().map(|o| o.to_ascii_uppercase()),
            product_class: self.product_class.clone(),
            serial: self.serial.as_deref().map(provd_config::Glob::new),
            events: Vec::new(),
            parameters: self.parameters.clone().into_iter().collect(),
        }
    }
}

/// What a session knows between requests: which device it is, and who authenticated.
#[derive(Debug, Default, Clone)]
pub struct SessionDevice {
    pub key: Option<DeviceKey>,
    /// The username the session authenticated with, when authentication is on.
    pub username: Option<String>,
}

/// The [`Driver`] of one session over the shared ACS.
#[derive(Debug)]
pub struct AcsDriver<'a> {
    acs: &'a Acs,
    state: &'a mut SessionDevice,
    port: u16,
    path: &'a str,
}

impl AcsDriver<'_> {
    fn with_device<R>(&self, f: impl FnOnce(&mut Device) -> R) -> Option<R> {
        let key = self.state.key.as_ref()?;
        let mut d = self.acs.store.devices.get_mut(key)?;
        Some(f(&mut d))
    }
}

fn values_json(ps: &[ParameterValue]) -> serde_json::Value {
    ps.iter()
        .map(|p| (p.name.clone(), serde_json::Value::from(p.value.as_str())))
        .collect::<serde_json::Map<_, _>>()
        .into()
}

impl Driver for AcsDriver<'_> {
    fn inform(&mut self, now: u64, env: &Envelope, inform: &Inform) -> Result<(), Fault> {
        // Credentials bound to one device are good for that device only.
        if let Some(u) = &self.state.username
            && let Some((_, bound)) = self
                .acs
                .settings
                .credential_devices
                .iter()
                .find(|(n, _)| n == u)
        {
            let id = &inform.device_id;
            let claimed = format!("{}-{}-{}", id.oui, id.product_class, id.serial_number);
            if claimed != *bound {
                self.acs
                    .counters
                    .informs_refused
                    .fetch_add(1, Ordering::Relaxed);
                return Err(Fault::new(8001));
            }
        }
        let key = self
            .acs
            .on_inform(now as u32, env, inform, self.port, self.path)?;
        self.state.key = Some(key);
        Ok(())
    }

    fn cpe_request(&mut self, now: u64, rpc: &Rpc) -> Rpc {
        let acs = self.acs;
        if let Rpc::TransferComplete(t) = rpc {
            acs.counters
                .transfer_completes
                .fetch_add(1, Ordering::Relaxed);
            let max = acs.settings.events_per_device;
            self.with_device(|d| {
                let names = &acs.store.names;
                let more = d.more();
                more.awaiting_transfer.retain(|k| **k != *t.command_key);
                more.push_event(
                    max,
                    EventRecord {
                        at: now as u32,
                        code: names.intern("TransferComplete"),
                        detail: format!("{} fault {}", t.command_key, t.fault.code).into(),
                    },
                );
                if let Some(idx) = acs.campaign_of_key(&t.command_key) {
                    acs.campaign_done(d, idx, t.fault.code);
                }
            });
        }
        if let Rpc::AutonomousTransferComplete(t) = rpc {
            acs.counters
                .transfer_completes
                .fetch_add(1, Ordering::Relaxed);
            let max = acs.settings.events_per_device;
            self.with_device(|d| {
                d.more().push_event(
                    max,
                    EventRecord {
                        at: now as u32,
                        code: acs.store.names.intern("AutonomousTransferComplete"),
                        detail: format!("{} fault {}", t.transfer_url, t.fault.code).into(),
                    },
                )
            });
        }
        default_answer(rpc)
    }

    fn next_request(&mut self, _now: u64) -> Option<(u64, Rpc)> {
        let acs = self.acs;
        let task = self.with_device(|d| {
            let more = d.more.as_mut()?;
            let t = more.queue.pop_front()?;
            let out = (t.id, t.rpc.clone());
            more.inflight = Some(t);
            Some(out)
        })??;
        acs.counters.requests_sent.fetch_add(1, Ordering::Relaxed);
        acs.task_update(task.0, |t| {
            t.state = TaskState::Sent;
            t.attempts += 1;
        });
        Some(task)
    }

    fn answer(&mut self, now: u64, tag: u64, answer: Result<Rpc, Fault>) {
        let acs = self.acs;
        let now = now as u32;
        acs.counters.answers.fetch_add(1, Ordering::Relaxed);
        let names = &acs.store.names;
        let result = self.with_device(|d| {
            let more = d.more();
            let task = more.inflight.take().filter(|t| t.id == tag)?;
            let result;
            match (&answer, &task.rpc) {
                (Ok(Rpc::GetParameterValuesResponse { parameters }), _) => {
                    for p in parameters.iter().filter(|p| p.name.len() <= 256) {
                        let ty = names.intern(&p.ty);
                        let param = more.param_mut(names.intern(&p.name));
                        param.value = p.value.as_str().into();
                        param.ty = ty;
                        param.updated = now;
                        param.flags |= Param::VALUE_KNOWN;
                    }
                    result = Some(values_json(parameters));
                    if let Some(v) = parameters.iter().find(|p| p.name.ends_with(".DeviceInfo.SoftwareVersion")) {
                        d.software_version = names.intern(&v.value);
                    }
                }
                (Ok(Rpc::SetParameterValuesResponse { status }), Rpc::SetParameterValues { parameters, .. }) => {
                    for p in parameters {
                        let ty = names.intern(&p.ty);
                        let param = more.param_mut(names.intern(&p.name));
                        param.value = p.value.as_str().into();
                        param.ty = ty;
                        param.updated = now;
                        param.flags |= Param::VALUE_KNOWN;
                    }
                    result = Some(serde_json::json!({"status": status}));
                }
                (Ok(Rpc::GetParameterNamesResponse { parameters }), _) => {
                    for p in parameters.iter().filter(|p| p.name.len() <= 256 && !p.name.ends_with('.')) {
                        let param = more.param_mut(names.intern(&p.name));
                        param.flags |= Param::WRITABILITY_KNOWN;
                        if p.writable {
                            param.flags |= Param::WRITABLE;
                        } else {
                            param.flags &= !Param::WRITABLE;
                        }
                    }
                    result = Some(
                        parameters
                            .iter()
                            .map(|p| (p.name.clone(), serde_json::Value::from(p.writable)))
                            .collect::<serde_json::Map<_, _>>()
                            .into(),
                    );
                }
                (Ok(Rpc::GetParameterAttributesResponse { parameters }), _) => {
                    for p in parameters.iter().filter(|p| p.name.len() <= 256) {
                        more.param_mut(names.intern(&p.name)).notification = p.notification;
                    }
                    result = Some(
                        parameters
                            .iter()
                            .map(|p| (p.name.clone(), serde_json::json!({"notification": p.notification, "access_list": p.access_list})))
                            .collect::<serde_json::Map<_, _>>()
                            .into(),
                    );
                }
                (Ok(Rpc::AddObjectResponse { instance_number, status }), _) => {
                    result = Some(serde_json::json!({"instance_number": instance_number, "status": status}));
                }
                (Ok(Rpc::DeleteObjectResponse { status }), Rpc::DeleteObject { object_name, .. }) => {
                    more.params.retain(|(n, _)| !names.resolve(*n).starts_with(object_name.as_str()));
                    result = Some(serde_json::json!({"status": status}));
                }
                (Ok(Rpc::DownloadResponse { status, .. }), Rpc::Download(dl)) => {
                    result = Some(serde_json::json!({"status": status}));
                    if *status == 0 {
                        // Done already: no TransferComplete will follow.
                        more.awaiting_transfer.retain(|k| **k != *dl.command_key);
                        if let Origin::Campaign(idx) = task.origin {
                            acs.campaign_done(d, idx, 0);
                        }
                    }
                }
                (Ok(other), _) => {
                    result = Some(serde_json::json!({"response": other.method()}));
                }
                (Err(f), rpc) => {
                    acs.counters.cpe_faults.fetch_add(1, Ordering::Relaxed);
                    if let Rpc::Download(dl) = rpc {
                        more.awaiting_transfer.retain(|k| **k != *dl.command_key);
                        if let Origin::Campaign(idx) = task.origin {
                            acs.campaign_done(d, idx, f.code);
                        }
                    }
                    result = Some(serde_json::json!({
                        "fault": f.code, "string": f.string,
                        "parameters": f.spv.iter().map(|s| serde_json::json!({"name": s.name, "fault": s.code})).collect::<Vec<_>>(),
                    }));
                }
            }
            Some((result, task.seq))
        });
        let (result, seq) = match result.flatten() {
            Some((r, seq)) => (r, seq),
            None => (None, 0),
        };
        acs.journal_done(seq);
        let fault = answer.as_ref().err().map(|f| f.code);
        acs.task_update(tag, |t| {
            t.state = if fault.is_some() {
                TaskState::Fault
            } else {
                TaskState::Done
            };
            t.fault = fault;
            t.result = result;
        });
    }

    fn abandoned(&mut self, _now: u64, tag: u64) {
        let acs = self.acs;
        acs.counters.abandoned.fetch_add(1, Ordering::Relaxed);
        let dropped = self
            .with_device(|d| {
                let more = d.more();
                let mut t = more.inflight.take().filter(|t| t.id == tag)?;
                t.attempts += 1;
                if t.attempts >= MAX_ATTEMPTS {
                    return Some(Some(t.seq));
                }
                more.queue.push_front(t);
                Some(None)
            })
            .flatten();
        // Failed for good: out of the queue (and the journal) too.
        let failed = match dropped {
            Some(Some(seq)) => {
                acs.journal_done(seq);
                true
            }
            Some(None) => false,
            None => true,
        };
        acs.task_update(tag, |t| {
            t.state = if failed {
                TaskState::Failed
            } else {
                TaskState::Queued
            };
        });
    }
}

/// Shared handle used by the server.
pub type SharedAcs = Arc<Acs>;
