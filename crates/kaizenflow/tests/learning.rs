//! Systems that learn, through the program: seed 004's two configs run and pass
//! `check` on a slice of the real data, and `run --state` predicts with a saved fit
//! to the bit and refuses a state that does not fit the DAG, naming the node.

mod common;

use std::path::{Path, PathBuf};

use common::{kaizenflow, shared_data, text};

/// Seed 004's configs with `--set`s that cut them to a slice: the assets whose
/// names start with A or B, and a few days of walk-forward and trading.
fn slices() -> Vec<(&'static str, &'static str, Vec<String>)> {
    let data = "${KF_SHARED_DATA:-../../shared/data}";
    vec![
        (
            "binance_top10_1m",
            "configs/gbt_threshold_binance_1m.toml",
            vec![
                format!("market_data.files=\"{data}/binance_top10_1m/[AB]*_1m_1month.csv.gz\""),
                "run.end=\"2026-07-16T15:30:00Z\"".into(),
                "system.end=\"2026-07-16 15:30\"".into(),
            ],
        ),
        (
            "us_equity_1min_2018",
            "configs/gbt_threshold_us_equity_1min_2018.toml",
            vec![
                format!("market_data.files=\"{data}/us_equity_1min_2018/[AB]*_1min.csv.gz\""),
                "run.end=\"2018-02-28T21:00:00Z\"".into(),
                "system.end=\"2018-02-28 16:00\"".into(),
            ],
        ),
    ]
}

fn with_sets<'a>(args: &[&'a str], sets: &'a [String]) -> Vec<&'a str> {
    let mut v = args.to_vec();
    for s in sets {
        v.push("--set");
        v.push(s);
    }
    v
}

#[test]
fn seed_004_runs_end_to_end_and_passes_check_on_a_slice_of_the_real_data() {
    for (data, config, sets) in slices() {
        if !shared_data(data) {
            continue;
        }
        let dir = tempfile::tempdir().unwrap();
        let out_dir = dir.path().to_str().unwrap();
        let out = kaizenflow(&with_sets(&["run", config, "--out", out_dir], &sets));
        let stdout = text(&out.stdout);
        assert!(
            out.status.success(),
            "{config}: {stdout}{}",
            text(&out.stderr)
        );
        for want in [
            "model `model` (gbt), out of sample",
            "base rate",
            "class up",
            "importance: ",
            "# system fits: ",
            "# system: ",
        ] {
            assert!(stdout.contains(want), "{config}: no `{want}` in {stdout}");
        }
        // metrics.toml: the classifier's scores, overall and per walk-forward step.
        let metrics: toml::Table =
            toml::from_str(&std::fs::read_to_string(dir.path().join("metrics.toml")).unwrap())
                .unwrap();
        let model = &metrics["model"].as_array().unwrap()[0];
        let overall = &model["overall"];
        let rows = overall["rows"].as_integer().unwrap();
        assert!(rows > 1000, "{config}: {rows} rows scored");
        for key in ["accuracy", "base_rate", "macro_f1", "log_loss"] {
            let v = overall[key].as_float().unwrap();
            assert!(v.is_finite() && v >= 0.0, "{config}: {key} = {v}");
        }
        // The confusion matrix counts every scored row once.
        let confusion: i64 = overall["confusion"]
            .as_array()
            .unwrap()
            .iter()
            .flat_map(|r| {
                r.as_array()
                    .unwrap()
                    .iter()
                    .map(|c| c.as_integer().unwrap())
            })
            .sum();
        assert_eq!(confusion, rows);
        assert!(model["spans"].as_array().unwrap().len() >= 2);
        let importance = model["importance"].as_table().unwrap();
        let total: f64 = importance.values().map(|v| v.as_float().unwrap()).sum();
        assert!((total - 1.0).abs() < 1e-9, "{importance:?}");
        assert!(dir.path().join("state/model.bin").is_file());
        assert!(
            dir.path().join("stats.toml").is_file() && dir.path().join("fills.parquet").is_file()
        );

        let out = kaizenflow(&with_sets(
            &["check", config, "--tilings", "2", "--seed", "3"],
            &sets,
        ));
        let stdout = text(&out.stdout);
        assert!(
            out.status.success(),
            "{config}: {stdout}{}",
            text(&out.stderr)
        );
        assert!(
            stdout.contains("pass  system: research P&L equals the event-driven P&L"),
            "{stdout}"
        );
        assert!(
            !stdout.contains("FAIL") && !stdout.contains("skip"),
            "{stdout}"
        );
    }
}

/// A learning DAG on synthetic bars, fitted on the first two days and predicting the
/// third; `model` and `extra` vary the model node and what feeds it.
fn synthetic(dir: &Path, name: &str, assets: usize, model: &str, extra: &str) -> PathBuf {
    let path = dir.join(name);
    let text = format!(
        r#"
[market_data]
type = "synthetic"
assets = {assets}
bars = 1170
start = "2024-01-02 09:31"
tz = "America/New_York"
calendar = "us_equity"
seed = 5

[dag]
type = "graph"
[dag.nodes.prices]
type = "market_data"
[dag.nodes.rets]
type = "compute_ret_0"
cols = ["close"]
[dag.nodes.strength]
type = "rsi"
cols = ["close"]
{extra}
[dag.nodes.label]
type = "direction"
cols = ["close"]
horizon = 3
threshold = 0.0005
[dag.nodes.model]
{model}

[run]
type = "fit_predict"
fit = ["2024-01-02T14:30:00Z", "2024-01-03T21:00:00Z"]
predict = ["2024-01-04T14:30:00Z", "2024-01-04T21:00:00Z"]
"#
    );
    std::fs::write(&path, text).unwrap();
    path
}

const TREES: &str = r#"type = "gbt"
x_vars = ["close.ret_0", "close.rsi"]
y_var = "close.direction"
objective = "multiclass"
classes = [-1.0, 0.0, 1.0]
iterations = 20
max_depth = 3"#;

#[test]
fn run_state_predicts_as_the_run_that_saved_it_and_refuses_a_state_that_does_not_fit() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let config = synthetic(d, "trees.toml", 4, TREES, "");
    let (first, second) = (d.join("first"), d.join("second"));
    let run = |config: &Path, out: &Path, state: Option<&Path>| {
        let mut args = vec![
            "run",
            config.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
        ];
        if let Some(s) = state {
            args.extend(["--state", s.to_str().unwrap()]);
        }
        kaizenflow(&args)
    };
    let out = run(&config, &first, None);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let out = run(&config, &second, Some(&first));
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("predicted with the fitted state in"));
    let a = kf_frame::Frame::read_parquet(first.join("result.parquet")).unwrap();
    let b = kf_frame::Frame::read_parquet(second.join("result.parquet")).unwrap();
    assert!(
        a.n_rows() > 300 && a.bit_eq(&b),
        "the saved fit predicts to the bit"
    );
    // The metrics of a run from a state: its whole predict span is out of sample, as
    // the first run's (fit and predict spans do not meet).
    assert_eq!(
        std::fs::read_to_string(first.join("metrics.toml"))
            .unwrap()
            .lines()
            .nth(5),
        std::fs::read_to_string(second.join("metrics.toml"))
            .unwrap()
            .lines()
            .nth(5)
    );

    let refused = |config: PathBuf, state: &Path, want: &[&str]| {
        let out = run(&config, &d.join("refused"), Some(state));
        let stderr = text(&out.stderr);
        assert!(!out.status.success(), "{}: accepted", config.display());
        for w in want {
            assert!(
                stderr.contains(w),
                "{}: no `{w}` in {stderr}",
                config.display()
            );
        }
    };
    // Another node type under the same id.
    let linear =
        "type = \"linear_regression\"\nx_vars = [\"close.rsi\"]\ny_vars = [\"close.ret_0\"]";
    refused(
        synthetic(d, "linear.toml", 4, linear, ""),
        &first,
        &["holds the state of a `gbt` node, but node `model` is a `linear_regression`"],
    );
    // Other input features reaching the model.
    let more = "[dag.nodes.trend]\ntype = \"macd\"\ncols = [\"close\"]";
    refused(
        synthetic(d, "more.toml", 4, TREES, more),
        &first,
        &[
            "node `model` (gbt) was fitted on other input features",
            "close.macd",
        ],
    );
    // Other regressors.
    let fewer = TREES.replace("[\"close.ret_0\", \"close.rsi\"]", "[\"close.rsi\"]");
    refused(
        synthetic(d, "fewer.toml", 4, &fewer, ""),
        &first,
        &[
            "model",
            "the saved trees split on [\"close.ret_0\", \"close.rsi\"]",
        ],
    );
    // Other assets: the trees refuse to predict for an asset they were not fitted on.
    refused(
        synthetic(d, "assets.toml", 5, TREES, ""),
        &first,
        &["model", "the trees were fitted on the assets"],
    );
    // No state at all for a node that learns.
    let empty = d.join("empty");
    std::fs::create_dir_all(empty.join("state")).unwrap();
    refused(
        config.clone(),
        &empty,
        &["has no state for node `model` (gbt), which learns"],
    );
}
