//! The simulated broker: execution prices over a bar, the cost model, and the fill
//! kernel.
//!
//! An order placed at decision time `τ_k` executes over the next bar `(τ_k, τ_{k+1}]`
//! at that bar's TWAP or VWAP, computed from the market data rows inside it. The
//! rules for what cannot be filled are part of the contract:
//! - an asset with no row carrying a positive finite price in the bar is not
//!   filled (the order lapses and the position is held);
//! - a VWAP fill, or any fill under a cost model with market impact, also needs a
//!   positive total volume in the bar.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Which average price an order fills at.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum FillPrice {
    /// The mean price of the bar's rows.
    #[default]
    Twap,
    /// The volume-weighted mean price of the bar's rows.
    Vwap,
}

/// Transaction costs, in basis points of traded notional: half the bid-ask spread
/// plus a linear market impact that grows with the order's share of the bar's
/// volume (`impact_bps * |quantity| / volume`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(default)]
pub struct CostModel {
    /// Half the bid-ask spread, in bps.
    pub half_spread_bps: f64,
    /// Cost of trading the whole bar's volume, in bps (linear in participation).
    pub impact_bps: f64,
}

impl CostModel {
    /// Whether a fill needs the bar's volume.
    pub fn needs_volume(&self) -> bool {
        self.impact_bps != 0.0
    }

    /// The cost of trading `quantity` at `price` in a bar that traded `volume`.
    #[inline]
    pub fn cost(&self, quantity: f64, price: f64, volume: f64) -> f64 {
        let q = quantity.abs();
        let participation = if self.impact_bps == 0.0 {
            0.0
        } else {
            q / volume
        };
        q * price * (self.half_spread_bps + self.impact_bps * participation) * 1e-4
    }
}

/// One bar's market data rows folded per asset: what fills need (average prices,
/// volume) and what marking needs (the last price).
///
/// Invariant: every vector has one slot per asset of the system.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct BarAggregate {
    price_sum: Vec<f64>,
    count: Vec<f64>,
    value: Vec<f64>,
    volume: Vec<f64>,
    last: Vec<f64>,
}

impl BarAggregate {
    /// An empty aggregate over `assets` assets.
    pub fn new(assets: usize) -> BarAggregate {
        let mut a = BarAggregate::default();
        a.resize(assets);
        a
    }

    fn resize(&mut self, assets: usize) {
        for v in [
            &mut self.price_sum,
            &mut self.count,
            &mut self.value,
            &mut self.volume,
        ] {
            v.clear();
            v.resize(assets, 0.0);
        }
        self.last.clear();
        self.last.resize(assets, f64::NAN);
    }

    /// Empties the aggregate for the next bar (keeping its allocations).
    pub fn clear(&mut self) {
        let n = self.last.len();
        self.resize(n);
    }

    /// Folds in one row: a price per asset and, when the data has one, a volume.
    /// A price that is not positive and finite is ignored, as is a volume that is
    /// not finite and non-negative.
    ///
    /// The loop has no branch, so it vectorizes across assets: an ignored value adds
    /// `+0.0`, which leaves every sum the same bits (sums start at `+0.0` and only
    /// grow by positive prices and non-negative volumes, so none is `-0.0`).
    ///
    /// # Panics
    /// If `price` or `volume` has fewer values than the aggregate has assets (a bug
    /// in the caller, which scatters rows into the system's slots).
    #[inline]
    pub fn add_row(&mut self, price: &[f64], volume: Option<&[f64]>) {
        let n = self.last.len();
        let price = &price[..n];
        let (sum, count, last) = (
            &mut self.price_sum[..n],
            &mut self.count[..n],
            &mut self.last[..n],
        );
        match volume {
            None => {
                for i in 0..n {
                    let p = price[i];
                    let ok = p.is_finite() && p > 0.0;
                    sum[i] += if ok { p } else { 0.0 };
                    count[i] += if ok { 1.0 } else { 0.0 };
                    last[i] = if ok { p } else { last[i] };
                }
            }
            Some(volume) => {
                let volume = &volume[..n];
                let (value, vol) = (&mut self.value[..n], &mut self.volume[..n]);
                for i in 0..n {
                    let (p, v) = (price[i], volume[i]);
                    let ok = p.is_finite() && p > 0.0;
                    let both = ok && v.is_finite() && v >= 0.0;
                    sum[i] += if ok { p } else { 0.0 };
                    count[i] += if ok { 1.0 } else { 0.0 };
                    last[i] = if ok { p } else { last[i] };
                    value[i] += if both { p * v } else { 0.0 };
                    vol[i] += if both { v } else { 0.0 };
                }
            }
        }
    }

    /// The bar's fill price per asset (NaN where the asset cannot be filled).
    pub fn fill_prices(&self, kind: FillPrice, out: &mut Vec<f64>) {
        out.clear();
        out.extend((0..self.last.len()).map(|i| match kind {
            FillPrice::Twap if self.count[i] > 0.0 => self.price_sum[i] / self.count[i],
            FillPrice::Vwap if self.volume[i] > 0.0 => self.value[i] / self.volume[i],
            _ => f64::NAN,
        }));
    }

    /// The bar's total volume per asset.
    pub fn volume(&self) -> &[f64] {
        &self.volume
    }

    /// The bar's last valid price per asset (NaN where it had none).
    pub fn last(&self) -> &[f64] {
        &self.last
    }
}

/// What one call of [`fill_orders`] did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct FillTotals {
    /// Sum of `quantity * price` over the fills (signed: buys positive).
    pub cash_out: f64,
    /// Sum of absolute traded notional.
    pub traded: f64,
    /// Sum of costs.
    pub costs: f64,
    /// Orders filled.
    pub filled: usize,
    /// Non-zero orders that could not be filled.
    pub lapsed: usize,
}

/// Fills `orders` (shares per asset) at `price` in a bar with `volume`, writing the
/// filled quantity and cost per asset. An order fills whole or not at all: it lapses
/// when its price is not positive and finite, or when the cost model needs volume
/// and the bar has none.
///
/// One pass over contiguous slices, no allocation: this is the order simulator's
/// hot loop.
pub fn fill_orders(
    orders: &[f64],
    price: &[f64],
    volume: &[f64],
    costs: &CostModel,
    filled: &mut [f64],
    cost: &mut [f64],
) -> FillTotals {
    let needs_volume = costs.needs_volume();
    let mut t = FillTotals::default();
    for i in 0..orders.len() {
        let (q, p, v) = (orders[i], price[i], volume[i]);
        let ok = q != 0.0
            && q.is_finite()
            && p.is_finite()
            && p > 0.0
            && (!needs_volume || (v.is_finite() && v > 0.0));
        if ok {
            let c = costs.cost(q, p, v);
            filled[i] = q;
            cost[i] = c;
            t.cash_out += q * p;
            t.traded += (q * p).abs();
            t.costs += c;
            t.filled += 1;
        } else {
            filled[i] = 0.0;
            cost[i] = 0.0;
            t.lapsed += usize::from(q != 0.0);
        }
    }
    t
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn costs_are_half_spread_plus_linear_impact() {
        let m = CostModel {
            half_spread_bps: 2.0,
            impact_bps: 10.0,
        };
        // 100 shares at $50 = $5000; participation 100 / 1000 = 0.1;
        // 2 + 10 * 0.1 = 3 bps of $5000 = $1.50.
        assert!((m.cost(-100.0, 50.0, 1000.0) - 1.5).abs() < 1e-12);
    }

    #[test]
    fn orders_without_a_price_or_volume_lapse() {
        let m = CostModel {
            half_spread_bps: 1.0,
            impact_bps: 5.0,
        };
        let (mut filled, mut cost) = (vec![9.0; 4], vec![9.0; 4]);
        let t = fill_orders(
            &[10.0, 10.0, -5.0, 0.0],
            &[100.0, f64::NAN, 0.0, 100.0],
            &[1000.0, 1000.0, 1000.0, 1000.0],
            &m,
            &mut filled,
            &mut cost,
        );
        assert_eq!(filled, [10.0, 0.0, 0.0, 0.0]);
        assert_eq!((t.filled, t.lapsed), (1, 2));
        assert_eq!(t.cash_out, 1000.0);
        let zero_volume = fill_orders(&[1.0], &[1.0], &[0.0], &m, &mut filled, &mut cost);
        assert_eq!(zero_volume.lapsed, 1);
    }

    #[test]
    fn twap_and_vwap_by_hand() {
        let mut a = BarAggregate::new(2);
        a.add_row(&[10.0, f64::NAN], Some(&[100.0, 5.0]));
        a.add_row(&[12.0, 0.0], Some(&[300.0, 5.0]));
        let mut out = Vec::new();
        a.fill_prices(FillPrice::Twap, &mut out);
        assert_eq!(out[0], 11.0);
        assert!(out[1].is_nan());
        a.fill_prices(FillPrice::Vwap, &mut out);
        // (10 * 100 + 12 * 300) / 400 = 11.5
        assert_eq!(out[0], 11.5);
        assert_eq!(a.last()[0], 12.0);
        assert!(a.last()[1].is_nan());
    }
}
