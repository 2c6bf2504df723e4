//! The event-driven loop: one decision per bar on the system's clock.
//!
//! At each decision time `τ_k` the system
//! 1. waits on its clock until `τ_k` and until the market data view knows the last
//!    data bar ending in `(τ_{k-1}, τ_k]` (late data holds the decision up); the
//!    clock's time then is the decision's time, `decided_k >= τ_k` (later by the
//!    feed's delay);
//! 2. reads that interval's prices and fills, at the interval's TWAP or VWAP, the
//!    orders whose decision time is at or before the interval's start `τ_{k-1}`:
//!    **an order fills over the first full decision bar that starts at or after the
//!    order was decided**, so no fill uses a price from before its order existed
//!    (with no delay, the orders of `τ_{k-1}` fill over `(τ_{k-1}, τ_k]`; with a
//!    delay of half a bar, one bar later);
//! 3. marks the portfolio to the last known prices and closes the bar's P&L;
//! 4. runs one streaming step of the forecast DAG over the new data and takes the
//!    latest forecast row ending in `(τ_{k-1}, τ_k]`;
//! 5. asks the processor for orders, given the holdings after step 2 plus the
//!    orders still waiting for their bar.
//!
//! Every decision is audited as it is made ([`Audit`]): the forecast row it used
//! must be known by its decision time, and every price row a fill used must start at
//! or after the order's decision time.
//!
//! The portfolio after bar `k` feeds the decision at bar `k`, whose orders fill in
//! bar `k + 1`: the cycle runs through time, never inside the DAG.

use std::sync::Arc;

use kf_config::Config;
use kf_dataflow::replay::{ReplayOptions, wait_for_bar};
use kf_dataflow::{Dag, Keep, NodeId, Phase, RunContext, RunOptions};
use kf_datapull::{Clock, MarketData, ReplaySettings};
use kf_frame::{Duration, Timestamp};

use crate::book::Book;
use crate::error::{Result, SystemError};
pub use crate::fill_rule::Audit;
use crate::fill_rule::known_last;
use crate::learning::{FitRecord, States, fit_at, fit_decisions};
use crate::market::{AssetMap, ForecastColumns, Market};
use crate::portfolio::{BarRecord, Stats};
use crate::processor::ForecastProcessor;
use crate::spec::{ClockKind, SystemSpec};

/// Orders placed, one entry per non-zero order.
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Orders {
    /// Decision time.
    pub ts: Vec<i64>,
    /// Asset slot.
    pub asset: Vec<u32>,
    /// Shares to trade (negative: sell).
    pub quantity: Vec<f64>,
    /// The asset's mark price at the decision.
    pub mark: Vec<f64>,
}

/// Fills, one entry per filled order.
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Fills {
    /// The order's decision time.
    pub order_ts: Vec<i64>,
    /// End of the bar it executed over.
    pub ts: Vec<i64>,
    /// Asset slot.
    pub asset: Vec<u32>,
    /// Shares traded.
    pub quantity: Vec<f64>,
    /// Execution price.
    pub price: Vec<f64>,
    /// Transaction cost.
    pub cost: Vec<f64>,
}

impl Orders {
    /// Appends `other`'s entries.
    pub(crate) fn append(&mut self, mut other: Orders) {
        self.ts.append(&mut other.ts);
        self.asset.append(&mut other.asset);
        self.quantity.append(&mut other.quantity);
        self.mark.append(&mut other.mark);
    }

    /// A copy of the entries from `from` on.
    pub(crate) fn tail(&self, from: usize) -> Orders {
        Orders {
            ts: self.ts[from..].to_vec(),
            asset: self.asset[from..].to_vec(),
            quantity: self.quantity[from..].to_vec(),
            mark: self.mark[from..].to_vec(),
        }
    }
}

impl Fills {
    /// Appends `other`'s entries.
    pub(crate) fn append(&mut self, mut other: Fills) {
        self.order_ts.append(&mut other.order_ts);
        self.ts.append(&mut other.ts);
        self.asset.append(&mut other.asset);
        self.quantity.append(&mut other.quantity);
        self.price.append(&mut other.price);
        self.cost.append(&mut other.cost);
    }

    /// A copy of the entries from `from` on.
    pub(crate) fn tail(&self, from: usize) -> Fills {
        Fills {
            order_ts: self.order_ts[from..].to_vec(),
            ts: self.ts[from..].to_vec(),
            asset: self.asset[from..].to_vec(),
            quantity: self.quantity[from..].to_vec(),
            price: self.price[from..].to_vec(),
            cost: self.cost[from..].to_vec(),
        }
    }
}

/// What a system run produced.
#[derive(Clone, Debug)]
pub struct SystemRun {
    /// The assets, in slot order.
    pub assets: Vec<String>,
    /// One record per bar.
    pub bars: Vec<BarRecord>,
    /// Every order.
    pub orders: Orders,
    /// Every fill.
    pub fills: Fills,
    /// Holdings at the end, per asset.
    pub holdings: Vec<f64>,
    /// The price each asset was last marked at (NaN: never priced).
    pub marks: Vec<f64>,
    /// Forecast rows that arrived after their own bar's decision time (not traded).
    pub stale_forecasts: u64,
    /// What the run's audit counted.
    pub audit: Audit,
    /// The fits made in the loop, in order.
    pub fits: Vec<FitRecord>,
    /// What the DAG's models had learned at the end (the last fit or the loaded
    /// state).
    pub states: States,
    /// The run's figures.
    pub stats: Stats,
}

/// A system: a config's market data, forecast DAG, processor, costs and clock.
#[derive(Debug)]
pub struct System<'a> {
    pub(crate) config: &'a Config,
    pub(crate) types: &'a crate::Registries,
    /// The configured market data view, which each run puts on its clock.
    pub(crate) market_data: Arc<dyn MarketData>,
    /// The `[system]` settings.
    pub spec: SystemSpec,
    pub(crate) processor: Box<dyn ForecastProcessor>,
    /// The market.
    pub market: Market,
    /// The decision times.
    pub grid: Vec<i64>,
    /// The fitted state the runs start from (`kaizenflow run --state`), if any.
    pub(crate) initial_states: Option<States>,
    /// A live system's rows as they arrive (see [`crate::live`]); `None` for a
    /// system over stored data.
    pub(crate) live: Option<Arc<kf_datapull::GrowingSource>>,
}

impl<'a> System<'a> {
    /// Builds the system `config` describes (`[market_data]`, `[dag]`, `[system]`)
    /// from the built-in types, loading the market's prices.
    ///
    /// # Errors
    /// See [`System::from_config_with`].
    pub fn from_config(config: &'a Config) -> Result<System<'a>> {
        System::from_config_with(crate::Registries::builtin(), config)
    }

    /// Builds the system `config` describes, naming types from `types`, through the
    /// same path as [`crate::build_with`], and loads the market's prices. Builds the
    /// DAG once to check it.
    ///
    /// # Errors
    /// A located config error, a market data error, a DAG that learns (the system
    /// runs a DAG's predict phase), or a forecast node that is not the DAG's.
    pub fn from_config_with(
        types: &'a crate::Registries,
        config: &'a Config,
    ) -> Result<System<'a>> {
        System::build(types, config, None)
    }

    /// Builds the system `config` describes (as [`System::from_config_with`]),
    /// starting its runs from the fitted `states` (what `kaizenflow run` saved under
    /// `DIR/state/`): its models predict with them from the first decision, and are
    /// refit only if `[system.fit]` sets `retrain_every`.
    ///
    /// # Errors
    /// Those of [`System::from_config_with`], and a state that does not fit its node
    /// (naming the node).
    pub fn from_config_with_states(
        types: &'a crate::Registries,
        config: &'a Config,
        states: States,
    ) -> Result<System<'a>> {
        System::build(types, config, Some(states))
    }

    pub(crate) fn build(
        types: &'a crate::Registries,
        config: &'a Config,
        initial_states: Option<States>,
    ) -> Result<System<'a>> {
        System::build_on(types, config, initial_states, |data, spec| {
            let market = Market::new(data, spec)?;
            let grid = market.decision_times(spec)?;
            Ok((market, grid))
        })
    }

    /// Builds the system with the market and decision grid that `market` makes
    /// from the unclocked market data (all of it, or the bars after a checkpoint).
    pub(crate) fn build_on(
        types: &'a crate::Registries,
        config: &'a Config,
        initial_states: Option<States>,
        market: impl FnOnce(Arc<dyn MarketData>, &SystemSpec) -> Result<(Market, Vec<i64>)>,
    ) -> Result<System<'a>> {
        let components = crate::build_with(types, config)?;
        let (Some(spec), Some(processor)) = (components.system, components.processor) else {
            return Err(SystemError::Invalid(
                "the config has no [system] section: add one to trade its forecasts".into(),
            ));
        };
        let market_data = components.market_data;
        let (market, grid) = market(market_data.unclocked()?, &spec)?;
        let system = System {
            config,
            types,
            market_data,
            spec,
            processor,
            market,
            grid,
            initial_states,
            live: None,
        };
        let mut dag = system.dag(Arc::clone(&system.market.data))?;
        system.forecast_node(&dag)?;
        if let Some(states) = &system.initial_states {
            dag.load_states(states)?;
        }
        if system.spec.fit.is_none()
            && system.initial_states.is_none()
            && let Some(id) = dag
                .topological_order()
                .into_iter()
                .find(|id| dag.node(id.as_str()).is_ok_and(|n| n.learns()))
        {
            return Err(SystemError::Invalid(format!(
                "node `{id}` learns from data, and nothing fits it: add [system.fit] (with \
                 `lookback`, and `retrain_every` to refit walk-forward) to fit it in the loop, \
                 or start from a fitted state with `kaizenflow run --state DIR`"
            )));
        }
        Ok(system)
    }

    /// The decisions at which runs fit the DAG's models (indices into the grid).
    pub fn fit_decisions(&self) -> Vec<usize> {
        fit_decisions(&self.grid, self.spec.fit, self.initial_states.is_some())
    }

    /// The knowledge cut-off of the decision at `tau` made at `decided`: the latest
    /// knowledge time the view on the run's clock has released by then.
    pub fn known_by(&self, tau: i64, decided: i64) -> i64 {
        decided.saturating_sub(
            self.market_data
                .delay_at(Timestamp(tau))
                .nanos()
                .saturating_add(self.spec.clock.delay),
        )
    }

    /// The forecast DAG, reading `view`.
    ///
    /// # Errors
    /// The DAG's config error.
    pub fn dag(&self, view: Arc<dyn MarketData>) -> Result<Dag> {
        let replay = self.replay_settings();
        Ok(self.types.dataflow.dag_with(
            &self.config.root().section("dag")?,
            Some(&view),
            Some(&replay),
        )?)
    }

    /// How the market data is released on a run's clock: the `[system.clock]` delay
    /// and poll, on the data's own bar grid.
    pub fn replay_settings(&self) -> ReplaySettings {
        ReplaySettings {
            delay: Duration(self.spec.clock.delay),
            freq: Duration(self.market.freq),
            offset: Duration(self.market.offset),
            poll: Duration(self.spec.clock.poll),
        }
    }

    /// The node whose output holds the forecasts.
    ///
    /// # Errors
    /// A configured node the DAG lacks, or a DAG without exactly one sink.
    pub fn forecast_node(&self, dag: &Dag) -> Result<NodeId> {
        if let Some(n) = &self.spec.forecast_node {
            return Ok(dag.node(n)?.id().clone());
        }
        match dag.sinks().as_slice() {
            [one] => Ok(one.clone()),
            many => Err(SystemError::Invalid(format!(
                "the DAG has {} sinks ({}): name the forecasts' node with [system] forecast_node",
                many.len(),
                many.iter()
                    .map(|n| n.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ))),
        }
    }

    /// The forecast processor (the research evaluator runs the same one).
    pub fn processor_mut(&mut self) -> &mut dyn ForecastProcessor {
        self.processor.as_mut()
    }

    /// A fresh clock of the configured kind, reading just before the first decision.
    pub fn clock(&self, kind: ClockKind) -> Arc<dyn Clock> {
        kind.clock(self.grid[0] - self.spec.bar)
    }

    /// Runs the system under its configured clock.
    ///
    /// # Errors
    /// See [`System::run_on`].
    pub fn run(&mut self) -> Result<SystemRun> {
        let clock = self.clock(self.spec.clock.kind);
        self.run_on(clock)
    }

    /// Runs the system on `clock`: builds a view that releases the market data by
    /// knowledge time on that clock, a DAG reading it, and loops over the decision
    /// times.
    ///
    /// # Errors
    /// Data that does not arrive within the clock's timeout (naming the bar), a
    /// DAG error, or a forecast column missing from the forecast node's output.
    pub fn run_on(&mut self, clock: Arc<dyn Clock>) -> Result<SystemRun> {
        let stopped = self.run_loop(clock, None, false)?;
        Ok(self.finish(stopped.state))
    }

    /// The loop's state before the first decision.
    pub(crate) fn fresh_state(&self) -> LoopState {
        LoopState {
            book: Book::new(
                self.market.assets.len(),
                self.spec.initial_cash,
                self.grid.len(),
            ),
            done: 0,
            prev: self.grid[0] - self.spec.bar,
            dag_lo: i64::MIN,
            decided: i64::MIN,
            cut: i64::MIN,
            clock_now: self.grid[0] - self.spec.bar,
            states: self.initial_states.clone().unwrap_or_default(),
            fits: Vec::new(),
        }
    }

    /// The run a loop that stopped after its last decision gives.
    pub(crate) fn finish(&self, state: LoopState) -> SystemRun {
        let mut run = state
            .book
            .finish(self.market.assets.clone(), &self.spec, &self.grid);
        run.fits = state.fits;
        run.states = state.states;
        run
    }

    /// Runs the loop on `clock` from `resume` (a checkpoint's loop state, with what
    /// the DAG and the processor carried then; the start when `None`) to the last
    /// decision; with `save`, also takes what the DAG and the processor carry at the
    /// end.
    pub(crate) fn run_loop(
        &mut self,
        clock: Arc<dyn Clock>,
        resume: Option<Stopped>,
        save: bool,
    ) -> Result<Stopped> {
        self.run_loop_with(clock, resume, save, None, None)
    }

    /// [`System::run_loop`], calling `after` after each decision with where the
    /// loop stands (a durable run records it there).
    pub(crate) fn run_loop_with(
        &mut self,
        clock: Arc<dyn Clock>,
        resume: Option<Stopped>,
        save: bool,
        after: Option<&mut AfterDecision<'_>>,
        feed: Option<&mut (dyn kf_datapull::Feed + '_)>,
    ) -> Result<Stopped> {
        // What a live system's decision may know: set before each decision.
        let cut = Arc::new(std::sync::atomic::AtomicI64::new(i64::MIN));
        let clocked = match &self.live {
            Some(source) => crate::live::view(Arc::clone(source), Arc::clone(&clock), &cut),
            None => self
                .market_data
                .on_clock(Arc::clone(&clock), &self.replay_settings())?,
        };
        // One query per decision, shared by the broker's prices and the DAG's source.
        let view: Arc<dyn MarketData> = Arc::new(kf_datapull::SharedQuery::new(clocked));
        let mut dag = self.dag(Arc::clone(&view))?;
        let node = self.forecast_node(&dag)?;
        self.processor.reset();
        let start = match resume {
            None => {
                if let Some(states) = &self.initial_states {
                    dag.load_states(states)?;
                }
                self.fresh_state()
            }
            Some(stopped) => {
                // As in the uncut run: the loaded state first, what fits learned
                // over it (a fit keeps a node's loaded state when it learns nothing).
                if let Some(states) = &self.initial_states {
                    dag.load_states(states)?;
                }
                if !stopped.state.states.is_empty() {
                    dag.load_states(&stopped.state.states)?;
                }
                let carry = stopped.carry.map_err(SystemError::Invalid)?;
                dag.load_carry(&carry)?;
                let bytes = stopped.processor.ok_or_else(|| {
                    SystemError::Invalid("the checkpoint has no processor state".into())
                })?;
                self.processor
                    .load_state(&bytes)
                    .map_err(SystemError::Invalid)?;
                stopped.state
            }
        };
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .map_err(|e| SystemError::Invalid(format!("cannot start the system's runtime: {e}")))?;
        // The fits read the same view, on the same clock, as the streaming DAG.
        let fit_dag = match self.fit_decisions().is_empty() {
            true => None,
            false => Some(self.dag(Arc::clone(&view))?),
        };
        let state = runtime.block_on(self.event_loop(
            &mut dag,
            fit_dag,
            &node,
            view.as_ref(),
            &clock,
            start,
            Hooks { after, feed, cut },
        ))?;
        let (carry, processor) = match save {
            true => (
                dag.save_carry()
                    .map(|c| c.into_iter().collect())
                    .map_err(|e| e.to_string()),
                self.processor.save_state(),
            ),
            false => (Err("not saved".into()), None),
        };
        Ok(Stopped {
            state,
            carry,
            processor,
        })
    }

    #[allow(clippy::too_many_arguments)]
    async fn event_loop(
        &mut self,
        dag: &mut Dag,
        mut fit_dag: Option<Dag>,
        node: &NodeId,
        view: &dyn MarketData,
        clock: &Arc<dyn Clock>,
        start: LoopState,
        hooks: Hooks<'_, '_, '_>,
    ) -> Result<LoopState> {
        let Hooks {
            mut after,
            mut feed,
            cut: cut_cell,
        } = hooks;
        let spec = &self.spec;
        let n = self.market.assets.len();
        let times = self.market.prices.end_ts();
        let mut cols = vec![spec.price.clone()];
        cols.extend(spec.volume.clone());
        let wait = ReplayOptions {
            timeout: spec.clock.timeout,
            poll: spec.clock.poll,
        };
        let run_opts = RunOptions {
            up_to: Some(node.clone()),
            parallel: false,
            keep: Keep::Nodes([node.clone()].into_iter().collect()),
        };
        let LoopState {
            mut book,
            done,
            mut prev,
            mut dag_lo,
            mut decided,
            mut cut,
            states,
            fits: mut records,
            ..
        } = start;
        debug_assert_eq!(book.committed.len(), n);
        let fast = dag.can_step();
        let (mut price_map, mut forecast_map) = (AssetMap::default(), AssetMap::default());
        let mut columns: Option<ForecastColumns> = None;
        // The loop has consumed the data bars ending at or before its last decision.
        let mut next_time = times.partition_point(|&t| t <= prev);
        let freq = self.market.freq;
        let known = self.market.prices.knowledge_ts();
        let fits = self.fit_decisions();
        let mut states = states;
        for (k, &tau) in self.grid.iter().enumerate().skip(done) {
            clock.sleep_until(tau).await;
            // The last data bar of the interval, which must be known before deciding.
            let first = next_time;
            while next_time < times.len() && times[next_time] <= tau {
                next_time += 1;
            }
            // Every data bar of the interval must be known before deciding: wait for
            // the one known last (late bars hold the decision up). The decision's time
            // is then when it is known (its knowledge time plus the feed's delays),
            // never before its grid time or the previous decision. On a simulated
            // clock that is the clock's time; a real-time clock reads a little later
            // (the wait and the computing), which does not move the order's bar: the
            // research evaluator computes the same times, so both fill alike.
            let delay_of = |t: i64| {
                self.market_data
                    .delay_at(Timestamp(t))
                    .nanos()
                    .saturating_add(spec.clock.delay)
            };
            let known_by = match &self.live {
                // A live system: the bars of (prev, tau] as they arrived, waiting in
                // real time for those not here yet (a replay of its rows waits for
                // nothing and decides alike).
                Some(source) => {
                    let settled =
                        crate::live::settle(source, &spec.clock, prev, tau, feed.as_deref_mut())?;
                    cut = cut.max(settled.cut);
                    cut_cell.store(cut, std::sync::atomic::Ordering::SeqCst);
                    book.audit.missing_bars += settled.missing;
                    decided = decided.max(tau).max(cut.saturating_add(spec.clock.delay));
                    clock.sleep_until(decided).await;
                    Some(cut)
                }
                None => {
                    let last_known = known_last(times, known, first..next_time, prev, delay_of);
                    if let Some((r, _)) = last_known {
                        wait_for_bar(view, clock, times[r], wait).await?;
                    }
                    decided = decided
                        .max(tau)
                        .max(last_known.map_or(i64::MIN, |(_, at)| at));
                    None
                }
            };
            let now = clock.now();
            let declared = delay_of(tau);
            book.audit.decisions += 1;
            if decided > tau.saturating_add(declared) {
                book.audit.late_decisions += 1;
            }
            let rows = view.data_for_interval(
                Timestamp(prev.saturating_add(1)),
                Timestamp(tau),
                None,
                Some(&cols),
            )?;
            let expected = (first..next_time).filter(|&r| times[r] > prev).count();
            book.audit.late_price_rows += expected.saturating_sub(rows.n_rows()) as u64;
            self.market.map_assets(rows.assets_shared(), &mut price_map);
            book.aggregate(&rows, &price_map);
            book.fill(prev, tau, &rows, freq, spec);
            book.bars
                .push(book.portfolio.close_bar(tau, now, &book.totals));
            if let (Some(fd), Some(fit), true) =
                (fit_dag.as_mut(), spec.fit, fits.binary_search(&k).is_ok())
            {
                let known = known_by.unwrap_or_else(|| self.known_by(tau, decided));
                let (learned, record) = fit_at(fd, fit, tau, known, node)?;
                dag.load_states(&learned)?;
                records.push(record);
                states = learned;
            }

            // The DAG's fast path when every node has it: its buffers are reused
            // from decision to decision.
            let ctx = RunContext::new(Phase::Predict, Some((dag_lo, tau)));
            let out;
            let (frame, frame_assets) = if fast {
                dag.step(&ctx)?;
                let rows = dag.stepped(node.as_str())?;
                (rows.view(), &rows.assets)
            } else {
                out = dag.run(&ctx, &run_opts)?;
                let f = out.df_out(node.as_str())?;
                (f.view(), f.assets_shared())
            };
            dag_lo = tau.saturating_add(1);
            // The first step returns the history before the first decision: warm-up,
            // not forecasts that came late.
            let mut history = 0;
            let stale = if k == 0 {
                &mut history
            } else {
                &mut book.stale
            };
            let row = latest_row_in(frame.end_ts(), prev, tau, stale);
            if let Some(r) = row {
                let known = frame.knowledge_ts()[r];
                if known > decided {
                    book.audit.early_forecasts += 1;
                    book.audit.violation(|| {
                        format!(
                            "the decision at {} (made at {}) used node `{node}`'s forecast row \
                             ending {}, which is known only at {}",
                            Timestamp(tau),
                            Timestamp(decided),
                            Timestamp(frame.end_ts()[r]),
                            Timestamp(known)
                        )
                    });
                }
                let c = match &columns {
                    Some(c) => c,
                    None => columns.insert(ForecastColumns::find(&frame, node.as_str(), spec)?),
                };
                self.market.map_assets(frame_assets, &mut forecast_map);
                book.decide(
                    tau,
                    decided,
                    &frame,
                    r,
                    c,
                    &forecast_map,
                    self.processor.as_mut(),
                );
            }
            prev = tau;
            if let Some(after) = after.as_deref_mut() {
                after(Decided {
                    state: LoopStateRef {
                        book: &book,
                        done: k + 1,
                        prev,
                        dag_lo,
                        decided,
                        cut,
                        clock_now: clock.now(),
                        states: &states,
                    },
                    fits: &records,
                    dag: &*dag,
                    processor: self.processor.as_ref(),
                })?;
            }
        }
        Ok(LoopState {
            book,
            done: self.grid.len(),
            prev,
            dag_lo,
            decided,
            cut,
            clock_now: clock.now(),
            states,
            fits: records,
        })
    }
}

/// What a run's loop calls out to: a durable run's recorder, a live system's feed,
/// and the knowledge cut-off its view reads as of.
struct Hooks<'a, 'f, 'g> {
    after: Option<&'a mut AfterDecision<'f>>,
    feed: Option<&'a mut (dyn kf_datapull::Feed + 'g)>,
    cut: Arc<std::sync::atomic::AtomicI64>,
}

/// Where a run's loop stands after a decision: the book (portfolio, waiting orders,
/// records so far) and the loop's counters. With what the DAG and the processor
/// carry, a checkpoint from which another process continues the run.
#[derive(serde::Serialize, serde::Deserialize)]
pub(crate) struct LoopState {
    pub(crate) book: Book,
    /// Decisions made: the next decision's index in the grid.
    pub(crate) done: usize,
    /// The last decision's time (before the first: one bar before it).
    pub(crate) prev: i64,
    /// Where the DAG's next step starts.
    pub(crate) dag_lo: i64,
    /// When the last decision was made.
    pub(crate) decided: i64,
    /// A live system's knowledge cut-off: the latest knowledge time its decisions
    /// have read as of (`i64::MIN` before any, and for systems over stored data).
    pub(crate) cut: i64,
    /// The clock's time after the last decision.
    pub(crate) clock_now: i64,
    /// What the DAG's models had learned, by node id.
    pub(crate) states: States,
    /// The fits made so far (records, like the book's: not serialized).
    #[serde(skip)]
    pub(crate) fits: Vec<FitRecord>,
}

/// [`LoopState`] borrowed from a running loop, serialized as a [`LoopState`] is.
#[derive(serde::Serialize)]
pub(crate) struct LoopStateRef<'a> {
    pub(crate) book: &'a Book,
    pub(crate) done: usize,
    pub(crate) prev: i64,
    pub(crate) dag_lo: i64,
    pub(crate) decided: i64,
    pub(crate) cut: i64,
    pub(crate) clock_now: i64,
    pub(crate) states: &'a States,
}

/// Where the loop stands after a decision, for [`AfterDecision`].
pub(crate) struct Decided<'a> {
    pub(crate) state: LoopStateRef<'a>,
    /// The fits made so far.
    pub(crate) fits: &'a [FitRecord],
    pub(crate) dag: &'a Dag,
    pub(crate) processor: &'a dyn ForecastProcessor,
}

/// Called after each decision; an error stops the run.
pub(crate) type AfterDecision<'a> = dyn FnMut(Decided<'_>) -> Result<()> + 'a;

/// A loop stopped after a decision, with what its DAG and processor carried then
/// (each `Err`/`None` when it could not be saved).
pub(crate) struct Stopped {
    pub(crate) state: LoopState,
    pub(crate) carry: std::result::Result<std::collections::BTreeMap<NodeId, Vec<u8>>, String>,
    pub(crate) processor: Option<Vec<u8>>,
}

/// The latest row of `frame` ending in `(prev, tau]`; rows ending at or before
/// `prev` arrived late and are counted in `stale`.
pub fn latest_row_in(ts: &[i64], prev: i64, tau: i64, stale: &mut u64) -> Option<usize> {
    let mut found = None;
    for (r, &t) in ts.iter().enumerate() {
        if t > prev && t <= tau {
            found = Some(r);
        } else if t <= prev {
            *stale += 1;
        }
    }
    found
}

/// Appends the non-zero `orders` decided at `tau`.
pub fn record_orders(out: &mut Orders, tau: i64, orders: &[f64], mark: &[f64]) {
    for (i, &q) in orders.iter().enumerate() {
        if q != 0.0 {
            out.ts.push(tau);
            out.asset.push(i as u32);
            out.quantity.push(q);
            out.mark.push(mark[i]);
        }
    }
}
