//! A DAG's column flow, known before any data is read: each node's declared
//! [`Node::output_features`] fed with its producers' declared outputs, in
//! topological order.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use crate::dag::Dag;
use crate::node::{FeatureMap, MissingFeature, NodeId, Target, Targets};

/// The features on each node's output ports; `None` for a node whose outputs are
/// not known before running (it, or a node upstream, does not declare them).
pub type Schema = BTreeMap<NodeId, Option<FeatureMap>>;

/// What is wrong with a feature name.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ColumnProblem {
    /// A node names a feature that does not reach it.
    Missing,
    /// A node would output two features of one name.
    Duplicate,
}

/// A feature that a node names and that does not reach it, or that it would output
/// twice.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ColumnError {
    /// What is wrong.
    pub problem: ColumnProblem,
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
        if self.problem == ColumnProblem::Duplicate {
            return write!(
                f,
                "node `{}` ({}) would output feature `{}` twice on port `{}`: give its \
                 outputs another name (`suffix`, `out_col`) or replace its inputs \
                 (`col_mode`)",
                self.node, self.kind, self.feature, self.port
            );
        }
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
                        problem: ColumnProblem::Missing,
                        node: id.clone(),
                        kind: node.kind().to_string(),
                        available: m
                            .available
                            .unwrap_or_else(|| inputs.get(&m.port).cloned().unwrap_or_default()),
                        key: m.key,
                        feature: m.feature,
                        port: m.port,
                    })?
            } else {
                None
            };
            if let Some(ports) = &out {
                for (port, features) in ports {
                    let mut seen = std::collections::BTreeSet::new();
                    if let Some(twice) = features.iter().find(|f| !seen.insert(f.as_str())) {
                        return Err(Box::new(ColumnError {
                            problem: ColumnProblem::Duplicate,
                            node: id.clone(),
                            kind: node.kind().to_string(),
                            key: "type".into(),
                            feature: twice.clone(),
                            port: port.clone(),
                            available: features.clone(),
                        }));
                    }
                }
            }
            schema.insert(id, out);
        }
        Ok(schema)
    }

    /// The DAG's forward targets: the features that a node with a non-zero
    /// [`Node::lookahead`](crate::Node::lookahead) adds (those on its outputs that
    /// none of its inputs has), by name, with the node and its horizon. Empty when the
    /// column flow is not known before running.
    pub fn targets(&self) -> Targets {
        let Ok(schema) = self.features() else {
            return Targets::new();
        };
        let mut targets = Targets::new();
        for id in self.topological_order() {
            let Ok(node) = self.node(id.as_str()) else {
                continue;
            };
            let horizon = node.lookahead();
            let Some(Some(outputs)) = schema.get(&id) else {
                continue;
            };
            if horizon == 0 {
                continue;
            }
            let inputs = self.input_features(&schema, &id);
            for f in outputs.values().flatten() {
                if !inputs.contains(f) {
                    targets.entry(f.clone()).or_insert_with(|| Target {
                        node: id.clone(),
                        horizon,
                    });
                }
            }
        }
        targets
    }

    /// Every feature that reaches node `id` on any input port, by `schema`.
    pub fn input_features(&self, schema: &Schema, id: &NodeId) -> BTreeSet<String> {
        self.inputs_of(id.as_str())
            .unwrap_or_default()
            .into_iter()
            .filter_map(|(_, from, port)| {
                schema
                    .get(&from)
                    .and_then(|o| o.as_ref())
                    .and_then(|m| m.get(&port))
                    .cloned()
            })
            .flatten()
            .collect()
    }
}
