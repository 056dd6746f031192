//! perfdhcp (Kea 2.2) as a relay-mode load generator: given a server address and `-l <local
//! address>`, it sends from that address's port 67 with giaddr set to it, like a relay agent.
//! Its closing report is parsed here. perfdhcp 2.2 has no NAK counter (a NAKed REQUEST shows
//! up as a drop), so suites count NAKs on the wire as well.

use std::net::Ipv4Addr;

use anyhow::{Context, Result, bail};

/// How to run perfdhcp. Every run is bounded by `period_secs` (`-p`).
#[derive(Debug, Clone)]
pub struct Load {
    pub local: Ipv4Addr,
    pub server: Ipv4Addr,
    /// Exchanges initiated per second (`-r`).
    pub rate: u32,
    /// Distinct simulated clients (`-R`): MACs drawn from base..base+clients.
    pub clients: u32,
    /// Test period in seconds (`-p`).
    pub period_secs: u32,
    /// After the period, wait this long for outstanding replies (`-W`, µs).
    pub exit_wait_us: u32,
    /// Seconds before a request counts as lost (`-d`).
    pub drop_time_secs: f64,
    /// Random seed (`-s`), for repeatable client sequences.
    pub seed: u32,
}

impl Load {
    pub fn args(&self) -> Vec<String> {
        vec![
            "-4".into(),
            "-l".into(),
            self.local.to_string(),
            "-r".into(),
            self.rate.to_string(),
            "-R".into(),
            self.clients.to_string(),
            "-p".into(),
            self.period_secs.to_string(),
            "-W".into(),
            self.exit_wait_us.to_string(),
            "-d".into(),
            self.drop_time_secs.to_string(),
            "-s".into(),
            self.seed.to_string(),
            self.server.to_string(),
        ]
    }
}

/// One exchange's counters (`DISCOVER-OFFER` or `REQUEST-ACK`).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Exchange {
    pub sent: u64,
    pub received: u64,
    pub drops: u64,
    pub orphans: u64,
    pub rejected_leases: u64,
    pub non_unique: u64,
}

impl Exchange {
    /// Drops as a fraction of sent (0 when nothing was sent).
    pub fn drop_ratio(&self) -> f64 {
        if self.sent == 0 {
            0.0
        } else {
            self.drops as f64 / self.sent as f64
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Report {
    pub rate: f64,
    pub expected_rate: f64,
    pub malformed: u64,
    pub discover_offer: Exchange,
    pub request_ack: Exchange,
}

impl Report {
    /// Completed 4-way exchanges.
    pub fn completed(&self) -> u64 {
        self.request_ack.received
    }

    /// Fraction of started exchanges that did not complete.
    pub fn loss_ratio(&self) -> f64 {
        let started = self.discover_offer.sent;
        if started == 0 {
            1.0
        } else {
            1.0 - self.request_ack.received as f64 / started as f64
        }
    }
}

/// Parses perfdhcp's closing report.
pub fn parse_report(text: &str) -> Result<Report> {
    let mut r = Report::default();
    let mut section: Option<&str> = None;
    let mut seen_do = false;
    let mut seen_ra = false;
    for line in text.lines() {
        let line = line.trim();
        if let Some(name) = line
            .strip_prefix("***Statistics for: ")
            .and_then(|s| s.strip_suffix("***"))
        {
            section = Some(match name {
                "DISCOVER-OFFER" => {
                    seen_do = true;
                    "DO"
                }
                "REQUEST-ACK" => {
                    seen_ra = true;
                    "RA"
                }
                _ => "other",
            });
            continue;
        }
        if let Some(rest) = line.strip_prefix("Rate: ") {
            // "Rate: 1996.5 4-way exchanges/second, expected rate: 2000"
            r.rate = rest
                .split_whitespace()
                .next()
                .and_then(|v| v.parse().ok())
                .with_context(|| format!("bad rate line {line:?}"))?;
            if let Some((_, e)) = rest.split_once("expected rate: ") {
                r.expected_rate = e.trim().parse().unwrap_or(0.0);
            }
            continue;
        }
        if let Some(v) = line.strip_prefix("Malformed packets: ") {
            r.malformed = v.trim().parse().unwrap_or(0);
            continue;
        }
        let Some((key, value)) = line.split_once(": ") else {
            continue;
        };
        let ex = match section {
            Some("DO") => &mut r.discover_offer,
            Some("RA") => &mut r.request_ack,
            _ => continue,
        };
        let Ok(n) = value.trim().parse::<u64>() else {
            continue;
        };
        match key {
            "sent packets" => ex.sent = n,
            "received packets" => ex.received = n,
            "drops" => ex.drops = n,
            "orphans" => ex.orphans = n,
            "rejected leases" => ex.rejected_leases = n,
            "non unique addresses" => ex.non_unique = n,
            _ => {}
        }
    }
    if !(seen_do && seen_ra) {
        bail!("perfdhcp printed no DISCOVER-OFFER/REQUEST-ACK statistics");
    }
    Ok(r)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = "Running: perfdhcp -4 -l 198.18.4.2 -r 2000 -R 50000 -p 5 198.18.0.1
Scenario: basic.
Multi-thread mode enabled.
***Rate statistics***
Rate: 1996.5 4-way exchanges/second, expected rate: 2000

***Malformed Packets***
Malformed packets: 0
***Statistics for: DISCOVER-OFFER***
sent packets: 9999
received packets: 9987
drops: 12
drops ratio: 0.120012 %
orphans: 0
rejected leases: 0
non unique addresses: 0

min delay: 0.078 ms
avg delay: 12.120 ms
collected packets: 0

***Statistics for: REQUEST-ACK***
sent packets: 9987
received packets: 9986
drops: 1
drops ratio: 0.010 %
orphans: 3
rejected leases: 0
non unique addresses: 0
";

    #[test]
    fn parses_the_closing_report() {
        let r = parse_report(SAMPLE).unwrap();
        assert_eq!(r.rate, 1996.5);
        assert_eq!(r.expected_rate, 2000.0);
        assert_eq!(r.discover_offer.sent, 9999);
        assert_eq!(r.discover_offer.received, 9987);
        assert_eq!(r.discover_offer.drops, 12);
        assert_eq!(r.request_ack.sent, 9987);
        assert_eq!(r.request_ack.drops, 1);
        assert_eq!(r.request_ack.orphans, 3);
        assert_eq!(r.completed(), 9986);
        assert!((r.loss_ratio() - 13.0 / 9999.0).abs() < 1e-9);
        assert!(parse_report("Rate: 5 4-way\n").is_err());
    }

    #[test]
    fn builds_relay_mode_arguments() {
        let l = Load {
            local: Ipv4Addr::new(198, 18, 4, 2),
            server: Ipv4Addr::new(198, 18, 0, 1),
            rate: 3000,
            clients: 50000,
            period_secs: 12,
            exit_wait_us: 2_000_000,
            drop_time_secs: 2.0,
            seed: 7,
        };
        let a = l.args();
        assert_eq!(a.last().unwrap(), "198.18.0.1");
        assert!(a.windows(2).any(|w| w[0] == "-l" && w[1] == "198.18.4.2"));
        assert!(a.windows(2).any(|w| w[0] == "-R" && w[1] == "50000"));
        assert!(a.windows(2).any(|w| w[0] == "-p" && w[1] == "12"));
    }
}
