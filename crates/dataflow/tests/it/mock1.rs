//! Mock1 on KaizenFlow's own test input reproduces its published output:
//! `prediction` = +-0.570171 from 10:15 New York time on.

use kf_dataflow::mock1::{Mock1Params, dag};
use kf_dataflow::nodes::sources::FrameSource;
use kf_dataflow::{Phase, RunContext, RunOptions};
use kf_frame::{Frame, Timestamp};

use crate::common::MIN;

/// Two assets, 160 one-minute bars from 2000-01-01 14:31 to 17:10 UTC: `close`
/// alternating 101.0 five times and 100.0 five times, `volume` = 0, 1, ..., 159,
/// `feature1` alternating +1 five times and -1 five times.
fn kaizenflow_input(with_feature1: bool) -> Frame {
    let t0 = Timestamp::parse("2000-01-01 14:31").unwrap().nanos();
    let ts: Vec<i64> = (0..160).map(|i| t0 + i * MIN).collect();
    assert_eq!(
        ts[159],
        Timestamp::parse("2000-01-01 17:10").unwrap().nanos()
    );
    let per_bar =
        |f: &dyn Fn(i64) -> f64| -> Vec<f64> { (0..160).flat_map(|i| [f(i), f(i)]).collect() };
    let close = per_bar(&|i| if (i / 5) % 2 == 0 { 101.0 } else { 100.0 });
    let volume = per_bar(&|i| i as f64);
    let feature1 = per_bar(&|i| if (i / 5) % 2 == 0 { 1.0 } else { -1.0 });
    let mut features = vec![("close".to_string(), close), ("volume".to_string(), volume)];
    if with_feature1 {
        features.push(("feature1".to_string(), feature1));
    }
    Frame::new(ts.clone(), ts, vec!["MN0".into(), "MN1".into()], features).unwrap()
}

fn run(input: Frame) -> Frame {
    let mut d = dag(
        Box::new(FrameSource::new("read_data", input)),
        &Mock1Params::default(),
    )
    .unwrap();
    let out = d
        .run(
            &RunContext::new(Phase::Predict, None),
            &RunOptions::default(),
        )
        .unwrap();
    out.df_out("predict").unwrap().clone()
}

#[test]
fn mock1_reproduces_the_published_prediction() {
    let out = run(kaizenflow_input(true));
    // 5-minute bins from 09:35 to 12:10 New York time (EST, UTC-5).
    assert_eq!(out.n_rows(), 32);
    let t_1015 = Timestamp::parse("2000-01-01 15:15").unwrap().nanos();
    let pred = out.feature("prediction").unwrap();
    // Independent value: vol-adjusted returns are exactly +-1, compressed to
    // 4 tanh(1/4) = 0.979674..., and the lags alternate in sign, so the prediction
    // is +-4 tanh(1/4) * (-0.209 * 1 - 0.223 * (-1) + 0.304 * 1 - 0.264 * (-1)).
    let expected = 4.0 * 0.25f64.tanh() * (-0.209 + 0.223 + 0.304 + 0.264);
    assert!((expected - 0.570171).abs() < 5e-7, "{expected}");
    for (r, &t) in out.end_ts().iter().enumerate() {
        for a in 0..2 {
            let p = pred.row(r)[a];
            if t < t_1015 {
                assert!(
                    p.is_nan(),
                    "row {r} ({}) should have no prediction, has {p}",
                    Timestamp(t)
                );
            } else {
                assert!(
                    (p.abs() - 0.570171).abs() < 5e-7,
                    "row {r} ({}): {p}",
                    Timestamp(t)
                );
            }
        }
    }
    // Signs alternate from bin to bin (the close does).
    let first = out.end_ts().iter().position(|&t| t == t_1015).unwrap();
    for r in first + 1..out.n_rows() {
        assert_eq!(pred.row(r)[0].signum(), -pred.row(r - 1)[0].signum());
    }
    // Each node appends to its input: the resampled columns and every stage's outputs.
    for f in [
        "close",
        "vwap",
        "twap",
        "feature1",
        "close.ret_0",
        "vwap.ret_0",
        "twap.ret_0",
        "vwap.ret_0.vol",
        "vwap.ret_0.vol_adj",
        "vwap.ret_0.vol_adj.c",
        "vwap.ret_0.vol_adj.c.lag0",
        "vwap.ret_0.vol_adj.c.lag3",
        "prediction",
    ] {
        assert!(out.feature(f).is_ok(), "missing {f}: {:?}", out.features());
    }
    assert!(
        out.feature("volume").is_err(),
        "only the resampled columns go on"
    );
}

#[test]
fn mock1_runs_without_feature1() {
    let with = run(kaizenflow_input(true));
    let without = run(kaizenflow_input(false));
    assert!(without.feature("feature1").is_err());
    let a = with.feature("prediction").unwrap().values().to_vec();
    let b = without.feature("prediction").unwrap().values().to_vec();
    assert!(crate::common::same(&a, &b));
}

/// Three sessions of one-minute bars (09:31-16:00 New York) for 3 assets, with a
/// missing bar, a NaN close and some zero volumes.
fn sessions() -> Frame {
    let mut ts = Vec::new();
    for day in [2, 3, 5] {
        let open = Timestamp::parse(&format!("2024-01-0{day} 14:31"))
            .unwrap()
            .nanos();
        ts.extend((0..390).map(|i| open + i * MIN));
    }
    ts.remove(100);
    let n = ts.len();
    let mut close = Vec::with_capacity(3 * n);
    let mut volume = Vec::with_capacity(3 * n);
    for r in 0..n {
        for a in 0..3 {
            let x = (r as f64 * (0.37 + a as f64 * 0.11)).sin();
            close.push(if r == 500 && a == 1 {
                f64::NAN
            } else {
                100.0 + a as f64 + x
            });
            volume.push(if r % 17 == 0 {
                0.0
            } else {
                10.0 + (r % 7) as f64
            });
        }
    }
    let assets = vec!["A".into(), "B".into(), "C".into()];
    Frame::new(
        ts.clone(),
        ts,
        assets,
        vec![("close".into(), close), ("volume".into(), volume)],
    )
    .unwrap()
}

#[test]
fn collapsing_overnight_gaps_changes_no_prediction() {
    let run_with = |max_gap: Option<&str>| {
        let p = Mock1Params {
            max_gap: max_gap.map(str::to_string),
            ..Mock1Params::default()
        };
        let mut d = dag(Box::new(FrameSource::new("read_data", sessions())), &p).unwrap();
        d.run(
            &RunContext::new(Phase::Predict, None),
            &RunOptions::default(),
        )
        .unwrap()
        .df_out("predict")
        .unwrap()
        .clone()
    };
    let all = run_with(None);
    let short = run_with(Some("1h"));
    // Every 5-minute bin from the first to the last: Jan 2 09:35 to Jan 5 16:00.
    assert_eq!(all.n_rows(), 3 * 288 + 78);
    // Three sessions of 78 bins, plus one empty bin after each of the two gaps.
    assert_eq!(short.n_rows(), 3 * 78 + 2);
    let mut compared = 0;
    for (r, t) in short.end_ts().iter().enumerate() {
        let i = all.end_ts().iter().position(|x| x == t).unwrap();
        for f in short.features() {
            let a = all.feature(f).unwrap().row(i).to_vec();
            let b = short.feature(f).unwrap().row(r).to_vec();
            assert!(crate::common::same(&a, &b), "{f} at {}", Timestamp(*t));
        }
        compared += 1;
    }
    assert_eq!(compared, short.n_rows());
    // And the bins left out are all empty.
    let pred = all.feature("prediction").unwrap();
    let present = (0..all.n_rows())
        .filter(|&r| pred.row(r).iter().any(|v| !v.is_nan()))
        .count();
    let present_short = (0..short.n_rows())
        .filter(|&r| {
            short
                .feature("prediction")
                .unwrap()
                .row(r)
                .iter()
                .any(|v| !v.is_nan())
        })
        .count();
    assert_eq!(present, present_short);
    assert!(present > 200);
}
