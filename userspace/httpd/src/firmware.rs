//! Firmware files from `[http].firmware_dir`: GET and HEAD, one byte range (`Range:
//! bytes=a-b`, `a-`, `-n`; 206 or 416; several ranges are answered with the whole file, which
//! RFC 9110 §14.2 allows), `If-Range`, ETag / If-None-Match and Last-Modified /
//! If-Modified-Since.
//!
//! Only plain names directly in the directory are served (the path guard has refused `..`
//! already; a `/` in the name is 404 here). The ETag is made of the file's size and
//! modification time, so a replaced image gets a new tag without hashing it.

use std::io::SeekFrom;
use std::sync::atomic::Ordering;
use std::time::SystemTime;

use axum::body::Body;
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::Response;
use tokio::io::{AsyncReadExt, AsyncSeekExt};

use crate::{Httpd, plain_status};
use provd_web::Peer;

/// Largest part read into memory for one response (a whole image usually; devices that
/// resume ask for ranges).
const MAX_READ: u64 = 256 << 20;

pub(crate) async fn serve(httpd: &Httpd, peer: &Peer, req: &Parts, name: &str) -> Response {
    let path = req.uri.path();
    let Some(dir) = &httpd.firmware_dir else {
        return httpd.refuse(
            &httpd.counters.not_found,
            StatusCode::NOT_FOUND,
            peer,
            path,
            "no firmware_dir",
        );
    };
    if name.is_empty() || name.contains('/') || name.starts_with('.') {
        return httpd.refuse(
            &httpd.counters.not_found,
            StatusCode::NOT_FOUND,
            peer,
            path,
            "no such firmware",
        );
    }
    let file_path = dir.join(name);
    let Ok(mut file) = tokio::fs::File::open(&file_path).await else {
        return httpd.refuse(
            &httpd.counters.not_found,
            StatusCode::NOT_FOUND,
            peer,
            path,
            "no such firmware",
        );
    };
    let Ok(meta) = file.metadata().await else {
        return plain_status(StatusCode::INTERNAL_SERVER_ERROR, "cannot stat firmware");
    };
    if !meta.is_file() {
        return httpd.refuse(
            &httpd.counters.not_found,
            StatusCode::NOT_FOUND,
            peer,
            path,
            "no such firmware",
        );
    }
    let len = meta.len();
    let modified = meta.modified().unwrap_or(SystemTime::UNIX_EPOCH);
    let mtime = modified
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let etag = format!("\"fw-{len:x}-{mtime:x}\"");
    let last_modified = httpdate::fmt_http_date(modified);
    let headers = &req.headers;
    let base = |status: StatusCode| {
        let mut r = Response::new(Body::empty());
        *r.status_mut() = status;
        let h = r.headers_mut();
        // Both are ASCII we formatted ourselves.
        if let Ok(v) = HeaderValue::from_str(&etag) {
            h.insert(header::ETAG, v);
        }
        if let Ok(v) = HeaderValue::from_str(&last_modified) {
            h.insert(header::LAST_MODIFIED, v);
        }
        h.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
        r
    };
    if not_modified(headers, &etag, modified) {
        return base(StatusCode::NOT_MODIFIED);
    }
    let range = match headers.get(header::RANGE).and_then(|v| v.to_str().ok()) {
        Some(r) if if_range_ok(headers, &etag, modified) => parse_range(r, len),
        _ => RangeAnswer::Whole,
    };
    let (status, start, count) = match range {
        RangeAnswer::Whole => (StatusCode::OK, 0, len),
        RangeAnswer::Part(a, b) => (StatusCode::PARTIAL_CONTENT, a, b - a + 1),
        RangeAnswer::Unsatisfiable => {
            let mut r = base(StatusCode::RANGE_NOT_SATISFIABLE);
            if let Ok(v) = HeaderValue::from_str(&format!("bytes */{len}")) {
                r.headers_mut().insert(header::CONTENT_RANGE, v);
            }
            return r;
        }
    };
    if count > MAX_READ {
        return plain_status(
            StatusCode::RANGE_NOT_SATISFIABLE,
            "ask for the image in ranges of at most 256 MiB",
        );
    }
    let body = if req.method == Method::HEAD {
        Body::empty()
    } else {
        // count <= MAX_READ fits usize on every target provd builds for.
        let mut buf = vec![0u8; count as usize];
        let read = async {
            file.seek(SeekFrom::Start(start)).await?;
            file.read_exact(&mut buf).await
        };
        if read.await.is_err() {
            return plain_status(StatusCode::INTERNAL_SERVER_ERROR, "firmware read failed");
        }
        httpd
            .counters
            .firmware_served
            .fetch_add(1, Ordering::Relaxed);
        Body::from(buf)
    };
    let mut r = base(status);
    *r.body_mut() = body;
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/octet-stream"),
    );
    h.insert(header::CONTENT_LENGTH, HeaderValue::from(count));
    if status == StatusCode::PARTIAL_CONTENT
        && let Ok(v) = HeaderValue::from_str(&format!("bytes {start}-{}/{len}", start + count - 1))
    {
        h.insert(header::CONTENT_RANGE, v);
    }
    r
}

fn not_modified(h: &HeaderMap, etag: &str, modified: SystemTime) -> bool {
    if let Some(inm) = h.get(header::IF_NONE_MATCH) {
        return inm
            .to_str()
            .is_ok_and(|v| provd_profiles::etag::if_none_match(v, etag));
    }
    h.get(header::IF_MODIFIED_SINCE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| httpdate::parse_http_date(v).ok())
        .is_some_and(|ims| truncate(modified) <= ims)
}

/// `If-Range`: the range applies only if the validator still matches (strong ETag or date).
fn if_range_ok(h: &HeaderMap, etag: &str, modified: SystemTime) -> bool {
    let Some(v) = h.get(header::IF_RANGE).and_then(|v| v.to_str().ok()) else {
        return true;
    };
    if v.starts_with('"') {
        return v == etag;
    }
    httpdate::parse_http_date(v).is_ok_and(|d| truncate(modified) == d)
}

/// HTTP dates have whole seconds.
fn truncate(t: SystemTime) -> SystemTime {
    let secs = t
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(secs)
}

#[derive(Debug, PartialEq, Eq)]
pub(crate) enum RangeAnswer {
    Whole,
    /// Inclusive byte positions.
    Part(u64, u64),
    Unsatisfiable,
}

/// One `Range` header against a file of `len` bytes. A header that does not parse, or asks
/// for several ranges, is ignored (the whole file); a single range outside the file is 416.
pub(crate) fn parse_range(v: &str, len: u64) -> RangeAnswer {
    let Some(spec) = v.trim().strip_prefix("bytes=") else {
        return RangeAnswer::Whole;
    };
    if spec.contains(',') {
        return RangeAnswer::Whole;
    }
    let Some((a, b)) = spec.trim().split_once('-') else {
        return RangeAnswer::Whole;
    };
    let num = |s: &str| -> Option<u64> {
        let s = s.trim();
        (!s.is_empty() && s.bytes().all(|c| c.is_ascii_digit()))
            .then(|| s.parse().ok())
            .flatten()
    };
    match (a.trim().is_empty(), num(a), num(b)) {
        // bytes=-n: the last n bytes.
        (true, _, Some(n)) => {
            if n == 0 || len == 0 {
                RangeAnswer::Unsatisfiable
            } else {
                RangeAnswer::Part(len.saturating_sub(n), len - 1)
            }
        }
        (false, Some(start), None) if b.trim().is_empty() => {
            if start >= len {
                RangeAnswer::Unsatisfiable
            } else {
                RangeAnswer::Part(start, len - 1)
            }
        }
        (false, Some(start), Some(end)) if start <= end => {
            if start >= len {
                RangeAnswer::Unsatisfiable
            } else {
                RangeAnswer::Part(start, end.min(len - 1))
            }
        }
        _ => RangeAnswer::Whole,
    }
}

#[cfg(test)]
mod tests {
    use super::RangeAnswer::*;
    use super::*;

    #[test]
    fn ranges() {
        assert_eq!(parse_range("bytes=0-9", 100), Part(0, 9));
        assert_eq!(parse_range("bytes=90-", 100), Part(90, 99));
        assert_eq!(parse_range("bytes=-10", 100), Part(90, 99));
        assert_eq!(parse_range("bytes=-200", 100), Part(0, 99));
        assert_eq!(parse_range("bytes=50-500", 100), Part(50, 99));
        assert_eq!(parse_range("bytes=100-", 100), Unsatisfiable);
        assert_eq!(parse_range("bytes=100-200", 100), Unsatisfiable);
        assert_eq!(parse_range("bytes=-0", 100), Unsatisfiable);
        assert_eq!(parse_range("bytes=9-0", 100), Whole);
        assert_eq!(parse_range("bytes=0-1,5-6", 100), Whole);
        assert_eq!(parse_range("items=0-1", 100), Whole);
        assert_eq!(parse_range("bytes=x-1", 100), Whole);
        assert_eq!(parse_range("bytes=+1-2", 100), Whole);
        assert_eq!(parse_range("bytes=0-", 0), Unsatisfiable);
    }
}
