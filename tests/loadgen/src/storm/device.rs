//! One simulated device's whole boot, sans-IO, from power-on to online:
//!
//! * cable modem: DHCP (relayed, option 60 `docsis3.0`) → its config file over TFTP from siaddr,
//!   CM MIC and CMTS MIC checked → time of day (RFC 868 over UDP) from option 4 → one syslog
//!   message to option 7 → online;
//! * eMTA: DHCP (option 60 `pktc1.5`, option 122 read) → the HYBRID.2 flow of
//!   `provd-loadgen mta` against 122.3 (enrollment INFORM, SET, TFTP fetch with the SET's hash
//!   checked, status INFORM) → online;
//! * eRouter: DHCP (option 60 `erouter1.0`, option 43.1 read) → a TR-069 session with the ACS
//!   (see [`super::cpe`]) → online;
//! * phone: DHCP (option 66 read) → its profile over HTTP, checked → online.
//!
//! Every step that fails or goes unanswered is retried the way the device would: DHCP by
//! [`super::dhcp`] (RFC 2131 timing); the modem's TFTP after 1, 2, 4, 8, then 16 s, and after
//! [`TFTP_TRIES`] failed tries back to DHCP (DOCSIS's TFTP backoff); time of day resent after
//! 1, 2, 4, 8, then 16 s; the MTA's whole flow again after 2, 4, 8, 16, then 32 s; the router's
//! session after TR-069's session retry wait (§3.2.1.1 with its defaults m = 5 s, k = 2000: the
//! n-th retry at a random point of [5·2^(n−1), 5·2^n] s); the phone's profile after 2, 4, 8, 16,
//! then 32 s. Each HTTP exchange times out after [`Shared::http_timeout`]. The device never
//! gives up: the run's deadline decides who is lost.

use std::net::{Ipv4Addr, SocketAddrV4};
use std::time::{Duration, Instant};

use crate::mta::flow::{self, Flow, FlowSetup, Progress};
use crate::tftp::packet::RequestOptions;
use crate::tftp::transfer::{self, Setup, Step, Transfer};

use super::Rng;
use super::cpe::{self, Cwmp, Profile};
use super::dhcp::{self, Client, Event, Identity, Lease, Relay};
use super::http::Response;

/// Failed config-file tries before a modem starts over with DHCP.
pub const TFTP_TRIES: u32 = 16;
const TFTP_PORT: u16 = 69;
const TIME_PORT: u16 = 37;
const SYSLOG_PORT: u16 = 514;
const NOTIFY_PORT: u16 = 162;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Kind {
    Cm,
    Mta,
    Router,
    Phone,
}

impl Kind {
    pub const ALL: [Kind; 4] = [Kind::Cm, Kind::Mta, Kind::Router, Kind::Phone];

    pub fn name(self) -> &'static str {
        match self {
            Kind::Cm => "cm",
            Kind::Mta => "mta",
            Kind::Router => "router",
            Kind::Phone => "phone",
        }
    }

    /// Index into per-kind arrays, in [`Kind::ALL`]'s order.
    pub fn at(self) -> usize {
        self as usize
    }
}

/// Where a device is in its boot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    Off,
    Dhcp,
    /// Modem: fetching its config file (or waiting to try again).
    File,
    /// Modem: waiting for the time of day.
    Time,
    /// MTA: in its provisioning flow (or waiting to start it again).
    Flow,
    /// Router: in its CWMP session (or waiting to start it again).
    Acs,
    /// Phone: fetching its profile (or waiting to try again).
    Profile,
    Online,
}

impl Phase {
    pub fn name(self) -> &'static str {
        match self {
            Phase::Off => "off",
            Phase::Dhcp => "DHCP",
            Phase::File => "config file",
            Phase::Time => "time of day",
            Phase::Flow => "MTA flow",
            Phase::Acs => "CWMP session",
            Phase::Profile => "HTTP profile",
            Phase::Online => "online",
        }
    }
}

/// What every device of a run shares.
#[derive(Debug, Clone)]
pub struct Shared {
    /// The CMTS shared secret the modems' CMTS MIC is checked with.
    pub shared_secret: Vec<u8>,
    pub community: Vec<u8>,
    pub tftp: RequestOptions,
    /// TFTP packet resend interval and resends per try.
    pub tftp_timeout: Duration,
    pub tftp_retries: u32,
    /// INFORM resend interval, resends, and the longest one MTA flow may take.
    pub inform_timeout: Duration,
    pub inform_retries: u32,
    pub flow_timeout: Duration,
    /// The routers' ACS credentials (ManagementServer.Username and Password).
    pub acs_user: String,
    pub acs_pass: String,
    /// How long a router or phone waits for one HTTP response.
    pub http_timeout: Duration,
}

/// When the device reached each step (`None`: not yet).
#[derive(Debug, Clone, Default)]
pub struct Marks {
    pub offered: Option<Instant>,
    pub acked: Option<Instant>,
    /// Modem: file in and verified. MTA: the server's SET came. Router: the InformResponse
    /// came. Phone: the profile came, checked.
    pub file: Option<Instant>,
    /// Modem: time of day answered. MTA: file in with the SET's hash. Router: the session
    /// ended (204). Phone: as `file`.
    pub second: Option<Instant>,
    pub online: Option<Instant>,
}

/// A failure on the way, counted by the run (the device goes on retrying).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Setback {
    pub kind: String,
    /// A TFTP server's refusal (ERROR 3 or any ERROR that says so): the device retries later.
    pub refused: bool,
}

/// What a step asks of the engine.
#[derive(Debug, Default)]
pub struct Effects {
    /// Send the DHCP client's datagram through the device's relay.
    pub dhcp: bool,
    /// The ACK came: from now on the device sends from its address; call [`Device::begin`].
    pub bound: Option<Box<Lease>>,
    pub online: bool,
    pub setbacks: Vec<Setback>,
    /// Send this HTTP request to this server, on the device's open connection or a new one.
    pub http: Option<(SocketAddrV4, Vec<u8>)>,
    /// Close the device's HTTP connection (before sending `http`, when both are set).
    pub close: bool,
}

/// Boxed: most devices are off, in DHCP or online, holding none.
#[derive(Debug)]
enum Tail {
    None,
    Cm(Box<CmTail>),
    Mta(Box<MtaTail>),
    /// Router or phone.
    Http(Box<HttpTail>),
}

#[derive(Debug)]
struct CmTail {
    tftp_server: SocketAddrV4,
    file: String,
    time_server: SocketAddrV4,
    log_server: SocketAddrV4,
    transfer: Option<Transfer>,
    /// Failed tries of the file so far.
    tries: u32,
    retry_at: Option<Instant>,
    time_sends: u32,
    time_resend_at: Instant,
}

#[derive(Debug)]
struct MtaTail {
    setup: FlowSetup,
    flow: Option<Flow>,
    tries: u32,
    retry_at: Option<Instant>,
}

/// A router's session or a phone's fetch.
#[derive(Debug)]
enum Job {
    Cwmp(Cwmp),
    Profile(Profile),
}

#[derive(Debug)]
struct HttpTail {
    /// The router's ACS URL, or the phone's profile rule.
    target: String,
    job: Option<Job>,
    /// When the response awaited is overdue.
    deadline: Instant,
    tries: u32,
    retry_at: Option<Instant>,
}

#[derive(Debug)]
pub struct Device {
    pub kind: Kind,
    pub index: u32,
    pub who: Identity,
    pub relay: usize,
    /// When it is powered on (again, after it gave up on its lease).
    pub power_on: Instant,
    /// The first power-on: time to online counts from here.
    pub boot: Instant,
    pub phase: Phase,
    pub dhcp: Option<Client>,
    pub lease: Option<Lease>,
    pub marks: Marks,
    /// Retries of the config file (modem) or flow (MTA), over the device's life.
    pub retries: u32,
    /// Times it went back to DHCP after its lease (modem: the file failed too often).
    pub redhcp: u32,
    tail: Tail,
}

/// TR-069 §3.2.1.1's session retry wait with the defaults (CWMPRetryMinimumWaitInterval 5 s,
/// CWMPRetryIntervalMultiplier 2000): after the n-th failure, a random point of
/// [5·2^(n−1), 5·2^n) s, n counted up to 10.
fn cwmp_retry_wait(failures: u32, rng: &mut Rng) -> Duration {
    let n = failures.clamp(1, 10);
    let lo = 5_000u64 << (n - 1);
    Duration::from_millis(lo + rng.below(lo))
}

/// `base` doubled per failure up to `cap`.
fn doubling(base: Duration, failures: u32, cap: Duration) -> Duration {
    (base * (1u32 << failures.saturating_sub(1).min(16))).min(cap)
}

impl Device {
    pub fn new(kind: Kind, index: u32, who: Identity, relay: usize, power_on: Instant) -> Self {
        Device {
            kind,
            index,
            who,
            relay,
            power_on,
            boot: power_on,
            phase: Phase::Off,
            dhcp: None,
            lease: None,
            marks: Marks::default(),
            retries: 0,
            redhcp: 0,
            tail: Tail::None,
        }
    }

    /// The earliest time [`Device::on_tick`] has work.
    pub fn next_timer(&self) -> Option<Instant> {
        match self.phase {
            Phase::Off => Some(self.power_on),
            Phase::Dhcp => self.dhcp.as_ref().map(|c| c.resend_at),
            Phase::Online => None,
            _ => match &self.tail {
                Tail::Cm(t) => match (self.phase, &t.transfer) {
                    (Phase::File, Some(x)) => Some(x.deadline()),
                    (Phase::File, None) => t.retry_at,
                    (Phase::Time, _) => Some(t.time_resend_at),
                    _ => None,
                },
                Tail::Mta(t) => match &t.flow {
                    Some(f) => Some(f.next_timer()),
                    None => t.retry_at,
                },
                Tail::Http(t) => match &t.job {
                    Some(_) => Some(t.deadline),
                    None => t.retry_at,
                },
                Tail::None => None,
            },
        }
    }

    /// A relayed DHCP reply naming this device.
    pub fn on_dhcp(
        &mut self,
        reply: &dhcp::Reply,
        relay: &Relay,
        now: Instant,
        rng: &mut Rng,
    ) -> Effects {
        let mut fx = Effects::default();
        let Some(c) = self.dhcp.as_mut() else {
            return fx;
        };
        if self.phase != Phase::Dhcp {
            return fx;
        }
        match c.on_reply(reply, &self.who, relay, now, rng) {
            Event::Ignored => {}
            Event::Send => {
                if reply.kind == provd_dhcp::MessageType::Offer {
                    self.marks.offered.get_or_insert(now);
                }
                fx.dhcp = true;
            }
            Event::Bound(l) => {
                self.marks.acked.get_or_insert(now);
                self.lease = Some((*l).clone());
                fx.bound = Some(l);
            }
        }
        fx
    }

    /// The device has its address: start what follows the lease.
    pub fn begin(
        &mut self,
        shared: &Shared,
        now: Instant,
        send: &mut dyn FnMut(SocketAddrV4, &[u8]),
    ) -> Effects {
        let mut fx = Effects::default();
        let Some(l) = self.lease.clone() else {
            return fx;
        };
        match self.kind {
            Kind::Cm => {
                let server = |v: &[Ipv4Addr], port| {
                    SocketAddrV4::new(v.first().copied().unwrap_or(l.next_server), port)
                };
                let Some(file) = l.file.clone() else {
                    fx.setbacks.push(Setback {
                        kind: "ACK without a boot file".into(),
                        refused: false,
                    });
                    return self.back_to_dhcp(now, fx);
                };
                let mut t = CmTail {
                    tftp_server: SocketAddrV4::new(l.next_server, TFTP_PORT),
                    file,
                    time_server: server(&l.time_servers, TIME_PORT),
                    log_server: server(&l.log_servers, SYSLOG_PORT),
                    transfer: None,
                    tries: 0,
                    retry_at: None,
                    time_sends: 0,
                    time_resend_at: now,
                };
                self.phase = Phase::File;
                start_transfer(&mut t, shared, now, send);
                self.tail = Tail::Cm(Box::new(t));
            }
            Kind::Mta => {
                let prov = l
                    .cablelabs
                    .as_deref()
                    .and_then(|v| provd_dhcp::cablelabs::ClientConfiguration::decode(v).ok())
                    .and_then(|c| c.provisioning_server);
                let Some(provd_dhcp::cablelabs::ProvServer::Ipv4(ip)) = prov else {
                    fx.setbacks.push(Setback {
                        kind: "ACK without option 122.3 as an IPv4 address".into(),
                        refused: false,
                    });
                    return self.back_to_dhcp(now, fx);
                };
                let setup = FlowSetup {
                    server: SocketAddrV4::new(ip, NOTIFY_PORT),
                    community: shared.community.clone(),
                    identity: crate::mta::msg::Identity::default(),
                    timeout: shared.inform_timeout,
                    retries: shared.inform_retries,
                    tftp: shared.tftp,
                    tftp_timeout: shared.tftp_timeout,
                    tftp_retries: shared.tftp_retries,
                    flow_timeout: shared.flow_timeout,
                };
                let mut t = MtaTail {
                    setup,
                    flow: None,
                    tries: 0,
                    retry_at: None,
                };
                self.phase = Phase::Flow;
                t.flow = Some(Flow::start(
                    &t.setup,
                    flow_key(self.index, 0),
                    self.who.mac,
                    now,
                    send,
                ));
                self.tail = Tail::Mta(Box::new(t));
            }
            Kind::Router | Kind::Phone => {
                let target = if self.kind == Kind::Router {
                    l.vendor_specific.as_deref().and_then(cpe::acs_url)
                } else {
                    l.tftp_server_name.clone()
                };
                let Some(target) = target else {
                    fx.setbacks.push(Setback {
                        kind: if self.kind == Kind::Router {
                            "ACK without an ACS URL in option 43.1".into()
                        } else {
                            "ACK without a profile rule in option 66".into()
                        },
                        refused: false,
                    });
                    return self.back_to_dhcp(now, fx);
                };
                self.phase = if self.kind == Kind::Router {
                    Phase::Acs
                } else {
                    Phase::Profile
                };
                self.tail = Tail::Http(Box::new(HttpTail {
                    target,
                    job: None,
                    deadline: now,
                    tries: 0,
                    retry_at: None,
                }));
                return self.start_job(shared, now, fx);
            }
        }
        fx
    }

    /// A router's session or a phone's fetch, from the top.
    fn start_job(&mut self, shared: &Shared, now: Instant, mut fx: Effects) -> Effects {
        let (Tail::Http(t), Some(l)) = (&mut self.tail, &self.lease) else {
            return fx;
        };
        let started = match self.kind {
            Kind::Router => {
                let serial = format!("ER{}", crate::mta::msg::mac12(self.who.mac));
                Cwmp::start(
                    &t.target,
                    &shared.acs_user,
                    &shared.acs_pass,
                    cpe::boot_inform(&serial, l.addr),
                )
                .map(|(c, req)| (c.to, Job::Cwmp(c), req))
            }
            _ => Profile::start(&t.target, self.who.mac, l.addr)
                .map(|(p, req)| (p.to, Job::Profile(p), req)),
        };
        match started {
            Ok((to, job, req)) => {
                t.job = Some(job);
                t.deadline = now + shared.http_timeout;
                fx.http = Some((to, req));
                fx
            }
            Err(why) => {
                // The URL the server handed out is unusable: no retry can help, but the device
                // would keep trying; the run counts it each time.
                fx.setbacks.push(Setback {
                    kind: format!("{}: {why}", self.phase.name()),
                    refused: false,
                });
                self.back_to_dhcp(now, fx)
            }
        }
    }

    /// The server's answer on the device's HTTP connection, or why none will come.
    pub fn on_http(
        &mut self,
        shared: &Shared,
        got: Result<&Response, String>,
        now: Instant,
        rng: &mut Rng,
    ) -> Effects {
        let mut fx = Effects::default();
        let phase = self.phase;
        let Tail::Http(t) = &mut self.tail else {
            fx.close = true;
            return fx;
        };
        let Some(job) = t.job.as_mut() else {
            fx.close = true;
            return fx;
        };
        let step = match got {
            Ok(r) => match job {
                Job::Cwmp(c) => c.on_response(r),
                Job::Profile(p) => p.on_response(r),
            },
            Err(why) => cpe::Step::Failed {
                why: format!("{}: {why}", phase.name()),
                refused: false,
            },
        };
        match step {
            cpe::Step::Send(req) => {
                let to = match job {
                    Job::Cwmp(c) => {
                        if c.informed {
                            self.marks.file.get_or_insert(now);
                        }
                        c.to
                    }
                    Job::Profile(p) => p.to,
                };
                fx.http = Some((to, req));
                t.deadline = now + shared.http_timeout;
                fx
            }
            cpe::Step::Done => {
                self.marks.file.get_or_insert(now);
                self.marks.second = Some(now);
                fx.close = true;
                self.online(now, fx)
            }
            cpe::Step::Failed { why, refused } => {
                fx.close = true;
                self.http_failed(Setback { kind: why, refused }, now, rng, fx)
            }
        }
    }

    fn http_failed(
        &mut self,
        setback: Setback,
        now: Instant,
        rng: &mut Rng,
        mut fx: Effects,
    ) -> Effects {
        let Tail::Http(t) = &mut self.tail else {
            return fx;
        };
        fx.setbacks.push(setback);
        t.job = None;
        t.tries += 1;
        self.retries += 1;
        let wait = match self.kind {
            Kind::Router => cwmp_retry_wait(t.tries, rng),
            _ => doubling(Duration::from_secs(2), t.tries, Duration::from_secs(32)),
        };
        t.retry_at = Some(now + wait);
        fx
    }

    /// A datagram to the device's address.
    pub fn on_datagram(
        &mut self,
        shared: &Shared,
        from: SocketAddrV4,
        bytes: &[u8],
        now: Instant,
        send: &mut dyn FnMut(SocketAddrV4, &[u8]),
    ) -> Effects {
        let fx = Effects::default();
        match (&mut self.tail, self.phase) {
            (Tail::Cm(t), Phase::File) => {
                if from.ip() != t.tftp_server.ip() || from.port() == TIME_PORT {
                    return fx;
                }
                let Some(x) = t.transfer.as_mut() else {
                    return fx;
                };
                let step = x.on_datagram(from, bytes, now);
                self.after_transfer(shared, step, now, send, fx)
            }
            (Tail::Cm(t), Phase::Time) => {
                if from != t.time_server || bytes.len() != 4 {
                    return fx;
                }
                self.marks.second = Some(now);
                // The modem tells the operator it is up; nothing answers syslog.
                let msg = format!(
                    "<134>provd-storm cm-{}: registration complete",
                    crate::mta::msg::mac12(self.who.mac)
                );
                send(t.log_server, msg.as_bytes());
                self.online(now, fx)
            }
            (Tail::Mta(t), Phase::Flow) => {
                let Some(f) = t.flow.as_mut() else {
                    return fx;
                };
                let p = f.on_datagram(&t.setup, from, bytes, now, send);
                self.after_flow(p, now, fx)
            }
            _ => fx,
        }
    }

    /// The server's SET for this MTA came on the agent port (and was answered there).
    pub fn on_set(
        &mut self,
        url: Option<&[u8]>,
        hash: Option<&[u8]>,
        now: Instant,
        send: &mut dyn FnMut(SocketAddrV4, &[u8]),
    ) -> Effects {
        let fx = Effects::default();
        let (Tail::Mta(t), Phase::Flow) = (&mut self.tail, self.phase) else {
            return fx;
        };
        let Some(f) = t.flow.as_mut() else {
            return fx;
        };
        let p = f.on_set(&t.setup, url, hash, now, send);
        if p == Progress::Running {
            self.marks.file.get_or_insert(now);
        }
        self.after_flow(p, now, fx)
    }

    /// Time passed.
    pub fn on_tick(
        &mut self,
        shared: &Shared,
        relays: &[Relay],
        now: Instant,
        rng: &mut Rng,
        send: &mut dyn FnMut(SocketAddrV4, &[u8]),
    ) -> Effects {
        let mut fx = Effects::default();
        let relay = &relays[self.relay];
        match self.phase {
            Phase::Off if now >= self.power_on => {
                self.phase = Phase::Dhcp;
                self.dhcp = Some(Client::start(self.index, &self.who, relay, now, rng));
                fx.dhcp = true;
            }
            Phase::Dhcp => {
                if let Some(c) = self.dhcp.as_mut() {
                    fx.dhcp = c.on_tick(&self.who, relay, now, rng);
                }
            }
            Phase::File => {
                let Tail::Cm(t) = &mut self.tail else {
                    return fx;
                };
                match t.transfer.as_mut() {
                    Some(x) => {
                        let step = x.on_tick(now);
                        return self.after_transfer(shared, step, now, send, fx);
                    }
                    None if t.retry_at.is_some_and(|r| now >= r) => {
                        t.retry_at = None;
                        start_transfer(t, shared, now, send);
                    }
                    None => {}
                }
            }
            Phase::Time => {
                let Tail::Cm(t) = &mut self.tail else {
                    return fx;
                };
                if now >= t.time_resend_at {
                    send_time_request(t, now, send);
                }
            }
            Phase::Flow => {
                let Tail::Mta(t) = &mut self.tail else {
                    return fx;
                };
                match t.flow.as_mut() {
                    Some(f) => {
                        let p = f.on_tick(&t.setup, now, send);
                        return self.after_flow(p, now, fx);
                    }
                    None if t.retry_at.is_some_and(|r| now >= r) => {
                        t.retry_at = None;
                        let k = flow_key(self.index, t.tries);
                        t.flow = Some(Flow::start(&t.setup, k, self.who.mac, now, send));
                    }
                    None => {}
                }
            }
            Phase::Acs | Phase::Profile => {
                let Tail::Http(t) = &mut self.tail else {
                    return fx;
                };
                match &t.job {
                    Some(_) if now >= t.deadline => {
                        fx.close = true;
                        let kind = format!("{}: no answer in time", self.phase.name());
                        return self.http_failed(
                            Setback {
                                kind,
                                refused: false,
                            },
                            now,
                            rng,
                            fx,
                        );
                    }
                    None if t.retry_at.is_some_and(|r| now >= r) => {
                        t.retry_at = None;
                        return self.start_job(shared, now, fx);
                    }
                    _ => {}
                }
            }
            _ => {}
        }
        fx
    }

    fn after_transfer(
        &mut self,
        shared: &Shared,
        step: Step,
        now: Instant,
        send: &mut dyn FnMut(SocketAddrV4, &[u8]),
        mut fx: Effects,
    ) -> Effects {
        let Tail::Cm(t) = &mut self.tail else {
            return fx;
        };
        let Some(x) = t.transfer.as_mut() else {
            return fx;
        };
        let failure = match step {
            Step::Idle => return fx,
            Step::Send => {
                send(x.peer(), x.outgoing());
                return fx;
            }
            Step::Failed { send: tell } => {
                if tell {
                    send(x.peer(), x.outgoing());
                }
                let f = x
                    .failure()
                    .cloned()
                    .unwrap_or(transfer::Failure::Protocol("failed".into()));
                setback_of(&f)
            }
            Step::Finished => {
                send(x.peer(), x.outgoing());
                match x.delivered().and_then(|d| d.content) {
                    Some(bytes) => match check_cm_file(&bytes, &shared.shared_secret) {
                        Ok(()) => {
                            t.transfer = None;
                            self.marks.file = Some(now);
                            self.phase = Phase::Time;
                            t.time_sends = 0;
                            send_time_request(t, now, send);
                            return fx;
                        }
                        Err(why) => Setback {
                            kind: why,
                            refused: false,
                        },
                    },
                    None => setback_of(
                        x.failure()
                            .unwrap_or(&transfer::Failure::Protocol("no content".into())),
                    ),
                }
            }
        };
        fx.setbacks.push(failure);
        t.transfer = None;
        t.tries += 1;
        self.retries += 1;
        if t.tries >= TFTP_TRIES {
            return self.back_to_dhcp(now, fx);
        }
        t.retry_at = Some(now + doubling(Duration::from_secs(1), t.tries, Duration::from_secs(16)));
        fx
    }

    fn after_flow(&mut self, p: Progress, now: Instant, mut fx: Effects) -> Effects {
        let Tail::Mta(t) = &mut self.tail else {
            return fx;
        };
        match p {
            Progress::Running | Progress::Ignored => {
                if let Some(f) = &t.flow
                    && f.fetched_at.is_some()
                {
                    self.marks.second.get_or_insert(now);
                }
                fx
            }
            Progress::Completed(_) => {
                self.marks.second.get_or_insert(now);
                t.flow = None;
                self.online(now, fx)
            }
            Progress::Failed(f) => {
                fx.setbacks.push(Setback {
                    refused: matches!(&f, flow::Failure::Tftp(x) if is_refusal(x)),
                    kind: format!("MTA flow: {}", f.kind()),
                });
                t.flow = None;
                t.tries += 1;
                self.retries += 1;
                t.retry_at =
                    Some(now + doubling(Duration::from_secs(2), t.tries, Duration::from_secs(32)));
                fx
            }
        }
    }

    fn online(&mut self, now: Instant, mut fx: Effects) -> Effects {
        self.phase = Phase::Online;
        self.marks.online = Some(now);
        self.tail = Tail::None;
        fx.online = true;
        fx
    }

    fn back_to_dhcp(&mut self, now: Instant, fx: Effects) -> Effects {
        self.redhcp += 1;
        self.tail = Tail::None;
        self.lease = None;
        self.phase = Phase::Off;
        // It reboots: its DHCP starts at the next tick.
        self.power_on = now;
        self.dhcp = None;
        fx
    }
}

fn start_transfer(
    t: &mut CmTail,
    shared: &Shared,
    now: Instant,
    send: &mut dyn FnMut(SocketAddrV4, &[u8]),
) {
    let x = Transfer::start(
        &Setup {
            server: t.tftp_server,
            mode: "octet",
            asked: shared.tftp,
            keep_content: true,
            sha1: false,
            timeout: shared.tftp_timeout,
            retries: shared.tftp_retries,
        },
        &t.file,
        now,
    );
    send(x.peer(), x.outgoing());
    t.transfer = Some(x);
}

fn send_time_request(t: &mut CmTail, now: Instant, send: &mut dyn FnMut(SocketAddrV4, &[u8])) {
    t.time_sends += 1;
    t.time_resend_at = now
        + doubling(
            Duration::from_secs(1),
            t.time_sends,
            Duration::from_secs(16),
        );
    // RFC 868 over UDP: any datagram asks; the answer is 4 bytes.
    send(t.time_server, &[]);
}

/// A refusal the device is meant to retry: ERROR 3 ("disk full or allocation exceeded", what a
/// server out of transfer slots sends) or an ERROR whose text says it is busy.
fn is_refusal(f: &transfer::Failure) -> bool {
    match f {
        transfer::Failure::Server { code, msg } => {
            *code == 3 || msg.to_ascii_lowercase().contains("too many")
        }
        _ => false,
    }
}

fn setback_of(f: &transfer::Failure) -> Setback {
    Setback {
        kind: format!("TFTP: {}", f.kind()),
        refused: is_refusal(f),
    }
}

/// The checks a modem makes of its config file: it decodes, its CM MIC is the MD5 of what
/// precedes it, and its CMTS MIC verifies with the shared secret.
pub fn check_cm_file(bytes: &[u8], secret: &[u8]) -> Result<(), String> {
    use provd_docsis::Check;
    let v = provd_docsis::verify(bytes, Some(secret))
        .map_err(|e| format!("config file does not decode: {e}"))?;
    if v.kind != provd_docsis::FileKind::Cm {
        return Err("config file is not a CM file".into());
    }
    if !matches!(v.cm_mic, Check::Verified { .. }) {
        return Err("config file CM MIC wrong or absent".into());
    }
    if !matches!(v.cmts_mic, Check::Verified { .. }) {
        return Err("config file CMTS MIC wrong or absent".into());
    }
    Ok(())
}

/// The key of device `index`'s flow on try `tries`: its request ids are distinct per device and
/// per try (devices fit in 20 bits).
fn flow_key(index: u32, tries: u32) -> u64 {
    u64::from(index) + (u64::from(tries) << 20)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doubling_caps() {
        let s = Duration::from_secs;
        let got: Vec<_> = (1..=7)
            .map(|n| doubling(s(1), n, s(16)).as_secs())
            .collect();
        assert_eq!(got, [1, 2, 4, 8, 16, 16, 16]);
        assert_eq!(doubling(s(2), 1, s(32)), s(2));
        assert_eq!(doubling(s(2), 9, s(32)), s(32));
    }

    #[test]
    fn the_cwmp_retry_wait_doubles_within_its_window() {
        let mut rng = Rng::new(7);
        for (n, lo) in [(1u32, 5u64), (2, 10), (3, 20), (10, 2560), (12, 2560)] {
            for _ in 0..200 {
                let w = cwmp_retry_wait(n, &mut rng).as_millis() as u64;
                assert!((lo * 1000..lo * 2000).contains(&w), "n={n}: {w} ms");
            }
        }
    }

    #[test]
    fn a_cm_file_is_checked_with_the_shared_secret() {
        let text = "Main\n{\n\tNetworkAccess 1;\n\tMaxCPE 2;\n}\n";
        let file = provd_docsis::text::parse(text).unwrap();
        let good = provd_docsis::encode_cm(&file, b"secret").unwrap();
        assert_eq!(check_cm_file(&good, b"secret"), Ok(()));
        let err = check_cm_file(&good, b"other").unwrap_err();
        assert!(err.contains("CMTS MIC"), "{err}");
        let mut broken = good.clone();
        broken[2] ^= 1;
        assert!(check_cm_file(&broken, b"secret").is_err());
        assert!(check_cm_file(b"\x03", b"secret").is_err());
    }

    #[test]
    fn refusals_are_error_3_or_too_many() {
        let server = |code, msg: &str| transfer::Failure::Server {
            code,
            msg: msg.into(),
        };
        assert!(is_refusal(&server(3, "Too many transfers")));
        assert!(is_refusal(&server(0, "too many transfers in flight")));
        assert!(!is_refusal(&server(1, "File not found")));
        assert!(!is_refusal(&transfer::Failure::Timeout {
            retries: 3,
            blocks: 0
        }));
    }
}
