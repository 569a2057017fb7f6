//! ListPartitionReassignments (46): the reassignments in progress (KIP-455).

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Arc;

use sluice_metadata::Controller;
use sluice_protocol::RequestHeader;
use sluice_protocol::error::codes as code;
use sluice_protocol::messages::list_partition_reassignments::{
    ListPartitionReassignmentsRequest, ListPartitionReassignmentsResponse,
    OngoingPartitionReassignment, OngoingTopicReassignment,
};

use super::{RequestContext, by_topic};
use crate::authz::Authorizer;
use sluice_metadata::acl::AclOperation;

/// Handles ListPartitionReassignments from this node's image: with null
/// topics every reassignment in progress, otherwise those of the named
/// partitions. A topic or partition that does not exist, or has no
/// reassignment in progress, is left out, as Kafka does.
pub fn handle(
    controller: &Arc<Controller>,
    authorizer: &Authorizer,
    ctx: &RequestContext,
    _header: &RequestHeader,
    request: ListPartitionReassignmentsRequest,
) -> impl Future<Output = ListPartitionReassignmentsResponse> + Send + 'static {
    // Kafka: DESCRIBE on the cluster.
    if !authorizer.cluster(ctx, AclOperation::Describe) {
        return std::future::ready(ListPartitionReassignmentsResponse {
            error_code: code::CLUSTER_AUTHORIZATION_FAILED,
            error_message: Some(
                "DESCRIBE on the cluster is required to list reassignments".to_owned(),
            ),
            ..Default::default()
        });
    }
    // A topic named twice lists the partitions of both mentions.
    let filter: Option<BTreeMap<String, Vec<i32>>> = request.topics.map(|topics| {
        let mut filter: BTreeMap<String, Vec<i32>> = BTreeMap::new();
        for t in topics {
            filter
                .entry(t.name)
                .or_default()
                .extend(t.partition_indexes);
        }
        filter
    });
    let ongoing = controller.list_partition_reassignments(filter.as_ref());
    let topics = by_topic(ongoing.into_iter().map(|o| {
        (
            o.topic,
            OngoingPartitionReassignment {
                partition_index: o.partition,
                replicas: o.replicas,
                adding_replicas: o.adding_replicas,
                removing_replicas: o.removing_replicas,
                ..Default::default()
            },
        )
    }))
    .into_iter()
    .map(|(name, partitions)| OngoingTopicReassignment {
        name,
        partitions,
        ..Default::default()
    })
    .collect();
    std::future::ready(ListPartitionReassignmentsResponse {
        throttle_time_ms: 0,
        error_code: code::NONE,
        error_message: None,
        topics,
        ..Default::default()
    })
}

#[cfg(test)]
mod tests {
    use sluice_metadata::ReassignmentRequest;
    use sluice_metadata::controller::{NewTopic, ReplicaAssignment};
    use sluice_protocol::messages::list_partition_reassignments::ListPartitionReassignmentsTopics;

    use super::*;
    use crate::handlers::alter_partition_reassignments::tests::reassignable;
    use crate::testing::{self, Node};

    async fn list(
        node: &Node,
        topics: Option<Vec<ListPartitionReassignmentsTopics>>,
    ) -> ListPartitionReassignmentsResponse {
        let request = ListPartitionReassignmentsRequest {
            timeout_ms: 60_000,
            topics,
            ..Default::default()
        };
        handle(
            &node.controller,
            &testing::allow_all(),
            &testing::ctx(),
            &testing::header(46, 0),
            request,
        )
        .await
    }

    fn named(name: &str, partitions: &[i32]) -> ListPartitionReassignmentsTopics {
        ListPartitionReassignmentsTopics {
            name: name.to_owned(),
            partition_indexes: partitions.to_vec(),
            ..Default::default()
        }
    }

    /// `(topic, partition, replicas, adding, removing)` of every entry.
    type Listed = (String, i32, Vec<i32>, Vec<i32>, Vec<i32>);

    fn listed(response: &ListPartitionReassignmentsResponse) -> Vec<Listed> {
        response
            .topics
            .iter()
            .flat_map(|t| {
                t.partitions.iter().map(|p| {
                    (
                        t.name.clone(),
                        p.partition_index,
                        p.replicas.clone(),
                        p.adding_replicas.clone(),
                        p.removing_replicas.clone(),
                    )
                })
            })
            .collect()
    }

    /// [`reassignable`], plus topic `u` with two partitions on 1 and 2,
    /// and reassignments of t-0 and u-1 to 2 and 3 started.
    async fn two_moving(dir: &std::path::Path) -> Node {
        let node = reassignable(dir).await;
        let on_1_2 = |partition_index| ReplicaAssignment {
            partition_index,
            broker_ids: vec![1, 2],
        };
        let topic = NewTopic {
            name: "u".to_owned(),
            num_partitions: -1,
            replication_factor: -1,
            configs: Vec::new(),
            assignments: vec![on_1_2(0), on_1_2(1)],
        };
        let created = node.controller.create_topics(vec![topic], false).await;
        assert!(created.iter().all(|r| r.is_ok()), "{created:?}");
        let moving = |topic: &str, partition| ReassignmentRequest {
            topic: topic.to_owned(),
            partition,
            target: Some(vec![2, 3]),
        };
        let results = node
            .controller
            .alter_partition_reassignments(vec![moving("t", 0), moving("u", 1)])
            .await
            .expect("call");
        assert!(results.iter().all(|r| r.result.is_ok()), "{results:?}");
        node
    }

    fn entry(topic: &str, partition: i32) -> Listed {
        (topic.to_owned(), partition, vec![2, 3, 1], vec![3], vec![1])
    }

    #[tokio::test]
    async fn null_topics_list_every_reassignment_in_progress() {
        let dir = tempfile::tempdir().expect("tempdir");
        let node = two_moving(dir.path()).await;
        let response = list(&node, None).await;
        assert_eq!(response.error_code, code::NONE);
        assert_eq!(listed(&response), [entry("t", 0), entry("u", 1)]);
    }

    #[tokio::test]
    async fn named_partitions_list_only_those_in_progress_and_skip_unknown_ones() {
        let dir = tempfile::tempdir().expect("tempdir");
        let node = two_moving(dir.path()).await;
        let response = list(
            &node,
            Some(vec![
                named("u", &[0, 1, 7]),
                named("missing", &[0]),
                named("t", &[]),
            ]),
        )
        .await;
        assert_eq!(response.error_code, code::NONE);
        assert_eq!(listed(&response), [entry("u", 1)]);
        // A topic named twice: both mentions count.
        let response = list(&node, Some(vec![named("u", &[0]), named("u", &[1])])).await;
        assert_eq!(listed(&response), [entry("u", 1)]);
    }

    #[tokio::test]
    async fn nothing_is_listed_once_a_reassignment_is_cancelled() {
        let dir = tempfile::tempdir().expect("tempdir");
        let node = reassignable(dir.path()).await;
        assert!(list(&node, None).await.topics.is_empty());
        let request = |target: Option<Vec<i32>>| ReassignmentRequest {
            topic: "t".to_owned(),
            partition: 0,
            target,
        };
        node.controller
            .alter_partition_reassignments(vec![request(Some(vec![3]))])
            .await
            .expect("start");
        assert_eq!(
            listed(&list(&node, None).await),
            [("t".to_owned(), 0, vec![3, 1, 2], vec![3], vec![1, 2])]
        );
        node.controller
            .alter_partition_reassignments(vec![request(None)])
            .await
            .expect("cancel");
        assert!(list(&node, None).await.topics.is_empty());
    }
}
