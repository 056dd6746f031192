//! The per-device event history: what each modem or MTA said lately, for the operator's "what did
//! this device say in the last hour".
//!
//! Memory is bounded three ways, so that a flood (or a million chatty modems) cannot grow it:
//! each device keeps a ring of its last [`StoreConfig::events_per_device`] events, each event's
//! text is cut to [`StoreConfig::max_text`] bytes, and the number of devices and the bytes held are
//! capped, the least recently updated device going first. Sources the DHCP side cannot name
//! (no lease for the address) are kept under their address, with a cap of their own and evicted
//! first under byte pressure: UDP sources are easily forged, and forged ones must not push out
//! real devices' history.
//!
//! Locking: the keys are spread over shards, each behind its own mutex, so receiver threads
//! inserting for different devices rarely meet, and a control-plane query holds one shard at a
//! time. Caps are enforced per shard (the cap divided by the shard count), which is the global
//! cap to within the unevenness of the hash.

use std::collections::hash_map::RandomState;
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::fmt;
use std::hash::BuildHasher;
use std::mem::size_of;
use std::net::Ipv4Addr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard};

use crate::parse::{Message, Timestamp};

/// Who an event is filed under.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum DeviceKey {
    /// A device the DHCP side knows: its MAC address.
    Mac([u8; 6]),
    /// A source address without a known device.
    Addr(Ipv4Addr),
}

impl fmt::Display for DeviceKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DeviceKey::Mac(m) => write!(
                f,
                "{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
                m[0], m[1], m[2], m[3], m[4], m[5]
            ),
            DeviceKey::Addr(a) => a.fmt(f),
        }
    }
}

/// Maps a datagram's source address to the device holding it. The DHCP side knows this from
/// its leases; the receiver asks once per datagram, so it must be quick (a map lookup).
pub trait DeviceOf: Send + Sync {
    fn device(&self, addr: Ipv4Addr) -> Option<[u8; 6]>;
}

impl<F> DeviceOf for F
where
    F: Fn(Ipv4Addr) -> Option<[u8; 6]> + Send + Sync,
{
    fn device(&self, addr: Ipv4Addr) -> Option<[u8; 6]> {
        self(addr)
    }
}

/// A [`DeviceOf`] that knows no device: every event is filed under its source address.
#[derive(Debug, Clone, Copy, Default)]
pub struct ByAddress;

impl DeviceOf for ByAddress {
    fn device(&self, _: Ipv4Addr) -> Option<[u8; 6]> {
        None
    }
}

/// The key for a source: its device if known, else the address itself.
pub fn device_key(device_of: &dyn DeviceOf, source: Ipv4Addr) -> DeviceKey {
    device_of
        .device(source)
        .map_or(DeviceKey::Addr(source), DeviceKey::Mac)
}

/// One stored message: what an operator reads, cut to size.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    /// Store-wide arrival order: larger is newer.
    pub seq: u64,
    /// Arrival time, milliseconds since the Unix epoch (the server's clock, which the device's
    /// own [`Event::sent_at`] may disagree with).
    pub received_at: u64,
    /// The source address it came from (a device's address changes across leases).
    pub source: Ipv4Addr,
    pub facility: u8,
    pub severity: u8,
    pub sent_at: Option<Timestamp>,
    pub app_name: Option<Box<str>>,
    pub proc_id: Option<Box<str>>,
    pub msg_id: Option<Box<str>>,
    pub text: Box<str>,
    /// The text (or the datagram) was cut.
    pub truncated: bool,
    /// Its source held a live lease (the event is filed under that device's MAC); false:
    /// filed under the address, and anyone may have sent it (syslog is unauthenticated UDP).
    pub leased: bool,
}

impl Event {
    /// Heap bytes this event holds beyond its own size.
    fn heap(&self) -> usize {
        [&self.app_name, &self.proc_id, &self.msg_id]
            .iter()
            .map(|s| s.as_ref().map_or(0, |s| s.len()))
            .sum::<usize>()
            + self.text.len()
    }
}

/// Limits of the store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreConfig {
    /// Events kept per device; older ones are dropped first.
    pub events_per_device: usize,
    /// Devices known by MAC kept at most.
    pub max_devices: usize,
    /// Devices known only by source address kept at most.
    pub max_unknown: usize,
    /// Bytes of text kept per event (cut on a character boundary); header fields are cut to
    /// [`MAX_FIELD`] bytes.
    pub max_text: usize,
    /// Approximate memory held by events and their bookkeeping, all devices together.
    pub max_bytes: usize,
    /// Lock shards: more than the receiver threads, so they rarely wait on one another.
    pub shards: usize,
}

/// Bytes kept of APP-NAME, PROCID and MSGID (RFC 5424 allows up to 128 for PROCID).
pub const MAX_FIELD: usize = 48;

impl Default for StoreConfig {
    fn default() -> Self {
        StoreConfig {
            events_per_device: 64,
            max_devices: 1_000_000,
            max_unknown: 65_536,
            max_text: 480,
            max_bytes: 256 << 20,
            shards: 64,
        }
    }
}

/// Store-wide counts.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct StoreStats {
    /// Devices held, by MAC and by address only.
    pub devices: usize,
    pub unknown_devices: usize,
    /// Events held.
    pub events: usize,
    /// Approximate bytes held (see [`StoreConfig::max_bytes`]).
    pub bytes: usize,
    /// Events inserted since start.
    pub inserted: u64,
    /// Devices whose whole history was dropped to make room.
    pub evicted_devices: u64,
}

/// Bookkeeping per device beyond its events: the map and LRU entries (approximate).
const DEVICE_OVERHEAD: usize = 128;

/// The events of one device.
#[derive(Debug, Default)]
struct Ring {
    events: VecDeque<Event>,
    /// `seq` of the newest event: the device's place in the LRU order.
    last: u64,
    /// Heap bytes of the events' strings.
    heap: usize,
}

impl Ring {
    fn bytes(&self) -> usize {
        DEVICE_OVERHEAD + self.events.capacity() * size_of::<Event>() + self.heap
    }
}

/// One class of devices (by MAC, or by address only) in one shard, with its LRU order.
#[derive(Debug)]
struct Lru {
    map: HashMap<DeviceKey, Ring>,
    /// `Ring::last` → key, oldest first.
    order: BTreeMap<u64, DeviceKey>,
    max: usize,
}

impl Lru {
    fn new(max: usize) -> Self {
        Lru {
            map: HashMap::new(),
            order: BTreeMap::new(),
            max,
        }
    }

    /// Removes the least recently updated device other than `keep`; returns its bytes.
    fn evict_oldest(&mut self, keep: Option<DeviceKey>) -> Option<usize> {
        let (&seq, &key) = self.order.iter().find(|(_, k)| Some(**k) != keep)?;
        self.order.remove(&seq);
        self.map.remove(&key).map(|r| r.bytes())
    }
}

#[derive(Debug)]
struct Shard {
    known: Lru,
    unknown: Lru,
    bytes: usize,
    max_bytes: usize,
    evicted: u64,
}

impl Shard {
    fn class(&mut self, key: DeviceKey) -> &mut Lru {
        match key {
            DeviceKey::Mac(_) => &mut self.known,
            DeviceKey::Addr(_) => &mut self.unknown,
        }
    }

    fn insert(&mut self, key: DeviceKey, event: Event, per_device: usize) {
        let seq = event.seq;
        let lru = self.class(key);
        let mut freed = 0;
        let mut evicted = 0;
        if !lru.map.contains_key(&key)
            && lru.map.len() >= lru.max
            && let Some(b) = lru.evict_oldest(Some(key))
        {
            freed += b;
            evicted += 1;
        }
        let ring = lru.map.entry(key).or_insert_with(|| Ring {
            events: VecDeque::with_capacity(per_device.min(4)),
            ..Ring::default()
        });
        let before = if ring.events.is_empty() && ring.last == 0 {
            0
        } else {
            ring.bytes()
        };
        ring.heap += event.heap();
        ring.events.push_back(event);
        while ring.events.len() > per_device {
            if let Some(old) = ring.events.pop_front() {
                ring.heap -= old.heap();
            }
        }
        let previous = std::mem::replace(&mut ring.last, seq);
        let after = ring.bytes();
        lru.order.remove(&previous);
        lru.order.insert(seq, key);
        self.bytes = (self.bytes + after).saturating_sub(before + freed);
        self.evicted += evicted;
        // Byte pressure: address-only sources go first, then the least recently updated devices.
        // An address-only source never pushes out a device known by MAC: it goes itself if
        // nothing else is left to evict.
        while self.bytes > self.max_bytes {
            let freed = match key {
                DeviceKey::Addr(_) => self.unknown.evict_oldest(None),
                DeviceKey::Mac(_) => self
                    .unknown
                    .evict_oldest(None)
                    .or_else(|| self.known.evict_oldest(Some(key))),
            };
            let Some(freed) = freed else { break };
            self.bytes = self.bytes.saturating_sub(freed);
            self.evicted += 1;
        }
    }
}

/// Events by device, bounded (see the module documentation). Shared by reference between the
/// receiver threads and the control plane.
pub struct Store {
    shards: Box<[Mutex<Shard>]>,
    hasher: RandomState,
    config: StoreConfig,
    next_seq: AtomicU64,
    /// Told of every event from a known device, once set (the device timeline).
    tap: std::sync::OnceLock<Tap>,
}

/// See [`Store::set_tap`].
pub type Tap = Box<dyn Fn([u8; 6], &Message) + Send + Sync>;

impl fmt::Debug for Store {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Store")
            .field("config", &self.config)
            .field("stats", &self.stats())
            .finish()
    }
}

impl Default for Store {
    fn default() -> Self {
        Store::new(StoreConfig::default())
    }
}

fn lock(s: &Mutex<Shard>) -> MutexGuard<'_, Shard> {
    // A panic elsewhere while holding the lock leaves a consistent map (every update is
    // completed before anything that can panic); keep serving.
    s.lock().unwrap_or_else(|e| e.into_inner())
}

/// `s` cut to at most `max` bytes on a character boundary; true if it was cut.
fn cut(s: &str, max: usize) -> (&str, bool) {
    if s.len() <= max {
        return (s, false);
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    (&s[..end], true)
}

impl Store {
    /// A store with `config`'s limits; zero limits are raised to 1 (a store that keeps nothing
    /// is never what was meant).
    pub fn new(config: StoreConfig) -> Store {
        let config = StoreConfig {
            events_per_device: config.events_per_device.max(1),
            max_devices: config.max_devices.max(1),
            max_unknown: config.max_unknown.max(1),
            max_text: config.max_text.max(1),
            max_bytes: config.max_bytes.max(1),
            shards: config.shards.max(1),
        };
        let n = config.shards;
        let shards = (0..n)
            .map(|_| {
                Mutex::new(Shard {
                    known: Lru::new(config.max_devices.div_ceil(n)),
                    unknown: Lru::new(config.max_unknown.div_ceil(n)),
                    bytes: 0,
                    max_bytes: config.max_bytes.div_ceil(n),
                    evicted: 0,
                })
            })
            .collect();
        Store {
            shards,
            hasher: RandomState::new(),
            config,
            next_seq: AtomicU64::new(1),
            tap: std::sync::OnceLock::new(),
        }
    }

    pub fn config(&self) -> &StoreConfig {
        &self.config
    }

    fn shard(&self, key: DeviceKey) -> &Mutex<Shard> {
        let i = self.hasher.hash_one(key) % self.shards.len() as u64;
        // The modulo keeps the index in range.
        &self.shards[i as usize]
    }

    /// Files `msg`, received from `source`, under `device`; returns the event's `seq`.
    /// From now on, tells `tap` of every event from a device known by MAC, on the receiving
    /// worker's thread (it must not block). Only the first tap set is kept.
    pub fn set_tap(&self, tap: Tap) {
        let _ = self.tap.set(tap);
    }

    pub fn insert(&self, device: DeviceKey, source: Ipv4Addr, msg: &Message) -> u64 {
        if let (DeviceKey::Mac(mac), Some(tap)) = (device, self.tap.get()) {
            tap(mac, msg);
        }
        let seq = self.next_seq.fetch_add(1, Ordering::Relaxed);
        let (text, text_cut) = cut(&msg.text, self.config.max_text);
        let field = |f: &Option<String>| f.as_deref().map(|s| Box::from(cut(s, MAX_FIELD).0));
        let event = Event {
            seq,
            received_at: msg.received_at,
            source,
            facility: msg.facility,
            severity: msg.severity,
            sent_at: msg.timestamp,
            app_name: field(&msg.app_name),
            proc_id: field(&msg.proc_id),
            msg_id: field(&msg.msg_id),
            text: Box::from(text),
            truncated: text_cut || msg.truncated,
            leased: matches!(device, DeviceKey::Mac(_)),
        };
        lock(self.shard(device)).insert(device, event, self.config.events_per_device);
        seq
    }

    /// The events held for `device`, oldest first (newest last).
    pub fn events(&self, device: DeviceKey) -> Vec<Event> {
        let mut shard = lock(self.shard(device));
        shard
            .class(device)
            .map
            .get(&device)
            .map_or_else(Vec::new, |r| r.events.iter().cloned().collect())
    }

    /// The events held for `device` received at or after `since` (Unix ms), newest last.
    pub fn events_since(&self, device: DeviceKey, since: u64) -> Vec<Event> {
        let mut events = self.events(device);
        events.retain(|e| e.received_at >= since);
        events
    }

    /// The `n` newest events held, over all devices, newest last.
    pub fn recent(&self, n: usize) -> Vec<(DeviceKey, Event)> {
        if n == 0 {
            return Vec::new();
        }
        let mut out: Vec<(DeviceKey, Event)> = Vec::new();
        for s in self.shards.iter() {
            let shard = lock(s);
            // The n newest events of a shard belong to its n most recently updated devices:
            // every device ranked above the owner of one of them has a newer event.
            for lru in [&shard.known, &shard.unknown] {
                for key in lru.order.values().rev().take(n) {
                    if let Some(ring) = lru.map.get(key) {
                        out.extend(ring.events.iter().rev().take(n).map(|e| (*key, e.clone())));
                    }
                }
            }
            drop(shard);
            if out.len() > 2 * n {
                keep_newest(&mut out, n);
            }
        }
        keep_newest(&mut out, n);
        out.sort_unstable_by_key(|(_, e)| e.seq);
        out
    }

    /// Devices with events held (by MAC and by address only).
    pub fn devices(&self) -> usize {
        let s = self.stats();
        s.devices + s.unknown_devices
    }

    pub fn stats(&self) -> StoreStats {
        let mut st = StoreStats {
            inserted: self.next_seq.load(Ordering::Relaxed).saturating_sub(1),
            ..StoreStats::default()
        };
        for s in self.shards.iter() {
            let shard = lock(s);
            st.devices += shard.known.map.len();
            st.unknown_devices += shard.unknown.map.len();
            st.events += shard
                .known
                .map
                .values()
                .chain(shard.unknown.map.values())
                .map(|r| r.events.len())
                .sum::<usize>();
            st.bytes += shard.bytes;
            st.evicted_devices += shard.evicted;
        }
        st
    }
}

/// Keeps the `n` entries with the largest `seq` (in no particular order).
fn keep_newest(v: &mut Vec<(DeviceKey, Event)>, n: usize) {
    if v.len() > n {
        v.select_nth_unstable_by_key(n, |(_, e)| std::cmp::Reverse(e.seq));
        v.truncate(n);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parse::parse;

    const MAC: [u8; 6] = [0x00, 0x15, 0xcf, 0x12, 0x34, 0x57];
    const ADDR: Ipv4Addr = Ipv4Addr::new(10, 1, 0, 7);

    fn msg(text: &str, at: u64) -> Message {
        parse(format!("<131>CABLEMODEM[DOCSIS]: {text}").as_bytes(), at).unwrap()
    }

    fn texts(events: &[Event]) -> Vec<&str> {
        events.iter().map(|e| &*e.text).collect()
    }

    fn small(per_device: usize, devices: usize) -> Store {
        Store::new(StoreConfig {
            events_per_device: per_device,
            max_devices: devices,
            max_unknown: devices,
            shards: 1,
            ..StoreConfig::default()
        })
    }

    #[test]
    fn ring_keeps_the_last_n_newest_last() {
        let store = small(3, 10);
        for i in 0..5 {
            store.insert(DeviceKey::Mac(MAC), ADDR, &msg(&format!("e{i}"), 1000 + i));
        }
        let events = store.events(DeviceKey::Mac(MAC));
        assert_eq!(texts(&events), ["e2", "e3", "e4"]);
        assert_eq!(events[2].received_at, 1004);
        assert_eq!(events[2].source, ADDR);
        assert_eq!(events[2].app_name.as_deref(), Some("CABLEMODEM"));
        assert_eq!(events[2].severity, 3);
        assert!(events.windows(2).all(|w| w[0].seq < w[1].seq));
        assert_eq!(
            texts(&store.events_since(DeviceKey::Mac(MAC), 1003)),
            ["e3", "e4"]
        );
        assert!(store.events(DeviceKey::Addr(ADDR)).is_empty());
        let st = store.stats();
        assert_eq!((st.devices, st.events, st.inserted), (1, 3, 5));
    }

    #[test]
    fn least_recently_updated_device_is_evicted_beyond_the_cap() {
        let store = small(4, 3);
        let mac = |i: u8| DeviceKey::Mac([0, 0, 0, 0, 0, i]);
        for i in 1..=3 {
            store.insert(mac(i), ADDR, &msg("hello", 0));
        }
        // Device 1 speaks again: device 2 is now the least recently updated.
        store.insert(mac(1), ADDR, &msg("again", 0));
        store.insert(mac(4), ADDR, &msg("new", 0));
        assert!(store.events(mac(2)).is_empty());
        assert_eq!(texts(&store.events(mac(1))), ["hello", "again"]);
        assert_eq!(store.events(mac(3)).len(), 1);
        assert_eq!(store.events(mac(4)).len(), 1);
        let st = store.stats();
        assert_eq!((st.devices, st.evicted_devices), (3, 1));
        // Address-only sources have their own cap and do not push out MAC-keyed devices.
        for i in 0..10 {
            store.insert(
                DeviceKey::Addr(Ipv4Addr::new(192, 0, 2, i)),
                ADDR,
                &msg("x", 0),
            );
        }
        let st = store.stats();
        assert_eq!((st.devices, st.unknown_devices), (3, 3));
    }

    #[test]
    fn text_and_fields_are_cut_on_character_boundaries() {
        let store = Store::new(StoreConfig {
            max_text: 10,
            ..StoreConfig::default()
        });
        store.insert(DeviceKey::Mac(MAC), ADDR, &msg("short", 0));
        store.insert(DeviceKey::Mac(MAC), ADDR, &msg("ééééééé", 0));
        let long_tag = format!("<13>{}: x", "t".repeat(100));
        store.insert(
            DeviceKey::Mac(MAC),
            ADDR,
            &parse(long_tag.as_bytes(), 0).unwrap(),
        );
        let events = store.events(DeviceKey::Mac(MAC));
        assert_eq!(&*events[0].text, "short");
        assert!(!events[0].truncated);
        assert_eq!(&*events[1].text, "ééééé", "10 bytes, not a split character");
        assert!(events[1].truncated);
        assert_eq!(events[2].app_name, None, "a 100-byte tag is not a tag");
        let long_app = format!("<13>1 - - {} - - - x", "a".repeat(48));
        store.insert(
            DeviceKey::Mac(MAC),
            ADDR,
            &parse(long_app.as_bytes(), 0).unwrap(),
        );
        let long_pid = format!("<13>1 - - a {} - - x", "9".repeat(128));
        store.insert(
            DeviceKey::Mac(MAC),
            ADDR,
            &parse(long_pid.as_bytes(), 0).unwrap(),
        );
        let events = store.events(DeviceKey::Mac(MAC));
        assert_eq!(events[3].app_name.as_deref().map(str::len), Some(48));
        assert_eq!(events[4].proc_id.as_deref().map(str::len), Some(MAX_FIELD));
        assert_eq!(cut("abc", 0), ("", true));
    }

    #[test]
    fn byte_budget_evicts_address_only_sources_first() {
        let store = Store::new(StoreConfig {
            events_per_device: 4,
            max_bytes: 20_000,
            max_text: 1000,
            shards: 1,
            ..StoreConfig::default()
        });
        let text = "x".repeat(1000);
        for i in 0..5u8 {
            store.insert(DeviceKey::Mac([1, 0, 0, 0, 0, i]), ADDR, &msg(&text, 0));
        }
        for i in 0..200u8 {
            store.insert(
                DeviceKey::Addr(Ipv4Addr::new(192, 0, 2, i)),
                ADDR,
                &msg(&text, 0),
            );
            assert!(store.stats().bytes <= 20_000);
        }
        let st = store.stats();
        assert_eq!(st.devices, 5, "forged sources never push out known devices");
        assert!(st.unknown_devices >= 1 && st.unknown_devices < 200);
        // Known devices beyond the budget push out the oldest known ones.
        for i in 0..100u8 {
            store.insert(DeviceKey::Mac([2, 0, 0, 0, 0, i]), ADDR, &msg(&text, 0));
            assert!(store.stats().bytes <= 20_000);
        }
        let st = store.stats();
        assert_eq!(st.unknown_devices, 0);
        assert!(store.events(DeviceKey::Mac([1, 0, 0, 0, 0, 0])).is_empty());
        assert_eq!(store.events(DeviceKey::Mac([2, 0, 0, 0, 0, 99])).len(), 1);
        // The accounting matches a recount.
        let shard = lock(&store.shards[0]);
        let recount: usize = shard
            .known
            .map
            .values()
            .chain(shard.unknown.map.values())
            .map(Ring::bytes)
            .sum();
        assert_eq!(recount, shard.bytes);
        drop(shard);
        // With the budget all taken by known devices, an address-only source evicts only
        // itself.
        let before = store.stats();
        store.insert(DeviceKey::Addr(ADDR), ADDR, &msg(&text, 0));
        let after = store.stats();
        assert_eq!(after.devices, before.devices);
        assert!(after.bytes <= 20_000);
    }

    #[test]
    fn recent_merges_devices_and_shards_newest_last() {
        let store = Store::new(StoreConfig {
            shards: 8,
            ..StoreConfig::default()
        });
        for i in 0..100u32 {
            let key = DeviceKey::Mac([0, 0, 0, 0, 0, (i % 7) as u8]);
            store.insert(key, ADDR, &msg(&format!("e{i}"), u64::from(i)));
        }
        let recent = store.recent(10);
        assert_eq!(recent.len(), 10);
        let want: Vec<String> = (90..100).map(|i| format!("e{i}")).collect();
        let got: Vec<&str> = recent.iter().map(|(_, e)| &*e.text).collect();
        assert_eq!(got, want);
        assert_eq!(recent[9].0, DeviceKey::Mac([0, 0, 0, 0, 0, 99 % 7]));
        assert_eq!(store.recent(1000).len(), 100);
        assert!(store.recent(0).is_empty());
    }

    #[test]
    fn concurrent_inserts_and_reads() {
        let store = std::sync::Arc::new(Store::new(StoreConfig {
            events_per_device: 8,
            max_devices: 500,
            shards: 4,
            ..StoreConfig::default()
        }));
        let threads: Vec<_> = (0..4u8)
            .map(|t| {
                let store = std::sync::Arc::clone(&store);
                std::thread::spawn(move || {
                    for i in 0..2000u32 {
                        let key = DeviceKey::Mac([t, 0, 0, 0, (i >> 8) as u8, i as u8]);
                        store.insert(key, ADDR, &msg("x", 0));
                        if i % 100 == 0 {
                            let _ = store.recent(5);
                        }
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        let st = store.stats();
        assert_eq!(st.inserted, 8000);
        assert!(st.devices <= 500, "{st:?}");
    }

    #[test]
    fn device_of_closures_and_keys() {
        let dhcp = |a: Ipv4Addr| (a == ADDR).then_some(MAC);
        assert_eq!(device_key(&dhcp, ADDR), DeviceKey::Mac(MAC));
        let other = Ipv4Addr::new(10, 9, 9, 9);
        assert_eq!(device_key(&dhcp, other), DeviceKey::Addr(other));
        assert_eq!(device_key(&ByAddress, ADDR), DeviceKey::Addr(ADDR));
        assert_eq!(DeviceKey::Mac(MAC).to_string(), "00:15:cf:12:34:57");
        assert_eq!(DeviceKey::Addr(ADDR).to_string(), "10.1.0.7");
    }
}
