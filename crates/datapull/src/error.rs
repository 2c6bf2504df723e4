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
    #[error("{}: {message}", path.display())]
    Store {
        /// The file.
        path: std::path::PathBuf,
        /// What is wrong, naming the dataset or column.
        message: String,
    },
    /// The Arrow or Parquet library (or the file system) failed on a store: what was
    /// being done, with the underlying error kept as the source.
    #[error("{}: {what}", path.display())]
    StoreLibrary {
        /// The file.
        path: std::path::PathBuf,
        /// What was being done, or what the file turned out not to be.
        what: String,
        /// The library's error.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// A line of a text file could not be read: its place and what is wrong with it.
    #[error("{}:{line}: {message}", path.display())]
    Line {
        /// The file.
        path: std::path::PathBuf,
        /// 1-based line number.
        line: u64,
        /// What is wrong, naming the column and the value.
        message: String,
    },
    /// A query asked for something the data does not have.
    #[error("{what}")]
    Query {
        /// What was asked and what is there.
        what: String,
    },
    /// Waiting for a bar ran out of time.
    #[error(
        "no bar ending at {bar_end} became available within {waited_s} s (clock at {now}); \
         the latest available bar ends at {latest}; check that the source is still delivering, \
         or raise the timeout"
    )]
    Timeout {
        /// The bar waited for.
        bar_end: kf_frame::Timestamp,
        /// The time waited, in seconds.
        waited_s: f64,
        /// The clock when giving up.
        now: kf_frame::Timestamp,
        /// The end of the latest bar that was available, or "none".
        latest: String,
    },
    /// A view or source cannot do what was asked of it (replay on another clock,
    /// give its data without its clock).
    #[error("{what}")]
    Unsupported {
        /// What was asked, of what, and what would make it possible.
        what: String,
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
    /// A database (feature `postgres`) refused or failed: what was being done, where
    /// (the connection string without its password, the table), and what to do.
    #[error("{what}: {source}")]
    Database {
        /// What was being done and where.
        what: String,
        /// The client's error.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// Building or converting a frame failed.
    #[error(transparent)]
    Frame(#[from] kf_frame::FrameError),
}

/// Result alias of the `datapull` crate.
pub type Result<T, E = DataError> = std::result::Result<T, E>;
