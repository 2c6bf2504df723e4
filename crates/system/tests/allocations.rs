//! A system deciding every minute allocates nothing per decision in steady state:
//! the run over twice the bars makes (almost) no more allocations than the run over
//! half, so nothing in the loop (the shared query, the DAG's step, the book's
//! decision, the orders it queues) allocates per decision. Allocations are counted
//! by this binary's global allocator on the test's own thread, the thread the
//! system's event loop runs on.

use kf_config::Config;
use kf_system::System;
use kf_testkit::allocations;

#[global_allocator]
static GLOBAL: kf_testkit::Counting = kf_testkit::Counting;

/// Mock1 on `bars` synthetic one-minute bars of 12 assets, with a decision every
/// minute and a cross-sectional processor.
fn config(bars: usize) -> Config {
    let text = format!(
        r#"
[market_data]
type = "synthetic"
assets = 12
bars = {bars}
start = "2018-01-02 09:31"
tz = "America/New_York"
calendar = "us_equity"
seed = 5

[dag]
type = "mock1"
max_gap = "1h"

[system]
bar = "1min"
volatility = "vwap.ret_0.vol"

[system.processor]
type = "cross_sectional"
target_gmv = 1000000.0
max_holding = 20000.0

[system.costs]
half_spread_bps = 1.0
impact_bps = 5.0
"#
    );
    Config::from_toml_str(&text, "alloc.toml").unwrap()
}

/// The decisions and the allocations of a whole `System::run` over `bars` bars.
fn run(bars: usize) -> (usize, usize, u64) {
    let config = config(bars);
    let mut system = System::from_config(&config).unwrap();
    let (run, n) = allocations(|| system.run().unwrap());
    (run.bars.len(), run.orders.quantity.len(), n)
}

#[test]
fn a_decision_a_minute_allocates_nothing_in_steady_state() {
    // Whole days (390 bars each), so both runs cross the same kinds of events
    // (openings, closes, nights); the longer one has 1,950 more decisions.
    let (short_decisions, short_orders, short) = run(390 * 5);
    let (long_decisions, long_orders, long) = run(390 * 10);
    let more = long_decisions - short_decisions;
    assert!(
        more >= 1900,
        "{short_decisions} and {long_decisions} decisions"
    );
    // The processor traded at most decisions (so the loop's order path ran).
    assert!(
        long_orders > short_orders + more,
        "{short_orders} and {long_orders} orders"
    );
    // What grows with the run's length may allocate a logarithmic number of times
    // (a vector doubling); a per-decision allocation would add at least `more`.
    let extra = long.saturating_sub(short);
    assert!(
        extra < 64,
        "{extra} more allocations over {more} more decisions ({short} for \
         {short_decisions} decisions, {long} for {long_decisions})"
    );
}
