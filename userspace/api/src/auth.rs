//! Bearer tokens: lookup by hash with a short cache, roles, scopes, and the failed
//! authentication limit per client address.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use provd_store::{Actor, Token, TokenRole};
use sha2::{Digest, Sha256};

use crate::{ApiError, App};

/// The SHA-256 of a token's secret: what the store keeps and looks tokens up by.
pub fn token_hash(secret: &str) -> [u8; 32] {
    Sha256::digest(secret.as_bytes()).into()
}

/// A new token secret: `provd_` and 32 random bytes in hex.
pub fn new_secret() -> std::io::Result<String> {
    use std::fmt::Write;
    let mut b = [0u8; 32];
    getrandom::getrandom(&mut b).map_err(|e| std::io::Error::other(e.to_string()))?;
    let mut s = String::with_capacity(70);
    s.push_str("provd_");
    for x in b {
        let _ = write!(s, "{x:02x}");
    }
    Ok(s)
}

/// The authenticated caller, in each request's extensions.
#[derive(Debug, Clone)]
pub(crate) struct Caller {
    pub(crate) token: Token,
}

impl Caller {
    pub(crate) fn actor(&self) -> Actor {
        Actor::Token(self.token.id.clone())
    }

    /// 403 unless the token's role is at least `role`.
    pub(crate) fn require(&self, role: TokenRole) -> Result<(), ApiError> {
        if self.token.role >= role {
            Ok(())
        } else {
            Err(ApiError::forbidden(format!(
                "token {} is {}; this needs {}",
                self.token.id,
                self.token.role.as_str(),
                role.as_str()
            )))
        }
    }
}

/// Token lookups, kept `ttl` (only tokens found: an unknown secret always asks the store).
pub(crate) struct TokenCache {
    ttl: Duration,
    map: Mutex<HashMap<[u8; 32], (Token, Instant)>>,
}

impl TokenCache {
    pub(crate) fn new(ttl: Duration) -> TokenCache {
        TokenCache {
            ttl,
            map: Mutex::new(HashMap::new()),
        }
    }

    fn get(&self, h: &[u8; 32]) -> Option<Token> {
        let map = self.map.lock().unwrap_or_else(|e| e.into_inner());
        map.get(h)
            .filter(|(_, at)| at.elapsed() < self.ttl)
            .map(|(t, _)| t.clone())
    }

    fn put(&self, h: [u8; 32], t: Token) {
        let mut map = self.map.lock().unwrap_or_else(|e| e.into_inner());
        if map.len() >= 10_000 {
            let ttl = self.ttl;
            map.retain(|_, (_, at)| at.elapsed() < ttl);
        }
        map.insert(h, (t, Instant::now()));
    }

    /// Forgets every cached token (after a token is deleted).
    pub(crate) fn clear(&self) {
        self.map.lock().unwrap_or_else(|e| e.into_inner()).clear();
    }
}

/// Unknown-token presentations per client address in a fixed window.
pub(crate) struct FailLimiter {
    limit: u32,
    window: Duration,
    map: Mutex<HashMap<IpAddr, (Instant, u32)>>,
}

impl FailLimiter {
    pub(crate) fn new(limit: u32, window: Duration) -> FailLimiter {
        FailLimiter {
            limit,
            window,
            map: Mutex::new(HashMap::new()),
        }
    }

    /// Seconds until `ip` may try again, if it is over the limit.
    fn blocked(&self, ip: IpAddr) -> Option<u64> {
        let map = self.map.lock().unwrap_or_else(|e| e.into_inner());
        let (start, n) = map.get(&ip)?;
        let left = self.window.checked_sub(start.elapsed())?;
        (*n >= self.limit).then(|| left.as_secs().max(1))
    }

    fn fail(&self, ip: IpAddr) {
        metrics::counter!(provd_role::metrics::names::API_AUTH_FAILURES_TOTAL).increment(1);
        let mut map = self.map.lock().unwrap_or_else(|e| e.into_inner());
        if map.len() >= 100_000 {
            let w = self.window;
            map.retain(|_, (s, _)| s.elapsed() < w);
        }
        let e = map.entry(ip).or_insert((Instant::now(), 0));
        if e.0.elapsed() >= self.window {
            *e = (Instant::now(), 0);
        }
        e.1 = e.1.saturating_add(1);
    }
}

/// The client's address: provd-web's `Peer`, else axum's `ConnectInfo`, else unspecified.
pub(crate) fn client_ip(req: &Request) -> IpAddr {
    if let Some(p) = req.extensions().get::<provd_web::Peer>() {
        return p.remote.ip();
    }
    if let Some(ConnectInfo(a)) = req.extensions().get::<ConnectInfo<SocketAddr>>() {
        return a.ip();
    }
    IpAddr::V4(Ipv4Addr::UNSPECIFIED)
}

/// Who is calling, or the 401/429 to answer.
pub(crate) async fn caller_of(
    app: &App,
    ip: IpAddr,
    headers: &HeaderMap,
) -> Result<Caller, ApiError> {
    caller_from(&app.svc.store, &app.tokens, &app.failures, ip, headers).await
}

/// [`caller_of`] over the parts it needs: the store, a token cache and a failure limiter.
async fn caller_from(
    store: &std::sync::Arc<dyn provd_store::Store>,
    tokens: &TokenCache,
    failures: &FailLimiter,
    ip: IpAddr,
    headers: &HeaderMap,
) -> Result<Caller, ApiError> {
    if let Some(secs) = failures.blocked(ip) {
        let mut e = ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            "too_many_failures",
            format!("too many failed authentications from {ip}; try again in {secs} s"),
        );
        e.retry_after = Some(secs);
        return Err(e);
    }
    let Some(value) = headers.get(header::AUTHORIZATION) else {
        return Err(ApiError::unauthorized("no Authorization: Bearer token").field("Authorization"));
    };
    let secret = value
        .to_str()
        .ok()
        .and_then(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("bearer "))
        })
        .map(str::trim)
        .filter(|s| !s.is_empty());
    let Some(secret) = secret else {
        failures.fail(ip);
        return Err(
            ApiError::unauthorized("Authorization is not a Bearer token").field("Authorization"),
        );
    };
    let h = token_hash(secret);
    if let Some(token) = tokens.get(&h) {
        return Ok(Caller { token });
    }
    let store = std::sync::Arc::clone(store);
    let found = tokio::task::spawn_blocking(move || store.token_by_hash(&h))
        .await
        .map_err(|e| ApiError::backend(format!("token lookup: {e}")))??;
    match found {
        Some(token) => {
            tokens.put(h, token.clone());
            Ok(Caller { token })
        }
        None => {
            failures.fail(ip);
            Err(ApiError::unauthorized("unknown token").field("Authorization"))
        }
    }
}

/// The middleware on every `/api/v1` route: authenticates, lets read-only tokens GET only,
/// and puts the [`Caller`] in the request.
pub(crate) async fn authenticate(State(app): State<App>, mut req: Request, next: Next) -> Response {
    let ip = client_ip(&req);
    let caller = match caller_of(&app, ip, req.headers()).await {
        Ok(c) => c,
        Err(e) => return e.into_response(),
    };
    if !matches!(*req.method(), Method::GET | Method::HEAD)
        && let Err(e) = caller.require(TokenRole::Operator)
    {
        return e.into_response();
    }
    req.extensions_mut().insert(caller);
    next.run(req).await
}

/// What [`guard`] keeps: this API's token checks for another listener.
struct Gate {
    store: std::sync::Arc<dyn provd_store::Store>,
    tokens: TokenCache,
    failures: FailLimiter,
    resource: &'static str,
}

/// Puts another listener's `router` behind this API's tokens (the ACS task API on its own
/// port): the same store, the same roles (read-only may only GET, operator for the rest;
/// tokens with a scope are refused, the router knows no scopes), the same failure limit per
/// client address. Every request it answers with success that is not a GET or HEAD is
/// audited as `resource`, with the method, path and JSON body, under the token's name. The
/// token cache is its own: a deleted token is refused here within the cache's TTL.
pub fn guard(
    router: axum::Router,
    store: std::sync::Arc<dyn provd_store::Store>,
    settings: &crate::ApiSettings,
    resource: &'static str,
) -> axum::Router {
    let gate = std::sync::Arc::new(Gate {
        store,
        tokens: TokenCache::new(settings.token_cache_ttl),
        failures: FailLimiter::new(settings.auth_fail_limit, settings.auth_fail_window),
        resource,
    });
    router.layer(axum::middleware::from_fn_with_state(gate, gated))
}

async fn gated(State(gate): State<std::sync::Arc<Gate>>, req: Request, next: Next) -> Response {
    let ip = client_ip(&req);
    let caller =
        match caller_from(&gate.store, &gate.tokens, &gate.failures, ip, req.headers()).await {
            Ok(c) => c,
            Err(e) => return e.into_response(),
        };
    let read = matches!(*req.method(), Method::GET | Method::HEAD);
    if !read && let Err(e) = caller.require(TokenRole::Operator) {
        return e.into_response();
    }
    if !caller.token.scope.is_unlimited() {
        return ApiError::forbidden("this API is not scoped; it needs a token without a scope")
            .into_response();
    }
    if read {
        return next.run(req).await;
    }
    // Writes: the body is kept for the audit entry (the routes behind take small JSON).
    let (parts, body) = req.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, 1 << 20).await else {
        return ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "too_large",
            "the request body is over 1 MiB",
        )
        .into_response();
    };
    let method = parts.method.to_string();
    let path = parts.uri.path().to_owned();
    let detail = serde_json::json!({
        "method": method,
        "path": path,
        "body": serde_json::from_slice::<serde_json::Value>(&bytes)
            .unwrap_or_else(|_| String::from_utf8_lossy(&bytes).into_owned().into()),
    });
    let resp = next
        .run(Request::from_parts(parts, axum::body::Body::from(bytes)))
        .await;
    if resp.status().is_success() {
        let who = caller.actor();
        tracing::info!(target: "audit", who = %who, method, path, resource = gate.resource, "audit");
        let g = std::sync::Arc::clone(&gate);
        let r = tokio::task::spawn_blocking(move || {
            g.store
                .audit_action("request", g.resource, &path, Some(detail), &who)
        })
        .await;
        if !matches!(r, Ok(Ok(()))) {
            tracing::error!(
                resource = gate.resource,
                "the audit entry could not be written"
            );
        }
    }
    resp
}
