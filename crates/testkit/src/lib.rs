//! Test support shared by the workspace's test binaries.
//!
//! [`Counting`] is a global allocator that counts the allocations one thread makes
//! while [`allocations`] runs a closure on it. The tests that show a hot path
//! allocates nothing in steady state (a streaming step of a DAG, a system's
//! decision) install it in their own test binary, since a process has one global
//! allocator:
//!
//! ```
//! #[global_allocator]
//! static COUNTING: kf_testkit::Counting = kf_testkit::Counting;
//!
//! fn main() {
//!     let (v, n) = kf_testkit::allocations(|| vec![7u8; 100]);
//!     assert_eq!((v.len(), n), (100, 1));
//!     let (_, none) = kf_testkit::allocations(|| v.iter().map(|&x| u64::from(x)).sum::<u64>());
//!     assert_eq!(none, 0);
//! }
//! ```
//!
//! Counting is per thread (a thread-local flag and counter), so other threads of
//! the test process (the harness, a helper thread of the code under test) neither
//! add to a count nor are counted.
#![deny(missing_docs)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

/// The system allocator, counting each allocation and reallocation a thread makes
/// while [`allocations`] runs on it. Frees are not counted.
pub struct Counting;

thread_local! {
    static COUNTING: Cell<bool> = const { Cell::new(false) };
    static COUNT: Cell<u64> = const { Cell::new(0) };
}

fn note() {
    // `try_with`: the thread's locals may be gone while it exits.
    let _ = COUNTING.try_with(|on| {
        if on.get() {
            let _ = COUNT.try_with(|c| c.set(c.get() + 1));
        }
    });
}

// SAFETY: every call is forwarded to the system allocator unchanged; counting
// touches only thread-locals of const-initialized `Cell`s, which never allocate.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        note();
        // SAFETY: the caller's contract is passed on.
        unsafe { System.alloc(layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        note();
        // SAFETY: as above.
        unsafe { System.alloc_zeroed(layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        note();
        // SAFETY: as above.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: as above.
        unsafe { System.dealloc(ptr, layout) }
    }
}

/// Runs `f` and returns its value with the number of allocations (and
/// reallocations) this thread made meanwhile. Counts only where [`Counting`] is the
/// process's global allocator; elsewhere the count is 0.
pub fn allocations<T>(f: impl FnOnce() -> T) -> (T, u64) {
    COUNT.with(|c| c.set(0));
    COUNTING.with(|on| on.set(true));
    let out = f();
    COUNTING.with(|on| on.set(false));
    (out, COUNT.with(Cell::get))
}
