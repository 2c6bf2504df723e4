//! The `cutler_rsi` node: Cutler's relative strength index per asset, as a column
//! kernel.

use kaizenflow::dataflow::column::{AssetStates, ColumnKernel, NanMode, Ring, scan, suffixed};
use kaizenflow::dataflow::{Memory, MissingFeature, Result, RunContext};
use kaizenflow::frame::Frame;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Parameters of `cutler_rsi`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(default)]
pub struct RsiParams {
    /// How many of the latest changes the index looks at.
    pub window: usize,
    /// Appended to each input name (`close` -> `close.rsi`).
    pub suffix: String,
}

impl Default for RsiParams {
    fn default() -> Self {
        RsiParams {
            window: 14,
            suffix: ".rsi".into(),
        }
    }
}

/// One asset's carried state: its last present value and its last `window` changes.
#[derive(Clone, Debug)]
struct State {
    last: f64,
    changes: Ring,
}

/// `100 * gains / (gains + losses)` over each asset's last `window` changes (Cutler's
/// RSI: plain sums, no smoothing), NaN until `window` changes have been seen and
/// where the price did not move at all. NaN inputs are skipped.
///
/// The state is carried from call to call, so a batch run, any tiling and a
/// one-bar stream compute the same sums in the same order: bit-identical outputs.
#[derive(Clone, Debug)]
pub struct Rsi {
    params: RsiParams,
    states: AssetStates<State>,
}

impl Rsi {
    /// An RSI kernel (`window >= 1` is the builder's to check).
    pub fn new(params: RsiParams) -> Rsi {
        Rsi {
            params,
            states: AssetStates::default(),
        }
    }
}

impl ColumnKernel for Rsi {
    fn kind(&self) -> &str {
        "cutler_rsi"
    }

    fn memory(&self) -> Memory {
        Memory::Carried
    }

    fn output_names(
        &self,
        features: &[String],
        cols: &[usize],
    ) -> std::result::Result<Vec<String>, MissingFeature> {
        Ok(suffixed(features, cols, &self.params.suffix))
    }

    fn compute(
        &mut self,
        _: &RunContext,
        input: &Frame,
        cols: &[usize],
    ) -> Result<Vec<(String, Vec<f64>)>> {
        let window = self.params.window;
        let init = State {
            last: f64::NAN,
            changes: Ring::new(window),
        };
        let mut out = Vec::with_capacity(cols.len());
        for (slot, &c) in cols.iter().enumerate() {
            let states = self.states.get(slot, input.n_assets(), init.clone())?;
            let values = input.feature_at(c).values();
            let v = scan(values, states, NanMode::Drop, |s, x| {
                if !s.last.is_nan() {
                    s.changes.push(x - s.last);
                }
                s.last = x;
                if s.changes.len() < window {
                    return f64::NAN;
                }
                let (mut gains, mut losses) = (0.0, 0.0);
                for d in s.changes.iter() {
                    if d > 0.0 {
                        gains += d;
                    } else {
                        losses -= d;
                    }
                }
                if gains + losses == 0.0 {
                    f64::NAN
                } else {
                    100.0 * gains / (gains + losses)
                }
            });
            out.push((format!("{}{}", input.features()[c], self.params.suffix), v));
        }
        Ok(out)
    }

    fn reset(&mut self) {
        self.states.clear();
    }
}
