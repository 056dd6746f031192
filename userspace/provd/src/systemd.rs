//! The service manager's side of `provd serve`: `sd_notify(3)` by hand (one datagram per
//! message to `$NOTIFY_SOCKET`, a path or an abstract `@name`), and the watchdog fed from the
//! workers' heartbeats ([`provd_role::liveness`]). Everything here is a no-op when provd is not
//! started by systemd (no `NOTIFY_SOCKET`), or, for the watchdog, when `WatchdogSec=` is not set
//! (no `WATCHDOG_USEC`) or names another process (`WATCHDOG_PID`).

use std::os::linux::net::SocketAddrExt;
use std::os::unix::net::{SocketAddr, UnixDatagram};
use std::time::{Duration, Instant};

use provd_role::Liveness;
use provd_role::liveness::{Watchdog, WatchdogAction};

/// A connection to the service manager's notification socket.
#[derive(Debug)]
pub struct Notifier {
    socket: Option<(UnixDatagram, SocketAddr)>,
    watchdog: Option<Watchdog>,
}

impl Notifier {
    /// From the environment systemd sets (`NOTIFY_SOCKET`, `WATCHDOG_USEC`, `WATCHDOG_PID`).
    pub fn from_env() -> Notifier {
        let var = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
        let socket = var("NOTIFY_SOCKET").and_then(|path| match connect(&path) {
            Ok(s) => Some(s),
            Err(e) => {
                tracing::warn!(socket = path, error = %e, "NOTIFY_SOCKET unusable; not notifying");
                None
            }
        });
        let watchdog = socket.as_ref().and_then(|_| {
            watchdog_interval(
                var("WATCHDOG_USEC").as_deref(),
                var("WATCHDOG_PID").as_deref(),
                std::process::id(),
            )
        });
        if let Some(w) = &watchdog {
            tracing::info!(
                interval_ms = u64::try_from(w.max_age().as_millis() * 2).unwrap_or(u64::MAX),
                "watchdog on: pinging while every worker's heartbeat is fresh"
            );
        }
        Notifier { socket, watchdog }
    }

    /// Sends `state` (`READY=1\nSTATUS=...`); failures are logged, never fatal.
    pub fn notify(&self, state: &str) {
        if let Some((sock, addr)) = &self.socket
            && let Err(e) = sock.send_to_addr(state.as_bytes(), addr)
        {
            tracing::warn!(error = %e, "sd_notify failed");
        }
    }

    /// Pings the watchdog if every heartbeat is fresh and a ping is due; call every 100 ms.
    pub fn tick(&mut self, liveness: &Liveness, status: &str) {
        let Some(wd) = &mut self.watchdog else {
            return;
        };
        match wd.poll(liveness, Instant::now()) {
            WatchdogAction::Nothing => {}
            WatchdogAction::Ping => self.notify("WATCHDOG=1"),
            WatchdogAction::Recovered => {
                tracing::warn!("every worker beats again; watchdog pings resume");
                self.notify(&format!("WATCHDOG=1\nSTATUS={status}"));
            }
            WatchdogAction::Stuck(stale) => {
                let who: Vec<String> = stale.iter().map(ToString::to_string).collect();
                let who = who.join(", ");
                tracing::error!(stuck = %who, "a worker stopped beating; watchdog pings withheld");
                self.notify(&format!("STATUS=stuck: {who}"));
            }
        }
    }
}

/// Connects to `path`: a filesystem path, or `@name` for an abstract socket.
fn connect(path: &str) -> std::io::Result<(UnixDatagram, SocketAddr)> {
    let addr = match path.strip_prefix('@') {
        Some(name) => SocketAddr::from_abstract_name(name.as_bytes())?,
        None => SocketAddr::from_pathname(path)?,
    };
    Ok((UnixDatagram::unbound()?, addr))
}

/// The watchdog's timeout if it is meant for this process (`WATCHDOG_PID` unset or ours).
fn watchdog_interval(usec: Option<&str>, pid: Option<&str>, me: u32) -> Option<Watchdog> {
    let usec: u64 = usec?.parse().ok().filter(|&u| u > 0)?;
    if let Some(pid) = pid
        && pid.parse::<u32>().ok() != Some(me)
    {
        return None;
    }
    Some(Watchdog::new(Duration::from_micros(usec)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::Ordering;

    #[test]
    fn the_watchdog_is_ours_only_with_a_timeout_and_our_pid() {
        assert!(watchdog_interval(None, None, 7).is_none());
        assert!(watchdog_interval(Some("0"), None, 7).is_none());
        assert!(watchdog_interval(Some("x"), None, 7).is_none());
        assert!(watchdog_interval(Some("2000000"), Some("8"), 7).is_none());
        let w = watchdog_interval(Some("2000000"), Some("7"), 7).unwrap();
        assert_eq!(w.max_age(), Duration::from_secs(1));
        assert!(watchdog_interval(Some("2000000"), None, 7).is_some());
    }

    #[test]
    fn messages_reach_a_path_socket_and_an_abstract_one() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("notify");
        let rx = UnixDatagram::bind(&path).unwrap();
        let n = Notifier {
            socket: Some(connect(path.to_str().unwrap()).unwrap()),
            watchdog: None,
        };
        n.notify("READY=1\nSTATUS=serving");
        let mut buf = [0u8; 64];
        let len = rx.recv(&mut buf).unwrap();
        assert_eq!(&buf[..len], b"READY=1\nSTATUS=serving");

        let name = format!("provd-test-notify-{}", std::process::id());
        let rx = UnixDatagram::bind_addr(&SocketAddr::from_abstract_name(name.as_bytes()).unwrap())
            .unwrap();
        let n = Notifier {
            socket: Some(connect(&format!("@{name}")).unwrap()),
            watchdog: None,
        };
        n.notify("STOPPING=1");
        let len = rx.recv(&mut buf).unwrap();
        assert_eq!(&buf[..len], b"STOPPING=1");

        // Without NOTIFY_SOCKET nothing is sent and nothing fails.
        let quiet = Notifier {
            socket: None,
            watchdog: None,
        };
        quiet.notify("READY=1");
    }

    /// Every datagram that arrived on `rx` so far, with the time it was read.
    fn drain(rx: &UnixDatagram, t0: Instant, into: &mut Vec<(Duration, String)>) {
        let mut buf = [0u8; 512];
        while let Ok(len) = rx.recv(&mut buf) {
            into.push((
                t0.elapsed(),
                String::from_utf8_lossy(&buf[..len]).into_owned(),
            ));
        }
    }

    #[test]
    fn a_worker_that_stalls_stops_the_pings_on_a_real_socket_and_its_return_resumes_them() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("notify");
        let rx = UnixDatagram::bind(&path).unwrap();
        rx.set_nonblocking(true).unwrap();
        // WatchdogSec = 400 ms: pings every 200 ms, a heartbeat older than 200 ms is stale.
        let mut n = Notifier {
            socket: Some(connect(path.to_str().unwrap()).unwrap()),
            watchdog: watchdog_interval(Some("400000"), None, 1),
        };
        let live = Liveness::default();
        let idle_one = live.register("provd-sync-0", Instant::now());
        idle_one.idle();
        let hb = live.register("provd-shard-0", Instant::now());
        let stall = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let t0 = Instant::now();
        let mut got = Vec::new();
        std::thread::scope(|s| {
            // A worker: beats every 10 ms, except while `stall` is set (stuck in a syscall).
            let (stall2, done2) = (stall.clone(), done.clone());
            s.spawn(move || {
                provd_role::liveness::set_current(hb);
                while !done2.load(Ordering::Relaxed) {
                    if !stall2.load(Ordering::Relaxed) {
                        provd_role::liveness::beat();
                    }
                    std::thread::sleep(Duration::from_millis(10));
                }
                provd_role::liveness::clear_current();
            });
            // 0-1 s healthy, 1-2.5 s stalled, 2.5-3.5 s healthy again; `serve` ticks every 100 ms,
            // the test every 20 ms.
            while t0.elapsed() < Duration::from_millis(3500) {
                let t = t0.elapsed();
                stall.store(
                    t >= Duration::from_millis(1000) && t < Duration::from_millis(2500),
                    Ordering::Relaxed,
                );
                n.tick(&live, "serving: dhcp path=sockets");
                drain(&rx, t0, &mut got);
                std::thread::sleep(Duration::from_millis(20));
            }
            done.store(true, Ordering::Relaxed);
        });
        drain(&rx, t0, &mut got);
        let ms = |d: Duration| u64::try_from(d.as_millis()).unwrap();
        let pings: Vec<u64> = got
            .iter()
            .filter(|(_, m)| m.starts_with("WATCHDOG=1"))
            .map(|(t, _)| ms(*t))
            .collect();
        let healthy = pings.iter().filter(|&&t| t < 1000).count();
        assert!(healthy >= 4, "pings every 200 ms while healthy: {pings:?}");
        // Stale from 1.2 s at the latest (one tick late at most): no ping from 1.25 s until the
        // worker beats again at 2.5 s, far longer than WatchdogSec (the manager would kill it).
        let silent: Vec<u64> = pings
            .iter()
            .copied()
            .filter(|&t| (1250..2500).contains(&t))
            .collect();
        assert!(
            silent.is_empty(),
            "pings while stuck: {silent:?} of {pings:?}"
        );
        let stuck: Vec<&String> = got
            .iter()
            .filter(|(_, m)| m.starts_with("STATUS=stuck"))
            .map(|(_, m)| m)
            .collect();
        assert_eq!(stuck.len(), 1, "{got:?}");
        assert!(stuck[0].contains("provd-shard-0"), "{}", stuck[0]);
        assert!(!stuck[0].contains("provd-sync-0"), "idle is not stuck");
        // Back: the first ping carries the status again, and they keep coming.
        let back: Vec<&(Duration, String)> = got.iter().filter(|(t, _)| ms(*t) >= 2500).collect();
        assert!(
            back.iter()
                .any(|(_, m)| m == "WATCHDOG=1\nSTATUS=serving: dhcp path=sockets"),
            "{got:?}"
        );
        assert!(
            pings.iter().filter(|&&t| t >= 2500).count() >= 3,
            "{pings:?}"
        );
    }
}
