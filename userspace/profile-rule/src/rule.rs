//! Profile rules (spec `macros.md` §1): what a device's `Profile_Rule` / `Upgrade_Rule` value
//! says to fetch.
//!
//! ```text
//! rule  = term *( "|" term ) [ "#" comment ]
//! term  = [ condition "?" ] [ "[" qualifiers "]" ] url
//! url   = [ scheme "://" ] [ server [ ":" port ] ] "/" path      scheme: tftp (default), http, https
//! ```
//! A missing server means the DHCP option 66/150 TFTP server. Qualifiers are `--name value`
//! pairs (`--key "Secret Phrase"`), parsed generically; a value may be quoted.
//!
//! A condition is recognised by a `?` that comes before the term's first `[` and `/`, so a
//! query string in the URL (`/p?mac=$MA`) is not taken for one. Conditions are kept as text:
//! evaluating them needs the device's state, which provd does not have.

use std::fmt;

use crate::expand::expand_into;
use crate::vars::Variables;

/// Expands a whole rule as the device does: secrets (`$SA`..`$SD`) only inside the argument of
/// a `--key` qualifier, every other macro everywhere.
pub fn expand_rule(rule: &str, vars: &Variables) -> String {
    let mut out = String::with_capacity(rule.len() + 32);
    let mut rest = rule;
    while let Some(open) = rest.find('[') {
        expand_into(&rest[..=open], vars, false, &mut out);
        let inner = &rest[open + 1..];
        let close = inner.find(']').unwrap_or(inner.len());
        expand_qualifiers(&inner[..close], vars, &mut out);
        rest = &inner[close..];
    }
    expand_into(rest, vars, false, &mut out);
    out
}

fn expand_qualifiers(q: &str, vars: &Variables, out: &mut String) {
    let mut rest = q;
    while let Some(k) = find_key(rest) {
        let after = k + "--key".len();
        let ws = rest[after..].len() - rest[after..].trim_start().len();
        let arg_start = after + ws;
        let arg = &rest[arg_start..];
        let arg_len = if let Some(quoted) = arg.strip_prefix('"') {
            quoted.find('"').map_or(arg.len(), |e| e + 2)
        } else {
            arg.find(char::is_whitespace).unwrap_or(arg.len())
        };
        expand_into(&rest[..arg_start], vars, false, out);
        expand_into(&rest[arg_start..arg_start + arg_len], vars, true, out);
        rest = &rest[arg_start + arg_len..];
    }
    expand_into(rest, vars, false, out);
}

/// `--key` as a whole token.
fn find_key(s: &str) -> Option<usize> {
    let mut from = 0;
    while let Some(i) = s[from..].find("--key") {
        let at = from + i;
        let before_ok = at == 0 || s[..at].ends_with(char::is_whitespace);
        let end = at + 5;
        let after_ok = end == s.len() || s[end..].starts_with(char::is_whitespace);
        if before_ok && after_ok {
            return Some(at);
        }
        from = end;
    }
    None
}

/// A parsed profile rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProfileRule {
    pub terms: Vec<RuleTerm>,
}

/// One `[condition ?] [qualifiers] url` alternative.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleTerm {
    pub condition: Option<String>,
    pub qualifiers: Vec<Qualifier>,
    pub url: Url,
}

/// `--name [value]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Qualifier {
    pub name: String,
    pub value: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scheme {
    Tftp,
    Http,
    Https,
}

impl Scheme {
    pub fn as_str(self) -> &'static str {
        match self {
            Scheme::Tftp => "tftp",
            Scheme::Http => "http",
            Scheme::Https => "https",
        }
    }

    pub fn default_port(self) -> u16 {
        match self {
            Scheme::Tftp => 69,
            Scheme::Http => 80,
            Scheme::Https => 443,
        }
    }
}

/// A profile URL split into its parts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Url {
    pub scheme: Scheme,
    /// Whether the scheme was written (`tftp://…`) or implied.
    pub explicit_scheme: bool,
    /// `None`: the DHCP option 66/150 server.
    pub server: Option<String>,
    pub port: Option<u16>,
    /// Starts with `/`.
    pub path: String,
}

impl Url {
    pub fn effective_port(&self) -> u16 {
        self.port.unwrap_or(self.scheme.default_port())
    }
}

/// Why a profile rule was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RuleError {
    #[error("the rule is empty")]
    Empty,
    #[error("term {term} has no URL")]
    NoUrl { term: usize },
    #[error("term {term} has an empty condition before '?'")]
    EmptyCondition { term: usize },
    #[error("term {term}: '[' without ']'")]
    UnclosedBracket { term: usize },
    #[error("term {term}: a '\"' without its closing '\"'")]
    UnclosedQuote { term: usize },
    #[error("term {term}: qualifier value {value:?} follows no --name")]
    StrayValue { term: usize, value: String },
    #[error("term {term}: unknown scheme {scheme:?} (tftp, http or https)")]
    UnknownScheme { term: usize, scheme: String },
    #[error("term {term}: port {port:?} is not 1..=65535")]
    BadPort { term: usize, port: String },
    #[error("term {term}: the URL {url:?} contains white space")]
    SpaceInUrl { term: usize, url: String },
    #[error("term {term}: the URL {url:?} has no path (it must contain '/')")]
    NoPath { term: usize, url: String },
    #[error("term {term}: the URL {url:?} contains {found:?}, which the rule grammar uses")]
    BadUrlChar {
        term: usize,
        url: String,
        found: char,
    },
}

impl ProfileRule {
    /// Parses a rule (expanded or not: macros are ordinary characters here).
    pub fn parse(text: &str) -> Result<ProfileRule, RuleError> {
        let text = strip_comment(text);
        if text.trim().is_empty() {
            return Err(RuleError::Empty);
        }
        let terms = split_terms(text)
            .into_iter()
            .enumerate()
            .map(|(i, t)| parse_term(i, t))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(ProfileRule { terms })
    }

    /// The first unconditional term, which is what a device with no matching condition uses
    /// and what provd predicts.
    pub fn default_term(&self) -> Option<&RuleTerm> {
        self.terms.iter().find(|t| t.condition.is_none())
    }
}

impl RuleTerm {
    /// The `--key` pass-phrase, if any.
    pub fn key(&self) -> Option<&str> {
        self.qualifiers
            .iter()
            .find(|q| q.name == "key")
            .and_then(|q| q.value.as_deref())
    }
}

/// Cuts at the first `#` outside quotes.
fn strip_comment(s: &str) -> &str {
    let mut quoted = false;
    for (i, c) in s.char_indices() {
        match c {
            '"' => quoted = !quoted,
            '#' if !quoted => return &s[..i],
            _ => {}
        }
    }
    s
}

/// Splits on `|` outside brackets and quotes.
fn split_terms(s: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let (mut quoted, mut depth, mut start) = (false, 0u32, 0);
    for (i, c) in s.char_indices() {
        match c {
            '"' => quoted = !quoted,
            '[' if !quoted => depth += 1,
            ']' if !quoted => depth = depth.saturating_sub(1),
            '|' if !quoted && depth == 0 => {
                out.push(&s[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    out.push(&s[start..]);
    out
}

fn parse_term(term: usize, t: &str) -> Result<RuleTerm, RuleError> {
    let mut rest = t.trim();
    let mut condition = None;
    if let Some(q) = rest.find('?') {
        let first_bracket = rest.find('[').unwrap_or(usize::MAX);
        let first_slash = rest.find('/').unwrap_or(usize::MAX);
        if q < first_bracket && q < first_slash {
            let c = rest[..q].trim();
            if c.is_empty() {
                return Err(RuleError::EmptyCondition { term });
            }
            condition = Some(c.to_string());
            rest = rest[q + 1..].trim_start();
        }
    }
    let mut qualifiers = Vec::new();
    if let Some(inner) = rest.strip_prefix('[') {
        let close = find_close(inner).ok_or(RuleError::UnclosedBracket { term })?;
        qualifiers = parse_qualifiers(term, &inner[..close])?;
        rest = inner[close + 1..].trim_start();
    }
    if rest.is_empty() {
        return Err(RuleError::NoUrl { term });
    }
    Ok(RuleTerm {
        condition,
        qualifiers,
        url: parse_url(term, rest)?,
    })
}

fn find_close(s: &str) -> Option<usize> {
    let mut quoted = false;
    for (i, c) in s.char_indices() {
        match c {
            '"' => quoted = !quoted,
            ']' if !quoted => return Some(i),
            _ => {}
        }
    }
    None
}

fn parse_qualifiers(term: usize, s: &str) -> Result<Vec<Qualifier>, RuleError> {
    let mut tokens = Vec::new();
    let mut rest = s.trim_start();
    while !rest.is_empty() {
        if let Some(q) = rest.strip_prefix('"') {
            let end = q.find('"').ok_or(RuleError::UnclosedQuote { term })?;
            tokens.push((q[..end].to_string(), true));
            rest = q[end + 1..].trim_start();
        } else {
            let end = rest.find(char::is_whitespace).unwrap_or(rest.len());
            if rest[..end].contains('"') {
                return Err(RuleError::UnclosedQuote { term });
            }
            tokens.push((rest[..end].to_string(), false));
            rest = rest[end..].trim_start();
        }
    }
    let mut out: Vec<Qualifier> = Vec::new();
    for (tok, quoted) in tokens {
        match tok.strip_prefix("--") {
            Some(name) if !quoted && !name.is_empty() => out.push(Qualifier {
                name: name.to_string(),
                value: None,
            }),
            _ => match out.last_mut() {
                Some(q) if q.value.is_none() => q.value = Some(tok),
                _ => return Err(RuleError::StrayValue { term, value: tok }),
            },
        }
    }
    Ok(out)
}

fn parse_url(term: usize, s: &str) -> Result<Url, RuleError> {
    if s.contains(char::is_whitespace) {
        return Err(RuleError::SpaceInUrl {
            term,
            url: s.to_string(),
        });
    }
    // Brackets, bars and quotes delimit qualifiers and terms; control characters have no
    // business in a URL. (So no bracketed IPv6 hosts: the devices this grammar is for have
    // none either.)
    if let Some(found) = s
        .chars()
        .find(|c| matches!(c, '[' | ']' | '|' | '"') || c.is_control())
    {
        return Err(RuleError::BadUrlChar {
            term,
            url: s.to_string(),
            found,
        });
    }
    let (scheme, explicit_scheme, rest) = match s.find("://") {
        Some(i) => {
            let scheme = match s[..i].to_ascii_lowercase().as_str() {
                "tftp" => Scheme::Tftp,
                "http" => Scheme::Http,
                "https" => Scheme::Https,
                _ => {
                    return Err(RuleError::UnknownScheme {
                        term,
                        scheme: s[..i].to_string(),
                    });
                }
            };
            (scheme, true, &s[i + 3..])
        }
        None => (Scheme::Tftp, false, s),
    };
    let slash = rest.find('/').ok_or_else(|| RuleError::NoPath {
        term,
        url: s.to_string(),
    })?;
    let authority = &rest[..slash];
    // A '?' before the path would read back as a condition's end (`host?/p`): no host name
    // holds one, so it is refused here rather than printed as a different rule.
    if authority.contains('?') {
        return Err(RuleError::BadUrlChar {
            term,
            url: s.to_string(),
            found: '?',
        });
    }
    let path = rest[slash..].to_string();
    let (server, port) = match authority.rsplit_once(':') {
        _ if authority.is_empty() => (None, None),
        Some((host, port)) => {
            let p: u16 =
                port.parse()
                    .ok()
                    .filter(|&p| p != 0)
                    .ok_or_else(|| RuleError::BadPort {
                        term,
                        port: port.to_string(),
                    })?;
            ((!host.is_empty()).then(|| host.to_string()), Some(p))
        }
        None => (Some(authority.to_string()), None),
    };
    Ok(Url {
        scheme,
        explicit_scheme,
        server,
        port,
        path,
    })
}

impl fmt::Display for Url {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.explicit_scheme {
            write!(f, "{}://", self.scheme.as_str())?;
        }
        if let Some(s) = &self.server {
            f.write_str(s)?;
        }
        if let Some(p) = self.port {
            write!(f, ":{p}")?;
        }
        f.write_str(&self.path)
    }
}

impl fmt::Display for RuleTerm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(c) = &self.condition {
            write!(f, "{c} ? ")?;
        }
        if !self.qualifiers.is_empty() {
            f.write_str("[")?;
            for (i, q) in self.qualifiers.iter().enumerate() {
                if i > 0 {
                    f.write_str(" ")?;
                }
                write!(f, "--{}", q.name)?;
                if let Some(v) = &q.value {
                    // Quoted when it would not read back otherwise. (A value never holds
                    // '"': the grammar has no escape for it.)
                    let plain_ok = !v.is_empty()
                        && !v.starts_with("--")
                        && !v.chars().any(|c| {
                            c.is_whitespace()
                                || c.is_control()
                                || matches!(c, '[' | ']' | '|' | '#')
                        });
                    if !plain_ok {
                        write!(f, " \"{v}\"")?;
                    } else {
                        write!(f, " {v}")?;
                    }
                }
            }
            f.write_str("] ")?;
        }
        write!(f, "{}", self.url)
    }
}

impl fmt::Display for ProfileRule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, t) in self.terms.iter().enumerate() {
            if i > 0 {
                f.write_str(" | ")?;
            }
            write!(f, "{t}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn simple_and_default_scheme() {
        let r = ProfileRule::parse("/spa$PSN.cfg").unwrap();
        let t = &r.terms[0];
        assert_eq!(t.url.scheme, Scheme::Tftp);
        assert_eq!(t.url.server, None);
        assert_eq!(t.url.path, "/spa$PSN.cfg");
        assert_eq!(t.url.effective_port(), 69);

        let r = ProfileRule::parse("http://prov.example.net:8080/p/$MA.cfg # comment").unwrap();
        let t = &r.terms[0];
        assert_eq!(t.url.scheme, Scheme::Http);
        assert_eq!(t.url.server.as_deref(), Some("prov.example.net"));
        assert_eq!(t.url.port, Some(8080));
        assert_eq!(t.url.path, "/p/$MA.cfg");
    }

    #[test]
    fn key_and_conditions() {
        let r = ProfileRule::parse(
            "( $SWVER ne 2.0 )? [--key \"Secret Phrase\" --uid u1] https://p.example/$MA.cfg | [--key k] tftp://10.0.0.1/x.cfg",
        )
        .unwrap();
        assert_eq!(r.terms.len(), 2);
        assert_eq!(r.terms[0].condition.as_deref(), Some("( $SWVER ne 2.0 )"));
        assert_eq!(r.terms[0].key(), Some("Secret Phrase"));
        assert_eq!(r.terms[0].qualifiers[1].value.as_deref(), Some("u1"));
        assert_eq!(r.terms[0].url.scheme, Scheme::Https);
        assert_eq!(r.default_term().unwrap().key(), Some("k"));
        assert_eq!(r.terms[1].url.server.as_deref(), Some("10.0.0.1"));
    }

    #[test]
    fn query_is_not_a_condition() {
        let r = ProfileRule::parse("http://h/p?mac=$MA").unwrap();
        assert!(r.terms[0].condition.is_none());
        assert_eq!(r.terms[0].url.path, "/p?mac=$MA");
    }

    #[test]
    fn errors() {
        assert_eq!(ProfileRule::parse(" # x"), Err(RuleError::Empty));
        assert!(matches!(
            ProfileRule::parse("[--key x"),
            Err(RuleError::UnclosedBracket { .. })
        ));
        assert!(matches!(
            ProfileRule::parse("[--key \"x] /a"),
            Err(RuleError::UnclosedBracket { .. } | RuleError::UnclosedQuote { .. })
        ));
        assert!(matches!(
            ProfileRule::parse("gopher://h/a"),
            Err(RuleError::UnknownScheme { .. })
        ));
        assert!(matches!(
            ProfileRule::parse("http://h:99999/a"),
            Err(RuleError::BadPort { .. })
        ));
        assert!(matches!(
            ProfileRule::parse("[x] /a"),
            Err(RuleError::StrayValue { .. })
        ));
        assert!(matches!(
            ProfileRule::parse("http://h"),
            Err(RuleError::NoPath { .. })
        ));
        assert!(matches!(
            ProfileRule::parse("/a | "),
            Err(RuleError::NoUrl { term: 1 })
        ));
        assert!(matches!(
            ProfileRule::parse(" ? /a"),
            Err(RuleError::EmptyCondition { term: 0 })
        ));
        // Found by fuzzing: an empty qualifier list before a URL starting with '['.
        assert!(matches!(
            ProfileRule::parse("[][|-//\0"),
            Err(RuleError::BadUrlChar { found: '[', .. })
        ));
        assert!(matches!(
            ProfileRule::parse("/a\u{1}b"),
            Err(RuleError::BadUrlChar { .. })
        ));
        // Found by fuzzing (CI): `[]` hid a '?' in the host, which printed back as a
        // condition.
        assert!(matches!(
            ProfileRule::parse("[] kt--hp??/fA7.nc"),
            Err(RuleError::BadUrlChar { found: '?', .. })
        ));
        assert!(matches!(
            ProfileRule::parse("http://h?x/a"),
            Err(RuleError::BadUrlChar { found: '?', .. })
        ));
        // Found by fuzzing: a quoted value holding ']' must print quoted.
        let r = ProfileRule::parse("[--key \"Q]\0\"] /x").unwrap();
        assert_eq!(r.terms[0].key(), Some("Q]\0"));
        assert_eq!(ProfileRule::parse(&r.to_string()), Ok(r));
    }

    #[test]
    fn key_secret_only_inside_key() {
        let mut v = Variables::new([0; 6]);
        v.set_secret('A', "s3cret");
        v.set_secret('B', "other");
        assert_eq!(
            expand_rule("[--uid $SB --key $SA] /$SA", &v),
            "[--uid $SB --key s3cret] /$SA"
        );
        assert_eq!(
            expand_rule("[--key \"$SA and $SB\"] /x", &v),
            "[--key \"s3cret and other\"] /x"
        );
        assert_eq!(expand_rule("[--keys $SA] /x", &v), "[--keys $SA] /x");
        assert_eq!(expand_rule("[--key", &v), "[--key");
    }

    fn term() -> impl Strategy<Value = RuleTerm> {
        (
            proptest::option::of("\\( [a-z$ ]{1,8} \\)"),
            proptest::collection::vec(
                ("[a-z]{1,5}", proptest::option::of("[A-Za-z0-9$ ]{0,8}")),
                0..3,
            ),
            (
                0usize..3,
                proptest::option::of("[a-z0-9.]{1,10}"),
                proptest::option::of(1u16..),
            ),
            "/[A-Za-z0-9$/._()-]{0,20}",
        )
            .prop_map(
                |(condition, quals, (scheme, server, port), path)| RuleTerm {
                    condition,
                    qualifiers: quals
                        .into_iter()
                        .map(|(name, value)| Qualifier { name, value })
                        .collect(),
                    url: Url {
                        scheme: [Scheme::Tftp, Scheme::Http, Scheme::Https][scheme],
                        explicit_scheme: true,
                        server,
                        port,
                        path,
                    },
                },
            )
    }

    proptest! {
        #[test]
        fn parse_never_panics(s in ".{0,100}") {
            let _ = ProfileRule::parse(&s);
        }

        #[test]
        fn display_parse_round_trip(terms in proptest::collection::vec(term(), 1..4)) {
            let rule = ProfileRule { terms };
            let text = rule.to_string();
            prop_assert_eq!(ProfileRule::parse(&text), Ok(rule), "{}", text);
        }
    }
}
