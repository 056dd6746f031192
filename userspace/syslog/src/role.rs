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
            ("receive_errors".into(), c.receive_errors),
            ("store_devices".into(), n(st.devices)),
            ("store_unknown_devices".into(), n(st.unknown_devices)),
            ("store_events".into(), n(st.events)),
            ("store_bytes".into(), n(st.bytes)),
            ("store_evicted_devices".into(), st.evicted_devices),
        ]);
        out
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
