//! [`Section`]: typed, path-aware read access to part of a [`Config`].

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::de::EntryDeserializer;
use crate::error::{ConfigError, Result};
use crate::value::{Entry, Value};
use crate::{Config, Origin};

/// A view of one table of a [`Config`], as a builder sees its config subtree.
///
/// Every read marks what it read (for unused-key detection) and every error names the
/// file, line and full key path. Keys may be dotted (`nodes.zscore.window`).
#[derive(Clone, Debug)]
pub struct Section<'a> {
    config: &'a Config,
    entry: &'a Entry,
    path: Vec<String>,
}

impl<'a> Section<'a> {
    pub(crate) fn new(config: &'a Config, entry: &'a Entry, path: Vec<String>) -> Section<'a> {
        Section {
            config,
            entry,
            path,
        }
    }

    /// The dotted path of this section (empty for the root).
    pub fn path(&self) -> String {
        self.path.join(".")
    }

    /// This section's value as written, in the canonical, type-tagged form that
    /// [`Config::id`] hashes, but with table keys in the order written (a node may
    /// sum its inputs in that order): `1` and `"1"`, `0.0` and `-0.0`, and NaNs
    /// with different payloads all differ. A node cache keys node outputs on it.
    pub fn canonical(&self) -> String {
        let mut out = String::new();
        self.entry.value.canonical_with(&mut out, false);
        out
    }

    /// Where this section was written.
    pub fn origin(&self) -> &Origin {
        &self.entry.origin
    }

    fn full_path(&self, key: &str) -> String {
        if self.path.is_empty() {
            key.to_string()
        } else {
            format!("{}.{key}", self.path())
        }
    }

    /// Finds `key` (dotted), returning the entry and the full path segments.
    fn lookup(&self, key: &str) -> Result<Option<(&'a Entry, Vec<String>)>> {
        let mut node = self.entry;
        let mut path = self.path.clone();
        for seg in key.split('.') {
            let Value::Table(t) = &node.value else {
                return Err(ConfigError::Type {
                    origin: node.origin.clone(),
                    path: path.join("."),
                    expected: "a table".into(),
                    found: node.value.describe(),
                });
            };
            path.push(seg.to_string());
            match t.get(seg) {
                Some(child) => node = child,
                None => return Ok(None),
            }
        }
        Ok(Some((node, path)))
    }

    /// Records that the builder reading this section accepts `key` (dotted).
    fn ask(&self, key: &str) {
        let mut path = self.path.clone();
        path.extend(key.split('.').map(str::to_string));
        self.config.record_asked(path);
    }

    /// The config this section belongs to.
    pub fn config(&self) -> &'a Config {
        self.config
    }

    /// Whether `key` is present (does not mark it as read).
    pub fn contains(&self, key: &str) -> bool {
        matches!(self.lookup(key), Ok(Some(_)))
    }

    /// The keys of this section in the order written (does not mark them as read).
    pub fn keys(&self) -> Vec<&'a str> {
        match &self.entry.value {
            Value::Table(t) => t.keys().map(String::as_str).collect(),
            _ => Vec::new(),
        }
    }

    /// Reads `key` as a `T` (integers, floats, strings, booleans, arrays, tables into
    /// structs through serde).
    ///
    /// # Errors
    /// [`ConfigError::Missing`] when absent; [`ConfigError::Type`] or
    /// [`ConfigError::Invalid`] when the value does not fit `T`, naming file, line and
    /// path.
    pub fn get<T: DeserializeOwned>(&self, key: &str) -> Result<T> {
        self.get_opt(key)?.ok_or_else(|| ConfigError::Missing {
            origin: self.entry.origin.clone(),
            path: self.full_path(key),
            hint: "add it to the config or set it with --set".into(),
        })
    }

    /// Reads `key` as a `T` if present.
    ///
    /// # Errors
    /// As [`Section::get`], except that absence is `Ok(None)`.
    pub fn get_opt<T: DeserializeOwned>(&self, key: &str) -> Result<Option<T>> {
        self.ask(key);
        match self.lookup(key)? {
            None => Ok(None),
            Some((entry, path)) => T::deserialize(EntryDeserializer::new(entry, &path))
                .map(Some)
                .map_err(|e| e.into_config_error(entry, &path)),
        }
    }

    /// Reads `key`, or uses `default` and records it so that the printed config shows it.
    ///
    /// # Errors
    /// As [`Section::get`] when the key is present but does not fit `T`.
    pub fn get_or<T: DeserializeOwned + Serialize>(&self, key: &str, default: T) -> Result<T> {
        match self.get_opt(key)? {
            Some(v) => Ok(v),
            None => {
                let mut path = self.path.clone();
                path.extend(key.split('.').map(str::to_string));
                if let Ok(v) = toml::Value::try_from(&default) {
                    self.config.record_default(path, v);
                }
                Ok(default)
            }
        }
    }

    /// The sub-table at `key` (dotted).
    ///
    /// # Errors
    /// [`ConfigError::Missing`] when absent, [`ConfigError::Type`] when not a table.
    pub fn section(&self, key: &str) -> Result<Section<'a>> {
        self.ask(key);
        match self.lookup(key)? {
            None => Err(ConfigError::Missing {
                origin: self.entry.origin.clone(),
                path: self.full_path(key),
                hint: "add this table to the config".into(),
            }),
            Some((entry, path)) => match &entry.value {
                Value::Table(_) => {
                    entry.mark();
                    Ok(Section::new(self.config, entry, path))
                }
                other => Err(ConfigError::Type {
                    origin: entry.origin.clone(),
                    path: path.join("."),
                    expected: "a table".into(),
                    found: other.describe(),
                }),
            },
        }
    }

    /// Reads the whole section into `T` (a struct with serde derives). Fields of `T`
    /// that the config leaves out take their serde defaults, which are recorded so the
    /// printed config shows them; keys that `T` does not have stay unread and are
    /// reported by [`Config::check_all_used`].
    ///
    /// # Errors
    /// As [`Section::get`].
    pub fn deserialize<T: DeserializeOwned + Serialize>(&self) -> Result<T> {
        let value = T::deserialize(EntryDeserializer::recording(
            self.entry,
            &self.path,
            &self.config.asked,
        ))
        .map_err(|e| e.into_config_error(self.entry, &self.path))?;
        if let Ok(v) = toml::Value::try_from(&value) {
            self.config.record_default(self.path.clone(), v);
        }
        Ok(value)
    }

    /// An error about the value at `key` (range checks and other validation a builder
    /// does), located at that value, or at this section when `key` is absent.
    pub fn invalid(&self, key: &str, message: impl Into<String>) -> ConfigError {
        let origin = match self.lookup(key) {
            Ok(Some((entry, _))) => entry.origin.clone(),
            _ => self.entry.origin.clone(),
        };
        ConfigError::Invalid {
            origin,
            path: self.full_path(key),
            message: message.into(),
        }
    }

    /// Wraps a builder's own error with this section's location.
    pub fn build_error(
        &self,
        message: impl Into<String>,
        source: impl Into<Box<dyn std::error::Error + Send + Sync>>,
    ) -> ConfigError {
        ConfigError::Build {
            origin: self.entry.origin.clone(),
            path: self.path(),
            message: message.into(),
            source: source.into(),
        }
    }

    /// Marks everything under this section as read (for a component that consumes a
    /// subtree wholesale, such as an opaque blob passed to another tool).
    pub fn mark_all_used(&self) {
        self.entry.mark_all();
    }
}
