//! The parts of an SNMPv3 message (RFC 3412 §6, RFC 3414 §2.4): USM security parameters and
//! the scoped PDU. Enough to recognise v3 traffic, count it by user and engine, and read
//! unencrypted PDUs; authentication and privacy (HMAC, DES/AES) are the caller's, since they
//! need keys this codec never sees.

use crate::ber::{Element, Reader, put_element, put_nested, put_signed, tag};
use crate::error::DecodeError;
use crate::pdu::Pdu;

/// msgFlags bit: the message is authenticated.
pub const FLAG_AUTH: u8 = 0x01;
/// msgFlags bit: the scoped PDU is encrypted.
pub const FLAG_PRIV: u8 = 0x02;
/// msgFlags bit: the sender wants a Report on error.
pub const FLAG_REPORTABLE: u8 = 0x04;
/// msgSecurityModel of the User-based Security Model (RFC 3414).
pub const SECURITY_MODEL_USM: i32 = 3;

/// UsmSecurityParameters (RFC 3414 §2.4), as sent; nothing is verified here.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct UsmParams {
    /// msgAuthoritativeEngineID: empty in a discovery request.
    pub engine_id: Vec<u8>,
    pub engine_boots: i32,
    pub engine_time: i32,
    pub user_name: Vec<u8>,
    /// The HMAC (12 bytes for HMAC-MD5-96 / HMAC-SHA-96), zeros while it is computed.
    pub auth_params: Vec<u8>,
    /// The privacy salt.
    pub priv_params: Vec<u8>,
}

impl UsmParams {
    /// Decodes the SEQUENCE inside msgSecurityParameters' OCTET STRING.
    pub(crate) fn decode(octets: &Element<'_>) -> Result<UsmParams, DecodeError> {
        let mut outer = octets.reader();
        let seq = outer.expect(tag::SEQUENCE, "UsmSecurityParameters")?;
        outer.finish("msgSecurityParameters")?;
        let mut r = seq.reader();
        let usm = UsmParams {
            engine_id: r.octets("msgAuthoritativeEngineID")?,
            engine_boots: r.i32("msgAuthoritativeEngineBoots")?,
            engine_time: r.i32("msgAuthoritativeEngineTime")?,
            user_name: r.octets("msgUserName")?,
            auth_params: r.octets("msgAuthenticationParameters")?,
            priv_params: r.octets("msgPrivacyParameters")?,
        };
        r.finish("UsmSecurityParameters")?;
        Ok(usm)
    }

    /// Writes the SEQUENCE (the caller wraps it in the OCTET STRING).
    pub(crate) fn encode(&self, out: &mut Vec<u8>) {
        put_nested(out, tag::SEQUENCE, |o| {
            put_element(o, tag::OCTET_STRING, &self.engine_id);
            put_signed(o, tag::INTEGER, self.engine_boots.into());
            put_signed(o, tag::INTEGER, self.engine_time.into());
            put_element(o, tag::OCTET_STRING, &self.user_name);
            put_element(o, tag::OCTET_STRING, &self.auth_params);
            put_element(o, tag::OCTET_STRING, &self.priv_params);
        });
    }
}

/// msgData: a ScopedPDU in the clear, or the encrypted bytes of one (privFlag set).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum ScopedPdu {
    Plain {
        context_engine_id: Vec<u8>,
        context_name: Vec<u8>,
        pdu: Pdu,
    },
    /// The encryptedPDU OCTET STRING's content, undecrypted.
    Encrypted(Vec<u8>),
}

impl ScopedPdu {
    pub fn is_encrypted(&self) -> bool {
        matches!(self, ScopedPdu::Encrypted(_))
    }

    /// The PDU, when it is readable.
    pub fn pdu(&self) -> Option<&Pdu> {
        match self {
            ScopedPdu::Plain { pdu, .. } => Some(pdu),
            ScopedPdu::Encrypted(_) => None,
        }
    }

    /// Reads msgData; `flags` decides which CHOICE alternative is expected (RFC 3412 §7.2
    /// step 6), so a plaintext PDU under privFlag is refused rather than trusted.
    pub(crate) fn decode(r: &mut Reader<'_>, flags: u8) -> Result<ScopedPdu, DecodeError> {
        if flags & FLAG_PRIV != 0 {
            return Ok(ScopedPdu::Encrypted(r.octets("encryptedPDU")?));
        }
        let seq = r.expect(tag::SEQUENCE, "scopedPDU")?;
        let mut s = seq.reader();
        let context_engine_id = s.octets("contextEngineID")?;
        let context_name = s.octets("contextName")?;
        // Only SNMPv2 PDUs travel in v3: a v1 Trap-PDU tag here is an unknown PDU type.
        let pdu = Pdu::decode(&s.element("PDU")?)?;
        s.finish("scopedPDU")?;
        Ok(ScopedPdu::Plain {
            context_engine_id,
            context_name,
            pdu,
        })
    }

    pub(crate) fn encode(&self, out: &mut Vec<u8>) {
        match self {
            ScopedPdu::Plain {
                context_engine_id,
                context_name,
                pdu,
            } => put_nested(out, tag::SEQUENCE, |o| {
                put_element(o, tag::OCTET_STRING, context_engine_id);
                put_element(o, tag::OCTET_STRING, context_name);
                pdu.encode(o);
            }),
            ScopedPdu::Encrypted(bytes) => put_element(out, tag::OCTET_STRING, bytes),
        }
    }
}
