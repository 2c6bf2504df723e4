//! DataPull: market data sources with knowledge time, and the views that DataFlow
//! nodes and the System consume.
//!
//! # Sources
//! A [`Source`] turns raw data into [`kf_frame::Frame`]s whose rows carry their
//! knowledge time, answering a [`Query`] (closed time range on bar ends, assets,
//! columns, knowledge cut-off `as_of`):
//! - [`CsvSource`]: plain or gzip text, one file per asset or an asset column, any
//!   timestamp format and zone, bars labelled by start or end;
//! - [`ParquetStore`]: the project's store, pushing time, asset and column
//!   selection down to row groups and columns, and keeping revisions;
//! - `Hdf5Store` (feature `hdf5`): time x asset datasets chunked both ways, or
//!   stored contiguously and memory-mapped straight into the frame;
//! - [`SyntheticBars`]: the seeded generator, the built-in default data.
//!
//! # Views
//! [`MarketData`] is what the rest of the system reads: [`Historical`] (a source,
//! no clock), [`Replayed`] (a source released by a [`Clock`] at knowledge time plus
//! a delay, with an async wait for the current bar) and [`Stitched`] (one view up
//! to a split time, another after).
//!
//! # Config
//! Every source and view is built by name from a config subtree through
//! one [`DataTypes`] value (the built-ins, plus whatever a user's crate registers),
//! so a system's TOML picks its data without code:
//!
//! ```toml
//! [market_data]
//! type = "replayed"
//! delay = "2s"
//! clock = { type = "simulated", start = "2024-01-02 09:30", tz = "America/New_York" }
//! source = { type = "parquet", path = "data/bars.parquet" }
//! ```
//!
//! # The key design decision: revisions live in the long layout
//! A frame holds one value per (bar, asset); a store may hold several versions of a
//! bar, each with its own knowledge time. Resolving "the latest version known at
//! `τ`" happens on long rows, before the wide frame is built ([`latest_known`]), so
//! every reader gives the same answer and nothing known after `τ` can leak in.

#![deny(missing_docs)]

mod build;
pub mod clock;
mod csv_source;
mod error;
pub mod fingerprint;
#[cfg(feature = "hdf5")]
pub mod hdf5_store;
pub mod live;
mod market_data;
pub mod parquet_store;
pub mod paths;
#[cfg(feature = "postgres")]
pub mod pg;
mod query;
mod revisions;
mod shared_query;
#[cfg(feature = "sql")]
pub mod sql;
mod synthetic;
pub mod ticks;

use kf_frame::Frame;

pub use build::{ClockKind, DataTypes, SourceBuildFn, ViewBuildFn};
pub use clock::{Clock, ReplayClock, SimulatedClock, WallClock};
pub use csv_source::{CsvParams, CsvSource};
pub use error::{DataError, Result};
pub use live::{Arrived, Feed, GrowingSource};
pub use market_data::{FrameFuture, Historical, MarketData, ReplaySettings, Replayed, Stitched};
pub use parquet_store::{ParquetStore, ReadStats, StoreCompression, StoreInfo, StoreOptions};
pub use query::Query;
pub use revisions::latest_known;
pub use shared_query::SharedQuery;
pub use synthetic::{SyntheticBars, SyntheticParams};
pub use ticks::{TickParams, TickSource};

/// Anything that yields market data as frames with per-row knowledge time.
pub trait Source: Send + Sync + std::fmt::Debug {
    /// A short description for logs and messages (`synthetic: 20 assets x 390 bars`).
    fn describe(&self) -> String;

    /// Reads what `query` asks for (see [`Query`] for the exact contract).
    ///
    /// # Errors
    /// [`DataError`] saying what failed and where.
    fn load(&self, query: &Query) -> Result<Frame>;

    /// Whether queries are pushed down to the storage (so a view need not cache the
    /// whole source in memory).
    fn pushes_down(&self) -> bool {
        false
    }

    /// Whether the data may hold several versions of a bar (then `as_of` reads must
    /// go to the source, not to a cached frame).
    fn has_revisions(&self) -> bool {
        false
    }

    /// The feature columns a full read gives, when the source knows them without
    /// reading any data (from its config or a store's metadata). A DAG's columns are
    /// checked against them when it is built; `None` (the default) leaves the
    /// columns of nodes reading this source unchecked until run time.
    fn features(&self) -> Option<Vec<String>> {
        None
    }

    /// A fingerprint of everything a full read depends on: the content of its files
    /// (see [`fingerprint::path_digest`]) or a store's version, and the settings
    /// that shape what is read (delays, time zones, labels, generator parameters).
    /// Two sources with the same fingerprint read the same frames. A node cache keys
    /// source outputs on it; `None` (the default) means the source cannot say, and
    /// its outputs are never cached.
    ///
    /// # Errors
    /// A file that cannot be read, named.
    fn fingerprint(&self) -> Result<Option<String>> {
        Ok(None)
    }

    /// What this source *is*, apart from its content: its files' names or its
    /// store's path, and the reader's settings. Two reads with the same lineage read
    /// the same data, possibly grown since (new bars appended), so a run over it
    /// may continue from a checkpoint once [`Source::prefix_fingerprint`] shows the
    /// old rows unchanged. `None` (the default) means the source cannot say, and
    /// runs over it always start from scratch.
    fn lineage(&self) -> Option<String> {
        None
    }

    /// A fingerprint of every row whose bar ends at or before `until`: equal for two
    /// versions of the data exactly when (up to a hash collision) those rows are the
    /// same, whatever was appended after them. A run over appended data compares it
    /// with the one recorded when it last stopped at `until`.
    ///
    /// The default reads those rows and hashes them ([`fingerprint::frame_digest`]),
    /// a pass over the old data; a store answers from its footer instead (see
    /// [`ParquetStore`]). `None` when the source has no [`Source::lineage`].
    ///
    /// # Errors
    /// The source's read errors.
    fn prefix_fingerprint(&self, until: i64) -> Result<Option<String>> {
        if self.lineage().is_none() {
            return Ok(None);
        }
        read_prefix_fingerprint(self, until).map(Some)
    }
}

/// [`Source::prefix_fingerprint`] by reading: the digest of every row up to `until`
/// (all assets and features).
///
/// # Errors
/// The source's read errors.
pub fn read_prefix_fingerprint<S: Source + ?Sized>(source: &S, until: i64) -> Result<String> {
    let q = Query {
        end: Some(until),
        ..Query::all()
    };
    let frame = source.load(&q)?;
    Ok(format!("rows;{}", fingerprint::frame_digest(&frame)))
}

/// `frame` with exactly `assets` and `features`, in that order: missing assets are
/// all-NaN columns. Readers use it so a query's shape does not depend on which
/// assets happen to have rows in the range.
///
/// # Errors
/// [`DataError::Query`] for a feature the frame lacks.
pub fn conform(frame: Frame, assets: &[String], features: &[String]) -> Result<Frame> {
    if frame.assets() == assets && frame.features() == features {
        return Ok(frame);
    }
    query::check_known("column", features, frame.features())?;
    let frame = frame.select_features(features)?;
    if frame.assets() == assets {
        return Ok(frame);
    }
    let n_old = frame.n_assets();
    let map: Vec<Option<usize>> = assets
        .iter()
        .map(|a| frame.assets().iter().position(|b| b == a))
        .collect();
    let columns = features
        .iter()
        .enumerate()
        .map(|(i, name)| {
            let v = frame.feature_at(i).values();
            let mut out = Vec::with_capacity(frame.n_rows() * assets.len());
            for r in 0..frame.n_rows() {
                let row = &v[r * n_old..(r + 1) * n_old];
                out.extend(map.iter().map(|m| m.map_or(f64::NAN, |j| row[j])));
            }
            (name.clone(), out)
        })
        .collect();
    Ok(Frame::new(
        frame.end_ts().to_vec(),
        frame.knowledge_ts().to_vec(),
        assets.to_vec(),
        columns,
    )?)
}
