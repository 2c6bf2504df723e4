//! The CSV adapter: text files (plain or gzip) to long-layout rows
//! `(end_ts, knowledge_ts, asset, features...)`.
//!
//! One source reads one file or a glob of files, one file per asset (the asset
//! named by a fixed value or taken from the file name) or files with an asset
//! column. The timestamp column is read in a given format and time zone; a bar
//! labelled by its start is moved to its end (the project's convention); knowledge
//! time comes from a column or from a fixed delay after the bar's end.
//!
//! ```toml
//! [market_data]
//! type = "csv"
//! files = "${KF_SHARED_DATA:-../../shared/data}/us_equity_1min_2018/*_1min.csv.gz"
//! asset_from_file = "{asset}_1min.csv.gz"
//! timestamp_column = "timestamp_et"
//! tz = "America/New_York"
//! label = "start"
//! freq = "1min"
//! ```

pub(crate) mod chunks;
#[cfg(test)]
mod chunks_tests;
pub(crate) mod clock_text;
pub(crate) mod lines;
pub(crate) mod read;
mod rows;
pub(crate) mod split;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use arrow::record_batch::RecordBatch;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use kf_config::Section;
use kf_frame::{Frame, parse_duration, parse_tz};

use crate::query::Query;
use crate::{DataError, Result, Source, revisions};

pub(crate) use clock_text::{TimeFormat, TimeParser};

/// Parameters of a [`CsvSource`], as written under its config section.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(default)]
pub struct CsvParams {
    /// A file, or a glob of files (`data/*_1min.csv.gz`). Relative paths are relative
    /// to the config file's folder; `${VAR}` and `${VAR:-default}` expand from the
    /// environment.
    pub files: String,
    /// The asset of every row (a single-asset file).
    pub asset: Option<String>,
    /// The column holding the asset name.
    pub asset_column: Option<String>,
    /// A file-name pattern with `{asset}` in it (`{asset}_1min.csv.gz`).
    pub asset_from_file: Option<String>,
    /// The column with the bar's time.
    pub timestamp_column: String,
    /// `iso` (`YYYY-MM-DD[ HH:MM[:SS[.fff]]]`), `unix_s`, `unix_ms`, `unix_us`,
    /// `unix_ns`, or a chrono `strftime` format.
    pub timestamp_format: String,
    /// Time zone of naive timestamps.
    pub tz: String,
    /// Whether the timestamp labels the bar's `start` or its `end`.
    pub label: String,
    /// Bar length; needed when `label = "start"` (the end is start + freq).
    pub freq: Option<String>,
    /// Added to every parsed bar time (a daily bar dated at midnight, shifted
    /// `16h`, ends at the 16:00 close).
    pub shift: String,
    /// Feature columns to keep, after renaming; all other numeric columns when unset.
    pub columns: Option<Vec<String>>,
    /// Renames, file column -> feature name.
    pub rename: BTreeMap<String, String>,
    /// A column with each row's knowledge time (same format and zone as the
    /// timestamp); rows with the same bar time and asset are then revisions.
    pub knowledge_column: Option<String>,
    /// Added to the knowledge time (to the bar's end when there is no knowledge column).
    pub delay: String,
    /// `strict` (bar times strictly increase per asset and file; equal times are
    /// allowed as revisions when there is a knowledge column), `non_decreasing`
    /// (ticks sharing a time), or `any`.
    pub order: String,
    /// Field separator (one byte).
    pub delimiter: String,
}

impl Default for CsvParams {
    fn default() -> Self {
        CsvParams {
            files: String::new(),
            asset: None,
            asset_column: None,
            asset_from_file: None,
            timestamp_column: "timestamp".into(),
            timestamp_format: "iso".into(),
            tz: "UTC".into(),
            label: "end".into(),
            freq: None,
            shift: "0s".into(),
            columns: None,
            rename: BTreeMap::new(),
            knowledge_column: None,
            delay: "0s".into(),
            order: "strict".into(),
            delimiter: ",".into(),
        }
    }
}

/// Where each row's asset comes from.
#[derive(Clone, Debug)]
pub(crate) enum AssetFrom {
    Fixed(String),
    Column(String),
    FileName { prefix: String, suffix: String },
}

/// How bar times must be ordered within a file, per asset.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Order {
    Strict,
    NonDecreasing,
    Any,
}

/// A validated CSV source.
#[derive(Debug)]
pub struct CsvSource {
    params: CsvParams,
    files: Vec<PathBuf>,
    asset: AssetFrom,
    format: TimeFormat,
    tz: chrono_tz::Tz,
    /// Added to a parsed bar time to get its end (`shift`, plus `freq` for start labels).
    to_end: i64,
    delay: i64,
    order: Order,
    delimiter: u8,
    /// With a knowledge column: every file's rows, parsed once (each as-of read then
    /// picks its versions from memory instead of parsing the files again).
    long: std::sync::OnceLock<Vec<RecordBatch>>,
    /// Held while the files are parsed, so that parallel readers parse them once.
    parsing: std::sync::Mutex<()>,
}

type Invalid = (&'static str, String);

impl CsvSource {
    /// Validates `params`, resolving relative paths against `base` (a folder).
    ///
    /// # Errors
    /// [`DataError::Invalid`] naming the parameter: no files match, the asset is
    /// given in no way or in several, a zone, duration or label does not parse.
    pub fn new(params: CsvParams, base: &Path) -> Result<CsvSource> {
        Self::validate(params, base).map_err(|(key, message)| DataError::Invalid {
            source_kind: "csv",
            key,
            message,
        })
    }

    /// Reads and validates the parameters from a config section; relative paths are
    /// relative to the config file's folder.
    ///
    /// # Errors
    /// As [`CsvSource::new`], located at the offending key's file and line.
    pub fn from_config(section: &Section<'_>) -> kf_config::Result<CsvSource> {
        let params: CsvParams = section.deserialize()?;
        let base = crate::paths::config_dir(section);
        Self::validate(params, &base).map_err(|(key, message)| section.invalid(key, message))
    }

    fn validate(p: CsvParams, base: &Path) -> std::result::Result<CsvSource, Invalid> {
        let files = crate::paths::expand_files(&p.files, base).map_err(|m| ("files", m))?;
        let asset = match (&p.asset, &p.asset_column, &p.asset_from_file) {
            (Some(a), None, None) => AssetFrom::Fixed(a.clone()),
            (None, Some(c), None) => AssetFrom::Column(c.clone()),
            (None, None, Some(pat)) => {
                let (prefix, suffix) = pat.split_once("{asset}").ok_or((
                    "asset_from_file",
                    format!("pattern {pat:?} has no {{asset}} placeholder"),
                ))?;
                AssetFrom::FileName {
                    prefix: prefix.to_string(),
                    suffix: suffix.to_string(),
                }
            }
            (None, None, None) => {
                return Err((
                    "asset_column",
                    "say where the asset comes from: `asset`, `asset_column` or `asset_from_file`"
                        .into(),
                ));
            }
            _ => {
                return Err((
                    "asset_column",
                    "give only one of `asset`, `asset_column` and `asset_from_file`".into(),
                ));
            }
        };
        if let AssetFrom::FileName { prefix, suffix } = &asset {
            for f in &files {
                asset_of_file(f, prefix, suffix).map_err(|m| ("asset_from_file", m))?;
            }
        }
        let tz = parse_tz(&p.tz).map_err(|e| ("tz", e.to_string()))?;
        let shift = parse_duration(&p.shift).map_err(|e| ("shift", e.to_string()))?;
        let freq = p
            .freq
            .as_deref()
            .map(parse_duration)
            .transpose()
            .map_err(|e| ("freq", e.to_string()))?;
        let to_end = match (p.label.as_str(), freq) {
            ("end", _) => shift,
            ("start", Some(f)) if f > 0 => shift + f,
            ("start", _) => {
                return Err((
                    "freq",
                    "bars labelled by their start need `freq` (> 0) to find their end".into(),
                ));
            }
            (other, _) => {
                return Err((
                    "label",
                    format!("must be \"start\" or \"end\", not {other:?}"),
                ));
            }
        };
        let delay = parse_duration(&p.delay).map_err(|e| ("delay", e.to_string()))?;
        let order = match p.order.as_str() {
            // Revisions repeat a bar time with a later knowledge time.
            "strict" if p.knowledge_column.is_some() => Order::NonDecreasing,
            "strict" => Order::Strict,
            "non_decreasing" => Order::NonDecreasing,
            "any" => Order::Any,
            o => {
                return Err((
                    "order",
                    format!("must be \"strict\", \"non_decreasing\" or \"any\", not {o:?}"),
                ));
            }
        };
        let delimiter = match p.delimiter.as_bytes() {
            [b] => *b,
            _ => return Err(("delimiter", "must be a single byte, such as \",\"".into())),
        };
        Ok(CsvSource {
            format: TimeFormat::parse(&p.timestamp_format),
            files,
            asset,
            tz,
            to_end,
            delay,
            order,
            delimiter,
            params: p,
            long: std::sync::OnceLock::new(),
            parsing: std::sync::Mutex::new(()),
        })
    }

    /// The validated parameters.
    pub fn params(&self) -> &CsvParams {
        &self.params
    }

    /// The files this source reads, in order.
    pub fn files(&self) -> &[PathBuf] {
        &self.files
    }

    /// Reads every file into long-layout batches: files read in parallel, and a
    /// large file cut into chunks of lines parsed in parallel (one batch per
    /// chunk). Rows keep their file order; revisions are all kept.
    ///
    /// # Errors
    /// [`DataError::Line`] naming the file and line of a malformed row, a value that
    /// is not a number or a time, or a time out of order; [`DataError::Store`] for a
    /// file that cannot be opened or decompressed, or lacks a configured column.
    pub fn read_long(&self) -> Result<Vec<RecordBatch>> {
        use rayon::prelude::*;
        let per_file: Vec<Vec<RecordBatch>> = self
            .files
            .par_iter()
            .map(|f| read::read_file(self, f))
            .collect::<Result<_>>()?;
        read::same_columns(&self.files, per_file)
    }

    /// Whether rows may hold revisions (a knowledge column is configured).
    pub fn has_revisions(&self) -> bool {
        self.params.knowledge_column.is_some()
    }

    /// Every file's rows, parsed on the first call and kept.
    fn long_cached(&self) -> Result<&[RecordBatch]> {
        if let Some(b) = self.long.get() {
            return Ok(b);
        }
        // A poisoned lock only means another parse panicked; parsing again is fine.
        let _parsing = self.parsing.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(b) = self.long.get() {
            return Ok(b);
        }
        let batches = self.read_long()?;
        Ok(self.long.get_or_init(|| batches))
    }

    /// All rows as a frame; with revisions, the latest version known at `as_of`.
    fn frame_as_of(&self, as_of: Option<i64>) -> Result<Frame> {
        if !self.has_revisions() {
            return Ok(Frame::from_long_batches(&self.read_long()?)?);
        }
        match revisions::latest_known(self.long_cached()?, as_of)? {
            Some(b) => Ok(Frame::from_long(&b)?),
            None => Ok(Frame::empty(Vec::new(), Vec::new())?),
        }
    }
}

fn asset_of_file(f: &Path, prefix: &str, suffix: &str) -> std::result::Result<String, String> {
    let name = f.file_name().and_then(|n| n.to_str()).unwrap_or_default();
    name.strip_prefix(prefix)
        .and_then(|n| n.strip_suffix(suffix))
        .filter(|a| !a.is_empty())
        .map(str::to_string)
        .ok_or_else(|| {
            format!("file name {name:?} does not match the pattern \"{prefix}{{asset}}{suffix}\"")
        })
}

impl Source for CsvSource {
    fn fingerprint(&self) -> Result<Option<String>> {
        let settings = format!(
            "csv;{:?};{:?};{:?};{};{};{};{:?};{}",
            self.params,
            self.asset,
            self.format,
            self.tz,
            self.to_end,
            self.delay,
            self.order,
            self.delimiter
        );
        let files = crate::fingerprint::files_fingerprint(&self.files)?;
        Ok(Some(format!("{}:{settings};{files}", settings.len())))
    }

    fn lineage(&self) -> Option<String> {
        // The files' pattern, not the files it matches: a new day's file extends
        // the same data.
        Some(format!(
            "csv;{:?};{:?};{:?};{};{};{};{:?};{}",
            self.params,
            self.asset,
            self.format,
            self.tz,
            self.to_end,
            self.delay,
            self.order,
            self.delimiter
        ))
    }

    fn describe(&self) -> String {
        format!(
            "csv: {} file(s) matching {}",
            self.files.len(),
            self.params.files
        )
    }

    fn features(&self) -> Option<Vec<String>> {
        self.params.columns.clone()
    }

    fn load(&self, query: &Query) -> Result<Frame> {
        if let Some(tau) = query.as_of
            && self.has_revisions()
        {
            // Revisions need the long rows: the latest version known at tau.
            return Query {
                as_of: None,
                ..query.clone()
            }
            .apply(&self.frame_as_of(Some(tau))?);
        }
        query.apply(&self.frame_as_of(None)?)
    }

    fn has_revisions(&self) -> bool {
        CsvSource::has_revisions(self)
    }
}
