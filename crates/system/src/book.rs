//! The event loop's state between bars ([`Book`]): the portfolio, the orders waiting
//! for their bar, the fills and the audit, with the loop's steps that change them
//! (aggregate a bar's prices, fill the due orders, decide).

use kf_frame::{Frame, Timestamp, View};

use crate::broker::{BarAggregate, fill_orders};
use crate::engine::{Fills, Orders, SystemRun, record_orders};
use crate::fill_rule::{Audit, Queued, committed, take_due};
use crate::learning::States;
use crate::market::{AssetMap, ForecastColumns, Market};
use crate::portfolio::{BarRecord, Portfolio, Stats};
use crate::processor::{Decide, ForecastProcessor};
use crate::spec::SystemSpec;

/// The event loop's state between bars.
#[derive(serde::Serialize, serde::Deserialize)]
pub(crate) struct Book {
    pub(crate) portfolio: Portfolio,
    pub(crate) agg: BarAggregate,
    /// Orders decided and not yet filled, oldest first.
    pub(crate) queue: std::collections::VecDeque<Queued>,
    /// The orders filled over the current bar (the due queue entries, summed).
    pub(crate) pending: Vec<f64>,
    /// Holdings plus queued orders: what the processor trades from.
    pub(crate) committed: Vec<f64>,
    pub(crate) fill_px: Vec<f64>,
    pub(crate) filled: Vec<f64>,
    pub(crate) cost: Vec<f64>,
    pub(crate) forecast: Vec<f64>,
    /// Later horizons' forecasts (`[system] horizons`).
    pub(crate) horizons: Vec<Vec<f64>>,
    pub(crate) vol: Vec<f64>,
    // One data row scattered into system slots (slots no frame asset maps to stay NaN).
    pub(crate) row_price: Vec<f64>,
    pub(crate) row_volume: Vec<f64>,
    pub(crate) totals: crate::broker::FillTotals,
    // The records: a checkpoint keeps them apart (history segments, a journal), so
    // the book's own serialized form is its state between bars only.
    #[serde(skip)]
    pub(crate) bars: Vec<BarRecord>,
    #[serde(skip)]
    pub(crate) orders: Orders,
    #[serde(skip)]
    pub(crate) fills: Fills,
    pub(crate) stale: u64,
    pub(crate) audit: Audit,
    /// Populates the records' pages ahead of them on another core.
    #[serde(skip)]
    prefault: Option<crate::prefault::Prefault>,
    /// Filled orders' vectors, reused by later decisions (a decision allocates
    /// nothing once the queue has reached its length).
    #[serde(skip)]
    spare: Vec<Vec<f64>>,
}

impl Book {
    /// A book for `n` assets and `decisions` decisions.
    pub(crate) fn new(n: usize, cash: f64, decisions: usize) -> Book {
        let mut orders = Orders::default();
        let mut fills = Fills::default();
        // Room for every order and fill the run can record (an order per asset and
        // decision at most), reserved up front: address space, not memory, since
        // pages are touched only as records land. The vectors then never move; grown
        // by doubling instead, they would copy every record about twice, into fresh
        // pages the kernel zeroes first. A run too large for the reservation (an
        // eighth of the machine's memory per vector) grows the rest of the way.
        let worst = n.saturating_mul(decisions);
        let room = |bytes: usize| {
            let cap = usize::try_from(kf_frame::budget::memory_limit() / 8).unwrap_or(usize::MAX);
            worst.min(cap / bytes)
        };
        let _ = orders.ts.try_reserve_exact(room(8));
        let _ = orders.asset.try_reserve_exact(room(4));
        let _ = orders.quantity.try_reserve_exact(room(8));
        let _ = orders.mark.try_reserve_exact(room(8));
        let _ = fills.order_ts.try_reserve_exact(room(8));
        let _ = fills.ts.try_reserve_exact(room(8));
        let _ = fills.asset.try_reserve_exact(room(4));
        let _ = fills.quantity.try_reserve_exact(room(8));
        let _ = fills.price.try_reserve_exact(room(8));
        let _ = fills.cost.try_reserve_exact(room(8));
        use crate::prefault::{Prefault, Region};
        let prefault = Prefault::start(vec![
            Region::of(&orders.ts),
            Region::of(&orders.asset),
            Region::of(&orders.quantity),
            Region::of(&orders.mark),
            Region::of(&fills.order_ts),
            Region::of(&fills.ts),
            Region::of(&fills.asset),
            Region::of(&fills.quantity),
            Region::of(&fills.price),
            Region::of(&fills.cost),
        ]);
        Book {
            portfolio: Portfolio::new(n, cash),
            agg: BarAggregate::new(n),
            queue: std::collections::VecDeque::new(),
            pending: vec![0.0; n],
            committed: vec![0.0; n],
            fill_px: vec![f64::NAN; n],
            filled: vec![0.0; n],
            cost: vec![0.0; n],
            forecast: vec![f64::NAN; n],
            horizons: Vec::new(),
            vol: vec![f64::NAN; n],
            row_price: vec![f64::NAN; n],
            row_volume: vec![f64::NAN; n],
            totals: Default::default(),
            bars: Vec::with_capacity(decisions),
            orders,
            fills,
            stale: 0,
            audit: Audit::default(),
            prefault,
            spare: Vec::new(),
        }
    }

    /// Folds the interval's rows (price first, volume second) into the aggregate.
    pub(crate) fn aggregate(&mut self, rows: &Frame, map: &AssetMap) {
        self.agg.clear();
        let price = rows.feature_at(0);
        let volume = (rows.n_features() > 1).then(|| rows.feature_at(1));
        for r in 0..rows.n_rows() {
            if map.is_identity() {
                // The frame's assets are the system's: its rows are used as they are.
                self.agg
                    .add_row(price.row(r), volume.as_ref().map(|vf| vf.row(r)));
                continue;
            }
            map.scatter(price.row(r), &mut self.row_price);
            if let Some(vf) = &volume {
                map.scatter(vf.row(r), &mut self.row_volume);
            }
            self.agg.add_row(
                &self.row_price,
                volume.as_ref().map(|_| self.row_volume.as_slice()),
            );
        }
    }

    /// Fills the orders decided at or before `prev` over the bar `(prev, tau]`
    /// (whose price rows are `rows`, each `freq` long) and marks the portfolio.
    pub(crate) fn fill(&mut self, prev: i64, tau: i64, rows: &Frame, freq: i64, spec: &SystemSpec) {
        let order_ts = take_due(&mut self.queue, prev, &mut self.pending, &mut self.spare);
        if let Some((_, decided)) = order_ts
            && self.pending.iter().any(|&q| q != 0.0)
        {
            let ends = rows.end_ts();
            // A price row that ended by the decision was observed before the order
            // existed: the fill rule is broken. A row that started before the decision
            // and ended after it straddles the decision grid (data bars not aligned
            // with `[system] bar`, such as daily bars ending 21:00 on a grid of
            // midnights): counted, not a violation, since its price is its end's.
            if let Some(&end) = ends.iter().find(|&&e| e <= decided) {
                self.audit.early_fills += 1;
                self.audit.violation(|| {
                    format!(
                        "an order decided at {} filled over the price row ending {}, before \
                         the order existed",
                        Timestamp(decided),
                        Timestamp(end)
                    )
                });
            }
            self.audit.straddling_rows += ends
                .iter()
                .filter(|&&e| e - freq < decided && e > decided)
                .count() as u64;
        }
        self.agg.fill_prices(spec.fill, &mut self.fill_px);
        self.totals = fill_orders(
            &self.pending,
            &self.fill_px,
            self.agg.volume(),
            &spec.costs,
            &mut self.filled,
            &mut self.cost,
        );
        for (i, &q) in self.filled.iter().enumerate() {
            if q != 0.0 {
                self.fills
                    .order_ts
                    .push(order_ts.map_or(prev, |(ts, _)| ts));
                self.fills.ts.push(tau);
                self.fills.asset.push(i as u32);
                self.fills.quantity.push(q);
                self.fills.price.push(self.fill_px[i]);
                self.fills.cost.push(self.cost[i]);
            }
        }
        self.portfolio.apply_fills(&self.filled, &self.totals);
        self.portfolio.update_marks(self.agg.last());
    }

    /// Turns the forecast row `r` of `frame` into orders decided at `decided`,
    /// queued for their bar.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn decide(
        &mut self,
        tau: i64,
        decided: i64,
        frame: &View<'_>,
        r: usize,
        c: &ForecastColumns,
        map: &AssetMap,
        processor: &mut dyn ForecastProcessor,
    ) {
        let vol = c.gather(
            frame,
            r,
            map,
            &mut self.forecast,
            &mut self.horizons,
            &mut self.vol,
        );
        committed(&self.portfolio.holdings, &self.queue, &mut self.committed);
        let n = self.committed.len();
        let mut quantity = self.spare.pop().unwrap_or_default();
        quantity.clear();
        quantity.resize(n, 0.0);
        processor.orders(
            &Decide {
                forecast: &self.forecast,
                volatility: vol,
                horizons: &self.horizons,
                price: &self.portfolio.mark,
                holdings: &self.committed,
            },
            &mut quantity,
        );
        record_orders(&mut self.orders, tau, &quantity, &self.portfolio.mark);
        if let Some(p) = &mut self.prefault {
            p.advance(self.orders.ts.len().max(self.fills.ts.len()));
        }
        self.queue.push_back(Queued {
            ts: tau,
            decided,
            quantity,
        });
    }

    pub(crate) fn finish(self, assets: Vec<String>, spec: &SystemSpec, grid: &[i64]) -> SystemRun {
        let per_year = spec
            .bars_per_year
            .unwrap_or_else(|| Market::bars_per_year(grid, spec.bar));
        let stats = Stats::from_bars(&self.bars, spec.initial_cash, per_year);
        SystemRun {
            assets,
            bars: self.bars,
            orders: self.orders,
            fills: self.fills,
            holdings: self.portfolio.holdings,
            marks: self.portfolio.mark,
            stale_forecasts: self.stale,
            audit: self.audit,
            fits: Vec::new(),
            states: States::new(),
            stats,
        }
    }
}
