//! Systems over growing data: a run with a cache checkpoints its loop after the
//! last decision, and the next run of the same system over the same data grown by
//! new bars continues from there: it reads only the bars after the checkpoint and
//! makes only the new decisions. The result is the full rerun's, to the bit: the
//! decisions up to the checkpoint saw exactly the rows they would see again
//! (checked by fingerprint), and the DAG continues from its carried state under
//! the tiling contract.
//!
//! # What is checkpointed
//! Under the system's *lineage key* (the resolved config, the crate and node code
//! versions, the loaded state, and what each data source reads apart from its
//! content), the node cache holds one checkpoint: the last decision's time `T`;
//! what the decisions so far depend on besides the rows (the assets, the data's
//! bar and offset, the decision times); each source's fingerprint of its rows
//! ending by `T` and of all its data; the loop's state (portfolio, waiting orders,
//! counters) and what the DAG and the processor carry. The records (bars, orders,
//! fills, fits) are *history segments*, one cache entry per run that added some,
//! so a continued run writes only its own.
//!
//! # When a run continues
//! Only on the simulated clock (a replayed or wall clock decides at times the
//! machine sets), when every DAG node and the processor can save what they carry,
//! every source has a lineage, every source's rows up to `T` are what they were,
//! the assets and the data's bar are unchanged, and every history segment is in
//! the cache. Anything else is a full run, which writes a new checkpoint; the
//! reason is reported in a [`Growth::Full`].

use std::collections::BTreeMap;
use std::sync::Arc;

use kf_config::Config;
use kf_dataflow::cache::{CacheHandle, EntryError, Key, KeyBuilder, Meta};
use kf_dataflow::{Growth, NodeId, Ports};
use kf_datapull::{ClockKind, MarketData};

use crate::engine::{Fills, LoopState, Orders, Stopped, System, SystemRun};
use crate::error::Result;
use crate::learning::{FitRecord, States};
use crate::market::{Market, min_step};
use crate::portfolio::BarRecord;
use crate::spec::SystemSpec;

/// One data source of a system: what it reads and its fingerprints.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
struct SourcePrint {
    /// What it reads apart from its content.
    lineage: String,
    /// A fingerprint of its rows ending by the checkpoint's last decision.
    prefix: String,
    /// A fingerprint of all its data.
    full: String,
}

/// What the decisions up to a checkpoint depend on besides the data's rows.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
struct Shape {
    /// The assets, in the system's order.
    assets: Vec<String>,
    /// The data's bar period and offset, over all the data.
    freq: i64,
    offset: i64,
    /// The smallest step between the bar ends up to `T`, and the last of them.
    prefix_step: Option<i64>,
    last_end: Option<i64>,
    /// The decision times up to `T`.
    grid: Vec<i64>,
}

/// The checkpoint of a system's loop after its last decision.
#[derive(serde::Serialize, serde::Deserialize)]
struct Checkpoint {
    /// The last decision's time.
    at: i64,
    shape: Shape,
    sources: Vec<SourcePrint>,
    /// The loop's state, its records moved to the history segments.
    state: LoopState,
    carry: BTreeMap<NodeId, Vec<u8>>,
    processor: Vec<u8>,
    /// The history segments' keys, in time order.
    history: Vec<[u8; 32]>,
}

/// The records of one run's decisions.
#[derive(Default, serde::Serialize, serde::Deserialize)]
struct History {
    bars: Vec<BarRecord>,
    orders: Orders,
    fills: Fills,
    fits: Vec<FitRecord>,
}

impl History {
    fn append(&mut self, mut other: History) {
        self.bars.append(&mut other.bars);
        self.orders.append(other.orders);
        self.fills.append(other.fills);
        self.fits.append(&mut other.fits);
    }

    fn is_empty(&self) -> bool {
        self.bars.is_empty() && self.orders.ts.is_empty() && self.fills.ts.is_empty()
    }
}

/// What a continued run carries over from its checkpoint: the earlier records,
/// the checkpoint's shape and its history segments' keys.
struct Prior {
    records: History,
    shape: Shape,
    segments: Vec<[u8; 32]>,
}

/// What the run found before it started.
enum Plan {
    /// Every decision; a checkpoint under the key when there is one, whose
    /// sources' fingerprints before the run were `before`.
    Full {
        key: Option<Key>,
        why: String,
        before: Vec<String>,
    },
    /// Continue from the checkpoint, whose earlier records are `old`.
    Continue {
        key: Key,
        checkpoint: Box<Checkpoint>,
        old: Box<History>,
        unchanged: bool,
        before: Vec<String>,
    },
}

impl<'a> System<'a> {
    /// Builds the system `config` describes and runs it under its configured clock
    /// as a run over growing data: when `cache` holds a checkpoint of the same
    /// system whose data is still the prefix of this data, only the bars after it
    /// are read and only the decisions after it made; otherwise every decision,
    /// and a checkpoint is written for the next run. The result is
    /// [`System::run`]'s either way, to the bit.
    ///
    /// # Errors
    /// Those of [`System::from_config_with_states`] and [`System::run`]. A
    /// checkpoint that cannot be read, continued or written is not an error: the
    /// run makes every decision, and the [`Growth`] says why.
    pub fn run_growing(
        types: &'a crate::Registries,
        config: &'a Config,
        states: Option<States>,
        cache: &CacheHandle,
    ) -> Result<(SystemRun, Growth)> {
        let mut plan = None;
        let mut system = System::build_on(types, config, states.clone(), |data, spec| {
            let (market, grid, p) = plan_market(types, config, states.as_ref(), cache, data, spec)?;
            plan = Some(p);
            Ok((market, grid))
        })?;
        let plan = plan.unwrap_or(Plan::Full {
            key: None,
            why: "no plan".into(),
            before: Vec::new(),
        });
        let data_before;
        let (key, stopped, old, growth) = match plan {
            Plan::Full { key, why, before } => {
                data_before = before;
                let clock = system.clock(system.spec.clock.kind);
                let stopped = system.run_loop(clock, None, key.is_some())?;
                let why = match key {
                    Some(_) => why,
                    None => format!("the system cannot continue runs: {why}"),
                };
                (key, stopped, None, Growth::Full(why))
            }
            Plan::Continue {
                key,
                checkpoint,
                old,
                unchanged,
                before,
            } => {
                data_before = before;
                let c = *checkpoint;
                let from = c.at;
                let clock = system.spec.clock.kind.clock(c.state.clock_now);
                let resume = Stopped {
                    state: c.state,
                    carry: Ok(c.carry),
                    processor: Some(c.processor),
                };
                match system.run_loop(clock, Some(resume), true) {
                    Ok(stopped) => {
                        let growth = match unchanged {
                            true => Growth::Unchanged { at: from },
                            false => Growth::Continued {
                                from,
                                to: stopped.state.prev,
                            },
                        };
                        let prior = Prior {
                            records: *old,
                            shape: c.shape,
                            segments: c.history,
                        };
                        (Some(key), stopped, Some(prior), growth)
                    }
                    // A state that does not load (or a failure after it): every
                    // decision again, over all the data, which fails alike if the
                    // data is to blame.
                    Err(e) => {
                        system = System::build(types, config, states)?;
                        let clock = system.clock(system.spec.clock.kind);
                        let stopped = system.run_loop(clock, None, true)?;
                        let why = format!("the checkpoint could not be continued: {e}");
                        (Some(key), stopped, None, Growth::Full(why))
                    }
                }
            }
        };
        system.complete(cache, key, stopped, old, &data_before, growth)
    }

    /// Writes the checkpoint (when there is a key) and returns the whole run.
    fn complete(
        &self,
        cache: &CacheHandle,
        key: Option<Key>,
        mut stopped: Stopped,
        prior: Option<Prior>,
        before: &[String],
        growth: Growth,
    ) -> Result<(SystemRun, Growth)> {
        let book = &mut stopped.state.book;
        let new = History {
            bars: std::mem::take(&mut book.bars),
            orders: std::mem::take(&mut book.orders),
            fills: std::mem::take(&mut book.fills),
            fits: std::mem::take(&mut stopped.state.fits),
        };
        let (mut all, prior) = match prior {
            Some(p) => (p.records, Some((p.shape, p.segments))),
            None => (History::default(), None),
        };
        let growth = match key {
            Some(key) => match self.write_checkpoint(cache, &key, &stopped, &new, prior, before) {
                Ok(()) => growth,
                Err(e) => match growth {
                    Growth::Full(why) => {
                        Growth::Full(format!("{why}; no checkpoint was written: {e}"))
                    }
                    other => other,
                },
            },
            None => growth,
        };
        all.append(new);
        let book = &mut stopped.state.book;
        (book.bars, book.orders, book.fills) = (all.bars, all.orders, all.fills);
        stopped.state.fits = all.fits;
        Ok((self.finish(stopped.state), growth))
    }

    /// Writes the checkpoint of a loop stopped after its last decision, whose
    /// records are `new`; `prior` is the continued checkpoint's shape and history.
    fn write_checkpoint(
        &self,
        cache: &CacheHandle,
        key: &Key,
        stopped: &Stopped,
        new: &History,
        prior: Option<(Shape, Vec<[u8; 32]>)>,
        before: &[String],
    ) -> std::result::Result<(), String> {
        let carry = stopped.carry.as_ref().map_err(|e| e.clone())?;
        let processor = stopped.processor.as_deref().ok_or_else(|| {
            format!(
                "the `{}` processor cannot save what it carries",
                self.processor.kind()
            )
        })?;
        let state = &stopped.state;
        let at = state.prev;
        let sources = source_prints(self.types, self.config, &self.market.data, Some(at))
            .map_err(|e| e.to_string())?
            .map_err(|why| why.to_string())?;
        // The fingerprints must be of the data the run read: files that changed
        // while it ran (a feed correcting a bar) leave no checkpoint.
        if sources.iter().map(|s| &s.full).ne(before.iter()) {
            return Err("the data changed while the system ran".into());
        }
        // The loaded bars up to `T`: all of them (a full run), or those after the
        // prior checkpoint (a continued run).
        let ends = self.market.prices.end_ts();
        let upto = &ends[..ends.partition_point(|&t| t <= at)];
        let (prefix_step, last_end, mut history) = match prior {
            None => (min_step(upto), upto.last().copied(), Vec::new()),
            Some((shape, history)) => {
                let boundary = match (shape.last_end, upto.first()) {
                    (Some(l), Some(&f)) => Some(f - l),
                    _ => None,
                };
                let step = [shape.prefix_step, boundary, min_step(upto)]
                    .into_iter()
                    .flatten()
                    .min();
                (step, upto.last().copied().or(shape.last_end), history)
            }
        };
        if !new.is_empty() {
            let mut b = KeyBuilder::new();
            b.text("schema", "kaizenflow system history 1")
                .field("lineage", &key.0)
                .field("to", &at.to_le_bytes());
            for h in &history {
                b.field("after", h);
            }
            for s in &sources {
                b.text("data", &s.full);
            }
            let segment = b.finish();
            let bytes = postcard::to_stdvec(new)
                .map_err(|e| format!("the history does not encode: {e}"))?;
            cache
                .cache
                .store(
                    &segment,
                    &meta(cache, "system history", new.bars.len()),
                    &Ports::new(),
                    &bytes,
                )
                .map_err(|e| e.to_string())?;
            history.push(segment.0);
        }
        let done = state.done;
        let shape = Shape {
            assets: self.market.assets.clone(),
            freq: self.market.freq,
            offset: self.market.offset,
            prefix_step,
            last_end,
            grid: self.grid[..done.min(self.grid.len())].to_vec(),
        };
        let bytes = postcard::to_stdvec(&CheckpointOut {
            at,
            shape: &shape,
            sources: &sources,
            state,
            carry,
            processor,
            history: &history,
        })
        .map_err(|e| format!("the checkpoint does not encode: {e}"))?;
        cache
            .cache
            .store(
                key,
                &meta(cache, "system checkpoint", 0),
                &Ports::new(),
                &bytes,
            )
            .map_err(|e| e.to_string())
    }
}

/// The checkpoint as written (borrowing what the run holds).
#[derive(serde::Serialize)]
struct CheckpointOut<'a> {
    at: i64,
    shape: &'a Shape,
    sources: &'a [SourcePrint],
    state: &'a LoopState,
    carry: &'a BTreeMap<NodeId, Vec<u8>>,
    processor: &'a [u8],
    history: &'a [[u8; 32]],
}

/// The header of a checkpoint or history entry.
fn meta(cache: &CacheHandle, what: &str, rows: usize) -> Meta {
    Meta {
        node: format!("({what})"),
        kind: what.into(),
        version: 1,
        origin: cache.origin.to_string(),
        recipe: String::new(),
        ports: Vec::new(),
        rows,
        cells: 0,
        compute_ns: 0,
        stored_at: std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as i64),
    }
}

/// The market and decision grid of a run over growing data, and its plan: the
/// bars after the checkpoint when it applies, all of them otherwise.
fn plan_market(
    types: &crate::Registries,
    config: &Config,
    states: Option<&States>,
    cache: &CacheHandle,
    data: Arc<dyn MarketData>,
    spec: &SystemSpec,
) -> Result<(Market, Vec<i64>, Plan)> {
    let full = |data: Arc<dyn MarketData>, key: Option<Key>, why: String| {
        // The data's fingerprints before it is read, which the checkpoint's must
        // equal (see `write_checkpoint`).
        let before = match &key {
            Some(_) => match source_prints(types, config, &data, None)? {
                Ok(p) => p.into_iter().map(|s| s.full).collect(),
                Err(_) => Vec::new(),
            },
            None => Vec::new(),
        };
        let market = Market::new(data, spec)?;
        let grid = market.decision_times(spec)?;
        Ok((market, grid, Plan::Full { key, why, before }))
    };
    let key = match lineage_key(types, config, states, &data, spec)? {
        Ok(k) => k,
        Err(why) => return full(data, None, why),
    };
    let c = match cache.cache.load(&key) {
        Ok((_, _, bytes)) => match postcard::from_bytes::<Checkpoint>(&bytes) {
            Ok(c) => c,
            Err(_) => return full(data, Some(key), "its checkpoint does not decode".into()),
        },
        Err(EntryError::Truncated(_)) => {
            return full(data, Some(key), "no checkpoint of this system yet".into());
        }
        Err(e) => {
            return full(
                data,
                Some(key),
                format!("its checkpoint was unreadable ({e})"),
            );
        }
    };
    let now = match source_prints(types, config, &data, Some(c.at))? {
        Ok(p) => p,
        Err(why) => return full(data, Some(key), why),
    };
    let mut unchanged = now.len() == c.sources.len();
    for (new, old) in now.iter().zip(&c.sources) {
        if new.lineage != old.lineage || new.prefix != old.prefix {
            let why = format!(
                "the data up to {} changed since the checkpoint",
                kf_frame::Timestamp(c.at)
            );
            return full(data, Some(key), why);
        }
        unchanged &= new.full == old.full;
    }
    if now.len() != c.sources.len() {
        let why = "the system reads other sources than at the checkpoint".to_string();
        return full(data, Some(key), why);
    }
    let mut old = History::default();
    for h in &c.history {
        let loaded = cache
            .cache
            .load(&Key(*h))
            .map_err(|e| e.to_string())
            .and_then(|(_, _, b)| postcard::from_bytes::<History>(&b).map_err(|e| e.to_string()));
        match loaded {
            Ok(part) => old.append(part),
            Err(e) => {
                let why = format!("a part of its history is not in the cache any more ({e})");
                return full(data, Some(key), why);
            }
        }
    }
    let mut market = Market::load_after(Arc::clone(&data), spec, c.at)?;
    let s = &c.shape;
    let ends = market.prices.end_ts();
    let boundary = match (s.last_end, ends.first()) {
        (Some(l), Some(&f)) => Some(f - l),
        _ => None,
    };
    let freq = [s.prefix_step, boundary, min_step(ends)]
        .into_iter()
        .flatten()
        .min()
        .unwrap_or(60_000_000_000)
        .max(1);
    if market.assets != s.assets || s.last_end.is_none() {
        let why = "the market's assets changed since the checkpoint".to_string();
        return full(data, Some(key), why);
    }
    if freq != s.freq {
        let why = "the data's bar period changed since the checkpoint".to_string();
        return full(data, Some(key), why);
    }
    (market.freq, market.offset) = (s.freq, s.offset);
    let mut grid = s.grid.clone();
    grid.extend(market.decision_times_after(spec, c.at));
    if grid.len() < c.state.done || c.state.book.committed.len() != s.assets.len() {
        return full(
            data,
            Some(key),
            "its checkpoint does not fit its shape".into(),
        );
    }
    Ok((
        market,
        grid,
        Plan::Continue {
            key,
            checkpoint: Box::new(c),
            old: Box::new(old),
            unchanged,
            before: now.into_iter().map(|s| s.full).collect(),
        },
    ))
}

/// The system's lineage key, or why it has none.
fn lineage_key(
    types: &crate::Registries,
    config: &Config,
    states: Option<&States>,
    data: &Arc<dyn MarketData>,
    spec: &SystemSpec,
) -> Result<std::result::Result<Key, String>> {
    if spec.clock.kind != ClockKind::Simulated {
        return Ok(Err(
            "its clock is not simulated (a replayed or wall clock decides at times the \
             machine sets)"
                .into(),
        ));
    }
    let mut b = KeyBuilder::new();
    b.text("schema", "kaizenflow system checkpoint 2")
        .text("crate", env!("CARGO_PKG_VERSION"))
        .text("config", &config.root().canonical());
    let dag = types
        .dataflow
        .dag_with(&config.root().section("dag")?, Some(data), None)?;
    for id in dag.topological_order() {
        let node = dag.node(id.as_str())?;
        b.text("id", id.as_str())
            .text("kind", node.kind())
            .field("version", &node.version().to_le_bytes());
    }
    for (k, v) in states.into_iter().flatten() {
        b.text("state", k.as_str()).field("bytes", v);
    }
    let Some(market) = data.lineage() else {
        return Ok(Err(
            "its market data cannot say what it reads apart from its content".into(),
        ));
    };
    b.text("lineage", &market);
    for id in dag.sources() {
        let node = dag.node(id.as_str())?;
        let Some(l) = node.data_lineage() else {
            return Ok(Err(format!(
                "source `{id}` ({}) cannot say what it reads apart from its content",
                node.kind()
            )));
        };
        b.text("lineage", &l);
    }
    Ok(Ok(b.finish()))
}

/// Every distinct source's fingerprints (the market data's, then the DAG's source
/// nodes'), the prefix up to `until` (left empty when `None`); or why one cannot
/// say.
fn source_prints(
    types: &crate::Registries,
    config: &Config,
    data: &Arc<dyn MarketData>,
    until: Option<i64>,
) -> Result<std::result::Result<Vec<SourcePrint>, String>> {
    let mut out: Vec<SourcePrint> = Vec::new();
    let mut add = |lineage: Option<String>,
                   prefix: Option<String>,
                   full: Option<String>,
                   what: &str| match (lineage, prefix, full) {
        (Some(lineage), Some(prefix), Some(full)) => {
            if !out.iter().any(|s| s.lineage == lineage) {
                out.push(SourcePrint {
                    lineage,
                    prefix,
                    full,
                });
            }
            Ok(())
        }
        _ => Err(format!("{what} cannot fingerprint its data")),
    };
    let prefix = match until {
        Some(t) => data.prefix_fingerprint(t)?,
        None => Some(String::new()),
    };
    if let Err(why) = add(
        data.lineage(),
        prefix,
        data.fingerprint()?,
        "the market data",
    ) {
        return Ok(Err(why));
    }
    let dag = types
        .dataflow
        .dag_with(&config.root().section("dag")?, Some(data), None)?;
    for id in dag.sources() {
        let node = dag.node(id.as_str())?;
        let prefix = match until {
            Some(t) => node.data_prefix(t)?,
            None => Some(String::new()),
        };
        if let Err(why) = add(
            node.data_lineage(),
            prefix,
            node.data_fingerprint()?,
            &format!("source `{id}`"),
        ) {
            return Ok(Err(why));
        }
    }
    Ok(Ok(out))
}
