//! [`TypeDoc`]: what a registered type is and which parameters it reads, generated
//! from the same serde structs its builder deserializes, so the two cannot drift.

use std::fmt::Write as _;

use schemars::JsonSchema;
use serde_json::Value as Json;

/// One parameter a registered type reads from its config table.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParamDoc {
    /// The key.
    pub name: String,
    /// Its type, in words (`number`, `array of string`, `one of: append, replace_all`).
    pub ty: String,
    /// The default, as TOML, when the key may be left out and has one.
    pub default: Option<String>,
    /// Whether the key must be given.
    pub required: bool,
    /// What it means.
    pub doc: String,
}

impl ParamDoc {
    /// A parameter documented by hand (for a builder that reads keys one by one).
    pub fn new(name: &str, ty: &str, default: Option<&str>, doc: &str) -> ParamDoc {
        ParamDoc {
            name: name.to_string(),
            ty: ty.to_string(),
            default: default.map(str::to_string),
            required: false,
            doc: doc.to_string(),
        }
    }

    /// The same parameter, marked as one that must be given.
    pub fn required(mut self) -> ParamDoc {
        self.required = true;
        self
    }
}

/// The documentation of a registered type: a summary, its parameters and (for
/// nodes) its ports.
///
/// Parameters come from the serde structs the builder reads ([`TypeDoc::params_of`]:
/// field names, types, serde defaults and doc comments), plus any key the builder
/// reads one by one ([`TypeDoc::param`]). A test in each crate builds every
/// registered type and checks that the keys it asks the config for are exactly
/// these.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TypeDoc {
    /// One line: what the type does.
    pub summary: String,
    /// The keys it reads (besides `type`), in the order documented.
    pub params: Vec<ParamDoc>,
    /// Input ports (nodes only).
    pub inputs: Vec<String>,
    /// Output ports (nodes only).
    pub outputs: Vec<String>,
    /// A TOML table body that builds the type (its required keys), for docs and tests.
    pub example: String,
}

impl TypeDoc {
    /// A type with this summary and no parameters yet.
    pub fn new(summary: impl Into<String>) -> TypeDoc {
        TypeDoc {
            summary: summary.into(),
            ..TypeDoc::default()
        }
    }

    /// Appends the fields of `P`, the serde struct the builder deserializes, with their
    /// types, defaults and doc comments. A field already documented is not repeated.
    pub fn params_of<P: JsonSchema>(mut self) -> TypeDoc {
        let schema = schemars::schema_for!(P);
        let root = schema.as_value();
        let defs = root.get("$defs");
        let required: Vec<&str> = root
            .get("required")
            .and_then(Json::as_array)
            .map(|a| a.iter().filter_map(Json::as_str).collect())
            .unwrap_or_default();
        if let Some(props) = root.get("properties").and_then(Json::as_object) {
            for (name, p) in props {
                if self.params.iter().any(|q| &q.name == name) {
                    continue;
                }
                let target = resolve(p, defs);
                let doc = text(p, "description")
                    .or_else(|| text(target, "description"))
                    .unwrap_or_default();
                let default = p.get("default").filter(|d| !d.is_null()).map(toml_literal);
                self.params.push(ParamDoc {
                    name: name.clone(),
                    ty: type_name(p, defs),
                    required: required.contains(&name.as_str()) && default.is_none(),
                    default,
                    doc: doc.split_whitespace().collect::<Vec<_>>().join(" "),
                });
            }
        }
        self
    }

    /// Appends a parameter documented by hand.
    pub fn param(mut self, p: ParamDoc) -> TypeDoc {
        self.params.push(p);
        self
    }

    /// Sets the ports (nodes).
    pub fn ports(mut self, inputs: &[&str], outputs: &[&str]) -> TypeDoc {
        self.inputs = inputs.iter().map(|s| s.to_string()).collect();
        self.outputs = outputs.iter().map(|s| s.to_string()).collect();
        self
    }

    /// Sets the example table body.
    pub fn example(mut self, toml: impl Into<String>) -> TypeDoc {
        self.example = toml.into();
        self
    }

    /// The parameter names, in order.
    pub fn param_names(&self) -> Vec<&str> {
        self.params.iter().map(|p| p.name.as_str()).collect()
    }

    /// The full text `kaizenflow nodes NAME` prints: summary, ports, and one block per
    /// parameter with its type, default and doc.
    pub fn render(&self, kind: &str, name: &str) -> String {
        let mut s = format!("{name} ({kind}): {}\n", self.summary);
        if !self.inputs.is_empty() || !self.outputs.is_empty() {
            let list = |v: &[String]| {
                if v.is_empty() {
                    "none".to_string()
                } else {
                    v.join(", ")
                }
            };
            let _ = writeln!(
                s,
                "ports: in [{}], out [{}]",
                list(&self.inputs),
                list(&self.outputs)
            );
        }
        if self.params.is_empty() {
            s.push_str("parameters: none\n");
        } else {
            s.push_str("parameters:\n");
        }
        for p in &self.params {
            let when = match (&p.default, p.required) {
                (Some(d), _) => format!(" = {d}"),
                (None, true) => " (required)".to_string(),
                (None, false) => " (optional, no default)".to_string(),
            };
            let _ = writeln!(s, "  {}: {}{when}", p.name, p.ty);
            if !p.doc.is_empty() {
                let _ = writeln!(s, "      {}", p.doc);
            }
        }
        if !self.example.is_empty() {
            let _ = writeln!(s, "example:\n  type = \"{name}\"");
            for line in self.example.lines() {
                let _ = writeln!(s, "  {line}");
            }
        }
        s
    }
}

fn text(v: &Json, key: &str) -> Option<String> {
    v.get(key).and_then(Json::as_str).map(str::to_string)
}

/// Follows a `$ref` into `$defs` (once).
fn resolve<'a>(v: &'a Json, defs: Option<&'a Json>) -> &'a Json {
    match v.get("$ref").and_then(Json::as_str) {
        Some(r) => r
            .rsplit('/')
            .next()
            .and_then(|name| defs.and_then(|d| d.get(name)))
            .unwrap_or(v),
        None => v,
    }
}

/// A schema's type in words.
fn type_name(v: &Json, defs: Option<&Json>) -> String {
    let v = resolve(v, defs);
    if let Some(values) = v.get("enum").and_then(Json::as_array) {
        let names: Vec<String> = values.iter().map(toml_literal).collect();
        return format!("one of {}", names.join(", "));
    }
    for key in ["oneOf", "anyOf"] {
        if let Some(alts) = v.get(key).and_then(Json::as_array) {
            let consts: Vec<String> = alts
                .iter()
                .filter_map(|a| {
                    let a = resolve(a, defs);
                    a.get("const").map(toml_literal).or_else(|| {
                        a.get("enum")
                            .and_then(Json::as_array)
                            .map(|e| e.iter().map(toml_literal).collect::<Vec<_>>().join(", "))
                    })
                })
                .collect();
            if consts.len() == alts.len() {
                return format!("one of {}", consts.join(", "));
            }
            let kinds: Vec<String> = alts
                .iter()
                .filter(|a| a.get("type").and_then(Json::as_str) != Some("null"))
                .map(|a| type_name(a, defs))
                .collect();
            return kinds.join(" or ");
        }
    }
    let ty = match v.get("type") {
        Some(Json::String(t)) => t.clone(),
        Some(Json::Array(ts)) => ts
            .iter()
            .filter_map(Json::as_str)
            .filter(|t| *t != "null")
            .collect::<Vec<_>>()
            .join(" or "),
        _ => "any".to_string(),
    };
    match ty.as_str() {
        "array" => {
            if let Some(items) = v.get("prefixItems").and_then(Json::as_array) {
                let parts: Vec<String> = items.iter().map(|i| type_name(i, defs)).collect();
                format!("[{}]", parts.join(", "))
            } else if let Some(items) = v.get("items") {
                format!("array of {}", type_name(items, defs))
            } else {
                "array".to_string()
            }
        }
        "object" => match v.get("additionalProperties") {
            Some(a) if a.is_object() => format!("table of {}", type_name(a, defs)),
            _ => "table".to_string(),
        },
        _ => ty,
    }
}

/// A JSON value written as TOML.
fn toml_literal(v: &Json) -> String {
    match v {
        Json::Null => "none".to_string(),
        Json::Bool(b) => b.to_string(),
        Json::Number(n) => {
            if let Some(i) = n.as_i64() {
                i.to_string()
            } else if let Some(u) = n.as_u64() {
                u.to_string()
            } else {
                let x = n.as_f64().unwrap_or(f64::NAN);
                toml::Value::Float(x).to_string()
            }
        }
        Json::String(s) => toml::Value::String(s.clone()).to_string(),
        Json::Array(a) => format!(
            "[{}]",
            a.iter().map(toml_literal).collect::<Vec<_>>().join(", ")
        ),
        Json::Object(o) => format!(
            "{{ {} }}",
            o.iter()
                .map(|(k, v)| format!("{k} = {}", toml_literal(v)))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

/// The name in `candidates` closest to `name`, when it is close enough to be what was
/// meant (a typo, a missing prefix): used by every "did you mean" in the project.
pub fn closest<'a>(name: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    let lower = name.to_lowercase();
    let mut best: Option<(usize, &'a str)> = None;
    for c in candidates {
        if c == name {
            continue;
        }
        let cl = c.to_lowercase();
        let d = strsim::damerau_levenshtein(&lower, &cl);
        let close = d <= (name.chars().count() / 3).max(2)
            || cl.ends_with(&format!(".{lower}"))
            || lower.ends_with(&format!(".{cl}"));
        if close && best.is_none_or(|(bd, _)| d < bd) {
            best = Some((d, c));
        }
    }
    best.map(|(_, c)| c)
}

/// ` (did you mean `NAME`?)` for the candidate [`closest`] to `name`, or nothing: the
/// tail every "unknown name" message in the project ends with.
pub fn did_you_mean<'a>(name: &str, candidates: impl IntoIterator<Item = &'a str>) -> String {
    closest(name, candidates)
        .map(|c| format!(" (did you mean `{c}`?)"))
        .unwrap_or_default()
}
