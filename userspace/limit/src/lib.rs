//! Token buckets, sans-IO: the caller's clock in whatever ticks it keeps (seconds,
//! milliseconds), amounts in thousandths of a token so that slow refills are exact.
//!
//! One [`Bucket`] for a single budget (the ACS's connection requests); [`Buckets`] for one per
//! key (a source address, a relay, a subscriber) over a bounded table: past `max_keys`, the keys
//! whose bucket is full again are forgotten, then all (a flood of new keys cannot grow memory;
//! forgetting a full bucket changes nothing).

use std::collections::HashMap;
use std::hash::Hash;

/// Thousandths of a token: one token.
pub const TOKEN: u64 = 1000;

/// The size and refill of a budget.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rate {
    /// Most held at once, in thousandths of a token; 0: no limit at all.
    pub capacity: u64,
    /// Thousandths of a token added per tick.
    pub refill: u64,
}

impl Rate {
    /// `burst` tokens at once and `per_sec` a second, on a clock in milliseconds.
    pub fn per_ms(burst: u32, per_sec: u32) -> Rate {
        Rate {
            capacity: u64::from(burst) * TOKEN,
            refill: u64::from(per_sec),
        }
    }

    /// `burst` tokens at once and `per_sec` a second, on a clock in seconds.
    pub fn per_sec(burst: u32, per_sec: u32) -> Rate {
        Rate {
            capacity: u64::from(burst) * TOKEN,
            refill: u64::from(per_sec) * TOKEN,
        }
    }
}

/// One budget: its level at its last update.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Bucket {
    milli: u64,
    at: u64,
}

impl Bucket {
    /// A full bucket at `now`.
    pub fn full(rate: Rate, now: u64) -> Bucket {
        Bucket {
            milli: rate.capacity,
            at: now,
        }
    }

    /// What it holds at `now` (a clock that went back refills nothing).
    pub fn level(&self, rate: Rate, now: u64) -> u64 {
        let dt = now.saturating_sub(self.at);
        self.milli
            .saturating_add(dt.saturating_mul(rate.refill))
            .min(rate.capacity)
    }

    /// Takes one token at `now` if there is one; an empty bucket stays empty.
    pub fn take(&mut self, rate: Rate, now: u64) -> bool {
        if rate.capacity == 0 {
            return true;
        }
        let milli = self.level(rate, now);
        let ok = milli >= TOKEN;
        *self = Bucket {
            milli: if ok { milli - TOKEN } else { milli },
            at: now.max(self.at),
        };
        ok
    }
}

/// A bucket per key, all of one [`Rate`], over a bounded table.
#[derive(Debug)]
pub struct Buckets<K> {
    rate: Rate,
    max_keys: usize,
    map: HashMap<K, Bucket>,
}

impl<K: Hash + Eq + Clone> Buckets<K> {
    pub fn new(rate: Rate, max_keys: usize) -> Self {
        Buckets {
            rate,
            max_keys: max_keys.max(1),
            map: HashMap::new(),
        }
    }

    pub fn rate(&self) -> Rate {
        self.rate
    }

    /// Takes one token from `key`'s bucket at `now`; false when it is empty.
    pub fn take(&mut self, key: &K, now: u64) -> bool {
        if self.rate.capacity == 0 {
            return true;
        }
        if !self.map.contains_key(key) && self.map.len() >= self.max_keys {
            let rate = self.rate;
            self.map.retain(|_, b| b.level(rate, now) < rate.capacity);
            if self.map.len() >= self.max_keys {
                self.map.clear();
            }
        }
        let rate = self.rate;
        self.map
            .entry(key.clone())
            .or_insert_with(|| Bucket::full(rate, now))
            .take(rate, now)
    }

    /// Whether `key` has no whole token left at `now` (an unknown key has a full bucket).
    pub fn empty(&self, key: &K, now: u64) -> bool {
        self.rate.capacity != 0
            && self
                .map
                .get(key)
                .is_some_and(|b| b.level(self.rate, now) < TOKEN)
    }

    /// Keys held.
    pub fn len(&self) -> usize {
        self.map.len()
    }

    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_gets_its_burst_then_its_rate_and_others_are_not_affected() {
        let mut l = Buckets::new(Rate::per_ms(10, 5), 100);
        let first = (0..1000).filter(|_| l.take(&1u32, 0)).count();
        assert_eq!(first, 10, "the burst");
        assert!(l.empty(&1, 0));
        assert!(l.take(&2, 0), "another key is not affected");
        // One second later: 5 more.
        assert_eq!((0..1000).filter(|_| l.take(&1, 1000)).count(), 5);
        // Idle for a long time: back to the burst, never more.
        assert_eq!((0..1000).filter(|_| l.take(&1, 100_000)).count(), 10);
    }

    #[test]
    fn slow_refills_are_exact_in_thousandths() {
        // One token every 4 s on a clock in seconds, shared by 4: 250 thousandths a second.
        let rate = Rate {
            capacity: TOKEN,
            refill: TOKEN / 4,
        };
        let mut b = Bucket::full(rate, 0);
        assert!(b.take(rate, 0));
        assert!(!b.take(rate, 3));
        assert!(b.take(rate, 4));
    }

    #[test]
    fn capacity_zero_is_no_limit() {
        let mut l = Buckets::new(Rate::per_sec(0, 0), 1);
        assert!((0..10_000u32).all(|i| l.take(&i, 0)));
        assert_eq!(l.len(), 0);
    }

    #[test]
    fn the_table_stays_bounded() {
        let mut l = Buckets::new(Rate::per_ms(10, 5), 64);
        for i in 0..10_000u32 {
            assert!(l.take(&i, u64::from(i)));
            assert!(l.len() <= 64);
        }
    }

    #[test]
    fn a_clock_that_goes_back_refills_nothing() {
        let rate = Rate::per_sec(1, 1);
        let mut b = Bucket::full(rate, 100);
        assert!(b.take(rate, 100));
        assert!(!b.take(rate, 50));
        assert!(!b.take(rate, 100));
        assert!(b.take(rate, 101));
    }
}
