//! The causality corpus: configs a user could plausibly write, each run through
//! `kaizenflow check`. Every config under `tests/causality/leaks/` plants a leak
//! (in the learning style, the targets, a cross-sectional node, a delayed feed,
//! revised data, a view or the trading loop) and must fail, naming the nodes its
//! `# names:` header lists; every config under `tests/causality/controls/` is honest
//! and must pass with no check skipped.
//!
//! Headers: `# names: a, b` (leaks: each must appear as `` `a` `` in a FAIL line),
//! `# args: ...` (extra `check` arguments), `# data: FILE` (a data file the test
//! writes beside the config: `revised.csv`, `first_release.csv`).

use std::path::{Path, PathBuf};
use std::process::Command;

fn corpus(kind: &str) -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/causality")
        .join(kind);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .collect();
    files.sort();
    files
}

fn header(text: &str, key: &str) -> Vec<String> {
    let prefix = format!("# {key}:");
    text.lines()
        .filter_map(|l| l.strip_prefix(&prefix))
        .flat_map(|v| v.split(','))
        .map(|v| v.trim().to_string())
        .filter(|v| !v.is_empty())
        .collect()
}

/// Minute closes of two assets over 200 minutes from 2024-01-02 14:31 UTC, as CSV
/// rows `time,asset,close,known`; with `revised`, every 7th bar also has a revision
/// (its close 1% higher) known 30 minutes after the bar.
fn closes_csv(revised: bool) -> String {
    let mut out = String::from("time,asset,close,known\n");
    let start = 14 * 60 + 31;
    for i in 0..200u32 {
        let m = start + i;
        let t = format!("2024-01-02 {:02}:{:02}:00", m / 60, m % 60);
        for (a, asset) in ["AAA", "BBB"].iter().enumerate() {
            // A deterministic wiggle: no two consecutive closes are equal.
            let close =
                100.0 + f64::from(a as u32) + f64::from((i * 37 + a as u32 * 11) % 17) / 10.0;
            out.push_str(&format!("{t},{asset},{close},{t}\n"));
            if revised && i % 7 == 3 {
                let k = m + 30;
                let known = format!("2024-01-02 {:02}:{:02}:00", k / 60, k % 60);
                out.push_str(&format!("{t},{asset},{},{known}\n", close * 1.01));
            }
        }
    }
    out
}

struct Checked {
    ok: bool,
    stdout: String,
    stderr: String,
}

fn check(config: &Path) -> Checked {
    let text = std::fs::read_to_string(config).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(config.file_name().unwrap());
    std::fs::write(&path, &text).unwrap();
    for data in header(&text, "data") {
        let body = match data.as_str() {
            "revised.csv" => closes_csv(true),
            "first_release.csv" => closes_csv(false),
            other => panic!("{}: unknown data file {other}", config.display()),
        };
        std::fs::write(dir.path().join(&data), body).unwrap();
    }
    let extra = header(&text, "args");
    check_at(dir.path(), &path, &extra)
}

/// `kaizenflow check PATH EXTRA...`, run in `dir`.
fn check_at<S: AsRef<std::ffi::OsStr>>(dir: &Path, path: &Path, extra: &[S]) -> Checked {
    let out = Command::new(env!("CARGO_BIN_EXE_kaizenflow"))
        .arg("check")
        .arg(path)
        .args(extra)
        .current_dir(dir)
        .output()
        .unwrap();
    Checked {
        ok: out.status.success(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

#[test]
fn the_corpus_has_at_least_twelve_leaks_and_eight_controls() {
    assert!(corpus("leaks").len() >= 12);
    assert!(corpus("controls").len() >= 8);
}

#[test]
fn every_planted_leak_fails_naming_the_leaking_node() {
    let mut wrong = Vec::new();
    for config in corpus("leaks") {
        let text = std::fs::read_to_string(&config).unwrap();
        let names = header(&text, "names");
        assert!(
            !names.is_empty(),
            "{}: no `# names:` header",
            config.display()
        );
        let r = check(&config);
        let fails: Vec<&str> = r.stdout.lines().filter(|l| l.starts_with("FAIL")).collect();
        let named = names
            .iter()
            .all(|n| fails.iter().any(|l| l.contains(&format!("`{n}`"))));
        if r.ok || !named {
            wrong.push(format!(
                "{}: exit ok = {}, expected FAIL naming {names:?}\n{}{}",
                config.display(),
                r.ok,
                r.stdout,
                r.stderr
            ));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n\n"));
}

#[test]
fn every_honest_control_passes() {
    let mut wrong = Vec::new();
    for config in corpus("controls") {
        let r = check(&config);
        let bad = r
            .stdout
            .lines()
            .any(|l| l.starts_with("FAIL") || l.starts_with("skip"));
        if !r.ok || bad || !r.stdout.contains("checks passed") {
            wrong.push(format!("{}:\n{}{}", config.display(), r.stdout, r.stderr));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n\n"));
}

fn run_check(text: &str, extra: &[&str]) -> Checked {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("c.toml");
    std::fs::write(&path, text).unwrap();
    check_at(dir.path(), &path, extra)
}

const WARM: &str = r#"
[market_data]
type = "synthetic"
assets = 3
bars = 1000
freq = "1min"
calendar = "24/7"
start = "2024-01-02 00:01"
seed = 2

[dag]
type = "graph"
edges = [["prices", "lagged"], ["prices", "smooth"]]

[dag.nodes.prices]
type = "market_data"

[dag.nodes.lagged]
type = "lags"
cols = ["close"]
num_lags = 2

[dag.nodes.smooth]
type = "ema"
cols = ["close"]
tau = 5.0
"#;

fn warm_line<'a>(stdout: &'a str, node: &str) -> &'a str {
    stdout
        .lines()
        .find(|l| l.starts_with(&format!("warm-up  {node}:")))
        .unwrap_or_else(|| panic!("no warm-up line for {node}: {stdout}"))
}

#[test]
fn the_warm_up_report_counts_rows_until_a_later_start_agrees() {
    let r = run_check(WARM, &["--warmup", "--tilings", "1"]);
    assert!(r.ok, "{}{}", r.stdout, r.stderr);
    // The source depends on nothing before its row; two lags need two rows, exactly.
    assert!(
        warm_line(&r.stdout, "prices").contains(": 0 rows to the bit, 0 rows within"),
        "{}",
        r.stdout
    );
    assert!(
        warm_line(&r.stdout, "lagged").contains(": 2 rows to the bit, 2 rows within"),
        "{}",
        r.stdout
    );
    // An EMA forgets its start geometrically, by exp(-1/tau) a row: a relative
    // start difference d falls under 1e-9 after tau * ln(d / 1e-9) rows, about 100
    // for d between 1e-3 and 1e-1; under half an ulp (bit-identical) later still.
    let ema = warm_line(&r.stdout, "smooth");
    let numbers: Vec<usize> = ema
        .split_whitespace()
        .filter_map(|w| w.parse().ok())
        .collect();
    let [exact, within] = numbers[..] else {
        panic!("{ema}");
    };
    assert!((60..260).contains(&within), "{ema}");
    assert!(exact >= within, "{ema}");
    assert!(
        r.stdout.contains("# warm-up: load at least"),
        "{}",
        r.stdout
    );
}

#[test]
fn a_skipped_check_is_reported_as_skipped_not_passed() {
    let r = run_check(
        WARM,
        &["--tilings", "1", "--skip", "replay", "--skip", "streaming"],
    );
    assert!(r.ok, "{}{}", r.stdout, r.stderr);
    assert!(
        r.stdout.contains("skip  replay (asked by --skip)"),
        "{}",
        r.stdout
    );
    assert!(
        r.stdout.contains("skip  streaming (asked by --skip)"),
        "{}",
        r.stdout
    );
    assert!(
        r.stdout.contains("2 skipped by request (not passed)"),
        "{}",
        r.stdout
    );
    assert!(!r.stdout.contains("all "), "{}", r.stdout);
    // A check that does not exist is refused, with the names there are.
    let r = run_check(WARM, &["--skip", "replays"]);
    assert!(!r.ok);
    assert!(
        r.stderr.contains("--skip replays: there is no such check")
            && r.stderr.contains("did you mean `replay`"),
        "{}",
        r.stderr
    );
}

#[test]
fn a_learning_dag_whose_run_fits_nothing_is_refused_naming_the_model() {
    let text = format!(
        "{}\n[dag.nodes.model]\ntype = \"linear_regression\"\nx_vars = [\"close.lag1\"]\ny_vars = [\"close\"]\n",
        WARM.replace(
            "edges = [[\"prices\", \"lagged\"], [\"prices\", \"smooth\"]]",
            ""
        )
    );
    let r = run_check(&text, &[]);
    assert!(!r.ok);
    assert!(
        r.stderr.contains("node `model` (linear_regression) learns, but `[run]` (fit_predict) gives no `fit` interval"),
        "{}",
        r.stderr
    );
}
