//! A role's set of worker threads: spawned by name, watched, joined once with the first error.

use std::io;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::liveness::{self, Liveness};

/// How many workers a `workers = N` setting means: 0 is one per core.
pub fn workers_for(n: usize) -> usize {
    match n {
        0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
        n => n,
    }
}

/// Threads that run until the role's shutdown flag is set, then return.
#[derive(Debug)]
pub struct WorkerSet {
    role: &'static str,
    threads: Vec<JoinHandle<io::Result<()>>>,
}

impl WorkerSet {
    /// An empty set for `role` (the name its errors carry).
    pub fn new(role: &'static str) -> WorkerSet {
        WorkerSet {
            role,
            threads: Vec::new(),
        }
    }

    /// Starts one thread named `name` running `f`, with a heartbeat of that name in
    /// [`Liveness::global`]: `f`'s loop calls [`crate::liveness::beat`] once per turn.
    pub fn spawn(
        &mut self,
        name: String,
        f: impl FnOnce() -> io::Result<()> + Send + 'static,
    ) -> io::Result<()> {
        let hb = Liveness::global().register(name.clone(), Instant::now());
        self.threads
            .push(std::thread::Builder::new().name(name).spawn(move || {
                liveness::set_current(hb);
                let r = f();
                liveness::clear_current();
                r
            })?);
        Ok(())
    }

    pub fn len(&self) -> usize {
        self.threads.len()
    }

    pub fn is_empty(&self) -> bool {
        self.threads.is_empty()
    }

    /// Whether a thread has ended (before shutdown that means it failed).
    pub fn any_finished(&self) -> bool {
        self.threads.iter().any(|t| t.is_finished())
    }

    /// Waits for every thread (after the shutdown flag is set); the first error wins, a panic
    /// is an error naming the role.
    pub fn join(self) -> io::Result<()> {
        let role = self.role;
        let mut result = Ok(());
        for t in self.threads {
            let r = t
                .join()
                .unwrap_or_else(|_| Err(io::Error::other(format!("{role} worker panicked"))));
            if result.is_ok() {
                result = r;
            }
        }
        result
    }

    /// [`join`](Self::join), but gives up after `grace`: threads still running are left to
    /// end with the process, and that is an error.
    pub fn join_within(self, grace: Duration) -> io::Result<()> {
        let deadline = Instant::now() + grace;
        while self.threads.iter().any(|t| !t.is_finished()) {
            if Instant::now() >= deadline {
                let stuck = self.threads.iter().filter(|t| !t.is_finished()).count();
                return Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!(
                        "{} of {} {} workers did not stop within {grace:?}",
                        stuck,
                        self.threads.len(),
                        self.role
                    ),
                ));
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        self.join()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};

    #[test]
    fn zero_workers_is_one_per_core() {
        assert!(workers_for(0) >= 1);
        assert_eq!(workers_for(3), 3);
    }

    #[test]
    fn join_reports_the_first_error_and_panics_by_role() {
        let mut set = WorkerSet::new("tftp");
        set.spawn("ok".into(), || Ok(())).unwrap();
        set.spawn("bad".into(), || Err(io::Error::other("bind lost")))
            .unwrap();
        assert_eq!(set.join().unwrap_err().to_string(), "bind lost");

        let mut set = WorkerSet::new("syslog");
        set.spawn("panics".into(), || panic!("boom")).unwrap();
        assert_eq!(
            set.join().unwrap_err().to_string(),
            "syslog worker panicked"
        );
    }

    #[test]
    fn join_within_gives_up_on_a_thread_that_does_not_stop() {
        let stop = Arc::new(AtomicBool::new(false));
        let mut set = WorkerSet::new("time");
        let s = Arc::clone(&stop);
        set.spawn("stuck".into(), move || {
            while !s.load(Ordering::Relaxed) {
                std::thread::sleep(Duration::from_millis(1));
            }
            Ok(())
        })
        .unwrap();
        assert!(!set.any_finished());
        let e = set.join_within(Duration::from_millis(50)).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::TimedOut);
        stop.store(true, Ordering::Relaxed);
    }
}
