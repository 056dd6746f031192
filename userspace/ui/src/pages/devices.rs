//! The device list: filters (type, class of service, subscriber, MAC prefix, serial, relay,
//! online/offline) and server-side pages by cursor (the store never loads all devices).

use axum::extract::Query;

use super::{Fields, field};
use crate::call::{Ctx, Page, with_query};

/// The filters the page passes to `GET /api/v1/devices`, by their query names.
pub(crate) const FILTERS: &[&str] = &[
    "type",
    "class",
    "subscriber",
    "mac_prefix",
    "serial",
    "device_id",
    "relay",
    "state",
];

pub(crate) async fn list(ctx: Ctx, Query(q): Query<Fields>) -> Page {
    let mut params: Vec<(&str, &str)> = FILTERS.iter().map(|k| (*k, field(&q, k))).collect();
    params.push(("after", field(&q, "after")));
    let limit = match field(&q, "limit") {
        "" => "50",
        l => l,
    };
    params.push(("limit", limit));
    let t0 = std::time::Instant::now();
    let v = ctx.get(&with_query("/devices", &params)).await?;
    let took_ms = t0.elapsed().as_secs_f64() * 1000.0;
    let classes = ctx.get("/classes?limit=1000").await?;
    // The next page keeps the filters.
    let mut next_q: Vec<(&str, &str)> = FILTERS.iter().map(|k| (*k, field(&q, k))).collect();
    let next = v["next"].as_str().unwrap_or_default().to_owned();
    next_q.push(("after", &next));
    next_q.push(("limit", limit));
    let next_url = (!next.is_empty()).then(|| with_query("/ui/devices", &next_q));
    let filters: std::collections::BTreeMap<&str, &str> =
        FILTERS.iter().map(|k| (*k, field(&q, k))).collect();
    Ok(ctx.render(
        "devices.html",
        minijinja::context! {
            nav => "devices",
            items => v["items"],
            next_url => next_url,
            first_page => field(&q, "after").is_empty(),
            filters => filters,
            classes => classes["items"],
            took_ms => took_ms,
        },
    ))
}
