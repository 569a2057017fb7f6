//! DeleteRecords (21): advance partitions' log start offsets.

use std::future::Future;
use std::sync::Arc;

use sluice_protocol::RequestHeader;
use sluice_protocol::error::codes as code;
use sluice_protocol::messages::delete_records::{
    DeleteRecordsPartitionResult, DeleteRecordsRequest, DeleteRecordsResponse,
    DeleteRecordsTopicResult,
};

use super::RequestContext;
use sluice_replica::ReplicaManager;

/// Kafka's "delete everything up to the high watermark" marker.
const HIGH_WATERMARK: i64 = -1;

/// Handles DeleteRecords.
pub fn handle(
    replicas: &Arc<ReplicaManager>,
    _ctx: &RequestContext,
    _header: &RequestHeader,
    request: DeleteRecordsRequest,
) -> impl Future<Output = DeleteRecordsResponse> + Send + 'static {
    let replicas = Arc::clone(replicas);
    async move {
        let mut topics = Vec::with_capacity(request.topics.len());
        for t in request.topics {
            let mut partitions = Vec::with_capacity(t.partitions.len());
            for p in t.partitions {
                let (error_code, low_watermark) = match replicas
                    .partition(&t.name, p.partition_index)
                {
                    None => (code::UNKNOWN_TOPIC_OR_PARTITION, -1),
                    // Kafka's ReplicaManager refuses this the same way.
                    Some(_) if sluice_metadata::controller::is_internal_topic(&t.name) => {
                        (code::INVALID_TOPIC_EXCEPTION, -1)
                    }
                    Some(partition) => {
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
        let response = handle(&broker.replicas, &testing::ctx(), &header, request).await;
        let result = &response.topics[0].partitions[0];
        assert_eq!(result.error_code, code::INVALID_TOPIC_EXCEPTION);
        assert_eq!(result.low_watermark, -1);
    }

    /// DeleteRecords of `t`-`partition` up to `offset`, against partitions alone.
    async fn delete(
        replicas: &Arc<ReplicaManager>,
        partition: i32,
        offset: i64,
    ) -> DeleteRecordsPartitionResult {
        let request = DeleteRecordsRequest {
            topics: vec![DeleteRecordsTopic {
                name: "t".to_owned(),
                partitions: vec![DeleteRecordsPartition {
                    partition_index: partition,
                    offset,
                }],
            }],
            timeout_ms: 1_000,
            ..Default::default()
        };
        let header = testing::header(21, 2);
        let mut response = handle(replicas, &testing::ctx(), &header, request).await;
        response.topics.remove(0).partitions.remove(0)
    }

    #[tokio::test]
    async fn deleting_up_to_an_offset_moves_the_log_start_there() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (replicas, _) = testing::hosted(dir.path(), &[("t", 1)]);
        let partition = replicas.partition("t", 0).expect("hosted");
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
        let (replicas, _) = testing::hosted(dir.path(), &[("t", 1)]);
        let partition = replicas.partition("t", 0).expect("hosted");
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
