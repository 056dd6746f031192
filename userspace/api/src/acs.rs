//! The ACS's task API under `/api/v1/acs/...`: each documented route hands the request, with
//! its path mapped to the task API's own (`/api/v1/acs/tasks/7` → `/api/tasks/7`), to the
//! router the ACS role gave ([`Services::acs`](crate::Services::acs)), after this API's
//! authentication and roles.

use axum::Extension;
use axum::extract::{Path, Request, State};
use axum::http::{StatusCode, Uri};
use axum::response::Response;
use provd_store::TokenRole;
use tower::ServiceExt;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::auth::Caller;
use crate::routes::Errors;
use crate::{ApiError, App};

pub(crate) fn routes() -> OpenApiRouter<App> {
    OpenApiRouter::new()
        .routes(routes!(acs_stats))
        .routes(routes!(acs_campaigns))
        .routes(routes!(acs_presets))
        .routes(routes!(acs_devices))
        .routes(routes!(acs_device))
        .routes(routes!(acs_device_task))
        .routes(routes!(acs_connection_request))
        .routes(routes!(acs_bulk_task))
        .routes(routes!(acs_task))
}

async fn forward(app: &App, c: &Caller, req: Request) -> Result<Response, ApiError> {
    if req.method() != axum::http::Method::GET {
        c.require(TokenRole::Operator)?;
    }
    if !c.token.scope.is_unlimited() {
        return Err(ApiError::forbidden(
            "the ACS task API is not scoped; it needs a token without a scope",
        ));
    }
    let Some(acs) = app.svc.acs.clone() else {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "not_configured",
            "no ACS role is configured ([acs])",
        ));
    };
    let pq = req
        .uri()
        .path_and_query()
        .map_or("/", |p| p.as_str())
        .to_owned();
    // Inside the nest the URI has lost `/api/v1`; either way, what follows `/acs` is the
    // task API's own path.
    let rest = pq.strip_prefix("/api/v1").unwrap_or(&pq);
    let rest = rest.strip_prefix("/acs").unwrap_or(rest);
    let uri: Uri = format!("/api{rest}")
        .parse()
        .map_err(|e| ApiError::invalid("path", format!("{e}")))?;
    // A fresh request: this router's matched path and path parameters must not reach the
    // task API's own extractors; the client's connection (`Peer`) does.
    let (parts, body) = req.into_parts();
    let mut fwd = Request::new(body);
    *fwd.method_mut() = parts.method;
    *fwd.uri_mut() = uri;
    *fwd.headers_mut() = parts.headers;
    if let Some(p) = parts.extensions.get::<provd_web::Peer>() {
        fwd.extensions_mut().insert(p.clone());
    }
    let answer = match acs.oneshot(fwd).await {
        Ok(r) => r,
        Err(e) => match e {},
    };
    if answer.status().is_success() {
        return Ok(answer);
    }
    Err(task_api_error(answer).await)
}

/// The task API says what went wrong as `{"error": "..."}`; this API's errors carry a stable
/// code and a message ([`crate::ErrorBody`]), whichever route they come from.
async fn task_api_error(answer: Response) -> ApiError {
    let status = answer.status();
    let body = axum::body::to_bytes(answer.into_body(), 64 * 1024)
        .await
        .unwrap_or_default();
    let message = serde_json::from_slice::<serde_json::Value>(&body)
        .ok()
        .and_then(|v| v.get("error").and_then(|e| e.as_str()).map(str::to_owned))
        .unwrap_or_else(|| String::from_utf8_lossy(&body).trim().to_owned());
    let message = if message.is_empty() {
        status.canonical_reason().unwrap_or("error").to_owned()
    } else {
        message
    };
    let code = match status {
        StatusCode::NOT_FOUND => "not_found",
        StatusCode::BAD_REQUEST | StatusCode::UNPROCESSABLE_ENTITY => "invalid",
        StatusCode::CONFLICT => "conflict",
        StatusCode::PAYLOAD_TOO_LARGE => "too_large",
        StatusCode::UNSUPPORTED_MEDIA_TYPE => "unsupported_media_type",
        StatusCode::SERVICE_UNAVAILABLE => "unavailable",
        s if s.is_server_error() => "failed",
        _ => "refused",
    };
    ApiError::new(status, code, message)
}

/// The ACS's counters.
#[utoipa::path(get, path = "/acs/stats", tag = "acs",
    responses((status = 200, body = Object), Errors))]
async fn acs_stats(
    State(app): State<App>,
    Extension(c): Extension<Caller>,
    req: Request,
) -> Result<Response, ApiError> {
    forward(&app, &c, req).await
}

/// Firmware campaigns and their progress.
#[utoipa::path(get, path = "/acs/campaigns", tag = "acs",
    responses((status = 200, body = Vec<Object>), Errors))]
async fn acs_campaigns(
    State(app): State<App>,
    Extension(c): Extension<Caller>,
    req: Request,
) -> Result<Response, ApiError> {
    forward(&app, &c, req).await
}

/// The declarative presets (`[[acs.preset]]`): what each matches and the values it keeps set.
#[utoipa::path(get, path = "/acs/presets", tag = "acs",
    responses((status = 200, body = Vec<Object>), Errors))]
async fn acs_presets(
    State(app): State<App>,
    Extension(c): Extension<Caller>,
    req: Request,
) -> Result<Response, ApiError> {
    forward(&app, &c, req).await
}

/// ACS device ids matching a filter (`serial`, `oui`, `product_class`, `*` wildcards).
#[utoipa::path(get, path = "/acs/devices", tag = "acs",
    params(("serial" = Option<String>, Query, description = "Serial number, `*` wildcards"),
        ("oui" = Option<String>, Query, description = "OUI"),
        ("product_class" = Option<String>, Query, description = "Product class")),
    responses((status = 200, body = Vec<String>), Errors))]
async fn acs_devices(
    State(app): State<App>,
    Extension(c): Extension<Caller>,
    req: Request,
) -> Result<Response, ApiError> {
    forward(&app, &c, req).await
}

/// One ACS device: its record, parameters and queued tasks.
#[utoipa::path(get, path = "/acs/devices/{id}", tag = "acs",
    params(("id" = String, Path, description = "TR-069 DeviceId, OUI-ProductClass-Serial")),
    responses((status = 200, body = Object), Errors))]
async fn acs_device(
    State(app): State<App>,
    Extension(c): Extension<Caller>,
    req: Request,
) -> Result<Response, ApiError> {
    forward(&app, &c, req).await
}

/// Queues a task (an RPC: `{"method": "SetParameterValues", "values": [{"name", "value",
/// "type"}]}`, `Reboot`, `Download` ...) for a device; types may be `xsd:`-prefixed.
#[utoipa::path(post, path = "/acs/devices/{id}/tasks", tag = "acs",
    params(("id" = String, Path, description = "TR-069 DeviceId"),
        ("connection_request" = Option<String>, Query, description = "`http` or `udp`: wake the device now")),
    request_body = Object,
    responses((status = 200, body = Object), Errors))]
async fn acs_device_task(
    State(app): State<App>,
    Extension(c): Extension<Caller>,
    Path(id): Path<String>,
    req: Request,
) -> Result<Response, ApiError> {
    let by = c.actor().to_string();
    let (parts, body) = req.into_parts();
    let sent = axum::body::to_bytes(body, 1 << 20)
        .await
        .map_err(|e| ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, "too_large", e.to_string()))?;
    let method = serde_json::from_slice::<serde_json::Value>(&sent)
        .ok()
        .and_then(|v| v["method"].as_str().map(str::to_owned));
    let req = Request::from_parts(parts, axum::body::Body::from(sent));
    let answer = forward(&app, &c, req).await?;
    // The task in the timeline of the device whose record has this DeviceId (a CPE provd
    // has no record of has no timeline).
    let (parts, body) = answer.into_parts();
    let body = axum::body::to_bytes(body, 1 << 20)
        .await
        .map_err(|e| ApiError::backend(format!("the ACS's answer: {e}")))?;
    let store = std::sync::Arc::clone(&app.svc.store);
    let device_id = id.clone();
    let mac = crate::extract::blocking(move || {
        let filter = provd_store::DeviceFilter {
            device_id: Some(device_id),
            ..provd_store::DeviceFilter::default()
        };
        let page = provd_store::PageRequest {
            after: None,
            limit: 1,
        };
        Ok(store
            .list_devices(&filter, &page)?
            .items
            .first()
            .map(|d| d.spec.mac))
    })
    .await?;
    if let Some(mac) = mac {
        let answer: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
        crate::routes::device_event(
            &app,
            mac,
            "cwmp-task-queued",
            serde_json::json!({ "by": by, "device_id": id, "method": method,
                "task": answer["task"] }),
        )
        .await;
    }
    Ok(Response::from_parts(parts, axum::body::Body::from(body)))
}

/// Wakes a device now (connection request).
#[utoipa::path(post, path = "/acs/devices/{id}/connection-request", tag = "acs",
    params(("id" = String, Path, description = "TR-069 DeviceId")),
    responses((status = 200, body = Object), Errors))]
async fn acs_connection_request(
    State(app): State<App>,
    Extension(c): Extension<Caller>,
    req: Request,
) -> Result<Response, ApiError> {
    forward(&app, &c, req).await
}

/// Queues a task for every device a filter matches (`{"filter": {...}, "task": {...}}`).
#[utoipa::path(post, path = "/acs/tasks", tag = "acs", request_body = Object,
    responses((status = 200, body = Object), Errors))]
async fn acs_bulk_task(
    State(app): State<App>,
    Extension(c): Extension<Caller>,
    req: Request,
) -> Result<Response, ApiError> {
    forward(&app, &c, req).await
}

/// One task: its state and the device's answer.
#[utoipa::path(get, path = "/acs/tasks/{n}", tag = "acs",
    params(("n" = u64, Path, description = "The task's number")),
    responses((status = 200, body = Object), Errors))]
async fn acs_task(
    State(app): State<App>,
    Extension(c): Extension<Caller>,
    req: Request,
) -> Result<Response, ApiError> {
    forward(&app, &c, req).await
}
