//! The SNMP MIB objects provd knows, compiled in: symbolic name <-> OID.
//!
//! Used by the DOCSIS / PacketCable config-file text form (the rlaager `docsis` tool syntax,
//! `SnmpMibObject docsDevFilterIpStatus.1 Integer 6;`) to compile operators' existing sources
//! and to print OIDs back by name, and by the PacketCable MTA SNMP provisioning flows.
//!
//! There is no MIB parser at run time: [`objects`] is a static table of facts (name, OID, base
//! syntax, module), each module's block in `table.rs` saying where its OIDs were checked.
//!
//! # Names defined twice
//! PacketCable has a CableLabs and an IETF edition of the MTA and signalling MIBs that share
//! object names with different OIDs (`pktcMtaDevEnabled` is `1.3.6.1.4.1.4491.2.2.1.1.1.7` in
//! `PKTC-MTA-MIB` and `1.3.6.1.2.1.140.1.1.6` in `PKTC-IETF-MTA-MIB`). [`by_name`] and an
//! unqualified name in [`parse_oid`] give the IETF object: that is the one in the golden binary
//! `packetcable_digitmap.bin` (decoded by rlaager as `pktcMtaDevEnabled.0`) and the one
//! PacketCable 1.5/2.0 MTAs implement. The CableLabs object is reached with [`by_name_in`] or
//! with `PKTC-MTA-MIB::name` in text. One exception, forced by the MIBs themselves: the
//! CableLabs realm and CMS tables are indexed by an IMPLIED string (the realm name, the CMS
//! FQDN) while the IETF ones are indexed by a number, so an unqualified name of those tables
//! followed by a quoted instance (`pktcMtaDevCmsIpsecCtrl.'[192.168.28.40]'`, as in rlaager
//! `packetcable_mta.cfg`) resolves to the CableLabs column: the IETF one cannot take that
//! instance.
//!
//! # Quoted instance strings
//! As in net-snmp (and so in the rlaager tool and its golden files): `"abc"` becomes the length
//! followed by the octets (`3.97.98.99`), for a non-IMPLIED string index such as
//! `vacmGroupName.1."rotesting"`; `'abc'` becomes the octets alone (`97.98.99`), for an IMPLIED
//! index such as `snmpCommunityStatus.'rocablelabs'` (`INDEX { IMPLIED snmpCommunityIndex }`).
//! The golden files follow exactly the MIBs' INDEX clauses this way.

mod name_hash;
mod table;

use std::collections::HashMap;
use std::fmt;
use std::sync::LazyLock;

pub use name_hash::{NameHasher, NameHasherBuilder};
pub use table::{
    CL_PKTC_EUE_DEV_MIB, CL_PKTC_EUE_RST_MIB, CL_PKTC_EUE_USER_MIB, CLAB_DEF_MIB,
    DOCS_CABLE_DEVICE_MIB, DOCS_IF_MIB, IF_MIB, PKTC_IETF_MTA_MIB, PKTC_IETF_SIG_MIB, PKTC_MTA_MIB,
    PKTC_SIG_MIB, SNMP_COMMUNITY_MIB, SNMP_FRAMEWORK_MIB, SNMP_NOTIFICATION_MIB, SNMP_TARGET_MIB,
    SNMP_USER_BASED_SM_MIB, SNMP_VIEW_BASED_ACM_MIB, SNMPV2_MIB, SNMPV2_SMI,
};

/// Base SMI type of an object's value, i.e. what a varbind for it carries on the wire.
///
/// Textual conventions are resolved to their base (`TruthValue`, `RowStatus` -> `Integer`;
/// `DisplayString`, `SnmpAdminString`, `MacAddress`, `InetAddress` -> `OctetString`;
/// `Unsigned32` -> `Gauge32`, which has the same encoding). `Unknown` is for nodes that carry no
/// value: registration nodes, tables, table entries and notifications.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Syntax {
    /// `INTEGER` / `Integer32` and enumerations.
    Integer,
    /// `OCTET STRING` and textual conventions on it.
    OctetString,
    /// `OBJECT IDENTIFIER`.
    ObjectIdentifier,
    /// `IpAddress` (4 octets, application tag 0).
    IpAddress,
    /// `Counter32`.
    Counter32,
    /// `Gauge32` / `Unsigned32`.
    Gauge32,
    /// `TimeTicks`.
    TimeTicks,
    /// `Opaque`.
    Opaque,
    /// `Counter64`.
    Counter64,
    /// `BITS` (encoded as an OCTET STRING).
    Bits,
    /// Not a value-carrying object (node, table, entry, notification).
    Unknown,
}

/// One MIB object: the facts needed to turn names into OIDs and back.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct MibObject {
    /// Descriptor as in the MIB, e.g. `docsDevFilterIpStatus`.
    pub name: &'static str,
    /// Registered OID of the object (a column or scalar: without instance).
    pub oid: &'static [u32],
    /// Base syntax of its value.
    pub syntax: Syntax,
    /// MIB module that defines it, e.g. `DOCS-CABLE-DEVICE-MIB`.
    pub module: &'static str,
}

/// Every object of the table, grouped by module (not sorted as a whole).
pub fn objects() -> &'static [MibObject] {
    table::OBJECTS
}

/// Modules whose objects lose to a same-named object of another module in [`by_name`]:
/// the CableLabs editions of MIBs that IETF re-published under the same names.
const SECONDARY_MODULES: &[&str] = &[PKTC_MTA_MIB, PKTC_SIG_MIB];

/// Table entries whose first index is a string in this (CableLabs) module but a number in the
/// IETF edition, so that a quoted instance picks this module's columns (see the crate docs).
const STRING_INDEXED_ROWS: &[(&str, &str)] = &[
    (PKTC_MTA_MIB, "pktcMtaDevRealmEntry"),
    (PKTC_MTA_MIB, "pktcMtaDevCmsEntry"),
];

/// Enumeration labels accepted as instance components: `SnmpSecurityLevel` (SNMP-FRAMEWORK-MIB),
/// the one enumerated index used in config files (`vacmAccessStatus."g"."".3.noAuthNoPriv`).
const INDEX_LABELS: &[(&str, u32)] = &[("noAuthNoPriv", 1), ("authNoPriv", 2), ("authPriv", 3)];

/// Most arcs an OID may have (SNMP's limit, net-snmp's `MAX_OID_LEN`).
pub const MAX_ARCS: usize = 128;

fn rank(module: &str) -> u8 {
    u8::from(SECONDARY_MODULES.contains(&module))
}

struct Index {
    /// Sorted by OID (unique, checked by a test).
    by_oid: Vec<&'static MibObject>,
    /// Sorted by name, then preference (IETF before CableLabs), then module.
    by_name: Vec<&'static MibObject>,
    /// Each name's run in `by_name` (start, end): one hash of the name instead of a binary
    /// search of string compares over some 1300 names.
    name_runs: HashMap<&'static str, (usize, usize), NameHasherBuilder>,
}

static INDEX: LazyLock<Index> = LazyLock::new(|| {
    let mut by_oid: Vec<&'static MibObject> = table::OBJECTS.iter().collect();
    by_oid.sort_by(|a, b| a.oid.cmp(b.oid));
    let mut by_name = by_oid.clone();
    by_name.sort_by(|a, b| {
        (a.name, rank(a.module), a.module).cmp(&(b.name, rank(b.module), b.module))
    });
    let mut name_runs = HashMap::default();
    let mut start = 0;
    for (i, o) in by_name.iter().enumerate() {
        if by_name.get(i + 1).is_none_or(|next| next.name != o.name) {
            name_runs.insert(o.name, (start, i + 1));
            start = i + 1;
        }
    }
    Index {
        by_oid,
        by_name,
        name_runs,
    }
});

/// All objects named `name`, preferred one first.
fn candidates(name: &str) -> &'static [&'static MibObject] {
    let index = &*INDEX;
    match index.name_runs.get(name) {
        Some(&(lo, hi)) => &index.by_name[lo..hi],
        None => &[],
    }
}

/// The object named `name` (exact, case-sensitive). When two modules define the name, the IETF
/// one (see the crate docs); use [`by_name_in`] to choose.
pub fn by_name(name: &str) -> Option<&'static MibObject> {
    candidates(name).first().copied()
}

/// The object named `name` in MIB module `module` (e.g. `PKTC-MTA-MIB`), for callers that know
/// which edition a device implements.
pub fn by_name_in(module: &str, name: &str) -> Option<&'static MibObject> {
    candidates(name)
        .iter()
        .copied()
        .find(|o| o.module == module)
}

/// The object registered at exactly `oid`.
pub fn by_oid(oid: &[u32]) -> Option<&'static MibObject> {
    let v = &INDEX.by_oid;
    v.binary_search_by(|o| o.oid.cmp(oid)).ok().map(|i| v[i])
}

/// The object with the longest OID that is a prefix of `oid` (a column or scalar rather than its
/// table or group), and the rest of `oid` after it (the instance).
pub fn by_oid_prefix(oid: &[u32]) -> Option<(&'static MibObject, &[u32])> {
    (1..=oid.len())
        .rev()
        .find_map(|n| by_oid(&oid[..n]).map(|o| (o, &oid[n..])))
}

/// Dotted numeric form without a leading dot: `1.3.6.1.2.1.69.1.6.3.0` (empty for no arcs).
pub fn format_numeric(oid: &[u32]) -> String {
    let mut s = String::with_capacity(oid.len() * 3);
    for (i, arc) in oid.iter().enumerate() {
        if i > 0 {
            s.push('.');
        }
        s.push_str(&arc.to_string());
    }
    s
}

/// `name.suffix` with the most specific known object and a numeric instance suffix
/// (`docsDevFilterIpStatus.1`), else [`format_numeric`]. The name is module-qualified
/// (`PKTC-MTA-MIB::pktcMtaDevEnabled.0`) when a plain name would parse to another module's
/// object, so [`parse_oid`] always maps the text back to `oid`.
pub fn format_oid(oid: &[u32]) -> String {
    let Some((obj, suffix)) = by_oid_prefix(oid) else {
        return format_numeric(oid);
    };
    let mut s = if by_name(obj.name).is_some_and(|o| std::ptr::eq(o, obj)) {
        obj.name.to_string()
    } else {
        format!("{}::{}", obj.module, obj.name)
    };
    for arc in suffix {
        s.push('.');
        s.push_str(&arc.to_string());
    }
    s
}

/// What is wrong with an OID text, see [`OidError`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum OidErrorKind {
    /// Nothing but whitespace.
    Empty,
    /// Two dots in a row, or a dot at the end or start of the instance.
    EmptyArc,
    /// An arc that starts with a digit but is not a decimal number (`12a`).
    BadNumber(String),
    /// A decimal arc above `u32::MAX`.
    ArcTooLarge(String),
    /// A name that is no known object (nor an index label).
    UnknownName(String),
    /// `MODULE::name` where the module has no object of that name.
    UnknownNameInModule {
        /// The module given.
        module: String,
        /// The name given.
        name: String,
    },
    /// A quoted string with no closing quote.
    UnterminatedQuote,
    /// A character that cannot start or continue an arc here.
    UnexpectedChar(char),
    /// Fewer than two arcs in the result.
    TooFewArcs(usize),
    /// First arc above 2.
    FirstArcTooLarge(u32),
    /// Second arc above 39 under first arc 0 or 1 (not encodable in BER).
    SecondArcTooLarge(u32),
    /// More than [`MAX_ARCS`] arcs.
    TooLong,
}

/// An OID text [`parse_oid`] rejected: what is wrong and the byte offset in the text where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OidError {
    kind: OidErrorKind,
    offset: usize,
}

impl OidError {
    fn new(kind: OidErrorKind, offset: usize) -> Self {
        Self { kind, offset }
    }

    /// What is wrong.
    pub fn kind(&self) -> &OidErrorKind {
        &self.kind
    }

    /// Byte offset in the parsed text where the problem is.
    pub fn offset(&self) -> usize {
        self.offset
    }
}

impl fmt::Display for OidErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Empty => write!(f, "empty OID"),
            Self::EmptyArc => write!(f, "empty arc (two dots in a row or a dot at an end)"),
            Self::BadNumber(s) => write!(f, "bad number {s:?}"),
            Self::ArcTooLarge(s) => write!(f, "arc {s} is above {}", u32::MAX),
            Self::UnknownName(s) => write!(f, "unknown MIB object name {s:?}"),
            Self::UnknownNameInModule { module, name } => {
                write!(f, "no object {name:?} in MIB module {module:?}")
            }
            Self::UnterminatedQuote => write!(f, "unterminated quoted string"),
            Self::UnexpectedChar(c) => write!(f, "unexpected character {c:?}"),
            Self::TooFewArcs(n) => write!(f, "an OID needs at least 2 arcs, this has {n}"),
            Self::FirstArcTooLarge(v) => write!(f, "first arc must be 0, 1 or 2, not {v}"),
            Self::SecondArcTooLarge(v) => {
                write!(f, "second arc must be at most 39 under 0 or 1, not {v}")
            }
            Self::TooLong => write!(f, "OID has more than {MAX_ARCS} arcs"),
        }
    }
}

impl fmt::Display for OidError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} at byte {}", self.kind, self.offset)
    }
}

impl std::error::Error for OidError {}

/// Parses an OID written as net-snmp and the rlaager `docsis` tool accept it:
///
/// * dotted numeric, with or without a leading dot: `1.3.6.1.2.1.69.1.6.3.0`, `.1.3.6.1.4.1`;
/// * a known name and an optional instance: `docsDevFilterIpStatus.1`, `sysContact.0`,
///   `enterprises.4491.2.2`, `mib-2.69`, `system.sysContact.0` (a later name must lie under the
///   OID so far);
/// * `MODULE::name...` to pick the module: `DOCS-CABLE-DEVICE-MIB::docsDevNmAccessIp.1`;
/// * instance strings: `"abc"` -> `3.97.98.99`, `'abc'` -> `97.98.99` (see the crate docs);
///   a backslash escapes the next character inside quotes;
/// * the `SnmpSecurityLevel` labels `noAuthNoPriv`, `authNoPriv`, `authPriv` as instance arcs.
///
/// Leading and trailing whitespace is ignored; decimal arcs with leading zeros are decimal.
/// Never panics.
pub fn parse_oid(text: &str) -> Result<Vec<u32>, OidError> {
    let mut oid = Vec::new();
    Parser::new(text).parse(&mut oid)?;
    Ok(oid)
}

/// [`parse_oid`] into `oid` (cleared first), so that a caller parsing many OIDs reuses one
/// buffer. After an error `oid` holds no meaningful arcs.
pub fn parse_oid_into(text: &str, oid: &mut Vec<u32>) -> Result<(), OidError> {
    oid.clear();
    Parser::new(text).parse(oid)
}

struct Parser<'a> {
    text: &'a str,
    pos: usize,
    end: usize,
}

fn is_ident_byte(b: u8) -> bool {
    IDENT_BYTES[usize::from(b)]
}

/// ASCII letters and digits, `-` and `_`: one load per byte where names are scanned.
static IDENT_BYTES: [bool; 256] = {
    let mut table = [false; 256];
    let mut b = 0;
    while b < 256 {
        let c = b as u8;
        table[b] = c.is_ascii_alphanumeric() || c == b'-' || c == b'_';
        b += 1;
    }
    table
};

impl<'a> Parser<'a> {
    fn new(text: &'a str) -> Self {
        let pos = text.len() - text.trim_start().len();
        let end = text.trim_end().len().max(pos);
        Self { text, pos, end }
    }

    fn peek(&self) -> Option<u8> {
        (self.pos < self.end).then(|| self.text.as_bytes()[self.pos])
    }

    fn peek_at(&self, i: usize) -> Option<u8> {
        (i < self.end).then(|| self.text.as_bytes()[i])
    }

    fn err(&self, kind: OidErrorKind, at: usize) -> OidError {
        OidError::new(kind, at)
    }

    fn unexpected(&self, at: usize) -> OidError {
        let c = self.text[at..].chars().next().unwrap_or('\0');
        self.err(OidErrorKind::UnexpectedChar(c), at)
    }

    fn ident(&mut self) -> &'a str {
        let start = self.pos;
        let rest = self
            .text
            .as_bytes()
            .get(start..self.end)
            .unwrap_or_default();
        self.pos += rest
            .iter()
            .position(|&b| !is_ident_byte(b))
            .unwrap_or(rest.len());
        &self.text[start..self.pos]
    }

    fn parse(mut self, oid: &mut Vec<u32>) -> Result<(), OidError> {
        let start = self.pos;
        if start >= self.end {
            return Err(self.err(OidErrorKind::Empty, start));
        }
        if self.peek() == Some(b'.') {
            self.pos += 1;
        }
        // Room for the usual instance (a few arcs) so that the arcs are pushed without growing.
        match self.peek() {
            None => return Err(self.err(OidErrorKind::EmptyArc, self.pos)),
            Some(b) if b.is_ascii_alphabetic() => {
                let obj = self.base_name()?;
                oid.reserve(obj.oid.len() + 8);
                oid.extend_from_slice(obj.oid);
                if self.pos < self.end {
                    self.dot()?;
                    self.arcs(oid)?;
                }
            }
            Some(_) => {
                // At most one arc per two bytes of text ("1.") when numeric.
                oid.reserve(((self.end - self.pos) / 2 + 1).min(MAX_ARCS + 1));
                self.arcs(oid)?;
            }
        }
        self.check(oid, start)
    }

    /// `name` or `MODULE::name` at the start.
    fn base_name(&mut self) -> Result<&'static MibObject, OidError> {
        let at = self.pos;
        let first = self.ident();
        let (module, name, name_at) = if self.peek() == Some(b':') {
            self.pos += 1;
            if self.peek() == Some(b':') {
                self.pos += 1;
            }
            let name_at = self.pos;
            if !self.peek().is_some_and(|b| b.is_ascii_alphabetic()) {
                return Err(match self.peek() {
                    None => self.err(OidErrorKind::UnknownName(String::new()), name_at),
                    Some(_) => self.unexpected(name_at),
                });
            }
            (Some(first), self.ident(), name_at)
        } else {
            (None, first, at)
        };
        let quoted_next =
            self.peek() == Some(b'.') && matches!(self.peek_at(self.pos + 1), Some(b'"' | b'\''));
        match module {
            Some(m) => by_name_in(m, name).ok_or_else(|| {
                self.err(
                    OidErrorKind::UnknownNameInModule {
                        module: m.to_string(),
                        name: name.to_string(),
                    },
                    at,
                )
            }),
            None => {
                let cands = candidates(name);
                if quoted_next
                    && cands.len() > 1
                    && let Some(o) = cands.iter().copied().find(|o| under_string_indexed_row(o))
                {
                    return Ok(o);
                }
                cands
                    .first()
                    .copied()
                    .ok_or_else(|| self.err(OidErrorKind::UnknownName(name.to_string()), name_at))
            }
        }
    }

    fn dot(&mut self) -> Result<(), OidError> {
        match self.peek() {
            Some(b'.') => {
                self.pos += 1;
                if self.pos >= self.end {
                    return Err(self.err(OidErrorKind::EmptyArc, self.pos));
                }
                Ok(())
            }
            Some(_) => Err(self.unexpected(self.pos)),
            None => Ok(()),
        }
    }

    /// One or more dot-separated instance components, to the end.
    fn arcs(&mut self, oid: &mut Vec<u32>) -> Result<(), OidError> {
        loop {
            let at = self.pos;
            match self.peek() {
                Some(b) if b.is_ascii_digit() => oid.push(self.number()?),
                Some(q @ (b'"' | b'\'')) => self.quoted(q, oid)?,
                Some(b) if b.is_ascii_alphabetic() => self.label(oid)?,
                Some(b'.') | None => return Err(self.err(OidErrorKind::EmptyArc, at)),
                Some(_) => return Err(self.unexpected(at)),
            }
            if oid.len() > MAX_ARCS {
                return Err(self.err(OidErrorKind::TooLong, at));
            }
            if self.pos >= self.end {
                return Ok(());
            }
            self.dot()?;
        }
    }

    fn number(&mut self) -> Result<u32, OidError> {
        let at = self.pos;
        let s = self.ident();
        if !s.bytes().all(|b| b.is_ascii_digit()) {
            return Err(self.err(OidErrorKind::BadNumber(s.to_string()), at));
        }
        s.parse::<u32>()
            .map_err(|_| self.err(OidErrorKind::ArcTooLarge(s.to_string()), at))
    }

    fn quoted(&mut self, quote: u8, oid: &mut Vec<u32>) -> Result<(), OidError> {
        let at = self.pos;
        let mut bytes = Vec::new();
        let mut chars = self.text[at + 1..self.end].char_indices();
        let close = loop {
            match chars.next() {
                None => return Err(self.err(OidErrorKind::UnterminatedQuote, at)),
                Some((i, c)) if c == char::from(quote) => break at + 1 + i,
                Some((_, '\\')) => match chars.next() {
                    Some((_, c)) => bytes.extend_from_slice(c.encode_utf8(&mut [0; 4]).as_bytes()),
                    None => return Err(self.err(OidErrorKind::UnterminatedQuote, at)),
                },
                Some((_, c)) => bytes.extend_from_slice(c.encode_utf8(&mut [0; 4]).as_bytes()),
            }
        };
        if bytes.len() > MAX_ARCS {
            return Err(self.err(OidErrorKind::TooLong, at));
        }
        if quote == b'"' {
            oid.push(bytes.len() as u32);
        }
        oid.extend(bytes.iter().map(|&b| u32::from(b)));
        self.pos = close + 1;
        Ok(())
    }

    /// A name inside the instance: an object under the OID so far, or an index label.
    fn label(&mut self, oid: &mut Vec<u32>) -> Result<(), OidError> {
        let at = self.pos;
        let name = self.ident();
        if let Some(o) = candidates(name)
            .iter()
            .find(|o| o.oid.len() > oid.len() && o.oid.starts_with(oid.as_slice()))
        {
            oid.clear();
            oid.extend_from_slice(o.oid);
            return Ok(());
        }
        match INDEX_LABELS.iter().find(|(l, _)| *l == name) {
            Some(&(_, v)) => {
                oid.push(v);
                Ok(())
            }
            None => Err(self.err(OidErrorKind::UnknownName(name.to_string()), at)),
        }
    }

    fn check(&self, oid: &[u32], start: usize) -> Result<(), OidError> {
        match oid {
            [] | [_] => Err(self.err(OidErrorKind::TooFewArcs(oid.len()), start)),
            [a, ..] if *a > 2 => Err(self.err(OidErrorKind::FirstArcTooLarge(*a), start)),
            [a, b, ..] if *a < 2 && *b > 39 => {
                Err(self.err(OidErrorKind::SecondArcTooLarge(*b), start))
            }
            _ => Ok(()),
        }
    }
}

/// Is `o` a column of one of [`STRING_INDEXED_ROWS`]?
fn under_string_indexed_row(o: &MibObject) -> bool {
    STRING_INDEXED_ROWS.iter().any(|&(m, row)| {
        o.module == m
            && by_name_in(m, row)
                .is_some_and(|r| o.oid.len() > r.oid.len() && o.oid.starts_with(r.oid))
    })
}

#[cfg(test)]
mod tests;
