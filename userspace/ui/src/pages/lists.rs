//! The other lists: leases (search, release), MTA records, CWMP (presets, campaigns, stats),
//! jobs (bulk import with progress), the audit log, and tokens (admin).

use axum::Form;
use axum::body::Bytes;
use axum::extract::{Path, Query};
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::response::IntoResponse;
use serde_json::{Value, json};

use super::{Fields, field, mac_of};
use crate::call::{Ctx, Page, enc, with_query};

pub(crate) async fn leases(ctx: Ctx, Query(q): Query<Fields>) -> Page {
    let keys = ["mac", "address", "relay", "remote_id", "subscriber"];
    let mac = mac_of(field(&q, "mac")).unwrap_or_default();
    let mut params: Vec<(&str, &str)> = keys
        .iter()
        .map(|k| {
            (
                *k,
                if *k == "mac" {
                    mac.as_str()
                } else {
                    field(&q, k)
                },
            )
        })
        .collect();
    params.push(("after", field(&q, "after")));
    params.push(("limit", "100"));
    let v = ctx.get(&with_query("/leases", &params)).await?;
    let items = v["items"].as_array().cloned().unwrap_or_default();
    let last = items
        .last()
        .and_then(|l| l["mac"].as_str())
        .map(str::to_owned);
    let mut next_q: Vec<(&str, &str)> = keys.iter().map(|k| (*k, field(&q, k))).collect();
    let after = last.clone().unwrap_or_default();
    next_q.push(("after", &after));
    let next_url =
        (items.len() == 100 && last.is_some()).then(|| with_query("/ui/leases", &next_q));
    let filters: std::collections::BTreeMap<&str, &str> =
        keys.iter().map(|k| (*k, field(&q, k))).collect();
    Ok(ctx.render(
        "leases.html",
        minijinja::context! {
            nav => "leases", items => items, next_url => next_url, filters => filters,
            first_page => field(&q, "after").is_empty(),
        },
    ))
}

pub(crate) async fn release(ctx: Ctx, Path(mac): Path<String>) -> Page {
    let Some(mac) = mac_of(&mac) else {
        return Err(ctx.error(StatusCode::BAD_REQUEST, "not a MAC address"));
    };
    let r = ctx
        .send(Method::POST, &format!("/leases/{mac}/release"), &json!({}))
        .await;
    if matches!(r.status, StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN) {
        return Err(ctx.fail(&r));
    }
    Ok(if r.ok() {
        ctx.back("/ui/leases", "ok", format!("lease of {mac} released"))
    } else {
        ctx.back(
            "/ui/leases",
            "error",
            format!("release {mac}: {}", r.message()),
        )
    })
}

/// MTAs (devices of type `mta`, by cursor) with their flow records.
pub(crate) async fn mta(ctx: Ctx, Query(q): Query<Fields>) -> Page {
    let after = field(&q, "after");
    let v = ctx
        .get(&with_query(
            "/devices",
            &[("type", "mta"), ("after", after), ("limit", "50")],
        ))
        .await?;
    let mut rows = Vec::new();
    for d in v["items"].as_array().into_iter().flatten() {
        let mac = d["mac"].as_str().unwrap_or_default();
        let record = ctx.get_opt(&format!("/mta/{mac}")).await?;
        rows.push(json!({ "device": d, "record": record }));
    }
    let next = v["next"]
        .as_str()
        .map(|n| with_query("/ui/mta", &[("after", n)]));
    Ok(ctx.render(
        "mta.html",
        minijinja::context! { nav => "mta", rows => rows, next_url => next, first_page => after.is_empty() },
    ))
}

pub(crate) async fn cwmp(ctx: Ctx) -> Page {
    let stats = ctx.get_opt("/acs/stats").await?;
    let presets = ctx.get_opt("/acs/presets").await?;
    let campaigns = ctx.get_opt("/acs/campaigns").await?;
    let list = |v: Option<Value>| -> Value {
        match v {
            Some(Value::Array(a)) => Value::Array(a),
            Some(o) if o["items"].is_array() => o["items"].clone(),
            Some(o) => o,
            None => Value::Null,
        }
    };
    Ok(ctx.render(
        "cwmp.html",
        minijinja::context! {
            nav => "cwmp",
            acs => stats.is_some(),
            stats => stats,
            presets => list(presets),
            campaigns => list(campaigns),
        },
    ))
}

pub(crate) async fn jobs(ctx: Ctx) -> Page {
    let v = ctx.get("/jobs").await?;
    Ok(ctx.render(
        "jobs.html",
        minijinja::context! { nav => "jobs", items => v["items"] },
    ))
}

/// A job's progress (htmx polls it until it is done).
pub(crate) async fn job(ctx: Ctx, Path(id): Path<String>) -> Page {
    let v = ctx.get(&format!("/jobs/{}", enc(&id))).await?;
    Ok(ctx.render_part("job.html", minijinja::context! { job => v }))
}

/// A bulk import: the file's bytes as the page's script sends them (JSON array or JSON
/// lines), passed to `POST /api/v1/jobs/import`; answers with the job's progress part.
pub(crate) async fn import(ctx: Ctx, headers: HeaderMap, body: Bytes) -> Page {
    let ct = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("application/json");
    let ct = if ct.starts_with("application/x-ndjson") {
        "application/x-ndjson"
    } else {
        "application/json"
    };
    let r = ctx
        .call(Method::POST, "/jobs/import", Some((ct, body)), &[])
        .await;
    if !r.ok() {
        let mut resp = ctx.render_part("job.html", minijinja::context! { error => r.message() });
        *resp.status_mut() = r.status;
        return Ok(resp);
    }
    let id = r.json()["id"].as_u64().unwrap_or(0);
    let v = ctx.get(&format!("/jobs/{id}")).await?;
    Ok(ctx.render_part("job.html", minijinja::context! { job => v }))
}

pub(crate) async fn audit(ctx: Ctx, Query(q): Query<Fields>) -> Page {
    let keys = ["resource", "key", "who", "before"];
    let mut params: Vec<(&str, &str)> = keys.iter().map(|k| (*k, field(&q, k))).collect();
    params.push(("limit", "100"));
    let v = ctx.get(&with_query("/audit", &params)).await?;
    let mut next_q: Vec<(&str, &str)> = ["resource", "key", "who"]
        .iter()
        .map(|k| (*k, field(&q, k)))
        .collect();
    let next = v["next"]
        .as_i64()
        .map(|n| n.to_string())
        .unwrap_or_default();
    next_q.push(("before", &next));
    let next_url = (!next.is_empty()).then(|| with_query("/ui/audit", &next_q));
    let filters: std::collections::BTreeMap<&str, &str> =
        keys.iter().map(|k| (*k, field(&q, k))).collect();
    Ok(ctx.render(
        "audit.html",
        minijinja::context! {
            nav => "audit", items => v["items"], next_url => next_url, filters => filters,
            first_page => field(&q, "before").is_empty(),
        },
    ))
}

pub(crate) async fn tokens(ctx: Ctx) -> Page {
    tokens_page(&ctx, None).await
}

async fn tokens_page(ctx: &Ctx, created: Option<Value>) -> Page {
    if !ctx.sess.is_admin() {
        return Err(ctx.error(StatusCode::FORBIDDEN, "tokens are for admin tokens only"));
    }
    let v = ctx.get("/tokens").await?;
    let items = if v.is_array() { v } else { v["items"].clone() };
    Ok(ctx.render(
        "tokens.html",
        minijinja::context! { nav => "tokens", items => items, created => created },
    ))
}

/// Creates a token; its secret is shown once, on this answer's page.
pub(crate) async fn create_token(ctx: Ctx, Form(f): Form<Fields>) -> Page {
    let mut spec = json!({"name": field(&f, "name"), "role": field(&f, "role")});
    let relays: Vec<&str> = field(&f, "relays")
        .split([',', ' '])
        .filter(|s| !s.is_empty())
        .collect();
    if !relays.is_empty() {
        spec["scope"] = json!({ "relays": relays });
    }
    let r = ctx.send(Method::POST, "/tokens", &spec).await;
    if matches!(r.status, StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN) {
        return Err(ctx.fail(&r));
    }
    if !r.ok() {
        return Ok(ctx.back(
            "/ui/tokens",
            "error",
            format!("token not created: {}", r.message()),
        ));
    }
    let mut resp = tokens_page(&ctx, Some(r.json())).await?;
    // The secret is on this page only: no cache may keep it.
    resp.headers_mut().insert(
        header::CACHE_CONTROL,
        axum::http::HeaderValue::from_static("no-store"),
    );
    Ok(resp.into_response())
}

pub(crate) async fn delete_token(ctx: Ctx, Path(id): Path<String>) -> Page {
    let r = ctx
        .call(Method::DELETE, &format!("/tokens/{}", enc(&id)), None, &[])
        .await;
    if matches!(r.status, StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN) {
        return Err(ctx.fail(&r));
    }
    Ok(if r.ok() {
        ctx.back(
            "/ui/tokens",
            "ok",
            format!("token {id} deleted: it stops working now"),
        )
    } else {
        ctx.back(
            "/ui/tokens",
            "error",
            format!("delete {id}: {}", r.message()),
        )
    })
}
