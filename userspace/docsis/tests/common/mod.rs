//! Shared helpers for the vector tests: where the data is and which key a file uses.

#![allow(dead_code)]

use std::path::{Path, PathBuf};

use provd_docsis::{ConfigFile, Decoded, EncodeError, FileKind, encode_cm, encode_mta};

pub fn data_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/data/docsis")
}

pub fn read(rel: &str) -> Vec<u8> {
    let path = data_dir().join(rel);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Files of `dir` (relative to the data dir) whose name ends with `ext`, sorted.
pub fn files(dir: &str, ext: &str) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = std::fs::read_dir(data_dir().join(dir))
        .unwrap_or_else(|e| panic!("{dir}: {e}"))
        .map(|e| e.unwrap().path())
        .filter(|p| p.to_string_lossy().ends_with(ext))
        .collect();
    out.sort();
    out
}

/// The CMTS shared secret a vector was made with.
pub fn cmts_key(path: &Path) -> &'static [u8] {
    let name = path.file_name().unwrap().to_string_lossy();
    if name == "ptp.bin" || name == "docsis3.1_snmp_cvc.bin" {
        b""
    } else {
        b"DOCSIS"
    }
}

/// Encode as the file's kind, with the in-file hash the decoded file had.
pub fn encode_like(
    file: &ConfigFile,
    decoded: &Decoded,
    key: &[u8],
) -> Result<Vec<u8>, EncodeError> {
    match file.kind {
        FileKind::Cm => encode_cm(file, key),
        FileKind::Mta => encode_mta(file, decoded.mta_hash.as_ref().map(|h| h.spec())),
    }
}

/// A file loader over the rlaager folder, for `ManufacturerCVC "file";` and friends.
pub fn rlaager_loader(name: &str) -> Result<Vec<u8>, String> {
    std::fs::read(data_dir().join("rlaager").join(name)).map_err(|e| e.to_string())
}
