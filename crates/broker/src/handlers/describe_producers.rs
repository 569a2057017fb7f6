//! DescribeProducers (61): the producers a partition knows, with their
//! last sequence and open transaction (what `kafka-transactions.sh
//! describe-producers` shows, and how a hanging transaction is found).
//! Only the partition's leader answers (NOT_LEADER_OR_FOLLOWER elsewhere).

use std::future::Future;

use sluice_protocol::RequestHeader;
use sluice_protocol::error::codes as code;
use sluice_protocol::messages::describe_producers::{
    DescribeProducersRequest, DescribeProducersResponse, PartitionResponse, ProducerState,
    TopicResponse,
};

use super::RequestContext;
use crate::authz::Authorizer;
use sluice_metadata::MetadataImage;
use sluice_metadata::acl::AclOperation;
use sluice_replica::{NO_LEADER_EPOCH, ReplicaManager};

/// Handles DescribeProducers: partitions resolve through `replicas` (this
/// broker must lead them) and `image` (what exists).
pub fn handle(
    replicas: &ReplicaManager,
    image: &MetadataImage,
    authorizer: &Authorizer,
    ctx: &RequestContext,
    _header: &RequestHeader,
    request: DescribeProducersRequest,
) -> impl Future<Output = DescribeProducersResponse> + Send + 'static {
    let topics = request
        .topics
        .into_iter()
        .map(|t| {
            // Kafka: READ on the topic.
            let denied = !authorizer.topic(ctx, AclOperation::Read, &t.name);
            TopicResponse {
                partitions: t
                    .partition_indexes
                    .iter()
                    .map(|&index| {
                        if denied {
                            return PartitionResponse {
                                partition_index: index,
                                error_code: code::TOPIC_AUTHORIZATION_FAILED,
                                ..Default::default()
                            };
                        }
                        match replicas.leader_partition(
                            image,
                            &t.name,
                            index,
                            NO_LEADER_EPOCH,
                            true,
                        ) {
                            Err(e) => PartitionResponse {
                                partition_index: index,
                                error_code: e.kafka_error_code(),
                                ..Default::default()
                            },
                            Ok(p) => PartitionResponse {
                                partition_index: index,
                                error_code: code::NONE,
                                active_producers: p
                                    .log()
                                    .producer_states()
                                    .into_iter()
                                    .map(|(producer_id, e)| ProducerState {
                                        producer_id,
                                        producer_epoch: i32::from(e.epoch),
                                        last_sequence: e.last_seq(),
                                        last_timestamp: e.last_timestamp,
                                        coordinator_epoch: e.coordinator_epoch,
                                        current_txn_start_offset: e
                                            .current_txn_first_offset
                                            .unwrap_or(-1),
                                        ..Default::default()
                                    })
                                    .collect(),
                                ..Default::default()
                            },
                        }
                    })
                    .collect(),
                name: t.name,
                ..Default::default()
            }
        })
        .collect();
    std::future::ready(DescribeProducersResponse {
        throttle_time_ms: 0,
        topics,
        ..Default::default()
    })
}

#[cfg(test)]
mod tests {
    use futures::FutureExt;
    use sluice_protocol::messages::describe_producers::TopicRequest;

    use super::*;
    use crate::testing;

    fn describe(
        replicas: &ReplicaManager,
        image: &MetadataImage,
        topic: &str,
        partitions: Vec<i32>,
    ) -> Vec<PartitionResponse> {
        let request = DescribeProducersRequest {
            topics: vec![TopicRequest {
                name: topic.to_owned(),
                partition_indexes: partitions,
            }],
            ..Default::default()
        };
        let header = testing::header(61, 0);
        let mut response = handle(
            replicas,
            image,
            &testing::allow_all(),
            &testing::ctx(),
            &header,
            request,
        )
        .now_or_never()
        .expect("answers at once");
        assert_eq!(response.topics[0].name, topic);
        response.topics.remove(0).partitions
    }

    #[tokio::test]
    async fn only_the_leader_describes_its_producers() {
        let dir = tempfile::tempdir().expect("tempdir");
        let node = testing::node_in(dir.path()).await;
        testing::three_brokers(&node).await;
        testing::spread_topic(&node).await;
        let answers = describe(
            &node.replicas,
            &node.image(),
            testing::SPREAD,
            vec![0, 1, 2, 3, 9],
        );
        let got: Vec<_> = answers
            .iter()
            .map(|a| (a.partition_index, a.error_code))
            .collect();
        assert_eq!(
            got,
            [
                (0, code::NONE),
                (1, code::NOT_LEADER_OR_FOLLOWER),
                (2, code::NOT_LEADER_OR_FOLLOWER),
                (3, code::NOT_LEADER_OR_FOLLOWER),
                (9, code::UNKNOWN_TOPIC_OR_PARTITION),
            ]
        );
    }

    #[tokio::test]
    async fn lists_each_producer_with_its_last_sequence_and_open_transaction() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (replicas, image) = testing::hosted(dir.path(), &[("t", 1)]);
        let partition = replicas.partition("t", 0).expect("hosted");
        let idempotent = sluice_records::BatchBuilder::new()
            .producer(11, 3, 0)
            .record(sluice_records::NewRecord {
                key: None,
                value: Some(bytes::Bytes::from_static(b"a")),
                headers: vec![],
                timestamp_ms: testing::now_ms(),
            })
            .record(sluice_records::NewRecord {
                key: None,
                value: Some(bytes::Bytes::from_static(b"b")),
                headers: vec![],
                timestamp_ms: testing::now_ms(),
            })
            .build()
            .expect("batch");
        testing::append(&partition, &idempotent).await;
        let transactional = sluice_records::BatchBuilder::new()
            .producer(12, 0, 0)
            .transactional(true)
            .record(sluice_records::NewRecord {
                key: None,
                value: Some(bytes::Bytes::from_static(b"t")),
                headers: vec![],
                timestamp_ms: testing::now_ms(),
            })
            .build()
            .expect("batch");
        testing::append(&partition, &transactional).await;

        let answers = describe(&replicas, &image, "t", vec![0, 3]);
        assert_eq!(answers[0].error_code, code::NONE);
        let mut producers: Vec<_> = answers[0]
            .active_producers
            .iter()
            .map(|p| {
                (
                    p.producer_id,
                    p.producer_epoch,
                    p.last_sequence,
                    p.current_txn_start_offset,
                )
            })
            .collect();
        producers.sort();
        assert_eq!(producers, [(11, 3, 1, -1), (12, 0, 0, 2)]);
        assert_eq!(answers[1].partition_index, 3);
        assert_eq!(answers[1].error_code, code::UNKNOWN_TOPIC_OR_PARTITION);
        assert!(answers[1].active_producers.is_empty());
    }
}
