//! Every data set in `../shared/data/`, read through the configs shipped in
//! `configs/data/`, checked against the counts, assets and time ranges that its
//! `SOURCE.md` publishes (computed there independently, with pandas).
//!
//! `KF_SHARED_DATA` overrides the data folder. When the data is missing, a test
//! fails in CI (`CI=true`) and is skipped with a printed reason elsewhere.

use std::path::PathBuf;

use arrow::array::{Array, AsArray, RecordBatch};
use arrow::datatypes::{Float64Type, TimestampNanosecondType};
use kf_config::Config;
use kf_datapull::{CsvSource, Query, Source};
use kf_frame::Timestamp;

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The data folder, or `None` (after saying why) when it is absent outside CI.
pub(crate) fn shared(folder: &str) -> Option<PathBuf> {
    let base = std::env::var_os("KF_SHARED_DATA")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo().join("../shared/data"));
    let dir = base.join(folder);
    if dir.is_dir() {
        return Some(dir);
    }
    let msg = format!(
        "shared data {} is missing (set KF_SHARED_DATA)",
        dir.display()
    );
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("{msg}");
    }
    eprintln!("SKIPPED: {msg}");
    None
}

fn source(config: &str) -> CsvSource {
    let path = repo().join("configs/data").join(config);
    let c = Config::from_file(&path).unwrap();
    let section = c.section("market_data").unwrap();
    assert_eq!(section.get::<String>("type").unwrap(), "csv");
    let src = CsvSource::from_config(&section).unwrap();
    c.check_all_used().unwrap();
    src
}

/// Rows per asset, and the first and last bar end (UTC) per asset.
fn per_asset(batches: &[RecordBatch]) -> std::collections::BTreeMap<String, (usize, i64, i64)> {
    let mut out = std::collections::BTreeMap::new();
    for b in batches {
        let end = b.column(0).as_primitive::<TimestampNanosecondType>();
        let asset = b.column(2).as_string::<i32>();
        for i in 0..b.num_rows() {
            let e = out
                .entry(asset.value(i).to_string())
                .or_insert((0, i64::MAX, i64::MIN));
            e.0 += 1;
            e.1 = e.1.min(end.value(i));
            e.2 = e.2.max(end.value(i));
        }
    }
    out
}

fn utc(s: &str) -> i64 {
    Timestamp::parse(s).unwrap().nanos()
}

#[test]
fn us_equity_1min_2018() {
    if shared("us_equity_1min_2018").is_none() {
        return;
    }
    let src = source("us_equity_1min_2018.toml");
    let long = src.read_long().unwrap();
    let rows = per_asset(&long);
    assert_eq!(rows.len(), 40);
    assert_eq!(rows.values().map(|r| r.0).sum::<usize>(), 687_393);
    assert_eq!(rows["AAPL"].0, 17_204);
    assert_eq!(rows["GOOGL"].0, 17_032);
    // First bar starts 2018-02-16 09:30 EST, so ends 14:31 UTC; the last (the 16:00
    // closing cross, EDT) ends 20:01 UTC on 2018-04-20. BA starts a minute later.
    assert_eq!(rows["AAPL"].1, utc("2018-02-16 14:31"));
    assert_eq!(rows["BA"].1, utc("2018-02-16 14:32"));
    assert!(rows.values().all(|r| r.2 == utc("2018-04-20 20:01")));
    let f = src.load(&Query::all()).unwrap();
    // 44 days x 391 labels, the complete grid (AAPL has every one).
    assert_eq!(f.n_rows(), 44 * 391);
    // AAPL closed 2018-04-20 at 165.72 (SOURCE.md, matching the real close).
    let aapl_last = f.value("close", "AAPL", f.n_rows() - 2).unwrap();
    assert!((aapl_last - 165.72).abs() < 0.5, "{aapl_last}");
    let close = f.feature("close").unwrap();
    let present = close.values().iter().filter(|v| !v.is_nan()).count();
    assert_eq!(present, 687_393);
}

#[test]
fn binance_top10_1m() {
    if shared("binance_top10_1m").is_none() {
        return;
    }
    let src = source("binance_top10_1m.toml");
    let long = src.read_long().unwrap();
    let rows = per_asset(&long);
    assert_eq!(rows.len(), 10);
    assert_eq!(rows.values().map(|r| r.0).sum::<usize>(), 446_405);
    // Open times in UTC, bars end a minute later.
    assert_eq!(
        rows["BTCUSDT"],
        (44_640, utc("2026-07-11 15:32"), utc("2026-08-11 15:31"))
    );
    assert_eq!(
        rows["DOTUSDT"],
        (44_641, utc("2026-07-11 15:36"), utc("2026-08-11 15:36"))
    );
    // Zero-volume bars of DOT: 5,831.
    let f = src
        .load(&Query::all().assets(&["DOTUSDT"]).columns(&["volume"]))
        .unwrap();
    let zero = f
        .feature("volume")
        .unwrap()
        .values()
        .iter()
        .filter(|&&v| v == 0.0)
        .count();
    assert_eq!(zero, 5_831);
    // No missing minutes: each asset's rows are a complete grid.
    assert!(
        rows.values()
            .all(|r| (r.2 - r.1) / 60_000_000_000 + 1 == r.0 as i64)
    );
}

#[test]
fn lean_minute_bars_and_ticks_2013() {
    if shared("lean_us_equity_tick_minute_2013").is_none() {
        return;
    }
    let bars = per_asset(&source("lean_minute_bars_2013.toml").read_long().unwrap());
    let counts: Vec<(&str, usize)> = bars.iter().map(|(a, r)| (a.as_str(), r.0)).collect();
    assert_eq!(
        counts,
        [
            ("AIG", 2_558),
            ("BAC", 3_466),
            ("IBM", 2_566),
            ("SPY", 4_839)
        ]
    );
    // SPY's first bar starts 04:06 EDT (UTC-4) on 2013-10-04: ends 08:07 UTC.
    assert_eq!(bars["SPY"].1, utc("2013-10-04 08:07"));

    let ticks_src = source("lean_ticks_2013.toml");
    let ticks = ticks_src.read_long().unwrap();
    let per = per_asset(&ticks);
    assert_eq!(
        per["SPY"],
        (
            899_709,
            utc("2013-10-09 08:00:00.924"),
            utc("2013-10-10 23:59:36.983")
        )
    );
    assert_eq!(per["IBM"].0, 126_395);
    // Ten SPY ticks are flagged suspicious, no IBM tick is.
    let mut suspicious = std::collections::BTreeMap::new();
    for b in &ticks {
        let flag = b
            .column_by_name("suspicious")
            .unwrap()
            .as_primitive::<Float64Type>();
        let asset = b.column(2).as_string::<i32>();
        for i in 0..b.num_rows() {
            *suspicious.entry(asset.value(i).to_string()).or_insert(0.0) += flag.value(i);
        }
    }
    assert_eq!((suspicious["SPY"], suspicious["IBM"]), (10.0, 0.0));
    // Ticks share timestamps, so they are rows, not a frame.
    let e = ticks_src.load(&Query::all()).unwrap_err().to_string();
    assert!(e.contains("duplicate row for asset"), "{e}");
}

#[test]
fn sp500_daily_2013_2018() {
    if shared("sp500_daily_2013_2018").is_none() {
        return;
    }
    let src = source("sp500_daily_2013_2018.toml");
    let long = src.read_long().unwrap();
    let rows = per_asset(&long);
    assert_eq!(rows.len(), 505);
    assert_eq!(rows.values().map(|r| r.0).sum::<usize>(), 619_040);
    assert_eq!(rows.values().filter(|r| r.0 == 1_259).count(), 470);
    assert_eq!(rows["APTV"].0, 44);
    // Dates are 16:00 New York closes: EST (UTC-5) in February.
    assert_eq!(rows["AAPL"].1, utc("2013-02-08 21:00"));
    assert_eq!(rows["AAPL"].2, utc("2018-02-07 21:00"));
    // Nulls: open 11, high 8, low 8, close 0.
    let missing = |name: &str| -> usize {
        long.iter()
            .map(|b| {
                let c = b
                    .column_by_name(name)
                    .unwrap()
                    .as_primitive::<Float64Type>();
                c.values().iter().filter(|v| v.is_nan()).count() + c.null_count()
            })
            .sum()
    };
    assert_eq!(
        [
            missing("open"),
            missing("high"),
            missing("low"),
            missing("close")
        ],
        [11, 8, 8, 0]
    );
    let f = src.load(&Query::all()).unwrap();
    assert_eq!((f.n_rows(), f.n_assets()), (1_259, 505));
    // AAPL at 67.85 on 2013-02-08, split-adjusted (SOURCE.md).
    assert!((f.value("close", "AAPL", 0).unwrap() - 67.85).abs() < 0.01);
}
