//! `lags` (copies of each feature from earlier rows, over present values or rows)
//! and `shift` (one copy, back or, as a forward target, ahead).

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use kf_frame::{Frame, View};

use crate::column::{AssetStates, ColumnKernel, NanMode, Ring, suffixed};
use crate::error::Result;
use crate::node::{Memory, MissingFeature, RunContext};

/// Parameters of `lags`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(default)]
pub struct LagParams {
    /// How many lags.
    pub num_lags: usize,
    /// The first lag (0 = the value itself).
    pub first_lag: usize,
    /// `keep`: lags count rows; `drop`: lags count each asset's present values.
    pub nan_mode: NanMode,
}

impl Default for LagParams {
    fn default() -> Self {
        LagParams {
            num_lags: 1,
            first_lag: 1,
            nan_mode: NanMode::Keep,
        }
    }
}

/// The `lags` kernel: `{col}.lag{k}` for `k` in `first_lag..first_lag + num_lags`.
#[derive(Clone, Debug)]
pub struct Lags {
    params: LagParams,
    states: AssetStates<Ring>,
}

impl Lags {
    /// A lags kernel.
    pub fn new(params: LagParams) -> Lags {
        Lags {
            params,
            states: AssetStates::default(),
        }
    }
}

impl ColumnKernel for Lags {
    fn kind(&self) -> &str {
        "lags"
    }
    fn output_names(
        &self,
        features: &[String],
        cols: &[usize],
    ) -> std::result::Result<Vec<String>, MissingFeature> {
        let (first, num) = (self.params.first_lag, self.params.num_lags);
        Ok(cols
            .iter()
            .flat_map(|&c| (0..num).map(move |k| format!("{}.lag{}", features[c], first + k)))
            .collect())
    }
    fn memory(&self) -> Memory {
        match self.params.nan_mode {
            NanMode::Keep => {
                Memory::Rows(self.params.first_lag + self.params.num_lags.saturating_sub(1))
            }
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
        cols: &[usize],
        outs: &mut [Vec<f64>],
    ) -> Result<()> {
        let (first, num) = (self.params.first_lag, self.params.num_lags);
        let drop = self.params.nan_mode == NanMode::Drop;
        let (rows, n) = (input.n_rows(), input.n_assets());
        for ((slot, &c), outs) in cols.iter().enumerate().zip(outs.chunks_mut(num)) {
            let st = self.states.get_with(slot, n, || Ring::new(first + num))?;
            let values = input.values(c);
            crate::par::by_assets_into(rows, n, st, outs, |assets, st, w| {
                for r in 0..rows {
                    let x = &values[r * n + assets.start..r * n + assets.end];
                    for (a, (&x, ring)) in x.iter().zip(st.iter_mut()).enumerate() {
                        let present = !(drop && x.is_nan());
                        if present {
                            ring.push(x);
                        }
                        for k in 0..num {
                            let v = if present {
                                ring.back(first + k).unwrap_or(f64::NAN)
                            } else {
                                f64::NAN
                            };
                            w.row(k, r)[a].write(v);
                        }
                    }
                }
            });
        }
        Ok(())
    }
    fn reset(&mut self) {
        self.states.clear();
    }
    crate::column::carry_field!(states);
}

/// Parameters of `shift`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(default)]
pub struct ShiftParams {
    /// Rows to shift by: `k > 0` takes the value `k` rows back; `k < 0` takes the value
    /// `|k|` rows *ahead* (pandas `shift(-k)`), which is how research code builds a
    /// forward target, and is future peeking anywhere else.
    pub periods: i64,
    /// Appended to each input name.
    pub suffix: String,
}

impl Default for ShiftParams {
    fn default() -> Self {
        ShiftParams {
            periods: 1,
            suffix: ".shift".into(),
        }
    }
}

/// The `shift` kernel: `{col}{suffix}` = the value `periods` rows earlier.
///
/// With a negative `periods` it looks ahead inside the call it is given (the last
/// `|periods|` rows of a call are NaN): its outputs are forward targets
/// ([`crate::node::Target`], declared through [`ColumnKernel::lookahead`]). A model
/// may learn from them in `fit`; `kaizenflow check` names any other node they reach,
/// and leaves them out of its tiling and streaming comparisons (a target is not
/// known at its own row, so no causal run can give it there).
#[derive(Clone, Debug)]
pub struct Shift {
    params: ShiftParams,
    /// A non-negative shift is a single lag.
    lag: Lags,
}

impl Shift {
    /// A shift kernel.
    pub fn new(params: ShiftParams) -> Shift {
        let lag = Lags::new(LagParams {
            num_lags: 1,
            first_lag: usize::try_from(params.periods).unwrap_or(0),
            nan_mode: NanMode::Keep,
        });
        Shift { params, lag }
    }
}

impl ColumnKernel for Shift {
    fn kind(&self) -> &str {
        "shift"
    }
    fn output_names(
        &self,
        features: &[String],
        cols: &[usize],
    ) -> std::result::Result<Vec<String>, MissingFeature> {
        Ok(suffixed(features, cols, &self.params.suffix))
    }
    fn memory(&self) -> Memory {
        Memory::Rows(usize::try_from(self.params.periods).unwrap_or(0))
    }
    fn lookahead(&self) -> usize {
        if self.params.periods < 0 {
            usize::try_from(self.params.periods.unsigned_abs()).unwrap_or(usize::MAX)
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
        let name = |c: usize| format!("{}{}", input.features()[c], self.params.suffix);
        if self.params.periods >= 0 {
            let lagged = self.lag.compute(ctx, input, cols)?;
            return Ok(lagged
                .into_iter()
                .zip(cols)
                .map(|((_, v), &c)| (name(c), v))
                .collect());
        }
        let ahead = (self.params.periods.unsigned_abs() as usize).saturating_mul(input.n_assets());
        Ok(cols
            .iter()
            .map(|&c| {
                let values = input.feature_at(c).values();
                let v = (0..values.len())
                    .map(|i| values.get(i + ahead).copied().unwrap_or(f64::NAN))
                    .collect();
                (name(c), v)
            })
            .collect())
    }
    fn reset(&mut self) {
        self.lag.reset();
    }
    /// A lag's ring for a shift back; a shift ahead looks at rows not seen yet and
    /// cannot be continued from saved state.
    fn save_carry(&self) -> Result<Option<Vec<u8>>> {
        if self.params.periods >= 0 {
            self.lag.save_carry()
        } else {
            Ok(None)
        }
    }
    fn load_carry(&mut self, bytes: &[u8]) -> Result<()> {
        if self.params.periods >= 0 {
            self.lag.load_carry(bytes)
        } else {
            crate::node::no_carry(self.kind(), self.memory(), bytes)
        }
    }
}
