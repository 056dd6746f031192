//! What a [`Server`](crate::Server) counts. Plain integers owned by one worker; the I/O layer
//! snapshots and sums them across workers ([`Counters::merge`]).

use crate::packet::{ErrorCode, PacketError};

/// Why a datagram was dropped without changing any transfer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum DropReason {
    /// Not a TFTP packet this server accepts.
    Malformed(PacketError),
    /// A well-formed packet that makes no sense where it arrived (an ACK on the listen port, an
    /// OACK from a client, DATA for a read).
    Unexpected,
    /// From a peer with no transfer on the transfer port (answered with ERROR 5).
    UnknownTransfer,
    /// DATA longer than the negotiated block size.
    OversizedData,
}

impl DropReason {
    pub const KINDS: usize = PacketError::KINDS + 3;

    /// A stable index per kind, below [`Self::KINDS`].
    pub fn index(&self) -> usize {
        match self {
            DropReason::Malformed(e) => e.index(),
            DropReason::Unexpected => PacketError::KINDS,
            DropReason::UnknownTransfer => PacketError::KINDS + 1,
            DropReason::OversizedData => PacketError::KINDS + 2,
        }
    }

    pub fn label(&self) -> &'static str {
        match self {
            DropReason::Malformed(e) => e.label(),
            DropReason::Unexpected => "unexpected",
            DropReason::UnknownTransfer => "unknown_transfer",
            DropReason::OversizedData => "oversized_data",
        }
    }

    /// The label of the kind with index `i`, for exporting [`Counters::dropped`].
    pub fn label_of(i: usize) -> &'static str {
        match i.checked_sub(PacketError::KINDS) {
            None => PacketError::LABELS[i],
            Some(0) => "unexpected",
            Some(1) => "unknown_transfer",
            Some(_) => "oversized_data",
        }
    }
}

/// Declares the scalar counters once, so the struct and its merge cannot drift apart.
macro_rules! counters {
    ($($(#[$doc:meta])* $name:ident,)*) => {
        /// Protocol counters of one server (one worker), or their sum over workers.
        #[derive(Debug, Clone, Default, PartialEq, Eq)]
        #[non_exhaustive]
        pub struct Counters {
            $($(#[$doc])* pub $name: u64,)*
            /// ERROR packets sent, by code (0..=8).
            pub errors_sent: [u64; 9],
            /// Datagrams dropped, by [`DropReason::index`].
            pub dropped: [u64; DropReason::KINDS],
        }

        impl Counters {
            /// Adds another server's counters to these.
            pub fn merge(&mut self, other: &Counters) {
                $(self.$name += other.$name;)*
                for (a, b) in self.errors_sent.iter_mut().zip(other.errors_sent) {
                    *a += b;
                }
                for (a, b) in self.dropped.iter_mut().zip(other.dropped) {
                    *a += b;
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
    /// Read requests received (duplicates included).
    rrq,
    /// Write requests received.
    wrq,
    /// A peer repeated its request before our first answer got through.
    duplicate_requests,
    /// A peer with a live transfer asked for something else: the old transfer was dropped.
    replaced,
    /// Requests turned away because `max_transfers` were in progress.
    too_many_transfers,
    /// Write requests refused because writes are disabled.
    writes_refused,
    /// Requests the file source answered with an error.
    refused,
    /// Requests the caller never answered within the decision timeout.
    decision_timeouts,
    /// Answers for transfers that no longer wait for one.
    stale_responses,
    /// OACKs sent (first copies and retransmissions).
    oack_sent,
    /// DATA packets sent (first copies and retransmissions).
    data_sent,
    /// Payload bytes in those DATA packets.
    data_bytes_sent,
    /// ACKs sent while receiving a write.
    acks_sent,
    /// Packets sent again after a timeout or a client's in-window ACK.
    retransmits,
    /// Retransmission timeouts that fired.
    timeouts,
    /// Transfers abandoned after `max_retries` timeouts.
    gave_up,
    /// Reads whose final ACK arrived.
    completed,
    /// Writes whose final DATA arrived.
    writes_completed,
    /// DATA packets received for writes.
    data_received,
    /// Transfers the peer ended with an ERROR (code 8 included: it refused our OACK).
    peer_errors,
    /// ACKs that acknowledged nothing new (duplicates, stale): ignored, never answered.
    duplicate_acks,
    /// Datagrams on the transfer port from a peer without a transfer.
    unknown_tid,
    /// Datagrams held back because a peer that has not proven its address would have got more
    /// than `amplification_factor` times the bytes it sent.
    amplification_limited,
    /// Transfers whose peer proved its address (a packet on the transfer's own port).
    proven,
    /// Unproven transfers freed after `unproven_timeout`.
    unproven_expired,
    /// Unproven transfers evicted to make room for a new request when the table was full.
    evicted_unproven,
    /// Finished transfers whose dally was cut short to make room for a new request.
    evicted_dallying,
    /// Requests refused because their source already held `max_transfers_per_source`.
    too_many_from_source,
}

impl Counters {
    pub(crate) fn error_sent(&mut self, code: ErrorCode) {
        if let Some(c) = self.errors_sent.get_mut(usize::from(code.0)) {
            *c += 1;
        }
    }

    pub(crate) fn count_drop(&mut self, reason: DropReason) {
        self.dropped[reason.index()] += 1;
    }

    /// How many datagrams were dropped for `reason`'s kind.
    pub fn dropped_for(&self, reason: DropReason) -> u64 {
        self.dropped[reason.index()]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn indices_are_dense_and_labels_agree() {
        let reasons = [
            DropReason::Malformed(PacketError::TrailingBytes { extra: 1 }),
            DropReason::Unexpected,
            DropReason::UnknownTransfer,
            DropReason::OversizedData,
        ];
        for r in reasons {
            assert!(r.index() < DropReason::KINDS);
            assert_eq!(DropReason::label_of(r.index()), r.label());
        }
        assert_eq!(reasons[3].index(), DropReason::KINDS - 1);
    }

    #[test]
    fn merge_adds_every_field() {
        let mut a = Counters {
            rrq: 1,
            ..Counters::default()
        };
        a.error_sent(ErrorCode::UNKNOWN_TRANSFER_ID);
        a.count_drop(DropReason::Unexpected);
        let mut sum = a.clone();
        sum.merge(&a);
        assert_eq!(sum.rrq, 2);
        assert_eq!(sum.errors_sent[5], 2);
        assert_eq!(sum.dropped_for(DropReason::Unexpected), 2);
        assert_eq!(sum.named().len(), 28);
    }
}
