//! The whole exposition from a RoleSet holding real DHCP samples (a real engine shard fed real
//! messages, its ACKs through the real commit pipeline on a real lease log), a role on the
//! default path, the store and build families, and one observation of every facade histogram:
//! checked by Prometheus's own `promtool`, for uniqueness, and against the Grafana dashboard.

use std::collections::{BTreeSet, HashSet};
use std::io::Write as _;
use std::net::{Ipv4Addr, SocketAddrV4};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use provd_config::Policy;
use provd_dataplane::CommitStats;
use provd_dhcp::{Header, Message, MessageType, MessageWriter, code};
use provd_engine::{Counters, Ingress, Outcome, Shard, Shared};
use provd_lease::LeaseTable;
use provd_role::metrics::MetricsSink;
use provd_role::{Role, RoleSet};

use super::*;

const SERVER: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 1);
const RELAY: Ipv4Addr = Ipv4Addr::new(198, 18, 1, 1);
const NOW: u32 = 1_800_000_000;

/// The DHCP role's metrics over a shard driven here, without its sockets and threads.
struct DhcpSamples {
    shared: Arc<Shared>,
    shards: Vec<(Arc<Counters>, Arc<CommitStats>)>,
}

impl Role for DhcpSamples {
    fn name(&self) -> &'static str {
        "dhcp"
    }
    fn listening(&self) -> String {
        String::new()
    }
    fn counters(&self) -> provd_role::Counters {
        Vec::new()
    }
    fn metrics(&self, out: &mut dyn MetricsSink) {
        provd_dataplane::metrics::write(&self.shared, &self.shards, out);
    }
    fn finished(&self) -> bool {
        false
    }
    fn stop(self: Box<Self>, _: Duration) -> anyhow::Result<()> {
        Ok(())
    }
}

/// A role on the default path: its counters as untyped samples.
struct Plain(&'static str, provd_role::Counters);

impl Role for Plain {
    fn name(&self) -> &'static str {
        self.0
    }
    fn listening(&self) -> String {
        String::new()
    }
    fn counters(&self) -> provd_role::Counters {
        self.1.clone()
    }
    fn health(&self) -> provd_role::Health {
        provd_role::Health::Degraded("disk".into())
    }
    fn finished(&self) -> bool {
        false
    }
    fn stop(self: Box<Self>, _: Duration) -> anyhow::Result<()> {
        Ok(())
    }
}

fn message(kind: MessageType, n: u8, requested: Option<Ipv4Addr>) -> Vec<u8> {
    let mut chaddr = [0u8; 16];
    chaddr[..6].copy_from_slice(&[0, 0x15, 0xcf, 0, 0, n]);
    let mut h = Header::reply(0x1234, chaddr, 1, 6);
    h.op = 1;
    h.giaddr = RELAY;
    let mut buf = Vec::new();
    let mut w = MessageWriter::new(&mut buf, &h, 1500).unwrap();
    w.option(code::MESSAGE_TYPE, &[kind as u8]).unwrap();
    if let Some(a) = requested {
        w.ipv4(code::REQUESTED_IP, a).unwrap();
        w.ipv4(code::SERVER_ID, SERVER).unwrap();
    }
    w.option(code::VENDOR_CLASS, b"docsis3.1").unwrap();
    w.finish().unwrap();
    buf
}

/// Two shards; shard 0 serves two clients through DORA and NAKs a third.
fn dhcp_role() -> DhcpSamples {
    let policy = Policy::from_toml_str(
        r#"
[server]
server_id = "198.18.0.1"
lease_dir = "/nonexistent"

[[class]]
name = "cm"
match = "docsis*"

[[shared_network]]
name = "cmts \"east\"\\1"
relays = ["198.18.1.1"]
  [[shared_network.subnet]]
  prefix = "198.19.0.0/24"
  routers = ["198.19.0.1"]
    [[shared_network.subnet.pool]]
    start = "198.19.0.10"
    end = "198.19.0.109"
  [[shared_network.subnet]]
  prefix = "198.19.1.0/24"
  routers = ["198.19.1.1"]
    [[shared_network.subnet.pool]]
    start = "198.19.1.10"
    end = "198.19.1.19"
"#,
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let shared = Shared::new(policy).unwrap();
    let mut shard = Shard::new(Arc::clone(&shared), LeaseTable::new(), 0, 2);
    let timings = Arc::new(CommitStats::default());
    let mut send = |payload: &[u8]| {
        let ingress = Ingress {
            payload,
            src: SocketAddrV4::new(RELAY, 67),
            local: SERVER,
            ifindex: 1,
        };
        let mut out = Vec::new();
        let o = shard.handle(NOW, &ingress, &mut out);
        (o, out)
    };
    for n in 1..=2 {
        let (o, out) = send(&message(MessageType::Discover, n, None));
        assert!(matches!(o, Outcome::Reply(_)), "{o:?}");
        let offered = Message::parse(&out).unwrap().yiaddr();
        let (o, _) = send(&message(MessageType::Request, n, Some(offered)));
        assert!(matches!(o, Outcome::Reply(_)), "{o:?}");
        timings
            .ack_latency
            .observe(Duration::from_micros(800 * u64::from(n)));
        timings.fsync.observe(Duration::from_micros(600));
    }
    let (o, _) = send(&message(MessageType::Request, 3, Some(SERVER)));
    assert!(matches!(o, Outcome::Reply(_)), "a NAK: {o:?}");
    let other = Shard::new(Arc::clone(&shared), LeaseTable::new(), 1, 2);
    DhcpSamples {
        shared,
        shards: vec![
            (shard.counters(), timings),
            (other.counters(), Arc::default()),
        ],
    }
}

/// The exposition of a RoleSet with the DHCP samples and a plain role, a store, a build, and
/// one observation of every facade histogram.
fn rendered() -> String {
    let mut roles = RoleSet::default();
    roles.push(Box::new(dhcp_role()));
    roles.push(Box::new(Plain(
        "tftp",
        vec![("transfers".into(), 3), ("errors_sent_1".into(), 1)],
    )));
    let rec = recorder();
    let m = Metrics::from_handle(rec.handle());
    metrics::with_local_recorder(&rec, || {
        for (name, _) in names::FACADE_HISTOGRAMS {
            metrics::histogram!(*name, "outcome" => "ok").record(0.003);
        }
        for (name, _) in names::FACADE_COUNTERS {
            metrics::counter!(*name, "status" => "401").increment(2);
        }
        metrics::histogram!(
            names::API_REQUEST_DURATION_SECONDS,
            "method" => "GET", "route" => "/api/v1/devices/{mac}", "status" => "200"
        )
        .record(0.0012);
    });
    let counts = Counts {
        devices: 1_000_000,
        subscribers: 20,
        ..Counts::default()
    };
    m.render(
        &roles,
        &Extra {
            store: Some(&counts),
            build: BuildInfo {
                version: "0.1.0",
                commit: Some("385893e"),
            },
        },
    )
}

/// Every family the text declares, with its `_bucket`/`_sum`/`_count` series for histograms.
fn series_names(text: &str) -> HashSet<String> {
    let mut names = HashSet::new();
    for line in text.lines() {
        let Some(rest) = line.strip_prefix("# TYPE ") else {
            continue;
        };
        let mut w = rest.split_whitespace();
        let (Some(name), Some(kind)) = (w.next(), w.next()) else {
            continue;
        };
        names.insert(name.to_string());
        if kind == "histogram" || kind == "summary" {
            for s in ["_bucket", "_sum", "_count"] {
                names.insert(format!("{name}{s}"));
            }
        }
    }
    names
}

#[test]
fn promtool_accepts_the_exposition() {
    let text = rendered();
    let mut child = match Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
    {
        Ok(c) => c,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            eprintln!(
                "\n!!!!!!!!!! SKIPPED: promtool is not installed (Debian package `prometheus`; \
                 xtask/scripts/install-deps.sh installs it). The exposition was NOT checked. \
                 !!!!!!!!!!\n"
            );
            return;
        }
        Err(e) => panic!("promtool: {e}"),
    };
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success() && said.trim().is_empty(),
        "promtool check metrics: {:?}\n{said}\n--- exposition ---\n{text}",
        out.status
    );
}

#[test]
fn every_family_once_with_help_and_type_and_the_expected_ones_present() {
    let text = rendered();
    let mut typed = Vec::new();
    let mut helped = Vec::new();
    for line in text.lines() {
        if let Some(r) = line.strip_prefix("# TYPE ") {
            typed.push(r.split_whitespace().next().unwrap().to_string());
        } else if let Some(r) = line.strip_prefix("# HELP ") {
            helped.push(r.split_whitespace().next().unwrap().to_string());
        }
    }
    let unique: BTreeSet<&String> = typed.iter().collect();
    assert_eq!(unique.len(), typed.len(), "a family twice: {typed:?}");
    assert_eq!(
        typed.iter().collect::<BTreeSet<_>>(),
        helped.iter().collect::<BTreeSet<_>>(),
        "every family has HELP and TYPE"
    );
    for want in [
        "provd_build_info",
        "provd_role_serving",
        "provd_dhcp_messages_received_total",
        "provd_dhcp_naks_total",
        "provd_dhcp_ack_latency_seconds",
        "provd_dhcp_pool_free_addresses",
        "provd_tftp_transfers",
        "provd_store_records",
        names::API_REQUEST_DURATION_SECONDS,
        names::TFTP_TRANSFER_DURATION_SECONDS,
        names::MTA_FLOW_DURATION_SECONDS,
        names::CWMP_SESSION_DURATION_SECONDS,
    ] {
        assert!(unique.contains(&want.to_string()), "no {want} in\n{text}");
    }
    for line in [
        r#"provd_build_info{version="0.1.0",commit="385893e"} 1"#,
        r#"provd_role_serving{role="tftp"} 0"#,
        r#"provd_store_records{kind="devices"} 1000000"#,
        r#"provd_dhcp_naks_total{shard="0",reason="not_offered"} 1"#,
        r#"provd_dhcp_pool_assigned_addresses{network="cmts \"east\"\\1",subnet="198.19.0.0/24",pool="198.19.0.10-198.19.0.109"} 2"#,
        r#"provd_dhcp_ack_latency_seconds_bucket{shard="0",le="0.001"} 1"#,
        r#"provd_dhcp_ack_latency_seconds_count{shard="1"} 0"#,
    ] {
        assert!(text.lines().any(|l| l == line), "no line {line} in\n{text}");
    }
    // The facade's histograms are histograms (buckets), not the exporter's default summaries.
    assert!(
        text.contains(&format!(
            "# TYPE {} histogram",
            names::API_REQUEST_DURATION_SECONDS
        )),
        "{text}"
    );
}

#[test]
fn a_facade_family_a_role_already_wrote_is_left_out() {
    let facade = "# HELP provd_x_seconds X.\n# TYPE provd_x_seconds histogram\n\
                  provd_x_seconds_bucket{le=\"+Inf\"} 1\nprovd_x_seconds_sum 1\n\
                  provd_x_seconds_count 1\n\n# TYPE provd_y_seconds histogram\n\
                  provd_y_seconds_count 2\n";
    let ours: HashSet<&str> = ["provd_x_seconds"].into();
    let mut out = String::new();
    append_facade(facade, &ours, &mut out);
    assert_eq!(
        out,
        "# TYPE provd_y_seconds histogram\nprovd_y_seconds_count 2\n"
    );
}

#[test]
fn install_is_idempotent() {
    let a = install();
    let b = install();
    metrics::histogram!(names::CWMP_SESSION_DURATION_SECONDS, "outcome" => "ok").record(1.5);
    let text = b.render(
        &RoleSet::default(),
        &Extra {
            store: None,
            build: BuildInfo::current(),
        },
    );
    assert!(
        text.contains("provd_cwmp_session_duration_seconds_bucket{outcome=\"ok\",le=\"2.5\"} 1"),
        "{text}"
    );
    assert_eq!(
        a.render(
            &RoleSet::default(),
            &Extra {
                store: None,
                build: BuildInfo::current()
            }
        ),
        text
    );
    let extra = Extra {
        store: None,
        build: BuildInfo::current(),
    };
    assert_eq!(render(&RoleSet::default(), &extra), text);
}

/// Every metric an expression of the shipped dashboard names is one the exposition has: the
/// dashboard cannot drift from the code's names.
#[test]
fn the_grafana_dashboard_queries_only_rendered_families() {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../provd/dist/grafana/provd.json"
    );
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    for field in ["title", "uid", "panels", "schemaVersion"] {
        assert!(json.get(field).is_some(), "dashboard has no {field}");
    }
    let known = series_names(&rendered());
    let mut exprs = Vec::new();
    collect_exprs(&json, &mut exprs);
    assert!(exprs.len() >= 10, "only {} expressions", exprs.len());
    let mut unknown = Vec::new();
    for expr in &exprs {
        let named = metric_names(expr);
        assert!(!named.is_empty(), "{expr:?} names no provd metric");
        unknown.extend(named.into_iter().filter(|n| !known.contains(n)));
    }
    assert!(
        unknown.is_empty(),
        "the dashboard queries metrics the exposition does not have: {unknown:?}"
    );
}

/// Every expression of the dashboard is valid PromQL: each (Grafana's variables replaced as
/// Grafana would) becomes a recording rule that `promtool check rules` parses.
#[test]
fn promtool_parses_every_dashboard_expression() {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../provd/dist/grafana/provd.json"
    );
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let mut exprs = Vec::new();
    collect_exprs(&json, &mut exprs);
    let mut rules = String::from("groups:\n  - name: dashboard\n    rules:\n");
    for (i, e) in exprs
        .iter()
        .filter(|e| !e.starts_with("label_values("))
        .enumerate()
    {
        let e = e
            .replace("$__rate_interval", "5m")
            .replace("$instance", ".*");
        rules.push_str(&format!(
            "      - record: dashboard:expr{i}\n        expr: {}\n",
            serde_json::Value::String(e)
        ));
    }
    let file = std::env::temp_dir().join(format!("provd-dashboard-{}.yml", std::process::id()));
    std::fs::write(&file, &rules).unwrap();
    let out = Command::new("promtool")
        .args(["check", "rules"])
        .arg(&file)
        .output();
    let _ = std::fs::remove_file(&file);
    let out = match out {
        Ok(o) => o,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            eprintln!(
                "\n!!!!!!!!!! SKIPPED: promtool is not installed (Debian package `prometheus`); \
                 the dashboard's PromQL was NOT checked. !!!!!!!!!!\n"
            );
            return;
        }
        Err(e) => panic!("promtool: {e}"),
    };
    assert!(
        out.status.success(),
        "promtool check rules: {}{}\n{rules}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

fn collect_exprs(v: &serde_json::Value, out: &mut Vec<String>) {
    match v {
        serde_json::Value::Object(m) => {
            for (k, v) in m {
                match (k.as_str(), v) {
                    // Panel targets' `expr`, template variables' `definition`.
                    ("expr" | "definition", serde_json::Value::String(s)) => out.push(s.clone()),
                    _ => collect_exprs(v, out),
                }
            }
        }
        serde_json::Value::Array(a) => a.iter().for_each(|v| collect_exprs(v, out)),
        _ => {}
    }
}

/// The `provd_…` identifiers of a PromQL expression (label values in quotes skipped).
fn metric_names(expr: &str) -> Vec<String> {
    let mut names = Vec::new();
    let mut in_quote = false;
    let mut word = String::new();
    for c in expr.chars().chain(std::iter::once(' ')) {
        if c == '"' {
            in_quote = !in_quote;
        }
        if !in_quote && (c.is_ascii_alphanumeric() || c == '_' || c == ':') {
            word.push(c);
            continue;
        }
        if word.starts_with("provd_") {
            names.push(std::mem::take(&mut word));
        }
        word.clear();
    }
    names
}

#[test]
fn metric_names_reads_promql() {
    assert_eq!(
        metric_names(
            r#"histogram_quantile(0.99, sum by (le) (rate(provd_dhcp_ack_latency_seconds_bucket{reason="provd_not_a_metric"}[5m]))) / provd_x"#
        ),
        ["provd_dhcp_ack_latency_seconds_bucket", "provd_x"]
    );
}
