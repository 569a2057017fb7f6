//! Broker-wide defaults for topics and their logs (Kafka's `log.*`,
//! `num.partitions` and `default.replication.factor`), the sections of the
//! broker config the controller and the replica manager read.

use serde::Deserialize;

/// How appended data reaches the disk.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum FlushMode {
    /// One fsync covers every append waiting at that moment; produce
    /// requests with acks != 0 are answered after their data is fsynced.
    GroupCommit,
    /// Kafka's policy: fsync every `flush_messages` messages or `flush_ms`,
    /// and otherwise leave durability to replication and the page cache.
    Interval,
}

/// Timestamp type stamped on appended batches.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
pub enum TimestampTypeConfig {
    /// Keep the producer's timestamps.
    CreateTime,
    /// Overwrite them with the broker's clock at append.
    LogAppendTime,
}

/// Broker-wide topic log defaults; a topic's own configs override them.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct LogDefaults {
    /// Roll a segment when it reaches this size (Kafka: 1 GiB).
    pub segment_bytes: u64,
    /// Roll a segment after this age (Kafka: 7 days).
    pub segment_ms: i64,
    /// Delete segments older than this; -1 keeps forever (Kafka: 7 days).
    pub retention_ms: i64,
    /// Delete old segments while the partition is larger; -1 is unlimited.
    pub retention_bytes: i64,
    /// How often retention and time-based rolls are checked (Kafka: 5 min).
    pub retention_check_interval_ms: u64,
    /// Kafka's `log.cleaner.enable`: compact `cleanup.policy=compact`
    /// topics in the background.
    pub cleaner_enable: bool,
    /// Kafka's `log.cleaner.backoff.ms`: how long the cleaner sleeps when
    /// no log needs cleaning (Kafka: 15 s).
    pub cleaner_backoff_ms: u64,
    /// Kafka's `log.cleaner.dedupe.buffer.size`: memory of the cleaner's
    /// key → offset map, taken once at start. Kafka's default is 128 MiB;
    /// ours is 32 MiB (about 500,000 distinct keys per pass; a log with
    /// more keys is cleaned in several passes), because a broker on a
    /// small machine should not pay 128 MiB for a feature most topics do
    /// not use.
    pub cleaner_dedupe_buffer_bytes: u64,
    /// Kafka's `log.cleaner.io.max.bytes.per.second`: the cleaner's read
    /// plus write rate. 0 (the default) sets no limit, as Kafka's default
    /// of `Double.MAX_VALUE` does.
    pub cleaner_io_max_bytes_per_second: u64,
    /// Kafka's `log.cleanup.policy`: the `cleanup.policy` of topics that
    /// set none (`delete`, `compact`, or both comma-separated).
    pub cleanup_policy: String,
    /// Kafka's `log.cleaner.delete.retention.ms`: the default
    /// `delete.retention.ms` (1 day).
    pub cleaner_delete_retention_ms: i64,
    /// Kafka's `log.cleaner.min.cleanable.ratio`: the default
    /// `min.cleanable.dirty.ratio` (0.5).
    pub cleaner_min_cleanable_ratio: f64,
    /// Kafka's `log.cleaner.min.compaction.lag.ms`: the default
    /// `min.compaction.lag.ms` (0).
    pub cleaner_min_compaction_lag_ms: i64,
    /// Kafka's `log.cleaner.max.compaction.lag.ms`: the default
    /// `max.compaction.lag.ms` (no limit).
    pub cleaner_max_compaction_lag_ms: i64,
    /// Bytes between sparse index entries (Kafka: 4096).
    pub index_interval_bytes: u32,
    /// Largest record batch accepted (Kafka's `message.max.bytes`).
    pub message_max_bytes: u32,
    /// CreateTime or LogAppendTime.
    pub message_timestamp_type: TimestampTypeConfig,
    /// Kafka's `log.message.timestamp.before.max.ms`: how old a CreateTime
    /// record may be when produced (Kafka: Long.MAX_VALUE, no limit).
    pub message_timestamp_before_max_ms: i64,
    /// Kafka's `log.message.timestamp.after.max.ms`: how far ahead of the
    /// broker clock a CreateTime record may be (Kafka 4.0: 1 hour, KIP-1030).
    pub message_timestamp_after_max_ms: i64,
    /// Durability policy; group commit is the single-node default.
    pub flush_mode: FlushMode,
    /// With `flush_mode = "interval"`: fsync after this many messages.
    pub flush_messages: u64,
    /// With `flush_mode = "interval"`: fsync after this many milliseconds.
    pub flush_ms: u64,
    /// Segment files held open at once across all partitions (the bounded
    /// file-handle cache); 0 derives it from RLIMIT_NOFILE at start, see
    /// [`derive_max_open_files`]. Keeps open files from growing with the
    /// number of partitions.
    pub max_open_files: u64,
    /// Encryption at rest for every partition log and the metadata log. Not
    /// a `log.*` key: the binary builds it from `[encryption]` at start.
    #[serde(skip)]
    pub encryption: Option<std::sync::Arc<sluice_log::Keyring>>,
}

/// Smallest useful file-handle cache bound, also the floor of the derived one.
pub const MIN_MAX_OPEN_FILES: u64 = sluice_log::file_cache::MIN_MAX_OPEN_FILES as u64;

/// The `log.max_open_files` used when it is 0: half the (raised) soft
/// RLIMIT_NOFILE, leaving the other half to connections, the metadata log
/// and reads in flight, and at least [`MIN_MAX_OPEN_FILES`].
pub fn derive_max_open_files(nofile_limit: u64) -> u64 {
    (nofile_limit / 2).max(MIN_MAX_OPEN_FILES)
}

impl Default for LogDefaults {
    fn default() -> Self {
        LogDefaults {
            segment_bytes: 1 << 30,
            segment_ms: 7 * 24 * 3600 * 1000,
            retention_ms: 7 * 24 * 3600 * 1000,
            retention_bytes: -1,
            retention_check_interval_ms: 300_000,
            cleaner_enable: true,
            cleaner_backoff_ms: 15_000,
            cleaner_dedupe_buffer_bytes: 32 * 1024 * 1024,
            cleaner_io_max_bytes_per_second: 0,
            cleanup_policy: "delete".to_owned(),
            cleaner_delete_retention_ms: 86_400_000,
            cleaner_min_cleanable_ratio: 0.5,
            cleaner_min_compaction_lag_ms: 0,
            cleaner_max_compaction_lag_ms: i64::MAX,
            index_interval_bytes: 4096,
            message_max_bytes: 1_048_588,
            message_timestamp_type: TimestampTypeConfig::CreateTime,
            message_timestamp_before_max_ms: i64::MAX,
            message_timestamp_after_max_ms: sluice_log::config::DEFAULT_TIMESTAMP_AFTER_MAX_MS,
            flush_mode: FlushMode::GroupCommit,
            flush_messages: i64::MAX as u64,
            flush_ms: i64::MAX as u64,
            max_open_files: 0,
            encryption: None,
        }
    }
}

/// Topic creation defaults.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct TopicDefaults {
    /// Kafka's `auto.create.topics.enable`: a Metadata request that allows
    /// it (`allow_auto_topic_creation`, always for v0-v3) creates an unknown
    /// topic with these defaults. A Produce request never creates one (as
    /// in Kafka): producers ask Metadata first.
    pub auto_create: bool,
    /// Kafka's `num.partitions`: partitions of an auto-created topic, and of
    /// a CreateTopics request that asks for -1.
    pub num_partitions: i32,
    /// Kafka's `default.replication.factor`.
    pub default_replication_factor: i16,
}

impl Default for TopicDefaults {
    fn default() -> Self {
        TopicDefaults {
            auto_create: true,
            num_partitions: 1,
            default_replication_factor: 1,
        }
    }
}

/// Replication factors of the internal topics (Kafka's
/// `offsets.topic.replication.factor` and
/// `transaction.state.log.replication.factor`, both 3), capped at the live
/// brokers when the topic is created.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InternalTopicReplication {
    /// Replicas of each `__consumer_offsets` partition.
    pub offsets_topic_replication_factor: i16,
    /// Replicas of each `__transaction_state` partition.
    pub transaction_state_replication_factor: i16,
}

impl Default for InternalTopicReplication {
    fn default() -> Self {
        InternalTopicReplication {
            offsets_topic_replication_factor: 3,
            transaction_state_replication_factor: 3,
        }
    }
}
