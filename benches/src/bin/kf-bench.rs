//! The project's benchmark program: cases that criterion does not fit (peak memory
//! in a child process, speed-up ratios). Prints one line per figure.
//!
//! ```sh
//! cargo run --release -p kf-benches --bin kf-bench -- parallel
//! cargo run --release -p kf-benches --features hdf5 --bin kf-bench -- datapull
//! ```

use std::process::Command;
use std::time::Instant;

use clap::{Parser, Subcommand};
use kf_parallel::Engine;

#[derive(Parser)]
#[command(about = "KaizenFlow for Rust benchmarks")]
struct Cli {
    #[command(subcommand)]
    what: What,
}

#[derive(Subcommand)]
enum What {
    /// The job engine: overhead per molecule, speed-up on 2 threads, peak memory with
    /// and without on-the-fly reduction.
    Parallel {
        /// Molecules of the memory case.
        #[arg(long, default_value_t = 10_000)]
        molecules: usize,
        /// Megabytes each molecule returns in the memory case.
        #[arg(long, default_value_t = 1)]
        mb: usize,
    },
    /// Market data reads: CSV vs Parquet vs HDF5 (with `--features hdf5`), full and
    /// a 1-day x 50-asset slice, on generated one-minute bars.
    Datapull {
        /// Assets.
        #[arg(long, default_value_t = 500)]
        assets: usize,
        /// One-minute bars.
        #[arg(long, default_value_t = 100_000)]
        bars: usize,
        /// Folder for the generated files (kept, so a second run can inspect them).
        #[arg(long, default_value = "target/kf-bench-datapull")]
        dir: std::path::PathBuf,
        /// Runs per timed read (the median is reported).
        #[arg(long, default_value_t = 3)]
        runs: usize,
    },
    /// Mock1 in batch on generated bars: total and per-node time, rows/s, and peak
    /// memory against the input's size.
    Mock1 {
        /// Assets.
        #[arg(long, default_value_t = 500)]
        assets: usize,
        /// One-minute bars.
        #[arg(long, default_value_t = 100_000)]
        bars: usize,
        /// Timed runs (the median is reported).
        #[arg(long, default_value_t = 3)]
        runs: usize,
        /// Collapse runs of empty bins longer than this (`1h`: nights) to one.
        #[arg(long)]
        max_gap: Option<String>,
    },
    /// Mock1 streamed one bar per call: step latency p50/p99, early vs late step
    /// time, total vs one batch call, and bit-equality with the batch.
    Stream {
        /// Assets.
        #[arg(long, default_value_t = 500)]
        assets: usize,
        /// One-minute bars.
        #[arg(long, default_value_t = 100_000)]
        bars: usize,
        /// Collapse runs of empty bins longer than this (`1h`: nights) to one.
        #[arg(long)]
        max_gap: Option<String>,
    },
    /// A recurrent forecaster (feature `nn`): training windows/s with one and two
    /// data-parallel replicas, and the streaming step latency for 40 and 500 assets.
    #[cfg(feature = "nn")]
    Lstm {
        /// Rows per window.
        #[arg(long, default_value_t = 60)]
        window: usize,
        /// Hidden units.
        #[arg(long, default_value_t = 16)]
        hidden: usize,
        /// Assets of the training data.
        #[arg(long, default_value_t = 10)]
        assets: usize,
        /// Bars of the training data.
        #[arg(long, default_value_t = 2000)]
        bars: usize,
        /// Epochs.
        #[arg(long, default_value_t = 1)]
        epochs: usize,
        /// Train only, with one replica per rank of the MPI job this runs in
        /// (`mpirun -np 4 kf-bench lstm --mpi`; feature `mpi`), and print the time
        /// per epoch on rank 0.
        #[arg(long)]
        mpi: bool,
    },
    /// The Mock1 system end to end under the simulated clock: bars/s.
    System {
        /// Assets.
        #[arg(long, default_value_t = 500)]
        assets: usize,
        /// One-minute bars.
        #[arg(long, default_value_t = 100_000)]
        bars: usize,
        /// Decision period.
        #[arg(long, default_value = "5min")]
        bar: String,
        /// Also run it as a durable run in this folder (emptied first): a synced
        /// journal record and checkpoint per decision; prints the cost per
        /// decision and checks the run is the plain run's.
        #[arg(long)]
        durable: Option<std::path::PathBuf>,
        /// Also write the run's files into this folder (emptied first) and time it:
        /// the orders, fills and portfolio tables, stats and chart.
        #[arg(long)]
        write: Option<std::path::PathBuf>,
    },
    /// The order simulator alone: N orders filled with costs.
    Orders {
        /// Orders.
        #[arg(long, default_value_t = 1_000_000)]
        n: usize,
        /// Orders per call in the second case (one bar's assets).
        #[arg(long, default_value_t = 500)]
        per_bar: usize,
        /// Timed runs (the median is reported).
        #[arg(long, default_value_t = 7)]
        runs: usize,
    },
    /// The `gbt` node: fit and predict on generated data, and the same data through
    /// LightGBM from Python (when `pip install lightgbm` has been run): time ratios.
    Gbt {
        /// Rows (80% fitted, all predicted).
        #[arg(long, default_value_t = 1_000_000)]
        rows: usize,
        /// Features.
        #[arg(long, default_value_t = 20)]
        features: usize,
        /// Boosting rounds.
        #[arg(long, default_value_t = 100)]
        iterations: usize,
        /// Tree depth (LightGBM gets 2^depth leaves at most).
        #[arg(long, default_value_t = 5)]
        depth: usize,
        /// Threads.
        #[arg(long, default_value_t = 2)]
        threads: usize,
    },
    /// Seed 002's dynamic trajectory optimizer: trajectories per second on 1 and 2
    /// threads, pruning on the seed's sizes, the largest K solved exactly within a
    /// time limit, and the same instance through NumPy (when installed).
    Optimize {
        /// Assets of the instance timed against NumPy.
        #[arg(long, default_value_t = 4)]
        assets: usize,
        /// Horizons.
        #[arg(long, default_value_t = 3)]
        horizons: usize,
        /// Units of capital.
        #[arg(long, default_value_t = 5)]
        units: u32,
        /// Seed of the random instances.
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Time limit (s) for "the largest instance solved exactly".
        #[arg(long, default_value_t = 60.0)]
        limit: f64,
    },
    /// The microstructure pipeline (tick bars, BVC, VPIN, arrival spectrum) on
    /// SPY's real ticks: ticks per second per kernel, VPIN events, the spectrum
    /// around one minute, and optionally the VPIN chart.
    Microstructure {
        /// Timed runs per kernel (the median is reported).
        #[arg(long, default_value_t = 5)]
        runs: usize,
        /// Draw the VPIN chart to this PNG file.
        #[arg(long)]
        plot: Option<std::path::PathBuf>,
    },
    /// Market data reads on the real us_equity_1min_2018 minute bars.
    DatapullReal {
        /// Folder for the stores.
        #[arg(long, default_value = "target/kf-bench-datapull")]
        dir: std::path::PathBuf,
        /// Runs per timed read (the median is reported).
        #[arg(long, default_value_t = 5)]
        runs: usize,
    },
    /// The whole `kaizenflow run` of Mock1 on the real us_equity_1min_2018 data
    /// (read, DAG, write) as a child process, with its phases; and the same job in
    /// pandas and polars (benches/py/mock1_reference.py, when installed), checked
    /// against our result, with the ratios. Build the program first:
    /// `cargo build --release -p kaizenflow`.
    RunReal {
        /// Timed runs of each (medians are reported).
        #[arg(long, default_value_t = 5)]
        runs: usize,
    },
    /// Incremental runs: Mock1 over a year of generated minute bars in a Parquet
    /// store, then one day appended; the run that continues from the checkpoint
    /// against the day alone, and bit-equality with a run from scratch.
    Grow {
        /// Assets.
        #[arg(long, default_value_t = 100)]
        assets: usize,
        /// Trading days of 390 bars before the appended one.
        #[arg(long, default_value_t = 252)]
        days: usize,
        /// Bars per row group of the stores: a day's (as `kaizenflow data import
        /// --time-block 390` writes a store that grows by days); 0: the store's
        /// default, about 128k rows per group.
        #[arg(long, default_value_t = 390)]
        time_block: usize,
        /// Timed runs of each (medians are reported).
        #[arg(long, default_value_t = 21)]
        runs: usize,
        /// Folder for the stores and the cache.
        #[arg(long, default_value = "target/kf-bench-grow")]
        dir: std::path::PathBuf,
    },
    /// A system over growing data: the Mock1 system over a year of generated
    /// minute bars, then one day appended; the run that continues from the loop's
    /// checkpoint against the day alone and a full rerun, and bit-equality with it.
    GrowSystem {
        /// Assets.
        #[arg(long, default_value_t = 100)]
        assets: usize,
        /// Trading days of 390 bars before the appended one.
        #[arg(long, default_value_t = 252)]
        days: usize,
        /// The decision bar.
        #[arg(long, default_value = "5min")]
        bar: String,
        /// Timed runs of each (medians are reported).
        #[arg(long, default_value_t = 5)]
        runs: usize,
        /// Folder for the stores and the cache.
        #[arg(long, default_value = "target/kf-bench-grow-system")]
        dir: std::path::PathBuf,
    },
    /// (internal) reads a Parquet store N times, for profiling.
    #[command(hide = true)]
    ReadStore {
        path: std::path::PathBuf,
        times: usize,
    },
    /// (internal) one memory case, run in a child process: `reduce` or `collect`.
    #[command(hide = true)]
    MemoryCase {
        mode: String,
        molecules: usize,
        mb: usize,
    },
}

/// The same allocator as the `kaizenflow` program, so figures are the program's.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

type Never = std::convert::Infallible;

fn main() {
    match Cli::parse().what {
        What::Parallel { molecules, mb } => parallel(molecules, mb),
        What::Grow {
            assets,
            days,
            time_block,
            runs,
            dir,
        } => {
            if !kf_benches::grow::run(assets, days, time_block, runs, &dir) {
                std::process::exit(1);
            }
        }
        What::GrowSystem {
            assets,
            days,
            bar,
            runs,
            dir,
        } => {
            if !kf_benches::grow_system::run(assets, days, &bar, runs, &dir) {
                std::process::exit(1);
            }
        }
        What::RunReal { runs } => {
            let data = kf_benches::shared_data().join("us_equity_1min_2018");
            if !kf_benches::run_real::run(runs, &data) {
                std::process::exit(1);
            }
        }
        What::DatapullReal { dir, runs } => {
            if let Err(e) = std::fs::create_dir_all(&dir) {
                eprintln!("cannot create {}: {e}", dir.display());
                std::process::exit(1);
            }
            kf_benches::datapull::run_real(&dir, runs);
        }
        What::ReadStore { path, times } => {
            let store = match kf_datapull::ParquetStore::open(&path) {
                Ok(s) => s,
                Err(e) => {
                    eprintln!("{e}");
                    std::process::exit(1);
                }
            };
            for _ in 0..times {
                match kf_datapull::Source::load(&store, &kf_datapull::Query::all()) {
                    Ok(f) => eprintln!("{} rows", f.n_rows()),
                    Err(e) => eprintln!("{e}"),
                }
            }
        }
        What::Mock1 {
            assets,
            bars,
            runs,
            max_gap,
        } => mock1(assets, bars, runs, max_gap.as_deref()),
        What::Stream {
            assets,
            bars,
            max_gap,
        } => {
            let r = kf_benches::stream::stream(assets, bars, max_gap.as_deref());
            kf_benches::stream::print(assets, bars, &r);
            if !r.identical {
                std::process::exit(1);
            }
        }
        #[cfg(feature = "nn")]
        What::Lstm {
            window,
            hidden,
            assets,
            bars,
            epochs,
            mpi,
        } => {
            if mpi {
                kf_benches::lstm::on_ranks(window, hidden, assets, bars, epochs)
            } else {
                kf_benches::lstm::run(window, hidden, assets, bars, epochs)
            }
        }
        What::System {
            assets,
            bars,
            bar,
            durable,
            write,
        } => {
            if !kf_benches::system::run(assets, bars, &bar, durable.as_deref(), write.as_deref()) {
                std::process::exit(1);
            }
        }
        What::Gbt {
            rows,
            features,
            iterations,
            depth,
            threads,
        } => kf_benches::gbt::run(rows, features, iterations, depth, threads),
        What::Microstructure { runs, plot } => {
            kf_benches::microstructure::run(runs, plot.as_deref())
        }
        What::Optimize {
            assets,
            horizons,
            units,
            seed,
            limit,
        } => kf_benches::optimize::run(assets, horizons, units, seed, limit),
        What::Orders { n, per_bar, runs } => kf_benches::system::orders(n, per_bar, runs),
        What::Datapull {
            assets,
            bars,
            dir,
            runs,
        } => {
            if let Err(e) = std::fs::create_dir_all(&dir) {
                eprintln!("cannot create {}: {e}", dir.display());
                std::process::exit(1);
            }
            kf_benches::datapull::run(assets, bars, &dir, runs);
        }
        What::MemoryCase {
            mode,
            molecules,
            mb,
        } => memory_case(&mode, molecules, mb),
    }
}

/// CPU-bound work: a chain of dependent float operations.
fn spin(seed: u64, iters: u32) -> f64 {
    let mut x = seed as f64 * 1e-3 + 0.5;
    for _ in 0..iters {
        x = (x * 1.000_000_1 + 0.000_1).fract() + 0.5;
    }
    x
}

fn parallel(molecules: usize, mb: usize) {
    // Overhead: empty work, 200,000 molecules of one atom on 2 threads.
    let atoms: Vec<u32> = (0..200_000).collect();
    let engine = Engine::new().threads(2).batches(atoms.len() / 2);
    let _ = engine.run_reduce(
        &atoms,
        0u64,
        |c: &[u32]| Ok::<_, Never>(c.len() as u64),
        |a, x| *a += x,
    );
    let t = Instant::now();
    let n = engine
        .run_reduce(
            &atoms,
            0u64,
            |c: &[u32]| Ok::<_, Never>(c.len() as u64),
            |a, x| *a += x,
        )
        .unwrap_or(0);
    let per = t.elapsed().as_secs_f64() / atoms.len() as f64;
    println!(
        "overhead per molecule (empty work, {n} molecules, 2 threads, ordered): {:.2} us",
        per * 1e6
    );
    let unordered = Engine::new()
        .threads(2)
        .batches(atoms.len() / 2)
        .unordered();
    let t = Instant::now();
    let _ = unordered.run_reduce(
        &atoms,
        0u64,
        |c: &[u32]| Ok::<_, Never>(c.len() as u64),
        |a, x| *a += x,
    );
    println!(
        "overhead per molecule (empty work, 2 threads, unordered): {:.2} us",
        t.elapsed().as_secs_f64() / atoms.len() as f64 * 1e6
    );

    // Speed-up: 64 CPU-bound atoms, sequential debug path vs 2 threads.
    let atoms: Vec<u64> = (0..64).collect();
    let work = |c: &[u64]| Ok::<_, Never>(c.iter().map(|&s| spin(s, 3_000_000)).sum::<f64>());
    let t = Instant::now();
    let seq =
        Engine::new()
            .debug(true)
            .threads(2)
            .batches(8)
            .run_reduce(&atoms, 0.0, work, |a, x| *a += x);
    let t_seq = t.elapsed().as_secs_f64();
    let t = Instant::now();
    let par = Engine::new()
        .threads(2)
        .batches(8)
        .run_reduce(&atoms, 0.0, work, |a, x| *a += x);
    let t_par = t.elapsed().as_secs_f64();
    let same = matches!((seq, par), (Ok(a), Ok(b)) if a.to_bits() == b.to_bits());
    println!(
        "speed-up on 2 threads (64 CPU-bound atoms): {:.3} s sequential, {:.3} s parallel, {:.2}x, bit-identical: {same}",
        t_seq,
        t_par,
        t_seq / t_par
    );

    // Peak memory, each case in its own process.
    for mode in ["reduce", "collect"] {
        let exe = std::env::current_exe().unwrap_or_default();
        let out = Command::new(exe)
            .args(["memory-case", mode, &molecules.to_string(), &mb.to_string()])
            .output();
        match out {
            Ok(o) => print!("{}", String::from_utf8_lossy(&o.stdout)),
            Err(e) => println!("memory case {mode}: cannot run: {e}"),
        }
    }
}

fn memory_case(mode: &str, molecules: usize, mb: usize) {
    let atoms: Vec<usize> = (0..molecules).collect();
    let engine = Engine::new().threads(2).batches(molecules / 2);
    let len = mb * 1024 * 1024 / 8;
    let make = |c: &[usize]| Ok::<_, Never>(vec![c[0] as f64; len]);
    let t = Instant::now();
    let check = if mode == "reduce" {
        engine
            .run_reduce(&atoms, vec![0.0; len], make, |acc, v| {
                for (a, x) in acc.iter_mut().zip(&v) {
                    *a += x;
                }
            })
            .map(|acc| acc[0])
    } else {
        engine
            .run(&atoms, make)
            .map(|all| all.iter().map(|v| v[0]).sum::<f64>())
    };
    let peak_kb = std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines().find(|l| l.starts_with("VmHWM:")).and_then(|l| {
                l.split_whitespace()
                    .nth(1)
                    .and_then(|v| v.parse::<u64>().ok())
            })
        })
        .unwrap_or(0);
    println!(
        "peak memory, {molecules} molecules x {mb} MB, {mode}: {:.1} MB ({:.2} s, check {})",
        peak_kb as f64 / 1024.0,
        t.elapsed().as_secs_f64(),
        check
            .map(|c| c.to_string())
            .unwrap_or_else(|e| e.to_string())
    );
}

fn mock1(assets: usize, bars: usize, runs: usize, max_gap: Option<&str>) {
    use kf_benches::mock1 as m;
    let t = std::time::Instant::now();
    let input = m::input(assets, bars);
    let input_bytes = (input.n_rows() * input.n_assets() * input.n_features() * 8) as u64;
    println!(
        "mock1: {assets} assets x {bars} bars x {} features = {:.0} MB input (generated in {:.1} s)",
        input.n_features(),
        input_bytes as f64 / 1e6,
        t.elapsed().as_secs_f64()
    );
    let mut dag = m::mock1(input, max_gap);
    let base = m::rss().unwrap_or(0);
    let reset = m::reset_peak();
    let mut totals = Vec::new();
    let mut per_node: Vec<Vec<std::time::Duration>> = Vec::new();
    let mut names = Vec::new();
    let mut peak = 0;
    for _ in 0..runs.max(1) {
        let start = std::time::Instant::now();
        let (out, timings) = m::run(&mut dag);
        totals.push(start.elapsed());
        peak = peak.max(m::peak_rss().unwrap_or(0));
        if names.is_empty() {
            names = timings
                .iter()
                .map(|t| (t.node.to_string(), t.kind.clone(), t.rows))
                .collect();
            per_node = vec![Vec::new(); timings.len()];
            println!(
                "output: {} rows x {} features",
                out.n_rows(),
                out.n_features()
            );
        }
        for (i, t) in timings.iter().enumerate() {
            per_node[i].push(t.wall);
        }
        drop(out);
    }
    let total = m::median(totals);
    let cells = (assets * bars) as f64;
    println!(
        "total (median of {}): {:.3} s = {:.1} M input rows (bar x asset)/s",
        runs.max(1),
        total.as_secs_f64(),
        cells / total.as_secs_f64() / 1e6
    );
    println!(
        "{:<16} {:<22} {:>10} {:>8} {:>10}",
        "node", "kind", "ms", "share", "rows"
    );
    for (i, (node, kind, rows)) in names.iter().enumerate() {
        let d = m::median(per_node[i].clone());
        println!(
            "{node:<16} {kind:<22} {:>10.1} {:>7.1}% {rows:>10}",
            d.as_secs_f64() * 1e3,
            100.0 * d.as_secs_f64() / total.as_secs_f64()
        );
    }
    if reset && peak > 0 {
        println!(
            "peak resident memory: {:.0} MB = {:.2}x the input ({:.0} MB resident before the run, input included)",
            peak as f64 / 1e6,
            peak as f64 / input_bytes as f64,
            base as f64 / 1e6
        );
    } else {
        println!("peak resident memory: not measurable here (needs Linux /proc/self/clear_refs)");
    }
    // The same run on one thread: the time, and the outputs' bits. Only the last
    // output is kept from the run on every thread, so the 1-thread run reuses the
    // memory the rest of it freed (fresh pages would dominate its time).
    let many = m::run(&mut dag).0.select_features(&["prediction"]);
    let one = rayon::ThreadPoolBuilder::new().num_threads(1).build();
    match one {
        Ok(pool) => {
            let start = std::time::Instant::now();
            let (single, _) = pool.install(|| m::run(&mut dag));
            let t1 = start.elapsed();
            let single = single.select_features(&["prediction"]);
            println!(
                "1 thread: {:.3} s ({:.2}x the median on {} threads); predictions bit-identical: {}",
                t1.as_secs_f64(),
                t1.as_secs_f64() / total.as_secs_f64(),
                rayon::current_num_threads(),
                matches!((&single, &many), (Ok(a), Ok(b)) if a.bit_eq(b))
            );
        }
        Err(e) => println!("1 thread: cannot build a pool ({e})"),
    }
}
