//! OBJECT IDENTIFIER: the name of every SNMP variable. An [`Oid`] that exists is encodable
//! (two to 128 arcs, a first arc of 0..=2, a second arc BER can pack with it), so the encoder
//! never has to refuse one and a decoded OID always re-encodes.

use std::fmt;
use std::str::FromStr;

use thiserror::Error;

use crate::ber::{
    SubIdError, oid_first_subidentifier, put_nested, put_oid_content, read_subidentifier,
    split_first_subidentifier, tag,
};
use crate::error::DecodeError;

/// RFC 2578 §3.5: an OID has at most 128 sub-identifiers.
pub const MAX_OID_ARCS: usize = 128;

/// An OBJECT IDENTIFIER such as `1.3.6.1.2.1.1.3.0`. Ordering is SNMP's lexicographic order
/// (the order GETNEXT walks).
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Oid(Vec<u32>);

/// Why arcs or text are not an [`Oid`].
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum OidError {
    #[error("an OID needs at least two arcs, {len} given")]
    TooShort { len: usize },
    #[error("an OID has at most {MAX_OID_ARCS} arcs, {len} given")]
    TooLong { len: usize },
    #[error("first arc {arc} is not 0, 1 or 2")]
    FirstArc { arc: u32 },
    /// Under 0 and 1 the second arc is below 40; under 2 it must leave room for the +80 of the
    /// first sub-identifier.
    #[error("second arc {second} cannot follow first arc {first}")]
    SecondArc { first: u32, second: u32 },
    #[error("\"{text}\" is not a dotted OID")]
    Syntax { text: String },
}

impl Oid {
    /// The OID with these arcs, if BER can encode it.
    pub fn new(arcs: impl Into<Vec<u32>>) -> Result<Oid, OidError> {
        let arcs = arcs.into();
        check(&arcs)?;
        Ok(Oid(arcs))
    }

    /// Like [`Oid::new`], from a borrowed slice (the usual way with constant arcs).
    pub fn from_slice(arcs: &[u32]) -> Result<Oid, OidError> {
        check(arcs)?;
        Ok(Oid(arcs.to_vec()))
    }

    pub fn as_slice(&self) -> &[u32] {
        &self.0
    }

    /// Whether `prefix` names this OID or one of its ancestors (a subtree test).
    pub fn starts_with(&self, prefix: impl AsRef<[u32]>) -> bool {
        self.0.starts_with(prefix.as_ref())
    }

    /// This OID with `suffix` appended: a column plus an index, a scalar plus `.0`.
    pub fn join(&self, suffix: &[u32]) -> Result<Oid, OidError> {
        let mut arcs = Vec::with_capacity(self.0.len() + suffix.len());
        arcs.extend_from_slice(&self.0);
        arcs.extend_from_slice(suffix);
        Oid::new(arcs)
    }

    /// The arcs after `prefix`, if this OID is in that subtree (a table row's index).
    pub fn suffix_after(&self, prefix: impl AsRef<[u32]>) -> Option<&[u32]> {
        self.0.strip_prefix(prefix.as_ref())
    }

    /// Decodes OID content bytes; `offset` is where the content starts in the datagram.
    pub(crate) fn decode(content: &[u8], offset: usize) -> Result<Oid, DecodeError> {
        if content.is_empty() {
            return Err(DecodeError::OidEmpty { offset });
        }
        let mut arcs = Vec::with_capacity(content.len().min(MAX_OID_ARCS) + 1);
        let mut at = 0;
        while at < content.len() {
            let (subid, next) =
                read_subidentifier(content, at, u64::from(u32::MAX)).map_err(|e| match e {
                    SubIdError::NonMinimal { at } => DecodeError::OidNonMinimal {
                        offset: offset + at,
                    },
                    SubIdError::Overflow { at } => DecodeError::OidArcOverflow {
                        offset: offset + at,
                    },
                    SubIdError::Truncated { at } => DecodeError::OidTruncated {
                        offset: offset + at,
                    },
                })?;
            // Every sub-identifier fits u32 here, the maximum read.
            if arcs.is_empty() {
                let (first, second) = split_first_subidentifier(subid);
                arcs.push(first);
                arcs.push(second as u32);
            } else {
                arcs.push(subid as u32);
            }
            if arcs.len() > MAX_OID_ARCS {
                return Err(DecodeError::OidTooLong {
                    offset: offset + next - 1,
                    max: MAX_OID_ARCS,
                });
            }
            at = next;
        }
        Ok(Oid(arcs))
    }

    /// Writes the OID as a complete element (tag 0x06).
    pub(crate) fn encode(&self, out: &mut Vec<u8>) {
        put_nested(out, tag::OID, |o| {
            // The invariant of `Oid` (checked in `check`) makes the first sub-identifier exist.
            if let Some(first) = oid_first_subidentifier(&self.0) {
                put_oid_content(o, first, &self.0[2..]);
            }
        });
    }
}

/// The rules that make arcs encodable, in one place for every constructor.
fn check(arcs: &[u32]) -> Result<(), OidError> {
    let len = arcs.len();
    let (first, second) = match arcs {
        [a, b, ..] => (*a, *b),
        _ => return Err(OidError::TooShort { len }),
    };
    if len > MAX_OID_ARCS {
        return Err(OidError::TooLong { len });
    }
    let second_ok = match first {
        0 | 1 => second < 40,
        2 => second <= u32::MAX - 80,
        arc => return Err(OidError::FirstArc { arc }),
    };
    if !second_ok {
        return Err(OidError::SecondArc { first, second });
    }
    Ok(())
}

impl AsRef<[u32]> for Oid {
    fn as_ref(&self) -> &[u32] {
        &self.0
    }
}

impl TryFrom<Vec<u32>> for Oid {
    type Error = OidError;

    fn try_from(arcs: Vec<u32>) -> Result<Oid, OidError> {
        Oid::new(arcs)
    }
}

impl TryFrom<&[u32]> for Oid {
    type Error = OidError;

    fn try_from(arcs: &[u32]) -> Result<Oid, OidError> {
        Oid::from_slice(arcs)
    }
}

impl<const N: usize> TryFrom<[u32; N]> for Oid {
    type Error = OidError;

    fn try_from(arcs: [u32; N]) -> Result<Oid, OidError> {
        Oid::from_slice(&arcs)
    }
}

impl From<Oid> for Vec<u32> {
    fn from(oid: Oid) -> Vec<u32> {
        oid.0
    }
}

impl fmt::Display for Oid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, arc) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(".")?;
            }
            write!(f, "{arc}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for Oid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Oid({self})")
    }
}

/// Dotted decimal, with or without a leading dot (`.1.3.6.1` as net-snmp prints it).
impl FromStr for Oid {
    type Err = OidError;

    fn from_str(s: &str) -> Result<Oid, OidError> {
        let syntax = || OidError::Syntax { text: s.to_owned() };
        let body = s.strip_prefix('.').unwrap_or(s);
        let mut arcs = Vec::new();
        for part in body.split('.') {
            if part.is_empty() || !part.bytes().all(|b| b.is_ascii_digit()) {
                return Err(syntax());
            }
            arcs.push(part.parse::<u32>().map_err(|_| syntax())?);
            if arcs.len() > MAX_OID_ARCS {
                return Err(OidError::TooLong { len: arcs.len() });
            }
        }
        Oid::new(arcs)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn encoded(oid: &Oid) -> Vec<u8> {
        let mut out = Vec::new();
        oid.encode(&mut out);
        out
    }

    #[test]
    fn spec_oids() {
        // snmpTrapOID.0 and the IETF enrollment notification (140 is 81 0c).
        let trap: Oid = "1.3.6.1.6.3.1.1.4.1.0".parse().unwrap();
        assert_eq!(
            encoded(&trap),
            [0x06, 0x0a, 0x2b, 6, 1, 6, 3, 1, 1, 4, 1, 0]
        );
        let enrollment = Oid::from_slice(&[1, 3, 6, 1, 2, 1, 140, 0, 1]).unwrap();
        assert_eq!(
            encoded(&enrollment),
            [0x06, 0x09, 0x2b, 6, 1, 2, 1, 0x81, 0x0c, 0, 1]
        );
        assert_eq!(enrollment.to_string(), "1.3.6.1.2.1.140.0.1");
        assert_eq!(format!("{enrollment:?}"), "Oid(1.3.6.1.2.1.140.0.1)");
        assert!(enrollment.starts_with([1, 3, 6, 1, 2, 1, 140]));
        assert!(!enrollment.starts_with([1, 3, 6, 1, 4]));
        assert_eq!(
            enrollment.suffix_after([1, 3, 6, 1, 2, 1, 140]),
            Some(&[0, 1][..])
        );
    }

    #[test]
    fn round_trips_at_the_edges() {
        for arcs in [
            vec![0, 0],
            vec![0, 39],
            vec![1, 0],
            vec![1, 39, 0],
            vec![2, 0],
            vec![2, 999, 3],
            vec![2, u32::MAX - 80, u32::MAX],
            vec![1, 3, 127, 128, 16383, 16384, u32::MAX],
            vec![1; MAX_OID_ARCS],
        ] {
            let oid = Oid::new(arcs.clone()).unwrap();
            let bytes = encoded(&oid);
            let content = &bytes[2..];
            assert_eq!(Oid::decode(content, 2).unwrap(), oid, "{arcs:?}");
            assert_eq!(oid.to_string().parse::<Oid>().unwrap(), oid);
        }
    }

    #[test]
    fn constructors_refuse_what_ber_cannot_carry() {
        assert_eq!(Oid::new(vec![1]), Err(OidError::TooShort { len: 1 }));
        assert_eq!(Oid::new(vec![3, 1]), Err(OidError::FirstArc { arc: 3 }));
        assert_eq!(
            Oid::new(vec![1, 40]),
            Err(OidError::SecondArc {
                first: 1,
                second: 40
            })
        );
        assert_eq!(
            Oid::new(vec![2, u32::MAX - 79]),
            Err(OidError::SecondArc {
                first: 2,
                second: u32::MAX - 79
            })
        );
        assert_eq!(
            Oid::new(vec![1; MAX_OID_ARCS + 1]),
            Err(OidError::TooLong {
                len: MAX_OID_ARCS + 1
            })
        );
        assert!(Oid::from_slice(&[1, 3]).unwrap().join(&[6, 1]).is_ok());
        for bad in [
            "",
            ".",
            "1..3",
            "1.3.",
            "1.+3",
            "1.3.x",
            "1.3.4294967296",
            " 1.3",
        ] {
            assert!(bad.parse::<Oid>().is_err(), "{bad:?}");
        }
        assert_eq!(".1.3.6.1".parse::<Oid>().unwrap().as_slice(), [1, 3, 6, 1]);
    }

    #[test]
    fn decode_errors_name_the_byte() {
        assert_eq!(
            Oid::decode(&[], 7),
            Err(DecodeError::OidEmpty { offset: 7 })
        );
        assert_eq!(
            Oid::decode(&[0x2b, 0x80, 0x01], 10),
            Err(DecodeError::OidNonMinimal { offset: 11 })
        );
        assert_eq!(
            Oid::decode(&[0x2b, 0x86], 10),
            Err(DecodeError::OidTruncated { offset: 11 })
        );
        // 2^32 needs five groups: 0x90 0x80 0x80 0x80 0x00.
        assert_eq!(
            Oid::decode(&[0x2b, 0x90, 0x80, 0x80, 0x80, 0x00], 0),
            Err(DecodeError::OidArcOverflow { offset: 5 })
        );
        // A long run of continuation bytes stops at the first overflow, not at the end.
        let mut long = vec![0x2b];
        long.extend(std::iter::repeat_n(0xff, 1000));
        assert_eq!(
            Oid::decode(&long, 0),
            Err(DecodeError::OidArcOverflow { offset: 5 })
        );
        let too_many = vec![1u8; MAX_OID_ARCS];
        assert!(matches!(
            Oid::decode(&too_many, 0),
            Err(DecodeError::OidTooLong { .. })
        ));
        // The first sub-identifier 80+ means arc 2.
        assert_eq!(
            Oid::decode(&[0x88, 0x37, 0x03], 0).unwrap().as_slice(),
            [2, 999, 3]
        );
    }
}
