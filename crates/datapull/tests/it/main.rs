//! The datapull integration tests, one module a subject, in one test binary: each
//! binary links the whole of arrow, parquet (and with `sql`, DataFusion), so one
//! binary instead of eight keeps the build's link time and disk use down.

mod csv_files;
mod hdf5_bytes_read;
mod hdf5_direct;
mod hdf5_store;
mod parquet_store;
mod pg;
mod shared_data;
mod sql_queries;
mod synthetic;
mod ticks;
mod views;
