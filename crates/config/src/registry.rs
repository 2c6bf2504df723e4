//! [`Registry`]: builders by name, so a config's `type = "..."` picks an implementation.

use std::collections::BTreeMap;

use crate::Section;
use crate::error::{ConfigError, Result, UnknownType};

/// A function that turns a config section into a `T`.
pub type BuildFn<T> = dyn Fn(&Section<'_>) -> Result<T> + Send + Sync;

/// Builders of `T` by name. [`Registry::build`] reads the section's `type` key and
/// hands the section to the builder registered under that name.
///
/// This is how a config selects components without code: `[market_data] type =
/// "synthetic"` picks the synthetic source, and each crate registers its own kinds.
pub struct Registry<T> {
    kind: String,
    builders: BTreeMap<String, Box<BuildFn<T>>>,
}

impl<T> Registry<T> {
    /// An empty registry of builders of `kind` (used in messages: "market data source").
    pub fn new(kind: impl Into<String>) -> Self {
        Registry {
            kind: kind.into(),
            builders: BTreeMap::new(),
        }
    }

    /// Registers `build` under `name`.
    ///
    /// # Errors
    /// [`ConfigError::DuplicateBuilder`] when `name` is taken.
    pub fn register<F>(&mut self, name: &str, build: F) -> Result<&mut Self>
    where
        F: Fn(&Section<'_>) -> Result<T> + Send + Sync + 'static,
    {
        if self.builders.contains_key(name) {
            return Err(ConfigError::DuplicateBuilder {
                kind: self.kind.clone(),
                name: name.to_string(),
            });
        }
        self.builders.insert(name.to_string(), Box::new(build));
        Ok(self)
    }

    /// The registered names, sorted.
    pub fn names(&self) -> Vec<&str> {
        self.builders.keys().map(String::as_str).collect()
    }

    /// What this registry builds.
    pub fn kind(&self) -> &str {
        &self.kind
    }

    /// Builds the `T` that `section`'s `type` names.
    ///
    /// # Errors
    /// [`ConfigError::Missing`] when `type` is absent, [`ConfigError::UnknownType`]
    /// listing the known names when no builder has that name, or the builder's error.
    pub fn build(&self, section: &Section<'_>) -> Result<T> {
        let name: String = section.get("type")?;
        match self.builders.get(&name) {
            Some(build) => build(section),
            None => {
                let type_path = if section.path().is_empty() {
                    "type".to_string()
                } else {
                    format!("{}.type", section.path())
                };
                let origin = match section.invalid("type", "") {
                    ConfigError::Invalid { origin, .. } => origin,
                    _ => section.origin().clone(),
                };
                Err(ConfigError::UnknownType(Box::new(UnknownType {
                    origin,
                    path: type_path,
                    kind: self.kind.clone(),
                    name,
                    known: self.names().join(", "),
                })))
            }
        }
    }
}

impl<T> std::fmt::Debug for Registry<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Registry")
            .field("kind", &self.kind)
            .field("names", &self.names())
            .finish()
    }
}
