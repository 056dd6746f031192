//! A config reload for the DHCP workers: every shard takes the new policy at one instant.
//!
//! Shards allocate from shared atomic pool bitmaps, so two shards on different policies could
//! hand out one address twice. A reload therefore parks every shard between two batches (each
//! notices within one receive timeout; datagrams wait in the sockets' buffers, none is
//! dropped), lets each claim its leases' addresses in the new pools, and only when all have
//! done so lets them all go on the new policy. If a shard does not arrive in time the reload
//! is called off and every shard goes on with the old policy.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use provd_engine::{Shard, Shared};

/// How long a parked shard waits for the go before going on with its old policy.
const PARKED_AT_MOST: Duration = Duration::from_secs(10);

/// Shared by the reloader and every worker of one DHCP role.
#[derive(Debug)]
pub struct PolicySwap {
    /// Bumped to ask the workers to park; read once per batch (one relaxed load).
    epoch: AtomicU64,
    state: Mutex<SwapState>,
    cv: Condvar,
    shards: u32,
}

#[derive(Debug)]
struct SwapState {
    epoch: u64,
    current: Arc<Shared>,
    next: Option<Arc<Shared>>,
    arrived: u32,
    /// For `epoch`: `Some(true)` go, `Some(false)` called off, `None` not decided yet.
    go: Option<bool>,
}

impl PolicySwap {
    pub fn new(current: Arc<Shared>, shards: u32) -> PolicySwap {
        PolicySwap {
            epoch: AtomicU64::new(0),
            state: Mutex::new(SwapState {
                epoch: 0,
                current,
                next: None,
                arrived: 0,
                go: None,
            }),
            cv: Condvar::new(),
            shards,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, SwapState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The policy the workers decide with.
    pub fn current(&self) -> Arc<Shared> {
        Arc::clone(&self.lock().current)
    }

    /// Makes `next` every worker's policy, or says why not (a worker did not park within
    /// `wait`; the workers then keep the old policy). One reload at a time: the caller
    /// serialises (the lock is held only between steps).
    pub fn publish(&self, next: Arc<Shared>, wait: Duration) -> Result<(), String> {
        let mut st = self.lock();
        st.epoch += 1;
        st.next = Some(next);
        st.arrived = 0;
        st.go = None;
        let epoch = st.epoch;
        self.epoch.store(epoch, Ordering::Release);
        let (mut st, timeout) = self
            .cv
            .wait_timeout_while(st, wait, |s| s.arrived < self.shards)
            .unwrap_or_else(|p| p.into_inner());
        let all = st.arrived >= self.shards;
        if all && let Some(next) = st.next.take() {
            st.current = next;
            st.go = Some(true);
        } else {
            st.next = None;
            st.go = Some(false);
        }
        drop(st);
        self.cv.notify_all();
        if all {
            Ok(())
        } else {
            Err(format!(
                "not every DHCP worker paused within {} ms (timed out: {}); the old config stays",
                wait.as_millis(),
                timeout.timed_out()
            ))
        }
    }

    /// Called by a worker between batches: when a reload is asked for, claims `shard`'s
    /// addresses in the new pools, waits for the others, and adopts the new policy (or keeps
    /// the old one if the reload is called off). `seen`: the epoch this worker is at.
    #[inline]
    pub fn check(&self, shard: &mut Shard, seen: &mut u64) {
        if self.epoch.load(Ordering::Acquire) != *seen {
            self.park(shard, seen);
        }
    }

    #[cold]
    fn park(&self, shard: &mut Shard, seen: &mut u64) {
        let mut st = self.lock();
        *seen = st.epoch;
        let epoch = st.epoch;
        if st.go.is_some() {
            // Decided already (this worker came too late, or a reload that was called off).
            if st.go == Some(true) && !Arc::ptr_eq(shard.shared(), &st.current) {
                shard.adopt(Arc::clone(&st.current));
            }
            return;
        }
        if let Some(next) = &st.next {
            shard.claim_into(next);
        }
        st.arrived += 1;
        self.cv.notify_all();
        let (st, _) = self
            .cv
            .wait_timeout_while(st, PARKED_AT_MOST, |s| s.epoch == epoch && s.go.is_none())
            .unwrap_or_else(|p| p.into_inner());
        if st.epoch == epoch && st.go == Some(true) {
            shard.adopt(Arc::clone(&st.current));
        }
    }
}

#[cfg(test)]
mod tests {
    use std::net::Ipv4Addr;
    use std::sync::atomic::AtomicBool;

    use provd_lease::{ClientKey, Lease, LeaseState, LeaseTable};

    use super::*;

    fn shared(pools: &[(&str, &str)]) -> Arc<Shared> {
        let mut toml = String::from(
            "[server]\nlease_dir = \"/nonexistent\"\nserver_id = \"198.18.0.1\"\n\
             [[shared_network]]\nname = \"lan\"\ninterfaces = [\"198.18.0.1\"]\n\
             [[shared_network.subnet]]\nprefix = \"198.18.0.0/24\"\n",
        );
        for (a, b) in pools {
            toml.push_str(&format!(
                "[[shared_network.subnet.pool]]\nstart = \"{a}\"\nend = \"{b}\"\n"
            ));
        }
        Shared::new(provd_config::Policy::from_toml_str(&toml).unwrap()).unwrap()
    }

    /// A shard holding one bound lease on `addr`, claimed in `sh`'s pools.
    fn shard_with(sh: &Arc<Shared>, index: u32, addr: Ipv4Addr) -> Shard {
        let mut t = LeaseTable::new();
        let pool = sh.pool_of(addr).unwrap();
        assert!(sh.pool(pool).unwrap().try_claim(addr));
        let mac = [0, 0x15, 0xcf, 0, 0, index as u8];
        t.insert(
            ClientKey::from_hw(1, &mac),
            Lease {
                addr,
                expires_at: u32::MAX,
                state: LeaseState::Bound,
                chaddr: mac,
                pool,
            },
        );
        Shard::new(Arc::clone(sh), t, index, 2)
    }

    /// Runs each shard on its own thread, calling `check` as a worker does between batches,
    /// until `stop`; returns the shards.
    fn run(
        swap: &Arc<PolicySwap>,
        shards: Vec<Shard>,
        stop: &Arc<AtomicBool>,
    ) -> Vec<std::thread::JoinHandle<Shard>> {
        shards
            .into_iter()
            .map(|mut s| {
                let swap = Arc::clone(swap);
                let stop = Arc::clone(stop);
                std::thread::spawn(move || {
                    let mut seen = 0;
                    while !stop.load(Ordering::Relaxed) {
                        swap.check(&mut s, &mut seen);
                        std::thread::sleep(Duration::from_millis(5));
                    }
                    s
                })
            })
            .collect()
    }

    #[test]
    fn every_shard_takes_the_new_policy_with_its_leases_claimed_in_the_new_pools() {
        let old = shared(&[("198.18.0.10", "198.18.0.19")]);
        let a = Ipv4Addr::new(198, 18, 0, 12);
        let b = Ipv4Addr::new(198, 18, 0, 15);
        let shards = vec![shard_with(&old, 0, a), shard_with(&old, 1, b)];
        let swap = Arc::new(PolicySwap::new(Arc::clone(&old), 2));
        let stop = Arc::new(AtomicBool::new(false));
        let threads = run(&swap, shards, &stop);
        // A new pool before the old one: pool ids shift by one.
        let next = shared(&[
            ("198.18.0.100", "198.18.0.199"),
            ("198.18.0.10", "198.18.0.19"),
        ]);
        swap.publish(Arc::clone(&next), Duration::from_secs(5))
            .unwrap();
        stop.store(true, Ordering::Relaxed);
        for t in threads {
            let s = t.join().unwrap();
            assert!(Arc::ptr_eq(s.shared(), &next), "adopted");
            for (_, l) in s.table().iter() {
                assert_eq!(l.pool, 1, "re-numbered to the new pool ids");
            }
        }
        for addr in [a, b] {
            assert!(
                next.pool(1).unwrap().is_claimed(addr),
                "{addr} stays claimed: no shard can hand it out again"
            );
        }
        assert!(Arc::ptr_eq(&swap.current(), &next));
    }

    #[test]
    fn a_shard_that_does_not_park_calls_the_reload_off() {
        let old = shared(&[("198.18.0.10", "198.18.0.19")]);
        let shards = vec![shard_with(&old, 0, Ipv4Addr::new(198, 18, 0, 12))];
        // Two shards expected, one running: the reload cannot happen.
        let swap = Arc::new(PolicySwap::new(Arc::clone(&old), 2));
        let stop = Arc::new(AtomicBool::new(false));
        let threads = run(&swap, shards, &stop);
        let next = shared(&[("198.18.0.100", "198.18.0.199")]);
        let e = swap.publish(next, Duration::from_millis(200)).unwrap_err();
        assert!(e.contains("old config stays"), "{e}");
        std::thread::sleep(Duration::from_millis(50));
        stop.store(true, Ordering::Relaxed);
        for t in threads {
            assert!(
                Arc::ptr_eq(t.join().unwrap().shared(), &old),
                "kept the old policy"
            );
        }
        assert!(Arc::ptr_eq(&swap.current(), &old));
    }
}
