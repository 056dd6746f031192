//! Times as the pages show them: absolute in UTC (`2026-12-07 03:12:45Z`) and relative
//! (`5 min ago`, `in 2 h`).

use std::time::{SystemTime, UNIX_EPOCH};

pub(crate) fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// Unix milliseconds from a value that may be seconds (the API uses both: lease expiries are
/// seconds, events and audit entries milliseconds). Anything before 1973 in ms is taken as s.
pub(crate) fn to_ms(v: i64) -> i64 {
    if v.abs() < 100_000_000_000 {
        v.saturating_mul(1000)
    } else {
        v
    }
}

/// Days since 1970-01-01 to (year, month, day), proleptic Gregorian (Howard Hinnant's
/// `civil_from_days`).
fn civil(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = u32::try_from(doy - (153 * mp + 2) / 5 + 1).unwrap_or(1);
    let m = u32::try_from(if mp < 10 { mp + 3 } else { mp - 9 }).unwrap_or(1);
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// `2026-12-07 03:12:45Z`.
pub(crate) fn absolute(ms: i64) -> String {
    let secs = ms.div_euclid(1000);
    let (y, mo, d) = civil(secs.div_euclid(86_400));
    let t = secs.rem_euclid(86_400);
    format!(
        "{y:04}-{mo:02}-{d:02} {:02}:{:02}:{:02}Z",
        t / 3600,
        t / 60 % 60,
        t % 60
    )
}

/// `just now`, `42 s ago`, `5 min ago`, `3 h ago`, `2 d ago`, or `in ...` for the future.
pub(crate) fn relative(ms: i64, now_ms: i64) -> String {
    let d = now_ms.saturating_sub(ms);
    let a = d.unsigned_abs() / 1000;
    if a < 2 {
        return "just now".into();
    }
    let span = match a {
        0..120 => format!("{a} s"),
        120..7200 => format!("{} min", a / 60),
        7200..172_800 => format!("{} h", a / 3600),
        _ => format!("{} d", a / 86_400),
    };
    if d >= 0 {
        format!("{span} ago")
    } else {
        format!("in {span}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn absolute_times_match_known_dates() {
        assert_eq!(absolute(0), "1970-01-01 00:00:00Z");
        // 2000-02-29 12:34:56 (a leap day of a century leap year).
        assert_eq!(absolute(951_827_696_000), "2000-02-29 12:34:56Z");
        assert_eq!(absolute(1_796_608_365_000), "2026-12-07 01:52:45Z");
        assert_eq!(to_ms(1_796_608_365), 1_796_608_365_000);
        assert_eq!(to_ms(1_796_608_365_000), 1_796_608_365_000);
    }

    #[test]
    fn relative_times_round_down_and_say_which_way() {
        let now = 1_000_000_000_000;
        assert_eq!(relative(now, now), "just now");
        assert_eq!(relative(now - 42_000, now), "42 s ago");
        assert_eq!(relative(now - 300_000, now), "5 min ago");
        assert_eq!(relative(now - 3 * 3_600_000 - 1, now), "3 h ago");
        assert_eq!(relative(now + 3 * 86_400_000, now), "in 3 d");
    }
}
