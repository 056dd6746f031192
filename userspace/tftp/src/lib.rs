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
