//! SNMP message codec for a provisioning server, sans-IO: bytes in, [`Message`] out, and back.
//! No sockets, no clock, no retransmission: request-ids and retries belong to the state machine
//! that uses this crate (the PacketCable MTA flows: enrollment INFORM, config-file SET, status
//! INFORM).
//!
//! * [`Message::decode`] reads any datagram: SNMPv1/v2c with every PDU type including the v1
//!   Trap-PDU, and SNMPv3 headers with USM parameters (the scoped PDU too, unless encrypted).
//!   It is total: malformed input is a [`DecodeError`] naming the field and byte offset.
//! * [`Message::encode`] writes minimal BER; decoding its output gives the same message.
//! * [`response_to`] builds the Response an INFORM needs; [`Message::get`], [`Message::set`],
//!   [`Message::get_bulk`] the requests a server sends.
//! * [`ber`] is the layer underneath (element reader, minimal writers, INTEGER and OID content),
//!   public so that the config files' VarBinds (`provd-docsis`) use the same codec.
//!
//! Why not the `snmp2` crate: it is a client library whose decoder refuses v3 (without its
//! OpenSSL feature), stops silently at the first malformed varbind, and whose encoders only
//! build its own requests (no Trap-PDU, no re-encoding of a decoded message, `assert!` on bad
//! OIDs). The codec here is small and owns its limits.
//!
//! ```
//! use provd_snmp::*;
//!
//! let inform = include_bytes!("../../../tests/data/snmp/snmp_v2c_inform_enrollment.bin");
//! let msg = Message::decode(inform).unwrap();
//! let pdu = msg.pdu().unwrap();
//! assert_eq!(pdu.kind, PduType::InformRequest);
//! assert_eq!(pdu.notification_oid().unwrap().to_string(), "1.3.6.1.2.1.140.0.1");
//! let mac: Oid = "1.3.6.1.2.1.2.2.1.6.1".parse().unwrap();
//! assert_eq!(pdu.get(&mac), Some(&Value::OctetString(vec![0x00, 0x15, 0xcf, 0x12, 0x34, 0x57])));
//!
//! // Acknowledge it: same request-id and varbinds, PDU tag a2.
//! let ack = response_to(&msg).unwrap().to_bytes().unwrap();
//! assert_eq!(ack[15], 0xa2);
//! assert_eq!(ack.len(), inform.len());
//!
//! // Then point the MTA at its config file.
//! let url: Oid = "1.3.6.1.2.1.140.1.2.9.0".parse().unwrap();
//! let set = Message::set(Version::V2c, "private", 2002, [VarBind::new(
//!     url,
//!     Value::OctetString(b"tftp://10.0.0.10/mta/0015cf123457.bin".to_vec()),
//! )]);
//! let mut datagram = Vec::new();
//! set.encode(&mut datagram).unwrap();
//! assert_eq!(Message::decode(&datagram).unwrap(), set);
//! ```

pub mod ber;
mod error;
mod limits;
mod message;
mod oid;
mod pdu;
mod v3;
mod value;
mod version;

pub use error::{DecodeError, EncodeError};
pub use limits::{MAX_MESSAGE_SIZE, MAX_VARBINDS};
pub use message::{Message, response_to};
pub use oid::{MAX_OID_ARCS, Oid, OidError};
pub use pdu::{ErrorStatus, Pdu, PduType, Pdus, SNMP_TRAP_OID_0, SNMP_TRAPS, SYS_UPTIME_0, TrapV1};
pub use v3::{FLAG_AUTH, FLAG_PRIV, FLAG_REPORTABLE, SECURITY_MODEL_USM, ScopedPdu, UsmParams};
pub use value::{Value, VarBind};
pub use version::Version;
