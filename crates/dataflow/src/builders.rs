//! DAG builders by name: the generic `graph` builder (nodes and edges listed in
//! TOML) and code builders such as `mock1` (connectivity in Rust, parameters from
//! config, as KaizenFlow's `DagBuilder`).

use kf_config::{Registry, Section};

use crate::dag::Dag;
use crate::error::DataflowError;
use crate::mock1;
use crate::node::{DF_IN, DF_OUT};
use crate::nodes::{BuildContext, node_registry};

/// Every DAG builder, by name, for a config's `[dag] type = "..."`.
///
/// # Errors
/// None in practice (names are unique); the registry API returns a result.
pub fn dag_registry(ctx: &BuildContext) -> kf_config::Result<Registry<Dag>> {
    let mut r: Registry<Dag> = Registry::new("DAG builder");
    let c = ctx.clone();
    r.register("graph", move |s| build_graph(s, &c))?;
    let c = ctx.clone();
    r.register("mock1", move |s| mock1::build(s, &c))?;
    Ok(r)
}

/// An edge end `node` or `node:port`.
fn end<'a>(text: &'a str, default_port: &'static str) -> (&'a str, &'a str) {
    match text.rsplit_once(':') {
        Some((n, p)) => (n, p),
        None => (text, default_port),
    }
}

/// Builds the DAG that `section` lists: `nodes` (a table of node tables, each built
/// by its `type` from the node library) and `edges` (`[["a", "b"], ["b:df_out",
/// "c:df_in"]]`). Without `edges`, the nodes are chained in the order written.
///
/// # Errors
/// A located config error for a bad node, an unknown node or port in an edge, a
/// duplicate id or a cycle.
pub fn build_graph(s: &Section<'_>, ctx: &BuildContext) -> kf_config::Result<Dag> {
    let registry = node_registry(ctx)?;
    let nodes = s.section("nodes")?;
    let mut dag = Dag::new();
    let ids: Vec<&str> = nodes.keys();
    if ids.is_empty() {
        return Err(s.invalid("nodes", "a graph needs at least one node"));
    }
    for id in &ids {
        let node = registry.build(&nodes.section(id)?)?;
        dag.add_node(node)
            .map_err(|e| nodes.invalid(id, e.to_string()))?;
    }
    let edges: Option<Vec<[String; 2]>> = s.get_opt("edges")?;
    let wrap = |e: DataflowError| s.invalid("edges", e.to_string());
    match edges {
        Some(edges) => {
            for [a, b] in &edges {
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
