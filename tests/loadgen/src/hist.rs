//! A fixed-size log-linear latency histogram (HDR-like): values below 128 are exact, larger ones
//! fall in buckets 1/64 of their magnitude wide, so any percentile read back is within 1.6% of the
//! recorded value. Recording is one index computation and an increment; nothing allocates after
//! construction.

/// Sub-buckets per power of two above the exact range (6 bits of mantissa).
const SUB_BITS: u32 = 6;
const SUB: u64 = 1 << SUB_BITS;
/// Values below this are stored exactly, one bucket each.
const EXACT: u64 = 2 * SUB;
/// Enough buckets for every u64.
const BUCKETS: usize = (EXACT + (64 - SUB_BITS as u64) * SUB) as usize;

#[derive(Debug, Clone)]
pub struct Histogram {
    counts: Box<[u64]>,
    total: u64,
    max: u64,
}

impl Default for Histogram {
    fn default() -> Self {
        Self::new()
    }
}

impl Histogram {
    pub fn new() -> Self {
        Histogram {
            counts: vec![0; BUCKETS].into_boxed_slice(),
            total: 0,
            max: 0,
        }
    }

    fn index(v: u64) -> usize {
        if v < EXACT {
            return v as usize;
        }
        let msb = 63 - v.leading_zeros(); // >= SUB_BITS + 1
        let shift = msb - SUB_BITS; // >= 1
        let mantissa = v >> shift; // in [SUB, 2*SUB)
        (EXACT + u64::from(shift - 1) * SUB + (mantissa - SUB)) as usize
    }

    /// The largest value that lands in bucket `i`.
    fn upper(i: usize) -> u64 {
        let i = i as u64;
        if i < EXACT {
            return i;
        }
        let shift = (i - EXACT) / SUB + 1;
        let mantissa = (i - EXACT) % SUB + SUB;
        let low = mantissa << shift;
        low.saturating_add((1u64 << shift) - 1)
    }

    pub fn record(&mut self, v: u64) {
        self.counts[Self::index(v)] += 1;
        self.total += 1;
        self.max = self.max.max(v);
    }

    pub fn count(&self) -> u64 {
        self.total
    }

    pub fn max(&self) -> u64 {
        self.max
    }

    /// The value at quantile `q` (0..=1): the smallest recorded bucket bound such that at least
    /// `q` of all values are at or below it (never above the true maximum). 0 when empty.
    pub fn quantile(&self, q: f64) -> u64 {
        if self.total == 0 {
            return 0;
        }
        let rank = ((q.clamp(0.0, 1.0) * self.total as f64).ceil() as u64).clamp(1, self.total);
        let mut seen = 0u64;
        for (i, &c) in self.counts.iter().enumerate() {
            seen += c;
            if seen >= rank {
                return Self::upper(i).min(self.max);
            }
        }
        self.max
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_values_are_exact() {
        let mut h = Histogram::new();
        for v in 1..=100 {
            h.record(v);
        }
        assert_eq!(h.count(), 100);
        assert_eq!(h.quantile(0.5), 50);
        assert_eq!(h.quantile(0.99), 99);
        assert_eq!(h.quantile(1.0), 100);
        assert_eq!(h.quantile(0.0), 1);
    }

    #[test]
    fn large_values_within_relative_error() {
        let mut h = Histogram::new();
        // 1..=100_000 µs, uniformly: p50 = 50_000, p99 = 99_000.
        for v in 1..=100_000u64 {
            h.record(v);
        }
        for (q, want) in [(0.5, 50_000f64), (0.9, 90_000.0), (0.99, 99_000.0)] {
            let got = h.quantile(q) as f64;
            assert!(
                got >= want && (got - want) / want <= 1.0 / 64.0,
                "q={q} got={got} want={want}"
            );
        }
        assert_eq!(h.quantile(1.0), 100_000);
    }

    #[test]
    fn skewed_data() {
        let mut h = Histogram::new();
        for _ in 0..990 {
            h.record(1_000);
        }
        for _ in 0..10 {
            h.record(500_000);
        }
        let p50 = h.quantile(0.5);
        assert!((1_000..=1_016).contains(&p50), "{p50}");
        let p99 = h.quantile(0.99);
        assert!((1_000..=1_016).contains(&p99), "{p99}");
        let p999 = h.quantile(0.999);
        assert!((500_000..=500_000 + 500_000 / 64).contains(&p999), "{p999}");
        assert_eq!(h.max(), 500_000);
    }

    #[test]
    fn every_value_maps_into_its_bucket() {
        for v in (0..20_000u64).chain([u64::MAX, u64::MAX / 3, 1 << 40, (1 << 40) - 1]) {
            let i = Histogram::index(v);
            assert!(i < BUCKETS);
            assert!(Histogram::upper(i) >= v);
            if i > 0 {
                assert!(Histogram::upper(i - 1) < v, "v={v}");
            }
        }
    }

    #[test]
    fn empty_is_zero() {
        assert_eq!(Histogram::new().quantile(0.5), 0);
    }
}
