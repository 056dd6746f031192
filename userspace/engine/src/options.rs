//! Option bytes that depend only on policy, encoded once at start-up so a reply is a header, a
//! few per-lease options and two `memcpy`s: one blob per subnet (mask, routers) and one per class
//! (time offset, time/DNS/log servers, domain, TFTP server, 43, 122).

use std::net::Ipv4Addr;

use provd_config::{CableLabsOptions, Class, Policy, ProvisioningServer, Realm, Subnet};
use provd_dhcp::cablelabs::{self, ClientConfiguration, ProvServer, ProvisioningFlow, RealmValue};
use provd_dhcp::code;

/// Appends `code len value`, split into 255-byte fragments per RFC 3396.
pub(crate) fn push_option(out: &mut Vec<u8>, code: u8, value: &[u8]) {
    for chunk in value.chunks(255) {
        // chunks(255): the length fits a u8.
        out.extend_from_slice(&[code, chunk.len() as u8]);
        out.extend_from_slice(chunk);
    }
}

fn push_addrs(out: &mut Vec<u8>, code: u8, addrs: &[Ipv4Addr]) {
    if !addrs.is_empty() {
        let v: Vec<u8> = addrs.iter().flat_map(|a| a.octets()).collect();
        push_option(out, code, &v);
    }
}

pub(crate) fn subnet_blob(subnet: &Subnet) -> Vec<u8> {
    let mut out = Vec::with_capacity(16);
    push_option(&mut out, code::SUBNET_MASK, &subnet.mask().octets());
    push_addrs(&mut out, code::ROUTER, &subnet.routers);
    out
}

/// Why a class's options could not be encoded (validated config makes this unlikely; a long
/// ACS URL is the realistic case).
#[derive(Debug, thiserror::Error)]
#[error("class {class:?}: {what}")]
pub struct OptionError {
    pub class: String,
    pub what: String,
}

pub(crate) fn class_blob(class: &Class) -> Result<Vec<u8>, OptionError> {
    let err = |what: String| OptionError {
        class: class.name.clone(),
        what,
    };
    let mut out = Vec::with_capacity(64);
    if let Some(off) = class.time_offset {
        push_option(&mut out, code::TIME_OFFSET, &off.to_be_bytes());
    }
    push_addrs(&mut out, code::TIME_SERVER, &class.time_servers);
    push_addrs(&mut out, code::DNS_SERVER, &class.dns_servers);
    push_addrs(&mut out, code::LOG_SERVER, &class.log_servers);
    if let Some(d) = &class.domain_name {
        push_option(&mut out, code::DOMAIN_NAME, d.as_bytes());
    }
    if let Some(t) = &class.tftp_server {
        push_option(&mut out, code::TFTP_SERVER, t.as_bytes());
    }
    // VoIP phones and ATAs: the profile rule goes, unexpanded (the device expands its own
    // macros), in option 66 (SPA-style and Flying Voice devices take a URL there) or 160
    // (Polycom/Yealink); option 150 lists Cisco TFTP servers.
    if let Some(p) = &class.profile {
        if let Some(rule) = &p.profile_rule {
            let opt = match p.rule_option {
                provd_config::RuleOption::Opt66 => code::TFTP_SERVER,
                provd_config::RuleOption::Opt160 => code::PROVISIONING_URL,
            };
            push_option(&mut out, opt, rule.as_bytes());
        }
        push_addrs(&mut out, code::TFTP_SERVER_ADDRS, &p.option_150);
    }
    if let Some(url) = &class.acs_url {
        let mut v = Vec::new();
        if !cablelabs::encode_acs_vendor_info(url, class.provisioning_code.as_deref(), &mut v) {
            return Err(err(
                "ACS URL or provisioning code longer than 255 bytes".into()
            ));
        }
        push_option(&mut out, code::VENDOR_SPECIFIC, &v);
    }
    if let Some(ccc) = client_configuration(&class.cablelabs) {
        let mut v = Vec::new();
        ccc.encode(&mut v).map_err(|e| err(e.to_string()))?;
        push_option(&mut out, code::CABLELABS_CLIENT_CONFIG, &v);
    }
    Ok(out)
}

fn client_configuration(c: &CableLabsOptions) -> Option<ClientConfiguration> {
    let ccc = ClientConfiguration {
        primary_dhcp: c.primary_dhcp,
        secondary_dhcp: c.secondary_dhcp,
        provisioning_server: c.provisioning_server.as_ref().map(|p| match p {
            ProvisioningServer::Fqdn(n) => ProvServer::Fqdn(n.clone()),
            ProvisioningServer::Ipv4(a) => ProvServer::Ipv4(*a),
        }),
        realm: c.realm.as_ref().map(|r| match r {
            Realm::Flow(f) => RealmValue::Flow(match f {
                provd_config::ProvisioningFlow::Basic1 => ProvisioningFlow::Basic1,
                provd_config::ProvisioningFlow::Basic2 => ProvisioningFlow::Basic2,
                provd_config::ProvisioningFlow::Hybrid1 => ProvisioningFlow::Hybrid1,
                provd_config::ProvisioningFlow::Hybrid2 => ProvisioningFlow::Hybrid2,
            }),
            Realm::Kerberos(name) => RealmValue::Kerberos(name.clone()),
        }),
        provisioning_timer: c.provisioning_timer,
        kdc_servers: c.kdc_servers.clone(),
        ..Default::default()
    };
    (ccc != ClientConfiguration::default()).then_some(ccc)
}

/// The per-policy option blobs, indexed like the policy's classes and subnets.
#[derive(Debug)]
pub(crate) struct Blobs {
    pub classes: Vec<Vec<u8>>,
    /// `subnets[network][subnet]`
    pub subnets: Vec<Vec<Vec<u8>>>,
}

impl Blobs {
    pub fn build(policy: &Policy) -> Result<Self, OptionError> {
        Ok(Blobs {
            classes: policy
                .classes
                .iter()
                .map(class_blob)
                .collect::<Result<_, _>>()?,
            subnets: policy
                .networks
                .iter()
                .map(|n| n.subnets.iter().map(subnet_blob).collect())
                .collect(),
        })
    }
}
