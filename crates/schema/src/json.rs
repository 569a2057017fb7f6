//! JSON Schema: parsing with `serde_json` and Confluent's reading rules.
//!
//! A schema is a JSON object or a boolean. `can_read(writer, reader)` asks
//! whether every document valid under the writer is valid under the
//! reader, keyword by keyword, following Confluent's JSON Schema rules:
//!
//! - `true` or `{}` reads anything; `false` as a writer writes nothing.
//! - `type`: the reader must allow each writer type (`integer` widens to
//!   `number`); narrowing or changing a type is incompatible.
//! - `enum` / `const`: the reader's values must include the writer's.
//! - `maximum`, `exclusiveMaximum`, `maxLength`, `maxItems`,
//!   `maxProperties`: a reader bound must exist in the writer and be no
//!   smaller; the `min...` bounds mirror this. Adding or tightening a bound
//!   is incompatible, removing or loosening it is compatible.
//!   `multipleOf`, `pattern`, `format`, `uniqueItems` may not be added or
//!   changed by the reader.
//! - `required`: a property the reader requires must be required by the
//!   writer (adding a required property is incompatible, removing one is
//!   fine).
//! - `properties` with the content model given by `additionalProperties`
//!   (absent means open): a property both have is compared recursively; a
//!   property only the reader has must accept whatever the writer's
//!   `additionalProperties` allowed (so adding one to a closed writer is
//!   fine, adding a constrained one to an open writer is not); a property
//!   only the writer has must satisfy the reader's `additionalProperties`
//!   (so removing one from a closed reader is incompatible). Closing an
//!   open model is incompatible, opening a closed one is fine.
//! - `items` (one schema) is compared recursively; `definitions`/`$defs`
//!   entries present in both are compared recursively.
//!
//! Not covered: `$ref` is compared as a string, not resolved; `allOf`,
//! `anyOf`, `oneOf`, `not`, `if`/`then`/`else`, `patternProperties`,
//! `dependencies`, tuple `items` and any unknown keyword are incompatible
//! whenever their value differs. Annotations (`title`, `description`,
//! `default`, `examples`, `$comment`, `$schema`, `$id`, `readOnly`,
//! `writeOnly`, `deprecated`) never matter.

use std::collections::{BTreeSet, HashSet};

use serde_json::{Map, Value};

use crate::bounds::check_json_depth;
use crate::references::Reference;
use crate::{MAX_FIELDS, SchemaError};

/// A parsed JSON Schema.
#[derive(Debug, Clone)]
pub(crate) struct JsonSchema {
    value: Value,
}

impl JsonSchema {
    /// The root schema's `title`, which Confluent's JSON Schema serializer
    /// uses as the record name.
    pub(crate) fn record_name(&self) -> Option<String> {
        self.value
            .get("title")
            .and_then(Value::as_str)
            .map(str::to_owned)
    }

    /// Parses `text` and checks that it and each reference is a schema.
    pub(crate) fn parse(text: &str, refs: &[Reference]) -> Result<JsonSchema, SchemaError> {
        let mut fields = 0;
        for r in refs {
            let value = parse_value(&r.text)?;
            fields += count_properties(&value);
        }
        let value = parse_value(text)?;
        fields += count_properties(&value);
        if fields > MAX_FIELDS {
            return Err(SchemaError::TooManyFields {
                count: fields,
                limit: MAX_FIELDS,
            });
        }
        Ok(JsonSchema { value })
    }

    /// Compact JSON with keys sorted at every level.
    pub(crate) fn canonical(&self) -> String {
        sorted_json(&self.value)
    }
}

/// Compact JSON with object keys sorted at every level. `serde_json`'s map
/// sorts today, but a crate elsewhere in the build enabling its
/// `preserve_order` feature would silently change that, so the order is
/// made explicit here. Recursion depth is bounded by the nesting check.
pub(crate) fn sorted_json(value: &Value) -> String {
    fn write(value: &Value, out: &mut String) {
        match value {
            Value::Object(map) => {
                let mut keys: Vec<&String> = map.keys().collect();
                keys.sort();
                out.push('{');
                for (i, key) in keys.into_iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    out.push_str(&Value::String(key.clone()).to_string());
                    out.push(':');
                    if let Some(v) = map.get(key) {
                        write(v, out);
                    }
                }
                out.push('}');
            }
            Value::Array(items) => {
                out.push('[');
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    write(item, out);
                }
                out.push(']');
            }
            scalar => out.push_str(&scalar.to_string()),
        }
    }
    let mut out = String::new();
    write(value, &mut out);
    out
}

fn parse_value(text: &str) -> Result<Value, SchemaError> {
    check_json_depth(text)?;
    let value: Value = serde_json::from_str(text).map_err(|e| SchemaError::InvalidJson {
        reason: e.to_string(),
    })?;
    match value {
        Value::Object(_) | Value::Bool(_) => Ok(value),
        other => Err(SchemaError::InvalidJsonSchema {
            reason: format!(
                "a schema is an object or a boolean, not {}",
                json_kind(&other)
            ),
        }),
    }
}

fn json_kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// Every `properties` entry anywhere in the document. Recursion depth is
/// bounded by the nesting check.
fn count_properties(value: &Value) -> usize {
    match value {
        Value::Object(map) => {
            let own = match map.get("properties") {
                Some(Value::Object(props)) => props.len(),
                _ => 0,
            };
            own + map.values().map(count_properties).sum::<usize>()
        }
        Value::Array(items) => items.iter().map(count_properties).sum(),
        _ => 0,
    }
}

/// Work allowed for one `can_read`, in units of roughly one map entry
/// visited. A closed or partially open content model is compared once per
/// added or removed property, so without a budget a hostile pair of
/// schemas inside the size limit could cost a quadratic walk.
pub(crate) const MAX_COMPARE_STEPS: usize = 1_000_000;

/// What comparing two schema objects costs before their entries are
/// counted: about as much work as visiting this many map entries (a dozen
/// keyword lookups and the path strings).
const OBJECT_STEPS: usize = 16;

/// Why `reader` cannot read every document valid under `writer`; empty
/// when it can.
pub(crate) fn can_read(writer: &JsonSchema, reader: &JsonSchema) -> Vec<String> {
    let mut walk = Walk {
        problems: Vec::new(),
        steps_left: MAX_COMPARE_STEPS,
        exhausted: false,
    };
    walk.compare(&writer.value, &reader.value, "#");
    let mut problems = walk.problems;
    if walk.exhausted {
        problems.push(format!(
            "schemas too complex to compare within {MAX_COMPARE_STEPS} steps"
        ));
    }
    problems
}

/// Keywords that only annotate and never change which documents are valid.
const ANNOTATIONS: &[&str] = &[
    "title",
    "description",
    "default",
    "examples",
    "$comment",
    "$schema",
    "$id",
    "id",
    "readOnly",
    "writeOnly",
    "deprecated",
];

/// Upper bounds: the reader's must exist in the writer and be at least as large.
const MAX_BOUNDS: &[&str] = &[
    "maximum",
    "exclusiveMaximum",
    "maxLength",
    "maxItems",
    "maxProperties",
];

/// Lower bounds: the reader's must exist in the writer and be at most as large.
const MIN_BOUNDS: &[&str] = &[
    "minimum",
    "exclusiveMinimum",
    "minLength",
    "minItems",
    "minProperties",
];

/// Keywords the reader may not add or change.
const EXACT: &[&str] = &["pattern", "format", "const"];

/// Keywords handled by dedicated rules below.
const MODELLED: &[&str] = &[
    "type",
    "enum",
    "required",
    "properties",
    "additionalProperties",
    "items",
    "definitions",
    "$defs",
    "$ref",
    "multipleOf",
    "uniqueItems",
];

/// The schema that accepts anything: an absent `items` or
/// `additionalProperties` means this.
static ANYTHING: Value = Value::Bool(true);

/// `true`, `{}` or an object with annotations only: accepts any document.
fn accepts_anything(schema: &Value) -> bool {
    match schema {
        Value::Bool(b) => *b,
        Value::Object(map) => map.keys().all(|k| ANNOTATIONS.contains(&k.as_str())),
        _ => false,
    }
}

/// One comparison: the problems found so far and the work left.
struct Walk {
    problems: Vec<String>,
    steps_left: usize,
    exhausted: bool,
}

impl Walk {
    fn push(&mut self, problem: String) {
        self.problems.push(problem);
    }

    /// Spends `steps` of the budget; false once it is gone.
    fn charge(&mut self, steps: usize) -> bool {
        match self.steps_left.checked_sub(steps) {
            Some(left) => {
                self.steps_left = left;
                true
            }
            None => {
                self.steps_left = 0;
                self.exhausted = true;
                false
            }
        }
    }

    /// Whether comparing `writer` with `reader` finds any problem, without
    /// reporting them (the caller reports one summary instead).
    fn finds_problems(&mut self, writer: &Value, reader: &Value, path: &str) -> bool {
        let saved = std::mem::take(&mut self.problems);
        self.compare(writer, reader, path);
        let found = !self.problems.is_empty();
        self.problems = saved;
        found || self.exhausted
    }

    fn compare(&mut self, writer: &Value, reader: &Value, path: &str) {
        if !self.charge(1) {
            return;
        }
        if accepts_anything(reader) || *writer == Value::Bool(false) {
            return;
        }
        match (writer, reader) {
            (_, Value::Bool(false)) => self.push(format!("{path}: reader accepts nothing")),
            (Value::Object(w), Value::Object(r)) => self.compare_objects(w, r, path),
            // The writer accepts anything (`true`) and the reader constrains:
            // compare with an empty writer so each reader keyword reports.
            (_, Value::Object(r)) => self.compare_objects(&Map::new(), r, path),
            _ => self.push(format!("{path}: schema is not an object or a boolean")),
        }
    }

    fn compare_objects(&mut self, w: &Map<String, Value>, r: &Map<String, Value>, path: &str) {
        if !self.charge(OBJECT_STEPS + w.len() + r.len()) {
            return;
        }
        self.compare_type(w, r, path);
        self.compare_enum(w, r, path);
        for key in MAX_BOUNDS {
            self.compare_bound(w, r, key, path, |wv, rv| wv <= rv);
        }
        for key in MIN_BOUNDS {
            self.compare_bound(w, r, key, path, |wv, rv| wv >= rv);
        }
        for key in EXACT {
            if let Some(rv) = r.get(*key)
                && w.get(*key) != Some(rv)
            {
                self.push(format!("{path}: reader added or changed {key:?}"));
            }
        }
        if let Some(rv) = r.get("multipleOf") {
            let divides = w.get("multipleOf") == Some(rv)
                || match (w.get("multipleOf").and_then(Value::as_f64), rv.as_f64()) {
                    (Some(wv), Some(rv)) => rv != 0.0 && (wv / rv).fract() == 0.0,
                    _ => false,
                };
            if !divides {
                self.push(format!("{path}: reader added or changed \"multipleOf\""));
            }
        }
        if r.get("uniqueItems") == Some(&Value::Bool(true))
            && w.get("uniqueItems") != Some(&Value::Bool(true))
        {
            self.push(format!("{path}: reader added \"uniqueItems\""));
        }
        if w.get("$ref") != r.get("$ref") {
            self.push(format!("{path}: \"$ref\" changed"));
        }
        self.compare_required(w, r, path);
        self.compare_properties(w, r, path);
        self.compare_items(w, r, path);
        for key in ["definitions", "$defs"] {
            if let (Some(Value::Object(wd)), Some(Value::Object(rd))) = (w.get(key), r.get(key)) {
                for (name, wv) in wd {
                    if let Some(rv) = rd.get(name) {
                        self.compare(wv, rv, &format!("{path}/{key}/{name}"));
                    }
                }
            }
        }
        let unmodelled: BTreeSet<&str> = w
            .keys()
            .chain(r.keys())
            .map(String::as_str)
            .filter(|k| {
                !ANNOTATIONS.contains(k)
                    && !MAX_BOUNDS.contains(k)
                    && !MIN_BOUNDS.contains(k)
                    && !EXACT.contains(k)
                    && !MODELLED.contains(k)
            })
            .collect();
        for key in unmodelled {
            if w.get(key) != r.get(key) {
                self.push(format!(
                    "{path}: change to {key:?} is not analysed, so it is refused"
                ));
            }
        }
    }

    fn compare_type(&mut self, w: &Map<String, Value>, r: &Map<String, Value>, path: &str) {
        let Some(reader_types) = types(r) else {
            return;
        };
        let allowed = |t: &str| {
            reader_types.contains(&t) || (t == "integer" && reader_types.contains(&"number"))
        };
        match types(w) {
            None => self.push(format!(
                "{path}: reader added a type restriction {reader_types:?}"
            )),
            Some(writer_types) => {
                for t in writer_types {
                    if !allowed(t) {
                        self.push(format!(
                            "{path}: type {t:?} is narrowed or changed to {reader_types:?}"
                        ));
                    }
                }
            }
        }
    }

    fn compare_enum(&mut self, w: &Map<String, Value>, r: &Map<String, Value>, path: &str) {
        let Some(Value::Array(reader_values)) = r.get("enum") else {
            return;
        };
        match w.get("enum") {
            Some(Value::Array(writer_values)) => {
                if !self.charge(reader_values.len() + writer_values.len()) {
                    return;
                }
                // Compared through their JSON text in a set: a hostile enum
                // of many thousand values must not cost a quadratic scan.
                let reader_set: HashSet<String> = reader_values.iter().map(sorted_json).collect();
                for v in writer_values {
                    if !reader_set.contains(&sorted_json(v)) {
                        self.push(format!("{path}: enum value {v} was removed"));
                    }
                }
            }
            _ => self.push(format!("{path}: reader added an enum")),
        }
    }

    fn compare_bound(
        &mut self,
        w: &Map<String, Value>,
        r: &Map<String, Value>,
        key: &str,
        path: &str,
        within: fn(f64, f64) -> bool,
    ) {
        let Some(reader_bound) = r.get(key) else {
            return;
        };
        let Some(rv) = reader_bound.as_f64() else {
            // Draft 4 spells `exclusiveMaximum`/`exclusiveMinimum` as booleans
            // that modify `maximum`/`minimum`; `false` changes nothing.
            if *reader_bound != Value::Bool(false) && w.get(key) != Some(reader_bound) {
                self.push(format!("{path}: reader added or changed {key:?}"));
            }
            return;
        };
        match w.get(key).and_then(Value::as_f64) {
            Some(wv) if within(wv, rv) => {}
            Some(wv) => self.push(format!("{path}: {key:?} tightened from {wv} to {rv}")),
            None => self.push(format!("{path}: reader added {key:?} {rv}")),
        }
    }

    fn compare_required(&mut self, w: &Map<String, Value>, r: &Map<String, Value>, path: &str) {
        let names = |m: &Map<String, Value>| -> BTreeSet<String> {
            match m.get("required") {
                Some(Value::Array(rs)) => rs
                    .iter()
                    .filter_map(Value::as_str)
                    .map(str::to_owned)
                    .collect(),
                _ => BTreeSet::new(),
            }
        };
        let (writer_required, reader_required) = (names(w), names(r));
        if !self.charge(writer_required.len() + reader_required.len()) {
            return;
        }
        for name in reader_required.difference(&writer_required) {
            self.push(format!("{path}: required property {name:?} was added"));
        }
    }

    fn compare_properties(&mut self, w: &Map<String, Value>, r: &Map<String, Value>, path: &str) {
        let empty = Map::new();
        let (wp, rp) = (properties(w, &empty), properties(r, &empty));
        let wa = w.get("additionalProperties").unwrap_or(&ANYTHING);
        let ra = r.get("additionalProperties").unwrap_or(&ANYTHING);
        if !self.charge(wp.len() + rp.len()) {
            return;
        }
        for (name, rv) in rp {
            let at = format!("{path}/properties/{name}");
            match wp.get(name) {
                Some(wv) => self.compare(wv, rv, &at),
                None if self.finds_problems(wa, rv, &at) => self.push(format!(
                    "{at}: property added where the writer's content model allowed other values"
                )),
                None => {}
            }
        }
        for (name, wv) in wp {
            if rp.contains_key(name) {
                continue;
            }
            let at = format!("{path}/properties/{name}");
            if self.finds_problems(wv, ra, &at) {
                self.push(format!(
                    "{at}: property removed where the reader's content model does not allow it"
                ));
            }
        }
        if (w.contains_key("additionalProperties") || r.contains_key("additionalProperties"))
            && self.finds_problems(wa, ra, &format!("{path}/additionalProperties"))
        {
            self.push(format!(
                "{path}: additionalProperties narrowed (content model closed)"
            ));
        }
    }

    fn compare_items(&mut self, w: &Map<String, Value>, r: &Map<String, Value>, path: &str) {
        let (wi, ri) = (w.get("items"), r.get("items"));
        if wi == ri {
            return;
        }
        let at = format!("{path}/items");
        match (wi, ri) {
            (Some(Value::Array(_)), _) | (_, Some(Value::Array(_))) => self.push(format!(
                "{at}: change to tuple \"items\" is not analysed, so it is refused"
            )),
            _ => self.compare(wi.unwrap_or(&ANYTHING), ri.unwrap_or(&ANYTHING), &at),
        }
    }
}

/// The set of types a schema object allows; `None` means any type.
fn types(schema: &Map<String, Value>) -> Option<Vec<&str>> {
    match schema.get("type")? {
        Value::String(t) => Some(vec![t.as_str()]),
        Value::Array(ts) => Some(ts.iter().filter_map(Value::as_str).collect()),
        _ => Some(Vec::new()),
    }
}

/// The `properties` map of a schema, or `empty`.
fn properties<'a>(
    schema: &'a Map<String, Value>,
    empty: &'a Map<String, Value>,
) -> &'a Map<String, Value> {
    match schema.get("properties") {
        Some(Value::Object(p)) => p,
        _ => empty,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sorted_json_sorts_keys_at_every_level() {
        let value: Value =
            serde_json::from_str(r#"{"b":{"z":1,"a":[{"y":2,"x":"\"q"}]},"a":null}"#)
                .unwrap_or(Value::Null);
        assert_eq!(
            sorted_json(&value),
            r#"{"a":null,"b":{"a":[{"x":"\"q","y":2}],"z":1}}"#
        );
    }
}
