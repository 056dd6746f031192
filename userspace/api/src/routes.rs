//! The store's resources (devices, subscribers, classes, reservations, audit, tokens, stats),
//! leases, templates, MTA records, syslog events and config reload.

use std::sync::Arc;

use axum::Extension;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use provd_role::clock;
use provd_store::{
    AuditFilter, ClassSpec, Device, DeviceFilter, DeviceKind, DeviceSpec, Expect, Mac, NewEvent,
    PageRequest, ReservationSpec, Scope, Source, SubscriberSpec, TokenRole, TokenSpec,
};
use serde::Deserialize;
use utoipa::{IntoParams, IntoResponses};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::auth::Caller;
use crate::extract::{JsonBody, Q, blocking, decode, expect_of, parse_mac, tagged, with_key};
use crate::{ApiError, App, ErrorBody, Inner, LeaseQuery, SyslogQuery, schema};

/// The error answers any route may give (each is an [`ErrorBody`]).
#[derive(IntoResponses)]
#[allow(dead_code)]
pub(crate) enum Errors {
    /// The request is malformed; `field` names what.
    #[response(status = 400)]
    BadRequest(ErrorBody),
    /// No or an unknown token.
    #[response(status = 401)]
    Unauthorized(ErrorBody),
    /// The token's role or scope does not allow it.
    #[response(status = 403)]
    Forbidden(ErrorBody),
    /// No such record (or not in the token's scope).
    #[response(status = 404)]
    NotFound(ErrorBody),
    /// The record exists (`If-None-Match: *`) or is still referenced.
    #[response(status = 409)]
    Conflict(ErrorBody),
    /// `If-Match` names another version; `detail.current_version` is the current one.
    #[response(status = 412)]
    VersionMismatch(ErrorBody),
    /// The body is larger than the route takes.
    #[response(status = 413)]
    TooLarge(ErrorBody),
    /// Too many failed authentications from this address.
    #[response(status = 429)]
    TooMany(ErrorBody),
    /// The store or a role failed.
    #[response(status = 500)]
    Backend(ErrorBody),
    /// The role that would answer is not running.
    #[response(status = 503)]
    Unavailable(ErrorBody),
    /// The device did not answer (a reset's SNMP SET): provd is the gateway to it.
    #[response(status = 504)]
    Unreachable(ErrorBody),
}

pub(crate) fn routes() -> OpenApiRouter<App> {
    OpenApiRouter::new()
        .routes(routes!(list_devices))
        .routes(routes!(get_device, put_device, patch_device, delete_device))
        .routes(routes!(device_timeline))
        .routes(routes!(reset_device))
        .routes(routes!(list_subscribers))
        .routes(routes!(get_subscriber, put_subscriber, delete_subscriber))
        .routes(routes!(list_classes))
        .routes(routes!(get_class, put_class, delete_class))
        .routes(routes!(list_reservations))
        .routes(routes!(
            get_reservation,
            put_reservation,
            delete_reservation
        ))
        .routes(routes!(search_leases))
        .routes(routes!(release_lease))
        .routes(routes!(mta_record))
        .routes(routes!(syslog_events))
        .routes(routes!(audit_log))
        .routes(routes!(list_tokens, create_token))
        .routes(routes!(delete_token))
        .routes(routes!(whoami))
        .routes(routes!(stats))
        .routes(routes!(reload_config))
}

// ---- scope ----

/// Whether the device `mac` (of class `class`) is inside `scope`: each non-empty list of the
/// scope must admit it (its class among the classes; its live lease through one of the
/// relays).
pub(crate) fn in_scope(app: &Inner, scope: &Scope, mac: Mac, class: Option<&str>) -> bool {
    if !scope.classes.is_empty() && !class.is_some_and(|c| scope.classes.iter().any(|s| s == c)) {
        return false;
    }
    if !scope.relays.is_empty() {
        let q = LeaseQuery {
            mac: Some(mac),
            relays_any: scope.relays.clone(),
            ..LeaseQuery::default()
        };
        return !app.svc.leases.search(&q, 1).is_empty();
    }
    true
}

/// For a read: the device's record if the caller may see it (`None` reads as 404).
fn visible(app: &Inner, c: &Caller, mac: Mac) -> Result<Option<Device>, ApiError> {
    let d = app.svc.store.get_device(mac)?;
    let scope = &c.token.scope;
    if scope.is_unlimited() {
        return Ok(d);
    }
    let class = d.as_ref().and_then(|d| d.spec.class_of_service.as_deref());
    let ok = in_scope(app, scope, mac, class);
    Ok(d.filter(|_| ok))
}

/// For a write on `mac`: 403 if the device as stored, or as it would be (`new_class`), is
/// outside the caller's scope.
fn may_write(
    app: &Inner,
    c: &Caller,
    mac: Mac,
    new_class: Option<Option<&str>>,
) -> Result<(), ApiError> {
    let scope = &c.token.scope;
    if scope.is_unlimited() {
        return Ok(());
    }
    let current = app.svc.store.get_device(mac)?;
    let class = current
        .as_ref()
        .and_then(|d| d.spec.class_of_service.as_deref());
    if (current.is_some() || new_class.is_none()) && !in_scope(app, scope, mac, class) {
        return Err(ApiError::forbidden(format!(
            "device {mac} is outside token {}'s scope",
            c.token.id
        )));
    }
    if let Some(nc) = new_class
        && !in_scope(app, scope, mac, nc)
    {
        return Err(ApiError::forbidden(format!(
            "token {}'s scope does not cover class {:?} for {mac}",
            c.token.id,
            nc.unwrap_or("")
        ))
        .field("class_of_service"));
    }
    Ok(())
}

/// A page size: 0 or absent is the default (100); above 1000 is refused.
pub(crate) fn limit_of(limit: Option<u32>) -> Result<u32, ApiError> {
    if limit.is_some_and(|l| l > PageRequest::MAX) {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_query",
            format!("at most {}", PageRequest::MAX),
        )
        .field("limit"));
    }
    Ok(PageRequest {
        after: None,
        limit: limit.unwrap_or(0),
    }
    .effective_limit())
}

// ---- devices ----

/// Device list filters; every one given must match.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub(crate) struct DeviceQuery {
    /// MACs starting with this (`00:11:22`, any separators).
    #[param(pattern = r"^([0-9A-Fa-f][:.-]?){0,12}$")]
    mac_prefix: Option<String>,
    subscriber: Option<String>,
    /// Class of service.
    class: Option<String>,
    /// `cm`, `mta`, `erouter`, `phone`, `cpe`, `other`.
    #[serde(rename = "type")]
    #[param(rename = "type", value_type = Option<schema::DeviceType>)]
    kind: Option<String>,
    serial: Option<String>,
    device_id: Option<String>,
    /// Changed at or after (unix ms).
    updated_since: Option<i64>,
    /// Holding a live lease through this relay (giaddr: the CMTS).
    #[param(value_type = Option<String>, format = Ipv4)]
    relay: Option<std::net::Ipv4Addr>,
    /// Holding this address (a live lease).
    #[param(value_type = Option<String>, format = Ipv4)]
    ip: Option<std::net::Ipv4Addr>,
    /// `online`: holding a live lease; `offline`: not.
    #[param(inline)]
    state: Option<DeviceState>,
    /// The previous page's `next` (a MAC).
    #[param(pattern = r"^(([0-9A-Fa-f][:.-]?){11}[0-9A-Fa-f])?$")]
    after: Option<String>,
    /// At most this many (default 100, at most 1000).
    #[param(minimum = 0, maximum = 1000)]
    limit: Option<u32>,
}

/// Whether a device holds a live lease.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub(crate) enum DeviceState {
    Online,
    Offline,
}

/// Store pages an `offline` listing reads per request before it answers with what it found
/// (and a `next` to go on from): bounds the work of one request.
const OFFLINE_SCAN_PAGES: usize = 20;

/// Lease pages an `online` listing reads per request before it answers with what it found.
const ONLINE_SCAN_PAGES: usize = 20;

/// Devices that hold a live lease matching `lq`, in MAC order from `after`, each checked
/// against `filter`: walks the leases (memory), reads each device from the store.
fn online_devices(
    app: &Inner,
    mut lq: LeaseQuery,
    filter: &DeviceFilter,
    limit: u32,
) -> Result<provd_store::Page<Device>, ApiError> {
    // Leases a page at a time (each a pass over the live leases), each device read from the
    // store; at most ONLINE_SCAN_PAGES of them per request, then `next` says where to go on.
    let chunk = limit.clamp(64, 1000);
    let mut items = Vec::new();
    for _ in 0..ONLINE_SCAN_PAGES {
        let batch = app.svc.leases.search(&lq, chunk);
        let full = batch.len() == chunk as usize;
        for l in batch {
            lq.after = Some(l.mac);
            if let Some(d) = app.svc.store.get_device(l.mac)?
                && filter.matches(&d)
            {
                items.push(d);
                if items.len() == limit as usize {
                    return Ok(provd_store::Page {
                        items,
                        next: Some(l.mac.to_string()),
                    });
                }
            }
        }
        if !full {
            return Ok(provd_store::Page { items, next: None });
        }
    }
    Ok(provd_store::Page {
        items,
        next: lq.after.map(|m| m.to_string()),
    })
}

/// Devices matching `filter` that hold no live lease: store pages with the online ones left
/// out, at most [`OFFLINE_SCAN_PAGES`] of them per call.
fn offline_devices(
    app: &Inner,
    filter: &DeviceFilter,
    mut page: PageRequest,
    scope_relays: bool,
) -> Result<provd_store::Page<Device>, ApiError> {
    let limit = page.effective_limit() as usize;
    let mut items = Vec::new();
    for _ in 0..OFFLINE_SCAN_PAGES {
        let p = app.svc.store.list_devices(filter, &page)?;
        for d in p.items {
            let live = LeaseQuery {
                mac: Some(d.spec.mac),
                ..LeaseQuery::default()
            };
            // A relay-scoped caller sees only devices it can place behind its relays, which
            // an offline device is not.
            if scope_relays || !app.svc.leases.search(&live, 1).is_empty() {
                continue;
            }
            items.push(d);
            if items.len() == limit {
                let next = items.last().map(|d: &Device| d.spec.mac.to_string());
                return Ok(provd_store::Page { items, next });
            }
        }
        match p.next {
            Some(n) => page.after = Some(n),
            None => return Ok(provd_store::Page { items, next: None }),
        }
    }
    // Read enough for one request: say where to go on from.
    Ok(provd_store::Page {
        items,
        next: page.after,
    })
}

fn mac_prefix(p: &str) -> Result<String, ApiError> {
    let hex: String = p
        .chars()
        .filter(|c| !matches!(c, ':' | '-' | '.'))
        .map(|c| c.to_ascii_lowercase())
        .collect();
    if hex.len() > 12 || !hex.chars().all(|c| c.is_ascii_hexdigit()) {
        return Err(ApiError::invalid(
            "mac_prefix",
            "up to 12 hex digits, with or without separators",
        )
        .field("mac_prefix"));
    }
    let mut out = String::new();
    for (i, c) in hex.chars().enumerate() {
        if i > 0 && i % 2 == 0 {
            out.push(':');
        }
        out.push(c);
    }
    Ok(out)
}

/// List devices, by MAC, a page at a time.
#[utoipa::path(get, path = "/devices", tag = "devices", params(DeviceQuery),
    responses((status = 200, body = schema::DevicePage), Errors))]
async fn list_devices(
    State(app): State<App>,
    Extension(c): Extension<Caller>,
    Q(q): Q<DeviceQuery>,
) -> Result<Response, ApiError> {
    let kind = q
        .kind
        .as_deref()
        .filter(|k| !k.is_empty())
        .map(|k| k.parse::<DeviceKind>())
        .transpose()
        .map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, "invalid_query", e).field("type"))?;
    let filter = DeviceFilter {
        kind,
        subscriber: q.subscriber,
        class_of_service: q.class,
        classes_any: c.token.scope.classes.clone(),
        mac_prefix: q.mac_prefix.as_deref().map(mac_prefix).transpose()?,
        serial: q.serial,
        device_id: q.device_id,
        updated_since: q.updated_since,
    };
    let page = PageRequest {
        after: q.after.filter(|a| !a.is_empty()),
        limit: limit_of(q.limit)?,
    };
    let after = page
        .after
        .as_deref()
        .map(|a| parse_mac("after", a))
        .transpose()?;
    if q.state == Some(DeviceState::Offline) && (q.relay.is_some() || q.ip.is_some()) {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_query",
            "an offline device holds no lease: relay and ip select online devices",
        )
        .field("state"));
    }
    if q.relay.is_some() || q.ip.is_some() || q.state.is_some() {
        let state = q.state;
        let page = blocking(move || match state {
            Some(DeviceState::Offline) => {
                offline_devices(&app, &filter, page, !c.token.scope.relays.is_empty())
            }
            _ => {
                let lq = LeaseQuery {
                    relay: q.relay,
                    address: q.ip,
                    after,
                    relays_any: c.token.scope.relays.clone(),
                    ..LeaseQuery::default()
                };
                online_devices(&app, lq, &filter, page.effective_limit())
            }
        })
        .await?;
        return Ok(axum::Json(page).into_response());
    }
    let page = blocking(move || {
        let mut p = app.svc.store.list_devices(&filter, &page)?;
        if !c.token.scope.relays.is_empty() {
            p.items.retain(|d| {
                in_scope(
                    &app,
                    &c.token.scope,
                    d.spec.mac,
                    d.spec.class_of_service.as_deref(),
                )
            });
        }
        Ok(p)
    })
    .await?;
    Ok(axum::Json(page).into_response())
}

/// One device, with its `ETag`.
#[utoipa::path(get, path = "/devices/{mac}", tag = "devices",
    params(("mac" = String, Path, description = "The device's MAC", pattern = r"^([0-9A-Fa-f][:.-]?){11}[0-9A-Fa-f]$")),
    responses((status = 200, body = schema::Device, headers(("ETag" = String, description = "\"<version>\""))), Errors))]
async fn get_device(
    State(app): State<App>,
    Extension(c): Extension<Caller>,
    Path(mac): Path<String>,
) -> Result<Response, ApiError> {
    let mac = parse_mac("mac", &mac)?;
    let d = blocking(move || visible(&app, &c, mac)).await?;
    let d = d.ok_or_else(|| ApiError::not_found(format!("no such device {mac}")))?;
    Ok(tagged(StatusCode::OK, d.version, &d))
}

/// Creates or replaces a device (`If-Match` to replace a version, `If-None-Match: *` to
/// create only).
#[utoipa::path(put, path = "/devices/{mac}", tag = "devices",
    params(("mac" = String, Path, description = "The device's MAC", pattern = r"^([0-9A-Fa-f][:.-]?){11}[0-9A-Fa-f]$"),
        ("If-Match" = Option<String>, Header, description = "\"<version>\": replace only that version", nullable = false, pattern = r#"^(\*|(W/)?"[0-9]{1,19}"|[0-9]{1,19})$"#),
        ("If-None-Match" = Option<schema::Star>, Header, description = "*: create only", nullable = false)),
    request_body = schema::DeviceSpec,
    responses((status = 200, body = schema::Device, headers(("ETag" = String))), Errors))]
async fn put_device(
    State(app): State<App>,
    Extension(c): Extension<Caller>,
    Path(mac): Path<String>,
    headers: HeaderMap,
    JsonBody(body): JsonBody,
) -> Result<Response, ApiError> {
    c.require(TokenRole::Operator)?;
    let mac = parse_mac("mac", &mac)?;
    let expect = expect_of(&headers)?;
    let spec: DeviceSpec = decode(with_key(body, "mac", &mac.to_string())?)?;
    let by = c.actor().to_string();
    let a = app.clone();
    let d = blocking(move || {
        may_write(&a, &c, mac, Some(spec.class_of_service.as_deref()))?;
        Ok(a.svc.store.put_device(&spec, expect, &c.actor())?)
    })
    .await?;
    let kind = if d.version == 1 {
        "device-created"
    } else {
        "device-replaced"
    };
    device_event(
        &app,
        mac,
        kind,
        serde_json::json!({ "by": by, "version": d.version,
        "class_of_service": d.spec.class_of_service, "subscriber": d.spec.subscriber }),
    )
    .await;
    Ok(tagged(StatusCode::OK, d.version, &d))
}

/// A change made through the API, in the device's timeline (beside the audit log's full
/// before/after), so a support agent reading the timeline sees the change among the DHCP,
/// TFTP and other steps. Written after the change is durable; a failure to write it is
/// logged, not the caller's error (the change itself is done and audited).
pub(crate) async fn device_event(app: &App, mac: Mac, kind: &str, detail: serde_json::Value) {
    let ev = NewEvent {
        mac,
        at: i64::try_from(clock::unix_millis()).unwrap_or(i64::MAX),
        source: Source::Api,
        kind: kind.into(),
        detail,
    };
    let store = Arc::clone(&app.svc.store);
    if let Err(e) = blocking(move || Ok(store.append_events(&[ev])?)).await {
        tracing::warn!(%mac, error = %e.body.message, "device change not written to its timeline");
    }
}

/// Changes some of a device's fields (JSON merge patch, RFC 7386: `null` removes a field).
/// Without `If-Match` it applies to the version it read.
#[utoipa::path(patch, path = "/devices/{mac}", tag = "devices",
    params(("mac" = String, Path, description = "The device's MAC", pattern = r"^([0-9A-Fa-f][:.-]?){11}[0-9A-Fa-f]$"),
        ("If-Match" = Option<String>, Header, description = "\"<version>\"", nullable = false, pattern = r#"^(\*|(W/)?"[0-9]{1,19}"|[0-9]{1,19})$"#)),
    request_body(content = schema::DevicePatch, content_type = "application/merge-patch+json"),
    responses((status = 200, body = schema::Device, headers(("ETag" = String))), Errors))]
async fn patch_device(
    State(app): State<App>,
    Extension(c): Extension<Caller>,
    Path(mac): Path<String>,
    headers: HeaderMap,
    JsonBody(patch): JsonBody,
) -> Result<Response, ApiError> {
    c.require(TokenRole::Operator)?;
    let mac = parse_mac("mac", &mac)?;
    let expect = expect_of(&headers)?;
    if expect == Expect::Absent {
        return Err(ApiError::invalid(
            "If-None-Match",
            "a patch changes an existing device",
        ));
    }
    if !patch.is_object() {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid",
            "the patch is a JSON object",
        ));
    }
    let by = c.actor().to_string();
    let fields: Vec<String> = patch
        .as_object()
        .map(|o| o.keys().cloned().collect())
        .unwrap_or_default();
    let a = app.clone();
    let d = blocking(move || {
        let app = &a;
        let cur = visible(app, &c, mac)?
            .ok_or_else(|| ApiError::not_found(format!("no such device {mac}")))?;
        let mut v = serde_json::to_value(&cur.spec)
            .map_err(|e| ApiError::backend(format!("device {mac}: {e}")))?;
        merge(&mut v, &patch);
        let spec: DeviceSpec = decode(with_key(v, "mac", &mac.to_string())?)?;
        may_write(app, &c, mac, Some(spec.class_of_service.as_deref()))?;
        let expect = match expect {
            Expect::Any => Expect::Version(cur.version),
            e => e,
        };
        Ok(a.svc.store.put_device(&spec, expect, &c.actor())?)
    })
    .await?;
    device_event(
        &app,
        mac,
        "device-changed",
        serde_json::json!({ "by": by, "version": d.version,
        "fields": fields, "class_of_service": d.spec.class_of_service,
        "subscriber": d.spec.subscriber }),
    )
    .await;
    Ok(tagged(StatusCode::OK, d.version, &d))
}

/// RFC 7386.
fn merge(target: &mut serde_json::Value, patch: &serde_json::Value) {
    let serde_json::Value::Object(p) = patch else {
        *target = patch.clone();
        return;
    };
    if !target.is_object() {
        *target = serde_json::Value::Object(serde_json::Map::new());
    }
    if let serde_json::Value::Object(t) = target {
        for (k, v) in p {
            if v.is_null() {
                t.remove(k);
            } else {
                merge(t.entry(k.clone()).or_insert(serde_json::Value::Null), v);
            }
        }
    }
}

/// Deletes a device (`If-Match` to delete only that version).
#[utoipa::path(delete, path = "/devices/{mac}", tag = "devices",
    params(("mac" = String, Path, description = "The device's MAC", pattern = r"^([0-9A-Fa-f][:.-]?){11}[0-9A-Fa-f]$"),
        ("If-Match" = Option<String>, Header, description = "\"<version>\"", nullable = false, pattern = r#"^(\*|(W/)?"[0-9]{1,19}"|[0-9]{1,19})$"#)),
    responses((status = 204, description = "Deleted"), Errors))]
async fn delete_device(
    State(app): State<App>,
    Extension(c): Extension<Caller>,
    Path(mac): Path<String>,
    headers: HeaderMap,
) -> Result<StatusCode, ApiError> {
    c.require(TokenRole::Operator)?;
    let mac = parse_mac("mac", &mac)?;
    let expect = expect_of(&headers)?;
    let by = c.actor().to_string();
    let a = app.clone();
    blocking(move || {
        may_write(&a, &c, mac, None)?;
        Ok(a.svc.store.delete_device(mac, expect, &c.actor())?)
    })
    .await?;
    device_event(&app, mac, "device-deleted", serde_json::json!({ "by": by })).await;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub(crate) struct TimelineQuery {
    /// Events older than this event id (the previous page's `next`).
    before: Option<i64>,
    /// At most this many (default 100, at most 1000).
    #[param(minimum = 0, maximum = 1000)]
    limit: Option<u32>,
}

/// A device's timeline, newest first: DHCP, TFTP, time, syslog, MTA, HTTP, CWMP, API.
#[utoipa::path(get, path = "/devices/{mac}/timeline", tag = "devices",
    params(("mac" = String, Path, description = "The device's MAC", pattern = r"^([0-9A-Fa-f][:.-]?){11}[0-9A-Fa-f]$"), TimelineQuery),
    responses((status = 200, body = schema::Timeline), Errors))]
async fn device_timeline(
    State(app): State<App>,
    Extension(c): Extension<Caller>,
    Path(mac): Path<String>,
    Q(q): Q<TimelineQuery>,
) -> Result<Response, ApiError> {
    let mac = parse_mac("mac", &mac)?;
    let limit = limit_of(q.limit)?;
    let items = blocking(move || {
        if !c.token.scope.is_unlimited() && visible(&app, &c, mac)?.is_none() {
            return Err(ApiError::not_found(format!("no such device {mac}")));
        }
        Ok(app.svc.store.timeline(mac, q.before, limit)?)
    })
    .await?;
    let next = (items.len() == limit as usize)
        .then(|| items.last().map(|e| e.id))
        .flatten();
    Ok(axum::Json(serde_json::json!({ "items": items, "next": next })).into_response())
}

/// Reboots a device: a CM through SNMP `docsDevResetNow`, a CWMP CPE through a Reboot task
/// and a connection request. The outcome is in the device's timeline.
#[utoipa::path(post, path = "/devices/{mac}/reset", tag = "devices",
    params(("mac" = String, Path, description = "The device's MAC", pattern = r"^([0-9A-Fa-f][:.-]?){11}[0-9A-Fa-f]$")),
    responses((status = 200, body = schema::ResetDone), Errors))]
async fn reset_device(
    State(app): State<App>,
    Extension(c): Extension<Caller>,
    Path(mac): Path<String>,
) -> Result<Response, ApiError> {
    c.require(TokenRole::Operator)?;
    let mac = parse_mac("mac", &mac)?;
    {
        let (app, c) = (app.clone(), c.clone());
        blocking(move || may_write(&app, &c, mac, None)).await?;
    }
    let outcome = app.svc.actions.reset(mac).await;
    let (kind, detail) = match &outcome {
        Ok(r) => (
            "reset",
            serde_json::json!({ "by": c.actor().to_string(), "result": r }),
        ),
        Err(e) => (
            "reset-failed",
            serde_json::json!({ "by": c.actor().to_string(), "error": e.to_string() }),
        ),
    };
    device_event(&app, mac, kind, detail).await;
    let result = outcome?;
    Ok(axum::Json(serde_json::json!({ "mac": mac, "result": result })).into_response())
}

// ---- subscribers, classes, reservations ----

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub(crate) struct PageQuery {
    /// The previous page's `next`.
    after: Option<String>,
    /// At most this many (default 100, at most 1000).
    #[param(minimum = 0, maximum = 1000)]
    limit: Option<u32>,
}

impl PageQuery {
    fn page(self) -> Result<PageRequest, ApiError> {
        Ok(PageRequest {
            after: self.after.filter(|a| !a.is_empty()),
            limit: limit_of(self.limit)?,
        })
    }
}

/// List subscribers, by id.
#[utoipa::path(get, path = "/subscribers", tag = "subscribers", params(PageQuery),
    responses((status = 200, body = schema::SubscriberPage), Errors))]
async fn list_subscribers(
    State(app): State<App>,
    Q(q): Q<PageQuery>,
) -> Result<Response, ApiError> {
    let page = q.page()?;
    let p = blocking(move || Ok(app.svc.store.list_subscribers(&page)?)).await?;
    Ok(axum::Json(p).into_response())
}

/// One subscriber.
#[utoipa::path(get, path = "/subscribers/{id}", tag = "subscribers",
    params(("id" = String, Path, description = "The account id", min_length = 1, max_length = 128, pattern = r"^[^\u0000-\u001f\u007f]*$")),
    responses((status = 200, body = schema::Subscriber, headers(("ETag" = String))), Errors))]
async fn get_subscriber(
    State(app): State<App>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let s = blocking(move || {
        app.svc
            .store
            .get_subscriber(&id)?
            .ok_or_else(|| ApiError::not_found(format!("no such subscriber {id:?}")))
    })
    .await?;
    Ok(tagged(StatusCode::OK, s.version, &s))
}

/// Creates or replaces a subscriber.
#[utoipa::path(put, path = "/subscribers/{id}", tag = "subscribers",
    params(("id" = String, Path, description = "The account id", min_length = 1, max_length = 128, pattern = r"^[^\u0000-\u001f\u007f]*$"),
        ("If-Match" = Option<String>, Header, description = "\"<version>\"", nullable = false, pattern = r#"^(\*|(W/)?"[0-9]{1,19}"|[0-9]{1,19})$"#),
        ("If-None-Match" = Option<schema::Star>, Header, description = "*: create only", nullable = false)),
    request_body = schema::SubscriberSpec,
    responses((status = 200, body = schema::Subscriber, headers(("ETag" = String))), Errors))]
async fn put_subscriber(
    State(app): State<App>,
    Extension(c): Extension<Caller>,
    Path(id): Path<String>,
    headers: HeaderMap,
    JsonBody(body): JsonBody,
) -> Result<Response, ApiError> {
    c.require(TokenRole::Operator)?;
    let expect = expect_of(&headers)?;
    let spec: SubscriberSpec = decode(with_key(body, "id", &id)?)?;
    let s = blocking(move || Ok(app.svc.store.put_subscriber(&spec, expect, &c.actor())?)).await?;
    Ok(tagged(StatusCode::OK, s.version, &s))
}

/// Deletes a subscriber (409 while devices name it).
#[utoipa::path(delete, path = "/subscribers/{id}", tag = "subscribers",
    params(("id" = String, Path, description = "The account id", min_length = 1, max_length = 128, pattern = r"^[^\u0000-\u001f\u007f]*$"),
        ("If-Match" = Option<String>, Header, description = "\"<version>\"", nullable = false, pattern = r#"^(\*|(W/)?"[0-9]{1,19}"|[0-9]{1,19})$"#)),
    responses((status = 204, description = "Deleted"), Errors))]
async fn delete_subscriber(
    State(app): State<App>,
    Extension(c): Extension<Caller>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<StatusCode, ApiError> {
    c.require(TokenRole::Operator)?;
    let expect = expect_of(&headers)?;
    blocking(move || Ok(app.svc.store.delete_subscriber(&id, expect, &c.actor())?)).await?;
    Ok(StatusCode::NO_CONTENT)
}

fn class_in_scope(c: &Caller, name: &str) -> bool {
    c.token.scope.classes.is_empty() || c.token.scope.classes.iter().any(|s| s == name)
}

/// List classes of service, by name.
#[utoipa::path(get, path = "/classes", tag = "classes", params(PageQuery),
    responses((status = 200, body = schema::ClassPage), Errors))]
async fn list_classes(
    State(app): State<App>,
    Extension(c): Extension<Caller>,
    Q(q): Q<PageQuery>,
) -> Result<Response, ApiError> {
    let page = q.page()?;
    let mut p = blocking(move || Ok(app.svc.store.list_classes(&page)?)).await?;
    p.items.retain(|k| class_in_scope(&c, &k.spec.name));
    Ok(axum::Json(p).into_response())
}

/// One class of service.
#[utoipa::path(get, path = "/classes/{name}", tag = "classes",
    params(("name" = String, Path, description = "The class's name", pattern = r"^[A-Za-z0-9_.-]{1,64}$")),
    responses((status = 200, body = schema::ClassOfService, headers(("ETag" = String))), Errors))]
async fn get_class(
    State(app): State<App>,
    Extension(c): Extension<Caller>,
    Path(name): Path<String>,
) -> Result<Response, ApiError> {
    let k = blocking(move || {
        app.svc
            .store
            .get_class(&name)?
            .filter(|k| class_in_scope(&c, &k.spec.name))
            .ok_or_else(|| ApiError::not_found(format!("no such class {name:?}")))
    })
    .await?;
    Ok(tagged(StatusCode::OK, k.version, &k))
}

/// Creates or replaces a class of service; its devices' next files use it.
#[utoipa::path(put, path = "/classes/{name}", tag = "classes",
    params(("name" = String, Path, description = "The class's name", pattern = r"^[A-Za-z0-9_.-]{1,64}$"),
        ("If-Match" = Option<String>, Header, description = "\"<version>\"", nullable = false, pattern = r#"^(\*|(W/)?"[0-9]{1,19}"|[0-9]{1,19})$"#),
        ("If-None-Match" = Option<schema::Star>, Header, description = "*: create only", nullable = false)),
    request_body = schema::ClassSpec,
    responses((status = 200, body = schema::ClassOfService, headers(("ETag" = String))), Errors))]
async fn put_class(
    State(app): State<App>,
    Extension(c): Extension<Caller>,
    Path(name): Path<String>,
    headers: HeaderMap,
    JsonBody(body): JsonBody,
) -> Result<Response, ApiError> {
    c.require(TokenRole::Operator)?;
    if !class_in_scope(&c, &name) {
        return Err(ApiError::forbidden(format!(
            "class {name:?} is outside the token's scope"
        )));
    }
    let expect = expect_of(&headers)?;
    let spec: ClassSpec = decode(with_key(body, "name", &name)?)?;
    let k = blocking(move || Ok(app.svc.store.put_class(&spec, expect, &c.actor())?)).await?;
    Ok(tagged(StatusCode::OK, k.version, &k))
}

/// Deletes a class of service (409 while devices name it).
#[utoipa::path(delete, path = "/classes/{name}", tag = "classes",
    params(("name" = String, Path, description = "The class's name", pattern = r"^[A-Za-z0-9_.-]{1,64}$"),
        ("If-Match" = Option<String>, Header, description = "\"<version>\"", nullable = false, pattern = r#"^(\*|(W/)?"[0-9]{1,19}"|[0-9]{1,19})$"#)),
    responses((status = 204, description = "Deleted"), Errors))]
async fn delete_class(
    State(app): State<App>,
    Extension(c): Extension<Caller>,
    Path(name): Path<String>,
    headers: HeaderMap,
) -> Result<StatusCode, ApiError> {
    c.require(TokenRole::Operator)?;
    if !class_in_scope(&c, &name) {
        return Err(ApiError::forbidden(format!(
            "class {name:?} is outside the token's scope"
        )));
    }
    let expect = expect_of(&headers)?;
    blocking(move || Ok(app.svc.store.delete_class(&name, expect, &c.actor())?)).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub(crate) struct MacPageQuery {
    /// The previous page's `next` (a MAC).
    #[param(pattern = r"^(([0-9A-Fa-f][:.-]?){11}[0-9A-Fa-f])?$")]
    after: Option<String>,
    /// At most this many (default 100, at most 1000).
    #[param(minimum = 0, maximum = 1000)]
    limit: Option<u32>,
}

/// List reservations, by MAC.
#[utoipa::path(get, path = "/reservations", tag = "reservations", params(MacPageQuery),
    responses((status = 200, body = schema::ReservationPage), Errors))]
async fn list_reservations(
    State(app): State<App>,
    Extension(c): Extension<Caller>,
    Q(q): Q<MacPageQuery>,
) -> Result<Response, ApiError> {
    let page = PageQuery {
        after: q.after,
        limit: q.limit,
    }
    .page()?;
    let p = blocking(move || {
        let mut p = app.svc.store.list_reservations(&page)?;
        if !c.token.scope.is_unlimited() {
            let mut keep = Vec::with_capacity(p.items.len());
            for r in p.items {
                if visible(&app, &c, r.spec.mac)?.is_some() {
                    keep.push(r);
                }
            }
            p.items = keep;
        }
        Ok(p)
    })
    .await?;
    Ok(axum::Json(p).into_response())
}

/// One reservation.
#[utoipa::path(get, path = "/reservations/{mac}", tag = "reservations",
    params(("mac" = String, Path, description = "The device's MAC", pattern = r"^([0-9A-Fa-f][:.-]?){11}[0-9A-Fa-f]$")),
    responses((status = 200, body = schema::Reservation, headers(("ETag" = String))), Errors))]
async fn get_reservation(
    State(app): State<App>,
    Extension(c): Extension<Caller>,
    Path(mac): Path<String>,
) -> Result<Response, ApiError> {
    let mac = parse_mac("mac", &mac)?;
    let r = blocking(move || {
        let r = app.svc.store.get_reservation(mac)?;
        if r.is_some() && !c.token.scope.is_unlimited() && visible(&app, &c, mac)?.is_none() {
            return Ok(None);
        }
        Ok(r)
    })
    .await?
    .ok_or_else(|| ApiError::not_found(format!("no reservation for {mac}")))?;
    Ok(tagged(StatusCode::OK, r.version, &r))
}

/// Creates or replaces a reservation; the device's next DISCOVER gets the address.
#[utoipa::path(put, path = "/reservations/{mac}", tag = "reservations",
    params(("mac" = String, Path, description = "The device's MAC", pattern = r"^([0-9A-Fa-f][:.-]?){11}[0-9A-Fa-f]$"),
        ("If-Match" = Option<String>, Header, description = "\"<version>\"", nullable = false, pattern = r#"^(\*|(W/)?"[0-9]{1,19}"|[0-9]{1,19})$"#),
        ("If-None-Match" = Option<schema::Star>, Header, description = "*: create only", nullable = false)),
    request_body = schema::ReservationSpec,
    responses((status = 200, body = schema::Reservation, headers(("ETag" = String))), Errors))]
async fn put_reservation(
    State(app): State<App>,
    Extension(c): Extension<Caller>,
    Path(mac): Path<String>,
    headers: HeaderMap,
    JsonBody(body): JsonBody,
) -> Result<Response, ApiError> {
    c.require(TokenRole::Operator)?;
    let mac = parse_mac("mac", &mac)?;
    let expect = expect_of(&headers)?;
    let spec: ReservationSpec = decode(with_key(body, "mac", &mac.to_string())?)?;
    let r = blocking(move || {
        may_write(&app, &c, mac, None)?;
        Ok(app.svc.store.put_reservation(&spec, expect, &c.actor())?)
    })
    .await?;
    Ok(tagged(StatusCode::OK, r.version, &r))
}

/// Deletes a reservation.
#[utoipa::path(delete, path = "/reservations/{mac}", tag = "reservations",
    params(("mac" = String, Path, description = "The device's MAC", pattern = r"^([0-9A-Fa-f][:.-]?){11}[0-9A-Fa-f]$"),
        ("If-Match" = Option<String>, Header, description = "\"<version>\"", nullable = false, pattern = r#"^(\*|(W/)?"[0-9]{1,19}"|[0-9]{1,19})$"#)),
    responses((status = 204, description = "Deleted"), Errors))]
async fn delete_reservation(
    State(app): State<App>,
    Extension(c): Extension<Caller>,
    Path(mac): Path<String>,
    headers: HeaderMap,
) -> Result<StatusCode, ApiError> {
    c.require(TokenRole::Operator)?;
    let mac = parse_mac("mac", &mac)?;
    let expect = expect_of(&headers)?;
    blocking(move || {
        may_write(&app, &c, mac, None)?;
        Ok(app.svc.store.delete_reservation(mac, expect, &c.actor())?)
    })
    .await?;
    Ok(StatusCode::NO_CONTENT)
}

// ---- leases ----

/// Live leases by MAC, address, relay, remote-id or subscriber, by MAC a page at a time.
#[utoipa::path(get, path = "/leases", tag = "leases", params(LeaseQuery),
    responses((status = 200, body = schema::LeasePage), Errors))]
async fn search_leases(
    State(app): State<App>,
    Extension(c): Extension<Caller>,
    Q(mut q): Q<LeaseQuery>,
) -> Result<Response, ApiError> {
    let limit = limit_of(q.limit)?;
    q.relays_any = c.token.scope.relays.clone();
    let items = blocking(move || {
        let mut items = app.svc.leases.search(&q, limit);
        if !c.token.scope.classes.is_empty() {
            let mut keep = Vec::with_capacity(items.len());
            for l in items {
                if visible(&app, &c, l.mac)?.is_some() {
                    keep.push(l);
                }
            }
            items = keep;
        }
        Ok(items)
    })
    .await?;
    let next = (items.len() == limit as usize)
        .then(|| items.last().map(|l| l.mac.to_string()))
        .flatten();
    Ok(axum::Json(serde_json::json!({ "items": items, "next": next })).into_response())
}

/// Releases a device's lease, as its DHCPRELEASE would (recorded in its timeline).
#[utoipa::path(post, path = "/leases/{mac}/release", tag = "leases",
    params(("mac" = String, Path, description = "The device's MAC", pattern = r"^([0-9A-Fa-f][:.-]?){11}[0-9A-Fa-f]$")),
    responses((status = 204, description = "Released"), Errors))]
async fn release_lease(
    State(app): State<App>,
    Extension(c): Extension<Caller>,
    Path(mac): Path<String>,
) -> Result<StatusCode, ApiError> {
    c.require(TokenRole::Operator)?;
    let mac = parse_mac("mac", &mac)?;
    blocking(move || {
        may_write(&app, &c, mac, None)?;
        app.svc.leases.release(mac)?;
        let ev = NewEvent {
            mac,
            at: i64::try_from(clock::unix_millis()).unwrap_or(i64::MAX),
            source: Source::Api,
            kind: "lease-released".into(),
            detail: serde_json::json!({ "by": c.actor().to_string() }),
        };
        Ok(app.svc.store.append_events(&[ev])?)
    })
    .await?;
    Ok(StatusCode::NO_CONTENT)
}

// ---- MTA records, syslog (templates: `templates`) ----

/// 404 for a scoped caller and a device outside its scope.
pub(crate) async fn check_visible(app: &App, c: &Caller, mac: Mac) -> Result<(), ApiError> {
    if c.token.scope.is_unlimited() {
        return Ok(());
    }
    let (app, c) = (app.clone(), c.clone());
    match blocking(move || visible(&app, &c, mac)).await? {
        Some(_) => Ok(()),
        None => Err(ApiError::not_found(format!("no such device {mac}"))),
    }
}

/// An MTA's provisioning record (each flow step with its time), persisted across restarts.
#[utoipa::path(get, path = "/mta/{mac}", tag = "mta",
    params(("mac" = String, Path, description = "The MTA's MAC", pattern = r"^([0-9A-Fa-f][:.-]?){11}[0-9A-Fa-f]$")),
    responses((status = 200, body = Object), Errors))]
async fn mta_record(
    State(app): State<App>,
    Extension(c): Extension<Caller>,
    Path(mac): Path<String>,
) -> Result<Response, ApiError> {
    let mac = parse_mac("mac", &mac)?;
    check_visible(&app, &c, mac).await?;
    let r = app
        .svc
        .roles
        .mta_record(mac)
        .ok_or_else(|| ApiError::not_found(format!("no MTA record for {mac}")))?;
    Ok(axum::Json(r).into_response())
}

/// Syslog events, newest first, by device MAC or address.
#[utoipa::path(get, path = "/syslog/events", tag = "syslog", params(SyslogQuery),
    responses((status = 200, body = schema::ObjectList), Errors))]
async fn syslog_events(
    State(app): State<App>,
    Extension(c): Extension<Caller>,
    Q(q): Q<SyslogQuery>,
) -> Result<Response, ApiError> {
    if !c.token.scope.is_unlimited() {
        let mac = q.mac.ok_or_else(|| {
            ApiError::forbidden("a scoped token names the device (mac)").field("mac")
        })?;
        check_visible(&app, &c, mac).await?;
    }
    let limit = limit_of(q.limit)?;
    let roles = Arc::clone(&app.svc.roles);
    let items = blocking(move || Ok(roles.syslog_events(&q, limit))).await?;
    Ok(axum::Json(serde_json::json!({ "items": items })).into_response())
}

// ---- audit, tokens, stats, config ----

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub(crate) struct AuditQuery {
    /// `device`, `subscriber`, `class`, `reservation`, `token`, or a document collection.
    resource: Option<String>,
    /// The record's key.
    key: Option<String>,
    /// `token:NAME`, `cli:USER`, `system`.
    who: Option<String>,
    /// Entries older than this id (the previous page's `next`).
    before: Option<i64>,
    /// At most this many (default 100, at most 1000).
    #[param(minimum = 0, maximum = 1000)]
    limit: Option<u32>,
}

/// The audit log, newest first (operator and admin).
#[utoipa::path(get, path = "/audit", tag = "audit", params(AuditQuery),
    responses((status = 200, body = schema::AuditPage), Errors))]
async fn audit_log(
    State(app): State<App>,
    Extension(c): Extension<Caller>,
    Q(q): Q<AuditQuery>,
) -> Result<Response, ApiError> {
    c.require(TokenRole::Operator)?;
    let limit = limit_of(q.limit)?;
    let filter = AuditFilter {
        resource: q.resource,
        key: q.key,
        who: q.who,
    };
    let items = blocking(move || Ok(app.svc.store.audit_log(&filter, q.before, limit)?)).await?;
    let next = (items.len() == limit as usize)
        .then(|| items.last().map(|e| e.id))
        .flatten();
    Ok(axum::Json(serde_json::json!({ "items": items, "next": next })).into_response())
}

/// Every token (never their secrets). Admin only.
#[utoipa::path(get, path = "/tokens", tag = "tokens",
    responses((status = 200, body = Vec<schema::Token>), Errors))]
async fn list_tokens(
    State(app): State<App>,
    Extension(c): Extension<Caller>,
) -> Result<Response, ApiError> {
    c.require(TokenRole::Admin)?;
    let t = blocking(move || Ok(app.svc.store.list_tokens()?)).await?;
    Ok(axum::Json(t).into_response())
}

/// Creates a token; its secret is in this answer and nowhere else. Admin only.
#[utoipa::path(post, path = "/tokens", tag = "tokens", request_body = schema::TokenSpec,
    responses((status = 201, body = schema::TokenCreated), Errors))]
async fn create_token(
    State(app): State<App>,
    Extension(c): Extension<Caller>,
    JsonBody(body): JsonBody,
) -> Result<Response, ApiError> {
    c.require(TokenRole::Admin)?;
    if let Some(o) = body.as_object()
        && let Some(k) = o
            .keys()
            .find(|k| !matches!(k.as_str(), "name" | "role" | "scope"))
    {
        return Err(ApiError::invalid(k.clone(), format!("unknown field `{k}`")));
    }
    if let Some(k) = body.get("scope").and_then(|s| s.as_object()).and_then(|o| {
        o.keys()
            .find(|k| !matches!(k.as_str(), "relays" | "classes"))
    }) {
        return Err(ApiError::invalid(
            format!("scope.{k}"),
            format!("unknown field `{k}`"),
        ));
    }
    let mut spec: TokenSpec = decode(body)?;
    let secret = crate::new_secret().map_err(|e| ApiError::backend(format!("random: {e}")))?;
    spec.hash = crate::token_hash(&secret);
    let t = blocking(move || Ok(app.svc.store.put_token(&spec, &c.actor())?)).await?;
    Ok((
        StatusCode::CREATED,
        axum::Json(serde_json::json!({ "token": t, "secret": secret })),
    )
        .into_response())
}

/// The caller's own token (name, role, scope): what a client (the web UI's login) shows and
/// decides its controls by. Any role.
#[utoipa::path(get, path = "/whoami", tag = "tokens",
    responses((status = 200, body = schema::Token), Errors))]
async fn whoami(Extension(c): Extension<Caller>) -> Response {
    axum::Json(c.token).into_response()
}

/// Deletes a token; it stops working at once. Admin only.
#[utoipa::path(delete, path = "/tokens/{id}", tag = "tokens",
    params(("id" = String, Path, description = "The token's name", pattern = r"^[A-Za-z0-9_.-]{1,64}$")),
    responses((status = 204, description = "Deleted"), Errors))]
async fn delete_token(
    State(app): State<App>,
    Extension(c): Extension<Caller>,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    c.require(TokenRole::Admin)?;
    let a = app.clone();
    blocking(move || Ok(a.svc.store.delete_token(&id, &c.actor())?)).await?;
    app.tokens.clear();
    Ok(StatusCode::NO_CONTENT)
}

/// The store's sizes, every role's counters and its health.
#[utoipa::path(get, path = "/stats", tag = "stats",
    responses((status = 200, body = schema::Stats), Errors))]
async fn stats(State(app): State<App>) -> Result<Response, ApiError> {
    let (backend, counts, roles, health) = blocking(move || {
        Ok((
            app.svc.store.backend(),
            app.svc.store.counts()?,
            app.svc.roles.stats(),
            app.svc.roles.health(),
        ))
    })
    .await?;
    Ok(axum::Json(serde_json::json!({
        "backend": backend.as_str(),
        "store": counts,
        "roles": roles,
        "health": health,
    }))
    .into_response())
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub(crate) struct ReloadQuery {
    /// Apply even if bound leases would be orphaned.
    #[serde(default)]
    force: bool,
    /// Only show what would change.
    #[serde(default)]
    dry_run: bool,
}

/// Re-reads the config file: validates it, shows what changes, applies it without dropping a
/// lease. Refused (409 `orphaned_leases`, the report in `detail`) when bound leases would be
/// orphaned, unless `force`. Admin only.
#[utoipa::path(post, path = "/config/reload", tag = "config", params(ReloadQuery),
    responses((status = 200, body = crate::ReloadReport), Errors))]
async fn reload_config(
    State(app): State<App>,
    Extension(c): Extension<Caller>,
    Q(q): Q<ReloadQuery>,
) -> Result<Response, ApiError> {
    c.require(TokenRole::Admin)?;
    let report = app.svc.actions.reload(q.force, q.dry_run).await?;
    if !report.applied && !q.dry_run && !report.orphaned.is_empty() {
        let detail = serde_json::to_value(&report).unwrap_or_default();
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "orphaned_leases",
            format!(
                "the new config would orphan {} bound lease(s); not applied (force=true to apply)",
                report.orphaned.len()
            ),
        )
        .detail(detail));
    }
    Ok(axum::Json(report).into_response())
}
