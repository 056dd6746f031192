//! A budget of refusals per source address: a host that keeps asking for profiles it may not
//! have (guessing MACs, or not holding the lease) is answered 429 until its budget refills, so
//! enumerating devices costs it time. Only refusals spend; a device fetching its own profile
//! never does.

use std::net::IpAddr;
use std::sync::Mutex;

use provd_limit::{Buckets, Rate};

/// Refusals a source may have at once, and how many come back a second.
pub const REFUSALS_BURST: u32 = 20;
pub const REFUSALS_PER_SEC: u32 = 1;
/// Sources remembered; past it, those with a full budget are forgotten, then all.
const MAX_SOURCES: usize = 65_536;

/// Each source's refusals left (the clock in unix seconds).
#[derive(Debug)]
pub(crate) struct Refusals(Mutex<Buckets<IpAddr>>);

impl Default for Refusals {
    fn default() -> Self {
        Refusals(Mutex::new(Buckets::new(
            Rate::per_sec(REFUSALS_BURST, REFUSALS_PER_SEC),
            MAX_SOURCES,
        )))
    }
}

impl Refusals {
    /// Whether `src` has spent its budget (it is then answered 429 whatever it asks).
    pub(crate) fn exhausted(&self, src: IpAddr, now: u64) -> bool {
        self.0.lock().is_ok_and(|b| b.empty(&src, now))
    }

    /// One refusal of `src`.
    pub(crate) fn spend(&self, src: IpAddr, now: u64) {
        if let Ok(mut b) = self.0.lock() {
            b.take(&src, now);
        }
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
