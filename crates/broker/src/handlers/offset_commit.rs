//! OffsetCommit (8): stores consumed positions durably in `__consumer_offsets`.

use std::future::Future;
use std::sync::Arc;

use sluice_protocol::RequestHeader;
use sluice_protocol::messages::offset_commit::{
    OffsetCommitRequest, OffsetCommitResponse, OffsetCommitResponsePartition,
    OffsetCommitResponseTopic,
};

use super::RequestContext;
use crate::authz::Authorizer;
use sluice_coordinator::GroupCoordinator;
use sluice_coordinator::group::{CommitIdentity, OffsetToCommit};
use sluice_metadata::acl::AclOperation;

/// Handles OffsetCommit; answers after the commit is fsynced.
pub fn handle(
    groups: &Arc<GroupCoordinator>,
    authorizer: &Authorizer,
    ctx: &RequestContext,
    _header: &RequestHeader,
    request: OffsetCommitRequest,
) -> impl Future<Output = OffsetCommitResponse> + Send + 'static {
    let groups = Arc::clone(groups);
    // Kafka: READ on the group (else every partition fails with
    // GROUP_AUTHORIZATION_FAILED), then READ on each topic (else its
    // partitions fail with TOPIC_AUTHORIZATION_FAILED and are not committed).
    let group_denied = !authorizer.group(ctx, AclOperation::Read, &request.group_id);
    let topic_denied: Vec<bool> = request
        .topics
        .iter()
        .map(|t| !authorizer.topic(ctx, AclOperation::Read, &t.name))
        .collect();
    async move {
        let who = CommitIdentity {
            member_id: request.member_id,
            instance_id: request.group_instance_id,
            generation_or_epoch: request.generation_id_or_member_epoch,
        };
        let offsets: Vec<OffsetToCommit> = request
            .topics
            .iter()
            .zip(&topic_denied)
            .filter(|(_, denied)| !group_denied && !**denied)
            .flat_map(|(t, _)| {
                t.partitions.iter().map(|p| OffsetToCommit {
                    topic: t.name.clone(),
                    partition: p.partition_index,
                    offset: p.committed_offset,
                    leader_epoch: p.committed_leader_epoch,
                    metadata: p.committed_metadata.clone(),
                })
            })
            .collect();
        let total = offsets.len();
        let codes = if group_denied {
            Vec::new()
        } else {
            match groups
                .commit_offsets(&request.group_id, &who, offsets)
                .await
            {
                Ok(codes) => codes,
                Err(c) => vec![c; total],
            }
        };
        let mut codes = codes.into_iter();
        let topics = request
            .topics
            .into_iter()
            .zip(topic_denied)
            .map(|(t, topic_denied)| OffsetCommitResponseTopic {
                name: t.name,
                partitions: t
                    .partitions
                    .iter()
                    .map(|p| OffsetCommitResponsePartition {
                        partition_index: p.partition_index,
                        error_code: if group_denied {
                            sluice_protocol::error::codes::GROUP_AUTHORIZATION_FAILED
                        } else if topic_denied {
                            sluice_protocol::error::codes::TOPIC_AUTHORIZATION_FAILED
                        } else {
                            codes.next().unwrap_or_default()
                        },
                    })
                    .collect(),
            })
            .collect();
        OffsetCommitResponse {
            topics,
            ..Default::default()
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use sluice_protocol::error::codes as code;
    use sluice_protocol::messages::offset_commit::{
        OffsetCommitRequestPartition, OffsetCommitRequestTopic,
    };

    use super::*;
    use crate::handlers::join_group::tests::stable_member;
    use crate::testing;

    /// An OffsetCommit of (topic, partition, offset) triples.
    pub(crate) fn request(
        group: &str,
        member_id: &str,
        generation: i32,
        offsets: &[(&str, i32, i64)],
    ) -> OffsetCommitRequest {
        OffsetCommitRequest {
            group_id: group.to_owned(),
            generation_id_or_member_epoch: generation,
            member_id: member_id.to_owned(),
            retention_time_ms: -1,
            topics: offsets
                .iter()
                .map(
                    |&(topic, partition_index, committed_offset)| OffsetCommitRequestTopic {
                        name: topic.to_owned(),
                        partitions: vec![OffsetCommitRequestPartition {
                            partition_index,
                            committed_offset,
                            committed_leader_epoch: 3,
                            committed_metadata: Some(format!("at {committed_offset}")),
                            ..Default::default()
                        }],
                    },
                )
                .collect(),
            ..Default::default()
        }
    }

    /// Commits and returns (topic, partition, code) per partition.
    pub(crate) async fn commit(
        groups: &Arc<GroupCoordinator>,
        request: OffsetCommitRequest,
    ) -> Vec<(String, i32, i16)> {
        let header = testing::header(8, 8);
        handle(
            groups,
            &testing::allow_all(),
            &testing::ctx(),
            &header,
            request,
        )
        .await
        .topics
        .into_iter()
        .flat_map(|t| {
            t.partitions
                .into_iter()
                .map(move |p| (t.name.clone(), p.partition_index, p.error_code))
        })
        .collect()
    }

    fn committed(
        groups: &GroupCoordinator,
        group: &str,
        topic: &str,
        partition: i32,
    ) -> Option<i64> {
        groups.fetch_offsets(group, Some(vec![(topic.to_owned(), vec![partition])]))[0].1[0]
            .1
            .as_ref()
            .map(|v| v.offset)
    }

    #[tokio::test]
    async fn a_simple_consumer_commits_and_unknown_partitions_fail_alone() {
        let dir = tempfile::tempdir().expect("tempdir");
        let node = testing::node_in(dir.path()).await;
        node.create_topic("t", 2).await;
        let results = commit(
            &node.groups,
            request(
                "g",
                "",
                -1,
                &[("t", 0, 10), ("t", 5, 1), ("missing", 0, 1), ("t", 1, 20)],
            ),
        )
        .await;
        let codes: Vec<_> = results.iter().map(|r| r.2).collect();
        assert_eq!(
            codes,
            [
                code::NONE,
                code::UNKNOWN_TOPIC_OR_PARTITION,
                code::UNKNOWN_TOPIC_OR_PARTITION,
                code::NONE
            ]
        );
        assert_eq!(committed(&node.groups, "g", "t", 0), Some(10));
        assert_eq!(committed(&node.groups, "g", "t", 1), Some(20));
    }

    #[tokio::test]
    async fn a_member_must_commit_in_its_current_generation() {
        let dir = tempfile::tempdir().expect("tempdir");
        let node = testing::node_in(dir.path()).await;
        node.create_topic("t", 1).await;
        let (member, generation) = stable_member(&node.groups, "g", b"a").await;
        let ok = commit(
            &node.groups,
            request("g", &member, generation, &[("t", 0, 7)]),
        )
        .await;
        assert_eq!(ok[0].2, code::NONE);
        let stale = commit(
            &node.groups,
            request("g", &member, generation + 1, &[("t", 0, 9)]),
        )
        .await;
        assert_eq!(stale[0].2, code::ILLEGAL_GENERATION);
        let stranger = commit(
            &node.groups,
            request("g", "stranger", generation, &[("t", 0, 9)]),
        )
        .await;
        assert_eq!(stranger[0].2, code::UNKNOWN_MEMBER_ID);
        assert_eq!(
            committed(&node.groups, "g", "t", 0),
            Some(7),
            "refused commits changed nothing"
        );
        let no_group = commit(&node.groups, request("", "", -1, &[("t", 0, 1)])).await;
        assert_eq!(no_group[0].2, code::INVALID_GROUP_ID);
    }
}
