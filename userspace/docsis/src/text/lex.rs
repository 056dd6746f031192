//! Tokens of the docsis tool's text syntax.
//!
//! Only braces, `;` and quoted strings are structural; everything else is a word ("atom") up to
//! white space, a brace, `;` or a comment, and its meaning (number, address, OID, hex...) is
//! decided by the setting it belongs to. An atom may hold quoted parts, for OID indexes such
//! as `vacmAccessStatus."ro"."".1.noAuthNoPriv`. Comments are `/* ... */` and `// ...`.
//! Input is bytes: old config files carry Latin-1 in strings.

use super::{TextError, TextErrorKind};

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Tok {
    LBrace,
    RBrace,
    Semi,
    /// A `"..."` string, escapes applied.
    Str(Vec<u8>),
    Atom(String),
}

#[derive(Debug, Clone)]
pub(crate) struct Token {
    pub tok: Tok,
    pub line: u32,
    pub column: u32,
}

impl Token {
    /// How the token is named in an error message.
    pub fn describe(&self) -> String {
        match &self.tok {
            Tok::LBrace => "`{`".to_string(),
            Tok::RBrace => "`}`".to_string(),
            Tok::Semi => "`;`".to_string(),
            Tok::Str(s) => format!("string \"{}\"", String::from_utf8_lossy(s)),
            Tok::Atom(a) => format!("`{a}`"),
        }
    }
}

struct Lexer<'a> {
    src: &'a [u8],
    pos: usize,
    line: u32,
    line_start: usize,
}

pub(crate) fn tokenize(src: &[u8]) -> Result<Vec<Token>, TextError> {
    let mut lx = Lexer {
        src,
        pos: 0,
        line: 1,
        line_start: 0,
    };
    let mut out = Vec::new();
    while let Some(t) = lx.next()? {
        out.push(t);
    }
    Ok(out)
}

impl Lexer<'_> {
    fn column(&self, pos: usize) -> u32 {
        u32::try_from(pos - self.line_start + 1).unwrap_or(u32::MAX)
    }

    fn error(&self, line: u32, column: u32, kind: TextErrorKind) -> TextError {
        TextError { line, column, kind }
    }

    fn peek_at(&self, offset: usize) -> Option<u8> {
        self.src.get(self.pos + offset).copied()
    }

    fn newline(&mut self) {
        self.line += 1;
        self.line_start = self.pos;
    }

    fn next(&mut self) -> Result<Option<Token>, TextError> {
        loop {
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
                b' ' | b'\t' | b'\r' | b'\x0c' => self.pos += 1,
                b'/' if self.peek_at(1) == Some(b'*') => self.block_comment(line, column)?,
                b'/' if self.peek_at(1) == Some(b'/') => {
                    while self.peek_at(0).is_some_and(|c| c != b'\n') {
                        self.pos += 1;
                    }
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

    fn block_comment(&mut self, line: u32, column: u32) -> Result<(), TextError> {
        self.pos += 2;
        loop {
            match self.peek_at(0) {
                None => return Err(self.error(line, column, TextErrorKind::UnterminatedComment)),
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
    fn string(&mut self, line: u32, column: u32) -> Result<Vec<u8>, TextError> {
        self.pos += 1;
        let mut out = Vec::new();
        loop {
            match self.peek_at(0) {
                None | Some(b'\n') => {
                    return Err(self.error(line, column, TextErrorKind::UnterminatedString));
                }
                Some(b'"') => {
                    self.pos += 1;
                    return Ok(out);
                }
                Some(b'\\') if matches!(self.peek_at(1), Some(b'"' | b'\\')) => {
                    out.extend(self.peek_at(1));
                    self.pos += 2;
                }
                Some(c) => {
                    out.push(c);
                    self.pos += 1;
                }
            }
        }
    }

    fn atom(&mut self, line: u32, column: u32) -> Result<String, TextError> {
        let start = self.pos;
        while let Some(c) = self.peek_at(0) {
            match c {
                b' ' | b'\t' | b'\r' | b'\n' | b'\x0c' | b'{' | b'}' | b';' => break,
                b'/' if matches!(self.peek_at(1), Some(b'*' | b'/')) => break,
                b'"' | b'\'' => {
                    // A quoted index inside an OID: copied as is, quotes included.
                    let quote = c;
                    self.pos += 1;
                    loop {
                        match self.peek_at(0) {
                            None | Some(b'\n') => {
                                return Err(self.error(
                                    line,
                                    column,
                                    TextErrorKind::UnterminatedString,
                                ));
                            }
                            Some(q) if q == quote => {
                                self.pos += 1;
                                break;
                            }
                            Some(_) => self.pos += 1,
                        }
                    }
                }
                _ => self.pos += 1,
            }
        }
        String::from_utf8(self.src[start..self.pos].to_vec())
            .map_err(|_| self.error(line, column, TextErrorKind::InvalidUtf8))
    }
}

#[cfg(test)]
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
}
