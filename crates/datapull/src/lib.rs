//! DataPull: market data sources with knowledge time, and the views that DataFlow
//! nodes and the System consume.
//!
//! Sources turn raw data (files, generators) into [`kf_frame::Frame`]s whose rows
//! carry their knowledge time. Each source kind is built from a config subtree by
//! name through [`registry`], so a system's TOML picks its data without code:
//!
//! ```toml
//! [market_data]
//! type = "synthetic"
//! assets = 20
//! bars = 390
//! ```
//!
//! This crate now holds the synthetic generator, the built-in default data of the
//! project (a fresh clone runs every example with no download). The Parquet, HDF5
//! and CSV adapters and the historical, replayed and stitched views come next.

#![deny(missing_docs)]

mod error;
#[cfg(feature = "hdf5")]
pub mod hdf5_store;
#[cfg(feature = "sql")]
pub mod sql;
mod synthetic;

use kf_config::{Registry, Section};
use kf_frame::Frame;

pub use error::{DataError, Result};
pub use synthetic::{SyntheticBars, SyntheticParams};

/// Anything that yields market data as a frame with per-row knowledge time.
pub trait Source: Send + Sync + std::fmt::Debug {
    /// A short description for logs and messages (`synthetic: 20 assets x 390 bars`).
    fn describe(&self) -> String;

    /// Loads all the source's data.
    ///
    /// # Errors
    /// [`DataError`] saying what failed and where.
    fn load(&self) -> Result<Frame>;
}

/// The registry of market data source kinds known to this crate, by `type` name.
pub fn registry() -> Registry<Box<dyn Source>> {
    let mut r: Registry<Box<dyn Source>> = Registry::new("market data source");
    // Registering fixed, distinct names into a fresh registry cannot collide.
    let _ = r.register("synthetic", |s: &Section<'_>| {
        Ok(Box::new(SyntheticBars::from_config(s)?) as Box<dyn Source>)
    });
    r
}
