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

mod clock;
mod config;
mod content;
mod counters;
mod netascii;
mod options;
mod packet;
mod rto;
mod server;
mod transfer;

#[cfg(test)]
mod tests;

pub use clock::Millis;
pub use config::{ConfigError, ServerConfig};
pub use content::{FileContent, Refusal};
pub use counters::{Counters, DropReason};
pub use options::{OptionName, Options};
pub use packet::{
    DATA_HEADER_LEN, DEFAULT_BLKSIZE, EncodeError, ErrorCode, MAX_REQUEST_LEN, Mode, Opcode,
    Packet, PacketError, Request, ack, data_header, write_error,
};
pub use server::{Ended, Event, FileRequest, Incoming, Port, Server, TransferId};
pub use transfer::Transmit;
