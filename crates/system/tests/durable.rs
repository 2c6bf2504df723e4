//! Durable runs: a system process killed at random decisions (its processor calls
//! `abort`, as abrupt as `kill -9`) and started again each time ends with exactly
//! the run an uninterrupted process gives, every decision recorded once; a torn
//! journal append is cut back; a folder of another config is refused.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::{config, fingerprint, write_days};
use kf_config::Config;
use kf_system::durable::{CHECKPOINT, JOURNAL};
use kf_system::{Decide, ForecastProcessor, Registries, System};

/// In a child process: the folder of the run.
const CHILD_DIR: &str = "KF_TEST_DURABLE_DIR";
/// In a child process: the processor call at which it aborts (counted over the
/// run's whole life, across restarts).
const CHILD_ABORT: &str = "KF_TEST_DURABLE_ABORT_AT";

/// Trades the forecast's sign in lots that cycle with the number of calls (its
/// state), and aborts the process at call `abort_at`.
#[derive(Debug)]
struct Aborting {
    calls: u64,
    abort_at: Option<u64>,
}

impl ForecastProcessor for Aborting {
    fn kind(&self) -> &'static str {
        "aborting"
    }
    fn orders(&mut self, input: &Decide<'_>, orders: &mut [f64]) {
        self.calls += 1;
        if self.abort_at == Some(self.calls) {
            std::process::abort();
        }
        let lot = 10.0 * (1 + self.calls % 3) as f64;
        for (i, o) in orders.iter_mut().enumerate() {
            let f = input.forecast[i];
            *o = if f.is_finite() {
                f.signum() * lot - input.holdings[i]
            } else {
                0.0
            };
        }
    }
    fn reset(&mut self) {
        self.calls = 0;
    }
    fn save_state(&self) -> Option<Vec<u8>> {
        Some(self.calls.to_le_bytes().to_vec())
    }
    fn load_state(&mut self, bytes: &[u8]) -> Result<(), String> {
        let b: [u8; 8] = bytes.try_into().map_err(|_| "not 8 bytes".to_string())?;
        self.calls = u64::from_le_bytes(b);
        Ok(())
    }
}

fn types(abort_at: Option<u64>) -> Registries {
    let mut types = Registries::default();
    types
        .processors
        .insert(
            "aborting",
            kf_config::TypeDoc::new("aborts the process at a given call"),
            Box::new(move |_: &kf_config::Section<'_>| {
                Ok(Box::new(Aborting { calls: 0, abort_at }) as Box<dyn ForecastProcessor>)
            }),
        )
        .unwrap();
    types
}

fn system_config(dir: &Path) -> Config {
    config(
        &dir.join("bars.csv"),
        "[system.processor]\ntype = \"aborting\"\n",
    )
}

/// Starts this test in a child process that runs the durable system in `dir` and
/// aborts at call `abort_at`; returns whether it was killed by that abort (by
/// SIGABRT, not a panic or a clean end).
fn child(dir: &Path, abort_at: u64) -> bool {
    use std::os::unix::process::ExitStatusExt;
    let exe = std::env::current_exe().unwrap();
    let out = Command::new(exe)
        .args([
            "--exact",
            "a_system_killed_at_random_decisions_ends_with_an_uninterrupted_runs_bits",
            "--test-threads",
            "1",
        ])
        .env(CHILD_DIR, dir)
        .env(CHILD_ABORT, abort_at.to_string())
        .output()
        .unwrap();
    let aborted = out.status.signal() == Some(6);
    if !aborted {
        eprintln!(
            "{}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    aborted
}

#[test]
fn a_system_killed_at_random_decisions_ends_with_an_uninterrupted_runs_bits() {
    if let Ok(dir) = std::env::var(CHILD_DIR) {
        // The child: run until the abort.
        let abort_at = std::env::var(CHILD_ABORT).unwrap().parse().unwrap();
        let dir = PathBuf::from(dir);
        let types = types(Some(abort_at));
        let config = system_config(&dir);
        let mut system = System::from_config_with(&types, &config).unwrap();
        system.run_durable(&dir.join("run")).unwrap();
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    write_days(&dir.join("bars.csv"), 2);
    let plain_types = types(None);
    let config = system_config(dir);
    let whole = System::from_config_with(&plain_types, &config)
        .unwrap()
        .run()
        .unwrap();
    let decisions = whole.bars.len() as u64;
    assert!(decisions > 150 && whole.fills.ts.len() > 100);

    // Five kills at pseudo-random calls (a fixed seed), one of them before any
    // decision was recorded; after two of them a torn append is left in the
    // journal, as a kill in the middle of a write leaves it.
    let mut seed = 0x2545_f491_4f6c_dd1du64;
    let mut points: Vec<u64> = (0..4)
        .map(|_| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            2 + seed % (decisions - 4)
        })
        .collect();
    points.push(1);
    points.sort_unstable();
    points.dedup();
    assert!(points.len() >= 4, "{points:?}");
    let journal = dir.join("run").join(JOURNAL);
    for (i, &k) in points.iter().enumerate() {
        assert!(child(dir, k), "the child aborts at call {k}");
        if i % 2 == 1 {
            let mut bytes = std::fs::read(&journal).unwrap();
            bytes.extend_from_slice(&[0x2a, 0, 0, 0, 0, 0, 0, 0, 1, 2, 3]);
            std::fs::write(&journal, bytes).unwrap();
        }
    }
    assert!(dir.join("run").join(CHECKPOINT).exists());

    // Started once more, it resumes and runs to the end.
    let (run, resumed) = System::from_config_with(&plain_types, &config)
        .unwrap()
        .run_durable(&dir.join("run"))
        .unwrap();
    let last = *points.last().unwrap();
    assert_eq!(
        resumed.decisions as u64 + 1,
        last,
        "resumed after the last recorded call"
    );
    assert_eq!(fingerprint(&run), fingerprint(&whole));
    // Every decision exactly once, in order.
    assert_eq!(run.bars.len(), whole.bars.len());
    assert!(run.bars.windows(2).all(|w| w[0].ts < w[1].ts));

    // A finished run started again decides nothing more and gives the same run.
    let (again, resumed) = System::from_config_with(&plain_types, &config)
        .unwrap()
        .run_durable(&dir.join("run"))
        .unwrap();
    assert_eq!(resumed.decisions, whole.bars.len());
    assert_eq!(fingerprint(&again), fingerprint(&whole));
}

#[test]
fn a_folder_of_another_config_or_a_damaged_checkpoint_is_refused_by_name() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    write_days(&dir.join("bars.csv"), 1);
    let types = types(None);
    let run_dir = dir.join("run");
    System::from_config_with(&types, &system_config(dir))
        .unwrap()
        .run_durable(&run_dir)
        .unwrap();
    let other = config(
        &dir.join("bars.csv"),
        "[system.processor]\ntype = \"cross_sectional\"\n",
    );
    let e = System::from_config_with(&types, &other)
        .unwrap()
        .run_durable(&run_dir)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("holds a run of another config or version") && e.contains("another folder"),
        "{e}"
    );
    let checkpoint = run_dir.join(CHECKPOINT);
    let mut bytes = std::fs::read(&checkpoint).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 1;
    std::fs::write(&checkpoint, bytes).unwrap();
    let e = System::from_config_with(&types, &system_config(dir))
        .unwrap()
        .run_durable(&run_dir)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("checkpoint.kfs: damaged checkpoint") && e.contains("remove the folder"),
        "{e}"
    );
}
