//! Stepping a [`Dag`]: the streaming fast path. Each node reads its input's rows from
//! the buffer its producer filled and refills its own, so a step in steady state
//! allocates nothing (no frames, no port maps, no schedule).

use petgraph::Direction;
use petgraph::graph::NodeIndex;

use kf_frame::RowBuf;

use super::Dag;
use crate::error::{DataflowError, Result};
use crate::node::{DF_IN, DF_OUT, RunContext};

/// What a step executes, computed once per graph: the nodes in topological order,
/// each with the node whose output feeds it, and every node's output buffer.
#[derive(Debug, Default)]
pub(super) struct Stepper {
    /// Node indices in topological order.
    order: Vec<usize>,
    /// Per node index, the index of the node feeding its `df_in` (`None`: a source).
    input: Vec<Option<usize>>,
    /// Per node index, its output's rows of the last step.
    bufs: Vec<RowBuf>,
}

impl Stepper {
    /// Drops every buffered row (keeping the buffers).
    pub(super) fn clear(&mut self) {
        for b in &mut self.bufs {
            b.clear();
        }
    }
}

impl Dag {
    /// Whether every node has the streaming fast path ([`crate::Node::steps`]) and
    /// the graph's edges are single `df_out -> df_in` links, so [`Dag::step`] works.
    pub fn can_step(&self) -> bool {
        self.nodes.iter().all(|n| n.steps())
            && self.graph.edge_references().all(|e| {
                let w = e.weight();
                w.from_port == DF_OUT && w.to_port == DF_IN
            })
            && self.nodes.iter().enumerate().all(|(i, n)| {
                let fed = self
                    .graph
                    .edges_directed(NodeIndex::new(i), Direction::Incoming)
                    .count();
                fed == n.inputs().len() && fed <= 1
            })
    }

    /// One call of every node over `ctx`, in the sense of [`Dag::run`] (it carries
    /// the same state forward, and gives the same rows to the bit), through the
    /// nodes' fast path: each node's output rows land in a buffer that is reused from
    /// step to step, so a step in steady state allocates nothing. Read a node's rows
    /// with [`Dag::stepped`].
    ///
    /// # Errors
    /// [`DataflowError::Invalid`] when the DAG cannot step ([`Dag::can_step`] is
    /// false: use [`Dag::run`]); the first failing node's error wrapped in
    /// [`DataflowError::Node`].
    pub fn step(&mut self, ctx: &RunContext) -> Result<()> {
        self.check_carry()?;
        self.fresh = false;
        if self.stepper.is_none() {
            if !self.can_step() {
                let slow: Vec<String> = self
                    .nodes
                    .iter()
                    .filter(|n| !n.steps())
                    .map(|n| format!("`{}` ({})", n.id(), n.kind()))
                    .collect();
                return Err(DataflowError::invalid(format!(
                    "this DAG cannot step: {}; run it with `Dag::run`",
                    if slow.is_empty() {
                        "a node has more than one input".to_string()
                    } else {
                        format!("no streaming step in {}", slow.join(", "))
                    }
                )));
            }
            let order: Vec<usize> = self.order().iter().map(|i| i.index()).collect();
            let input = (0..self.nodes.len())
                .map(|i| {
                    self.graph
                        .neighbors_directed(NodeIndex::new(i), Direction::Incoming)
                        .next()
                        .map(|p| p.index())
                })
                .collect();
            let bufs = (0..self.nodes.len()).map(|_| RowBuf::default()).collect();
            self.stepper = Some(Stepper { order, input, bufs });
        }
        let Some(st) = self.stepper.as_mut() else {
            return Err(DataflowError::invalid("the DAG has no step plan"));
        };
        for &i in &st.order {
            let node = &mut self.nodes[i];
            // A producer comes before its consumer in the order, so `p != i`.
            let (input, out) = match st.input[i] {
                None => (None, &mut st.bufs[i]),
                Some(p) if p < i => {
                    let (lo, hi) = st.bufs.split_at_mut(i);
                    (Some(&lo[p]), &mut hi[0])
                }
                Some(p) => {
                    let (lo, hi) = st.bufs.split_at_mut(p);
                    (Some(&hi[0]), &mut lo[i])
                }
            };
            node.step(ctx, input, out)
                .map_err(|e| e.in_node(node.id(), node.kind()))?;
        }
        Ok(())
    }

    /// The rows `node` gave in the last [`Dag::step`].
    ///
    /// # Errors
    /// [`DataflowError::UnknownNode`] for an unknown id; [`DataflowError::Invalid`]
    /// before the first step.
    pub fn stepped(&self, node: &str) -> Result<&RowBuf> {
        let ix = self.ix(node)?;
        self.stepper
            .as_ref()
            .and_then(|s| s.bufs.get(ix.index()))
            .ok_or_else(|| DataflowError::invalid("no step has run yet: call `Dag::step` first"))
    }
}
