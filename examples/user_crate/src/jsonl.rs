//! The `jsonl` source: market data as JSON lines, one bar of one asset per line:
//! `{"ts": "2024-01-02 09:31", "asset": "AAA", "close": 100.0, "volume": 1000}`.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

use kaizenflow::config::Section;
use kaizenflow::datapull::{DataError, Query, Source, paths};
use kaizenflow::frame::{Frame, Timestamp, parse_duration, parse_tz};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Parameters of `jsonl`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct JsonLinesParams {
    /// The file, relative to the config's folder.
    pub path: String,
    /// The numeric fields to read as features, in this order.
    #[serde(default = "close")]
    pub columns: Vec<String>,
    /// The zone the `ts` fields are written in (bar ends).
    #[serde(default = "new_york")]
    pub tz: String,
    /// How long after its end a bar becomes known.
    #[serde(default = "no_delay")]
    pub delay: String,
}

fn close() -> Vec<String> {
    vec!["close".into()]
}
fn new_york() -> String {
    "America/New_York".into()
}
fn no_delay() -> String {
    "0s".into()
}

/// A JSON-lines file of bars. Every line names its bar's end (`ts`), its `asset`
/// and a number for each configured column (`null` or absent: missing). Read
/// whole on the first query (a view caches it); the file is only checked to exist
/// when the source is built.
#[derive(Clone, Debug)]
pub struct JsonLines {
    file: PathBuf,
    params: JsonLinesParams,
    delay: i64,
}

impl JsonLines {
    /// Builds the source from its config table.
    ///
    /// # Errors
    /// A located config error: no `path`, a file that does not exist, an unknown
    /// zone, a bad delay, no columns.
    pub fn from_config(s: &Section<'_>) -> kaizenflow::config::Result<JsonLines> {
        let params: JsonLinesParams = s.deserialize()?;
        let file = paths::resolve(&params.path, &paths::config_dir(s))
            .map_err(|m| s.invalid("path", m))?;
        if !file.is_file() {
            return Err(s.invalid("path", format!("no file {}", file.display())));
        }
        if params.columns.is_empty() {
            return Err(s.invalid("columns", "name at least one numeric field"));
        }
        parse_tz(&params.tz).map_err(|e| s.invalid("tz", e.to_string()))?;
        let delay = parse_duration(&params.delay).map_err(|e| s.invalid("delay", e.to_string()))?;
        Ok(JsonLines {
            file,
            params,
            delay,
        })
    }

    fn line_error(&self, line: usize, message: impl Into<String>) -> DataError {
        DataError::Line {
            path: self.file.clone(),
            line: line as u64,
            message: message.into(),
        }
    }

    /// Reads the whole file into a wide frame.
    fn read(&self) -> kaizenflow::datapull::Result<Frame> {
        let text = std::fs::read_to_string(&self.file).map_err(|e| DataError::Store {
            path: self.file.clone(),
            message: format!("cannot read: {e}"),
        })?;
        let tz = parse_tz(&self.params.tz)?;
        // (end, asset) -> values, in the configured column order.
        let mut cells: BTreeMap<(i64, String), Vec<f64>> = BTreeMap::new();
        let mut assets: BTreeSet<String> = BTreeSet::new();
        for (i, line) in text.lines().enumerate() {
            let n = i + 1;
            if line.trim().is_empty() {
                continue;
            }
            let row: serde_json::Map<String, serde_json::Value> = serde_json::from_str(line)
                .map_err(|e| self.line_error(n, format!("not a JSON object: {e}")))?;
            let ts = row
                .get("ts")
                .and_then(|v| v.as_str())
                .ok_or_else(|| self.line_error(n, "no string field `ts`"))?;
            let end = Timestamp::parse_in(ts, tz)
                .map_err(|e| self.line_error(n, format!("ts: {e}")))?
                .nanos();
            let asset = row
                .get("asset")
                .and_then(|v| v.as_str())
                .ok_or_else(|| self.line_error(n, "no string field `asset`"))?;
            let mut values = Vec::with_capacity(self.params.columns.len());
            for c in &self.params.columns {
                values.push(match row.get(c) {
                    None | Some(serde_json::Value::Null) => f64::NAN,
                    Some(v) => v.as_f64().ok_or_else(|| {
                        self.line_error(n, format!("{c}: expected a number, found {v}"))
                    })?,
                });
            }
            if cells.insert((end, asset.to_string()), values).is_some() {
                return Err(self.line_error(
                    n,
                    format!("a second bar of {asset} ending at {}", Timestamp(end)),
                ));
            }
            assets.insert(asset.to_string());
        }
        let assets: Vec<String> = assets.into_iter().collect();
        let ends: Vec<i64> = cells
            .keys()
            .map(|(t, _)| *t)
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        let (rows, n) = (ends.len(), assets.len());
        let mut features: Vec<(String, Vec<f64>)> = self
            .params
            .columns
            .iter()
            .map(|c| (c.clone(), vec![f64::NAN; rows * n]))
            .collect();
        for ((t, a), values) in &cells {
            let (Ok(r), Ok(k)) = (ends.binary_search(t), assets.binary_search(a)) else {
                continue;
            };
            for (f, v) in features.iter_mut().zip(values) {
                f.1[r * n + k] = *v;
            }
        }
        let known: Vec<i64> = ends.iter().map(|t| t.saturating_add(self.delay)).collect();
        Ok(Frame::new(ends, known, assets, features)?)
    }
}

impl Source for JsonLines {
    fn describe(&self) -> String {
        format!("jsonl {}", self.file.display())
    }

    fn load(&self, query: &Query) -> kaizenflow::datapull::Result<Frame> {
        query.apply(&self.read()?)
    }

    fn features(&self) -> Option<Vec<String>> {
        Some(self.params.columns.clone())
    }
}
