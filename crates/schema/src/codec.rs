//! The types data codecs share: what a decode may spend
//! ([`DecodeBudget`], [`MAX_DATUM_DEPTH`]), why data did not fit a schema
//! ([`CodecError`]), and an encoded value ([`Encoded`]). `datum.rs` holds
//! the codecs per schema type.

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
