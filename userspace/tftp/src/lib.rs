//! TFTP for a provisioning server (RFC 1350, RFC 1123 §4.2, RFC 2347–2349, RFC 7440), sans-IO:
//! datagrams and the time go in, datagrams to send and decisions to make come out. No sockets,
//! no clock reads, no threads, so every rule is testable on virtual time and fuzzable.
//!
//! * [`Packet`]: the codec, a borrowed view of any datagram and an encoder into caller buffers.
//! * [`Server`]: every transfer of one worker. Feed it with [`Server::handle`], answer its
//!   [`Event::Read`] with [`Server::respond`], run [`Server::poll_timeouts`] at
//!   [`Server::next_deadline`], and send each [`Transmit`] it hands out.
//!
//! Files are [`FileContent`]: shared, immutable bytes. A firmware image fetched by a thousand
//! modems exists once; each transfer holds a reference and a handful of integers.
//!
//! ```
//! use std::net::{Ipv4Addr, SocketAddrV4};
//! use provd_tftp::*;
//!
//! let mut server = Server::new(ServerConfig::default()).unwrap();
//! let modem = SocketAddrV4::new(Ipv4Addr::new(10, 1, 0, 7), 3001);
//! let mut sent = Vec::new();
//! let mut out = |t: Transmit<'_>| sent.push((t.to, t.to_vec()));
//! let rrq = Incoming {
//!     port: Port::Listen,
//!     local: Ipv4Addr::new(10, 0, 0, 1),
//!     peer: modem,
//!     path_mtu: None,
//!     bytes: b"\x00\x01cm/modem.cfg\x00octet\x00",
//! };
//! let now = Millis(0);
//! if let Some(Event::Read(req)) = server.handle(now, rrq, &mut out) {
//!     assert_eq!(req.filename, "cm/modem.cfg");
//!     server.respond(req.id, Ok(FileContent::from(&b"\x03\x01\x01"[..])), now, &mut out);
//! }
//! // One short DATA is the whole file; the modem's ACK 1 ends the transfer.
//! assert_eq!(sent, [(modem, b"\x00\x03\x00\x01\x03\x01\x01".to_vec())]);
//! let ack = Incoming { port: Port::Transfer, bytes: &ack(1), ..rrq };
//! assert_eq!(server.handle(Millis(3), ack, &mut |_| {}), None);
//! assert_eq!(server.counters().completed, 1);
//! // Timers: nothing is due until the dally ends.
//! assert!(server.next_deadline().is_some());
//! ```

mod config;
mod counters;
mod netascii;
mod options;
mod packet;
mod rto;
mod server;
mod transfer;

#[cfg(test)]
mod tests;

use std::borrow::Cow;
use std::fmt;
use std::ops::Deref;
use std::sync::Arc;

pub use config::{ConfigError, ServerConfig};
pub use counters::{Counters, DropReason};
pub use options::{OptionName, Options};
pub use packet::{
    DATA_HEADER_LEN, DEFAULT_BLKSIZE, EncodeError, ErrorCode, MAX_REQUEST_LEN, Mode, Opcode,
    Packet, PacketError, Request, ack, data_header, write_error,
};
pub use server::{Event, FileRequest, Incoming, Port, Server, TransferId, Transmit};

/// A point on the caller's monotonic clock, in milliseconds. Only differences matter; the
/// caller picks the epoch (e.g. its start).
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

/// A file's bytes, shared: cloning is a reference-count increment.
#[derive(Clone, PartialEq, Eq)]
pub struct FileContent(Arc<[u8]>);

impl FileContent {
    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Whether both share one allocation (tests check that caches do share).
    pub fn ptr_eq(&self, other: &FileContent) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}

impl fmt::Debug for FileContent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "FileContent({} bytes)", self.0.len())
    }
}

impl Deref for FileContent {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        &self.0
    }
}

impl AsRef<[u8]> for FileContent {
    fn as_ref(&self) -> &[u8] {
        &self.0
    }
}

impl From<Vec<u8>> for FileContent {
    fn from(v: Vec<u8>) -> Self {
        FileContent(v.into())
    }
}

impl From<&[u8]> for FileContent {
    fn from(v: &[u8]) -> Self {
        FileContent(v.into())
    }
}

impl From<Arc<[u8]>> for FileContent {
    fn from(v: Arc<[u8]>) -> Self {
        FileContent(v)
    }
}

/// A refusal of a request: the ERROR packet the client gets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub code: ErrorCode,
    pub message: Cow<'static, str>,
}

impl Refusal {
    pub fn new(code: ErrorCode, message: impl Into<Cow<'static, str>>) -> Self {
        Refusal {
            code,
            message: message.into(),
        }
    }

    /// ERROR 1 with the RFC's message.
    pub fn not_found() -> Self {
        Self::new(
            ErrorCode::FILE_NOT_FOUND,
            ErrorCode::FILE_NOT_FOUND.default_message(),
        )
    }

    /// ERROR 2 with a reason.
    pub fn access_violation(message: impl Into<Cow<'static, str>>) -> Self {
        Self::new(ErrorCode::ACCESS_VIOLATION, message)
    }
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "error {}: {}", self.code.0, self.message)
    }
}
