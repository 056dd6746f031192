//! The `[http]` role: one plain HTTP listener and one HTTPS listener (`provd-web`), both
//! serving the same [`Httpd`] router, as tasks on the control plane.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use provd_config::{ClientAuthMode, HttpSettings, Policy};
use provd_devices::DeviceView;
use provd_role::{ControlPlane, Counters, Role, Task};
use provd_web::{ClientAuth, Limits, ServeOptions, TlsFiles, WebCounters};

use crate::Httpd;

/// The running profile role: its service, where it listens, and its listener tasks.
#[derive(Debug)]
pub struct HttpRole {
    httpd: Arc<Httpd>,
    plain: Option<SocketAddr>,
    https: Option<SocketAddr>,
    /// Per listener: `http` or `https`, its counters, its task.
    listeners: Vec<(&'static str, Arc<WebCounters>, Task)>,
}

/// Loads templates and versions, binds the listeners `h` names (so a port in use refuses the
/// start, and the ready line follows), and serves them on the control plane. `devices`: lease
/// facts from the DHCP side, when it runs in the same process; `catalog`: the store's device
/// records (`None`: the config's `[[subscriber]]` tables).
pub fn start(
    cp: &ControlPlane,
    h: &HttpSettings,
    policy: &Policy,
    devices: Option<Arc<DeviceView>>,
    catalog: Option<Arc<provd_devices::catalog::Catalog>>,
) -> Result<HttpRole> {
    let mut httpd = Httpd::new(policy, devices).context("[http]: profile classes")?;
    if let Some(c) = catalog {
        httpd = httpd.with_catalog(c);
    }
    let httpd = Arc::new(httpd);
    let limits = Limits {
        max_connections: h.max_connections,
        header_timeout: h.header_timeout,
        idle_timeout: h.idle_timeout,
        max_header_bytes: h.max_header_bytes,
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
    // Bind every listener before serving any: a second port in use refuses the start with no
    // task left running.
    let mut bound = Vec::new();
    let wanted = h
        .port
        .map(|p| (p, None))
        .into_iter()
        .chain(tls.map(|(p, c)| (p, Some(c))));
    for (port, tls) in wanted {
        let addr = SocketAddr::from((h.bind, port));
        let listener = cp
            .block_on(provd_web::bind(addr))
            .with_context(|| format!("[http]: binding TCP {addr}"))?;
        bound.push((listener.local_addr()?, listener, tls));
    }
    let mut role = HttpRole {
        httpd: Arc::clone(&httpd),
        plain: None,
        https: None,
        listeners: Vec::new(),
    };
    for (local, listener, tls) in bound {
        let name = if tls.is_some() {
            role.https = Some(local);
            "https"
        } else {
            role.plain = Some(local);
            "http"
        };
        let counters = Arc::new(WebCounters::default());
        let opts = ServeOptions {
            limits: limits.clone(),
            counters: Arc::clone(&counters),
            access_log: h.access_log,
        };
        let app = httpd.router();
        let stopping = cp.stopping();
        let task = cp.spawn(name, async move {
            provd_web::serve_with(listener, tls, app, opts, stopping)
                .await
                .with_context(|| format!("serving {local}"))
        });
        role.listeners.push((name, counters, task));
    }
    Ok(role)
}

impl HttpRole {
    /// The service, for what the control socket asks (`provd http status MAC`).
    pub fn httpd(&self) -> &Arc<Httpd> {
        &self.httpd
    }

    /// The plain HTTP listener's address, if `[http].port` is set.
    pub fn plain_addr(&self) -> Option<SocketAddr> {
        self.plain
    }

    /// The HTTPS listener's address, if `[http.https]` is set.
    pub fn https_addr(&self) -> Option<SocketAddr> {
        self.https
    }
}

impl Role for HttpRole {
    fn name(&self) -> &'static str {
        "http"
    }

    /// `http MAC`: last seen, last profile version served, current version.
    fn query(&self, words: &[&str]) -> Option<String> {
        let ["http", who] = words else { return None };
        Some(match provd_role::query::Who::parse(who) {
            Some(provd_role::query::Who::Mac(mac)) => match self.httpd().device_status(&mac) {
                Some(json) => json.to_string(),
                None => provd_role::query::error_json(format!("no profile record for {who}")),
            },
            _ => provd_role::query::error_json(format!("not a MAC address: {who}")),
        })
    }

    fn listening(&self) -> String {
        let mut s: Vec<String> = Vec::new();
        if let Some(a) = self.plain {
            s.push(format!("http={a}"));
        }
        if let Some(a) = self.https {
            s.push(format!("https={a}"));
        }
        s.join(" ")
    }

    /// The service's counters, then each listener's as `http.NAME` / `https.NAME`.
    fn counters(&self) -> Counters {
        let mut c: Counters = self
            .httpd
            .counters
            .entries()
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v))
            .collect();
        for (name, web, _) in &self.listeners {
            c.extend(
                web.entries()
                    .into_iter()
                    .map(|(k, v)| (format!("{name}.{k}"), v)),
            );
        }
        c
    }

    fn metrics(&self, out: &mut dyn provd_role::metrics::MetricsSink) {
        let listeners: Vec<_> = self
            .listeners
            .iter()
            .map(|(name, web, _)| (*name, web.entries()))
            .collect();
        write_metrics(&self.httpd.counters.entries(), &listeners, out);
    }

    fn finished(&self) -> bool {
        self.listeners.iter().any(|(_, _, t)| t.is_finished())
    }

    /// Joins the listeners (each drains its connections; one still draining after `grace` is
    /// left to the runtime's shutdown), then logs the final counters.
    fn stop(self: Box<Self>, grace: Duration) -> Result<()> {
        let deadline = Instant::now() + grace;
        let mut result = Ok(());
        let mut web = Vec::new();
        for (_, counters, task) in self.listeners {
            let r = task.join_draining(deadline.saturating_duration_since(Instant::now()));
            if result.is_ok() {
                result = r;
            }
            web.push(format!("{counters:?}"));
        }
        tracing::info!(counters = %self.httpd.counters.snapshot(), listeners = ?web, "http counters");
        result
    }
}

/// The HTTP role's families: each service count as `provd_http_<name>_total`; per listener
/// (`http`, `https`) its connections, handshakes and requests as `_total` counters labelled
/// `listener`, and its responses as `provd_http_responses_total{listener,class}`.
fn write_metrics(
    service: &[(&'static str, u64)],
    listeners: &[(&str, Vec<(&'static str, u64)>)],
    out: &mut dyn provd_role::metrics::MetricsSink,
) {
    for (name, n) in service {
        let help = format!("HTTP profile service count {name:?}.");
        out.counter(&format!("provd_http_{name}_total"), &help, &[], *n);
    }
    for (listener, entries) in listeners {
        for (name, n) in entries {
            match name.strip_prefix("status_") {
                Some(class) => out.counter(
                    "provd_http_responses_total",
                    "HTTP responses, by listener and status class.",
                    &[("listener", listener), ("class", class)],
                    *n,
                ),
                None => {
                    let help = format!("HTTP listener count {name:?}.");
                    out.counter(
                        &format!("provd_http_listener_{name}_total"),
                        &help,
                        &[("listener", listener)],
                        *n,
                    );
                }
            }
        }
    }
}

#[cfg(test)]
mod metrics_tests {
    use provd_role::metrics::Exposition;

    #[test]
    fn service_and_listener_counts_are_typed_and_labelled() {
        let service = [("profiles_served", 3), ("not_modified", 1)];
        let listener = |n: u64| vec![("requests", n), ("status_2xx", n), ("status_5xx", 0)];
        let listeners = [("http", listener(4)), ("https", listener(2))];
        let mut e = Exposition::new();
        super::write_metrics(&service, &listeners, &mut e);
        assert!(e.refused().is_empty(), "{:?}", e.refused());
        let text = e.finish();
        for line in [
            "# TYPE provd_http_profiles_served_total counter",
            "provd_http_profiles_served_total 3",
            r#"provd_http_listener_requests_total{listener="https"} 2"#,
            r#"provd_http_responses_total{listener="http",class="2xx"} 4"#,
            r#"provd_http_responses_total{listener="https",class="5xx"} 0"#,
        ] {
            assert!(text.lines().any(|l| l == line), "no {line} in\n{text}");
        }
    }
}
