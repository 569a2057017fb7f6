//! Data written with a schema, to JSON and back: what the console's message
//! browser and REST produce and read need to show and accept records that
//! serializers wrote in Avro, JSON Schema or Protobuf.
//!
//! These functions see only the data after Confluent's wire-format header
//! (magic byte, schema id, Protobuf message indexes); the registry crate
//! owns the header. The data comes from the log, so from a client: every
//! decode is charged to a [`DecodeBudget`] and nests at most
//! [`MAX_DATUM_DEPTH`] levels.
//!
//! - Avro: `avro_datum.rs`. The shared error and budget types: `codec.rs`.
//! - Protobuf: `prost-reflect`'s dynamic messages and its canonical
//!   protobuf-JSON mapping (`lowerCamelCase` names, default values left
//!   out, 64-bit integers as strings); decoding accepts the proto field
//!   names too. `prost`'s decoder nests at most 100 messages, and every
//!   value costs at least one byte of data, so the budget is charged the
//!   data's length.
//! - JSON Schema: the data is JSON text. It is not validated against the
//!   schema when encoding (the serializers validate; the broker's topic
//!   validation checks the schema id).

use serde::Serialize as _;
use serde_json::Value;

use crate::codec::{CodecError, DecodeBudget, Encoded};
use crate::parsed::{Kind, ParsedSchema};
use crate::{avro_datum, protobuf};

impl ParsedSchema {
    /// Decodes `data`, written with this schema, to JSON. For Protobuf,
    /// `message_indexes` pick the message (empty: the first).
    pub fn decode(
        &self,
        data: &[u8],
        message_indexes: &[i32],
        budget: &mut DecodeBudget,
    ) -> Result<Value, CodecError> {
        match self.kind() {
            Kind::Avro(s) => {
                let names = avro_datum::names(s.schema(), s.referenced());
                avro_datum::decode(s.schema(), &names, data, budget)
            }
            Kind::Json(_) => {
                budget.charge(data.len())?;
                // serde_json refuses nesting past 128 levels.
                serde_json::from_slice(data)
                    .map_err(|e| CodecError::Malformed(format!("not JSON: {e}")))
            }
            Kind::Protobuf(s) => {
                budget.charge(data.len())?;
                let descriptor = s.message_at(message_indexes).ok_or_else(|| {
                    CodecError::NoSuchMessage(format!("at indexes {message_indexes:?}"))
                })?;
                let message = prost_reflect::DynamicMessage::decode(descriptor, data)
                    .map_err(|e| CodecError::Malformed(e.to_string()))?;
                message
                    .serialize(serde_json::value::Serializer)
                    .map_err(|e| CodecError::Malformed(e.to_string()))
            }
        }
    }

    /// Encodes `value` with this schema. For Protobuf, `message` names the
    /// message by full name (`None`: the first message of the schema).
    pub fn encode(&self, value: &Value, message: Option<&str>) -> Result<Encoded, CodecError> {
        match self.kind() {
            Kind::Avro(s) => {
                let names = avro_datum::names(s.schema(), s.referenced());
                Ok(Encoded {
                    message_indexes: Vec::new(),
                    data: avro_datum::encode(s.schema(), &names, value)?,
                })
            }
            Kind::Json(_) => Ok(Encoded {
                message_indexes: Vec::new(),
                data: value.to_string().into_bytes(),
            }),
            Kind::Protobuf(s) => {
                let (descriptor, message_indexes) = match message {
                    Some(name) => s
                        .message_named(name)
                        .ok_or_else(|| CodecError::NoSuchMessage(name.to_owned()))?,
                    None => (
                        s.message_at(&[])
                            .ok_or_else(|| CodecError::NoSuchMessage("(none defined)".into()))?,
                        vec![0],
                    ),
                };
                let message = prost_reflect::DynamicMessage::deserialize(descriptor, value)
                    .map_err(|e| CodecError::Mismatch {
                        path: "/".into(),
                        reason: e.to_string(),
                    })?;
                Ok(Encoded {
                    message_indexes,
                    data: prost_reflect::prost::Message::encode_to_vec(&message),
                })
            }
        }
    }
}

/// Protobuf helpers the codec needs from the compiled schema.
impl protobuf::ProtobufSchema {
    /// The message at Confluent's `indexes` in the root file (empty: the
    /// first message).
    pub(crate) fn message_at(&self, indexes: &[i32]) -> Option<prost_reflect::MessageDescriptor> {
        let name = self.message_name(indexes)?;
        self.pool().get_message_by_name(&name)
    }

    /// The message named `name` in the root file and its indexes.
    pub(crate) fn message_named(
        &self,
        name: &str,
    ) -> Option<(prost_reflect::MessageDescriptor, Vec<i32>)> {
        let file = self.root_file()?;
        // Depth-first, with the path of indexes; nesting is bounded by the
        // schema's nesting check.
        let mut stack: Vec<(prost_reflect::MessageDescriptor, Vec<i32>)> = file
            .messages()
            .enumerate()
            .map(|(i, m)| (m, vec![i32::try_from(i).unwrap_or(i32::MAX)]))
            .collect();
        while let Some((message, path)) = stack.pop() {
            if message.full_name() == name.trim_start_matches('.') {
                return Some((message, path));
            }
            for (i, child) in message.child_messages().enumerate() {
                let mut child_path = path.clone();
                child_path.push(i32::try_from(i).unwrap_or(i32::MAX));
                stack.push((child, child_path));
            }
        }
        None
    }
}
