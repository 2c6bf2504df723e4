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
    for replicas in [1, 2] {
        let mut m = Recurrent::new("lstm", Cell::Lstm, params(window, hidden, epochs, replicas));
        let t = Instant::now();
        if let Err(e) = m.compute(&ctx_fit, &data, &[]) {
            println!("  training failed: {e}");
            return;
        }
        let s = t.elapsed().as_secs_f64();
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
        println!(
            "  streaming step, {assets} assets (one {window}-step window each): p50 {:.3} ms, \
             p99 {:.3} ms over {} steps",
            pct(&times, 0.5),
            pct(&times, 0.99),
            times.len()
        );
    }
}
