//! provd-ui: the operators' web UI at `/ui/`, served on the control-plane listener beside
//! `/api/v1`.
//!
//! Every page is rendered on the server (minijinja templates compiled into the binary) from
//! the REST API, which the UI calls **in process** (`tower::ServiceExt::oneshot` on the API's
//! own router, with the session's bearer token and the browser's address): the UI adds no
//! second path to the store, so the API's roles, scopes, validation, ETags and audit apply to
//! every click exactly as to a script. What the UI adds:
//!
//! - **Sessions**: the login page takes an API token's secret, checks it (`GET
//!   /api/v1/whoami`), and answers with a random session id in a cookie (`HttpOnly`,
//!   `SameSite=Strict`, `Path=/ui`, `Secure` behind TLS). The secret stays in the server's
//!   memory; sessions end on logout, after `idle` without a request, or after `max_age`.
//! - **CSRF**: every state-changing request (anything but GET/HEAD) must carry the session's
//!   CSRF token, as the form field `csrf` or the `X-CSRF-Token` header (htmx and the page's
//!   script send it from `<meta name="csrf-token">`), and a browser's `Sec-Fetch-Site` must not
//!   be `cross-site`; otherwise 403 before any handler runs.
//! - **Roles in the page**: a read-only token's pages carry no write control (every write
//!   control has a `data-write` attribute, rendered only for operator and admin); the API
//!   refuses a forged write anyway (403).
//! - A small amount of vendored JavaScript (htmx 2 for partial updates, uPlot for the
//!   dashboard's chart; their licences are beside them in `assets/vendor/`), no build step.

// A handler's error is the page that says what went wrong (`Result<Response, Response>`): one
// per request, never on a hot path, so it is not boxed.
#![allow(clippy::result_large_err)]

mod assets;
mod call;
mod diag;
mod diff;
mod pages;
mod prom;
mod session;
mod time;
mod view;

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::routing::{get, post};

pub use session::SESSION_COOKIE;

/// How the UI behaves.
#[derive(Debug, Clone)]
pub struct UiSettings {
    /// Mark the session cookie `Secure` (the listener serves HTTPS).
    pub secure_cookie: bool,
    /// A session ends after this long without a request.
    pub idle: Duration,
    /// A session ends this long after login, whatever it does.
    pub max_age: Duration,
    /// Sessions kept at most (the oldest idle ones go first).
    pub max_sessions: usize,
}

impl Default for UiSettings {
    fn default() -> Self {
        UiSettings {
            secure_cookie: false,
            idle: Duration::from_secs(30 * 60),
            max_age: Duration::from_secs(12 * 3600),
            max_sessions: 10_000,
        }
    }
}

/// The state every handler shares.
#[derive(Clone)]
pub(crate) struct Ui(Arc<Inner>);

pub(crate) struct Inner {
    /// The API's router, called in process.
    pub(crate) api: Router,
    pub(crate) settings: UiSettings,
    pub(crate) sessions: session::Sessions,
    pub(crate) views: view::Views,
    /// The dashboard's samples of `/metrics`.
    pub(crate) samples: prom::Sampler,
}

impl std::ops::Deref for Ui {
    type Target = Inner;
    fn deref(&self) -> &Inner {
        &self.0
    }
}

impl std::fmt::Debug for Ui {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ui")
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

/// The UI's routes (`/ui`, `/ui/...`) over `api`, the router `provd_api::router` returns.
/// Merge the result with that router on the same listener.
pub fn router(api: Router, settings: UiSettings) -> Router {
    let ui = Ui(Arc::new(Inner {
        api,
        sessions: session::Sessions::new(&settings),
        settings,
        views: view::Views::new(),
        samples: prom::Sampler::default(),
    }));
    use pages::*;
    Router::new()
        .route(
            "/ui",
            get(|| async { axum::response::Redirect::to("/ui/") }),
        )
        .route("/ui/", get(dashboard::page))
        .route("/ui/dashboard/live", get(dashboard::live))
        .route("/ui/dashboard/series", get(dashboard::series))
        .route("/ui/login", get(login::form).post(login::submit))
        .route("/ui/logout", post(login::logout))
        .route("/ui/search", get(search::search))
        .route("/ui/devices", get(devices::list))
        .route("/ui/devices/{mac}", get(device::page))
        .route("/ui/devices/{mac}/tier-preview", get(device::tier_preview))
        .route("/ui/devices/{mac}/tier", post(device::tier))
        .route("/ui/devices/{mac}/reset", post(device::reset))
        .route("/ui/devices/{mac}/reprovision", post(device::reprovision))
        .route("/ui/devices/{mac}/cwmp-task", post(device::cwmp_task))
        .route("/ui/subscribers", get(records::subscribers))
        .route(
            "/ui/subscribers/{id}",
            get(records::subscriber).post(records::save_subscriber),
        )
        .route("/ui/classes", get(records::classes))
        .route(
            "/ui/classes/{name}",
            get(records::class).post(records::save_class),
        )
        .route("/ui/templates", get(templates::list))
        .route("/ui/templates/validate", post(templates::validate))
        .route(
            "/ui/templates/{name}",
            get(templates::editor).post(templates::save),
        )
        .route("/ui/templates/{name}/preview", post(templates::preview))
        .route("/ui/templates/{name}/diff", get(templates::diff))
        .route("/ui/templates/{name}/rollback", post(templates::rollback))
        .route("/ui/leases", get(lists::leases))
        .route("/ui/leases/{mac}/release", post(lists::release))
        .route("/ui/mta", get(lists::mta))
        .route("/ui/cwmp", get(lists::cwmp))
        .route("/ui/jobs", get(lists::jobs))
        .route(
            "/ui/jobs/import",
            post(lists::import).layer(axum::extract::DefaultBodyLimit::max(IMPORT_LIMIT)),
        )
        .route("/ui/jobs/{id}", get(lists::job))
        .route("/ui/audit", get(lists::audit))
        .route("/ui/tokens", get(lists::tokens).post(lists::create_token))
        .route("/ui/tokens/{id}/delete", post(lists::delete_token))
        .route("/ui/static/{file}", get(assets::serve))
        .layer(axum::middleware::from_fn_with_state(
            ui.clone(),
            session::guard,
        ))
        .layer(axum::middleware::map_response(headers))
        .with_state(ui)
}

/// The largest bulk import file the jobs page uploads.
const IMPORT_LIMIT: usize = 512 << 20;

/// What every UI answer carries: scripts only from `/ui/static/` (no inline script, no
/// `eval`), no framing, no referrer beyond the origin, and pages (which hold the CSRF token
/// and, once, a new token's secret) never cached.
async fn headers(mut r: axum::response::Response) -> axum::response::Response {
    use axum::http::{HeaderValue, header};
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; \
             img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; \
             form-action 'self'; base-uri 'none'",
        ),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    if !h.contains_key(header::CACHE_CONTROL) {
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    r
}
