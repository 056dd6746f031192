//! TFTP packets as a client sees them (RFC 1350, options per RFC 2347-2349 and 7440): the ones a
//! client writes (RRQ with options, ACK, ERROR) and a parser for everything a server may send.
//! The server-side writers (DATA, OACK) exist for the tests' server.

use std::fmt;

pub const OP_RRQ: u16 = 1;
pub const OP_WRQ: u16 = 2;
pub const OP_DATA: u16 = 3;
pub const OP_ACK: u16 = 4;
pub const OP_ERROR: u16 = 5;
pub const OP_OACK: u16 = 6;

/// RFC 1350 error codes (and 8 from RFC 2347) this side sends.
pub const ERR_NOT_DEFINED: u16 = 0;
#[cfg(test)]
pub const ERR_NOT_FOUND: u16 = 1;
pub const ERR_OPTION: u16 = 8;

/// The block size without a `blksize` option.
pub const DEFAULT_BLKSIZE: u16 = 512;

/// The options a read request asks for; `None`/`false` leaves an option out.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RequestOptions {
    /// RFC 2348, 8..=65464.
    pub blksize: Option<u16>,
    /// RFC 7440, 1..=65535.
    pub windowsize: Option<u16>,
    /// RFC 2349: ask for the size (sends `tsize 0`).
    pub tsize: bool,
}

impl RequestOptions {
    pub fn any(&self) -> bool {
        self.blksize.is_some() || self.windowsize.is_some() || self.tsize
    }
}

/// Writes a read request for `name` in `mode` ("octet" or "netascii") into `buf`.
pub fn rrq(buf: &mut Vec<u8>, name: &str, mode: &str, opts: &RequestOptions) {
    buf.clear();
    buf.extend_from_slice(&OP_RRQ.to_be_bytes());
    push_str(buf, name);
    push_str(buf, mode);
    if let Some(b) = opts.blksize {
        push_str(buf, "blksize");
        push_str(buf, &b.to_string());
    }
    if let Some(w) = opts.windowsize {
        push_str(buf, "windowsize");
        push_str(buf, &w.to_string());
    }
    if opts.tsize {
        push_str(buf, "tsize");
        push_str(buf, "0");
    }
}

pub fn ack(buf: &mut Vec<u8>, block: u16) {
    buf.clear();
    buf.extend_from_slice(&OP_ACK.to_be_bytes());
    buf.extend_from_slice(&block.to_be_bytes());
}

pub fn error(buf: &mut Vec<u8>, code: u16, msg: &str) {
    buf.clear();
    buf.extend_from_slice(&OP_ERROR.to_be_bytes());
    buf.extend_from_slice(&code.to_be_bytes());
    push_str(buf, msg);
}

#[cfg(test)]
pub fn data(buf: &mut Vec<u8>, block: u16, payload: &[u8]) {
    buf.clear();
    buf.extend_from_slice(&OP_DATA.to_be_bytes());
    buf.extend_from_slice(&block.to_be_bytes());
    buf.extend_from_slice(payload);
}

#[cfg(test)]
pub fn oack(buf: &mut Vec<u8>, opts: &[(&str, String)]) {
    buf.clear();
    buf.extend_from_slice(&OP_OACK.to_be_bytes());
    for (k, v) in opts {
        push_str(buf, k);
        push_str(buf, v);
    }
}

fn push_str(buf: &mut Vec<u8>, s: &str) {
    buf.extend_from_slice(s.as_bytes());
    buf.push(0);
}

/// A parsed datagram. Strings borrow from it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Packet<'a> {
    Request {
        write: bool,
        name: &'a str,
        mode: &'a str,
        /// Option names as sent (compare case-insensitively), with their values.
        options: Vec<(&'a str, &'a str)>,
    },
    Data {
        block: u16,
        payload: &'a [u8],
    },
    Ack {
        block: u16,
    },
    Error {
        code: u16,
        msg: &'a str,
    },
    Oack {
        options: Vec<(&'a str, &'a str)>,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError(pub &'static str);

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0)
    }
}

impl std::error::Error for ParseError {}

pub fn parse(buf: &[u8]) -> Result<Packet<'_>, ParseError> {
    if buf.len() < 2 {
        return Err(ParseError("datagram shorter than an opcode"));
    }
    let op = u16::from_be_bytes([buf[0], buf[1]]);
    let body = &buf[2..];
    let num = |b: &[u8]| -> Result<u16, ParseError> {
        b.get(..2)
            .map(|n| u16::from_be_bytes([n[0], n[1]]))
            .ok_or(ParseError("truncated block number or error code"))
    };
    match op {
        OP_RRQ | OP_WRQ => {
            let mut fields = strings(body)?;
            let name = fields.next().ok_or(ParseError("request without a name"))?;
            let mode = fields.next().ok_or(ParseError("request without a mode"))?;
            let options = pairs(fields)?;
            Ok(Packet::Request {
                write: op == OP_WRQ,
                name,
                mode,
                options,
            })
        }
        OP_DATA => Ok(Packet::Data {
            block: num(body)?,
            payload: &body[2..],
        }),
        OP_ACK => {
            if body.len() != 2 {
                return Err(ParseError("ACK is not 4 bytes"));
            }
            Ok(Packet::Ack { block: num(body)? })
        }
        OP_ERROR => {
            let code = num(body)?;
            // Some servers leave out the terminating NUL; accept the text either way.
            let text = &body[2..];
            let text = text.strip_suffix(&[0]).unwrap_or(text);
            let msg =
                std::str::from_utf8(text).map_err(|_| ParseError("error text is not UTF-8"))?;
            Ok(Packet::Error { code, msg })
        }
        OP_OACK => Ok(Packet::Oack {
            options: pairs(strings(body)?)?,
        }),
        _ => Err(ParseError("unknown opcode")),
    }
}

/// The NUL-terminated strings of `body`; every one must be terminated.
fn strings(body: &[u8]) -> Result<impl Iterator<Item = &str>, ParseError> {
    if !body.is_empty() && body.last() != Some(&0) {
        return Err(ParseError("string not NUL-terminated"));
    }
    let parts: Vec<&str> = body
        .split(|&b| b == 0)
        .take(body.iter().filter(|&&b| b == 0).count())
        .map(std::str::from_utf8)
        .collect::<Result<_, _>>()
        .map_err(|_| ParseError("string is not UTF-8"))?;
    Ok(parts.into_iter())
}

fn pairs<'a>(mut it: impl Iterator<Item = &'a str>) -> Result<Vec<(&'a str, &'a str)>, ParseError> {
    let mut out = Vec::new();
    while let Some(k) = it.next() {
        let v = it.next().ok_or(ParseError("option without a value"))?;
        out.push((k, v));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rrq_with_options_is_byte_exact() {
        let mut b = Vec::new();
        rrq(
            &mut b,
            "cm/0200aabbccdd.cfg",
            "octet",
            &RequestOptions {
                blksize: Some(1428),
                windowsize: Some(16),
                tsize: true,
            },
        );
        let want: &[&[u8]] = &[
            b"\x00\x01",
            b"cm/0200aabbccdd.cfg\0",
            b"octet\0",
            b"blksize\0",
            b"1428\0",
            b"windowsize\0",
            b"16\0",
            b"tsize\0",
            b"0\0",
        ];
        assert_eq!(b, want.concat());
        rrq(&mut b, "f", "netascii", &RequestOptions::default());
        assert_eq!(b, b"\x00\x01f\0netascii\0");
        match parse(&b).unwrap() {
            Packet::Request {
                write,
                name,
                mode,
                options,
            } => {
                assert!(!write);
                assert_eq!((name, mode), ("f", "netascii"));
                assert!(options.is_empty());
            }
            p => panic!("{p:?}"),
        }
    }

    #[test]
    fn client_packets_round_trip() {
        let mut b = Vec::new();
        ack(&mut b, 0xfffe);
        assert_eq!(b, [0, 4, 0xff, 0xfe]);
        assert_eq!(parse(&b).unwrap(), Packet::Ack { block: 0xfffe });
        error(&mut b, ERR_OPTION, "blksize too big");
        assert_eq!(b, b"\x00\x05\x00\x08blksize too big\0");
        assert_eq!(
            parse(&b).unwrap(),
            Packet::Error {
                code: 8,
                msg: "blksize too big"
            }
        );
    }

    #[test]
    fn server_packets_parse() {
        let mut b = Vec::new();
        data(&mut b, 7, b"hello");
        assert_eq!(
            parse(&b).unwrap(),
            Packet::Data {
                block: 7,
                payload: b"hello"
            }
        );
        data(&mut b, 1, b"");
        assert_eq!(
            parse(&b).unwrap(),
            Packet::Data {
                block: 1,
                payload: b""
            }
        );
        oack(
            &mut b,
            &[("blksize", "1428".into()), ("tsize", "8388608".into())],
        );
        assert_eq!(
            parse(&b).unwrap(),
            Packet::Oack {
                options: vec![("blksize", "1428"), ("tsize", "8388608")]
            }
        );
        // tftpd-hpa style error without trailing NUL is accepted.
        assert_eq!(
            parse(b"\x00\x05\x00\x01File not found").unwrap(),
            Packet::Error {
                code: 1,
                msg: "File not found"
            }
        );
    }

    #[test]
    fn malformed_packets_are_rejected() {
        for bad in [
            &b""[..],
            b"\x00",
            b"\x00\x03\x00",
            b"\x00\x04\x00\x01\x00",
            b"\x00\x06blksize\x00512",
            b"\x00\x06blksize\x00",
            b"\x00\x09\x00\x01",
            b"\x00\x01name",
            b"\x00\x01name\0",
            b"\x00\x05",
        ] {
            assert!(parse(bad).is_err(), "{bad:?}");
        }
    }
}
