//! The fill rule under a data delay: an order decided at `decided` fills over the
//! first full decision bar that starts at or after `decided`, so no fill uses a
//! price from a bar that started before its order existed; and the research
//! evaluator, which follows the same rule, gives the event-driven P&L.

use kf_config::Config;
use kf_system::research::research;
use kf_system::{ClockKind, System};

/// Mock1 and its system, trading every 5 minutes, over `market_data` (a TOML table).
fn mock1_system(market_data: &str, name: &str) -> Config {
    let text = format!(
        r#"{market_data}
[dag]
type = "mock1"
max_gap = "1h"

[system]
bar = "5min"
volatility = "vwap.ret_0.vol"

[system.processor]
type = "cross_sectional"
"#
    );
    Config::from_toml_str(&text, name).unwrap()
}

/// Mock1 traded every 5 minutes on 1-minute synthetic bars, the feed delayed by
/// `delay`.
fn config(delay: &str) -> Config {
    let mut c = mock1_system(
        r#"
[market_data]
type = "synthetic"
assets = 6
bars = 780
start = "2024-01-02 09:31"
tz = "America/New_York"
calendar = "us_equity"
seed = 4
"#,
        "delay.toml",
    );
    c.set_all(&[
        "system.clock.type=\"simulated\"".to_string(),
        format!("system.clock.delay=\"{delay}\""),
    ])
    .unwrap();
    c
}

const MIN: i64 = 60_000_000_000;
const BAR: i64 = 5 * MIN;

/// For each delay (0, half a bar, one bar, three bars): how many bars after its
/// order's bar a fill's bar ends, by the rule. Decided at `τ + d`, the first full
/// bar starting at or after that is `(τ + ⌈d/bar⌉ bar, τ + (⌈d/bar⌉ + 1) bar]`.
const CASES: [(&str, i64, i64); 4] = [
    ("0s", 0, 1),
    ("150s", 150_000_000_000, 2),
    ("5min", BAR, 2),
    ("15min", 3 * BAR, 4),
];

#[test]
fn no_fill_uses_a_price_from_before_its_order_across_delays() {
    for (text, delay, bars_later) in CASES {
        let config = config(text);
        let mut system = System::from_config(&config).unwrap();
        let run = system.run_on(system.clock(ClockKind::Simulated)).unwrap();
        assert!(run.fills.ts.len() > 100, "{text}: the strategy trades");
        let decided: std::collections::BTreeMap<i64, i64> =
            run.bars.iter().map(|b| (b.ts, b.decided)).collect();
        let prices = system.market.prices.end_ts();
        let grid = system.grid.clone();
        let mut within = 0;
        for (&order, &end) in run.fills.order_ts.iter().zip(&run.fills.ts) {
            let at = decided[&order];
            // The data's bars are whole minutes, so a decision waits for the last
            // bar of its interval: it is taken at its grid time plus the delay.
            assert_eq!(at, order + delay, "{text}: the decision at {order}");
            // The fill's bar: the first grid bar that starts at or after the decision
            // (across a night, the next session's first bar)...
            let j = (1..grid.len()).find(|&j| grid[j - 1] >= at).unwrap();
            assert_eq!(end, grid[j], "{text}: the fill of {order}");
            // ...which within a session is `bars_later` bars after the order's.
            let k = grid.binary_search(&order).unwrap();
            if grid.get(k + bars_later as usize) == Some(&(order + bars_later * BAR)) {
                assert_eq!(end, order + bars_later * BAR, "{text}: the fill of {order}");
                within += 1;
            }
            // Every price row the fill used started at or after the decision.
            let first = prices.partition_point(|&t| t <= end - BAR);
            let last = prices.partition_point(|&t| t <= end);
            assert!(first < last, "{text}: the fill of {order} had prices");
            for &row_end in &prices[first..last] {
                assert!(
                    row_end - MIN >= at,
                    "{text}: the order decided at {at} filled over the minute bar ending \
                     {row_end}, which started before it"
                );
            }
        }
        assert!(within > 100, "{text}: {within} fills within a session");
        assert!(run.audit.passed(), "{text}: {:?}", run.audit);
        assert_eq!(run.audit.early_fills, 0);
        let res = research(&mut system).unwrap();
        assert!(
            (res.stats.pnl - run.stats.pnl).abs() < 0.005,
            "{text}: research {} vs event-driven {}",
            res.stats.pnl,
            run.stats.pnl
        );
        assert_eq!(
            res.orders.quantity.len(),
            run.orders.quantity.len(),
            "{text}"
        );
    }
}

#[test]
fn a_feed_later_than_its_declared_delay_is_counted() {
    // The data is delayed 3 minutes by the view itself (a replayed view), while
    // [system.clock] declares none: every decision waits, and each is counted.
    let config = mock1_system(
        r#"
[market_data]
type = "replayed"
delay = "3min"
source = { type = "synthetic", assets = 4, bars = 390, start = "2024-01-02 09:31", tz = "America/New_York", calendar = "us_equity", seed = 4 }
clock = { type = "simulated", start = "2024-01-02 16:00", tz = "America/New_York" }
"#,
        "late.toml",
    );
    let mut system = System::from_config(&config).unwrap();
    let run = system.run().unwrap();
    assert_eq!(run.audit.decisions, 78);
    // The view's own delay is part of what the loop expects, so none is late...
    assert_eq!(run.audit.late_decisions, 0, "{:?}", run.audit);
    for b in &run.bars {
        assert_eq!(b.decided, b.ts + 3 * MIN);
    }
    assert!(run.audit.passed());
    let res = research(&mut system).unwrap();
    assert!((res.stats.pnl - run.stats.pnl).abs() < 0.005);
}

#[test]
fn late_bars_hold_the_decision_up_and_research_follows() {
    // 5% of the 1-minute bars arrive 3 minutes late. A decision waits for every bar
    // of its interval, so none is left out of a fill or of the DAG's step, and the
    // research evaluator (the same decision times) gives the same P&L.
    let text = config("0s").to_toml_string().replace(
        "seed = 4",
        "seed = 4\nlate_prob = 0.05\nlate_delay = \"3min\"",
    );
    let config = Config::from_toml_str(&text, "late_bars.toml").unwrap();
    let mut system = System::from_config(&config).unwrap();
    let run = system.run_on(system.clock(ClockKind::Simulated)).unwrap();
    let known = system.market.prices.knowledge_ts();
    let ends = system.market.prices.end_ts();
    let late = ends.iter().zip(known).filter(|(e, k)| k > e).count();
    assert!(late > 20, "{late} late bars");
    assert_eq!(run.audit.late_price_rows, 0, "{:?}", run.audit);
    assert!(run.audit.late_decisions > 0, "{:?}", run.audit);
    assert!(run.audit.passed(), "{:?}", run.audit);
    // Each decision is taken when the last-known bar of its interval is known.
    let grid = system.grid.clone();
    for (k, b) in run.bars.iter().enumerate() {
        let lo = if k == 0 { i64::MIN } else { grid[k - 1] };
        let need = ends
            .iter()
            .zip(known)
            .filter(|(e, _)| **e > lo && **e <= b.ts)
            .map(|(_, k)| *k)
            .max()
            .unwrap_or(b.ts);
        assert!(
            b.decided >= need.max(b.ts),
            "bar {}: {} < {need}",
            b.ts,
            b.decided
        );
    }
    let res = research(&mut system).unwrap();
    assert!(
        (res.stats.pnl - run.stats.pnl).abs() < 0.005,
        "research {} vs event-driven {}",
        res.stats.pnl,
        run.stats.pnl
    );
}

#[test]
fn daily_bars_off_the_decision_grid_straddle_it_without_a_violation() {
    // Daily bars ending 21:00 UTC, decided on a grid of midnights: each fill's one
    // row started the afternoon before its decision and ends after it. Its price is
    // its end's (after the order), so the audit counts it and passes.
    let text = r#"
[market_data]
type = "synthetic"
assets = 4
bars = 60
freq = "1d"
calendar = "24/7"
start = "2024-01-02 21:00"
seed = 5

[dag]
type = "graph"
[dag.nodes.prices]
type = "market_data"

[system]
bar = "1d"
prediction = "close"

[system.processor]
type = "cross_sectional"
target_gmv = 10000.0
"#;
    let config = Config::from_toml_str(text, "daily.toml").unwrap();
    let mut system = System::from_config(&config).unwrap();
    let run = system.run().unwrap();
    assert!(run.fills.ts.len() > 50, "the strategy trades");
    assert!(run.audit.passed(), "{:?}", run.audit);
    assert!(run.audit.straddling_rows > 50, "{:?}", run.audit);
    let res = research(&mut system).unwrap();
    assert!((res.stats.pnl - run.stats.pnl).abs() < 0.005);
}
