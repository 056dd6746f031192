//! Startup recovery: `replay` merges every shard's snapshot and log into one newest record per
//! client, and `remove_stale_shards` clears files of shards that no longer exist.
//!
//! Replay does not care how many shards wrote the files: the highest seq per key wins, so the
//! engine may restart with a different worker count, re-snapshot under it, then drop the rest.

use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::fmt;
use std::fs::{self, File};
use std::hash::BuildHasher;
use std::io;
use std::path::{Path, PathBuf};

use crate::key::ClientKey;
use crate::log::{LogError, ScanEnd, ShardFile, parse_shard_name, scan_file, sync_dir};
use crate::record::{FileKind, Lease, LeaseRecord};

/// What replay recovered.
pub struct Replay {
    /// The newest record of each client, in no particular order.
    pub records: Vec<LeaseRecord>,
    /// Highest seq seen in any file (0 if none); the engine opens its logs at `max_seq + 1`.
    pub max_seq: u64,
    pub report: ReplayReport,
}

impl fmt::Debug for Replay {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Replay")
            .field("records", &self.records.len())
            .field("max_seq", &self.max_seq)
            .field("report", &self.report)
            .finish()
    }
}

/// What replay saw, for the startup log line and metrics.
#[derive(Debug, Default, Clone)]
pub struct ReplayReport {
    /// Snapshot and log files read.
    pub files: u32,
    /// Good records decoded, superseded ones included.
    pub records_read: u64,
    /// Files that ended in the remains of an interrupted write.
    pub torn_tails: u32,
    /// Files that stopped at a damaged record (or had a wrong header) with data after it.
    pub corrupt_records: u32,
    /// Total size of the files read.
    pub bytes: u64,
}

// Size of a MAC-keyed record, to estimate the record count from the file sizes.
const TYPICAL_RECORD_LEN: u64 = 41;
// Records per partition the merge aims for: a partition's dedupe map then stays in L2.
const PARTITION_TARGET: u64 = 4096;
const MAX_PARTITION_BITS: u32 = 10;
// A partition is deduplicated in place once it doubles past what its last dedupe left (and at
// least this many records), so a log full of updates to the same clients cannot balloon memory.
const DEDUPE_MIN: usize = 1024;

/// Keeps the highest-seq record per key without one big random-access hash map.
///
/// One map over a million keys costs a cache and TLB miss per insert (about 1 us each measured
/// here, most of replay's time). Instead records are split by key hash into partitions of a few
/// thousand, pushed sequentially, and each partition is deduplicated with a small map that stays
/// in cache: about four times faster at a million records.
struct Merge {
    hasher: foldhash::fast::RandomState,
    shift: u32,
    parts: Vec<Partition>,
    scratch: HashMap<ClientKey, (u64, Lease), foldhash::fast::RandomState>,
}

struct Partition {
    records: Vec<LeaseRecord>,
    deduped: usize,
}

impl Merge {
    fn new(estimated_records: u64) -> Self {
        let wanted = (estimated_records / PARTITION_TARGET).max(1);
        let bits = (u64::BITS - (wanted - 1).leading_zeros()).min(MAX_PARTITION_BITS);
        // Preallocate what the estimate says a partition gets, but not past where in-place
        // dedupes bound it: a huge log of repeated updates must not reserve its full size.
        let per_part = usize::try_from(estimated_records >> bits)
            .unwrap_or(usize::MAX)
            .min(4 * DEDUPE_MIN);
        Merge {
            hasher: Default::default(),
            // With 0 bits every key goes to partition 0 (the shift is split so it never hits 64).
            shift: 64 - bits,
            parts: (0..1usize << bits)
                .map(|_| Partition {
                    records: Vec::with_capacity(per_part),
                    deduped: 0,
                })
                .collect(),
            scratch: HashMap::default(),
        }
    }

    fn push(&mut self, rec: LeaseRecord) {
        let h = self.hasher.hash_one(&rec.key);
        let index = ((h >> 1) >> (self.shift - 1)) as usize;
        // index < parts.len() by construction; `get_mut` keeps this panic-free regardless.
        let Some(part) = self.parts.get_mut(index) else {
            return;
        };
        part.records.push(rec);
        if part.records.len() >= (2 * part.deduped).max(DEDUPE_MIN) {
            dedupe(part, &mut self.scratch);
        }
    }

    fn finish(mut self) -> Vec<LeaseRecord> {
        let total = self.parts.iter().map(|p| p.records.len()).sum();
        let mut out = Vec::with_capacity(total);
        for part in &mut self.parts {
            dedupe(part, &mut self.scratch);
            out.append(&mut part.records);
            part.records = Vec::new();
        }
        out
    }
}

/// Leaves one record per key in `part`, the highest seq (the earliest pushed on a tie).
fn dedupe(
    part: &mut Partition,
    scratch: &mut HashMap<ClientKey, (u64, Lease), foldhash::fast::RandomState>,
) {
    scratch.reserve(part.records.len());
    for rec in part.records.drain(..) {
        match scratch.entry(rec.key) {
            Entry::Occupied(mut e) => {
                if rec.seq > e.get().0 {
                    e.insert((rec.seq, rec.lease));
                }
            }
            Entry::Vacant(e) => {
                e.insert((rec.seq, rec.lease));
            }
        }
    }
    part.records.extend(
        scratch
            .drain()
            .map(|(key, (seq, lease))| LeaseRecord { seq, key, lease }),
    );
    part.deduped = part.records.len();
}

/// Reads every `shard-*.snap` and `shard-*.log` in dir (whatever shard count wrote them), keeps the
/// record with the highest seq per ClientKey, and reports what it saw. A torn last record
/// (crash mid-write) ends that file quietly and is counted; a bad CRC before the end is counted
/// as corruption, and replay stops reading that file there (never panics, never errors on content;
/// only I/O errors are Err).
///
/// A directory that does not exist yet (first start) replays as empty.
pub fn replay(dir: &Path) -> Result<Replay, LogError> {
    let mut report = ReplayReport::default();
    let mut files = list_shard_files(dir)?;
    files.retain(|(_, kind, _)| *kind != ShardFile::SnapshotTmp);
    // Per shard, snapshot before log: the order only matters for equal seqs, which the seq rule
    // rules out, but it keeps the result independent of directory order.
    files.sort();

    let mut sizes = 0u64;
    for (_, _, path) in &files {
        sizes += fs::metadata(path).map(|m| m.len()).unwrap_or(0);
    }
    let mut merge = Merge::new(sizes / TYPICAL_RECORD_LEN);
    let mut max_seq = 0u64;

    for (_, kind, path) in &files {
        let mut file = match File::open(path) {
            Ok(f) => f,
            // Removed between listing and opening (remove_stale_shards racing): nothing to read.
            Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
            Err(e) => return Err(io_error("open", path, e)),
        };
        let file_kind = match kind {
            ShardFile::Log => FileKind::Log,
            _ => FileKind::Snapshot,
        };
        let scan = scan_file(&mut file, file_kind, |rec| {
            max_seq = max_seq.max(rec.seq);
            merge.push(rec);
        })
        .map_err(|e| io_error("read", path, e))?;
        report.files += 1;
        report.records_read += scan.records;
        report.bytes += scan.file_len;
        match scan.end {
            ScanEnd::Clean => {}
            ScanEnd::TornTail => report.torn_tails += 1,
            ScanEnd::Corrupt | ScanEnd::BadHeader => report.corrupt_records += 1,
        }
    }

    let records = merge.finish();
    Ok(Replay {
        records,
        max_seq,
        report,
    })
}

/// Removes shard files whose shard index >= keep (used after the engine re-snapshots under a new shard count).
///
/// Removes `.log`, `.snap` and leftover `.snap.tmp` files; `.log.corrupt` copies are kept for
/// whoever investigates them.
pub fn remove_stale_shards(dir: &Path, keep: u32) -> Result<(), LogError> {
    remove_stale_shard_files(dir, keep).map(drop)
}

/// [`remove_stale_shards`], returning how many files it removed.
pub(crate) fn remove_stale_shard_files(dir: &Path, keep: u32) -> Result<u32, LogError> {
    let mut removed = 0u32;
    for (shard, _, path) in list_shard_files(dir)? {
        if shard < keep {
            continue;
        }
        match fs::remove_file(&path) {
            Ok(()) => removed += 1,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(io_error("remove", &path, e)),
        }
    }
    if removed > 0 {
        sync_dir(dir)?;
    }
    Ok(removed)
}

fn list_shard_files(dir: &Path) -> Result<Vec<(u32, ShardFile, PathBuf)>, LogError> {
    let entries = match fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(io_error("list", dir, e)),
    };
    let mut files = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| io_error("list", dir, e))?;
        let name = entry.file_name();
        let Some((shard, kind)) = name.to_str().and_then(parse_shard_name) else {
            continue;
        };
        files.push((shard, kind, entry.path()));
    }
    Ok(files)
}

fn io_error(op: &'static str, path: &Path, source: io::Error) -> LogError {
    LogError::Io {
        op,
        path: path.to_path_buf(),
        source,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::LeaseState;
    use std::net::Ipv4Addr;

    fn rec(key: u32, seq: u64) -> LeaseRecord {
        LeaseRecord {
            seq,
            key: ClientKey::from_client_id(&key.to_le_bytes()),
            lease: Lease {
                addr: Ipv4Addr::from(key),
                // Tells apart records of one key with the same seq.
                expires_at: (seq as u32) ^ 0x5555,
                state: LeaseState::Bound,
                chaddr: [0; 6],
                pool: 0,
            },
        }
    }

    #[test]
    fn partitioned_merge_keeps_the_newest_per_key() {
        // Many partitions, many updates per key (so partitions dedupe in place while filling),
        // seqs out of order across the stream.
        let mut merge = Merge::new(200_000);
        assert!(merge.parts.len() > 8);
        let mut naive: HashMap<ClientKey, LeaseRecord> = HashMap::new();
        let mut x = 12345u64;
        for _ in 0..120_000 {
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let r = rec((x >> 40) as u32 % 3000, (x >> 20) % 50_000);
            match naive.get(&r.key) {
                Some(old) if old.seq >= r.seq => {}
                _ => {
                    naive.insert(r.key.clone(), r.clone());
                }
            }
            merge.push(r);
        }
        // Memory stays near the distinct count, not the records pushed.
        let held: usize = merge.parts.iter().map(|p| p.records.len()).sum();
        assert!(held <= merge.parts.len() * DEDUPE_MIN + 2 * 3000, "{held}");
        let mut got = merge.finish();
        assert_eq!(got.len(), naive.len());
        got.sort_by_key(|r| r.key.as_bytes().to_vec());
        let mut want: Vec<_> = naive.into_values().collect();
        want.sort_by_key(|r| r.key.as_bytes().to_vec());
        assert_eq!(got, want);
    }

    #[test]
    fn merge_ties_keep_the_first_pushed() {
        let mut merge = Merge::new(0);
        assert_eq!(merge.parts.len(), 1);
        let first = rec(1, 10);
        let mut second = rec(1, 10);
        second.lease.pool = 9;
        merge.push(first.clone());
        for i in 0..3000 {
            merge.push(rec(1000 + i, 1)); // forces in-place dedupes between the two
        }
        merge.push(second);
        let got = merge.finish();
        assert_eq!(got.len(), 3001);
        assert!(got.contains(&first));
    }
}
