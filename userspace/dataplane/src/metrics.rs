//! The DHCP role's Prometheus families, read at scrape time from what the workers already keep:
//! each shard's [`Counters`] (relaxed atomics only its thread writes), its [`CommitStats`]
//! (histograms its sync thread updates once per group commit) and the pools' bitmaps (the
//! atomics allocation claims through). Nothing here runs on the packet path, and nothing on the
//! packet path knows this exists.
//!
//! Families (counters per shard, so a hot shard shows; `sum without (shard)` for the server):
//!
//! | family | type | labels |
//! |---|---|---|
//! | `provd_dhcp_messages_received_total` | counter | shard, type |
//! | `provd_dhcp_messages_sent_total` | counter | shard, type |
//! | `provd_dhcp_drops_total` | counter | shard, reason |
//! | `provd_dhcp_naks_total` | counter | shard, reason |
//! | `provd_dhcp_lease_records_persisted_total` | counter | shard |
//! | `provd_dhcp_lease_commits_total` | counter | shard |
//! | `provd_dhcp_ack_latency_seconds` | histogram | shard |
//! | `provd_dhcp_lease_fsync_seconds` | histogram | shard |
//! | `provd_dhcp_pool_addresses` | gauge | network, subnet, pool |
//! | `provd_dhcp_pool_assigned_addresses` | gauge | network, subnet, pool |
//! | `provd_dhcp_pool_free_addresses` | gauge | network, subnet, pool |
//!
//! Against Stork's Kea exporter, for operators moving dashboards over:
//! `kea_dhcp4_packets_received_total{operation}` is `provd_dhcp_messages_received_total{type}`
//! summed over shards (`…_sent_total` likewise); `kea_dhcp4_addresses_total{subnet}` is
//! `sum by (network, subnet) (provd_dhcp_pool_addresses)`; `kea_dhcp4_addresses_assigned_total`
//! is `provd_dhcp_pool_assigned_addresses` summed the same way (a gauge here, as it goes down
//! when leases end: Stork's `_total` suffix on a gauge is a misnomer we do not copy); per shared
//! network, `sum by (network)`; allocation failures are
//! `provd_dhcp_drops_total{reason="pool_exhausted"}`.

use std::sync::Arc;

use provd_dhcp::MessageType;
use provd_engine::{Counters, Drop, Nak, Shared};
use provd_role::metrics::MetricsSink;

use crate::CommitStats;

/// Writes the DHCP families of the module docs: `shards` in shard order (index = label), the
/// pools of `shared`'s policy.
pub fn write(
    shared: &Shared,
    shards: &[(Arc<Counters>, Arc<CommitStats>)],
    out: &mut dyn MetricsSink,
) {
    for (i, (counters, _)) in shards.iter().enumerate() {
        let shard = i.to_string();
        let s = counters.snapshot();
        for t in MessageType::ALL {
            let labels = [("shard", shard.as_str()), ("type", t.name())];
            out.counter(
                "provd_dhcp_messages_received_total",
                "DHCP messages received, by message type.",
                &labels,
                s.received_count(t),
            );
        }
        for t in MessageType::ALL {
            let labels = [("shard", shard.as_str()), ("type", t.name())];
            out.counter(
                "provd_dhcp_messages_sent_total",
                "DHCP messages sent, by message type.",
                &labels,
                s.sent_count(t),
            );
        }
        for d in Drop::ALL {
            out.counter(
                "provd_dhcp_drops_total",
                "DHCP datagrams answered with nothing, by reason.",
                &[("shard", &shard), ("reason", d.label())],
                s.drop_count(*d),
            );
        }
        for n in Nak::ALL {
            out.counter(
                "provd_dhcp_naks_total",
                "DHCPREQUESTs answered with a DHCPNAK, by reason.",
                &[("shard", &shard), ("reason", n.label())],
                s.nak_count(*n),
            );
        }
        out.counter(
            "provd_dhcp_offers_reused_total",
            "Offers nobody took up, given to another client of a pool out of addresses.",
            &[("shard", &shard)],
            s.offers_reused,
        );
        out.counter(
            "provd_dhcp_lost_offers_honoured_total",
            "REQUESTs for an offer the server no longer held (a restart, or past offer_hold_secs) \
             ACKed because the address was still free.",
            &[("shard", &shard)],
            s.lost_offers_honoured,
        );
        out.counter(
            "provd_dhcp_lease_records_persisted_total",
            "Lease records made durable in the shard's lease log.",
            &[("shard", &shard)],
            s.leases_persisted,
        );
        out.counter(
            "provd_dhcp_lease_commits_total",
            "Batches of lease records committed to the shard's lease log.",
            &[("shard", &shard)],
            s.commits,
        );
    }
    for (i, (_, timings)) in shards.iter().enumerate() {
        out.histogram(
            "provd_dhcp_ack_latency_seconds",
            "Time from a request's receipt to its DHCPACK leaving, the lease log's write and \
             fsync included.",
            &[("shard", &i.to_string())],
            &timings.ack_latency.snapshot(),
        );
    }
    for (i, (_, timings)) in shards.iter().enumerate() {
        out.histogram(
            "provd_dhcp_lease_fsync_seconds",
            "Time each sync (fdatasync) of the shard's lease log took.",
            &[("shard", &i.to_string())],
            &timings.fsync.snapshot(),
        );
    }
    for (i, (_, stats)) in shards.iter().enumerate() {
        out.gauge(
            "provd_dhcp_lease_log_durable",
            "1 while the shard's lease log makes leases durable, 0 after a failed write or sync \
             until it recovers (the shard answers no DHCP meanwhile).",
            &[("shard", &i.to_string())],
            f64::from(u8::from(!stats.durability.is_lost())),
        );
    }
    for (i, (_, stats)) in shards.iter().enumerate() {
        out.counter(
            "provd_dhcp_lease_log_failures_total",
            "Failed writes and syncs of the shard's lease log.",
            &[("shard", &i.to_string())],
            stats.durability.failures(),
        );
    }
    for (i, (_, stats)) in shards.iter().enumerate() {
        out.counter(
            "provd_dhcp_lease_log_recoveries_total",
            "Times the shard's lease log was started afresh from its table after a failure.",
            &[("shard", &i.to_string())],
            stats.durability.recoveries(),
        );
    }
    write_pools(shared, out);
}

/// Size, assigned and free addresses of every pool, labelled with its shared network, subnet
/// and range. "Assigned" is every address claimed in the pool's bitmap: bound, offered and
/// held, declined and in quarantine, or reserved (a reservation inside a pool is claimed for
/// good). Read with one relaxed popcount pass per pool, O(pool size / 64), no lock.
pub fn write_pools(shared: &Shared, out: &mut dyn MetricsSink) {
    for net in &shared.policy.networks {
        for subnet in &net.subnets {
            let subnet_label = subnet.to_string();
            for pool in &subnet.pools {
                let Some(bm) = shared.pool(pool.id) else {
                    continue;
                };
                let range = format!("{}-{}", pool.start, pool.end);
                let labels = [
                    ("network", net.name.as_str()),
                    ("subnet", subnet_label.as_str()),
                    ("pool", range.as_str()),
                ];
                let size = bm.len();
                let assigned = bm.claimed().min(size);
                out.gauge(
                    "provd_dhcp_pool_addresses",
                    "Addresses in the pool.",
                    &labels,
                    f64::from(size),
                );
                out.gauge(
                    "provd_dhcp_pool_assigned_addresses",
                    "Addresses of the pool bound, offered, declined or reserved.",
                    &labels,
                    f64::from(assigned),
                );
                out.gauge(
                    "provd_dhcp_pool_free_addresses",
                    "Addresses of the pool free to offer.",
                    &labels,
                    f64::from(size - assigned),
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::net::{Ipv4Addr, SocketAddrV4};

    use provd_config::Policy;
    use provd_dhcp::{Header, Message, MessageWriter, code};
    use provd_engine::{Ingress, Outcome, Shard};
    use provd_lease::{LeaseLog, LeaseTable};
    use provd_role::metrics::Exposition;

    use super::*;
    use crate::Via;
    use crate::commit::{self, AckBatch, AckSink, BatchPool};

    const SERVER: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 1);
    const RELAY: Ipv4Addr = Ipv4Addr::new(198, 18, 1, 1);
    const NOW: u32 = 1_800_000_000;

    fn policy() -> Policy {
        Policy::from_toml_str(
            r#"
[server]
server_id = "198.18.0.1"
lease_dir = "/nonexistent"

[[class]]
name = "cm"
match = "docsis*"

[[shared_network]]
name = "cmts-1"
relays = ["198.18.1.1"]
  [[shared_network.subnet]]
  prefix = "198.19.0.0/24"
  routers = ["198.19.0.1"]
    [[shared_network.subnet.pool]]
    start = "198.19.0.10"
    end = "198.19.0.13"
"#,
        )
        .unwrap_or_else(|e| panic!("{e}"))
    }

    fn request(kind: MessageType, n: u8, requested: Option<Ipv4Addr>) -> Vec<u8> {
        let mut chaddr = [0u8; 16];
        chaddr[..6].copy_from_slice(&[0, 0x15, 0xcf, 0, 0, n]);
        let mut h = Header::reply(0x1234, chaddr, 1, 6);
        h.op = 1;
        h.giaddr = RELAY;
        let mut buf = Vec::new();
        let mut w = MessageWriter::new(&mut buf, &h, 1500).unwrap();
        w.option(code::MESSAGE_TYPE, &[kind as u8]).unwrap();
        if let Some(a) = requested {
            w.ipv4(code::REQUESTED_IP, a).unwrap();
            w.ipv4(code::SERVER_ID, SERVER).unwrap();
        }
        w.option(code::VENDOR_CLASS, b"docsis3.0").unwrap();
        w.finish().unwrap();
        buf
    }

    /// Counts what it is handed, like the I/O path would send it.
    struct Sent(Arc<std::sync::atomic::AtomicUsize>);
    impl AckSink for Sent {
        fn deliver(&mut self, batch: AckBatch, _: &Counters) -> Option<AckBatch> {
            self.0
                .fetch_add(batch.replies().len(), std::sync::atomic::Ordering::Relaxed);
            Some(batch)
        }
    }

    fn sample<'t>(text: &'t str, series: &str) -> &'t str {
        text.lines()
            .find_map(|l| l.strip_prefix(series).and_then(|v| v.strip_prefix(' ')))
            .unwrap_or_else(|| panic!("no {series} in\n{text}"))
    }

    /// Two clients through DORA, one REQUEST for an address never offered (NAK), one runt
    /// (drop), their ACKs through the real commit pipeline on a real lease log: the families
    /// carry exactly that.
    #[test]
    fn dhcp_families_count_what_the_engine_and_the_commit_pipeline_did() {
        let shared = Shared::new(policy()).unwrap();
        let mut shard = Shard::new(Arc::clone(&shared), LeaseTable::new(), 0, 1);
        let dir = tempfile::tempdir().unwrap();
        let log = LeaseLog::open(dir.path(), 0, 1).unwrap();
        let syncer = log.syncer().unwrap();
        let sent = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let timings = Arc::new(CommitStats::default());
        let (mut committer, sync) = commit::pipeline(
            0,
            log,
            syncer,
            Sent(Arc::clone(&sent)),
            BatchPool::new(),
            shard.counters(),
            Arc::clone(&timings),
        );
        let sync_thread = std::thread::spawn(move || sync.run());

        let handle = |shard: &mut Shard, payload: &[u8]| {
            let ingress = Ingress {
                payload,
                src: SocketAddrV4::new(RELAY, 67),
                local: SERVER,
                ifindex: 1,
            };
            let mut out = Vec::new();
            let o = shard.handle(NOW, &ingress, &mut out);
            (o, out)
        };
        for n in 1..=2 {
            let (o, out) = handle(&mut shard, &request(MessageType::Discover, n, None));
            assert!(matches!(o, Outcome::Reply(_)), "{o:?}");
            let offered = Message::parse(&out).unwrap().yiaddr();
            let received = std::time::Instant::now();
            let (o, out) = handle(&mut shard, &request(MessageType::Request, n, Some(offered)));
            let Outcome::Reply(r) = o else {
                panic!("{o:?}")
            };
            let mut batch = committer.begin_at(received);
            for (key, lease) in shard.take_pending() {
                batch.append(&key, &lease);
            }
            batch.submit(std::iter::once((out.as_slice(), r.dest, Via::Kernel)));
        }
        let (o, _) = handle(
            &mut shard,
            // Outside the pool: never offered and never free to take, so a NAK.
            &request(MessageType::Request, 3, Some(Ipv4Addr::new(198, 19, 0, 50))),
        );
        assert!(matches!(o, Outcome::Reply(_)), "a NAK: {o:?}");
        assert!(matches!(
            handle(&mut shard, &[1, 2, 3]).0,
            Outcome::Dropped(_)
        ));
        drop(committer.finish());
        sync_thread.join().unwrap();
        assert_eq!(sent.load(std::sync::atomic::Ordering::Relaxed), 2);

        let mut e = Exposition::new();
        write(&shared, &[(shard.counters(), timings)], &mut e);
        assert!(e.refused().is_empty(), "{:?}", e.refused());
        let text = e.finish();
        let families: Vec<&str> = e.families().collect();
        assert_eq!(
            families,
            [
                "provd_dhcp_messages_received_total",
                "provd_dhcp_messages_sent_total",
                "provd_dhcp_drops_total",
                "provd_dhcp_naks_total",
                "provd_dhcp_offers_reused_total",
                "provd_dhcp_lost_offers_honoured_total",
                "provd_dhcp_lease_records_persisted_total",
                "provd_dhcp_lease_commits_total",
                "provd_dhcp_ack_latency_seconds",
                "provd_dhcp_lease_fsync_seconds",
                "provd_dhcp_lease_log_durable",
                "provd_dhcp_lease_log_failures_total",
                "provd_dhcp_lease_log_recoveries_total",
                "provd_dhcp_pool_addresses",
                "provd_dhcp_pool_assigned_addresses",
                "provd_dhcp_pool_free_addresses",
            ]
        );
        let got = |series: &str| sample(&text, series);
        let s = r#"shard="0""#;
        assert_eq!(
            got(&format!(
                r#"provd_dhcp_messages_received_total{{{s},type="discover"}}"#
            )),
            "2"
        );
        assert_eq!(
            got(&format!(
                r#"provd_dhcp_messages_received_total{{{s},type="request"}}"#
            )),
            "3"
        );
        assert_eq!(
            got(&format!(
                r#"provd_dhcp_messages_sent_total{{{s},type="offer"}}"#
            )),
            "2"
        );
        assert_eq!(
            got(&format!(
                r#"provd_dhcp_messages_sent_total{{{s},type="ack"}}"#
            )),
            "2"
        );
        assert_eq!(
            got(&format!(
                r#"provd_dhcp_messages_sent_total{{{s},type="nak"}}"#
            )),
            "1"
        );
        assert_eq!(
            got(&format!(
                r#"provd_dhcp_naks_total{{{s},reason="not_offered"}}"#
            )),
            "1"
        );
        assert_eq!(
            got(&format!(
                r#"provd_dhcp_naks_total{{{s},reason="wrong_network"}}"#
            )),
            "0"
        );
        assert_eq!(
            got(&format!(
                r#"provd_dhcp_drops_total{{{s},reason="truncated"}}"#
            )),
            "1"
        );
        assert_eq!(
            got(&format!(
                r#"provd_dhcp_lease_records_persisted_total{{{s}}}"#
            )),
            "2"
        );
        assert_eq!(
            got(&format!(r#"provd_dhcp_lease_commits_total{{{s}}}"#)),
            "2"
        );
        assert_eq!(
            got(&format!(r#"provd_dhcp_ack_latency_seconds_count{{{s}}}"#)),
            "2"
        );
        assert_eq!(
            got(&format!(
                r#"provd_dhcp_ack_latency_seconds_bucket{{{s},le="+Inf"}}"#
            )),
            "2"
        );
        // One sync per group: both batches may share one.
        let syncs = got(&format!(r#"provd_dhcp_lease_fsync_seconds_count{{{s}}}"#));
        assert!(syncs == "1" || syncs == "2", "{syncs}");
        let pool = r#"network="cmts-1",subnet="198.19.0.0/24",pool="198.19.0.10-198.19.0.13""#;
        assert_eq!(got(&format!("provd_dhcp_pool_addresses{{{pool}}}")), "4");
        assert_eq!(
            got(&format!("provd_dhcp_pool_assigned_addresses{{{pool}}}")),
            "2"
        );
        assert_eq!(
            got(&format!("provd_dhcp_pool_free_addresses{{{pool}}}")),
            "2"
        );
    }
}
