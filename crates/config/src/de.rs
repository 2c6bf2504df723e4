//! A serde `Deserializer` over config entries, so builders can read typed structs.
//!
//! It marks what it reads (and leaves alone what serde ignores, so unknown keys are
//! reported later), and produces errors located at the deepest entry involved, with
//! this crate's wording for type mismatches (`expected an integer, found the string
//! "20"`).

use std::fmt;

use serde::de::value::StrDeserializer;
use serde::de::{self, DeserializeSeed, IntoDeserializer, Visitor};

use crate::error::ConfigError;
use crate::value::{Entry, Value};

/// A deserialization error, located at an entry once one is known.
#[derive(Debug)]
pub(crate) enum DeError {
    /// Already a complete, located error.
    Located(Box<ConfigError>),
    /// A message from serde or a visitor, not yet located.
    Message(String),
    /// A struct field that is absent.
    MissingField(&'static str),
}

impl fmt::Display for DeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DeError::Located(e) => write!(f, "{e}"),
            DeError::Message(m) => write!(f, "{m}"),
            DeError::MissingField(k) => write!(f, "missing key `{k}`"),
        }
    }
}

impl std::error::Error for DeError {}

impl de::Error for DeError {
    fn custom<T: fmt::Display>(msg: T) -> Self {
        DeError::Message(msg.to_string())
    }
    fn missing_field(field: &'static str) -> Self {
        DeError::MissingField(field)
    }
}

impl DeError {
    /// Locates the error at `entry` (at `path`) unless it is located already.
    pub(crate) fn into_config_error(self, entry: &Entry, path: &[String]) -> ConfigError {
        match self {
            DeError::Located(e) => *e,
            DeError::Message(message) => ConfigError::Invalid {
                origin: entry.origin.clone(),
                path: path.join("."),
                message,
            },
            DeError::MissingField(field) => {
                let mut p = path.to_vec();
                p.push(field.to_string());
                ConfigError::Missing {
                    origin: entry.origin.clone(),
                    path: p.join("."),
                    hint: "add it to the config or set it with --set".into(),
                }
            }
        }
    }

    fn locate(self, entry: &Entry, path: &[String]) -> DeError {
        DeError::Located(Box::new(self.into_config_error(entry, path)))
    }
}

/// Where a top-level struct read records the keys it accepts (its field names).
pub(crate) type AskedKeys = std::sync::Mutex<std::collections::BTreeSet<Vec<String>>>;

/// Deserializes one entry.
pub(crate) struct EntryDeserializer<'a> {
    entry: &'a Entry,
    path: Vec<String>,
    asked: Option<&'a AskedKeys>,
}

impl<'a> EntryDeserializer<'a> {
    pub(crate) fn new(entry: &'a Entry, path: &[String]) -> Self {
        EntryDeserializer {
            entry,
            path: path.to_vec(),
            asked: None,
        }
    }

    /// A deserializer that records the field names of the struct it reads as keys
    /// the caller accepts at `path`.
    pub(crate) fn recording(entry: &'a Entry, path: &[String], asked: &'a AskedKeys) -> Self {
        EntryDeserializer {
            entry,
            path: path.to_vec(),
            asked: Some(asked),
        }
    }

    fn mismatch(&self, expected: &str) -> DeError {
        DeError::Located(Box::new(ConfigError::Type {
            origin: self.entry.origin.clone(),
            path: self.path.join("."),
            expected: expected.to_string(),
            found: self.entry.value.describe(),
        }))
    }

    fn locate<T>(&self, r: Result<T, DeError>) -> Result<T, DeError> {
        r.map_err(|e| e.locate(self.entry, &self.path))
    }
}

macro_rules! integer {
    ($($method:ident)*) => {$(
        fn $method<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
            match &self.entry.value {
                Value::Int(i) => {
                    self.entry.mark();
                    let r = visitor.visit_i64(*i);
                    self.locate(r)
                }
                _ => Err(self.mismatch("an integer")),
            }
        }
    )*};
}

impl<'de> de::Deserializer<'de> for EntryDeserializer<'_> {
    type Error = DeError;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        self.entry.mark();
        let r = match &self.entry.value {
            Value::Bool(b) => visitor.visit_bool(*b),
            Value::Int(i) => visitor.visit_i64(*i),
            Value::Float(x) => visitor.visit_f64(*x),
            Value::Str(s) => visitor.visit_str(s),
            Value::Datetime(d) => visitor.visit_string(d.to_string()),
            Value::Array(items) => visitor.visit_seq(SeqAccess {
                items: items.iter(),
                path: &self.path,
                index: 0,
            }),
            Value::Table(t) => visitor.visit_map(MapAccess {
                iter: t.iter(),
                path: &self.path,
                next: None,
            }),
        };
        self.locate(r)
    }

    integer!(deserialize_i8 deserialize_i16 deserialize_i32 deserialize_i64 deserialize_i128
             deserialize_u8 deserialize_u16 deserialize_u32 deserialize_u64 deserialize_u128);

    fn deserialize_f32<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        self.deserialize_f64(visitor)
    }

    fn deserialize_f64<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        let x = match &self.entry.value {
            Value::Float(x) => *x,
            // An integer is a fine float (`scale = 4`).
            Value::Int(i) => *i as f64,
            _ => return Err(self.mismatch("a number")),
        };
        self.entry.mark();
        let r = visitor.visit_f64(x);
        self.locate(r)
    }

    fn deserialize_bool<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        match &self.entry.value {
            Value::Bool(b) => {
                self.entry.mark();
                let r = visitor.visit_bool(*b);
                self.locate(r)
            }
            _ => Err(self.mismatch("a boolean (true or false)")),
        }
    }

    fn deserialize_str<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        match &self.entry.value {
            Value::Str(s) => {
                self.entry.mark();
                let r = visitor.visit_str(s);
                self.locate(r)
            }
            Value::Datetime(d) => {
                self.entry.mark();
                let r = visitor.visit_string(d.to_string());
                self.locate(r)
            }
            _ => Err(self.mismatch("a string")),
        }
    }

    fn deserialize_string<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        self.deserialize_str(visitor)
    }

    fn deserialize_char<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        self.deserialize_str(visitor)
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        visitor.visit_some(self)
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, DeError> {
        visitor.visit_newtype_struct(self)
    }

    fn deserialize_seq<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        match &self.entry.value {
            Value::Array(_) => self.deserialize_any(visitor),
            _ => Err(self.mismatch("an array")),
        }
    }

    fn deserialize_tuple<V: Visitor<'de>>(
        self,
        _len: usize,
        visitor: V,
    ) -> Result<V::Value, DeError> {
        self.deserialize_seq(visitor)
    }

    fn deserialize_tuple_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _len: usize,
        visitor: V,
    ) -> Result<V::Value, DeError> {
        self.deserialize_seq(visitor)
    }

    fn deserialize_map<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        match &self.entry.value {
            Value::Table(_) => self.deserialize_any(visitor),
            _ => Err(self.mismatch("a table")),
        }
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, DeError> {
        if let Some(Ok(mut asked)) = self.asked.map(|a| a.lock()) {
            for f in fields {
                let mut p = self.path.clone();
                p.push((*f).to_string());
                asked.insert(p);
            }
        }
        self.deserialize_map(visitor)
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _name: &'static str,
        variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, DeError> {
        match &self.entry.value {
            Value::Str(s) => {
                self.entry.mark();
                let de: StrDeserializer<'_, DeError> = s.as_str().into_deserializer();
                let r = visitor.visit_enum(de);
                self.locate(r)
            }
            _ => Err(self.mismatch(&format!("one of the strings {}", variants.join(", ")))),
        }
    }

    fn deserialize_identifier<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        self.deserialize_str(visitor)
    }

    fn deserialize_ignored_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        // Not marked: a key that the target type does not have stays "unread".
        visitor.visit_unit()
    }

    fn deserialize_unit<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        self.entry.mark();
        visitor.visit_unit()
    }

    fn deserialize_unit_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, DeError> {
        self.deserialize_unit(visitor)
    }

    fn deserialize_bytes<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        self.deserialize_seq(visitor)
    }

    fn deserialize_byte_buf<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        self.deserialize_seq(visitor)
    }
}

struct SeqAccess<'a, I> {
    items: I,
    path: &'a [String],
    index: usize,
}

impl<'de, 'a, I: Iterator<Item = &'a Entry>> de::SeqAccess<'de> for SeqAccess<'a, I> {
    type Error = DeError;

    fn next_element_seed<T: DeserializeSeed<'de>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, DeError> {
        let Some(entry) = self.items.next() else {
            return Ok(None);
        };
        let mut path = self.path.to_vec();
        match path.last_mut() {
            Some(last) => last.push_str(&format!("[{}]", self.index)),
            None => path.push(format!("[{}]", self.index)),
        }
        self.index += 1;
        seed.deserialize(EntryDeserializer {
            entry,
            path,
            asked: None,
        })
        .map(Some)
    }
}

struct MapAccess<'a, I> {
    iter: I,
    path: &'a [String],
    next: Option<(&'a String, &'a Entry)>,
}

impl<'de, 'a, I: Iterator<Item = (&'a String, &'a Entry)>> de::MapAccess<'de> for MapAccess<'a, I> {
    type Error = DeError;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, DeError> {
        let Some((key, entry)) = self.iter.next() else {
            return Ok(None);
        };
        self.next = Some((key, entry));
        let de: StrDeserializer<'_, DeError> = key.as_str().into_deserializer();
        seed.deserialize(de).map(Some)
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, DeError> {
        let Some((key, entry)) = self.next.take() else {
            return Err(DeError::Message("value requested before its key".into()));
        };
        let mut path = self.path.to_vec();
        path.push(key.clone());
        seed.deserialize(EntryDeserializer {
            entry,
            path,
            asked: None,
        })
    }
}
