//! The version rule. Flying Voice devices ignore a profile whose `DBID_DBASE_VERSION` did not
//! rise since their last resync, so the version is a per-device counter that provd bumps
//! whenever the device's rendered profile changes and never lowers, across restarts too.
//!
//! "Changed" is judged on the rendered body *before* the version is written into it (the
//! version cannot be part of its own input). The server persists every bump as one line of an
//! append-only log (`version_log_line`), synced before the profile carrying the new version
//! is served; on start it replays the log (`parse_version_log`), keeping the highest version
//! per device.

use std::collections::HashMap;

/// What provd remembers per device.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VersionEntry {
    pub version: u64,
    /// [`crate::etag::hash64`] of the rendered body without the version.
    pub body_hash: u64,
}

/// The entry for a body with hash `body_hash`, given the previous one. Returns it and whether
/// it is new (a bump, to be persisted before serving). The first version of a device is
/// `first` (at least 1), so an operator moving devices from a hand-kept counter can start
/// above it.
pub fn next(prev: Option<VersionEntry>, body_hash: u64, first: u64) -> (VersionEntry, bool) {
    match prev {
        Some(p) if p.body_hash == body_hash && p.version >= first => (p, false),
        Some(p) => (
            VersionEntry {
                version: p.version.saturating_add(1).max(first),
                body_hash,
            },
            true,
        ),
        None => (
            VersionEntry {
                version: first.max(1),
                body_hash,
            },
            true,
        ),
    }
}

/// One log line: `001122aabbcc 12 0123456789abcdef\n`.
pub fn version_log_line(mac: &[u8; 6], e: VersionEntry) -> String {
    let m: String = mac.iter().map(|b| format!("{b:02x}")).collect();
    format!("{m} {} {:016x}\n", e.version, e.body_hash)
}

/// Replays a version log. A line that does not parse (a torn last write) is skipped and
/// counted; for each MAC the highest version wins.
pub fn parse_version_log(log: &[u8]) -> (HashMap<[u8; 6], VersionEntry>, usize) {
    let mut out: HashMap<[u8; 6], VersionEntry> = HashMap::new();
    let mut bad = 0;
    for line in log.split(|&b| b == b'\n') {
        if line.is_empty() {
            continue;
        }
        match parse_line(line) {
            Some((mac, e)) => {
                let slot = out.entry(mac).or_insert(e);
                if e.version >= slot.version {
                    *slot = e;
                }
            }
            None => bad += 1,
        }
    }
    (out, bad)
}

fn parse_line(line: &[u8]) -> Option<([u8; 6], VersionEntry)> {
    let text = std::str::from_utf8(line).ok()?;
    let mut it = text.split(' ');
    let (m, v, h) = (it.next()?, it.next()?, it.next()?);
    if it.next().is_some() || m.len() != 12 || h.len() != 16 {
        return None;
    }
    let mut mac = [0u8; 6];
    for (i, b) in mac.iter_mut().enumerate() {
        *b = u8::from_str_radix(m.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some((
        mac,
        VersionEntry {
            version: v.parse().ok()?,
            body_hash: u64::from_str_radix(h, 16).ok()?,
        },
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn bump_rules() {
        let (a, new) = next(None, 10, 1);
        assert_eq!((a.version, new), (1, true));
        let (b, new) = next(Some(a), 10, 1);
        assert_eq!((b.version, new), (1, false));
        let (c, new) = next(Some(b), 11, 1);
        assert_eq!((c.version, new), (2, true));
        // Back to the first body: still a change, still up.
        let (d, _) = next(Some(c), 10, 1);
        assert_eq!(d.version, 3);
        // A raised floor lifts the device even when unchanged.
        let (e, new) = next(Some(d), 10, 2300);
        assert_eq!((e.version, new), (2300, true));
    }

    #[test]
    fn log_replay() {
        let mac = [0, 0x15, 0xcf, 0x12, 0x34, 0x56];
        let mut log = version_log_line(
            &mac,
            VersionEntry {
                version: 3,
                body_hash: 7,
            },
        );
        log.push_str(&version_log_line(
            &mac,
            VersionEntry {
                version: 5,
                body_hash: 9,
            },
        ));
        log.push_str(&version_log_line(
            &mac,
            VersionEntry {
                version: 4,
                body_hash: 1,
            },
        ));
        log.push_str("0015cf12345"); // torn
        let (m, bad) = parse_version_log(log.as_bytes());
        assert_eq!(bad, 1);
        assert_eq!(
            m[&mac],
            VersionEntry {
                version: 5,
                body_hash: 9
            }
        );
    }

    proptest! {
        /// Versions never go down, whatever sequence of bodies.
        #[test]
        fn monotonic(hashes in proptest::collection::vec(0u64..4, 1..50)) {
            let mut prev = None;
            let mut last = 0;
            for h in hashes {
                let (e, _) = next(prev, h, 1);
                prop_assert!(e.version >= last);
                if let Some(p) = prev { prop_assert_eq!(e.version > p.version, p.body_hash != h); }
                last = e.version;
                prev = Some(e);
            }
        }

        #[test]
        fn log_total(b in proptest::collection::vec(any::<u8>(), 0..200)) {
            let _ = parse_version_log(&b);
        }

        #[test]
        fn log_round_trip(mac in any::<[u8; 6]>(), version in any::<u64>(), body_hash in any::<u64>()) {
            let e = VersionEntry { version, body_hash };
            let (m, bad) = parse_version_log(version_log_line(&mac, e).as_bytes());
            prop_assert_eq!(bad, 0);
            prop_assert_eq!(m[&mac], e);
        }
    }
}
