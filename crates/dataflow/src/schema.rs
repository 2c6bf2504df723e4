//! A DAG's column flow, known before any data is read: each node's declared
//! [`Node::output_features`] fed with its producers' declared outputs, in
//! topological order.

use std::collections::BTreeMap;
use std::fmt;

use crate::dag::Dag;
use crate::node::{FeatureMap, MissingFeature, NodeId};

/// The features on each node's output ports; `None` for a node whose outputs are
/// not known before running (it, or a node upstream, does not declare them).
pub type Schema = BTreeMap<NodeId, Option<FeatureMap>>;

/// A feature that a node names and that does not reach it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ColumnError {
    /// The node.
    pub node: NodeId,
    /// Its type.
    pub kind: String,
    /// Its config key that names the feature (relative to the node's table).
    pub key: String,
    /// The name given.
    pub feature: String,
    /// The input port.
    pub port: String,
    /// The features that do reach that port.
    pub available: Vec<String>,
}

impl ColumnError {
    /// The available feature closest to the one given, when one is close.
    pub fn suggestion(&self) -> Option<&str> {
        kf_config::closest(&self.feature, self.available.iter().map(String::as_str))
    }
}

impl fmt::Display for ColumnError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "node `{}` ({}): {} names feature `{}`, which its input `{}` does not have; \
             the features there are: {}",
            self.node,
            self.kind,
            self.key,
            self.feature,
            self.port,
            if self.available.is_empty() {
                "none".to_string()
            } else {
                self.available.join(", ")
            }
        )?;
        if let Some(s) = self.suggestion() {
            write!(f, " (did you mean `{s}`?)")?;
        }
        Ok(())
    }
}

impl std::error::Error for ColumnError {}

impl Dag {
    /// The features on every node's output ports, from the nodes' declarations.
    ///
    /// # Errors
    /// [`ColumnError`] for the first node (in topological order) that names a
    /// feature its input lacks.
    pub fn features(&self) -> Result<Schema, Box<ColumnError>> {
        let mut schema = Schema::new();
        for id in self.topological_order() {
            let Ok(node) = self.node(id.as_str()) else {
                continue;
            };
            let mut inputs = FeatureMap::new();
            let mut known = true;
            for (port, from, from_port) in self.inputs_of(id.as_str()).unwrap_or_default() {
                match schema
                    .get(&from)
                    .and_then(|o| o.as_ref())
                    .and_then(|m| m.get(&from_port))
                {
                    Some(features) => {
                        inputs.insert(port, features.clone());
                    }
                    None => known = false,
                }
            }
            let out = if known {
                node.output_features(&inputs)
                    .map_err(|m: MissingFeature| ColumnError {
                        node: id.clone(),
                        kind: node.kind().to_string(),
                        available: inputs.get(&m.port).cloned().unwrap_or_default(),
                        key: m.key,
                        feature: m.feature,
                        port: m.port,
                    })?
            } else {
                None
            };
            schema.insert(id, out);
        }
        Ok(schema)
    }
}
