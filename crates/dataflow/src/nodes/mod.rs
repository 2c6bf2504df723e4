//! The node library, and the registry that builds its nodes from config by `type`.
//!
//! Every node here works on all assets of a feature at once, on the row-major
//! (row, asset) layout. Parameter names follow KaizenFlow's where it has one.

use std::sync::Arc;

use schemars::JsonSchema;
use serde::Serialize;
use serde::de::DeserializeOwned;

use kf_config::{Registry, Section, TypeDoc};
use kf_datapull::{MarketData, ReplaySettings};

use crate::builders::DataflowTypes;
use crate::column::{ColMode, ColumnKernel, ColumnNode, Columns};
use crate::node::{DF_IN, DF_OUT, Node};

pub mod cross_section;
pub mod filters;
pub mod indicators;
pub mod microstructure;
pub mod models;
pub mod resample;
pub mod returns;
pub mod smooth;
pub mod sources;
pub mod transforms;

/// What node and DAG builders may need beyond their own config subtree: the
/// registries (a `graph` builds its nodes by type, a `market_data` node its own
/// `source` table) and the system's market data view.
#[derive(Clone, Copy, Debug)]
pub struct BuildContext<'a> {
    /// Every type a config can name.
    pub types: &'a DataflowTypes,
    /// The system's market data view (`[market_data]`), for `market_data` source nodes
    /// that do not configure their own.
    pub market_data: Option<&'a Arc<dyn MarketData>>,
    /// How a node's own `source` is released when `market_data` follows a clock (a
    /// system run, a replay): on that same clock, with these settings (their delay is
    /// the run's; the bar grid matters only to waits). `None`: no delay, a 1-minute
    /// grid, a 1-second poll.
    pub replay: Option<&'a ReplaySettings>,
}

impl<'a> BuildContext<'a> {
    /// A context over `types` with the view `market_data`, if any.
    pub fn new(types: &'a DataflowTypes, market_data: Option<&'a Arc<dyn MarketData>>) -> Self {
        BuildContext {
            types,
            market_data,
            replay: None,
        }
    }
}

/// The builder of a node from its config table.
pub type NodeBuildFn =
    dyn Fn(&Section<'_>, &BuildContext<'_>) -> kf_config::Result<Box<dyn Node>> + Send + Sync;

/// Node types by name, for a config's `type = "..."`.
pub type NodeTypes = Registry<Box<dyn Node>, NodeBuildFn>;

/// The id of the node built from `section`: the last segment of its path.
pub fn node_id(section: &Section<'_>) -> String {
    let path = section.path();
    path.rsplit('.').next().unwrap_or_default().to_string()
}

/// Reads `cols` and `col_mode` (with this node type's default mode).
///
/// # Errors
/// A config type error, located.
pub fn columns(section: &Section<'_>, default_mode: ColMode) -> kf_config::Result<Columns> {
    Ok(Columns {
        cols: section.get_or("cols", Vec::<String>::new())?,
        col_mode: section.get_or("col_mode", default_mode)?,
    })
}

/// Builds a column node from `section`: its parameters `P` (serde), checked and
/// turned into a kernel by `make`, which reports a bad value with
/// [`Section::invalid`].
///
/// # Errors
/// A config error, located.
pub fn column_node<P, K>(
    section: &Section<'_>,
    default_mode: ColMode,
    make: impl FnOnce(P) -> kf_config::Result<K>,
) -> kf_config::Result<Box<dyn Node>>
where
    P: DeserializeOwned + Serialize,
    K: ColumnKernel + 'static,
{
    let cols = columns(section, default_mode)?;
    let params: P = section.deserialize()?;
    let kernel = make(params)?;
    Ok(Box::new(ColumnNode::new(node_id(section), cols, kernel)))
}

/// The documentation of a column node type whose parameters are `P`: `P`'s fields,
/// then `cols` and `col_mode` (with this type's default mode), one input and one
/// output port.
pub fn column_doc<P: JsonSchema>(summary: &str, default_mode: ColMode) -> TypeDoc {
    let mut doc = TypeDoc::new(summary)
        .params_of::<P>()
        .params_of::<Columns>()
        .ports(&[DF_IN], &[DF_OUT]);
    let mode = match default_mode {
        ColMode::Append => "\"append\"",
        ColMode::ReplaceAll => "\"replace_all\"",
        ColMode::ReplaceSelected => "\"replace_selected\"",
    };
    for p in &mut doc.params {
        if p.name == "col_mode" {
            p.default = Some(mode.to_string());
        }
    }
    doc
}

/// Registers a column node type: `make` checks the parameters `P` and makes the
/// kernel; the documentation comes from `P` ([`column_doc`]).
///
/// # Errors
/// [`kf_config::ConfigError::DuplicateBuilder`] when the name is taken.
pub fn register_column<P, K, M>(
    r: &mut NodeTypes,
    name: &str,
    summary: &str,
    default_mode: ColMode,
    make: M,
) -> kf_config::Result<()>
where
    P: DeserializeOwned + Serialize + JsonSchema,
    K: ColumnKernel + 'static,
    M: Fn(&Section<'_>, P) -> kf_config::Result<K> + Send + Sync + 'static,
{
    let doc = column_doc::<P>(summary, default_mode);
    r.insert(
        name,
        doc,
        Box::new(move |s: &Section<'_>, _: &BuildContext<'_>| {
            column_node(s, default_mode, |p: P| make(s, p))
        }),
    )?;
    Ok(())
}

/// Every node type of the library, by name.
pub fn builtin_nodes() -> NodeTypes {
    let mut r = NodeTypes::new("node");
    // Fixed, distinct names registered into an empty registry cannot collide.
    let _ = sources::register(&mut r);
    let _ = filters::register(&mut r);
    let _ = resample::register(&mut r);
    let _ = returns::register(&mut r);
    let _ = smooth::register(&mut r);
    let _ = transforms::register(&mut r);
    let _ = cross_section::register(&mut r);
    let _ = indicators::register(&mut r);
    let _ = microstructure::register(&mut r);
    let _ = models::register(&mut r);
    r
}
