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

    /// Compact JSON; `serde_json`'s map is ordered by key, so keys come out
    /// sorted at every level.
    pub(crate) fn canonical(&self) -> String {
        self.value.to_string()
    }
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

/// Why `reader` cannot read every document valid under `writer`; empty
/// when it can.
pub(crate) fn can_read(writer: &JsonSchema, reader: &JsonSchema) -> Vec<String> {
    let mut problems = Vec::new();
    compare(&writer.value, &reader.value, "#", &mut problems);
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

/// `true`, `{}` or an object with annotations only: accepts any document.
fn accepts_anything(schema: &Value) -> bool {
    match schema {
        Value::Bool(b) => *b,
        Value::Object(map) => map.keys().all(|k| ANNOTATIONS.contains(&k.as_str())),
        _ => false,
    }
}

fn compare(writer: &Value, reader: &Value, path: &str, out: &mut Vec<String>) {
    if writer == reader || accepts_anything(reader) || *writer == Value::Bool(false) {
        return;
    }
    let (w, r) = match (writer, reader) {
        (Value::Object(w), Value::Object(r)) => (w, r),
        (_, Value::Bool(false)) => {
            out.push(format!("{path}: reader accepts nothing"));
            return;
        }
        // The writer accepts anything (`true`), the reader constrains: treat
        // the writer as the empty object so each reader keyword reports.
        (_, Value::Object(r)) => {
            compare_objects(&Map::new(), r, path, out);
            return;
        }
        _ => {
            out.push(format!("{path}: schema is not an object or a boolean"));
            return;
        }
    };
    compare_objects(w, r, path, out);
}

fn compare_objects(
    w: &Map<String, Value>,
    r: &Map<String, Value>,
    path: &str,
    out: &mut Vec<String>,
) {
    compare_type(w, r, path, out);
    compare_enum(w, r, path, out);
    for key in MAX_BOUNDS {
        compare_bound(w, r, key, path, out, |wv, rv| wv <= rv);
    }
    for key in MIN_BOUNDS {
        compare_bound(w, r, key, path, out, |wv, rv| wv >= rv);
    }
    for key in EXACT {
        if let Some(rv) = r.get(*key)
            && w.get(*key) != Some(rv)
        {
            out.push(format!("{path}: reader added or changed {key:?}"));
        }
    }
    if let Some(rv) = r.get("multipleOf").and_then(Value::as_f64) {
        let ok = w
            .get("multipleOf")
            .and_then(Value::as_f64)
            .is_some_and(|wv| rv != 0.0 && (wv / rv).fract() == 0.0);
        if !ok {
            out.push(format!("{path}: reader added or changed \"multipleOf\""));
        }
    }
    if r.get("uniqueItems") == Some(&Value::Bool(true))
        && w.get("uniqueItems") != Some(&Value::Bool(true))
    {
        out.push(format!("{path}: reader added \"uniqueItems\""));
    }
    if w.get("$ref") != r.get("$ref") {
        out.push(format!("{path}: \"$ref\" changed"));
    }
    compare_required(w, r, path, out);
    compare_properties(w, r, path, out);
    compare_items(w, r, path, out);
    for key in ["definitions", "$defs"] {
        if let (Some(Value::Object(wd)), Some(Value::Object(rd))) = (w.get(key), r.get(key)) {
            for (name, wv) in wd {
                if let Some(rv) = rd.get(name) {
                    compare(wv, rv, &format!("{path}/{key}/{name}"), out);
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
            out.push(format!(
                "{path}: change to {key:?} is not analysed, so it is refused"
            ));
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

fn compare_type(w: &Map<String, Value>, r: &Map<String, Value>, path: &str, out: &mut Vec<String>) {
    let Some(reader_types) = types(r) else {
        return;
    };
    let allowed =
        |t: &str| reader_types.contains(&t) || (t == "integer" && reader_types.contains(&"number"));
    match types(w) {
        None => out.push(format!(
            "{path}: reader added a type restriction {reader_types:?}"
        )),
        Some(writer_types) => {
            for t in writer_types {
                if !allowed(t) {
                    out.push(format!(
                        "{path}: type {t:?} is narrowed or changed to {reader_types:?}"
                    ));
                }
            }
        }
    }
}

fn compare_enum(w: &Map<String, Value>, r: &Map<String, Value>, path: &str, out: &mut Vec<String>) {
    let Some(Value::Array(reader_values)) = r.get("enum") else {
        return;
    };
    match w.get("enum") {
        Some(Value::Array(writer_values)) => {
            // Compared through their JSON text in a set: a hostile enum of
            // many thousand values must not cost a quadratic scan.
            let reader_set: HashSet<String> = reader_values.iter().map(Value::to_string).collect();
            for v in writer_values {
                if !reader_set.contains(&v.to_string()) {
                    out.push(format!("{path}: enum value {v} was removed"));
                }
            }
        }
        _ => out.push(format!("{path}: reader added an enum")),
    }
}

fn compare_bound(
    w: &Map<String, Value>,
    r: &Map<String, Value>,
    key: &str,
    path: &str,
    out: &mut Vec<String>,
    within: fn(f64, f64) -> bool,
) {
    let Some(rv) = r.get(key).and_then(Value::as_f64) else {
        return;
    };
    match w.get(key).and_then(Value::as_f64) {
        Some(wv) if within(wv, rv) => {}
        Some(wv) => out.push(format!("{path}: {key:?} tightened from {wv} to {rv}")),
        None => out.push(format!("{path}: reader added {key:?} {rv}")),
    }
}

fn compare_required(
    w: &Map<String, Value>,
    r: &Map<String, Value>,
    path: &str,
    out: &mut Vec<String>,
) {
    let names = |m: &Map<String, Value>| -> Vec<String> {
        match m.get("required") {
            Some(Value::Array(rs)) => rs
                .iter()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect(),
            _ => Vec::new(),
        }
    };
    let writer_required = names(w);
    for name in names(r) {
        if !writer_required.contains(&name) {
            out.push(format!("{path}: required property {name:?} was added"));
        }
    }
}

/// `additionalProperties` as a schema: absent means `true` (open).
fn additional(schema: &Map<String, Value>) -> Value {
    schema
        .get("additionalProperties")
        .cloned()
        .unwrap_or(Value::Bool(true))
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

fn compare_properties(
    w: &Map<String, Value>,
    r: &Map<String, Value>,
    path: &str,
    out: &mut Vec<String>,
) {
    let empty = Map::new();
    let (wp, rp) = (properties(w, &empty), properties(r, &empty));
    let (wa, ra) = (additional(w), additional(r));
    for (name, rv) in rp {
        let at = format!("{path}/properties/{name}");
        match wp.get(name) {
            Some(wv) => compare(wv, rv, &at, out),
            None => {
                let mut inner = Vec::new();
                compare(&wa, rv, &at, &mut inner);
                if !inner.is_empty() {
                    out.push(format!(
                        "{at}: property added where the writer's content model allowed other values"
                    ));
                }
            }
        }
    }
    for (name, wv) in wp {
        if !rp.contains_key(name) {
            let at = format!("{path}/properties/{name}");
            let mut inner = Vec::new();
            compare(wv, &ra, &at, &mut inner);
            if !inner.is_empty() {
                out.push(format!(
                    "{at}: property removed where the reader's content model does not allow it"
                ));
            }
        }
    }
    if w.contains_key("additionalProperties") || r.contains_key("additionalProperties") {
        let mut inner = Vec::new();
        compare(
            &wa,
            &ra,
            &format!("{path}/additionalProperties"),
            &mut inner,
        );
        if !inner.is_empty() {
            out.push(format!(
                "{path}: additionalProperties narrowed (content model closed)"
            ));
            out.extend(inner);
        }
    }
}

fn compare_items(
    w: &Map<String, Value>,
    r: &Map<String, Value>,
    path: &str,
    out: &mut Vec<String>,
) {
    let (wi, ri) = (w.get("items"), r.get("items"));
    if wi == ri {
        return;
    }
    let at = format!("{path}/items");
    match (wi, ri) {
        (Some(Value::Array(_)), _) | (_, Some(Value::Array(_))) => {
            out.push(format!(
                "{at}: change to tuple \"items\" is not analysed, so it is refused"
            ));
        }
        _ => {
            let any = Value::Bool(true);
            compare(wi.unwrap_or(&any), ri.unwrap_or(&any), &at, out);
        }
    }
}
