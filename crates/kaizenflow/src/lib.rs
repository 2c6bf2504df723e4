//! KaizenFlow for Rust: describe a time-series ML system once in TOML, run it in
//! batch, tiled, replayed and real-time modes with identical results.
//!
//! This facade re-exports the workspace's crates under one name and holds the
//! `kaizenflow` command-line program ([`cli`]). Depend on it for everything, or on a
//! single crate for just that part:
//!
//! | module | crate | owns |
//! |---|---|---|
//! | [`frame`] | `kf-frame` | time types, `Frame` |
//! | [`config`] | `kf-config` | `Config`, overrides, sweeps, registry |
//! | [`parallel`] | `kf-parallel` | the atom/molecule job engine |
//! | [`datapull`] | `kf-datapull` | market data sources and views |
//! | [`dataflow`] | `kf-dataflow` | nodes, DAGs, runners |
//! | [`system`] | `kf-system` | the portfolio loop through time |
//!
//! A user's crate extends the framework with its own node types, sources and
//! processors by registering them on a [`Registries`] value and running configs
//! through [`system::build_with`], [`system::System::from_config_with`] or its own
//! program, [`cli::main_with`] (see `docs/extending.md`).
//!
//! Optional features, forwarded to the crates that use them: `hdf5` (HDF5 stores;
//! needs Debian's `libhdf5-dev`), `sql` (DataFusion), `mpi` (MPI backend; needs
//! `libopenmpi-dev`, `openmpi-bin`, `libclang-dev`), `postgres` (live PostgreSQL
//! feeds), `nn` (the `lstm` and `gru` recurrent forecasters, trained on candle).

#![deny(missing_docs)]

pub mod cli;

pub use kf_config as config;
pub use kf_dataflow as dataflow;
pub use kf_datapull as datapull;
pub use kf_frame as frame;
pub use kf_parallel as parallel;
pub use kf_system as system;

pub use kf_system::Registries;
