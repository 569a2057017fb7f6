//! AddPartitionsToTxn (24): partitions join the producer's transaction
//! before it writes to them, so the coordinator knows where to put markers.
//!
//! v0-3 carry one transaction (librdkafka sends v0); v4+ batch several and
//! may only verify (KIP-890), the shape brokers use among themselves.

use std::future::Future;
use std::sync::Arc;

use sluice_protocol::RequestHeader;
use sluice_protocol::error::codes as code;
use sluice_protocol::messages::add_partitions_to_txn::{
    AddPartitionsToTxnPartitionResult, AddPartitionsToTxnRequest, AddPartitionsToTxnResponse,
    AddPartitionsToTxnResult, AddPartitionsToTxnTopic, AddPartitionsToTxnTopicResult,
};

use super::RequestContext;
use sluice_coordinator::TransactionCoordinator;
use sluice_replica::ReplicaManager;

/// First version that knows PRODUCER_FENCED (KIP-588).
const PRODUCER_FENCED_SINCE: i16 = 2;

/// Bound on partitions in one request: each becomes a marker write.
const MAX_PARTITIONS_PER_REQUEST: usize = 100_000;

/// Handles AddPartitionsToTxn: partitions must be hosted in `replicas`
/// before `txn` adds them.
pub fn handle(
    txn: &Arc<TransactionCoordinator>,
    replicas: &Arc<ReplicaManager>,
    _ctx: &RequestContext,
    header: &RequestHeader,
    request: AddPartitionsToTxnRequest,
) -> impl Future<Output = AddPartitionsToTxnResponse> + Send + 'static {
    let txn = Arc::clone(txn);
    let replicas = Arc::clone(replicas);
    let version = header.request_api_version;
    async move {
        if version <= 3 {
            let results = add_one(
                &txn,
                &replicas,
                version,
                &request.v3_and_below_transactional_id,
                request.v3_and_below_producer_id,
                request.v3_and_below_producer_epoch,
                &request.v3_and_below_topics,
                false,
            )
            .await;
            return AddPartitionsToTxnResponse {
                throttle_time_ms: 0,
                results_by_topic_v3_and_below: results,
                ..Default::default()
            };
        }
        let mut results_by_transaction = Vec::with_capacity(request.transactions.len());
        for t in &request.transactions {
            let topic_results = add_one(
                &txn,
                &replicas,
                version,
                &t.transactional_id,
                t.producer_id,
                t.producer_epoch,
                &t.topics,
                t.verify_only,
            )
            .await;
            results_by_transaction.push(AddPartitionsToTxnResult {
                transactional_id: t.transactional_id.clone(),
                topic_results,
                ..Default::default()
            });
        }
        AddPartitionsToTxnResponse {
            throttle_time_ms: 0,
            error_code: code::NONE,
            results_by_transaction,
            ..Default::default()
        }
    }
}

/// Adds (or verifies) one transaction's partitions; one result per partition.
#[allow(clippy::too_many_arguments)] // one transaction's fields, as the request carries them
async fn add_one(
    txn: &TransactionCoordinator,
    replicas: &ReplicaManager,
    version: i16,
    transactional_id: &str,
    producer_id: i64,
    producer_epoch: i16,
    topics: &[AddPartitionsToTxnTopic],
    verify_only: bool,
) -> Vec<AddPartitionsToTxnTopicResult> {
    let wanted: Vec<(String, i32)> = topics
        .iter()
        .flat_map(|t| t.partitions.iter().map(|&p| (t.name.clone(), p)))
        .collect();
    // Kafka: if any partition is unknown, that one gets the error and the
    // rest OPERATION_NOT_ATTEMPTED; nothing is added.
    let unknown: Vec<bool> = wanted
        .iter()
        .map(|(t, p)| replicas.partition(t, *p).is_none())
        .collect();
    let codes: Vec<i16> = if wanted.len() > MAX_PARTITIONS_PER_REQUEST {
        vec![code::INVALID_REQUEST; wanted.len()]
    } else if unknown.iter().any(|&u| u) {
        unknown
            .iter()
            .map(|&u| {
                if u {
                    code::UNKNOWN_TOPIC_OR_PARTITION
                } else {
                    code::OPERATION_NOT_ATTEMPTED
                }
            })
            .collect()
    } else if verify_only {
        match txn
            .verify_partitions(transactional_id, producer_id, producer_epoch, &wanted)
            .await
        {
            Ok(found) => found
                .into_iter()
                .map(|ok| {
                    if ok {
                        code::NONE
                    } else {
                        code::TRANSACTION_ABORTABLE
                    }
                })
                .collect(),
            Err(e) => vec![e.code(false); wanted.len()],
        }
    } else {
        let c = match txn
            .add_to_txn(transactional_id, producer_id, producer_epoch, &wanted, None)
            .await
        {
            Ok(()) => code::NONE,
            Err(e) => {
                tracing::info!(transactional_id, "AddPartitionsToTxn refused: {e:?}");
                e.code(version < PRODUCER_FENCED_SINCE)
            }
        };
        vec![c; wanted.len()]
    };
    let mut codes = codes.into_iter();
    topics
        .iter()
        .map(|t| AddPartitionsToTxnTopicResult {
            name: t.name.clone(),
            results_by_partition: t
                .partitions
                .iter()
                .map(|&p| AddPartitionsToTxnPartitionResult {
                    partition_index: p,
                    partition_error_code: codes.next().unwrap_or(code::UNKNOWN_SERVER_ERROR),
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        })
        .collect()
}
