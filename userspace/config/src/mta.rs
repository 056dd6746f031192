//! `[mta]`: the PacketCable provisioning server role (HYBRID/BASIC flows; option 122.3 points
//! MTAs here).
//!
//! ```toml
//! [mta]                           # PacketCable provisioning server (HYBRID/BASIC flows)
//! bind = "198.18.0.1"             # default: [server].bind
//! port = 162                      # INFORMs in
//! inform_communities = ["private"]  # accepted on INFORMs
//! set_community = "private"       # SET (file URL + hash) to the MTA's UDP 161
//! get_community = "private"       # GET of capabilities
//! get_capabilities = false
//! max_flows = 100000
//! accept_unknown_dhcp = false      # act on INFORMs only from the address holding the MTA's lease
//! ```
//!
//! The MTA files are generated ([`crate::ConfigFileSpec`] with `kind = "mta"`) and served over
//! TFTP: the policy checks that both are configured.

use std::net::Ipv4Addr;

use crate::server::ServerSettings;
use crate::validator::{Validator, index};

/// The tables as written (see [`crate::wire`]).
pub mod wire {
    use serde::Deserialize;

    /// `[mta]` as written.
    #[derive(Debug, Clone, Default, Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct Mta {
        pub bind: Option<String>,
        pub port: Option<i64>,
        pub inform_communities: Option<Vec<String>>,
        pub set_community: Option<String>,
        pub get_community: Option<String>,
        pub get_capabilities: Option<bool>,
        pub max_flows: Option<i64>,
        pub accept_unknown_dhcp: Option<bool>,
    }
}

/// `[mta]`: the PacketCable provisioning server role (option 122.3 points MTAs here).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MtaSettings {
    pub bind: Ipv4Addr,
    /// Where notifications (INFORMs) arrive: 162.
    pub port: u16,
    /// Communities accepted on INFORMs; others get no answer.
    pub inform_communities: Vec<String>,
    /// For SETs (and GETs) to the MTA's agent on UDP 161.
    pub set_community: String,
    pub get_community: String,
    /// GET the MTA's capabilities (MTA-16/17) before building its file.
    pub get_capabilities: bool,
    /// Flows in progress at most; beyond, new enrollments are answered but not provisioned.
    pub max_flows: usize,
    /// Act on INFORMs from MTAs this server did not lease, or from another address than the
    /// MTA's lease (off: an MTA plant whose DHCP is another server turns it on).
    pub accept_unknown_dhcp: bool,
}

fn community(v: &mut Validator, path: &str, c: &str) {
    if c.is_empty() || c.len() > 255 {
        v.err(path, "a community is 1 to 255 bytes");
    }
}

/// Validates `[mta]`.
pub(crate) fn validate(w: &wire::Mta, server: &ServerSettings, v: &mut Validator) -> MtaSettings {
    let inform_communities = w
        .inform_communities
        .clone()
        .unwrap_or_else(|| vec!["private".into()]);
    if inform_communities.is_empty() {
        v.err(
            "mta.inform_communities",
            "no community accepted: every INFORM would go unanswered",
        );
    }
    for (i, c) in inform_communities.iter().enumerate() {
        community(v, &index("mta.inform_communities", i), c);
    }
    let set_community = w.set_community.clone().unwrap_or_else(|| "private".into());
    community(v, "mta.set_community", &set_community);
    let get_community = w
        .get_community
        .clone()
        .unwrap_or_else(|| set_community.clone());
    community(v, "mta.get_community", &get_community);
    MtaSettings {
        bind: v.bind("mta.bind", w.bind.as_ref(), server.bind),
        port: v.int("mta.port", w.port, 162, 1, 65_535, "a UDP port") as u16,
        inform_communities,
        set_community,
        get_community,
        get_capabilities: w.get_capabilities.unwrap_or(false),
        max_flows: v.int(
            "mta.max_flows",
            w.max_flows,
            100_000,
            1,
            10_000_000,
            "the flows in progress",
        ) as usize,
        accept_unknown_dhcp: w.accept_unknown_dhcp.unwrap_or(false),
    }
}
