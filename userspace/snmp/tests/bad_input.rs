//! Malformed and hostile datagrams: each gives the typed error that says what and where, fast,
//! and without allocating more than the input warrants. Plus the encoder's refusals.

mod common;

use std::time::{Duration, Instant};

use common::{data, hex};
use provd_snmp::*;

fn decode_err(bytes: &[u8]) -> DecodeError {
    match Message::decode(bytes) {
        Ok(msg) => panic!("decoded: {msg:?}"),
        Err(e) => e,
    }
}

/// A v2c GetRequest around `varbind_list` (a complete VarBindList element).
fn v2c_get_with(varbind_list: &[u8]) -> Vec<u8> {
    let mut pdu = hex("020101 020100 020100");
    pdu.extend_from_slice(varbind_list);
    let mut body = hex("020101 0406 7075626c6963");
    push_element(&mut body, 0xa0, &pdu);
    let mut msg = Vec::new();
    push_element(&mut msg, 0x30, &body);
    msg
}

/// Tag, minimal length, content: the test's own writer, independent of the crate's.
fn push_element(out: &mut Vec<u8>, tag: u8, content: &[u8]) {
    out.push(tag);
    match content.len() {
        n @ 0..=0x7f => out.push(n as u8),
        n @ 0x80..=0xff => out.extend_from_slice(&[0x81, n as u8]),
        n => out.extend_from_slice(&[0x82, (n >> 8) as u8, n as u8]),
    }
    out.extend_from_slice(content);
}

#[test]
fn empty_and_not_a_sequence() {
    assert_eq!(
        decode_err(&[]),
        DecodeError::Truncated {
            what: "message",
            offset: 0
        }
    );
    assert_eq!(
        decode_err(b"GET / HTTP/1.1\r\n"),
        DecodeError::UnexpectedTag {
            what: "message",
            offset: 0,
            expected: 0x30,
            found: b'G'
        }
    );
    assert_eq!(decode_err(&[0x30]).name(), "truncated");
}

#[test]
fn lengths() {
    assert_eq!(
        decode_err(&hex("3080 020101 0000")),
        DecodeError::IndefiniteLength {
            what: "message",
            offset: 0
        }
    );
    assert_eq!(
        decode_err(&hex("3009 020101 0406")),
        DecodeError::LengthPastEnd {
            what: "message",
            offset: 0,
            len: 9,
            available: 5
        }
    );
    // The community claims more than its SEQUENCE holds (though the datagram has it).
    assert_eq!(
        decode_err(&hex("3005 020101 0406 7075626c6963")),
        DecodeError::TrailingBytes {
            what: "message",
            offset: 7,
            count: 6
        }
    );
    // The datagram's framing is checked before what is inside it.
    assert_eq!(
        decode_err(&hex("3007 020101 0406 7075626c6963")),
        DecodeError::TrailingBytes {
            what: "message",
            offset: 9,
            count: 4
        }
    );
    assert_eq!(
        decode_err(&hex("3005 020101 0406")),
        DecodeError::LengthPastEnd {
            what: "community",
            offset: 5,
            len: 6,
            available: 0
        }
    );
    assert!(matches!(
        decode_err(&hex("3088 0000000000000003 020101")),
        DecodeError::LengthTooLong { octets: 8, .. }
    ));
}

#[test]
fn non_minimal_lengths_are_read_and_normalised() {
    // The enrollment inform with every length in the 82 xx xx form, as some agents write.
    let minimal = data("snmp_v2c_inform_enrollment.bin");
    let wide = widen_lengths(&minimal);
    assert!(wide.len() > minimal.len() + 30, "{}", wide.len());
    let msg = Message::decode(&wide).unwrap();
    assert_eq!(msg, Message::decode(&minimal).unwrap());
    assert_eq!(msg.to_bytes().unwrap(), minimal);
}

/// Rewrites every element of a minimal encoding with a three-byte long-form length.
fn widen_lengths(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut pos = 0;
    while pos < bytes.len() {
        let tag = bytes[pos];
        let (len, header) = match bytes[pos + 1] {
            n @ 0..=0x7f => (usize::from(n), 2),
            0x81 => (usize::from(bytes[pos + 2]), 3),
            0x82 => (
                usize::from(bytes[pos + 2]) << 8 | usize::from(bytes[pos + 3]),
                4,
            ),
            other => panic!("length form {other:02x}"),
        };
        let content = &bytes[pos + header..pos + header + len];
        let inner = if tag & 0x20 != 0 {
            widen_lengths(content)
        } else {
            content.to_vec()
        };
        out.push(tag);
        out.extend_from_slice(&[0x82, (inner.len() >> 8) as u8, inner.len() as u8]);
        out.extend_from_slice(&inner);
        pos += header + len;
    }
    out
}

#[test]
fn trailing_bytes() {
    let mut bytes = data("snmp_v2c_set_configfile.bin");
    bytes.push(0);
    assert_eq!(
        decode_err(&bytes),
        DecodeError::TrailingBytes {
            what: "message",
            offset: 119,
            count: 1
        }
    );
}

#[test]
fn versions() {
    assert_eq!(
        decode_err(&hex("3003 020102")),
        DecodeError::UnsupportedVersion {
            offset: 2,
            version: 2
        }
    );
    assert_eq!(
        decode_err(&hex("3003 0201ff")),
        DecodeError::UnsupportedVersion {
            offset: 2,
            version: -1
        }
    );
    assert!(matches!(
        decode_err(&hex("3002 0200")),
        DecodeError::EmptyInteger {
            what: "version",
            ..
        }
    ));
}

#[test]
fn deep_nesting_is_refused_at_once() {
    // 16000 nested SEQUENCEs filling 64000 bytes: the grammar wants an INTEGER second.
    let mut bytes: Vec<u8> = Vec::new();
    for _ in 0..16_000 {
        let len = bytes.len();
        let mut outer = vec![0x30, 0x82, (len >> 8) as u8, len as u8];
        outer.extend_from_slice(&bytes);
        bytes = outer;
    }
    assert!(bytes.len() <= MAX_MESSAGE_SIZE);
    let started = Instant::now();
    assert_eq!(
        decode_err(&bytes),
        DecodeError::UnexpectedTag {
            what: "version",
            offset: 4,
            expected: 0x02,
            found: 0x30
        }
    );
    assert!(started.elapsed() < Duration::from_secs(1));
    // Nesting in a varbind value: constructed values are not SNMP values.
    let list = hex("3010 300e 0608 2b06010201010300 3002 3000");
    assert_eq!(
        decode_err(&v2c_get_with(&list)),
        DecodeError::UnknownValueType {
            offset: 38,
            tag: 0x30
        }
    );
}

#[test]
fn oversized_datagrams() {
    let bytes = vec![0x30; MAX_MESSAGE_SIZE + 1];
    assert_eq!(
        decode_err(&bytes),
        DecodeError::TooLarge {
            len: 65_508,
            max: 65_507
        }
    );
}

#[test]
fn varbind_count_is_bounded() {
    // 1024 NULL varbinds decode; the 1025th is refused where it starts.
    let one = hex("3007 0603 2b0601 0500");
    for (count, ok) in [(MAX_VARBINDS, true), (MAX_VARBINDS + 1, false)] {
        let mut list = Vec::new();
        push_element(&mut list, 0x30, &one.repeat(count));
        let bytes = v2c_get_with(&list);
        match Message::decode(&bytes) {
            Ok(msg) => {
                assert!(ok);
                assert_eq!(msg.pdu().unwrap().varbinds.len(), count);
            }
            Err(e) => {
                assert!(!ok);
                let first = bytes.len() - one.len() * count;
                assert_eq!(
                    e,
                    DecodeError::TooManyVarBinds {
                        offset: first + one.len() * MAX_VARBINDS,
                        max: MAX_VARBINDS
                    }
                );
            }
        }
    }
}

#[test]
fn integers() {
    // request-id of 9 bytes.
    let bytes =
        hex("3020 020101 0406 7075626c6963 a013 0209 000000000000000001 020100 020100 3000");
    assert_eq!(
        decode_err(&bytes),
        DecodeError::IntegerTooLong {
            what: "request-id",
            offset: 15,
            len: 9,
            max: 8
        }
    );
    // request-id 2^31: a valid INTEGER, not a valid request-id.
    let bytes = hex("301c 020101 0406 7075626c6963 a00f 0205 0080000000 020100 020100 3000");
    assert_eq!(
        decode_err(&bytes),
        DecodeError::IntegerOutOfRange {
            what: "request-id",
            offset: 15
        }
    );
    // Non-minimal request-id (fixed 4 bytes) is read.
    let bytes = hex("301b 020101 0406 7075626c6963 a00e 0204 000003e9 020100 020100 3000");
    assert_eq!(
        Message::decode(&bytes).unwrap().pdu().unwrap().request_id,
        1001
    );
    // TimeTicks of 6 bytes.
    let list = hex("3014 3012 0608 2b06010201010300 4306 000000000001");
    assert!(matches!(
        decode_err(&v2c_get_with(&list)),
        DecodeError::IntegerTooLong {
            what: "TimeTicks value",
            len: 6,
            max: 5,
            ..
        }
    ));
    // Counter32 over 2^32-1.
    let list = hex("3013 3011 0608 2b06010201010300 4105 0100000000");
    assert!(matches!(
        decode_err(&v2c_get_with(&list)),
        DecodeError::IntegerOutOfRange {
            what: "Counter32 value",
            ..
        }
    ));
}

#[test]
fn oids() {
    // Varbind name with an arc of 2^32: the fifth byte of 90 80 80 80 00 overflows.
    let list = hex("300f 300d 0609 2b06 01 9080808000 01 0500");
    let bytes = v2c_get_with(&list);
    let at = bytes.len() - 4;
    assert_eq!(
        decode_err(&bytes),
        DecodeError::OidArcOverflow { offset: at }
    );
    let list = hex("3006 3004 0600 0500");
    assert!(matches!(
        decode_err(&v2c_get_with(&list)),
        DecodeError::OidEmpty { .. }
    ));
    let list = hex("3008 3006 0602 2b86 0500");
    assert!(matches!(
        decode_err(&v2c_get_with(&list)),
        DecodeError::OidTruncated { .. }
    ));
}

#[test]
fn pdu_tags() {
    let mut bytes = data("snmp_v2c_set_configfile.bin");
    bytes[14] = 0xa9;
    assert_eq!(
        decode_err(&bytes),
        DecodeError::UnknownPduType {
            offset: 14,
            tag: 0xa9
        }
    );
    bytes[14] = 0x04;
    assert!(matches!(
        decode_err(&bytes),
        DecodeError::UnknownPduType { tag: 0x04, .. }
    ));
}

#[test]
fn v3_headers() {
    // msgFlags of two bytes.
    let bytes = hex("
        303b 020103
        3010 02024a69 020300ffe3 04020400 020103
        0410 300e 0400 020100 020100 0400 0400 0400
        3012 0400 0400 a00c 020237f0 020100 020100 3000");
    assert_eq!(
        decode_err(&bytes),
        DecodeError::BadMsgFlags { offset: 16, len: 2 }
    );
    // privFlag set (0x07) but the scoped PDU is in the clear.
    let bytes = hex("
        303a 020103
        300f 02024a69 020300ffe3 040107 020103
        0410 300e 0400 020100 020100 0400 0400 0400
        3012 0400 0400 a00c 020237f0 020100 020100 3000");
    assert_eq!(
        decode_err(&bytes),
        DecodeError::UnexpectedTag {
            what: "encryptedPDU",
            offset: 40,
            expected: 0x04,
            found: 0x30
        }
    );
    // A v1 Trap-PDU inside a scoped PDU: only SNMPv2 PDUs travel in v3.
    let bytes = hex("
        303a 020103
        300f 02024a69 020300ffe3 040104 020103
        0410 300e 0400 020100 020100 0400 0400 0400
        3012 0400 0400 a40c 020237f0 020100 020100 3000");
    assert_eq!(
        decode_err(&bytes),
        DecodeError::UnknownPduType {
            offset: 46,
            tag: 0xa4
        }
    );
    // USM parameters that are not a SEQUENCE.
    let bytes = hex("
        302c 020103
        300f 02024a69 020300ffe3 040104 020103
        0402 0500
        3012 0400 0400 a00c 020237f0 020100 020100 3000");
    assert!(matches!(
        decode_err(&bytes),
        DecodeError::UnexpectedTag {
            what: "UsmSecurityParameters",
            ..
        }
    ));
}

#[test]
fn every_error_has_a_name() {
    let samples = [
        decode_err(&[]),
        decode_err(&hex("3080")),
        decode_err(&hex("3003 020102")),
    ];
    let names: Vec<_> = samples.iter().map(DecodeError::name).collect();
    assert_eq!(
        names,
        ["truncated", "indefinite_length", "unsupported_version"]
    );
    assert_eq!(samples[0].to_string(), "message at offset 0: cut off");
}

fn oid(s: &str) -> Oid {
    s.parse().unwrap()
}

#[test]
fn encoder_refusals_leave_the_buffer_alone() {
    let mut out = b"kept".to_vec();
    let v3_community = Message::get(Version::V3, "public", 1, [oid("1.3.6.1.2.1.1.3.0")]);
    assert_eq!(
        v3_community.encode(&mut out),
        Err(EncodeError::CommunityVersion {
            version: Version::V3
        })
    );
    let many = Message::get(
        Version::V2c,
        "public",
        1,
        std::iter::repeat_n(oid("1.3.6.1"), MAX_VARBINDS + 1),
    );
    assert_eq!(
        many.encode(&mut out),
        Err(EncodeError::TooManyVarBinds {
            count: 1025,
            max: 1024
        })
    );
    let big = Message::set(
        Version::V2c,
        "private",
        1,
        [VarBind::new(
            oid("1.3.6.1"),
            Value::OctetString(vec![0; 70_000]),
        )],
    );
    assert!(matches!(
        big.encode(&mut out),
        Err(EncodeError::TooLarge { max: 65_507, .. })
    ));
    assert_eq!(out, b"kept");
    // 1024 varbinds are fine.
    let most = Message::get(
        Version::V2c,
        "public",
        1,
        std::iter::repeat_n(oid("1.3.6.1"), MAX_VARBINDS),
    );
    assert!(most.encode(&mut out).is_ok());
}

#[test]
fn v3_encoder_refusals() {
    let plain = ScopedPdu::Plain {
        context_engine_id: Vec::new(),
        context_name: Vec::new(),
        pdu: Pdu::get_request(1, []),
    };
    let msg = |flags, security_model, usm: Option<UsmParams>, raw: &[u8], scoped: ScopedPdu| {
        Message::V3 {
            msg_id: 1,
            max_size: 1500,
            flags,
            security_model,
            usm,
            security_params: raw.to_vec(),
            scoped_pdu: scoped,
        }
    };
    let usm = Some(UsmParams::default());
    assert!(
        msg(0, 3, usm.clone(), b"", plain.clone())
            .to_bytes()
            .is_ok()
    );
    for bad in [
        msg(0, 3, None, b"", plain.clone()),
        msg(0, 3, usm.clone(), b"x", plain.clone()),
        msg(0, 2, usm.clone(), b"", plain.clone()),
    ] {
        assert!(matches!(
            bad.to_bytes(),
            Err(EncodeError::SecurityParams { .. })
        ));
    }
    assert_eq!(
        msg(FLAG_AUTH | FLAG_PRIV, 3, usm.clone(), b"", plain).to_bytes(),
        Err(EncodeError::PrivFlag {
            flags: 3,
            encrypted: false
        })
    );
    assert_eq!(
        msg(FLAG_AUTH, 3, usm, b"", ScopedPdu::Encrypted(vec![1])).to_bytes(),
        Err(EncodeError::PrivFlag {
            flags: 1,
            encrypted: true
        })
    );
}
