//! The config tree: values with their origin and a "read" mark.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use indexmap::IndexMap;
use toml::de::{DeTable, DeValue};

use crate::error::{ConfigError, Result};

/// Where a value came from: a file and line, a command-line override, or a default
/// filled in by a builder.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Origin {
    /// Written in a file (or a named text) at a 1-based line.
    File {
        /// The file name as given.
        file: Arc<str>,
        /// 1-based line.
        line: usize,
    },
    /// Set by an override `--set path=value`.
    Override(Arc<str>),
    /// Filled in by a builder's default.
    Default,
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Origin::File { file, line } => write!(f, "{file}:{line}"),
            Origin::Override(a) => write!(f, "--set {}", clip_text(a)),
            Origin::Default => write!(f, "(default)"),
        }
    }
}

/// The longest text a message echoes back whole; longer text is cut in the middle.
pub const MAX_ECHO: usize = 120;

/// `text` as a message should show it: whole when it has at most [`MAX_ECHO`]
/// characters, otherwise its start and end around `...(N characters)...`, so that a
/// 2 MB value in a config or a data file does not come back in full in an error.
pub fn clip_text(text: &str) -> std::borrow::Cow<'_, str> {
    let n = text.chars().count();
    if n <= MAX_ECHO {
        return std::borrow::Cow::Borrowed(text);
    }
    let keep = MAX_ECHO / 2;
    let head: String = text.chars().take(keep).collect();
    let tail: String = text.chars().skip(n - keep / 2).collect();
    std::borrow::Cow::Owned(format!("{head}...({n} characters)...{tail}"))
}

/// A table: keys in the order written.
pub(crate) type Table = IndexMap<String, Entry>;

/// A config value.
#[derive(Debug, Clone)]
pub(crate) enum Value {
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
    Datetime(toml::value::Datetime),
    Array(Vec<Entry>),
    Table(Table),
}

/// A value with its origin and whether anything read it.
#[derive(Debug)]
pub(crate) struct Entry {
    pub(crate) value: Value,
    pub(crate) origin: Origin,
    pub(crate) used: AtomicBool,
}

impl Clone for Entry {
    fn clone(&self) -> Self {
        Entry {
            value: self.value.clone(),
            origin: self.origin.clone(),
            used: AtomicBool::new(self.used.load(Ordering::Relaxed)),
        }
    }
}

impl PartialEq for Value {
    /// Equality of content; floats compare by bits so that NaN equals itself and a
    /// printed-then-parsed config equals the original.
    fn eq(&self, other: &Self) -> bool {
        match (self, other) {
            (Value::Bool(a), Value::Bool(b)) => a == b,
            (Value::Int(a), Value::Int(b)) => a == b,
            (Value::Float(a), Value::Float(b)) => a.to_bits() == b.to_bits(),
            (Value::Str(a), Value::Str(b)) => a == b,
            (Value::Datetime(a), Value::Datetime(b)) => a == b,
            (Value::Array(a), Value::Array(b)) => {
                a.len() == b.len() && a.iter().zip(b).all(|(x, y)| x.value == y.value)
            }
            (Value::Table(a), Value::Table(b)) => {
                a.len() == b.len()
                    && a.iter()
                        .all(|(k, v)| b.get(k).is_some_and(|w| w.value == v.value))
            }
            _ => false,
        }
    }
}

impl Entry {
    pub(crate) fn new(value: Value, origin: Origin) -> Entry {
        Entry {
            value,
            origin,
            used: AtomicBool::new(false),
        }
    }

    /// Marks this entry, and everything under it, as read.
    pub(crate) fn mark_all(&self) {
        self.used.store(true, Ordering::Relaxed);
        match &self.value {
            Value::Array(items) => items.iter().for_each(Entry::mark_all),
            Value::Table(t) => t.values().for_each(Entry::mark_all),
            _ => {}
        }
    }

    pub(crate) fn mark(&self) {
        self.used.store(true, Ordering::Relaxed);
    }

    pub(crate) fn is_used(&self) -> bool {
        self.used.load(Ordering::Relaxed)
    }
}

impl Value {
    /// How the value is named in an error: `the string "20"`, `an integer (3)`.
    pub(crate) fn describe(&self) -> String {
        match self {
            Value::Bool(b) => format!("the boolean {b}"),
            Value::Int(i) => format!("the integer {i}"),
            Value::Float(x) => format!("the float {x:?}"),
            Value::Str(s) => format!("the string {:?}", clip_text(s)),
            Value::Datetime(d) => format!("the datetime {d}"),
            Value::Array(a) => format!("an array of {} items", a.len()),
            Value::Table(_) => "a table".to_string(),
        }
    }

    /// The value as a `toml::Value`, for printing.
    pub(crate) fn to_toml(&self) -> toml::Value {
        match self {
            Value::Bool(b) => toml::Value::Boolean(*b),
            Value::Int(i) => toml::Value::Integer(*i),
            Value::Float(x) => toml::Value::Float(*x),
            Value::Str(s) => toml::Value::String(s.clone()),
            Value::Datetime(d) => toml::Value::Datetime(*d),
            Value::Array(a) => toml::Value::Array(a.iter().map(|e| e.value.to_toml()).collect()),
            Value::Table(t) => toml::Value::Table(
                t.iter()
                    .map(|(k, e)| (k.clone(), e.value.to_toml()))
                    .collect(),
            ),
        }
    }

    /// A value from a `toml::Value` (defaults serialized by a builder).
    pub(crate) fn from_toml(v: &toml::Value, origin: &Origin) -> Value {
        match v {
            toml::Value::Boolean(b) => Value::Bool(*b),
            toml::Value::Integer(i) => Value::Int(*i),
            toml::Value::Float(x) => Value::Float(*x),
            toml::Value::String(s) => Value::Str(s.clone()),
            toml::Value::Datetime(d) => Value::Datetime(*d),
            toml::Value::Array(a) => Value::Array(
                a.iter()
                    .map(|x| Entry::new(Value::from_toml(x, origin), origin.clone()))
                    .collect(),
            ),
            toml::Value::Table(t) => Value::Table(
                t.iter()
                    .map(|(k, x)| {
                        (
                            k.clone(),
                            Entry::new(Value::from_toml(x, origin), origin.clone()),
                        )
                    })
                    .collect(),
            ),
        }
    }

    /// Writes a canonical, type-tagged, key-sorted form used for stable ids.
    pub(crate) fn canonical(&self, out: &mut String) {
        self.canonical_with(out, true);
    }

    /// As [`Value::canonical`], with table keys sorted or in the order written.
    pub(crate) fn canonical_with(&self, out: &mut String, sorted: bool) {
        use std::fmt::Write;
        match self {
            Value::Bool(b) => out.push_str(if *b { "b1" } else { "b0" }),
            Value::Int(i) => {
                let _ = write!(out, "i{i};");
            }
            Value::Float(x) => {
                let _ = write!(out, "f{:016x};", x.to_bits());
            }
            Value::Str(s) => {
                let _ = write!(out, "s{}:{s}", s.len());
            }
            Value::Datetime(d) => {
                let d = d.to_string();
                let _ = write!(out, "d{}:{d}", d.len());
            }
            Value::Array(a) => {
                let _ = write!(out, "a{}[", a.len());
                a.iter().for_each(|e| e.value.canonical_with(out, sorted));
                out.push(']');
            }
            Value::Table(t) => {
                let mut keys: Vec<&String> = t.keys().collect();
                if sorted {
                    keys.sort();
                }
                let _ = write!(out, "t{}{{", keys.len());
                for k in keys {
                    let _ = write!(out, "{}:{k}=", k.len());
                    t[k].value.canonical_with(out, sorted);
                }
                out.push('}');
            }
        }
    }
}

/// `value` (any serde value: a node's parameters) in the canonical, type-tagged form
/// of [`Section::canonical`](crate::Section::canonical) (map keys in their order),
/// or `None` when TOML cannot hold it (a map with non-string keys, a bare `None`).
/// Floats are written by their bits, so `0.0` and `-0.0`, or two NaN payloads,
/// never share a form.
pub fn canonical_of<T: serde::Serialize + ?Sized>(value: &T) -> Option<String> {
    let v = toml::Value::try_from(value).ok()?;
    let origin = Origin::Default;
    let mut out = String::new();
    Value::from_toml(&v, &origin).canonical_with(&mut out, false);
    Some(out)
}

/// Byte offsets of line starts, to turn spans into 1-based lines.
pub(crate) struct Lines(Vec<usize>);

impl Lines {
    pub(crate) fn new(text: &str) -> Lines {
        let mut starts = vec![0];
        starts.extend(text.match_indices('\n').map(|(i, _)| i + 1));
        Lines(starts)
    }

    /// 1-based (line, column) of a byte offset.
    pub(crate) fn locate(&self, offset: usize) -> (usize, usize) {
        let line = self.0.partition_point(|&s| s <= offset);
        let col = offset - self.0[line.saturating_sub(1)] + 1;
        (line, col)
    }
}

/// Parses TOML text into a table, recording each value's line.
pub(crate) fn parse_text(text: &str, file: &str) -> Result<Table> {
    let lines = Lines::new(text);
    let file: Arc<str> = Arc::from(file);
    let doc = DeTable::parse(text).map_err(|e| {
        let (line, column) = e.span().map_or((1, 1), |s| lines.locate(s.start));
        ConfigError::Parse {
            file: file.to_string(),
            line,
            column,
            message: e.message().trim().to_string(),
        }
    })?;
    let ctx = Ctx {
        lines: &lines,
        file: &file,
    };
    ctx.table(doc.get_ref(), &[])
}

struct Ctx<'a> {
    lines: &'a Lines,
    file: &'a Arc<str>,
}

impl Ctx<'_> {
    fn origin(&self, offset: usize) -> Origin {
        Origin::File {
            file: Arc::clone(self.file),
            line: self.lines.locate(offset).0,
        }
    }

    fn table(&self, t: &DeTable<'_>, path: &[&str]) -> Result<Table> {
        let mut out = Table::with_capacity(t.len());
        for (k, v) in t.iter() {
            let key: &str = k.get_ref();
            let mut p = path.to_vec();
            p.push(key);
            // A key's line is where the key is written (for `[a.b]` headers, the header).
            let origin = self.origin(k.span().start);
            let value = self.value(v.get_ref(), v.span().start, &p)?;
            out.insert(key.to_string(), Entry::new(value, origin));
        }
        Ok(out)
    }

    fn value(&self, v: &DeValue<'_>, offset: usize, path: &[&str]) -> Result<Value> {
        Ok(match v {
            DeValue::String(s) => Value::Str(s.to_string()),
            DeValue::Integer(i) => {
                let parsed = i64::from_str_radix(i.as_str(), i.radix()).map_err(|_| {
                    ConfigError::Invalid {
                        origin: self.origin(offset),
                        path: path.join("."),
                        message: format!("integer {i} does not fit in 64 bits"),
                    }
                })?;
                Value::Int(parsed)
            }
            DeValue::Float(f) => {
                let text = f.as_str();
                let parsed: f64 = text.parse().map_err(|_| ConfigError::Invalid {
                    origin: self.origin(offset),
                    path: path.join("."),
                    message: format!("float {text} cannot be read"),
                })?;
                Value::Float(parsed)
            }
            DeValue::Boolean(b) => Value::Bool(*b),
            DeValue::Datetime(d) => Value::Datetime(*d),
            DeValue::Array(a) => Value::Array(
                a.iter()
                    .map(|item| {
                        let v = self.value(item.get_ref(), item.span().start, path)?;
                        Ok(Entry::new(v, self.origin(item.span().start)))
                    })
                    .collect::<Result<Vec<_>>>()?,
            ),
            DeValue::Table(t) => Value::Table(self.table(t, path)?),
        })
    }
}
