//! The `trajectory` forecast processor: at each decision, the dynamic optimizer
//! plans the weights over the configured horizons and trades to the first.

use kf_parallel::Engine;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{MAX_BEAM_WORK, Method, Problem, SearchOptions, WeightSet, solve};
use crate::processor::{Decide, ForecastProcessor};

/// Parameters of the `trajectory` processor.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(default)]
pub struct TrajectoryParams {
    /// Gross market value of the target portfolio (the weights sum to 1 in
    /// absolute value; this scales them to dollars).
    pub target_gmv: f64,
    /// Units of capital `K` split among the assets.
    pub units: u32,
    /// Assets planned per decision: those with the largest absolute first-horizon
    /// forecast (ties to the earlier asset); the others are traded to zero.
    pub max_assets: usize,
    /// Square-root cost coefficient `c` of every asset and horizon, in return per
    /// square root of weight traded.
    pub cost: f64,
    /// Half-life, in decisions, of the exponentially weighted covariance of the
    /// assets' returns between decisions (`V_h` for every horizon).
    pub halflife: f64,
    /// Decisions with returns before the first order (the covariance warms up).
    pub min_periods: usize,
    /// Added to the covariance's diagonal, so that it is positive definite.
    pub ridge: f64,
    /// `exact`, `beam` or `auto` (exact up to `max_exact` trajectories).
    pub method: String,
    /// The most trajectories an exact search may face.
    pub max_exact: f64,
    /// Prefixes kept per horizon by beam search.
    pub beam_width: usize,
}

impl Default for TrajectoryParams {
    fn default() -> Self {
        TrajectoryParams {
            target_gmv: 1e6,
            units: 4,
            max_assets: 4,
            cost: 0.0005,
            halflife: 60.0,
            min_periods: 30,
            ridge: 1e-10,
            method: "auto".into(),
            max_exact: 1e7,
            beam_width: 64,
        }
    }
}

impl TrajectoryParams {
    /// The search method these parameters name.
    ///
    /// # Errors
    /// A message for an unknown method.
    pub fn search_method(&self) -> Result<Method, String> {
        match self.method.as_str() {
            "exact" => Ok(Method::Exact {
                max_exact: self.max_exact,
            }),
            "beam" => Ok(Method::Beam {
                width: self.beam_width,
            }),
            "auto" => Ok(Method::Auto {
                max_exact: self.max_exact,
                width: self.beam_width,
            }),
            other => Err(format!(
                "unknown method `{}`; use \"exact\", \"beam\" or \"auto\"",
                kf_config::clip_text(other)
            )),
        }
    }
}

/// The `trajectory` processor (see [`TrajectoryParams`]).
///
/// Each decision: the returns of the marks since the last decision update an
/// exponentially weighted covariance; the assets with the largest first-horizon
/// forecasts (finite at every horizon, with a valid price) form a problem whose
/// `μ_h` are the forecasts of horizon `h` (`[system] prediction`, then
/// `[system] horizons`), whose `V_h` is the covariance, and whose `ω*` is the
/// current holdings over the target gross value; the first horizon's optimal
/// weights become the target, and the other assets with forecasts are traded to
/// zero. An asset with a NaN forecast at any horizon, or without a valid price,
/// keeps its position (the rule of every processor). A decision with no plannable
/// asset, or before the covariance has `min_periods` returns, sends no orders.
#[derive(Debug)]
pub struct Trajectory {
    params: TrajectoryParams,
    method: Method,
    engine: Engine,
    last_price: Vec<f64>,
    cov: Vec<f64>,
    periods: usize,
    ret: Vec<f64>,
}

impl Trajectory {
    /// A processor with `params` (checked by the registry's builder).
    pub fn new(params: TrajectoryParams, method: Method) -> Trajectory {
        Trajectory {
            params,
            method,
            // One thread: a decision's problem is small, and the system may run
            // many systems side by side.
            engine: Engine::new().threads(1),
            last_price: Vec::new(),
            cov: Vec::new(),
            periods: 0,
            ret: Vec::new(),
        }
    }

    fn update_covariance(&mut self, price: &[f64]) {
        let n = price.len();
        if self.last_price.len() != n {
            self.last_price = vec![f64::NAN; n];
            self.cov = vec![0.0; n * n];
            self.periods = 0;
        }
        let valid = |p: f64| p.is_finite() && p > 0.0;
        self.ret.clear();
        self.ret.extend((0..n).map(|i| {
            let (p, q) = (price[i], self.last_price[i]);
            if valid(p) && valid(q) {
                p / q - 1.0
            } else {
                0.0
            }
        }));
        let any = (0..n).any(|i| valid(price[i]) && valid(self.last_price[i]));
        if any {
            let decay = 0.5f64.powf(1.0 / self.params.halflife);
            for i in 0..n {
                for j in 0..n {
                    let c = &mut self.cov[i * n + j];
                    *c = decay * *c + (1.0 - decay) * self.ret[i] * self.ret[j];
                }
            }
            self.periods += 1;
        }
        for i in 0..n {
            if valid(price[i]) {
                self.last_price[i] = price[i];
            }
        }
    }
}

impl ForecastProcessor for Trajectory {
    fn kind(&self) -> &'static str {
        "trajectory"
    }

    fn orders(&mut self, input: &Decide<'_>, orders: &mut [f64]) {
        orders.fill(0.0);
        self.update_covariance(input.price);
        if self.periods < self.params.min_periods {
            return;
        }
        let n = orders.len();
        let valid = |i: usize| {
            let p = input.price[i];
            p.is_finite()
                && p > 0.0
                && input.forecast[i].is_finite()
                && input.horizons.iter().all(|h| h[i].is_finite())
        };
        let mut chosen: Vec<usize> = (0..n).filter(|&i| valid(i)).collect();
        chosen.sort_by(|&a, &b| {
            input.forecast[b]
                .abs()
                .total_cmp(&input.forecast[a].abs())
                .then(a.cmp(&b))
        });
        chosen.truncate(self.params.max_assets);
        chosen.sort_unstable();
        if chosen.is_empty() {
            return;
        }
        let gmv = self.params.target_gmv;
        let mu: Vec<Vec<f64>> = std::iter::once(input.forecast)
            .chain(input.horizons.iter().map(Vec::as_slice))
            .map(|f| chosen.iter().map(|&i| f[i]).collect())
            .collect();
        let v: Vec<Vec<f64>> = chosen
            .iter()
            .map(|&i| {
                chosen
                    .iter()
                    .map(|&j| {
                        let c = self.cov[i * n + j];
                        if i == j { c + self.params.ridge } else { c }
                    })
                    .collect()
            })
            .collect();
        let cov = vec![v; mu.len()];
        let cost = vec![vec![self.params.cost; chosen.len()]; mu.len()];
        let start: Vec<f64> = chosen
            .iter()
            .map(|&i| input.holdings[i] * input.price[i] / gmv)
            .collect();
        let target = Problem::new(self.params.units, &mu, &cov, &cost, &start)
            .ok()
            .and_then(|p| solve(&p, self.method, &SearchOptions::default(), &self.engine).ok());
        let Some(solution) = target else {
            // A degenerate covariance (a flat market) or an engine failure: hold.
            return;
        };
        let mut weight = vec![0.0; n];
        for (k, &i) in chosen.iter().enumerate() {
            weight[i] = solution.best.weights[0][k];
        }
        // Assets outside the plan with a forecast go to zero; an asset without a
        // forecast (NaN at any horizon) or a price keeps its position.
        for i in 0..n {
            if valid(i) {
                orders[i] = weight[i] * gmv / input.price[i] - input.holdings[i];
            }
        }
    }

    fn check_horizons(&self, horizons: usize) -> Result<(), (&'static str, String)> {
        let omega =
            WeightSet::count(self.params.max_assets, self.params.units).unwrap_or(u128::MAX);
        let space = (omega as f64).powi(i32::try_from(horizons).unwrap_or(i32::MAX));
        let m = omega as f64;
        let beam = match self.method {
            Method::Exact { max_exact } if space > max_exact => {
                return Err((
                    "method",
                    format!(
                        "an exact search over {horizons} horizons faces |Ω|^H = \
                         {m}^{horizons} = {space:.3e} trajectories, over max_exact = \
                         {max_exact:.3e}; use method = \"auto\" or \"beam\", fewer units \
                         or max_assets, or raise max_exact"
                    ),
                ));
            }
            Method::Exact { .. } => None,
            Method::Beam { width } => Some(width),
            Method::Auto { max_exact, width } => (space > max_exact).then_some(width),
        };
        match beam {
            Some(width) if width as f64 * m * horizons as f64 > MAX_BEAM_WORK => Err((
                "beam_width",
                format!(
                    "a beam of {width} over |Ω| = {m} vectors and {horizons} horizons scores \
                     over {MAX_BEAM_WORK:.0e} prefixes per decision; use a narrower beam"
                ),
            )),
            _ => Ok(()),
        }
    }

    fn reset(&mut self) {
        self.last_price.clear();
        self.cov.clear();
        self.periods = 0;
    }

    fn save_state(&self) -> Option<Vec<u8>> {
        postcard::to_stdvec(&(&self.last_price, &self.cov, self.periods as u64)).ok()
    }

    fn load_state(&mut self, bytes: &[u8]) -> Result<(), String> {
        let (last_price, cov, periods): (Vec<f64>, Vec<f64>, u64) = postcard::from_bytes(bytes)
            .map_err(|e| format!("a saved `trajectory` state does not decode: {e}"))?;
        if cov.len() != last_price.len() * last_price.len() {
            return Err("a saved `trajectory` state's covariance does not fit its prices".into());
        }
        self.last_price = last_price;
        self.cov = cov;
        self.periods = usize::try_from(periods).map_err(|e| e.to_string())?;
        Ok(())
    }
}
