//! Durable segmented log: Kafka RecordBatch v2 segments with offset and time indexes.
//!
//! One [`Log`] per partition directory. It owns the directory's files:
//! segments `<20-digit base offset>.log` with their `.index`,
//! `.timeindex` and `.txnindex`, and the checkpoints `recovery-point-offset-checkpoint`,
//! `log-start-offset-checkpoint`, `leader-epoch-checkpoint` and
//! `producer-state-checkpoint`. It must not
//! touch anything outside that directory (the data-dir lock belongs to the
//! binary). Formats, recovery rules and the flush policy are in
//! `docs/design.md`.
//!
//! - [`log`] — the [`Log`] API: append, read, timestamps, retention, flush.
//! - [`segment`] — one segment's files, its indexes, the recovery scan.
//! - [`store`] — [`SegmentStore`], the seam every lifecycle file operation
//!   goes through (default: [`LocalStore`]), with the hooks where
//!   compaction and tiered storage attach.
//! - [`file_cache`] — the bounded, process-wide cache of open segment files.
//! - [`txn_index`] — the `.txnindex` entry format (aborted transactions).
//! - [`cleaner`] — the pure core of compaction: the key → offset map and the
//!   rewrite of batches by Kafka's retention rules (no I/O).
//! - [`compaction`] — one clean of one log: map the dirty part, rewrite the
//!   cleanable segments through staged segments, move the checkpoint.
//! - [`checkpoint`] — atomic checkpoint files.
//! - [`producer_state`] — producer ids, sequences, open transactions.
//! - [`encryption`] — AES-256-GCM envelopes around batches, keys, the data-dir marker.
//! - [`config`] — [`LogConfig`] and [`FlushPolicy`].
//! - [`error`] — [`LogError`] and its Kafka error codes.

// Tests may unwrap: a panic there is a test failure with a backtrace.
#![cfg_attr(test, allow(clippy::unwrap_used))]

pub mod checkpoint;
pub mod cleaner;
pub mod compaction;
pub mod config;
pub mod encryption;
pub mod error;
pub mod file_cache;
pub mod log;
pub mod producer_state;
pub mod segment;
pub mod store;
pub mod txn_index;

#[cfg(test)]
mod cleaner_tests;
#[cfg(test)]
mod compaction_tests;
#[cfg(test)]
mod encryption_tests;
#[cfg(test)]
mod producer_state_tests;
#[cfg(test)]
mod replace_tests;
#[cfg(test)]
mod store_tests;
#[cfg(test)]
mod tests;

pub use config::{FlushPolicy, LogConfig, TimestampType};
pub use encryption::{EncryptionError, Keyring};
pub use error::LogError;
pub use file_cache::FileCache;
pub use log::{AppendInfo, CleanableRange, FileSlice, Log, ReadResult, SegmentSpan, StagedSegment};
pub use producer_state::{AbortedTxn, AppendOrigin, MarkerType, ProducerEntry, ProducerError};
pub use store::{
    DeleteReason, LocalStore, SealOrigin, SealedSegment, SegmentFile, SegmentPaths, SegmentStore,
};

/// Milliseconds since the Unix epoch, from the system clock.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}
