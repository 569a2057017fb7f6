//! The core of Sluice's built-in schema registry (issue 16, step 1): parse,
//! canonicalise and check the compatibility of Avro, JSON Schema and
//! Protobuf schemas, the way Confluent Schema Registry does.
//!
//! This crate does no I/O. The REST API, the `_schemas` topic, broker-side
//! validation, the CLI and the console build on it and own everything that
//! touches the network or the disk.
//!
//! # Layout
//! - [`ParsedSchema`] (`parsed.rs`): one parsed schema of any type, its
//!   canonical text, and [`ParsedSchema::can_read`].
//! - [`check`] and [`CompatibilityLevel`] (`compat.rs`): Confluent's
//!   compatibility levels over a subject's version history.
//! - `avro.rs`, `json.rs`, `protobuf.rs`: one file per schema type, each
//!   with its parser and its reader/writer rules.
//! - [`References`] (`references.rs`): how a schema names other schemas, and
//!   the bounded, cycle-checked walk that collects them.
//! - `bounds.rs`: the cheap nesting scan that runs before any third-party
//!   parser sees the text.
//! - [`ParsedSchema::decode`] and [`ParsedSchema::encode`] (`datum.rs`,
//!   `avro_datum.rs`, `codec.rs`): data written with a schema to JSON and
//!   back, bounded by a [`DecodeBudget`] and [`MAX_DATUM_DEPTH`].
//!
//! # Bounds
//! A schema comes from a client, so every size is bounded before work is
//! done on it, and every violation is a [`SchemaError`], never a panic:
//! [`MAX_SCHEMA_BYTES`] per text, [`MAX_TOTAL_BYTES`] over a schema and its
//! references, [`MAX_NESTING_DEPTH`] brackets (checked by a linear scan
//! before `serde_json`, `apache-avro` or `protox` parse anything, so no
//! parser recursion depends on the input), [`MAX_FIELDS`] fields or
//! properties, [`MAX_DEFINITIONS`] named types, [`MAX_UNION_BRANCHES`]
//! branches in an Avro union, and [`MAX_REFERENCES`]
//! referenced schemas, whose graph must be acyclic. A JSON Schema
//! comparison also has a work budget (`json::MAX_COMPARE_STEPS`), and
//! messages are capped by [`MAX_MESSAGES`] and [`MAX_MESSAGE_CHARS`].
//!
//! # Not covered yet
//! - Avro: references are compared by name. A record that one version
//!   defines inline and the other takes from a reference is reported as
//!   incompatible even when the two definitions agree.
//! - Avro, stricter than Confluent's Java checker because `apache-avro`'s
//!   is: a changed decimal precision or scale is refused (Java compares
//!   only the underlying type). Aliases of named types are applied before
//!   `apache-avro` compares (it checks names only).
//! - Avro comparisons have no step budget of their own: `apache-avro`'s
//!   checker prints both schemas into some errors, so its cost is bounded
//!   only by [`MAX_UNION_BRANCHES`] times the schema sizes.
//! - JSON Schema: `$ref` is compared as a string, not followed (referenced
//!   schemas are parsed and bounded, not compared); keywords
//!   the checker does not model (`allOf`, `anyOf`, `oneOf`, `not`,
//!   `if`/`then`/`else`, `patternProperties`, `dependencies`, tuple
//!   `items`, ...) are incompatible whenever they differ between versions,
//!   which is stricter than Confluent. See `json.rs` for the rules.
//! - Protobuf: a field that keeps its name but changes its number is
//!   reported as incompatible, which is stricter than Confluent (which
//!   sees a removal and an addition). Messages and enums defined in
//!   referenced files are compared by name only, where a field uses them.
//!   Custom options, services and reserved ranges are ignored.
//! - Confluent's `normalize` flag and schema metadata/rule sets.

mod avro;
mod avro_datum;
mod bounds;
mod codec;
mod compat;
mod datum;
mod error;
mod json;
mod parsed;
mod protobuf;
mod references;
mod schema_type;

pub use codec::{CodecError, DecodeBudget, Encoded, MAX_DATUM_DEPTH};
pub use compat::{CompatibilityLevel, check};
pub use error::SchemaError;
pub use parsed::ParsedSchema;
pub use references::{NoReferences, Reference, References};
pub use schema_type::SchemaType;

/// Largest schema text accepted, in bytes. Confluent's own default request
/// limit is about this size, and real schemas are a few KiB; anything
/// larger is far more likely an attack than a data model.
pub const MAX_SCHEMA_BYTES: usize = 1024 * 1024;

/// Largest sum of a schema's text and all its transitive references, in
/// bytes, so a chain of references cannot add up to unbounded memory.
pub const MAX_TOTAL_BYTES: usize = 8 * MAX_SCHEMA_BYTES;

/// Deepest bracket nesting accepted (`{`, `[` in JSON; `{`, `[`, `(`, `<`
/// in `.proto` text). It stays under `serde_json`'s own limit of 128, and
/// bounds the recursion of every parser and checker that walks the schema.
/// An Avro record costs three levels (object, `fields` array, field object),
/// so this allows about 30 nested records.
pub const MAX_NESTING_DEPTH: usize = 100;

/// Most fields (Avro record fields, JSON Schema properties, Protobuf
/// fields) in one schema and its references, which bounds the work of a
/// compatibility check.
pub const MAX_FIELDS: usize = 10_000;

/// Most named types (Avro records, enums and fixed; Protobuf messages and
/// enums) in one schema and its references.
pub const MAX_DEFINITIONS: usize = 2_000;

/// Most branches in one Avro union. `apache-avro`'s checker compares every
/// writer branch with every reader branch, and some of its errors print
/// both, so a comparison costs up to branches times schema size; real
/// unions have a handful of branches (usually `null` and one type).
pub const MAX_UNION_BRANCHES: usize = 100;

/// Most schemas a schema may reference, counted transitively.
pub const MAX_REFERENCES: usize = 64;

/// Most incompatibility messages one reader/writer comparison returns; the
/// rest are counted in a last message. They travel back in a REST answer.
pub const MAX_MESSAGES: usize = 50;

/// Longest incompatibility message, in characters; `apache-avro` prints
/// whole schemas into some of its errors.
pub const MAX_MESSAGE_CHARS: usize = 500;
