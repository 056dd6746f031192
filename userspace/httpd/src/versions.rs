//! The durable per-device version counters: `lease_dir/http-versions.log`, one line per bump
//! (`provd_profiles::version`), synced before the profile carrying the bump is served, so a
//! crash can never make a device see a version go down. Rewritten compactly at start.
//!
//! Syncs are group commits: a bump is written under the map's lock, then whoever syncs first
//! makes every line written so far durable, and the bumps it covered return without a sync of
//! their own. After a power cut every phone's first profile is a bump; one sync each, in turn
//! under the lock, held the boot storm's 10,000 phones to a few thousand profiles a second.

use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use provd_profiles::version::{self, VersionEntry};

use crate::HttpdError;

pub(crate) const FILE: &str = "http-versions.log";

#[derive(Debug)]
pub(crate) struct VersionStore {
    path: PathBuf,
    inner: Mutex<Inner>,
    /// The log, for syncing: held while a sync runs, so the syncs queue and each covers what
    /// every caller waiting on it wrote.
    syncer: Mutex<File>,
    /// Lines written (by sequence number) that a finished sync made durable.
    durable: AtomicU64,
    /// Syncs done (the tests count them).
    syncs: AtomicU64,
}

#[derive(Debug)]
struct Inner {
    /// Each device's version and the sequence number of the line that recorded it (0: from
    /// the log at start, durable).
    map: HashMap<[u8; 6], (VersionEntry, u64)>,
    file: File,
    /// Lines written since start.
    written: u64,
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> HttpdError + '_ {
    move |source| HttpdError::Io {
        path: path.to_path_buf(),
        source,
    }
}

impl VersionStore {
    /// Replays the log in `dir`, rewrites it with one line per device, and opens it for
    /// appending.
    pub(crate) fn open(dir: &Path) -> Result<VersionStore, HttpdError> {
        std::fs::create_dir_all(dir).map_err(io(dir))?;
        let path = dir.join(FILE);
        let old = match std::fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
            Err(e) => return Err(io(&path)(e)),
        };
        let (map, bad) = version::parse_version_log(&old);
        if bad > 0 {
            tracing::warn!(file = %path.display(), bad_lines = bad, "version log: lines skipped");
        }
        let tmp = dir.join(format!("{FILE}.tmp"));
        {
            let mut f = File::create(&tmp).map_err(io(&tmp))?;
            let mut text = String::new();
            for (mac, e) in &map {
                text.push_str(&version::version_log_line(mac, *e));
            }
            f.write_all(text.as_bytes()).map_err(io(&tmp))?;
            f.sync_all().map_err(io(&tmp))?;
        }
        std::fs::rename(&tmp, &path).map_err(io(&path))?;
        File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(io(dir))?;
        let file = OpenOptions::new()
            .append(true)
            .open(&path)
            .map_err(io(&path))?;
        tracing::info!(file = %path.display(), devices = map.len(), "profile versions restored");
        let syncer = file.try_clone().map_err(io(&path))?;
        Ok(VersionStore {
            path,
            inner: Mutex::new(Inner {
                map: map.into_iter().map(|(mac, e)| (mac, (e, 0))).collect(),
                file,
                written: 0,
            }),
            syncer: Mutex::new(syncer),
            durable: AtomicU64::new(0),
            syncs: AtomicU64::new(0),
        })
    }

    pub(crate) fn get(&self, mac: &[u8; 6]) -> Option<VersionEntry> {
        self.lock().map.get(mac).map(|(e, _)| *e)
    }

    /// The version for a body with hash `body_hash`: the stored one if the body is unchanged,
    /// else a bump, written; either way durable before it is returned. Callers on the async
    /// runtime run this under `block_in_place` (it may sync a file).
    pub(crate) fn settle(
        &self,
        mac: &[u8; 6],
        body_hash: u64,
        first: u64,
        now: u64,
    ) -> Result<(VersionEntry, bool), std::io::Error> {
        let (e, bumped, seq) = self.record(mac, body_hash, first, now)?;
        self.make_durable(seq)?;
        Ok((e, bumped))
    }

    /// The version for the body, a bump written (not synced) when it changed, and the sequence
    /// number of the line that must be durable before the version is served.
    fn record(
        &self,
        mac: &[u8; 6],
        body_hash: u64,
        first: u64,
        now: u64,
    ) -> Result<(VersionEntry, bool, u64), std::io::Error> {
        let mut inner = self.lock();
        let prev = inner.map.get(mac).copied();
        let (e, bumped) = version::next(prev.map(|(e, _)| e), body_hash, first, now);
        if !bumped {
            // Unchanged; its line may still wait for a sync another caller started.
            return Ok((e, false, prev.map_or(0, |(_, seq)| seq)));
        }
        let line = version::version_log_line(mac, e);
        inner.file.write_all(line.as_bytes())?;
        inner.written += 1;
        let seq = inner.written;
        inner.map.insert(*mac, (e, seq));
        Ok((e, true, seq))
    }

    /// Returns once line `seq` is durable: at once if a sync already covered it, else after a
    /// sync of everything written so far (one for every caller waiting meanwhile).
    fn make_durable(&self, seq: u64) -> Result<(), std::io::Error> {
        if self.durable.load(Ordering::Acquire) >= seq {
            return Ok(());
        }
        let file = self.syncer.lock().unwrap_or_else(|p| p.into_inner());
        if self.durable.load(Ordering::Acquire) >= seq {
            return Ok(());
        }
        // Every line written before the sync starts is covered by it.
        let target = self.lock().written;
        file.sync_data()?;
        self.syncs.fetch_add(1, Ordering::Relaxed);
        self.durable.fetch_max(target, Ordering::AcqRel);
        Ok(())
    }

    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_sync_covers_every_bump_written_before_it() {
        let dir = tempfile::tempdir().unwrap();
        let store = VersionStore::open(dir.path()).unwrap();
        let macs: Vec<[u8; 6]> = (0..3u8).map(|i| [2, 0, 0, 0, 0, i]).collect();
        let seqs: Vec<u64> = macs
            .iter()
            .map(|m| {
                let (e, bumped, seq) = store.record(m, 7, 1, 100).unwrap();
                assert!(bumped && e.version == 1);
                seq
            })
            .collect();
        assert_eq!(seqs, [1, 2, 3]);
        // The first caller's sync makes all three durable; the others need none.
        store.make_durable(1).unwrap();
        store.make_durable(3).unwrap();
        store.make_durable(2).unwrap();
        assert_eq!(store.syncs.load(Ordering::Relaxed), 1);
        // The same body again: no bump, nothing to sync.
        let (e, bumped) = store.settle(&macs[0], 7, 1, 101).unwrap();
        assert_eq!((e.version, bumped), (1, false));
        assert_eq!(store.syncs.load(Ordering::Relaxed), 1);
        // A new body: a bump and a sync of its own.
        let (e, bumped) = store.settle(&macs[0], 8, 1, 102).unwrap();
        assert_eq!((e.version, bumped), (2, true));
        assert_eq!(store.syncs.load(Ordering::Relaxed), 2);
        drop(store);
        // Everything settled is in the log.
        let again = VersionStore::open(dir.path()).unwrap();
        assert_eq!(again.get(&macs[0]).map(|e| e.version), Some(2));
        assert_eq!(again.get(&macs[2]).map(|e| e.version), Some(1));
    }

    #[test]
    fn concurrent_bumps_all_land_and_share_syncs() {
        let dir = tempfile::tempdir().unwrap();
        let store = VersionStore::open(dir.path()).unwrap();
        std::thread::scope(|s| {
            for t in 0..8u8 {
                let store = &store;
                s.spawn(move || {
                    for i in 0..50u8 {
                        let (e, bumped) = store.settle(&[2, 0, 0, 0, t, i], 1, 1, 1).unwrap();
                        assert!(bumped && e.version == 1);
                    }
                });
            }
        });
        assert!(store.syncs.load(Ordering::Relaxed) <= 400);
        assert_eq!(store.durable.load(Ordering::Relaxed), 400);
        drop(store);
        let again = VersionStore::open(dir.path()).unwrap();
        for t in 0..8u8 {
            for i in 0..50u8 {
                assert_eq!(again.get(&[2, 0, 0, 0, t, i]).map(|e| e.version), Some(1));
            }
        }
    }
}
