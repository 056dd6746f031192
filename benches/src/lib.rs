//! Fixtures shared by the criterion benches of provd's hot paths. The benches themselves live in
//! `benches/benches/*.rs`, one file per area, each declared in Cargo.toml with
//! `harness = false`; this library holds what more than one of them may want: the repository's
//! DHCP vectors and a reply builder that writes the OFFER of `tests/data/dhcp/mta_offer_basic1.bootp`
//! the way the server does (one reused buffer, `MessageWriter`).

use std::net::Ipv4Addr;
use std::path::PathBuf;

use provd_dhcp::cablelabs::{
    CccError, ClientConfiguration, ProvServer, ProvisioningFlow, RealmValue,
};
use provd_dhcp::{EncodeError, Header, Message, MessageType, MessageWriter, code};

/// The relayed PacketCable eMTA DISCOVER (options 53, 55, 60, 43, 57, 82).
pub const RELAYED_MTA_DISCOVER: &str = "mta_discover_relayed.bootp";
/// The BASIC.1 OFFER answering it (no option 82 echo).
pub const MTA_OFFER_BASIC1: &str = "mta_offer_basic1.bootp";

/// The repository's `tests/data` directory.
pub fn data_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/data")
}

/// Reads a vector from `tests/data/dhcp`; panics naming the path when it cannot.
pub fn dhcp_vector(name: &str) -> Vec<u8> {
    let path = data_dir().join("dhcp").join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// What a cable modem or MTA OFFER carries besides what the request dictates.
#[derive(Debug, Clone)]
pub struct OfferParams {
    pub yiaddr: Ipv4Addr,
    pub siaddr: Ipv4Addr,
    pub server_id: Ipv4Addr,
    pub lease_time: u32,
    pub renewal_time: u32,
    pub rebinding_time: u32,
    pub subnet_mask: Ipv4Addr,
    pub routers: Vec<Ipv4Addr>,
    pub time_offset: i32,
    pub time_servers: Vec<Ipv4Addr>,
    pub dns_servers: Vec<Ipv4Addr>,
    pub log_servers: Vec<Ipv4Addr>,
    pub host_name: Vec<u8>,
    pub domain_name: Vec<u8>,
    /// Option 122; MTAs only.
    pub client_config: Option<ClientConfiguration>,
    /// The boot file (the `file` field).
    pub file: Vec<u8>,
}

impl OfferParams {
    /// The values of `tests/data/dhcp/mta_offer_basic1.bootp`.
    pub fn mta_basic1() -> Self {
        OfferParams {
            yiaddr: Ipv4Addr::new(10, 1, 0, 57),
            siaddr: Ipv4Addr::new(10, 0, 0, 10),
            server_id: Ipv4Addr::new(10, 0, 0, 2),
            lease_time: 86_400,
            renewal_time: 43_200,
            rebinding_time: 75_600,
            subnet_mask: Ipv4Addr::new(255, 255, 255, 0),
            routers: vec![Ipv4Addr::new(10, 1, 0, 1)],
            time_offset: -18_000,
            time_servers: vec![Ipv4Addr::new(10, 0, 0, 5)],
            dns_servers: vec![Ipv4Addr::new(10, 0, 0, 3), Ipv4Addr::new(10, 0, 0, 4)],
            log_servers: vec![Ipv4Addr::new(10, 0, 0, 6)],
            host_name: b"mta-0015cf123457".to_vec(),
            domain_name: b"voice.example.net".to_vec(),
            client_config: Some(ClientConfiguration {
                provisioning_server: Some(ProvServer::Fqdn("prov.example.net".into())),
                realm: Some(RealmValue::Flow(ProvisioningFlow::Basic1)),
                ..Default::default()
            }),
            file: b"mta/0015cf123457.bin".to_vec(),
        }
    }
}

/// Why [`write_offer`] failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OfferError {
    Encode(EncodeError),
    ClientConfig(CccError),
}

impl From<EncodeError> for OfferError {
    fn from(e: EncodeError) -> Self {
        OfferError::Encode(e)
    }
}

/// Writes the OFFER answering `request` into `buf` (cleared first, capacity kept): header fields
/// from the request, options 53, 54, 51, 58, 59, 1, 3, 2, 4, 6, 7, 12, 15, 122, and option 82
/// echoed verbatim when the request carried it. The size limit is the client's option 57 less the
/// IP and UDP headers, 548 without it. Returns the datagram's length.
pub fn write_offer(
    request: &Message<'_>,
    p: &OfferParams,
    buf: &mut Vec<u8>,
) -> Result<usize, OfferError> {
    let max_len = request
        .max_message_size()
        .map_or(576 - 28, |s| usize::from(s) - 28);
    let mut header = Header::reply(
        request.xid(),
        *request.chaddr_field(),
        request.htype(),
        request.hlen(),
    );
    header.hops = request.hops();
    header.flags = request.flags();
    header.giaddr = request.giaddr();
    header.yiaddr = p.yiaddr;
    header.siaddr = p.siaddr;
    header.file = &p.file;

    let mut w = MessageWriter::new(buf, &header, max_len)?;
    w.option(code::MESSAGE_TYPE, &[MessageType::Offer as u8])?
        .ipv4(code::SERVER_ID, p.server_id)?
        .u32(code::LEASE_TIME, p.lease_time)?
        .u32(code::RENEWAL_TIME, p.renewal_time)?
        .u32(code::REBINDING_TIME, p.rebinding_time)?
        .ipv4(code::SUBNET_MASK, p.subnet_mask)?
        .ipv4_list(code::ROUTER, &p.routers)?
        .option(code::TIME_OFFSET, &p.time_offset.to_be_bytes())?
        .ipv4_list(code::TIME_SERVER, &p.time_servers)?
        .ipv4_list(code::DNS_SERVER, &p.dns_servers)?
        .ipv4_list(code::LOG_SERVER, &p.log_servers)?;
    if !p.host_name.is_empty() {
        w.option(code::HOST_NAME, &p.host_name)?;
    }
    if !p.domain_name.is_empty() {
        w.option(code::DOMAIN_NAME, &p.domain_name)?;
    }
    if let Some(ccc) = &p.client_config {
        let mut result = Ok(());
        w.option_with(code::CABLELABS_CLIENT_CONFIG, |b| result = ccc.encode(b))?;
        result.map_err(OfferError::ClientConfig)?;
    }
    if let Some(r82) = request.relay_agent_info() {
        w.option(code::RELAY_AGENT_INFO, &r82)?;
    }
    Ok(w.finish()?)
}

#[cfg(test)]
mod tests {
    use provd_dhcp::OwnedMessage;

    use super::*;

    #[test]
    fn offer_without_relay_info_reproduces_the_vector() {
        // The DISCOVER less its option 82: the OFFER is then exactly the vector's.
        let mut req = OwnedMessage::parse(&dhcp_vector(RELAYED_MTA_DISCOVER)).unwrap();
        req.options.retain(|(c, _)| *c != code::RELAY_AGENT_INFO);
        let mut req_buf = Vec::new();
        req.encode(&mut req_buf).unwrap();
        let req = Message::parse(&req_buf).unwrap();

        let mut buf = Vec::new();
        let len = write_offer(&req, &OfferParams::mta_basic1(), &mut buf).unwrap();
        assert_eq!(buf[..len], dhcp_vector(MTA_OFFER_BASIC1));
    }

    #[test]
    fn relayed_offer_echoes_option_82() {
        let raw = dhcp_vector(RELAYED_MTA_DISCOVER);
        let req = Message::parse(&raw).unwrap();
        let mut buf = Vec::new();
        let len = write_offer(&req, &OfferParams::mta_basic1(), &mut buf).unwrap();
        let offer = Message::parse(&buf[..len]).unwrap();
        assert_eq!(offer.message_type(), Ok(Some(MessageType::Offer)));
        assert_eq!(offer.relay_agent_info(), req.relay_agent_info());
        assert_eq!(offer.file(), Some(&b"mta/0015cf123457.bin"[..]));
        assert!(len <= 548);
    }
}
