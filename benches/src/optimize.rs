//! The dynamic trajectory optimizer (seed 002): trajectories scored per second on 1
//! and 2 threads, the share of `Φ` that pruning skips on the seed's suggested
//! sizes, the largest instance solved exactly within a time limit, beam search and
//! the static baseline against the optimum, and the same instance through a
//! straightforward vectorized NumPy enumeration (`benches/py/trajectory_numpy.py`)
//! when NumPy is installed.

use std::fmt::Write as _;
use std::time::Instant;

use kf_parallel::Engine;
use kf_system::optimize::{
    Problem, ProblemSpec, SearchOptions, Solution, beam_search, solve_exact, static_baseline,
};

fn instance(n: usize, h: usize, k: u32, seed: u64) -> Option<Problem> {
    let (mu, cov, cost, start) = ProblemSpec::random(n, h, seed, 0.002);
    match Problem::new(k, &mu, &cov, &cost, &start) {
        Ok(p) => Some(p),
        Err(e) => {
            println!("optimize: cannot build N={n} H={h} K={k}: {e}");
            None
        }
    }
}

fn timed(p: &Problem, options: &SearchOptions, threads: usize) -> Option<(Solution, f64)> {
    let engine = Engine::new().threads(threads).batches(8);
    let t = Instant::now();
    match solve_exact(p, options, &engine) {
        Ok(s) => Some((s, t.elapsed().as_secs_f64())),
        Err(e) => {
            println!("optimize: {e}");
            None
        }
    }
}

const FULL: SearchOptions = SearchOptions {
    prune: false,
    symmetry: false,
    incumbent_beam: 0,
};

/// Runs the whole benchmark; `(n, h, k)` is the instance timed against NumPy.
pub fn run(n: usize, h: usize, k: u32, seed: u64, limit: f64) {
    let Some(p) = instance(n, h, k, seed) else {
        return;
    };
    println!(
        "optimize: N={n} H={h} K={k} (seed {seed}): |Ω| = {}, |Φ| = {:.3e}",
        p.omega().len(),
        p.space_size()
    );
    // Full enumeration (no pruning): the raw scoring rate.
    let mut full_best = f64::NAN;
    for threads in [1, 2] {
        if let Some((s, secs)) = timed(&p, &FULL, threads) {
            full_best = s.best.sharpe;
            println!(
                "  full enumeration, {threads} thread(s): {:.3} s, {:.3e} trajectories/s, \
                 best Sharpe {:.9}",
                secs,
                s.stats.evaluated as f64 / secs,
                s.best.sharpe
            );
        }
    }
    let pruned = timed(&p, &SearchOptions::default(), 2);
    if let Some((s, secs)) = &pruned {
        println!(
            "  pruned, 2 threads: {secs:.4} s, scored {} ({:.4}% of Φ skipped), same \
             optimum: {}",
            s.stats.evaluated,
            100.0 * s.stats.skipped_fraction(),
            s.best.sharpe.to_bits() == full_best.to_bits()
        );
        let b = static_baseline(&p);
        println!(
            "  static baseline Sharpe {:.6} vs dynamic {:.6} ({:.2}% lower)",
            b.sharpe,
            s.best.sharpe,
            100.0 * (s.best.sharpe - b.sharpe) / s.best.sharpe.abs()
        );
        for width in [16, 256] {
            let t = Instant::now();
            let beam = beam_search(&p, width, true);
            println!(
                "  beam {width}: Sharpe {:.6} ({:.4}% below the optimum) in {:.4} s",
                beam.best.sharpe,
                100.0 * (s.best.sharpe - beam.best.sharpe) / s.best.sharpe.abs(),
                t.elapsed().as_secs_f64()
            );
        }
        numpy(&p, k, s.best.sharpe, *secs);
    }
    seed_sizes(seed);
    largest(seed, limit);
}

/// Pruning on the sizes the seed suggests (K of 3 to 10).
fn seed_sizes(seed: u64) {
    println!("  pruning on the seed's sizes (2 threads):");
    for (n, h, k) in [
        (3, 3, 10),
        (4, 3, 6),
        (4, 3, 8),
        (5, 3, 5),
        (6, 2, 6),
        (4, 4, 4),
    ] {
        let Some(p) = instance(n, h, k, seed) else {
            continue;
        };
        if let Some((s, secs)) = timed(&p, &SearchOptions::default(), 2) {
            println!(
                "    N={n} H={h} K={k}: |Φ| = {:.3e}, scored {:.3e}, {:.4}% skipped, {secs:.3} s",
                s.stats.space,
                s.stats.evaluated as f64,
                100.0 * s.stats.skipped_fraction()
            );
        }
    }
}

/// The largest instances solved exactly (pruned, 2 threads) within `limit` seconds,
/// growing K for each (N, H).
fn largest(seed: u64, limit: f64) {
    println!("  largest K solved exactly within {limit} s (2 threads, pruned):");
    for (n, h) in [(4, 3), (5, 3), (6, 3), (4, 4), (8, 2)] {
        let mut best: Option<(u32, f64, f64)> = None;
        for k in 2..=60u32 {
            let Some(count) = kf_system::optimize::WeightSet::count(n, k) else {
                break;
            };
            if count > 2_000_000 {
                break;
            }
            let Some(p) = instance(n, h, k, seed) else {
                break;
            };
            match timed(&p, &SearchOptions::default(), 2) {
                Some((s, secs)) if secs <= limit => best = Some((k, s.stats.space, secs)),
                _ => break,
            }
            if best.is_some_and(|b| b.2 > limit / 4.0) {
                // The next K would very likely pass the limit.
                break;
            }
        }
        if let Some((k, space, secs)) = best {
            println!("    N={n} H={h}: K={k}, |Φ| = {space:.3e}, {secs:.2} s");
        }
    }
}

fn numpy(p: &Problem, k: u32, ours: f64, ours_secs: f64) {
    let dir = std::env::temp_dir().join("kf-bench-optimize");
    let path = dir.join("instance.json");
    let mut json = format!("{{\"units\": {k}, \"mu\": [");
    let rows = |out: &mut String, rows: &mut dyn Iterator<Item = Vec<f64>>| {
        let all: Vec<String> = rows
            .map(|r| {
                let v: Vec<String> = r.iter().map(|x| format!("{x:?}")).collect();
                format!("[{}]", v.join(", "))
            })
            .collect();
        out.push_str(&all.join(", "));
    };
    let (n, hz) = (p.assets(), p.horizons());
    rows(&mut json, &mut (0..hz).map(|h| p.mu(h).to_vec()));
    json.push_str("], \"cov\": [");
    let mats: Vec<String> = (0..hz)
        .map(|h| {
            let mut m = String::from("[");
            rows(&mut m, &mut (0..n).map(|i| p.cov_row(h, i).to_vec()));
            m.push(']');
            m
        })
        .collect();
    json.push_str(&mats.join(", "));
    json.push_str("], \"cost\": [");
    rows(&mut json, &mut (0..hz).map(|h| p.cost(h).to_vec()));
    let _ = write!(json, "], \"start\": {:?}}}", p.start());
    if let Err(e) = std::fs::create_dir_all(&dir).and_then(|()| std::fs::write(&path, json)) {
        println!("  numpy: cannot write the instance: {e}");
        return;
    }
    let args = [path.display().to_string()];
    let Some(v) = crate::py::numbers("  numpy", "numpy", "trajectory_numpy.py", &args) else {
        return;
    };
    if let [best, secs, count] = v[..] {
        let agree = (best - ours).abs() <= 1e-9 * ours.abs();
        println!(
            "  numpy (straightforward vectorized enumeration): {secs:.3} s for {count:.3e} \
             trajectories ({:.3e}/s), best Sharpe {best:.9} (agrees to 1e-9: {agree}); \
             ours pruned on 2 threads is {:.0}x faster",
            count / secs,
            secs / ours_secs
        );
    } else {
        println!("  numpy: unexpected output {v:?}");
    }
}
