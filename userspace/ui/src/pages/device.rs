//! One device's page: who it is, its lease, its timeline, the file it would be served now
//! (decoded, with its MIC/hash verdicts), its MTA flow, its CWMP state, its syslog lines, the
//! step-by-step answer to "why is it not online?", and the actions (reset, re-provision,
//! change tier with a preview of the file's diff, queue a CWMP task).

use axum::Form;
use axum::extract::{Path, Query};
use axum::http::{Method, StatusCode};
use axum::response::Response;
use serde_json::{Value, json};

use super::{Fields, field, mac_of};
use crate::call::{Ctx, Page, enc, with_query};
use crate::diag::{self, Facts};

fn mac_or_400(ctx: &Ctx, s: &str) -> Result<String, Response> {
    mac_of(s).ok_or_else(|| {
        ctx.error(
            StatusCode::BAD_REQUEST,
            &format!("{s:?} is not a MAC address"),
        )
    })
}

/// Which file a device of this type is served (`cm`/`mta`), if any.
fn file_kind(kind: &str) -> Option<&'static str> {
    match kind {
        "cm" => Some("cm"),
        "mta" => Some("mta"),
        _ => None,
    }
}

/// The file it would be served now, or why not.
async fn preview(ctx: &Ctx, mac: &str, kind: &str, cos: Option<&str>) -> Result<Value, String> {
    let mut q = vec![("mac", mac), ("kind", kind)];
    if let Some(c) = cos {
        q.push(("class_of_service", c));
    }
    let r = ctx
        .call(
            Method::GET,
            &with_query("/templates/preview", &q),
            None,
            &[],
        )
        .await;
    if r.ok() {
        Ok(r.json())
    } else {
        Err(r.message())
    }
}

pub(crate) async fn page(ctx: Ctx, Path(mac): Path<String>) -> Page {
    let mac = mac_or_400(&ctx, &mac)?;
    let device = ctx.get_opt(&format!("/devices/{mac}")).await?;
    let leases = ctx.get(&with_query("/leases", &[("mac", &mac)])).await?;
    let lease = leases["items"].get(0).cloned();
    let timeline = ctx
        .get(&format!("/devices/{mac}/timeline?limit=200"))
        .await?;
    let mut events: Vec<Value> = timeline["items"].as_array().cloned().unwrap_or_default();
    events.sort_by_key(|e| std::cmp::Reverse(e["at"].as_i64().unwrap_or(0)));
    let kind = device
        .as_ref()
        .and_then(|d| d["type"].as_str())
        .unwrap_or("other")
        .to_owned();
    let file = match file_kind(&kind) {
        Some(k) => Some(preview(&ctx, &mac, k, None).await),
        None => None,
    };
    let mta = if kind == "mta" {
        ctx.get_opt(&format!("/mta/{mac}")).await?
    } else {
        None
    };
    let syslog = ctx
        .get_opt(&with_query(
            "/syslog/events",
            &[("mac", &mac), ("limit", "50")],
        ))
        .await?
        .map(|v| v["items"].clone());
    let cwmp = match device.as_ref().and_then(|d| d["device_id"].as_str()) {
        Some(id) => ctx.get_opt(&format!("/acs/devices/{}", enc(id))).await?,
        None => None,
    };
    let classes = ctx.get("/classes?limit=1000").await?;
    let served = events
        .iter()
        .find(|e| e["source"] == "tftp" && e["kind"] == "file-served")
        .cloned();
    // The MTA's steps in time order, each with its ms since the first.
    let mut mta_steps: Vec<(String, i64)> = mta
        .as_ref()
        .and_then(|m| m["steps"].as_object())
        .map(|o| {
            o.iter()
                .filter_map(|(k, v)| Some((k.clone(), v.as_i64()?)))
                .collect()
        })
        .unwrap_or_default();
    mta_steps.sort_by_key(|s| s.1);
    let first = mta_steps.first().map_or(0, |s| s.1);
    let mta_steps: Vec<(String, i64, i64)> = mta_steps
        .into_iter()
        .map(|(k, at)| (k, at, at - first))
        .collect();
    let diagnosis = diag::diagnose(&Facts {
        device: device.as_ref(),
        lease: lease.as_ref(),
        events: &events,
        file: file.as_ref().map(|f| f.as_ref().map_err(Clone::clone)),
        mta: mta.as_ref(),
        now_ms: crate::time::now_ms(),
    });
    let (file_ok, file_err) = match file {
        Some(Ok(v)) => (Some(v), None),
        Some(Err(e)) => (None, Some(e)),
        None => (None, None),
    };
    Ok(ctx.render(
        "device.html",
        minijinja::context! {
            nav => "devices",
            mac => mac,
            kind => kind,
            device => device,
            lease => lease,
            events => events,
            file => file_ok,
            file_error => file_err,
            file_kind => file_kind(&kind),
            served => served,
            mta => mta,
            mta_steps => mta_steps,
            syslog => syslog,
            cwmp => cwmp,
            classes => classes["items"],
            diagnosis => diagnosis,
        },
    ))
}

/// The diff of the device's file now against the file with another class of service (htmx
/// puts it under the tier form).
pub(crate) async fn tier_preview(
    ctx: Ctx,
    Path(mac): Path<String>,
    Query(q): Query<Fields>,
) -> Page {
    let mac = mac_or_400(&ctx, &mac)?;
    let class = field(&q, "class").to_owned();
    let device = ctx.get_opt(&format!("/devices/{mac}")).await?;
    let kind = device
        .as_ref()
        .and_then(|d| d["type"].as_str())
        .and_then(file_kind);
    let (rows, error) = match kind {
        None => (
            Vec::new(),
            Some("this device is not served a generated config file".to_owned()),
        ),
        Some(k) => match (
            preview(&ctx, &mac, k, None).await,
            preview(&ctx, &mac, k, Some(&class)).await,
        ) {
            (Ok(a), Ok(b)) => (
                crate::diff::lines(
                    a["text"].as_str().unwrap_or(""),
                    b["text"].as_str().unwrap_or(""),
                    2,
                ),
                None,
            ),
            (Err(e), _) | (_, Err(e)) => (Vec::new(), Some(e)),
        },
    };
    Ok(ctx.render_part(
        "tier_diff.html",
        minijinja::context! {
            mac => mac,
            class => class,
            current => device.as_ref().and_then(|d| d["class_of_service"].as_str().map(str::to_owned)),
            rows => rows,
            error => error,
        },
    ))
}

fn back_to(mac: &str) -> String {
    format!("/ui/devices/{mac}")
}

/// Changes the device's class of service (`PATCH /devices/{mac}`): its next fetch gets the
/// new file.
pub(crate) async fn tier(ctx: Ctx, Path(mac): Path<String>, Form(f): Form<Fields>) -> Page {
    let mac = mac_or_400(&ctx, &mac)?;
    let class = field(&f, "class");
    let patch = if class.is_empty() {
        json!({ "class_of_service": null })
    } else {
        json!({ "class_of_service": class })
    };
    let r = ctx
        .call(
            Method::PATCH,
            &format!("/devices/{mac}"),
            Some((
                "application/merge-patch+json",
                bytes::Bytes::from(patch.to_string()),
            )),
            &[],
        )
        .await;
    if !r.ok() {
        return Err(ctx.fail(&r));
    }
    Ok(ctx.back(
        &back_to(&mac),
        "ok",
        format!(
            "class of service is now {}; the next fetch of its file gets the new one",
            if class.is_empty() { "(none)" } else { class }
        ),
    ))
}

/// Reboots it (SNMP docsDevResetNow for a CM, a CWMP Reboot for a CPE).
pub(crate) async fn reset(ctx: Ctx, Path(mac): Path<String>) -> Page {
    let mac = mac_or_400(&ctx, &mac)?;
    let r = ctx
        .send(Method::POST, &format!("/devices/{mac}/reset"), &json!({}))
        .await;
    Ok(if r.ok() {
        let v = r.json();
        let what = v["result"]
            .as_str()
            .map_or_else(|| "reset sent".to_owned(), |s| format!("reset: {s}"));
        ctx.back(&back_to(&mac), "ok", what)
    } else {
        ctx.back(&back_to(&mac), "error", format!("reset: {}", r.message()))
    })
}

/// Re-provisions it: releases its lease (so it is served from scratch) and resets it.
pub(crate) async fn reprovision(ctx: Ctx, Path(mac): Path<String>) -> Page {
    let mac = mac_or_400(&ctx, &mac)?;
    let rel = ctx
        .send(Method::POST, &format!("/leases/{mac}/release"), &json!({}))
        .await;
    if !rel.ok() && rel.status != StatusCode::NOT_FOUND {
        return Ok(ctx.back(
            &back_to(&mac),
            "error",
            format!("releasing its lease: {}", rel.message()),
        ));
    }
    let r = ctx
        .send(Method::POST, &format!("/devices/{mac}/reset"), &json!({}))
        .await;
    Ok(if r.ok() {
        ctx.back(
            &back_to(&mac),
            "ok",
            "lease released and reset sent: it provisions from scratch",
        )
    } else {
        ctx.back(
            &back_to(&mac),
            "error",
            format!("lease released, but the reset failed: {}", r.message()),
        )
    })
}

/// Queues a CWMP task for the device's DeviceId, with a connection request.
pub(crate) async fn cwmp_task(ctx: Ctx, Path(mac): Path<String>, Form(f): Form<Fields>) -> Page {
    let mac = mac_or_400(&ctx, &mac)?;
    let Some(device) = ctx.get_opt(&format!("/devices/{mac}")).await? else {
        return Err(ctx.error(StatusCode::NOT_FOUND, "no such device"));
    };
    let Some(id) = device["device_id"].as_str() else {
        return Ok(ctx.back(
            &back_to(&mac),
            "error",
            "the device has no TR-069 DeviceId in its record",
        ));
    };
    let names: Vec<String> = field(&f, "names")
        .split([',', '\n', ' '])
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect();
    let task = match field(&f, "method") {
        "Reboot" => json!({"method": "Reboot"}),
        "GetParameterValues" if !names.is_empty() => {
            json!({"method": "GetParameterValues", "names": names})
        }
        "SetParameterValues" => json!({"method": "SetParameterValues", "values": [{
            "name": field(&f, "name"), "value": field(&f, "value"),
            "type": match field(&f, "type") { "" => "xsd:string", t => t },
        }]}),
        m => {
            return Ok(ctx.back(
                &back_to(&mac),
                "error",
                format!("task {m:?}: choose Reboot, GetParameterValues (with names) or SetParameterValues"),
            ));
        }
    };
    let r = ctx
        .send(
            Method::POST,
            &format!("/acs/devices/{}/tasks?connection_request=http", enc(id)),
            &task,
        )
        .await;
    Ok(if r.ok() {
        ctx.back(
            &back_to(&mac),
            "ok",
            format!("CWMP task {} queued", task["method"].as_str().unwrap_or("")),
        )
    } else {
        ctx.back(
            &back_to(&mac),
            "error",
            format!("CWMP task: {}", r.message()),
        )
    })
}
