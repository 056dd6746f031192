//! The task journal: what makes a task the API acknowledged survive a crash.
//!
//! The snapshot ([`crate::persist`]) is written every few seconds at best, while the task API
//! answers at once; a task it answered for must not be lost by a `kill -9` in between. So every
//! task the API queues is appended here, and the file synced, before the API answers; when
//! such a task leaves the queue (answered, or failed for good) a line says so, unsynced (at
//! worst a finished task runs again after a crash: at least once, never lost).
//!
//! ```text
//! {"q":17,"devs":[["00D09E","SIM","SN1"],["00D09E","SIM","SN2"]],"env":"<soap:Envelope ..."}
//! {"d":17}
//! ```
//!
//! A snapshot rotates the journal (`tasks.journal` → `tasks.journal.old`) before it starts and
//! removes the old file once the snapshot is renamed into place; tasks carry their sequence
//! number into the snapshot, so replaying a journal over a snapshot that already holds some of
//! its tasks queues none twice. A torn last line was never synced, so never acknowledged: it
//! is skipped.

use std::collections::HashSet;
use std::fs::{File, OpenOptions};
use std::io::{self, BufRead, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use serde::{Deserialize, Serialize};

const CURRENT: &str = "tasks.journal";
const OLD: &str = "tasks.journal.old";

/// A device as its DeviceId parts: OUI, product class, serial number.
pub type DeviceId = [String; 3];

#[derive(Debug, Default, Serialize, Deserialize)]
struct Entry {
    /// Queued: the first sequence number; device `i` of `devs` has `q + i`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    q: Option<u64>,
    /// Each device as its DeviceId: OUI, product class, serial number.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    devs: Vec<DeviceId>,
    /// The request as the CWMP envelope that will be sent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    env: Option<String>,
    /// Done: the sequence number of a task that left the queue.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    d: Option<u64>,
}

/// The open journal of one ACS.
#[derive(Debug)]
pub struct Journal {
    dir: PathBuf,
    inner: Mutex<Inner>,
}

#[derive(Debug)]
struct Inner {
    file: File,
    next_seq: u64,
}

/// What the journals in a directory hold.
#[derive(Debug, Default)]
pub struct Replay {
    /// Tasks queued and not marked done, in order: (sequence number, device, envelope).
    pub queued: Vec<(u64, DeviceId, String)>,
    /// Sequence numbers marked done (a snapshot's task with one of these is finished).
    pub done: HashSet<u64>,
    /// The next free sequence number.
    pub next_seq: u64,
    /// Lines that did not parse (a torn tail).
    pub bad_lines: usize,
}

fn open_append(path: &Path) -> io::Result<File> {
    OpenOptions::new().create(true).append(true).open(path)
}

/// Whether the file is empty or ends with a newline.
fn ends_with_newline(path: &Path) -> io::Result<bool> {
    use std::io::{Read, Seek, SeekFrom};
    let mut f = File::open(path)?;
    if f.metadata()?.len() == 0 {
        return Ok(true);
    }
    f.seek(SeekFrom::End(-1))?;
    let mut last = [0u8];
    f.read_exact(&mut last)?;
    Ok(last[0] == b'\n')
}

impl Journal {
    /// Opens (or creates) the journal in `dir` for appending; sequence numbers go on from
    /// `next_seq` (what [`replay`] found).
    pub fn open(dir: &Path, next_seq: u64) -> io::Result<Journal> {
        std::fs::create_dir_all(dir)?;
        let mut file = open_append(&dir.join(CURRENT))?;
        // A torn last line (a crash mid-append) must not swallow the next entry.
        if !ends_with_newline(&dir.join(CURRENT))? {
            file.write_all(b"\n")?;
        }
        Ok(Journal {
            dir: dir.to_path_buf(),
            inner: Mutex::new(Inner {
                file,
                next_seq: next_seq.max(1),
            }),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Appends one request queued for each of `devs` and syncs the file; returns the first
    /// sequence number (device `i` gets `first + i`). Only when this returns Ok is the task
    /// durable, and only then may the API say it is queued.
    pub fn queued(&self, devs: &[DeviceId], envelope: &str) -> io::Result<u64> {
        let mut g = self.lock();
        let first = g.next_seq;
        let mut line = serde_json::to_vec(&Entry {
            q: Some(first),
            devs: devs.to_vec(),
            env: Some(envelope.to_owned()),
            d: None,
        })
        .map_err(io::Error::other)?;
        line.push(b'\n');
        g.file.write_all(&line)?;
        g.file.sync_data()?;
        g.next_seq += devs.len() as u64;
        Ok(first)
    }

    /// Notes that task `seq` left the queue (not synced: see the module documentation).
    pub fn done(&self, seq: u64) -> io::Result<()> {
        let mut line = serde_json::to_vec(&Entry {
            d: Some(seq),
            ..Entry::default()
        })
        .map_err(io::Error::other)?;
        line.push(b'\n');
        self.lock().file.write_all(&line)
    }

    /// Before a snapshot: moves the journal aside and starts a new one. Returns false (and
    /// keeps writing the current one) when an older rotated journal is still there, i.e. the
    /// snapshot that should have replaced it never finished.
    pub fn rotate(&self) -> io::Result<bool> {
        let mut g = self.lock();
        let old = self.dir.join(OLD);
        if old.exists() {
            return Ok(false);
        }
        g.file.sync_data()?;
        std::fs::rename(self.dir.join(CURRENT), &old)?;
        g.file = open_append(&self.dir.join(CURRENT))?;
        Ok(true)
    }

    /// After the snapshot is in place: the rotated journal is no longer needed.
    pub fn rotated_away(&self) -> io::Result<()> {
        match std::fs::remove_file(self.dir.join(OLD)) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        }
    }
}

/// Reads the journals in `dir` (the rotated one first), if any.
pub fn replay(dir: &Path) -> io::Result<Replay> {
    let mut files = Vec::new();
    for name in [OLD, CURRENT] {
        match File::open(dir.join(name)) {
            Ok(f) => files.push(io::BufReader::new(f)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
    }
    replay_from(files)
}

/// Reads journals from `sources`, oldest first: [`replay`] without the files (and what the
/// fuzz target drives).
pub fn replay_from<R: BufRead>(sources: impl IntoIterator<Item = R>) -> io::Result<Replay> {
    let mut r = Replay {
        next_seq: 1,
        ..Replay::default()
    };
    for source in sources {
        for line in source.split(b'\n') {
            let line = line?;
            let Ok(e) = serde_json::from_slice::<Entry>(&line) else {
                r.bad_lines += 1;
                continue;
            };
            match (e.q, e.env, e.d) {
                (Some(first), Some(env), None) => {
                    for (i, dev) in e.devs.into_iter().enumerate() {
                        // Sequence numbers near u64::MAX are not ours: the line is damaged.
                        let Some(seq) = first.checked_add(i as u64).filter(|&s| s < u64::MAX)
                        else {
                            r.bad_lines += 1;
                            break;
                        };
                        r.next_seq = r.next_seq.max(seq + 1);
                        r.queued.push((seq, dev, env.clone()));
                    }
                }
                (None, None, Some(seq)) if seq < u64::MAX => {
                    r.next_seq = r.next_seq.max(seq + 1);
                    r.done.insert(seq);
                }
                _ => r.bad_lines += 1,
            }
        }
    }
    let done = &r.done;
    r.queued.retain(|(seq, _, _)| !done.contains(seq));
    Ok(r)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(serial: &str) -> DeviceId {
        ["00D09E".into(), "SIM".into(), serial.into()]
    }

    fn dir(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("provd-journal-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        d
    }

    #[test]
    fn queued_and_done_replay_to_what_is_still_queued() {
        let d = dir("replay");
        let j = Journal::open(&d, 1).unwrap();
        assert_eq!(j.queued(&[id("A"), id("B")], "<e1/>").unwrap(), 1);
        assert_eq!(j.queued(&[id("C")], "<e2/>").unwrap(), 3);
        j.done(2).unwrap();
        drop(j);
        let r = replay(&d).unwrap();
        assert_eq!(
            r.queued,
            vec![(1, id("A"), "<e1/>".into()), (3, id("C"), "<e2/>".into())]
        );
        assert!(r.done.contains(&2));
        assert_eq!(r.next_seq, 4);
        assert_eq!(r.bad_lines, 0);
        let _ = std::fs::remove_dir_all(&d);
    }

    #[test]
    fn a_torn_tail_is_skipped_and_rotation_keeps_both_files_until_the_snapshot_lands() {
        let d = dir("rotate");
        let j = Journal::open(&d, 10).unwrap();
        assert_eq!(j.queued(&[id("A")], "<e/>").unwrap(), 10);
        assert!(j.rotate().unwrap());
        assert_eq!(j.queued(&[id("B")], "<e/>").unwrap(), 11);
        // A second rotation before the first snapshot landed keeps writing the new file.
        assert!(!j.rotate().unwrap());
        j.done(10).unwrap();
        drop(j);
        let mut f = open_append(&d.join(CURRENT)).unwrap();
        f.write_all(b"{\"q\":12,\"devs\":[\"C\"],\"en").unwrap();
        drop(f);
        let r = replay(&d).unwrap();
        assert_eq!(r.queued, vec![(11, id("B"), "<e/>".into())]);
        assert_eq!(r.bad_lines, 1);
        assert_eq!(r.next_seq, 12);
        let j = Journal::open(&d, r.next_seq).unwrap();
        assert_eq!(j.queued(&[id("D")], "<e/>").unwrap(), 12);
        let r = replay(&d).unwrap();
        assert_eq!(
            r.queued,
            vec![(11, id("B"), "<e/>".into()), (12, id("D"), "<e/>".into())],
            "an entry appended after a torn tail reads back"
        );
        j.rotated_away().unwrap();
        assert!(!d.join(OLD).exists());
        let _ = std::fs::remove_dir_all(&d);
    }
}
