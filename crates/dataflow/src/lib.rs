//! DataFlow: models as DAGs of nodes that compute on time tiles of frames.
//!
//! This crate owns the [`Node`] contract (ports, parameters from a config subtree,
//! declared [`Memory`], phases, learned state), the [`Dag`] on petgraph, the
//! builders that make a DAG from config (through [`DataflowTypes`], the registries a
//! user's crate extends with its own node types: a generic `graph` of nodes and
//! edges written in TOML, and code builders such as [`mock1`]), the node library
//! ([`nodes`]), the DAG's column flow known before any data is read
//! ([`Dag::features`]), and the runners ([`runner`]): fit/predict, rolling
//! walk-forward, cross-validation with purging and embargo, and saving a fitted DAG.
//!
//! # The key design decision: nodes are column kernels over the whole universe
//! A frame stores each feature as one row-major `rows x assets` buffer. Most nodes
//! are [`column::ColumnKernel`]s that turn selected features into new ones with one
//! pass over those buffers, rows outer and assets inner, carrying one small state per
//! asset (an EMA's sums, a ring of lags). So per-asset semantics (each asset's own
//! history, NaN skipping with `nan_mode = "drop"`) cost no gather or scatter, a
//! node's work is vectorized across assets, and appending outputs to the input
//! shares the input's buffers instead of copying them. The same carried state is
//! what lets a later call continue where the previous one stopped, so a batch run is
//! one call of the same code that a tiled or streaming run makes many times.
//!
//! ```
//! use kf_dataflow::{Dag, Phase, RunContext, RunOptions};
//! use kf_dataflow::column::{ColumnNode, Columns};
//! use kf_dataflow::nodes::returns::{RetMode, RetParams, Returns};
//! use kf_dataflow::nodes::sources::FrameSource;
//! use kf_frame::Frame;
//!
//! let frame = Frame::new(vec![1, 2, 3], vec![1, 2, 3], vec!["A".into()],
//!     vec![("close".into(), vec![100.0, 110.0, 99.0])])?;
//! let mut dag = Dag::new();
//! dag.add_node(Box::new(FrameSource::new("read", frame)))?;
//! let params = RetParams { mode: RetMode::PctChange, ..RetParams::default() };
//! dag.add_node(Box::new(ColumnNode::new("ret", Columns::default(), Returns::new(params))))?;
//! dag.chain("read", "ret")?;
//! let out = dag.run(&RunContext::new(Phase::Predict, None), &RunOptions::default())?;
//! let r = out.df_out("ret")?.feature("close.ret_0")?.values().to_vec();
//! assert!(r[0].is_nan());
//! assert_eq!(r[1], 110.0 / 100.0 - 1.0);
//! assert_eq!(r[2], 99.0 / 110.0 - 1.0);
//! # Ok::<(), kf_dataflow::DataflowError>(())
//! ```

#![deny(missing_docs)]

mod builders;
pub mod cache;
pub mod check;
pub mod column;
mod dag;
mod error;
pub mod limits;
pub mod metrics;
pub mod mock1;
mod node;
pub mod nodes;
pub mod par;
pub mod peeking;
pub mod replay;
pub mod runner;
mod schema;
mod state;
pub mod tiling;

pub use builders::{DagBuildFn, DagTypes, DataflowTypes, build_graph};
pub use dag::{Dag, Growth, Incremental, Keep, NodeTiming, RunOptions, RunResult};
pub use error::{DataflowError, Result};
pub use node::{
    DF_IN, DF_OUT, FeatureMap, Memory, MissingFeature, Node, NodeId, Phase, Ports, RunContext,
    Target, Targets, decode_carry, encode_carry, no_carry, no_state, require, single_input,
    single_output,
};
pub use nodes::{BuildContext, NodeBuildFn, NodeTypes, builtin_nodes, column_doc, register_column};
pub use schema::{ColumnError, ColumnProblem, Schema};
