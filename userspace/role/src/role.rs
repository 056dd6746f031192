//! The one shape of a role, and the set `serve` runs.

use std::time::Duration;

use crate::metrics::MetricsSink;

/// A role's counters: name and value, in the role's own order. The same shape for every role,
/// so the log line, the control socket and (later) the metrics endpoint read them alike.
pub type Counters = Vec<(String, u64)>;

/// Whether a role is doing its job.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Health {
    Serving,
    /// Still answering, but something it needs is failing (a disk, a peer); says what.
    Degraded(String),
}

/// A running role. Built by its shell crate (sockets bound, threads or tasks started), then
/// driven only through this.
pub trait Role: Send + Sync {
    /// Short and stable: `dhcp`, `tftp`, `mta`, `syslog`, `time`, `http`, `acs`.
    fn name(&self) -> &'static str;

    /// Where it listens, for the log line that says it is ready (`udp=0.0.0.0:69 ...`).
    fn listening(&self) -> String;

    /// Its counters now.
    fn counters(&self) -> Counters;

    /// Writes its metrics for a Prometheus scrape: labelled, typed families read from its
    /// atomics (never a lock a hot path takes). The default writes [`Role::counters`] as
    /// untyped `provd_<role>_<name>` samples; see [`crate::metrics`].
    fn metrics(&self, out: &mut dyn MetricsSink) {
        crate::metrics::counters_as_untyped(self.name(), &self.counters(), out);
    }

    fn health(&self) -> Health {
        Health::Serving
    }

    /// Whether it ended on its own; before shutdown, that means it failed.
    fn finished(&self) -> bool;

    /// Answers a query-socket request about this role (`syslog 00:15:cf:12:34:56`,
    /// `mta 0015cf123456`, `xdp`; see [`crate::query`]): `words` is the whole request split on
    /// white space. `None`: not a question for this role. The answer is JSON lines, or one
    /// [`crate::query::error_json`] line.
    fn query(&self, words: &[&str]) -> Option<String> {
        let _ = words;
        None
    }

    /// Stops it: the shutdown flag is set and the control plane signalled before this is
    /// called. Waits at most `grace`. [`RoleSet::stop`] logs [`Role::counters`] just before;
    /// a role logs more only if it has more to say.
    fn stop(self: Box<Self>, grace: Duration) -> anyhow::Result<()>;
}

fn log_counters(r: &dyn Role, what: &'static str) {
    let line: Vec<String> = r
        .counters()
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    tracing::info!(role = r.name(), counters = %line.join(" "), "{what}");
}

/// The roles `serve` started, in start order; stopped in reverse.
#[derive(Default)]
pub struct RoleSet {
    roles: Vec<Box<dyn Role>>,
}

impl std::fmt::Debug for RoleSet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list()
            .entries(self.roles.iter().map(|r| r.name()))
            .finish()
    }
}

impl RoleSet {
    /// Adds a started role and logs that it is ready.
    pub fn push(&mut self, role: Box<dyn Role>) {
        tracing::info!(role = role.name(), listening = %role.listening(), "role ready");
        self.roles.push(role);
    }

    pub fn get(&self, name: &str) -> Option<&dyn Role> {
        self.roles.iter().find(|r| r.name() == name).map(|r| &**r)
    }

    pub fn iter(&self) -> impl Iterator<Item = &dyn Role> {
        self.roles.iter().map(|r| &**r)
    }

    /// The first role that ended on its own, if any.
    pub fn finished(&self) -> Option<&'static str> {
        self.roles.iter().find(|r| r.finished()).map(|r| r.name())
    }

    /// Answers a query-socket request with the first role that takes it.
    pub fn answer(&self, line: &str) -> String {
        let words: Vec<&str> = line.split_whitespace().collect();
        self.roles
            .iter()
            .find_map(|r| r.query(&words))
            .unwrap_or_else(|| {
                crate::query::error_json(format!(
                    "no role here answers {:?} (roles: {})",
                    line.trim(),
                    self.roles
                        .iter()
                        .map(|r| r.name())
                        .collect::<Vec<_>>()
                        .join(", ")
                ))
            })
    }

    /// Writes every role's [`Role::metrics`], and `provd_role_serving{role}` (1 while its
    /// health is [`Health::Serving`], 0 degraded).
    pub fn metrics(&self, out: &mut dyn MetricsSink) {
        for r in &self.roles {
            let serving = f64::from(u8::from(r.health() == Health::Serving));
            out.gauge(
                "provd_role_serving",
                "1 while the role is serving, 0 while it is degraded (see its log).",
                &[("role", r.name())],
                serving,
            );
        }
        for r in &self.roles {
            r.metrics(out);
        }
    }

    /// Logs every role's counters, one line each.
    pub fn log_counters(&self) {
        for r in &self.roles {
            log_counters(&**r, "counters");
        }
    }

    /// Stops every role, last started first, each within `grace`, logging its counters as it
    /// goes; returns false if any failed.
    pub fn stop(self, grace: Duration) -> bool {
        let mut ok = true;
        for r in self.roles.into_iter().rev() {
            let name = r.name();
            log_counters(&*r, "final counters");
            if let Err(e) = r.stop(grace) {
                tracing::error!(role = name, error = format!("{e:#}"), "role failed");
                ok = false;
            }
        }
        ok
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};

    struct Fake {
        name: &'static str,
        fail: bool,
        stopped: Arc<Mutex<Vec<&'static str>>>,
    }

    impl Role for Fake {
        fn name(&self) -> &'static str {
            self.name
        }
        fn listening(&self) -> String {
            String::new()
        }
        fn counters(&self) -> Counters {
            vec![("requests".into(), 1)]
        }
        fn finished(&self) -> bool {
            self.fail
        }
        fn query(&self, words: &[&str]) -> Option<String> {
            (words.first() == Some(&self.name)).then(|| format!("{{\"role\":\"{}\"}}", self.name))
        }
        fn stop(self: Box<Self>, _grace: Duration) -> anyhow::Result<()> {
            self.stopped.lock().unwrap().push(self.name);
            if self.fail {
                anyhow::bail!("socket lost")
            }
            Ok(())
        }
    }

    #[test]
    fn roles_stop_in_reverse_and_a_failure_is_reported() {
        let stopped = Arc::new(Mutex::new(Vec::new()));
        let mut set = RoleSet::default();
        for (name, fail) in [("dhcp", false), ("tftp", true), ("acs", false)] {
            set.push(Box::new(Fake {
                name,
                fail,
                stopped: Arc::clone(&stopped),
            }));
        }
        assert_eq!(set.finished(), Some("tftp"));
        assert_eq!(set.get("acs").unwrap().counters()[0].1, 1);
        assert_eq!(set.answer("tftp x"), r#"{"role":"tftp"}"#);
        assert!(
            set.answer("mta 0015cf123456")
                .contains("no role here answers")
        );
        let mut e = crate::metrics::Exposition::new();
        set.metrics(&mut e);
        let text = e.finish();
        assert!(
            text.contains("provd_role_serving{role=\"tftp\"} 1\n"),
            "{text}"
        );
        assert!(text.contains("provd_acs_requests 1\n"), "{text}");
        assert!(e.refused().is_empty());
        assert!(!set.stop(Duration::from_secs(1)));
        assert_eq!(*stopped.lock().unwrap(), ["acs", "tftp", "dhcp"]);
    }
}
