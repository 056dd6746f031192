//! The ACS task journal's replay on arbitrary bytes, split at a fuzzer-chosen point into a
//! rotated journal and the current one.
//!
//! Checked: no panic; nothing queued is also done; every sequence number seen is below the
//! next one handed out; the lines counted (good or bad) never exceed the lines given.

#![no_main]

use libfuzzer_sys::fuzz_target;
use provd_acs::journal::replay_from;

fuzz_target!(|data: &[u8]| {
    let (split, rest) = match data.split_first() {
        Some((&s, rest)) => (usize::from(s).min(rest.len()), rest),
        None => (0, data),
    };
    let (old, current) = rest.split_at(split);
    let r = replay_from([old, current]).expect("reading from memory cannot fail");
    for (seq, _, _) in &r.queued {
        assert!(!r.done.contains(seq), "{seq} is queued and done");
        assert!(*seq < r.next_seq, "{seq} >= next {}", r.next_seq);
    }
    for seq in &r.done {
        assert!(*seq < r.next_seq);
    }
    let lines = old.split(|&b| b == b'\n').count() + current.split(|&b| b == b'\n').count();
    assert!(r.bad_lines <= lines);
});
