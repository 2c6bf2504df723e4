//! Seed 004's indicators and label against hand-computed values, and each
//! indicator's output cut into calls equal to one call to the bit.

use kf_dataflow::column::{ColumnKernel, ColumnNode, Columns};
use kf_dataflow::nodes::indicators::{
    Direction, DirectionParams, Macd, MacdParams, Rsi, RsiParams, ThresholdIn, VolumeZscore,
    VolumeZscoreParams,
};
use kf_dataflow::nodes::sources::FrameSource;
use kf_dataflow::{Dag, Phase, RunContext};
use kf_frame::Frame;

use crate::common::{close, frame, same};

const NAN: f64 = f64::NAN;

fn one_asset(values: &[f64]) -> Frame {
    let rows: Vec<[f64; 1]> = values.iter().map(|&v| [v]).collect();
    frame(&rows.iter().map(|r| &r[..]).collect::<Vec<_>>())
}

fn run(kernel: &mut dyn ColumnKernel, input: &Frame) -> Vec<(String, Vec<f64>)> {
    kernel
        .compute(&RunContext::new(Phase::Predict, None), input, &[0])
        .unwrap()
}

/// Runs `make()`'s kernel over `input` in one call and in calls of `cut` rows, and
/// asserts both give the same bits; returns the one-call outputs.
fn cut_invariant<K: ColumnKernel>(
    make: impl Fn() -> K,
    input: &Frame,
    cut: usize,
) -> Vec<(String, Vec<f64>)> {
    let whole = run(&mut make(), input);
    let mut k = make();
    let mut pieces: Vec<Vec<f64>> = vec![Vec::new(); whole.len()];
    let mut start = 0;
    while start < input.n_rows() {
        let len = cut.min(input.n_rows() - start);
        let part = run(&mut k, &input.slice(start, len).unwrap());
        for (p, (_, v)) in pieces.iter_mut().zip(part) {
            p.extend(v);
        }
        start += len;
    }
    for ((name, w), p) in whole.iter().zip(&pieces) {
        assert!(same(w, p), "{name}: {w:?} vs {p:?}");
    }
    whole
}

#[test]
fn rsi_follows_wilders_averages() {
    // Changes +1, -0.5, +1.5, 0, -1 with n = 2: the averages start at (0.5, 0.25),
    // then (1.0, 0.125), (0.5, 0.0625), (0.25, 0.53125).
    let input = one_asset(&[10.0, 11.0, 10.5, 12.0, 12.0, 11.0]);
    let make = || {
        Rsi::new(RsiParams {
            window: 2,
            ..Default::default()
        })
    };
    let out = cut_invariant(make, &input, 1);
    assert_eq!(out[0].0, "x.rsi");
    let want = [NAN, NAN, 200.0 / 3.0, 800.0 / 9.0, 800.0 / 9.0, 32.0];
    assert!(close(&out[0].1, &want, 1e-12), "{:?}", out[0].1);
    // No movement at all: 50. A NaN skips its row without moving the averages.
    let flat = run(&mut make(), &one_asset(&[5.0, 5.0, 5.0, 5.0]));
    assert!(same(&flat[0].1, &[NAN, NAN, 50.0, 50.0]));
    let holes = run(&mut make(), &one_asset(&[10.0, 11.0, NAN, 10.5, 12.0]));
    assert!(close(
        &holes[0].1,
        &[NAN, NAN, NAN, 200.0 / 3.0, 800.0 / 9.0],
        1e-12
    ));
}

#[test]
fn macd_is_the_difference_of_two_emas_and_its_signal() {
    // Prices 1, 2, 3 with spans 2, 3, 2 (alphas 2/3, 1/2, 2/3): fast 1, 5/3, 23/9;
    // slow 1, 3/2, 9/4; MACD 0, 1/6, 11/36; signal 0, 1/9, 13/54.
    let input = one_asset(&[1.0, 2.0, 3.0]);
    let make = || {
        Macd::new(MacdParams {
            fast: 2,
            slow: 3,
            signal: 2,
        })
    };
    let out = cut_invariant(make, &input, 2);
    let names: Vec<&str> = out.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, ["x.macd", "x.macd_signal", "x.macd_hist"]);
    assert!(close(&out[0].1, &[0.0, 1.0 / 6.0, 11.0 / 36.0], 1e-15));
    assert!(close(&out[1].1, &[0.0, 1.0 / 9.0, 13.0 / 54.0], 1e-15));
    assert!(close(&out[2].1, &[0.0, 1.0 / 18.0, 7.0 / 108.0], 1e-15));
}

#[test]
fn volume_zscore_scores_the_last_window() {
    let input = one_asset(&[1.0, 2.0, 3.0, 4.0, 10.0]);
    let out = cut_invariant(
        || {
            VolumeZscore::new(VolumeZscoreParams {
                window: 3,
                log: false,
                ..Default::default()
            })
        },
        &input,
        2,
    );
    // Windows (1,2,3) -> 1; (2,3,4) -> 1; (3,4,10): mean 17/3,
    // sample std sqrt(((3-17/3)^2 + (4-17/3)^2 + (10-17/3)^2) / 2) = sqrt(43/3).
    let z = (10.0 - 17.0 / 3.0) / (43.0f64 / 3.0).sqrt();
    assert!(
        close(&out[0].1, &[NAN, NAN, 1.0, 1.0, z], 1e-12),
        "{:?}",
        out[0].1
    );
    // The log form scores ln(1 + v).
    let logged = run(
        &mut VolumeZscore::new(VolumeZscoreParams {
            window: 3,
            log: true,
            ..Default::default()
        }),
        &input,
    );
    let l: Vec<f64> = [2.0, 3.0, 4.0f64].iter().map(|v| v.ln()).collect();
    let mean = l.iter().sum::<f64>() / 3.0;
    let sd = (l.iter().map(|v| (v - mean) * (v - mean)).sum::<f64>() / 2.0).sqrt();
    assert!((logged[0].1[2] - (l[2] - mean) / sd).abs() < 1e-12);
}

#[test]
fn direction_labels_moves_beyond_the_band_and_is_a_forward_target() {
    let input = one_asset(&[100.0, 101.0, 100.5, 100.5]);
    let mut d = Direction::new(DirectionParams {
        horizon: 1,
        threshold: 0.004,
        ..Default::default()
    })
    .unwrap();
    // +1%, -0.495%, 0%, unknown.
    let out = run(&mut d, &input);
    assert_eq!(out[0].0, "x.direction");
    assert!(same(&out[0].1, &[1.0, -1.0, 0.0, NAN]));
    // In volatility units: a band of 1 x 2% holds the +1% move flat; horizon 2
    // scales the band by sqrt(2).
    let vol = input
        .with_features(vec![("vol".into(), vec![0.02, 0.001, 0.001, 0.001])])
        .unwrap();
    let mut d = Direction::new(DirectionParams {
        horizon: 1,
        threshold: 1.0,
        threshold_in: ThresholdIn::Volatility,
        volatility: Some("vol".into()),
        ..Default::default()
    })
    .unwrap();
    assert!(same(&run(&mut d, &vol)[0].1, &[0.0, -1.0, 0.0, NAN]));
    let mut d = Direction::new(DirectionParams {
        horizon: 2,
        threshold: 3.0,
        threshold_in: ThresholdIn::Volatility,
        volatility: Some("vol".into()),
        ..Default::default()
    })
    .unwrap();
    // Row 0: +0.5% against a band of 3 x 2% x 1.414 = 8.5%: flat. Row 1: -0.495%
    // against 0.42%: down.
    assert!(same(&run(&mut d, &vol)[0].1, &[0.0, -1.0, NAN, NAN]));

    // With `max_span`, a horizon that spans longer (a gap in the bars) has no label.
    let gappy = Frame::new(
        [0, 60, 120, 3_600 + 120, 3_660 + 120]
            .iter()
            .map(|s| s * 1_000_000_000)
            .collect(),
        [0, 60, 120, 3_720, 3_780]
            .iter()
            .map(|s| s * 1_000_000_000)
            .collect(),
        vec!["A".into()],
        vec![("x".into(), vec![100.0, 101.0, 102.0, 103.0, 104.0])],
    )
    .unwrap();
    let mut d = Direction::new(DirectionParams {
        horizon: 1,
        max_span: Some("5min".into()),
        ..Default::default()
    })
    .unwrap();
    let got = run(&mut d, &gappy);
    assert!(
        same(&got[0].1, &[1.0, 1.0, NAN, 1.0, NAN]),
        "{:?}",
        got[0].1
    );
    assert!(
        Direction::new(DirectionParams {
            max_span: Some("0s".into()),
            ..Default::default()
        })
        .is_err()
    );

    // In a DAG, its output is a target two rows ahead, made by its node.
    let mut dag = Dag::new();
    dag.add_node(Box::new(FrameSource::new("src", input)))
        .unwrap();
    dag.add_node(Box::new(ColumnNode::new(
        "label",
        Columns::default(),
        Direction::new(DirectionParams {
            horizon: 2,
            ..Default::default()
        })
        .unwrap(),
    )))
    .unwrap();
    dag.chain("src", "label").unwrap();
    let targets = dag.targets();
    let t = &targets["x.direction"];
    assert_eq!((t.node.as_str(), t.horizon), ("label", 2));
}
