//! The engine: every MTA's record and flow, the dispatch of every datagram to them, the SNMP
//! requests the server sends and their retransmissions, the provisioning timers.
//!
//! Timers live in one ordered set holding exactly one entry per active flow (the earlier of its
//! provisioning deadline and its request's retransmission time), so [`Engine::next_deadline`]
//! is a lookup and [`Engine::poll_timeouts`] touches only what is due. Responses find their
//! flow through a request-id index; finished records are kept in finishing order so the oldest
//! can be evicted.

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::net::{Ipv4Addr, SocketAddrV4};
use std::time::Duration;

use provd_snmp::{
    DecodeError, Message, Oid, Pdu, PduType, Pdus, Value, VarBind, Version, response_to,
};
use thiserror::Error;

use crate::config::{Config, ConfigError, ExpectStatus, MibPolicy, ms};
use crate::counters::Counters;
use crate::dedupe::Dedupe;
use crate::flow::{Active, Flow, ProvState, Request, RequestKind, State, Step};
use crate::notification::{Enrollment, Notification, Status};
use crate::oids::Mib;
use crate::record::{MAX_TEXT, Record, text};
use crate::{Mac, Millis};

/// What the DHCP side reports when it ACKs an MTA (steps MTA-1..4). Report the ACKs that
/// (re)start provisioning: the answer to a REQUEST in SELECTING or INIT-REBOOT state. A renewal
/// or rebind of a provisioned MTA would restart its flow, which then waits for an enrollment or
/// a file fetch that never comes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Binding {
    pub mac: Mac,
    /// The leased address: where the engine's GET/SET go (until an INFORM shows another).
    pub addr: Ipv4Addr,
    /// The relay agent (the CMTS); unspecified when not relayed.
    pub giaddr: Ipv4Addr,
    /// From option 122.6.
    pub flow: Flow,
    /// The file named in the ACK (siaddr + file): the config file of the BASIC flows.
    pub file_name: Option<String>,
    /// Option 122.8, when sent: replaces [`Config::provisioning_timer`] for this flow.
    pub provisioning_timer: Option<Duration>,
}

/// Which of the engine's two sockets a datagram leaves from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FromPort {
    /// The notification port (162): answers to the INFORMs that arrived there.
    Notify,
    /// The engine's request port: GETs, SETs, and answers to INFORMs that arrived there.
    Requests,
}

/// One datagram to send. The bytes are borrowed from the engine for the duration of the call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Outgoing<'a> {
    pub to: SocketAddrV4,
    pub from_port: FromPort,
    pub bytes: &'a [u8],
}

impl Outgoing<'_> {
    pub fn to_vec(&self) -> Vec<u8> {
        self.bytes.to_vec()
    }
}

/// What the caller needs to know to render an MTA's config file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceFacts {
    pub flow: Option<Flow>,
    pub mib: Mib,
    pub addr: Ipv4Addr,
    pub cmts: Option<Ipv4Addr>,
    pub unknown_dhcp: bool,
    pub sw_version: Option<String>,
    /// pktcMtaDevTypeIdentifier (the option 60 string: capabilities, line count).
    pub type_identifier: Option<String>,
    pub sys_descr: Option<String>,
    /// pktcMtaDevEndPntCount, when the capability GET is enabled and answered.
    pub endpoints: Option<u32>,
}

/// What the engine tells the caller. Drain with [`Engine::poll_event`] after each call.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Event {
    /// Render the MTA's config file (MTA-18), then call [`Engine::file_ready`] with its URL and
    /// hash, or [`Engine::file_failed`].
    NeedFile {
        mac: Mac,
        correlation_id: Option<u32>,
        device: DeviceFacts,
    },
    /// The flow ended: with the state the MTA reported, or `None` when a flow that does not
    /// require the status INFORM fetched its file. A status INFORM arriving after that
    /// updates the record and is reported here again.
    Completed { mac: Mac, state: Option<ProvState> },
    /// The flow ended in an error at `step` (the MTA refused the SET: `reason` is the
    /// error-status name; or `file_failed`'s reason).
    Failed {
        mac: Mac,
        step: Step,
        reason: String,
    },
    /// `step` never happened in time.
    TimedOut { mac: Mac, step: Step },
    /// A datagram changed nothing (it was counted too); for rate-limited logging.
    Rejected {
        src: SocketAddrV4,
        reason: RejectReason,
    },
}

/// Why a datagram was not acted on.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum RejectReason {
    /// An INFORM or trap with a community not accepted: not answered.
    BadCommunity,
    /// Not an SNMP message.
    Undecodable(DecodeError),
    /// SNMPv3 (the SECURE flow): no USM keys here.
    Snmpv3,
    /// An SNMP PDU the engine has no use for (GET, SET, v1 trap, report).
    UnexpectedPdu,
    /// An enrollment or status without a six-byte MAC, or a status without a state.
    InvalidNotification,
    /// An enrollment while `max_flows` flows are in progress: answered, nothing started.
    TooManyFlows,
    /// A Response to no request in flight (late, or from an address we did not ask).
    UnmatchedResponse,
    /// An enrollment or status not from the address holding the MTA's DHCP lease (and
    /// [`Config::accept_unknown_dhcp`] is off): answered, nothing done.
    NotLeaseHolder,
}

impl RejectReason {
    pub fn name(&self) -> &'static str {
        match self {
            RejectReason::BadCommunity => "bad_community",
            RejectReason::Undecodable(_) => "undecodable",
            RejectReason::Snmpv3 => "snmpv3",
            RejectReason::UnexpectedPdu => "unexpected_pdu",
            RejectReason::InvalidNotification => "invalid_notification",
            RejectReason::TooManyFlows => "too_many_flows",
            RejectReason::UnmatchedResponse => "unmatched_response",
            RejectReason::NotLeaseHolder => "not_lease_holder",
        }
    }
}

/// Why [`Engine::on_dhcp`] started no flow.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum Refused {
    #[error("{max} provisioning flows already in progress")]
    TooManyFlows { max: usize },
}

/// Why [`Engine::file_ready`] or [`Engine::file_failed`] was not taken.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum FileError {
    #[error("no MTA {mac} known")]
    UnknownMta { mac: Mac },
    /// The flow restarted, ended, or never asked (`state` is where it is).
    #[error("MTA {mac} is not waiting for a file (state {state})")]
    NotWaiting { mac: Mac, state: &'static str },
    #[error("a {len}-byte hash does not fit {mib} pktcMtaDevProvConfigHash")]
    HashLength { len: usize, mib: Mib },
    #[error("URL of {len} bytes, pktcMtaDevConfigFile holds at most {max}")]
    UrlTooLong { len: usize, max: usize },
}

/// Where the DHCP side says an MTA's lease is now (see [`Engine::set_lease_lookup`]).
pub struct LeaseLookup(Box<dyn Fn(Mac) -> Option<Ipv4Addr> + Send>);

impl std::fmt::Debug for LeaseLookup {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("LeaseLookup")
    }
}

/// One MTA: its record, and the run-time state of its flow while one is in progress.
#[derive(Debug)]
struct Entry {
    record: Record,
    active: Option<Box<Active>>,
    /// Key in `Engine::finished` while the record is finished.
    finished: Option<u64>,
}

/// The provisioning flows of every MTA, for one SNMP entity.
///
/// # Flows
/// * **BASIC.1**: DHCP ([`on_dhcp`](Engine::on_dhcp)), then the file fetch
///   ([`on_file_fetched`](Engine::on_file_fetched)) completes the flow.
/// * **BASIC.2**: as BASIC.1, then the status INFORM completes it.
/// * **HYBRID.1/2**: DHCP, enrollment INFORM, optionally the capability GET, then
///   [`Event::NeedFile`]; [`file_ready`](Engine::file_ready) makes the engine SET
///   pktcMtaDevConfigFile.0 and pktcMtaDevProvConfigHash.0 in one PDU to the MTA's UDP 161
///   (retransmitted unchanged, same request-id, after 1, 2, 4, 8 s by default; given up 16 s
///   after the last); the acknowledged SET, the file fetch and (HYBRID.2) the status INFORM
///   follow.
///
/// Whether a flow requires the status INFORM is [`Config::expect_status`]: by default the
/// `.2` flows do. A flow that does not require it completes at the file fetch
/// ([`State::CompleteNoStatus`]), so it holds no flow slot for the rest of the provisioning
/// timer; a status INFORM that comes anyway still updates its record. A flow that requires it
/// and does not get it before the provisioning timer ends in [`State::TimedOut`]`(Status)`.
///
/// # INFORMs
/// Every INFORM with an accepted community ([`Config::inform_communities`]) is answered at
/// once, before anything else, whatever it carries and whatever the engine then does with it:
/// an MTA retransmits an unanswered INFORM and eventually fails its step. A wrong community
/// gets no answer. A repeated INFORM (same source, request-id and bytes within
/// [`Config::inform_dedupe_window`]) is answered again and otherwise ignored; an enrollment
/// with the correlation id the flow already enrolled with, and a status repeating the state
/// already recorded, are ignored too, so a flow never restarts on a retransmission. An
/// enrollment with another correlation id means the MTA rebooted: its flow restarts. One with
/// the same correlation id after that flow failed or timed out is an MTA still waiting (our SET
/// was lost, the file came too late): it gets another attempt.
///
/// # MTAs the DHCP side never reported
/// An INFORM from an MTA without a DHCP binding (another DHCP server, a lost report, an engine
/// restarted mid-flow) is answered like any other and recorded, in a record keyed by the MAC
/// in the INFORM and marked [`Record::unknown_dhcp`] with no flow. An enrollment then runs the
/// HYBRID flow toward the INFORM's source address, which is where the MTA's agent answers; its
/// status INFORM is not required. A status INFORM records the final state. Whatever the
/// binding said, the SET goes to the address the enrollment came from.
///
/// # MIB
/// The OIDs written to an MTA are those of the MIB its enrollment used (snmpTrapOID.0 under
/// `1.3.6.1.2.1.140` or `1.3.6.1.4.1.4491.2.2.1`) unless [`Config::mib`] forces one; objects
/// in a notification are looked up in that MIB first and then in the other.
///
/// # Bounds
/// At most [`Config::max_flows`] flows are in progress, each holding at most one request;
/// finished records are kept for the operator up to [`Config::max_completed`], the oldest
/// finished evicted first. Records are a few hundred bytes. Events queue until drained with
/// [`poll_event`](Engine::poll_event): drain after every call.
#[derive(Debug)]
pub struct Engine {
    inform_communities: Vec<Vec<u8>>,
    set_community: Vec<u8>,
    get_community: Vec<u8>,
    notify_port: u16,
    agent_port: u16,
    timeout_ms: u64,
    backoff: u64,
    max_retries: u8,
    get_capabilities: bool,
    max_flows: usize,
    max_completed: usize,
    accept_unknown_dhcp: bool,
    lease_of: Option<LeaseLookup>,
    provisioning_ms: u64,
    expect_status: ExpectStatus,
    mib_policy: MibPolicy,

    entries: HashMap<Mac, Entry>,
    /// Exactly one `(due, mac)` per active flow, at its `Active::timer`.
    timers: BTreeSet<(Millis, Mac)>,
    /// Request-id -> the flow whose request it is.
    requests: HashMap<i32, Mac>,
    /// Finished records, oldest first.
    finished: BTreeMap<u64, Mac>,
    next_finished: u64,
    next_request_id: i32,
    active: usize,
    dedupe: Dedupe,
    events: VecDeque<Event>,
    /// Flows that ended since the last [`Engine::take_flow_ends`], at most [`MAX_FLOW_ENDS`].
    flow_ends: Vec<FlowEnd>,
    /// Answers to INFORMs are encoded here.
    scratch: Vec<u8>,
    counters: Counters,
}

/// An active flow that ended (completed, failed or timed out), for the shell's flow duration
/// histogram; see [`Engine::take_flow_ends`]. A late status INFORM for a flow already ended is
/// no second end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FlowEnd {
    pub flow: Option<Flow>,
    /// `pass` (the MTA reported a pass, or the flow needs no status and fetched its file),
    /// `fail` (a failure status, a refused SET, no file) or `timeout`.
    pub outcome: &'static str,
    /// The flow's first step: the caller's clock, as passed in.
    pub started: Millis,
}

/// At most this many [`FlowEnd`]s wait for [`Engine::take_flow_ends`]; past it, more are not
/// kept, so a caller that never takes them costs a bounded few kilobytes.
pub const MAX_FLOW_ENDS: usize = 1024;

impl Engine {
    /// Flows that ended since the last call, for the caller to time against its clock (it
    /// calls right after the call that ended them).
    pub fn take_flow_ends(&mut self) -> std::vec::Drain<'_, FlowEnd> {
        self.flow_ends.drain(..)
    }

    pub fn new(config: Config) -> Result<Engine, ConfigError> {
        config.validate()?;
        Ok(Engine {
            inform_communities: config
                .inform_communities
                .iter()
                .map(|c| c.as_bytes().to_vec())
                .collect(),
            set_community: config.set_community.into_bytes(),
            get_community: config.get_community.into_bytes(),
            notify_port: config.notify_port,
            agent_port: config.agent_port,
            timeout_ms: ms(config.initial_timeout),
            backoff: u64::from(config.backoff),
            max_retries: config.max_retries,
            get_capabilities: config.get_capabilities,
            max_flows: config.max_flows,
            max_completed: config.max_completed,
            accept_unknown_dhcp: config.accept_unknown_dhcp,
            lease_of: None,
            provisioning_ms: ms(config.provisioning_timer),
            expect_status: config.expect_status,
            mib_policy: config.mib,
            entries: HashMap::new(),
            timers: BTreeSet::new(),
            requests: HashMap::new(),
            finished: BTreeMap::new(),
            next_finished: 0,
            next_request_id: config.first_request_id,
            active: 0,
            dedupe: Dedupe::new(
                ms(config.inform_dedupe_window),
                config.inform_dedupe_capacity,
            ),
            events: VecDeque::new(),
            flow_ends: Vec::new(),
            scratch: Vec::with_capacity(512),
            counters: Counters::default(),
        })
    }

    /// Asks `lease_of` where an MTA's DHCP lease is when a notification claims it, instead
    /// of the address of its last [`Engine::on_dhcp`]: the DHCP side's table survives what
    /// the engine does not (a restart mid-flow, a report lost).
    pub fn set_lease_lookup(
        &mut self,
        lease_of: impl Fn(Mac) -> Option<Ipv4Addr> + Send + 'static,
    ) {
        self.lease_of = Some(LeaseLookup(Box::new(lease_of)));
    }

    pub fn counters(&self) -> &Counters {
        &self.counters
    }

    /// The record of one MTA, current or last flow.
    pub fn record(&self, mac: Mac) -> Option<&Record> {
        self.entries.get(&mac).map(|e| &e.record)
    }

    /// Every record kept, in no particular order.
    pub fn records(&self) -> impl Iterator<Item = &Record> {
        self.entries.values().map(|e| &e.record)
    }

    /// Records kept: at most `max_flows + max_completed`.
    pub fn records_len(&self) -> usize {
        self.entries.len()
    }

    /// Flows in progress.
    pub fn active_flows(&self) -> usize {
        self.active
    }

    /// The next event, oldest first.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// When [`Engine::poll_timeouts`] next has work.
    pub fn next_deadline(&self) -> Option<Millis> {
        self.timers.first().map(|(t, _)| *t)
    }

    /// The MTA's DHCP ACK: opens its flow, or restarts it when the binding differs from the
    /// flow's (a repeated identical ACK changes nothing).
    pub fn on_dhcp(&mut self, now: Millis, b: Binding) -> Result<(), Refused> {
        self.counters.dhcp_bindings += 1;
        let cmts = (!b.giaddr.is_unspecified()).then_some(b.giaddr);
        let file = b.file_name.as_deref().map(|f| text(f.as_bytes()));
        let deadline = now.plus(b.provisioning_timer.map_or(self.provisioning_ms, ms));
        match self.entries.get_mut(&b.mac) {
            Some(e) if e.active.is_some() && e.record.unknown_dhcp => {
                // The INFORM outran the DHCP report: same boot, fill in what DHCP knows.
                let r = &mut e.record;
                r.unknown_dhcp = false;
                r.flow = Some(b.flow);
                r.cmts = cmts;
                if r.config_file.is_none() {
                    r.config_file = file;
                }
                r.stamp(Step::Dhcp, now);
                return Ok(());
            }
            Some(e)
                if e.active.is_some()
                    && e.record.flow == Some(b.flow)
                    && e.record.addr == b.addr
                    && e.record.cmts == cmts
                    && e.record.config_file == file =>
            {
                self.counters.dhcp_duplicate += 1;
                return Ok(());
            }
            Some(e) if e.active.is_some() => {
                self.deactivate(b.mac);
                self.restart(b.mac);
            }
            Some(_) => {
                self.check_capacity()?;
                self.restart(b.mac);
            }
            None => {
                self.check_capacity()?;
                self.entries.insert(
                    b.mac,
                    Entry {
                        record: Record::new(b.mac, b.addr),
                        active: None,
                        finished: None,
                    },
                );
            }
        }
        let Some(e) = self.entries.get_mut(&b.mac) else {
            return Ok(());
        };
        let r = &mut e.record;
        r.flow = Some(b.flow);
        r.addr = b.addr;
        r.cmts = cmts;
        r.config_file = file;
        r.unknown_dhcp = false;
        r.stamp(Step::Dhcp, now);
        self.activate(b.mac, deadline);
        Ok(())
    }

    /// One datagram for the SNMP entity: an INFORM (or trap) on `local_port`, or a Response
    /// to the engine's GET/SET. Answers go to `out`; what happened to the flows, to
    /// [`Engine::poll_event`].
    pub fn on_datagram(
        &mut self,
        now: Millis,
        src: SocketAddrV4,
        local_port: u16,
        bytes: &[u8],
        out: &mut impl FnMut(Outgoing<'_>),
    ) {
        self.on_datagram_dyn(now, src, local_port, bytes, out);
    }

    fn on_datagram_dyn(
        &mut self,
        now: Millis,
        src: SocketAddrV4,
        local_port: u16,
        bytes: &[u8],
        out: &mut dyn FnMut(Outgoing<'_>),
    ) {
        self.counters.datagrams += 1;
        let msg = match Message::decode(bytes) {
            Ok(m) => m,
            Err(e) => {
                self.counters.count_undecodable(e.name());
                self.reject(src, RejectReason::Undecodable(e));
                return;
            }
        };
        let (community, pdu) = match &msg {
            Message::Community {
                community,
                pdu: Pdus::Pdu(pdu),
                ..
            } => (community, pdu),
            Message::V3 { .. } => {
                self.counters.snmpv3 += 1;
                self.reject(src, RejectReason::Snmpv3);
                return;
            }
            Message::Community { .. } => {
                // An SNMPv1 Trap-PDU: no PacketCable MTA provisions with one.
                self.counters.unexpected_pdus += 1;
                self.reject(src, RejectReason::UnexpectedPdu);
                return;
            }
        };
        match pdu.kind {
            PduType::InformRequest => {
                self.counters.informs_received += 1;
                if !self.community_ok(src, community) {
                    return;
                }
                let from_port = if local_port == self.notify_port {
                    FromPort::Notify
                } else {
                    FromPort::Requests
                };
                self.scratch.clear();
                let answered =
                    response_to(&msg).is_some_and(|r| r.encode(&mut self.scratch).is_ok());
                if answered {
                    out(Outgoing {
                        to: src,
                        from_port,
                        bytes: &self.scratch,
                    });
                    self.counters.informs_answered += 1;
                }
                if self.dedupe.is_repeat(now, src, pdu.request_id, bytes) {
                    self.counters.informs_duplicate += 1;
                    return;
                }
                self.on_notification(now, src, pdu, out);
            }
            PduType::SnmpV2Trap => {
                // Unconfirmed: nothing to answer, nothing retransmitted, but the same news.
                self.counters.traps_received += 1;
                if self.community_ok(src, community) {
                    self.on_notification(now, src, pdu, out);
                }
            }
            PduType::Response => self.on_response(now, src, pdu),
            _ => {
                self.counters.unexpected_pdus += 1;
                self.reject(src, RejectReason::UnexpectedPdu);
            }
        }
    }

    /// Whether a notification's community is accepted; if not, counts and reports it.
    fn community_ok(&mut self, src: SocketAddrV4, community: &[u8]) -> bool {
        if self.inform_communities.iter().any(|c| c == community) {
            return true;
        }
        self.counters.bad_community += 1;
        self.reject(src, RejectReason::BadCommunity);
        false
    }

    fn on_notification(
        &mut self,
        now: Millis,
        src: SocketAddrV4,
        pdu: &Pdu,
        out: &mut dyn FnMut(Outgoing<'_>),
    ) {
        match Notification::read(pdu) {
            Some(Notification::Enrollment(e)) => self.on_enrollment(now, src, e, out),
            Some(Notification::Status(s)) => self.on_status(now, src, s),
            None => self.counters.other_notifications += 1,
        }
    }

    /// MTA-15.
    fn on_enrollment(
        &mut self,
        now: Millis,
        src: SocketAddrV4,
        e: Enrollment,
        out: &mut dyn FnMut(Outgoing<'_>),
    ) {
        let Some(mac) = e.mac else {
            self.counters.notifications_invalid += 1;
            self.reject(src, RejectReason::InvalidNotification);
            return;
        };
        if !self.sent_by_lease_holder(mac, src) {
            return;
        }
        enum Go {
            New,
            Proceed,
            Restart,
            Reopen,
        }
        let go = match self.entries.get(&mac) {
            None => Go::New,
            Some(entry) => {
                let r = &entry.record;
                let same_boot =
                    r.steps.has(Step::Enrollment) && r.correlation_id == e.correlation_id;
                let gave_up = matches!(r.state, State::Failed { .. } | State::TimedOut(_));
                if same_boot && !gave_up {
                    // The same boot enrolling again (a new request-id for the same INFORM,
                    // or an MTA impatient for its SET): the flow is already on it, or done.
                    self.counters.enrollments_duplicate += 1;
                    return;
                }
                // After a failed or timed-out flow, the same boot enrolling again is an MTA
                // still waiting (our SET was lost, the file was late): another attempt.
                match (&entry.active, r.steps.has(Step::Enrollment)) {
                    (Some(_), false) => Go::Proceed,
                    (Some(_), true) => Go::Restart,
                    (None, _) => Go::Reopen,
                }
            }
        };
        let deadline = now.plus(self.provisioning_ms);
        match go {
            Go::New | Go::Reopen if self.active >= self.max_flows => {
                self.counters.too_many_flows += 1;
                self.reject(src, RejectReason::TooManyFlows);
                return;
            }
            Go::New => {
                let mut record = Record::new(mac, *src.ip());
                record.unknown_dhcp = true;
                self.counters.unknown_dhcp += 1;
                self.entries.insert(
                    mac,
                    Entry {
                        record,
                        active: None,
                        finished: None,
                    },
                );
                self.activate(mac, deadline);
            }
            Go::Proceed => {}
            Go::Restart | Go::Reopen => {
                self.deactivate(mac);
                self.restart(mac);
                self.activate(mac, deadline);
            }
        }
        self.counters.enrollments += 1;
        let mib = self.mib_policy.resolve(e.mib);
        let Some(entry) = self.entries.get_mut(&mac) else {
            return;
        };
        let r = &mut entry.record;
        if r.addr != *src.ip() && !r.unknown_dhcp && r.steps.has(Step::Dhcp) {
            r.note(format!(
                "enrollment from {}, DHCP leased {}: using {}",
                src.ip(),
                r.addr,
                src.ip()
            ));
        }
        r.addr = *src.ip();
        r.mib = Some(mib);
        r.correlation_id = e.correlation_id;
        r.sw_version = e.sw_version.or(r.sw_version.take());
        r.type_identifier = e.type_identifier.or(r.type_identifier.take());
        r.sys_descr = e.sys_descr.or(r.sys_descr.take());
        r.stamp(Step::Enrollment, now);
        if self.get_capabilities {
            r.state = State::Enrolled;
            r.stamp(Step::CapsRequest, now);
            let oids = mib.oids();
            let get = Message::get(
                Version::V2c,
                self.get_community.clone(),
                0,
                [
                    oids.end_pnt_count,
                    oids.sw_current_vers,
                    oids.type_identifier,
                ]
                .into_iter()
                .map(constant_oid),
            );
            self.counters.gets_sent += 1;
            self.send_request(now, mac, RequestKind::Caps, get, out);
        } else {
            self.ask_for_file(mac);
        }
    }

    /// MTA-25.
    /// Whether a notification claiming `mac` may act: it comes from the address the DHCP side
    /// leased to `mac`, or [`Config::accept_unknown_dhcp`] is on. Otherwise it is counted and
    /// rejected (it was answered already).
    fn sent_by_lease_holder(&mut self, mac: Mac, src: SocketAddrV4) -> bool {
        if self.accept_unknown_dhcp {
            return true;
        }
        let holds = match &self.lease_of {
            Some(LeaseLookup(lease_of)) => lease_of(mac) == Some(*src.ip()),
            None => self.entries.get(&mac).is_some_and(|e| {
                // Opened by on_dhcp (not by an INFORM), at the address it leased.
                !e.record.unknown_dhcp && e.record.addr == *src.ip()
            }),
        };
        if !holds {
            self.counters.not_lease_holder += 1;
            self.reject(src, RejectReason::NotLeaseHolder);
        }
        holds
    }

    fn on_status(&mut self, now: Millis, src: SocketAddrV4, s: Status) {
        let (Some(mac), Some(state)) = (s.mac, s.state) else {
            self.counters.notifications_invalid += 1;
            self.reject(src, RejectReason::InvalidNotification);
            return;
        };
        if !self.sent_by_lease_holder(mac, src) {
            return;
        }
        self.counters.count_status(state);
        if state == ProvState::IN_PROGRESS {
            // Not an outcome: the MTA is still at it, the flow waits on.
            return;
        }
        let Some(entry) = self.entries.get_mut(&mac) else {
            // Nothing known of this MTA: keep what it reported, as a finished record.
            let mut record = Record::new(mac, *src.ip());
            record.unknown_dhcp = true;
            record.correlation_id = s.correlation_id;
            record.stamp(Step::Status, now);
            self.counters.unknown_dhcp += 1;
            self.entries.insert(
                mac,
                Entry {
                    record,
                    active: None,
                    finished: None,
                },
            );
            self.finish(mac, State::Complete(state));
            self.events.push_back(Event::Completed {
                mac,
                state: Some(state),
            });
            return;
        };
        let r = &mut entry.record;
        if r.state == State::Complete(state) {
            self.counters.statuses_duplicate += 1;
            return;
        }
        match (r.correlation_id, s.correlation_id) {
            (Some(ours), Some(theirs)) if ours != theirs => r.note(format!(
                "status correlation id {theirs:#x} differs from the enrollment's {ours:#x}"
            )),
            (None, Some(theirs)) => r.correlation_id = Some(theirs),
            _ => {}
        }
        r.stamp(Step::Status, now);
        if entry.active.is_some() {
            self.finish(mac, State::Complete(state));
            self.counters.flows_completed += 1;
        } else {
            // A late status: the flow had ended (at the file fetch, or timed out).
            r.state = State::Complete(state);
        }
        self.events.push_back(Event::Completed {
            mac,
            state: Some(state),
        });
    }

    /// A Response to the engine's GET (MTA-17) or SET (MTA-19).
    fn on_response(&mut self, now: Millis, src: SocketAddrV4, pdu: &Pdu) {
        let matched = self.requests.get(&pdu.request_id).copied().and_then(|mac| {
            let active = self.entries.get_mut(&mac)?.active.as_mut()?;
            let req = active.request.as_ref()?;
            (req.id == pdu.request_id && req.to.ip() == src.ip()).then_some((mac, req.kind))
        });
        let Some((mac, kind)) = matched else {
            self.counters.responses_unmatched += 1;
            self.reject(src, RejectReason::UnmatchedResponse);
            return;
        };
        self.cancel_request(mac);
        let Some(entry) = self.entries.get_mut(&mac) else {
            return;
        };
        let r = &mut entry.record;
        match kind {
            RequestKind::Set if pdu.error_status.is_error() => {
                self.counters.sets_failed += 1;
                let reason = pdu.error_status.to_string();
                self.fail(mac, Step::SetAcked, reason);
            }
            RequestKind::Set => {
                self.counters.sets_acked += 1;
                r.stamp(Step::SetAcked, now);
                r.state = State::Configured;
                self.rearm(mac);
            }
            RequestKind::Caps => {
                r.stamp(Step::CapsResponse, now);
                if pdu.error_status.is_error() {
                    self.counters.gets_failed += 1;
                    r.note(format!("capability GET: {}", pdu.error_status));
                } else {
                    self.counters.gets_answered += 1;
                    let oids = r.mib.unwrap_or(Mib::Ietf).oids();
                    let found = |oid: &[u32]| pdu.get(oid).filter(|v| !v.is_exception());
                    if let Some(n) = found(oids.end_pnt_count).and_then(Value::as_i64) {
                        r.endpoints = u32::try_from(n).ok();
                    }
                    if let Some(s) = found(oids.sw_current_vers).and_then(Value::as_bytes) {
                        r.sw_version = Some(text(s));
                    }
                    if let Some(s) = found(oids.type_identifier).and_then(Value::as_bytes) {
                        r.type_identifier = Some(text(s));
                    }
                }
                self.ask_for_file(mac);
            }
        }
    }

    /// MTA-18 done: the file is at `url` with hash `hash` (SHA-1, or MD5 for a CableLabs-MIB
    /// MTA). Sends the SET (MTA-19).
    pub fn file_ready(
        &mut self,
        now: Millis,
        mac: Mac,
        url: String,
        hash: Vec<u8>,
        out: &mut impl FnMut(Outgoing<'_>),
    ) -> Result<(), FileError> {
        let mib = self.waiting_for_file(mac)?;
        if !mib.hash_lengths().contains(&hash.len()) {
            return Err(FileError::HashLength {
                len: hash.len(),
                mib,
            });
        }
        if url.len() > MAX_TEXT {
            return Err(FileError::UrlTooLong {
                len: url.len(),
                max: MAX_TEXT,
            });
        }
        self.counters.files_ready += 1;
        if let Some(entry) = self.entries.get_mut(&mac) {
            let r = &mut entry.record;
            r.config_file = Some(text(url.as_bytes()));
            r.stamp(Step::FileReady, now);
            r.stamp(Step::SetSent, now);
            r.state = State::SetSent;
        }
        let oids = mib.oids();
        let set = Message::set(
            Version::V2c,
            self.set_community.clone(),
            0,
            [
                VarBind::new(
                    constant_oid(oids.config_file),
                    Value::OctetString(url.into_bytes()),
                ),
                VarBind::new(
                    constant_oid(oids.prov_config_hash),
                    Value::OctetString(hash),
                ),
            ],
        );
        self.counters.sets_sent += 1;
        self.send_request(now, mac, RequestKind::Set, set, out);
        Ok(())
    }

    /// MTA-18 failed: no file can be made for this MTA. Ends its flow.
    pub fn file_failed(&mut self, _now: Millis, mac: Mac, reason: String) -> Result<(), FileError> {
        self.waiting_for_file(mac)?;
        self.counters.files_failed += 1;
        self.fail(mac, Step::FileReady, reason);
        Ok(())
    }

    fn waiting_for_file(&self, mac: Mac) -> Result<Mib, FileError> {
        let entry = self
            .entries
            .get(&mac)
            .ok_or(FileError::UnknownMta { mac })?;
        if entry.active.is_none() || entry.record.state != State::FileRequested {
            return Err(FileError::NotWaiting {
                mac,
                state: entry.record.state.name(),
            });
        }
        Ok(entry.record.mib.unwrap_or(Mib::Ietf))
    }

    /// The TFTP/HTTP side saw the MTA fetch its config file (MTA-22/23). False if the MTA
    /// has no record.
    pub fn on_file_fetched(&mut self, now: Millis, mac: Mac) -> bool {
        let Some(entry) = self.entries.get_mut(&mac) else {
            self.counters.files_fetched_unknown += 1;
            return false;
        };
        self.counters.files_fetched += 1;
        entry.record.stamp(Step::FileFetched, now);
        if entry.active.is_none() {
            return true;
        }
        let flow = entry.record.flow;
        let basic = flow.is_some_and(|f| !f.is_hybrid());
        let configured = match entry.record.state {
            State::Waiting => basic,
            State::Configured => true,
            State::SetSent => {
                // The MTA only fetches after taking the SET: its Response was lost.
                self.cancel_request(mac);
                true
            }
            _ => false,
        };
        if !configured {
            // A HYBRID MTA fetching before we pointed it at a file: noted by the step only.
            return true;
        }
        if self.expect_status.for_flow(flow) {
            if let Some(entry) = self.entries.get_mut(&mac) {
                entry.record.state = State::Configured;
            }
            self.rearm(mac);
        } else {
            self.finish(mac, State::CompleteNoStatus);
            self.counters.flows_completed += 1;
            self.events.push_back(Event::Completed { mac, state: None });
        }
        true
    }

    /// Runs every timer due at `now`: retransmissions, requests given up, provisioning
    /// timers.
    pub fn poll_timeouts(&mut self, now: Millis, out: &mut impl FnMut(Outgoing<'_>)) {
        while let Some(&(due, mac)) = self.timers.first() {
            if due > now {
                break;
            }
            self.timers.pop_first();
            let Some(active) = self.entries.get_mut(&mac).and_then(|e| e.active.as_mut()) else {
                debug_assert!(false, "timer without an active flow");
                continue;
            };
            active.timer = None;
            if active.deadline <= now {
                self.expire(mac);
                continue;
            }
            if let Some(req) = active.request.as_mut().filter(|r| r.next <= now) {
                if req.retries < self.max_retries {
                    out(Outgoing {
                        to: req.to,
                        from_port: FromPort::Requests,
                        bytes: &req.bytes,
                    });
                    req.retries += 1;
                    req.rto = req.rto.saturating_mul(self.backoff);
                    req.next = now.plus(req.rto);
                    match req.kind {
                        RequestKind::Set => self.counters.sets_retransmitted += 1,
                        RequestKind::Caps => self.counters.gets_retransmitted += 1,
                    }
                } else {
                    let kind = req.kind;
                    self.cancel_request(mac);
                    match kind {
                        RequestKind::Set => {
                            self.counters.sets_timed_out += 1;
                            self.time_out(mac, Step::SetAcked);
                            continue;
                        }
                        RequestKind::Caps => {
                            // The capabilities are a nicety: go on without them.
                            self.counters.gets_failed += 1;
                            if let Some(entry) = self.entries.get_mut(&mac) {
                                entry.record.note("capability GET unanswered");
                            }
                            self.ask_for_file(mac);
                            continue;
                        }
                    }
                }
            }
            self.rearm(mac);
        }
    }

    /// The provisioning timer ran out: the flow ends at the first step it lacks.
    fn expire(&mut self, mac: Mac) {
        let Some(r) = self.entries.get(&mac).map(|e| &e.record) else {
            return;
        };
        let missing = match r.state {
            State::Waiting if r.flow.is_some_and(|f| !f.is_hybrid()) => Step::FileFetched,
            State::Waiting => Step::Enrollment,
            State::Enrolled => Step::CapsResponse,
            State::FileRequested => Step::FileReady,
            State::SetSent => Step::SetAcked,
            State::Configured if self.expect_status.for_flow(r.flow) => Step::Status,
            State::Configured if r.steps.has(Step::FileFetched) => {
                self.finish(mac, State::CompleteNoStatus);
                self.counters.flows_completed += 1;
                self.events.push_back(Event::Completed { mac, state: None });
                return;
            }
            State::Configured => Step::FileFetched,
            // Finished flows have no timer.
            _ => Step::Status,
        };
        self.time_out(mac, missing);
    }

    fn time_out(&mut self, mac: Mac, step: Step) {
        self.finish(mac, State::TimedOut(step));
        self.counters.flows_timed_out += 1;
        self.events.push_back(Event::TimedOut { mac, step });
    }

    fn fail(&mut self, mac: Mac, step: Step, reason: String) {
        let kept = text(reason.as_bytes());
        self.finish(mac, State::Failed { step, reason: kept });
        self.counters.flows_failed += 1;
        self.events.push_back(Event::Failed { mac, step, reason });
    }

    /// Emits [`Event::NeedFile`] and waits for the answer.
    fn ask_for_file(&mut self, mac: Mac) {
        let Some(entry) = self.entries.get_mut(&mac) else {
            return;
        };
        let r = &mut entry.record;
        r.state = State::FileRequested;
        let device = DeviceFacts {
            flow: r.flow,
            mib: r.mib.unwrap_or(Mib::Ietf),
            addr: r.addr,
            cmts: r.cmts,
            unknown_dhcp: r.unknown_dhcp,
            sw_version: r.sw_version.as_deref().map(str::to_string),
            type_identifier: r.type_identifier.as_deref().map(str::to_string),
            sys_descr: r.sys_descr.as_deref().map(str::to_string),
            endpoints: r.endpoints,
        };
        self.events.push_back(Event::NeedFile {
            mac,
            correlation_id: r.correlation_id,
            device,
        });
        self.rearm(mac);
    }

    /// Sends `msg` (its request-id replaced by a fresh one) to the MTA's agent, and keeps it
    /// for retransmission.
    fn send_request(
        &mut self,
        now: Millis,
        mac: Mac,
        kind: RequestKind,
        mut msg: Message,
        out: &mut dyn FnMut(Outgoing<'_>),
    ) {
        let id = self.fresh_request_id();
        if let Message::Community {
            pdu: Pdus::Pdu(pdu),
            ..
        } = &mut msg
        {
            pdu.request_id = id;
        }
        let mut bytes = Vec::with_capacity(160);
        if let Err(e) = msg.encode(&mut bytes) {
            // Cannot happen with a URL of at most 255 bytes; fail the step rather than panic.
            let step = match kind {
                RequestKind::Set => Step::SetSent,
                RequestKind::Caps => Step::CapsRequest,
            };
            self.fail(mac, step, e.to_string());
            return;
        }
        let Some(entry) = self.entries.get_mut(&mac) else {
            return;
        };
        let to = SocketAddrV4::new(entry.record.addr, self.agent_port);
        let Some(active) = entry.active.as_mut() else {
            return;
        };
        out(Outgoing {
            to,
            from_port: FromPort::Requests,
            bytes: &bytes,
        });
        if let Some(old) = active.request.take() {
            self.requests.remove(&old.id);
        }
        active.request = Some(Request {
            id,
            kind,
            to,
            bytes: bytes.into_boxed_slice(),
            retries: 0,
            rto: self.timeout_ms,
            next: now.plus(self.timeout_ms),
        });
        self.requests.insert(id, mac);
        self.rearm(mac);
    }

    /// The next request-id not in flight, counting up from `first_request_id`, positive.
    fn fresh_request_id(&mut self) -> i32 {
        loop {
            let id = self.next_request_id;
            self.next_request_id = if id == i32::MAX { 1 } else { id + 1 };
            // At most max_flows ids are in flight, far fewer than i32::MAX: this ends.
            if !self.requests.contains_key(&id) {
                return id;
            }
        }
    }

    /// Starts a new attempt in an MTA's record (its flow is not active).
    fn restart(&mut self, mac: Mac) {
        if let Some(entry) = self.entries.get_mut(&mac) {
            entry.record.restart();
            self.counters.flows_restarted += 1;
        }
    }

    fn check_capacity(&mut self) -> Result<(), Refused> {
        if self.active >= self.max_flows {
            self.counters.too_many_flows += 1;
            return Err(Refused::TooManyFlows {
                max: self.max_flows,
            });
        }
        Ok(())
    }

    /// Starts the run-time half of a flow for an MTA whose entry exists and has none.
    fn activate(&mut self, mac: Mac, deadline: Millis) {
        let Some(entry) = self.entries.get_mut(&mac) else {
            return;
        };
        if let Some(seq) = entry.finished.take() {
            self.finished.remove(&seq);
        }
        if entry.active.is_none() {
            self.active += 1;
        }
        entry.active = Some(Box::new(Active::new(deadline)));
        self.counters.flows_started += 1;
        self.counters.flows_active = self.active as u64;
        self.rearm(mac);
    }

    /// Drops the run-time half of a flow (timer, request); the record stays.
    fn deactivate(&mut self, mac: Mac) {
        let Some(active) = self.entries.get_mut(&mac).and_then(|e| e.active.take()) else {
            return;
        };
        if let Some(t) = active.timer {
            self.timers.remove(&(t, mac));
        }
        if let Some(r) = &active.request {
            self.requests.remove(&r.id);
        }
        self.active -= 1;
        self.counters.flows_active = self.active as u64;
    }

    /// Ends a flow in `state` and files its record among the finished, evicting the oldest
    /// finished beyond `max_completed`.
    fn finish(&mut self, mac: Mac, state: State) {
        let was_active = self.entries.get(&mac).is_some_and(|e| e.active.is_some());
        self.deactivate(mac);
        let seq = self.next_finished;
        let Some(entry) = self.entries.get_mut(&mac) else {
            return;
        };
        let started = entry.record.steps.iter().map(|(_, at)| at).min();
        if let Some(started) = started.filter(|_| was_active)
            && self.flow_ends.len() < MAX_FLOW_ENDS
        {
            let outcome = match &state {
                State::Complete(s) if s.is_pass() => "pass",
                State::CompleteNoStatus => "pass",
                State::TimedOut(_) => "timeout",
                _ => "fail",
            };
            self.flow_ends.push(FlowEnd {
                flow: entry.record.flow,
                outcome,
                started,
            });
        }
        entry.record.state = state;
        if entry.finished.is_none() {
            self.next_finished += 1;
            entry.finished = Some(seq);
            self.finished.insert(seq, mac);
        }
        while self.finished.len() > self.max_completed {
            let Some((_, old)) = self.finished.pop_first() else {
                break;
            };
            self.entries.remove(&old);
            self.counters.records_evicted += 1;
        }
    }

    fn cancel_request(&mut self, mac: Mac) {
        let Some(active) = self.entries.get_mut(&mac).and_then(|e| e.active.as_mut()) else {
            return;
        };
        if let Some(r) = active.request.take() {
            self.requests.remove(&r.id);
        }
        self.rearm(mac);
    }

    /// Moves an active flow's one timer entry to when it is next due.
    fn rearm(&mut self, mac: Mac) {
        let Some(active) = self.entries.get_mut(&mac).and_then(|e| e.active.as_mut()) else {
            return;
        };
        let due = active.due();
        if active.timer != Some(due) {
            if let Some(t) = active.timer {
                self.timers.remove(&(t, mac));
            }
            active.timer = Some(due);
            self.timers.insert((due, mac));
        }
    }

    fn reject(&mut self, src: SocketAddrV4, reason: RejectReason) {
        self.events.push_back(Event::Rejected { src, reason });
    }

    #[cfg(test)]
    pub(crate) fn dedupe_len(&self) -> usize {
        self.dedupe.len()
    }

    /// Checks the engine's internal consistency; for tests and fuzzing (it walks every
    /// record). The first broken rule, if any.
    pub fn check_invariants(&self) -> Result<(), &'static str> {
        if self.active > self.max_flows {
            return Err("more active flows than max_flows");
        }
        if self.finished.len() > self.max_completed {
            return Err("more finished records than max_completed");
        }
        if self.entries.len() != self.active + self.finished.len() {
            return Err("a record is neither active nor finished");
        }
        if self.timers.len() != self.active {
            return Err("not one timer per active flow");
        }
        let mut requests = 0;
        for (mac, e) in &self.entries {
            if e.record.mac != *mac {
                return Err("record filed under another MAC");
            }
            match (&e.active, e.finished) {
                (Some(a), None) => {
                    if e.record.state.is_terminal() {
                        return Err("active flow in a terminal state");
                    }
                    if a.timer != Some(a.due()) || !self.timers.contains(&(a.due(), *mac)) {
                        return Err("active flow's timer is not at its due time");
                    }
                    if let Some(r) = &a.request {
                        requests += 1;
                        if self.requests.get(&r.id) != Some(mac) {
                            return Err("request not indexed");
                        }
                    }
                }
                (None, Some(seq)) => {
                    if !e.record.state.is_terminal() {
                        return Err("finished record in a non-terminal state");
                    }
                    if self.finished.get(&seq) != Some(mac) {
                        return Err("finished record not in the eviction order");
                    }
                }
                _ => return Err("record both or neither active and finished"),
            }
        }
        if requests != self.requests.len() {
            return Err("stale request index entries");
        }
        Ok(())
    }
}

/// An OID from the constant tables in `oids`, all valid (checked by its tests).
fn constant_oid(arcs: &'static [u32]) -> Oid {
    Oid::from_slice(arcs).expect("the oids tables hold valid OIDs (oids::tests)")
}
