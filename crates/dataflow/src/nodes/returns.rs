//! `compute_ret_0`: returns from one row to the next.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use kf_config::Section;
use kf_frame::Frame;

use crate::column::{AssetStates, ColMode, ColumnKernel, NanMode, scan, suffixed};
use crate::error::Result;
use crate::node::{Memory, MissingFeature, RunContext};
use crate::nodes::{NodeTypes, register_column};

/// How a return is computed from the previous value `p` and the current `x`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum RetMode {
    /// `x / p - 1`.
    PctChange,
    /// `ln(x) - ln(p)`.
    LogRets,
    /// `x - p`.
    Diff,
}

/// Parameters of `compute_ret_0`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(default)]
pub struct RetParams {
    /// The kind of return.
    pub mode: RetMode,
    /// Appended to each input name (`close` -> `close.ret_0`).
    pub suffix: String,
    /// `keep`: the previous row (NaN if it is missing); `drop`: the previous present value.
    pub nan_mode: NanMode,
}

impl Default for RetParams {
    fn default() -> Self {
        RetParams {
            mode: RetMode::LogRets,
            suffix: ".ret_0".into(),
            nan_mode: NanMode::Keep,
        }
    }
}

/// The `compute_ret_0` kernel; carries each asset's previous value.
#[derive(Clone, Debug)]
pub struct Returns {
    params: RetParams,
    prev: AssetStates<f64>,
}

impl Returns {
    /// A returns kernel.
    pub fn new(params: RetParams) -> Returns {
        Returns {
            params,
            prev: AssetStates::default(),
        }
    }
}

impl ColumnKernel for Returns {
    fn kind(&self) -> &str {
        "compute_ret_0"
    }
    fn output_names(
        &self,
        features: &[String],
        cols: &[usize],
    ) -> std::result::Result<Vec<String>, MissingFeature> {
        Ok(suffixed(features, cols, &self.params.suffix))
    }
    fn memory(&self) -> Memory {
        Memory::Rows(1)
    }
    fn compute(
        &mut self,
        _: &RunContext,
        input: &Frame,
        cols: &[usize],
    ) -> Result<Vec<(String, Vec<f64>)>> {
        let mode = self.params.mode;
        let mut out = Vec::with_capacity(cols.len());
        for (slot, &c) in cols.iter().enumerate() {
            // The state is the previous value, or its logarithm for log returns, so
            // each cell takes one `ln`.
            let prev = self.prev.get(slot, input.n_assets(), f64::NAN)?;
            let v = scan(
                input.feature_at(c).values(),
                prev,
                self.params.nan_mode,
                |p, x| {
                    let r = match mode {
                        RetMode::PctChange => {
                            let r = x / *p - 1.0;
                            *p = x;
                            r
                        }
                        RetMode::LogRets => {
                            let lx = x.ln();
                            let r = lx - *p;
                            *p = lx;
                            r
                        }
                        RetMode::Diff => {
                            let r = x - *p;
                            *p = x;
                            r
                        }
                    };
                    if r.is_finite() { r } else { f64::NAN }
                },
            );
            out.push((format!("{}{}", input.features()[c], self.params.suffix), v));
        }
        Ok(out)
    }
    fn reset(&mut self) {
        self.prev.clear();
    }
}

pub(crate) fn register(r: &mut NodeTypes) -> kf_config::Result<()> {
    register_column(
        r,
        "compute_ret_0",
        "returns from one row to the next (percent change, log return or difference)",
        ColMode::Append,
        |_: &Section<'_>, p: RetParams| Ok(Returns::new(p)),
    )?;
    Ok(())
}
