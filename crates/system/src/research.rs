//! The research P&L: the same strategy evaluated from the batch forecasts and the
//! price history, without a clock, a view or a broker.
//!
//! Prices are bucketed once onto the decision grid (fill price, volume and last
//! price per bar and asset, as matrices); the forecasts come from one batch run of
//! the DAG. P&L is computed from price changes,
//! `Σ h (M_k - M_{k-1}) + Σ q (M_k - P_k) - costs`, not from cash: a second
//! algorithm, so agreement with the event-driven system (to the cent, which a test
//! checks) says both are right.

use std::sync::Arc;

use kf_dataflow::{Keep, NodeId, Phase, RunContext, RunOptions};
use kf_frame::{Frame, Timestamp};

use crate::broker::{BarAggregate, FillTotals, fill_orders};
use crate::engine::{Orders, System, record_orders};
use crate::error::Result;
use crate::fill_rule::{Queued, committed, known_last, take_due};
use crate::learning::{FitRecord, fit_at};
use crate::market::{AssetMap, ForecastColumns, Market};
use crate::portfolio::{BarRecord, Stats};
use crate::processor::{Decide, ForecastProcessor};

/// What the research evaluator computed.
#[derive(Clone, Debug)]
pub struct ResearchRun {
    /// One record per bar.
    pub bars: Vec<BarRecord>,
    /// Every order.
    pub orders: Orders,
    /// Holdings at the end.
    pub holdings: Vec<f64>,
    /// The fits made, as the event loop makes them.
    pub fits: Vec<FitRecord>,
    /// The run's figures.
    pub stats: Stats,
}

/// Per-bar price matrices on the decision grid, row-major (bar x asset).
struct PriceGrid {
    fill: Vec<f64>,
    volume: Vec<f64>,
    last: Vec<f64>,
}

fn price_grid(
    market: &Market,
    grid: &[i64],
    bar: i64,
    fill: crate::broker::FillPrice,
) -> PriceGrid {
    let n = market.assets.len();
    let prices = &market.prices;
    let ts = prices.end_ts();
    let price = prices.feature_at(0);
    let volume = (prices.n_features() > 1).then(|| prices.feature_at(1));
    let mut agg = BarAggregate::new(n);
    let mut out = PriceGrid {
        fill: Vec::with_capacity(grid.len() * n),
        volume: Vec::with_capacity(grid.len() * n),
        last: Vec::with_capacity(grid.len() * n),
    };
    let mut px = Vec::with_capacity(n);
    let mut r = ts.partition_point(|&t| t <= grid[0] - bar);
    for &tau in grid {
        agg.clear();
        while r < ts.len() && ts[r] <= tau {
            agg.add_row(price.row(r), volume.as_ref().map(|v| v.row(r)));
            r += 1;
        }
        agg.fill_prices(fill, &mut px);
        out.fill.extend_from_slice(&px);
        out.volume.extend_from_slice(agg.volume());
        out.last.extend_from_slice(agg.last());
    }
    out
}

/// Evaluates `system`'s strategy from a batch run of its DAG on the full history.
///
/// # Errors
/// A DAG error or a forecast column missing from the forecast node's output.
pub fn research(system: &mut System<'_>) -> Result<ResearchRun> {
    let decided = decision_times(system);
    let (forecasts, node, fits) = forecast_frame(system, &decided)?;
    let forecasts = &forecasts;
    let spec = system.spec.clone();
    let grid = system.grid.clone();
    let n = system.market.assets.len();
    let prices = price_grid(&system.market, &grid, spec.bar, spec.fill);
    let mut map = AssetMap::default();
    system
        .market
        .map_assets(forecasts.assets_shared(), &mut map);
    let columns = if forecasts.is_empty() {
        None
    } else {
        Some(ForecastColumns::find(
            &forecasts.view(),
            node.as_str(),
            &spec,
        )?)
    };
    let processor: &mut dyn ForecastProcessor = system.processor_mut();
    processor.reset();

    let (mut h, mut mark) = (vec![0.0; n], vec![f64::NAN; n]);
    let (mut pending, mut filled, mut cost) = (vec![0.0; n], vec![0.0; n], vec![0.0; n]);
    let mut queue: std::collections::VecDeque<Queued> = std::collections::VecDeque::new();
    let mut held = vec![0.0; n];
    let (mut forecast, mut vol) = (vec![f64::NAN; n], vec![f64::NAN; n]);
    let mut later: Vec<Vec<f64>> = Vec::new();
    let mut nav = spec.initial_cash;
    let mut bars = Vec::with_capacity(grid.len());
    let mut orders = Orders::default();
    let f_ts = forecasts.end_ts();
    let mut prev = grid[0] - spec.bar;
    // Filled orders' vectors, reused by later decisions.
    let mut spare = Vec::new();
    for (k, &tau) in grid.iter().enumerate() {
        let at = k * n..(k + 1) * n;
        let (px, v, last) = (
            &prices.fill[at.clone()],
            &prices.volume[at.clone()],
            &prices.last[at],
        );
        let decided = decided[k];
        take_due(&mut queue, prev, &mut pending, &mut spare);
        let t: FillTotals = fill_orders(&pending, px, v, &spec.costs, &mut filled, &mut cost);
        let mut pnl = 0.0;
        for i in 0..n {
            let m = if last[i].is_finite() && last[i] > 0.0 {
                last[i]
            } else {
                mark[i]
            };
            if h[i] != 0.0 {
                pnl += h[i] * (m - mark[i]);
            }
            if filled[i] != 0.0 {
                pnl += filled[i] * (m - px[i]);
            }
            h[i] += filled[i];
            mark[i] = m;
        }
        pnl -= t.costs;
        let base = nav;
        nav += pnl;
        let (mut gmv, mut nmv) = (0.0, 0.0);
        for i in 0..n {
            if h[i] != 0.0 {
                gmv += (h[i] * mark[i]).abs();
                nmv += h[i] * mark[i];
            }
        }
        bars.push(BarRecord {
            ts: tau,
            decided,
            cash: nav - nmv,
            nav,
            gmv,
            nmv,
            pnl,
            gross_pnl: pnl + t.costs,
            costs: t.costs,
            traded: t.traded,
            net_return: pnl / base,
            fills: t.filled as u64,
            lapsed: t.lapsed as u64,
        });
        // The latest batch row ending in (prev, tau], found by binary search: the
        // batch frame holds every bar, so a scan per decision would be quadratic.
        let row = f_ts
            .partition_point(|&t| t <= tau)
            .checked_sub(1)
            .filter(|&r| f_ts[r] > prev);
        if let (Some(r), Some(c)) = (row, &columns) {
            let volatility = c.gather(
                &forecasts.view(),
                r,
                &map,
                &mut forecast,
                &mut later,
                &mut vol,
            );
            committed(&h, &queue, &mut held);
            let mut quantity = spare.pop().unwrap_or_default();
            quantity.clear();
            quantity.resize(n, 0.0);
            processor.orders(
                &Decide {
                    forecast: &forecast,
                    volatility,
                    horizons: &later,
                    price: &mark,
                    holdings: &held,
                },
                &mut quantity,
            );
            record_orders(&mut orders, tau, &quantity, &mark);
            queue.push_back(Queued {
                ts: tau,
                decided,
                quantity,
            });
        }
        prev = tau;
    }
    let per_year = spec
        .bars_per_year
        .unwrap_or_else(|| Market::bars_per_year(&grid, spec.bar));
    let stats = Stats::from_bars(&bars, spec.initial_cash, per_year);
    Ok(ResearchRun {
        bars,
        orders,
        holdings: h,
        fits,
        stats,
    })
}

/// The decision times the event loop computes: each grid time, or later when a
/// price bar of its interval is known later (its knowledge time plus the feed's
/// delays); never before the previous decision.
fn decision_times(system: &System<'_>) -> Vec<i64> {
    let spec = &system.spec;
    let (p_ts, p_kt) = (
        system.market.prices.end_ts(),
        system.market.prices.knowledge_ts(),
    );
    let view = &system.market_data;
    let delay_of = |t: i64| {
        view.delay_at(Timestamp(t))
            .nanos()
            .saturating_add(spec.clock.delay)
    };
    let mut now = i64::MIN;
    let mut next_time = 0usize;
    let mut prev = system.grid[0] - spec.bar;
    let mut out = Vec::with_capacity(system.grid.len());
    for &tau in &system.grid {
        now = now.max(tau);
        let first = next_time;
        while next_time < p_ts.len() && p_ts[next_time] <= tau {
            next_time += 1;
        }
        if let Some((_, at)) = known_last(p_ts, p_kt, first..next_time, prev, delay_of) {
            now = now.max(at);
        }
        out.push(now);
        prev = tau;
    }
    out
}

/// The forecast node's output over the history, as the event loop sees it: one
/// batch run when nothing is fitted in the loop; otherwise, from each fit to the
/// next, the DAG predicts with that fit's states, carrying its state from segment
/// to segment (tiling invariance makes that the loop's bar-by-bar steps). Each fit
/// is the loop's: same decisions, spans and knowledge cut-offs, on the history.
fn forecast_frame(system: &System<'_>, decided: &[i64]) -> Result<(Frame, NodeId, Vec<FitRecord>)> {
    let mut dag = system.dag(Arc::clone(&system.market.data))?;
    let node = system.forecast_node(&dag)?;
    if let Some(states) = &system.initial_states {
        dag.load_states(states)?;
    }
    let opts = RunOptions {
        up_to: Some(node.clone()),
        parallel: false,
        keep: Keep::Nodes([node.clone()].into_iter().collect()),
    };
    let fits = system.fit_decisions();
    let Some(fit) = system.spec.fit.filter(|_| !fits.is_empty()) else {
        let out = dag.run(&RunContext::new(Phase::Predict, None), &opts)?;
        return Ok((out.df_out(node.as_str())?.clone(), node, Vec::new()));
    };
    let grid = &system.grid;
    let mut fit_dag = system.dag(Arc::clone(&system.market.data))?;
    let mut pieces = Vec::with_capacity(fits.len() + 1);
    let mut records = Vec::with_capacity(fits.len());
    // Before the first fit (a run from a loaded state): the loaded models.
    let mut lo = i64::MIN;
    let mut segments: Vec<(Option<usize>, i64)> = Vec::with_capacity(fits.len() + 1);
    if fits[0] > 0 {
        segments.push((None, grid[fits[0] - 1]));
    }
    for (i, &k) in fits.iter().enumerate() {
        let hi = fits
            .get(i + 1)
            .map_or(grid[grid.len() - 1], |&next| grid[next - 1]);
        segments.push((Some(k), hi));
    }
    for (k, hi) in segments {
        if let Some(k) = k {
            let tau = grid[k];
            let (learned, record) = fit_at(
                &mut fit_dag,
                fit,
                tau,
                system.known_by(tau, decided[k]),
                &node,
            )?;
            dag.load_states(&learned)?;
            records.push(record);
        }
        let out = dag.run(&RunContext::new(Phase::Predict, Some((lo, hi))), &opts)?;
        let frame = out.df_out(node.as_str())?;
        if !frame.is_empty() {
            pieces.push(frame.clone());
        }
        lo = hi.saturating_add(1);
    }
    let frame = Frame::concat(&pieces).map_err(kf_dataflow::DataflowError::from)?;
    Ok((frame, node, records))
}
