//! DescribeProducers (61): the producers a partition knows, with their
//! last sequence and open transaction (what `kafka-transactions.sh
//! describe-producers` shows, and how a hanging transaction is found).

use std::future::Future;

use sluice_protocol::RequestHeader;
use sluice_protocol::error::codes as code;
use sluice_protocol::messages::describe_producers::{
    DescribeProducersRequest, DescribeProducersResponse, PartitionResponse, ProducerState,
    TopicResponse,
};

use super::RequestContext;
use sluice_replica::ReplicaManager;

/// Handles DescribeProducers.
pub fn handle(
    replicas: &ReplicaManager,
    _ctx: &RequestContext,
    _header: &RequestHeader,
    request: DescribeProducersRequest,
) -> impl Future<Output = DescribeProducersResponse> + Send + 'static {
    let topics = request
        .topics
        .into_iter()
        .map(|t| TopicResponse {
            partitions: t
                .partition_indexes
                .iter()
                .map(|&index| match replicas.partition(&t.name, index) {
                    None => PartitionResponse {
                        partition_index: index,
                        error_code: code::UNKNOWN_TOPIC_OR_PARTITION,
                        ..Default::default()
                    },
                    Some(p) => PartitionResponse {
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
                                current_txn_start_offset: e.current_txn_first_offset.unwrap_or(-1),
                                ..Default::default()
                            })
                            .collect(),
                        ..Default::default()
                    },
                })
                .collect(),
            name: t.name,
            ..Default::default()
        })
        .collect();
    std::future::ready(DescribeProducersResponse {
        throttle_time_ms: 0,
        topics,
        ..Default::default()
    })
}
