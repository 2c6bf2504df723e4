//! Models with `fit` and `predict`: linear regression / ridge (per asset or pooled,
//! in [`regression`]), an EWMA volatility model that emits vol-adjusted returns, and
//! an SMA model that learns its `tau`, and gradient-boosted trees ([`Gbt`]: regressor,
//! binary or multi-class classifier).

mod gbt;
#[cfg(feature = "nn")]
pub mod recurrent;
mod regression;

pub use gbt::{Gbt, GbtParams, GbtState, Objective};
pub use regression::{LinReg, LinRegParams, LinRegState, solve};

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use kf_config::Section;
use kf_frame::Frame;

use crate::column::{AssetStates, ColMode, ColumnKernel, NanMode, Ring, scan, suffixed};
use crate::error::{DataflowError, Result};
use crate::node::{Memory, MissingFeature, Phase, RunContext};
use crate::nodes::smooth::{EmaState, ema_step};
use crate::nodes::{NodeTypes, register_column};

pub(super) fn to_state<T: Serialize>(v: &T) -> Result<Vec<u8>> {
    postcard::to_stdvec(v).map_err(|e| DataflowError::State(e.to_string()))
}

pub(super) fn from_state<T: for<'de> Deserialize<'de>>(b: &[u8], what: &str) -> Result<T> {
    postcard::from_bytes(b)
        .map_err(|e| DataflowError::State(format!("not a saved {what} state: {e}")))
}

/// Parameters of `volatility_model`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(default)]
pub struct VolParams {
    /// EMA time constant (rows) of `|x|^p`.
    pub tau: f64,
    /// The moment `p`: vol = `ema(|x|^p)^(1/p)`.
    pub p_moment: f64,
    /// `vol_adj_t = x_t / vol_{t - steps_ahead}`: the vol known `steps_ahead` values before.
    pub steps_ahead: usize,
    /// `drop`: each asset's present values only.
    pub nan_mode: NanMode,
}

impl Default for VolParams {
    fn default() -> Self {
        VolParams {
            tau: 10.0,
            p_moment: 2.0,
            steps_ahead: 2,
            nan_mode: NanMode::Drop,
        }
    }
}

/// The `volatility_model` kernel: for each column, `{col}.vol` and `{col}.vol_adj`.
#[derive(Clone, Debug)]
pub struct VolModel {
    params: VolParams,
    states: AssetStates<(EmaState, Ring)>,
}

impl VolModel {
    /// A volatility model.
    pub fn new(params: VolParams) -> VolModel {
        VolModel {
            params,
            states: AssetStates::default(),
        }
    }
}

impl ColumnKernel for VolModel {
    fn kind(&self) -> &str {
        "volatility_model"
    }
    fn output_names(
        &self,
        features: &[String],
        cols: &[usize],
    ) -> std::result::Result<Vec<String>, MissingFeature> {
        Ok(cols
            .iter()
            .flat_map(|&c| {
                [
                    format!("{}.vol", features[c]),
                    format!("{}.vol_adj", features[c]),
                ]
            })
            .collect())
    }
    fn memory(&self) -> Memory {
        Memory::Carried
    }
    fn compute(
        &mut self,
        _: &RunContext,
        input: &Frame,
        cols: &[usize],
    ) -> Result<Vec<(String, Vec<f64>)>> {
        let p = self.params.clone();
        let decay = (-1.0 / p.tau).exp();
        let init = (
            EmaState {
                levels: vec![(0.0, 0.0)],
                count: 0,
            },
            Ring::new(p.steps_ahead + 1),
        );
        let mut out = Vec::with_capacity(2 * cols.len());
        for (slot, &c) in cols.iter().enumerate() {
            let st = self.states.get(slot, input.n_assets(), init.clone())?;
            let values = input.feature_at(c).values();
            let mut vol = Vec::with_capacity(values.len());
            let mut adj = Vec::with_capacity(values.len());
            for row in values.chunks_exact(input.n_assets().max(1)) {
                for (&x, (ema, ring)) in row.iter().zip(st.iter_mut()) {
                    if p.nan_mode == NanMode::Drop && x.is_nan() {
                        vol.push(f64::NAN);
                        adj.push(f64::NAN);
                        continue;
                    }
                    let v = ema_step(ema, decay, x.abs().powf(p.p_moment)).powf(1.0 / p.p_moment);
                    ring.push(v);
                    let a = x / ring.back(p.steps_ahead).unwrap_or(f64::NAN);
                    vol.push(v);
                    adj.push(if a.is_finite() { a } else { f64::NAN });
                }
            }
            let name = &input.features()[c];
            out.push((format!("{name}.vol"), vol));
            out.push((format!("{name}.vol_adj"), adj));
        }
        Ok(out)
    }
    fn reset(&mut self) {
        self.states.clear();
    }
    crate::column::carry_field!(states);
}

/// Parameters of `sma_model`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(default)]
pub struct SmaParams {
    /// Predict the column this many rows ahead.
    pub steps_ahead: usize,
    /// The smallest and largest `tau` searched.
    pub tau_range: (f64, f64),
    /// A fixed `tau` (no learning) when set.
    pub tau: Option<f64>,
}

impl Default for SmaParams {
    fn default() -> Self {
        SmaParams {
            steps_ahead: 1,
            tau_range: (1.0, 1000.0),
            tau: None,
        }
    }
}

/// The `sma_model` kernel: predicts `x_{t+k}` by the EMA of `x` up to `t`, with the
/// `tau` that minimizes the in-sample squared error (a log-spaced grid, then a
/// golden-section search between the best point's neighbours); outputs `{col}_hat`.
#[derive(Clone, Debug)]
pub struct SmaModel {
    params: SmaParams,
    tau: Option<f64>,
    states: AssetStates<EmaState>,
}

impl SmaModel {
    /// An SMA model.
    pub fn new(params: SmaParams) -> SmaModel {
        let tau = params.tau;
        SmaModel {
            params,
            tau,
            states: AssetStates::default(),
        }
    }

    /// The learned (or fixed) `tau`.
    pub fn tau(&self) -> Option<f64> {
        self.tau
    }

    fn sse(&self, ctx: &RunContext, input: &Frame, cols: &[usize], tau: f64) -> f64 {
        let decay = (-1.0 / tau).exp();
        let n = input.n_assets();
        let k = self.params.steps_ahead;
        let ts = input.end_ts();
        let mut total = 0.0;
        for &c in cols {
            let x = input.feature_at(c).values();
            let mut st = vec![
                EmaState {
                    levels: vec![(0.0, 0.0)],
                    count: 0
                };
                n
            ];
            let pred = scan(x, &mut st, NanMode::Drop, |s, v| ema_step(s, decay, v));
            let ahead = k.saturating_add(ctx.horizon_of(&input.features()[c]));
            for r in 0..input.n_rows().saturating_sub(k) {
                if !(ctx.trains_on(ts[r])
                    && ctx.trains_on(ts[r + k])
                    && (ctx.decision.is_none()
                        || ctx.known_by_decision(input.knowledge_ts(), r, ahead)))
                {
                    continue;
                }
                for a in 0..n {
                    let e = pred[r * n + a] - x[(r + k) * n + a];
                    if !e.is_nan() {
                        total += e * e;
                    }
                }
            }
        }
        total
    }

    fn learn(&mut self, ctx: &RunContext, input: &Frame, cols: &[usize]) -> f64 {
        let (lo, hi) = self.params.tau_range;
        let grid: Vec<f64> = (0..=24)
            .map(|i| lo * (hi / lo).powf(i as f64 / 24.0))
            .collect();
        let errs: Vec<f64> = grid
            .iter()
            .map(|&t| self.sse(ctx, input, cols, t))
            .collect();
        let best = (0..grid.len())
            .min_by(|&i, &j| errs[i].total_cmp(&errs[j]))
            .unwrap_or(0);
        let (mut a, mut b) = (
            grid[best.saturating_sub(1)].ln(),
            grid[(best + 1).min(grid.len() - 1)].ln(),
        );
        let g = (5f64.sqrt() - 1.0) / 2.0;
        for _ in 0..40 {
            let (c, d) = (b - g * (b - a), a + g * (b - a));
            if self.sse(ctx, input, cols, c.exp()) <= self.sse(ctx, input, cols, d.exp()) {
                b = d;
            } else {
                a = c;
            }
        }
        let t = ((a + b) / 2.0).exp();
        if self.sse(ctx, input, cols, t) <= errs[best] {
            t
        } else {
            grid[best]
        }
    }
}

impl ColumnKernel for SmaModel {
    fn kind(&self) -> &str {
        "sma_model"
    }
    fn output_names(
        &self,
        features: &[String],
        cols: &[usize],
    ) -> std::result::Result<Vec<String>, MissingFeature> {
        Ok(suffixed(features, cols, "_hat"))
    }
    fn memory(&self) -> Memory {
        Memory::Carried
    }
    fn learns(&self) -> bool {
        self.params.tau.is_none()
    }
    fn fit_horizon(&self) -> usize {
        if self.learns() {
            self.params.steps_ahead
        } else {
            0
        }
    }
    fn compute(
        &mut self,
        ctx: &RunContext,
        input: &Frame,
        cols: &[usize],
    ) -> Result<Vec<(String, Vec<f64>)>> {
        if ctx.phase == Phase::Fit && self.params.tau.is_none() {
            self.tau = Some(self.learn(ctx, input, cols));
        }
        let tau = self.tau.ok_or(DataflowError::NotFitted)?;
        let decay = (-1.0 / tau).exp();
        let mut out = Vec::with_capacity(cols.len());
        for (slot, &c) in cols.iter().enumerate() {
            let st = self.states.get(
                slot,
                input.n_assets(),
                EmaState {
                    levels: vec![(0.0, 0.0)],
                    count: 0,
                },
            )?;
            let v = scan(input.feature_at(c).values(), st, NanMode::Drop, |s, x| {
                ema_step(s, decay, x)
            });
            out.push((format!("{}_hat", input.features()[c]), v));
        }
        Ok(out)
    }
    fn reset(&mut self) {
        self.states.clear();
    }
    crate::column::carry_field!(states);
    fn save_state(&self) -> Result<Vec<u8>> {
        match self.tau {
            Some(t) if self.params.tau.is_none() => to_state(&t),
            _ => Ok(Vec::new()),
        }
    }
    fn load_state(&mut self, state: &[u8]) -> Result<()> {
        if state.is_empty() {
            self.tau = self.params.tau;
            return Ok(());
        }
        let t: f64 = from_state(state, "sma_model")?;
        if !(t > 0.0 && t.is_finite()) {
            return Err(DataflowError::State(format!(
                "a saved tau must be positive, not {t}"
            )));
        }
        self.tau = Some(t);
        Ok(())
    }
}

pub(crate) fn register(r: &mut NodeTypes) -> kf_config::Result<()> {
    register_column(
        r,
        "linear_regression",
        "ordinary or ridge least squares of y_vars on x_vars, pooled over assets or per asset",
        ColMode::Append,
        |s: &Section<'_>, p: LinRegParams| {
            if p.x_vars.is_empty() {
                return Err(s.invalid("x_vars", "give at least one regressor"));
            }
            if p.y_vars.is_empty() {
                return Err(s.invalid("y_vars", "give at least one target"));
            }
            if !(p.alpha >= 0.0 && p.alpha.is_finite()) {
                return Err(s.invalid("alpha", "must be a finite number >= 0"));
            }
            Ok(LinReg::new(p))
        },
    )?;
    register_column(
        r,
        "volatility_model",
        "an EMA volatility of each feature and the feature divided by it",
        ColMode::Append,
        |s: &Section<'_>, p: VolParams| {
            if !(p.tau > 0.0 && p.tau.is_finite()) {
                return Err(s.invalid("tau", "must be a positive number of rows"));
            }
            if !(p.p_moment > 0.0 && p.p_moment.is_finite()) {
                return Err(s.invalid("p_moment", "must be positive"));
            }
            Ok(VolModel::new(p))
        },
    )?;
    register_column(
        r,
        "sma_model",
        "an EMA forecast whose time constant is learned in fit (or given)",
        ColMode::Append,
        |s: &Section<'_>, p: SmaParams| {
            let (lo, hi) = p.tau_range;
            if !(lo > 0.0 && hi > lo && hi.is_finite()) {
                return Err(s.invalid("tau_range", "must be [low, high] with 0 < low < high"));
            }
            if let Some(t) = p.tau
                && !(t > 0.0 && t.is_finite())
            {
                return Err(s.invalid("tau", "must be positive"));
            }
            Ok(SmaModel::new(p))
        },
    )?;
    register_column(
        r,
        "gbt",
        "gradient-boosted trees of y_var on x_vars: regressor, binary or multi-class classifier \
         (one probability per class), pooled over assets or per asset",
        ColMode::Append,
        |s: &Section<'_>, p: GbtParams| {
            p.validate().map_err(|(key, msg)| s.invalid(key, msg))?;
            Ok(Gbt::new(p))
        },
    )?;
    if let Some(d) = r.doc_mut("gbt") {
        d.example = "x_vars = [\"close.ret_0\", \"close.rsi\"]\ny_var = \"direction\"\n\
                     objective = \"multiclass\"\nclasses = [-1.0, 0.0, 1.0]"
            .into();
    }
    #[cfg(feature = "nn")]
    recurrent::register(r)?;
    if let Some(d) = r.doc_mut("linear_regression") {
        d.example = "x_vars = [\"open\"]\ny_vars = [\"close\"]".into();
    }
    Ok(())
}
