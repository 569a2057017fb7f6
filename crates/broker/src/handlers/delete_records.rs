//! DeleteRecords (21): advance partitions' log start offsets. Only the
//! partition's leader does it (NOT_LEADER_OR_FOLLOWER elsewhere).

use std::future::Future;
use std::sync::Arc;

use sluice_protocol::RequestHeader;
use sluice_protocol::error::codes as code;
use sluice_protocol::messages::delete_records::{
    DeleteRecordsPartitionResult, DeleteRecordsRequest, DeleteRecordsResponse,
    DeleteRecordsTopicResult,
};

use super::RequestContext;
use crate::authz::Authorizer;
use sluice_metadata::MetadataImage;
use sluice_metadata::acl::AclOperation;
use sluice_replica::{NO_LEADER_EPOCH, ReplicaManager};

/// Kafka's "delete everything up to the high watermark" marker.
const HIGH_WATERMARK: i64 = -1;

/// Handles DeleteRecords: partitions resolve through `replicas` (this
/// broker must lead them) and `image` (what exists).
pub fn handle(
    replicas: &Arc<ReplicaManager>,
    image: &Arc<MetadataImage>,
    authorizer: &Authorizer,
    ctx: &RequestContext,
    _header: &RequestHeader,
    request: DeleteRecordsRequest,
) -> impl Future<Output = DeleteRecordsResponse> + Send + 'static {
    let replicas = Arc::clone(replicas);
    let image = Arc::clone(image);
    // Kafka: DELETE on each topic, else TOPIC_AUTHORIZATION_FAILED.
    let denied: Vec<bool> = request
        .topics
        .iter()
        .map(|t| !authorizer.topic(ctx, AclOperation::Delete, &t.name))
        .collect();
    async move {
        let mut topics = Vec::with_capacity(request.topics.len());
        for (t, denied) in request.topics.into_iter().zip(denied) {
            let mut partitions = Vec::with_capacity(t.partitions.len());
            for p in t.partitions {
                if denied {
                    partitions.push(DeleteRecordsPartitionResult {
                        partition_index: p.partition_index,
                        low_watermark: -1,
                        error_code: code::TOPIC_AUTHORIZATION_FAILED,
                        ..Default::default()
                    });
                    continue;
                }
                let (error_code, low_watermark) = match replicas.leader_partition(
                    &image,
                    &t.name,
                    p.partition_index,
                    NO_LEADER_EPOCH,
                    true,
                ) {
                    Err(e) => (e.kafka_error_code(), -1),
                    // Kafka's ReplicaManager refuses this the same way.
                    Ok(_) if sluice_metadata::controller::is_internal_topic(&t.name) => {
                        (code::INVALID_TOPIC_EXCEPTION, -1)
                    }
                    Ok(partition) => {
                        let hw = partition.high_watermark();
                        let target = if p.offset == HIGH_WATERMARK {
                            hw
                        } else {
                            p.offset
                        };
                        if target < 0 || target > hw {
                            (code::OFFSET_OUT_OF_RANGE, -1)
                        } else {
                            let part = Arc::clone(&partition);
                            match tokio::task::spawn_blocking(move || {
                                part.delete_records_before(target)
                            })
                            .await
                            {
                                Ok(Ok(low)) => (code::NONE, low),
                                Ok(Err(e)) => {
                                    tracing::error!(partition = %partition.tp, "delete records failed: {e}");
                                    (e.kafka_error_code(), -1)
                                }
                                Err(_) => (code::UNKNOWN_SERVER_ERROR, -1),
                            }
                        }
                    }
                };
                partitions.push(DeleteRecordsPartitionResult {
                    partition_index: p.partition_index,
                    low_watermark,
                    error_code,
                    ..Default::default()
                });
            }
            topics.push(DeleteRecordsTopicResult {
                name: t.name,
                partitions,
                ..Default::default()
            });
        }
        DeleteRecordsResponse {
            throttle_time_ms: 0,
            topics,
            ..Default::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use sluice_protocol::messages::delete_records::{DeleteRecordsPartition, DeleteRecordsTopic};

    use super::*;
    use crate::testing;

    #[tokio::test]
    async fn records_of_internal_topics_cannot_be_deleted() {
        let dir = tempfile::tempdir().expect("tempdir");
        let broker = testing::broker_in(dir.path()).await;
        broker
            .controller
            .ensure_internal_topic("__consumer_offsets", 1)
            .await
            .expect("offsets topic");
        let header = RequestHeader {
            request_api_key: 21,
            request_api_version: 2,
            correlation_id: 1,
            client_id: None,
        };
        let request = DeleteRecordsRequest {
            topics: vec![DeleteRecordsTopic {
                name: "__consumer_offsets".to_owned(),
                partitions: vec![DeleteRecordsPartition {
                    partition_index: 0,
                    offset: HIGH_WATERMARK,
                    ..Default::default()
                }],
                ..Default::default()
            }],
            timeout_ms: 1_000,
            ..Default::default()
        };
        let response = handle(
            &broker.replicas,
            &broker.metadata.image(),
            &testing::allow_all(),
            &testing::ctx(),
            &header,
            request,
        )
        .await;
        let result = &response.topics[0].partitions[0];
        assert_eq!(result.error_code, code::INVALID_TOPIC_EXCEPTION);
        assert_eq!(result.low_watermark, -1);
    }

    /// DeleteRecords of `topic`-`partition` up to `offset`.
    async fn delete_in(
        (replicas, image): (&Arc<ReplicaManager>, &Arc<MetadataImage>),
        topic: &str,
        partition: i32,
        offset: i64,
    ) -> DeleteRecordsPartitionResult {
        let request = DeleteRecordsRequest {
            topics: vec![DeleteRecordsTopic {
                name: topic.to_owned(),
                partitions: vec![DeleteRecordsPartition {
                    partition_index: partition,
                    offset,
                }],
            }],
            timeout_ms: 1_000,
            ..Default::default()
        };
        let header = testing::header(21, 2);
        let mut response = handle(
            replicas,
            image,
            &testing::allow_all(),
            &testing::ctx(),
            &header,
            request,
        )
        .await;
        response.topics.remove(0).partitions.remove(0)
    }

    /// DeleteRecords of `t`-`partition` up to `offset`, against partitions alone.
    async fn delete(
        (replicas, image): &(Arc<ReplicaManager>, Arc<MetadataImage>),
        partition: i32,
        offset: i64,
    ) -> DeleteRecordsPartitionResult {
        delete_in((replicas, image), "t", partition, offset).await
    }

    #[tokio::test]
    async fn only_the_leader_deletes_records() {
        let dir = tempfile::tempdir().expect("tempdir");
        let node = testing::node_in(dir.path()).await;
        testing::three_brokers(&node).await;
        testing::spread_topic(&node).await;
        let image = node.image();
        let pieces = (&node.replicas, &image);
        let led = node.partition(testing::SPREAD, 0);
        testing::append(&led, &testing::batch(2)).await;
        let follower = node.partition(testing::SPREAD, 1);
        testing::append(&follower, &testing::batch(2)).await;
        let result = delete_in(pieces, testing::SPREAD, 0, 1).await;
        assert_eq!((result.error_code, result.low_watermark), (code::NONE, 1));
        for index in [1, 2, 3] {
            let result = delete_in(pieces, testing::SPREAD, index, 1).await;
            assert_eq!(
                (result.error_code, result.low_watermark),
                (code::NOT_LEADER_OR_FOLLOWER, -1),
                "partition {index}"
            );
        }
        assert_eq!(follower.log().log_start_offset(), 0, "a follower deleted");
        let result = delete_in(pieces, testing::SPREAD, 9, 1).await;
        assert_eq!(result.error_code, code::UNKNOWN_TOPIC_OR_PARTITION);
    }

    #[tokio::test]
    async fn deleting_up_to_an_offset_moves_the_log_start_there() {
        let dir = tempfile::tempdir().expect("tempdir");
        let replicas = testing::hosted(dir.path(), &[("t", 1)]);
        let partition = replicas.0.partition("t", 0).expect("hosted");
        for _ in 0..3 {
            testing::append(&partition, &testing::batch(2)).await;
        }
        let result = delete(&replicas, 0, 2).await;
        assert_eq!((result.error_code, result.low_watermark), (code::NONE, 2));
        assert_eq!(partition.log().log_start_offset(), 2);
        // -1 means the high watermark.
        let result = delete(&replicas, 0, HIGH_WATERMARK).await;
        assert_eq!((result.error_code, result.low_watermark), (code::NONE, 6));
        assert_eq!(partition.log().log_start_offset(), 6);
    }

    #[tokio::test]
    async fn past_the_high_watermark_or_an_unknown_partition_is_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let replicas = testing::hosted(dir.path(), &[("t", 1)]);
        let partition = replicas.0.partition("t", 0).expect("hosted");
        testing::append(&partition, &testing::batch(2)).await;
        let result = delete(&replicas, 0, 3).await;
        assert_eq!(
            (result.error_code, result.low_watermark),
            (code::OFFSET_OUT_OF_RANGE, -1)
        );
        let result = delete(&replicas, 0, -5).await;
        assert_eq!(result.error_code, code::OFFSET_OUT_OF_RANGE);
        assert_eq!(partition.log().log_start_offset(), 0, "nothing deleted");
        let result = delete(&replicas, 7, 1).await;
        assert_eq!(result.error_code, code::UNKNOWN_TOPIC_OR_PARTITION);
        assert_eq!(result.partition_index, 7);
    }
}
