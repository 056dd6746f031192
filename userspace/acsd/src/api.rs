//! The task API (`[acs] admin_bind`/`admin_port`): JSON over HTTP for operators and tests.
//! See the crate documentation for the routes.

use std::sync::Arc;
use std::time::Instant;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use provd_acs::{DeviceKey, Filter};
use provd_cwmp::Rpc;
use provd_role::clock;
use serde::Deserialize;

use crate::Acsd;
use crate::wake::wake;

/// The task API's router.
pub(crate) fn router(srv: &Arc<Acsd>) -> Router {
    Router::new()
        .route("/api/stats", get(stats))
        .route("/api/campaigns", get(campaigns))
        .route("/api/presets", get(presets))
        .route("/api/devices", get(devices))
        .route("/api/devices/{id}", get(device))
        .route("/api/devices/{id}/tasks", post(device_task))
        .route(
            "/api/devices/{id}/connection-request",
            post(connection_request),
        )
        .route("/api/tasks", post(bulk_task))
        .route("/api/tasks/{n}", get(task))
        .route("/api/seed", post(seed))
        .route("/api/snapshot", post(snapshot))
        .with_state(Arc::clone(srv))
}

fn json(v: serde_json::Value) -> Response {
    axum::Json(v).into_response()
}

fn not_found(what: &str) -> Response {
    (
        StatusCode::NOT_FOUND,
        axum::Json(serde_json::json!({"error": format!("no such {what}")})),
    )
        .into_response()
}

fn bad_request(msg: String) -> Response {
    (
        StatusCode::BAD_REQUEST,
        axum::Json(serde_json::json!({"error": msg})),
    )
        .into_response()
}

async fn stats(State(srv): State<Arc<Acsd>>) -> Response {
    let mut v = srv.acs.counters_json();
    v["open_sessions"] = (srv.sessions.len() / 2).into();
    v["stun_bindings"] = srv.stun.len().into();
    json(v)
}

async fn campaigns(State(srv): State<Arc<Acsd>>) -> Response {
    json(srv.acs.campaigns_json())
}

async fn presets(State(srv): State<Arc<Acsd>>) -> Response {
    json(srv.acs.presets_json())
}

#[derive(Deserialize)]
struct DeviceQuery {
    oui: Option<String>,
    product_class: Option<String>,
    serial: Option<String>,
    limit: Option<usize>,
}

async fn devices(State(srv): State<Arc<Acsd>>, Query(q): Query<DeviceQuery>) -> Response {
    let limit = q.limit.unwrap_or(1000).min(100_000);
    let glob = q.serial.as_deref().map(provd_config::Glob::new);
    let names = &srv.acs.store.names;
    let mut out = Vec::new();
    for e in srv.acs.store.devices.iter() {
        if out.len() >= limit {
            break;
        }
        let k = e.key();
        if q.oui
            .as_deref()
            .is_some_and(|o| names.get(o) != Some(k.oui))
            || q.product_class
                .as_deref()
                .is_some_and(|p| names.get(p) != Some(k.product_class))
            || glob
                .as_ref()
                .is_some_and(|g| !g.matches(k.serial.as_bytes()))
        {
            continue;
        }
        out.push(srv.acs.store.display(k));
    }
    json(out.into())
}

fn key_of(srv: &Acsd, id: &str) -> Option<DeviceKey> {
    srv.acs
        .store
        .parse_display(id)
        .filter(|k| srv.acs.store.devices.contains_key(k))
}

async fn device(State(srv): State<Arc<Acsd>>, Path(id): Path<String>) -> Response {
    match key_of(&srv, &id).and_then(|k| srv.acs.device_json(&k)) {
        Some(v) => json(v),
        None => not_found("device"),
    }
}

/// A task as the API takes it.
#[derive(Debug, Deserialize)]
#[serde(tag = "method", deny_unknown_fields)]
enum TaskSpec {
    GetParameterValues {
        names: Vec<String>,
    },
    SetParameterValues {
        values: Vec<SpvValue>,
        #[serde(default)]
        parameter_key: String,
    },
    GetParameterNames {
        path: String,
        #[serde(default)]
        next_level: bool,
    },
    GetParameterAttributes {
        names: Vec<String>,
    },
    SetParameterAttributes {
        parameters: Vec<SpaValue>,
    },
    AddObject {
        object_name: String,
        #[serde(default)]
        parameter_key: String,
    },
    DeleteObject {
        object_name: String,
        #[serde(default)]
        parameter_key: String,
    },
    Reboot {
        #[serde(default)]
        command_key: String,
    },
    FactoryReset,
    Download {
        url: String,
        #[serde(default = "firmware_type")]
        file_type: String,
        #[serde(default)]
        file_size: u32,
        #[serde(default)]
        command_key: String,
        #[serde(default)]
        username: String,
        #[serde(default)]
        password: String,
        #[serde(default)]
        delay_seconds: u32,
    },
    Upload {
        url: String,
        #[serde(default = "config_type")]
        file_type: String,
        #[serde(default)]
        command_key: String,
    },
    ScheduleInform {
        delay_seconds: u32,
        #[serde(default)]
        command_key: String,
    },
    GetRPCMethods,
}

fn firmware_type() -> String {
    "1 Firmware Upgrade Image".into()
}

fn config_type() -> String {
    "1 Vendor Configuration File".into()
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SpvValue {
    name: String,
    value: serde_json::Value,
    #[serde(default, rename = "type")]
    ty: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SpaValue {
    name: String,
    notification: u8,
}

impl TaskSpec {
    fn into_rpc(self) -> Result<Rpc, String> {
        use provd_cwmp::{Download, ParameterValue, SetParameterAttribute, Upload};
        Ok(match self {
            TaskSpec::GetParameterValues { names } => Rpc::GetParameterValues { names },
            TaskSpec::SetParameterValues {
                values,
                parameter_key,
            } => Rpc::SetParameterValues {
                parameters: values
                    .into_iter()
                    .map(|v| {
                        let (text, ty) = match v.value {
                            serde_json::Value::String(s) => (s, "string"),
                            serde_json::Value::Bool(b) => (b.to_string(), "boolean"),
                            serde_json::Value::Number(n) if n.is_u64() => {
                                (n.to_string(), "unsignedInt")
                            }
                            serde_json::Value::Number(n) => (n.to_string(), "int"),
                            other => {
                                return Err(format!(
                                    "{}: a value is a string, number or boolean, not {other}",
                                    v.name
                                ));
                            }
                        };
                        // GenieACS writes the namespace prefix (`xsd:unsignedInt`); the
                        // envelope declares `xsd` itself, so the local name is what is kept.
                        let ty = match v.ty {
                            Some(t) => t.strip_prefix("xsd:").map(str::to_owned).unwrap_or(t),
                            None => ty.to_owned(),
                        };
                        if ty.is_empty() || !ty.bytes().all(|b| b.is_ascii_alphanumeric()) {
                            return Err(format!("{}: bad type {ty:?}", v.name));
                        }
                        Ok(ParameterValue {
                            name: v.name,
                            value: text,
                            ty,
                        })
                    })
                    .collect::<Result<_, _>>()?,
                parameter_key,
            },
            TaskSpec::GetParameterNames { path, next_level } => {
                Rpc::GetParameterNames { path, next_level }
            }
            TaskSpec::GetParameterAttributes { names } => Rpc::GetParameterAttributes { names },
            TaskSpec::SetParameterAttributes { parameters } => Rpc::SetParameterAttributes {
                parameters: parameters
                    .into_iter()
                    .map(|p| SetParameterAttribute {
                        name: p.name,
                        notification_change: true,
                        notification: p.notification,
                        access_list_change: false,
                        access_list: Vec::new(),
                    })
                    .collect(),
            },
            TaskSpec::AddObject {
                object_name,
                parameter_key,
            } => Rpc::AddObject {
                object_name,
                parameter_key,
            },
            TaskSpec::DeleteObject {
                object_name,
                parameter_key,
            } => Rpc::DeleteObject {
                object_name,
                parameter_key,
            },
            TaskSpec::Reboot { command_key } => Rpc::Reboot { command_key },
            TaskSpec::FactoryReset => Rpc::FactoryReset,
            TaskSpec::Download {
                url,
                file_type,
                file_size,
                command_key,
                username,
                password,
                delay_seconds,
            } => Rpc::Download(Box::new(Download {
                command_key,
                file_type,
                url,
                username,
                password,
                file_size,
                delay_seconds,
                ..Download::default()
            })),
            TaskSpec::Upload {
                url,
                file_type,
                command_key,
            } => Rpc::Upload(Box::new(Upload {
                command_key,
                file_type,
                url,
                ..Upload::default()
            })),
            TaskSpec::ScheduleInform {
                delay_seconds,
                command_key,
            } => Rpc::ScheduleInform {
                delay_seconds,
                command_key,
            },
            TaskSpec::GetRPCMethods => Rpc::GetRpcMethods,
        })
    }
}

fn parse_task(body: &[u8]) -> Result<Rpc, String> {
    let spec: TaskSpec = serde_json::from_slice(body).map_err(|e| format!("task: {e}"))?;
    spec.into_rpc()
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TaskQuery {
    /// `http` or `udp`: wake the device at once instead of waiting for its next Inform.
    connection_request: Option<String>,
}

async fn device_task(
    State(srv): State<Arc<Acsd>>,
    Path(id): Path<String>,
    Query(q): Query<TaskQuery>,
    body: Bytes,
) -> Response {
    let Some(key) = key_of(&srv, &id) else {
        return not_found("device");
    };
    let udp = match q.connection_request.as_deref() {
        None => None,
        Some("http" | "" | "1") => Some(false),
        Some("udp") => Some(true),
        Some(other) => {
            return bad_request(format!("connection_request={other:?}: say http or udp"));
        }
    };
    let rpc = match parse_task(&body) {
        Ok(r) => r,
        Err(e) => return bad_request(e),
    };
    let t = match srv.acs.queue_for(clock::unix_secs_u32(), &key, rpc) {
        Ok(t) => t,
        Err(e) => return queue_error(e),
    };
    // The task stays queued whatever the wake-up gives: the device picks it up at its next
    // session either way, and the answer says whether one was asked for now.
    let cr = match udp {
        None => serde_json::Value::Null,
        Some(udp) => match wake(&srv, &key, udp).await {
            Ok(v) => v,
            Err((code, mut v)) => {
                v["code"] = code.as_u16().into();
                v
            }
        },
    };
    json(serde_json::json!({"task": t, "connection_request": cr}))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Bulk {
    #[serde(default)]
    filter: Filter,
    task: serde_json::Value,
    limit: Option<usize>,
}

async fn bulk_task(State(srv): State<Arc<Acsd>>, body: Bytes) -> Response {
    let b: Bulk = match serde_json::from_slice(&body) {
        Ok(b) => b,
        Err(e) => return bad_request(format!("bulk task: {e}")),
    };
    let rpc = match parse_task(b.task.to_string().as_bytes()) {
        Ok(r) => r,
        Err(e) => return bad_request(e),
    };
    match srv.acs.queue_filtered(
        clock::unix_secs_u32(),
        &b.filter,
        &rpc,
        b.limit.unwrap_or(usize::MAX),
    ) {
        Ok(ids) => json(serde_json::json!({"queued": ids.len(), "tasks": ids})),
        Err(e) => queue_error(e),
    }
}

/// A task the ACS could not queue: no device (404), or the journal could not make it durable
/// (503: nothing was queued, the caller may retry).
fn queue_error(e: provd_acs::QueueError) -> Response {
    match e {
        provd_acs::QueueError::NoDevice => not_found("device"),
        provd_acs::QueueError::Journal(_) => {
            tracing::error!(error = %e, "ACS task refused");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                axum::Json(serde_json::json!({"error": e.to_string()})),
            )
                .into_response()
        }
    }
}

async fn task(State(srv): State<Arc<Acsd>>, Path(n): Path<u64>) -> Response {
    match srv.acs.task(n) {
        Some(t) => json(serde_json::to_value(t).unwrap_or_default()),
        None => not_found("task"),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Seed {
    count: u32,
    #[serde(default = "seed_oui")]
    oui: String,
    #[serde(default = "seed_pc")]
    product_class: String,
    #[serde(default = "seed_prefix")]
    serial_prefix: String,
    #[serde(default)]
    first: u32,
}

fn seed_oui() -> String {
    "00D09E".into()
}
fn seed_pc() -> String {
    "SIM".into()
}
fn seed_prefix() -> String {
    "SEED".into()
}

/// Registers `count` devices through the Inform path (no HTTP): each gets the parameters a
/// real boot Inform carries.
async fn seed(State(srv): State<Arc<Acsd>>, body: Bytes) -> Response {
    let s: Seed = match serde_json::from_slice(&body) {
        Ok(s) => s,
        Err(e) => return bad_request(format!("seed: {e}")),
    };
    let srv2 = Arc::clone(&srv);
    let r = tokio::task::spawn_blocking(move || {
        let now = clock::unix_secs_u32();
        let t = Instant::now();
        for i in s.first..s.first.saturating_add(s.count) {
            let inform = seed_inform(
                &s.oui,
                &s.product_class,
                &format!("{}{i:08}", s.serial_prefix),
                i,
            );
            let _ = srv2.acs.seed(now, &inform);
        }
        t.elapsed()
    })
    .await;
    match r {
        Ok(d) => json(
            serde_json::json!({"seeded": s.count, "ms": d.as_millis() as u64, "devices": srv.acs.store.len()}),
        ),
        Err(e) => bad_request(format!("seed failed: {e}")),
    }
}

/// The Inform of a freshly booted TR-181 device.
fn seed_inform(oui: &str, pc: &str, serial: &str, i: u32) -> provd_cwmp::Inform {
    let ip = std::net::Ipv4Addr::from(0x0a00_0000 | (i & 0x00ff_ffff));
    provd_cwmp::Inform::simulated(
        oui,
        pc,
        serial,
        "1 BOOT",
        format!("http://{ip}:7547/cr/{serial}"),
    )
}

async fn snapshot(State(srv): State<Arc<Acsd>>) -> Response {
    let s2 = Arc::clone(&srv);
    match tokio::task::spawn_blocking(move || s2.save_snapshot()).await {
        Ok(Ok(n)) => json(serde_json::json!({"devices": n})),
        Ok(Err(e)) => bad_request(format!("snapshot: {e}")),
        Err(e) => bad_request(format!("snapshot: {e}")),
    }
}

#[derive(Deserialize)]
struct CrQuery {
    udp: Option<u8>,
}

async fn connection_request(
    State(srv): State<Arc<Acsd>>,
    Path(id): Path<String>,
    Query(q): Query<CrQuery>,
) -> Response {
    let Some(key) = key_of(&srv, &id) else {
        return not_found("device");
    };
    match wake(&srv, &key, q.udp == Some(1)).await {
        Ok(v) => json(v),
        Err((code, v)) => (code, axum::Json(v)).into_response(),
    }
}
