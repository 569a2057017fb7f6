//! Kafka RecordBatch v2: header parsing, CRC-32C, the record codec, compression, and a batch builder.
//!
//! This crate owns the bytes of a record batch and nothing else: it does no
//! I/O and holds no state. The log (`sluice-log`) stores batches exactly as
//! they arrive, so the hot path only needs [`BatchHeader`], the validation
//! functions in [`batch`] and the in-place rewrite helpers. Decoding records
//! ([`decode_records`]) and building batches ([`BatchBuilder`]) are for the
//! broker's internal logs, tests, and the client.
//!
//! Layout:
//! - [`batch`] — the 61-byte header, validation, iteration over concatenated
//!   batches, and rewriting the fields Kafka lets a broker rewrite.
//! - [`record`] — the per-record codec (varints, nullable key/value, headers).
//! - [`compression`] — gzip, snappy (xerial and raw), lz4 frame, zstd, with a
//!   cap on decompressed size.
//! - [`builder`] — [`BatchBuilder`].
//! - [`validate`] — a producer batch checked against its records and the
//!   topic's rules (Kafka's LogValidator), with maxTimestamp corrected.
//! - [`error`] — [`RecordsError`] and its Kafka error codes.

// Tests may unwrap: a panic there is a test failure with a backtrace.
#![cfg_attr(test, allow(clippy::unwrap_used))]

pub mod batch;
pub mod builder;
pub mod compression;
pub mod error;
pub mod keys;
pub mod record;
pub mod validate;

pub use batch::{
    BATCH_HEADER_BYTES, BatchHeader, Batches, NextBatch, TimestampType, check_batch,
    check_producer_batch, decode_records, set_base_offset, set_log_append_time, set_max_timestamp,
    set_partition_leader_epoch,
};
pub use builder::{BatchBuilder, NewRecord};
pub use compression::{Compression, MAX_DECOMPRESSED_BYTES};
pub use error::RecordIssue;
pub use error::RecordsError;
pub use record::{Header, Record};
pub use validate::{ValidatedBatch, ValidationConfig, validate_producer_batch};
