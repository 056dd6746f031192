//! Templates: the list, and one editor per template with validation as you type (each problem
//! with its line and column), a preview rendered for a chosen device (decoded, with its
//! verdicts), saving as a new version (refused while invalid), the version history with diffs,
//! and roll back (a new version with an old text, so history only grows).

use axum::Form;
use axum::extract::{Path, Query};
use axum::http::{Method, StatusCode};
use serde_json::{Value, json};

use super::{Fields, field, mac_of};
use crate::call::{Ctx, Page, enc};

pub(crate) async fn list(ctx: Ctx) -> Page {
    let v = ctx.get("/templates").await?;
    Ok(ctx.render(
        "templates.html",
        minijinja::context! { nav => "templates", items => v["items"] },
    ))
}

/// The problems of `/templates/validate`'s answer (or of a refused save's detail).
fn problems_of(v: &Value) -> Vec<Value> {
    v["problems"]
        .as_array()
        .or_else(|| v["detail"]["problems"].as_array())
        .cloned()
        .unwrap_or_default()
}

fn versions_of(v: &Value) -> Value {
    if v.is_array() {
        v.clone()
    } else {
        v["items"].clone()
    }
}

async fn editor_page(
    ctx: &Ctx,
    name: &str,
    draft: Option<&str>,
    problems: Vec<Value>,
    status: StatusCode,
) -> Page {
    let t = ctx.get(&format!("/templates/{}", enc(name))).await?;
    let versions = ctx
        .get_opt(&format!("/templates/{}/versions", enc(name)))
        .await?
        .map(|v| versions_of(&v))
        .unwrap_or(Value::Null);
    let kind = t["kind"].as_str().unwrap_or("cm").to_owned();
    // A device to preview for: the first of the kind.
    let sample = ctx
        .get(&format!("/devices?type={kind}&limit=1"))
        .await
        .ok()
        .and_then(|v| v["items"][0]["mac"].as_str().map(str::to_owned));
    let mut resp = ctx.render(
        "template.html",
        minijinja::context! {
            nav => "templates",
            name => name,
            t => t,
            kind => kind,
            text => draft.map_or_else(|| t["text"].as_str().unwrap_or("").to_owned(), str::to_owned),
            problems => problems,
            versions => versions,
            sample_mac => sample,
        },
    );
    *resp.status_mut() = status;
    Ok(resp)
}

pub(crate) async fn editor(ctx: Ctx, Path(name): Path<String>) -> Page {
    editor_page(&ctx, &name, None, Vec::new(), StatusCode::OK).await
}

/// Validation as you type: the problems list alone (htmx swaps it in).
pub(crate) async fn validate(ctx: Ctx, Form(f): Form<Fields>) -> Page {
    let r = ctx
        .send(
            Method::POST,
            "/templates/validate",
            &json!({"kind": field(&f, "kind"), "text": f.get("text").map_or("", String::as_str)}),
        )
        .await;
    if !r.ok() {
        return Err(ctx.fail(&r));
    }
    let v = r.json();
    Ok(ctx.render_part(
        "template_problems.html",
        minijinja::context! { problems => problems_of(&v), checked => true },
    ))
}

/// Saves the text as a new version; an invalid text is refused (nothing saved) and shown again
/// with its problems.
pub(crate) async fn save(ctx: Ctx, Path(name): Path<String>, Form(f): Form<Fields>) -> Page {
    let text = f.get("text").map_or("", String::as_str);
    let r = ctx
        .send(
            Method::POST,
            &format!("/templates/{}/versions", enc(&name)),
            &json!({"text": text, "comment": field(&f, "comment")}),
        )
        .await;
    if r.ok() {
        let v = r.json();
        return Ok(ctx.back(
            &format!("/ui/templates/{}", enc(&name)),
            "ok",
            format!(
                "saved as version {}: files rendered from now on use it",
                v["version"]
            ),
        ));
    }
    if matches!(r.status, StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN) {
        return Err(ctx.fail(&r));
    }
    let mut problems = problems_of(&r.json());
    if problems.is_empty() {
        problems.push(json!({"line": null, "column": null, "message": r.message()}));
    }
    ctx.sess
        .flash("error", format!("not saved: {}", r.message()));
    editor_page(&ctx, &name, Some(text), problems, StatusCode::BAD_REQUEST).await
}

/// The unsaved text rendered for a device, decoded, with its verdicts.
pub(crate) async fn preview(ctx: Ctx, Path(_name): Path<String>, Form(f): Form<Fields>) -> Page {
    let Some(mac) = mac_of(field(&f, "mac")) else {
        return Ok(ctx.render_part(
            "template_preview.html",
            minijinja::context! { error => "enter the MAC of a device to preview for" },
        ));
    };
    let r = ctx
        .send(
            Method::POST,
            "/templates/preview",
            &json!({
                "mac": mac,
                "kind": field(&f, "kind"),
                "text": f.get("text").map_or("", String::as_str),
            }),
        )
        .await;
    Ok(if r.ok() {
        ctx.render_part(
            "template_preview.html",
            minijinja::context! { preview => r.json(), mac => mac },
        )
    } else {
        ctx.render_part(
            "template_preview.html",
            minijinja::context! { error => r.message(), problems => problems_of(&r.json()) },
        )
    })
}

/// Two versions side by side as a diff (`a` → `b`; `b` defaults to the current text).
pub(crate) async fn diff(ctx: Ctx, Path(name): Path<String>, Query(q): Query<Fields>) -> Page {
    let text_of = |v: Value| v["text"].as_str().unwrap_or("").to_owned();
    let a = field(&q, "a");
    let b = field(&q, "b");
    let old = text_of(
        ctx.get(&format!("/templates/{}/versions/{}", enc(&name), enc(a)))
            .await?,
    );
    let new = if b.is_empty() {
        text_of(ctx.get(&format!("/templates/{}", enc(&name))).await?)
    } else {
        text_of(
            ctx.get(&format!("/templates/{}/versions/{}", enc(&name), enc(b)))
                .await?,
        )
    };
    Ok(ctx.render(
        "template_diff.html",
        minijinja::context! {
            nav => "templates", name => name, a => a, b => if b.is_empty() { "current" } else { b },
            rows => crate::diff::lines(&old, &new, 3),
        },
    ))
}

pub(crate) async fn rollback(ctx: Ctx, Path(name): Path<String>, Form(f): Form<Fields>) -> Page {
    let version: u64 = match field(&f, "version").parse() {
        Ok(v) => v,
        Err(_) => return Err(ctx.error(StatusCode::BAD_REQUEST, "version: not a number")),
    };
    let r = ctx
        .send(
            Method::POST,
            &format!("/templates/{}/rollback", enc(&name)),
            &json!({ "version": version }),
        )
        .await;
    let to = format!("/ui/templates/{}", enc(&name));
    Ok(if r.ok() {
        ctx.back(
            &to,
            "ok",
            format!(
                "rolled back: version {} has version {version}'s text",
                r.json()["version"]
            ),
        )
    } else if matches!(r.status, StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN) {
        return Err(ctx.fail(&r));
    } else {
        ctx.back(&to, "error", format!("roll back: {}", r.message()))
    })
}
