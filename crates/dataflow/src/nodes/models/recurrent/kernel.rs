//! The forward pass of a trained recurrent forecaster, in our own code.
//!
//! Training runs on candle; predicting runs here, because a GEMM library blocks its
//! sums differently for a batch of one window and a batch of ten thousand, and the
//! tiling contract wants the same bits either way. Every value below is computed by
//! the same sequence of operations whatever the batch size: each gate unit of each
//! window is its bias, plus its input weights times the inputs in input order, plus
//! its recurrent weights times the state in state order. Windows are laid out side
//! by side (`[time][feature][window]`) so the innermost loop runs across windows,
//! which the compiler vectorizes without changing any one window's arithmetic.

use serde::{Deserialize, Serialize};

use super::vmath::{exp, sigmoid, tanh};

/// The recurrent cell.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Cell {
    /// Long short-term memory: gates input, forget, cell, output (PyTorch's order).
    Lstm,
    /// Gated recurrent unit: gates reset, update, new (PyTorch's order).
    Gru,
}

impl Cell {
    /// Gate blocks per hidden unit.
    pub fn gates(self) -> usize {
        match self {
            Cell::Lstm => 4,
            Cell::Gru => 3,
        }
    }
}

/// A trained network: one recurrent layer and a linear head on its last state.
///
/// Invariant: `w_ih` is `gates * hidden x inputs`, `w_hh` is `gates * hidden x
/// hidden` (row-major, PyTorch's layout), `b_ih` and `b_hh` are `gates * hidden`,
/// `w_out` is `hidden`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Net {
    /// The cell.
    pub cell: Cell,
    /// Input features per time step.
    pub inputs: usize,
    /// Hidden units.
    pub hidden: usize,
    /// Input weights.
    pub w_ih: Vec<f64>,
    /// Recurrent weights.
    pub w_hh: Vec<f64>,
    /// Input biases.
    pub b_ih: Vec<f64>,
    /// Recurrent biases.
    pub b_hh: Vec<f64>,
    /// Head weights.
    pub w_out: Vec<f64>,
    /// Head bias.
    pub b_out: f64,
}

/// Scratch buffers, reused from call to call.
#[derive(Debug, Default)]
pub struct Scratch {
    h: Vec<f64>,
    c: Vec<f64>,
    ih: Vec<f64>,
    hh: Vec<f64>,
}

impl Net {
    /// Whether the shapes hold the invariant.
    pub fn well_formed(&self) -> bool {
        let gh = self.cell.gates() * self.hidden;
        self.w_ih.len() == gh * self.inputs
            && self.w_hh.len() == gh * self.hidden
            && self.b_ih.len() == gh
            && self.b_hh.len() == gh
            && self.w_out.len() == self.hidden
    }

    /// Forecasts for `b` windows of `steps` time steps: `x` is `[steps][inputs][b]`
    /// (window fastest), `out` gets one value per window.
    ///
    /// On a CPU with AVX-512 the loops run 8 windows to a vector, with AVX2 4; the
    /// arithmetic, and so every bit of the result, is the same as without either.
    pub fn forward(&self, x: &[f64], b: usize, steps: usize, s: &mut Scratch, out: &mut [f64]) {
        #[cfg(target_arch = "x86_64")]
        {
            if std::arch::is_x86_feature_detected!("avx512f") {
                // SAFETY: the CPU has AVX-512F, checked just above.
                unsafe { self.forward_avx512(x, b, steps, s, out) };
                return;
            }
            if std::arch::is_x86_feature_detected!("avx2") {
                // SAFETY: the CPU has AVX2, checked just above.
                unsafe { self.forward_avx2(x, b, steps, s, out) };
                return;
            }
        }
        self.forward_portable(x, b, steps, s, out);
    }

    /// [`Net::forward`] compiled for AVX2 (no FMA: the arithmetic stays the same).
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2")]
    fn forward_avx2(&self, x: &[f64], b: usize, steps: usize, s: &mut Scratch, out: &mut [f64]) {
        self.forward_tiled::<16>(x, b, steps, s, out);
    }

    /// [`Net::forward`] compiled for AVX-512F (no FMA).
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx512f")]
    fn forward_avx512(&self, x: &[f64], b: usize, steps: usize, s: &mut Scratch, out: &mut [f64]) {
        self.forward_tiled::<32>(x, b, steps, s, out);
    }

    /// [`Net::forward`] for any x86-64 (SSE2) or other CPU.
    fn forward_portable(
        &self,
        x: &[f64],
        b: usize,
        steps: usize,
        s: &mut Scratch,
        out: &mut [f64],
    ) {
        self.forward_tiled::<8>(x, b, steps, s, out);
    }

    /// [`Net::forward`] with `T` windows to a register tile (as many as keep 8 sums
    /// in vector registers: 8 for SSE2, 16 for AVX2, 32 for AVX-512). The tile does
    /// not change any window's arithmetic.
    #[inline(always)]
    fn forward_tiled<const T: usize>(
        &self,
        x: &[f64],
        b: usize,
        steps: usize,
        s: &mut Scratch,
        out: &mut [f64],
    ) {
        let (hd, ni, g) = (self.hidden, self.inputs, self.cell.gates());
        debug_assert_eq!(x.len(), steps * ni * b);
        let Scratch { h, c, ih, hh } = s;
        h.clear();
        h.resize(hd * b, 0.0);
        c.clear();
        c.resize(hd * b, 0.0);
        ih.resize(g * hd * b, 0.0);
        hh.resize(g * hd * b, 0.0);
        for t in 0..steps {
            let xt = &x[t * ni * b..(t + 1) * ni * b];
            // Gate pre-activations: input part and recurrent part, kept apart as the
            // GRU needs them (and as candle sums them: (W x + b_ih) + (W h + b_hh)).
            affine_rows::<T>(ih, &self.b_ih, &self.w_ih, ni, xt, b);
            affine_rows::<T>(hh, &self.b_hh, &self.w_hh, hd, h, b);
            let gate =
                |gate: usize, unit: usize| (gate * hd + unit) * b..(gate * hd + unit + 1) * b;
            match self.cell {
                Cell::Lstm => {
                    for u in 0..hd {
                        let (ii, hi) = (&ih[gate(0, u)], &hh[gate(0, u)]);
                        let (i_f, h_f) = (&ih[gate(1, u)], &hh[gate(1, u)]);
                        let (ic, hc) = (&ih[gate(2, u)], &hh[gate(2, u)]);
                        let (io, ho) = (&ih[gate(3, u)], &hh[gate(3, u)]);
                        let cu = &mut c[u * b..(u + 1) * b];
                        let hu = &mut h[u * b..(u + 1) * b];
                        // c' = f c + i tanh(g) and h = o tanh(c'), with each product of
                        // a sigmoid and a tanh over one division:
                        // sigmoid(a) tanh(g) = sign(g) (1 - e^-2|g|) / ((1 + e^-a)
                        // (1 + e^-2|g|)). The denominators stay finite: e^-a is at
                        // most e^708 and the other factor at most 2.
                        for j in 0..b {
                            let ei = exp(-(ii[j] + hi[j]));
                            let ef = exp(-(i_f[j] + h_f[j]));
                            let eo = exp(-(io[j] + ho[j]));
                            let pg = ic[j] + hc[j];
                            let eg = exp(-2.0 * pg.abs());
                            let icg = ((1.0 - eg) / ((1.0 + ei) * (1.0 + eg))).copysign(pg);
                            let cn = cu[j] / (1.0 + ef) + icg;
                            cu[j] = cn;
                            let ec = exp(-2.0 * cn.abs());
                            hu[j] = ((1.0 - ec) / ((1.0 + eo) * (1.0 + ec))).copysign(cn);
                        }
                    }
                }
                Cell::Gru => {
                    for u in 0..hd {
                        let (ir, hr) = (&ih[gate(0, u)], &hh[gate(0, u)]);
                        let (iz, hz) = (&ih[gate(1, u)], &hh[gate(1, u)]);
                        let (inn, hn) = (&ih[gate(2, u)], &hh[gate(2, u)]);
                        let hu = &mut h[u * b..(u + 1) * b];
                        for j in 0..b {
                            let r = sigmoid(ir[j] + hr[j]);
                            let z = sigmoid(iz[j] + hz[j]);
                            let n = tanh(inn[j] + r * hn[j]);
                            hu[j] = z * hu[j] - (z - 1.0) * n;
                        }
                    }
                }
            }
        }
        let out = &mut out[..b];
        out.fill(self.b_out);
        for u in 0..hd {
            let w = self.w_out[u];
            for (o, &v) in out.iter_mut().zip(&h[u * b..(u + 1) * b]) {
                *o += w * v;
            }
        }
    }
}

/// An affine map for every window: row `r` of `acc` (`[rows][b]`) gets
/// `bias[r] + w[r][0] src[0][j] + w[r][1] src[1][j] + ...` for each window `j`, added
/// in that order (`w` is `[rows][n]`, `src` is `[n][b]`). Rows go in pairs, `T`
/// windows at a time, with the two rows' sums in registers (each source value is
/// loaded once for both, and 8 vectors of sums are in flight); the windows left over
/// go 8 at a time, then one at a time. The order of the additions for a window is
/// the same in each.
#[inline(always)]
fn affine_rows<const T: usize>(
    acc: &mut [f64],
    bias: &[f64],
    w: &[f64],
    n: usize,
    src: &[f64],
    b: usize,
) {
    let rows = bias.len();
    let mut row = 0;
    while row + 2 <= rows {
        let (a0, a1) = acc[row * b..(row + 2) * b].split_at_mut(b);
        let (w0, w1) = (&w[row * n..(row + 1) * n], &w[(row + 1) * n..(row + 2) * n]);
        let (b0, b1) = (bias[row], bias[row + 1]);
        let mut j0 = 0;
        while j0 + T <= b {
            let mut s0 = [b0; T];
            let mut s1 = [b1; T];
            for k in 0..n {
                let v = &src[k * b + j0..][..T];
                let (x0, x1) = (w0[k], w1[k]);
                for l in 0..T {
                    s0[l] += x0 * v[l];
                    s1[l] += x1 * v[l];
                }
            }
            a0[j0..j0 + T].copy_from_slice(&s0);
            a1[j0..j0 + T].copy_from_slice(&s1);
            j0 += T;
        }
        affine_rest(a0, b0, w0, src, b, j0);
        affine_rest(a1, b1, w1, src, b, j0);
        row += 2;
    }
    if row < rows {
        let r = row * b..(row + 1) * b;
        affine_rest(
            &mut acc[r],
            bias[row],
            &w[row * n..(row + 1) * n],
            src,
            b,
            0,
        );
    }
}

/// One row of [`affine_rows`] for the windows from `j0` on: 8 at a time, then one
/// at a time.
#[inline(always)]
fn affine_rest(acc: &mut [f64], bias: f64, w: &[f64], src: &[f64], b: usize, mut j0: usize) {
    const T: usize = 8;
    while j0 + T <= b {
        let mut a = [bias; T];
        for (k, &wk) in w.iter().enumerate() {
            let v = &src[k * b + j0..][..T];
            for l in 0..T {
                a[l] += wk * v[l];
            }
        }
        acc[j0..j0 + T].copy_from_slice(&a);
        j0 += T;
    }
    for j in j0..b {
        let mut a = bias;
        for (k, &wk) in w.iter().enumerate() {
            a += wk * src[k * b + j];
        }
        acc[j] = a;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    /// The vector paths the CPU offers give the bits of the portable one.
    #[test]
    fn every_instruction_set_gives_the_same_bits() {
        let mut rng = ChaCha8Rng::seed_from_u64(5);
        for cell in [Cell::Lstm, Cell::Gru] {
            let (inputs, hidden, steps, b) = (3, 7, 11, 77);
            let g = cell.gates() * hidden;
            let mut draw =
                |n: usize| -> Vec<f64> { (0..n).map(|_| rng.random_range(-1.5..1.5)).collect() };
            let net = Net {
                cell,
                inputs,
                hidden,
                w_ih: draw(g * inputs),
                w_hh: draw(g * hidden),
                b_ih: draw(g),
                b_hh: draw(g),
                w_out: draw(hidden),
                b_out: 0.25,
            };
            let x = draw(steps * inputs * b);
            let mut portable = vec![0.0; b];
            net.forward_portable(&x, b, steps, &mut Scratch::default(), &mut portable);
            let mut dispatched = vec![0.0; b];
            net.forward(&x, b, steps, &mut Scratch::default(), &mut dispatched);
            assert!(portable.iter().all(|v| v.is_finite()) && portable.iter().any(|v| *v != 0.25));
            for (p, d) in portable.iter().zip(&dispatched) {
                assert_eq!(p.to_bits(), d.to_bits(), "{cell:?}");
            }
            #[cfg(target_arch = "x86_64")]
            if std::arch::is_x86_feature_detected!("avx2") {
                let mut avx2 = vec![0.0; b];
                // SAFETY: AVX2 is there, checked just above.
                unsafe { net.forward_avx2(&x, b, steps, &mut Scratch::default(), &mut avx2) };
                for (p, d) in portable.iter().zip(&avx2) {
                    assert_eq!(p.to_bits(), d.to_bits(), "{cell:?}");
                }
            }
        }
    }
}
