//! Errors of the job engine.

use std::fmt;
use std::ops::Range;

/// A boxed error from user work.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Why one molecule produced no result.
#[derive(Debug)]
pub enum FailureKind {
    /// The work returned an error.
    Failed(BoxError),
    /// The work panicked; the panic message.
    Panicked(String),
}

/// A molecule that failed, with the atoms it held.
#[derive(Debug)]
pub struct MoleculeFailure {
    /// The molecule's position in atom order.
    pub index: usize,
    /// Its atoms.
    pub atoms: Range<usize>,
    /// What happened.
    pub kind: FailureKind,
}

impl fmt::Display for MoleculeFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (s, e) = (self.atoms.start, self.atoms.end);
        match &self.kind {
            FailureKind::Failed(err) => {
                write!(f, "molecule {} (atoms {s}..{e}) failed: {err}", self.index)
            }
            FailureKind::Panicked(msg) => {
                write!(
                    f,
                    "molecule {} (atoms {s}..{e}) panicked: {msg}",
                    self.index
                )
            }
        }
    }
}

impl std::error::Error for MoleculeFailure {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match &self.kind {
            FailureKind::Failed(err) => Some(err.as_ref()),
            FailureKind::Panicked(_) => None,
        }
    }
}

/// Why a run did not complete.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RunError {
    /// A molecule failed or panicked, and the run stopped (no new molecules were
    /// started after it; those already running finished and were discarded).
    #[error(transparent)]
    Molecule(Box<MoleculeFailure>),
    /// The thread pool could not be built.
    #[error("cannot start {threads} worker threads: {message}")]
    Pool {
        /// Threads requested.
        threads: usize,
        /// The cause.
        message: String,
    },
    /// A cluster (MPI) backend failed.
    #[error("cluster backend: {0}")]
    Cluster(String),
}
