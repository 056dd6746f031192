//! The UI in process over the real API router and a real SQLite store (what the browser suite,
//! `cargo xtask e2e ui`, drives in Chromium against the whole server): login and sessions,
//! CSRF, roles in the page and at the server, what the device page shows, and every page
//! rendering.
//!
//! The API's `LeaseIndex`, `Actions` and `RoleView` are the binary's wiring of the DHCP, TFTP,
//! SNMP and metrics roles; here they are small stand-ins answering fixed things (a lease, a
//! decoded file with verdicts, a Prometheus text whose ACK counter moves), nothing more.

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{Request, StatusCode, header};
use provd_api::{
    ApiSettings, BoxFuture, Lease, LeaseIndex, LeaseQuery, PreviewRequest, ReloadReport, RoleView,
    ServiceError, Services, SyslogQuery, TemplateCheck, TemplateKind, TemplatePreview,
    TemplateValidation, Verdict,
};
use provd_store::{Actor, Mac, Scope, Store, TokenRole, TokenSpec};
use serde_json::{Value, json};
use tower::ServiceExt;

const CM: &str = "00:10:95:e2:a0:01";

#[derive(Debug, Default)]
struct Leases(Mutex<Vec<Lease>>);

impl LeaseIndex for Leases {
    fn search(&self, q: &LeaseQuery, limit: u32) -> Vec<Lease> {
        let v = self.0.lock().unwrap();
        v.iter()
            .filter(|l| q.mac.is_none_or(|m| m == l.mac))
            .filter(|l| q.address.is_none_or(|a| a == l.address))
            .take(limit as usize)
            .cloned()
            .collect()
    }

    fn release(&self, mac: Mac) -> Result<(), ServiceError> {
        self.0.lock().unwrap().retain(|l| l.mac != mac);
        Ok(())
    }
}

#[derive(Debug)]
struct Actions(Arc<dyn Store>);

impl provd_api::Actions for Actions {
    fn reset(&self, _: Mac) -> BoxFuture<'_, Result<String, ServiceError>> {
        Box::pin(async { Ok("docsDevResetNow set".to_owned()) })
    }

    fn reload(&self, _: bool, _: bool) -> BoxFuture<'_, Result<ReloadReport, ServiceError>> {
        Box::pin(async { Err(ServiceError::Unavailable("no reload here".into())) })
    }

    fn templates(&self) -> Value {
        json!([{"class": "cm", "kind": "cm", "template": "templates/cm.cfg.j2"}])
    }

    fn template_preview(
        &self,
        mac: Mac,
        kind: TemplateKind,
    ) -> BoxFuture<'_, Result<TemplatePreview, ServiceError>> {
        self.template_preview_with(PreviewRequest {
            mac,
            kind: Some(kind),
            class_of_service: None,
            name: None,
            text: None,
        })
    }

    /// The file as the device's class of service (or the one asked for) makes it: its `down`
    /// variable in the text.
    fn template_preview_with(
        &self,
        req: PreviewRequest,
    ) -> BoxFuture<'_, Result<TemplatePreview, ServiceError>> {
        let store = Arc::clone(&self.0);
        Box::pin(async move {
            let mac = req.mac;
            let kind = req.kind.unwrap_or(TemplateKind::Cm);
            let class = req.class_of_service.or_else(|| {
                store
                    .get_device(mac)
                    .ok()
                    .flatten()
                    .and_then(|d| d.spec.class_of_service)
            });
            let down = match class.as_deref() {
                Some("silver") => 100_000_000,
                _ => 50_000_000,
            };
            Ok(TemplatePreview {
                // Stands in for the file's hash: one per rate.
                sha256: Some(format!("{down:064x}")),
                kind,
                file: Some(format!("cm/{}.cfg", mac.to_string().replace(':', ""))),
                text: format!("Main\n{{\n\tNetworkAccess 1;\n\tMaxRateDown {down};\n}}\n"),
                verdicts: vec![
                    Verdict {
                        check: "cm_mic".into(),
                        ok: true,
                        detail: Some("verified 00ff".into()),
                    },
                    Verdict {
                        check: "cmts_mic".into(),
                        ok: true,
                        detail: Some("verified 11ee".into()),
                    },
                ],
            })
        })
    }

    fn validate_template(&self, t: &TemplateCheck) -> Result<TemplateValidation, ServiceError> {
        Ok(TemplateValidation {
            ok: !t.text.is_empty(),
            problems: vec![],
        })
    }
}

/// `/metrics` whose ACK counter grows by 100 at each scrape.
#[derive(Debug, Default)]
struct Roles(AtomicU64);

impl RoleView for Roles {
    fn mta_record(&self, _: Mac) -> Option<Value> {
        None
    }
    fn syslog_events(&self, _: &SyslogQuery, _: u32) -> Vec<Value> {
        vec![]
    }
    fn stats(&self) -> Value {
        json!({})
    }
    fn metrics(&self) -> String {
        let acks = self.0.fetch_add(100, Ordering::Relaxed) + 100;
        format!(
            "provd_dhcp_messages_sent_total{{shard=\"0\",type=\"ack\"}} {acks}\n\
             provd_dhcp_pool_addresses{{network=\"cmts-1\",subnet=\"198.18.2.0/24\",pool=\"198.18.2.100-198.18.2.200\"}} 101\n\
             provd_dhcp_pool_assigned_addresses{{network=\"cmts-1\",subnet=\"198.18.2.0/24\",pool=\"198.18.2.100-198.18.2.200\"}} 99\n\
             provd_dhcp_pool_free_addresses{{network=\"cmts-1\",subnet=\"198.18.2.0/24\",pool=\"198.18.2.100-198.18.2.200\"}} 2\n\
             provd_dhcp_naks_total{{shard=\"0\",reason=\"wrong_address\"}} 3\n"
        )
    }
}

struct Rig {
    _dir: tempfile::TempDir,
    store: Arc<dyn Store>,
    app: Router,
}

struct Page {
    status: StatusCode,
    location: Option<String>,
    cookie: Option<String>,
    body: String,
}

impl Page {
    #[track_caller]
    fn ok(&self) -> &str {
        assert_eq!(self.status, StatusCode::OK, "{}", self.body);
        &self.body
    }
}

fn rig() -> Rig {
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn Store> =
        Arc::new(provd_store::sqlite::SqliteStore::open(dir.path().join("store.db")).unwrap());
    for (name, role) in [
        ("admin", TokenRole::Admin),
        ("op", TokenRole::Operator),
        ("ro", TokenRole::ReadOnly),
    ] {
        store
            .put_token(
                &TokenSpec {
                    name: name.into(),
                    role,
                    scope: Scope::default(),
                    hash: provd_api::token_hash(&format!("secret-{name}")),
                },
                &Actor::Cli("test".into()),
            )
            .unwrap();
    }
    let leases = Arc::new(Leases::default());
    leases.0.lock().unwrap().push(Lease {
        mac: CM.parse().unwrap(),
        address: Ipv4Addr::new(198, 18, 2, 100),
        expires_at: 4_000_000_000,
        relay: Some(Ipv4Addr::new(198, 18, 2, 1)),
        remote_id: None,
        circuit_id: None,
        subscriber: Some("acct-1".into()),
        dhcp_class: Some("cm".into()),
    });
    let api = provd_api::router(
        Services {
            store: Arc::clone(&store),
            leases,
            actions: Arc::new(Actions(Arc::clone(&store))),
            roles: Arc::new(Roles::default()),
            acs: None,
        },
        ApiSettings::default(),
    );
    let app = api
        .clone()
        .merge(provd_ui::router(api, provd_ui::UiSettings::default()));
    Rig {
        _dir: dir,
        store,
        app,
    }
}

impl Rig {
    async fn send(&self, method: &str, path: &str, cookie: Option<&str>, form: &str) -> Page {
        let mut b = Request::builder().method(method).uri(path);
        if let Some(c) = cookie {
            b = b.header(header::COOKIE, format!("{}={c}", provd_ui::SESSION_COOKIE));
        }
        let body = if method == "GET" {
            Body::empty()
        } else {
            b = b.header(header::CONTENT_TYPE, "application/x-www-form-urlencoded");
            Body::from(form.to_owned())
        };
        let mut req = b.body(body).unwrap();
        req.extensions_mut()
            .insert(ConnectInfo(SocketAddr::from(([127, 0, 0, 1], 40000))));
        let resp = self.app.clone().oneshot(req).await.unwrap();
        let h = |n: header::HeaderName| {
            resp.headers()
                .get(n)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        };
        let location = h(header::LOCATION);
        let cookie = h(header::SET_COOKIE);
        let status = resp.status();
        let body = axum::body::to_bytes(resp.into_body(), 1 << 24)
            .await
            .unwrap();
        Page {
            status,
            location,
            cookie,
            body: String::from_utf8_lossy(&body).into_owned(),
        }
    }

    async fn get(&self, path: &str, session: &str) -> Page {
        self.send("GET", path, Some(session), "").await
    }

    /// Logs in as `who`: the session id.
    async fn login(&self, who: &str) -> String {
        let p = self
            .send("POST", "/ui/login", None, &format!("token=secret-{who}"))
            .await;
        assert_eq!(p.status, StatusCode::SEE_OTHER, "{}", p.body);
        let c = p.cookie.expect("no Set-Cookie");
        assert!(
            c.contains("HttpOnly") && c.contains("SameSite=Strict") && c.contains("Path=/ui"),
            "{c}"
        );
        c.split(';')
            .next()
            .unwrap()
            .split('=')
            .nth(1)
            .unwrap()
            .to_owned()
    }

    /// The page's CSRF token.
    async fn csrf(&self, session: &str) -> String {
        let body = self.get("/ui/devices", session).await.body;
        let at = body.find("name=\"csrf-token\" content=\"").unwrap() + 27;
        body[at..at + 64].to_owned()
    }

    async fn seed(&self) {
        let op = Actor::Cli("test".into());
        for (name, down) in [("gold", 50), ("silver", 100)] {
            self.store
                .put_class(
                    &serde_json::from_value(json!({"name": name, "vars": {"down": down}})).unwrap(),
                    provd_store::Expect::Any,
                    &op,
                )
                .unwrap();
        }
        self.store
            .put_device(
                &serde_json::from_value(
                    json!({"mac": CM, "type": "cm", "class_of_service": "gold", "serial": "SN-1"}),
                )
                .unwrap(),
                provd_store::Expect::Any,
                &op,
            )
            .unwrap();
    }

    fn class_of(&self) -> Option<String> {
        self.store
            .get_device(CM.parse().unwrap())
            .unwrap()
            .unwrap()
            .spec
            .class_of_service
    }
}

#[tokio::test]
async fn login_makes_a_session_and_a_wrong_token_does_not() {
    let r = rig();
    let p = r.send("GET", "/ui/", None, "").await;
    assert_eq!(p.status, StatusCode::SEE_OTHER);
    assert_eq!(p.location.as_deref(), Some("/ui/login"));
    let p = r
        .send("POST", "/ui/login", None, "token=secret-nobody")
        .await;
    assert_eq!(p.status, StatusCode::UNAUTHORIZED);
    assert!(p.cookie.is_none(), "a wrong token got a cookie");
    assert!(p.body.contains("class=\"flash error\"") && p.body.contains("unknown token"));

    let s = r.login("op").await;
    let home = r.get("/ui/", &s).await;
    assert!(home.ok().contains("id=\"whoami\""));
    assert!(home.body.contains("op (operator)"), "{}", home.body);
    // A made-up session id is no session.
    let p = r.get("/ui/", &"0".repeat(64)).await;
    assert_eq!(p.location.as_deref(), Some("/ui/login"));

    // Logout ends it (with its CSRF token) and clears the cookie.
    let csrf = r.csrf(&s).await;
    let p = r
        .send("POST", "/ui/logout", Some(&s), &format!("csrf={csrf}"))
        .await;
    assert_eq!(p.status, StatusCode::SEE_OTHER);
    assert!(p.cookie.unwrap().contains("Max-Age=0"));
    assert_eq!(r.get("/ui/", &s).await.status, StatusCode::SEE_OTHER);
}

#[tokio::test]
async fn the_device_page_shows_its_lease_file_verdicts_and_why_it_is_not_online() {
    let r = rig();
    r.seed().await;
    let s = r.login("ro").await;
    // Every spelling of its MAC leads to its page; so does its address and its serial.
    for q in [
        "0010.95e2.a001",
        "00-10-95-E2-A0-01",
        "198.18.2.100",
        "SN-1",
    ] {
        let p = r.get(&format!("/ui/search?q={q}"), &s).await;
        assert_eq!(
            p.location.as_deref(),
            Some(format!("/ui/devices/{CM}").as_str()),
            "{q}: {}",
            p.body
        );
    }
    let page = r.get(&format!("/ui/devices/{CM}"), &s).await;
    let body = page.ok();
    assert!(body.contains("198.18.2.100"), "no lease address");
    assert!(body.contains("MaxRateDown 50000000;"), "no decoded file");
    for check in ["cm_mic", "cmts_mic"] {
        assert!(
            body.contains(&format!("data-check=\"{check}\" data-ok=\"true\"")),
            "{check} verdict missing"
        );
    }
    // Bound, but the timeline has no TFTP fetch: the diagnosis says so.
    assert!(body.contains("data-online=\"false\""));
    assert!(
        body.contains("data-step=\"tftp\" data-state=\"fail\""),
        "{body}"
    );

    // It fetched the gold file: same hash as now. After the tier change: not the same.
    r.store
        .append_events(&[provd_store::NewEvent {
            mac: CM.parse().unwrap(),
            at: i64::try_from(
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .unwrap()
                    .as_millis(),
            )
            .unwrap(),
            source: provd_store::Source::Tftp,
            kind: "file-served".into(),
            detail: json!({"file": "cm/001095e2a001.cfg", "bytes": 300,
                "sha256": format!("{:064x}", 50_000_000), "peer": "198.18.2.100:1024"}),
        }])
        .unwrap();
    let body = r.get(&format!("/ui/devices/{CM}"), &s).await.body;
    assert!(body.contains("id=\"file-same\""), "{body}");
    r.store
        .put_device(
            &serde_json::from_value(json!({"mac": CM, "type": "cm", "class_of_service": "silver"}))
                .unwrap(),
            provd_store::Expect::Any,
            &Actor::Cli("test".into()),
        )
        .unwrap();
    let body = r.get(&format!("/ui/devices/{CM}"), &s).await.body;
    assert!(body.contains("id=\"file-changed\""), "{body}");
}

#[tokio::test]
async fn writes_need_the_csrf_token_and_a_role_that_may_write() {
    let r = rig();
    r.seed().await;
    let op = r.login("op").await;
    let ro = r.login("ro").await;
    let path = format!("/ui/devices/{CM}/tier");

    // The read-only page has no write control; the operator's has.
    let ro_page = r.get(&format!("/ui/devices/{CM}"), &ro).await;
    assert!(!ro_page.ok().contains("data-write"));
    let op_page = r.get(&format!("/ui/devices/{CM}"), &op).await;
    assert!(op_page.ok().contains("data-write"));

    // No CSRF token, a wrong one, another session's one, a cross-site fetch: 403, unchanged.
    let op_csrf = r.csrf(&op).await;
    let ro_csrf = r.csrf(&ro).await;
    for (form, extra) in [
        ("class=silver".to_owned(), None),
        (format!("class=silver&csrf={}", "f".repeat(64)), None),
        (format!("class=silver&csrf={ro_csrf}"), None),
        (format!("class=silver&csrf={op_csrf}"), Some("cross-site")),
    ] {
        let mut req = Request::post(&path)
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .header(header::COOKIE, format!("{}={op}", provd_ui::SESSION_COOKIE));
        if let Some(site) = extra {
            req = req.header("sec-fetch-site", site);
        }
        let resp = r
            .app
            .clone()
            .oneshot(req.body(Body::from(form.clone())).unwrap())
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::FORBIDDEN, "{form} {extra:?}");
    }
    assert_eq!(r.class_of().as_deref(), Some("gold"));

    // A read-only session's forged POST, with its own valid CSRF token: the API refuses.
    let p = r
        .send(
            "POST",
            &path,
            Some(&ro),
            &format!("class=silver&csrf={ro_csrf}"),
        )
        .await;
    assert_eq!(p.status, StatusCode::FORBIDDEN, "{}", p.body);
    assert_eq!(r.class_of().as_deref(), Some("gold"));

    // The preview of the change: the changed TLV, old and new, and the save button.
    let diff = r
        .get(&format!("/ui/devices/{CM}/tier-preview?class=silver"), &op)
        .await;
    let body = diff.ok();
    assert!(
        body.contains("<span class=\"diff-del\">- \tMaxRateDown 50000000;")
            && body.contains("<span class=\"diff-add\">+ \tMaxRateDown 100000000;"),
        "{body}"
    );
    assert!(body.contains("id=\"tier-save\""));
    // Two lines of context: `{` is shown, `Main` (three lines up) is not.
    assert!(
        !body.contains("Main"),
        "unchanged lines far from the change: {body}"
    );
    assert_eq!(
        r.class_of().as_deref(),
        Some("gold"),
        "a preview changed the record"
    );

    // The operator's: done, audited as its token, in the timeline, and the page says so.
    let p = r
        .send(
            "POST",
            &path,
            Some(&op),
            &format!("class=silver&csrf={op_csrf}"),
        )
        .await;
    assert_eq!(p.status, StatusCode::SEE_OTHER, "{}", p.body);
    assert_eq!(r.class_of().as_deref(), Some("silver"));
    let page = r.get(&format!("/ui/devices/{CM}"), &op).await;
    let body = page.ok();
    assert!(body.contains("class=\"flash ok\""), "no confirmation");
    assert!(body.contains("MaxRateDown 100000000;"), "not the new file");
    assert!(body.contains("data-kind=\"api\" data-event=\"device-changed\""));
    let audit = r.get("/ui/audit", &op).await;
    assert!(audit.ok().contains("token:op") && audit.body.contains(CM));
    assert!(
        audit
            .body
            .contains("<strong>class_of_service</strong>: <del>gold</del> → <ins>silver</ins>"),
        "the audit row does not show what changed: {}",
        audit.body
    );
}

#[tokio::test]
async fn every_page_renders_for_an_admin_and_tokens_are_admin_only() {
    let r = rig();
    r.seed().await;
    let admin = r.login("admin").await;
    for path in [
        "/ui/",
        "/ui/dashboard/live",
        "/ui/devices",
        "/ui/devices?type=cm&class=gold",
        &format!("/ui/devices/{CM}"),
        "/ui/subscribers",
        "/ui/subscribers/acct-new",
        "/ui/classes",
        "/ui/classes/gold",
        "/ui/templates",
        "/ui/leases",
        "/ui/mta",
        "/ui/cwmp",
        "/ui/jobs",
        "/ui/audit",
        "/ui/tokens",
        "/ui/search?q=nothing-matches",
    ] {
        let p = r.get(path, &admin).await;
        let body = p.ok();
        assert!(
            !body.contains("failed to render") && !body.contains("class=\"flash error\""),
            "{path}: {body}"
        );
    }
    let op = r.login("op").await;
    assert_eq!(r.get("/ui/tokens", &op).await.status, StatusCode::FORBIDDEN);
    let css = r.get("/ui/static/htmx.min.js", &op).await;
    assert!(css.ok().len() > 10_000);
}

#[tokio::test]
async fn the_dashboard_turns_counters_into_rates_and_warns_of_full_pools() {
    let r = rig();
    let s = r.login("ro").await;
    let first = r.get("/ui/dashboard/live", &s).await;
    assert!(
        first.ok().contains("data-rate=\"dhcp\">…"),
        "a rate from one sample"
    );
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let live = r.get("/ui/dashboard/live", &s).await;
    let body = live.ok();
    let at = body.find("data-rate=\"dhcp\">").unwrap() + 17;
    let rate: f64 = body[at..].split('<').next().unwrap().parse().unwrap();
    // 100 ACKs between two samples about 1.1 s apart.
    assert!((50.0..=100.0).contains(&rate), "{rate}");
    assert!(
        body.contains("near exhaustion"),
        "99 of 101 assigned, no warning"
    );
    assert!(body.contains("wrong_address"));
}

#[tokio::test]
async fn a_bulk_import_from_the_jobs_page_lands_with_its_progress() {
    let r = rig();
    let s = r.login("op").await;
    let csrf = r.csrf(&s).await;
    let body = "{\"mac\":\"02:00:00:00:10:01\",\"type\":\"cm\"}\n\
                {\"mac\":\"02:00:00:00:10:02\",\"type\":\"mta\"}\n\
                {\"mac\":\"nope\"}\n";
    let send = |token: Option<&str>| {
        let mut b = Request::post("/ui/jobs/import")
            .header(header::CONTENT_TYPE, "application/x-ndjson")
            .header(header::COOKIE, format!("{}={s}", provd_ui::SESSION_COOKIE));
        if let Some(t) = token {
            b = b.header("x-csrf-token", t);
        }
        r.app.clone().oneshot(b.body(Body::from(body)).unwrap())
    };
    // The page's script sends the CSRF token as a header; without it, nothing is imported.
    assert_eq!(send(None).await.unwrap().status(), StatusCode::FORBIDDEN);
    let resp = send(Some(&csrf)).await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let html = axum::body::to_bytes(resp.into_body(), 1 << 20)
        .await
        .unwrap();
    let html = String::from_utf8_lossy(&html);
    assert!(html.contains("class=\"job\""), "{html}");
    // The job finishes; the jobs page lists it with its refused row counted.
    for _ in 0..100 {
        if r.store
            .get_device("02:00:00:00:10:02".parse().unwrap())
            .unwrap()
            .is_some()
        {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert!(
        r.store
            .get_device("02:00:00:00:10:01".parse().unwrap())
            .unwrap()
            .is_some()
    );
    let jobs = r.get("/ui/jobs", &s).await;
    let body = jobs.ok();
    assert!(body.contains("data-job=\"1\""), "{body}");
    assert!(body.contains("2 / 3") || body.contains("3 / 3"), "{body}");
}
