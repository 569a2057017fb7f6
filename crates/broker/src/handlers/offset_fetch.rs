//! OffsetFetch (9): committed offsets of one group (v0-7) or several (v8+).

use std::collections::BTreeSet;
use std::future::Future;
use std::sync::Arc;

use sluice_protocol::RequestHeader;
use sluice_protocol::error::codes as code;
use sluice_protocol::messages::offset_fetch::{
    OffsetFetchRequest, OffsetFetchResponse, OffsetFetchResponseGroup,
    OffsetFetchResponsePartition, OffsetFetchResponsePartitions, OffsetFetchResponseTopic,
    OffsetFetchResponseTopics,
};

use super::RequestContext;
use sluice_coordinator::group::FetchedOffsets;
use sluice_coordinator::group::offsets_log::OffsetValue;
use sluice_coordinator::{GroupCoordinator, TransactionCoordinator};

/// Handles OffsetFetch.
///
/// With `require_stable` (v7+, KIP-447), a partition whose offset is part of
/// a transaction still in progress answers UNSTABLE_OFFSET_COMMIT (88) with
/// no offset; the client retries until the transaction has completed.
pub fn handle(
    groups: &Arc<GroupCoordinator>,
    txn: &Arc<TransactionCoordinator>,
    _ctx: &RequestContext,
    header: &RequestHeader,
    request: OffsetFetchRequest,
) -> impl Future<Output = OffsetFetchResponse> + Send + 'static {
    let groups = Arc::clone(groups);
    let txn = Arc::clone(txn);
    let version = header.request_api_version;
    async move {
        let require_stable = version >= REQUIRE_STABLE_SINCE && request.require_stable;
        if version >= 8 {
            let mut out = Vec::with_capacity(request.groups.len());
            for g in request.groups {
                let topics = g.topics.map(|ts| {
                    ts.into_iter()
                        .map(|t| (t.name, t.partition_indexes))
                        .collect()
                });
                let member = g.member_id.unwrap_or_default();
                out.push(
                    match groups.validate_fetch(&g.group_id, &member, g.member_epoch) {
                        Err(error_code) => OffsetFetchResponseGroup {
                            group_id: g.group_id,
                            topics: Vec::new(),
                            error_code,
                        },
                        Ok(()) => {
                            let unstable =
                                unstable_partitions(&txn, &g.group_id, require_stable).await;
                            OffsetFetchResponseGroup {
                                topics: to_v8(groups.fetch_offsets(&g.group_id, topics), &unstable),
                                group_id: g.group_id,
                                error_code: code::NONE,
                            }
                        }
                    },
                );
            }
            OffsetFetchResponse {
                groups: out,
                ..Default::default()
            }
        } else {
            let topics = request.topics.map(|ts| {
                ts.into_iter()
                    .map(|t| (t.name, t.partition_indexes))
                    .collect()
            });
            let error_code = if request.group_id.is_empty() {
                code::INVALID_GROUP_ID
            } else {
                code::NONE
            };
            let unstable = unstable_partitions(&txn, &request.group_id, require_stable).await;
            OffsetFetchResponse {
                topics: to_v0(groups.fetch_offsets(&request.group_id, topics), &unstable),
                error_code,
                ..Default::default()
            }
        }
    }
}

/// First OffsetFetch version with `require_stable` (KIP-447).
const REQUIRE_STABLE_SINCE: i16 = 7;

/// Partitions with pending transactional offsets, when the request asks
/// for stable offsets only.
async fn unstable_partitions(
    txn: &TransactionCoordinator,
    group_id: &str,
    require_stable: bool,
) -> BTreeSet<(String, i32)> {
    if !require_stable || group_id.is_empty() {
        return BTreeSet::new();
    }
    txn.pending_offset_partitions(group_id).await
}

/// One partition's answer: the committed offset, or UNSTABLE_OFFSET_COMMIT
/// and no offset while a transaction holds a newer one.
fn partition_answer(
    topic: &str,
    partition: i32,
    v: Option<OffsetValue>,
    unstable: &BTreeSet<(String, i32)>,
) -> (i64, i32, Option<String>, i16) {
    if unstable.contains(&(topic.to_owned(), partition)) {
        return (-1, -1, Some(String::new()), code::UNSTABLE_OFFSET_COMMIT);
    }
    (
        v.as_ref().map_or(-1, |v| v.offset),
        v.as_ref().map_or(-1, |v| v.leader_epoch),
        Some(v.map(|v| v.metadata).unwrap_or_default()),
        code::NONE,
    )
}

fn to_v0(
    fetched: FetchedOffsets,
    unstable: &BTreeSet<(String, i32)>,
) -> Vec<OffsetFetchResponseTopic> {
    fetched
        .into_iter()
        .map(|(name, parts)| OffsetFetchResponseTopic {
            partitions: parts
                .into_iter()
                .map(|(partition_index, v)| {
                    let (committed_offset, committed_leader_epoch, metadata, error_code) =
                        partition_answer(&name, partition_index, v, unstable);
                    OffsetFetchResponsePartition {
                        partition_index,
                        committed_offset,
                        committed_leader_epoch,
                        metadata,
                        error_code,
                    }
                })
                .collect(),
            name,
        })
        .collect()
}

fn to_v8(
    fetched: FetchedOffsets,
    unstable: &BTreeSet<(String, i32)>,
) -> Vec<OffsetFetchResponseTopics> {
    fetched
        .into_iter()
        .map(|(name, parts)| OffsetFetchResponseTopics {
            partitions: parts
                .into_iter()
                .map(|(partition_index, v)| {
                    let (committed_offset, committed_leader_epoch, metadata, error_code) =
                        partition_answer(&name, partition_index, v, unstable);
                    OffsetFetchResponsePartitions {
                        partition_index,
                        committed_offset,
                        committed_leader_epoch,
                        metadata,
                        error_code,
                    }
                })
                .collect(),
            name,
        })
        .collect()
}
