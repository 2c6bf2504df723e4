//! Fresh pages for the order and fill records, made ready on another core.
//!
//! A run at a decision a minute for 500 assets records about 100 orders and 100
//! fills per decision, 710 MB over 100,000 decisions, into vectors reserved up front.
//! Each first write to a page of them costs a page fault in which the kernel zeroes
//! the page, and on this machine that was a third of the loop's time. A helper
//! thread asks the kernel to populate the pages a little ahead of the records
//! (`madvise(MADV_POPULATE_WRITE)`, Linux 5.14 and later), so the zeroing runs on
//! the core the loop leaves idle. The advice does not change any value (it maps
//! zeroed pages where there were none and leaves present pages alone), so the
//! records are the same bits with or without it; where the call is refused (an
//! older kernel, another OS), the loop faults its own pages as before.
//!
//! The records' pages are also advised to stay 4 KB pages (no transparent huge
//! pages): see `small_pages` for why and what it measured.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::thread::JoinHandle;

/// Records populated ahead of the last one written.
const AHEAD: usize = 1 << 20;
/// Records the helper populates per wake-up (the loop wakes it each time it has
/// written this many).
const CHUNK: usize = 1 << 16;

/// One reserved vector: its buffer's address, element size and capacity.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Region {
    pub(crate) addr: usize,
    pub(crate) size: usize,
    pub(crate) cap: usize,
}

impl Region {
    /// The spare and used room of `v`'s buffer.
    pub(crate) fn of<T>(v: &Vec<T>) -> Region {
        Region {
            addr: v.as_ptr() as usize,
            size: std::mem::size_of::<T>(),
            cap: v.capacity(),
        }
    }
}

struct Shared {
    written: AtomicUsize,
    stop: AtomicBool,
}

/// The helper thread; stopped and joined when dropped.
pub(crate) struct Prefault {
    shared: Arc<Shared>,
    handle: Option<JoinHandle<()>>,
    next_wake: usize,
}

impl Prefault {
    /// Starts a helper for `regions`, or returns `None` where it cannot help (not
    /// Linux, one core, vectors too small to matter, a thread that cannot start).
    pub(crate) fn start(regions: Vec<Region>) -> Option<Prefault> {
        for r in &regions {
            small_pages(r.addr, r.cap.saturating_mul(r.size));
        }
        if !cfg!(target_os = "linux")
            || std::thread::available_parallelism().map_or(1, |n| n.get()) < 2
            || regions.iter().all(|r| r.cap < AHEAD)
        {
            return None;
        }
        let shared = Arc::new(Shared {
            written: AtomicUsize::new(0),
            stop: AtomicBool::new(false),
        });
        let theirs = Arc::clone(&shared);
        let handle = std::thread::Builder::new()
            .name("kf-prefault".into())
            .spawn(move || helper(&theirs, &regions))
            .ok()?;
        Some(Prefault {
            shared,
            handle: Some(handle),
            next_wake: CHUNK,
        })
    }

    /// Tells the helper that `written` records are in the longest vector.
    pub(crate) fn advance(&mut self, written: usize) {
        if written >= self.next_wake {
            self.shared.written.store(written, Ordering::Relaxed);
            self.next_wake = written + CHUNK;
            if let Some(h) = &self.handle {
                h.thread().unpark();
            }
        }
    }
}

impl Drop for Prefault {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::Relaxed);
        if let Some(h) = self.handle.take() {
            h.thread().unpark();
            // A helper that panicked has nothing left to clean up.
            let _ = h.join();
        }
    }
}

fn helper(shared: &Shared, regions: &[Region]) {
    let mut done = 0usize;
    loop {
        if shared.stop.load(Ordering::Relaxed) {
            return;
        }
        let want = shared.written.load(Ordering::Relaxed) + AHEAD;
        if want > done {
            for r in regions {
                let (from, to) = (done.min(r.cap), want.min(r.cap));
                if to > from && !populate(r.addr + from * r.size, (to - from) * r.size) {
                    return; // refused: the loop faults its own pages
                }
            }
            done = want;
        }
        std::thread::park();
    }
}

/// `madvise(MADV_POPULATE_WRITE)` over the pages covering `[addr, addr + len)`;
/// false when the kernel refuses it.
#[cfg(target_os = "linux")]
fn populate(addr: usize, len: usize) -> bool {
    const PAGE: usize = 4096;
    let start = addr & !(PAGE - 1);
    let end = (addr + len).div_ceil(PAGE) * PAGE;
    // SAFETY: the advice only faults in pages of this process's own mappings, with
    // their current contents (zeroed pages where none were present); it reads and
    // writes no value, so it cannot race with the loop's writes. A range that no
    // longer belongs to its vector (one that outgrew its reservation and moved) is
    // either unmapped, and the call fails, which stops the helper, or another
    // allocation's, whose pages it faults in unchanged.
    unsafe {
        libc::madvise(
            start as *mut libc::c_void,
            end - start,
            libc::MADV_POPULATE_WRITE,
        ) == 0
    }
}

/// `madvise(MADV_NOHUGEPAGE)` over the whole pages inside `[addr, addr + len)`: the
/// records are written once, in order, so huge pages save them little, and a fresh
/// 2 MB page costs its whole zeroing at its first write. On this machine (a VM whose
/// host backs memory on first touch) that zeroing ran at 0.2 to 20 GB/s from run to
/// run, against a steady 3 GB/s for 4 KB pages: the system at a decision a minute
/// for 500 assets took 2.2-3.0 s with huge records and 1.7 s without. Advice only:
/// no value changes, and a refusal leaves the pages as they were.
#[cfg(target_os = "linux")]
fn small_pages(addr: usize, len: usize) {
    const PAGE: usize = 4096;
    let start = addr.div_ceil(PAGE) * PAGE;
    let end = addr.saturating_add(len) & !(PAGE - 1);
    if end > start {
        // SAFETY: advice on pages of this process's own reservation (the vector's
        // buffer, whole pages inside it); it changes how later faults map them, never
        // their contents.
        unsafe {
            libc::madvise(
                start as *mut libc::c_void,
                end - start,
                libc::MADV_NOHUGEPAGE,
            );
        }
    }
}

#[cfg(not(target_os = "linux"))]
fn small_pages(_addr: usize, _len: usize) {}

#[cfg(not(target_os = "linux"))]
fn populate(_addr: usize, _len: usize) -> bool {
    false
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;

    /// Whether the page holding `addr` is in memory (`mincore`).
    fn resident(addr: usize) -> bool {
        let page = addr & !4095;
        let mut v = 0u8;
        // SAFETY: one page of this process's own mapping, one byte of output.
        let rc = unsafe { libc::mincore(page as *mut libc::c_void, 4096, &mut v) };
        rc == 0 && v & 1 == 1
    }

    #[test]
    fn the_helper_populates_pages_ahead_of_the_records_and_changes_none() {
        if std::thread::available_parallelism().map_or(1, |n| n.get()) < 2 {
            return; // the helper does not start on one core
        }
        // 8 AHEADs of room (64 MB: glibc maps a block this large afresh, so none of
        // its pages is resident yet): the helper must populate the first AHEAD
        // records' pages and leave the last ones untouched.
        let mut v: Vec<u64> = Vec::with_capacity(8 * AHEAD);
        v.extend(0..1000u64);
        let base = v.as_ptr() as usize;
        let far = base + (8 * AHEAD - 1) * 8;
        assert!(
            !resident(far),
            "the reservation's end is resident before any advice"
        );
        let mut p = Prefault::start(vec![Region::of(&v)]).expect("two cores, Linux");
        p.advance(CHUNK);
        let near = base + (AHEAD - 1) * 8;
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while !resident(near) && std::time::Instant::now() < deadline {
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
        assert!(
            resident(near),
            "the page of record AHEAD - 1 was not populated"
        );
        assert!(
            !resident(far),
            "the helper populated beyond written + AHEAD"
        );
        drop(p);
        assert!(v.iter().copied().eq(0..1000u64), "a record changed");
    }
}
