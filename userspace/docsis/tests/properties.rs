//! Properties over generated input: decode never panics, encode -> decode -> encode is the
//! identity, and print -> parse is the identity on decoded trees.

use proptest::prelude::*;
use provd_docsis::{
    ConfigFile, FileKind, SnmpValue, Tlv, VarBind, decode, encode_cm, encode_mta, text,
};

/// Types the symbol table knows as compound at the top level, plus unknown ones.
const TOP_TYPES: &[u8] = &[
    1, 2, 3, 4, 5, 6, 7, 9, 10, 11, 14, 17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 28, 29, 32, 34, 35,
    36, 37, 38, 41, 43, 53, 54, 56, 58, 60, 64, 101, 102, 150, 202, 253,
];

fn leaf_bytes() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        prop::sample::select(vec![0usize, 1, 2, 3, 4, 6, 12, 16, 18])
            .prop_flat_map(|n| prop::collection::vec(any::<u8>(), n)),
        prop::collection::vec(any::<u8>(), 0..40),
        "[ -~]{0,20}".prop_map(String::into_bytes),
        varbind().prop_map(|vb| vb.encode().unwrap()),
    ]
}

fn varbind() -> impl Strategy<Value = VarBind> {
    let oid = (0u32..3, 0u32..40, prop::collection::vec(any::<u32>(), 0..8))
        .prop_map(|(a, b, rest)| [vec![a, b], rest].concat());
    let value = prop_oneof![
        any::<i64>().prop_map(SnmpValue::Integer),
        prop::collection::vec(any::<u8>(), 0..30).prop_map(SnmpValue::OctetString),
        "[ -~]{0,20}".prop_map(|s| SnmpValue::OctetString(s.into_bytes())),
        any::<[u8; 4]>().prop_map(SnmpValue::IpAddress),
        any::<u32>().prop_map(SnmpValue::Gauge32),
        any::<u32>().prop_map(SnmpValue::Counter32),
        any::<u32>().prop_map(SnmpValue::TimeTicks),
        any::<u64>().prop_map(SnmpValue::Counter64),
        Just(SnmpValue::Null),
        (0x47u8..0x5f, prop::collection::vec(any::<u8>(), 0..6))
            .prop_map(|(tag, content)| SnmpValue::Other { tag, content }),
    ];
    (oid, value).prop_map(|(oid, value)| VarBind { oid, value })
}

/// Nested TLVs with small types, so that they meet the symbol table's sub-types.
fn nested() -> impl Strategy<Value = Vec<Tlv>> {
    let leaf = (0u8..20, leaf_bytes()).prop_map(|(t, v)| Tlv::leaf(t, v));
    let tree = leaf.prop_recursive(4, 24, 6, |inner| {
        prop_oneof![
            (0u8..20, leaf_bytes()).prop_map(|(t, v)| Tlv::leaf(t, v)),
            (
                prop::sample::select(vec![1u8, 2, 5, 9, 10, 11, 12, 14, 24, 43]),
                prop::collection::vec(inner, 0..5)
            )
                .prop_map(|(t, kids)| Tlv::compound(t, kids)),
        ]
    });
    prop::collection::vec(tree, 0..5)
}

fn top_tlv() -> impl Strategy<Value = Tlv> {
    prop_oneof![
        (prop::sample::select(TOP_TYPES), leaf_bytes()).prop_map(|(t, v)| Tlv::leaf(t, v)),
        (prop::sample::select(TOP_TYPES), nested()).prop_map(|(t, kids)| Tlv::compound(t, kids)),
        prop::collection::vec(any::<u8>(), 250..400).prop_map(|v| Tlv::leaf(64, v)),
    ]
}

fn cm_file() -> impl Strategy<Value = ConfigFile> {
    prop::collection::vec(top_tlv(), 0..12).prop_map(|tlvs| ConfigFile {
        kind: FileKind::Cm,
        tlvs,
    })
}

fn mta_file() -> impl Strategy<Value = ConfigFile> {
    prop::collection::vec(top_tlv(), 0..12).prop_map(|body| {
        let tlvs = [
            vec![Tlv::leaf(254, vec![1])],
            body,
            vec![Tlv::leaf(254, vec![0xff])],
        ]
        .concat();
        ConfigFile {
            kind: FileKind::Mta,
            tlvs,
        }
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn decode_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..300)) {
        let _ = decode(&bytes);
        let _ = provd_docsis::verify(&bytes, Some(b"k"));
    }

    #[test]
    fn decode_never_panics_on_near_valid_files(file in cm_file(), cut in any::<prop::sample::Index>(), flip in any::<(prop::sample::Index, u8)>()) {
        if let Ok(bytes) = encode_cm(&file, b"k") {
            let _ = decode(&bytes[..cut.index(bytes.len() + 1)]);
            let mut changed = bytes.clone();
            if !changed.is_empty() {
                let i = flip.0.index(changed.len());
                changed[i] ^= flip.1;
            }
            if let Ok(d) = decode(&changed) {
                let _ = text::print(&d.file);
            }
        }
    }

    #[test]
    fn cm_encode_decode_encode_is_identity(file in cm_file()) {
        // Trees with values too big for their length field are refused, not mangled.
        let Ok(bytes) = encode_cm(&file, b"secret") else { return Ok(()) };
        let decoded = decode(&bytes).unwrap();
        prop_assert_eq!(decoded.file.kind, FileKind::Cm);
        prop_assert_eq!(&encode_cm(&decoded.file, b"secret").unwrap(), &bytes);
        prop_assert!(provd_docsis::verify(&bytes, Some(b"secret")).unwrap().all_ok());
        let printed = text::print(&decoded.file);
        let parsed = text::parse(&printed);
        prop_assert_eq!(parsed.as_ref(), Ok(&decoded.file), "{}", printed);
    }

    #[test]
    fn mta_encode_decode_encode_is_identity(file in mta_file()) {
        let Ok(bytes) = encode_mta(&file, None) else { return Ok(()) };
        let decoded = decode(&bytes).unwrap();
        prop_assert_eq!(decoded.file.kind, FileKind::Mta);
        prop_assert_eq!(&encode_mta(&decoded.file, None).unwrap(), &bytes);
        let printed = text::print(&decoded.file);
        let parsed = text::parse(&printed);
        prop_assert_eq!(parsed.as_ref(), Ok(&decoded.file), "{}", printed);
    }

    #[test]
    fn varbind_round_trip(vb in varbind()) {
        let bytes = vb.encode().unwrap();
        prop_assert_eq!(VarBind::decode(&bytes).unwrap(), vb);
    }

    #[test]
    fn text_parse_never_panics(src in "(Main|\\{|\\}|;| |\n|/\\*|\\*/|\"|GenericTLV|TlvCode|TlvLength|TlvValue|[0-9]{1,4}|0x[0-9a-f]{0,6}|ClassOfService|MaxRateDown|SnmpMibObject|Integer|String|sysName\\.0|VendorSpecific|[a-z.:']{1,6})*") {
        if let Ok(file) = text::parse(&src) {
            let printed = text::print(&file);
            prop_assert_eq!(text::parse(&printed), Ok(file));
        }
    }
}
