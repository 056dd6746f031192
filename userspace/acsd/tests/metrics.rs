//! Each CWMP session's duration lands in the facade's histogram, rendered by provd-metrics as
//! `/metrics` shows it: one that ran to its end, one abandoned and swept. Its own test binary:
//! it installs the process's global recorder.

use std::net::SocketAddr;

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use provd_acsd::Acsd;
use provd_cwmp::{Envelope, Inform, Rpc, Version};
use provd_web::Peer;
use tower::ServiceExt;

fn peer(port: u16) -> Peer {
    Peer {
        conn: u64::from(port),
        remote: SocketAddr::from(([198, 18, 0, 10], port)),
        local: "198.18.0.1:7547".parse().unwrap(),
        tls: false,
        client_cert: None,
    }
}

async fn post(
    router: &axum::Router,
    peer: &Peer,
    cookie: Option<&str>,
    body: String,
) -> (StatusCode, Option<String>) {
    let mut req = Request::post("/").header(header::CONTENT_TYPE, "text/xml");
    if let Some(c) = cookie {
        req = req.header(header::COOKIE, c);
    }
    let mut req = req.body(Body::from(body)).unwrap();
    req.extensions_mut().insert(peer.clone());
    let resp = router.clone().oneshot(req).await.unwrap();
    let cookie = resp
        .headers()
        .get(header::SET_COOKIE)
        .map(|v| v.to_str().unwrap().split(';').next().unwrap().to_owned());
    (resp.status(), cookie)
}

fn inform(serial: &str) -> String {
    let i = Inform::simulated(
        "00D09E",
        "SIM",
        serial,
        "1 BOOT",
        "http://198.18.0.10:7547/".into(),
    );
    Envelope::new(Version::V1_2, Some("1".into()), Rpc::Inform(Box::new(i))).to_xml()
}

#[tokio::test]
async fn ended_and_abandoned_sessions_are_in_the_duration_histogram() {
    let metrics = provd_metrics::install();
    let dir = tempfile::tempdir().unwrap();
    let toml = r#"
[server]
lease_dir = "/nonexistent"
[[shared_network]]
name = "n"
interfaces = ["198.18.0.1"]
[[shared_network.subnet]]
prefix = "198.18.0.0/24"
[[shared_network.subnet.pool]]
start = "198.18.0.10"
end = "198.18.0.20"
[acs]
auth = "none"
"#;
    let settings = provd_config::Policy::from_toml_str(toml)
        .unwrap()
        .acs
        .unwrap();
    let acsd = std::sync::Arc::new(Acsd::new(&settings, dir.path().join("acs")).unwrap());
    let router = acsd.cwmp_router();

    // Inform, then the empty POST that ends the session.
    let (status, cookie) = post(&router, &peer(40000), None, inform("SN1")).await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = post(&router, &peer(40000), cookie.as_deref(), String::new()).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    // Another CPE informs and goes silent: the sweep drops it.
    let (status, _) = post(&router, &peer(40001), None, inform("SN2")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(acsd.open_sessions(), 1);
    acsd.sweep(provd_role::clock::unix_secs() + 3600, 30);
    assert_eq!(acsd.open_sessions(), 0);

    let text = metrics.render(
        &provd_role::RoleSet::default(),
        &provd_metrics::Extra {
            store: None,
            build: provd_metrics::BuildInfo::current(),
        },
    );
    for series in [
        r#"provd_cwmp_session_duration_seconds_count{outcome="ok"} 1"#,
        r#"provd_cwmp_session_duration_seconds_count{outcome="abandoned"} 1"#,
    ] {
        assert!(text.lines().any(|l| l == series), "no {series} in\n{text}");
    }

    // The ACS's own families, typed.
    let mut e = provd_role::metrics::Exposition::new();
    acsd.metrics(&mut e);
    assert!(e.refused().is_empty(), "{:?}", e.refused());
    let text = e.finish();
    for line in [
        "# TYPE provd_acs_devices gauge",
        "provd_acs_devices 2",
        "provd_acs_sessions_total 2",
        "provd_acs_informs_total 2",
        "provd_acs_open_sessions 0",
    ] {
        assert!(text.lines().any(|l| l == line), "no {line} in\n{text}");
    }
}
