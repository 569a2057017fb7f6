//! DescribeTransactions (65): the coordinator's view of transactional ids.

use std::future::Future;
use std::sync::Arc;

use sluice_protocol::RequestHeader;
use sluice_protocol::error::codes as code;
use sluice_protocol::messages::describe_transactions::{
    DescribeTransactionsRequest, DescribeTransactionsResponse, TopicData, TransactionState,
};

use super::RequestContext;
use sluice_coordinator::TransactionCoordinator;

/// Handles DescribeTransactions.
pub fn handle(
    txn: &Arc<TransactionCoordinator>,
    _ctx: &RequestContext,
    _header: &RequestHeader,
    request: DescribeTransactionsRequest,
) -> impl Future<Output = DescribeTransactionsResponse> + Send + 'static {
    let txn = Arc::clone(txn);
    async move {
        let mut transaction_states = Vec::with_capacity(request.transactional_ids.len());
        for id in request.transactional_ids {
            let meta = match txn.get(&id) {
                Some(slot) => slot.snapshot().await,
                None => None,
            };
            let Some(meta) = meta else {
                transaction_states.push(TransactionState {
                    error_code: code::TRANSACTIONAL_ID_NOT_FOUND,
                    transactional_id: id,
                    transaction_state: String::new(),
                    transaction_timeout_ms: 0,
                    transaction_start_time_ms: -1,
                    producer_id: -1,
                    producer_epoch: -1,
                    topics: vec![],
                    ..Default::default()
                });
                continue;
            };
            let mut topics: Vec<TopicData> = Vec::new();
            for (topic, partition) in &meta.partitions {
                match topics.last_mut() {
                    Some(t) if &t.topic == topic => t.partitions.push(*partition),
                    _ => topics.push(TopicData {
                        topic: topic.clone(),
                        partitions: vec![*partition],
                        ..Default::default()
                    }),
                }
            }
            transaction_states.push(TransactionState {
                error_code: code::NONE,
                transactional_id: id,
                transaction_state: meta.state.name().to_owned(),
                transaction_timeout_ms: meta.timeout_ms,
                transaction_start_time_ms: meta.start_ms,
                producer_id: meta.producer_id,
                producer_epoch: meta.producer_epoch,
                topics,
                ..Default::default()
            });
        }
        DescribeTransactionsResponse {
            throttle_time_ms: 0,
            transaction_states,
            ..Default::default()
        }
    }
}
