//! `compute_ret_0`: returns from one row to the next.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use kf_config::Section;
use kf_frame::View;

use crate::column::{AssetStates, ColMode, ColumnKernel, NanMode, scan_into, suffixed};
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
        let mode = self.params.mode;
        for ((slot, &c), out) in cols.iter().enumerate().zip(outs.iter_mut()) {
            // The state is the previous value, or its logarithm for log returns, so
            // each cell takes one `ln`.
            let prev = self.prev.get(slot, input.n_assets(), f64::NAN)?;
            scan_into(input.values(c), prev, self.params.nan_mode, out, |p, x| {
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
            });
        }
        Ok(())
    }
    fn reset(&mut self) {
        self.prev.clear();
    }
    crate::column::carry_field!(prev);
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
