//! Every node of the library on small inputs with values checked by hand, including
//! NaN handling and gaps (missing bars).

use kf_dataflow::column::{ColMode, Columns, NanMode};
use kf_dataflow::nodes::cross_section::{
    CrossSection, CrossSectionParams, CrossSectional, normal_quantile,
};
use kf_dataflow::nodes::filters::{ActiveHours, Weekends};
use kf_dataflow::nodes::returns::{RetMode, RetParams, Returns};
use kf_dataflow::nodes::smooth::{Ema, EmaParams, Rolling, RollingParams, Stat};
use kf_dataflow::nodes::transforms::{
    Clip, ClipParams, Combine, CombineParams, Compress, CompressParams, LagParams, Lags, Operation,
    WeightedSum, WeightedSumParams,
};
use kf_frame::{Frame, Timestamp};

use crate::common::{MIN, close, frame, run_kernel, same, series};

const NAN: f64 = f64::NAN;

fn all() -> Columns {
    Columns::default()
}

#[test]
fn returns_in_three_modes_with_a_missing_bar() {
    let f = frame(&[&[100.0], &[110.0], &[NAN], &[121.0], &[0.0]]);
    let pct = |mode, nan_mode| {
        let k = Returns::new(RetParams {
            mode,
            nan_mode,
            ..RetParams::default()
        });
        series(&run_kernel(f.clone(), all(), k), "x.ret_0", 0)
    };
    assert!(same(
        &pct(RetMode::PctChange, NanMode::Keep),
        &[NAN, 110.0 / 100.0 - 1.0, NAN, NAN, -1.0]
    ));
    assert!(same(
        &pct(RetMode::Diff, NanMode::Keep),
        &[NAN, 10.0, NAN, NAN, -121.0]
    ));
    // Log of 0 is -inf: not finite, so NaN.
    assert!(same(
        &pct(RetMode::LogRets, NanMode::Keep),
        &[NAN, 110f64.ln() - 100f64.ln(), NAN, NAN, NAN]
    ));
    // `drop` bridges the gap: 121 against 110.
    assert!(same(
        &pct(RetMode::Diff, NanMode::Drop),
        &[NAN, 10.0, NAN, 11.0, -121.0]
    ));
}

#[test]
fn ema_matches_the_adjusted_weighted_mean_and_skips_nan() {
    let tau = 2.0;
    let f = frame(&[&[1.0], &[NAN], &[2.0], &[4.0]]);
    let k = Ema::new(EmaParams {
        tau,
        min_periods: 2,
        ..EmaParams::default()
    });
    let out = series(&run_kernel(f, all(), k), "x.ema", 0);
    // Weights (1 - alpha)^i on present values, newest first, alpha = 1 - exp(-1/tau).
    let d = (-1.0f64 / tau).exp();
    let e2 = (2.0 + d * 1.0) / (1.0 + d);
    let e3 = (4.0 + d * 2.0 + d * d * 1.0) / (1.0 + d + d * d);
    assert!(close(&out, &[NAN, NAN, e2, e3], 1e-15), "{out:?}");
    // com = 1 / (exp(1/tau) - 1) gives alpha = 1 / (1 + com), the same decay.
    let com = 1.0 / ((1.0 / tau).exp() - 1.0);
    assert!((1.0 - 1.0 / (1.0 + com) - d).abs() < 1e-15);
}

#[test]
fn ema_depth_two_is_the_ema_of_the_ema() {
    let f = frame(&[&[1.0], &[3.0], &[2.0]]);
    let once = series(
        &run_kernel(
            f.clone(),
            all(),
            Ema::new(EmaParams {
                tau: 3.0,
                ..EmaParams::default()
            }),
        ),
        "x.ema",
        0,
    );
    let g = frame(&[&[once[0]], &[once[1]], &[once[2]]]);
    let twice = series(
        &run_kernel(
            g,
            all(),
            Ema::new(EmaParams {
                tau: 3.0,
                ..EmaParams::default()
            }),
        ),
        "x.ema",
        0,
    );
    let deep = series(
        &run_kernel(
            f,
            all(),
            Ema::new(EmaParams {
                tau: 3.0,
                depth: 2,
                ..EmaParams::default()
            }),
        ),
        "x.ema",
        0,
    );
    assert!(same(&deep, &twice));
}

#[test]
fn rolling_statistics_by_hand() {
    let f = frame(&[&[1.0], &[2.0], &[NAN], &[4.0], &[7.0]]);
    let roll = |stat, nan_mode, ddof| {
        let p = RollingParams {
            window: 3,
            stat,
            min_periods: Some(2),
            ddof,
            nan_mode,
            ..RollingParams::default()
        };
        let out = run_kernel(f.clone(), all(), Rolling::new(p));
        let name = out.features()[1].clone();
        series(&out, &name, 0)
    };
    // Rows: windows {1}, {1,2}, {1,2,NaN}, {2,NaN,4}, {NaN,4,7}.
    assert!(same(
        &roll(Stat::Mean, NanMode::Keep, 1),
        &[NAN, 1.5, 1.5, 3.0, 5.5]
    ));
    assert!(same(
        &roll(Stat::Sum, NanMode::Keep, 1),
        &[NAN, 3.0, 3.0, 6.0, 11.0]
    ));
    assert!(close(
        &roll(Stat::Var, NanMode::Keep, 1),
        &[NAN, 0.5, 0.5, 2.0, 4.5],
        1e-15
    ));
    assert!(close(
        &roll(Stat::Std, NanMode::Keep, 0),
        &[NAN, 0.5, 0.5, 1.0, 1.5],
        1e-15
    ));
    assert!(close(
        &roll(Stat::Norm, NanMode::Keep, 1),
        &[
            NAN,
            2.5f64.sqrt(),
            2.5f64.sqrt(),
            10f64.sqrt(),
            32.5f64.sqrt()
        ],
        1e-15
    ));
    // z-score of the newest value in its window: (7 - 5.5) / std{4, 7} (ddof 1).
    let z = roll(Stat::Zscore, NanMode::Keep, 1);
    assert!((z[4] - 1.5 / 4.5f64.sqrt()).abs() < 1e-15);
    assert!(z[2].is_nan(), "the newest value is missing");
    // `drop`: windows over present values {1}, {1,2}, -, {1,2,4}, {2,4,7}.
    assert!(close(
        &roll(Stat::Mean, NanMode::Drop, 1),
        &[NAN, 1.5, NAN, 7.0 / 3.0, 13.0 / 3.0],
        1e-15
    ));
}

#[test]
fn rolling_burn_in_blanks_the_first_values() {
    let f = frame(&[&[NAN], &[1.0], &[3.0], &[NAN], &[2.0]]);
    let p = RollingParams {
        window: 2,
        stat: Stat::Std,
        ddof: 0,
        burn_in: 2,
        nan_mode: NanMode::Drop,
        suffix: Some(".vol".into()),
        ..RollingParams::default()
    };
    let out = series(&run_kernel(f, all(), Rolling::new(p)), "x.vol", 0);
    // Present values 1, 3, 2: the first two give NaN, then |2 - 3| / 2.
    assert!(same(&out, &[NAN, NAN, NAN, NAN, 0.5]));
}

#[test]
fn lags_count_rows_or_present_values() {
    let f = frame(&[&[1.0], &[NAN], &[3.0], &[4.0]]);
    let keep = run_kernel(
        f.clone(),
        all(),
        Lags::new(LagParams {
            num_lags: 2,
            first_lag: 1,
            nan_mode: NanMode::Keep,
        }),
    );
    assert_eq!(keep.features(), ["x", "x.lag1", "x.lag2"]);
    assert!(same(&series(&keep, "x.lag1", 0), &[NAN, 1.0, NAN, 3.0]));
    assert!(same(&series(&keep, "x.lag2", 0), &[NAN, NAN, 1.0, NAN]));
    let drop = run_kernel(
        f,
        all(),
        Lags::new(LagParams {
            num_lags: 2,
            first_lag: 0,
            nan_mode: NanMode::Drop,
        }),
    );
    assert!(same(&series(&drop, "x.lag0", 0), &[1.0, NAN, 3.0, 4.0]));
    assert!(same(&series(&drop, "x.lag1", 0), &[NAN, NAN, 1.0, 3.0]));
}

fn two(a: &[f64], b: &[f64]) -> Frame {
    let f = frame(&a.iter().map(std::slice::from_ref).collect::<Vec<_>>());
    f.with_features(vec![("y".into(), b.to_vec())]).unwrap()
}

#[test]
fn combine_columns_with_delays_and_division_by_zero() {
    let f = two(&[1.0, 2.0, NAN, 8.0, 6.0], &[1.0, 0.0, 5.0, 2.0, 3.0]);
    let comb = |operation, term2_delay, nan_mode| {
        let p = CombineParams {
            term1: "x".into(),
            term2: "y".into(),
            operation,
            term1_delay: 0,
            term2_delay,
            out_col: "z".into(),
            nan_mode,
        };
        series(&run_kernel(f.clone(), all(), Combine::new(p)), "z", 0)
    };
    assert!(same(
        &comb(Operation::Add, 0, NanMode::Keep),
        &[2.0, 2.0, NAN, 10.0, 9.0]
    ));
    assert!(same(
        &comb(Operation::Sub, 0, NanMode::Keep),
        &[0.0, 2.0, NAN, 6.0, 3.0]
    ));
    assert!(same(
        &comb(Operation::Mul, 0, NanMode::Keep),
        &[1.0, 0.0, NAN, 16.0, 18.0]
    ));
    // 2 / 0 is infinite: NaN.
    assert!(same(
        &comb(Operation::Div, 0, NanMode::Keep),
        &[1.0, NAN, NAN, 4.0, 2.0]
    ));
    // x_t / y_{t-1} by rows.
    assert!(same(
        &comb(Operation::Div, 1, NanMode::Keep),
        &[NAN, 2.0, NAN, 8.0 / 5.0, 3.0]
    ));
    // By rows where both are present (rows 0, 1, 3, 4): 8 / y(row 1) = inf -> NaN, 6 / 2.
    assert!(same(
        &comb(Operation::Div, 1, NanMode::Drop),
        &[NAN, 2.0, NAN, NAN, 3.0]
    ));
}

#[test]
fn compress_clip_and_weighted_sum() {
    let f = two(&[0.0, 40.0, -2.0, NAN], &[1.0, 2.0, 3.0, 4.0]);
    let c = run_kernel(
        f.clone(),
        Columns {
            cols: vec!["x".into()],
            col_mode: ColMode::Append,
        },
        Compress(CompressParams {
            scale: 4.0,
            suffix: ".c".into(),
        }),
    );
    assert!(same(
        &series(&c, "x.c", 0),
        &[0.0, 4.0 * 10f64.tanh(), 4.0 * (-0.5f64).tanh(), NAN]
    ));
    let k = run_kernel(
        f.clone(),
        Columns {
            cols: vec!["x".into()],
            col_mode: ColMode::ReplaceSelected,
        },
        Clip(ClipParams {
            lower: Some(-1.0),
            upper: Some(5.0),
            suffix: String::new(),
        }),
    );
    assert_eq!(k.features(), ["y", "x"]);
    assert!(same(&series(&k, "x", 0), &[0.0, 5.0, -1.0, NAN]));
    let weights = [("x".to_string(), 0.5), ("y".to_string(), -2.0)]
        .into_iter()
        .collect();
    let w = run_kernel(
        f,
        all(),
        WeightedSum(WeightedSumParams {
            weights,
            out_col: "s".into(),
        }),
    );
    assert!(same(&series(&w, "s", 0), &[-2.0, 16.0, -7.0, NAN]));
}

#[test]
fn cross_sectional_demean_and_ranks() {
    let f = frame(&[&[1.0, 2.0, NAN, 6.0], &[3.0, 3.0, 1.0, 5.0]]);
    let dm = run_kernel(
        f.clone(),
        all(),
        CrossSectional::new(CrossSection::Demean, CrossSectionParams::default()),
    );
    let v = dm.feature("x.demean").unwrap();
    assert!(same(v.row(0), &[-2.0, -1.0, NAN, 3.0]));
    assert!(same(v.row(1), &[0.0, 0.0, -2.0, 2.0]));
    let ur = run_kernel(
        f.clone(),
        all(),
        CrossSectional::new(CrossSection::UniformRank, CrossSectionParams::default()),
    );
    let v = ur.feature("x.uniform_rank").unwrap();
    // Row 0: ranks 1, 2, -, 3 of n = 3; row 1: ties 3, 3 share rank 2.5.
    assert!(close(
        v.row(0),
        &[0.5 / 3.0, 1.5 / 3.0, NAN, 2.5 / 3.0],
        1e-15
    ));
    assert!(close(
        v.row(1),
        &[2.0 / 4.0, 2.0 / 4.0, 0.5 / 4.0, 3.5 / 4.0],
        1e-15
    ));
    let gr = run_kernel(
        f,
        all(),
        CrossSectional::new(CrossSection::GaussianRank, CrossSectionParams::default()),
    );
    let v = gr.feature("x.gaussian_rank").unwrap();
    assert_eq!(v.row(1)[0], 0.0);
    // Published standard normal quantiles: z(0.875) = 1.1503493803760079, z(0.025) = -1.959963984540054.
    assert!((v.row(1)[3] - 1.1503493803760079).abs() < 1e-13);
    assert!((normal_quantile(0.025) + 1.959963984540054).abs() < 1e-13);
    assert!((normal_quantile(1e-10) + 6.361340902404056).abs() < 1e-10);
}

#[test]
fn active_hours_and_weekends_blank_values_but_keep_rows() {
    // 2024-01-05 is a Friday; New York is UTC-5 in January.
    let ts: Vec<i64> = [
        "2024-01-05 14:30",
        "2024-01-05 14:31",
        "2024-01-05 21:00",
        "2024-01-05 21:01",
        "2024-01-06 15:00",
    ]
    .iter()
    .map(|s| Timestamp::parse(s).unwrap().nanos())
    .collect();
    let f = Frame::new(
        ts.clone(),
        ts,
        vec!["A".into()],
        vec![("x".into(), vec![1.0, 2.0, 3.0, 4.0, 5.0])],
    )
    .unwrap();
    let keep = Columns {
        cols: vec![],
        col_mode: ColMode::ReplaceSelected,
    };
    let ath = run_kernel(
        f.clone(),
        keep.clone(),
        ActiveHours::new("09:30", "16:00", "America/New_York").unwrap(),
    );
    assert_eq!(ath.n_rows(), 5);
    // 09:30 is out (start exclusive), 09:31 in, 16:00 in (end inclusive), 16:01 out;
    // Saturday 10:00 is inside the hours (weekends are another filter).
    assert!(same(&series(&ath, "x", 0), &[NAN, 2.0, 3.0, NAN, 5.0]));
    let we = run_kernel(f, keep, Weekends::new("America/New_York").unwrap());
    assert!(same(&series(&we, "x", 0), &[1.0, 2.0, 3.0, 4.0, NAN]));
    assert!(ActiveHours::new("16:00", "09:30", "UTC").is_err());
    assert!(ActiveHours::new("09:30", "16:00", "Mars/Olympus").is_err());
}

#[test]
fn knowledge_time_of_a_node_with_memory_is_the_running_max() {
    let t0 = Timestamp::parse("2024-01-02 14:31").unwrap().nanos();
    let ts = vec![t0, t0 + MIN, t0 + 2 * MIN];
    // The first row arrived late.
    let kt = vec![t0 + 5 * MIN, t0 + MIN, t0 + 2 * MIN];
    let f = Frame::new(
        ts,
        kt,
        vec!["A".into()],
        vec![("x".into(), vec![1.0, 2.0, 3.0])],
    )
    .unwrap();
    let lagged = run_kernel(f.clone(), all(), Lags::new(LagParams::default()));
    assert_eq!(lagged.knowledge_ts(), [t0 + 5 * MIN; 3]);
    let c = run_kernel(f.clone(), all(), Compress(CompressParams::default()));
    assert_eq!(
        c.knowledge_ts(),
        f.knowledge_ts(),
        "a row-wise node keeps each row's own"
    );
}

#[test]
fn a_filter_with_nothing_to_filter_passes_its_input_on_unchanged() {
    let f = frame(&[&[1.0, 2.0], &[3.0, NAN]]);
    let keep = Columns {
        cols: vec![],
        col_mode: ColMode::ReplaceSelected,
    };
    let out = run_kernel(
        f.clone(),
        keep,
        ActiveHours::new("09:30", "16:00", "America/New_York").unwrap(),
    );
    assert!(out.bit_eq(&f));
    // The same buffer, not a copy.
    assert_eq!(
        out.feature("x").unwrap().values().as_ptr(),
        f.feature("x").unwrap().values().as_ptr()
    );
}
