//! Login sessions (a random id in a cookie, the token's secret kept server-side), and the
//! guard every request passes: a session for every page but the login page and the static
//! files, and the CSRF token on every request that changes something.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use http_body_util::BodyExt;

use crate::{Ui, UiSettings};

/// The session cookie's name.
pub const SESSION_COOKIE: &str = "provd_session";

/// The header htmx and the page's script send the CSRF token in.
pub(crate) const CSRF_HEADER: &str = "x-csrf-token";

/// The largest form body the guard reads to find the CSRF field (uploads carry the header).
const FORM_LIMIT: usize = 4 << 20;

/// A logged-in browser.
#[derive(Debug)]
pub(crate) struct Session {
    pub(crate) id: String,
    /// The API token's secret, sent as the bearer on every in-process API call.
    pub(crate) secret: String,
    /// The token's name and role, as `GET /api/v1/whoami` gave them at login.
    pub(crate) token_id: String,
    pub(crate) role: String,
    pub(crate) csrf: String,
    created: Instant,
    last: Mutex<Instant>,
    /// A message for the next page (after a POST's redirect): (`ok`|`error`, text).
    flash: Mutex<Option<(&'static str, String)>>,
}

impl Session {
    /// May this session's pages show write controls (operator and admin)?
    pub(crate) fn can_write(&self) -> bool {
        self.role == "operator" || self.role == "admin"
    }

    pub(crate) fn is_admin(&self) -> bool {
        self.role == "admin"
    }

    pub(crate) fn flash(&self, kind: &'static str, text: impl Into<String>) {
        *self.flash.lock().unwrap_or_else(|e| e.into_inner()) = Some((kind, text.into()));
    }

    pub(crate) fn take_flash(&self) -> Option<(&'static str, String)> {
        self.flash.lock().unwrap_or_else(|e| e.into_inner()).take()
    }
}

/// Every live session, by id.
pub(crate) struct Sessions {
    idle: Duration,
    max_age: Duration,
    max: usize,
    map: Mutex<HashMap<String, Arc<Session>>>,
}

/// 32 random bytes as hex; `None` where the OS has no randomness (then no session starts:
/// an id or CSRF token from anything else would be guessable).
pub(crate) fn random_hex() -> Option<String> {
    use std::fmt::Write;
    let mut b = [0u8; 32];
    getrandom::getrandom(&mut b).ok()?;
    let mut s = String::with_capacity(64);
    for x in b {
        let _ = write!(s, "{x:02x}");
    }
    Some(s)
}

impl Sessions {
    pub(crate) fn new(s: &UiSettings) -> Sessions {
        Sessions {
            idle: s.idle,
            max_age: s.max_age,
            max: s.max_sessions.max(1),
            map: Mutex::new(HashMap::new()),
        }
    }

    fn live(&self, s: &Session, now: Instant) -> bool {
        let last = *s.last.lock().unwrap_or_else(|e| e.into_inner());
        now.duration_since(last) < self.idle && now.duration_since(s.created) < self.max_age
    }

    /// Starts a session for a token that authenticated (`None`: no randomness for its id).
    pub(crate) fn start(
        &self,
        secret: String,
        token_id: String,
        role: String,
    ) -> Option<Arc<Session>> {
        let now = Instant::now();
        let s = Arc::new(Session {
            id: random_hex()?,
            secret,
            token_id,
            role,
            csrf: random_hex()?,
            created: now,
            last: Mutex::new(now),
            flash: Mutex::new(None),
        });
        let mut map = self.map.lock().unwrap_or_else(|e| e.into_inner());
        if map.len() >= self.max {
            map.retain(|_, s| self.live(s, now));
            while map.len() >= self.max {
                let Some(oldest) = map
                    .values()
                    .min_by_key(|s| *s.last.lock().unwrap_or_else(|e| e.into_inner()))
                    .map(|s| s.id.clone())
                else {
                    break;
                };
                map.remove(&oldest);
            }
        }
        map.insert(s.id.clone(), Arc::clone(&s));
        Some(s)
    }

    /// The live session of `id`, touched.
    pub(crate) fn get(&self, id: &str) -> Option<Arc<Session>> {
        let now = Instant::now();
        let mut map = self.map.lock().unwrap_or_else(|e| e.into_inner());
        let s = map.get(id)?;
        if !self.live(s, now) {
            map.remove(id);
            return None;
        }
        *s.last.lock().unwrap_or_else(|e| e.into_inner()) = now;
        Some(Arc::clone(s))
    }

    pub(crate) fn end(&self, id: &str) {
        self.map
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(id);
    }
}

/// The session id in the request's cookies.
pub(crate) fn cookie_of(headers: &HeaderMap) -> Option<&str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .find_map(|kv| {
            let (k, v) = kv.trim().split_once('=')?;
            (k == SESSION_COOKIE).then_some(v)
        })
}

/// The `Set-Cookie` value that starts (or, with an empty id, ends) a session.
pub(crate) fn set_cookie(id: &str, secure: bool) -> HeaderValue {
    let mut c = format!("{SESSION_COOKIE}={id}; Path=/ui; HttpOnly; SameSite=Strict");
    if id.is_empty() {
        c.push_str("; Max-Age=0");
    }
    if secure {
        c.push_str("; Secure");
    }
    HeaderValue::from_str(&c)
        .unwrap_or_else(|_| HeaderValue::from_static("provd_session=; Path=/ui"))
}

fn forbidden(why: &str) -> Response {
    tracing::debug!(why, "UI request refused");
    (
        StatusCode::FORBIDDEN,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        format!("403 Forbidden: {why}\n"),
    )
        .into_response()
}

fn to_login(req: &Request) -> Response {
    if req.headers().contains_key("hx-request") {
        return (
            StatusCode::UNAUTHORIZED,
            [("hx-redirect", HeaderValue::from_static("/ui/login"))],
        )
            .into_response();
    }
    if matches!(*req.method(), Method::GET | Method::HEAD) {
        Redirect::to("/ui/login").into_response()
    } else {
        forbidden("no session (log in first)")
    }
}

/// Whether `a` and `b` are equal, in time independent of where they differ.
fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The CSRF field of a url-encoded form body.
fn form_csrf(body: &[u8]) -> Option<String> {
    serde_urlencoded::from_bytes::<Vec<(String, String)>>(body)
        .ok()?
        .into_iter()
        .find_map(|(k, v)| (k == "csrf").then_some(v))
}

/// The middleware on every `/ui` route.
pub(crate) async fn guard(State(ui): State<Ui>, req: Request, next: Next) -> Response {
    let path = req.uri().path();
    let open = path == "/ui/login" || path.starts_with("/ui/static/") || path == "/ui";
    let changes = !matches!(*req.method(), Method::GET | Method::HEAD);
    if changes
        && req
            .headers()
            .get("sec-fetch-site")
            .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"cross-site"))
    {
        return forbidden("a cross-site request");
    }
    if open {
        return next.run(req).await;
    }
    let Some(sess) = cookie_of(req.headers()).and_then(|id| ui.sessions.get(id)) else {
        return to_login(&req);
    };
    let mut req = req;
    if changes {
        let header_token = req
            .headers()
            .get(CSRF_HEADER)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let given = match header_token {
            Some(t) => Some(t),
            None => {
                let is_form = req
                    .headers()
                    .get(header::CONTENT_TYPE)
                    .and_then(|v| v.to_str().ok())
                    .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"));
                if !is_form {
                    return forbidden("no CSRF token (X-CSRF-Token or the form's csrf field)");
                }
                let (parts, body) = req.into_parts();
                let bytes = match http_body_util::Limited::new(body, FORM_LIMIT)
                    .collect()
                    .await
                {
                    Ok(b) => b.to_bytes(),
                    Err(_) => {
                        return (StatusCode::PAYLOAD_TOO_LARGE, "form too large\n").into_response();
                    }
                };
                let t = form_csrf(&bytes);
                req = Request::from_parts(parts, Body::from(bytes));
                t
            }
        };
        match given {
            Some(t) if same(t.as_bytes(), sess.csrf.as_bytes()) => {}
            Some(_) => return forbidden("the CSRF token does not match this session"),
            None => return forbidden("no CSRF token in the form"),
        }
    }
    req.extensions_mut().insert(sess);
    next.run(req).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cookies_are_found_among_others_and_compared_whole() {
        let mut h = HeaderMap::new();
        h.insert(
            header::COOKIE,
            HeaderValue::from_static("a=1; provd_session=abc; provd_session_x=no"),
        );
        assert_eq!(cookie_of(&h), Some("abc"));
        h.insert(
            header::COOKIE,
            HeaderValue::from_static("provd_sessionx=abc"),
        );
        assert_eq!(cookie_of(&h), None);
        assert!(same(b"abc", b"abc"));
        assert!(!same(b"abc", b"abd"));
        assert!(!same(b"abc", b"ab"));
        assert_eq!(form_csrf(b"class=silver&csrf=t%2B1"), Some("t+1".into()));
        assert_eq!(form_csrf(b"class=silver"), None);
    }

    #[test]
    fn sessions_end_when_idle_or_old_and_the_oldest_give_way() {
        let s = Sessions::new(&UiSettings {
            idle: Duration::from_millis(50),
            max_age: Duration::from_secs(60),
            max_sessions: 2,
            ..UiSettings::default()
        });
        let a = s.start("s1".into(), "a".into(), "operator".into()).unwrap();
        assert!(s.get(&a.id).is_some());
        std::thread::sleep(Duration::from_millis(80));
        assert!(s.get(&a.id).is_none(), "idle session still alive");
        let b = s.start("s2".into(), "b".into(), "operator".into()).unwrap();
        std::thread::sleep(Duration::from_millis(5));
        let c = s
            .start("s3".into(), "c".into(), "read-only".into())
            .unwrap();
        let d = s.start("s4".into(), "d".into(), "admin".into()).unwrap();
        assert!(s.get(&b.id).is_none(), "the oldest did not give way");
        assert!(s.get(&c.id).is_some() && s.get(&d.id).is_some());
        assert!(!c.can_write() && d.can_write() && d.is_admin());
        assert_ne!(c.csrf, d.csrf);
        s.end(&d.id);
        assert!(s.get(&d.id).is_none());
    }
}
