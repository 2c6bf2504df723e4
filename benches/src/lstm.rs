//! `kf-bench lstm` (feature `nn`): a recurrent forecaster's training throughput
//! (windows per second, one replica and two data-parallel replicas) and its
//! streaming step latency (one new bar for every asset: one window per asset
//! through our forward pass), on generated random-walk prices and volumes.

use std::time::Instant;

use kf_dataflow::column::ColumnKernel;
use kf_dataflow::nodes::models::recurrent::kernel::Cell;
use kf_dataflow::nodes::models::recurrent::{OnNan, Recurrent, RecurrentParams};
use kf_dataflow::{Phase, RunContext};
use kf_frame::Frame;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, StandardNormal};

const T0: i64 = 1_704_205_860_000_000_000;
const MIN: i64 = 60_000_000_000;

/// `rows` minute bars of `assets` random-walk prices and log-normal volumes.
pub fn prices(rows: usize, assets: usize, seed: u64) -> Frame {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut close = vec![0.0; rows * assets];
    let mut volume = vec![0.0; rows * assets];
    for a in 0..assets {
        let mut p = 100.0;
        for r in 0..rows {
            let e: f64 = StandardNormal.sample(&mut rng);
            let v: f64 = StandardNormal.sample(&mut rng);
            p *= 1.0 + 0.001 * e;
            close[r * assets + a] = p;
            volume[r * assets + a] = (10.0 + 0.5 * v).exp();
        }
    }
    let ts: Vec<i64> = (0..rows as i64).map(|i| T0 + i * MIN).collect();
    Frame::new(
        ts.clone(),
        ts,
        (0..assets).map(|a| format!("A{a:04}")).collect(),
        vec![("close".into(), close), ("volume".into(), volume)],
    )
    .unwrap_or_else(|e| panic!("cannot build the bench data: {e}"))
}

fn params(window: usize, hidden: usize, epochs: usize, replicas: usize) -> RecurrentParams {
    RecurrentParams {
        x_vars: vec!["close".into(), "volume".into()],
        target: "close".into(),
        horizon: 5,
        window,
        hidden,
        relative: true,
        epochs,
        batch_size: 256,
        learning_rate: 0.002,
        patience: epochs,
        validation: 0.0,
        clip: 1.0,
        seed: 1,
        replicas,
        on_nan: OnNan::Skip,
        device: "cpu".into(),
    }
}

/// Training alone, one replica per rank of the MPI job this process is part of: the
/// ranks train one model together through the installed collective (seed 001's
/// all-reduce). Rank 0 prints the time per epoch and the weights' checksum, which
/// equals the one-process run's with `replicas` = the number of ranks.
#[cfg(feature = "mpi")]
pub fn on_ranks(
    window: usize,
    hidden: usize,
    train_assets: usize,
    train_rows: usize,
    epochs: usize,
) {
    let cluster = match kf_parallel::cluster::Cluster::init() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("cannot start MPI: {e}");
            std::process::exit(1);
        }
    };
    let collective = match cluster.collective() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(1);
        }
    };
    let installed = kf_parallel::collective::install(collective);
    let data = prices(train_rows, train_assets, 1);
    let windows = train_assets * (train_rows - window - 4);
    let mut m = Recurrent::new("lstm", Cell::Lstm, params(window, hidden, epochs, 1));
    let t = Instant::now();
    let fitted = m.compute(&RunContext::new(Phase::Fit, None), &data, &[]);
    let s = t.elapsed().as_secs_f64();
    drop(installed);
    if let Err(e) = fitted {
        eprintln!("rank {}: training failed: {e}", cluster.rank());
        cluster.abort(1);
    }
    if cluster.is_root() {
        let sum = checksum(&m);
        println!(
            "lstm on {} ranks: window {window}, hidden {hidden}, {windows} windows, {epochs} \
             epochs: {:.2} s per epoch, {:.0} windows/s (state checksum {sum:016x})",
            cluster.size(),
            s / epochs as f64,
            (windows * epochs) as f64 / s
        );
    }
}

/// Without the `mpi` feature: says how to get it.
#[cfg(not(feature = "mpi"))]
pub fn on_ranks(_: usize, _: usize, _: usize, _: usize, _: usize) {
    eprintln!("kf-bench was built without MPI; rebuild with `--features nn,mpi`");
    std::process::exit(1);
}

/// A checksum of the model's saved state (weights and normalization), to compare
/// trainings.
fn checksum(m: &Recurrent) -> u64 {
    m.save_state()
        .map(|b| {
            b.iter()
                .fold(0u64, |h, &x| h.wrapping_mul(31).wrapping_add(u64::from(x)))
        })
        .unwrap_or(0)
}

fn pct(sorted: &[f64], q: f64) -> f64 {
    sorted[((sorted.len() - 1) as f64 * q).round() as usize]
}

/// Runs the benchmark and prints its lines.
pub fn run(window: usize, hidden: usize, train_assets: usize, train_rows: usize, epochs: usize) {
    let ctx_fit = RunContext::new(Phase::Fit, None);
    let data = prices(train_rows, train_assets, 1);
    let windows = train_assets * (train_rows - window - 4);
    println!(
        "lstm: window {window}, hidden {hidden}, 2 inputs; training on {windows} windows \
         ({train_assets} assets x {train_rows} bars), {epochs} epochs, batch 256"
    );
    let mut fitted = None;
    // Ours: seconds per epoch on 1 and 2 replicas; p50 and p99 of a step at 40 and
    // 500 assets (ms).
    let mut ours = Vec::new();
    for replicas in [1, 2] {
        let mut m = Recurrent::new("lstm", Cell::Lstm, params(window, hidden, epochs, replicas));
        let t = Instant::now();
        if let Err(e) = m.compute(&ctx_fit, &data, &[]) {
            println!("  training failed: {e}");
            return;
        }
        let s = t.elapsed().as_secs_f64();
        ours.push(s / epochs as f64);
        println!(
            "  {replicas} replica{}: {:.2} s per epoch, {:.0} windows/s (state checksum {:016x})",
            if replicas == 1 { "" } else { "s" },
            s / epochs as f64,
            (windows * epochs) as f64 / s,
            checksum(&m)
        );
        if replicas == 1 {
            fitted = m.save_state().ok();
        }
    }
    let Some(state) = fitted else { return };
    for assets in [40, 500] {
        let stream = prices(window + 400, assets, 2);
        let mut m = Recurrent::new("lstm", Cell::Lstm, params(window, hidden, epochs, 1));
        if let Err(e) = m.load_state(&state) {
            println!("  cannot load the state: {e}");
            return;
        }
        let ctx = RunContext::new(Phase::Predict, None);
        let mut times = Vec::new();
        for r in 0..stream.n_rows() {
            let Ok(bar) = stream.slice(r, 1) else { return };
            let t = Instant::now();
            let _ = m.compute(&ctx, &bar, &[]);
            if r >= window {
                times.push(t.elapsed().as_secs_f64() * 1e3);
            }
        }
        times.sort_by(f64::total_cmp);
        ours.extend([pct(&times, 0.5), pct(&times, 0.99)]);
        println!(
            "  streaming step, {assets} assets (one {window}-step window each): p50 {:.3} ms, \
             p99 {:.3} ms over {} steps",
            pct(&times, 0.5),
            pct(&times, 0.99),
            times.len()
        );
    }
    torch(&data, window, hidden, epochs, &ours);
}

/// The same data and network through PyTorch (`benches/py/lstm_torch.py`), when
/// `$KF_BENCH_PYTHON` (default `python3`) can import it; prints its figures and our
/// ratios.
fn torch(data: &Frame, window: usize, hidden: usize, epochs: usize, ours: &[f64]) {
    let dir = std::env::temp_dir().join("kf-bench-lstm");
    let written = std::fs::create_dir_all(&dir).and_then(|()| {
        for name in ["close", "volume"] {
            let values = data
                .feature(name)
                .map(|c| c.values().to_vec())
                .unwrap_or_default();
            let bytes: Vec<u8> = values.iter().flat_map(|v| v.to_le_bytes()).collect();
            std::fs::write(dir.join(format!("{name}.f64")), bytes)?;
        }
        Ok(())
    });
    if let Err(e) = written {
        println!("pytorch: cannot write the data: {e}");
        return;
    }
    let mut args = vec![dir.display().to_string()];
    args.extend(
        [
            data.n_rows(),
            data.assets().len(),
            window,
            hidden,
            5,
            epochs,
        ]
        .map(|v| v.to_string()),
    );
    let Some(v) = crate::py::numbers("pytorch", "torch numpy", "lstm_torch.py", &args) else {
        return;
    };
    let ([t1, t2, a50, a99, b50, b99], [o1, o2, c50, c99, d50, d99]) = (&v[..], ours) else {
        println!("pytorch: unexpected output {v:?}");
        return;
    };
    println!(
        "pytorch (float64): {t1:.2} s per epoch on 1 thread, {t2:.2} s on 2; streaming step \
         p50/p99 {a50:.3}/{a99:.3} ms at 40 assets, {b50:.3}/{b99:.3} ms at 500"
    );
    println!(
        "  pytorch / ours: training {:.2}x (1 thread vs 1 replica), {:.2}x (2 threads vs 2 \
         replicas); streaming p50 {:.2}x at 40 assets, {:.2}x at 500; p99 {:.2}x, {:.2}x",
        t1 / o1,
        t2 / o2,
        a50 / c50,
        b50 / d50,
        a99 / c99,
        b99 / d99
    );
}
