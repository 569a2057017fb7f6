//! Topics: list, create, describe, alter configs, add partitions, delete.
//!
//! Every change goes through [`sluice_metadata::Controller`], the code path of the
//! Kafka admin APIs, so names, partition counts and configs are validated
//! in one place.

use std::collections::BTreeMap;

use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::auth::{Caller, Operation, Resource};
use super::error::{ApiResult, ErrorBody, HttpError, Json, Path};
use super::{AppState, unknown_topic};
use sluice_broker::Broker;
use sluice_metadata::TopicImage;
use sluice_metadata::controller::{AlterMode, ConfigOp, INTERNAL_TOPICS, NewTopic};

/// A topic in the list.
#[derive(Debug, Serialize, ToSchema)]
pub struct TopicSummary {
    /// Name.
    pub name: String,
    /// Stable id.
    pub topic_id: String,
    /// True for `__consumer_offsets` and other internal topics.
    pub internal: bool,
    /// Number of partitions.
    pub partition_count: usize,
    /// Replicas per partition.
    pub replication_factor: usize,
    /// Bytes on disk over all partitions.
    pub size_bytes: u64,
    /// Records currently retained: high watermark minus log start offset, summed.
    pub messages: i64,
}

/// Topic list.
#[derive(Debug, Serialize, ToSchema)]
pub struct TopicList {
    /// Topics sorted by name.
    pub topics: Vec<TopicSummary>,
}

/// One partition of a topic, with its offsets.
#[derive(Debug, Serialize, ToSchema)]
pub struct PartitionDetail {
    /// Partition index.
    pub partition: i32,
    /// Leader broker id.
    pub leader: i32,
    /// Replica broker ids.
    pub replicas: Vec<i32>,
    /// In-sync replica broker ids.
    pub isr: Vec<i32>,
    /// Leader epoch.
    pub leader_epoch: i32,
    /// First offset still in the log.
    pub log_start_offset: i64,
    /// Offset below which records are visible to consumers.
    pub high_watermark: i64,
    /// Offset the next append gets.
    pub log_end_offset: i64,
    /// Bytes of segment files.
    pub size_bytes: u64,
    /// Segment files.
    pub segment_count: usize,
    /// Of a compacted partition hosted here: dirty bytes over cleanable
    /// bytes (0.0 to 1.0), which the cleaner compares with
    /// `min.cleanable.dirty.ratio`; null otherwise.
    pub dirty_ratio: Option<f64>,
    /// When the cleaner last finished a clean of this partition (ms since
    /// the epoch), null if not since the broker started.
    pub last_clean_ms: Option<i64>,
}

/// A topic with its partitions and configs.
#[derive(Debug, Serialize, ToSchema)]
pub struct TopicDetail {
    /// Name.
    pub name: String,
    /// Stable id.
    pub topic_id: String,
    /// True for internal topics.
    pub internal: bool,
    /// Partitions by index.
    pub partitions: Vec<PartitionDetail>,
    /// Configs set on the topic (others take the broker defaults).
    pub configs: BTreeMap<String, String>,
    /// True when `configs` is left empty because the caller may not
    /// DESCRIBE_CONFIGS the topic (with `http_auth` on).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub configs_hidden: bool,
}

/// A topic to create.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateTopicRequest {
    /// Name: ASCII letters, digits, `.`, `_`, `-`; at most 249 characters.
    #[schema(example = "orders")]
    pub name: String,
    /// Partitions; the broker default (`topics.num_partitions`) when absent.
    pub partitions: Option<i32>,
    /// Replication factor; only 1 on a single broker.
    pub replication_factor: Option<i16>,
    /// Topic configs, e.g. `{"retention.ms": "86400000"}`.
    #[serde(default)]
    pub configs: BTreeMap<String, String>,
}

/// Config changes; keys not named keep their values.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AlterConfigsRequest {
    /// Configs to set.
    #[serde(default)]
    pub set: BTreeMap<String, String>,
    /// Configs to reset to the broker default.
    #[serde(default)]
    pub delete: Vec<String>,
}

/// A new partition count.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AddPartitionsRequest {
    /// The new total, larger than the current count.
    pub count: i32,
}

fn is_internal(name: &str) -> bool {
    INTERNAL_TOPICS.contains(&name)
}

fn summary(broker: &Broker, t: &TopicImage) -> TopicSummary {
    let mut size_bytes = 0;
    let mut messages = 0;
    for &index in t.partitions.keys() {
        if let Some(p) = broker.replicas.partition(&t.name, index) {
            size_bytes += p.log().size_bytes();
            messages += (p.high_watermark() - p.log().log_start_offset()).max(0);
        }
    }
    TopicSummary {
        name: t.name.clone(),
        topic_id: t.topic_id.to_string(),
        internal: is_internal(&t.name),
        partition_count: t.partitions.len(),
        replication_factor: t.partitions.values().next().map_or(0, |p| p.replicas.len()),
        size_bytes,
        messages,
    }
}

/// The current description of `name`, or 404.
pub fn detail(broker: &Broker, name: &str) -> ApiResult<TopicDetail> {
    let image = broker.metadata.image();
    let t = image.topics.get(name).ok_or_else(|| unknown_topic(name))?;
    let partitions = t
        .partitions
        .iter()
        .map(|(&index, p)| {
            let hosted = broker.replicas.partition(name, index);
            let log = hosted.as_ref().map(|h| h.log());
            PartitionDetail {
                partition: index,
                leader: p.leader,
                replicas: p.replicas.clone(),
                isr: p.isr.clone(),
                leader_epoch: p.leader_epoch,
                log_start_offset: log.map_or(-1, |l| l.log_start_offset()),
                high_watermark: hosted.as_ref().map_or(-1, |h| h.high_watermark()),
                log_end_offset: log.map_or(-1, |l| l.log_end_offset()),
                size_bytes: log.map_or(0, |l| l.size_bytes()),
                segment_count: log.map_or(0, |l| l.segment_count()),
                dirty_ratio: hosted.as_ref().and_then(|h| {
                    h.log()
                        .dirty_ratio(sluice_metadata::now_ms(), h.high_watermark())
                }),
                last_clean_ms: log.and_then(|l| l.last_clean_ms()),
            }
        })
        .collect();
    Ok(TopicDetail {
        name: t.name.clone(),
        topic_id: t.topic_id.to_string(),
        internal: is_internal(name),
        partitions,
        configs: t.configs.clone(),
        configs_hidden: false,
    })
}

/// Lists topics: those the caller may DESCRIBE (all with `http_auth` off),
/// as Kafka's Metadata does.
#[utoipa::path(get, operation_id = "list_topics", path = "/v1/topics", tag = "topics",
    responses((status = 200, description = "Every topic the caller may describe", body = TopicList)))]
pub async fn list(State(state): State<AppState>, caller: Caller) -> axum::Json<TopicList> {
    let image = state.broker.metadata.image();
    let topics = image
        .topics
        .values()
        .filter(|t| caller.allowed(Operation::Describe, Resource::Topic(&t.name)))
        .map(|t| summary(&state.broker, t))
        .collect();
    axum::Json(TopicList { topics })
}

/// Creates a topic.
#[utoipa::path(post, operation_id = "create_topic", path = "/v1/topics", tag = "topics",
    request_body = CreateTopicRequest,
    responses(
        (status = 201, description = "Created", body = TopicDetail),
        (status = 400, description = "Invalid name, partition count, replication factor or config", body = ErrorBody),
        (status = 409, description = "The topic exists", body = ErrorBody),
        (status = 413, description = "Body too large", body = ErrorBody),
    ))]
pub async fn create(
    State(state): State<AppState>,
    caller: Caller,
    Json(request): Json<CreateTopicRequest>,
) -> ApiResult<(StatusCode, axum::Json<TopicDetail>)> {
    // Kafka's CreateTopics: CREATE on the cluster, or on the topic itself.
    if !caller.allowed(Operation::Create, Resource::Cluster) {
        caller.require(Operation::Create, Resource::Topic(&request.name))?;
    }
    let name = request.name.clone();
    let topic = NewTopic {
        name: request.name,
        num_partitions: request.partitions.unwrap_or(-1),
        replication_factor: request.replication_factor.unwrap_or(-1),
        configs: request
            .configs
            .into_iter()
            .map(|(k, v)| (k, Some(v)))
            .collect(),
        assignments: Vec::new(),
    };
    let result = state
        .broker
        .controller
        .create_topics(vec![topic], false)
        .await
        .pop()
        .ok_or_else(|| HttpError::internal("create_topics returned no result"))?;
    result?;
    Ok((
        StatusCode::CREATED,
        axum::Json(visible_detail(&state.broker, &caller, &name)?),
    ))
}

/// [`detail`] with the configs left out (`configs_hidden`) unless the
/// caller may DESCRIBE_CONFIGS the topic.
fn visible_detail(broker: &Broker, caller: &Caller, name: &str) -> ApiResult<TopicDetail> {
    let mut d = detail(broker, name)?;
    if !caller.allowed(Operation::DescribeConfigs, Resource::Topic(name)) {
        d.configs.clear();
        d.configs_hidden = true;
    }
    Ok(d)
}

/// Describes a topic: partitions with offsets and sizes, and its configs.
#[utoipa::path(get, operation_id = "describe_topic", path = "/v1/topics/{topic}", tag = "topics",
    params(("topic" = String, Path, description = "Topic name")),
    responses(
        (status = 200, description = "The topic", body = TopicDetail),
        (status = 404, description = "No such topic", body = ErrorBody),
    ))]
pub async fn describe(
    State(state): State<AppState>,
    caller: Caller,
    Path(topic): Path<String>,
) -> ApiResult<axum::Json<TopicDetail>> {
    // Checked before existence, as Kafka does, so a refused caller cannot
    // learn which topics exist.
    caller.require(Operation::Describe, Resource::Topic(&topic))?;
    Ok(axum::Json(visible_detail(&state.broker, &caller, &topic)?))
}

/// Deletes a topic and its data.
#[utoipa::path(delete, operation_id = "delete_topic", path = "/v1/topics/{topic}", tag = "topics",
    params(("topic" = String, Path, description = "Topic name")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 403, description = "An internal topic (`__consumer_offsets`, `__transaction_state`)", body = ErrorBody),
        (status = 404, description = "No such topic", body = ErrorBody),
    ))]
pub async fn delete(
    State(state): State<AppState>,
    caller: Caller,
    Path(topic): Path<String>,
) -> ApiResult<StatusCode> {
    caller.require(Operation::Delete, Resource::Topic(&topic))?;
    state
        .broker
        .controller
        .delete_topics(vec![topic])
        .await
        .pop()
        .ok_or_else(|| HttpError::internal("delete_topics returned no result"))??;
    Ok(StatusCode::NO_CONTENT)
}

/// Sets or resets topic configs (incrementally; others keep their values).
#[utoipa::path(patch, operation_id = "alter_topic_configs", path = "/v1/topics/{topic}/configs", tag = "topics",
    params(("topic" = String, Path, description = "Topic name")),
    request_body = AlterConfigsRequest,
    responses(
        (status = 200, description = "The topic after the change", body = TopicDetail),
        (status = 400, description = "Unknown config or bad value, or one that would lose an internal topic's data", body = ErrorBody),
        (status = 404, description = "No such topic", body = ErrorBody),
    ))]
pub async fn alter_configs(
    State(state): State<AppState>,
    caller: Caller,
    Path(topic): Path<String>,
    Json(request): Json<AlterConfigsRequest>,
) -> ApiResult<axum::Json<TopicDetail>> {
    caller.require(Operation::AlterConfigs, Resource::Topic(&topic))?;
    let ops: Vec<ConfigOp> = request
        .set
        .into_iter()
        .map(|(k, v)| ConfigOp::Set(k, v))
        .chain(request.delete.into_iter().map(ConfigOp::Delete))
        .collect();
    if ops.is_empty() {
        return Err(HttpError::bad_request(
            "nothing to change: give `set` and/or `delete`",
        ));
    }
    state
        .broker
        .controller
        .alter_topic_configs(&topic, ops, AlterMode::Incremental, false)
        .await?;
    Ok(axum::Json(visible_detail(&state.broker, &caller, &topic)?))
}

/// Grows a topic to more partitions.
#[utoipa::path(post, operation_id = "add_partitions", path = "/v1/topics/{topic}/partitions", tag = "topics",
    params(("topic" = String, Path, description = "Topic name")),
    request_body = AddPartitionsRequest,
    responses(
        (status = 200, description = "The topic after the change", body = TopicDetail),
        (status = 400, description = "The count is not larger than today's", body = ErrorBody),
        (status = 403, description = "An internal topic", body = ErrorBody),
        (status = 404, description = "No such topic", body = ErrorBody),
    ))]
pub async fn add_partitions(
    State(state): State<AppState>,
    caller: Caller,
    Path(topic): Path<String>,
    Json(request): Json<AddPartitionsRequest>,
) -> ApiResult<axum::Json<TopicDetail>> {
    caller.require(Operation::Alter, Resource::Topic(&topic))?;
    state
        .broker
        .controller
        .create_partitions(vec![(topic.clone(), request.count).into()], false)
        .await
        .pop()
        .ok_or_else(|| HttpError::internal("create_partitions returned no result"))??;
    Ok(axum::Json(visible_detail(&state.broker, &caller, &topic)?))
}
