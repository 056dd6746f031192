//! The static files, compiled in: the stylesheet, the page script, and the vendored htmx and
//! uPlot (their licences are beside them in `assets/vendor/` and served too).

use axum::extract::Path;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};

const FILES: &[(&str, &str, &[u8])] = &[
    (
        "app.css",
        "text/css; charset=utf-8",
        include_bytes!("../assets/app.css"),
    ),
    (
        "app.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../assets/app.js"),
    ),
    (
        "htmx.min.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../assets/vendor/htmx-2.0.11.min.js"),
    ),
    (
        "uPlot.min.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../assets/vendor/uPlot-1.6.32.iife.min.js"),
    ),
    (
        "uPlot.min.css",
        "text/css; charset=utf-8",
        include_bytes!("../assets/vendor/uPlot-1.6.32.min.css"),
    ),
    (
        "LICENSE-htmx",
        "text/plain; charset=utf-8",
        include_bytes!("../assets/vendor/LICENSE-htmx"),
    ),
    (
        "LICENSE-uPlot",
        "text/plain; charset=utf-8",
        include_bytes!("../assets/vendor/LICENSE-uPlot"),
    ),
];

pub(crate) async fn serve(Path(file): Path<String>) -> Response {
    match FILES.iter().find(|(n, _, _)| *n == file) {
        Some((_, ct, body)) => (
            [
                (header::CONTENT_TYPE, *ct),
                (header::CACHE_CONTROL, "max-age=3600"),
                (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
            ],
            *body,
        )
            .into_response(),
        None => (StatusCode::NOT_FOUND, "no such file\n").into_response(),
    }
}
