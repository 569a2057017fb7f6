//! Metadata changes: create and delete topics, add partitions, alter
//! configs. Each change is validated against the current image and
//! committed to the metadata log as one batch; then the hosted partitions
//! are brought in line with the new image.
//!
//! On a single node this broker is the controller. In a cluster the same
//! functions will run on the Raft leader of the metadata quorum.

use std::collections::BTreeMap;
use std::sync::Arc;

use sluice_protocol::error::codes as code;
use uuid::Uuid;

use crate::Broker;
use crate::metadata::{MetadataError, MetadataImage, MetadataRecord};
use crate::topic_config;

/// Kafka's limit on topic name length (so `name-partition` fits a file name).
pub const MAX_TOPIC_NAME_LEN: usize = 249;

/// Upper bound on partitions per topic: each partition holds a directory,
/// index memory and (through the file cache) open files, and a hostile
/// CreateTopics must not exhaust them.
pub const MAX_PARTITIONS_PER_TOPIC: i32 = 10_000;

/// Internal topics, reported with `is_internal`.
pub const INTERNAL_TOPICS: &[&str] = &["__consumer_offsets", "__transaction_state"];

/// An error for one item of an admin request: a Kafka code and a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    /// Kafka error code.
    pub code: i16,
    /// Human-readable detail.
    pub message: String,
}

impl ApiError {
    /// Builds an error.
    pub fn new(code: i16, message: impl Into<String>) -> ApiError {
        ApiError {
            code,
            message: message.into(),
        }
    }
}

impl From<MetadataError> for ApiError {
    fn from(e: MetadataError) -> ApiError {
        tracing::error!("metadata change failed: {e}");
        ApiError::new(code::KAFKA_STORAGE_ERROR, e.to_string())
    }
}

/// Checks a topic name as Kafka does.
pub fn validate_topic_name(name: &str) -> Result<(), ApiError> {
    let invalid = |why: &str| {
        Err(ApiError::new(
            code::INVALID_TOPIC_EXCEPTION,
            format!("topic name `{name}` is invalid: {why}"),
        ))
    };
    if name.is_empty() {
        return invalid("it is empty");
    }
    if name == "." || name == ".." {
        return invalid("`.` and `..` are not allowed");
    }
    if name.len() > MAX_TOPIC_NAME_LEN {
        return invalid("it is longer than 249 characters");
    }
    if !name
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'_' || b == b'-')
    {
        return invalid("only ASCII letters, digits, `.`, `_` and `-` are allowed");
    }
    Ok(())
}

/// A topic to create.
#[derive(Debug, Clone)]
pub struct NewTopic {
    /// Name.
    pub name: String,
    /// Partitions; -1 means the broker default.
    pub num_partitions: i32,
    /// Replication factor; -1 means the broker default.
    pub replication_factor: i16,
    /// Configs set on the topic.
    pub configs: Vec<(String, Option<String>)>,
}

/// What became of one topic in a create request.
#[derive(Debug, Clone)]
pub struct CreatedTopic {
    /// The new topic's id (nil when validate_only).
    pub topic_id: Uuid,
    /// Partitions it has.
    pub num_partitions: i32,
    /// Its replication factor.
    pub replication_factor: i16,
    /// The configs set on it.
    pub configs: BTreeMap<String, String>,
}

fn check_new_topic(
    broker: &Broker,
    image: &MetadataImage,
    topic: &NewTopic,
    pending: &[String],
) -> Result<CreatedTopic, ApiError> {
    validate_topic_name(&topic.name)?;
    if image.topics.contains_key(&topic.name) || pending.contains(&topic.name) {
        return Err(ApiError::new(
            code::TOPIC_ALREADY_EXISTS,
            format!("topic `{}` already exists", topic.name),
        ));
    }
    // Kafka refuses names that differ only by `.` versus `_`: metrics names collide.
    let normalized = topic.name.replace('.', "_");
    if let Some(other) = image
        .topics
        .keys()
        .chain(pending.iter())
        .find(|t| t.replace('.', "_") == normalized)
    {
        return Err(ApiError::new(
            code::INVALID_TOPIC_EXCEPTION,
            format!(
                "topic `{}` collides with existing topic `{other}`",
                topic.name
            ),
        ));
    }
    let num_partitions = if topic.num_partitions == -1 {
        broker.config.topics.num_partitions
    } else {
        topic.num_partitions
    };
    if !(1..=MAX_PARTITIONS_PER_TOPIC).contains(&num_partitions) {
        return Err(ApiError::new(
            code::INVALID_PARTITIONS,
            format!(
                "number of partitions must be between 1 and {MAX_PARTITIONS_PER_TOPIC}, got {num_partitions}"
            ),
        ));
    }
    let replication_factor = if topic.replication_factor == -1 {
        broker.config.topics.default_replication_factor
    } else {
        topic.replication_factor
    };
    if replication_factor != 1 {
        return Err(ApiError::new(
            code::INVALID_REPLICATION_FACTOR,
            format!(
                "replication factor {replication_factor} is larger than the 1 available broker"
            ),
        ));
    }
    let mut configs = BTreeMap::new();
    for (name, value) in &topic.configs {
        topic_config::validate(name, value.as_deref())
            .map_err(|e| ApiError::new(code::INVALID_CONFIG, e.to_string()))?;
        if let Some(value) = value {
            configs.insert(name.clone(), value.clone());
        }
    }
    Ok(CreatedTopic {
        topic_id: Uuid::nil(),
        num_partitions,
        replication_factor,
        configs,
    })
}

fn topic_records(node_id: i32, name: &str, created: &CreatedTopic) -> Vec<MetadataRecord> {
    let topic_id = created.topic_id;
    let mut records = vec![MetadataRecord::Topic {
        name: name.to_owned(),
        topic_id,
    }];
    records.extend(partition_records(
        node_id,
        topic_id,
        0..created.num_partitions,
    ));
    records.extend(
        created
            .configs
            .iter()
            .map(|(k, v)| MetadataRecord::TopicConfig {
                topic_id,
                name: k.clone(),
                value: Some(v.clone()),
            }),
    );
    records
}

fn partition_records(
    node_id: i32,
    topic_id: Uuid,
    range: std::ops::Range<i32>,
) -> impl Iterator<Item = MetadataRecord> {
    range.map(move |partition| MetadataRecord::Partition {
        topic_id,
        partition,
        leader: node_id,
        replicas: vec![node_id],
        isr: vec![node_id],
        leader_epoch: 0,
    })
}

/// Creates topics; one result per requested topic, in order.
pub async fn create_topics(
    broker: &Arc<Broker>,
    topics: Vec<NewTopic>,
    validate_only: bool,
) -> Vec<Result<CreatedTopic, ApiError>> {
    let mut results = Vec::with_capacity(topics.len());
    let node_id = broker.config.node_id;
    let outcome = broker
        .metadata
        .commit(|image| {
            let mut records = Vec::new();
            let mut pending = Vec::new();
            for topic in &topics {
                let result = check_new_topic(broker, image, topic, &pending).map(|mut created| {
                    if !validate_only {
                        created.topic_id = Uuid::new_v4();
                        records.extend(topic_records(node_id, &topic.name, &created));
                    }
                    pending.push(topic.name.clone());
                    created
                });
                results.push(result);
            }
            Ok::<_, ApiError>(records)
        })
        .await;
    match finish(broker, outcome).await {
        Ok(()) => results,
        Err(e) => topics.iter().map(|_| Err(e.clone())).collect(),
    }
}

/// Creates one topic with broker defaults if it does not exist
/// (auto-creation from Metadata). Returns the error if it could not.
pub async fn auto_create_topic(broker: &Arc<Broker>, name: &str) -> Result<(), ApiError> {
    let topic = NewTopic {
        name: name.to_owned(),
        num_partitions: -1,
        replication_factor: -1,
        configs: Vec::new(),
    };
    match create_topics(broker, vec![topic], false).await.pop() {
        Some(Ok(_)) => Ok(()),
        Some(Err(e)) if e.code == code::TOPIC_ALREADY_EXISTS => Ok(()),
        Some(Err(e)) => Err(e),
        None => Err(ApiError::new(code::UNKNOWN_SERVER_ERROR, "no result")),
    }
}

/// Creates an internal, compacted, never-expiring topic (`__consumer_offsets`,
/// `__transaction_state`) with `partitions` partitions unless it exists.
/// Concurrent callers are fine: a loser sees TOPIC_ALREADY_EXISTS.
pub async fn ensure_internal_topic(
    broker: &Arc<Broker>,
    name: &str,
    partitions: i32,
) -> Result<(), ApiError> {
    if broker.replicas.partition(name, partitions - 1).is_some() {
        return Ok(());
    }
    let topic = NewTopic {
        name: name.to_owned(),
        num_partitions: partitions,
        replication_factor: -1,
        configs: vec![
            ("cleanup.policy".to_owned(), Some("compact".to_owned())),
            ("retention.ms".to_owned(), Some("-1".to_owned())),
            ("retention.bytes".to_owned(), Some("-1".to_owned())),
        ],
    };
    match create_topics(broker, vec![topic], false).await.pop() {
        Some(Ok(_)) => Ok(()),
        Some(Err(e)) if e.code == code::TOPIC_ALREADY_EXISTS => Ok(()),
        Some(Err(e)) => {
            tracing::error!("cannot create {name}: {}", e.message);
            Err(e)
        }
        None => Err(ApiError::new(
            code::UNKNOWN_SERVER_ERROR,
            format!("no result creating {name}"),
        )),
    }
}

/// Deletes topics by name; one result per name, in order.
pub async fn delete_topics(
    broker: &Arc<Broker>,
    names: Vec<String>,
) -> Vec<Result<Uuid, ApiError>> {
    let mut results = Vec::with_capacity(names.len());
    let outcome = broker
        .metadata
        .commit(|image| {
            let mut records = Vec::new();
            let mut seen = Vec::new();
            for name in &names {
                let result = match image.topics.get(name) {
                    Some(topic) if !seen.contains(name) => {
                        seen.push(name.clone());
                        records.push(MetadataRecord::RemoveTopic {
                            topic_id: topic.topic_id,
                        });
                        Ok(topic.topic_id)
                    }
                    _ => Err(ApiError::new(
                        code::UNKNOWN_TOPIC_OR_PARTITION,
                        format!("topic `{name}` does not exist"),
                    )),
                };
                results.push(result);
            }
            Ok::<_, ApiError>(records)
        })
        .await;
    match finish(broker, outcome).await {
        Ok(()) => results,
        Err(e) => names.iter().map(|_| Err(e.clone())).collect(),
    }
}

/// Grows topics to `count` partitions; one result per topic, in order.
pub async fn create_partitions(
    broker: &Arc<Broker>,
    requests: Vec<(String, i32)>,
    validate_only: bool,
) -> Vec<Result<(), ApiError>> {
    let node_id = broker.config.node_id;
    let mut results = Vec::with_capacity(requests.len());
    let outcome = broker
        .metadata
        .commit(|image| {
            let mut records = Vec::new();
            for (name, count) in &requests {
                let result = (|| {
                    let topic = image.topics.get(name).ok_or_else(|| {
                        ApiError::new(code::UNKNOWN_TOPIC_OR_PARTITION, format!("topic `{name}` does not exist"))
                    })?;
                    let current = topic.partitions.len() as i32;
                    if *count <= current {
                        return Err(ApiError::new(
                            code::INVALID_PARTITIONS,
                            format!("topic `{name}` has {current} partitions; the new count must be larger, got {count}"),
                        ));
                    }
                    if *count > MAX_PARTITIONS_PER_TOPIC {
                        return Err(ApiError::new(
                            code::INVALID_PARTITIONS,
                            format!("at most {MAX_PARTITIONS_PER_TOPIC} partitions per topic"),
                        ));
                    }
                    if !validate_only {
                        records.extend(partition_records(node_id, topic.topic_id, current..*count));
                    }
                    Ok(())
                })();
                results.push(result);
            }
            Ok::<_, ApiError>(records)
        })
        .await;
    match finish(broker, outcome).await {
        Ok(()) => results,
        Err(e) => requests.iter().map(|_| Err(e.clone())).collect(),
    }
}

/// How an alter request treats the configs it does not mention.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AlterMode {
    /// AlterConfigs: the request is the topic's whole config; others reset.
    Replace,
    /// IncrementalAlterConfigs: only the named keys change.
    Incremental,
}

/// One config operation (IncrementalAlterConfigs's SET/DELETE/APPEND/SUBTRACT).
#[derive(Debug, Clone)]
pub enum ConfigOp {
    /// Set the value.
    Set(String, String),
    /// Reset to default.
    Delete(String),
    /// Add to a list config.
    Append(String, String),
    /// Remove from a list config.
    Subtract(String, String),
}

/// Alters one topic's configs.
pub async fn alter_topic_configs(
    broker: &Arc<Broker>,
    topic: &str,
    ops: Vec<ConfigOp>,
    mode: AlterMode,
    validate_only: bool,
) -> Result<(), ApiError> {
    let outcome = broker
        .metadata
        .commit(|image| {
            let t = image.topics.get(topic).ok_or_else(|| {
                ApiError::new(
                    code::UNKNOWN_TOPIC_OR_PARTITION,
                    format!("topic `{topic}` does not exist"),
                )
            })?;
            let mut next = match mode {
                AlterMode::Replace => BTreeMap::new(),
                AlterMode::Incremental => t.configs.clone(),
            };
            for op in &ops {
                let (name, value) = match op {
                    ConfigOp::Set(k, v) => (k, Some(v.clone())),
                    ConfigOp::Delete(k) => (k, None),
                    ConfigOp::Append(k, v) | ConfigOp::Subtract(k, v) => {
                        let current = next
                            .get(k)
                            .cloned()
                            .unwrap_or_else(|| topic_config::default_value(k, &broker.config.log));
                        let mut items: Vec<String> = current
                            .split(',')
                            .map(str::trim)
                            .filter(|s| !s.is_empty())
                            .map(str::to_owned)
                            .collect();
                        if matches!(op, ConfigOp::Append(..)) {
                            if !items.contains(v) {
                                items.push(v.clone());
                            }
                        } else {
                            items.retain(|i| i != v);
                        }
                        (k, Some(items.join(",")))
                    }
                };
                topic_config::validate(name, value.as_deref())
                    .map_err(|e| ApiError::new(code::INVALID_CONFIG, e.to_string()))?;
                match value {
                    Some(v) => next.insert(name.clone(), v),
                    None => next.remove(name),
                };
            }
            if validate_only {
                return Ok(Vec::new());
            }
            let topic_id = t.topic_id;
            let mut records = Vec::new();
            for (k, v) in &next {
                if t.configs.get(k) != Some(v) {
                    records.push(MetadataRecord::TopicConfig {
                        topic_id,
                        name: k.clone(),
                        value: Some(v.clone()),
                    });
                }
            }
            for k in t.configs.keys().filter(|k| !next.contains_key(*k)) {
                records.push(MetadataRecord::TopicConfig {
                    topic_id,
                    name: k.clone(),
                    value: None,
                });
            }
            Ok(records)
        })
        .await;
    finish(broker, outcome).await
}

/// After a commit: surfaces errors and brings the hosted partitions in line.
async fn finish(
    broker: &Arc<Broker>,
    outcome: Result<Result<Arc<MetadataImage>, ApiError>, MetadataError>,
) -> Result<(), ApiError> {
    let image = outcome??;
    let b = Arc::clone(broker);
    let synced = tokio::task::spawn_blocking(move || b.replicas.sync_with(&image, false)).await;
    match synced {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => {
            tracing::error!("cannot open partition logs: {e}");
            Err(ApiError::new(code::KAFKA_STORAGE_ERROR, e.to_string()))
        }
        Err(e) => Err(ApiError::new(code::UNKNOWN_SERVER_ERROR, e.to_string())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A broker over `dir`, loaded but not listening.
    fn broker_in(dir: &std::path::Path) -> Arc<Broker> {
        let config = crate::config::Config {
            data_dir: dir.to_owned(),
            ..Default::default()
        };
        let metadata = crate::metadata::MetadataStore::open(dir).expect("metadata");
        let replicas =
            crate::partition::ReplicaManager::new(dir, config.log.clone(), config.node_id);
        replicas
            .sync_with(&metadata.image(), true)
            .expect("replicas");
        Arc::new(Broker {
            cluster_id: "test".to_owned(),
            groups: crate::group::GroupCoordinator::new(config.groups.clone()),
            txn: crate::txn::TransactionCoordinator::new(),
            config,
            metadata,
            replicas,
            producer_ids: Default::default(),
            advertised: ("127.0.0.1".to_owned(), 9092),
            started: std::time::Instant::now(),
        })
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_topic_with_the_maximum_partitions_can_be_created_and_reloaded() {
        // On tmpfs when there is one: 10,000 partition directories cost tens
        // of thousands of fsyncs, which prove nothing here.
        let dir = tempfile::tempdir_in("/dev/shm")
            .or_else(|_| tempfile::tempdir())
            .expect("tempdir");
        let topic = NewTopic {
            name: "wide".to_owned(),
            num_partitions: MAX_PARTITIONS_PER_TOPIC,
            replication_factor: -1,
            configs: vec![("retention.ms".to_owned(), Some("60000".to_owned()))],
        };
        let topic_id = {
            let broker = broker_in(dir.path());
            let created = create_topics(&broker, vec![topic], false)
                .await
                .pop()
                .expect("one result")
                .expect("created");
            assert_eq!(created.num_partitions, MAX_PARTITIONS_PER_TOPIC);
            assert!(
                broker
                    .replicas
                    .partition("wide", MAX_PARTITIONS_PER_TOPIC - 1)
                    .is_some()
            );
            broker.replicas.flush_all();
            created.topic_id
        };
        let broker = broker_in(dir.path());
        let image = broker.metadata.image();
        let wide = &image.topics["wide"];
        assert_eq!(wide.topic_id, topic_id);
        assert_eq!(wide.partitions.len(), MAX_PARTITIONS_PER_TOPIC as usize);
        assert_eq!(
            wide.configs.get("retention.ms").map(String::as_str),
            Some("60000")
        );
        assert_eq!(
            broker.replicas.all().len(),
            MAX_PARTITIONS_PER_TOPIC as usize
        );
    }

    #[test]
    fn topic_names_follow_kafka_rules() {
        assert!(validate_topic_name("orders").is_ok());
        assert!(validate_topic_name("a.b_c-1").is_ok());
        assert!(validate_topic_name(&"x".repeat(249)).is_ok());
        for bad in ["", ".", "..", "bad/name", "spa ce", "ünï"] {
            let err = validate_topic_name(bad).expect_err(bad);
            assert_eq!(err.code, code::INVALID_TOPIC_EXCEPTION, "{bad}");
        }
        assert!(validate_topic_name(&"x".repeat(250)).is_err());
    }
}
