//! Coordinator settings: Kafka's `offsets.*`, `group.*` and
//! `transaction.*` broker configs.

use serde::Deserialize;

/// Transaction coordinator settings (Kafka's `transaction.*` broker configs).
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct TransactionConfig {
    /// Longest `transaction.timeout.ms` a producer may ask for (Kafka's
    /// `transaction.max.timeout.ms`, 15 minutes): an abandoned transaction
    /// holds back its partitions' last stable offset at most this long.
    pub max_timeout_ms: i32,
    /// Replicas of each `__transaction_state` partition (Kafka's
    /// `transaction.state.log.replication.factor`, 3), capped at the live
    /// brokers when the topic is created.
    pub state_log_replication_factor: i16,
}

impl Default for TransactionConfig {
    fn default() -> Self {
        TransactionConfig {
            max_timeout_ms: 900_000,
            state_log_replication_factor: 3,
        }
    }
}

/// Group coordinator settings (Kafka's `offsets.*`, `group.*` broker configs).
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct GroupConfig {
    /// Partitions of `__consumer_offsets` (Kafka's `offsets.topic.num.partitions`).
    pub offsets_topic_num_partitions: i32,
    /// Replicas of each `__consumer_offsets` partition (Kafka's
    /// `offsets.topic.replication.factor`, 3), capped at the live brokers
    /// when the topic is created.
    pub offsets_topic_replication_factor: i16,
    /// How long offsets of an empty group are kept (`offsets.retention.minutes`).
    pub offsets_retention_minutes: i64,
    /// Sluice only (Kafka has minutes only): the same retention in
    /// milliseconds, overriding `offsets_retention_minutes` when set, so
    /// tests and operators can use retentions shorter than a minute.
    pub offsets_retention_ms: Option<i64>,
    /// How often expired offsets are looked for (`offsets.retention.check.interval.ms`).
    pub offsets_retention_check_interval_ms: u64,
    /// Wait for more members before the first rebalance of an empty group
    /// (`group.initial.rebalance.delay.ms`).
    pub group_initial_rebalance_delay_ms: u64,
    /// Smallest session timeout a classic member may ask for.
    pub group_min_session_timeout_ms: i32,
    /// Largest session timeout a classic member may ask for.
    pub group_max_session_timeout_ms: i32,
    /// Longest metadata string kept with a committed offset (`offset.metadata.max.bytes`).
    pub offset_metadata_max_bytes: u32,
    /// KIP-848 member session timeout (`group.consumer.session.timeout.ms`).
    pub consumer_session_timeout_ms: i32,
    /// KIP-848 heartbeat interval told to members (`group.consumer.heartbeat.interval.ms`).
    pub consumer_heartbeat_interval_ms: i32,
}

impl GroupConfig {
    /// The effective offset retention: `offsets_retention_ms` if set, else
    /// `offsets_retention_minutes`.
    pub fn offsets_retention_ms(&self) -> i64 {
        self.offsets_retention_ms
            .unwrap_or_else(|| self.offsets_retention_minutes.saturating_mul(60_000))
    }
}

impl Default for GroupConfig {
    fn default() -> Self {
        GroupConfig {
            offsets_topic_num_partitions: 50,
            offsets_topic_replication_factor: 3,
            offsets_retention_minutes: 10_080,
            offsets_retention_ms: None,
            offsets_retention_check_interval_ms: 600_000,
            group_initial_rebalance_delay_ms: 3_000,
            group_min_session_timeout_ms: 6_000,
            group_max_session_timeout_ms: 1_800_000,
            offset_metadata_max_bytes: 4096,
            consumer_session_timeout_ms: 45_000,
            consumer_heartbeat_interval_ms: 5_000,
        }
    }
}
