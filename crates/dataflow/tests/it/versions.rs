//! Node code versions: a node cache keys outputs on each node type's
//! [`Node::version`](kf_dataflow::Node::version), so a change of a kernel's
//! arithmetic must come with a bump, or caches would serve the old code's outputs.
//!
//! This test runs every built-in node type (its documented example) on a fixed
//! synthetic input and pins a digest of its output to its version in
//! `versions.tsv`. A change of outputs at the same version fails here; the message
//! says what to do (bump the version, then record the new digest). The digests are
//! not correctness claims (other tests hold the values); they detect change.

use std::collections::BTreeMap;

use kf_config::Config;
use kf_dataflow::{DataflowTypes, Phase, RunContext, RunOptions};

const PINNED: &str = include_str!("versions.tsv");

/// `(version, digest)` of each node type's output on the fixed input, or why it
/// cannot run there.
fn observe() -> BTreeMap<String, Result<(u32, String), String>> {
    let types = DataflowTypes::default();
    let market = Config::from_toml_str(
        "[md]\ntype = \"synthetic\"\nassets = 3\nbars = 400\nseed = 7\n",
        "md.toml",
    )
    .unwrap();
    let md = types.data.view(&market.section("md").unwrap()).unwrap();
    let mut out = BTreeMap::new();
    for name in types.nodes.names() {
        let doc = types.nodes.doc(name).unwrap();
        let toml = format!(
            "[dag]\ntype = \"graph\"\n[dag.nodes.src]\ntype = \"market_data\"\n\
             [dag.nodes.n]\ntype = \"{name}\"\n{}\n",
            doc.example
        );
        let result = (|| -> Result<(u32, String), String> {
            let config = Config::from_toml_str(&toml, "n.toml").map_err(|e| e.to_string())?;
            let mut dag = types
                .dag(
                    &config.section("dag").map_err(|e| e.to_string())?,
                    Some(&md),
                )
                .map_err(|e| e.to_string())?;
            let version = dag.node("n").map_err(|e| e.to_string())?.version();
            dag.run(&RunContext::new(Phase::Fit, None), &RunOptions::default())
                .map_err(|e| e.to_string())?;
            dag.reset();
            let r = dag
                .run(
                    &RunContext::new(Phase::Predict, None),
                    &RunOptions::default(),
                )
                .map_err(|e| e.to_string())?;
            let ports = r.outputs.get(&"n".into()).ok_or("no output")?;
            let mut digest = String::new();
            for (port, frame) in ports {
                digest.push_str(port);
                digest.push('=');
                digest.push_str(&kf_dataflow::cache::frame_digest(frame)[..16]);
                digest.push(';');
            }
            Ok((version, digest))
        })();
        out.insert(name.to_string(), result);
    }
    out
}

#[test]
fn every_node_type_that_changes_its_outputs_bumps_its_version() {
    let seen = observe();
    let pinned: BTreeMap<&str, (u32, &str)> = PINNED
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .filter_map(|l| {
            let mut f = l.split('\t');
            Some((f.next()?, (f.next()?.parse().ok()?, f.next()?)))
        })
        .collect();
    let mut table = String::from("# kind\tversion\tdigest of outputs on the fixed input\n");
    let mut problems = Vec::new();
    let mut ran = 0;
    for (name, r) in &seen {
        let Ok((version, digest)) = r else { continue };
        ran += 1;
        table.push_str(&format!("{name}\t{version}\t{digest}\n"));
        match pinned.get(name.as_str()) {
            None => problems.push(format!("`{name}` is not pinned yet")),
            Some((v, d)) if v == version && d != digest => problems.push(format!(
                "`{name}` gives other outputs at the same version {v}: bump its `version()` \
                 (caches would serve the old outputs), then record the new digest"
            )),
            Some((v, _)) if v > version => problems.push(format!(
                "`{name}`'s version went down from {v} to {version}"
            )),
            _ => {}
        }
    }
    assert!(
        problems.is_empty(),
        "{}\n\nthe table for tests/it/versions.tsv:\n{table}",
        problems.join("\n")
    );
    // Most types run on the fixed input (models need their targets configured).
    assert!(ran >= 20, "only {ran} node types ran: {seen:?}");
    // Mock1's kernels are among them.
    for k in [
        "compute_ret_0",
        "rolling",
        "lags",
        "weighted_sum",
        "resample",
    ] {
        assert!(matches!(seen.get(k), Some(Ok(_))), "{k}: {:?}", seen.get(k));
    }
}
