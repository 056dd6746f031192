//! The TR-069 ACS role of `provd serve` (`[acs]`): CWMP over HTTP(S) on provd-web, the JSON
//! task API on a separate admin listener, connection requests (HTTP digest and TR-111 UDP),
//! the STUN binding server, and periodic snapshots of the device index and queued tasks.
//!
//! Sessions are found by cookie (`provd_session`, set on the first answer) and, for CPEs that
//! do not keep cookies, by the TCP connection (remote address and port). A session that stays
//! idle past `session_timeout_secs` is dropped and its outstanding request goes back to the
//! device's queue. Authentication is checked until it succeeds once in a session; a failed
//! check creates no session state at all.
//!
//! Task API (admin listener, JSON):
//! * `GET  /api/stats`, `GET /api/campaigns`
//! * `GET  /api/devices?oui=&product_class=&serial=&limit=` — ids of matching devices
//! * `GET  /api/devices/{id}` — record, cached parameters, events, queue (`id` is
//!   `OUI-ProductClass-Serial`)
//! * `POST /api/devices/{id}/tasks` with a task (`{"method": "GetParameterValues", "names": [..]}`)
//! * `POST /api/tasks` with `{"filter": {..}, "task": {..}}` — the same task for every match
//! * `GET  /api/tasks/{n}` — state, fault, result
//! * `POST /api/devices/{id}/connection-request` (`?udp=1` for TR-111 UDP)
//! * `POST /api/seed` with `{"count": N, ...}` — bulk registration for benchmarks
//! * `POST /api/snapshot` — write the snapshot now

use std::net::{SocketAddr, SocketAddrV4};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Extension, Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use dashmap::DashMap;
use provd_acs::auth::{self, Credentials, Digest, Verdict};
use provd_acs::cr::{self, RateLimit};
use provd_acs::{Acs, DeviceKey, Filter, SessionDevice};
use provd_config::{AcsAuth, AcsSettings};
use provd_cwmp::{Limits, Outcome, Rpc, Session, SessionState};
use provd_web::Peer;
use serde::Deserialize;
use tokio::net::{TcpListener, UdpSocket};

use crate::control::ControlPlane;

fn now_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

fn random_u64() -> u64 {
    let mut b = [0u8; 8];
    // getrandom only fails without an entropy source, which Linux always has after boot.
    getrandom::getrandom(&mut b).expect("the kernel's random source");
    u64::from_le_bytes(b)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum SessionKey {
    Cookie(u64),
    Conn(SocketAddr),
}

#[derive(Debug)]
struct Entry {
    session: Session,
    dev: SessionDevice,
    cookie: u64,
    conn: SocketAddr,
}

#[derive(Debug)]
enum Auth {
    None,
    Basic(Credentials),
    Digest(Digest),
}

/// Writes each emitted envelope to `dir` (debug / schema validation).
#[derive(Debug)]
struct Dump {
    dir: PathBuf,
    n: AtomicU64,
}

/// Everything the handlers share.
#[derive(Debug)]
pub struct Server {
    pub acs: Arc<Acs>,
    sessions: DashMap<SessionKey, Arc<Mutex<Entry>>, foldhash::fast::RandomState>,
    auth: Auth,
    dump: Option<Dump>,
    limits: Limits,
    cr_limit: Mutex<RateLimit>,
    cr_id: AtomicU64,
    /// STUN USERNAME -> mapped address (TR-111).
    stun: DashMap<String, SocketAddrV4>,
    udp: Option<Arc<UdpSocket>>,
    snapshot_dir: PathBuf,
    log_gate: provd_web::LogGate,
}

impl Server {
    /// At most 10 log lines a second for bad input.
    fn may_log(&self) -> bool {
        self.log_gate.allow().is_some()
    }
}

/// What `serve` keeps of the ACS.
#[derive(Debug)]
pub struct AcsHandle {
    pub server: Arc<Server>,
    pub cwmp_addrs: Vec<SocketAddr>,
    pub admin_addr: SocketAddr,
    pub stun_addr: Option<SocketAddr>,
}

impl AcsHandle {
    /// Writes the final snapshot.
    pub fn save(&self) {
        match provd_acs::persist::save(&self.server.acs, &self.server.snapshot_dir) {
            Ok(n) => tracing::info!(devices = n, "ACS snapshot written"),
            Err(e) => tracing::error!(error = %e, "ACS snapshot failed"),
        }
    }
}

/// Binds every ACS listener and starts its tasks on the control plane.
pub fn start(
    cp: &mut ControlPlane,
    s: &AcsSettings,
    lease_dir: &std::path::Path,
) -> Result<AcsHandle> {
    let acs = Arc::new(Acs::new(s.clone()));
    let snapshot_dir = lease_dir.join("acs");
    let t = Instant::now();
    let report = provd_acs::persist::load(&acs, &snapshot_dir)
        .with_context(|| format!("loading {}", snapshot_dir.display()))?;
    tracing::info!(
        devices = report.devices,
        tasks = report.tasks,
        from_journal = report.journal_tasks,
        bad_lines = report.bad_lines,
        ms = t.elapsed().as_millis() as u64,
        "ACS state restored"
    );
    let mut secret = [0u8; 32];
    getrandom::getrandom(&mut secret).map_err(|e| anyhow::anyhow!("random digest secret: {e}"))?;
    let mut creds: Vec<(String, String)> = s.credentials.clone();
    if !s.username.is_empty() {
        creds.push((s.username.clone(), s.password.clone()));
    }
    let auth = match s.auth {
        AcsAuth::None => Auth::None,
        AcsAuth::Basic => Auth::Basic(Credentials::new(creds)),
        AcsAuth::Digest => Auth::Digest(Digest::new(
            s.realm.clone(),
            secret,
            s.nonce_lifetime_secs,
            Credentials::new(creds),
        )),
    };
    let dump = match &s.dump_dir {
        Some(d) => {
            std::fs::create_dir_all(d).with_context(|| format!("creating {}", d.display()))?;
            Some(Dump {
                dir: d.clone(),
                n: AtomicU64::new(0),
            })
        }
        None => None,
    };
    let udp = match s.stun_port {
        Some(p) => Some(Arc::new(
            cp.block_on(UdpSocket::bind((s.bind, p)))
                .with_context(|| format!("binding STUN {}:{p}", s.bind))?,
        )),
        None => None,
    };
    let stun_addr = udp.as_ref().and_then(|u| u.local_addr().ok());
    let server = Arc::new(Server {
        acs: Arc::clone(&acs),
        sessions: DashMap::default(),
        auth,
        dump,
        limits: Limits::default(),
        cr_limit: Mutex::new(RateLimit::new(s.cr_per_second)),
        cr_id: AtomicU64::new(1),
        stun: DashMap::new(),
        udp: udp.clone(),
        snapshot_dir,
        log_gate: provd_web::LogGate::per_sec(10),
    });

    let tls = match &s.tls {
        Some((port, cert, key)) => Some((
            *port,
            provd_web::server_config(&provd_web::TlsFiles {
                cert: cert.clone(),
                key: key.clone(),
                client_ca: None,
                client_auth: provd_web::ClientAuth::Off,
            })
            .context("[acs] TLS")?,
        )),
        None => None,
    };
    let mut cwmp_addrs = Vec::new();
    let plain = std::iter::once(s.port)
        .chain(s.extra_ports.iter().copied())
        .map(|p| (p, None));
    let secure = tls.into_iter().map(|(p, c)| (p, Some(c)));
    for (port, tls) in plain.chain(secure) {
        let listener = cp
            .block_on(TcpListener::bind((s.bind, port)))
            .with_context(|| format!("binding the ACS on {}:{port}", s.bind))?;
        cwmp_addrs.push(listener.local_addr()?);
        let app = Router::new()
            .fallback(cwmp)
            .layer(axum::extract::DefaultBodyLimit::max(
                server.limits.max_bytes,
            ))
            .with_state(Arc::clone(&server));
        let opts = provd_web::ServeOptions {
            limits: provd_web::Limits {
                idle_timeout: Duration::from_secs(u64::from(s.session_timeout_secs).max(30)),
                ..provd_web::Limits::default()
            },
            counters: Arc::default(),
            access_log: false,
        };
        let stopping = cp.stopping();
        cp.spawn("acs-cwmp", async move {
            provd_web::serve_with(listener, tls, app, opts, stopping)
                .await
                .context("ACS listener")
        });
    }
    let admin = cp
        .block_on(TcpListener::bind((s.admin_bind, s.admin_port)))
        .with_context(|| {
            format!(
                "binding the ACS task API on {}:{}",
                s.admin_bind, s.admin_port
            )
        })?;
    let admin_addr = admin.local_addr()?;
    let api = Router::new()
        .route("/api/stats", get(stats))
        .route("/api/campaigns", get(campaigns))
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
        .with_state(Arc::clone(&server));
    let stopping = cp.stopping();
    cp.spawn("acs-api", async move {
        provd_web::serve(admin, None, api, provd_web::Limits::default(), stopping)
            .await
            .context("ACS task API")
    });
    if let Some(u) = udp {
        let srv = Arc::clone(&server);
        let stopping = cp.stopping();
        cp.spawn("acs-stun", async move {
            tokio::select! {
                () = stopping => Ok(()),
                r = stun_loop(srv, u) => r,
            }
        });
    }
    // Housekeeping: idle sessions, nonce counts, snapshots.
    let srv = Arc::clone(&server);
    let stopping = cp.stopping();
    let timeout = u64::from(s.session_timeout_secs);
    let snapshot_every = u64::from(s.snapshot_secs);
    cp.spawn("acs-sweep", async move {
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        let mut stopping = std::pin::pin!(stopping);
        let mut last_snapshot = Instant::now();
        let mut last_seen = (u64::MAX, 0usize);
        loop {
            tokio::select! {
                () = &mut stopping => return Ok(()),
                _ = tick.tick() => {}
            }
            let now = now_secs();
            sweep(&srv, now, timeout);
            if let Auth::Digest(d) = &srv.auth {
                d.sweep(now as u32);
            }
            if last_snapshot.elapsed() >= Duration::from_secs(snapshot_every) {
                last_snapshot = Instant::now();
                let seen = (
                    srv.acs.counters.informs.load(Ordering::Relaxed)
                        + srv.acs.counters.answers.load(Ordering::Relaxed),
                    srv.acs.store.len(),
                );
                if seen != last_seen {
                    last_seen = seen;
                    let s2 = Arc::clone(&srv);
                    let r = tokio::task::spawn_blocking(move || {
                        provd_acs::persist::save(&s2.acs, &s2.snapshot_dir)
                    })
                    .await;
                    if let Ok(Err(e)) = r {
                        tracing::warn!(error = %e, "ACS snapshot failed");
                    }
                }
            }
        }
    });
    Ok(AcsHandle {
        server,
        cwmp_addrs,
        admin_addr,
        stun_addr,
    })
}

fn sweep(srv: &Server, now: u64, timeout: u64) {
    let mut idle = Vec::new();
    srv.sessions.retain(|_, e| {
        let Ok(g) = e.try_lock() else { return true };
        let keep = g.session.idle(now) < timeout && g.session.state() != SessionState::Done;
        if !keep {
            idle.push(Arc::clone(e));
        }
        keep
    });
    for e in idle {
        let mut g = e.lock().unwrap_or_else(|p| p.into_inner());
        let g = &mut *g;
        let mut d = srv.acs.driver(&mut g.dev, 0, "");
        g.session.close(now, &mut d);
    }
}

fn cookie_of(headers: &HeaderMap) -> Option<u64> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .find_map(|c| c.trim().strip_prefix("provd_session="))
        .and_then(|v| u64::from_str_radix(v, 16).ok())
}

fn unauthorized(srv: &Server, now: u64, stale: bool) -> Response {
    srv.acs
        .counters
        .auth_failures
        .fetch_add(1, Ordering::Relaxed);
    let mut r = StatusCode::UNAUTHORIZED.into_response();
    let h = r.headers_mut();
    match &srv.auth {
        Auth::Digest(d) => {
            for c in d.challenges(now as u32, stale) {
                if let Ok(v) = HeaderValue::from_str(&c) {
                    h.append(header::WWW_AUTHENTICATE, v);
                }
            }
        }
        Auth::Basic(_) => {
            h.insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Basic realm=\"provd\""),
            );
        }
        Auth::None => {}
    }
    r
}

/// POST on any path of a CWMP listener.
async fn cwmp(
    State(srv): State<Arc<Server>>,
    Extension(peer): Extension<Peer>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if method != Method::POST {
        return (StatusCode::METHOD_NOT_ALLOWED, [(header::ALLOW, "POST")]).into_response();
    }
    let now = now_secs();
    let cookie = cookie_of(&headers);
    let existing = cookie
        .and_then(|c| {
            srv.sessions
                .get(&SessionKey::Cookie(c))
                .map(|e| Arc::clone(&e))
        })
        .or_else(|| {
            srv.sessions
                .get(&SessionKey::Conn(peer.remote))
                .map(|e| Arc::clone(&e))
        });
    let mut new_cookie = None;
    let entry = match existing {
        Some(e) => e,
        None => {
            // Authenticate before any state is kept for this client.
            let authz = headers
                .get(header::AUTHORIZATION)
                .and_then(|v| v.to_str().ok());
            let target = uri.path_and_query().map_or("/", |p| p.as_str());
            let verdict = match &srv.auth {
                Auth::None => Verdict::Ok {
                    username: String::new(),
                },
                Auth::Basic(c) => auth::check_basic(c, authz),
                Auth::Digest(d) => d.check(now as u32, "POST", target, authz),
            };
            let username = match verdict {
                Verdict::Ok { username } => (!username.is_empty()).then_some(username),
                Verdict::Challenge { stale } => return unauthorized(&srv, now, stale),
                Verdict::Denied { why } => {
                    if srv.may_log() {
                        tracing::info!(remote = %peer.remote, why, "ACS authentication failed");
                    }
                    return unauthorized(&srv, now, false);
                }
            };
            let c = random_u64();
            new_cookie = Some(c);
            srv.acs.counters.sessions.fetch_add(1, Ordering::Relaxed);
            let e = Arc::new(Mutex::new(Entry {
                session: Session::new(now, c as u32, srv.limits),
                dev: SessionDevice {
                    key: None,
                    username,
                },
                cookie: c,
                conn: peer.remote,
            }));
            srv.sessions.insert(SessionKey::Cookie(c), Arc::clone(&e));
            srv.sessions
                .insert(SessionKey::Conn(peer.remote), Arc::clone(&e));
            e
        }
    };
    let (resp, done, keys) = {
        let mut g = entry.lock().unwrap_or_else(|p| p.into_inner());
        let g = &mut *g;
        let port = peer.local.port();
        let path = uri.path();
        let mut d = srv.acs.driver(&mut g.dev, port, path);
        let r = g.session.handle(now, &body, &mut d);
        (
            r,
            g.session.state() == SessionState::Done,
            (g.cookie, g.conn),
        )
    };
    match &resp.outcome {
        Outcome::BadEnvelope(e) => {
            srv.acs
                .counters
                .bad_envelopes
                .fetch_add(1, Ordering::Relaxed);
            if srv.may_log() {
                tracing::info!(remote = %peer.remote, error = %e, kind = e.kind(), "bad CWMP envelope");
            }
        }
        Outcome::OutOfOrder(m) => {
            srv.acs
                .counters
                .out_of_order
                .fetch_add(1, Ordering::Relaxed);
            if srv.may_log() {
                tracing::info!(remote = %peer.remote, method = m, "out-of-order CWMP message");
            }
        }
        _ => {}
    }
    if done {
        srv.sessions.remove(&SessionKey::Cookie(keys.0));
        srv.sessions.remove(&SessionKey::Conn(keys.1));
    }
    if let Some(dump) = &srv.dump
        && !resp.body.is_empty()
    {
        let n = dump.n.fetch_add(1, Ordering::Relaxed);
        let _ = std::fs::write(dump.dir.join(format!("{n:06}.xml")), &resp.body);
    }
    let status = StatusCode::from_u16(resp.status).unwrap_or(StatusCode::BAD_REQUEST);
    let mut r = if resp.body.is_empty() {
        status.into_response()
    } else {
        (
            status,
            [(header::CONTENT_TYPE, "text/xml; charset=\"utf-8\"")],
            resp.body,
        )
            .into_response()
    };
    if let Some(c) = new_cookie
        && !done
        && let Ok(v) = HeaderValue::from_str(&format!("provd_session={c:016x}; Path=/; HttpOnly"))
    {
        r.headers_mut().insert(header::SET_COOKIE, v);
    }
    r
}

// ---------------------------------------------------------------------------------------------
// Task API

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

async fn stats(State(srv): State<Arc<Server>>) -> Response {
    let mut v = srv.acs.counters_json();
    v["open_sessions"] = (srv.sessions.len() / 2).into();
    v["stun_bindings"] = srv.stun.len().into();
    json(v)
}

async fn campaigns(State(srv): State<Arc<Server>>) -> Response {
    json(srv.acs.campaigns_json())
}

#[derive(Deserialize)]
struct DeviceQuery {
    oui: Option<String>,
    product_class: Option<String>,
    serial: Option<String>,
    limit: Option<usize>,
}

async fn devices(State(srv): State<Arc<Server>>, Query(q): Query<DeviceQuery>) -> Response {
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

fn key_of(srv: &Server, id: &str) -> Option<DeviceKey> {
    srv.acs
        .store
        .parse_display(id)
        .filter(|k| srv.acs.store.devices.contains_key(k))
}

async fn device(State(srv): State<Arc<Server>>, Path(id): Path<String>) -> Response {
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
                        let ty = v.ty.unwrap_or_else(|| ty.to_owned());
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
    State(srv): State<Arc<Server>>,
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
    let t = match srv.acs.queue_for(now_secs() as u32, &key, rpc) {
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

async fn bulk_task(State(srv): State<Arc<Server>>, body: Bytes) -> Response {
    let b: Bulk = match serde_json::from_slice(&body) {
        Ok(b) => b,
        Err(e) => return bad_request(format!("bulk task: {e}")),
    };
    let rpc = match parse_task(b.task.to_string().as_bytes()) {
        Ok(r) => r,
        Err(e) => return bad_request(e),
    };
    match srv.acs.queue_filtered(
        now_secs() as u32,
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

async fn task(State(srv): State<Arc<Server>>, Path(n): Path<u64>) -> Response {
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
async fn seed(State(srv): State<Arc<Server>>, body: Bytes) -> Response {
    let s: Seed = match serde_json::from_slice(&body) {
        Ok(s) => s,
        Err(e) => return bad_request(format!("seed: {e}")),
    };
    let srv2 = Arc::clone(&srv);
    let r = tokio::task::spawn_blocking(move || {
        let now = now_secs() as u32;
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
pub fn seed_inform(oui: &str, pc: &str, serial: &str, i: u32) -> provd_cwmp::Inform {
    let ip = std::net::Ipv4Addr::from(0x0a00_0000 | (i & 0x00ff_ffff));
    provd_cwmp::Inform::simulated(
        oui,
        pc,
        serial,
        "1 BOOT",
        format!("http://{ip}:7547/cr/{serial}"),
    )
}

async fn snapshot(State(srv): State<Arc<Server>>) -> Response {
    let s2 = Arc::clone(&srv);
    match tokio::task::spawn_blocking(move || provd_acs::persist::save(&s2.acs, &s2.snapshot_dir))
        .await
    {
        Ok(Ok(n)) => json(serde_json::json!({"devices": n})),
        Ok(Err(e)) => bad_request(format!("snapshot: {e}")),
        Err(e) => bad_request(format!("snapshot: {e}")),
    }
}

// ---------------------------------------------------------------------------------------------
// Connection requests

#[derive(Deserialize)]
struct CrQuery {
    udp: Option<u8>,
}

async fn connection_request(
    State(srv): State<Arc<Server>>,
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

/// A connection request to one device, HTTP (to its ConnectionRequestURL, with digest) or UDP
/// (TR-111, to the address its STUN binding or its UDPConnectionRequestAddress gave), within
/// the per-device interval and the global rate. Returns what was sent, or the status and
/// reason it was not.
async fn wake(
    srv: &Server,
    key: &DeviceKey,
    udp: bool,
) -> std::result::Result<serde_json::Value, (StatusCode, serde_json::Value)> {
    let fail = |code, msg: String| Err((code, serde_json::json!({"error": msg})));
    let now = now_secs();
    let s = &srv.acs.settings;
    // Per-device interval, then the global rate.
    let (url, udp_addr) = {
        let Some(mut d) = srv.acs.store.devices.get_mut(key) else {
            return fail(StatusCode::NOT_FOUND, "no such device".into());
        };
        let cr_url = d.cr_url.as_deref().map(str::to_owned);
        let more = d.more();
        if s.cr_min_interval_secs > 0
            && more.last_connection_request != 0
            && (now as u32).saturating_sub(more.last_connection_request) < s.cr_min_interval_secs
        {
            return fail(
                StatusCode::TOO_MANY_REQUESTS,
                "connection request to this device too soon".into(),
            );
        }
        more.last_connection_request = now as u32;
        let udp = srv
            .stun
            .get(&srv.acs.store.display(key))
            .map(|a| a.to_string())
            .or_else(|| more.udp_cr.as_deref().map(str::to_owned));
        (cr_url, udp)
    };
    let allowed = srv
        .cr_limit
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .take(now_millis());
    if !allowed {
        return fail(
            StatusCode::TOO_MANY_REQUESTS,
            "connection request rate limit".into(),
        );
    }
    if udp {
        let Some(addr) = udp_addr else {
            return fail(
                StatusCode::BAD_REQUEST,
                "no UDP connection request address known for this device".into(),
            );
        };
        let Some(sock) = &srv.udp else {
            return fail(
                StatusCode::BAD_REQUEST,
                "UDP connection requests need [acs] stun_port".into(),
            );
        };
        let id = srv.cr_id.fetch_add(1, Ordering::Relaxed) as u32;
        let cn = format!("{:016X}", random_u64());
        let msg = cr::udp_message(&addr, now, id, &s.cr_username, &cn, &s.cr_password);
        let Ok(dest) = addr.parse::<SocketAddr>() else {
            return fail(StatusCode::BAD_REQUEST, format!("bad address {addr:?}"));
        };
        // Sent three times: UDP may drop one, the CPE ignores repeated ids.
        for _ in 0..3 {
            if let Err(e) = sock.send_to(msg.as_bytes(), dest).await {
                return fail(StatusCode::BAD_REQUEST, format!("send to {dest}: {e}"));
            }
        }
        return Ok(serde_json::json!({"sent": "udp", "to": addr, "id": id}));
    }
    let Some(url) = url else {
        return fail(
            StatusCode::BAD_REQUEST,
            "the device reported no ConnectionRequestURL".into(),
        );
    };
    match http_connection_request(&url, &s.cr_username, &s.cr_password).await {
        Ok(status) => Ok(serde_json::json!({"sent": "http", "url": url, "status": status})),
        Err(e) => fail(StatusCode::BAD_GATEWAY, format!("{e:#}")),
    }
}

fn now_millis() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// GET the ConnectionRequestURL; answer a Digest challenge once. Returns the final status.
async fn http_connection_request(url: &str, user: &str, pass: &str) -> Result<u16> {
    let uri: hyper::Uri = url.parse().context("ConnectionRequestURL")?;
    anyhow::ensure!(
        uri.scheme_str() == Some("http"),
        "only http:// connection request URLs"
    );
    let host = uri.host().context("no host")?.to_owned();
    let port = uri.port_u16().unwrap_or(80);
    let path = uri.path_and_query().map_or("/", |p| p.as_str()).to_owned();
    let mut authz: Option<String> = None;
    for attempt in 0..2 {
        let status_and_challenge = tokio::time::timeout(Duration::from_secs(5), async {
            let stream = tokio::net::TcpStream::connect((host.as_str(), port)).await?;
            let (mut send, conn) =
                hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream)).await?;
            tokio::spawn(conn);
            let mut req =
                hyper::Request::get(path.as_str()).header(header::HOST, format!("{host}:{port}"));
            if let Some(a) = &authz {
                req = req.header(header::AUTHORIZATION, a.as_str());
            }
            let resp = send
                .send_request(req.body(http_body_util::Empty::<Bytes>::new())?)
                .await?;
            let challenge = resp
                .headers()
                .get_all(header::WWW_AUTHENTICATE)
                .iter()
                .filter_map(|v| v.to_str().ok())
                .find(|v| v.starts_with("Digest "))
                .map(str::to_owned);
            anyhow::Ok((resp.status().as_u16(), challenge))
        })
        .await
        .context("connection request timed out")??;
        match status_and_challenge {
            (401, Some(ch)) if attempt == 0 => {
                let cnonce = format!("{:016x}", random_u64());
                authz = Some(
                    auth::authorize(&ch, user, pass, "GET", &path, 1, &cnonce)
                        .context("unusable digest challenge")?,
                );
            }
            (status, _) => return Ok(status),
        }
    }
    Ok(401)
}

async fn stun_loop(srv: Arc<Server>, sock: Arc<UdpSocket>) -> Result<()> {
    let mut buf = [0u8; 1500];
    loop {
        let (n, from) = match sock.recv_from(&mut buf).await {
            Ok(x) => x,
            Err(e) => {
                tracing::debug!(error = %e, "STUN recv");
                continue;
            }
        };
        let Some(req) = cr::parse_binding_request(&buf[..n]) else {
            continue;
        };
        let SocketAddr::V4(from4) = from else {
            continue;
        };
        if let Some(u) = req.username.filter(|u| u.len() <= 128)
            && (srv.stun.contains_key(&u) || srv.stun.len() < 10_000_000)
        {
            srv.stun.insert(u, from4);
        }
        let _ = sock
            .send_to(&cr::binding_response(&req.transaction, from4), from)
            .await;
    }
}
