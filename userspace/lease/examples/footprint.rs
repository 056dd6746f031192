//! Heap bytes per lease of a `LeaseTable` holding 1,000,000 MAC-keyed leases, counted by a
//! global allocator that tallies live bytes. Target: <= 128 bytes per lease.
//!
//! Run: `cargo run --release -p provd-lease --example footprint`

use std::alloc::{GlobalAlloc, Layout, System};
use std::net::Ipv4Addr;
use std::sync::atomic::{AtomicUsize, Ordering};

use provd_lease::{ClientKey, Lease, LeaseState, LeaseTable};

struct Counting;

static LIVE: AtomicUsize = AtomicUsize::new(0);

// SAFETY: every method forwards to `System` with the caller's arguments unchanged, so `System`'s
// guarantees carry over; the counter only observes sizes.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: the caller upholds `alloc`'s contract for `layout`, which we pass on as is.
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            LIVE.fetch_add(layout.size(), Ordering::Relaxed);
        }
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` was allocated by `System` (through `alloc` above) with this `layout`.
        unsafe { System.dealloc(ptr, layout) };
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: `ptr` and `layout` come from this allocator, and the caller upholds `realloc`'s
        // contract for `new_size`.
        let p = unsafe { System.realloc(ptr, layout, new_size) };
        if !p.is_null() {
            LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
            LIVE.fetch_add(new_size, Ordering::Relaxed);
        }
        p
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

const LEASES: u32 = 1_000_000;

fn fill(table: &mut LeaseTable) {
    for n in 0..LEASES {
        let b = n.to_be_bytes();
        let mac = [0x02, 0x00, b[0], b[1], b[2], b[3]];
        let lease = Lease {
            addr: Ipv4Addr::from(0x0a00_0000 + n),
            expires_at: 1_700_000_000 + n,
            state: LeaseState::Bound,
            chaddr: mac,
            pool: 0,
        };
        table.insert(ClientKey::from_hw(1, &mac), lease);
    }
}

fn measure(label: &str, make: impl FnOnce() -> LeaseTable) -> usize {
    let before = LIVE.load(Ordering::Relaxed);
    let mut table = make();
    fill(&mut table);
    let bytes = LIVE.load(Ordering::Relaxed) - before;
    assert_eq!(table.len(), LEASES as usize);
    let per = bytes / LEASES as usize;
    println!("{label}: table_bytes={bytes} leases={LEASES} bytes_per_lease={per}");
    drop(table);
    per
}

fn main() {
    println!(
        "size_of::<ClientKey>()={} size_of::<Lease>()={} size_of::<(ClientKey, Lease)>()={} \
         (hashbrown adds 1 control byte per bucket; buckets are a power of two >= 8/7 x len)",
        size_of::<ClientKey>(),
        size_of::<Lease>(),
        size_of::<(ClientKey, Lease)>()
    );
    measure("grown", LeaseTable::new);
    let per = measure("presized", || LeaseTable::with_capacity(LEASES as usize));
    println!("bytes_per_lease={per}");
}
