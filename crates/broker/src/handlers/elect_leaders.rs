//! ElectLeaders (43): preferred and unclean leader elections (KIP-460).

use std::future::Future;
use std::sync::Arc;

use sluice_metadata::{Controller, ElectionType};
use sluice_protocol::RequestHeader;
use sluice_protocol::error::codes as code;
use sluice_protocol::messages::elect_leaders::{
    ElectLeadersRequest, ElectLeadersResponse, PartitionResult, ReplicaElectionResult,
};

use super::{RequestContext, by_topic};
use crate::authz::Authorizer;
use sluice_metadata::acl::AclOperation;

/// Handles ElectLeaders through `controller`, which runs the elections on
/// the active controller. Version 0 has no election type and means
/// preferred (its `election_type` decodes as 0). Null topic partitions
/// mean every partition; the reply then leaves out those that needed no
/// election. An unknown election type, or a call the controller refuses
/// as a whole, gets the error at the top level (v1+) and on every
/// partition named.
pub fn handle(
    controller: &Arc<Controller>,
    authorizer: &Authorizer,
    ctx: &RequestContext,
    _header: &RequestHeader,
    request: ElectLeadersRequest,
) -> impl Future<Output = ElectLeadersResponse> + Send + 'static {
    let controller = Arc::clone(controller);
    // Kafka: ALTER on the cluster; refused, every named partition and the
    // top-level error (v1+) say CLUSTER_AUTHORIZATION_FAILED.
    let denied = !authorizer.cluster(ctx, AclOperation::Alter);
    async move {
        if denied {
            let failed = sluice_protocol::error::codes::CLUSTER_AUTHORIZATION_FAILED;
            return ElectLeadersResponse {
                error_code: failed,
                replica_election_results: request
                    .topic_partitions
                    .unwrap_or_default()
                    .into_iter()
                    .map(|t| ReplicaElectionResult {
                        topic: t.topic,
                        partition_result: t
                            .partitions
                            .into_iter()
                            .map(|partition_id| PartitionResult {
                                partition_id,
                                error_code: failed,
                                error_message: Some(
                                    "ALTER on the cluster is required to elect leaders".to_owned(),
                                ),
                                ..Default::default()
                            })
                            .collect(),
                        ..Default::default()
                    })
                    .collect(),
                ..Default::default()
            };
        }
        let Some(election_type) = ElectionType::from_wire(request.election_type) else {
            let message = format!("unknown election type {}", request.election_type);
            return request.error_response(code::INVALID_REQUEST, Some(&message));
        };
        let partitions: Option<Vec<(String, i32)>> =
            request.topic_partitions.as_ref().map(|topics| {
                topics
                    .iter()
                    .flat_map(|t| t.partitions.iter().map(|&p| (t.topic.clone(), p)))
                    .collect()
            });
        let results = match controller.elect_leaders(election_type, partitions).await {
            Ok(results) => results,
            Err(e) => {
                tracing::info!(code = e.code, "ElectLeaders refused: {}", e.message);
                return request.error_response(e.code, Some(&e.message));
            }
        };
        let elected = results.iter().filter(|r| r.result.is_ok()).count();
        if elected > 0 {
            tracing::info!(?election_type, elected, "leaders elected on request");
        }
        let replica_election_results = by_topic(results.into_iter().map(|r| {
            let (error_code, error_message) = match r.result {
                Ok(()) => (code::NONE, None),
                Err(e) => (e.code, Some(e.message)),
            };
            (
                r.topic,
                PartitionResult {
                    partition_id: r.partition,
                    error_code,
                    error_message,
                    ..Default::default()
                },
            )
        }))
        .into_iter()
        .map(|(topic, partition_result)| ReplicaElectionResult {
            topic,
            partition_result,
            ..Default::default()
        })
        .collect();
        ElectLeadersResponse {
            throttle_time_ms: 0,
            error_code: code::NONE,
            replica_election_results,
            ..Default::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use sluice_metadata::MetadataRecord;
    use sluice_metadata::controller::{NewTopic, ReplicaAssignment};
    use sluice_metadata::election::MAX_ELECTIONS_PER_CALL;
    use sluice_protocol::messages::elect_leaders::TopicPartitions;

    use super::*;
    use crate::testing::{self, Node};

    /// A node (broker 1) with brokers 1 to 3 registered and topic `t`:
    /// partition 0 on [2, 1] and partition 1 on [1, 3], both then led by
    /// broker 1, so partition 0's preferred leader 2 does not lead.
    async fn displaced(dir: &std::path::Path) -> Node {
        let node = testing::node_in(dir).await;
        node.register_brokers(&[1, 2, 3]).await;
        let on = |partition_index, broker_ids: &[i32]| ReplicaAssignment {
            partition_index,
            broker_ids: broker_ids.to_vec(),
        };
        let topic = NewTopic {
            name: "t".to_owned(),
            num_partitions: -1,
            replication_factor: -1,
            configs: Vec::new(),
            assignments: vec![on(0, &[2, 1]), on(1, &[1, 3])],
        };
        let created = node.controller.create_topics(vec![topic], false).await;
        assert!(created.iter().all(|r| r.is_ok()), "{created:?}");
        // Leadership of partition 0 moves to 1, as after 2 restarted.
        let image = node.image();
        let t = &image.topics["t"];
        let p = &t.partitions[&0];
        node.commit(vec![MetadataRecord::Partition {
            topic_id: t.topic_id,
            partition: 0,
            leader: 1,
            replicas: p.replicas.clone(),
            isr: p.isr.clone(),
            leader_epoch: p.leader_epoch + 1,
            partition_epoch: p.partition_epoch + 1,
            adding_replicas: Vec::new(),
            removing_replicas: Vec::new(),
        }])
        .await;
        node
    }

    async fn elect(
        node: &Node,
        version: i16,
        election_type: i8,
        topic_partitions: Option<Vec<TopicPartitions>>,
    ) -> ElectLeadersResponse {
        let request = ElectLeadersRequest {
            election_type,
            topic_partitions,
            timeout_ms: 60_000,
            ..Default::default()
        };
        handle(
            &node.controller,
            &testing::allow_all(),
            &testing::ctx(),
            &testing::header(43, version),
            request,
        )
        .await
    }

    fn named(topic: &str, partitions: &[i32]) -> TopicPartitions {
        TopicPartitions {
            topic: topic.to_owned(),
            partitions: partitions.to_vec(),
            ..Default::default()
        }
    }

    /// `(topic, partition, error code)` of every partition answered.
    fn codes(response: &ElectLeadersResponse) -> Vec<(String, i32, i16)> {
        response
            .replica_election_results
            .iter()
            .flat_map(|t| {
                t.partition_result
                    .iter()
                    .map(|p| (t.topic.clone(), p.partition_id, p.error_code))
            })
            .collect()
    }

    fn leader(node: &Node, partition: i32) -> (i32, i32) {
        let p = node.image().topics["t"].partitions[&partition].clone();
        (p.leader, p.leader_epoch)
    }

    #[tokio::test]
    async fn a_preferred_election_moves_leadership_back_and_reports_each_partition() {
        for version in [0, 1, 2] {
            let dir = tempfile::tempdir().expect("tempdir");
            let node = displaced(dir.path()).await;
            let (_, epoch) = leader(&node, 0);
            // v0 carries no election type: it decodes as 0, preferred.
            let response = elect(&node, version, 0, Some(vec![named("t", &[0, 1])])).await;
            assert_eq!(response.error_code, code::NONE);
            assert_eq!(
                codes(&response),
                [
                    ("t".to_owned(), 0, code::NONE),
                    ("t".to_owned(), 1, code::ELECTION_NOT_NEEDED)
                ],
                "v{version}"
            );
            assert_eq!(leader(&node, 0), (2, epoch + 1));
            assert_eq!(leader(&node, 1).0, 1);
        }
    }

    #[test]
    fn a_v0_request_decodes_as_a_preferred_election() {
        use sluice_protocol::{Decode, Encode};
        // v0 has no election type on the wire: whatever the sender's struct
        // held, the broker reads the default, 0 (preferred).
        let sent = ElectLeadersRequest {
            election_type: 1,
            topic_partitions: Some(vec![named("t", &[0])]),
            timeout_ms: 1_000,
            ..Default::default()
        };
        let mut wire = bytes::BytesMut::new();
        sent.encode(&mut wire, 0).expect("encodes");
        let read = ElectLeadersRequest::decode(&mut wire.freeze(), 0).expect("decodes");
        assert_eq!(
            ElectionType::from_wire(read.election_type),
            Some(ElectionType::Preferred)
        );
        assert_eq!(read.topic_partitions, sent.topic_partitions);
    }

    #[tokio::test]
    async fn null_partitions_elect_everywhere_and_leave_out_what_needed_nothing() {
        let dir = tempfile::tempdir().expect("tempdir");
        let node = displaced(dir.path()).await;
        let response = elect(&node, 2, 0, None).await;
        // Only t-0 changed; t-1 and the internal topics needed nothing.
        assert_eq!(codes(&response), [("t".to_owned(), 0, code::NONE)]);
        assert_eq!(leader(&node, 0).0, 2);
        let response = elect(&node, 2, 0, None).await;
        assert!(codes(&response).is_empty(), "{response:?}");
    }

    #[tokio::test]
    async fn unclean_elections_unknown_partitions_and_bad_types_get_kafkas_errors() {
        let dir = tempfile::tempdir().expect("tempdir");
        let node = displaced(dir.path()).await;
        let response = elect(
            &node,
            1,
            1,
            Some(vec![named("t", &[0, 9]), named("missing", &[0])]),
        )
        .await;
        assert_eq!(
            codes(&response),
            [
                ("t".to_owned(), 0, code::ELECTION_NOT_NEEDED),
                ("t".to_owned(), 9, code::UNKNOWN_TOPIC_OR_PARTITION),
                ("missing".to_owned(), 0, code::UNKNOWN_TOPIC_OR_PARTITION)
            ]
        );
        assert_eq!(leader(&node, 0).0, 1, "unchanged");

        let response = elect(&node, 2, 7, Some(vec![named("t", &[0])])).await;
        assert_eq!(response.error_code, code::INVALID_REQUEST);
        assert_eq!(
            codes(&response),
            [("t".to_owned(), 0, code::INVALID_REQUEST)]
        );
        assert_eq!(leader(&node, 0).0, 1, "unchanged");
    }

    #[tokio::test]
    async fn too_many_partitions_fail_the_whole_call() {
        let dir = tempfile::tempdir().expect("tempdir");
        let node = displaced(dir.path()).await;
        let many: Vec<i32> = (0..=MAX_ELECTIONS_PER_CALL as i32).collect();
        let response = elect(&node, 2, 0, Some(vec![named("t", &many)])).await;
        assert_eq!(response.error_code, code::INVALID_REQUEST);
        let codes = codes(&response);
        assert_eq!(codes.len(), MAX_ELECTIONS_PER_CALL + 1);
        assert!(codes.iter().all(|(_, _, c)| *c == code::INVALID_REQUEST));
        assert_eq!(leader(&node, 0).0, 1, "nothing elected");
    }
}
