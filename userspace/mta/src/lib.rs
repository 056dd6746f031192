//! PacketCable MTA provisioning over SNMPv2c, sans-IO: the BASIC.1/2 and HYBRID.1/2 flows of
//! PKT-SP-PROV1.5 (J.167) as one state machine per device. DHCP facts, datagrams and the time go
//! in; datagrams to send, [`Event`]s for the caller and per-device [`Record`]s come out. No
//! sockets, no threads, no clock reads, no files: every flow runs on virtual time in tests and
//! under the fuzzer exactly as it runs in the server.
//!
//! * [`Engine::on_dhcp`]: the MTA's DHCP ACK (steps MTA-1..4) opens a flow.
//! * [`Engine::on_datagram`]: INFORMs on UDP 162 are answered at once (the MTA retransmits
//!   until they are) and drive the flow: enrollment (MTA-15), final status (MTA-25); Responses
//!   to the engine's own GET/SET requests (MTA-16/17, MTA-19) arrive here too.
//! * [`Event::NeedFile`]: after a HYBRID enrollment the caller renders the MTA's config file
//!   and answers with [`Engine::file_ready`] (URL + hash: the engine SETs both, MTA-19) or
//!   [`Engine::file_failed`].
//! * [`Engine::on_file_fetched`]: the TFTP/HTTP side saw the MTA fetch its file (MTA-22/23).
//! * [`Engine::poll_timeouts`] at [`Engine::next_deadline`]: SNMP retransmissions with
//!   backoff, and the provisioning timer that bounds the whole flow.
//!
//! The flows and the decisions taken where the PacketCable text could not be checked (which
//! communities, whether HYBRID.1 sends a status INFORM, what to do with an INFORM from an MTA
//! the DHCP side never reported) are described on [`Engine`].
//!
//! ```
//! use std::net::{Ipv4Addr, SocketAddrV4};
//! use provd_mta::*;
//!
//! let mut engine = Engine::new(Config::default()).unwrap();
//! let mac = Mac([0x00, 0x15, 0xcf, 0x12, 0x34, 0x57]);
//! let mta = Ipv4Addr::new(10, 1, 0, 20);
//! let now = Millis(1_700_000_000_000);
//! engine
//!     .on_dhcp(now, Binding {
//!         mac,
//!         addr: mta,
//!         giaddr: Ipv4Addr::new(10, 1, 0, 1),
//!         flow: Flow::Hybrid2,
//!         file_name: None,
//!         provisioning_timer: None,
//!     })
//!     .unwrap();
//!
//! // The enrollment INFORM is answered with a Response carrying the same request-id.
//! let inform = include_bytes!("../../../tests/data/snmp/snmp_v2c_inform_enrollment.bin");
//! let mut sent = Vec::new();
//! let src = SocketAddrV4::new(mta, 1024);
//! engine.on_datagram(now, src, 162, inform, &mut |o: Outgoing<'_>| sent.push(o.to_vec()));
//! assert_eq!(sent.len(), 1);
//!
//! // The caller is asked for the MTA's file.
//! let Some(Event::NeedFile { mac: m, .. }) = engine.poll_event() else { panic!() };
//! assert_eq!(m, mac);
//! assert_eq!(engine.record(mac).unwrap().state, State::FileRequested);
//! ```

mod config;
mod counters;
mod dedupe;
mod engine;
mod flow;
mod notification;
mod oids;
mod record;

#[cfg(test)]
mod tests;

use std::fmt;
use std::str::FromStr;

pub use config::{Config, ConfigError, ExpectStatus, MibPolicy};
pub use counters::Counters;
pub use engine::{
    Binding, DeviceFacts, Engine, Event, FileError, FlowEnd, FromPort, MAX_FLOW_ENDS, Outgoing,
    Refused, RejectReason,
};
pub use flow::{Flow, ProvState, State, Step};
pub use oids::Mib;
pub use record::{Record, Steps};

/// A point in time as the caller's wall clock gives it: milliseconds since the Unix epoch.
/// Timers only use differences (saturating, so a clock stepped back delays them and never
/// panics); the values themselves are what [`Record`] step timestamps show the operator.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Millis(pub u64);

impl Millis {
    pub fn plus(self, ms: u64) -> Millis {
        Millis(self.0.saturating_add(ms))
    }

    /// Milliseconds from `earlier` to `self`, 0 if `earlier` is later.
    pub fn since(self, earlier: Millis) -> u64 {
        self.0.saturating_sub(earlier.0)
    }
}

/// An MTA's MAC address: the key of its flow and record (DHCP chaddr, the enrollment INFORM's
/// ifPhysAddress.1 or pktcMtaDevMacAddress.0). Shown as `00:15:cf:12:34:57`.
#[derive(Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Mac(pub [u8; 6]);

impl Mac {
    /// The MAC in an OCTET STRING value: exactly six bytes.
    pub fn from_bytes(bytes: &[u8]) -> Option<Mac> {
        bytes.try_into().ok().map(Mac)
    }
}

impl fmt::Display for Mac {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let [a, b, c, d, e, g] = self.0;
        write!(f, "{a:02x}:{b:02x}:{c:02x}:{d:02x}:{e:02x}:{g:02x}")
    }
}

impl fmt::Debug for Mac {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Mac({self})")
    }
}

/// Why text is not a MAC address.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "\"{text}\" is not a MAC address (six hex pairs separated by ':' or '-', or 12 hex digits)"
)]
pub struct MacParseError {
    pub text: String,
}

impl FromStr for Mac {
    type Err = MacParseError;

    /// `00:15:cf:12:34:57`, `00-15-CF-12-34-57` or `0015cf123457`.
    fn from_str(s: &str) -> Result<Mac, MacParseError> {
        let err = || MacParseError {
            text: s.to_string(),
        };
        let digits: Vec<u8> = if s.len() == 12 {
            s.bytes().collect()
        } else if s.len() == 17 {
            let sep = s.as_bytes()[2];
            if sep != b':' && sep != b'-' {
                return Err(err());
            }
            let mut d = Vec::with_capacity(12);
            for (i, b) in s.bytes().enumerate() {
                if i % 3 == 2 {
                    if b != sep {
                        return Err(err());
                    }
                } else {
                    d.push(b);
                }
            }
            d
        } else {
            return Err(err());
        };
        let mut mac = [0u8; 6];
        for (byte, pair) in mac.iter_mut().zip(digits.chunks_exact(2)) {
            if !pair.iter().all(u8::is_ascii_hexdigit) {
                return Err(err());
            }
            let text = std::str::from_utf8(pair).map_err(|_| err())?;
            *byte = u8::from_str_radix(text, 16).map_err(|_| err())?;
        }
        Ok(Mac(mac))
    }
}
