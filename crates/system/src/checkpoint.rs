//! Systems over growing data: a run with a cache checkpoints its loop after the
//! last decision, and the next run of the same system over the same data grown by
//! new bars continues from there, making only the new decisions. The result is
//! the full rerun's, to the bit: the decisions up to the checkpoint saw exactly the
//! rows they see again (checked by fingerprint), and the DAG continues from its
//! carried state under the tiling contract.
//!
//! # What is checkpointed
//! Under the system's *lineage key* (the resolved config, the crate and node code
//! versions, the loaded state, and what each data source reads apart from its
//! content), the node cache holds one checkpoint: the last decision's time `T`, a
//! digest of the market's shape (assets, bar, decision grid up to `T`), each
//! source's fingerprint of its rows ending by `T` and of all its data, the loop's
//! state (portfolio, waiting orders, records so far), and what the DAG and the
//! processor carry.
//!
//! # When a run continues
//! Only on the simulated clock (a replayed or wall clock decides at times the
//! machine sets), when every DAG node and the processor can save what they carry,
//! every source has a lineage, and the market's shape and every source's rows up
//! to `T` are what they were. Anything else is a full run, which writes a new
//! checkpoint; the reason is reported in a [`Growth::Full`].

use std::collections::BTreeMap;
use std::sync::Arc;

use kf_dataflow::cache::{CacheHandle, EntryError, Key, KeyBuilder, Meta};
use kf_dataflow::{Growth, NodeId, Ports};
use kf_datapull::ClockKind;

use crate::engine::{LoopState, Stopped, System, SystemRun};
use crate::error::Result;

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

/// The checkpoint as written (borrowing the loop's state).
#[derive(serde::Serialize)]
struct CheckpointOut<'a> {
    at: i64,
    shape: [u8; 32],
    sources: &'a [SourcePrint],
    state: &'a LoopState,
    carry: &'a BTreeMap<NodeId, Vec<u8>>,
    processor: &'a [u8],
}

/// The checkpoint as read.
#[derive(serde::Deserialize)]
struct Checkpoint {
    /// The last decision's time.
    at: i64,
    /// [`System::shape_at`] of the last decision.
    shape: [u8; 32],
    sources: Vec<SourcePrint>,
    state: LoopState,
    carry: BTreeMap<NodeId, Vec<u8>>,
    processor: Vec<u8>,
}

impl System<'_> {
    /// Runs the system under its configured clock as a run over growing data: with
    /// a checkpoint of the same system (in `cache`) whose data is still the prefix
    /// of this data, only the decisions after it are made; otherwise every
    /// decision, and a checkpoint is written for the next run. The result is the
    /// same as [`System::run`]'s either way.
    ///
    /// # Errors
    /// Those of [`System::run`]. A checkpoint that cannot be read or written is not
    /// an error: the run starts from scratch, and the [`Growth`] says why.
    pub fn run_growing(&mut self, cache: &CacheHandle) -> Result<(SystemRun, Growth)> {
        let lineage = match self.lineage_key()? {
            Ok(k) => k,
            Err(why) => {
                let run = self.run()?;
                return Ok((
                    run,
                    Growth::Full(format!("the system cannot continue runs: {why}")),
                ));
            }
        };
        let (prior, why) = match self.usable_checkpoint(cache, &lineage)? {
            Ok(c) => (Some(c), String::new()),
            Err(why) => (None, why),
        };
        let (stopped, growth) = match prior {
            Some((c, unchanged)) => {
                let from = c.at;
                let clock = self.spec.clock.kind.clock(c.state.clock_now);
                let resume = Stopped {
                    state: c.state,
                    carry: Ok(c.carry),
                    processor: Some(c.processor),
                };
                match self.run_loop(clock, Some(resume), true) {
                    Ok(stopped) => {
                        let growth = match unchanged {
                            true => Growth::Unchanged { at: from },
                            false => Growth::Continued {
                                from,
                                to: stopped.state.prev,
                            },
                        };
                        (stopped, growth)
                    }
                    // A state that does not load (or a failure after it): every
                    // decision again, which fails alike if the data is to blame.
                    Err(e) => {
                        let clock = self.clock(self.spec.clock.kind);
                        (
                            self.run_loop(clock, None, true)?,
                            Growth::Full(format!("the checkpoint could not be continued: {e}")),
                        )
                    }
                }
            }
            None => {
                let clock = self.clock(self.spec.clock.kind);
                (self.run_loop(clock, None, true)?, Growth::Full(why))
            }
        };
        let growth = match self.write_checkpoint(cache, &lineage, &stopped) {
            Ok(()) => growth,
            Err(e) => match growth {
                Growth::Full(why) => Growth::Full(format!("{why}; no checkpoint was written: {e}")),
                other => other,
            },
        };
        Ok((self.finish(stopped.state), growth))
    }

    /// The system's lineage key, or why it has none.
    fn lineage_key(&self) -> Result<std::result::Result<Key, String>> {
        if self.spec.clock.kind != ClockKind::Simulated {
            return Ok(Err(
                "its clock is not simulated (a replayed or wall clock decides at times the \
                 machine sets)"
                    .into(),
            ));
        }
        let mut b = KeyBuilder::new();
        b.text("schema", "kaizenflow system checkpoint 1")
            .text("crate", env!("CARGO_PKG_VERSION"))
            .text("config", &self.config.root().canonical());
        let dag = self.dag(Arc::clone(&self.market.data))?;
        for id in dag.topological_order() {
            let node = dag.node(id.as_str())?;
            b.text("id", id.as_str())
                .text("kind", node.kind())
                .field("version", &node.version().to_le_bytes());
        }
        for (k, v) in self.initial_states.iter().flatten() {
            b.text("state", k.as_str()).field("bytes", v);
        }
        match self.sources_lineages()? {
            Ok(lineages) => {
                for l in &lineages {
                    b.text("lineage", l);
                }
            }
            Err(why) => return Ok(Err(why)),
        }
        Ok(Ok(b.finish()))
    }

    /// The lineage of every distinct source the system reads: its market data and
    /// the DAG's source nodes; or why one cannot say.
    fn sources_lineages(&self) -> Result<std::result::Result<Vec<String>, String>> {
        let Some(market) = self.market.data.lineage() else {
            return Ok(Err(
                "its market data cannot say what it reads apart from its content".into(),
            ));
        };
        let mut out = vec![market];
        let dag = self.dag(Arc::clone(&self.market.data))?;
        for id in dag.sources() {
            let node = dag.node(id.as_str())?;
            let Some(l) = node.data_lineage() else {
                return Ok(Err(format!(
                    "source `{id}` ({}) cannot say what it reads apart from its content",
                    node.kind()
                )));
            };
            if !out.contains(&l) {
                out.push(l);
            }
        }
        Ok(Ok(out))
    }

    /// Every distinct source's fingerprints, the prefix up to `until`.
    fn source_prints(&self, until: i64) -> Result<std::result::Result<Vec<SourcePrint>, String>> {
        let market = self.market.data.as_ref();
        let dag = self.dag(Arc::clone(&self.market.data))?;
        let mut out: Vec<SourcePrint> = Vec::new();
        let mut add =
            |lineage: Option<String>, prefix: Option<String>, full: Option<String>, what: &str| {
                match (lineage, prefix, full) {
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
                }
            };
        if let Err(why) = add(
            market.lineage(),
            market.prefix_fingerprint(until)?,
            market.fingerprint()?,
            "the market data",
        ) {
            return Ok(Err(why));
        }
        for id in dag.sources() {
            let node = dag.node(id.as_str())?;
            if let Err(why) = add(
                node.data_lineage(),
                node.data_prefix(until)?,
                node.data_fingerprint()?,
                &format!("source `{id}`"),
            ) {
                return Ok(Err(why));
            }
        }
        Ok(Ok(out))
    }

    /// A digest of what the decisions up to grid index `k` depend on besides the
    /// data's rows: the assets and their order, the data's bar and offset, and the
    /// decision times.
    fn shape_at(&self, k: usize) -> [u8; 32] {
        let mut b = KeyBuilder::new();
        for a in &self.market.assets {
            b.text("asset", a);
        }
        b.field("freq", &self.market.freq.to_le_bytes());
        let settings = self.replay_settings();
        b.field("offset", &settings.offset.nanos().to_le_bytes());
        for t in &self.grid[..=k.min(self.grid.len() - 1)] {
            b.field("tau", &t.to_le_bytes());
        }
        b.finish().0
    }

    /// The checkpoint under `lineage` with whether the data is unchanged since,
    /// when it applies to this run; or why not.
    #[allow(clippy::type_complexity)]
    fn usable_checkpoint(
        &self,
        cache: &CacheHandle,
        lineage: &Key,
    ) -> Result<std::result::Result<(Checkpoint, bool), String>> {
        let bytes = match cache.cache.load(lineage) {
            Ok((_, _, bytes)) => bytes,
            Err(EntryError::Truncated(_)) => {
                return Ok(Err("no checkpoint of this system yet".into()));
            }
            Err(e) => return Ok(Err(format!("its checkpoint was unreadable ({e})"))),
        };
        let Ok(c) = postcard::from_bytes::<Checkpoint>(&bytes) else {
            return Ok(Err("its checkpoint does not decode".into()));
        };
        let done = c.state.done;
        if done == 0 || done > self.grid.len() || self.grid[done - 1] != c.at {
            return Ok(Err(format!(
                "the decision times up to the checkpoint at {} changed",
                kf_frame::Timestamp(c.at)
            )));
        }
        if self.shape_at(done - 1) != c.shape
            || c.state.book.committed.len() != self.market.assets.len()
        {
            return Ok(Err(
                "the market's assets, bar or decision times changed since the checkpoint".into(),
            ));
        }
        let now = match self.source_prints(c.at)? {
            Ok(p) => p,
            Err(why) => return Ok(Err(why)),
        };
        if now.len() != c.sources.len() {
            return Ok(Err(
                "the system reads other sources than at the checkpoint".into()
            ));
        }
        let mut unchanged = true;
        for (new, old) in now.iter().zip(&c.sources) {
            if new.lineage != old.lineage || new.prefix != old.prefix {
                return Ok(Err(format!(
                    "the data up to {} changed since the checkpoint",
                    kf_frame::Timestamp(c.at)
                )));
            }
            unchanged &= new.full == old.full;
        }
        Ok(Ok((c, unchanged)))
    }

    /// Writes the checkpoint of a loop stopped after its last decision.
    fn write_checkpoint(
        &self,
        cache: &CacheHandle,
        lineage: &Key,
        stopped: &Stopped,
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
        let sources = self
            .source_prints(at)
            .map_err(|e| e.to_string())?
            .map_err(|why| why.to_string())?;
        let bytes = postcard::to_stdvec(&CheckpointOut {
            at,
            shape: self.shape_at(state.done.saturating_sub(1)),
            sources: &sources,
            state,
            carry,
            processor,
        })
        .map_err(|e| format!("the checkpoint does not encode: {e}"))?;
        let meta = Meta {
            node: "(system checkpoint)".into(),
            kind: "system checkpoint".into(),
            version: 1,
            origin: cache.origin.to_string(),
            recipe: String::new(),
            ports: Vec::new(),
            rows: state.book.bars.len(),
            cells: 0,
            compute_ns: 0,
            stored_at: std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos() as i64),
        };
        cache
            .cache
            .store(lineage, &meta, &Ports::new(), &bytes)
            .map_err(|e| e.to_string())
    }
}
