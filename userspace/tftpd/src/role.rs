//! The TFTP role as `provd serve` runs it: files pinned by other roles first (the MTA role's
//! hashed files), then per-device generated files, then the static root; uploads into the root
//! when allowed. Driven through [`provd_role::Role`].

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use anyhow::Context;
use provd_config::ConfigFileKind;
use provd_files::{GenerateError, Generator};
use provd_role::{Counters, Role, clock, workers_for};
use provd_udp::RateLimit;

use crate::{
    Chain, ErrorCode, FileContent, FileSource, OpenError, Refusal, StaticRoot, TftpHandle,
    TransferRequest, UploadSink,
};

/// Told of each MTA file served, with the MTA's MAC (the BASIC flows' MTA-22/23). Called on a
/// TFTP worker thread: it must not block (a bounded `try_send` is the intended shape).
pub type MtaServed = Box<dyn Fn([u8; 6]) + Send + Sync>;

/// Told of every generated file served: the request, whose file it is, its bytes (for the
/// device's timeline). Called on a TFTP worker thread: it must not block.
pub type FileServed = Box<dyn Fn(&TransferRequest<'_>, [u8; 6], &Arc<[u8]>) + Send + Sync>;

/// Generated files as a TFTP file source, with the refusals and failures counted and logged
/// (rate-limited: a fleet rebooting behind a misconfigured template must not flood the log).
pub struct Generated {
    generator: Arc<Generator>,
    counters: GeneratedCounters,
    log_limit: Mutex<RateLimit>,
    /// Told of every MTA file served, once the MTA role runs.
    mta_served: OnceLock<MtaServed>,
    /// Told of every generated file served, once set.
    served: OnceLock<FileServed>,
}

impl std::fmt::Debug for Generated {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Generated")
            .field("generator", &self.generator)
            .field("counters", &self.counters)
            .field("mta_served", &self.mta_served.get().is_some())
            .finish_non_exhaustive()
    }
}

/// What [`Generated`] counts.
#[derive(Debug, Default)]
pub struct GeneratedCounters {
    /// Generated files served.
    pub served: AtomicU64,
    /// Refused by TFTP-enforce (asked for from another address than the device's lease).
    pub refused: AtomicU64,
    /// Not generated: the template did not render or its text did not compile.
    pub failed: AtomicU64,
}

impl Generated {
    pub fn new(generator: Arc<Generator>) -> Self {
        Generated {
            generator,
            counters: GeneratedCounters::default(),
            log_limit: Mutex::new(RateLimit::per_sec(5)),
            mta_served: OnceLock::new(),
            served: OnceLock::new(),
        }
    }

    pub fn generator(&self) -> &Arc<Generator> {
        &self.generator
    }

    pub fn counters(&self) -> &GeneratedCounters {
        &self.counters
    }

    /// From now on, tell `hook` of each generated file served. Only the first hook set is kept.
    pub fn notify_served(&self, hook: FileServed) {
        let _ = self.served.set(hook);
    }

    /// From now on, tell `hook` of each MTA file served. Only the first hook set is kept.
    pub fn notify_mta(&self, hook: MtaServed) {
        let _ = self.mta_served.set(hook);
    }

    fn log(&self, f: impl FnOnce(u64)) {
        let allowed = self
            .log_limit
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .allow();
        if let Some(held) = allowed {
            f(held);
        }
    }
}

impl FileSource for Generated {
    fn open(&self, req: &TransferRequest<'_>) -> Result<FileContent, OpenError> {
        match self
            .generator
            .lookup(req.filename, *req.peer.ip(), clock::unix_secs_u32())
        {
            Ok(Some(file)) => {
                self.counters.served.fetch_add(1, Ordering::Relaxed);
                if file.owner.kind == ConfigFileKind::Mta
                    && let Some(hook) = self.mta_served.get()
                {
                    hook(file.owner.mac);
                }
                if let Some(hook) = self.served.get() {
                    hook(req, file.owner.mac, &file.bytes);
                }
                Ok(FileContent::from(file.bytes))
            }
            Ok(None) => Err(OpenError::NotMine),
            Err(e @ GenerateError::Refused { .. }) => {
                self.counters.refused.fetch_add(1, Ordering::Relaxed);
                self.log(|held| tracing::warn!(peer = %req.peer, error = %e, suppressed = held, "TFTP-enforce refused a generated file"));
                Err(OpenError::Refused(Refusal::new(
                    ErrorCode::ACCESS_VIOLATION,
                    "Access violation",
                )))
            }
            Err(e @ GenerateError::Render(_)) => {
                self.counters.failed.fetch_add(1, Ordering::Relaxed);
                self.log(|held| tracing::error!(peer = %req.peer, file = req.filename, error = %e, suppressed = held, "config file not generated"));
                Err(OpenError::Refused(Refusal::new(
                    ErrorCode::NOT_DEFINED,
                    "Config file unavailable",
                )))
            }
        }
    }
}

/// The running TFTP role.
#[derive(Debug)]
pub struct TftpRole {
    handle: TftpHandle,
    generated: Arc<Generated>,
    root: Option<PathBuf>,
}

/// Starts the TFTP workers: `pinned` first (files another role fixed, e.g. the MTA role's
/// hashed files), then generated files, then static files from `settings.root` if configured;
/// uploads (new files only) into the root when `allow_write` is on. Every socket is bound
/// before this returns.
pub fn start(
    settings: &provd_config::TftpSettings,
    pinned: Option<Arc<dyn FileSource>>,
    generated: Arc<Generated>,
    shutdown: Arc<AtomicBool>,
) -> anyhow::Result<TftpRole> {
    let mut sources: Vec<Box<dyn FileSource>> = Vec::new();
    if let Some(p) = pinned {
        sources.push(Box::new(p));
    }
    sources.push(Box::new(Arc::clone(&generated)));
    let mut uploads: Option<Arc<dyn UploadSink>> = None;
    if let Some(root) = &settings.root {
        let root = Arc::new(
            StaticRoot::new(root).with_context(|| format!("tftp.root {}", root.display()))?,
        );
        if settings.allow_write {
            uploads = Some(Arc::clone(&root) as Arc<dyn UploadSink>);
        }
        sources.push(Box::new(root));
    }
    let server = provd_tftp::ServerConfig {
        max_blksize: settings.max_blksize,
        max_windowsize: settings.max_windowsize,
        max_transfers: settings.max_transfers,
        allow_write: uploads.is_some(),
        ..provd_tftp::ServerConfig::default()
    };
    let tftpd = crate::TftpSettings {
        bind: settings.bind,
        port: settings.port,
        workers: workers_for(settings.workers),
        server,
        transfer_port_base: None,
        max_transfer_sockets: None,
        max_request_age: crate::MAX_REQUEST_AGE,
    };
    let handle = crate::spawn_with_uploads(tftpd, Arc::new(Chain::new(sources)), uploads, shutdown)
        .with_context(|| format!("starting TFTP on {}:{}", settings.bind, settings.port))?;
    Ok(TftpRole {
        handle,
        generated,
        root: settings.root.clone(),
    })
}

impl TftpRole {
    /// The listen address, with the port actually bound.
    pub fn local_addr(&self) -> std::net::SocketAddrV4 {
        self.handle.local_addr()
    }

    /// Each worker's transfer port (the XDP steering passes them to the kernel).
    pub fn transfer_ports(&self) -> &[u16] {
        self.handle.transfer_ports()
    }

    /// The static root, if one is served.
    pub fn root(&self) -> Option<&std::path::Path> {
        self.root.as_deref()
    }
}

impl Role for TftpRole {
    fn name(&self) -> &'static str {
        "tftp"
    }

    fn listening(&self) -> String {
        format!(
            "udp={} transfer_ports={:?}",
            self.handle.local_addr(),
            self.handle.transfer_ports()
        )
    }

    /// Transfers in progress, the protocol counters summed over workers (ERRORs sent by code
    /// and drops by reason where not zero), the sockets' counts, and the generated files'.
    fn counters(&self) -> Counters {
        let h = &self.handle;
        let mut out: Counters = vec![("transfers".into(), h.transfers() as u64)];
        let p = h.counters();
        out.extend(p.named().into_iter().map(|(k, v)| (k.to_string(), v)));
        for (code, &n) in p.errors_sent.iter().enumerate() {
            if n > 0 {
                out.push((format!("errors_sent_{code}"), n));
            }
        }
        for (i, &n) in p.dropped.iter().enumerate() {
            if n > 0 {
                out.push((
                    format!("dropped_{}", provd_tftp::DropReason::label_of(i)),
                    n,
                ));
            }
        }
        let io = h.io_counters();
        out.extend([
            ("datagrams_received".into(), io.datagrams_received),
            ("datagrams_sent".into(), io.datagrams_sent),
            ("send_failures".into(), io.send_failures),
            ("receive_errors".into(), io.receive_errors),
            (
                "transfer_socket_failures".into(),
                io.transfer_socket_failures,
            ),
            ("shared_port_fallbacks".into(), io.shared_port_fallbacks),
            ("stale_requests".into(), io.stale_requests),
        ]);
        let g = self.generated.counters();
        out.extend([
            ("generated".into(), g.served.load(Ordering::Relaxed)),
            ("enforce_refused".into(), g.refused.load(Ordering::Relaxed)),
            ("generate_failed".into(), g.failed.load(Ordering::Relaxed)),
        ]);
        out
    }

    /// Typed families from the same sources as [`Role::counters`] (summed over workers, read
    /// from what each worker publishes once per loop turn): transfers in progress, requests by
    /// op, ERRORs sent by code, drops by reason, every protocol count, the sockets' and the
    /// generated files' counts. Transfer durations are the facade's
    /// `provd_tftp_transfer_duration_seconds`.
    fn metrics(&self, out: &mut dyn provd_role::metrics::MetricsSink) {
        let h = &self.handle;
        out.gauge(
            "provd_tftp_transfers_active",
            "TFTP transfers in the table: deciding, in progress or dallying.",
            &[],
            h.transfers() as f64,
        );
        let p = h.counters();
        for (op, n) in [("read", p.rrq), ("write", p.wrq)] {
            out.counter(
                "provd_tftp_requests_total",
                "TFTP requests received, by op (duplicates included).",
                &[("op", op)],
                n,
            );
        }
        for (name, n) in p.named() {
            let family = match name {
                "rrq" | "wrq" => continue,
                "data_bytes_sent" => "provd_tftp_data_sent_bytes_total".to_string(),
                _ => format!("provd_tftp_{name}_total"),
            };
            let help = format!("TFTP protocol count {name:?} (see provd_tftp::Counters).");
            out.counter(&family, &help, &[], n);
        }
        for (code, &n) in p.errors_sent.iter().enumerate() {
            out.counter(
                "provd_tftp_errors_sent_total",
                "TFTP ERROR packets sent, by error code.",
                &[("code", &code.to_string())],
                n,
            );
        }
        for (i, &n) in p.dropped.iter().enumerate() {
            out.counter(
                "provd_tftp_drops_total",
                "TFTP datagrams dropped without changing any transfer, by reason.",
                &[("reason", provd_tftp::DropReason::label_of(i))],
                n,
            );
        }
        let io = h.io_counters();
        for (name, help, n) in [
            (
                "provd_tftp_datagrams_received_total",
                "Datagrams the TFTP sockets received.",
                io.datagrams_received,
            ),
            (
                "provd_tftp_datagrams_sent_total",
                "Datagrams the TFTP sockets sent.",
                io.datagrams_sent,
            ),
            (
                "provd_tftp_send_failures_total",
                "Datagrams the kernel would not take.",
                io.send_failures,
            ),
            (
                "provd_tftp_receive_errors_total",
                "Errors reading a TFTP socket.",
                io.receive_errors,
            ),
            (
                "provd_tftp_transfer_socket_failures_total",
                "Transfers refused for want of a socket on a port of their own.",
                io.transfer_socket_failures,
            ),
            (
                "provd_tftp_stale_requests_total",
                "Requests dropped unanswered: they waited in the queue past their usefulness.",
                io.stale_requests,
            ),
            (
                "provd_tftp_shared_port_fallbacks_total",
                "One-block files served from the shared transfer port for want of a socket on \
                 a port of their own.",
                io.shared_port_fallbacks,
            ),
        ] {
            out.counter(name, help, &[], n);
        }
        let g = self.generated.counters();
        for (name, help, n) in [
            (
                "provd_tftp_generated_files_total",
                "Generated config files served.",
                &g.served,
            ),
            (
                "provd_tftp_enforce_refused_total",
                "Generated files refused by TFTP-enforce (asked from another address than the \
                 device's lease).",
                &g.refused,
            ),
            (
                "provd_tftp_generate_failures_total",
                "Generated files not served: the template did not render or compile.",
                &g.failed,
            ),
        ] {
            out.counter(name, help, &[], n.load(Ordering::Relaxed));
        }
    }

    fn finished(&self) -> bool {
        self.handle.any_finished()
    }

    fn stop(self: Box<Self>, grace: Duration) -> anyhow::Result<()> {
        self.handle.shutdown();
        self.handle.join_within(grace).context("TFTP worker failed")
    }
}
