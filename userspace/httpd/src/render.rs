//! Rendering a device's profile from its class template (minijinja, strict undefined, no
//! auto-escaping), with the template file watched for edits.
//!
//! What templates see:
//!
//! | name | value |
//! |---|---|
//! | `mac`, `mac12`, `mac_upper` | `00:15:cf:12:34:56`, `0015cf123456`, `0015CF123456` |
//! | `class` | the class name |
//! | `ip` | the leased address, else the address the request came from |
//! | `model`, `swver` | from `?pn=`/`?swver=` or the User-Agent; `""` when unknown |
//! | `upgrade` | `none`, or `{url, firmware, version}` of the selected `[[upgrade_rule]]` |
//! | `profile_rule` | the class's `profile_rule` (unexpanded: the device expands it), or `none` |
//! | `vars`, `subscriber` | `[vars]` and the device's `[[subscriber]].vars` (or `none`) |
//!
//! and a filter `expand` that runs the device macro expander with this device's variables
//! (`{{ "http://prov/$MA.cfg" | expand }}`), for values the device does not expand itself.

use std::path::PathBuf;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant, SystemTime};

use minijinja::value::Value;
use provd_config::{Policy, ProfileSpec, VarValue, Vars};
use serde::Serialize;

use crate::HttpdError;

/// How often a template file's modification time is looked at.
pub const TEMPLATE_CHECK: Duration = Duration::from_secs(1);

#[derive(Debug)]
pub(crate) struct ProfileClass {
    pub name: String,
    pub spec: ProfileSpec,
    pub template: RwLock<Template>,
    pub template_check: Duration,
}

#[derive(Debug)]
pub(crate) struct Template {
    /// Bumped on every successful reload; part of every cache key.
    pub generation: u64,
    pub env: Arc<minijinja::Environment<'static>>,
    modified: Option<SystemTime>,
    checked: Instant,
}

/// The per-request inputs of a render.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct Inputs {
    pub ip: String,
    pub model: String,
    pub swver: String,
    /// `(url, firmware, version)`.
    pub upgrade: Option<(String, String, String)>,
}

impl ProfileClass {
    pub(crate) fn load_all(policy: &Policy) -> Result<Vec<ProfileClass>, HttpdError> {
        let mut out = Vec::new();
        for c in &policy.classes {
            let Some(spec) = &c.profile else { continue };
            let (env, modified) =
                load_template(&spec.template).map_err(|message| HttpdError::Template {
                    class: c.name.clone(),
                    message,
                })?;
            out.push(ProfileClass {
                name: c.name.clone(),
                spec: spec.clone(),
                template: RwLock::new(Template {
                    generation: 0,
                    env,
                    modified,
                    checked: Instant::now(),
                }),
                template_check: TEMPLATE_CHECK,
            });
        }
        Ok(out)
    }

    /// The current template (re-read first if its file changed and the check is due).
    pub(crate) fn current(&self) -> (u64, Arc<minijinja::Environment<'static>>) {
        self.refresh();
        let t = self.template.read().unwrap_or_else(|p| p.into_inner());
        (t.generation, Arc::clone(&t.env))
    }

    /// A broken edit keeps the last good template and says why, once per edit.
    fn refresh(&self) {
        {
            let t = self.template.read().unwrap_or_else(|p| p.into_inner());
            if t.checked.elapsed() < self.template_check {
                return;
            }
        }
        let mut t = self.template.write().unwrap_or_else(|p| p.into_inner());
        if t.checked.elapsed() < self.template_check {
            return;
        }
        t.checked = Instant::now();
        let modified = std::fs::metadata(&self.spec.template)
            .and_then(|m| m.modified())
            .ok();
        if modified == t.modified {
            return;
        }
        match load_template(&self.spec.template) {
            Ok((env, modified)) => {
                t.env = env;
                t.modified = modified;
                t.generation += 1;
                tracing::info!(class = %self.name, template = %self.spec.template.display(), generation = t.generation, "profile template reloaded");
            }
            Err(e) => {
                t.modified = modified;
                tracing::error!(class = %self.name, error = %e, "profile template not reloaded; serving the last good one");
            }
        }
    }

    /// Renders the profile body (without the version: the caller sets it).
    pub(crate) fn render(
        &self,
        env: &minijinja::Environment<'static>,
        mac: &[u8; 6],
        inputs: &Inputs,
        vars: &Vars,
        subscriber: Option<&Vars>,
    ) -> Result<String, String> {
        let name = self.spec.template.display().to_string();
        let tmpl = env
            .get_template(&name)
            .map_err(|e| template_error(&name, &e))?;
        let upgrade = inputs.upgrade.as_ref().map(|(url, firmware, version)| {
            minijinja::context! { url => url, firmware => firmware, version => version }
        });
        let ctx = minijinja::context! {
            mac => colon(mac),
            mac12 => hex(mac, false),
            mac_upper => hex(mac, true),
            class => &self.name,
            ip => &inputs.ip,
            model => &inputs.model,
            swver => &inputs.swver,
            upgrade => upgrade,
            profile_rule => self.spec.profile_rule.as_deref(),
            vars => Value::from_serialize(VarsRef(vars)),
            subscriber => Value::from_serialize(subscriber.map(VarsRef)),
        };
        tmpl.render(ctx).map_err(|e| template_error(&name, &e))
    }
}

pub(crate) fn colon(mac: &[u8; 6]) -> String {
    let v: Vec<String> = mac.iter().map(|b| format!("{b:02x}")).collect();
    v.join(":")
}

pub(crate) fn hex(mac: &[u8; 6], upper: bool) -> String {
    mac.iter()
        .map(|b| {
            if upper {
                format!("{b:02X}")
            } else {
                format!("{b:02x}")
            }
        })
        .collect()
}

struct VarsRef<'a>(&'a Vars);

impl Serialize for VarsRef<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_map(self.0.iter().map(|(k, v)| (k, VarRef(v))))
    }
}

struct VarRef<'a>(&'a VarValue);

impl Serialize for VarRef<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self.0 {
            VarValue::String(v) => s.serialize_str(v),
            VarValue::Integer(v) => s.serialize_i64(*v),
            VarValue::Float(v) => s.serialize_f64(*v),
            VarValue::Bool(v) => s.serialize_bool(*v),
        }
    }
}

/// The `expand` filter: the device macro expander over the render's own variables.
fn expand_filter(state: &minijinja::State<'_, '_>, text: String) -> String {
    let s = |name: &str| {
        state
            .lookup(name)
            .and_then(|v| v.as_str().map(str::to_owned))
            .filter(|v| !v.is_empty())
    };
    let mac = s("mac12")
        .and_then(|m| {
            let mut out = [0u8; 6];
            for (i, b) in out.iter_mut().enumerate() {
                *b = u8::from_str_radix(m.get(2 * i..2 * i + 2)?, 16).ok()?;
            }
            Some(out)
        })
        .unwrap_or([0; 6]);
    let mut vars = provd_macros::Variables::new(mac);
    vars.pn = s("model");
    vars.swver = s("swver");
    vars.ip = s("ip").and_then(|ip| ip.parse().ok());
    provd_macros::expand(&text, &vars)
}

fn environment() -> minijinja::Environment<'static> {
    let mut env = minijinja::Environment::new();
    env.set_undefined_behavior(minijinja::UndefinedBehavior::Strict);
    env.set_auto_escape_callback(|_| minijinja::AutoEscape::None);
    env.set_keep_trailing_newline(true);
    env.add_filter("expand", expand_filter);
    env
}

fn template_error(name: &str, e: &minijinja::Error) -> String {
    let mut s = match e.line() {
        Some(line) => format!("{name} line {line}: {}", e.kind()),
        None => format!("{name}: {}", e.kind()),
    };
    if let Some(d) = e.detail() {
        s.push_str(": ");
        s.push_str(d);
    }
    s
}

type Loaded = (Arc<minijinja::Environment<'static>>, Option<SystemTime>);

fn load_template(path: &PathBuf) -> Result<Loaded, String> {
    let modified = std::fs::metadata(path).and_then(|m| m.modified()).ok();
    let source = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read template {}: {e}", path.display()))?;
    let name = path.display().to_string();
    let mut env = environment();
    env.add_template_owned(name.clone(), source)
        .map_err(|e| template_error(&name, &e))?;
    Ok((Arc::new(env), modified))
}
