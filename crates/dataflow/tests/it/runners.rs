//! Runners: rolling walk-forward is out of sample, cross-validation folds with purge
//! and embargo, and a fitted DAG saved to a folder predicts bit-identically.

use kf_dataflow::column::{ColumnNode, Columns};
use kf_dataflow::nodes::models::{LinReg, LinRegParams};
use kf_dataflow::nodes::sources::FrameSource;
use kf_dataflow::runner::{
    CrossValidation, Fold, Rolling, cross_validate, fit_predict, folds, load_states, rolling,
    save_states,
};
use kf_dataflow::{Dag, RunOptions};
use kf_frame::Frame;

use crate::common::MIN;

/// One asset; x_t = sin(t) + 2, y_t = b x_{t-1} with b = 1 for t < switch, 5 after.
fn regime_data(n: usize, switch: usize) -> Frame {
    let x: Vec<f64> = (0..n).map(|t| (t as f64).sin() + 2.0).collect();
    let y: Vec<f64> = (0..n)
        .map(|t| {
            if t == 0 {
                f64::NAN
            } else if t < switch {
                x[t - 1]
            } else {
                5.0 * x[t - 1]
            }
        })
        .collect();
    let ts: Vec<i64> = (0..n as i64).map(|i| (i + 1) * MIN).collect();
    Frame::new(
        ts.clone(),
        ts,
        vec!["A".into()],
        vec![("x".into(), x), ("y".into(), y)],
    )
    .unwrap()
}

fn model_dag(f: Frame) -> Dag {
    let mut dag = Dag::new();
    dag.add_node(Box::new(FrameSource::new("src", f))).unwrap();
    let p = LinRegParams {
        x_vars: vec!["x".into()],
        y_vars: vec!["y".into()],
        steps_ahead: 1,
        alpha: 0.0,
        pooled: false,
        fit_intercept: false,
    };
    dag.append_to_tail(Box::new(ColumnNode::new(
        "lr",
        Columns::default(),
        LinReg::new(p),
    )))
    .unwrap();
    dag
}

#[test]
fn rolling_walk_forward_predicts_out_of_sample() {
    let f = regime_data(100, 50);
    let mut dag = model_dag(f.clone());
    let mut calls = Vec::new();
    let r = Rolling {
        start: 20 * MIN,
        end: 100 * MIN,
        retraining_freq: 10 * MIN,
        retraining_lookback: 15 * MIN,
    };
    let out = rolling(&mut dag, r, &RunOptions::default(), &mut |d, n| {
        calls.push((d, n))
    })
    .unwrap();
    assert_eq!(calls.last(), Some(&(8, 8)));
    // Bars 21..=100 minutes, each predicted once.
    assert_eq!(out.frame.n_rows(), 80);
    assert_eq!(out.frame.end_ts()[0], 21 * MIN);
    let hat: Vec<f64> = out.frame.feature("y_hat").unwrap().asset(0).collect();
    let x = f.feature("x").unwrap().values().to_vec();
    // Row for minute m is index m - 1 in `x`; the prediction made at t is of y_{t+1} = b x_t.
    for (i, &t) in out.frame.end_ts().iter().enumerate() {
        let m = (t / MIN) as usize;
        let fit_end = ((m - 1) / 10) * 10; // the last refit at or before m - 1 (minutes)
        // The fit at `fit_end` saw targets y up to minute fit_end: regime 5 only when
        // every training target is past the switch (index 50, minute 51).
        let b_expected = if fit_end <= 50 {
            Some(1.0)
        } else if fit_end - 15 >= 50 {
            Some(5.0)
        } else {
            None
        };
        if let Some(b) = b_expected {
            assert!(
                (hat[i] - b * x[m - 1]).abs() < 1e-9,
                "minute {m}: {} vs {}",
                hat[i],
                b * x[m - 1]
            );
        }
    }
    // The first out-of-sample minute after the switch still uses the old regime: no peeking.
    let at = |m: i64| {
        out.frame
            .end_ts()
            .iter()
            .position(|&t| t == m * MIN)
            .unwrap()
    };
    assert!((hat[at(51)] - x[50]).abs() < 1e-9);
    assert!((hat[at(81)] - 5.0 * x[80]).abs() < 1e-9);
}

#[test]
fn folds_purge_and_embargo_by_hand() {
    let cv = CrossValidation {
        start: 0,
        end: 99,
        folds: 4,
        purge: 5,
        embargo: 3,
    };
    let f = folds(&cv).unwrap();
    assert_eq!(
        f[0],
        Fold {
            test: (0, 24),
            train: vec![(28, 99)]
        }
    );
    assert_eq!(
        f[1],
        Fold {
            test: (25, 49),
            train: vec![(0, 19), (53, 99)]
        }
    );
    assert_eq!(
        f[3],
        Fold {
            test: (75, 99),
            train: vec![(0, 69)]
        }
    );
    assert!(folds(&CrossValidation { folds: 1, ..cv }).is_err());
    assert!(folds(&CrossValidation { purge: -1, ..cv }).is_err());
}

#[test]
fn cross_validation_is_out_of_sample_on_every_fold() {
    // One regime throughout: every fold's out-of-sample prediction is exact.
    let f = regime_data(120, 1000);
    let mut dag = model_dag(f.clone());
    let cv = CrossValidation {
        start: MIN,
        end: 120 * MIN,
        folds: 3,
        purge: 2 * MIN,
        embargo: MIN,
    };
    let (out, folds) =
        cross_validate(&mut dag, cv, &RunOptions::default(), &mut |_, _| {}).unwrap();
    assert_eq!(folds.len(), 3);
    assert_eq!(out.frame.n_rows(), 120);
    let hat: Vec<f64> = out.frame.feature("y_hat").unwrap().asset(0).collect();
    let x = f.feature("x").unwrap().values();
    assert!(hat.iter().zip(x).all(|(h, x)| (h - x).abs() < 1e-9));
    // With two regimes, the test fold of the second regime is predicted from a fit
    // that mixes them: not exact, which shows the fold's own rows were left out.
    let g = regime_data(120, 80);
    let mut dag = model_dag(g.clone());
    let (out, _) = cross_validate(&mut dag, cv, &RunOptions::default(), &mut |_, _| {}).unwrap();
    let hat: Vec<f64> = out.frame.feature("y_hat").unwrap().asset(0).collect();
    let xg = g.feature("x").unwrap().values();
    assert!((hat[100] - 5.0 * xg[100]).abs() > 1e-3);
}

#[test]
fn a_fitted_dag_saved_to_a_folder_predicts_bit_identically() {
    let f = regime_data(60, 30);
    let mut dag = model_dag(f.clone());
    let a = fit_predict(
        &mut dag,
        Some((MIN, 40 * MIN)),
        Some((41 * MIN, 60 * MIN)),
        &RunOptions::default(),
    )
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    assert_eq!(save_states(&dag, dir.path()).unwrap(), 1);
    let mut fresh = model_dag(f);
    assert_eq!(load_states(&mut fresh, dir.path()).unwrap(), 1);
    let b = fit_predict(
        &mut fresh,
        None,
        Some((41 * MIN, 60 * MIN)),
        &RunOptions::default(),
    )
    .unwrap();
    assert!(a.frame.bit_eq(&b.frame));
    // A corrupt state file is refused, naming the node.
    std::fs::write(dir.path().join("state/lr.bin"), b"garbage").unwrap();
    let e = load_states(&mut model_dag(regime_data(10, 5)), dir.path())
        .unwrap_err()
        .to_string();
    assert!(e.contains("lr") && e.contains("linear_regression"), "{e}");
}
