//! The error an admin change reports per item: a Kafka code and a message.

use sluice_protocol::error::codes as code;

use crate::log::MetadataError;

/// An error for one item of an admin request: a Kafka code and a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    /// Kafka error code.
    pub code: i16,
    /// Human-readable detail.
    pub message: String,
}

impl ApiError {
    /// Builds an error.
    pub fn new(code: i16, message: impl Into<String>) -> ApiError {
        ApiError {
            code,
            message: message.into(),
        }
    }
}

impl From<MetadataError> for ApiError {
    fn from(e: MetadataError) -> ApiError {
        tracing::error!("metadata change failed: {e}");
        ApiError::new(code::KAFKA_STORAGE_ERROR, e.to_string())
    }
}
