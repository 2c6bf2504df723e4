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

/// A node of a user's that carries state and does not say how to save it.
struct Counter(NodeId, f64);

impl kf_dataflow::Node for Counter {
    fn id(&self) -> &NodeId {
        &self.0
    }
    fn kind(&self) -> &str {
        "counter"
    }
    fn memory(&self) -> kf_dataflow::Memory {
        kf_dataflow::Memory::Carried
    }
    fn run(
        &mut self,
        _: &RunContext,
        inputs: &kf_dataflow::Ports,
    ) -> kf_dataflow::Result<kf_dataflow::Ports> {
        let f = kf_dataflow::single_input(inputs, "df_in")?;
        self.1 += f.n_rows() as f64;
        Ok(kf_dataflow::single_output(f.clone()))
    }
}

#[test]
fn a_dag_whose_nodes_cannot_save_their_carry_says_which() {
    let mut dag = build(MOCK1);
    dag.add_node(Box::new(Counter("count".into(), 0.0)))
        .unwrap();
    dag.chain("predict", "count").unwrap();
    run(&mut dag, i64::MIN, i64::MAX);
    let e = dag.save_carry().unwrap_err().to_string();
    assert!(
        e.contains("`count` (counter)") && !e.contains("predict"),
        "{e}"
    );
    // Its default load refuses bytes too.
    let mut carry = build(MOCK1).save_carry().unwrap();
    carry.insert("count".into(), vec![1]);
    let mut other = build(MOCK1);
    other
        .add_node(Box::new(Counter("count".into(), 0.0)))
        .unwrap();
    other.chain("predict", "count").unwrap();
    let e = other.load_carry(&carry).unwrap_err().to_string();
    assert!(e.contains("count") && e.contains("cannot continue"), "{e}");
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

/// Every built-in node type that runs on the fixed input and may be cut in time
/// (no lookahead, no whole-history memory, no learning) either continues from its
/// saved carry to the bit, or says it cannot; the ones that cannot are listed here
/// so that a new one is a decision, not an accident.
#[test]
fn every_node_type_that_saves_its_carry_continues_to_the_bit() {
    const CANNOT: &[&str] = &[];
    let types = DataflowTypes::default();
    let md_toml = "[md]\ntype = \"synthetic\"\nassets = 3\nbars = 400\nseed = 5\ngap_prob = 0.05\n";
    let mut continued = Vec::new();
    let mut cannot = Vec::new();
    for name in types.nodes.names() {
        let doc = types.nodes.doc(name).unwrap();
        let toml = format!(
            "{md_toml}[dag]\ntype = \"graph\"\n[dag.nodes.src]\ntype = \"market_data\"\n\
             [dag.nodes.n]\ntype = \"{name}\"\n{}\n",
            doc.example
        );
        let Ok(config) = Config::from_toml_str(&toml, "n.toml") else {
            continue;
        };
        let make = || -> Option<Dag> {
            let md = types.data.view(&config.section("md").ok()?).ok()?;
            types.dag(&config.section("dag").ok()?, Some(&md)).ok()
        };
        let Some(mut probe) = make() else { continue };
        let node = probe.node("n").unwrap();
        if node.learns() || node.lookahead() > 0 || node.memory() == kf_dataflow::Memory::AllHistory
        {
            continue;
        }
        let Ok(batch) = probe.run(&RunContext::new(Phase::Predict, None), &all()) else {
            continue;
        };
        let batch = batch.outputs[&NodeId::from("n")]["df_out"].clone();
        let cut = batch.end_ts().get(batch.n_rows() / 3).copied().unwrap_or(0);
        let mut first = make().unwrap();
        let a = run(&mut first, i64::MIN, cut);
        match first.save_carry() {
            Ok(carry) => {
                let mut second = make().unwrap();
                second.load_carry(&carry).unwrap();
                let b = run(&mut second, cut + 1, i64::MAX);
                let id = NodeId::from("n");
                let joined = Frame::concat(&[a[&id].clone(), b[&id].clone()]).unwrap();
                assert_eq!(bits(&joined), bits(&batch), "node type `{name}`");
                continued.push(name);
            }
            Err(e) => {
                assert!(
                    e.to_string().contains("(`n`") || e.to_string().contains("`n`"),
                    "{e}"
                );
                cannot.push(name);
            }
        }
    }
    assert_eq!(
        cannot, CANNOT,
        "these node types cannot save their carried state"
    );
    assert!(continued.len() >= 15, "{continued:?}");
}
