//! Request parsing that names the field at fault, conditional-request headers, and the
//! helpers every handler shares.

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Query, Request};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use provd_store::{Expect, Mac};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::ApiError;
use crate::error::serde_field;

/// A JSON body, parsed to a value (syntax errors: 400 `bad_json`; too big: 413).
pub(crate) struct JsonBody(pub(crate) serde_json::Value);

impl<S: Send + Sync> FromRequest<S> for JsonBody {
    type Rejection = ApiError;
    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        let bytes = body_bytes(req, state).await?;
        if bytes.is_empty() {
            return Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                "bad_json",
                "the body is empty; a JSON object is wanted",
            ));
        }
        serde_json::from_slice(&bytes)
            .map(JsonBody)
            .map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, "bad_json", format!("body: {e}")))
    }
}

/// The raw body, 413 `payload_too_large` past the route's limit.
pub(crate) async fn body_bytes<S: Send + Sync>(req: Request, state: &S) -> Result<Bytes, ApiError> {
    Bytes::from_request(req, state).await.map_err(|e| {
        let status = e.status();
        if status == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::new(
                status,
                "payload_too_large",
                "the body is larger than this route takes",
            )
        } else {
            ApiError::new(StatusCode::BAD_REQUEST, "bad_body", e.body_text())
        }
    })
}

/// `v` as a `T`, a failure naming the JSON path at fault (`vars.tier`, `mac`).
pub(crate) fn decode<T: DeserializeOwned>(v: serde_json::Value) -> Result<T, ApiError> {
    serde_path_to_error::deserialize(v).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner().to_string();
        let field = serde_field(&path, &inner);
        let mut err = ApiError::new(StatusCode::BAD_REQUEST, "invalid", inner);
        err.body.field = field;
        err
    })
}

/// Query parameters; a bad one is a 400 `invalid_query` naming it.
pub(crate) struct Q<T>(pub(crate) T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequestParts<S> for Q<T> {
    type Rejection = ApiError;
    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, ApiError> {
        match Query::<T>::try_from_uri(&parts.uri) {
            Ok(Query(t)) => Ok(Q(t)),
            Err(e) => {
                let text = e.body_text();
                let rest = text
                    .strip_prefix("Failed to deserialize query string: ")
                    .unwrap_or(&text);
                let (path, msg) = match rest.split_once(": ") {
                    Some((p, m)) if !p.contains(' ') => (p, m),
                    _ => ("", rest),
                };
                let mut err =
                    ApiError::new(StatusCode::BAD_REQUEST, "invalid_query", msg.to_owned());
                err.body.field = serde_field(path, msg);
                Err(err)
            }
        }
    }
}

/// What `If-Match` / `If-None-Match` ask of a write.
pub(crate) fn expect_of(h: &HeaderMap) -> Result<Expect, ApiError> {
    let get = |name: header::HeaderName| -> Result<Option<String>, ApiError> {
        h.get(&name)
            .map(|v| {
                v.to_str()
                    .map(|s| s.trim().to_owned())
                    .map_err(|_| ApiError::invalid(name.as_str().to_owned(), "not ASCII"))
            })
            .transpose()
    };
    let m = get(header::IF_MATCH)?;
    let n = get(header::IF_NONE_MATCH)?;
    match (m, n) {
        (Some(_), Some(_)) => Err(ApiError::invalid(
            "If-None-Match",
            "give If-Match or If-None-Match, not both",
        )),
        (None, None) => Ok(Expect::Any),
        (None, Some(n)) if n == "*" => Ok(Expect::Absent),
        (None, Some(_)) => Err(ApiError::invalid(
            "If-None-Match",
            "only If-None-Match: * (create only) is understood",
        )),
        (Some(m), None) if m == "*" => Ok(Expect::Any),
        (Some(m), None) => {
            let v = m.strip_prefix("W/").unwrap_or(&m);
            let v = v
                .strip_prefix('"')
                .and_then(|v| v.strip_suffix('"'))
                .unwrap_or(v);
            v.parse::<u64>().map(Expect::Version).map_err(|_| {
                ApiError::invalid(
                    "If-Match",
                    format!("{m:?} is not an ETag this API gave (\"<version>\")"),
                )
            })
        }
    }
}

/// A JSON record with `ETag: "<version>"`.
pub(crate) fn tagged<T: Serialize>(status: StatusCode, version: u64, body: &T) -> Response {
    let mut r = (status, axum::Json(body)).into_response();
    if let Ok(v) = HeaderValue::from_str(&format!("\"{version}\"")) {
        r.headers_mut().insert(header::ETAG, v);
    }
    r
}

/// A MAC from a path or query, 400 naming `field` otherwise.
pub(crate) fn parse_mac(field: &str, s: &str) -> Result<Mac, ApiError> {
    s.parse()
        .map_err(|e: provd_store::BadMac| ApiError::invalid(field, format!("{s:?}: {e}")))
}

/// Runs `f` on the blocking pool (store calls are synchronous).
pub(crate) async fn blocking<T, F>(f: F) -> Result<T, ApiError>
where
    T: Send + 'static,
    F: FnOnce() -> Result<T, ApiError> + Send + 'static,
{
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| ApiError::backend(format!("blocking task: {e}")))?
}

/// Inserts the path's key into a body that left it out; 400 if the body names another.
pub(crate) fn with_key(
    mut v: serde_json::Value,
    field: &str,
    key: &str,
) -> Result<serde_json::Value, ApiError> {
    let Some(obj) = v.as_object_mut() else {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid",
            "the body is a JSON object",
        ));
    };
    match obj.get(field) {
        None => {
            obj.insert(field.to_owned(), serde_json::Value::String(key.to_owned()));
        }
        Some(serde_json::Value::String(s)) if s == key => {}
        Some(serde_json::Value::String(s))
            if field == "mac"
                && s.parse::<Mac>().ok() == key.parse::<Mac>().ok()
                && s.parse::<Mac>().is_ok() => {}
        Some(_) => {
            return Err(ApiError::invalid(
                field,
                format!("the body's {field} is not the path's {key:?}"),
            ));
        }
    }
    Ok(v)
}
