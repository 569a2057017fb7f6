//! One parsed schema of any type.

use crate::references::{self, References};
use crate::{
    MAX_MESSAGE_CHARS, MAX_MESSAGES, MAX_SCHEMA_BYTES, SchemaError, SchemaType, avro, json,
    protobuf,
};

/// A schema that parsed, passed every bound and is ready for compatibility
/// checks. Build it with [`ParsedSchema::parse`].
#[derive(Debug, Clone)]
pub struct ParsedSchema {
    /// The canonical text: equal for two schemas the registry treats as the
    /// same schema (Confluent's "already registered" lookup).
    canonical: String,
    kind: Kind,
}

/// The per-type parse result.
#[derive(Debug, Clone)]
pub(crate) enum Kind {
    Avro(avro::AvroSchema),
    Json(json::JsonSchema),
    Protobuf(protobuf::ProtobufSchema),
}

impl AsRef<ParsedSchema> for ParsedSchema {
    fn as_ref(&self) -> &ParsedSchema {
        self
    }
}

impl ParsedSchema {
    /// Parses `text` as a schema of `schema_type` that references the
    /// schemas named in `references`, which `resolver` turns into text.
    pub fn parse(
        schema_type: SchemaType,
        text: &str,
        references: &[String],
        resolver: &dyn References,
    ) -> Result<ParsedSchema, SchemaError> {
        if text.len() > MAX_SCHEMA_BYTES {
            return Err(SchemaError::TooLarge {
                bytes: text.len(),
                limit: MAX_SCHEMA_BYTES,
            });
        }
        let refs = references::collect(schema_type, text.len(), references, resolver)?;
        let kind = match schema_type {
            SchemaType::Avro => Kind::Avro(avro::AvroSchema::parse(text, &refs)?),
            SchemaType::Json => Kind::Json(json::JsonSchema::parse(text, &refs)?),
            SchemaType::Protobuf => Kind::Protobuf(protobuf::ProtobufSchema::parse(text, &refs)?),
        };
        let canonical = match &kind {
            Kind::Avro(s) => s.canonical(),
            Kind::Json(s) => s.canonical(),
            Kind::Protobuf(s) => s.canonical(),
        };
        Ok(ParsedSchema { canonical, kind })
    }

    /// Parses a schema that references no other schema.
    pub fn parse_standalone(
        schema_type: SchemaType,
        text: &str,
    ) -> Result<ParsedSchema, SchemaError> {
        ParsedSchema::parse(schema_type, text, &[], &references::NoReferences)
    }

    /// The per-type parse result.
    pub(crate) fn kind(&self) -> &Kind {
        &self.kind
    }

    /// The schema's type.
    pub fn schema_type(&self) -> SchemaType {
        match self.kind {
            Kind::Avro(_) => SchemaType::Avro,
            Kind::Json(_) => SchemaType::Json,
            Kind::Protobuf(_) => SchemaType::Protobuf,
        }
    }

    /// The canonical text, for identity. Avro: the full JSON form that
    /// `apache-avro` writes (it keeps defaults and aliases, which Avro's
    /// Parsing Canonical Form drops although they change how data is read,
    /// so two schemas that differ only in a default stay distinct).
    /// JSON Schema: compact JSON with sorted keys. Protobuf: the hex of the
    /// encoded `FileDescriptorProto`, which ignores comments and layout.
    /// Compute it, never persist it: a dependency upgrade may change its
    /// bytes, so storage keeps the schema text and parses it again.
    pub fn canonical(&self) -> &str {
        &self.canonical
    }

    /// The name RecordNameStrategy gives this schema's subject: an Avro
    /// named type's full name, a JSON Schema's `title`, the full name of the
    /// Protobuf message at `message_indexes` (Confluent's message indexes;
    /// empty means the first message). `None` when it has none.
    pub fn record_name(&self, message_indexes: &[i32]) -> Option<String> {
        match &self.kind {
            Kind::Avro(s) => s.record_name(),
            Kind::Json(s) => s.record_name(),
            Kind::Protobuf(s) => s.message_name(message_indexes),
        }
    }

    /// A Protobuf schema's descriptor in Confluent's serialized form
    /// (base64 of the encoded `FileDescriptorProto`); `None` for other types.
    pub fn protobuf_serialized(&self) -> Option<String> {
        match &self.kind {
            Kind::Protobuf(s) => Some(s.serialized()),
            _ => None,
        }
    }

    /// Avro's Parsing Canonical Form, the text Avro fingerprints; `None`
    /// for other types.
    pub fn avro_parsing_canonical_form(&self) -> Option<String> {
        match &self.kind {
            Kind::Avro(s) => Some(s.parsing_canonical_form()),
            _ => None,
        }
    }

    /// Why a reader using `self` cannot read data written with `writer`;
    /// empty when it can. At most [`MAX_MESSAGES`] messages of at most
    /// [`MAX_MESSAGE_CHARS`] characters each.
    pub fn can_read(&self, writer: &ParsedSchema) -> Vec<String> {
        let mut problems = self.problems_reading(writer);
        if problems.len() > MAX_MESSAGES {
            let more = problems.len() - (MAX_MESSAGES - 1);
            problems.truncate(MAX_MESSAGES - 1);
            problems.push(format!("... and {more} more"));
        }
        for p in &mut problems {
            if let Some((cut, _)) = p.char_indices().nth(MAX_MESSAGE_CHARS) {
                p.truncate(cut);
                p.push_str("...");
            }
        }
        problems
    }

    fn problems_reading(&self, writer: &ParsedSchema) -> Vec<String> {
        match (&writer.kind, &self.kind) {
            (Kind::Avro(w), Kind::Avro(r)) => avro::can_read(w, r),
            (Kind::Json(w), Kind::Json(r)) => json::can_read(w, r),
            (Kind::Protobuf(w), Kind::Protobuf(r)) => protobuf::can_read(w, r),
            _ => vec![format!(
                "schema type changed from {} to {}",
                writer.schema_type(),
                self.schema_type()
            )],
        }
    }
}
