//! The counter counts this thread's allocations and reallocations, and neither
//! frees nor another thread's.

#[global_allocator]
static COUNTING: kf_testkit::Counting = kf_testkit::Counting;

#[test]
fn counts_this_threads_allocations_only() {
    // One allocation, then a growth that reallocates at least once.
    let (mut v, n) = kf_testkit::allocations(|| Vec::<u64>::with_capacity(4));
    assert_eq!(n, 1);
    let ((), grew) = kf_testkit::allocations(|| v.extend(0..1000));
    assert!(grew >= 1, "{grew}");
    // A free is not an allocation.
    let ((), freed) = kf_testkit::allocations(|| drop(v));
    assert_eq!(freed, 0);
    // Another thread's allocations are not this thread's (spawning a thread
    // allocates on this one, so the count is taken inside the other thread).
    let (inner, _) = kf_testkit::allocations(|| {
        std::thread::spawn(|| vec![1u8; 64].len())
            .join()
            .unwrap_or(0)
    });
    assert_eq!(inner, 64);
    let (_, other) = kf_testkit::allocations(|| {
        std::thread::scope(|s| {
            s.spawn(|| {
                let _ = vec![2u8; 64];
            });
        });
        0u8
    });
    // The scope's own bookkeeping may allocate here; the 64-byte vector does not
    // count on this thread: compare with the same scope around no allocation.
    let (_, bare) = kf_testkit::allocations(|| {
        std::thread::scope(|s| {
            s.spawn(|| {});
        });
        0u8
    });
    assert_eq!(other, bare);
}
