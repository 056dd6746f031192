//! The TFTP server as `provd serve` runs it: generated per-device files first, then the static
//! root, on the worker threads of provd-tftpd.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use anyhow::{Context, Result};
use provd_config::{ConfigFileKind, TftpSettings};
use provd_dataplane::unix_now;
use provd_files::{GenerateError, Generator};
use provd_tftpd::{
    Chain, ErrorCode, FileContent, FileSource, OpenError, Refusal, StaticRoot, TftpHandle,
    TransferRequest, UploadSink,
};
use provd_udp::RateLimit;

/// Generated files as a TFTP file source, with the refusals and failures counted and logged
/// (rate-limited: a fleet rebooting behind a misconfigured template must not flood the log).
#[derive(Debug)]
pub struct Generated {
    generator: Arc<Generator>,
    pub counters: GeneratedCounters,
    log_limit: Mutex<RateLimit>,
    /// Told of every MTA file served (BASIC flows' MTA-22/23), once the MTA role runs.
    mta: OnceLock<crossbeam_channel::Sender<crate::mta::Command>>,
}

#[derive(Debug, Default)]
pub struct GeneratedCounters {
    pub served: AtomicU64,
    pub refused: AtomicU64,
    pub failed: AtomicU64,
}

impl Generated {
    pub fn new(generator: Arc<Generator>) -> Self {
        Generated {
            generator,
            counters: GeneratedCounters::default(),
            log_limit: Mutex::new(RateLimit::per_sec(5)),
            mta: OnceLock::new(),
        }
    }

    pub fn generator(&self) -> &Arc<Generator> {
        &self.generator
    }

    /// From now on, report each MTA file served to the MTA role.
    pub fn notify_mta(&self, tx: crossbeam_channel::Sender<crate::mta::Command>) {
        let _ = self.mta.set(tx);
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
            .lookup(req.filename, *req.peer.ip(), unix_now())
        {
            Ok(Some(file)) => {
                self.counters.served.fetch_add(1, Ordering::Relaxed);
                if let Some(tx) = self.mta.get()
                    && file.owner.kind == ConfigFileKind::Mta
                {
                    let _ = tx.try_send(crate::mta::Command::Fetched(file.owner.mac));
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

/// Starts the TFTP workers: generated files, then static files from `root` if configured;
/// uploads (new files only) into `root` when `allow_write` is on.
pub fn start(
    settings: &TftpSettings,
    pinned: Option<Arc<crate::mta::Pinned>>,
    generated: Arc<Generated>,
    shutdown: Arc<AtomicBool>,
) -> Result<TftpHandle> {
    let mut sources: Vec<Box<dyn FileSource>> = Vec::new();
    if let Some(p) = pinned {
        sources.push(Box::new(p));
    }
    sources.push(Box::new(generated));
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
    let workers = match settings.workers {
        0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
        n => n,
    };
    let server = provd_tftp::ServerConfig {
        max_blksize: settings.max_blksize,
        max_windowsize: settings.max_windowsize,
        max_transfers: settings.max_transfers,
        allow_write: uploads.is_some(),
        ..provd_tftp::ServerConfig::default()
    };
    let tftpd = provd_tftpd::TftpSettings {
        bind: settings.bind,
        port: settings.port,
        workers,
        server,
        transfer_port_base: None,
    };
    provd_tftpd::spawn_with_uploads(tftpd, Arc::new(Chain::new(sources)), uploads, shutdown)
        .with_context(|| format!("starting TFTP on {}:{}", settings.bind, settings.port))
}
