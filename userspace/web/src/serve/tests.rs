//! A real listener on loopback, spoken to over raw TCP and tokio-rustls clients; certificates
//! made with rcgen for each test.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use axum::Extension;
use axum::routing::get;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;

use super::*;
use crate::{ClientAuth, TlsFiles, WebError, server_config};

/// A CA and certificates it signs, written to a temp dir as PEM.
struct Pki {
    dir: tempfile::TempDir,
    ca: rcgen::Certificate,
    ca_key: rcgen::KeyPair,
}

impl Pki {
    fn new(name: &str) -> Pki {
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, name);
        let ca_key = rcgen::KeyPair::generate().unwrap();
        let ca = params.self_signed(&ca_key).unwrap();
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("ca.pem"), ca.pem()).unwrap();
        Pki { dir, ca, ca_key }
    }

    fn path(&self, name: &str) -> std::path::PathBuf {
        self.dir.path().join(name)
    }

    /// A leaf signed by this CA; returns (cert DER, key DER) and writes `<name>.pem`/`.key`.
    fn leaf(
        &self,
        name: &str,
        cn: &str,
        sans: &[&str],
    ) -> (CertificateDer<'static>, PrivateKeyDer<'static>) {
        let mut params =
            rcgen::CertificateParams::new(sans.iter().map(|s| s.to_string()).collect::<Vec<_>>())
                .unwrap();
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, cn);
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = params.signed_by(&key, &self.ca, &self.ca_key).unwrap();
        std::fs::write(self.path(&format!("{name}.pem")), cert.pem()).unwrap();
        std::fs::write(self.path(&format!("{name}.key")), key.serialize_pem()).unwrap();
        (
            cert.der().clone(),
            PrivateKeyDer::try_from(key.serialize_der()).unwrap(),
        )
    }

    fn files(&self, auth: ClientAuth) -> TlsFiles {
        self.leaf("server", "provd.test", &["localhost"]);
        TlsFiles {
            cert: self.path("server.pem"),
            key: self.path("server.key"),
            client_ca: Some(self.path("ca.pem")),
            client_auth: auth,
        }
    }
}

/// The router under test: `/who` says what the server knows about the peer.
fn app() -> Router {
    Router::new().route(
        "/who",
        get(|Extension(peer): Extension<Peer>| async move {
            let macs = peer
                .client_cert
                .as_ref()
                .map(|c| c.macs().iter().map(|m| format!("{m:02x?}")).collect())
                .unwrap_or_else(Vec::<String>::new);
            format!("tls={} macs={}", peer.tls, macs.join(","))
        }),
    )
}

struct Running {
    addr: SocketAddr,
    counters: Arc<WebCounters>,
    stop: Option<oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl Running {
    async fn start(tls: Option<Arc<rustls::ServerConfig>>, limits: Limits) -> Running {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let counters = Arc::new(WebCounters::default());
        let opts = ServeOptions {
            limits,
            counters: counters.clone(),
            access_log: true,
        };
        let (tx, rx) = oneshot::channel::<()>();
        let task = tokio::spawn(serve_with(listener, tls, app(), opts, async {
            let _ = rx.await;
        }));
        Running {
            addr,
            counters,
            stop: Some(tx),
            task,
        }
    }

    async fn stop(mut self) {
        let _ = self.stop.take().unwrap().send(());
        tokio::time::timeout(Duration::from_secs(5), self.task)
            .await
            .expect("server stops")
            .unwrap()
            .unwrap();
    }
}

/// Sends `req` on `io` and reads until the server closes or `Content-Length` is satisfied.
async fn exchange<S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin>(
    io: &mut S,
    req: &[u8],
) -> String {
    io.write_all(req).await.unwrap();
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        let n = tokio::time::timeout(Duration::from_secs(5), io.read(&mut chunk))
            .await
            .expect("response in time")
            .unwrap_or(0);
        if n == 0 {
            break;
        }
        buf.extend_from_slice(&chunk[..n]);
        let text = String::from_utf8_lossy(&buf);
        if let Some((head, body)) = text.split_once("\r\n\r\n") {
            let len = head.lines().find_map(|l| {
                l.to_ascii_lowercase()
                    .strip_prefix("content-length: ")
                    .map(|v| v.trim().parse::<usize>().unwrap())
            });
            if len.is_some_and(|len| body.len() >= len) {
                break;
            }
        }
    }
    String::from_utf8_lossy(&buf).into_owned()
}

const GET_WHO: &[u8] = b"GET /who HTTP/1.1\r\nHost: t\r\n\r\n";

fn client_config(
    ca: &Path,
    cert: Option<(CertificateDer<'static>, PrivateKeyDer<'static>)>,
) -> Arc<rustls::ClientConfig> {
    let mut roots = rustls::RootCertStore::empty();
    for c in CertificateDer::pem_file_iter(ca).unwrap() {
        roots.add(c.unwrap()).unwrap();
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let b = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots);
    Arc::new(match cert {
        Some((c, k)) => b.with_client_auth_cert(vec![c], k).unwrap(),
        None => b.with_no_client_auth(),
    })
}

use rustls::pki_types::pem::PemObject;

async fn tls_get(addr: SocketAddr, config: Arc<rustls::ClientConfig>) -> std::io::Result<String> {
    let tcp = TcpStream::connect(addr).await?;
    let connector = tokio_rustls::TlsConnector::from(config);
    let mut tls = connector
        .connect(ServerName::try_from("localhost").unwrap(), tcp)
        .await?;
    // TLS 1.3 reports a refused client certificate only after the handshake: on first read.
    tls.write_all(GET_WHO).await?;
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        let n = tokio::time::timeout(Duration::from_secs(5), tls.read(&mut chunk))
            .await
            .expect("response in time")?;
        if n == 0 {
            break;
        }
        buf.extend_from_slice(&chunk[..n]);
        if String::from_utf8_lossy(&buf).contains("macs=") {
            break;
        }
    }
    Ok(String::from_utf8_lossy(&buf).into_owned())
}

#[tokio::test]
async fn plain_http_carries_the_peer_and_counts() {
    let srv = Running::start(None, Limits::default()).await;
    let mut tcp = TcpStream::connect(srv.addr).await.unwrap();
    let first = exchange(&mut tcp, GET_WHO).await;
    assert!(first.starts_with("HTTP/1.1 200"), "{first}");
    assert!(first.ends_with("tls=false macs="), "{first}");
    // Keep-alive: the same connection serves a second request, and a 404.
    let second = exchange(&mut tcp, b"GET /nope HTTP/1.1\r\nHost: t\r\n\r\n").await;
    assert!(second.starts_with("HTTP/1.1 404"), "{second}");
    assert_eq!(srv.counters.connections.load(Ordering::Relaxed), 1);
    assert_eq!(srv.counters.requests.load(Ordering::Relaxed), 2);
    assert_eq!(srv.counters.status_2xx.load(Ordering::Relaxed), 1);
    assert_eq!(srv.counters.status_4xx.load(Ordering::Relaxed), 1);
    srv.stop().await;
}

#[tokio::test]
async fn oversized_request_head_gets_431() {
    let srv = Running::start(
        None,
        Limits {
            max_header_bytes: 8192,
            ..Limits::default()
        },
    )
    .await;
    let mut tcp = TcpStream::connect(srv.addr).await.unwrap();
    let big = format!(
        "GET /who HTTP/1.1\r\nHost: t\r\nX-Big: {}\r\n\r\n",
        "a".repeat(20_000)
    );
    let resp = exchange(&mut tcp, big.as_bytes()).await;
    assert!(resp.starts_with("HTTP/1.1 431"), "{resp}");
    srv.stop().await;
}

#[tokio::test]
async fn connections_beyond_the_cap_are_closed() {
    let srv = Running::start(
        None,
        Limits {
            max_connections: 1,
            ..Limits::default()
        },
    )
    .await;
    let mut first = TcpStream::connect(srv.addr).await.unwrap();
    assert!(
        exchange(&mut first, GET_WHO)
            .await
            .starts_with("HTTP/1.1 200")
    );
    let mut second = TcpStream::connect(srv.addr).await.unwrap();
    let resp = exchange(&mut second, GET_WHO).await;
    assert_eq!(resp, "", "the second connection is closed unanswered");
    assert_eq!(srv.counters.refused.load(Ordering::Relaxed), 1);
    drop(first);
    srv.stop().await;
}

#[tokio::test]
async fn idle_keepalive_connections_are_closed() {
    let srv = Running::start(
        None,
        Limits {
            idle_timeout: Duration::from_millis(300),
            ..Limits::default()
        },
    )
    .await;
    let mut tcp = TcpStream::connect(srv.addr).await.unwrap();
    assert!(
        exchange(&mut tcp, GET_WHO)
            .await
            .starts_with("HTTP/1.1 200")
    );
    let mut byte = [0u8; 1];
    let closed = tokio::time::timeout(Duration::from_secs(5), tcp.read(&mut byte)).await;
    assert!(
        matches!(closed, Ok(Ok(0)) | Ok(Err(_))),
        "closed after idling: {closed:?}"
    );
    srv.stop().await;
}

#[tokio::test]
async fn optional_client_auth_lets_in_with_and_without_a_certificate() {
    let pki = Pki::new("provd test CA");
    let tls = server_config(&pki.files(ClientAuth::Optional)).unwrap();
    let srv = Running::start(Some(tls), Limits::default()).await;
    let phone = pki.leaf("phone", "SPA2102-0015CF123456", &[]);
    let with = tls_get(srv.addr, client_config(&pki.path("ca.pem"), Some(phone)))
        .await
        .unwrap();
    assert!(
        with.ends_with("tls=true macs=[00, 15, cf, 12, 34, 56]"),
        "{with}"
    );
    let without = tls_get(srv.addr, client_config(&pki.path("ca.pem"), None))
        .await
        .unwrap();
    assert!(without.ends_with("tls=true macs="), "{without}");

    // A certificate from another CA fails the handshake and is counted.
    let stranger = Pki::new("someone else");
    let foreign = stranger.leaf("phone", "0015CF123456", &[]);
    let refused = tls_get(srv.addr, client_config(&pki.path("ca.pem"), Some(foreign))).await;
    assert!(refused.is_err(), "{refused:?}");
    assert_eq!(srv.counters.handshakes_ok.load(Ordering::Relaxed), 2);
    assert_eq!(srv.counters.handshakes_failed.load(Ordering::Relaxed), 1);
    srv.stop().await;
}

#[tokio::test]
async fn required_client_auth_refuses_a_client_without_one() {
    let pki = Pki::new("provd test CA");
    let tls = server_config(&pki.files(ClientAuth::Required)).unwrap();
    let srv = Running::start(Some(tls), Limits::default()).await;
    let refused = tls_get(srv.addr, client_config(&pki.path("ca.pem"), None)).await;
    assert!(refused.is_err(), "{refused:?}");
    let phone = pki.leaf("phone", "x", &["00:15:cf:12:34:56"]);
    let ok = tls_get(srv.addr, client_config(&pki.path("ca.pem"), Some(phone)))
        .await
        .unwrap();
    assert!(ok.ends_with("macs=[00, 15, cf, 12, 34, 56]"), "{ok}");
    srv.stop().await;
}

#[test]
fn config_errors_name_the_file() {
    let pki = Pki::new("ca");
    let mut files = pki.files(ClientAuth::Off);
    files.key = pki.path("missing.key");
    let err = server_config(&files).unwrap_err();
    assert!(matches!(err, WebError::Read { .. }), "{err}");
    assert!(err.to_string().contains("missing.key"), "{err}");

    let mut files = pki.files(ClientAuth::Off);
    files.key = pki.path("ca.pem");
    let err = server_config(&files).unwrap_err();
    assert!(err.to_string().contains("ca.pem"), "{err}");

    let mut files = pki.files(ClientAuth::Required);
    files.client_ca = None;
    let err = server_config(&files).unwrap_err();
    assert!(
        matches!(err, WebError::NoClientCa { mode: "required" }),
        "{err}"
    );

    let mut files = pki.files(ClientAuth::Off);
    std::fs::write(pki.path("empty.pem"), "").unwrap();
    files.cert = pki.path("empty.pem");
    let err = server_config(&files).unwrap_err();
    assert!(matches!(err, WebError::NoCertificate { .. }), "{err}");
}
