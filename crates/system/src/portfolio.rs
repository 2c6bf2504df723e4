//! The portfolio: holdings and cash, marked to market each bar, and the statistics
//! over a run.
//!
//! Accounting is cash-based: a fill moves `quantity * price + cost` out of cash and
//! `quantity` into holdings; net asset value is cash plus holdings at the last
//! known price. A bar's P&L is the change in net asset value. (The research
//! evaluator computes the same P&L from price changes instead, a second algorithm
//! the tests compare with this one.)

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::broker::FillTotals;

/// Holdings and cash.
///
/// Invariant: `holdings` and `mark` have one slot per asset; `mark` holds the last
/// positive finite price seen (NaN before the first).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Portfolio {
    /// Cash, in dollars.
    pub cash: f64,
    /// Shares held per asset.
    pub holdings: Vec<f64>,
    /// The price each asset is marked at.
    pub mark: Vec<f64>,
    nav: f64,
}

impl Portfolio {
    /// A portfolio of `cash` and no holdings over `assets` assets.
    pub fn new(assets: usize, cash: f64) -> Portfolio {
        Portfolio {
            cash,
            holdings: vec![0.0; assets],
            mark: vec![f64::NAN; assets],
            nav: cash,
        }
    }

    /// Books the filled quantities and their costs.
    pub fn apply_fills(&mut self, filled: &[f64], totals: &FillTotals) {
        for (h, &q) in self.holdings.iter_mut().zip(filled) {
            *h += q;
        }
        self.cash -= totals.cash_out + totals.costs;
    }

    /// Moves marks to `last` where it has a valid price (others keep their mark).
    pub fn update_marks(&mut self, last: &[f64]) {
        for (m, &p) in self.mark.iter_mut().zip(last) {
            if p.is_finite() && p > 0.0 {
                *m = p;
            }
        }
    }

    /// Gross and net market value at the current marks.
    pub fn exposures(&self) -> (f64, f64) {
        let (mut gmv, mut nmv) = (0.0, 0.0);
        for (&h, &m) in self.holdings.iter().zip(&self.mark) {
            if h != 0.0 {
                gmv += (h * m).abs();
                nmv += h * m;
            }
        }
        (gmv, nmv)
    }

    /// Closes the bar ending at `ts` (decided at `decided`): the P&L since the last
    /// close and the bar's record.
    pub fn close_bar(&mut self, ts: i64, decided: i64, fills: &FillTotals) -> BarRecord {
        let (gmv, nmv) = self.exposures();
        let nav = self.cash + nmv;
        let pnl = nav - self.nav;
        let base = self.nav;
        self.nav = nav;
        BarRecord {
            ts,
            decided,
            cash: self.cash,
            nav,
            gmv,
            nmv,
            pnl,
            gross_pnl: pnl + fills.costs,
            costs: fills.costs,
            traded: fills.traded,
            net_return: pnl / base,
            fills: fills.filled as u64,
            lapsed: fills.lapsed as u64,
        }
    }
}

/// One bar of the portfolio's history.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct BarRecord {
    /// The bar's decision time (its end on the system's grid).
    pub ts: i64,
    /// When the decision was actually taken (clock time after the data arrived).
    pub decided: i64,
    /// Cash after the bar's fills.
    pub cash: f64,
    /// Net asset value at the bar's marks.
    pub nav: f64,
    /// Gross market value.
    pub gmv: f64,
    /// Net market value.
    pub nmv: f64,
    /// Change in net asset value over the bar (after costs).
    pub pnl: f64,
    /// P&L before costs.
    pub gross_pnl: f64,
    /// Transaction costs paid in the bar.
    pub costs: f64,
    /// Absolute notional traded in the bar.
    pub traded: f64,
    /// `pnl` over the previous bar's net asset value.
    pub net_return: f64,
    /// Orders filled in the bar.
    pub fills: u64,
    /// Orders that lapsed unfilled in the bar.
    pub lapsed: u64,
}

/// The figures over a whole run.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Stats {
    /// Bars run.
    pub bars: u64,
    /// Total P&L after costs.
    pub pnl: f64,
    /// Total P&L before costs.
    pub gross_pnl: f64,
    /// Total transaction costs.
    pub costs: f64,
    /// Total return after costs, on the starting capital.
    pub net_return: f64,
    /// Total return before costs, on the starting capital.
    pub gross_return: f64,
    /// Mean gross market value over the bars.
    pub mean_gmv: f64,
    /// Mean net market value over the bars.
    pub mean_nmv: f64,
    /// Absolute notional traded.
    pub traded: f64,
    /// Mean traded notional per bar over mean gross market value.
    pub turnover_per_bar: f64,
    /// Sharpe ratio of the bar returns, annualized with `bars_per_year`.
    pub sharpe: f64,
    /// Bars per year used to annualize.
    pub bars_per_year: f64,
    /// Largest fall of net asset value from a peak, in dollars.
    pub max_drawdown: f64,
    /// `max_drawdown` as a fraction of the peak it fell from.
    pub max_drawdown_pct: f64,
    /// Share of bars with a non-zero P&L whose P&L was positive.
    pub hit_rate: f64,
    /// Orders filled.
    pub fills: u64,
    /// Orders that lapsed unfilled.
    pub lapsed: u64,
}

impl Stats {
    /// The statistics of `bars`, starting from `capital`, annualized with
    /// `bars_per_year`.
    pub fn from_bars(bars: &[BarRecord], capital: f64, bars_per_year: f64) -> Stats {
        let n = bars.len() as f64;
        if bars.is_empty() {
            return Stats {
                bars_per_year,
                ..Stats::default()
            };
        }
        let sum = |f: fn(&BarRecord) -> f64| bars.iter().map(f).sum::<f64>();
        let (pnl, costs, traded) = (sum(|b| b.pnl), sum(|b| b.costs), sum(|b| b.traded));
        let mean_gmv = sum(|b| b.gmv) / n;
        let mean_ret = sum(|b| b.net_return) / n;
        let var = bars
            .iter()
            .map(|b| (b.net_return - mean_ret).powi(2))
            .sum::<f64>()
            / (n - 1.0).max(1.0);
        let (mut peak, mut dd, mut dd_pct) = (capital, 0.0f64, 0.0f64);
        for b in bars {
            peak = peak.max(b.nav);
            if peak - b.nav > dd {
                dd = peak - b.nav;
                dd_pct = dd / peak;
            }
        }
        let moved = bars.iter().filter(|b| b.pnl != 0.0).count();
        let won = bars.iter().filter(|b| b.pnl > 0.0).count();
        Stats {
            bars: bars.len() as u64,
            pnl,
            gross_pnl: pnl + costs,
            costs,
            net_return: pnl / capital,
            gross_return: (pnl + costs) / capital,
            mean_gmv,
            mean_nmv: sum(|b| b.nmv) / n,
            traded,
            turnover_per_bar: if mean_gmv > 0.0 {
                traded / n / mean_gmv
            } else {
                0.0
            },
            sharpe: if var > 0.0 {
                mean_ret / var.sqrt() * bars_per_year.sqrt()
            } else {
                0.0
            },
            bars_per_year,
            max_drawdown: dd,
            max_drawdown_pct: dd_pct,
            hit_rate: if moved > 0 {
                won as f64 / moved as f64
            } else {
                0.0
            },
            fills: bars.iter().map(|b| b.fills).sum(),
            lapsed: bars.iter().map(|b| b.lapsed).sum(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bar(nav: f64, pnl: f64, ret: f64) -> BarRecord {
        BarRecord {
            ts: 0,
            decided: 0,
            cash: 0.0,
            nav,
            gmv: 100.0,
            nmv: 0.0,
            pnl,
            gross_pnl: pnl,
            costs: 0.0,
            traded: 50.0,
            net_return: ret,
            fills: 1,
            lapsed: 0,
        }
    }

    #[test]
    fn drawdown_hit_rate_and_sharpe_by_hand() {
        // NAV 1000 -> 1010 -> 990 -> 1000 -> 1020.
        let bars = [
            bar(1010.0, 10.0, 0.01),
            bar(990.0, -20.0, -20.0 / 1010.0),
            bar(1000.0, 10.0, 10.0 / 990.0),
            bar(1020.0, 20.0, 0.02),
        ];
        let s = Stats::from_bars(&bars, 1000.0, 4.0);
        assert_eq!(s.pnl, 20.0);
        assert_eq!(s.max_drawdown, 20.0);
        assert!((s.max_drawdown_pct - 20.0 / 1010.0).abs() < 1e-15);
        assert_eq!(s.hit_rate, 0.75);
        assert_eq!(s.turnover_per_bar, 0.5);
        let r = [0.01, -20.0 / 1010.0, 10.0 / 990.0, 0.02];
        let m = r.iter().sum::<f64>() / 4.0;
        let sd = (r.iter().map(|x| (x - m) * (x - m)).sum::<f64>() / 3.0).sqrt();
        assert!((s.sharpe - m / sd * 2.0).abs() < 1e-12);
    }
}
