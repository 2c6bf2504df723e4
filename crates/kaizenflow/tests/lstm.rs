//! Seed 001's pipeline (`configs/lstm_us_equity_1min_2018.toml`, feature `nn`) on a
//! slice of the real minute bars: three stocks, a few days, one epoch. It trains,
//! streams its predictions in the system's loop, trades them, and `check` finds
//! the streamed predictions equal to the batch's.

#![cfg(feature = "nn")]

mod common;

use common::{kaizenflow, shared_data, text};

const SLICE: [&str; 7] = [
    "dag.nodes.prices.assets=[\"AAPL\",\"MSFT\",\"AMZN\"]",
    "run.fit=[\"2018-02-16\",\"2018-02-21\"]",
    "run.predict=[\"2018-02-21\",\"2018-02-24\"]",
    "system.start=\"2018-02-22 09:35\"",
    "system.end=\"2018-02-23 16:00\"",
    "system.fit.lookback=\"4d\"",
    "dag.nodes.model.epochs=1",
];

fn with_slice(mut args: Vec<&str>) -> Vec<&str> {
    for s in SLICE {
        args.extend(["--set", s]);
    }
    args
}

#[test]
fn the_seed_001_config_trains_streams_and_trades_on_a_slice() {
    if !shared_data("us_equity_1min_2018") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("run");
    let done = kaizenflow(&with_slice(vec![
        "run",
        "configs/lstm_us_equity_1min_2018.toml",
        "--out",
        out.to_str().unwrap(),
        "--no-report",
    ]));
    let printed = text(&done.stdout);
    assert!(done.status.success(), "{}\n{}", printed, text(&done.stderr));
    assert!(
        printed.contains("# system fits: 1 in the loop"),
        "{printed}"
    );
    let stats: toml::Table = std::fs::read_to_string(out.join("stats.toml"))
        .unwrap()
        .parse()
        .unwrap();
    let fills = stats.get("fills").and_then(|v| v.as_integer()).unwrap_or(0);
    assert!(fills > 100, "{stats:?}");
    // The model's out-of-sample metrics were written.
    let metrics = std::fs::read_to_string(out.join("metrics.toml")).unwrap();
    assert!(
        metrics.contains("node = \"model\"") && metrics.contains("rmse"),
        "{metrics}"
    );
}

#[test]
fn check_finds_the_streamed_lstm_predictions_equal_to_the_batch() {
    if !shared_data("us_equity_1min_2018") {
        return;
    }
    // A smaller network: `check` fits it once per run it compares.
    let done = kaizenflow(&with_slice(vec![
        "check",
        "configs/lstm_us_equity_1min_2018.toml",
        "--tilings",
        "3",
        "--perturbations",
        "1",
        "--skip",
        "system",
        "--set",
        "dag.nodes.model.window=20",
        "--set",
        "dag.nodes.model.hidden=6",
    ]));
    let printed = text(&done.stdout);
    assert!(done.status.success(), "{printed}\n{}", text(&done.stderr));
    assert!(printed.contains("pass  streaming"), "{printed}");
    assert!(printed.contains("pass  tiling 2"), "{printed}");
}

/// Seed 001's all-reduce on our engine: two MPI ranks with one replica each train
/// the same weights, to the bit, as one process with two replicas (the minibatch is
/// cut into the same two shards and their gradients summed in the same order), and
/// other weights than one replica alone, so the ranks did share the work.
#[cfg(feature = "mpi")]
#[test]
fn two_mpi_ranks_train_the_same_bits_as_two_replicas_on_threads() {
    if !shared_data("us_equity_1min_2018") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let small = |mut args: Vec<String>, replicas: usize| {
        for s in SLICE {
            args.extend(["--set".into(), s.into()]);
        }
        for s in [
            "dag.nodes.model.window=20".to_string(),
            "dag.nodes.model.hidden=6".into(),
            "dag.nodes.model.epochs=2".into(),
            format!("dag.nodes.model.replicas={replicas}"),
        ] {
            args.extend(["--set".into(), s]);
        }
        args
    };
    let run_args = |name: &str| {
        vec![
            "run".to_string(),
            "configs/lstm_us_equity_1min_2018.toml".into(),
            "--no-report".into(),
            "--out".into(),
            dir.path().join(name).display().to_string(),
        ]
    };
    for (name, replicas) in [("one", 1), ("two", 2)] {
        let args = small(run_args(name), replicas);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let done = kaizenflow(&args);
        assert!(done.status.success(), "{}", text(&done.stderr));
    }
    let mut args = small(run_args("ranks"), 1);
    args.extend(["--backend".into(), "mpi".into()]);
    let done = common::mpirun(2, &args);
    assert!(
        done.status.success(),
        "{}\n{}",
        text(&done.stdout),
        text(&done.stderr)
    );
    // Rank 0 alone printed the run's summary.
    assert_eq!(text(&done.stdout).matches("# system fits:").count(), 1);
    let read = |name: &str, file: &str| std::fs::read(dir.path().join(name).join(file)).unwrap();
    for file in [
        "state/model.bin",
        "result.parquet",
        "stats.toml",
        "fills.parquet",
    ] {
        assert!(read("ranks", file) == read("two", file), "{file} differs");
    }
    // The weights differ in their last bits (the forecasts rarely do).
    assert!(read("one", "state/model.bin") != read("two", "state/model.bin"));
}
