//! Reservations made at run time: the store's, beside the config's `[[reservation]]`s.
//!
//! A reservation made through the API takes effect on the client's next DISCOVER, without a
//! reload. Workers read the map on every request of a MAC the config reserves nothing for;
//! when there are no run-time reservations that is one atomic load.
//!
//! Run-time reservations hold addresses inside a configured subnet but outside its pools
//! ([`crate::Shared::check_live_reservation`]): a pool address would have to be taken out of
//! the pool's bitmap under the shards' feet, and may be leased to another client already.

use std::net::Ipv4Addr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use dashmap::DashMap;
use provd_config::{Reservation, ReservationKey};

/// Run-time reservations by MAC.
#[derive(Debug, Default)]
pub struct LiveReservations {
    by_mac: DashMap<[u8; 6], Arc<Reservation>, foldhash::fast::RandomState>,
    count: AtomicUsize,
}

impl LiveReservations {
    /// Reserves `address` for `mac` (replacing its earlier reservation), with a forced DHCP
    /// class if `class` is given.
    pub fn set(&self, mac: [u8; 6], address: Ipv4Addr, class: Option<provd_config::ClassId>) {
        let r = Reservation {
            key: ReservationKey::Mac(mac),
            address,
            class,
            boot_file: None,
        };
        if self.by_mac.insert(mac, Arc::new(r)).is_none() {
            self.count.fetch_add(1, Ordering::Relaxed);
        }
    }

    pub fn remove(&self, mac: &[u8; 6]) {
        if self.by_mac.remove(mac).is_some() {
            self.count.fetch_sub(1, Ordering::Relaxed);
        }
    }

    #[inline]
    pub fn get(&self, mac: &[u8; 6]) -> Option<Arc<Reservation>> {
        if self.count.load(Ordering::Relaxed) == 0 {
            return None;
        }
        self.by_mac.get(mac).map(|r| Arc::clone(&*r))
    }

    /// Who holds `addr`, if anyone.
    pub fn holder(&self, addr: Ipv4Addr) -> Option<[u8; 6]> {
        self.by_mac
            .iter()
            .find(|e| e.value().address == addr)
            .map(|e| *e.key())
    }

    pub fn len(&self) -> usize {
        self.count.load(Ordering::Relaxed)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl crate::Shared {
    /// Whether `addr` may be reserved at run time: inside a configured subnet, outside every
    /// pool, not reserved by the config. `Err` says why not.
    pub fn check_live_reservation(&self, addr: Ipv4Addr) -> Result<(), String> {
        if self.policy.network_containing(addr).is_none() {
            return Err(format!("{addr} is in no configured subnet"));
        }
        if let Some(id) = self.pool_of(addr) {
            let (net, subnet) = self.policy.subnet_of_pool(id);
            return Err(format!(
                "{addr} is inside a pool of subnet {}/{} of network {}: reserve an address \
                 outside the pools",
                subnet.prefix, subnet.prefix_len, net.name
            ));
        }
        if self.policy.is_reserved(addr) {
            return Err(format!("{addr} is reserved by the config file"));
        }
        Ok(())
    }
}
