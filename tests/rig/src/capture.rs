//! tcpdump captures inside a namespace, written packet-buffered (`-U`) so the file can be read
//! while the capture runs, and stopped with SIGINT so the file is complete and tcpdump reports
//! its drop counters.
//!
//! Captures run in immediate mode. Otherwise libpcap reads the kernel's TPACKET_V3 ring a whole
//! block at a time, and hands over a block that is not full only when tcpdump's 1 s timeout
//! runs out. A SIGINT inside that second leaves the packets in that block counted as "received
//! by filter" but never written. CI saw that at the end of the storm suite: 35 of 40,000
//! packets, and no kernel drops.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result, bail};

use crate::child::Child;
use crate::netns::Netns;
use crate::pcap::{self, DhcpPacket};

/// tcpdump's closing counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CaptureStats {
    pub captured: u64,
    pub received_by_filter: u64,
    pub dropped_by_kernel: u64,
}

impl CaptureStats {
    /// Parses tcpdump's closing lines (`N packets captured`, `N packets received by filter`,
    /// `N packets dropped by kernel`).
    pub fn parse(stderr: &str) -> Option<CaptureStats> {
        let mut s = CaptureStats::default();
        let mut seen = 0;
        for line in stderr.lines() {
            let mut words = line.split_whitespace();
            let (Some(n), Some("packets"), rest) = (
                words.next().and_then(|n| n.parse::<u64>().ok()),
                words.next(),
                words.collect::<Vec<_>>().join(" "),
            ) else {
                continue;
            };
            match rest.as_str() {
                "captured" => s.captured = n,
                "received by filter" => s.received_by_filter = n,
                "dropped by kernel" => s.dropped_by_kernel = n,
                _ => continue,
            }
            seen += 1;
        }
        (seen == 3).then_some(s)
    }
}

/// How long the capture file must stay the same size before tcpdump is stopped.
const SETTLED: Duration = Duration::from_millis(300);
/// The longest [`Capture::stop`] waits for that.
const SETTLE_LIMIT: Duration = Duration::from_secs(15);

#[derive(Debug)]
pub struct Capture {
    child: Child,
    path: PathBuf,
}

impl Capture {
    /// Starts `tcpdump -i <iface> -w <dir>/<label>.pcap <filter>` in `ns` and waits until it is
    /// listening. The kernel buffer is enlarged (`-B`) for load tests.
    pub fn start(
        ns: &Netns,
        iface: &str,
        filter: &str,
        label: &str,
        dir: &Path,
    ) -> Result<Capture> {
        let path = dir.join(format!("{label}.pcap"));
        let path_s = path.to_string_lossy().into_owned();
        let mut args = vec![
            "-i",
            iface,
            "-n",
            "-U",
            "--immediate-mode",
            "-Z",
            "root",
            "-B",
            "32768",
            "-s",
            "2048",
            "-w",
            &path_s,
        ];
        args.extend(filter.split_whitespace());
        let mut child = ns.spawn(label, "tcpdump", &args, dir)?;
        child
            .wait_for_output("listening on", Duration::from_secs(10))
            .context("tcpdump did not start")?;
        Ok(Capture { child, path })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Waits until the capture file has stopped growing for [`SETTLED`] (at most
    /// [`SETTLE_LIMIT`]).
    fn settle(&self) {
        let size = || std::fs::metadata(&self.path).map_or(0, |m| m.len());
        let until = std::time::Instant::now() + SETTLE_LIMIT;
        let mut last = size();
        let mut still_since = std::time::Instant::now();
        while std::time::Instant::now() < until {
            std::thread::sleep(Duration::from_millis(50));
            let now = size();
            if now != last {
                last = now;
                still_since = std::time::Instant::now();
            } else if still_since.elapsed() >= SETTLED {
                return;
            }
        }
    }

    /// The DHCP messages captured so far (the last record may still be in flight).
    pub fn dhcp_so_far(&self) -> Result<Vec<DhcpPacket>> {
        Ok(pcap::read_dhcp(&self.path, true)?.0)
    }

    /// Polls the capture until `pred` holds for the packets so far, or fails after `timeout`
    /// with `what` and a summary of what was captured.
    pub fn wait_for<T>(
        &self,
        what: &str,
        timeout: Duration,
        mut pred: impl FnMut(&[DhcpPacket]) -> Option<T>,
    ) -> Result<T> {
        let deadline = std::time::Instant::now() + timeout;
        loop {
            let pkts = self.dhcp_so_far()?;
            if let Some(v) = pred(&pkts) {
                return Ok(v);
            }
            if std::time::Instant::now() >= deadline {
                let tail: Vec<String> = pkts
                    .iter()
                    .rev()
                    .take(8)
                    .rev()
                    .map(|p| p.summary())
                    .collect();
                bail!(
                    "no {what} on the wire within {timeout:?} ({} DHCP packets captured; last: [{}])",
                    pkts.len(),
                    tail.join("; ")
                );
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Stops tcpdump with SIGINT (so it flushes and closes the file) and returns its counters.
    /// First it lets tcpdump write what its ring still holds: SIGINT ends it without draining
    /// the ring, and a tcpdump short of CPU through a burst (the storm suite's) was seen to lose
    /// hundreds of packets it had taken that way.
    pub fn stop(mut self) -> Result<(PathBuf, CaptureStats)> {
        self.settle();
        let (_, clean) = self.child.stop(libc::SIGINT, Duration::from_secs(10))?;
        if !clean {
            bail!(
                "tcpdump ignored SIGINT for 10 s and was killed; {} may be incomplete",
                self.path.display()
            );
        }
        let stats = CaptureStats::parse(&self.child.stderr_text()).with_context(|| {
            format!(
                "tcpdump printed no closing counters: {}",
                self.child.stderr_tail(5)
            )
        })?;
        Ok((self.path.clone(), stats))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_tcpdump_counters() {
        let s = "tcpdump: listening on lo, link-type EN10MB (Ethernet), snapshot length 262144 bytes\n\
                 1201 packets captured\n1305 packets received by filter\n104 packets dropped by kernel\n";
        assert_eq!(
            CaptureStats::parse(s),
            Some(CaptureStats {
                captured: 1201,
                received_by_filter: 1305,
                dropped_by_kernel: 104
            })
        );
        assert_eq!(CaptureStats::parse("tcpdump: listening on lo\n"), None);
    }
}
