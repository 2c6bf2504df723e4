//! `bvc`: bulk volume classification. A bar's volume is split into buys and sells
//! by the Student-t CDF of its standardized price change: `buy = V t_ν(ΔP / σ_ΔP)`
//! (Easley, López de Prado and O'Hara), with `σ_ΔP` the standard deviation of the
//! last `window` price changes, the current one included.

use std::collections::VecDeque;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use statrs::distribution::{ContinuousCDF, StudentsT};

use kf_config::{Section, TypeDoc};

use super::sized;
use crate::error::Result;
use crate::node::{
    DF_IN, DF_OUT, FeatureMap, Memory, MissingFeature, Node, NodeId, Ports, RunContext, require,
    single_input, single_output,
};
use crate::nodes::{BuildContext, NodeTypes, node_id};

/// The features `bvc` outputs.
pub const BVC_FEATURES: [&str; 3] = ["buy_volume", "sell_volume", "buy_fraction"];

/// Parameters of `bvc`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(default)]
pub struct BvcParams {
    /// The bar price column (seed 002's tuned set uses the median price).
    pub price: String,
    /// The bar volume column.
    pub volume: String,
    /// Degrees of freedom of the Student-t (0.1 in seed 002's tuned set: heavy
    /// tails, so most bars are split far from even).
    pub nu: f64,
    /// Price changes in the standard deviation (the current one included).
    pub window: usize,
    /// Price changes needed before a bar is classified.
    pub min_periods: usize,
}

impl Default for BvcParams {
    fn default() -> Self {
        BvcParams {
            price: "median".into(),
            volume: "volume".into(),
            nu: 0.1,
            window: 6000,
            min_periods: 30,
        }
    }
}

/// The CDF of the standard Student-t distribution with `nu` degrees of freedom.
/// Infinite `x` gives 0 or 1; NaN gives NaN.
///
/// # Panics
/// Never for `nu > 0` (checked when the node is built).
pub fn student_t_cdf(dist: &StudentsT, x: f64) -> f64 {
    if x.is_nan() {
        f64::NAN
    } else if x == f64::INFINITY {
        1.0
    } else if x == f64::NEG_INFINITY {
        0.0
    } else {
        dist.cdf(x)
    }
}

/// One asset's state: the last price and the window of price changes with their
/// running sums.
#[derive(Clone, Debug, Default)]
struct AssetState {
    last: Option<f64>,
    changes: VecDeque<f64>,
    sum: f64,
    sum_sq: f64,
}

/// The `bvc` node (see the module doc).
#[derive(Clone, Debug)]
pub struct Bvc {
    id: NodeId,
    params: BvcParams,
    dist: StudentsT,
    states: Vec<AssetState>,
}

impl Bvc {
    /// A node with `params`.
    ///
    /// # Errors
    /// The key and message of a bad parameter.
    pub fn new(
        id: impl Into<String>,
        params: BvcParams,
    ) -> std::result::Result<Bvc, (&'static str, String)> {
        // Below 1e-6 the t distribution's incomplete beta function loses its
        // footing (at ν/2 = 0 statrs fails); above 1e6 it is the normal to 1e-12.
        if !(params.nu.is_finite() && (1e-6..=1e6).contains(&params.nu)) {
            return Err((
                "nu",
                format!("must be from 1e-6 to 1e6, not {:?}", params.nu),
            ));
        }
        if params.window < 2 || params.window > crate::limits::MAX_ROWS_BACK {
            return Err((
                "window",
                format!(
                    "must be 2 to {}, not {}",
                    crate::limits::MAX_ROWS_BACK,
                    params.window
                ),
            ));
        }
        if params.min_periods > params.window {
            return Err(("min_periods", "cannot exceed `window`".into()));
        }
        let dist = StudentsT::new(0.0, 1.0, params.nu).map_err(|e| ("nu", e.to_string()))?;
        Ok(Bvc {
            id: NodeId(id.into()),
            params,
            dist,
            states: Vec::new(),
        })
    }

    fn from_section(s: &Section<'_>) -> kf_config::Result<Bvc> {
        let p: BvcParams = s.deserialize()?;
        Bvc::new(node_id(s), p).map_err(|(k, m)| s.invalid(k, m))
    }
}

impl Node for Bvc {
    fn id(&self) -> &NodeId {
        &self.id
    }
    fn kind(&self) -> &str {
        "bvc"
    }
    fn memory(&self) -> Memory {
        Memory::Carried
    }

    fn output_features(
        &self,
        inputs: &FeatureMap,
    ) -> std::result::Result<Option<FeatureMap>, MissingFeature> {
        let Some(features) = inputs.get(DF_IN) else {
            return Ok(None);
        };
        require(features, "price", [&self.params.price])?;
        require(features, "volume", [&self.params.volume])?;
        Ok(Some(FeatureMap::from([(
            DF_OUT.to_string(),
            BVC_FEATURES.iter().map(|f| f.to_string()).collect(),
        )])))
    }

    fn run(&mut self, _: &RunContext, inputs: &Ports) -> Result<Ports> {
        let input = single_input(inputs, DF_IN)?;
        let n = input.n_assets();
        sized(&mut self.states, n, AssetState::default, self.id.as_str())?;
        let price = input.feature(&self.params.price)?.values();
        let volume = input.feature(&self.params.volume)?.values();
        let cells = price.len();
        let (mut buy, mut sell, mut frac) = (
            vec![f64::NAN; cells],
            vec![f64::NAN; cells],
            vec![f64::NAN; cells],
        );
        let (window, min) = (self.params.window, self.params.min_periods.max(2));
        for c in 0..cells {
            let (p, v) = (price[c], volume[c]);
            if !(p.is_finite() && v.is_finite()) {
                continue;
            }
            let st = &mut self.states[c % n];
            let Some(last) = st.last.replace(p) else {
                continue;
            };
            let dp = p - last;
            if st.changes.len() == window
                && let Some(old) = st.changes.pop_front()
            {
                st.sum -= old;
                st.sum_sq -= old * old;
            }
            st.changes.push_back(dp);
            st.sum += dp;
            st.sum_sq += dp * dp;
            let k = st.changes.len();
            if k < min {
                continue;
            }
            let kf = k as f64;
            let var = ((st.sum_sq - st.sum * st.sum / kf) / (kf - 1.0)).max(0.0);
            let sd = var.sqrt();
            let f = if sd > 0.0 {
                student_t_cdf(&self.dist, dp / sd)
            } else {
                // No price has moved in the window: no evidence either way.
                0.5
            };
            frac[c] = f;
            buy[c] = v * f;
            sell[c] = v * (1.0 - f);
        }
        let features = BVC_FEATURES
            .iter()
            .map(|f| f.to_string())
            .zip([buy, sell, frac])
            .collect();
        Ok(single_output(input.with_rows(
            input.end_ts().to_vec(),
            input.knowledge_ts().to_vec(),
            features,
        )?))
    }

    fn reset(&mut self) {
        self.states.clear();
    }
}

pub(crate) fn register(r: &mut NodeTypes) -> kf_config::Result<()> {
    r.insert(
        "bvc",
        TypeDoc::new(
            "bulk volume classification: each bar's volume split into buys and sells by \
             the Student-t CDF of its price change over the changes' standard deviation",
        )
        .params_of::<BvcParams>()
        .ports(&[DF_IN], &[DF_OUT])
        .example("price = \"median\"\nnu = 0.1\nwindow = 6000"),
        Box::new(|s: &Section<'_>, _: &BuildContext<'_>| {
            Ok(Box::new(Bvc::from_section(s)?) as Box<dyn Node>)
        }),
    )?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_student_t_cdf_matches_closed_forms() {
        // nu = 1 is the Cauchy: 1/2 + atan(x)/pi; nu = 2: 1/2 + x / (2 sqrt(2 + x^2)).
        let cauchy = StudentsT::new(0.0, 1.0, 1.0).unwrap();
        let two = StudentsT::new(0.0, 1.0, 2.0).unwrap();
        for x in [-5.0, -1.0, -0.3, 0.0, 0.7, 2.0, 10.0] {
            let c = 0.5 + f64::atan(x) / std::f64::consts::PI;
            assert!((student_t_cdf(&cauchy, x) - c).abs() < 1e-12, "{x}");
            let t = 0.5 + x / (2.0 * (2.0 + x * x).sqrt());
            assert!((student_t_cdf(&two, x) - t).abs() < 1e-12, "{x}");
        }
        let small = StudentsT::new(0.0, 1.0, 0.1).unwrap();
        assert_eq!(student_t_cdf(&small, 0.0), 0.5);
        // Heavy tails: even at 1000 sigma a tenth of the mass is beyond.
        let far = student_t_cdf(&small, 1000.0);
        assert!(far > 0.5 && far < 0.9, "{far}");
        assert_eq!(student_t_cdf(&small, f64::INFINITY), 1.0);
    }

    #[test]
    fn the_accepted_range_of_nu_gives_a_cdf_everywhere_and_the_rest_is_refused() {
        for nu in [1e-6, 1e6] {
            let d = StudentsT::new(0.0, 1.0, nu).unwrap();
            let mut last = 0.0;
            for x in [-1e300, -1e3, -1.0, -1e-3, 0.0, 1e-3, 1.0, 1e3, 1e300] {
                let c = student_t_cdf(&d, x);
                assert!((0.0..=1.0).contains(&c) && c >= last, "nu {nu}, x {x}: {c}");
                last = c;
            }
        }
        // At 1e6 degrees of freedom the CDF at 1 is the normal's 0.841344746...
        let d = StudentsT::new(0.0, 1.0, 1e6).unwrap();
        assert!((student_t_cdf(&d, 1.0) - 0.841_344_746_068_543).abs() < 1e-6);
        for nu in [5e-324, 1e-7, 2e6, f64::NAN, -1.0] {
            let p = BvcParams {
                nu,
                ..BvcParams::default()
            };
            let e = Bvc::new("b", p).unwrap_err();
            assert_eq!(e.0, "nu", "{nu}");
        }
    }
}
