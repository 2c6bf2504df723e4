//! Time types and the [`Frame`]: the unit of computation of KaizenFlow for Rust.
//!
//! A [`Frame`] is a time-indexed table: a strictly increasing index of bar end times
//! (`i64` nanoseconds since the epoch, UTC), a knowledge time per row (when the row
//! became available, the basis of future-peeking checks), and f64 columns keyed by
//! (feature, asset), NaN for missing. Every crate above this one exchanges frames.
//!
//! # The key design decision: one row-major buffer per feature
//! Each feature is stored as one contiguous Arrow buffer of `rows x assets` values,
//! row-major. The common operation of a time-series node is "apply one kernel to
//! every asset of a feature, row after row, carrying state" (an EMA, a rolling sum,
//! a resampler's open bin). With assets contiguous in a row, that inner loop runs
//! over contiguous memory and vectorizes across assets, instead of walking one long
//! serial dependency chain per asset. A time tile is a zero-copy sub-buffer
//! ([`Frame::slice`], [`Frame::slice_time`]), and a streaming bar is one row append.
//! The price is that one asset's history is a strided walk ([`FeatureView::asset`]).
//!
//! # Files
//! On disk a frame is in the *long* layout, one row per (timestamp, asset) with the
//! features as columns ([`long`]), so pandas or polars read it with no help. The
//! conversion long -> frame is a two-pass scatter with no per-cell hashing.
//!
//! ```
//! use kf_frame::{Frame, Timestamp, LongRows};
//!
//! let t0 = Timestamp::parse("2000-01-01 14:31").unwrap().nanos();
//! let minute = kf_frame::time::NANOS_PER_MINUTE;
//! let frame = Frame::new(
//!     vec![t0, t0 + minute],
//!     vec![t0, t0 + minute],
//!     vec!["AAPL".into(), "MSFT".into()],
//!     vec![("close".into(), vec![101.0, 250.0, 101.5, f64::NAN])],
//! )?;
//! assert_eq!(frame.value("close", "MSFT", 0)?, 250.0);
//! assert_eq!(frame.feature("close")?.row(1)[0], 101.5);
//! // Long layout leaves out the missing (t0 + 1 min, MSFT) bar, and comes back exactly.
//! let long = frame.to_long(LongRows::Present)?;
//! assert_eq!(long.num_rows(), 3);
//! assert!(Frame::from_long(&long)?.bit_eq(&frame));
//! # Ok::<(), kf_frame::FrameError>(())
//! ```

#![deny(missing_docs)]

mod assets;
pub mod atomic;
pub mod budget;
mod diff;
mod error;
mod frame;
pub mod guard;
mod io;
pub mod long;
mod rows;
pub mod time;
mod wide;

pub use atomic::{AtomicFile, temp_prefix, write_atomic, write_replace};
pub use diff::Difference;
pub use error::{FrameError, Result};
pub use frame::{FeatureView, Frame};
pub use io::{ROW_GROUP_ROWS, write_table_parquet, write_table_parquet_with};
pub use long::{ASSET, END_TS, KNOWLEDGE_TS, LongRows, long_schema};
pub use rows::{RowBuf, View};
pub use time::{Duration, Timestamp, parse_duration, parse_tz};
