//! Bounded waiting: every wait has a deadline and says what it was waiting for.

use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use anyhow::{Result, bail};

use crate::netns::Netns;
use crate::procnet;

/// Calls `probe` every `every` until it yields a value or returns an error, failing after
/// `timeout` with `what` and the last probe's note.
pub fn until<T>(
    what: &str,
    timeout: Duration,
    every: Duration,
    mut probe: impl FnMut() -> Result<Option<T>>,
) -> Result<T> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = probe()? {
            return Ok(v);
        }
        if Instant::now() >= deadline {
            bail!("timed out after {timeout:?} waiting for {what}");
        }
        std::thread::sleep(every);
    }
}

/// The namespace's `/proc/net/udp` table.
pub fn udp_table(ns: &Netns) -> Result<String> {
    ns.run_in(|| Ok(std::fs::read_to_string("/proc/thread-self/net/udp")?))
}

/// Waits until UDP `port` is bound in `ns` on `addr` (or the wildcard); any address if `addr` is
/// None.
pub fn udp_port(ns: &Netns, addr: Option<Ipv4Addr>, port: u16, timeout: Duration) -> Result<()> {
    let what = format!(
        "UDP {}:{port} to be bound in {}",
        addr.map_or("*".into(), |a| a.to_string()),
        ns.name()
    );
    until(&what, timeout, Duration::from_millis(50), || {
        Ok(procnet::udp_bound(&udp_table(ns)?, addr, port).then_some(()))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn until_returns_or_times_out() {
        let mut n = 0;
        let v = until(
            "n to reach 3",
            Duration::from_secs(5),
            Duration::ZERO,
            || {
                n += 1;
                Ok((n >= 3).then_some(n))
            },
        )
        .unwrap();
        assert_eq!(v, 3);
        let err = until::<()>(
            "never",
            Duration::from_millis(30),
            Duration::from_millis(5),
            || Ok(None),
        )
        .unwrap_err();
        assert!(err.to_string().contains("waiting for never"));
        assert!(
            until::<()>("x", Duration::from_secs(1), Duration::ZERO, || bail!(
                "boom"
            ))
            .is_err()
        );
    }
}
