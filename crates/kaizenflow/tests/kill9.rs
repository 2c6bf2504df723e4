//! `kill -9` at random instants of `data import`, `run` and `sweep` (20 times each)
//! never leaves a store or an `--out` whose files read back as valid but wrong.
//!
//! The rule checked after every kill: a store is byte for byte the earlier one or the
//! new one; an `--out` whose marker says `complete = true` holds exactly one run's
//! files, each byte for byte as an uninterrupted run writes it; one that says
//! `complete = false` holds only files of one of the two runs, each whole. (Timing
//! files, `timings.tsv`, the sweep's `summary.tsv` and `report.html`, which charts
//! the time by node, differ between any two runs and are only required to be whole.)

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::workspace;

const KILLS: usize = 20;

fn program(args: &[String]) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_kaizenflow"));
    c.args(args)
        .current_dir(workspace())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    c
}

/// Runs to the end; returns the wall time.
fn complete(args: &[String]) -> Duration {
    let start = Instant::now();
    let status = program(args).status().unwrap();
    assert!(status.success(), "{args:?}");
    start.elapsed()
}

/// Starts `args`, kills it with SIGKILL after `after`, and waits for it.
fn kill_after(args: &[String], after: Duration) {
    let mut child = program(args).spawn().unwrap();
    std::thread::sleep(after);
    let _ = child.kill(); // SIGKILL on Unix
    let _ = child.wait();
}

/// Every file under `dir` (relative path -> bytes), hidden temporary files left out.
fn files(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in entries.flatten() {
            let p = e.path();
            let name = e.file_name().to_string_lossy().into_owned();
            let temp = name.starts_with('.') && name.ends_with(".tmp");
            if p.is_dir() {
                if !temp {
                    stack.push(p);
                }
            } else if !(name.starts_with('.') && name.ends_with(".tmp")
                || name.ends_with(".tmp.png"))
            {
                out.insert(
                    p.strip_prefix(dir).unwrap().to_path_buf(),
                    std::fs::read(&p).unwrap(),
                );
            }
        }
    }
    out
}

fn varies(p: &Path) -> bool {
    matches!(
        p.file_name().and_then(|n| n.to_str()),
        Some("timings.tsv" | "summary.tsv" | "report.html" | ".kaizenflow-run")
    )
}

/// Whether `got` holds only files of `run`, each identical (all of them when
/// `whole`).
fn subset_of(
    got: &BTreeMap<PathBuf, Vec<u8>>,
    run: &BTreeMap<PathBuf, Vec<u8>>,
    whole: bool,
) -> bool {
    got.iter()
        .all(|(p, b)| run.get(p).is_some_and(|r| varies(p) || r == b))
        && (!whole || run.keys().all(|p| got.contains_key(p)))
}

/// The outputs of a directory after a kill obey the rule in the module doc.
fn check_out(
    dir: &Path,
    old: &BTreeMap<PathBuf, Vec<u8>>,
    new: &BTreeMap<PathBuf, Vec<u8>>,
    what: &str,
) {
    let got = files(dir);
    if got.is_empty() {
        return;
    }
    // Each marker (the top one, and a sweep's per point) governs its folder.
    let mut folders: Vec<PathBuf> = got
        .keys()
        .filter(|p| p.file_name().is_some_and(|n| n == ".kaizenflow-run"))
        .map(|p| p.parent().unwrap().to_path_buf())
        .collect();
    folders.sort_by_key(|f| std::cmp::Reverse(f.components().count()));
    let mut rest = got.clone();
    for folder in folders {
        let mine: BTreeMap<PathBuf, Vec<u8>> = rest
            .iter()
            .filter(|(p, _)| {
                p.parent() == Some(folder.as_path())
                    || p.starts_with(folder.join("state"))
                    || p.starts_with(folder.join("capture"))
            })
            .map(|(p, b)| (p.clone(), b.clone()))
            .collect();
        rest.retain(|p, _| !mine.contains_key(p));
        let marker = String::from_utf8_lossy(&mine[&folder.join(".kaizenflow-run")]).into_owned();
        let whole = marker.contains("complete = true");
        assert!(
            whole || marker.contains("complete = false"),
            "{what}: marker {marker:?}"
        );
        let scope = |run: &BTreeMap<PathBuf, Vec<u8>>| -> BTreeMap<PathBuf, Vec<u8>> {
            run.iter()
                .filter(|(p, _)| {
                    p.parent() == Some(folder.as_path()) || p.starts_with(folder.join("state"))
                })
                .map(|(p, b)| (p.clone(), b.clone()))
                .collect()
        };
        let ok = subset_of(&mine, &scope(old), whole) || subset_of(&mine, &scope(new), whole);
        assert!(
            ok,
            "{what}: {} is neither run's (complete: {whole}); files {:?}",
            folder.display(),
            mine.keys().collect::<Vec<_>>()
        );
    }
    // Files outside any marked folder: a point folder created but not yet marked.
    assert!(
        rest.is_empty(),
        "{what}: unmarked files {:?}",
        rest.keys().collect::<Vec<_>>()
    );
}

fn args(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| s.to_string()).collect()
}

/// A deterministic sequence of kill instants spread over `(0, span)`.
fn instants(span: Duration) -> Vec<Duration> {
    let mut x = 0x2545_f491_4f6c_dd1du64;
    (0..KILLS)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            span.mul_f64((x % 10_000) as f64 / 10_000.0)
        })
        .collect()
}

#[test]
fn a_killed_data_import_leaves_the_old_store_or_the_new_one() {
    let tmp = tempfile::tempdir().unwrap();
    let target = tmp.path().join("s.parquet").display().to_string();
    let make = |seed: &str, out: &str| {
        args(&[
            "data",
            "import",
            "configs/mock1.toml",
            "--set",
            "market_data.bars=20000",
            "--set",
            seed,
            "--out",
            out,
        ])
    };
    let old_path = tmp.path().join("old.parquet").display().to_string();
    let new_path = tmp.path().join("new.parquet").display().to_string();
    complete(&make("market_data.seed=1", &old_path));
    let span = complete(&make("market_data.seed=2", &new_path));
    let (old, new) = (
        std::fs::read(&old_path).unwrap(),
        std::fs::read(&new_path).unwrap(),
    );
    assert_ne!(old, new);
    for (k, at) in instants(span).into_iter().enumerate() {
        std::fs::write(&target, &old).unwrap();
        kill_after(&make("market_data.seed=2", &target), at);
        let got = std::fs::read(&target).unwrap();
        assert!(
            got == old || got == new,
            "kill {k} at {at:?}: the store is neither"
        );
        // And it reads back (it is a whole store).
        let o = common::kaizenflow(&["data", "info", &target]);
        assert!(o.status.success(), "kill {k}: {}", common::text(&o.stderr));
    }
}

#[test]
fn a_killed_run_leaves_files_of_one_run_only() {
    let tmp = tempfile::tempdir().unwrap();
    let make = |seed: &str, out: &Path| {
        args(&[
            "run",
            "configs/library.toml",
            "--set",
            seed,
            "--out",
            &out.display().to_string(),
        ])
    };
    let (old_dir, new_dir) = (tmp.path().join("old"), tmp.path().join("new"));
    complete(&make("market_data.seed=1", &old_dir));
    let span = complete(&make("market_data.seed=2", &new_dir));
    let (old, new) = (files(&old_dir), files(&new_dir));
    assert_ne!(
        old.get(Path::new("result.parquet")),
        new.get(Path::new("result.parquet"))
    );
    let target = tmp.path().join("out");
    for (k, at) in instants(span).into_iter().enumerate() {
        let _ = std::fs::remove_dir_all(&target);
        complete(&make("market_data.seed=1", &target));
        kill_after(&make("market_data.seed=2", &target), at);
        check_out(&target, &old, &new, &format!("run kill {k} at {at:?}"));
    }
    // A rerun after a kill writes the uninterrupted run's files.
    complete(&make("market_data.seed=2", &target));
    let after = files(&target);
    assert!(
        subset_of(&after, &new, true),
        "the rerun equals the uninterrupted run"
    );
}

#[test]
fn a_killed_sweep_leaves_files_of_one_sweep_only() {
    let tmp = tempfile::tempdir().unwrap();
    let make = |bars: &str, out: &Path| {
        args(&[
            "sweep",
            "configs/sweep_example.toml",
            "--set",
            bars,
            "--threads",
            "2",
            "--out",
            &out.display().to_string(),
        ])
    };
    let (old_dir, new_dir) = (tmp.path().join("old"), tmp.path().join("new"));
    complete(&make("market_data.bars=3000", &old_dir));
    let span = complete(&make("market_data.bars=4000", &new_dir));
    let (old, new) = (files(&old_dir), files(&new_dir));
    let target = tmp.path().join("out");
    for (k, at) in instants(span).into_iter().enumerate() {
        let _ = std::fs::remove_dir_all(&target);
        complete(&make("market_data.bars=3000", &target));
        kill_after(&make("market_data.bars=4000", &target), at);
        check_out(&target, &old, &new, &format!("sweep kill {k} at {at:?}"));
    }
}
