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

/// Kafka's name for the metadata log. It is not a topic here (it lives in
/// `<data_dir>/__cluster_metadata-0`, outside the image), and no topic may
/// take its name: a partition `__cluster_metadata-0` would share that
/// directory, and deleting it would delete the metadata log.
pub const METADATA_TOPIC: &str = "__cluster_metadata";

/// True for topics whose data belongs to the broker (coordinator state, the
/// metadata log): clients cannot delete them, add partitions to them, delete
/// their records, or give them configs that would lose data.
pub fn is_internal_topic(name: &str) -> bool {
    INTERNAL_TOPICS.contains(&name) || name == METADATA_TOPIC
}

/// Topic configs an internal topic must keep, and the only value allowed:
/// coordinator state is compacted, never expires by time or size.
const INTERNAL_TOPIC_PINNED_CONFIGS: &[(&str, &str)] = &[
    ("cleanup.policy", "compact"),
    ("retention.ms", "-1"),
    ("retention.bytes", "-1"),
];

/// Topic configs an internal topic must not have at all: Kafka's interval
/// flush would replace group commit, and coordinator state acknowledged to
/// clients could then be lost in a crash.
const INTERNAL_TOPIC_FORBIDDEN_CONFIGS: &[&str] = &["flush.messages", "flush.ms"];

/// Refuses a config set that would lose an internal topic's data.
fn check_internal_configs(
    broker: &Broker,
    topic: &str,
    configs: &BTreeMap<String, String>,
) -> Result<(), ApiError> {
    for (name, required) in INTERNAL_TOPIC_PINNED_CONFIGS {
        let effective = configs
            .get(*name)
            .cloned()
            .unwrap_or_else(|| topic_config::default_value(name, &broker.config.log));
        if effective.trim() != *required {
            return Err(ApiError::new(
                code::INVALID_CONFIG,
                format!(
                    "`{name}` of internal topic `{topic}` must stay `{required}` (would be `{effective}`): its data is broker state"
                ),
            ));
        }
    }
    if let Some(name) = INTERNAL_TOPIC_FORBIDDEN_CONFIGS
        .iter()
        .find(|k| configs.contains_key(**k))
    {
        return Err(ApiError::new(
            code::INVALID_CONFIG,
            format!(
                "`{name}` cannot be set on internal topic `{topic}`: its writes are fsynced before they are acknowledged"
            ),
        ));
    }
    Ok(())
}

/// The error for a structural change (delete, add partitions) to an internal
/// topic. Kafka's brokers leave this protection to its CLI; here an ordinary
/// client gets what Kafka answers a principal not allowed to touch a topic.
fn internal_topic_refused(topic: &str, what: &str) -> ApiError {
    ApiError::new(
        code::TOPIC_AUTHORIZATION_FAILED,
        format!("topic `{topic}` is internal; clients cannot {what} it"),
    )
}

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
    if topic.name == METADATA_TOPIC {
        return Err(ApiError::new(
            code::INVALID_REQUEST,
            format!("`{METADATA_TOPIC}` is the metadata log's name and cannot be a topic"),
        ));
    }
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
    // A client creating `__consumer_offsets` before the coordinator does
    // must not give it a retention that later deletes broker state.
    if is_internal_topic(&topic.name) {
        check_internal_configs(broker, &topic.name, &configs)?;
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
    let count = topics.len();
    let b = Arc::clone(broker);
    detached(async move { create_topics_now(&b, topics, validate_only).await })
        .await
        .unwrap_or_else(|e| vec![Err(e); count])
}

async fn create_topics_now(
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
    let failed = |e: ApiError| topics.iter().map(|_| Err(e.clone())).collect();
    let image = match outcome {
        Ok(Ok(image)) => image,
        Ok(Err(e)) => return failed(e),
        Err(e) => return failed(e.into()),
    };
    match sync_replicas(broker, image).await {
        Ok(()) => results,
        Err(e) => {
            let created: Vec<(String, Uuid, i32)> = topics
                .iter()
                .zip(&results)
                .filter_map(|(t, r)| {
                    let c = r.as_ref().ok().filter(|c| !c.topic_id.is_nil())?;
                    Some((t.name.clone(), c.topic_id, c.num_partitions))
                })
                .collect();
            undo_create(broker, &created).await;
            failed(e)
        }
    }
}

/// Undoes a CreateTopics whose partition logs could not all be created (a
/// full disk, say), so a failed creation leaves nothing behind: every
/// partition directory the attempt made is removed first (on a full disk
/// that is what makes room), then one `remove_topic` record per topic is
/// committed, after reopening the metadata log once if it could not write.
/// A crash in between leaves the topic with empty partitions. If the
/// removal cannot be committed at all, the topic stays, its partitions are
/// recreated empty when space returns, and the error is logged.
async fn undo_create(broker: &Arc<Broker>, created: &[(String, Uuid, i32)]) {
    if created.is_empty() {
        return;
    }
    let b = Arc::clone(broker);
    let doomed = created.to_vec();
    let removed = tokio::task::spawn_blocking(move || {
        for (name, _, partitions) in &doomed {
            tracing::warn!(topic = %name, "topic creation failed; removing it again");
            b.replicas.drop_topic_logs(name);
            b.replicas.remove_unhosted_dirs(name, *partitions);
        }
    })
    .await;
    if let Err(e) = removed {
        tracing::error!("removing directories of a failed topic creation: {e}");
    }
    let removal = |image: &MetadataImage| {
        Ok::<_, ApiError>(
            created
                .iter()
                .filter(|(_, id, _)| image.topic_names.contains_key(id))
                .map(|(_, id, _)| MetadataRecord::RemoveTopic { topic_id: *id })
                .collect(),
        )
    };
    let mut outcome = broker.metadata.commit(removal).await;
    if matches!(&outcome, Err(MetadataError::Log(e)) if e.kafka_error_code() == code::KAFKA_STORAGE_ERROR)
    {
        let b = Arc::clone(broker);
        let _ = tokio::task::spawn_blocking(move || b.metadata.reopen_if_offline()).await;
        outcome = broker.metadata.commit(removal).await;
    }
    let image = match outcome {
        Ok(Ok(image)) => image,
        Ok(Err(e)) => {
            tracing::error!("cannot undo a failed topic creation: {}", e.message);
            return;
        }
        Err(e) => {
            tracing::error!("cannot undo a failed topic creation: {e}");
            return;
        }
    };
    if let Err(e) = sync_replicas(broker, image).await {
        tracing::error!(
            "cannot drop the partitions of a failed topic creation: {}",
            e.message
        );
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
    let count = names.len();
    let b = Arc::clone(broker);
    detached(async move { delete_topics_now(&b, names).await })
        .await
        .unwrap_or_else(|e| vec![Err(e); count])
}

async fn delete_topics_now(
    broker: &Arc<Broker>,
    names: Vec<String>,
) -> Vec<Result<Uuid, ApiError>> {
    let mut results = Vec::with_capacity(names.len());
    let outcome = broker
        .metadata
        .commit(|image| Ok::<_, ApiError>(removal_records(image, &names, &mut results)))
        .await;
    let outcome = match outcome {
        Err(MetadataError::Log(e)) if e.kafka_error_code() == code::KAFKA_STORAGE_ERROR => {
            // A full disk: the metadata log cannot take the removal record.
            // Free the space first — delete the topics' logs — then bring
            // the metadata log back and write the record. A crash in
            // between leaves the topics with empty partitions; deleting
            // them again finishes the job.
            tracing::warn!(
                "metadata log cannot write ({e}); deleting the topics' data first to free space"
            );
            let b = Arc::clone(broker);
            // Internal topics are never deleted by a client, full disk or not.
            let doomed: Vec<String> = names
                .iter()
                .filter(|name| !is_internal_topic(name))
                .cloned()
                .collect();
            let freed = tokio::task::spawn_blocking(move || {
                for name in &doomed {
                    b.replicas.drop_topic_logs(name);
                }
                b.metadata.reopen_if_offline();
            })
            .await;
            if let Err(e) = freed {
                tracing::error!("freeing space for a topic deletion: {e}");
            }
            results.clear();
            broker
                .metadata
                .commit(|image| Ok::<_, ApiError>(removal_records(image, &names, &mut results)))
                .await
        }
        other => other,
    };
    match finish(broker, outcome).await {
        Ok(()) => results,
        Err(e) => names.iter().map(|_| Err(e.clone())).collect(),
    }
}

/// The `remove_topic` records deleting `names` from `image`, with one
/// result per name pushed to `results`.
fn removal_records(
    image: &MetadataImage,
    names: &[String],
    results: &mut Vec<Result<Uuid, ApiError>>,
) -> Vec<MetadataRecord> {
    let mut records = Vec::new();
    let mut seen = Vec::new();
    for name in names {
        let result = match image.topics.get(name) {
            Some(_) if is_internal_topic(name) => Err(internal_topic_refused(name, "delete")),
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
    records
}

/// Grows topics to `count` partitions; one result per topic, in order.
pub async fn create_partitions(
    broker: &Arc<Broker>,
    requests: Vec<(String, i32)>,
    validate_only: bool,
) -> Vec<Result<(), ApiError>> {
    let count = requests.len();
    let b = Arc::clone(broker);
    detached(async move { create_partitions_now(&b, requests, validate_only).await })
        .await
        .unwrap_or_else(|e| vec![Err(e); count])
}

async fn create_partitions_now(
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
                    if is_internal_topic(name) {
                        return Err(internal_topic_refused(name, "add partitions to"));
                    }
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
    let b = Arc::clone(broker);
    let topic = topic.to_owned();
    detached(async move { alter_topic_configs_now(&b, &topic, ops, mode, validate_only).await })
        .await?
}

async fn alter_topic_configs_now(
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
            if is_internal_topic(topic) {
                check_internal_configs(broker, topic, &next)?;
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

/// Runs a metadata change on its own task. A change appends to the metadata
/// log, fsyncs, applies the image, then opens or deletes partition logs; a
/// caller that goes away part-way (a closed connection or HTTP client) must
/// not leave the log ahead of the image or the partitions.
async fn detached<T: Send + 'static>(
    change: impl std::future::Future<Output = T> + Send + 'static,
) -> Result<T, ApiError> {
    tokio::spawn(change).await.map_err(|e| {
        tracing::error!("metadata change task failed: {e}");
        ApiError::new(
            code::UNKNOWN_SERVER_ERROR,
            format!("metadata change failed: {e}"),
        )
    })
}

/// After a commit: surfaces errors and brings the hosted partitions in line.
async fn finish(
    broker: &Arc<Broker>,
    outcome: Result<Result<Arc<MetadataImage>, ApiError>, MetadataError>,
) -> Result<(), ApiError> {
    let image = outcome??;
    sync_replicas(broker, image).await
}

/// Brings the hosted partitions in line with a committed image.
async fn sync_replicas(broker: &Arc<Broker>, image: Arc<MetadataImage>) -> Result<(), ApiError> {
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
    use crate::testing;

    const OFFSETS: &str = "__consumer_offsets";

    async fn broker_with_internal_topics(dir: &std::path::Path) -> Arc<Broker> {
        let broker = testing::broker_in(dir).await;
        ensure_internal_topic(&broker, OFFSETS, 1)
            .await
            .expect("offsets topic");
        ensure_internal_topic(&broker, "__transaction_state", 1)
            .await
            .expect("transaction state topic");
        broker
    }

    fn set(k: &str, v: &str) -> ConfigOp {
        ConfigOp::Set(k.to_owned(), v.to_owned())
    }

    #[tokio::test]
    async fn internal_topics_cannot_be_deleted_or_grown() {
        let dir = tempfile::tempdir().expect("tempdir");
        let broker = broker_with_internal_topics(dir.path()).await;
        testing::create_topic(&broker, "plain", 1).await;
        let results = delete_topics(
            &broker,
            vec![OFFSETS.into(), "__transaction_state".into(), "plain".into()],
        )
        .await;
        assert_eq!(
            results[0].as_ref().map_err(|e| e.code),
            Err(code::TOPIC_AUTHORIZATION_FAILED)
        );
        assert_eq!(
            results[1].as_ref().map_err(|e| e.code),
            Err(code::TOPIC_AUTHORIZATION_FAILED)
        );
        assert!(results[2].is_ok(), "ordinary topics still go: {results:?}");
        assert!(broker.replicas.partition(OFFSETS, 0).is_some());
        assert!(
            broker
                .replicas
                .partition("__transaction_state", 0)
                .is_some()
        );
        let grown = create_partitions(&broker, vec![(OFFSETS.into(), 5)], false).await;
        assert_eq!(
            grown[0].as_ref().map_err(|e| e.code),
            Err(code::TOPIC_AUTHORIZATION_FAILED)
        );
        assert!(broker.replicas.partition(OFFSETS, 1).is_none());
    }

    #[tokio::test]
    async fn configs_that_would_lose_internal_data_are_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let broker = broker_with_internal_topics(dir.path()).await;
        let incremental = |ops: Vec<ConfigOp>| {
            alter_topic_configs(&broker, OFFSETS, ops, AlterMode::Incremental, false)
        };
        for ops in [
            vec![set("cleanup.policy", "delete")],
            vec![set("cleanup.policy", "compact,delete")],
            vec![set("retention.ms", "1000")],
            vec![set("retention.bytes", "1048576")],
            vec![ConfigOp::Delete("retention.ms".into())], // back to 7 days
            vec![ConfigOp::Append("cleanup.policy".into(), "delete".into())],
            vec![set("flush.messages", "1000")],
        ] {
            let err = incremental(ops.clone()).await.expect_err("refused");
            assert_eq!(err.code, code::INVALID_CONFIG, "{ops:?}: {err:?}");
        }
        // AlterConfigs replaces the whole set: leaving the pinned keys out
        // would reset them to the delete-and-expire defaults.
        let err = alter_topic_configs(
            &broker,
            OFFSETS,
            vec![set("segment.bytes", "1048576")],
            AlterMode::Replace,
            false,
        )
        .await
        .expect_err("replace without the pinned keys");
        assert_eq!(err.code, code::INVALID_CONFIG);
        // Harmless changes are fine, and the topic is still compacted forever.
        incremental(vec![set("segment.bytes", "1048576")])
            .await
            .expect("segment size");
        let image = broker.metadata.image();
        let configs = &image.topics[OFFSETS].configs;
        assert_eq!(configs["cleanup.policy"], "compact");
        assert_eq!(configs["retention.ms"], "-1");
        assert_eq!(configs["segment.bytes"], "1048576");
    }

    #[tokio::test]
    async fn internal_names_cannot_be_created_with_losing_configs_or_as_the_metadata_log() {
        let dir = tempfile::tempdir().expect("tempdir");
        let broker = testing::broker_in(dir.path()).await;
        let new = |name: &str, configs: Vec<(String, Option<String>)>| NewTopic {
            name: name.to_owned(),
            num_partitions: 1,
            replication_factor: -1,
            configs,
        };
        let results = create_topics(
            &broker,
            vec![new(OFFSETS, vec![]), new(METADATA_TOPIC, vec![])],
            false,
        )
        .await;
        assert_eq!(
            results[0].as_ref().map_err(|e| e.code).err(),
            Some(code::INVALID_CONFIG)
        );
        assert_eq!(
            results[1].as_ref().map_err(|e| e.code).err(),
            Some(code::INVALID_REQUEST)
        );
        assert!(broker.metadata.image().topics.is_empty());
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
            broker.replicas.flush_all().expect("flush");
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

    /// A broker over `dir`, coordinators not loaded, not listening.
    fn broker_in(dir: &std::path::Path) -> Arc<Broker> {
        crate::testing::bare_broker(dir, crate::config::Config::default())
    }

    fn new_topic(name: &str, partitions: i32) -> NewTopic {
        NewTopic {
            name: name.to_owned(),
            num_partitions: partitions,
            replication_factor: -1,
            configs: Vec::new(),
        }
    }

    #[tokio::test]
    async fn a_create_topics_whose_logs_cannot_be_created_leaves_nothing_behind() {
        let dir = tempfile::tempdir().expect("tempdir");
        let broker = broker_in(dir.path());
        // Partition 1's directory cannot be created: a file holds its name.
        let blocker = dir.path().join("t-1");
        std::fs::write(&blocker, b"in the way").expect("blocker");
        let results = create_topics(&broker, vec![new_topic("t", 2)], false).await;
        let err = results[0].as_ref().expect_err("creation must fail");
        assert_eq!(err.code, code::KAFKA_STORAGE_ERROR);
        assert!(
            !broker.metadata.image().topics.contains_key("t"),
            "the failed topic is still in the metadata"
        );
        assert!(broker.replicas.partition("t", 0).is_none());
        assert!(
            !dir.path().join("t-0").exists(),
            "the failed creation left a partition directory behind"
        );
        // Nothing is left to collide with: once the obstacle is gone the
        // same name can be created, and it survives a restart.
        std::fs::remove_file(&blocker).expect("remove blocker");
        let results = create_topics(&broker, vec![new_topic("t", 2)], false).await;
        assert!(results[0].is_ok(), "{:?}", results[0]);
        drop(broker);
        let broker = broker_in(dir.path());
        assert_eq!(broker.metadata.image().topics["t"].partitions.len(), 2);
    }
}
