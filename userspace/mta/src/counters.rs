//! What an [`Engine`](crate::Engine) counts. Plain integers owned by the engine; the I/O layer
//! snapshots them and, with several engines, sums them ([`Counters::merge`]).

use crate::flow::ProvState;

/// Declares the scalar counters once, so the struct, its merge and its export cannot drift.
macro_rules! counters {
    ($($(#[$doc:meta])* $name:ident,)*) => {
        /// Protocol and flow counters of one engine, or their sum over engines.
        #[derive(Debug, Clone, Default, PartialEq, Eq)]
        #[non_exhaustive]
        pub struct Counters {
            $($(#[$doc])* pub $name: u64,)*
            /// Status INFORMs by reported pktcMtaDevProvisioningState: index 1..=7 are the
            /// MIB's values, index 0 anything else.
            pub status_by_state: [u64; 8],
            /// Undecodable datagrams by [`DecodeError::name`](provd_snmp::DecodeError::name):
            /// one entry per kind seen, so at most the number of kinds.
            pub undecodable_by_kind: Vec<(&'static str, u64)>,
        }

        impl Counters {
            /// Adds another engine's counters to these. Gauges (`flows_active`) add up too,
            /// which is what a sum over engines wants.
            pub fn merge(&mut self, other: &Counters) {
                $(self.$name += other.$name;)*
                for (a, b) in self.status_by_state.iter_mut().zip(other.status_by_state) {
                    *a += b;
                }
                for &(kind, n) in &other.undecodable_by_kind {
                    self.add_undecodable(kind, n);
                }
            }

            /// Every scalar counter with its name, for exporters.
            pub fn named(&self) -> Vec<(&'static str, u64)> {
                vec![$((stringify!($name), self.$name),)*]
            }
        }
    };
}

counters! {
    /// Datagrams handed to `on_datagram`.
    datagrams,
    /// Datagrams that are not SNMP messages (see `undecodable_by_kind`).
    undecodable,
    /// SNMPv3 messages: not answerable without the SECURE flow's keys.
    snmpv3,
    /// Well-formed messages of a kind the engine has no use for (GET/SET requests, v1 traps,
    /// reports).
    unexpected_pdus,
    /// InformRequests received, duplicates included.
    informs_received,
    /// Responses sent to INFORMs.
    informs_answered,
    /// INFORMs seen before from the same source with the same request-id and bytes: answered
    /// again, not acted on.
    informs_duplicate,
    /// INFORMs (or traps) with a community not in `inform_communities`: dropped unanswered.
    bad_community,
    /// SNMPv2 traps (unconfirmed notifications): acted on, never answered.
    traps_received,
    /// Notifications other than enrollment and status: answered, otherwise ignored.
    other_notifications,
    /// Enrollment notifications acted on.
    enrollments,
    /// Enrollments repeating the current attempt's correlation id (new request-id): ignored.
    enrollments_duplicate,
    /// Enrollment or status notifications without a usable MAC (or state): ignored.
    notifications_invalid,
    /// Status notifications acted on (by state in `status_by_state`).
    statuses,
    /// Status notifications repeating the state already recorded: ignored.
    statuses_duplicate,
    /// Notifications from MTAs without a DHCP binding (records opened by an INFORM).
    unknown_dhcp,
    /// Enrollments and statuses not from the address holding the MTA's DHCP lease (forged,
    /// or an MTA another server leased while `accept_unknown_dhcp` is off): answered, ignored.
    not_lease_holder,
    /// DHCP bindings reported.
    dhcp_bindings,
    /// DHCP bindings identical to an active flow's (a retransmitted REQUEST): ignored.
    dhcp_duplicate,
    /// Capability GETs sent (first copies).
    gets_sent,
    gets_retransmitted,
    gets_answered,
    /// Capability GETs answered with an error or never: the flow goes on without them.
    gets_failed,
    /// Config-file SETs sent (first copies).
    sets_sent,
    sets_retransmitted,
    sets_acked,
    /// SETs answered with an error-status.
    sets_failed,
    /// SETs never answered after every retransmission.
    sets_timed_out,
    /// Responses matching no request in flight (late, or from another address).
    responses_unmatched,
    /// `file_ready` / `file_failed` answers.
    files_ready,
    files_failed,
    /// File fetches reported by the TFTP/HTTP side, and those of MTAs with no record.
    files_fetched,
    files_fetched_unknown,
    /// Flows started (first attempts and restarts).
    flows_started,
    /// Flows restarted by a new DHCP binding or correlation id.
    flows_restarted,
    /// Flows in progress now (a gauge).
    flows_active,
    /// Flows ended by a status INFORM or, where none is required, by the file fetch.
    flows_completed,
    /// Flows ended by an error (SET refused, no file).
    flows_failed,
    /// Flows ended by a timeout (retransmissions exhausted or provisioning timer).
    flows_timed_out,
    /// Flows refused because `max_flows` were in progress.
    too_many_flows,
    /// Finished records evicted to stay within `max_completed`.
    records_evicted,
}

impl Counters {
    pub(crate) fn count_undecodable(&mut self, kind: &'static str) {
        self.undecodable += 1;
        self.add_undecodable(kind, 1);
    }

    fn add_undecodable(&mut self, kind: &'static str, n: u64) {
        match self
            .undecodable_by_kind
            .iter_mut()
            .find(|(k, _)| *k == kind)
        {
            Some((_, c)) => *c += n,
            None => self.undecodable_by_kind.push((kind, n)),
        }
    }

    pub(crate) fn count_status(&mut self, state: ProvState) {
        self.statuses += 1;
        let i = usize::try_from(state.0)
            .ok()
            .filter(|i| (1..=7).contains(i));
        self.status_by_state[i.unwrap_or(0)] += 1;
    }

    /// Undecodable datagrams of one [`DecodeError::name`](provd_snmp::DecodeError::name).
    pub fn undecodable_of(&self, kind: &str) -> u64 {
        self.undecodable_by_kind
            .iter()
            .find(|(k, _)| *k == kind)
            .map_or(0, |(_, n)| *n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merge_adds_every_field() {
        let mut a = Counters {
            informs_received: 1,
            ..Counters::default()
        };
        a.count_undecodable("truncated");
        a.count_status(ProvState::PASS);
        a.count_status(ProvState(42));
        let mut sum = a.clone();
        sum.merge(&a);
        assert_eq!(sum.informs_received, 2);
        assert_eq!(sum.undecodable, 2);
        assert_eq!(sum.undecodable_of("truncated"), 2);
        assert_eq!(sum.undecodable_by_kind.len(), 1);
        assert_eq!(sum.status_by_state[1], 2);
        assert_eq!(sum.status_by_state[0], 2);
        assert_eq!(sum.named().len(), 41);
    }
}
