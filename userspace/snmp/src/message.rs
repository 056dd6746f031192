//! Whole SNMP messages, one per UDP datagram: community-based v1/v2c (RFC 1157, RFC 1901) and
//! v3 (RFC 3412). [`Message::decode`] takes any datagram and returns a message or a typed
//! error; [`Message::encode`] writes the minimal BER form, which decodes back to the same
//! message. Builders make the requests a provisioning server sends, and [`response_to`] the
//! acknowledgement every INFORM is owed.

use crate::ber::{Reader, put_element, put_nested, put_signed, tag};
use crate::error::{DecodeError, EncodeError};
use crate::limits::{MAX_MESSAGE_SIZE, MAX_VARBINDS};
use crate::oid::Oid;
use crate::pdu::{Pdu, PduType, Pdus};
use crate::v3::{FLAG_PRIV, SECURITY_MODEL_USM, ScopedPdu, UsmParams};
use crate::value::VarBind;
use crate::version::Version;

/// One SNMP message.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Message {
    /// SNMPv1 or SNMPv2c: a community string and a PDU.
    Community {
        /// [`Version::V1`] or [`Version::V2c`]; encoding refuses `V3` here.
        version: Version,
        community: Vec<u8>,
        pdu: Pdus,
    },
    /// SNMPv3 (RFC 3412 §6).
    V3 {
        msg_id: i32,
        max_size: i32,
        /// See [`FLAG_AUTH`](crate::FLAG_AUTH), [`FLAG_PRIV`], [`FLAG_REPORTABLE`](crate::FLAG_REPORTABLE).
        flags: u8,
        security_model: i32,
        /// The USM parameters, present exactly when `security_model` is 3.
        usm: Option<UsmParams>,
        /// msgSecurityParameters as sent, for other security models (empty with USM), so a
        /// message of any model re-encodes unchanged.
        security_params: Vec<u8>,
        scoped_pdu: ScopedPdu,
    },
}

impl Message {
    /// Decodes one datagram. Total: any input gives a message or a [`DecodeError`], reading
    /// at most [`MAX_MESSAGE_SIZE`] bytes and [`MAX_VARBINDS`] varbinds per PDU. The grammar
    /// is walked without recursion, at most six elements deep (message, scopedPDU, PDU, varbind
    /// list, varbind, value), so deep nesting in the input costs nothing but an error.
    pub fn decode(bytes: &[u8]) -> Result<Message, DecodeError> {
        if bytes.len() > MAX_MESSAGE_SIZE {
            return Err(DecodeError::TooLarge {
                len: bytes.len(),
                max: MAX_MESSAGE_SIZE,
            });
        }
        let mut top = Reader::new(bytes);
        let seq = top.expect(tag::SEQUENCE, "message")?;
        top.finish("message")?;
        let mut r = seq.reader();
        let version_el = r.expect(tag::INTEGER, "version")?;
        let version = match version_el.signed("version")? {
            0 => Version::V1,
            1 => Version::V2c,
            3 => return decode_v3(&mut r),
            other => {
                return Err(DecodeError::UnsupportedVersion {
                    offset: version_el.offset,
                    version: other,
                });
            }
        };
        let community = r.octets("community")?;
        let pdu = Pdus::decode(&r.element("PDU")?)?;
        r.finish("message")?;
        Ok(Message::Community {
            version,
            community,
            pdu,
        })
    }

    /// Appends the minimal BER encoding to `out`. On error `out` is left as it was. Whatever
    /// this writes, [`Message::decode`] reads back as an equal message.
    pub fn encode(&self, out: &mut Vec<u8>) -> Result<(), EncodeError> {
        self.check()?;
        let start = out.len();
        put_nested(out, tag::SEQUENCE, |o| self.encode_body(o));
        let len = out.len() - start;
        if len > MAX_MESSAGE_SIZE {
            out.truncate(start);
            return Err(EncodeError::TooLarge {
                len,
                max: MAX_MESSAGE_SIZE,
            });
        }
        Ok(())
    }

    /// The encoding in a new buffer.
    pub fn to_bytes(&self) -> Result<Vec<u8>, EncodeError> {
        let mut out = Vec::new();
        self.encode(&mut out)?;
        Ok(out)
    }

    /// Everything that would make the bytes decode to something else, checked up front so
    /// the writers themselves cannot fail.
    fn check(&self) -> Result<(), EncodeError> {
        let varbinds = match self {
            Message::Community { version, pdu, .. } => {
                if *version == Version::V3 {
                    return Err(EncodeError::CommunityVersion { version: *version });
                }
                pdu.varbinds()
            }
            Message::V3 {
                flags,
                security_model,
                usm,
                security_params,
                scoped_pdu,
                ..
            } => {
                let usm_model = *security_model == SECURITY_MODEL_USM;
                if usm_model != usm.is_some() || (usm.is_some() && !security_params.is_empty()) {
                    return Err(EncodeError::SecurityParams {
                        security_model: *security_model,
                    });
                }
                let encrypted = scoped_pdu.is_encrypted();
                if (flags & FLAG_PRIV != 0) != encrypted {
                    return Err(EncodeError::PrivFlag {
                        flags: *flags,
                        encrypted,
                    });
                }
                scoped_pdu.pdu().map_or(&[][..], |p| &p.varbinds)
            }
        };
        if varbinds.len() > MAX_VARBINDS {
            return Err(EncodeError::TooManyVarBinds {
                count: varbinds.len(),
                max: MAX_VARBINDS,
            });
        }
        Ok(())
    }

    fn encode_body(&self, o: &mut Vec<u8>) {
        match self {
            Message::Community {
                version,
                community,
                pdu,
            } => {
                put_signed(o, tag::INTEGER, version.number());
                put_element(o, tag::OCTET_STRING, community);
                pdu.encode(o);
            }
            Message::V3 {
                msg_id,
                max_size,
                flags,
                security_model,
                usm,
                security_params,
                scoped_pdu,
            } => {
                put_signed(o, tag::INTEGER, Version::V3.number());
                put_nested(o, tag::SEQUENCE, |h| {
                    put_signed(h, tag::INTEGER, (*msg_id).into());
                    put_signed(h, tag::INTEGER, (*max_size).into());
                    put_element(h, tag::OCTET_STRING, &[*flags]);
                    put_signed(h, tag::INTEGER, (*security_model).into());
                });
                match usm {
                    Some(usm) => put_nested(o, tag::OCTET_STRING, |s| usm.encode(s)),
                    None => put_element(o, tag::OCTET_STRING, security_params),
                }
                scoped_pdu.encode(o);
            }
        }
    }

    /// A community-based message carrying `pdu`.
    pub fn from_pdu(version: Version, community: impl Into<Vec<u8>>, pdu: Pdu) -> Message {
        Message::Community {
            version,
            community: community.into(),
            pdu: Pdus::Pdu(pdu),
        }
    }

    /// A GetRequest for `oids`.
    pub fn get(
        version: Version,
        community: impl Into<Vec<u8>>,
        request_id: i32,
        oids: impl IntoIterator<Item = Oid>,
    ) -> Message {
        Message::from_pdu(version, community, Pdu::get_request(request_id, oids))
    }

    /// A GetNextRequest for `oids`.
    pub fn get_next(
        version: Version,
        community: impl Into<Vec<u8>>,
        request_id: i32,
        oids: impl IntoIterator<Item = Oid>,
    ) -> Message {
        Message::from_pdu(version, community, Pdu::get_next_request(request_id, oids))
    }

    /// A GetBulkRequest (SNMPv2c; v1 agents do not know it).
    pub fn get_bulk(
        version: Version,
        community: impl Into<Vec<u8>>,
        request_id: i32,
        non_repeaters: i32,
        max_repetitions: i32,
        oids: impl IntoIterator<Item = Oid>,
    ) -> Message {
        let pdu = Pdu::get_bulk_request(request_id, non_repeaters, max_repetitions, oids);
        Message::from_pdu(version, community, pdu)
    }

    /// A SetRequest writing `varbinds` (e.g. pktcMtaDevConfigFile.0 and
    /// pktcMtaDevProvConfigHash.0 in one SET, as the MTA expects).
    pub fn set(
        version: Version,
        community: impl Into<Vec<u8>>,
        request_id: i32,
        varbinds: impl IntoIterator<Item = VarBind>,
    ) -> Message {
        Message::from_pdu(version, community, Pdu::set_request(request_id, varbinds))
    }

    pub fn version(&self) -> Version {
        match self {
            Message::Community { version, .. } => *version,
            Message::V3 { .. } => Version::V3,
        }
    }

    /// The community string of a v1/v2c message.
    pub fn community(&self) -> Option<&[u8]> {
        match self {
            Message::Community { community, .. } => Some(community),
            Message::V3 { .. } => None,
        }
    }

    /// The SNMPv2-shaped PDU, if there is a readable one (not a v1 trap, not encrypted).
    pub fn pdu(&self) -> Option<&Pdu> {
        match self {
            Message::Community {
                pdu: Pdus::Pdu(pdu),
                ..
            } => Some(pdu),
            Message::Community { .. } => None,
            Message::V3 { scoped_pdu, .. } => scoped_pdu.pdu(),
        }
    }

    /// The request-id, to match a Response to the request it answers (readable PDUs only).
    pub fn request_id(&self) -> Option<i32> {
        self.pdu().map(|p| p.request_id)
    }

    /// The PDU type, when readable; v1 traps and encrypted PDUs have none.
    pub fn pdu_type(&self) -> Option<PduType> {
        self.pdu().map(|p| p.kind)
    }
}

/// The Response-PDU an INFORM needs (RFC 3416 §4.2.7): same version, community and
/// request-id, the same varbinds, noError. `None` for anything that is not a v1/v2c
/// InformRequest: a v3 response needs USM authentication with keys this codec does not hold
/// (build it from [`Pdu::response`]).
pub fn response_to(inform: &Message) -> Option<Message> {
    match inform {
        Message::Community {
            version,
            community,
            pdu: Pdus::Pdu(pdu),
        } if pdu.kind == PduType::InformRequest => Some(Message::Community {
            version: *version,
            community: community.clone(),
            pdu: Pdus::Pdu(pdu.response()),
        }),
        _ => None,
    }
}

fn decode_v3(r: &mut Reader<'_>) -> Result<Message, DecodeError> {
    let header = r.expect(tag::SEQUENCE, "msgGlobalData")?;
    let mut h = header.reader();
    let msg_id = h.i32("msgID")?;
    let max_size = h.i32("msgMaxSize")?;
    let flags_el = h.expect(tag::OCTET_STRING, "msgFlags")?;
    let flags = match flags_el.content() {
        [flags] => *flags,
        other => {
            return Err(DecodeError::BadMsgFlags {
                offset: flags_el.offset,
                len: other.len(),
            });
        }
    };
    let security_model = h.i32("msgSecurityModel")?;
    h.finish("msgGlobalData")?;
    let params = r.expect(tag::OCTET_STRING, "msgSecurityParameters")?;
    let (usm, security_params) = if security_model == SECURITY_MODEL_USM {
        (Some(UsmParams::decode(&params)?), Vec::new())
    } else {
        (None, params.content().to_vec())
    };
    let scoped_pdu = ScopedPdu::decode(r, flags)?;
    r.finish("message")?;
    Ok(Message::V3 {
        msg_id,
        max_size,
        flags,
        security_model,
        usm,
        security_params,
        scoped_pdu,
    })
}
