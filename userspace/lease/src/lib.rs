//! provd-lease: the DHCP server's lease state, in memory and on disk.
//!
//! In memory, leases live in one [`LeaseTable`] per worker shard, owned by that worker, so the hot
//! path takes no lock; addresses are handed out from [`PoolBitmap`]s that all shards share and
//! claim from with compare-and-swap. On disk, each shard appends its changes to a [`LeaseLog`]
//! and makes a batch durable with one group commit; [`LeaseLog::compact`] folds the table into a
//! snapshot, and [`replay`] rebuilds the newest state per client at startup from whatever shard
//! files are there.
//!
//! The rest of the server learns of leases through a [`LeaseObserver`]: told of every record a
//! worker writes and every [`Binding`] an ACK makes ([`Fanout`] tells several).
//!
//! No sockets and no clock: time comes in as `now: u32` unix seconds. Decoding is total: bad
//! bytes on disk are counted and skipped, never a panic.

#![forbid(unsafe_code)]

mod key;
mod log;
mod observer;
mod pool;
mod record;
mod replay;
mod table;

pub use key::{ClientKey, MAX_KEY_LEN};
pub use log::{LeaseLog, LogError, LogSyncer};
pub use observer::{Binding, Fanout, LeaseObserver};
pub use pool::{MAX_POOL_ADDRESSES, PoolBitmap, PoolError};
pub use record::{
    FILE_HEADER_LEN, Lease, LeaseRecord, LeaseState, RecordError, decode_record, encode_record,
};
pub use replay::{Replay, ReplayReport, remove_stale_shards, replay};
pub use table::LeaseTable;

// The engine moves each table and log into its worker thread and shares pools through an Arc.
const _: () = {
    const fn send<T: Send>() {}
    const fn send_sync<T: Send + Sync>() {}
    send::<LeaseTable>();
    send::<LeaseLog>();
    send_sync::<PoolBitmap>();
};
