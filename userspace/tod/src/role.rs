//! The time server as `provd serve` runs it: started from `[time]`, driven as a
//! [`provd_role::Role`] named `time`.

use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use anyhow::Context;
use provd_role::{Counters, Role};

use crate::{TodHandle, TodSettings, spawn};

/// Starts the server `[time]` describes; its sockets are bound before it returns, so a port in
/// use is this error.
pub fn start(
    config: &provd_config::TimeSettings,
    shutdown: Arc<AtomicBool>,
) -> anyhow::Result<TodHandle> {
    spawn(
        TodSettings {
            bind: config.bind,
            port: config.port,
            udp: config.udp,
            tcp: config.tcp,
            ..TodSettings::default()
        },
        shutdown,
    )
    .with_context(|| {
        format!(
            "starting the time server on {}:{}",
            config.bind, config.port
        )
    })
}

impl Role for TodHandle {
    fn name(&self) -> &'static str {
        "time"
    }

    /// `udp=ADDR tcp=ADDR`, each only when on.
    fn listening(&self) -> String {
        let udp = self.udp_addr().map(|a| format!("udp={a}"));
        let tcp = self.tcp_addr().map(|a| format!("tcp={a}"));
        [udp, tcp]
            .into_iter()
            .flatten()
            .collect::<Vec<_>>()
            .join(" ")
    }

    fn counters(&self) -> Counters {
        let c = self.counters();
        [
            ("udp_requests", c.udp_requests),
            ("udp_replies", c.udp_replies),
            ("udp_ignored", c.udp_ignored),
            ("udp_send_errors", c.udp_send_errors),
            ("tcp_accepted", c.tcp_accepted),
            ("tcp_replies", c.tcp_replies),
            ("tcp_write_errors", c.tcp_write_errors),
            ("receive_errors", c.receive_errors),
            ("udp_rate_limited", c.udp_rate_limited),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect()
    }

    /// Every count as `provd_time_<name>_total` (they are all counts).
    fn metrics(&self, out: &mut dyn provd_role::metrics::MetricsSink) {
        for (name, n) in Role::counters(self) {
            let help = format!("RFC 868 time server count {name:?}.");
            out.counter(&format!("provd_time_{name}_total"), &help, &[], n);
        }
    }

    fn finished(&self) -> bool {
        self.workers.any_finished()
    }

    /// Waits at most `grace` for the server thread (it notices the shutdown flag within
    /// 100 ms).
    fn stop(self: Box<Self>, grace: Duration) -> anyhow::Result<()> {
        self.workers
            .join_within(grace)
            .context("stopping the time server")
    }
}
