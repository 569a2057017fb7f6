//! ListOffsets (2): earliest, latest, by timestamp, and max timestamp.
//!
//! Answered by the partition's leader only (NOT_LEADER_OR_FOLLOWER
//! elsewhere), except for a debugging client (`replica_id` -2), which a
//! follower answers too, as in Kafka. `current_leader_epoch` (v4+) is
//! checked as Fetch checks it.

use std::future::Future;

use sluice_protocol::RequestHeader;
use sluice_protocol::error::codes as code;
use sluice_protocol::messages::list_offsets::{
    ListOffsetsPartitionResponse, ListOffsetsRequest, ListOffsetsResponse, ListOffsetsTopicResponse,
};

use super::RequestContext;
use crate::authz::Authorizer;
use sluice_metadata::MetadataImage;
use sluice_metadata::acl::AclOperation;
use sluice_replica::ReplicaManager;

/// Kafka's special timestamps.
const LATEST: i64 = -1;
const EARLIEST: i64 = -2;
const MAX_TIMESTAMP: i64 = -3;
/// KIP-405: earliest offset still on local disk; without tiered storage it is the log start.
const EARLIEST_LOCAL: i64 = -4;

/// Kafka's `replica_id` of a debugging client, which may read a follower.
const DEBUGGING_REPLICA_ID: i32 = -2;

/// Handles ListOffsets: partitions resolve through `replicas` (this broker
/// must lead them) and `image` (what exists).
pub fn handle(
    replicas: &ReplicaManager,
    image: &MetadataImage,
    authorizer: &Authorizer,
    ctx: &RequestContext,
    header: &RequestHeader,
    request: ListOffsetsRequest,
) -> impl Future<Output = ListOffsetsResponse> + Send + 'static {
    let version = header.request_api_version;
    // read_committed (isolation_level 1) sees offsets up to the last stable
    // offset only, as Kafka does.
    let read_committed = request.isolation_level == 1;
    let require_leader = request.replica_id != DEBUGGING_REPLICA_ID;
    let topics = request
        .topics
        .into_iter()
        .map(|t| {
            // Kafka: DESCRIBE on the topic.
            let denied = !authorizer.topic(ctx, AclOperation::Describe, &t.name);
            ListOffsetsTopicResponse {
                partitions: t
                    .partitions
                    .into_iter()
                    .map(|p| {
                        let leader = if denied {
                            Err(code::TOPIC_AUTHORIZATION_FAILED)
                        } else {
                            replicas
                                .leader_partition(
                                    image,
                                    &t.name,
                                    p.partition_index,
                                    p.current_leader_epoch,
                                    require_leader,
                                )
                                .map_err(|e| e.kafka_error_code())
                        };
                        let mut r = match leader {
                            Err(error_code) => ListOffsetsPartitionResponse {
                                error_code,
                                ..not_found()
                            },
                            Ok(partition) => {
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
            }
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

#[cfg(test)]
mod tests {
    use bytes::Bytes;
    use sluice_protocol::messages::list_offsets::{ListOffsetsPartition, ListOffsetsTopic};

    use super::*;
    use crate::testing;

    /// One batch holding one record stamped `timestamp_ms`.
    fn stamped(timestamp_ms: i64) -> bytes::BytesMut {
        sluice_records::BatchBuilder::new()
            .record(sluice_records::NewRecord {
                key: None,
                value: Some(Bytes::from_static(b"v")),
                headers: vec![],
                timestamp_ms,
            })
            .build()
            .expect("batch")
    }

    /// Asks for `timestamps` on `partition` of `t`; one answer per timestamp.
    fn list(
        (replicas, image): &Hosted,
        version: i16,
        isolation_level: i8,
        partition: i32,
        timestamps: &[i64],
    ) -> Vec<ListOffsetsPartitionResponse> {
        let request = ListOffsetsRequest {
            replica_id: -1,
            isolation_level,
            topics: timestamps
                .iter()
                .map(|&timestamp| ListOffsetsTopic {
                    name: "t".to_owned(),
                    partitions: vec![ListOffsetsPartition {
                        partition_index: partition,
                        timestamp,
                        ..Default::default()
                    }],
                })
                .collect(),
            ..Default::default()
        };
        let header = testing::header(2, version);
        let response = handle(
            replicas,
            image,
            &testing::allow_all(),
            &testing::ctx(),
            &header,
            request,
        )
        .now_or_never()
        .expect("answers at once");
        response
            .topics
            .into_iter()
            .flat_map(|t| t.partitions)
            .collect()
    }

    use futures::FutureExt;

    const T0: i64 = 1_700_000_000_000;

    /// Hosted partitions and the image describing them.
    type Hosted = (
        std::sync::Arc<ReplicaManager>,
        std::sync::Arc<MetadataImage>,
    );

    /// `t`-0 holding records stamped T0, T0+1000, T0+2000 at offsets 0, 1, 2.
    async fn three_records(dir: &std::path::Path) -> Hosted {
        let (replicas, image) = testing::hosted(dir, &[("t", 1)]);
        let partition = replicas.partition("t", 0).expect("hosted");
        for i in 0..3 {
            testing::append(&partition, &stamped(T0 + i * 1000)).await;
        }
        (replicas, image)
    }

    /// ListOffsets LATEST of `(partition, current_leader_epoch)` of
    /// [`testing::SPREAD`] from `replica_id`; (index, error, offset) each.
    fn list_spread(
        node: &testing::Node,
        replica_id: i32,
        partitions: &[(i32, i32)],
    ) -> Vec<(i32, i16, i64)> {
        let request = ListOffsetsRequest {
            replica_id,
            topics: vec![ListOffsetsTopic {
                name: testing::SPREAD.to_owned(),
                partitions: partitions
                    .iter()
                    .map(
                        |&(partition_index, current_leader_epoch)| ListOffsetsPartition {
                            partition_index,
                            current_leader_epoch,
                            timestamp: LATEST,
                            ..Default::default()
                        },
                    )
                    .collect(),
            }],
            ..Default::default()
        };
        let header = testing::header(2, 8);
        let response = handle(
            &node.replicas,
            &node.image(),
            &testing::allow_all(),
            &testing::ctx(),
            &header,
            request,
        )
        .now_or_never()
        .expect("answers at once");
        response.topics[0]
            .partitions
            .iter()
            .map(|p| (p.partition_index, p.error_code, p.offset))
            .collect()
    }

    #[tokio::test]
    async fn only_the_leader_answers_a_client_and_a_follower_a_debugging_one() {
        let dir = tempfile::tempdir().expect("tempdir");
        let node = testing::node_in(dir.path()).await;
        testing::three_brokers(&node).await;
        testing::spread_topic(&node).await;
        testing::append(&node.partition(testing::SPREAD, 0), &stamped(T0)).await;
        let consumer = list_spread(&node, -1, &[(0, -1), (1, -1), (2, -1), (3, -1), (9, -1)]);
        assert_eq!(
            consumer,
            [
                (0, code::NONE, 1),
                (1, code::NOT_LEADER_OR_FOLLOWER, -1),
                (2, code::NOT_LEADER_OR_FOLLOWER, -1),
                (3, code::NOT_LEADER_OR_FOLLOWER, -1),
                (9, code::UNKNOWN_TOPIC_OR_PARTITION, -1),
            ]
        );
        // replica_id -2: a follower hosted here answers; one not hosted cannot.
        let debugging = list_spread(&node, DEBUGGING_REPLICA_ID, &[(1, -1), (2, -1)]);
        assert_eq!(
            debugging,
            [(1, code::NONE, 0), (2, code::NOT_LEADER_OR_FOLLOWER, -1)]
        );
        // Partition 0 is at leader epoch 3.
        let epochs = list_spread(&node, -1, &[(0, 2), (0, 4), (0, 3)]);
        assert_eq!(
            epochs,
            [
                (0, code::FENCED_LEADER_EPOCH, -1),
                (0, code::UNKNOWN_LEADER_EPOCH, -1),
                (0, code::NONE, 1),
            ]
        );
    }

    #[tokio::test]
    async fn earliest_latest_and_max_timestamp() {
        let dir = tempfile::tempdir().expect("tempdir");
        let replicas = three_records(dir.path()).await;
        let answers = list(
            &replicas,
            8,
            0,
            0,
            &[EARLIEST, LATEST, MAX_TIMESTAMP, EARLIEST_LOCAL],
        );
        let got: Vec<_> = answers
            .iter()
            .map(|a| (a.error_code, a.offset, a.timestamp))
            .collect();
        assert_eq!(
            got,
            [
                (code::NONE, 0, -1),
                (code::NONE, 3, -1),
                (code::NONE, 2, T0 + 2000),
                (code::NONE, 0, -1),
            ]
        );
        assert!(answers.iter().all(|a| a.leader_epoch == 0));
    }

    #[tokio::test]
    async fn a_timestamp_finds_the_first_record_at_or_after_it() {
        let dir = tempfile::tempdir().expect("tempdir");
        let replicas = three_records(dir.path()).await;
        let answers = list(&replicas, 8, 0, 0, &[T0, T0 + 1000, T0 + 1, T0 + 5000]);
        let got: Vec<_> = answers.iter().map(|a| (a.offset, a.timestamp)).collect();
        assert_eq!(
            got,
            [(0, T0), (1, T0 + 1000), (1, T0 + 1000), (-1, -1)],
            "past the last record: no offset, and no error"
        );
        assert!(answers.iter().all(|a| a.error_code == code::NONE));
    }

    #[tokio::test]
    async fn unknown_partitions_and_negative_timestamps_are_errors() {
        let dir = tempfile::tempdir().expect("tempdir");
        let replicas = three_records(dir.path()).await;
        let unknown = list(&replicas, 8, 0, 9, &[LATEST]);
        assert_eq!(unknown[0].error_code, code::UNKNOWN_TOPIC_OR_PARTITION);
        assert_eq!(unknown[0].offset, -1);
        assert_eq!(unknown[0].partition_index, 9);
        let bad = list(&replicas, 8, 0, 0, &[-7]);
        assert_eq!(bad[0].error_code, code::INVALID_REQUEST);
        assert_eq!(bad[0].offset, -1);
    }

    #[tokio::test]
    async fn only_v0_carries_old_style_offsets() {
        let dir = tempfile::tempdir().expect("tempdir");
        let replicas = three_records(dir.path()).await;
        assert_eq!(
            list(&replicas, 0, 0, 0, &[LATEST])[0].old_style_offsets,
            [3]
        );
        assert!(
            list(&replicas, 1, 0, 0, &[LATEST])[0]
                .old_style_offsets
                .is_empty()
        );
    }

    #[tokio::test]
    async fn read_committed_latest_is_the_last_stable_offset() {
        let dir = tempfile::tempdir().expect("tempdir");
        let replicas = three_records(dir.path()).await;
        let partition = replicas.0.partition("t", 0).expect("hosted");
        let open_txn = sluice_records::BatchBuilder::new()
            .producer(9, 0, 0)
            .transactional(true)
            .record(sluice_records::NewRecord {
                key: None,
                value: Some(Bytes::from_static(b"pending")),
                headers: vec![],
                timestamp_ms: T0 + 3000,
            })
            .build()
            .expect("batch");
        testing::append(&partition, &open_txn).await;
        assert_eq!(list(&replicas, 8, 0, 0, &[LATEST])[0].offset, 4);
        assert_eq!(list(&replicas, 8, 1, 0, &[LATEST])[0].offset, 3);
        // The pending record is not found by timestamp either.
        assert_eq!(list(&replicas, 8, 1, 0, &[T0 + 3000])[0].offset, -1);
    }
}
