//! The user's crate end to end: its config names its own node, source and processor;
//! it runs through the library and through the crate's own program, values checked
//! by hand; `check` passes on the user's node like on the built-ins.

use std::path::{Path, PathBuf};
use std::process::Command;

use kaizenflow::config::Config;
use kaizenflow::dataflow::{Phase, RunContext, RunOptions};
use kaizenflow::frame::Timestamp;
use kaizenflow::system::{System, build_with};

fn config_path() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("configs/rsi.toml")
}

fn program() -> Command {
    Command::new(env!("CARGO_BIN_EXE_kf-example-user"))
}

/// RSI(3) by hand from the closes in `data/bars.jsonl` (Cutler's: gains over gains
/// plus losses of the last three changes, times 100).
///
/// AAA closes 100 101 103 102 104 105 103 106 107 105: changes +1 +2 -1 +2 +1 -2
/// +3 +1 -2. BBB closes 50 49 48 47 48 46 47 45 46 47: changes -1 -1 -1 +1 -2 +1 -2
/// +1 +1. The first three rows have fewer than three changes.
fn expected_rsi() -> [[f64; 10]; 2] {
    let n = f64::NAN;
    let r = |g: f64, l: f64| 100.0 * g / (g + l);
    [
        [
            n,
            n,
            n,
            r(3.0, 1.0),
            r(4.0, 1.0),
            r(3.0, 1.0),
            r(3.0, 2.0),
            r(4.0, 2.0),
            r(4.0, 2.0),
            r(4.0, 2.0),
        ],
        [
            n,
            n,
            n,
            r(0.0, 3.0),
            r(1.0, 2.0),
            r(1.0, 3.0),
            r(2.0, 2.0),
            r(1.0, 4.0),
            r(2.0, 2.0),
            r(2.0, 2.0),
        ],
    ]
}

fn same(a: f64, b: f64) -> bool {
    (a.is_nan() && b.is_nan()) || a == b
}

#[test]
fn the_config_runs_through_the_library_with_the_users_types() {
    let types = kf_example_user::registries().unwrap();
    let config = Config::from_file(config_path()).unwrap();
    let components = build_with(&types, &config).unwrap();
    config.check_all_used().unwrap();
    let mut dag = components.dag.unwrap();
    let out = dag
        .run(
            &RunContext::new(Phase::Predict, None),
            &RunOptions::default(),
        )
        .unwrap();
    let frame = out.df_out("rsi").unwrap();
    assert_eq!(frame.assets(), ["AAA", "BBB"]);
    assert_eq!(frame.features(), ["close", "volume", "close.rsi"]);
    let rsi = frame.feature("close.rsi").unwrap();
    let expected = expected_rsi();
    for (a, want) in expected.iter().enumerate() {
        let got: Vec<f64> = rsi.asset(a).collect();
        assert_eq!(got.len(), 10);
        for (r, (&g, &w)) in got.iter().zip(want).enumerate() {
            assert!(same(g, w), "asset {a} row {r}: {g} vs {w}");
        }
    }
}

#[test]
fn the_system_trades_the_users_processor_as_computed_by_hand() {
    let types = kf_example_user::registries().unwrap();
    let config = Config::from_file(config_path()).unwrap();
    let mut system = System::from_config_with(&types, &config).unwrap();
    let run = system.run().unwrap();
    // Decisions at each bar end; an order fills over the next bar at its TWAP, which
    // for one 1-minute bar is its close: row r's decision fills at row r + 1's close.
    // Targets: -10 above 70, +10 below 30, none between (RSIs in `expected_rsi`).
    // AAA (slot 0): 75 at row 3 -> sell 10 at row 4's 104; 60 at row 6 -> buy 10 at
    //   row 7's 106.
    // BBB (slot 1): 0 at row 3 -> buy at 48; 33.3 at row 4 -> sell at 46; 25 at row 5
    //   -> buy at 47; 50 at row 6 -> sell at 45; 20 at row 7 -> buy at 46; 50 at
    //   row 8 -> sell at 47.
    let fills: Vec<(u32, f64, f64)> = (0..run.fills.ts.len())
        .map(|i| {
            (
                run.fills.asset[i],
                run.fills.quantity[i],
                run.fills.price[i],
            )
        })
        .collect();
    let expected = vec![
        (0, -10.0, 104.0),
        (1, 10.0, 48.0),
        (1, -10.0, 46.0),
        (1, 10.0, 47.0),
        (0, 10.0, 106.0),
        (1, -10.0, 45.0),
        (1, 10.0, 46.0),
        (1, -10.0, 47.0),
    ];
    assert_eq!(fills, expected);
    // AAA: 10 x (104 - 106) = -20; BBB: 10 x (46 - 48) + 10 x (45 - 47) + 10 x
    // (47 - 46) = -30. No costs are configured.
    assert_eq!(run.stats.pnl, -50.0);
    assert_eq!(run.holdings, vec![0.0, 0.0]);
}

#[test]
fn the_crates_own_program_runs_checks_and_documents_the_users_types() {
    let dir = tempfile::tempdir().unwrap();
    let out = program()
        .arg("run")
        .arg(config_path())
        .arg("--out")
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for f in [
        "result.parquet",
        "fills.parquet",
        "stats.toml",
        "config.toml",
    ] {
        assert!(dir.path().join(f).is_file(), "{f} missing");
    }
    let stats = std::fs::read_to_string(dir.path().join("stats.toml")).unwrap();
    assert!(stats.contains("pnl = -50.0"), "{stats}");

    let out = program().arg("check").arg(config_path()).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for check in ["batch", "tiling", "streaming", "perturbation", "replay"] {
        assert!(
            text.lines()
                .any(|l| l.starts_with("pass") && l.contains(check)),
            "no passing {check} check in:\n{text}"
        );
    }
    assert!(text.contains("checks passed"), "{text}");

    let out = program().args(["nodes", "cutler_rsi"]).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("window: integer = 14"), "{text}");
    assert!(text.contains("suffix: string = \".rsi\""), "{text}");
    let out = program().arg("nodes").output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.lines().any(|l| l.starts_with("cutler_rsi ")), "{text}");
    assert!(text.lines().any(|l| l.starts_with("ema ")), "{text}");
    let out = program().arg("sources").output().unwrap();
    assert!(String::from_utf8_lossy(&out.stdout).contains("jsonl"));
    let out = program().arg("processors").output().unwrap();
    assert!(String::from_utf8_lossy(&out.stdout).contains("rsi_contrarian"));
}

#[test]
fn the_stock_program_does_not_know_the_users_types() {
    let types = kaizenflow::Registries::default();
    let config = Config::from_file(config_path()).unwrap();
    let e = build_with(&types, &config).unwrap_err().to_string();
    assert!(
        e.contains("market_data.type: unknown market data type \"jsonl\""),
        "{e}"
    );
}

#[test]
fn a_bad_line_in_the_users_file_is_named_with_its_line() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("bars.jsonl"),
        "{\"ts\": \"2024-01-02 09:31\", \"asset\": \"AAA\", \"close\": 1.0}\n\
         {\"ts\": \"2024-01-02 09:32\", \"asset\": \"AAA\", \"close\": \"high\"}\n",
    )
    .unwrap();
    let toml = "[md]\ntype = \"jsonl\"\npath = \"bars.jsonl\"\n";
    std::fs::write(dir.path().join("c.toml"), toml).unwrap();
    let config = Config::from_file(dir.path().join("c.toml")).unwrap();
    let types = kf_example_user::registries().unwrap();
    let view = types
        .dataflow
        .data
        .view(&config.section("md").unwrap())
        .unwrap();
    let e = view
        .data_for_interval(Timestamp::MIN, Timestamp::MAX, None, None)
        .unwrap_err()
        .to_string();
    assert!(
        e.ends_with("bars.jsonl:2: close: expected a number, found \"high\""),
        "{e}"
    );
    let toml = "[md]\ntype = \"jsonl\"\npath = \"nowhere.jsonl\"\n";
    std::fs::write(dir.path().join("c.toml"), toml).unwrap();
    let config = Config::from_file(dir.path().join("c.toml")).unwrap();
    let e = types
        .dataflow
        .data
        .view(&config.section("md").unwrap())
        .unwrap_err()
        .to_string();
    assert!(e.contains("c.toml:3: md.path: no file"), "{e}");
}
