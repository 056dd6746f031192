//! One simulated CPE: its sessions with the ACS (Inform, its own TransferComplete, the empty
//! POST, the ACS's requests, 204), HTTP digest to the ACS with cookies kept for the session,
//! periodic informs, the HTTP connection-request listener (digest, as TR-069 requires), the
//! UDP connection-request listener (TR-111 signature, timestamp and id checks) and the STUN
//! Binding requests that tell the ACS where to send those.
//!
//! Everything the device does is printed as one JSON line on stdout, which the e2e suite reads.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use provd_acs::auth::{self, Credentials, Digest, Verdict};
use provd_acs::cr;
use provd_cwmp::{
    Envelope, EventStruct, Inform, Limits, ParameterValue, Rpc, TransferComplete, TransferFault,
    Version,
};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, UdpSocket};
use tokio::sync::{Mutex, Notify};

use crate::http::{Conn, split_url};
use crate::model::{After, Model};

#[derive(Debug, Clone)]
pub struct Options {
    pub acs_user: String,
    pub acs_pass: String,
    pub cr_user: String,
    pub cr_pass: String,
    pub cr_host: String,
    pub cr_port: u16,
    pub udp_port: Option<u16>,
    pub stun: Option<SocketAddr>,
    pub version: Version,
    pub periodic: Option<u32>,
    /// A local change (as a user would make in the web UI): parameter, value, after seconds.
    pub change: Option<(String, String, u64)>,
}

pub fn log(v: serde_json::Value) {
    println!("{v}");
}

fn now_rfc3339() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let days = secs / 86_400;
    let (h, m, s) = ((secs / 3600) % 24, (secs / 60) % 60, secs % 60);
    // Civil date from days since the epoch (Howard Hinnant's algorithm).
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let mo = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(mo <= 2);
    format!("{y:04}-{mo:02}-{d:02}T{h:02}:{m:02}:{s:02}Z")
}

#[derive(Debug)]
pub struct Device {
    pub model: Mutex<Model>,
    pub opts: Options,
    /// Wakes the session loop: a connection request arrived.
    pub wake: Notify,
    pub woken_by: std::sync::Mutex<Option<&'static str>>,
}

struct State {
    events: Vec<EventStruct>,
    transfer: Option<TransferComplete>,
    next_id: u32,
}

impl Device {
    fn name(&self, m: &Model) -> String {
        format!("{}-{}-{}", m.id.oui, m.id.product_class, m.id.serial_number)
    }

    /// Runs sessions until `deadline`.
    pub async fn run(self: Arc<Self>, deadline: tokio::time::Instant) -> Result<()> {
        {
            let mut m = self.model.lock().await;
            let url = format!(
                "http://{}:{}/cr/{}",
                self.opts.cr_host, self.opts.cr_port, m.id.serial_number
            );
            m.set_local("ManagementServer.ConnectionRequestURL", &url);
            m.set_local(
                "ManagementServer.ConnectionRequestUsername",
                &self.opts.cr_user,
            );
            m.set_local(
                "ManagementServer.ConnectionRequestPassword",
                &self.opts.cr_pass,
            );
            m.set_local("ManagementServer.Username", &self.opts.acs_user);
            m.set_local("ManagementServer.Password", &self.opts.acs_pass);
            if let Some(p) = self.opts.periodic {
                m.set_local("ManagementServer.PeriodicInformInterval", &p.to_string());
            }
        }
        let cr = TcpListener::bind(("0.0.0.0", self.opts.cr_port))
            .await
            .with_context(|| {
                format!("binding the connection-request port {}", self.opts.cr_port)
            })?;
        tokio::spawn(Arc::clone(&self).http_cr(cr));
        if let Some(p) = self.opts.udp_port {
            let sock = Arc::new(
                UdpSocket::bind(("0.0.0.0", p))
                    .await
                    .with_context(|| format!("binding UDP {p}"))?,
            );
            tokio::spawn(Arc::clone(&self).udp_cr(Arc::clone(&sock)));
            if let Some(stun) = self.opts.stun {
                tokio::spawn(Arc::clone(&self).stun(sock, stun));
            }
        }
        let change_at = self
            .opts
            .change
            .as_ref()
            .map(|(_, _, secs)| tokio::time::Instant::now() + Duration::from_secs(*secs));
        let mut change_done = change_at.is_none();
        let mut st = State {
            events: vec![ev("0 BOOTSTRAP", ""), ev("1 BOOT", "")],
            transfer: None,
            next_id: 1,
        };
        loop {
            if tokio::time::Instant::now() >= deadline {
                return Ok(());
            }
            let after = match self.session(&mut st).await {
                Ok(a) => a,
                Err(e) => {
                    let name = self.name(&*self.model.lock().await);
                    log(
                        serde_json::json!({"device": name, "event": "session_failed", "error": format!("{e:#}")}),
                    );
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    continue;
                }
            };
            // What the ACS asked for, now that the session is over.
            let mut again = false;
            for a in after {
                match a {
                    After::Reboot { command_key } => {
                        st.events = vec![ev("1 BOOT", ""), ev("M Reboot", &command_key)];
                        again = true;
                    }
                    After::FactoryReset => {
                        self.model.lock().await.factory_reset();
                        st.events = vec![ev("0 BOOTSTRAP", ""), ev("1 BOOT", "")];
                        again = true;
                    }
                    After::Download(d) => {
                        let start = now_rfc3339();
                        let result = self.fetch(&d).await;
                        let name = self.name(&*self.model.lock().await);
                        let fault = match &result {
                            Ok((bytes, version)) => {
                                log(
                                    serde_json::json!({"device": name, "event": "download", "url": d.url, "bytes": bytes, "version": version}),
                                );
                                if let Some(v) = version {
                                    self.model
                                        .lock()
                                        .await
                                        .set_local("DeviceInfo.SoftwareVersion", v);
                                }
                                TransferFault::default()
                            }
                            Err(e) => {
                                log(
                                    serde_json::json!({"device": name, "event": "download_failed", "url": d.url, "error": format!("{e:#}")}),
                                );
                                TransferFault {
                                    code: 9016,
                                    string: provd_cwmp::fault_string(9016).into(),
                                }
                            }
                        };
                        st.transfer = Some(TransferComplete {
                            command_key: d.command_key.clone(),
                            fault,
                            start_time: start,
                            complete_time: now_rfc3339(),
                        });
                        // A firmware image is applied with a reboot.
                        st.events = vec![
                            ev("1 BOOT", ""),
                            ev("7 TRANSFER COMPLETE", ""),
                            ev("M Download", &d.command_key),
                        ];
                        again = true;
                    }
                    After::AcsUrlChanged => {
                        st.events = vec![ev("0 BOOTSTRAP", "")];
                        again = true;
                    }
                    After::ScheduleInform { delay, command_key } => {
                        tokio::time::sleep(Duration::from_secs(u64::from(delay))).await;
                        st.events =
                            vec![ev("3 SCHEDULED", ""), ev("M ScheduleInform", &command_key)];
                        again = true;
                    }
                }
            }
            if again {
                continue;
            }
            let periodic = {
                let m = self.model.lock().await;
                m.get("ManagementServer.PeriodicInformInterval")
                    .and_then(|v| v.parse::<u64>().ok())
                    .unwrap_or(300)
                    .max(1)
            };
            let periodic_sleep = tokio::time::sleep(Duration::from_secs(periodic));
            tokio::pin!(periodic_sleep);
            loop {
                let change_sleep = tokio::time::sleep_until(match (change_at, change_done) {
                    (Some(t), false) => t,
                    _ => deadline,
                });
                tokio::select! {
                    () = &mut periodic_sleep => {
                        st.events = vec![ev("2 PERIODIC", "")];
                    }
                    () = change_sleep, if !change_done => {
                        change_done = true;
                        let (name, value, _) = self.opts.change.clone().unwrap_or_default();
                        let mut m = self.model.lock().await;
                        let notification = m.params.get(&name).map_or(0, |p| p.notification);
                        if let Some(p) = m.params.get_mut(&name) {
                            p.value = value.clone();
                        }
                        log(serde_json::json!({"device": self.name(&m), "event": "local_change", "name": name, "value": value, "notification": notification}));
                        // Active notification: tell the ACS now; passive: with the next Inform.
                        if notification == 2 {
                            st.events = vec![ev("4 VALUE CHANGE", "")];
                        } else {
                            continue;
                        }
                    }
                    () = self.wake.notified() => {
                        st.events = vec![ev("6 CONNECTION REQUEST", "")];
                    }
                    () = tokio::time::sleep_until(deadline) => return Ok(()),
                }
                break;
            }
        }
    }

    fn inform(&self, m: &Model, st: &State) -> Inform {
        let mut parameters: Vec<ParameterValue> = [
            "DeviceInfo.HardwareVersion",
            "DeviceInfo.SoftwareVersion",
            "DeviceInfo.ProvisioningCode",
            "ManagementServer.ConnectionRequestURL",
            "ManagementServer.ParameterKey",
            "ManagementServer.UDPConnectionRequestAddress",
        ]
        .iter()
        .filter_map(|s| m.value(&format!("{}{s}", m.root)))
        .collect();
        // Parameters with notification on ride along (value change is reported by the event).
        for (k, p) in &m.params {
            if p.notification > 0 && !parameters.iter().any(|x| &x.name == k) {
                parameters.extend(m.value(k));
            }
        }
        Inform {
            device_id: m.id.clone(),
            events: st.events.clone(),
            max_envelopes: 1,
            current_time: now_rfc3339(),
            retry_count: 0,
            parameters,
        }
    }

    /// One session. Returns what the ACS asked to be done afterwards.
    async fn session(&self, st: &mut State) -> Result<Vec<After>> {
        let (url, name, inform) = {
            let m = self.model.lock().await;
            let url = m.get("ManagementServer.URL").unwrap_or_default().to_owned();
            (url, self.name(&m), self.inform(&m, st))
        };
        let (host, port, path) = split_url(&url)?;
        let mut conn = Conn::connect(&host, port).await?;
        let mut cookie: Option<String> = None;
        let mut authz: Option<String> = None;
        let mut nc = 0u32;
        let mut challenge: Option<String> = None;
        let mut after = Vec::new();
        let mut requests = Vec::new();
        let events: Vec<String> = st.events.iter().map(|e| e.code.clone()).collect();
        let v = self.opts.version;
        let mut id = || {
            st.next_id += 1;
            Some(format!("cpe-{}", st.next_id))
        };
        let mut body = Envelope::new(v, id(), Rpc::Inform(Box::new(inform))).to_xml();
        let mut phase = 0u8; // 0: Inform sent, 1: our requests, 2: ACS requests
        let mut pending_tc = st.transfer.clone();
        let mut statuses = Vec::new();
        let mut hops = 0;
        loop {
            hops += 1;
            if hops > 200 {
                bail!("session too long");
            }
            // Digest: answer the last challenge with a growing nonce count.
            if let Some(ch) = &challenge {
                nc += 1;
                authz = auth::authorize(
                    ch,
                    &self.opts.acs_user,
                    &self.opts.acs_pass,
                    "POST",
                    &path,
                    nc,
                    &format!("{:08x}", nc * 7919),
                );
            }
            let mut headers: Vec<(&str, &str)> = vec![
                ("Content-Type", "text/xml; charset=\"utf-8\""),
                ("SOAPAction", ""),
            ];
            if let Some(c) = &cookie {
                headers.push(("Cookie", c));
            }
            if let Some(a) = &authz {
                headers.push(("Authorization", a));
            }
            let resp = conn
                .request("POST", &path, &headers, body.as_bytes())
                .await?;
            statuses.push(resp.status);
            if let Some(c) = resp.header("set-cookie") {
                cookie = Some(c.split(';').next().unwrap_or("").to_owned());
            }
            match resp.status {
                401 => {
                    let ch = resp
                        .headers_named("www-authenticate")
                        .find(|h| h.starts_with("Digest "))
                        .map(str::to_owned);
                    let stale = ch.as_deref().is_some_and(|c| c.contains("stale=true"));
                    if challenge.is_some() && !stale {
                        log(
                            serde_json::json!({"device": name, "event": "auth_refused", "url": url}),
                        );
                        bail!("the ACS refused our credentials");
                    }
                    challenge = Some(ch.context("401 without a Digest challenge")?);
                    nc = 0;
                    continue;
                }
                204 => break,
                200 => {}
                s => bail!("HTTP {s} from the ACS"),
            }
            let env =
                Envelope::parse(&resp.body, &Limits::default()).context("the ACS's envelope")?;
            anyhow::ensure!(
                env.version == v,
                "the ACS answered in cwmp-1-{} to our cwmp-1-{}",
                env.version.0,
                v.0
            );
            match (&env.body, phase) {
                (Rpc::InformResponse { .. }, 0) | (Rpc::TransferCompleteResponse, 1) => {
                    phase = 1;
                    if let Some(tc) = pending_tc.take() {
                        body = Envelope::new(v, id(), Rpc::TransferComplete(tc)).to_xml();
                        st.transfer = None;
                    } else {
                        body = String::new();
                        phase = 2;
                    }
                }
                (Rpc::Fault(f), _) if phase < 2 => bail!("the ACS answered with fault {}", f.code),
                (rpc, 2) => {
                    requests.push(rpc.method());
                    let answer = self.model.lock().await.answer(rpc, &mut after);
                    body = Envelope::new(v, env.id.clone(), answer).to_xml();
                }
                (rpc, p) => bail!("unexpected {} in phase {p}", rpc.method()),
            }
        }
        st.events.clear();
        log(serde_json::json!({
            "device": name, "event": "session", "url": url, "events": events,
            "requests": requests, "statuses": statuses, "cwmp": format!("1.{}", v.0),
        }));
        Ok(after)
    }

    async fn fetch(&self, d: &provd_cwmp::Download) -> Result<(usize, Option<String>)> {
        let (host, port, path) = split_url(&d.url)?;
        let mut c = Conn::connect(&host, port).await?;
        let r = c
            .request("GET", &path, &[("Connection", "close")], b"")
            .await?;
        anyhow::ensure!(r.status == 200, "HTTP {} for {}", r.status, d.url);
        if d.file_size > 0 {
            anyhow::ensure!(
                r.body.len() == d.file_size as usize,
                "{} bytes, FileSize says {}",
                r.body.len(),
                d.file_size
            );
        }
        // Our test images start with a `VERSION=x.y.z` line: the version the device then runs.
        let first_line = r.body.split(|b| *b == b'\n').next().unwrap_or_default();
        let version = std::str::from_utf8(&first_line[..first_line.len().min(64)])
            .ok()
            .map(str::trim)
            .and_then(|l| l.strip_prefix("VERSION="))
            .map(str::to_owned);
        Ok((r.body.len(), version))
    }

    /// The HTTP connection-request listener: GET with Digest (realm "Connection Request").
    async fn http_cr(self: Arc<Self>, l: TcpListener) {
        let (user, pass) = (self.opts.cr_user.clone(), self.opts.cr_pass.clone());
        let digest = Arc::new(Digest::new(
            "Connection Request".into(),
            [3; 32],
            60,
            Credentials::new([(user, pass)]),
        ));
        loop {
            let Ok((s, _)) = l.accept().await else {
                continue;
            };
            let me = Arc::clone(&self);
            let digest = Arc::clone(&digest);
            tokio::spawn(async move {
                let mut r = BufReader::new(s);
                let mut first = String::new();
                let mut authz = None;
                if r.read_line(&mut first).await.is_err() {
                    return;
                }
                loop {
                    let mut l = String::new();
                    if r.read_line(&mut l).await.unwrap_or(0) == 0 || l.trim().is_empty() {
                        break;
                    }
                    if let Some((k, v)) = l.split_once(':')
                        && k.eq_ignore_ascii_case("authorization")
                    {
                        authz = Some(v.trim().to_owned());
                    }
                }
                let target = first.split_whitespace().nth(1).unwrap_or("/").to_owned();
                let now = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(0, |d| d.as_secs()) as u32;
                let verdict = digest.check(now, "GET", &target, authz.as_deref());
                let name = me.name(&*me.model.lock().await);
                let resp = match verdict {
                    Verdict::Ok { .. } => {
                        log(
                            serde_json::json!({"device": name, "event": "connection_request", "kind": "http"}),
                        );
                        *me.woken_by.lock().unwrap_or_else(|p| p.into_inner()) = Some("http");
                        me.wake.notify_one();
                        "HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                            .to_owned()
                    }
                    v => {
                        if matches!(v, Verdict::Denied { .. }) {
                            log(
                                serde_json::json!({"device": name, "event": "connection_request_refused", "kind": "http"}),
                            );
                        }
                        let ch = digest
                            .challenges(now, false)
                            .into_iter()
                            .map(|c| format!("WWW-Authenticate: {c}\r\n"))
                            .collect::<String>();
                        format!("HTTP/1.1 401 Unauthorized\r\n{ch}Content-Length: 0\r\n\r\n")
                    }
                };
                let mut s = r.into_inner();
                let _ = s.write_all(resp.as_bytes()).await;
                // The ACS answers a 401 on a new connection or this one; read one more request.
                let _ = s.shutdown().await;
            });
        }
    }

    /// UDP connection requests (TR-069 Annex G): signature, fresh timestamp, unseen id.
    async fn udp_cr(self: Arc<Self>, sock: Arc<UdpSocket>) {
        let mut buf = [0u8; 1500];
        let mut last_ts = 0u64;
        let mut seen = std::collections::VecDeque::<u32>::new();
        loop {
            let Ok((n, _)) = sock.recv_from(&mut buf).await else {
                continue;
            };
            if let Some(mapped) = cr::parse_binding_response(&buf[..n]) {
                let mut m = self.model.lock().await;
                if m.get("ManagementServer.UDPConnectionRequestAddress")
                    != Some(&mapped.to_string())
                {
                    let name = format!("{}ManagementServer.UDPConnectionRequestAddress", m.root);
                    m.set(&name, &mapped.to_string(), "string", false);
                    log(
                        serde_json::json!({"device": self.name(&m), "event": "stun_mapped", "address": mapped.to_string()}),
                    );
                }
                continue;
            }
            let name = self.name(&*self.model.lock().await);
            let Some(req) = cr::UdpRequest::parse(&buf[..n]) else {
                log(serde_json::json!({"device": name, "event": "udp_junk"}));
                continue;
            };
            let ok = req.un == self.opts.cr_user
                && req.verify(&self.opts.cr_pass)
                && req.ts >= last_ts
                && !seen.contains(&req.id);
            if !ok {
                if !seen.contains(&req.id) {
                    log(
                        serde_json::json!({"device": name, "event": "connection_request_refused", "kind": "udp"}),
                    );
                }
                continue;
            }
            last_ts = req.ts;
            seen.push_back(req.id);
            if seen.len() > 64 {
                seen.pop_front();
            }
            log(
                serde_json::json!({"device": name, "event": "connection_request", "kind": "udp", "id": req.id}),
            );
            self.wake.notify_one();
        }
    }

    /// STUN Binding requests from the UDP connection-request port (TR-111), every 2 s.
    async fn stun(self: Arc<Self>, sock: Arc<UdpSocket>, server: SocketAddr) {
        let mut n = 0u32;
        loop {
            n += 1;
            let mut t = [0u8; 12];
            t[..4].copy_from_slice(&n.to_be_bytes());
            t[4..8].copy_from_slice(&self.opts.cr_port.to_be_bytes().repeat(2));
            let user = self.name(&*self.model.lock().await);
            let _ = sock.send_to(&cr::binding_request(&t, &user), server).await;
            tokio::time::sleep(Duration::from_secs(2)).await;
        }
    }
}

fn ev(code: &str, key: &str) -> EventStruct {
    EventStruct {
        code: code.into(),
        command_key: key.into(),
    }
}
