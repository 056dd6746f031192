//! The engine's tunables with their defaults, and the checks that make a config usable.

use std::time::Duration;

use crate::flow::Flow;
use crate::oids::Mib;

/// Communities, timers and bounds of an [`Engine`](crate::Engine). `Default` is a sound
/// production setting.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// Communities an INFORM may carry to be answered and acted on. A list because field
    /// practice varies: PKT-SP-PROV1.5 could not be checked here, the project brief says
    /// `private`, and the spec's own captured-style vectors (and many MTAs) send `public`.
    /// An INFORM with any other community gets no answer at all.
    pub inform_communities: Vec<String>,
    /// Community of the config-file SET (MTA-19): the MTA's read-write community.
    pub set_community: String,
    /// Community of the capability GETs (MTA-16/17). `private` by default: a read-write
    /// community also reads, while `public` may not be configured on an MTA at all.
    pub get_community: String,
    /// The local port INFORMs arrive on; their answers leave from it ([`FromPort::Notify`]).
    /// Any other local port is the engine's request port.
    ///
    /// [`FromPort::Notify`]: crate::FromPort::Notify
    pub notify_port: u16,
    /// The MTA's SNMP agent port, where GETs and SETs go.
    pub agent_port: u16,
    /// Wait for a Response before the first retransmission of a GET or SET.
    pub initial_timeout: Duration,
    /// Factor applied to the wait after each retransmission.
    pub backoff: u32,
    /// Retransmissions of one request before the step is given up (1, 2, 4, 8 s by default,
    /// then a last wait of 16 s).
    pub max_retries: u8,
    /// Read pktcMtaDevEndPntCount, SwCurrentVers and TypeIdentifier (MTA-16/17) after an
    /// enrollment, before asking for the file. The enrollment already carries the last two,
    /// so this is off unless the file depends on the line count.
    pub get_capabilities: bool,
    /// Flows in progress at once. Beyond it a DHCP binding is refused and an enrollment is
    /// answered (the MTA must stop retransmitting) but starts nothing.
    pub max_flows: usize,
    /// Finished records kept for the operator; the oldest finished ones are evicted beyond it.
    pub max_completed: usize,
    /// Time the whole flow may take, from the DHCP ACK (or the first INFORM of an MTA the DHCP
    /// side never reported) to the end. pktcMtaDevProvisioningTimer defaults to 10 minutes;
    /// DHCP 122.8 may set another per MTA ([`Binding::provisioning_timer`]).
    ///
    /// [`Binding::provisioning_timer`]: crate::Binding::provisioning_timer
    pub provisioning_timer: Duration,
    /// Which flows end only with a status INFORM (MTA-25).
    pub expect_status: ExpectStatus,
    /// Which MIB's OIDs the engine writes to an MTA.
    pub mib: MibPolicy,
    /// How long an INFORM's (source, request-id) is remembered: a retransmission within it is
    /// answered again and otherwise ignored.
    pub inform_dedupe_window: Duration,
    /// Most INFORMs remembered for de-duplication; the oldest are forgotten first. Forgetting
    /// early is harmless: a flow also recognises a repeated enrollment by its correlation id
    /// and a repeated status by its value.
    pub inform_dedupe_capacity: usize,
    /// Act on enrollments and statuses from MTAs the DHCP side never reported, and from an
    /// address other than the one holding the MTA's lease. Off by default: anyone who knows
    /// the community could otherwise open flows for made-up MACs (each SET and its
    /// retransmissions sent where the INFORM claimed to come from) or take a leased MTA's SET
    /// (its file URL and hash) and record. On for an MTA plant whose DHCP is another server.
    pub accept_unknown_dhcp: bool,
    /// The request-id of the engine's first GET or SET; the next ones count up (wrapping to 1
    /// after `i32::MAX`). Tests seed it to reproduce captured requests exactly.
    pub first_request_id: i32,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            inform_communities: vec!["private".to_string(), "public".to_string()],
            set_community: "private".to_string(),
            get_community: "private".to_string(),
            notify_port: 162,
            agent_port: 161,
            initial_timeout: Duration::from_secs(1),
            backoff: 2,
            max_retries: 4,
            get_capabilities: false,
            max_flows: 100_000,
            max_completed: 250_000,
            accept_unknown_dhcp: false,
            provisioning_timer: Duration::from_secs(600),
            expect_status: ExpectStatus::default(),
            mib: MibPolicy::Detect,
            inform_dedupe_window: Duration::from_secs(30),
            inform_dedupe_capacity: 200_000,
            first_request_id: 1,
        }
    }
}

/// Per flow, whether the final status INFORM (MTA-25) is required. PKT-SP-PROV1.5 makes
/// BASIC.2 differ from BASIC.1 by exactly that INFORM; the same split for HYBRID is assumed
/// by analogy (unverified), hence a setting. A flow that does not require it ends at the file
/// fetch, and a status INFORM that comes anyway still updates its record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExpectStatus {
    pub basic1: bool,
    pub basic2: bool,
    pub hybrid1: bool,
    pub hybrid2: bool,
}

impl Default for ExpectStatus {
    fn default() -> Self {
        ExpectStatus {
            basic1: false,
            basic2: true,
            hybrid1: false,
            hybrid2: true,
        }
    }
}

impl ExpectStatus {
    /// Whether `flow` requires MTA-25. An MTA whose flow is unknown (no DHCP binding seen)
    /// does not: tolerating a missing INFORM beats timing out a working MTA.
    pub fn for_flow(&self, flow: Option<Flow>) -> bool {
        match flow {
            Some(Flow::Basic1) => self.basic1,
            Some(Flow::Basic2) => self.basic2,
            Some(Flow::Hybrid1) => self.hybrid1,
            Some(Flow::Hybrid2) => self.hybrid2,
            None => false,
        }
    }
}

/// Which OIDs the engine uses toward an MTA.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum MibPolicy {
    /// The MIB the MTA's enrollment INFORM was sent in (its snmpTrapOID.0): PacketCable 1.0
    /// MTAs use PKTC-MTA-MIB, 1.5/2.0 MTAs PKTC-IETF-MTA-MIB.
    #[default]
    Detect,
    /// Always this MIB, whatever the INFORM used.
    Force(Mib),
}

impl MibPolicy {
    pub(crate) fn resolve(self, detected: Mib) -> Mib {
        match self {
            MibPolicy::Detect => detected,
            MibPolicy::Force(mib) => mib,
        }
    }
}

/// Why a [`Config`] cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    #[error("inform_communities is empty: every INFORM would go unanswered")]
    NoInformCommunity,
    #[error("{what} must be at least 1")]
    Zero { what: &'static str },
    #[error("first_request_id {value} is not positive")]
    RequestId { value: i32 },
    #[error("initial_timeout {value:?} is under 1 ms")]
    Timeout { value: Duration },
}

impl Config {
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.inform_communities.is_empty() {
            return Err(ConfigError::NoInformCommunity);
        }
        let zero = |what| Err(ConfigError::Zero { what });
        if self.max_flows == 0 {
            return zero("max_flows");
        }
        if self.max_completed == 0 {
            return zero("max_completed");
        }
        if self.backoff == 0 {
            return zero("backoff");
        }
        if self.inform_dedupe_capacity == 0 {
            return zero("inform_dedupe_capacity");
        }
        if self.provisioning_timer < Duration::from_millis(1) {
            return zero("provisioning_timer (ms)");
        }
        if self.first_request_id <= 0 {
            return Err(ConfigError::RequestId {
                value: self.first_request_id,
            });
        }
        if self.initial_timeout < Duration::from_millis(1) {
            return Err(ConfigError::Timeout {
                value: self.initial_timeout,
            });
        }
        Ok(())
    }
}

/// Milliseconds of a duration, saturating.
pub(crate) fn ms(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_is_valid_and_nonsense_is_refused() {
        assert_eq!(Config::default().validate(), Ok(()));
        let bad = |f: fn(&mut Config)| {
            let mut c = Config::default();
            f(&mut c);
            c.validate().unwrap_err()
        };
        assert_eq!(
            bad(|c| c.inform_communities.clear()),
            ConfigError::NoInformCommunity
        );
        assert_eq!(
            bad(|c| c.max_flows = 0),
            ConfigError::Zero { what: "max_flows" }
        );
        assert_eq!(
            bad(|c| c.first_request_id = 0),
            ConfigError::RequestId { value: 0 }
        );
        assert!(matches!(
            bad(|c| c.initial_timeout = Duration::ZERO),
            ConfigError::Timeout { .. }
        ));
    }

    #[test]
    fn status_is_required_by_the_dot_two_flows_only() {
        let e = ExpectStatus::default();
        assert!(!e.for_flow(Some(Flow::Basic1)));
        assert!(e.for_flow(Some(Flow::Basic2)));
        assert!(!e.for_flow(Some(Flow::Hybrid1)));
        assert!(e.for_flow(Some(Flow::Hybrid2)));
        assert!(!e.for_flow(None));
    }
}
