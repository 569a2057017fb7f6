//! The schema types the registry knows, by their Confluent names.

use std::fmt;
use std::str::FromStr;

use crate::SchemaError;

/// A schema language. Confluent's REST API names it in `schemaType` and
/// means Avro when the field is absent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum SchemaType {
    /// Apache Avro, `"AVRO"`; the default.
    #[default]
    Avro,
    /// JSON Schema, `"JSON"`.
    Json,
    /// Protocol Buffers `.proto` text, `"PROTOBUF"`.
    Protobuf,
}

impl SchemaType {
    /// The name Confluent's REST API uses.
    pub fn as_str(self) -> &'static str {
        match self {
            SchemaType::Avro => "AVRO",
            SchemaType::Json => "JSON",
            SchemaType::Protobuf => "PROTOBUF",
        }
    }

    /// The type named by an optional `schemaType` field: absent means Avro.
    pub fn from_optional(name: Option<&str>) -> Result<SchemaType, SchemaError> {
        name.map_or(Ok(SchemaType::Avro), str::parse)
    }
}

impl FromStr for SchemaType {
    type Err = SchemaError;

    fn from_str(name: &str) -> Result<SchemaType, SchemaError> {
        match name {
            "AVRO" => Ok(SchemaType::Avro),
            "JSON" => Ok(SchemaType::Json),
            "PROTOBUF" => Ok(SchemaType::Protobuf),
            _ => Err(SchemaError::UnknownSchemaType {
                name: name.chars().take(64).collect(),
            }),
        }
    }
}

impl fmt::Display for SchemaType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_absent_means_avro() {
        for t in [SchemaType::Avro, SchemaType::Json, SchemaType::Protobuf] {
            assert_eq!(t.as_str().parse::<SchemaType>().ok(), Some(t));
        }
        assert_eq!(SchemaType::from_optional(None).ok(), Some(SchemaType::Avro));
        assert!(matches!(
            "avro".parse::<SchemaType>(),
            Err(SchemaError::UnknownSchemaType { .. })
        ));
    }
}
