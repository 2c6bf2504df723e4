//! Models: linear regression recovers known coefficients, refuses to predict before
//! fitting, saves and loads its state; the volatility model and the SMA model.

use kf_dataflow::column::{ColumnNode, Columns, NanMode};
use kf_dataflow::nodes::models::{LinReg, LinRegParams, SmaModel, SmaParams, VolModel, VolParams};
use kf_dataflow::nodes::sources::{ArmaParams, FrameSource, arma_frame};
use kf_dataflow::{Dag, DataflowError, Node, Phase, RunContext, RunOptions};
use kf_frame::Frame;

use crate::common::{close, frame, run_kernel, same, series};

const NAN: f64 = f64::NAN;

/// y_{t+1} = 2 + 3 x_t for asset 0 and 1 - x_t for asset 1, exactly.
fn linear_data() -> Frame {
    let xs = [0.5, -1.0, 2.0, 0.0, 1.5, -0.5, 3.0, 1.0];
    let rows: Vec<[f64; 2]> = xs.iter().map(|&x| [x, -x]).collect();
    let f = frame(&rows.iter().map(|r| &r[..]).collect::<Vec<_>>());
    let mut y = vec![NAN; 2 * xs.len()];
    for t in 1..xs.len() {
        y[t * 2] = 2.0 + 3.0 * xs[t - 1];
        y[t * 2 + 1] = 1.0 - (-xs[t - 1]);
    }
    f.with_features(vec![("y".into(), y)]).unwrap()
}

fn linreg(pooled: bool) -> LinReg {
    LinReg::new(LinRegParams {
        x_vars: vec!["x".into()],
        y_vars: vec!["y".into()],
        steps_ahead: 1,
        alpha: 0.0,
        pooled,
        fit_intercept: true,
    })
}

fn one_node(input: Frame, node: Box<dyn Node>) -> Dag {
    let mut dag = Dag::new();
    dag.add_node(Box::new(FrameSource::new("src", input)))
        .unwrap();
    let id = node.id().clone();
    dag.add_node(node).unwrap();
    dag.chain("src", id.as_str()).unwrap();
    dag
}

#[test]
fn linear_regression_recovers_coefficients_per_asset_and_round_trips_its_state() {
    let f = linear_data();
    let mut dag = one_node(
        f.clone(),
        Box::new(ColumnNode::new("lr", Columns::default(), linreg(false))),
    );
    let predict = RunContext::new(Phase::Predict, None);
    let err = dag.run(&predict, &RunOptions::default()).unwrap_err();
    assert!(
        matches!(&err, DataflowError::Node { source, .. } if matches!(**source, DataflowError::NotFitted)),
        "{err}"
    );
    let fit = dag
        .run(&RunContext::new(Phase::Fit, None), &RunOptions::default())
        .unwrap();
    let hat = fit.df_out("lr").unwrap().feature("y_hat").unwrap();
    // Predictions at t are of y at t+1: 2 + 3 x_t and 1 + x_t... for asset 1, x = -x0.
    for (r, row) in hat.rows().enumerate() {
        let x0 = f.feature("x").unwrap().row(r)[0];
        assert!(
            (row[0] - (2.0 + 3.0 * x0)).abs() < 1e-12,
            "row {r}: {row:?}"
        );
        assert!((row[1] - (1.0 + x0)).abs() < 1e-12, "row {r}: {row:?}");
    }
    // Save, load into a fresh node, predict: bit-identical.
    let state = dag.save_states().unwrap();
    let mut fresh = one_node(
        f.clone(),
        Box::new(ColumnNode::new("lr", Columns::default(), linreg(false))),
    );
    fresh.load_states(&state).unwrap();
    let a = dag.run(&predict, &RunOptions::default()).unwrap();
    let b = fresh.run(&predict, &RunOptions::default()).unwrap();
    assert!(a.df_out("lr").unwrap().bit_eq(b.df_out("lr").unwrap()));
    // A state that is not one, or one of another shape, is refused with the node named.
    let mut bad = state.clone();
    bad.insert("lr".into(), vec![1, 2, 3]);
    let err = fresh.load_states(&bad).unwrap_err().to_string();
    assert!(err.contains("lr") && err.contains("state"), "{err}");
    let mut stateless = state.clone();
    stateless.insert("src".into(), vec![0]);
    assert!(
        fresh
            .load_states(&stateless)
            .unwrap_err()
            .to_string()
            .contains("takes no state")
    );
}

#[test]
fn pooled_regression_fits_one_line_through_both_assets() {
    // Pooled over both assets, y = a + b x has no exact fit; check against the
    // normal equations solved by hand on the pooled sums.
    let f = linear_data();
    let mut lr = linreg(true);
    let out = run_kernel_fit(f.clone(), &mut lr);
    let (mut n, mut sx, mut sy, mut sxx, mut sxy) = (0.0, 0.0, 0.0, 0.0, 0.0);
    let x = f.feature("x").unwrap();
    let y = f.feature("y").unwrap();
    for r in 0..f.n_rows() - 1 {
        for a in 0..2 {
            let (xv, yv) = (x.row(r)[a], y.row(r + 1)[a]);
            n += 1.0;
            sx += xv;
            sy += yv;
            sxx += xv * xv;
            sxy += xv * yv;
        }
    }
    let b = (n * sxy - sx * sy) / (n * sxx - sx * sx);
    let a = (sy - b * sx) / n;
    let coefs = &lr.state().unwrap().coefs[0][0];
    assert!(
        (coefs[0] - a).abs() < 1e-12 && (coefs[1] - b).abs() < 1e-12,
        "{coefs:?} vs {a} {b}"
    );
    assert_eq!(out.feature("y_hat").unwrap().row(0)[1], a + b * x.row(0)[1]);
}

fn run_kernel_fit(f: Frame, lr: &mut LinReg) -> Frame {
    use kf_dataflow::column::ColumnKernel;
    let cols: Vec<usize> = vec![];
    let ctx = RunContext::new(Phase::Fit, None);
    let new = lr.compute(&ctx, &f, &cols).unwrap();
    f.with_features(new).unwrap()
}

#[test]
fn volatility_model_emits_vol_and_vol_adjusted_returns() {
    let f = frame(&[&[1.0], &[-1.0], &[NAN], &[2.0]]);
    let p = VolParams {
        tau: 1.0,
        p_moment: 2.0,
        steps_ahead: 1,
        nan_mode: NanMode::Drop,
    };
    let out = run_kernel(f, Columns::default(), VolModel::new(p));
    let d = (-1.0f64).exp();
    let v0 = 1.0;
    let v1 = ((1.0 + d * 1.0) / (1.0 + d)).sqrt();
    let v3 = ((4.0 + d * 1.0 + d * d * 1.0) / (1.0 + d + d * d)).sqrt();
    assert!(close(&series(&out, "x.vol", 0), &[v0, v1, NAN, v3], 1e-15));
    assert!(close(
        &series(&out, "x.vol_adj", 0),
        &[NAN, -1.0 / v0, NAN, 2.0 / v1],
        1e-15
    ));
}

#[test]
fn sma_model_learns_a_short_tau_on_a_persistent_series_and_a_long_one_on_noise() {
    let learn = |ar: f64| {
        let f = arma_frame(&ArmaParams {
            assets: 3,
            bars: 2000,
            ar: vec![ar],
            scale: 1.0,
            seed: 7,
            col: "x".into(),
            ..ArmaParams::default()
        })
        .unwrap();
        let mut dag = one_node(
            f,
            Box::new(ColumnNode::new(
                "sma",
                Columns::default(),
                SmaModel::new(SmaParams::default()),
            )),
        );
        dag.run(&RunContext::new(Phase::Fit, None), &RunOptions::default())
            .unwrap();
        let state = dag.save_states().unwrap();
        postcard::from_bytes::<f64>(&state[&"sma".into()]).unwrap()
    };
    // A random walk-like AR(0.99): the last value is the best forecast (tau near 1).
    // White noise: the best forecast is the long-run mean (tau large).
    let (short, long) = (learn(0.99), learn(0.0));
    assert!(short < 2.0, "tau {short}");
    assert!(long > 100.0, "tau {long}");
}

#[test]
fn arma_source_is_seeded_and_follows_its_recursion() {
    let p = ArmaParams {
        assets: 2,
        bars: 50,
        ar: vec![0.5],
        ma: vec![0.25],
        seed: 3,
        ..ArmaParams::default()
    };
    let a = arma_frame(&p).unwrap();
    assert!(a.bit_eq(&arma_frame(&p).unwrap()));
    assert!(
        !a.bit_eq(
            &arma_frame(&ArmaParams {
                seed: 4,
                ..p.clone()
            })
            .unwrap()
        )
    );
    // Recover the innovations from x and check the recursion x_t = 0.5 x_{t-1} + e_t + 0.25 e_{t-1}.
    let x: Vec<f64> = a.feature("ret").unwrap().asset(1).collect();
    let mut e = vec![x[0]];
    for t in 1..x.len() {
        e.push(x[t] - 0.5 * x[t - 1] - 0.25 * e[t - 1]);
    }
    let sd = (e.iter().map(|v| v * v).sum::<f64>() / e.len() as f64).sqrt();
    assert!((sd - 0.01).abs() < 0.003, "innovation sd {sd}");
    assert!(same(&[a.n_rows() as f64], &[50.0]));
}

#[test]
fn a_per_asset_regression_predicts_any_subset_of_its_assets_as_it_predicts_all() {
    // Fitted on both assets, asked to predict for asset 1 alone (as an asset tile
    // does): each asset keeps its own coefficients, so the subset's predictions are
    // the full run's, bit for bit (the old check refused any other asset list).
    let f = linear_data();
    let mut dag = one_node(
        f.clone(),
        Box::new(ColumnNode::new("lr", Columns::default(), linreg(false))),
    );
    dag.run(&RunContext::new(Phase::Fit, None), &RunOptions::default())
        .unwrap();
    let state = dag.save_states().unwrap();
    let all = dag
        .run(
            &RunContext::new(Phase::Predict, None),
            &RunOptions::default(),
        )
        .unwrap();
    let second = f.assets()[1].clone();
    let mut tile = one_node(
        f.select_assets(&[second.as_str()]).unwrap(),
        Box::new(ColumnNode::new("lr", Columns::default(), linreg(false))),
    );
    tile.load_states(&state).unwrap();
    let sub = tile
        .run(
            &RunContext::new(Phase::Predict, None),
            &RunOptions::default(),
        )
        .unwrap();
    let expected = all
        .df_out("lr")
        .unwrap()
        .select_assets(&[second.as_str()])
        .unwrap();
    assert!(expected.bit_eq(sub.df_out("lr").unwrap()));
    // Its predictions are still 1 + x0 (asset 1's own line), by hand.
    let hat = sub.df_out("lr").unwrap().feature("y_hat").unwrap();
    for (r, row) in hat.rows().enumerate() {
        let x0 = f.feature("x").unwrap().row(r)[0];
        assert!((row[0] - (1.0 + x0)).abs() < 1e-12, "row {r}: {row:?}");
    }
    // An asset it never saw has no coefficients: refused, naming the asset.
    let other = f.select_assets(&[second.as_str()]).unwrap();
    let renamed = Frame::new(
        other.end_ts().to_vec(),
        other.knowledge_ts().to_vec(),
        vec!["ZZZ".to_string()],
        (0..other.n_features())
            .map(|i| {
                (
                    other.features()[i].clone(),
                    other.feature_at(i).values().to_vec(),
                )
            })
            .collect(),
    )
    .unwrap();
    let mut unseen = one_node(
        renamed,
        Box::new(ColumnNode::new("lr", Columns::default(), linreg(false))),
    );
    unseen.load_states(&state).unwrap();
    let e = unseen
        .run(
            &RunContext::new(Phase::Predict, None),
            &RunOptions::default(),
        )
        .unwrap_err()
        .to_string();
    assert!(e.contains("`ZZZ`") && e.contains("fitted on"), "{e}");
}

#[test]
fn a_fit_at_a_decision_time_learns_only_from_targets_known_by_then() {
    // y is a forward target 2 rows ahead (a `shift` of -2 declares it): a fit that
    // decides at row 5's knowledge time may learn from rows whose target row (r + 1
    // for steps_ahead, + 2 for the target) is known by then, so rows 0..=2 only.
    // Fitted on those rows alone (no decision time, data cut to rows 0..=5 and the
    // later targets blanked), the coefficients must be the same.
    use kf_dataflow::column::ColumnKernel;
    use kf_dataflow::{Target, Targets};
    // The exact lines of `linear_data`, plus noise, so that which rows a fit uses
    // shows in its coefficients.
    let exact = linear_data();
    let noise = [0.0, 0.1, -0.2, 0.05, 0.3, -0.1, 0.2, -0.3];
    let noisy: Vec<f64> = exact
        .feature("y")
        .unwrap()
        .values()
        .iter()
        .enumerate()
        .map(|(i, v)| v + noise[i / 2] * if i % 2 == 0 { 1.0 } else { -0.5 })
        .collect();
    let f = exact
        .select_features(&["x"])
        .unwrap()
        .with_features(vec![("y".into(), noisy)])
        .unwrap();
    let decision = f.knowledge_ts()[5];
    let targets: Targets = [(
        "y".to_string(),
        Target {
            node: "fwd".into(),
            horizon: 2,
        },
    )]
    .into_iter()
    .collect();
    let ctx = RunContext {
        targets: Some(std::sync::Arc::new(targets)),
        ..RunContext::new(Phase::Fit, None).deciding_at(decision)
    };
    let mut a = linreg(false);
    let input = f.slice(0, 6).unwrap();
    a.compute(&ctx, &input, &[]).unwrap();
    // By hand: rows r with r + 1 + 2 <= 5 are 0, 1, 2; their targets y[r + 1].
    let y = f.feature("y").unwrap().values().to_vec();
    let mut blank = y.clone();
    for v in blank.iter_mut().skip(4 * 2) {
        *v = NAN;
    }
    let cut = f
        .select_features(&["x"])
        .unwrap()
        .with_features(vec![("y".into(), blank)])
        .unwrap()
        .slice(0, 6)
        .unwrap();
    let mut b = linreg(false);
    b.compute(&RunContext::new(Phase::Fit, None), &cut, &[])
        .unwrap();
    assert_eq!(a.state(), b.state());
    // Without the decision time the fit uses row 3 and 4's targets as well.
    let mut c = linreg(false);
    c.compute(&RunContext::new(Phase::Fit, None), &input, &[])
        .unwrap();
    assert_ne!(a.state(), c.state());
}
