//! Consumer groups: list, describe with members, committed offsets and lag,
//! and offset resets.
//!
//! Reads the group coordinator's public state; offset resets go through
//! the coordinator's commit path so they are logged in `__consumer_offsets`
//! like a Kafka OffsetCommit.

use std::collections::BTreeMap;

use axum::extract::State;
use serde::{Deserialize, Serialize};
use sluice_protocol::error::codes as code;
use utoipa::ToSchema;

use super::auth::{Caller, Operation, Resource};
use super::error::{ApiResult, ErrorBody, HttpError, Json, Path};
use super::{AppState, blocking, unknown_topic};
use sluice_broker::Broker;
use sluice_coordinator::group::{CommitIdentity, GroupKind, GroupSlot, OffsetToCommit};

/// A group in the list.
#[derive(Debug, Serialize, ToSchema)]
pub struct GroupSummary {
    /// Group id.
    pub group_id: String,
    /// The group type (KIP-848): `classic` (JoinGroup/SyncGroup members) or
    /// `consumer` (ConsumerGroupHeartbeat members), as ListGroups'
    /// `GroupType`.
    #[serde(rename = "type")]
    pub group_type: String,
    /// The members' protocol type, as ListGroups and `sluice group list`
    /// show it: `consumer` for Kafka consumers of either type, another
    /// name for other classic protocols (e.g. `connect`), empty for a
    /// classic group that only holds committed offsets.
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
    /// The group type: `classic` or `consumer` (see [`GroupSummary`]).
    #[serde(rename = "type")]
    pub group_type: String,
    /// The members' protocol type, e.g. `consumer` (see [`GroupSummary`]).
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

/// A partition's high watermark, or -1 when it is not hosted.
fn high_watermark(broker: &Broker, topic: &str, partition: i32) -> i64 {
    broker
        .replicas
        .partition(topic, partition)
        .map_or(-1, |p| p.high_watermark())
}

/// Lag as Kafka tools report it: high watermark minus committed offset,
/// never negative; 0 when the partition is gone.
fn lag(high_watermark: i64, committed: i64) -> i64 {
    if high_watermark < 0 {
        0
    } else {
        (high_watermark - committed).max(0)
    }
}

/// Everything the API shows about one group, read under its lock (no
/// `.await` while it is held).
fn snapshot(broker: &Broker, slot: &GroupSlot) -> Option<GroupDetail> {
    let image = broker.metadata.image();
    let state = slot.lock();
    if state.removed {
        return None;
    }
    let mut owner: BTreeMap<(String, i32), String> = BTreeMap::new();
    let members: Vec<MemberOut> = match &state.kind {
        GroupKind::Classic(g) => g
            .members
            .values()
            .map(|m| {
                let assignment = decode_consumer_assignment(&m.assignment);
                for a in &assignment {
                    owner.insert((a.topic.clone(), a.partition), m.member_id.clone());
                }
                MemberOut {
                    member_id: m.member_id.clone(),
                    client_id: m.client_id.clone(),
                    client_host: m.client_host.clone(),
                    assignment,
                }
            })
            .collect(),
        GroupKind::Consumer(g) => g
            .members
            .values()
            .map(|m| {
                let assignment: Vec<AssignedPartition> = m
                    .assigned
                    .iter()
                    .filter_map(|(id, parts)| image.topic_by_id(id).map(|t| (t, parts)))
                    .flat_map(|(t, parts)| {
                        parts.iter().map(|&p| AssignedPartition {
                            topic: t.name.clone(),
                            partition: p,
                        })
                    })
                    .collect();
                for a in &assignment {
                    owner.insert((a.topic.clone(), a.partition), m.member_id.clone());
                }
                MemberOut {
                    member_id: m.member_id.clone(),
                    client_id: m.client_id.clone(),
                    client_host: m.client_host.clone(),
                    assignment,
                }
            })
            .collect(),
    };
    let offsets: Vec<PartitionLag> = state
        .offsets
        .iter()
        .map(|((topic, partition), c)| {
            let hw = high_watermark(broker, topic, *partition);
            PartitionLag {
                topic: topic.clone(),
                partition: *partition,
                committed_offset: c.value.offset,
                high_watermark: hw,
                lag: lag(hw, c.value.offset),
                member_id: owner.get(&(topic.clone(), *partition)).cloned(),
            }
        })
        .collect();
    Some(GroupDetail {
        group_id: slot.id.clone(),
        group_type: state.group_type().to_owned(),
        protocol_type: match &state.kind {
            GroupKind::Classic(g) => g.protocol_type.clone().unwrap_or_default(),
            GroupKind::Consumer(_) => "consumer".to_owned(),
        },
        state: state.state_name().to_owned(),
        total_lag: offsets.iter().map(|o| o.lag).sum(),
        members,
        offsets,
    })
}

/// Reads a classic consumer's assignment (Kafka's ConsumerProtocolAssignment:
/// version, then `[topic, [partition]]`, then user data). Every count is
/// checked against the bytes left; anything malformed yields what was read
/// so far, since a non-consumer protocol may put anything here.
fn decode_consumer_assignment(bytes: &[u8]) -> Vec<AssignedPartition> {
    fn take<'a>(buf: &mut &'a [u8], n: usize) -> Option<&'a [u8]> {
        if buf.len() < n {
            return None;
        }
        let (head, rest) = buf.split_at(n);
        *buf = rest;
        Some(head)
    }
    fn int16(buf: &mut &[u8]) -> Option<i16> {
        take(buf, 2).map(|b| i16::from_be_bytes([b[0], b[1]]))
    }
    fn int32(buf: &mut &[u8]) -> Option<i32> {
        take(buf, 4).map(|b| i32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }
    let mut out = Vec::new();
    let mut buf = bytes;
    let parse = |buf: &mut &[u8], out: &mut Vec<AssignedPartition>| -> Option<()> {
        let _version = int16(buf)?;
        let topics = usize::try_from(int32(buf)?).ok()?;
        for _ in 0..topics {
            let len = usize::try_from(int16(buf)?).ok()?;
            let topic = std::str::from_utf8(take(buf, len)?).ok()?.to_owned();
            let count = usize::try_from(int32(buf)?).ok()?;
            if count > buf.len() / 4 {
                return None;
            }
            for _ in 0..count {
                out.push(AssignedPartition {
                    topic: topic.clone(),
                    partition: int32(buf)?,
                });
            }
        }
        Some(())
    };
    let _ = parse(&mut buf, &mut out);
    out
}

/// (group, topic, partition, lag) for every committed offset (metrics).
pub fn all_lags(broker: &Broker) -> Vec<(String, String, i32, i64)> {
    let mut out = Vec::new();
    for slot in broker.groups.all() {
        let state = slot.lock();
        if state.removed {
            continue;
        }
        for ((topic, partition), c) in &state.offsets {
            let hw = high_watermark(broker, topic, *partition);
            out.push((
                slot.id.clone(),
                topic.clone(),
                *partition,
                lag(hw, c.value.offset),
            ));
        }
    }
    out
}

/// Groups the coordinator knows.
pub fn group_count(broker: &Broker) -> usize {
    broker
        .groups
        .all()
        .iter()
        .filter(|s| !s.lock().removed)
        .count()
}

/// Lists consumer groups: those the caller may DESCRIBE (all with
/// `http_auth` off), as Kafka's ListGroups does.
#[utoipa::path(get, operation_id = "list_groups", path = "/v1/groups", tag = "groups",
    responses((status = 200, description = "Every group the caller may describe", body = GroupList)))]
pub async fn list(State(state): State<AppState>, caller: Caller) -> axum::Json<GroupList> {
    let mut groups: Vec<GroupSummary> = state
        .broker
        .groups
        .all()
        .iter()
        .filter_map(|slot| snapshot(&state.broker, slot))
        .filter(|g| caller.allowed(Operation::Describe, Resource::Group(&g.group_id)))
        .map(|g| GroupSummary {
            group_id: g.group_id,
            group_type: g.group_type,
            protocol_type: g.protocol_type,
            state: g.state,
            member_count: g.members.len(),
            total_lag: g.total_lag,
        })
        .collect();
    groups.sort_by(|a, b| a.group_id.cmp(&b.group_id));
    axum::Json(GroupList { groups })
}

/// Describes a group: members, committed offsets, lag per partition.
#[utoipa::path(get, operation_id = "describe_group", path = "/v1/groups/{group}", tag = "groups",
    params(("group" = String, Path, description = "Group id")),
    responses(
        (status = 200, description = "The group", body = GroupDetail),
        (status = 404, description = "No such group", body = ErrorBody),
    ))]
pub async fn describe(
    State(state): State<AppState>,
    caller: Caller,
    Path(group): Path<String>,
) -> ApiResult<axum::Json<GroupDetail>> {
    caller.require(Operation::Describe, Resource::Group(&group))?;
    let slot = state
        .broker
        .groups
        .get(&group)
        .ok_or_else(|| group_not_found(&group))?;
    let mut detail = snapshot(&state.broker, &slot).ok_or_else(|| group_not_found(&group))?;
    // Kafka's OffsetFetch leaves out topics the caller may not describe.
    detail
        .offsets
        .retain(|p| caller.allowed(Operation::Describe, Resource::Topic(&p.topic)));
    detail.total_lag = detail.offsets.iter().map(|o| o.lag).sum();
    Ok(axum::Json(detail))
}

/// Resets a group's committed offsets (the group must have no members).
/// The new offsets are committed through the coordinator, so they are
/// written to `__consumer_offsets` and fsynced like an OffsetCommit.
#[utoipa::path(post, operation_id = "reset_group_offsets", path = "/v1/groups/{group}/offsets/reset", tag = "groups",
    params(("group" = String, Path, description = "Group id")),
    request_body = ResetOffsetsRequest,
    responses(
        (status = 200, description = "New offsets", body = ResetOffsetsResponse),
        (status = 400, description = "Bad target", body = ErrorBody),
        (status = 404, description = "No such group or topic", body = ErrorBody),
        (status = 409, description = "The group has active members", body = ErrorBody),
    ))]
pub async fn reset_offsets(
    State(state): State<AppState>,
    caller: Caller,
    Path(group): Path<String>,
    Json(request): Json<ResetOffsetsRequest>,
) -> ApiResult<axum::Json<ResetOffsetsResponse>> {
    // Kafka's OffsetCommit: READ on the group and on the topic.
    caller.require(Operation::Read, Resource::Group(&group))?;
    caller.require(Operation::Read, Resource::Topic(&request.topic))?;
    let broker = &state.broker;
    let slot = broker
        .groups
        .get(&group)
        .ok_or_else(|| group_not_found(&group))?;
    {
        let s = slot.lock();
        if s.removed {
            return Err(group_not_found(&group));
        }
        if !s.is_empty() {
            return Err(HttpError::kafka(
                code::NON_EMPTY_GROUP,
                format!(
                    "group `{group}` has active members ({}); stop its consumers first",
                    s.state_name()
                ),
            ));
        }
    }
    let image = broker.metadata.image();
    let topic = image
        .topics
        .get(&request.topic)
        .ok_or_else(|| unknown_topic(&request.topic))?;
    let partitions: Vec<i32> = match &request.partitions {
        Some(ps) => ps.clone(),
        None => topic.partitions.keys().copied().collect(),
    };
    let mut offsets = Vec::with_capacity(partitions.len());
    for &index in &partitions {
        let p = crate::led_partition(broker, &request.topic, index)?;
        let start = p.log().log_start_offset();
        let hw = p.high_watermark();
        let target = match (request.to.as_str(), request.offset, request.timestamp) {
            ("earliest", None, None) => start,
            ("latest", None, None) => hw,
            ("offset", Some(o), None) => o.clamp(start, hw),
            ("timestamp", None, Some(ts)) if ts >= 0 => {
                let p2 = std::sync::Arc::clone(&p);
                blocking(move || Ok(p2.log().lookup_timestamp(ts)?))
                    .await?
                    .map_or(hw, |(offset, _)| offset.min(hw))
            }
            _ => {
                return Err(HttpError::bad_request(
                    "`to` must be `earliest`, `latest`, `offset` (with `offset`) or \
                     `timestamp` (with a non-negative `timestamp`)",
                ));
            }
        };
        offsets.push(OffsetToCommit {
            topic: request.topic.clone(),
            partition: index,
            offset: target,
            leader_epoch: -1,
            metadata: None,
        });
    }
    let who = CommitIdentity {
        member_id: String::new(),
        instance_id: None,
        generation_or_epoch: -1,
    };
    let codes = broker
        .groups
        .commit_offsets(&group, &who, offsets.clone())
        .await
        .map_err(|c| HttpError::kafka(c, format!("cannot commit offsets for `{group}`")))?;
    if let Some((o, &c)) = offsets.iter().zip(&codes).find(|(_, c)| **c != code::NONE) {
        return Err(HttpError::kafka(
            c,
            format!("cannot commit {}-{} for `{group}`", o.topic, o.partition),
        ));
    }
    let offsets = offsets
        .into_iter()
        .map(|o| {
            let hw = high_watermark(broker, &o.topic, o.partition);
            PartitionLag {
                lag: lag(hw, o.offset),
                topic: o.topic,
                partition: o.partition,
                committed_offset: o.offset,
                high_watermark: hw,
                member_id: None,
            }
        })
        .collect();
    Ok(axum::Json(ResetOffsetsResponse { offsets }))
}

/// Deletes an empty group and its committed offsets, as Kafka's
/// DeleteGroups does: the tombstones go to `__consumer_offsets` first.
#[utoipa::path(delete, operation_id = "delete_group", path = "/v1/groups/{group}", tag = "groups",
    params(("group" = String, Path, description = "Group id")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 404, description = "No such group", body = ErrorBody),
        (status = 409, description = "The group has active members", body = ErrorBody),
    ))]
pub async fn delete(
    State(state): State<AppState>,
    caller: Caller,
    Path(group): Path<String>,
) -> ApiResult<axum::http::StatusCode> {
    // Kafka's DeleteGroups: DELETE on the group.
    caller.require(Operation::Delete, Resource::Group(&group))?;
    match state.broker.groups.delete_group(&group).await {
        code::NONE => Ok(axum::http::StatusCode::NO_CONTENT),
        code::GROUP_ID_NOT_FOUND => Err(group_not_found(&group)),
        code::NON_EMPTY_GROUP => Err(HttpError::kafka(
            code::NON_EMPTY_GROUP,
            format!("group `{group}` has active members; stop its consumers first"),
        )),
        other => Err(HttpError::kafka(
            other,
            format!("cannot delete group `{group}`"),
        )),
    }
}

fn group_not_found(group: &str) -> HttpError {
    HttpError::kafka(
        code::GROUP_ID_NOT_FOUND,
        format!("group `{group}` does not exist"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn assignment(topics: &[(&str, &[i32])]) -> Vec<u8> {
        let mut out = 3i16.to_be_bytes().to_vec();
        out.extend((topics.len() as i32).to_be_bytes());
        for (t, ps) in topics {
            out.extend((t.len() as i16).to_be_bytes());
            out.extend(t.as_bytes());
            out.extend((ps.len() as i32).to_be_bytes());
            for p in *ps {
                out.extend(p.to_be_bytes());
            }
        }
        out.extend((-1i32).to_be_bytes()); // null user data
        out
    }

    #[test]
    fn consumer_assignment_decodes_topics_and_partitions() {
        let got = decode_consumer_assignment(&assignment(&[("a", &[0, 2]), ("bb", &[1])]));
        let pairs: Vec<(String, i32)> = got.into_iter().map(|a| (a.topic, a.partition)).collect();
        assert_eq!(
            pairs,
            vec![("a".into(), 0), ("a".into(), 2), ("bb".into(), 1)]
        );
    }

    #[test]
    fn hostile_assignment_counts_do_not_allocate_or_panic() {
        // A topic count of i32::MAX and a partition count far past the bytes left.
        let mut huge = 0i16.to_be_bytes().to_vec();
        huge.extend(i32::MAX.to_be_bytes());
        assert!(decode_consumer_assignment(&huge).is_empty());
        let mut lying = assignment(&[("a", &[])]);
        lying.truncate(2 + 4 + 2 + 1);
        lying.extend(i32::MAX.to_be_bytes());
        assert!(decode_consumer_assignment(&lying).is_empty());
        assert!(decode_consumer_assignment(&[]).is_empty());
        assert!(decode_consumer_assignment(&[0xff; 3]).is_empty());
    }

    #[test]
    fn lag_is_never_negative_and_zero_for_gone_partitions() {
        assert_eq!(lag(10, 4), 6);
        assert_eq!(lag(10, 12), 0);
        assert_eq!(lag(-1, 5), 0);
    }
}
