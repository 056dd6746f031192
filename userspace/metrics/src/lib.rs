//! provd-metrics: the text `GET /metrics` answers, in the Prometheus exposition format.
//!
//! One exposition from three sources (see [`provd_role::metrics`] for why two kinds):
//!
//! * every role's [`Role::metrics`](provd_role::Role::metrics), read from the role's own
//!   atomics at scrape time (the DHCP workers' per-shard counters and histograms, pool usage),
//!   plus `provd_role_serving{role}`;
//! * the `metrics` facade's histograms (API requests, TFTP transfers, MTA flows, CWMP
//!   sessions), recorded where those end into the recorder [`install`] sets up;
//! * the store's record counts ([`write_store`]) and the build ([`write_build_info`]).
//!
//! The binary calls [`install`] once at start, before the roles record anything, and
//! [`Metrics::render`] per scrape.

use std::sync::OnceLock;
use std::time::Duration;

use metrics_exporter_prometheus::{
    Matcher, PrometheusBuilder, PrometheusHandle, PrometheusRecorder,
};
use provd_role::RoleSet;
use provd_role::metrics::{Exposition, MetricsSink, names};
use provd_store::Counts;

/// The content type of [`Metrics::render`]'s text, for the response header.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// How often the facade's histograms are folded when nobody scrapes, so memory stays bounded.
const UPKEEP_EVERY: Duration = Duration::from_secs(5);

/// Bucket bounds (seconds) of each facade histogram, fitted to what it measures.
fn facade_buckets(name: &str) -> &'static [f64] {
    match name {
        names::API_REQUEST_DURATION_SECONDS => &[
            0.000_5, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
        ],
        names::TFTP_TRANSFER_DURATION_SECONDS => &[
            0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 10.0, 30.0, 60.0, 300.0,
        ],
        names::MTA_FLOW_DURATION_SECONDS => &[
            0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0,
        ],
        names::CWMP_SESSION_DURATION_SECONDS => &[
            0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0,
        ],
        _ => provd_role::metrics::LATENCY_BUCKETS,
    }
}

/// A Prometheus recorder for the facade with provd's buckets (histograms, not the exporter's
/// default summaries) and help texts. [`install`] makes one global; tests use one locally
/// with [`metrics::with_local_recorder`].
pub fn recorder() -> PrometheusRecorder {
    let mut b = PrometheusBuilder::new();
    for (name, _) in names::FACADE_HISTOGRAMS {
        // Refused only for an empty bucket list, which facade_buckets never returns; then
        // the exporter's defaults (summaries) beat no recorder at all.
        b = match b.set_buckets_for_metric(Matcher::Full((*name).to_string()), facade_buckets(name))
        {
            Ok(with) => with,
            Err(e) => {
                tracing::warn!(metric = name, error = %e, "histogram buckets refused");
                PrometheusBuilder::new()
            }
        };
    }
    let rec = b.build_recorder();
    metrics::with_local_recorder(&rec, describe);
    rec
}

fn describe() {
    for (name, help) in names::FACADE_HISTOGRAMS {
        metrics::describe_histogram!(*name, metrics::Unit::Seconds, *help);
    }
    for (name, help) in names::FACADE_COUNTERS {
        metrics::describe_counter!(*name, *help);
    }
}

/// Renders the facade's metrics; a handle from [`install`] or from [`recorder`].
#[derive(Debug, Clone)]
pub struct Metrics {
    handle: PrometheusHandle,
}

static INSTALLED: OnceLock<Metrics> = OnceLock::new();

/// Installs the facade's Prometheus recorder as the process's global recorder, once; later
/// calls return the same [`Metrics`]. Starts a thread that folds the histograms every few
/// seconds so that memory stays bounded between scrapes. If another global recorder was set
/// first (not by provd), says so in the log: the facade's metrics then go there, and
/// [`Metrics::render`] still renders every role's.
pub fn install() -> Metrics {
    INSTALLED
        .get_or_init(|| {
            let rec = recorder();
            let handle = rec.handle();
            if let Err(e) = metrics::set_global_recorder(rec) {
                tracing::warn!(error = %e, "a metrics recorder was already installed; facade histograms go there");
            }
            let upkeep = handle.clone();
            let spawned = std::thread::Builder::new()
                .name("provd-metrics".into())
                .spawn(move || {
                    loop {
                        std::thread::sleep(UPKEEP_EVERY);
                        upkeep.run_upkeep();
                    }
                });
            if let Err(e) = spawned {
                tracing::warn!(error = %e, "metrics upkeep thread not started; scrapes still fold histograms");
            }
            Metrics { handle }
        })
        .clone()
}

/// [`Metrics::render`] with the recorder [`install`] set up (installing it if nobody did):
/// the whole `/metrics` text.
pub fn render(roles: &RoleSet, extra: &Extra<'_>) -> String {
    install().render(roles, extra)
}

/// What the exposition carries besides the roles and the facade.
#[derive(Debug, Clone, Copy)]
pub struct Extra<'a> {
    /// The store's record counts, when a store is open.
    pub store: Option<&'a Counts>,
    pub build: BuildInfo<'a>,
}

/// The running binary, as `provd_build_info{version,commit} 1`.
#[derive(Debug, Clone, Copy)]
pub struct BuildInfo<'a> {
    pub version: &'a str,
    /// The source revision, when the build knows it.
    pub commit: Option<&'a str>,
}

impl BuildInfo<'static> {
    /// This crate's version (the workspace's), no commit.
    pub fn current() -> Self {
        BuildInfo {
            version: env!("CARGO_PKG_VERSION"),
            commit: None,
        }
    }
}

impl Metrics {
    /// A [`Metrics`] over `handle` (from [`recorder`]), without installing anything: for tests
    /// and for a binary that manages its recorder itself.
    pub fn from_handle(handle: PrometheusHandle) -> Self {
        Metrics { handle }
    }

    /// The exposition for one scrape: every role's families, `provd_role_serving`, the store
    /// and build families, then the facade's histograms (a facade family whose name a role
    /// already wrote is left out rather than written twice).
    pub fn render(&self, roles: &RoleSet, extra: &Extra<'_>) -> String {
        let mut e = Exposition::new();
        write_build_info(&extra.build, &mut e);
        roles.metrics(&mut e);
        if let Some(c) = extra.store {
            write_store(c, &mut e);
        }
        let mut out = e.finish();
        let ours: std::collections::HashSet<&str> = e.families().collect();
        append_facade(&self.handle.render(), &ours, &mut out);
        out
    }
}

/// Appends the exporter's text, skipping the families in `ours`, blank lines and anything after
/// a family's `# HELP`/`# TYPE` until the next one (its samples).
fn append_facade(text: &str, ours: &std::collections::HashSet<&str>, out: &mut String) {
    let mut skip = false;
    for line in text.lines() {
        if line.trim().is_empty() {
            continue;
        }
        if let Some(rest) = line
            .strip_prefix("# HELP ")
            .or_else(|| line.strip_prefix("# TYPE "))
        {
            let name = rest.split_whitespace().next().unwrap_or_default();
            skip = ours.contains(name);
            if skip {
                tracing::warn!(
                    metric = name,
                    "facade metric shadows a role's family; left out"
                );
            }
        }
        if !skip {
            out.push_str(line);
            out.push('\n');
        }
    }
}

/// The store's sizes as `provd_store_records{kind}` gauges.
pub fn write_store(c: &Counts, out: &mut dyn MetricsSink) {
    let Counts {
        devices,
        subscribers,
        classes,
        reservations,
        documents,
        events,
        audit,
        tokens,
    } = *c;
    for (kind, n) in [
        ("devices", devices),
        ("subscribers", subscribers),
        ("classes", classes),
        ("reservations", reservations),
        ("documents", documents),
        ("events", events),
        ("audit", audit),
        ("tokens", tokens),
    ] {
        out.gauge(
            "provd_store_records",
            "Records in the store, by kind.",
            &[("kind", kind)],
            n as f64,
        );
    }
}

/// `provd_build_info{version,commit} 1`.
pub fn write_build_info(b: &BuildInfo<'_>, out: &mut dyn MetricsSink) {
    let help = "The running provd's version and source revision (value 1).";
    match b.commit {
        Some(c) => out.gauge(
            "provd_build_info",
            help,
            &[("version", b.version), ("commit", c)],
            1.0,
        ),
        None => out.gauge("provd_build_info", help, &[("version", b.version)], 1.0),
    }
}

#[cfg(test)]
mod tests;
