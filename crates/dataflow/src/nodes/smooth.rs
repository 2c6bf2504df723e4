//! Smoothing and moments: EMA (`tau`, `min_periods`, `depth`) and rolling statistics
//! over a window of rows or values.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use kf_config::Section;
use kf_frame::{Frame, View};

use crate::column::{AssetStates, ColMode, ColumnKernel, NanMode, Ring, scan, scan_into, suffixed};
use crate::error::Result;
use crate::node::{Memory, MissingFeature, RunContext};
use crate::nodes::{NodeTypes, register_column};

/// Parameters of `ema`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(default)]
pub struct EmaParams {
    /// Time constant in rows: `com = 1 / (exp(1 / tau) - 1)`, `alpha = 1 - exp(-1 / tau)`.
    pub tau: f64,
    /// Outputs before this many values have been seen are NaN.
    pub min_periods: usize,
    /// How many times the EMA is applied to its own output (1 = plain EMA).
    pub depth: usize,
    /// Appended to each input name.
    pub suffix: String,
}

impl Default for EmaParams {
    fn default() -> Self {
        EmaParams {
            tau: 10.0,
            min_periods: 0,
            depth: 1,
            suffix: ".ema".into(),
        }
    }
}

/// The carried state of one asset's (iterated) EMA.
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct EmaState {
    /// Per depth level: weighted sum and sum of weights (pandas `adjust=True`).
    pub levels: Vec<(f64, f64)>,
    /// Values seen.
    pub count: usize,
}

/// One EMA step over `levels` (each the weighted mean form of `adjust=True`):
/// `num = x + (1 - alpha) num`, `den = 1 + (1 - alpha) den`, `y = num / den`.
pub fn ema_step(state: &mut EmaState, decay: f64, x: f64) -> f64 {
    let mut y = x;
    for (num, den) in &mut state.levels {
        *num = y + decay * *num;
        *den = 1.0 + decay * *den;
        y = *num / *den;
    }
    state.count += 1;
    y
}

/// The `ema` kernel. NaN inputs give NaN and do not advance the state.
#[derive(Clone, Debug)]
pub struct Ema {
    params: EmaParams,
    states: AssetStates<EmaState>,
}

impl Ema {
    /// An EMA kernel; `tau > 0` and `depth >= 1` are the caller's to check.
    pub fn new(params: EmaParams) -> Ema {
        Ema {
            params,
            states: AssetStates::default(),
        }
    }
}

impl ColumnKernel for Ema {
    fn kind(&self) -> &str {
        "ema"
    }
    fn output_names(
        &self,
        features: &[String],
        cols: &[usize],
    ) -> std::result::Result<Vec<String>, MissingFeature> {
        Ok(suffixed(features, cols, &self.params.suffix))
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
        let decay = (-1.0 / self.params.tau).exp();
        let init = EmaState {
            levels: vec![(0.0, 0.0); self.params.depth],
            count: 0,
        };
        let min = self.params.min_periods;
        let mut out = Vec::with_capacity(cols.len());
        for (slot, &c) in cols.iter().enumerate() {
            let st = self.states.get(slot, input.n_assets(), init.clone())?;
            let v = scan(input.feature_at(c).values(), st, NanMode::Drop, |s, x| {
                let y = ema_step(s, decay, x);
                if s.count >= min { y } else { f64::NAN }
            });
            out.push((format!("{}{}", input.features()[c], self.params.suffix), v));
        }
        Ok(out)
    }
    fn reset(&mut self) {
        self.states.clear();
    }
    crate::column::carry_field!(states);
}

/// A rolling statistic.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Stat {
    /// Sum.
    Sum,
    /// Mean.
    Mean,
    /// Variance with `ddof`.
    Var,
    /// Standard deviation with `ddof`.
    Std,
    /// Root mean square, `sqrt(mean(x^2))`.
    Norm,
    /// `(x - mean) / std` of the window that ends at `x`.
    Zscore,
}

/// Parameters of `rolling`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(default)]
pub struct RollingParams {
    /// Window length, in rows (`nan_mode = keep`, NaNs skipped inside) or in present
    /// values (`nan_mode = drop`).
    pub window: usize,
    /// The statistic.
    pub stat: Stat,
    /// Fewest present values in the window for an output (default: the window).
    pub min_periods: Option<usize>,
    /// Delta degrees of freedom of `var`, `std` and `zscore`.
    pub ddof: usize,
    /// The outputs at the first `burn_in` present values (since the start of the run)
    /// are NaN: the warm-up an estimate needs beyond a full window.
    pub burn_in: usize,
    /// Rows or values (see `window`).
    pub nan_mode: NanMode,
    /// Appended to each input name (default: `.` and the statistic).
    pub suffix: Option<String>,
}

impl Default for RollingParams {
    fn default() -> Self {
        RollingParams {
            window: 10,
            stat: Stat::Mean,
            min_periods: None,
            ddof: 1,
            burn_in: 0,
            nan_mode: NanMode::Keep,
            suffix: None,
        }
    }
}

/// One asset's window.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Window {
    ring: Ring,
    seen: usize,
}

/// The statistic of the present values of `w`; each call sums the window afresh
/// (in order, oldest first), so the result depends on the window alone and not on
/// how the rows were cut into calls.
pub fn window_stat(w: &Ring, stat: Stat, ddof: usize, min_periods: usize, x: f64) -> f64 {
    let (mut n, mut sum) = (0usize, 0.0);
    for v in w.iter().filter(|v| !v.is_nan()) {
        n += 1;
        sum += v;
    }
    if n < min_periods.max(1) {
        return f64::NAN;
    }
    let mean = sum / n as f64;
    let var = || {
        if n <= ddof {
            return f64::NAN;
        }
        let ss: f64 = w
            .iter()
            .filter(|v| !v.is_nan())
            .map(|v| (v - mean) * (v - mean))
            .sum();
        ss / (n - ddof) as f64
    };
    match stat {
        Stat::Sum => sum,
        Stat::Mean => mean,
        Stat::Var => var(),
        Stat::Std => var().sqrt(),
        Stat::Norm => {
            (w.iter().filter(|v| !v.is_nan()).map(|v| v * v).sum::<f64>() / n as f64).sqrt()
        }
        Stat::Zscore => {
            let z = (x - mean) / var().sqrt();
            if z.is_finite() { z } else { f64::NAN }
        }
    }
}

/// The `rolling` kernel.
#[derive(Clone, Debug)]
pub struct Rolling {
    params: RollingParams,
    states: AssetStates<Window>,
}

impl Rolling {
    /// A rolling kernel; `window >= 1` is the caller's to check.
    pub fn new(params: RollingParams) -> Rolling {
        Rolling {
            params,
            states: AssetStates::default(),
        }
    }
}

impl ColumnKernel for Rolling {
    fn kind(&self) -> &str {
        "rolling"
    }
    fn output_names(
        &self,
        features: &[String],
        cols: &[usize],
    ) -> std::result::Result<Vec<String>, MissingFeature> {
        let suffix = self
            .params
            .suffix
            .clone()
            .unwrap_or_else(|| format!(".{}", stat_name(self.params.stat)));
        Ok(suffixed(features, cols, &suffix))
    }
    fn memory(&self) -> Memory {
        match self.params.nan_mode {
            NanMode::Keep if self.params.burn_in == 0 => {
                Memory::Rows(self.params.window.saturating_sub(1))
            }
            _ => Memory::Carried,
        }
    }
    fn steps(&self) -> bool {
        true
    }
    fn compute_into(
        &mut self,
        _: &RunContext,
        input: &View<'_>,
        cols: &[usize],
        outs: &mut [Vec<f64>],
    ) -> Result<()> {
        let Rolling { params: p, states } = self;
        let min = p.min_periods.unwrap_or(p.window);
        let (burn_in, stat, ddof) = (p.burn_in, p.stat, p.ddof);
        for ((slot, &c), out) in cols.iter().enumerate().zip(outs.iter_mut()) {
            let st = states.get_with(slot, input.n_assets(), || Window {
                ring: Ring::new(p.window),
                seen: 0,
            })?;
            scan_into(input.values(c), st, p.nan_mode, out, |w, x| {
                w.ring.push(x);
                if !x.is_nan() {
                    w.seen += 1;
                }
                if w.seen <= burn_in {
                    return f64::NAN;
                }
                window_stat(&w.ring, stat, ddof, min, x)
            });
        }
        Ok(())
    }
    fn reset(&mut self) {
        self.states.clear();
    }
    crate::column::carry_field!(states);
}

fn stat_name(s: Stat) -> &'static str {
    match s {
        Stat::Sum => "sum",
        Stat::Mean => "mean",
        Stat::Var => "var",
        Stat::Std => "std",
        Stat::Norm => "norm",
        Stat::Zscore => "zscore",
    }
}

use crate::limits;

pub(crate) fn register(r: &mut NodeTypes) -> kf_config::Result<()> {
    register_column(
        r,
        "ema",
        "exponential moving average over rows (pandas `adjust=True`), optionally iterated",
        ColMode::Append,
        |s: &Section<'_>, p: EmaParams| {
            if !(p.tau > 0.0 && p.tau.is_finite()) {
                return Err(s.invalid("tau", "must be a positive number of rows"));
            }
            if p.depth == 0 {
                return Err(s.invalid("depth", "must be at least 1"));
            }
            limits::at_most(s, "depth", p.depth as u128, limits::MAX_EMA_DEPTH, "levels")?;
            limits::at_most(
                s,
                "min_periods",
                p.min_periods as u128,
                limits::MAX_ROWS_BACK,
                "rows",
            )?;
            Ok(Ema::new(p))
        },
    )?;
    register_column(
        r,
        "rolling",
        "a rolling statistic (sum, mean, var, std, norm, zscore) over a window of rows",
        ColMode::Append,
        |s: &Section<'_>, p: RollingParams| {
            if p.window == 0 {
                return Err(s.invalid("window", "must be at least 1"));
            }
            limits::at_most(s, "window", p.window as u128, limits::MAX_ROWS_BACK, "rows")?;
            limits::at_most(
                s,
                "burn_in",
                p.burn_in as u128,
                limits::MAX_ROWS_BACK,
                "rows",
            )?;
            Ok(Rolling::new(p))
        },
    )?;
    Ok(())
}
