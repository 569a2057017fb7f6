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
use crate::Broker;

/// Kafka's "delete everything up to the high watermark" marker.
const HIGH_WATERMARK: i64 = -1;

/// Handles DeleteRecords.
pub fn handle(
    broker: &Arc<Broker>,
    _ctx: &RequestContext,
    _header: &RequestHeader,
    request: DeleteRecordsRequest,
) -> impl Future<Output = DeleteRecordsResponse> + Send + 'static {
    let broker = Arc::clone(broker);
    async move {
        let mut topics = Vec::with_capacity(request.topics.len());
        for t in request.topics {
            let mut partitions = Vec::with_capacity(t.partitions.len());
            for p in t.partitions {
                let (error_code, low_watermark) = match broker
                    .replicas
                    .partition(&t.name, p.partition_index)
                {
                    None => (code::UNKNOWN_TOPIC_OR_PARTITION, -1),
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
