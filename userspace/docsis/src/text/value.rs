//! One setting's value: from its text to bytes (parse) and back (print), by value form.
//!
//! `format` may offer text that would not parse back to the same bytes (a value out of range,
//! an odd length); the printer checks every offer by parsing it and falls back to hex.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use super::TextErrorKind;
use super::lex::Tok;
use crate::ber;
use crate::hex;
use crate::oid;
use crate::symtab::Kind;

/// The text of a value token, for messages.
pub(crate) fn token_text(tok: &Tok<'_>) -> String {
    match tok {
        Tok::Atom(a) => (*a).to_string(),
        Tok::Str(s) => format!("\"{}\"", String::from_utf8_lossy(&s.bytes())),
        Tok::LBrace => "{".into(),
        Tok::RBrace => "}".into(),
        Tok::Semi => ";".into(),
    }
}

fn invalid(name: &str, tok: &Tok<'_>, expected: &str) -> TextErrorKind {
    TextErrorKind::InvalidValue {
        name: name.to_string(),
        value: token_text(tok),
        expected: expected.to_string(),
    }
}

/// Bytes of a simple (single-token) value of form `kind`.
pub(crate) fn encode(name: &str, kind: &Kind, tok: &Tok<'_>) -> Result<Vec<u8>, TextErrorKind> {
    let atom = match *tok {
        Tok::Atom(a) => Some(a),
        _ => None,
    };
    let need = |expected: &str| invalid(name, tok, expected);
    match *kind {
        Kind::Uint { width, min, max } => {
            let text = atom.ok_or_else(|| need("an unsigned integer"))?;
            let v = unsigned(name, text, min, max)?;
            Ok(v.to_be_bytes()[8 - usize::from(width)..].to_vec())
        }
        Kind::Hex { min, max } => {
            let bytes = atom
                .and_then(hex_value)
                .ok_or_else(|| need("hex bytes 0x..."))?;
            check_len(name, bytes, min, max)
        }
        Kind::Str => match tok {
            Tok::Str(s) => Ok(s.to_vec()),
            _ => atom
                .and_then(hex_value)
                .ok_or_else(|| need("a quoted string or hex bytes 0x...")),
        },
        Kind::StrZero => match tok {
            Tok::Str(s) => {
                let mut bytes = s.to_vec();
                bytes.push(0);
                Ok(bytes)
            }
            _ => atom
                .and_then(hex_value)
                .ok_or_else(|| need("a quoted string or hex bytes 0x...")),
        },
        Kind::Ipv4 => atom
            .and_then(|a| a.parse::<Ipv4Addr>().ok())
            .map(|a| a.octets().to_vec())
            .ok_or_else(|| need("an IPv4 address")),
        Kind::Ipv6 => atom
            .and_then(|a| a.parse::<Ipv6Addr>().ok())
            .map(|a| a.octets().to_vec())
            .ok_or_else(|| need("an IPv6 address")),
        Kind::IpAny => atom
            .and_then(ip_any)
            .ok_or_else(|| need("an IPv4 or IPv6 address")),
        Kind::Ipv4List => atom
            .and_then(|a| {
                a.split(',')
                    .map(|p| p.parse::<Ipv4Addr>().ok().map(|ip| ip.octets()))
                    .collect::<Option<Vec<_>>>()
            })
            .map(|ips| ips.concat())
            .ok_or_else(|| need("IPv4 addresses separated by commas")),
        Kind::IpPort => atom
            .and_then(ip_port)
            .ok_or_else(|| need("an address and port, addr/port")),
        Kind::Mac => atom
            .and_then(mac)
            .map(|m| m.to_vec())
            .ok_or_else(|| need("a MAC address aa:bb:cc:dd:ee:ff")),
        Kind::MacMask => atom
            .and_then(|a| {
                let (m, mask) = a.split_once('/')?;
                Some([mac(m)?, mac(mask)?].concat())
            })
            .ok_or_else(|| need("a MAC address and mask, mac/mask")),
        Kind::Oid => {
            let text = atom.ok_or_else(|| need("an OID"))?;
            oid_element(text)
        }
        Kind::U16List => {
            let text = atom.ok_or_else(|| need("16-bit integers separated by commas"))?;
            let mut out = Vec::new();
            for part in text.split(',') {
                let v = unsigned(name, part, 0, u64::from(u16::MAX))?;
                out.extend_from_slice(&v.to_be_bytes()[6..]);
            }
            Ok(out)
        }
        Kind::Compound(_) | Kind::SnmpWrite | Kind::VarBind { .. } | Kind::FileChunks => {
            Err(need("a value of a multi-part setting"))
        }
    }
}

/// The text of a simple value of form `kind`, or `None` if the bytes do not fit that form.
pub(crate) fn format(kind: &Kind, bytes: &[u8]) -> Option<String> {
    match *kind {
        Kind::Uint { width, .. } if bytes.len() == usize::from(width) => Some(
            bytes
                .iter()
                .fold(0u64, |acc, &b| acc << 8 | u64::from(b))
                .to_string(),
        ),
        Kind::Hex { .. } => Some(format!("0x{}", hex::encode(bytes))),
        Kind::Str => Some(quoted(bytes).unwrap_or_else(|| format!("0x{}", hex::encode(bytes)))),
        Kind::StrZero => {
            let text = bytes
                .strip_suffix(&[0])
                .filter(|s| !s.contains(&0))
                .and_then(quoted);
            Some(text.unwrap_or_else(|| format!("0x{}", hex::encode(bytes))))
        }
        Kind::Ipv4 => Some(Ipv4Addr::from(<[u8; 4]>::try_from(bytes).ok()?).to_string()),
        Kind::Ipv6 => Some(Ipv6Addr::from(<[u8; 16]>::try_from(bytes).ok()?).to_string()),
        Kind::IpAny => Some(ip_from(bytes)?.to_string()),
        Kind::Ipv4List if !bytes.is_empty() && bytes.len().is_multiple_of(4) => Some(
            bytes
                .chunks(4)
                .map(|c| Ipv4Addr::new(c[0], c[1], c[2], c[3]).to_string())
                .collect::<Vec<_>>()
                .join(","),
        ),
        Kind::IpPort if bytes.len() == 6 || bytes.len() == 18 => {
            let (addr, port) = bytes.split_at(bytes.len() - 2);
            Some(format!(
                "{}/{}",
                ip_from(addr)?,
                u16::from_be_bytes([port[0], port[1]])
            ))
        }
        Kind::Mac => Some(mac_text(bytes)?),
        Kind::MacMask if bytes.len() == 12 => Some(format!(
            "{}/{}",
            mac_text(&bytes[..6])?,
            mac_text(&bytes[6..])?
        )),
        Kind::Oid => {
            let (arcs, used) = ber::decode_oid_element(bytes)?;
            (used == bytes.len()).then(|| oid::format(&arcs))
        }
        Kind::U16List if !bytes.is_empty() && bytes.len().is_multiple_of(2) => Some(
            bytes
                .chunks(2)
                .map(|c| u16::from_be_bytes([c[0], c[1]]).to_string())
                .collect::<Vec<_>>()
                .join(","),
        ),
        _ => None,
    }
}

/// `"text"` when every byte is printable ASCII (quotes escaped), else `None`.
pub(crate) fn quoted(bytes: &[u8]) -> Option<String> {
    if !bytes
        .iter()
        .all(|&b| (0x20..=0x7e).contains(&b) && b != b'\\')
    {
        return None;
    }
    let mut s = String::with_capacity(bytes.len() + 2);
    s.push('"');
    for &b in bytes {
        if b == b'"' {
            s.push('\\');
        }
        s.push(char::from(b));
    }
    s.push('"');
    Some(s)
}

/// `0x` followed by an even number of hex digits (none for an empty value).
pub(crate) fn hex_value(text: &str) -> Option<Vec<u8>> {
    let digits = text
        .strip_prefix("0x")
        .or_else(|| text.strip_prefix("0X"))?;
    hex::decode(digits)
}

/// A decimal integer within `min..=max`.
pub(crate) fn unsigned(name: &str, text: &str, min: u64, max: u64) -> Result<u64, TextErrorKind> {
    let out_of_range = || TextErrorKind::OutOfRange {
        name: name.to_string(),
        value: text.to_string(),
        min: min.into(),
        max: max.into(),
    };
    let digits = text.strip_prefix('-').unwrap_or(text);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(TextErrorKind::InvalidValue {
            name: name.to_string(),
            value: text.to_string(),
            expected: "an unsigned integer".to_string(),
        });
    }
    if text.starts_with('-') {
        return Err(out_of_range());
    }
    let v = text.parse::<u64>().map_err(|_| out_of_range())?;
    if v < min || v > max {
        return Err(out_of_range());
    }
    Ok(v)
}

/// A decimal integer in the range of i64, for SNMP INTEGER.
pub(crate) fn signed(name: &str, text: &str) -> Result<i64, TextErrorKind> {
    let digits = text.strip_prefix('-').unwrap_or(text);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(TextErrorKind::InvalidValue {
            name: name.to_string(),
            value: text.to_string(),
            expected: "an integer".to_string(),
        });
    }
    text.parse::<i64>().map_err(|_| TextErrorKind::OutOfRange {
        name: name.to_string(),
        value: text.to_string(),
        min: i128::from(i64::MIN),
        max: i128::from(i64::MAX),
    })
}

pub(crate) fn parse_oid(text: &str) -> Result<Vec<u32>, TextErrorKind> {
    oid::parse(text).map_err(|reason| TextErrorKind::BadOid {
        oid: text.to_string(),
        reason,
    })
}

/// [`parse_oid`] into a buffer the caller reuses.
pub(crate) fn parse_oid_into(text: &str, oid: &mut Vec<u32>) -> Result<(), TextErrorKind> {
    oid::parse_into(text, oid).map_err(|reason| TextErrorKind::BadOid {
        oid: text.to_string(),
        reason,
    })
}

/// A complete BER OID element from its text.
pub(crate) fn oid_element(text: &str) -> Result<Vec<u8>, TextErrorKind> {
    let arcs = parse_oid(text)?;
    ber::encode_oid_element(&arcs).map_err(|e| TextErrorKind::BadOid {
        oid: text.to_string(),
        reason: e.to_string(),
    })
}

fn check_len(name: &str, bytes: Vec<u8>, min: usize, max: usize) -> Result<Vec<u8>, TextErrorKind> {
    if bytes.len() < min || bytes.len() > max {
        return Err(TextErrorKind::BadLength {
            name: name.to_string(),
            len: bytes.len(),
            min,
            max,
        });
    }
    Ok(bytes)
}

fn ip_any(text: &str) -> Option<Vec<u8>> {
    match text.parse::<IpAddr>().ok()? {
        IpAddr::V4(a) => Some(a.octets().to_vec()),
        IpAddr::V6(a) => Some(a.octets().to_vec()),
    }
}

fn ip_from(bytes: &[u8]) -> Option<IpAddr> {
    if let Ok(a) = <[u8; 4]>::try_from(bytes) {
        return Some(IpAddr::from(a));
    }
    <[u8; 16]>::try_from(bytes).ok().map(IpAddr::from)
}

fn ip_port(text: &str) -> Option<Vec<u8>> {
    let (addr, port) = text.rsplit_once('/')?;
    let port: u16 = port.parse().ok()?;
    let mut out = ip_any(addr)?;
    out.extend_from_slice(&port.to_be_bytes());
    Some(out)
}

fn mac(text: &str) -> Option<[u8; 6]> {
    let mut out = [0u8; 6];
    let mut parts = text.split(':');
    for slot in &mut out {
        let part = parts.next()?;
        if part.len() != 2 {
            return None;
        }
        *slot = u8::from_str_radix(part, 16).ok()?;
    }
    parts.next().is_none().then_some(out)
}

fn mac_text(bytes: &[u8]) -> Option<String> {
    (bytes.len() == 6).then(|| {
        bytes
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<Vec<_>>()
            .join(":")
    })
}
