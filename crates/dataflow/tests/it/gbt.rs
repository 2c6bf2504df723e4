//! Gradient-boosted trees: they learn what a linear model cannot (XOR), their class
//! probabilities sum to 1, their outputs do not depend on the thread count, a saved
//! state predicts to the bit, and bad training data is refused by name.

use kf_dataflow::column::ColumnKernel;
use kf_dataflow::nodes::models::{Gbt, GbtParams, LinReg, LinRegParams, Objective};
use kf_dataflow::{DataflowError, Phase, RunContext};
use kf_frame::Frame;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::common::MIN;

const T0: i64 = 1_704_205_860_000_000_000;

/// `rows` rows of `assets` assets with regressors `x1`, `x2` uniform in [-1, 1] and
/// the label `label(x1, x2)`.
fn data(rows: usize, assets: usize, seed: u64, label: impl Fn(f64, f64) -> f64) -> Frame {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let cells = rows * assets;
    let x1: Vec<f64> = (0..cells).map(|_| rng.random_range(-1.0..1.0)).collect();
    let x2: Vec<f64> = (0..cells).map(|_| rng.random_range(-1.0..1.0)).collect();
    let y: Vec<f64> = x1.iter().zip(&x2).map(|(&a, &b)| label(a, b)).collect();
    let ts: Vec<i64> = (0..rows as i64).map(|i| T0 + i * MIN).collect();
    Frame::new(
        ts.clone(),
        ts,
        (0..assets).map(|a| format!("A{a}")).collect(),
        vec![("x1".into(), x1), ("x2".into(), x2), ("y".into(), y)],
    )
    .unwrap()
}

fn xor(a: f64, b: f64) -> f64 {
    if a * b > 0.0 { 1.0 } else { 0.0 }
}

fn params(objective: Objective) -> GbtParams {
    let mut p = GbtParams::new(&["x1", "x2"], "y");
    p.objective = objective;
    p.iterations = 60;
    p.learning_rate = 0.3;
    p.max_depth = 4;
    p
}

fn fit() -> RunContext {
    RunContext::new(Phase::Fit, None)
}

fn predict() -> RunContext {
    RunContext::new(Phase::Predict, None)
}

fn output<'a>(out: &'a [(String, Vec<f64>)], name: &str) -> &'a [f64] {
    &out.iter()
        .find(|(n, _)| n == name)
        .unwrap_or_else(|| panic!("no output `{name}`"))
        .1
}

fn accuracy(p_up: &[f64], truth: &[f64]) -> f64 {
    let hits = p_up
        .iter()
        .zip(truth)
        .filter(|&(&p, &y)| (p >= 0.5) == (y == 1.0))
        .count();
    hits as f64 / truth.len() as f64
}

#[test]
fn trees_learn_xor_where_a_linear_model_is_at_chance() {
    let train = data(2000, 2, 1, xor);
    let test = data(500, 2, 2, xor);
    let truth = test.feature("y").unwrap().values().to_vec();
    let mut gbt = Gbt::new(params(Objective::Binary));
    gbt.compute(&fit(), &train, &[]).unwrap();
    let out = gbt.compute(&predict(), &test, &[]).unwrap();
    let names: Vec<&str> = out.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, ["y.p_0", "y.p_1"]);
    let acc = accuracy(output(&out, "y.p_1"), &truth);
    assert!(acc >= 0.95, "trees' out-of-sample accuracy on XOR: {acc}");
    // The same data through a linear regression (a linear probability model) is at
    // chance: XOR has no linear signal.
    let mut lr = LinReg::new(LinRegParams {
        x_vars: vec!["x1".into(), "x2".into()],
        y_vars: vec!["y".into()],
        steps_ahead: 0,
        alpha: 0.0,
        pooled: true,
        fit_intercept: true,
    });
    lr.compute(&fit(), &train, &[]).unwrap();
    let lin = lr.compute(&predict(), &test, &[]).unwrap();
    let lin_acc = accuracy(output(&lin, "y_hat"), &truth);
    assert!((0.4..0.6).contains(&lin_acc), "linear accuracy {lin_acc}");
    // Importance: both regressors matter, shares sum to 1.
    let imp = &gbt.state().unwrap().importance;
    assert_eq!(imp.len(), 2);
    assert!((imp.iter().sum::<f64>() - 1.0).abs() < 1e-12, "{imp:?}");
    assert!(imp.iter().all(|&s| s > 0.2), "{imp:?}");
}

/// Three classes by the quadrant's sign pattern: -1, 0 or 1.
fn three(a: f64, b: f64) -> f64 {
    match (a > 0.0, b > 0.0) {
        (true, true) => 1.0,
        (false, false) => -1.0,
        _ => 0.0,
    }
}

fn multiclass() -> GbtParams {
    let mut p = params(Objective::Multiclass);
    p.classes = vec![-1.0, 0.0, 1.0];
    p.class_names = vec!["down".into(), "flat".into(), "up".into()];
    p
}

#[test]
fn class_probabilities_sum_to_one_and_pick_the_class() {
    let train = data(1500, 3, 3, three);
    let test = data(300, 3, 4, three);
    let mut gbt = Gbt::new(multiclass());
    gbt.compute(&fit(), &train, &[]).unwrap();
    let out = gbt.compute(&predict(), &test, &[]).unwrap();
    let names: Vec<&str> = out.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, ["y.p_down", "y.p_flat", "y.p_up"]);
    let truth = test.feature("y").unwrap().values();
    let mut hits = 0;
    for c in 0..truth.len() {
        let p: Vec<f64> = out.iter().map(|(_, v)| v[c]).collect();
        let s: f64 = p.iter().sum();
        assert!((s - 1.0).abs() < 1e-12, "cell {c}: {p:?} sums to {s}");
        assert!(p.iter().all(|v| (0.0..=1.0).contains(v)), "{p:?}");
        let best = (0..3).max_by(|&i, &j| p[i].total_cmp(&p[j])).unwrap();
        hits += usize::from([-1.0, 0.0, 1.0][best] == truth[c]);
    }
    let acc = hits as f64 / truth.len() as f64;
    assert!(acc >= 0.95, "3-class accuracy {acc}");
}

#[test]
fn outputs_do_not_depend_on_the_thread_count_and_a_saved_state_predicts_to_the_bit() {
    let train = data(1500, 2, 5, three);
    let test = data(200, 2, 6, three);
    let mut runs = Vec::new();
    for threads in [1, 2] {
        let mut p = multiclass();
        p.threads = threads;
        p.subsample = 0.8; // sampling too must not depend on the threads
        let mut gbt = Gbt::new(p);
        gbt.compute(&fit(), &train, &[]).unwrap();
        let out = gbt.compute(&predict(), &test, &[]).unwrap();
        runs.push((out, gbt.save_state().unwrap()));
    }
    let bits = |o: &[(String, Vec<f64>)]| -> Vec<u64> {
        o.iter()
            .flat_map(|(_, v)| v.iter().map(|x| x.to_bits()))
            .collect()
    };
    assert_eq!(bits(&runs[0].0), bits(&runs[1].0));
    // A node built from the same parameters, given the saved state, predicts the
    // same bits without fitting.
    let mut loaded = Gbt::new(multiclass());
    assert!(matches!(
        loaded.compute(&predict(), &test, &[]),
        Err(DataflowError::NotFitted)
    ));
    loaded.load_state(&runs[0].1).unwrap();
    let again = loaded.compute(&predict(), &test, &[]).unwrap();
    assert_eq!(bits(&again), bits(&runs[0].0));
    assert_eq!(loaded.save_state().unwrap(), runs[0].1);
}

#[test]
fn a_per_asset_model_learns_each_assets_rule() {
    // Asset 0's label is XOR, asset 1's its opposite: pooled they cancel out.
    let mut f = data(1500, 2, 7, xor);
    let y: Vec<f64> = f
        .feature("y")
        .unwrap()
        .values()
        .iter()
        .enumerate()
        .map(|(c, &v)| if c % 2 == 1 { 1.0 - v } else { v })
        .collect();
    f = with(&f, "y", y.clone());
    let mut p = params(Objective::Binary);
    p.pooled = false;
    let mut gbt = Gbt::new(p);
    let out = gbt.compute(&fit(), &f, &[]).unwrap();
    assert!(accuracy(output(&out, "y.p_1"), &y) >= 0.95);
    assert_eq!(gbt.state().unwrap().models.len(), 2);
    // One asset alone predicts as it does among all.
    let one = f.select_assets(&["A1".to_string()]).unwrap();
    let alone = gbt.compute(&predict(), &one, &[]).unwrap();
    let all: Vec<f64> = output(&out, "y.p_1")
        .iter()
        .skip(1)
        .step_by(2)
        .copied()
        .collect();
    assert_eq!(
        output(&alone, "y.p_1")
            .iter()
            .map(|v| v.to_bits())
            .collect::<Vec<_>>(),
        all.iter().map(|v| v.to_bits()).collect::<Vec<_>>()
    );
}

#[test]
fn a_regressor_fits_a_nonlinear_function() {
    let train = data(2000, 1, 8, |a, b| a * a + b.abs());
    let test = data(300, 1, 9, |a, b| a * a + b.abs());
    let mut p = params(Objective::Regression);
    p.iterations = 200;
    let mut gbt = Gbt::new(p);
    gbt.compute(&fit(), &train, &[]).unwrap();
    let out = gbt.compute(&predict(), &test, &[]).unwrap();
    let truth = test.feature("y").unwrap().values();
    let pred = output(&out, "y_hat");
    let rmse = (pred
        .iter()
        .zip(truth)
        .map(|(p, y)| (p - y) * (p - y))
        .sum::<f64>()
        / truth.len() as f64)
        .sqrt();
    // The label's own spread is about 0.38; the trees explain most of it.
    assert!(rmse < 0.08, "rmse {rmse}");
}

/// `f` with feature `name` replaced by `values`.
fn with(f: &Frame, name: &str, values: Vec<f64>) -> Frame {
    let features = f
        .features()
        .iter()
        .map(|n| {
            let v = if n == name {
                values.clone()
            } else {
                f.feature(n).unwrap().values().to_vec()
            };
            (n.clone(), v)
        })
        .collect();
    Frame::new(
        f.end_ts().to_vec(),
        f.knowledge_ts().to_vec(),
        f.assets().to_vec(),
        features,
    )
    .unwrap()
}

#[test]
fn missing_regressors_are_missing_values_and_bad_training_data_is_refused() {
    let train = data(800, 1, 10, xor);
    // NaN in some regressors: learned as missing values, the fit goes on.
    let mut x1 = train.feature("x1").unwrap().values().to_vec();
    for v in x1.iter_mut().step_by(7) {
        *v = f64::NAN;
    }
    let holes = with(&train, "x1", x1);
    let mut gbt = Gbt::new(params(Objective::Binary));
    gbt.compute(&fit(), &holes, &[]).unwrap();
    // A row with every regressor NaN predicts NaN (no data: no forecast).
    let mut blank = data(3, 1, 11, xor);
    blank = with(&blank, "x1", vec![f64::NAN, 0.5, f64::NAN]);
    blank = with(&blank, "x2", vec![f64::NAN, 0.5, 0.5]);
    let out = gbt.compute(&predict(), &blank, &[]).unwrap();
    let p1 = output(&out, "y.p_1");
    assert!(
        p1[0].is_nan() && p1[1].is_finite() && p1[2].is_finite(),
        "{p1:?}"
    );

    // An infinite regressor: named, with its time and asset.
    let mut x2 = train.feature("x2").unwrap().values().to_vec();
    x2[5] = f64::INFINITY;
    let e = Gbt::new(params(Objective::Binary))
        .compute(&fit(), &with(&train, "x2", x2), &[])
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("`x2` is inf") && e.contains("A0") && e.contains("14:36"),
        "{e}"
    );

    // A single class.
    let ones = with(&train, "y", vec![1.0; 800]);
    let e = Gbt::new(params(Objective::Binary))
        .compute(&fit(), &ones, &[])
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("only class [1.0]") && e.contains("at least two"),
        "{e}"
    );

    // A label that is not a class.
    let mut y = train.feature("y").unwrap().values().to_vec();
    y[3] = 2.0;
    let e = Gbt::new(params(Objective::Binary))
        .compute(&fit(), &with(&train, "y", y), &[])
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("label `y` is 2") && e.contains("not one of the classes"),
        "{e}"
    );

    // An empty training window: every label NaN.
    let empty = with(&train, "y", vec![f64::NAN; 800]);
    let e = Gbt::new(params(Objective::Binary))
        .compute(&fit(), &empty, &[])
        .unwrap_err()
        .to_string();
    assert!(e.contains("no rows to learn from"), "{e}");
}

#[test]
fn a_multiclass_fit_missing_a_class_gives_it_probability_zero() {
    // Labels 0 and 1 only, of classes [-1, 0, 1].
    let train = data(800, 1, 12, xor);
    let mut gbt = Gbt::new(multiclass());
    gbt.compute(&fit(), &train, &[]).unwrap();
    let out = gbt.compute(&predict(), &data(50, 1, 13, xor), &[]).unwrap();
    assert!(output(&out, "y.p_down").iter().all(|&p| p == 0.0));
    for c in 0..50 {
        let s = output(&out, "y.p_flat")[c] + output(&out, "y.p_up")[c];
        assert!((s - 1.0).abs() < 1e-12);
    }
}

#[test]
fn a_state_that_does_not_fit_the_node_is_refused() {
    let train = data(500, 2, 14, xor);
    let mut gbt = Gbt::new(params(Objective::Binary));
    gbt.compute(&fit(), &train, &[]).unwrap();
    let state = gbt.save_state().unwrap();
    // Other regressors.
    let mut p = params(Objective::Binary);
    p.x_vars = vec!["x2".into(), "x1".into()];
    let e = Gbt::new(p).load_state(&state).unwrap_err().to_string();
    assert!(e.contains("split on [\"x1\", \"x2\"]"), "{e}");
    // Other classes.
    let e = Gbt::new(multiclass())
        .load_state(&state)
        .unwrap_err()
        .to_string();
    assert!(e.contains("classes [0.0, 1.0]"), "{e}");
    // Pooled trees for a per-asset node.
    let mut p = params(Objective::Binary);
    p.pooled = false;
    let e = Gbt::new(p).load_state(&state).unwrap_err().to_string();
    assert!(e.contains("1 model groups") && e.contains("needs 2"), "{e}");
    // Not a state at all.
    assert!(
        Gbt::new(params(Objective::Binary))
            .load_state(b"junk")
            .is_err()
    );
    // Other assets: refused when predicting, naming the asset.
    let mut loaded = Gbt::new(params(Objective::Binary));
    loaded.load_state(&state).unwrap();
    let other = data(5, 3, 15, xor);
    let e = loaded
        .compute(&predict(), &other, &[])
        .unwrap_err()
        .to_string();
    assert!(e.contains("not on `A2`"), "{e}");
}
