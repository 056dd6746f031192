//! Tokens of the docsis tool's text syntax.
//!
//! Only braces, `;` and quoted strings are structural; everything else is a word ("atom") up to
//! white space, a brace, `;` or a comment, and its meaning (number, address, OID, hex...) is
//! decided by the setting it belongs to. An atom may hold quoted parts, for OID indexes such
//! as `vacmAccessStatus."ro"."".1.noAuthNoPriv`. Comments are `/* ... */` and `// ...`.
//! Input is bytes: old config files carry Latin-1 in strings.
//!
//! Tokens borrow from the input, so lexing allocates nothing but the token list.

use std::borrow::Cow;

use super::{TextError, TextErrorKind};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Tok<'a> {
    LBrace,
    RBrace,
    Semi,
    /// A `"..."` string.
    Str(Str<'a>),
    Atom(&'a str),
}

/// A quoted string as written between its quotes; [`Str::bytes`] applies the escapes.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Str<'a> {
    raw: &'a [u8],
    /// Whether `raw` holds an escape (`\"` or `\\`), i.e. differs from the value.
    escaped: bool,
}

impl<'a> Str<'a> {
    /// The value: `\"` is a quote and `\\` a backslash, any other byte is itself.
    pub fn bytes(&self) -> Cow<'a, [u8]> {
        if !self.escaped {
            return Cow::Borrowed(self.raw);
        }
        let mut out = Vec::with_capacity(self.raw.len());
        let mut i = 0;
        while let Some(&c) = self.raw.get(i) {
            match (c, self.raw.get(i + 1)) {
                (b'\\', Some(&next @ (b'"' | b'\\'))) => {
                    out.push(next);
                    i += 2;
                }
                _ => {
                    out.push(c);
                    i += 1;
                }
            }
        }
        Cow::Owned(out)
    }

    pub fn to_vec(self) -> Vec<u8> {
        self.bytes().into_owned()
    }
}

impl PartialEq for Str<'_> {
    fn eq(&self, other: &Self) -> bool {
        self.bytes() == other.bytes()
    }
}

impl Eq for Str<'_> {}

#[derive(Debug, Clone, Copy)]
pub(crate) struct Token<'a> {
    pub tok: Tok<'a>,
    pub line: u32,
    pub column: u32,
}

impl Token<'_> {
    /// How the token is named in an error message.
    pub fn describe(&self) -> String {
        match &self.tok {
            Tok::LBrace => "`{`".to_string(),
            Tok::RBrace => "`}`".to_string(),
            Tok::Semi => "`;`".to_string(),
            Tok::Str(s) => format!("string \"{}\"", String::from_utf8_lossy(&s.bytes())),
            Tok::Atom(a) => format!("`{a}`"),
        }
    }
}

/// Bytes at which the plain run of an atom stops: those that end it (white space, braces, `;`)
/// and those that need a closer look (`/` may start a comment, quotes start a quoted index).
static ATOM_STOP: [bool; 256] = {
    let mut table = [false; 256];
    let stops = b" \t\r\n\x0c{};/\"'";
    let mut i = 0;
    while i < stops.len() {
        table[stops[i] as usize] = true;
        i += 1;
    }
    table
};

/// A lexical error, small while the lexer runs (it is a [`TextError`] when reported).
#[derive(Debug, Clone, Copy)]
struct LexError {
    line: u32,
    column: u32,
    kind: LexErrorKind,
}

#[derive(Debug, Clone, Copy)]
enum LexErrorKind {
    UnterminatedComment,
    UnterminatedString,
    InvalidUtf8,
}

impl From<LexError> for TextError {
    fn from(e: LexError) -> TextError {
        TextError {
            line: e.line,
            column: e.column,
            kind: match e.kind {
                LexErrorKind::UnterminatedComment => TextErrorKind::UnterminatedComment,
                LexErrorKind::UnterminatedString => TextErrorKind::UnterminatedString,
                LexErrorKind::InvalidUtf8 => TextErrorKind::InvalidUtf8,
            },
        }
    }
}

struct Lexer<'a> {
    src: &'a [u8],
    /// `src` as text when it is all UTF-8 (the usual case): atoms are then slices of it, with
    /// no check of their own (an atom starts and ends next to an ASCII byte or an end).
    text: Option<&'a str>,
    pos: usize,
    line: u32,
    line_start: usize,
}

pub(crate) fn tokenize(src: &[u8]) -> Result<Vec<Token<'_>>, TextError> {
    let mut lx = Lexer {
        src,
        text: std::str::from_utf8(src).ok(),
        pos: 0,
        line: 1,
        line_start: 0,
    };
    // Statements average about four tokens in some 30 bytes.
    let mut out = Vec::with_capacity(src.len() / 6 + 4);
    while let Some(t) = lx.next().map_err(TextError::from)? {
        out.push(t);
    }
    Ok(out)
}

impl<'a> Lexer<'a> {
    fn column(&self, pos: usize) -> u32 {
        u32::try_from(pos - self.line_start + 1).unwrap_or(u32::MAX)
    }

    fn error(&self, line: u32, column: u32, kind: LexErrorKind) -> LexError {
        LexError { line, column, kind }
    }

    fn peek_at(&self, offset: usize) -> Option<u8> {
        self.src.get(self.pos + offset).copied()
    }

    fn newline(&mut self) {
        self.line += 1;
        self.line_start = self.pos;
    }

    /// How many bytes from `pos` on are not `stop`.
    fn run_until(&self, pos: usize, stop: impl Fn(u8) -> bool) -> usize {
        let rest = self.src.get(pos..).unwrap_or_default();
        rest.iter().position(|&c| stop(c)).unwrap_or(rest.len())
    }

    fn next(&mut self) -> Result<Option<Token<'a>>, LexError> {
        loop {
            self.pos += self.run_until(self.pos, |c| !matches!(c, b' ' | b'\t' | b'\r' | b'\x0c'));
            let Some(c) = self.peek_at(0) else {
                return Ok(None);
            };
            let (line, column) = (self.line, self.column(self.pos));
            let token = |tok| Ok(Some(Token { tok, line, column }));
            match c {
                b'\n' => {
                    self.pos += 1;
                    self.newline();
                }
                b'/' if self.peek_at(1) == Some(b'*') => self.block_comment(line, column)?,
                b'/' if self.peek_at(1) == Some(b'/') => {
                    self.pos += self.run_until(self.pos, |c| c == b'\n');
                }
                b'{' | b'}' | b';' => {
                    self.pos += 1;
                    return token(match c {
                        b'{' => Tok::LBrace,
                        b'}' => Tok::RBrace,
                        _ => Tok::Semi,
                    });
                }
                b'"' => return token(Tok::Str(self.string(line, column)?)),
                _ => return token(Tok::Atom(self.atom(line, column)?)),
            }
        }
    }

    fn block_comment(&mut self, line: u32, column: u32) -> Result<(), LexError> {
        self.pos += 2;
        loop {
            match self.peek_at(0) {
                None => return Err(self.error(line, column, LexErrorKind::UnterminatedComment)),
                Some(b'*') if self.peek_at(1) == Some(b'/') => {
                    self.pos += 2;
                    return Ok(());
                }
                Some(b'\n') => {
                    self.pos += 1;
                    self.newline();
                }
                Some(_) => self.pos += 1,
            }
        }
    }

    /// A quoted string; `\"` is a quote and `\\` a backslash, as far as the tool goes.
    fn string(&mut self, line: u32, column: u32) -> Result<Str<'a>, LexError> {
        self.pos += 1;
        let start = self.pos;
        let mut escaped = false;
        loop {
            self.pos += self.run_until(self.pos, |c| matches!(c, b'"' | b'\\' | b'\n'));
            match self.peek_at(0) {
                None | Some(b'\n') => {
                    return Err(self.error(line, column, LexErrorKind::UnterminatedString));
                }
                Some(b'"') => {
                    let raw = &self.src[start..self.pos];
                    self.pos += 1;
                    return Ok(Str { raw, escaped });
                }
                // A backslash: an escape before `"` or `\`, else itself.
                Some(_) if matches!(self.peek_at(1), Some(b'"' | b'\\')) => {
                    escaped = true;
                    self.pos += 2;
                }
                Some(_) => self.pos += 1,
            }
        }
    }

    fn atom(&mut self, line: u32, column: u32) -> Result<&'a str, LexError> {
        let start = self.pos;
        loop {
            self.pos += self.run_until(self.pos, |c| ATOM_STOP[usize::from(c)]);
            match self.peek_at(0) {
                Some(b'/') if !matches!(self.peek_at(1), Some(b'*' | b'/')) => self.pos += 1,
                Some(quote @ (b'"' | b'\'')) => {
                    // A quoted index inside an OID: copied as is, quotes included.
                    self.pos += 1;
                    self.pos += self.run_until(self.pos, |c| c == quote || c == b'\n');
                    if self.peek_at(0) != Some(quote) {
                        return Err(self.error(line, column, LexErrorKind::UnterminatedString));
                    }
                    self.pos += 1;
                }
                // White space, a brace, `;`, a comment or the end.
                _ => break,
            }
        }
        match self.text.and_then(|t| t.get(start..self.pos)) {
            Some(atom) => Ok(atom),
            None => std::str::from_utf8(&self.src[start..self.pos])
                .map_err(|_| self.error(line, column, LexErrorKind::InvalidUtf8)),
        }
    }
}

#[cfg(test)]
// The first tests predate the borrowed tokens: they name them without their lifetime and
// make atoms with `.into()`, which is now `&str` to `&str`.
#[allow(
    elided_lifetimes_in_paths,
    mismatched_lifetime_syntaxes,
    clippy::useless_conversion
)]
mod tests {
    use super::*;

    fn atoms(src: &str) -> Vec<Tok> {
        tokenize(src.as_bytes())
            .unwrap()
            .into_iter()
            .map(|t| t.tok)
            .collect()
    }

    #[test]
    fn oid_with_quoted_index_is_one_atom() {
        let toks = atoms("SnmpMibObject vacmAccessStatus.\"ro testing\".\"\".1 Integer 4;");
        assert_eq!(
            toks[1],
            Tok::Atom("vacmAccessStatus.\"ro testing\".\"\".1".into())
        );
        assert_eq!(toks.last(), Some(&Tok::Semi));
    }

    #[test]
    fn comments_and_positions() {
        let toks = tokenize(b"Main { // x\n /* a\n b */ MaxCPE\t3;}").unwrap();
        let cpe = &toks[2];
        assert_eq!(cpe.tok, Tok::Atom("MaxCPE".into()));
        assert_eq!((cpe.line, cpe.column), (3, 7));
    }

    #[test]
    fn unterminated() {
        let e = tokenize(b"Main {\n /* open").unwrap_err();
        assert_eq!((e.line, e.kind), (2, TextErrorKind::UnterminatedComment));
        let e = tokenize(b"Main {\n X \"open\n").unwrap_err();
        assert_eq!((e.line, e.kind), (2, TextErrorKind::UnterminatedString));
    }

    #[test]
    fn strings_borrow_unless_escaped() {
        let src = r#"A "plain" "a\"b\\c\d" "\\" "é\"";"#;
        let toks = tokenize(src.as_bytes()).unwrap();
        let strs: Vec<_> = toks
            .iter()
            .filter_map(|t| match t.tok {
                Tok::Str(s) => Some(s.bytes()),
                _ => None,
            })
            .collect();
        assert!(matches!(strs[0], Cow::Borrowed(b"plain")));
        assert_eq!(&*strs[1], br#"a"b\c\d"#);
        assert_eq!(&*strs[2], br"\");
        assert_eq!(&*strs[3], "é\"".as_bytes());
        assert_eq!(strs.len(), 4);
    }

    #[test]
    fn atoms_outside_utf8_input() {
        // Latin-1 in a string makes the input not UTF-8; atoms are still checked one by one.
        let toks = tokenize(b"A \"caf\xe9\" B.'x' ;").unwrap();
        assert_eq!(toks[2].tok, Tok::Atom("B.'x'"));
        let e = tokenize(b"A \"caf\xe9\"\n B\xe9;").unwrap_err();
        assert_eq!(
            (e.line, e.column, e.kind),
            (2, 2, TextErrorKind::InvalidUtf8)
        );
    }
}
