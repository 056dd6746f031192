//! The vocabulary of a provisioning flow (which flow, which step, what the MTA reported, where
//! a flow stands) and the per-flow run-time state the engine keeps only while a flow is active:
//! its provisioning deadline and the one SNMP request it may have in flight.

use std::fmt;
use std::net::SocketAddrV4;

use crate::Millis;

/// The provisioning flow an MTA runs, chosen by DHCP option 122.6 (dhcp.md §7).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Flow {
    /// DHCP, then the file named by siaddr + file; no SNMP at all.
    Basic1,
    /// BASIC.1 plus the final status INFORM (MTA-25).
    Basic2,
    /// Enrollment INFORM, SET of the file URL and hash, file fetch; SNMPv2c, no Kerberos.
    Hybrid1,
    /// HYBRID.1 plus the final status INFORM (by analogy with BASIC.2; unverified).
    Hybrid2,
}

impl Flow {
    /// The reserved realm name of option 122.6 (`HYBRID.2`), as pktcMtaDevProvKerbRealmName
    /// shows it.
    pub fn realm_name(self) -> &'static str {
        match self {
            Flow::Basic1 => "BASIC.1",
            Flow::Basic2 => "BASIC.2",
            Flow::Hybrid1 => "HYBRID.1",
            Flow::Hybrid2 => "HYBRID.2",
        }
    }

    /// The flow a 122.6 realm value selects; `None` for a real Kerberos realm (SECURE, not
    /// handled here). Case-insensitive, as DNS names are.
    pub fn from_realm_name(realm: &str) -> Option<Flow> {
        let realm = realm.strip_suffix('.').unwrap_or(realm);
        [Flow::Basic1, Flow::Basic2, Flow::Hybrid1, Flow::Hybrid2]
            .into_iter()
            .find(|f| f.realm_name().eq_ignore_ascii_case(realm))
    }

    /// Whether the flow goes through enrollment and the config-file SET.
    pub fn is_hybrid(self) -> bool {
        matches!(self, Flow::Hybrid1 | Flow::Hybrid2)
    }
}

impl fmt::Display for Flow {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.realm_name())
    }
}

/// A step of the flow whose time the record keeps (the numbering of PKT-SP-PROV1.5 §7).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Step {
    /// MTA-1..4: the DHCP ACK.
    Dhcp,
    /// MTA-15: the enrollment INFORM.
    Enrollment,
    /// MTA-16: capability GET sent.
    CapsRequest,
    /// MTA-17: its Response.
    CapsResponse,
    /// MTA-18: the config file is ready (URL and hash known).
    FileReady,
    /// MTA-19: the SET of URL + hash sent.
    SetSent,
    /// MTA-19: the SET acknowledged.
    SetAcked,
    /// MTA-22/23: the MTA fetched its file.
    FileFetched,
    /// MTA-25: the final status INFORM.
    Status,
}

impl Step {
    pub const ALL: [Step; 9] = [
        Step::Dhcp,
        Step::Enrollment,
        Step::CapsRequest,
        Step::CapsResponse,
        Step::FileReady,
        Step::SetSent,
        Step::SetAcked,
        Step::FileFetched,
        Step::Status,
    ];

    /// The step number(s) in the PacketCable flow tables.
    pub fn label(self) -> &'static str {
        match self {
            Step::Dhcp => "MTA-1..4",
            Step::Enrollment => "MTA-15",
            Step::CapsRequest => "MTA-16",
            Step::CapsResponse => "MTA-17",
            Step::FileReady => "MTA-18",
            Step::SetSent | Step::SetAcked => "MTA-19",
            Step::FileFetched => "MTA-22/23",
            Step::Status => "MTA-25",
        }
    }

    /// A stable snake-case name, the key in [`Record::to_json`](crate::Record::to_json).
    pub fn name(self) -> &'static str {
        match self {
            Step::Dhcp => "dhcp",
            Step::Enrollment => "enrollment",
            Step::CapsRequest => "caps_request",
            Step::CapsResponse => "caps_response",
            Step::FileReady => "file_ready",
            Step::SetSent => "set_sent",
            Step::SetAcked => "set_acked",
            Step::FileFetched => "file_fetched",
            Step::Status => "status",
        }
    }

    pub(crate) fn index(self) -> usize {
        self as usize
    }
}

impl fmt::Display for Step {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.label())
    }
}

/// pktcMtaDevProvisioningState as the status INFORM reports it. Kept as the number on the wire
/// so an out-of-range value from a buggy MTA is still recorded; the named values are
/// associated constants.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ProvState(pub i32);

impl ProvState {
    pub const PASS: ProvState = ProvState(1);
    /// Not final: the MTA is still working.
    pub const IN_PROGRESS: ProvState = ProvState(2);
    pub const FAIL_CONFIG_FILE_ERROR: ProvState = ProvState(3);
    pub const PASS_WITH_WARNINGS: ProvState = ProvState(4);
    pub const PASS_WITH_INCOMPLETE_PARSING: ProvState = ProvState(5);
    pub const FAILURE_INTERNAL_ERROR: ProvState = ProvState(6);
    pub const FAIL_OTHER_REASON: ProvState = ProvState(7);

    /// The MIB's enumeration label, `None` outside 1..=7.
    pub fn name(self) -> Option<&'static str> {
        Some(match self.0 {
            1 => "pass",
            2 => "inProgress",
            3 => "failConfigFileError",
            4 => "passWithWarnings",
            5 => "passWithIncompleteParsing",
            6 => "failureInternalError",
            7 => "failOtherReason",
            _ => return None,
        })
    }

    /// The MTA runs with its config (possibly not all of it).
    pub fn is_pass(self) -> bool {
        matches!(self.0, 1 | 4 | 5)
    }

    /// The MTA did not take its config; the server should read pktcMtaDevErrorOidsTable.
    pub fn is_failure(self) -> bool {
        matches!(self.0, 3 | 6 | 7)
    }
}

impl fmt::Display for ProvState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.name() {
            Some(name) => f.write_str(name),
            None => write!(f, "state {}", self.0),
        }
    }
}

impl fmt::Debug for ProvState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ProvState({self})")
    }
}

/// Where a device's current (or last) flow stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum State {
    /// DHCP seen; waiting for the enrollment INFORM (HYBRID) or the file fetch (BASIC).
    Waiting,
    /// Enrolled; the capability GET is in flight.
    Enrolled,
    /// [`Event::NeedFile`](crate::Event::NeedFile) is out; waiting for
    /// [`Engine::file_ready`](crate::Engine::file_ready).
    FileRequested,
    /// The config-file SET is out; waiting for its Response.
    SetSent,
    /// The MTA has what it needs (SET acknowledged, or a BASIC file fetched); waiting for the
    /// file fetch and/or the status INFORM.
    Configured,
    /// The MTA reported its final state (pass or not: see [`ProvState::is_pass`]).
    Complete(ProvState),
    /// A flow that does not require MTA-25 fetched its file; no status INFORM (yet).
    CompleteNoStatus,
    /// The flow cannot go on: the MTA refused the SET, or no file could be made.
    Failed { step: Step, reason: Box<str> },
    /// `step` never happened: retransmissions ran out, or the provisioning timer expired.
    TimedOut(Step),
}

impl State {
    /// Whether the flow is over (its record only waits for eviction or a new attempt).
    pub fn is_terminal(&self) -> bool {
        matches!(
            self,
            State::Complete(_)
                | State::CompleteNoStatus
                | State::Failed { .. }
                | State::TimedOut(_)
        )
    }

    /// A stable snake-case name for logs and JSON.
    pub fn name(&self) -> &'static str {
        match self {
            State::Waiting => "waiting",
            State::Enrolled => "enrolled",
            State::FileRequested => "file_requested",
            State::SetSent => "set_sent",
            State::Configured => "configured",
            State::Complete(_) => "complete",
            State::CompleteNoStatus => "complete_no_status",
            State::Failed { .. } => "failed",
            State::TimedOut(_) => "timed_out",
        }
    }
}

impl fmt::Display for State {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            State::Complete(s) => write!(f, "complete ({s})"),
            State::Failed { step, reason } => write!(f, "failed at {step}: {reason}"),
            State::TimedOut(step) => write!(f, "timed out waiting for {step}"),
            other => f.write_str(other.name()),
        }
    }
}

/// What the engine keeps for a flow in progress, beside its [`Record`](crate::Record).
#[derive(Debug)]
pub(crate) struct Active {
    /// When the provisioning timer runs out.
    pub deadline: Millis,
    /// The flow's one entry in the engine's timer set, at the earlier of `deadline` and the
    /// request's retransmission time; `None` only while the engine handles the entry it just
    /// took out.
    pub timer: Option<Millis>,
    pub request: Option<Request>,
}

impl Active {
    pub fn new(deadline: Millis) -> Active {
        Active {
            deadline,
            timer: None,
            request: None,
        }
    }

    /// When the flow next needs [`Engine::poll_timeouts`](crate::Engine::poll_timeouts).
    pub fn due(&self) -> Millis {
        match &self.request {
            Some(r) => r.next.min(self.deadline),
            None => self.deadline,
        }
    }
}

/// Which request a flow has out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RequestKind {
    /// The capability GET (MTA-16).
    Caps,
    /// The config-file SET (MTA-19).
    Set,
}

/// One GET or SET in flight: its encoded bytes, kept to be resent unchanged (same
/// request-id, so a late Response to any copy is accepted), and its retransmission schedule.
#[derive(Debug)]
pub(crate) struct Request {
    pub id: i32,
    pub kind: RequestKind,
    pub to: SocketAddrV4,
    pub bytes: Box<[u8]>,
    /// Retransmissions so far.
    pub retries: u8,
    /// Wait after the latest copy.
    pub rto: u64,
    /// When the latest copy times out.
    pub next: Millis,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn realm_names_select_flows() {
        assert_eq!(Flow::from_realm_name("HYBRID.2"), Some(Flow::Hybrid2));
        assert_eq!(Flow::from_realm_name("basic.1."), Some(Flow::Basic1));
        assert_eq!(Flow::from_realm_name("EXAMPLE.COM"), None);
        for f in [Flow::Basic1, Flow::Basic2, Flow::Hybrid1, Flow::Hybrid2] {
            assert_eq!(Flow::from_realm_name(f.realm_name()), Some(f));
        }
    }

    #[test]
    fn step_indices_are_dense() {
        for (i, s) in Step::ALL.iter().enumerate() {
            assert_eq!(s.index(), i);
        }
    }

    #[test]
    fn prov_states_have_the_mib_names() {
        assert_eq!(ProvState::PASS.to_string(), "pass");
        assert_eq!(
            ProvState::FAIL_CONFIG_FILE_ERROR.to_string(),
            "failConfigFileError"
        );
        assert_eq!(ProvState(9).to_string(), "state 9");
        assert!(ProvState::PASS_WITH_WARNINGS.is_pass());
        assert!(ProvState::FAIL_OTHER_REASON.is_failure());
        assert!(!ProvState::IN_PROGRESS.is_pass() && !ProvState::IN_PROGRESS.is_failure());
    }
}
