//! The system's error type.

use thiserror::Error;

/// What can go wrong building or running a system.
#[derive(Debug, Error)]
pub enum SystemError {
    /// A configuration error (located at its file, line and key path).
    #[error(transparent)]
    Config(#[from] kf_config::ConfigError),
    /// A market data error.
    #[error(transparent)]
    Data(#[from] kf_datapull::DataError),
    /// A forecast DAG error.
    #[error(transparent)]
    Dataflow(#[from] kf_dataflow::DataflowError),
    /// A column the system needs is not in a frame.
    #[error("{what} has no column `{column}` (it has: {available}); {hint}")]
    MissingColumn {
        /// The frame (`the market data`, `node `predict``).
        what: String,
        /// The column.
        column: String,
        /// The columns it has.
        available: String,
        /// What to do.
        hint: String,
    },
    /// The system cannot run as configured.
    #[error("{0}")]
    Invalid(String),
    /// Writing an output failed.
    #[error("{path}: {message}")]
    Output {
        /// The file.
        path: String,
        /// What failed.
        message: String,
    },
}

/// The system's result type.
pub type Result<T> = std::result::Result<T, SystemError>;
