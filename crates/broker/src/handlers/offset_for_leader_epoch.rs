//! OffsetForLeaderEpoch (23): where a leader epoch ends, for log truncation
//! after a leader change. Only the partition's leader answers; the
//! request's `current_leader_epoch` is checked first, as Kafka does.

use std::future::Future;

use sluice_protocol::RequestHeader;
use sluice_protocol::error::codes as code;
use sluice_protocol::messages::offset_for_leader_epoch::{
    EpochEndOffset, OffsetForLeaderEpochRequest, OffsetForLeaderEpochResponse,
    OffsetForLeaderTopicResult,
};

use super::RequestContext;
use crate::authz::Authorizer;
use sluice_metadata::MetadataImage;
use sluice_metadata::acl::AclOperation;
use sluice_replica::ReplicaManager;

/// Handles OffsetForLeaderEpoch: partitions resolve through `replicas`
/// (this broker must lead them) and `image` (what exists).
pub fn handle(
    replicas: &ReplicaManager,
    image: &MetadataImage,
    authorizer: &Authorizer,
    ctx: &RequestContext,
    _header: &RequestHeader,
    request: OffsetForLeaderEpochRequest,
) -> impl Future<Output = OffsetForLeaderEpochResponse> + Send + 'static {
    // Kafka: a follower (replica id >= 0) needs CLUSTER_ACTION, refused
    // for the whole request; then DESCRIBE on each topic.
    let cluster_denied =
        request.replica_id >= 0 && !authorizer.cluster(ctx, AclOperation::ClusterAction);
    let topics = request
        .topics
        .into_iter()
        .map(|t| {
            let denied = if cluster_denied {
                Some(code::CLUSTER_AUTHORIZATION_FAILED)
            } else if !authorizer.topic(ctx, AclOperation::Describe, &t.topic) {
                Some(code::TOPIC_AUTHORIZATION_FAILED)
            } else {
                None
            };
            OffsetForLeaderTopicResult {
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
                        if let Some(error_code) = denied {
                            return result(error_code, -1, -1);
                        }
                        let partition = match replicas.leader_partition(
                            image,
                            &t.topic,
                            p.partition,
                            p.current_leader_epoch,
                            true,
                        ) {
                            Ok(partition) => partition,
                            Err(e) => return result(e.kafka_error_code(), -1, -1),
                        };
                        let current = partition.leader_epoch();
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
            }
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
        (replicas, image): &(
            std::sync::Arc<ReplicaManager>,
            std::sync::Arc<MetadataImage>,
        ),
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
        response.topics.remove(0).partitions.remove(0)
    }

    #[tokio::test]
    async fn only_the_leader_answers_and_checks_the_epoch_first() {
        let dir = tempfile::tempdir().expect("tempdir");
        let node = testing::node_in(dir.path()).await;
        testing::three_brokers(&node).await;
        testing::spread_topic(&node).await;
        let request = OffsetForLeaderEpochRequest {
            replica_id: -1,
            topics: vec![OffsetForLeaderTopic {
                topic: testing::SPREAD.to_owned(),
                partitions: [(0, 3), (1, -1), (2, -1), (3, -1), (9, -1), (1, 9)]
                    .into_iter()
                    .map(
                        |(partition, current_leader_epoch)| OffsetForLeaderPartition {
                            partition,
                            current_leader_epoch,
                            leader_epoch: 0,
                        },
                    )
                    .collect(),
            }],
            ..Default::default()
        };
        let header = testing::header(23, 4);
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
        let got: Vec<_> = response.topics[0]
            .partitions
            .iter()
            .map(|p| (p.partition, p.error_code))
            .collect();
        assert_eq!(
            got,
            [
                (0, code::NONE),
                (1, code::NOT_LEADER_OR_FOLLOWER),
                (2, code::NOT_LEADER_OR_FOLLOWER),
                (3, code::NOT_LEADER_OR_FOLLOWER),
                (9, code::UNKNOWN_TOPIC_OR_PARTITION),
                // A follower here at epoch 5 sees epoch 9 as unknown first.
                (1, code::UNKNOWN_LEADER_EPOCH),
            ]
        );
    }

    #[tokio::test]
    async fn the_current_epoch_ends_at_the_log_end() {
        let dir = tempfile::tempdir().expect("tempdir");
        let hosted = testing::hosted(dir.path(), &[("t", 1)]);
        let partition = hosted.0.partition("t", 0).expect("hosted");
        testing::append(&partition, &testing::batch(4)).await;
        let answer = ask(&hosted, 0, 0, 0);
        assert_eq!(answer.error_code, code::NONE);
        assert_eq!((answer.leader_epoch, answer.end_offset), (0, 4));
        // No current epoch given (-1): not checked.
        let answer = ask(&hosted, 0, -1, 0);
        assert_eq!((answer.leader_epoch, answer.end_offset), (0, 4));
    }

    #[tokio::test]
    async fn a_newer_current_epoch_is_unknown_and_a_missing_partition_is_an_error() {
        let dir = tempfile::tempdir().expect("tempdir");
        let hosted = testing::hosted(dir.path(), &[("t", 1)]);
        let answer = ask(&hosted, 0, 3, 0);
        assert_eq!(answer.error_code, code::UNKNOWN_LEADER_EPOCH);
        assert_eq!((answer.leader_epoch, answer.end_offset), (-1, -1));
        let answer = ask(&hosted, 4, 0, 0);
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
        let replicas = (replicas, std::sync::Arc::new(next));
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
