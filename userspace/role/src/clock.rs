//! The wall clock, read in one place. Protocol cores never read it: shells read it here and
//! pass `now` in.

use std::time::{SystemTime, UNIX_EPOCH};

fn since_epoch() -> std::time::Duration {
    // A clock set before 1970 reads as the epoch rather than panicking.
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
}

/// Unix seconds now.
pub fn unix_secs() -> u64 {
    since_epoch().as_secs()
}

/// Unix seconds now as the lease table keeps them (u32, good until 2106).
pub fn unix_secs_u32() -> u32 {
    u32::try_from(unix_secs()).unwrap_or(u32::MAX)
}

/// Unix milliseconds now.
pub fn unix_millis() -> u64 {
    u64::try_from(since_epoch().as_millis()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_three_readings_agree() {
        let (s, s32, ms) = (unix_secs(), unix_secs_u32(), unix_millis());
        // 2026-01-01 or later, and the three taken within a second of each other.
        assert!(s >= 1_767_225_600, "{s}");
        assert!(u64::from(s32).abs_diff(s) <= 1);
        assert!((ms / 1000).abs_diff(s) <= 1);
    }
}
