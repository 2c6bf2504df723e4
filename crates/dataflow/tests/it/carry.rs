//! Carried state saved by one DAG and loaded into a fresh one continues the run to
//! the bit: a run cut into tiles, each in a "new process", equals the batch run.

use std::collections::BTreeMap;

use kf_config::Config;
use kf_dataflow::{Dag, DataflowTypes, Keep, NodeId, Phase, RunContext, RunOptions};
use kf_frame::Frame;

const MOCK1: &str = r#"
[md]
type = "synthetic"
assets = 7
bars = 1950
start = "2024-01-02 09:31"
tz = "America/New_York"
seed = 11
calendar = "us_equity"
gap_prob = 0.02

[dag]
type = "mock1"
max_gap = "1h"
"#;

fn build(toml: &str) -> Dag {
    let config = Config::from_toml_str(toml, "carry.toml").unwrap();
    let types = DataflowTypes::default();
    let md = types.data.view(&config.section("md").unwrap()).unwrap();
    types
        .dag(&config.section("dag").unwrap(), Some(&md))
        .unwrap_or_else(|e| panic!("{e}"))
}

fn all() -> RunOptions {
    RunOptions {
        keep: Keep::All,
        ..RunOptions::default()
    }
}

fn run(dag: &mut Dag, lo: i64, hi: i64) -> BTreeMap<NodeId, Frame> {
    dag.run(&RunContext::new(Phase::Predict, Some((lo, hi))), &all())
        .unwrap()
        .outputs
        .into_iter()
        .map(|(id, mut p)| (id, p.remove("df_out").unwrap()))
        .collect()
}

fn bits(f: &Frame) -> String {
    kf_dataflow::cache::frame_digest(f)
}

#[test]
fn a_run_continued_in_fresh_dags_from_saved_carry_equals_the_batch_run() {
    let batch = run(&mut build(MOCK1), i64::MIN, i64::MAX);
    let ends = batch[&NodeId::from("read_data")].end_ts().to_vec();
    // Cuts inside a 5-minute bin (the resample's open bin is carried), on a bin's
    // end, and at the close (the night gap).
    for cuts in [vec![ends[102]], vec![ends[389], ends[777], ends[1500]]] {
        let mut pieces: BTreeMap<NodeId, Vec<Frame>> = BTreeMap::new();
        let mut carry = None;
        let mut lo = i64::MIN;
        for &hi in cuts.iter().chain([&i64::MAX]) {
            // Every tile in a DAG of its own, as a restarted process would be.
            let mut dag = build(MOCK1);
            if let Some(c) = &carry {
                dag.load_carry(c).unwrap();
            }
            for (id, f) in run(&mut dag, lo, hi) {
                pieces.entry(id).or_default().push(f);
            }
            // Through bytes, as a checkpoint file would hold them.
            carry = Some(dag.save_carry().unwrap());
            lo = hi.saturating_add(1);
        }
        for (id, frames) in pieces {
            let joined = Frame::concat(&frames).unwrap();
            assert_eq!(bits(&joined), bits(&batch[&id]), "node {id}, cuts {cuts:?}");
        }
    }
}

#[test]
fn a_dag_whose_nodes_cannot_save_their_carry_says_which() {
    let toml = "[md]\ntype = \"synthetic\"\n[dag]\ntype = \"graph\"\n\
                [dag.nodes.read]\ntype = \"market_data\"\n\
                [dag.nodes.smooth]\ntype = \"ema\"\ncols = [\"close\"]\ntau = 3.0\n";
    let mut dag = build(toml);
    run(&mut dag, i64::MIN, i64::MAX);
    let e = dag.save_carry().unwrap_err().to_string();
    assert!(e.contains("`smooth` (ema)") && !e.contains("`read`"), "{e}");
}

#[test]
fn carry_that_does_not_fit_is_refused_naming_the_node() {
    let mut dag = build(MOCK1);
    run(&mut dag, i64::MIN, i64::MAX);
    let good = dag.save_carry().unwrap();
    let mut bad = good.clone();
    bad.insert("compute_vol".into(), vec![0xff; 3]);
    let e = build(MOCK1).load_carry(&bad).unwrap_err().to_string();
    assert!(
        e.contains("compute_vol") && e.contains("does not decode"),
        "{e}"
    );
    let mut missing = good.clone();
    missing.remove(&NodeId::from("add_lags"));
    let e = build(MOCK1).load_carry(&missing).unwrap_err().to_string();
    assert!(e.contains("nothing for node `add_lags`"), "{e}");
    let mut extra = good;
    extra.insert("other".into(), Vec::new());
    let e = build(MOCK1).load_carry(&extra).unwrap_err().to_string();
    assert!(e.contains("node `other`"), "{e}");
}
