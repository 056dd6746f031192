//! The CWMP listener: one handler for POST on any path, sessions by cookie or connection, the
//! authentication gate before any session state, and the envelope dump.

use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Extension, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use provd_acs::SessionDevice;
use provd_acs::auth::{self, Verdict};
use provd_cwmp::{Outcome, Session, SessionState};
use provd_role::clock;
use provd_web::Peer;

use crate::{Acsd, Auth, Entry, INLINE_MAX, SessionKey, random_u64};

/// The router of every CWMP listener (plain and TLS).
pub(crate) fn router(srv: &Arc<Acsd>) -> Router {
    Router::new()
        .fallback(cwmp)
        .layer(axum::extract::DefaultBodyLimit::max(srv.limits.max_bytes))
        .with_state(Arc::clone(srv))
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

fn unauthorized(srv: &Acsd, now: u64, stale: bool) -> Response {
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
    State(srv): State<Arc<Acsd>>,
    Extension(peer): Extension<Peer>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if method != Method::POST {
        return (StatusCode::METHOD_NOT_ALLOWED, [(header::ALLOW, "POST")]).into_response();
    }
    let now = clock::unix_secs();
    let cookie = cookie_of(&headers);
    let existing = cookie
        .and_then(|c| {
            srv.sessions
                .get(&SessionKey::Cookie(c))
                .map(|e| Arc::clone(&e))
        })
        .or_else(|| {
            srv.sessions
                .get(&SessionKey::Conn(peer.conn))
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
            let src = peer.remote.ip();
            let now_ms = clock::unix_millis();
            let creds = match &srv.auth {
                Auth::None => None,
                Auth::Basic(c) => Some(c),
                Auth::Digest(d) => Some(d.credentials()),
            };
            let claimed = creds.and_then(|_| auth::claimed_username(authz));
            if creds.is_some() {
                let locked = srv
                    .throttle
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .check(now_ms, src, claimed.as_deref());
                if let Err(locked) = locked {
                    // Refused unchecked, with the same answer as a wrong guess: the sender
                    // cannot tell a lockout from a wrong password.
                    srv.acs
                        .counters
                        .auth_throttled
                        .fetch_add(1, Ordering::Relaxed);
                    if srv.may_log() {
                        tracing::info!(remote = %peer.remote, ?locked, "ACS authentication throttled");
                    }
                    return unauthorized(&srv, now, false);
                }
            }
            let verdict = match &srv.auth {
                Auth::None => Verdict::Ok {
                    username: String::new(),
                },
                Auth::Basic(c) => auth::check_basic(c, authz),
                Auth::Digest(d) => d.check(now as u32, "POST", target, authz),
            };
            if let Some(c) = creds {
                let mut t = srv.throttle.lock().unwrap_or_else(|p| p.into_inner());
                if verdict.is_wrong_guess() {
                    let known = claimed.as_deref().filter(|u| c.knows(u));
                    t.failed(now_ms, src, known);
                } else if matches!(verdict, Verdict::Ok { .. }) {
                    t.succeeded(now_ms, src);
                }
            }
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
                conn: peer.conn,
                started: std::time::Instant::now(),
                recorded: false,
            }));
            srv.sessions.insert(SessionKey::Cookie(c), Arc::clone(&e));
            srv.sessions
                .insert(SessionKey::Conn(peer.conn), Arc::clone(&e));
            e
        }
    };
    let (resp, done, keys) = if body.len() <= INLINE_MAX {
        handle(&srv, &entry, &peer, uri.path(), now, &body)
    } else {
        // A large envelope: parsed on the blocking pool once a permit is free, so that no
        // number of them holds the control plane's threads.
        let Ok(_permit) = Arc::clone(&srv.parse_permits).acquire_owned().await else {
            return StatusCode::SERVICE_UNAVAILABLE.into_response();
        };
        let s2 = Arc::clone(&srv);
        let path = uri.path().to_owned();
        let p2 = peer.clone();
        let work = tokio::task::spawn_blocking(move || handle(&s2, &entry, &p2, &path, now, &body));
        match work.await {
            Ok(r) => r,
            Err(_) => return StatusCode::INTERNAL_SERVER_ERROR.into_response(),
        }
    };
    match &resp.outcome {
        Outcome::BadEnvelope(e) => {
            srv.acs
                .counters
                .bad_envelopes
                .fetch_add(1, Ordering::Relaxed);
            if e.is_over_limit() {
                srv.acs
                    .counters
                    .envelopes_over_limit
                    .fetch_add(1, Ordering::Relaxed);
            }
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

/// One request's turn in its session, under the time budget: the answer, whether the session
/// is done, and its two keys.
fn handle(
    srv: &Acsd,
    entry: &Mutex<Entry>,
    peer: &Peer,
    path: &str,
    now: u64,
    body: &[u8],
) -> (provd_cwmp::Response, bool, (u64, u64)) {
    let mut g = entry.lock().unwrap_or_else(|p| p.into_inner());
    let g = &mut *g;
    g.session
        .set_deadline(Some(std::time::Instant::now() + srv.budget));
    let mut d = srv.acs.driver(&mut g.dev, peer.local.port(), path);
    let r = g.session.handle(now, body, &mut d);
    let done = g.session.state() == SessionState::Done;
    if done {
        g.ended("ok");
        let id = g.dev.key.as_ref().map(|k| srv.acs.store.display(k));
        srv.session_ended(peer.remote, id, "ok");
    }
    (r, done, (g.cookie, g.conn))
}
