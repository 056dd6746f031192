//! Statements to TLVs, following the symbol table block by block.

use super::lex::{self, Tok, Token};
use super::value;
use super::{FileLoader, TextError, TextErrorKind};
use crate::ber::{self, SnmpValue};
use crate::file::ConfigFile;
use crate::symtab::{self, Kind, Sym};
use crate::tlv::{self, Tlv};

/// Largest piece of a file split over several TLVs (code-verification certificates).
const FILE_CHUNK: usize = 254;

/// TLV 11, SNMP MIB object.
pub(super) const SNMP_MIB_OBJECT: u8 = 11;

pub(super) fn file(src: &[u8], loader: Option<FileLoader<'_>>) -> Result<ConfigFile, TextError> {
    let tokens = lex::tokenize(src)?;
    let mut p = Parser {
        tokens,
        pos: 0,
        loader,
        oid: Vec::new(),
    };
    let main = p.next("`Main`")?;
    if !matches!(main.tok, Tok::Atom(a) if a.eq_ignore_ascii_case("main")) {
        return Err(unexpected(&main, "`Main`"));
    }
    p.expect(Tok::LBrace, "`{` after Main")?;
    let tlvs = p.block(symtab::ROOT, true, "Main")?;
    if let Some(extra) = p.tokens.get(p.pos) {
        return Err(unexpected(
            extra,
            "end of file after the closing `}` of Main",
        ));
    }
    Ok(ConfigFile::new(tlvs))
}

/// Parse statements standing alone in block `table` (the printer checks its output with this).
pub(super) fn statements(
    src: &[u8],
    table: &'static [Sym],
    top_level: bool,
) -> Result<Vec<Tlv>, TextError> {
    let tokens = lex::tokenize(src)?;
    let mut p = Parser {
        tokens,
        pos: 0,
        loader: None,
        oid: Vec::new(),
    };
    let mut out = Vec::new();
    while p.pos < p.tokens.len() {
        p.statement(table, top_level, "Main", &mut out)?;
    }
    Ok(out)
}

struct Parser<'a, 'l> {
    tokens: Vec<Token<'a>>,
    pos: usize,
    loader: Option<FileLoader<'l>>,
    /// The OID of the SNMP object being parsed, a buffer kept from one to the next.
    oid: Vec<u32>,
}

fn at(token: &Token<'_>, kind: TextErrorKind) -> TextError {
    TextError {
        line: token.line,
        column: token.column,
        kind,
    }
}

fn unexpected(token: &Token<'_>, expected: &str) -> TextError {
    at(
        token,
        TextErrorKind::Unexpected {
            found: token.describe(),
            expected: expected.to_string(),
        },
    )
}

impl<'a> Parser<'a, '_> {
    /// Where the input ended, for errors at end of file.
    fn end_position(&self) -> (u32, u32) {
        self.tokens.last().map_or((1, 1), |t| (t.line, t.column))
    }

    #[inline]
    fn next(&mut self, expected: &str) -> Result<Token<'a>, TextError> {
        self.next_or(|| expected.to_string())
    }

    /// [`Self::next`] with the description of what was expected made only for an error.
    #[inline]
    fn next_or(&mut self, expected: impl FnOnce() -> String) -> Result<Token<'a>, TextError> {
        match self.tokens.get(self.pos) {
            Some(&t) => {
                self.pos += 1;
                Ok(t)
            }
            None => {
                let (line, column) = self.end_position();
                Err(TextError {
                    line,
                    column,
                    kind: TextErrorKind::UnexpectedEnd {
                        expected: expected(),
                    },
                })
            }
        }
    }

    #[inline]
    fn expect(&mut self, want: Tok<'_>, expected: &str) -> Result<Token<'a>, TextError> {
        self.expect_or(want, || expected.to_string())
    }

    #[inline]
    fn expect_or(
        &mut self,
        want: Tok<'_>,
        expected: impl Fn() -> String,
    ) -> Result<Token<'a>, TextError> {
        let t = self.next_or(&expected)?;
        if t.tok != want {
            return Err(unexpected(&t, &expected()));
        }
        Ok(t)
    }

    #[inline]
    fn atom(&mut self, expected: &str) -> Result<(&'a str, Token<'a>), TextError> {
        let t = self.next(expected)?;
        match t.tok {
            Tok::Atom(a) => Ok((a, t)),
            _ => Err(unexpected(&t, expected)),
        }
    }

    #[inline]
    fn peek(&self) -> Option<&Tok<'a>> {
        self.tokens.get(self.pos).map(|t| &t.tok)
    }

    /// Statements up to and including the `}` that closes the block.
    fn block(
        &mut self,
        table: &'static [Sym],
        top_level: bool,
        name: &str,
    ) -> Result<Vec<Tlv>, TextError> {
        let mut out = Vec::new();
        loop {
            match self.peek() {
                Some(Tok::RBrace) => {
                    self.pos += 1;
                    return Ok(out);
                }
                Some(_) => self.statement(table, top_level, name, &mut out)?,
                None => {
                    let (line, column) = self.end_position();
                    let expected = format!("`}}` closing {name}");
                    return Err(TextError {
                        line,
                        column,
                        kind: TextErrorKind::UnexpectedEnd { expected },
                    });
                }
            }
        }
    }

    fn statement(
        &mut self,
        table: &'static [Sym],
        top_level: bool,
        block: &str,
        out: &mut Vec<Tlv>,
    ) -> Result<(), TextError> {
        let (name, name_tok) = self.atom("a setting name")?;
        if name == "GenericTLV" {
            let tlv = self.generic(&name_tok, top_level)?;
            out.push(tlv);
            return Ok(());
        }
        let Some(sym) = symtab::by_name(table, name) else {
            return Err(at(
                &name_tok,
                TextErrorKind::UnknownName {
                    name: name.to_string(),
                    block: block.to_string(),
                },
            ));
        };
        let tlv = match sym.kind {
            Kind::Compound(children) => {
                self.expect_or(Tok::LBrace, || format!("`{{` opening {}", sym.name))?;
                Tlv::compound(sym.code, self.block(children, false, sym.name)?)
            }
            Kind::FileChunks => {
                let data = self.file_value(sym)?;
                self.expect(Tok::Semi, "`;`")?;
                for chunk in data.chunks(FILE_CHUNK) {
                    out.push(Tlv::leaf(sym.code, chunk));
                }
                return Ok(());
            }
            Kind::VarBind { file_oid } => {
                let (file_oid, value) = match (file_oid, self.peek()) {
                    (Some(oid), Some(Tok::Str(_))) => {
                        (Some(oid), SnmpValue::OctetString(self.file_value(sym)?))
                    }
                    _ => (None, self.varbind(sym)?),
                };
                self.expect(Tok::Semi, "`;`")?;
                let oid = file_oid.unwrap_or(&self.oid);
                let bytes = ber::encode_varbind(oid, &value).map_err(|e| {
                    at(
                        &name_tok,
                        TextErrorKind::BadOid {
                            oid: format!("{oid:?}"),
                            reason: e.to_string(),
                        },
                    )
                })?;
                // As the tool does, a top-level SNMP object too big for TLV 11 goes in TLV 64,
                // which has a 2-byte length.
                let promote =
                    top_level && sym.code == SNMP_MIB_OBJECT && bytes.len() > usize::from(u8::MAX);
                let code = if promote {
                    tlv::WIDE_LENGTH_TYPE
                } else {
                    sym.code
                };
                Tlv::leaf(code, bytes)
            }
            Kind::SnmpWrite => {
                let (oid_text, oid_tok) = self.atom("an OID")?;
                let mut bytes = value::oid_element(oid_text).map_err(|k| at(&oid_tok, k))?;
                let (flag, flag_tok) = self.atom("the write-access flag 0 or 1")?;
                let flag = value::unsigned(sym.name, flag, 0, 255).map_err(|k| at(&flag_tok, k))?;
                bytes.push(u8::try_from(flag).unwrap_or(u8::MAX));
                self.expect(Tok::Semi, "`;`")?;
                Tlv::leaf(sym.code, bytes)
            }
            ref kind => {
                let v = self.next_or(|| format!("a value for {}", sym.name))?;
                let bytes = value::encode(sym.name, kind, &v.tok).map_err(|k| at(&v, k))?;
                self.expect(Tok::Semi, "`;`")?;
                Tlv::leaf(sym.code, bytes)
            }
        };
        check_fits(&tlv, top_level, sym.name, &name_tok)?;
        out.push(tlv);
        Ok(())
    }

    /// `GenericTLV TlvCode n (TlvLength l TlvValue 0x.. | TlvString ".." | TlvStringZero "..");`
    fn generic(&mut self, name_tok: &Token<'_>, top_level: bool) -> Result<Tlv, TextError> {
        self.keyword("TlvCode")?;
        let (code, code_tok) = self.atom("a TLV type code")?;
        let code = value::unsigned("TlvCode", code, 0, 255).map_err(|k| at(&code_tok, k))?;
        let code = u8::try_from(code).unwrap_or(u8::MAX);
        if top_level && (code == 0 || code == 255) {
            return Err(at(&code_tok, TextErrorKind::ReservedType { code }));
        }
        let (form, form_tok) = self.atom("TlvLength, TlvString or TlvStringZero")?;
        let bytes = match form {
            "TlvLength" => {
                let (len, len_tok) = self.atom("a length")?;
                let declared = value::unsigned("TlvLength", len, 0, u64::from(u16::MAX))
                    .map_err(|k| at(&len_tok, k))?;
                self.keyword("TlvValue")?;
                let v = self.next("hex bytes 0x...")?;
                let bytes = value::encode(
                    "TlvValue",
                    &Kind::Hex {
                        min: 0,
                        max: usize::MAX,
                    },
                    &v.tok,
                )
                .map_err(|k| at(&v, k))?;
                let declared = usize::try_from(declared).unwrap_or(usize::MAX);
                if declared != bytes.len() {
                    return Err(at(
                        &len_tok,
                        TextErrorKind::LengthMismatch {
                            declared,
                            actual: bytes.len(),
                        },
                    ));
                }
                bytes
            }
            "TlvString" | "TlvStringZero" => {
                let v = self.next("a quoted string")?;
                let Tok::Str(s) = v.tok else {
                    return Err(unexpected(&v, "a quoted string"));
                };
                let mut bytes = s.to_vec();
                if form == "TlvStringZero" {
                    bytes.push(0);
                }
                bytes
            }
            _ => {
                return Err(unexpected(
                    &form_tok,
                    "TlvLength, TlvString or TlvStringZero",
                ));
            }
        };
        self.expect(Tok::Semi, "`;`")?;
        let tlv = Tlv::leaf(code, bytes);
        check_fits(&tlv, top_level, "GenericTLV", name_tok)?;
        Ok(tlv)
    }

    fn keyword(&mut self, word: &str) -> Result<(), TextError> {
        let expected = || format!("`{word}`");
        let t = self.next_or(expected)?;
        match t.tok {
            Tok::Atom(a) if a == word => Ok(()),
            _ => Err(unexpected(&t, &expected())),
        }
    }

    /// `oid Type value` of an SNMP object: the value, the OID in `self.oid`.
    fn varbind(&mut self, sym: &Sym) -> Result<SnmpValue, TextError> {
        let (oid_text, oid_tok) = self.atom("an OID")?;
        value::parse_oid_into(oid_text, &mut self.oid).map_err(|k| at(&oid_tok, k))?;
        let (ty, ty_tok) = self.atom("an SNMP type (Integer, String, ...)")?;
        if ty == "Null" {
            return Ok(SnmpValue::Null);
        }
        let v = self.next_or(|| format!("a {ty} value"))?;
        let name = sym.name;
        let atom = || match v.tok {
            Tok::Atom(a) => Ok(a),
            _ => Err(unexpected(&v, &format!("a {ty} value"))),
        };
        let u32_of = |text: &str| {
            value::unsigned(name, text, 0, u64::from(u32::MAX))
                .map(|n| u32::try_from(n).unwrap_or(u32::MAX))
        };
        let hex_of = |text: &str| {
            value::hex_value(text).ok_or_else(|| TextErrorKind::InvalidValue {
                name: name.to_string(),
                value: text.to_string(),
                expected: "hex bytes 0x...".to_string(),
            })
        };
        let typed = match ty {
            "Integer" => value::signed(name, atom()?).map(SnmpValue::Integer),
            "Unsigned32" | "Gauge" | "Gauge32" => u32_of(atom()?).map(SnmpValue::Gauge32),
            "Counter32" | "Counter" => u32_of(atom()?).map(SnmpValue::Counter32),
            "TimeTicks" => u32_of(atom()?).map(SnmpValue::TimeTicks),
            "Counter64" | "UnsignedBigInt" => {
                value::unsigned(name, atom()?, 0, u64::MAX).map(SnmpValue::Counter64)
            }
            "IPAddress" => atom()?
                .parse::<std::net::Ipv4Addr>()
                .map(|a| SnmpValue::IpAddress(a.octets()))
                .map_err(|_| TextErrorKind::InvalidValue {
                    name: name.to_string(),
                    value: value::token_text(&v.tok),
                    expected: "an IPv4 address".to_string(),
                }),
            "String" => match v.tok {
                Tok::Str(s) => Ok(SnmpValue::OctetString(s.to_vec())),
                _ => return Err(unexpected(&v, "a quoted string")),
            },
            "HexString" => hex_of(atom()?).map(SnmpValue::OctetString),
            "Opaque" => hex_of(atom()?).map(SnmpValue::Opaque),
            "ObjectID" => value::parse_oid(atom()?).map(SnmpValue::ObjectId),
            _ => {
                return Err(at(
                    &ty_tok,
                    TextErrorKind::UnknownSnmpType {
                        name: ty.to_string(),
                    },
                ));
            }
        };
        typed.map_err(|k| at(&v, k))
    }

    /// The contents of the file named by the next (string) token.
    fn file_value(&mut self, sym: &Sym) -> Result<Vec<u8>, TextError> {
        let t = self.next_or(|| format!("a file name for {}", sym.name))?;
        let Tok::Str(path) = t.tok else {
            return Err(unexpected(&t, "a quoted file name"));
        };
        let path = String::from_utf8_lossy(&path.bytes()).into_owned();
        let Some(loader) = self.loader else {
            return Err(at(&t, TextErrorKind::NoFileLoader { path }));
        };
        loader(&path).map_err(|reason| at(&t, TextErrorKind::FileLoad { path, reason }))
    }
}

/// The encoded value must fit the TLV's length field.
fn check_fits(tlv: &Tlv, top_level: bool, name: &str, token: &Token<'_>) -> Result<(), TextError> {
    let (_, max) = tlv::length_field(tlv.typ, top_level);
    match tlv.value_len() {
        Ok(len) if len <= max => Ok(()),
        Ok(len) => Err(at(
            token,
            TextErrorKind::TooLong {
                name: name.to_string(),
                len,
                max,
            },
        )),
        Err(crate::EncodeError::ValueTooLong { len, max, .. }) => Err(at(
            token,
            TextErrorKind::TooLong {
                name: name.to_string(),
                len,
                max,
            },
        )),
        Err(e) => Err(at(
            token,
            TextErrorKind::InvalidValue {
                name: name.to_string(),
                value: String::new(),
                expected: e.to_string(),
            },
        )),
    }
}
