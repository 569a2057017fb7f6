//! Per-partition log configuration, with Kafka's defaults.

use std::sync::Arc;

pub use sluice_records::TimestampType;

use crate::encryption::Keyring;

/// When appended data is forced to disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FlushPolicy {
    /// One fsync covers every append waiting at that moment: the broker calls
    /// [`crate::Log::sync_until`] before acknowledging. The single-node default,
    /// because with one copy of the data only the disk can make it durable.
    GroupCommit,
    /// Kafka's `flush.messages` / `flush.ms`: fsync after this many messages,
    /// or when this many ms have passed since the last flush (checked by
    /// [`crate::Log::maybe_flush_on_timer`]). Kafka's defaults (`u64::MAX`)
    /// mean "never; leave it to the OS and to replication".
    Kafka {
        /// `flush.messages`.
        flush_messages: u64,
        /// `flush.ms`.
        flush_ms: u64,
    },
}

impl FlushPolicy {
    /// Kafka's defaults: never flush explicitly.
    pub const KAFKA_DEFAULT: FlushPolicy = FlushPolicy::Kafka {
        flush_messages: u64::MAX,
        flush_ms: u64::MAX,
    };
}

/// Configuration of one partition's log. Field names follow Kafka's topic configs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogConfig {
    /// `segment.bytes`: roll the active segment once it would grow past this.
    pub segment_bytes: u64,
    /// `segment.ms`: roll the active segment once its first batch is this old.
    pub segment_ms: i64,
    /// `retention.ms`: delete sealed segments whose newest timestamp is older; -1 = forever.
    pub retention_ms: i64,
    /// `retention.bytes`: delete oldest segments while the log is larger; -1 = unlimited.
    pub retention_bytes: i64,
    /// `index.interval.bytes`: bytes of log between two offset index entries.
    pub index_interval_bytes: u32,
    /// `segment.index.bytes`: roll when an index file would grow past this.
    pub segment_index_bytes: u32,
    /// `max.message.bytes`: the largest batch an append accepts.
    pub max_message_bytes: u32,
    /// `message.timestamp.type`.
    pub timestamp_type: TimestampType,
    /// `flush.messages` / `flush.ms`, or group commit.
    pub flush: FlushPolicy,
    /// `message.timestamp.before.max.ms`: oldest CreateTime a producer may send, relative to now.
    /// Checked on the produce path (`sluice_records::validate`), not by the log.
    pub message_timestamp_before_max_ms: i64,
    /// `message.timestamp.after.max.ms`: furthest-future CreateTime a producer may send.
    /// Checked on the produce path, not by the log.
    pub message_timestamp_after_max_ms: i64,
    /// `cleanup.policy` includes `compact`: producers must key every record.
    pub compact: bool,
    /// `cleanup.policy` includes `delete`: `retention.ms` and
    /// `retention.bytes` delete old segments. A topic with `compact` alone
    /// keeps every segment however old or large (Kafka's rule), so a
    /// changelog never loses a key's last value to retention.
    pub delete: bool,
    /// `delete.retention.ms`: how long the cleaner keeps a tombstone (and
    /// a transaction marker) that no longer hides anything, so consumers
    /// reading from the start see the delete.
    pub delete_retention_ms: i64,
    /// `min.compaction.lag.ms`: a record stays uncompacted at least this
    /// long after it was written.
    pub min_compaction_lag_ms: i64,
    /// `max.compaction.lag.ms`: a log whose oldest uncleaned record is
    /// older than this is cleaned whatever its dirty ratio.
    pub max_compaction_lag_ms: i64,
    /// `min.cleanable.dirty.ratio` in thousandths (500 = 0.5): a log is
    /// cleaned once this share of it is dirty (written since the last
    /// clean). Kept in thousandths so the config stays `Eq`.
    pub min_cleanable_dirty_ratio_permille: u16,
    /// Encryption at rest: new batches are sealed with the keyring's active
    /// key, and envelopes are opened with any of its keys. `None` writes
    /// plain batches (and refuses to serve envelopes).
    pub encryption: Option<Arc<Keyring>>,
}

/// Kafka 4.0's `message.timestamp.after.max.ms` default (KIP-1030): one hour.
pub const DEFAULT_TIMESTAMP_AFTER_MAX_MS: i64 = 60 * 60 * 1000;

const DAY_MS: i64 = 24 * 60 * 60 * 1000;

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            segment_bytes: 1 << 30,
            segment_ms: 7 * DAY_MS,
            retention_ms: 7 * DAY_MS,
            retention_bytes: -1,
            index_interval_bytes: 4096,
            segment_index_bytes: 10 * 1024 * 1024,
            max_message_bytes: 1_048_588,
            timestamp_type: TimestampType::CreateTime,
            flush: FlushPolicy::GroupCommit,
            message_timestamp_before_max_ms: i64::MAX,
            message_timestamp_after_max_ms: DEFAULT_TIMESTAMP_AFTER_MAX_MS,
            compact: false,
            delete: true,
            delete_retention_ms: DAY_MS,
            min_compaction_lag_ms: 0,
            max_compaction_lag_ms: i64::MAX,
            min_cleanable_dirty_ratio_permille: 500,
            encryption: None,
        }
    }
}
