//! [`LogError`]: everything the log can refuse, with its Kafka error code.

use std::path::PathBuf;

use sluice_records::RecordsError;

/// Kafka OFFSET_OUT_OF_RANGE.
pub const OFFSET_OUT_OF_RANGE: i16 = 1;
/// Kafka INVALID_RECORD.
pub const INVALID_RECORD: i16 = 87;
/// Kafka KAFKA_STORAGE_ERROR: the disk failed us; the partition is offline.
pub const KAFKA_STORAGE_ERROR: i16 = 56;
/// Kafka NOT_LEADER_OR_FOLLOWER.
pub const NOT_LEADER_OR_FOLLOWER: i16 = 6;

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
    /// Encryption at rest refused: a missing or wrong key, a tampered
    /// envelope, or an append carrying the reserved envelope bit.
    #[error(transparent)]
    Encryption(#[from] EncryptionError),
    /// A leader append found this replica no longer leading (the
    /// leadership moved between the request's check and the write).
    /// Nothing was written: a batch stamped with an epoch this broker does
    /// not lead would fork the log where no truncation can find it.
    #[error("this replica no longer leads (leader {leader} at epoch {leader_epoch})")]
    NotLeader {
        /// The leader the replica now knows.
        leader: i32,
        /// Its leader epoch.
        leader_epoch: i32,
    },
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
            LogError::NotLeader { .. } => NOT_LEADER_OR_FOLLOWER,
            // A client's batch with the reserved bit is its own fault.
            LogError::Encryption(EncryptionError::ReservedAttribute { .. }) => INVALID_RECORD,
            // Anything else means the stored data cannot be served:
            // Kafka's code for a replica whose log cannot be read.
            LogError::Encryption(_) => KAFKA_STORAGE_ERROR,
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

/// Errors of encryption at rest.
#[derive(Debug, thiserror::Error)]
pub enum EncryptionError {
    /// An envelope names a key the keyring lacks (or encryption is off).
    #[error(
        "encrypted batch at offset {base_offset} needs key id {key_id}, which is not configured"
    )]
    KeyUnavailable {
        /// The key id in the envelope.
        key_id: u32,
        /// Base offset of the batch.
        base_offset: i64,
    },
    /// The tag did not verify: wrong key, or the stored bytes were changed.
    #[error(
        "encrypted batch at offset {base_offset} fails authentication with key id {key_id} (wrong key or tampered data)"
    )]
    AuthenticationFailed {
        /// The key id in the envelope.
        key_id: u32,
        /// Base offset of the batch.
        base_offset: i64,
    },
    /// A sealed unit (a Raft log entry or snapshot) names a key the
    /// keyring lacks.
    #[error("encrypted data needs key id {key_id}, which is not configured")]
    SealedKeyUnavailable {
        /// The key id in the unit.
        key_id: u32,
    },
    /// A sealed unit's tag did not verify: wrong key, or changed bytes.
    #[error(
        "encrypted data fails authentication with key id {key_id} (wrong key or tampered data)"
    )]
    SealedAuthenticationFailed {
        /// The key id in the unit.
        key_id: u32,
    },
    /// The bytes do not frame an envelope.
    #[error("malformed encrypted batch at byte {position}: {reason}")]
    Malformed {
        /// Position in the buffer.
        position: usize,
        /// What is wrong.
        reason: &'static str,
    },
    /// A batch to encrypt already carries the envelope bit.
    #[error("batch at offset {base_offset} carries the reserved attributes bit 14")]
    ReservedAttribute {
        /// Base offset of the batch.
        base_offset: i64,
    },
    /// The key file or environment value does not parse.
    #[error("{source_name} line {line}: {reason}")]
    BadKeyLine {
        /// The key file path, or the environment variable.
        source_name: String,
        /// 1-based line number.
        line: usize,
        /// What is wrong (never the key material).
        reason: &'static str,
    },
    /// The keyring is unusable as configured.
    #[error("{0}")]
    BadKeyring(String),
    /// The OS random number generator failed.
    #[error("the OS random number generator failed: {0}")]
    Random(String),
    /// A file could not be read or written.
    #[error("{op} {path}: {source}")]
    Io {
        /// What was being done.
        op: &'static str,
        /// The file.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// The data directory holds encrypted data but encryption is off.
    #[error(
        "{path} records that this data directory holds data encrypted with key ids {key_ids:?}, but [encryption] enabled = false; enable it with those keys"
    )]
    EncryptedButDisabled {
        /// The marker file.
        path: PathBuf,
        /// Key ids the marker lists.
        key_ids: Vec<u32>,
    },
    /// Data was written with a key id the keyring lacks.
    #[error(
        "{path} records data written with key id {key_id}, which is missing from the configured keys; add it back (see docs/security.md to retire a key)"
    )]
    MissingKey {
        /// The marker file.
        path: PathBuf,
        /// The missing key id.
        key_id: u32,
    },
    /// A configured key is not the key that wrote the data under its id.
    #[error(
        "configured key id {key_id} is not the key that wrote this data directory's data (its check in {path} fails)"
    )]
    WrongKey {
        /// The marker file.
        path: PathBuf,
        /// The key id whose key differs.
        key_id: u32,
    },
    /// The marker file does not parse.
    #[error("bad encryption marker {path}: {reason}")]
    BadMarker {
        /// The marker file.
        path: PathBuf,
        /// What is wrong.
        reason: &'static str,
    },
}
