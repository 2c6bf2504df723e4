//! The system end to end: accounting by hand, research vs event-driven P&L, clocks,
//! and the documented rules for bad inputs.

use std::path::Path;
use std::time::Instant;

use kf_config::Config;
use kf_system::research::research;
use kf_system::{ClockKind, System, SystemError, SystemRun};

const MOCK1_SYSTEM: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../configs/mock1_system.toml"
);

/// A config over a CSV of `rows` (`timestamp,asset,close,volume,signal`), whose DAG
/// is the market data itself: the forecast is the `signal` column, so every
/// decision is known in advance.
fn csv_config(dir: &Path, rows: &str, system: &str) -> Config {
    Config::from_toml_str(&csv_text(dir, rows, system), "test.toml").unwrap()
}

fn csv_text(dir: &Path, rows: &str, system: &str) -> String {
    let csv = dir.join("bars.csv");
    std::fs::write(&csv, format!("timestamp,asset,close,volume,signal\n{rows}")).unwrap();
    format!(
        r#"
[market_data]
type = "csv"
files = "{}"
asset_column = "asset"

[dag]
type = "graph"
[dag.nodes.prices]
type = "market_data"

[system]
bar = "1min"
prediction = "signal"
{system}
"#,
        csv.display()
    )
}

const THRESHOLD: &str = r#"
[system.processor]
type = "threshold"
long_above = 0.5
position_size = 1000.0
max_positions = 2
[system.costs]
half_spread_bps = 10.0
"#;

fn run(config: &Config) -> SystemRun {
    let mut s = System::from_config(config).unwrap();
    let r = s.run().unwrap();
    config.check_all_used().unwrap();
    r
}

#[test]
fn holdings_and_cash_by_hand() {
    let dir = tempfile::tempdir().unwrap();
    // A: signal 1 at 09:31 and 09:32 (enter, hold), 0 at 09:33 (exit).
    // B never signals.
    let rows = "\
2024-01-02 09:31,A,10,100,1
2024-01-02 09:31,B,50,100,0
2024-01-02 09:32,A,11,100,1
2024-01-02 09:32,B,50,100,0
2024-01-02 09:33,A,12,100,0
2024-01-02 09:33,B,50,100,0
2024-01-02 09:34,A,13,100,0
2024-01-02 09:34,B,50,100,0
";
    let r = run(&csv_config(dir.path(), rows, THRESHOLD));
    // 09:31: $1000 at the mark of 10 is 100 shares; they fill over the next bar at
    // its TWAP, 11, paying 10 bps of $1100 = $1.10. 09:33: the signal falls, the
    // 100 shares sell over the last bar at 13, paying $1.30.
    assert_eq!(r.fills.quantity, [100.0, -100.0]);
    assert_eq!(r.fills.price, [11.0, 13.0]);
    let costs: Vec<f64> = r
        .fills
        .cost
        .iter()
        .map(|c| (c * 1e6).round() / 1e6)
        .collect();
    assert_eq!(costs, [1.1, 1.3]);
    let pnl: Vec<f64> = r.bars.iter().map(|b| (b.pnl * 1e6).round() / 1e6).collect();
    // Bar P&L: none; -1.10 (bought at 11, marked at 11, cost); +100 (12 - 11);
    // +98.70 (sold at 13 against a mark of 12, less $1.30).
    assert_eq!(pnl, [0.0, -1.1, 100.0, 98.7]);
    let last = r.bars.last().unwrap();
    assert!((last.cash - (1e6 - 1100.0 - 1.1 + 1300.0 - 1.3)).abs() < 1e-6);
    assert_eq!(r.holdings, [0.0, 0.0]);
    assert!((r.stats.pnl - 197.6).abs() < 1e-6);
    assert!((r.stats.costs - 2.4).abs() < 1e-9);
}

#[test]
fn research_and_system_agree_to_the_cent_on_mock1() {
    let config = Config::from_file(MOCK1_SYSTEM).unwrap();
    let mut s = System::from_config(&config).unwrap();
    let sys = s.run().unwrap();
    let res = research(&mut s).unwrap();
    assert!(sys.stats.fills > 1000, "the strategy trades");
    assert_eq!(sys.bars.len(), res.bars.len());
    assert_eq!(sys.orders.quantity.len(), res.orders.quantity.len());
    let mut cum = (0.0, 0.0);
    for (a, b) in sys.bars.iter().zip(&res.bars) {
        cum.0 += a.pnl;
        cum.1 += b.pnl;
        assert!(
            (a.pnl - b.pnl).abs() < 0.005,
            "bar {}: {} vs {}",
            a.ts,
            a.pnl,
            b.pnl
        );
        assert!((cum.0 - cum.1).abs() < 0.005, "cumulative at {}", a.ts);
        assert!((a.nav - b.nav).abs() < 0.005);
        assert_eq!(a.costs.to_bits(), b.costs.to_bits());
    }
    assert!((sys.stats.pnl - res.stats.pnl).abs() < 0.005);
    for (a, b) in sys.holdings.iter().zip(&res.holdings) {
        assert!((a - b).abs() < 1e-9);
    }
}

fn same_trading(a: &SystemRun, b: &SystemRun) {
    assert_eq!(a.orders, b.orders);
    assert_eq!(a.fills, b.fills);
    assert_eq!(a.bars.len(), b.bars.len());
    for (x, y) in a.bars.iter().zip(&b.bars) {
        assert_eq!(
            (x.ts, x.pnl.to_bits(), x.nav.to_bits()),
            (y.ts, y.pnl.to_bits(), y.nav.to_bits())
        );
    }
}

#[test]
fn simulated_and_replayed_clocks_trade_the_same() {
    let config = Config::from_file(MOCK1_SYSTEM).unwrap();
    let mut s = System::from_config(&config).unwrap();
    let simulated = s.run_on(s.clock(ClockKind::Simulated)).unwrap();
    // Five trading days of 5-minute decisions span about 107 hours of clock time;
    // at 10^7 times real time the replay takes a few tens of milliseconds.
    let replayed = s
        .run_on(s.clock(ClockKind::Replayed { speed: 1e7 }))
        .unwrap();
    same_trading(&simulated, &replayed);
    // The replayed decisions are taken on the clock, at or after their bar's end.
    assert!(replayed.bars.iter().all(|b| b.decided >= b.ts));
}

#[test]
fn a_real_time_replay_of_one_second_bars_waits_for_each_bar() {
    let text = r#"
[market_data]
type = "synthetic"
assets = 4
bars = 4
freq = "1s"
start = "2024-01-02 09:31"
calendar = "24/7"
seed = 3

[dag]
type = "graph"
[dag.nodes.prices]
type = "market_data"

[system]
bar = "1s"
prediction = "close"

[system.processor]
type = "cross_sectional"
target_gmv = 10000.0

[system.clock]
type = "replayed"
speed = 1.0
"#;
    let config = Config::from_toml_str(text, "realtime.toml").unwrap();
    let mut s = System::from_config(&config).unwrap();
    let started = Instant::now();
    let live = s.run().unwrap();
    let wall = started.elapsed().as_secs_f64();
    config.check_all_used().unwrap();
    // Four one-second bars from one second before the first: the clock reaches the
    // last bar's end only after about four seconds of real time.
    assert!(
        wall >= 3.5,
        "a 1x replay of 4 one-second bars took {wall} s"
    );
    assert_eq!(live.bars.len(), 4);
    let simulated = s.run_on(s.clock(ClockKind::Simulated)).unwrap();
    same_trading(&simulated, &live);
    assert!(live.stats.fills > 0);
}

#[test]
fn a_missing_prediction_column_names_the_node_and_the_columns() {
    let dir = tempfile::tempdir().unwrap();
    let rows = "2024-01-02 09:31,A,10,100,1\n2024-01-02 09:32,A,11,100,1\n";
    let text = csv_text(dir.path(), rows, THRESHOLD).replace("\"signal\"", "\"sigmal\"");
    let config = Config::from_toml_str(&text, "typo.toml").unwrap();
    let mut s = System::from_config(&config).unwrap();
    let err = s.run().unwrap_err();
    assert!(matches!(err, SystemError::MissingColumn { .. }), "{err}");
    let msg = err.to_string();
    assert!(
        msg.contains("`prices`") && msg.contains("sigmal") && msg.contains("signal"),
        "{msg}"
    );
}

#[test]
fn nan_forecasts_zero_prices_and_missing_assets_hold_the_position() {
    let dir = tempfile::tempdir().unwrap();
    // A enters at 09:31 and fills at 09:32. At 09:33 A's price is zero and B has no
    // row: A's exit (signal 0 at 09:32) cannot fill in the bar to 09:33 and lapses;
    // B's entry order (09:32) lapses too. At 09:33 A's forecast is NaN: no order,
    // the position is held. 09:34 everything is normal again.
    let rows = "\
2024-01-02 09:31,A,10,100,1
2024-01-02 09:31,B,50,100,0
2024-01-02 09:32,A,11,100,0
2024-01-02 09:32,B,50,100,1
2024-01-02 09:33,A,0,100,nan
2024-01-02 09:34,A,12,100,0
2024-01-02 09:34,B,50,100,0
";
    let r = run(&csv_config(dir.path(), rows, THRESHOLD));
    // Fills: A +100 over (09:31, 09:32]; nothing over (09:32, 09:33] (A priced at
    // zero, B absent); A's NaN forecast at 09:33 places no order; at 09:34 nothing
    // had been ordered.
    assert_eq!(r.fills.quantity, [100.0]);
    assert_eq!(
        r.bars[2].lapsed, 2,
        "A's exit and B's entry lapse in the bar to 09:33"
    );
    assert_eq!(r.holdings, [100.0, 0.0]);
    // A zero price never becomes a mark: A is valued at 11 at 09:33, then 12.
    assert!((r.bars[2].nmv - 1100.0).abs() < 1e-9);
    assert!((r.bars[3].nmv - 1200.0).abs() < 1e-9);
    assert!(
        r.bars
            .iter()
            .all(|b| b.pnl.is_finite() && b.nav.is_finite())
    );
    // Research applies the same rules.
    let config = csv_config(dir.path(), rows, THRESHOLD);
    let mut s = System::from_config(&config).unwrap();
    let res = research(&mut s).unwrap();
    assert_eq!(res.holdings, [100.0, 0.0]);
    assert!((res.stats.pnl - r.stats.pnl).abs() < 0.005);
}

#[test]
fn config_errors_are_located() {
    let dir = tempfile::tempdir().unwrap();
    let rows = "2024-01-02 09:31,A,10,100,1\n";
    for (extra, key) in [
        (
            "[system.processor]\ntype = \"threshold\"\nposition_size = -1.0\n",
            "position_size",
        ),
        ("[system.processor]\ntype = \"moon\"\n", "type"),
        (
            "[system.processor]\ntype = \"threshold\"\n[system.clock]\ntype = \"sundial\"\n",
            "clock.type",
        ),
        (
            "fill = \"vwap\"\nvolume = \"\"\n[system.processor]\ntype = \"threshold\"\n",
            "volume",
        ),
    ] {
        let config = csv_config(dir.path(), rows, extra);
        let err = System::from_config(&config).unwrap_err().to_string();
        assert!(
            err.contains("test.toml") && err.contains(key),
            "{extra}: {err}"
        );
    }
    let config = csv_config(
        dir.path(),
        rows,
        "price = \"last\"\n[system.processor]\ntype = \"threshold\"\n",
    );
    let err = System::from_config(&config).unwrap_err().to_string();
    assert!(err.contains("\"last\"") && err.contains("close"), "{err}");
}

#[test]
fn per_asset_pnl_sums_to_the_books_pnl() {
    // Two computations: by asset over fills and last marks, and by bar over the
    // book's NAV. Mock1 on the default data trades every asset in and out.
    let config = Config::from_file(MOCK1_SYSTEM).unwrap();
    let r = run(&config);
    let per = kf_system::output::asset_pnl(&r);
    assert_eq!(per.len(), r.assets.len());
    let sum: f64 = per.iter().map(|a| a.pnl).sum();
    let costs: f64 = per.iter().map(|a| a.costs).sum();
    assert!(r.fills.ts.len() > 100);
    assert!(
        (sum - r.stats.pnl).abs() <= 1e-6 * r.stats.traded,
        "{sum} vs {}",
        r.stats.pnl
    );
    assert!((costs - r.stats.costs).abs() <= 1e-9 * r.stats.costs.abs().max(1.0));
    assert!(per.iter().any(|a| a.pnl > 0.0) && per.iter().any(|a| a.pnl < 0.0));
}
