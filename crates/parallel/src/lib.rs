//! The atom/molecule job engine: how KaizenFlow for Rust runs many independent
//! pieces of work (config sweeps, time tiles, asset tiles, shards of a matrix) on
//! every core, with results that do not depend on the schedule.
//!
//! An *atom* is an indivisible task; a *molecule* is a contiguous group of atoms
//! scheduled as one unit ([`Molecule`], [`Partition`]). The primary type is
//! [`Engine`]: give it the atoms and a function of one molecule's atoms, and it runs
//! the molecules on a fixed pool of worker threads, then either stitches the outputs
//! in atom order ([`Engine::run`]) or folds them into an accumulator as they finish
//! ([`Engine::run_reduce`]), so memory does not grow with the number of molecules.
//!
//! # The key design decision: deliver in schedule order, through a bounded window
//! Results are handed to the reducer in a fixed order (the schedule's), not in the
//! order they finish, so a parallel reduction is bit-identical to the sequential
//! debug run, and floating-point sums are reproducible. To keep that from costing
//! memory, workers never run more than `2 x threads` molecules ahead of the next one
//! to deliver: at most that many results wait in memory. `unordered()` trades the
//! guarantee for throughput when molecules vary a lot in cost.
//!
//! The anti-patterns of the seed are impossible by construction: no thread or
//! process per atom (a fixed pool claims molecules), no keeping every result before
//! reducing (the window bounds what waits), and no interpreter lock to dodge.
//!
//! ```
//! use kf_parallel::{Engine, Partition};
//!
//! let atoms: Vec<u64> = (1..=1000).collect();
//! let engine = Engine::new().threads(2).batches(4).partition(Partition::Linear);
//! // Sum of squares, molecule by molecule, reduced on the fly.
//! let total = engine.run_reduce(
//!     &atoms,
//!     0u64,
//!     |chunk: &[u64]| Ok::<_, std::convert::Infallible>(chunk.iter().map(|x| x * x).sum::<u64>()),
//!     |acc, part| *acc += part,
//! )?;
//! assert_eq!(total, 1000 * 1001 * 2001 / 6);
//! # Ok::<(), kf_parallel::RunError>(())
//! ```

#![deny(missing_docs)]

#[cfg(feature = "mpi")]
pub mod cluster;
pub mod collective;
mod engine;
mod error;
mod partition;
mod progress;
pub mod sharded;

pub use engine::{Engine, MAX_THREADS, Report};
pub use error::{BoxError, FailureKind, MoleculeFailure, RunError};
pub use partition::{Molecule, Partition};
pub use progress::{Progress, ProgressEvent, ProgressFn};
