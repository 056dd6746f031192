//! The ACS shell in process: its CWMP and task API routers driven with `tower::ServiceExt`,
//! requests carrying a hand-made provd-web `Peer`, no listener bound. The connection-request
//! test has a real peer: a CPE's digest-protected HTTP listener on loopback.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use axum::Router;
use axum::body::Body;
use axum::http::{HeaderMap, Request, StatusCode, header};
use provd_acsd::Acsd;
use provd_cwmp::{Envelope, Inform, Limits, ParameterValue, Rpc, Version};
use provd_web::Peer;
use serde_json::{Value, json};
use tower::ServiceExt;

/// `[acs]` with `extra` keys, validated as the config file would be.
fn settings(extra: &str) -> provd_config::AcsSettings {
    let toml = format!(
        r#"
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
{extra}
"#
    );
    provd_config::Policy::from_toml_str(&toml)
        .unwrap_or_else(|e| panic!("{e}"))
        .acs
        .unwrap()
}

fn acsd(dir: &Path, extra: &str) -> Arc<Acsd> {
    Arc::new(Acsd::new(&settings(extra), dir.join("acs")).unwrap())
}

/// A CPE's TCP connection to the ACS.
fn peer(port: u16) -> Peer {
    Peer {
        conn: u64::from(port),
        remote: SocketAddr::from(([198, 18, 0, 10], port)),
        local: "198.18.0.1:7547".parse().unwrap(),
        tls: false,
        client_cert: None,
    }
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

    fn rpc(&self) -> Rpc {
        assert_eq!(self.status, StatusCode::OK, "{}", self.body);
        Envelope::parse(self.body.as_bytes(), &Limits::default())
            .unwrap_or_else(|e| panic!("{e}: {}", self.body))
            .body
    }

    /// The session cookie the ACS set, as a Cookie header value.
    fn cookie(&self) -> String {
        let set = self.headers[header::SET_COOKIE].to_str().unwrap();
        set.split(';').next().unwrap().to_owned()
    }
}

async fn send(router: &Router, req: Request<Body>) -> Reply {
    let resp = router.clone().oneshot(req).await.unwrap();
    let status = resp.status();
    let headers = resp.headers().clone();
    let body = axum::body::to_bytes(resp.into_body(), 1 << 24)
        .await
        .unwrap();
    Reply {
        status,
        headers,
        body: String::from_utf8(body.to_vec()).unwrap(),
    }
}

/// A POST to the CWMP router from `peer`, with optional cookie and Authorization.
async fn cwmp(
    router: &Router,
    peer: &Peer,
    cookie: Option<&str>,
    authz: Option<&str>,
    body: String,
) -> Reply {
    let mut req = Request::post("/").header(header::CONTENT_TYPE, "text/xml");
    if let Some(c) = cookie {
        req = req.header(header::COOKIE, c);
    }
    if let Some(a) = authz {
        req = req.header(header::AUTHORIZATION, a);
    }
    let mut req = req.body(Body::from(body)).unwrap();
    req.extensions_mut().insert(peer.clone());
    send(router, req).await
}

async fn api(router: &Router, method: &str, path: &str, body: Option<Value>) -> Reply {
    let req = Request::builder().method(method).uri(path);
    let req = match body {
        Some(b) => req
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from(b.to_string())),
        None => req.body(Body::empty()),
    };
    send(router, req.unwrap()).await
}

/// An ACS without authentication, and its CWMP and task API routers.
fn open_acs(dir: &Path) -> (Arc<Acsd>, Router, Router) {
    let acsd = acsd(dir, r#"auth = "none""#);
    let (cwmp_r, api_r) = (acsd.cwmp_router(), acsd.task_api_router());
    (acsd, cwmp_r, api_r)
}

/// Device `serial`'s boot Inform from `peer`, with no cookie and no credentials.
async fn boot_inform(router: &Router, peer: &Peer, serial: &str) -> Reply {
    cwmp(
        router,
        peer,
        None,
        None,
        inform(serial, "http://198.18.0.10:7547/"),
    )
    .await
}

/// A GetParameterValues of the uptime queued for device `serial` through the task API.
async fn queue_uptime(router: &Router, serial: &str) -> Reply {
    let task = json!({"method": "GetParameterValues", "names": ["Device.DeviceInfo.UpTime"]});
    let path = format!("/api/devices/00D09E-SIM-{serial}/tasks");
    let r = api(router, "POST", &path, Some(task)).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    r
}

fn inform(serial: &str, cr_url: &str) -> String {
    let i = Inform::simulated("00D09E", "SIM", serial, "1 BOOT", cr_url.into());
    Envelope::new(Version::V1_2, Some("1".into()), Rpc::Inform(Box::new(i))).to_xml()
}

fn answer(id: Option<String>, rpc: Rpc) -> String {
    Envelope::new(Version::V1_2, id, rpc).to_xml()
}

#[tokio::test]
async fn an_inform_session_runs_to_its_end_and_picks_up_a_queued_task() {
    let dir = tempfile::tempdir().unwrap();
    let (acsd, cwmp_r, api_r) = open_acs(dir.path());
    let cpe = peer(40000);

    // First session: Inform, InformResponse with a cookie; the empty POST ends it (204).
    let r = boot_inform(&cwmp_r, &cpe, "SN1").await;
    assert!(matches!(r.rpc(), Rpc::InformResponse { .. }), "{}", r.body);
    let cookie = r.cookie();
    assert!(cookie.starts_with("provd_session="), "{cookie}");
    assert_eq!(acsd.open_sessions(), 1);
    let r = cwmp(&cwmp_r, &cpe, Some(&cookie), None, String::new()).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.body);
    assert_eq!(acsd.open_sessions(), 0);
    assert_eq!(acsd.acs().counters.informs.load(Ordering::Relaxed), 1);

    // A task queued through the API goes out on the device's next session, found this time by
    // its connection (the CPE keeps no cookie), and its answer is filed.
    let r = queue_uptime(&api_r, "SN1").await;
    let id = r.json()["task"].as_u64().unwrap();
    let cpe = peer(40001);
    let r = boot_inform(&cwmp_r, &cpe, "SN1").await;
    assert!(matches!(r.rpc(), Rpc::InformResponse { .. }));
    let r = cwmp(&cwmp_r, &cpe, None, None, String::new()).await;
    let req = Envelope::parse(r.body.as_bytes(), &Limits::default()).unwrap();
    let Rpc::GetParameterValues { names } = &req.body else {
        panic!("expected the queued GetParameterValues, got {}", r.body)
    };
    assert_eq!(names, &["Device.DeviceInfo.UpTime"]);
    let response = Rpc::GetParameterValuesResponse {
        parameters: vec![ParameterValue::new(
            "Device.DeviceInfo.UpTime",
            "42",
            "unsignedInt",
        )],
    };
    let r = cwmp(&cwmp_r, &cpe, None, None, answer(req.id, response)).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.body);
    let r = api(&api_r, "GET", &format!("/api/tasks/{id}"), None).await;
    assert_eq!(r.json()["state"], "done", "{}", r.body);
    let r = api(&api_r, "GET", "/api/devices/00D09E-SIM-SN1", None).await;
    assert_eq!(r.json()["informs"], 2, "{}", r.body);

    // Not a POST: refused before any session.
    let mut req = Request::get("/").body(Body::empty()).unwrap();
    req.extensions_mut().insert(cpe.clone());
    let r = send(&cwmp_r, req).await;
    assert_eq!(r.status, StatusCode::METHOD_NOT_ALLOWED);
}

/// A session without a cookie is its TCP connection's, not its address's: a new connection
/// from the same address and port (a NAT reusing it, or a spoofer who took it over) gets a
/// session of its own and not the device's queued task.
#[tokio::test]
async fn a_new_connection_from_the_same_address_and_port_is_not_the_session() {
    let dir = tempfile::tempdir().unwrap();
    let (_acsd, cwmp_r, api_r) = open_acs(dir.path());
    let device = peer(40010);
    let r = boot_inform(&cwmp_r, &device, "SN9").await;
    assert!(matches!(r.rpc(), Rpc::InformResponse { .. }));
    queue_uptime(&api_r, "SN9").await;
    // The same address and port, another connection, no cookie: the empty POST that would
    // draw the queued RPC.
    let other = Peer {
        conn: 1_000_000,
        ..device.clone()
    };
    assert_eq!(other.remote, device.remote);
    let r = cwmp(&cwmp_r, &other, None, None, String::new()).await;
    assert!(
        !r.body.contains("GetParameterValues"),
        "another connection was handed the device's task: {} {}",
        r.status,
        r.body
    );
    // The device's own connection still gets it.
    let r = cwmp(&cwmp_r, &device, None, None, String::new()).await;
    assert!(
        r.body.contains("GetParameterValues"),
        "the device's connection lost its task: {} {}",
        r.status,
        r.body
    );
}

#[tokio::test]
async fn digest_refuses_without_state_then_admits_once_per_session() {
    let dir = tempfile::tempdir().unwrap();
    let acsd = acsd(
        dir.path(),
        r#"auth = "digest"
username = "cpe"
password = "secret""#,
    );
    let router = acsd.cwmp_router();
    let cpe = peer(40000);
    let body = || inform("SN1", "http://198.18.0.10:7547/");

    // No credentials: 401 with a SHA-256 and an MD5 challenge, and nothing kept.
    let r = cwmp(&router, &cpe, None, None, body()).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    let challenges: Vec<&str> = r
        .headers
        .get_all(header::WWW_AUTHENTICATE)
        .iter()
        .map(|v| v.to_str().unwrap())
        .collect();
    assert_eq!(challenges.len(), 2, "{challenges:?}");
    assert!(challenges[0].contains("SHA-256"), "{challenges:?}");
    assert_eq!(acsd.open_sessions(), 0);

    // The wrong password: 401 again, still nothing kept, and both refusals counted.
    let authz = |pass: &str| {
        provd_acs::auth::authorize(challenges[0], "cpe", pass, "POST", "/", 1, "0a4f113b").unwrap()
    };
    let r = cwmp(&router, &cpe, None, Some(&authz("wrong")), body()).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert_eq!(acsd.open_sessions(), 0);
    assert_eq!(acsd.acs().store.len(), 0);
    let failures = &acsd.acs().counters.auth_failures;
    assert_eq!(failures.load(Ordering::Relaxed), 2);

    // The right one: the session starts, and the rest of it needs no credentials.
    let r = cwmp(&router, &cpe, None, Some(&authz("secret")), body()).await;
    assert!(matches!(r.rpc(), Rpc::InformResponse { .. }), "{}", r.body);
    let r = cwmp(&router, &cpe, Some(&r.cookie()), None, String::new()).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.body);
    assert_eq!(acsd.acs().store.len(), 1);
    assert_eq!(failures.load(Ordering::Relaxed), 2);
}

#[tokio::test]
async fn the_task_api_queues_reads_back_and_refuses_by_name() {
    let dir = tempfile::tempdir().unwrap();
    let acsd = acsd(dir.path(), r#"auth = "none""#);
    let router = acsd.task_api_router();

    let r = api(
        &router,
        "POST",
        "/api/seed",
        Some(json!({"count": 3, "serial_prefix": "SN"})),
    )
    .await;
    assert_eq!(r.json()["devices"], 3, "{}", r.body);
    let r = api(&router, "GET", "/api/devices?serial=SN*", None).await;
    let mut ids: Vec<String> = serde_json::from_value(r.json()).unwrap();
    ids.sort();
    assert_eq!(
        ids,
        [
            "00D09E-SIM-SN00000000",
            "00D09E-SIM-SN00000001",
            "00D09E-SIM-SN00000002"
        ]
    );

    // One device: queued, then read back by task and by device.
    let reboot = json!({"method": "Reboot", "command_key": "k1"});
    let r = api(
        &router,
        "POST",
        &format!("/api/devices/{}/tasks", ids[1]),
        Some(reboot.clone()),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let id = r.json()["task"].as_u64().unwrap();
    let t = api(&router, "GET", &format!("/api/tasks/{id}"), None)
        .await
        .json();
    assert_eq!(
        (&t["state"], &t["method"], &t["device"]),
        (&json!("queued"), &json!("Reboot"), &json!(ids[1])),
        "{t}"
    );
    let d = api(&router, "GET", &format!("/api/devices/{}", ids[1]), None)
        .await
        .json();
    assert_eq!(d["queued"], json!([{"id": id, "method": "Reboot"}]), "{d}");

    // Bulk, by filter: every match gets its own task.
    let r = api(
        &router,
        "POST",
        "/api/tasks",
        Some(json!({"filter": {"serial": "SN*"}, "task": reboot})),
    )
    .await;
    assert_eq!(r.json()["queued"], 3, "{}", r.body);

    // Unknown device, unknown task: 404 saying which.
    let r = api(
        &router,
        "POST",
        "/api/devices/00D09E-SIM-NOPE/tasks",
        Some(reboot.clone()),
    )
    .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert_eq!(r.json()["error"], "no such device");
    let r = api(&router, "GET", "/api/tasks/999999", None).await;
    assert_eq!(
        (r.status, r.json()["error"].clone()),
        (StatusCode::NOT_FOUND, json!("no such task"))
    );

    // Malformed tasks: 400 naming what is wrong, and nothing queued.
    let path = format!("/api/devices/{}/tasks", ids[0]);
    for (task, names) in [
        (
            json!({"method": "GetParameterValues", "nmes": ["X"]}),
            "nmes",
        ),
        (json!({"method": "Rebooot"}), "Rebooot"),
        (
            json!({"method": "SetParameterValues", "values": [{"name": "Device.X", "value": [1]}]}),
            "Device.X",
        ),
        (
            json!({"method": "SetParameterValues", "values": [{"name": "Device.Y", "value": 1, "type": "x y"}]}),
            "bad type",
        ),
    ] {
        let r = api(&router, "POST", &path, Some(task.clone())).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{task}: {}", r.body);
        let e = r.json()["error"].as_str().unwrap().to_owned();
        assert!(e.contains(names), "{task}: {e}");
    }
    let r = api(
        &router,
        "POST",
        &format!("{path}?connection_request=smoke"),
        Some(reboot),
    )
    .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(r.body.contains("smoke"), "{}", r.body);
    let d = api(&router, "GET", &format!("/api/devices/{}", ids[0]), None)
        .await
        .json();
    assert_eq!(
        d["queued"].as_array().unwrap().len(),
        1,
        "only the bulk task: {d}"
    );
}

#[tokio::test]
async fn a_task_acknowledged_is_in_the_journal_and_survives_a_crash() {
    let dir = tempfile::tempdir().unwrap();
    let first = acsd(dir.path(), r#"auth = "none""#);
    let router = first.task_api_router();
    api(
        &router,
        "POST",
        "/api/seed",
        Some(json!({"count": 1, "serial_prefix": "SN"})),
    )
    .await;
    let r = api(&router, "POST", "/api/snapshot", None).await;
    assert_eq!(r.json()["devices"], 1, "{}", r.body);

    let task = json!({"method": "GetParameterValues", "names": ["Device.DeviceInfo.UpTime"]});
    let r = api(
        &router,
        "POST",
        "/api/devices/00D09E-SIM-SN00000000/tasks",
        Some(task),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let id = r.json()["task"].as_u64().unwrap();
    // The 200 left after the journal line was written (and synced).
    let journal = std::fs::read_to_string(dir.path().join("acs/tasks.journal")).unwrap();
    assert!(journal.contains(&format!("\"q\":{id},")), "{journal}");

    // A crash: no snapshot after the task. The next start has it from the journal.
    drop((router, first));
    let second = acsd(dir.path(), r#"auth = "none""#);
    let r = api(
        &second.task_api_router(),
        "GET",
        &format!("/api/tasks/{id}"),
        None,
    )
    .await;
    assert_eq!(r.json()["state"], "queued", "{}", r.body);
}

/// A CPE's connection-request listener: answers 401 with a digest challenge, then 204 to a
/// request that answers it. Returns its URL and the requests it saw (Authorization or none).
async fn cpe_listener() -> (String, tokio::sync::mpsc::UnboundedReceiver<Option<String>>) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/cr", listener.local_addr().unwrap());
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    let digest = provd_acs::auth::Digest::new(
        "cpe".into(),
        [7; 32],
        300,
        provd_acs::auth::Credentials::new([("acs".to_owned(), "crpass".to_owned())]),
    );
    tokio::spawn(async move {
        loop {
            let (mut s, _) = listener.accept().await.unwrap();
            let mut buf = vec![0u8; 4096];
            let mut n = 0;
            while !buf[..n].windows(4).any(|w| w == b"\r\n\r\n") {
                n += s.read(&mut buf[n..]).await.unwrap();
            }
            let head = String::from_utf8_lossy(&buf[..n]).into_owned();
            let authz = head
                .lines()
                .find_map(|l| l.strip_prefix("authorization: "))
                .map(str::to_owned);
            let verdict = digest.check(1_000, "GET", "/cr", authz.as_deref());
            tx.send(authz).unwrap();
            let reply = match verdict {
                provd_acs::auth::Verdict::Ok { .. } => "HTTP/1.1 204 No Content\r\n\r\n".to_owned(),
                _ => format!(
                    "HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: {}\r\nContent-Length: 0\r\n\r\n",
                    digest.challenges(1_000, false)[0]
                ),
            };
            s.write_all(reply.as_bytes()).await.unwrap();
        }
    });
    (url, rx)
}

#[tokio::test]
async fn a_connection_request_answers_the_cpes_digest_and_a_second_is_too_soon() {
    let (url, mut seen) = cpe_listener().await;
    let dir = tempfile::tempdir().unwrap();
    let acsd = acsd(
        dir.path(),
        r#"auth = "none"
cr_username = "acs"
cr_password = "crpass""#,
    );
    let r = cwmp(
        &acsd.cwmp_router(),
        &peer(40000),
        None,
        None,
        inform("SN1", &url),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK);

    let router = acsd.task_api_router();
    let path = "/api/devices/00D09E-SIM-SN1/connection-request";
    let r = api(&router, "POST", path, None).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.json(), json!({"sent": "http", "url": url, "status": 204}));
    assert_eq!(seen.recv().await.unwrap(), None);
    let authz = seen.recv().await.unwrap().unwrap();
    assert!(authz.starts_with("Digest username=\"acs\""), "{authz}");

    let r = api(&router, "POST", path, None).await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS, "{}", r.body);
    assert!(r.body.contains("too soon"), "{}", r.body);
    // A task queued with a wake-up that is refused stays queued; the answer says why.
    let r = api(
        &router,
        "POST",
        "/api/devices/00D09E-SIM-SN1/tasks?connection_request=udp",
        Some(json!({"method": "FactoryReset"})),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.json()["connection_request"]["code"], 429, "{}", r.body);
}

/// One HTTP/1.1 request over a real socket, `Connection: close`; the whole answer as text.
fn http(addr: SocketAddr, method: &str, path: &str, body: &str) -> String {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: acs\r\nConnection: close\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    out
}

#[test]
fn the_role_serves_on_its_sockets_and_writes_its_snapshot_when_it_stops() {
    use provd_role::Role;
    let dir = tempfile::tempdir().unwrap();
    let mut s = settings(r#"auth = "none""#);
    (s.bind, s.admin_bind) = ([127, 0, 0, 1].into(), [127, 0, 0, 1].into());
    (s.port, s.admin_port) = (0, 0);
    let cp = provd_role::ControlPlane::start(1).unwrap();
    let role = provd_acsd::start(&cp, &s, dir.path(), |r| r).unwrap();
    let [cwmp] = role.cwmp_addrs() else {
        panic!("{:?}", role.cwmp_addrs())
    };
    assert_eq!(
        role.listening(),
        format!("cwmp={cwmp} api={}", role.api_addr())
    );

    let r = http(*cwmp, "POST", "/", &inform("SN1", "http://127.0.0.1:1/"));
    assert!(r.starts_with("HTTP/1.1 200"), "{r}");
    assert!(r.contains("InformResponse"), "{r}");
    let r = http(role.api_addr(), "GET", "/api/devices", "");
    assert!(r.ends_with(r#"["00D09E-SIM-SN1"]"#), "{r}");
    let informs = role.counters().into_iter().find(|(k, _)| k == "informs");
    assert_eq!(informs, Some(("informs".to_owned(), 1)));
    assert!(!role.finished());

    // Stopped before any periodic snapshot: the device is saved by the stop itself.
    let snapshot = dir.path().join("acs/devices.jsonl");
    assert!(!snapshot.exists());
    cp.signal_stop();
    Box::new(role)
        .stop(std::time::Duration::from_secs(5))
        .unwrap();
    let saved = std::fs::read_to_string(&snapshot).unwrap();
    assert!(saved.contains("SN1"), "{saved}");
    cp.shutdown(std::time::Duration::from_secs(1));
}

/// GenieACS spells parameter types with their namespace prefix (`xsd:unsignedInt`); the task
/// API takes that as well as the short spelling, and the SPV reaches the CPE as
/// `xsi:type="xsd:unsignedInt"`, never as `xsd:xsd:...` nor downgraded to a string.
#[tokio::test]
async fn an_spv_with_genieacs_type_spelling_is_accepted_and_reaches_the_wire() {
    let dir = tempfile::tempdir().unwrap();
    let (_acsd, cwmp_r, api_r) = open_acs(dir.path());
    let cpe = peer(40100);
    let r = boot_inform(&cwmp_r, &cpe, "SPV1").await;
    assert!(matches!(r.rpc(), Rpc::InformResponse { .. }), "{}", r.body);
    let r = cwmp(&cwmp_r, &cpe, None, None, String::new()).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.body);

    let task = json!({"method": "SetParameterValues", "values": [
        {"name": "Device.ManagementServer.PeriodicInformInterval", "value": "300", "type": "xsd:unsignedInt"},
        {"name": "Device.X.Enable", "value": "true", "type": "xsd:boolean"},
        {"name": "Device.X.Name", "value": "a", "type": "string"},
    ]});
    let r = api(
        &api_r,
        "POST",
        "/api/devices/00D09E-SIM-SPV1/tasks",
        Some(task),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);

    let cpe = peer(40101);
    let r = boot_inform(&cwmp_r, &cpe, "SPV1").await;
    assert!(matches!(r.rpc(), Rpc::InformResponse { .. }), "{}", r.body);
    let r = cwmp(&cwmp_r, &cpe, None, None, String::new()).await;
    assert!(
        r.body.contains(r#"xsi:type="xsd:unsignedInt">300<"#),
        "the SPV on the wire: {}",
        r.body
    );
    assert!(
        r.body.contains(r#"xsi:type="xsd:boolean">true<"#),
        "{}",
        r.body
    );
    let Rpc::SetParameterValues { parameters, .. } = r.rpc() else {
        panic!("expected the queued SetParameterValues, got {}", r.body)
    };
    let tys: Vec<&str> = parameters.iter().map(|p| p.ty.as_str()).collect();
    assert_eq!(tys, ["unsignedInt", "boolean", "string"]);

    // A prefix other than xsd:, or an unknown xsd: type, is still refused by name.
    for ty in ["foo:int", "xsd:", "xsd:x y"] {
        let task = json!({"method": "SetParameterValues", "values": [
            {"name": "Device.Z", "value": "1", "type": ty}]});
        let r = api(
            &api_r,
            "POST",
            "/api/devices/00D09E-SIM-SPV1/tasks",
            Some(task),
        )
        .await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{ty}: {}", r.body);
        assert!(r.body.contains("Device.Z"), "{ty}: {}", r.body);
    }
}
