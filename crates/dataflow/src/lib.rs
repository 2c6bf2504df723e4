//! DataFlow: models as DAGs of nodes that compute on time tiles of frames.
//!
//! This crate owns the `Node` contract (ports, parameters from a config subtree,
//! declared memory, `fit`/`predict` phases, state save/load), the `Dag` on petgraph,
//! builders from config, the node library, and the runners (fit/predict, rolling,
//! cross-validation, tiled, streaming) with knowledge-time checks and future-peeking
//! detection. It is filled by the dataflow and tiling issues.

#![deny(missing_docs)]

/// The unique id of a node in a DAG (KaizenFlow's `nid`).
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct NodeId(pub String);

impl std::fmt::Display for NodeId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}
