//! provd-api: the REST API `/api/v1`, an axum [`Router`] over the store and the roles.
//!
//! The binary mounts [`router`] on the control-plane listener with a [`Services`] value: the
//! store, and small traits ([`LeaseIndex`], [`Actions`], [`RoleView`]) it implements over the
//! real roles. The OpenAPI 3.1 document ([`openapi`], served at `/api/v1/openapi.json`) is
//! generated from the handlers' own annotations through `utoipa-axum`: a route exists only
//! with its documentation, so the two cannot drift.
//!
//! Rules every route follows:
//! - `Authorization: Bearer <secret>`: the token is found by the SHA-256 of its secret
//!   ([`token_hash`]), cached a few seconds. No or an unknown token: 401 with
//!   `WWW-Authenticate: Bearer`; too many unknown tokens from one client address: 429 until
//!   the window passes.
//! - Roles: read-only may only GET; operator changes devices, subscribers, classes,
//!   reservations, leases, resets, jobs and ACS tasks, and reads the audit log; admin does
//!   everything (tokens, config reload).
//! - A token's scope (relays, classes) applies to every device query: outside it a read is 404
//!   and a write 403.
//! - Single records carry `ETag: "<version>"`; `If-Match` makes a write conditional (412 with
//!   the current version otherwise), `If-None-Match: *` makes a PUT create-only.
//! - Errors are `{"code", "message", "field"}` ([`ErrorBody`]).
//! - Every write goes through the store as `Actor::Token(name)`, which audits it.

mod acs;
mod auth;
mod error;
mod extract;
mod jobs;
mod routes;
mod schema;
mod services;
mod templates;

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa_axum::router::OpenApiRouter;

pub use auth::{guard, new_secret, token_hash};
pub use error::{ApiError, ErrorBody};
pub use services::{
    Actions, BoxFuture, Lease, LeaseIndex, LeaseQuery, PreviewRequest, ProblemStage, ReloadReport,
    RoleView, ServiceError, Services, SyslogQuery, TemplateCheck, TemplateFile, TemplateKind,
    TemplatePreview, TemplateProblem, TemplateValidation, Verdict,
};

/// How the API behaves.
#[derive(Debug, Clone)]
pub struct ApiSettings {
    /// Serve `/metrics` without a token (a Prometheus scraper on a trusted network).
    pub metrics_open: bool,
    /// The largest request body, in bytes (413 beyond it).
    pub body_limit: usize,
    /// The largest import job body (`POST /api/v1/jobs/import`), in bytes.
    pub import_body_limit: usize,
    /// How long a token lookup is cached.
    pub token_cache_ttl: Duration,
    /// Unknown tokens a client address may present per `auth_fail_window` before it gets 429.
    pub auth_fail_limit: u32,
    pub auth_fail_window: Duration,
    /// Devices per `Store::import_devices` call in an import job.
    pub import_chunk: usize,
}

impl Default for ApiSettings {
    fn default() -> Self {
        ApiSettings {
            metrics_open: false,
            body_limit: 1 << 20,
            import_body_limit: 512 << 20,
            token_cache_ttl: Duration::from_secs(5),
            auth_fail_limit: 10,
            auth_fail_window: Duration::from_secs(60),
            import_chunk: 1000,
        }
    }
}

/// The state every handler shares.
#[derive(Clone)]
pub(crate) struct App(pub(crate) Arc<Inner>);

pub(crate) struct Inner {
    pub(crate) svc: Services,
    pub(crate) settings: ApiSettings,
    pub(crate) tokens: auth::TokenCache,
    pub(crate) failures: auth::FailLimiter,
    pub(crate) jobs: jobs::Jobs,
}

impl std::ops::Deref for App {
    type Target = Inner;
    fn deref(&self) -> &Inner {
        &self.0
    }
}

/// Every documented route, with its handlers, before state and layers.
fn api_routes(settings: &ApiSettings) -> OpenApiRouter<App> {
    let v1 = routes::routes()
        .merge(templates::routes())
        .merge(acs::routes())
        .merge(jobs::routes(settings.import_body_limit));
    OpenApiRouter::with_openapi(base_doc()).nest("/api/v1", v1)
}

fn base_doc() -> utoipa::openapi::OpenApi {
    use utoipa::openapi::{ComponentsBuilder, InfoBuilder, OpenApiBuilder};
    let bearer = SecurityScheme::Http(Http::new(HttpAuthScheme::Bearer));
    OpenApiBuilder::new()
        .info(
            InfoBuilder::new()
                .title("provd API")
                .version("1")
                .description(Some(
                    "provd's control plane: devices, subscribers, classes of service, \
                     reservations, leases, templates, MTA records, syslog events, the audit \
                     log, tokens, jobs, stats, config reload and the ACS's tasks.",
                ))
                .build(),
        )
        .components(Some(
            ComponentsBuilder::new()
                .security_scheme("bearer", bearer)
                .schema_from::<ErrorBody>()
                .schema_from::<schema::Star>()
                .build(),
        ))
        .security(Some(vec![
            utoipa::openapi::security::SecurityRequirement::new("bearer", Vec::<String>::new()),
        ]))
        .build()
}

/// The routes served outside the handlers' annotations (the document itself, `/metrics`),
/// described by hand.
fn add_unannotated(doc: &mut utoipa::openapi::OpenApi) {
    use utoipa::openapi::path::{HttpMethod, OperationBuilder, PathItem};
    use utoipa::openapi::response::ResponseBuilder;
    use utoipa::openapi::{ContentBuilder, ObjectBuilder};
    let json = ContentBuilder::new()
        .schema(Some(ObjectBuilder::new().build()))
        .build();
    let doc_op = OperationBuilder::new()
        .operation_id(Some("openapi"))
        .summary(Some("This document (no token needed)"))
        .security(utoipa::openapi::security::SecurityRequirement::default())
        .response(
            "200",
            ResponseBuilder::new()
                .description("The OpenAPI 3.1 document")
                .content("application/json", json)
                .build(),
        )
        .build();
    doc.paths.paths.insert(
        "/api/v1/openapi.json".into(),
        PathItem::new(HttpMethod::Get, doc_op),
    );
    let text = ContentBuilder::new()
        .schema(Some(
            ObjectBuilder::new()
                .schema_type(utoipa::openapi::schema::Type::String)
                .build(),
        ))
        .build();
    let metrics_op = OperationBuilder::new()
        .operation_id(Some("metrics"))
        .summary(Some("Prometheus metrics (text format)"))
        .response(
            "200",
            ResponseBuilder::new()
                .description("Every role's metrics")
                .content("text/plain; version=0.0.4", text)
                .build(),
        )
        .response("401", error_response("No or unknown token"))
        .response("429", error_response("Too many failed authentications"))
        .build();
    doc.paths.paths.insert(
        "/metrics".into(),
        PathItem::new(HttpMethod::Get, metrics_op),
    );
}

fn error_response(what: &str) -> utoipa::openapi::response::Response {
    use utoipa::openapi::response::ResponseBuilder;
    use utoipa::openapi::{ContentBuilder, Ref};
    ResponseBuilder::new()
        .description(what)
        .content(
            "application/json",
            ContentBuilder::new()
                .schema(Some(Ref::from_schema_name("ErrorBody")))
                .build(),
        )
        .build()
}

/// The OpenAPI 3.1 document of [`router`]'s routes.
pub fn openapi() -> utoipa::openapi::OpenApi {
    let (_, mut doc) = api_routes(&ApiSettings::default()).split_for_parts();
    add_unannotated(&mut doc);
    doc
}

/// The API: `/api/v1/...`, `/api/v1/openapi.json` and `/metrics`.
pub fn router(services: Services, settings: ApiSettings) -> axum::Router {
    let app = App(Arc::new(Inner {
        tokens: auth::TokenCache::new(settings.token_cache_ttl),
        failures: auth::FailLimiter::new(settings.auth_fail_limit, settings.auth_fail_window),
        jobs: jobs::Jobs::default(),
        svc: services,
        settings: settings.clone(),
    }));
    let (api, mut doc) = api_routes(&settings)
        .layer(middleware::from_fn_with_state(
            app.clone(),
            auth::authenticate,
        ))
        .split_for_parts();
    add_unannotated(&mut doc);
    let doc = Arc::new(
        serde_json::to_vec(&doc).unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}").into()),
    );
    api.route(
        "/api/v1/openapi.json",
        get(move || {
            let doc = Arc::clone(&doc);
            async move {
                (
                    [(
                        header::CONTENT_TYPE,
                        HeaderValue::from_static("application/json"),
                    )],
                    doc.as_ref().clone(),
                )
            }
        }),
    )
    .route("/metrics", get(metrics))
    .fallback(no_route)
    .method_not_allowed_fallback(method_not_allowed)
    .layer(middleware::from_fn(track))
    .layer(axum::extract::DefaultBodyLimit::max(settings.body_limit))
    .with_state(app)
}

async fn no_route() -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, "no_route", "no such route")
}

async fn method_not_allowed() -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        "this route does not take that method",
    )
}

async fn metrics(State(app): State<App>, req: Request) -> Response {
    if !app.settings.metrics_open
        && let Err(e) = auth::caller_of(&app, auth::client_ip(&req), req.headers()).await
    {
        return e.into_response();
    }
    let roles = Arc::clone(&app.svc.roles);
    match tokio::task::spawn_blocking(move || roles.metrics()).await {
        Ok(text) => (
            [(
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
            )],
            text,
        )
            .into_response(),
        Err(e) => ApiError::backend(format!("metrics: {e}")).into_response(),
    }
}

/// Request duration and count by route template, method and status.
async fn track(req: Request, next: Next) -> Response {
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |m| m.as_str().to_owned());
    let method = req.method().as_str().to_owned();
    let t0 = Instant::now();
    let resp = next.run(req).await;
    metrics::histogram!(
        provd_role::metrics::names::API_REQUEST_DURATION_SECONDS,
        "route" => route.clone(),
        "method" => method.clone()
    )
    .record(t0.elapsed().as_secs_f64());
    metrics::counter!(
        provd_role::metrics::names::API_REQUESTS_TOTAL,
        "route" => route,
        "method" => method,
        "status" => resp.status().as_u16().to_string()
    )
    .increment(1);
    resp
}
