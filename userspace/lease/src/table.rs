//! `LeaseTable`: one shard's leases by client, owned by that shard's worker thread.
//!
//! Each worker owns its table outright, so the hot path takes no lock; the only state shared
//! between shards is the [`crate::PoolBitmap`] of each pool.

use std::collections::HashMap;
use std::fmt;

use crate::key::ClientKey;
use crate::record::{Lease, LeaseState};

type Map = HashMap<ClientKey, Lease, foldhash::fast::RandomState>;

/// One shard's leases, owned by one worker thread (not Sync-shared; no lock).
pub struct LeaseTable {
    map: Map,
}

impl LeaseTable {
    pub fn new() -> Self {
        Self::with_capacity(0)
    }

    /// A table with room for `n` leases before it reallocates.
    pub fn with_capacity(n: usize) -> Self {
        LeaseTable {
            map: Map::with_capacity_and_hasher(n, Default::default()),
        }
    }

    pub fn get(&self, key: &ClientKey) -> Option<&Lease> {
        self.map.get(key)
    }

    pub fn get_mut(&mut self, key: &ClientKey) -> Option<&mut Lease> {
        self.map.get_mut(key)
    }

    /// Files `lease` under `key`, returning the lease it replaced.
    pub fn insert(&mut self, key: ClientKey, lease: Lease) -> Option<Lease> {
        self.map.insert(key, lease)
    }

    pub fn remove(&mut self, key: &ClientKey) -> Option<Lease> {
        self.map.remove(key)
    }

    pub fn len(&self) -> usize {
        self.map.len()
    }

    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    /// Every lease, mutable, in no particular order (a reload re-numbers their pools).
    pub fn iter_mut(&mut self) -> impl Iterator<Item = (&ClientKey, &mut Lease)> {
        self.map.iter_mut()
    }

    /// Every lease, in no particular order.
    pub fn iter(&self) -> impl Iterator<Item = (&ClientKey, &Lease)> {
        self.map.iter()
    }

    /// Marks Offered leases whose hold ended and Bound leases past expires_at as Expired and
    /// calls `free(lease)` for each so the caller can release the address to its pool. Expired and
    /// Released entries are kept (so a returning client can get its old address back) until
    /// `forget_before` (unix secs): entries that ended before that are removed. Returns how many expired.
    ///
    /// A lease has ended once `expires_at <= now`. `free` sees the lease already marked Expired,
    /// so the caller can log it as is. A lease that expires in this sweep and also ended before
    /// `forget_before` (the server was down a long time) is freed and then removed at once.
    /// Released leases are never passed to `free`: the engine returned their address on release.
    pub fn sweep(
        &mut self,
        now: u32,
        forget_before: u32,
        mut free: impl FnMut(&ClientKey, &Lease),
    ) -> usize {
        let mut expired = 0;
        self.map.retain(|key, lease| {
            let live = matches!(lease.state, LeaseState::Offered | LeaseState::Bound);
            if live && lease.expires_at <= now {
                lease.state = LeaseState::Expired;
                expired += 1;
                free(key, lease);
            }
            let ended = matches!(lease.state, LeaseState::Expired | LeaseState::Released);
            !(ended && lease.expires_at < forget_before)
        });
        expired
    }
}

impl Default for LeaseTable {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for LeaseTable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LeaseTable")
            .field("len", &self.map.len())
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    fn lease(last_octet: u8, state: LeaseState, expires_at: u32) -> Lease {
        Lease {
            addr: Ipv4Addr::new(10, 0, 0, last_octet),
            expires_at,
            state,
            chaddr: [0, 1, 2, 3, 4, last_octet],
            pool: 0,
        }
    }

    fn key(n: u8) -> ClientKey {
        ClientKey::from_hw(1, &[0, 1, 2, 3, 4, n])
    }

    #[test]
    fn insert_get_remove() {
        let mut t = LeaseTable::new();
        assert!(t.is_empty());
        assert_eq!(t.insert(key(1), lease(1, LeaseState::Offered, 10)), None);
        let old = t.insert(key(1), lease(1, LeaseState::Bound, 100));
        assert_eq!(old.map(|l| l.state), Some(LeaseState::Offered));
        assert_eq!(t.len(), 1);
        t.get_mut(&key(1)).unwrap().expires_at = 200;
        assert_eq!(t.get(&key(1)).unwrap().expires_at, 200);
        assert_eq!(t.iter().count(), 1);
        assert!(t.remove(&key(1)).is_some());
        assert!(t.get(&key(1)).is_none());
    }

    #[test]
    fn sweep_expires_offers_and_bindings_at_their_end() {
        let mut t = LeaseTable::with_capacity(8);
        t.insert(key(1), lease(1, LeaseState::Offered, 100)); // hold ends exactly now
        t.insert(key(2), lease(2, LeaseState::Offered, 101)); // still held
        t.insert(key(3), lease(3, LeaseState::Bound, 99)); // past its end
        t.insert(key(4), lease(4, LeaseState::Bound, 1000)); // valid
        t.insert(key(5), lease(5, LeaseState::Released, 50)); // already free: not passed to free
        t.insert(key(6), lease(6, LeaseState::Expired, 60)); // already expired: not again

        let mut freed = Vec::new();
        let n = t.sweep(100, 0, |k, l| freed.push((k.clone(), *l)));
        assert_eq!(n, 2);
        freed.sort_by_key(|(_, l)| l.addr);
        assert_eq!(
            freed.iter().map(|(k, _)| k.clone()).collect::<Vec<_>>(),
            vec![key(1), key(3)]
        );
        assert!(freed.iter().all(|(_, l)| l.state == LeaseState::Expired));
        assert_eq!(t.get(&key(1)).unwrap().state, LeaseState::Expired);
        assert_eq!(t.get(&key(2)).unwrap().state, LeaseState::Offered);
        assert_eq!(t.get(&key(3)).unwrap().state, LeaseState::Expired);
        assert_eq!(t.get(&key(4)).unwrap().state, LeaseState::Bound);
        // Nothing forgotten with forget_before = 0: returning clients keep their old address.
        assert_eq!(t.len(), 6);

        // A second sweep at the same time frees nothing twice.
        assert_eq!(t.sweep(100, 0, |_, _| panic!("freed twice")), 0);
    }

    #[test]
    fn sweep_forgets_ended_entries_before_cutoff_only() {
        let mut t = LeaseTable::new();
        t.insert(key(1), lease(1, LeaseState::Released, 50));
        t.insert(key(2), lease(2, LeaseState::Expired, 60));
        t.insert(key(3), lease(3, LeaseState::Expired, 70)); // ended exactly at the cutoff: kept
        t.insert(key(4), lease(4, LeaseState::Bound, 30)); // expires now and is long gone
        t.insert(key(5), lease(5, LeaseState::Bound, 500)); // live: never forgotten
        t.insert(key(6), lease(6, LeaseState::Offered, 200)); // live: never forgotten

        let mut freed = Vec::new();
        let n = t.sweep(100, 70, |k, _| freed.push(k.clone()));
        assert_eq!(n, 1);
        assert_eq!(freed, vec![key(4)]);
        assert!(t.get(&key(1)).is_none());
        assert!(t.get(&key(2)).is_none());
        assert_eq!(t.get(&key(3)).unwrap().state, LeaseState::Expired);
        assert!(t.get(&key(4)).is_none());
        assert_eq!(t.get(&key(5)).unwrap().state, LeaseState::Bound);
        assert_eq!(t.get(&key(6)).unwrap().state, LeaseState::Offered);
        assert_eq!(t.len(), 3);
    }
}
