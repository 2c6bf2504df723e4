//! Runs over data that grows: a run from a reset DAG over sources that gained new
//! bars since the last such run computes only the new rows, continuing from the
//! carried state checkpointed where that run stopped (the tiling contract makes
//! the continuation exact: its rows are the ones the whole run would give).
//!
//! # What is checkpointed
//! Under the run's *lineage key* (a hash of the DAG's nodes, versions, recipes,
//! edges, sources' lineages and the run's context without the interval's end), the
//! node cache holds one checkpoint: the last bar end `T` the run reached, each
//! source's fingerprint of its rows up to `T` and of all its data, every node's
//! carried state at `T`, and the keys of the output *segments* (the kept outputs
//! of each run, in time order), each an ordinary cache entry.
//!
//! # When a run continues
//! Only when the run is a predict pass over the whole DAG, every node has a recipe
//! and saves its carried state, no node needs all history at once, every source
//! has a lineage, and every source's rows up to `T` are what they were. Anything
//! else is a full run, which writes a new checkpoint; the reason is reported in a
//! [`Growth::Full`].

use std::collections::BTreeMap;

use petgraph::Direction;
use petgraph::visit::EdgeRef;
use sha2::{Digest, Sha256};

use super::{Dag, RunOptions, RunResult};
use crate::cache::{CacheHandle, Key, KeyBuilder, Meta};
use crate::error::{DataflowError, Result};
use crate::node::{Memory, NodeId, Phase, Ports, RunContext};

/// What a run over growing data returns ([`Dag::grow_incrementally`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Incremental {
    /// The kept outputs over the whole interval: the stored segments joined with
    /// the new rows (what a command writing whole result files needs).
    Whole,
    /// Only the new rows of the kept outputs (what a consumer that appends to its
    /// own store needs): the run then never reads the old outputs.
    NewRows,
}

/// What one run over growing data did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Growth {
    /// Every row was computed, and a checkpoint written when the DAG allows; the
    /// text says why no checkpoint applied.
    Full(String),
    /// Continued from the checkpoint at bar end `from`; the sources' new rows end
    /// at `to`.
    Continued {
        /// The checkpoint's last bar end (ns).
        from: i64,
        /// The new last bar end (ns).
        to: i64,
    },
    /// The data had not changed since the checkpoint at `at`: nothing was computed.
    Unchanged {
        /// The checkpoint's last bar end (ns).
        at: i64,
    },
}

/// The state of a run over growing data where it stopped.
#[derive(serde::Serialize, serde::Deserialize)]
struct Checkpoint {
    /// The last bar end any source gave (ns).
    end: i64,
    /// The interval's end the run was asked for (`i64::MAX`: open).
    hi: i64,
    /// Per source node (in node order): its id, the fingerprint of its rows up to
    /// `end`, and the fingerprint of all its data.
    sources: Vec<(String, String, String)>,
    /// The kept nodes, in id order.
    kept: Vec<String>,
    /// Every node's carried state at `end`.
    carry: BTreeMap<String, Vec<u8>>,
    /// The output segments, in time order.
    segments: Vec<[u8; 32]>,
}

/// The separator of a node id and a port in a segment's port names (ids never
/// contain it).
const SEP: char = '/';

impl Dag {
    /// Makes every later run that starts from a reset DAG, in the predict phase, over
    /// the whole DAG, with a cache ([`Dag::use_cache`]), a run over *growing* data:
    /// when the sources gained bars since the last such run of the same DAG, only
    /// the new rows are computed (see [`crate::dag`]'s `growing` notes in
    /// `docs/caching.md`). `None` turns it off (the default): runs then take node
    /// outputs from the cache node by node.
    pub fn grow_incrementally(&mut self, mode: Option<Incremental>) {
        self.incremental = mode;
    }

    /// What each run over growing data did since the last call.
    pub fn take_growth(&mut self) -> Vec<Growth> {
        std::mem::take(&mut self.growth)
    }

    /// Whether `run` should go through [`Dag::run_growing`].
    pub(super) fn wants_growing(&self, ctx: &RunContext, opts: &RunOptions) -> bool {
        self.fresh
            && self.incremental.is_some()
            && self.cache.is_some()
            && ctx.phase == Phase::Predict
            && opts.up_to.is_none()
    }

    /// The run's lineage key, or why it has none.
    fn lineage_key(&self, ctx: &RunContext) -> Result<std::result::Result<Key, String>> {
        let mut b = KeyBuilder::new();
        b.text("schema", "kaizenflow growing run 1")
            .text("crate", env!("CARGO_PKG_VERSION"))
            .text(
                "context",
                &format!(
                    "{:?}|{:?}|{:?}|{:?}",
                    ctx.phase,
                    ctx.interval.map(|i| i.0),
                    ctx.train,
                    ctx.decision
                ),
            );
        for &ix in self.order() {
            let i = ix.index();
            let node = &self.nodes[i];
            let named = format!("node `{}` ({})", node.id(), node.kind());
            let Some(recipe) = &self.recipes[i] else {
                return Ok(Err(format!("{named} has no recipe")));
            };
            if node.memory() == Memory::AllHistory {
                return Ok(Err(format!("{named} needs all history at once")));
            }
            if node.lookahead() > 0 {
                return Ok(Err(format!(
                    "{named} looks {} rows ahead: its last rows change when bars are appended",
                    node.lookahead()
                )));
            }
            b.text("id", node.id().as_str())
                .text("kind", node.kind())
                .field("version", &node.version().to_le_bytes())
                .text("recipe", recipe);
            if node.inputs().is_empty() {
                let Some(lineage) = node.data_lineage() else {
                    return Ok(Err(format!(
                        "{named} cannot say which data it reads apart from its content"
                    )));
                };
                b.text("lineage", &lineage);
            }
            if node.learns() {
                let state = node
                    .save_state()
                    .map_err(|e| e.in_node(node.id(), node.kind()))?;
                b.field("state", &Sha256::digest(&state));
            }
            let mut edges: Vec<(String, String, String)> = self
                .graph
                .edges_directed(ix, Direction::Incoming)
                .map(|e| {
                    let w = e.weight();
                    (
                        self.graph[e.source()].0.clone(),
                        w.from_port.clone(),
                        w.to_port.clone(),
                    )
                })
                .collect();
            edges.sort();
            for (from, fp, tp) in &edges {
                b.text("from", from)
                    .text("from_port", fp)
                    .text("to_port", tp);
            }
        }
        Ok(Ok(b.finish()))
    }

    /// A run over growing data (see [`Dag::grow_incrementally`]); the DAG is fresh.
    pub(super) fn run_growing(&mut self, ctx: &RunContext, opts: &RunOptions) -> Result<RunResult> {
        let (Some(handle), Some(mode)) = (self.cache.clone(), self.incremental) else {
            return Err(DataflowError::invalid("a growing run needs a cache"));
        };
        let lineage = match self.lineage_key(ctx)? {
            Ok(k) => k,
            Err(why) => {
                // No checkpoint can apply: an ordinary cached run.
                self.growth
                    .push(Growth::Full(format!("the DAG cannot continue runs: {why}")));
                self.incremental = None;
                let r = self.run(ctx, opts);
                self.incremental = Some(mode);
                return r;
            }
        };
        let order = self.order().to_vec();
        let keep = self.kept(&order, opts);
        let kept: Vec<String> = {
            let mut k: Vec<String> = (0..self.nodes.len())
                .filter(|&i| keep[i])
                .map(|i| self.nodes[i].id().0.clone())
                .collect();
            k.sort();
            k
        };
        let sources: Vec<usize> = (0..self.nodes.len())
            .filter(|&i| self.nodes[i].inputs().is_empty())
            .collect();
        let hi = ctx.interval.map_or(i64::MAX, |i| i.1);
        let fulls: Vec<Option<String>> = sources
            .iter()
            .map(|&i| {
                let n = &self.nodes[i];
                n.data_fingerprint()
                    .map_err(|e| e.in_node(n.id(), n.kind()))
            })
            .collect::<Result<_>>()?;
        let prior = match self.usable_checkpoint(&handle, &lineage, &kept, hi, &sources, &fulls)? {
            Ok(c) => c,
            Err(why) => {
                return self.run_from_scratch(&handle, &lineage, ctx, opts, kept, &fulls, why);
            }
        };
        let old = match mode {
            Incremental::Whole => match load_segments(&handle, &prior.segments) {
                Ok(s) => s,
                Err(why) => {
                    return self.run_from_scratch(&handle, &lineage, ctx, opts, kept, &fulls, why);
                }
            },
            Incremental::NewRows => Vec::new(),
        };
        if fulls
            .iter()
            .zip(&prior.sources)
            .all(|(f, (_, _, had))| f.as_deref() == Some(had.as_str()))
        {
            self.growth.push(Growth::Unchanged { at: prior.end });
            let carry = to_carry(&prior.carry);
            self.load_carry(&carry)?;
            let outputs = match mode {
                Incremental::Whole => join_segments(old, None)?,
                Incremental::NewRows => {
                    let last = load_segments(
                        &handle,
                        &prior.segments[prior.segments.len().saturating_sub(1)..],
                    )
                    .map_err(DataflowError::invalid)?;
                    empty_like(join_segments(last, None)?)
                }
            };
            self.run_keys
                .push(Some(segments_key(&lineage, &prior.segments)));
            return Ok(RunResult {
                outputs,
                timings: Vec::new(),
            });
        }
        // Continue from the checkpoint over the new rows.
        self.load_carry(&to_carry(&prior.carry))?;
        let ctx_new = RunContext {
            interval: Some((prior.end.saturating_add(1), hi)),
            ..ctx.clone()
        };
        let mut r = self.run_inner(&ctx_new, opts)?;
        let end = self
            .sources_end(&sources)
            .unwrap_or(prior.end)
            .max(prior.end);
        let mut segments = prior.segments.clone();
        let any_rows = r
            .outputs
            .values()
            .flat_map(|p| p.values())
            .any(|f| f.n_rows() > 0);
        if any_rows
            && let Some(k) = store_segment(&handle, &lineage, (prior.end, end), &fulls, &r.outputs)
        {
            segments.push(k.0);
        }
        self.write_checkpoint(&handle, &lineage, end, hi, &sources, kept, segments.clone());
        self.growth.push(Growth::Continued {
            from: prior.end,
            to: end,
        });
        self.run_keys.push(Some(segments_key(&lineage, &segments)));
        if mode == Incremental::Whole {
            r.outputs = join_segments(old, Some(r.outputs))?;
        }
        Ok(r)
    }

    /// The checkpoint under `lineage` when it applies to this run, or why not.
    fn usable_checkpoint(
        &self,
        handle: &CacheHandle,
        lineage: &Key,
        kept: &[String],
        hi: i64,
        sources: &[usize],
        fulls: &[Option<String>],
    ) -> Result<std::result::Result<Checkpoint, String>> {
        let bytes = match handle.cache.load(lineage) {
            Ok((_, _, bytes)) => bytes,
            Err(crate::cache::EntryError::Truncated(_)) => {
                return Ok(Err("no checkpoint of this run yet".into()));
            }
            Err(e) => return Ok(Err(format!("its checkpoint was unreadable ({e})"))),
        };
        let Ok(c) = postcard::from_bytes::<Checkpoint>(&bytes) else {
            return Ok(Err("its checkpoint does not decode".into()));
        };
        if c.kept != kept {
            return Ok(Err(
                "the run keeps other nodes' outputs than the checkpointed one".into(),
            ));
        }
        if c.hi != hi || c.end >= hi {
            return Ok(Err(
                "the run's interval ends elsewhere than the checkpointed one's".into(),
            ));
        }
        if c.sources.len() != sources.len() || fulls.iter().any(Option::is_none) {
            return Ok(Err("a source cannot fingerprint its data".into()));
        }
        let unchanged = fulls
            .iter()
            .zip(&c.sources)
            .all(|(f, (_, _, had))| f.as_deref() == Some(had.as_str()));
        if unchanged {
            return Ok(Ok(c));
        }
        for (&i, (id, prefix, _)) in sources.iter().zip(&c.sources) {
            let n = &self.nodes[i];
            let now = n
                .data_prefix(c.end)
                .map_err(|e| e.in_node(n.id(), n.kind()))?;
            if n.id().as_str() != id || now.as_deref() != Some(prefix.as_str()) {
                return Ok(Err(format!(
                    "the data of source `{}` up to {} changed since the checkpoint",
                    n.id(),
                    kf_frame::Timestamp(c.end)
                )));
            }
        }
        Ok(Ok(c))
    }

    /// A full run that writes a checkpoint (when the nodes can save their carried
    /// state), reporting `why` no checkpoint applied.
    #[allow(clippy::too_many_arguments)]
    fn run_from_scratch(
        &mut self,
        handle: &CacheHandle,
        lineage: &Key,
        ctx: &RunContext,
        opts: &RunOptions,
        kept: Vec<String>,
        fulls: &[Option<String>],
        why: String,
    ) -> Result<RunResult> {
        let sources: Vec<usize> = (0..self.nodes.len())
            .filter(|&i| self.nodes[i].inputs().is_empty())
            .collect();
        // Every node runs (none is taken from the node cache), so each carries its
        // state to the checkpoint.
        let cache = self.cache.take();
        let r = self.run_inner(ctx, opts);
        self.cache = cache;
        let r = r?;
        self.growth.push(Growth::Full(why));
        let Some(end) = self.sources_end(&sources) else {
            self.run_keys.push(None);
            return Ok(r);
        };
        let hi = ctx.interval.map_or(i64::MAX, |i| i.1);
        let from = ctx.interval.map_or(i64::MIN, |i| i.0);
        let segments: Vec<[u8; 32]> =
            store_segment(handle, lineage, (from, end), fulls, &r.outputs)
                .map(|k| vec![k.0])
                .unwrap_or_default();
        self.write_checkpoint(handle, lineage, end, hi, &sources, kept, segments.clone());
        self.run_keys.push(Some(segments_key(lineage, &segments)));
        Ok(r)
    }

    /// Runs (not as a growing run), leaving the run key to the caller.
    fn run_inner(&mut self, ctx: &RunContext, opts: &RunOptions) -> Result<RunResult> {
        let mode = self.incremental.take();
        let keys = self.run_keys.len();
        let r = self.run(ctx, opts);
        // The caller records this run's key.
        self.run_keys.truncate(keys);
        self.incremental = mode;
        r
    }

    /// The last bar end any of `sources` gave in the last run, if any rows.
    fn sources_end(&self, sources: &[usize]) -> Option<i64> {
        sources
            .iter()
            .filter_map(|&i| self.last_ends.get(i).copied().flatten())
            .max()
    }

    /// Writes the checkpoint at `end` (a warning, not an error, when it cannot be:
    /// the run's outputs stand, and the next run starts from scratch).
    #[allow(clippy::too_many_arguments)]
    fn write_checkpoint(
        &mut self,
        handle: &CacheHandle,
        lineage: &Key,
        end: i64,
        hi: i64,
        sources: &[usize],
        kept: Vec<String>,
        segments: Vec<[u8; 32]>,
    ) {
        let made = (|| -> Result<Vec<u8>> {
            let carry = self
                .save_carry()?
                .into_iter()
                .map(|(id, b)| (id.0, b))
                .collect();
            let mut fps = Vec::with_capacity(sources.len());
            for &i in sources {
                let n = &self.nodes[i];
                let prefix = n
                    .data_prefix(end)
                    .map_err(|e| e.in_node(n.id(), n.kind()))?;
                let full = n
                    .data_fingerprint()
                    .map_err(|e| e.in_node(n.id(), n.kind()))?;
                let (Some(prefix), Some(full)) = (prefix, full) else {
                    return Err(DataflowError::invalid(format!(
                        "source `{}` cannot fingerprint its data",
                        n.id()
                    )));
                };
                fps.push((n.id().0.clone(), prefix, full));
            }
            let c = Checkpoint {
                end,
                hi,
                sources: fps,
                kept,
                carry,
                segments,
            };
            postcard::to_stdvec(&c).map_err(|e| DataflowError::State(e.to_string()))
        })();
        let stored = made.and_then(|bytes| {
            handle.cache.store(
                lineage,
                &meta(handle, "checkpoint", &Ports::new()),
                &Ports::new(),
                &bytes,
            )
        });
        if let Err(e) = stored {
            tracing::warn!(error = %e, "no checkpoint written; the next run over this data starts from scratch");
            if let Some(Growth::Full(why)) = self.growth.last_mut() {
                why.push_str(&format!("; no checkpoint was written: {e}"));
            }
        }
    }
}

/// The header of a checkpoint or segment entry holding `ports`.
fn meta(handle: &CacheHandle, what: &str, ports: &Ports) -> Meta {
    Meta {
        node: format!("({what})"),
        kind: what.to_string(),
        version: 1,
        origin: handle.origin.to_string(),
        recipe: String::new(),
        ports: ports.keys().cloned().collect(),
        rows: ports.values().next().map_or(0, |f| f.n_rows()),
        cells: ports
            .values()
            .map(|f| f.n_rows() * f.n_assets() * f.n_features())
            .sum(),
        compute_ns: 0,
        stored_at: std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as i64),
    }
}

fn to_carry(c: &BTreeMap<String, Vec<u8>>) -> BTreeMap<NodeId, Vec<u8>> {
    c.iter()
        .map(|(k, v)| (NodeId(k.clone()), v.clone()))
        .collect()
}

/// The key of the joined outputs of `segments` (what a command keys the files it
/// writes from them on).
fn segments_key(lineage: &Key, segments: &[[u8; 32]]) -> Key {
    let mut b = KeyBuilder::new();
    b.text("schema", "kaizenflow growing outputs 1")
        .field("lineage", &lineage.0);
    for s in segments {
        b.field("segment", s);
    }
    b.finish()
}

/// Stores one run's kept outputs as a segment; `None` (with a warning) when it
/// cannot be written.
fn store_segment(
    handle: &CacheHandle,
    lineage: &Key,
    (from, end): (i64, i64),
    data: &[Option<String>],
    outputs: &BTreeMap<NodeId, Ports>,
) -> Option<Key> {
    let mut ports = Ports::new();
    for (id, p) in outputs {
        for (port, f) in p {
            ports.insert(format!("{}{SEP}{port}", id.0), f.clone());
        }
    }
    // What the outputs are a function of: the DAG and run (the lineage), the span
    // of bars and the sources' data (so no pass over the outputs to key them).
    let mut b = KeyBuilder::new();
    b.text("schema", "kaizenflow growing segment 2")
        .field("lineage", &lineage.0)
        .field("from", &from.to_le_bytes())
        .field("end", &end.to_le_bytes());
    for d in data {
        // A source that cannot fingerprint its data: no key says what this is.
        b.text("data", d.as_deref()?);
    }
    let key = b.finish();
    match handle
        .cache
        .store(&key, &meta(handle, "segment", &ports), &ports, &[])
    {
        Ok(()) => Some(key),
        Err(e) => {
            tracing::warn!(error = %e, "an output segment could not be stored");
            None
        }
    }
}

/// The segments' outputs, in order, or why one cannot be read.
fn load_segments(
    handle: &CacheHandle,
    segments: &[[u8; 32]],
) -> std::result::Result<Vec<Ports>, String> {
    segments
        .iter()
        .map(|k| {
            handle
                .cache
                .load(&Key(*k))
                .map(|(_, p, _)| p)
                .map_err(|e| format!("an output segment of the checkpoint is gone ({e})"))
        })
        .collect()
}

/// Joins segments (and the new rows) node by node and port by port, in time order.
fn join_segments(
    segments: Vec<Ports>,
    new: Option<BTreeMap<NodeId, Ports>>,
) -> Result<BTreeMap<NodeId, Ports>> {
    let mut parts: BTreeMap<NodeId, BTreeMap<String, Vec<kf_frame::Frame>>> = BTreeMap::new();
    for seg in segments {
        for (name, f) in seg {
            let (id, port) = name.split_once(SEP).unwrap_or((name.as_str(), ""));
            parts
                .entry(NodeId(id.to_string()))
                .or_default()
                .entry(port.to_string())
                .or_default()
                .push(f);
        }
    }
    for (id, ports) in new.into_iter().flatten() {
        for (port, f) in ports {
            parts
                .entry(id.clone())
                .or_default()
                .entry(port)
                .or_default()
                .push(f);
        }
    }
    parts
        .into_iter()
        .map(|(id, ports)| {
            let ports = ports
                .into_iter()
                .map(|(port, frames)| {
                    let f = kf_frame::Frame::concat(&frames)
                        .map_err(|e| DataflowError::from(e).in_node(&id, "segments"))?;
                    Ok((port, f))
                })
                .collect::<Result<Ports>>()?;
            Ok((id, ports))
        })
        .collect()
}

/// The same outputs with no rows.
fn empty_like(outputs: BTreeMap<NodeId, Ports>) -> BTreeMap<NodeId, Ports> {
    outputs
        .into_iter()
        .map(|(id, ports)| {
            let ports = ports
                .into_iter()
                .map(|(p, f)| (p, f.slice_time(1, 0)))
                .collect();
            (id, ports)
        })
        .collect()
}
