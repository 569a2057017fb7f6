//! OffsetDelete (47): removes committed offsets the group no longer uses.

use std::future::Future;
use std::sync::Arc;

use sluice_protocol::RequestHeader;
use sluice_protocol::error::codes as code;
use sluice_protocol::messages::offset_delete::{
    OffsetDeleteRequest, OffsetDeleteResponse, OffsetDeleteResponsePartition,
    OffsetDeleteResponseTopic,
};

use super::RequestContext;
use crate::authz::Authorizer;
use sluice_coordinator::GroupCoordinator;
use sluice_metadata::acl::AclOperation;

/// Handles OffsetDelete.
pub fn handle(
    groups: &Arc<GroupCoordinator>,
    authorizer: &Authorizer,
    ctx: &RequestContext,
    _header: &RequestHeader,
    request: OffsetDeleteRequest,
) -> impl Future<Output = OffsetDeleteResponse> + Send + 'static {
    let groups = Arc::clone(groups);
    // Kafka: DELETE on the group (else the top-level error), READ on each
    // topic (else its partitions fail with TOPIC_AUTHORIZATION_FAILED and
    // keep their offsets).
    let group_denied = !authorizer.group(ctx, AclOperation::Delete, &request.group_id);
    let topic_denied: Vec<bool> = request
        .topics
        .iter()
        .map(|t| !authorizer.topic(ctx, AclOperation::Read, &t.name))
        .collect();
    async move {
        if group_denied {
            return OffsetDeleteResponse {
                error_code: code::GROUP_AUTHORIZATION_FAILED,
                ..Default::default()
            };
        }
        let partitions: Vec<(String, i32)> = request
            .topics
            .iter()
            .zip(&topic_denied)
            .filter(|(_, denied)| !**denied)
            .flat_map(|(t, _)| {
                t.partitions
                    .iter()
                    .map(|p| (t.name.clone(), p.partition_index))
            })
            .collect();
        match groups.delete_offsets(&request.group_id, partitions).await {
            Err(error_code) => OffsetDeleteResponse {
                error_code,
                ..Default::default()
            },
            Ok(codes) => {
                let mut codes = codes.into_iter();
                OffsetDeleteResponse {
                    error_code: code::NONE,
                    topics: request
                        .topics
                        .into_iter()
                        .zip(topic_denied)
                        .map(|(t, denied)| OffsetDeleteResponseTopic {
                            name: t.name,
                            partitions: t
                                .partitions
                                .iter()
                                .map(|p| OffsetDeleteResponsePartition {
                                    partition_index: p.partition_index,
                                    error_code: if denied {
                                        code::TOPIC_AUTHORIZATION_FAILED
                                    } else {
                                        codes.next().unwrap_or_default()
                                    },
                                })
                                .collect(),
                        })
                        .collect(),
                    ..Default::default()
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use sluice_protocol::messages::offset_delete::{
        OffsetDeleteRequestPartition, OffsetDeleteRequestTopic,
    };

    use super::*;
    use crate::handlers::join_group::tests::stable_member;
    use crate::handlers::offset_commit::tests::{commit, request};
    use crate::testing;

    fn delete_request(group: &str, partitions: &[i32]) -> OffsetDeleteRequest {
        OffsetDeleteRequest {
            group_id: group.to_owned(),
            topics: vec![OffsetDeleteRequestTopic {
                name: "t".to_owned(),
                partitions: partitions
                    .iter()
                    .map(|&partition_index| OffsetDeleteRequestPartition { partition_index })
                    .collect(),
            }],
        }
    }

    #[tokio::test]
    async fn deletes_an_idle_groups_offsets_and_refuses_unknown_groups() {
        let dir = tempfile::tempdir().expect("tempdir");
        let node = testing::node_in(dir.path()).await;
        node.create_topic("t", 2).await;
        commit(
            &node.groups,
            request("g", "", -1, &[("t", 0, 4), ("t", 1, 6)]),
        )
        .await;
        let header = testing::header(47, 0);
        let response = handle(
            &node.groups,
            &testing::allow_all(),
            &testing::ctx(),
            &header,
            delete_request("g", &[0]),
        )
        .await;
        assert_eq!(response.error_code, code::NONE);
        assert_eq!(response.topics[0].partitions[0].error_code, code::NONE);
        let fetched = node
            .groups
            .fetch_offsets("g", Some(vec![("t".to_owned(), vec![0, 1])]));
        let offsets: Vec<_> = fetched[0]
            .1
            .iter()
            .map(|(p, v)| (*p, v.as_ref().map(|v| v.offset)))
            .collect();
        assert_eq!(
            offsets,
            [(0, None), (1, Some(6))],
            "only partition 0 deleted"
        );

        let response = handle(
            &node.groups,
            &testing::allow_all(),
            &testing::ctx(),
            &header,
            delete_request("missing", &[0]),
        )
        .await;
        assert_eq!(response.error_code, code::GROUP_ID_NOT_FOUND);
        assert!(response.topics.is_empty());
    }

    #[tokio::test]
    async fn a_live_group_keeps_the_offsets_of_topics_its_members_subscribe_to() {
        let dir = tempfile::tempdir().expect("tempdir");
        let node = testing::node_in(dir.path()).await;
        node.create_topic("t", 1).await;
        let (member, generation) = stable_member(&node.groups, "g", b"a").await;
        commit(
            &node.groups,
            request("g", &member, generation, &[("t", 0, 4)]),
        )
        .await;
        let header = testing::header(47, 0);
        let response = handle(
            &node.groups,
            &testing::allow_all(),
            &testing::ctx(),
            &header,
            delete_request("g", &[0]),
        )
        .await;
        assert_eq!(response.error_code, code::NONE);
        assert_eq!(
            response.topics[0].partitions[0].error_code,
            code::GROUP_SUBSCRIBED_TO_TOPIC
        );
        assert!(
            node.groups
                .fetch_offsets("g", Some(vec![("t".to_owned(), vec![0])]))[0]
                .1[0]
                .1
                .is_some()
        );
    }
}
