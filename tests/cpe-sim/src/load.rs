//! Load mode: complete Inform sessions (Inform -> InformResponse, empty POST -> 204) over
//! keep-alive connections, as fast as the ACS answers, for known devices in turn.
//!
//! Each connection runs one session at a time; the Inform is a fixed template (a boot Inform
//! of a TR-181 device, the parameters a real one sends) with the serial number patched in
//! place, so generating load costs little next to serving it. Bounded by `--seconds` and
//! `--max-sessions`. Prints `RESULT acs-load sessions=N sessions_per_s=R errors=E p50_ms=L
//! p99_ms=L`.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use provd_cwmp::{Envelope, Inform, Rpc, Version};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::http::split_url;

#[derive(Debug, clap::Args)]
pub struct Args {
    #[arg(long)]
    pub acs: String,
    #[arg(long, default_value_t = 64)]
    pub connections: u32,
    #[arg(long, default_value_t = 10.0)]
    pub seconds: f64,
    /// Devices cycled through (serials PREFIX00000000 ..), as seeded into the ACS.
    #[arg(long, default_value_t = 1000)]
    pub devices: u32,
    #[arg(long, default_value = "00D09E")]
    pub oui: String,
    #[arg(long, default_value = "SIM")]
    pub product_class: String,
    #[arg(long, default_value = "SEED")]
    pub serial_prefix: String,
    /// Stop after this many sessions (0: no limit but time).
    #[arg(long, default_value_t = 0)]
    pub max_sessions: u64,
    /// Generator threads.
    #[arg(long, default_value_t = 1)]
    pub threads: usize,
}

/// The Inform template with an 8-digit placeholder for the device number.
fn template(a: &Args) -> (Vec<u8>, usize) {
    let serial = format!("{}{}", a.serial_prefix, "99999999");
    let inform = Inform::simulated(
        &a.oui,
        &a.product_class,
        &serial,
        "2 PERIODIC",
        "http://10.0.0.1:7547/cr".into(),
    );
    let xml = Envelope::new(
        Version::V1_2,
        Some("1".into()),
        Rpc::Inform(Box::new(inform)),
    )
    .to_xml();
    let at = xml.find(&serial).expect("the serial is in the envelope") + a.serial_prefix.len();
    (xml.into_bytes(), at)
}

pub fn run(a: Args) -> Result<()> {
    let (host, port, path) = split_url(&a.acs)?;
    let (tpl, at) = template(&a);
    let rt = if a.threads <= 1 {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?
    } else {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(a.threads)
            .enable_all()
            .build()?
    };
    let stop = Arc::new(AtomicBool::new(false));
    let sessions = Arc::new(AtomicU64::new(0));
    let errors = Arc::new(AtomicU64::new(0));
    let start = Instant::now();
    let lat = rt.block_on(async {
        let mut tasks = Vec::new();
        for c in 0..a.connections {
            let (host, path, tpl) = (host.clone(), path.clone(), tpl.clone());
            let (stop, sessions, errors) = (
                Arc::clone(&stop),
                Arc::clone(&sessions),
                Arc::clone(&errors),
            );
            let (devices, conns, max) = (a.devices.max(1), a.connections, a.max_sessions);
            tasks.push(tokio::spawn(async move {
                let mut lat = Vec::new();
                let mut body = tpl;
                let mut i = c % devices;
                let mut conn: Option<Raw> = None;
                while !stop.load(Ordering::Relaxed) {
                    if conn.is_none() {
                        match Raw::connect(&host, port).await {
                            Ok(x) => conn = Some(x),
                            Err(_) => {
                                errors.fetch_add(1, Ordering::Relaxed);
                                tokio::time::sleep(Duration::from_millis(50)).await;
                                continue;
                            }
                        }
                    }
                    let Some(cn) = conn.as_mut() else { continue };
                    body[at..at + 8].copy_from_slice(format!("{i:08}").as_bytes());
                    let t = Instant::now();
                    match cn.session(&host, port, &path, &body).await {
                        Ok(()) => {
                            let n = sessions.fetch_add(1, Ordering::Relaxed) + 1;
                            if lat.len() < 100_000 {
                                lat.push(t.elapsed().as_micros() as u32);
                            }
                            if max > 0 && n >= max {
                                stop.store(true, Ordering::Relaxed);
                            }
                        }
                        Err(_) => {
                            errors.fetch_add(1, Ordering::Relaxed);
                            conn = None;
                        }
                    }
                    i = (i + conns) % devices;
                }
                lat
            }));
        }
        let deadline = tokio::time::sleep(Duration::from_secs_f64(a.seconds));
        tokio::pin!(deadline);
        loop {
            tokio::select! {
                () = &mut deadline => break,
                () = tokio::time::sleep(Duration::from_millis(50)) => {
                    if stop.load(Ordering::Relaxed) { break; }
                }
            }
        }
        stop.store(true, Ordering::Relaxed);
        let mut all = Vec::new();
        for t in tasks {
            if let Ok(Ok(l)) = tokio::time::timeout(Duration::from_secs(5), t).await {
                all.extend(l);
            }
        }
        all
    });
    let secs = start.elapsed().as_secs_f64();
    let n = sessions.load(Ordering::Relaxed);
    let mut lat = lat;
    lat.sort_unstable();
    let pct = |p: f64| {
        lat.get(((lat.len() as f64 * p) as usize).min(lat.len().saturating_sub(1)))
            .map_or(0.0, |v| f64::from(*v) / 1000.0)
    };
    println!(
        "RESULT acs-load sessions={n} sessions_per_s={:.0} errors={} p50_ms={:.3} p99_ms={:.3} seconds={secs:.2}",
        n as f64 / secs,
        errors.load(Ordering::Relaxed),
        pct(0.5),
        pct(0.99)
    );
    rt.shutdown_timeout(Duration::from_secs(1));
    Ok(())
}

/// One keep-alive connection with a reusable buffer; responses are parsed in place (status,
/// Content-Length, the session cookie), which is all a session needs.
struct Raw {
    s: TcpStream,
    buf: Vec<u8>,
    out: Vec<u8>,
}

fn find(h: &[u8], needle: &[u8]) -> Option<usize> {
    h.windows(needle.len())
        .position(|w| w.eq_ignore_ascii_case(needle))
}

impl Raw {
    async fn connect(host: &str, port: u16) -> Result<Raw> {
        let s = TcpStream::connect((host, port)).await?;
        s.set_nodelay(true)?;
        Ok(Raw {
            s,
            buf: Vec::with_capacity(8192),
            out: Vec::with_capacity(8192),
        })
    }

    /// Sends a POST, reads the answer; returns (status, cookie, whether the body holds an
    /// InformResponse).
    async fn post(
        &mut self,
        host: &str,
        port: u16,
        path: &str,
        cookie: Option<&[u8]>,
        body: &[u8],
    ) -> Result<(u16, Option<Vec<u8>>, bool)> {
        use std::io::Write;
        self.out.clear();
        write!(
            self.out,
            "POST {path} HTTP/1.1\r\nHost: {host}:{port}\r\nContent-Type: text/xml\r\nContent-Length: {}\r\n",
            body.len()
        )?;
        if let Some(c) = cookie {
            self.out.extend_from_slice(b"Cookie: ");
            self.out.extend_from_slice(c);
            self.out.extend_from_slice(b"\r\n");
        }
        self.out.extend_from_slice(b"\r\n");
        self.out.extend_from_slice(body);
        self.s.write_all(&self.out).await?;
        // Read until the head is complete, then the body by Content-Length.
        self.buf.clear();
        let head_end = loop {
            if let Some(i) = find(&self.buf, b"\r\n\r\n") {
                break i + 4;
            }
            let at = self.buf.len();
            self.buf.resize(at + 4096, 0);
            let n = self.s.read(&mut self.buf[at..]).await?;
            self.buf.truncate(at + n);
            anyhow::ensure!(n > 0, "connection closed");
        };
        let head = &self.buf[..head_end];
        let status: u16 = std::str::from_utf8(head.get(9..12).unwrap_or_default())?.parse()?;
        let len = find(head, b"\r\ncontent-length:")
            .map(|i| {
                let v = &head[i + 17..];
                let e = v.iter().position(|b| *b == b'\r').unwrap_or(v.len());
                std::str::from_utf8(&v[..e])
                    .ok()
                    .and_then(|s| s.trim().parse::<usize>().ok())
                    .unwrap_or(0)
            })
            .unwrap_or(0);
        let cookie = find(head, b"\r\nset-cookie:").map(|i| {
            let v = &head[i + 13..];
            let e = v
                .iter()
                .position(|b| *b == b';' || *b == b'\r')
                .unwrap_or(v.len());
            v[..e].trim_ascii().to_vec()
        });
        while self.buf.len() < head_end + len {
            let at = self.buf.len();
            self.buf.resize(head_end + len, 0);
            let n = self.s.read(&mut self.buf[at..]).await?;
            self.buf.truncate(at + n);
            anyhow::ensure!(n > 0, "connection closed in a body");
        }
        let inform_response = find(&self.buf[head_end..], b"InformResponse").is_some();
        Ok((status, cookie, inform_response))
    }

    async fn session(&mut self, host: &str, port: u16, path: &str, inform: &[u8]) -> Result<()> {
        let (status, cookie, ok) = self.post(host, port, path, None, inform).await?;
        anyhow::ensure!(status == 200 && ok, "Inform: HTTP {status}");
        let cookie = cookie.context("no session cookie")?;
        let (status, _, _) = self.post(host, port, path, Some(&cookie), b"").await?;
        anyhow::ensure!(status == 204, "empty POST: HTTP {status}");
        Ok(())
    }
}
