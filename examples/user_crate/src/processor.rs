//! The `rsi_contrarian` forecast processor.

use kaizenflow::system::Decide;
use kaizenflow::system::ForecastProcessor;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Parameters of `rsi_contrarian`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(default)]
pub struct RsiContrarianParams {
    /// Below this forecast, hold `shares` long.
    pub lower: f64,
    /// Above this forecast, hold `shares` short.
    pub upper: f64,
    /// The position size, in shares.
    pub shares: f64,
}

impl Default for RsiContrarianParams {
    fn default() -> Self {
        RsiContrarianParams {
            lower: 30.0,
            upper: 70.0,
            shares: 100.0,
        }
    }
}

/// Target holdings of `+shares` below `lower`, `-shares` above `upper` and none in
/// between; the order is the target minus what is held. An asset with no forecast
/// or no valid price keeps its position.
#[derive(Clone, Debug)]
pub struct RsiContrarian {
    params: RsiContrarianParams,
}

impl RsiContrarian {
    /// A processor with `params`.
    pub fn new(params: RsiContrarianParams) -> RsiContrarian {
        RsiContrarian { params }
    }
}

impl ForecastProcessor for RsiContrarian {
    fn kind(&self) -> &'static str {
        "rsi_contrarian"
    }

    fn orders(&mut self, input: &Decide<'_>, orders: &mut [f64]) {
        for (i, order) in orders.iter_mut().enumerate() {
            let (f, p) = (input.forecast[i], input.price[i]);
            *order = 0.0;
            if !(f.is_finite() && p.is_finite() && p > 0.0) {
                continue;
            }
            let target = if f < self.params.lower {
                self.params.shares
            } else if f > self.params.upper {
                -self.params.shares
            } else {
                0.0
            };
            *order = target - input.holdings[i];
        }
    }

    fn reset(&mut self) {}
}
