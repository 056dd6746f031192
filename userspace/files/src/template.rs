//! Operator templates, as every per-device renderer (config files over TFTP, profiles over
//! HTTP) uses them: a file compiled into a minijinja environment with strict undefined
//! variables (a typo is an error naming the file and line, not an empty value), no
//! auto-escaping (the output is docsis-tool text or a profile, not HTML) and the trailing
//! newline kept; re-read when the file changes, a broken edit keeping the last good version.

use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant, SystemTime};

use provd_config::{VarValue, Vars};
use serde::Serialize;

/// How often a template file's modification time is looked at.
pub const TEMPLATE_CHECK: Duration = Duration::from_secs(1);

/// What a renderer adds to the base environment (filters, functions) before the template is
/// compiled.
pub type Extend = fn(&mut minijinja::Environment<'static>);

/// A template file, compiled, watched for edits.
#[derive(Debug)]
pub struct WatchedTemplate {
    path: PathBuf,
    /// The template's name in its environment: the path as the config wrote it.
    name: String,
    extend: Extend,
    check_every: Duration,
    state: RwLock<State>,
}

#[derive(Debug)]
struct State {
    /// Bumped on every successful reload; renderers put it in their cache keys.
    generation: u64,
    env: Arc<minijinja::Environment<'static>>,
    modified: Option<SystemTime>,
    checked: Instant,
}

impl WatchedTemplate {
    /// Reads and compiles `path`; the error names the file (and the line, for syntax).
    pub fn load(path: &Path, extend: Extend) -> Result<WatchedTemplate, String> {
        let name = path.display().to_string();
        let (env, modified) = compile(path, &name, extend)?;
        Ok(WatchedTemplate {
            path: path.to_owned(),
            name,
            extend,
            check_every: TEMPLATE_CHECK,
            state: RwLock::new(State {
                generation: 0,
                env,
                modified,
                checked: Instant::now(),
            }),
        })
    }

    /// How often the file is looked at for edits (default [`TEMPLATE_CHECK`]).
    pub fn set_check_every(&mut self, every: Duration) {
        self.check_every = every;
    }

    /// The template's name in its environment (for `get_template`).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The current generation and environment, re-reading the file first if it changed and a
    /// check is due. `owner` (the class) goes into the log lines a reload writes.
    pub fn current(&self, owner: &str) -> (u64, Arc<minijinja::Environment<'static>>) {
        self.refresh(owner);
        self.peek()
    }

    /// The current generation and environment, without looking at the file.
    pub fn peek(&self) -> (u64, Arc<minijinja::Environment<'static>>) {
        let s = self.state.read().unwrap_or_else(|p| p.into_inner());
        (s.generation, Arc::clone(&s.env))
    }

    fn refresh(&self, owner: &str) {
        {
            let s = self.state.read().unwrap_or_else(|p| p.into_inner());
            if s.checked.elapsed() < self.check_every {
                return;
            }
        }
        let mut s = self.state.write().unwrap_or_else(|p| p.into_inner());
        if s.checked.elapsed() < self.check_every {
            return;
        }
        s.checked = Instant::now();
        let modified = modified(&self.path);
        if modified == s.modified {
            return;
        }
        match compile(&self.path, &self.name, self.extend) {
            Ok((env, modified)) => {
                s.env = env;
                s.modified = modified;
                s.generation += 1;
                tracing::info!(class = owner, template = %self.name, generation = s.generation, "template reloaded");
            }
            Err(e) => {
                // Remember the bad file's time so the error is logged once per edit.
                s.modified = modified;
                tracing::error!(class = owner, error = %e, "template not reloaded; serving the last good one");
            }
        }
    }
}

fn modified(path: &Path) -> Option<SystemTime> {
    std::fs::metadata(path).and_then(|m| m.modified()).ok()
}

type Compiled = (Arc<minijinja::Environment<'static>>, Option<SystemTime>);

fn compile(path: &Path, name: &str, extend: Extend) -> Result<Compiled, String> {
    // The time is read before the text, so an edit racing the read is seen next check.
    let modified = modified(path);
    let source = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read template {}: {e}", path.display()))?;
    let mut env = environment(extend);
    env.add_template_owned(name.to_owned(), source)
        .map_err(|e| template_error(name, &e))?;
    Ok((Arc::new(env), modified))
}

/// The environment every operator template is compiled in, and checked in (a check must see
/// what is served): strict undefined variables, no auto-escaping, the trailing newline kept,
/// and `extend`'s filters and functions.
pub fn environment(extend: Extend) -> minijinja::Environment<'static> {
    let mut env = minijinja::Environment::new();
    env.set_undefined_behavior(minijinja::UndefinedBehavior::Strict);
    env.set_auto_escape_callback(|_| minijinja::AutoEscape::None);
    env.set_keep_trailing_newline(true);
    extend(&mut env);
    env
}

/// The top-level variables template `name` reads that neither `known` (its render context)
/// nor the environment's globals give, sorted: under strict undefined each fails every render
/// that reaches it. A static analysis: control flow is not considered.
pub fn unknown_variables(
    env: &minijinja::Environment<'_>,
    name: &str,
    known: &[&str],
) -> Vec<String> {
    let Ok(tmpl) = env.get_template(name) else {
        return Vec::new();
    };
    let globals: Vec<&str> = env.globals().map(|(n, _)| n).collect();
    let mut unknown: Vec<String> = tmpl
        .undeclared_variables(false)
        .into_iter()
        .filter(|v| !known.contains(&v.as_str()) && !globals.contains(&v.as_str()))
        .collect();
    unknown.sort();
    unknown
}

/// Whether template `name` reads any of `vars` (at the top level).
pub fn reads_any(env: &minijinja::Environment<'_>, name: &str, vars: &[&str]) -> bool {
    env.get_template(name).is_ok_and(|t| {
        t.undeclared_variables(false)
            .iter()
            .any(|v| vars.contains(&v.as_str()))
    })
}

/// Where `e` is in `source`: the 1-based line and column (the column counted in characters),
/// from the error's byte range when minijinja gives one, else its line alone.
pub fn position(e: &minijinja::Error, source: &str) -> (Option<u32>, Option<u32>) {
    let line = e.line().and_then(|l| u32::try_from(l).ok());
    let Some(start) = e.range().map(|r| r.start) else {
        return (line, None);
    };
    let Some(before) = source.get(..start.min(source.len())) else {
        return (line, None);
    };
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let column = before[line_start..].chars().count() + 1;
    let at_line = before.bytes().filter(|b| *b == b'\n').count() + 1;
    (
        u32::try_from(at_line).ok().or(line),
        u32::try_from(column).ok(),
    )
}

/// What went wrong, without where: the error's kind and detail.
pub fn error_message(e: &minijinja::Error) -> String {
    match e.detail() {
        Some(d) => format!("{}: {d}", e.kind()),
        None => e.kind().to_string(),
    }
}

/// "FILE line N: what" for an operator.
pub fn template_error(name: &str, e: &minijinja::Error) -> String {
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

/// `[vars]` or a subscriber's vars as a template value, each with its TOML type (a number
/// stays a number, so `{{ vars.down * 2 }}` works).
#[derive(Debug, Clone, Copy)]
pub struct TypedVars<'a>(pub &'a Vars);

impl Serialize for TypedVars<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_map(self.0.iter().map(|(k, v)| (k, TypedVar(v))))
    }
}

struct TypedVar<'a>(&'a VarValue);

impl Serialize for TypedVar<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self.0 {
            VarValue::String(v) => s.serialize_str(v),
            VarValue::Integer(v) => s.serialize_i64(*v),
            VarValue::Float(v) => s.serialize_f64(*v),
            VarValue::Bool(v) => s.serialize_bool(*v),
        }
    }
}

/// `00:15:cf:12:34:56`.
pub fn mac_colon(m: &[u8; 6]) -> String {
    format!(
        "{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
        m[0], m[1], m[2], m[3], m[4], m[5]
    )
}

/// `0015cf123456`, or `0015CF123456` with `upper`.
pub fn mac_hex(m: &[u8; 6], upper: bool) -> String {
    use std::fmt::Write;
    let mut s = String::with_capacity(12);
    for b in m {
        // Writing into a String cannot fail.
        let _ = if upper {
            write!(s, "{b:02X}")
        } else {
            write!(s, "{b:02x}")
        };
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn no_extension(_: &mut minijinja::Environment<'static>) {}

    #[test]
    fn an_edit_is_picked_up_and_a_broken_one_keeps_the_last_good_template() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.j2");
        std::fs::write(&path, "one {{ x }}\n").unwrap();
        let mut t = WatchedTemplate::load(&path, no_extension).unwrap();
        t.set_check_every(Duration::ZERO);
        let render = |t: &WatchedTemplate| {
            let (generation, env) = t.current("c");
            let text = env
                .get_template(t.name())
                .unwrap()
                .render(minijinja::context! { x => 1 })
                .unwrap();
            (generation, text)
        };
        assert_eq!(render(&t), (0, "one 1\n".to_string()));

        // A different length, so the edit is seen even where mtime has a coarse granularity.
        std::fs::write(&path, "two: {{ x }}\n").unwrap();
        set_mtime_later(&path);
        assert_eq!(render(&t), (1, "two: 1\n".to_string()));

        std::fs::write(&path, "{% if %}").unwrap();
        set_mtime_later(&path);
        assert_eq!(render(&t), (1, "two: 1\n".to_string()), "the last good one");
    }

    #[test]
    fn strict_undefined_and_errors_name_the_file_and_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bad.j2");
        std::fs::write(&path, "ok\n{% for %}\n").unwrap();
        let err = WatchedTemplate::load(&path, no_extension).unwrap_err();
        assert!(err.contains("bad.j2 line 2"), "{err}");

        std::fs::write(&path, "{{ missing }}").unwrap();
        let t = WatchedTemplate::load(&path, no_extension).unwrap();
        let (_, env) = t.peek();
        let e = env
            .get_template(t.name())
            .unwrap()
            .render(minijinja::context! {})
            .unwrap_err();
        assert!(template_error(t.name(), &e).contains("undefined"), "{e}");
        assert!(WatchedTemplate::load(&dir.path().join("nope.j2"), no_extension).is_err());
    }

    #[test]
    fn positions_are_line_and_column_of_the_error() {
        let env = environment(no_extension);
        let src = "one\ntwo {{ x }}\n  {% for %}\n";
        let e = env.clone().add_template_owned("t", src).unwrap_err();
        assert_eq!(position(&e, src), (Some(3), Some(10)), "{e:?}");
        // Multi-byte characters before the error count once each.
        let src = "é€ {% endif %}";
        let e = env.clone().add_template_owned("t", src).unwrap_err();
        assert_eq!(position(&e, src), (Some(1), Some(7)), "{e:?}");
        // An undefined variable at render time (strict): its line and column.
        let mut env = environment(no_extension);
        let src = "a\n  b {{ missing.x }}\n";
        env.add_template_owned("t", src).unwrap();
        let e = env
            .get_template("t")
            .unwrap()
            .render(minijinja::context! {})
            .unwrap_err();
        let (line, column) = position(&e, src);
        assert_eq!(line, Some(2), "{e:?}");
        assert!(column.is_some_and(|c| (5..=10).contains(&c)), "{column:?}");
        assert!(error_message(&e).contains("undefined"), "{e}");
    }

    #[test]
    fn mac_spellings() {
        let m = [0x00, 0x15, 0xcf, 0x12, 0x34, 0x5a];
        assert_eq!(mac_colon(&m), "00:15:cf:12:34:5a");
        assert_eq!(mac_hex(&m, false), "0015cf12345a");
        assert_eq!(mac_hex(&m, true), "0015CF12345A");
    }

    /// Moves the file's mtime a second ahead, so the check sees a change whatever the
    /// filesystem's timestamp granularity.
    fn set_mtime_later(path: &Path) {
        let f = std::fs::File::options().write(true).open(path).unwrap();
        let later = SystemTime::now() + Duration::from_secs(1);
        f.set_modified(later).unwrap();
    }
}
