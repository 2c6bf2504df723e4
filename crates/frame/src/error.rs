//! The error type of the `frame` crate.

use std::path::PathBuf;

/// Everything that can go wrong when building, slicing, converting or reading a
/// [`Frame`](crate::Frame).
///
/// Each variant says what is wrong and where (row, timestamp, column, file), so that
/// a message printed to a user is enough to find the bad input.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FrameError {
    /// The time index is not strictly increasing.
    #[error(
        "time index is not strictly increasing at row {row}: {current} follows {previous}; \
         sort the input by time and remove duplicate timestamps"
    )]
    UnsortedIndex {
        /// Row (0-based) of the offending timestamp.
        row: usize,
        /// The timestamp before it.
        previous: crate::Timestamp,
        /// The offending timestamp.
        current: crate::Timestamp,
    },
    /// Two pieces that must have the same length do not.
    #[error("length mismatch: {what} has {actual} values, expected {expected}")]
    LengthMismatch {
        /// Which piece has the wrong length.
        what: String,
        /// Its length.
        actual: usize,
        /// The length it must have.
        expected: usize,
    },
    /// A name (feature or asset) appears twice.
    #[error("duplicate {kind} name `{name}`")]
    DuplicateName {
        /// `"feature"` or `"asset"`.
        kind: &'static str,
        /// The repeated name.
        name: String,
    },
    /// A requested feature, asset or column does not exist.
    #[error("unknown {kind} `{name}`; available: {available}")]
    Unknown {
        /// `"feature"`, `"asset"` or `"column"`.
        kind: &'static str,
        /// The requested name.
        name: String,
        /// The names that do exist (possibly abbreviated).
        available: String,
    },
    /// A long-format table has the same (timestamp, asset) pair twice.
    #[error(
        "duplicate row for asset `{asset}` at {end_ts} (input row {row}); \
         each (end_ts, asset) pair must appear once"
    )]
    DuplicateRow {
        /// The repeated asset.
        asset: String,
        /// The repeated timestamp.
        end_ts: crate::Timestamp,
        /// Row (0-based, across all input batches) of the second occurrence.
        row: usize,
    },
    /// A required value is null.
    #[error("column `{column}` is null at input row {row}; it must always be set")]
    NullValue {
        /// The column.
        column: String,
        /// Row (0-based, across all input batches).
        row: usize,
    },
    /// A column has a type the operation cannot use.
    #[error("column `{column}` has type {found}; expected {expected}")]
    ColumnType {
        /// The column.
        column: String,
        /// The Arrow type it has.
        found: String,
        /// What it must be.
        expected: &'static str,
    },
    /// Consecutive tiles given to [`Frame::concat`](crate::Frame::concat) overlap or are out of order.
    #[error(
        "tile {tile} starts at {first} which is not after {previous_last}, the last timestamp \
         of the tiles before it; tiles must be consecutive and non-overlapping"
    )]
    TileOrder {
        /// Index of the offending tile in the input list.
        tile: usize,
        /// Its first timestamp.
        first: crate::Timestamp,
        /// The last timestamp before it.
        previous_last: crate::Timestamp,
    },
    /// Tiles given to [`Frame::concat`](crate::Frame::concat) have different columns.
    #[error(
        "part {tile} of the data (a file, batch or tile, in the order given) has {what} \
         {found:?}, but part 0 has {expected:?}; every part needs the same {what}"
    )]
    TileSchema {
        /// Index of the offending tile.
        tile: usize,
        /// `"features"` or `"assets"`.
        what: &'static str,
        /// What the offending tile has.
        found: Vec<String>,
        /// What the first tile has.
        expected: Vec<String>,
    },
    /// Asset tiles given to [`Frame::concat_assets`](crate::Frame::concat_assets) do
    /// not share one time index.
    #[error(
        "asset tile {tile} has {found} rows (first differing end time {at}), but tile 0 has \
         {expected}; asset tiles must cover the same timestamps"
    )]
    AssetTileIndex {
        /// Index of the offending tile.
        tile: usize,
        /// Its row count.
        found: usize,
        /// Tile 0's row count.
        expected: usize,
        /// The first end time at which the indexes differ.
        at: crate::Timestamp,
    },
    /// A row range is outside the frame.
    #[error("rows {start}..{end} are out of range for a frame of {rows} rows")]
    OutOfRange {
        /// First requested row.
        start: usize,
        /// One past the last requested row.
        end: usize,
        /// Rows in the frame.
        rows: usize,
    },
    /// A time string could not be parsed.
    #[error("cannot parse time `{}`: {reason}", shown(input))]
    TimeParse {
        /// The text given.
        input: String,
        /// Why it failed and what is accepted.
        reason: String,
    },
    /// A timestamp is outside what i64 nanoseconds can hold (1677-09-21 to 2262-04-11).
    #[error("timestamp {value} {unit} in column `{column}` overflows i64 nanoseconds")]
    TimeOverflow {
        /// The column.
        column: String,
        /// The raw value.
        value: i64,
        /// Its unit.
        unit: &'static str,
    },
    /// Reading or writing a file failed.
    #[error("{path}: {source}")]
    File {
        /// The file.
        path: PathBuf,
        /// What failed.
        #[source]
        source: Box<FrameError>,
    },
    /// An I/O error.
    #[error(transparent)]
    Io(#[from] std::io::Error),
    /// An Arrow error (IPC decoding, casting).
    #[error(transparent)]
    Arrow(#[from] arrow::error::ArrowError),
    /// A Parquet error (corrupt footer, unsupported encoding).
    #[error(transparent)]
    Parquet(#[from] parquet::errors::ParquetError),
}

impl FrameError {
    /// Wraps `self` with the path of the file it concerns.
    pub(crate) fn in_file(self, path: &std::path::Path) -> FrameError {
        FrameError::File {
            path: path.to_path_buf(),
            source: Box::new(self),
        }
    }
}

/// Result alias of the `frame` crate.
pub type Result<T, E = FrameError> = std::result::Result<T, E>;

/// Joins names for an error message, abbreviating long lists.
pub(crate) fn list_names<S: AsRef<str>>(names: &[S]) -> String {
    const SHOWN: usize = 12;
    let mut out: Vec<&str> = names.iter().take(SHOWN).map(AsRef::as_ref).collect();
    let more = names.len().saturating_sub(SHOWN);
    let extra = if more > 0 {
        format!(" (and {more} more)")
    } else {
        String::new()
    };
    if out.is_empty() {
        out.push("(none)");
    }
    format!("{}{extra}", out.join(", "))
}

/// Text as an error shows it: its first 80 characters and its length when longer, so
/// a megabyte of input is not echoed back.
fn shown(text: &str) -> String {
    match text.char_indices().nth(80) {
        None => text.to_string(),
        Some((cut, _)) => format!("{}... ({} characters)", &text[..cut], text.chars().count()),
    }
}
