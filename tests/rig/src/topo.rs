//! The three test networks, all inside 198.18.0.0/15. The server's address is the same in every
//! topology (198.18.0.1 on `srv0`), so one server config serves them all:
//!
//! ```text
//! direct:   [srv] srv0 198.18.0.1/24 ──── cli0 (dhclient configures it)    [cli]
//! relayed:  [srv] srv0 198.18.0.1/24 ──── up0 198.18.0.2/24  [relay]  down0 198.18.2.1/24 ──── cli0 [cli]
//! load:     [srv] srv0 198.18.0.1/24 ──── ld0 198.18.0.2/24 + 198.18.4.2/32 (giaddr)  [load]
//! ```
//!
//!
//! The benches use a fourth, with the addresses their peer configs were written for:
//!
//! ```text
//! bench:    [srv] srv0 198.18.2.2/24 ──── ld0 198.18.2.1/24 (relay address)  [load]
//! ```
//!
//! The server namespace routes 198.18.2.0/24 and 198.18.4.0/24 back via 198.18.0.2 so replies to
//! a giaddr arrive; the relay namespace forwards (ip_forward=1) so a relayed client can unicast
//! its renewals to the server.

use std::net::Ipv4Addr;

use anyhow::Result;

use crate::netns::Netns;
use crate::veth::VethPair;

/// The server's address and DHCP server identifier in every topology.
pub const SERVER_IP: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 1);
/// The relay's / load generator's address on the server link.
pub const PEER_IP: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 2);
/// dhcrelay's client-side address: its giaddr.
pub const RELAY_GIADDR: Ipv4Addr = Ipv4Addr::new(198, 18, 2, 1);
/// The load generator's relay address (perfdhcp `-l`): its giaddr.
pub const LOAD_GIADDR: Ipv4Addr = Ipv4Addr::new(198, 18, 4, 2);

/// Pools the suites' server configs hand out, for checking what clients got.
pub const DIRECT_POOL: (Ipv4Addr, Ipv4Addr) = (
    Ipv4Addr::new(198, 18, 0, 100),
    Ipv4Addr::new(198, 18, 0, 200),
);
pub const RELAYED_POOL: (Ipv4Addr, Ipv4Addr) = (
    Ipv4Addr::new(198, 18, 2, 100),
    Ipv4Addr::new(198, 18, 2, 200),
);
pub const LOAD_POOL: (Ipv4Addr, Ipv4Addr) = (
    Ipv4Addr::new(198, 19, 0, 10),
    Ipv4Addr::new(198, 19, 255, 250),
);

/// The bench link: the load generator's (relay) address and the server's.
pub const BENCH_RELAY_IP: Ipv4Addr = Ipv4Addr::new(198, 18, 2, 1);
pub const BENCH_SERVER_IP: Ipv4Addr = Ipv4Addr::new(198, 18, 2, 2);
pub const BENCH_PREFIX_LEN: u8 = 24;

pub const SERVER_IF: &str = "srv0";
pub const CLIENT_IF: &str = "cli0";
pub const RELAY_UP_IF: &str = "up0";
pub const RELAY_DOWN_IF: &str = "down0";
pub const LOAD_IF: &str = "ld0";

/// Whether `a` lies in the inclusive range `pool`.
pub fn in_pool(a: Ipv4Addr, pool: (Ipv4Addr, Ipv4Addr)) -> bool {
    (u32::from(pool.0)..=u32::from(pool.1)).contains(&u32::from(a))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Direct,
    Relayed,
    Load,
    Bench,
}

/// A built topology. Field order is drop order: links go before namespaces.
#[derive(Debug)]
pub struct Topology {
    pub links: Vec<VethPair>,
    pub kind: Kind,
    pub server: Netns,
    /// dhclient's namespace (direct, relayed).
    pub client: Option<Netns>,
    /// dhcrelay's namespace (relayed).
    pub relay: Option<Netns>,
    /// perfdhcp's / the verifier's namespace (load).
    pub load: Option<Netns>,
}

impl Topology {
    pub fn build(kind: Kind) -> Result<Topology> {
        match kind {
            Kind::Direct => Self::direct(),
            Kind::Relayed => Self::relayed(),
            Kind::Load => Self::load(),
            Kind::Bench => Self::bench(),
        }
    }

    /// (a) server and client on one link; the client has no address until DHCP gives it one.
    pub fn direct() -> Result<Topology> {
        let server = Netns::new("srv")?;
        let client = Netns::new("cli")?;
        let link = VethPair::new(&server, SERVER_IF, &client, CLIENT_IF)?;
        link.a.add_addr(SERVER_IP, 24)?;
        Ok(Topology {
            links: vec![link],
            kind: Kind::Direct,
            server,
            client: Some(client),
            relay: None,
            load: None,
        })
    }

    /// (b) server ── relay ── client; the relay forwards between its two links.
    pub fn relayed() -> Result<Topology> {
        let server = Netns::new("srv")?;
        let relay = Netns::new("rly")?;
        let client = Netns::new("cli")?;
        let up = VethPair::new(&server, SERVER_IF, &relay, RELAY_UP_IF)?;
        let down = VethPair::new(&relay, RELAY_DOWN_IF, &client, CLIENT_IF)?;
        up.a.add_addr(SERVER_IP, 24)?;
        up.b.add_addr(PEER_IP, 24)?;
        down.a.add_addr(RELAY_GIADDR, 24)?;
        relay.sysctl("net.ipv4.ip_forward", "1")?;
        server.ip(&["route", "add", "198.18.2.0/24", "via", &PEER_IP.to_string()])?;
        Ok(Topology {
            links: vec![up, down],
            kind: Kind::Relayed,
            server,
            client: Some(client),
            relay: Some(relay),
            load: None,
        })
    }

    /// (c) server ── load generator, which relays from [`LOAD_GIADDR`].
    pub fn load() -> Result<Topology> {
        let server = Netns::new("srv")?;
        let load = Netns::new("load")?;
        let link = VethPair::new(&server, SERVER_IF, &load, LOAD_IF)?;
        link.a.add_addr(SERVER_IP, 24)?;
        link.b.add_addr(PEER_IP, 24)?;
        link.b.add_addr(LOAD_GIADDR, 32)?;
        server.ip(&["route", "add", "198.18.4.0/24", "via", &PEER_IP.to_string()])?;
        Ok(Topology {
            links: vec![link],
            kind: Kind::Load,
            server,
            client: None,
            relay: None,
            load: Some(load),
        })
    }

    /// (d) the benches' link: server ── load generator, which relays from
    /// [`BENCH_RELAY_IP`]; returns once both ends have carrier.
    pub fn bench() -> Result<Topology> {
        let server = Netns::new("srv")?;
        let load = Netns::new("load")?;
        let link = VethPair::new(&server, SERVER_IF, &load, LOAD_IF)?;
        link.a.add_addr(BENCH_SERVER_IP, BENCH_PREFIX_LEN)?;
        link.b.add_addr(BENCH_RELAY_IP, BENCH_PREFIX_LEN)?;
        link.wait_running(std::time::Duration::from_secs(5))?;
        Ok(Topology {
            links: vec![link],
            kind: Kind::Bench,
            server,
            client: None,
            relay: None,
            load: Some(load),
        })
    }

    /// The server's end of the first link (its interface name is in the peers' configs).
    pub fn server_if(&self) -> &str {
        &self.links[0].a.ifname
    }

    pub fn client(&self) -> &Netns {
        self.client
            .as_ref()
            .expect("topology has a client namespace")
    }
    pub fn relay(&self) -> &Netns {
        self.relay.as_ref().expect("topology has a relay namespace")
    }
    pub fn load_ns(&self) -> &Netns {
        self.load.as_ref().expect("topology has a load namespace")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_stay_in_the_benchmark_range_and_pools_are_disjoint() {
        let bench =
            |a: Ipv4Addr| (u32::from(a) >> 17) == (u32::from(Ipv4Addr::new(198, 18, 0, 0)) >> 17);
        for a in [
            SERVER_IP,
            PEER_IP,
            RELAY_GIADDR,
            LOAD_GIADDR,
            BENCH_RELAY_IP,
            BENCH_SERVER_IP,
        ] {
            assert!(bench(a), "{a}");
        }
        for p in [DIRECT_POOL, RELAYED_POOL, LOAD_POOL] {
            assert!(bench(p.0) && bench(p.1) && p.0 <= p.1);
        }
        assert!(in_pool(Ipv4Addr::new(198, 18, 0, 150), DIRECT_POOL));
        assert!(!in_pool(Ipv4Addr::new(198, 18, 0, 201), DIRECT_POOL));
        assert!(!in_pool(DIRECT_POOL.0, RELAYED_POOL));
        assert!(!in_pool(RELAYED_POOL.1, LOAD_POOL));
        for n in [SERVER_IF, CLIENT_IF, RELAY_UP_IF, RELAY_DOWN_IF, LOAD_IF] {
            assert!(n.len() < 16);
        }
    }
}
