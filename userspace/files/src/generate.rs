//! Rendering a device's config file: template → docsis-tool text → binary with MICs or hash.
//!
//! A request names a file; the classes whose `boot_file` names devices (`cm/{mac}.cfg`) say
//! whether it is a generated name and whose. The device's context (its lease facts, its
//! subscriber record, the operator's variables) goes through the class's minijinja template
//! into the docsis tool's text form, which `provd-docsis` compiles to the binary the device
//! fetches.
//!
//! Binaries are cached by their inputs: the template's generation and every value the context
//! holds. Any change of input is a new key, so nothing stale is ever served; a template edited
//! on disk is noticed within [`TEMPLATE_CHECK`](crate::TEMPLATE_CHECK) and gets a new generation. Retransmissions and
//! repeated boots get byte-identical files, which PacketCable's hash SET relies on.

use std::collections::{HashMap, VecDeque};
use std::hash::BuildHasher;
use std::net::Ipv4Addr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use provd_config::{BootFile, ConfigFileKind, ConfigFileSpec, MtaHashAlg, Policy, Vars};
use provd_devices::catalog::{Catalog, Resolved};
use provd_devices::{DeviceFacts, DeviceView};

use crate::template::{TypedVars, WatchedTemplate, mac_colon, mac_hex, template_error};

/// Default bound of the binary cache.
pub const DEFAULT_CACHE_BYTES: usize = 256 << 20;

/// Why a generated file was not served.
#[derive(Debug, thiserror::Error)]
pub enum GenerateError {
    /// TFTP-enforce: the name is a device's generated file, asked for from another address (or
    /// the device holds no live lease).
    #[error("{file} belongs to {mac}, {why}")]
    Refused {
        file: String,
        mac: String,
        why: String,
    },
    /// The template did not render, or its text did not compile. Says which template and line.
    #[error("{0}")]
    Render(String),
}

/// Whose generated file a name is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Owner<'a> {
    /// The class whose `boot_file` pattern the name matched.
    pub class: &'a str,
    /// The device the name is for.
    pub mac: [u8; 6],
    /// What kind of file the class generates.
    pub kind: ConfigFileKind,
}

/// A generated file, with whose it is.
#[derive(Debug, Clone)]
pub struct GeneratedFile<'a> {
    pub bytes: Arc<[u8]>,
    pub owner: Owner<'a>,
}

/// One class that generates files.
#[derive(Debug)]
struct GenClass {
    name: String,
    pattern: BootFile,
    spec: ConfigFileSpec,
    /// Its generation is part of every cache key.
    template: WatchedTemplate,
}

/// Renders generated config files for the TFTP (and later HTTP) servers.
#[derive(Debug)]
pub struct Generator {
    classes: Vec<GenClass>,
    vars: Vars,
    /// Each device's record, subscriber and class of service (the store's, kept current).
    catalog: Arc<Catalog>,
    devices: Arc<DeviceView>,
    enforce: bool,
    cache: Mutex<Cache>,
    hasher: foldhash::quality::FixedState,
}

/// The render context; what templates see.
struct Context<'a> {
    /// `00:11:22:aa:bb:cc`
    mac: String,
    /// `001122aabbcc`
    mac12: String,
    /// `001122AABBCC`
    mac_upper: String,
    class: &'a str,
    /// The leased address, or "" when the device holds no lease (only without enforce).
    ip: String,
    /// The relay (CMTS) the device was bound through, or "".
    giaddr: String,
    /// Option 60 as the device sent it (lossy UTF-8), or "".
    vendor_class: String,
    lease_expires: u32,
    vars: &'a Vars,
    /// The device's record in the store, if any.
    record: Option<Resolved>,
}

impl Generator {
    /// The generating classes of `policy`, with their templates read and checked. A template
    /// that cannot be read or does not parse is an error naming the class and the file.
    pub fn new(policy: &Policy, devices: Arc<DeviceView>) -> Result<Generator, GenerateError> {
        let mut classes = Vec::new();
        for c in &policy.classes {
            let (Some(spec), Some(pattern)) = (&c.config_file, &c.boot_file) else {
                continue;
            };
            let template =
                WatchedTemplate::load(&spec.template, |_| {}).map_err(GenerateError::Render)?;
            classes.push(GenClass {
                name: c.name.clone(),
                pattern: pattern.clone(),
                spec: spec.clone(),
                template,
            });
        }
        Ok(Generator {
            classes,
            vars: policy.vars.clone(),
            catalog: Arc::new(Catalog::from_config(&policy.subscribers)),
            devices,
            enforce: policy.tftp.as_ref().is_none_or(|t| t.enforce),
            cache: Mutex::new(Cache::new(DEFAULT_CACHE_BYTES)),
            hasher: foldhash::quality::FixedState::with_seed(0x70726f7664),
        })
    }

    /// Reads device records from `catalog` (the store's) instead of the config's
    /// `[[subscriber]]` tables.
    pub fn with_catalog(mut self, catalog: Arc<Catalog>) -> Self {
        self.catalog = catalog;
        self
    }

    /// The device records this generator reads.
    pub fn catalog(&self) -> &Arc<Catalog> {
        &self.catalog
    }

    /// How often template files are looked at for edits (default [`TEMPLATE_CHECK`]).
    pub fn with_template_check(mut self, every: Duration) -> Self {
        for c in &mut self.classes {
            c.template.set_check_every(every);
        }
        self
    }

    /// True if some class generates files.
    pub fn is_empty(&self) -> bool {
        self.classes.is_empty()
    }

    /// The generated file called `name`, fetched from `peer` at `now` (unix seconds), with
    /// whose it is. The name is matched against the classes once.
    /// `Ok(None)`: not a generated name (the caller looks elsewhere, e.g. static files).
    pub fn lookup(
        &self,
        name: &str,
        peer: Ipv4Addr,
        now: u32,
    ) -> Result<Option<GeneratedFile<'_>>, GenerateError> {
        let name = name.strip_prefix('/').unwrap_or(name);
        let Some((class, mac)) = self
            .classes
            .iter()
            .find_map(|c| c.pattern.match_name(name).map(|m| (c, m)))
        else {
            return Ok(None);
        };
        let facts = self.devices.get(&mac, now);
        if self.enforce {
            self.devices
                .enforce(&mac, peer, now)
                .map_err(|why| GenerateError::Refused {
                    file: name.to_owned(),
                    mac: mac_colon(&mac),
                    why,
                })?;
        }
        let owner = Owner {
            class: &class.name,
            mac,
            kind: class.spec.kind,
        };
        let (generation, env) = class.template.current(&class.name);
        let record = self.catalog.resolve(&mac);
        let key = self.key(class, generation, &mac, facts.as_ref(), record.as_ref());
        if let Some(bytes) = self.lock_cache().get(key) {
            return Ok(Some(GeneratedFile { bytes, owner }));
        }
        let bytes: Arc<[u8]> = self
            .render(class, &env, &mac, facts.as_ref(), record)?
            .into();
        self.lock_cache().insert(key, Arc::clone(&bytes));
        Ok(Some(GeneratedFile { bytes, owner }))
    }

    /// [`lookup`](Self::lookup) without the owner: just the bytes.
    pub fn file(
        &self,
        name: &str,
        peer: Ipv4Addr,
        now: u32,
    ) -> Result<Option<Arc<[u8]>>, GenerateError> {
        Ok(self.lookup(name, peer, now)?.map(|f| f.bytes))
    }

    /// Renders without the cache or enforce: for `provd cfg render` and tests.
    pub fn render_for(
        &self,
        class_name: &str,
        mac: &[u8; 6],
        facts: Option<&DeviceFacts>,
    ) -> Result<Vec<u8>, GenerateError> {
        let class = self
            .classes
            .iter()
            .find(|c| c.name == class_name)
            .ok_or_else(|| {
                GenerateError::Render(format!("class {class_name:?} generates no config file"))
            })?;
        let (_, env) = class.template.peek();
        self.render(class, &env, mac, facts, self.catalog.resolve(mac))
    }

    /// Cache entries and bytes held.
    pub fn cache_stats(&self) -> (usize, usize) {
        let c = self.lock_cache();
        (c.map.len(), c.bytes)
    }

    fn lock_cache(&self) -> std::sync::MutexGuard<'_, Cache> {
        self.cache.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn key(
        &self,
        class: &GenClass,
        generation: u64,
        mac: &[u8; 6],
        facts: Option<&DeviceFacts>,
        record: Option<&Resolved>,
    ) -> u128 {
        // Two independent 64-bit hashes of the same inputs: a collision would hand one device
        // another's file, so 64 bits are not enough at millions of entries.
        let inputs = (
            class.name.as_str(),
            generation,
            mac,
            facts.map(|f| (f.addr, f.giaddr, f.vendor_class.as_deref(), f.expires_at)),
            // The store's record: a tier change or new variables are a new key.
            record.map(Resolved::fingerprint),
        );
        let a = self.hasher.hash_one(inputs);
        let b = foldhash::quality::FixedState::with_seed(a).hash_one(inputs);
        (u128::from(a) << 64) | u128::from(b)
    }

    fn render(
        &self,
        class: &GenClass,
        env: &minijinja::Environment<'static>,
        mac: &[u8; 6],
        facts: Option<&DeviceFacts>,
        record: Option<Resolved>,
    ) -> Result<Vec<u8>, GenerateError> {
        let name = class.template.name();
        let ctx = Context {
            mac: mac_colon(mac),
            mac12: mac_hex(mac, false),
            mac_upper: mac_hex(mac, true),
            class: &class.name,
            ip: facts.map(|f| f.addr.to_string()).unwrap_or_default(),
            giaddr: facts
                .filter(|f| !f.giaddr.is_unspecified())
                .map(|f| f.giaddr.to_string())
                .unwrap_or_default(),
            vendor_class: facts
                .and_then(|f| f.vendor_class.as_deref())
                .map(|v| String::from_utf8_lossy(v).into_owned())
                .unwrap_or_default(),
            lease_expires: facts.map_or(0, |f| f.expires_at),
            vars: &self.vars,
            record,
        };
        let text = render_text(env, name, &ctx)?;
        compile(&class.spec, &text).map_err(|e| {
            GenerateError::Render(format!("{name}: the rendered text does not compile: {e}"))
        })
    }
}

fn render_text(
    env: &minijinja::Environment<'static>,
    name: &str,
    ctx: &Context<'_>,
) -> Result<String, GenerateError> {
    let tmpl = env
        .get_template(name)
        .map_err(|e| GenerateError::Render(template_error(name, &e)))?;
    let value = minijinja::context! {
        mac => &ctx.mac,
        mac12 => &ctx.mac12,
        mac_upper => &ctx.mac_upper,
        class => ctx.class,
        ip => &ctx.ip,
        giaddr => &ctx.giaddr,
        vendor_class => &ctx.vendor_class,
        lease_expires => ctx.lease_expires,
        vars => minijinja::Value::from_serialize(TypedVars(ctx.vars)),
        // The device's variables merged over its subscriber's and class of service's; absent
        // (so `{% if subscriber %}` works) when the store does not know the device.
        subscriber => minijinja::Value::from_serialize(ctx.record.as_ref().map(Resolved::merged_vars)),
        cos => minijinja::Value::from_serialize(ctx.record.as_ref().and_then(|r| r.class.as_ref()).map(|c| &c.vars)),
        device => minijinja::Value::from_serialize(ctx.record.as_ref().map(|r| minijinja::context! {
            type => r.device.kind.as_str(),
            class_of_service => r.device.class_of_service.as_deref(),
            subscriber => r.device.subscriber.as_deref(),
            version => r.device.version,
        })),
    };
    tmpl.render(value)
        .map_err(|e| GenerateError::Render(template_error(name, &e)))
}

/// Compiles docsis-tool text to the binary of `spec`'s kind. The text's kind must be the
/// spec's (an MTA template starts with `MtaConfigDelimiter 1`).
pub fn compile(spec: &ConfigFileSpec, text: &str) -> Result<Vec<u8>, String> {
    use provd_docsis::{FileKind, HashAlg, HashOid, MtaHash};
    let parsed = provd_docsis::text::parse(text).map_err(|e| e.to_string())?;
    let encoded = match (spec.kind, parsed.kind) {
        (ConfigFileKind::Docsis, FileKind::Cm) => {
            let key = spec.shared_secret.as_deref().unwrap_or("");
            provd_docsis::encode_cm(&parsed, key.as_bytes())
        }
        (ConfigFileKind::Mta, FileKind::Mta) => {
            // As the docsis tool writes it: SHA-1 in the CableLabs MIB's object, MD5 in the
            // Euro-PacketCable one.
            let hash = spec.mta_hash.map(|h| match h {
                MtaHashAlg::Sha1 => MtaHash {
                    alg: HashAlg::Sha1,
                    oid: HashOid::CableLabs,
                },
                MtaHashAlg::Md5 => MtaHash {
                    alg: HashAlg::Md5,
                    oid: HashOid::EuroPacketCable,
                },
            });
            provd_docsis::encode_mta(&parsed, hash)
        }
        (ConfigFileKind::Docsis, FileKind::Mta) => {
            return Err("the class makes docsis files but the text is an MTA file (it starts with MtaConfigDelimiter 1)".into());
        }
        (ConfigFileKind::Mta, FileKind::Cm) => {
            return Err(
                "the class makes MTA files but the text does not start with MtaConfigDelimiter 1"
                    .into(),
            );
        }
    };
    encoded.map_err(|e| e.to_string())
}

/// Binaries by input key, bounded in bytes; the oldest entries go first.
#[derive(Debug)]
struct Cache {
    map: HashMap<u128, Arc<[u8]>>,
    order: VecDeque<u128>,
    bytes: usize,
    cap: usize,
}

impl Cache {
    fn new(cap: usize) -> Self {
        Cache {
            map: HashMap::new(),
            order: VecDeque::new(),
            bytes: 0,
            cap,
        }
    }

    fn get(&self, key: u128) -> Option<Arc<[u8]>> {
        self.map.get(&key).cloned()
    }

    fn insert(&mut self, key: u128, v: Arc<[u8]>) {
        if v.len() > self.cap {
            return;
        }
        let len = v.len();
        if let Some(old) = self.map.insert(key, v) {
            self.bytes -= old.len();
        } else {
            self.order.push_back(key);
        }
        self.bytes += len;
        while self.bytes > self.cap {
            let Some(k) = self.order.pop_front() else {
                break;
            };
            if let Some(old) = self.map.remove(&k) {
                self.bytes -= old.len();
            }
        }
    }
}
