//! [`DataflowTypes`]: every type a DAG config can name (nodes, DAG builders, market
//! data), and the DAG builders: the generic `graph` builder (nodes and edges listed
//! in TOML) and code builders such as `mock1` (connectivity in Rust, parameters from
//! config, as KaizenFlow's `DagBuilder`).

use std::sync::Arc;

use kf_config::{ParamDoc, Registry, Section, TypeDoc};
use kf_datapull::{DataTypes, MarketData, ReplaySettings};

use crate::dag::Dag;
use crate::error::DataflowError;
use crate::mock1;
use crate::node::{DF_IN, DF_OUT, Node};
use crate::nodes::{BuildContext, NodeTypes, builtin_nodes};
use crate::schema::ColumnError;

/// The builder of a DAG from its `[dag]` table.
pub type DagBuildFn =
    dyn Fn(&Section<'_>, &BuildContext<'_>) -> kf_config::Result<Dag> + Send + Sync;

/// DAG builders by name, for `[dag] type = "..."`.
pub type DagTypes = Registry<Dag, DagBuildFn>;

/// Every type a DAG config names by `type`: node types, DAG builders, and the
/// market data sources and views.
///
/// [`DataflowTypes::default`] holds the built-ins. A user's crate registers its own
/// types on it (a node with [`DataflowTypes::register_node`], a source on
/// `data`) and passes it to every build, so its configs can name them.
#[derive(Debug)]
pub struct DataflowTypes {
    /// Market data sources and views.
    pub data: DataTypes,
    /// Node types.
    pub nodes: NodeTypes,
    /// DAG builders.
    pub dags: DagTypes,
}

impl Default for DataflowTypes {
    fn default() -> Self {
        let mut dags = DagTypes::new("DAG builder");
        let _ = dags.insert(
            "graph",
            TypeDoc::new("nodes and edges written in the config")
                .param(
                    ParamDoc::new(
                        "nodes",
                        "table of node tables",
                        None,
                        "One table per node, keyed by node id, each with its own `type`.",
                    )
                    .required(),
                )
                .param(ParamDoc::new(
                    "edges",
                    "array of [from, to]",
                    None,
                    "Edges `[\"a\", \"b:df_in\"]` (port defaults: df_out, df_in); without \
                     them the nodes are chained in the order written.",
                ))
                .example("nodes.read = { type = \"market_data\" }"),
            Box::new(build_graph),
        );
        let _ = dags.insert(
            "mock1",
            TypeDoc::new(
                "KaizenFlow's Mock1 model: session filter, 5-minute bars, returns, \
                 volatility-adjusted and compressed returns, four lags, a weighted sum",
            )
            .params_of::<mock1::Mock1Params>()
            .param(ParamDoc::new(
                "source",
                "table",
                None,
                "The market data to read (default: the config's [market_data]).",
            )),
            Box::new(mock1::build),
        );
        DataflowTypes {
            data: DataTypes::default(),
            nodes: builtin_nodes(),
            dags,
        }
    }
}

impl DataflowTypes {
    /// Registers a node type built by `build`.
    ///
    /// # Errors
    /// [`kf_config::ConfigError::DuplicateBuilder`] when the name is taken.
    pub fn register_node<F>(&mut self, name: &str, doc: TypeDoc, build: F) -> kf_config::Result<()>
    where
        F: Fn(&Section<'_>, &BuildContext<'_>) -> kf_config::Result<Box<dyn Node>>
            + Send
            + Sync
            + 'static,
    {
        self.nodes.insert(name, doc, Box::new(build))?;
        Ok(())
    }

    /// Registers a DAG builder.
    ///
    /// # Errors
    /// [`kf_config::ConfigError::DuplicateBuilder`] when the name is taken.
    pub fn register_dag<F>(&mut self, name: &str, doc: TypeDoc, build: F) -> kf_config::Result<()>
    where
        F: Fn(&Section<'_>, &BuildContext<'_>) -> kf_config::Result<Dag> + Send + Sync + 'static,
    {
        self.dags.insert(name, doc, Box::new(build))?;
        Ok(())
    }

    /// Builds the node `s` describes.
    ///
    /// # Errors
    /// A located config error.
    pub fn node(
        &self,
        s: &Section<'_>,
        market_data: Option<&Arc<dyn MarketData>>,
    ) -> kf_config::Result<Box<dyn Node>> {
        let ctx = BuildContext::new(self, market_data);
        (self.nodes.lookup(s)?)(s, &ctx)
    }

    /// Builds the DAG `s` (a `[dag]` table) describes, reading `market_data` where its
    /// sources do not name their own, and checks its columns (every feature a node
    /// names must reach it).
    ///
    /// # Errors
    /// A located config error: a bad node, edge or parameter, or a misspelt feature
    /// (with the features there are and the closest one).
    pub fn dag(
        &self,
        s: &Section<'_>,
        market_data: Option<&Arc<dyn MarketData>>,
    ) -> kf_config::Result<Dag> {
        self.dag_with(s, market_data, None)
    }

    /// As [`DataflowTypes::dag`], with the settings that put the nodes' own sources
    /// on `market_data`'s clock (see [`BuildContext::replay`]).
    ///
    /// # Errors
    /// As [`DataflowTypes::dag`].
    pub fn dag_with(
        &self,
        s: &Section<'_>,
        market_data: Option<&Arc<dyn MarketData>>,
        replay: Option<&ReplaySettings>,
    ) -> kf_config::Result<Dag> {
        let mut ctx = BuildContext::new(self, market_data);
        ctx.replay = replay;
        let dag = (self.dags.lookup(s)?)(s, &ctx)?;
        if let Err(e) = dag.features() {
            return Err(locate_column_error(s, &e));
        }
        Ok(dag)
    }
}

/// A column error located at the key of the node's table that names the feature
/// (for a `graph`), or at the `[dag]` table (for a code builder).
fn locate_column_error(s: &Section<'_>, e: &ColumnError) -> kf_config::ConfigError {
    let node_key = format!("nodes.{}", e.node);
    match s.section(&node_key) {
        Ok(node) if s.contains(&node_key) => node.invalid(&e.key, e.to_string()),
        _ => s.invalid("type", e.to_string()),
    }
}

/// An edge end `node` or `node:port`.
fn end<'a>(text: &'a str, default_port: &'static str) -> (&'a str, &'a str) {
    match text.rsplit_once(':') {
        Some((n, p)) => (n, p),
        None => (text, default_port),
    }
}

/// Builds the DAG that `section` lists: `nodes` (a table of node tables, each built
/// by its `type` from the registered node types) and `edges` (`[["a", "b"],
/// ["b:df_out", "c:df_in"]]`). Without `edges`, the nodes are chained in the order
/// written.
///
/// # Errors
/// A located config error for a bad node, an unknown node or port in an edge, a
/// duplicate id or a cycle.
pub fn build_graph(s: &Section<'_>, ctx: &BuildContext<'_>) -> kf_config::Result<Dag> {
    let nodes = s.section("nodes")?;
    let mut dag = Dag::new();
    let ids: Vec<&str> = nodes.keys();
    if ids.is_empty() {
        return Err(s.invalid("nodes", "a graph needs at least one node"));
    }
    for id in &ids {
        crate::dag::check_id(id).map_err(|e| nodes.invalid(id, e.to_string()))?;
        let section = nodes.section(id)?;
        let node = (ctx.types.nodes.lookup(&section)?)(&section, ctx)?;
        dag.add_node(node)
            .map_err(|e| nodes.invalid(id, e.to_string()))?;
        dag.set_recipe(id, section.canonical())
            .map_err(|e| nodes.invalid(id, e.to_string()))?;
    }
    let edges: Option<Vec<Vec<String>>> = s.get_opt("edges")?;
    let wrap = |e: DataflowError| s.invalid("edges", e.to_string());
    match edges {
        Some(edges) => {
            for (i, edge) in edges.iter().enumerate() {
                let [a, b] = edge.as_slice() else {
                    return Err(s.invalid(
                        "edges",
                        format!(
                            "edge {} has {} elements; an edge is [\"from\", \"to\"] \
                             (e.g. [\"prices\", \"zscore\"] or [\"a:df_out\", \"b:df_in\"])",
                            i + 1,
                            edge.len()
                        ),
                    ));
                };
                dag.connect(end(a, DF_OUT), end(b, DF_IN)).map_err(wrap)?;
            }
        }
        None => {
            for w in ids.windows(2) {
                dag.chain(w[0], w[1]).map_err(wrap)?;
            }
        }
    }
    Ok(dag)
}
