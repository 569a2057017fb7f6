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

#[cfg(test)]
mod tests {
    use futures::FutureExt;
    use sluice_protocol::messages::offset_for_leader_epoch::{
        OffsetForLeaderPartition, OffsetForLeaderTopic,
    };

    use super::*;
    use crate::testing;

    fn ask(
        replicas: &ReplicaManager,
        partition: i32,
        current_leader_epoch: i32,
        leader_epoch: i32,
    ) -> EpochEndOffset {
        let request = OffsetForLeaderEpochRequest {
            replica_id: -1,
            topics: vec![OffsetForLeaderTopic {
                topic: "t".to_owned(),
                partitions: vec![OffsetForLeaderPartition {
                    partition,
                    current_leader_epoch,
                    leader_epoch,
                }],
            }],
            ..Default::default()
        };
        let header = testing::header(23, 4);
        let mut response = handle(replicas, &testing::ctx(), &header, request)
            .now_or_never()
            .expect("answers at once");
        response.topics.remove(0).partitions.remove(0)
    }

    #[tokio::test]
    async fn the_current_epoch_ends_at_the_log_end() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (replicas, _) = testing::hosted(dir.path(), &[("t", 1)]);
        let partition = replicas.partition("t", 0).expect("hosted");
        testing::append(&partition, &testing::batch(4)).await;
        let answer = ask(&replicas, 0, 0, 0);
        assert_eq!(answer.error_code, code::NONE);
        assert_eq!((answer.leader_epoch, answer.end_offset), (0, 4));
        // No current epoch given (-1): not checked.
        let answer = ask(&replicas, 0, -1, 0);
        assert_eq!((answer.leader_epoch, answer.end_offset), (0, 4));
    }

    #[tokio::test]
    async fn a_newer_current_epoch_is_unknown_and_a_missing_partition_is_an_error() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (replicas, _) = testing::hosted(dir.path(), &[("t", 1)]);
        let answer = ask(&replicas, 0, 3, 0);
        assert_eq!(answer.error_code, code::UNKNOWN_LEADER_EPOCH);
        assert_eq!((answer.leader_epoch, answer.end_offset), (-1, -1));
        let answer = ask(&replicas, 4, 0, 0);
        assert_eq!(answer.error_code, code::UNKNOWN_TOPIC_OR_PARTITION);
        assert_eq!(answer.partition, 4);
    }

    #[tokio::test]
    async fn an_older_epoch_ends_where_the_next_began_and_a_stale_current_epoch_is_fenced() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (replicas, image) = testing::hosted(dir.path(), &[("t", 1)]);
        let partition = replicas.partition("t", 0).expect("hosted");
        testing::append(&partition, &testing::batch(2)).await;
        // A new leader epoch, as a metadata change would bring.
        let mut next = (*image).clone();
        next.next_offset += 1;
        if let Some(p) = next
            .topics
            .get_mut("t")
            .and_then(|t| t.partitions.get_mut(&0))
        {
            p.leader_epoch = 2;
        }
        replicas.sync_with(&next, false).expect("sync");
        assert_eq!(partition.leader_epoch(), 2);
        testing::append(&partition, &testing::batch(3)).await;

        let answer = ask(&replicas, 0, 2, 0);
        assert_eq!(answer.error_code, code::NONE);
        assert_eq!((answer.leader_epoch, answer.end_offset), (0, 2));
        let answer = ask(&replicas, 0, 2, 2);
        assert_eq!((answer.leader_epoch, answer.end_offset), (2, 5));
        let answer = ask(&replicas, 0, 1, 0);
        assert_eq!(answer.error_code, code::FENCED_LEADER_EPOCH);
    }
}
