//! Writes N live (bound, expiring in a day) leases with MAC keys and addresses counting up from
//! 10.0.0.1, through the real log and a compaction, for measuring `provd serve` restart time.
//! Run: `cargo run --release -p provd-lease --example seed -- DIR N`

use std::net::Ipv4Addr;
use std::time::{SystemTime, UNIX_EPOCH};

use provd_lease::{ClientKey, Lease, LeaseLog, LeaseState, LeaseTable};

fn main() {
    let mut args = std::env::args().skip(1);
    let dir = std::path::PathBuf::from(args.next().expect("usage: seed DIR N"));
    let n: u32 = args
        .next()
        .expect("usage: seed DIR N")
        .parse()
        .expect("N is a number");
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock")
        .as_secs() as u32;
    let mut log = LeaseLog::open(&dir, 0, 1).expect("open log");
    let mut table = LeaseTable::with_capacity(n as usize);
    for i in 0..n {
        let b = (i + 1).to_be_bytes();
        let mac = [0x02, 0x00, b[0], b[1], b[2], b[3]];
        let key = ClientKey::from_hw(1, &mac);
        let lease = Lease {
            addr: Ipv4Addr::from(0x0a00_0001 + i),
            expires_at: now + 86_400,
            state: LeaseState::Bound,
            chaddr: mac,
            pool: 0,
        };
        log.append(&key, &lease);
        table.insert(key, lease);
        if i % 10_000 == 9_999 {
            log.commit().expect("commit");
        }
    }
    log.commit().expect("commit");
    log.compact(&table).expect("compact");
    println!("seeded {n} leases in {}", dir.display());
}
