//! Data for the benchmarks: generated long-layout tables at any scale, and the real
//! minute bars of `../shared/data` (path overridable with `KF_SHARED_DATA`).

pub mod datapull;
pub mod gbt;
pub mod grow;
pub mod grow_system;
#[cfg(feature = "nn")]
pub mod lstm;
pub mod microstructure;
pub mod mock1;
pub mod optimize;
pub mod py;
pub mod run_real;
pub mod stream;
pub mod system;

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::sync::Arc;

use arrow::array::{ArrayRef, Float64Array, Int64Array, RecordBatch, StringArray};
use arrow::datatypes::{DataType, Field, Schema};
use kf_frame::Timestamp;

/// Row order of a generated long table.
#[derive(Clone, Copy, Debug)]
pub enum Order {
    /// All assets of bar 0, then of bar 1, ... (as a live feed or a bar store yields).
    TimeMajor,
    /// All bars of asset 0, then of asset 1, ... (as per-asset files concatenate).
    AssetMajor,
}

/// A long table of `assets x bars` one-minute rows with `features` f64 columns,
/// values from a cheap deterministic generator (the values do not matter here).
pub fn generate_long(assets: usize, bars: usize, features: usize, order: Order) -> RecordBatch {
    const MIN: i64 = 60_000_000_000;
    let t0 = 1_514_764_800 * 1_000_000_000i64; // 2018-01-01T00:00:00Z
    let n = assets * bars;
    let (mut ts, mut asset_idx) = (Vec::with_capacity(n), Vec::with_capacity(n));
    for i in 0..n {
        let (b, a) = match order {
            Order::TimeMajor => (i / assets, i % assets),
            Order::AssetMajor => (i % bars, i / bars),
        };
        ts.push(t0 + b as i64 * MIN);
        asset_idx.push(a);
    }
    let names: Vec<String> = (0..assets).map(|a| format!("A{a:04}")).collect();
    let mut columns: Vec<ArrayRef> = vec![
        Arc::new(Int64Array::from(ts.clone())),
        Arc::new(Int64Array::from_iter_values(
            ts.iter().map(|t| t + 1_000_000_000),
        )),
        Arc::new(StringArray::from_iter_values(
            asset_idx.iter().map(|&a| &names[a]),
        )),
    ];
    let mut fields = vec![
        Field::new("end_ts", DataType::Int64, false),
        Field::new("knowledge_ts", DataType::Int64, false),
        Field::new("asset", DataType::Utf8, false),
    ];
    for f in 0..features {
        let mut x = 0x9e37_79b9_7f4a_7c15u64 ^ f as u64;
        columns.push(Arc::new(Float64Array::from_iter_values((0..n).map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 11) as f64 / (1u64 << 53) as f64
        }))));
        fields.push(Field::new(format!("f{f}"), DataType::Float64, true));
    }
    RecordBatch::try_new(Arc::new(Schema::new(fields)), columns)
        .unwrap_or_else(|e| panic!("generated batch is malformed: {e}"))
}

/// Where the shared real data lives.
pub fn shared_data() -> PathBuf {
    std::env::var_os("KF_SHARED_DATA")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../shared/data")))
}

/// The 40 stocks of `us_equity_1min_2018` as one long batch, asset-major (one file
/// after another), with OHLCV features; `None` when the data set is absent.
///
/// This is a benchmark loader, not the project's CSV reader (that is `datapull`'s).
pub fn us_equity_long() -> Option<RecordBatch> {
    let dir = shared_data().join("us_equity_1min_2018");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .ok()?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.to_string_lossy().ends_with("_1min.csv.gz"))
        .collect();
    files.sort();
    let tz = kf_frame::parse_tz("America/New_York").ok()?;
    let (mut ts, mut assets) = (Vec::new(), Vec::new());
    let mut values: Vec<Vec<f64>> = vec![Vec::new(); 5];
    for path in files {
        let name = path
            .file_name()?
            .to_string_lossy()
            .replace("_1min.csv.gz", "");
        let file = std::fs::File::open(&path).ok()?;
        let reader = BufReader::new(flate2::read::GzDecoder::new(file));
        for line in reader.lines().skip(1) {
            let line = line.ok()?;
            let mut parts = line.split(',');
            // Bars are labelled by their start in this data set; the project labels
            // by end, so add one minute.
            let start = Timestamp::parse_in(parts.next()?, tz).ok()?.nanos();
            ts.push(start + 60_000_000_000);
            assets.push(name.clone());
            for v in values.iter_mut() {
                v.push(parts.next()?.parse().unwrap_or(f64::NAN));
            }
        }
    }
    let names = ["open", "high", "low", "close", "volume"];
    let mut fields = vec![
        Field::new("end_ts", DataType::Int64, false),
        Field::new("knowledge_ts", DataType::Int64, false),
        Field::new("asset", DataType::Utf8, false),
    ];
    fields.extend(
        names
            .iter()
            .map(|n| Field::new(*n, DataType::Float64, true)),
    );
    let mut columns: Vec<ArrayRef> = vec![
        Arc::new(Int64Array::from(ts.clone())),
        Arc::new(Int64Array::from(ts)),
        Arc::new(StringArray::from(assets)),
    ];
    columns.extend(
        values
            .into_iter()
            .map(|v| Arc::new(Float64Array::from(v)) as ArrayRef),
    );
    RecordBatch::try_new(Arc::new(Schema::new(fields)), columns).ok()
}
