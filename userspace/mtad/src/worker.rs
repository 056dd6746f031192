//! The MTA thread: the engine, its two sockets, the command queue, and the files it renders.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crossbeam_channel::Receiver;
use provd_config::{ClassId, ConfigFileKind};
use provd_mta::{Engine, Event, FromPort, Mac, Millis, Outgoing};
use provd_role::{Counters, clock};
use provd_tftpd::FileContent;
use provd_udp::{RateLimit, RecvBatch, SendBatch, UdpSocket, Wait, poll_readable};

use crate::{Command, Context, Pinned};

/// Datagrams per recvmmsg/sendmmsg call.
const BATCH: usize = 32;
/// A slot holds the largest UDP datagram: an SNMP message may be up to 64 KiB, and the answer
/// to an INFORM echoes its varbinds.
const SLOT: usize = 65_536;
/// Longest sleep: bounds how late a queued command or a shutdown is noticed.
const POLL_CAP: Duration = Duration::from_millis(20);
/// Batches drained from one socket before the other socket, the queue and the timers get
/// their turn.
const BATCHES_PER_TURN: usize = 8;

/// Socket-level counts.
#[derive(Debug, Clone, Default)]
pub(crate) struct IoCounters {
    pub datagrams_received: u64,
    pub datagrams_sent: u64,
    /// Datagrams the kernel would not take (no route, interface gone) or too long for a slot.
    pub send_failures: u64,
    /// Errors reading a socket (typically ICMP unreachable from an MTA that left).
    pub receive_errors: u64,
    /// Notifications dropped unanswered: they waited past `Context::max_notification_age`.
    pub stale_notifications: u64,
}

/// What the thread publishes once per loop turn, for [`Role::counters`](provd_role::Role).
#[derive(Debug, Default)]
pub(crate) struct Stats {
    pub engine: provd_mta::Counters,
    pub records: usize,
    pub io: IoCounters,
}

impl Stats {
    /// Typed Prometheus families from the same snapshot as [`Stats::counters`]: records and
    /// active flows as gauges, every other engine count as a `_total` counter, statuses by
    /// reported state, undecodable datagrams by kind, the sockets' counts.
    pub(crate) fn metrics(&self, out: &mut dyn provd_role::metrics::MetricsSink) {
        let e = &self.engine;
        out.gauge(
            "provd_mta_records",
            "MTA provisioning records kept (active and finished).",
            &[],
            self.records as f64,
        );
        for (name, n) in e.named() {
            if name == "flows_active" {
                out.gauge(
                    "provd_mta_flows_active",
                    "MTA provisioning flows in progress.",
                    &[],
                    n as f64,
                );
                continue;
            }
            let help = format!("MTA engine count {name:?} (see provd_mta::Counters).");
            out.counter(&format!("provd_mta_{name}_total"), &help, &[], n);
        }
        for (i, &n) in e.status_by_state.iter().enumerate() {
            let state = i32::try_from(i)
                .ok()
                .and_then(|v| provd_mta::ProvState(v).name())
                .unwrap_or("other");
            out.counter(
                "provd_mta_statuses_by_state_total",
                "Status INFORMs acted on, by the pktcMtaDevProvisioningState reported.",
                &[("state", state)],
                n,
            );
        }
        for &(kind, n) in &e.undecodable_by_kind {
            out.counter(
                "provd_mta_undecodable_by_kind_total",
                "Datagrams on the MTA ports that are not SNMP, by decode error.",
                &[("kind", kind)],
                n,
            );
        }
        let io = &self.io;
        for (name, help, n) in [
            (
                "provd_mta_datagrams_received_total",
                "Datagrams the MTA sockets received.",
                io.datagrams_received,
            ),
            (
                "provd_mta_datagrams_sent_total",
                "Datagrams the MTA sockets sent.",
                io.datagrams_sent,
            ),
            (
                "provd_mta_send_failures_total",
                "Datagrams the kernel would not take.",
                io.send_failures,
            ),
            (
                "provd_mta_receive_errors_total",
                "Errors reading an MTA socket.",
                io.receive_errors,
            ),
            (
                "provd_mta_stale_notifications_total",
                "Notifications dropped unanswered: they waited in the queue past their usefulness.",
                io.stale_notifications,
            ),
        ] {
            out.counter(name, help, &[], n);
        }
    }

    pub(crate) fn counters(&self) -> Counters {
        let mut out: Counters = vec![("records".into(), self.records as u64)];
        out.extend(
            self.engine
                .named()
                .into_iter()
                .map(|(k, v)| (k.to_string(), v)),
        );
        for (state, &n) in self.engine.status_by_state.iter().enumerate() {
            if n > 0 {
                out.push((format!("status_state_{state}"), n));
            }
        }
        for &(kind, n) in &self.engine.undecodable_by_kind {
            out.push((format!("undecodable_{kind}"), n));
        }
        let io = &self.io;
        out.extend([
            ("datagrams_received".into(), io.datagrams_received),
            ("datagrams_sent".into(), io.datagrams_sent),
            ("send_failures".into(), io.send_failures),
            ("receive_errors".into(), io.receive_errors),
            ("stale_notifications".into(), io.stale_notifications),
        ]);
        out
    }
}

/// The sending half of both sockets: what the engine emits queues here and leaves in one
/// sendmmsg per socket per [`BATCH`].
struct Outbox {
    notify: UdpSocket,
    requests: UdpSocket,
    to_notify: SendBatch,
    to_requests: SendBatch,
    io: IoCounters,
}

impl Outbox {
    fn push(&mut self, o: Outgoing<'_>) {
        let (socket, batch) = match o.from_port {
            FromPort::Notify => (&self.notify, &mut self.to_notify),
            FromPort::Requests => (&self.requests, &mut self.to_requests),
        };
        if batch.is_full() {
            let failed = socket.send_batch(batch) as u64;
            self.io.send_failures += failed;
            self.io.datagrams_sent -= failed;
        }
        if batch.push(o.bytes, o.to, std::net::Ipv4Addr::UNSPECIFIED) {
            self.io.datagrams_sent += 1;
        } else {
            self.io.send_failures += 1;
            tracing::debug!(to = %o.to, bytes = o.bytes.len(), "SNMP datagram not queued");
        }
    }

    fn flush(&mut self) {
        for (socket, batch) in [
            (&self.requests, &mut self.to_requests),
            (&self.notify, &mut self.to_notify),
        ] {
            let failed = socket.send_batch(batch) as u64;
            self.io.send_failures += failed;
            self.io.datagrams_sent -= failed;
        }
    }
}

pub(crate) struct Worker {
    engine: Engine,
    out: Outbox,
    from_rest: Receiver<Command>,
    ctx: Context,
    pinned: Arc<Pinned>,
    stats: Arc<Mutex<Stats>>,
    log_limit: RateLimit,
}

impl Worker {
    pub(crate) fn new(
        engine: Engine,
        notify: UdpSocket,
        requests: UdpSocket,
        from_rest: Receiver<Command>,
        ctx: Context,
        pinned: Arc<Pinned>,
        stats: Arc<Mutex<Stats>>,
    ) -> Worker {
        Worker {
            engine,
            out: Outbox {
                notify,
                requests,
                to_notify: SendBatch::new(BATCH, SLOT),
                to_requests: SendBatch::new(BATCH, SLOT),
                io: IoCounters::default(),
            },
            from_rest,
            ctx,
            pinned,
            stats,
            log_limit: RateLimit::per_sec(5),
        }
    }

    pub(crate) fn run(mut self, shutdown: &AtomicBool) -> std::io::Result<()> {
        let notify_port = self.out.notify.local_addr()?.port();
        let request_port = self.out.requests.local_addr()?.port();
        let mut rx = RecvBatch::new(BATCH, SLOT);
        tracing::debug!("MTA worker started");
        while !shutdown.load(Ordering::Relaxed) {
            provd_role::beat();
            let now = Millis(clock::unix_millis());
            let wait = self.engine.next_deadline().map_or(POLL_CAP, |d| {
                Duration::from_millis(d.since(now)).min(POLL_CAP)
            });
            let [notify_ready, requests_ready] =
                poll_readable([self.out.notify.fd(), self.out.requests.fd()], wait)?;
            // Responses to our SETs first, then what the TFTP side saw (a fetch), then new
            // INFORMs: that is the order an MTA does them in, and a flow must see its SET
            // acknowledged before the fetch and the status that follow it.
            if requests_ready {
                self.drain(FromPort::Requests, request_port, &mut rx);
            }
            self.commands();
            if notify_ready {
                self.drain(FromPort::Notify, notify_port, &mut rx);
            }
            self.engine
                .poll_timeouts(Millis(clock::unix_millis()), &mut |o| self.out.push(o));
            // The answers go before any file is rendered: an MTA retransmits an INFORM
            // that waits.
            self.out.flush();
            while let Some(ev) = self.engine.poll_event() {
                self.event(ev);
            }
            self.out.flush();
            self.record_flow_ends();
            self.publish();
        }
        tracing::debug!("MTA worker stopped");
        Ok(())
    }

    /// Each flow that ended this turn into the duration histogram: once per flow through the
    /// metrics facade, timed against the clock the engine was given.
    fn record_flow_ends(&mut self) {
        use provd_role::metrics::{facade, names};
        let now = clock::unix_millis();
        for e in self.engine.take_flow_ends() {
            let flow = e.flow.map_or("unknown", provd_mta::Flow::realm_name);
            facade::histogram!(
                names::MTA_FLOW_DURATION_SECONDS,
                "flow" => flow,
                "outcome" => e.outcome
            )
            .record(now.saturating_sub(e.started.0) as f64 / 1000.0);
        }
    }

    fn publish(&self) {
        let mut s = self.stats.lock().unwrap_or_else(|p| p.into_inner());
        s.engine.clone_from(self.engine.counters());
        s.records = self.engine.records_len();
        s.io.clone_from(&self.out.io);
    }

    /// Hands what is queued on one socket to the engine, a few batches at most so that the
    /// other socket, the queue and the timers get their turn under load.
    fn drain(&mut self, which: FromPort, local_port: u16, rx: &mut RecvBatch) {
        for _ in 0..BATCHES_PER_TURN {
            let socket = match which {
                FromPort::Notify => &self.out.notify,
                FromPort::Requests => &self.out.requests,
            };
            let n = match socket.recv_batch(rx, Wait::No) {
                Ok(n) => n,
                Err(e) => {
                    self.out.io.receive_errors += 1;
                    tracing::trace!(error = %e, "SNMP receive error");
                    return;
                }
            };
            self.out.io.datagrams_received += n as u64;
            let now = Millis(clock::unix_millis());
            let wall = std::time::SystemTime::now();
            for i in 0..n {
                let (bytes, meta) = rx.get(i);
                if which == FromPort::Notify
                    && meta
                        .waited(wall)
                        .is_some_and(|w| w > self.ctx.max_notification_age)
                {
                    self.out.io.stale_notifications += 1;
                    continue;
                }
                self.engine
                    .on_datagram(now, meta.src, local_port, bytes, &mut |o| self.out.push(o));
            }
            if n < rx.capacity() {
                return;
            }
        }
    }

    /// What the rest of the server reported: boots, fetches, questions.
    fn commands(&mut self) {
        while let Ok(cmd) = self.from_rest.try_recv() {
            match cmd {
                Command::Dhcp(b) => {
                    let mac = b.mac;
                    if let Err(e) = self.engine.on_dhcp(Millis(clock::unix_millis()), b)
                        && let Some(held) = self.log_limit.allow()
                    {
                        tracing::warn!(%mac, error = %e, suppressed = held, "MTA boot not provisioned");
                    }
                }
                Command::Fetched(mac) => {
                    self.engine
                        .on_file_fetched(Millis(clock::unix_millis()), Mac(mac));
                }
                Command::Status(mac, reply) => {
                    let _ = reply.send(self.engine.record(Mac(mac)).map(|r| r.to_json()));
                }
            }
        }
    }

    /// Tells the context's record hook of a flow's milestone, with the record as it is now.
    fn milestone(&self, mac: provd_mta::Mac, what: &str) {
        if let (Some(hook), Some(r)) = (&self.ctx.on_record, self.engine.record(mac)) {
            hook(mac.0, what, r.to_json());
        }
    }

    fn event(&mut self, ev: Event) {
        match ev {
            Event::NeedFile { mac, .. } => {
                self.milestone(mac, "need-file");
                match self.make_file(mac) {
                    Ok((url, hash)) => {
                        let out = &mut self.out;
                        if let Err(e) = self.engine.file_ready(
                            Millis(clock::unix_millis()),
                            mac,
                            url,
                            hash,
                            &mut |o| out.push(o),
                        ) {
                            tracing::warn!(%mac, error = %e, "file ready too late");
                        }
                    }
                    Err(reason) => {
                        tracing::error!(%mac, %reason, "MTA config file not generated");
                        let _ = self
                            .engine
                            .file_failed(Millis(clock::unix_millis()), mac, reason);
                    }
                }
            }
            // One line per provisioned MTA would be tens of thousands a second in a region's
            // reboot: successes go to debug (the record has them), failures are rate-limited.
            Event::Completed { mac, state } => {
                tracing::debug!(%mac, state = ?state, "MTA provisioned");
                self.pinned.unpin(mac.0);
                self.milestone(mac, "completed");
            }
            Event::Failed { mac, step, reason } => {
                if let Some(held) = self.log_limit.allow() {
                    tracing::warn!(%mac, step = step.label(), %reason, suppressed = held, "MTA provisioning failed");
                }
                self.pinned.unpin(mac.0);
                self.milestone(mac, "failed");
            }
            Event::TimedOut { mac, step } => {
                if let Some(held) = self.log_limit.allow() {
                    tracing::warn!(%mac, step = step.label(), suppressed = held, "MTA provisioning timed out");
                }
                self.pinned.unpin(mac.0);
                self.milestone(mac, "timed-out");
            }
            Event::Rejected { src, reason } => {
                if let Some(held) = self.log_limit.allow() {
                    tracing::warn!(%src, reason = reason.name(), suppressed = held, "SNMP datagram rejected");
                }
            }
            _ => {}
        }
    }

    /// Renders the MTA's file with its class's template, pins the bytes, and gives the URL and
    /// SHA-1 the engine SETs (MTA-18).
    fn make_file(&self, mac: Mac) -> Result<(String, Vec<u8>), String> {
        let policy = &self.ctx.policy;
        let facts = self.ctx.devices.get(&mac.0, clock::unix_secs_u32());
        let class_id: Option<ClassId> = facts.as_ref().and_then(|f| f.class);
        let class = class_id
            .map(|c| policy.class(c))
            .filter(|c| is_mta_class(c))
            .or_else(|| policy.classes.iter().find(|c| is_mta_class(c)))
            .ok_or("no class generates MTA files (config_file kind = \"mta\")")?;
        let name = class
            .boot_file
            .as_ref()
            .map(|b| b.render(&mac.0))
            .ok_or("the MTA class has no boot_file")?;
        let bytes = self
            .ctx
            .generator
            .render_for(&class.name, &mac.0, facts.as_ref())
            .map_err(|e| e.to_string())?;
        let hash = provd_docsis::mta_file_hash(&bytes, provd_docsis::HashAlg::Sha1);
        self.pinned
            .pin(name.clone(), FileContent::from(bytes), mac.0);
        Ok((format!("tftp://{}/{name}", self.ctx.tftp_host), hash))
    }
}

fn is_mta_class(c: &provd_config::Class) -> bool {
    c.config_file
        .as_ref()
        .is_some_and(|f| f.kind == ConfigFileKind::Mta)
}
