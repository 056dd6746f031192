//! The docsis tool's text form of config files: `Main { ... }` with one statement per setting.
//!
//! [`parse`] turns text into a [`ConfigFile`]; [`print`] turns a tree into text that parses back
//! to the same tree. Values print in their typed form only when that form parses back to the
//! same bytes; otherwise as `GenericTLV TlvCode n TlvLength l TlvValue 0x...;`, so even odd or
//! unknown TLVs survive a round trip.

mod lex;
mod parse;
mod print;
mod value;

use thiserror::Error;

use crate::file::ConfigFile;

pub use print::{print, print_decoded};

/// Reads a file named in the text (`ManufacturerCVC "file";`, `DigitMap "file";`): the
/// library does no I/O itself, so the caller decides where names point.
pub type FileLoader<'a> = &'a dyn Fn(&str) -> Result<Vec<u8>, String>;

/// A text-form error, at a line and column (both from 1).
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("line {line}, column {column}: {kind}")]
pub struct TextError {
    pub line: u32,
    pub column: u32,
    pub kind: TextErrorKind,
}

/// What is wrong with a text config file.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum TextErrorKind {
    #[error("comment not closed with */")]
    UnterminatedComment,
    #[error("string not closed with \" on its line")]
    UnterminatedString,
    #[error("invalid UTF-8 outside a quoted string")]
    InvalidUtf8,
    #[error("unexpected end of file, expected {expected}")]
    UnexpectedEnd { expected: String },
    #[error("unexpected {found}, expected {expected}")]
    Unexpected { found: String, expected: String },
    #[error("unknown setting `{name}` in {block}")]
    UnknownName { name: String, block: String },
    #[error("{name}: value {value} out of range {min}..={max}")]
    OutOfRange {
        name: String,
        value: String,
        min: i128,
        max: i128,
    },
    #[error("{name}: `{value}` is not {expected}")]
    InvalidValue {
        name: String,
        value: String,
        expected: String,
    },
    #[error("{name}: {len} bytes, expected {min}..={max}")]
    BadLength {
        name: String,
        len: usize,
        min: usize,
        max: usize,
    },
    #[error("{name}: value of {len} bytes is longer than the {max} a TLV can hold")]
    TooLong {
        name: String,
        len: usize,
        max: usize,
    },
    #[error("bad OID `{oid}`: {reason}")]
    BadOid { oid: String, reason: String },
    #[error("unknown SNMP value type `{name}`")]
    UnknownSnmpType { name: String },
    #[error("GenericTLV: TlvLength {declared} but the value has {actual} bytes")]
    LengthMismatch { declared: usize, actual: usize },
    #[error("TLV type {code} cannot be used at the top level (0 is padding, 255 end of data)")]
    ReservedType { code: u8 },
    #[error("cannot read file \"{path}\": {reason}")]
    FileLoad { path: String, reason: String },
    #[error("file \"{path}\" is named but no file loader was given")]
    NoFileLoader { path: String },
}

/// Parse a config file in the text form. The kind is MTA when the first setting is
/// `MtaConfigDelimiter 1`. Accepts `&str` or raw bytes (legacy files have Latin-1 strings).
pub fn parse(src: &(impl AsRef<[u8]> + ?Sized)) -> Result<ConfigFile, TextError> {
    parse::file(src.as_ref(), None)
}

/// [`parse`], reading files the text names through `loader`.
pub fn parse_with_loader(
    src: &(impl AsRef<[u8]> + ?Sized),
    loader: FileLoader<'_>,
) -> Result<ConfigFile, TextError> {
    parse::file(src.as_ref(), Some(loader))
}
