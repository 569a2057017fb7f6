//! AlterPartitionReassignments (45): start, replace or cancel partition
//! reassignments (KIP-455).

use std::future::Future;
use std::sync::Arc;

use sluice_metadata::{Controller, ReassignmentRequest};
use sluice_protocol::RequestHeader;
use sluice_protocol::error::codes as code;
use sluice_protocol::messages::alter_partition_reassignments::{
    AlterPartitionReassignmentsRequest, AlterPartitionReassignmentsResponse,
    ReassignablePartitionResponse, ReassignableTopicResponse,
};

use super::RequestContext;
use crate::authz::Authorizer;
use sluice_metadata::acl::AclOperation;

/// Handles AlterPartitionReassignments through `controller`, which runs
/// it on the active controller. A partition's null replica list cancels
/// its reassignment. A call the controller refuses as a whole (too many
/// partitions, a failed commit) gets the error at the top level and on
/// every partition, as Kafka's error response does.
pub fn handle(
    controller: &Arc<Controller>,
    authorizer: &Authorizer,
    ctx: &RequestContext,
    _header: &RequestHeader,
    request: AlterPartitionReassignmentsRequest,
) -> impl Future<Output = AlterPartitionReassignmentsResponse> + Send + 'static {
    let controller = Arc::clone(controller);
    // Kafka: ALTER on the cluster.
    let denied = !authorizer.cluster(ctx, AclOperation::Alter);
    async move {
        if denied {
            return AlterPartitionReassignmentsResponse {
                error_code: sluice_protocol::error::codes::CLUSTER_AUTHORIZATION_FAILED,
                error_message: Some(
                    "ALTER on the cluster is required to reassign partitions".to_owned(),
                ),
                ..Default::default()
            };
        }
        let asks: Vec<ReassignmentRequest> = request
            .topics
            .iter()
            .flat_map(|t| {
                t.partitions.iter().map(|p| ReassignmentRequest {
                    topic: t.name.clone(),
                    partition: p.partition_index,
                    target: p.replicas.clone(),
                })
            })
            .collect();
        let results = match controller.alter_partition_reassignments(asks).await {
            Ok(results) => results,
            Err(e) => {
                tracing::info!(
                    code = e.code,
                    "AlterPartitionReassignments refused: {}",
                    e.message
                );
                return request.error_response(e.code, Some(&e.message));
            }
        };
        // One result per partition, in request order.
        let mut results = results.into_iter();
        let responses = request
            .topics
            .into_iter()
            .map(|t| ReassignableTopicResponse {
                name: t.name,
                partitions: t
                    .partitions
                    .into_iter()
                    .map(|p| {
                        let (error_code, error_message) = match results.next().map(|r| r.result) {
                            Some(Ok(())) => (code::NONE, None),
                            Some(Err(e)) => (e.code, Some(e.message)),
                            None => (
                                code::UNKNOWN_SERVER_ERROR,
                                Some("the controller returned no result".to_owned()),
                            ),
                        };
                        ReassignablePartitionResponse {
                            partition_index: p.partition_index,
                            error_code,
                            error_message,
                            ..Default::default()
                        }
                    })
                    .collect(),
                ..Default::default()
            })
            .collect();
        AlterPartitionReassignmentsResponse {
            throttle_time_ms: 0,
            error_code: code::NONE,
            error_message: None,
            responses,
            ..Default::default()
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use sluice_metadata::controller::{NewTopic, ReplicaAssignment};
    use sluice_metadata::reassignment::MAX_REASSIGNMENTS_PER_CALL;
    use sluice_protocol::messages::alter_partition_reassignments::{
        ReassignablePartition, ReassignableTopic,
    };

    use super::*;
    use crate::testing::{self, Node};

    /// A node (broker 1) with brokers 1 to 3 registered and topic `t`
    /// with one partition on 1 and 2.
    pub(crate) async fn reassignable(dir: &std::path::Path) -> Node {
        let node = testing::node_in(dir).await;
        node.register_brokers(&[1, 2, 3]).await;
        let topic = NewTopic {
            name: "t".to_owned(),
            num_partitions: -1,
            replication_factor: -1,
            configs: Vec::new(),
            assignments: vec![ReplicaAssignment {
                partition_index: 0,
                broker_ids: vec![1, 2],
            }],
        };
        let created = node.controller.create_topics(vec![topic], false).await;
        assert!(created.iter().all(|r| r.is_ok()), "{created:?}");
        node
    }

    fn partition(index: i32, replicas: Option<&[i32]>) -> ReassignablePartition {
        ReassignablePartition {
            partition_index: index,
            replicas: replicas.map(<[i32]>::to_vec),
            ..Default::default()
        }
    }

    fn topic(name: &str, partitions: Vec<ReassignablePartition>) -> ReassignableTopic {
        ReassignableTopic {
            name: name.to_owned(),
            partitions,
            ..Default::default()
        }
    }

    async fn alter(
        node: &Node,
        topics: Vec<ReassignableTopic>,
    ) -> AlterPartitionReassignmentsResponse {
        let request = AlterPartitionReassignmentsRequest {
            timeout_ms: 60_000,
            topics,
            ..Default::default()
        };
        handle(
            &node.controller,
            &testing::allow_all(),
            &testing::ctx(),
            &testing::header(45, 0),
            request,
        )
        .await
    }

    /// `(topic, partition, error code)` of every partition answered.
    fn codes(response: &AlterPartitionReassignmentsResponse) -> Vec<(String, i32, i16)> {
        response
            .responses
            .iter()
            .flat_map(|t| {
                t.partitions
                    .iter()
                    .map(|p| (t.name.clone(), p.partition_index, p.error_code))
            })
            .collect()
    }

    #[tokio::test]
    async fn starts_and_cancels_a_reassignment() {
        let dir = tempfile::tempdir().expect("tempdir");
        let node = reassignable(dir.path()).await;
        let response = alter(&node, vec![topic("t", vec![partition(0, Some(&[2, 3]))])]).await;
        assert_eq!(response.error_code, code::NONE);
        assert_eq!(codes(&response), [("t".to_owned(), 0, code::NONE)]);
        let p = node.image().topics["t"].partitions[&0].clone();
        assert_eq!(
            (
                p.replicas.as_slice(),
                p.adding_replicas.as_slice(),
                p.removing_replicas.as_slice()
            ),
            (&[2, 3, 1][..], &[3][..], &[1][..])
        );
        assert_eq!(node.controller.list_partition_reassignments(None).len(), 1);

        // A null replica list cancels; a second cancel has nothing to undo.
        let response = alter(&node, vec![topic("t", vec![partition(0, None)])]).await;
        assert_eq!(codes(&response), [("t".to_owned(), 0, code::NONE)]);
        // The original replicas in their order during the move, as Kafka
        // reverts: the replicas less the adding ones.
        let p = node.image().topics["t"].partitions[&0].clone();
        assert_eq!(p.replicas, [2, 1]);
        assert!(!p.reassignment_in_progress());
        let response = alter(&node, vec![topic("t", vec![partition(0, None)])]).await;
        assert_eq!(
            codes(&response),
            [("t".to_owned(), 0, code::NO_REASSIGNMENT_IN_PROGRESS)]
        );
        assert_eq!(response.error_code, code::NONE);
    }

    #[tokio::test]
    async fn unknown_partitions_and_invalid_replicas_are_refused_per_partition() {
        let dir = tempfile::tempdir().expect("tempdir");
        let node = reassignable(dir.path()).await;
        let before = node.image().topics["t"].partitions[&0].clone();
        let response = alter(
            &node,
            vec![
                topic(
                    "t",
                    vec![partition(5, Some(&[2, 3])), partition(0, Some(&[2, 2]))],
                ),
                topic("missing", vec![partition(0, Some(&[1]))]),
                topic("t", vec![partition(0, Some(&[2, 9]))]),
                topic("t", vec![partition(0, Some(&[]))]),
            ],
        )
        .await;
        assert_eq!(response.error_code, code::NONE);
        let t = |name: &str, index, code| (name.to_owned(), index, code);
        assert_eq!(
            codes(&response),
            [
                t("t", 5, code::UNKNOWN_TOPIC_OR_PARTITION),
                t("t", 0, code::INVALID_REPLICA_ASSIGNMENT),
                t("missing", 0, code::UNKNOWN_TOPIC_OR_PARTITION),
                // Named a second time in the same call.
                t("t", 0, code::INVALID_REQUEST),
                t("t", 0, code::INVALID_REQUEST),
            ]
        );
        let messages: Vec<Option<&str>> = response
            .responses
            .iter()
            .flat_map(|t| t.partitions.iter().map(|p| p.error_message.as_deref()))
            .collect();
        assert!(messages.iter().all(Option::is_some), "{messages:?}");
        assert_eq!(node.image().topics["t"].partitions[&0], before);

        // Each invalid list alone, against an unregistered broker and empty.
        for replicas in [&[2, 9][..], &[]] {
            let response = alter(&node, vec![topic("t", vec![partition(0, Some(replicas))])]).await;
            assert_eq!(
                codes(&response),
                [("t".to_owned(), 0, code::INVALID_REPLICA_ASSIGNMENT)],
                "{replicas:?}"
            );
        }
        assert_eq!(node.image().topics["t"].partitions[&0], before);
    }

    #[tokio::test]
    async fn too_many_partitions_fail_the_whole_call() {
        let dir = tempfile::tempdir().expect("tempdir");
        let node = reassignable(dir.path()).await;
        let many = (0..=MAX_REASSIGNMENTS_PER_CALL as i32)
            .map(|i| partition(i, Some(&[2, 3])))
            .collect();
        let response = alter(&node, vec![topic("t", many)]).await;
        assert_eq!(response.error_code, code::INVALID_REQUEST);
        assert!(response.error_message.is_some());
        let codes = codes(&response);
        assert_eq!(codes.len(), MAX_REASSIGNMENTS_PER_CALL + 1);
        assert!(codes.iter().all(|(_, _, c)| *c == code::INVALID_REQUEST));
        assert!(
            !node.image().topics["t"].partitions[&0].reassignment_in_progress(),
            "nothing started"
        );
    }
}
