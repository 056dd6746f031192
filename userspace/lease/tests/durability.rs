//! Durability of the lease log through the public API: commit, crash leftovers (torn tails,
//! corruption, the compaction window) and replay across shard counts.

use std::collections::BTreeMap;
use std::fs;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};

use provd_lease::{
    ClientKey, FILE_HEADER_LEN, Lease, LeaseLog, LeaseRecord, LeaseState, LeaseTable, LogError,
    encode_record, remove_stale_shards, reopen, replay,
};

fn key(n: u32) -> ClientKey {
    let b = n.to_be_bytes();
    ClientKey::from_hw(1, &[0x02, 0x00, b[0], b[1], b[2], b[3]])
}

fn lease(n: u32, state: LeaseState, expires_at: u32) -> Lease {
    let b = n.to_be_bytes();
    Lease {
        addr: Ipv4Addr::from(0x0a00_0000 + n),
        expires_at,
        state,
        chaddr: [0x02, 0x00, b[0], b[1], b[2], b[3]],
        pool: (n % 3) as u16,
    }
}

fn log_path(dir: &Path, shard: u32) -> PathBuf {
    dir.join(format!("shard-{shard}.log"))
}

fn snap_path(dir: &Path, shard: u32) -> PathBuf {
    dir.join(format!("shard-{shard}.snap"))
}

/// Commits bound leases `ns` to shard 0's log in one group and closes the log.
fn commit_bound(dir: &Path, ns: std::ops::Range<u32>) {
    let mut log = LeaseLog::open(dir, 0, 1).unwrap();
    for n in ns {
        log.append(&key(n), &lease(n, LeaseState::Bound, 100));
    }
    log.commit().unwrap();
}

/// Replayed state as key bytes -> lease, for order-free comparison.
fn replayed(dir: &Path) -> BTreeMap<Vec<u8>, Lease> {
    let r = replay(dir).unwrap();
    let n = r.records.len();
    let map: BTreeMap<_, _> = r
        .records
        .into_iter()
        .map(|rec| (rec.key.as_bytes().to_vec(), rec.lease))
        .collect();
    assert_eq!(map.len(), n, "replay returned a key twice");
    map
}

fn table_state(t: &LeaseTable) -> BTreeMap<Vec<u8>, Lease> {
    t.iter().map(|(k, l)| (k.as_bytes().to_vec(), *l)).collect()
}

/// Encoded size of a record with a MAC key, to find record boundaries in a file.
fn mac_record_len() -> usize {
    let mut out = Vec::new();
    encode_record(
        &LeaseRecord {
            seq: 0,
            key: key(0),
            lease: lease(0, LeaseState::Bound, 0),
        },
        &mut out,
    );
    out.len()
}

#[test]
fn commit_reopen_and_replay_match() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("leases");
    let mut expected = BTreeMap::new();
    {
        let mut log = LeaseLog::open(&dir, 0, 1).unwrap();
        for n in 0..100 {
            let l = lease(n, LeaseState::Offered, 1000 + n);
            assert_eq!(log.append(&key(n), &l), u64::from(n) + 1);
            expected.insert(key(n).as_bytes().to_vec(), l);
        }
        // Later records for the same clients must win.
        for n in 0..50 {
            let l = lease(n, LeaseState::Bound, 5000 + n);
            log.append(&key(n), &l);
            expected.insert(key(n).as_bytes().to_vec(), l);
        }
        assert!(log.has_pending());
        log.commit().unwrap();
        assert!(!log.has_pending());
        assert_eq!(log.log_records(), 150);
        // Nothing pending: a no-op.
        log.commit().unwrap();
    }
    assert_eq!(replayed(&dir), expected);
    let r = replay(&dir).unwrap();
    assert_eq!(r.max_seq, 150);
    assert_eq!(r.report.records_read, 150);
    assert_eq!(r.report.files, 1);
    assert_eq!((r.report.torn_tails, r.report.corrupt_records), (0, 0));

    // Reopen appends after what is there.
    {
        let mut log = LeaseLog::open(&dir, 0, r.max_seq + 1).unwrap();
        assert_eq!(log.log_records(), 150);
        let l = lease(7, LeaseState::Released, 6000);
        assert_eq!(log.append(&key(7), &l), 151);
        expected.insert(key(7).as_bytes().to_vec(), l);
        log.commit().unwrap();
    }
    assert_eq!(replayed(&dir), expected);
    assert_eq!(replay(&dir).unwrap().max_seq, 151);
}

#[test]
fn uncommitted_appends_are_not_on_disk() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let committed_len;
    {
        let mut log = LeaseLog::open(dir, 0, 1).unwrap();
        for n in 0..10 {
            log.append(&key(n), &lease(n, LeaseState::Bound, 100));
        }
        log.commit().unwrap();
        committed_len = fs::metadata(log_path(dir, 0)).unwrap().len();
        for n in 10..15 {
            log.append(&key(n), &lease(n, LeaseState::Bound, 100));
        }
        // Dropped without commit, as a crash would.
    }
    assert_eq!(fs::metadata(log_path(dir, 0)).unwrap().len(), committed_len);
    let state = replayed(dir);
    assert_eq!(state.len(), 10);
    assert!(!state.contains_key(key(12).as_bytes()));
}

#[test]
fn torn_tail_keeps_earlier_records_and_reopen_cuts_it() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    commit_bound(dir, 0..10);
    let path = log_path(dir, 0);
    let full = fs::metadata(&path).unwrap().len();
    // Cut the last record in half, as a crash mid-write would.
    let f = fs::OpenOptions::new().write(true).open(&path).unwrap();
    f.set_len(full - (mac_record_len() as u64) / 2).unwrap();
    drop(f);

    let r = replay(dir).unwrap();
    assert_eq!(r.records.len(), 9);
    assert_eq!(r.report.records_read, 9);
    assert_eq!(r.report.torn_tails, 1);
    assert_eq!(r.report.corrupt_records, 0);
    assert!(!r.records.iter().any(|rec| rec.key == key(9)));

    // Reopening must cut the torn bytes, or the new record would sit behind them unread.
    {
        let mut log = LeaseLog::open(dir, 0, r.max_seq + 1).unwrap();
        assert_eq!(log.log_records(), 9);
        log.append(&key(42), &lease(42, LeaseState::Bound, 100));
        log.commit().unwrap();
    }
    let r = replay(dir).unwrap();
    assert_eq!(r.records.len(), 10);
    assert!(r.records.iter().any(|rec| rec.key == key(42)));
    assert_eq!(r.report.torn_tails, 0);
    assert!(!dir.join("shard-0.log.corrupt").exists());
}

#[test]
fn zero_filled_tail_is_a_torn_tail() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    commit_bound(dir, 0..5);
    // The file size reached disk, the data did not.
    let path = log_path(dir, 0);
    let mut bytes = fs::read(&path).unwrap();
    bytes.extend_from_slice(&[0u8; 4096]);
    fs::write(&path, &bytes).unwrap();
    let r = replay(dir).unwrap();
    assert_eq!(r.records.len(), 5);
    assert_eq!((r.report.torn_tails, r.report.corrupt_records), (1, 0));
}

#[test]
fn flipped_byte_in_a_middle_record_is_corruption() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    commit_bound(dir, 0..10);
    let path = log_path(dir, 0);
    let mut bytes = fs::read(&path).unwrap();
    let rec_len = mac_record_len();
    assert_eq!(bytes.len(), FILE_HEADER_LEN + 10 * rec_len);
    // A byte inside the payload of record 5 (its expires_at field).
    bytes[FILE_HEADER_LEN + 5 * rec_len + 6 + 13] ^= 0x40;
    fs::write(&path, &bytes).unwrap();

    let r = replay(dir).unwrap();
    assert_eq!(r.report.corrupt_records, 1);
    assert_eq!(r.report.torn_tails, 0);
    assert_eq!(r.report.records_read, 5);
    let state = replayed(dir);
    assert_eq!(
        state.keys().cloned().collect::<Vec<_>>(),
        (0..5)
            .map(|n| key(n).as_bytes().to_vec())
            .collect::<Vec<_>>()
    );

    // Reopen keeps a copy of the damaged file, then continues from the good prefix.
    {
        let mut log = LeaseLog::open(dir, 0, r.max_seq + 1).unwrap();
        assert_eq!(log.log_records(), 5);
        log.append(&key(99), &lease(99, LeaseState::Bound, 100));
        log.commit().unwrap();
    }
    assert_eq!(
        fs::read(dir.join("shard-0.log.corrupt")).unwrap(),
        bytes,
        "damaged log kept for inspection"
    );
    let r = replay(dir).unwrap();
    assert_eq!(r.records.len(), 6);
    assert_eq!(r.report.corrupt_records, 0);
}

#[test]
fn foreign_or_short_headers_never_panic() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    fs::write(
        log_path(dir, 0),
        b"this is not a lease log at all, not even close",
    )
    .unwrap();
    fs::write(snap_path(dir, 1), b"PVDLEA").unwrap(); // header cut short
    fs::write(log_path(dir, 2), b"").unwrap();
    let r = replay(dir).unwrap();
    assert!(r.records.is_empty());
    assert_eq!(r.report.files, 3);
    assert_eq!(r.report.corrupt_records, 1);
    assert_eq!(r.report.torn_tails, 2);

    // Appending to someone else's file would ruin it: refuse.
    assert!(matches!(
        LeaseLog::open(dir, 0, 1),
        Err(LogError::BadHeader { .. })
    ));
    // A log whose header never made it to disk is started afresh.
    let mut log = LeaseLog::open(dir, 2, 1).unwrap();
    log.append(&key(1), &lease(1, LeaseState::Bound, 100));
    log.commit().unwrap();
    assert_eq!(replayed(dir).len(), 1);
}

#[test]
fn a_log_file_named_as_a_snapshot_is_rejected() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    commit_bound(dir, 1..2);
    fs::rename(log_path(dir, 0), snap_path(dir, 0)).unwrap();
    let r = replay(dir).unwrap();
    assert!(r.records.is_empty());
    assert_eq!(r.report.corrupt_records, 1);
}

/// Applies a change to the table and logs it, as the engine does.
fn apply(table: &mut LeaseTable, log: &mut LeaseLog, n: u32, state: LeaseState, exp: u32) {
    let l = lease(n, state, exp);
    table.insert(key(n), l);
    log.append(&key(n), &l);
}

#[test]
fn compaction_truncates_the_log_and_keeps_the_state() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let mut table = LeaseTable::new();
    let mut log = LeaseLog::open(dir, 0, 1).unwrap();
    for round in 0..3 {
        for n in 0..200 {
            apply(&mut table, &mut log, n, LeaseState::Bound, 1000 * round + n);
        }
        log.commit().unwrap();
    }
    // Some ended leases, and some the table forgot.
    for n in 0..20 {
        apply(&mut table, &mut log, n, LeaseState::Released, 50);
    }
    log.commit().unwrap();
    table.sweep(2000, 100, |_, _| {});
    assert_eq!(table.len(), 180);
    assert_eq!(log.log_records(), 620);

    log.compact(&table).unwrap();
    assert_eq!(log.log_records(), 0);
    assert_eq!(
        fs::metadata(log_path(dir, 0)).unwrap().len(),
        FILE_HEADER_LEN as u64
    );
    assert!(!dir.join("shard-0.snap.tmp").exists());
    assert_eq!(replayed(dir), table_state(&table));

    // Changes after compaction land on top of the snapshot.
    apply(&mut table, &mut log, 150, LeaseState::Released, 3000);
    apply(&mut table, &mut log, 500, LeaseState::Offered, 3000);
    log.commit().unwrap();
    drop(log);
    assert_eq!(replayed(dir), table_state(&table));
    let r = replay(dir).unwrap();
    assert_eq!(r.report.files, 2);
    assert_eq!(r.report.records_read, 182);

    // Even a caller that forgot replay's max_seq cannot rank new records under the snapshot.
    let mut log = LeaseLog::open(dir, 0, 0).unwrap();
    assert!(log.next_seq() > r.max_seq);
    apply(&mut table, &mut log, 100, LeaseState::Expired, 4000);
    log.commit().unwrap();
    assert_eq!(replayed(dir), table_state(&table));
}

#[test]
fn compaction_makes_the_table_the_durable_state() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let mut table = LeaseTable::new();
    let mut log = LeaseLog::open(dir, 0, 1).unwrap();
    apply(&mut table, &mut log, 1, LeaseState::Bound, 100);
    log.commit().unwrap();
    // Pending, and applied to the table: durable once compaction returns.
    apply(&mut table, &mut log, 2, LeaseState::Bound, 100);
    // Appended but not in the table: the snapshot is the table, so this one is gone.
    log.append(&key(3), &lease(3, LeaseState::Bound, 100));
    log.compact(&table).unwrap();
    assert!(!log.has_pending());
    drop(log);
    let state = replayed(dir);
    assert_eq!(state, table_state(&table));
    assert!(state.contains_key(key(2).as_bytes()));
    assert!(!state.contains_key(key(3).as_bytes()));
}

#[test]
fn crash_between_snapshot_rename_and_log_truncate_keeps_the_snapshot_state() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let mut table = LeaseTable::new();
    let mut log = LeaseLog::open(dir, 0, 1).unwrap();
    for n in 0..100 {
        apply(&mut table, &mut log, n, LeaseState::Bound, 100 + n);
    }
    log.commit().unwrap();
    // Expiry is applied to the table without logging, so the old log's newest record for these
    // clients (Bound) disagrees with the table (Expired): only the seq rule picks the right one.
    let expired = table.sweep(150, 0, |_, _| {});
    assert_eq!(expired, 51);
    let log_before = fs::read(log_path(dir, 0)).unwrap();

    log.compact(&table).unwrap();
    drop(log);
    // Put the untruncated log back: the state after the rename but before the truncate.
    fs::write(log_path(dir, 0), &log_before).unwrap();
    // And a half-written snapshot from some later compaction that never finished.
    fs::write(dir.join("shard-0.snap.tmp"), b"PVDLEAS\x01garbage").unwrap();

    let r = replay(dir).unwrap();
    assert_eq!(r.report.records_read, 200);
    assert_eq!((r.report.torn_tails, r.report.corrupt_records), (0, 0));
    let state = replayed(dir);
    assert_eq!(state, table_state(&table));
    assert_eq!(
        state
            .values()
            .filter(|l| l.state == LeaseState::Expired)
            .count(),
        51
    );

    // Restarting from there: the leftover temporary goes, new records rank above the snapshot.
    let mut log = LeaseLog::open(dir, 0, r.max_seq + 1).unwrap();
    assert!(!dir.join("shard-0.snap.tmp").exists());
    apply(&mut table, &mut log, 3, LeaseState::Bound, 9999);
    log.commit().unwrap();
    assert_eq!(replayed(dir), table_state(&table));
}

#[test]
fn replay_merges_any_shard_count_and_stale_shards_are_removed() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let mut expected = BTreeMap::new();
    // Run 1: four shards, keys spread by n % 4.
    let mut logs: Vec<LeaseLog> = (0..4).map(|s| LeaseLog::open(dir, s, 1).unwrap()).collect();
    for n in 0..400u32 {
        let l = lease(n, LeaseState::Bound, 100 + n);
        logs[(n % 4) as usize].append(&key(n), &l);
        expected.insert(key(n).as_bytes().to_vec(), l);
    }
    for log in &mut logs {
        log.commit().unwrap();
    }
    // Shard 3 also compacts, so the merge reads snapshots and logs.
    let mut t3 = LeaseTable::new();
    for n in (3..400).step_by(4) {
        t3.insert(key(n), lease(n, LeaseState::Bound, 100 + n));
    }
    logs[3].compact(&t3).unwrap();
    drop(logs);

    let r = replay(dir).unwrap();
    assert_eq!(r.report.files, 5);
    assert_eq!(r.records.len(), 400);
    assert_eq!(replayed(dir), expected);

    // Run 2: two shards, opened above everything run 1 wrote; the engine re-snapshots every
    // client under the new layout (n % 2), changing a few on the way.
    let next = r.max_seq + 1;
    let mut tables = [LeaseTable::new(), LeaseTable::new()];
    for rec in r.records {
        let n = u32::from_be_bytes(rec.key.as_bytes()[4..8].try_into().unwrap());
        tables[(n % 2) as usize].insert(rec.key, rec.lease);
    }
    for n in [3u32, 7, 11] {
        let l = lease(n, LeaseState::Released, 777);
        tables[(n % 2) as usize].insert(key(n), l);
        expected.insert(key(n).as_bytes().to_vec(), l);
    }
    for (s, table) in tables.iter().enumerate() {
        let mut log = LeaseLog::open(dir, s as u32, next).unwrap();
        log.compact(table).unwrap();
    }
    // Before the stale files go, the merge already prefers the new snapshots (key 3, 7, 11 were
    // in old shard 3's snapshot with a lower seq).
    assert_eq!(replayed(dir), expected);

    fs::write(dir.join("shard-3.log.corrupt"), b"kept").unwrap();
    fs::write(dir.join("notes.txt"), b"kept").unwrap();
    fs::write(dir.join("shard-2.snap.tmp"), b"stale").unwrap();
    remove_stale_shards(dir, 2).unwrap();
    let mut names: Vec<String> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    assert_eq!(
        names,
        [
            "notes.txt",
            "shard-0.log",
            "shard-0.snap",
            "shard-1.log",
            "shard-1.snap",
            "shard-3.log.corrupt"
        ]
    );
    assert_eq!(replayed(dir), expected);
    assert_eq!(replay(dir).unwrap().report.files, 4);
}

/// The file names in `dir`, sorted.
fn names(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    names
}

/// Replayed records distributed into `shards` tables by `n % shards`, as the engine's restore
/// would by MAC.
fn tables_by_mod(records: Vec<LeaseRecord>, shards: u32) -> Vec<LeaseTable> {
    let mut tables: Vec<LeaseTable> = (0..shards).map(|_| LeaseTable::new()).collect();
    for rec in records {
        let n = u32::from_be_bytes(rec.key.as_bytes()[4..8].try_into().unwrap());
        tables[(n % shards) as usize].insert(rec.key, rec.lease);
    }
    tables
}

/// A restart with fewer shards: `reopen` puts each client's lease in its new owner's files,
/// removes the old shards' files, and the logs it returns write on above every replayed seq.
#[test]
fn reopen_moves_leases_to_their_new_owner_and_removes_the_old_layout() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let mut expected = BTreeMap::new();
    // Run 1: three shards, client n in shard n % 3; shard 2 compacted half-way, so its clients
    // are in a snapshot and a log.
    let mut logs: Vec<LeaseLog> = (0..3).map(|s| LeaseLog::open(dir, s, 1).unwrap()).collect();
    let mut t2 = LeaseTable::new();
    for n in 0..300u32 {
        let l = lease(n, LeaseState::Bound, 2_000_000_000 + n);
        logs[(n % 3) as usize].append(&key(n), &l);
        expected.insert(key(n).as_bytes().to_vec(), l);
        if n % 3 == 2 {
            t2.insert(key(n), l);
        }
        if n == 150 {
            logs[2].compact(&t2).unwrap();
        }
    }
    for log in &mut logs {
        log.commit().unwrap();
    }
    drop(logs);

    // Run 2: two shards.
    let r = replay(dir).unwrap();
    assert_eq!(r.records.len(), 300);
    let tables = tables_by_mod(r.records, 2);
    let mut reopened = reopen(dir, &tables, r.max_seq + 1).unwrap();
    assert_eq!(reopened.logs.len(), 2);
    assert_eq!(reopened.report.rewritten, 300);
    assert_eq!(
        reopened.report.stale_files_removed, 2,
        "shard-2.log and .snap"
    );
    assert_eq!(
        names(dir),
        ["shard-0.log", "shard-0.snap", "shard-1.log", "shard-1.snap"]
    );
    // Each shard's files alone hold exactly its table: client 2 moved from old shard 2 to
    // shard 0, client 3 from old shard 0 to shard 1.
    for (s, table) in tables.iter().enumerate() {
        let alone = tempfile::tempdir().unwrap();
        fs::copy(snap_path(dir, s as u32), snap_path(alone.path(), s as u32)).unwrap();
        assert_eq!(replayed(alone.path()), table_state(table), "shard {s}");
        assert_eq!(reopened.logs[s].log_records(), 0);
    }
    assert_eq!(replayed(dir), expected);

    // The reopened logs write on above everything replayed: a newer record wins.
    let released = lease(2, LeaseState::Released, 5);
    reopened.logs[0].append(&key(2), &released);
    reopened.logs[0].commit().unwrap();
    expected.insert(key(2).as_bytes().to_vec(), released);
    drop(reopened);

    // Run 3, same layout: nothing lost, nothing stale.
    let r = replay(dir).unwrap();
    let tables = tables_by_mod(r.records, 2);
    let again = reopen(dir, &tables, r.max_seq + 1).unwrap();
    assert_eq!(again.report.rewritten, 300);
    assert_eq!(again.report.stale_files_removed, 0);
    drop(again);
    assert_eq!(replayed(dir), expected);
}

#[test]
fn replay_of_a_missing_directory_is_empty() {
    let tmp = tempfile::tempdir().unwrap();
    let r = replay(&tmp.path().join("never-created")).unwrap();
    assert!(r.records.is_empty());
    assert_eq!(r.max_seq, 0);
    assert_eq!(r.report.files, 0);
    remove_stale_shards(&tmp.path().join("never-created"), 0).unwrap();
}

/// Pipelined group commit: the worker writes, another thread syncs; what was written before the
/// sync began replays, and compaction may run while the syncer holds its descriptor.
#[test]
fn write_then_sync_on_another_thread_replays() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = LeaseLog::open(dir.path(), 0, 1).unwrap();
    let syncer = log.syncer().unwrap();
    let mut table = LeaseTable::new();
    for n in 0..100 {
        let l = lease(n, LeaseState::Bound, 2_000_000_000);
        log.append(&key(n), &l);
        table.insert(key(n), l);
        if n % 10 == 9 {
            log.write().unwrap();
            std::thread::scope(|s| {
                s.spawn(|| syncer.sync().unwrap());
            });
        }
    }
    assert!(!log.has_pending());
    assert_eq!(replayed(dir.path()), table_state(&table));
    log.compact(&table).unwrap();
    syncer.sync().unwrap();
    assert_eq!(replayed(dir.path()), table_state(&table));
    assert_eq!(log.log_records(), 0);
}
