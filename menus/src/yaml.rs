//! The one place YAML is read: a tree of nodes that remember their line and column, and a
//! walker that checks shapes while collecting every error instead of stopping at the first.
//!
//! Serde structs stop at the first unknown field, wrong type or duplicate key. Operators
//! want all of them at once, so the text is read into [`Node`]s (duplicate keys are kept,
//! via `DuplicateKeyPolicy::PassThrough`) and the config model is built by [`Walker`], which
//! records each problem with its place and YAML path and goes on.

use crate::error::{CompileError, ErrorKind, Loc, closest};
use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_saphyr::Spanned;
use std::fmt;

/// A YAML value and where it starts.
#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    /// Its place in the file.
    pub at: Loc,
    /// The value.
    pub value: Value,
}

/// The kinds of YAML value the config uses.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// `null`, `~` or nothing.
    Null,
    /// `true` / `false`.
    Bool(bool),
    /// An integer.
    Int(i64),
    /// A float.
    Float(f64),
    /// A string.
    Str(String),
    /// A sequence.
    Seq(Vec<Node>),
    /// A mapping, in file order, duplicates included.
    Map(Vec<(Node, Node)>),
}

impl Value {
    pub(crate) fn kind(&self) -> &'static str {
        match self {
            Value::Null => "nothing",
            Value::Bool(_) => "a boolean",
            Value::Int(_) => "an integer",
            Value::Float(_) => "a number",
            Value::Str(_) => "a string",
            Value::Seq(_) => "a list",
            Value::Map(_) => "a mapping",
        }
    }
}

impl<'de> Deserialize<'de> for Node {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Node, D::Error> {
        let s = Spanned::<Value>::deserialize(d)?;
        Ok(Node {
            at: Loc {
                line: s.referenced.line(),
                column: s.referenced.column(),
            },
            value: s.value,
        })
    }
}

impl<'de> Deserialize<'de> for Value {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Value, D::Error> {
        d.deserialize_any(ValueVisitor)
    }
}

struct ValueVisitor;

impl<'de> Visitor<'de> for ValueVisitor {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a YAML value")
    }
    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        Value::deserialize(d)
    }
    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::Int(v))
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Value, E> {
        i64::try_from(v)
            .map(Value::Int)
            .map_err(|_| E::custom("integer too large"))
    }
    fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
        Ok(Value::Float(v))
    }
    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::Str(v.to_string()))
    }
    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::Str(v))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut out = Vec::new();
        while let Some(n) = seq.next_element::<Node>()? {
            out.push(n);
        }
        Ok(Value::Seq(out))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut out = Vec::new();
        while let Some((k, v)) = map.next_entry::<Node, Node>()? {
            out.push((k, v));
        }
        Ok(Value::Map(out))
    }
}

/// Read YAML text into a node tree. Syntax errors come back with their place.
pub fn load_str(text: &str) -> Result<Node, Box<CompileError>> {
    let mut options = serde_saphyr::Options::default();
    options.duplicate_keys = serde_saphyr::DuplicateKeyPolicy::PassThrough;
    // YAML 1.2 booleans only: `no` is Norwegian and `n` a variable name, not false.
    options.strict_booleans = true;
    // A phone number's leading zero is part of it: 0612345678 stays text.
    options.leading_zero_numbers_as_strings = true;
    serde_saphyr::from_str_with_options::<Node>(text, options).map_err(|e| {
        let at = e.location().map(|l| Loc {
            line: l.line(),
            column: l.column(),
        });
        // The first line of serde-saphyr's message is the summary; the rest is a snippet.
        let text = e.to_string();
        let summary = text.lines().next().unwrap_or_default();
        let summary = summary.strip_prefix("error: ").unwrap_or(summary);
        let summary = match summary.split_once(": ") {
            Some((head, rest)) if head.starts_with("line ") => rest,
            _ => summary,
        };
        Box::new(CompileError {
            file: None,
            at,
            path: String::new(),
            kind: ErrorKind::Yaml(summary.to_string()),
        })
    })
}

/// Checks shapes and collects errors.
#[derive(Debug, Default)]
pub struct Walker {
    /// Every error so far.
    pub errors: Vec<CompileError>,
    /// The included file being read (`None`: the main file); errors are stamped with it.
    pub file: Option<String>,
}

/// The entries of a mapping that passed the shape check, by key.
pub struct Fields<'a> {
    entries: Vec<(&'a str, Loc, &'a Node)>,
}

impl<'a> Fields<'a> {
    /// The value of `key`, if present (the first, when a duplicate was reported).
    pub fn get(&self, key: &str) -> Option<&'a Node> {
        self.entries
            .iter()
            .find(|(k, _, _)| *k == key)
            .map(|(_, _, n)| *n)
    }

    /// Every entry, in file order, duplicates removed.
    pub fn iter(&self) -> impl Iterator<Item = (&'a str, &'a Node)> + '_ {
        self.entries.iter().map(|(k, _, n)| (*k, *n))
    }
}

impl Walker {
    /// Record an error.
    pub fn error(&mut self, at: Loc, path: &str, kind: ErrorKind) {
        self.errors.push(CompileError {
            file: self.file.clone(),
            at: Some(at),
            path: path.to_string(),
            kind,
        });
    }

    fn wrong_type(&mut self, node: &Node, path: &str, expected: &'static str) {
        self.error(
            node.at,
            path,
            ErrorKind::Type {
                expected,
                found: node.value.kind(),
            },
        );
    }

    /// A mapping with string keys. With `allowed`, other keys are errors (with a suggestion);
    /// duplicate keys are always errors. Returns `None` (after recording) if not a mapping.
    pub fn map<'a>(
        &mut self,
        node: &'a Node,
        path: &str,
        allowed: Option<&[&str]>,
    ) -> Option<Fields<'a>> {
        let Value::Map(pairs) = &node.value else {
            self.wrong_type(node, path, "a mapping");
            return None;
        };
        let mut entries: Vec<(&'a str, Loc, &'a Node)> = Vec::new();
        for (k, v) in pairs {
            let key = match &k.value {
                Value::Str(s) => s.as_str(),
                _ => {
                    self.error(
                        k.at,
                        path,
                        ErrorKind::Type {
                            expected: "a text key",
                            found: k.value.kind(),
                        },
                    );
                    continue;
                }
            };
            let here = join(path, key);
            if let Some(&(_, first, _)) = entries.iter().find(|(e, _, _)| *e == key) {
                self.error(k.at, &here, ErrorKind::Duplicate { first });
                continue;
            }
            if let Some(allowed) = allowed
                && !allowed.contains(&key)
            {
                let hint = synonym(key, allowed).or_else(|| closest(key, allowed.iter().copied()));
                self.error(
                    k.at,
                    &here,
                    ErrorKind::UnknownField {
                        name: key.to_string(),
                        hint,
                        allowed: allowed.join(", "),
                    },
                );
                continue;
            }
            entries.push((key, k.at, v));
        }
        Some(Fields { entries })
    }

    /// A string.
    pub fn string(&mut self, node: &Node, path: &str) -> Option<String> {
        match &node.value {
            Value::Str(s) => Some(s.clone()),
            _ => {
                self.wrong_type(node, path, "a string");
                None
            }
        }
    }

    /// A number (integer or float).
    pub fn number(&mut self, node: &Node, path: &str) -> Option<f64> {
        match node.value {
            Value::Int(i) => Some(i as f64),
            Value::Float(f) => Some(f),
            _ => {
                self.wrong_type(node, path, "a number");
                None
            }
        }
    }

    /// A length of time in seconds: a number, or a string with units (`5s`, `1m30s`,
    /// `500ms`; see [`crate::duration`]).
    pub fn seconds(&mut self, node: &Node, path: &str) -> Option<f64> {
        match &node.value {
            Value::Int(i) => Some(*i as f64),
            Value::Float(f) => Some(*f),
            Value::Str(s) => match crate::duration::parse(s) {
                Ok(d) => Some(d.as_secs_f64()),
                Err(_) => {
                    self.wrong_type(node, path, "a number of seconds or a duration (5s, 1m30s)");
                    None
                }
            },
            _ => {
                self.wrong_type(node, path, "a number of seconds or a duration (5s, 1m30s)");
                None
            }
        }
    }

    /// A whole number from 0 up.
    pub fn count(&mut self, node: &Node, path: &str) -> Option<u32> {
        match node.value {
            Value::Int(i) if (0..=i64::from(u32::MAX)).contains(&i) => Some(i as u32),
            _ => {
                self.wrong_type(node, path, "a whole number from 0");
                None
            }
        }
    }

    /// A boolean.
    pub fn boolean(&mut self, node: &Node, path: &str) -> Option<bool> {
        match node.value {
            Value::Bool(b) => Some(b),
            _ => {
                self.wrong_type(node, path, "true or false");
                None
            }
        }
    }

    /// One name or a list of names (prompts played in order).
    pub fn names(&mut self, node: &Node, path: &str) -> Vec<(String, Loc)> {
        match &node.value {
            Value::Str(s) => vec![(s.clone(), node.at)],
            Value::Seq(items) => items
                .iter()
                .enumerate()
                .filter_map(|(i, n)| self.string(n, &format!("{path}.{i}")).map(|s| (s, n.at)))
                .collect(),
            Value::Null => Vec::new(),
            _ => {
                self.wrong_type(node, path, "a name or a list of names");
                Vec::new()
            }
        }
    }
}

/// `a.b` path join.
pub fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_string()
    } else {
        format!("{path}.{key}")
    }
}

/// Words people write for a field by another name (`retry:` for `repeat:`), when that
/// field is allowed here: spelling distance alone does not find them.
fn synonym(key: &str, allowed: &[&str]) -> Option<String> {
    const SYNONYMS: &[(&str, &str)] = &[
        ("retry", "repeat"),
        ("replay", "repeat"),
        ("again", "repeat"),
        ("menu", "goto"),
        ("jump", "goto"),
        ("go", "goto"),
        ("hang_up", "hangup"),
        ("end", "hangup"),
        ("say", "play"),
        ("mailbox", "voicemail"),
        ("forward", "transfer"),
        ("wait", "timeout"),
    ];
    SYNONYMS
        .iter()
        .find(|(word, field)| *word == key && allowed.contains(field))
        .map(|(_, field)| field.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nodes_keep_places_and_duplicates() {
        let n = load_str("a: 1\nb:\n  - x\n  - 2.5\na: 3\n").unwrap();
        let Value::Map(pairs) = &n.value else {
            panic!()
        };
        assert_eq!(
            pairs.len(),
            3,
            "the duplicate is kept for the walker to report"
        );
        assert_eq!(pairs[1].1.at, Loc { line: 3, column: 3 });
        let mut w = Walker::default();
        let f = w.map(&n, "", Some(&["a", "b"])).unwrap();
        assert_eq!(f.get("a").unwrap().value, Value::Int(1));
        assert_eq!(w.errors.len(), 1);
        assert_eq!(
            w.errors[0].to_string(),
            "5:1: a: duplicate key (first at line 1, column 1)"
        );
    }

    #[test]
    fn unknown_fields_and_types_are_all_reported() {
        let n = load_str("timout: 5\nretries: many\nprompt: [a, 3]\n").unwrap();
        let mut w = Walker::default();
        let f = w
            .map(&n, "m", Some(&["timeout", "retries", "prompt"]))
            .unwrap();
        let _ = w.count(f.get("retries").unwrap(), "m.retries");
        let names = w.names(f.get("prompt").unwrap(), "m.prompt");
        assert_eq!(names.len(), 1);
        let text: Vec<String> = w.errors.iter().map(ToString::to_string).collect();
        assert_eq!(
            text,
            [
                "1:1: m.timout: unknown field 'timout' (did you mean 'timeout'?; expected one of timeout, retries, prompt)",
                "2:10: m.retries: expected a whole number from 0, found a string",
                "3:13: m.prompt.1: expected a string, found an integer",
            ]
        );
    }

    #[test]
    fn yaml_1_2_scalars_keep_norwegian_and_leading_zeros() {
        let n = load_str("a: no\nb: n\nc: yes\nd: true\ne: 0612345678\nf: 42\n").unwrap();
        let Value::Map(pairs) = &n.value else {
            panic!()
        };
        let values: Vec<&Value> = pairs.iter().map(|(_, v)| &v.value).collect();
        assert_eq!(
            values,
            [
                &Value::Str("no".into()),
                &Value::Str("n".into()),
                &Value::Str("yes".into()),
                &Value::Bool(true),
                &Value::Str("0612345678".into()),
                &Value::Int(42),
            ]
        );
    }

    #[test]
    fn syntax_errors_have_a_place() {
        let e = load_str("a: [1, 2\nb: 3\n").unwrap_err();
        assert!(e.at.is_some(), "{e}");
    }
}
