//! Per-source token buckets for the UDP roles that answer anyone (time, syslog): one address
//! cannot take more than its share, whatever it sends or forges.

use std::net::Ipv4Addr;

use provd_limit::{Buckets, Rate};

/// Per-source token buckets, sans-IO (the caller's clock in milliseconds): `rate` a second and
/// `burst` at once per address, over a bounded table (past `max_sources`, buckets that are
/// full again are swept, then all).
#[derive(Debug)]
pub struct SourceLimit(Buckets<Ipv4Addr>);

impl SourceLimit {
    pub fn new(rate: u32, burst: u32, max_sources: usize) -> Self {
        SourceLimit(Buckets::new(Rate::per_ms(burst.max(1), rate), max_sources))
    }

    /// Whether `ip` may have one more answer at `now_ms`; takes it if so.
    pub fn allow(&mut self, ip: Ipv4Addr, now_ms: u64) -> bool {
        self.0.take(&ip, now_ms)
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
            assert!(l.0.len() <= 64);
        }
    }
}
