//! The [`Dag`]: nodes connected port to port on a petgraph graph. This module
//! builds and inspects the graph and keeps its schedule (the topological order,
//! computed once per change of the graph, not once per run); [`run`] runs it.

mod cached;
mod carry;
mod growing;
mod run;
mod step;

pub use growing::{Growth, Incremental};
pub use run::{Keep, NodeTiming, RunOptions, RunResult};

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::sync::OnceLock;

use petgraph::Direction;
use petgraph::graph::{DiGraph, NodeIndex};
use petgraph::visit::EdgeRef;

use crate::error::{DataflowError, Result};
use crate::node::{DF_IN, DF_OUT, Node, NodeId, Ports, RunContext};

/// An edge: which output port of the source feeds which input port of the target.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Edge {
    from_port: String,
    to_port: String,
}

/// A directed acyclic graph of [`Node`]s.
///
/// # Invariants
/// - Node ids are unique; every edge joins an existing output port to an existing
///   input port, and an input port has at most one edge into it.
/// - The graph has no cycle: [`Dag::connect`] refuses the edge that would close one.
///
/// Nodes are never removed, so the graph's node index is also the index into `nodes`.
pub struct Dag {
    graph: DiGraph<NodeId, Edge>,
    nodes: Vec<Box<dyn Node>>,
    /// Node ids (as strings: looked up by `&str` without building a `NodeId`).
    index: HashMap<String, NodeIndex>,
    /// The topological order, computed on first use after the graph last changed
    /// (a streaming run calls [`Dag::run`] once per bar; the order is the same each
    /// time).
    schedule: OnceLock<Vec<NodeIndex>>,
    /// The last run's plan (levels and consumer counts), kept for the next run with
    /// the same target; dropped when the graph changes.
    plan: Option<std::sync::Arc<run::Plan>>,
    /// The streaming fast path's plan and buffers (see [`Dag::step`]); dropped when
    /// the graph changes.
    stepper: Option<step::Stepper>,
    /// Per node (by index): what its builder recorded of its parameters, for cache
    /// keys ([`Dag::set_recipe`]).
    recipes: Vec<Option<std::sync::Arc<str>>>,
    /// The node cache runs from a reset DAG use ([`Dag::use_cache`]).
    cache: Option<crate::cache::CacheHandle>,
    /// No run or step since the last reset (or since the DAG was built): the nodes
    /// carry no state, so a run may take outputs from the cache.
    fresh: bool,
    /// The last run from a reset took outputs from the cache, so the nodes it
    /// skipped carry no state to continue from.
    carry_lost: bool,
    /// Per run since [`Dag::take_run_keys`]: the key of its sinks' outputs.
    run_keys: Vec<Option<crate::cache::Key>>,
    /// Whether runs from a reset continue over grown data ([`Dag::grow_incrementally`]).
    incremental: Option<Incremental>,
    /// What each run over growing data did, since [`Dag::take_growth`].
    growth: Vec<Growth>,
    /// Per node (by index): the last bar end of its outputs in the last run (`None`:
    /// no rows, or not run).
    last_ends: Vec<Option<i64>>,
}

impl std::fmt::Debug for Dag {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Dag")
            .field("nodes", &self.ids())
            .field("edges", &self.graph.edge_count())
            .finish()
    }
}

impl Default for Dag {
    fn default() -> Self {
        Dag::new()
    }
}

impl Dag {
    /// An empty DAG.
    pub fn new() -> Dag {
        Dag {
            graph: DiGraph::new(),
            nodes: Vec::new(),
            index: HashMap::new(),
            schedule: OnceLock::new(),
            plan: None,
            stepper: None,
            recipes: Vec::new(),
            cache: None,
            fresh: true,
            carry_lost: false,
            run_keys: Vec::new(),
            incremental: None,
            growth: Vec::new(),
            last_ends: Vec::new(),
        }
    }

    /// Adds a node.
    ///
    /// # Errors
    /// [`DataflowError::DuplicateId`] when its id is taken.
    pub fn add_node(&mut self, node: Box<dyn Node>) -> Result<()> {
        let id = node.id().clone();
        check_id(id.as_str())?;
        let back = match node.memory() {
            crate::node::Memory::Rows(n) => n,
            _ => 0,
        };
        let rows = back.max(node.lookahead());
        if rows > crate::limits::MAX_ROWS_BACK {
            return Err(DataflowError::invalid(format!(
                "node `{id}` ({}) needs {rows} rows of memory or lookahead, more than the {} \
                 rows a node may take; use a smaller window, lag, shift or delay",
                node.kind(),
                crate::limits::MAX_ROWS_BACK
            )));
        }
        if self.index.contains_key(id.as_str()) {
            return Err(DataflowError::DuplicateId(id));
        }
        self.schedule = OnceLock::new();
        self.plan = None;
        self.stepper = None;
        let ix = self.graph.add_node(id.clone());
        debug_assert_eq!(ix.index(), self.nodes.len());
        self.nodes.push(node);
        self.recipes.push(None);
        self.index.insert(id.0, ix);
        Ok(())
    }

    /// Connects output port `from.1` of node `from.0` to input port `to.1` of `to.0`.
    ///
    /// # Errors
    /// [`DataflowError::UnknownNode`] or [`DataflowError::UnknownPort`] for names that
    /// do not exist, [`DataflowError::PortTaken`] for an input that already has an
    /// edge, and [`DataflowError::Cycle`] (naming the cycle) for an edge that closes one.
    pub fn connect(&mut self, from: (&str, &str), to: (&str, &str)) -> Result<()> {
        let src = self.ix(from.0)?;
        let dst = self.ix(to.0)?;
        self.check_port(src, "output", from.1)?;
        self.check_port(dst, "input", to.1)?;
        if let Some(e) = self
            .graph
            .edges_directed(dst, Direction::Incoming)
            .find(|e| e.weight().to_port == to.1)
        {
            return Err(DataflowError::PortTaken {
                node: self.graph[dst].clone(),
                port: to.1.to_string(),
                from: self.graph[e.source()].clone(),
            });
        }
        if let Some(path) = self.path(dst, src) {
            let mut names: Vec<String> = path.iter().map(|&i| self.graph[i].0.clone()).collect();
            names.push(self.graph[dst].0.clone());
            return Err(DataflowError::Cycle {
                from: self.graph[src].clone(),
                to: self.graph[dst].clone(),
                cycle: names.join(" -> "),
            });
        }
        self.schedule = OnceLock::new();
        self.plan = None;
        self.stepper = None;
        self.graph.add_edge(
            src,
            dst,
            Edge {
                from_port: from.1.to_string(),
                to_port: to.1.to_string(),
            },
        );
        Ok(())
    }

    /// Connects `from`'s `df_out` to `to`'s `df_in` (the usual single-port edge).
    ///
    /// # Errors
    /// As [`Dag::connect`].
    pub fn chain(&mut self, from: &str, to: &str) -> Result<()> {
        self.connect((from, DF_OUT), (to, DF_IN))
    }

    /// Adds `node` after the DAG's single sink (`df_out` -> `df_in`), as KaizenFlow's
    /// `append_to_tail`. An empty DAG just takes the node.
    ///
    /// # Errors
    /// [`DataflowError::Invalid`] when the DAG has several sinks; as [`Dag::add_node`].
    pub fn append_to_tail(&mut self, node: Box<dyn Node>) -> Result<()> {
        let tail = self.single_sink()?;
        let id = node.id().clone();
        self.add_node(node)?;
        if let Some(tail) = tail {
            self.chain(tail.as_str(), id.as_str())?;
        }
        Ok(())
    }

    /// Adds every node and edge of `other` (ids must not clash), then feeds `other`'s
    /// unconnected `df_in` ports from this DAG's single sink, so two pipelines compose
    /// into one. With `attach = false` the two stay side by side.
    ///
    /// # Errors
    /// [`DataflowError::DuplicateId`] for an id in both; [`DataflowError::Invalid`]
    /// when attaching to a DAG with several sinks.
    pub fn compose(&mut self, other: Dag, attach: bool) -> Result<()> {
        let tail = if attach { self.single_sink()? } else { None };
        let Dag {
            graph,
            nodes,
            recipes,
            ..
        } = other;
        let mut open: Vec<NodeId> = Vec::new();
        for (i, node) in nodes.into_iter().enumerate() {
            let ix = NodeIndex::new(i);
            let fed = graph
                .edges_directed(ix, Direction::Incoming)
                .any(|e| e.weight().to_port == DF_IN);
            if !fed && node.inputs().iter().any(|p| p == DF_IN) {
                open.push(node.id().clone());
            }
            self.add_node(node)?;
            if let Some(r) = &recipes[i] {
                let last = self.recipes.len() - 1;
                self.recipes[last] = Some(r.clone());
            }
        }
        for e in graph.edge_references() {
            let (a, b) = (&graph[e.source()], &graph[e.target()]);
            let w = e.weight();
            self.connect((a.as_str(), &w.from_port), (b.as_str(), &w.to_port))?;
        }
        if let Some(tail) = tail {
            for id in open {
                self.chain(tail.as_str(), id.as_str())?;
            }
        }
        Ok(())
    }

    /// The node ids in insertion order.
    pub fn ids(&self) -> Vec<NodeId> {
        self.nodes.iter().map(|n| n.id().clone()).collect()
    }

    /// The node with this id.
    ///
    /// # Errors
    /// [`DataflowError::UnknownNode`].
    pub fn node(&self, id: &str) -> Result<&dyn Node> {
        Ok(self.nodes[self.ix(id)?.index()].as_ref())
    }

    /// Puts `node` in place of the node with the same id, keeping its edges, and
    /// returns the node it replaced. Used to feed a DAG other data (a perturbed
    /// input, a captured frame) without rebuilding it.
    ///
    /// # Errors
    /// [`DataflowError::UnknownNode`] when no node has that id;
    /// [`DataflowError::Invalid`] when the ports differ (the DAG is left unchanged).
    pub fn replace_node(&mut self, node: Box<dyn Node>) -> Result<Box<dyn Node>> {
        let i = self.ix(node.id().as_str())?.index();
        let old = &self.nodes[i];
        if old.inputs() != node.inputs() || old.outputs() != node.outputs() {
            return Err(DataflowError::invalid(format!(
                "cannot replace node `{}` ({}, inputs [{}], outputs [{}]) by a `{}` with inputs \
                 [{}] and outputs [{}]: the ports must be the same",
                node.id(),
                old.kind(),
                old.inputs().join(", "),
                old.outputs().join(", "),
                node.kind(),
                node.inputs().join(", "),
                node.outputs().join(", ")
            )));
        }
        self.recipes[i] = None;
        Ok(std::mem::replace(&mut self.nodes[i], node))
    }

    /// Wraps the node `id` in what `wrap` makes of it (which keeps its id and ports).
    pub(crate) fn wrap_node(
        &mut self,
        id: &str,
        wrap: impl FnOnce(Box<dyn Node>) -> Box<dyn Node>,
    ) -> Result<()> {
        let i = self.ix(id)?.index();
        let vacant: Box<dyn Node> = Box::new(Vacant(self.nodes[i].id().clone()));
        let old = std::mem::replace(&mut self.nodes[i], vacant);
        self.nodes[i] = wrap(old);
        self.recipes[i] = None;
        Ok(())
    }

    /// The edges into `id`: `(input port, source node, source output port)`, by port.
    ///
    /// # Errors
    /// [`DataflowError::UnknownNode`].
    pub fn inputs_of(&self, id: &str) -> Result<Vec<(String, NodeId, String)>> {
        let ix = self.ix(id)?;
        let mut v: Vec<(String, NodeId, String)> = self
            .graph
            .edges_directed(ix, Direction::Incoming)
            .map(|e| {
                let w = e.weight();
                (
                    w.to_port.clone(),
                    self.graph[e.source()].clone(),
                    w.from_port.clone(),
                )
            })
            .collect();
        v.sort();
        Ok(v)
    }

    /// Nodes with no incoming edge.
    pub fn sources(&self) -> Vec<NodeId> {
        self.ends(Direction::Incoming)
    }

    /// Nodes with no outgoing edge.
    pub fn sinks(&self) -> Vec<NodeId> {
        self.ends(Direction::Outgoing)
    }

    /// The node ids in a topological order (ties broken by insertion order, so the
    /// order is the same on every run).
    pub fn topological_order(&self) -> Vec<NodeId> {
        self.order()
            .iter()
            .map(|&i| self.graph[i].clone())
            .collect()
    }

    /// Forgets every node's carried state (not what was learned).
    pub fn reset(&mut self) {
        for n in &mut self.nodes {
            n.reset();
        }
        self.fresh = true;
        self.carry_lost = false;
        if let Some(s) = &mut self.stepper {
            s.clear();
        }
    }

    /// Every node's learned state, by id (empty for nodes that learn nothing).
    ///
    /// # Errors
    /// A node's serialization error, naming the node.
    pub fn save_states(&self) -> Result<BTreeMap<NodeId, Vec<u8>>> {
        self.nodes
            .iter()
            .map(|n| {
                let s = n.save_state().map_err(|e| e.in_node(n.id(), n.kind()))?;
                Ok((n.id().clone(), s))
            })
            .collect()
    }

    /// Restores learned states by node id.
    ///
    /// # Errors
    /// [`DataflowError::UnknownNode`] for a state whose node is not in the DAG, and a
    /// node's own error for a state that does not fit it.
    pub fn load_states(&mut self, states: &BTreeMap<NodeId, Vec<u8>>) -> Result<()> {
        for (id, bytes) in states {
            let ix = self.ix(id.as_str())?;
            let n = &mut self.nodes[ix.index()];
            n.load_state(bytes).map_err(|e| e.in_node(id, n.kind()))?;
        }
        Ok(())
    }

    fn ix(&self, id: &str) -> Result<NodeIndex> {
        self.index
            .get(id)
            .copied()
            .ok_or_else(|| DataflowError::UnknownNode {
                node: id.to_string(),
                known: self
                    .ids()
                    .iter()
                    .map(|n| n.0.clone())
                    .collect::<Vec<_>>()
                    .join(", "),
            })
    }

    fn check_port(&self, ix: NodeIndex, direction: &'static str, port: &str) -> Result<()> {
        let node = &self.nodes[ix.index()];
        let ports = if direction == "input" {
            node.inputs()
        } else {
            node.outputs()
        };
        if ports.iter().any(|p| p == port) {
            Ok(())
        } else {
            Err(DataflowError::UnknownPort {
                node: node.id().clone(),
                direction,
                port: port.to_string(),
                hint: kf_config::did_you_mean(port, ports.iter().map(String::as_str)),
                ports: if ports.is_empty() {
                    "none".into()
                } else {
                    ports.join(", ")
                },
            })
        }
    }

    /// A path `from -> ... -> to` (breadth first), if any.
    fn path(&self, from: NodeIndex, to: NodeIndex) -> Option<Vec<NodeIndex>> {
        let mut parent: HashMap<NodeIndex, NodeIndex> = HashMap::new();
        let mut queue = VecDeque::from([from]);
        let mut seen = vec![false; self.nodes.len()];
        seen[from.index()] = true;
        while let Some(n) = queue.pop_front() {
            if n == to {
                let mut path = vec![n];
                let mut cur = n;
                while let Some(&p) = parent.get(&cur) {
                    path.push(p);
                    cur = p;
                }
                path.reverse();
                return Some(path);
            }
            for s in self.graph.neighbors_directed(n, Direction::Outgoing) {
                if !seen[s.index()] {
                    seen[s.index()] = true;
                    parent.insert(s, n);
                    queue.push_back(s);
                }
            }
        }
        None
    }

    /// The schedule: the topological order, computed once per change of the graph.
    fn order(&self) -> &[NodeIndex] {
        self.schedule.get_or_init(|| self.kahn())
    }

    /// Kahn's algorithm, taking the lowest index among ready nodes first.
    fn kahn(&self) -> Vec<NodeIndex> {
        let n = self.nodes.len();
        let mut indegree: Vec<usize> = (0..n)
            .map(|i| {
                self.graph
                    .neighbors_directed(NodeIndex::new(i), Direction::Incoming)
                    .count()
            })
            .collect();
        let mut ready: BTreeSet<usize> = (0..n).filter(|&i| indegree[i] == 0).collect();
        let mut out = Vec::with_capacity(n);
        while let Some(i) = ready.pop_first() {
            out.push(NodeIndex::new(i));
            for s in self
                .graph
                .neighbors_directed(NodeIndex::new(i), Direction::Outgoing)
            {
                indegree[s.index()] -= 1;
                if indegree[s.index()] == 0 {
                    ready.insert(s.index());
                }
            }
        }
        out
    }

    fn ancestors_of(&self, target: NodeIndex) -> Vec<bool> {
        let mut seen = vec![false; self.nodes.len()];
        let mut stack = vec![target];
        seen[target.index()] = true;
        while let Some(n) = stack.pop() {
            for p in self.graph.neighbors_directed(n, Direction::Incoming) {
                if !seen[p.index()] {
                    seen[p.index()] = true;
                    stack.push(p);
                }
            }
        }
        seen
    }

    fn ends(&self, dir: Direction) -> Vec<NodeId> {
        self.order()
            .iter()
            .filter(|&&i| self.graph.neighbors_directed(i, dir).next().is_none())
            .map(|&i| self.graph[i].clone())
            .collect()
    }

    fn single_sink(&self) -> Result<Option<NodeId>> {
        let sinks = self.sinks();
        match sinks.len() {
            0 => Ok(None),
            1 => Ok(sinks.into_iter().next()),
            _ => Err(DataflowError::invalid(format!(
                "the DAG has several sinks ({}), so there is no single tail to append to; \
                 connect the new node explicitly",
                sinks
                    .iter()
                    .map(|s| s.0.clone())
                    .collect::<Vec<_>>()
                    .join(", ")
            ))),
        }
    }
}

/// A slot's stand-in while its node is being wrapped (never run).
struct Vacant(NodeId);

impl Node for Vacant {
    fn id(&self) -> &NodeId {
        &self.0
    }
    fn kind(&self) -> &str {
        "vacant"
    }
    fn memory(&self) -> crate::node::Memory {
        crate::node::Memory::Row
    }
    fn run(&mut self, _: &RunContext, _: &Ports) -> Result<Ports> {
        Err(DataflowError::invalid("a vacant slot was run"))
    }
}

/// Refuses a node id that is not a plain name. Ids name files under a run's `--out`
/// (`state/ID.bin`, capture folders), so `../x`, `/abs`, `a/b`, a NUL or a control
/// character would write outside it or make a name no file system takes; a `.`
/// would also split the id's key path in the config.
pub(crate) fn check_id(id: &str) -> Result<()> {
    let bad = |reason| {
        Err(DataflowError::BadId {
            id: kf_config::clip_text(id).into_owned(),
            reason,
        })
    };
    if id.is_empty() {
        return bad("it is empty");
    }
    if id.chars().count() > 128 {
        return bad("it is longer than 128 characters");
    }
    if !id
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-'))
    {
        return bad("it has a character other than a letter, a digit, `_` or `-`");
    }
    Ok(())
}
