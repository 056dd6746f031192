//! `provd import` and `provd export`: devices in and out of the store (CSV or JSON lines), and a
//! Kea memfile lease file into the lease log, so a move from Kea renumbers nobody.
//!
//! The formats are `provd_store::import`'s; this module reads files, chunks rows into the store,
//! reports bad rows (line and field) on stderr and a summary at the end. Good rows land even
//! when some are bad; the exit code says whether any was.

use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::fs::File;
use std::io::{self, BufWriter, IsTerminal, Read, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use clap::{Subcommand, ValueEnum};
use provd_config::Policy;
use provd_config::ReservationKey;
use provd_lease::{ClientKey, Lease, LeaseLog, LeaseState};
use provd_store::import::{self, KeaLease, KeaState, RowError};
use provd_store::{Actor, DeviceFilter, DeviceSpec, ImportCounts, PageRequest, Store, StoreError};

/// Rows per `Store::import_devices` call: one transaction each.
pub const CHUNK_ROWS: usize = 10_000;

/// A devices file's format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    Csv,
    Jsonl,
}

impl Format {
    /// By the file's extension: `.csv`, or `.jsonl` / `.ndjson` / `.json`.
    fn of(path: &Path) -> Option<Format> {
        match path.extension()?.to_str()?.to_ascii_lowercase().as_str() {
            "csv" => Some(Format::Csv),
            "jsonl" | "ndjson" | "json" => Some(Format::Jsonl),
            _ => None,
        }
    }
}

/// `provd import ...`
#[derive(Debug, Subcommand)]
pub enum ImportCmd {
    /// Devices from a CSV file (a header row naming mac, type, subscriber, class_of_service,
    /// serial, device_id, duid, var.NAME) or a JSON lines file into the store. Bad rows are reported with their
    /// line and field; the good ones land. Running it twice changes nothing the second time.
    Devices {
        file: PathBuf,
        #[arg(long, short)]
        config: PathBuf,
        /// Default: by the file's extension (.csv, .jsonl).
        #[arg(long, value_enum)]
        format: Option<Format>,
    },
    /// A Kea memfile lease4 CSV (e.g. /var/lib/kea/kea-leases4.csv) into the lease log, so
    /// each client keeps its address. provd must not be running on the lease directory.
    KeaLeases {
        file: PathBuf,
        #[arg(long, short)]
        config: PathBuf,
    },
}

/// `provd export ...`
#[derive(Debug, Subcommand)]
pub enum ExportCmd {
    /// Every device in the store, in a format `provd import devices` reads back.
    Devices {
        #[arg(long, short)]
        config: PathBuf,
        #[arg(long, value_enum, default_value_t = Format::Jsonl)]
        format: Format,
        /// Default: standard output.
        #[arg(long, short)]
        output: Option<PathBuf>,
    },
}

pub fn import(cmd: ImportCmd) -> Result<ExitCode> {
    match cmd {
        ImportCmd::Devices {
            file,
            config,
            format,
        } => {
            let policy = crate::load(&config)?;
            let format = match format.or_else(|| Format::of(&file)) {
                Some(f) => f,
                None => bail!(
                    "{}: say --format csv or --format jsonl (the extension does not tell)",
                    file.display()
                ),
            };
            let store = open_store(&policy)?;
            let input = File::open(&file).with_context(|| format!("opening {}", file.display()))?;
            let size = input.metadata().map(|m| m.len()).unwrap_or(0);
            let progress = Progress::new(size);
            let reader = progress.wrap(input);
            let rows: Box<dyn Iterator<Item = Result<(u64, DeviceSpec), RowError>>> = match format {
                Format::Csv => Box::new(import::parse_devices_csv_numbered(reader)),
                Format::Jsonl => Box::new(import::parse_devices_jsonl_numbered(reader)),
            };
            let mut report = |e: &RowError| progress.println(&format!("{}: {e}", file.display()));
            let summary =
                import_devices(&*store, rows, &Actor::Cli(user()), &mut report, &progress);
            progress.finish();
            let summary = summary?;
            let c = summary.counts;
            eprintln!(
                "imported: created={} updated={} unchanged={} bad={}",
                c.created, c.updated, c.unchanged, summary.bad
            );
            Ok(exit_code(summary.bad))
        }
        ImportCmd::KeaLeases { file, config } => {
            let policy = crate::load(&config)?;
            let input = File::open(&file).with_context(|| format!("opening {}", file.display()))?;
            let mut report = |e: &RowError| eprintln!("{}: {e}", file.display());
            let s = import_kea_leases(&policy, input, now(), &mut report)?;
            eprintln!(
                "imported: leases={} expired={} not_bound={} deleted_or_replaced={} bad={}",
                s.imported, s.expired, s.not_bound, s.superseded, s.bad
            );
            Ok(exit_code(s.bad))
        }
    }
}

pub fn export(cmd: ExportCmd) -> Result<ExitCode> {
    let ExportCmd::Devices {
        config,
        format,
        output,
    } = cmd;
    let policy = crate::load(&config)?;
    let store = open_store(&policy)?;
    let out: Box<dyn Write> = match &output {
        Some(p) => Box::new(File::create(p).with_context(|| format!("creating {}", p.display()))?),
        None => Box::new(io::stdout().lock()),
    };
    let n = export_devices(&*store, format, BufWriter::new(out))?;
    if let Some(p) = &output {
        // The file is complete only once it is on disk.
        File::open(p)
            .and_then(|f| f.sync_all())
            .with_context(|| format!("syncing {}", p.display()))?;
    }
    eprintln!("exported: devices={n}");
    Ok(ExitCode::SUCCESS)
}

fn exit_code(bad: u64) -> ExitCode {
    if bad == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

fn now() -> u32 {
    provd_role::clock::unix_secs_u32()
}

/// Who the audit log says ran the command.
fn user() -> String {
    std::env::var("SUDO_USER")
        .or_else(|_| std::env::var("USER"))
        .unwrap_or_else(|_| "unknown".to_owned())
}

// ---------------------------------------------------------------------------------------------
// The store

/// The store the config names (`[store]`).
fn open_store(policy: &Policy) -> Result<Arc<dyn Store>> {
    let loc = crate::control::location(policy);
    provd_store::open(&loc).with_context(|| format!("opening the store ({loc:?})"))
}

/// What an import of devices did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct DevicesSummary {
    pub counts: ImportCounts,
    /// Rows reported bad (by the parser or by the store).
    pub bad: u64,
}

/// Feeds `rows` into `store` [`CHUNK_ROWS`] at a time; every bad row goes to `report`. A chunk
/// the store refuses for one row's sake is split until the row is alone, so the others still
/// land. A backend failure (not a row's fault) stops the import with an error.
pub fn import_devices(
    store: &dyn Store,
    rows: impl Iterator<Item = Result<(u64, DeviceSpec), RowError>>,
    who: &Actor,
    report: &mut dyn FnMut(&RowError),
    progress: &Progress,
) -> Result<DevicesSummary> {
    import_devices_by(CHUNK_ROWS, store, rows, who, report, progress)
}

/// [`import_devices`] with chunks of `chunk_rows`.
fn import_devices_by(
    chunk_rows: usize,
    store: &dyn Store,
    rows: impl Iterator<Item = Result<(u64, DeviceSpec), RowError>>,
    who: &Actor,
    report: &mut dyn FnMut(&RowError),
    progress: &Progress,
) -> Result<DevicesSummary> {
    let mut summary = DevicesSummary::default();
    let mut chunk: Vec<DeviceSpec> = Vec::with_capacity(chunk_rows);
    let mut lines: Vec<u64> = Vec::with_capacity(chunk_rows);
    for row in rows {
        match row {
            Ok((line, d)) => {
                chunk.push(d);
                lines.push(line);
            }
            Err(e) => {
                summary.bad += 1;
                report(&e);
            }
        }
        if chunk.len() >= chunk_rows {
            land(store, &chunk, &lines, who, &mut summary, report)?;
            progress.rows(summary.counts, summary.bad);
            chunk.clear();
            lines.clear();
        }
    }
    if !chunk.is_empty() {
        land(store, &chunk, &lines, who, &mut summary, report)?;
        progress.rows(summary.counts, summary.bad);
    }
    Ok(summary)
}

fn land(
    store: &dyn Store,
    chunk: &[DeviceSpec],
    lines: &[u64],
    who: &Actor,
    summary: &mut DevicesSummary,
    report: &mut dyn FnMut(&RowError),
) -> Result<()> {
    match store.import_devices(chunk, who) {
        Ok(c) => summary.counts += c,
        Err(e @ StoreError::Backend(_)) => return Err(e.into()),
        Err(e) => match (chunk, lines) {
            ([d], [line]) => {
                summary.bad += 1;
                let (field, message) = match e {
                    StoreError::Invalid { field, why } => (Some(field), why),
                    e => (None, e.to_string()),
                };
                report(&RowError {
                    line: *line,
                    field,
                    message: format!("{message} (device {})", d.mac),
                });
            }
            _ => {
                let mid = chunk.len() / 2;
                land(store, &chunk[..mid], &lines[..mid], who, summary, report)?;
                land(store, &chunk[mid..], &lines[mid..], who, summary, report)?;
            }
        },
    }
    Ok(())
}

/// Writes every device in the store, by MAC, as `format`; returns how many.
pub fn export_devices(store: &dyn Store, format: Format, mut out: impl Write) -> Result<u64> {
    let filter = DeviceFilter::default();
    let mut page = PageRequest::first(PageRequest::MAX);
    let mut all = Vec::new();
    let mut n = 0u64;
    loop {
        let p = store.list_devices(&filter, &page)?;
        n += p.items.len() as u64;
        match format {
            // JSON lines stream; CSV needs every device's variable names for its header.
            Format::Jsonl => {
                import::write_devices_jsonl(&mut out, p.items.iter().map(|d| &d.spec))?
            }
            Format::Csv => all.extend(p.items.into_iter().map(|d| d.spec)),
        }
        match p.next {
            Some(next) => page.after = Some(next),
            None => break,
        }
    }
    if format == Format::Csv {
        import::write_devices_csv(&mut out, &all)?;
    }
    out.flush()?;
    Ok(n)
}

// ---------------------------------------------------------------------------------------------
// Kea leases

/// What an import of Kea leases did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct KeaSummary {
    /// Bound leases written to the lease log.
    pub imported: u64,
    /// Bound in Kea but already past their end.
    pub expired: u64,
    /// Declined, reclaimed or another state: nobody holds the address.
    pub not_bound: u64,
    /// Rows the file does not end with: replaced by a later row for the address, deleted by
    /// one (valid_lifetime 0), and those deleting rows.
    pub superseded: u64,
    pub bad: u64,
}

/// Writes the live leases of a Kea memfile lease4 CSV into `policy`'s lease log as bound
/// records, with their expiry and the pool their address is in, so `provd serve` restores them
/// and each client keeps its address. Refuses while a server owns the lease directory (its
/// query socket answers): the server's own logs would race these records.
///
/// Rows that do not parse, addresses in no pool (and not reserved), and a second live lease of
/// one client are bad rows, reported to `report`; the rest are written, in one commit.
pub fn import_kea_leases(
    policy: &Policy,
    input: impl Read,
    now: u32,
    report: &mut dyn FnMut(&RowError),
) -> Result<KeaSummary> {
    let dir = &policy.server.lease_dir;
    let sock = provd_role::query::socket_path(dir);
    if std::os::unix::net::UnixStream::connect(&sock).is_ok() {
        bail!(
            "provd is running on {} (its query socket {} answers): stop it first, then import; \
             it restores the imported leases when it starts",
            dir.display(),
            sock.display()
        );
    }
    let mut s = KeaSummary::default();
    let mut rows = Vec::new();
    for row in import::parse_kea_leases_csv(input) {
        match row {
            Ok(l) => rows.push(l),
            Err(e) => {
                s.bad += 1;
                report(&e);
            }
        }
    }
    let total = rows.len() as u64;
    let leases = import::collapse_kea_leases(rows);
    s.superseded = total - leases.len() as u64;

    let mut by_key: HashMap<ClientKey, (KeaLease, u16)> = HashMap::new();
    // Found in address order; reported in line order.
    let mut refused: Vec<RowError> = Vec::new();
    for l in leases {
        if l.state != KeaState::Default {
            s.not_bound += 1;
            continue;
        }
        if !l.is_live(now) {
            s.expired += 1;
            continue;
        }
        let pool = match pool_for(policy, &l) {
            Ok(p) => p,
            Err(message) => {
                s.bad += 1;
                refused.push(RowError {
                    line: l.line,
                    field: Some("address".into()),
                    message,
                });
                continue;
            }
        };
        // The engine's key for this client: option 61 when it sent one, else the MAC.
        let key = match &l.client_id {
            Some(id) => ClientKey::from_client_id(id),
            None => ClientKey::from_hw(1, &l.mac.0),
        };
        // One client, two live addresses: the one that ends later is the current one.
        let (keep, dropped) = match by_key.entry(key) {
            Entry::Vacant(v) => {
                v.insert((l, pool));
                continue;
            }
            Entry::Occupied(o) if o.get().0.expires_at > l.expires_at => (o.get().0.clone(), l),
            Entry::Occupied(mut o) => {
                let old = o.insert((l, pool)).0;
                (o.get().0.clone(), old)
            }
        };
        s.bad += 1;
        refused.push(RowError {
            line: dropped.line,
            field: Some("address".into()),
            message: format!(
                "{}: the client also holds {} (line {}), which ends later; kept that one",
                dropped.addr, keep.addr, keep.line
            ),
        });
    }

    refused.sort_by_key(|e| e.line);
    refused.iter().for_each(&mut *report);

    let replay = provd_lease::replay(dir).with_context(|| format!("reading {}", dir.display()))?;
    let mut log = LeaseLog::open(dir, 0, replay.max_seq.saturating_add(1))
        .with_context(|| format!("opening the lease log in {}", dir.display()))?;
    let mut leases: Vec<_> = by_key.into_iter().collect();
    leases.sort_unstable_by_key(|(_, (l, _))| l.addr);
    for (key, (l, pool)) in &leases {
        log.append(
            key,
            &Lease {
                addr: l.addr,
                expires_at: l.expires_at,
                state: LeaseState::Bound,
                chaddr: l.mac.0,
                pool: *pool,
            },
        );
    }
    log.commit()
        .with_context(|| format!("writing the lease log in {}", dir.display()))?;
    s.imported = leases.len() as u64;
    Ok(s)
}

/// The pool id the engine accounts `l`'s address to: its pool, or none for a reserved address
/// (the reservation's own client only). `Err`: why the address cannot be this client's.
fn pool_for(policy: &Policy, l: &KeaLease) -> Result<u16, String> {
    if let Some(r) = policy.reservation_for_address(l.addr) {
        return match &r.key {
            ReservationKey::Mac(m) if *m != l.mac.0 => Err(format!(
                "{} is reserved for {} in the config, not {}",
                l.addr,
                provd_store::Mac(*m),
                l.mac
            )),
            _ => Ok(provd_engine::NO_POOL),
        };
    }
    policy
        .pools()
        .find(|p| p.contains(l.addr))
        .map(|p| p.id)
        .ok_or_else(|| format!("{} is in no pool of the config", l.addr))
}

// ---------------------------------------------------------------------------------------------
// Progress

/// A progress bar on a terminal; otherwise a plain line every few seconds.
#[derive(Debug)]
pub struct Progress {
    bar: Option<indicatif::ProgressBar>,
    last_line: std::cell::Cell<Instant>,
}

impl Progress {
    /// For reading `size` bytes; a bar only when stderr is a terminal.
    pub fn new(size: u64) -> Progress {
        let bar = io::stderr().is_terminal().then(|| {
            let b = indicatif::ProgressBar::new(size);
            b.set_style(
                indicatif::ProgressStyle::with_template(
                    "{bar:40} {bytes}/{total_bytes} {bytes_per_sec} eta {eta} {msg}",
                )
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
            );
            b
        });
        Progress {
            bar,
            last_line: std::cell::Cell::new(Instant::now()),
        }
    }

    /// No output at all.
    #[cfg(test)]
    fn hidden() -> Progress {
        Progress {
            bar: Some(indicatif::ProgressBar::hidden()),
            last_line: std::cell::Cell::new(Instant::now()),
        }
    }

    /// The input, counted into the bar as it is read.
    fn wrap<R: Read + 'static>(&self, r: R) -> Box<dyn Read> {
        match &self.bar {
            Some(b) => Box::new(b.wrap_read(r)),
            None => Box::new(r),
        }
    }

    fn rows(&self, c: ImportCounts, bad: u64) {
        let msg = format!(
            "created={} updated={} unchanged={} bad={bad}",
            c.created, c.updated, c.unchanged
        );
        match &self.bar {
            Some(b) => b.set_message(msg),
            None if self.last_line.get().elapsed() >= Duration::from_secs(2) => {
                self.last_line.set(Instant::now());
                eprintln!("importing: {msg}");
            }
            None => {}
        }
    }

    /// A line above the bar (a bad row), or plainly on stderr.
    fn println(&self, line: &str) {
        match &self.bar {
            Some(b) if !b.is_hidden() => b.suspend(|| eprintln!("{line}")),
            _ => eprintln!("{line}"),
        }
    }

    fn finish(&self) {
        if let Some(b) = &self.bar {
            b.finish_and_clear();
        }
    }
}

#[cfg(test)]
mod tests;
