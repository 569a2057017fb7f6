//! The one error type of this crate, with the Kafka error code each maps to.

/// Kafka error code CORRUPT_MESSAGE: the bytes do not form a valid batch.
pub const CORRUPT_MESSAGE: i16 = 2;
/// Kafka error code MESSAGE_TOO_LARGE (a.k.a. RECORD_TOO_LARGE on the wire docs).
pub const MESSAGE_TOO_LARGE: i16 = 10;
/// Kafka error code UNSUPPORTED_COMPRESSION_TYPE.
pub const UNSUPPORTED_COMPRESSION_TYPE: i16 = 76;
/// Kafka error code INVALID_TIMESTAMP: a record timestamp outside the topic's window.
pub const INVALID_TIMESTAMP: i16 = 32;
/// Kafka error code INVALID_RECORD: structurally sound but breaks a rule.
pub const INVALID_RECORD: i16 = 87;

/// Everything that can be wrong with a record batch or a record.
#[derive(Debug, thiserror::Error)]
pub enum RecordsError {
    /// Fewer bytes than a batch header, or than the header says the batch has.
    #[error("batch truncated: need {needed} bytes, have {available}")]
    Truncated {
        /// Bytes the batch needs (header size, or 12 + batchLength).
        needed: usize,
        /// Bytes actually present.
        available: usize,
    },
    /// The magic byte is not 2; only RecordBatch v2 is supported.
    #[error("unsupported magic {magic}, only RecordBatch v2 (magic 2) is supported")]
    BadMagic {
        /// The magic byte found.
        magic: i8,
    },
    /// batchLength is smaller than the rest of the header.
    #[error("batchLength {batch_length} is smaller than the {min} bytes a v2 header needs")]
    BatchLengthTooSmall {
        /// The batchLength field.
        batch_length: i32,
        /// The smallest valid batchLength.
        min: i32,
    },
    /// The buffer holds trailing bytes after the batch(es) that are not a batch.
    #[error("batchLength {batch_length} does not match the {available} bytes supplied")]
    LengthMismatch {
        /// The batchLength field.
        batch_length: i32,
        /// Bytes supplied.
        available: usize,
    },
    /// The batch is larger than the configured maximum.
    #[error("batch of {size} bytes exceeds the limit of {max} bytes")]
    BatchTooLarge {
        /// Size of the batch in bytes.
        size: usize,
        /// The limit.
        max: usize,
    },
    /// CRC-32C over attributes..end does not match the stored CRC.
    #[error("CRC mismatch: stored {stored:#010x}, computed {computed:#010x}")]
    CrcMismatch {
        /// CRC in the header.
        stored: u32,
        /// CRC computed over the bytes.
        computed: u32,
    },
    /// recordCount is not lastOffsetDelta + 1, or is not positive.
    #[error("recordCount {record_count} does not match lastOffsetDelta {last_offset_delta}")]
    InvalidRecordCount {
        /// The recordCount field.
        record_count: i32,
        /// The lastOffsetDelta field.
        last_offset_delta: i32,
    },
    /// Compression bits name a codec Kafka does not define (5..7).
    #[error("unknown compression codec id {id}")]
    UnknownCompression {
        /// The attributes bits 0-2.
        id: u8,
    },
    /// Decompression failed.
    #[error("{codec} decompression failed: {source}")]
    Decompress {
        /// Codec name.
        codec: &'static str,
        /// Underlying error.
        #[source]
        source: std::io::Error,
    },
    /// Compression failed (only from the builder; should not happen in memory).
    #[error("{codec} compression failed: {source}")]
    Compress {
        /// Codec name.
        codec: &'static str,
        /// Underlying error.
        #[source]
        source: std::io::Error,
    },
    /// Decompressed data would exceed the cap.
    #[error("decompressed size exceeds the limit of {limit} bytes")]
    DecompressedTooLarge {
        /// The cap in bytes.
        limit: usize,
    },
    /// A record inside the batch is malformed.
    #[error("malformed record {index}: {reason}")]
    MalformedRecord {
        /// Index of the record in the batch.
        index: usize,
        /// What is wrong.
        reason: &'static str,
    },
    /// The batch decoded to a different number of records than recordCount.
    #[error("batch holds {found} records but recordCount says {expected}")]
    RecordCountMismatch {
        /// recordCount.
        expected: i32,
        /// Records actually decoded.
        found: usize,
    },
    /// A record's offsetDelta is not its index in the batch (Kafka requires 0..n-1).
    #[error("record {index} has offsetDelta {offset_delta}; offset deltas must run 0..n-1")]
    OffsetDeltaMismatch {
        /// Index of the record in the batch.
        index: i32,
        /// The offsetDelta it carries.
        offset_delta: i32,
    },
    /// The codec is not allowed at this request version (zstd before Produce v7).
    #[error("{codec} compression needs Produce v7 or later")]
    CompressionNotAllowed {
        /// Codec name.
        codec: &'static str,
    },
    /// Records that are well formed but break a topic rule (timestamps, keys).
    #[error("{total} record(s) rejected; first: {}", first_issue(issues))]
    RejectedRecords {
        /// (index in batch, issue), at most `MAX_RECORD_ISSUES` of them.
        issues: Vec<(i32, RecordIssue)>,
        /// How many records were rejected in all.
        total: usize,
    },
    /// The builder was asked to build an empty batch; Kafka requires count > 0.
    #[error("a batch must hold at least one record")]
    EmptyBatch,
}

fn first_issue(issues: &[(i32, RecordIssue)]) -> String {
    issues.first().map_or_else(String::new, |(index, issue)| {
        format!("record {index}: {issue}")
    })
}

impl RecordsError {
    /// Per-record errors for the Produce response's `record_errors` (v8+):
    /// (index in the batch, message).
    pub fn record_errors(&self) -> Vec<(i32, String)> {
        match self {
            RecordsError::RejectedRecords { issues, .. } => issues
                .iter()
                .map(|(index, issue)| (*index, issue.to_string()))
                .collect(),
            RecordsError::OffsetDeltaMismatch { index, .. } => vec![(*index, self.to_string())],
            RecordsError::MalformedRecord { index, reason } => {
                vec![(
                    i32::try_from(*index).unwrap_or(i32::MAX),
                    (*reason).to_owned(),
                )]
            }
            _ => Vec::new(),
        }
    }

    /// The Kafka error code a produce response should carry for this error.
    pub fn kafka_error_code(&self) -> i16 {
        match self {
            RecordsError::BatchTooLarge { .. } | RecordsError::DecompressedTooLarge { .. } => {
                MESSAGE_TOO_LARGE
            }
            // Kafka's InvalidRecordException: the CRC held, but the records
            // inside do not match the header or do not parse.
            RecordsError::InvalidRecordCount { .. }
            | RecordsError::RecordCountMismatch { .. }
            | RecordsError::OffsetDeltaMismatch { .. }
            | RecordsError::MalformedRecord { .. }
            | RecordsError::EmptyBatch => INVALID_RECORD,
            RecordsError::RejectedRecords { issues, .. } => {
                if issues.iter().any(|(_, issue)| issue.is_timestamp()) {
                    INVALID_TIMESTAMP
                } else {
                    INVALID_RECORD
                }
            }
            RecordsError::UnknownCompression { .. }
            | RecordsError::CompressionNotAllowed { .. } => UNSUPPORTED_COMPRESSION_TYPE,
            RecordsError::Truncated { .. }
            | RecordsError::BadMagic { .. }
            | RecordsError::BatchLengthTooSmall { .. }
            | RecordsError::LengthMismatch { .. }
            | RecordsError::CrcMismatch { .. }
            | RecordsError::Decompress { .. }
            | RecordsError::Compress { .. } => CORRUPT_MESSAGE,
        }
    }
}

/// Why one record was refused. Kafka reports these per record
/// (`record_errors` in Produce v8+) and fails the whole batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RecordIssue {
    /// A CreateTime record timestamp outside the allowed window.
    TimestampOutOfRange {
        /// The record's timestamp.
        timestamp: i64,
        /// Earliest allowed timestamp.
        min: i64,
        /// Latest allowed timestamp.
        max: i64,
    },
    /// The producer set the LogAppendTime bit; only the broker may.
    LogAppendTimeFromProducer,
    /// A record without a key on a compacted topic.
    NoKeyOnCompactedTopic,
}

impl RecordIssue {
    /// True for the issues Kafka reports as INVALID_TIMESTAMP.
    pub fn is_timestamp(&self) -> bool {
        matches!(
            self,
            RecordIssue::TimestampOutOfRange { .. } | RecordIssue::LogAppendTimeFromProducer
        )
    }
}

impl std::fmt::Display for RecordIssue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RecordIssue::TimestampOutOfRange {
                timestamp,
                min,
                max,
            } => write!(
                f,
                "timestamp {timestamp} is out of range; it must be within [{min}, {max}]"
            ),
            RecordIssue::LogAppendTimeFromProducer => {
                f.write_str("producers must not set the timestamp type to LogAppendTime")
            }
            RecordIssue::NoKeyOnCompactedTopic => {
                f.write_str("a compacted topic cannot accept a record without a key")
            }
        }
    }
}
