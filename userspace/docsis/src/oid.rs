//! OID names for the text form, through provd-mib: `parse` accepts what an operator writes
//! (names the MIB crate knows, or numeric), `format` gives names where known.
//!
//! Interim: provd-mib has not landed its API yet, so this is numeric only (`.1.3.6.1...`).

/// Parse an OID as written in a config file.
pub fn parse(text: &str) -> Result<Vec<u32>, String> {
    let digits = text.strip_prefix('.').unwrap_or(text);
    if digits.is_empty() {
        return Err("empty OID".to_string());
    }
    digits
        .split('.')
        .map(|arc| {
            arc.parse::<u32>()
                .map_err(|_| format!("`{arc}` is not a number (no MIB names known yet)"))
        })
        .collect()
}

/// Write an OID for a config file.
pub fn format(oid: &[u32]) -> String {
    oid.iter().map(|arc| format!(".{arc}")).collect()
}
