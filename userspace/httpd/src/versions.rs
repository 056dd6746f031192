//! The durable per-device version counters: `lease_dir/http-versions.log`, one line per bump
//! (`provd_profiles::version`), synced before the profile carrying the bump is served, so a
//! crash can never make a device see a version go down. Rewritten compactly at start.

use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use provd_profiles::version::{self, VersionEntry};

use crate::HttpdError;

pub(crate) const FILE: &str = "http-versions.log";

#[derive(Debug)]
pub(crate) struct VersionStore {
    path: PathBuf,
    inner: Mutex<Inner>,
}

#[derive(Debug)]
struct Inner {
    map: HashMap<[u8; 6], VersionEntry>,
    file: File,
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
        Ok(VersionStore {
            path,
            inner: Mutex::new(Inner { map, file }),
        })
    }

    pub(crate) fn get(&self, mac: &[u8; 6]) -> Option<VersionEntry> {
        self.lock().map.get(mac).copied()
    }

    /// The version for a body with hash `body_hash`: the stored one if the body is unchanged,
    /// else a bump, written and synced before it is returned. Callers on the async runtime run
    /// this under `block_in_place` (it may sync a file).
    pub(crate) fn settle(
        &self,
        mac: &[u8; 6],
        body_hash: u64,
        first: u64,
        now: u64,
    ) -> Result<(VersionEntry, bool), std::io::Error> {
        let mut inner = self.lock();
        let prev = inner.map.get(mac).copied();
        let (e, bumped) = version::next(prev, body_hash, first, now);
        if bumped {
            let line = version::version_log_line(mac, e);
            inner.file.write_all(line.as_bytes())?;
            inner.file.sync_data()?;
            inner.map.insert(*mac, e);
        }
        Ok((e, bumped))
    }

    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }
}
