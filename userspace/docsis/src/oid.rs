//! OID names for the text form, through provd-mib: `parse` accepts what an operator writes
//! (net-snmp style names with instances, or numeric), `format` gives names where provd knows
//! the object and numbers otherwise. provd-mib guarantees `parse(format(oid)) == oid`.

/// Parse an OID as written in a config file.
pub fn parse(text: &str) -> Result<Vec<u32>, String> {
    provd_mib::parse_oid(text).map_err(|e| e.to_string())
}

/// [`parse`] into a buffer the caller reuses.
pub fn parse_into(text: &str, oid: &mut Vec<u32>) -> Result<(), String> {
    provd_mib::parse_oid_into(text, oid).map_err(|e| e.to_string())
}

/// Write an OID for a config file.
pub fn format(oid: &[u32]) -> String {
    provd_mib::format_oid(oid)
}
