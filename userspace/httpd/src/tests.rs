//! The router in process: requests with a hand-made [`Peer`], no sockets.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use provd_config::Policy;
use provd_web::{ClientCert, Peer};
use tower::ServiceExt;

use super::Httpd;

const MAC: &str = "0015cf123456";

fn write(dir: &Path, name: &str, text: &str) {
    std::fs::write(dir.join(name), text).unwrap();
}

fn policy(dir: &Path, extra_profile: &str) -> Policy {
    // These tests fetch without a lease view; the enforce rule has its own test.
    let no_enforce = format!("{extra_profile}\nenforce = false");
    let extra_profile = if extra_profile.contains("enforce") {
        extra_profile
    } else {
        no_enforce.as_str()
    };
    write(
        dir,
        "fv.j2",
        "DBID_SIP_SERVER={{ vars.sip }}\nDBID_MAC={{ mac_upper }}\nDBID_RULE={{ \"/p/$MA.cfg\" | expand }}\n{% if upgrade %}DBID_UPGRADE_RULE={{ upgrade.url }}\n{% endif %}",
    );
    write(dir, "fw.bin", &"0123456789".repeat(10));
    let text = format!(
        r#"
[server]
lease_dir = "{d}/state"
[http]
firmware_dir = "{d}"
cert = "unused.pem"
key = "unused.key"
client_ca = "unused-ca.pem"
[vars]
sip = "sip.example.net"
[[class]]
name = "ata"
match = "x"
[class.profile]
path = "p/{{mac}}.cfg"
template = "{d}/fv.j2"
format = "kvp"
{extra_profile}
[[subscriber]]
mac = "00:15:cf:12:34:56"
[[upgrade_rule]]
model = "IP542N"
from_version = "1.*"
firmware = "fw.bin"
version = "2.0"
"#,
        d = dir.display()
    );
    provd_config::testing::policy(&text)
}

fn peer(tls: bool, cert_cn: Option<&str>) -> Peer {
    Peer {
        conn: 1,
        remote: "198.18.0.10:40000".parse::<SocketAddr>().unwrap(),
        local: "198.18.0.1:80".parse::<SocketAddr>().unwrap(),
        tls,
        client_cert: cert_cn.map(|cn| {
            Arc::new(ClientCert {
                der: Vec::new(),
                subject_cn: Some(cn.into()),
                san_dns: Vec::new(),
                not_after_unix: i64::MAX,
            })
        }),
    }
}

async fn get(
    httpd: &Arc<Httpd>,
    path: &str,
    peer: Peer,
    headers: &[(&str, &str)],
) -> (StatusCode, axum::http::HeaderMap, Vec<u8>) {
    let mut req = Request::builder().uri(path);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let mut req = req.body(Body::empty()).unwrap();
    req.extensions_mut().insert(peer);
    let resp = httpd.router().oneshot(req).await.unwrap();
    let status = resp.status();
    let headers = resp.headers().clone();
    let body = axum::body::to_bytes(resp.into_body(), 1 << 20)
        .await
        .unwrap();
    (status, headers, body.to_vec())
}

#[tokio::test(flavor = "multi_thread")]
async fn profile_version_and_conditionals() {
    let dir = tempfile::tempdir().unwrap();
    let p = policy(dir.path(), "");
    let httpd = Arc::new(
        Httpd::new(&p, None)
            .unwrap()
            .with_template_check(std::time::Duration::ZERO),
    );
    let path = format!("/p/{MAC}.cfg");
    let (s, h, body) = get(&httpd, &path, peer(false, None), &[]).await;
    assert_eq!(s, StatusCode::OK);
    let text = String::from_utf8(body).unwrap();
    assert_eq!(
        text,
        "DBID_DBASE_VERSION=1\nDBID_SIP_SERVER=sip.example.net\nDBID_MAC=0015CF123456\nDBID_RULE=/p/0015cf123456.cfg\n"
    );
    let etag = h[header::ETAG].to_str().unwrap().to_owned();
    // Same again: same version, same tag; If-None-Match → 304.
    let (s, h2, _) = get(
        &httpd,
        &path,
        peer(false, None),
        &[("if-none-match", &etag)],
    )
    .await;
    assert_eq!(s, StatusCode::NOT_MODIFIED);
    assert_eq!(h2[header::ETAG], etag.as_str());
    // An upgrade rule applies: body changes, version 2.
    let (s, _, body) = get(
        &httpd,
        &format!("{path}?pn=IP542N&swver=1.5"),
        peer(false, None),
        &[("if-none-match", &etag)],
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    let text = String::from_utf8(body).unwrap();
    assert!(text.starts_with("DBID_DBASE_VERSION=2\n"), "{text}");
    assert!(
        text.contains("DBID_UPGRADE_RULE=http://198.18.0.1:80/firmware/fw.bin"),
        "{text}"
    );
    // At the target version: no rule, body as before but version goes on up.
    let (_, _, body) = get(
        &httpd,
        &format!("{path}?pn=IP542N&swver=2.0"),
        peer(false, None),
        &[],
    )
    .await;
    assert!(
        String::from_utf8(body)
            .unwrap()
            .starts_with("DBID_DBASE_VERSION=3\n")
    );
    // Template edit → bump.
    std::thread::sleep(std::time::Duration::from_millis(20));
    write(dir.path(), "fv.j2", "DBID_NEW=1\n");
    let later = std::time::SystemTime::now() + std::time::Duration::from_secs(5);
    std::fs::File::options()
        .write(true)
        .open(dir.path().join("fv.j2"))
        .unwrap()
        .set_modified(later)
        .unwrap();
    let (_, _, body) = get(&httpd, &path, peer(false, None), &[]).await;
    assert_eq!(
        String::from_utf8(body).unwrap(),
        "DBID_DBASE_VERSION=4\nDBID_NEW=1\n"
    );
    let status = httpd
        .device_status(&[0, 0x15, 0xcf, 0x12, 0x34, 0x56])
        .unwrap();
    assert_eq!(status["last_version_served"], 4);
    assert_eq!(status["requests"], 5);

    // A restart keeps the counter: same body → same version; the log has one line per device.
    drop(httpd);
    let httpd = Arc::new(Httpd::new(&p, None).unwrap());
    let (_, _, body) = get(&httpd, &path, peer(false, None), &[]).await;
    assert_eq!(
        String::from_utf8(body).unwrap(),
        "DBID_DBASE_VERSION=4\nDBID_NEW=1\n"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn refusals() {
    let dir = tempfile::tempdir().unwrap();
    let p = policy(dir.path(), "allow_plain = false\n");
    let httpd = Arc::new(Httpd::new(&p, None).unwrap());
    let path = format!("/p/{MAC}.cfg");
    let (s, _, _) = get(&httpd, &path, peer(false, None), &[]).await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let (s, _, _) = get(&httpd, &path, peer(true, Some("0015cf654321")), &[]).await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let (s, _, _) = get(
        &httpd,
        &path,
        peer(true, Some("SPA-00:15:CF:12:34:56")),
        &[],
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    let (s, _, _) = get(&httpd, "/p/0015cf000000.cfg", peer(true, None), &[]).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    // Refused over plain HTTP: no record for a made-up MAC, one for the known device.
    let (s, _, _) = get(&httpd, "/p/0015cf000001.cfg", peer(false, None), &[]).await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    assert!(httpd.device_status(&[0, 0x15, 0xcf, 0, 0, 1]).is_none());
    assert!(httpd.device_status(&[0, 0x15, 0xcf, 0, 0, 0]).is_none());
    let known = httpd
        .device_status(&[0, 0x15, 0xcf, 0x12, 0x34, 0x56])
        .unwrap();
    assert_eq!(known["last_status"], 200);
    assert_eq!(known["requests"], 3);
    for bad in [
        "/p/%2e%2e/x",
        "/firmware/%2e%2e%2fstate",
        "/p/a%00.cfg",
        "/p/%252e%252e/x",
    ] {
        let (s, _, _) = get(&httpd, bad, peer(true, None), &[]).await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{bad}");
    }
    let (s, _, _) = get(&httpd, "/nothing", peer(true, None), &[]).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    assert_eq!(
        httpd
            .counters
            .bad_path
            .load(std::sync::atomic::Ordering::Relaxed),
        4
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn encrypted_profile_decrypts() {
    let dir = tempfile::tempdir().unwrap();
    let p = policy(dir.path(), "key = \"SecretPhrase1234\"\n");
    let httpd = Arc::new(Httpd::new(&p, None).unwrap());
    let (s, h, body) = get(&httpd, &format!("/p/{MAC}.cfg"), peer(false, None), &[]).await;
    assert_eq!(s, StatusCode::OK);
    assert!(body.starts_with(b"Salted__"));
    let plain = provd_profiles::crypto::decrypt(&body, b"SecretPhrase1234").unwrap();
    assert!(plain.starts_with(b"DBID_DBASE_VERSION=1\n"));
    // Cached: the same ciphertext (and tag) until the profile changes.
    let (_, h2, body2) = get(&httpd, &format!("/p/{MAC}.cfg"), peer(false, None), &[]).await;
    assert_eq!(body, body2);
    assert_eq!(h[header::ETAG], h2[header::ETAG]);
}

#[tokio::test(flavor = "multi_thread")]
async fn firmware_ranges() {
    let dir = tempfile::tempdir().unwrap();
    let p = policy(dir.path(), "");
    let httpd = Arc::new(Httpd::new(&p, None).unwrap());
    let (s, h, body) = get(
        &httpd,
        "/firmware/fw.bin",
        peer(false, None),
        &[("range", "bytes=5-14")],
    )
    .await;
    assert_eq!(s, StatusCode::PARTIAL_CONTENT);
    assert_eq!(body, b"5678901234");
    assert_eq!(h[header::CONTENT_RANGE], "bytes 5-14/100");
    let etag = h[header::ETAG].to_str().unwrap().to_owned();
    let (s, _, _) = get(
        &httpd,
        "/firmware/fw.bin",
        peer(false, None),
        &[("if-none-match", &etag)],
    )
    .await;
    assert_eq!(s, StatusCode::NOT_MODIFIED);
    let (s, _, _) = get(
        &httpd,
        "/firmware/fw.bin",
        peer(false, None),
        &[("range", "bytes=100-")],
    )
    .await;
    assert_eq!(s, StatusCode::RANGE_NOT_SATISFIABLE);
    let (s, _, body) = get(
        &httpd,
        "/firmware/fw.bin",
        peer(false, None),
        &[("range", "bytes=0-1"), ("if-range", "\"old\"")],
    )
    .await;
    assert_eq!((s, body.len()), (StatusCode::OK, 100));
    let (s, _, _) = get(&httpd, "/firmware/fv.j2x", peer(false, None), &[]).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
}

/// The shipped example's profile templates compile.
#[test]
fn example_templates_compile() {
    let f =
        std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../config/examples/voip.toml");
    let p = Policy::from_file(&f).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(super::check_templates(&p).unwrap(), 2);
}

/// The role on a real socket: it serves the router, counts per listener, and stops.
#[test]
fn the_role_serves_on_its_socket_and_counts_by_listener() {
    use provd_role::Role;
    use std::io::{Read, Write};
    let dir = tempfile::tempdir().unwrap();
    let p = policy(dir.path(), "");
    let mut h = p.http.clone().unwrap();
    (h.bind, h.port, h.https) = ([127, 0, 0, 1].into(), Some(0), None);
    let cp = provd_role::ControlPlane::start(1).unwrap();
    let role = crate::start(&cp, &h, &p, None, None).unwrap();
    let addr = role.plain_addr().unwrap();
    assert_eq!(role.listening(), format!("http={addr}"));
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    s.write_all(b"GET /firmware/fw.bin HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    assert!(out.starts_with("HTTP/1.1 200"), "{out}");
    let c = role.counters();
    let get = |name: &str| c.iter().find(|(k, _)| k == name).map(|(_, v)| *v);
    assert_eq!(get("firmware_served"), Some(1), "{c:?}");
    assert_eq!(get("http.status_2xx"), Some(1), "{c:?}");
    assert_eq!(get("https.requests"), None, "{c:?}");
    assert!(!role.finished());
    cp.signal_stop();
    Box::new(role).stop(Duration::from_secs(5)).unwrap();
    cp.shutdown(Duration::from_secs(1));
}

/// A phone's variables changed in the store (through the catalog): its next profile has them,
/// with a bumped version.
#[tokio::test(flavor = "multi_thread")]
async fn a_changed_device_record_is_the_next_profile_with_a_bumped_version() {
    use provd_devices::catalog::Catalog;
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "fv.j2",
        "DBID_LINE={{ subscriber.line if subscriber else \"none\" }}\n",
    );
    let p = policy(dir.path(), "");
    write(
        dir.path(),
        "fv.j2",
        "DBID_LINE={{ subscriber.line if subscriber else \"none\" }}\n",
    );
    let catalog = Arc::new(Catalog::new());
    let httpd = Arc::new(
        Httpd::new(&p, None)
            .unwrap()
            .with_template_check(std::time::Duration::ZERO)
            .with_catalog(Arc::clone(&catalog)),
    );
    let device = |line: &str, version: u64| provd_store::Device {
        spec: provd_store::DeviceSpec {
            mac: MAC.parse().unwrap(),
            kind: provd_store::DeviceKind::Phone,
            vars: serde_json::json!({ "line": line })
                .as_object()
                .unwrap()
                .clone(),
            ..Default::default()
        },
        version,
        created_at: 0,
        updated_at: 0,
    };
    let path = format!("/p/{MAC}.cfg");
    catalog.put_device(&device("100", 1));
    let (s, _, body) = get(&httpd, &path, peer(false, None), &[]).await;
    assert_eq!(s, StatusCode::OK);
    let text = String::from_utf8(body).unwrap();
    assert!(text.contains("DBID_LINE=100"), "{text}");
    let v1 = text.lines().next().unwrap().to_owned();
    catalog.put_device(&device("200", 2));
    let (_, _, body) = get(&httpd, &path, peer(false, None), &[]).await;
    let text = String::from_utf8(body).unwrap();
    assert!(
        text.contains("DBID_LINE=200"),
        "the next fetch has the change: {text}"
    );
    assert_ne!(text.lines().next().unwrap(), v1, "version bumped: {text}");
}

/// check-config's profile check: the good template passes; one reading a variable no render
/// sets and one failing for every device are refused naming the class; one that needs the
/// device's subscriber record is left to the devices that have one.
#[test]
fn check_templates_renders_each_profile_for_a_probe_device() {
    let dir = tempfile::tempdir().unwrap();
    let p = policy(dir.path(), "");
    assert_eq!(crate::check_templates(&p).unwrap(), 1);
    for (text, want) in [
        (
            "SIP={{ sip_server }}\n",
            "reads sip_server, which no render sets",
        ),
        (
            "N={{ vars.sip + 1 }}\n",
            "does not render for a probe device",
        ),
    ] {
        write(dir.path(), "fv.j2", text);
        let e = crate::check_templates(&p).unwrap_err().to_string();
        assert!(
            e.starts_with("class \"ata\": ") && e.contains(want),
            "{text}: {e}"
        );
    }
    write(dir.path(), "fv.j2", "LINE={{ subscriber.line1 }}\n");
    assert_eq!(crate::check_templates(&p).unwrap(), 1);
}

/// TFTP's enforce rule for profiles (on by default): served to the address holding the
/// device's lease, or over HTTPS to a certificate naming it; another host asking for a known
/// device gets exactly what a guess of an unknown MAC gets (404 "not found"), and a source
/// that keeps being refused is answered 429 until its budget refills.
#[tokio::test(flavor = "multi_thread")]
async fn profiles_are_enforced_like_tftp_and_refusals_look_unknown() {
    let dir = tempfile::tempdir().unwrap();
    let p = policy(dir.path(), "enforce = true");
    let view = Arc::new(provd_devices::DeviceView::new());
    let now = u32::try_from(provd_role::clock::unix_secs()).unwrap();
    view.bind(provd_lease::Binding {
        mac: [0x00, 0x15, 0xcf, 0x12, 0x34, 0x56],
        addr: "198.18.0.10".parse().unwrap(),
        expires_at: now + 3600,
        class: Some(0),
        giaddr: std::net::Ipv4Addr::UNSPECIFIED,
        vendor_class: None,
        remote_id: None,
        circuit_id: None,
        restart: true,
    });
    let httpd = Arc::new(Httpd::new(&p, Some(view)).unwrap());
    let path = format!("/p/{MAC}.cfg");
    // The lease holder (peer() is 198.18.0.10).
    let (s, _, _) = get(&httpd, &path, peer(false, None), &[]).await;
    assert_eq!(s, StatusCode::OK);
    // Another host: the same answer as for a MAC nobody knows.
    let other = |tls: bool, cn: Option<&str>| {
        let mut p = peer(tls, cn);
        p.remote = "198.18.0.60:40000".parse().unwrap();
        p
    };
    let refused = get(&httpd, &path, other(false, None), &[]).await;
    let unknown = get(&httpd, "/p/0015cf999999.cfg", other(false, None), &[]).await;
    assert_eq!(refused.0, StatusCode::NOT_FOUND);
    assert_eq!((refused.0, &refused.2), (unknown.0, &unknown.2));
    assert_eq!(refused.2, b"not found\n");
    assert_eq!(
        httpd
            .counters
            .refused_lease
            .load(std::sync::atomic::Ordering::Relaxed),
        1
    );
    // Over HTTPS with a certificate naming the device, from anywhere.
    let (s, _, _) = get(&httpd, &path, other(true, Some("0015cf123456")), &[]).await;
    assert_eq!(s, StatusCode::OK);
    // A guesser: its burst of refusals, then 429 whatever it asks.
    let guesser = || {
        let mut p = peer(false, None);
        p.remote = "198.18.0.61:40000".parse().unwrap();
        p
    };
    let mut answers = Vec::new();
    for i in 0..30u32 {
        let (s, _, _) = get(&httpd, &format!("/p/0015cf00{i:04x}.cfg"), guesser(), &[]).await;
        answers.push(s);
    }
    let not_found = answers
        .iter()
        .filter(|s| **s == StatusCode::NOT_FOUND)
        .count();
    assert_eq!(not_found, 20, "{answers:?}");
    assert!(
        answers[20..]
            .iter()
            .all(|s| *s == StatusCode::TOO_MANY_REQUESTS)
    );
    // The lease holder is not held back by the guesser.
    let (s, _, _) = get(&httpd, &path, peer(false, None), &[]).await;
    assert_eq!(s, StatusCode::OK);
}
