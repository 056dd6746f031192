//! Time to recover 1,000,000 leases at startup: `replay()` plus building the shard tables, once
//! from a log of group commits (batches of 1000) and once from a compacted snapshot.
//! Target: <= 2 s in release. The files were just written, so this measures a warm page cache.
//!
//! Run: `cargo run --release -p provd-lease --example replay_1m [dir]` (default: a temp dir).

use std::net::Ipv4Addr;
use std::path::Path;
use std::time::Instant;

use provd_lease::{ClientKey, Lease, LeaseLog, LeaseState, LeaseTable, replay};

const LEASES: u32 = 1_000_000;
const BATCH: u32 = 1000;
const SHARDS: usize = 4;

fn lease(n: u32) -> (ClientKey, Lease) {
    let b = n.to_be_bytes();
    let mac = [0x02, 0x00, b[0], b[1], b[2], b[3]];
    let lease = Lease {
        addr: Ipv4Addr::from(0x0a00_0000 + n),
        expires_at: 1_700_000_000 + n,
        state: LeaseState::Bound,
        chaddr: mac,
        pool: (n % 8) as u16,
    };
    (ClientKey::from_hw(1, &mac), lease)
}

/// Replays `dir` and distributes the records over `SHARDS` tables as the engine would.
fn recover(dir: &Path, mode: &str) -> Vec<LeaseTable> {
    let start = Instant::now();
    let r = replay(dir).expect("replay");
    let replayed = start.elapsed();
    let report = r.report;
    // Split first, then build one table at a time: each build then works in one table's memory
    // instead of scattering inserts over all of them (as each worker would build its own).
    let mut split: Vec<Vec<(ClientKey, Lease)>> = (0..SHARDS)
        .map(|_| Vec::with_capacity(r.records.len() / SHARDS + 1))
        .collect();
    for rec in r.records {
        // Any stable spread will do here; the engine uses its own key -> shard function.
        let shard = rec
            .key
            .as_bytes()
            .last()
            .map_or(0, |b| usize::from(*b) % SHARDS);
        split[shard].push((rec.key, rec.lease));
    }
    let tables: Vec<LeaseTable> = split
        .into_iter()
        .map(|recs| {
            let mut table = LeaseTable::with_capacity(recs.len());
            for (key, lease) in recs {
                table.insert(key, lease);
            }
            table
        })
        .collect();
    let total = start.elapsed();
    let n: usize = tables.iter().map(LeaseTable::len).sum();
    println!(
        "mode={mode} files={} bytes={} replay_secs={:.3} tables_secs={:.3} torn={} corrupt={}",
        report.files,
        report.bytes,
        replayed.as_secs_f64(),
        (total - replayed).as_secs_f64(),
        report.torn_tails,
        report.corrupt_records,
    );
    println!("replay_records={n} secs={:.3}", total.as_secs_f64());
    assert_eq!(n, LEASES as usize);
    tables
}

fn main() {
    let tmp = tempfile::tempdir().expect("temp dir");
    let dir = std::env::args_os()
        .nth(1)
        .map_or_else(|| tmp.path().to_path_buf(), Into::into);

    let start = Instant::now();
    let mut log = LeaseLog::open(&dir, 0, 1).expect("open log");
    for batch in 0..LEASES / BATCH {
        for n in batch * BATCH..(batch + 1) * BATCH {
            let (key, lease) = lease(n);
            log.append(&key, &lease);
        }
        log.commit().expect("commit");
    }
    println!(
        "wrote {LEASES} records in {} commits: {:.3} s",
        LEASES / BATCH,
        start.elapsed().as_secs_f64()
    );
    let tables = recover(&dir, "log");

    // Fold everything into one snapshot and replay again.
    let mut all = LeaseTable::with_capacity(LEASES as usize);
    for t in &tables {
        for (k, l) in t.iter() {
            all.insert(k.clone(), *l);
        }
    }
    drop(tables);
    let start = Instant::now();
    log.compact(&all).expect("compact");
    println!("compacted: {:.3} s", start.elapsed().as_secs_f64());
    drop(all);
    recover(&dir, "snapshot");
}
