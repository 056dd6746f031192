//! Per-device request records (last seen, last version served) and the refusal log gate.

use provd_profiles::version::VersionEntry;

/// The last profile request of a device.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DeviceStatus {
    /// Unix milliseconds.
    pub last_seen_ms: u64,
    pub last_remote: String,
    pub last_status: u16,
    pub last_tls: bool,
    /// The version in the last profile sent with 200 or confirmed with 304.
    pub last_version_served: Option<u64>,
    pub requests: u64,
}

pub(crate) fn to_json(
    mac: &[u8; 6],
    seen: Option<&DeviceStatus>,
    version: Option<VersionEntry>,
) -> serde_json::Value {
    let m: Vec<String> = mac.iter().map(|b| format!("{b:02x}")).collect();
    serde_json::json!({
        "mac": m.join(":"),
        "last_seen_ms": seen.map(|s| s.last_seen_ms),
        "last_remote": seen.map(|s| s.last_remote.as_str()),
        "last_status": seen.map(|s| s.last_status),
        "last_tls": seen.map(|s| s.last_tls),
        "last_version_served": seen.and_then(|s| s.last_version_served),
        "requests": seen.map_or(0, |s| s.requests),
        "profile_version": version.map(|v| v.version),
        "profile_changed_at": version.map(|v| v.changed_at),
    })
}
