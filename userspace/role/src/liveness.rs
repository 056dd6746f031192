//! Liveness: a heartbeat per worker thread (and one for the control plane's runtime), read by
//! the service manager's watchdog. A thread that stops beating, stuck in a syscall, a lock or
//! a loop, makes [`Liveness::stale`] name it, and `serve` then stops pinging systemd, which
//! restarts provd after `WatchdogSec=`.
//!
//! A beat is one `Instant::now()` (vDSO) and one relaxed atomic store: cheap enough for every
//! turn of a worker's loop. Threads spawned through [`crate::WorkerSet`] get a heartbeat of
//! their own, which [`beat`] (a free function, so a loop needs no handle threaded through)
//! finds in a thread-local. A thread that waits for work on purpose (a channel, with no
//! timeout) marks itself [`Heartbeat::idle`]: waiting is not being stuck.

use std::cell::RefCell;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, Weak};
use std::time::{Duration, Instant};

/// The value of a heartbeat that waits for work on purpose.
const IDLE: u64 = u64::MAX;

/// Every registered heartbeat of the process (or of a test).
#[derive(Debug)]
pub struct Liveness {
    epoch: Instant,
    beats: Mutex<Vec<Weak<Entry>>>,
}

#[derive(Debug)]
struct Entry {
    name: String,
    /// Milliseconds since the registry's epoch at the last beat, or [`IDLE`].
    last_ms: AtomicU64,
}

/// One thread's (or task's) heartbeat. Dropping it unregisters it.
#[derive(Debug, Clone)]
pub struct Heartbeat {
    entry: Arc<Entry>,
    epoch: Instant,
}

/// A heartbeat that has not beaten for too long.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stale {
    pub name: String,
    pub silent_for: Duration,
}

impl std::fmt::Display for Stale {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} silent for {:.1} s",
            self.name,
            self.silent_for.as_secs_f64()
        )
    }
}

impl Default for Liveness {
    fn default() -> Self {
        Liveness::new(Instant::now())
    }
}

impl Liveness {
    /// An empty registry whose clock starts at `epoch` (no beat can be older).
    pub fn new(epoch: Instant) -> Liveness {
        Liveness {
            epoch,
            beats: Mutex::new(Vec::new()),
        }
    }

    /// The process's registry: the one [`crate::WorkerSet`] threads and the control plane
    /// register in, and `serve`'s watchdog reads.
    pub fn global() -> &'static Liveness {
        static GLOBAL: OnceLock<Liveness> = OnceLock::new();
        GLOBAL.get_or_init(Liveness::default)
    }

    /// Registers a heartbeat named `name`, fresh as of `now`.
    pub fn register(&self, name: impl Into<String>, now: Instant) -> Heartbeat {
        let entry = Arc::new(Entry {
            name: name.into(),
            last_ms: AtomicU64::new(0),
        });
        let hb = Heartbeat {
            entry: Arc::clone(&entry),
            epoch: self.epoch,
        };
        hb.beat_at(now);
        let mut beats = self.beats.lock().unwrap_or_else(|e| e.into_inner());
        beats.retain(|w| w.strong_count() > 0);
        beats.push(Arc::downgrade(&entry));
        hb
    }

    /// How many heartbeats are registered now.
    pub fn len(&self) -> usize {
        let beats = self.beats.lock().unwrap_or_else(|e| e.into_inner());
        beats.iter().filter(|w| w.strong_count() > 0).count()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Every registered heartbeat that is not idle and last beat more than `max_age` before
    /// `now`, oldest first.
    pub fn stale(&self, now: Instant, max_age: Duration) -> Vec<Stale> {
        let now_ms = ms_since(self.epoch, now);
        let beats = self.beats.lock().unwrap_or_else(|e| e.into_inner());
        let mut out: Vec<Stale> = beats
            .iter()
            .filter_map(Weak::upgrade)
            .filter_map(|e| {
                let last = e.last_ms.load(Ordering::Relaxed);
                if last == IDLE {
                    return None;
                }
                let silent = Duration::from_millis(now_ms.saturating_sub(last));
                (silent > max_age).then(|| Stale {
                    name: e.name.clone(),
                    silent_for: silent,
                })
            })
            .collect();
        out.sort_by_key(|s| std::cmp::Reverse(s.silent_for));
        out
    }
}

fn ms_since(epoch: Instant, now: Instant) -> u64 {
    u64::try_from(now.saturating_duration_since(epoch).as_millis()).unwrap_or(IDLE - 1)
}

impl Heartbeat {
    /// Alive now.
    pub fn beat(&self) {
        self.beat_at(Instant::now());
    }

    /// Alive at `now`.
    pub fn beat_at(&self, now: Instant) {
        self.entry
            .last_ms
            .store(ms_since(self.epoch, now), Ordering::Relaxed);
    }

    /// Waiting for work on purpose (a blocking receive): not stale until the next beat.
    pub fn idle(&self) {
        self.entry.last_ms.store(IDLE, Ordering::Relaxed);
    }

    pub fn name(&self) -> &str {
        &self.entry.name
    }
}

thread_local! {
    static CURRENT: RefCell<Option<Heartbeat>> = const { RefCell::new(None) };
}

/// Gives the calling thread `hb` as the heartbeat [`beat`] and [`idle`] use.
pub fn set_current(hb: Heartbeat) {
    CURRENT.with(|c| *c.borrow_mut() = Some(hb));
}

/// Takes the calling thread's heartbeat away (it unregisters when the last clone drops).
pub fn clear_current() {
    CURRENT.with(|c| c.borrow_mut().take());
}

/// The calling thread is alive: call once per turn of a worker loop. A no-op on a thread with
/// no heartbeat.
pub fn beat() {
    CURRENT.with(|c| {
        if let Some(hb) = &*c.borrow() {
            hb.beat();
        }
    });
}

/// The calling thread is about to wait for work with no timeout (see [`Heartbeat::idle`]).
pub fn idle() {
    CURRENT.with(|c| {
        if let Some(hb) = &*c.borrow() {
            hb.idle();
        }
    });
}

/// The service manager's watchdog, decided from the heartbeats: a ping every `interval / 2`
/// while every heartbeat is fresher than `interval / 2`, none while any is stale. sans-IO: the
/// caller sends what [`Watchdog::poll`] says.
#[derive(Debug)]
pub struct Watchdog {
    interval: Duration,
    last_ping: Option<Instant>,
    stuck: Vec<String>,
}

/// What the watchdog wants sent now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WatchdogAction {
    Nothing,
    /// `WATCHDOG=1`.
    Ping,
    /// Heartbeats went stale: no ping, and say which (once per change).
    Stuck(Vec<Stale>),
    /// Every heartbeat is fresh again (after [`WatchdogAction::Stuck`]): ping.
    Recovered,
}

impl Watchdog {
    /// The manager's timeout (`WATCHDOG_USEC`).
    pub fn new(interval: Duration) -> Watchdog {
        Watchdog {
            interval,
            last_ping: None,
            stuck: Vec::new(),
        }
    }

    /// How old a heartbeat may be and still count as alive, and how often pings go out.
    pub fn max_age(&self) -> Duration {
        self.interval / 2
    }

    /// Decides at `now` from `liveness`; call often (every 100 ms).
    pub fn poll(&mut self, liveness: &Liveness, now: Instant) -> WatchdogAction {
        let stale = liveness.stale(now, self.max_age());
        if !stale.is_empty() {
            let names: Vec<String> = stale.iter().map(|s| s.name.clone()).collect();
            if names != self.stuck {
                self.stuck = names;
                return WatchdogAction::Stuck(stale);
            }
            return WatchdogAction::Nothing;
        }
        let recovered = !self.stuck.is_empty();
        self.stuck.clear();
        let due = self
            .last_ping
            .is_none_or(|t| now.saturating_duration_since(t) >= self.max_age());
        if recovered || due {
            self.last_ping = Some(now);
            return if recovered {
                WatchdogAction::Recovered
            } else {
                WatchdogAction::Ping
            };
        }
        WatchdogAction::Nothing
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: Duration = Duration::from_secs(1);

    #[test]
    fn a_thread_that_stops_beating_is_named_and_an_idle_one_is_not() {
        let t0 = Instant::now();
        let live = Liveness::new(t0);
        let a = live.register("provd-shard-0", t0);
        let b = live.register("provd-shard-1", t0);
        let c = live.register("provd-sync-0", t0);
        c.idle();
        a.beat_at(t0 + 3 * S);
        let stale = live.stale(t0 + 3 * S, S);
        assert_eq!(stale.len(), 1);
        assert_eq!(stale[0].name, "provd-shard-1");
        assert_eq!(stale[0].silent_for, 3 * S);
        assert_eq!(stale[0].to_string(), "provd-shard-1 silent for 3.0 s");
        b.beat_at(t0 + 3 * S);
        assert!(live.stale(t0 + 3 * S, S).is_empty());
        drop(b);
        assert_eq!(live.len(), 2);
        // An unregistered heartbeat is no longer watched.
        assert!(live.stale(t0 + 10 * S, 20 * S).is_empty());
        drop((a, c));
        assert!(live.is_empty());
    }

    #[test]
    fn pings_every_half_interval_while_all_are_fresh_and_stop_while_one_is_stuck() {
        let t0 = Instant::now();
        let live = Liveness::new(t0);
        let shard0 = live.register("provd-shard-0", t0);
        let shard1 = live.register("provd-shard-1", t0);
        let mut wd = Watchdog::new(2 * S);
        let step = Duration::from_millis(100);
        let mut pings = Vec::new();
        let mut stuck_at = None;
        let mut recovered_at = None;
        // 0-3 s both beat; 3-6 s shard 1 is stuck; from 6 s it beats again.
        let mut now = t0;
        while now < t0 + 8 * S {
            shard0.beat_at(now);
            let stuck = now >= t0 + 3 * S && now < t0 + 6 * S;
            if !stuck {
                shard1.beat_at(now);
            }
            match wd.poll(&live, now) {
                WatchdogAction::Ping => pings.push(now - t0),
                WatchdogAction::Stuck(s) => {
                    assert_eq!(s[0].name, "provd-shard-1");
                    assert!(stuck_at.replace(now - t0).is_none(), "said twice");
                }
                WatchdogAction::Recovered => recovered_at = Some(now - t0),
                WatchdogAction::Nothing => {}
            }
            now += step;
        }
        // Its last beat was at 2.9 s; stale once silent for more than interval / 2 = 1 s: at
        // 4.0 s (1.1 s).
        let stuck_at = stuck_at.expect("the stuck shard was noticed");
        assert_eq!(stuck_at, 4 * S);
        assert_eq!(recovered_at, Some(6 * S));
        // Pings at 0, 1, 2, 3 s, none from 4 s until the recovery at 6 s (which pings, with
        // its STATUS), then 7 s.
        let secs: Vec<u64> = pings.iter().map(|d| d.as_millis() as u64).collect();
        assert_eq!(secs, [0, 1000, 2000, 3000, 7000]);
        // The manager (WatchdogSec = 2 s) would have fired at 5 s: 2 s without a ping after 3 s.
    }

    #[test]
    fn the_thread_local_heartbeat_beats_and_idles() {
        let live = Liveness::default();
        let hb = live.register("worker", Instant::now());
        std::thread::scope(|s| {
            s.spawn(|| {
                set_current(hb.clone());
                idle();
                assert!(
                    live.stale(Instant::now() + 10 * S, S).is_empty(),
                    "idle is never stale"
                );
                beat();
                assert_eq!(live.stale(Instant::now() + 10 * S, S).len(), 1);
                clear_current();
            });
        });
        beat(); // no heartbeat on this thread: nothing happens
        drop(hb);
        assert!(live.is_empty());
    }
}
