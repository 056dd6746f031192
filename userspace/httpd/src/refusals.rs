//! A budget of refusals per source address: a host that keeps asking for profiles it may not
//! have (guessing MACs, or not holding the lease) is answered 429 until its budget refills, so
//! enumerating devices costs it time. Only refusals spend; a device fetching its own profile
//! never does.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;

/// Refusals a source may have at once, and how many come back a second.
pub const REFUSALS_BURST: u32 = 20;
pub const REFUSALS_PER_SEC: u32 = 1;
/// Sources remembered; past it, those with a full budget are forgotten, then all.
const MAX_SOURCES: usize = 65_536;

#[derive(Debug, Default)]
pub(crate) struct Refusals {
    /// Source → (refusals left, unix seconds of the last update).
    map: Mutex<HashMap<IpAddr, (u32, u64)>>,
}

fn level((left, at): (u32, u64), now: u64) -> u32 {
    let back = now
        .saturating_sub(at)
        .saturating_mul(u64::from(REFUSALS_PER_SEC));
    u32::try_from(u64::from(left).saturating_add(back))
        .unwrap_or(u32::MAX)
        .min(REFUSALS_BURST)
}

impl Refusals {
    /// Whether `src` has spent its budget (it is then answered 429 whatever it asks).
    pub(crate) fn exhausted(&self, src: IpAddr, now: u64) -> bool {
        let Ok(map) = self.map.lock() else {
            return false;
        };
        map.get(&src).is_some_and(|b| level(*b, now) == 0)
    }

    /// One refusal of `src`.
    pub(crate) fn spend(&self, src: IpAddr, now: u64) {
        let Ok(mut map) = self.map.lock() else {
            return;
        };
        if !map.contains_key(&src) && map.len() >= MAX_SOURCES {
            map.retain(|_, b| level(*b, now) < REFUSALS_BURST);
            if map.len() >= MAX_SOURCES {
                map.clear();
            }
        }
        let b = map.entry(src).or_insert((REFUSALS_BURST, now));
        *b = (level(*b, now).saturating_sub(1), now);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_source_gets_its_burst_of_refusals_then_one_a_second() {
        let r = Refusals::default();
        let a: IpAddr = [198, 18, 0, 60].into();
        let b: IpAddr = [198, 18, 0, 61].into();
        for _ in 0..REFUSALS_BURST {
            assert!(!r.exhausted(a, 100));
            r.spend(a, 100);
        }
        assert!(r.exhausted(a, 100));
        assert!(!r.exhausted(b, 100), "per source");
        assert!(!r.exhausted(a, 101), "one back after a second");
        r.spend(a, 101);
        assert!(r.exhausted(a, 101));
        assert!(!r.exhausted(a, 200));
    }
}
