//! `PoolBitmap`: which addresses of a pool are taken, shared by every shard without a lock.
//!
//! One bit per address; claiming is a compare-and-swap on the 64-bit word holding the bit, so two
//! shards racing for the same address cannot both win, and shards starting their search at
//! different hints rarely touch the same word at all.

use std::fmt;
use std::net::Ipv4Addr;
use std::sync::atomic::{AtomicU64, Ordering};

/// Largest pool: a /8. Bounds the bitmap at 2 MiB and keeps every index in a u32.
pub const MAX_POOL_ADDRESSES: u64 = 1 << 24;

/// Why a pool range was refused.
#[derive(Clone, PartialEq, Eq, Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PoolError {
    #[error("pool range {first}-{last} ends before it starts")]
    Inverted { first: Ipv4Addr, last: Ipv4Addr },
    #[error("pool range {first}-{last} has {size} addresses, more than the {max} allowed")]
    TooLarge {
        first: Ipv4Addr,
        last: Ipv4Addr,
        size: u64,
        max: u64,
    },
}

/// Lock-free address pool shared (Arc) by all shards: one bit per address of an inclusive range.
/// Claims are CAS on AtomicU64 words, so any shard may allocate any address with no lock.
pub struct PoolBitmap {
    first: u32,
    len: u32,
    // Bits past `len` in the last word are set at construction, so searches never hand them out;
    // `claimed()` subtracts them.
    words: Box<[AtomicU64]>,
    padding_bits: u32,
}

impl PoolBitmap {
    /// A pool of every address from `first` to `last` inclusive, all free.
    pub fn new(first: Ipv4Addr, last: Ipv4Addr) -> Result<PoolBitmap, PoolError> {
        let (lo, hi) = (u32::from(first), u32::from(last));
        if hi < lo {
            return Err(PoolError::Inverted { first, last });
        }
        let size = u64::from(hi - lo) + 1;
        if size > MAX_POOL_ADDRESSES {
            return Err(PoolError::TooLarge {
                first,
                last,
                size,
                max: MAX_POOL_ADDRESSES,
            });
        }
        // size <= 2^24, so it fits u32 and the word count fits usize.
        let len = size as u32;
        let nwords = len.div_ceil(64) as usize;
        let padding_bits = nwords as u32 * 64 - len;
        let words: Box<[AtomicU64]> = (0..nwords).map(|_| AtomicU64::new(0)).collect();
        if padding_bits > 0 {
            let tail = !0u64 << (64 - padding_bits);
            if let Some(last_word) = words.last() {
                last_word.store(tail, Ordering::Relaxed);
            }
        }
        Ok(PoolBitmap {
            first: lo,
            len,
            words,
            padding_bits,
        })
    }

    pub fn contains(&self, addr: Ipv4Addr) -> bool {
        self.index(addr).is_some()
    }

    /// Claims `addr`; false if it is outside the pool or someone holds it already.
    pub fn try_claim(&self, addr: Ipv4Addr) -> bool {
        let Some((word, bit)) = self.index(addr).and_then(|i| self.slot(i)) else {
            return false;
        };
        word.fetch_or(bit, Ordering::AcqRel) & bit == 0
    }

    /// Claims the first free address at or after index `hint` (taken modulo the pool size),
    /// wrapping to the start; `None` when the pool is full. Shards pass different hints so their
    /// searches start in different words and do not fight over the same CAS.
    pub fn claim_any(&self, hint: u32) -> Option<Ipv4Addr> {
        let start = hint % self.len;
        let nwords = self.words.len();
        let start_word = (start / 64) as usize;
        let start_bit = start % 64;
        // Visit the start word's upper part, every other word, then its lower part, so the
        // address found is the first free one in wrapping order.
        for step in 0..=nwords {
            let w = (start_word + step) % nwords;
            let mask = if step == 0 {
                !0u64 << start_bit
            } else if step == nwords {
                (1u64 << start_bit) - 1
            } else {
                !0u64
            };
            if mask == 0 {
                continue;
            }
            if let Some(bit) = self.claim_in_word(w, mask) {
                let index = w as u32 * 64 + bit;
                return Some(Ipv4Addr::from(self.first + index));
            }
        }
        None
    }

    /// Frees `addr` for the next claim; no-op if it is outside the pool.
    pub fn release(&self, addr: Ipv4Addr) {
        if let Some((word, bit)) = self.index(addr).and_then(|i| self.slot(i)) {
            word.fetch_and(!bit, Ordering::AcqRel);
        }
    }

    pub fn is_claimed(&self, addr: Ipv4Addr) -> bool {
        self.index(addr)
            .and_then(|i| self.slot(i))
            .is_some_and(|(word, bit)| word.load(Ordering::Acquire) & bit != 0)
    }

    /// Number of addresses in the pool.
    pub fn len(&self) -> u32 {
        self.len
    }

    /// Always false: a pool holds at least one address. Here because clippy pairs it with `len`.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Addresses claimed now: a popcount over the whole bitmap, O(pool size / 64).
    pub fn claimed(&self) -> u32 {
        let set: u32 = self
            .words
            .iter()
            .map(|w| w.load(Ordering::Relaxed).count_ones())
            .sum();
        set - self.padding_bits
    }

    pub fn first(&self) -> Ipv4Addr {
        Ipv4Addr::from(self.first)
    }

    pub fn last(&self) -> Ipv4Addr {
        Ipv4Addr::from(self.first + (self.len - 1))
    }

    fn index(&self, addr: Ipv4Addr) -> Option<u32> {
        let i = u32::from(addr).checked_sub(self.first)?;
        (i < self.len).then_some(i)
    }

    fn slot(&self, index: u32) -> Option<(&AtomicU64, u64)> {
        let word = self.words.get((index / 64) as usize)?;
        Some((word, 1u64 << (index % 64)))
    }

    fn claim_in_word(&self, w: usize, mask: u64) -> Option<u32> {
        let word = self.words.get(w)?;
        let mut cur = word.load(Ordering::Relaxed);
        loop {
            let free = !cur & mask;
            if free == 0 {
                return None;
            }
            let bit = free.trailing_zeros();
            match word.compare_exchange_weak(
                cur,
                cur | (1u64 << bit),
                Ordering::AcqRel,
                Ordering::Relaxed,
            ) {
                Ok(_) => return Some(bit),
                Err(now) => cur = now,
            }
        }
    }
}

impl fmt::Debug for PoolBitmap {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PoolBitmap")
            .field("first", &self.first())
            .field("last", &self.last())
            .field("len", &self.len)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;
    use std::sync::Arc;
    use std::sync::atomic::AtomicBool;

    fn ip(s: &str) -> Ipv4Addr {
        s.parse().unwrap()
    }

    fn pool(first: &str, last: &str) -> PoolBitmap {
        PoolBitmap::new(ip(first), ip(last)).unwrap()
    }

    #[test]
    fn bad_ranges_are_errors() {
        assert!(matches!(
            PoolBitmap::new(ip("10.0.0.2"), ip("10.0.0.1")),
            Err(PoolError::Inverted { .. })
        ));
        assert!(matches!(
            PoolBitmap::new(ip("10.0.0.0"), ip("11.0.0.0")),
            Err(PoolError::TooLarge { size, .. }) if size == (1 << 24) + 1
        ));
    }

    #[test]
    fn single_address_pool() {
        let p = pool("192.0.2.7", "192.0.2.7");
        assert_eq!((p.len(), p.claimed()), (1, 0));
        assert!(p.contains(ip("192.0.2.7")));
        assert!(!p.contains(ip("192.0.2.6")));
        assert!(!p.contains(ip("192.0.2.8")));
        assert_eq!(p.claim_any(12345), Some(ip("192.0.2.7")));
        assert_eq!(p.claim_any(0), None);
        assert!(!p.try_claim(ip("192.0.2.7")));
        assert_eq!(p.claimed(), 1);
        p.release(ip("192.0.2.7"));
        assert_eq!(p.claimed(), 0);
        assert!(p.try_claim(ip("192.0.2.7")));
    }

    #[test]
    fn edges_of_the_range() {
        let p = pool("10.0.0.10", "10.0.0.200");
        assert_eq!(p.first(), ip("10.0.0.10"));
        assert_eq!(p.last(), ip("10.0.0.200"));
        assert_eq!(p.len(), 191);
        assert!(p.try_claim(ip("10.0.0.10")));
        assert!(p.try_claim(ip("10.0.0.200")));
        assert!(!p.try_claim(ip("10.0.0.9")));
        assert!(!p.try_claim(ip("10.0.0.201")));
        assert!(p.is_claimed(ip("10.0.0.200")));
        assert!(!p.is_claimed(ip("10.0.0.201")));
        // Releasing outside the pool must not touch padding bits or anything else.
        p.release(ip("10.0.0.201"));
        p.release(ip("255.255.255.255"));
        assert_eq!(p.claimed(), 2);
        // Fill it: every address exactly once, never a padding bit.
        let mut seen = HashSet::new();
        while let Some(a) = p.claim_any(0) {
            assert!(p.contains(a), "{a} outside pool");
            assert!(seen.insert(a));
        }
        assert_eq!(seen.len(), 189);
        assert_eq!(p.claimed(), 191);
    }

    #[test]
    fn whole_ipv4_top_end() {
        let p = pool("255.255.255.0", "255.255.255.255");
        assert!(p.try_claim(ip("255.255.255.255")));
        assert_eq!(p.last(), ip("255.255.255.255"));
        assert_eq!(p.claim_any(255), Some(ip("255.255.255.0")));
    }

    #[test]
    fn slash8_pool() {
        let p = pool("10.0.0.0", "10.255.255.255");
        assert_eq!(p.len(), 1 << 24);
        assert_eq!(p.claim_any(u32::MAX), Some(ip("10.255.255.255")));
        assert_eq!(p.claim_any(u32::MAX), Some(ip("10.0.0.0")));
        assert!(p.try_claim(ip("10.128.0.0")));
        assert_eq!(p.claimed(), 3);
    }

    #[test]
    fn hint_wraps_around_the_pool() {
        let p = pool("10.0.0.0", "10.0.0.99");
        // Hint past the end is taken modulo the size.
        assert_eq!(p.claim_any(100 + 5), Some(ip("10.0.0.5")));
        for i in 90..100 {
            assert!(p.try_claim(Ipv4Addr::from(u32::from(ip("10.0.0.0")) + i)));
        }
        // Nothing free from 90 to the end: the search wraps to the start.
        assert_eq!(p.claim_any(95), Some(ip("10.0.0.0")));
        // The start word's lower part is searched last.
        let q = pool("10.0.0.0", "10.0.0.99");
        for i in 10..100 {
            assert!(q.try_claim(Ipv4Addr::from(u32::from(ip("10.0.0.0")) + i)));
        }
        assert_eq!(q.claim_any(50), Some(ip("10.0.0.0")));
    }

    #[test]
    fn two_threads_never_get_the_same_address() {
        const SIZE: u32 = 1000;
        let p = Arc::new(pool("10.0.0.0", "10.0.3.231"));
        assert_eq!(p.len(), SIZE);
        let held: Arc<Vec<AtomicBool>> =
            Arc::new((0..SIZE).map(|_| AtomicBool::new(false)).collect());
        let base = u32::from(p.first());
        let handles: Vec<_> = (0..2u32)
            .map(|t| {
                let (p, held) = (Arc::clone(&p), Arc::clone(&held));
                std::thread::spawn(move || {
                    let mut mine = Vec::new();
                    let mut claims = 0u64;
                    for round in 0..200_000u32 {
                        // Both threads start at the same hint half the time, to force CAS races.
                        let hint = if round % 2 == 0 { 0 } else { t * 500 + round };
                        if let Some(a) = p.claim_any(hint) {
                            let i = (u32::from(a) - base) as usize;
                            assert!(
                                !held[i].swap(true, Ordering::SeqCst),
                                "{a} handed out twice"
                            );
                            mine.push(a);
                            claims += 1;
                        }
                        if mine.len() > 300 || (round % 3 == 0 && !mine.is_empty()) {
                            let a = mine.swap_remove(round as usize % mine.len());
                            held[(u32::from(a) - base) as usize].store(false, Ordering::SeqCst);
                            p.release(a);
                        }
                    }
                    (claims, mine)
                })
            })
            .collect();
        let mut still_held = HashSet::new();
        for h in handles {
            let (claims, mine) = h.join().unwrap();
            assert!(claims > 1000);
            for a in mine {
                assert!(still_held.insert(a));
            }
        }
        assert_eq!(p.claimed() as usize, still_held.len());
    }

    #[test]
    fn two_threads_draining_split_the_pool_exactly() {
        let p = Arc::new(pool("10.0.0.0", "10.0.39.255"));
        let handles: Vec<_> = (0..2u32)
            .map(|t| {
                let p = Arc::clone(&p);
                std::thread::spawn(move || {
                    let mut got = Vec::new();
                    while let Some(a) = p.claim_any(t * 7) {
                        got.push(a);
                    }
                    got
                })
            })
            .collect();
        let mut all = HashSet::new();
        for h in handles {
            for a in h.join().unwrap() {
                assert!(all.insert(a), "{a} handed out twice");
            }
        }
        assert_eq!(all.len() as u32, p.len());
        assert_eq!(p.claimed(), p.len());
    }
}
