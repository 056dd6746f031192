//! A page's view of one request: its session, and the API called in process with the
//! session's token and the browser's address (so the API's failed-auth limit, scopes and audit
//! see the real caller).

use std::net::SocketAddr;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::request::Parts;
use axum::http::{HeaderMap, Method, Request, StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use bytes::Bytes;
use http_body_util::BodyExt;
use serde_json::Value;
use tower::ServiceExt;

use crate::Ui;
use crate::session::Session;

/// The largest API answer a page reads (a page of 1,000 rows is far below).
const REPLY_LIMIT: usize = 64 << 20;

/// What a handler returns: the page, or the page that says what went wrong.
pub(crate) type Page = Result<Response, Response>;

/// An API answer.
#[derive(Debug)]
pub(crate) struct Reply {
    pub(crate) status: StatusCode,
    pub(crate) headers: HeaderMap,
    pub(crate) body: Bytes,
}

impl Reply {
    pub(crate) fn ok(&self) -> bool {
        self.status.is_success()
    }

    pub(crate) fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or(Value::Null)
    }

    /// The API's `{code, message, field}` as one line.
    pub(crate) fn message(&self) -> String {
        let v = self.json();
        let msg = v["message"]
            .as_str()
            .map(str::to_owned)
            .unwrap_or_else(|| String::from_utf8_lossy(&self.body).trim().to_owned());
        match v["field"].as_str() {
            Some(f) if !msg.contains(f) => format!("{f}: {msg}"),
            _ => msg,
        }
    }

    pub(crate) fn etag(&self) -> Option<String> {
        self.headers
            .get(header::ETAG)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    }
}

/// One request's session and caller.
#[derive(Clone)]
pub(crate) struct Ctx {
    pub(crate) ui: Ui,
    pub(crate) sess: Arc<Session>,
    peer: Option<provd_web::Peer>,
    conn: Option<ConnectInfo<SocketAddr>>,
}

impl FromRequestParts<Ui> for Ctx {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, ui: &Ui) -> Result<Ctx, Response> {
        let Some(sess) = parts.extensions.get::<Arc<Session>>().cloned() else {
            return Err(Redirect::to("/ui/login").into_response());
        };
        Ok(Ctx {
            ui: ui.clone(),
            sess,
            peer: parts.extensions.get::<provd_web::Peer>().cloned(),
            conn: parts.extensions.get::<ConnectInfo<SocketAddr>>().cloned(),
        })
    }
}

/// Percent-encodes one path segment or query value.
pub(crate) fn enc(s: &str) -> String {
    serde_urlencoded::to_string([("", s)])
        .map(|q| q.trim_start_matches('=').replace('+', "%20"))
        .unwrap_or_default()
}

/// `path?k=v&...` with the non-empty values.
pub(crate) fn with_query(path: &str, q: &[(&str, &str)]) -> String {
    let kept: Vec<(&str, &str)> = q.iter().copied().filter(|(_, v)| !v.is_empty()).collect();
    if kept.is_empty() {
        return path.to_owned();
    }
    format!(
        "{path}?{}",
        serde_urlencoded::to_string(&kept).unwrap_or_default()
    )
}

impl Ctx {
    /// Calls the API: `path` from `/api/v1` on, with an optional body and its content type.
    pub(crate) async fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<(&str, Bytes)>,
        headers: &[(&str, &str)],
    ) -> Reply {
        self.request(method, &format!("/api/v1{path}"), body, headers)
            .await
    }

    /// `GET /metrics`: the Prometheus text (the dashboard reads it).
    pub(crate) async fn metrics(&self) -> Result<String, Response> {
        let r = self.request(Method::GET, "/metrics", None, &[]).await;
        if r.ok() {
            Ok(String::from_utf8_lossy(&r.body).into_owned())
        } else {
            Err(self.fail(&r))
        }
    }

    async fn request(
        &self,
        method: Method,
        uri: &str,
        body: Option<(&str, Bytes)>,
        headers: &[(&str, &str)],
    ) -> Reply {
        let mut b = Request::builder().method(method).uri(uri).header(
            header::AUTHORIZATION,
            format!("Bearer {}", self.sess.secret),
        );
        for (k, v) in headers {
            b = b.header(*k, *v);
        }
        let body = match body {
            Some((ct, bytes)) => {
                b = b.header(header::CONTENT_TYPE, ct);
                Body::from(bytes)
            }
            None => Body::empty(),
        };
        let mut req = match b.body(body) {
            Ok(r) => r,
            Err(e) => {
                return Reply {
                    status: StatusCode::BAD_REQUEST,
                    headers: HeaderMap::new(),
                    body: Bytes::from(
                        serde_json::json!({"code": "bad_request", "message": e.to_string()})
                            .to_string(),
                    ),
                };
            }
        };
        if let Some(p) = &self.peer {
            req.extensions_mut().insert(p.clone());
        }
        if let Some(c) = &self.conn {
            req.extensions_mut().insert(*c);
        }
        let resp = match self.ui.api.clone().oneshot(req).await {
            Ok(r) => r,
            Err(never) => match never {},
        };
        let (parts, body) = resp.into_parts();
        let body = match http_body_util::Limited::new(body, REPLY_LIMIT)
            .collect()
            .await
        {
            Ok(b) => b.to_bytes(),
            Err(e) => Bytes::from(
                serde_json::json!({"code": "too_large", "message": e.to_string()}).to_string(),
            ),
        };
        Reply {
            status: parts.status,
            headers: parts.headers,
            body,
        }
    }

    /// A JSON write.
    pub(crate) async fn send(&self, method: Method, path: &str, body: &Value) -> Reply {
        self.call(
            method,
            path,
            Some(("application/json", Bytes::from(body.to_string()))),
            &[],
        )
        .await
    }

    /// `GET path`'s JSON, or the error page (401 ends the session).
    pub(crate) async fn get(&self, path: &str) -> Result<Value, Response> {
        let r = self.call(Method::GET, path, None, &[]).await;
        if r.ok() {
            Ok(r.json())
        } else {
            Err(self.fail(&r))
        }
    }

    /// `GET path`'s JSON; `None` for 404 (and 503: the role is not running).
    pub(crate) async fn get_opt(&self, path: &str) -> Result<Option<Value>, Response> {
        let r = self.call(Method::GET, path, None, &[]).await;
        match r.status {
            s if s.is_success() => Ok(Some(r.json())),
            StatusCode::NOT_FOUND | StatusCode::SERVICE_UNAVAILABLE => Ok(None),
            _ => Err(self.fail(&r)),
        }
    }

    /// The page for an API answer that failed.
    pub(crate) fn fail(&self, r: &Reply) -> Response {
        if r.status == StatusCode::UNAUTHORIZED {
            // The token was deleted (or expired from the API's view): the session goes too.
            self.ui.sessions.end(&self.sess.id);
            return Redirect::to("/ui/login").into_response();
        }
        self.error(r.status, &r.message())
    }

    /// An error page with this status.
    pub(crate) fn error(&self, status: StatusCode, message: &str) -> Response {
        let mut resp = self.render(
            "error.html",
            minijinja::context! { status => status.as_u16(), message => message },
        );
        *resp.status_mut() = status;
        resp
    }

    /// Renders a page with the layout's context (the caller, the CSRF token, the flash).
    pub(crate) fn render(&self, name: &str, page: minijinja::Value) -> Response {
        self.render_with(name, page, self.sess.take_flash())
    }

    /// Renders part of a page (an htmx swap): the flash waits for the next whole page.
    pub(crate) fn render_part(&self, name: &str, page: minijinja::Value) -> Response {
        self.render_with(name, page, None)
    }

    fn render_with(
        &self,
        name: &str,
        page: minijinja::Value,
        flash: Option<(&'static str, String)>,
    ) -> Response {
        let base = minijinja::context! {
            me => minijinja::context! {
                id => self.sess.token_id,
                role => self.sess.role,
                can_write => self.sess.can_write(),
                admin => self.sess.is_admin(),
            },
            csrf => self.sess.csrf,
            flash => flash.map(|(k, t)| minijinja::context! { kind => k, text => t }),
            now_ms => crate::time::now_ms(),
        };
        match self
            .ui
            .views
            .render(name, minijinja::context! { ..base, ..page })
        {
            Ok(html) => Html(html).into_response(),
            Err(e) => {
                tracing::warn!(template = name, error = %e, "UI page failed to render");
                (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    format!("the page {name} failed to render: {e}\n"),
                )
                    .into_response()
            }
        }
    }

    /// A redirect after a POST, with a message for the next page.
    pub(crate) fn back(&self, to: &str, kind: &'static str, text: impl Into<String>) -> Response {
        self.sess.flash(kind, text);
        Redirect::to(to).into_response()
    }
}
