//! What the system's integration tests share: generated minute bars as CSV, a
//! system over them, and a run's exact fingerprint.

#![allow(dead_code)]

use std::path::Path;

use kf_config::Config;
use kf_system::{Registries, SystemRun};

/// Minute bars of four assets over `days` trading days (390 a day, from 14:31 UTC),
/// as one CSV; the rows of a day do not depend on how many days are written.
pub fn write_days(path: &Path, days: usize) {
    let mut s = String::from("timestamp,asset,close,volume\n");
    let mut price = [40.0f64, 75.0, 120.0, 15.0];
    for d in 0..days {
        for m in 0..390u32 {
            let (h, min) = (14 + (31 + m) / 60, (31 + m) % 60);
            for (a, p) in price.iter_mut().enumerate() {
                // A pseudo-random walk: a hash of (day, minute, asset) as the step.
                let x = (d as u64 * 390 + u64::from(m)) * 4 + a as u64;
                let h64 = x.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 40;
                let step = (h64 % 2001) as f64 / 1000.0 - 1.0;
                *p *= 1.0 + 0.0015 * step;
                s.push_str(&format!(
                    "2024-01-{:02} {h:02}:{min:02},A{a},{:.4},{}\n",
                    2 + d,
                    p,
                    100 + (x % 37)
                ));
            }
        }
    }
    std::fs::write(path, s).unwrap();
}

/// A system over the CSV at `csv`: a smoothed z-score of returns as the forecast,
/// traded by `processor` (a `[system.processor]` table and anything after it).
pub fn config(csv: &Path, processor: &str) -> Config {
    let text = format!(
        r#"
[market_data]
type = "csv"
files = "{}"
asset_column = "asset"

[dag]
type = "graph"
edges = [["read", "ret"], ["ret", "z"], ["z", "ema"]]
[dag.nodes.read]
type = "market_data"
[dag.nodes.ret]
type = "compute_ret_0"
cols = ["close"]
[dag.nodes.z]
type = "rolling"
stat = "zscore"
cols = ["close.ret_0"]
window = 15
[dag.nodes.ema]
type = "ema"
cols = ["close.ret_0.zscore"]
tau = 4.0

[system]
bar = "5min"
prediction = "close.ret_0.zscore.ema"
[system.costs]
half_spread_bps = 1.0
{processor}
"#,
        csv.display()
    );
    Config::from_toml_str(&text, "growing.toml").unwrap()
}

/// Everything a run produced apart from the fits' wall times, as exact text
/// (`{:?}` of an f64 round-trips, and tells -0.0 and NaN payload-free NaNs apart).
pub fn fingerprint(r: &SystemRun) -> String {
    let fits: Vec<_> = r
        .fits
        .iter()
        .map(|f| (f.decision, f.span, f.known_by))
        .collect();
    format!(
        "{:?}|{:?}|{:?}|{:?}|{:?}|{:?}|{:?}|{:?}|{:?}|{:?}",
        r.assets,
        r.bars,
        r.orders,
        r.fills,
        r.holdings,
        r.stale_forecasts,
        r.audit,
        r.stats,
        fits,
        r.states
    )
}

/// The built-in types and a processor of the test's own, under `name`.
pub fn with_processor(
    name: &str,
    make: fn() -> Box<dyn kf_system::ForecastProcessor>,
) -> Registries {
    let mut types = Registries::default();
    types
        .processors
        .insert(
            name,
            kf_config::TypeDoc::new("a test's processor"),
            Box::new(move |_: &kf_config::Section<'_>| Ok(make())),
        )
        .unwrap();
    types
}
