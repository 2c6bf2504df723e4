//! What the extension issue promises, through the program a user runs: columns
//! checked before any data is read, the type listings, and `replayed` and
//! `stitched` market data through `config show`, `run` and `check` alike.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn kaizenflow(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_kaizenflow"))
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap_or_else(|e| panic!("cannot run kaizenflow: {e}"))
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// A folder with `c.toml` = `toml` and `bars.csv`, a file that is not CSV at all:
/// a config whose market data is that file can only pass or fail `config show` on
/// what it declares, since reading a byte of the data would fail with a parse error.
fn case(toml: &str) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("bars.csv"),
        b"\x00\x01 this is not a CSV file\n\xff",
    )
    .unwrap();
    let path = dir.path().join("c.toml");
    std::fs::write(&path, toml).unwrap();
    (dir, path)
}

/// `[market_data]` over the unreadable file, declaring its columns.
const DATA: &str = r#"[market_data]
type = "csv"
files = "bars.csv"
asset = "AAA"
columns = ["close", "volume"]
"#;

/// Runs `config show` on `DATA` + `rest` and returns its stderr; it must fail.
fn refused(rest: &str) -> String {
    let (dir, path) = case(&format!("{DATA}{rest}"));
    let out = kaizenflow(dir.path(), &["config", "show", path.to_str().unwrap()]);
    let err = text(&out.stderr);
    assert!(
        !out.status.success(),
        "config show passed:\n{}",
        text(&out.stdout)
    );
    assert!(
        !err.contains("not a CSV") && !err.contains("bars.csv:"),
        "data was read: {err}"
    );
    err
}

#[test]
fn the_unreadable_data_passes_config_show_when_every_name_is_right() {
    let (dir, path) = case(&format!(
        "{DATA}[dag]\ntype = \"graph\"\n[dag.nodes.read]\ntype = \"market_data\"\n\
         [dag.nodes.ret]\ntype = \"compute_ret_0\"\ncols = [\"close\"]\n"
    ));
    let out = kaizenflow(dir.path(), &["config", "show", path.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    // And reading it does fail: the file really is unreadable.
    let out = kaizenflow(dir.path(), &["run", path.to_str().unwrap(), "--out", "o"]);
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("bars.csv"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn a_misspelt_column_in_a_nodes_cols_is_refused_with_line_node_and_suggestion() {
    let err = refused(
        "[dag]\ntype = \"graph\"\n[dag.nodes.read]\ntype = \"market_data\"\n\
         [dag.nodes.ret]\ntype = \"compute_ret_0\"\ncols = [\"closee\"]\n\
         [dag.nodes.smooth]\ntype = \"ema\"\ncols = [\"close.ret_0\"]\n",
    );
    assert!(
        err.contains("c.toml:12: dag.nodes.ret.cols: node `ret` (compute_ret_0)"),
        "{err}"
    );
    assert!(err.contains("feature `closee`"), "{err}");
    assert!(
        err.contains("the features there are: close, volume"),
        "{err}"
    );
    assert!(err.contains("did you mean `close`?"), "{err}");
}

#[test]
fn a_misspelt_column_downstream_is_refused_at_its_node() {
    let err = refused(
        "[dag]\ntype = \"graph\"\n[dag.nodes.read]\ntype = \"market_data\"\n\
         [dag.nodes.ret]\ntype = \"compute_ret_0\"\ncols = [\"close\"]\n\
         [dag.nodes.smooth]\ntype = \"ema\"\ncols = [\"close.ret0\"]\n",
    );
    assert!(
        err.contains("c.toml:15: dag.nodes.smooth.cols: node `smooth` (ema)"),
        "{err}"
    );
    assert!(err.contains("close, volume, close.ret_0"), "{err}");
    assert!(err.contains("did you mean `close.ret_0`?"), "{err}");
}

#[test]
fn a_misspelt_weight_is_refused_with_line_node_and_suggestion() {
    let err = refused(
        "[dag]\ntype = \"graph\"\n[dag.nodes.read]\ntype = \"market_data\"\n\
         [dag.nodes.ret]\ntype = \"compute_ret_0\"\ncols = [\"close\"]\n\
         [dag.nodes.mix]\ntype = \"weighted_sum\"\nout_col = \"x\"\n\
         weights = { \"close.ret_0\" = 1.0, \"volum\" = 0.5 }\n",
    );
    assert!(
        err.contains("c.toml:16: dag.nodes.mix.weights: node `mix` (weighted_sum)"),
        "{err}"
    );
    assert!(err.contains("feature `volum`"), "{err}");
    assert!(err.contains("did you mean `volume`?"), "{err}");
}

#[test]
fn a_misspelt_model_variable_is_refused_with_line_node_and_suggestion() {
    let err = refused(
        "[dag]\ntype = \"graph\"\n[dag.nodes.read]\ntype = \"market_data\"\n\
         [dag.nodes.ret]\ntype = \"compute_ret_0\"\ncols = [\"close\"]\n\
         [dag.nodes.target]\ntype = \"shift\"\ncols = [\"close.ret_0\"]\nperiods = -1\nsuffix = \".fwd\"\n\
         [dag.nodes.model]\ntype = \"linear_regression\"\nx_vars = [\"close.ret_0\"]\n\
         y_vars = [\"close.ret_0.fw\"]\n",
    );
    assert!(
        err.contains("c.toml:21: dag.nodes.model.y_vars: node `model` (linear_regression)"),
        "{err}"
    );
    assert!(err.contains("did you mean `close.ret_0.fwd`?"), "{err}");
    let err = refused(
        "[dag]\ntype = \"graph\"\n[dag.nodes.read]\ntype = \"market_data\"\n\
         [dag.nodes.model]\ntype = \"linear_regression\"\nx_vars = [\"volme\"]\n\
         y_vars = [\"close\"]\n",
    );
    assert!(
        err.contains("c.toml:12: dag.nodes.model.x_vars: node `model`"),
        "{err}"
    );
    assert!(err.contains("did you mean `volume`?"), "{err}");
}

#[test]
fn a_misspelt_column_of_the_market_data_is_refused_with_what_there_is() {
    let err = refused(
        "[dag]\ntype = \"graph\"\n[dag.nodes.read]\ntype = \"market_data\"\n\
         columns = [\"clse\"]\n",
    );
    assert!(
        err.contains("c.toml:10: dag.nodes.read.columns: node `read` (market_data)"),
        "{err}"
    );
    assert!(
        err.contains("the features there are: close, volume"),
        "{err}"
    );
    assert!(err.contains("did you mean `close`?"), "{err}");
}

#[test]
fn a_node_that_would_output_a_feature_twice_is_refused() {
    let err = refused(
        "[dag]\ntype = \"graph\"\n[dag.nodes.read]\ntype = \"market_data\"\n\
         [dag.nodes.clip]\ntype = \"clip\"\nlower = 0.0\ncol_mode = \"append\"\n",
    );
    assert!(
        err.contains(
            "c.toml:11: dag.nodes.clip.type: node `clip` (clip) would output feature `close` twice"
        ),
        "{err}"
    );
}

const SYSTEM: &str = "[dag]\ntype = \"mock1\"\n\n[system]\nbar = \"5min\"\n";

#[test]
fn a_misspelt_system_prediction_or_volatility_is_refused_with_line_and_suggestion() {
    let err = refused(&format!(
        "{SYSTEM}prediction = \"predicton\"\n[system.processor]\ntype = \"cross_sectional\"\n"
    ));
    assert!(
        err.contains("c.toml:11: system.prediction: `predicton` is not a feature"),
        "{err}"
    );
    assert!(err.contains("forecast node `predict`"), "{err}");
    assert!(err.contains("did you mean `prediction`?"), "{err}");
    let err = refused(&format!(
        "{SYSTEM}volatility = \"vwap.ret_0.voll\"\n[system.processor]\ntype = \"cross_sectional\"\n"
    ));
    assert!(
        err.contains("c.toml:11: system.volatility: `vwap.ret_0.voll` is not a feature"),
        "{err}"
    );
    assert!(err.contains("did you mean `vwap.ret_0.vol`?"), "{err}");
}

#[test]
fn a_misspelt_port_in_an_edge_is_refused_with_line_node_and_suggestion() {
    let err = refused(
        "[dag]\ntype = \"graph\"\nedges = [[\"read\", \"ret:df_inn\"]]\n\
         [dag.nodes.read]\ntype = \"market_data\"\n\
         [dag.nodes.ret]\ntype = \"compute_ret_0\"\n",
    );
    assert!(err.contains("c.toml:8: dag.edges:"), "{err}");
    assert!(
        err.contains("node `ret` has no input port `df_inn`"),
        "{err}"
    );
    assert!(err.contains("did you mean `df_in`?"), "{err}");
}

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

#[test]
fn nodes_lists_every_built_in_node_and_describes_one() {
    let out = kaizenflow(&workspace(), &["nodes"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let listed: Vec<String> = text(&out.stdout)
        .lines()
        .map(|l| l.split_whitespace().next().unwrap_or("").to_string())
        .collect();
    // Every node type of configs/library.toml (which uses each library node on
    // bars), of the two tick configs (the microstructure nodes) and the two other
    // sources.
    let library: String = [
        "configs/library.toml",
        "configs/vpin_spy_2013.toml",
        "configs/fingerprint_spy_2013.toml",
    ]
    .iter()
    .map(|c| std::fs::read_to_string(workspace().join(c)).unwrap())
    .collect();
    let mut kinds: Vec<String> = library
        .lines()
        .filter_map(|l| l.strip_prefix("type = \""))
        .map(|l| l.trim_end_matches('"').to_string())
        .filter(|k| !["synthetic", "ticks", "graph", "fit_predict"].contains(&k.as_str()))
        .collect();
    kinds.extend(["frame".to_string(), "arma".to_string()]);
    // The recurrent forecasters come with the `nn` feature (their own tests and
    // configs/lstm_us_equity_1min_2018.toml use them).
    if cfg!(feature = "nn") {
        kinds.extend(["lstm".to_string(), "gru".to_string()]);
    }
    kinds.sort();
    kinds.dedup();
    assert_eq!(listed, kinds);

    let out = kaizenflow(&workspace(), &["nodes", "ema"]);
    let shown = text(&out.stdout);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        shown.starts_with("ema (node): exponential moving average"),
        "{shown}"
    );
    assert!(shown.contains("ports: in [df_in], out [df_out]"), "{shown}");
    // The defaults of EmaParams, by hand.
    for line in [
        "  tau: number = 10.0",
        "  min_periods: integer = 0",
        "  depth: integer = 1",
        "  suffix: string = \".ema\"",
        "  cols: array of string = []",
        "  col_mode: one of \"append\", \"replace_all\", \"replace_selected\" = \"append\"",
    ] {
        assert!(
            shown.lines().any(|l| l == line),
            "no line {line:?} in:\n{shown}"
        );
    }
    let out = kaizenflow(&workspace(), &["nodes", "emaa"]);
    assert!(!out.status.success());
    assert!(text(&out.stderr).contains("no node type `emaa` (did you mean `ema`?)"));
}

#[test]
fn sources_processors_and_dags_list_their_types() {
    let out = kaizenflow(&workspace(), &["sources"]);
    let s = text(&out.stdout);
    for name in [
        "csv",
        "hdf5",
        "parquet",
        "replayed",
        "stitched",
        "synthetic",
    ] {
        assert!(s.lines().any(|l| l.starts_with(name)), "{name} in {s}");
    }
    let out = kaizenflow(&workspace(), &["processors", "threshold"]);
    let s = text(&out.stdout);
    assert!(s.contains("long_above: number"), "{s}");
    let out = kaizenflow(&workspace(), &["dags", "mock1"]);
    let s = text(&out.stdout);
    assert!(s.contains("resample_rule: string = \"5min\""), "{s}");
}

/// Mock1 and its system over `market_data`.
fn mock1_system(market_data: &str) -> String {
    format!(
        "{market_data}\n[dag]\ntype = \"mock1\"\nmax_gap = \"1h\"\n\n[system]\nbar = \"5min\"\n\
         volatility = \"vwap.ret_0.vol\"\n[system.processor]\ntype = \"cross_sectional\"\n"
    )
}

const REPLAYED: &str = r#"[market_data]
type = "replayed"
delay = "2s"
source = { type = "synthetic", assets = 6, bars = 390, start = "2024-01-02 09:31", tz = "America/New_York", seed = 4 }
clock = { type = "simulated", start = "2024-01-02 16:00", tz = "America/New_York" }
"#;

const STITCHED: &str = r#"[market_data]
type = "stitched"
split = "2024-01-02 12:00"
tz = "America/New_York"
before = { type = "synthetic", assets = 6, bars = 390, start = "2024-01-02 09:31", tz = "America/New_York", seed = 4 }

[market_data.after]
type = "replayed"
source = { type = "synthetic", assets = 6, bars = 390, start = "2024-01-02 09:31", tz = "America/New_York", seed = 4 }
clock = { type = "simulated", start = "2024-01-02 16:00", tz = "America/New_York" }
"#;

fn views_run_everywhere(market_data: &str) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("c.toml");
    std::fs::write(&path, mock1_system(market_data)).unwrap();
    let p = path.to_str().unwrap();
    let out = kaizenflow(dir.path(), &["config", "show", p]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let out = kaizenflow(dir.path(), &["run", p, "--out", "o"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    for f in [
        "result.parquet",
        "orders.parquet",
        "fills.parquet",
        "stats.toml",
    ] {
        assert!(dir.path().join("o").join(f).is_file(), "{f} missing");
    }
    let stats = std::fs::read_to_string(dir.path().join("o/stats.toml")).unwrap();
    // One 6.5-hour session in 5-minute decisions.
    assert!(stats.contains("bars = 78"), "{stats}");
    let out = kaizenflow(dir.path(), &["check", p, "--tilings", "2"]);
    let report = text(&out.stdout);
    assert!(out.status.success(), "{report}\n{}", text(&out.stderr));
    assert!(
        report
            .lines()
            .any(|l| l.starts_with("pass") && l.contains("replay")),
        "{report}"
    );
    assert!(!report.contains("skip"), "{report}");
}

#[test]
fn a_replayed_view_runs_through_config_show_run_and_check() {
    views_run_everywhere(REPLAYED);
}

#[test]
fn a_stitched_view_runs_through_config_show_run_and_check() {
    views_run_everywhere(STITCHED);
}

#[test]
fn the_clock_has_one_spelling_everywhere() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("c.toml");
    std::fs::write(
        &path,
        mock1_system(&REPLAYED.replace("type = \"simulated\"", "type = \"replay\"")),
    )
    .unwrap();
    let out = kaizenflow(dir.path(), &["config", "show", path.to_str().unwrap()]);
    let err = text(&out.stderr);
    assert!(!out.status.success());
    assert!(
        err.contains("market_data.clock.type: unknown clock \"replay\" (did you mean `replayed`?)"),
        "{err}"
    );
    let system = format!(
        "{}[system.clock]\ntype = \"replay\"\n",
        mock1_system(DATA_SYNTH)
    );
    std::fs::write(&path, system).unwrap();
    let out = kaizenflow(dir.path(), &["config", "show", path.to_str().unwrap()]);
    let err = text(&out.stderr);
    assert!(
        err.contains("system.clock.type: unknown clock \"replay\" (did you mean `replayed`?)"),
        "{err}"
    );
}

const DATA_SYNTH: &str = "[market_data]\ntype = \"synthetic\"\nassets = 3\nbars = 60\n";
