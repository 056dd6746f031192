//! Bulk jobs: `POST /jobs/import` takes a JSON array or JSON lines of devices, answers with a
//! job id at once, and imports on the blocking pool in chunks (`Store::import_devices`); bad
//! rows are reported by line and field, good rows land.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use axum::Extension;
use axum::extract::{DefaultBodyLimit, Path, Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use provd_role::clock;
use provd_store::{Actor, DeviceSpec, ImportCounts, Scope, Store, StoreError, TokenRole};
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::auth::Caller;
use crate::extract::{body_bytes, decode};
use crate::routes::Errors;
use crate::{ApiError, App};

/// Errors kept per job; beyond, only counted.
const MAX_ERRORS: usize = 10_000;
/// Jobs kept; the oldest finished one is forgotten beyond.
const MAX_JOBS: usize = 256;

/// One refused row.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub(crate) struct RowError {
    /// 1-based line of a JSON-lines body; 1-based item of a JSON array.
    line: u64,
    /// The JSON path at fault in the row.
    field: Option<String>,
    message: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub(crate) enum JobState {
    Running,
    Done,
    /// The store failed; rows imported before stay.
    Failed,
}

/// A job's progress.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub(crate) struct JobStatus {
    id: u64,
    kind: String,
    state: JobState,
    /// Who started it (`token:NAME`).
    who: String,
    /// Rows handled so far, of `total`.
    done: u64,
    total: u64,
    created: u64,
    updated: u64,
    unchanged: u64,
    /// Refused rows (at most 10,000 kept; `error_count` counts all).
    errors: Vec<RowError>,
    error_count: u64,
    /// Why the job failed, when it did.
    failure: Option<String>,
    /// Unix ms.
    started_at: i64,
    finished_at: Option<i64>,
}

impl JobStatus {
    fn error(&mut self, line: u64, field: Option<String>, message: String) {
        self.error_count += 1;
        self.done += 1;
        if self.errors.len() < MAX_ERRORS {
            self.errors.push(RowError {
                line,
                field,
                message,
            });
        }
    }
}

/// Jobs by id, and their ids oldest first.
type JobTable = (HashMap<u64, Arc<Mutex<JobStatus>>>, VecDeque<u64>);

#[derive(Default)]
pub(crate) struct Jobs {
    next: AtomicU64,
    map: Mutex<JobTable>,
}

impl Jobs {
    fn start(&self, kind: &str, who: &Actor) -> (u64, Arc<Mutex<JobStatus>>) {
        let id = self.next.fetch_add(1, Ordering::Relaxed) + 1;
        let job = Arc::new(Mutex::new(JobStatus {
            id,
            kind: kind.into(),
            state: JobState::Running,
            who: who.to_string(),
            done: 0,
            total: 0,
            created: 0,
            updated: 0,
            unchanged: 0,
            errors: Vec::new(),
            error_count: 0,
            failure: None,
            started_at: now_ms(),
            finished_at: None,
        }));
        let mut g = self.map.lock().unwrap_or_else(|e| e.into_inner());
        let (map, order) = &mut *g;
        while order.len() >= MAX_JOBS {
            let Some(pos) = order.iter().position(|j| {
                map.get(j).is_none_or(|s| {
                    s.lock().unwrap_or_else(|e| e.into_inner()).state != JobState::Running
                })
            }) else {
                break;
            };
            if let Some(old) = order.remove(pos) {
                map.remove(&old);
            }
        }
        map.insert(id, Arc::clone(&job));
        order.push_back(id);
        (id, job)
    }

    /// Every job kept, newest first, without their refused rows (`GET /jobs/{id}` has them).
    fn list(&self) -> Vec<JobStatus> {
        let g = self.map.lock().unwrap_or_else(|e| e.into_inner());
        let (map, order) = &*g;
        order
            .iter()
            .rev()
            .filter_map(|id| map.get(id))
            .map(|j| {
                let mut s = j.lock().unwrap_or_else(|e| e.into_inner()).clone();
                s.errors.clear();
                s
            })
            .collect()
    }

    fn get(&self, id: u64) -> Option<JobStatus> {
        let g = self.map.lock().unwrap_or_else(|e| e.into_inner());
        g.0.get(&id)
            .map(|j| j.lock().unwrap_or_else(|e| e.into_inner()).clone())
    }
}

fn now_ms() -> i64 {
    i64::try_from(clock::unix_millis()).unwrap_or(i64::MAX)
}

pub(crate) fn routes(body_limit: usize) -> OpenApiRouter<App> {
    OpenApiRouter::new()
        .routes(routes!(import_devices))
        .layer(DefaultBodyLimit::max(body_limit))
        .routes(routes!(job))
        .routes(routes!(list_jobs))
}

/// A row of an import body: its line (item) number and its JSON, or why it is not JSON.
type Row = (u64, Result<serde_json::Value, String>);

/// The answer to a job's start.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct JobStarted {
    id: u64,
}

/// Imports devices (a JSON array, or one JSON object per line): answers with the job's id at
/// once; `GET /jobs/{id}` follows it. Rows equal to what is stored change nothing, so an
/// import run twice is harmless.
#[utoipa::path(post, path = "/jobs/import", tag = "jobs",
    request_body(
        content(
            (Vec<serde_json::Value> = "application/json"),
            (String = "application/x-ndjson"),
        ),
        description = "A JSON array (application/json), or JSON lines (application/x-ndjson), of devices as `PUT /devices/{mac}` takes them with their `mac`; each row is checked on its own and a bad one is reported in the job, not refused here"
    ),
    responses((status = 202, body = JobStarted), Errors))]
async fn import_devices(
    State(app): State<App>,
    Extension(c): Extension<Caller>,
    req: Request,
) -> Result<Response, ApiError> {
    c.require(TokenRole::Operator)?;
    if !c.token.scope.relays.is_empty() {
        return Err(ApiError::forbidden(
            "a relay-scoped token cannot import: a new device's relay is not known",
        ));
    }
    let lines = req
        .headers()
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            let v = v.split(';').next().unwrap_or("").trim();
            v.eq_ignore_ascii_case("application/x-ndjson")
                || v.eq_ignore_ascii_case("application/jsonl")
        });
    let body = body_bytes(req, &()).await?;
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "bad_json",
            "the body is empty; a JSON array or JSON lines of devices is wanted",
        ));
    }
    let rows = tokio::task::spawn_blocking(move || split_rows(&body, lines))
        .await
        .map_err(|e| ApiError::backend(format!("import: {e}")))??;
    let actor = c.actor();
    let (id, job) = app.jobs.start("import-devices", &actor);
    let store = Arc::clone(&app.svc.store);
    let chunk = app.settings.import_chunk.max(1);
    let scope = c.token.scope.clone();
    tokio::task::spawn_blocking(move || run_import(&*store, &job, rows, chunk, &scope, &actor));
    Ok((StatusCode::ACCEPTED, axum::Json(JobStarted { id })).into_response())
}

/// The body's rows with their line (item) numbers: JSON lines when `lines`, else a JSON
/// array, which is refused whole (400) if it is not one.
fn split_rows(body: &[u8], lines: bool) -> Result<Vec<Row>, ApiError> {
    if !lines {
        let items: Vec<serde_json::Value> = serde_json::from_slice(body).map_err(|e| {
            ApiError::new(StatusCode::BAD_REQUEST, "bad_json", format!("body: {e}"))
        })?;
        return Ok(items
            .into_iter()
            .zip(1u64..)
            .map(|(v, n)| (n, Ok(v)))
            .collect());
    }
    let mut rows = Vec::new();
    for (line, n) in body.split(|&b| b == b'\n').zip(1u64..) {
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        rows.push((n, serde_json::from_slice(line).map_err(|e| e.to_string())));
    }
    Ok(rows)
}

fn run_import(
    store: &dyn Store,
    job: &Mutex<JobStatus>,
    rows: Vec<Row>,
    chunk: usize,
    scope: &Scope,
    who: &Actor,
) {
    let lock = || job.lock().unwrap_or_else(|e| e.into_inner());
    lock().total = rows.len() as u64;
    let mut batch: Vec<(u64, DeviceSpec)> = Vec::with_capacity(chunk);
    let mut rows = rows.into_iter().peekable();
    while rows.peek().is_some() {
        batch.clear();
        for (line, row) in rows.by_ref() {
            let spec = row
                .map_err(|m| ApiError::new(StatusCode::BAD_REQUEST, "bad_json", m))
                .and_then(decode::<DeviceSpec>);
            match spec {
                Ok(s)
                    if !scope.classes.is_empty()
                        && !s
                            .class_of_service
                            .as_ref()
                            .is_some_and(|c| scope.classes.contains(c)) =>
                {
                    lock().error(
                        line,
                        Some("class_of_service".into()),
                        "outside the token's scope".into(),
                    );
                }
                Ok(s) => batch.push((line, s)),
                Err(e) => {
                    let b = *e.body;
                    lock().error(line, b.field, b.message)
                }
            }
            if batch.len() >= chunk {
                break;
            }
        }
        if let Err(e) = import_batch(store, job, &batch, who) {
            let mut j = lock();
            j.state = JobState::Failed;
            j.failure = Some(e.to_string());
            j.finished_at = Some(now_ms());
            return;
        }
    }
    let mut j = lock();
    j.errors.sort_by_key(|e| e.line);
    j.state = JobState::Done;
    j.finished_at = Some(now_ms());
}

/// One chunk in one call; if the store refuses the chunk for a row's sake, row by row so the
/// good ones land and the bad one is named. `Err` only for a backend failure.
fn import_batch(
    store: &dyn Store,
    job: &Mutex<JobStatus>,
    batch: &[(u64, DeviceSpec)],
    who: &Actor,
) -> Result<(), StoreError> {
    if batch.is_empty() {
        return Ok(());
    }
    let lock = || job.lock().unwrap_or_else(|e| e.into_inner());
    let add = |c: ImportCounts, n: usize| {
        let mut j = lock();
        j.created += c.created;
        j.updated += c.updated;
        j.unchanged += c.unchanged;
        j.done += n as u64;
    };
    let specs: Vec<DeviceSpec> = batch.iter().map(|(_, s)| s.clone()).collect();
    match store.import_devices(&specs, who) {
        Ok(c) => {
            add(c, batch.len());
            Ok(())
        }
        Err(StoreError::Backend(m)) => Err(StoreError::Backend(m)),
        Err(_) => {
            for (line, spec) in batch {
                match store.import_devices(std::slice::from_ref(spec), who) {
                    Ok(c) => add(c, 1),
                    Err(StoreError::Backend(m)) => return Err(StoreError::Backend(m)),
                    Err(e) => {
                        let field = match &e {
                            StoreError::Invalid { field, .. } => Some(field.clone()),
                            _ => None,
                        };
                        lock().error(*line, field, e.to_string());
                    }
                }
            }
            Ok(())
        }
    }
}

/// The jobs this node keeps (the last 256), newest first; `errors` is empty here, the count
/// is in `error_count` and the rows in `GET /jobs/{id}`.
#[utoipa::path(get, path = "/jobs", tag = "jobs",
    responses((status = 200, body = JobList), Errors))]
async fn list_jobs(State(app): State<App>) -> Response {
    axum::Json(JobList {
        items: app.jobs.list(),
    })
    .into_response()
}

/// The jobs kept, newest first.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct JobList {
    items: Vec<JobStatus>,
}

/// A job's progress.
#[utoipa::path(get, path = "/jobs/{id}", tag = "jobs",
    params(("id" = u64, Path, description = "The job's id")),
    responses((status = 200, body = JobStatus), Errors))]
async fn job(State(app): State<App>, Path(id): Path<String>) -> Result<Response, ApiError> {
    let id: u64 = id
        .parse()
        .map_err(|_| ApiError::invalid("id", format!("{id:?} is not a job id")))?;
    let j = app
        .jobs
        .get(id)
        .ok_or_else(|| ApiError::not_found(format!("no such job {id}")))?;
    Ok(axum::Json(j).into_response())
}
