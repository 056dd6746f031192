//! Every binary vector decodes, prints, parses back and encodes to the same bytes, and carries
//! valid integrity values.

mod common;

use common::*;
use provd_docsis::{decode, text, verify};

fn binaries() -> Vec<std::path::PathBuf> {
    let mut all = files("bindocsis", ".cm");
    all.extend(files("built", ""));
    all.extend(files("rlaager", ".bin"));
    all
}

#[test]
fn every_binary_round_trips_through_text() {
    let mut failures = Vec::new();
    let all = binaries();
    for path in &all {
        let name = path.strip_prefix(data_dir()).unwrap().display().to_string();
        let bytes = std::fs::read(path).unwrap();
        let result = (|| -> Result<(), String> {
            let decoded = decode(&bytes).map_err(|e| format!("decode: {e}"))?;
            let printed = text::print(&decoded.file);
            let parsed = text::parse(&printed)
                .map_err(|e| format!("parse of printed text: {e}\n{printed}"))?;
            if parsed != decoded.file {
                return Err(format!("print -> parse changed the tree:\n{printed}"));
            }
            let encoded = encode_like(&parsed, &decoded, cmts_key(path))
                .map_err(|e| format!("encode: {e}"))?;
            if encoded != bytes {
                let at = encoded
                    .iter()
                    .zip(&bytes)
                    .position(|(a, b)| a != b)
                    .unwrap_or(encoded.len().min(bytes.len()));
                return Err(format!(
                    "bytes differ at offset {at} (lengths {} vs {})",
                    encoded.len(),
                    bytes.len()
                ));
            }
            Ok(())
        })();
        if let Err(e) = result {
            failures.push(format!("{name}: {e}"));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} files failed:\n{}",
        failures.len(),
        all.len(),
        failures.join("\n")
    );
    assert!(
        all.len() >= 97,
        "expected the whole corpus, found {}",
        all.len()
    );
}

#[test]
fn every_binary_verifies() {
    let mut failures = Vec::new();
    for path in binaries() {
        let bytes = std::fs::read(&path).unwrap();
        match verify(&bytes, Some(cmts_key(&path))) {
            Ok(v) if v.all_ok() => {}
            Ok(v) => failures.push(format!("{}:\n{v}", path.display())),
            Err(e) => failures.push(format!("{}: {e}", path.display())),
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
