//! A self-check of the MPI backend, run under `mpirun -np N` by the `mpi` test.
//!
//! Rank 0 checks that (1) an ordered float reduction across the ranks is
//! bit-identical to the sequential debug path over the same molecules, and (2) a
//! failing molecule is reported by name; it prints `ok: N ranks` and exits 0, or
//! says what differed and exits 1. The other ranks serve molecules and exit 0.

use std::process::ExitCode;

use kf_parallel::cluster::Cluster;
use kf_parallel::{Engine, RunError};

fn main() -> ExitCode {
    let cluster = match Cluster::init() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    // Values whose sum depends on the order of addition.
    let values: Vec<f64> = (0..20_000)
        .map(|i| {
            let x = ((i * 7919) % 1000) as f64;
            if i % 3 == 0 { x * 1e12 } else { x * 1e-7 + 0.1 }
        })
        .collect();
    let engine = Engine::new().batches(8);
    let sum = |c: &[f64]| Ok::<_, std::convert::Infallible>(c.iter().sum::<f64>());
    let across = cluster.run_reduce(&engine, &values, 0.0f64, sum, |a, x| *a += x);
    let failing = cluster.run_reduce(
        &engine,
        &values,
        0.0f64,
        |c: &[f64]| {
            let planted = values[values.len() / 2].to_bits();
            if c.iter().any(|v| v.to_bits() == planted) {
                Err("planted failure")
            } else {
                Ok(0.0)
            }
        },
        |a, x| *a += x,
    );
    if !cluster.is_root() {
        return ExitCode::SUCCESS;
    }
    let workers = cluster.size().saturating_sub(1).max(1);
    let sequential = Engine::new()
        .threads(workers)
        .batches(8)
        .debug(true)
        .run_reduce(&values, 0.0f64, sum, |a, x| *a += x);
    match (across, sequential) {
        (Ok(Some(a)), Ok(s)) if a.to_bits() == s.to_bits() => {}
        (a, s) => {
            println!("mismatch: across ranks {a:?}, sequential {s:?}");
            return ExitCode::FAILURE;
        }
    }
    match failing {
        Err(RunError::Molecule(f)) if f.to_string().ends_with("failed: planted failure") => {}
        other => {
            println!("the planted failure was not reported: {other:?}");
            return ExitCode::FAILURE;
        }
    }
    println!("ok: {} ranks", cluster.size());
    ExitCode::SUCCESS
}
