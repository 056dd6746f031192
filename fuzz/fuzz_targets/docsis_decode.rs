//! The DOCSIS/PacketCable config decoder on arbitrary bytes: a tree or a typed error, never a
//! panic. A decoded tree prints to text that parses back to the same tree, and that tree
//! encodes to exactly what the decoded one encodes to (same MICs, same in-file hash).

#![no_main]

use libfuzzer_sys::fuzz_target;
use provd_docsis::{ConfigFile, Decoded, EncodeError, FileKind, encode_cm, encode_mta, text};

fn encode(file: &ConfigFile, decoded: &Decoded) -> Result<Vec<u8>, EncodeError> {
    match file.kind {
        FileKind::Cm => encode_cm(file, b"fuzz"),
        FileKind::Mta => encode_mta(file, decoded.mta_hash.as_ref().map(|h| h.spec())),
    }
}

fuzz_target!(|data: &[u8]| {
    let _ = provd_docsis::verify(data, Some(b"fuzz"));
    let Ok(decoded) = provd_docsis::decode(data) else { return };
    let direct = encode(&decoded.file, &decoded);
    let printed = text::print(&decoded.file);
    let parsed = text::parse(&printed).unwrap_or_else(|e| panic!("printed text does not parse: {e}\n{printed}"));
    assert_eq!(parsed, decoded.file, "print -> parse changed the tree:\n{printed}");
    assert_eq!(encode(&parsed, &decoded), direct);
    let _ = text::print_decoded(&decoded);
});
