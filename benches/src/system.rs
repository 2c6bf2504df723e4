//! The system end to end on generated bars (500 assets x 100,000 one-minute bars
//! under the simulated clock), and the order simulator alone (1 million fills).

use std::time::Instant;

use kf_config::Config;
use kf_system::System;
use kf_system::{CostModel, fill_orders};

/// The Mock1 system config over `assets x bars` synthetic one-minute bars, deciding
/// every `bar`.
pub fn config_text(assets: usize, bars: usize, bar: &str) -> String {
    format!(
        r#"
[market_data]
type = "synthetic"
assets = {assets}
bars = {bars}
start = "2018-01-02 09:31"
tz = "America/New_York"
calendar = "us_equity"
seed = 11
{}"#,
        mock1_system(bar)
    )
}

/// The Mock1 system's `[dag]` and `[system]` tables, deciding every `bar` (the
/// market data is the caller's).
pub fn mock1_system(bar: &str) -> String {
    format!(
        r#"
[dag]
type = "mock1"
max_gap = "1h"

[system]
bar = "{bar}"
volatility = "vwap.ret_0.vol"

[system.processor]
type = "cross_sectional"
target_gmv = 1000000.0
max_holding = 20000.0

[system.costs]
half_spread_bps = 1.0
impact_bps = 5.0
"#
    )
}

/// Runs the system benchmark and prints its figures; `false` when it could not run.
pub fn run(
    assets: usize,
    bars: usize,
    bar: &str,
    durable: Option<&std::path::Path>,
    write: Option<&std::path::Path>,
) -> bool {
    let config = match Config::from_toml_str(&config_text(assets, bars, bar), "bench.toml") {
        Ok(c) => c,
        Err(e) => {
            eprintln!("{e}");
            return false;
        }
    };
    let t = Instant::now();
    let mut system = match System::from_config(&config) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("{e}");
            return false;
        }
    };
    let setup = t.elapsed().as_secs_f64();
    let t = Instant::now();
    let run = match system.run() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("{e}");
            return false;
        }
    };
    let wall = t.elapsed().as_secs_f64();
    let data_bars = system.market.prices.n_rows();
    println!(
        "system mock1: {assets} assets x {data_bars} one-minute bars, a decision every {bar} ({} decisions), simulated clock",
        run.bars.len()
    );
    println!("  setup (generate the data, load prices, check the DAG): {setup:.2} s");
    println!(
        "  run: {wall:.2} s: {:.0} bars/s, {:.1} M asset-bars/s, {:.1} us per decision; {} orders, {} fills",
        data_bars as f64 / wall,
        (data_bars * assets) as f64 / wall / 1e6,
        wall / run.bars.len() as f64 * 1e6,
        run.orders.quantity.len(),
        run.stats.fills
    );
    if let Some(dir) = write
        && !write_case(&run, dir)
    {
        return false;
    }
    match durable {
        Some(dir) => durable_case(&config, &run, wall, dir),
        None => true,
    }
}

/// Writes the run's files into `dir` and prints the time and the tables' sizes.
fn write_case(run: &kf_system::SystemRun, dir: &std::path::Path) -> bool {
    let _ = std::fs::remove_dir_all(dir);
    if let Err(e) = std::fs::create_dir_all(dir) {
        eprintln!("cannot create {}: {e}", dir.display());
        return false;
    }
    let t = Instant::now();
    if let Err(e) = kf_system::output::write_run(run, dir) {
        eprintln!("{e}");
        return false;
    }
    let wall = t.elapsed().as_secs_f64();
    let size = |name: &str| std::fs::metadata(dir.join(name)).map_or(0.0, |m| m.len() as f64 / 1e6);
    let rows = run.orders.quantity.len() + run.fills.quantity.len();
    println!(
        "  write ({}): {wall:.2} s, {:.1} M order and fill rows/s; orders.parquet {:.1} MB, \
         fills.parquet {:.1} MB",
        dir.display(),
        rows as f64 / wall / 1e6,
        size("orders.parquet"),
        size("fills.parquet"),
    );
    true
}

/// Runs the system again as a durable run in `dir` and prints what recording each
/// decision costs; `false` when it fails or differs from `plain`.
fn durable_case(
    config: &Config,
    plain: &kf_system::SystemRun,
    plain_wall: f64,
    dir: &std::path::Path,
) -> bool {
    let _ = std::fs::remove_dir_all(dir);
    let result = System::from_config(config).and_then(|mut s| {
        let t = Instant::now();
        let r = s.run_durable(dir)?;
        Ok((r, t.elapsed().as_secs_f64()))
    });
    let ((run, _), wall) = match result {
        Ok(r) => r,
        Err(e) => {
            eprintln!("{e}");
            return false;
        }
    };
    let same = format!("{:?}{:?}{:?}", run.bars, run.orders, run.fills)
        == format!("{:?}{:?}{:?}", plain.bars, plain.orders, plain.fills);
    let n = run.bars.len().max(1) as f64;
    println!(
        "  durable run ({}): {wall:.2} s, {:.0} us per decision more than the plain run \
         (a synced journal record and checkpoint each); the plain run's bits: {same}",
        dir.display(),
        (wall - plain_wall) / n * 1e6
    );
    same
}

/// Fills `n` orders, as one call and as calls of `per_bar` orders, and prints the
/// times (medians of `runs`).
pub fn orders(n: usize, per_bar: usize, runs: usize) {
    let mut x = 0x2545_f491_4f6c_dd1du64;
    let mut next = || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        (x >> 11) as f64 / (1u64 << 53) as f64
    };
    let qty: Vec<f64> = (0..n).map(|_| (next() - 0.5) * 2000.0).collect();
    let price: Vec<f64> = (0..n).map(|_| 10.0 + next() * 100.0).collect();
    let volume: Vec<f64> = (0..n).map(|_| 1e4 + next() * 1e5).collect();
    let costs = CostModel {
        half_spread_bps: 1.0,
        impact_bps: 5.0,
    };
    let (mut filled, mut cost) = (vec![0.0; n], vec![0.0; n]);
    let mut whole = Vec::new();
    let mut chunked = Vec::new();
    let mut check = 0.0;
    for _ in 0..runs.max(1) {
        let t = Instant::now();
        let totals = fill_orders(&qty, &price, &volume, &costs, &mut filled, &mut cost);
        whole.push(t.elapsed().as_secs_f64());
        check += totals.costs;
        let t = Instant::now();
        for at in (0..n).step_by(per_bar.max(1)) {
            let end = (at + per_bar).min(n);
            let totals = fill_orders(
                &qty[at..end],
                &price[at..end],
                &volume[at..end],
                &costs,
                &mut filled[at..end],
                &mut cost[at..end],
            );
            check += totals.costs;
        }
        chunked.push(t.elapsed().as_secs_f64());
    }
    let median = |mut v: Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let (a, b) = (median(whole), median(chunked));
    println!("order simulation: {n} orders with prices, volumes, half-spread and impact costs");
    println!(
        "  one call: {:.2} ms ({:.0} M orders/s); {} calls of {per_bar}: {:.2} ms (checksum {check:.0})",
        a * 1e3,
        n as f64 / a / 1e6,
        n.div_ceil(per_bar.max(1)),
        b * 1e3
    );
}
