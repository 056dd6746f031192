//! Rate-limited warnings: a flood of bad datagrams must not become a flood of log lines.

use std::time::{Duration, Instant};

/// Lets a few lines through per one-second window and counts the rest; the first line of a
/// later window reports how many were held back.
#[derive(Debug, Clone)]
pub struct RateLimit {
    per_sec: u32,
    window: Instant,
    used: u32,
    suppressed: u64,
}

impl Default for RateLimit {
    /// One line a second: for a warning kept per kind of event.
    fn default() -> Self {
        Self::per_sec(1)
    }
}

impl RateLimit {
    /// At most `n` lines a second (at least one).
    pub fn per_sec(n: u32) -> Self {
        RateLimit {
            per_sec: n.max(1),
            window: Instant::now(),
            used: 0,
            suppressed: 0,
        }
    }

    /// `Some(held_back)` if a line may be logged now: how many were suppressed since the last
    /// line that went through.
    pub fn allow(&mut self) -> Option<u64> {
        if self.window.elapsed() >= Duration::from_secs(1) {
            self.window = Instant::now();
            self.used = 0;
        }
        if self.used < self.per_sec {
            self.used += 1;
            Some(std::mem::take(&mut self.suppressed))
        } else {
            self.suppressed += 1;
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_few_a_second_then_the_count_of_the_rest() {
        let mut r = RateLimit::per_sec(5);
        for _ in 0..5 {
            assert_eq!(r.allow(), Some(0));
        }
        for _ in 0..7 {
            assert_eq!(r.allow(), None);
        }
        r.window -= Duration::from_secs(1);
        assert_eq!(r.allow(), Some(7));
        assert_eq!(r.allow(), Some(0));
        let mut one = RateLimit::default();
        assert_eq!(one.allow(), Some(0));
        assert_eq!(one.allow(), None);
    }
}
