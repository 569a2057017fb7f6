//! ConsumerGroupHeartbeat (68): the KIP-848 consumer protocol's only call:
//! join, stay alive, learn the assignment, confirm revocations, leave.

use std::future::Future;
use std::sync::Arc;

use sluice_protocol::RequestHeader;
use sluice_protocol::error::codes as code;
use sluice_protocol::messages::consumer_group_heartbeat::{
    Assignment, ConsumerGroupHeartbeatRequest, ConsumerGroupHeartbeatResponse, TopicPartitions,
};

use super::RequestContext;
use crate::authz::Authorizer;
use sluice_coordinator::GroupCoordinator;
use sluice_coordinator::group::assignor;
use sluice_coordinator::group::consumer::HeartbeatArgs;
use sluice_metadata::acl::AclOperation;

/// Handles ConsumerGroupHeartbeat.
pub fn handle(
    groups: &Arc<GroupCoordinator>,
    authorizer: &Authorizer,
    ctx: &RequestContext,
    header: &RequestHeader,
    request: ConsumerGroupHeartbeatRequest,
) -> impl Future<Output = ConsumerGroupHeartbeatResponse> + Send + 'static {
    let groups = Arc::clone(groups);
    // Kafka: READ on the group, then DESCRIBE on every subscribed topic
    // named (else TOPIC_AUTHORIZATION_FAILED).
    let denied = if !authorizer.group(ctx, AclOperation::Read, &request.group_id) {
        Some(code::GROUP_AUTHORIZATION_FAILED)
    } else if request
        .subscribed_topic_names
        .as_ref()
        .is_some_and(|names| {
            names
                .iter()
                .any(|t| !authorizer.topic(ctx, AclOperation::Describe, t))
        })
    {
        Some(code::TOPIC_AUTHORIZATION_FAILED)
    } else {
        None
    };
    let args = HeartbeatArgs {
        member_id: request.member_id,
        member_epoch: request.member_epoch,
        instance_id: request.instance_id,
        rack_id: request.rack_id,
        rebalance_timeout_ms: request.rebalance_timeout_ms,
        subscribed_topic_names: request.subscribed_topic_names,
        subscribed_topic_regex: request.subscribed_topic_regex,
        server_assignor: request.server_assignor,
        owned: request.topic_partitions.map(|tps| {
            let mut owned = assignor::Assignment::new();
            for tp in tps {
                owned.entry(tp.topic_id).or_default().extend(tp.partitions);
            }
            owned
        }),
        client_id: header.client_id.clone().unwrap_or_default(),
        client_host: format!("/{}", ctx.peer.ip()),
    };
    async move {
        let group_id = request.group_id;
        if let Some(error_code) = denied {
            return ConsumerGroupHeartbeatResponse {
                error_code,
                ..Default::default()
            };
        }
        match groups.consumer_heartbeat(&group_id, args).await {
            Err(error_code) => ConsumerGroupHeartbeatResponse {
                error_code,
                ..Default::default()
            },
            Ok(reply) => ConsumerGroupHeartbeatResponse {
                error_code: code::NONE,
                member_id: Some(reply.member_id),
                member_epoch: reply.member_epoch,
                heartbeat_interval_ms: reply.heartbeat_interval_ms,
                assignment: reply.assignment.map(|a| Assignment {
                    topic_partitions: a
                        .into_iter()
                        .map(|(topic_id, parts)| TopicPartitions {
                            topic_id,
                            partitions: parts.into_iter().collect(),
                        })
                        .collect(),
                }),
                ..Default::default()
            },
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::testing::{self, Node};

    /// A ConsumerGroupHeartbeat of `group` as `member_id` at `member_epoch`,
    /// subscribed to `topics`.
    pub(crate) async fn heartbeat(
        node: &Node,
        group: &str,
        member_id: &str,
        member_epoch: i32,
        topics: Option<&[&str]>,
    ) -> ConsumerGroupHeartbeatResponse {
        let request = ConsumerGroupHeartbeatRequest {
            group_id: group.to_owned(),
            member_id: member_id.to_owned(),
            member_epoch,
            rebalance_timeout_ms: 30_000,
            subscribed_topic_names: topics.map(|ts| ts.iter().map(|t| (*t).to_owned()).collect()),
            ..Default::default()
        };
        let header = testing::header(68, 0);
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
    async fn a_joining_member_gets_an_id_an_epoch_and_every_partition_of_its_topic() {
        let dir = tempfile::tempdir().expect("tempdir");
        let node = testing::node_in(dir.path()).await;
        node.create_topic("t", 3).await;
        let joined = heartbeat(&node, "g", "", 0, Some(&["t"])).await;
        assert_eq!(joined.error_code, code::NONE);
        let member_id = joined.member_id.clone().expect("assigned an id");
        assert!(!member_id.is_empty());
        assert!(joined.member_epoch >= 1);
        assert!(joined.heartbeat_interval_ms > 0);
        let assignment = joined.assignment.expect("first assignment");
        let topic_id = node.image().topics["t"].topic_id;
        let owned: Vec<_> = assignment
            .topic_partitions
            .iter()
            .map(|tp| (tp.topic_id, tp.partitions.clone()))
            .collect();
        assert_eq!(owned, [(topic_id, vec![0, 1, 2])]);

        // Staying at its epoch is fine; a made-up epoch is fenced.
        let again = heartbeat(&node, "g", &member_id, joined.member_epoch, None).await;
        assert_eq!(again.error_code, code::NONE);
        let fenced = heartbeat(&node, "g", &member_id, joined.member_epoch + 5, None).await;
        assert_eq!(fenced.error_code, code::FENCED_MEMBER_EPOCH);
    }

    #[tokio::test]
    async fn unknown_members_and_empty_group_ids_are_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let node = testing::node_in(dir.path()).await;
        let unknown = heartbeat(&node, "g", "nobody", 3, None).await;
        assert_eq!(unknown.error_code, code::UNKNOWN_MEMBER_ID);
        assert_eq!(unknown.member_id, None);
        let invalid = heartbeat(&node, "", "", 0, Some(&["t"])).await;
        assert_eq!(invalid.error_code, code::INVALID_GROUP_ID);
    }
}
