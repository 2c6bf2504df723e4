//! Recurrent forecasters (`lstm`, `gru`; feature `nn`): they learn an AR(2) series
//! to near its innovation variance, far below a last-value forecast; the same seed
//! gives the same weights; a saved state predicts to the bit; streamed and tiled
//! predictions equal the batch's to the bit; two data-parallel replicas train to
//! the single replica's loss; bad training data is refused by name.

use kf_dataflow::column::ColumnKernel;
use kf_dataflow::nodes::models::recurrent::kernel::Cell;
use kf_dataflow::nodes::models::recurrent::{OnNan, Recurrent, RecurrentParams};
use kf_dataflow::{Phase, RunContext};
use kf_frame::Frame;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, StandardNormal};

use crate::common::MIN;

const T0: i64 = 1_704_205_860_000_000_000;

/// `rows` rows of `assets` independent AR(2) series, `x_t = 0.6 x_{t-1} -
/// 0.3 x_{t-2} + e_t` with standard normal `e_t`. The best one-step forecast errs by
/// `e_t`: mean squared error 1. The last value errs by `x_t - x_{t-1}`: its mean
/// square is `2 Var(x) (1 - rho_1)`, that is 2 * 1.3956 * (1 - 0.6 / 1.3) = 1.503
/// (Box and Jenkins' AR(2) moments).
fn ar2(rows: usize, assets: usize, seed: u64) -> Frame {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut x = vec![0.0; rows * assets];
    for a in 0..assets {
        let (mut x1, mut x2) = (0.0, 0.0);
        for r in 0..rows + 50 {
            let e: f64 = StandardNormal.sample(&mut rng);
            let v = 0.6 * x1 - 0.3 * x2 + e;
            x2 = x1;
            x1 = v;
            if r >= 50 {
                x[(r - 50) * assets + a] = v;
            }
        }
    }
    let ts: Vec<i64> = (0..rows as i64).map(|i| T0 + i * MIN).collect();
    Frame::new(
        ts.clone(),
        ts,
        (0..assets).map(|a| format!("A{a}")).collect(),
        vec![("x".into(), x)],
    )
    .unwrap()
}

fn params() -> RecurrentParams {
    RecurrentParams {
        x_vars: vec!["x".into()],
        target: "x".into(),
        horizon: 1,
        window: 8,
        hidden: 8,
        relative: false,
        epochs: 12,
        batch_size: 64,
        learning_rate: 0.01,
        patience: 3,
        validation: 0.2,
        clip: 1.0,
        seed: 7,
        replicas: 1,
        on_nan: OnNan::Skip,
        device: "cpu".into(),
    }
}

fn fit() -> RunContext {
    RunContext::new(Phase::Fit, None)
}

fn predict() -> RunContext {
    RunContext::new(Phase::Predict, None)
}

fn fitted(cell: Cell, p: RecurrentParams, data: &Frame) -> Recurrent {
    let mut m = Recurrent::new("lstm", cell, p);
    m.compute(&fit(), data, &[]).unwrap();
    m
}

fn forecast(m: &mut Recurrent, data: &Frame) -> Vec<f64> {
    m.reset();
    m.compute(&predict(), data, &[]).unwrap().remove(0).1
}

/// Mean squared one-step errors of `pred` (row r forecasts row r + 1) and of the
/// last value, over rows with a forecast.
fn errors(data: &Frame, pred: &[f64]) -> (f64, f64, usize) {
    let x = data.feature("x").unwrap().values();
    let n = data.n_assets();
    let (mut m, mut naive, mut k) = (0.0, 0.0, 0);
    for r in 0..data.n_rows() - 1 {
        for a in 0..n {
            let p = pred[r * n + a];
            if p.is_nan() {
                continue;
            }
            let y = x[(r + 1) * n + a];
            m += (p - y) * (p - y);
            naive += (x[r * n + a] - y) * (x[r * n + a] - y);
            k += 1;
        }
    }
    (m / k as f64, naive / k as f64, k)
}

#[test]
fn an_lstm_and_a_gru_learn_an_ar2_series_far_below_the_last_value() {
    let train = ar2(1500, 4, 1);
    let test = ar2(800, 4, 2);
    for cell in [Cell::Lstm, Cell::Gru] {
        let mut m = fitted(cell, params(), &train);
        let (mse, naive, k) = errors(&test, &forecast(&mut m, &test));
        eprintln!("{cell:?}: out-of-sample MSE {mse:.4}, last value {naive:.4}, {k} forecasts");
        assert!(k > 3000, "{k} forecasts");
        // The optimum is 1.0 and the last value 1.50 (in expectation).
        assert!(mse < 1.12, "{cell:?}: out-of-sample MSE {mse}");
        assert!(
            mse < 0.8 * naive,
            "{cell:?}: MSE {mse} vs the last value's {naive}"
        );
    }
}

#[test]
fn the_same_seed_gives_the_same_weights_and_another_seed_others() {
    let data = ar2(400, 2, 3);
    let mut p = params();
    p.epochs = 2;
    let a = fitted(Cell::Lstm, p.clone(), &data).save_state().unwrap();
    let b = fitted(Cell::Lstm, p.clone(), &data).save_state().unwrap();
    assert_eq!(a, b);
    p.seed = 8;
    let c = fitted(Cell::Lstm, p, &data).save_state().unwrap();
    assert_ne!(a, c);
}

#[test]
fn a_saved_state_predicts_to_the_bit() {
    let data = ar2(400, 3, 4);
    let mut p = params();
    p.epochs = 2;
    let mut m = fitted(Cell::Gru, p.clone(), &data);
    let bytes = m.save_state().unwrap();
    let mut loaded = Recurrent::new("gru", Cell::Gru, p.clone());
    loaded.load_state(&bytes).unwrap();
    let (x, y) = (forecast(&mut m, &data), forecast(&mut loaded, &data));
    assert!(x.iter().zip(&y).all(|(a, b)| a.to_bits() == b.to_bits()));
    assert!(x.iter().filter(|v| v.is_finite()).count() > 1000);
    // A state of another shape is refused, saying which.
    let mut other = params();
    other.hidden = 4;
    let e = Recurrent::new("gru", Cell::Gru, other)
        .load_state(&bytes)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("4 hidden units") && e.contains("saved as 1 inputs, 8 hidden"),
        "{e}"
    );
}

#[test]
fn streamed_and_tiled_predictions_equal_the_batch_to_the_bit() {
    let data = ar2(300, 5, 5);
    let mut p = params();
    p.epochs = 2;
    let mut m = fitted(Cell::Lstm, p, &data);
    let batch = forecast(&mut m, &data);
    for tile in [1usize, 7, 64] {
        m.reset();
        let mut got = Vec::new();
        let mut r = 0;
        while r < data.n_rows() {
            let len = tile.min(data.n_rows() - r);
            let part = data.slice(r, len).unwrap();
            got.extend(m.compute(&predict(), &part, &[]).unwrap().remove(0).1);
            r += len;
        }
        assert_eq!(got.len(), batch.len());
        assert!(
            got.iter()
                .zip(&batch)
                .all(|(a, b)| a.to_bits() == b.to_bits()),
            "tiles of {tile} rows"
        );
    }
    // The first window - 1 rows have no full window.
    assert!(batch[..7 * 5].iter().all(|v| v.is_nan()));
    assert!(batch[7 * 5..].iter().all(|v| v.is_finite()));
}

#[test]
fn two_data_parallel_replicas_train_to_the_single_replicas_loss() {
    let train = ar2(1200, 4, 6);
    let test = ar2(600, 4, 7);
    let mut p = params();
    p.epochs = 6;
    let mut one = fitted(Cell::Lstm, p.clone(), &train);
    p.replicas = 2;
    let mut two = fitted(Cell::Lstm, p, &train);
    let (a, _, _) = errors(&test, &forecast(&mut one, &test));
    let (b, _, _) = errors(&test, &forecast(&mut two, &test));
    // The same mean gradient per minibatch, summed in another order: the runs
    // drift apart only by rounding.
    eprintln!("1 replica: MSE {a:.5}; 2 replicas: {b:.5}");
    assert!((a - b).abs() < 0.02, "1 replica {a}, 2 replicas {b}");
}

#[test]
fn bad_training_data_is_refused_by_name() {
    // Fewer rows than the window.
    let short = ar2(5, 2, 8);
    let e = Recurrent::new("lstm", Cell::Lstm, params())
        .compute(&fit(), &short, &[])
        .unwrap_err()
        .to_string();
    assert!(e.contains("5 rows, fewer than its window of 8"), "{e}");
    // Every value missing: an empty training set.
    let ts: Vec<i64> = (0..50).map(|i| T0 + i * MIN).collect();
    let nan = Frame::new(
        ts.clone(),
        ts,
        vec!["A0".into()],
        vec![("x".into(), vec![f64::NAN; 50])],
    )
    .unwrap();
    let e = Recurrent::new("lstm", Cell::Lstm, params())
        .compute(&fit(), &nan, &[])
        .unwrap_err()
        .to_string();
    assert!(e.contains("empty training set"), "{e}");
    // One missing value with on_nan = "error": the asset and the time are named.
    let mut data = ar2(100, 2, 9);
    let mut x = data.feature("x").unwrap().values().to_vec();
    x[30 * 2 + 1] = f64::NAN;
    data = Frame::new(
        data.end_ts().to_vec(),
        data.knowledge_ts().to_vec(),
        data.assets().to_vec(),
        vec![("x".into(), x)],
    )
    .unwrap();
    let mut p = params();
    p.on_nan = OnNan::Error;
    let e = Recurrent::new("lstm", Cell::Lstm, p)
        .compute(&fit(), &data, &[])
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("asset `A1`") && e.contains("holds a missing value"),
        "{e}"
    );
    // Predicting before any fit.
    let e = Recurrent::new("lstm", Cell::Lstm, params())
        .compute(&predict(), &data, &[])
        .unwrap_err()
        .to_string();
    assert!(e.to_lowercase().contains("fit"), "{e}");
}

#[test]
fn an_lstm_in_a_dag_passes_every_check() {
    use std::sync::Arc;

    use kf_config::Config;
    use kf_dataflow::check::{CheckOptions, Subject, Verdict, run_checks};
    use kf_dataflow::{Dag, DataflowTypes, Result};
    use kf_datapull::MarketData;

    let cfg = Config::from_toml_str(
        r#"
[market_data]
type = "synthetic"
assets = 3
bars = 240
seed = 5

[dag]
type = "graph"
[dag.nodes.prices]
type = "market_data"
[dag.nodes.returns]
type = "compute_ret_0"
cols = ["close"]
[dag.nodes.model]
type = "lstm"
x_vars = ["close", "close.ret_0"]
target = "close"
horizon = 5
window = 12
hidden = 4
relative = true
epochs = 2
"#,
        "lstm.toml",
    )
    .unwrap();
    let root = cfg.root();
    let types = DataflowTypes::default();
    let md: Arc<dyn MarketData> = types
        .data
        .view(&root.section("market_data").unwrap())
        .unwrap();
    let make = || -> Result<Dag> { Ok(types.dag(&root.section("dag")?, Some(&md))?) };
    let subject = Subject::fit(&make).unwrap();
    let opts = CheckOptions {
        tilings: 4,
        perturbations: 2,
        ..CheckOptions::default()
    };
    let (batch, results) = run_checks(&subject, &opts).unwrap();
    for r in &results {
        let moot = r.name == "fast streaming" && matches!(r.verdict, Verdict::NotApplicable(_));
        assert!(r.verdict == Verdict::Pass || moot, "{r}");
    }
    assert!(results.iter().any(|r| r.name.starts_with("streaming")));
    let hat = batch[&"model".into()]["df_out"]
        .feature("close_hat")
        .unwrap();
    assert!(hat.values().iter().filter(|v| v.is_finite()).count() > 600);
}

/// `device` is checked when the DAG is built: an unknown device, and a GPU in a
/// build without CUDA, are refused with the key's path and what to do.
#[test]
fn a_bad_device_is_refused_when_the_dag_is_built() {
    use kf_config::Config;
    use kf_dataflow::DataflowTypes;

    let types = DataflowTypes::default();
    let build = |device: &str| -> Result<(), String> {
        let cfg = Config::from_toml_str(
            &format!(
                "[dag]\ntype = \"graph\"\n[dag.nodes.model]\ntype = \"lstm\"\n\
                 x_vars = [\"x\"]\ntarget = \"x\"\ndevice = \"{device}\"\n"
            ),
            "device.toml",
        )
        .unwrap();
        types
            .dag(&cfg.root().section("dag").unwrap(), None)
            .map(drop)
            .map_err(|e| e.to_string())
    };
    assert_eq!(build("cpu"), Ok(()));
    let e = build("gpu").unwrap_err();
    assert!(
        e.contains("dag.nodes.model.device") && e.contains("`gpu` is not a device"),
        "{e}"
    );
    let e = build("cuda:x").unwrap_err();
    assert!(e.contains("is not a device"), "{e}");
    if !cfg!(feature = "cuda") {
        let e = build("cuda:1").unwrap_err();
        assert!(
            e.contains("no CUDA support") && e.contains("--features cuda"),
            "{e}"
        );
    }
}
