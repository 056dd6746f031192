//! Glob patterns for option 60 (vendor class identifier) matching.
//!
//! `*` matches any run of bytes (including none), `?` matches exactly one byte, every other byte
//! matches itself (case-sensitive). There is no escape syntax: option 60 strings in cable
//! (`docsis3.0:…`, `pktc1.5:…`, `erouter1.0`) never contain `*` or `?`.
//!
//! Matching is allocation-free and runs on the DHCP hot path, so the common shapes (`*`,
//! `literal`, `prefix*`, `*suffix`) are recognised when the pattern is compiled and matched with
//! a single slice comparison; anything else falls back to the classic linear-space wildcard
//! algorithm (one backtrack point, worst case O(pattern × input)).

use std::fmt;

/// A compiled option 60 glob. See the module docs for the syntax.
#[derive(Clone, PartialEq, Eq)]
pub struct Glob {
    pattern: Box<str>,
    kind: Kind,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// Matches nothing (a class without `match`, reachable only through a reservation).
    Never,
    /// Only `*`s: matches every input, and an absent option 60.
    Any,
    /// No wildcard at all.
    Exact,
    /// `literal*`; the value is the literal length.
    Prefix(usize),
    /// `*literal`; the value is the literal length.
    Suffix(usize),
    /// Anything else.
    General,
}

impl Glob {
    /// Compiles `pattern`. Every string is a valid pattern.
    pub fn new(pattern: &str) -> Glob {
        let b = pattern.as_bytes();
        let is_wild = |c: &u8| *c == b'*' || *c == b'?';
        let kind = if !b.is_empty() && b.iter().all(|&c| c == b'*') {
            Kind::Any
        } else if !b.iter().any(is_wild) {
            Kind::Exact
        } else if let Some((&b'*', lit)) = b.split_last()
            && !lit.iter().any(is_wild)
        {
            Kind::Prefix(lit.len())
        } else if let Some((&b'*', lit)) = b.split_first()
            && !lit.iter().any(is_wild)
        {
            Kind::Suffix(lit.len())
        } else {
            Kind::General
        };
        Glob {
            pattern: pattern.into(),
            kind,
        }
    }

    /// A glob that matches nothing, not even an absent option 60.
    pub fn never() -> Glob {
        Glob {
            pattern: "".into(),
            kind: Kind::Never,
        }
    }

    /// The pattern as written in the config (empty for [`Glob::never`]).
    pub fn as_str(&self) -> &str {
        &self.pattern
    }

    /// True if this glob matches every input (the pattern is `*`, or only `*`s). Such a glob
    /// is the only kind that also matches a client that sent no option 60 at all.
    pub fn matches_everything(&self) -> bool {
        self.kind == Kind::Any
    }

    /// True for [`Glob::never`].
    pub fn is_never(&self) -> bool {
        self.kind == Kind::Never
    }

    /// Matches `s` (the raw option 60 bytes) against the pattern. Allocation-free.
    #[inline]
    pub fn matches(&self, s: &[u8]) -> bool {
        let p = self.pattern.as_bytes();
        match self.kind {
            Kind::Never => false,
            Kind::Any => true,
            Kind::Exact => p == s,
            Kind::Prefix(n) => s.starts_with(&p[..n]),
            Kind::Suffix(n) => s.ends_with(&p[p.len() - n..]),
            Kind::General => wildcard_match(p, s),
        }
    }
}

/// Iterative wildcard match with a single backtrack point: on a mismatch after a `*`, let that
/// `*` swallow one more input byte and retry. Correct for `*`/`?` patterns because a later `*`
/// can always absorb whatever an earlier one would have.
fn wildcard_match(p: &[u8], s: &[u8]) -> bool {
    let (mut pi, mut si) = (0usize, 0usize);
    // (pattern index just after the last `*`, input index that `*` currently extends to)
    let mut backtrack: Option<(usize, usize)> = None;
    while si < s.len() {
        match p.get(pi) {
            Some(b'*') => {
                pi += 1;
                backtrack = Some((pi, si));
            }
            Some(&c) if c == b'?' || c == s[si] => {
                pi += 1;
                si += 1;
            }
            _ => match backtrack {
                Some((bp, bs)) => {
                    pi = bp;
                    si = bs + 1;
                    backtrack = Some((bp, bs + 1));
                }
                None => return false,
            },
        }
    }
    p[pi.min(p.len())..].iter().all(|&c| c == b'*')
}

impl fmt::Debug for Glob {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.kind == Kind::Never {
            f.write_str("Glob(<never>)")
        } else {
            write!(f, "Glob({:?})", self.pattern)
        }
    }
}

impl fmt::Display for Glob {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.pattern)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shapes() {
        assert_eq!(Glob::new("*").kind, Kind::Any);
        assert_eq!(Glob::new("**").kind, Kind::Any);
        assert_eq!(Glob::new("docsis3.0").kind, Kind::Exact);
        assert_eq!(Glob::new("docsis*").kind, Kind::Prefix(6));
        assert_eq!(Glob::new("*:05").kind, Kind::Suffix(3));
        assert_eq!(Glob::new("pktc?.?:*").kind, Kind::General);
        assert_eq!(Glob::new("").kind, Kind::Exact);
    }

    #[test]
    fn matching() {
        let g = Glob::new("docsis*");
        assert!(g.matches(b"docsis3.0:053501"));
        assert!(g.matches(b"docsis"));
        assert!(!g.matches(b"Docsis3.0"));
        assert!(!g.matches(b"pktc1.5"));
        let g = Glob::new("pktc1.?:*");
        assert!(g.matches(b"pktc1.5:051a"));
        assert!(g.matches(b"pktc1.0:"));
        assert!(!g.matches(b"pktc1.5"));
        assert!(!g.matches(b"pktc2.0:"));
        let g = Glob::new("*a*b?");
        assert!(g.matches(b"xxaxxbz"));
        assert!(g.matches(b"abz"));
        assert!(!g.matches(b"abzz"));
        assert!(g.matches(b"abzbz"));
        assert!(Glob::new("*").matches(b""));
        assert!(Glob::new("").matches(b""));
        assert!(!Glob::new("?").matches(b""));
        assert!(!Glob::never().matches(b""));
        assert!(!Glob::never().matches(b"docsis"));
        assert!(Glob::new("*x").matches(b"x"));
        assert!(!Glob::new("*x").matches(b"xy"));
    }
}
