//! The error type of the `config` crate.

use std::fmt;
use std::path::PathBuf;

use crate::Origin;

/// A key that nothing read, with where it was written.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UnusedKey {
    /// Where the key was written.
    pub origin: Origin,
    /// Its dotted path.
    pub path: String,
}

impl fmt::Display for UnusedKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}: {}: unknown key (nothing read it)",
            self.origin, self.path
        )
    }
}

/// Everything that can go wrong reading, overriding, accessing or expanding a config.
///
/// Messages start with where (`file:line` or `--set ...`), then the key path, then
/// what is wrong: `configs/x.toml:12: dag.nodes.zscore.window: expected an integer,
/// found the string "20"`.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The file could not be read.
    #[error("{path}: cannot read config: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The text is not valid TOML.
    #[error("{file}:{line}:{column}: invalid TOML: {message}")]
    Parse {
        /// The file (or other origin name).
        file: String,
        /// 1-based line.
        line: usize,
        /// 1-based column.
        column: usize,
        /// The parser's message.
        message: String,
    },
    /// A required key is absent.
    #[error("{origin}: {path}: missing; {hint}")]
    Missing {
        /// Where the enclosing table was written.
        origin: Origin,
        /// The dotted path of the missing key.
        path: String,
        /// What to do.
        hint: String,
    },
    /// A value has the wrong type.
    #[error("{origin}: {path}: expected {expected}, found {found}")]
    Type {
        /// Where the value was written.
        origin: Origin,
        /// Its dotted path.
        path: String,
        /// What was expected (`an integer`).
        expected: String,
        /// What was found (`the string "20"`).
        found: String,
    },
    /// A value has the right type but is not allowed (out of range, inconsistent).
    #[error("{origin}: {path}: {message}")]
    Invalid {
        /// Where the value was written.
        origin: Origin,
        /// Its dotted path.
        path: String,
        /// What is wrong and what is allowed.
        message: String,
    },
    /// Keys that nothing read: typos, or settings of a component that is not built.
    #[error("{}", unused_message(.0))]
    Unused(Vec<UnusedKey>),
    /// A `type = "..."` names no registered builder (boxed: it is the largest variant).
    #[error("{0}")]
    UnknownType(Box<UnknownType>),
    /// A builder name was registered twice.
    #[error("{kind} type \"{name}\" is registered twice")]
    DuplicateBuilder {
        /// What the registry builds.
        kind: String,
        /// The repeated name.
        name: String,
    },
    /// An override `--set path=value` is malformed or cannot apply.
    #[error("--set {assignment}: {reason}")]
    Override {
        /// The assignment as given.
        assignment: String,
        /// Why it cannot apply.
        reason: String,
    },
    /// A builder failed for a reason of its own; the source says why.
    #[error("{origin}: {path}: {message}")]
    Build {
        /// Where the section was written.
        origin: Origin,
        /// Dotted path of the section being built.
        path: String,
        /// What was being built.
        message: String,
        /// The builder's error.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
}

/// The details of [`ConfigError::UnknownType`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownType {
    /// Where the name was written.
    pub origin: Origin,
    /// Dotted path of the `type` key.
    pub path: String,
    /// What the registry builds (`market data source`).
    pub kind: String,
    /// The unknown name.
    pub name: String,
    /// The registered names, comma-separated.
    pub known: String,
    /// The known name closest to `name`, when one is close enough to be a typo.
    pub suggestion: Option<String>,
}

impl fmt::Display for UnknownType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}: {}: unknown {} type \"{}\"; known types: {}",
            self.origin, self.path, self.kind, self.name, self.known
        )?;
        if let Some(s) = &self.suggestion {
            write!(f, " (did you mean \"{s}\"?)")?;
        }
        Ok(())
    }
}

fn unused_message(keys: &[UnusedKey]) -> String {
    let mut s = format!(
        "{} key{} that nothing read (a typo, or a setting of something not built):",
        keys.len(),
        if keys.len() == 1 { "" } else { "s" }
    );
    for k in keys {
        s.push_str("\n  ");
        s.push_str(&k.to_string());
    }
    s
}

/// Result alias of the `config` crate.
pub type Result<T, E = ConfigError> = std::result::Result<T, E>;
