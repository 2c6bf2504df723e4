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
