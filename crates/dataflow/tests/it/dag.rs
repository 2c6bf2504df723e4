//! The DAG: construction errors that name nodes and ports, topological and partial
//! runs, parallel runs equal to sequential ones, timings, composition.

use kf_config::Config;
use kf_dataflow::column::{ColMode, ColumnNode, Columns};
use kf_dataflow::nodes::returns::{RetParams, Returns};
use kf_dataflow::nodes::sources::{ArmaParams, FrameSource, arma_frame};
use kf_dataflow::nodes::transforms::{Compress, CompressParams, LagParams, Lags};
use kf_dataflow::{Dag, DataflowError, DataflowTypes, Keep, Phase, RunContext, RunOptions};

fn src() -> Box<FrameSource> {
    Box::new(FrameSource::new(
        "src",
        arma_frame(&ArmaParams {
            assets: 3,
            bars: 200,
            ..ArmaParams::default()
        })
        .unwrap(),
    ))
}

fn compress(id: &str) -> Box<ColumnNode<Compress>> {
    Box::new(ColumnNode::new(
        id,
        Columns {
            cols: vec!["ret".into()],
            col_mode: ColMode::ReplaceAll,
        },
        Compress(CompressParams {
            scale: 0.01,
            suffix: format!(".{id}"),
        }),
    ))
}

fn diamond() -> Dag {
    // src -> a -> c, src -> b; c and b are sinks.
    let mut dag = Dag::new();
    dag.add_node(src()).unwrap();
    dag.add_node(compress("a")).unwrap();
    dag.add_node(compress("b")).unwrap();
    dag.add_node(Box::new(ColumnNode::new(
        "c",
        Columns::default(),
        Lags::new(LagParams::default()),
    )))
    .unwrap();
    dag.chain("src", "a").unwrap();
    dag.chain("src", "b").unwrap();
    dag.chain("a", "c").unwrap();
    dag
}

#[test]
fn graph_errors_name_the_nodes_and_ports() {
    let mut dag = diamond();
    let e = dag.add_node(compress("a")).unwrap_err();
    assert!(
        matches!(e, DataflowError::DuplicateId(ref id) if id.as_str() == "a"),
        "{e}"
    );
    let e = dag.chain("c", "a").unwrap_err();
    assert!(matches!(e, DataflowError::PortTaken { .. }), "{e}");
    let mut cyc = Dag::new();
    for id in ["x", "y", "z"] {
        cyc.add_node(compress(id)).unwrap();
    }
    cyc.chain("x", "y").unwrap();
    cyc.chain("y", "z").unwrap();
    let e = cyc.chain("z", "x").unwrap_err().to_string();
    assert!(e.contains("cycle") && e.contains("x -> y -> z -> x"), "{e}");
    let e = dag
        .connect(("a", "nope"), ("b", "df_in"))
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("output port `nope`") && e.contains("df_out"),
        "{e}"
    );
    let e = dag.chain("a", "ghost").unwrap_err().to_string();
    assert!(e.contains("ghost") && e.contains("src"), "{e}");
    let e = dag
        .connect(("a", "df_out"), ("src", "df_in"))
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("input port `df_in`") && e.contains("none"),
        "{e}"
    );
    // A node whose input has no edge.
    let mut dangling = Dag::new();
    dangling.add_node(compress("lonely")).unwrap();
    let e = dangling
        .run(
            &RunContext::new(Phase::Predict, None),
            &RunOptions::default(),
        )
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("`df_in` of node `lonely` is not connected"),
        "{e}"
    );
}

#[test]
fn runs_in_topological_order_partially_and_in_parallel() {
    let mut dag = diamond();
    assert_eq!(dag.sources(), ["src".into()]);
    assert_eq!(dag.sinks(), ["b".into(), "c".into()]);
    let order: Vec<String> = dag.topological_order().into_iter().map(|n| n.0).collect();
    assert_eq!(order, ["src", "a", "b", "c"]);
    let ctx = RunContext::new(Phase::Predict, None);
    let seq = dag
        .run(
            &ctx,
            &RunOptions {
                keep: Keep::All,
                ..RunOptions::default()
            },
        )
        .unwrap();
    // A run is a call that continues from the carried state: start afresh.
    dag.reset();
    let par = dag
        .run(
            &ctx,
            &RunOptions {
                parallel: true,
                keep: Keep::All,
                ..RunOptions::default()
            },
        )
        .unwrap();
    for id in ["src", "a", "b", "c"] {
        assert!(
            seq.df_out(id).unwrap().bit_eq(par.df_out(id).unwrap()),
            "{id}"
        );
    }
    assert_eq!(seq.timings.len(), 4);
    assert!(seq.timings.iter().all(|t| t.rows == 200));
    assert_eq!(
        seq.timings
            .iter()
            .find(|t| t.node.as_str() == "c")
            .unwrap()
            .cells,
        200 * 3 * 2
    );
    // By default only sinks are kept.
    let sinks = dag.run(&ctx, &RunOptions::default()).unwrap();
    assert_eq!(
        sinks
            .outputs
            .keys()
            .map(|k| k.0.as_str())
            .collect::<Vec<_>>(),
        ["b", "c"]
    );
    // Up to `a`: `b` and `c` do not run.
    dag.reset();
    let part = dag
        .run(
            &ctx,
            &RunOptions {
                up_to: Some("a".into()),
                ..RunOptions::default()
            },
        )
        .unwrap();
    assert_eq!(
        part.timings
            .iter()
            .map(|t| t.node.0.as_str())
            .collect::<Vec<_>>(),
        ["src", "a"]
    );
    assert!(part.df_out("a").unwrap().bit_eq(seq.df_out("a").unwrap()));
}

#[test]
fn append_to_tail_and_compose() {
    let mut dag = Dag::new();
    dag.append_to_tail(src()).unwrap();
    dag.append_to_tail(Box::new(ColumnNode::new(
        "ret",
        Columns::default(),
        Returns::new(RetParams::default()),
    )))
    .unwrap();
    let mut tail = Dag::new();
    tail.add_node(compress("c1")).unwrap();
    tail.add_node(compress("c2")).unwrap();
    tail.chain("c1", "c2").unwrap();
    dag.compose(tail, true).unwrap();
    let order: Vec<String> = dag.topological_order().into_iter().map(|n| n.0).collect();
    assert_eq!(order, ["src", "ret", "c1", "c2"]);
    // Several sinks: no single tail.
    let mut two = diamond();
    let e = two.append_to_tail(compress("d")).unwrap_err().to_string();
    assert!(
        e.contains("several sinks") && e.contains('b') && e.contains('c'),
        "{e}"
    );
}

const GRAPH: &str = r#"
[dag]
type = "graph"
edges = [["prices", "rets"], ["rets:df_out", "lagged:df_in"]]

[dag.nodes.prices]
type = "arma"
assets = 2
bars = 30

[dag.nodes.rets]
type = "compute_ret_0"
mode = "diff"

[dag.nodes.lagged]
type = "lags"
cols = ["ret.ret_0"]
num_lags = 2
"#;

#[test]
fn a_graph_from_toml_runs_like_the_same_graph_built_in_rust() {
    let config = Config::from_toml_str(GRAPH, "graph.toml").unwrap();
    let mut dag = DataflowTypes::default()
        .dag(&config.section("dag").unwrap(), None)
        .unwrap();
    config.check_all_used().unwrap();
    let ctx = RunContext::new(Phase::Predict, None);
    let out = dag.run(&ctx, &RunOptions::default()).unwrap();
    let got = out.df_out("lagged").unwrap();
    assert_eq!(
        got.features(),
        ["ret", "ret.ret_0", "ret.ret_0.lag1", "ret.ret_0.lag2"]
    );
    let x: Vec<f64> = got.feature("ret").unwrap().asset(1).collect();
    let l2: Vec<f64> = got.feature("ret.ret_0.lag2").unwrap().asset(1).collect();
    assert!(l2[..3].iter().all(|v| v.is_nan()));
    assert_eq!(l2[10], x[8] - x[7]);
}

fn graph_error(toml: &str) -> String {
    let config = Config::from_toml_str(toml, "bad.toml").unwrap();
    match DataflowTypes::default().dag(&config.section("dag").unwrap(), None) {
        Ok(_) => config.check_all_used().unwrap_err().to_string(),
        Err(e) => e.to_string(),
    }
}

#[test]
fn bad_graph_configs_are_located() {
    let e = graph_error("[dag]\ntype = \"graph\"\n[dag.nodes.a]\ntype = \"zscore_of_doom\"\n");
    assert!(
        e.contains("bad.toml:4") && e.contains("zscore_of_doom") && e.contains("compute_ret_0"),
        "{e}"
    );
    let e = graph_error(
        "[dag]\ntype = \"graph\"\n[dag.nodes.a]\ntype = \"arma\"\nbars = 3\n[dag.nodes.b]\ntype = \"lags\"\nnum_lagz = 2\n",
    );
    assert!(e.contains("dag.nodes.b.num_lagz"), "{e}");
    let e = graph_error("[dag]\ntype = \"graph\"\n[dag.nodes.a]\ntype = \"ema\"\ntau = -1.0\n");
    assert!(
        e.contains("dag.nodes.a.tau") && e.contains("positive") && e.contains("bad.toml:5"),
        "{e}"
    );
    let e = graph_error(
        "[dag]\ntype = \"graph\"\nedges = [[\"a\", \"b\"], [\"b\", \"a\"]]\n[dag.nodes.a]\ntype = \"clip\"\n[dag.nodes.b]\ntype = \"clip\"\n",
    );
    assert!(
        e.contains("dag.edges") && e.contains("cycle") && e.contains("b -> a"),
        "{e}"
    );
    let e = graph_error(
        "[dag]\ntype = \"graph\"\nedges = [[\"a\", \"ghost\"]]\n[dag.nodes.a]\ntype = \"clip\"\n",
    );
    assert!(e.contains("ghost"), "{e}");
    let e = graph_error("[dag]\ntype = \"graph\"\n[dag.nodes.a]\ntype = \"market_data\"\n");
    assert!(e.contains("no market data"), "{e}");
}
