//! The pages' templates (compiled into the binary) and the filters they use.

use minijinja::value::Value;
use minijinja::{Environment, Error, ErrorKind};

/// Every template, by name (`.html`: auto-escaped).
const TEMPLATES: &[(&str, &str)] = &[
    ("layout.html", include_str!("../templates/layout.html")),
    ("macros.html", include_str!("../templates/macros.html")),
    ("error.html", include_str!("../templates/error.html")),
    ("login.html", include_str!("../templates/login.html")),
    (
        "dashboard.html",
        include_str!("../templates/dashboard.html"),
    ),
    (
        "dashboard_live.html",
        include_str!("../templates/dashboard_live.html"),
    ),
    ("search.html", include_str!("../templates/search.html")),
    ("devices.html", include_str!("../templates/devices.html")),
    ("device.html", include_str!("../templates/device.html")),
    (
        "tier_diff.html",
        include_str!("../templates/tier_diff.html"),
    ),
    (
        "subscribers.html",
        include_str!("../templates/subscribers.html"),
    ),
    ("record.html", include_str!("../templates/record.html")),
    ("classes.html", include_str!("../templates/classes.html")),
    (
        "templates.html",
        include_str!("../templates/templates.html"),
    ),
    ("template.html", include_str!("../templates/template.html")),
    (
        "template_problems.html",
        include_str!("../templates/template_problems.html"),
    ),
    (
        "template_preview.html",
        include_str!("../templates/template_preview.html"),
    ),
    (
        "template_diff.html",
        include_str!("../templates/template_diff.html"),
    ),
    ("leases.html", include_str!("../templates/leases.html")),
    ("mta.html", include_str!("../templates/mta.html")),
    ("cwmp.html", include_str!("../templates/cwmp.html")),
    ("jobs.html", include_str!("../templates/jobs.html")),
    ("job.html", include_str!("../templates/job.html")),
    ("audit.html", include_str!("../templates/audit.html")),
    ("tokens.html", include_str!("../templates/tokens.html")),
];

pub(crate) struct Views {
    env: Environment<'static>,
}

fn int_of(v: &Value) -> Option<i64> {
    i64::try_from(v.clone()).ok().or_else(|| {
        f64::try_from(v.clone())
            .ok()
            .filter(|f| f.is_finite())
            // Saturating float-to-int conversion: a time beyond i64 is nonsense either way.
            .map(|f| f as i64)
    })
}

/// `<time>` with the relative time shown and the absolute one on hover (and in `datetime`).
fn when(v: Value) -> Value {
    let Some(t) = int_of(&v) else {
        return Value::from("—");
    };
    let ms = crate::time::to_ms(t);
    let abs = crate::time::absolute(ms);
    let rel = crate::time::relative(ms, crate::time::now_ms());
    Value::from_safe_string(format!(
        "<time datetime=\"{abs}\" title=\"{abs}\">{rel}</time>"
    ))
}

fn abstime(v: Value) -> String {
    int_of(&v).map_or_else(
        || "—".into(),
        |t| crate::time::absolute(crate::time::to_ms(t)),
    )
}

/// `1.2 k`, `3.4 M` for counts; plain below 1,000.
fn si(v: Value) -> String {
    let Ok(f) = f64::try_from(v) else {
        return "—".into();
    };
    match f.abs() {
        x if x >= 1e9 => format!("{:.1} G", f / 1e9),
        x if x >= 1e6 => format!("{:.1} M", f / 1e6),
        x if x >= 1e4 => format!("{:.1} k", f / 1e3),
        x if x >= 100.0 || x == x.trunc() => format!("{f:.0}"),
        _ => format!("{f:.1}"),
    }
}

/// A number with `digits` decimals (`—` for none).
fn fixed(v: Value, digits: Option<usize>) -> String {
    match f64::try_from(v) {
        Ok(f) if f.is_finite() => format!("{f:.*}", digits.unwrap_or(1)),
        _ => "—".into(),
    }
}

/// A JSON value as compact text (objects and arrays), or the string itself.
fn compact(v: Value) -> Result<String, Error> {
    if let Some(s) = v.as_str() {
        return Ok(s.to_owned());
    }
    serde_json::to_string(&v).map_err(|e| Error::new(ErrorKind::InvalidOperation, e.to_string()))
}

impl Views {
    pub(crate) fn new() -> Views {
        let mut env = Environment::new();
        for (name, text) in TEMPLATES {
            // The templates are part of the build; one that does not compile is caught by the
            // crate's tests (every page is rendered there), and is skipped here, not fatal.
            if let Err(e) = env.add_template(name, text) {
                tracing::error!(template = name, error = %e, "UI template does not compile");
            }
        }
        env.add_filter("when", when);
        env.add_filter("abstime", abstime);
        env.add_filter("si", si);
        env.add_filter("fixed", fixed);
        env.add_filter("compact", compact);
        env.add_function("enc", |s: String| crate::call::enc(&s));
        Views { env }
    }

    pub(crate) fn render(&self, name: &str, ctx: Value) -> Result<String, Error> {
        self.env.get_template(name)?.render(ctx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_template_compiles() {
        let mut env = Environment::new();
        for (name, text) in TEMPLATES {
            env.add_template(name, text)
                .unwrap_or_else(|e| panic!("{name}: {e:#}"));
        }
    }

    #[test]
    fn filters_show_times_and_counts() {
        assert_eq!(si(Value::from(999)), "999");
        assert_eq!(si(Value::from(12_345)), "12.3 k");
        assert_eq!(si(Value::from(2.5)), "2.5");
        assert_eq!(abstime(Value::from(0)), "1970-01-01 00:00:00Z");
        assert_eq!(abstime(Value::from("x")), "—");
        let w = when(Value::from(crate::time::now_ms() - 90_000)).to_string();
        assert!(w.contains("90 s ago") && w.starts_with("<time"), "{w}");
    }
}
