//! Row transforms: lags, `shift`, `combine_columns`, `compress_tails`, clip, weighted sum.

use indexmap::IndexMap;
use rayon::prelude::*;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use kf_config::Section;
use kf_frame::View;

use crate::column::{AssetStates, ColMode, ColumnKernel, NanMode, Ring, suffixed};
use crate::error::Result;
use crate::node::{Memory, MissingFeature, RunContext, require};
use crate::nodes::{NodeTypes, register_column};

mod lags;

pub use lags::{LagParams, Lags, Shift, ShiftParams};

/// An arithmetic operation of `combine_columns`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Operation {
    /// `a + b`.
    Add,
    /// `a - b`.
    Sub,
    /// `a * b`.
    Mul,
    /// `a / b`.
    Div,
}

/// Parameters of `combine_columns`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct CombineParams {
    /// The first operand's feature.
    pub term1: String,
    /// The second operand's feature.
    pub term2: String,
    /// The operation.
    pub operation: Operation,
    /// Rows (or joint values) back to take `term1` from.
    #[serde(default)]
    pub term1_delay: usize,
    /// Rows (or joint values) back to take `term2` from.
    #[serde(default)]
    pub term2_delay: usize,
    /// The output's name.
    pub out_col: String,
    /// `keep`: delays count rows; `drop`: they count the rows where both terms are
    /// present, and other rows give NaN.
    #[serde(default)]
    pub nan_mode: NanMode,
}

/// The `combine_columns` kernel. A non-finite result (a division by zero) is NaN.
#[derive(Clone, Debug)]
pub struct Combine {
    params: CombineParams,
    states: AssetStates<(Ring, Ring)>,
}

impl Combine {
    /// A combine kernel.
    pub fn new(params: CombineParams) -> Combine {
        Combine {
            params,
            states: AssetStates::default(),
        }
    }
}

impl ColumnKernel for Combine {
    fn kind(&self) -> &str {
        "combine_columns"
    }
    fn output_names(
        &self,
        features: &[String],
        cols: &[usize],
    ) -> std::result::Result<Vec<String>, MissingFeature> {
        require(features, "term1", [&self.params.term1])?;
        require(features, "term2", [&self.params.term2])?;
        let _ = cols;
        Ok(vec![self.params.out_col.clone()])
    }
    fn memory(&self) -> Memory {
        match self.params.nan_mode {
            NanMode::Keep => Memory::Rows(self.params.term1_delay.max(self.params.term2_delay)),
            NanMode::Drop => Memory::Carried,
        }
    }
    fn steps(&self) -> bool {
        true
    }
    fn compute_into(
        &mut self,
        _: &RunContext,
        input: &View<'_>,
        _: &[usize],
        outs: &mut [Vec<f64>],
    ) -> Result<()> {
        let Combine { params: p, states } = self;
        let a = input.values(input.feature_index(&p.term1)?);
        let b = input.values(input.feature_index(&p.term2)?);
        let n = input.n_assets();
        let init = || (Ring::new(p.term1_delay + 1), Ring::new(p.term2_delay + 1));
        let st = states.get_with(0, n, init)?;
        let rows = input.n_rows();
        crate::par::by_assets_into(rows, n, st, &mut outs[..1], |assets, st, w| {
            for r in 0..rows {
                let cells = r * n + assets.start..r * n + assets.end;
                let (ra, rb) = (&a[cells.clone()], &b[cells]);
                let row = w.row(0, r);
                for (((&x, &y), (r1, r2)), o) in ra.iter().zip(rb).zip(st.iter_mut()).zip(row) {
                    if p.nan_mode == NanMode::Drop && (x.is_nan() || y.is_nan()) {
                        o.write(f64::NAN);
                        continue;
                    }
                    r1.push(x);
                    r2.push(y);
                    let (Some(u), Some(v)) = (r1.back(p.term1_delay), r2.back(p.term2_delay))
                    else {
                        o.write(f64::NAN);
                        continue;
                    };
                    let z = match p.operation {
                        Operation::Add => u + v,
                        Operation::Sub => u - v,
                        Operation::Mul => u * v,
                        Operation::Div => u / v,
                    };
                    o.write(if z.is_finite() { z } else { f64::NAN });
                }
            }
        });
        Ok(())
    }
    fn reset(&mut self) {
        self.states.clear();
    }
    crate::column::carry_field!(states);
}

/// Parameters of `compress_tails`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(default)]
pub struct CompressParams {
    /// `scale * tanh(x / scale)`: about `x` for small `x`, bounded by `scale`.
    pub scale: f64,
    /// Appended to each input name.
    pub suffix: String,
}

impl Default for CompressParams {
    fn default() -> Self {
        CompressParams {
            scale: 4.0,
            suffix: ".c".into(),
        }
    }
}

/// The `compress_tails` kernel.
#[derive(Clone, Debug)]
pub struct Compress(pub CompressParams);

impl ColumnKernel for Compress {
    fn kind(&self) -> &str {
        "compress_tails"
    }
    fn output_names(
        &self,
        features: &[String],
        cols: &[usize],
    ) -> std::result::Result<Vec<String>, MissingFeature> {
        Ok(suffixed(features, cols, &self.0.suffix))
    }
    fn memory(&self) -> Memory {
        Memory::Row
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
        let s = self.0.scale;
        map_cols(input, cols, outs, |x| s * (x / s).tanh());
        Ok(())
    }
}

/// `f` applied to every value of each selected feature, into its output.
fn map_cols(
    input: &View<'_>,
    cols: &[usize],
    outs: &mut [Vec<f64>],
    f: impl Fn(f64) -> f64 + Sync + Send + Copy,
) {
    for (&c, out) in cols.iter().zip(outs.iter_mut()) {
        crate::par::map_into(input.values(c), out, f);
    }
}

/// Parameters of `clip`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(default)]
pub struct ClipParams {
    /// Values below become this.
    pub lower: Option<f64>,
    /// Values above become this.
    pub upper: Option<f64>,
    /// Appended to each input name (empty: replace in place with `col_mode`).
    pub suffix: String,
}

/// The `clip` kernel (NaN stays NaN).
#[derive(Clone, Debug)]
pub struct Clip(pub ClipParams);

impl ColumnKernel for Clip {
    fn kind(&self) -> &str {
        "clip"
    }
    fn output_names(
        &self,
        features: &[String],
        cols: &[usize],
    ) -> std::result::Result<Vec<String>, MissingFeature> {
        Ok(suffixed(features, cols, &self.0.suffix))
    }
    fn memory(&self) -> Memory {
        Memory::Row
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
        let lo = self.0.lower.unwrap_or(f64::NEG_INFINITY);
        let hi = self.0.upper.unwrap_or(f64::INFINITY);
        let clip = |x: f64| {
            if x < lo {
                lo
            } else if x > hi {
                hi
            } else {
                x
            }
        };
        map_cols(input, cols, outs, clip);
        Ok(())
    }
}

/// Parameters of `weighted_sum`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct WeightedSumParams {
    /// Feature -> weight, summed in this order.
    pub weights: IndexMap<String, f64>,
    /// The output's name.
    pub out_col: String,
}

/// The `weighted_sum` kernel: NaN where any term is NaN.
#[derive(Clone, Debug)]
pub struct WeightedSum(pub WeightedSumParams);

impl ColumnKernel for WeightedSum {
    fn kind(&self) -> &str {
        "weighted_sum"
    }
    fn output_names(
        &self,
        features: &[String],
        cols: &[usize],
    ) -> std::result::Result<Vec<String>, MissingFeature> {
        require(features, "weights", self.0.weights.keys())?;
        let _ = cols;
        Ok(vec![self.0.out_col.clone()])
    }
    fn memory(&self) -> Memory {
        Memory::Row
    }
    fn steps(&self) -> bool {
        true
    }
    fn compute_into(
        &mut self,
        _: &RunContext,
        input: &View<'_>,
        _: &[usize],
        outs: &mut [Vec<f64>],
    ) -> Result<()> {
        let Some(acc) = outs.first_mut() else {
            return Ok(());
        };
        let cells = input.n_rows() * input.n_assets();
        acc.clear();
        if cells < crate::par::PAR_MIN_CELLS {
            // Term by term over contiguous values, in configured order.
            acc.resize(cells, 0.0);
            for (name, &w) in &self.0.weights {
                let x = input.values(input.feature_index(name)?);
                acc.iter_mut().zip(x).for_each(|(a, &x)| *a += w * x);
            }
            return Ok(());
        }
        let mut terms: Vec<(&[f64], f64)> = Vec::with_capacity(self.0.weights.len());
        for (name, &w) in &self.0.weights {
            terms.push((input.values(input.feature_index(name)?), w));
        }
        // Row chunks in parallel; within a cell the terms add in configured order,
        // from 0.0, as above.
        (0..cells)
            .into_par_iter()
            .with_min_len(crate::par::PAR_MIN_CELLS)
            .map(|i| terms.iter().fold(0.0, |a, &(x, w)| a + w * x[i]))
            .collect_into_vec(acc);
        Ok(())
    }
}

use crate::limits;

pub(crate) fn register(r: &mut NodeTypes) -> kf_config::Result<()> {
    register_column(
        r,
        "lags",
        "lagged copies of each feature, `{feature}.lag{k}`",
        ColMode::Append,
        |s: &Section<'_>, p: LagParams| {
            if p.num_lags == 0 {
                return Err(s.invalid("num_lags", "must be at least 1"));
            }
            limits::at_most(s, "num_lags", p.num_lags as u128, limits::MAX_LAGS, "lags")?;
            limits::at_most(
                s,
                "first_lag",
                p.first_lag as u128,
                limits::MAX_ROWS_BACK,
                "rows",
            )?;
            Ok(Lags::new(p))
        },
    )?;
    register_column(
        r,
        "shift",
        "each feature shifted by `periods` rows (negative: a forward target)",
        ColMode::Append,
        |s: &Section<'_>, p: ShiftParams| {
            let rows = u128::from(p.periods.unsigned_abs());
            limits::at_most(s, "periods", rows, limits::MAX_ROWS_BACK, "rows")?;
            Ok(Shift::new(p))
        },
    )?;
    register_column(
        r,
        "combine_columns",
        "one feature from two: term1 op term2, each optionally delayed",
        ColMode::Append,
        |s: &Section<'_>, p: CombineParams| {
            for (key, rows) in [
                ("term1_delay", p.term1_delay),
                ("term2_delay", p.term2_delay),
            ] {
                limits::at_most(s, key, rows as u128, limits::MAX_ROWS_BACK, "rows")?;
            }
            Ok(Combine::new(p))
        },
    )?;
    register_column(
        r,
        "compress_tails",
        "`scale * tanh(x / scale)`: compresses the tails of each feature",
        ColMode::Append,
        |s: &Section<'_>, p: CompressParams| {
            if !(p.scale > 0.0 && p.scale.is_finite()) {
                return Err(s.invalid("scale", "must be a positive number"));
            }
            Ok(Compress(p))
        },
    )?;
    register_column(
        r,
        "clip",
        "clips each feature to [lower, upper]",
        ColMode::ReplaceSelected,
        |s: &Section<'_>, p: ClipParams| {
            for (key, v) in [("lower", p.lower), ("upper", p.upper)] {
                if let Some(v) = v
                    && v.is_nan()
                {
                    return Err(s.invalid(
                        key,
                        "must be a number (NaN bounds nothing); leave it out for no bound",
                    ));
                }
            }
            if let (Some(lo), Some(hi)) = (p.lower, p.upper)
                && lo > hi
            {
                return Err(s.invalid("lower", "must not exceed upper"));
            }
            Ok(Clip(p))
        },
    )?;
    register_column(
        r,
        "weighted_sum",
        "a weighted sum of named features",
        ColMode::Append,
        |s: &Section<'_>, p: WeightedSumParams| {
            if p.weights.is_empty() {
                return Err(s.invalid("weights", "give at least one feature = weight"));
            }
            for (name, &w) in &p.weights {
                limits::finite(s, &format!("weights.{name}"), w)?;
            }
            Ok(WeightedSum(p))
        },
    )?;
    if let Some(d) = r.doc_mut("combine_columns") {
        d.example =
            "term1 = \"close\"\nterm2 = \"open\"\noperation = \"div\"\nout_col = \"ratio\"".into();
    }
    if let Some(d) = r.doc_mut("weighted_sum") {
        d.example = "weights = { close = 1.0, open = -1.0 }\nout_col = \"spread\"".into();
    }
    Ok(())
}
