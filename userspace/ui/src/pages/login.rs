//! The login page (an API token's secret → a session cookie) and logout.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Form;
use axum::body::Body;
use axum::extract::{ConnectInfo, FromRequest, Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use http_body_util::BodyExt;
use tower::ServiceExt;

use super::{Fields, field};
use crate::Ui;
use crate::session::{cookie_of, set_cookie};

fn page(ui: &Ui, error: Option<&str>, status: StatusCode) -> Response {
    let html = ui
        .views
        .render("login.html", minijinja::context! { error => error });
    match html {
        Ok(h) => (status, Html(h)).into_response(),
        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response(),
    }
}

pub(crate) async fn form(State(ui): State<Ui>, headers: HeaderMap) -> Response {
    if cookie_of(&headers)
        .and_then(|id| ui.sessions.get(id))
        .is_some()
    {
        return Redirect::to("/ui/").into_response();
    }
    page(&ui, None, StatusCode::OK)
}

/// Checks the secret with `GET /api/v1/whoami` (so the API's failed-authentication limit
/// counts a wrong one against this address) and starts a session.
pub(crate) async fn submit(State(ui): State<Ui>, req: Request) -> Response {
    let peer = req.extensions().get::<provd_web::Peer>().cloned();
    let conn = req.extensions().get::<ConnectInfo<SocketAddr>>().cloned();
    let Ok(Form(f)) = Form::<Fields>::from_request(req, &()).await else {
        return page(
            &ui,
            Some("the form could not be read"),
            StatusCode::BAD_REQUEST,
        );
    };
    let secret = field(&f, "token").to_owned();
    if secret.is_empty() {
        return page(&ui, Some("enter an API token"), StatusCode::BAD_REQUEST);
    }
    let mut call = match axum::http::Request::get("/api/v1/whoami")
        .header(header::AUTHORIZATION, format!("Bearer {secret}"))
        .body(Body::empty())
    {
        Ok(r) => r,
        Err(_) => {
            return page(
                &ui,
                Some("that is not a token (it has characters a token never has)"),
                StatusCode::BAD_REQUEST,
            );
        }
    };
    if let Some(p) = peer {
        call.extensions_mut().insert(p);
    }
    if let Some(c) = conn {
        call.extensions_mut().insert(c);
    }
    let resp = match ui.api.clone().oneshot(call).await {
        Ok(r) => r,
        Err(never) => match never {},
    };
    let status = resp.status();
    let body = resp
        .into_body()
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    let v: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
    if !status.is_success() {
        let msg = match status {
            StatusCode::UNAUTHORIZED => "unknown token".to_owned(),
            _ => v["message"]
                .as_str()
                .map_or_else(|| format!("login failed ({status})"), str::to_owned),
        };
        tracing::info!(status = status.as_u16(), "UI login refused");
        return page(&ui, Some(&msg), status);
    }
    let (Some(id), Some(role)) = (v["id"].as_str(), v["role"].as_str()) else {
        return page(
            &ui,
            Some("the API's answer had no token name or role"),
            StatusCode::BAD_GATEWAY,
        );
    };
    let Some(sess) = ui.sessions.start(secret, id.to_owned(), role.to_owned()) else {
        return page(
            &ui,
            Some("no randomness for a session id"),
            StatusCode::SERVICE_UNAVAILABLE,
        );
    };
    tracing::info!(token = id, role, "UI login");
    let mut r = Redirect::to("/ui/").into_response();
    r.headers_mut().insert(
        header::SET_COOKIE,
        set_cookie(&sess.id, ui.settings.secure_cookie),
    );
    r
}

pub(crate) async fn logout(
    State(ui): State<Ui>,
    axum::Extension(sess): axum::Extension<Arc<crate::session::Session>>,
) -> Response {
    ui.sessions.end(&sess.id);
    let mut r = Redirect::to("/ui/login").into_response();
    r.headers_mut().insert(
        header::SET_COOKIE,
        set_cookie("", ui.settings.secure_cookie),
    );
    r
}
