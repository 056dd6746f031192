//! The macro expander and the profile-rule parser on arbitrary text.
//!
//! Checked: no panic; text without `$` comes back unchanged; escaping any text and expanding
//! it gives the text back; a value holding macros comes out verbatim (one level only); the
//! rule expander differs from the plain one only inside `[...]`; a rule that parses prints in a
//! form that parses to the same rule.

#![no_main]

use libfuzzer_sys::fuzz_target;
use provd_profile_rule::{ProfileRule, Variables, escape, expand, expand_rule, expand_with_secrets};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let mut v = Variables::new([0x00, 0x15, 0xcf, 0x12, 0x34, 0x56]);
    v.pn = Some("SPA2102".into());
    v.swver = Some("5.2.5".into());
    v.set_gpp('A', text);
    v.set_secret('A', "s3cret");

    let plain = expand(text, &v);
    let _ = expand_with_secrets(text, &v);
    let rule = expand_rule(text, &v);
    if !text.contains('$') {
        assert_eq!(plain, text);
    }
    if !text.contains('[') {
        assert_eq!(rule, plain);
    }
    assert_eq!(expand(&escape(text), &v), text);
    assert_eq!(expand("$(A)", &v), text, "one level only");

    if let Ok(parsed) = ProfileRule::parse(text) {
        assert!(!parsed.terms.is_empty());
        let printed = parsed.to_string();
        let again = ProfileRule::parse(&printed)
            .unwrap_or_else(|e| panic!("{printed:?} (from {text:?}) does not parse: {e}"));
        assert_eq!(again, parsed, "{printed:?}");
    }
});
