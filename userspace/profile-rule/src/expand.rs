//! The expander (spec `macros.md` §2).
//!
//! * `$NAME`: the longest name with a value that prefixes the following word
//!   (letters, digits, `_`); the rest of the word is literal text (`$MAUx` = MAU + `x`).
//! * `$(NAME)`, `$(NAME:p)`, `$(NAME:p:q)`: the value, or its characters from `p` on, or `q` of
//!   them from `p`; an offset past the end gives the empty string, a length past the end is
//!   clipped.
//! * `$$` is one `$`.
//! * An unknown name, a name with no value, a secret (`SA`..`SD`) outside a `--key` argument,
//!   and every malformed form (`$` at the end, `$(` without `)`, a non-numeric `p`) are copied
//!   as typed.
//! * One level only: substituted values are not scanned again.
//!
//! Works on bytes (every syntactic character is ASCII) and never splits a UTF-8 sequence, so
//! any `&str` in gives a valid `String` out.

use crate::vars::{Variables, is_secret, longest_prefix};

/// Expands `input` as a device would outside a `--key` argument: secrets stay as typed.
pub fn expand(input: &str, vars: &Variables) -> String {
    let mut out = String::with_capacity(input.len() + 16);
    expand_into(input, vars, false, &mut out);
    out
}

/// Expands `input` with the secrets `SA`..`SD` too: for the argument of `--key`.
pub fn expand_with_secrets(input: &str, vars: &Variables) -> String {
    let mut out = String::with_capacity(input.len() + 16);
    expand_into(input, vars, true, &mut out);
    out
}

/// The text that expands to `literal`: every `$` doubled.
pub fn escape(literal: &str) -> String {
    literal.replace('$', "$$")
}

pub(crate) fn expand_into(input: &str, vars: &Variables, secrets: bool, out: &mut String) {
    let bytes = input.as_bytes();
    let mut i = 0;
    let mut lit = 0;
    while let Some(off) = bytes[i..].iter().position(|&b| b == b'$') {
        let dollar = i + off;
        out.push_str(&input[lit..dollar]);
        match one(input, dollar, vars, secrets, out) {
            Some(end) => i = end,
            None => {
                out.push('$');
                i = dollar + 1;
            }
        }
        lit = i;
    }
    out.push_str(&input[lit..]);
}

fn is_name_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_'
}

/// One macro at `input[dollar] == '$'`: pushes its expansion and returns the index after it,
/// or `None` when it is to be copied literally (the caller pushes the `$` and goes on).
fn one(
    input: &str,
    dollar: usize,
    vars: &Variables,
    secrets: bool,
    out: &mut String,
) -> Option<usize> {
    let bytes = input.as_bytes();
    let start = dollar + 1;
    match *bytes.get(start)? {
        b'$' => {
            out.push('$');
            Some(start + 1)
        }
        b'(' => {
            let name_start = start + 1;
            let name_end = scan(bytes, name_start, is_name_byte);
            let name = &input[name_start..name_end];
            let value = lookup(name, vars, secrets)?;
            let mut j = name_end;
            let mut from = 0usize;
            let mut len = usize::MAX;
            for slot in [&mut from, &mut len] {
                if bytes.get(j) != Some(&b':') {
                    break;
                }
                let digits_end = scan(bytes, j + 1, |b| b.is_ascii_digit());
                if digits_end == j + 1 {
                    return None;
                }
                // All ASCII digits: parse fails only on overflow, which means "past any end".
                *slot = input[j + 1..digits_end].parse().unwrap_or(usize::MAX);
                j = digits_end;
            }
            if bytes.get(j) != Some(&b')') {
                return None;
            }
            out.extend(value.chars().skip(from).take(len));
            Some(j + 1)
        }
        b if is_name_byte(b) => {
            let word_end = scan(bytes, start, is_name_byte);
            let name = longest_prefix(&input[start..word_end], secrets, vars)?;
            out.push_str(&vars.value(name)?);
            Some(start + name.len())
        }
        _ => None,
    }
}

fn lookup<'v>(name: &str, vars: &'v Variables, secrets: bool) -> Option<std::borrow::Cow<'v, str>> {
    if !secrets && is_secret(name) {
        return None;
    }
    vars.value(name)
}

fn scan(bytes: &[u8], from: usize, pred: impl Fn(u8) -> bool) -> usize {
    from + bytes[from.min(bytes.len())..]
        .iter()
        .take_while(|&&b| pred(b))
        .count()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rule::expand_rule;
    use proptest::prelude::*;

    /// The variables of spec §5.
    fn spec_vars() -> Variables {
        let mut v = Variables::new([0x00, 0x15, 0xcf, 0x12, 0x34, 0x56]);
        v.pn = Some("EMTA1".into());
        v.psn = Some("1".into());
        v.sn = Some("SN0015CF123456".into());
        v.ip = Some([10, 1, 0, 58].into());
        v.swver = Some("2.1.0".into());
        v.hwver = Some("1.0".into());
        v.set_gpp('A', "$MA");
        v.set_gpp('B', "prov.example.net");
        v.set_secret('A', "SecretPhrase1234");
        v
    }

    /// All 17 vectors of spec §5, through the profile-rule expander (which is what a device
    /// applies to a whole `Profile_Rule` value: secrets only inside `--key`).
    #[test]
    fn spec_vectors() {
        let v = spec_vars();
        let cases: [(&str, &str); 17] = [
            (
                "http://prov.example.net/$MA.cfg",
                "http://prov.example.net/0015cf123456.cfg",
            ),
            (
                "http://prov.example.net/$(MAU).xml",
                "http://prov.example.net/0015CF123456.xml",
            ),
            ("/cfg/$(MA:6).cfg", "/cfg/123456.cfg"),
            ("/cfg/$(MA:0:6)/$(MA:6:6).cfg", "/cfg/0015cf/123456.cfg"),
            ("/cfg/$(MAU:20).cfg", "/cfg/.cfg"),
            ("/cfg/$(MA:10:10).cfg", "/cfg/56.cfg"),
            ("cost $$5 for $PN", "cost $5 for EMTA1"),
            ("/cfg/$FOO/$(BAR).cfg", "/cfg/$FOO/$(BAR).cfg"),
            ("/cfg/$MAUx.cfg", "/cfg/0015CF123456x.cfg"),
            ("/cfg/$(MA)x.cfg", "/cfg/0015cf123456x.cfg"),
            ("/cfg/$(A).cfg", "/cfg/$MA.cfg"),
            ("/cfg/file$", "/cfg/file$"),
            ("/cfg/$(MA.cfg", "/cfg/$(MA.cfg"),
            ("$(MA:x).cfg", "$(MA:x).cfg"),
            (
                "[--key $SA] http://$B/p/$MA.cfg.enc",
                "[--key SecretPhrase1234] http://prov.example.net/p/0015cf123456.cfg.enc",
            ),
            ("$SWVER-$HWVER@$IP", "2.1.0-1.0@10.1.0.58"),
            (
                "http://$B/$SA/$MA.cfg",
                "http://prov.example.net/$SA/0015cf123456.cfg",
            ),
        ];
        for (n, (input, want)) in cases.iter().enumerate() {
            assert_eq!(expand_rule(input, &v), *want, "vector {}", n + 1);
        }
        // The plain expander agrees on every vector but 15 (which needs the --key context).
        for (n, (input, want)) in cases.iter().enumerate() {
            if n != 14 {
                assert_eq!(expand(input, &v), *want, "vector {} (plain)", n + 1);
            }
        }
        assert_eq!(
            expand(cases[14].0, &v),
            "[--key $SA] http://prov.example.net/p/0015cf123456.cfg.enc"
        );
    }

    #[test]
    fn edges() {
        let v = spec_vars();
        assert_eq!(expand("", &v), "");
        assert_eq!(expand("$", &v), "$");
        assert_eq!(expand("$$", &v), "$");
        assert_eq!(expand("$$$", &v), "$$");
        assert_eq!(expand("$(", &v), "$(");
        assert_eq!(expand("$()", &v), "$()");
        assert_eq!(expand("$(MA:)", &v), "$(MA:)");
        assert_eq!(expand("$(MA:1:)", &v), "$(MA:1:)");
        assert_eq!(expand("$(MA:1:2:3)", &v), "$(MA:1:2:3)");
        assert_eq!(expand("$(MA:99999999999999999999999)", &v), "");
        assert_eq!(
            expand("$(MA:0:99999999999999999999999)", &v),
            "0015cf123456"
        );
        assert_eq!(expand("$MAC/$PSN", &v), "00:15:cf:12:34:56/1");
        assert_eq!(expand("$SA", &v), "$SA");
        assert_eq!(
            expand_with_secrets("$SA$(SA:0:6)", &v),
            "SecretPhrase1234Secret"
        );
        assert_eq!(expand("é$MAé", &v), "é0015cf123456é");
        assert_eq!(expand("$é", &v), "$é");
        assert_eq!(expand("$5", &v), "$5");
        assert_eq!(expand("$ma", &v), "$ma");
    }

    fn any_vars() -> impl Strategy<Value = Variables> {
        (
            any::<[u8; 6]>(),
            proptest::option::of(".{0,12}"),
            proptest::collection::vec(proptest::option::of(".{0,12}"), 16),
        )
            .prop_map(|(mac, pn, gpp)| {
                let mut v = Variables::new(mac);
                v.pn = pn;
                for (i, g) in gpp.into_iter().enumerate() {
                    v.gpp[i] = g;
                }
                v
            })
    }

    proptest! {
        #[test]
        fn never_panics(s in ".{0,80}", v in any_vars()) {
            let _ = expand(&s, &v);
            let _ = expand_with_secrets(&s, &v);
            let _ = expand_rule(&s, &v);
        }

        #[test]
        fn macro_soup_never_panics(s in "[$():0-9A-Za-z_ .\\[\\]-]{0,60}", v in any_vars()) {
            let _ = expand(&s, &v);
            let _ = expand_rule(&s, &v);
        }

        #[test]
        fn escape_round_trip(s in ".{0,80}", v in any_vars()) {
            prop_assert_eq!(expand(&escape(&s), &v), s);
        }

        #[test]
        fn text_without_dollar_unchanged(s in "[^$]{0,80}", v in any_vars()) {
            prop_assert_eq!(expand(&s, &v), s);
        }

        /// One level only: whatever a GPP holds comes out verbatim, `$` and all.
        #[test]
        fn one_level(value in ".{0,40}", v in any_vars()) {
            let mut v = v;
            v.set_gpp('A', value.clone());
            prop_assert_eq!(expand("<$(A)>", &v), format!("<{value}>"));
        }

        /// Substrings agree with a char-based reference.
        #[test]
        fn substrings(p in 0usize..20, q in 0usize..20, v in any_vars()) {
            let ma = v.value("MA").unwrap().into_owned();
            let want: String = ma.chars().skip(p).take(q).collect();
            prop_assert_eq!(expand(&format!("$(MA:{p}:{q})"), &v), want);
        }
    }
}
