//! Subscribers and classes of service: lists by cursor, and one edit page each (a new one
//! when the name is not taken yet). Saves are `PUT` with `If-Match`, so two operators editing
//! the same record cannot overwrite each other unseen.

use axum::Form;
use axum::extract::{Path, Query};
use axum::http::{Method, StatusCode};
use axum::response::{IntoResponse, Redirect};
use serde_json::{Value, json};

use super::{Fields, field};
use crate::call::{Ctx, Page, enc, with_query};

/// Which records a page is about.
#[derive(Clone, Copy)]
struct Kind {
    /// `/api/v1/<api>`.
    api: &'static str,
    /// `/ui/<ui>`.
    ui: &'static str,
    /// The key field (`id`, `name`).
    key: &'static str,
    /// The other text field (`name`, `description`).
    text: &'static str,
    title: &'static str,
    one: &'static str,
}

const SUBSCRIBERS: Kind = Kind {
    api: "subscribers",
    ui: "subscribers",
    key: "id",
    text: "name",
    title: "Subscribers",
    one: "subscriber",
};

const CLASSES: Kind = Kind {
    api: "classes",
    ui: "classes",
    key: "name",
    text: "description",
    title: "Classes of service",
    one: "class of service",
};

async fn list(ctx: Ctx, k: Kind, q: &Fields, template: &str) -> Page {
    let new = field(q, "new");
    if !new.is_empty() {
        return Ok(Redirect::to(&format!("/ui/{}/{}", k.ui, enc(new))).into_response());
    }
    let after = field(q, "after");
    let v = ctx
        .get(&with_query(
            &format!("/{}", k.api),
            &[("after", after), ("limit", "100")],
        ))
        .await?;
    let next = v["next"]
        .as_str()
        .map(|n| with_query(&format!("/ui/{}", k.ui), &[("after", n)]));
    Ok(ctx.render(
        template,
        minijinja::context! {
            nav => k.ui, items => v["items"], next_url => next, title => k.title,
            first_page => after.is_empty(),
        },
    ))
}

pub(crate) async fn subscribers(ctx: Ctx, Query(q): Query<Fields>) -> Page {
    list(ctx, SUBSCRIBERS, &q, "subscribers.html").await
}

pub(crate) async fn classes(ctx: Ctx, Query(q): Query<Fields>) -> Page {
    list(ctx, CLASSES, &q, "classes.html").await
}

async fn edit(ctx: Ctx, k: Kind, key: &str, problem: Option<(String, Value)>) -> Page {
    let r = ctx
        .call(Method::GET, &format!("/{}/{}", k.api, enc(key)), None, &[])
        .await;
    let (record, etag) = match r.status {
        s if s.is_success() => (Some(r.json()), r.etag()),
        StatusCode::NOT_FOUND => (None, None),
        _ => return Err(ctx.fail(&r)),
    };
    let (error, draft) = problem.map_or((None, None), |(e, d)| (Some(e), Some(d)));
    let shown = draft
        .or_else(|| record.clone())
        .unwrap_or_else(|| json!({}));
    let vars = serde_json::to_string_pretty(&shown["vars"]).unwrap_or_default();
    let devices = if record.is_some() {
        let filter = if k.api == "subscribers" {
            "subscriber"
        } else {
            "class"
        };
        ctx.get(&with_query("/devices", &[(filter, key), ("limit", "20")]))
            .await
            .map(|v| v["items"].clone())
            .ok()
    } else {
        None
    };
    let mut resp = ctx.render(
        "record.html",
        minijinja::context! {
            nav => k.ui, ui => k.ui, one => k.one, key_field => k.key, text_field => k.text,
            key => key, record => record, etag => etag, error => error,
            text => shown[k.text].as_str().unwrap_or(""),
            vars => if shown["vars"].is_null() { "{}".to_owned() } else { vars },
            devices => devices,
        },
    );
    if error.is_some() {
        *resp.status_mut() = StatusCode::BAD_REQUEST;
    }
    Ok(resp)
}

pub(crate) async fn subscriber(ctx: Ctx, Path(id): Path<String>) -> Page {
    edit(ctx, SUBSCRIBERS, &id, None).await
}

pub(crate) async fn class(ctx: Ctx, Path(name): Path<String>) -> Page {
    edit(ctx, CLASSES, &name, None).await
}

async fn save(ctx: Ctx, k: Kind, key: &str, f: &Fields) -> Page {
    let vars: Value = match field(f, "vars") {
        "" => json!({}),
        text => match serde_json::from_str(text) {
            Ok(v @ Value::Object(_)) => v,
            Ok(_) => {
                let draft = json!({ k.text: field(f, "text") });
                return edit(
                    ctx,
                    k,
                    key,
                    Some(("vars: a JSON object is wanted".into(), draft)),
                )
                .await;
            }
            Err(e) => {
                let draft = json!({ k.text: field(f, "text") });
                return edit(ctx, k, key, Some((format!("vars: not JSON ({e})"), draft))).await;
            }
        },
    };
    let mut body = json!({ k.key: key, "vars": vars });
    if !field(f, "text").is_empty() {
        body[k.text] = json!(field(f, "text"));
    }
    let etag = field(f, "etag");
    let headers: Vec<(&str, &str)> = if etag.is_empty() {
        vec![("if-none-match", "*")]
    } else {
        vec![("if-match", etag)]
    };
    let r = ctx
        .call(
            Method::PUT,
            &format!("/{}/{}", k.api, enc(key)),
            Some(("application/json", bytes::Bytes::from(body.to_string()))),
            &headers,
        )
        .await;
    if r.ok() {
        return Ok(ctx.back(
            &format!("/ui/{}/{}", k.ui, enc(key)),
            "ok",
            format!("{} {key} saved", k.one),
        ));
    }
    if r.status == StatusCode::UNAUTHORIZED || r.status == StatusCode::FORBIDDEN {
        return Err(ctx.fail(&r));
    }
    let why = if r.status == StatusCode::PRECONDITION_FAILED {
        "someone saved it since you opened it: reload to see their change".to_owned()
    } else {
        r.message()
    };
    edit(ctx, k, key, Some((why, body))).await
}

pub(crate) async fn save_subscriber(
    ctx: Ctx,
    Path(id): Path<String>,
    Form(f): Form<Fields>,
) -> Page {
    save(ctx, SUBSCRIBERS, &id, &f).await
}

pub(crate) async fn save_class(ctx: Ctx, Path(name): Path<String>, Form(f): Form<Fields>) -> Page {
    save(ctx, CLASSES, &name, &f).await
}
