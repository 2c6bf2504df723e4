//! Helpers shared by the dataflow tests.

use kf_dataflow::column::{ColumnKernel, ColumnNode, Columns};
use kf_dataflow::nodes::sources::FrameSource;
use kf_dataflow::{Dag, Phase, RunContext, RunOptions};
use kf_frame::Frame;

pub const MIN: i64 = 60_000_000_000;

/// A frame of one feature `x` with the given rows (one slice per row, one value per
/// asset), one minute apart from 2024-01-02 14:31 UTC.
pub fn frame(rows: &[&[f64]]) -> Frame {
    let t0 = kf_frame::Timestamp::parse("2024-01-02 14:31")
        .unwrap()
        .nanos();
    let n = rows.first().map_or(0, |r| r.len());
    let ts: Vec<i64> = (0..rows.len() as i64).map(|i| t0 + i * MIN).collect();
    let assets = (0..n).map(|a| format!("A{a}")).collect();
    let values = rows.iter().flat_map(|r| r.iter().copied()).collect();
    Frame::new(ts.clone(), ts, assets, vec![("x".into(), values)]).unwrap()
}

/// Runs one column kernel over `input` (predict) and returns its output frame.
pub fn run_kernel<K: ColumnKernel + 'static>(input: Frame, cols: Columns, kernel: K) -> Frame {
    let mut dag = Dag::new();
    dag.add_node(Box::new(FrameSource::new("src", input)))
        .unwrap();
    dag.add_node(Box::new(ColumnNode::new("k", cols, kernel)))
        .unwrap();
    dag.chain("src", "k").unwrap();
    let out = dag
        .run(
            &RunContext::new(Phase::Predict, None),
            &RunOptions::default(),
        )
        .unwrap();
    out.df_out("k").unwrap().clone()
}

/// One asset's values of `feature`, over time.
pub fn series(f: &Frame, feature: &str, asset: usize) -> Vec<f64> {
    f.feature(feature).unwrap().asset(asset).collect()
}

/// Equality that treats NaN as equal to NaN, and compares to the bit otherwise.
pub fn same(a: &[f64], b: &[f64]) -> bool {
    a.len() == b.len()
        && a.iter()
            .zip(b)
            .all(|(x, y)| (x.is_nan() && y.is_nan()) || x.to_bits() == y.to_bits())
}

/// Equality within `tol` (NaN equal to NaN).
pub fn close(a: &[f64], b: &[f64], tol: f64) -> bool {
    a.len() == b.len()
        && a.iter()
            .zip(b)
            .all(|(x, y)| (x.is_nan() && y.is_nan()) || (x - y).abs() <= tol)
}
