//! Batch kernels on every core, with results that do not depend on the thread count.
//!
//! A frame is row-major (every asset at row 0, then at row 1, ...), and a kernel that
//! is not cross-sectional keeps one state per asset. So the work splits by asset:
//! each worker takes a contiguous range of assets, walks every row, and writes its
//! range of each output row. Each asset's arithmetic is the same, in the same order,
//! whatever the split, so the outputs are bit-identical on 1 thread or many; the
//! tiling contract holds as before, because the split is across assets, never across
//! time.
//!
//! Small inputs (a streaming step's few rows) run on the calling thread: handing
//! them to another thread would cost more than the arithmetic.

use std::mem::MaybeUninit;
use std::ops::Range;

use rayon::prelude::*;

/// Cells (rows x assets) below which a kernel runs on the calling thread.
pub const PAR_MIN_CELLS: usize = 1 << 16;

/// Contiguous assets per worker for `cells` values over `n_assets` assets: all of
/// them (one worker) for small inputs, else an even split over rayon's threads, at
/// least 8 assets each so a row's piece fills whole cache lines.
pub fn assets_per_worker(n_assets: usize, cells: usize) -> usize {
    let threads = rayon::current_num_threads();
    if cells < PAR_MIN_CELLS || threads < 2 || n_assets < 16 {
        return n_assets.max(1);
    }
    n_assets.div_ceil(threads).max(8)
}

/// Where a worker writes: its range of assets in each output, row by row.
///
/// # Invariant
/// Workers are handed disjoint asset ranges of the same buffers, so the slices that
/// [`Writer::row`] returns never overlap between workers; within one worker, each
/// slice borrows the writer mutably, so two never coexist.
pub struct Writer<'a> {
    outs: &'a [SendPtr],
    n_assets: usize,
    assets: Range<usize>,
}

#[derive(Clone, Copy)]
struct SendPtr(*mut MaybeUninit<f64>);

// SAFETY: the pointers are only dereferenced through `Writer::row`, whose slices
// are disjoint across workers (see `Writer`'s invariant).
unsafe impl Send for SendPtr {}
// SAFETY: as above.
unsafe impl Sync for SendPtr {}

impl Writer<'_> {
    /// This worker's cells of output `k` at `row` (one per asset of its range). Every
    /// cell must be written before the kernel returns.
    ///
    /// # Panics
    /// If `k` is not an output index (a bug in the kernel, not an input error).
    pub fn row(&mut self, k: usize, row: usize) -> &mut [MaybeUninit<f64>] {
        let start = row * self.n_assets + self.assets.start;
        let len = self.assets.len();
        // SAFETY: `start + len <= rows * n_assets`, the capacity reserved for every
        // output (the caller loops rows below `rows`, and the range is within
        // `n_assets`); the slice is disjoint from every other worker's (invariant).
        unsafe { std::slice::from_raw_parts_mut(self.outs[k].0.add(start), len) }
    }
}

/// Runs `kernel` over assets in parallel chunks, filling `outs` (each cleared, then
/// `rows x n_assets` values, row-major; their capacity is reused).
///
/// `kernel(assets, states, writer)` gets a contiguous range of assets, their states
/// (`states[assets]`), and a [`Writer`]; it must write every cell of its range in
/// every output, for every row below `rows`.
pub fn by_assets_into<S: Send>(
    rows: usize,
    n_assets: usize,
    states: &mut [S],
    outs: &mut [Vec<f64>],
    kernel: impl Fn(Range<usize>, &mut [S], &mut Writer<'_>) + Sync,
) {
    debug_assert_eq!(states.len(), n_assets);
    let cells = rows * n_assets;
    for o in outs.iter_mut() {
        o.clear();
        o.reserve(cells);
    }
    if cells == 0 {
        return;
    }
    // The outputs' addresses, on the stack for the usual few outputs (a streaming
    // step allocates nothing).
    let mut stack = [SendPtr(std::ptr::null_mut()); 16];
    let heap: Vec<SendPtr>;
    let ptrs: &[SendPtr] = if outs.len() <= stack.len() {
        for (p, o) in stack.iter_mut().zip(outs.iter_mut()) {
            *p = SendPtr(o.spare_capacity_mut().as_mut_ptr());
        }
        &stack[..outs.len()]
    } else {
        heap = outs
            .iter_mut()
            .map(|o| SendPtr(o.spare_capacity_mut().as_mut_ptr()))
            .collect();
        &heap
    };
    let width = assets_per_worker(n_assets, cells);
    let run = |(k, chunk): (usize, &mut [S])| {
        let lo = k * width;
        let mut w = Writer {
            outs: ptrs,
            n_assets,
            assets: lo..lo + chunk.len(),
        };
        kernel(lo..lo + chunk.len(), chunk, &mut w);
    };
    if width >= n_assets {
        run((0, states));
    } else {
        states.par_chunks_mut(width).enumerate().for_each(run);
    }
    for o in outs.iter_mut() {
        // SAFETY: every worker wrote every cell of its asset range in every row (the
        // kernel's contract), and the ranges cover `0..n_assets`.
        unsafe { o.set_len(cells) };
    }
}

/// `f` applied to every value into `out` (cleared; capacity reused), on every core
/// for large inputs (elementwise, so the result does not depend on the split).
pub fn map_into(values: &[f64], out: &mut Vec<f64>, f: impl Fn(f64) -> f64 + Sync + Send) {
    out.clear();
    if values.len() < PAR_MIN_CELLS || rayon::current_num_threads() < 2 {
        out.extend(values.iter().map(|&x| f(x)));
        return;
    }
    values
        .par_iter()
        .with_min_len(PAR_MIN_CELLS)
        .map(|&x| f(x))
        .collect_into_vec(out);
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A running sum per asset: the parallel split gives the sequential bits, and
    /// every cell is written, on a pool of 1 thread and of 3.
    #[test]
    fn by_assets_equals_sequential_on_any_pool() {
        let (rows, n) = (700, 203);
        let values: Vec<f64> = (0..rows * n)
            .map(|i| ((i * 7919) % 1000) as f64 * 0.1)
            .collect();
        let mut want = vec![0.0; rows * n];
        let mut acc = vec![0.0; n];
        for r in 0..rows {
            for a in 0..n {
                acc[a] += values[r * n + a] / 3.0;
                want[r * n + a] = acc[a];
            }
        }
        for threads in [1, 3] {
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .expect("a thread pool");
            let got = pool.install(|| {
                let mut states = vec![0.0; n];
                let mut outs = vec![Vec::new(), Vec::new()];
                by_assets_into(rows, n, &mut states, &mut outs, |assets, st, w| {
                    for r in 0..rows {
                        let x = &values[r * n + assets.start..r * n + assets.end];
                        let row = w.row(0, r);
                        for ((o, s), &x) in row.iter_mut().zip(st.iter_mut()).zip(x) {
                            *s += x / 3.0;
                            o.write(*s);
                        }
                        for o in w.row(1, r) {
                            o.write(r as f64);
                        }
                    }
                });
                outs
            });
            assert_eq!(got.len(), 2);
            let bits = |v: &[f64]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
            assert_eq!(bits(&got[0]), bits(&want), "{threads} threads");
            assert!(got[1].iter().enumerate().all(|(i, &v)| v == (i / n) as f64));
        }
    }

    #[test]
    fn map_is_elementwise_at_any_size() {
        for len in [0, 5, PAR_MIN_CELLS + 3, 3 * PAR_MIN_CELLS] {
            let v: Vec<f64> = (0..len).map(|i| i as f64).collect();
            let mut got = vec![f64::NAN; 7];
            map_into(&v, &mut got, |x| x * 2.0 + 1.0);
            assert_eq!(got.len(), len);
            assert!(
                got.iter()
                    .enumerate()
                    .all(|(i, &y)| y == i as f64 * 2.0 + 1.0)
            );
        }
    }
}
