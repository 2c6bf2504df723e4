//! The job engine: stitching order, deterministic reduction, the debug path, load
//! balance, errors and panics, stopping, progress, the bounded window and the fixed
//! worker pool.

use std::collections::HashSet;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use kf_parallel::{Engine, FailureKind, Partition, Progress, ProgressEvent, RunError};

type Never = std::convert::Infallible;

#[test]
fn run_stitches_outputs_in_atom_order() {
    let atoms: Vec<usize> = (0..1000).collect();
    let engine = Engine::new().threads(2).batches(7);
    let out = engine
        .run(&atoms, |chunk: &[usize]| {
            // Make later molecules finish first.
            std::thread::sleep(Duration::from_micros((1000 - chunk[0]) as u64));
            Ok::<_, Never>(chunk.iter().map(|x| x * 2).collect::<Vec<_>>())
        })
        .unwrap();
    assert_eq!(out.len(), 14);
    let flat: Vec<usize> = out.into_iter().flatten().collect();
    assert_eq!(flat, atoms.iter().map(|x| x * 2).collect::<Vec<_>>());
}

/// Values whose sum depends on the order of addition.
fn awkward_values() -> Vec<f64> {
    (0..10_000)
        .map(|i| {
            let x = ((i * 7919) % 1000) as f64;
            if i % 3 == 0 { x * 1e12 } else { x * 1e-7 + 0.1 }
        })
        .collect()
}

#[test]
fn ordered_reduction_is_bit_identical_to_the_debug_path() {
    let values = awkward_values();
    let sum_molecule = |chunk: &[f64]| Ok::<_, Never>(chunk.iter().sum::<f64>());
    let engine = || Engine::new().threads(2).batches(16);
    let sequential = engine()
        .debug(true)
        .run_reduce(&values, 0.0f64, sum_molecule, |a, x| *a += x)
        .unwrap();
    for _ in 0..5 {
        let parallel = engine()
            .run_reduce(&values, 0.0f64, sum_molecule, |a, x| *a += x)
            .unwrap();
        assert_eq!(parallel.to_bits(), sequential.to_bits());
    }
    // Independent check of the molecule order: the same fold done by hand over
    // 32 linear chunks.
    let mut by_hand = 0.0f64;
    for m in Partition::Linear.split(values.len(), 32) {
        by_hand += values[m.atoms].iter().sum::<f64>();
    }
    assert_eq!(sequential.to_bits(), by_hand.to_bits());
}

#[test]
fn nested_partitions_balance_a_triangular_workload() {
    // Atom i of a lower-triangular loop does i + 1 units of work.
    let n = 10_000;
    for (partition, cost) in [
        (
            Partition::NestedLower,
            Box::new(|i: usize| (i + 1) as f64) as Box<dyn Fn(usize) -> f64>,
        ),
        (
            Partition::NestedUpper,
            Box::new(move |i: usize| (n - i) as f64),
        ),
    ] {
        let molecules = partition.split(n, 8);
        assert_eq!(molecules.len(), 8);
        let work: Vec<f64> = molecules
            .iter()
            .map(|m| m.atoms.clone().map(&cost).sum())
            .collect();
        let mean = work.iter().sum::<f64>() / work.len() as f64;
        let max = work.iter().cloned().fold(0.0, f64::max);
        assert!(
            max <= mean * 1.05,
            "{partition:?}: max {max} vs mean {mean}"
        );
        // A linear partition of the same workload is badly unbalanced.
        let linear: Vec<f64> = Partition::Linear
            .split(n, 8)
            .iter()
            .map(|m| m.atoms.clone().map(&cost).sum())
            .collect();
        assert!(linear.iter().cloned().fold(0.0, f64::max) > mean * 1.5);
    }
}

#[test]
fn heavy_first_schedules_by_cost_and_still_stitches_in_atom_order() {
    let engine = Engine::new()
        .threads(2)
        .batches(4)
        .partition(Partition::Linear)
        .heavy_first(true);
    // Linear: equal costs, so the order is unchanged.
    let s = engine.schedule(100);
    assert!(s.windows(2).all(|w| w[0].index < w[1].index));
    let engine = Engine::new()
        .threads(2)
        .batches(4)
        .partition(Partition::NestedUpper)
        .heavy_first(true);
    let schedule = engine.schedule(1000);
    let costs: Vec<f64> = schedule
        .iter()
        .map(|m| Partition::NestedUpper.molecule_cost(m, 1000))
        .collect();
    assert!(costs.windows(2).all(|w| w[0] >= w[1]), "{costs:?}");
    let atoms: Vec<usize> = (0..1000).collect();
    let out = engine
        .run(&atoms, |c: &[usize]| Ok::<_, Never>(c.to_vec()))
        .unwrap();
    assert_eq!(out.into_iter().flatten().collect::<Vec<_>>(), atoms);
}

#[test]
fn a_failing_molecule_is_named_and_stops_the_run() {
    let atoms: Vec<usize> = (0..100).collect();
    let started = AtomicUsize::new(0);
    let engine = Engine::new().threads(2).batches(50); // 100 molecules of 1 atom
    let err = engine
        .run(&atoms, |c: &[usize]| {
            started.fetch_add(1, Ordering::SeqCst);
            std::thread::sleep(Duration::from_millis(1));
            if c[0] == 3 {
                Err(format!("bad atom {}", c[0]))
            } else {
                Ok(c[0])
            }
        })
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "molecule 3 (atoms 3..4) failed: bad atom 3"
    );
    assert!(matches!(&err, RunError::Molecule(f) if f.index == 3));
    // Workers stop claiming: at most the window (2 x threads) past the failure.
    let n = started.load(Ordering::SeqCst);
    assert!(n <= 4 + 4 + 2, "{n} molecules started");
}

#[test]
fn a_panicking_molecule_is_caught_and_named() {
    let atoms: Vec<usize> = (0..10).collect();
    let err = Engine::new()
        .threads(2)
        .batches(5)
        .run(&atoms, |c: &[usize]| {
            if c.contains(&7) {
                panic!("boom at {}", c[0]);
            }
            Ok::<_, Never>(())
        })
        .unwrap_err();
    // The message names the panic's place (the `panic!` six lines up), and the
    // default hook printed nothing: the failure is reported once, here.
    assert_eq!(
        err.to_string(),
        format!(
            "molecule 7 (atoms 7..8) panicked: boom at 7 (at {}:{})",
            file!(),
            line!() - 12
        )
    );
}

#[test]
fn a_caught_panic_prints_nothing_on_stderr() {
    // The child half: a panicking molecule under the engine, with backtraces asked
    // for; it prints the engine's error on stdout, then exits.
    if std::env::var_os("KF_ENGINE_PANIC_CHILD").is_some() {
        let atoms: Vec<usize> = (0..4).collect();
        let err = Engine::new()
            .threads(2)
            .batches(4)
            .run(&atoms, |c: &[usize]| {
                if c[0] == 2 {
                    panic!("quiet boom");
                }
                Ok::<_, Never>(())
            })
            .unwrap_err();
        println!("error: {err}");
        return;
    }
    // The parent half: run this test alone in a child process and read its streams.
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "a_caught_panic_prints_nothing_on_stderr",
            "--nocapture",
            "--test-threads",
            "1",
        ])
        .env("KF_ENGINE_PANIC_CHILD", "1")
        .env("RUST_BACKTRACE", "1")
        .output()
        .unwrap();
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert!(out.status.success(), "{stdout}\n{stderr}");
    assert!(
        stdout.contains("error: molecule 2 (atoms 2..3) panicked: quiet boom (at "),
        "{stdout}"
    );
    // The default hook would print "thread '...' panicked at" and a backtrace.
    assert!(
        !stderr.contains("panicked") && !stderr.contains("backtrace"),
        "{stderr}"
    );
}

#[test]
fn keep_going_reduces_the_successes_and_lists_the_failures() {
    let atoms: Vec<u64> = (0..20).collect();
    let report = Engine::new()
        .threads(2)
        .batches(10)
        .run_reduce_keep_going(
            &atoms,
            0u64,
            |c: &[u64]| {
                if c[0].is_multiple_of(5) {
                    Err("multiple of five")
                } else {
                    Ok(c[0])
                }
            },
            |a, x| *a += x,
        )
        .unwrap();
    // 0..20 minus 0, 5, 10, 15.
    assert_eq!(report.value, 190 - 30);
    let failed: Vec<usize> = report.failures.iter().map(|f| f.index).collect();
    assert_eq!(failed, [0, 5, 10, 15]);
    assert!(matches!(report.failures[0].kind, FailureKind::Failed(_)));
}

#[test]
fn progress_reports_every_molecule_in_order() {
    let events: Arc<Mutex<Vec<ProgressEvent>>> = Arc::default();
    let sink = Arc::clone(&events);
    let atoms: Vec<usize> = (0..64).collect();
    Engine::new()
        .threads(2)
        .batches(8)
        .progress(Progress::Callback(Arc::new(move |e| {
            sink.lock().unwrap().push(e.clone())
        })))
        .run(&atoms, |c: &[usize]| Ok::<_, Never>(c.len()))
        .unwrap();
    let events = events.lock().unwrap();
    assert_eq!(events.len(), 16);
    assert!(
        events
            .iter()
            .enumerate()
            .all(|(i, e)| e.done == i + 1 && e.total == 16)
    );
    assert_eq!(events.last().unwrap().eta, Some(Duration::ZERO));
    assert!(events.windows(2).all(|w| w[0].elapsed <= w[1].elapsed));
}

/// A result that counts how many of its kind are alive.
struct Tracked(Arc<AtomicUsize>);
impl Drop for Tracked {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

#[test]
fn results_waiting_for_delivery_stay_within_the_window() {
    let alive = Arc::new(AtomicUsize::new(0));
    let peak = AtomicUsize::new(0);
    let atoms: Vec<usize> = (0..200).collect();
    let threads = 2;
    Engine::new()
        .threads(threads)
        .batches(100)
        .run_reduce(
            &atoms,
            (),
            |c: &[usize]| {
                // Molecule 0 is slow, so the others finish first and must wait.
                if c[0] == 0 {
                    std::thread::sleep(Duration::from_millis(50));
                }
                let now = alive.fetch_add(1, Ordering::SeqCst) + 1;
                peak.fetch_max(now, Ordering::SeqCst);
                Ok::<_, Never>(Tracked(Arc::clone(&alive)))
            },
            |_, t| drop(t),
        )
        .unwrap();
    assert_eq!(alive.load(Ordering::SeqCst), 0);
    let peak = peak.load(Ordering::SeqCst);
    assert!(peak <= 2 * threads, "{peak} results waited at once");
}

#[test]
fn a_fixed_pool_runs_every_molecule() {
    let names: Mutex<HashSet<String>> = Mutex::default();
    let atoms: Vec<usize> = (0..5000).collect();
    Engine::new()
        .threads(2)
        .batches(500)
        .run(&atoms, |_: &[usize]| {
            let name = std::thread::current().name().unwrap_or("?").to_string();
            names.lock().unwrap().insert(name);
            Ok::<_, Never>(())
        })
        .unwrap();
    let names = names.into_inner().unwrap();
    assert!(names.len() <= 2, "{names:?}");
    assert!(
        names.iter().all(|n| n.starts_with("kf-parallel-")),
        "{names:?}"
    );
}

#[test]
fn empty_and_tiny_inputs() {
    let none: Vec<u8> = Vec::new();
    let out = Engine::new()
        .run(&none, |_: &[u8]| Ok::<_, Never>(1))
        .unwrap();
    assert!(out.is_empty());
    let one = [5u8];
    assert_eq!(
        Engine::new()
            .threads(8)
            .run(&one, |c: &[u8]| Ok::<_, Never>(c[0]))
            .unwrap(),
        [5]
    );
}

/// Molecules that run parallel code of their own (a DAG's kernels, a Parquet
/// writer: a rayon join inside the molecule), in order, with a slow first molecule
/// that holds the delivery window: every run finishes. A worker waiting for the
/// window used to be a job of the pool; a pool thread waiting in a molecule's join
/// could run it, block in it, and never finish the molecule under it.
#[test]
fn molecules_with_parallel_code_inside_never_deadlock_the_window() {
    use rayon::prelude::*;
    let (done, finished) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for run in 0..200 {
            let atoms: Vec<usize> = (0..64).collect();
            let sums = Engine::new()
                .threads(2)
                .batches(32)
                .run(&atoms, |c: &[usize]| {
                    if c[0] == 0 && run % 2 == 0 {
                        std::thread::sleep(Duration::from_millis(2));
                    }
                    let s: usize = (0..2_000usize)
                        .into_par_iter()
                        .with_min_len(64)
                        .map(|i| i * c[0])
                        .sum();
                    Ok::<_, Never>((c[0], s))
                })
                .unwrap();
            // Every molecule, in atom order, with its own sum.
            let firsts: Vec<usize> = sums.iter().map(|&(a, _)| a).collect();
            assert!(
                firsts.windows(2).all(|w| w[0] < w[1]),
                "run {run}: {firsts:?}"
            );
            assert_eq!(firsts.first(), Some(&0), "run {run}");
            for (a, s) in sums {
                assert_eq!(s, a * 1_999_000, "run {run}, molecule at atom {a}");
            }
        }
        let _ = done.send(());
    });
    assert!(
        finished.recv_timeout(Duration::from_secs(120)).is_ok(),
        "the engine deadlocked (or a run failed: see the other thread's panic)"
    );
}
