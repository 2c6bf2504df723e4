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

fn sigmoid(x: f64) -> f64 {
    1.0 / (1.0 + (-x).exp())
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
    pub fn forward(&self, x: &[f64], b: usize, steps: usize, s: &mut Scratch, out: &mut [f64]) {
        let (hd, ni, g) = (self.hidden, self.inputs, self.cell.gates());
        debug_assert_eq!(x.len(), steps * ni * b);
        s.h.clear();
        s.h.resize(hd * b, 0.0);
        s.c.clear();
        s.c.resize(hd * b, 0.0);
        s.ih.resize(g * hd * b, 0.0);
        s.hh.resize(g * hd * b, 0.0);
        for t in 0..steps {
            let xt = &x[t * ni * b..(t + 1) * ni * b];
            // Gate pre-activations: input part and recurrent part, kept apart as the
            // GRU needs them (and as candle sums them: (W x + b_ih) + (W h + b_hh)).
            for row in 0..g * hd {
                let ih = &mut s.ih[row * b..(row + 1) * b];
                ih.fill(self.b_ih[row]);
                for k in 0..ni {
                    let w = self.w_ih[row * ni + k];
                    let xk = &xt[k * b..(k + 1) * b];
                    for (a, &v) in ih.iter_mut().zip(xk) {
                        *a += w * v;
                    }
                }
                let hh = &mut s.hh[row * b..(row + 1) * b];
                hh.fill(self.b_hh[row]);
                for k in 0..hd {
                    let w = self.w_hh[row * hd + k];
                    let hk = &s.h[k * b..(k + 1) * b];
                    for (a, &v) in hh.iter_mut().zip(hk) {
                        *a += w * v;
                    }
                }
            }
            let block = |gate: usize, unit: usize| (gate * hd + unit) * b;
            match self.cell {
                Cell::Lstm => {
                    for u in 0..hd {
                        for j in 0..b {
                            let pre = |gate| s.ih[block(gate, u) + j] + s.hh[block(gate, u) + j];
                            let i = sigmoid(pre(0));
                            let f = sigmoid(pre(1));
                            let cg = pre(2).tanh();
                            let o = sigmoid(pre(3));
                            let c = f * s.c[u * b + j] + i * cg;
                            s.c[u * b + j] = c;
                            s.h[u * b + j] = o * c.tanh();
                        }
                    }
                }
                Cell::Gru => {
                    for u in 0..hd {
                        for j in 0..b {
                            let r = sigmoid(s.ih[block(0, u) + j] + s.hh[block(0, u) + j]);
                            let z = sigmoid(s.ih[block(1, u) + j] + s.hh[block(1, u) + j]);
                            let n = (s.ih[block(2, u) + j] + r * s.hh[block(2, u) + j]).tanh();
                            let h = s.h[u * b + j];
                            s.h[u * b + j] = z * h - (z - 1.0) * n;
                        }
                    }
                }
            }
        }
        for (j, o) in out.iter_mut().enumerate().take(b) {
            let mut acc = self.b_out;
            for u in 0..hd {
                acc += self.w_out[u] * s.h[u * b + j];
            }
            *o = acc;
        }
    }
}
