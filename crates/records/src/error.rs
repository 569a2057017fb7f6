//! The one error type of this crate, with the Kafka error code each maps to.

/// Kafka error code CORRUPT_MESSAGE: the bytes do not form a valid batch.
pub const CORRUPT_MESSAGE: i16 = 2;
/// Kafka error code MESSAGE_TOO_LARGE (a.k.a. RECORD_TOO_LARGE on the wire docs).
pub const MESSAGE_TOO_LARGE: i16 = 10;
/// Kafka error code UNSUPPORTED_COMPRESSION_TYPE.
pub const UNSUPPORTED_COMPRESSION_TYPE: i16 = 76;
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
    /// The builder was asked to build an empty batch; Kafka requires count > 0.
    #[error("a batch must hold at least one record")]
    EmptyBatch,
}

impl RecordsError {
    /// The Kafka error code a produce response should carry for this error.
    pub fn kafka_error_code(&self) -> i16 {
        match self {
            RecordsError::BatchTooLarge { .. } | RecordsError::DecompressedTooLarge { .. } => {
                MESSAGE_TOO_LARGE
            }
            RecordsError::InvalidRecordCount { .. }
            | RecordsError::RecordCountMismatch { .. }
            | RecordsError::EmptyBatch => INVALID_RECORD,
            RecordsError::UnknownCompression { .. } => UNSUPPORTED_COMPRESSION_TYPE,
            RecordsError::Truncated { .. }
            | RecordsError::BadMagic { .. }
            | RecordsError::BatchLengthTooSmall { .. }
            | RecordsError::LengthMismatch { .. }
            | RecordsError::CrcMismatch { .. }
            | RecordsError::Decompress { .. }
            | RecordsError::Compress { .. }
            | RecordsError::MalformedRecord { .. } => CORRUPT_MESSAGE,
        }
    }
}
