//! The error type of the `datapull` crate.

/// Everything that can go wrong reading or generating market data.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DataError {
    /// A source's configuration is wrong.
    #[error(transparent)]
    Config(#[from] kf_config::ConfigError),
    /// A source's parameter is invalid (when built from code, not from a config).
    #[error("{source_kind} source: {key}: {message}")]
    Invalid {
        /// The kind of source.
        source_kind: &'static str,
        /// The parameter.
        key: &'static str,
        /// What is wrong.
        message: String,
    },
    /// A store file is missing, corrupt or not in the expected layout.
    #[error("{path}: {message}")]
    Store {
        /// The file.
        path: std::path::PathBuf,
        /// What is wrong, naming the dataset or column.
        message: String,
    },
    /// A SQL query failed (feature `sql`).
    #[error("SQL query failed: {source}\n  query: {query}")]
    Sql {
        /// The query text.
        query: String,
        /// DataFusion's error.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// Building or converting a frame failed.
    #[error(transparent)]
    Frame(#[from] kf_frame::FrameError),
}

/// Result alias of the `datapull` crate.
pub type Result<T, E = DataError> = std::result::Result<T, E>;
