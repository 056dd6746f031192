//! provd-acsd: the TR-069 ACS role of `provd serve` (`[acs]`): CWMP over HTTP(S) on provd-web,
//! the JSON task API on its own listener, connection requests (HTTP digest and TR-111 UDP),
//! the STUN binding server, and periodic snapshots of the device index and queued tasks. The
//! ACS's state and decisions are `provd-acs` (sans-IO); this crate is its shell.
//!
//! [`Acsd`] is the shell's state, built from the settings without sockets: its
//! [`cwmp_router`](Acsd::cwmp_router) and [`task_api_router`](Acsd::task_api_router) are
//! `axum::Router`s that tests drive in process. [`start`] binds every listener on the control
//! plane and returns the running [`AcsRole`].
//!
//! Sessions are found by cookie (`provd_session`, set on the first answer) and, for CPEs that
//! do not keep cookies, by the TCP connection (remote address and port). A session that stays
//! idle past `session_timeout_secs` is dropped and its outstanding request goes back to the
//! device's queue. Authentication is checked until it succeeds once in a session; a failed
//! check creates no session state at all, and wrong guesses lock their source and username
//! out for a while (`provd_acs::throttle`): attempts in a lockout are refused unchecked.
//!
//! An envelope's parse has a time budget (`request_budget_ms`, fault 8004 past it); large
//! envelopes are parsed on the blocking pool, a bounded number at once, so the ACS cannot
//! hold the control-plane threads the other roles (HTTP profiles, the API) are served on.
//!
//! Task API (JSON; its listener is `[acs] admin_bind`/`admin_port`, keys kept from when it was
//! called the admin API). `provd serve` puts it behind the `/api/v1` bearer tokens
//! (`provd_api::guard`: read-only tokens GET, operator tokens queue tasks, each task audited):
//! * `GET  /api/stats`, `GET /api/campaigns`
//! * `GET  /api/devices?oui=&product_class=&serial=&limit=` — ids of matching devices
//! * `GET  /api/devices/{id}` — record, cached parameters, events, queue (`id` is
//!   `OUI-ProductClass-Serial`)
//! * `POST /api/devices/{id}/tasks` with a task (`{"method": "GetParameterValues", "names": [..]}`)
//! * `POST /api/tasks` with `{"filter": {..}, "task": {..}}` — the same task for every match
//! * `GET  /api/tasks/{n}` — state, fault, result
//! * `POST /api/devices/{id}/connection-request` (`?udp=1` for TR-111 UDP)
//! * `POST /api/seed` with `{"count": N, ...}` — bulk registration for benchmarks
//! * `POST /api/snapshot` — write the snapshot now
//!
//! A task the API answered 200 for is in the task journal (synced) first: see
//! `provd_acs::journal`.

mod api;
mod cwmp;
mod role;
mod wake;

use std::net::SocketAddrV4;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use anyhow::{Context, Result};
use axum::Router;
use dashmap::DashMap;
use provd_acs::auth::{Credentials, Digest};
use provd_acs::cr::CrLimiter;
use provd_acs::{Acs, SessionDevice};
use provd_config::{AcsAuth, AcsSettings};
use provd_cwmp::{Limits, Session, SessionState};
use tokio::net::UdpSocket;

pub use role::{AcsRole, start};

/// Envelopes up to this size are parsed where they arrive: linear-time parsing keeps them
/// well under a millisecond, less than a hop to another thread costs.
const INLINE_MAX: usize = 64 << 10;

/// Blocking threads parsing large envelopes at once: all cores but one, so one is always
/// left for the other roles.
fn parse_threads() -> usize {
    std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .saturating_sub(1)
        .max(1)
}

fn random_u64() -> u64 {
    let mut b = [0u8; 8];
    // getrandom only fails without an entropy source, which Linux always has after boot.
    getrandom::getrandom(&mut b).expect("the kernel's random source");
    u64::from_le_bytes(b)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum SessionKey {
    Cookie(u64),
    /// The TCP connection ([`provd_web::Peer::conn`]), not its address: a new connection from
    /// the same address and port is not the old one's session.
    Conn(u64),
}

#[derive(Debug)]
struct Entry {
    session: Session,
    dev: SessionDevice,
    cookie: u64,
    conn: u64,
    /// When its first message arrived, for the session duration histogram.
    started: std::time::Instant,
    /// Its duration is recorded (once: a session is in the map under two keys).
    recorded: bool,
}

impl Entry {
    /// Records the session's duration through the metrics facade, the first time only:
    /// `outcome` is `ok` (it reached its end) or `abandoned` (idle past the timeout).
    fn ended(&mut self, outcome: &'static str) {
        if std::mem::replace(&mut self.recorded, true) {
            return;
        }
        use provd_role::metrics::{facade, names};
        facade::histogram!(names::CWMP_SESSION_DURATION_SECONDS, "outcome" => outcome)
            .record(self.started.elapsed().as_secs_f64());
    }
}

#[derive(Debug)]
enum Auth {
    None,
    Basic(Credentials),
    Digest(Digest),
}

/// Writes each emitted envelope to `dir` (debug / schema validation).
#[derive(Debug)]
struct Dump {
    dir: PathBuf,
    n: AtomicU64,
}

/// The ACS shell's state: what every handler and task of the role shares.
#[derive(Debug)]
pub struct Acsd {
    acs: Arc<Acs>,
    sessions: DashMap<SessionKey, Arc<Mutex<Entry>>, foldhash::fast::RandomState>,
    auth: Auth,
    dump: Option<Dump>,
    limits: Limits,
    cr_limiter: Mutex<CrLimiter>,
    cr_id: AtomicU64,
    /// STUN USERNAME -> mapped address (TR-111).
    stun: DashMap<String, SocketAddrV4>,
    /// The STUN socket, which also sends UDP connection requests (none: `stun_port` unset, or
    /// a state built for tests).
    udp: Option<Arc<UdpSocket>>,
    snapshot_dir: PathBuf,
    log_gate: provd_web::LogGate,
    /// Failed-authentication backoff per source and per username.
    throttle: Mutex<provd_acs::throttle::Throttle>,
    /// Envelopes over [`INLINE_MAX`] bytes are parsed on the blocking pool, this many at
    /// once: a heavy envelope never holds a control-plane thread (the HTTP profile server and
    /// the API share them), and a crowd of them holds at most these threads.
    parse_permits: Arc<tokio::sync::Semaphore>,
    /// The time budget of one request's envelope (`request_budget_ms`).
    budget: std::time::Duration,
    /// Told of each CWMP session that ended, once set: the device timeline.
    on_session: std::sync::OnceLock<Hooked>,
}

/// Told of a CWMP session that ended: the CPE's address, its DeviceId
/// (`OUI-ProductClass-Serial`) when it said, and the outcome. Called on the control plane's
/// threads: it must not block.
pub type SessionHook = Box<dyn Fn(std::net::SocketAddr, Option<String>, &str) + Send + Sync>;

/// A [`SessionHook`] in a field of a `Debug` struct.
struct Hooked(SessionHook);

impl std::fmt::Debug for Hooked {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SessionHook")
    }
}

impl Acsd {
    /// From now on, tell `hook` of each CWMP session that ended. Only the first hook is kept.
    pub fn notify_sessions(&self, hook: SessionHook) {
        let _ = self.on_session.set(Hooked(hook));
    }

    pub(crate) fn session_ended(
        &self,
        remote: std::net::SocketAddr,
        key: Option<String>,
        outcome: &str,
    ) {
        if let Some(h) = self.on_session.get() {
            (h.0)(remote, key, outcome);
        }
    }

    /// The ACS of `settings` with the state saved in `snapshot_dir` restored (snapshot, then the
    /// task journal, which is kept from then on), a fresh digest secret, and the dump directory
    /// created. Binds nothing.
    pub fn new(settings: &AcsSettings, snapshot_dir: PathBuf) -> Result<Acsd> {
        let s = settings;
        let acs = Arc::new(Acs::new(s.clone()));
        let t = Instant::now();
        let report = provd_acs::persist::load(&acs, &snapshot_dir)
            .with_context(|| format!("loading {}", snapshot_dir.display()))?;
        tracing::info!(
            devices = report.devices,
            tasks = report.tasks,
            from_journal = report.journal_tasks,
            bad_lines = report.bad_lines,
            ms = t.elapsed().as_millis() as u64,
            "ACS state restored"
        );
        let mut secret = [0u8; 32];
        getrandom::getrandom(&mut secret)
            .map_err(|e| anyhow::anyhow!("random digest secret: {e}"))?;
        let mut creds: Vec<(String, String)> = s.credentials.clone();
        if !s.username.is_empty() {
            creds.push((s.username.clone(), s.password.clone()));
        }
        let auth = match s.auth {
            AcsAuth::None => Auth::None,
            AcsAuth::Basic => Auth::Basic(Credentials::new(creds)),
            AcsAuth::Digest => Auth::Digest(Digest::new(
                s.realm.clone(),
                secret,
                s.nonce_lifetime_secs,
                Credentials::new(creds),
            )),
        };
        let dump = match &s.dump_dir {
            Some(d) => {
                std::fs::create_dir_all(d).with_context(|| format!("creating {}", d.display()))?;
                Some(Dump {
                    dir: d.clone(),
                    n: AtomicU64::new(0),
                })
            }
            None => None,
        };
        Ok(Acsd {
            acs,
            sessions: DashMap::default(),
            auth,
            dump,
            limits: Limits::default(),
            cr_limiter: Mutex::new(CrLimiter::new(s.cr_per_second)),
            cr_id: AtomicU64::new(1),
            stun: DashMap::new(),
            udp: None,
            snapshot_dir,
            log_gate: provd_web::LogGate::per_sec(10),
            throttle: Mutex::default(),
            parse_permits: Arc::new(tokio::sync::Semaphore::new(parse_threads())),
            budget: std::time::Duration::from_millis(u64::from(s.request_budget_ms)),
            on_session: std::sync::OnceLock::new(),
        })
    }

    /// The ACS state (device store, tasks, counters).
    pub fn acs(&self) -> &Arc<Acs> {
        &self.acs
    }

    /// The router of a CWMP listener: POST on any path. Requests need provd-web's `Peer`
    /// extension (the session falls back to the connection when a CPE keeps no cookie).
    pub fn cwmp_router(self: &Arc<Self>) -> Router {
        cwmp::router(self)
    }

    /// The router of the task API.
    pub fn task_api_router(self: &Arc<Self>) -> Router {
        api::router(self)
    }

    /// Sessions open now.
    pub fn open_sessions(&self) -> usize {
        // Each session is found under its cookie and under its connection.
        self.sessions.len() / 2
    }

    /// The ACS's Prometheus families: device records, interned names, open sessions and STUN
    /// bindings as gauges, every other count of [`provd_acs::Acs::counter_entries`] as a
    /// `_total` counter. Session durations are the facade's
    /// `provd_cwmp_session_duration_seconds`.
    pub fn metrics(&self, out: &mut dyn provd_role::metrics::MetricsSink) {
        for (name, n) in self.acs.counter_entries() {
            match name {
                "devices" => out.gauge(
                    "provd_acs_devices",
                    "CWMP devices known to the ACS.",
                    &[],
                    n as f64,
                ),
                "interned" => out.gauge(
                    "provd_acs_interned_names",
                    "Parameter names interned by the device store.",
                    &[],
                    n as f64,
                ),
                _ => {
                    let help = format!("ACS count {name:?} (see provd_acs::Acs::counter_entries).");
                    out.counter(&format!("provd_acs_{name}_total"), &help, &[], n);
                }
            }
        }
        out.gauge(
            "provd_acs_open_sessions",
            "CWMP sessions open now.",
            &[],
            self.open_sessions() as f64,
        );
        out.gauge(
            "provd_acs_stun_bindings",
            "CPEs whose STUN binding (UDP connection request address) is known.",
            &[],
            self.stun.len() as f64,
        );
    }

    /// Writes the snapshot of the device index and queued tasks now; the devices written.
    pub fn save_snapshot(&self) -> std::io::Result<usize> {
        provd_acs::persist::save(&self.acs, &self.snapshot_dir)
    }

    /// Housekeeping at `now` (unix seconds): drops sessions idle for `timeout` seconds or more
    /// (their outstanding request goes back to the device's queue) and forgets expired nonces.
    pub fn sweep(&self, now: u64, timeout: u64) {
        let mut idle = Vec::new();
        self.sessions.retain(|_, e| {
            let Ok(g) = e.try_lock() else { return true };
            let keep = g.session.idle(now) < timeout && g.session.state() != SessionState::Done;
            if !keep {
                idle.push(Arc::clone(e));
            }
            keep
        });
        for e in idle {
            let mut g = e.lock().unwrap_or_else(|p| p.into_inner());
            let g = &mut *g;
            let outcome = if g.session.state() == SessionState::Done {
                "ok"
            } else {
                "abandoned"
            };
            g.ended(outcome);
            let mut d = self.acs.driver(&mut g.dev, 0, "");
            g.session.close(now, &mut d);
        }
        if let Auth::Digest(d) = &self.auth {
            d.sweep(u32::try_from(now).unwrap_or(u32::MAX));
        }
        self.throttle
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .sweep(now.saturating_mul(1000));
    }

    /// What the ACS has seen: changes when a session files something or a device is added.
    fn activity(&self) -> (u64, usize) {
        let c = &self.acs.counters;
        (
            c.informs.load(Ordering::Relaxed) + c.answers.load(Ordering::Relaxed),
            self.acs.store.len(),
        )
    }

    /// At most 10 log lines a second for bad input.
    fn may_log(&self) -> bool {
        self.log_gate.allow().is_some()
    }
}
