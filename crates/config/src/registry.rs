//! [`Registry`]: builders by name, so a config's `type = "..."` picks an implementation.

use std::collections::BTreeMap;
use std::marker::PhantomData;

use crate::Section;
use crate::doc::TypeDoc;
use crate::error::{ConfigError, Result, UnknownType};

/// A function that turns a config section into a `T`: the builder of a
/// [`Registry<T>`] whose builders need nothing but their section.
pub type BuildFn<T> = dyn Fn(&Section<'_>) -> Result<T> + Send + Sync;

/// Builders of `T` by name, each with the [`TypeDoc`] that `kaizenflow nodes` and its
/// siblings print. [`Registry::lookup`] reads a section's `type` key and returns the
/// builder registered under that name.
///
/// `F` is the builder's function type. It defaults to [`BuildFn<T>`] (a builder that
/// needs only its section, built with [`Registry::build`]); a layer whose builders
/// need more (the node library needs the market data and the other registries)
/// names its own function type and calls the builder that [`Registry::lookup`]
/// returns with that context.
///
/// This is how a config selects components without code: `[market_data] type =
/// "synthetic"` picks the synthetic source, each crate registers its own kinds, and
/// a user's crate adds more to the same value before building.
///
/// # Invariant
/// Names are unique: [`Registry::insert`] refuses a name that is taken.
pub struct Registry<T, F: ?Sized = BuildFn<T>> {
    kind: String,
    entries: BTreeMap<String, Registered<F>>,
    _builds: PhantomData<fn() -> T>,
}

/// One registered type: its builder and its documentation.
pub struct Registered<F: ?Sized> {
    /// What it is and which parameters it reads.
    pub doc: TypeDoc,
    /// The builder.
    pub build: Box<F>,
}

impl<T, F: ?Sized> Registry<T, F> {
    /// An empty registry of builders of `kind` (used in messages: "market data source").
    pub fn new(kind: impl Into<String>) -> Self {
        Registry {
            kind: kind.into(),
            entries: BTreeMap::new(),
            _builds: PhantomData,
        }
    }

    /// Registers `build` under `name`, documented by `doc`.
    ///
    /// # Errors
    /// [`ConfigError::DuplicateBuilder`] when `name` is taken.
    pub fn insert(&mut self, name: &str, doc: TypeDoc, build: Box<F>) -> Result<&mut Self> {
        if self.entries.contains_key(name) {
            return Err(ConfigError::DuplicateBuilder {
                kind: self.kind.clone(),
                name: name.to_string(),
            });
        }
        self.entries
            .insert(name.to_string(), Registered { doc, build });
        Ok(self)
    }

    /// The registered names, sorted.
    pub fn names(&self) -> Vec<&str> {
        self.entries.keys().map(String::as_str).collect()
    }

    /// Whether `name` is registered.
    pub fn contains(&self, name: &str) -> bool {
        self.entries.contains_key(name)
    }

    /// What this registry builds.
    pub fn kind(&self) -> &str {
        &self.kind
    }

    /// The documentation of `name`, if registered.
    pub fn doc(&self, name: &str) -> Option<&TypeDoc> {
        self.entries.get(name).map(|e| &e.doc)
    }

    /// The documentation of `name`, to amend (an example added after registering).
    pub fn doc_mut(&mut self, name: &str) -> Option<&mut TypeDoc> {
        self.entries.get_mut(name).map(|e| &mut e.doc)
    }

    /// Every registered type with its documentation, by name.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &TypeDoc)> {
        self.entries.iter().map(|(k, e)| (k.as_str(), &e.doc))
    }

    /// The builder of `name`, if registered.
    pub fn get(&self, name: &str) -> Option<&F> {
        self.entries.get(name).map(|e| e.build.as_ref())
    }

    /// The builder that `section`'s `type` names.
    ///
    /// # Errors
    /// [`ConfigError::Missing`] when `type` is absent; [`ConfigError::UnknownType`]
    /// listing the known names (and the closest one, when one is close) when no
    /// builder has that name.
    pub fn lookup(&self, section: &Section<'_>) -> Result<&F> {
        let name: String = section.get("type")?;
        match self.entries.get(&name) {
            Some(e) => Ok(e.build.as_ref()),
            None => Err(self.unknown(section, &name, &[])),
        }
    }

    /// The error for a `type` that no builder has, at `section`'s `type` key; `also`
    /// lists names that another registry would accept there.
    pub fn unknown(&self, section: &Section<'_>, name: &str, also: &[&str]) -> ConfigError {
        let type_path = if section.path().is_empty() {
            "type".to_string()
        } else {
            format!("{}.type", section.path())
        };
        let origin = match section.invalid("type", "") {
            ConfigError::Invalid { origin, .. } => origin,
            _ => section.origin().clone(),
        };
        let mut known: Vec<&str> = self.names();
        known.extend_from_slice(also);
        known.sort_unstable();
        known.dedup();
        ConfigError::UnknownType(Box::new(UnknownType {
            origin,
            path: type_path,
            kind: self.kind.clone(),
            name: name.to_string(),
            known: known.join(", "),
            suggestion: crate::closest(name, known.iter().copied()).map(str::to_string),
        }))
    }
}

impl<T> Registry<T> {
    /// Registers `build` under `name`, with a one-line summary as its documentation.
    ///
    /// # Errors
    /// [`ConfigError::DuplicateBuilder`] when `name` is taken.
    pub fn register<G>(&mut self, name: &str, build: G) -> Result<&mut Self>
    where
        G: Fn(&Section<'_>) -> Result<T> + Send + Sync + 'static,
    {
        let doc = TypeDoc::new(format!("{} `{name}`", self.kind));
        self.insert(name, doc, Box::new(build))
    }

    /// Builds the `T` that `section`'s `type` names.
    ///
    /// # Errors
    /// As [`Registry::lookup`], or the builder's error.
    pub fn build(&self, section: &Section<'_>) -> Result<T> {
        (self.lookup(section)?)(section)
    }
}

impl<T, F: ?Sized> std::fmt::Debug for Registry<T, F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Registry")
            .field("kind", &self.kind)
            .field("names", &self.names())
            .finish()
    }
}
