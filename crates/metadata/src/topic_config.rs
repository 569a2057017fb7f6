//! Topic-level configs: Kafka's names, validation, defaults from the broker
//! config, and the mapping onto a partition's [`LogConfig`].
//!
//! A topic stores only the keys set on it; everything else falls back to
//! the broker default, exactly as Kafka reports in DescribeConfigs.

use std::collections::BTreeMap;

use sluice_log::{FlushPolicy, LogConfig};
use sluice_records::TimestampType;

use crate::config::{FlushMode, LogDefaults, TimestampTypeConfig};

/// How a topic config's value is typed, for validation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// A signed integer with an inclusive lower bound.
    Long(i64),
    /// An integer that must fit i32, with an inclusive lower bound.
    Int(i64),
    /// One of a fixed set of words.
    Choice(&'static [&'static str]),
    /// Comma-separated words from a fixed set (cleanup.policy).
    List(&'static [&'static str]),
    /// true / false.
    Bool,
    /// A decimal number from 0 to 1 (min.cleanable.dirty.ratio).
    Ratio,
    /// Kafka's throttled-replicas list (KIP-73): empty, `*`, or a comma
    /// list of `partition:brokerId`.
    ThrottledReplicas,
}

/// A topic config Kafka defines, with the broker-wide default it falls back to.
#[derive(Debug)]
pub struct ConfigDef {
    /// Kafka's name, e.g. `retention.ms`.
    pub name: &'static str,
    kind: Kind,
    /// Marked sensitive in DescribeConfigs.
    pub sensitive: bool,
}

const fn def(name: &'static str, kind: Kind) -> ConfigDef {
    ConfigDef {
        name,
        kind,
        sensitive: false,
    }
}

/// The replicas of a topic whose replication is throttled on their
/// leader (KIP-73): `partition:brokerId` names the leader-side replica.
pub const LEADER_THROTTLED_REPLICAS: &str = "leader.replication.throttled.replicas";
/// The replicas of a topic whose replication is throttled on the follower
/// (KIP-73): `partition:brokerId` names the fetching replica.
pub const FOLLOWER_THROTTLED_REPLICAS: &str = "follower.replication.throttled.replicas";

/// The subject name strategies Confluent's schema validation configs
/// accept (`confluent.{key,value}.subject.name.strategy`): the class
/// names, and the short names.
pub const SUBJECT_NAME_STRATEGIES: &[&str] = &[
    "io.confluent.kafka.serializers.subject.TopicNameStrategy",
    "io.confluent.kafka.serializers.subject.RecordNameStrategy",
    "io.confluent.kafka.serializers.subject.TopicRecordNameStrategy",
    "TopicNameStrategy",
    "RecordNameStrategy",
    "TopicRecordNameStrategy",
];

/// Every topic config accepted by CreateTopics and AlterConfigs. Keys that
/// Kafka has but Sluice does not act on yet are accepted and stored so
/// clients that set them keep working; `docs/compatibility.md` lists which.
pub const TOPIC_CONFIGS: &[ConfigDef] = &[
    def("cleanup.policy", Kind::List(&["delete", "compact"])),
    def(
        "compression.type",
        Kind::Choice(&["producer", "uncompressed", "gzip", "snappy", "lz4", "zstd"]),
    ),
    // Broker-side schema validation (Confluent Server's names; the schema
    // registry crate enforces them on produce).
    def("confluent.key.schema.validation", Kind::Bool),
    def(
        "confluent.key.subject.name.strategy",
        Kind::Choice(SUBJECT_NAME_STRATEGIES),
    ),
    def("confluent.value.schema.validation", Kind::Bool),
    def(
        "confluent.value.subject.name.strategy",
        Kind::Choice(SUBJECT_NAME_STRATEGIES),
    ),
    def("delete.retention.ms", Kind::Long(0)),
    def("file.delete.delay.ms", Kind::Long(0)),
    def("flush.messages", Kind::Long(1)),
    def("flush.ms", Kind::Long(0)),
    def("index.interval.bytes", Kind::Int(0)),
    def(LEADER_THROTTLED_REPLICAS, Kind::ThrottledReplicas),
    def(FOLLOWER_THROTTLED_REPLICAS, Kind::ThrottledReplicas),
    def("max.compaction.lag.ms", Kind::Long(1)),
    def("max.message.bytes", Kind::Int(0)),
    def("message.timestamp.after.max.ms", Kind::Long(0)),
    def("message.timestamp.before.max.ms", Kind::Long(0)),
    def(
        "message.timestamp.type",
        Kind::Choice(&["CreateTime", "LogAppendTime"]),
    ),
    def("min.cleanable.dirty.ratio", Kind::Ratio),
    def("min.compaction.lag.ms", Kind::Long(0)),
    def("min.insync.replicas", Kind::Int(1)),
    def("preallocate", Kind::Bool),
    def("retention.bytes", Kind::Long(-1)),
    def("retention.ms", Kind::Long(-1)),
    def("segment.bytes", Kind::Int(14)),
    def("segment.index.bytes", Kind::Int(4)),
    def("segment.jitter.ms", Kind::Long(0)),
    def("segment.ms", Kind::Long(1)),
    def("unclean.leader.election.enable", Kind::Bool),
];

/// A rejected topic config, mapped to INVALID_CONFIG by handlers.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum TopicConfigError {
    /// The key is not a topic config.
    #[error("unknown topic config `{0}`")]
    Unknown(String),
    /// The value does not fit the key.
    #[error("invalid value `{value}` for topic config `{name}`: {reason}")]
    Invalid {
        /// The key.
        name: String,
        /// The value given.
        value: String,
        /// Why it was refused.
        reason: String,
    },
}

/// Looks up a topic config's definition.
pub fn lookup(name: &str) -> Option<&'static ConfigDef> {
    TOPIC_CONFIGS.iter().find(|d| d.name == name)
}

/// Kafka's DescribeConfigs `config_type` for a topic config (3 INT, 5 LONG, ...).
pub fn config_type(def: &ConfigDef) -> i8 {
    match def.kind {
        Kind::Bool => 1,
        Kind::Choice(_) => 2,
        Kind::Int(_) => 3,
        Kind::Long(_) => 5,
        Kind::Ratio => 6,
        Kind::List(_) | Kind::ThrottledReplicas => 7,
    }
}

/// Checks one key and value; `None` means "reset to default" and is always valid
/// for a known key.
pub fn validate(name: &str, value: Option<&str>) -> Result<(), TopicConfigError> {
    let def = lookup(name).ok_or_else(|| TopicConfigError::Unknown(name.to_owned()))?;
    let Some(value) = value else { return Ok(()) };
    let bad = |reason: String| TopicConfigError::Invalid {
        name: name.to_owned(),
        value: value.to_owned(),
        reason,
    };
    match def.kind {
        Kind::Long(min) | Kind::Int(min) => {
            let n: i64 = value
                .trim()
                .parse()
                .map_err(|_| bad("not an integer".to_owned()))?;
            if n < min {
                return Err(bad(format!("must be at least {min}")));
            }
            if matches!(def.kind, Kind::Int(_)) && n > i64::from(i32::MAX) {
                return Err(bad(format!("must be at most {}", i32::MAX)));
            }
        }
        Kind::Choice(words) => {
            if !words.contains(&value) {
                return Err(bad(format!("must be one of {}", words.join(", "))));
            }
        }
        Kind::List(words) => {
            for part in value.split(',').map(str::trim) {
                if !words.contains(&part) {
                    return Err(bad(format!(
                        "each entry must be one of {}",
                        words.join(", ")
                    )));
                }
            }
        }
        Kind::Bool => {
            if !value.eq_ignore_ascii_case("true") && !value.eq_ignore_ascii_case("false") {
                return Err(bad("must be true or false".to_owned()));
            }
        }
        Kind::ThrottledReplicas => {
            parse_throttled_replicas(value).map_err(bad)?;
        }
        Kind::Ratio => {
            let r: f64 = value
                .trim()
                .parse()
                .map_err(|_| bad("not a number".to_owned()))?;
            if !(0.0..=1.0).contains(&r) {
                return Err(bad("must be between 0 and 1".to_owned()));
            }
        }
    }
    Ok(())
}

/// A parsed throttled-replicas list (`leader.replication.throttled.replicas`
/// or `follower.replication.throttled.replicas`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ThrottledReplicas {
    /// `*`: every replica of the topic on every broker.
    All,
    /// The `(partition, broker_id)` pairs listed (none when empty).
    Listed(Vec<(i32, i32)>),
}

impl ThrottledReplicas {
    /// True if replica `broker_id` of `partition` is throttled.
    pub fn contains(&self, partition: i32, broker_id: i32) -> bool {
        match self {
            ThrottledReplicas::All => true,
            ThrottledReplicas::Listed(pairs) => pairs.contains(&(partition, broker_id)),
        }
    }
}

/// Parses Kafka's throttled-replicas format: empty, `*`, or a comma list of
/// `partition:brokerId` (whitespace around entries allowed, as Kafka's
/// validator trims them). The error says which entry is wrong.
pub fn parse_throttled_replicas(value: &str) -> Result<ThrottledReplicas, String> {
    let value = value.trim();
    if value == "*" {
        return Ok(ThrottledReplicas::All);
    }
    let mut pairs = Vec::new();
    for entry in value.split(',').map(str::trim) {
        if entry.is_empty() {
            // Kafka's validator accepts empty entries (`""`, `"0:1,"`).
            continue;
        }
        // Digits only, as Kafka's `[0-9]+:[0-9]+` (no sign, no spaces inside).
        let id = |s: &str| -> Option<i32> {
            if s.is_empty() || !s.bytes().all(|c| c.is_ascii_digit()) {
                return None;
            }
            s.parse().ok()
        };
        let parsed = entry
            .split_once(':')
            .and_then(|(p, b)| Some((id(p)?, id(b)?)));
        match parsed {
            Some(pair) => pairs.push(pair),
            None => {
                return Err(format!(
                    "entry `{entry}` is not `partition:brokerId`; the value must be empty, `*`, \
                     or a comma list of `partition:brokerId`"
                ));
            }
        }
    }
    Ok(ThrottledReplicas::Listed(pairs))
}

/// True if replica `broker_id` of `partition` is listed (or covered by `*`)
/// in the topic's config `key`, one of [`LEADER_THROTTLED_REPLICAS`] and
/// [`FOLLOWER_THROTTLED_REPLICAS`]. A value that does not parse (it was
/// validated when set, so never in practice) throttles nothing.
pub fn replica_throttled(
    configs: &BTreeMap<String, String>,
    key: &str,
    partition: i32,
    broker_id: i32,
) -> bool {
    configs
        .get(key)
        .and_then(|v| parse_throttled_replicas(v).ok())
        .is_some_and(|t| t.contains(partition, broker_id))
}

/// The broker-wide default of a topic config, as DescribeConfigs reports it.
pub fn default_value(name: &str, defaults: &LogDefaults) -> String {
    match name {
        "cleanup.policy" => defaults.cleanup_policy.clone(),
        "compression.type" => "producer".into(),
        "confluent.key.schema.validation" | "confluent.value.schema.validation" => "false".into(),
        "confluent.key.subject.name.strategy" | "confluent.value.subject.name.strategy" => {
            SUBJECT_NAME_STRATEGIES[0].into()
        }
        "delete.retention.ms" => defaults.cleaner_delete_retention_ms.to_string(),
        "file.delete.delay.ms" => "60000".into(),
        "flush.messages" => match defaults.flush_mode {
            FlushMode::Interval => defaults.flush_messages.to_string(),
            FlushMode::GroupCommit => i64::MAX.to_string(),
        },
        "flush.ms" => match defaults.flush_mode {
            FlushMode::Interval => defaults.flush_ms.to_string(),
            FlushMode::GroupCommit => i64::MAX.to_string(),
        },
        "index.interval.bytes" => defaults.index_interval_bytes.to_string(),
        // Kafka's default: no replica is throttled.
        LEADER_THROTTLED_REPLICAS | FOLLOWER_THROTTLED_REPLICAS => String::new(),
        "max.compaction.lag.ms" => defaults.cleaner_max_compaction_lag_ms.to_string(),
        "max.message.bytes" => defaults.message_max_bytes.to_string(),
        "message.timestamp.after.max.ms" => defaults.message_timestamp_after_max_ms.to_string(),
        "message.timestamp.before.max.ms" => defaults.message_timestamp_before_max_ms.to_string(),
        "message.timestamp.type" => match defaults.message_timestamp_type {
            TimestampTypeConfig::CreateTime => "CreateTime".into(),
            TimestampTypeConfig::LogAppendTime => "LogAppendTime".into(),
        },
        "min.cleanable.dirty.ratio" => defaults.cleaner_min_cleanable_ratio.to_string(),
        "min.compaction.lag.ms" => defaults.cleaner_min_compaction_lag_ms.to_string(),
        "min.insync.replicas" => "1".into(),
        "preallocate" => "false".into(),
        "retention.bytes" => defaults.retention_bytes.to_string(),
        "retention.ms" => defaults.retention_ms.to_string(),
        "segment.bytes" => defaults.segment_bytes.to_string(),
        "segment.index.bytes" => "10485760".into(),
        "segment.jitter.ms" => "0".into(),
        "segment.ms" => defaults.segment_ms.to_string(),
        "unclean.leader.election.enable" => "false".into(),
        _ => String::new(),
    }
}

/// Builds a partition's log config from the broker defaults and the topic's
/// own overrides. Values were validated when they were set.
pub fn log_config(defaults: &LogDefaults, topic: &BTreeMap<String, String>) -> LogConfig {
    let get = |name: &str| -> Option<i64> { topic.get(name).and_then(|v| v.trim().parse().ok()) };
    // `cleanup.policy` defaults to the broker's `log.cleanup.policy`.
    let policy = topic
        .get("cleanup.policy")
        .unwrap_or(&defaults.cleanup_policy);
    let policy_has = |word: &str| policy.split(',').any(|part| part.trim() == word);
    let ratio = |r: f64| (r.clamp(0.0, 1.0) * 1000.0).round() as u16;
    let mut config = LogConfig {
        segment_bytes: get("segment.bytes").map_or(defaults.segment_bytes, |v| v.max(14) as u64),
        segment_ms: get("segment.ms").unwrap_or(defaults.segment_ms),
        retention_ms: get("retention.ms").unwrap_or(defaults.retention_ms),
        retention_bytes: get("retention.bytes").unwrap_or(defaults.retention_bytes),
        index_interval_bytes: get("index.interval.bytes")
            .map_or(defaults.index_interval_bytes, |v| {
                v.clamp(0, i64::from(i32::MAX)) as u32
            }),
        max_message_bytes: get("max.message.bytes").map_or(defaults.message_max_bytes, |v| {
            v.clamp(0, i64::from(i32::MAX)) as u32
        }),
        timestamp_type: match topic.get("message.timestamp.type").map(String::as_str) {
            Some("LogAppendTime") => TimestampType::LogAppendTime,
            Some(_) => TimestampType::CreateTime,
            None => match defaults.message_timestamp_type {
                TimestampTypeConfig::CreateTime => TimestampType::CreateTime,
                TimestampTypeConfig::LogAppendTime => TimestampType::LogAppendTime,
            },
        },
        message_timestamp_before_max_ms: get("message.timestamp.before.max.ms")
            .unwrap_or(defaults.message_timestamp_before_max_ms),
        message_timestamp_after_max_ms: get("message.timestamp.after.max.ms")
            .unwrap_or(defaults.message_timestamp_after_max_ms),
        compact: policy_has("compact"),
        delete: policy_has("delete"),
        delete_retention_ms: get("delete.retention.ms")
            .unwrap_or(defaults.cleaner_delete_retention_ms),
        min_compaction_lag_ms: get("min.compaction.lag.ms")
            .unwrap_or(defaults.cleaner_min_compaction_lag_ms),
        max_compaction_lag_ms: get("max.compaction.lag.ms")
            .unwrap_or(defaults.cleaner_max_compaction_lag_ms),
        min_cleanable_dirty_ratio_permille: ratio(
            topic
                .get("min.cleanable.dirty.ratio")
                .and_then(|v| v.trim().parse::<f64>().ok())
                .filter(|r| (0.0..=1.0).contains(r))
                .unwrap_or(defaults.cleaner_min_cleanable_ratio),
        ),
        encryption: defaults.encryption.clone(),
        ..LogConfig::default()
    };
    if let Some(v) = get("segment.index.bytes") {
        config.segment_index_bytes = v.clamp(4, i64::from(i32::MAX)) as u32;
    }
    let topic_flush = get("flush.messages").is_some() || get("flush.ms").is_some();
    config.flush = match (defaults.flush_mode, topic_flush) {
        (FlushMode::GroupCommit, false) => FlushPolicy::GroupCommit,
        _ => FlushPolicy::Kafka {
            flush_messages: get("flush.messages")
                .map_or(defaults.flush_messages, |v| v.max(1) as u64),
            flush_ms: get("flush.ms").map_or(defaults.flush_ms, |v| v.max(0) as u64),
        },
    };
    config
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validation_names_the_key_and_value() {
        assert_eq!(validate("retention.ms", Some("1000")), Ok(()));
        assert_eq!(validate("retention.ms", Some("-1")), Ok(()));
        let err = validate("retention.ms", Some("soon")).expect_err("not a number");
        assert!(err.to_string().contains("retention.ms") && err.to_string().contains("soon"));
        assert!(validate("segment.bytes", Some("3")).is_err());
        assert!(validate("cleanup.policy", Some("compact,delete")).is_ok());
        assert!(validate("cleanup.policy", Some("shred")).is_err());
        assert!(validate("min.cleanable.dirty.ratio", Some("0.25")).is_ok());
        for bad in ["1.5", "-0.1", "half", "NaN"] {
            assert!(
                validate("min.cleanable.dirty.ratio", Some(bad)).is_err(),
                "{bad}"
            );
        }
        assert!(matches!(
            validate("no.such", Some("1")),
            Err(TopicConfigError::Unknown(_))
        ));
        assert_eq!(validate("retention.ms", None), Ok(()));
    }

    #[test]
    fn throttled_replicas_take_kafkas_format_only() {
        for good in ["", "*", " * ", "0:1", "0:1,1:2", "0:1, 3:104 ,", "12:0"] {
            assert_eq!(
                validate(LEADER_THROTTLED_REPLICAS, Some(good)),
                Ok(()),
                "`{good}`"
            );
            assert_eq!(validate(FOLLOWER_THROTTLED_REPLICAS, Some(good)), Ok(()));
        }
        for bad in [
            "1", "0:", ":1", "a:1", "0:b", "0:1:2", "-1:1", "0:-1", "*,0:1", "0;1", "+1:1", "0 :1",
        ] {
            let err = validate(LEADER_THROTTLED_REPLICAS, Some(bad)).expect_err(bad);
            assert!(err.to_string().contains(LEADER_THROTTLED_REPLICAS), "{err}");
            assert!(validate(FOLLOWER_THROTTLED_REPLICAS, Some(bad)).is_err());
        }
        assert_eq!(
            parse_throttled_replicas("0:1, 2:3"),
            Ok(ThrottledReplicas::Listed(vec![(0, 1), (2, 3)]))
        );
        assert_eq!(parse_throttled_replicas("*"), Ok(ThrottledReplicas::All));
        let mut configs = BTreeMap::new();
        assert!(!replica_throttled(
            &configs,
            LEADER_THROTTLED_REPLICAS,
            0,
            1
        ));
        configs.insert(LEADER_THROTTLED_REPLICAS.to_owned(), "0:1,2:1".to_owned());
        assert!(replica_throttled(&configs, LEADER_THROTTLED_REPLICAS, 0, 1));
        assert!(replica_throttled(&configs, LEADER_THROTTLED_REPLICAS, 2, 1));
        assert!(!replica_throttled(
            &configs,
            LEADER_THROTTLED_REPLICAS,
            1,
            1
        ));
        assert!(!replica_throttled(
            &configs,
            LEADER_THROTTLED_REPLICAS,
            0,
            2
        ));
        assert!(!replica_throttled(
            &configs,
            FOLLOWER_THROTTLED_REPLICAS,
            0,
            1
        ));
        configs.insert(FOLLOWER_THROTTLED_REPLICAS.to_owned(), "*".to_owned());
        assert!(replica_throttled(
            &configs,
            FOLLOWER_THROTTLED_REPLICAS,
            7,
            9
        ));
        let defaults = LogDefaults::default();
        assert_eq!(default_value(LEADER_THROTTLED_REPLICAS, &defaults), "");
        assert_eq!(
            config_type(lookup(FOLLOWER_THROTTLED_REPLICAS).expect("defined")),
            7
        );
    }

    #[test]
    fn topic_overrides_beat_broker_defaults() {
        let defaults = LogDefaults::default();
        let mut topic = BTreeMap::new();
        topic.insert("retention.ms".to_owned(), "1234".to_owned());
        topic.insert(
            "message.timestamp.type".to_owned(),
            "LogAppendTime".to_owned(),
        );
        let c = log_config(&defaults, &topic);
        assert_eq!(c.retention_ms, 1234);
        assert_eq!(c.segment_bytes, defaults.segment_bytes);
        assert_eq!(c.timestamp_type, TimestampType::LogAppendTime);
        assert!(matches!(c.flush, FlushPolicy::GroupCommit));
        assert_eq!(c.message_timestamp_after_max_ms, 3_600_000);
        assert_eq!(c.message_timestamp_before_max_ms, i64::MAX);
        assert!(!c.compact && c.delete, "cleanup.policy defaults to delete");
        topic.insert("message.timestamp.after.max.ms".to_owned(), "5".to_owned());
        topic.insert("cleanup.policy".to_owned(), "delete,compact".to_owned());
        let c = log_config(&defaults, &topic);
        assert_eq!(c.message_timestamp_after_max_ms, 5);
        assert!(c.compact && c.delete);
        topic.insert("cleanup.policy".to_owned(), "compact".to_owned());
        let c = log_config(&defaults, &topic);
        assert!(
            c.compact && !c.delete,
            "compact alone: retention deletes nothing"
        );
        topic.insert("cleanup.policy".to_owned(), "delete,compact".to_owned());
        topic.insert("flush.messages".to_owned(), "1".to_owned());
        assert!(matches!(
            log_config(&defaults, &topic).flush,
            FlushPolicy::Kafka {
                flush_messages: 1,
                ..
            }
        ));
    }

    #[test]
    fn the_brokers_log_cleaner_defaults_apply_to_topics_that_set_nothing() {
        let defaults = LogDefaults {
            cleanup_policy: "compact".to_owned(),
            cleaner_delete_retention_ms: 5_000,
            cleaner_min_cleanable_ratio: 0.25,
            cleaner_min_compaction_lag_ms: 7,
            cleaner_max_compaction_lag_ms: 9_000,
            ..LogDefaults::default()
        };
        let empty = BTreeMap::new();
        let c = log_config(&defaults, &empty);
        assert!(c.compact && !c.delete);
        assert_eq!(c.delete_retention_ms, 5_000);
        assert_eq!(c.min_cleanable_dirty_ratio_permille, 250);
        assert_eq!(c.min_compaction_lag_ms, 7);
        assert_eq!(c.max_compaction_lag_ms, 9_000);
        assert_eq!(default_value("cleanup.policy", &defaults), "compact");
        assert_eq!(
            default_value("min.cleanable.dirty.ratio", &defaults),
            "0.25"
        );
        assert_eq!(default_value("delete.retention.ms", &defaults), "5000");
        // A topic's own configs still win.
        let mut topic = BTreeMap::new();
        topic.insert("cleanup.policy".to_owned(), "delete".to_owned());
        topic.insert("min.cleanable.dirty.ratio".to_owned(), "0.9".to_owned());
        let c = log_config(&defaults, &topic);
        assert!(!c.compact && c.delete);
        assert_eq!(c.min_cleanable_dirty_ratio_permille, 900);
    }
}
