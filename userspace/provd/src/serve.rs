//! `provd serve`: load the config, restore state, build the roles the config names, run, stop.
//!
//! Every role is built by its own crate and driven here only through [`provd_role::Role`]; this
//! file only decides which roles the config asks for and what each is handed.

use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use provd_config::Policy;
use provd_dataplane::{DhcpRole, DhcpState, WorkerSettings};
use provd_devices::DeviceView;
use provd_engine::Shared;
use provd_lease::{LeaseLog, LeaseTable};
use provd_role::clock::unix_secs_u32;
use provd_role::query::{self, QuerySocket};
use provd_role::{ControlPlane, Role, RoleSet, workers_for};

use crate::{api, control};

/// How long each role may take to stop once asked (its threads notice the flag within 200 ms;
/// the control plane's listeners finish the requests in flight).
const STOP_GRACE: Duration = Duration::from_secs(5);

/// How `provd serve` was asked to run.
#[derive(Debug)]
pub struct Options {
    pub config: PathBuf,
    /// Log every role's counters this often (0: only at shutdown).
    pub stats_every: u64,
    /// Canned replies through the DHCP I/O path, no engine, no leases: the bench's ceiling.
    pub null_responder: bool,
}

pub fn serve(opts: &Options) -> Result<ExitCode> {
    let policy = crate::load(&opts.config)?;
    crate::init_logging(policy.server.log_format);
    if opts.null_responder {
        tracing::warn!("null responder: canned replies, no leases kept (benchmark ceiling)");
    }
    let shutdown = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGTERM, signal_hook::consts::SIGINT] {
        signal_hook::flag::register(sig, Arc::clone(&shutdown))?;
    }
    let hup = Arc::new(AtomicBool::new(false));
    signal_hook::flag::register(signal_hook::consts::SIGHUP, Arc::clone(&hup))?;
    // Before any role records a facade histogram (a transfer, a flow, a session).
    provd_metrics::install();
    let control = control::open(&policy, &shutdown)?;
    let state = restore(policy)?;
    let dir = state.dir.clone();
    let started = start_roles(state, &control, opts, &shutdown)?;
    let roles = Arc::new(started.roles);
    if let Some(view) = &started.roles_view {
        let _ = view.roles.set(Arc::downgrade(&roles));
    }
    let answer: query::Answer = {
        let roles = Arc::clone(&roles);
        Arc::new(move |line: &str| roles.answer(line))
    };
    let query = QuerySocket::start(query::socket_path(&dir), answer, Arc::clone(&shutdown))?;
    started.ready.announce(opts.null_responder);
    // The service manager hears it only now: every role the config names has bound its sockets.
    let status = started.ready.status(&roles);
    let mut notifier = crate::systemd::Notifier::from_env();
    notifier.notify(&format!("READY=1\nSTATUS={status}"));

    let mut last = Instant::now();
    let mut failed = None;
    loop {
        std::thread::sleep(Duration::from_millis(100));
        notifier.tick(provd_role::Liveness::global(), &status);
        // A signal stops every role's threads: look at the flag before asking who ended.
        if shutdown.load(Ordering::Relaxed) {
            break;
        }
        if let Some(name) = roles.finished() {
            // The flag may have been set after the look above, and the role stopped for it.
            if !shutdown.load(Ordering::Relaxed) {
                failed = Some(name);
            }
            break;
        }
        if hup.swap(false, Ordering::Relaxed) {
            started.reloader.on_signal();
        }
        if opts.stats_every > 0 && last.elapsed() >= Duration::from_secs(opts.stats_every) {
            last = Instant::now();
            roles.log_counters();
        }
    }
    if let Some(name) = failed {
        tracing::error!(role = name, "a role ended on its own; stopping");
    }
    notifier.notify("STOPPING=1\nSTATUS=stopping");
    shutdown.store(true, Ordering::Relaxed);
    if let Some(cp) = &started.control_plane {
        cp.signal_stop();
    }
    query.join();
    // An API request may hold the roles for a moment (a scrape, a stats call).
    let mut roles = roles;
    let deadline = Instant::now() + Duration::from_secs(2);
    let roles = loop {
        match Arc::try_unwrap(roles) {
            Ok(r) => break r,
            Err(back) if Instant::now() < deadline => {
                roles = back;
                std::thread::sleep(Duration::from_millis(20));
            }
            Err(_) => bail!("the query socket or the API still holds the roles"),
        }
    };
    let ok = roles.stop(STOP_GRACE);
    if let Some(cp) = started.control_plane {
        cp.shutdown(STOP_GRACE);
    }
    // The timeline writes what was queued before it stops.
    control.join();
    if !ok || failed.is_some() {
        bail!("a role failed; see the log above");
    }
    tracing::info!("provd stopped");
    Ok(ExitCode::SUCCESS)
}

/// What start-up restored: the engine's state and lease logs, and what the file servers know
/// of bound devices.
struct Restored {
    dir: PathBuf,
    shared: Arc<Shared>,
    tables: Vec<LeaseTable>,
    logs: Vec<LeaseLog>,
    /// Every restored live lease, and each new record as a worker writes it; only when a role
    /// that reads it is configured.
    devices: Option<Arc<DeviceView>>,
}

/// Replays the lease logs, gives each shard its table, reopens the logs under this shard count
/// (see [`provd_lease::reopen`] for why that order keeps every lease) and fills the device view.
fn restore(policy: Policy) -> Result<Restored> {
    let dir = policy.server.lease_dir.clone();
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let shards = u32::try_from(workers_for(policy.server.workers)).context("server.workers")?;
    let t = Instant::now();
    let replay =
        provd_lease::replay(&dir).with_context(|| format!("replaying {}", dir.display()))?;
    let replay_ms = t.elapsed().as_millis();
    let report = replay.report.clone();
    let shared = Shared::new(policy).context("setting up pools and options")?;
    let now = unix_secs_u32();
    let (tables, restored) = shared.restore(replay.records, now, shards);
    let reopened = provd_lease::reopen(&dir, &tables, replay.max_seq + 1)
        .with_context(|| format!("reopening the lease logs in {}", dir.display()))?;
    tracing::info!(
        files = report.files,
        records = report.records_read,
        torn_tails = report.torn_tails,
        corrupt = report.corrupt_records,
        bound = restored.bound,
        remembered = restored.remembered,
        forgotten = restored.forgotten,
        conflicts = restored.conflicts,
        rewritten = reopened.report.rewritten,
        stale_files_removed = reopened.report.stale_files_removed,
        replay_ms = u64::try_from(replay_ms).unwrap_or(u64::MAX),
        startup_ms = u64::try_from(t.elapsed().as_millis()).unwrap_or(u64::MAX),
        "leases restored"
    );
    let p = &shared.policy;
    let devices = (p.tftp.is_some() || p.syslog.is_some() || p.http.is_some() || p.api.is_some())
        .then(|| {
            let view = Arc::new(DeviceView::new());
            view.restore(
                tables.iter().flat_map(|t| t.iter().map(|(_, lease)| lease)),
                now,
            );
            view
        });
    Ok(Restored {
        dir,
        shared,
        tables,
        logs: reopened.logs,
        devices,
    })
}

/// The roles running, and what the ready lines say.
struct Started {
    roles: RoleSet,
    control_plane: Option<ControlPlane>,
    ready: Ready,
    /// SIGHUP's and the API's config reload.
    reloader: Arc<control::Reloader>,
    /// The API's view of the roles (it gets the role set once it is built).
    roles_view: Option<Arc<control::Roles>>,
}

/// What `provd ready` (and `acs ready`) tell scripts and the log once every listener is bound.
struct Ready {
    path: &'static str,
    why: String,
    workers: u32,
    bind: Ipv4Addr,
    port: u16,
    tftp: Option<std::net::SocketAddrV4>,
    acs: Option<String>,
    api: Option<String>,
}

impl Ready {
    /// The `STATUS=` systemd shows: the DHCP I/O path, why, and the roles serving.
    fn status(&self, roles: &RoleSet) -> String {
        let names: Vec<&str> = roles.iter().map(|r| r.name()).collect();
        format!(
            "serving: dhcp path={} workers={} roles={} ({})",
            self.path,
            self.workers,
            names.join(","),
            self.why.replace('\n', " ")
        )
    }

    fn announce(&self, null_responder: bool) {
        tracing::info!(
            path = self.path,
            workers = self.workers,
            bind = %self.bind,
            port = self.port,
            why = %self.why,
            "provd ready"
        );
        // Plain lines too, independent of the log format, for scripts waiting on readiness.
        if let Some(acs) = &self.acs {
            eprintln!("acs ready {acs}");
        }
        if let Some(api) = &self.api {
            eprintln!("api ready {api}");
        }
        eprintln!(
            "provd ready path={} workers={}{}{}",
            self.path,
            self.workers,
            if null_responder { " null" } else { "" },
            self.tftp.map(|a| format!(" tftp={a}")).unwrap_or_default()
        );
    }
}

/// Builds every role the config names, in the order their dependencies need: MTA first (the
/// DHCP workers tell it of MTA boots), then DHCP, TFTP (served files pinned by the MTA role,
/// generated files for the devices DHCP bound), syslog and time, then the control plane's
/// roles (HTTP profiles, the ACS).
fn start_roles(
    state: Restored,
    control: &control::Control,
    opts: &Options,
    shutdown: &Arc<AtomicBool>,
) -> Result<Started> {
    let null_responder = opts.null_responder;
    let Restored {
        dir,
        shared,
        tables,
        logs,
        devices,
    } = state;
    let policy = &shared.policy;
    let mut roles = RoleSet::default();
    let generated = match (&devices, &policy.tftp) {
        (Some(view), Some(_)) => Some(Arc::new(provd_tftpd::Generated::new(Arc::new(
            provd_files::Generator::new(policy, Arc::clone(view))
                .context("loading config-file templates")?
                .with_catalog(Arc::clone(&control.catalog)),
        )))),
        _ => None,
    };

    // Who hears of lease records and bindings as the workers write them.
    let mut observers: Vec<Arc<dyn provd_lease::LeaseObserver>> = Vec::new();
    if let Some(view) = &devices {
        observers.push(Arc::clone(view) as Arc<dyn provd_lease::LeaseObserver>);
    }
    observers.push(Arc::new(control.timeline.clone()));
    if let Some(g) = &generated {
        g.notify_served(control::tftp_hook(control.timeline.clone()));
    }
    // The store's reservations, before the first DISCOVER; then every change of one.
    let live = control::LiveSink::new(Arc::clone(&shared));
    control
        .catalog
        .follow_reservations(&*control.store, Arc::clone(&live) as _)
        .context("loading the store's reservations")?;
    let mut pinned = None;
    if let (Some(m), Some(g), Some(view), Some(t)) =
        (&policy.mta, &generated, &devices, &policy.tftp)
    {
        let host = [
            t.bind,
            policy.server.server_id.unwrap_or(Ipv4Addr::UNSPECIFIED),
            m.bind,
        ]
        .into_iter()
        .find(|a| !a.is_unspecified())
        .context(
            "[mta]: the file URL SET on MTAs needs an address: set tftp.bind or server.server_id",
        )?;
        let mut ctx = provd_mtad::Context::new(
            Arc::new(policy.clone()),
            Arc::clone(g.generator()),
            Arc::clone(view),
            host,
            t.enforce,
        );
        ctx.on_record = Some(control::mta_hook(control.timeline.clone()));
        ctx.recall = Some(control::mta_recall(Arc::clone(&control.store)));
        let (role, observer) = provd_mtad::start(m, ctx, Arc::clone(shutdown))?;
        g.notify_mta(role.file_served());
        observers.push(Arc::new(observer));
        pinned = Some(role.pinned() as Arc<dyn provd_tftpd::FileSource>);
        roles.push(Box::new(role));
    }
    let observer: Option<Arc<dyn provd_lease::LeaseObserver>> = match observers.len() {
        0 => None,
        1 => observers.pop(),
        _ => Some(Arc::new(provd_lease::Fanout(observers))),
    };

    let settings = WorkerSettings {
        bind: policy.server.bind,
        port: policy.server.port,
        compact_after_records: policy.server.compact_after_records,
        null_responder,
    };
    let dhcp = DhcpRole::start(
        DhcpState {
            shared: Arc::clone(&shared),
            tables,
            logs,
        },
        settings.clone(),
        observer,
        shutdown,
    )?;
    live.follow(Arc::clone(dhcp.swap()));
    let shard_commands = dhcp.commands();
    let reloader = control::Reloader::new(
        opts.config.clone(),
        policy.clone(),
        Arc::clone(dhcp.swap()),
        devices.clone(),
    );
    let mut ready = Ready {
        path: dhcp.path().as_str(),
        why: dhcp.why().to_string(),
        workers: dhcp.shards(),
        bind: settings.bind,
        port: settings.port,
        tftp: None,
        acs: None,
        api: None,
    };

    let tftp = match (&policy.tftp, &generated) {
        (Some(t), Some(g)) => Some(provd_tftpd::role::start(
            t,
            pinned,
            Arc::clone(g),
            Arc::clone(shutdown),
        )?),
        _ => None,
    };
    if let Some(t) = &tftp {
        dhcp.steer_tftp(
            policy.tftp.as_ref().map_or(0, |c| c.port),
            t.transfer_ports(),
        );
        ready.tftp = Some(t.local_addr());
    }
    roles.push(Box::new(dhcp));
    if let Some(t) = tftp {
        roles.push(Box::new(t));
    }
    if let (Some(s), Some(view)) = (&policy.syslog, &devices) {
        let syslog = provd_syslog::start(s, Arc::clone(view), Arc::clone(shutdown))?;
        syslog
            .store()
            .set_tap(control::syslog_hook(control.timeline.clone()));
        roles.push(Box::new(syslog));
    }
    if let Some(t) = &policy.time {
        let tod = provd_tod::start(t, Arc::clone(shutdown))?;
        if let Some(view) = &devices {
            tod.set_tap(control::tod_hook(
                control.timeline.clone(),
                Arc::clone(view),
            ));
        }
        roles.push(Box::new(tod));
    }

    // The control plane's roles bind here, before the ready line.
    let control_plane = if policy.http.is_some() || policy.acs.is_some() || policy.api.is_some() {
        Some(ControlPlane::start(workers_for(0))?)
    } else {
        None
    };
    if let (Some(cp), Some(h)) = (&control_plane, &policy.http) {
        let http = provd_httpd::start(
            cp,
            h,
            policy,
            devices.clone(),
            Some(Arc::clone(&control.catalog)),
        )?;
        http.httpd()
            .notify_served(control::http_hook(control.timeline.clone()));
        roles.push(Box::new(http));
    }
    let mut acs_api = None;
    if let (Some(cp), Some(a)) = (&control_plane, &policy.acs) {
        // The task API takes the same bearer tokens as /api/v1, and audits what they do.
        let store = Arc::clone(&control.store);
        let role = provd_acsd::start(cp, a, &dir, |r| {
            provd_api::guard(r, store, &provd_api::ApiSettings::default(), "acs_task_api")
        })?;
        if let Some(view) = &devices {
            role.acsd().notify_sessions(control::cwmp_hook(
                control.timeline.clone(),
                Arc::clone(view),
            ));
        }
        ready.acs = Some(role.listening());
        acs_api = Some(role.acsd().task_api_router());
        roles.push(Box::new(role));
    }
    let mut roles_view = None;
    if let (Some(cp), Some(a)) = (&control_plane, &policy.api) {
        let view = Arc::new(control::Roles {
            roles: std::sync::OnceLock::new(),
            metrics: provd_metrics::install(),
            store: Arc::clone(&control.store),
            timeline: control.timeline.clone(),
        });
        let ops = control::Ops {
            reset: a.reset.clone(),
            store: Arc::clone(&control.store),
            acs: acs_api.clone(),
            devices: devices.clone(),
            catalog: Arc::clone(&control.catalog),
            reloader: std::sync::OnceLock::new(),
            generator: generated.as_ref().map(|g| Arc::clone(g.generator())),
            policy: Arc::new(policy.clone()),
        };
        let _ = ops.reloader.set(Arc::clone(&reloader));
        let leases: Arc<dyn provd_api::LeaseIndex> = match &devices {
            Some(view) => Arc::new(control::Leases {
                devices: Arc::clone(view),
                shards: shard_commands,
                catalog: Arc::clone(&control.catalog),
                classes: policy.classes.iter().map(|c| c.name.clone()).collect(),
            }),
            None => anyhow::bail!("the API needs the device view"),
        };
        let services = provd_api::Services {
            store: Arc::clone(&control.store),
            leases,
            actions: Arc::new(ops),
            roles: Arc::clone(&view) as _,
            acs: acs_api,
        };
        let settings = provd_api::ApiSettings {
            metrics_open: a.metrics_open,
            ..provd_api::ApiSettings::default()
        };
        let role = api::start(cp, a, services, settings)?;
        ready.api = Some(role.listening());
        roles.push(Box::new(role));
        roles_view = Some(view);
    }
    Ok(Started {
        roles,
        control_plane,
        ready,
        reloader,
        roles_view,
    })
}
