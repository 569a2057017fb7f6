//! The records of the `_schemas` topic, in Confluent Schema Registry's
//! format, so a topic written by either can be read by the other and tools
//! that dump `_schemas` understand ours.
//!
//! Every key and value is a JSON object. The key names what the record is
//! about (`keytype`), the value holds its latest state, and a null value
//! (a tombstone) removes it, so the topic compacts to the registry's
//! current contents:
//!
//! | keytype | key fields | value |
//! |---|---|---|
//! | `SCHEMA` | subject, version, magic 1 | `{subject, version, id, schemaType?, references?, schema, deleted}` (schemaType absent means AVRO); a tombstone is a permanent delete |
//! | `CONFIG` | subject (null: global), magic 0 | `{compatibilityLevel}`; a tombstone clears a subject's level |
//! | `MODE` | subject (null: global), magic 0 | `{mode}`; a tombstone clears a subject's mode |
//! | `DELETE_SUBJECT` | subject, magic 0 | `{subject, version}`: every version up to `version` is soft-deleted |
//! | `CLEAR_SUBJECT` | subject, magic 0 | `{subject}`: read and ignored (Confluent's cache hint) |
//! | `NOOP` | magic 0 | read and ignored |
//!
//! Sluice writes `SCHEMA`, `CONFIG` and `MODE` records; a subject soft
//! delete is written as one `SCHEMA` record with `deleted: true` per
//! version, in one batch, so it is atomic. Unknown key types are skipped
//! with a warning, as Confluent skips them.

use serde::{Deserialize, Serialize};
use sluice_schema::SchemaType;

/// One reference from a schema to another registered schema, as stored
/// and as the REST API shows it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct SchemaReference {
    /// The name the referring schema uses (Avro full name, JSON `$ref`,
    /// Protobuf import path).
    pub name: String,
    /// The subject the referenced schema is registered under.
    pub subject: String,
    /// Its version in that subject.
    pub version: i32,
}

/// A decoded `_schemas` key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Key {
    /// One version of a subject.
    Schema { subject: String, version: i32 },
    /// The compatibility level of a subject (`None`: the global one).
    Config { subject: Option<String> },
    /// The mode of a subject (`None`: the global one).
    Mode { subject: Option<String> },
    /// Confluent's subject soft delete.
    DeleteSubject { subject: String },
    /// A key type that carries no state for us.
    Ignored,
}

/// The value of a `SCHEMA` record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SchemaValue {
    /// The subject.
    pub subject: String,
    /// The version in the subject, from 1.
    pub version: i32,
    /// The global schema id.
    pub id: i32,
    /// Absent for Avro.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schema_type: Option<String>,
    /// Referenced schemas.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub references: Vec<SchemaReference>,
    /// The schema text as registered.
    pub schema: String,
    /// Soft-deleted.
    #[serde(default)]
    pub deleted: bool,
}

impl SchemaValue {
    /// The schema type, AVRO when absent.
    pub fn schema_type(&self) -> Result<SchemaType, sluice_schema::SchemaError> {
        SchemaType::from_optional(self.schema_type.as_deref())
    }
}

/// The value of a `CONFIG` record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ConfigValue {
    /// A compatibility level name (`BACKWARD`, ...).
    pub compatibility_level: String,
}

/// The value of a `MODE` record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ModeValue {
    /// `READWRITE`, `READONLY` or `IMPORT`.
    pub mode: String,
}

/// The value of a `DELETE_SUBJECT` record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeleteSubjectValue {
    /// The subject.
    pub subject: String,
    /// Every version up to this one is deleted.
    pub version: i32,
}

/// Why a `_schemas` record could not be read; the record is skipped.
#[derive(Debug, thiserror::Error)]
pub enum FormatError {
    /// Not the JSON we expect.
    #[error("malformed _schemas {what}: {source}")]
    Json {
        /// `key` or `value`.
        what: &'static str,
        /// The parser's reason.
        source: serde_json::Error,
    },
    /// A key that names no subject where one is needed.
    #[error("_schemas key of type {keytype} has no subject")]
    MissingSubject {
        /// The key type.
        keytype: String,
    },
}

/// The key's JSON as written: field order as Confluent writes it.
#[derive(Debug, Serialize, Deserialize)]
struct RawKey {
    keytype: String,
    #[serde(default)]
    subject: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    version: Option<i32>,
    #[serde(default)]
    magic: i32,
}

impl Key {
    /// Decodes a key.
    pub fn decode(bytes: &[u8]) -> Result<Key, FormatError> {
        let raw: RawKey = serde_json::from_slice(bytes).map_err(|source| FormatError::Json {
            what: "key",
            source,
        })?;
        let subject = |raw: RawKey| {
            raw.subject.ok_or(FormatError::MissingSubject {
                keytype: raw.keytype,
            })
        };
        Ok(match raw.keytype.as_str() {
            "SCHEMA" => Key::Schema {
                version: raw.version.unwrap_or(0),
                subject: subject(raw)?,
            },
            "CONFIG" => Key::Config {
                subject: raw.subject,
            },
            "MODE" => Key::Mode {
                subject: raw.subject,
            },
            "DELETE_SUBJECT" => Key::DeleteSubject {
                subject: subject(raw)?,
            },
            "CLEAR_SUBJECT" | "NOOP" => Key::Ignored,
            other => {
                tracing::warn!(
                    keytype = other,
                    "skipping _schemas record of unknown key type"
                );
                Key::Ignored
            }
        })
    }

    /// Encodes a key as Confluent does.
    pub fn encode(&self) -> Vec<u8> {
        let raw = match self {
            Key::Schema { subject, version } => RawKey {
                keytype: "SCHEMA".into(),
                subject: Some(subject.clone()),
                version: Some(*version),
                magic: 1,
            },
            Key::Config { subject } => RawKey {
                keytype: "CONFIG".into(),
                subject: subject.clone(),
                version: None,
                magic: 0,
            },
            Key::Mode { subject } => RawKey {
                keytype: "MODE".into(),
                subject: subject.clone(),
                version: None,
                magic: 0,
            },
            Key::DeleteSubject { subject } => RawKey {
                keytype: "DELETE_SUBJECT".into(),
                subject: Some(subject.clone()),
                version: None,
                magic: 0,
            },
            Key::Ignored => RawKey {
                keytype: "NOOP".into(),
                subject: None,
                version: None,
                magic: 0,
            },
        };
        json_bytes(&raw)
    }
}

/// A JSON encoding of a value type that cannot fail (plain structs of
/// strings and numbers).
pub fn json_bytes<T: Serialize>(value: &T) -> Vec<u8> {
    serde_json::to_vec(value).unwrap_or_else(|e| {
        // Only maps with non-string keys fail, and none of ours has one.
        tracing::error!("cannot encode a _schemas record: {e}");
        b"{}".to_vec()
    })
}

/// Decodes a value of type `T`.
pub fn decode_value<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> Result<T, FormatError> {
    serde_json::from_slice(bytes).map_err(|source| FormatError::Json {
        what: "value",
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_written_as_confluent_writes_them() {
        let key = Key::Schema {
            subject: "orders-value".into(),
            version: 3,
        };
        assert_eq!(
            String::from_utf8(key.encode()).expect("utf8"),
            r#"{"keytype":"SCHEMA","subject":"orders-value","version":3,"magic":1}"#
        );
        assert_eq!(
            String::from_utf8(Key::Config { subject: None }.encode()).expect("utf8"),
            r#"{"keytype":"CONFIG","subject":null,"magic":0}"#
        );
        for key in [
            key,
            Key::Config {
                subject: Some("s".into()),
            },
            Key::Mode { subject: None },
            Key::DeleteSubject {
                subject: "s".into(),
            },
        ] {
            assert_eq!(Key::decode(&key.encode()).expect("decodes"), key);
        }
    }

    #[test]
    fn a_confluent_schema_value_reads_with_avro_as_the_default_type() {
        let value: SchemaValue = decode_value(
            br#"{"subject":"t-value","version":1,"id":7,"schema":"\"string\"","deleted":false}"#,
        )
        .expect("decodes");
        assert_eq!(value.id, 7);
        assert_eq!(value.schema_type().expect("type"), SchemaType::Avro);
        assert!(value.references.is_empty());
        let json = String::from_utf8(json_bytes(&value)).expect("utf8");
        assert!(!json.contains("schemaType"), "{json}");
    }

    #[test]
    fn unreadable_keys_are_typed_errors_and_unknown_types_are_ignored() {
        assert!(matches!(
            Key::decode(b"not json"),
            Err(FormatError::Json { .. })
        ));
        assert!(matches!(
            Key::decode(br#"{"keytype":"SCHEMA","version":1,"magic":1}"#),
            Err(FormatError::MissingSubject { .. })
        ));
        assert_eq!(
            Key::decode(br#"{"keytype":"FUTURE","magic":0}"#).expect("decodes"),
            Key::Ignored
        );
    }
}
