//! The dashboard: live rates per role, pool utilisation, the provisioning funnel, NAKs and
//! drops by reason, commit (fsync) latency, and the I/O path each role runs on — all read
//! from `/metrics`, refreshed by the page every 2 s.

use axum::Json;
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use crate::call::{Ctx, Page};
use crate::prom::{self, Sample, Series};

/// A pool's use.
#[derive(Debug, Serialize)]
struct Pool {
    network: String,
    subnet: String,
    pool: String,
    total: f64,
    assigned: f64,
    free: f64,
    /// Percent assigned.
    pct: f64,
    /// `ok`, `warn` (≥ 80 %), `crit` (≥ 95 %).
    level: &'static str,
}

fn pools(all: &[Series]) -> Vec<Pool> {
    let mut out: Vec<Pool> = all
        .iter()
        .filter(|s| s.name == "provd_dhcp_pool_addresses")
        .map(|s| {
            let key = |n: &str| s.label(n).unwrap_or("").to_owned();
            let with = |name: &str| {
                all.iter()
                    .find(|x| {
                        x.name == name
                            && ["network", "subnet", "pool"]
                                .iter()
                                .all(|k| x.label(k) == s.label(k))
                    })
                    .map_or(0.0, |x| x.value)
            };
            let assigned = with("provd_dhcp_pool_assigned_addresses");
            let pct = if s.value > 0.0 {
                100.0 * assigned / s.value
            } else {
                0.0
            };
            Pool {
                network: key("network"),
                subnet: key("subnet"),
                pool: key("pool"),
                total: s.value,
                assigned,
                free: with("provd_dhcp_pool_free_addresses"),
                pct,
                level: match pct {
                    p if p >= 95.0 => "crit",
                    p if p >= 80.0 => "warn",
                    _ => "ok",
                },
            }
        })
        .collect();
    out.sort_by(|a, b| b.pct.total_cmp(&a.pct));
    out
}

/// Cumulative counts at each provisioning step since start, in the order a device goes: each
/// step is the sum of its metrics (with their labels); a step whose metrics the server does not
/// export (its role is not configured) is left out.
fn funnel(all: &[Series]) -> Vec<(&'static str, f64)> {
    const ACKS: &[(&str, &str)] = &[("type", "ack")];
    const OK: &[(&str, &str)] = &[("status", "200")];
    /// A metric and the labels it must have.
    type Metric = (&'static str, &'static [(&'static str, &'static str)]);
    let steps: &[(&str, &[Metric])] = &[
        (
            "DHCP bound (ACKs)",
            &[("provd_dhcp_messages_sent_total", ACKS)],
        ),
        (
            "config files served (TFTP)",
            &[("provd_tftp_transfer_duration_seconds_count", &[])],
        ),
        (
            "time answers",
            &[
                ("provd_time_udp_replies_total", &[]),
                ("provd_time_tcp_replies_total", &[]),
            ],
        ),
        ("syslog lines", &[("provd_syslog_received_total", &[])]),
        (
            "MTA flows finished",
            &[("provd_mta_flow_duration_seconds_count", &[])],
        ),
        (
            "phone profiles served",
            &[("provd_http_responses_total", OK)],
        ),
        (
            "CWMP sessions",
            &[("provd_cwmp_session_duration_seconds_count", &[])],
        ),
    ];
    steps
        .iter()
        .filter(|(_, metrics)| {
            metrics
                .iter()
                .any(|(name, _)| all.iter().any(|s| s.name == *name))
        })
        .map(|(label, metrics)| {
            (
                *label,
                metrics
                    .iter()
                    .map(|(name, with)| prom::sum(all, name, with))
                    .sum(),
            )
        })
        .collect()
}

fn ms(v: Option<f64>) -> Option<f64> {
    v.filter(|x| x.is_finite()).map(|x| x * 1000.0)
}

/// Everything the live part shows.
async fn gather(ctx: &Ctx) -> Result<minijinja::Value, Response> {
    let text = ctx.metrics().await?;
    let all = prom::parse(&text);
    if ctx.ui.samples.due() {
        ctx.ui.samples.push(Sample::of(&all));
    }
    let rates = ctx.ui.samples.rates();
    let fsync = prom::buckets(&all, "provd_dhcp_lease_fsync_seconds");
    let ack = prom::buckets(&all, "provd_dhcp_ack_latency_seconds");
    let io_paths: Vec<Vec<(String, String)>> = all
        .iter()
        .filter(|s| s.name == "provd_dhcp_io_path_info" && s.value > 0.0)
        .map(|s| s.labels.clone())
        .collect();
    let serving: Vec<(String, bool)> = all
        .iter()
        .filter(|s| s.name == "provd_role_serving")
        .map(|s| (s.label("role").unwrap_or("?").to_owned(), s.value > 0.0))
        .collect();
    let by_reason = |name: &str| -> Vec<(String, f64)> {
        prom::sum_by(&all, name, "reason")
            .into_iter()
            .filter(|(_, v)| *v > 0.0)
            .collect()
    };
    let store: Vec<(String, f64)> = prom::sum_by(&all, "provd_store_records", "kind")
        .into_iter()
        .collect();
    Ok(minijinja::context! {
        rates => rates,
        have_rates => !rates.is_empty(),
        pools => pools(&all),
        funnel => funnel(&all),
        naks => by_reason("provd_dhcp_naks_total"),
        drops => by_reason("provd_dhcp_drops_total"),
        fsync_p50_ms => ms(prom::quantile(&fsync, 0.5)),
        fsync_p99_ms => ms(prom::quantile(&fsync, 0.99)),
        fsync_count => fsync.last().map_or(0.0, |b| b.1),
        ack_p50_ms => ms(prom::quantile(&ack, 0.5)),
        ack_p99_ms => ms(prom::quantile(&ack, 0.99)),
        io_paths => io_paths,
        serving => serving,
        store => store,
    })
}

pub(crate) async fn page(ctx: Ctx) -> Page {
    let live = gather(&ctx).await?;
    Ok(ctx.render(
        "dashboard.html",
        minijinja::context! { live => live, nav => "dashboard" },
    ))
}

/// The live part alone (htmx swaps it every 2 s).
pub(crate) async fn live(ctx: Ctx) -> Page {
    let live = gather(&ctx).await?;
    Ok(ctx.render_part("dashboard_live.html", minijinja::context! { live => live }))
}

/// The rate history for the chart: `{t: [...unix s], dhcp: [...], tftp: [...], ...}`.
pub(crate) async fn series(ctx: Ctx) -> Page {
    if ctx.ui.samples.due() {
        let text = ctx.metrics().await?;
        ctx.ui.samples.push(Sample::of(&prom::parse(&text)));
    }
    let h = ctx.ui.samples.history();
    let mut out = serde_json::Map::new();
    out.insert(
        "t".into(),
        h.iter().map(|(t, _)| serde_json::json!(t)).collect(),
    );
    for (k, _, _) in prom::RATES {
        out.insert(
            (*k).into(),
            h.iter()
                .map(|(_, r)| serde_json::json!(r.get(k).copied().unwrap_or(0.0)))
                .collect(),
        );
    }
    Ok(Json(serde_json::Value::Object(out)).into_response())
}
