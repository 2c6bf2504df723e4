//! The admissible bound: an upper bound on the Sharpe ratio of every completion of a
//! trajectory prefix.
//!
//! After the first `d` horizons the running sums are `num` and `var`. A completion
//! adds `X = Σ_{h≥d} (μ_h'ω_h − τ_h)` and `Y = Σ_{h≥d} ω_h'V_hω_h`. Costs are never
//! negative, so `X ≤ B_d = Σ_{h≥d} max_Ω μ_h'ω`, and `L_d ≤ Y ≤ U_d` with `L_d`, `U_d`
//! the sums of the smallest and largest `ω'V_hω` over `Ω`. Then
//!
//! ```text
//! SR = (num + X) / sqrt(var + Y) ≤ (num + B_d) / sqrt(var + L_d)   when num + B_d ≥ 0,
//!                                ≤ (num + B_d) / sqrt(var + U_d)   otherwise.
//! ```
//!
//! The bound is widened so that rounding can never put it below a completion's
//! computed score: the numerator by `1e-12 (|num| + R_d)`, with `R_d` the sum of the
//! largest `|μ_h'ω|` (a completion's computed sum is within a few ulps of those
//! magnitudes of its exact value, and costs only lower it), and the ratio by a
//! relative `1e-12`. A subtree is skipped only when the bound is strictly below the
//! incumbent, so pruning never changes the answer, ties included.

use super::problem::Problem;

/// `B_d`, `L_d`, `U_d` for every `d` in `0..=H` (zero at `H`).
#[derive(Clone, Debug)]
pub(super) struct Bounds {
    best_ret: Vec<f64>,
    low_var: Vec<f64>,
    high_var: Vec<f64>,
    abs_ret: Vec<f64>,
}

impl Bounds {
    pub(super) fn new(p: &Problem) -> Bounds {
        let (hz, m) = (p.horizons(), p.omega().len());
        let mut b = Bounds {
            best_ret: vec![0.0; hz + 1],
            low_var: vec![0.0; hz + 1],
            high_var: vec![0.0; hz + 1],
            abs_ret: vec![0.0; hz + 1],
        };
        for h in (0..hz).rev() {
            let ret = &p.ret[h * m..(h + 1) * m];
            let var = &p.var[h * m..(h + 1) * m];
            let max_ret = ret.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            let min_var = var.iter().copied().fold(f64::INFINITY, f64::min);
            let max_var = var.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            b.best_ret[h] = b.best_ret[h + 1] + max_ret;
            b.low_var[h] = b.low_var[h + 1] + min_var;
            b.high_var[h] = b.high_var[h + 1] + max_var;
            let max_abs = ret.iter().map(|r| r.abs()).fold(0.0, f64::max);
            b.abs_ret[h] = b.abs_ret[h + 1] + max_abs;
        }
        b
    }

    /// The upper bound on the Sharpe ratio of every completion of a prefix of `d`
    /// horizons whose running sums are `num` and `var`.
    #[inline]
    pub(super) fn upper(&self, d: usize, num: f64, var: f64) -> f64 {
        let top = num + self.best_ret[d] + 1e-12 * (num.abs() + self.abs_ret[d]);
        if top >= 0.0 {
            top / (var + self.low_var[d]).sqrt() * (1.0 + 1e-12) + 1e-300
        } else {
            top / (var + self.high_var[d]).sqrt() * (1.0 - 1e-12) + 1e-300
        }
    }
}
