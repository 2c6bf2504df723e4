//! `lstm` and `gru`: recurrent forecasters of a value `horizon` rows ahead from the
//! last `window` rows of chosen features, per asset, with one network pooled over
//! assets (seed 001's model).
//!
//! `fit` gathers every window the run allows (its rows, and its target, known by
//! the fit's decision time), normalizes it with a scheme fitted on those windows,
//! and trains on candle ([`train`]). Predicting runs the trained weights through
//! our own forward pass ([`kernel`]), whose arithmetic does not depend on how many
//! windows go through it at once, and the node carries each asset's last `window -
//! 1` rows from call to call: a batch run, any tiling and a one-bar stream give the
//! same bits, and a streaming step computes one window per asset, never the
//! history.

pub mod kernel;
pub mod train;
mod vmath;

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use kf_config::Section;
use kf_frame::Frame;

use super::{from_state, to_state};
use crate::column::{ColMode, ColumnKernel};
use crate::error::{DataflowError, Result};
use crate::node::{Memory, MissingFeature, Phase, RunContext, require};
use crate::nodes::{NodeTypes, register_column};
use kernel::{Cell, Net, Scratch};

/// What a window holding a missing value does in `fit`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum OnNan {
    /// Leave the window out (the run says how many were left out if none remain).
    #[default]
    Skip,
    /// Fail, naming the asset and the time of the first missing value.
    Error,
}

/// Parameters of `lstm` and `gru`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct RecurrentParams {
    /// The features of each time step.
    pub x_vars: Vec<String>,
    /// The feature to forecast, `horizon` rows ahead; the output is `{target}_hat`.
    pub target: String,
    /// Rows ahead of the window's last row.
    #[serde(default = "one")]
    pub horizon: usize,
    /// Rows per window.
    #[serde(default = "sixty")]
    pub window: usize,
    /// Hidden units.
    #[serde(default = "sixteen")]
    pub hidden: usize,
    /// Each window's values relative to its last row (`v / v_last - 1`, per
    /// feature), and the target relative to the target's value at that row: scale-free
    /// windows for prices of different levels. Then every value is z-scored with
    /// means and deviations fitted on the training windows (saved with the model).
    #[serde(default)]
    pub relative: bool,
    /// Passes over the training windows at most.
    #[serde(default = "ten")]
    pub epochs: usize,
    /// Windows per minibatch.
    #[serde(default = "sixty_four")]
    pub batch_size: usize,
    /// Adam's step size.
    #[serde(default = "lr")]
    pub learning_rate: f64,
    /// Epochs without a better validation loss before stopping.
    #[serde(default = "three")]
    pub patience: usize,
    /// The share of the training windows, the latest, held out for early stopping.
    #[serde(default = "fifth")]
    pub validation: f64,
    /// Largest global gradient norm of a minibatch (0: no clipping).
    #[serde(default = "one_f")]
    pub clip: f64,
    /// Seeds the initial weights and the shuffles: the same seed gives the same
    /// weights on the same machine and thread count.
    #[serde(default)]
    pub seed: u64,
    /// Data-parallel replicas: each minibatch's gradient is computed in this many
    /// shards on threads and averaged in shard order.
    #[serde(default = "one")]
    pub replicas: usize,
    /// Windows with a missing value in `fit`.
    #[serde(default)]
    pub on_nan: OnNan,
    /// Where training runs: `"cpu"`, or `"cuda"` / `"cuda:N"` for a GPU (a build with
    /// the `cuda` feature, which needs the CUDA toolkit). Predicting always runs on
    /// the CPU, through the bit-stable kernel; weights trained on a GPU differ from
    /// the CPU's in the last bits of every sum.
    #[serde(default = "cpu")]
    pub device: String,
}

fn cpu() -> String {
    "cpu".into()
}

/// Parses `device`: `Some(None)` for the CPU, `Some(Some(n))` for CUDA device `n`,
/// `None` when it is neither.
fn parse_device(d: &str) -> Option<Option<usize>> {
    match d {
        "cpu" => Some(None),
        "cuda" => Some(Some(0)),
        _ => d.strip_prefix("cuda:")?.parse().ok().map(Some),
    }
}

fn one() -> usize {
    1
}
fn sixty() -> usize {
    60
}
fn sixteen() -> usize {
    16
}
fn ten() -> usize {
    10
}
fn sixty_four() -> usize {
    64
}
fn three() -> usize {
    3
}
fn lr() -> f64 {
    1e-3
}
fn fifth() -> f64 {
    0.2
}
fn one_f() -> f64 {
    1.0
}

/// What a fit learned: the network and the normalization.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RecurrentState {
    /// The network.
    pub net: Net,
    /// Per input feature: mean and deviation of the (relative) values.
    pub x_mean: Vec<f64>,
    /// Deviations.
    pub x_std: Vec<f64>,
    /// Mean and deviation of the (relative) target.
    pub y_mean: f64,
    /// Deviation of the target.
    pub y_std: f64,
    /// Windows trained on, and the losses (normalized units).
    pub windows: usize,
    /// Training loss at the kept epoch.
    pub train_loss: f64,
    /// Validation loss at the kept epoch (NaN without).
    pub validation_loss: f64,
}

/// The `lstm`/`gru` kernel.
#[derive(Debug)]
pub struct Recurrent {
    kind: &'static str,
    cell: Cell,
    params: RecurrentParams,
    state: Option<RecurrentState>,
    /// Per asset, its last rows (`window - 1` at most), row-major over `x_vars`.
    carry: BTreeMap<String, Vec<f64>>,
    scratch: Scratch,
}

impl Recurrent {
    /// A kernel of `cell` with `params`.
    pub fn new(kind: &'static str, cell: Cell, params: RecurrentParams) -> Recurrent {
        Recurrent {
            kind,
            cell,
            params,
            state: None,
            carry: BTreeMap::new(),
            scratch: Scratch::default(),
        }
    }

    /// The input's `x_vars` columns, in order, and its target column.
    fn columns<'a>(&self, input: &'a Frame) -> Result<(Vec<&'a [f64]>, &'a [f64])> {
        let xs = self
            .params
            .x_vars
            .iter()
            .map(|v| input.feature(v).map(|x| x.values()))
            .collect::<kf_frame::Result<_>>()?;
        Ok((xs, input.feature(&self.params.target)?.values()))
    }

    fn out_name(&self) -> String {
        format!("{}_hat", self.params.target)
    }

    /// The window of asset `a` ending at input row `r`, written relative and
    /// unnormalized into `w` (`window x inputs`); false when it is incomplete or
    /// holds a missing value.
    fn window_at(
        &self,
        hist: &[f64],
        xs: &[&[f64]],
        n: usize,
        a: usize,
        r: usize,
        w: &mut [f64],
    ) -> bool {
        let (win, f) = (self.params.window, xs.len());
        let have = hist.len() / f + r + 1;
        if have < win {
            return false;
        }
        let first = have - win;
        for t in 0..win {
            let row = first + t;
            for k in 0..f {
                let v = if row < hist.len() / f {
                    hist[row * f + k]
                } else {
                    xs[k][(row - hist.len() / f) * n + a]
                };
                if !v.is_finite() {
                    return false;
                }
                w[t * f + k] = v;
            }
        }
        if self.params.relative {
            for k in 0..f {
                let last = w[(win - 1) * f + k];
                if last == 0.0 {
                    return false;
                }
                for t in 0..win {
                    w[t * f + k] = w[t * f + k] / last - 1.0;
                }
            }
        }
        true
    }

    fn fit(&mut self, ctx: &RunContext, input: &Frame) -> Result<()> {
        let p = &self.params;
        let (n, rows, f, win) = (input.n_assets(), input.n_rows(), p.x_vars.len(), p.window);
        if rows < win {
            return Err(DataflowError::invalid(format!(
                "`{}` cannot fit: the fit has {rows} rows, fewer than its window of {win}; \
                 fit on more rows or shorten `window`",
                self.kind
            )));
        }
        let (xs, target) = self.columns(input)?;
        let (ts, kt) = (input.end_ts(), input.knowledge_ts());
        let ahead = p.horizon.saturating_add(ctx.horizon_of(&p.target));
        let mut raw = train::Samples {
            steps: win,
            inputs: f,
            ..Default::default()
        };
        let mut w = vec![0.0; win * f];
        let (mut nan_windows, mut considered) = (0usize, 0usize);
        for r in (win - 1)..rows.saturating_sub(p.horizon) {
            if !ctx.learns_from(ts, kt, r, p.horizon, ahead) {
                continue;
            }
            for a in 0..n {
                let y = target[(r + p.horizon) * n + a];
                let base = target[r * n + a];
                if !y.is_finite() || (p.relative && !(base.is_finite() && base != 0.0)) {
                    continue;
                }
                considered += 1;
                if !self.window_at(&[], &xs, n, a, r, &mut w) {
                    nan_windows += 1;
                    if p.on_nan == OnNan::Error {
                        return Err(DataflowError::invalid(format!(
                            "`{}`: the window of asset `{}` ending {} holds a missing value \
                             (or a zero, with `relative`); clean the input or set on_nan = \
                             \"skip\"",
                            self.kind,
                            input.assets()[a],
                            kf_frame::Timestamp(ts[r])
                        )));
                    }
                    continue;
                }
                raw.x.extend_from_slice(&w);
                raw.y.push(if p.relative { y / base - 1.0 } else { y });
            }
        }
        if raw.is_empty() {
            return Err(DataflowError::invalid(format!(
                "`{}` has an empty training set: of {considered} windows with a known target, \
                 {nan_windows} hold missing values, and none is left; check `x_vars`, `target` \
                 and the fit's span",
                self.kind
            )));
        }
        // The normalization, fitted on the training windows.
        let count = raw.len() * win;
        let mut x_mean = vec![0.0; f];
        let mut x_std = vec![0.0; f];
        for (i, v) in raw.x.iter().enumerate() {
            x_mean[i % f] += v;
        }
        x_mean.iter_mut().for_each(|m| *m /= count as f64);
        for (i, v) in raw.x.iter().enumerate() {
            let d = v - x_mean[i % f];
            x_std[i % f] += d * d;
        }
        for s in &mut x_std {
            *s = (*s / count as f64).sqrt();
            if s.is_nan() || *s <= 1e-12 {
                *s = 1.0;
            }
        }
        let y_mean = raw.y.iter().sum::<f64>() / raw.len() as f64;
        let mut y_std = (raw
            .y
            .iter()
            .map(|y| (y - y_mean) * (y - y_mean))
            .sum::<f64>()
            / raw.len() as f64)
            .sqrt();
        if y_std.is_nan() || y_std <= 1e-12 {
            y_std = 1.0;
        }
        for (i, v) in raw.x.iter_mut().enumerate() {
            *v = (*v - x_mean[i % f]) / x_std[i % f];
        }
        for y in &mut raw.y {
            *y = (*y - y_mean) / y_std;
        }
        let settings = train::TrainSettings {
            cell: self.cell,
            hidden: p.hidden,
            epochs: p.epochs,
            batch_size: p.batch_size,
            learning_rate: p.learning_rate,
            patience: p.patience,
            validation: p.validation,
            clip: p.clip,
            seed: p.seed,
            replicas: p.replicas,
            cuda: parse_device(&p.device).flatten(),
        };
        let trained = train::train(&raw, &settings).map_err(|e| {
            DataflowError::invalid(format!("`{}` could not be trained: {e}", self.kind))
        })?;
        self.state = Some(RecurrentState {
            net: trained.net,
            x_mean,
            x_std,
            y_mean,
            y_std,
            windows: raw.len(),
            train_loss: trained.train_loss,
            validation_loss: trained.validation_loss,
        });
        Ok(())
    }

    /// Forecasts for every row of `input`, continuing from the carried rows.
    fn predict(&mut self, input: &Frame) -> Result<Vec<f64>> {
        let Some(st) = self.state.as_ref() else {
            return Err(DataflowError::NotFitted);
        };
        let p = &self.params;
        let (n, rows, f, win) = (input.n_assets(), input.n_rows(), p.x_vars.len(), p.window);
        let (xs, target) = self.columns(input)?;
        let mut out = vec![f64::NAN; rows * n];
        let empty = Vec::new();
        // Windows go through the kernel in chunks, laid out [step][feature][window]:
        // at most 1024 windows, and no wider than the call (a streaming step's chunk
        // is its assets, filled in place).
        let width = (rows * n).clamp(1, 1024);
        let mut cells: Vec<(usize, f64)> = Vec::with_capacity(width);
        let mut soa = vec![0.0; win * f * width];
        let mut w = vec![0.0; win * f];
        let mut res = vec![0.0; width];
        let mut flush = |cells: &mut Vec<(usize, f64)>, soa: &mut Vec<f64>, this: &mut Scratch| {
            let b = cells.len();
            if b == 0 {
                return;
            }
            if b == width {
                st.net.forward(soa, b, win, this, &mut res[..b]);
            } else {
                // Compact a partial chunk's columns to width b: the kernel's layout.
                let mut packed = vec![0.0; win * f * b];
                for i in 0..win * f {
                    packed[i * b..(i + 1) * b].copy_from_slice(&soa[i * width..i * width + b]);
                }
                st.net.forward(&packed, b, win, this, &mut res[..b]);
            }
            for (j, &(cell, base)) in cells.iter().enumerate() {
                let y = res[j] * st.y_std + st.y_mean;
                out[cell] = if p.relative { base * (1.0 + y) } else { y };
            }
            cells.clear();
        };
        let mut scratch = std::mem::take(&mut self.scratch);
        for r in 0..rows {
            for a in 0..n {
                let hist = self.carry.get(&input.assets()[a]).unwrap_or(&empty);
                let base = target[r * n + a];
                if p.relative && !(base.is_finite() && base != 0.0) {
                    continue;
                }
                if !self.window_at(hist, &xs, n, a, r, &mut w) {
                    continue;
                }
                let j = cells.len();
                for (i, v) in w.iter().enumerate() {
                    let k = i % f;
                    soa[i * width + j] = (v - st.x_mean[k]) / st.x_std[k];
                }
                cells.push((r * n + a, base));
                if cells.len() == width {
                    flush(&mut cells, &mut soa, &mut scratch);
                }
            }
        }
        flush(&mut cells, &mut soa, &mut scratch);
        self.scratch = scratch;
        // Carry each asset's last `window - 1` rows into the next call.
        let keep = win - 1;
        for a in 0..n {
            let h = self.carry.entry(input.assets()[a].clone()).or_default();
            for r in rows.saturating_sub(keep)..rows {
                for x in &xs {
                    h.push(x[r * n + a]);
                }
            }
            let len = h.len() / f.max(1);
            if len > keep {
                h.drain(..(len - keep) * f);
            }
        }
        Ok(out)
    }
}

impl ColumnKernel for Recurrent {
    fn kind(&self) -> &str {
        self.kind
    }
    fn output_names(
        &self,
        features: &[String],
        _: &[usize],
    ) -> std::result::Result<Vec<String>, MissingFeature> {
        require(features, "x_vars", &self.params.x_vars)?;
        require(features, "target", std::iter::once(&self.params.target))?;
        Ok(vec![self.out_name()])
    }
    /// 2: the forward pass's own exp, sigmoid and tanh (vmath), and the losses of
    /// early stopping through it.
    fn version(&self) -> u32 {
        2
    }
    fn memory(&self) -> Memory {
        Memory::Carried
    }
    fn learns(&self) -> bool {
        true
    }
    fn fit_horizon(&self) -> usize {
        self.params.horizon
    }
    fn evaluation(&self) -> Option<crate::metrics::Evaluation> {
        Some(crate::metrics::Evaluation::Regressor {
            label: self.params.target.clone(),
            prediction: self.out_name(),
            steps_ahead: self.params.horizon,
        })
    }
    fn fit_only_inputs(&self) -> Vec<String> {
        // The target is read at the window's last row when relative (the base of
        // the forecast), so then it is read in predict too.
        if self.params.relative || self.params.x_vars.contains(&self.params.target) {
            Vec::new()
        } else {
            vec![self.params.target.clone()]
        }
    }
    fn compute(
        &mut self,
        ctx: &RunContext,
        input: &Frame,
        _: &[usize],
    ) -> Result<Vec<(String, Vec<f64>)>> {
        if ctx.phase == Phase::Fit {
            self.fit(ctx, input)?;
            self.carry.clear();
        }
        Ok(vec![(self.out_name(), self.predict(input)?)])
    }
    fn reset(&mut self) {
        self.carry.clear();
    }
    fn save_state(&self) -> Result<Vec<u8>> {
        match &self.state {
            Some(s) => to_state(s),
            None => Ok(Vec::new()),
        }
    }
    fn load_state(&mut self, state: &[u8]) -> Result<()> {
        if state.is_empty() {
            self.state = None;
            return Ok(());
        }
        let s: RecurrentState = from_state(state, self.kind)?;
        if !s.net.well_formed()
            || s.net.cell != self.cell
            || s.net.inputs != self.params.x_vars.len()
            || s.net.hidden != self.params.hidden
            || s.x_mean.len() != self.params.x_vars.len()
            || s.x_std.len() != self.params.x_vars.len()
        {
            return Err(DataflowError::State(format!(
                "the saved network does not fit this `{}`: {} inputs, {} hidden units, a {:?} \
                 cell, saved as {} inputs, {} hidden units, a {:?} cell",
                self.kind,
                self.params.x_vars.len(),
                self.params.hidden,
                self.cell,
                s.net.inputs,
                s.net.hidden,
                s.net.cell
            )));
        }
        self.state = Some(s);
        Ok(())
    }
}

fn validate(s: &Section<'_>, p: &RecurrentParams) -> kf_config::Result<()> {
    let positive = [
        ("window", p.window),
        ("hidden", p.hidden),
        ("epochs", p.epochs),
        ("batch_size", p.batch_size),
        ("horizon", p.horizon),
        ("replicas", p.replicas),
    ];
    for (key, v) in positive {
        if v == 0 {
            return Err(s.invalid(key, "must be at least 1"));
        }
    }
    if p.x_vars.is_empty() {
        return Err(s.invalid("x_vars", "name at least one feature"));
    }
    if !(p.learning_rate > 0.0 && p.learning_rate.is_finite()) {
        return Err(s.invalid("learning_rate", "must be a positive number"));
    }
    if !(0.0..0.9).contains(&p.validation) {
        return Err(s.invalid("validation", "must be in [0, 0.9)"));
    }
    if !(p.clip >= 0.0 && p.clip.is_finite()) {
        return Err(s.invalid("clip", "must be 0 (no clipping) or a positive number"));
    }
    match parse_device(&p.device) {
        None => {
            return Err(s.invalid(
                "device",
                format!(
                    "`{}` is not a device: use \"cpu\", \"cuda\" or \"cuda:N\"",
                    p.device
                ),
            ));
        }
        Some(Some(_)) if !cfg!(feature = "cuda") => {
            return Err(s.invalid(
                "device",
                "this build has no CUDA support: rebuild with `--features cuda` (needs the \
                 CUDA toolkit and a GPU), or set device = \"cpu\"",
            ));
        }
        _ => {}
    }
    Ok(())
}

/// Registers `lstm` and `gru`.
pub(super) fn register(r: &mut NodeTypes) -> kf_config::Result<()> {
    for (name, cell) in [("lstm", Cell::Lstm), ("gru", Cell::Gru)] {
        register_column(
            r,
            name,
            "a recurrent forecaster of `target` `horizon` rows ahead from the last `window` \
             rows of `x_vars`, trained on candle (Adam, early stopping), predicting through a \
             kernel whose bits do not depend on tiling",
            ColMode::Append,
            move |s: &Section<'_>, p: RecurrentParams| {
                validate(s, &p)?;
                Ok(Recurrent::new(name, cell, p))
            },
        )?;
        if let Some(d) = r.doc_mut(name) {
            d.example =
                "x_vars = [\"close\", \"volume\"]\ntarget = \"close\"\nhorizon = 5\nwindow = 60"
                    .into();
        }
    }
    Ok(())
}
