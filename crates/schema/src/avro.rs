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
use apache_avro::schema::RecordSchema;
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
}

impl AvroSchema {
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
        Ok(AvroSchema { schema })
    }

    /// The registry's identity form: `apache-avro`'s JSON serialisation
    /// with sorted keys. Serialising a parsed schema cannot fail; should it
    /// ever, the Parsing Canonical Form is still a faithful identity.
    pub(crate) fn canonical(&self) -> String {
        serde_json::to_value(&self.schema)
            .map(|v| sorted_json(&v))
            .unwrap_or_else(|_| self.schema.canonical_form())
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
    match SchemaCompatibility::can_read(&writer.schema, &reader.schema) {
        Ok(Compatibility::Full) => Vec::new(),
        Ok(Compatibility::Partial) => vec![
            "reader lacks some union branches or enum symbols of the writer (and has no enum default)"
                .to_owned(),
        ],
        Err(e) => vec![e.to_string()],
    }
}
