//! provd-devices: what the DHCP side knows of each bound device, readable by every role that
//! serves devices by MAC or by address (TFTP and HTTP files, PacketCable provisioning, syslog).
//!
//! DHCP workers own their shards' lease tables outright; nothing else may touch them. What a
//! TFTP (or HTTP) request needs — is this MAC bound, to which address, behind which CMTS — is
//! published here by the workers as they write lease records, before the ACK leaves, so a device
//! can never ask for its file before its facts are visible. The map is a `DashMap`: sharded
//! locks, held for one insert or lookup, never across a render.
//!
//! [`DeviceView`] is a [`LeaseObserver`]: hand it to the workers (beside others, through a
//! [`provd_lease::Fanout`]) and it follows every lease record and [`Binding`].

pub mod catalog;
pub mod timeline;

use std::net::Ipv4Addr;

use dashmap::DashMap;
use provd_lease::{Binding, Lease, LeaseObserver, LeaseState};

/// The facts of one bound device.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceFacts {
    /// The leased address: the only address allowed to fetch the device's generated file.
    pub addr: Ipv4Addr,
    /// Unix seconds.
    pub expires_at: u32,
    /// From the DHCP request that bound it (the class's index in the policy,
    /// `provd_config::ClassId`); unknown for leases restored from the log.
    pub class: Option<u16>,
    /// The relay (CMTS); unspecified for a direct client or when unknown.
    pub giaddr: Ipv4Addr,
    pub vendor_class: Option<Box<[u8]>>,
    /// Option 82's remote-id and circuit-id from the request that bound it.
    pub remote_id: Option<Box<[u8]>>,
    pub circuit_id: Option<Box<[u8]>>,
}

/// Bound devices by MAC, shared between the DHCP workers (writers) and the file servers.
#[derive(Debug, Default)]
pub struct DeviceView {
    map: DashMap<[u8; 6], DeviceFacts, foldhash::fast::RandomState>,
    /// The reverse: who holds an address (for syslog and other services that see only the
    /// source address).
    by_addr: DashMap<Ipv4Addr, [u8; 6], foldhash::fast::RandomState>,
}

impl DeviceView {
    pub fn new() -> Self {
        Self::default()
    }

    /// At start-up: makes every lease bound and live at `now` (unix seconds) known, e.g. the
    /// restored lease tables'; ended or expired ones are skipped.
    pub fn restore<'a>(&self, leases: impl IntoIterator<Item = &'a Lease>, now: u32) {
        for lease in leases {
            if lease.state == LeaseState::Bound && lease.expires_at > now {
                self.record(lease);
            }
        }
    }

    /// A lease record as it is written to the log: a bound lease makes (or keeps) the device
    /// known at its address; any other state forgets it. Facts from an earlier [`Binding`] for
    /// the same address are kept.
    pub fn record(&self, lease: &Lease) {
        if lease.state != LeaseState::Bound {
            if self
                .map
                .remove_if(&lease.chaddr, |_, f| f.addr == lease.addr)
                .is_some()
            {
                self.by_addr
                    .remove_if(&lease.addr, |_, m| *m == lease.chaddr);
            }
            return;
        }
        self.by_addr.insert(lease.addr, lease.chaddr);
        self.map
            .entry(lease.chaddr)
            .and_modify(|f| {
                if f.addr != lease.addr {
                    self.by_addr.remove_if(&f.addr, |_, m| *m == lease.chaddr);
                    f.class = None;
                    f.giaddr = Ipv4Addr::UNSPECIFIED;
                    f.vendor_class = None;
                    f.remote_id = None;
                    f.circuit_id = None;
                }
                f.addr = lease.addr;
                f.expires_at = lease.expires_at;
            })
            .or_insert_with(|| DeviceFacts {
                addr: lease.addr,
                expires_at: lease.expires_at,
                class: None,
                giaddr: Ipv4Addr::UNSPECIFIED,
                vendor_class: None,
                remote_id: None,
                circuit_id: None,
            });
    }

    /// The full facts of an ACK.
    pub fn bind(&self, b: Binding) {
        self.by_addr.insert(b.addr, b.mac);
        let old = self.map.insert(
            b.mac,
            DeviceFacts {
                addr: b.addr,
                expires_at: b.expires_at,
                class: b.class,
                giaddr: b.giaddr,
                vendor_class: b.vendor_class,
                remote_id: b.remote_id,
                circuit_id: b.circuit_id,
            },
        );
        if let Some(old) = old.filter(|o| o.addr != b.addr) {
            self.by_addr.remove_if(&old.addr, |_, m| *m == b.mac);
        }
    }

    /// TFTP-enforce: whether `peer` may fetch `mac`'s files at `now`, i.e. holds its live
    /// lease. `Err` says why not, for the log.
    pub fn enforce(&self, mac: &[u8; 6], peer: Ipv4Addr, now: u32) -> Result<(), String> {
        match self.get(mac, now) {
            None => Err("which holds no lease".into()),
            Some(f) if f.addr != peer => {
                Err(format!("leased {}, not the requester {peer}", f.addr))
            }
            Some(_) => Ok(()),
        }
    }

    /// The device whose live lease holds `addr`.
    pub fn device_at(&self, addr: Ipv4Addr, now: u32) -> Option<[u8; 6]> {
        let mac = *self.by_addr.get(&addr)?;
        self.get(&mac, now).filter(|f| f.addr == addr).map(|_| mac)
    }

    /// The device's facts if its lease is live at `now` (unix seconds).
    pub fn get(&self, mac: &[u8; 6], now: u32) -> Option<DeviceFacts> {
        self.map
            .get(mac)
            .filter(|f| f.expires_at > now)
            .map(|f| f.clone())
    }

    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// Every device with a live lease at `now`, in no particular order (for the API's lease
    /// search; a copy, so no lock is held while the caller filters).
    pub fn live(&self, now: u32) -> Vec<([u8; 6], DeviceFacts)> {
        self.map
            .iter()
            .filter(|e| e.value().expires_at > now)
            .map(|e| (*e.key(), e.value().clone()))
            .collect()
    }

    /// The first `n` devices by MAC, after `after`, with a live lease at `now` that `keep`
    /// accepts, in MAC order: one pass over the view, cloning only the facts that make the
    /// running first `n` (a page of the API's lease search costs no sort and no copy of a
    /// million leases).
    pub fn live_first(
        &self,
        now: u32,
        after: Option<[u8; 6]>,
        n: usize,
        mut keep: impl FnMut(&[u8; 6], &DeviceFacts) -> bool,
    ) -> Vec<([u8; 6], DeviceFacts)> {
        if n == 0 {
            return Vec::new();
        }
        // A max-heap of the n smallest MACs seen; its top is the one to beat.
        let mut best: std::collections::BinaryHeap<([u8; 6], HeapFacts)> =
            std::collections::BinaryHeap::with_capacity(n.min(4096) + 1);
        for e in self.map.iter() {
            let (mac, f) = (e.key(), e.value());
            if f.expires_at <= now || after.is_some_and(|a| *mac <= a) {
                continue;
            }
            if best.len() == n && best.peek().is_some_and(|(top, _)| mac >= top) {
                continue;
            }
            if !keep(mac, f) {
                continue;
            }
            best.push((*mac, HeapFacts(f.clone())));
            if best.len() > n {
                best.pop();
            }
        }
        let mut out: Vec<([u8; 6], DeviceFacts)> =
            best.into_iter().map(|(m, HeapFacts(f))| (m, f)).collect();
        out.sort_unstable_by_key(|(m, _)| *m);
        out
    }

    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }
}

/// Facts in [`DeviceView::live_first`]'s heap, which orders by MAC alone (MACs are unique).
#[derive(Debug)]
struct HeapFacts(DeviceFacts);

impl PartialEq for HeapFacts {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}
impl Eq for HeapFacts {}
impl PartialOrd for HeapFacts {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for HeapFacts {
    fn cmp(&self, _: &Self) -> std::cmp::Ordering {
        std::cmp::Ordering::Equal
    }
}

impl LeaseObserver for DeviceView {
    fn record(&self, lease: &Lease) {
        DeviceView::record(self, lease);
    }

    fn bind(&self, binding: Binding) {
        DeviceView::bind(self, binding);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MAC: [u8; 6] = [0, 0x15, 0xcf, 1, 2, 3];

    fn lease(addr: [u8; 4], state: LeaseState) -> Lease {
        Lease {
            addr: Ipv4Addr::from(addr),
            expires_at: 1000,
            state,
            chaddr: MAC,
            pool: 0,
        }
    }

    #[test]
    fn live_first_is_the_sorted_live_list_cut_after_and_filtered() {
        let v = DeviceView::new();
        // 500 devices in a scrambled order, every third one expired, every fifth one behind
        // relay .2; the rest behind .1.
        for i in 0u32..500 {
            let k = i.wrapping_mul(7919) % 500;
            let mac = [2, 0, 0, 0, (k >> 8) as u8, k as u8];
            v.bind(Binding {
                mac,
                addr: Ipv4Addr::from(0x0a00_0000 + k),
                expires_at: if k % 3 == 0 { 10 } else { 1000 },
                class: None,
                giaddr: Ipv4Addr::new(10, 1, 0, if k % 5 == 0 { 2 } else { 1 }),
                vendor_class: None,
                remote_id: None,
                circuit_id: None,
                restart: true,
            });
        }
        let mut all: Vec<([u8; 6], DeviceFacts)> = v.live(100);
        all.sort_unstable_by_key(|(m, _)| *m);
        let macs = |v: &[([u8; 6], DeviceFacts)]| v.iter().map(|(m, _)| *m).collect::<Vec<_>>();
        for (after, n) in [
            (None, 10),
            (None, 1000),
            (Some(all[40].0), 25),
            (Some(all[all.len() - 1].0), 5),
        ] {
            let want: Vec<[u8; 6]> = all
                .iter()
                .map(|(m, _)| *m)
                .filter(|m| after.is_none_or(|a| *m > a))
                .take(n)
                .collect();
            assert_eq!(
                macs(&v.live_first(100, after, n, |_, _| true)),
                want,
                "{after:?} {n}"
            );
        }
        let relay2: Vec<[u8; 6]> = all
            .iter()
            .filter(|(_, f)| f.giaddr == Ipv4Addr::new(10, 1, 0, 2))
            .map(|(m, _)| *m)
            .take(7)
            .collect();
        let got = v.live_first(100, None, 7, |_, f| f.giaddr == Ipv4Addr::new(10, 1, 0, 2));
        assert_eq!(macs(&got), relay2);
        assert!(v.live_first(100, None, 0, |_, _| true).is_empty());
    }

    #[test]
    fn bound_leases_are_visible_until_they_end_or_expire() {
        let v = DeviceView::new();
        v.bind(Binding {
            mac: MAC,
            addr: Ipv4Addr::new(10, 1, 0, 5),
            expires_at: 1000,
            class: Some(1),
            giaddr: Ipv4Addr::new(10, 1, 0, 1),
            vendor_class: Some(b"docsis3.0"[..].into()),
            remote_id: None,
            circuit_id: None,
            restart: true,
        });
        v.record(&lease([10, 1, 0, 5], LeaseState::Bound));
        let f = v.get(&MAC, 999).expect("live");
        assert_eq!(f.giaddr, Ipv4Addr::new(10, 1, 0, 1), "binding facts kept");
        assert_eq!(f.class, Some(1));
        assert!(v.get(&MAC, 1000).is_none(), "expired at expires_at");
        assert_eq!(v.device_at(Ipv4Addr::new(10, 1, 0, 5), 999), Some(MAC));
        assert_eq!(
            v.device_at(Ipv4Addr::new(10, 1, 0, 5), 1000),
            None,
            "expired"
        );
        v.record(&lease([10, 1, 0, 9], LeaseState::Bound));
        assert_eq!(
            v.device_at(Ipv4Addr::new(10, 1, 0, 5), 0),
            None,
            "moved away"
        );
        assert_eq!(v.device_at(Ipv4Addr::new(10, 1, 0, 9), 0), Some(MAC));
        let f = v.get(&MAC, 0).unwrap();
        assert_eq!(f.addr, Ipv4Addr::new(10, 1, 0, 9));
        assert_eq!(
            f.giaddr,
            Ipv4Addr::UNSPECIFIED,
            "facts of another address dropped"
        );
        v.record(&lease([10, 1, 0, 5], LeaseState::Released));
        assert!(
            v.get(&MAC, 0).is_some(),
            "ending an old address does not forget the new"
        );
        v.record(&lease([10, 1, 0, 9], LeaseState::Released));
        assert!(v.get(&MAC, 0).is_none());
        assert_eq!(v.device_at(Ipv4Addr::new(10, 1, 0, 9), 0), None);
        assert!(v.is_empty());
    }

    #[test]
    fn restore_keeps_only_bound_live_leases() {
        let v = DeviceView::new();
        let other = [0, 0x15, 0xcf, 1, 2, 4];
        let third = [0, 0x15, 0xcf, 1, 2, 5];
        let leases = [
            lease([10, 1, 0, 5], LeaseState::Bound),
            Lease {
                chaddr: other,
                ..lease([10, 1, 0, 6], LeaseState::Offered)
            },
            Lease {
                chaddr: third,
                expires_at: 500,
                ..lease([10, 1, 0, 7], LeaseState::Bound)
            },
        ];
        v.restore(&leases, 500);
        assert_eq!(
            v.len(),
            1,
            "the offer and the lease that ended at 500 are not devices"
        );
        assert_eq!(v.device_at(Ipv4Addr::new(10, 1, 0, 5), 500), Some(MAC));
        assert!(v.get(&other, 0).is_none());
        assert!(v.get(&third, 0).is_none());
    }
}
