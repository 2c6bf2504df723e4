//! The per-asset carried state of column kernels, and the scan that advances it:
//! [`AssetStates`] (one state per asset and selected feature), [`scan`] (rows outer,
//! assets inner, on every core for large inputs) and [`Ring`] (the last values).

use super::NanMode;
use crate::error::{DataflowError, Result};

/// Per-asset state for each selected feature, sized on first use and checked after.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct AssetStates<S> {
    states: Vec<Vec<S>>,
}

impl<S> Default for AssetStates<S> {
    fn default() -> Self {
        AssetStates { states: Vec::new() }
    }
}

impl<S: Clone> AssetStates<S> {
    /// The states of feature slot `slot` for `n_assets` assets, created with `init`
    /// the first time.
    ///
    /// # Errors
    /// [`DataflowError::Invalid`] when the number of assets changed since the last call.
    pub fn get(&mut self, slot: usize, n_assets: usize, init: S) -> Result<&mut [S]> {
        self.get_with(slot, n_assets, || init)
    }

    /// As [`AssetStates::get`], building the initial state only when the slot is
    /// new (a state that allocates, a ring, is then not built on every call).
    ///
    /// # Errors
    /// As [`AssetStates::get`].
    pub fn get_with(
        &mut self,
        slot: usize,
        n_assets: usize,
        init: impl FnOnce() -> S,
    ) -> Result<&mut [S]> {
        while self.states.len() <= slot {
            self.states.push(Vec::new());
        }
        let s = &mut self.states[slot];
        if s.is_empty() {
            *s = vec![init(); n_assets];
        } else if s.len() != n_assets {
            return Err(DataflowError::invalid(format!(
                "the input has {n_assets} assets, but earlier calls had {}; a run keeps one \
                 asset universe (reset the DAG to start over)",
                s.len()
            )));
        }
        Ok(s)
    }

    /// Forgets every state.
    pub fn clear(&mut self) {
        self.states.clear();
    }
}

/// Applies `step` to every cell of a row-major feature, rows outer and assets inner,
/// with one state per asset. In [`NanMode::Drop`] a NaN input gives NaN and leaves
/// the state alone, so each asset's state advances over its present values only.
///
/// Large inputs run on every core, split by asset ([`crate::par::by_assets_into`]); the
/// result is the same to the bit.
pub fn scan<S: Send>(
    values: &[f64],
    states: &mut [S],
    nan_mode: NanMode,
    step: impl Fn(&mut S, f64) -> f64 + Sync,
) -> Vec<f64> {
    let mut out = Vec::new();
    scan_into(values, states, nan_mode, &mut out, step);
    out
}

/// As [`scan`], into `out` (cleared; its capacity is reused).
pub fn scan_into<S: Send>(
    values: &[f64],
    states: &mut [S],
    nan_mode: NanMode,
    out: &mut Vec<f64>,
    step: impl Fn(&mut S, f64) -> f64 + Sync,
) {
    let n = states.len();
    if n == 0 {
        out.clear();
        return;
    }
    let rows = values.len() / n;
    crate::par::by_assets_into(
        rows,
        n,
        states,
        std::slice::from_mut(out),
        |assets, st, w| {
            for r in 0..rows {
                let x = &values[r * n + assets.start..r * n + assets.end];
                for ((o, s), &x) in w.row(0, r).iter_mut().zip(st.iter_mut()).zip(x) {
                    o.write(if nan_mode == NanMode::Drop && x.is_nan() {
                        f64::NAN
                    } else {
                        step(s, x)
                    });
                }
            }
        },
    );
}

/// A fixed-capacity ring of the last values, oldest first.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Ring {
    buf: Vec<f64>,
    head: usize,
    len: usize,
}

impl Ring {
    /// An empty ring holding up to `capacity` values.
    pub fn new(capacity: usize) -> Ring {
        Ring {
            buf: vec![f64::NAN; capacity.max(1)],
            head: 0,
            len: 0,
        }
    }

    /// Pushes `x`, dropping the oldest value when full.
    pub fn push(&mut self, x: f64) {
        let cap = self.buf.len();
        let at = wrap(self.head + self.len, cap);
        self.buf[at] = x;
        if self.len < cap {
            self.len += 1;
        } else {
            self.head = wrap(self.head + 1, cap);
        }
    }

    /// How many values it holds.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether it holds nothing.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The value `k` places back from the newest (0 = newest), if held.
    pub fn back(&self, k: usize) -> Option<f64> {
        (k < self.len).then(|| self.buf[wrap(self.head + self.len - 1 - k, self.buf.len())])
    }

    /// The held values, oldest first.
    pub fn iter(&self) -> impl Iterator<Item = f64> + '_ {
        (0..self.len).map(move |i| self.buf[wrap(self.head + i, self.buf.len())])
    }
}

/// `i mod cap` for `i < 2 cap`: a ring's index, without an integer division per cell.
#[inline]
fn wrap(i: usize, cap: usize) -> usize {
    if i >= cap { i - cap } else { i }
}
