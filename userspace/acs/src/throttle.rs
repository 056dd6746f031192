//! Failed-authentication throttling for the CWMP listeners: per source address and per
//! username, with exponential backoff. Sans-IO: the time (milliseconds) is a parameter.
//!
//! A *failure* is a password guess that was evaluated and wrong (a wrong password, or a
//! username nobody has); a missing header or an expired nonce is part of the ordinary
//! challenge dance and costs nothing. After `free` failures a key is locked for `base`, and
//! each failure after a lock ends doubles it, up to `max`. While a key is locked every
//! attempt is refused *before* the password is looked at: a right password in the lockout is
//! refused too, so a brute force learns nothing from the attempts it makes then. Failures are
//! forgotten `forget` after the last one.
//!
//! Per username, only usernames that exist are tracked (so the table is bounded by the
//! credentials, and random usernames cost the attacker his source's budget only). Many CPEs
//! share one username, so a lockout of the username would let an attacker with no password
//! lock every device out: sources that have logged in as that username before (the last
//! [`Throttle::TRUSTED_MAX`] of them) are exempt from the username's lockout, never from
//! their own. A brute force spread over many sources is still held to the username's rate;
//! devices already here keep working.
//!
//! Every table is bounded; a full source table tracks no new source (counted by the shell:
//! [`Throttle::check`]'s answer says why) rather than evicting a locked one.

use std::collections::HashMap;
use std::net::IpAddr;

/// How one kind of key backs off.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    /// Failures allowed before the first lockout.
    pub free: u32,
    /// The first lockout, in milliseconds; each later one doubles.
    pub base_ms: u64,
    /// The longest lockout.
    pub max_ms: u64,
    /// A key's failures are forgotten this long after its last one.
    pub forget_ms: u64,
}

impl Backoff {
    /// Per source: 5 guesses, then 1 s, 2 s, 4 s .. 5 min.
    pub const SOURCE: Backoff = Backoff {
        free: 5,
        base_ms: 1_000,
        max_ms: 300_000,
        forget_ms: 900_000,
    };
    /// Per username: 20 guesses (from anywhere), then 1 s, 2 s .. 1 min.
    pub const USERNAME: Backoff = Backoff {
        free: 20,
        base_ms: 1_000,
        max_ms: 60_000,
        forget_ms: 900_000,
    };

    /// The lockout after `failures` failures (0: none).
    fn lockout(&self, failures: u32) -> u64 {
        match failures.checked_sub(self.free) {
            None | Some(0) => 0,
            Some(over) => self
                .base_ms
                .saturating_mul(1u64 << (over - 1).min(40))
                .min(self.max_ms),
        }
    }
}

#[derive(Debug, Clone, Copy, Default)]
struct Entry {
    failures: u32,
    /// Locked until this instant (ms).
    until: u64,
    last: u64,
}

impl Entry {
    fn fail(&mut self, now: u64, b: &Backoff) {
        self.failures = self.failures.saturating_add(1);
        self.last = now;
        let lock = b.lockout(self.failures);
        if lock > 0 {
            self.until = now.saturating_add(lock);
        }
    }

    fn locked(&self, now: u64) -> Option<u64> {
        (now < self.until).then(|| self.until - now)
    }
}

/// Why an attempt is refused without a look at its password.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Locked {
    /// Its source address failed too often; retry after this many ms.
    Source { retry_ms: u64 },
    /// Its username failed too often (from anywhere); retry after this many ms.
    Username { retry_ms: u64 },
}

/// The throttle's state.
#[derive(Debug)]
pub struct Throttle {
    source: Backoff,
    username: Backoff,
    sources: HashMap<IpAddr, Entry, foldhash::fast::RandomState>,
    /// Only usernames the credentials know.
    users: HashMap<String, Entry, foldhash::fast::RandomState>,
    /// Sources that logged in before, and when last (ms).
    trusted: HashMap<IpAddr, u64, foldhash::fast::RandomState>,
    max_sources: usize,
    /// Failures not tracked because the source table was full.
    pub untracked: u64,
}

impl Default for Throttle {
    fn default() -> Self {
        Throttle::new(Backoff::SOURCE, Backoff::USERNAME, Throttle::SOURCES_MAX)
    }
}

impl Throttle {
    /// Sources with failures tracked at most.
    pub const SOURCES_MAX: usize = 65_536;
    /// Trusted sources (logged in before) kept at most.
    pub const TRUSTED_MAX: usize = 262_144;

    pub fn new(source: Backoff, username: Backoff, max_sources: usize) -> Self {
        Throttle {
            source,
            username,
            sources: HashMap::default(),
            users: HashMap::default(),
            trusted: HashMap::default(),
            max_sources,
            untracked: 0,
        }
    }

    /// May an attempt from `src` as `user` (the username its header claims, if any) be
    /// checked at `now`?
    pub fn check(&self, now: u64, src: IpAddr, user: Option<&str>) -> Result<(), Locked> {
        if let Some(retry_ms) = self.sources.get(&src).and_then(|e| e.locked(now)) {
            return Err(Locked::Source { retry_ms });
        }
        if let Some(u) = user
            && let Some(retry_ms) = self.users.get(u).and_then(|e| e.locked(now))
            && !self.trusted.contains_key(&src)
        {
            return Err(Locked::Username { retry_ms });
        }
        Ok(())
    }

    /// A guess from `src` was wrong; `known_user`: the username it claimed, when that
    /// username exists.
    pub fn failed(&mut self, now: u64, src: IpAddr, known_user: Option<&str>) {
        if let Some(e) = self.sources.get_mut(&src) {
            e.fail(now, &self.source);
        } else if self.sources.len() < self.max_sources {
            self.sources.entry(src).or_default().fail(now, &self.source);
        } else {
            self.untracked += 1;
        }
        if let Some(u) = known_user {
            if let Some(e) = self.users.get_mut(u) {
                e.fail(now, &self.username);
            } else {
                self.users
                    .entry(u.to_owned())
                    .or_default()
                    .fail(now, &self.username);
            }
        }
    }

    /// `src` logged in: it is exempt from its username's lockouts from now on.
    pub fn succeeded(&mut self, now: u64, src: IpAddr) {
        if self.trusted.len() >= Self::TRUSTED_MAX && !self.trusted.contains_key(&src) {
            // Forget the older half rather than refuse to learn.
            let mut ages: Vec<u64> = self.trusted.values().copied().collect();
            let mid = ages.len() / 2;
            let (_, cut, _) = ages.select_nth_unstable(mid);
            let cut = *cut;
            self.trusted.retain(|_, t| *t > cut);
        }
        self.trusted.insert(src, now);
    }

    /// Forgets keys whose last failure is older than their `forget` and whose lock is over.
    pub fn sweep(&mut self, now: u64) {
        let (s, u) = (self.source.forget_ms, self.username.forget_ms);
        self.sources
            .retain(|_, e| now < e.until || now < e.last.saturating_add(s));
        self.users
            .retain(|_, e| now < e.until || now < e.last.saturating_add(u));
    }

    /// Sources and usernames with failures on record.
    pub fn tracked(&self) -> (usize, usize) {
        (self.sources.len(), self.users.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(198, 18, 0, 2));
    const B: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(198, 18, 0, 3));

    #[test]
    fn backoff_doubles_to_its_cap() {
        let b = Backoff::SOURCE;
        let locks: Vec<u64> = (0..=16).map(|n| b.lockout(n)).collect();
        assert_eq!(&locks[..9], &[0, 0, 0, 0, 0, 0, 1_000, 2_000, 4_000]);
        assert_eq!(locks[16], 300_000);
        assert_eq!(b.lockout(u32::MAX), 300_000);
    }

    #[test]
    fn a_source_is_locked_and_a_right_password_waits_too() {
        let mut t = Throttle::default();
        for i in 0..5 {
            assert_eq!(t.check(i, A, Some("cpe")), Ok(()));
            t.failed(i, A, Some("cpe"));
        }
        // The fifth failure was free; the sixth locks for 1 s.
        assert_eq!(t.check(10, A, Some("cpe")), Ok(()));
        t.failed(10, A, Some("cpe"));
        assert_eq!(
            t.check(11, A, Some("cpe")),
            Err(Locked::Source { retry_ms: 999 })
        );
        // Whatever the attempt carries: nothing is checked until the lock ends.
        assert!(t.check(500, A, None).is_err());
        assert_eq!(t.check(1010, A, Some("cpe")), Ok(()));
        t.failed(1010, A, Some("cpe"));
        assert_eq!(
            t.check(1011, A, None),
            Err(Locked::Source { retry_ms: 1999 })
        );
        // Another source is not this one.
        assert_eq!(t.check(1011, B, Some("other")), Ok(()));
    }

    /// A brute force at full speed for 10 s gets a handful of guesses checked.
    #[test]
    fn guesses_checked_grow_with_the_log_of_time() {
        let mut t = Throttle::default();
        let mut checked = 0;
        for now in 0..10_000u64 {
            if t.check(now, A, Some("cpe")).is_ok() {
                checked += 1;
                t.failed(now, A, Some("cpe"));
            }
        }
        // 5 free, then at 0 s, 1 s, 3 s, 7 s after the first lock: 9 in all.
        assert!(checked <= 10, "{checked}");
    }

    #[test]
    fn a_username_is_locked_for_new_sources_but_not_for_trusted_ones() {
        let mut t = Throttle::default();
        t.succeeded(0, B);
        // 21 sources, one guess each: no source is locked, the username is.
        for i in 0..21u8 {
            let src = IpAddr::V4(std::net::Ipv4Addr::new(198, 19, 0, i));
            t.failed(100, src, Some("cpe"));
        }
        let fresh = IpAddr::V4(std::net::Ipv4Addr::new(198, 19, 1, 1));
        assert_eq!(
            t.check(101, fresh, Some("cpe")),
            Err(Locked::Username { retry_ms: 999 })
        );
        assert_eq!(t.check(101, fresh, Some("someone-else")), Ok(()));
        assert_eq!(t.check(101, B, Some("cpe")), Ok(()));
    }

    #[test]
    fn tables_are_bounded_and_swept() {
        let mut t = Throttle::new(Backoff::SOURCE, Backoff::USERNAME, 4);
        for i in 0..10u8 {
            let src = IpAddr::V4(std::net::Ipv4Addr::new(198, 19, 0, i));
            t.failed(0, src, None);
        }
        assert_eq!(t.tracked(), (4, 0));
        assert_eq!(t.untracked, 6);
        t.sweep(Backoff::SOURCE.forget_ms + 1);
        assert_eq!(t.tracked(), (0, 0));
    }
}
