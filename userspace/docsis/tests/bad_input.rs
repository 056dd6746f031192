//! Bad input is a typed error naming where it is, never a panic.

use provd_docsis::text::{self, TextError, TextErrorKind};
use provd_docsis::{DecodeError, Tlv, Value, decode, encode_cm};

#[test]
fn binary_errors() {
    assert_eq!(decode(&[]), Err(DecodeError::Empty));
    assert_eq!(
        decode(&[3]),
        Err(DecodeError::Truncated { offset: 0, typ: 3 })
    );
    assert_eq!(
        decode(&[3, 1, 1, 64, 0]),
        Err(DecodeError::Truncated { offset: 3, typ: 64 })
    );
    assert_eq!(
        decode(&[3, 1, 1, 18, 5, 1]),
        Err(DecodeError::LengthPastEnd {
            offset: 3,
            typ: 18,
            len: 5,
            available: 1
        })
    );
    assert_eq!(
        decode(&[3, 1, 1, 0, 18, 1, 3, 0xff]),
        Err(DecodeError::PadBeforeEnd { offset: 3 })
    );
    assert_eq!(
        decode(&[3, 1, 1, 0xff, 0, 1]),
        Err(DecodeError::DataAfterEnd { offset: 5 })
    );
    assert_eq!(decode(&[3, 1, 1]), Err(DecodeError::MissingEndMarker));
    assert_eq!(
        decode(&[0xfe, 1, 1, 0xff]),
        Err(DecodeError::MarkerInMtaFile {
            offset: 3,
            byte: 0xff
        })
    );
}

/// A compound type whose value does not split into sub-TLVs (bad nesting) is kept as a leaf,
/// and the file still encodes back to itself.
#[test]
fn bad_nesting_stays_raw() {
    let file =
        text::parse("Main { GenericTLV TlvCode 4 TlvLength 4 TlvValue 0x01050000; }").unwrap();
    let bytes = encode_cm(&file, b"k").unwrap();
    let decoded = decode(&bytes).unwrap();
    assert_eq!(
        decoded.file.tlvs,
        [Tlv {
            typ: 4,
            value: Value::Leaf(vec![1, 5, 0, 0])
        }]
    );
    assert_eq!(encode_cm(&decoded.file, b"k").unwrap(), bytes);
    assert!(
        text::print(&decoded.file)
            .contains("GenericTLV TlvCode 4 TlvLength 4 TlvValue 0x01050000;")
    );
}

fn err(src: &str) -> TextError {
    text::parse(src).expect_err(src)
}

#[test]
fn text_errors_name_the_line() {
    let e = err("hello world");
    assert_eq!((e.line, e.column), (1, 1));
    assert!(matches!(e.kind, TextErrorKind::Unexpected { .. }), "{e}");

    let e = err("Main {\n  NetworkAccess 1;\n  /* never closed\n}");
    assert_eq!((e.line, e.kind), (3, TextErrorKind::UnterminatedComment));

    let e = err("Main {\n  SwUpgradeFilename \"open;\n}");
    assert_eq!(
        (e.line, e.column, e.kind),
        (2, 21, TextErrorKind::UnterminatedString)
    );

    let e = err("Main {\n  NetworkAccess 1;\n  ClassOfService {\n    ClassID 1;\n");
    assert!(matches!(e.kind, TextErrorKind::UnexpectedEnd { .. }), "{e}");
    assert_eq!(e.line, 4);

    let e = err("Main {\n  NetworkAccess 1;\n  MaxCpe 3;\n}");
    assert_eq!(e.line, 3);
    assert_eq!(
        e.kind,
        TextErrorKind::UnknownName {
            name: "MaxCpe".into(),
            block: "Main".into()
        }
    );

    let e = err("Main {\n ClassOfService {\n  NetworkAccess 1;\n }\n}");
    assert!(
        matches!(&e.kind, TextErrorKind::UnknownName { block, .. } if block == "ClassOfService"),
        "{e}"
    );

    let src = "Main {\n\n\n\n\n\n\n\n\n\n ClassOfService {\n  MaxRateDown 5000000000;\n }\n}";
    let e = err(src);
    assert_eq!(e.line, 12);
    assert!(matches!(e.kind, TextErrorKind::OutOfRange { .. }));
    assert_eq!(
        e.to_string(),
        "line 12, column 15: MaxRateDown: value 5000000000 out of range 0..=4294967295"
    );

    let e = err("Main { MaxCPE -1; }");
    assert!(matches!(e.kind, TextErrorKind::OutOfRange { .. }), "{e}");
    let e = err("Main { MaxCPE 256; }");
    assert!(matches!(e.kind, TextErrorKind::OutOfRange { .. }), "{e}");
    let e = err("Main { SwUpgradeServer 10.1.1.300; }");
    assert!(matches!(e.kind, TextErrorKind::InvalidValue { .. }), "{e}");
    let e = err("Main { CpeMacAddress 00:11:22:33:44; }");
    assert!(matches!(e.kind, TextErrorKind::InvalidValue { .. }), "{e}");
    let e = err("Main { SubMgmtControl 0xff00; }");
    assert!(
        matches!(e.kind, TextErrorKind::BadLength { len: 2, .. }),
        "{e}"
    );
    let e = err("Main { NetworkAccess 1 }");
    assert!(matches!(e.kind, TextErrorKind::Unexpected { .. }), "{e}");
    let e = err("Main { NetworkAccess { } }");
    assert!(
        matches!(
            e.kind,
            TextErrorKind::InvalidValue { .. } | TextErrorKind::Unexpected { .. }
        ),
        "{e}"
    );
    let e = err("Main { ClassOfService 1; }");
    assert!(matches!(e.kind, TextErrorKind::Unexpected { .. }), "{e}");
    let e = err("Main { NetworkAccess 1; } trailing");
    assert!(matches!(e.kind, TextErrorKind::Unexpected { .. }), "{e}");
}

#[test]
fn snmp_and_generic_errors() {
    let e = err("Main {\n SnmpMibObject noSuchObject.0 Integer 1;\n}");
    assert_eq!(e.line, 2);
    assert!(matches!(e.kind, TextErrorKind::BadOid { .. }), "{e}");
    let e = err("Main { SnmpMibObject 1.3.6.1 Float 1; }");
    assert!(
        matches!(e.kind, TextErrorKind::UnknownSnmpType { .. }),
        "{e}"
    );
    let e = err("Main { SnmpMibObject 1.3.6.1 Integer 99999999999999999999; }");
    assert!(matches!(e.kind, TextErrorKind::OutOfRange { .. }), "{e}");
    let e = err("Main { SnmpMibObject 1.3.6.1 Gauge32 4294967296; }");
    assert!(matches!(e.kind, TextErrorKind::OutOfRange { .. }), "{e}");
    let e = err("Main { GenericTLV TlvCode 16 TlvLength 3 TlvValue 0xc0a8fe43; }");
    assert_eq!(
        e.kind,
        TextErrorKind::LengthMismatch {
            declared: 3,
            actual: 4
        }
    );
    let e = err("Main { GenericTLV TlvCode 255 TlvLength 1 TlvValue 0x00; }");
    assert_eq!(e.kind, TextErrorKind::ReservedType { code: 255 });
    let e = err("Main { GenericTLV TlvCode 16 TlvLength 1 TlvValue 0xabc; }");
    assert!(matches!(e.kind, TextErrorKind::InvalidValue { .. }), "{e}");
    let long = "a".repeat(300);
    let e = err(&format!("Main {{\n SwUpgradeFilename \"{long}\";\n}}"));
    assert_eq!(
        e.kind,
        TextErrorKind::TooLong {
            name: "SwUpgradeFilename".into(),
            len: 300,
            max: 255
        }
    );
    assert_eq!(e.line, 2);
    let e = err("Main { ManufacturerCVC \"cert.der\"; }");
    assert_eq!(
        e.kind,
        TextErrorKind::NoFileLoader {
            path: "cert.der".into()
        }
    );
    let loader = |_: &str| Err("no such file".to_string());
    let e = text::parse_with_loader("Main { ManufacturerCVC \"cert.der\"; }", &loader).unwrap_err();
    assert!(matches!(e.kind, TextErrorKind::FileLoad { .. }), "{e}");
}

/// A block whose encoding passes 255 bytes is refused where it is written.
#[test]
fn oversized_block() {
    let flows: String = (0..50).map(|_| " MaxRateSustained 1;").collect();
    let e = err(&format!("Main {{\n UsServiceFlow {{{flows} }}\n}}"));
    assert!(matches!(e.kind, TextErrorKind::TooLong { .. }), "{e}");
    assert_eq!(e.line, 2);
}

/// Comments in the forms the tool writes and accepts.
#[test]
fn comments_and_case() {
    let file = text::parse(
        "/* head */ main // line comment\n{ /* c */ NetworkAccess 1; /* CmMic 00; */ /*EndOfDataMkr*/ }",
    )
    .unwrap();
    assert_eq!(file.tlvs, [Tlv::leaf(3, vec![1])]);
}

/// Hand-built trees the wire cannot carry are refused by encode, with the reason.
#[test]
fn encode_refuses_what_the_wire_cannot_carry() {
    use provd_docsis::{ConfigFile, EncodeError, FileKind, encode_mta};
    let mta = text::parse("Main { MtaConfigDelimiter 1; MtaConfigDelimiter 255; }").unwrap();
    assert_eq!(
        encode_cm(&mta, b"k"),
        Err(EncodeError::WrongKind {
            actual: FileKind::Mta
        })
    );
    let cm = text::parse("Main { NetworkAccess 1; }").unwrap();
    assert_eq!(
        encode_mta(&cm, None),
        Err(EncodeError::WrongKind {
            actual: FileKind::Cm
        })
    );
    let pad = ConfigFile::new(vec![Tlv::leaf(0, vec![])]);
    assert_eq!(
        encode_cm(&pad, b"k"),
        Err(EncodeError::ReservedType { typ: 0 })
    );
    let big = ConfigFile::new(vec![Tlv::leaf(9, vec![b'a'; 256])]);
    assert_eq!(
        encode_cm(&big, b"k"),
        Err(EncodeError::ValueTooLong {
            typ: 9,
            len: 256,
            max: 255
        })
    );
}
