//! Recognising a retransmitted INFORM. An MTA repeats an INFORM until it sees our Response;
//! when the Response was lost, the repeat must be answered again but must not act twice (a
//! second enrollment would restart the flow). Key: (source, request-id), the pair RFC 3416
//! retransmissions keep; a fingerprint of the bytes tells a genuinely new INFORM that reuses a
//! request-id (an MTA rebooted and counts from the same start) from a repeat.
//!
//! Bounded in time (`window`) and in entries (`capacity`, oldest forgotten first): both only
//! weaken the filter, and the flows themselves treat a repeated enrollment or status as a
//! no-op, so forgetting early costs nothing but a counter.

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddrV4;

use crate::Millis;

type Key = (SocketAddrV4, i32);

#[derive(Debug)]
pub(crate) struct Dedupe {
    window: u64,
    capacity: usize,
    /// Fingerprint of the INFORM last seen under each key.
    seen: HashMap<Key, u64>,
    /// Every key of `seen` exactly once, oldest first, with when it expires.
    order: VecDeque<(Millis, Key)>,
}

impl Dedupe {
    pub fn new(window: u64, capacity: usize) -> Dedupe {
        Dedupe {
            window,
            capacity,
            seen: HashMap::new(),
            order: VecDeque::new(),
        }
    }

    /// Whether this INFORM was seen before; remembers it if not.
    pub fn is_repeat(
        &mut self,
        now: Millis,
        src: SocketAddrV4,
        request_id: i32,
        bytes: &[u8],
    ) -> bool {
        self.expire(now);
        let print = fingerprint(bytes);
        let key = (src, request_id);
        if let Some(old) = self.seen.get_mut(&key) {
            if *old == print {
                return true;
            }
            // Same key, other content: a new INFORM. Its window runs from the first one's,
            // which only shortens how long it is remembered.
            *old = print;
            return false;
        }
        if self.seen.len() >= self.capacity
            && let Some((_, oldest)) = self.order.pop_front()
        {
            self.seen.remove(&oldest);
        }
        self.seen.insert(key, print);
        self.order.push_back((now.plus(self.window), key));
        false
    }

    fn expire(&mut self, now: Millis) {
        while let Some(&(expiry, key)) = self.order.front() {
            // Entries are in arrival order; with a clock that never goes back, that is expiry
            // order too. A clock stepped back only keeps entries longer.
            if expiry > now {
                break;
            }
            self.order.pop_front();
            self.seen.remove(&key);
        }
    }

    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.seen.len()
    }
}

/// A 64-bit fingerprint of the datagram, eight bytes at a time (a retransmission is
/// byte-identical; a collision between two INFORMs of one source under one request-id within
/// the window only costs one ignored INFORM, which the MTA then retransmits).
fn fingerprint(bytes: &[u8]) -> u64 {
    const K: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut h = (bytes.len() as u64).wrapping_mul(K);
    for chunk in bytes.chunks(8) {
        let mut word = [0u8; 8];
        word[..chunk.len()].copy_from_slice(chunk);
        h = (h ^ u64::from_le_bytes(word)).wrapping_mul(K);
        h ^= h >> 29;
    }
    h
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    fn src(n: u8) -> SocketAddrV4 {
        SocketAddrV4::new(Ipv4Addr::new(10, 0, 0, n), 1024)
    }

    #[test]
    fn repeats_within_the_window_are_recognised() {
        let mut d = Dedupe::new(1000, 10);
        assert!(!d.is_repeat(Millis(0), src(1), 7, b"a"));
        assert!(d.is_repeat(Millis(500), src(1), 7, b"a"));
        // Another source, another id, other bytes: all new.
        assert!(!d.is_repeat(Millis(500), src(2), 7, b"a"));
        assert!(!d.is_repeat(Millis(500), src(1), 8, b"a"));
        assert!(!d.is_repeat(Millis(600), src(1), 7, b"b"));
        assert!(d.is_repeat(Millis(700), src(1), 7, b"b"));
        // Past the window the key is forgotten.
        assert!(!d.is_repeat(Millis(1000), src(1), 7, b"b"));
        assert_eq!(d.len(), 3);
        assert!(!d.is_repeat(Millis(1500), src(3), 1, b"c"));
        assert_eq!(d.len(), 2);
    }

    #[test]
    fn capacity_bounds_the_table() {
        let mut d = Dedupe::new(u64::MAX, 3);
        for id in 0..10 {
            assert!(!d.is_repeat(Millis(0), src(1), id, b"x"));
            assert!(d.len() <= 3);
        }
        assert!(d.is_repeat(Millis(0), src(1), 9, b"x"));
        assert!(!d.is_repeat(Millis(0), src(1), 0, b"x"));
    }
}
