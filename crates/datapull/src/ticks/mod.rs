//! `ticks`: trade ticks from CSV files (plain or gzip), one row per trade.
//!
//! A frame's rows must have strictly increasing times, and many trades share a
//! millisecond. A tick's row time is therefore its timestamp, or 1 ns after the
//! previous tick's row time of its asset when that is later: the third trade of a
//! millisecond sits 2 ns after the first. Order within the file is kept, no two
//! ticks of an asset share a row whatever the unit of the timestamps (nanosecond
//! timestamps that tie are pushed 1 ns apart), a tick is never moved by a
//! millisecond or more (over a million ticks of one asset crowded into one
//! millisecond is an error), and the ticks of several assets share rows where
//! their times coincide.
//!
//! The columns are those of the LEAN trade ticks in `../shared/data`
//! (`timestamp_et, symbol, price, size, exchange, sale_condition, suspicious`; see
//! that folder's SOURCE.md). The features are numbers: `price`, `size`,
//! `exchange` (the venue letter's ASCII code: `P` is 80), `condition` (the hex
//! sale-condition flags as an integer) and `suspicious` (0 or 1).
//!
//! Well-formed files are read on every thread (the `pieces` module: each
//! inflated whole, a large one cut into pieces, the pieces joined in order); when
//! one is malformed, every file is read one after another by the `csv` crate,
//! which names the first bad line. Both give the same rows.

mod pieces;
#[cfg(test)]
mod pieces_tests;

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use kf_config::Section;
use kf_frame::{Frame, parse_duration, parse_tz};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::csv_source::chunks::Chunking;
use crate::csv_source::clock_text::{TimeFormat, TimeParser};
use crate::csv_source::lines::{Tee, next_record};
use crate::csv_source::read::{open, parse_number};
use crate::error::{DataError, Result};
use crate::{Query, Source};

/// The features a tick source gives, in this order.
pub const TICK_FEATURES: [&str; 5] = ["price", "size", "exchange", "condition", "suspicious"];

/// Parameters of the `ticks` source.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(default)]
pub struct TickParams {
    /// A file or a glob of files (relative to the config's folder; `${VAR}` and
    /// `${VAR:-default}` are expanded).
    pub files: String,
    /// The zone the timestamps are written in.
    pub tz: String,
    /// The timestamp column (`YYYY-MM-DD HH:MM:SS.fff`).
    pub timestamp_column: String,
    /// The asset column.
    pub asset_column: String,
    /// Added to every tick's time to give its knowledge time.
    pub delay: String,
}

impl Default for TickParams {
    fn default() -> Self {
        TickParams {
            files: String::new(),
            tz: "America/New_York".into(),
            timestamp_column: "timestamp_et".into(),
            asset_column: "symbol".into(),
            delay: "0s".into(),
        }
    }
}

/// The `ticks` source (see the module doc).
#[derive(Debug)]
pub struct TickSource {
    params: TickParams,
    files: Vec<PathBuf>,
    tz: chrono_tz::Tz,
    delay: i64,
    frame: OnceLock<Frame>,
    loading: std::sync::Mutex<()>,
}

/// One asset's ticks: row times and the five features, row-major.
#[derive(Default)]
struct AssetTicks {
    ts: Vec<i64>,
    values: Vec<[f64; 5]>,
    /// The timestamp of the last tick and the row time it was given.
    last: Option<(i64, i64)>,
}

impl TickSource {
    /// The source a `[market_data]` (or node `source`) section describes.
    ///
    /// # Errors
    /// A located config error for a missing file, a bad zone or delay.
    pub fn from_config(s: &Section<'_>) -> kf_config::Result<TickSource> {
        let params: TickParams = s.deserialize()?;
        let base = crate::paths::config_dir(s);
        let files =
            crate::paths::expand_files(&params.files, &base).map_err(|m| s.invalid("files", m))?;
        let tz = parse_tz(&params.tz).map_err(|e| s.invalid("tz", e.to_string()))?;
        let delay = parse_duration(&params.delay).map_err(|e| s.invalid("delay", e.to_string()))?;
        if delay < 0 {
            return Err(s.invalid("delay", "cannot be negative"));
        }
        Ok(TickSource {
            params,
            files,
            tz,
            delay,
            frame: OnceLock::new(),
            loading: std::sync::Mutex::new(()),
        })
    }

    fn frame(&self) -> Result<&Frame> {
        if let Some(f) = self.frame.get() {
            return Ok(f);
        }
        let _guard = self.loading.lock().map_err(|_| DataError::Query {
            what: "a reader of this tick source panicked".into(),
        })?;
        if let Some(f) = self.frame.get() {
            return Ok(f);
        }
        // The parallel read takes well-formed files; the sequential one reads
        // the rest and names what is wrong, by file and line.
        let assets = match pieces::read_all(self, Chunking::auto())? {
            Some(assets) => assets,
            None => {
                let mut assets: Vec<(String, AssetTicks)> = Vec::new();
                for path in &self.files {
                    self.read_file(path, &mut assets)?;
                }
                assets
            }
        };
        let frame = merge(assets, self.delay)?;
        Ok(self.frame.get_or_init(|| frame))
    }

    fn read_file(&self, path: &Path, assets: &mut Vec<(String, AssetTicks)>) -> Result<()> {
        let line_err = |line: u64, message: String| DataError::Line {
            path: path.to_path_buf(),
            line,
            message,
        };
        // The lines named are those an editor shows (see `csv_source::lines`).
        let (reader, tail) = Tee::new(open(path)?, 1);
        let mut csv = csv::ReaderBuilder::new()
            .has_headers(true)
            .buffer_capacity(1 << 20)
            .from_reader(reader);
        let header = csv
            .byte_headers()
            .map_err(|e| line_err(1, format!("cannot read the header: {e}")))?
            .clone();
        let col = |name: &str| -> Result<usize> {
            header
                .iter()
                .position(|h| h == name.as_bytes())
                .ok_or_else(|| {
                    line_err(
                        1,
                        format!(
                            "no column `{}`; the header has: {}",
                            kf_config::clip_text(name),
                            kf_config::clip_text(&String::from_utf8_lossy(header.as_slice()))
                        ),
                    )
                })
        };
        let cols = [
            col(&self.params.timestamp_column)?,
            col(&self.params.asset_column)?,
            col("price")?,
            col("size")?,
            col("exchange")?,
            col("sale_condition")?,
            col("suspicious")?,
        ];
        let mut parser = TimeParser::new(TimeFormat::Iso, self.tz);
        let mut record = csv::ByteRecord::new();
        let mut line: u64 = 1;
        let mut current: Option<usize> = None;
        while let Some(l) = next_record(&mut csv, &tail, &mut record, line, path)? {
            line = l;
            let field = |i: usize| record.get(cols[i]).unwrap_or(b"");
            let ts = parser
                .parse(field(0))
                .map_err(|m| line_err(line, format!("timestamp: {m}")))?;
            let symbol = field(1);
            let a = match current {
                Some(a) if assets[a].0.as_bytes() == symbol => a,
                _ => {
                    let name = std::str::from_utf8(symbol)
                        .map_err(|_| line_err(line, "the symbol is not UTF-8".into()))?;
                    if name.is_empty() {
                        return Err(line_err(line, "the symbol is empty".into()));
                    }
                    let a = match assets.iter().position(|(s, _)| s == name) {
                        Some(a) => a,
                        None => {
                            assets.push((name.to_string(), AssetTicks::default()));
                            assets.len() - 1
                        }
                    };
                    current = Some(a);
                    a
                }
            };
            let values = trade_values(field).map_err(|m| line_err(line, m))?;
            let t = &mut assets[a].1;
            // The row time: the tick's own time, or 1 ns after the row before it
            // when that is later (ticks sharing a timestamp, whatever its unit).
            let row = match t.last {
                Some((prev, _)) if ts < prev => {
                    return Err(line_err(
                        line,
                        format!(
                            "this tick of {} is earlier than the one before it; ticks must \
                             be in time order within each asset",
                            assets[a].0
                        ),
                    ));
                }
                Some((_, prev_row)) => ts.max(prev_row.saturating_add(1)),
                None => ts,
            };
            if row - ts >= 1_000_000 {
                return Err(line_err(
                    line,
                    "over a million ticks of one asset crowded into one millisecond".into(),
                ));
            }
            t.last = Some((ts, row));
            t.ts.push(row);
            t.values.push(values);
        }
        Ok(())
    }
}

/// A trade's five features from its fields (`field(2)` to `field(6)`: price, size,
/// exchange, sale condition, suspicious), or what is wrong with them. Both reads
/// take every row through here, so they accept the same rows and give the same
/// bits.
fn trade_values<'a>(field: impl Fn(usize) -> &'a [u8]) -> std::result::Result<[f64; 5], String> {
    let number = |i: usize, what: &str| {
        parse_number(field(i))
            .ok()
            .filter(|x| x.is_finite())
            .ok_or_else(|| {
                format!(
                    "{what} {:?} is not a finite number",
                    kf_config::clip_text(&String::from_utf8_lossy(field(i)))
                )
            })
    };
    let price = number(2, "price")?;
    let size = number(3, "size")?;
    if price <= 0.0 || size < 0.0 {
        return Err(format!(
            "price {price} and size {size}: a trade has a positive price and a non-negative size"
        ));
    }
    let exchange = match field(4) {
        [c] if c.is_ascii_graphic() => f64::from(*c),
        [] => f64::NAN,
        other => {
            return Err(format!(
                "exchange {:?} is not one letter",
                kf_config::clip_text(&String::from_utf8_lossy(other))
            ));
        }
    };
    let cond_text = std::str::from_utf8(field(5)).unwrap_or("");
    let condition = u32::from_str_radix(cond_text.trim(), 16).map_err(|_| {
        format!(
            "sale_condition {:?} is not hexadecimal flags (such as 20000020)",
            kf_config::clip_text(cond_text)
        )
    })?;
    let suspicious = match field(6) {
        b"0" => 0.0,
        b"1" => 1.0,
        other => {
            return Err(format!(
                "suspicious {:?} is not 0 or 1",
                kf_config::clip_text(&String::from_utf8_lossy(other))
            ));
        }
    };
    Ok([price, size, exchange, f64::from(condition), suspicious])
}

/// The wide frame of every asset's ticks: the union of their row times.
fn merge(mut assets: Vec<(String, AssetTicks)>, delay: i64) -> Result<Frame> {
    assets.sort_by(|a, b| a.0.cmp(&b.0));
    let mut ts: Vec<i64> = assets
        .iter()
        .flat_map(|(_, t)| t.ts.iter().copied())
        .collect();
    ts.sort_unstable();
    ts.dedup();
    let n = assets.len();
    let rows = ts.len();
    kf_frame::budget::check_bytes(
        &format!("{rows} tick rows x {n} assets"),
        rows as u128 * n as u128 * 5 * 8,
    )
    .map_err(|e| DataError::Query {
        what: e.to_string(),
    })?;
    let mut cols: Vec<Vec<f64>> = vec![vec![f64::NAN; rows * n]; 5];
    for (a, (_, t)) in assets.iter().enumerate() {
        let mut r = 0;
        for (k, &time) in t.ts.iter().enumerate() {
            while ts[r] < time {
                r += 1;
            }
            for (f, col) in cols.iter_mut().enumerate() {
                col[r * n + a] = t.values[k][f];
            }
        }
    }
    let knowledge: Vec<i64> = ts.iter().map(|&t| t.saturating_add(delay)).collect();
    let names: Vec<String> = assets.into_iter().map(|(s, _)| s).collect();
    let features = TICK_FEATURES
        .iter()
        .map(|f| f.to_string())
        .zip(cols)
        .collect();
    Ok(Frame::new(ts, knowledge, names, features)?)
}

impl Source for TickSource {
    fn fingerprint(&self) -> Result<Option<String>> {
        let settings = format!("ticks;{:?};{};{}", self.params, self.tz, self.delay);
        let files = crate::fingerprint::files_fingerprint(&self.files)?;
        Ok(Some(format!("{}:{settings};{files}", settings.len())))
    }

    fn describe(&self) -> String {
        format!(
            "ticks: {} file(s) matching {}",
            self.files.len(),
            self.params.files
        )
    }

    fn features(&self) -> Option<Vec<String>> {
        Some(TICK_FEATURES.iter().map(|f| f.to_string()).collect())
    }

    fn load(&self, query: &Query) -> Result<Frame> {
        query.apply(self.frame()?)
    }
}
