//! The API's one error shape: `{"code", "message", "field"}`, with a stable snake_case code.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use provd_store::StoreError;
use serde::Serialize;
use utoipa::ToSchema;

/// What every non-2xx answer carries.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ErrorBody {
    /// Stable, snake_case: `invalid`, `bad_json`, `invalid_query`, `unauthorized`,
    /// `forbidden`, `not_found`, `no_route`, `method_not_allowed`, `conflict`,
    /// `version_mismatch`, `payload_too_large`, `too_many_failures`, `orphaned_leases`,
    /// `template_invalid`, `backend`, `unavailable`.
    pub code: String,
    /// For a person.
    pub message: String,
    /// The JSON path (body), query parameter or header at fault, when one is.
    pub field: Option<String>,
    /// More about it: `{"current_version": N}` on a 412, the reload report on a refused
    /// reload, `{"problems": [{"line", "column", "message", "stage"}]}` on
    /// `template_invalid`.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub detail: Option<serde_json::Value>,
}

/// An error answer: a status and its [`ErrorBody`].
#[derive(Debug, Clone)]
pub struct ApiError {
    /// The HTTP status.
    pub status: StatusCode,
    /// The body.
    pub body: Box<ErrorBody>,
    /// `Retry-After` seconds (429).
    pub retry_after: Option<u64>,
}

impl ApiError {
    /// An error with `code` and `message`, no field.
    pub fn new(status: StatusCode, code: &str, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            body: Box::new(ErrorBody {
                code: code.into(),
                message: message.into(),
                field: None,
                detail: None,
            }),
            retry_after: None,
        }
    }

    /// Names the field at fault.
    pub fn field(mut self, field: impl Into<String>) -> ApiError {
        self.body.field = Some(field.into());
        self
    }

    /// Adds `detail`.
    pub fn detail(mut self, detail: serde_json::Value) -> ApiError {
        self.body.detail = Some(detail);
        self
    }

    /// 400 `invalid` at `field`.
    pub fn invalid(field: impl Into<String>, message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, "invalid", message).field(field)
    }

    /// 404 `not_found`.
    pub fn not_found(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::NOT_FOUND, "not_found", message)
    }

    /// 403 `forbidden`.
    pub fn forbidden(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::FORBIDDEN, "forbidden", message)
    }

    /// 401 `unauthorized` (the response carries `WWW-Authenticate: Bearer`).
    pub fn unauthorized(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::UNAUTHORIZED, "unauthorized", message)
    }

    /// 400 `template_invalid` at `text`: `detail` is `{"problems": [{line, column, message,
    /// stage}]}`.
    pub fn template_invalid(problems: Vec<crate::TemplateProblem>) -> ApiError {
        let message = match problems.first() {
            Some(p) => format!("the template has {} problem(s); first: {p}", problems.len()),
            None => "the template is invalid".to_owned(),
        };
        ApiError::new(StatusCode::BAD_REQUEST, "template_invalid", message)
            .field("text")
            .detail(serde_json::json!({ "problems": problems }))
    }

    /// 500 `backend`: a store or role failure, not the caller's fault.
    pub fn backend(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "backend", message)
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> ApiError {
        let msg = e.to_string();
        match e {
            StoreError::NotFound { .. } => ApiError::not_found(msg),
            StoreError::VersionMismatch { actual, .. } => {
                ApiError::new(StatusCode::PRECONDITION_FAILED, "version_mismatch", msg)
                    .field("If-Match")
                    .detail(serde_json::json!({ "current_version": actual }))
            }
            StoreError::Conflict { .. } => ApiError::new(StatusCode::CONFLICT, "conflict", msg),
            StoreError::Invalid { field, why } => ApiError::invalid(field, why),
            StoreError::Backend(_) => ApiError::backend(msg),
        }
    }
}

impl From<crate::ServiceError> for ApiError {
    fn from(e: crate::ServiceError) -> ApiError {
        use crate::ServiceError as E;
        match e {
            E::NotFound(m) => ApiError::not_found(m),
            E::Invalid { field, message } => ApiError::invalid(field, message),
            E::Conflict(m) => ApiError::new(StatusCode::CONFLICT, "conflict", m),
            E::Unavailable(m) => ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "unavailable", m),
            E::Failed(m) => ApiError::backend(m),
            E::Unreachable(m) => {
                ApiError::new(StatusCode::GATEWAY_TIMEOUT, "device_unreachable", m)
            }
            E::TemplateInvalid(problems) => ApiError::template_invalid(problems),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut r = (self.status, axum::Json(*self.body)).into_response();
        if self.status == StatusCode::UNAUTHORIZED {
            r.headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        if let Some(s) = self.retry_after {
            r.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(s));
        }
        r
    }
}

/// Where a serde error happened, as a JSON path (`vars.tier`, `items[3].mac`), naming the
/// missing or unknown field itself when serde reports it on its parent.
pub(crate) fn serde_field(path: &str, message: &str) -> Option<String> {
    let named = ["missing field `", "unknown field `"]
        .iter()
        .find_map(|p| message.split_once(p))
        .and_then(|(_, rest)| rest.split_once('`'))
        .map(|(name, _)| name.to_owned());
    let path = if path == "." || path.is_empty() {
        None
    } else {
        Some(path.to_owned())
    };
    match (path, named) {
        // serde_path_to_error names an unknown key in the path itself, a missing one not.
        (Some(p), Some(n)) if p == n || p.ends_with(&format!(".{n}")) => Some(p),
        (Some(p), Some(n)) => Some(format!("{p}.{n}")),
        (Some(p), None) => Some(p),
        (None, n) => n,
    }
}
