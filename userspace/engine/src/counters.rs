//! Counters for every message type received and sent and every reason a packet was dropped or
//! NAK'd. One set per shard, written only by the shard's own thread (relaxed atomic adds on
//! cache lines no other core writes), read by anyone through [`Counters::snapshot`].

use std::sync::atomic::{AtomicU64, Ordering};

use provd_dhcp::{MessageType, ParseError};

macro_rules! reasons {
    ($(#[$m:meta])* $name:ident { $($variant:ident => $label:literal),+ $(,)? }) => {
        $(#[$m])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum $name { $($variant),+ }
        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant),+];
            pub fn label(self) -> &'static str {
                match self { $($name::$variant => $label),+ }
            }
        }
    };
}

reasons! {
    /// Why a received datagram got no reply.
    Drop {
        Truncated => "truncated",
        TooLong => "too_long",
        BadOp => "bad_op",
        BadHlen => "bad_hlen",
        BadMagic => "bad_magic",
        OptionOverrun => "option_overrun",
        BadOverload => "bad_overload",
        TooManyOptions => "too_many_options",
        NotRequest => "not_bootrequest",
        UnsupportedHardware => "unsupported_htype",
        NoMessageType => "no_message_type",
        UnknownMessageType => "unknown_message_type",
        ServerMessageType => "server_message_type",
        BadRelayInfo => "bad_relay_info",
        NoNetwork => "no_network",
        NoClass => "no_class",
        PoolExhausted => "pool_exhausted",
        AgentLimit => "agent_limit",
        RelayLimit => "relay_limit",
        OtherServerChosen => "other_server_chosen",
        UnknownClient => "unknown_client",
        NotOurBinding => "not_our_binding",
        MalformedRequest => "malformed_request",
        DeclineUnknown => "decline_unknown",
        ReleaseUnknown => "release_unknown",
        ReplyTooLarge => "reply_too_large",
        PersistFailed => "persist_failed",
        DurabilityLost => "durability_lost",
        SendFailed => "send_failed",
        OtherShard => "other_shard",
    }
}

reasons! {
    /// Why a REQUEST was answered with NAK.
    Nak {
        WrongNetwork => "wrong_network",
        NotOffered => "not_offered",
        AddressTaken => "address_taken",
        NotYours => "not_yours",
    }
}

impl From<ParseError> for Drop {
    fn from(e: ParseError) -> Self {
        match e {
            ParseError::Truncated { .. } => Drop::Truncated,
            ParseError::TooLong { .. } => Drop::TooLong,
            ParseError::BadOp { .. } => Drop::BadOp,
            ParseError::BadHlen { .. } => Drop::BadHlen,
            ParseError::BadMagic { .. } => Drop::BadMagic,
            ParseError::TruncatedOption { .. } | ParseError::OptionOverrun { .. } => {
                Drop::OptionOverrun
            }
            ParseError::BadOverload => Drop::BadOverload,
            ParseError::TooManyOptions { .. } => Drop::TooManyOptions,
            _ => Drop::Truncated,
        }
    }
}

const N_TYPES: usize = MessageType::ALL.len();

/// One shard's counters.
#[derive(Debug)]
pub struct Counters {
    received: [AtomicU64; N_TYPES],
    sent: [AtomicU64; N_TYPES],
    drops: Vec<AtomicU64>,
    naks: Vec<AtomicU64>,
    leases_persisted: AtomicU64,
    commits: AtomicU64,
    offers_reused: AtomicU64,
    lost_offers_honoured: AtomicU64,
}

impl Default for Counters {
    fn default() -> Self {
        Counters {
            received: Default::default(),
            sent: Default::default(),
            drops: Drop::ALL.iter().map(|_| AtomicU64::new(0)).collect(),
            naks: Nak::ALL.iter().map(|_| AtomicU64::new(0)).collect(),
            leases_persisted: AtomicU64::new(0),
            commits: AtomicU64::new(0),
            offers_reused: AtomicU64::new(0),
            lost_offers_honoured: AtomicU64::new(0),
        }
    }
}

fn bump(c: &AtomicU64, n: u64) {
    // Single writer per counter set: a relaxed add is enough and never contends.
    c.fetch_add(n, Ordering::Relaxed);
}

impl Counters {
    pub fn received(&self, t: MessageType) {
        bump(&self.received[t as usize - 1], 1);
    }
    pub fn sent(&self, t: MessageType) {
        self.sent_n(t, 1);
    }
    /// `n` replies of type `t` handed to the I/O path.
    pub fn sent_n(&self, t: MessageType, n: u64) {
        bump(&self.sent[t as usize - 1], n);
    }
    pub fn dropped(&self, d: Drop) {
        bump(&self.drops[d as usize], 1);
    }
    pub fn nak(&self, n: Nak) {
        bump(&self.naks[n as usize], 1);
    }
    /// An offer nobody took up went to another client of a pool out of addresses.
    pub fn offer_reused(&self) {
        bump(&self.offers_reused, 1);
    }
    /// A REQUEST for an offer this server no longer held was ACKed (the address was free).
    pub fn lost_offer_honoured(&self) {
        bump(&self.lost_offers_honoured, 1);
    }
    pub fn committed(&self, records: u64) {
        bump(&self.leases_persisted, records);
        bump(&self.commits, 1);
    }

    pub fn snapshot(&self) -> Snapshot {
        let load = |c: &AtomicU64| c.load(Ordering::Relaxed);
        Snapshot {
            received: MessageType::ALL.map(|t| load(&self.received[t as usize - 1])),
            sent: MessageType::ALL.map(|t| load(&self.sent[t as usize - 1])),
            drops: self.drops.iter().map(load).collect(),
            naks: self.naks.iter().map(load).collect(),
            leases_persisted: load(&self.leases_persisted),
            commits: load(&self.commits),
            offers_reused: load(&self.offers_reused),
            lost_offers_honoured: load(&self.lost_offers_honoured),
        }
    }
}

/// A plain copy of counters, summable across shards.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Snapshot {
    pub received: [u64; N_TYPES],
    pub sent: [u64; N_TYPES],
    pub drops: Vec<u64>,
    pub naks: Vec<u64>,
    pub leases_persisted: u64,
    pub commits: u64,
    pub offers_reused: u64,
    pub lost_offers_honoured: u64,
}

impl Snapshot {
    pub fn add(&mut self, o: &Snapshot) {
        let sum = |a: &mut [u64], b: &[u64]| {
            for (x, y) in a.iter_mut().zip(b) {
                *x += y;
            }
        };
        sum(&mut self.received, &o.received);
        sum(&mut self.sent, &o.sent);
        self.drops.resize(Drop::ALL.len(), 0);
        self.naks.resize(Nak::ALL.len(), 0);
        sum(&mut self.drops, &o.drops);
        sum(&mut self.naks, &o.naks);
        self.leases_persisted += o.leases_persisted;
        self.commits += o.commits;
        self.offers_reused += o.offers_reused;
        self.lost_offers_honoured += o.lost_offers_honoured;
    }

    pub fn drop_count(&self, d: Drop) -> u64 {
        self.drops.get(d as usize).copied().unwrap_or(0)
    }
    pub fn nak_count(&self, n: Nak) -> u64 {
        self.naks.get(n as usize).copied().unwrap_or(0)
    }
    pub fn received_count(&self, t: MessageType) -> u64 {
        self.received[t as usize - 1]
    }
    pub fn sent_count(&self, t: MessageType) -> u64 {
        self.sent[t as usize - 1]
    }

    /// Every non-zero counter as `(name, value)`, names in Prometheus style.
    pub fn entries(&self) -> Vec<(String, u64)> {
        let mut v = Vec::new();
        for t in MessageType::ALL {
            v.push((format!("received_{}", t.name()), self.received_count(t)));
            v.push((format!("sent_{}", t.name()), self.sent_count(t)));
        }
        for d in Drop::ALL {
            v.push((format!("drop_{}", d.label()), self.drop_count(*d)));
        }
        for n in Nak::ALL {
            v.push((format!("nak_{}", n.label()), self.nak_count(*n)));
        }
        v.push(("leases_persisted".into(), self.leases_persisted));
        v.push(("commits".into(), self.commits));
        v.push(("offers_reused".into(), self.offers_reused));
        v.push(("lost_offers_honoured".into(), self.lost_offers_honoured));
        v.retain(|(_, n)| *n != 0);
        v
    }
}
