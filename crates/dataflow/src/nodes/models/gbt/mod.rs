//! `gbt`: gradient-boosted trees on the regressors `x_vars`, as a regressor, a
//! binary classifier or a multi-class classifier, pooled over assets (one model on
//! every asset's rows, the default) or one model per asset.
//!
//! The trees come from [`forust_ml`] (pure Rust, histogram-based, deterministic for
//! a seed whatever the thread count). A multi-class classifier is one-vs-rest: one
//! log-loss booster per class, whose probabilities are normalized to sum to 1; a
//! class absent from the training rows gets probability 0.
//!
//! Missing values: a NaN regressor is a missing value, which the trees send down the
//! branch learned for missing values; a row whose regressors are all NaN (an asset
//! with no data that bar) predicts NaN and is not learned from; a NaN label is not
//! learned from. An infinite regressor is an error that names it and its row.

use std::fmt;

use forust_ml::Matrix;
use forust_ml::gradientbooster::{GradientBooster, ImportanceMethod};
use forust_ml::objective::ObjectiveType;
use forust_ml::sampler::SampleMethod;
use serde::{Deserialize, Serialize};

use kf_frame::{Frame, Timestamp};

mod params;

pub use params::{GbtParams, Objective};

use super::{from_state, to_state};
use crate::column::ColumnKernel;
use crate::error::{DataflowError, Result};
use crate::metrics::Evaluation;
use crate::node::{Memory, MissingFeature, Phase, RunContext, require};

/// What a `gbt` node learned: the boosters (forust's JSON, one per group and
/// booster), and the feature importance.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct GbtState {
    /// The assets of the fit, in order.
    pub assets: Vec<String>,
    /// The regressors the trees split on, in order.
    pub x_vars: Vec<String>,
    /// The class values (empty for a regressor).
    pub classes: Vec<f64>,
    /// `models[group][booster]`: one group when pooled, one per asset otherwise; one
    /// booster for a regressor or a binary classifier, one per class for multi-class.
    /// `None`: nothing to learn from (an asset without rows, a class absent from the
    /// training rows).
    pub models: Vec<Vec<Option<String>>>,
    /// Each regressor's share of the total split gain, in `x_vars` order (sums to 1
    /// when any split was made).
    pub importance: Vec<f64>,
    /// The rows learned from.
    pub rows: usize,
}

struct Fitted {
    state: GbtState,
    boosters: Vec<Vec<Option<GradientBooster>>>,
}

/// The `gbt` kernel.
pub struct Gbt {
    params: GbtParams,
    fitted: Option<Fitted>,
}

impl fmt::Debug for Gbt {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Gbt")
            .field("params", &self.params)
            .field("state", &self.fitted.as_ref().map(|x| &x.state))
            .finish()
    }
}

fn forust_error(what: &str, e: forust_ml::errors::ForustError) -> DataflowError {
    DataflowError::invalid(format!("{what}: {e}"))
}

impl Gbt {
    /// A `gbt` kernel; `params` are checked by [`GbtParams::validate`] when built
    /// from config.
    pub fn new(params: GbtParams) -> Gbt {
        Gbt {
            params,
            fitted: None,
        }
    }

    /// What it learned, once fitted.
    pub fn state(&self) -> Option<&GbtState> {
        self.fitted.as_ref().map(|f| &f.state)
    }

    fn booster(&self, objective: ObjectiveType) -> GradientBooster {
        let p = &self.params;
        let mut b = GradientBooster::default()
            .set_objective_type(objective)
            .set_iterations(p.iterations)
            .set_learning_rate(p.learning_rate as f32)
            .set_max_depth(p.max_depth)
            .set_min_leaf_weight(p.min_leaf_weight as f32)
            .set_l2(p.l2 as f32)
            .set_nbins(p.nbins)
            .set_colsample_bytree(p.colsample_bytree)
            .set_seed(p.seed)
            .set_parallel(true)
            .set_num_threads((p.threads > 0).then_some(p.threads));
        if p.subsample < 1.0 {
            b = b
                .set_subsample(p.subsample as f32)
                .set_sample_method(SampleMethod::Random);
        }
        b
    }

    fn fit(&mut self, ctx: &RunContext, input: &Frame) -> Result<()> {
        let p = &self.params;
        let n = input.n_assets();
        let xs: Vec<&[f64]> = p
            .x_vars
            .iter()
            .map(|v| input.feature(v).map(|f| f.values()))
            .collect::<kf_frame::Result<_>>()?;
        let yv = input.feature(&p.y_var)?.values();
        let ts = input.end_ts();
        let kt = input.knowledge_ts();
        let rows = input.n_rows();
        let classes = p.class_values();
        // A forward label is itself known `horizon_of(y)` rows after its row.
        let ahead = p.steps_ahead.saturating_add(ctx.horizon_of(&p.y_var));
        let groups = if p.pooled { 1 } else { n };
        // Per group: (cell of the regressors, label value) of each training row.
        let mut train: Vec<Vec<(usize, f64)>> = vec![Vec::new(); groups];
        for r in 0..rows.saturating_sub(p.steps_ahead) {
            let target = r + p.steps_ahead;
            if !ctx.learns_from(ts, kt, r, p.steps_ahead, ahead) {
                continue;
            }
            for a in 0..n {
                let y = yv[target * n + a];
                let cell = r * n + a;
                if y.is_nan() || xs.iter().all(|x| x[cell].is_nan()) {
                    continue;
                }
                if let Some((j, _)) = xs.iter().enumerate().find(|(_, x)| x[cell].is_infinite()) {
                    return Err(DataflowError::invalid(format!(
                        "regressor `{}` is {} at {} for asset `{}`: the trees need finite \
                         values or NaN (missing); clip or drop it upstream",
                        p.x_vars[j],
                        xs[j][cell],
                        Timestamp(ts[r]),
                        input.assets()[a]
                    )));
                }
                if !classes.is_empty() && !classes.contains(&y) {
                    return Err(DataflowError::invalid(format!(
                        "label `{}` is {y} at {} for asset `{}`, which is not one of the \
                         classes {classes:?}; set `classes` to the label's values",
                        p.y_var,
                        Timestamp(ts[target]),
                        input.assets()[a]
                    )));
                }
                train[if p.pooled { 0 } else { a }].push((cell, y));
            }
        }
        let total: usize = train.iter().map(Vec::len).sum();
        if total == 0 {
            return Err(DataflowError::invalid(format!(
                "no rows to learn from: no row of the fit span ({} rows) has label `{}` and a \
                 regressor present{}; widen the fit window or check the label's horizon",
                rows,
                p.y_var,
                ctx.decision
                    .map(|d| format!(", known by the decision time {}", Timestamp(d)))
                    .unwrap_or_default()
            )));
        }
        let mut models = Vec::with_capacity(groups);
        let mut boosters = Vec::with_capacity(groups);
        let mut gain = vec![0.0f64; p.x_vars.len()];
        for (g, cells) in train.iter().enumerate() {
            if cells.is_empty() {
                models.push(vec![None; p.boosters_per_group()]);
                boosters.push((0..p.boosters_per_group()).map(|_| None).collect());
                continue;
            }
            let mut data = Vec::with_capacity(cells.len() * xs.len());
            for x in &xs {
                data.extend(cells.iter().map(|&(c, _)| x[c]));
            }
            let matrix = Matrix::new(&data, cells.len(), xs.len());
            let weight = vec![1.0; cells.len()];
            let who = if p.pooled {
                String::new()
            } else {
                format!(" of asset `{}`", input.assets()[g])
            };
            let labels: Vec<Option<Vec<f64>>> = if classes.is_empty() {
                vec![Some(cells.iter().map(|&(_, y)| y).collect())]
            } else {
                let present: Vec<f64> = classes
                    .iter()
                    .copied()
                    .filter(|c| cells.iter().any(|&(_, y)| y == *c))
                    .collect();
                if present.len() < 2 {
                    return Err(DataflowError::invalid(format!(
                        "the {} training rows{who} hold only class {:?} of label `{}`: a \
                         classifier needs at least two classes; widen the fit window or \
                         check the label's threshold",
                        cells.len(),
                        present,
                        p.y_var
                    )));
                }
                let one_vs_rest = |c: f64| -> Vec<f64> {
                    cells
                        .iter()
                        .map(|&(_, y)| if y == c { 1.0 } else { 0.0 })
                        .collect()
                };
                match p.objective {
                    Objective::Binary => vec![Some(one_vs_rest(classes[1]))],
                    _ => classes
                        .iter()
                        .map(|&c| present.contains(&c).then(|| one_vs_rest(c)))
                        .collect(),
                }
            };
            let objective = |_: &Vec<f64>| match p.objective {
                Objective::Regression => ObjectiveType::SquaredLoss,
                _ => ObjectiveType::LogLoss,
            };
            let mut jsons = Vec::with_capacity(labels.len());
            let mut fitted = Vec::with_capacity(labels.len());
            for y in &labels {
                let Some(y) = y else {
                    jsons.push(None);
                    fitted.push(None);
                    continue;
                };
                let mut b = self.booster(objective(y));
                b.fit(&matrix, y, &weight, None).map_err(|e| {
                    forust_error(&format!("fitting the trees of `{}`{who}", p.y_var), e)
                })?;
                for (j, v) in b.calculate_feature_importance(ImportanceMethod::TotalGain, false) {
                    if let Some(s) = gain.get_mut(j) {
                        *s += f64::from(v);
                    }
                }
                jsons.push(Some(
                    b.json_dump()
                        .map_err(|e| forust_error("saving the trees", e))?,
                ));
                fitted.push(Some(b));
            }
            models.push(jsons);
            boosters.push(fitted);
        }
        let sum: f64 = gain.iter().sum();
        let importance = gain
            .iter()
            .map(|g| if sum > 0.0 { g / sum } else { 0.0 })
            .collect();
        self.fitted = Some(Fitted {
            state: GbtState {
                assets: input.assets().to_vec(),
                x_vars: p.x_vars.clone(),
                classes,
                models,
                importance,
                rows: total,
            },
            boosters,
        });
        Ok(())
    }

    /// The model group of each input asset: 0 when pooled, else its fitted slot.
    fn groups(&self, st: &GbtState, input: &Frame) -> Result<Vec<usize>> {
        if st.assets == input.assets() {
            return Ok(if self.params.pooled {
                vec![0; input.n_assets()]
            } else {
                (0..input.n_assets()).collect()
            });
        }
        input
            .assets()
            .iter()
            .map(|a| {
                let slot = st.assets.iter().position(|b| b == a).ok_or_else(|| {
                    DataflowError::invalid(format!(
                        "the trees were fitted on the assets {}, not on `{a}`: fit them on a \
                         universe that includes `{a}`, or load a state fitted on it",
                        st.assets.join(", ")
                    ))
                })?;
                Ok(if self.params.pooled { 0 } else { slot })
            })
            .collect()
    }

    fn predict(&self, input: &Frame) -> Result<Vec<(String, Vec<f64>)>> {
        let f = self.fitted.as_ref().ok_or(DataflowError::NotFitted)?;
        let p = &self.params;
        let n = input.n_assets();
        let cells = input.n_rows() * n;
        let xs: Vec<&[f64]> = p
            .x_vars
            .iter()
            .map(|v| input.feature(v).map(|f| f.values()))
            .collect::<kf_frame::Result<_>>()?;
        let group = self.groups(&f.state, input)?;
        let k = f.state.classes.len();
        let outputs = k.max(1);
        // Raw booster outputs per booster, per cell (NaN where no booster applies).
        let boosters = f.boosters.first().map_or(0, Vec::len);
        let parallel = cells >= 100_000;
        let mut raw: Vec<Vec<f64>>;
        if p.pooled {
            // One model for every cell: the row-major features, concatenated, are
            // already its column-major matrix, and its outputs are the cells' own.
            let data = xs.concat();
            let matrix = Matrix::new(&data, cells, xs.len());
            raw = f.boosters[0]
                .iter()
                .map(|b| match b {
                    Some(b) if cells > 0 => b.predict(&matrix, parallel),
                    _ => vec![f64::NAN; cells],
                })
                .collect();
        } else {
            raw = vec![vec![f64::NAN; cells]; boosters];
            for g in 0..f.boosters.len() {
                let mine: Vec<usize> = (0..cells).filter(|c| group[c % n.max(1)] == g).collect();
                if mine.is_empty() {
                    continue;
                }
                let data: Vec<f64> = xs.iter().flat_map(|x| mine.iter().map(|&c| x[c])).collect();
                let matrix = Matrix::new(&data, mine.len(), xs.len());
                for (b, booster) in f.boosters[g].iter().enumerate() {
                    if let Some(booster) = booster {
                        let pred = booster.predict(&matrix, parallel);
                        for (&c, v) in mine.iter().zip(pred) {
                            raw[b][c] = v;
                        }
                    }
                }
            }
        }
        let mut out: Vec<Vec<f64>> = vec![Vec::with_capacity(cells); outputs];
        for c in 0..cells {
            let present = xs.iter().any(|x| !x[c].is_nan());
            match p.objective {
                Objective::Regression => out[0].push(if present { raw[0][c] } else { f64::NAN }),
                Objective::Binary => {
                    let p1 = if present {
                        sigmoid(raw[0][c])
                    } else {
                        f64::NAN
                    };
                    out[0].push(1.0 - p1);
                    out[1].push(p1);
                }
                Objective::Multiclass => {
                    // One-vs-rest: each class's probability, normalized; a class
                    // absent from the group's training rows (no booster) has 0.
                    let mine = &f.boosters[group[c % n]];
                    if !present || mine.iter().all(Option::is_none) {
                        out.iter_mut().for_each(|o| o.push(f64::NAN));
                        continue;
                    }
                    let s: f64 = (0..k)
                        .filter(|&b| mine[b].is_some())
                        .map(|b| sigmoid(raw[b][c]))
                        .sum();
                    for (b, o) in out.iter_mut().enumerate() {
                        o.push(match mine[b] {
                            Some(_) => sigmoid(raw[b][c]) / s,
                            None => 0.0,
                        });
                    }
                }
            }
        }
        Ok(p.output_names().into_iter().zip(out).collect())
    }
}

fn sigmoid(x: f64) -> f64 {
    1.0 / (1.0 + (-x).exp())
}

impl ColumnKernel for Gbt {
    fn kind(&self) -> &str {
        "gbt"
    }
    fn output_names(
        &self,
        features: &[String],
        _: &[usize],
    ) -> std::result::Result<Vec<String>, MissingFeature> {
        require(features, "x_vars", &self.params.x_vars)?;
        require(features, "y_var", [&self.params.y_var])?;
        Ok(self.params.output_names())
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
    fn fit_only_inputs(&self) -> Vec<String> {
        if self.params.x_vars.contains(&self.params.y_var) {
            Vec::new()
        } else {
            vec![self.params.y_var.clone()]
        }
    }
    fn evaluation(&self) -> Option<Evaluation> {
        let p = &self.params;
        Some(match p.objective {
            Objective::Regression => Evaluation::Regressor {
                label: p.y_var.clone(),
                prediction: format!("{}_hat", p.y_var),
                steps_ahead: p.steps_ahead,
            },
            _ => Evaluation::Classifier {
                label: p.y_var.clone(),
                classes: p.class_values(),
                names: p.names(),
                probabilities: p.output_names(),
                steps_ahead: p.steps_ahead,
            },
        })
    }
    fn importance(&self) -> Vec<(String, f64)> {
        self.state()
            .map(|s| {
                s.x_vars
                    .iter()
                    .cloned()
                    .zip(s.importance.iter().copied())
                    .collect()
            })
            .unwrap_or_default()
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
        self.predict(input)
    }
    fn save_state(&self) -> Result<Vec<u8>> {
        match &self.fitted {
            Some(f) => to_state(&f.state),
            None => Ok(Vec::new()),
        }
    }
    fn load_state(&mut self, state: &[u8]) -> Result<()> {
        if state.is_empty() {
            self.fitted = None;
            return Ok(());
        }
        let s: GbtState = from_state(state, "gbt")?;
        let p = &self.params;
        if s.x_vars != p.x_vars {
            return Err(DataflowError::State(format!(
                "the saved trees split on {:?}, but this node's x_vars are {:?}",
                s.x_vars, p.x_vars
            )));
        }
        if s.classes != p.class_values() {
            return Err(DataflowError::State(format!(
                "the saved trees predict the classes {:?}, but this node's are {:?}",
                s.classes,
                p.class_values()
            )));
        }
        let per_group = p.boosters_per_group();
        let groups = if p.pooled { 1 } else { s.assets.len() };
        if s.models.len() != groups || s.models.iter().any(|m| m.len() != per_group) {
            return Err(DataflowError::State(format!(
                "the saved state holds {} model groups, but this node (pooled = {}) over {} \
                 assets needs {groups} of {per_group} boosters",
                s.models.len(),
                p.pooled,
                s.assets.len()
            )));
        }
        let boosters = s
            .models
            .iter()
            .map(|g| {
                g.iter()
                    .map(|m| {
                        m.as_deref()
                            .map(GradientBooster::from_json)
                            .transpose()
                            .map_err(|e| DataflowError::State(format!("not saved trees: {e}")))
                    })
                    .collect::<Result<Vec<_>>>()
            })
            .collect::<Result<Vec<_>>>()?;
        self.fitted = Some(Fitted { state: s, boosters });
        Ok(())
    }
}
