//! Per-source token buckets for the UDP roles that answer anyone (time, syslog): one address
//! cannot take more than its share, whatever it sends or forges.

use std::collections::HashMap;
use std::net::Ipv4Addr;

/// Per-source token buckets, sans-IO (the caller's clock in milliseconds): `rate` a second and
/// `burst` at once per address, over a bounded table (past `max_sources`, buckets that are
/// full again are swept, then all).
#[derive(Debug)]
pub struct SourceLimit {
    /// Milli-tokens added per millisecond = answers per second.
    rate: u64,
    burst_milli: u64,
    max_sources: usize,
    buckets: HashMap<Ipv4Addr, (u64, u64)>,
}

impl SourceLimit {
    pub fn new(rate: u32, burst: u32, max_sources: usize) -> Self {
        SourceLimit {
            rate: u64::from(rate),
            burst_milli: u64::from(burst.max(1)) * 1000,
            max_sources: max_sources.max(1),
            buckets: HashMap::new(),
        }
    }

    /// Whether `ip` may have one more answer at `now_ms`; takes it if so.
    pub fn allow(&mut self, ip: Ipv4Addr, now_ms: u64) -> bool {
        if self.buckets.len() >= self.max_sources && !self.buckets.contains_key(&ip) {
            let (rate, full) = (self.rate, self.burst_milli);
            self.buckets
                .retain(|_, (tokens, at)| *tokens + now_ms.saturating_sub(*at) * rate < full);
            if self.buckets.len() >= self.max_sources {
                self.buckets.clear();
            }
        }
        let (tokens, at) = self.buckets.entry(ip).or_insert((self.burst_milli, now_ms));
        *tokens = (*tokens + now_ms.saturating_sub(*at) * self.rate).min(self.burst_milli);
        *at = now_ms;
        if *tokens >= 1000 {
            *tokens -= 1000;
            true
        } else {
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_source_gets_its_burst_then_its_rate_and_others_are_not_affected() {
        let a = Ipv4Addr::new(10, 0, 0, 1);
        let b = Ipv4Addr::new(10, 0, 0, 2);
        let mut l = SourceLimit::new(5, 10, 100);
        let first: usize = (0..1000).filter(|_| l.allow(a, 0)).count();
        assert_eq!(first, 10, "the burst");
        assert!(l.allow(b, 0), "another source is not affected");
        // One second later: 5 more.
        assert_eq!((0..1000).filter(|_| l.allow(a, 1000)).count(), 5);
        // Idle for a long time: back to the burst, never more.
        assert_eq!((0..1000).filter(|_| l.allow(a, 100_000)).count(), 10);
    }

    #[test]
    fn the_source_table_stays_bounded() {
        let mut l = SourceLimit::new(5, 10, 64);
        for i in 0..10_000u32 {
            assert!(l.allow(Ipv4Addr::from(i), u64::from(i)));
            assert!(l.buckets.len() <= 64);
        }
    }
}
