//! Metadata changes: create and delete topics, add partitions, alter
//! configs. Each change is validated against the current image and
//! committed to the [`MetadataLog`] as one change; then every
//! [`MetadataListener`] (the replica manager) applies its delta.
//!
//! On a single node this broker is the controller. In a cluster the same
//! code runs on the Raft leader of the metadata quorum, over a Raft
//! [`MetadataLog`]. New partitions are placed on the live brokers and
//! leadership follows brokers as they register, are fenced, unfenced and
//! leave; partition leaders change their ISR with AlterPartition;
//! [`crate::placement`] computes those records.

use std::collections::BTreeMap;
use std::sync::Arc;

use sluice_protocol::error::codes as code;
use uuid::Uuid;

use crate::broker_config;
use crate::config::{InternalTopicReplication, LogDefaults, TopicDefaults};
use crate::delta::MetadataListener;
use crate::election::{self, ElectionResult, ElectionType};
use crate::error::{ApiError, MetadataError};
use crate::image::{HttpTokenImage, MetadataImage, MetadataRecord};
use crate::log::{Committed, MetadataLog};
use crate::placement::{
    self, AlterPartitionOutcome, AlterPartitionRequest, BrokerRegistration, NewPartition,
};
use crate::reassignment::{self, OngoingReassignment, ReassignmentRequest, ReassignmentResult};
use crate::topic_config;

mod scram;
pub use scram::{MAX_SCRAM_BYTES, ScramDeletion, ScramUpsertion, UserResults};

/// Kafka's limit on topic name length (so `name-partition` fits a file name).
pub const MAX_TOPIC_NAME_LEN: usize = 249;

/// Upper bound on partitions per topic: each partition holds a directory,
/// index memory and (through the file cache) open files, and a hostile
/// CreateTopics must not exhaust them.
pub const MAX_PARTITIONS_PER_TOPIC: i32 = 10_000;

/// The group coordinator's internal topic.
pub const OFFSETS_TOPIC: &str = "__consumer_offsets";

/// The transaction coordinator's internal topic.
pub const TRANSACTION_STATE_TOPIC: &str = "__transaction_state";

/// Internal topics, reported with `is_internal`.
pub const INTERNAL_TOPICS: &[&str] = &[OFFSETS_TOPIC, TRANSACTION_STATE_TOPIC];

/// Most HTTP API bearer tokens the cluster holds at once (expired ones
/// count until revoked). Every token is a metadata record replayed on every
/// node, so an authenticated user must not be able to grow the image
/// without end.
pub const MAX_HTTP_TOKENS: usize = 10_000;

/// Longest HTTP token id and principal name accepted: both are stored in
/// 16-bit-length fields and shown in listings.
pub const MAX_HTTP_TOKEN_FIELD_LEN: usize = 1024;

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

/// `segment.bytes` of the internal topics the broker creates, 100 MiB as
/// in Kafka.
pub const INTERNAL_TOPIC_SEGMENT_BYTES: u64 = 100 * 1024 * 1024;

/// Topic configs an internal topic must not have at all: Kafka's interval
/// flush would replace group commit, and coordinator state acknowledged to
/// clients could then be lost in a crash.
const INTERNAL_TOPIC_FORBIDDEN_CONFIGS: &[&str] = &["flush.messages", "flush.ms"];

/// Refuses a config set that would lose an internal topic's data.
fn check_internal_configs(
    defaults: &LogDefaults,
    topic: &str,
    configs: &BTreeMap<String, String>,
) -> Result<(), ApiError> {
    for (name, required) in INTERNAL_TOPIC_PINNED_CONFIGS {
        let effective = configs
            .get(*name)
            .cloned()
            .unwrap_or_else(|| topic_config::default_value(name, defaults));
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
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct NewTopic {
    /// Name.
    pub name: String,
    /// Partitions; -1 means the broker default.
    pub num_partitions: i32,
    /// Replication factor; -1 means the broker default.
    pub replication_factor: i16,
    /// Configs set on the topic.
    pub configs: Vec<(String, Option<String>)>,
    /// A manual replica assignment (CreateTopics' `assignments`); empty
    /// places the replicas automatically. With one, `num_partitions` and
    /// `replication_factor` must be -1.
    pub assignments: Vec<ReplicaAssignment>,
}

/// The replicas a client chose for one partition.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ReplicaAssignment {
    /// The partition.
    pub partition_index: i32,
    /// Its replicas' broker ids, the preferred leader first.
    pub broker_ids: Vec<i32>,
}

/// What became of one topic in a create request.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
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

/// Checks one topic of a create request and places its partitions, with
/// `topic_id` seeding the placement.
fn check_new_topic(
    config: &ControllerConfig,
    image: &MetadataImage,
    topic: &NewTopic,
    topic_id: Uuid,
    pending: &[String],
) -> Result<(CreatedTopic, Vec<NewPartition>), ApiError> {
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
    let (num_partitions, replication_factor, partitions) = if topic.assignments.is_empty() {
        plan_partitions(config, image, topic, topic_id)?
    } else {
        plan_manual_partitions(config.node_id, image, topic)?
    };
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
        check_internal_configs(&config.log, &topic.name, &configs)?;
    }
    let created = CreatedTopic {
        topic_id: Uuid::nil(),
        num_partitions,
        replication_factor,
        configs,
    };
    Ok((created, partitions))
}

/// Partition count, replication factor and placement of a topic without a
/// manual assignment (-1 takes the broker default).
fn plan_partitions(
    config: &ControllerConfig,
    image: &MetadataImage,
    topic: &NewTopic,
    topic_id: Uuid,
) -> Result<(i32, i16, Vec<NewPartition>), ApiError> {
    if topic.replication_factor < -1 || topic.replication_factor == 0 {
        return Err(ApiError::new(
            code::INVALID_REPLICATION_FACTOR,
            "Replication factor must be larger than 0, or -1 to use the default value.",
        ));
    }
    let num_partitions = if topic.num_partitions == -1 {
        config.topics.num_partitions
    } else {
        topic.num_partitions
    };
    check_partition_count(num_partitions)?;
    let replication_factor = if topic.replication_factor == -1 {
        config.topics.default_replication_factor
    } else {
        topic.replication_factor
    };
    let partitions = placement::place_new_partitions(
        image,
        config.node_id,
        0..num_partitions,
        replication_factor,
        placement::seed_of(topic_id, 0),
        None,
    )?;
    Ok((num_partitions, replication_factor, partitions))
}

/// Partition count, replication factor and partitions of a topic with a
/// manual assignment, checked as Kafka checks them.
fn plan_manual_partitions(
    node_id: i32,
    image: &MetadataImage,
    topic: &NewTopic,
) -> Result<(i32, i16, Vec<NewPartition>), ApiError> {
    if topic.replication_factor != -1 {
        return Err(ApiError::new(
            code::INVALID_REQUEST,
            "A manual partition assignment was specified, but replication factor was not set to -1.",
        ));
    }
    if topic.num_partitions != -1 {
        return Err(ApiError::new(
            code::INVALID_REQUEST,
            "A manual partition assignment was specified, but numPartitions was not set to -1.",
        ));
    }
    let count = i32::try_from(topic.assignments.len()).unwrap_or(i32::MAX);
    check_partition_count(count)?;
    let mut by_index = BTreeMap::new();
    let mut replication_factor = None;
    for a in &topic.assignments {
        if by_index.contains_key(&a.partition_index) {
            return Err(ApiError::new(
                code::INVALID_REPLICA_ASSIGNMENT,
                format!(
                    "Found multiple manual partition assignments for partition {}",
                    a.partition_index
                ),
            ));
        }
        placement::check_manual_assignment(image, node_id, &a.broker_ids, replication_factor)?;
        replication_factor = Some(a.broker_ids.len());
        let partition = NewPartition::led_by_first_live(image, node_id, a.broker_ids.clone())
            .ok_or_else(|| all_fenced(a.partition_index))?;
        by_index.insert(a.partition_index, partition);
    }
    // Indexes must be exactly 0..count: the map is sorted, so compare in order.
    if !by_index.keys().copied().eq(0..count) {
        return Err(ApiError::new(
            code::INVALID_REPLICA_ASSIGNMENT,
            "partitions should be a consecutive 0-based integer sequence",
        ));
    }
    // At most as many replicas as registered brokers, far below i16::MAX.
    let replication_factor = i16::try_from(replication_factor.unwrap_or(0)).unwrap_or(i16::MAX);
    Ok((count, replication_factor, by_index.into_values().collect()))
}

/// Kafka's error for a manual assignment naming only fenced brokers.
fn all_fenced(partition: i32) -> ApiError {
    ApiError::new(
        code::INVALID_REPLICA_ASSIGNMENT,
        format!(
            "All brokers specified in the manual partition assignment for partition {partition} are fenced or in controlled shutdown."
        ),
    )
}

/// Refuses a partition count outside 1..=[`MAX_PARTITIONS_PER_TOPIC`].
fn check_partition_count(num_partitions: i32) -> Result<(), ApiError> {
    if !(1..=MAX_PARTITIONS_PER_TOPIC).contains(&num_partitions) {
        return Err(ApiError::new(
            code::INVALID_PARTITIONS,
            format!(
                "number of partitions must be between 1 and {MAX_PARTITIONS_PER_TOPIC}, got {num_partitions}"
            ),
        ));
    }
    Ok(())
}

fn topic_records(
    name: &str,
    created: &CreatedTopic,
    partitions: &[NewPartition],
) -> Vec<MetadataRecord> {
    let topic_id = created.topic_id;
    let mut records = vec![MetadataRecord::Topic {
        name: name.to_owned(),
        topic_id,
    }];
    records.extend(
        (0..)
            .zip(partitions)
            .map(|(index, p)| p.record(topic_id, index)),
    );
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

/// A request to grow a topic (one topic of CreatePartitions).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct NewPartitions {
    /// The topic.
    pub topic: String,
    /// The partition count it should have.
    pub count: i32,
    /// The replicas of each new partition, in partition order, if the
    /// client chose them; `None` places them automatically.
    pub assignments: Option<Vec<Vec<i32>>>,
}

impl From<(String, i32)> for NewPartitions {
    fn from((topic, count): (String, i32)) -> Self {
        NewPartitions {
            topic,
            count,
            assignments: None,
        }
    }
}

/// The `partition` records growing a topic as `request` asks, checked as
/// Kafka checks CreatePartitions. New partitions keep the topic's
/// replication factor (that of partition 0).
fn new_partition_records(
    image: &MetadataImage,
    node_id: i32,
    request: &NewPartitions,
) -> Result<Vec<MetadataRecord>, ApiError> {
    let NewPartitions {
        topic: name,
        count,
        assignments,
    } = request;
    let count = *count;
    let topic = image.topics.get(name).ok_or_else(|| {
        ApiError::new(
            code::UNKNOWN_TOPIC_OR_PARTITION,
            format!("topic `{name}` does not exist"),
        )
    })?;
    if is_internal_topic(name) {
        return Err(internal_topic_refused(name, "add partitions to"));
    }
    let current = topic.partitions.len() as i32;
    if count <= current {
        return Err(ApiError::new(
            code::INVALID_PARTITIONS,
            format!(
                "topic `{name}` has {current} partitions; the new count must be larger, got {count}"
            ),
        ));
    }
    if count > MAX_PARTITIONS_PER_TOPIC {
        return Err(ApiError::new(
            code::INVALID_PARTITIONS,
            format!("at most {MAX_PARTITIONS_PER_TOPIC} partitions per topic"),
        ));
    }
    let first = topic.partitions.values().next();
    let replication_factor = first.map_or(1, |p| p.replicas.len());
    let partitions = match assignments {
        Some(assignments) => {
            let additional = (count - current) as usize;
            if assignments.len() != additional {
                return Err(ApiError::new(
                    code::INVALID_REPLICA_ASSIGNMENT,
                    format!(
                        "Attempted to add {additional} additional partition(s), but only {} assignment(s) were specified.",
                        assignments.len()
                    ),
                ));
            }
            let mut partitions = Vec::with_capacity(additional);
            for (index, replicas) in (current..).zip(assignments) {
                placement::check_manual_assignment(
                    image,
                    node_id,
                    replicas,
                    Some(replication_factor),
                )?;
                partitions.push(
                    NewPartition::led_by_first_live(image, node_id, replicas.clone())
                        .ok_or_else(|| all_fenced(index))?,
                );
            }
            partitions
        }
        None => {
            // Continue the topic's round robin from partition 0's preferred
            // leader, so leaders stay spread across the whole topic.
            let anchor = first.and_then(|p| p.replicas.first().copied());
            // A replica list is at most the registered brokers, far below i16::MAX.
            let rf = i16::try_from(replication_factor).unwrap_or(i16::MAX);
            placement::place_new_partitions(
                image,
                node_id,
                current..count,
                rf,
                placement::seed_of(topic.topic_id, current),
                anchor,
            )?
        }
    };
    Ok((current..)
        .zip(&partitions)
        .map(|(index, p)| p.record(topic.topic_id, index))
        .collect())
}

/// How an alter request treats the configs it does not mention.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum AlterMode {
    /// AlterConfigs: the request is the topic's whole config; others reset.
    Replace,
    /// IncrementalAlterConfigs: only the named keys change.
    Incremental,
}

/// One config operation (IncrementalAlterConfigs's SET/DELETE/APPEND/SUBTRACT).
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
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

/// Runs a metadata change on its own task. A change appends to the metadata
/// log, fsyncs, applies the image, then opens or deletes partition logs; a
/// caller that goes away part-way (a closed connection or HTTP client) must
/// not leave the log ahead of the image or the partitions.
async fn detached<T: Send + 'static>(
    change: impl std::future::Future<Output = T> + Send + 'static,
) -> Result<T, ApiError> {
    // A panic is logged and counted where it is caught; the client gets
    // Kafka's "unexpected server error" with the reason.
    sluice_runtime::spawn_detached("metadata-change", change)
        .await
        .map_err(|e| {
            ApiError::new(
                code::UNKNOWN_SERVER_ERROR,
                format!("metadata change failed: {e}"),
            )
        })
}

/// A fresh id for a new ACL: random, as Kafka's controller picks them. A
/// collision (2^-122) would make the record fail to apply, refusing the
/// change with an error rather than corrupting the image.
fn new_acl_id(_image: &MetadataImage) -> Uuid {
    Uuid::new_v4()
}

/// What the controller needs from the broker config.
#[derive(Debug, Clone, Default)]
pub struct ControllerConfig {
    /// This node's id. While no broker is registered in the image it is
    /// the one live broker, which every partition is placed on.
    pub node_id: i32,
    /// Defaults for new topics.
    pub topics: TopicDefaults,
    /// Broker-wide log defaults, which topic configs override.
    pub log: LogDefaults,
    /// Replication factors of the internal topics.
    pub internal_topics: InternalTopicReplication,
}

/// Validates admin changes and commits them to the metadata log, then
/// publishes each committed delta to its listeners.
#[derive(Debug)]
pub struct Controller {
    log: Arc<dyn MetadataLog>,
    listeners: Vec<Arc<dyn MetadataListener>>,
    config: ControllerConfig,
    /// The way to the active controller, in a cluster.
    remote: std::sync::OnceLock<Arc<dyn ControllerRemote>>,
}

/// How a broker that is not the active controller has the active one make
/// a change: the controller's own operations, as data. Kafka admin
/// requests are forwarded whole before they reach the controller; these
/// are what a broker's own code and its HTTP API ask for (internal and
/// auto-created topics, producer id blocks, topic administration).
pub trait ControllerRemote: Send + Sync + std::fmt::Debug {
    /// True while this node is the active controller (changes run here).
    fn is_active(&self) -> bool;

    /// Runs `call` on the active controller. An error is the call not
    /// reaching it (no controller elected, the network), never the
    /// operation's own refusal, which is in the reply.
    fn call(
        &self,
        call: ControllerCall,
    ) -> futures::future::BoxFuture<'static, Result<ControllerReply, ApiError>>;
}

/// One controller operation, to run on the active controller.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub enum ControllerCall {
    /// [`Controller::create_topics`].
    CreateTopics {
        /// The topics.
        topics: Vec<NewTopic>,
        /// Check only.
        validate_only: bool,
    },
    /// [`Controller::delete_topics`].
    DeleteTopics {
        /// The topic names.
        names: Vec<String>,
    },
    /// [`Controller::create_partitions`].
    CreatePartitions {
        /// One request per topic.
        requests: Vec<NewPartitions>,
        /// Check only.
        validate_only: bool,
    },
    /// [`Controller::alter_topic_configs`].
    AlterTopicConfigs {
        /// The topic.
        topic: String,
        /// The operations.
        ops: Vec<ConfigOp>,
        /// Replace or incremental.
        mode: AlterMode,
        /// Check only.
        validate_only: bool,
    },
    /// [`Controller::allocate_producer_ids`].
    AllocateProducerIds {
        /// Ids in the block.
        block_size: i64,
    },
    /// [`Controller::alter_partition`]: a partition leader changing its ISR.
    AlterPartition {
        /// The requesting broker (the partition's leader).
        broker_id: i32,
        /// Its broker epoch; -1 skips the check.
        broker_epoch: i64,
        /// The topic.
        topic_id: Uuid,
        /// The partition.
        partition: i32,
        /// The leader epoch the leader knows.
        leader_epoch: i32,
        /// The partition epoch the change is built on.
        partition_epoch: i32,
        /// The ISR asked for.
        new_isr: Vec<i32>,
    },
    /// [`Controller::alter_partition_reassignments`].
    AlterPartitionReassignments {
        /// One request per partition.
        requests: Vec<ReassignmentRequest>,
    },
    /// [`Controller::decommission_broker`].
    DecommissionBroker {
        /// The broker.
        broker_id: i32,
        /// True to decommission, false to bring it back into service.
        decommissioning: bool,
    },
    /// [`Controller::elect_leaders`].
    ElectLeaders {
        /// Preferred or unclean.
        election_type: ElectionType,
        /// The partitions, or `None` for all of them.
        partitions: Option<Vec<(String, i32)>>,
    },
    /// [`Controller::alter_broker_configs`].
    AlterBrokerConfigs {
        /// The broker, or -1 for the cluster-wide default.
        broker_id: i32,
        /// The operations.
        ops: Vec<ConfigOp>,
        /// Replace or incremental.
        mode: AlterMode,
        /// Check only.
        validate_only: bool,
    },
    /// [`Controller::alter_user_scram_credentials`].
    AlterUserScramCredentials {
        /// Credentials to remove.
        deletions: Vec<ScramDeletion>,
        /// Credentials to set.
        upsertions: Vec<ScramUpsertion>,
    },
    /// [`Controller::create_http_token`].
    CreateHttpToken {
        /// The token, with the hash of its secret.
        token: HttpTokenImage,
    },
    /// [`Controller::remove_http_token`].
    RemoveHttpToken {
        /// The token's id.
        id: String,
    },
}

impl From<AlterPartitionRequest> for ControllerCall {
    fn from(r: AlterPartitionRequest) -> Self {
        ControllerCall::AlterPartition {
            broker_id: r.broker_id,
            broker_epoch: r.broker_epoch,
            topic_id: r.topic_id,
            partition: r.partition,
            leader_epoch: r.leader_epoch,
            partition_epoch: r.partition_epoch,
            new_isr: r.new_isr,
        }
    }
}

/// What a [`ControllerCall`] returned, in the same order.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub enum ControllerReply {
    /// One result per topic.
    CreateTopics(Vec<Result<CreatedTopic, ApiError>>),
    /// One result per name: the deleted topic's id.
    DeleteTopics(Vec<Result<Uuid, ApiError>>),
    /// One result per topic.
    CreatePartitions(Vec<Result<(), ApiError>>),
    /// The alter's result.
    AlterTopicConfigs(Result<(), ApiError>),
    /// The first id past the reserved block.
    ProducerIds(Result<i64, ApiError>),
    /// The partition's committed state, or why the change was refused.
    AlterPartition(Result<AlterPartitionOutcome, ApiError>),
    /// One result per partition, in request order, or why the whole call
    /// was refused.
    AlterPartitionReassignments(Result<Vec<ReassignmentResult>, ApiError>),
    /// The decommission's result.
    DecommissionBroker(Result<(), ApiError>),
    /// One result per partition (see [`Controller::elect_leaders`]), or
    /// why the whole call was refused.
    ElectLeaders(Result<Vec<ElectionResult>, ApiError>),
    /// The broker config alter's result.
    AlterBrokerConfigs(Result<(), ApiError>),
    /// One result per user, in first-mention order.
    AlterUserScramCredentials(UserResults),
    /// The token creation's result.
    CreateHttpToken(Result<(), ApiError>),
    /// The token revocation's result.
    RemoveHttpToken(Result<(), ApiError>),
}

fn unexpected_reply(reply: &ControllerReply) -> ApiError {
    ApiError::new(
        code::UNKNOWN_SERVER_ERROR,
        format!("the active controller answered with {reply:?}"),
    )
}

impl Controller {
    /// A controller writing to `log` and publishing to `listeners`.
    pub fn new(
        log: Arc<dyn MetadataLog>,
        listeners: Vec<Arc<dyn MetadataListener>>,
        config: ControllerConfig,
    ) -> Controller {
        Controller {
            log,
            listeners,
            config,
            remote: std::sync::OnceLock::new(),
        }
    }

    /// Routes the changes this node's own code needs (internal topics,
    /// producer ids) to the active controller when it is another node.
    pub fn set_remote(&self, remote: Arc<dyn ControllerRemote>) {
        let _ = self.remote.set(remote);
    }

    fn remote_if_not_active(&self) -> Option<&Arc<dyn ControllerRemote>> {
        self.remote.get().filter(|r| !r.is_active())
    }

    /// Runs `call` here: what the active controller does with a call
    /// another broker sent.
    pub async fn serve_call(self: &Arc<Self>, call: ControllerCall) -> ControllerReply {
        match call {
            ControllerCall::CreateTopics {
                topics,
                validate_only,
            } => {
                ControllerReply::CreateTopics(self.create_topics_here(topics, validate_only).await)
            }
            ControllerCall::DeleteTopics { names } => {
                ControllerReply::DeleteTopics(self.delete_topics_here(names).await)
            }
            ControllerCall::CreatePartitions {
                requests,
                validate_only,
            } => ControllerReply::CreatePartitions(
                self.create_partitions_here(requests, validate_only).await,
            ),
            ControllerCall::AlterTopicConfigs {
                topic,
                ops,
                mode,
                validate_only,
            } => ControllerReply::AlterTopicConfigs(
                self.alter_topic_configs_here(&topic, ops, mode, validate_only)
                    .await,
            ),
            ControllerCall::AllocateProducerIds { block_size } => {
                ControllerReply::ProducerIds(self.allocate_producer_ids_here(block_size).await)
            }
            ControllerCall::AlterPartition {
                broker_id,
                broker_epoch,
                topic_id,
                partition,
                leader_epoch,
                partition_epoch,
                new_isr,
            } => ControllerReply::AlterPartition(
                self.alter_partition_here(AlterPartitionRequest {
                    broker_id,
                    broker_epoch,
                    topic_id,
                    partition,
                    leader_epoch,
                    partition_epoch,
                    new_isr,
                })
                .await,
            ),
            ControllerCall::AlterPartitionReassignments { requests } => {
                ControllerReply::AlterPartitionReassignments(
                    self.alter_partition_reassignments_here(requests).await,
                )
            }
            ControllerCall::DecommissionBroker {
                broker_id,
                decommissioning,
            } => ControllerReply::DecommissionBroker(
                self.decommission_broker_here(broker_id, decommissioning)
                    .await,
            ),
            ControllerCall::ElectLeaders {
                election_type,
                partitions,
            } => ControllerReply::ElectLeaders(
                self.elect_leaders_here(election_type, partitions).await,
            ),
            ControllerCall::AlterBrokerConfigs {
                broker_id,
                ops,
                mode,
                validate_only,
            } => ControllerReply::AlterBrokerConfigs(
                self.alter_broker_configs_here(broker_id, ops, mode, validate_only)
                    .await,
            ),
            ControllerCall::AlterUserScramCredentials {
                deletions,
                upsertions,
            } => ControllerReply::AlterUserScramCredentials(
                self.alter_user_scram_credentials_here(deletions, upsertions)
                    .await,
            ),
            ControllerCall::CreateHttpToken { token } => {
                ControllerReply::CreateHttpToken(self.create_http_token_here(token).await)
            }
            ControllerCall::RemoveHttpToken { id } => {
                ControllerReply::RemoveHttpToken(self.remove_http_token_here(id).await)
            }
        }
    }

    /// Records an HTTP API bearer token (its secret's hash only) on the
    /// active controller wherever the call came from, so every node's HTTP
    /// listener accepts it. Refused with INVALID_REQUEST for an empty or
    /// over-long id or principal, a duplicate id, or once
    /// [`MAX_HTTP_TOKENS`] exist.
    pub async fn create_http_token(
        self: &Arc<Self>,
        token: HttpTokenImage,
    ) -> Result<(), ApiError> {
        if let Some(remote) = self.remote_if_not_active() {
            return match remote
                .call(ControllerCall::CreateHttpToken { token })
                .await?
            {
                ControllerReply::CreateHttpToken(result) => result,
                other => Err(unexpected_reply(&other)),
            };
        }
        self.create_http_token_here(token).await
    }

    async fn create_http_token_here(
        self: &Arc<Self>,
        token: HttpTokenImage,
    ) -> Result<(), ApiError> {
        for (field, value) in [("id", &token.id), ("principal", &token.principal)] {
            if value.is_empty() || value.len() > MAX_HTTP_TOKEN_FIELD_LEN {
                return Err(ApiError::new(
                    code::INVALID_REQUEST,
                    format!(
                        "http token {field} must be 1 to {MAX_HTTP_TOKEN_FIELD_LEN} bytes, not {}",
                        value.len()
                    ),
                ));
            }
        }
        self.broker_change(move |image| {
            if image.http_tokens.contains_key(&token.id) {
                return Err(ApiError::new(
                    code::INVALID_REQUEST,
                    format!("http token {} already exists", token.id),
                ));
            }
            if image.http_tokens.len() >= MAX_HTTP_TOKENS {
                return Err(ApiError::new(
                    code::INVALID_REQUEST,
                    format!(
                        "the cluster already holds {MAX_HTTP_TOKENS} http tokens; revoke some first"
                    ),
                ));
            }
            Ok(vec![MetadataRecord::HttpToken(token)])
        })
        .await
    }

    /// Revokes an HTTP API bearer token, on the active controller wherever
    /// the call came from. An unknown id is DELEGATION_TOKEN_NOT_FOUND
    /// (Kafka's code for its own tokens).
    pub async fn remove_http_token(self: &Arc<Self>, id: String) -> Result<(), ApiError> {
        if let Some(remote) = self.remote_if_not_active() {
            return match remote.call(ControllerCall::RemoveHttpToken { id }).await? {
                ControllerReply::RemoveHttpToken(result) => result,
                other => Err(unexpected_reply(&other)),
            };
        }
        self.remove_http_token_here(id).await
    }

    async fn remove_http_token_here(self: &Arc<Self>, id: String) -> Result<(), ApiError> {
        self.broker_change(move |image| {
            if !image.http_tokens.contains_key(&id) {
                return Err(ApiError::new(
                    code::DELEGATION_TOKEN_NOT_FOUND,
                    format!("no http token {id}"),
                ));
            }
            Ok(vec![MetadataRecord::RemoveHttpToken { id }])
        })
        .await
    }

    /// Changes dynamic broker configs (see [`broker_config`]) of
    /// `broker_id`, or with -1 the cluster-wide default, on the active
    /// controller wherever the call came from: Kafka's (Incremental)
    /// AlterConfigs on a BROKER resource. `Replace` (AlterConfigs) makes
    /// the named keys the broker's whole dynamic config. A static key is
    /// INVALID_REQUEST, a bad value or an APPEND/SUBTRACT (the rates are not
    /// lists) INVALID_CONFIG; nothing is committed unless every op is valid.
    /// The broker need not be registered (Kafka accepts configs for
    /// brokers yet to come).
    pub async fn alter_broker_configs(
        self: &Arc<Self>,
        broker_id: i32,
        ops: Vec<ConfigOp>,
        mode: AlterMode,
        validate_only: bool,
    ) -> Result<(), ApiError> {
        if let Some(remote) = self.remote_if_not_active() {
            let call = ControllerCall::AlterBrokerConfigs {
                broker_id,
                ops,
                mode,
                validate_only,
            };
            return match remote.call(call).await? {
                ControllerReply::AlterBrokerConfigs(result) => result,
                other => Err(unexpected_reply(&other)),
            };
        }
        self.alter_broker_configs_here(broker_id, ops, mode, validate_only)
            .await
    }

    async fn alter_broker_configs_here(
        self: &Arc<Self>,
        broker_id: i32,
        ops: Vec<ConfigOp>,
        mode: AlterMode,
        validate_only: bool,
    ) -> Result<(), ApiError> {
        if broker_id < crate::image::CLUSTER_DEFAULT_BROKER {
            return Err(ApiError::new(
                code::INVALID_REQUEST,
                format!("{broker_id} is not a broker id"),
            ));
        }
        // Checked before the commit so a validate-only call commits nothing
        // and the records are built from one image.
        for op in &ops {
            match op {
                ConfigOp::Set(k, v) => broker_config::validate(k, Some(v))?,
                ConfigOp::Delete(k) => broker_config::validate(k, None)?,
                ConfigOp::Append(k, _) | ConfigOp::Subtract(k, _) => {
                    broker_config::validate(k, None)?;
                    return Err(ApiError::new(
                        code::INVALID_CONFIG,
                        format!("`{k}` is not a list: APPEND and SUBTRACT do not apply"),
                    ));
                }
            }
        }
        if validate_only {
            return Ok(());
        }
        self.broker_change(move |image| {
            let current = image
                .broker_configs
                .get(&broker_id)
                .cloned()
                .unwrap_or_default();
            let mut next = match mode {
                AlterMode::Replace => BTreeMap::new(),
                AlterMode::Incremental => current.clone(),
            };
            for op in ops {
                match op {
                    ConfigOp::Set(k, v) => {
                        next.insert(k, v);
                    }
                    ConfigOp::Delete(k) => {
                        next.remove(&k);
                    }
                    // Refused above.
                    ConfigOp::Append(..) | ConfigOp::Subtract(..) => {}
                }
            }
            let mut records = Vec::new();
            for (name, value) in &next {
                if current.get(name) != Some(value) {
                    records.push(MetadataRecord::BrokerConfig {
                        broker_id,
                        name: name.clone(),
                        value: Some(value.clone()),
                    });
                }
            }
            for name in current.keys().filter(|k| !next.contains_key(*k)) {
                records.push(MetadataRecord::BrokerConfig {
                    broker_id,
                    name: name.clone(),
                    value: None,
                });
            }
            Ok(records)
        })
        .await
    }

    /// AlterClientQuotas (KIP-546): validates every entry (one result per
    /// entry, in order) and, unless `validate_only`, commits the records of
    /// the valid ones as one change. Runs only on the active controller:
    /// Kafka clients' requests are forwarded to it whole, so another node
    /// answers NOT_CONTROLLER rather than commit.
    pub async fn alter_client_quotas(
        self: &Arc<Self>,
        entries: Vec<crate::client_quota::QuotaAlteration>,
        validate_only: bool,
    ) -> Vec<Result<(), ApiError>> {
        if self.remote_if_not_active().is_some() {
            let e = ApiError::new(
                code::NOT_CONTROLLER,
                "this node is not the active controller",
            );
            return vec![Err(e); entries.len()];
        }
        let checked = crate::client_quota::alterations(&self.image(), &entries);
        let results: Vec<Result<(), ApiError>> = checked
            .iter()
            .map(|r| r.as_ref().map(|_| ()).map_err(Clone::clone))
            .collect();
        let any_change = checked
            .iter()
            .any(|r| r.as_ref().is_ok_and(|v| !v.is_empty()));
        if validate_only || !any_change {
            return results;
        }
        // Rebuilt against the image the change commits on, so a record only
        // ever says what changes from the state it applies to.
        let committed = self
            .broker_change(move |image| {
                Ok(crate::client_quota::alterations(image, &entries)
                    .into_iter()
                    .filter_map(Result::ok)
                    .flatten()
                    .collect())
            })
            .await;
        match committed {
            Ok(()) => results,
            Err(e) => results.into_iter().map(|r| r.and(Err(e.clone()))).collect(),
        }
    }

    /// Marks a broker as decommissioning (the balancer moves its replicas
    /// away and places none on it; it may be stopped once it holds none),
    /// or with `decommissioning` false brings it back into service. On the
    /// active controller wherever the call came from. Refused with
    /// BROKER_ID_NOT_REGISTERED for an unknown broker, and with
    /// INVALID_REQUEST when it would leave no broker in service.
    pub async fn decommission_broker(
        self: &Arc<Self>,
        broker_id: i32,
        decommissioning: bool,
    ) -> Result<(), ApiError> {
        if let Some(remote) = self.remote_if_not_active() {
            let call = ControllerCall::DecommissionBroker {
                broker_id,
                decommissioning,
            };
            return match remote.call(call).await? {
                ControllerReply::DecommissionBroker(result) => result,
                other => Err(unexpected_reply(&other)),
            };
        }
        self.decommission_broker_here(broker_id, decommissioning)
            .await
    }

    async fn decommission_broker_here(
        self: &Arc<Self>,
        broker_id: i32,
        decommissioning: bool,
    ) -> Result<(), ApiError> {
        self.broker_change(move |image| {
            let broker = image.brokers.get(&broker_id).ok_or_else(|| {
                ApiError::new(
                    code::BROKER_ID_NOT_REGISTERED,
                    format!("broker {broker_id} is not registered"),
                )
            })?;
            if broker.decommissioning == decommissioning {
                return Ok(Vec::new());
            }
            let in_service = image
                .brokers
                .values()
                .filter(|b| b.broker_id != broker_id && !b.decommissioning)
                .count();
            if decommissioning && in_service == 0 {
                return Err(ApiError::new(
                    code::INVALID_REQUEST,
                    format!("decommissioning broker {broker_id} would leave no broker in service"),
                ));
            }
            Ok(vec![MetadataRecord::DecommissionBroker {
                broker_id,
                decommissioning,
            }])
        })
        .await
    }

    /// Starts, replaces or cancels partition reassignments (Kafka's
    /// AlterPartitionReassignments, KIP-455) on the active controller,
    /// wherever the call came from: one result per partition, in request
    /// order (see [`reassignment::reassignment_record`] for the rules), all
    /// accepted ones committed as one change. The whole call fails only
    /// when it names more than [`reassignment::MAX_REASSIGNMENTS_PER_CALL`]
    /// partitions or the change cannot commit.
    pub async fn alter_partition_reassignments(
        self: &Arc<Self>,
        requests: Vec<ReassignmentRequest>,
    ) -> Result<Vec<ReassignmentResult>, ApiError> {
        reassignment::check_call_size(requests.len())?;
        if let Some(remote) = self.remote_if_not_active() {
            let call = ControllerCall::AlterPartitionReassignments { requests };
            return match remote.call(call).await? {
                ControllerReply::AlterPartitionReassignments(result) => result,
                other => Err(unexpected_reply(&other)),
            };
        }
        self.alter_partition_reassignments_here(requests).await
    }

    async fn alter_partition_reassignments_here(
        self: &Arc<Self>,
        requests: Vec<ReassignmentRequest>,
    ) -> Result<Vec<ReassignmentResult>, ApiError> {
        // Checked again here: a forwarded call skipped the sender's check
        // if the sender is older or hostile.
        reassignment::check_call_size(requests.len())?;
        let this = Arc::clone(self);
        detached(async move {
            let node_id = this.config.node_id;
            // Checked inside the commit, against the image at commit time,
            // so racing reassignments and ISR changes see each other.
            let mut results = Vec::new();
            let committed = this
                .log
                .commit(Box::new(|image| {
                    let (records, outcome) =
                        reassignment::reassignment_records(image, node_id, &requests);
                    results = outcome;
                    Ok(records)
                }))
                .await;
            this.finish(committed).await.map(|()| results)
        })
        .await?
    }

    /// Elects leaders (Kafka's ElectLeaders, KIP-460) on the active
    /// controller, wherever the call came from: for the named partitions,
    /// one result each in request order; for `None`, every partition, with
    /// those that need no election left out (see
    /// [`election::election_records`] for the rules). All elections are
    /// committed as one change. The whole call fails only when it names
    /// more than [`election::MAX_ELECTIONS_PER_CALL`] partitions or the
    /// change cannot commit.
    pub async fn elect_leaders(
        self: &Arc<Self>,
        election_type: ElectionType,
        partitions: Option<Vec<(String, i32)>>,
    ) -> Result<Vec<ElectionResult>, ApiError> {
        election::check_call_size(partitions.as_ref().map_or(0, Vec::len))?;
        if let Some(remote) = self.remote_if_not_active() {
            let call = ControllerCall::ElectLeaders {
                election_type,
                partitions,
            };
            return match remote.call(call).await? {
                ControllerReply::ElectLeaders(result) => result,
                other => Err(unexpected_reply(&other)),
            };
        }
        self.elect_leaders_here(election_type, partitions).await
    }

    async fn elect_leaders_here(
        self: &Arc<Self>,
        election_type: ElectionType,
        partitions: Option<Vec<(String, i32)>>,
    ) -> Result<Vec<ElectionResult>, ApiError> {
        // Checked again here: a forwarded call skipped the sender's check
        // if the sender is older or hostile.
        election::check_call_size(partitions.as_ref().map_or(0, Vec::len))?;
        let this = Arc::clone(self);
        detached(async move {
            let node_id = this.config.node_id;
            // Decided inside the commit, against the image at commit time,
            // so a racing fence or ISR change cannot make an election stale.
            let mut results = Vec::new();
            let committed = this
                .log
                .commit(Box::new(|image| {
                    let (records, outcome) = election::election_records(
                        image,
                        node_id,
                        election_type,
                        partitions.as_deref(),
                    );
                    results = outcome;
                    Ok(records)
                }))
                .await;
            this.finish(committed).await.map(|()| results)
        })
        .await?
    }

    /// The partitions with a reassignment in progress (Kafka's
    /// ListPartitionReassignments), from this node's image: all of them,
    /// or with `filter` only the named partitions of the named topics.
    pub fn list_partition_reassignments(
        &self,
        filter: Option<&BTreeMap<String, Vec<i32>>>,
    ) -> Vec<OngoingReassignment> {
        reassignment::ongoing_reassignments(&self.image(), filter)
    }

    /// Changes a partition's ISR as its leader asks (Kafka's
    /// AlterPartition, one partition), on the active controller wherever
    /// the request came from. Checked by
    /// [`placement::alter_partition_records`] against the image at commit
    /// time, so of two racing requests built on the same partition epoch
    /// only the first commits. Returns the committed state (or the current
    /// one when the ISR asked for is the ISR already), or Kafka's error.
    pub async fn alter_partition(
        self: &Arc<Self>,
        request: AlterPartitionRequest,
    ) -> Result<AlterPartitionOutcome, ApiError> {
        if let Some(remote) = self.remote_if_not_active() {
            return match remote.call(request.into()).await? {
                ControllerReply::AlterPartition(result) => result,
                other => Err(unexpected_reply(&other)),
            };
        }
        self.alter_partition_here(request).await
    }

    async fn alter_partition_here(
        self: &Arc<Self>,
        request: AlterPartitionRequest,
    ) -> Result<AlterPartitionOutcome, ApiError> {
        let this = Arc::clone(self);
        detached(async move {
            let node_id = this.config.node_id;
            // Read from this change's own check: the image the commit
            // returns may already hold later changes on a replicated log.
            let mut outcome = None;
            let committed = this
                .log
                .commit(Box::new(|image| {
                    let (records, result) =
                        placement::alter_partition_records(image, node_id, &request)?;
                    outcome = Some(result);
                    Ok(records)
                }))
                .await;
            this.finish(committed).await?;
            outcome.ok_or_else(|| {
                ApiError::new(
                    code::UNKNOWN_SERVER_ERROR,
                    "AlterPartition committed without an outcome",
                )
            })
        })
        .await?
    }

    /// Reserves the next block of `block_size` producer ids (a
    /// `ProducerIds` record) and returns the first id past it; the block is
    /// the `block_size` ids below. On the active controller, wherever the
    /// request came from.
    pub async fn allocate_producer_ids(self: &Arc<Self>, block_size: i64) -> Result<i64, ApiError> {
        if let Some(remote) = self.remote_if_not_active() {
            return match remote
                .call(ControllerCall::AllocateProducerIds { block_size })
                .await?
            {
                ControllerReply::ProducerIds(result) => result,
                other => Err(unexpected_reply(&other)),
            };
        }
        self.allocate_producer_ids_here(block_size).await
    }

    async fn allocate_producer_ids_here(
        self: &Arc<Self>,
        block_size: i64,
    ) -> Result<i64, ApiError> {
        // The block is read from the record this change writes: the image
        // the commit returns may already hold later changes once the
        // metadata log is replicated.
        let reserved = std::sync::atomic::AtomicI64::new(-1);
        self.commit(Box::new(|image| {
            let end = image.next_producer_id + block_size;
            reserved.store(end, std::sync::atomic::Ordering::Relaxed);
            Ok(vec![MetadataRecord::ProducerIds {
                next_producer_id: end,
            }])
        }))
        .await?;
        Ok(reserved.load(std::sync::atomic::Ordering::Relaxed))
    }

    /// The current metadata image.
    pub fn image(&self) -> Arc<MetadataImage> {
        self.log.image()
    }

    /// The metadata log this controller writes.
    pub fn log(&self) -> &Arc<dyn MetadataLog> {
        &self.log
    }

    /// Commits one change that is not a topic admin request (producer id
    /// blocks), publishing it like any other. Returns the new image.
    pub async fn commit(
        self: &Arc<Self>,
        change: crate::log::Change<'_>,
    ) -> Result<Arc<MetadataImage>, ApiError> {
        let committed = self.log.commit(change).await??;
        let image = Arc::clone(&committed.image);
        self.publish(committed).await?;
        Ok(image)
    }

    /// Creates topics; one result per requested topic, in order.
    pub async fn create_topics(
        self: &Arc<Self>,
        topics: Vec<NewTopic>,
        validate_only: bool,
    ) -> Vec<Result<CreatedTopic, ApiError>> {
        if let Some(remote) = self.remote_if_not_active() {
            let count = topics.len();
            let call = ControllerCall::CreateTopics {
                topics,
                validate_only,
            };
            return match remote.call(call).await {
                Ok(ControllerReply::CreateTopics(results)) => results,
                Ok(other) => vec![Err(unexpected_reply(&other)); count],
                Err(e) => vec![Err(e); count],
            };
        }
        self.create_topics_here(topics, validate_only).await
    }

    async fn create_topics_here(
        self: &Arc<Self>,
        topics: Vec<NewTopic>,
        validate_only: bool,
    ) -> Vec<Result<CreatedTopic, ApiError>> {
        let count = topics.len();
        let this = Arc::clone(self);
        detached(async move { this.create_topics_now(topics, validate_only).await })
            .await
            .unwrap_or_else(|e| vec![Err(e); count])
    }

    async fn create_topics_now(
        self: &Arc<Self>,
        topics: Vec<NewTopic>,
        validate_only: bool,
    ) -> Vec<Result<CreatedTopic, ApiError>> {
        let mut results = Vec::with_capacity(topics.len());
        let outcome = self
            .log
            .commit(Box::new(|image| {
                let mut records = Vec::new();
                let mut pending = Vec::new();
                for topic in &topics {
                    // The id seeds the placement, so validate_only places
                    // (and refuses) exactly as a real creation would.
                    let topic_id = Uuid::new_v4();
                    let result = check_new_topic(&self.config, image, topic, topic_id, &pending)
                        .map(|(mut created, partitions)| {
                            if !validate_only {
                                created.topic_id = topic_id;
                                records.extend(topic_records(&topic.name, &created, &partitions));
                            }
                            pending.push(topic.name.clone());
                            created
                        });
                    results.push(result);
                }
                Ok::<_, ApiError>(records)
            }))
            .await;
        let failed = |e: ApiError| topics.iter().map(|_| Err(e.clone())).collect();
        let committed = match outcome {
            Ok(Ok(committed)) => committed,
            Ok(Err(e)) => return failed(e),
            Err(e) => return failed(e.into()),
        };
        match self.publish(committed).await {
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
                self.undo_create(&created).await;
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
    async fn undo_create(self: &Arc<Self>, created: &[(String, Uuid, i32)]) {
        if created.is_empty() {
            return;
        }
        let this = Arc::clone(self);
        let doomed = created.to_vec();
        let removed = sluice_runtime::blocking("undo-topic-create", move || {
            for (name, _, partitions) in &doomed {
                tracing::warn!(topic = %name, "topic creation failed; removing it again");
                for listener in &this.listeners {
                    listener.discard_topic(name);
                    listener.remove_unhosted_dirs(name, *partitions);
                }
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
        let mut outcome = self.log.commit(Box::new(removal)).await;
        if matches!(&outcome, Err(MetadataError::Log(e)) if e.kafka_error_code() == code::KAFKA_STORAGE_ERROR)
        {
            let log = Arc::clone(&self.log);
            if let Err(e) =
                sluice_runtime::blocking("metadata-reopen", move || log.reopen_if_offline()).await
            {
                tracing::error!("reopening the metadata log: {e}");
            }
            outcome = self.log.commit(Box::new(removal)).await;
        }
        let committed = match outcome {
            Ok(Ok(committed)) => committed,
            Ok(Err(e)) => {
                tracing::error!("cannot undo a failed topic creation: {}", e.message);
                return;
            }
            Err(e) => {
                tracing::error!("cannot undo a failed topic creation: {e}");
                return;
            }
        };
        if let Err(e) = self.publish(committed).await {
            tracing::error!(
                "cannot drop the partitions of a failed topic creation: {}",
                e.message
            );
        }
    }

    /// Creates one topic with broker defaults if it does not exist
    /// (auto-creation from Metadata). Returns the error if it could not.
    pub async fn auto_create_topic(self: &Arc<Self>, name: &str) -> Result<(), ApiError> {
        let topic = NewTopic {
            name: name.to_owned(),
            num_partitions: -1,
            replication_factor: -1,
            configs: Vec::new(),
            assignments: Vec::new(),
        };
        match self.create_topics(vec![topic], false).await.pop() {
            Some(Ok(_)) => Ok(()),
            Some(Err(e)) if e.code == code::TOPIC_ALREADY_EXISTS => Ok(()),
            Some(Err(e)) => Err(e),
            None => Err(ApiError::new(code::UNKNOWN_SERVER_ERROR, "no result")),
        }
    }

    /// Creates an internal, compacted, never-expiring topic (`__consumer_offsets`,
    /// `__transaction_state`) with `partitions` partitions unless it exists.
    /// Concurrent callers are fine: a loser sees TOPIC_ALREADY_EXISTS.
    ///
    /// Its replication factor is the topic's configured one
    /// ([`InternalTopicReplication`], Kafka's default 3) capped at the live
    /// brokers. Kafka refuses to create the topic while fewer brokers are
    /// alive; the cap keeps a single node (and a cluster still coming up)
    /// working, at the price of fewer replicas than configured: placement
    /// does not add replicas to an existing topic later. With no live
    /// broker at all it is refused (INVALID_REPLICATION_FACTOR) and the
    /// coordinator asks again on its next use.
    pub async fn ensure_internal_topic(
        self: &Arc<Self>,
        name: &str,
        partitions: i32,
    ) -> Result<(), ApiError> {
        if self
            .log
            .image()
            .topics
            .get(name)
            .is_some_and(|t| t.partitions.len() >= partitions as usize)
        {
            return Ok(());
        }
        let replication = &self.config.internal_topics;
        let configured = if name == TRANSACTION_STATE_TOPIC {
            replication.transaction_state_replication_factor
        } else {
            replication.offsets_topic_replication_factor
        };
        let live = placement::usable_brokers(&self.log.image(), self.config.node_id).len();
        // At least 1, so no live broker is refused as a replication factor
        // above the live brokers rather than an invalid one.
        let replication_factor = configured.min(i16::try_from(live.max(1)).unwrap_or(i16::MAX));
        let topic = NewTopic {
            name: name.to_owned(),
            num_partitions: partitions,
            replication_factor,
            configs: vec![
                ("cleanup.policy".to_owned(), Some("compact".to_owned())),
                ("retention.ms".to_owned(), Some("-1".to_owned())),
                ("retention.bytes".to_owned(), Some("-1".to_owned())),
                // Kafka's offsets.topic.segment.bytes and
                // transaction.state.log.segment.bytes: the cleaner never
                // touches the active segment, so this bounds what a
                // coordinator replays beyond the live keys.
                (
                    "segment.bytes".to_owned(),
                    Some(INTERNAL_TOPIC_SEGMENT_BYTES.to_string()),
                ),
            ],
            assignments: Vec::new(),
        };
        match self.create_topics(vec![topic], false).await.pop() {
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

    /// Registers a broker (or re-registers it after a restart) and returns
    /// its broker epoch: the previous epoch of that id plus one, or 1 for a
    /// new id. It starts fenced, so in the same change it loses the
    /// leadership of every partition it leads. A retry with the current
    /// incarnation id writes nothing and returns the current epoch.
    pub async fn register_broker(
        self: &Arc<Self>,
        registration: BrokerRegistration,
    ) -> Result<i64, ApiError> {
        let this = Arc::clone(self);
        detached(async move {
            let mut epoch = 0;
            let outcome = this
                .log
                .commit(Box::new(|image| {
                    let registered = placement::register_broker_records(image, &registration)?;
                    epoch = registered.epoch;
                    Ok(registered.records)
                }))
                .await;
            this.finish(outcome).await.map(|()| epoch)
        })
        .await?
    }

    /// Fences a broker: it leads nothing, and leaves every ISR it is not the
    /// last member of. Its partitions go to another live ISR member, or
    /// have no leader (-1). Nothing changes if it is fenced already.
    pub async fn fence_broker(self: &Arc<Self>, broker_id: i32) -> Result<(), ApiError> {
        self.broker_change(move |image| placement::fence_broker_records(image, broker_id))
            .await
    }

    /// Unfences a broker: it leads every leaderless partition whose ISR
    /// holds it. Nothing changes if it is unfenced already.
    pub async fn unfence_broker(self: &Arc<Self>, broker_id: i32) -> Result<(), ApiError> {
        self.broker_change(move |image| placement::unfence_broker_records(image, broker_id))
            .await
    }

    /// Removes a broker from the cluster: fenced as by
    /// [`Controller::fence_broker`], then unregistered. Refused with
    /// BROKER_ID_NOT_REGISTERED if it is not registered.
    pub async fn unregister_broker(self: &Arc<Self>, broker_id: i32) -> Result<(), ApiError> {
        self.broker_change(move |image| placement::unregister_broker_records(image, broker_id))
            .await
    }

    /// Commits and publishes one broker lifecycle change.
    async fn broker_change(
        self: &Arc<Self>,
        records: impl FnOnce(&MetadataImage) -> Result<Vec<MetadataRecord>, ApiError> + Send + 'static,
    ) -> Result<(), ApiError> {
        let this = Arc::clone(self);
        detached(async move {
            let outcome = this.log.commit(Box::new(records)).await;
            this.finish(outcome).await
        })
        .await?
    }

    /// Deletes topics by name; one result per name, in order.
    pub async fn delete_topics(
        self: &Arc<Self>,
        names: Vec<String>,
    ) -> Vec<Result<Uuid, ApiError>> {
        if let Some(remote) = self.remote_if_not_active() {
            let count = names.len();
            return match remote.call(ControllerCall::DeleteTopics { names }).await {
                Ok(ControllerReply::DeleteTopics(results)) => results,
                Ok(other) => vec![Err(unexpected_reply(&other)); count],
                Err(e) => vec![Err(e); count],
            };
        }
        self.delete_topics_here(names).await
    }

    async fn delete_topics_here(
        self: &Arc<Self>,
        names: Vec<String>,
    ) -> Vec<Result<Uuid, ApiError>> {
        let count = names.len();
        let this = Arc::clone(self);
        detached(async move { this.delete_topics_now(names).await })
            .await
            .unwrap_or_else(|e| vec![Err(e); count])
    }

    async fn delete_topics_now(
        self: &Arc<Self>,
        names: Vec<String>,
    ) -> Vec<Result<Uuid, ApiError>> {
        let mut results = Vec::with_capacity(names.len());
        let outcome = self
            .log
            .commit(Box::new(|image| {
                Ok::<_, ApiError>(removal_records(image, &names, &mut results))
            }))
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
                let this = Arc::clone(self);
                // Internal topics are never deleted by a client, full disk or not.
                let doomed: Vec<String> = names
                    .iter()
                    .filter(|name| !is_internal_topic(name))
                    .cloned()
                    .collect();
                let freed = sluice_runtime::blocking("free-topic-space", move || {
                    for name in &doomed {
                        for listener in &this.listeners {
                            listener.discard_topic(name);
                        }
                    }
                    this.log.reopen_if_offline();
                })
                .await;
                if let Err(e) = freed {
                    tracing::error!("freeing space for a topic deletion: {e}");
                }
                results.clear();
                self.log
                    .commit(Box::new(|image| {
                        Ok::<_, ApiError>(removal_records(image, &names, &mut results))
                    }))
                    .await
            }
            other => other,
        };
        match self.finish(outcome).await {
            Ok(()) => results,
            Err(e) => names.iter().map(|_| Err(e.clone())).collect(),
        }
    }

    /// Grows topics as `requests` ask; one result per request, in order.
    pub async fn create_partitions(
        self: &Arc<Self>,
        requests: Vec<NewPartitions>,
        validate_only: bool,
    ) -> Vec<Result<(), ApiError>> {
        if let Some(remote) = self.remote_if_not_active() {
            let count = requests.len();
            let call = ControllerCall::CreatePartitions {
                requests,
                validate_only,
            };
            return match remote.call(call).await {
                Ok(ControllerReply::CreatePartitions(results)) => results,
                Ok(other) => vec![Err(unexpected_reply(&other)); count],
                Err(e) => vec![Err(e); count],
            };
        }
        self.create_partitions_here(requests, validate_only).await
    }

    async fn create_partitions_here(
        self: &Arc<Self>,
        requests: Vec<NewPartitions>,
        validate_only: bool,
    ) -> Vec<Result<(), ApiError>> {
        let count = requests.len();
        let this = Arc::clone(self);
        detached(async move { this.create_partitions_now(requests, validate_only).await })
            .await
            .unwrap_or_else(|e| vec![Err(e); count])
    }

    async fn create_partitions_now(
        self: &Arc<Self>,
        requests: Vec<NewPartitions>,
        validate_only: bool,
    ) -> Vec<Result<(), ApiError>> {
        let node_id = self.config.node_id;
        let mut results = Vec::with_capacity(requests.len());
        let outcome = self
            .log
            .commit(Box::new(|image| {
                let mut records = Vec::new();
                for request in &requests {
                    let result = new_partition_records(image, node_id, request).map(|new| {
                        if !validate_only {
                            records.extend(new);
                        }
                    });
                    results.push(result);
                }
                Ok::<_, ApiError>(records)
            }))
            .await;
        match self.finish(outcome).await {
            Ok(()) => results,
            Err(e) => requests.iter().map(|_| Err(e.clone())).collect(),
        }
    }

    /// Alters one topic's configs.
    pub async fn alter_topic_configs(
        self: &Arc<Self>,
        topic: &str,
        ops: Vec<ConfigOp>,
        mode: AlterMode,
        validate_only: bool,
    ) -> Result<(), ApiError> {
        if let Some(remote) = self.remote_if_not_active() {
            let call = ControllerCall::AlterTopicConfigs {
                topic: topic.to_owned(),
                ops,
                mode,
                validate_only,
            };
            return match remote.call(call).await? {
                ControllerReply::AlterTopicConfigs(result) => result,
                other => Err(unexpected_reply(&other)),
            };
        }
        self.alter_topic_configs_here(topic, ops, mode, validate_only)
            .await
    }

    async fn alter_topic_configs_here(
        self: &Arc<Self>,
        topic: &str,
        ops: Vec<ConfigOp>,
        mode: AlterMode,
        validate_only: bool,
    ) -> Result<(), ApiError> {
        let this = Arc::clone(self);
        let topic = topic.to_owned();
        detached(async move {
            this.alter_topic_configs_now(&topic, ops, mode, validate_only)
                .await
        })
        .await?
    }

    async fn alter_topic_configs_now(
        self: &Arc<Self>,
        topic: &str,
        ops: Vec<ConfigOp>,
        mode: AlterMode,
        validate_only: bool,
    ) -> Result<(), ApiError> {
        let outcome = self
            .log
            .commit(Box::new(|image| {
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
                            let current = next.get(k).cloned().unwrap_or_else(|| {
                                topic_config::default_value(k, &self.config.log)
                            });
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
                    check_internal_configs(&self.config.log, topic, &next)?;
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
                // Enabling unclean leader election gives the topic's
                // leaderless partitions a live replica as leader in the
                // same change (nothing when none is leaderless).
                records.extend(placement::unclean_election_records(
                    image,
                    self.config.node_id,
                    topic_id,
                    &next,
                ));
                Ok(records)
            }))
            .await;
        self.finish(outcome).await
    }

    /// Creates ACLs (CreateAcls). Runs where it is called: Kafka forwards
    /// CreateAcls to the active controller whole, so the broker's handler
    /// runs there. The ACLs are validated already; one that exists (or
    /// repeats within the call) writes nothing, as in Kafka. All or none
    /// commit.
    pub async fn create_acls(
        self: &Arc<Self>,
        acls: Vec<crate::acl::AclBinding>,
    ) -> Result<(), ApiError> {
        if acls.is_empty() {
            return Ok(());
        }
        let outcome = self
            .log
            .commit(Box::new(move |image: &MetadataImage| {
                let mut records: Vec<MetadataRecord> = Vec::new();
                for acl in acls {
                    let repeated = records.iter().any(|r| {
                        matches!(r, MetadataRecord::AccessControlEntry { acl: a, .. } if *a == acl)
                    });
                    if repeated || image.acls.find(&acl).is_some() {
                        continue;
                    }
                    records.push(MetadataRecord::AccessControlEntry {
                        id: new_acl_id(image),
                        acl,
                    });
                }
                Ok(records)
            }))
            .await;
        self.finish(outcome).await
    }

    /// Deletes the ACLs each filter matches (DeleteAcls), against one
    /// image and in one commit; like [`Controller::create_acls`] it runs
    /// where it is called. Returns, per filter, the ACLs it matched (an ACL
    /// two filters match is listed under both and deleted once).
    pub async fn delete_acls(
        self: &Arc<Self>,
        filters: Vec<crate::acl::AclFilter>,
    ) -> Result<Vec<Vec<crate::acl::AclBinding>>, ApiError> {
        let mut matched: Vec<Vec<crate::acl::AclBinding>> = Vec::new();
        let outcome = self
            .log
            .commit(Box::new(|image: &MetadataImage| {
                let mut ids = std::collections::BTreeSet::new();
                for filter in &filters {
                    let hits = image.acls.matching(filter);
                    let mut list = Vec::new();
                    for (id, acl) in hits {
                        ids.insert(*id);
                        list.push(acl.clone());
                    }
                    matched.push(list);
                }
                Ok(ids
                    .into_iter()
                    .map(|id| MetadataRecord::RemoveAccessControlEntry { id })
                    .collect())
            }))
            .await;
        self.finish(outcome).await?;
        Ok(matched)
    }

    /// After a commit: surfaces errors and publishes the change.
    async fn finish(
        self: &Arc<Self>,
        outcome: Result<Result<Committed, ApiError>, MetadataError>,
    ) -> Result<(), ApiError> {
        let committed = outcome??;
        self.publish(committed).await
    }

    /// Hands a committed change to every listener, on a blocking thread (they
    /// open and delete logs).
    async fn publish(self: &Arc<Self>, committed: Committed) -> Result<(), ApiError> {
        if committed.published || committed.delta.touches_no_topic() {
            return Ok(());
        }
        let this = Arc::clone(self);
        let applied = sluice_runtime::blocking("publish-metadata", move || {
            for listener in &this.listeners {
                listener.apply(&committed.delta, &committed.image)?;
            }
            Ok::<_, sluice_log::LogError>(())
        })
        .await;
        match applied {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => {
                tracing::error!("cannot open partition logs: {e}");
                Err(ApiError::new(code::KAFKA_STORAGE_ERROR, e.to_string()))
            }
            Err(e) => Err(ApiError::new(code::UNKNOWN_SERVER_ERROR, e.to_string())),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;
    use crate::log::LocalMetadataLog;
    use crate::placement::NO_LEADER;

    const NODE: i32 = 1;

    /// A controller over a fresh metadata log in `dir`, with no listeners.
    fn controller_in(dir: &std::path::Path) -> Arc<Controller> {
        let log = LocalMetadataLog::open(dir).expect("open metadata log");
        Arc::new(Controller::new(
            Arc::new(log),
            Vec::new(),
            ControllerConfig {
                node_id: NODE,
                ..ControllerConfig::default()
            },
        ))
    }

    #[tokio::test]
    async fn http_tokens_commit_once_and_revoke_once() {
        let dir = tempfile::tempdir().expect("tempdir");
        let controller = controller_in(dir.path());
        let token = HttpTokenImage {
            id: "t1".to_owned(),
            principal: "User:alice".to_owned(),
            sha256: [7; 32],
            created_ms: 1,
            expires_ms: 2,
        };
        controller
            .create_http_token(token.clone())
            .await
            .expect("created");
        assert_eq!(controller.log.image().http_tokens["t1"], token);
        let again = controller.create_http_token(token.clone()).await;
        assert_eq!(again.map_err(|e| e.code), Err(code::INVALID_REQUEST));
        let empty = HttpTokenImage {
            principal: String::new(),
            id: "t2".to_owned(),
            ..token
        };
        let refused = controller.create_http_token(empty).await;
        assert_eq!(refused.map_err(|e| e.code), Err(code::INVALID_REQUEST));
        controller
            .remove_http_token("t1".to_owned())
            .await
            .expect("revoked");
        assert!(controller.log.image().http_tokens.is_empty());
        let gone = controller.remove_http_token("t1".to_owned()).await;
        assert_eq!(
            gone.map_err(|e| e.code),
            Err(code::DELEGATION_TOKEN_NOT_FOUND)
        );
    }

    #[tokio::test]
    async fn dynamic_broker_configs_commit_per_broker_and_as_the_cluster_default() {
        let dir = tempfile::tempdir().expect("tempdir");
        let controller = controller_in(dir.path());
        let rate = broker_config::FOLLOWER_THROTTLED_RATE;
        let set = |k: &str, v: &str| ConfigOp::Set(k.to_owned(), v.to_owned());
        controller
            .alter_broker_configs(2, vec![set(rate, "1000")], AlterMode::Incremental, false)
            .await
            .expect("set on broker 2");
        controller
            .alter_broker_configs(-1, vec![set(rate, "50")], AlterMode::Incremental, false)
            .await
            .expect("set the default");
        let image = controller.log.image();
        assert_eq!(image.broker_configs[&2][rate], "1000");
        assert_eq!(image.broker_configs[&-1][rate], "50");

        // Refused ops commit nothing, not even the valid ops beside them.
        for (ops, code) in [
            (
                vec![set(rate, "5"), set("num.partitions", "3")],
                code::INVALID_REQUEST,
            ),
            (vec![set(rate, "-5")], code::INVALID_CONFIG),
            (
                vec![ConfigOp::Append(rate.to_owned(), "1".to_owned())],
                code::INVALID_CONFIG,
            ),
        ] {
            let err = controller
                .alter_broker_configs(2, ops, AlterMode::Incremental, false)
                .await
                .expect_err("refused");
            assert_eq!(err.code, code);
        }
        let err = controller
            .alter_broker_configs(-2, vec![set(rate, "5")], AlterMode::Incremental, false)
            .await
            .expect_err("not a broker id");
        assert_eq!(err.code, code::INVALID_REQUEST);
        controller
            .alter_broker_configs(2, vec![set(rate, "7")], AlterMode::Incremental, true)
            .await
            .expect("validate only");
        assert_eq!(controller.log.image().broker_configs[&2][rate], "1000");

        // AlterConfigs replaces broker 2's whole dynamic config.
        let leader = broker_config::LEADER_THROTTLED_RATE;
        controller
            .alter_broker_configs(2, vec![set(leader, "9")], AlterMode::Replace, false)
            .await
            .expect("replace");
        let image = controller.log.image();
        assert_eq!(
            image.broker_configs[&2],
            BTreeMap::from([(leader.to_owned(), "9".to_owned())])
        );
        controller
            .alter_broker_configs(
                2,
                vec![ConfigOp::Delete(leader.to_owned())],
                AlterMode::Incremental,
                false,
            )
            .await
            .expect("delete");
        assert!(!controller.log.image().broker_configs.contains_key(&2));
    }

    fn registration(broker_id: i32, rack: Option<&str>) -> BrokerRegistration {
        BrokerRegistration {
            broker_id,
            incarnation_id: Uuid::new_v4(),
            host: "127.0.0.1".to_owned(),
            port: 9092 + broker_id,
            rack: rack.map(str::to_owned),
            endpoints: Vec::new(),
        }
    }

    /// Registers and unfences `ids`.
    async fn live(controller: &Arc<Controller>, ids: &[(i32, Option<&str>)]) {
        for &(id, rack) in ids {
            controller
                .register_broker(registration(id, rack))
                .await
                .expect("register");
            controller.unfence_broker(id).await.expect("unfence");
        }
    }

    fn new_topic(name: &str, num_partitions: i32, replication_factor: i16) -> NewTopic {
        NewTopic {
            name: name.to_owned(),
            num_partitions,
            replication_factor,
            configs: Vec::new(),
            assignments: Vec::new(),
        }
    }

    fn manual(name: &str, replicas: &[&[i32]]) -> NewTopic {
        NewTopic {
            assignments: (0..)
                .zip(replicas)
                .map(|(partition_index, ids)| ReplicaAssignment {
                    partition_index,
                    broker_ids: ids.to_vec(),
                })
                .collect(),
            ..new_topic(name, -1, -1)
        }
    }

    async fn create(
        controller: &Arc<Controller>,
        topic: NewTopic,
    ) -> Result<CreatedTopic, ApiError> {
        controller
            .create_topics(vec![topic], false)
            .await
            .pop()
            .expect("one result")
    }

    #[tokio::test]
    async fn registering_a_broker_commits_its_epoch_and_a_retry_commits_nothing() {
        let dir = tempfile::tempdir().expect("tempdir");
        let controller = controller_in(dir.path());
        let first = registration(2, Some("r"));
        assert_eq!(controller.register_broker(first.clone()).await, Ok(1));
        let offset = controller.image().next_offset;
        assert_eq!(controller.register_broker(first).await, Ok(1));
        assert_eq!(
            controller.image().next_offset,
            offset,
            "a retry writes nothing"
        );
        assert!(controller.image().brokers[&2].fenced);
        assert_eq!(
            controller.register_broker(registration(2, None)).await,
            Ok(2)
        );
        controller.unfence_broker(2).await.expect("unfence");
        assert!(!controller.image().brokers[&2].fenced);
        let unknown = controller.fence_broker(7).await.expect_err("unknown");
        assert_eq!(unknown.code, code::BROKER_ID_NOT_REGISTERED);
    }

    #[tokio::test]
    async fn topics_are_placed_across_the_live_brokers_with_their_replication_factor() {
        let dir = tempfile::tempdir().expect("tempdir");
        let controller = controller_in(dir.path());
        live(&controller, &[(1, None), (2, None), (3, None)]).await;
        let created = create(&controller, new_topic("t", 6, 3))
            .await
            .expect("created");
        assert_eq!((created.num_partitions, created.replication_factor), (6, 3));
        let image = controller.image();
        let mut leads = BTreeMap::new();
        for p in image.topics["t"].partitions.values() {
            assert_eq!(
                p.replicas.iter().collect::<BTreeSet<_>>(),
                BTreeSet::from([&1, &2, &3])
            );
            // Every replica of a new partition is in sync.
            assert_eq!(
                (
                    p.leader,
                    p.isr.as_slice(),
                    p.leader_epoch,
                    p.partition_epoch
                ),
                (p.replicas[0], p.replicas.as_slice(), 0, 0)
            );
            *leads.entry(p.leader).or_insert(0) += 1;
        }
        assert_eq!(leads, BTreeMap::from([(1, 2), (2, 2), (3, 2)]));

        let refused = create(&controller, new_topic("wide", 1, 4))
            .await
            .expect_err("rf 4");
        assert_eq!(refused.code, code::INVALID_REPLICATION_FACTOR);
        assert_eq!(
            refused.message,
            "Replication factor: 4 larger than available brokers: 3."
        );
        let refused = create(&controller, new_topic("zero", 1, 0))
            .await
            .expect_err("rf 0");
        assert_eq!(refused.code, code::INVALID_REPLICATION_FACTOR);
        let defaulted = create(&controller, new_topic("d", 1, -1))
            .await
            .expect("default rf");
        assert_eq!(defaulted.replication_factor, 1);
        // validate_only refuses what a creation would.
        let checked = controller
            .create_topics(vec![new_topic("v", 1, 4)], true)
            .await;
        assert_eq!(
            checked[0].as_ref().map_err(|e| e.code).err(),
            Some(code::INVALID_REPLICATION_FACTOR)
        );
    }

    #[tokio::test]
    async fn fenced_brokers_get_no_new_replicas_and_lose_their_leadership() {
        let dir = tempfile::tempdir().expect("tempdir");
        let controller = controller_in(dir.path());
        live(&controller, &[(1, None), (2, None), (3, None)]).await;
        create(&controller, new_topic("before", 3, 1))
            .await
            .expect("created");
        controller.fence_broker(2).await.expect("fence");
        let image = controller.image();
        for p in image.topics["before"].partitions.values() {
            assert_ne!(p.leader, 2);
            if p.replicas == [2] {
                assert_eq!(
                    (p.leader, p.isr.as_slice(), p.leader_epoch),
                    (NO_LEADER, &[2][..], 1)
                );
            }
        }
        create(&controller, new_topic("after", 8, 2))
            .await
            .expect("created");
        let image = controller.image();
        assert!(
            image.topics["after"]
                .partitions
                .values()
                .all(|p| !p.replicas.contains(&2))
        );

        controller.unfence_broker(2).await.expect("unfence");
        let image = controller.image();
        assert!(
            image.topics["before"]
                .partitions
                .values()
                .all(|p| p.leader == p.replicas[0])
        );
        controller.unregister_broker(3).await.expect("unregister");
        let image = controller.image();
        assert!(!image.brokers.contains_key(&3));
        assert!(
            image.topics["before"]
                .partitions
                .values()
                .all(|p| p.leader != 3)
        );
    }

    #[tokio::test]
    async fn manual_assignments_are_checked_against_registered_brokers() {
        let dir = tempfile::tempdir().expect("tempdir");
        let controller = controller_in(dir.path());
        live(&controller, &[(1, None), (2, None), (3, None)]).await;
        controller
            .register_broker(registration(4, None))
            .await
            .expect("fenced broker");
        let created = create(&controller, manual("m", &[&[3, 1], &[4, 2]]))
            .await
            .expect("created");
        assert_eq!((created.num_partitions, created.replication_factor), (2, 2));
        let image = controller.image();
        let parts = &image.topics["m"].partitions;
        assert_eq!(
            (parts[&0].leader, parts[&0].replicas.as_slice()),
            (3, &[3, 1][..])
        );
        assert_eq!(
            (parts[&1].leader, parts[&1].isr.as_slice()),
            (2, &[2][..]),
            "fenced 4 cannot lead"
        );

        let mut gap = manual("gap", &[&[1]]);
        gap.assignments[0].partition_index = 1;
        let mut twice = manual("twice", &[&[1], &[2]]);
        twice.assignments[1].partition_index = 0;
        let mut counted = manual("counted", &[&[1]]);
        counted.num_partitions = 1;
        for (topic, expected) in [
            (
                manual("unknown", &[&[1, 9]]),
                code::INVALID_REPLICA_ASSIGNMENT,
            ),
            (manual("dup", &[&[1, 1]]), code::INVALID_REPLICA_ASSIGNMENT),
            (manual("empty", &[&[]]), code::INVALID_REPLICA_ASSIGNMENT),
            (
                manual("uneven", &[&[1, 2], &[3]]),
                code::INVALID_REPLICA_ASSIGNMENT,
            ),
            (manual("fenced", &[&[4]]), code::INVALID_REPLICA_ASSIGNMENT),
            (gap, code::INVALID_REPLICA_ASSIGNMENT),
            (twice, code::INVALID_REPLICA_ASSIGNMENT),
            (counted, code::INVALID_REQUEST),
        ] {
            let name = topic.name.clone();
            let refused = create(&controller, topic).await.expect_err(&name);
            assert_eq!(refused.code, expected, "{name}: {}", refused.message);
        }

        let grow = |assignments: Option<Vec<Vec<i32>>>| NewPartitions {
            topic: "m".to_owned(),
            count: 4,
            assignments,
        };
        let results = controller
            .create_partitions(
                vec![
                    grow(Some(vec![vec![1, 2]])),
                    grow(Some(vec![vec![1, 2], vec![3]])),
                    grow(Some(vec![vec![1, 2], vec![3, 9]])),
                ],
                false,
            )
            .await;
        let codes: Vec<_> = results
            .iter()
            .map(|r| r.as_ref().map_err(|e| e.code).err())
            .collect();
        assert_eq!(codes, [Some(code::INVALID_REPLICA_ASSIGNMENT); 3]);
        let results = controller
            .create_partitions(vec![grow(Some(vec![vec![2, 3], vec![1, 3]]))], false)
            .await;
        assert_eq!(results, [Ok(())]);
        let image = controller.image();
        let parts = &image.topics["m"].partitions;
        assert_eq!(
            (parts[&2].replicas.as_slice(), parts[&3].replicas.as_slice()),
            (&[2, 3][..], &[1, 3][..])
        );
    }

    #[tokio::test]
    async fn added_partitions_keep_the_replication_factor_and_spread_leaders() {
        let dir = tempfile::tempdir().expect("tempdir");
        let controller = controller_in(dir.path());
        live(
            &controller,
            &[(1, Some("a")), (2, Some("b")), (3, Some("c"))],
        )
        .await;
        create(&controller, new_topic("t", 2, 2))
            .await
            .expect("created");
        let results = controller
            .create_partitions(vec![("t".to_owned(), 6).into()], false)
            .await;
        assert_eq!(results, [Ok(())]);
        let image = controller.image();
        let mut leads = BTreeMap::new();
        for p in image.topics["t"].partitions.values() {
            assert_eq!(p.replicas.len(), 2);
            assert_ne!(p.replicas[0], p.replicas[1]);
            *leads.entry(p.leader).or_insert(0) += 1;
        }
        assert_eq!(leads, BTreeMap::from([(1, 2), (2, 2), (3, 2)]));
        controller.fence_broker(1).await.expect("fence");
        controller.fence_broker(2).await.expect("fence");
        let refused = controller
            .create_partitions(vec![("t".to_owned(), 7).into()], false)
            .await;
        assert_eq!(
            refused[0].as_ref().map_err(|e| e.code),
            Err(code::INVALID_REPLICATION_FACTOR)
        );
    }

    /// A way to the active controller that hands each call, through its
    /// JSON form, to `active`'s [`Controller::serve_call`], counting calls.
    #[derive(Debug)]
    struct Loopback {
        active: Arc<Controller>,
        calls: std::sync::atomic::AtomicUsize,
    }

    impl ControllerRemote for Loopback {
        fn is_active(&self) -> bool {
            false
        }

        fn call(
            &self,
            call: ControllerCall,
        ) -> futures::future::BoxFuture<'static, Result<ControllerReply, ApiError>> {
            self.calls
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let active = Arc::clone(&self.active);
            Box::pin(async move {
                let wire = serde_json::to_vec(&call).expect("call encodes");
                let call = serde_json::from_slice(&wire).expect("call decodes");
                let reply = active.serve_call(call).await;
                let wire = serde_json::to_vec(&reply).expect("reply encodes");
                Ok(serde_json::from_slice(&wire).expect("reply decodes"))
            })
        }
    }

    /// A controller on node 2 that forwards to `active` through a
    /// [`Loopback`] (which counts the calls).
    fn forwarding_to(active: &Arc<Controller>) -> (Arc<Loopback>, Arc<Controller>) {
        let remote = Arc::new(Loopback {
            active: Arc::clone(active),
            calls: Default::default(),
        });
        let other = Arc::new(Controller::new(
            Arc::clone(active.log()),
            Vec::new(),
            ControllerConfig {
                node_id: 2,
                ..ControllerConfig::default()
            },
        ));
        other.set_remote(Arc::clone(&remote) as Arc<dyn ControllerRemote>);
        (remote, other)
    }

    /// Brokers 1 to 3 live and topic `t` with one partition on all three
    /// (ISR all three, partition epoch 0); returns its id and leader.
    async fn replicated_topic(controller: &Arc<Controller>) -> (Uuid, i32) {
        live(controller, &[(1, None), (2, None), (3, None)]).await;
        let created = create(controller, new_topic("t", 1, 3))
            .await
            .expect("created");
        let image = controller.image();
        (created.topic_id, image.topics["t"].partitions[&0].leader)
    }

    fn shrink_to_leader(
        topic_id: Uuid,
        leader: i32,
        partition_epoch: i32,
    ) -> AlterPartitionRequest {
        AlterPartitionRequest {
            broker_id: leader,
            broker_epoch: 1,
            topic_id,
            partition: 0,
            leader_epoch: 0,
            partition_epoch,
            new_isr: vec![leader],
        }
    }

    #[tokio::test]
    async fn alter_partition_commits_on_the_active_controller_and_from_another_node() {
        let dir = tempfile::tempdir().expect("tempdir");
        let active = controller_in(dir.path());
        let (topic_id, leader) = replicated_topic(&active).await;

        let outcome = active
            .alter_partition(shrink_to_leader(topic_id, leader, 0))
            .await
            .expect("shrink");
        assert_eq!(
            outcome,
            AlterPartitionOutcome {
                leader,
                leader_epoch: 0,
                partition_epoch: 1,
                isr: vec![leader],
            }
        );
        let p = active.image().topics["t"].partitions[&0].clone();
        assert_eq!((p.isr.as_slice(), p.partition_epoch), (&[leader][..], 1));

        // Another node's controller over the same log routes the call.
        let (remote, other) = forwarding_to(&active);
        let expand = AlterPartitionRequest {
            partition_epoch: 1,
            new_isr: p.replicas.clone(),
            ..shrink_to_leader(topic_id, leader, 1)
        };
        let outcome = other.alter_partition(expand.clone()).await.expect("expand");
        assert_eq!(
            (outcome.isr, outcome.partition_epoch),
            (p.replicas.clone(), 2)
        );
        assert_eq!(
            remote.calls.load(std::sync::atomic::Ordering::Relaxed),
            1,
            "routed to the active controller"
        );
        // A refusal comes back as the operation's own error.
        let stale = other.alter_partition(expand).await.expect_err("stale");
        assert_eq!(stale.code, code::INVALID_UPDATE_VERSION);
        assert_eq!(active.image().topics["t"].partitions[&0].partition_epoch, 2);
    }

    #[tokio::test]
    async fn of_two_racing_alter_partitions_only_one_commits() {
        let dir = tempfile::tempdir().expect("tempdir");
        let controller = controller_in(dir.path());
        let (topic_id, leader) = replicated_topic(&controller).await;
        let follower = controller.image().topics["t"].partitions[&0]
            .replicas
            .iter()
            .copied()
            .find(|&b| b != leader)
            .expect("a follower");
        let first = shrink_to_leader(topic_id, leader, 0);
        let second = AlterPartitionRequest {
            new_isr: vec![leader, follower],
            ..first.clone()
        };
        let (a, b) = tokio::join!(
            controller.alter_partition(first),
            controller.alter_partition(second)
        );
        let committed = [&a, &b].iter().filter(|r| r.is_ok()).count();
        assert_eq!(committed, 1, "{a:?} {b:?}");
        let refused = a.as_ref().err().or(b.as_ref().err()).expect("one refused");
        assert_eq!(refused.code, code::INVALID_UPDATE_VERSION);
        assert_eq!(
            controller.image().topics["t"].partitions[&0].partition_epoch,
            1
        );
    }

    /// Brokers 1 to 4 live and topic `t` with one partition placed by hand
    /// on 1, 2 and 3 (ISR all three, led by 1).
    async fn reassignable_topic(controller: &Arc<Controller>) {
        live(controller, &[(1, None), (2, None), (3, None), (4, None)]).await;
        create(controller, manual("t", &[&[1, 2, 3]]))
            .await
            .expect("created");
    }

    fn move_to(target: Option<&[i32]>) -> ReassignmentRequest {
        ReassignmentRequest {
            topic: "t".to_owned(),
            partition: 0,
            target: target.map(<[i32]>::to_vec),
        }
    }

    /// The leader's AlterPartition to `new_isr` on the current state.
    fn expand_to(image: &MetadataImage, new_isr: &[i32]) -> AlterPartitionRequest {
        let p = &image.topics["t"].partitions[&0];
        AlterPartitionRequest {
            broker_id: p.leader,
            broker_epoch: -1,
            topic_id: image.topics["t"].topic_id,
            partition: 0,
            leader_epoch: p.leader_epoch,
            partition_epoch: p.partition_epoch,
            new_isr: new_isr.to_vec(),
        }
    }

    #[tokio::test]
    async fn reassignments_run_on_the_active_controller_from_any_node_and_list() {
        let dir = tempfile::tempdir().expect("tempdir");
        let active = controller_in(dir.path());
        reassignable_topic(&active).await;
        let (remote, other) = forwarding_to(&active);

        let results = other
            .alter_partition_reassignments(vec![
                move_to(Some(&[2, 3, 4])),
                ReassignmentRequest {
                    topic: "missing".to_owned(),
                    ..move_to(None)
                },
            ])
            .await
            .expect("call");
        let codes: Vec<Option<i16>> = results
            .iter()
            .map(|r| r.result.as_ref().err().map(|e| e.code))
            .collect();
        assert_eq!(codes, [None, Some(code::UNKNOWN_TOPIC_OR_PARTITION)]);
        assert_eq!(remote.calls.load(std::sync::atomic::Ordering::Relaxed), 1);
        let listed = active.list_partition_reassignments(None);
        assert_eq!(
            listed,
            [OngoingReassignment {
                topic: "t".to_owned(),
                partition: 0,
                replicas: vec![2, 3, 4, 1],
                adding_replicas: vec![4],
                removing_replicas: vec![1],
            }]
        );
        assert_eq!(other.list_partition_reassignments(None), listed);

        // Cancel from the other node; a second cancel has nothing to undo.
        let results = other
            .alter_partition_reassignments(vec![move_to(None)])
            .await
            .expect("call");
        assert!(results[0].result.is_ok(), "{results:?}");
        assert!(active.list_partition_reassignments(None).is_empty());
        let results = other
            .alter_partition_reassignments(vec![move_to(None)])
            .await
            .expect("call");
        assert_eq!(
            results[0].result.as_ref().map_err(|e| e.code),
            Err(code::NO_REASSIGNMENT_IN_PROGRESS)
        );

        // Too many partitions in one call fail the call, before forwarding.
        let many = vec![move_to(None); reassignment::MAX_REASSIGNMENTS_PER_CALL + 1];
        let refused = other
            .alter_partition_reassignments(many)
            .await
            .expect_err("too many");
        assert_eq!(refused.code, code::INVALID_REQUEST);
        assert_eq!(remote.calls.load(std::sync::atomic::Ordering::Relaxed), 3);
    }

    #[tokio::test]
    async fn elections_run_on_the_active_controller_from_any_node() {
        let dir = tempfile::tempdir().expect("tempdir");
        let active = controller_in(dir.path());
        reassignable_topic(&active).await;
        let (remote, other) = forwarding_to(&active);
        let t0 = || Some(vec![("t".to_owned(), 0)]);

        // The preferred leader 1 goes away and comes back out of the ISR.
        active.fence_broker(1).await.expect("fence");
        active.unfence_broker(1).await.expect("unfence");
        let p = active.image().topics["t"].partitions[&0].clone();
        assert_eq!((p.leader, p.isr.as_slice()), (2, &[2, 3][..]));
        let results = other
            .elect_leaders(ElectionType::Preferred, t0())
            .await
            .expect("call");
        assert_eq!(
            results[0].result.as_ref().map_err(|e| e.code),
            Err(code::PREFERRED_LEADER_NOT_AVAILABLE)
        );

        // Once it is back in the ISR, electing every partition moves it.
        active
            .alter_partition(expand_to(&active.image(), &[2, 3, 1]))
            .await
            .expect("expand");
        let results = other
            .elect_leaders(ElectionType::Preferred, None)
            .await
            .expect("call");
        assert_eq!(
            results,
            [ElectionResult {
                topic: "t".to_owned(),
                partition: 0,
                result: Ok(()),
            }]
        );
        let q = active.image().topics["t"].partitions[&0].clone();
        assert_eq!(
            (q.leader, q.leader_epoch, q.partition_epoch),
            (1, p.leader_epoch + 1, p.partition_epoch + 2)
        );
        assert_eq!(remote.calls.load(std::sync::atomic::Ordering::Relaxed), 2);
        // Nothing left to elect: every partition is left out.
        let results = other
            .elect_leaders(ElectionType::Preferred, None)
            .await
            .expect("call");
        assert!(results.is_empty(), "{results:?}");
        let results = other
            .elect_leaders(ElectionType::Unclean, t0())
            .await
            .expect("call");
        assert_eq!(
            results[0].result.as_ref().map_err(|e| e.code),
            Err(code::ELECTION_NOT_NEEDED)
        );

        // Too many partitions in one call fail the call, before forwarding.
        let many = vec![("t".to_owned(), 0); election::MAX_ELECTIONS_PER_CALL + 1];
        let refused = other
            .elect_leaders(ElectionType::Preferred, Some(many))
            .await
            .expect_err("too many");
        assert_eq!(refused.code, code::INVALID_REQUEST);
        assert_eq!(remote.calls.load(std::sync::atomic::Ordering::Relaxed), 4);
    }

    #[tokio::test]
    async fn a_new_controller_completes_a_reassignment_the_old_one_started() {
        let dir = tempfile::tempdir().expect("tempdir");
        {
            let first = controller_in(dir.path());
            reassignable_topic(&first).await;
            let results = first
                .alter_partition_reassignments(vec![move_to(Some(&[2, 3, 4]))])
                .await
                .expect("call");
            assert!(results[0].result.is_ok(), "{results:?}");
            // The old controller goes away with the reassignment running.
        }
        let log = LocalMetadataLog::open(dir.path()).expect("reopen metadata log");
        let second = Arc::new(Controller::new(
            Arc::new(log),
            Vec::new(),
            ControllerConfig {
                node_id: 2,
                ..ControllerConfig::default()
            },
        ));
        let image = second.image();
        let p = &image.topics["t"].partitions[&0];
        assert_eq!(
            (p.adding_replicas.as_slice(), p.removing_replicas.as_slice()),
            (&[4][..], &[1][..]),
            "the reassignment is in the replayed log"
        );
        // The next ISR change (4 caught up) completes it on the new
        // controller: 1 leaves and 2 takes over leadership.
        let outcome = second
            .alter_partition(expand_to(&image, &[1, 2, 3, 4]))
            .await
            .expect("expand");
        assert_eq!(
            (outcome.leader, outcome.isr.as_slice()),
            (2, &[2, 3, 4][..])
        );
        let p = second.image().topics["t"].partitions[&0].clone();
        assert_eq!((p.replicas.as_slice(), p.leader), (&[2, 3, 4][..], 2));
        assert!(second.list_partition_reassignments(None).is_empty());
    }

    #[tokio::test]
    async fn enabling_unclean_election_elects_a_leader_for_a_leaderless_partition() {
        let dir = tempfile::tempdir().expect("tempdir");
        let controller = controller_in(dir.path());
        let (topic_id, leader) = replicated_topic(&controller).await;
        controller
            .alter_partition(shrink_to_leader(topic_id, leader, 0))
            .await
            .expect("shrink");
        controller.fence_broker(leader).await.expect("fence");
        let p = controller.image().topics["t"].partitions[&0].clone();
        assert_eq!((p.leader, p.isr.as_slice()), (NO_LEADER, &[leader][..]));

        controller
            .alter_topic_configs(
                "t",
                vec![ConfigOp::Set(
                    "unclean.leader.election.enable".to_owned(),
                    "true".to_owned(),
                )],
                AlterMode::Incremental,
                false,
            )
            .await
            .expect("alter");
        let p = controller.image().topics["t"].partitions[&0].clone();
        let first_live = p
            .replicas
            .iter()
            .copied()
            .find(|&b| b != leader)
            .expect("a live replica");
        assert_eq!(
            (
                p.leader,
                p.isr.as_slice(),
                p.leader_epoch,
                p.partition_epoch
            ),
            (first_live, &[first_live][..], 2, 3)
        );
        let refused = controller
            .alter_topic_configs(
                "t",
                vec![ConfigOp::Set(
                    "unclean.leader.election.enable".to_owned(),
                    "yes".to_owned(),
                )],
                AlterMode::Incremental,
                false,
            )
            .await
            .expect_err("not a boolean");
        assert_eq!(refused.code, code::INVALID_CONFIG);
    }

    #[tokio::test]
    async fn internal_topics_take_their_replication_factor_capped_at_the_live_brokers() {
        // A single node (no registered broker): one replica, not refused.
        let dir = tempfile::tempdir().expect("tempdir");
        let controller = controller_in(dir.path());
        controller
            .ensure_internal_topic("__consumer_offsets", 2)
            .await
            .expect("created on a single node");
        let image = controller.image();
        assert!(
            image.topics["__consumer_offsets"]
                .partitions
                .values()
                .all(|p| p.replicas == [NODE])
        );

        // Two live brokers: the configured 3 is capped at 2.
        let dir = tempfile::tempdir().expect("tempdir");
        let controller = controller_in(dir.path());
        live(&controller, &[(1, None), (2, None)]).await;
        controller
            .ensure_internal_topic("__transaction_state", 2)
            .await
            .expect("created");
        let image = controller.image();
        assert!(
            image.topics["__transaction_state"]
                .partitions
                .values()
                .all(|p| p.replicas.len() == 2 && p.isr.len() == 2)
        );

        // Four live brokers: each topic its own configured factor.
        let dir = tempfile::tempdir().expect("tempdir");
        let log = LocalMetadataLog::open(dir.path()).expect("open metadata log");
        let controller = Arc::new(Controller::new(
            Arc::new(log),
            Vec::new(),
            ControllerConfig {
                node_id: NODE,
                internal_topics: InternalTopicReplication {
                    offsets_topic_replication_factor: 3,
                    transaction_state_replication_factor: 2,
                },
                ..ControllerConfig::default()
            },
        ));
        live(&controller, &[(1, None), (2, None), (3, None), (4, None)]).await;
        for name in INTERNAL_TOPICS {
            controller
                .ensure_internal_topic(name, 1)
                .await
                .expect("created");
        }
        let image = controller.image();
        let rf = |name: &str| image.topics[name].partitions[&0].replicas.len();
        assert_eq!(
            (rf("__consumer_offsets"), rf("__transaction_state")),
            (3, 2)
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

    #[tokio::test]
    async fn decommissioning_is_recorded_on_the_active_controller_and_undone() {
        let dir = tempfile::tempdir().expect("tempdir");
        let active = controller_in(dir.path());
        live(&active, &[(1, None), (2, None)]).await;
        let (remote, other) = forwarding_to(&active);
        other
            .decommission_broker(2, true)
            .await
            .expect("decommissioned");
        assert!(active.image().brokers[&2].decommissioning);
        // Again: nothing to change, still fine.
        other
            .decommission_broker(2, true)
            .await
            .expect("idempotent");
        // The last broker in service cannot go too.
        let refused = other
            .decommission_broker(1, true)
            .await
            .expect_err("no broker would be left");
        assert_eq!(refused.code, code::INVALID_REQUEST);
        let unknown = other
            .decommission_broker(9, true)
            .await
            .expect_err("unknown broker");
        assert_eq!(unknown.code, code::BROKER_ID_NOT_REGISTERED);
        other
            .decommission_broker(2, false)
            .await
            .expect("recommissioned");
        assert!(!active.image().brokers[&2].decommissioning);
        assert_eq!(remote.calls.load(std::sync::atomic::Ordering::Relaxed), 5);
    }
}
