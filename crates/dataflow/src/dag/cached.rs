//! A run that takes node outputs from a [`NodeCache`]: keys, the plan of which
//! nodes to skip, load or run, and storing what was computed.
//!
//! A node's output is *needed* when the run keeps it, when a node that must run
//! consumes it, or when the node learns (its entry restores the learned state the
//! next pass's key depends on). A needed output in the cache is loaded; one that is
//! not is computed and stored; an output nobody needs is not even read, so a warm
//! sweep reads only its sinks' entries.

use std::time::{Duration, Instant};

use petgraph::Direction;
use petgraph::visit::EdgeRef;
use sha2::{Digest, Sha256};

use super::Dag;
use super::run::Plan;
use crate::cache::{CacheHandle, Key, KeyBuilder, Meta, NodeCache};
use crate::error::{DataflowError, Result};
use crate::node::{Ports, RunContext};

/// What a cached run does with one node.
pub(super) enum Action {
    /// Not needed: neither run nor loaded (its entry is in the cache).
    Skip,
    /// Loaded from the cache: the outputs and the learned state stored with them.
    Load(Ports, Vec<u8>),
    /// Computed, and stored under the key when it has one.
    Run(Option<Key>),
}

/// The longest recipe an entry's header repeats (for `cache info`).
const RECIPE_SHOWN: usize = 240;

impl Dag {
    /// Records what determines node `id`'s outputs besides its type, code version,
    /// inputs and data: its resolved parameters, in a canonical text (a builder
    /// passes [`kf_config::Section::canonical`] or [`kf_config::canonical_of`] of the
    /// parameters it built the node from). A node without a recipe is never cached.
    /// Replacing or wrapping the node forgets its recipe.
    ///
    /// # Errors
    /// [`DataflowError::UnknownNode`].
    pub fn set_recipe(&mut self, id: &str, recipe: impl Into<String>) -> Result<()> {
        let i = self.ix(id)?.index();
        self.recipes[i] = Some(recipe.into().into());
        Ok(())
    }

    /// Node `id`'s recipe, if its builder recorded one.
    pub fn recipe(&self, id: &str) -> Option<&str> {
        let i = self.ix(id).ok()?.index();
        self.recipes[i].as_deref()
    }

    /// Takes node outputs from `cache` (or stops, with `None`) in every later run
    /// that starts from a reset DAG, as every runner's pass does. A node whose key
    /// is in the cache is not run; see [`crate::cache`] for the keys.
    ///
    /// Nodes skipped by the cache carry no state out of the run, so a run that
    /// continues the last one (a streaming step, a second tile, without
    /// [`Dag::reset`]) after a run that used the cache is refused rather than wrong.
    pub fn use_cache(&mut self, cache: Option<CacheHandle>) {
        self.cache = cache;
    }

    /// The keys of the sinks' outputs of every run since the last call (one per
    /// run, over every sink; `None` for a run that had no cache or a sink without a
    /// key). A command keys the files it writes from a run's outputs on them (see
    /// [`NodeCache::store_file`]).
    pub fn take_run_keys(&mut self) -> Vec<Option<Key>> {
        std::mem::take(&mut self.run_keys)
    }

    /// The cache this DAG's runs use.
    pub fn cache(&self) -> Option<&CacheHandle> {
        self.cache.as_ref()
    }

    /// Every wanted node's key in this run (`None`: not cacheable).
    fn keys(&self, ctx: &RunContext, plan: &Plan) -> Result<Vec<Option<Key>>> {
        let context = format!(
            "{:?}|{:?}|{:?}|{:?}|{:?}",
            ctx.phase, ctx.interval, ctx.train, ctx.decision, ctx.targets
        );
        let mut keys: Vec<Option<Key>> = vec![None; self.nodes.len()];
        for &ix in &plan.order {
            let i = ix.index();
            let node = &self.nodes[i];
            let Some(recipe) = &self.recipes[i] else {
                continue;
            };
            let Some(data) = node
                .data_fingerprint()
                .map_err(|e| e.in_node(node.id(), node.kind()))?
            else {
                continue;
            };
            let mut inputs: Vec<(String, String, Option<Key>)> = self
                .graph
                .edges_directed(ix, Direction::Incoming)
                .map(|e| {
                    let w = e.weight();
                    (
                        w.to_port.clone(),
                        w.from_port.clone(),
                        keys[e.source().index()],
                    )
                })
                .collect();
            if inputs.iter().any(|(_, _, k)| k.is_none()) {
                continue;
            }
            inputs.sort();
            let mut b = KeyBuilder::new();
            b.text("schema", "kaizenflow node output 1")
                .text("crate", env!("CARGO_PKG_VERSION"))
                .text("kind", node.kind())
                .field("version", &node.version().to_le_bytes())
                .text("recipe", recipe)
                .text("data", &data)
                .text("context", &context);
            if node.learns() {
                let state = node
                    .save_state()
                    .map_err(|e| e.in_node(node.id(), node.kind()))?;
                b.field("state", &Sha256::digest(&state));
            }
            for (to, from, key) in &inputs {
                b.text("in", to).text("from", from);
                if let Some(k) = key {
                    b.field("key", &k.0);
                }
            }
            keys[i] = Some(b.finish());
        }
        Ok(keys)
    }

    /// What to do with each node in this run (indexed by node index), loading the
    /// entries it needs; corrupt entries are reported, removed and recomputed.
    ///
    /// # Errors
    /// A source's fingerprint error, naming the node.
    pub(super) fn cache_actions(
        &self,
        handle: &CacheHandle,
        ctx: &RunContext,
        plan: &Plan,
        keep: &[bool],
    ) -> Result<(Vec<Action>, Vec<Option<Key>>)> {
        let cache: &NodeCache = &handle.cache;
        let n = self.nodes.len();
        let keys = self.keys(ctx, plan)?;
        let mut present: Vec<Option<Meta>> = keys
            .iter()
            .map(|k| k.as_ref().and_then(|k| cache.probe(k)))
            .collect();
        let mut loaded: Vec<Option<(Ports, Vec<u8>)>> = (0..n).map(|_| None).collect();
        let mut load_ns = 0u64;
        let need = loop {
            // Reverse topological order: every consumer is decided before its inputs.
            let mut need = vec![false; n];
            for &ix in plan.order.iter().rev() {
                let i = ix.index();
                need[i] = keep[i]
                    || self.nodes[i].learns()
                    || self
                        .graph
                        .neighbors_directed(ix, Direction::Outgoing)
                        .any(|c| need[c.index()] && present[c.index()].is_none());
            }
            let mut changed = false;
            for &ix in &plan.order {
                let i = ix.index();
                if !need[i] || present[i].is_none() || loaded[i].is_some() {
                    continue;
                }
                let Some(key) = &keys[i] else { continue };
                let start = Instant::now();
                match cache.load(key) {
                    Ok((_, ports, state)) => loaded[i] = Some((ports, state)),
                    Err(e) => {
                        tracing::warn!(node = %self.graph[ix], error = %e, "cache entry not used; recomputing");
                        present[i] = None;
                        changed = true;
                    }
                }
                load_ns += start.elapsed().as_nanos() as u64;
            }
            if !changed {
                break need;
            }
        };
        let mut actions: Vec<Action> = (0..n).map(|_| Action::Run(None)).collect();
        cache.record(|s| {
            s.load_ns += load_ns;
            for &ix in &plan.order {
                let i = ix.index();
                let counts = s.by_node.entry(self.graph[ix].0.clone()).or_default();
                if let Some(meta) = &present[i] {
                    s.hits += 1;
                    s.saved_ns += meta.compute_ns;
                    counts.hits += 1;
                } else if keys[i].is_some() {
                    s.misses += 1;
                    counts.misses += 1;
                } else {
                    s.uncached += 1;
                    counts.uncached += 1;
                }
            }
        });
        for &ix in &plan.order {
            let i = ix.index();
            actions[i] = match (present[i].is_some(), loaded[i].take(), need[i]) {
                (true, Some((ports, state)), _) => Action::Load(ports, state),
                (true, None, false) => Action::Skip,
                _ => Action::Run(keys[i]),
            };
        }
        Ok((actions, keys))
    }

    /// What a node the cache stands in for gives the run: the loaded outputs (after
    /// restoring the learned state stored with them), or none for a skipped node,
    /// with a timing marked `cached`.
    ///
    /// # Errors
    /// A stored state the node refuses, naming the node.
    pub(super) fn take_from_cache(
        &mut self,
        i: usize,
        action: Action,
    ) -> Result<(Option<Ports>, crate::dag::NodeTiming)> {
        let start = Instant::now();
        let (out, state) = match action {
            Action::Load(ports, state) => (Some(ports), state),
            Action::Skip | Action::Run(_) => (None, Vec::new()),
        };
        let node = &mut self.nodes[i];
        if !state.is_empty() {
            node.load_state(&state)
                .map_err(|e| e.in_node(node.id(), node.kind()))?;
        }
        let timing = crate::dag::NodeTiming {
            node: node.id().clone(),
            kind: node.kind().to_string(),
            wall: start.elapsed(),
            rows: out
                .as_ref()
                .and_then(|o| o.values().next())
                .map_or(0, |f| f.n_rows()),
            cells: out.as_ref().map_or(0, |o| {
                o.values()
                    .map(|f| f.n_rows() * f.n_assets() * f.n_features())
                    .sum()
            }),
            cached: true,
        };
        Ok((out, timing))
    }

    /// Stores node `i`'s outputs (and its learned state, for a node that learns)
    /// under `key`. A failure to store is logged and counted, never fatal: the run
    /// has its outputs either way.
    pub(super) fn cache_store(&self, i: usize, key: &Key, out: &Ports, wall: Duration) {
        let Some(handle) = &self.cache else { return };
        let node = &self.nodes[i];
        let state = if node.learns() {
            match node.save_state() {
                Ok(s) => s,
                Err(e) => {
                    tracing::warn!(node = %node.id(), error = %e, "not cached: its state does not save");
                    handle.cache.record(|s| s.store_errors += 1);
                    return;
                }
            }
        } else {
            Vec::new()
        };
        let recipe = self.recipes[i].as_deref().unwrap_or_default();
        let meta = Meta {
            node: node.id().0.clone(),
            kind: node.kind().to_string(),
            version: node.version(),
            origin: handle.origin.to_string(),
            recipe: kf_config::clip_text(&recipe.chars().take(RECIPE_SHOWN).collect::<String>())
                .into_owned(),
            ports: out.keys().cloned().collect(),
            rows: out.values().next().map_or(0, |f| f.n_rows()),
            cells: out
                .values()
                .map(|f| f.n_rows() * f.n_assets() * f.n_features())
                .sum(),
            compute_ns: wall.as_nanos() as u64,
            stored_at: std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos() as i64),
        };
        if let Err(e) = handle.cache.store(key, &meta, out, &state) {
            tracing::warn!(node = %node.id(), error = %e, "could not store a cache entry");
            handle.cache.record(|s| s.store_errors += 1);
        }
    }

    /// Counts node `i`'s output, planned as a miss, as the hit it turned out to be
    /// (another run stored it while this one waited for its key); the node then
    /// carries no state out of the run.
    pub(super) fn loaded_late(&mut self, i: usize) {
        self.carry_lost = true;
        let Some(handle) = &self.cache else { return };
        let id = self.nodes[i].id().0.clone();
        handle.cache.record(|s| {
            s.hits += 1;
            s.misses = s.misses.saturating_sub(1);
            let counts = s.by_node.entry(id).or_default();
            counts.hits += 1;
            counts.misses = counts.misses.saturating_sub(1);
        });
    }

    /// Refuses a run or step that would continue from state the cache skipped.
    pub(super) fn check_carry(&self) -> Result<()> {
        if self.carry_lost && !self.fresh {
            return Err(DataflowError::invalid(
                "the DAG's last run took node outputs from the cache, so its nodes carry no \
                 state to continue from: reset it first (every runner's pass does), or run \
                 without a cache",
            ));
        }
        Ok(())
    }
}
