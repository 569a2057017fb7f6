//! [`LogError`]: everything the log can refuse, with its Kafka error code.

use std::path::PathBuf;

use sluice_records::RecordsError;

/// Kafka OFFSET_OUT_OF_RANGE.
pub const OFFSET_OUT_OF_RANGE: i16 = 1;
/// Kafka INVALID_RECORD.
pub const INVALID_RECORD: i16 = 87;
/// Kafka KAFKA_STORAGE_ERROR: the disk failed us; the partition is offline.
pub const KAFKA_STORAGE_ERROR: i16 = 56;

/// Errors of the segmented log.
#[derive(Debug, thiserror::Error)]
pub enum LogError {
    /// Batch `index` of an append failed validation; nothing was written.
    #[error("batch {index} of the append is invalid: {source}")]
    InvalidBatch {
        /// Position of the bad batch among the appended batches.
        index: usize,
        /// What is wrong with it.
        #[source]
        source: RecordsError,
    },
    /// An append carried no batch at all.
    #[error("append carried no record batch")]
    EmptyAppend,
    /// The requested offset is outside [log_start_offset, log_end_offset].
    #[error("offset {offset} is out of range [{log_start_offset}, {log_end_offset}]")]
    OffsetOutOfRange {
        /// Offset asked for.
        offset: i64,
        /// First offset still in the log.
        log_start_offset: i64,
        /// Next offset to be assigned.
        log_end_offset: i64,
    },
    /// Replicated batches do not continue the log: the first must start at
    /// the log end, and offsets must rise (a follower that missed a
    /// truncation, or a leader sending the wrong range).
    #[error("replicated batch starts at offset {found}, expected at least {expected}")]
    UnexpectedOffset {
        /// The offset the next batch had to start at (or after).
        expected: i64,
        /// The batch's base offset.
        found: i64,
    },
    /// An I/O operation failed.
    #[error("{op} {path}: {source}")]
    Io {
        /// What we were doing.
        op: &'static str,
        /// The file or directory.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// An earlier write or fsync failed; the log refuses writes until reopened
    /// (after an operator has looked at the disk).
    #[error("log {dir} is offline after an earlier write or fsync failure")]
    Failed {
        /// The partition directory.
        dir: PathBuf,
    },
    /// Damage that is not a torn tail: refused, never papered over.
    #[error("corrupt log data in {file} at byte {position}: {reason}")]
    Corrupt {
        /// The segment (or index) file.
        file: PathBuf,
        /// Byte position of the damage.
        position: u64,
        /// What is wrong.
        reason: String,
    },
    /// The producer state refused a batch (fenced epoch, sequence gap,
    /// duplicate, stray control batch).
    #[error(transparent)]
    Producer(#[from] crate::producer_state::ProducerError),
    /// A checkpoint file could not be parsed.
    #[error("bad checkpoint file {path}: {reason}")]
    BadCheckpoint {
        /// The checkpoint file.
        path: PathBuf,
        /// What is wrong.
        reason: &'static str,
    },
}

impl LogError {
    /// The Kafka error code for a per-partition response.
    pub fn kafka_error_code(&self) -> i16 {
        match self {
            LogError::InvalidBatch { source, .. } => source.kafka_error_code(),
            LogError::EmptyAppend => INVALID_RECORD,
            LogError::OffsetOutOfRange { .. } | LogError::UnexpectedOffset { .. } => {
                OFFSET_OUT_OF_RANGE
            }
            LogError::Producer(e) => e.kafka_error_code(),
            LogError::Io { .. }
            | LogError::Failed { .. }
            | LogError::Corrupt { .. }
            | LogError::BadCheckpoint { .. } => KAFKA_STORAGE_ERROR,
        }
    }
}

/// Wraps an I/O error with the operation and path that failed.
pub(crate) fn io_err(
    op: &'static str,
    path: &std::path::Path,
) -> impl FnOnce(std::io::Error) -> LogError {
    let path = path.to_path_buf();
    move |source| LogError::Io { op, path, source }
}
