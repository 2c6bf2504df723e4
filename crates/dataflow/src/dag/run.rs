//! Running a [`Dag`]: every node (or those a target needs) in topological order,
//! independent nodes in parallel, with per-node timing, dropping each output as
//! soon as nothing later needs it.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use petgraph::Direction;
use petgraph::graph::NodeIndex;
use petgraph::visit::EdgeRef;
use rayon::prelude::*;

use super::Dag;
use super::cached::Action;
use crate::error::{DataflowError, Result};
use crate::node::{DF_OUT, Node, NodeId, Ports, RunContext};

/// A node to run in a level, with its index.
type Slot<'a> = (usize, &'a mut Box<dyn Node>);

/// Which outputs a run keeps and returns (the others are dropped as soon as every
/// consumer has run, so a long chain does not hold every intermediate frame).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum Keep {
    /// The sinks' outputs (or the target's, for a partial run).
    #[default]
    Sinks,
    /// Every node's outputs.
    All,
    /// The sinks' and these nodes' outputs.
    Nodes(BTreeSet<NodeId>),
}

/// How to run a DAG.
#[derive(Clone, Debug, Default)]
pub struct RunOptions {
    /// Run only this node and what it depends on.
    pub up_to: Option<NodeId>,
    /// Run independent nodes in parallel on rayon (results do not depend on it).
    pub parallel: bool,
    /// Which outputs to return.
    pub keep: Keep,
}

/// Wall time and output size of one node's call.
#[derive(Clone, Debug, PartialEq)]
pub struct NodeTiming {
    /// The node.
    pub node: NodeId,
    /// Its type.
    pub kind: String,
    /// Wall time of its call.
    pub wall: Duration,
    /// Rows of its (first) output (0 for an output the cache made unnecessary).
    pub rows: usize,
    /// Values (rows x assets x features) over all its outputs.
    pub cells: usize,
    /// Whether the output came from the node cache instead of the node (its wall
    /// time is then the time to load it, or zero when nothing needed it).
    pub cached: bool,
}

/// What a run returns: the kept outputs by node, and one timing per node run, in
/// topological order.
#[derive(Clone, Debug, Default)]
pub struct RunResult {
    /// Outputs of the kept nodes.
    pub outputs: BTreeMap<NodeId, Ports>,
    /// One entry per node run.
    pub timings: Vec<NodeTiming>,
}

impl RunResult {
    /// The frame on `node`'s `df_out` port.
    ///
    /// # Errors
    /// [`DataflowError::UnknownNode`] when that node's outputs were not kept.
    pub fn df_out(&self, node: &str) -> Result<&kf_frame::Frame> {
        self.outputs
            .get(&NodeId::from(node))
            .and_then(|p| p.get(DF_OUT))
            .ok_or_else(|| DataflowError::UnknownNode {
                node: node.to_string(),
                known: self
                    .outputs
                    .keys()
                    .map(|n| n.0.clone())
                    .collect::<Vec<_>>()
                    .join(", "),
            })
    }
}

/// How long a run waits for another run computing the same output before it
/// computes it too (see [`crate::cache::NodeCache::lock`]).
const LOCK_PATIENCE: Duration = Duration::from_secs(30);

/// Rows of the first output and values over all outputs.
fn size_of(out: &Ports) -> (usize, usize) {
    let rows = out.values().next().map_or(0, |f| f.n_rows());
    let cells = out
        .values()
        .map(|f| f.n_rows() * f.n_assets() * f.n_features())
        .sum();
    (rows, cells)
}

/// What a run executes, computed once per change of the graph and target node
/// ([`Dag::run`] keeps the last one: a streaming run asks for the same every bar).
#[derive(Debug)]
pub(super) struct Plan {
    /// The target node (`None`: every node).
    up_to: Option<NodeId>,
    /// The wanted nodes in topological order.
    pub(super) order: Vec<NodeIndex>,
    /// The wanted nodes by depth: each runs after every node it depends on.
    levels: Vec<Vec<NodeIndex>>,
    /// Per node, how many wanted nodes consume its outputs.
    pending: Vec<usize>,
    /// The DAG's forward targets, handed to every node in the run's context.
    targets: Arc<crate::node::Targets>,
}

impl Dag {
    /// Runs every node (or those `opts.up_to` needs) in topological order, passing
    /// `ctx` to each. A run is one call in the sense of the [`Node`] contract: it
    /// continues from the state the previous run carried out (so consecutive runs
    /// over consecutive tiles continue each other); call [`Dag::reset`] to start afresh. Independent nodes run in parallel when `opts.parallel`; each
    /// node is deterministic, so the outputs do not depend on the schedule.
    ///
    /// # Errors
    /// [`DataflowError::Dangling`] for an input port with no edge; the first failing
    /// node's error wrapped in [`DataflowError::Node`].
    pub fn run(&mut self, ctx: &RunContext, opts: &RunOptions) -> Result<RunResult> {
        if self.wants_growing(ctx, opts) {
            return self.run_growing(ctx, opts);
        }
        let plan = match &self.plan {
            Some(p) if p.up_to == opts.up_to => Arc::clone(p),
            _ => {
                let p = Arc::new(self.make_plan(opts.up_to.as_ref())?);
                self.plan = Some(Arc::clone(&p));
                p
            }
        };
        let with_targets;
        let ctx = if ctx.targets.is_none() && !plan.targets.is_empty() {
            with_targets = RunContext {
                targets: Some(Arc::clone(&plan.targets)),
                ..ctx.clone()
            };
            &with_targets
        } else {
            ctx
        };
        let order = &plan.order;
        let keep = self.kept(order, opts);
        self.check_carry()?;
        let (mut actions, keys) = match &self.cache {
            Some(handle) if self.fresh => {
                let (a, k) = self.cache_actions(handle, ctx, &plan, &keep)?;
                (Some(a), k)
            }
            _ => (None, Vec::new()),
        };
        let sink_key = {
            let mut b = crate::cache::KeyBuilder::new();
            let mut all = !keys.is_empty();
            for (i, &k) in keep.iter().enumerate() {
                match keys.get(i).copied().flatten() {
                    Some(key) if k => {
                        b.field("sink", &key.0);
                    }
                    None if k => all = false,
                    _ => {}
                }
            }
            all.then(|| b.finish())
        };
        if self.cache.is_some() {
            self.run_keys.push(sink_key);
        }
        self.fresh = false;
        if let Some(a) = &actions {
            self.carry_lost = a.iter().any(|a| !matches!(a, Action::Run(_)));
        }
        let mut pending = plan.pending.clone();
        let mut outputs: Vec<Option<Ports>> = (0..self.nodes.len()).map(|_| None).collect();
        self.last_ends.clear();
        self.last_ends.resize(self.nodes.len(), None);
        let mut timings = Vec::with_capacity(order.len());
        for level in &plan.levels {
            let mut jobs: Vec<(NodeIndex, Ports)> = Vec::with_capacity(level.len());
            let mut in_level: Vec<bool> = vec![false; self.nodes.len()];
            for &ix in level {
                let i = ix.index();
                if let Some(actions) = &mut actions
                    && !matches!(actions[i], Action::Run(_))
                {
                    let action = std::mem::replace(&mut actions[i], Action::Skip);
                    let (out, timing) = self.take_from_cache(i, action)?;
                    outputs[i] = out;
                    timings.push(timing);
                    continue;
                }
                in_level[i] = true;
                let mut ports = Ports::new();
                for e in self.graph.edges_directed(ix, Direction::Incoming) {
                    let w = e.weight();
                    let frame = outputs[e.source().index()]
                        .as_ref()
                        .and_then(|p| p.get(&w.from_port))
                        .ok_or_else(|| {
                            DataflowError::invalid(format!(
                                "node `{}` gave no frame on its output port `{}`, which feeds `{}`",
                                self.graph[e.source()],
                                w.from_port,
                                self.graph[ix]
                            ))
                        })?;
                    ports.insert(w.to_port.clone(), frame.clone());
                }
                jobs.push((ix, ports));
            }
            let mut runnable: Vec<Slot<'_>> = self
                .nodes
                .iter_mut()
                .enumerate()
                .filter(|(i, _)| in_level[*i])
                .collect();
            // `jobs` and `runnable` are both in node-index order within the level.
            jobs.sort_by_key(|(ix, _)| ix.index());
            let work: Vec<(&mut Slot<'_>, Ports)> = runnable
                .iter_mut()
                .zip(jobs.into_iter().map(|(_, p)| p))
                .collect();
            let keys_now: Vec<Option<crate::cache::Key>> = match &actions {
                Some(a) => a
                    .iter()
                    .map(|a| match a {
                        Action::Run(k) => *k,
                        _ => None,
                    })
                    .collect(),
                None => Vec::new(),
            };
            let handle = self.cache.clone();
            let run_one = |(slot, ports): (&mut Slot<'_>, Ports)| {
                let node = &mut slot.1;
                let span = tracing::info_span!("node", id = %node.id(), kind = node.kind());
                let _guard = span.enter();
                let start = Instant::now();
                // Single flight: hold the key while computing; if another run stored
                // it while this one waited, load it instead.
                let key = keys_now.get(slot.0).copied().flatten();
                let lock = match (&handle, &key) {
                    (Some(h), Some(k)) => h.cache.lock(k, LOCK_PATIENCE),
                    _ => None,
                };
                if let (Some(h), Some(k), Some(_)) = (&handle, &key, &lock)
                    && h.cache.probe(k).is_some()
                    && let Ok((_, out, state)) = h.cache.load(k)
                {
                    if !state.is_empty() {
                        node.load_state(&state)
                            .map_err(|e| e.in_node(node.id(), node.kind()))?;
                    }
                    let (rows, cells) = size_of(&out);
                    return Ok::<_, DataflowError>((
                        slot.0,
                        out,
                        NodeTiming {
                            node: node.id().clone(),
                            kind: node.kind().to_string(),
                            wall: start.elapsed(),
                            rows,
                            cells,
                            cached: true,
                        },
                        None,
                    ));
                }
                let out = node
                    .run(ctx, &ports)
                    .map_err(|e| e.in_node(node.id(), node.kind()))?;
                let wall = start.elapsed();
                drop(ports);
                let (rows, cells) = size_of(&out);
                tracing::debug!(wall_us = wall.as_micros() as u64, rows, cells, "node done");
                Ok((
                    slot.0,
                    out,
                    NodeTiming {
                        node: node.id().clone(),
                        kind: node.kind().to_string(),
                        wall,
                        rows,
                        cells,
                        cached: false,
                    },
                    lock,
                ))
            };
            type Done = (usize, Ports, NodeTiming, Option<crate::cache::KeyLock>);
            let done: Vec<Result<Done>> = if opts.parallel && work.len() > 1 {
                work.into_par_iter().map(run_one).collect()
            } else {
                work.into_iter().map(run_one).collect()
            };
            for r in done {
                let (i, out, timing, lock) = r?;
                let declared = self.nodes[i].outputs();
                if let Some(port) = declared.iter().find(|p| !out.contains_key(*p)) {
                    return Err(DataflowError::invalid(format!(
                        "gave no frame on its declared output port `{port}`"
                    ))
                    .in_node(self.nodes[i].id(), self.nodes[i].kind()));
                }
                if timing.cached {
                    // Another run stored it while this one waited for its key.
                    self.loaded_late(i);
                } else if let Some(Action::Run(Some(key))) = actions.as_ref().map(|a| &a[i]) {
                    self.cache_store(i, key, &out, timing.wall);
                }
                drop(lock);
                self.last_ends[i] = out
                    .values()
                    .filter_map(|f| f.end_ts().last().copied())
                    .max();
                outputs[i] = Some(out);
                timings.push(timing);
            }
            // Drop what no later node needs.
            for &ix in level {
                for p in self.graph.neighbors_directed(ix, Direction::Incoming) {
                    let p = p.index();
                    pending[p] = pending[p].saturating_sub(1);
                    if pending[p] == 0 && !keep[p] {
                        outputs[p] = None;
                    }
                }
            }
        }
        let outputs = outputs
            .into_iter()
            .enumerate()
            .filter(|(i, o)| keep[*i] && o.is_some())
            .filter_map(|(i, o)| o.map(|o| (self.graph[NodeIndex::new(i)].clone(), o)))
            .collect();
        Ok(RunResult { outputs, timings })
    }

    /// The plan of a run of the whole DAG or of what `up_to` needs: the nodes in
    /// order, grouped in levels (a node runs after every node it depends on), and
    /// how many wanted consumers each node's outputs have.
    ///
    /// # Errors
    /// [`DataflowError::UnknownNode`] for an unknown target,
    /// [`DataflowError::Dangling`] for an input port with no edge.
    fn make_plan(&self, up_to: Option<&NodeId>) -> Result<Plan> {
        let wanted: Vec<bool> = match up_to {
            None => vec![true; self.nodes.len()],
            Some(id) => self.ancestors_of(self.ix(id.as_str())?),
        };
        let order: Vec<NodeIndex> = self
            .order()
            .iter()
            .copied()
            .filter(|i| wanted[i.index()])
            .collect();
        for &ix in &order {
            for port in self.nodes[ix.index()].inputs() {
                let fed = self
                    .graph
                    .edges_directed(ix, Direction::Incoming)
                    .any(|e| e.weight().to_port == port);
                if !fed {
                    return Err(DataflowError::Dangling {
                        node: self.graph[ix].clone(),
                        port,
                    });
                }
            }
        }
        let mut depth = vec![0usize; self.nodes.len()];
        for &ix in &order {
            depth[ix.index()] = self
                .graph
                .neighbors_directed(ix, Direction::Incoming)
                .map(|p| depth[p.index()] + 1)
                .max()
                .unwrap_or(0);
        }
        let mut levels: BTreeMap<usize, Vec<NodeIndex>> = BTreeMap::new();
        for &ix in &order {
            levels.entry(depth[ix.index()]).or_default().push(ix);
        }
        let pending: Vec<usize> = (0..self.nodes.len())
            .map(|i| {
                self.graph
                    .neighbors_directed(NodeIndex::new(i), Direction::Outgoing)
                    .filter(|s| wanted[s.index()])
                    .count()
            })
            .collect();
        Ok(Plan {
            up_to: up_to.cloned(),
            order,
            levels: levels.into_values().collect(),
            pending,
            targets: Arc::new(self.targets()),
        })
    }

    pub(super) fn kept(&self, order: &[NodeIndex], opts: &RunOptions) -> Vec<bool> {
        let mut keep = vec![false; self.nodes.len()];
        match &opts.up_to {
            Some(id) => {
                if let Some(ix) = self.index.get(id.as_str()) {
                    keep[ix.index()] = true;
                }
            }
            None => {
                for s in self.sinks() {
                    if let Some(ix) = self.index.get(s.as_str()) {
                        keep[ix.index()] = true;
                    }
                }
            }
        }
        match &opts.keep {
            Keep::Sinks => {}
            Keep::All => {
                for ix in order {
                    keep[ix.index()] = true;
                }
            }
            Keep::Nodes(ids) => {
                for id in ids {
                    if let Some(ix) = self.index.get(id.as_str()) {
                        keep[ix.index()] = true;
                    }
                }
            }
        }
        keep
    }
}
