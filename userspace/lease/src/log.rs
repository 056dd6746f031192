//! `LeaseLog`: one shard's durable append-only log with group commit and compaction, plus the
//! shard file naming and the file scanner that both opening and replay use.
//!
//! Why group commit: an fdatasync costs a disk round trip (~0.1-10 ms), far more than building a
//! reply, so a worker appends every change of a batch of packets and pays one write and one sync
//! for all of them before it sends any of the replies. A record is acknowledged to a client only
//! after `commit()` returns, so a crash can lose work but never a lease a client was told about.

use std::fmt;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use crate::key::ClientKey;
use crate::record::{
    FILE_HEADER_LEN, FileKind, Lease, LeaseRecord, MAX_RECORD_LEN, RECORD_HEADER_LEN, RecordError,
    decode_record, encode_parts, file_header,
};
use crate::table::LeaseTable;

/// Why a log operation failed. Bad bytes inside a file are not errors (replay counts them);
/// these are I/O failures and states in which writing on would lose data.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LogError {
    #[error("lease log: {op} {}", path.display())]
    Io {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    /// The file is not a lease log of this format (another program's file or a newer version);
    /// appending to it would make it unreadable for both, so it is left alone.
    #[error("lease log: {} does not start with a provd lease-log header", path.display())]
    BadHeader { path: PathBuf },
    /// A commit failed part-way, so the file's tail is unknown: after a failed fdatasync the
    /// kernel may have dropped the dirty pages while reporting later syncs as fine. Reopen the
    /// log with [`LeaseLog::open`], which cuts the tail back to the last whole record.
    #[error("lease log for shard {shard} failed an earlier commit; reopen it before writing")]
    Poisoned { shard: u32 },
}

fn io_err(op: &'static str, path: &Path) -> impl FnOnce(io::Error) -> LogError {
    move |source| LogError::Io {
        op,
        path: path.to_path_buf(),
        source,
    }
}

/// Per-shard durable log. File names in `dir`: `shard-{n}.log` and `shard-{n}.snap`.
pub struct LeaseLog {
    dir: PathBuf,
    shard: u32,
    log_path: PathBuf,
    file: File,
    next_seq: u64,
    pending: Vec<u8>,
    pending_records: u64,
    // Bytes of the log written so far (durable once a sync follows); writes go at this offset,
    // so a failed write can never leave a gap or garbage that later commits would sit behind.
    committed_len: u64,
    log_records: u64,
    /// Set on any failed write or sync, never cleared: after a failed fsync the kernel may have
    /// dropped the data, so nothing written before it can be trusted until the log is reopened.
    /// Shared with the [`LogSyncer`]s of this log.
    poisoned: Arc<AtomicBool>,
}

// Past this the pending buffer is shrunk after a commit, so one burst does not pin memory.
const PENDING_KEEP: usize = 1 << 20;

impl LeaseLog {
    /// Opens shard `shard`'s log in `dir`, creating the directory and file if needed, and appends
    /// to what is there. A torn tail left by a crash is cut off first (otherwise new records would
    /// sit behind bytes replay stops at); if the bad bytes were not a torn tail, the whole file is
    /// first copied to `shard-{n}.log.corrupt` for inspection.
    ///
    /// Seqs continue from the highest of `next_seq`, this shard's log and its snapshot, so a
    /// careless caller cannot write records that replay would rank below older ones. Pass
    /// `replay(dir)?.max_seq + 1`: keys can move between shards, and only the caller sees all.
    pub fn open(dir: &Path, shard: u32, next_seq: u64) -> Result<LeaseLog, LogError> {
        if !dir.exists() {
            fs::create_dir_all(dir).map_err(io_err("create directory", dir))?;
        }
        // The directory's own name must be durable too, whoever created it (serve creates it
        // before replay): without this a power cut may take the directory and every lease in it.
        if let Some(parent) = dir.parent().filter(|p| !p.as_os_str().is_empty()) {
            sync_dir(parent)?;
        }
        let log_path = shard_path(dir, shard, ShardFile::Log);
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&log_path)
            .map_err(io_err("open", &log_path))?;

        let mut max_seq = None::<u64>;
        let scan = scan_file(&mut file, FileKind::Log, |rec| {
            max_seq = Some(max_seq.map_or(rec.seq, |m| m.max(rec.seq)));
        })
        .map_err(io_err("read", &log_path))?;

        let committed_len = match scan.end {
            ScanEnd::BadHeader => return Err(LogError::BadHeader { path: log_path }),
            // New file, or a crash while creating it: start it afresh.
            _ if scan.valid_end < FILE_HEADER_LEN as u64 => {
                file.set_len(0).map_err(io_err("truncate", &log_path))?;
                file.write_all_at(&file_header(FileKind::Log), 0)
                    .map_err(io_err("write header", &log_path))?;
                file.sync_all().map_err(io_err("sync", &log_path))?;
                sync_dir(dir)?;
                FILE_HEADER_LEN as u64
            }
            _ if scan.valid_end < scan.file_len => {
                if scan.end == ScanEnd::Corrupt {
                    let keep = dir.join(format!("shard-{shard}.log.corrupt"));
                    fs::copy(&log_path, &keep).map_err(io_err("copy corrupt log to", &keep))?;
                }
                file.set_len(scan.valid_end)
                    .map_err(io_err("truncate", &log_path))?;
                file.sync_all().map_err(io_err("sync", &log_path))?;
                scan.valid_end
            }
            _ => scan.valid_end,
        };

        let snap_path = shard_path(dir, shard, ShardFile::Snapshot);
        let snap_seq = snapshot_seq(&snap_path)?;
        let next_seq = [
            Some(next_seq),
            max_seq.map(|s| s.saturating_add(1)),
            snap_seq.map(|s| s.saturating_add(1)),
        ]
        .into_iter()
        .flatten()
        .max()
        .unwrap_or(next_seq);

        // A crash during compaction leaves a half-written snapshot under its temporary name.
        let tmp = shard_path(dir, shard, ShardFile::SnapshotTmp);
        match fs::remove_file(&tmp) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => {
                return Err(io_err("remove", &tmp)(e));
            }
            _ => {}
        }

        Ok(LeaseLog {
            dir: dir.to_path_buf(),
            shard,
            log_path,
            file,
            next_seq,
            pending: Vec::new(),
            pending_records: 0,
            committed_len,
            log_records: scan.records,
            poisoned: Arc::new(AtomicBool::new(false)),
        })
    }

    /// Buffers one record (assigns and returns its seq). Nothing is durable until commit().
    pub fn append(&mut self, key: &ClientKey, lease: &Lease) -> u64 {
        let seq = self.next_seq;
        // Saturating: 2^64 records is out of reach; wrapping would invert replay's ordering.
        self.next_seq = seq.saturating_add(1);
        encode_parts(seq, key, lease, &mut self.pending);
        self.pending_records += 1;
        seq
    }

    pub fn has_pending(&self) -> bool {
        !self.pending.is_empty()
    }

    /// Group commit: one write of everything appended since the last commit, then fdatasync.
    /// After Ok(()) every appended record survives a crash (kill -9, power loss).
    ///
    /// On Err the log is poisoned ([`LogError::Poisoned`] from then on) and the records still
    /// pending must be treated as lost: reopen the log and resend nothing that depended on them.
    pub fn commit(&mut self) -> Result<(), LogError> {
        self.write()?;
        sync(&self.file, &self.poisoned, &self.log_path, self.shard)
    }

    /// The first half of a commit: one write of everything appended, without the fdatasync, so
    /// a [`LogSyncer`] on another thread can make it durable while this thread goes on. Nothing
    /// written is durable, and nothing that depends on it may be acknowledged, until a sync that
    /// began after this call returned Ok.
    pub fn write(&mut self) -> Result<(), LogError> {
        if self.poisoned.load(Ordering::Acquire) {
            return Err(LogError::Poisoned { shard: self.shard });
        }
        if self.pending.is_empty() {
            return Ok(());
        }
        if let Err(e) = self.file.write_all_at(&self.pending, self.committed_len) {
            self.poisoned.store(true, Ordering::Release);
            return Err(io_err("write", &self.log_path)(e));
        }
        self.committed_len += self.pending.len() as u64;
        self.log_records += self.pending_records;
        self.pending.clear();
        self.pending_records = 0;
        if self.pending.capacity() > PENDING_KEEP {
            self.pending.shrink_to(PENDING_KEEP);
        }
        Ok(())
    }

    /// Whether a write or sync failed: nothing more can be written until [`LeaseLog::recover`].
    pub fn is_poisoned(&self) -> bool {
        self.poisoned.load(Ordering::Acquire)
    }

    /// Starts the log afresh after a failed write or sync, once writing works again: reopens
    /// the file (cutting a torn tail back to the last whole record) and compacts `table` into
    /// it, so that the shard's whole state is durable again whatever the failed writes left
    /// behind (after a failed fdatasync the kernel may have dropped pages it still shows).
    /// `table` must hold every lease the shard decided, acknowledged or not. On Ok the log
    /// writes again, and syncers made before must be replaced by [`LeaseLog::syncer`]; on Err
    /// (the disk still full) nothing changed and the log stays poisoned: try again later.
    pub fn recover(&mut self, table: &LeaseTable) -> Result<(), LogError> {
        let mut fresh = LeaseLog::open(&self.dir, self.shard, self.next_seq)?;
        fresh.compact(table)?;
        *self = fresh;
        Ok(())
    }

    /// A handle that makes this log's written bytes durable from another thread.
    pub fn syncer(&self) -> Result<LogSyncer, LogError> {
        Ok(LogSyncer {
            file: self
                .file
                .try_clone()
                .map_err(io_err("duplicate", &self.log_path))?,
            poisoned: Arc::clone(&self.poisoned),
            path: self.log_path.clone(),
            shard: self.shard,
        })
    }

    /// Records in the current log file since the last compaction (committed ones only).
    pub fn log_records(&self) -> u64 {
        self.log_records
    }

    /// The seq the next [`LeaseLog::append`] will assign.
    pub fn next_seq(&self) -> u64 {
        self.next_seq
    }

    /// Snapshot + truncate: write every live record of `table` to shard-{n}.snap.tmp, fsync it,
    /// rename over shard-{n}.snap, fsync the dir, then truncate the log to its header and fsync.
    /// Snapshot records carry a seq >= every seq in the truncated log so that, should a crash fall
    /// between the rename and the truncate, replay still keeps the snapshot's state.
    ///
    /// Every entry of `table` is written, Expired and Released ones too (the table keeps them on
    /// purpose). All records of one snapshot share one fresh seq, above every seq this log has
    /// assigned; records appended later get higher ones.
    ///
    /// `table` becomes the whole durable state of the shard: a record appended without being
    /// applied to `table` does not survive compaction. Pending records are committed first so
    /// that a compaction that fails before the rename leaves them durable in the log.
    pub fn compact(&mut self, table: &LeaseTable) -> Result<(), LogError> {
        self.commit()?;
        let snap_seq = self.next_seq;
        self.next_seq = snap_seq.saturating_add(1);

        let tmp = shard_path(&self.dir, self.shard, ShardFile::SnapshotTmp);
        let snap = shard_path(&self.dir, self.shard, ShardFile::Snapshot);
        if let Err(e) = write_snapshot(&tmp, snap_seq, table) {
            // Best effort: open() also removes a leftover temporary.
            let _ = fs::remove_file(&tmp);
            return Err(e);
        }
        fs::rename(&tmp, &snap).map_err(io_err("rename snapshot to", &snap))?;
        sync_dir(&self.dir)?;

        // From here the snapshot holds everything; a failure below leaves the old log in place,
        // which replay ranks under the snapshot, but the file's length is then unknown.
        let truncated = self
            .file
            .set_len(FILE_HEADER_LEN as u64)
            .map_err(io_err("truncate", &self.log_path))
            .and_then(|()| self.file.sync_all().map_err(io_err("sync", &self.log_path)));
        if let Err(e) = truncated {
            self.poisoned.store(true, Ordering::Release);
            return Err(e);
        }
        self.committed_len = FILE_HEADER_LEN as u64;
        self.log_records = 0;
        Ok(())
    }
}

impl fmt::Debug for LeaseLog {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LeaseLog")
            .field("path", &self.log_path)
            .field("next_seq", &self.next_seq)
            .field("pending_bytes", &self.pending.len())
            .field("committed_len", &self.committed_len)
            .field("log_records", &self.log_records)
            .field("poisoned", &self.poisoned.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

/// Makes a [`LeaseLog`]'s written bytes durable from another thread (pipelined group commit):
/// fdatasync covers every byte written to the file before it began, through any descriptor.
pub struct LogSyncer {
    file: File,
    poisoned: Arc<AtomicBool>,
    path: PathBuf,
    shard: u32,
}

impl LogSyncer {
    /// fdatasync. After Ok(()) everything [`LeaseLog::write`] returned before this call began
    /// survives a crash. On Err the log is poisoned for good.
    pub fn sync(&self) -> Result<(), LogError> {
        sync(&self.file, &self.poisoned, &self.path, self.shard)
    }
}

impl fmt::Debug for LogSyncer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LogSyncer")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

fn sync(file: &File, poisoned: &AtomicBool, path: &Path, shard: u32) -> Result<(), LogError> {
    if poisoned.load(Ordering::Acquire) {
        return Err(LogError::Poisoned { shard });
    }
    // fdatasync: the data and the new file size, without the inode times we do not need.
    file.sync_data().map_err(|e| {
        poisoned.store(true, Ordering::Release);
        io_err("sync", path)(e)
    })
}

const SNAPSHOT_CHUNK: usize = 1 << 20;

fn write_snapshot(path: &Path, seq: u64, table: &LeaseTable) -> Result<(), LogError> {
    let mut file = File::create(path).map_err(io_err("create", path))?;
    let mut buf = Vec::with_capacity(SNAPSHOT_CHUNK + MAX_RECORD_LEN);
    buf.extend_from_slice(&file_header(FileKind::Snapshot));
    for (key, lease) in table.iter() {
        encode_parts(seq, key, lease, &mut buf);
        if buf.len() >= SNAPSHOT_CHUNK {
            file.write_all(&buf).map_err(io_err("write", path))?;
            buf.clear();
        }
    }
    file.write_all(&buf).map_err(io_err("write", path))?;
    file.sync_all().map_err(io_err("sync", path))
}

/// The seq of a snapshot's records (they all share one), read from its first record.
fn snapshot_seq(path: &Path) -> Result<Option<u64>, LogError> {
    let mut file = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(io_err("open", path)(e)),
    };
    let mut buf = [0u8; FILE_HEADER_LEN + MAX_RECORD_LEN];
    let got = read_full(&mut file, &mut buf).map_err(io_err("read", path))?;
    let buf = &buf[..got];
    // A damaged snapshot gives no seq; replay reports it.
    match buf.split_first_chunk::<FILE_HEADER_LEN>() {
        Some((header, rest)) if *header == file_header(FileKind::Snapshot) => {
            Ok(decode_record(rest).ok().map(|(rec, _)| rec.seq))
        }
        _ => Ok(None),
    }
}

pub(crate) fn sync_dir(dir: &Path) -> Result<(), LogError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io_err("sync directory", dir))
}

/// The files a shard owns in the lease directory.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Debug)]
pub(crate) enum ShardFile {
    Snapshot,
    Log,
    SnapshotTmp,
}

impl ShardFile {
    fn suffix(self) -> &'static str {
        match self {
            ShardFile::Snapshot => "snap",
            ShardFile::Log => "log",
            ShardFile::SnapshotTmp => "snap.tmp",
        }
    }
}

pub(crate) fn shard_path(dir: &Path, shard: u32, file: ShardFile) -> PathBuf {
    dir.join(format!("shard-{shard}.{}", file.suffix()))
}

/// Parses `shard-{n}.{log,snap,snap.tmp}` with `n` written canonically (no sign, no leading 0).
pub(crate) fn parse_shard_name(name: &str) -> Option<(u32, ShardFile)> {
    let rest = name.strip_prefix("shard-")?;
    let (digits, suffix) = rest.split_once('.')?;
    let canonical = !digits.is_empty()
        && digits.bytes().all(|b| b.is_ascii_digit())
        && (digits == "0" || !digits.starts_with('0'));
    if !canonical {
        return None;
    }
    let shard = digits.parse().ok()?;
    let kind = [ShardFile::Snapshot, ShardFile::Log, ShardFile::SnapshotTmp]
        .into_iter()
        .find(|k| k.suffix() == suffix)?;
    Some((shard, kind))
}

/// How a scan of one file ended.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum ScanEnd {
    /// Every byte was part of a good record.
    Clean,
    /// The file ends inside a record, or in a last record or zero fill that a crash mid-write
    /// leaves; nothing good can follow it.
    TornTail,
    /// A bad record with more data after it: damage, not a crash.
    Corrupt,
    /// The file does not start with the header of its kind.
    BadHeader,
}

#[derive(Debug)]
pub(crate) struct Scan {
    pub(crate) file_len: u64,
    /// Offset just past the last good record; 0 if even the header is missing or wrong.
    pub(crate) valid_end: u64,
    pub(crate) records: u64,
    pub(crate) end: ScanEnd,
}

const READ_CHUNK: usize = 1 << 20;
const _: () = assert!(READ_CHUNK >= MAX_RECORD_LEN);

/// Reads `file` from the start, passing each good record to `each` in file order, and stops at
/// the first bad one.
pub(crate) fn scan_file(
    file: &mut File,
    kind: FileKind,
    mut each: impl FnMut(LeaseRecord),
) -> io::Result<Scan> {
    let file_len = file.metadata()?.len();
    file.seek(SeekFrom::Start(0))?;
    let mut r = ChunkReader::new(file);
    let mut scan = Scan {
        file_len,
        valid_end: 0,
        records: 0,
        end: ScanEnd::Clean,
    };

    while r.available().len() < FILE_HEADER_LEN && !r.eof {
        r.refill()?;
    }
    match r.available().split_first_chunk::<FILE_HEADER_LEN>() {
        None => {
            // Header never fully written: a crash while the file was being created.
            scan.end = ScanEnd::TornTail;
            return Ok(scan);
        }
        Some((header, _)) if *header != file_header(kind) => {
            scan.end = ScanEnd::BadHeader;
            return Ok(scan);
        }
        Some(_) => r.consume(FILE_HEADER_LEN),
    }
    let mut offset = FILE_HEADER_LEN as u64;

    scan.end = loop {
        match decode_record(r.available()) {
            Ok((rec, used)) => {
                r.consume(used);
                offset += used as u64;
                scan.records += 1;
                each(rec);
            }
            Err(RecordError::Truncated { .. }) if !r.eof => r.refill()?,
            Err(RecordError::Truncated { .. }) if r.available().is_empty() => break ScanEnd::Clean,
            Err(RecordError::Truncated { .. }) => break ScanEnd::TornTail,
            Err(err) => break classify_bad_record(&err, offset, file_len, &mut r)?,
        }
    };
    scan.valid_end = offset;
    Ok(scan)
}

/// Tells a crash's leftovers from damage. A bad last record (one that reaches the end of the
/// file) or a zero-filled rest (the file size reached disk before its data) is what an
/// interrupted write leaves; a bad record with real data after it is not.
fn classify_bad_record(
    err: &RecordError,
    offset: u64,
    file_len: u64,
    r: &mut ChunkReader<'_>,
) -> io::Result<ScanEnd> {
    if !matches!(err, RecordError::BadLength { .. }) {
        let declared = r
            .available()
            .first_chunk::<2>()
            .map_or(0, |b| u64::from(u16::from_le_bytes(*b)));
        if offset + RECORD_HEADER_LEN as u64 + declared >= file_len {
            return Ok(ScanEnd::TornTail);
        }
    }
    loop {
        if r.available().iter().any(|&b| b != 0) {
            return Ok(ScanEnd::Corrupt);
        }
        if r.eof {
            return Ok(ScanEnd::TornTail);
        }
        let n = r.available().len();
        r.consume(n);
        r.refill()?;
    }
}

/// A read buffer that keeps the unconsumed tail and tops up from the file.
struct ChunkReader<'a> {
    file: &'a mut File,
    buf: Vec<u8>,
    start: usize,
    filled: usize,
    eof: bool,
}

impl<'a> ChunkReader<'a> {
    fn new(file: &'a mut File) -> Self {
        ChunkReader {
            file,
            buf: vec![0; READ_CHUNK],
            start: 0,
            filled: 0,
            eof: false,
        }
    }

    fn available(&self) -> &[u8] {
        self.buf.get(self.start..self.filled).unwrap_or_default()
    }

    fn consume(&mut self, n: usize) {
        self.start = (self.start + n).min(self.filled);
    }

    /// Moves the unconsumed bytes to the front and reads once into the space after them; sets
    /// `eof` when the file has nothing more.
    fn refill(&mut self) -> io::Result<()> {
        self.buf.copy_within(self.start..self.filled, 0);
        self.filled -= self.start;
        self.start = 0;
        loop {
            match self.file.read(&mut self.buf[self.filled..]) {
                Ok(0) => {
                    self.eof = true;
                    return Ok(());
                }
                Ok(n) => {
                    self.filled += n;
                    return Ok(());
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
    }
}

fn read_full(file: &mut File, buf: &mut [u8]) -> io::Result<usize> {
    let mut got = 0;
    while got < buf.len() {
        match file.read(&mut buf[got..]) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(got)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::LeaseState;
    use std::net::Ipv4Addr;

    fn lease(n: u8) -> (ClientKey, Lease) {
        let mac = [2, 0, 0, 0, 0, n];
        let l = Lease {
            addr: Ipv4Addr::new(10, 0, 0, n),
            expires_at: 1000,
            state: LeaseState::Bound,
            chaddr: mac,
            pool: 0,
        };
        (ClientKey::from_hw(1, &mac), l)
    }

    /// A failed write or sync poisons the log for good; `recover` starts it afresh from the
    /// table, which then is exactly what replay finds, and the log writes again.
    #[test]
    fn recover_after_a_failure_makes_the_table_durable_and_writes_again() {
        let tmp = tempfile::tempdir().unwrap();
        let mut log = LeaseLog::open(tmp.path(), 0, 1).unwrap();
        let mut table = LeaseTable::new();
        for n in 1..=3 {
            let (k, l) = lease(n);
            log.append(&k, &l);
            table.insert(k, l);
        }
        log.commit().unwrap();
        // Leases 4 and 5 were decided (in the table) but their write "failed".
        for n in 4..=5 {
            let (k, l) = lease(n);
            log.append(&k, &l);
            table.insert(k, l);
        }
        log.poisoned.store(true, Ordering::Release);
        assert!(log.is_poisoned());
        assert!(matches!(log.commit(), Err(LogError::Poisoned { shard: 0 })));

        log.recover(&table).unwrap();
        assert!(!log.is_poisoned());
        let (k, l) = lease(6);
        log.append(&k, &l);
        table.insert(k, l);
        log.commit().unwrap();
        drop(log);

        let r = crate::replay(tmp.path()).unwrap();
        let mut got: Vec<_> = r.records.iter().map(|r| r.lease.addr.octets()[3]).collect();
        got.sort_unstable();
        assert_eq!(got, [1, 2, 3, 4, 5, 6]);
    }

    #[test]
    fn shard_names_parse_canonically() {
        assert_eq!(parse_shard_name("shard-0.log"), Some((0, ShardFile::Log)));
        assert_eq!(
            parse_shard_name("shard-17.snap"),
            Some((17, ShardFile::Snapshot))
        );
        assert_eq!(
            parse_shard_name("shard-3.snap.tmp"),
            Some((3, ShardFile::SnapshotTmp))
        );
        for bad in [
            "shard-.log",
            "shard-01.log",
            "shard-+1.log",
            "shard-1.log.corrupt",
            "shard-1",
            "shard-99999999999.log",
            "shard-1.LOG",
            "other-1.log",
        ] {
            assert_eq!(parse_shard_name(bad), None, "{bad}");
        }
        let dir = Path::new("/x");
        for kind in [ShardFile::Snapshot, ShardFile::Log, ShardFile::SnapshotTmp] {
            let p = shard_path(dir, 42, kind);
            let name = p.file_name().unwrap().to_str().unwrap();
            assert_eq!(parse_shard_name(name), Some((42, kind)));
        }
    }
}
