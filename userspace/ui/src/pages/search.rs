//! The one search box: a MAC in any spelling, an IPv4 address, a serial number, a TR-069
//! DeviceId, a subscriber (account) id, or the start of a MAC. One match goes straight to the
//! device's page; several are listed.

use axum::extract::Query;
use axum::response::{IntoResponse, Redirect};

use super::{Fields, field, mac_of};
use crate::call::{Ctx, Page, enc, with_query};

pub(crate) async fn search(ctx: Ctx, Query(q): Query<Fields>) -> Page {
    let q = field(&q, "q").to_owned();
    if q.is_empty() {
        return Ok(Redirect::to("/ui/devices").into_response());
    }
    if let Some(mac) = mac_of(&q) {
        return Ok(Redirect::to(&format!("/ui/devices/{mac}")).into_response());
    }
    let mut found: Vec<(String, serde_json::Value)> = Vec::new();
    if let Ok(ip) = q.parse::<std::net::Ipv4Addr>() {
        let leases = ctx
            .get(&with_query("/leases", &[("address", &ip.to_string())]))
            .await?;
        if let Some(mac) = leases["items"][0]["mac"].as_str() {
            return Ok(Redirect::to(&format!("/ui/devices/{mac}")).into_response());
        }
        return Ok(ctx.render(
            "search.html",
            minijinja::context! { q => q, found => found,
            note => format!("no live lease holds {ip}") },
        ));
    }
    for (why, key) in [
        ("serial", "serial"),
        ("TR-069 DeviceId", "device_id"),
        ("subscriber", "subscriber"),
    ] {
        if let Ok(v) = ctx
            .get(&with_query("/devices", &[(key, &q), ("limit", "50")]))
            .await
        {
            for d in v["items"].as_array().into_iter().flatten() {
                found.push((why.to_owned(), d.clone()));
            }
        }
    }
    let hex: String = q
        .chars()
        .filter(|c| !matches!(c, ':' | '-' | '.'))
        .collect();
    if found.is_empty()
        && hex.len() >= 4
        && hex.chars().all(|c| c.is_ascii_hexdigit())
        && let Ok(v) = ctx
            .get(&with_query(
                "/devices",
                &[("mac_prefix", &q), ("limit", "50")],
            ))
            .await
    {
        for d in v["items"].as_array().into_iter().flatten() {
            found.push(("MAC prefix".to_owned(), d.clone()));
        }
    }
    if found.len() == 1
        && let Some(mac) = found[0].1["mac"].as_str()
    {
        return Ok(Redirect::to(&format!("/ui/devices/{mac}")).into_response());
    }
    let subscriber = ctx.get_opt(&format!("/subscribers/{}", enc(&q))).await?;
    Ok(ctx.render(
        "search.html",
        minijinja::context! { q => q, found => found, subscriber => subscriber },
    ))
}
