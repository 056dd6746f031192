//! Waking a device now: connection requests over HTTP (digest, to its ConnectionRequestURL) and
//! UDP (TR-111), and the STUN binding server that learns where UDP ones go.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use anyhow::{Context, Result};
use axum::body::Bytes;
use axum::http::{StatusCode, header};
use provd_acs::DeviceKey;
use provd_acs::auth;
use provd_acs::cr;
use provd_role::clock;
use tokio::net::UdpSocket;

use crate::{Acsd, random_u64};

/// A connection request to one device, HTTP (to its ConnectionRequestURL, with digest) or UDP
/// (TR-111, to the address its STUN binding or its UDPConnectionRequestAddress gave), within
/// the per-device interval and the global rate. Returns what was sent, or the status and
/// reason it was not.
pub(crate) async fn wake(
    srv: &Acsd,
    key: &DeviceKey,
    udp: bool,
) -> std::result::Result<serde_json::Value, (StatusCode, serde_json::Value)> {
    let fail = |code, msg: String| Err((code, serde_json::json!({"error": msg})));
    let now = clock::unix_secs();
    let s = &srv.acs.settings;
    // Per-device interval, then the global rate.
    let (url, udp_addr) = {
        let Some(mut d) = srv.acs.store.devices.get_mut(key) else {
            return fail(StatusCode::NOT_FOUND, "no such device".into());
        };
        let cr_url = d.cr_url.as_deref().map(str::to_owned);
        let more = d.more();
        if s.cr_min_interval_secs > 0
            && more.last_connection_request != 0
            && (now as u32).saturating_sub(more.last_connection_request) < s.cr_min_interval_secs
        {
            return fail(
                StatusCode::TOO_MANY_REQUESTS,
                "connection request to this device too soon".into(),
            );
        }
        more.last_connection_request = now as u32;
        let udp = srv
            .stun
            .get(&srv.acs.store.display(key))
            .map(|a| a.to_string())
            .or_else(|| more.udp_cr.as_deref().map(str::to_owned));
        (cr_url, udp)
    };
    let allowed = srv
        .cr_limiter
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .take(clock::unix_millis());
    if !allowed {
        return fail(
            StatusCode::TOO_MANY_REQUESTS,
            "connection request rate limit".into(),
        );
    }
    if udp {
        let Some(addr) = udp_addr else {
            return fail(
                StatusCode::BAD_REQUEST,
                "no UDP connection request address known for this device".into(),
            );
        };
        let Some(sock) = &srv.udp else {
            return fail(
                StatusCode::BAD_REQUEST,
                "UDP connection requests need [acs] stun_port".into(),
            );
        };
        let id = srv.cr_id.fetch_add(1, Ordering::Relaxed) as u32;
        let cn = format!("{:016X}", random_u64());
        let msg = cr::udp_message(&addr, now, id, &s.cr_username, &cn, &s.cr_password);
        let Ok(dest) = addr.parse::<SocketAddr>() else {
            return fail(StatusCode::BAD_REQUEST, format!("bad address {addr:?}"));
        };
        // Sent three times: UDP may drop one, the CPE ignores repeated ids.
        for _ in 0..3 {
            if let Err(e) = sock.send_to(msg.as_bytes(), dest).await {
                return fail(StatusCode::BAD_REQUEST, format!("send to {dest}: {e}"));
            }
        }
        return Ok(serde_json::json!({"sent": "udp", "to": addr, "id": id}));
    }
    let Some(url) = url else {
        return fail(
            StatusCode::BAD_REQUEST,
            "the device reported no ConnectionRequestURL".into(),
        );
    };
    match http_connection_request(&url, &s.cr_username, &s.cr_password).await {
        Ok(status) => Ok(serde_json::json!({"sent": "http", "url": url, "status": status})),
        Err(e) => fail(StatusCode::BAD_GATEWAY, format!("{e:#}")),
    }
}

/// GET the ConnectionRequestURL; answer a Digest challenge once. Returns the final status.
async fn http_connection_request(url: &str, user: &str, pass: &str) -> Result<u16> {
    let uri: hyper::Uri = url.parse().context("ConnectionRequestURL")?;
    anyhow::ensure!(
        uri.scheme_str() == Some("http"),
        "only http:// connection request URLs"
    );
    let host = uri.host().context("no host")?.to_owned();
    let port = uri.port_u16().unwrap_or(80);
    let path = uri.path_and_query().map_or("/", |p| p.as_str()).to_owned();
    let mut authz: Option<String> = None;
    for attempt in 0..2 {
        let status_and_challenge = tokio::time::timeout(Duration::from_secs(5), async {
            let stream = tokio::net::TcpStream::connect((host.as_str(), port)).await?;
            let (mut send, conn) =
                hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream)).await?;
            tokio::spawn(conn);
            let mut req =
                hyper::Request::get(path.as_str()).header(header::HOST, format!("{host}:{port}"));
            if let Some(a) = &authz {
                req = req.header(header::AUTHORIZATION, a.as_str());
            }
            let resp = send
                .send_request(req.body(http_body_util::Empty::<Bytes>::new())?)
                .await?;
            let challenge = resp
                .headers()
                .get_all(header::WWW_AUTHENTICATE)
                .iter()
                .filter_map(|v| v.to_str().ok())
                .find(|v| v.starts_with("Digest "))
                .map(str::to_owned);
            anyhow::Ok((resp.status().as_u16(), challenge))
        })
        .await
        .context("connection request timed out")??;
        match status_and_challenge {
            (401, Some(ch)) if attempt == 0 => {
                let cnonce = format!("{:016x}", random_u64());
                authz = Some(
                    auth::authorize(&ch, user, pass, "GET", &path, 1, &cnonce)
                        .context("unusable digest challenge")?,
                );
            }
            (status, _) => return Ok(status),
        }
    }
    Ok(401)
}

pub(crate) async fn stun_loop(srv: Arc<Acsd>, sock: Arc<UdpSocket>) -> Result<()> {
    let mut buf = [0u8; 1500];
    loop {
        let (n, from) = match sock.recv_from(&mut buf).await {
            Ok(x) => x,
            Err(e) => {
                tracing::debug!(error = %e, "STUN recv");
                continue;
            }
        };
        let Some(req) = cr::parse_binding_request(&buf[..n]) else {
            continue;
        };
        let SocketAddr::V4(from4) = from else {
            continue;
        };
        if let Some(u) = req.username.filter(|u| u.len() <= 128)
            && (srv.stun.contains_key(&u) || srv.stun.len() < 10_000_000)
        {
            srv.stun.insert(u, from4);
        }
        let _ = sock
            .send_to(&cr::binding_response(&req.transaction, from4), from)
            .await;
    }
}
