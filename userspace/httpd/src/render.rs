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

use std::sync::Arc;

use minijinja::value::Value;
use provd_config::{Policy, ProfileSpec, Vars};
use provd_files::PROBE_MAC;
use provd_files::WatchedTemplate;
use provd_files::template::{
    TypedVars, mac_colon, mac_hex, reads_any, template_error, unknown_variables,
};

/// Every variable a profile template's render context sets (see [`ProfileClass::render`]).
pub(crate) const PROFILE_CONTEXT: [&str; 11] = [
    "mac",
    "mac12",
    "mac_upper",
    "class",
    "ip",
    "model",
    "swver",
    "upgrade",
    "profile_rule",
    "vars",
    "subscriber",
];

use crate::HttpdError;

#[derive(Debug)]
pub(crate) struct ProfileClass {
    pub name: String,
    pub spec: ProfileSpec,
    /// Its generation is part of every cache key.
    pub template: WatchedTemplate,
}

/// The per-request inputs of a render.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct Inputs {
    pub ip: String,
    pub model: String,
    pub swver: String,
    /// `(url, firmware, version)`.
    pub upgrade: Option<(String, String, String)>,
    /// The device's store record's fingerprint (see provd-devices' catalog): a changed
    /// variable is a new render.
    pub record: Option<(u64, u64, u64)>,
}

impl ProfileClass {
    pub(crate) fn load_all(policy: &Policy) -> Result<Vec<ProfileClass>, HttpdError> {
        let mut out = Vec::new();
        for c in &policy.classes {
            let Some(spec) = &c.profile else { continue };
            let template = WatchedTemplate::load(&spec.template, |env| {
                env.add_filter("expand", expand_filter);
            })
            .map_err(|message| HttpdError::Template {
                class: c.name.clone(),
                message,
            })?;
            out.push(ProfileClass {
                name: c.name.clone(),
                spec: spec.clone(),
                template,
            });
        }
        Ok(out)
    }

    /// For `provd check-config`: the template reads no variable the render does not set, and,
    /// unless it reads `subscriber` (which needs the device's record), renders for a probe
    /// device (a documentation-range MAC and address, no model, no upgrade).
    pub(crate) fn check(&self, vars: &Vars) -> Result<(), HttpdError> {
        let (_, env) = self.template.peek();
        let name = self.template.name();
        let err = |message: String| HttpdError::Template {
            class: self.name.clone(),
            message,
        };
        let unknown = unknown_variables(&env, name, &PROFILE_CONTEXT);
        if !unknown.is_empty() {
            return Err(err(format!(
                "template {name} reads {}, which no render sets (it knows {}): every profile it renders would fail",
                unknown.join(", "),
                PROFILE_CONTEXT.join(", ")
            )));
        }
        if reads_any(&env, name, &["subscriber"]) {
            return Ok(());
        }
        let probe = Inputs {
            ip: "192.0.2.1".into(),
            model: String::new(),
            swver: String::new(),
            upgrade: None,
            record: None,
        };
        self.render(&env, &PROBE_MAC, &probe, vars, None)
            .map(drop)
            .map_err(|e| err(format!("does not render for a probe device: {e}")))
    }

    /// The current template (re-read first if its file changed and the check is due).
    pub(crate) fn current(&self) -> (u64, Arc<minijinja::Environment<'static>>) {
        self.template.current(&self.name)
    }

    /// Renders the profile body (without the version: the caller sets it).
    pub(crate) fn render(
        &self,
        env: &minijinja::Environment<'static>,
        mac: &[u8; 6],
        inputs: &Inputs,
        vars: &Vars,
        subscriber: Option<&provd_store::Vars>,
    ) -> Result<String, String> {
        let name = self.template.name();
        let tmpl = env
            .get_template(name)
            .map_err(|e| template_error(name, &e))?;
        let upgrade = inputs.upgrade.as_ref().map(|(url, firmware, version)| {
            minijinja::context! { url => url, firmware => firmware, version => version }
        });
        let ctx = minijinja::context! {
            mac => mac_colon(mac),
            mac12 => mac_hex(mac, false),
            mac_upper => mac_hex(mac, true),
            class => &self.name,
            ip => &inputs.ip,
            model => &inputs.model,
            swver => &inputs.swver,
            upgrade => upgrade,
            profile_rule => self.spec.profile_rule.as_deref(),
            vars => Value::from_serialize(TypedVars(vars)),
            subscriber => Value::from_serialize(subscriber),
        };
        tmpl.render(ctx).map_err(|e| template_error(name, &e))
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
    let mut vars = provd_profile_rule::Variables::new(mac);
    vars.pn = s("model");
    vars.swver = s("swver");
    vars.ip = s("ip").and_then(|ip| ip.parse().ok());
    provd_profile_rule::expand(&text, &vars)
}
