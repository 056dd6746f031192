//! The server's tunables with their defaults, and the checks that make a config usable.

use std::time::Duration;

use crate::options::Options;

/// Limits and timers of a [`Server`](crate::Server). `Default` is a sound production setting.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerConfig {
    /// Largest block size granted (RFC 2348). 1468 fills a 1500-byte Ethernet frame
    /// (1500 − IP 20 − UDP 8 − TFTP 4); larger values only help on jumbo-frame paths, and the
    /// path MTU the caller reports lowers it further.
    pub max_blksize: u16,
    /// Largest window granted (RFC 7440).
    pub max_windowsize: u16,
    /// Retransmission timeout before any round trip is measured. A client's `timeout` option
    /// replaces the adaptive timeout altogether.
    pub initial_rto: Duration,
    pub min_rto: Duration,
    pub max_rto: Duration,
    /// Timeouts in a row before a transfer is abandoned.
    pub max_retries: u8,
    /// How long a finished transfer is remembered, to absorb a repeated final ACK quietly.
    pub dally: Duration,
    /// How long a request waits for [`Server::respond`](crate::Server::respond) before it is
    /// forgotten (the client's retransmitted request then asks again).
    pub decision_timeout: Duration,
    /// Transfers one server holds at once; requests beyond get ERROR 3. Sized for a region's
    /// boot storm: 65,536 per worker. With 10,000 the storm bench (200,000 devices) counted
    /// 163,563 refusals, each a device retrying seconds later. A transfer costs a few hundred
    /// bytes; sockets of its own are bounded separately, by the descriptor limit.
    pub max_transfers: usize,
    /// Accept WRQ at all (cable provisioning servers normally refuse: ERROR 2).
    pub allow_write: bool,
    /// Largest upload accepted, in bytes.
    pub max_write_size: usize,
    /// Until a peer proves its address (a packet on the transfer's own port, which only a
    /// receiver of our packets knows), it gets at most this many times the bytes it sent
    /// (QUIC's rule, RFC 9000 §8.1). 0 turns the limit off.
    pub amplification_factor: u8,
    /// An unproven transfer is freed this long after its request: a spoofed request holds a
    /// slot no longer.
    pub unproven_timeout: Duration,
    /// Transfers one source address holds at once in one server; its requests beyond are
    /// refused.
    pub max_transfers_per_source: usize,
    /// How long an address that proved itself stays trusted: its next requests start proven.
    pub validated_ttl: Duration,
    /// Addresses remembered as proven (per server); past it the expired ones are swept, then
    /// all are forgotten.
    pub max_validated: usize,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            max_blksize: 1468,
            max_windowsize: 64,
            initial_rto: Duration::from_secs(1),
            min_rto: Duration::from_millis(200),
            max_rto: Duration::from_secs(16),
            max_retries: 5,
            dally: Duration::from_secs(1),
            decision_timeout: Duration::from_secs(5),
            max_transfers: 65_536,
            allow_write: false,
            max_write_size: 1 << 20,
            amplification_factor: 3,
            unproven_timeout: Duration::from_secs(3),
            max_transfers_per_source: 256,
            validated_ttl: Duration::from_secs(600),
            max_validated: 65_536,
        }
    }
}

/// Why a [`ServerConfig`] cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    #[error("max_blksize {value} is outside 8..=65464 (RFC 2348)")]
    Blksize { value: u16 },
    #[error("max_windowsize must be at least 1")]
    Windowsize,
    #[error("retransmission timeouts must satisfy 1 ms <= min_rto ({min:?}) <= max_rto ({max:?})")]
    RtoBounds { min: Duration, max: Duration },
    #[error("max_transfers must be at least 1")]
    MaxTransfers,
    #[error("max_transfers_per_source must be at least 1")]
    MaxTransfersPerSource,
    #[error("unproven_timeout must be at least 100 ms (a peer needs a round trip to prove itself)")]
    UnprovenTimeout,
}

impl ServerConfig {
    pub fn validate(&self) -> Result<(), ConfigError> {
        if !Options::BLKSIZE.contains(&self.max_blksize) {
            return Err(ConfigError::Blksize {
                value: self.max_blksize,
            });
        }
        if self.max_windowsize == 0 {
            return Err(ConfigError::Windowsize);
        }
        if self.min_rto < Duration::from_millis(1) || self.min_rto > self.max_rto {
            return Err(ConfigError::RtoBounds {
                min: self.min_rto,
                max: self.max_rto,
            });
        }
        if self.max_transfers == 0 {
            return Err(ConfigError::MaxTransfers);
        }
        if self.max_transfers_per_source == 0 {
            return Err(ConfigError::MaxTransfersPerSource);
        }
        if self.unproven_timeout < Duration::from_millis(100) {
            return Err(ConfigError::UnprovenTimeout);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_is_valid_and_nonsense_is_refused() {
        assert_eq!(ServerConfig::default().validate(), Ok(()));
        let bad = |f: fn(&mut ServerConfig)| {
            let mut c = ServerConfig::default();
            f(&mut c);
            c.validate().unwrap_err()
        };
        assert_eq!(
            bad(|c| c.max_blksize = 65465),
            ConfigError::Blksize { value: 65465 }
        );
        assert_eq!(bad(|c| c.max_windowsize = 0), ConfigError::Windowsize);
        assert!(matches!(
            bad(|c| c.min_rto = Duration::from_secs(60)),
            ConfigError::RtoBounds { .. }
        ));
        assert_eq!(bad(|c| c.max_transfers = 0), ConfigError::MaxTransfers);
    }
}
