//! ListOffsets (2): earliest, latest, by timestamp, and max timestamp.

use std::future::Future;

use sluice_protocol::RequestHeader;
use sluice_protocol::error::codes as code;
use sluice_protocol::messages::list_offsets::{
    ListOffsetsPartitionResponse, ListOffsetsRequest, ListOffsetsResponse, ListOffsetsTopicResponse,
};

use super::RequestContext;
use sluice_replica::ReplicaManager;

/// Kafka's special timestamps.
const LATEST: i64 = -1;
const EARLIEST: i64 = -2;
const MAX_TIMESTAMP: i64 = -3;
/// KIP-405: earliest offset still on local disk; without tiered storage it is the log start.
const EARLIEST_LOCAL: i64 = -4;

/// Handles ListOffsets.
pub fn handle(
    replicas: &ReplicaManager,
    _ctx: &RequestContext,
    header: &RequestHeader,
    request: ListOffsetsRequest,
) -> impl Future<Output = ListOffsetsResponse> + Send + 'static {
    let version = header.request_api_version;
    // read_committed (isolation_level 1) sees offsets up to the last stable
    // offset only, as Kafka does.
    let read_committed = request.isolation_level == 1;
    let topics = request
        .topics
        .into_iter()
        .map(|t| ListOffsetsTopicResponse {
            partitions: t
                .partitions
                .into_iter()
                .map(|p| {
                    let mut r = match replicas.partition(&t.name, p.partition_index) {
                        None => ListOffsetsPartitionResponse {
                            error_code: code::UNKNOWN_TOPIC_OR_PARTITION,
                            ..not_found()
                        },
                        Some(partition) => {
                            let hw = if read_committed {
                                partition.last_stable_offset()
                            } else {
                                partition.high_watermark()
                            };
                            let epoch = partition.leader_epoch();
                            // (timestamp, offset) of the first committed
                            // record at or after `ts`.
                            let first_at_or_after = |ts: i64| {
                                partition
                                    .log()
                                    .lookup_timestamp(ts)
                                    .map(|hit| {
                                        hit.map(|(offset, ts)| (ts, offset))
                                            .filter(|&(_, o)| o < hw)
                                    })
                                    .map_err(|e| e.kafka_error_code())
                            };
                            let found = match p.timestamp {
                                LATEST => Ok(Some((-1, hw))),
                                EARLIEST | EARLIEST_LOCAL => {
                                    Ok(Some((-1, partition.log().log_start_offset())))
                                }
                                // KIP-734: the offset of the record carrying
                                // the largest timestamp, not the last offset
                                // of its batch. The log tracks the largest
                                // timestamp; the first record at or after it
                                // is that record.
                                MAX_TIMESTAMP => match partition.log().max_timestamp() {
                                    Some((max_ts, _)) => first_at_or_after(max_ts),
                                    None => Ok(None),
                                },
                                ts if ts < 0 => Err(code::INVALID_REQUEST),
                                ts => first_at_or_after(ts),
                            };
                            match found {
                                Ok(Some((timestamp, offset))) => ListOffsetsPartitionResponse {
                                    error_code: code::NONE,
                                    timestamp,
                                    offset,
                                    leader_epoch: epoch,
                                    old_style_offsets: vec![offset],
                                    ..Default::default()
                                },
                                Ok(None) => ListOffsetsPartitionResponse {
                                    leader_epoch: epoch,
                                    ..not_found()
                                },
                                Err(error_code) => ListOffsetsPartitionResponse {
                                    error_code,
                                    ..not_found()
                                },
                            }
                        }
                    };
                    r.partition_index = p.partition_index;
                    if version > 0 {
                        r.old_style_offsets.clear();
                    }
                    r
                })
                .collect(),
            name: t.name,
            ..Default::default()
        })
        .collect();
    std::future::ready(ListOffsetsResponse {
        throttle_time_ms: 0,
        topics,
        ..Default::default()
    })
}

fn not_found() -> ListOffsetsPartitionResponse {
    ListOffsetsPartitionResponse {
        error_code: code::NONE,
        timestamp: -1,
        offset: -1,
        leader_epoch: -1,
        ..Default::default()
    }
}
