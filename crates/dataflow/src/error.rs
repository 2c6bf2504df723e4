//! The error type of the `dataflow` crate.

use std::path::PathBuf;

use crate::NodeId;

/// Everything that can go wrong building or running a DAG.
///
/// Graph errors name the nodes and ports involved; a node's own error is wrapped in
/// [`DataflowError::Node`] with the node's id and type, so a message printed to a user
/// says which node of which DAG failed and why.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DataflowError {
    /// Two nodes have the same id.
    #[error("duplicate node id `{0}`; give every node a unique id")]
    DuplicateId(NodeId),
    /// A node id that is not a plain name (it becomes a file name in run outputs).
    #[error(
        "node id `{id}` is not a plain name: {reason}; use letters, digits, `_` and `-`, \
         at most 128 characters"
    )]
    BadId {
        /// The id, as a message may show it.
        id: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A node id that is not in the DAG.
    #[error("no node `{node}` in the DAG; its nodes: {known}")]
    UnknownNode {
        /// The id asked for.
        node: String,
        /// The ids the DAG has.
        known: String,
    },
    /// A port name that the node does not have.
    #[error("node `{node}` has no {direction} port `{port}`; its {direction} ports: {ports}{hint}")]
    UnknownPort {
        /// The node.
        node: NodeId,
        /// `"input"` or `"output"`.
        direction: &'static str,
        /// The port asked for.
        port: String,
        /// The ports it has.
        ports: String,
        /// ` (did you mean `df_in`?)` when one of them is close, else empty.
        hint: String,
    },
    /// An input port that already has an edge into it.
    #[error(
        "input port `{port}` of node `{node}` is already fed by `{from}`; an input takes one edge"
    )]
    PortTaken {
        /// The node.
        node: NodeId,
        /// Its input port.
        port: String,
        /// The node already feeding it.
        from: NodeId,
    },
    /// An edge that would close a cycle.
    #[error("the edge `{from}` -> `{to}` would make a cycle: {cycle}; a DAG has none")]
    Cycle {
        /// Where the edge starts.
        from: NodeId,
        /// Where it ends.
        to: NodeId,
        /// The cycle, as `a -> b -> ... -> a`.
        cycle: String,
    },
    /// An input port with no edge into it when the DAG runs.
    #[error("input port `{port}` of node `{node}` is not connected; connect it or remove the node")]
    Dangling {
        /// The node.
        node: NodeId,
        /// The unconnected port.
        port: String,
    },
    /// A node failed; `source` says why.
    #[error("node `{node}` ({kind}): {source}")]
    Node {
        /// The failing node.
        node: NodeId,
        /// Its type name.
        kind: String,
        /// Its error.
        #[source]
        source: Box<DataflowError>,
    },
    /// A node that a runner cannot cut into tiles the way it was asked.
    #[error("node `{node}` ({kind}) cannot run {how}: {why}")]
    NotTilable {
        /// The node.
        node: NodeId,
        /// Its type name.
        kind: String,
        /// The cut asked for (`"on time tiles"`, `"on asset tiles"`, ...).
        how: &'static str,
        /// Why not, and what to do instead.
        why: String,
    },
    /// A value or argument a node cannot work with (said in full in the message).
    #[error("{0}")]
    Invalid(String),
    /// A model asked to predict before it was fitted.
    #[error("not fitted: run `fit` before `predict`, or load a fitted state")]
    NotFitted,
    /// A saved state that does not fit the node.
    #[error("state: {0}")]
    State(String),
    /// A frame operation failed (missing feature, shape, index).
    #[error(transparent)]
    Frame(#[from] kf_frame::FrameError),
    /// A configuration error, located at file, line and key path.
    #[error(transparent)]
    Config(#[from] kf_config::ConfigError),
    /// A market data error.
    #[error(transparent)]
    Data(#[from] kf_datapull::DataError),
    /// A file could not be read or written.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file or folder.
        path: PathBuf,
        /// The system's error.
        #[source]
        source: std::io::Error,
    },
}

impl DataflowError {
    /// Wraps this error with the id and type of the node it came from (once: an error
    /// that already names a node keeps its innermost node).
    pub fn in_node(self, node: &NodeId, kind: &str) -> DataflowError {
        match self {
            e @ DataflowError::Node { .. } => e,
            e => DataflowError::Node {
                node: node.clone(),
                kind: kind.to_string(),
                source: Box::new(e),
            },
        }
    }

    /// Shorthand for [`DataflowError::Invalid`].
    pub fn invalid(message: impl Into<String>) -> DataflowError {
        DataflowError::Invalid(message.into())
    }
}

/// The result type of this crate.
pub type Result<T, E = DataflowError> = std::result::Result<T, E>;
