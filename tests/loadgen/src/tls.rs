//! `provd-loadgen tls`: new mutual-TLS handshakes, as fast as `--threads` blocking clients go.
//!
//! Each connection is a full handshake (resumption off) with the client certificate, the
//! server chain verified against `--ca`, then close_notify and a read to the end: a handshake
//! counts only if the server accepted the certificate (a refusal arrives as an alert on that
//! read). For the HTTP bench, where `openssl s_time` (OpenSSL 3.0) spends more CPU per
//! handshake than the server does: this client is rustls with ring, like the server.

use std::io::Read;
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow};
use rustls::client::Resumption;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use rustls::{ClientConfig, ClientConnection, RootCertStore};

#[derive(Debug)]
pub struct Config {
    pub connect: SocketAddr,
    pub server_name: String,
    pub ca: PathBuf,
    pub cert: PathBuf,
    pub key: PathBuf,
    pub threads: u32,
    pub duration: Duration,
    /// Handshakes at most, over all threads.
    pub count: u64,
}

#[derive(Debug)]
pub struct Report {
    pub ok: u64,
    pub failed: u64,
    pub seconds: f64,
    pub first_error: Option<String>,
}

impl Report {
    pub fn line(&self) -> String {
        format!(
            "RESULT tls-load handshakes={} failed={} seconds={:.2} handshakes_per_s={:.0}",
            self.ok,
            self.failed,
            self.seconds,
            self.ok as f64 / self.seconds.max(1e-3)
        )
    }
}

fn client_config(cfg: &Config) -> Result<Arc<ClientConfig>> {
    let mut roots = RootCertStore::empty();
    for c in CertificateDer::pem_file_iter(&cfg.ca)
        .with_context(|| format!("reading {}", cfg.ca.display()))?
    {
        roots.add(c.context("a CA certificate")?)?;
    }
    let chain = CertificateDer::pem_file_iter(&cfg.cert)
        .with_context(|| format!("reading {}", cfg.cert.display()))?
        .collect::<Result<Vec<_>, _>>()
        .context("the client certificate")?;
    let key = PrivateKeyDer::from_pem_file(&cfg.key)
        .with_context(|| format!("reading {}", cfg.key.display()))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut c = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots)
        .with_client_auth_cert(chain, key)?;
    c.resumption = Resumption::disabled();
    Ok(Arc::new(c))
}

/// One connection: handshake, close_notify, read to the end.
fn one(config: &Arc<ClientConfig>, name: &ServerName<'static>, addr: SocketAddr) -> Result<()> {
    let mut sock = TcpStream::connect_timeout(&addr, Duration::from_secs(5))?;
    sock.set_nodelay(true)?;
    sock.set_read_timeout(Some(Duration::from_secs(5)))?;
    let mut conn = ClientConnection::new(Arc::clone(config), name.clone())?;
    while conn.is_handshaking() {
        conn.complete_io(&mut sock)?;
    }
    conn.send_close_notify();
    while conn.wants_write() {
        conn.complete_io(&mut sock)?;
    }
    // The server's answer to our Finished: tickets or an alert, then its close.
    let mut buf = [0u8; 512];
    loop {
        if conn.wants_read() {
            match conn.complete_io(&mut sock) {
                Ok((0, 0)) => return Ok(()),
                Ok(_) => {}
                Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(()),
                Err(e) => return Err(e.into()),
            }
        }
        match conn.reader().read(&mut buf) {
            Ok(0) => return Ok(()),
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(()),
            Err(e) => return Err(e.into()),
        }
    }
}

pub fn run(cfg: Config) -> Result<Report> {
    let config = client_config(&cfg)?;
    let name = ServerName::try_from(cfg.server_name.clone())
        .map_err(|e| anyhow!("--server-name {:?}: {e}", cfg.server_name))?;
    let ok = Arc::new(AtomicU64::new(0));
    let failed = Arc::new(AtomicU64::new(0));
    let started = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let first_error = Arc::new(std::sync::Mutex::new(None::<String>));
    let t0 = Instant::now();
    let mut handles = Vec::new();
    for _ in 0..cfg.threads.max(1) {
        let (config, name) = (Arc::clone(&config), name.clone());
        let (ok, failed, started, stop, first_error) = (
            Arc::clone(&ok),
            Arc::clone(&failed),
            Arc::clone(&started),
            Arc::clone(&stop),
            Arc::clone(&first_error),
        );
        let (addr, duration, count) = (cfg.connect, cfg.duration, cfg.count);
        handles.push(std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) && t0.elapsed() < duration {
                if started.fetch_add(1, Ordering::Relaxed) >= count {
                    break;
                }
                match one(&config, &name, addr) {
                    Ok(()) => {
                        ok.fetch_add(1, Ordering::Relaxed);
                    }
                    Err(e) => {
                        failed.fetch_add(1, Ordering::Relaxed);
                        let mut f = first_error.lock().unwrap_or_else(|p| p.into_inner());
                        f.get_or_insert_with(|| format!("{e:#}"));
                    }
                }
            }
        }));
    }
    for h in handles {
        let _ = h.join();
    }
    stop.store(true, Ordering::Relaxed);
    let first_error = first_error.lock().unwrap_or_else(|p| p.into_inner()).take();
    Ok(Report {
        ok: ok.load(Ordering::Relaxed),
        failed: failed.load(Ordering::Relaxed),
        seconds: t0.elapsed().as_secs_f64(),
        first_error,
    })
}
