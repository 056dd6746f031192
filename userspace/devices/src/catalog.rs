//! What the store says of each device, in memory, for the roles that render per-device files.
//!
//! The store is the system of record, but a TFTP or HTTP worker must not wait on it: the
//! catalog holds every device's record, with its subscriber's and class of service's, and the
//! file servers read it (sharded maps, one short lock per lookup, never across a render).
//!
//! It also holds the newest stored version of each config-file template (by the template's
//! name), so a version saved through the API is what the next file is rendered from.
//!
//! It follows the store through the store's change feed ([`Store::changes`]): every write
//! made through [`Following`] catches the catalog up before the write returns (so a device's
//! next request sees an API change: the write's 2xx comes after), and [`Catalog::catch_up`],
//! called periodically, picks up writes made elsewhere (`provd import`, another node).

use std::hash::BuildHasher;
use std::sync::{Arc, Mutex};

use dashmap::DashMap;
use provd_store::{
    ChangeKind, ClassOfService, Device, DeviceKind, Mac, PageRequest, Store, StoreError,
    Subscriber, TemplateKind, TemplateVersion, Vars,
};

/// A device's own record, as the catalog keeps it.
#[derive(Debug, Clone, PartialEq)]
pub struct DeviceEntry {
    pub kind: DeviceKind,
    pub subscriber: Option<String>,
    pub class_of_service: Option<String>,
    pub vars: Vars,
    pub version: u64,
    /// A hash of everything above: part of every generated file's cache key, so a record
    /// deleted and made again at version 1 with other values is still a new key.
    pub fingerprint: u64,
}

/// A subscriber's or a class of service's variables.
#[derive(Debug, Clone, PartialEq)]
pub struct VarsEntry {
    pub vars: Vars,
    pub version: u64,
    pub fingerprint: u64,
}

/// The newest stored version of a template.
#[derive(Debug, Clone, PartialEq)]
pub struct TemplateEntry {
    pub kind: TemplateKind,
    pub version: u64,
    pub text: Arc<str>,
    /// A hash of the version and the text: part of every generated file's cache key, so a
    /// save is a new key (even against another store that numbered its versions alike).
    pub fingerprint: u64,
}

impl TemplateEntry {
    pub fn of(t: &TemplateVersion) -> TemplateEntry {
        TemplateEntry {
            kind: t.info.kind,
            version: t.info.version,
            text: t.text.as_str().into(),
            fingerprint: fingerprint(&(t.info.version, &t.text)),
        }
    }
}

/// A device with its subscriber and class of service looked up.
#[derive(Debug, Clone)]
pub struct Resolved {
    pub device: Arc<DeviceEntry>,
    pub subscriber: Option<Arc<VarsEntry>>,
    pub class: Option<Arc<VarsEntry>>,
}

impl Resolved {
    /// The variables a template sees as `subscriber`: the class of service's, overridden by
    /// the subscriber's, overridden by the device's own.
    pub fn merged_vars(&self) -> Vars {
        let mut out = Vars::new();
        for layer in [
            self.class.as_ref().map(|c| &c.vars),
            self.subscriber.as_ref().map(|s| &s.vars),
            Some(&self.device.vars),
        ]
        .into_iter()
        .flatten()
        {
            for (k, v) in layer {
                out.insert(k.clone(), v.clone());
            }
        }
        out
    }

    /// Identifies every input: equal fingerprints, equal records.
    pub fn fingerprint(&self) -> (u64, u64, u64) {
        (
            self.device.fingerprint,
            self.subscriber.as_ref().map_or(0, |s| s.fingerprint),
            self.class.as_ref().map_or(0, |c| c.fingerprint),
        )
    }
}

type Map<K, V> = DashMap<K, V, foldhash::fast::RandomState>;

/// Who applies the store's reservations (the DHCP engine's run-time reservations).
pub trait ReservationSink: Send + Sync + std::fmt::Debug {
    /// Whether the reservation can be served; `Err` says why not (it names the address).
    fn check(&self, r: &provd_store::ReservationSpec) -> Result<(), String>;
    /// The reservation of `mac` is now `r` (`None`: removed).
    fn apply(&self, mac: Mac, r: Option<&provd_store::Reservation>);
}

/// Devices, subscribers and classes of service by key.
#[derive(Debug, Default)]
pub struct Catalog {
    /// Told of reservation changes, once set.
    reservations: std::sync::OnceLock<Arc<dyn ReservationSink>>,
    devices: Map<[u8; 6], Arc<DeviceEntry>>,
    subscribers: Map<String, Arc<VarsEntry>>,
    classes: Map<String, Arc<VarsEntry>>,
    /// Each template's newest stored version, by name.
    templates: Map<String, Arc<TemplateEntry>>,
    /// The last change applied (`Store::changes` sequence).
    seq: Mutex<i64>,
}

fn fingerprint(v: &impl serde::Serialize) -> u64 {
    // Serialising a map of scalars cannot fail; an empty string would still be a stable key.
    let text = serde_json::to_string(v).unwrap_or_default();
    foldhash::quality::FixedState::with_seed(0x636174616c6f67).hash_one(text)
}

impl DeviceEntry {
    pub fn of(d: &Device) -> DeviceEntry {
        let s = &d.spec;
        DeviceEntry {
            kind: s.kind,
            subscriber: s.subscriber.clone(),
            class_of_service: s.class_of_service.clone(),
            vars: s.vars.clone(),
            version: d.version,
            fingerprint: fingerprint(&(s.kind, &s.subscriber, &s.class_of_service, &s.vars)),
        }
    }
}

impl VarsEntry {
    pub fn new(vars: Vars, version: u64) -> VarsEntry {
        VarsEntry {
            fingerprint: fingerprint(&(&vars, version)),
            vars,
            version,
        }
    }
}

impl Catalog {
    pub fn new() -> Catalog {
        Catalog::default()
    }

    /// The config file's `[[subscriber]]` tables, as devices with their own variables (what
    /// templates see as `subscriber`): for `provd cfg`, tests, and a store-less start.
    pub fn from_config(subscribers: &provd_config::Subscribers) -> Catalog {
        let c = Catalog::new();
        for (mac, vars) in subscribers {
            let spec = provd_store::DeviceSpec {
                mac: Mac(*mac),
                vars: json_vars(vars),
                ..Default::default()
            };
            c.put_device(&Device {
                spec,
                version: 1,
                created_at: 0,
                updated_at: 0,
            });
        }
        c
    }

    /// Reads every device, subscriber and class of service of `store`, and where its change
    /// feed stands.
    pub fn load(store: &dyn Store) -> Result<Catalog, StoreError> {
        let c = Catalog::new();
        // The feed position first: a change committed while the lists are read is applied
        // again by the next catch-up, which is harmless (it re-reads the record).
        *c.lock_seq() = store.last_change()?;
        let mut page = PageRequest::first(PageRequest::MAX);
        loop {
            let p = store.list_classes(&page)?;
            p.items.iter().for_each(|x| c.put_class(x));
            match p.next {
                Some(n) => page.after = Some(n),
                None => break,
            }
        }
        let mut page = PageRequest::first(PageRequest::MAX);
        loop {
            let p = store.list_subscribers(&page)?;
            p.items.iter().for_each(|x| c.put_subscriber(x));
            match p.next {
                Some(n) => page.after = Some(n),
                None => break,
            }
        }
        for t in store.latest_template_versions()? {
            c.put_template(&t);
        }
        let mut page = PageRequest::first(PageRequest::MAX);
        let all = provd_store::DeviceFilter::default();
        loop {
            let p = store.list_devices(&all, &page)?;
            p.items.iter().for_each(|x| c.put_device(x));
            match p.next {
                Some(n) => page.after = Some(n),
                None => break,
            }
        }
        Ok(c)
    }

    /// The last change applied: every change at or below it is in the catalog.
    pub fn seq(&self) -> i64 {
        *self.lock_seq()
    }

    fn lock_seq(&self) -> std::sync::MutexGuard<'_, i64> {
        self.seq.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Applies every change the store committed since the last call. Returns how many.
    pub fn catch_up(&self, store: &dyn Store) -> Result<usize, StoreError> {
        let mut seq = self.lock_seq();
        let mut n = 0;
        loop {
            let changes = store.changes(*seq, 1000)?;
            if changes.is_empty() {
                return Ok(n);
            }
            for ch in &changes {
                self.apply(store, ch.kind, &ch.key)?;
                *seq = ch.seq;
            }
            n += changes.len();
        }
    }

    fn apply(&self, store: &dyn Store, kind: ChangeKind, key: &str) -> Result<(), StoreError> {
        match kind {
            ChangeKind::Device => {
                let Ok(mac) = key.parse::<Mac>() else {
                    return Ok(());
                };
                match store.get_device(mac)? {
                    Some(d) => self.put_device(&d),
                    None => {
                        self.devices.remove(&mac.0);
                    }
                }
            }
            ChangeKind::Subscriber => match store.get_subscriber(key)? {
                Some(s) => self.put_subscriber(&s),
                None => {
                    self.subscribers.remove(key);
                }
            },
            ChangeKind::Class => match store.get_class(key)? {
                Some(c) => self.put_class(&c),
                None => {
                    self.classes.remove(key);
                }
            },
            ChangeKind::Template => match store.latest_template_version(key)? {
                Some(t) => self.put_template(&t),
                None => {
                    self.templates.remove(key);
                }
            },
            // Reservations are the DHCP engine's (its run-time reservations).
            ChangeKind::Reservation => {
                if let (Some(sink), Ok(mac)) = (self.reservations.get(), key.parse::<Mac>()) {
                    sink.apply(mac, store.get_reservation(mac)?.as_ref());
                }
            }
        }
        Ok(())
    }

    /// Hands every reservation of `store` to `sink`, and from now on every change of one.
    pub fn follow_reservations(
        &self,
        store: &dyn Store,
        sink: Arc<dyn ReservationSink>,
    ) -> Result<(), StoreError> {
        let mut page = PageRequest::first(PageRequest::MAX);
        loop {
            let p = store.list_reservations(&page)?;
            for r in &p.items {
                sink.apply(r.spec.mac, Some(r));
            }
            match p.next {
                Some(n) => page.after = Some(n),
                None => break,
            }
        }
        let _ = self.reservations.set(sink);
        Ok(())
    }

    pub fn put_device(&self, d: &Device) {
        self.devices
            .insert(d.spec.mac.0, Arc::new(DeviceEntry::of(d)));
    }

    pub fn put_subscriber(&self, s: &Subscriber) {
        self.subscribers.insert(
            s.spec.id.clone(),
            Arc::new(VarsEntry::new(s.spec.vars.clone(), s.version)),
        );
    }

    pub fn put_class(&self, c: &ClassOfService) {
        self.classes.insert(
            c.spec.name.clone(),
            Arc::new(VarsEntry::new(c.spec.vars.clone(), c.version)),
        );
    }

    /// Makes `t` the version of its template that is rendered from (an older version than the
    /// one held is ignored: changes may be read twice).
    pub fn put_template(&self, t: &TemplateVersion) {
        let entry = Arc::new(TemplateEntry::of(t));
        self.templates
            .entry(t.info.name.clone())
            .and_modify(|cur| {
                if cur.version <= entry.version {
                    *cur = Arc::clone(&entry);
                }
            })
            .or_insert(entry);
    }

    /// The newest stored version of the template `name` (`None`: render from its file).
    pub fn template(&self, name: &str) -> Option<Arc<TemplateEntry>> {
        self.templates.get(name).map(|e| Arc::clone(&*e))
    }

    /// A device with its subscriber and class of service, if the store knows it.
    pub fn resolve(&self, mac: &[u8; 6]) -> Option<Resolved> {
        let device = Arc::clone(&*self.devices.get(mac)?);
        let subscriber = device
            .subscriber
            .as_deref()
            .and_then(|s| self.subscribers.get(s).map(|e| Arc::clone(&*e)));
        let class = device
            .class_of_service
            .as_deref()
            .and_then(|c| self.classes.get(c).map(|e| Arc::clone(&*e)));
        Some(Resolved {
            device,
            subscriber,
            class,
        })
    }

    /// A class of service's variables.
    pub fn class(&self, name: &str) -> Option<Arc<VarsEntry>> {
        self.classes.get(name).map(|e| Arc::clone(&*e))
    }

    /// Devices known.
    pub fn len(&self) -> usize {
        self.devices.len()
    }

    pub fn is_empty(&self) -> bool {
        self.devices.is_empty()
    }
}

/// The highest change sequence number in the store (0 when none).
/// Config-file variables as store variables.
pub fn json_vars(v: &provd_config::Vars) -> Vars {
    v.iter()
        .map(|(k, v)| {
            let j = match v {
                provd_config::VarValue::String(s) => serde_json::Value::String(s.clone()),
                provd_config::VarValue::Integer(i) => serde_json::Value::from(*i),
                provd_config::VarValue::Float(f) => serde_json::Number::from_f64(*f)
                    .map_or(serde_json::Value::Null, serde_json::Value::Number),
                provd_config::VarValue::Bool(b) => serde_json::Value::Bool(*b),
            };
            (k.clone(), j)
        })
        .collect()
}

/// A [`Store`] whose writes catch a [`Catalog`] up before they return: what the API writes
/// through, so a device's next request after a 2xx sees the change.
#[derive(Debug)]
pub struct Following {
    inner: Arc<dyn Store>,
    catalog: Arc<Catalog>,
}

impl Following {
    pub fn new(inner: Arc<dyn Store>, catalog: Arc<Catalog>) -> Following {
        Following { inner, catalog }
    }

    /// Passes a write's result on after catching the catalog up. A catch-up failure after a
    /// committed write is logged, not returned: the write happened, and the periodic catch-up
    /// retries.
    fn after<T>(&self, r: provd_store::Result<T>) -> provd_store::Result<T> {
        if r.is_ok()
            && let Err(e) = self.catalog.catch_up(&*self.inner)
        {
            tracing::warn!(error = %e, "catalog catch-up after a write failed; retried periodically");
        }
        r
    }
}

use provd_store::{
    Actor, AuditEntry, AuditFilter, Backend, Change, ClassSpec, Counts, DeviceFilter, DeviceSpec,
    Document, Event, Expect, ImportCounts, NewEvent, Page, Reservation, ReservationSpec,
    SubscriberSpec, TemplateVersionInfo, TemplateVersionSpec, Token, TokenSpec,
};

impl Store for Following {
    fn backend(&self) -> Backend {
        self.inner.backend()
    }
    fn schema_version(&self) -> provd_store::Result<u32> {
        self.inner.schema_version()
    }
    fn get_device(&self, mac: Mac) -> provd_store::Result<Option<Device>> {
        self.inner.get_device(mac)
    }
    fn put_device(&self, d: &DeviceSpec, e: Expect, who: &Actor) -> provd_store::Result<Device> {
        self.after(self.inner.put_device(d, e, who))
    }
    fn delete_device(&self, mac: Mac, e: Expect, who: &Actor) -> provd_store::Result<()> {
        self.after(self.inner.delete_device(mac, e, who))
    }
    fn list_devices(&self, f: &DeviceFilter, p: &PageRequest) -> provd_store::Result<Page<Device>> {
        self.inner.list_devices(f, p)
    }
    fn import_devices(&self, d: &[DeviceSpec], who: &Actor) -> provd_store::Result<ImportCounts> {
        self.after(self.inner.import_devices(d, who))
    }
    fn get_subscriber(&self, id: &str) -> provd_store::Result<Option<Subscriber>> {
        self.inner.get_subscriber(id)
    }
    fn put_subscriber(
        &self,
        s: &SubscriberSpec,
        e: Expect,
        who: &Actor,
    ) -> provd_store::Result<Subscriber> {
        self.after(self.inner.put_subscriber(s, e, who))
    }
    fn delete_subscriber(&self, id: &str, e: Expect, who: &Actor) -> provd_store::Result<()> {
        self.after(self.inner.delete_subscriber(id, e, who))
    }
    fn list_subscribers(&self, p: &PageRequest) -> provd_store::Result<Page<Subscriber>> {
        self.inner.list_subscribers(p)
    }
    fn get_class(&self, name: &str) -> provd_store::Result<Option<ClassOfService>> {
        self.inner.get_class(name)
    }
    fn put_class(
        &self,
        c: &ClassSpec,
        e: Expect,
        who: &Actor,
    ) -> provd_store::Result<ClassOfService> {
        self.after(self.inner.put_class(c, e, who))
    }
    fn delete_class(&self, name: &str, e: Expect, who: &Actor) -> provd_store::Result<()> {
        self.after(self.inner.delete_class(name, e, who))
    }
    fn list_classes(&self, p: &PageRequest) -> provd_store::Result<Page<ClassOfService>> {
        self.inner.list_classes(p)
    }
    fn get_reservation(&self, mac: Mac) -> provd_store::Result<Option<Reservation>> {
        self.inner.get_reservation(mac)
    }
    fn put_reservation(
        &self,
        r: &ReservationSpec,
        e: Expect,
        who: &Actor,
    ) -> provd_store::Result<Reservation> {
        if let Some(sink) = self.catalog.reservations.get() {
            sink.check(r).map_err(|why| StoreError::Invalid {
                field: "address".into(),
                why,
            })?;
        }
        self.after(self.inner.put_reservation(r, e, who))
    }
    fn delete_reservation(&self, mac: Mac, e: Expect, who: &Actor) -> provd_store::Result<()> {
        self.after(self.inner.delete_reservation(mac, e, who))
    }
    fn list_reservations(&self, p: &PageRequest) -> provd_store::Result<Page<Reservation>> {
        self.inner.list_reservations(p)
    }
    fn get_document(&self, c: &str, id: &str) -> provd_store::Result<Option<Document>> {
        self.inner.get_document(c, id)
    }
    fn put_document(
        &self,
        c: &str,
        id: &str,
        body: &serde_json::Value,
        e: Expect,
        who: &Actor,
    ) -> provd_store::Result<Document> {
        self.inner.put_document(c, id, body, e, who)
    }
    fn delete_document(
        &self,
        c: &str,
        id: &str,
        e: Expect,
        who: &Actor,
    ) -> provd_store::Result<()> {
        self.inner.delete_document(c, id, e, who)
    }
    fn list_documents(&self, c: &str, p: &PageRequest) -> provd_store::Result<Page<Document>> {
        self.inner.list_documents(c, p)
    }
    fn append_events(&self, ev: &[NewEvent]) -> provd_store::Result<()> {
        self.inner.append_events(ev)
    }
    fn timeline(
        &self,
        mac: Mac,
        before: Option<i64>,
        limit: u32,
    ) -> provd_store::Result<Vec<Event>> {
        self.inner.timeline(mac, before, limit)
    }
    fn trim_events(&self, older_than_ms: i64, keep: u32) -> provd_store::Result<u64> {
        self.inner.trim_events(older_than_ms, keep)
    }
    fn audit_log(
        &self,
        f: &AuditFilter,
        before: Option<i64>,
        limit: u32,
    ) -> provd_store::Result<Vec<AuditEntry>> {
        self.inner.audit_log(f, before, limit)
    }
    fn put_token(&self, t: &TokenSpec, who: &Actor) -> provd_store::Result<Token> {
        self.inner.put_token(t, who)
    }
    fn token_by_hash(&self, h: &[u8; 32]) -> provd_store::Result<Option<Token>> {
        self.inner.token_by_hash(h)
    }
    fn list_tokens(&self) -> provd_store::Result<Vec<Token>> {
        self.inner.list_tokens()
    }
    fn audit_action(
        &self,
        action: &str,
        resource: &str,
        key: &str,
        detail: Option<serde_json::Value>,
        who: &Actor,
    ) -> provd_store::Result<()> {
        self.inner.audit_action(action, resource, key, detail, who)
    }
    fn delete_token(&self, id: &str, who: &Actor) -> provd_store::Result<()> {
        self.inner.delete_token(id, who)
    }
    fn template_versions(
        &self,
        name: &str,
        before: Option<u64>,
        limit: u32,
    ) -> provd_store::Result<Vec<TemplateVersionInfo>> {
        self.inner.template_versions(name, before, limit)
    }
    fn get_template_version(
        &self,
        name: &str,
        version: u64,
    ) -> provd_store::Result<Option<TemplateVersion>> {
        self.inner.get_template_version(name, version)
    }
    fn latest_template_version(&self, name: &str) -> provd_store::Result<Option<TemplateVersion>> {
        self.inner.latest_template_version(name)
    }
    fn latest_template_versions(&self) -> provd_store::Result<Vec<TemplateVersion>> {
        self.inner.latest_template_versions()
    }
    fn put_template_version(
        &self,
        t: &TemplateVersionSpec,
        e: Expect,
        who: &Actor,
    ) -> provd_store::Result<TemplateVersion> {
        self.after(self.inner.put_template_version(t, e, who))
    }
    fn counts(&self) -> provd_store::Result<Counts> {
        self.inner.counts()
    }
    fn changes(&self, after: i64, limit: u32) -> provd_store::Result<Vec<Change>> {
        self.inner.changes(after, limit)
    }

    fn trim_changes(&self, through: i64) -> provd_store::Result<u64> {
        self.inner.trim_changes(through)
    }

    fn last_change(&self) -> provd_store::Result<i64> {
        self.inner.last_change()
    }
}
