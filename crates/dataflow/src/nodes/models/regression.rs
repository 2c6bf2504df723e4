//! `linear_regression`: ordinary or ridge least squares of each target on the
//! regressors, per asset or pooled over assets, fitted in `fit` on the rows the run
//! allows and applied row by row in `predict`.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use kf_frame::Frame;

use super::{from_state, to_state};
use crate::column::ColumnKernel;
use crate::error::{DataflowError, Result};
use crate::node::{Memory, MissingFeature, Phase, RunContext, require};

/// Parameters of `linear_regression`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct LinRegParams {
    /// Regressors.
    pub x_vars: Vec<String>,
    /// Targets, each fitted on its own.
    pub y_vars: Vec<String>,
    /// The target is `y` this many rows ahead of `x`.
    #[serde(default = "one")]
    pub steps_ahead: usize,
    /// Ridge penalty on the slopes (0 = least squares).
    #[serde(default)]
    pub alpha: f64,
    /// One fit over every asset's rows instead of one fit per asset.
    #[serde(default)]
    pub pooled: bool,
    /// Fit an intercept.
    #[serde(default = "yes")]
    pub fit_intercept: bool,
}

fn one() -> usize {
    1
}
fn yes() -> bool {
    true
}

/// Learned coefficients: per target, per asset (one entry when pooled), the
/// intercept (0 without one) then one slope per regressor; NaN for an asset without
/// enough data.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct LinRegState {
    /// The assets fitted, in order.
    pub assets: Vec<String>,
    /// `coefs[y][asset]`.
    pub coefs: Vec<Vec<Vec<f64>>>,
}

/// The `linear_regression` kernel; outputs `{y}_hat`, the prediction of `y`
/// `steps_ahead` rows ahead.
#[derive(Clone, Debug)]
pub struct LinReg {
    params: LinRegParams,
    state: Option<LinRegState>,
}

impl LinReg {
    /// A linear regression kernel.
    pub fn new(params: LinRegParams) -> LinReg {
        LinReg {
            params,
            state: None,
        }
    }

    /// The learned coefficients, once fitted.
    pub fn state(&self) -> Option<&LinRegState> {
        self.state.as_ref()
    }
}

/// Solves `a x = b` (`a` is `k x k`, row-major) by Gaussian elimination with partial
/// pivoting; `None` when `a` is singular.
pub fn solve(mut a: Vec<f64>, mut b: Vec<f64>) -> Option<Vec<f64>> {
    let k = b.len();
    for col in 0..k {
        let piv =
            (col..k).max_by(|&i, &j| a[i * k + col].abs().total_cmp(&a[j * k + col].abs()))?;
        let scale = a.iter().map(|v| v.abs()).fold(0.0, f64::max);
        if a[piv * k + col].abs() <= 1e-12 * scale.max(f64::MIN_POSITIVE) {
            return None;
        }
        if piv != col {
            for j in 0..k {
                a.swap(col * k + j, piv * k + j);
            }
            b.swap(col, piv);
        }
        for i in col + 1..k {
            let f = a[i * k + col] / a[col * k + col];
            for j in col..k {
                a[i * k + j] -= f * a[col * k + j];
            }
            b[i] -= f * b[col];
        }
    }
    let mut x = vec![0.0; k];
    for i in (0..k).rev() {
        let s: f64 = (i + 1..k).map(|j| a[i * k + j] * x[j]).sum();
        x[i] = (b[i] - s) / a[i * k + i];
    }
    Some(x)
}

impl LinReg {
    fn fit(&mut self, ctx: &RunContext, input: &Frame) -> Result<()> {
        let p = &self.params;
        let n = input.n_assets();
        let xs: Vec<&[f64]> = p
            .x_vars
            .iter()
            .map(|v| input.feature(v).map(|f| f.values()))
            .collect::<kf_frame::Result<_>>()?;
        let k = p.x_vars.len() + 1;
        let groups = if p.pooled { 1 } else { n };
        let mut coefs = Vec::with_capacity(p.y_vars.len());
        let ts = input.end_ts();
        let rows = input.n_rows();
        let kt = input.knowledge_ts();
        for y in &p.y_vars {
            let yv = input.feature(y)?.values();
            // A forward target `y` is itself known `horizon_of(y)` rows after its row.
            let ahead = p.steps_ahead.saturating_add(ctx.horizon_of(y));
            let mut xtx = vec![vec![0.0; k * k]; groups];
            let mut xty = vec![vec![0.0; k]; groups];
            let mut row_x = vec![0.0; k];
            for r in 0..rows.saturating_sub(p.steps_ahead) {
                let target = r + p.steps_ahead;
                if !ctx.learns_from(ts, kt, r, p.steps_ahead, ahead) {
                    continue;
                }
                for a in 0..n {
                    let yy = yv[target * n + a];
                    if yy.is_nan() {
                        continue;
                    }
                    row_x[0] = if p.fit_intercept { 1.0 } else { 0.0 };
                    let mut ok = true;
                    for (j, x) in xs.iter().enumerate() {
                        let v = x[r * n + a];
                        ok &= !v.is_nan();
                        row_x[j + 1] = v;
                    }
                    if !ok {
                        continue;
                    }
                    let g = if p.pooled { 0 } else { a };
                    for i in 0..k {
                        xty[g][i] += row_x[i] * yy;
                        for j in 0..k {
                            xtx[g][i * k + j] += row_x[i] * row_x[j];
                        }
                    }
                }
            }
            let mut per = Vec::with_capacity(groups);
            for g in 0..groups {
                let mut a = xtx[g].clone();
                for i in 1..k {
                    a[i * k + i] += p.alpha;
                }
                if !p.fit_intercept {
                    a[0] = 1.0;
                }
                match solve(a, xty[g].clone()) {
                    Some(b) => per.push(b),
                    None if p.pooled => {
                        return Err(DataflowError::invalid(format!(
                            "cannot fit `{y}`: the regressors {:?} are collinear or there are too few \
                             rows with every value present; add data, drop a regressor, or set `alpha`",
                            p.x_vars
                        )));
                    }
                    None => per.push(vec![f64::NAN; k]),
                }
            }
            coefs.push(per);
        }
        self.state = Some(LinRegState {
            assets: input.assets().to_vec(),
            coefs,
        });
        Ok(())
    }
}

impl ColumnKernel for LinReg {
    fn kind(&self) -> &str {
        "linear_regression"
    }
    fn output_names(
        &self,
        features: &[String],
        cols: &[usize],
    ) -> std::result::Result<Vec<String>, MissingFeature> {
        require(features, "x_vars", &self.params.x_vars)?;
        require(features, "y_vars", &self.params.y_vars)?;
        let _ = cols;
        Ok(self
            .params
            .y_vars
            .iter()
            .map(|y| format!("{y}_hat"))
            .collect())
    }
    fn memory(&self) -> Memory {
        Memory::Row
    }
    fn learns(&self) -> bool {
        true
    }
    fn fit_horizon(&self) -> usize {
        self.params.steps_ahead
    }
    fn evaluation(&self) -> Option<crate::metrics::Evaluation> {
        // The first target is scored (a regression of several scores its first).
        let y = self.params.y_vars.first()?;
        Some(crate::metrics::Evaluation::Regressor {
            label: y.clone(),
            prediction: format!("{y}_hat"),
            steps_ahead: self.params.steps_ahead,
        })
    }
    fn fit_only_inputs(&self) -> Vec<String> {
        // A target that is also a regressor is read when predicting, too.
        self.params
            .y_vars
            .iter()
            .filter(|y| !self.params.x_vars.contains(y))
            .cloned()
            .collect()
    }
    fn compute(
        &mut self,
        ctx: &RunContext,
        input: &Frame,
        _: &[usize],
    ) -> Result<Vec<(String, Vec<f64>)>> {
        if ctx.phase == Phase::Fit {
            self.fit(ctx, input)?;
        }
        let st = self.state.as_ref().ok_or(DataflowError::NotFitted)?;
        // Each asset's coefficients by its name, so that any subset of the fitted
        // assets (an asset tile) predicts exactly as the whole universe does.
        let group: Vec<usize> = if self.params.pooled {
            vec![0; input.n_assets()]
        } else if st.assets == input.assets() {
            (0..input.n_assets()).collect()
        } else {
            input
                .assets()
                .iter()
                .map(|a| {
                    st.assets.iter().position(|b| b == a).ok_or_else(|| {
                        DataflowError::invalid(format!(
                            "a per-asset regression cannot predict for `{a}`: it was fitted on \
                             {}; fit it on a universe that includes `{a}`",
                            st.assets.join(", ")
                        ))
                    })
                })
                .collect::<Result<_>>()?
        };
        let n = input.n_assets();
        let xs: Vec<&[f64]> = self
            .params
            .x_vars
            .iter()
            .map(|v| input.feature(v).map(|f| f.values()))
            .collect::<kf_frame::Result<_>>()?;
        let mut out = Vec::with_capacity(self.params.y_vars.len());
        for (y, per) in self.params.y_vars.iter().zip(&st.coefs) {
            let mut v = Vec::with_capacity(input.n_rows() * n);
            for r in 0..input.n_rows() {
                for a in 0..n {
                    let b = &per[group[a]];
                    let mut s = b[0];
                    for (j, x) in xs.iter().enumerate() {
                        s += b[j + 1] * x[r * n + a];
                    }
                    v.push(s);
                }
            }
            out.push((format!("{y}_hat"), v));
        }
        Ok(out)
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
        let s: LinRegState = from_state(state, "linear_regression")?;
        let k = self.params.x_vars.len() + 1;
        if s.coefs.len() != self.params.y_vars.len()
            || s.coefs.iter().flatten().any(|c| c.len() != k)
        {
            return Err(DataflowError::State(format!(
                "the saved coefficients do not fit {} targets x {} regressors",
                self.params.y_vars.len(),
                k - 1
            )));
        }
        self.state = Some(s);
        Ok(())
    }
}
