//! The running ACS role: its listeners bound and served on the control plane, the STUN server
//! and housekeeping as tasks it keeps, a final snapshot when it stops.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use provd_config::AcsSettings;
use provd_role::{ControlPlane, Counters, Role, Task, clock};
use tokio::net::UdpSocket;

use crate::Acsd;

/// The ACS role as `serve` keeps it.
#[derive(Debug)]
pub struct AcsRole {
    acsd: Arc<Acsd>,
    cwmp_addrs: Vec<SocketAddr>,
    api_addr: SocketAddr,
    stun_addr: Option<SocketAddr>,
    /// The CWMP and task API listeners.
    listeners: Vec<Task>,
    /// STUN and housekeeping.
    tasks: Vec<Task>,
}

/// Restores the ACS state from `lease_dir/acs`, binds every listener `s` names (CWMP plain and
/// TLS, the task API, STUN) so that a port in use refuses the start, then serves them and runs
/// the housekeeping (idle sessions, nonces, snapshots every `snapshot_secs`) on `cp`.
/// `guard` wraps the task API's router before it is served: the binary puts it behind the
/// API's bearer tokens (`provd_api::guard`), so that it is no open door on loopback.
pub fn start(
    cp: &ControlPlane,
    s: &AcsSettings,
    lease_dir: &Path,
    guard: impl FnOnce(axum::Router) -> axum::Router,
) -> Result<AcsRole> {
    let mut acsd = Acsd::new(s, lease_dir.join("acs"))?;
    let udp = match s.stun_port {
        Some(p) => Some(Arc::new(
            cp.block_on(UdpSocket::bind((s.bind, p)))
                .with_context(|| format!("binding STUN {}:{p}", s.bind))?,
        )),
        None => None,
    };
    let stun_addr = udp.as_ref().and_then(|u| u.local_addr().ok());
    acsd.udp = udp.clone();
    let acsd = Arc::new(acsd);

    let tls = match &s.tls {
        Some((port, cert, key)) => Some((
            *port,
            provd_web::server_config(&provd_web::TlsFiles {
                cert: cert.clone(),
                key: key.clone(),
                client_ca: None,
                client_auth: provd_web::ClientAuth::Off,
            })
            .context("[acs] TLS")?,
        )),
        None => None,
    };
    let mut cwmp = Vec::new();
    let plain = std::iter::once(s.port)
        .chain(s.extra_ports.iter().copied())
        .map(|p| (p, None));
    let secure = tls.into_iter().map(|(p, c)| (p, Some(c)));
    for (port, tls) in plain.chain(secure) {
        let listener = cp
            .block_on(provd_web::bind(SocketAddr::from((s.bind, port))))
            .with_context(|| format!("binding the ACS on {}:{port}", s.bind))?;
        cwmp.push((listener, tls));
    }
    let api = cp
        .block_on(provd_web::bind(SocketAddr::from((
            s.admin_bind,
            s.admin_port,
        ))))
        .with_context(|| {
            format!(
                "binding the ACS task API on {}:{}",
                s.admin_bind, s.admin_port
            )
        })?;
    let api_addr = api.local_addr()?;

    // Every socket is bound: from here on nothing refuses the start.
    let mut role = AcsRole {
        acsd: Arc::clone(&acsd),
        cwmp_addrs: Vec::new(),
        api_addr,
        stun_addr,
        listeners: Vec::new(),
        tasks: Vec::new(),
    };
    for (listener, tls) in cwmp {
        role.cwmp_addrs.push(listener.local_addr()?);
        let app = acsd.cwmp_router();
        let opts = provd_web::ServeOptions {
            limits: provd_web::Limits {
                idle_timeout: Duration::from_secs(u64::from(s.session_timeout_secs).max(30)),
                ..provd_web::Limits::default()
            },
            counters: Arc::default(),
            access_log: false,
        };
        let stopping = cp.stopping();
        role.listeners.push(cp.spawn("acs-cwmp", async move {
            provd_web::serve_with(listener, tls, app, opts, stopping)
                .await
                .context("ACS listener")
        }));
    }
    let app = guard(acsd.task_api_router());
    let stopping = cp.stopping();
    role.listeners.push(cp.spawn("acs-api", async move {
        provd_web::serve(api, None, app, provd_web::Limits::default(), stopping)
            .await
            .context("ACS task API")
    }));
    if let Some(u) = udp {
        let srv = Arc::clone(&acsd);
        let stopping = cp.stopping();
        role.tasks.push(cp.spawn("acs-stun", async move {
            tokio::select! {
                () = stopping => Ok(()),
                r = crate::wake::stun_loop(srv, u) => r,
            }
        }));
    }
    let srv = Arc::clone(&acsd);
    let stopping = cp.stopping();
    let timeout = u64::from(s.session_timeout_secs);
    let snapshot_every = Duration::from_secs(u64::from(s.snapshot_secs));
    role.tasks.push(cp.spawn("acs-sweep", async move {
        housekeeping(srv, timeout, snapshot_every, stopping).await;
        Ok(())
    }));
    Ok(role)
}

/// Every second: idle sessions and nonces; every `snapshot_every`, a snapshot if anything
/// happened since the last one.
async fn housekeeping(
    srv: Arc<Acsd>,
    timeout: u64,
    snapshot_every: Duration,
    stopping: impl std::future::Future<Output = ()>,
) {
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    let mut stopping = std::pin::pin!(stopping);
    let mut last_snapshot = Instant::now();
    let mut last_seen = (u64::MAX, 0usize);
    loop {
        tokio::select! {
            () = &mut stopping => return,
            _ = tick.tick() => {}
        }
        srv.sweep(clock::unix_secs(), timeout);
        if last_snapshot.elapsed() >= snapshot_every {
            last_snapshot = Instant::now();
            let seen = srv.activity();
            if seen != last_seen {
                last_seen = seen;
                let s2 = Arc::clone(&srv);
                let r = tokio::task::spawn_blocking(move || s2.save_snapshot()).await;
                if let Ok(Err(e)) = r {
                    tracing::warn!(error = %e, "ACS snapshot failed");
                }
            }
        }
    }
}

impl AcsRole {
    /// The shell's state (for in-process use of its routers, and the counters).
    pub fn acsd(&self) -> &Arc<Acsd> {
        &self.acsd
    }

    /// Every CWMP listener's address: `port`, `extra_ports`, then the TLS port.
    pub fn cwmp_addrs(&self) -> &[SocketAddr] {
        &self.cwmp_addrs
    }

    /// The task API's address (`admin_bind`:`admin_port`).
    pub fn api_addr(&self) -> SocketAddr {
        self.api_addr
    }

    /// The STUN server's address, if `stun_port` is set.
    pub fn stun_addr(&self) -> Option<SocketAddr> {
        self.stun_addr
    }
}

impl Role for AcsRole {
    fn name(&self) -> &'static str {
        "acs"
    }

    /// `cwmp=ADDR[,ADDR..] api=ADDR[ stun=ADDR]`: what the `acs ready` line says.
    fn listening(&self) -> String {
        let cwmp: Vec<String> = self.cwmp_addrs.iter().map(|a| a.to_string()).collect();
        format!(
            "cwmp={} api={}{}",
            cwmp.join(","),
            self.api_addr,
            self.stun_addr
                .map(|s| format!(" stun={s}"))
                .unwrap_or_default()
        )
    }

    /// The ACS's counters, then open sessions and STUN bindings.
    fn counters(&self) -> Counters {
        let mut c: Counters = self
            .acsd
            .acs
            .counter_entries()
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v))
            .collect();
        c.push(("open_sessions".into(), self.acsd.open_sessions() as u64));
        c.push(("stun_bindings".into(), self.acsd.stun.len() as u64));
        c
    }

    fn metrics(&self, out: &mut dyn provd_role::metrics::MetricsSink) {
        self.acsd.metrics(out);
    }

    fn finished(&self) -> bool {
        self.listeners
            .iter()
            .chain(&self.tasks)
            .any(|t| t.is_finished())
    }

    /// Joins every task within `grace`, logs the counters and writes the final snapshot. A
    /// task still running after `grace` (a listener draining its connections, a periodic
    /// snapshot being written) is logged and left to the runtime's shutdown, not a failure;
    /// a task's error is. A snapshot that fails is logged, not returned: the journal still
    /// holds every acknowledged task.
    fn stop(self: Box<Self>, grace: Duration) -> Result<()> {
        let deadline = Instant::now() + grace;
        let mut result = Ok(());
        for t in self.listeners.into_iter().chain(self.tasks) {
            let r = t.join_draining(deadline.saturating_duration_since(Instant::now()));
            if result.is_ok() {
                result = r;
            }
        }
        tracing::info!(counters = %self.acsd.acs.counters_json(), "acs counters");
        match self.acsd.save_snapshot() {
            Ok(n) => tracing::info!(devices = n, "ACS snapshot written"),
            Err(e) => tracing::error!(error = %e, "ACS snapshot failed"),
        }
        result
    }
}
