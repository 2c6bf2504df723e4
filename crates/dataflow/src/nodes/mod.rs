//! The node library, and the registry that builds its nodes from config by `type`.
//!
//! Every node here works on all assets of a feature at once, on the row-major
//! (row, asset) layout. Parameter names follow KaizenFlow's where it has one.

use std::sync::Arc;

use serde::Serialize;
use serde::de::DeserializeOwned;

use kf_config::{Registry, Section};
use kf_datapull::MarketData;

use crate::column::{ColMode, ColumnKernel, ColumnNode, Columns};
use crate::node::Node;

pub mod cross_section;
pub mod filters;
pub mod models;
pub mod resample;
pub mod returns;
pub mod smooth;
pub mod sources;
pub mod transforms;

/// What node builders may need beyond their own config subtree.
#[derive(Clone, Debug, Default)]
pub struct BuildContext {
    /// The system's market data view (`[market_data]`), for `market_data` source nodes
    /// that do not configure their own.
    pub market_data: Option<Arc<dyn MarketData>>,
}

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

/// Every node type of the library, by name, for config `type = "..."`.
///
/// # Errors
/// None in practice (names are unique); the registry API returns a result.
pub fn node_registry(ctx: &BuildContext) -> kf_config::Result<Registry<Box<dyn Node>>> {
    let mut r: Registry<Box<dyn Node>> = Registry::new("node");
    sources::register(&mut r, ctx)?;
    filters::register(&mut r)?;
    resample::register(&mut r)?;
    returns::register(&mut r)?;
    smooth::register(&mut r)?;
    transforms::register(&mut r)?;
    cross_section::register(&mut r)?;
    models::register(&mut r)?;
    Ok(r)
}
