//! provd-rig: the machinery the end-to-end suites stand on.
//!
//! Everything a suite creates lives in network namespaces named `provd-e2e-<pid>-<role>-<n>` and
//! talks only inside 198.18.0.0/15 between them. Every resource is an RAII guard
//! ([`Netns`], [`VethPair`], [`Child`], [`Capture`]) whose `Drop` tears it down, so a failing
//! assertion or a panic cleans up as it unwinds; [`cleanup::install_signal_handlers`] covers
//! Ctrl-C and SIGTERM by killing every registered process group and deleting every registered
//! namespace before the process exits.
//!
//! Real peers (dhclient, dhcrelay, perfdhcp, tcpdump) are driven as child processes; what they put
//! on the wire is read back from pcap files with [`pcap`], parsed with the project's own codec.
//! provd itself runs under one launcher, [`Provd`]: config, start in a namespace, the parsed ready
//! line, stop, kill -9, restart, used by every e2e suite and bench in `xtask`. The benches' link
//! is [`Topology::bench`].

pub mod capture;
pub mod child;
pub mod cleanup;
pub mod cmd;
pub mod dhclient;
pub mod leases;
pub mod netns;
pub mod pcap;
pub mod perfdhcp;
pub mod postgres;
pub mod procnet;
pub mod provd;
pub mod topo;
pub mod veth;
pub mod wait;

pub use capture::{Capture, CaptureStats};
pub use child::Child;
pub use netns::Netns;
pub use pcap::{DhcpPacket, UdpDatagram};
pub use postgres::Postgres;
pub use provd::{Provd, Ready};
pub use topo::Topology;
pub use veth::VethPair;

/// The prefix of every namespace this process creates: unique per run because it carries the PID.
pub fn run_prefix() -> String {
    format!("{}{}-", NETNS_PREFIX, std::process::id())
}

/// The prefix shared by all runs; [`cleanup::sweep_stale`] recognises dead runs' namespaces by it.
pub const NETNS_PREFIX: &str = "provd-e2e-";

/// Formats a MAC as `aa:bb:cc:dd:ee:ff`.
pub fn fmt_mac(mac: &[u8]) -> String {
    mac.iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

/// Parses `aa:bb:cc:dd:ee:ff` (or with `-`).
pub fn parse_mac(s: &str) -> anyhow::Result<[u8; 6]> {
    let parts: Vec<&str> = s.trim().split([':', '-']).collect();
    anyhow::ensure!(parts.len() == 6, "not a MAC address: {s:?}");
    let mut mac = [0u8; 6];
    for (slot, part) in mac.iter_mut().zip(&parts) {
        anyhow::ensure!(part.len() == 2, "not a MAC address: {s:?}");
        *slot = u8::from_str_radix(part, 16)
            .map_err(|_| anyhow::anyhow!("not a MAC address: {s:?}"))?;
    }
    Ok(mac)
}

/// Lower-case hex without separators.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Picks up to `n` items, all of them if there are no more than `n`, else a uniform sample
/// (partial Fisher–Yates with a xorshift seeded by `seed`); order is kept stable for reports.
pub fn sample<T: Clone>(items: &[T], n: usize, seed: u64) -> Vec<T> {
    if items.len() <= n {
        return items.to_vec();
    }
    let mut idx: Vec<usize> = (0..items.len()).collect();
    let mut s = seed | 1;
    for i in 0..n {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        let j = i + (s % (items.len() - i) as u64) as usize;
        idx.swap(i, j);
    }
    let mut chosen = idx[..n].to_vec();
    chosen.sort_unstable();
    chosen.into_iter().map(|i| items[i].clone()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefix_carries_pid() {
        let p = run_prefix();
        assert!(p.starts_with("provd-e2e-"));
        assert!(p.ends_with('-'));
        assert!(p.contains(&std::process::id().to_string()));
    }

    #[test]
    fn mac_round_trip() {
        let m = parse_mac("00:0C:01:02:03:ff").unwrap();
        assert_eq!(m, [0, 0x0c, 1, 2, 3, 0xff]);
        assert_eq!(fmt_mac(&m), "00:0c:01:02:03:ff");
        assert!(parse_mac("00:0c:01:02:03").is_err());
        assert!(parse_mac("00:0c:01:02:03:zz").is_err());
        assert!(parse_mac("000:c:01:02:03:04").is_err());
        assert_eq!(hex(&[1, 0xab]), "01ab");
    }

    #[test]
    fn sample_is_bounded_distinct_and_total_when_small() {
        let items: Vec<u32> = (0..10_000).collect();
        let s = sample(&items, 500, 99);
        assert_eq!(s.len(), 500);
        let mut d = s.clone();
        d.dedup();
        assert_eq!(d.len(), 500);
        assert!(s.windows(2).all(|w| w[0] < w[1]));
        assert_eq!(sample(&items[..10], 500, 1).len(), 10);
        // Not just the first n.
        assert!(s.iter().any(|&v| v >= 500));
    }
}
