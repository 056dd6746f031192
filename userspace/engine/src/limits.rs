//! What keeps one source from taking a pool: token buckets on new clients per relay agent's
//! subscriber (option 82 remote-id, else circuit-id) and per relay (giaddr), and the queue of
//! offers a pool out of addresses may give to the next client.
//!
//! Everything is shard-local, like the lease table: a shard sees the clients whose MACs hash to
//! it, so each bucket holds the shard's share of the configured limit (rounded up). No lock, no
//! cross-shard traffic; a source's limit is exact to within one client per shard.

use std::collections::VecDeque;
use std::hash::Hash;
use std::net::Ipv4Addr;

use provd_config::SourceLimit;
use provd_lease::ClientKey;
use provd_limit::{Rate, TOKEN};

/// Sources a shard keeps a bucket for; past it, full (idle) buckets are dropped, then all.
const MAX_SOURCES: usize = 65_536;
/// Offers looked at per reuse attempt, so a queue full of another network's offers costs a
/// bounded scan.
const MAX_REUSE_SCAN: usize = 256;

/// A token bucket per source holding the shard's share of the configured limit (in
/// thousandths of a client, so a share below one a second is exact); the clock is in seconds.
#[derive(Debug)]
pub(crate) struct Buckets<K>(provd_limit::Buckets<K>);

impl<K: Hash + Eq + Clone> Buckets<K> {
    pub(crate) fn new(limit: SourceLimit, shards: u32) -> Self {
        let shards = u64::from(shards.max(1));
        let rate = Rate {
            // Capacity 0 (burst 0): no limit.
            capacity: u64::from(limit.burst).div_ceil(shards) * TOKEN,
            refill: u64::from(limit.per_sec) * TOKEN / shards,
        };
        Buckets(provd_limit::Buckets::new(rate, MAX_SOURCES))
    }

    /// Takes one client from `key`'s bucket at `now`; false when it is empty.
    pub(crate) fn take(&mut self, key: &K, now: u32) -> bool {
        self.0.take(key, u64::from(now))
    }

    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.0.len()
    }
}

/// The limits of one shard.
#[derive(Debug)]
pub(crate) struct Limits {
    pub agents: Buckets<Vec<u8>>,
    pub relays: Buckets<Ipv4Addr>,
    /// Offers in the order they were made: `(expires_at, client)`. An entry whose client's
    /// lease is no longer that offer is stale and skipped.
    pub offers: VecDeque<(u32, ClientKey)>,
}

impl Limits {
    pub(crate) fn new(agent: SourceLimit, relay: SourceLimit, shards: u32) -> Self {
        Limits {
            agents: Buckets::new(agent, shards),
            relays: Buckets::new(relay, shards),
            offers: VecDeque::new(),
        }
    }

    /// The oldest offer made at least `min_age` seconds before `now` (its `expires_at` is
    /// `hold` after it was made) for which `usable(client)` gives `Some`: removed from the
    /// queue, with what `usable` returned. Stale entries met on the way are dropped; usable
    /// ones for other networks stay, in order.
    pub(crate) fn reuse_offer<T>(
        &mut self,
        now: u32,
        hold: u32,
        min_age: u32,
        mut usable: impl FnMut(u32, &ClientKey) -> Reuse<T>,
    ) -> Option<T> {
        let mut kept = Vec::new();
        let mut found = None;
        for _ in 0..MAX_REUSE_SCAN {
            let Some((expires_at, key)) = self.offers.pop_front() else {
                break;
            };
            let made = expires_at.saturating_sub(hold);
            if now.saturating_sub(made) < min_age {
                self.offers.push_front((expires_at, key));
                break;
            }
            match usable(expires_at, &key) {
                Reuse::Stale => {}
                Reuse::Elsewhere => kept.push((expires_at, key)),
                Reuse::Take(t) => {
                    found = Some(t);
                    break;
                }
            }
        }
        for e in kept.into_iter().rev() {
            self.offers.push_front(e);
        }
        found
    }

    /// Drops stale entries from the front (offers past their hold), so the queue holds at
    /// most the offers of one hold period.
    pub(crate) fn push_offer(&mut self, expires_at: u32, key: ClientKey, now: u32) {
        while self.offers.front().is_some_and(|(e, _)| *e <= now) {
            self.offers.pop_front();
        }
        self.offers.push_back((expires_at, key));
    }
}

/// What [`Limits::reuse_offer`]'s caller says of one queued offer.
pub(crate) enum Reuse<T> {
    /// No longer that offer (bound, taken back, swept): forget it.
    Stale,
    /// Still an offer, but not one this client may have (another network or class).
    Elsewhere,
    /// Given to this client.
    Take(T),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bucket_gives_its_share_of_the_burst_then_refills_per_second() {
        // 2 shards: 4 of a burst of 7 each, and 1 a second (2 / 2).
        let mut b = Buckets::new(
            SourceLimit {
                burst: 7,
                per_sec: 2,
            },
            2,
        );
        let k = b"cm-1".to_vec();
        assert_eq!((0..10).filter(|_| b.take(&k, 100)).count(), 4);
        assert!(!b.take(&k, 100));
        // Another source has its own bucket.
        assert!(b.take(&b"cm-2".to_vec(), 100));
        assert!(b.take(&k, 101));
        assert!(!b.take(&k, 101));
        // Long idle: back to the burst, not beyond.
        assert_eq!((0..10).filter(|_| b.take(&k, 200)).count(), 4);
    }

    #[test]
    fn burst_zero_is_no_limit_and_keeps_no_state() {
        let mut b = Buckets::new(SourceLimit::OFF, 4);
        assert!((0..1000).all(|i| b.take(&Ipv4Addr::from(i), 1)));
        assert_eq!(b.len(), 0);
    }

    #[test]
    fn the_source_map_stays_bounded() {
        let mut b = Buckets::new(
            SourceLimit {
                burst: 1,
                per_sec: 1,
            },
            1,
        );
        for i in 0..(MAX_SOURCES as u32 + 10) {
            b.take(&Ipv4Addr::from(i), 5);
        }
        assert!(b.len() <= MAX_SOURCES);
    }

    fn key(n: u8) -> ClientKey {
        ClientKey::from_hw(1, &[2, 0, 0, 0, 0, n])
    }

    #[test]
    fn reuse_takes_the_oldest_old_enough_offer_and_keeps_the_others_in_order() {
        let mut l = Limits::new(SourceLimit::OFF, SourceLimit::OFF, 1);
        // hold 30: offers made at 100, 101, 102, 110.
        for (made, n) in [(100, 1), (101, 2), (102, 3), (110, 4)] {
            l.push_offer(made + 30, key(n), made);
        }
        // At 105 with min age 2: 1 is stale, 2 is another network's, 3 is taken.
        let got = l.reuse_offer(105, 30, 2, |_, k| {
            if *k == key(1) {
                Reuse::Stale
            } else if *k == key(2) {
                Reuse::Elsewhere
            } else {
                Reuse::Take(k.clone())
            }
        });
        assert_eq!(got, Some(key(3)));
        let left: Vec<_> = l.offers.iter().map(|(_, k)| k.clone()).collect();
        assert_eq!(left, [key(2), key(4)]);
        // 4 was made at 110: too young at 111.
        assert_eq!(
            l.reuse_offer(111, 30, 2, |_, k| if *k == key(2) {
                Reuse::Elsewhere
            } else {
                Reuse::Take(k.clone())
            }),
            None
        );
        assert_eq!(l.offers.len(), 2);
        // Offers past their hold leave the queue as new ones come.
        l.push_offer(200 + 30, key(5), 200);
        assert_eq!(l.offers.len(), 1);
    }
}
