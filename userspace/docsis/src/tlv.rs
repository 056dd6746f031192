//! The TLV tree and its byte encoding.
//!
//! A node is a leaf (raw value bytes) or compound (sub-TLVs). Which types are compound comes
//! from the symbol table ([`crate::symtab`]), keyed by the path of parent types; a value the
//! table calls compound but whose bytes are not an exact run of sub-TLVs stays a leaf. That
//! fallback is what makes decode then encode give back every input byte for byte.

use crate::error::EncodeError;
use crate::symtab::{self, Sym};

/// TLV 64 at the top level of a file carries a 2-byte length (PacketCable 2.0 digit map).
pub const WIDE_LENGTH_TYPE: u8 = 64;

/// One type-length-value element.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Tlv {
    pub typ: u8,
    pub value: Value,
}

/// The value of a TLV: raw bytes, or nested TLVs encoded back to back.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Value {
    Leaf(Vec<u8>),
    Compound(Vec<Tlv>),
}

impl Tlv {
    pub fn leaf(typ: u8, bytes: impl Into<Vec<u8>>) -> Self {
        Tlv {
            typ,
            value: Value::Leaf(bytes.into()),
        }
    }

    pub fn compound(typ: u8, children: Vec<Tlv>) -> Self {
        Tlv {
            typ,
            value: Value::Compound(children),
        }
    }

    /// The value bytes as they go on the wire (children encoded for a compound).
    pub fn value_bytes(&self) -> Result<Vec<u8>, EncodeError> {
        match &self.value {
            Value::Leaf(bytes) => Ok(bytes.clone()),
            Value::Compound(children) => {
                let mut out = Vec::new();
                encode_nested(children, &mut out)?;
                Ok(out)
            }
        }
    }

    /// The length of [`Tlv::value_bytes`], or its error, without making the bytes.
    pub(crate) fn value_len(&self) -> Result<usize, EncodeError> {
        match &self.value {
            Value::Leaf(bytes) => Ok(bytes.len()),
            Value::Compound(children) => children
                .iter()
                .try_fold(0usize, |sum, t| Ok(sum + encoded_len(t, false)?)),
        }
    }
}

/// The length [`encode_tlv`] appends for `tlv`, or its error.
pub(crate) fn encoded_len(tlv: &Tlv, top_level: bool) -> Result<usize, EncodeError> {
    let len = tlv.value_len()?;
    let (header, max) = length_field(tlv.typ, top_level);
    if len > max {
        return Err(EncodeError::ValueTooLong {
            typ: tlv.typ,
            len,
            max,
        });
    }
    Ok(header + len)
}

/// Header size and largest value for a TLV of `typ` at the top level or nested.
pub(crate) fn length_field(typ: u8, top_level: bool) -> (usize, usize) {
    if top_level && typ == WIDE_LENGTH_TYPE {
        (3, usize::from(u16::MAX))
    } else {
        (2, usize::from(u8::MAX))
    }
}

/// Append one TLV (header and value) to `out`.
pub(crate) fn encode_tlv(tlv: &Tlv, top_level: bool, out: &mut Vec<u8>) -> Result<(), EncodeError> {
    // A leaf's bytes are written from where they are; a compound's are encoded first.
    let encoded;
    let value = match &tlv.value {
        Value::Leaf(bytes) => bytes,
        Value::Compound(_) => {
            encoded = tlv.value_bytes()?;
            &encoded
        }
    };
    let (_, max) = length_field(tlv.typ, top_level);
    if value.len() > max {
        return Err(EncodeError::ValueTooLong {
            typ: tlv.typ,
            len: value.len(),
            max,
        });
    }
    out.push(tlv.typ);
    // Both conversions hold: the length was checked against the field's maximum above.
    if max > usize::from(u8::MAX) {
        out.extend_from_slice(&u16::try_from(value.len()).unwrap_or(u16::MAX).to_be_bytes());
    } else {
        out.push(u8::try_from(value.len()).unwrap_or(u8::MAX));
    }
    out.extend_from_slice(value);
    Ok(())
}

/// Append nested TLVs (1-byte lengths throughout).
pub(crate) fn encode_nested(tlvs: &[Tlv], out: &mut Vec<u8>) -> Result<(), EncodeError> {
    tlvs.iter().try_for_each(|t| encode_tlv(t, false, out))
}

/// Decode the value of a TLV of symbol table context `table` (the children of its parent).
/// Compound types become [`Value::Compound`] when their bytes are an exact run of sub-TLVs.
pub(crate) fn decode_value(typ: u8, bytes: &[u8], table: &'static [Sym]) -> Value {
    match symtab::by_code(table, typ).and_then(Sym::children) {
        Some(children) => match split_nested(bytes) {
            Some(parts) => Value::Compound(
                parts
                    .into_iter()
                    .map(|(t, v)| Tlv {
                        typ: t,
                        value: decode_value(t, v, children),
                    })
                    .collect(),
            ),
            None => Value::Leaf(bytes.to_vec()),
        },
        None => Value::Leaf(bytes.to_vec()),
    }
}

/// Split `bytes` into (type, value) pairs with 1-byte lengths; `None` unless they end exactly
/// at the end of `bytes`.
fn split_nested(bytes: &[u8]) -> Option<Vec<(u8, &[u8])>> {
    let mut parts = Vec::new();
    let mut rest = bytes;
    while let [typ, len, tail @ ..] = rest {
        let len = usize::from(*len);
        if len > tail.len() {
            return None;
        }
        let (value, after) = tail.split_at(len);
        parts.push((*typ, value));
        rest = after;
    }
    rest.is_empty().then_some(parts)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn leaf_that_does_not_split_stays_leaf() {
        // ClassOfService (4) is compound, but 3 bytes cannot be a run of sub-TLVs here.
        let v = decode_value(4, &[1, 5, 0], symtab::ROOT);
        assert_eq!(v, Value::Leaf(vec![1, 5, 0]));
    }

    #[test]
    fn wide_length_only_at_top_level() {
        let t = Tlv::leaf(64, vec![0xaa; 300]);
        let mut out = Vec::new();
        encode_tlv(&t, true, &mut out).unwrap();
        assert_eq!(&out[..3], &[64, 0x01, 0x2c]);
        assert!(matches!(
            encode_tlv(&t, false, &mut Vec::new()),
            Err(EncodeError::ValueTooLong { .. })
        ));
    }

    use proptest::prelude::*;

    fn tree() -> impl Strategy<Value = Tlv> {
        let leaf = (any::<u8>(), prop::collection::vec(any::<u8>(), 0..300))
            .prop_map(|(t, v)| Tlv::leaf(t, v));
        leaf.prop_recursive(4, 40, 8, |inner| {
            (any::<u8>(), prop::collection::vec(inner, 0..8))
                .prop_map(|(t, kids)| Tlv::compound(t, kids))
        })
    }

    proptest! {
        /// `value_len` is the length of `value_bytes`, and fails where it fails, alike.
        #[test]
        fn value_len_agrees_with_value_bytes(t in tree()) {
            prop_assert_eq!(t.value_len(), t.value_bytes().map(|b| b.len()));
        }
    }
}
