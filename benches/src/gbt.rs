//! The `gbt` node's fit and predict on generated data (1M rows x 20 features by
//! default), and the same data through LightGBM from Python when it is installed.

use std::path::Path;
use std::time::Instant;

use kf_dataflow::column::ColumnKernel;
use kf_dataflow::nodes::models::{Gbt, GbtParams, Objective};
use kf_dataflow::{Phase, RunContext};
use kf_frame::Frame;

/// `rows` x `cols` regressors (xorshift uniforms in [-1, 1]) and a binary label with
/// interactions and noise: `x0 * x1 + 0.5 sin(3 x2) + 0.3 x3 + noise > 0`.
pub fn data(rows: usize, cols: usize) -> (Vec<Vec<f64>>, Vec<f64>) {
    let mut s = 0x2545_f491_4f6c_dd1du64;
    let mut next = || {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        (s >> 11) as f64 / (1u64 << 53) as f64 * 2.0 - 1.0
    };
    let xs: Vec<Vec<f64>> = (0..cols)
        .map(|_| (0..rows).map(|_| next()).collect())
        .collect();
    let y = (0..rows)
        .map(|r| {
            let z =
                xs[0][r] * xs[1][r] + 0.5 * (3.0 * xs[2][r]).sin() + 0.3 * xs[3][r] + 0.3 * next();
            if z > 0.0 { 1.0 } else { 0.0 }
        })
        .collect();
    (xs, y)
}

fn frame(xs: &[Vec<f64>], y: &[f64], rows: std::ops::Range<usize>) -> Frame {
    let ts: Vec<i64> = rows.clone().map(|r| r as i64 * 60_000_000_000).collect();
    let mut features: Vec<(String, Vec<f64>)> = xs
        .iter()
        .enumerate()
        .map(|(j, x)| (format!("x{j}"), x[rows.clone()].to_vec()))
        .collect();
    features.push(("y".into(), y[rows].to_vec()));
    Frame::new(ts.clone(), ts, vec!["A".into()], features)
        .unwrap_or_else(|e| panic!("generated frame: {e}"))
}

/// Runs the case and prints one line per figure.
pub fn run(rows: usize, cols: usize, iterations: usize, depth: usize, threads: usize) {
    let (xs, y) = data(rows, cols);
    let train = rows * 4 / 5;
    let names: Vec<String> = (0..cols).map(|j| format!("x{j}")).collect();
    let refs: Vec<&str> = names.iter().map(String::as_str).collect();
    let mut p = GbtParams::new(&refs, "y");
    p.objective = Objective::Binary;
    p.iterations = iterations;
    p.max_depth = depth;
    p.learning_rate = 0.1;
    p.threads = threads;
    let mut gbt = Gbt::new(p);
    let fit_frame = frame(&xs, &y, 0..train);
    let all = frame(&xs, &y, 0..rows);
    let t = Instant::now();
    if let Err(e) = gbt.compute(&RunContext::new(Phase::Fit, None), &fit_frame, &[]) {
        println!("gbt fit failed: {e}");
        return;
    }
    let fit = t.elapsed().as_secs_f64();
    let t = Instant::now();
    let out = match gbt.compute(&RunContext::new(Phase::Predict, None), &all, &[]) {
        Ok(o) => o,
        Err(e) => {
            println!("gbt predict failed: {e}");
            return;
        }
    };
    let predict = t.elapsed().as_secs_f64();
    let p1 = &out[1].1;
    let hits = (train..rows)
        .filter(|&r| (p1[r] >= 0.5) == (y[r] == 1.0))
        .count();
    let acc = hits as f64 / (rows - train) as f64;
    println!(
        "gbt: fit {train} rows x {cols} features, {iterations} trees of depth {depth}, \
         {threads} threads: {fit:.3} s ({:.0} rows/s); predict {rows} rows: {predict:.3} s \
         ({:.0} rows/s); out-of-sample accuracy {acc:.4}",
        train as f64 / fit,
        rows as f64 / predict
    );
    lightgbm(&xs, &y, train, threads, iterations, depth, fit, predict);
}

#[allow(clippy::too_many_arguments)]
fn lightgbm(
    xs: &[Vec<f64>],
    y: &[f64],
    train: usize,
    threads: usize,
    iterations: usize,
    depth: usize,
    fit: f64,
    predict: f64,
) {
    let dir = std::env::temp_dir().join("kf-bench-gbt");
    if let Err(e) = write(&dir, xs, y) {
        println!("lightgbm: cannot write the data: {e}");
        return;
    }
    let mut args = vec![dir.display().to_string()];
    args.extend([y.len(), xs.len(), train, threads, iterations, depth].map(|v| v.to_string()));
    let Some(v) = crate::py::numbers("lightgbm", "lightgbm", "lightgbm_gbt.py", &args) else {
        return;
    };
    if let [lfit, lpred, lacc] = v[..] {
        println!(
            "lightgbm (python): fit {lfit:.3} s, predict {lpred:.3} s, accuracy {lacc:.4}; \
             gbt / lightgbm: fit {:.2}x, predict {:.2}x",
            fit / lfit,
            predict / lpred
        );
    } else {
        println!("lightgbm: unexpected output {v:?}");
    }
}

fn write(dir: &Path, xs: &[Vec<f64>], y: &[f64]) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    let bytes =
        |v: &mut dyn Iterator<Item = f64>| -> Vec<u8> { v.flat_map(f64::to_le_bytes).collect() };
    std::fs::write(dir.join("x.f64"), bytes(&mut xs.iter().flatten().copied()))?;
    std::fs::write(dir.join("y.f64"), bytes(&mut y.iter().copied()))
}
