//! The `[http]` role: the profile/firmware server (`provd-httpd`) on the control plane, one
//! plain HTTP listener and one HTTPS listener (`provd-web`), both serving the same router.

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::{Context, Result};
use provd_config::{ClientAuthMode, HttpSettings, Policy};
use provd_devices::DeviceView;
use provd_httpd::Httpd;
use provd_web::{ClientAuth, Limits, ServeOptions, TlsFiles, WebCounters};

use crate::control::ControlPlane;

/// What `serve` keeps of the running role.
#[derive(Debug)]
pub struct HttpRole {
    pub httpd: Arc<Httpd>,
    pub plain: Option<SocketAddr>,
    pub https: Option<SocketAddr>,
    pub web: Vec<Arc<WebCounters>>,
}

/// Loads templates and versions, binds the listeners (so the ready line follows), and spawns
/// the servers on the control plane.
pub fn start(
    h: &HttpSettings,
    policy: &Policy,
    devices: Option<Arc<DeviceView>>,
    cp: &mut ControlPlane,
) -> Result<HttpRole> {
    let httpd = Arc::new(Httpd::new(policy, devices).context("[http]: profile classes")?);
    let limits = Limits {
        max_connections: h.max_connections,
        header_timeout: h.header_timeout,
        idle_timeout: h.idle_timeout,
        max_header_bytes: h.max_header_bytes,
    };
    let mut role = HttpRole {
        httpd: Arc::clone(&httpd),
        plain: None,
        https: None,
        web: Vec::new(),
    };
    let tls = match &h.https {
        Some(s) => Some((
            s.port,
            provd_web::server_config(&TlsFiles {
                cert: s.cert.clone(),
                key: s.key.clone(),
                client_ca: s.client_ca.clone(),
                client_auth: match s.client_auth {
                    ClientAuthMode::Off => ClientAuth::Off,
                    ClientAuthMode::Optional => ClientAuth::Optional,
                    ClientAuthMode::Required => ClientAuth::Required,
                },
            })
            .context("[http]: TLS")?,
        )),
        None => None,
    };
    let listeners = h
        .port
        .map(|p| (p, None))
        .into_iter()
        .chain(tls.map(|(p, c)| (p, Some(c))));
    for (port, tls) in listeners {
        let addr = SocketAddr::from((h.bind, port));
        let listener = cp
            .block_on(tokio::net::TcpListener::bind(addr))
            .with_context(|| format!("[http]: binding TCP {addr}"))?;
        let local = listener.local_addr()?;
        let counters = Arc::new(WebCounters::default());
        role.web.push(Arc::clone(&counters));
        if tls.is_some() {
            role.https = Some(local);
        } else {
            role.plain = Some(local);
        }
        let opts = ServeOptions {
            limits: limits.clone(),
            counters,
            access_log: h.access_log,
        };
        let app = httpd.router();
        let stopping = cp.stopping();
        cp.spawn(if tls.is_some() { "https" } else { "http" }, async move {
            provd_web::serve_with(listener, tls, app, opts, stopping)
                .await
                .with_context(|| format!("serving {local}"))
        });
    }
    Ok(role)
}
