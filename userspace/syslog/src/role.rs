//! The syslog role as `provd serve` runs it: a [`Store`] sized by `[syslog]`, the receiver
//! threads, and events filed under the device whose live lease holds the source address.

use std::net::Ipv4Addr;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use anyhow::Context;
use provd_devices::DeviceView;
use provd_role::{Counters, Role, clock, workers_for};

use crate::{Format, ParseError, Store, StoreConfig, SyslogHandle, SyslogSettings, spawn};

/// Starts the receiver `[syslog]` describes (`workers = 0`: one per core); every socket is bound
/// before it returns, so a port in use is this error. Events from an address some device's
/// live lease holds are filed under its MAC, the rest under the address.
pub fn start(
    config: &provd_config::SyslogSettings,
    devices: Arc<DeviceView>,
    shutdown: Arc<AtomicBool>,
) -> anyhow::Result<SyslogHandle> {
    let store = Arc::new(Store::new(StoreConfig {
        events_per_device: config.events_per_device,
        max_devices: config.max_devices,
        ..StoreConfig::default()
    }));
    let device_of = move |addr: Ipv4Addr| devices.device_at(addr, clock::unix_secs_u32());
    spawn(
        SyslogSettings {
            bind: config.bind,
            port: config.port,
            workers: workers_for(config.workers),
            per_source_rate: config.per_source_rate,
            per_source_burst: config.per_source_burst,
        },
        store,
        Arc::new(device_of),
        shutdown,
    )
    .with_context(|| format!("starting syslog on {}:{}", config.bind, config.port))
}

impl Role for SyslogHandle {
    fn name(&self) -> &'static str {
        "syslog"
    }

    /// `syslog MAC|IPv4`: the events kept for the device, oldest first, one JSON line each.
    fn query(&self, words: &[&str]) -> Option<String> {
        use provd_role::query::{Who, error_json};
        let ["syslog", who] = words else { return None };
        let key = match Who::parse(who) {
            Some(Who::Mac(mac)) => crate::DeviceKey::Mac(mac),
            Some(Who::Addr(a)) => crate::DeviceKey::Addr(a),
            None => return Some(error_json(format!("not a MAC or IPv4 address: {who}"))),
        };
        let mut out = String::new();
        for e in self.store().events(key) {
            out.push_str(&event_json(&e));
            out.push('\n');
        }
        Some(out)
    }

    fn listening(&self) -> String {
        format!("udp={}", self.local_addr())
    }

    /// The receiver's counters (per format and per kind of malformed datagram too), then what
    /// the store holds.
    fn counters(&self) -> Counters {
        let c = self.counters();
        let st = self.store().stats();
        let n = |v: usize| u64::try_from(v).unwrap_or(u64::MAX);
        let mut out: Counters = vec![("received".into(), c.received), ("parsed".into(), c.parsed)];
        out.extend(
            Format::ALL
                .iter()
                .map(|f| (format!("parsed_{}", f.label()), c.by_format[f.index()])),
        );
        out.push(("malformed".into(), c.malformed_total()));
        out.extend(
            ParseError::LABELS
                .iter()
                .zip(c.malformed)
                .map(|(label, v)| (format!("malformed_{label}"), v)),
        );
        out.extend([
            ("truncated".into(), c.truncated),
            ("stored".into(), c.stored),
            ("rate_limited".into(), c.rate_limited),
            ("unleased".into(), c.unleased),
            ("receive_errors".into(), c.receive_errors),
            ("store_devices".into(), n(st.devices)),
            ("store_unknown_devices".into(), n(st.unknown_devices)),
            ("store_events".into(), n(st.events)),
            ("store_bytes".into(), n(st.bytes)),
            ("store_evicted_devices".into(), st.evicted_devices),
        ]);
        out
    }

    /// The receiver's counts as counters (parsed by format, malformed by reason), what the
    /// store holds as gauges.
    fn metrics(&self, out: &mut dyn provd_role::metrics::MetricsSink) {
        let c = self.counters();
        let st = self.store().stats();
        out.counter(
            "provd_syslog_received_total",
            "Syslog datagrams received.",
            &[],
            c.received,
        );
        for f in Format::ALL {
            out.counter(
                "provd_syslog_parsed_total",
                "Syslog messages parsed, by format.",
                &[("format", f.label())],
                c.by_format[f.index()],
            );
        }
        for (label, &n) in ParseError::LABELS.iter().zip(&c.malformed) {
            out.counter(
                "provd_syslog_malformed_total",
                "Syslog datagrams not parsed, by reason.",
                &[("reason", label)],
                n,
            );
        }
        for (name, help, n) in [
            (
                "provd_syslog_truncated_total",
                "Syslog datagrams longer than the receive buffer.",
                c.truncated,
            ),
            (
                "provd_syslog_stored_total",
                "Syslog events filed in the store.",
                c.stored,
            ),
            (
                "provd_syslog_rate_limited_total",
                "Syslog datagrams dropped: their source was over its per-source rate.",
                c.rate_limited,
            ),
            (
                "provd_syslog_unleased_total",
                "Syslog events stored from an address no live lease held.",
                c.unleased,
            ),
            (
                "provd_syslog_receive_errors_total",
                "Errors reading the syslog socket.",
                c.receive_errors,
            ),
            (
                "provd_syslog_store_evicted_devices_total",
                "Devices whose events the store evicted to stay in its bounds.",
                st.evicted_devices,
            ),
        ] {
            out.counter(name, help, &[], n);
        }
        for (name, help, n) in [
            (
                "provd_syslog_store_devices",
                "Devices with syslog events in the store.",
                st.devices,
            ),
            (
                "provd_syslog_store_unknown_devices",
                "Addresses with events but no device known.",
                st.unknown_devices,
            ),
            (
                "provd_syslog_store_events",
                "Syslog events in the store.",
                st.events,
            ),
            (
                "provd_syslog_store_bytes",
                "Bytes of syslog events in the store.",
                st.bytes,
            ),
        ] {
            out.gauge(name, help, &[], n as f64);
        }
    }

    fn finished(&self) -> bool {
        self.workers.any_finished()
    }

    /// Waits at most `grace` for the workers (they notice the shutdown flag within 100 ms).
    fn stop(self: Box<Self>, grace: Duration) -> anyhow::Result<()> {
        self.workers
            .join_within(grace)
            .context("stopping the syslog receiver")
    }
}

/// One event as the query socket prints it.
fn event_json(e: &crate::Event) -> String {
    serde_json::json!({
        "received_ms": e.received_at,
        "source": e.source.to_string(),
        "facility": crate::facility_name(e.facility),
        "severity": crate::severity_name(e.severity),
        "sent_at": e.sent_at.as_ref().map(|t| t.to_string()),
        "app": e.app_name.as_deref(),
        "proc_id": e.proc_id.as_deref(),
        "msg_id": e.msg_id.as_deref(),
        "text": &*e.text,
        "truncated": e.truncated,
        // From an address no live lease held: anyone may have sent it.
        "leased": e.leased,
    })
    .to_string()
}
