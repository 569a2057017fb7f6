//! Avro: parsing with `apache-avro` and reading rules from Avro's schema
//! resolution.
//!
//! A reader can read a writer's data when `apache-avro`'s
//! `SchemaCompatibility::can_read` finds the pair fully compatible. Its
//! "partial" verdict (some union branches or enum symbols of the writer
//! are missing from the reader, so some data would fail) counts as
//! incompatible, as in Confluent. The classic cases are pinned by the
//! table in `tests/avro_compat.rs`: a field added without a default,
//! numeric promotions, enum symbols, union branches, field aliases,
//! recursive types.

use apache_avro::Schema;
use std::collections::{HashMap, HashSet};

use apache_avro::schema::{Alias, Name, RecordSchema, UnionSchema};
use apache_avro::schema_compatibility::{Compatibility, SchemaCompatibility};

use crate::bounds::check_json_depth;
use crate::json::sorted_json;
use crate::references::Reference;
use crate::{MAX_DEFINITIONS, MAX_FIELDS, MAX_UNION_BRANCHES, SchemaError};

/// A parsed Avro schema. Named types taken from references appear in it as
/// references by name.
#[derive(Debug, Clone)]
pub(crate) struct AvroSchema {
    schema: Schema,
    /// The schemas its references define, for decoding and encoding data.
    referenced: Vec<Schema>,
}

impl AvroSchema {
    /// The full name of a named schema (record, enum, fixed); `None` for
    /// the others. RecordNameStrategy names subjects after it.
    pub(crate) fn record_name(&self) -> Option<String> {
        match &self.schema {
            Schema::Record(r) => Some(r.name.fullname(None)),
            Schema::Enum(e) => Some(e.name.fullname(None)),
            Schema::Fixed(f) => Some(f.name.fullname(None)),
            _ => None,
        }
    }

    /// Parses `text`, whose references (dependencies first) define named
    /// types it may use.
    pub(crate) fn parse(text: &str, refs: &[Reference]) -> Result<AvroSchema, SchemaError> {
        check_json_depth(text)?;
        for r in refs {
            check_json_depth(&r.text)?;
        }
        // Parse as JSON first, so a syntax error is reported as such and not
        // as an Avro error.
        serde_json::from_str::<serde_json::Value>(text).map_err(|e| SchemaError::InvalidJson {
            reason: e.to_string(),
        })?;
        let invalid = |e: apache_avro::Error| SchemaError::InvalidAvro {
            reason: e.to_string(),
        };
        let (schema, referenced) = if refs.is_empty() {
            (Schema::parse_str(text).map_err(invalid)?, Vec::new())
        } else {
            Schema::parse_str_with_list(text, refs.iter().map(|r| r.text.as_str()))
                .map_err(invalid)?
        };
        let mut counts = Counts::default();
        for s in referenced.iter().chain(std::iter::once(&schema)) {
            counts.add(s);
        }
        if counts.fields > MAX_FIELDS {
            return Err(SchemaError::TooManyFields {
                count: counts.fields,
                limit: MAX_FIELDS,
            });
        }
        if counts.widest_union > MAX_UNION_BRANCHES {
            return Err(SchemaError::TooManyUnionBranches {
                count: counts.widest_union,
                limit: MAX_UNION_BRANCHES,
            });
        }
        if counts.definitions > MAX_DEFINITIONS {
            return Err(SchemaError::TooManyDefinitions {
                count: counts.definitions,
                limit: MAX_DEFINITIONS,
            });
        }
        Ok(AvroSchema { schema, referenced })
    }

    /// The registry's identity form: `apache-avro`'s JSON serialisation
    /// with sorted keys. Serialising a parsed schema cannot fail; should it
    /// ever, the Parsing Canonical Form is still a faithful identity.
    pub(crate) fn canonical(&self) -> String {
        serde_json::to_value(&self.schema)
            .map(|v| sorted_json(&v))
            .unwrap_or_else(|_| self.schema.canonical_form())
    }

    /// The parsed schema.
    pub(crate) fn schema(&self) -> &Schema {
        &self.schema
    }

    /// The schemas its references define.
    pub(crate) fn referenced(&self) -> &[Schema] {
        &self.referenced
    }

    /// Avro's Parsing Canonical Form.
    pub(crate) fn parsing_canonical_form(&self) -> String {
        self.schema.canonical_form()
    }
}

/// Fields and named types in a schema tree. Named types used a second time
/// appear as references, so the walk is linear in the text, and its depth
/// is bounded by the nesting check that ran before parsing.
#[derive(Default)]
struct Counts {
    fields: usize,
    definitions: usize,
    widest_union: usize,
}

impl Counts {
    fn add(&mut self, schema: &Schema) {
        match schema {
            Schema::Record(RecordSchema { fields, .. }) => {
                self.definitions += 1;
                self.fields += fields.len();
                for field in fields {
                    self.add(&field.schema);
                }
            }
            Schema::Enum(_) | Schema::Fixed(_) => self.definitions += 1,
            Schema::Array(a) => self.add(&a.items),
            Schema::Map(m) => self.add(&m.types),
            Schema::Union(union) => {
                self.widest_union = self.widest_union.max(union.variants().len());
                for variant in union.variants() {
                    self.add(variant);
                }
            }
            _ => {}
        }
    }
}

/// Why `reader` cannot read data written with `writer`; empty when it can.
pub(crate) fn can_read(writer: &AvroSchema, reader: &AvroSchema) -> Vec<String> {
    let renamed = writer_named_as_reader(&writer.schema, &reader.schema);
    let writer_schema = renamed.as_ref().unwrap_or(&writer.schema);
    match SchemaCompatibility::can_read(writer_schema, &reader.schema) {
        Ok(Compatibility::Full) => Vec::new(),
        Ok(Compatibility::Partial) => vec![
            "reader lacks some union branches or enum symbols of the writer (and has no enum default)"
                .to_owned(),
        ],
        Err(e) => vec![e.to_string()],
    }
}

/// The writer with each named type that the reader knows only through an
/// alias renamed to the reader's name, or `None` when nothing needs a new
/// name. Avro resolution matches a writer's record, enum or fixed to a
/// reader's type of the same name or with that name among its aliases;
/// `apache-avro`'s checker looks at names only, so the aliases are applied
/// here first.
fn writer_named_as_reader(writer: &Schema, reader: &Schema) -> Option<Schema> {
    let mut reader_names = HashSet::new();
    let mut by_alias: HashMap<String, Name> = HashMap::new();
    collect_reader_names(reader, &mut reader_names, &mut by_alias);
    if by_alias.is_empty() {
        return None;
    }
    let mut renamed = writer.clone();
    let mut changed = false;
    rename(&mut renamed, &reader_names, &by_alias, &mut changed);
    changed.then_some(renamed)
}

/// Full names of the reader's named types, and each alias's full name
/// mapped to the type that declares it. Depth is bounded by the nesting
/// check.
fn collect_reader_names(
    schema: &Schema,
    names: &mut HashSet<String>,
    by_alias: &mut HashMap<String, Name>,
) {
    let mut note = |name: &Name, aliases: &Option<Vec<Alias>>| {
        names.insert(name.fullname(None));
        for alias in aliases.iter().flatten() {
            by_alias.insert(alias.fullname(name.namespace()), name.clone());
        }
    };
    match schema {
        Schema::Record(record) => {
            note(&record.name, &record.aliases);
            for field in &record.fields {
                collect_reader_names(&field.schema, names, by_alias);
            }
        }
        Schema::Enum(e) => note(&e.name, &e.aliases),
        Schema::Fixed(f) => note(&f.name, &f.aliases),
        Schema::Array(a) => collect_reader_names(&a.items, names, by_alias),
        Schema::Map(m) => collect_reader_names(&m.types, names, by_alias),
        Schema::Union(u) => {
            for variant in u.variants() {
                collect_reader_names(variant, names, by_alias);
            }
        }
        _ => {}
    }
}

/// Renames, in place, writer types (and references to them) whose name the
/// reader lacks but lists as an alias.
fn rename(
    schema: &mut Schema,
    reader_names: &HashSet<String>,
    by_alias: &HashMap<String, Name>,
    changed: &mut bool,
) {
    let mut apply = |name: &mut Name| {
        let full = name.fullname(None);
        if !reader_names.contains(&full)
            && let Some(target) = by_alias.get(&full)
        {
            *name = target.clone();
            *changed = true;
        }
    };
    match schema {
        Schema::Record(record) => {
            apply(&mut record.name);
            for field in &mut record.fields {
                rename(&mut field.schema, reader_names, by_alias, changed);
            }
        }
        Schema::Enum(e) => apply(&mut e.name),
        Schema::Fixed(f) => apply(&mut f.name),
        Schema::Ref { name } => apply(name),
        Schema::Array(a) => rename(&mut a.items, reader_names, by_alias, changed),
        Schema::Map(m) => rename(&mut m.types, reader_names, by_alias, changed),
        Schema::Union(u) => {
            let mut variants = u.variants().to_vec();
            for variant in &mut variants {
                rename(variant, reader_names, by_alias, changed);
            }
            // Renaming keeps every branch distinct unless two writer types
            // map to one reader type; then the original union stays.
            if let Ok(union) = UnionSchema::new(variants) {
                *u = union;
            }
        }
        _ => {}
    }
}
