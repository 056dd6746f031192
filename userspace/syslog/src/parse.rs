//! Syslog datagrams to [`Message`]s: RFC 5424, RFC 3164 (BSD) and the bare `<PRI>text` that
//! cable modems and MTAs often send. Sans-IO: the bytes and the arrival time go in, a value comes
//! out; no clock, no sockets.
//!
//! Only the PRI is mandatory. Everything after it is read leniently, because a device's event is
//! worth keeping even when its header is odd: a header that is not RFC 5424 is read as RFC 3164,
//! and one that is not RFC 3164 either is kept as bare text. What is lenient, exactly:
//!
//! * Bytes that are not UTF-8 are kept, replaced by U+FFFD (the text is for people to read).
//! * A datagram longer than [`MAX_DATAGRAM`] is cut there and marked [`Message::truncated`];
//!   the rest of a device's message is more use than no message.
//! * RFC 5424: an invalid TIMESTAMP becomes `None`; invalid STRUCTURED-DATA is kept as the start
//!   of the text; header fields must be printable ASCII within the RFC's lengths, or the
//!   datagram is read as RFC 3164.
//! * RFC 3164: a timestamp carries no year or zone. The year is the one putting the date
//!   closest to the arrival time; the zone is taken as UTC (devices set their clock from the
//!   time server, in UTC). Dates that exist in none of the nearby years give no timestamp.
//! * Trailing `\n`, `\r` and NUL (which many senders append) are trimmed from the text.

use std::borrow::Cow;
use std::fmt;

/// The longest datagram read whole; longer ones are cut here ([`Message::truncated`]). RFC 5424
/// §6.1 requires receivers to take 480 bytes and recommends 2048; 8 KiB leaves room for the
/// chattiest firmware while bounding the work per datagram.
pub const MAX_DATAGRAM: usize = 8192;

/// Largest PRI: facility 23 (local7) and severity 7 (debug).
const MAX_PRI: u16 = 191;
/// RFC 5424 §6 header field lengths, also applied to RFC 3164 hosts and tags.
const MAX_HOSTNAME: usize = 255;
const MAX_APP_NAME: usize = 48;
const MAX_PROCID: usize = 128;
const MAX_MSGID: usize = 32;
const MAX_SD_NAME: usize = 32;
const BOM: &[u8] = b"\xef\xbb\xbf";
/// 9999-12-31T23:59:59.999Z, the last instant an RFC 3339 timestamp can name.
const MAX_UNIX_MS: u64 = 253_402_300_799_999;

/// Which header a message came with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Format {
    /// `<PRI>1 TIMESTAMP HOSTNAME APP-NAME PROCID MSGID SD [MSG]`.
    Rfc5424,
    /// `<PRI>Mmm dd hh:mm:ss HOST TAG[pid]: msg` (or an RFC 3339 timestamp in its place).
    Rfc3164,
    /// `<PRI>` and text with no timestamp, possibly `TAG[pid]: ` first: what DOCSIS devices
    /// send, e.g. `<132>CABLEMODEM[DOCSIS]: <73050100> ...`.
    Bare,
}

impl Format {
    pub const KINDS: usize = 3;
    /// Every format, in [`Self::index`] order.
    pub const ALL: [Format; Self::KINDS] = [Format::Rfc5424, Format::Rfc3164, Format::Bare];

    /// A stable index per format, below [`Self::KINDS`].
    pub fn index(self) -> usize {
        match self {
            Format::Rfc5424 => 0,
            Format::Rfc3164 => 1,
            Format::Bare => 2,
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            Format::Rfc5424 => "rfc5424",
            Format::Rfc3164 => "rfc3164",
            Format::Bare => "bare",
        }
    }
}

/// A point in time as the sender wrote it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Timestamp {
    /// Milliseconds since 1970-01-01 00:00 UTC (negative before; finer digits are dropped).
    pub unix_ms: i64,
    /// The sender's UTC offset in minutes; `None` when it gave none (RFC 3164), in which case
    /// `unix_ms` reads the wall time as UTC.
    pub utc_offset_min: Option<i16>,
}

/// One RFC 5424 SD-ELEMENT: `[id name="value" ...]`, values unescaped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SdElement {
    pub id: String,
    pub params: Vec<(String, String)>,
}

/// A parsed syslog datagram. Strings are owned: a message outlives its receive buffer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    /// 0 (kernel) to 23 (local7).
    pub facility: u8,
    /// 0 (emergency) to 7 (debug).
    pub severity: u8,
    pub format: Format,
    /// When the sender says the event happened, if it said so in a form read here.
    pub timestamp: Option<Timestamp>,
    pub hostname: Option<String>,
    /// RFC 5424 APP-NAME, or the RFC 3164 TAG (`CABLEMODEM` in `CABLEMODEM[DOCSIS]: `).
    pub app_name: Option<String>,
    /// RFC 5424 PROCID, or what the RFC 3164 TAG carries in brackets.
    pub proc_id: Option<String>,
    /// RFC 5424 MSGID.
    pub msg_id: Option<String>,
    pub structured_data: Vec<SdElement>,
    /// The free-form message, BOM removed, lossily UTF-8.
    pub text: String,
    /// Arrival time, milliseconds since the Unix epoch, as given to [`parse`].
    pub received_at: u64,
    /// The datagram was longer than [`MAX_DATAGRAM`] and only its start was read.
    pub truncated: bool,
}

impl Message {
    /// The DOCSIS event ID that starts the text of a DOCSIS event message
    /// (`<73050100> ...`, OSSI "event ID" in decimal), if any.
    pub fn docsis_event_id(&self) -> Option<u32> {
        docsis_event_id(&self.text)
    }
}

/// The DOCSIS event ID at the start of `text`: `<digits>` with at most 10 digits that fit a u32.
pub fn docsis_event_id(text: &str) -> Option<u32> {
    let rest = text.strip_prefix('<')?;
    let end = rest.find('>')?;
    let digits = &rest[..end];
    if digits.is_empty() || digits.len() > 10 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// Why a datagram is not syslog at all. Everything after a valid PRI is accepted (see the
/// module documentation), so these are all about the PRI.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ParseError {
    #[error("empty datagram")]
    Empty,
    #[error("no PRI: the datagram starts with {first:#04x}, not '<'")]
    NoPri { first: u8 },
    #[error("PRI is not 1 to 3 digits")]
    BadPri,
    #[error("PRI digits are not closed by '>'")]
    UnterminatedPri,
    #[error("PRI {value} is out of range (at most 191)")]
    PriOutOfRange { value: u16 },
}

impl ParseError {
    pub const KINDS: usize = 5;
    pub const LABELS: [&'static str; Self::KINDS] = [
        "empty",
        "no_pri",
        "bad_pri",
        "unterminated_pri",
        "pri_out_of_range",
    ];

    /// A stable index per kind (fields ignored), below [`Self::KINDS`].
    pub fn index(&self) -> usize {
        match self {
            ParseError::Empty => 0,
            ParseError::NoPri { .. } => 1,
            ParseError::BadPri => 2,
            ParseError::UnterminatedPri => 3,
            ParseError::PriOutOfRange { .. } => 4,
        }
    }

    pub fn label(&self) -> &'static str {
        Self::LABELS[self.index()]
    }
}

/// Parses one syslog datagram received at `received_at` (milliseconds since the Unix epoch,
/// used to complete RFC 3164 dates). Never panics; see the module documentation for what is
/// accepted.
pub fn parse(datagram: &[u8], received_at: u64) -> Result<Message, ParseError> {
    let truncated = datagram.len() > MAX_DATAGRAM;
    let datagram = &datagram[..datagram.len().min(MAX_DATAGRAM)];
    let (pri, body) = pri(datagram)?;
    let mut msg = Message {
        facility: pri / 8,
        severity: pri % 8,
        format: Format::Bare,
        timestamp: None,
        hostname: None,
        app_name: None,
        proc_id: None,
        msg_id: None,
        structured_data: Vec::new(),
        text: String::new(),
        received_at,
        truncated,
    };
    if !rfc5424(body, &mut msg) {
        rfc3164(body, received_at, &mut msg);
    }
    Ok(msg)
}

/// `<PRI>`: returns the value and what follows.
fn pri(d: &[u8]) -> Result<(u8, &[u8]), ParseError> {
    let (&first, rest) = d.split_first().ok_or(ParseError::Empty)?;
    if first != b'<' {
        return Err(ParseError::NoPri { first });
    }
    let digits = rest
        .iter()
        .take(4)
        .take_while(|b| b.is_ascii_digit())
        .count();
    if digits == 0 || digits > 3 {
        return Err(ParseError::BadPri);
    }
    if rest.get(digits) != Some(&b'>') {
        return Err(ParseError::UnterminatedPri);
    }
    let value = rest[..digits]
        .iter()
        .fold(0u16, |v, b| v * 10 + u16::from(b - b'0'));
    if value > MAX_PRI {
        return Err(ParseError::PriOutOfRange { value });
    }
    // `value` <= 191 here.
    Ok((value as u8, &rest[digits + 1..]))
}

/// Splits off the next space-delimited token: `(token, rest after the one space)`.
fn token(b: &[u8]) -> (&[u8], &[u8]) {
    match b.iter().position(|&c| c == b' ') {
        Some(i) => (&b[..i], &b[i + 1..]),
        None => (b, &[]),
    }
}

/// An RFC 5424 header field: printable US-ASCII, 1 to `max` bytes; `-` is "no value".
fn header_field(t: &[u8], max: usize) -> Option<Option<String>> {
    if t.is_empty() || t.len() > max || !t.iter().all(|b| (33..=126).contains(b)) {
        return None;
    }
    if t == b"-" {
        return Some(None);
    }
    Some(Some(ascii(t)))
}

fn ascii(t: &[u8]) -> String {
    // Callers pass printable ASCII only; lossy conversion is then exact.
    String::from_utf8_lossy(t).into_owned()
}

fn lossy(b: &[u8]) -> String {
    match String::from_utf8_lossy(b) {
        Cow::Borrowed(s) => s.to_owned(),
        Cow::Owned(s) => s,
    }
}

/// The free-form part: BOM (RFC 5424 §6.4) dropped, trailing line ends and NULs trimmed.
fn text(b: &[u8]) -> String {
    let b = b.strip_prefix(BOM).unwrap_or(b);
    let end = b
        .iter()
        .rposition(|c| !matches!(c, b'\n' | b'\r' | 0))
        .map_or(0, |i| i + 1);
    lossy(&b[..end])
}

/// Reads `body` (after the PRI) as RFC 5424 into `msg`; false (and `msg` untouched) if the
/// header is not RFC 5424.
fn rfc5424(body: &[u8], msg: &mut Message) -> bool {
    let Some((ts, host, app, procid, msgid, sd)) = rfc5424_header(body) else {
        return false;
    };
    msg.format = Format::Rfc5424;
    msg.timestamp = ts.and_then(|t| rfc3339(t.as_bytes()));
    msg.hostname = host;
    msg.app_name = app;
    msg.proc_id = procid;
    msg.msg_id = msgid;
    let after_sd = if let Some(rest) = sd.strip_prefix(b"-") {
        if rest.is_empty() || rest.starts_with(b" ") {
            Some(rest)
        } else {
            None
        }
    } else if sd.starts_with(b"[") {
        match structured_data(sd) {
            Some((elements, rest)) => {
                msg.structured_data = elements;
                Some(rest)
            }
            None => None,
        }
    } else {
        None
    };
    msg.text = match after_sd {
        Some(rest) => text(rest.strip_prefix(b" ").unwrap_or(rest)),
        // No valid STRUCTURED-DATA: keep all of it as text rather than lose it.
        None => text(sd),
    };
    true
}

type Header<'a> = (
    Option<String>,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<String>,
    &'a [u8],
);

/// `1 TIMESTAMP HOSTNAME APP-NAME PROCID MSGID ` and what follows (the STRUCTURED-DATA).
fn rfc5424_header(body: &[u8]) -> Option<Header<'_>> {
    // Every header field is followed by a space: a header cut short is not RFC 5424.
    fn field(b: &[u8], max: usize) -> Option<(Option<String>, &[u8])> {
        let i = b.iter().position(|&c| c == b' ')?;
        Some((header_field(&b[..i], max)?, &b[i + 1..]))
    }
    let rest = body.strip_prefix(b"1 ")?;
    let (ts, rest) = field(rest, 64)?;
    let (host, rest) = field(rest, MAX_HOSTNAME)?;
    let (app, rest) = field(rest, MAX_APP_NAME)?;
    let (procid, rest) = field(rest, MAX_PROCID)?;
    let (msgid, rest) = field(rest, MAX_MSGID)?;
    Some((ts, host, app, procid, msgid, rest))
}

/// One or more SD-ELEMENTs; returns them and what follows, or `None` if malformed.
fn structured_data(mut b: &[u8]) -> Option<(Vec<SdElement>, &[u8])> {
    let mut elements = Vec::new();
    while let Some(rest) = b.strip_prefix(b"[") {
        let (id, mut rest) = sd_name(rest)?;
        let mut params = Vec::new();
        loop {
            if let Some(after) = rest.strip_prefix(b"]") {
                rest = after;
                break;
            }
            rest = rest.strip_prefix(b" ")?;
            let (name, after) = sd_name(rest)?;
            let after = after.strip_prefix(b"=\"")?;
            let (value, after) = param_value(after)?;
            params.push((name, value));
            rest = after;
        }
        elements.push(SdElement { id, params });
        b = rest;
    }
    Some((elements, b))
}

/// SD-NAME: 1 to 32 printable US-ASCII bytes except `=`, space, `]` and `"`.
fn sd_name(b: &[u8]) -> Option<(String, &[u8])> {
    let n = b
        .iter()
        .take_while(|&&c| (33..=126).contains(&c) && !matches!(c, b'=' | b']' | b'"'))
        .count();
    if n == 0 || n > MAX_SD_NAME {
        return None;
    }
    Some((ascii(&b[..n]), &b[n..]))
}

/// PARAM-VALUE up to its closing `"`, with `\"`, `\\` and `\]` unescaped (any other backslash
/// is kept, RFC 5424 §6.3.3). Returns the value and what follows the quote.
fn param_value(b: &[u8]) -> Option<(String, &[u8])> {
    let mut out = Vec::new();
    let mut i = 0;
    while let Some(&c) = b.get(i) {
        match c {
            b'"' => return Some((lossy(&out), &b[i + 1..])),
            b'\\' => match b.get(i + 1) {
                Some(&e @ (b'"' | b'\\' | b']')) => {
                    out.push(e);
                    i += 2;
                }
                _ => {
                    out.push(c);
                    i += 1;
                }
            },
            _ => {
                out.push(c);
                i += 1;
            }
        }
    }
    None
}

/// Reads `body` as RFC 3164, or as bare text when no timestamp starts it.
fn rfc3164(body: &[u8], received_at: u64, msg: &mut Message) {
    let mut content = body;
    if let Some((ts, rest)) = bsd_timestamp(body, received_at) {
        msg.format = Format::Rfc3164;
        msg.timestamp = ts;
        content = rest;
        // HOSTNAME, unless the next token is already the TAG (senders that leave the host out).
        let (host, after) = token(rest);
        if !host.is_empty()
            && host.len() <= MAX_HOSTNAME
            && host.iter().all(|b| (33..=126).contains(b))
            && tag(rest).is_none()
        {
            msg.hostname = Some(ascii(host));
            content = after;
        }
    } else {
        msg.format = Format::Bare;
    }
    if let Some((app, pid, rest)) = tag(content) {
        msg.app_name = app;
        msg.proc_id = pid;
        content = rest;
    }
    msg.text = text(content);
}

/// `TAG[pid]: `, `TAG: ` or `: ` (an empty tag, as `logger -t ''` sends) at the start of the
/// content; returns tag, pid and the text after the colon and its space.
fn tag(b: &[u8]) -> Option<(Option<String>, Option<String>, &[u8])> {
    let is_tag = |c: &u8| (33..=126).contains(c) && !matches!(c, b':' | b'[' | b']');
    let n = b.iter().take_while(|c| is_tag(c)).count();
    if n > MAX_APP_NAME {
        return None;
    }
    let mut rest = &b[n..];
    let mut pid = None;
    if let Some(after) = rest.strip_prefix(b"[") {
        let p = after
            .iter()
            .take_while(|&&c| (33..=126).contains(&c) && c != b']')
            .count();
        if n == 0 || p == 0 || p > MAX_PROCID || after.get(p) != Some(&b']') {
            return None;
        }
        pid = Some(ascii(&after[..p]));
        rest = &after[p + 1..];
    }
    let rest = rest.strip_prefix(b":")?;
    let rest = match rest.split_first() {
        None => rest,
        Some((b' ', after)) => after,
        Some(_) => return None,
    };
    let app = (n > 0).then(|| ascii(&b[..n]));
    Some((app, pid, rest))
}

/// An RFC 3164 timestamp (`Mmm dd hh:mm:ss`, day space- or zero-padded, optional fraction) or
/// an RFC 3339 one, followed by a space or the end. Returns the time (`None` when the date is
/// not valid in any year near `received_at`) and what follows the space.
fn bsd_timestamp(b: &[u8], received_at: u64) -> Option<(Option<Timestamp>, &[u8])> {
    let (first, rest) = token(b);
    if first.first().is_some_and(u8::is_ascii_digit) {
        // rsyslog and others put an RFC 3339 timestamp in the BSD header.
        let ts = rfc3339(first)?;
        return Some((Some(ts), rest));
    }
    let month = month(b.get(..3)?)?;
    if b.get(3) != Some(&b' ') {
        return None;
    }
    let day = match (b.get(4)?, b.get(5)?) {
        (b' ', d) if d.is_ascii_digit() => u32::from(d - b'0'),
        (a, d) if a.is_ascii_digit() && d.is_ascii_digit() => {
            u32::from(a - b'0') * 10 + u32::from(d - b'0')
        }
        _ => return None,
    };
    if b.get(6) != Some(&b' ') {
        return None;
    }
    let (h, m, s, frac_ms, used) = clock(b.get(7..)?)?;
    let rest = &b[7 + used..];
    let rest = match rest.split_first() {
        None => rest,
        Some((b' ', after)) => after,
        Some(_) => return None,
    };
    let ts = nearest_year(month, day, received_at).map(|year| Timestamp {
        unix_ms: unix_ms(year, month, day, h, m, s) + frac_ms,
        utc_offset_min: None,
    });
    let ts = ts.filter(|_| h < 24 && m < 60 && s < 60);
    Some((ts, rest))
}

/// `hh:mm:ss[.fraction]`: hour, minute, second, milliseconds and the bytes used. Ranges are
/// checked by the caller.
fn clock(b: &[u8]) -> Option<(u32, u32, u32, i64, usize)> {
    let h = two_digits(b.get(0..2)?)?;
    let m = two_digits(b.get(3..5)?)?;
    let s = two_digits(b.get(6..8)?)?;
    if b.get(2) != Some(&b':') || b.get(5) != Some(&b':') {
        return None;
    }
    let mut used = 8;
    let mut frac_ms = 0;
    if b.get(8) == Some(&b'.') {
        let digits = b[9..].iter().take_while(|c| c.is_ascii_digit()).count();
        if digits == 0 || digits > 9 {
            return None;
        }
        frac_ms = b[9..9 + digits.min(3)]
            .iter()
            .chain(std::iter::repeat(&b'0'))
            .take(3)
            .fold(0i64, |v, c| v * 10 + i64::from(c - b'0'));
        used = 9 + digits;
    }
    Some((h, m, s, frac_ms, used))
}

fn two_digits(b: &[u8]) -> Option<u32> {
    match b {
        [a, c] if a.is_ascii_digit() && c.is_ascii_digit() => {
            Some(u32::from(a - b'0') * 10 + u32::from(c - b'0'))
        }
        _ => None,
    }
}

fn month(b: &[u8]) -> Option<u32> {
    const NAMES: [&[u8; 3]; 12] = [
        b"Jan", b"Feb", b"Mar", b"Apr", b"May", b"Jun", b"Jul", b"Aug", b"Sep", b"Oct", b"Nov",
        b"Dec",
    ];
    NAMES
        .iter()
        .position(|n| n.eq_ignore_ascii_case(b))
        .map(|i| i as u32 + 1)
}

/// RFC 3339 as RFC 5424 §6.2.3 restricts it: `YYYY-MM-DDThh:mm:ss[.frac](Z|+hh:mm|-hh:mm)`.
/// The whole of `b` must be the timestamp.
fn rfc3339(b: &[u8]) -> Option<Timestamp> {
    let year = b.get(0..4)?.iter().try_fold(0i64, |v, c| {
        c.is_ascii_digit().then(|| v * 10 + i64::from(c - b'0'))
    })?;
    let month = two_digits(b.get(5..7)?)?;
    let day = two_digits(b.get(8..10)?)?;
    if b.get(4) != Some(&b'-') || b.get(7) != Some(&b'-') || !matches!(b.get(10), Some(b'T' | b't'))
    {
        return None;
    }
    let (h, m, s, frac_ms, used) = clock(b.get(11..)?)?;
    let zone = &b[11 + used..];
    let offset: i16 = match zone {
        [b'Z' | b'z'] => 0,
        [sign @ (b'+' | b'-'), h1, h2, b':', m1, m2] => {
            let oh = two_digits(&[*h1, *h2])?;
            let om = two_digits(&[*m1, *m2])?;
            if oh > 23 || om > 59 {
                return None;
            }
            let v = (oh * 60 + om) as i16;
            if *sign == b'-' { -v } else { v }
        }
        _ => return None,
    };
    if !(1..=12).contains(&month)
        || day == 0
        || day > days_in_month(year, month)
        || h > 23
        || m > 59
        || s > 59
    {
        return None;
    }
    Some(Timestamp {
        unix_ms: unix_ms(year, month, day, h, m, s) + frac_ms - i64::from(offset) * 60_000,
        utc_offset_min: Some(offset),
    })
}

/// The year in which `month`/`day` falls closest to `received_at` (the year before, of, or
/// after it: a December message arriving in January is from last year).
fn nearest_year(month: u32, day: u32, received_at: u64) -> Option<i64> {
    if !(1..=12).contains(&month) || day == 0 {
        return None;
    }
    // Past year 9999 nothing is meaningful, and the arithmetic below must not overflow.
    let now = i64::try_from(received_at.min(MAX_UNIX_MS)).unwrap_or(0);
    let (year, _, _) = civil_from_days(now.div_euclid(86_400_000));
    (year - 1..=year + 1)
        .filter(|&y| day <= days_in_month(y, month))
        .min_by_key(|&y| (unix_ms(y, month, day, 12, 0, 0) - now).unsigned_abs())
}

fn is_leap(y: i64) -> bool {
    y % 4 == 0 && (y % 100 != 0 || y % 400 == 0)
}

fn days_in_month(y: i64, m: u32) -> u32 {
    match m {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if is_leap(y) => 29,
        2 => 28,
        _ => 0,
    }
}

/// Days from 1970-01-01 to the given proleptic Gregorian date (H. Hinnant's algorithm).
fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = i64::from((m + 9) % 12);
    let doy = (153 * mp + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The inverse of [`days_from_civil`]: (year, month, day).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

fn unix_ms(y: i64, mo: u32, d: u32, h: u32, mi: u32, s: u32) -> i64 {
    let secs = days_from_civil(y, mo, d) * 86_400
        + i64::from(h) * 3600
        + i64::from(mi) * 60
        + i64::from(s);
    secs * 1000
}

impl fmt::Display for Timestamp {
    /// RFC 3339 in the sender's offset (UTC when it gave none), to the millisecond.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let offset = self.utc_offset_min.unwrap_or(0);
        let local = self.unix_ms.saturating_add(i64::from(offset) * 60_000);
        let (y, mo, d) = civil_from_days(local.div_euclid(86_400_000));
        let ms = local.rem_euclid(86_400_000);
        let (h, mi, s, milli) = (ms / 3_600_000, ms / 60_000 % 60, ms / 1000 % 60, ms % 1000);
        write!(f, "{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}.{milli:03}")?;
        match self.utc_offset_min {
            None | Some(0) => f.write_str("Z"),
            Some(o) => {
                let sign = if o < 0 { '-' } else { '+' };
                let o = o.unsigned_abs();
                write!(f, "{sign}{:02}:{:02}", o / 60, o % 60)
            }
        }
    }
}

/// Facility names (RFC 5424 Table 1, as syslog.conf spells them).
pub fn facility_name(facility: u8) -> &'static str {
    const NAMES: [&str; 24] = [
        "kern",
        "user",
        "mail",
        "daemon",
        "auth",
        "syslog",
        "lpr",
        "news",
        "uucp",
        "cron",
        "authpriv",
        "ftp",
        "ntp",
        "security",
        "console",
        "solaris-cron",
        "local0",
        "local1",
        "local2",
        "local3",
        "local4",
        "local5",
        "local6",
        "local7",
    ];
    NAMES.get(usize::from(facility)).copied().unwrap_or("?")
}

/// Severity names (RFC 5424 Table 2, as syslog.conf spells them).
pub fn severity_name(severity: u8) -> &'static str {
    const NAMES: [&str; 8] = [
        "emerg", "alert", "crit", "err", "warning", "notice", "info", "debug",
    ];
    NAMES.get(usize::from(severity)).copied().unwrap_or("?")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 2026-11-22T05:21:30Z, when the `logger` captures were made.
    const CAPTURED_AT: u64 = 1_795_324_890_000;

    fn ok(d: &[u8]) -> Message {
        parse(d, CAPTURED_AT).unwrap_or_else(|e| panic!("{:?}: {e}", String::from_utf8_lossy(d)))
    }

    fn ts(s: &str) -> Option<Timestamp> {
        rfc3339(s.as_bytes())
    }

    fn data(name: &str) -> Vec<u8> {
        let path = format!(
            "{}/../../tests/data/syslog/{name}",
            env!("CARGO_MANIFEST_DIR")
        );
        std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
    }

    #[test]
    fn captured_at_is_what_the_tests_say() {
        assert_eq!(
            Timestamp {
                unix_ms: CAPTURED_AT as i64,
                utc_offset_min: None
            }
            .to_string(),
            "2026-11-22T05:21:30.000Z"
        );
    }

    #[test]
    fn logger_rfc5424_default() {
        let m = ok(&data("logger_rfc5424.bin"));
        assert_eq!((m.facility, m.severity), (1, 5), "user.notice");
        assert_eq!(m.format, Format::Rfc5424);
        assert_eq!(m.timestamp, ts("2026-11-22T05:21:28.381Z"));
        assert_eq!(m.timestamp.unwrap().utc_offset_min, Some(0));
        assert_eq!(m.hostname.as_deref(), Some("vm"));
        assert_eq!(m.app_name.as_deref(), Some("root"));
        assert_eq!((m.proc_id, m.msg_id), (None, None));
        assert_eq!(
            m.structured_data,
            [SdElement {
                id: "timeQuality".into(),
                params: vec![
                    ("tzKnown".into(), "1".into()),
                    ("isSynced".into(), "0".into())
                ],
            }]
        );
        assert_eq!(m.text, "x");
        assert!(!m.truncated);
        assert_eq!(m.received_at, CAPTURED_AT);
    }

    #[test]
    fn logger_rfc5424_with_escaped_structured_data() {
        let m = ok(&data("logger_rfc5424_sd.bin"));
        assert_eq!((m.facility, m.severity), (19, 4), "local3.warning");
        assert_eq!(m.app_name.as_deref(), Some("provd-test"));
        assert_eq!(m.proc_id.as_deref(), Some("32172"));
        assert_eq!(m.structured_data.len(), 2);
        assert_eq!(
            m.structured_data[1],
            SdElement {
                id: "docsis@4491".into(),
                params: vec![
                    ("mac".into(), "00:15:cf:12:34:57".into()),
                    ("note".into(), r#"say "hi" ]"#.into())
                ],
            }
        );
        assert_eq!(m.text, "provisioning complete");
    }

    #[test]
    fn logger_rfc5424_all_nil_and_utf8() {
        let m = ok(&data("logger_rfc5424_plain.bin"));
        assert_eq!((m.facility, m.severity), (16, 5), "local0.notice");
        assert_eq!(m.format, Format::Rfc5424);
        assert_eq!((m.timestamp, m.hostname), (None, None));
        assert_eq!(m.app_name.as_deref(), Some("mta"));
        assert_eq!(m.msg_id.as_deref(), Some("MTA24"));
        assert!(m.structured_data.is_empty());
        assert_eq!(m.text, "Provisioning Complete");

        let m = ok(&data("logger_rfc5424_utf8.bin"));
        assert_eq!(m.text, "café");
        assert_eq!(m.msg_id.as_deref(), Some("MTA24"));
    }

    #[test]
    fn logger_rfc3164_forms() {
        let m = ok(&data("logger_rfc3164.bin"));
        assert_eq!((m.facility, m.severity), (1, 5));
        assert_eq!(m.format, Format::Rfc3164);
        assert_eq!(
            m.timestamp,
            Some(Timestamp {
                unix_ms: ts("2026-11-22T05:21:28Z").unwrap().unix_ms,
                utc_offset_min: None
            })
        );
        assert_eq!(m.hostname.as_deref(), Some("vm"));
        assert_eq!(m.app_name.as_deref(), Some("root"));
        assert_eq!(m.proc_id, None);
        assert_eq!(m.text, "x");

        let m = ok(&data("logger_rfc3164_pid.bin"));
        assert_eq!((m.facility, m.severity), (16, 3), "local0.err");
        assert_eq!(m.app_name.as_deref(), Some("cm"));
        assert_eq!(m.proc_id.as_deref(), Some("32308"));
        assert_eq!(m.text, "T3 time-out");

        let m = ok(&data("logger_rfc3164_emptytag.bin"));
        assert_eq!((m.facility, m.severity), (3, 3), "daemon.err");
        assert_eq!(m.hostname.as_deref(), Some("vm"));
        assert_eq!(m.app_name, None);
        assert_eq!(m.text, "no tag here");
    }

    #[test]
    fn docsis_bare_event_messages() {
        let m = ok(b"<132>CABLEMODEM[DOCSIS]: <73050100> TLV-11 - unrecognized OID;CM-MAC=00:15:cf:12:34:57;CMTS-MAC=00:01:5c:aa:bb:cc;CM-QOS=1.1;CM-VER=3.0;");
        assert_eq!((m.facility, m.severity), (16, 4), "local0.warning");
        assert_eq!(m.format, Format::Bare);
        assert_eq!(m.timestamp, None);
        assert_eq!(m.hostname, None);
        assert_eq!(m.app_name.as_deref(), Some("CABLEMODEM"));
        assert_eq!(m.proc_id.as_deref(), Some("DOCSIS"));
        assert!(m.text.starts_with("<73050100> TLV-11"));
        assert_eq!(m.docsis_event_id(), Some(73_050_100));

        // No tag at all: the whole rest is the text.
        let m = ok(b"<131><82000300> T3 time-out\n");
        assert_eq!(m.format, Format::Bare);
        assert_eq!(m.app_name, None);
        assert_eq!(m.text, "<82000300> T3 time-out");
        assert_eq!(m.docsis_event_id(), Some(82_000_300));

        let m = ok(b"<13>");
        assert_eq!((m.format, m.text.as_str()), (Format::Bare, ""));
        let m = ok(b"<0>just text: with a colon");
        assert_eq!(m.app_name, None, "a tag has no spaces");
        assert_eq!(m.text, "just text: with a colon");
        let m = ok(b"<191>MTA: Provisioning Complete\0");
        assert_eq!((m.facility, m.severity), (23, 7));
        assert_eq!(m.app_name.as_deref(), Some("MTA"));
        assert_eq!(m.text, "Provisioning Complete");
    }

    #[test]
    fn bsd_timestamp_variants() {
        // Day padded with a space, no host: the tag follows the timestamp.
        let m = ok(b"<30>Nov  2 05:21:28 dhclient[77]: renewed");
        assert_eq!(m.format, Format::Rfc3164);
        assert_eq!(m.hostname, None);
        assert_eq!(m.app_name.as_deref(), Some("dhclient"));
        assert_eq!(
            m.timestamp.map(|t| t.to_string()).as_deref(),
            Some("2026-11-02T05:21:28.000Z")
        );
        // A December date arriving in January is from the year before.
        let jan_2027 = 1_798_765_200_000; // 2027-01-01T01:00:00Z
        let m = parse(b"<13>Dec 31 23:59:59.250 cm01 boot", jan_2027).unwrap();
        assert_eq!(
            m.timestamp.map(|t| t.to_string()).as_deref(),
            Some("2026-12-31T23:59:59.250Z")
        );
        assert_eq!(m.hostname.as_deref(), Some("cm01"));
        assert_eq!((m.app_name.as_deref(), m.text.as_str()), (None, "boot"));
        // 29 February in none of 2025..=2027: kept, without a timestamp.
        let m = ok(b"<13>Feb 29 10:00:00 host app: leap");
        assert_eq!((m.format, m.timestamp), (Format::Rfc3164, None));
        assert_eq!(m.text, "leap");
        // An RFC 3339 timestamp in a BSD header (rsyslog's default forwarding template).
        let m = ok(b"<13>2026-11-22T06:21:28.5+01:00 vm cm: up");
        assert_eq!(m.format, Format::Rfc3164);
        assert_eq!(
            m.timestamp,
            ts("2026-11-22T05:21:28.500Z").map(|t| Timestamp {
                utc_offset_min: Some(60),
                ..t
            })
        );
        assert_eq!(m.hostname.as_deref(), Some("vm"));
        // Not a month: bare text.
        let m = ok(b"<13>Foo 22 05:21:28 x");
        assert_eq!(
            (m.format, m.text.as_str()),
            (Format::Bare, "Foo 22 05:21:28 x")
        );
    }

    #[test]
    fn rfc5424_edge_cases() {
        // The RFC's own examples (§6.5), BOM included.
        let m = ok(b"<34>1 2003-10-11T22:14:15.003Z mymachine.example.com su - ID47 - \xef\xbb\xbf'su root' failed for lonvick on /dev/pts/8");
        assert_eq!((m.facility, m.severity), (4, 2));
        assert_eq!(m.text, "'su root' failed for lonvick on /dev/pts/8");
        assert_eq!(
            m.timestamp.map(|t| t.to_string()).as_deref(),
            Some("2003-10-11T22:14:15.003Z")
        );
        let m = ok(b"<165>1 2003-08-24T05:14:15.000003-07:00 192.0.2.1 myproc 8710 - - %% It's time to make the do-nuts.");
        assert_eq!(
            m.timestamp.map(|t| t.to_string()).as_deref(),
            Some("2003-08-24T05:14:15.000-07:00")
        );
        assert_eq!(m.text, "%% It's time to make the do-nuts.");
        let m = ok(br#"<165>1 2003-10-11T22:14:15.003Z mymachine.example.com evntslog - ID47 [exampleSDID@32473 iut="3" eventSource="Application" eventID="1011"][examplePriority@32473 class="high"]"#);
        assert_eq!(m.structured_data.len(), 2);
        assert_eq!(m.structured_data[0].params.len(), 3);
        assert_eq!(m.text, "");
        // Header with NILVALUEs and nothing after SD.
        let m = ok(b"<13>1 - - - - - -");
        assert_eq!((m.format, m.text.as_str()), (Format::Rfc5424, ""));
        // No SD at all (the space after MSGID and nothing else): kept, empty.
        let m = ok(b"<13>1 - - - - - ");
        assert_eq!((m.format, m.text.as_str()), (Format::Rfc5424, ""));
        // Cut short after MSGID.
        assert_eq!(ok(b"<13>1 - - - - -").format, Format::Bare);
        // An invalid timestamp is dropped, the rest kept.
        let m = ok(b"<13>1 2026-02-30T00:00:00Z h a p m - text");
        assert_eq!((m.format, m.timestamp), (Format::Rfc5424, None));
        assert_eq!(m.text, "text");
        // Malformed SD: kept as text.
        let m = ok(br#"<13>1 - h a - - [broken x="1" text"#);
        assert_eq!(m.format, Format::Rfc5424);
        assert!(m.structured_data.is_empty());
        assert_eq!(m.text, r#"[broken x="1" text"#);
        // SD with a backslash before another character keeps it; a raw `]` in a value is fine.
        let m = ok(br#"<13>1 - - - - - [a b="c:\d]e"] m"#);
        assert_eq!(m.structured_data[0].params[0].1, r"c:\d]e");
        assert_eq!(m.text, "m");
        // A header cut short, or with a non-ASCII field, is not RFC 5424.
        let m = ok(b"<13>1 hello");
        assert_eq!((m.format, m.text.as_str()), (Format::Bare, "1 hello"));
        let m = ok("<13>1 - höst a - - - x".as_bytes());
        assert_eq!(m.format, Format::Bare);
        // Offsets.
        assert_eq!(
            ts("2026-01-01T00:30:00-00:30").map(|t| t.unix_ms),
            ts("2026-01-01T01:00:00Z").map(|t| t.unix_ms)
        );
        assert_eq!(ts("2026-01-01T00:00:60Z"), None);
        assert_eq!(ts("2026-01-01T00:00:00"), None);
        assert_eq!(ts("2026-01-01T00:00:00+24:00"), None);
        assert_eq!(ts("1970-01-01T00:00:00Z").map(|t| t.unix_ms), Some(0));
        assert_eq!(ts("1969-12-31T23:59:59.999Z").map(|t| t.unix_ms), Some(-1));
    }

    #[test]
    fn bad_pri_is_an_error() {
        let e = |d: &[u8]| parse(d, 0).unwrap_err();
        assert_eq!(e(b""), ParseError::Empty);
        assert_eq!(e(b"hello"), ParseError::NoPri { first: b'h' });
        assert_eq!(e(b"<>x"), ParseError::BadPri);
        assert_eq!(e(b"<x>"), ParseError::BadPri);
        assert_eq!(e(b"<0013>x"), ParseError::BadPri);
        assert_eq!(e(b"<13"), ParseError::UnterminatedPri);
        assert_eq!(e(b"<13 x"), ParseError::UnterminatedPri);
        assert_eq!(e(b"<192>x"), ParseError::PriOutOfRange { value: 192 });
        assert_eq!(e(b"<999>x"), ParseError::PriOutOfRange { value: 999 });
        assert_eq!(ok(b"<013>x").facility, 1, "leading zeros are tolerated");
        for (i, err) in [
            ParseError::Empty,
            ParseError::NoPri { first: 0 },
            ParseError::BadPri,
            ParseError::UnterminatedPri,
            ParseError::PriOutOfRange { value: 0 },
        ]
        .iter()
        .enumerate()
        {
            assert_eq!(err.index(), i);
            assert!(!err.label().is_empty());
            assert!(!err.to_string().is_empty());
        }
    }

    #[test]
    fn non_utf8_is_kept_lossily_and_oversize_is_cut() {
        let m = ok(b"<13>cm: caf\xe9 \xff");
        assert_eq!(m.text, "caf\u{fffd} \u{fffd}");
        let mut big = b"<13>".to_vec();
        big.resize(MAX_DATAGRAM + 100, b'a');
        let m = ok(&big);
        assert!(m.truncated);
        assert_eq!(m.text.len(), MAX_DATAGRAM - 4);
        big.truncate(MAX_DATAGRAM);
        assert!(!ok(&big).truncated);
    }

    #[test]
    fn civil_dates_round_trip() {
        for days in (-800_000..800_000).step_by(997) {
            let (y, m, d) = civil_from_days(days);
            assert_eq!(days_from_civil(y, m, d), days);
            assert!(d >= 1 && d <= days_in_month(y, m));
        }
        assert_eq!(days_from_civil(2036, 2, 7), 2_085_955_200 / 86_400);
    }

    #[test]
    fn names() {
        assert_eq!(facility_name(16), "local0");
        assert_eq!(severity_name(4), "warning");
        assert_eq!(facility_name(24), "?");
        assert_eq!(docsis_event_id("<4294967296> x"), None);
        assert_eq!(docsis_event_id("<> x"), None);
    }

    mod props {
        use super::*;
        use proptest::prelude::*;

        fn field(max: usize) -> impl Strategy<Value = Option<String>> {
            prop::option::of(
                proptest::string::string_regex(&format!("[!-~]{{1,{max}}}"))
                    .unwrap()
                    .prop_filter("not NIL", |s| s != "-"),
            )
        }

        fn sd_value() -> impl Strategy<Value = String> {
            proptest::string::string_regex(r#"[ -~é\\"\]]{0,20}"#).unwrap()
        }

        fn escape(v: &str) -> String {
            v.replace('\\', r"\\")
                .replace('"', "\\\"")
                .replace(']', "\\]")
        }

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(512))]

            #[test]
            fn arbitrary_bytes_never_panic(
                d in prop::collection::vec(any::<u8>(), 0..300),
                at in any::<u64>(),
            ) {
                if let Ok(m) = parse(&d, at) {
                    prop_assert!(m.facility <= 23 && m.severity <= 7);
                    prop_assert!(String::from_utf8_lossy(&d).contains(&m.text));
                }
            }

            #[test]
            fn arbitrary_text_after_a_pri_never_panics(
                pri in 0u8..=191,
                body in "[ -~\u{80}-\u{3ff}\n\t\\[\\]\"=:<>]{0,120}",
                at in 0u64..4_102_444_800_000,
            ) {
                let d = format!("<{pri}>{body}");
                let m = parse(d.as_bytes(), at).unwrap();
                prop_assert_eq!(m.facility * 8 + m.severity, pri);
                prop_assert!(d.contains(&m.text));
            }

            #[test]
            fn generated_rfc5424_reads_back(
                pri in 0u8..=191,
                secs in 0i64..4_102_444_800,
                ms in 0i64..1000,
                offset in -1439i16..=1439,
                host in field(MAX_HOSTNAME),
                app in field(MAX_APP_NAME),
                procid in field(MAX_PROCID),
                msgid in field(MAX_MSGID),
                sd in prop::collection::vec(
                    ("[!#-<>-\\\\^-~]{1,32}", prop::collection::vec(("[!#-<>-\\\\^-~]{1,32}", sd_value()), 0..3)),
                    0..3,
                ),
                text in "[^\r\n\0]{0,40}",
            ) {
                let t = Timestamp { unix_ms: secs * 1000 + ms, utc_offset_min: Some(offset) };
                let nil = |f: &Option<String>| f.clone().unwrap_or_else(|| "-".into());
                let sd_text = if sd.is_empty() {
                    "-".to_string()
                } else {
                    sd.iter()
                        .map(|(id, ps)| {
                            let ps: String = ps.iter().map(|(n, v)| format!(" {n}=\"{}\"", escape(v))).collect();
                            format!("[{id}{ps}]")
                        })
                        .collect()
                };
                let d = format!(
                    "<{pri}>1 {t} {} {} {} {} {sd_text} {text}",
                    nil(&host), nil(&app), nil(&procid), nil(&msgid)
                );
                let m = parse(d.as_bytes(), 0).unwrap();
                prop_assert_eq!(m.format, Format::Rfc5424);
                prop_assert_eq!(m.facility * 8 + m.severity, pri);
                prop_assert_eq!(m.timestamp, Some(t));
                prop_assert_eq!(m.hostname, host);
                prop_assert_eq!(m.app_name, app);
                prop_assert_eq!(m.proc_id, procid);
                prop_assert_eq!(m.msg_id, msgid);
                let want: Vec<SdElement> = sd
                    .into_iter()
                    .map(|(id, params)| SdElement { id, params })
                    .collect();
                prop_assert_eq!(m.structured_data, want);
                let want_text = text.strip_prefix('\u{feff}').unwrap_or(&text);
                prop_assert_eq!(m.text, want_text);
            }
        }
    }
}
