//! OffsetForLeaderEpoch (23): where a leader epoch ends, for log truncation
//! after a leader change.

use std::future::Future;

use sluice_protocol::RequestHeader;
use sluice_protocol::error::codes as code;
use sluice_protocol::messages::offset_for_leader_epoch::{
    EpochEndOffset, OffsetForLeaderEpochRequest, OffsetForLeaderEpochResponse,
    OffsetForLeaderTopicResult,
};

use super::RequestContext;
use sluice_replica::ReplicaManager;

/// Handles OffsetForLeaderEpoch.
pub fn handle(
    replicas: &ReplicaManager,
    _ctx: &RequestContext,
    _header: &RequestHeader,
    request: OffsetForLeaderEpochRequest,
) -> impl Future<Output = OffsetForLeaderEpochResponse> + Send + 'static {
    let topics = request
        .topics
        .into_iter()
        .map(|t| OffsetForLeaderTopicResult {
            partitions: t
                .partitions
                .into_iter()
                .map(|p| {
                    let result = |error_code, leader_epoch, end_offset| EpochEndOffset {
                        error_code,
                        partition: p.partition,
                        leader_epoch,
                        end_offset,
                        ..Default::default()
                    };
                    let Some(partition) = replicas.partition(&t.topic, p.partition) else {
                        return result(code::UNKNOWN_TOPIC_OR_PARTITION, -1, -1);
                    };
                    let current = partition.leader_epoch();
                    if p.current_leader_epoch >= 0 && p.current_leader_epoch < current {
                        return result(code::FENCED_LEADER_EPOCH, -1, -1);
                    }
                    if p.current_leader_epoch > current {
                        return result(code::UNKNOWN_LEADER_EPOCH, -1, -1);
                    }
                    match partition.log().leader_epoch_end_offset(p.leader_epoch) {
                        // The current epoch ends at the log end.
                        Some((epoch, _)) if epoch == current => {
                            result(code::NONE, epoch, partition.log().log_end_offset())
                        }
                        Some((epoch, end)) => result(code::NONE, epoch, end),
                        None => result(code::NONE, -1, -1),
                    }
                })
                .collect(),
            topic: t.topic,
            ..Default::default()
        })
        .collect();
    std::future::ready(OffsetForLeaderEpochResponse {
        throttle_time_ms: 0,
        topics,
        ..Default::default()
    })
}
