//! An adversarial campaign against the `kaizenflow` program: generated broken inputs
//! (hostile `--set` values, corrupted CSV, corrupted Parquet stores, damaged state
//! files, resource bombs, deep keys), each run as a process with a time limit, and
//! every outcome classified:
//!
//! - **clean error**: exit 1 with an `error:` message (or 2, a usage error);
//! - **accepted**: exit 0 on an input that may be valid;
//! - **accepted garbage**: exit 0 on an input the case knows to be invalid (a NaN
//!   where a finite number is required, a flipped bit that changed what a store
//!   reads back, a damaged state);
//! - **panic** (exit 101), **crash** (a signal or an abort), **hang** (past the limit).
//!
//! The test fails on any panic, crash, hang or accepted garbage, printing each case.
//! `KF_CAMPAIGN_CASES` sets the number of cases (CI runs the default; a longer run:
//! `KF_CAMPAIGN_CASES=10000 cargo test --release -p kaizenflow --test campaign --
//! --nocapture`), `KF_CAMPAIGN_SEED` the seed.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use common::workspace;

/// What a case knows about its input.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Expect {
    /// The input is invalid: exit 0 is accepted garbage.
    Invalid,
    /// The input may be valid: exit 0 is fine.
    Either,
    /// Exit 0 is fine only when stdout equals this case's reference.
    SameAs(usize),
}

struct Case {
    section: &'static str,
    args: Vec<String>,
    expect: Expect,
    limit: Duration,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Outcome {
    CleanError,
    Accepted,
    AcceptedGarbage,
    Panic,
    Crash,
    Hang,
}

/// A small xorshift generator: the campaign is reproducible from its seed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }
}

/// The kinds of value a key takes, so a case knows which values are invalid.
#[derive(Clone, Copy)]
enum Kind {
    /// A positive count (rows, assets, bars, lags).
    Count,
    /// A positive finite float.
    Positive,
    /// Any finite float.
    Finite,
    /// Any number but NaN (an infinite bound is no bound).
    NotNan,
}

/// Keys to attack: (config, key, kind).
const KEYS: &[(&str, &str, Kind)] = &[
    ("configs/mock1.toml", "market_data.assets", Kind::Count),
    ("configs/mock1.toml", "market_data.bars", Kind::Count),
    ("configs/mock1.toml", "market_data.vol", Kind::Finite),
    ("configs/mock1.toml", "dag.compress_scale", Kind::Positive),
    (
        "configs/library.toml",
        "dag.nodes.zscore.window",
        Kind::Count,
    ),
    ("configs/library.toml", "dag.nodes.vol.window", Kind::Count),
    (
        "configs/library.toml",
        "dag.nodes.lagged.num_lags",
        Kind::Count,
    ),
    (
        "configs/library.toml",
        "dag.nodes.smooth.tau",
        Kind::Positive,
    ),
    (
        "configs/library.toml",
        "dag.nodes.smooth.depth",
        Kind::Count,
    ),
    (
        "configs/library.toml",
        "dag.nodes.bounded.lower",
        Kind::NotNan,
    ),
    (
        "configs/library.toml",
        "dag.nodes.bounded.upper",
        Kind::NotNan,
    ),
    (
        "configs/mock1_system.toml",
        "system.costs.impact_bps",
        Kind::Finite,
    ),
    (
        "configs/mock1_system.toml",
        "system.costs.half_spread_bps",
        Kind::Finite,
    ),
    (
        "configs/mock1_system.toml",
        "system.initial_cash",
        Kind::Positive,
    ),
];

/// Values that are invalid for every key of `kind`.
fn invalid_values(kind: Kind) -> Vec<String> {
    let common = [
        "nan",
        "-nan",
        "\"\"",
        "\"x\"",
        "true",
        "[1, 2]",
        "{ a = 1 }",
    ];
    let mut v: Vec<String> = common.iter().map(|s| s.to_string()).collect();
    if !matches!(kind, Kind::NotNan) {
        v.extend(["inf", "-inf"].map(String::from));
    }
    match kind {
        Kind::NotNan => {}
        Kind::Count => v.extend(
            [
                "-1",
                "0",
                "1.5",
                "9223372036854775807",
                "1000000000000",
                "-9223372036854775808",
            ]
            .map(String::from),
        ),
        Kind::Positive => v.extend(["0", "-1", "-1e308", "1e999"].map(String::from)),
        Kind::Finite => v.extend(["1e999", "-1e999"].map(String::from)),
    }
    v
}

/// Values of unknown validity: the program may accept them.
const ANY_VALUES: &[&str] = &[
    "1",
    "2",
    "10",
    "1000000",
    "1e308",
    "-0.0",
    "0.5",
    "\"5min\"",
    "\"1ns\"",
    "\"-1h\"",
    "2024-01-02T09:30:00",
    "\"../../x\"",
    "\"\\u0000\"",
    "[]",
    "{}",
    "\"a.b.c\"",
];

/// Hostile `--set` cases through `config show` (which builds everything).
fn set_cases(rng: &mut Rng, n: usize, out: &mut Vec<Case>) {
    for _ in 0..n {
        let (config, key, kind) = *rng.pick(KEYS);
        let (value, expect) = if rng.below(3) > 0 {
            (rng.pick(&invalid_values(kind)).clone(), Expect::Invalid)
        } else {
            (rng.pick(ANY_VALUES).to_string(), Expect::Either)
        };
        // Some cases also aim at a key that does not exist (a typo): always refused.
        let (key, expect) = if rng.below(10) == 0 {
            (format!("{key}x"), Expect::Invalid)
        } else {
            (key.to_string(), expect)
        };
        out.push(Case {
            section: "set",
            args: ["config", "show", config, "--set", &format!("{key}={value}")]
                .map(String::from)
                .to_vec(),
            expect,
            limit: Duration::from_secs(30),
        });
    }
}

/// Resource bombs and deep keys: sizes up to 10^19, paths of thousands of segments.
fn bomb_cases(rng: &mut Rng, n: usize, scratch: &Path, out: &mut Vec<Case>) {
    let sized = [
        "market_data.assets",
        "market_data.bars",
        "dag.nodes.zscore.window",
        "dag.nodes.lagged.num_lags",
        "dag.nodes.shifted.periods",
        "dag.nodes.range.term2_delay",
        "dag.nodes.smooth.depth",
    ];
    for i in 0..n {
        let args = match rng.below(4) {
            0 | 1 => {
                let key = rng.pick(&sized);
                let config = if key.starts_with("market_data") {
                    "configs/mock1.toml"
                } else {
                    "configs/library.toml"
                };
                // Data sizes from 10^8 cells up, all refused by the memory bound (a
                // legitimate 10^7-bar run is minutes of work in a debug build, not a
                // bomb); node sizes from 10^6 up.
                let exp = if key.starts_with("market_data") { 8 } else { 6 } + rng.below(11);
                let v = format!(
                    "{}{}",
                    if rng.below(4) == 0 { "-" } else { "" },
                    "1".to_string() + &"0".repeat(exp)
                );
                let dir = scratch.join(format!("bomb{i}"));
                vec![
                    "run".into(),
                    config.into(),
                    "--set".into(),
                    format!("{key}={v}"),
                    "--out".into(),
                    dir.display().to_string(),
                ]
            }
            2 => {
                let deep = vec!["k"; 1000 + rng.below(60_000)].join(".");
                vec![
                    "config".into(),
                    "show".into(),
                    "configs/mock1.toml".into(),
                    "--set".into(),
                    format!("{deep}=1"),
                ]
            }
            _ => {
                // Linux holds one argument to 128 KiB.
                let long = "y".repeat(10_000 + rng.below(110_000));
                vec![
                    "config".into(),
                    "show".into(),
                    "configs/mock1.toml".into(),
                    "--set".into(),
                    format!("dag.resample_rule=\"{long}\""),
                ]
            }
        };
        out.push(Case {
            section: "bombs",
            args,
            expect: Expect::Either,
            limit: Duration::from_secs(60),
        });
    }
}

/// A small CSV source: two assets, 60 one-minute bars each.
fn csv_base() -> Vec<(String, String)> {
    ["AAA", "BBB"]
        .iter()
        .map(|a| {
            let mut s = String::from("t,close,volume\n");
            for m in 0..60 {
                let minute = 31 + m;
                s.push_str(&format!(
                    "2024-01-02 {:02}:{:02}:00,{}.{},{}\n",
                    14 + minute / 60,
                    minute % 60,
                    100 + m,
                    m % 10,
                    1000 + m
                ));
            }
            (a.to_string(), s)
        })
        .collect()
}

/// Corrupted CSV files through `data import`.
fn csv_cases(rng: &mut Rng, n: usize, scratch: &Path, out: &mut Vec<Case>) {
    let base = csv_base();
    for i in 0..n {
        let dir = scratch.join(format!("csv{i}"));
        std::fs::create_dir_all(&dir).unwrap();
        let mut files = base.clone();
        let f = rng.below(files.len());
        let mut lines: Vec<String> = files[f].1.lines().map(String::from).collect();
        let row = 1 + rng.below(lines.len() - 1);
        let mut fields: Vec<String> = lines[row].split(',').map(String::from).collect();
        let expect = match rng.below(10) {
            0 => {
                fields[1 + rng.below(2)] =
                    rng.pick(&["abc", "1.2.3", "0x1p", "--1", "1e"]).to_string();
                Expect::Invalid
            }
            1 => {
                fields[0] = rng
                    .pick(&[
                        "2024-13-02 14:31:00",
                        "1000-01-01 00:00:00",
                        "9999-12-31 23:59:59",
                        "yesterday",
                        "2024-02-30 10:00:00",
                        "0001-01-01",
                    ])
                    .to_string();
                Expect::Invalid
            }
            2 => {
                fields.push("7".into());
                Expect::Invalid
            }
            3 => {
                fields.pop();
                Expect::Invalid
            }
            4 => {
                // Out of order: two adjacent data rows swapped.
                let r = 1 + rng.below(lines.len() - 2);
                lines.swap(r, r + 1);
                fields = lines[row].split(',').map(String::from).collect();
                Expect::Invalid
            }
            5 => {
                lines[0] = rng
                    .pick(&[
                        "t,close,close",
                        "t,close",
                        "x,close,volume",
                        "t,close,volume,extra",
                        "",
                    ])
                    .to_string();
                Expect::Invalid
            }
            6 => {
                // Random bytes in place of a field.
                let junk: String = (0..1 + rng.below(20))
                    .map(|_| char::from(32 + rng.below(95) as u8))
                    .collect();
                let at = rng.below(fields.len());
                fields[at] = junk;
                Expect::Either
            }
            7 => {
                fields[1] = rng.pick(&["nan", "", "inf", "-0.0", "1e308"]).to_string();
                Expect::Either
            }
            8 => {
                let cut = rng.below(files[f].1.len());
                files[f].1.truncate(cut);
                lines = files[f].1.lines().map(String::from).collect();
                fields = lines
                    .get(row)
                    .map(|l| l.split(',').map(String::from).collect())
                    .unwrap_or_default();
                Expect::Either
            }
            _ => {
                lines.insert(row, lines[row].clone());
                fields = lines[row].split(',').map(String::from).collect();
                Expect::Invalid // a repeated bar under `order = "strict"`
            }
        };
        if row < lines.len() && !fields.is_empty() {
            lines[row] = fields.join(",");
        }
        files[f].1 = lines.join("\n") + "\n";
        for (a, body) in &files {
            std::fs::write(dir.join(format!("{a}.csv")), body).unwrap();
        }
        let cfg = dir.join("c.toml");
        std::fs::write(
            &cfg,
            format!(
                "[market_data]\ntype = \"csv\"\nfiles = \"{}/*.csv\"\ntimestamp_column = \"t\"\n\
                 asset_from_file = \"{{asset}}.csv\"\ntz = \"UTC\"\n",
                dir.display()
            ),
        )
        .unwrap();
        out.push(Case {
            section: "csv",
            args: vec![
                "data".into(),
                "import".into(),
                cfg.display().to_string(),
                "--out".into(),
                dir.join("s.parquet").display().to_string(),
            ],
            expect,
            limit: Duration::from_secs(30),
        });
    }
}

/// Bit flips, byte runs and truncations of a store through `data info`; exit 0 is
/// fine only when the output is the pristine store's.
fn parquet_cases(rng: &mut Rng, n: usize, scratch: &Path, out: &mut Vec<Case>) -> (PathBuf, usize) {
    let store = scratch.join("pristine.parquet");
    let o = Command::new(env!("CARGO_BIN_EXE_kaizenflow"))
        .args([
            "data",
            "import",
            "configs/mock1.toml",
            "--set",
            "market_data.bars=200",
            "--out",
        ])
        .arg(&store)
        .current_dir(workspace())
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let bytes = std::fs::read(&store).unwrap();
    let reference = out.len();
    out.push(Case {
        section: "parquet",
        args: vec!["data".into(), "info".into(), store.display().to_string()],
        expect: Expect::Either,
        limit: Duration::from_secs(30),
    });
    for i in 0..n {
        let mut b = bytes.clone();
        match rng.below(4) {
            0 | 1 => {
                let j = rng.below(b.len());
                b[j] ^= 1 << rng.below(8);
            }
            2 => {
                let j = rng.below(b.len());
                let len = (1 + rng.below(64)).min(b.len() - j);
                for x in &mut b[j..j + len] {
                    *x = rng.next() as u8;
                }
            }
            _ => b.truncate(rng.below(b.len())),
        }
        // The same name as the pristine store, in its own folder, so that the outputs
        // compare whole.
        let dir = scratch.join(format!("pq{i}"));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join("pristine.parquet");
        std::fs::write(&p, b).unwrap();
        out.push(Case {
            section: "parquet",
            args: vec!["data".into(), "info".into(), p.display().to_string()],
            expect: Expect::SameAs(reference),
            limit: Duration::from_secs(30),
        });
    }
    (store, reference)
}

/// Damaged state files through `run --state`: every damage must be refused.
fn state_cases(rng: &mut Rng, n: usize, scratch: &Path, out: &mut Vec<Case>) {
    let fitted = scratch.join("fitted");
    let o = Command::new(env!("CARGO_BIN_EXE_kaizenflow"))
        .args(["run", "configs/library.toml", "--out"])
        .arg(&fitted)
        .current_dir(workspace())
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let states: Vec<PathBuf> = std::fs::read_dir(fitted.join("state"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    for i in 0..n {
        let dir = scratch.join(format!("st{i}"));
        std::fs::create_dir_all(dir.join("state")).unwrap();
        for s in &states {
            std::fs::copy(s, dir.join("state").join(s.file_name().unwrap())).unwrap();
        }
        let victim = dir
            .join("state")
            .join(rng.pick(&states).file_name().unwrap());
        let mut b = std::fs::read(&victim).unwrap();
        match rng.below(3) {
            0 => {
                let j = rng.below(b.len());
                b[j] ^= 1 << rng.below(8);
            }
            1 => b.truncate(rng.below(b.len())),
            _ => b = (0..rng.below(4096)).map(|_| rng.next() as u8).collect(),
        }
        std::fs::write(&victim, b).unwrap();
        out.push(Case {
            section: "state",
            args: vec![
                "run".into(),
                "configs/library.toml".into(),
                "--state".into(),
                dir.display().to_string(),
                "--out".into(),
                dir.join("o").display().to_string(),
            ],
            expect: Expect::Invalid,
            limit: Duration::from_secs(60),
        });
    }
}

/// A case's outcome, stdout and stderr.
type Ran = (Outcome, Vec<u8>, String);

/// Runs one case.
fn run_case(case: &Case) -> Ran {
    let mut child = Command::new(env!("CARGO_BIN_EXE_kaizenflow"))
        .args(&case.args)
        .current_dir(workspace())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Drain both pipes while waiting: a child blocked on a full pipe is not a hang.
    let mut stdout = child.stdout.take().unwrap();
    let mut stderr = child.stderr.take().unwrap();
    let out_reader = std::thread::spawn(move || {
        let mut b = Vec::new();
        let _ = std::io::Read::read_to_end(&mut stdout, &mut b);
        b
    });
    let err_reader = std::thread::spawn(move || {
        let mut b = Vec::new();
        let _ = std::io::Read::read_to_end(&mut stderr, &mut b);
        b
    });
    let start = Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break Some(s);
        }
        if start.elapsed() > case.limit {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    let Some(status) = status else {
        return (Outcome::Hang, Vec::new(), String::new());
    };
    let stdout = out_reader.join().unwrap_or_default();
    let err = String::from_utf8_lossy(&err_reader.join().unwrap_or_default()).into_owned();
    let outcome = match status.code() {
        Some(0) => Outcome::Accepted,
        Some(1) if err.starts_with("error: ") && !err.contains("panicked") => Outcome::CleanError,
        Some(2) if err.contains("error:") => Outcome::CleanError,
        Some(101) => Outcome::Panic,
        _ => Outcome::Crash,
    };
    (outcome, stdout, err)
}

#[test]
fn the_program_survives_a_campaign_of_broken_inputs() {
    let total: usize = std::env::var("KF_CAMPAIGN_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3000);
    let seed: u64 = std::env::var("KF_CAMPAIGN_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(23);
    let scratch = tempfile::tempdir().unwrap();
    let mut rng = Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1);
    let mut cases = Vec::new();
    // Shares of the campaign: cheap cases most, process-heavy ones less.
    set_cases(&mut rng, total * 35 / 100, &mut cases);
    csv_cases(&mut rng, total * 25 / 100, scratch.path(), &mut cases);
    parquet_cases(&mut rng, total * 25 / 100, scratch.path(), &mut cases);
    state_cases(&mut rng, total * 8 / 100, scratch.path(), &mut cases);
    bomb_cases(&mut rng, total * 7 / 100, scratch.path(), &mut cases);

    let results: Vec<Mutex<Option<Ran>>> = cases.iter().map(|_| Mutex::new(None)).collect();
    let next = AtomicUsize::new(0);
    let workers = std::thread::available_parallelism()
        .map_or(2, usize::from)
        .min(4);
    std::thread::scope(|s| {
        for _ in 0..workers {
            s.spawn(|| {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(case) = cases.get(i) else { break };
                    let r = run_case(case);
                    *results[i].lock().unwrap() = Some(r);
                }
            });
        }
    });
    let results: Vec<Ran> = results
        .into_iter()
        .map(|m| m.into_inner().unwrap().unwrap())
        .collect();
    let mut counts = std::collections::BTreeMap::<(&str, Outcome), usize>::new();
    let mut bad = Vec::new();
    for (case, (outcome, stdout, err)) in cases.iter().zip(&results) {
        let mut outcome = *outcome;
        if outcome == Outcome::Accepted {
            match case.expect {
                Expect::Invalid => outcome = Outcome::AcceptedGarbage,
                Expect::SameAs(r) => {
                    // The outputs name their files: compare them under one name.
                    let shown = |c: &Case, out: &[u8]| {
                        let path = c.args.last().map_or("", String::as_str);
                        String::from_utf8_lossy(out).replace(path, "STORE")
                    };
                    if shown(&cases[r], &results[r].1) != shown(case, stdout) {
                        outcome = Outcome::AcceptedGarbage;
                    }
                }
                _ => {}
            }
        }
        *counts.entry((case.section, outcome)).or_default() += 1;
        if outcome >= Outcome::AcceptedGarbage {
            let tail: String = err
                .chars()
                .rev()
                .take(400)
                .collect::<Vec<_>>()
                .into_iter()
                .rev()
                .collect();
            bad.push(format!(
                "{outcome:?}: {}\n  {tail}",
                common::text(case.args.join(" ").as_bytes())
                    .chars()
                    .take(300)
                    .collect::<String>()
            ));
        }
    }
    let sum = |o: Outcome| {
        counts
            .iter()
            .filter(|((_, x), _)| *x == o)
            .map(|(_, n)| n)
            .sum::<usize>()
    };
    println!(
        "campaign (seed {seed}): {} cases: {} clean errors, {} accepted, {} accepted garbage, {} panics, {} crashes, {} hangs",
        cases.len(),
        sum(Outcome::CleanError),
        sum(Outcome::Accepted),
        sum(Outcome::AcceptedGarbage),
        sum(Outcome::Panic),
        sum(Outcome::Crash),
        sum(Outcome::Hang)
    );
    for ((section, outcome), n) in &counts {
        println!("  {section:8} {outcome:?}: {n}");
    }
    assert!(
        bad.is_empty(),
        "{} bad outcomes:\n{}",
        bad.len(),
        bad.join("\n")
    );
}
