//! One simulated MTA's HYBRID.2 provisioning flow, sans-IO: the datagrams that arrive on its
//! socket, the SET the agent socket routed to it, and the passing of time go in; what to send
//! and how the flow ended come out.
//!
//! 1. Enrollment INFORM to the server's notification port, resent every `timeout` until a
//!    Response with its request-id comes (or a SET shows the server has it).
//! 2. The SET (pktcMtaDevConfigFile.0 + pktcMtaDevProvConfigHash.0), routed here by the MAC in
//!    the URL: the agent socket answers it; the flow starts the TFTP read of the URL.
//! 3. The TFTP transfer (the sans-IO client of `provd-loadgen tftp`) on the same socket; the
//!    file's SHA-1 must equal the SET's hash.
//! 4. Status INFORM (pass), resent until answered: the flow is complete.
//!
//! The whole flow must end within `flow_timeout` of its start.

use std::net::SocketAddrV4;
use std::time::{Duration, Instant};

use crate::tftp::packet::RequestOptions;
use crate::tftp::transfer::{self, Setup, Step, Transfer};

use super::msg::{self, Identity};

/// What every flow of a run shares.
#[derive(Debug, Clone)]
pub struct FlowSetup {
    /// The server's notification address (UDP 162).
    pub server: SocketAddrV4,
    pub community: Vec<u8>,
    pub identity: Identity,
    /// Wait for an INFORM's Response before resending it.
    pub timeout: Duration,
    /// Resends of an INFORM before the flow gives up on it.
    pub retries: u32,
    pub tftp: RequestOptions,
    /// Resend interval and resends of the TFTP client.
    pub tftp_timeout: Duration,
    pub tftp_retries: u32,
    /// The longest a flow may take, start to status answered.
    pub flow_timeout: Duration,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Enrollment INFORM out, no Response yet.
    Enrolling,
    /// Enrollment answered, no SET yet.
    AwaitingSet,
    Fetching,
    /// Status INFORM out, no Response yet.
    Reporting,
    Done,
}

impl Phase {
    pub fn name(self) -> &'static str {
        match self {
            Phase::Enrolling => "enrollment",
            Phase::AwaitingSet => "SET",
            Phase::Fetching => "TFTP fetch",
            Phase::Reporting => "status",
            Phase::Done => "done",
        }
    }
}

/// Why a flow did not complete.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failure {
    /// An INFORM went unanswered through every resend.
    Unanswered(Phase),
    /// The flow timeout passed while in this phase.
    Timeout(Phase),
    /// Still running at the run's hard end.
    CutOff(Phase),
    /// The server answered an INFORM with an error-status.
    InformError {
        phase: Phase,
        status: String,
    },
    /// The SET lacked the URL or hash, or they were malformed.
    BadSet(String),
    Tftp(transfer::Failure),
    /// The file's SHA-1 is not the hash the SET carried.
    HashMismatch,
}

impl Failure {
    /// A stable key for grouping failures in reports.
    pub fn kind(&self) -> String {
        match self {
            Failure::Unanswered(p) => format!("{} INFORM unanswered", p.name()),
            Failure::Timeout(p) => format!("flow timeout waiting for the {}", p.name()),
            Failure::CutOff(p) => format!("cut off at the hard end during the {}", p.name()),
            Failure::InformError { phase, status } => {
                format!("{} INFORM answered with {status}", phase.name())
            }
            Failure::BadSet(why) => format!("bad SET: {why}"),
            Failure::Tftp(f) => format!("TFTP: {}", f.kind()),
            Failure::HashMismatch => "file SHA-1 differs from the SET's hash".into(),
        }
    }

    /// Ran out of time (as opposed to being answered wrongly).
    pub fn is_timeout(&self) -> bool {
        match self {
            Failure::Unanswered(_) | Failure::Timeout(_) | Failure::CutOff(_) => true,
            Failure::Tftp(f) => f.is_timeout(),
            _ => false,
        }
    }
}

/// The outcome of feeding one event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Progress {
    /// Taken; the flow goes on.
    Running,
    /// Not for this flow, or a repeat: changed nothing.
    Ignored,
    /// The status INFORM was answered: enrollment sent → status answered.
    Completed(Duration),
    Failed(Failure),
}

/// Hundredths of a second the simulated MTA has been up when it enrolls.
const UPTIME_AT_ENROLLMENT: u32 = 3000;

#[derive(Debug)]
pub struct Flow {
    pub mac: [u8; 6],
    correlation_id: u32,
    enroll_id: i32,
    status_id: i32,
    phase: Phase,
    /// The INFORM being sent (enrollment or status), resent as is.
    inform: Vec<u8>,
    retries_left: u32,
    resend_at: Instant,
    /// INFORMs resent so far.
    pub resends: u32,
    /// Answers to the enrollment that came after its SET.
    pub late_answers: u32,
    pub started: Instant,
    /// When the SET came and when the file was in.
    pub set_at: Option<Instant>,
    pub fetched_at: Option<Instant>,
    deadline: Instant,
    /// The SET's hash, once it came.
    hash: Option<[u8; 20]>,
    transfer: Option<Transfer>,
}

impl Flow {
    /// Starts flow number `k` of MTA `mac`: its enrollment INFORM goes to the server now.
    pub fn start(
        setup: &FlowSetup,
        k: u64,
        mac: [u8; 6],
        now: Instant,
        send: &mut dyn FnMut(SocketAddrV4, &[u8]),
    ) -> Flow {
        // Positive and distinct per flow for 2^30 - 1 flows in a row (both ids fit an i32).
        let base = ((k % ((1 << 30) - 1)) * 2 + 1) as i32;
        let correlation_id = mix32(k as u32 ^ (k >> 32) as u32) | 1;
        let inform = msg::enrollment(
            &setup.community,
            base,
            UPTIME_AT_ENROLLMENT,
            &setup.identity,
            mac,
            correlation_id,
        );
        send(setup.server, &inform);
        Flow {
            mac,
            correlation_id,
            enroll_id: base,
            status_id: base + 1,
            phase: Phase::Enrolling,
            inform,
            retries_left: setup.retries,
            resend_at: now + setup.timeout,
            resends: 0,
            late_answers: 0,
            started: now,
            set_at: None,
            fetched_at: None,
            deadline: now + setup.flow_timeout,
            hash: None,
            transfer: None,
        }
    }

    #[cfg(test)]
    pub fn phase(&self) -> Phase {
        self.phase
    }

    /// The earliest time [`Flow::on_tick`] has work.
    pub fn next_timer(&self) -> Instant {
        let own = match self.phase {
            Phase::Enrolling | Phase::Reporting => self.resend_at,
            Phase::Fetching => self
                .transfer
                .as_ref()
                .map_or(self.deadline, Transfer::deadline),
            Phase::AwaitingSet | Phase::Done => self.deadline,
        };
        own.min(self.deadline)
    }

    /// A datagram arrived on the flow's socket from `from`.
    pub fn on_datagram(
        &mut self,
        setup: &FlowSetup,
        from: SocketAddrV4,
        bytes: &[u8],
        now: Instant,
        send: &mut dyn FnMut(SocketAddrV4, &[u8]),
    ) -> Progress {
        if from == setup.server {
            return self.on_answer(bytes, now);
        }
        if self.phase != Phase::Fetching {
            return Progress::Ignored;
        }
        let Some(t) = self.transfer.as_mut() else {
            return Progress::Ignored;
        };
        let step = t.on_datagram(from, bytes, now);
        self.after_tftp(setup, step, now, send)
    }

    /// A Response from the notification port.
    fn on_answer(&mut self, bytes: &[u8], now: Instant) -> Progress {
        let Ok(a) = msg::read_response(bytes) else {
            return Progress::Ignored;
        };
        let want = match self.phase {
            Phase::Enrolling => self.enroll_id,
            Phase::Reporting => self.status_id,
            _ => 0,
        };
        if a.request_id != want {
            if a.request_id == self.enroll_id {
                // The enrollment's answer after its SET (or a repeat): expected, changes
                // nothing.
                self.late_answers += 1;
                return Progress::Running;
            }
            return Progress::Ignored;
        }
        if a.error_status.is_error() {
            let phase = self.phase;
            return self.fail(Failure::InformError {
                phase,
                status: a.error_status.to_string(),
            });
        }
        if self.phase == Phase::Enrolling {
            self.phase = Phase::AwaitingSet;
            return Progress::Running;
        }
        self.phase = Phase::Done;
        Progress::Completed(now - self.started)
    }

    /// The server's SET came for this MTA (the agent socket has answered it).
    pub fn on_set(
        &mut self,
        setup: &FlowSetup,
        url: Option<&[u8]>,
        hash: Option<&[u8]>,
        now: Instant,
        send: &mut dyn FnMut(SocketAddrV4, &[u8]),
    ) -> Progress {
        if !matches!(self.phase, Phase::Enrolling | Phase::AwaitingSet) {
            // A resent SET (our Response was lost or late): the agent answered it again.
            return Progress::Ignored;
        }
        let Some(url) = url else {
            return self.fail(Failure::BadSet("no pktcMtaDevConfigFile.0".into()));
        };
        let Some(hash) = hash.and_then(|h| <[u8; 20]>::try_from(h).ok()) else {
            return self.fail(Failure::BadSet(
                "pktcMtaDevProvConfigHash.0 is not 20 bytes".into(),
            ));
        };
        let Some((server, name)) = msg::tftp_url(url) else {
            return self.fail(Failure::BadSet(format!(
                "URL {:?} is not tftp://IPv4/PATH",
                String::from_utf8_lossy(url)
            )));
        };
        self.hash = Some(hash);
        self.set_at = Some(now);
        let t = Transfer::start(
            &Setup {
                server,
                mode: "octet",
                asked: setup.tftp,
                keep_content: false,
                sha1: true,
                timeout: setup.tftp_timeout,
                retries: setup.tftp_retries,
            },
            &name,
            now,
        );
        send(t.peer(), t.outgoing());
        self.transfer = Some(t);
        self.phase = Phase::Fetching;
        Progress::Running
    }

    fn after_tftp(
        &mut self,
        setup: &FlowSetup,
        step: Step,
        now: Instant,
        send: &mut dyn FnMut(SocketAddrV4, &[u8]),
    ) -> Progress {
        let Some(t) = self.transfer.as_mut() else {
            return Progress::Ignored;
        };
        match step {
            Step::Idle => Progress::Running,
            Step::Send => {
                send(t.peer(), t.outgoing());
                Progress::Running
            }
            Step::Failed { send: tell } => {
                if tell {
                    send(t.peer(), t.outgoing());
                }
                let f = t.failure().cloned().unwrap_or(transfer::Failure::Protocol(
                    "failed without a reason".into(),
                ));
                self.fail(Failure::Tftp(f))
            }
            Step::Finished => {
                // The final ACK.
                send(t.peer(), t.outgoing());
                let got = match t.delivered() {
                    Some(d) => d.sha1,
                    None => {
                        let f = t.failure().cloned().unwrap_or(transfer::Failure::Protocol(
                            "finished without a result".into(),
                        ));
                        return self.fail(Failure::Tftp(f));
                    }
                };
                self.transfer = None;
                self.fetched_at = Some(now);
                if got.is_none() || got != self.hash {
                    return self.fail(Failure::HashMismatch);
                }
                let uptime = UPTIME_AT_ENROLLMENT
                    .saturating_add((now - self.started).as_millis().min(1 << 31) as u32 / 10);
                self.inform = msg::status(
                    &setup.community,
                    self.status_id,
                    uptime,
                    self.mac,
                    self.correlation_id,
                    msg::STATE_PASS,
                );
                send(setup.server, &self.inform);
                self.phase = Phase::Reporting;
                self.retries_left = setup.retries;
                self.resend_at = now + setup.timeout;
                Progress::Running
            }
        }
    }

    /// Time passed: resend an unanswered INFORM, let the TFTP client resend, or give up.
    pub fn on_tick(
        &mut self,
        setup: &FlowSetup,
        now: Instant,
        send: &mut dyn FnMut(SocketAddrV4, &[u8]),
    ) -> Progress {
        if self.phase == Phase::Done {
            return Progress::Ignored;
        }
        if now >= self.deadline {
            let phase = self.phase;
            return self.fail(Failure::Timeout(phase));
        }
        match self.phase {
            Phase::Enrolling | Phase::Reporting if now >= self.resend_at => {
                if self.retries_left == 0 {
                    let phase = self.phase;
                    return self.fail(Failure::Unanswered(phase));
                }
                self.retries_left -= 1;
                self.resends += 1;
                self.resend_at = now + setup.timeout;
                send(setup.server, &self.inform);
                Progress::Running
            }
            Phase::Fetching => {
                let Some(t) = self.transfer.as_mut() else {
                    return Progress::Ignored;
                };
                let step = t.on_tick(now);
                self.after_tftp(setup, step, now, send)
            }
            _ => Progress::Ignored,
        }
    }

    /// The run is over: how this unfinished flow counts.
    pub fn cut_off(&self) -> Failure {
        Failure::CutOff(self.phase)
    }

    fn fail(&mut self, f: Failure) -> Progress {
        self.phase = Phase::Done;
        Progress::Failed(f)
    }
}

/// A bijective 32-bit mixer, for correlation ids that look random but repeat per index.
fn mix32(mut x: u32) -> u32 {
    x ^= x >> 16;
    x = x.wrapping_mul(0x7feb_352d);
    x ^= x >> 15;
    x = x.wrapping_mul(0x846c_a68b);
    x ^= x >> 16;
    x
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tftp::packet;
    use provd_snmp::{Message, Pdu, PduType, Value, VarBind, Version, response_to};
    use sha1::{Digest, Sha1};
    use std::cell::RefCell;
    use std::net::Ipv4Addr;

    const SERVER: SocketAddrV4 = SocketAddrV4::new(Ipv4Addr::new(198, 18, 2, 2), 162);
    const TFTP_TID: SocketAddrV4 = SocketAddrV4::new(Ipv4Addr::new(198, 18, 2, 2), 40000);
    const MAC: [u8; 6] = [0x02, 0x4d, 0, 0, 0, 7];

    fn setup() -> FlowSetup {
        FlowSetup {
            server: SERVER,
            community: b"private".to_vec(),
            identity: Identity::default(),
            timeout: Duration::from_millis(100),
            retries: 2,
            tftp: RequestOptions::default(),
            tftp_timeout: Duration::from_millis(100),
            tftp_retries: 2,
            flow_timeout: Duration::from_secs(5),
        }
    }

    type Sent = RefCell<Vec<(SocketAddrV4, Vec<u8>)>>;

    fn sink(sent: &Sent) -> impl FnMut(SocketAddrV4, &[u8]) + '_ {
        |to, b| sent.borrow_mut().push((to, b.to_vec()))
    }

    fn answer(inform: &[u8]) -> Vec<u8> {
        response_to(&Message::decode(inform).unwrap())
            .unwrap()
            .to_bytes()
            .unwrap()
    }

    fn data(block: u16, payload: &[u8]) -> Vec<u8> {
        let mut b = Vec::new();
        packet::data(&mut b, block, payload);
        b
    }

    #[test]
    fn a_whole_flow() {
        let s = setup();
        let now = Instant::now();
        let sent = Sent::default();
        let mut f = Flow::start(&s, 3, MAC, now, &mut sink(&sent));
        assert_eq!(sent.borrow().len(), 1);
        let (to, enroll) = sent.borrow_mut().pop().unwrap();
        assert_eq!(to, SERVER);
        let m = Message::decode(&enroll).unwrap();
        let pdu = m.pdu().unwrap();
        assert_eq!(pdu.kind, PduType::InformRequest);
        assert_eq!(pdu.request_id, 7);
        assert_eq!(
            pdu.get(msg::IF_PHYS_ADDRESS_1),
            Some(&Value::OctetString(MAC.to_vec()))
        );
        assert_eq!(
            pdu.notification_oid().unwrap().as_slice(),
            msg::ENROLLMENT_TRAP
        );

        // An answer to some other request is not ours; ours moves the flow on.
        let mut other = Message::decode(&answer(&enroll)).unwrap();
        if let Message::Community {
            pdu: provd_snmp::Pdus::Pdu(p),
            ..
        } = &mut other
        {
            p.request_id = 99;
        }
        let w = &mut sink(&sent);
        assert_eq!(
            f.on_datagram(&s, SERVER, &other.to_bytes().unwrap(), now, w),
            Progress::Ignored
        );
        assert_eq!(
            f.on_datagram(&s, SERVER, &answer(&enroll), now, w),
            Progress::Running
        );
        assert_eq!(f.phase(), Phase::AwaitingSet);

        // The SET: the RRQ goes to the URL's server.
        let file = b"an MTA file".to_vec();
        let hash: [u8; 20] = Sha1::digest(&file).into();
        let url = b"tftp://198.18.2.2/mta/024d00000007.bin";
        assert_eq!(
            f.on_set(&s, Some(url), Some(&hash), now, w),
            Progress::Running
        );
        assert_eq!(f.phase(), Phase::Fetching);
        // A resent SET changes nothing.
        assert_eq!(
            f.on_set(&s, Some(url), Some(&hash), now, w),
            Progress::Ignored
        );
        let (to, rrq) = sent.borrow_mut().pop().unwrap();
        assert_eq!(to, SocketAddrV4::new(*SERVER.ip(), 69));
        assert_eq!(rrq, b"\x00\x01mta/024d00000007.bin\0octet\0");

        // DATA 1 (the whole file): final ACK, then the status INFORM.
        let w = &mut sink(&sent);
        assert_eq!(
            f.on_datagram(&s, TFTP_TID, &data(1, &file), now, w),
            Progress::Running
        );
        assert_eq!(f.phase(), Phase::Reporting);
        let out = sent.borrow().clone();
        assert_eq!(out.len(), 2);
        assert_eq!(out[0], (TFTP_TID, b"\x00\x04\x00\x01".to_vec()));
        let (to, status) = out[1].clone();
        assert_eq!(to, SERVER);
        let m = Message::decode(&status).unwrap();
        let pdu = m.pdu().unwrap();
        assert_eq!(pdu.notification_oid().unwrap().as_slice(), msg::STATUS_TRAP);
        assert_eq!(pdu.request_id, 8);
        assert_eq!(pdu.get(msg::PROVISIONING_STATE_0), Some(&Value::Integer(1)));
        let later = now + Duration::from_millis(30);
        let w = &mut sink(&sent);
        assert_eq!(
            f.on_datagram(&s, SERVER, &answer(&status), later, w),
            Progress::Completed(Duration::from_millis(30))
        );
    }

    #[test]
    fn a_set_before_the_enrollment_answer_counts_as_one() {
        let s = setup();
        let now = Instant::now();
        let sent = Sent::default();
        let w = &mut sink(&sent);
        let mut f = Flow::start(&s, 0, MAC, now, w);
        let file = b"x".to_vec();
        let hash: [u8; 20] = Sha1::digest(&file).into();
        let url = b"tftp://198.18.2.2/mta/024d00000007.bin";
        assert_eq!(
            f.on_set(&s, Some(url), Some(&hash), now, w),
            Progress::Running
        );
        // The late enrollment answer is not needed any more; no INFORM is resent.
        assert_eq!(f.phase(), Phase::Fetching);
        let enroll = sent.borrow()[0].1.clone();
        let w = &mut sink(&sent);
        assert_eq!(
            f.on_datagram(&s, SERVER, &answer(&enroll), now, w),
            Progress::Running
        );
        assert_eq!((f.late_answers, f.phase()), (1, Phase::Fetching));
        assert_eq!(sent.borrow().len(), 2);
    }

    #[test]
    fn a_wrong_hash_fails_the_flow() {
        let s = setup();
        let now = Instant::now();
        let sent = Sent::default();
        let w = &mut sink(&sent);
        let mut f = Flow::start(&s, 0, MAC, now, w);
        let url = b"tftp://198.18.2.2/mta/024d00000007.bin";
        f.on_set(&s, Some(url), Some(&[0u8; 20]), now, w);
        let p = f.on_datagram(&s, TFTP_TID, &data(1, b"file"), now, w);
        assert_eq!(p, Progress::Failed(Failure::HashMismatch));
        assert!(!Failure::HashMismatch.is_timeout());
        // Short or missing hashes and bad URLs are bad SETs.
        let mut f = Flow::start(&s, 1, MAC, now, w);
        assert!(matches!(
            f.on_set(&s, Some(url), Some(&[0u8; 16]), now, w),
            Progress::Failed(Failure::BadSet(_))
        ));
        let mut f = Flow::start(&s, 1, MAC, now, w);
        assert!(matches!(
            f.on_set(&s, Some(b"http://x/y"), Some(&[0u8; 20]), now, w),
            Progress::Failed(Failure::BadSet(_))
        ));
    }

    #[test]
    fn informs_are_resent_then_given_up() {
        let s = setup();
        let now = Instant::now();
        let sent = Sent::default();
        let w = &mut sink(&sent);
        let mut f = Flow::start(&s, 0, MAC, now, w);
        assert_eq!(f.next_timer(), now + s.timeout);
        assert_eq!(f.on_tick(&s, now, w), Progress::Ignored);
        let t1 = now + s.timeout;
        assert_eq!(f.on_tick(&s, t1, w), Progress::Running);
        let t2 = t1 + s.timeout;
        assert_eq!(f.on_tick(&s, t2, w), Progress::Running);
        let p = f.on_tick(&s, t2 + s.timeout, w);
        assert_eq!(p, Progress::Failed(Failure::Unanswered(Phase::Enrolling)));
        // Sent three times, the same bytes.
        let out = sent.borrow();
        assert_eq!(out.len(), 3);
        assert!(out.iter().all(|x| x == &out[0]));
        assert!(Failure::Unanswered(Phase::Enrolling).is_timeout());
    }

    #[test]
    fn no_set_ends_at_the_flow_timeout_and_errors_fail() {
        let s = setup();
        let now = Instant::now();
        let sent = Sent::default();
        let w = &mut sink(&sent);
        let mut f = Flow::start(&s, 0, MAC, now, w);
        let enroll = Message::decode(&f.inform).unwrap();
        let ok = response_to(&enroll).unwrap().to_bytes().unwrap();
        f.on_datagram(&s, SERVER, &ok, now, w);
        assert_eq!(f.next_timer(), now + s.flow_timeout);
        assert_eq!(
            f.on_tick(&s, now + s.flow_timeout, w),
            Progress::Failed(Failure::Timeout(Phase::AwaitingSet))
        );

        // An error-status in the answer.
        let mut f = Flow::start(&s, 0, MAC, now, w);
        let mut pdu = Pdu::new(
            PduType::Response,
            f.enroll_id,
            vec![VarBind::null(msg_oid())],
        );
        pdu.error_status = provd_snmp::ErrorStatus::GEN_ERR;
        let bad = Message::from_pdu(Version::V2c, "private", pdu)
            .to_bytes()
            .unwrap();
        assert_eq!(
            f.on_datagram(&s, SERVER, &bad, now, w),
            Progress::Failed(Failure::InformError {
                phase: Phase::Enrolling,
                status: "genErr".into()
            })
        );
    }

    fn msg_oid() -> provd_snmp::Oid {
        provd_snmp::Oid::from_slice(msg::SYS_UPTIME_0).unwrap()
    }

    #[test]
    fn correlation_ids_and_request_ids_differ_per_flow() {
        let s = setup();
        let now = Instant::now();
        let mut w = |_: SocketAddrV4, _: &[u8]| {};
        let a = Flow::start(&s, 1, MAC, now, &mut w);
        let b = Flow::start(&s, 2, MAC, now, &mut w);
        assert_ne!(a.correlation_id, b.correlation_id);
        assert_ne!(a.enroll_id, b.enroll_id);
        assert_ne!(a.status_id, b.enroll_id);
        let big = Flow::start(&s, (1 << 30) - 1, MAC, now, &mut w);
        assert!(big.enroll_id > 0 && big.status_id > 0);
    }
}
