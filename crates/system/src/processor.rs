//! Forecast processors: from one bar's forecasts, prices and holdings to orders.
//!
//! A processor sees one decision at a time (forecast, optional volatility, mark
//! price and current holdings per asset) and writes the order per asset, in shares.
//! The event-driven system and the research evaluator call the same processor with
//! the same inputs in the same order, which is why their P&L agrees.
//!
//! Rules every processor keeps (and the tests check):
//! - an asset whose forecast is NaN, or whose price is missing, zero or negative,
//!   gets no order: its position is held as it is;
//! - an order is never NaN: "no trade" is `0.0`.

use std::fmt::Debug;

use kf_config::{Registry, Section, TypeDoc};
use kf_dataflow::nodes::cross_section::{normal_quantile, uniform_ranks};
use schemars::JsonSchema;

use crate::optimize::{TrajectoryParams, TrajectoryProcessor as Trajectory};
use serde::{Deserialize, Serialize};

/// One decision's inputs, one value per asset in the system's asset order.
#[derive(Clone, Copy, Debug)]
pub struct Decide<'a> {
    /// The forecast (NaN where the model has none).
    pub forecast: &'a [f64],
    /// The forecast's volatility, when the forecast DAG provides one.
    pub volatility: Option<&'a [f64]>,
    /// Forecasts of later horizons (`[system] horizons`), one vector per horizon
    /// after the first, each one value per asset; empty when none are configured.
    pub horizons: &'a [Vec<f64>],
    /// The last known price (NaN where none is known yet).
    pub price: &'a [f64],
    /// Current holdings, in shares.
    pub holdings: &'a [f64],
}

/// Turns forecasts into orders.
pub trait ForecastProcessor: Send + Debug {
    /// The registry name (`cross_sectional`, `threshold`).
    fn kind(&self) -> &'static str;

    /// Writes into `orders` the shares to trade per asset (`0.0` for none).
    /// `orders` has one slot per asset, like every slice of `input`.
    fn orders(&mut self, input: &Decide<'_>, orders: &mut [f64]);

    /// Checks, when the system is built, that this processor can serve `horizons`
    /// forecast horizons (the prediction, then `[system] horizons`), so that a
    /// decision never finds out. Most processors read the first horizon only.
    ///
    /// # Errors
    /// The processor's key to change and why.
    fn check_horizons(&self, horizons: usize) -> Result<(), (&'static str, String)> {
        let _ = horizons;
        Ok(())
    }

    /// Forgets what earlier decisions left behind (open positions, entry prices),
    /// for a fresh run.
    fn reset(&mut self);

    /// What earlier decisions left behind, as bytes, so that a run checkpointed
    /// after a decision can be continued in another process (a system over grown
    /// data, a restarted live run) with the orders the uncut run would give.
    /// `None` (the default): the processor cannot save it, and runs with it are
    /// never continued from a checkpoint.
    fn save_state(&self) -> Option<Vec<u8>> {
        None
    }

    /// Restores what [`ForecastProcessor::save_state`] gave.
    ///
    /// # Errors
    /// A message when the bytes do not fit this processor (the default: it saves
    /// nothing it could restore).
    fn load_state(&mut self, bytes: &[u8]) -> Result<(), String> {
        let _ = bytes;
        Err(format!(
            "the `{}` processor cannot restore a saved state",
            self.kind()
        ))
    }
}

/// Cross-sectional processing: target dollars proportional to the gaussian rank of
/// the forecast (divided by volatility squared when there is one), scaled to a
/// target gross market value.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(default)]
pub struct CrossSectionalParams {
    /// Gross market value of the target portfolio (sum of absolute dollars).
    pub target_gmv: f64,
    /// Subtract the cross-sectional mean weight, so longs and shorts balance.
    pub dollar_neutral: bool,
    /// Largest absolute target holding of one asset, in dollars.
    pub max_holding: Option<f64>,
    /// Largest absolute trade in one asset per bar, in dollars.
    pub max_trade: Option<f64>,
}

impl Default for CrossSectionalParams {
    fn default() -> Self {
        CrossSectionalParams {
            target_gmv: 1e6,
            dollar_neutral: true,
            max_holding: None,
            max_trade: None,
        }
    }
}

/// The cross-sectional processor (see [`CrossSectionalParams`]).
#[derive(Debug)]
pub struct CrossSectional {
    params: CrossSectionalParams,
    // Scratch reused across decisions: valid asset indices, their forecasts, their
    // uniform ranks, the ranking's own scratch, then every asset's weight.
    order: Vec<usize>,
    values: Vec<f64>,
    ranks: Vec<f64>,
    idx: Vec<usize>,
    weight: Vec<f64>,
    /// Normal scores already computed for `z_n` valid assets, by tie group (see
    /// [`CrossSectional::score`]); NaN where not computed yet.
    z: Vec<f64>,
    z_n: usize,
}

impl CrossSectional {
    /// The normal score of uniform rank `p` among `n` valid assets, computed once per
    /// rank: `uniform_ranks` gives a tie group over sorted positions `i..=j` the rank
    /// `((i + j) / 2 + 1 - 0.5) / n`, so `i + j` (at most `2n - 2`) names it. The
    /// table is checked against `p` to the bit, so a score is always
    /// `normal_quantile(p)` itself; a quantile costs more than the rest of a
    /// decision's arithmetic for an asset.
    fn score(&mut self, p: f64, n: usize) -> f64 {
        if self.z_n != n {
            self.z_n = n;
            self.z.clear();
            self.z.resize(2 * n - 1, f64::NAN);
        }
        let key = (p * n as f64 * 2.0 - 1.0).round();
        if !(key >= 0.0 && key < self.z.len() as f64) {
            return normal_quantile(p);
        }
        let k = key as usize;
        let table_p = ((k as f64) / 2.0 + 1.0 - 0.5) / n as f64;
        if table_p.to_bits() != p.to_bits() {
            return normal_quantile(p);
        }
        if self.z[k].is_nan() {
            self.z[k] = normal_quantile(p);
        }
        self.z[k]
    }

    /// A processor with `params`.
    pub fn new(params: CrossSectionalParams) -> CrossSectional {
        CrossSectional {
            params,
            order: Vec::new(),
            values: Vec::new(),
            ranks: Vec::new(),
            idx: Vec::new(),
            weight: Vec::new(),
            z: Vec::new(),
            z_n: 0,
        }
    }
}

fn valid_price(p: f64) -> bool {
    p.is_finite() && p > 0.0
}

impl ForecastProcessor for CrossSectional {
    fn kind(&self) -> &'static str {
        "cross_sectional"
    }

    fn orders(&mut self, input: &Decide<'_>, orders: &mut [f64]) {
        orders.fill(0.0);
        let valid = |i: usize| {
            input.forecast[i].is_finite()
                && valid_price(input.price[i])
                && input
                    .volatility
                    .is_none_or(|v| v[i].is_finite() && v[i] > 0.0)
        };
        self.order.clear();
        self.order.extend((0..orders.len()).filter(|&i| valid(i)));
        let n = self.order.len();
        if n == 0 {
            return;
        }
        // Rank by forecast with the project's one tie rule (tied forecasts share
        // their mean rank, so they get the same weight) and normal scores, as the
        // `gaussian_rank` node does.
        self.values.clear();
        self.values
            .extend(self.order.iter().map(|&i| input.forecast[i]));
        self.ranks.clear();
        self.ranks.resize(n, f64::NAN);
        uniform_ranks(&self.values, &mut self.ranks, &mut self.idx);
        self.weight.clear();
        self.weight.resize(orders.len(), 0.0);
        for k in 0..n {
            let i = self.order[k];
            let z = self.score(self.ranks[k], n);
            self.weight[i] = match input.volatility {
                Some(v) => z / (v[i] * v[i]),
                None => z,
            };
        }
        if self.params.dollar_neutral {
            let mean = self.order.iter().map(|&i| self.weight[i]).sum::<f64>() / n as f64;
            for &i in &self.order {
                self.weight[i] -= mean;
            }
        }
        let gross: f64 = self.order.iter().map(|&i| self.weight[i].abs()).sum();
        let scale = if gross > 0.0 {
            self.params.target_gmv / gross
        } else {
            0.0
        };
        for &i in &self.order {
            let mut dollars = self.weight[i] * scale;
            if let Some(cap) = self.params.max_holding {
                dollars = dollars.clamp(-cap, cap);
            }
            let price = input.price[i];
            let mut trade = dollars / price - input.holdings[i];
            if let Some(cap) = self.params.max_trade {
                trade = trade.clamp(-cap / price, cap / price);
            }
            orders[i] = trade;
        }
    }

    fn reset(&mut self) {}

    // Nothing carries from one decision to the next (its vectors are scratch).
    fn save_state(&self) -> Option<Vec<u8>> {
        Some(Vec::new())
    }

    fn load_state(&mut self, bytes: &[u8]) -> Result<(), String> {
        match bytes.is_empty() {
            true => Ok(()),
            false => Err("the `cross_sectional` processor carries no state".into()),
        }
    }
}

/// Threshold processing, as in a classifier-driven strategy: open a position when
/// the forecast passes a threshold, keep at most `max_positions` open, close on a
/// stop-loss or when the forecast falls back.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(default)]
pub struct ThresholdParams {
    /// Open a long position when the forecast is at least this.
    pub long_above: f64,
    /// Open a short position when the forecast is at most this (no shorts if absent).
    pub short_below: Option<f64>,
    /// Close a position when the forecast no longer passes this fraction of its
    /// entry threshold (1.0: close as soon as the signal no longer passes it).
    pub exit_fraction: f64,
    /// Dollars per position.
    pub position_size: f64,
    /// Most positions open at once; the strongest signals go first.
    pub max_positions: usize,
    /// Close when the price has moved against the position by this fraction of the
    /// entry price (for example 0.02); the asset is not re-entered until its signal
    /// has fallen back below the threshold.
    pub stop_loss: Option<f64>,
}

impl Default for ThresholdParams {
    fn default() -> Self {
        ThresholdParams {
            long_above: 0.7,
            short_below: None,
            exit_fraction: 1.0,
            position_size: 10_000.0,
            max_positions: 10,
            stop_loss: None,
        }
    }
}

/// The threshold processor (see [`ThresholdParams`]).
#[derive(Debug)]
pub struct Threshold {
    params: ThresholdParams,
    // Per asset: the side held (-1, 0, 1), its entry price, and whether a stop-loss
    // bars re-entry until the signal falls back.
    side: Vec<i8>,
    entry: Vec<f64>,
    stopped: Vec<bool>,
    candidates: Vec<(f64, usize, i8)>,
}

impl Threshold {
    /// A processor with `params`.
    pub fn new(params: ThresholdParams) -> Threshold {
        Threshold {
            params,
            side: Vec::new(),
            entry: Vec::new(),
            stopped: Vec::new(),
            candidates: Vec::new(),
        }
    }

    /// The side a forecast asks for: 1 long, -1 short, 0 neither, using the entry
    /// thresholds scaled by `fraction`.
    fn signal(&self, f: f64, fraction: f64) -> i8 {
        if f >= self.params.long_above * fraction {
            1
        } else if self.params.short_below.is_some_and(|s| f <= s * fraction) {
            -1
        } else {
            0
        }
    }
}

impl ForecastProcessor for Threshold {
    fn kind(&self) -> &'static str {
        "threshold"
    }

    fn orders(&mut self, input: &Decide<'_>, orders: &mut [f64]) {
        let n = orders.len();
        orders.fill(0.0);
        if self.side.len() != n {
            self.side = vec![0; n];
            self.entry = vec![f64::NAN; n];
            self.stopped = vec![false; n];
        }
        // Exits first: stop-losses and signals that fell back.
        for i in 0..n {
            let (f, p) = (input.forecast[i], input.price[i]);
            if !f.is_finite() || !valid_price(p) {
                continue;
            }
            if self.stopped[i] && self.signal(f, 1.0) == 0 {
                self.stopped[i] = false;
            }
            let side = self.side[i];
            if side == 0 {
                continue;
            }
            let loss = f64::from(side) * (self.entry[i] - p) / self.entry[i];
            let stop = self.params.stop_loss.is_some_and(|s| loss >= s);
            if stop || self.signal(f, self.params.exit_fraction) != side {
                self.side[i] = 0;
                self.stopped[i] = stop;
            }
        }
        // Entries, strongest signal first, up to the limit.
        let open = self.side.iter().filter(|&&s| s != 0).count();
        self.candidates.clear();
        for i in 0..n {
            let (f, p) = (input.forecast[i], input.price[i]);
            if self.side[i] != 0 || self.stopped[i] || !f.is_finite() || !valid_price(p) {
                continue;
            }
            let s = self.signal(f, 1.0);
            if s != 0 {
                self.candidates.push((f.abs(), i, s));
            }
        }
        self.candidates
            .sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
        let room = self.params.max_positions.saturating_sub(open);
        for &(_, i, s) in self.candidates.iter().take(room) {
            self.side[i] = s;
            self.entry[i] = input.price[i];
        }
        for (i, order) in orders.iter_mut().enumerate() {
            let (f, p) = (input.forecast[i], input.price[i]);
            if !f.is_finite() || !valid_price(p) {
                continue;
            }
            // A position holds the shares bought at entry; it is not resized as the
            // price moves.
            let target = if self.side[i] == 0 {
                0.0
            } else {
                f64::from(self.side[i]) * self.params.position_size / self.entry[i]
            };
            *order = target - input.holdings[i];
        }
    }

    fn reset(&mut self) {
        self.side.clear();
        self.entry.clear();
        self.stopped.clear();
    }

    fn save_state(&self) -> Option<Vec<u8>> {
        postcard::to_stdvec(&(&self.side, &self.entry, &self.stopped)).ok()
    }

    fn load_state(&mut self, bytes: &[u8]) -> Result<(), String> {
        let (side, entry, stopped): (Vec<i8>, Vec<f64>, Vec<bool>) = postcard::from_bytes(bytes)
            .map_err(|e| format!("a saved `threshold` state does not decode: {e}"))?;
        if side.len() != entry.len() || side.len() != stopped.len() {
            return Err("a saved `threshold` state has vectors of different lengths".into());
        }
        (self.side, self.entry, self.stopped) = (side, entry, stopped);
        Ok(())
    }
}

/// Forecast processors by name, for `[system.processor] type = "..."`.
pub type ProcessorTypes = Registry<Box<dyn ForecastProcessor>>;

/// The built-in forecast processors: `cross_sectional`, `threshold` and `trajectory`, each built
/// from its parameters in the section.
pub fn builtin_processors() -> ProcessorTypes {
    let mut r = ProcessorTypes::new("forecast processor");
    // Fixed, distinct names registered into an empty registry cannot collide.
    let _ = r.insert(
        "cross_sectional",
        TypeDoc::new(
            "cross-sectional target holdings: a gaussian rank of the forecasts (over \
             volatility squared when given), dollar-neutral, scaled to a gross value",
        )
        .params_of::<CrossSectionalParams>(),
        Box::new(|s: &Section<'_>| {
            let p: CrossSectionalParams = s.deserialize()?;
            check_positive(s, "target_gmv", Some(p.target_gmv))?;
            check_positive(s, "max_holding", p.max_holding)?;
            check_positive(s, "max_trade", p.max_trade)?;
            Ok(Box::new(CrossSectional::new(p)) as Box<dyn ForecastProcessor>)
        }),
    );
    let _ = r.insert(
        "threshold",
        TypeDoc::new(
            "per-asset positions: long above a threshold, short below another, with a \
             stop loss and a partial exit",
        )
        .params_of::<ThresholdParams>(),
        Box::new(|s: &Section<'_>| {
            let p: ThresholdParams = s.deserialize()?;
            check_positive(s, "position_size", Some(p.position_size))?;
            check_positive(s, "stop_loss", p.stop_loss)?;
            check_positive(s, "exit_fraction", Some(p.exit_fraction))?;
            if !p.long_above.is_finite() || p.short_below.is_some_and(|x| !x.is_finite()) {
                return Err(s.invalid("long_above", "thresholds must be finite numbers"));
            }
            Ok(Box::new(Threshold::new(p)) as Box<dyn ForecastProcessor>)
        }),
    );
    let _ = r.insert(
        "trajectory",
        TypeDoc::new(
            "seed 002's dynamic optimizer: plans the weights of the strongest forecasts \
             over the horizons ([system] prediction, then [system] horizons), net of \
             square-root costs, and trades to the first horizon's",
        )
        .params_of::<TrajectoryParams>(),
        Box::new(|s: &Section<'_>| {
            let p: TrajectoryParams = s.deserialize()?;
            check_positive(s, "target_gmv", Some(p.target_gmv))?;
            check_positive(s, "halflife", Some(p.halflife))?;
            check_positive(s, "max_exact", Some(p.max_exact))?;
            if p.max_exact > crate::optimize::MAX_EXACT_LIMIT {
                return Err(s.invalid(
                    "max_exact",
                    format!(
                        "must be at most {:e} trajectories, not {:?}",
                        crate::optimize::MAX_EXACT_LIMIT,
                        p.max_exact
                    ),
                ));
            }
            if !(p.cost.is_finite() && p.cost >= 0.0) {
                return Err(s.invalid("cost", "must be a non-negative finite number"));
            }
            if !(p.ridge.is_finite() && p.ridge >= 0.0) {
                return Err(s.invalid("ridge", "must be a non-negative finite number"));
            }
            if !(1..=64).contains(&p.units) {
                return Err(s.invalid("units", format!("must be 1 to 64, not {}", p.units)));
            }
            if !(1..=12).contains(&p.max_assets) {
                return Err(s.invalid(
                    "max_assets",
                    format!("must be 1 to 12, not {}", p.max_assets),
                ));
            }
            if !(1..=100_000).contains(&p.beam_width) {
                return Err(s.invalid("beam_width", "must be 1 to 100000"));
            }
            let omega = crate::optimize::WeightSet::count(p.max_assets, p.units);
            if omega.is_none_or(|c| c > 100_000) {
                return Err(s.invalid(
                    "units",
                    format!(
                        "{} units among {} assets give over 100000 weight vectors per \
                         decision; use fewer units or max_assets",
                        p.units, p.max_assets
                    ),
                ));
            }
            let method = p.search_method().map_err(|m| s.invalid("method", m))?;
            Ok(Box::new(Trajectory::new(p, method)) as Box<dyn ForecastProcessor>)
        }),
    );
    r
}

fn check_positive(s: &Section<'_>, key: &str, v: Option<f64>) -> kf_config::Result<()> {
    match v {
        Some(x) if !(x.is_finite() && x > 0.0) => {
            Err(s.invalid(key, format!("must be a positive finite number, not {x:?}")))
        }
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inverse_normal_matches_published_quantiles() {
        // Standard normal quantiles from any statistics table.
        for (p, z) in [
            (0.5, 0.0),
            (0.975, 1.959_963_984_540_054),
            (0.841_344_746_068_543, 1.0),
            (0.001, -3.090_232_306_167_813),
            (0.01, -2.326_347_874_040_841),
        ] {
            assert!((normal_quantile(p) - z).abs() < 1e-8, "p {p}");
        }
        assert!(normal_quantile(1.5).is_nan());
    }

    #[test]
    fn the_score_table_gives_normal_quantile_itself_to_the_bit() {
        let mut p = CrossSectional::new(CrossSectionalParams::default());
        let (mut out, mut idx) = (Vec::new(), Vec::new());
        // Rows of several sizes, with ties of every length, visited twice so the
        // second pass reads the table; n changes between rows.
        for pass in 0..2 {
            for n in [1usize, 2, 3, 7, 40, 500, 40] {
                let row: Vec<f64> = (0..n).map(|i| ((i * 7 + pass) % 5) as f64).collect();
                out.clear();
                out.resize(n, f64::NAN);
                uniform_ranks(&row, &mut out, &mut idx);
                for &r in &out {
                    assert_eq!(
                        p.score(r, n).to_bits(),
                        normal_quantile(r).to_bits(),
                        "n {n}"
                    );
                }
            }
        }
        // A rank that is not a tie group's (never given by `uniform_ranks`) is still
        // scored exactly.
        assert_eq!(p.score(0.3, 40).to_bits(), normal_quantile(0.3).to_bits());
    }

    #[test]
    fn tied_forecasts_get_the_same_target_as_in_the_gaussian_rank_node() {
        let mut p = CrossSectional::new(CrossSectionalParams {
            target_gmv: 1000.0,
            dollar_neutral: false,
            max_holding: None,
            max_trade: None,
        });
        let mut orders = vec![f64::NAN; 4];
        p.orders(
            &Decide {
                forecast: &[1.0, 1.0, 2.0, 0.0],
                volatility: None,
                horizons: &[],
                price: &[1.0; 4],
                holdings: &[0.0; 4],
            },
            &mut orders,
        );
        // Ranks 2.5, 2.5, 4, 1 of 4: uniform 0.5, 0.5, 0.875, 0.125; normal scores 0,
        // 0, z, -z; half the gross on each tail. (With ties broken by asset order the
        // two tied assets would get the scores of 0.375 and 0.625: opposite signs.)
        assert_eq!(orders[0], 0.0);
        assert_eq!(orders[1], 0.0);
        assert!((orders[2] - 500.0).abs() < 1e-9, "{orders:?}");
        assert!((orders[3] + 500.0).abs() < 1e-9, "{orders:?}");
    }
}
