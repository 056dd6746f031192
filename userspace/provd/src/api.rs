//! The REST API (`[api]`) as a role: its listener bound on the control plane, provd-api's
//! router served on it (HTTPS, and mutual TLS, when configured), with the web UI (provd-ui)
//! at `/ui/` beside it unless `ui = false`.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use provd_config::ApiSettings;
use provd_role::{ControlPlane, Counters, Role, Task};
use provd_web::{ClientAuth, Limits, ServeOptions, TlsFiles, WebCounters};

/// The API's listener.
#[derive(Debug)]
pub struct ApiRole {
    local: SocketAddr,
    tls: bool,
    counters: Arc<WebCounters>,
    task: Task,
}

/// Binds `[api]`'s listener and serves the API on it.
pub fn start(
    cp: &ControlPlane,
    a: &ApiSettings,
    services: provd_api::Services,
    settings: provd_api::ApiSettings,
) -> Result<ApiRole> {
    let tls = match &a.tls {
        Some((cert, key)) => Some(
            provd_web::server_config(&TlsFiles {
                cert: cert.clone(),
                key: key.clone(),
                client_ca: a.client_ca.clone(),
                client_auth: if a.client_ca.is_some() {
                    ClientAuth::Required
                } else {
                    ClientAuth::Off
                },
            })
            .context("[api]: TLS")?,
        ),
        None => None,
    };
    let addr = SocketAddr::from((a.bind, a.port));
    let listener = cp
        .block_on(provd_web::bind(addr))
        .with_context(|| format!("[api]: binding TCP {addr}"))?;
    let local = listener.local_addr()?;
    let counters = Arc::new(WebCounters::default());
    let opts = ServeOptions {
        limits: Limits::default(),
        counters: Arc::clone(&counters),
        access_log: true,
    };
    let api = provd_api::router(services, settings);
    // The UI calls the API in process, so it is one more client of the same roles, scopes
    // and audit; both share the listener.
    let app = if a.ui {
        let ui = provd_ui::router(
            api.clone(),
            provd_ui::UiSettings {
                secure_cookie: tls.is_some(),
                ..provd_ui::UiSettings::default()
            },
        );
        api.merge(ui)
    } else {
        api
    };
    let stopping = cp.stopping();
    let is_tls = tls.is_some();
    let task = cp.spawn("api", async move {
        provd_web::serve_with(listener, tls, app, opts, stopping)
            .await
            .with_context(|| format!("serving the API on {local}"))
    });
    Ok(ApiRole {
        local,
        tls: is_tls,
        counters,
        task,
    })
}

impl Role for ApiRole {
    fn name(&self) -> &'static str {
        "api"
    }

    fn listening(&self) -> String {
        format!(
            "{}://{}",
            if self.tls { "https" } else { "http" },
            self.local
        )
    }

    fn counters(&self) -> Counters {
        self.counters
            .entries()
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v))
            .collect()
    }

    fn finished(&self) -> bool {
        self.task.is_finished()
    }

    fn stop(self: Box<Self>, grace: Duration) -> Result<()> {
        self.task.join_draining(grace)
    }
}
