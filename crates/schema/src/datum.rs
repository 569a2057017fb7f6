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
//! - Avro: `avro_datum.rs`.
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

use crate::parsed::{Kind, ParsedSchema};
use crate::{avro_datum, protobuf};

/// Deepest nesting of records, arrays, maps and unions a datum may have.
/// Recursive Avro types nest as deep as the data says, so the data, not
/// the schema, must be bounded.
pub const MAX_DATUM_DEPTH: usize = 64;

/// How many JSON values decoding may still produce, so the memory and
/// time a decode can be made to spend are bounded however the data is
/// shaped (an Avro array of nulls costs no bytes per item in the data).
#[derive(Debug, Clone)]
pub struct DecodeBudget {
    left: usize,
    limit: usize,
}

impl DecodeBudget {
    /// A budget of `values` JSON values.
    pub fn new(values: usize) -> DecodeBudget {
        DecodeBudget {
            left: values,
            limit: values,
        }
    }

    /// The values still to spend.
    pub fn remaining(&self) -> usize {
        self.left
    }

    /// Takes `n` values from the budget.
    pub(crate) fn charge(&mut self, n: usize) -> Result<(), CodecError> {
        match self.left.checked_sub(n) {
            Some(left) => {
                self.left = left;
                Ok(())
            }
            None => {
                self.left = 0;
                Err(CodecError::BudgetExhausted { limit: self.limit })
            }
        }
    }
}

/// Why data could not be decoded with, or encoded to, a schema.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum CodecError {
    /// The data ended inside a value.
    #[error("the data ends early")]
    Truncated,
    /// Bytes that no value of the schema can be.
    #[error("malformed data: {0}")]
    Malformed(String),
    /// Bytes left after one whole value.
    #[error("{0} bytes left after the value")]
    TrailingBytes(usize),
    /// Nesting past [`MAX_DATUM_DEPTH`].
    #[error("the value nests deeper than {MAX_DATUM_DEPTH} levels")]
    TooDeep,
    /// Decoding would produce more values than the budget allows.
    #[error("decoding would produce more than {limit} values, the budget left for it")]
    BudgetExhausted {
        /// The budget's size.
        limit: usize,
    },
    /// An Avro reference to a named type the schema does not define.
    #[error("the schema does not define type {0}")]
    UnknownType(String),
    /// Protobuf message indexes or a message name that pick no message.
    #[error("the schema has no message {0}")]
    NoSuchMessage(String),
    /// A JSON value the schema does not take.
    #[error("at {path}: {reason}")]
    Mismatch {
        /// Where in the value, as a JSON pointer.
        path: String,
        /// What is wrong there.
        reason: String,
    },
}

/// A value encoded with a schema: the data, and for Protobuf the indexes
/// of the message it is (Confluent's message indexes, for the header).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Encoded {
    /// Protobuf message indexes; empty for other types.
    pub message_indexes: Vec<i32>,
    /// The encoded value.
    pub data: Vec<u8>,
}

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
                let names = s.names();
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
                let names = s.names();
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
