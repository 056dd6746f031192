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
    if let Some(secs) = app.failures.blocked(ip) {
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
        app.failures.fail(ip);
        return Err(
            ApiError::unauthorized("Authorization is not a Bearer token").field("Authorization"),
        );
    };
    let h = token_hash(secret);
    if let Some(token) = app.tokens.get(&h) {
        return Ok(Caller { token });
    }
    let store = std::sync::Arc::clone(&app.svc.store);
    let found = tokio::task::spawn_blocking(move || store.token_by_hash(&h))
        .await
        .map_err(|e| ApiError::backend(format!("token lookup: {e}")))??;
    match found {
        Some(token) => {
            app.tokens.put(h, token.clone());
            Ok(Caller { token })
        }
        None => {
            app.failures.fail(ip);
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
