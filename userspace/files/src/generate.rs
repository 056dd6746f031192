//! Rendering a device's config file: template → docsis-tool text → binary with MICs or hash.
//!
//! A request names a file; the classes whose `boot_file` names devices (`cm/{mac}.cfg`) say
//! whether it is a generated name and whose. The device's context (its lease facts, its
//! subscriber record, the operator's variables) goes through the class's minijinja template
//! into the docsis tool's text form, which `provd-docsis` compiles to the binary the device
//! fetches.
//!
//! A template saved through the API (a version in the store, held by the catalog) is rendered
//! instead of its file, which stays version 0: the seed.
//!
//! Binaries are cached by their inputs: the template's generation, its stored version's
//! fingerprint, and every value the context holds. Any change of input is a new key, so nothing stale is ever served; a template edited
//! on disk is noticed within [`TEMPLATE_CHECK`](crate::TEMPLATE_CHECK) and gets a new generation. Retransmissions and
//! repeated boots get byte-identical files, which PacketCable's hash SET relies on.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::hash::BuildHasher;
use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use provd_config::{BootFile, ConfigFileKind, ConfigFileSpec, MtaHashAlg, Policy, Vars};
use provd_devices::catalog::{Catalog, DeviceEntry, Resolved};
use provd_devices::{DeviceFacts, DeviceView};

use crate::template::{
    Extend, TypedVars, WatchedTemplate, environment, error_message, mac_colon, mac_hex, position,
    reads_any, template_error, unknown_variables,
};

/// Every variable a config-file template's render context sets (see `render_text`).
pub const FILE_CONTEXT: [&str; 12] = [
    "mac",
    "mac12",
    "mac_upper",
    "class",
    "ip",
    "giaddr",
    "vendor_class",
    "lease_expires",
    "vars",
    "subscriber",
    "cos",
    "device",
];

/// The context variables only a device the store knows has: a template that reads them may
/// fail for a device without a record (a guard like `{% if subscriber %}` is its choice).
const RECORD_CONTEXT: [&str; 3] = ["subscriber", "cos", "device"];

/// The device `provd check-config` renders each template for: a locally administered MAC from
/// the documentation range (RFC 7042), never a real device's.
pub const PROBE_MAC: [u8; 6] = [0x02, 0x00, 0x5e, 0x10, 0x00, 0x01];

/// What generated-file templates add to the base environment: nothing yet. One value, so that
/// the file, a stored version and a check compile alike.
const EXTEND: Extend = |_| {};

/// Each config-file template's name, by its path in `policy`: its file name (`cm.cfg.j2`),
/// or, where two different files of the config share a file name, its path as resolved
/// from the config. The name is what the API lists and what stored versions are kept under,
/// so it stays the same across restarts and reloads as long as the config names the file.
pub fn template_names(policy: &Policy) -> BTreeMap<PathBuf, String> {
    let paths: std::collections::BTreeSet<&PathBuf> = policy
        .classes
        .iter()
        .filter_map(|c| c.config_file.as_ref().map(|f| &f.template))
        .collect();
    let base = |p: &PathBuf| {
        p.file_name().map_or_else(
            || p.display().to_string(),
            |n| n.to_string_lossy().into_owned(),
        )
    };
    let mut seen: HashMap<String, usize> = HashMap::new();
    for p in &paths {
        *seen.entry(base(p)).or_default() += 1;
    }
    paths
        .into_iter()
        .map(|p| {
            let b = base(p);
            let name = if seen.get(&b).copied().unwrap_or(0) > 1 {
                p.display().to_string()
            } else {
                b
            };
            (p.clone(), name)
        })
        .collect()
}

/// One problem a template check found. Lines and columns are 1-based, of the template's text
/// (the column in characters).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub stage: Stage,
    pub line: Option<u32>,
    pub column: Option<u32>,
    pub message: String,
}

/// Where in the pipeline a problem was found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    /// The template does not parse.
    Syntax,
    /// It parses but does not render (an undefined variable, a failed filter ...).
    Render,
    /// It renders, but the text is not a config file of the class's kind.
    Compile,
}

impl Stage {
    pub fn as_str(self) -> &'static str {
        match self {
            Stage::Syntax => "syntax",
            Stage::Render => "render",
            Stage::Compile => "compile",
        }
    }
}

/// What a trial render (a preview, a check) changes from what is served.
#[derive(Debug, Clone, Copy, Default)]
pub struct Trial<'a> {
    /// Render this text instead of the template's current version.
    pub text: Option<&'a str>,
    /// Render as if the device's class of service were this one (a tier change, before it is
    /// made).
    pub class_of_service: Option<&'a str>,
}

/// Why a trial render gave no file.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TrialError {
    /// The template does not parse, render or compile.
    #[error("the template has {} problem(s): {}", .0.len(), .0.first().map_or("", |p| p.message.as_str()))]
    Template(Vec<Problem>),
    /// No class of the config generates files with that name or template.
    #[error("{0}")]
    NoClass(String),
    /// The class of service to render as is not in the store.
    #[error("no class of service {0:?}")]
    NoClassOfService(String),
}

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
    /// The file's template, by its name in its environment.
    file_tmpl: Arc<str>,
    /// The template's name ([`template_names`]): the catalog's key for its stored versions.
    store_name: String,
    /// The newest stored version, compiled (kept until the catalog holds another).
    stored: RwLock<Option<Arc<StoredTemplate>>>,
}

/// A stored version of a template, compiled.
#[derive(Debug)]
struct StoredTemplate {
    fingerprint: u64,
    /// Its name in `env`: `NAME vN`, what errors say.
    tmpl: Arc<str>,
    env: Arc<minijinja::Environment<'static>>,
}

/// What a class renders from, now.
struct Current {
    env: Arc<minijinja::Environment<'static>>,
    tmpl: Arc<str>,
    /// The file's generation.
    generation: u64,
    /// The stored version's fingerprint; 0 when rendering from the file.
    stored: u64,
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
        let names = template_names(policy);
        for c in &policy.classes {
            let (Some(spec), Some(pattern)) = (&c.config_file, &c.boot_file) else {
                continue;
            };
            let template =
                WatchedTemplate::load(&spec.template, EXTEND).map_err(GenerateError::Render)?;
            classes.push(GenClass {
                name: c.name.clone(),
                pattern: pattern.clone(),
                spec: spec.clone(),
                file_tmpl: template.name().into(),
                template,
                store_name: names
                    .get(&spec.template)
                    .cloned()
                    .unwrap_or_else(|| spec.template.display().to_string()),
                stored: RwLock::new(None),
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
        let cur = self.current(class)?;
        let record = self.catalog.resolve(&mac);
        let key = self.key(class, &cur, &mac, facts.as_ref(), record.as_ref());
        if let Some(bytes) = self.lock_cache().get(key) {
            return Ok(Some(GeneratedFile { bytes, owner }));
        }
        let bytes: Arc<[u8]> = self
            .render(class, &cur, &mac, facts.as_ref(), record)?
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
        let cur = self.current_peek(class, false)?;
        self.render(class, &cur, mac, facts, self.catalog.resolve(mac))
    }

    /// The first class whose template is called `name` ([`template_names`]), and the kind
    /// of file it makes.
    pub fn class_of_template(&self, name: &str) -> Option<(&str, ConfigFileKind)> {
        self.classes
            .iter()
            .find(|c| c.store_name == name)
            .map(|c| (c.name.as_str(), c.spec.kind))
    }

    /// The name of the template `class_name` renders ([`template_names`]).
    pub fn template_of_class(&self, class_name: &str) -> Option<&str> {
        self.classes
            .iter()
            .find(|c| c.name == class_name)
            .map(|c| c.store_name.as_str())
    }

    /// What `provd check-config` finds wrong with the classes' templates beyond their syntax
    /// (which [`Generator::new`] checked), one line each naming the class and the template:
    /// a variable the render context does not set (every render would fail), or a render and
    /// compile for a [`PROBE_MAC`] device without a store record that fails. A template that
    /// reads the record's variables (`subscriber`, `cos`, `device`) may need a record to
    /// render; only its variables are checked.
    pub fn check(&self) -> Vec<String> {
        let mut problems = Vec::new();
        for class in &self.classes {
            let Ok(cur) = self.current_peek(class, false) else {
                continue;
            };
            let unknown = unknown_variables(&cur.env, &cur.tmpl, &FILE_CONTEXT);
            if !unknown.is_empty() {
                problems.push(format!(
                    "class {:?}: template {} reads {}, which no render sets (it knows {}): every file it generates would fail",
                    class.name,
                    class.store_name,
                    unknown.join(", "),
                    FILE_CONTEXT.join(", ")
                ));
                continue;
            }
            if reads_any(&cur.env, &cur.tmpl, &RECORD_CONTEXT) {
                continue;
            }
            if let Err(TrialError::Template(found)) =
                self.render_trial(&class.name, &PROBE_MAC, None, &Trial::default())
            {
                for p in found {
                    let at = p.line.map(|l| format!(" line {l}")).unwrap_or_default();
                    problems.push(format!(
                        "class {:?}: template {}{at} does not {} for a probe device ({}): {}",
                        class.name,
                        class.store_name,
                        p.stage.as_str(),
                        mac_colon(&PROBE_MAC),
                        p.message
                    ));
                }
            }
        }
        problems
    }

    /// Renders `class_name`'s file for `mac` as [`render_for`](Self::render_for) does, with
    /// `trial`'s changes, reporting what is wrong with the template as [`Problem`]s with
    /// their line and column: the same environment, context and compiler as a served file.
    pub fn render_trial(
        &self,
        class_name: &str,
        mac: &[u8; 6],
        facts: Option<&DeviceFacts>,
        trial: &Trial<'_>,
    ) -> Result<Vec<u8>, TrialError> {
        let class = self
            .classes
            .iter()
            .find(|c| c.name == class_name)
            .ok_or_else(|| {
                TrialError::NoClass(format!("class {class_name:?} generates no config file"))
            })?;
        let cur = match trial.text {
            Some(text) => {
                let mut env = environment(EXTEND);
                let tmpl: Arc<str> = class.store_name.as_str().into();
                env.add_template_owned(tmpl.to_string(), text.to_owned())
                    .map_err(|e| TrialError::Template(vec![problem(Stage::Syntax, &e, text)]))?;
                Current {
                    env: Arc::new(env),
                    tmpl,
                    generation: 0,
                    stored: 0,
                }
            }
            None => self.current_peek(class, false).map_err(|e| {
                TrialError::Template(vec![Problem {
                    stage: Stage::Syntax,
                    line: None,
                    column: None,
                    message: e.to_string(),
                }])
            })?,
        };
        let mut record = self.catalog.resolve(mac);
        if let Some(cos) = trial.class_of_service {
            let entry = self
                .catalog
                .class(cos)
                .ok_or_else(|| TrialError::NoClassOfService(cos.to_owned()))?;
            let mut spec = record.as_ref().map_or_else(
                || provd_store::DeviceSpec {
                    mac: provd_store::Mac(*mac),
                    kind: match class.spec.kind {
                        ConfigFileKind::Docsis => provd_store::DeviceKind::Cm,
                        ConfigFileKind::Mta => provd_store::DeviceKind::Mta,
                    },
                    ..Default::default()
                },
                |r| provd_store::DeviceSpec {
                    mac: provd_store::Mac(*mac),
                    kind: r.device.kind,
                    subscriber: r.device.subscriber.clone(),
                    vars: r.device.vars.clone(),
                    ..Default::default()
                },
            );
            spec.class_of_service = Some(cos.to_owned());
            let version = record.as_ref().map_or(0, |r| r.device.version);
            let device = DeviceEntry::of(&provd_store::Device {
                spec,
                version,
                created_at: 0,
                updated_at: 0,
            });
            record = Some(Resolved {
                device: Arc::new(device),
                subscriber: record.and_then(|r| r.subscriber),
                class: Some(entry),
            });
        }
        let ctx = self.context(class, mac, facts, record);
        let text = render_text(&cur.env, &cur.tmpl, &ctx).map_err(|e| {
            let source = cur
                .env
                .get_template(&cur.tmpl)
                .map(|t| t.source().to_owned())
                .unwrap_or_default();
            TrialError::Template(vec![problem(Stage::Render, &e, &source)])
        })?;
        compile(&class.spec, &text).map_err(|e| {
            TrialError::Template(vec![Problem {
                stage: Stage::Compile,
                line: None,
                column: None,
                message: format!("the rendered text does not compile: {e}"),
            }])
        })
    }

    /// What `class` renders from now: its newest stored version when the catalog holds one,
    /// else its file (re-read if it changed).
    fn current(&self, class: &GenClass) -> Result<Current, GenerateError> {
        self.current_peek(class, true)
    }

    fn current_peek(&self, class: &GenClass, refresh: bool) -> Result<Current, GenerateError> {
        let Some(entry) = self.catalog.template(&class.store_name) else {
            let (generation, env) = if refresh {
                class.template.current(&class.name)
            } else {
                class.template.peek()
            };
            return Ok(Current {
                env,
                tmpl: Arc::clone(&class.file_tmpl),
                generation,
                stored: 0,
            });
        };
        let cached = class
            .stored
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .as_ref()
            .filter(|s| s.fingerprint == entry.fingerprint)
            .map(Arc::clone);
        let stored = match cached {
            Some(s) => s,
            None => {
                let tmpl: Arc<str> = format!("{} v{}", class.store_name, entry.version).into();
                let mut env = environment(EXTEND);
                env.add_template_owned(tmpl.to_string(), entry.text.to_string())
                    .map_err(|e| GenerateError::Render(template_error(&tmpl, &e)))?;
                let s = Arc::new(StoredTemplate {
                    fingerprint: entry.fingerprint,
                    tmpl,
                    env: Arc::new(env),
                });
                tracing::info!(class = %class.name, template = %s.tmpl, "rendering from a stored template version");
                *class.stored.write().unwrap_or_else(|p| p.into_inner()) = Some(Arc::clone(&s));
                s
            }
        };
        let (generation, _) = class.template.peek();
        Ok(Current {
            env: Arc::clone(&stored.env),
            tmpl: Arc::clone(&stored.tmpl),
            generation,
            stored: stored.fingerprint,
        })
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
        cur: &Current,
        mac: &[u8; 6],
        facts: Option<&DeviceFacts>,
        record: Option<&Resolved>,
    ) -> u128 {
        // Two independent 64-bit hashes of the same inputs: a collision would hand one device
        // another's file, so 64 bits are not enough at millions of entries.
        let inputs = (
            class.name.as_str(),
            cur.generation,
            // A saved template version: a new key, whatever else stayed.
            cur.stored,
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
        cur: &Current,
        mac: &[u8; 6],
        facts: Option<&DeviceFacts>,
        record: Option<Resolved>,
    ) -> Result<Vec<u8>, GenerateError> {
        let name = &*cur.tmpl;
        let ctx = self.context(class, mac, facts, record);
        let text = render_text(&cur.env, name, &ctx)
            .map_err(|e| GenerateError::Render(template_error(name, &e)))?;
        compile(&class.spec, &text).map_err(|e| {
            GenerateError::Render(format!("{name}: the rendered text does not compile: {e}"))
        })
    }

    fn context<'a>(
        &'a self,
        class: &'a GenClass,
        mac: &[u8; 6],
        facts: Option<&DeviceFacts>,
        record: Option<Resolved>,
    ) -> Context<'a> {
        Context {
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
        }
    }
}

/// A minijinja error as a [`Problem`] at its place in `source`.
fn problem(stage: Stage, e: &minijinja::Error, source: &str) -> Problem {
    let (line, column) = position(e, source);
    Problem {
        stage,
        line,
        column,
        message: error_message(e),
    }
}

fn render_text(
    env: &minijinja::Environment<'static>,
    name: &str,
    ctx: &Context<'_>,
) -> Result<String, minijinja::Error> {
    let tmpl = env.get_template(name)?;
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
