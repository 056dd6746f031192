//! The dashboard's numbers: `/metrics` (the Prometheus text provd already serves) read into
//! series, and a short history of samples to turn counters into rates.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// One line of the exposition: name, labels, value.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Series {
    pub(crate) name: String,
    pub(crate) labels: Vec<(String, String)>,
    pub(crate) value: f64,
}

impl Series {
    pub(crate) fn label(&self, k: &str) -> Option<&str> {
        self.labels
            .iter()
            .find_map(|(n, v)| (n == k).then_some(v.as_str()))
    }
}

/// Reads the text format's sample lines (comments and malformed lines are skipped: the page
/// shows what it can read).
pub(crate) fn parse(text: &str) -> Vec<Series> {
    text.lines().filter_map(parse_line).collect()
}

fn parse_line(line: &str) -> Option<Series> {
    let line = line.trim();
    if line.is_empty() || line.starts_with('#') {
        return None;
    }
    let (name, rest) = match line.find('{') {
        Some(i) => (&line[..i], &line[i..]),
        None => {
            let (n, r) = line.split_once(' ')?;
            (n, r)
        }
    };
    let (labels, value) = if let Some(body) = rest.strip_prefix('{') {
        let mut labels = Vec::new();
        let mut s = body;
        loop {
            s = s.trim_start_matches([',', ' ']);
            if let Some(after) = s.strip_prefix('}') {
                break (labels, after);
            }
            let (k, r) = s.split_once("=\"")?;
            // The value runs to the next quote not escaped by a backslash.
            let mut v = String::new();
            let mut chars = r.char_indices();
            let end = loop {
                let (i, c) = chars.next()?;
                match c {
                    '\\' => match chars.next()?.1 {
                        'n' => v.push('\n'),
                        other => v.push(other),
                    },
                    '"' => break i,
                    c => v.push(c),
                }
            };
            labels.push((k.trim().to_owned(), v));
            s = &r[end + 1..];
        }
    } else {
        (Vec::new(), rest)
    };
    let value = value.split_whitespace().next()?;
    let value = match value {
        "+Inf" => f64::INFINITY,
        "-Inf" => f64::NEG_INFINITY,
        v => v.parse().ok()?,
    };
    Some(Series {
        name: name.trim().to_owned(),
        labels,
        value,
    })
}

/// The sum of every series of `name` whose labels include all of `with`.
pub(crate) fn sum(all: &[Series], name: &str, with: &[(&str, &str)]) -> f64 {
    all.iter()
        .filter(|s| s.name == name && with.iter().all(|(k, v)| s.label(k) == Some(v)))
        .map(|s| s.value)
        .sum()
}

/// `name` summed by the value of label `by`.
pub(crate) fn sum_by(all: &[Series], name: &str, by: &str) -> BTreeMap<String, f64> {
    let mut out = BTreeMap::new();
    for s in all.iter().filter(|s| s.name == name) {
        *out.entry(s.label(by).unwrap_or("").to_owned())
            .or_insert(0.0) += s.value;
    }
    out
}

/// A histogram's buckets (`<name>_bucket`, summed over other labels) as (le, cumulative count).
pub(crate) fn buckets(all: &[Series], name: &str) -> Vec<(f64, f64)> {
    let b = format!("{name}_bucket");
    let mut by_le: BTreeMap<u64, (f64, f64)> = BTreeMap::new();
    for s in all.iter().filter(|s| s.name == b) {
        let Some(le) = s.label("le").and_then(|l| match l {
            "+Inf" => Some(f64::INFINITY),
            l => l.parse::<f64>().ok(),
        }) else {
            continue;
        };
        let e = by_le.entry(le.to_bits()).or_insert((le, 0.0));
        e.1 += s.value;
    }
    let mut v: Vec<(f64, f64)> = by_le.into_values().collect();
    v.sort_by(|a, b| a.0.total_cmp(&b.0));
    v
}

/// The `q` quantile of cumulative buckets, as the upper bound of the bucket it falls in
/// (`None` with no observations).
pub(crate) fn quantile(b: &[(f64, f64)], q: f64) -> Option<f64> {
    let total = b.last()?.1;
    if total <= 0.0 {
        return None;
    }
    let want = q * total;
    b.iter().find(|(_, c)| *c >= want).map(|(le, _)| *le)
}

/// A counter the dashboard reads: (key or label, metric name, labels it must have).
pub(crate) type Counter = (
    &'static str,
    &'static str,
    &'static [(&'static str, &'static str)],
);

/// The counters the dashboard turns into rates, by key.
pub(crate) const RATES: &[Counter] = &[
    ("dhcp", "provd_dhcp_messages_sent_total", &[("type", "ack")]),
    ("tftp", "provd_tftp_transfer_duration_seconds_count", &[]),
    ("mta", "provd_mta_flow_duration_seconds_count", &[]),
    ("cwmp", "provd_cwmp_session_duration_seconds_count", &[]),
    ("naks", "provd_dhcp_naks_total", &[]),
    ("drops", "provd_dhcp_drops_total", &[]),
];

/// One reading of the rate counters.
#[derive(Debug, Clone)]
pub(crate) struct Sample {
    pub(crate) at: Instant,
    pub(crate) unix_ms: i64,
    pub(crate) values: BTreeMap<&'static str, f64>,
}

impl Sample {
    pub(crate) fn of(all: &[Series]) -> Sample {
        Sample {
            at: Instant::now(),
            unix_ms: crate::time::now_ms(),
            values: RATES
                .iter()
                .map(|(k, name, with)| (*k, sum(all, name, with)))
                .collect(),
        }
    }
}

/// Samples kept (about 10 minutes at one per 2 s page refresh).
const KEEP: usize = 300;
/// A new sample is taken when the newest is older than this.
pub(crate) const EVERY: Duration = Duration::from_millis(900);

/// The history of samples, shared by every dashboard.
#[derive(Debug, Default)]
pub(crate) struct Sampler {
    samples: Mutex<VecDeque<Sample>>,
}

impl Sampler {
    /// Whether the newest sample is older than [`EVERY`] (or there is none).
    pub(crate) fn due(&self) -> bool {
        self.samples
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .back()
            .is_none_or(|s| s.at.elapsed() >= EVERY)
    }

    pub(crate) fn push(&self, s: Sample) {
        let mut q = self.samples.lock().unwrap_or_else(|e| e.into_inner());
        // A counter that went down means provd restarted under us: the history is void.
        if let Some(last) = q.back()
            && s.values
                .iter()
                .any(|(k, v)| last.values.get(k).is_some_and(|p| v < p))
        {
            q.clear();
        }
        q.push_back(s);
        while q.len() > KEEP {
            q.pop_front();
        }
    }

    /// Per-second rates between the newest sample and the newest one at least a second older.
    pub(crate) fn rates(&self) -> BTreeMap<&'static str, f64> {
        let q = self.samples.lock().unwrap_or_else(|e| e.into_inner());
        let Some(last) = q.back() else {
            return BTreeMap::new();
        };
        let Some(prev) = q
            .iter()
            .rev()
            .find(|s| last.at.duration_since(s.at) >= Duration::from_secs(1))
        else {
            return BTreeMap::new();
        };
        rate_between(prev, last)
    }

    /// Every consecutive pair's rates, oldest first: (unix seconds, rates).
    pub(crate) fn history(&self) -> Vec<(f64, BTreeMap<&'static str, f64>)> {
        let q = self.samples.lock().unwrap_or_else(|e| e.into_inner());
        q.iter()
            .zip(q.iter().skip(1))
            .map(|(a, b)| {
                #[allow(clippy::cast_precision_loss)] // ms since 1970 fit f64's 53 bits
                let t = b.unix_ms as f64 / 1000.0;
                (t, rate_between(a, b))
            })
            .collect()
    }
}

fn rate_between(a: &Sample, b: &Sample) -> BTreeMap<&'static str, f64> {
    let dt = b.at.duration_since(a.at).as_secs_f64();
    b.values
        .iter()
        .map(|(k, v)| {
            let before = a.values.get(k).copied().unwrap_or(0.0);
            (
                *k,
                if dt > 0.0 {
                    (v - before).max(0.0) / dt
                } else {
                    0.0
                },
            )
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = r#"# HELP provd_dhcp_messages_sent_total Messages sent.
# TYPE provd_dhcp_messages_sent_total counter
provd_dhcp_messages_sent_total{shard="0",type="ack"} 10
provd_dhcp_messages_sent_total{shard="1",type="ack"} 5
provd_dhcp_messages_sent_total{shard="0",type="offer"} 20
provd_dhcp_pool_free_addresses{network="cmts 1",subnet="198.18.2.0/24",pool="a \"q\""} 7
provd_dhcp_lease_fsync_seconds_bucket{shard="0",le="0.001"} 3
provd_dhcp_lease_fsync_seconds_bucket{shard="1",le="0.001"} 1
provd_dhcp_lease_fsync_seconds_bucket{shard="0",le="+Inf"} 4
provd_dhcp_lease_fsync_seconds_bucket{shard="1",le="+Inf"} 4
provd_build_info 1
garbage{ 3
"#;

    #[test]
    fn the_exposition_is_read_summed_and_bucketed() {
        let s = parse(TEXT);
        assert_eq!(s.len(), 9, "{s:?}");
        assert_eq!(
            sum(&s, "provd_dhcp_messages_sent_total", &[("type", "ack")]),
            15.0
        );
        assert_eq!(sum(&s, "provd_dhcp_messages_sent_total", &[]), 35.0);
        let pool = s
            .iter()
            .find(|x| x.name == "provd_dhcp_pool_free_addresses")
            .unwrap();
        assert_eq!(pool.label("pool"), Some("a \"q\""));
        assert_eq!(pool.label("network"), Some("cmts 1"));
        let b = buckets(&s, "provd_dhcp_lease_fsync_seconds");
        assert_eq!(b, vec![(0.001, 4.0), (f64::INFINITY, 8.0)]);
        assert_eq!(quantile(&b, 0.5), Some(0.001));
        assert_eq!(quantile(&b, 0.99), Some(f64::INFINITY));
        assert_eq!(quantile(&[], 0.5), None);
    }

    #[test]
    fn rates_come_from_samples_a_second_apart_and_reset_on_restart() {
        let sampler = Sampler::default();
        let t0 = Instant::now();
        let mk = |dt: u64, acks: f64| Sample {
            at: t0 + Duration::from_millis(dt),
            unix_ms: 0,
            values: [("dhcp", acks)].into_iter().collect(),
        };
        sampler.push(mk(0, 100.0));
        sampler.push(mk(500, 150.0));
        assert!(sampler.rates().is_empty(), "half a second is not a rate");
        sampler.push(mk(2000, 300.0));
        assert_eq!(sampler.rates()["dhcp"], 150.0 / 1.5);
        assert_eq!(sampler.history().len(), 2);
        sampler.push(mk(3000, 5.0));
        assert!(sampler.rates().is_empty(), "a restart left the old history");
    }
}
