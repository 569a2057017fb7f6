//! The one error type of this crate: why a schema was refused.

use crate::SchemaType;

/// Why a schema (or a name for a schema type or level) was refused. Each
/// variant is one cause, so the REST layer can map it to Confluent's
/// error codes (42201 invalid schema, 42202 invalid level, ...).
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum SchemaError {
    /// `schemaType` named no type we know.
    #[error("unknown schema type {name:?}")]
    UnknownSchemaType { name: String },
    /// A compatibility level named no level we know.
    #[error("unknown compatibility level {name:?}")]
    UnknownCompatibilityLevel { name: String },
    /// A schema text is longer than [`crate::MAX_SCHEMA_BYTES`].
    #[error("schema is {bytes} bytes, more than the limit of {limit}")]
    TooLarge { bytes: usize, limit: usize },
    /// A schema and its references add up to more than [`crate::MAX_TOTAL_BYTES`].
    #[error("schema and its references are {bytes} bytes, more than the limit of {limit}")]
    TotalTooLarge { bytes: usize, limit: usize },
    /// Brackets nest deeper than [`crate::MAX_NESTING_DEPTH`].
    #[error("schema nests deeper than {limit} levels")]
    TooDeep { limit: usize },
    /// More fields or properties than [`crate::MAX_FIELDS`].
    #[error("schema has {count} fields, more than the limit of {limit}")]
    TooManyFields { count: usize, limit: usize },
    /// More named types than [`crate::MAX_DEFINITIONS`].
    #[error("schema has {count} named types, more than the limit of {limit}")]
    TooManyDefinitions { count: usize, limit: usize },
    /// An Avro union with more branches than [`crate::MAX_UNION_BRANCHES`].
    #[error("union has {count} branches, more than the limit of {limit}")]
    TooManyUnionBranches { count: usize, limit: usize },
    /// More transitive references than [`crate::MAX_REFERENCES`].
    #[error("schema references more than {limit} schemas")]
    TooManyReferences { limit: usize },
    /// The references lead back to a schema already being resolved.
    #[error("reference cycle through {name:?}")]
    ReferenceCycle { name: String },
    /// A referenced name that the resolver does not know.
    #[error("reference {name:?} not found")]
    ReferenceNotFound { name: String },
    /// A reference whose type differs from the schema that names it.
    #[error("reference {name:?} is {found}, expected {expected}")]
    ReferenceTypeMismatch {
        name: String,
        expected: SchemaType,
        found: SchemaType,
    },
    /// The text is not valid JSON (Avro and JSON Schema).
    #[error("invalid JSON: {reason}")]
    InvalidJson { reason: String },
    /// The JSON is not a valid Avro schema.
    #[error("invalid Avro schema: {reason}")]
    InvalidAvro { reason: String },
    /// The JSON is not a valid JSON Schema.
    #[error("invalid JSON Schema: {reason}")]
    InvalidJsonSchema { reason: String },
    /// The text is not a valid `.proto` file, or does not compile.
    #[error("invalid Protobuf schema: {reason}")]
    InvalidProtobuf { reason: String },
}
