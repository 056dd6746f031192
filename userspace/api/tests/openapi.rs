//! The OpenAPI document: written out and read back, 3.1, and every operation it describes is
//! a route the router serves (not the JSON 404 of an unknown route, not a 405), against a
//! real SQLite store. The router's routes are registered only through `utoipa-axum` with
//! their annotations, so a route without its description cannot be written; this checks
//! the other direction and the hand-described ones (`/api/v1/openapi.json`, `/metrics`).
//!
//! The role traits are minimal test implementations: the real ones are the binary's.

use std::sync::Arc;

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use provd_api::{
    ApiSettings, BoxFuture, Lease, LeaseIndex, LeaseQuery, ReloadReport, RoleView, ServiceError,
    Services, SyslogQuery, TemplateCheck, TemplateKind, TemplatePreview, TemplateValidation,
};
use provd_store::{Actor, Mac, Scope, Store, TokenRole, TokenSpec};
use serde_json::Value;
use tower::ServiceExt;

#[derive(Debug)]
struct Nothing;

impl LeaseIndex for Nothing {
    fn search(&self, _: &LeaseQuery, _: u32) -> Vec<Lease> {
        vec![]
    }
    fn release(&self, mac: Mac) -> Result<(), ServiceError> {
        Err(ServiceError::NotFound(format!("no lease for {mac}")))
    }
}

impl provd_api::Actions for Nothing {
    fn reset(&self, mac: Mac) -> BoxFuture<'_, Result<String, ServiceError>> {
        Box::pin(async move { Ok(format!("{mac}: nothing to reset here")) })
    }
    fn reload(&self, _: bool, _: bool) -> BoxFuture<'_, Result<ReloadReport, ServiceError>> {
        Box::pin(async {
            Ok(ReloadReport {
                applied: false,
                changes: vec![],
                orphaned: vec![],
            })
        })
    }
    fn templates(&self) -> Value {
        Value::Array(vec![])
    }
    fn template_preview(
        &self,
        _: Mac,
        kind: TemplateKind,
    ) -> BoxFuture<'_, Result<TemplatePreview, ServiceError>> {
        Box::pin(async move {
            Ok(TemplatePreview {
                sha256: None,
                kind,
                file: None,
                text: String::new(),
                verdicts: vec![],
            })
        })
    }
    fn validate_template(&self, _: &TemplateCheck) -> Result<TemplateValidation, ServiceError> {
        Ok(TemplateValidation {
            ok: true,
            problems: vec![],
        })
    }
}

impl RoleView for Nothing {
    fn mta_record(&self, _: Mac) -> Option<Value> {
        None
    }
    fn syslog_events(&self, _: &SyslogQuery, _: u32) -> Vec<Value> {
        vec![]
    }
    fn stats(&self) -> Value {
        Value::Object(Default::default())
    }
    fn metrics(&self) -> String {
        String::new()
    }
}

#[test]
fn the_document_is_written_and_read_back_as_openapi_3_1() {
    let doc = provd_api::openapi();
    let text = doc.to_pretty_json().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("openapi.json");
    std::fs::write(&file, &text).unwrap();
    let back: Value = serde_json::from_slice(&std::fs::read(&file).unwrap()).unwrap();
    assert!(
        back["openapi"].as_str().unwrap().starts_with("3.1."),
        "{}",
        back["openapi"]
    );
    let paths = back["paths"].as_object().unwrap();
    for p in [
        "/api/v1/devices",
        "/api/v1/devices/{mac}",
        "/api/v1/devices/{mac}/timeline",
        "/api/v1/devices/{mac}/reset",
        "/api/v1/jobs/import",
        "/api/v1/acs/devices/{id}/tasks",
        "/api/v1/openapi.json",
        "/metrics",
    ] {
        assert!(paths.contains_key(p), "{p} missing from {:?}", paths.keys());
    }
    // Every $ref resolves to a schema in the document.
    let schemas = back["components"]["schemas"].as_object().unwrap();
    let mut refs = Vec::new();
    collect_refs(&back, &mut refs);
    assert!(!refs.is_empty());
    for r in refs {
        let name = r
            .strip_prefix("#/components/schemas/")
            .unwrap_or_else(|| panic!("{r}"));
        assert!(schemas.contains_key(name), "dangling {r}");
    }
    // And it can be dumped for outside validators.
    if let Ok(out) = std::env::var("PROVD_OPENAPI_OUT") {
        std::fs::write(out, &text).unwrap();
    }
}

fn collect_refs(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::Object(m) => {
            for (k, x) in m {
                if k == "$ref" {
                    out.push(x.as_str().unwrap().to_owned());
                } else {
                    collect_refs(x, out);
                }
            }
        }
        Value::Array(a) => a.iter().for_each(|x| collect_refs(x, out)),
        _ => {}
    }
}

#[tokio::test]
async fn every_documented_operation_is_routed_and_the_served_document_is_the_same() {
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn Store> =
        Arc::new(provd_store::sqlite::SqliteStore::open(dir.path().join("s.db")).unwrap());
    store
        .put_token(
            &TokenSpec {
                name: "admin".into(),
                role: TokenRole::Admin,
                scope: Scope::default(),
                hash: provd_api::token_hash("s"),
            },
            &Actor::System,
        )
        .unwrap();
    let router = provd_api::router(
        Services {
            store,
            leases: Arc::new(Nothing),
            actions: Arc::new(Nothing),
            roles: Arc::new(Nothing),
            acs: None,
        },
        ApiSettings::default(),
    );
    let send = |method: &str, path: &str| {
        let req = Request::builder()
            .method(method)
            .uri(path)
            .header(header::AUTHORIZATION, "Bearer s")
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from(if method == "GET" { "" } else { "{}" }))
            .unwrap();
        let router = router.clone();
        async move {
            let r = router.oneshot(req).await.unwrap();
            let status = r.status();
            let body = axum::body::to_bytes(r.into_body(), 1 << 24).await.unwrap();
            (status, body)
        }
    };

    // The served document is the one openapi() gives.
    let (status, body) = send("GET", "/api/v1/openapi.json").await;
    assert_eq!(status, StatusCode::OK);
    let served: Value = serde_json::from_slice(&body).unwrap();
    let doc = serde_json::to_value(provd_api::openapi()).unwrap();
    assert_eq!(served, doc);

    // The check can fail: an undocumented path and a wrong method are told apart.
    let (s, b) = send("GET", "/api/v1/not-a-route").await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    assert_eq!(
        serde_json::from_slice::<Value>(&b).unwrap()["code"],
        "no_route"
    );
    assert_eq!(
        send("DELETE", "/api/v1/stats").await.0,
        StatusCode::METHOD_NOT_ALLOWED
    );

    let mut n = 0;
    for (path, item) in doc["paths"].as_object().unwrap() {
        let concrete = path
            .replace("{mac}", "00:11:22:aa:bb:01")
            .replace("{id}", "1")
            .replace("{name}", "gold")
            .replace("{n}", "1");
        for method in ["get", "put", "post", "delete", "patch"] {
            if item.get(method).is_none() {
                continue;
            }
            n += 1;
            let (status, body) = send(&method.to_uppercase(), &concrete).await;
            assert_ne!(status, StatusCode::METHOD_NOT_ALLOWED, "{method} {path}");
            if status == StatusCode::NOT_FOUND {
                let v: Value = serde_json::from_slice(&body).unwrap();
                assert_ne!(v["code"], "no_route", "{method} {path}: {v}");
            }
            assert!(
                !status.is_server_error() || status == StatusCode::SERVICE_UNAVAILABLE,
                "{method} {path}: {status} {}",
                String::from_utf8_lossy(&body)
            );
        }
    }
    assert!(n >= 40, "only {n} operations documented");
}

/// Not a test: serves the API on `PROVD_API_SERVE` (e.g. `127.0.0.1:18080`) over a fresh
/// SQLite store with an admin token whose secret is `s`, for outside tools (schemathesis) to
/// run against until it is killed:
/// `PROVD_API_SERVE=127.0.0.1:18080 cargo test -p provd-api --test openapi -- --ignored serve`.
#[tokio::test]
#[ignore]
async fn serve() {
    let addr = std::env::var("PROVD_API_SERVE").expect("PROVD_API_SERVE=host:port");
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn Store> =
        Arc::new(provd_store::sqlite::SqliteStore::open(dir.path().join("s.db")).unwrap());
    store
        .put_token(
            &TokenSpec {
                name: "admin".into(),
                role: TokenRole::Admin,
                scope: Scope::default(),
                hash: provd_api::token_hash("s"),
            },
            &Actor::System,
        )
        .unwrap();
    let router = provd_api::router(
        Services {
            store,
            leases: Arc::new(Nothing),
            actions: Arc::new(Nothing),
            roles: Arc::new(Nothing),
            acs: None,
        },
        ApiSettings {
            // The tool sends bad tokens on purpose; it would lock itself out.
            auth_fail_limit: u32::MAX,
            ..ApiSettings::default()
        },
    );
    let l = tokio::net::TcpListener::bind(&addr).await.unwrap();
    axum::serve(
        l,
        router.into_make_service_with_connect_info::<std::net::SocketAddr>(),
    )
    .await
    .unwrap();
}
