//! The API's request metrics go through the `metrics` facade: a recorder installed here (the
//! binary installs the Prometheus exporter) sees the duration histogram and the request
//! counter by route template, method and status. Its own test binary: the recorder is global.

use std::sync::{Arc, Mutex};

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use metrics::{
    Counter, CounterFn, Gauge, Histogram, HistogramFn, Key, KeyName, Metadata, Recorder,
    SharedString, Unit,
};
use provd_api::{
    ApiSettings, BoxFuture, Lease, LeaseIndex, LeaseQuery, ReloadReport, RoleView, ServiceError,
    Services, SyslogQuery, TemplateCheck, TemplateKind, TemplatePreview, TemplateValidation,
};
use provd_store::{Actor, Mac, Scope, Store, TokenRole, TokenSpec};
use serde_json::Value;
use tower::ServiceExt;

/// Every metric touched, as `name{label=value,...}`.
#[derive(Debug, Default, Clone)]
struct Seen(Arc<Mutex<Vec<String>>>);

struct Touch(String, Seen);

impl CounterFn for Touch {
    fn increment(&self, _: u64) {
        self.1.0.lock().unwrap().push(self.0.clone());
    }
    fn absolute(&self, _: u64) {}
}

impl HistogramFn for Touch {
    fn record(&self, _: f64) {
        self.1.0.lock().unwrap().push(self.0.clone());
    }
}

fn render(key: &Key) -> String {
    let labels: Vec<String> = key
        .labels()
        .map(|l| format!("{}={}", l.key(), l.value()))
        .collect();
    format!("{}{{{}}}", key.name(), labels.join(","))
}

impl Recorder for Seen {
    fn describe_counter(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn describe_gauge(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn describe_histogram(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn register_counter(&self, key: &Key, _: &Metadata<'_>) -> Counter {
        Counter::from_arc(Arc::new(Touch(render(key), self.clone())))
    }
    fn register_gauge(&self, _: &Key, _: &Metadata<'_>) -> Gauge {
        Gauge::noop()
    }
    fn register_histogram(&self, key: &Key, _: &Metadata<'_>) -> Histogram {
        Histogram::from_arc(Arc::new(Touch(render(key), self.clone())))
    }
}

/// Minimal stand-ins for the binary's role views (the real ones live in userspace/provd).
#[derive(Debug)]
struct Nothing;

impl LeaseIndex for Nothing {
    fn search(&self, _: &LeaseQuery, _: u32) -> Vec<Lease> {
        vec![]
    }
    fn release(&self, _: Mac) -> Result<(), ServiceError> {
        Ok(())
    }
}

impl provd_api::Actions for Nothing {
    fn reset(&self, _: Mac) -> BoxFuture<'_, Result<String, ServiceError>> {
        Box::pin(async { Ok(String::new()) })
    }
    fn reload(&self, _: bool, _: bool) -> BoxFuture<'_, Result<ReloadReport, ServiceError>> {
        Box::pin(async { Err(ServiceError::Unavailable(String::new())) })
    }
    fn templates(&self) -> Value {
        Value::Null
    }
    fn template_preview(
        &self,
        _: Mac,
        _: TemplateKind,
    ) -> BoxFuture<'_, Result<TemplatePreview, ServiceError>> {
        Box::pin(async { Err(ServiceError::Unavailable(String::new())) })
    }
    fn validate_template(&self, _: &TemplateCheck) -> Result<TemplateValidation, ServiceError> {
        Err(ServiceError::Unavailable(String::new()))
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
        Value::Null
    }
    fn metrics(&self) -> String {
        String::new()
    }
}

#[tokio::test]
async fn requests_are_timed_and_counted_by_route_template_and_status() {
    let seen = Seen::default();
    metrics::set_global_recorder(seen.clone()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn Store> =
        Arc::new(provd_store::sqlite::SqliteStore::open(dir.path().join("s.db")).unwrap());
    let spec = TokenSpec {
        name: "ro".into(),
        role: TokenRole::ReadOnly,
        scope: Scope::default(),
        hash: provd_api::token_hash("s"),
    };
    store.put_token(&spec, &Actor::System).unwrap();
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
    for (path, auth) in [
        ("/api/v1/devices/00:11:22:33:44:55", "Bearer s"),
        ("/api/v1/devices/00:11:22:33:44:55", "Bearer wrong"),
    ] {
        let req = Request::get(path)
            .header(header::AUTHORIZATION, auth)
            .body(Body::empty())
            .unwrap();
        let status = router.clone().oneshot(req).await.unwrap().status();
        assert!(status == StatusCode::NOT_FOUND || status == StatusCode::UNAUTHORIZED);
    }
    let seen = seen.0.lock().unwrap().clone();
    for want in [
        "provd_api_request_duration_seconds{route=/api/v1/devices/{mac},method=GET}",
        "provd_api_requests_total{route=/api/v1/devices/{mac},method=GET,status=404}",
        "provd_api_requests_total{route=/api/v1/devices/{mac},method=GET,status=401}",
        "provd_api_auth_failures_total{}",
    ] {
        assert!(seen.iter().any(|s| s == want), "{want} not in {seen:#?}");
    }
}
