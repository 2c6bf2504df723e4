//! [`Config`]: loading, overrides, unused-key detection, printing and ids.

use std::path::Path;
use std::sync::{Arc, Mutex};

use sha2::{Digest, Sha256};

use crate::error::{ConfigError, Result, UnusedKey};
use crate::section::Section;
use crate::value::{Entry, Origin, Table, Value, parse_text};

/// The most dotted segments a key path may have (`--set a.b.c=...`, a `[sweep]` key).
/// Files are held to a nesting limit by the TOML parser; paths given as text are held
/// to this one, so a path of tens of thousands of segments is refused instead of
/// nesting tables that deep.
pub const MAX_KEY_SEGMENTS: usize = 64;

/// A hierarchical configuration read from TOML: the complete description of a system.
///
/// Every value remembers where it was written (file and line, or the override that
/// set it), so any error about it can say where to look. Every read marks the value,
/// so after building, [`Config::check_all_used`] reports each key that nothing read
/// (a typo must not pass silently). Builders that apply a default record it
/// ([`Section::get_or`], [`Section::deserialize`]), so [`Config::to_toml_string`]
/// prints the fully resolved config, which reads back to an equal config.
///
/// Reads take `&self` (marks and defaults use interior mutability), so a builder can
/// hold several sections at once; a `Config` is `Send + Sync`.
#[derive(Debug)]
pub struct Config {
    root: Entry,
    /// Defaults applied by builders: (path, value), in the order applied.
    defaults: Mutex<Vec<(Vec<String>, toml::Value)>>,
    /// Every key path a builder asked for, present or not (see [`Config::asked_keys`]).
    pub(crate) asked: crate::de::AskedKeys,
}

impl Clone for Config {
    fn clone(&self) -> Self {
        Config {
            root: self.root.clone(),
            defaults: Mutex::new(self.defaults_snapshot()),
            asked: Mutex::new(self.asked.lock().map(|a| a.clone()).unwrap_or_default()),
        }
    }
}

impl PartialEq for Config {
    /// Equality of resolved content (explicit values and recorded defaults); origins
    /// and read marks are ignored.
    fn eq(&self, other: &Self) -> bool {
        self.resolved_root().value == other.resolved_root().value
    }
}

impl Config {
    /// Reads a config from a TOML file.
    ///
    /// # Errors
    /// [`ConfigError::Io`] when the file cannot be read, [`ConfigError::Parse`] with
    /// file, line and column when it is not valid TOML.
    pub fn from_file(path: impl AsRef<Path>) -> Result<Config> {
        let path = path.as_ref();
        let bytes = std::fs::read(path).map_err(|source| ConfigError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        let text = String::from_utf8(bytes).map_err(|e| {
            let good = &e.as_bytes()[..e.utf8_error().valid_up_to()];
            let line = 1 + good.iter().filter(|&&b| b == b'\n').count();
            let column = 1 + good.iter().rev().take_while(|&&b| b != b'\n').count();
            ConfigError::Parse {
                file: path.display().to_string(),
                line,
                column,
                message: "invalid UTF-8 (a config is UTF-8 text); re-save the file as UTF-8".into(),
            }
        })?;
        Config::from_toml_str(&text, &path.display().to_string())
    }

    /// Reads a config from TOML text; `name` stands for the file in messages.
    ///
    /// # Errors
    /// [`ConfigError::Parse`] when the text is not valid TOML.
    pub fn from_toml_str(text: &str, name: &str) -> Result<Config> {
        let table = parse_text(text, name)?;
        Ok(Config::from_table(
            table,
            Origin::File {
                file: Arc::from(name),
                line: 1,
            },
        ))
    }

    pub(crate) fn from_table(table: Table, origin: Origin) -> Config {
        Config {
            root: Entry::new(Value::Table(table), origin),
            defaults: Mutex::new(Vec::new()),
            asked: Mutex::new(Default::default()),
        }
    }

    /// The whole config as a section.
    pub fn root(&self) -> Section<'_> {
        Section::new(self, &self.root, Vec::new())
    }

    /// A section by dotted path (see [`Section::section`]).
    ///
    /// # Errors
    /// [`ConfigError::Missing`] or [`ConfigError::Type`] when the path does not lead
    /// to a table.
    pub fn section(&self, path: &str) -> Result<Section<'_>> {
        self.root().section(path)
    }

    /// Applies an override `path=value`, where `value` is a TOML value (`3`, `2.5`,
    /// `"text"`, `[1, 2]`, `{ a = 1 }`); text that is not a TOML value is taken as a
    /// string, so `--set data.type=csv` works without shell quoting.
    ///
    /// Intermediate tables are created as needed; an override may add a key that the
    /// file does not have (a builder may read it), and a key that nothing reads is
    /// still reported by [`Config::check_all_used`], naming the override.
    ///
    /// # Errors
    /// [`ConfigError::Override`] when there is no `=`, the path is empty or has an
    /// empty segment, or a prefix of the path is a value that is not a table.
    pub fn set(&mut self, assignment: &str) -> Result<()> {
        let fail = |reason: &str| ConfigError::Override {
            assignment: crate::clip_text(assignment).into_owned(),
            reason: reason.to_string(),
        };
        let (path, text) = assignment
            .split_once('=')
            .ok_or_else(|| fail("expected PATH=VALUE, e.g. dag.nodes.zscore.window=20"))?;
        let path: Vec<&str> = path.trim().split('.').map(str::trim).collect();
        if path.iter().any(|s| s.is_empty()) {
            return Err(fail("the path has an empty segment"));
        }
        if path.len() > MAX_KEY_SEGMENTS {
            return Err(fail(&format!(
                "the path has {} segments; at most {MAX_KEY_SEGMENTS} are allowed",
                path.len()
            )));
        }
        let origin = Origin::Override(Arc::from(assignment));
        let value = parse_value(text.trim(), &origin);
        set_path(&mut self.root, &path, Entry::new(value, origin))
            .map_err(|prefix| fail(&format!("`{prefix}` is not a table, so it has no keys")))
    }

    /// Applies overrides in order. See [`Config::set`].
    ///
    /// # Errors
    /// The first override that fails.
    pub fn set_all<S: AsRef<str>>(&mut self, assignments: &[S]) -> Result<()> {
        assignments.iter().try_for_each(|a| self.set(a.as_ref()))
    }

    /// Sets `path` to `value` programmatically (used by sweeps), with `origin`.
    pub(crate) fn set_value(
        &mut self,
        path: &[String],
        value: Value,
        origin: Origin,
    ) -> Result<()> {
        if path.len() > MAX_KEY_SEGMENTS {
            return Err(ConfigError::Override {
                assignment: crate::clip_text(&path.join(".")).into_owned(),
                reason: format!(
                    "the path has {} segments; at most {MAX_KEY_SEGMENTS} are allowed",
                    path.len()
                ),
            });
        }
        let segments: Vec<&str> = path.iter().map(String::as_str).collect();
        set_path(&mut self.root, &segments, Entry::new(value, origin)).map_err(|prefix| {
            ConfigError::Override {
                assignment: path.join("."),
                reason: format!("`{prefix}` is not a table, so it has no keys"),
            }
        })
    }

    /// Removes a top-level key, returning its entry (used to take out `[sweep]`).
    pub(crate) fn take_top(&mut self, key: &str) -> Option<Entry> {
        match &mut self.root.value {
            Value::Table(t) => t.shift_remove(key),
            _ => None,
        }
    }

    /// Every key that nothing read since the config was made, with where it was written.
    pub fn unused_keys(&self) -> Vec<UnusedKey> {
        let mut out = Vec::new();
        collect_unused(&self.root, &mut Vec::new(), &mut out);
        out
    }

    /// Fails if any key was not read: call it after building everything the config
    /// describes.
    ///
    /// # Errors
    /// [`ConfigError::Unused`] listing each unread key with its file and line.
    pub fn check_all_used(&self) -> Result<()> {
        let unused = self.unused_keys();
        if unused.is_empty() {
            Ok(())
        } else {
            Err(ConfigError::Unused(unused))
        }
    }

    /// The resolved config (explicit values with every recorded default filled in),
    /// printed as TOML. Reading the text back gives an equal config.
    pub fn to_toml_string(&self) -> String {
        let value = self.resolved_root().value.to_toml();
        match value {
            toml::Value::Table(t) => toml::to_string_pretty(&t).unwrap_or_else(|e| {
                // Serializing a toml::Table cannot fail for values we build; keep the
                // message rather than panic if it ever does.
                format!("# cannot print config: {e}\n")
            }),
            other => other.to_string(),
        }
    }

    /// A stable id of the resolved content: the first 16 hex digits of the SHA-256 of a
    /// canonical form (keys sorted, values type-tagged, floats by their bits). Key
    /// order, comments and formatting do not change it; any value does. The same on
    /// every machine.
    pub fn id(&self) -> String {
        let mut canon = String::new();
        self.resolved_root().value.canonical(&mut canon);
        let digest = Sha256::digest(canon.as_bytes());
        digest[..8].iter().map(|b| format!("{b:02x}")).collect()
    }

    /// The keys directly under `path` (dotted; empty for the root) that builders asked
    /// for, whether or not the config has them, sorted: the keys that the component
    /// built from that table accepts. Struct reads ([`Section::deserialize`]) count
    /// every field of the struct.
    ///
    /// This is how a test holds a type's documented parameters to what its builder
    /// really reads.
    pub fn asked_keys(&self, path: &str) -> Vec<String> {
        let prefix: Vec<&str> = if path.is_empty() {
            Vec::new()
        } else {
            path.split('.').collect()
        };
        let mut keys: Vec<String> = self
            .asked
            .lock()
            .map(|a| {
                a.iter()
                    .filter(|p| {
                        p.len() > prefix.len() && p.iter().zip(&prefix).all(|(a, b)| a == b)
                    })
                    .map(|p| p[prefix.len()].clone())
                    .collect()
            })
            .unwrap_or_default();
        keys.sort();
        keys.dedup();
        keys
    }

    /// Records that a builder asked for the key at `path`.
    pub(crate) fn record_asked(&self, path: Vec<String>) {
        if let Ok(mut a) = self.asked.lock() {
            a.insert(path);
        }
    }

    /// Records a default applied by a builder at `path`, unless a value is present.
    pub(crate) fn record_default(&self, path: Vec<String>, value: toml::Value) {
        if let Ok(mut d) = self.defaults.lock() {
            d.push((path, value));
        }
    }

    fn defaults_snapshot(&self) -> Vec<(Vec<String>, toml::Value)> {
        self.defaults.lock().map(|d| d.clone()).unwrap_or_default()
    }

    /// The tree with recorded defaults merged in where no explicit value exists.
    fn resolved_root(&self) -> Entry {
        let mut root = self.root.clone();
        for (path, value) in self.defaults_snapshot() {
            merge_default(&mut root, &path, &value);
        }
        root
    }
}

/// Parses override text as a TOML value, falling back to a plain string.
fn parse_value(text: &str, origin: &Origin) -> Value {
    let wrapped = format!("v = {text}");
    match toml::from_str::<toml::Table>(&wrapped) {
        Ok(mut t) => match t.remove("v") {
            Some(v) => Value::from_toml(&v, origin),
            None => Value::Str(text.to_string()),
        },
        Err(_) => Value::Str(text.to_string()),
    }
}

/// Sets `path` under `root` to `entry`, creating tables; on failure returns the prefix
/// that is not a table.
fn set_path(root: &mut Entry, path: &[&str], entry: Entry) -> std::result::Result<(), String> {
    let mut node = root;
    for (i, seg) in path.iter().enumerate() {
        let origin = entry.origin.clone();
        let Value::Table(t) = &mut node.value else {
            return Err(path[..i].join("."));
        };
        if i + 1 == path.len() {
            t.insert((*seg).to_string(), entry);
            return Ok(());
        }
        node = t
            .entry((*seg).to_string())
            .or_insert_with(|| Entry::new(Value::Table(Table::new()), origin));
    }
    Ok(())
}

/// Inserts `value` at `path` where nothing explicit is; existing values win. Tables
/// merge key by key, so a default table fills only its missing keys.
fn merge_default(root: &mut Entry, path: &[String], value: &toml::Value) {
    let mut node = root;
    for seg in path {
        let Value::Table(t) = &mut node.value else {
            return;
        };
        node = t
            .entry(seg.clone())
            .or_insert_with(|| Entry::new(Value::Table(Table::new()), Origin::Default));
    }
    merge_into(node, value);
}

fn merge_into(node: &mut Entry, value: &toml::Value) {
    match (&mut node.value, value) {
        (Value::Table(t), toml::Value::Table(d)) => {
            for (k, v) in d {
                match t.get_mut(k) {
                    Some(child) => merge_into(child, v),
                    None => {
                        let e = Entry::new(Value::from_toml(v, &Origin::Default), Origin::Default);
                        e.mark_all();
                        t.insert(k.clone(), e);
                    }
                }
            }
        }
        // A fresh, empty table created on the way down takes the default whole.
        (Value::Table(t), v) if t.is_empty() && node.origin == Origin::Default => {
            node.value = Value::from_toml(v, &Origin::Default);
            node.mark_all();
        }
        _ => {}
    }
}

fn collect_unused(entry: &Entry, path: &mut Vec<String>, out: &mut Vec<UnusedKey>) {
    match &entry.value {
        Value::Table(t) if !t.is_empty() => {
            for (k, child) in t {
                path.push(k.clone());
                collect_unused(child, path, out);
                path.pop();
            }
        }
        Value::Array(items) if items.iter().any(|e| matches!(e.value, Value::Table(_))) => {
            for (i, item) in items.iter().enumerate() {
                let mut p = path.clone();
                if let Some(last) = p.last_mut() {
                    last.push_str(&format!("[{i}]"));
                }
                collect_unused(item, &mut p, out);
            }
        }
        _ if !path.is_empty() && !entry.is_used() => out.push(UnusedKey {
            origin: entry.origin.clone(),
            path: path.join("."),
        }),
        _ => {}
    }
}
