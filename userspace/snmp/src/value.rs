//! Variable bindings: an object name and its value (RFC 3416 `VarBind`, RFC 2578 SMI types).
//! A value type this codec does not know is a decode error rather than a raw blob: SNMPv2 has a
//! closed set of types, and a blob could not be handed to the provisioning logic anyway.

use std::fmt;

use crate::ber::{Element, Reader, put_element, put_nested, put_signed, put_unsigned, tag};
use crate::error::DecodeError;
use crate::oid::Oid;

/// An SNMP value (ObjectSyntax, plus the three exception values of a Response).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Value {
    /// INTEGER / Integer32. Held as `i64` so that agents sending wider INTEGERs (up to 8
    /// content bytes) still decode.
    Integer(i64),
    /// OCTET STRING: DisplayString, MAC addresses, hashes, SnmpAdminString URLs.
    OctetString(Vec<u8>),
    Null,
    ObjectId(Oid),
    IpAddress([u8; 4]),
    Counter32(u32),
    /// Gauge32, which is also Unsigned32 (same tag, RFC 2578 §7.1.7).
    Gauge32(u32),
    /// Hundredths of a second.
    TimeTicks(u32),
    Opaque(Vec<u8>),
    Counter64(u64),
    NoSuchObject,
    NoSuchInstance,
    EndOfMibView,
}

impl Value {
    /// The BER tag this value is written with.
    pub fn tag(&self) -> u8 {
        match self {
            Value::Integer(_) => tag::INTEGER,
            Value::OctetString(_) => tag::OCTET_STRING,
            Value::Null => tag::NULL,
            Value::ObjectId(_) => tag::OID,
            Value::IpAddress(_) => tag::IP_ADDRESS,
            Value::Counter32(_) => tag::COUNTER32,
            Value::Gauge32(_) => tag::GAUGE32,
            Value::TimeTicks(_) => tag::TIMETICKS,
            Value::Opaque(_) => tag::OPAQUE,
            Value::Counter64(_) => tag::COUNTER64,
            Value::NoSuchObject => tag::NO_SUCH_OBJECT,
            Value::NoSuchInstance => tag::NO_SUCH_INSTANCE,
            Value::EndOfMibView => tag::END_OF_MIB_VIEW,
        }
    }

    /// The SMI name of the type, as operators see it in MIBs and net-snmp output.
    pub fn type_name(&self) -> &'static str {
        match self {
            Value::Integer(_) => "INTEGER",
            Value::OctetString(_) => "OCTET STRING",
            Value::Null => "NULL",
            Value::ObjectId(_) => "OBJECT IDENTIFIER",
            Value::IpAddress(_) => "IpAddress",
            Value::Counter32(_) => "Counter32",
            Value::Gauge32(_) => "Gauge32",
            Value::TimeTicks(_) => "TimeTicks",
            Value::Opaque(_) => "Opaque",
            Value::Counter64(_) => "Counter64",
            Value::NoSuchObject => "noSuchObject",
            Value::NoSuchInstance => "noSuchInstance",
            Value::EndOfMibView => "endOfMibView",
        }
    }

    /// Whether this is one of the Response exceptions (noSuchObject, noSuchInstance,
    /// endOfMibView) rather than a value.
    pub fn is_exception(&self) -> bool {
        matches!(
            self,
            Value::NoSuchObject | Value::NoSuchInstance | Value::EndOfMibView
        )
    }

    /// The bytes of an OCTET STRING (or Opaque).
    pub fn as_bytes(&self) -> Option<&[u8]> {
        match self {
            Value::OctetString(b) | Value::Opaque(b) => Some(b),
            _ => None,
        }
    }

    /// Any integer-valued type as `i64` (Counter64 only when it fits).
    pub fn as_i64(&self) -> Option<i64> {
        match *self {
            Value::Integer(v) => Some(v),
            Value::Counter32(v) | Value::Gauge32(v) | Value::TimeTicks(v) => Some(i64::from(v)),
            Value::Counter64(v) => i64::try_from(v).ok(),
            _ => None,
        }
    }

    pub fn as_oid(&self) -> Option<&Oid> {
        match self {
            Value::ObjectId(oid) => Some(oid),
            _ => None,
        }
    }

    pub(crate) fn decode(el: &Element<'_>) -> Result<Value, DecodeError> {
        let content = el.content();
        let bad_len = |what: &'static str, expected: usize| DecodeError::BadValueLength {
            what,
            offset: el.offset,
            len: content.len(),
            expected,
        };
        let empty = |what: &'static str| {
            if content.is_empty() {
                Ok(())
            } else {
                Err(bad_len(what, 0))
            }
        };
        Ok(match el.tag {
            tag::INTEGER => Value::Integer(el.signed("INTEGER value")?),
            tag::OCTET_STRING => Value::OctetString(content.to_vec()),
            tag::NULL => {
                empty("NULL value")?;
                Value::Null
            }
            tag::OID => Value::ObjectId(Oid::decode(content, el.content_offset())?),
            tag::IP_ADDRESS => Value::IpAddress(
                <[u8; 4]>::try_from(content).map_err(|_| bad_len("IpAddress value", 4))?,
            ),
            tag::COUNTER32 => Value::Counter32(el.unsigned32("Counter32 value")?),
            tag::GAUGE32 => Value::Gauge32(el.unsigned32("Gauge32 value")?),
            tag::TIMETICKS => Value::TimeTicks(el.unsigned32("TimeTicks value")?),
            tag::OPAQUE => Value::Opaque(content.to_vec()),
            tag::COUNTER64 => Value::Counter64(el.unsigned("Counter64 value", 9)?),
            tag::NO_SUCH_OBJECT => {
                empty("noSuchObject")?;
                Value::NoSuchObject
            }
            tag::NO_SUCH_INSTANCE => {
                empty("noSuchInstance")?;
                Value::NoSuchInstance
            }
            tag::END_OF_MIB_VIEW => {
                empty("endOfMibView")?;
                Value::EndOfMibView
            }
            other => {
                return Err(DecodeError::UnknownValueType {
                    offset: el.offset,
                    tag: other,
                });
            }
        })
    }

    pub(crate) fn encode(&self, out: &mut Vec<u8>) {
        match self {
            Value::Integer(v) => put_signed(out, tag::INTEGER, *v),
            Value::OctetString(b) | Value::Opaque(b) => put_element(out, self.tag(), b),
            Value::ObjectId(oid) => oid.encode(out),
            Value::IpAddress(a) => put_element(out, tag::IP_ADDRESS, a),
            Value::Counter32(v) | Value::Gauge32(v) | Value::TimeTicks(v) => {
                put_unsigned(out, self.tag(), u64::from(*v));
            }
            Value::Counter64(v) => put_unsigned(out, tag::COUNTER64, *v),
            Value::Null | Value::NoSuchObject | Value::NoSuchInstance | Value::EndOfMibView => {
                put_element(out, self.tag(), &[]);
            }
        }
    }
}

/// net-snmp-like rendering for logs: strings as text when printable, else hex.
impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Integer(v) => write!(f, "INTEGER: {v}"),
            Value::OctetString(b) | Value::Opaque(b) => {
                write!(f, "{}: ", self.type_name())?;
                if !b.is_empty() && b.iter().all(|c| (0x20..0x7f).contains(c)) {
                    write!(f, "\"{}\"", String::from_utf8_lossy(b))
                } else {
                    for (i, c) in b.iter().enumerate() {
                        let sep = if i == 0 { "" } else { " " };
                        write!(f, "{sep}{c:02x}")?;
                    }
                    Ok(())
                }
            }
            Value::ObjectId(oid) => write!(f, "OID: {oid}"),
            Value::IpAddress([a, b, c, d]) => write!(f, "IpAddress: {a}.{b}.{c}.{d}"),
            Value::Counter32(v) | Value::Gauge32(v) | Value::TimeTicks(v) => {
                write!(f, "{}: {v}", self.type_name())
            }
            Value::Counter64(v) => write!(f, "Counter64: {v}"),
            Value::Null | Value::NoSuchObject | Value::NoSuchInstance | Value::EndOfMibView => {
                f.write_str(self.type_name())
            }
        }
    }
}

/// One variable binding.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct VarBind {
    pub oid: Oid,
    pub value: Value,
}

impl VarBind {
    pub fn new(oid: Oid, value: Value) -> VarBind {
        VarBind { oid, value }
    }

    /// A binding with a NULL value: what GET, GETNEXT and GETBULK requests carry.
    pub fn null(oid: Oid) -> VarBind {
        VarBind {
            oid,
            value: Value::Null,
        }
    }

    pub(crate) fn encode(&self, out: &mut Vec<u8>) {
        put_nested(out, tag::SEQUENCE, |o| {
            self.oid.encode(o);
            self.value.encode(o);
        });
    }
}

impl fmt::Display for VarBind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} = {}", self.oid, self.value)
    }
}

/// Decodes a VarBindList, refusing more than `max` bindings before reading the one too many.
pub(crate) fn decode_varbinds(list: &Element<'_>, max: usize) -> Result<Vec<VarBind>, DecodeError> {
    let mut r = list.reader();
    let mut varbinds = Vec::new();
    while !r.is_empty() {
        if varbinds.len() == max {
            return Err(DecodeError::TooManyVarBinds {
                offset: r.offset(),
                max,
            });
        }
        varbinds.push(decode_varbind(&mut r)?);
    }
    Ok(varbinds)
}

fn decode_varbind(r: &mut Reader<'_>) -> Result<VarBind, DecodeError> {
    let seq = r.expect(tag::SEQUENCE, "varbind")?;
    let mut inner = seq.reader();
    let name = inner.expect(tag::OID, "varbind name")?;
    let oid = Oid::decode(name.content(), name.content_offset())?;
    let value = Value::decode(&inner.element("varbind value")?)?;
    inner.finish("varbind")?;
    Ok(VarBind { oid, value })
}

pub(crate) fn encode_varbinds(out: &mut Vec<u8>, varbinds: &[VarBind]) {
    put_nested(out, tag::SEQUENCE, |o| {
        for vb in varbinds {
            vb.encode(o);
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode_one(bytes: &[u8]) -> Result<Value, DecodeError> {
        Value::decode(&Reader::new(bytes).element("value")?)
    }

    fn encoded(v: &Value) -> Vec<u8> {
        let mut out = Vec::new();
        v.encode(&mut out);
        out
    }

    #[test]
    fn every_type_round_trips() {
        let values = [
            Value::Integer(-5),
            Value::Integer(i64::MAX),
            Value::OctetString(b"2.1.0".to_vec()),
            Value::OctetString(Vec::new()),
            Value::Null,
            Value::ObjectId(Oid::from_slice(&[1, 3, 6, 1, 2, 1, 140, 0, 1]).unwrap()),
            Value::IpAddress([10, 0, 0, 10]),
            Value::Counter32(u32::MAX),
            Value::Gauge32(0x1234_abcd),
            Value::TimeTicks(4200),
            Value::Opaque(vec![0x9f, 0x78, 0x04, 0, 0, 0, 0]),
            Value::Counter64(u64::MAX),
            Value::NoSuchObject,
            Value::NoSuchInstance,
            Value::EndOfMibView,
        ];
        for v in values {
            let bytes = encoded(&v);
            assert_eq!(bytes[0], v.tag());
            assert_eq!(decode_one(&bytes).unwrap(), v, "{v}");
        }
        assert_eq!(encoded(&Value::TimeTicks(4200)), [0x43, 0x02, 0x10, 0x68]);
        assert_eq!(encoded(&Value::EndOfMibView), [0x82, 0x00]);
    }

    #[test]
    fn malformed_values_are_typed_errors() {
        assert!(matches!(
            decode_one(&[0x05, 0x01, 0x00]),
            Err(DecodeError::BadValueLength {
                what: "NULL value",
                len: 1,
                expected: 0,
                ..
            })
        ));
        assert!(matches!(
            decode_one(&[0x40, 0x03, 10, 0, 0]),
            Err(DecodeError::BadValueLength { expected: 4, .. })
        ));
        assert!(matches!(
            decode_one(&[0x80, 0x01, 0x00]),
            Err(DecodeError::BadValueLength { .. })
        ));
        // BOOLEAN, BIT STRING, constructed OCTET STRING, NsapAddress: not SNMP values.
        for t in [0x01u8, 0x03, 0x24, 0x45, 0x30, 0xa0] {
            assert_eq!(
                decode_one(&[t, 0x00]),
                Err(DecodeError::UnknownValueType { offset: 0, tag: t })
            );
        }
        assert!(matches!(
            decode_one(&[0x43, 0x00]),
            Err(DecodeError::EmptyInteger { .. })
        ));
    }

    #[test]
    fn display_for_logs() {
        assert_eq!(
            Value::OctetString(b"2.1.0".to_vec()).to_string(),
            "OCTET STRING: \"2.1.0\""
        );
        assert_eq!(
            Value::OctetString(vec![0x00, 0x15, 0xcf]).to_string(),
            "OCTET STRING: 00 15 cf"
        );
        assert_eq!(Value::Gauge32(7).to_string(), "Gauge32: 7");
        let vb = VarBind::null(Oid::from_slice(&[1, 3, 6, 1, 2, 1, 1, 3, 0]).unwrap());
        assert_eq!(vb.to_string(), "1.3.6.1.2.1.1.3.0 = NULL");
    }
}
