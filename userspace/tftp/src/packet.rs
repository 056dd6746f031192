//! TFTP datagrams (RFC 1350, 2347): a borrowed view parsed from bytes ([`Packet::parse`]) and the
//! encoder writing one into a caller's buffer ([`Packet::encode`]). Parse, don't validate: a
//! `Packet` that exists is well-formed, and `parse(encode(p)) == p` for every packet that
//! encodes.

use std::fmt;

use crate::options::{Context, OptionName, Options};

/// RFC 2347: a request, options included, fits in 512 bytes.
pub const MAX_REQUEST_LEN: usize = 512;
/// The RFC 1350 block size, used when the client negotiates no other.
pub const DEFAULT_BLKSIZE: u16 = 512;
/// Opcode and block number in front of every DATA payload.
pub const DATA_HEADER_LEN: usize = 4;

/// The six packet types.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Opcode {
    Rrq = 1,
    Wrq = 2,
    Data = 3,
    Ack = 4,
    Error = 5,
    Oack = 6,
}

impl Opcode {
    pub fn from_u16(v: u16) -> Option<Self> {
        Some(match v {
            1 => Opcode::Rrq,
            2 => Opcode::Wrq,
            3 => Opcode::Data,
            4 => Opcode::Ack,
            5 => Opcode::Error,
            6 => Opcode::Oack,
            _ => return None,
        })
    }

    /// The opcode of a raw datagram, if it has one this server knows.
    pub fn of(datagram: &[u8]) -> Option<Self> {
        match datagram {
            [a, b, ..] => Self::from_u16(u16::from_be_bytes([*a, *b])),
            _ => None,
        }
    }
}

/// Transfer mode of a request. `mail` (RFC 1350's third mode) is obsolete and refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Bytes as they are: what cable modems and MTAs ask for.
    Octet,
    /// Text with CR LF line ends and CR NUL for a bare CR.
    Netascii,
}

impl Mode {
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Octet => "octet",
            Mode::Netascii => "netascii",
        }
    }

    fn from_wire(s: &str) -> Result<Self, PacketError> {
        if s.eq_ignore_ascii_case("octet") {
            Ok(Mode::Octet)
        } else if s.eq_ignore_ascii_case("netascii") {
            Ok(Mode::Netascii)
        } else if s.eq_ignore_ascii_case("mail") {
            Err(PacketError::MailMode)
        } else {
            Err(PacketError::UnknownMode)
        }
    }
}

/// An ERROR packet's code. A newtype rather than an enum: peers send codes beyond 8 and those
/// must parse too.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ErrorCode(pub u16);

impl ErrorCode {
    pub const NOT_DEFINED: Self = Self(0);
    pub const FILE_NOT_FOUND: Self = Self(1);
    pub const ACCESS_VIOLATION: Self = Self(2);
    pub const DISK_FULL: Self = Self(3);
    pub const ILLEGAL_OPERATION: Self = Self(4);
    pub const UNKNOWN_TRANSFER_ID: Self = Self(5);
    pub const FILE_EXISTS: Self = Self(6);
    pub const NO_SUCH_USER: Self = Self(7);
    /// RFC 2347: the option negotiation was refused.
    pub const OPTION_NEGOTIATION: Self = Self(8);

    /// The RFC's wording, used when no more specific message is at hand.
    pub fn default_message(self) -> &'static str {
        match self.0 {
            1 => "File not found",
            2 => "Access violation",
            3 => "Disk full or allocation exceeded",
            4 => "Illegal TFTP operation",
            5 => "Unknown transfer ID",
            6 => "File already exists",
            7 => "No such user",
            8 => "Option negotiation refused",
            _ => "Undefined error",
        }
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.0, self.default_message())
    }
}

/// An RRQ or WRQ.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Request<'a> {
    /// Non-empty ASCII, exactly as sent (no path normalisation here: that is the file
    /// source's business).
    pub filename: &'a str,
    pub mode: Mode,
    pub options: Options,
}

/// One TFTP datagram, borrowing its strings and data from the received bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Packet<'a> {
    Rrq(Request<'a>),
    Wrq(Request<'a>),
    Data {
        block: u16,
        data: &'a [u8],
    },
    Ack {
        block: u16,
    },
    /// The message is kept as bytes: it is only ever logged, and a peer's odd encoding must not
    /// stop its ERROR from ending the transfer.
    Error {
        code: ErrorCode,
        message: &'a [u8],
    },
    Oack(Options),
}

/// Why a datagram is not a TFTP packet this server accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PacketError {
    #[error("truncated: {len} bytes, {need} needed")]
    Truncated { len: usize, need: usize },
    #[error("unknown opcode {opcode}")]
    UnknownOpcode { opcode: u16 },
    #[error("string without its NUL terminator")]
    MissingNul,
    #[error("string with bytes outside ASCII")]
    NonAscii,
    #[error("empty file name")]
    EmptyFilename,
    #[error("request of {len} bytes, over the 512-byte limit")]
    RequestTooLong { len: usize },
    #[error("mode \"mail\" is obsolete")]
    MailMode,
    #[error("unknown transfer mode")]
    UnknownMode,
    #[error("empty option name")]
    EmptyOptionName,
    #[error("option name without a value")]
    OptionWithoutValue,
    /// Only from the encoder: the parser drops or lowers such values.
    #[error("option {option}: value out of range")]
    BadOptionValue { option: OptionName },
    #[error("option {option} given twice")]
    DuplicateOption { option: OptionName },
    #[error("{extra} bytes after the end of the packet")]
    TrailingBytes { extra: usize },
}

impl PacketError {
    /// Number of kinds, for per-kind counters.
    pub const KINDS: usize = 13;

    /// A stable index per kind (fields ignored), below [`Self::KINDS`].
    pub fn index(&self) -> usize {
        match self {
            PacketError::Truncated { .. } => 0,
            PacketError::UnknownOpcode { .. } => 1,
            PacketError::MissingNul => 2,
            PacketError::NonAscii => 3,
            PacketError::EmptyFilename => 4,
            PacketError::RequestTooLong { .. } => 5,
            PacketError::MailMode => 6,
            PacketError::UnknownMode => 7,
            PacketError::EmptyOptionName => 8,
            PacketError::OptionWithoutValue => 9,
            PacketError::BadOptionValue { .. } => 10,
            PacketError::DuplicateOption { .. } => 11,
            PacketError::TrailingBytes { .. } => 12,
        }
    }

    /// A short name per kind for logs and metrics.
    pub fn label(&self) -> &'static str {
        Self::LABELS[self.index()]
    }

    pub const LABELS: [&'static str; Self::KINDS] = [
        "truncated",
        "unknown_opcode",
        "missing_nul",
        "non_ascii",
        "empty_filename",
        "request_too_long",
        "mail_mode",
        "unknown_mode",
        "empty_option_name",
        "option_without_value",
        "bad_option_value",
        "duplicate_option",
        "trailing_bytes",
    ];

    /// The ERROR code a server answers a malformed request with: option problems are RFC 2347's
    /// code 8, everything else an illegal operation.
    pub fn reply_code(&self) -> ErrorCode {
        match self {
            PacketError::BadOptionValue { .. }
            | PacketError::DuplicateOption { .. }
            | PacketError::OptionWithoutValue
            | PacketError::EmptyOptionName => ErrorCode::OPTION_NEGOTIATION,
            _ => ErrorCode::ILLEGAL_OPERATION,
        }
    }
}

/// Why a packet could not be written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EncodeError {
    #[error("buffer of {have} bytes, {need} needed")]
    BufferTooSmall { need: usize, have: usize },
    #[error("the packet would not parse back: {0}")]
    Unparseable(PacketError),
}

impl<'a> Packet<'a> {
    /// Reads one datagram. Total: any bytes give a packet or a typed error.
    pub fn parse(datagram: &'a [u8]) -> Result<Self, PacketError> {
        let Some((head, rest)) = datagram.split_first_chunk::<2>() else {
            return Err(PacketError::Truncated {
                len: datagram.len(),
                need: 2,
            });
        };
        let opcode = u16::from_be_bytes(*head);
        let op = Opcode::from_u16(opcode).ok_or(PacketError::UnknownOpcode { opcode })?;
        let word = |rest: &[u8]| match rest {
            [a, b, ..] => Ok(u16::from_be_bytes([*a, *b])),
            _ => Err(PacketError::Truncated {
                len: datagram.len(),
                need: 4,
            }),
        };
        match op {
            Opcode::Rrq | Opcode::Wrq => {
                if datagram.len() > MAX_REQUEST_LEN {
                    return Err(PacketError::RequestTooLong {
                        len: datagram.len(),
                    });
                }
                let context = match op {
                    Opcode::Rrq => Context::ReadRequest,
                    _ => Context::WriteRequest,
                };
                let req = parse_request(rest, context)?;
                Ok(if op == Opcode::Rrq {
                    Packet::Rrq(req)
                } else {
                    Packet::Wrq(req)
                })
            }
            Opcode::Data => Ok(Packet::Data {
                block: word(rest)?,
                data: &rest[2..],
            }),
            Opcode::Ack => {
                let block = word(rest)?;
                match rest.len() - 2 {
                    0 => Ok(Packet::Ack { block }),
                    extra => Err(PacketError::TrailingBytes { extra }),
                }
            }
            Opcode::Error => {
                let code = ErrorCode(word(rest)?);
                let mut tail = &rest[2..];
                let nul = tail
                    .iter()
                    .position(|&b| b == 0)
                    .ok_or(PacketError::MissingNul)?;
                let message = &tail[..nul];
                tail = &tail[nul + 1..];
                match tail.len() {
                    0 => Ok(Packet::Error { code, message }),
                    extra => Err(PacketError::TrailingBytes { extra }),
                }
            }
            Opcode::Oack => Ok(Packet::Oack(Options::parse(rest, Context::Oack)?)),
        }
    }

    pub fn opcode(&self) -> Opcode {
        match self {
            Packet::Rrq(_) => Opcode::Rrq,
            Packet::Wrq(_) => Opcode::Wrq,
            Packet::Data { .. } => Opcode::Data,
            Packet::Ack { .. } => Opcode::Ack,
            Packet::Error { .. } => Opcode::Error,
            Packet::Oack(_) => Opcode::Oack,
        }
    }

    /// Writes the packet into `buf` and returns its length. Refuses what [`Packet::parse`]
    /// would refuse, so a written packet always reads back equal.
    pub fn encode(&self, buf: &mut [u8]) -> Result<usize, EncodeError> {
        let mut w = Writer::new(buf);
        w.put(&(self.opcode() as u16).to_be_bytes());
        match self {
            Packet::Rrq(req) | Packet::Wrq(req) => {
                validate_name(req.filename)?;
                req.options.validate().map_err(EncodeError::Unparseable)?;
                w.put(req.filename.as_bytes());
                w.put(&[0]);
                w.put(req.mode.as_str().as_bytes());
                w.put(&[0]);
                req.options.write(&mut w);
                if w.need > MAX_REQUEST_LEN {
                    return Err(EncodeError::Unparseable(PacketError::RequestTooLong {
                        len: w.need,
                    }));
                }
            }
            Packet::Data { block, data } => {
                w.put(&block.to_be_bytes());
                w.put(data);
            }
            Packet::Ack { block } => w.put(&block.to_be_bytes()),
            Packet::Error { code, message } => {
                if message.contains(&0) {
                    return Err(EncodeError::Unparseable(PacketError::TrailingBytes {
                        extra: message.len(),
                    }));
                }
                w.put(&code.0.to_be_bytes());
                w.put(message);
                w.put(&[0]);
            }
            Packet::Oack(options) => {
                options.validate().map_err(EncodeError::Unparseable)?;
                options.write(&mut w);
            }
        }
        w.finish()
    }
}

fn parse_request(mut rest: &[u8], context: Context) -> Result<Request<'_>, PacketError> {
    let filename = take_str(&mut rest)?;
    if filename.is_empty() {
        return Err(PacketError::EmptyFilename);
    }
    let mode = Mode::from_wire(take_str(&mut rest)?)?;
    let options = Options::parse(rest, context)?;
    Ok(Request {
        filename,
        mode,
        options,
    })
}

fn validate_name(name: &str) -> Result<(), EncodeError> {
    let err = |e| Err(EncodeError::Unparseable(e));
    if name.is_empty() {
        return err(PacketError::EmptyFilename);
    }
    if !name.is_ascii() {
        return err(PacketError::NonAscii);
    }
    if name.contains('\0') {
        return err(PacketError::MissingNul);
    }
    Ok(())
}

/// A bounded cursor over a caller's buffer that keeps counting past the end, so a too-small
/// buffer reports the size it needed.
pub(crate) struct Writer<'b> {
    buf: &'b mut [u8],
    need: usize,
}

impl<'b> Writer<'b> {
    pub(crate) fn new(buf: &'b mut [u8]) -> Self {
        Writer { buf, need: 0 }
    }

    pub(crate) fn put(&mut self, bytes: &[u8]) {
        let end = self.need.saturating_add(bytes.len());
        if let Some(dst) = self.buf.get_mut(self.need..end) {
            dst.copy_from_slice(bytes);
        }
        self.need = end;
    }

    pub(crate) fn put_decimal(&mut self, mut v: u64) {
        let mut digits = [0u8; 20];
        let mut i = digits.len();
        loop {
            i -= 1;
            digits[i] = b'0' + (v % 10) as u8;
            v /= 10;
            if v == 0 {
                break;
            }
        }
        self.put(&digits[i..]);
    }

    pub(crate) fn finish(self) -> Result<usize, EncodeError> {
        if self.need <= self.buf.len() {
            Ok(self.need)
        } else {
            Err(EncodeError::BufferTooSmall {
                need: self.need,
                have: self.buf.len(),
            })
        }
    }
}

/// The option list of a request or an OACK on the wire (RFC 2347).
impl Options {
    /// Reads `name\0value\0` pairs up to the end of the packet. Trailing NUL padding (some boot
    /// ROMs pad their requests) is accepted as the end of the list.
    ///
    /// Values are read generously, as RFC 2347 lets a server leave out what it does not accept:
    /// a value that is not a number or below its range drops the option, one above its range is
    /// lowered to the maximum (a server may always grant less). In a read request the `tsize`
    /// value means nothing (the server answers the size), so any value asks for it: atftp 0.8
    /// sends `tsize enable`. Malformed lists and repeated options are errors.
    pub(crate) fn parse(mut rest: &[u8], context: Context) -> Result<Self, PacketError> {
        let mut opts = Options::default();
        let mut seen = [false; 4];
        while !rest.is_empty() {
            let name = take_str(&mut rest)?;
            if name.is_empty() {
                if rest.iter().all(|&b| b == 0) {
                    break;
                }
                return Err(PacketError::EmptyOptionName);
            }
            if rest.is_empty() {
                return Err(PacketError::OptionWithoutValue);
            }
            let value = take_str(&mut rest)?;
            let Some(option) = OptionName::from_wire(name) else {
                continue;
            };
            if std::mem::replace(&mut seen[option as usize], true) {
                return Err(PacketError::DuplicateOption { option });
            }
            let v = parse_decimal(value);
            let (min, max) = option.range();
            let clamped = v.filter(|v| *v >= min).map(|v| v.min(max));
            // The range check makes every narrowing below lossless.
            match option {
                OptionName::Blksize => opts.blksize = clamped.map(|v| v as u16),
                OptionName::Timeout => {
                    opts.timeout = v.filter(|v| (min..=max).contains(v)).map(|v| v as u8)
                }
                OptionName::Tsize => {
                    opts.tsize = match context {
                        Context::ReadRequest => Some(v.unwrap_or(0)),
                        Context::WriteRequest | Context::Oack => v,
                    }
                }
                OptionName::Windowsize => opts.windowsize = clamped.map(|v| v as u16),
            }
        }
        Ok(opts)
    }

    /// The first option whose value is outside its RFC range, so that the encoder never writes
    /// what the parser would refuse.
    pub(crate) fn validate(&self) -> Result<(), PacketError> {
        let bad = |option| Err(PacketError::BadOptionValue { option });
        if self.blksize.is_some_and(|b| !Self::BLKSIZE.contains(&b)) {
            return bad(OptionName::Blksize);
        }
        if self.timeout.is_some_and(|t| !Self::TIMEOUT.contains(&t)) {
            return bad(OptionName::Timeout);
        }
        if self
            .windowsize
            .is_some_and(|w| !Self::WINDOWSIZE.contains(&w))
        {
            return bad(OptionName::Windowsize);
        }
        Ok(())
    }

    /// Writes the present options in a fixed order (blksize, tsize, timeout, windowsize: the
    /// order of the worked example in the spec and of most clients' requests).
    pub(crate) fn write(&self, w: &mut Writer<'_>) {
        let pairs = [
            (OptionName::Blksize, self.blksize.map(u64::from)),
            (OptionName::Tsize, self.tsize),
            (OptionName::Timeout, self.timeout.map(u64::from)),
            (OptionName::Windowsize, self.windowsize.map(u64::from)),
        ];
        for (name, value) in pairs {
            if let Some(v) = value {
                w.put(name.as_str().as_bytes());
                w.put(&[0]);
                w.put_decimal(v);
                w.put(&[0]);
            }
        }
    }
}

/// Splits off one NUL-terminated ASCII string (netascii strings are 7-bit).
pub(crate) fn take_str<'a>(rest: &mut &'a [u8]) -> Result<&'a str, PacketError> {
    let nul = rest
        .iter()
        .position(|&b| b == 0)
        .ok_or(PacketError::MissingNul)?;
    let (s, tail) = rest.split_at(nul);
    *rest = &tail[1..];
    if !s.is_ascii() {
        return Err(PacketError::NonAscii);
    }
    std::str::from_utf8(s).map_err(|_| PacketError::NonAscii)
}

/// A non-empty run of ASCII digits as a u64; `None` on anything else or on overflow.
fn parse_decimal(s: &str) -> Option<u64> {
    if s.is_empty() {
        return None;
    }
    s.bytes().try_fold(0u64, |acc, b| {
        let digit = b.checked_sub(b'0').filter(|d| *d <= 9)?;
        acc.checked_mul(10)?.checked_add(u64::from(digit))
    })
}

/// Writes an ERROR packet whose message is made safe for the wire: non-ASCII and control bytes
/// become `?` and it is cut to fit `buf`. Returns the length (0 only if `buf` is under 5 bytes).
pub fn write_error(buf: &mut [u8], code: ErrorCode, message: &str) -> usize {
    let Some(room) = buf.len().checked_sub(5) else {
        return 0;
    };
    buf[..2].copy_from_slice(&(Opcode::Error as u16).to_be_bytes());
    buf[2..4].copy_from_slice(&code.0.to_be_bytes());
    let mut n = 4;
    for b in message.bytes().take(room) {
        buf[n] = if b.is_ascii_graphic() || b == b' ' {
            b
        } else {
            b'?'
        };
        n += 1;
    }
    buf[n] = 0;
    n + 1
}

/// The 4-byte header of a DATA packet.
pub fn data_header(block: u16) -> [u8; DATA_HEADER_LEN] {
    let [hi, lo] = block.to_be_bytes();
    [0, Opcode::Data as u8, hi, lo]
}

/// An ACK packet.
pub fn ack(block: u16) -> [u8; 4] {
    let [hi, lo] = block.to_be_bytes();
    [0, Opcode::Ack as u8, hi, lo]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decimal_parsing_is_strict_and_overflow_checked() {
        assert_eq!(parse_decimal("0"), Some(0));
        assert_eq!(parse_decimal("001428"), Some(1428));
        assert_eq!(parse_decimal("18446744073709551615"), Some(u64::MAX));
        assert_eq!(parse_decimal("18446744073709551616"), None);
        assert_eq!(parse_decimal(""), None);
        assert_eq!(parse_decimal("+5"), None);
        assert_eq!(parse_decimal("5 "), None);
        assert_eq!(parse_decimal("0x10"), None);
    }

    /// The worked MTA example of the spec (tftp.md §3), byte for byte.
    const RRQ: &[u8] = b"\x00\x01mta/0015cf123457.bin\x00octet\x00blksize\x001428\x00tsize\x000\x00timeout\x005\x00windowsize\x004\x00";
    const OACK: &[u8] = &[
        0x00, 0x06, 0x62, 0x6c, 0x6b, 0x73, 0x69, 0x7a, 0x65, 0x00, 0x31, 0x34, 0x32, 0x38, 0x00,
        0x74, 0x73, 0x69, 0x7a, 0x65, 0x00, 0x34, 0x31, 0x32, 0x00, 0x74, 0x69, 0x6d, 0x65, 0x6f,
        0x75, 0x74, 0x00, 0x35, 0x00, 0x77, 0x69, 0x6e, 0x64, 0x6f, 0x77, 0x73, 0x69, 0x7a, 0x65,
        0x00, 0x34, 0x00,
    ];
    const ERR_NOT_FOUND: &[u8] = &[
        0x00, 0x05, 0x00, 0x01, 0x46, 0x69, 0x6c, 0x65, 0x20, 0x6e, 0x6f, 0x74, 0x20, 0x66, 0x6f,
        0x75, 0x6e, 0x64, 0x00,
    ];
    const ERR_OPTIONS: &[u8] = &[
        0x00, 0x05, 0x00, 0x08, 0x4f, 0x70, 0x74, 0x69, 0x6f, 0x6e, 0x20, 0x6e, 0x65, 0x67, 0x6f,
        0x74, 0x69, 0x61, 0x74, 0x69, 0x6f, 0x6e, 0x20, 0x72, 0x65, 0x66, 0x75, 0x73, 0x65, 0x64,
        0x00,
    ];

    fn mta_options(tsize: u64) -> Options {
        Options {
            blksize: Some(1428),
            timeout: Some(5),
            tsize: Some(tsize),
            windowsize: Some(4),
        }
    }

    #[test]
    fn worked_rrq_vector_parses_and_encodes_back_exactly() {
        assert_eq!(RRQ.len(), 73);
        let p = Packet::parse(RRQ).unwrap();
        let want = Packet::Rrq(Request {
            filename: "mta/0015cf123457.bin",
            mode: Mode::Octet,
            options: mta_options(0),
        });
        assert_eq!(p, want);
        let mut buf = [0u8; 600];
        let n = want.encode(&mut buf).unwrap();
        assert_eq!(&buf[..n], RRQ);
    }

    #[test]
    fn worked_oack_and_error_vectors() {
        let mut buf = [0u8; 600];
        let n = Packet::Oack(mta_options(412)).encode(&mut buf).unwrap();
        assert_eq!(&buf[..n], OACK);
        assert_eq!(Packet::parse(OACK), Ok(Packet::Oack(mta_options(412))));
        assert_eq!(Packet::parse(&[0, 4, 0, 0]), Ok(Packet::Ack { block: 0 }));
        assert_eq!(
            Packet::parse(&[0, 3, 0, 1, 0xfe, 1, 1]),
            Ok(Packet::Data {
                block: 1,
                data: &[0xfe, 1, 1]
            })
        );
        let n = write_error(&mut buf, ErrorCode::FILE_NOT_FOUND, "File not found");
        assert_eq!(&buf[..n], ERR_NOT_FOUND);
        let n = write_error(
            &mut buf,
            ErrorCode::OPTION_NEGOTIATION,
            ErrorCode::OPTION_NEGOTIATION.default_message(),
        );
        assert_eq!(&buf[..n], ERR_OPTIONS);
        assert_eq!(
            Packet::parse(ERR_OPTIONS),
            Ok(Packet::Error {
                code: ErrorCode::OPTION_NEGOTIATION,
                message: b"Option negotiation refused"
            })
        );
    }

    /// The first packet of the pcap in vectors/tftp: `RRQ "file1" octet`.
    #[test]
    fn captured_plain_rrq() {
        let rrq = b"\x00\x01file1\x00octet\x00";
        assert_eq!(
            Packet::parse(rrq),
            Ok(Packet::Rrq(Request {
                filename: "file1",
                mode: Mode::Octet,
                options: Options::default()
            }))
        );
    }

    #[test]
    fn modes_are_case_insensitive_and_mail_is_refused() {
        let mode = |m: &[u8]| {
            let mut p = b"\x00\x01f\x00".to_vec();
            p.extend_from_slice(m);
            p.push(0);
            Packet::parse(&p).map(|p| match p {
                Packet::Rrq(r) => r.mode,
                _ => unreachable!(),
            })
        };
        assert_eq!(mode(b"OcTeT"), Ok(Mode::Octet));
        assert_eq!(mode(b"NETASCII"), Ok(Mode::Netascii));
        assert_eq!(mode(b"mail"), Err(PacketError::MailMode));
        assert_eq!(mode(b"binary"), Err(PacketError::UnknownMode));
    }

    #[test]
    fn malformed_requests_are_typed_errors() {
        let e = |b: &[u8]| Packet::parse(b).unwrap_err();
        assert_eq!(e(b""), PacketError::Truncated { len: 0, need: 2 });
        assert_eq!(e(b"\x00"), PacketError::Truncated { len: 1, need: 2 });
        assert_eq!(e(b"\x00\x09"), PacketError::UnknownOpcode { opcode: 9 });
        assert_eq!(e(b"\x00\x01file"), PacketError::MissingNul);
        assert_eq!(e(b"\x00\x01file\x00octet"), PacketError::MissingNul);
        assert_eq!(e(b"\x00\x01\x00octet\x00"), PacketError::EmptyFilename);
        assert_eq!(e(b"\x00\x01f\xc3\xa9\x00octet\x00"), PacketError::NonAscii);
        let mut long = b"\x00\x01".to_vec();
        long.extend(std::iter::repeat_n(b'a', 504));
        long.extend_from_slice(b"\x00octet\x00");
        assert_eq!(long.len(), 513);
        assert_eq!(e(&long), PacketError::RequestTooLong { len: 513 });
        long.remove(2);
        assert!(Packet::parse(&long).is_ok(), "512 bytes is allowed");
    }

    #[test]
    fn malformed_short_packets_are_typed_errors() {
        let e = |b: &[u8]| Packet::parse(b).unwrap_err();
        assert_eq!(
            e(b"\x00\x04\x00"),
            PacketError::Truncated { len: 3, need: 4 }
        );
        assert_eq!(
            e(b"\x00\x03\x00"),
            PacketError::Truncated { len: 3, need: 4 }
        );
        assert_eq!(
            e(b"\x00\x04\x00\x01\x00"),
            PacketError::TrailingBytes { extra: 1 }
        );
        assert_eq!(e(b"\x00\x05\x00\x01oops"), PacketError::MissingNul);
        assert_eq!(
            e(b"\x00\x05\x00\x01a\x00b"),
            PacketError::TrailingBytes { extra: 1 }
        );
        assert_eq!(
            Packet::parse(b"\x00\x03\x00\x07"),
            Ok(Packet::Data {
                block: 7,
                data: &[]
            })
        );
        assert_eq!(
            Packet::parse(b"\x00\x05\x00\x63\xff\x00"),
            Ok(Packet::Error {
                code: ErrorCode(99),
                message: b"\xff"
            })
        );
    }

    #[test]
    fn encoder_refuses_what_the_parser_refuses() {
        let mut buf = [0u8; 1024];
        let req = |filename| {
            Packet::Rrq(Request {
                filename,
                mode: Mode::Octet,
                options: Options::default(),
            })
        };
        assert_eq!(
            req("").encode(&mut buf),
            Err(EncodeError::Unparseable(PacketError::EmptyFilename))
        );
        assert!(matches!(
            req(&"a".repeat(600)).encode(&mut buf),
            Err(EncodeError::Unparseable(PacketError::RequestTooLong { .. }))
        ));
        assert_eq!(
            Packet::Oack(Options {
                blksize: Some(4),
                ..Options::default()
            })
            .encode(&mut buf),
            Err(EncodeError::Unparseable(PacketError::BadOptionValue {
                option: OptionName::Blksize
            }))
        );
        assert_eq!(
            Packet::Ack { block: 1 }.encode(&mut buf[..3]),
            Err(EncodeError::BufferTooSmall { need: 4, have: 3 })
        );
    }

    #[test]
    fn error_messages_are_sanitised_and_cut_to_fit() {
        let mut buf = [0u8; 10];
        let n = write_error(&mut buf, ErrorCode::NOT_DEFINED, "a\nb\u{e9}cdefgh");
        assert_eq!(&buf[..n], b"\x00\x05\x00\x00a?b??\x00");
        assert_eq!(write_error(&mut buf[..4], ErrorCode::NOT_DEFINED, "x"), 0);
    }
}
