//! What every role shows Prometheus, and how it shows it.
//!
//! Two kinds of source, on purpose:
//!
//! * **Hot-path state stays where it is.** The DHCP workers keep their counters per shard in
//!   plain atomics only their own thread writes (`provd_engine::Counters`), and their latency
//!   histograms in [`AtomicHistogram`]s, updated once per batch. Nothing on a per-packet path
//!   calls into a registry, takes a lock or hashes a label set. At scrape time each role reads
//!   its atomics and writes labelled samples into a [`MetricsSink`] through
//!   [`Role::metrics`](crate::Role::metrics).
//! * **Everything else goes through the [`facade`]** (the `metrics` crate): per-request and
//!   per-session histograms (API requests, TFTP transfers, MTA flows, CWMP sessions), recorded
//!   where those end, with the names in [`names`]. The binary installs the Prometheus recorder
//!   once (`provd_metrics::install`) and renders both into one exposition text.
//!
//! [`Exposition`] is the sink that writes the Prometheus text format (version 0.0.4): families
//! grouped, one `# HELP` and `# TYPE` each, label values escaped, no family or series twice.

use std::collections::{HashMap, HashSet};
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// The `metrics` crate, re-exported so that a role records a facade histogram with
/// `provd_role::metrics::facade::histogram!(names::TFTP_TRANSFER_DURATION_SECONDS).record(s)`
/// without a dependency of its own.
pub use metrics as facade;

/// Names (and help texts) of the metrics recorded through the [`facade`]. Recording sites use
/// these constants, the recorder describes them, and the dashboard test checks against them, so
/// a name cannot drift between the three.
pub mod names {
    /// API request duration, labels `method`, `route` (the route template, not the path) and
    /// `status` (the HTTP status code).
    pub const API_REQUEST_DURATION_SECONDS: &str = "provd_api_request_duration_seconds";
    /// One TFTP transfer from its request to its last ACK (or its failure), labels `outcome`
    /// (`ok`, `failed`: timed out, the peer's ERROR, too large) and `direction` (`read`,
    /// `write`). A refused request is no transfer.
    pub const TFTP_TRANSFER_DURATION_SECONDS: &str = "provd_tftp_transfer_duration_seconds";
    /// One PacketCable MTA provisioning flow, from its first step (the DHCP binding) to its
    /// end, labels `flow` (`BASIC.1`... `HYBRID.2`, `unknown`) and `outcome` (`pass`, `fail`,
    /// `timeout`). A late status for a flow already ended is no second flow.
    pub const MTA_FLOW_DURATION_SECONDS: &str = "provd_mta_flow_duration_seconds";
    /// One CWMP session, from its first message (the Inform) to its end, label `outcome`
    /// (`ok`: it reached its end; `abandoned`: idle past the session timeout).
    pub const CWMP_SESSION_DURATION_SECONDS: &str = "provd_cwmp_session_duration_seconds";

    /// API requests answered, labels `method`, `route` and `status`.
    pub const API_REQUESTS_TOTAL: &str = "provd_api_requests_total";
    /// API requests refused for a missing or unknown token.
    pub const API_AUTH_FAILURES_TOTAL: &str = "provd_api_auth_failures_total";

    /// Every facade counter and its help text.
    pub const FACADE_COUNTERS: &[(&str, &str)] = &[
        (
            API_REQUESTS_TOTAL,
            "API requests answered, by method, route and status.",
        ),
        (
            API_AUTH_FAILURES_TOTAL,
            "API requests refused for a missing or unknown bearer token.",
        ),
    ];

    /// Every facade histogram and its help text.
    pub const FACADE_HISTOGRAMS: &[(&str, &str)] = &[
        (
            API_REQUEST_DURATION_SECONDS,
            "Time from an API request's arrival to its response, by method, route and status.",
        ),
        (
            TFTP_TRANSFER_DURATION_SECONDS,
            "Time from a TFTP request to the transfer's last acknowledgement or failure.",
        ),
        (
            MTA_FLOW_DURATION_SECONDS,
            "Time from an MTA's first provisioning step to its final status.",
        ),
        (
            CWMP_SESSION_DURATION_SECONDS,
            "Time from a CWMP session's Inform to the session's end.",
        ),
    ];
}

/// Upper bounds, in seconds, of the hot-path latency histograms: 50 µs to 1 s, about 2.5× a
/// step, fine where a local fsync lands (0.1 to 10 ms).
pub const LATENCY_BUCKETS: &[f64] = &[
    0.000_05, 0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5,
    1.0,
];

/// A fixed-bucket histogram of durations in atomics, for a hot path with one writer (a shard's
/// thread) and occasional readers (a scrape): [`AtomicHistogram::observe_n`] is a bucket search
/// over a dozen bounds and three relaxed adds, no lock, no allocation, no registry lookup.
///
/// A reader may see an observation's bucket before its sum, never a count that disagrees with
/// the buckets: the count is the buckets' total.
pub struct AtomicHistogram {
    bounds: Box<[f64]>,
    bounds_ns: Box<[u64]>,
    /// Not cumulative; one more than `bounds`: the last is +Inf.
    buckets: Box<[AtomicU64]>,
    sum_ns: AtomicU64,
}

impl AtomicHistogram {
    /// A histogram with these upper bounds in seconds. Bounds that are not finite and positive
    /// are ignored; the rest are sorted and deduplicated.
    pub fn new(bounds: &[f64]) -> Self {
        let mut b: Vec<f64> = bounds
            .iter()
            .copied()
            .filter(|v| v.is_finite() && *v > 0.0)
            .collect();
        b.sort_by(f64::total_cmp);
        b.dedup();
        let bounds_ns: Box<[u64]> = b.iter().map(|s| (s * 1e9).round() as u64).collect();
        let buckets = (0..=b.len()).map(|_| AtomicU64::new(0)).collect();
        AtomicHistogram {
            bounds: b.into_boxed_slice(),
            bounds_ns,
            buckets,
            sum_ns: AtomicU64::new(0),
        }
    }

    /// A histogram with [`LATENCY_BUCKETS`].
    pub fn latency() -> Self {
        Self::new(LATENCY_BUCKETS)
    }

    /// Records one duration.
    #[inline]
    pub fn observe(&self, d: Duration) {
        self.observe_n(d, 1);
    }

    /// Records `n` observations of the same duration (a batch whose replies all waited the same
    /// time) with one add per field.
    #[inline]
    pub fn observe_n(&self, d: Duration, n: u64) {
        if n == 0 {
            return;
        }
        let ns = u64::try_from(d.as_nanos()).unwrap_or(u64::MAX);
        let i = self.bounds_ns.partition_point(|&b| b < ns);
        // Relaxed: each field is a monotonic tally; readers need no ordering between them.
        if let Some(b) = self.buckets.get(i) {
            b.fetch_add(n, Ordering::Relaxed);
        }
        self.sum_ns
            .fetch_add(ns.saturating_mul(n), Ordering::Relaxed);
    }

    /// The histogram now, cumulative as Prometheus wants it.
    pub fn snapshot(&self) -> HistogramSnapshot {
        let mut running = 0u64;
        let mut cumulative = Vec::with_capacity(self.bounds.len());
        for b in &self.buckets[..self.bounds.len()] {
            running += b.load(Ordering::Relaxed);
            cumulative.push(running);
        }
        let count = running + self.buckets[self.bounds.len()].load(Ordering::Relaxed);
        HistogramSnapshot {
            bounds: self.bounds.to_vec(),
            cumulative,
            count,
            sum: self.sum_ns.load(Ordering::Relaxed) as f64 / 1e9,
        }
    }
}

impl Default for AtomicHistogram {
    fn default() -> Self {
        Self::latency()
    }
}

impl std::fmt::Debug for AtomicHistogram {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let s = self.snapshot();
        f.debug_struct("AtomicHistogram")
            .field("count", &s.count)
            .field("sum", &s.sum)
            .finish_non_exhaustive()
    }
}

/// A histogram read at one moment: cumulative bucket counts (observations ≤ each bound), the
/// total count (the +Inf bucket) and the sum of observed values, in seconds.
#[derive(Debug, Clone, PartialEq)]
pub struct HistogramSnapshot {
    pub bounds: Vec<f64>,
    pub cumulative: Vec<u64>,
    pub count: u64,
    pub sum: f64,
}

impl HistogramSnapshot {
    /// The upper bound of the bucket holding quantile `q` (0..=1), as `histogram_quantile` would
    /// place it before interpolating; `None` with no observations, +Inf past the last bound.
    pub fn quantile_bound(&self, q: f64) -> Option<f64> {
        if self.count == 0 {
            return None;
        }
        let rank = (q.clamp(0.0, 1.0) * self.count as f64).ceil().max(1.0) as u64;
        Some(
            self.bounds
                .iter()
                .zip(&self.cumulative)
                .find(|(_, c)| **c >= rank)
                .map_or(f64::INFINITY, |(b, _)| *b),
        )
    }
}

/// Where roles write their samples at scrape time. Names and label names must be valid
/// Prometheus names (`[a-zA-Z_:][a-zA-Z0-9_:]*`); a sample under an invalid name, or under a
/// family already written with another type, is refused by the sink (and logged), not
/// rendered. Counters' names end in `_total`; units are base units (`_seconds`, `_bytes`).
pub trait MetricsSink {
    /// A monotonic count.
    fn counter(&mut self, name: &str, help: &str, labels: &[(&str, &str)], value: u64);
    /// A level that goes up and down.
    fn gauge(&mut self, name: &str, help: &str, labels: &[(&str, &str)], value: f64);
    /// A value whose kind the emitter does not know (a role's generic counter list).
    fn untyped(&mut self, name: &str, help: &str, labels: &[(&str, &str)], value: f64);
    /// A histogram: writes `name_bucket{le=...}`, `name_sum` and `name_count`.
    fn histogram(&mut self, name: &str, help: &str, labels: &[(&str, &str)], h: &HistogramSnapshot);
}

/// A metric family's type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Counter,
    Gauge,
    Untyped,
    Histogram,
}

impl Kind {
    fn as_str(self) -> &'static str {
        match self {
            Kind::Counter => "counter",
            Kind::Gauge => "gauge",
            Kind::Untyped => "untyped",
            Kind::Histogram => "histogram",
        }
    }
}

#[derive(Debug)]
struct Family {
    name: String,
    help: String,
    kind: Kind,
    body: String,
}

/// A [`MetricsSink`] that writes the Prometheus text exposition format: each family once, its
/// samples together in the order written.
#[derive(Debug, Default)]
pub struct Exposition {
    families: Vec<Family>,
    index: HashMap<String, usize>,
    series: HashSet<String>,
    refused: Vec<String>,
}

/// Whether `s` is a valid metric name (`[a-zA-Z_:][a-zA-Z0-9_:]*`).
pub fn valid_name(s: &str) -> bool {
    let mut c = s.chars();
    c.next()
        .is_some_and(|f| f.is_ascii_alphabetic() || f == '_' || f == ':')
        && c.all(|ch| ch.is_ascii_alphanumeric() || ch == '_' || ch == ':')
}

fn valid_label(s: &str) -> bool {
    valid_name(s) && !s.contains(':') && !s.starts_with("__")
}

/// `s` made a valid name part: every character outside `[a-zA-Z0-9_]` becomes `_`, lower case.
pub fn sanitize(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '_'
            }
        })
        .collect()
}

fn escape_help(s: &str, out: &mut String) {
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
}

fn escape_value(s: &str, out: &mut String) {
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '"' => out.push_str("\\\""),
            c => out.push(c),
        }
    }
}

fn write_labels(labels: &[(&str, &str)], extra: Option<(&str, &str)>, out: &mut String) {
    if labels.is_empty() && extra.is_none() {
        return;
    }
    out.push('{');
    for (i, (k, v)) in labels.iter().copied().chain(extra).enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(k);
        out.push_str("=\"");
        escape_value(v, out);
        out.push('"');
    }
    out.push('}');
}

fn write_value(v: f64, out: &mut String) {
    if v.is_nan() {
        out.push_str("NaN");
    } else if v == f64::INFINITY {
        out.push_str("+Inf");
    } else if v == f64::NEG_INFINITY {
        out.push_str("-Inf");
    } else {
        let _ = write!(out, "{v}");
    }
}

impl Exposition {
    pub fn new() -> Self {
        Self::default()
    }

    /// Names of the families written so far, in order.
    pub fn families(&self) -> impl Iterator<Item = &str> {
        self.families.iter().map(|f| f.name.as_str())
    }

    /// Why samples were refused (invalid names, a type conflict, a series written twice).
    pub fn refused(&self) -> &[String] {
        &self.refused
    }

    /// The family `name` of type `kind` to write `labels` into, or None (and why, recorded)
    /// when the sample is refused.
    fn family(
        &mut self,
        name: &str,
        help: &str,
        kind: Kind,
        labels: &[(&str, &str)],
    ) -> Option<&mut Family> {
        let refuse = |this: &mut Self, why: String| {
            tracing::warn!(metric = name, "metric sample refused: {why}");
            this.refused.push(format!("{name}: {why}"));
            None
        };
        if !valid_name(name) {
            return refuse(self, "invalid metric name".into());
        }
        if let Some((k, _)) = labels.iter().find(|(k, _)| !valid_label(k) || *k == "le") {
            return refuse(self, format!("invalid label name {k:?}"));
        }
        let mut key = String::with_capacity(64);
        key.push_str(name);
        write_labels(labels, None, &mut key);
        if !self.series.insert(key) {
            return refuse(self, "series written twice".into());
        }
        let i = match self.index.get(name) {
            Some(&i) => i,
            None => {
                self.families.push(Family {
                    name: name.to_string(),
                    help: help.to_string(),
                    kind,
                    body: String::new(),
                });
                self.index.insert(name.to_string(), self.families.len() - 1);
                self.families.len() - 1
            }
        };
        let existing = self.families[i].kind;
        if existing != kind {
            return refuse(
                self,
                format!("written as {} and as {}", existing.as_str(), kind.as_str()),
            );
        }
        self.families.get_mut(i)
    }

    fn scalar(&mut self, name: &str, help: &str, kind: Kind, labels: &[(&str, &str)], v: f64) {
        if let Some(f) = self.family(name, help, kind, labels) {
            f.body.push_str(name);
            write_labels(labels, None, &mut f.body);
            f.body.push(' ');
            write_value(v, &mut f.body);
            f.body.push('\n');
        }
    }

    /// The exposition text: every family with its HELP and TYPE lines and its samples.
    pub fn finish(&self) -> String {
        let mut out = String::with_capacity(self.families.iter().map(|f| f.body.len() + 80).sum());
        for f in &self.families {
            out.push_str("# HELP ");
            out.push_str(&f.name);
            out.push(' ');
            escape_help(&f.help, &mut out);
            out.push_str("\n# TYPE ");
            out.push_str(&f.name);
            out.push(' ');
            out.push_str(f.kind.as_str());
            out.push('\n');
            out.push_str(&f.body);
        }
        out
    }
}

impl MetricsSink for Exposition {
    fn counter(&mut self, name: &str, help: &str, labels: &[(&str, &str)], value: u64) {
        self.scalar(name, help, Kind::Counter, labels, value as f64);
    }

    fn gauge(&mut self, name: &str, help: &str, labels: &[(&str, &str)], value: f64) {
        self.scalar(name, help, Kind::Gauge, labels, value);
    }

    fn untyped(&mut self, name: &str, help: &str, labels: &[(&str, &str)], value: f64) {
        self.scalar(name, help, Kind::Untyped, labels, value);
    }

    fn histogram(
        &mut self,
        name: &str,
        help: &str,
        labels: &[(&str, &str)],
        h: &HistogramSnapshot,
    ) {
        let Some(f) = self.family(name, help, Kind::Histogram, labels) else {
            return;
        };
        let mut le = String::new();
        for (bound, c) in h.bounds.iter().zip(&h.cumulative) {
            le.clear();
            write_value(*bound, &mut le);
            f.body.push_str(name);
            f.body.push_str("_bucket");
            write_labels(labels, Some(("le", &le)), &mut f.body);
            let _ = writeln!(f.body, " {c}");
        }
        f.body.push_str(name);
        f.body.push_str("_bucket");
        write_labels(labels, Some(("le", "+Inf")), &mut f.body);
        let _ = writeln!(f.body, " {}", h.count);
        f.body.push_str(name);
        f.body.push_str("_sum");
        write_labels(labels, None, &mut f.body);
        f.body.push(' ');
        write_value(h.sum, &mut f.body);
        f.body.push('\n');
        f.body.push_str(name);
        f.body.push_str("_count");
        write_labels(labels, None, &mut f.body);
        let _ = writeln!(f.body, " {}", h.count);
    }
}

/// What [`Role::metrics`](crate::Role::metrics) does unless a role says more: each of the
/// role's [`Counters`](crate::Counters) as `provd_<role>_<name>`, untyped, because the list
/// mixes counts (requests) with levels (open sessions) and does not say which is which. A role
/// that knows overrides `metrics` with typed families.
pub fn counters_as_untyped(role: &str, counters: &crate::Counters, out: &mut dyn MetricsSink) {
    let role = sanitize(role);
    for (k, v) in counters {
        let name = format!("provd_{role}_{}", sanitize(k));
        let help = format!("The {role} role's counter {k:?} (a count or a level).");
        out.untyped(&name, &help, &[], *v as f64);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(v: u64) -> Duration {
        Duration::from_millis(v)
    }

    #[test]
    fn histogram_buckets_are_cumulative_and_inclusive_of_the_bound() {
        let h = AtomicHistogram::new(&[0.001, 0.01, 0.1]);
        h.observe(Duration::from_micros(1000)); // exactly on a bound: in it (le is ≤)
        h.observe(ms(5));
        h.observe_n(ms(50), 3);
        h.observe(ms(2000)); // past the last bound: +Inf only
        h.observe_n(ms(1), 0); // nothing
        let s = h.snapshot();
        assert_eq!(s.bounds, [0.001, 0.01, 0.1]);
        assert_eq!(s.cumulative, [1, 2, 5]);
        assert_eq!(s.count, 6);
        assert!(
            (s.sum - (0.001 + 0.005 + 0.15 + 2.0)).abs() < 1e-9,
            "{}",
            s.sum
        );
        assert_eq!(s.quantile_bound(0.5), Some(0.1));
        assert_eq!(s.quantile_bound(0.1), Some(0.001));
        assert_eq!(s.quantile_bound(1.0), Some(f64::INFINITY));
        assert_eq!(
            AtomicHistogram::latency().snapshot().quantile_bound(0.5),
            None
        );
    }

    #[test]
    fn histogram_bounds_are_cleaned_and_huge_durations_saturate() {
        let h = AtomicHistogram::new(&[0.1, f64::NAN, -1.0, 0.01, 0.1, f64::INFINITY]);
        assert_eq!(h.snapshot().bounds, [0.01, 0.1]);
        h.observe_n(Duration::MAX, 2);
        let s = h.snapshot();
        assert_eq!((s.cumulative.as_slice(), s.count), (&[0, 0][..], 2));
    }

    #[test]
    fn histogram_counts_every_observation_of_concurrent_writers() {
        let h = std::sync::Arc::new(AtomicHistogram::latency());
        let threads: Vec<_> = (0..4)
            .map(|t| {
                let h = std::sync::Arc::clone(&h);
                std::thread::spawn(move || {
                    for i in 0..10_000u64 {
                        h.observe(Duration::from_micros(i % 7 * 100 + t));
                    }
                })
            })
            .collect();
        threads.into_iter().for_each(|t| t.join().unwrap());
        let s = h.snapshot();
        assert_eq!(s.count, 40_000);
        assert!(s.cumulative.windows(2).all(|w| w[0] <= w[1]));
    }

    #[test]
    fn exposition_groups_families_escapes_and_refuses_what_prometheus_would() {
        let mut e = Exposition::new();
        e.counter("provd_x_total", "X.", &[("shard", "0")], 1);
        e.gauge(
            "provd_y",
            "Y \\ with\nnewline.",
            &[("v", "a\"b\\c\nd")],
            0.5,
        );
        e.counter("provd_x_total", "X.", &[("shard", "1")], 2);
        // Refused: a series twice, a type conflict, bad names, a reserved label.
        e.counter("provd_x_total", "X.", &[("shard", "1")], 3);
        e.gauge("provd_x_total", "X.", &[("shard", "2")], 3.0);
        e.gauge("provd-bad", "", &[], 1.0);
        e.gauge("provd_z", "", &[("bad-label", "1")], 1.0);
        e.gauge("provd_z", "", &[("le", "1")], 1.0);
        let h = AtomicHistogram::new(&[0.5]);
        h.observe(ms(100));
        e.histogram("provd_h_seconds", "H.", &[("shard", "0")], &h.snapshot());
        assert_eq!(e.refused().len(), 5, "{:?}", e.refused());
        assert_eq!(
            e.finish(),
            "# HELP provd_x_total X.\n# TYPE provd_x_total counter\n\
             provd_x_total{shard=\"0\"} 1\nprovd_x_total{shard=\"1\"} 2\n\
             # HELP provd_y Y \\\\ with\\nnewline.\n# TYPE provd_y gauge\n\
             provd_y{v=\"a\\\"b\\\\c\\nd\"} 0.5\n\
             # HELP provd_h_seconds H.\n# TYPE provd_h_seconds histogram\n\
             provd_h_seconds_bucket{shard=\"0\",le=\"0.5\"} 1\n\
             provd_h_seconds_bucket{shard=\"0\",le=\"+Inf\"} 1\n\
             provd_h_seconds_sum{shard=\"0\"} 0.1\nprovd_h_seconds_count{shard=\"0\"} 1\n"
        );
    }

    #[test]
    fn default_role_metrics_name_each_counter_untyped() {
        let mut e = Exposition::new();
        let c: crate::Counters = vec![("open_sessions".into(), 3), ("web.requests-ok".into(), 7)];
        counters_as_untyped("acs", &c, &mut e);
        let text = e.finish();
        assert!(
            text.contains("# TYPE provd_acs_open_sessions untyped\nprovd_acs_open_sessions 3\n")
        );
        assert!(text.contains("provd_acs_web_requests_ok 7\n"), "{text}");
        assert!(e.refused().is_empty());
    }
}
