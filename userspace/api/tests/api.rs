//! The API in process (`tower::ServiceExt::oneshot`, no listener) against a real SQLite store
//! in a temporary directory and, for the ACS routes, a real ACS task router.
//!
//! `LeaseIndex`, `Actions` and `RoleView` are small test implementations here only because
//! the real ones are the binary's wiring of the DHCP, SNMP/CWMP, MTA and syslog roles
//! (userspace/provd); they record what they are asked and answer fixed things, nothing more.

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{HeaderMap, Request, StatusCode, header};
use provd_api::{
    ApiSettings, BoxFuture, Lease, LeaseIndex, LeaseQuery, PreviewRequest, ProblemStage,
    ReloadReport, RoleView, ServiceError, Services, SyslogQuery, TemplateCheck, TemplateFile,
    TemplateKind, TemplatePreview, TemplateProblem, TemplateValidation,
};
use provd_store::{Actor, Mac, Scope, Store, TokenRole, TokenSpec};
use serde_json::{Value, json};
use tower::ServiceExt;

// ---- the binary's parts, minimal ----

#[derive(Debug, Default)]
struct Leases(Mutex<Vec<Lease>>);

impl LeaseIndex for Leases {
    fn search(&self, q: &LeaseQuery, limit: u32) -> Vec<Lease> {
        let mut v: Vec<Lease> = self
            .0
            .lock()
            .unwrap()
            .iter()
            .filter(|l| q.mac.is_none_or(|m| m == l.mac))
            .filter(|l| q.address.is_none_or(|a| a == l.address))
            .filter(|l| q.relay.is_none_or(|r| Some(r) == l.relay))
            .filter(|l| q.remote_id.is_none() || q.remote_id == l.remote_id)
            .filter(|l| q.subscriber.is_none() || q.subscriber == l.subscriber)
            .filter(|l| q.after.is_none_or(|a| l.mac > a))
            .filter(|l| {
                q.relays_any.is_empty() || l.relay.is_some_and(|r| q.relays_any.contains(&r))
            })
            .cloned()
            .collect();
        v.sort_by_key(|l| l.mac);
        v.truncate(limit as usize);
        v
    }

    fn release(&self, mac: Mac) -> Result<(), ServiceError> {
        let mut v = self.0.lock().unwrap();
        let n = v.len();
        v.retain(|l| l.mac != mac);
        if v.len() == n {
            return Err(ServiceError::NotFound(format!("no lease for {mac}")));
        }
        Ok(())
    }
}

#[derive(Debug, Default)]
struct Actions {
    resets: Mutex<Vec<Mac>>,
    reload: Mutex<Option<ReloadReport>>,
    /// Every preview asked for, with its changes.
    previews: Mutex<Vec<PreviewRequest>>,
}

/// The one template the test config names (version 0: its file).
const TEMPLATE: &str = "cm.cfg.txt";
const TEMPLATE_FILE: &str = "Main {\n\tNetworkAccess 1;\n}\n";

/// The test's template check: `{% bad` anywhere is a syntax error at its line and column.
fn problems_of(text: &str) -> Vec<TemplateProblem> {
    text.lines()
        .enumerate()
        .filter_map(|(i, l)| {
            let col = l.find("{% bad")?;
            Some(TemplateProblem {
                line: Some(i as u32 + 1),
                column: Some(l[..col].chars().count() as u32 + 1),
                message: "syntax error: unknown statement bad".into(),
                stage: Some(ProblemStage::Syntax),
            })
        })
        .collect()
}

impl provd_api::Actions for Actions {
    fn reset(&self, mac: Mac) -> BoxFuture<'_, Result<String, ServiceError>> {
        self.resets.lock().unwrap().push(mac);
        Box::pin(async { Ok("docsDevResetNow set".to_owned()) })
    }

    fn reload(
        &self,
        force: bool,
        dry_run: bool,
    ) -> BoxFuture<'_, Result<ReloadReport, ServiceError>> {
        let mut r = self.reload.lock().unwrap().clone().unwrap();
        r.applied = !dry_run && (force || r.orphaned.is_empty());
        Box::pin(async move { Ok(r) })
    }

    fn templates(&self) -> Value {
        json!([{"kind": "cm", "name": TEMPLATE}])
    }

    fn template_file(&self, name: &str) -> Result<TemplateFile, ServiceError> {
        if name != TEMPLATE {
            return Err(ServiceError::NotFound(format!("no template {name:?}")));
        }
        Ok(TemplateFile {
            name: name.into(),
            kind: TemplateKind::Cm,
            path: format!("/etc/provd/{name}"),
            text: TEMPLATE_FILE.into(),
        })
    }

    fn template_preview_with(
        &self,
        req: PreviewRequest,
    ) -> BoxFuture<'_, Result<TemplatePreview, ServiceError>> {
        self.previews.lock().unwrap().push(req.clone());
        Box::pin(async move {
            let text = req.text.unwrap_or_else(|| "current".into());
            let problems = problems_of(&text);
            if !problems.is_empty() {
                return Err(ServiceError::TemplateInvalid(problems));
            }
            Ok(TemplatePreview {
                sha256: None,
                kind: req.kind.unwrap_or(TemplateKind::Cm),
                file: Some(format!("{}.cfg", req.mac)),
                text,
                verdicts: vec![],
            })
        })
    }

    fn template_preview(
        &self,
        mac: Mac,
        kind: TemplateKind,
    ) -> BoxFuture<'_, Result<TemplatePreview, ServiceError>> {
        Box::pin(async move {
            Ok(TemplatePreview {
                sha256: None,
                kind,
                file: Some(format!("{mac}.cfg")),
                text: "Main\n{\n}\n".into(),
                verdicts: vec![],
            })
        })
    }

    fn validate_template(&self, t: &TemplateCheck) -> Result<TemplateValidation, ServiceError> {
        let problems = problems_of(&t.text);
        Ok(TemplateValidation {
            ok: !t.text.is_empty() && problems.is_empty(),
            problems,
        })
    }
}

#[derive(Debug)]
struct Roles;

impl RoleView for Roles {
    fn mta_record(&self, mac: Mac) -> Option<Value> {
        (mac == MTA).then(|| json!({"mac": mac, "state": "done"}))
    }
    fn syslog_events(&self, _: &SyslogQuery, _: u32) -> Vec<Value> {
        vec![]
    }
    fn stats(&self) -> Value {
        json!({"dhcp": {"acks": 1}})
    }
    fn metrics(&self) -> String {
        "provd_up 1\n".into()
    }
}

const MTA: Mac = Mac([0, 0x10, 0x95, 0, 0, 1]);

// ---- the rig ----

struct Rig {
    _dir: tempfile::TempDir,
    store: Arc<dyn Store>,
    leases: Arc<Leases>,
    actions: Arc<Actions>,
    router: Router,
}

struct Reply {
    status: StatusCode,
    headers: HeaderMap,
    body: String,
}

impl Reply {
    fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("{e}: {}", self.body))
    }
    #[track_caller]
    fn expect(&self, status: StatusCode) -> Value {
        assert_eq!(self.status, status, "{}", self.body);
        if self.body.is_empty() {
            Value::Null
        } else {
            self.json()
        }
    }
    #[track_caller]
    fn error(&self, status: StatusCode, code: &str, field: Option<&str>) -> Value {
        let v = self.expect(status);
        assert_eq!(v["code"], code, "{}", self.body);
        assert_eq!(v["field"].as_str(), field, "{}", self.body);
        v
    }
}

fn rig_with(settings: ApiSettings, acs: Option<Router>) -> Rig {
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn Store> =
        Arc::new(provd_store::sqlite::SqliteStore::open(dir.path().join("store.db")).unwrap());
    let leases = Arc::new(Leases::default());
    let actions = Arc::new(Actions::default());
    let router = provd_api::router(
        Services {
            store: Arc::clone(&store),
            leases: leases.clone(),
            actions: actions.clone(),
            roles: Arc::new(Roles),
            acs,
        },
        settings,
    );
    for (name, role, scope) in [
        ("admin", TokenRole::Admin, Scope::default()),
        ("op", TokenRole::Operator, Scope::default()),
        ("ro", TokenRole::ReadOnly, Scope::default()),
    ] {
        token(&*store, name, role, scope);
    }
    Rig {
        _dir: dir,
        store,
        leases,
        actions,
        router,
    }
}

fn rig() -> Rig {
    rig_with(ApiSettings::default(), None)
}

/// A token named `name` whose secret is `secret-NAME`.
fn token(store: &dyn Store, name: &str, role: TokenRole, scope: Scope) {
    let spec = TokenSpec {
        name: name.into(),
        role,
        scope,
        hash: provd_api::token_hash(&format!("secret-{name}")),
    };
    store.put_token(&spec, &Actor::Cli("test".into())).unwrap();
}

impl Rig {
    async fn send(&self, req: Request<Body>) -> Reply {
        let resp = self.router.clone().oneshot(req).await.unwrap();
        let status = resp.status();
        let headers = resp.headers().clone();
        let body = axum::body::to_bytes(resp.into_body(), 1 << 26)
            .await
            .unwrap();
        Reply {
            status,
            headers,
            body: String::from_utf8(body.to_vec()).unwrap(),
        }
    }

    /// A request as token `who` (None: no Authorization), with extra headers.
    async fn call(
        &self,
        who: Option<&str>,
        method: &str,
        path: &str,
        body: Option<Value>,
        extra: &[(&str, &str)],
    ) -> Reply {
        let mut req = Request::builder().method(method).uri(path);
        if let Some(w) = who {
            req = req.header(header::AUTHORIZATION, format!("Bearer secret-{w}"));
        }
        for (k, v) in extra {
            req = req.header(*k, *v);
        }
        let req = match body {
            Some(b) => req
                .header(header::CONTENT_TYPE, "application/json")
                .body(Body::from(b.to_string())),
            None => req.body(Body::empty()),
        };
        self.send(req.unwrap()).await
    }

    async fn get(&self, who: &str, path: &str) -> Reply {
        self.call(Some(who), "GET", path, None, &[]).await
    }

    async fn put(&self, who: &str, path: &str, body: Value) -> Reply {
        self.call(Some(who), "PUT", path, Some(body), &[]).await
    }
}

async fn seed(r: &Rig) {
    r.put("op", "/api/v1/subscribers/acct-1", json!({"name": "Ann"}))
        .await
        .expect(StatusCode::OK);
    for (c, tier) in [("gold", "1000M"), ("silver", "100M")] {
        r.put(
            "op",
            &format!("/api/v1/classes/{c}"),
            json!({"vars": {"tier": tier}}),
        )
        .await
        .expect(StatusCode::OK);
    }
}

// ---- tests ----

#[tokio::test]
async fn a_device_is_written_read_with_its_etag_and_conditional_writes_are_kept() {
    let r = rig();
    seed(&r).await;
    let path = "/api/v1/devices/00:11:22:aa:bb:01";
    let d = r
        .put(
            "op",
            path,
            json!({"type": "cm", "subscriber": "acct-1", "class_of_service": "gold", "vars": {"max_cpe": 4}}),
        )
        .await;
    let v = d.expect(StatusCode::OK);
    assert_eq!(v["mac"], "00:11:22:aa:bb:01");
    let version = v["version"].as_u64().unwrap();
    assert_eq!(d.headers[header::ETAG], format!("\"{version}\"").as_str());

    // GET by another spelling of the MAC: same record, same ETag.
    let g = r.get("ro", "/api/v1/devices/0011.22aa.bb01").await;
    assert_eq!(g.expect(StatusCode::OK)["class_of_service"], "gold");
    assert_eq!(g.headers[header::ETAG], d.headers[header::ETAG]);

    // If-Match with the current version: applied, version bumped.
    let etag = g.headers[header::ETAG].to_str().unwrap().to_owned();
    let body = json!({"type": "cm", "subscriber": "acct-1", "class_of_service": "silver"});
    let u = r
        .call(
            Some("op"),
            "PUT",
            path,
            Some(body.clone()),
            &[("if-match", &etag)],
        )
        .await;
    assert_eq!(u.expect(StatusCode::OK)["version"], version + 1);

    // The old ETag again: 412, the current version in the body, nothing changed.
    let stale = r
        .call(
            Some("op"),
            "PUT",
            path,
            Some(json!({"class_of_service": "gold"})),
            &[("if-match", &etag)],
        )
        .await;
    let e = stale.error(
        StatusCode::PRECONDITION_FAILED,
        "version_mismatch",
        Some("If-Match"),
    );
    assert_eq!(e["detail"]["current_version"], version + 1, "{e}");
    assert_eq!(r.get("ro", path).await.json()["class_of_service"], "silver");

    // If-None-Match: * on an existing device: 409; on a new one: created.
    r.call(
        Some("op"),
        "PUT",
        path,
        Some(body.clone()),
        &[("if-none-match", "*")],
    )
    .await
    .error(StatusCode::CONFLICT, "conflict", None);
    r.call(
        Some("op"),
        "PUT",
        "/api/v1/devices/00:11:22:aa:bb:02",
        Some(json!({})),
        &[("if-none-match", "*")],
    )
    .await
    .expect(StatusCode::OK);

    // PATCH (merge patch): one field, the rest kept.
    let p = r
        .call(
            Some("op"),
            "PATCH",
            path,
            Some(json!({"serial": "SN9", "vars": {"x": 1}})),
            &[],
        )
        .await
        .expect(StatusCode::OK);
    assert_eq!(
        (&p["serial"], &p["class_of_service"], &p["vars"]["x"]),
        (&json!("SN9"), &json!("silver"), &json!(1))
    );

    // DELETE with a stale ETag: 412; with none: gone; then 404.
    r.call(Some("op"), "DELETE", path, None, &[("if-match", "\"1\"")])
        .await
        .error(
            StatusCode::PRECONDITION_FAILED,
            "version_mismatch",
            Some("If-Match"),
        );
    r.call(Some("op"), "DELETE", path, None, &[])
        .await
        .expect(StatusCode::NO_CONTENT);
    r.get("ro", path)
        .await
        .error(StatusCode::NOT_FOUND, "not_found", None);

    // Each change is in the audit log under the token's name.
    let a = r
        .get("op", "/api/v1/audit?resource=device&key=00:11:22:aa:bb:01")
        .await;
    let a = a.expect(StatusCode::OK);
    let actions: Vec<&str> = a["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            assert_eq!(e["who"], "token:op", "{e}");
            e["action"].as_str().unwrap()
        })
        .collect();
    assert_eq!(actions.len(), 4, "create, update, patch, delete: {a}");
    assert_eq!(actions[0], "delete", "{a}");
    // Read-only may not read the audit log.
    r.get("ro", "/api/v1/audit")
        .await
        .error(StatusCode::FORBIDDEN, "forbidden", None);
}

#[tokio::test]
async fn bad_bodies_and_queries_name_the_field_at_fault() {
    let r = rig();
    seed(&r).await;
    let path = "/api/v1/devices/00:11:22:aa:bb:01";
    for (body, code, field) in [
        (json!({"vars": {"tier": [1]}}), "invalid", "vars.tier"),
        (json!({"vars": {"1x": 1}}), "invalid", "vars.1x"),
        (json!({"type": "toaster"}), "invalid", "type"),
        (json!({"mac": "00:11:22:aa:bb:99"}), "invalid", "mac"),
        (json!({"mac": "nonsense"}), "invalid", "mac"),
        (json!({"colour": "red"}), "invalid", "colour"),
        (
            json!({"class_of_service": 7}),
            "invalid",
            "class_of_service",
        ),
        (
            json!({"class_of_service": "platinum"}),
            "invalid",
            "class_of_service",
        ),
    ] {
        let e = r.put("op", path, body.clone()).await;
        assert_eq!(e.status, StatusCode::BAD_REQUEST, "{body}: {}", e.body);
        let v = e.json();
        assert_eq!(
            (v["code"].as_str(), v["field"].as_str()),
            (Some(code), Some(field)),
            "{body}: {v}"
        );
    }
    // Not JSON at all.
    let req = Request::put(path)
        .header(header::AUTHORIZATION, "Bearer secret-op")
        .body(Body::from("{\"type\": "))
        .unwrap();
    r.send(req)
        .await
        .error(StatusCode::BAD_REQUEST, "bad_json", None);
    // A bad MAC in the path, a bad query parameter, an unknown one.
    r.get("ro", "/api/v1/devices/zz")
        .await
        .error(StatusCode::BAD_REQUEST, "invalid", Some("mac"));
    r.get("ro", "/api/v1/devices?limit=many").await.error(
        StatusCode::BAD_REQUEST,
        "invalid_query",
        Some("limit"),
    );
    r.get("ro", "/api/v1/devices?colour=red").await.error(
        StatusCode::BAD_REQUEST,
        "invalid_query",
        Some("colour"),
    );
    r.get("ro", "/api/v1/devices?type=toaster").await.error(
        StatusCode::BAD_REQUEST,
        "invalid_query",
        Some("type"),
    );
    r.call(
        Some("op"),
        "PUT",
        path,
        Some(json!({})),
        &[("if-match", "soon")],
    )
    .await
    .error(StatusCode::BAD_REQUEST, "invalid", Some("If-Match"));
    // Nothing was written.
    assert!(
        r.store
            .get_device("00:11:22:aa:bb:01".parse().unwrap())
            .unwrap()
            .is_none()
    );
    // Unknown routes and methods: JSON errors too.
    r.get("ro", "/api/v1/nope")
        .await
        .error(StatusCode::NOT_FOUND, "no_route", None);
    r.call(Some("op"), "POST", "/api/v1/stats", None, &[])
        .await
        .error(StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed", None);
}

#[tokio::test]
async fn a_body_over_the_limit_is_413() {
    let r = rig_with(
        ApiSettings {
            body_limit: 1024,
            ..ApiSettings::default()
        },
        None,
    );
    let big = json!({"vars": {"x": "a".repeat(2000)}});
    r.put("op", "/api/v1/devices/00:11:22:aa:bb:01", big)
        .await
        .error(StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large", None);
    // An import job has its own, larger limit.
    let rows: Vec<Value> = (0..100u32)
        .map(|i| json!({"mac": format!("00:11:22:00:{:02x}:{:02x}", i / 256, i % 256), "serial": "x".repeat(100)}))
        .collect();
    r.call(
        Some("op"),
        "POST",
        "/api/v1/jobs/import",
        Some(Value::Array(rows)),
        &[],
    )
    .await
    .expect(StatusCode::ACCEPTED);
}

fn from_ip(mut req: Request<Body>, ip: [u8; 4]) -> Request<Body> {
    req.extensions_mut()
        .insert(ConnectInfo(SocketAddr::from((ip, 40000))));
    req
}

#[tokio::test]
async fn tokens_roles_and_the_failed_authentication_limit() {
    let r = rig_with(
        ApiSettings {
            auth_fail_limit: 3,
            auth_fail_window: Duration::from_secs(60),
            ..ApiSettings::default()
        },
        None,
    );
    // No token, an unknown token: 401 with WWW-Authenticate.
    let e = r.call(None, "GET", "/api/v1/devices", None, &[]).await;
    e.error(
        StatusCode::UNAUTHORIZED,
        "unauthorized",
        Some("Authorization"),
    );
    assert_eq!(e.headers[header::WWW_AUTHENTICATE], "Bearer");
    r.call(Some("nobody"), "GET", "/api/v1/devices", None, &[])
        .await
        .error(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            Some("Authorization"),
        );

    // Roles: read-only reads but may not write; operator may not manage tokens or reload.
    r.get("ro", "/api/v1/devices").await.expect(StatusCode::OK);
    r.put("ro", "/api/v1/subscribers/x", json!({})).await.error(
        StatusCode::FORBIDDEN,
        "forbidden",
        None,
    );
    r.call(
        Some("ro"),
        "POST",
        "/api/v1/templates/validate",
        Some(json!({"kind": "cm", "text": "x"})),
        &[],
    )
    .await
    .error(StatusCode::FORBIDDEN, "forbidden", None);
    r.get("op", "/api/v1/tokens")
        .await
        .error(StatusCode::FORBIDDEN, "forbidden", None);
    // Each role reads its own token (what the UI decides its controls by), never a secret.
    for (name, role) in [("ro", "read-only"), ("op", "operator"), ("admin", "admin")] {
        let me = r.get(name, "/api/v1/whoami").await.expect(StatusCode::OK);
        assert_eq!(
            (&me["id"], &me["role"]),
            (&json!(name), &json!(role)),
            "{me}"
        );
        assert!(
            me.get("hash").is_none() && me.get("secret").is_none(),
            "{me}"
        );
    }
    r.call(Some("op"), "POST", "/api/v1/config/reload", None, &[])
        .await
        .error(StatusCode::FORBIDDEN, "forbidden", None);

    // Admin creates a token: the secret once, working at once; the list never shows it.
    let c = r
        .call(
            Some("admin"),
            "POST",
            "/api/v1/tokens",
            Some(json!({"name": "oss", "role": "operator"})),
            &[],
        )
        .await
        .expect(StatusCode::CREATED);
    let secret = c["secret"].as_str().unwrap().to_owned();
    assert_eq!(c["token"]["id"], "oss");
    let req = Request::get("/api/v1/devices")
        .header(header::AUTHORIZATION, format!("Bearer {secret}"))
        .body(Body::empty())
        .unwrap();
    r.send(req).await.expect(StatusCode::OK);
    let list = r.get("admin", "/api/v1/tokens").await;
    assert!(!list.body.contains(&secret), "{}", list.body);
    assert!(
        list.expect(StatusCode::OK)
            .as_array()
            .unwrap()
            .iter()
            .any(|t| t["id"] == "oss")
    );
    r.call(
        Some("admin"),
        "POST",
        "/api/v1/tokens",
        Some(json!({"name": "x", "role": "root"})),
        &[],
    )
    .await
    .error(StatusCode::BAD_REQUEST, "invalid", Some("role"));
    // Deleted: refused at once, cache or not.
    r.call(Some("admin"), "DELETE", "/api/v1/tokens/oss", None, &[])
        .await
        .expect(StatusCode::NO_CONTENT);
    let req = Request::get("/api/v1/devices")
        .header(header::AUTHORIZATION, format!("Bearer {secret}"))
        .body(Body::empty())
        .unwrap();
    r.send(req).await.error(
        StatusCode::UNAUTHORIZED,
        "unauthorized",
        Some("Authorization"),
    );

    // Three unknown tokens from one address: the fourth request from it is 429, even with a
    // good token; another address is not affected.
    for _ in 0..3 {
        let req = Request::get("/api/v1/devices")
            .header(header::AUTHORIZATION, "Bearer guess")
            .body(Body::empty())
            .unwrap();
        r.send(from_ip(req, [192, 0, 2, 7]))
            .await
            .expect(StatusCode::UNAUTHORIZED);
    }
    let req = Request::get("/api/v1/devices")
        .header(header::AUTHORIZATION, "Bearer secret-admin")
        .body(Body::empty())
        .unwrap();
    let e = r.send(from_ip(req, [192, 0, 2, 7])).await;
    e.error(StatusCode::TOO_MANY_REQUESTS, "too_many_failures", None);
    assert!(e.headers.contains_key(header::RETRY_AFTER));
    let req = Request::get("/api/v1/devices")
        .header(header::AUTHORIZATION, "Bearer secret-admin")
        .body(Body::empty())
        .unwrap();
    r.send(from_ip(req, [192, 0, 2, 8]))
        .await
        .expect(StatusCode::OK);
}

#[tokio::test]
async fn a_scope_limits_every_device_query() {
    let r = rig();
    seed(&r).await;
    token(
        &*r.store,
        "gold-only",
        TokenRole::Operator,
        Scope {
            relays: vec![],
            classes: vec!["gold".into()],
        },
    );
    let relay = Ipv4Addr::new(10, 0, 0, 1);
    token(
        &*r.store,
        "cmts-1",
        TokenRole::Operator,
        Scope {
            relays: vec![relay],
            classes: vec![],
        },
    );
    for (i, class) in [(1, "gold"), (2, "silver"), (3, "gold")] {
        r.put(
            "op",
            &format!("/api/v1/devices/00:11:22:aa:bb:0{i}"),
            json!({"class_of_service": class}),
        )
        .await
        .expect(StatusCode::OK);
    }
    r.leases.0.lock().unwrap().push(Lease {
        mac: "00:11:22:aa:bb:02".parse().unwrap(),
        address: Ipv4Addr::new(10, 0, 0, 20),
        expires_at: 1,
        relay: Some(relay),
        remote_id: None,
        circuit_id: None,
        subscriber: None,
        dhcp_class: None,
    });
    r.leases.0.lock().unwrap().push(Lease {
        mac: "00:11:22:aa:bb:03".parse().unwrap(),
        address: Ipv4Addr::new(10, 1, 0, 30),
        expires_at: 1,
        relay: Some(Ipv4Addr::new(10, 1, 0, 1)),
        remote_id: None,
        circuit_id: None,
        subscriber: None,
        dhcp_class: None,
    });

    let macs = |v: Value| -> Vec<String> {
        v["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| d["mac"].as_str().unwrap().to_owned())
            .collect()
    };
    let all = r
        .get("gold-only", "/api/v1/devices")
        .await
        .expect(StatusCode::OK);
    assert_eq!(macs(all), ["00:11:22:aa:bb:01", "00:11:22:aa:bb:03"]);
    let all = r
        .get("cmts-1", "/api/v1/devices")
        .await
        .expect(StatusCode::OK);
    assert_eq!(macs(all), ["00:11:22:aa:bb:02"]);
    let all = r
        .get("cmts-1", "/api/v1/leases")
        .await
        .expect(StatusCode::OK);
    assert_eq!(macs(all), ["00:11:22:aa:bb:02"]);

    // Outside the scope: a read is 404, a write 403; moving a device out of scope is 403.
    r.get("gold-only", "/api/v1/devices/00:11:22:aa:bb:02")
        .await
        .error(StatusCode::NOT_FOUND, "not_found", None);
    r.get("gold-only", "/api/v1/devices/00:11:22:aa:bb:02/timeline")
        .await
        .error(StatusCode::NOT_FOUND, "not_found", None);
    r.get("cmts-1", "/api/v1/devices/00:11:22:aa:bb:01")
        .await
        .error(StatusCode::NOT_FOUND, "not_found", None);
    r.get("cmts-1", "/api/v1/devices/00:11:22:aa:bb:02")
        .await
        .expect(StatusCode::OK);
    r.put(
        "gold-only",
        "/api/v1/devices/00:11:22:aa:bb:02",
        json!({"class_of_service": "gold"}),
    )
    .await
    .error(StatusCode::FORBIDDEN, "forbidden", None);
    r.put(
        "gold-only",
        "/api/v1/devices/00:11:22:aa:bb:01",
        json!({"class_of_service": "silver"}),
    )
    .await
    .error(StatusCode::FORBIDDEN, "forbidden", Some("class_of_service"));
    r.call(
        Some("gold-only"),
        "DELETE",
        "/api/v1/devices/00:11:22:aa:bb:02",
        None,
        &[],
    )
    .await
    .error(StatusCode::FORBIDDEN, "forbidden", None);
    r.call(
        Some("cmts-1"),
        "POST",
        "/api/v1/devices/00:11:22:aa:bb:03/reset",
        None,
        &[],
    )
    .await
    .error(StatusCode::FORBIDDEN, "forbidden", None);
    r.call(
        Some("cmts-1"),
        "POST",
        "/api/v1/leases/00:11:22:aa:bb:03/release",
        None,
        &[],
    )
    .await
    .error(StatusCode::FORBIDDEN, "forbidden", None);
    assert!(r.actions.resets.lock().unwrap().is_empty());
    assert_eq!(r.leases.0.lock().unwrap().len(), 2);
    // Inside: fine.
    r.put(
        "gold-only",
        "/api/v1/devices/00:11:22:aa:bb:01",
        json!({"class_of_service": "gold", "serial": "S"}),
    )
    .await
    .expect(StatusCode::OK);
    assert_eq!(
        r.store
            .get_device("00:11:22:aa:bb:02".parse().unwrap())
            .unwrap()
            .unwrap()
            .spec
            .class_of_service
            .as_deref(),
        Some("silver")
    );
}

#[tokio::test]
async fn lists_page_by_cursor_and_filter() {
    let r = rig();
    seed(&r).await;
    for i in 0..5u8 {
        let kind = if i % 2 == 0 { "cm" } else { "mta" };
        r.put(
            "op",
            &format!("/api/v1/devices/00:11:22:aa:bb:0{i}"),
            json!({"type": kind, "subscriber": "acct-1"}),
        )
        .await
        .expect(StatusCode::OK);
    }
    r.put(
        "op",
        "/api/v1/devices/00:99:00:00:00:01",
        json!({"type": "cm"}),
    )
    .await
    .expect(StatusCode::OK);
    let mut seen = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let q = match &after {
            Some(a) => format!("/api/v1/devices?limit=2&after={a}"),
            None => "/api/v1/devices?limit=2".into(),
        };
        let p = r.get("ro", &q).await.expect(StatusCode::OK);
        let items = p["items"].as_array().unwrap();
        assert!(items.len() <= 2);
        seen.extend(items.iter().map(|d| d["mac"].as_str().unwrap().to_owned()));
        match p["next"].as_str() {
            Some(n) => after = Some(n.to_owned()),
            None => break,
        }
    }
    assert_eq!(seen.len(), 6, "{seen:?}");
    let mut sorted = seen.clone();
    sorted.sort();
    assert_eq!(seen, sorted);

    let count = |v: Value| v["items"].as_array().unwrap().len();
    assert_eq!(
        count(
            r.get("ro", "/api/v1/devices?type=mta")
                .await
                .expect(StatusCode::OK)
        ),
        2
    );
    assert_eq!(
        count(
            r.get("ro", "/api/v1/devices?mac_prefix=00-11-22")
                .await
                .expect(StatusCode::OK)
        ),
        5
    );
    assert_eq!(
        count(
            r.get("ro", "/api/v1/devices?subscriber=acct-1&type=cm")
                .await
                .expect(StatusCode::OK)
        ),
        3
    );

    // By what the leases say: relay, address, online/offline.
    let cmts = Ipv4Addr::new(10, 0, 0, 1);
    for (i, relay) in [(0u8, cmts), (1, cmts), (2, Ipv4Addr::new(10, 1, 0, 1))] {
        r.leases.0.lock().unwrap().push(Lease {
            mac: format!("00:11:22:aa:bb:0{i}").parse().unwrap(),
            address: Ipv4Addr::new(10, 0, 0, 20 + i),
            expires_at: 1,
            relay: Some(relay),
            remote_id: None,
            circuit_id: None,
            subscriber: None,
            dhcp_class: None,
        });
    }
    // A lease of a MAC without a device record lists nothing.
    r.leases.0.lock().unwrap().push(Lease {
        mac: "00:11:22:aa:bb:0f".parse().unwrap(),
        address: Ipv4Addr::new(10, 0, 0, 99),
        expires_at: 1,
        relay: Some(cmts),
        remote_id: None,
        circuit_id: None,
        subscriber: None,
        dhcp_class: None,
    });
    let macs = |v: Value| -> Vec<String> {
        v["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| d["mac"].as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(
        macs(
            r.get("ro", "/api/v1/devices?relay=10.0.0.1")
                .await
                .expect(StatusCode::OK)
        ),
        ["00:11:22:aa:bb:00", "00:11:22:aa:bb:01"]
    );
    assert_eq!(
        macs(
            r.get("ro", "/api/v1/devices?relay=10.0.0.1&type=mta")
                .await
                .expect(StatusCode::OK)
        ),
        ["00:11:22:aa:bb:01"],
        "the store's filters apply too"
    );
    assert_eq!(
        macs(
            r.get("ro", "/api/v1/devices?ip=10.0.0.22")
                .await
                .expect(StatusCode::OK)
        ),
        ["00:11:22:aa:bb:02"]
    );
    assert_eq!(
        macs(
            r.get("ro", "/api/v1/devices?state=online")
                .await
                .expect(StatusCode::OK)
        ),
        [
            "00:11:22:aa:bb:00",
            "00:11:22:aa:bb:01",
            "00:11:22:aa:bb:02"
        ]
    );
    let p = r
        .get("ro", "/api/v1/devices?state=online&limit=2")
        .await
        .expect(StatusCode::OK);
    assert_eq!(p["next"], "00:11:22:aa:bb:01");
    assert_eq!(
        macs(
            r.get("ro", "/api/v1/devices?state=online&after=00:11:22:aa:bb:01")
                .await
                .expect(StatusCode::OK)
        ),
        ["00:11:22:aa:bb:02"]
    );
    assert_eq!(
        macs(
            r.get("ro", "/api/v1/devices?state=offline")
                .await
                .expect(StatusCode::OK)
        ),
        [
            "00:11:22:aa:bb:03",
            "00:11:22:aa:bb:04",
            "00:99:00:00:00:01"
        ]
    );
    r.get("ro", "/api/v1/devices?state=offline&relay=10.0.0.1")
        .await
        .expect(StatusCode::BAD_REQUEST);
    r.get("ro", "/api/v1/devices?state=sleeping")
        .await
        .expect(StatusCode::BAD_REQUEST);
}

async fn job_until_done(r: &Rig, id: u64) -> Value {
    for _ in 0..500 {
        let j = r
            .get("op", &format!("/api/v1/jobs/{id}"))
            .await
            .expect(StatusCode::OK);
        if j["state"] != "running" {
            return j;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("job {id} did not finish");
}

#[tokio::test]
async fn an_import_job_lands_good_rows_and_names_bad_ones_by_line_and_field() {
    let r = rig_with(
        ApiSettings {
            import_chunk: 3,
            ..ApiSettings::default()
        },
        None,
    );
    seed(&r).await;
    let mut lines = Vec::new();
    for i in 0..10 {
        lines.push(
            json!({"mac": format!("00:11:22:00:00:{i:02x}"), "class_of_service": "gold"})
                .to_string(),
        );
    }
    lines[2] = "{not json".into(); // line 3
    lines[4] = json!({"mac": "00:11:22:00:00:04", "vars": {"tier": []}}).to_string(); // line 5
    lines[6] = json!({"mac": "00:11:22:00:00:06", "class_of_service": "platinum"}).to_string(); // line 7
    lines[8] = json!({"mac": "nope"}).to_string(); // line 9
    let body = lines.join("\n") + "\n";
    let req = Request::post("/api/v1/jobs/import")
        .header(header::AUTHORIZATION, "Bearer secret-op")
        .header(header::CONTENT_TYPE, "application/x-ndjson")
        .body(Body::from(body.clone()))
        .unwrap();
    let id = r.send(req).await.expect(StatusCode::ACCEPTED)["id"]
        .as_u64()
        .unwrap();
    let j = job_until_done(&r, id).await;
    assert_eq!(j["state"], "done", "{j}");
    // The list has it, newest first, with its counts but not its rows.
    let list = r.get("ro", "/api/v1/jobs").await.expect(StatusCode::OK);
    let first = &list["items"][0];
    assert_eq!(
        (&first["id"], &first["error_count"]),
        (&json!(id), &json!(4)),
        "{list}"
    );
    assert_eq!(first["errors"], json!([]), "{list}");
    assert_eq!(
        (&j["total"], &j["done"], &j["created"], &j["error_count"]),
        (&json!(10), &json!(10), &json!(6), &json!(4)),
        "{j}"
    );
    let errs: Vec<(u64, Option<&str>)> = j["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["line"].as_u64().unwrap(), e["field"].as_str()))
        .collect();
    assert_eq!(
        errs,
        [
            (3, None),
            (5, Some("vars.tier")),
            (7, Some("class_of_service")),
            (9, Some("mac"))
        ],
        "{j}"
    );
    assert!(
        r.store
            .get_device("00:11:22:00:00:07".parse().unwrap())
            .unwrap()
            .is_some()
    );
    assert!(
        r.store
            .get_device("00:11:22:00:00:06".parse().unwrap())
            .unwrap()
            .is_none()
    );

    // The same again, as a JSON array of the good rows: nothing changes.
    let good: Vec<Value> = lines
        .iter()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|v| {
            v["mac"] != "nope" && v["class_of_service"] != "platinum" && v["vars"].is_null()
        })
        .collect();
    assert_eq!(good.len(), 6);
    let id = r
        .call(
            Some("op"),
            "POST",
            "/api/v1/jobs/import",
            Some(Value::Array(good)),
            &[],
        )
        .await
        .expect(StatusCode::ACCEPTED)["id"]
        .as_u64()
        .unwrap();
    let j = job_until_done(&r, id).await;
    assert_eq!(
        (&j["unchanged"], &j["created"], &j["updated"]),
        (&json!(6), &json!(0), &json!(0)),
        "{j}"
    );

    r.get("op", "/api/v1/jobs/999")
        .await
        .error(StatusCode::NOT_FOUND, "not_found", None);
    r.call(
        Some("ro"),
        "POST",
        "/api/v1/jobs/import",
        Some(json!([])),
        &[],
    )
    .await
    .error(StatusCode::FORBIDDEN, "forbidden", None);
}

#[tokio::test]
async fn a_reset_is_in_the_timeline_and_a_release_drops_the_lease() {
    let r = rig();
    let mac = "00:11:22:aa:bb:01";
    r.call(
        Some("op"),
        "POST",
        &format!("/api/v1/devices/{mac}/reset"),
        None,
        &[],
    )
    .await
    .expect(StatusCode::OK);
    assert_eq!(r.actions.resets.lock().unwrap().len(), 1);
    let t = r
        .get("ro", &format!("/api/v1/devices/{mac}/timeline"))
        .await
        .expect(StatusCode::OK);
    let ev = &t["items"][0];
    assert_eq!(
        (&ev["source"], &ev["kind"], &ev["detail"]["by"]),
        (&json!("api"), &json!("reset"), &json!("token:op")),
        "{t}"
    );
    assert_eq!(ev["detail"]["result"], "docsDevResetNow set");

    r.leases.0.lock().unwrap().push(Lease {
        mac: mac.parse().unwrap(),
        address: Ipv4Addr::new(10, 0, 0, 20),
        expires_at: 1,
        relay: None,
        remote_id: Some("0a0b".into()),
        circuit_id: None,
        subscriber: None,
        dhcp_class: None,
    });
    let l = r
        .get("ro", "/api/v1/leases?remote_id=0a0b")
        .await
        .expect(StatusCode::OK);
    assert_eq!(l["items"][0]["address"], "10.0.0.20", "{l}");
    r.call(
        Some("op"),
        "POST",
        &format!("/api/v1/leases/{mac}/release"),
        None,
        &[],
    )
    .await
    .expect(StatusCode::NO_CONTENT);
    assert!(r.leases.0.lock().unwrap().is_empty());
    r.call(
        Some("op"),
        "POST",
        &format!("/api/v1/leases/{mac}/release"),
        None,
        &[],
    )
    .await
    .error(StatusCode::NOT_FOUND, "not_found", None);
    let t = r
        .get("ro", &format!("/api/v1/devices/{mac}/timeline?limit=1"))
        .await
        .expect(StatusCode::OK);
    assert_eq!(t["items"][0]["kind"], "lease-released", "{t}");
    assert!(t["next"].is_i64(), "a full page names the next: {t}");
}

#[tokio::test]
async fn device_changes_through_the_api_are_in_its_timeline() {
    let r = rig();
    seed(&r).await;
    let mac = "00:11:22:aa:bb:02";
    let path = format!("/api/v1/devices/{mac}");
    r.put(
        "op",
        &path,
        json!({"type": "cm", "class_of_service": "gold"}),
    )
    .await
    .expect(StatusCode::OK);
    r.call(
        Some("op"),
        "PATCH",
        &path,
        Some(json!({"class_of_service": "silver"})),
        &[],
    )
    .await
    .expect(StatusCode::OK);
    r.call(Some("op"), "DELETE", &path, None, &[])
        .await
        .expect(StatusCode::NO_CONTENT);
    let t = r
        .get("ro", &format!("{path}/timeline"))
        .await
        .expect(StatusCode::OK);
    let seen: Vec<(&str, &str, &Value)> = t["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["source"].as_str().unwrap(),
                e["kind"].as_str().unwrap(),
                &e["detail"]["class_of_service"],
            )
        })
        .collect();
    assert_eq!(
        seen,
        [
            ("api", "device-deleted", &Value::Null),
            ("api", "device-changed", &json!("silver")),
            ("api", "device-created", &json!("gold")),
        ],
        "{t}"
    );
    assert_eq!(
        t["items"][1]["detail"]["fields"],
        json!(["class_of_service"])
    );
    assert_eq!(t["items"][1]["detail"]["by"], "token:op");
}

#[tokio::test]
async fn a_reload_that_would_orphan_leases_is_refused_unless_forced() {
    let r = rig();
    let orphan = Lease {
        mac: "00:11:22:aa:bb:01".parse().unwrap(),
        address: Ipv4Addr::new(10, 9, 0, 5),
        expires_at: 1,
        relay: None,
        remote_id: None,
        circuit_id: None,
        subscriber: None,
        dhcp_class: None,
    };
    *r.actions.reload.lock().unwrap() = Some(ReloadReport {
        applied: false,
        changes: vec!["pool 10.9.0.0/24 removed".into()],
        orphaned: vec![orphan],
    });
    let e = r
        .call(Some("admin"), "POST", "/api/v1/config/reload", None, &[])
        .await;
    let v = e.error(StatusCode::CONFLICT, "orphaned_leases", None);
    assert_eq!(v["detail"]["orphaned"][0]["address"], "10.9.0.5", "{v}");
    let d = r
        .call(
            Some("admin"),
            "POST",
            "/api/v1/config/reload?dry_run=true",
            None,
            &[],
        )
        .await
        .expect(StatusCode::OK);
    assert_eq!(
        (&d["applied"], &d["changes"][0]),
        (&json!(false), &json!("pool 10.9.0.0/24 removed"))
    );
    let f = r
        .call(
            Some("admin"),
            "POST",
            "/api/v1/config/reload?force=true",
            None,
            &[],
        )
        .await
        .expect(StatusCode::OK);
    assert_eq!(f["applied"], true);
}

#[tokio::test]
async fn records_stats_templates_and_metrics() {
    let r = rig();
    seed(&r).await;
    let s = r.get("ro", "/api/v1/stats").await.expect(StatusCode::OK);
    assert_eq!(
        (
            &s["backend"],
            &s["store"]["classes"],
            &s["roles"]["dhcp"]["acks"]
        ),
        (&json!("embedded"), &json!(2), &json!(1)),
        "{s}"
    );
    let t = r
        .get("ro", "/api/v1/templates")
        .await
        .expect(StatusCode::OK);
    assert_eq!(t["items"][0]["kind"], "cm", "{t}");
    r.get("ro", &format!("/api/v1/mta/{MTA}"))
        .await
        .expect(StatusCode::OK);
    r.get("ro", "/api/v1/mta/00:00:00:00:00:01").await.error(
        StatusCode::NOT_FOUND,
        "not_found",
        None,
    );
    let p = r
        .get(
            "ro",
            "/api/v1/templates/preview?mac=00:11:22:aa:bb:01&kind=cm",
        )
        .await
        .expect(StatusCode::OK);
    assert_eq!(p["file"], "00:11:22:aa:bb:01.cfg");
    r.get(
        "ro",
        "/api/v1/templates/preview?mac=00:11:22:aa:bb:01&kind=tv",
    )
    .await
    .error(StatusCode::BAD_REQUEST, "invalid_query", Some("kind"));
    let v = r
        .call(
            Some("op"),
            "POST",
            "/api/v1/templates/validate",
            Some(json!({"kind": "mta", "text": "x"})),
            &[],
        )
        .await;
    assert_eq!(v.expect(StatusCode::OK)["ok"], true);
    r.get("ro", "/api/v1/syslog/events?mac=00:11:22:aa:bb:01")
        .await
        .expect(StatusCode::OK);

    // /metrics: a token like any read, unless metrics_open.
    r.call(None, "GET", "/metrics", None, &[]).await.error(
        StatusCode::UNAUTHORIZED,
        "unauthorized",
        Some("Authorization"),
    );
    let m = r.get("ro", "/metrics").await;
    assert_eq!(
        (m.status, m.body.as_str()),
        (StatusCode::OK, "provd_up 1\n")
    );
    let open = rig_with(
        ApiSettings {
            metrics_open: true,
            ..ApiSettings::default()
        },
        None,
    );
    assert_eq!(
        open.call(None, "GET", "/metrics", None, &[]).await.status,
        StatusCode::OK
    );
    // The ACS routes without an ACS: a 404 that says so, not one that looks like a missing
    // route.
    r.get("ro", "/api/v1/acs/stats")
        .await
        .error(StatusCode::NOT_FOUND, "not_configured", None);
}

#[tokio::test]
async fn the_acs_task_api_is_served_under_api_v1_acs_with_genieacs_types() {
    let dir = tempfile::tempdir().unwrap();
    let settings = provd_config::AcsSettings::from_toml("[acs]\nauth = \"none\"").unwrap();
    let acsd = Arc::new(provd_acsd::Acsd::new(&settings, dir.path().join("acs")).unwrap());
    let task_api = acsd.task_api_router();
    // Seeded through the ACS's own API (its admin route, not mapped here).
    let seed = Request::post("/api/seed")
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(
            json!({"count": 1, "serial_prefix": "SN"}).to_string(),
        ))
        .unwrap();
    assert_eq!(
        task_api.clone().oneshot(seed).await.unwrap().status(),
        StatusCode::OK
    );
    let r = rig_with(ApiSettings::default(), Some(task_api));

    let ids = r
        .get("ro", "/api/v1/acs/devices?serial=SN*")
        .await
        .expect(StatusCode::OK);
    let id = ids[0].as_str().unwrap().to_owned();
    let spv = json!({"method": "SetParameterValues", "values": [
        {"name": "Device.ManagementServer.PeriodicInformInterval", "value": "300", "type": "xsd:unsignedInt"}]});
    r.call(
        Some("ro"),
        "POST",
        &format!("/api/v1/acs/devices/{id}/tasks"),
        Some(spv.clone()),
        &[],
    )
    .await
    .error(StatusCode::FORBIDDEN, "forbidden", None);
    let t = r
        .call(
            Some("op"),
            "POST",
            &format!("/api/v1/acs/devices/{id}/tasks"),
            Some(spv),
            &[],
        )
        .await
        .expect(StatusCode::OK);
    let n = t["task"].as_u64().unwrap();
    // Queued for a CPE the store knows by its DeviceId: in that device's timeline.
    r.put(
        "op",
        "/api/v1/devices/00:11:22:aa:bb:09",
        json!({"type": "cpe", "device_id": id}),
    )
    .await
    .expect(StatusCode::OK);
    r.call(
        Some("op"),
        "POST",
        &format!("/api/v1/acs/devices/{id}/tasks"),
        Some(json!({"method": "Reboot"})),
        &[],
    )
    .await
    .expect(StatusCode::OK);
    let tl = r
        .get("ro", "/api/v1/devices/00:11:22:aa:bb:09/timeline")
        .await
        .expect(StatusCode::OK);
    let ev = &tl["items"][0];
    assert_eq!(
        (
            &ev["source"],
            &ev["kind"],
            &ev["detail"]["method"],
            &ev["detail"]["by"]
        ),
        (
            &json!("api"),
            &json!("cwmp-task-queued"),
            &json!("Reboot"),
            &json!("token:op")
        ),
        "{tl}"
    );
    let t = r
        .get("ro", &format!("/api/v1/acs/tasks/{n}"))
        .await
        .expect(StatusCode::OK);
    assert_eq!(
        (&t["state"], &t["method"]),
        (&json!("queued"), &json!("SetParameterValues")),
        "{t}"
    );
    r.call(None, "GET", "/api/v1/acs/stats", None, &[])
        .await
        .expect(StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn a_token_lookup_is_cached_for_its_ttl_and_no_longer() {
    for (ttl, after_delete) in [
        (Duration::from_secs(60), StatusCode::OK),
        (Duration::ZERO, StatusCode::UNAUTHORIZED),
    ] {
        let r = rig_with(
            ApiSettings {
                token_cache_ttl: ttl,
                ..ApiSettings::default()
            },
            None,
        );
        r.get("ro", "/api/v1/devices").await.expect(StatusCode::OK);
        // Removed behind the API's back (as `provd token delete` would): the cached lookup
        // still admits it within the TTL, i.e. the store is not asked again.
        r.store
            .delete_token("ro", &Actor::Cli("test".into()))
            .unwrap();
        assert_eq!(
            r.get("ro", "/api/v1/devices").await.status,
            after_delete,
            "ttl {ttl:?}"
        );
    }
}

// ---- template versions ----

/// Saves are checked first (an invalid one is 400 `template_invalid` with each problem's
/// line and column, and nothing is saved), numbered 1, 2, 3 with the file as version 0,
/// listed newest first, read one by one, guarded by If-Match, rolled back by saving the old
/// text again; read-only tokens read but do not save; unknown names are 404.
#[tokio::test]
async fn template_versions_are_checked_saved_listed_and_rolled_back() {
    let r = rig();
    let base = format!("/api/v1/templates/{TEMPLATE}");
    let versions = format!("{base}/versions");
    let post = |who: &'static str,
                path: String,
                body: Value,
                extra: &'static [(&'static str, &'static str)]| {
        let r = &r;
        async move { r.call(Some(who), "POST", &path, Some(body), extra).await }
    };

    let list = r
        .get("ro", "/api/v1/templates")
        .await
        .expect(StatusCode::OK);
    assert_eq!(
        (
            &list["items"][0]["name"],
            &list["items"][0]["version"],
            &list["items"][0]["source"]
        ),
        (&json!(TEMPLATE), &json!(0), &json!("file")),
        "{list}"
    );
    let cur = r.get("ro", &base).await;
    assert_eq!(cur.headers[header::ETAG], "\"0\"");
    let cur = cur.expect(StatusCode::OK);
    assert_eq!(
        (&cur["version"], &cur["source"], &cur["kind"], &cur["text"]),
        (
            &json!(0),
            &json!("file"),
            &json!("cm"),
            &json!(TEMPLATE_FILE)
        ),
        "{cur}"
    );

    // Invalid: 400 with the problems, and nothing saved.
    let bad = "Main {\n\tNetworkAccess 1;\n  é {% bad %}\n}\n";
    let e = post("op", versions.clone(), json!({"text": bad}), &[])
        .await
        .error(StatusCode::BAD_REQUEST, "template_invalid", Some("text"));
    assert_eq!(
        e["detail"]["problems"],
        json!([{"line": 3, "column": 5, "message": "syntax error: unknown statement bad", "stage": "syntax"}]),
        "{e}"
    );
    assert!(
        e["message"].as_str().unwrap().contains("line 3, column 5"),
        "{e}"
    );
    assert_eq!(r.store.latest_template_version(TEMPLATE).unwrap(), None);
    let h = r.get("ro", &versions).await.expect(StatusCode::OK);
    assert_eq!(
        h["items"].as_array().unwrap().len(),
        1,
        "only the file: {h}"
    );

    // Read-only may not save; unknown names are 404.
    post("ro", versions.clone(), json!({"text": TEMPLATE_FILE}), &[])
        .await
        .error(StatusCode::FORBIDDEN, "forbidden", None);
    post(
        "op",
        "/api/v1/templates/nope.j2/versions".into(),
        json!({"text": "x"}),
        &[],
    )
    .await
    .error(StatusCode::NOT_FOUND, "not_found", None);
    for path in [
        "/api/v1/templates/nope.j2",
        "/api/v1/templates/nope.j2/versions",
        "/api/v1/templates/nope.j2/versions/0",
    ] {
        r.get("ro", path)
            .await
            .error(StatusCode::NOT_FOUND, "not_found", None);
    }
    post(
        "op",
        versions.clone(),
        json!({"text": "x", "extra": 1}),
        &[],
    )
    .await
    .error(StatusCode::BAD_REQUEST, "invalid", Some("extra"));

    // Saved: 201, version 1, ETag and Location.
    let v1_text = "Main {\n\tNetworkAccess 0;\n}\n";
    let saved = post(
        "op",
        versions.clone(),
        json!({"text": v1_text, "comment": "off for now"}),
        &[("if-match", "\"0\"")],
    )
    .await;
    assert_eq!(saved.headers[header::ETAG], "\"1\"");
    assert_eq!(saved.headers[header::LOCATION], format!("{versions}/1"));
    let v = saved.expect(StatusCode::CREATED);
    assert_eq!(
        (
            &v["version"],
            &v["source"],
            &v["actor"],
            &v["comment"],
            &v["text"]
        ),
        (
            &json!(1),
            &json!("store"),
            &json!("token:op"),
            &json!("off for now"),
            &json!(v1_text)
        ),
        "{v}"
    );
    // Based on the file again, or on a version that is not the newest: 412.
    let e = post(
        "op",
        versions.clone(),
        json!({"text": "y"}),
        &[("if-match", "\"0\"")],
    )
    .await
    .error(
        StatusCode::PRECONDITION_FAILED,
        "version_mismatch",
        Some("If-Match"),
    );
    assert_eq!(e["detail"]["current_version"], 1);
    post(
        "admin",
        versions.clone(),
        json!({"text": "two"}),
        &[("if-match", "\"1\"")],
    )
    .await
    .expect(StatusCode::CREATED);
    post(
        "op",
        versions.clone(),
        json!({"text": "y"}),
        &[("if-match", "\"1\"")],
    )
    .await
    .error(
        StatusCode::PRECONDITION_FAILED,
        "version_mismatch",
        Some("If-Match"),
    );

    let list = r
        .get("ro", "/api/v1/templates")
        .await
        .expect(StatusCode::OK);
    assert_eq!(
        (&list["items"][0]["version"], &list["items"][0]["source"]),
        (&json!(2), &json!("store"))
    );
    let cur = r.get("ro", &base).await.expect(StatusCode::OK);
    assert_eq!((&cur["version"], &cur["text"]), (&json!(2), &json!("two")));

    // The history: newest first, the file last; paged by `before`.
    let h = r.get("ro", &versions).await.expect(StatusCode::OK);
    let got: Vec<(u64, &str)> = h["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| {
            (
                i["version"].as_u64().unwrap(),
                i["source"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(got, vec![(2, "store"), (1, "store"), (0, "file")]);
    assert!(h["items"][0].get("text").is_none(), "no text in the list");
    assert_eq!(h["next"], Value::Null);
    let p1 = r
        .get("ro", &format!("{versions}?limit=1"))
        .await
        .expect(StatusCode::OK);
    assert_eq!(
        (&p1["items"][0]["version"], &p1["next"]),
        (&json!(2), &json!(2))
    );
    let p2 = r
        .get("ro", &format!("{versions}?limit=1&before=2"))
        .await
        .expect(StatusCode::OK);
    assert_eq!(
        (&p2["items"][0]["version"], &p2["next"]),
        (&json!(1), &json!(1))
    );
    let p3 = r
        .get("ro", &format!("{versions}?limit=1&before=1"))
        .await
        .expect(StatusCode::OK);
    assert_eq!(
        (&p3["items"][0]["version"], &p3["next"]),
        (&json!(0), &Value::Null)
    );

    // One version with its text; 0 is the file.
    let one = r
        .get("ro", &format!("{versions}/1"))
        .await
        .expect(StatusCode::OK);
    assert_eq!(
        (&one["text"], &one["comment"]),
        (&json!(v1_text), &json!("off for now"))
    );
    let zero = r
        .get("ro", &format!("{versions}/0"))
        .await
        .expect(StatusCode::OK);
    assert_eq!(
        (&zero["text"], &zero["source"]),
        (&json!(TEMPLATE_FILE), &json!("file"))
    );
    r.get("ro", &format!("{versions}/9"))
        .await
        .error(StatusCode::NOT_FOUND, "not_found", None);
    r.get("ro", &format!("{versions}/x")).await.error(
        StatusCode::BAD_REQUEST,
        "invalid",
        Some("version"),
    );

    // Rollback: the old text as a new version; history stays linear.
    let rollback = format!("{base}/rollback");
    post("ro", rollback.clone(), json!({"version": 1}), &[])
        .await
        .error(StatusCode::FORBIDDEN, "forbidden", None);
    post("op", rollback.clone(), json!({"version": 9}), &[])
        .await
        .error(StatusCode::NOT_FOUND, "not_found", None);
    post(
        "op",
        "/api/v1/templates/nope.j2/rollback".into(),
        json!({"version": 1}),
        &[],
    )
    .await
    .error(StatusCode::NOT_FOUND, "not_found", None);
    let rb = post("op", rollback.clone(), json!({"version": 1}), &[])
        .await
        .expect(StatusCode::CREATED);
    assert_eq!(
        (&rb["version"], &rb["text"], &rb["comment"]),
        (&json!(3), &json!(v1_text), &json!("rollback to version 1")),
        "{rb}"
    );
    let rb0 = post(
        "op",
        rollback.clone(),
        json!({"version": 0}),
        &[("if-match", "\"3\"")],
    )
    .await
    .expect(StatusCode::CREATED);
    assert_eq!(
        (&rb0["version"], &rb0["text"]),
        (&json!(4), &json!(TEMPLATE_FILE))
    );

    // Every save audited under the token that made it.
    let a = r
        .get(
            "op",
            &format!("/api/v1/audit?resource=template&key={TEMPLATE}"),
        )
        .await
        .expect(StatusCode::OK);
    let who: Vec<&str> = a["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["who"].as_str().unwrap())
        .collect();
    assert_eq!(who, vec!["token:op", "token:op", "token:admin", "token:op"]);
}

/// Previews: as another class of service, from a stored version (by name and version), from
/// unsaved text (400 `template_invalid` with the problems when it does not render); the
/// check reports line and column.
#[tokio::test]
async fn previews_take_a_tier_a_stored_version_or_unsaved_text() {
    let r = rig();
    let mac = "00:11:22:aa:bb:01";
    let last = |r: &Rig| r.actions.previews.lock().unwrap().last().cloned().unwrap();
    r.get(
        "ro",
        &format!("/api/v1/templates/preview?mac={mac}&kind=cm&class_of_service=gold"),
    )
    .await
    .expect(StatusCode::OK);
    let p = last(&r);
    assert_eq!(
        (p.class_of_service.as_deref(), p.name, p.text),
        (Some("gold"), None, None)
    );
    r.call(
        Some("op"),
        "POST",
        &format!("/api/v1/templates/{TEMPLATE}/versions"),
        Some(json!({"text": "stored one"})),
        &[],
    )
    .await
    .expect(StatusCode::CREATED);
    let pv = r
        .get(
            "ro",
            &format!("/api/v1/templates/preview?mac={mac}&kind=cm&name={TEMPLATE}&version=1"),
        )
        .await
        .expect(StatusCode::OK);
    assert_eq!(pv["text"], "stored one");
    assert_eq!(last(&r).name.as_deref(), Some(TEMPLATE));
    r.get(
        "ro",
        &format!("/api/v1/templates/preview?mac={mac}&kind=cm&name={TEMPLATE}&version=0"),
    )
    .await
    .expect(StatusCode::OK);
    assert_eq!(last(&r).text.as_deref(), Some(TEMPLATE_FILE));
    r.get(
        "ro",
        &format!("/api/v1/templates/preview?mac={mac}&kind=cm&version=1"),
    )
    .await
    .error(StatusCode::BAD_REQUEST, "invalid_query", Some("name"));
    r.get(
        "ro",
        &format!("/api/v1/templates/preview?mac={mac}&kind=cm&name=nope.j2"),
    )
    .await
    .error(StatusCode::NOT_FOUND, "not_found", None);
    r.get(
        "ro",
        &format!("/api/v1/templates/preview?mac={mac}&kind=mta&name={TEMPLATE}"),
    )
    .await
    .error(StatusCode::BAD_REQUEST, "invalid_query", Some("kind"));
    r.get(
        "ro",
        &format!("/api/v1/templates/preview?mac={mac}&kind=cm&name={TEMPLATE}&version=7"),
    )
    .await
    .error(StatusCode::NOT_FOUND, "not_found", None);

    // Unsaved text: the editor's live preview (a POST: operator and above).
    let body = json!({"mac": mac, "kind": "cm", "text": "draft", "class_of_service": "silver"});
    let pt = r
        .call(
            Some("op"),
            "POST",
            "/api/v1/templates/preview",
            Some(body.clone()),
            &[],
        )
        .await
        .expect(StatusCode::OK);
    assert_eq!(pt["text"], "draft");
    assert_eq!(last(&r).class_of_service.as_deref(), Some("silver"));
    r.call(
        Some("ro"),
        "POST",
        "/api/v1/templates/preview",
        Some(body),
        &[],
    )
    .await
    .error(StatusCode::FORBIDDEN, "forbidden", None);
    let e = r
        .call(
            Some("op"),
            "POST",
            "/api/v1/templates/preview",
            Some(json!({"mac": mac, "kind": "cm", "text": "a\n {% bad"})),
            &[],
        )
        .await
        .error(StatusCode::BAD_REQUEST, "template_invalid", Some("text"));
    assert_eq!(
        (
            &e["detail"]["problems"][0]["line"],
            &e["detail"]["problems"][0]["column"]
        ),
        (&json!(2), &json!(2)),
        "{e}"
    );
    r.call(
        Some("op"),
        "POST",
        "/api/v1/templates/preview",
        Some(json!({"mac": mac, "kind": "cm", "text": "x", "name": "nope.j2"})),
        &[],
    )
    .await
    .error(StatusCode::NOT_FOUND, "not_found", None);
    r.call(
        Some("op"),
        "POST",
        "/api/v1/templates/preview",
        Some(json!({"mac": "nope", "kind": "cm", "text": "x"})),
        &[],
    )
    .await
    .error(StatusCode::BAD_REQUEST, "invalid", Some("mac"));

    let v = r
        .call(
            Some("op"),
            "POST",
            "/api/v1/templates/validate",
            Some(json!({"kind": "cm", "text": "{% bad %}", "name": TEMPLATE})),
            &[],
        )
        .await
        .expect(StatusCode::OK);
    assert_eq!(
        (
            &v["ok"],
            &v["problems"][0]["line"],
            &v["problems"][0]["column"]
        ),
        (&json!(false), &json!(1), &json!(1)),
        "{v}"
    );
}
