//! Keys and values in Confluent's wire format, to JSON and back: REST read
//! and the console show what serializers wrote, and REST produce writes
//! what their deserializers read.
//!
//! The wire format: magic byte 0, the schema id as a big-endian `i32`, for
//! Protobuf the message indexes (a zigzag varint count and that many zigzag
//! varints, with `[0]` written as the single byte 0), then the data
//! ([`sluice_schema::ParsedSchema::decode`] reads it).

use serde_json::Value;
use sluice_schema::{DecodeBudget, SchemaType};

use crate::RegistryError;
use crate::state::{State, VersionSpec};
use crate::validation::{message_indexes, schema_id};

/// A key or value decoded with the schema its header names.
#[derive(Debug, Clone, PartialEq)]
pub struct Decoded {
    /// The schema id from the header.
    pub schema_id: i32,
    /// The schema's type.
    pub schema_type: SchemaType,
    /// The Protobuf message's full name; `None` for other types.
    pub message: Option<String>,
    /// The data as JSON.
    pub value: Value,
}

/// Which registered schema REST produce encodes a value with: an id, or a
/// subject and version (`latest` when absent). With neither, the subject
/// the topic name strategy gives (`<topic>-value` or `<topic>-key`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SchemaChoice {
    /// A schema id.
    pub id: Option<i32>,
    /// A subject.
    pub subject: Option<String>,
    /// A version of `subject`: a number, `latest` or `-1`.
    pub version: Option<String>,
    /// For Protobuf, the message's full name (default: the first message).
    pub message: Option<String>,
}

/// Decodes `data` if it is in the wire format: `None` when it is not (no
/// magic byte), `Some(Err)` saying why when it claims to be and cannot be
/// decoded (unknown id, bad indexes, data that does not fit the schema,
/// the budget spent).
pub fn decode(
    state: &mut State,
    data: &[u8],
    budget: &mut DecodeBudget,
) -> Option<Result<Decoded, String>> {
    let id = schema_id(data)?;
    Some(decode_with(state, id, &data[5..], budget))
}

fn decode_with(
    state: &mut State,
    id: i32,
    rest: &[u8],
    budget: &mut DecodeBudget,
) -> Result<Decoded, String> {
    let parsed = state
        .parsed(id)
        .map_err(|_| format!("schema id {id} is not registered"))?;
    let (indexes, data) = if parsed.schema_type() == SchemaType::Protobuf {
        message_indexes(rest).ok_or("the Protobuf message indexes are malformed")?
    } else {
        (Vec::new(), rest)
    };
    let value = parsed
        .decode(data, &indexes, budget)
        .map_err(|e| format!("cannot decode with schema {id}: {e}"))?;
    Ok(Decoded {
        schema_id: id,
        schema_type: parsed.schema_type(),
        message: (parsed.schema_type() == SchemaType::Protobuf)
            .then(|| parsed.record_name(&indexes))
            .flatten(),
        value,
    })
}

/// Encodes `value` in the wire format with the schema `choice` names;
/// `default_subject` is the subject used when it names neither an id nor a
/// subject.
pub fn encode(
    state: &mut State,
    choice: &SchemaChoice,
    default_subject: &str,
    value: &Value,
) -> Result<Vec<u8>, RegistryError> {
    let id = match (choice.id, &choice.subject) {
        (Some(_), Some(_)) => {
            return Err(RegistryError::InvalidData(
                "give a schema id or a subject, not both".into(),
            ));
        }
        (Some(id), None) => {
            if choice.version.is_some() {
                return Err(RegistryError::InvalidData(
                    "a version goes with a subject, not with a schema id".into(),
                ));
            }
            id
        }
        (None, subject) => {
            let subject = subject.as_deref().unwrap_or(default_subject);
            let spec = match &choice.version {
                Some(v) => VersionSpec::parse(v)?,
                None => VersionSpec::Latest,
            };
            state.version(subject, spec, false)?.id
        }
    };
    let parsed = state.parsed(id)?;
    if parsed.schema_type() != SchemaType::Protobuf && choice.message.is_some() {
        return Err(RegistryError::InvalidData(format!(
            "schema {id} is {}; a message name applies to Protobuf only",
            parsed.schema_type()
        )));
    }
    let encoded = parsed
        .encode(value, choice.message.as_deref())
        .map_err(|e| RegistryError::InvalidData(format!("does not fit schema {id}: {e}")))?;
    let mut out = Vec::with_capacity(5 + encoded.data.len() + 4);
    out.push(0);
    out.extend_from_slice(&id.to_be_bytes());
    if parsed.schema_type() == SchemaType::Protobuf {
        if encoded.message_indexes == [0] {
            out.push(0);
        } else {
            write_zigzag(&mut out, encoded.message_indexes.len() as i32);
            for index in &encoded.message_indexes {
                write_zigzag(&mut out, *index);
            }
        }
    }
    out.extend_from_slice(&encoded.data);
    Ok(out)
}

fn write_zigzag(out: &mut Vec<u8>, v: i32) {
    let mut z = ((v << 1) ^ (v >> 31)) as u32;
    while z >= 0x80 {
        out.push((z as u8) | 0x80);
        z >>= 7;
    }
    out.push(z as u8);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zigzag_matches_confluents_message_index_encoding() {
        let mut out = Vec::new();
        for v in [2, 1, 0, -1, 300] {
            write_zigzag(&mut out, v);
        }
        assert_eq!(out, vec![4, 2, 0, 1, 0xd8, 0x04]);
        let (indexes, rest) = message_indexes(&[4, 2, 0, 9]).expect("well formed");
        assert_eq!((indexes, rest), (vec![1, 0], &[9u8][..]));
    }
}
