//! provd-httpd: the phone profile role (`[http]`): per-device profiles and firmware for VoIP
//! ATAs and IP phones over HTTP and HTTPS, on the server machinery of `provd-web`.
//!
//! [`Httpd`] is the service, built from the policy without sockets: [`Httpd::router`] is an
//! `axum::Router` that tests drive in process. [`start`] binds its listeners on the control
//! plane and returns the running [`HttpRole`].
//!
//! A request path is first cleaned ([`guard`]: one percent-decoding pass; `.`/`..` segments,
//! control characters, NUL, backslashes and double encoding are 400). Then:
//!
//! * `/firmware/NAME`: a file of `[http].firmware_dir` ([`firmware`]: HEAD, one byte range,
//!   ETag / If-None-Match, Last-Modified / If-Modified-Since).
//! * a path that some class's `[class.profile].path` renders for a MAC: that device's profile
//!   ([`profile`]): access rules (plain HTTP allowed? client certificate naming the MAC?), the
//!   class template rendered with the device's context, the version rule, optional
//!   encryption, ETag / If-None-Match and If-Modified-Since.
//! * anything else: 404.
//!
//! Refusals are answered with the right status, counted, and logged at most a few times a
//! second; the access log itself is `provd-web`'s.

mod firmware;
pub mod guard;
mod profile;
mod refusals;
mod render;
mod role;
mod status;
mod versions;

use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use dashmap::DashMap;
use provd_config::{Policy, UpgradeRule, Vars};
use provd_devices::DeviceView;
use provd_web::Peer;

pub use provd_files::TEMPLATE_CHECK;
pub use role::{HttpRole, start};
pub use status::DeviceStatus;

/// Why the server could not be set up.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum HttpdError {
    #[error("class {class:?}: {message}")]
    Template { class: String, message: String },
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// Reads and compiles every profile template of `policy` without starting anything (for
/// `provd check-config`), then checks each as [`render::ProfileClass::check`] does: the number
/// of profile classes, or the first problem.
pub fn check_templates(policy: &Policy) -> Result<usize, HttpdError> {
    let classes = render::ProfileClass::load_all(policy)?;
    for c in &classes {
        c.check(&policy.vars)?;
    }
    Ok(classes.len())
}

/// What the server has done since it started.
#[derive(Debug, Default)]
pub struct HttpCounters {
    pub profiles_served: AtomicU64,
    pub not_modified: AtomicU64,
    pub rendered: AtomicU64,
    pub version_bumps: AtomicU64,
    pub render_errors: AtomicU64,
    pub refused_plain: AtomicU64,
    pub refused_cert: AtomicU64,
    pub unknown_device: AtomicU64,
    /// Profile requests not from the device's leased address (nor with its certificate):
    /// answered exactly as an unknown device is.
    pub refused_lease: AtomicU64,
    /// Profile requests refused because their source spent its budget of refusals.
    pub rate_limited: AtomicU64,
    pub bad_path: AtomicU64,
    pub not_found: AtomicU64,
    pub firmware_served: AtomicU64,
}

impl HttpCounters {
    /// Every counter, name and value, in declaration order.
    pub fn entries(&self) -> Vec<(&'static str, u64)> {
        let g = |c: &AtomicU64| c.load(Ordering::Relaxed);
        vec![
            ("profiles_served", g(&self.profiles_served)),
            ("not_modified", g(&self.not_modified)),
            ("rendered", g(&self.rendered)),
            ("version_bumps", g(&self.version_bumps)),
            ("render_errors", g(&self.render_errors)),
            ("refused_plain", g(&self.refused_plain)),
            ("refused_cert", g(&self.refused_cert)),
            ("unknown_device", g(&self.unknown_device)),
            ("refused_lease", g(&self.refused_lease)),
            ("rate_limited", g(&self.rate_limited)),
            ("bad_path", g(&self.bad_path)),
            ("not_found", g(&self.not_found)),
            ("firmware_served", g(&self.firmware_served)),
        ]
    }

    /// [`entries`](Self::entries) as one JSON object.
    pub fn snapshot(&self) -> serde_json::Value {
        self.entries()
            .into_iter()
            .map(|(k, v)| (k.to_owned(), serde_json::Value::from(v)))
            .collect::<serde_json::Map<_, _>>()
            .into()
    }
}

/// The profile/firmware service: shared by every listener (plain and HTTPS).
#[derive(Debug)]
pub struct Httpd {
    classes: Vec<render::ProfileClass>,
    vars: Vars,
    /// Each device's record, subscriber and class of service: the store's, kept current (the
    /// config's `[[subscriber]]` tables without a store).
    catalog: Arc<provd_devices::catalog::Catalog>,
    devices: Option<Arc<DeviceView>>,
    upgrade_rules: Vec<UpgradeRule>,
    firmware_dir: Option<PathBuf>,
    versions: versions::VersionStore,
    cache: DashMap<([u8; 6], usize), Arc<profile::Cached>, foldhash::fast::RandomState>,
    status: DashMap<[u8; 6], DeviceStatus, foldhash::fast::RandomState>,
    pub counters: HttpCounters,
    log_gate: provd_web::LogGate,
    /// Told of every profile served (200), once set: the device timeline.
    on_served: std::sync::OnceLock<Hook>,
    refusals: refusals::Refusals,
}

/// A [`ProfileServed`] in a field of a `Debug` struct.
struct Hook(ProfileServed);

impl std::fmt::Debug for Hook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ProfileServed")
    }
}

/// Told of a profile served: the device, the version, the client's address, whether over TLS.
/// Called on the control plane's threads: it must not block.
pub type ProfileServed = Box<dyn Fn([u8; 6], u64, std::net::SocketAddr, bool) + Send + Sync>;

impl Httpd {
    /// From now on, tell `hook` of every profile served. Only the first hook set is kept.
    pub fn notify_served(&self, hook: ProfileServed) {
        let _ = self.on_served.set(Hook(hook));
    }

    pub(crate) fn served(
        &self,
        mac: [u8; 6],
        version: u64,
        remote: std::net::SocketAddr,
        tls: bool,
    ) {
        if let Some(h) = self.on_served.get() {
            (h.0)(mac, version, remote, tls);
        }
    }

    pub(crate) fn catalog(&self) -> &provd_devices::catalog::Catalog {
        &self.catalog
    }

    /// Reads device records from `catalog` (the store's) instead of the config's
    /// `[[subscriber]]` tables: a change of a phone's variables is its next profile, with a
    /// bumped version.
    pub fn with_catalog(mut self, catalog: Arc<provd_devices::catalog::Catalog>) -> Self {
        self.catalog = catalog;
        self
    }

    /// The profile classes of `policy`, their templates read and checked, and the version log
    /// of `policy.server.lease_dir` replayed. `devices`: lease facts from the DHCP side, when
    /// it runs in the same process.
    pub fn new(policy: &Policy, devices: Option<Arc<DeviceView>>) -> Result<Httpd, HttpdError> {
        let classes = render::ProfileClass::load_all(policy)?;
        let versions = versions::VersionStore::open(&policy.server.lease_dir)?;
        Ok(Httpd {
            classes,
            vars: policy.vars.clone(),
            catalog: Arc::new(provd_devices::catalog::Catalog::from_config(
                &policy.subscribers,
            )),
            devices,
            upgrade_rules: policy.upgrade_rules.clone(),
            firmware_dir: policy.http.as_ref().and_then(|h| h.firmware_dir.clone()),
            versions,
            cache: DashMap::default(),
            status: DashMap::default(),
            counters: HttpCounters::default(),
            log_gate: provd_web::LogGate::per_sec(10),
            on_served: std::sync::OnceLock::new(),
            refusals: refusals::Refusals::default(),
        })
    }

    /// How often template files are looked at for edits (default [`TEMPLATE_CHECK`]).
    pub fn with_template_check(mut self, every: Duration) -> Self {
        for c in &mut self.classes {
            c.template.set_check_every(every);
        }
        self
    }

    /// The router for one listener.
    pub fn router(self: &Arc<Self>) -> Router {
        Router::new().fallback(handle).with_state(Arc::clone(self))
    }

    /// What the server knows of a device, as JSON (for `provd http status`).
    pub fn device_status(&self, mac: &[u8; 6]) -> Option<serde_json::Value> {
        let version = self.versions.get(mac);
        let seen = self.status.get(mac).map(|s| s.clone());
        if version.is_none() && seen.is_none() {
            return None;
        }
        Some(status::to_json(mac, seen.as_ref(), version))
    }

    /// Whether `mac` is a device provd knows: a `[[subscriber]]` or a live lease.
    fn known(&self, mac: &[u8; 6], now: u32) -> bool {
        self.catalog.resolve(mac).is_some()
            || self
                .devices
                .as_ref()
                .is_some_and(|d| d.get(mac, now).is_some())
    }

    /// A refusal answered exactly as a device nobody knows (404 `not found`), so that a
    /// guess cannot tell a known device from an unknown one; `why` goes to the log only. Each
    /// spends one of the source's [`refusals::REFUSALS_BURST`].
    fn refuse_as_unknown(
        &self,
        counter: &AtomicU64,
        peer: &Peer,
        path: &str,
        why: &str,
    ) -> Response {
        self.refusals
            .spend(peer.remote.ip(), provd_role::clock::unix_secs());
        let _ = self.refuse(counter, StatusCode::NOT_FOUND, peer, path, why);
        plain_status(StatusCode::NOT_FOUND, "not found")
    }

    /// A refusal: counted, logged (rate-limited), answered.
    fn refuse(
        &self,
        counter: &AtomicU64,
        status: StatusCode,
        peer: &Peer,
        path: &str,
        why: &str,
    ) -> Response {
        counter.fetch_add(1, Ordering::Relaxed);
        if let Some(held) = self.log_gate.allow() {
            tracing::warn!(remote = %peer.remote, path, status = status.as_u16(), why, suppressed = held, "request refused");
        }
        plain_status(status, why)
    }
}

/// A short text body saying why.
fn plain_status(status: StatusCode, why: &str) -> Response {
    let mut r = (status, format!("{why}\n")).into_response();
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    r
}

async fn handle(State(httpd): State<Arc<Httpd>>, req: Request) -> Response {
    // The body is never read: only the head (`Parts`, which is Sync) is held across awaits.
    let (req, _body) = req.into_parts();
    let Some(peer) = req.extensions.get::<Peer>().cloned() else {
        // provd-web inserts a Peer into every request; a router used without it is a bug.
        return plain_status(StatusCode::INTERNAL_SERVER_ERROR, "no peer");
    };
    if req.method != Method::GET && req.method != Method::HEAD {
        let mut r = plain_status(StatusCode::METHOD_NOT_ALLOWED, "GET or HEAD");
        r.headers_mut()
            .insert(header::ALLOW, HeaderValue::from_static("GET, HEAD"));
        return r;
    }
    let raw = req.uri.path();
    let path = match guard::clean_path(raw) {
        Ok(p) => p,
        Err(why) => {
            return httpd.refuse(
                &httpd.counters.bad_path,
                StatusCode::BAD_REQUEST,
                &peer,
                raw,
                why,
            );
        }
    };
    let name = path.trim_start_matches('/');
    if let Some(file) = name.strip_prefix("firmware/") {
        return firmware::serve(&httpd, &peer, &req, file).await;
    }
    if let Some((class, mac)) = httpd
        .classes
        .iter()
        .enumerate()
        .find_map(|(i, c)| c.spec.path.match_name(name).map(|m| (i, m)))
    {
        return profile::serve(&httpd, &peer, &req, class, mac).await;
    }
    httpd.refuse(
        &httpd.counters.not_found,
        StatusCode::NOT_FOUND,
        &peer,
        raw,
        "no profile or firmware at this path",
    )
}

/// Empty body for HEAD, the bytes for GET.
fn body_for(method: &Method, bytes: bytes::Bytes) -> Body {
    if method == Method::HEAD {
        Body::empty()
    } else {
        Body::from(bytes)
    }
}

fn remote_ip(peer: &Peer) -> IpAddr {
    peer.remote.ip()
}

#[cfg(test)]
mod tests;
