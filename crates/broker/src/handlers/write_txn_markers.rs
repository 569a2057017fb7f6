//! WriteTxnMarkers (27): a transaction coordinator on another broker asks
//! this one, the leader of some of the transaction's partitions, to write
//! its COMMIT or ABORT marker there.
//!
//! Each marker is written as the coordinator writes its own
//! ([`markers::write_local`]): only on a partition this broker leads,
//! answered once the ISR holds it, and on `__consumer_offsets` it settles
//! the producer's pending offsets. Per-partition codes: UNKNOWN_TOPIC_OR_PARTITION
//! (not hosted here), NOT_LEADER_OR_FOLLOWER, INVALID_PRODUCER_EPOCH (an
//! older epoch than the partition has seen), or the append's or
//! replication's code; the coordinator retries the retriable ones.
//!
//! Clients never send this; it belongs to brokers. Who may send it (the
//! CLUSTER_ACTION ACL) comes with authorization.

use std::future::Future;
use std::sync::Arc;

use futures::future::join_all;
use sluice_coordinator::GroupCoordinator;
use sluice_coordinator::txn::markers::{self, Marker};
use sluice_protocol::RequestHeader;
use sluice_protocol::error::codes as code;
use sluice_protocol::messages::write_txn_markers::{
    WritableTxnMarkerPartitionResult, WritableTxnMarkerResult, WritableTxnMarkerTopicResult,
    WriteTxnMarkersRequest, WriteTxnMarkersResponse,
};
use sluice_replica::ReplicaManager;

use super::RequestContext;
use crate::authz::Authorizer;
use sluice_metadata::acl::AclOperation;

/// Bound on partitions in one request: each is an append and a wait.
const MAX_MARKER_PARTITIONS_PER_REQUEST: usize = 100_000;

/// Handles WriteTxnMarkers: partitions resolve through `replicas`; markers
/// on `__consumer_offsets` settle offsets in `groups`.
pub fn handle(
    replicas: &Arc<ReplicaManager>,
    groups: &Arc<GroupCoordinator>,
    authorizer: &Authorizer,
    ctx: &RequestContext,
    _header: &RequestHeader,
    request: WriteTxnMarkersRequest,
) -> impl Future<Output = WriteTxnMarkersResponse> + Send + 'static {
    // Kafka: CLUSTER_ACTION on the cluster (brokers only), else every
    // partition fails with CLUSTER_AUTHORIZATION_FAILED.
    let denied = !authorizer.cluster(ctx, AclOperation::ClusterAction);
    let replicas = Arc::clone(replicas);
    let groups = Arc::clone(groups);
    let peer = ctx.peer;
    async move {
        let total: usize = request
            .markers
            .iter()
            .flat_map(|m| &m.topics)
            .map(|t| t.partition_indexes.len())
            .sum();
        let too_many = total > MAX_MARKER_PARTITIONS_PER_REQUEST;
        if too_many {
            tracing::warn!(%peer, partitions = total, "WriteTxnMarkers names too many partitions");
        }
        let mut markers = Vec::with_capacity(request.markers.len());
        for m in request.markers {
            let marker = Marker {
                producer_id: m.producer_id,
                producer_epoch: m.producer_epoch,
                commit: m.transaction_result,
                coordinator_epoch: m.coordinator_epoch,
            };
            // One marker's partitions are written concurrently (their
            // fsyncs and ISR waits overlap); markers follow in order, as
            // one producer's markers must.
            let mut topics = Vec::with_capacity(m.topics.len());
            for t in m.topics {
                let writes = t.partition_indexes.iter().map(|&index| {
                    let partition = replicas.partition(&t.name, index);
                    let groups = &groups;
                    async move {
                        if denied {
                            return code::CLUSTER_AUTHORIZATION_FAILED;
                        }
                        if too_many {
                            return code::INVALID_REQUEST;
                        }
                        match markers::write_local(partition, groups, marker).await {
                            Ok(()) => code::NONE,
                            Err(c) => c,
                        }
                    }
                });
                let codes = join_all(writes).await;
                topics.push(WritableTxnMarkerTopicResult {
                    name: t.name,
                    partitions: t
                        .partition_indexes
                        .into_iter()
                        .zip(codes)
                        .map(
                            |(partition_index, error_code)| WritableTxnMarkerPartitionResult {
                                partition_index,
                                error_code,
                                ..Default::default()
                            },
                        )
                        .collect(),
                    ..Default::default()
                });
            }
            markers.push(WritableTxnMarkerResult {
                producer_id: m.producer_id,
                topics,
                ..Default::default()
            });
        }
        WriteTxnMarkersResponse {
            markers,
            ..Default::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use sluice_protocol::messages::write_txn_markers::{WritableTxnMarker, WritableTxnMarkerTopic};

    use super::*;
    use crate::testing::{self, Node};

    /// Appends one transactional record of `pid` at `epoch` to `t`-0.
    async fn open_transaction(node: &Node, pid: i64, epoch: i16) {
        let batch = testing::transactional_batch(pid, epoch, 0);
        testing::append(&node.partition("t", 0), &batch).await;
    }

    /// Sends one marker for `pid` at `epoch` to `partitions` of `t`; the codes.
    async fn mark(node: &Node, pid: i64, epoch: i16, commit: bool, partitions: &[i32]) -> Vec<i16> {
        let request = WriteTxnMarkersRequest {
            markers: vec![WritableTxnMarker {
                producer_id: pid,
                producer_epoch: epoch,
                transaction_result: commit,
                topics: vec![WritableTxnMarkerTopic {
                    name: "t".to_owned(),
                    partition_indexes: partitions.to_vec(),
                    ..Default::default()
                }],
                coordinator_epoch: 0,
                ..Default::default()
            }],
            ..Default::default()
        };
        let response = handle(
            &node.replicas,
            &node.groups,
            &testing::allow_all(),
            &testing::ctx(),
            &testing::header(27, 1),
            request,
        )
        .await;
        assert_eq!(response.markers.len(), 1);
        assert_eq!(response.markers[0].producer_id, pid);
        response.markers[0]
            .topics
            .iter()
            .flat_map(|t| t.partitions.iter().map(|p| p.error_code))
            .collect()
    }

    #[tokio::test]
    async fn a_marker_ends_the_open_transaction_on_a_led_partition() {
        let dir = tempfile::tempdir().expect("tempdir");
        let node = testing::node_in(dir.path()).await;
        node.create_topic("t", 1).await;
        let partition = node.partition("t", 0);
        open_transaction(&node, 42, 3).await;
        assert_eq!(
            partition.last_stable_offset(),
            0,
            "held by the open transaction"
        );

        // Partition 5 does not exist: it fails alone.
        let codes = mark(&node, 42, 3, true, &[0, 5]).await;
        assert_eq!(codes, [code::NONE, code::UNKNOWN_TOPIC_OR_PARTITION]);
        assert!(!partition.log().has_ongoing_transaction(42, 3));
        assert_eq!(
            partition.last_stable_offset(),
            partition.log().log_end_offset(),
            "the commit marker releases the last stable offset"
        );
        assert_eq!(partition.log().log_end_offset(), 2, "record, marker");
    }

    #[tokio::test]
    async fn a_marker_from_an_older_producer_epoch_is_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let node = testing::node_in(dir.path()).await;
        node.create_topic("t", 1).await;
        let partition = node.partition("t", 0);
        open_transaction(&node, 42, 3).await;
        let end = partition.log().log_end_offset();
        assert_eq!(
            mark(&node, 42, 2, false, &[0]).await,
            [code::INVALID_PRODUCER_EPOCH]
        );
        assert_eq!(partition.log().log_end_offset(), end, "nothing written");
        assert!(partition.log().has_ongoing_transaction(42, 3));
    }
}
