//! The registries' declarations held to the code: every node type's documented
//! parameters are exactly the keys its builder asks the config for, and every
//! node's declared output features are exactly the features it outputs.

use std::collections::BTreeSet;
use std::sync::Arc;

use kf_config::Config;
use kf_dataflow::{DF_OUT, DataflowTypes, Keep, Phase, RunContext, RunOptions};
use kf_datapull::MarketData;

fn config(name: &str) -> Config {
    let path = format!("{}/../../configs/{name}", env!("CARGO_MANIFEST_DIR"));
    Config::from_file(&path).unwrap()
}

/// The parameter names in the text `kaizenflow nodes TYPE` prints: the lines
/// `  name: type ...` under `parameters:`.
fn printed(text: &str) -> BTreeSet<String> {
    text.lines()
        .skip_while(|l| *l != "parameters:")
        .take_while(|l| !l.starts_with("example:"))
        .filter_map(|l| l.strip_prefix("  "))
        .filter(|l| !l.starts_with(' '))
        .filter_map(|l| l.split_once(": ").map(|(name, _)| name.to_string()))
        .collect()
}

/// The parameter names a type documents.
fn documented(doc: &kf_config::TypeDoc) -> BTreeSet<String> {
    doc.param_names().into_iter().map(String::from).collect()
}

/// The keys a type's builder asked for under `path`, without `type`.
fn asked(config: &Config, path: &str) -> BTreeSet<String> {
    config
        .asked_keys(path)
        .into_iter()
        .filter(|k| k != "type")
        .collect()
}

#[test]
fn every_node_type_documents_exactly_the_keys_it_reads() {
    let types = DataflowTypes::default();
    let market = Config::from_toml_str("[md]\ntype = \"synthetic\"\n", "md.toml").unwrap();
    let md: Arc<dyn MarketData> = types.data.view(&market.section("md").unwrap()).unwrap();
    // `frame` reads a Parquet file: give it one.
    let dir = tempfile::tempdir().unwrap();
    let frame_file = dir.path().join("frame.parquet");
    kf_frame::Frame::new(
        vec![1],
        vec![1],
        vec!["A".into()],
        vec![("x".into(), vec![1.0])],
    )
    .unwrap()
    .write_parquet(&frame_file)
    .unwrap();
    let names = types.nodes.names();
    assert!(names.len() >= 20, "{names:?}");
    for name in names {
        let doc = types.nodes.doc(name).unwrap();
        let example = if name == "frame" {
            format!("path = {:?}", frame_file.display().to_string())
        } else {
            doc.example.clone()
        };
        let toml = format!("[dag.nodes.n]\ntype = \"{name}\"\n{example}\n");
        let config = Config::from_toml_str(&toml, "n.toml").unwrap();
        let node = types
            .node(&config.section("dag.nodes.n").unwrap(), Some(&md))
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(node.kind(), name);
        config.check_all_used().unwrap();
        let documented = documented(doc);
        assert_eq!(
            asked(&config, "dag.nodes.n"),
            documented,
            "node type `{name}`"
        );
        // What `kaizenflow nodes NAME` prints is that documentation.
        assert_eq!(
            printed(&doc.render("node", name)),
            documented,
            "node type `{name}`"
        );
        // Every documented key is accepted: writing each at its default (where it
        // has one) leaves nothing unread.
        let mut full = toml.clone();
        for p in &doc.params {
            if let Some(d) = &p.default
                && !example.contains(&format!("{} =", p.name))
            {
                full.push_str(&format!("{} = {d}\n", p.name));
            }
        }
        let config = Config::from_toml_str(&full, "n.toml").unwrap();
        types
            .node(&config.section("dag.nodes.n").unwrap(), Some(&md))
            .unwrap_or_else(|e| panic!("{name} with every default written out: {e}\n{full}"));
        config
            .check_all_used()
            .unwrap_or_else(|e| panic!("{name}: {e}\n{full}"));
    }
}

#[test]
fn every_dag_builder_and_data_type_documents_exactly_the_keys_it_reads() {
    let types = DataflowTypes::default();
    for name in types.dags.names() {
        let doc = types.dags.doc(name).unwrap();
        let toml = format!(
            "[md]\ntype = \"synthetic\"\n[dag]\ntype = \"{name}\"\n{}\n",
            doc.example
        );
        let config = Config::from_toml_str(&toml, "d.toml").unwrap();
        let md = types.data.view(&config.section("md").unwrap()).unwrap();
        types
            .dag(&config.section("dag").unwrap(), Some(&md))
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(
            asked(&config, "dag"),
            documented(doc),
            "DAG builder `{name}`"
        );
    }
    // Sources that read files: give them one.
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("a.csv"),
        "timestamp,close\n2024-01-02 09:31,1.0\n",
    )
    .unwrap();
    let bars = kf_frame::Frame::new(
        vec![1],
        vec![1],
        vec!["A".into()],
        vec![("x".into(), vec![1.0])],
    )
    .unwrap();
    kf_datapull::parquet_store::write_frame(
        &bars,
        dir.path().join("bars.parquet"),
        kf_datapull::StoreOptions::default(),
    )
    .unwrap();
    let data_doc = |name: &str| {
        types
            .data
            .sources
            .doc(name)
            .or_else(|| types.data.views.doc(name))
            .unwrap()
    };
    let mut examples = vec![
        (
            "csv",
            format!(
                "files = {:?}\nasset = \"A\"",
                dir.path().join("a.csv").display().to_string()
            ),
        ),
        (
            "parquet",
            format!(
                "path = {:?}",
                dir.path().join("bars.parquet").display().to_string()
            ),
        ),
    ];
    for name in ["synthetic", "replayed", "stitched"] {
        examples.push((name, data_doc(name).example.clone()));
    }
    for (name, example) in &examples {
        let doc = data_doc(name);
        let config =
            Config::from_toml_str(&format!("[md]\ntype = \"{name}\"\n{example}\n"), "m.toml")
                .unwrap();
        types
            .data
            .view(&config.section("md").unwrap())
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        config.check_all_used().unwrap();
        assert_eq!(
            asked(&config, "md"),
            documented(doc),
            "market data type `{name}`"
        );
    }
}

/// Builds the DAG of `configs/NAME`, runs it in `phase` keeping every output, and
/// checks that each node's declared features are the ones it output. Returns how
/// many nodes were checked.
fn declared_features_are_output(name: &str, phase: Phase) -> usize {
    let config = config(name);
    let types = DataflowTypes::default();
    let root = config.root();
    let md = types
        .data
        .view(&root.section("market_data").unwrap())
        .unwrap();
    let mut dag = types.dag(&root.section("dag").unwrap(), Some(&md)).unwrap();
    let schema = dag.features().unwrap();
    let opts = RunOptions {
        keep: Keep::All,
        ..RunOptions::default()
    };
    let out = dag.run(&RunContext::new(phase, None), &opts).unwrap();
    let mut checked = 0;
    for id in dag.topological_order() {
        let declared = schema[&id]
            .as_ref()
            .unwrap_or_else(|| panic!("{name}: node `{id}` declares no features"));
        let actual = out.df_out(id.as_str()).unwrap().features();
        assert_eq!(declared[DF_OUT].as_slice(), actual, "{name}: node `{id}`");
        checked += 1;
    }
    checked
}

#[test]
fn every_library_node_declares_the_features_it_outputs() {
    // The library's DAG has a model: its fit phase outputs every feature.
    let checked = declared_features_are_output("library.toml", Phase::Fit);
    assert!(checked > 15, "{checked}");
}

#[test]
fn mock1_declares_the_features_it_outputs() {
    assert_eq!(
        declared_features_are_output("mock1.toml", Phase::Predict),
        9
    );
}

#[test]
fn a_nodes_own_source_follows_the_runs_clock() {
    use kf_datapull::{Clock, SimulatedClock};
    use kf_frame::Timestamp;
    let types = DataflowTypes::default();
    let toml = "[dag]\ntype = \"graph\"\n[dag.nodes.own]\ntype = \"market_data\"\n\
                source = { type = \"synthetic\", assets = 2, bars = 30, start = \"2024-01-02 09:31\", tz = \"UTC\" }\n";
    let config = Config::from_toml_str(toml, "d.toml").unwrap();
    let market = Config::from_toml_str(
        "[md]\ntype = \"synthetic\"\nassets = 2\nbars = 30\nstart = \"2024-01-02 09:31\"\ntz = \"UTC\"\n",
        "m.toml",
    )
    .unwrap();
    let md = types.data.view(&market.section("md").unwrap()).unwrap();
    let t10 = Timestamp::parse("2024-01-02 09:40").unwrap().nanos();
    let clock: Arc<dyn Clock> = Arc::new(SimulatedClock::new(t10));
    let settings = kf_datapull::ReplaySettings {
        delay: kf_frame::Duration(0),
        freq: kf_frame::Duration(60_000_000_000),
        offset: kf_frame::Duration(0),
        poll: kf_frame::Duration(1_000_000_000),
    };
    let on_clock = md.on_clock(Arc::clone(&clock), &settings).unwrap();
    let rows = |view: &Arc<dyn MarketData>| {
        let mut dag = types
            .dag_with(&config.section("dag").unwrap(), Some(view), Some(&settings))
            .unwrap();
        let out = dag
            .run(
                &RunContext::new(Phase::Predict, None),
                &RunOptions::default(),
            )
            .unwrap();
        out.df_out("own").unwrap().n_rows()
    };
    // On the run's clock at 09:40, the node's own bars (ending 09:31, 09:32, ...)
    // are those known by then: ten. Without a clock, all thirty.
    assert_eq!(rows(&on_clock), 10);
    assert_eq!(rows(&md), 30);
}
