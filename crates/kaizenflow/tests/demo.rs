//! The README's main job, `configs/demo_system.toml`: a model that learns a signal
//! planted in the synthetic data makes money after costs out of sample, and the
//! same system on the same data without the signal loses its costs.

mod common;

use common::{kaizenflow, text};

/// `run` of the demo (with overrides) into a fresh folder: its stats and metrics.
fn demo(overrides: &[&str]) -> (toml::Table, toml::Table, String) {
    let dir = tempfile::tempdir().expect("temp dir");
    let out = dir.path().join("run");
    let out_s = out.to_str().expect("utf-8 path");
    let mut args = vec![
        "run",
        "configs/demo_system.toml",
        "--out",
        out_s,
        "--no-report",
    ];
    for o in overrides {
        args.extend(["--set", o]);
    }
    let done = kaizenflow(&args);
    assert!(done.status.success(), "{}", text(&done.stderr));
    let read = |name: &str| -> toml::Table {
        let s = std::fs::read_to_string(out.join(name)).expect(name);
        s.parse().expect(name)
    };
    let config = std::fs::read_to_string(out.join("config.toml")).expect("config.toml");
    (read("stats.toml"), read("metrics.toml"), config)
}

fn num(t: &toml::Table, key: &str) -> f64 {
    match t.get(key) {
        Some(toml::Value::Float(f)) => *f,
        Some(toml::Value::Integer(i)) => *i as f64,
        other => panic!("{key}: {other:?} in {t:?}"),
    }
}

/// The `model` node's overall out-of-sample metrics in `metrics.toml`.
fn overall(metrics: &toml::Table) -> &toml::Table {
    metrics
        .get("model")
        .and_then(|m| m.as_array())
        .and_then(|a| {
            a.iter()
                .find(|m| m.get("node").and_then(|n| n.as_str()) == Some("model"))
        })
        .and_then(|m| m.get("overall"))
        .and_then(|o| o.as_table())
        .expect("the model's overall metrics")
}

#[test]
fn the_demo_learns_the_planted_signal_and_makes_money_after_costs_out_of_sample() {
    let (stats, metrics, config) = demo(&[]);
    // The true parameters are written beside the results.
    assert!(config.contains("reversion = 0.2"), "{config}");
    let (pnl, gross, costs) = (
        num(&stats, "pnl"),
        num(&stats, "gross_pnl"),
        num(&stats, "costs"),
    );
    assert!(pnl > 0.0 && gross > costs && costs > 0.0, "{stats:?}");
    // P&L is gross less costs (two figures the loop keeps apart).
    assert!(
        (gross - costs - pnl).abs() < 1e-6 * gross.abs(),
        "{stats:?}"
    );
    // A realistic turnover for a 5-minute strategy: under a book per bar.
    let turnover = num(&stats, "turnover_per_bar");
    assert!((0.3..1.0).contains(&turnover), "{turnover}");
    // Every decision is out of sample (the loop refits daily on the days before), and
    // the batch model's out-of-sample IC is positive: it found the reversal.
    let ic = num(overall(&metrics), "ic");
    assert!(ic > 0.05, "{metrics:?}");
}

#[test]
fn without_the_signal_the_same_system_loses_its_costs() {
    let (stats, metrics, _) = demo(&["market_data.reversion=0.0"]);
    assert!(num(&stats, "pnl") < 0.0, "{stats:?}");
    assert!(num(overall(&metrics), "ic").abs() < 0.05, "{metrics:?}");
}
