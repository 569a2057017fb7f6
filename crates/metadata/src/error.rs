//! Errors of this crate: [`MetadataError`], the metadata log failing, and
//! [`ApiError`], what an admin change reports per item.

use sluice_protocol::error::codes as code;

use sluice_log::LogError;
use sluice_records::RecordsError;

use crate::codec::CodecError;
use crate::image::ApplyError;

/// An error for one item of an admin request: a Kafka code and a message.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
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

/// Failures of the metadata store.
#[derive(Debug, thiserror::Error)]
pub enum MetadataError {
    /// The metadata log failed; the broker cannot change metadata.
    #[error("metadata log: {0}")]
    Log(#[from] LogError),
    /// A batch in the metadata log could not be decoded.
    #[error("metadata log batch: {0}")]
    Records(#[from] RecordsError),
    /// A record's value is not a metadata record.
    #[error("metadata record at offset {offset} is not valid: {source}")]
    Decode {
        /// Where.
        offset: i64,
        /// Why.
        #[source]
        source: CodecError,
    },
    /// The begin/end markers of multi-batch changes do not pair up: a
    /// damaged log.
    #[error("metadata change markers at offset {offset} do not pair up: {reason}")]
    BadChange {
        /// Where.
        offset: i64,
        /// What does not pair up.
        reason: String,
    },
    /// A record does not apply to the image.
    #[error(transparent)]
    Apply(#[from] ApplyError),
    /// A record cannot be encoded (a name too long for the format).
    #[error("cannot encode metadata record: {0}")]
    Encode(#[from] CodecError),
    /// The blocking fsync task panicked (a bug) or was dropped.
    #[error("metadata fsync: {0}")]
    Task(#[from] sluice_runtime::TaskError),
}
