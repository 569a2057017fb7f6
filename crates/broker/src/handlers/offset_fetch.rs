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
use crate::authz::Authorizer;
use sluice_coordinator::GroupCoordinator;
use sluice_coordinator::group::FetchedOffsets;
use sluice_metadata::acl::AclOperation;

/// Handles OffsetFetch.
///
/// With `require_stable` (v7+, KIP-447), a partition whose offset is part of
/// a transaction still in progress answers UNSTABLE_OFFSET_COMMIT (88) with
/// no offset; the client retries until the transaction has completed. The
/// group coordinator holds those pending offsets.
pub fn handle(
    groups: &Arc<GroupCoordinator>,
    authorizer: &Arc<Authorizer>,
    ctx: &RequestContext,
    header: &RequestHeader,
    request: OffsetFetchRequest,
) -> impl Future<Output = OffsetFetchResponse> + Send + 'static {
    let groups = Arc::clone(groups);
    let version = header.request_api_version;
    let authorizer = Arc::clone(authorizer);
    let ctx = ctx.clone();
    async move {
        // Kafka: DESCRIBE on the group (else GROUP_AUTHORIZATION_FAILED),
        // and DESCRIBE on each topic: named topics the principal may not
        // see answer TOPIC_AUTHORIZATION_FAILED, unnamed ones are left out.
        let group_denied = |group: &str| !authorizer.group(&ctx, AclOperation::Describe, group);
        let may_see = |topic: &str| authorizer.topic(&ctx, AclOperation::Describe, topic);
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
                if group_denied(&g.group_id) {
                    out.push(OffsetFetchResponseGroup {
                        group_id: g.group_id,
                        topics: Vec::new(),
                        error_code: code::GROUP_AUTHORIZATION_FAILED,
                    });
                    continue;
                }
                let (topics, denied) = split_by(topics, &may_see);
                let checked = groups
                    .check_coordinator(&g.group_id)
                    .and_then(|()| groups.validate_fetch(&g.group_id, &member, g.member_epoch));
                out.push(match checked {
                    Err(error_code) => OffsetFetchResponseGroup {
                        group_id: g.group_id,
                        topics: Vec::new(),
                        error_code,
                    },
                    Ok(()) => {
                        let unstable = unstable_partitions(&groups, &g.group_id, require_stable);
                        let mut fetched = groups.fetch_offsets(&g.group_id, topics);
                        fetched.retain(|(name, _)| may_see(name));
                        let topics = to_v8(answers(fetched, denied, &unstable));
                        OffsetFetchResponseGroup {
                            topics,
                            group_id: g.group_id,
                            error_code: code::NONE,
                        }
                    }
                });
            }
            OffsetFetchResponse {
                groups: out,
                ..Default::default()
            }
        } else {
            let topics: Option<Vec<(String, Vec<i32>)>> = request.topics.map(|ts| {
                ts.into_iter()
                    .map(|t| (t.name, t.partition_indexes))
                    .collect()
            });
            let error_code = if request.group_id.is_empty() {
                code::INVALID_GROUP_ID
            } else if group_denied(&request.group_id) {
                code::GROUP_AUTHORIZATION_FAILED
            } else if let Err(c) = groups.check_coordinator(&request.group_id) {
                c
            } else {
                code::NONE
            };
            if error_code != code::NONE && error_code != code::INVALID_GROUP_ID {
                return group_error_v0(version, error_code, topics);
            }
            let unstable = unstable_partitions(&groups, &request.group_id, require_stable);
            let (topics, denied) = split_by(topics, &may_see);
            let mut fetched = groups.fetch_offsets(&request.group_id, topics);
            fetched.retain(|(name, _)| may_see(name));
            let topics = to_v0(answers(fetched, denied, &unstable));
            OffsetFetchResponse {
                topics,
                error_code,
                ..Default::default()
            }
        }
    }
}

/// First OffsetFetch version with a top-level error code.
const TOP_LEVEL_ERROR_SINCE: i16 = 2;

/// A group-level error (NOT_COORDINATOR, COORDINATOR_LOAD_IN_PROGRESS) in
/// a v0-v7 response. v0 and v1 have no top-level error field, so, as Kafka
/// does, every requested partition carries it; v2+ carry it at the top.
fn group_error_v0(
    version: i16,
    error_code: i16,
    topics: Option<Vec<(String, Vec<i32>)>>,
) -> OffsetFetchResponse {
    let topics = if version < TOP_LEVEL_ERROR_SINCE {
        topics
            .unwrap_or_default()
            .into_iter()
            .map(|(name, partitions)| OffsetFetchResponseTopic {
                name,
                partitions: partitions
                    .into_iter()
                    .map(|partition_index| OffsetFetchResponsePartition {
                        partition_index,
                        committed_offset: -1,
                        committed_leader_epoch: -1,
                        metadata: Some(String::new()),
                        error_code,
                    })
                    .collect(),
            })
            .collect()
    } else {
        Vec::new()
    };
    OffsetFetchResponse {
        topics,
        error_code,
        ..Default::default()
    }
}

/// First OffsetFetch version with `require_stable` (KIP-447).
const REQUIRE_STABLE_SINCE: i16 = 7;

/// Partitions with pending transactional offsets, when the request asks
/// for stable offsets only.
fn unstable_partitions(
    groups: &GroupCoordinator,
    group_id: &str,
    require_stable: bool,
) -> BTreeSet<(String, i32)> {
    if !require_stable || group_id.is_empty() {
        return BTreeSet::new();
    }
    groups.pending_offset_partitions(group_id)
}

/// One partition's answer in either response shape.
struct PartitionAnswer {
    partition_index: i32,
    committed_offset: i64,
    committed_leader_epoch: i32,
    metadata: Option<String>,
    error_code: i16,
}

impl PartitionAnswer {
    /// No offset, with `error_code` saying why.
    fn refused(partition_index: i32, error_code: i16) -> PartitionAnswer {
        PartitionAnswer {
            partition_index,
            committed_offset: -1,
            committed_leader_epoch: -1,
            metadata: Some(String::new()),
            error_code,
        }
    }
}

/// The answer per topic: the fetched offsets (or UNSTABLE_OFFSET_COMMIT for
/// a partition in an open transaction), then TOPIC_AUTHORIZATION_FAILED for
/// every partition of a topic the principal may not describe.
fn answers(
    fetched: FetchedOffsets,
    denied: NamedTopics,
    unstable: &BTreeSet<(String, i32)>,
) -> Vec<(String, Vec<PartitionAnswer>)> {
    let fetched = fetched.into_iter().map(|(name, parts)| {
        let parts = parts
            .into_iter()
            .map(|(partition_index, v)| {
                if unstable.contains(&(name.clone(), partition_index)) {
                    return PartitionAnswer::refused(partition_index, code::UNSTABLE_OFFSET_COMMIT);
                }
                PartitionAnswer {
                    partition_index,
                    committed_offset: v.as_ref().map_or(-1, |v| v.offset),
                    committed_leader_epoch: v.as_ref().map_or(-1, |v| v.leader_epoch),
                    metadata: Some(v.map(|v| v.metadata).unwrap_or_default()),
                    error_code: code::NONE,
                }
            })
            .collect();
        (name, parts)
    });
    let denied = denied.into_iter().map(|(name, partitions)| {
        let parts = partitions
            .into_iter()
            .map(|p| PartitionAnswer::refused(p, code::TOPIC_AUTHORIZATION_FAILED))
            .collect();
        (name, parts)
    });
    fetched.chain(denied).collect()
}

/// Named topics split into the ones `allowed` passes and the others; all
/// topics (`None`) stay `None`, to be filtered after the lookup.
type NamedTopics = Vec<(String, Vec<i32>)>;
fn split_by(
    topics: Option<NamedTopics>,
    allowed: &dyn Fn(&str) -> bool,
) -> (Option<NamedTopics>, NamedTopics) {
    match topics {
        None => (None, Vec::new()),
        Some(topics) => {
            let (ok, denied) = topics.into_iter().partition(|(name, _)| allowed(name));
            (Some(ok), denied)
        }
    }
}

fn to_v0(answers: Vec<(String, Vec<PartitionAnswer>)>) -> Vec<OffsetFetchResponseTopic> {
    answers
        .into_iter()
        .map(|(name, parts)| OffsetFetchResponseTopic {
            name,
            partitions: parts
                .into_iter()
                .map(|a| OffsetFetchResponsePartition {
                    partition_index: a.partition_index,
                    committed_offset: a.committed_offset,
                    committed_leader_epoch: a.committed_leader_epoch,
                    metadata: a.metadata,
                    error_code: a.error_code,
                })
                .collect(),
        })
        .collect()
}

fn to_v8(answers: Vec<(String, Vec<PartitionAnswer>)>) -> Vec<OffsetFetchResponseTopics> {
    answers
        .into_iter()
        .map(|(name, parts)| OffsetFetchResponseTopics {
            name,
            partitions: parts
                .into_iter()
                .map(|a| OffsetFetchResponsePartitions {
                    partition_index: a.partition_index,
                    committed_offset: a.committed_offset,
                    committed_leader_epoch: a.committed_leader_epoch,
                    metadata: a.metadata,
                    error_code: a.error_code,
                })
                .collect(),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use sluice_protocol::messages::offset_fetch::{
        OffsetFetchRequestGroup, OffsetFetchRequestTopic, OffsetFetchRequestTopics,
    };

    use super::*;
    use crate::handlers::offset_commit::tests::{commit, request};
    use crate::testing::{self, Node};

    async fn fetch(node: &Node, version: i16, request: OffsetFetchRequest) -> OffsetFetchResponse {
        let header = testing::header(9, version);
        handle(
            &node.groups,
            &testing::allow_all(),
            &testing::ctx(),
            &header,
            request,
        )
        .await
    }

    #[tokio::test]
    async fn v7_returns_committed_offsets_with_epoch_and_metadata() {
        let dir = tempfile::tempdir().expect("tempdir");
        let node = testing::node_in(dir.path()).await;
        node.create_topic("t", 2).await;
        commit(&node.groups, request("g", "", -1, &[("t", 0, 42)])).await;
        let response = fetch(
            &node,
            7,
            OffsetFetchRequest {
                group_id: "g".to_owned(),
                topics: Some(vec![OffsetFetchRequestTopic {
                    name: "t".to_owned(),
                    partition_indexes: vec![0, 1],
                }]),
                ..Default::default()
            },
        )
        .await;
        assert_eq!(response.error_code, code::NONE);
        let got: Vec<_> = response.topics[0]
            .partitions
            .iter()
            .map(|p| {
                (
                    p.partition_index,
                    p.committed_offset,
                    p.committed_leader_epoch,
                    p.metadata.clone(),
                    p.error_code,
                )
            })
            .collect();
        assert_eq!(
            got,
            [
                (0, 42, 3, Some("at 42".to_owned()), code::NONE),
                (1, -1, -1, Some(String::new()), code::NONE)
            ]
        );
    }

    #[tokio::test]
    async fn v8_answers_several_groups_and_null_topics_mean_all() {
        let dir = tempfile::tempdir().expect("tempdir");
        let node = testing::node_in(dir.path()).await;
        node.create_topic("t", 2).await;
        commit(
            &node.groups,
            request("a", "", -1, &[("t", 0, 1), ("t", 1, 2)]),
        )
        .await;
        commit(&node.groups, request("b", "", -1, &[("t", 1, 5)])).await;
        let response = fetch(
            &node,
            8,
            OffsetFetchRequest {
                groups: vec![
                    OffsetFetchRequestGroup {
                        group_id: "a".to_owned(),
                        member_epoch: -1,
                        topics: None,
                        ..Default::default()
                    },
                    OffsetFetchRequestGroup {
                        group_id: "b".to_owned(),
                        member_epoch: -1,
                        topics: Some(vec![OffsetFetchRequestTopics {
                            name: "t".to_owned(),
                            partition_indexes: vec![1],
                        }]),
                        ..Default::default()
                    },
                ],
                ..Default::default()
            },
        )
        .await;
        let offsets = |g: &OffsetFetchResponseGroup| -> Vec<(i32, i64)> {
            g.topics
                .iter()
                .flat_map(|t| {
                    t.partitions
                        .iter()
                        .map(|p| (p.partition_index, p.committed_offset))
                })
                .collect()
        };
        assert_eq!(response.groups.len(), 2);
        assert_eq!(response.groups[0].group_id, "a");
        assert_eq!(response.groups[0].error_code, code::NONE);
        let mut a = offsets(&response.groups[0]);
        a.sort();
        assert_eq!(a, [(0, 1), (1, 2)]);
        assert_eq!(offsets(&response.groups[1]), [(1, 5)]);
    }

    #[tokio::test]
    async fn an_empty_group_id_is_invalid_before_v8() {
        let dir = tempfile::tempdir().expect("tempdir");
        let node = testing::node_in(dir.path()).await;
        let response = fetch(
            &node,
            5,
            OffsetFetchRequest {
                group_id: String::new(),
                topics: None,
                ..Default::default()
            },
        )
        .await;
        assert_eq!(response.error_code, code::INVALID_GROUP_ID);
    }

    #[tokio::test]
    async fn require_stable_holds_back_an_offset_in_an_open_transaction() {
        let dir = tempfile::tempdir().expect("tempdir");
        let node = testing::node_in(dir.path()).await;
        node.create_topic("t", 1).await;
        commit(&node.groups, request("g", "", -1, &[("t", 0, 3)])).await;
        // A TxnOffsetCommit of producer 7 whose transaction is open.
        let pending = node
            .groups
            .txn_commit_offsets(
                "g",
                7,
                0,
                vec![sluice_coordinator::group::OffsetToCommit {
                    topic: "t".to_owned(),
                    partition: 0,
                    offset: 9,
                    leader_epoch: -1,
                    metadata: None,
                }],
            )
            .await;
        assert_eq!(pending, Ok(vec![code::NONE]));
        let ask = |require_stable| OffsetFetchRequest {
            group_id: "g".to_owned(),
            topics: Some(vec![OffsetFetchRequestTopic {
                name: "t".to_owned(),
                partition_indexes: vec![0],
            }]),
            require_stable,
            ..Default::default()
        };
        let stable = fetch(&node, 7, ask(true)).await;
        let p = &stable.topics[0].partitions[0];
        assert_eq!(
            (p.error_code, p.committed_offset),
            (code::UNSTABLE_OFFSET_COMMIT, -1)
        );
        // Without require_stable, the last committed offset.
        let loose = fetch(&node, 7, ask(false)).await;
        let p = &loose.topics[0].partitions[0];
        assert_eq!((p.error_code, p.committed_offset), (code::NONE, 3));
        // v6 has no require_stable: the flag is ignored.
        let old = fetch(&node, 6, ask(true)).await;
        assert_eq!(old.topics[0].partitions[0].error_code, code::NONE);
        // Once the transaction commits, its offset is the stable answer.
        node.groups
            .complete_txn(node.groups.partition_for("g"), 7, true);
        let stable = fetch(&node, 7, ask(true)).await;
        let p = &stable.topics[0].partitions[0];
        assert_eq!((p.error_code, p.committed_offset), (code::NONE, 9));
    }
}
