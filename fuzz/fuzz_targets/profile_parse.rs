//! The profile parsers (key=value and `<flat-profile>` XML), the version setter and the
//! `Salted__` decryptor on arbitrary bytes.
//!
//! Checked: no panic; a profile that parses takes a version and then carries exactly that
//! version and the same other parameters; decrypting garbage is an error or some bytes, and
//! encrypting then decrypting gives the input back.

#![no_main]

use libfuzzer_sys::fuzz_target;
use provd_profiles::{crypto, kvp, xml};

fuzz_target!(|data: &[u8]| {
    if let Ok(params) = kvp::parse(data) {
        let names: Vec<(String, String)> = params
            .iter()
            .filter(|p| p.name != "DBID_DBASE_VERSION")
            .map(|p| (p.name.to_string(), p.value.to_string()))
            .collect();
        let out = kvp::set_version(data, "DBID_DBASE_VERSION", 42).expect("parsed, so settable");
        assert_eq!(kvp::version(&out, "DBID_DBASE_VERSION"), Some(42));
        let after: Vec<(String, String)> = kvp::parse(&out)
            .expect("still parses")
            .iter()
            .filter(|p| p.name != "DBID_DBASE_VERSION")
            .map(|p| (p.name.to_string(), p.value.to_string()))
            .collect();
        assert_eq!(after, names);
    }
    if let Ok(params) = xml::parse(data) {
        let out = xml::set_version(data, "Profile_Version", 42).expect("parsed, so settable");
        let again = xml::parse(&out).expect("the rewritten profile parses");
        assert_eq!(xml::version(&out, "Profile_Version"), Some(42));
        let strip = |ps: Vec<xml::Param>| -> Vec<xml::Param> {
            ps.into_iter().filter(|p| p.name != "Profile_Version").collect()
        };
        assert_eq!(strip(again), strip(params));
    }
    let _ = crypto::decrypt(data, b"SecretPhrase1234");
    let mut salted = b"Salted__".to_vec();
    salted.extend_from_slice(data);
    let _ = crypto::decrypt(&salted, b"k");
    let enc = crypto::encrypt(data, b"k", [7; 8]);
    assert_eq!(crypto::decrypt(&enc, b"k").as_deref(), Ok(data));
});
