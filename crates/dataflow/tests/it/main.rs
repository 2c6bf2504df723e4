//! The dataflow integration tests, in one test binary (one link of arrow and
//! parquet instead of one per file).

mod broken;
mod cache;
mod carry;
mod common;
mod dag;
mod gbt;
mod growing;
mod indicators;
mod metrics;
mod microstructure;
mod mock1;
mod models;
mod nodes;
mod peeking;
#[cfg(feature = "nn")]
mod recurrent;
mod resample;
mod runners;
mod tiling;
mod types;
mod versions;
