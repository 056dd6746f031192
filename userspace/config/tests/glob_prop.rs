//! Glob matching agrees with a plain recursive reference implementation.

use proptest::prelude::*;
use provd_config::Glob;

/// The definition: `*` matches any run, `?` one byte, anything else itself.
fn reference(p: &[u8], s: &[u8]) -> bool {
    match p.split_first() {
        None => s.is_empty(),
        Some((b'*', rest)) => (0..=s.len()).any(|i| reference(rest, &s[i..])),
        Some((b'?', rest)) => !s.is_empty() && reference(rest, &s[1..]),
        Some((c, rest)) => s.first() == Some(c) && reference(rest, &s[1..]),
    }
}

/// Small alphabets so that matches actually happen.
fn pattern() -> impl Strategy<Value = String> {
    prop::collection::vec(
        prop_oneof![Just('*'), Just('?'), Just('a'), Just('b'), Just('.')],
        0..10,
    )
    .prop_map(|v| v.into_iter().collect())
}

fn input() -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(
        prop_oneof![Just(b'a'), Just(b'b'), Just(b'.'), Just(b'*')],
        0..14,
    )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(4096))]

    #[test]
    fn agrees_with_reference(p in pattern(), s in input()) {
        prop_assert_eq!(Glob::new(&p).matches(&s), reference(p.as_bytes(), &s), "pattern {:?} input {:?}", p, String::from_utf8_lossy(&s));
    }

    /// A pattern matches itself with wildcards replaced by themselves... and a literal pattern
    /// matches exactly itself.
    #[test]
    fn literal_matches_itself(s in "[a-z0-9.:]{0,20}", t in "[a-z0-9.:]{0,20}") {
        let g = Glob::new(&s);
        prop_assert!(g.matches(s.as_bytes()));
        prop_assert_eq!(g.matches(t.as_bytes()), s == t);
    }

    #[test]
    fn prefix_and_suffix(lit in "[a-z.]{0,8}", s in "[a-z.]{0,12}") {
        prop_assert_eq!(Glob::new(&format!("{lit}*")).matches(s.as_bytes()), s.starts_with(&lit));
        prop_assert_eq!(Glob::new(&format!("*{lit}")).matches(s.as_bytes()), s.ends_with(&lit));
    }
}
