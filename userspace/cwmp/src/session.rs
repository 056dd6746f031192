//! The ACS side of one CWMP session (TR-069 §3.7.1): request bodies in, HTTP answers out.
//!
//! ```text
//!  AwaitInform --Inform--> CpeRequests --empty POST--> AcsRequests --204--> Done
//!                 (InformResponse)   | CPE requests answered |  each answer routed to the
//!                                    +-----------------------+  driver, next request sent
//! ```
//! * The first message must be an Inform; anything else is out of order: a fault 8003 (or 400
//!   for an empty POST) and the session stays unopened.
//! * In `CpeRequests` the CPE's own requests (TransferComplete, AutonomousTransferComplete,
//!   GetRPCMethods, RequestDownload, Kicked, DUStateChangeComplete ...) are answered at once;
//!   its empty POST turns the session over to the ACS.
//! * In `AcsRequests` each POST carries the answer (response or fault) to the one outstanding
//!   request, matched by `cwmp:ID`; the driver gets it, then the next queued request goes out
//!   or 204 ends the session. A CPE request here is still answered (allowed while the ACS has
//!   not sent HoldRequests). An answer with the wrong ID or method is a protocol error: 400,
//!   the outstanding request is abandoned and the session ends.
//! * After `Done` an Inform on the same connection or cookie starts a new session.
//!
//! Faults in answer to CPE requests go out with HTTP 200 and a SOAP Fault body: TR-069 carries
//! faults as ordinary messages of the session; the 500 of SOAP 1.1 would make many CPEs treat
//! the whole session as failed.

use crate::rpc::{Fault, Inform, Kind, Rpc};
use crate::xml::Limits;
use crate::{Envelope, Error, Version};

/// What the session needs from the ACS around it.
pub trait Driver {
    /// An Inform opened the session; `Err` refuses it with that fault (8001: unknown device).
    fn inform(&mut self, now: u64, env: &Envelope, inform: &Inform) -> Result<(), Fault>;
    /// A CPE request other than Inform; returns the answer (a response or a fault).
    fn cpe_request(&mut self, now: u64, rpc: &Rpc) -> Rpc {
        let _ = now;
        default_answer(rpc)
    }
    /// The next request for this device, with a tag the answer is reported under.
    fn next_request(&mut self, now: u64) -> Option<(u64, Rpc)>;
    /// The device answered request `tag` (a response or a CPE fault).
    fn answer(&mut self, now: u64, tag: u64, answer: Result<Rpc, Fault>);
    /// Request `tag` will get no answer: the session broke or ended first.
    fn abandoned(&mut self, now: u64, tag: u64);
}

/// The answer every ACS gives to the CPE's own requests when it has nothing to add.
pub fn default_answer(rpc: &Rpc) -> Rpc {
    match rpc {
        Rpc::TransferComplete(_) => Rpc::TransferCompleteResponse,
        Rpc::AutonomousTransferComplete(_) => Rpc::AutonomousTransferCompleteResponse,
        Rpc::GetRpcMethods => Rpc::GetRpcMethodsResponse {
            methods: ACS_METHODS.iter().map(|m| (*m).to_owned()).collect(),
        },
        Rpc::RequestDownload { .. } => Rpc::RequestDownloadResponse,
        Rpc::Kicked { next, .. } => Rpc::KickedResponse {
            next_url: next.clone(),
        },
        Rpc::DuStateChangeComplete { .. } => Rpc::DuStateChangeCompleteResponse,
        Rpc::AutonomousDuStateChangeComplete { .. } => Rpc::AutonomousDuStateChangeCompleteResponse,
        _ => Rpc::Fault(Fault::new(crate::fault::METHOD_NOT_SUPPORTED)),
    }
}

/// The methods this ACS implements (GetRPCMethodsResponse).
pub const ACS_METHODS: &[&str] = &[
    "Inform",
    "GetRPCMethods",
    "TransferComplete",
    "AutonomousTransferComplete",
    "RequestDownload",
    "Kicked",
    "DUStateChangeComplete",
    "AutonomousDUStateChangeComplete",
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionState {
    AwaitInform,
    CpeRequests,
    AcsRequests,
    Done,
}

/// What a call to [`Session::handle`] did, for counters and logs.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Outcome {
    Informed,
    InformRefused(u32),
    CpeRequest(&'static str),
    SentRequest(&'static str),
    Answered(&'static str),
    Ended,
    /// The body did not parse.
    BadEnvelope(Error),
    /// A message that does not belong here in the session.
    OutOfOrder(&'static str),
}

/// The HTTP answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    /// 200 with a body, 204 empty, 400 for protocol errors.
    pub status: u16,
    pub body: String,
    pub outcome: Outcome,
}

#[derive(Debug)]
struct Outstanding {
    id: String,
    tag: u64,
    expect: &'static str,
}

/// One session.
#[derive(Debug)]
pub struct Session {
    state: SessionState,
    version: Version,
    next_id: u32,
    outstanding: Option<Outstanding>,
    limits: Limits,
    last: u64,
    /// A prefix for request IDs so two sessions' IDs never look alike in a capture.
    id_prefix: u32,
}

impl Session {
    /// The time budget of the envelopes that follow ([`Limits::deadline`]): the shell sets
    /// one per request.
    pub fn set_deadline(&mut self, deadline: Option<std::time::Instant>) {
        self.limits.deadline = deadline;
    }

    pub fn new(now: u64, id_prefix: u32, limits: Limits) -> Self {
        Session {
            state: SessionState::AwaitInform,
            version: Version::V1_2,
            next_id: 1,
            outstanding: None,
            limits,
            last: now,
            id_prefix,
        }
    }

    pub fn state(&self) -> SessionState {
        self.state
    }

    pub fn version(&self) -> Version {
        self.version
    }

    /// Seconds since the last message.
    pub fn idle(&self, now: u64) -> u64 {
        now.saturating_sub(self.last)
    }

    /// The session is being dropped (idle timeout, connection gone): abandon what is pending.
    pub fn close(&mut self, now: u64, driver: &mut impl Driver) {
        if let Some(o) = self.outstanding.take() {
            driver.abandoned(now, o.tag);
        }
        self.state = SessionState::Done;
    }

    /// One POST body in, the HTTP answer out.
    pub fn handle(&mut self, now: u64, body: &[u8], driver: &mut impl Driver) -> Response {
        self.last = now;
        let empty = body.iter().all(u8::is_ascii_whitespace);
        if empty {
            return self.empty_post(now, driver);
        }
        let env = match Envelope::parse(body, &self.limits) {
            Ok(e) => e,
            Err(e) => {
                let code = e.fault_code();
                return self.fault(None, code, Outcome::BadEnvelope(e));
            }
        };
        match (&env.body, self.state) {
            (Rpc::Inform(i), SessionState::AwaitInform | SessionState::Done) => {
                self.version = env.version;
                self.outstanding = None;
                self.next_id = 1;
                match driver.inform(now, &env, i) {
                    Ok(()) => {
                        self.state = SessionState::CpeRequests;
                        self.reply(
                            env.id.clone(),
                            Rpc::InformResponse { max_envelopes: 1 },
                            Outcome::Informed,
                        )
                    }
                    Err(f) => {
                        self.state = SessionState::Done;
                        let code = f.code;
                        self.reply(env.id.clone(), Rpc::Fault(f), Outcome::InformRefused(code))
                    }
                }
            }
            (Rpc::Inform(_), _) => self.fault(env.id.clone(), 8003, Outcome::OutOfOrder("Inform")),
            (_, SessionState::AwaitInform | SessionState::Done) => {
                let m = env.body.method();
                self.fault(env.id.clone(), 8003, Outcome::OutOfOrder(m))
            }
            (rpc, _)
                if matches!(rpc.kind(), Kind::CpeRequest)
                    || (matches!(rpc, Rpc::GetRpcMethods) && self.outstanding.is_none()) =>
            {
                if self.outstanding.is_some() {
                    return self.fault(env.id.clone(), 8003, Outcome::OutOfOrder(rpc.method()));
                }
                let answer = driver.cpe_request(now, rpc);
                self.reply(env.id.clone(), answer, Outcome::CpeRequest(rpc.method()))
            }
            (rpc, _) => {
                // An answer to our request.
                let Some(o) = self.outstanding.take() else {
                    return self.protocol_error(Outcome::OutOfOrder(rpc.method()));
                };
                let matches_id = env.id.as_deref().is_none_or(|id| id == o.id);
                let answer = match rpc {
                    Rpc::Fault(f) => Err(f.clone()),
                    r if r.method() == o.expect => Ok(r.clone()),
                    _ => {
                        driver.abandoned(now, o.tag);
                        return self.protocol_error(Outcome::OutOfOrder(rpc.method()));
                    }
                };
                if !matches_id {
                    driver.abandoned(now, o.tag);
                    return self.protocol_error(Outcome::OutOfOrder(rpc.method()));
                }
                driver.answer(now, o.tag, answer);
                self.state = SessionState::AcsRequests;
                self.send_next(now, driver, Outcome::Answered(o.expect))
            }
        }
    }

    fn empty_post(&mut self, now: u64, driver: &mut impl Driver) -> Response {
        match self.state {
            SessionState::AwaitInform | SessionState::Done => Response {
                status: 400,
                body: String::new(),
                outcome: Outcome::OutOfOrder("empty POST"),
            },
            SessionState::CpeRequests | SessionState::AcsRequests => {
                if let Some(o) = self.outstanding.take() {
                    driver.abandoned(now, o.tag);
                }
                self.state = SessionState::AcsRequests;
                self.send_next(now, driver, Outcome::Ended)
            }
        }
    }

    fn send_next(&mut self, now: u64, driver: &mut impl Driver, ended: Outcome) -> Response {
        match driver.next_request(now) {
            Some((tag, rpc)) => {
                let id = format!("provd-{:x}-{}", self.id_prefix, self.next_id);
                self.next_id = self.next_id.wrapping_add(1);
                let expect = rpc.response_method().unwrap_or("");
                let method = rpc.method();
                self.outstanding = Some(Outstanding {
                    id: id.clone(),
                    tag,
                    expect,
                });
                self.reply(Some(id), rpc, Outcome::SentRequest(method))
            }
            None => {
                self.state = SessionState::Done;
                Response {
                    status: 204,
                    body: String::new(),
                    outcome: match ended {
                        Outcome::Answered(_) => Outcome::Ended,
                        o => o,
                    },
                }
            }
        }
    }

    fn reply(&self, id: Option<String>, rpc: Rpc, outcome: Outcome) -> Response {
        Response {
            status: 200,
            body: Envelope::new(self.version, id, rpc).to_xml(),
            outcome,
        }
    }

    fn fault(&self, id: Option<String>, code: u32, outcome: Outcome) -> Response {
        self.reply(id, Rpc::Fault(Fault::new(code)), outcome)
    }

    fn protocol_error(&mut self, outcome: Outcome) -> Response {
        self.state = SessionState::Done;
        Response {
            status: 400,
            body: String::new(),
            outcome,
        }
    }
}
