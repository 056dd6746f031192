//! Start-up after replay: [`reopen`] gives each shard of the new layout its log, with every
//! restored lease rewritten under it, and leaves the directory holding that layout only.
//!
//! The order is what keeps a restart with another shard count from losing leases: a client's
//! newest record may sit in another shard's old log (or in the log of a shard that no longer
//! exists), so every shard's table is first committed to its own log, and only then are old
//! shards' files removed and each log compacted into a snapshot.

use std::path::Path;

use crate::log::{LeaseLog, LogError};
use crate::replay::remove_stale_shard_files;
use crate::table::LeaseTable;

/// The logs [`reopen`] opened, one per table, and what it did.
#[derive(Debug)]
pub struct Reopened {
    /// Shard `i`'s log, compacted to `tables[i]`, ready for its worker.
    pub logs: Vec<LeaseLog>,
    pub report: ReopenReport,
}

/// What [`reopen`] did, for the start-up log line.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct ReopenReport {
    /// Leases rewritten into the new layout's logs (every entry of every table).
    pub rewritten: u64,
    /// Files of shards at or past the new count that were removed.
    pub stale_files_removed: u32,
}

/// Reopens the lease directory `dir` for `tables.len()` shards, after [`crate::replay`] and after
/// the caller distributed the replayed records into one table per shard (the engine's
/// `Shared::restore`). Pass `next_seq = replay.max_seq + 1`.
///
/// For each shard `i`: opens its log, appends every entry of `tables[i]` and commits. Then
/// removes the files of shards `>= tables.len()` and compacts each log into a snapshot of its
/// table. When it returns, the directory's durable state is exactly `tables` and each log is
/// empty. A crash (or an error) part-way loses nothing: until a shard's rewrite is committed its
/// clients' old records are still where they were, and nothing is removed or truncated before
/// every rewrite is committed, above every seq the old files hold.
///
/// Errors name the file and the operation that failed; the directory may then hold both layouts,
/// which a later [`crate::replay`] merges as usual.
pub fn reopen(dir: &Path, tables: &[LeaseTable], next_seq: u64) -> Result<Reopened, LogError> {
    let shards = u32::try_from(tables.len()).unwrap_or(u32::MAX);
    let mut report = ReopenReport::default();
    let mut logs = Vec::with_capacity(tables.len());
    for (shard, table) in (0..shards).zip(tables) {
        let mut log = LeaseLog::open(dir, shard, next_seq)?;
        for (key, lease) in table.iter() {
            log.append(key, lease);
            report.rewritten += 1;
        }
        log.commit()?;
        logs.push(log);
    }
    report.stale_files_removed = remove_stale_shard_files(dir, shards)?;
    for (log, table) in logs.iter_mut().zip(tables) {
        log.compact(table)?;
    }
    Ok(Reopened { logs, report })
}
