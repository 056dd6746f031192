//! Config-file templates: the list, each template's current text and its history of stored
//! versions, saves and rollbacks (checked first; an invalid template is never saved),
//! checks, and previews of a device's file (as served, as another class of service, from a
//! stored version or from unsaved text).
//!
//! A template is named as `GET /templates` lists it: its file name (`cm.cfg.j2`), or its path
//! where two files of the config share a file name. Version 0 is the config's file, the seed;
//! versions 1, 2, 3 ... are saves in the store, and the newest is what devices get. History
//! is linear: a rollback saves the old text as a new version.

use axum::Extension;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use provd_store::{Expect, Mac, TemplateVersionSpec, TokenRole};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::auth::Caller;
use crate::extract::{JsonBody, Q, blocking, decode, expect_of, parse_mac, tagged};
use crate::routes::{Errors, check_visible, limit_of};
use crate::{ApiError, App, PreviewRequest, TemplateCheck, TemplateFile, TemplateKind, schema};

pub(crate) fn routes() -> OpenApiRouter<App> {
    OpenApiRouter::new()
        .routes(routes!(list_templates))
        .routes(routes!(validate_template))
        .routes(routes!(preview_template, preview_text))
        .routes(routes!(get_template))
        .routes(routes!(list_versions, save_version))
        .routes(routes!(get_version))
        .routes(routes!(rollback))
}

/// Where a template's current text comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub(crate) enum TemplateSource {
    /// The config's file (version 0).
    File,
    /// A version saved in the store.
    Store,
}

/// A version of a template (version 0: the config's file).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub(crate) struct TemplateVersionItem {
    name: String,
    version: u64,
    kind: TemplateKind,
    source: TemplateSource,
    /// Who saved it (`token:NAME`, `cli:USER`, `system`); absent for the file.
    #[serde(skip_serializing_if = "Option::is_none")]
    actor: Option<String>,
    /// Unix milliseconds; absent for the file.
    #[serde(skip_serializing_if = "Option::is_none")]
    created_at: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    comment: Option<String>,
}

/// A version of a template with its text.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub(crate) struct TemplateVersionText {
    #[serde(flatten)]
    item: TemplateVersionItem,
    /// The config's file (the seed, version 0).
    path: String,
    text: String,
}

/// A template's versions, newest first; the file (version 0) is the last item of the last
/// page.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub(crate) struct TemplateVersionPage {
    items: Vec<TemplateVersionItem>,
    /// `before` for the next page; absent on the last.
    next: Option<u64>,
}

fn file_item(f: &TemplateFile) -> TemplateVersionItem {
    TemplateVersionItem {
        name: f.name.clone(),
        version: 0,
        kind: f.kind,
        source: TemplateSource::File,
        actor: None,
        created_at: None,
        comment: None,
    }
}

fn stored_item(i: provd_store::TemplateVersionInfo) -> TemplateVersionItem {
    TemplateVersionItem {
        name: i.name,
        version: i.version,
        kind: i.kind.into(),
        source: TemplateSource::Store,
        actor: Some(i.actor),
        created_at: Some(i.created_at),
        comment: i.comment,
    }
}

fn with_text(f: &TemplateFile, v: Option<provd_store::TemplateVersion>) -> TemplateVersionText {
    match v {
        Some(v) => TemplateVersionText {
            item: stored_item(v.info),
            path: f.path.clone(),
            text: v.text,
        },
        None => TemplateVersionText {
            item: file_item(f),
            path: f.path.clone(),
            text: f.text.clone(),
        },
    }
}

/// The config's template called `name` (404 when the config names none).
async fn template_file(app: &App, name: String) -> Result<TemplateFile, ApiError> {
    let app = app.clone();
    blocking(move || Ok(app.svc.actions.template_file(&name)?)).await
}

/// Version `version` of `f` (0: the file); 404 when there is no such version.
fn version_of(app: &App, f: &TemplateFile, version: u64) -> Result<TemplateVersionText, ApiError> {
    if version == 0 {
        return Ok(with_text(f, None));
    }
    let v = app
        .svc
        .store
        .get_template_version(&f.name, version)?
        .ok_or_else(|| {
            ApiError::not_found(format!("template {:?} has no version {version}", f.name))
        })?;
    Ok(with_text(f, Some(v)))
}

/// The templates the config names, each with the version devices get (0: the config's file)
/// and where it comes from (`file` or `store`).
#[utoipa::path(get, path = "/templates", tag = "templates",
    responses((status = 200, body = schema::ObjectList), Errors))]
async fn list_templates(State(app): State<App>) -> Result<Response, ApiError> {
    let mut items = match app.svc.actions.templates() {
        serde_json::Value::Array(a) => a,
        serde_json::Value::Null => Vec::new(),
        other => vec![other],
    };
    let items = blocking(move || {
        for item in &mut items {
            let Some(o) = item.as_object_mut() else {
                continue;
            };
            let latest = match o.get("name").and_then(|n| n.as_str()) {
                Some(name) => app.svc.store.latest_template_version(name)?,
                None => None,
            };
            let (version, source) = latest.map_or((0, TemplateSource::File), |v| {
                (v.info.version, TemplateSource::Store)
            });
            o.insert("version".into(), version.into());
            o.insert(
                "source".into(),
                serde_json::to_value(source).unwrap_or_default(),
            );
        }
        Ok(items)
    })
    .await?;
    Ok(axum::Json(serde_json::json!({ "items": items })).into_response())
}

/// A template as devices get it now: its newest stored version, else its file.
#[utoipa::path(get, path = "/templates/{name}", tag = "templates",
    params(("name" = String, Path, description = "The template's name, as `GET /templates` lists it")),
    responses((status = 200, body = TemplateVersionText, headers(("ETag" = String))), Errors))]
async fn get_template(
    State(app): State<App>,
    Path(name): Path<String>,
) -> Result<Response, ApiError> {
    let f = template_file(&app, name).await?;
    let t = blocking(move || {
        let latest = app.svc.store.latest_template_version(&f.name)?;
        Ok(with_text(&f, latest))
    })
    .await?;
    Ok(tagged(StatusCode::OK, t.item.version, &t))
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub(crate) struct VersionsQuery {
    /// Versions older than this (the previous page's `next`).
    before: Option<u64>,
    /// At most this many (default 100, at most 1000).
    #[param(minimum = 0, maximum = 1000)]
    limit: Option<u32>,
}

/// A template's versions, newest first, without their text; version 0 (the config's file)
/// last.
#[utoipa::path(get, path = "/templates/{name}/versions", tag = "templates",
    params(("name" = String, Path, description = "The template's name"), VersionsQuery),
    responses((status = 200, body = TemplateVersionPage), Errors))]
async fn list_versions(
    State(app): State<App>,
    Path(name): Path<String>,
    Q(q): Q<VersionsQuery>,
) -> Result<Response, ApiError> {
    let limit = limit_of(q.limit)?;
    let f = template_file(&app, name).await?;
    let page = blocking(move || {
        if q.before == Some(0) {
            return Ok(TemplateVersionPage {
                items: Vec::new(),
                next: None,
            });
        }
        let stored = app.svc.store.template_versions(&f.name, q.before, limit)?;
        let full = stored.len() == limit as usize;
        let mut items: Vec<TemplateVersionItem> = stored.into_iter().map(stored_item).collect();
        let last = items.last().map(|i| i.version);
        if !full {
            items.push(file_item(&f));
        }
        Ok(TemplateVersionPage {
            items,
            next: if full { last } else { None },
        })
    })
    .await?;
    Ok(axum::Json(page).into_response())
}

/// One version of a template, with its text (0: the config's file).
#[utoipa::path(get, path = "/templates/{name}/versions/{version}", tag = "templates",
    params(("name" = String, Path, description = "The template's name"),
        ("version" = u64, Path, description = "0: the config's file", minimum = 0)),
    responses((status = 200, body = TemplateVersionText, headers(("ETag" = String))), Errors))]
async fn get_version(
    State(app): State<App>,
    Path((name, version)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let version: u64 = version
        .parse()
        .map_err(|_| ApiError::invalid("version", "a version is a whole number (0: the file)"))?;
    let f = template_file(&app, name).await?;
    let t = blocking(move || version_of(&app, &f, version)).await?;
    Ok(tagged(StatusCode::OK, t.item.version, &t))
}

/// A new version of a template.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct SaveBody {
    /// The template's source.
    text: String,
    /// Why, for the history (at most 1024 bytes).
    #[serde(default)]
    comment: Option<String>,
    /// The device the check renders it for (see `POST /templates/validate`).
    #[serde(default)]
    #[schema(value_type = Option<String>, example = "00:11:22:aa:bb:cc")]
    mac: Option<Mac>,
}

/// Back to an earlier version.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct RollbackBody {
    /// The version whose text becomes the newest (0: the config's file).
    version: u64,
    /// Default: `rollback to version N`.
    #[serde(default)]
    comment: Option<String>,
    /// The device the check renders it for.
    #[serde(default)]
    #[schema(value_type = Option<String>, example = "00:11:22:aa:bb:cc")]
    mac: Option<Mac>,
}

/// Checks `text` as template `f`, then saves it as a new version: 201 with the version, or
/// 400 `template_invalid` (and nothing saved).
async fn check_and_save(
    app: &App,
    c: Caller,
    f: TemplateFile,
    text: String,
    comment: Option<String>,
    mac: Option<Mac>,
    expect: Expect,
) -> Result<Response, ApiError> {
    let check = TemplateCheck {
        kind: f.kind,
        text,
        name: Some(f.name.clone()),
        mac,
    };
    let app = app.clone();
    let saved = blocking(move || {
        let v = app.svc.actions.validate_template(&check)?;
        if !v.ok {
            return Err(ApiError::template_invalid(v.problems));
        }
        // Version 0 is the file: "based on the file" means "none stored yet".
        let expect = match expect {
            Expect::Version(0) => Expect::Absent,
            e => e,
        };
        let spec = TemplateVersionSpec {
            name: f.name.clone(),
            kind: f.kind.into(),
            text: check.text,
            comment,
        };
        let v = match app
            .svc
            .store
            .put_template_version(&spec, expect, &c.actor())
        {
            // Based on the file, but a version was saved meanwhile: as any stale If-Match.
            Err(provd_store::StoreError::Conflict { .. }) if expect == Expect::Absent => {
                let actual = app
                    .svc
                    .store
                    .latest_template_version(&f.name)?
                    .map_or(0, |v| v.info.version);
                return Err(provd_store::StoreError::VersionMismatch {
                    kind: "template",
                    key: f.name.clone(),
                    expected: 0,
                    actual,
                }
                .into());
            }
            r => r?,
        };
        Ok(with_text(&f, Some(v)))
    })
    .await?;
    let mut r = tagged(StatusCode::CREATED, saved.item.version, &saved);
    let location = format!(
        "/api/v1/templates/{}/versions/{}",
        saved.item.name.replace('%', "%25").replace('/', "%2F"),
        saved.item.version
    );
    if let Ok(v) = HeaderValue::from_str(&location) {
        r.headers_mut().insert(header::LOCATION, v);
    }
    Ok(r)
}

/// Saves a new version of a template; devices get it from their next fetch. Checked first
/// (as `POST /templates/validate`, as this template): an invalid one is 400
/// `template_invalid` with `detail.problems` (each with `line`, `column`, `message`,
/// `stage`) and is not saved. `If-Match: "N"`: only if version N is still the newest ("0":
/// only if none is stored). Operator or admin.
#[utoipa::path(post, path = "/templates/{name}/versions", tag = "templates",
    params(("name" = String, Path, description = "The template's name"),
        ("If-Match" = Option<String>, Header, description = "\"<version>\" the save is based on", nullable = false, pattern = r#"^(\*|(W/)?"[0-9]{1,19}"|[0-9]{1,19})$"#)),
    request_body = SaveBody,
    responses((status = 201, body = TemplateVersionText, headers(("ETag" = String), ("Location" = String))), Errors))]
async fn save_version(
    State(app): State<App>,
    Extension(c): Extension<Caller>,
    Path(name): Path<String>,
    headers: HeaderMap,
    JsonBody(body): JsonBody,
) -> Result<Response, ApiError> {
    c.require(TokenRole::Operator)?;
    let expect = expect_of(&headers)?;
    let body: SaveBody = decode(body)?;
    let f = template_file(&app, name).await?;
    check_and_save(&app, c, f, body.text, body.comment, body.mac, expect).await
}

/// Makes an earlier version's text the newest, as a new version (history stays linear).
/// Checked like a save. Operator or admin.
#[utoipa::path(post, path = "/templates/{name}/rollback", tag = "templates",
    params(("name" = String, Path, description = "The template's name"),
        ("If-Match" = Option<String>, Header, description = "\"<version>\" the rollback is based on", nullable = false, pattern = r#"^(\*|(W/)?"[0-9]{1,19}"|[0-9]{1,19})$"#)),
    request_body = RollbackBody,
    responses((status = 201, body = TemplateVersionText, headers(("ETag" = String), ("Location" = String))), Errors))]
async fn rollback(
    State(app): State<App>,
    Extension(c): Extension<Caller>,
    Path(name): Path<String>,
    headers: HeaderMap,
    JsonBody(body): JsonBody,
) -> Result<Response, ApiError> {
    c.require(TokenRole::Operator)?;
    let expect = expect_of(&headers)?;
    let body: RollbackBody = decode(body)?;
    let f = template_file(&app, name).await?;
    let (a, f2, version) = (app.clone(), f.clone(), body.version);
    let old = blocking(move || version_of(&a, &f2, version)).await?;
    let comment = body
        .comment
        .unwrap_or_else(|| format!("rollback to version {}", body.version));
    check_and_save(&app, c, f, old.text, Some(comment), body.mac, expect).await
}

/// Checks a template without saving it: syntax, a render for a probe device (strict undefined
/// variables, as served) and, for `cm` and `mta`, the compile to a config file; each problem
/// with its line and column.
#[utoipa::path(post, path = "/templates/validate", tag = "templates",
    request_body = TemplateCheck,
    responses((status = 200, body = crate::TemplateValidation), Errors))]
async fn validate_template(
    State(app): State<App>,
    JsonBody(body): JsonBody,
) -> Result<Response, ApiError> {
    let t: TemplateCheck = decode(body)?;
    let v = blocking(move || Ok(app.svc.actions.validate_template(&t)?)).await?;
    Ok(axum::Json(v).into_response())
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub(crate) struct PreviewQuery {
    /// The device.
    #[param(pattern = r"^([0-9A-Fa-f][:.-]?){11}[0-9A-Fa-f]$")]
    mac: String,
    /// `cm`, `mta` or `profile`.
    #[param(inline)]
    kind: TemplateKind,
    /// Render as if the device's class of service were this one (it must exist).
    #[param(pattern = r"^[A-Za-z0-9_.-]{1,64}$")]
    class_of_service: Option<String>,
    /// The template to render (its class); with `version`, that stored version of it.
    name: Option<String>,
    /// A version of `name` (0: the config's file).
    version: Option<u64>,
}

/// A device's file rendered as it would be served now, decoded, with MIC/hash verdicts; or
/// as another class of service, or from a stored version of a template.
#[utoipa::path(get, path = "/templates/preview", tag = "templates", params(PreviewQuery),
    responses((status = 200, body = crate::TemplatePreview), Errors))]
async fn preview_template(
    State(app): State<App>,
    Extension(c): Extension<Caller>,
    Q(q): Q<PreviewQuery>,
) -> Result<Response, ApiError> {
    let mac = parse_mac("mac", &q.mac)?;
    check_visible(&app, &c, mac).await?;
    let text = match (&q.name, q.version) {
        (None, Some(_)) => {
            return Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                "invalid_query",
                "a version is of a template: give its name",
            )
            .field("name"));
        }
        (Some(name), version) => {
            let f = template_file(&app, name.clone()).await?;
            if f.kind != q.kind {
                return Err(ApiError::new(
                    StatusCode::BAD_REQUEST,
                    "invalid_query",
                    format!("template {:?} is a {:?} template", f.name, f.kind),
                )
                .field("kind"));
            }
            match version {
                Some(v) => {
                    let a = app.clone();
                    Some(blocking(move || version_of(&a, &f, v)).await?.text)
                }
                None => None,
            }
        }
        (None, None) => None,
    };
    let req = PreviewRequest {
        mac,
        kind: Some(q.kind),
        class_of_service: q.class_of_service,
        name: q.name,
        text,
    };
    let p = app.svc.actions.template_preview_with(req).await?;
    Ok(axum::Json(p).into_response())
}

/// Unsaved text to preview.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct PreviewBody {
    /// The device.
    #[schema(value_type = String, example = "00:11:22:aa:bb:cc")]
    mac: Mac,
    kind: TemplateKind,
    /// The template's source.
    text: String,
    /// Render as if the device's class of service were this one.
    #[serde(default)]
    class_of_service: Option<String>,
    /// Render it as this template (its class's kind, secret and hash).
    #[serde(default)]
    name: Option<String>,
}

/// A device's file rendered from unsaved text (an editor's live preview): 400
/// `template_invalid` with `detail.problems` when it does not parse, render or compile.
#[utoipa::path(post, path = "/templates/preview", tag = "templates", request_body = PreviewBody,
    responses((status = 200, body = crate::TemplatePreview), Errors))]
async fn preview_text(
    State(app): State<App>,
    Extension(c): Extension<Caller>,
    JsonBody(body): JsonBody,
) -> Result<Response, ApiError> {
    let b: PreviewBody = decode(body)?;
    check_visible(&app, &c, b.mac).await?;
    if let Some(name) = &b.name {
        let f = template_file(&app, name.clone()).await?;
        if f.kind != b.kind {
            return Err(ApiError::invalid(
                "kind",
                format!("template {:?} is a {:?} template", f.name, f.kind),
            ));
        }
    }
    let req = PreviewRequest {
        mac: b.mac,
        kind: Some(b.kind),
        class_of_service: b.class_of_service,
        name: b.name,
        text: Some(b.text),
    };
    let p = app.svc.actions.template_preview_with(req).await?;
    Ok(axum::Json(p).into_response())
}
