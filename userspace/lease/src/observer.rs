//! How the rest of the server learns who is bound where: the DHCP workers tell a
//! [`LeaseObserver`] of every lease record they write and of every [`Binding`] an ACK makes,
//! without anyone touching a shard's table. [`Fanout`] tells several.

use std::net::Ipv4Addr;
use std::sync::Arc;

use crate::Lease;

/// What a device told the server when it was bound, beyond the lease record: the facts that
/// per-device config files are rendered from and that PacketCable provisioning starts on. The
/// DHCP engine makes one per ACK when asked to (it costs an allocation).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Binding {
    pub mac: [u8; 6],
    pub addr: Ipv4Addr,
    /// Unix seconds.
    pub expires_at: u32,
    /// The device's class: its index in the policy's classes (`provd_config::ClassId`).
    pub class: Option<u16>,
    /// The relay (CMTS) the request came through; unspecified for a direct client.
    pub giaddr: Ipv4Addr,
    /// Option 60 as sent.
    pub vendor_class: Option<Box<[u8]>>,
    /// Option 82's remote-id (sub-option 2) as the relay sent it: for an MTA or CPE, the MAC of
    /// the modem it sits behind.
    pub remote_id: Option<Box<[u8]>>,
    /// Option 82's circuit-id (sub-option 1).
    pub circuit_id: Option<Box<[u8]>>,
    /// The device (re)started: an ACK to a REQUEST in SELECTING or INIT-REBOOT state, not a
    /// renewal. PacketCable provisioning restarts on these only.
    pub restart: bool,
}

/// Told of every lease record as the worker writes it (before any ACK for it leaves) and of
/// every [`Binding`]. Called on the DHCP worker threads: each call must be quick and must not
/// block.
pub trait LeaseObserver: Send + Sync + std::fmt::Debug {
    fn record(&self, lease: &Lease);
    fn bind(&self, binding: Binding);
}

/// Tells every observer it holds, in order.
#[derive(Debug, Default)]
pub struct Fanout(pub Vec<Arc<dyn LeaseObserver>>);

impl Fanout {
    /// The one observer to hand the workers: none, the only one, or a fan-out to all of them.
    pub fn of(mut observers: Vec<Arc<dyn LeaseObserver>>) -> Option<Arc<dyn LeaseObserver>> {
        match observers.len() {
            0 => None,
            1 => observers.pop(),
            _ => Some(Arc::new(Fanout(observers))),
        }
    }
}

impl LeaseObserver for Fanout {
    fn record(&self, lease: &Lease) {
        self.0.iter().for_each(|o| o.record(lease));
    }

    fn bind(&self, b: Binding) {
        // Each gets its own copy; the last takes the original.
        if let Some((last, rest)) = self.0.split_last() {
            rest.iter().for_each(|o| o.bind(b.clone()));
            last.bind(b);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::LeaseState;
    use std::sync::Mutex;

    #[derive(Debug, Default)]
    struct Seen {
        records: Mutex<Vec<Ipv4Addr>>,
        binds: Mutex<Vec<Binding>>,
    }

    impl LeaseObserver for Seen {
        fn record(&self, lease: &Lease) {
            self.records.lock().unwrap().push(lease.addr);
        }
        fn bind(&self, binding: Binding) {
            self.binds.lock().unwrap().push(binding);
        }
    }

    #[test]
    fn fanout_tells_every_observer_everything() {
        let (a, b, c) = (
            Arc::new(Seen::default()),
            Arc::new(Seen::default()),
            Arc::new(Seen::default()),
        );
        let all: Vec<Arc<dyn LeaseObserver>> = vec![a.clone(), b.clone(), c.clone()];
        let fan = Fanout::of(all).unwrap();
        let addr = Ipv4Addr::new(10, 1, 0, 5);
        fan.record(&Lease {
            addr,
            expires_at: 1000,
            state: LeaseState::Bound,
            chaddr: [0, 0x15, 0xcf, 1, 2, 3],
            pool: 0,
        });
        let binding = Binding {
            mac: [0, 0x15, 0xcf, 1, 2, 3],
            addr,
            expires_at: 1000,
            class: Some(1),
            giaddr: Ipv4Addr::new(10, 1, 0, 1),
            vendor_class: Some(b"docsis3.0"[..].into()),
            remote_id: None,
            circuit_id: None,
            restart: true,
        };
        fan.bind(binding.clone());
        for seen in [&a, &b, &c] {
            assert_eq!(*seen.records.lock().unwrap(), [addr]);
            assert_eq!(*seen.binds.lock().unwrap(), std::slice::from_ref(&binding));
        }
    }

    #[test]
    fn one_observer_is_handed_on_as_is_and_none_is_none() {
        assert!(Fanout::of(Vec::new()).is_none());
        let only: Arc<dyn LeaseObserver> = Arc::new(Seen::default());
        let got = Fanout::of(vec![Arc::clone(&only)]).unwrap();
        assert!(
            Arc::ptr_eq(&got, &only),
            "no fan-out around a single observer"
        );
    }
}
