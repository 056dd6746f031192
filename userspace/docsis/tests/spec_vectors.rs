//! The worked vectors of docsis-config.md, byte for byte.

mod common;

use common::read;
use provd_docsis::{
    Check, FileKind, HashAlg, HashOid, MtaHash, decode, encode_cm, encode_mta, mta_file_hash, text,
    verify,
};

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

const BASIC_SOURCE: &str = "Main { NetworkAccess 1; MaxCPE 3; ClassOfService { ClassID 1; \
                            MaxRateDown 20000000; MaxRateUp 10000000; PrivacyEnable 0; } }";

#[test]
fn docsis10_basic_64_bytes() {
    let file = text::parse(BASIC_SOURCE).unwrap();
    assert_eq!(file.kind, FileKind::Cm);
    let bytes = encode_cm(&file, b"DOCSIS").unwrap();
    assert_eq!(
        hex(&bytes),
        concat!(
            "030101",
            "120103",
            "0412010101020401312d000304009896800701 00",
            "0610817865a1f6e47e81a7364ff607a24648",
            "0710f90e368f5d979a2d5093bbaba37f1497",
            "ff00"
        )
        .replace(' ', "")
    );
    assert_eq!(bytes.len(), 64);
    assert_eq!(bytes, read("built/docsis1.0_basic.cm"));
    assert_eq!(bytes, read("bindocsis/docsis1_0_basic.cm"));
    let v = verify(&bytes, Some(b"DOCSIS")).unwrap();
    assert!(v.all_ok(), "{v}");
    assert_eq!(
        v.to_string(),
        "/* CmMic 817865a1f6e47e81a7364ff607a24648 verified */\n\
         /* CmtsMic f90e368f5d979a2d5093bbaba37f1497 verified */\n"
    );
}

/// The key file's newline is not part of the key: with it the CMTS MIC is another value.
#[test]
fn key_with_newline_is_a_different_key() {
    let bytes = read("built/docsis1.0_basic.cm");
    let v = verify(&bytes, Some(b"DOCSIS\n")).unwrap();
    assert!(!v.all_ok());
    assert_eq!(
        v.cmts_mic,
        Check::Mismatch {
            found: crate_hex("f90e368f5d979a2d5093bbaba37f1497"),
            computed: crate_hex("359d3ae5d642125f54089460a0f76ee2"),
        }
    );
    assert!(
        matches!(v.cm_mic, Check::Verified { .. }),
        "the CM MIC needs no key"
    );
    let with_newline_key = encode_cm(&decode(&bytes).unwrap().file, b"DOCSIS\n").unwrap();
    assert_eq!(
        hex(&with_newline_key[46..62]),
        "359d3ae5d642125f54089460a0f76ee2"
    );
    let unchecked = verify(&bytes, None).unwrap();
    assert!(matches!(unchecked.cmts_mic, Check::NotChecked { .. }));
    assert!(
        unchecked
            .to_string()
            .contains("not checked: no shared secret")
    );
}

fn crate_hex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

#[test]
fn mta_example_hashes() {
    let bytes = read("built/mta_example.bin");
    assert_eq!(bytes.len(), 56);
    assert_eq!(
        hex(&mta_file_hash(&bytes, HashAlg::Sha1)),
        "732b97aa83d5133400768255be2c98bb6a97b6c5"
    );
    assert_eq!(
        hex(&mta_file_hash(&bytes, HashAlg::Md5)),
        "4b9698231e139fd453b5db13114718f9"
    );
    let decoded = decode(&bytes).unwrap();
    assert_eq!(decoded.file.kind, FileKind::Mta);
    assert_eq!(decoded.mta_hash, None);
    assert_eq!(encode_mta(&decoded.file, None).unwrap(), bytes);
}

#[test]
fn mta_in_file_hash_variants() {
    let file = decode(&read("built/mta_example.bin")).unwrap().file;
    for (oid, name, tlv_prefix) in [
        (
            HashOid::Ietf,
            "built/mta_example_basic_hash_ietf.bin",
            "0b253023060b2b06010201810c01020b000414",
        ),
        (
            HashOid::CableLabs,
            "built/mta_example_basic_hash_clabs.bin",
            "0b283026060e2b06010401a30b02020101020700",
        ),
    ] {
        let spec = MtaHash {
            alg: HashAlg::Sha1,
            oid,
        };
        let bytes = encode_mta(&file, Some(spec)).unwrap();
        assert_eq!(bytes, read(name), "{name}");
        assert!(hex(&bytes).contains(tlv_prefix), "{name}");
        assert!(hex(&bytes).ends_with("732b97aa83d5133400768255be2c98bb6a97b6c5fe01ff"));
        let decoded = decode(&bytes).unwrap();
        assert_eq!(
            decoded.file, file,
            "the hash TLV is not part of the settings"
        );
        assert_eq!(decoded.mta_hash.as_ref().unwrap().spec(), spec);
        let v = verify(&bytes, None).unwrap();
        assert!(v.all_ok());
        assert_eq!(
            v.to_string(),
            "/* MtaHash sha1 732b97aa83d5133400768255be2c98bb6a97b6c5 verified */\n"
        );
    }
    // Euro-PacketCable: MD5 under its own OID.
    let spec = MtaHash {
        alg: HashAlg::Md5,
        oid: HashOid::EuroPacketCable,
    };
    let bytes = encode_mta(&file, Some(spec)).unwrap();
    assert_eq!(
        decode(&bytes).unwrap().mta_hash.unwrap().value,
        crate_hex("4b9698231e139fd453b5db13114718f9")
    );
    assert!(verify(&bytes, None).unwrap().all_ok());
    // A changed byte is caught.
    let mut tampered = read("built/mta_example_basic_hash_ietf.bin");
    tampered[19] ^= 1;
    let v = verify(&tampered, None).unwrap();
    assert!(v.mta_hash.is_mismatch() && !v.all_ok(), "{v}");
    assert!(v.to_string().contains("MISMATCH (computed "));
}

#[test]
fn in_file_hash_needs_the_end_delimiter() {
    let file = text::parse(
        "Main { MtaConfigDelimiter 1; SnmpMibObject 1.3.6.1.2.1.140.1.1.6.0 Integer 1; }",
    )
    .unwrap();
    assert_eq!(file.kind, FileKind::Mta);
    let spec = MtaHash {
        alg: HashAlg::Sha1,
        oid: HashOid::Ietf,
    };
    assert_eq!(
        encode_mta(&file, Some(spec)),
        Err(provd_docsis::EncodeError::MissingMtaEndDelimiter)
    );
}

#[test]
fn tlv11_examples() {
    let file = text::parse(
        "Main { MtaConfigDelimiter 1; SnmpMibObject docsDevFilterIpDefault.0 Integer 1; \
         SnmpMibObject pktcMtaDevEnabled.0 Integer 1; MtaConfigDelimiter 255; }",
    )
    .unwrap();
    let bytes = encode_mta(&file, None).unwrap();
    assert_eq!(
        hex(&bytes),
        "fe0101\
         0b11300f060a2b060102014501060300020101\
         0b123010060b2b06010201810c01010600020101\
         fe01ff"
    );
}
